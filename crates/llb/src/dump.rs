//! A readable, deterministic JSON view of a definition, for snapshot tests
//! and `--dump` style debugging.

use serde_json::{json, Map, Value};
use strata_proto::pb;

use crate::validate::decode_ops;
use crate::Platform;

/// The definition as JSON: `{"ops": [...]}` in definition order, each op with
/// its digest, kind, inputs, a readable body, platform, metadata and source
/// locations. Empty and default fields are left out.
pub fn to_json(definition: &pb::Definition) -> Value {
    let ops = match decode_ops(definition) {
        Ok(ops) => ops,
        Err(error) => return json!({ "error": error.to_string() }),
    };
    let ops: Vec<Value> = ops
        .iter()
        .map(|(digest, op)| op_json(definition, digest, op))
        .collect();
    json!({ "ops": ops })
}

/// [`to_json`], pretty-printed.
pub fn to_pretty_string(definition: &pb::Definition) -> String {
    // Serializing a `Value` cannot fail.
    serde_json::to_string_pretty(&to_json(definition)).unwrap_or_default()
}

/// Inserts `value` unless it is null, false, zero or empty.
fn put(object: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    };
    if !empty {
        object.insert(key.to_owned(), value);
    }
}

fn op_json(definition: &pb::Definition, digest: &str, op: &pb::Op) -> Value {
    use pb::op::Op;
    let mut object = Map::new();
    object.insert("digest".into(), digest.into());
    let (kind, body) = match &op.op {
        Some(Op::Source(source)) => ("source", source_json(source)),
        Some(Op::Exec(exec)) => ("exec", exec_json(exec)),
        Some(Op::File(file)) => ("file", file_json(file)),
        Some(Op::Build(_)) => ("build", Value::Null),
        None => ("terminal", Value::Null),
    };
    object.insert("kind".into(), kind.into());
    let inputs: Vec<Value> = op
        .inputs
        .iter()
        .map(|input| json!({ "digest": input.digest, "index": input.index }))
        .collect();
    object.insert("inputs".into(), inputs.into());
    put(&mut object, kind, body);
    if let Some(platform) = &op.platform {
        object.insert(
            "platform".into(),
            Platform::from(platform).to_string().into(),
        );
    }
    if let Some(metadata) = definition.metadata.get(digest) {
        put(&mut object, "description", json!(metadata.description));
        put(&mut object, "ignore_cache", metadata.ignore_cache.into());
        let caps: Vec<&String> = metadata
            .caps
            .iter()
            .filter(|(_, on)| **on)
            .map(|(cap, _)| cap)
            .collect();
        put(&mut object, "caps", json!(caps));
        if let Some(group) = &metadata.progress_group {
            object.insert(
                "progress_group".into(),
                json!({ "id": group.id, "name": group.name, "weak": group.weak }),
            );
        }
    }
    if let Some(source) = &definition.source {
        if let Some(locations) = source.locations.get(digest) {
            put(&mut object, "locations", locations_json(source, locations));
        }
    }
    Value::Object(object)
}

fn source_json(source: &pb::SourceOp) -> Value {
    let mut object = Map::new();
    object.insert("identifier".into(), source.identifier.clone().into());
    put(&mut object, "attrs", json!(source.attrs));
    Value::Object(object)
}

fn exec_json(exec: &pb::ExecOp) -> Value {
    let mut object = Map::new();
    if let Some(meta) = &exec.meta {
        object.insert("args".into(), json!(meta.args));
        put(&mut object, "env", json!(meta.env));
        object.insert("cwd".into(), meta.cwd.clone().into());
        put(&mut object, "user", meta.user.clone().into());
        put(&mut object, "hostname", meta.hostname.clone().into());
    }
    let network = match pb::NetMode::try_from(exec.network) {
        Ok(pb::NetMode::Unset) => "sandbox",
        Ok(pb::NetMode::Host) => "host",
        Ok(pb::NetMode::None) => "none",
        Err(_) => "unknown",
    };
    object.insert("network".into(), network.into());
    if exec.security == pb::SecurityMode::Insecure as i32 {
        object.insert("security".into(), "insecure".into());
    }
    let mounts: Vec<Value> = exec.mounts.iter().map(mount_json).collect();
    object.insert("mounts".into(), mounts.into());
    Value::Object(object)
}

fn mount_json(mount: &pb::Mount) -> Value {
    let kind = pb::MountType::try_from(mount.mount_type).map_or("unknown", |kind| match kind {
        pb::MountType::Bind => "bind",
        pb::MountType::Secret => "secret",
        pb::MountType::Ssh => "ssh",
        pb::MountType::Cache => "cache",
        pb::MountType::Tmpfs => "tmpfs",
    });
    let mut object = Map::new();
    object.insert("type".into(), kind.into());
    object.insert("dest".into(), mount.dest.clone().into());
    object.insert("input".into(), mount.input.into());
    object.insert("output".into(), mount.output.into());
    put(&mut object, "selector", mount.selector.clone().into());
    put(&mut object, "readonly", mount.readonly.into());
    if let Some(cache) = &mount.cache_opt {
        let sharing = pb::CacheSharingOpt::try_from(cache.sharing).map_or("unknown", |s| match s {
            pb::CacheSharingOpt::Shared => "shared",
            pb::CacheSharingOpt::Private => "private",
            pb::CacheSharingOpt::Locked => "locked",
        });
        object.insert(
            "cache".into(),
            json!({ "id": cache.id, "sharing": sharing }),
        );
    }
    if let Some(tmpfs) = &mount.tmpfs_opt {
        put(&mut object, "size", tmpfs.size.into());
    }
    let file_mount = |id: &str, uid: u32, gid: u32, mode: u32, optional: bool| json!({ "id": id, "uid": uid, "gid": gid, "mode": octal(mode), "optional": optional });
    if let Some(s) = &mount.secret_opt {
        object.insert(
            "secret".into(),
            file_mount(&s.id, s.uid, s.gid, s.mode, s.optional),
        );
    }
    if let Some(s) = &mount.ssh_opt {
        object.insert(
            "ssh".into(),
            file_mount(&s.id, s.uid, s.gid, s.mode, s.optional),
        );
    }
    Value::Object(object)
}

fn file_json(file: &pb::FileOp) -> Value {
    use pb::file_action::Action;
    let actions: Vec<Value> = file
        .actions
        .iter()
        .map(|action| {
            let mut object = Map::new();
            let kind = match &action.action {
                Some(Action::Copy(_)) => "copy",
                Some(Action::Mkfile(_)) => "mkfile",
                Some(Action::Mkdir(_)) => "mkdir",
                Some(Action::Rm(_)) => "rm",
                None => "none",
            };
            object.insert("action".into(), kind.into());
            object.insert("input".into(), action.input.into());
            if matches!(action.action, Some(Action::Copy(_))) {
                object.insert("secondary_input".into(), action.secondary_input.into());
            }
            object.insert("output".into(), action.output.into());
            match &action.action {
                Some(Action::Copy(copy)) => copy_json(&mut object, copy),
                Some(Action::Mkfile(mkfile)) => {
                    object.insert("path".into(), mkfile.path.clone().into());
                    object.insert("mode".into(), octal(mkfile.mode as u32).into());
                    let data = match std::str::from_utf8(&mkfile.data) {
                        Ok(text) => text.to_owned(),
                        Err(_) => format!("<{} bytes>", mkfile.data.len()),
                    };
                    object.insert("data".into(), data.into());
                    put(&mut object, "owner", owner_json(mkfile.owner.as_ref()));
                    timestamp(&mut object, mkfile.timestamp);
                }
                Some(Action::Mkdir(mkdir)) => {
                    object.insert("path".into(), mkdir.path.clone().into());
                    object.insert("mode".into(), octal(mkdir.mode as u32).into());
                    put(&mut object, "make_parents", mkdir.make_parents.into());
                    put(&mut object, "owner", owner_json(mkdir.owner.as_ref()));
                    timestamp(&mut object, mkdir.timestamp);
                }
                Some(Action::Rm(rm)) => {
                    object.insert("path".into(), rm.path.clone().into());
                    put(&mut object, "allow_not_found", rm.allow_not_found.into());
                    put(&mut object, "allow_wildcard", rm.allow_wildcard.into());
                }
                None => {}
            }
            Value::Object(object)
        })
        .collect();
    json!({ "actions": actions })
}

/// A copy action's fields.
fn copy_json(object: &mut Map<String, Value>, copy: &pb::FileActionCopy) {
    object.insert("src".into(), copy.src.clone().into());
    object.insert("dest".into(), copy.dest.clone().into());
    put(object, "owner", owner_json(copy.owner.as_ref()));
    if copy.mode >= 0 {
        object.insert("mode".into(), octal(copy.mode as u32).into());
    }
    put(object, "follow_symlinks", copy.follow_symlink.into());
    put(object, "copy_dir_contents", copy.dir_copy_contents.into());
    put(object, "create_dest_path", copy.create_dest_path.into());
    put(object, "allow_wildcard", copy.allow_wildcard.into());
    put(
        object,
        "allow_empty_wildcard",
        copy.allow_empty_wildcard.into(),
    );
    put(object, "include_patterns", json!(copy.include_patterns));
    put(object, "exclude_patterns", json!(copy.exclude_patterns));
    timestamp(object, copy.timestamp);
}

fn octal(mode: u32) -> String {
    format!("0{mode:o}")
}

fn timestamp(object: &mut Map<String, Value>, timestamp: i64) {
    if timestamp >= 0 {
        object.insert("timestamp".into(), timestamp.into());
    }
}

/// `user[:group]`, names as written and ids as numbers.
fn owner_json(owner: Option<&pb::ChownOpt>) -> Value {
    use pb::user_opt::User;
    let Some(owner) = owner else {
        return Value::Null;
    };
    let part = |user: Option<&pb::UserOpt>| match user.and_then(|u| u.user.as_ref()) {
        Some(User::ByName(named)) => named.name.clone(),
        Some(User::ById(id)) => id.to_string(),
        None => String::new(),
    };
    let user = part(owner.user.as_ref());
    match owner.group.as_ref() {
        Some(group) => format!("{user}:{}", part(Some(group))).into(),
        None => user.into(),
    }
}

/// Each location as its file name and line ranges (`3`, `3-5`, `3:4-5:10`).
fn locations_json(source: &pb::Source, locations: &pb::Locations) -> Value {
    let entries: Vec<Value> = locations
        .locations
        .iter()
        .map(|location| {
            let filename = usize::try_from(location.source_index)
                .ok()
                .and_then(|i| source.infos.get(i))
                .map_or("<unknown>", |info| info.filename.as_str());
            let ranges: Vec<String> = location.ranges.iter().map(range_text).collect();
            json!({ "filename": filename, "ranges": ranges })
        })
        .collect();
    entries.into()
}

fn range_text(range: &pb::Range) -> String {
    let start = range.start.unwrap_or_default();
    let end = range.end.unwrap_or_default();
    if start.character == 0 && end.character == 0 {
        if start.line == end.line {
            start.line.to_string()
        } else {
            format!("{}-{}", start.line, end.line)
        }
    } else {
        format!(
            "{}:{}-{}:{}",
            start.line, start.character, end.line, end.character
        )
    }
}
