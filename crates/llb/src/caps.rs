//! LLB capability ids (BuildKit `solver/pb/caps.go`, v0.13) and the rule that
//! derives, from an op as it is emitted, the caps it relies on.
//!
//! A frontend compares these against the `LLBCaps` of `Ping` before solving;
//! buildkitd itself rejects a definition that names a cap it does not know.

use std::collections::BTreeSet;

use strata_proto::pb;

/// `docker-image://` sources.
pub const SOURCE_IMAGE: &str = "source.image";
/// The `image.resolvemode` attribute.
pub const SOURCE_IMAGE_RESOLVE_MODE: &str = "source.image.resolvemode";
/// `local://` sources.
pub const SOURCE_LOCAL: &str = "source.local";
/// The `local.unique` attribute.
pub const SOURCE_LOCAL_UNIQUE: &str = "source.local.unique";
/// The `local.session` attribute.
pub const SOURCE_LOCAL_SESSION_ID: &str = "source.local.sessionid";
/// The `local.includepattern` attribute.
pub const SOURCE_LOCAL_INCLUDE_PATTERNS: &str = "source.local.includepatterns";
/// The `local.followpaths` attribute.
pub const SOURCE_LOCAL_FOLLOW_PATHS: &str = "source.local.followpaths";
/// The `local.excludepatterns` attribute.
pub const SOURCE_LOCAL_EXCLUDE_PATTERNS: &str = "source.local.excludepatterns";
/// The `local.sharedkeyhint` attribute.
pub const SOURCE_LOCAL_SHARED_KEY_HINT: &str = "source.local.sharedkeyhint";
/// The `local.differ` attribute.
pub const SOURCE_LOCAL_DIFFER: &str = "source.local.differ";
/// `http://` and `https://` sources.
pub const SOURCE_HTTP: &str = "source.http";
/// `http.checksum`.
pub const SOURCE_HTTP_CHECKSUM: &str = "source.http.checksum";
/// `http.perm`.
pub const SOURCE_HTTP_PERM: &str = "source.http.perm";
/// `git://` sources.
pub const SOURCE_GIT: &str = "source.git";
/// `git.fullurl`.
pub const SOURCE_GIT_FULL_URL: &str = "source.git.fullurl";
/// `git.keepgitdir`.
pub const SOURCE_GIT_KEEP_DIR: &str = "source.git.keepgitdir";

/// Exec ops with args, env, cwd and user.
pub const EXEC_META_BASE: &str = "exec.meta.base";
/// A network mode other than sandbox.
pub const EXEC_META_NETWORK: &str = "exec.meta.network";
/// The executor sets a default `PATH` when the env has none.
pub const EXEC_META_SETS_DEFAULT_PATH: &str = "exec.meta.setsdefaultpath";
/// `Meta.removeMountStubsRecursive`.
pub const EXEC_META_REMOVE_MOUNT_STUBS_RECURSIVE: &str = "exec.meta.removemountstubs.recursive";
/// Bind mounts of another op's output.
pub const EXEC_MOUNT_BIND: &str = "exec.mount.bind";
/// A mount selector (subpath of the input).
pub const EXEC_MOUNT_SELECTOR: &str = "exec.mount.selector";
/// Persistent cache mounts.
pub const EXEC_MOUNT_CACHE: &str = "exec.mount.cache";
/// The sharing mode of cache mounts.
pub const EXEC_MOUNT_CACHE_SHARING: &str = "exec.mount.cache.sharing";
/// Tmpfs mounts.
pub const EXEC_MOUNT_TMPFS: &str = "exec.mount.tmpfs";
/// Tmpfs mounts with a size limit.
pub const EXEC_MOUNT_TMPFS_SIZE: &str = "exec.mount.tmpfs.size";
/// Secret mounts.
pub const EXEC_MOUNT_SECRET: &str = "exec.mount.secret";
/// SSH agent socket mounts.
pub const EXEC_MOUNT_SSH: &str = "exec.mount.ssh";

/// File ops.
pub const FILE_BASE: &str = "file.base";
/// Include/exclude patterns on copy.
pub const FILE_COPY_INCLUDE_EXCLUDE_PATTERNS: &str = "file.copy.includeexcludepatterns";
/// Wildcards in rm.
pub const FILE_RM_WILDCARD: &str = "file.rm.wildcard";

/// Worker constraints on ops (set on the terminal op).
pub const CONSTRAINTS: &str = "constraints";
/// Platforms on ops (set on the terminal op).
pub const PLATFORM: &str = "platform";
/// `OpMetadata.ignore_cache`.
pub const META_IGNORE_CACHE: &str = "meta.ignorecache";
/// `OpMetadata.description`.
pub const META_DESCRIPTION: &str = "meta.description";
/// `OpMetadata.export_cache`.
pub const META_EXPORT_CACHE: &str = "meta.exportcache";

/// The `meta.*` caps that `metadata` relies on.
pub(crate) fn for_metadata(metadata: &pb::OpMetadata) -> BTreeSet<&'static str> {
    let mut caps = BTreeSet::new();
    if metadata.ignore_cache {
        caps.insert(META_IGNORE_CACHE);
    }
    if !metadata.description.is_empty() {
        caps.insert(META_DESCRIPTION);
    }
    if metadata.export_cache.is_some() {
        caps.insert(META_EXPORT_CACHE);
    }
    caps
}

/// The caps `op` relies on, read from what it actually carries.
pub(crate) fn for_op(op: &pb::Op) -> BTreeSet<&'static str> {
    use pb::op::Op;
    let mut caps = BTreeSet::new();
    match &op.op {
        Some(Op::Source(source)) => source_caps(source, &mut caps),
        Some(Op::Exec(exec)) => exec_caps(exec, &mut caps),
        Some(Op::File(file)) => file_caps(file, &mut caps),
        Some(Op::Build(_)) | None => {}
    }
    caps
}

fn source_caps(source: &pb::SourceOp, caps: &mut BTreeSet<&'static str>) {
    let attr_caps: &[(&str, &'static str)] = if source.identifier.starts_with("docker-image://") {
        caps.insert(SOURCE_IMAGE);
        &[("image.resolvemode", SOURCE_IMAGE_RESOLVE_MODE)]
    } else if source.identifier.starts_with("local://") {
        caps.insert(SOURCE_LOCAL);
        &[
            ("local.session", SOURCE_LOCAL_SESSION_ID),
            ("local.unique", SOURCE_LOCAL_UNIQUE),
            ("local.includepattern", SOURCE_LOCAL_INCLUDE_PATTERNS),
            ("local.excludepatterns", SOURCE_LOCAL_EXCLUDE_PATTERNS),
            ("local.followpaths", SOURCE_LOCAL_FOLLOW_PATHS),
            ("local.sharedkeyhint", SOURCE_LOCAL_SHARED_KEY_HINT),
            ("local.differ", SOURCE_LOCAL_DIFFER),
        ]
    } else if source.identifier.starts_with("git://") {
        caps.insert(SOURCE_GIT);
        &[
            ("git.fullurl", SOURCE_GIT_FULL_URL),
            ("git.keepgitdir", SOURCE_GIT_KEEP_DIR),
        ]
    } else if source.identifier.starts_with("https://") || source.identifier.starts_with("http://")
    {
        caps.insert(SOURCE_HTTP);
        &[
            ("http.checksum", SOURCE_HTTP_CHECKSUM),
            ("http.perm", SOURCE_HTTP_PERM),
        ]
    } else {
        &[]
    };
    for (attr, cap) in attr_caps {
        if source.attrs.contains_key(*attr) {
            caps.insert(cap);
        }
    }
}

fn exec_caps(exec: &pb::ExecOp, caps: &mut BTreeSet<&'static str>) {
    caps.insert(EXEC_META_BASE);
    if let Some(meta) = &exec.meta {
        if !meta.env.iter().any(|e| e.starts_with("PATH=")) {
            caps.insert(EXEC_META_SETS_DEFAULT_PATH);
        }
        if meta.remove_mount_stubs_recursive {
            caps.insert(EXEC_META_REMOVE_MOUNT_STUBS_RECURSIVE);
        }
    }
    if exec.network != pb::NetMode::Unset as i32 {
        caps.insert(EXEC_META_NETWORK);
    }
    for mount in &exec.mounts {
        if !mount.selector.is_empty() {
            caps.insert(EXEC_MOUNT_SELECTOR);
        }
        match pb::MountType::try_from(mount.mount_type) {
            Ok(pb::MountType::Bind) if mount.input >= 0 => {
                caps.insert(EXEC_MOUNT_BIND);
            }
            Ok(pb::MountType::Cache) => {
                caps.extend([EXEC_MOUNT_CACHE, EXEC_MOUNT_CACHE_SHARING]);
            }
            Ok(pb::MountType::Tmpfs) => {
                caps.insert(EXEC_MOUNT_TMPFS);
                if mount.tmpfs_opt.is_some_and(|t| t.size > 0) {
                    caps.insert(EXEC_MOUNT_TMPFS_SIZE);
                }
            }
            Ok(pb::MountType::Secret) => {
                caps.insert(EXEC_MOUNT_SECRET);
            }
            Ok(pb::MountType::Ssh) => {
                caps.insert(EXEC_MOUNT_SSH);
            }
            _ => {}
        }
    }
}

fn file_caps(file: &pb::FileOp, caps: &mut BTreeSet<&'static str>) {
    use pb::file_action::Action;
    caps.insert(FILE_BASE);
    for action in &file.actions {
        match &action.action {
            Some(Action::Copy(copy))
                if !copy.include_patterns.is_empty() || !copy.exclude_patterns.is_empty() =>
            {
                caps.insert(FILE_COPY_INCLUDE_EXCLUDE_PATTERNS);
            }
            Some(Action::Rm(rm)) if rm.allow_wildcard => {
                caps.insert(FILE_RM_WILDCARD);
            }
            _ => {}
        }
    }
}
