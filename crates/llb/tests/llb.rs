//! Behaviour of the LLB builder, read back through the generated protobuf types.

use prost::Message;
use strata_llb::pb::{self, file_action::Action, op::Op, user_opt::User};
use strata_llb::validate::decode_ops;
use strata_llb::{
    caps, decode_definition, digest_of, dump, validate, CacheSharing, Chown, CopyOptions, Differ,
    FileActions, Image, LlbError, Local, MarshalOptions, Mount, Network, Platform, ResolveMode,
    Run, SourceInfo, SourceLocation, State,
};

fn marshal(state: &State) -> pb::Definition {
    let definition = state.marshal(&MarshalOptions::default()).expect("marshal");
    validate(&definition).expect("valid");
    definition
}

fn ops(definition: &pb::Definition) -> Vec<(String, pb::Op)> {
    decode_ops(definition).expect("decode ops")
}

/// The terminal op's single input: the result.
fn result_input(definition: &pb::Definition) -> pb::Input {
    let all = ops(definition);
    all.last().expect("terminal").1.inputs[0].clone()
}

/// The op that produced the definition's result.
fn result_op(definition: &pb::Definition) -> pb::Op {
    let all = ops(definition);
    let terminal = &all.last().expect("terminal").1;
    let root = &terminal.inputs[0].digest;
    all.iter()
        .find(|(d, _)| d == root)
        .expect("root op")
        .1
        .clone()
}

fn exec_of(op: &pb::Op) -> &pb::ExecOp {
    match &op.op {
        Some(Op::Exec(exec)) => exec,
        other => panic!("not an exec: {other:?}"),
    }
}

fn file_of(op: &pb::Op) -> &pb::FileOp {
    match &op.op {
        Some(Op::File(file)) => file,
        other => panic!("not a file op: {other:?}"),
    }
}

fn caps_of(definition: &pb::Definition, digest: &str) -> Vec<String> {
    definition.metadata[digest].caps.keys().cloned().collect()
}

#[test]
fn image_op_bytes_match_go_framing() {
    // Hand-encoded: Op{source(3){identifier(1)}, platform(10){Architecture(1), OS(2)}, constraints(11){}}.
    let identifier = b"docker-image://docker.io/library/debian:latest";
    let mut source = vec![0x0a, identifier.len() as u8];
    source.extend_from_slice(identifier);
    let platform = b"\x0a\x05amd64\x12\x05linux";
    let mut expected = vec![0x1a, source.len() as u8];
    expected.extend_from_slice(&source);
    expected.extend_from_slice(&[0x52, platform.len() as u8]);
    expected.extend_from_slice(platform);
    expected.extend_from_slice(&[0x5a, 0x00]);

    let definition = marshal(&State::image("debian"));
    assert_eq!(definition.def[0], expected);
    assert_eq!(
        digest_of(&expected),
        "sha256:3ee9b3c4343dde8f0f57d187258862a4d8d040e3c42b6b56ba4e57d5da3e0c2a"
    );
}

#[test]
fn golden_definition_decodes_with_generated_types() {
    let state = State::image("debian:12").run("echo hi").with_dir("/app");
    let bytes = state.to_bytes(&MarshalOptions::default()).expect("marshal");
    let definition = decode_definition(&bytes).expect("decode");
    validate(&definition).expect("valid");

    let all = ops(&definition);
    assert_eq!(all.len(), 3);
    let (image_digest, image) = &all[0];
    let (exec_digest, exec) = &all[1];
    let (terminal_digest, terminal) = &all[2];

    let Some(Op::Source(source)) = &image.op else {
        panic!("source first")
    };
    assert_eq!(
        source.identifier,
        "docker-image://docker.io/library/debian:12"
    );
    assert_eq!(
        image.platform.as_ref().map(|p| p.os.as_str()),
        Some("linux")
    );
    assert_eq!(image.constraints, Some(pb::WorkerConstraints::default()));

    assert_eq!(
        exec.inputs,
        vec![pb::Input {
            digest: image_digest.clone(),
            index: 0
        }]
    );
    let meta = exec_of(exec).meta.as_ref().expect("meta");
    assert_eq!(meta.args, ["/bin/sh", "-c", "echo hi"]);
    assert_eq!(meta.cwd, "/");
    assert!(exec.platform.is_some());

    assert_eq!(
        terminal.inputs,
        vec![pb::Input {
            digest: exec_digest.clone(),
            index: 0
        }]
    );
    assert!(terminal.op.is_none() && terminal.platform.is_none() && terminal.constraints.is_none());
    assert_eq!(
        caps_of(&definition, terminal_digest),
        [caps::CONSTRAINTS, caps::PLATFORM]
    );
    assert_eq!(caps_of(&definition, image_digest), [caps::SOURCE_IMAGE]);
    assert_eq!(
        caps_of(&definition, exec_digest),
        [
            caps::EXEC_META_BASE,
            caps::EXEC_META_SETS_DEFAULT_PATH,
            caps::EXEC_MOUNT_BIND
        ]
    );
    // Re-encoding what we decoded gives the same bytes.
    assert_eq!(definition.encode_to_vec(), bytes);
}

fn sample_graph() -> State {
    let context = Local::new("context")
        .session_id("s1")
        .exclude_patterns(["target"])
        .shared_key_hint("context")
        .into_state();
    let deps = State::image("rust:1.88")
        .with_dir("/src")
        .copy(&context, "Cargo.toml", ".", CopyOptions::default())
        .run(Run::shell("cargo fetch").mount(Mount::cache(
            "/usr/local/cargo/registry",
            "cargo",
            CacheSharing::Locked,
        )));
    let build = deps
        .copy(&context, ".", ".", CopyOptions::default())
        .run(Run::args(["cargo", "build", "--release"]).env("CARGO_INCREMENTAL", "0"));
    State::image("debian:12")
        .with_env("APP", "demo")
        .with_user("app")
        .copy(
            &build,
            "target/release/demo",
            "/usr/local/bin/",
            CopyOptions::default(),
        )
}

#[test]
fn same_graph_same_bytes() {
    let first = sample_graph()
        .to_bytes(&MarshalOptions::default())
        .expect("marshal");
    let second = sample_graph()
        .to_bytes(&MarshalOptions::default())
        .expect("marshal");
    assert_eq!(first, second);
    let state = sample_graph();
    assert_eq!(
        state.to_bytes(&MarshalOptions::default()).expect("marshal"),
        state
            .clone()
            .to_bytes(&MarshalOptions::default())
            .expect("marshal")
    );
}

#[test]
fn construction_order_does_not_change_bytes() {
    // Branches built in opposite orders, settings applied in opposite orders,
    // mounts added in opposite orders.
    let a = {
        let tools = State::image("alpine").run("apk add git");
        let app = State::local("context");
        State::image("debian")
            .with_dir("/app")
            .with_user("app")
            .run(
                Run::shell("make")
                    .mount(Mount::bind("/tools", &tools, "/usr/bin", true))
                    .mount(Mount::cache("/cache", "make", CacheSharing::Shared))
                    .mount(Mount::bind("/src", &app, "", true)),
            )
    };
    let b = {
        let app = State::local("context");
        let tools = State::image("alpine").run("apk add git");
        State::image("debian")
            .with_user("app")
            .with_dir("/app")
            .run(
                Run::shell("make")
                    .mount(Mount::bind("/src", &app, "/", true))
                    .mount(Mount::cache("/cache", "make", CacheSharing::Shared))
                    .mount(Mount::bind("/tools", &tools, "usr/bin/", true)),
            )
    };
    let options = MarshalOptions::default();
    assert_eq!(
        a.to_bytes(&options).expect("a"),
        b.to_bytes(&options).expect("b")
    );
}

#[test]
fn shared_sub_graphs_are_emitted_once() {
    let one = State::image("debian").run("echo one");
    let two = State::image("debian").run("echo two");
    let both = one.copy(&two, "/etc/hostname", "/copied", CopyOptions::default());
    let definition = marshal(&both);
    let all = ops(&definition);
    // one image, two execs, one file op, terminal
    assert_eq!(all.len(), 5);
    let sources = all
        .iter()
        .filter(|(_, op)| matches!(op.op, Some(Op::Source(_))))
        .count();
    assert_eq!(sources, 1);
    // every op is listed once and has metadata
    let mut digests: Vec<&String> = all.iter().map(|(d, _)| d).collect();
    digests.sort();
    digests.dedup();
    assert_eq!(digests.len(), all.len());
    assert_eq!(definition.metadata.len(), all.len());
    // post-order: every input appears before its user
    for (position, (_, op)) in all.iter().enumerate() {
        for input in &op.inputs {
            let at = all
                .iter()
                .position(|(d, _)| *d == input.digest)
                .expect("input present");
            assert!(at < position);
        }
    }
}

#[test]
fn mount_outputs_are_numbered_in_target_order() {
    let base = State::image("debian").with_dir("/work");
    let context = State::local("context");
    let exec = base.exec(
        Run::shell("build")
            .mount(Mount::secret(
                "/run/secrets/token",
                "token",
                0,
                0,
                0o400,
                false,
            ))
            .mount(Mount::bind("out", &base, "", false))
            .mount(Mount::tmpfs("/tmp"))
            .mount(Mount::bind("/ro", &context, "sub", true))
            .mount(Mount::cache("/cache", "c", CacheSharing::Private))
            .mount(Mount::bind("/a", &context, "", false)),
    );
    let out = exec.mount("/work/out").expect("writable mount output");
    let definition = marshal(&out);
    let op = result_op(&definition);
    let mounts = &exec_of(&op).mounts;
    let summary: Vec<(&str, i64, i64)> = mounts
        .iter()
        .map(|m| (m.dest.as_str(), m.input, m.output))
        .collect();
    assert_eq!(
        summary,
        [
            ("/", 0, 0),
            ("/a", 1, 1),
            ("/cache", -1, -1),
            ("/ro", 1, -1),
            ("/tmp", -1, -1),
            ("/work/out", 0, 2),
            ("/run/secrets/token", -1, -1),
        ]
    );
    assert_eq!(op.inputs.len(), 2, "equal inputs share one index");
    assert_eq!(mounts[3].selector, "/sub");
    assert!(mounts[3].readonly);
    let result = result_input(&definition);
    assert_eq!(result.index, 2);
    assert!(exec.mount("/tmp").is_none());

    let exec_caps = caps_of(&definition, &result.digest);
    for cap in [
        caps::EXEC_MOUNT_BIND,
        caps::EXEC_MOUNT_SELECTOR,
        caps::EXEC_MOUNT_CACHE,
        caps::EXEC_MOUNT_CACHE_SHARING,
        caps::EXEC_MOUNT_TMPFS,
        caps::EXEC_MOUNT_SECRET,
    ] {
        assert!(exec_caps.iter().any(|c| c == cap), "missing {cap}");
    }
    assert!(!exec_caps.iter().any(|c| c == caps::EXEC_MOUNT_TMPFS_SIZE));
}

#[test]
fn file_actions_chain_through_their_results() {
    let base = State::image("debian").with_dir("/app");
    let context = State::local("context");
    let state = base.file(
        FileActions::new()
            .mkdir("data", 0o755, true, Some(Chown::ids(1000, 1000)))
            .copy(
                &context.with_dir("/src"),
                "main.rs",
                "data/",
                CopyOptions {
                    owner: Some(Chown::parse("app:staff")),
                    mode: Some(0o644),
                    include_patterns: vec!["*.rs".into()],
                    ..CopyOptions::default()
                },
            )
            .mkfile("/etc/motd", 0o644, "hello\n", None)
            .rm("tmp/*", true, true)
            .custom_name("prepare files"),
    );
    let definition = marshal(&state);
    let op = result_op(&definition);
    assert!(op.platform.is_none(), "file ops carry no platform");
    assert_eq!(op.inputs.len(), 2);
    let actions = &file_of(&op).actions;
    let indices: Vec<(i64, i64, i64)> = actions
        .iter()
        .map(|a| (a.input, a.secondary_input, a.output))
        .collect();
    assert_eq!(indices, [(0, -1, -1), (2, 1, -1), (3, -1, -1), (4, -1, 0)]);

    let Some(Action::Mkdir(mkdir)) = &actions[0].action else {
        panic!("mkdir")
    };
    assert_eq!(
        (mkdir.path.as_str(), mkdir.mode, mkdir.timestamp),
        ("/app/data", 0o755, -1)
    );
    let Some(Action::Copy(copy)) = &actions[1].action else {
        panic!("copy")
    };
    assert_eq!(
        (copy.src.as_str(), copy.dest.as_str(), copy.mode),
        ("/src/main.rs", "/app/data/", 0o644)
    );
    let owner = copy
        .owner
        .as_ref()
        .and_then(|o| o.user.as_ref())
        .and_then(|u| u.user.as_ref());
    assert_eq!(
        owner,
        Some(&User::ByName(pb::NamedUserOpt {
            name: "app".into(),
            input: 0
        }))
    );
    let Some(Action::Rm(rm)) = &actions[3].action else {
        panic!("rm")
    };
    assert_eq!(rm.path, "/app/tmp/*");

    let digest = &result_input(&definition).digest;
    let metadata = &definition.metadata[digest];
    assert_eq!(metadata.description["llb.customname"], "prepare files");
    let file_caps = caps_of(&definition, digest);
    assert_eq!(
        file_caps,
        [
            caps::FILE_BASE,
            caps::FILE_COPY_INCLUDE_EXCLUDE_PATTERNS,
            caps::FILE_RM_WILDCARD,
            caps::META_DESCRIPTION
        ]
    );
}

#[test]
fn file_actions_on_scratch_use_minus_one() {
    let state = State::scratch().file(
        FileActions::new()
            .mkfile("/a", 0o600, "x", Some(Chown::parse("app")))
            .mkdir("/b", 0o700, false, None),
    );
    let definition = marshal(&state);
    let op = result_op(&definition);
    assert!(op.inputs.is_empty());
    let actions = &file_of(&op).actions;
    assert_eq!((actions[0].input, actions[1].input), (-1, 0));
    let Some(Action::Mkfile(mkfile)) = &actions[0].action else {
        panic!("mkfile")
    };
    let owner = mkfile
        .owner
        .as_ref()
        .and_then(|o| o.user.as_ref())
        .and_then(|u| u.user.as_ref());
    assert_eq!(
        owner,
        Some(&User::ByName(pb::NamedUserOpt {
            name: "app".into(),
            input: -1
        }))
    );
}

#[test]
fn env_dir_and_user_reach_the_exec() {
    let state = State::image("debian")
        .with_env("PATH", "/usr/bin:/bin")
        .with_env("LANG", "C.UTF-8")
        .with_dir("/srv")
        .with_user("app")
        .run(
            Run::shell("make")
                .env("LANG", "C")
                .dir("build")
                .user("root")
                .network(Network::None),
        );
    let definition = marshal(&state);
    let op = result_op(&definition);
    let exec = exec_of(&op);
    let meta = exec.meta.as_ref().expect("meta");
    assert_eq!(meta.env, ["PATH=/usr/bin:/bin", "LANG=C"]);
    assert_eq!(meta.cwd, "/srv/build");
    assert_eq!(meta.user, "root");
    assert_eq!(exec.network, pb::NetMode::None as i32);
    let digest = &result_input(&definition).digest;
    let exec_caps = caps_of(&definition, digest);
    assert!(exec_caps.iter().any(|c| c == caps::EXEC_META_NETWORK));
    assert!(!exec_caps
        .iter()
        .any(|c| c == caps::EXEC_META_SETS_DEFAULT_PATH));
    // The state after the run keeps its own settings, not the run's overrides.
    assert_eq!(state.dir(), "/srv");
    assert_eq!(state.user(), Some("app"));
    assert_eq!(state.get_env("LANG"), Some("C.UTF-8"));
}

#[test]
fn platform_goes_to_images_and_execs_only() {
    let arm = Platform::new("linux", "arm64").with_variant("v8");
    let state = Image::new("debian")
        .platform(arm.clone())
        .resolve_mode(ResolveMode::PreferLocal)
        .into_state()
        .copy(
            &State::local("context"),
            ".",
            "/src",
            CopyOptions::default(),
        )
        .run("make");
    assert_eq!(state.platform(), Some(&arm));
    let definition = marshal(&state);
    for (_, op) in ops(&definition) {
        let platform = op.platform.as_ref().map(Platform::from);
        match op.op {
            Some(Op::Source(source)) if source.identifier.starts_with("docker-image://") => {
                assert_eq!(platform.as_ref(), Some(&arm));
                assert_eq!(source.attrs["image.resolvemode"], "local");
            }
            Some(Op::Exec(_)) => assert_eq!(platform.as_ref(), Some(&arm)),
            _ => assert_eq!(platform, None),
        }
    }
}

#[test]
fn local_source_attrs_and_caps() {
    let state = Local::new("dockerfile")
        .session_id("sess")
        .follow_paths(["stack.yaml", "stack.yaml.dockerignore"])
        .include_patterns(["*.yaml"])
        .shared_key_hint("dockerfile")
        .differ(Differ::None)
        .custom_name("[internal] load build definition from stack.yaml")
        .into_state();
    // A lone source still needs the terminal op.
    let definition = marshal(&state);
    let all = ops(&definition);
    let (digest, op) = &all[0];
    let Some(Op::Source(source)) = &op.op else {
        panic!("source")
    };
    assert_eq!(source.identifier, "local://dockerfile");
    assert_eq!(
        source.attrs["local.followpaths"],
        r#"["stack.yaml","stack.yaml.dockerignore"]"#
    );
    assert_eq!(source.attrs["local.includepattern"], r#"["*.yaml"]"#);
    assert_eq!(source.attrs["local.differ"], "none");
    assert!(op.platform.is_none());
    assert_eq!(
        caps_of(&definition, digest),
        [
            caps::META_DESCRIPTION,
            caps::SOURCE_LOCAL,
            caps::SOURCE_LOCAL_DIFFER,
            caps::SOURCE_LOCAL_FOLLOW_PATHS,
            caps::SOURCE_LOCAL_INCLUDE_PATTERNS,
            caps::SOURCE_LOCAL_SESSION_ID,
            caps::SOURCE_LOCAL_SHARED_KEY_HINT,
        ]
    );
    let terminal = &all[1].0;
    assert!(caps_of(&definition, terminal)
        .iter()
        .any(|c| c == caps::META_DESCRIPTION));
}

#[test]
fn source_locations_point_into_source_infos() {
    let state = State::image("debian")
        .run(
            Run::shell("make")
                .location(SourceLocation::lines(0, 4, 6))
                .ignore_cache(true),
        )
        .file(
            FileActions::new()
                .mkdir("/x", 0o755, false, None)
                .location(SourceLocation::lines(0, 9, 9)),
        );
    let options = MarshalOptions {
        source_infos: vec![SourceInfo {
            filename: "stack.yaml".into(),
            data: b"...".to_vec(),
            language: "yaml".into(),
        }],
        ..MarshalOptions::default()
    };
    let definition = state.marshal(&options).expect("marshal");
    validate(&definition).expect("valid");
    let source = definition.source.as_ref().expect("source map");
    assert_eq!(source.infos[0].filename, "stack.yaml");
    assert_eq!(source.locations.len(), 2);
    let all = ops(&definition);
    let exec_digest = &all[1].0;
    let location = &source.locations[exec_digest].locations[0];
    assert_eq!(location.source_index, 0);
    let range = &location.ranges[0];
    assert_eq!(
        (range.start.map(|p| p.line), range.end.map(|p| p.line)),
        (Some(4), Some(6))
    );
    assert!(definition.metadata[exec_digest].ignore_cache);
    let terminal = &all.last().expect("terminal").0;
    assert!(caps_of(&definition, terminal)
        .iter()
        .any(|c| c == caps::META_IGNORE_CACHE));

    let json = dump::to_json(&definition);
    assert_eq!(json["ops"][1]["locations"][0]["filename"], "stack.yaml");
    assert_eq!(json["ops"][1]["locations"][0]["ranges"][0], "4-6");

    let missing = state.marshal(&MarshalOptions::default());
    assert!(matches!(
        missing,
        Err(LlbError::SourceIndexOutOfRange { index: 0, len: 0 })
    ));
}

#[test]
fn validate_rejects_broken_definitions() {
    let good = marshal(&State::image("debian").run("true"));

    let mut dangling = good.clone();
    let mut exec = pb::Op::decode(dangling.def[1].as_slice()).expect("exec");
    exec.inputs[0].digest = "sha256:0000".into();
    dangling.def[1] = exec.encode_to_vec();
    assert!(matches!(
        validate(&dangling),
        Err(LlbError::MissingInput { .. })
    ));

    let mut no_terminal = good.clone();
    no_terminal.def.pop();
    assert!(matches!(validate(&no_terminal), Err(LlbError::BadTerminal)));

    let mut orphan = good.clone();
    orphan
        .metadata
        .insert("sha256:ffff".into(), pb::OpMetadata::default());
    assert!(matches!(
        validate(&orphan),
        Err(LlbError::OrphanKey {
            what: "metadata",
            ..
        })
    ));

    let mut lonely = good.clone();
    lonely.def.truncate(1);
    assert!(matches!(validate(&lonely), Err(LlbError::TooFewOps(1))));

    let mut garbage = good;
    garbage.def[0] = vec![0xff, 0xff];
    assert!(matches!(validate(&garbage), Err(LlbError::Decode { .. })));

    assert!(decode_definition(&[0x0a]).is_err());
    assert!(validate(
        &State::scratch()
            .marshal(&MarshalOptions::default())
            .expect("scratch")
    )
    .is_ok());
}

#[test]
fn empty_run_is_an_error() {
    let state = State::image("debian").run(Run::args(Vec::<String>::new()));
    assert!(matches!(
        state.marshal(&MarshalOptions::default()),
        Err(LlbError::EmptyArgs)
    ));
}

#[test]
fn dump_is_readable_and_deterministic() {
    let definition = marshal(&sample_graph());
    let json = dump::to_json(&definition);
    assert_eq!(json, dump::to_json(&marshal(&sample_graph())));
    let ops = json["ops"].as_array().expect("ops");
    assert_eq!(ops.len(), definition.def.len());
    assert_eq!(ops.last().expect("terminal")["kind"], "terminal");
    let exec = ops.iter().find(|op| op["kind"] == "exec").expect("an exec");
    assert_eq!(exec["exec"]["args"][2], "cargo fetch");
    assert_eq!(exec["exec"]["cwd"], "/src");
    assert_eq!(exec["exec"]["mounts"][1]["cache"]["sharing"], "locked");
    assert_eq!(exec["platform"], "linux/amd64");
    let file = ops
        .iter()
        .find(|op| op["kind"] == "file")
        .expect("a file op");
    assert_eq!(file["file"]["actions"][0]["action"], "copy");
    assert_eq!(file["file"]["actions"][0]["src"], "/Cargo.toml");
    assert_eq!(file["file"]["actions"][0]["dest"], "/src");
    let text = dump::to_pretty_string(&definition);
    assert!(text.contains("\"identifier\": \"local://context\""));
}

#[test]
fn a_root_mount_replaces_the_state_root() {
    let other = State::image("alpine");
    let state = State::image("debian")
        .with_dir("/w")
        .run(Run::shell("ls").mount(Mount::bind("/", &other, "", false)));
    assert_eq!(state.dir(), "/w");
    let op = result_op(&marshal(&state));
    let mounts = &exec_of(&op).mounts;
    assert_eq!(mounts.len(), 1);
    let Some(Op::Source(source)) = &ops(&marshal(&state))[0].1.op else {
        panic!("source")
    };
    assert_eq!(
        source.identifier,
        "docker-image://docker.io/library/alpine:latest"
    );
}
