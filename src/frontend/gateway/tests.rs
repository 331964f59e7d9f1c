//! Unit tests of the frontend run against a stub BuildKit.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use strata_proto::gateway::result;
use strata_proto::pb;

use super::build::*;
use super::checks::*;
use super::inputs::*;
use super::output::*;
use super::*;
use crate::lower::{self, Platform};
use crate::spec::ErrorCode;

/// A BuildKit stand-in: serves one stack file and a set of images, records calls.
#[derive(Default)]
pub(crate) struct StubBridge {
    /// Files served by ReadFile, by path (whatever the ref).
    pub files: BTreeMap<String, Vec<u8>>,
    pub images: BTreeMap<String, (String, serde_json::Value)>,
    pub inputs: BTreeMap<String, pb::Definition>,
    pub llb_caps: Vec<&'static str>,
    pub solves: Vec<gw::SolveRequest>,
    pub resolves: Vec<gw::ResolveImageConfigRequest>,
    pub warnings: Vec<gw::WarnRequest>,
    pub reads: Vec<gw::ReadFileRequest>,
    /// Files of the build context for StatFile/ReadDir (empty: every path is a file).
    pub context: Vec<String>,
    /// Paths asked with StatFile.
    pub stats: Vec<String>,
}

impl StubBridge {
    pub(crate) fn with_stack(text: &str) -> StubBridge {
        StubBridge {
            files: BTreeMap::from([("strata.toml".to_owned(), text.as_bytes().to_vec())]),
            ..Default::default()
        }
    }
}

impl Bridge for StubBridge {
    async fn ping(&mut self) -> Result<gw::PongResponse, Status> {
        Ok(gw::PongResponse {
            llb_caps: self
                .llb_caps
                .iter()
                .map(|id| strata_proto::apicaps::ApiCap {
                    id: (*id).to_owned(),
                    enabled: true,
                    ..Default::default()
                })
                .collect(),
            workers: vec![strata_proto::types::WorkerRecord {
                platforms: vec![pb::Platform {
                    os: "linux".into(),
                    architecture: "amd64".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        })
    }
    async fn inputs(&mut self) -> Result<gw::InputsResponse, Status> {
        Ok(gw::InputsResponse {
            definitions: self.inputs.clone(),
        })
    }
    async fn solve(&mut self, req: gw::SolveRequest) -> Result<gw::SolveResponse, Status> {
        self.solves.push(req);
        Ok(gw::SolveResponse {
            r#ref: String::new(),
            result: Some(gw::Result {
                result: Some(result::Result::Ref(gw::Ref {
                    id: format!("ref-{}", self.solves.len()),
                    def: None,
                })),
                ..Default::default()
            }),
        })
    }
    async fn read_file(&mut self, req: gw::ReadFileRequest) -> Result<Vec<u8>, Status> {
        let file = self.files.get(&req.file_path).cloned();
        self.reads.push(req);
        file.ok_or_else(|| Status::not_found("no such file or directory"))
    }
    async fn read_dir(
        &mut self,
        req: gw::ReadDirRequest,
    ) -> Result<Vec<strata_proto::fsutil::Stat>, Status> {
        let dir = req.dir_path.trim_matches('/');
        let mut names: Vec<String> = self
            .context
            .iter()
            .filter_map(|p| match dir {
                "" => Some(p.as_str()),
                d => p.strip_prefix(d).and_then(|r| r.strip_prefix('/')),
            })
            .map(|r| r.split('/').next().unwrap_or_default().to_owned())
            .collect();
        names.dedup();
        Ok(names
            .into_iter()
            .map(|path| strata_proto::fsutil::Stat {
                path,
                mode: 0o100644,
                ..Default::default()
            })
            .collect())
    }
    async fn stat_file(
        &mut self,
        req: gw::StatFileRequest,
    ) -> Result<gw::StatFileResponse, Status> {
        self.stats.push(req.path.clone());
        let p = req.path.as_str();
        let mode = if self.context.is_empty() || self.context.iter().any(|c| c == p) {
            0o100644
        } else if self.context.iter().any(|c| c.starts_with(&format!("{p}/"))) {
            1 << 31
        } else {
            return Err(Status::not_found("no such file or directory"));
        };
        Ok(gw::StatFileResponse {
            stat: Some(strata_proto::fsutil::Stat {
                path: req.path,
                mode,
                ..Default::default()
            }),
        })
    }
    async fn resolve_image_config(
        &mut self,
        req: gw::ResolveImageConfigRequest,
    ) -> Result<gw::ResolveImageConfigResponse, Status> {
        let answer = self.images.get(&req.r#ref).cloned();
        self.resolves.push(req.clone());
        match answer {
            Some((digest, config)) => Ok(gw::ResolveImageConfigResponse {
                digest,
                config: serde_json::to_vec(&config).unwrap_or_default(),
                r#ref: String::new(),
            }),
            None => Err(Status::unknown(format!("{}: not found", req.r#ref))),
        }
    }
    async fn warn(&mut self, req: gw::WarnRequest) -> Result<(), Status> {
        self.warnings.push(req);
        Ok(())
    }
    async fn finish(&mut self, _: gw::ReturnRequest) -> Result<(), Status> {
        Ok(())
    }
}

pub(crate) fn launch(pairs: &[(&str, &str)]) -> Launch {
    let mut vars = vec![(
        OsString::from("BUILDKIT_SESSION_ID"),
        OsString::from("session-1"),
    )];
    for (i, (k, v)) in pairs.iter().enumerate() {
        vars.push((
            OsString::from(format!("BUILDKIT_FRONTEND_OPT_{i}")),
            OsString::from(format!("{k}={v}")),
        ));
    }
    Launch::from_vars(vars)
}

pub(crate) fn run(bridge: &mut StubBridge, launch: &Launch) -> Result<gw::Result, FrontendError> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(build(bridge, launch))
}

const STACK: &str = r#"# syntax=strata/frontend:latest
[stack]
name = "tiny"
image = "tiny/{component}:latest"

[args]
gpu = false

[component.x]
from = "strata.local/busybox:1.36"
env = { GREETING = "hello" }
workdir = "/work"
entrypoint = ["sh", "-c", "echo $GREETING"]

[component.y]
from = "strata.local/busybox:1.36"
when = "gpu"
"#;

fn stub() -> StubBridge {
    StubBridge {
        images: BTreeMap::from([(
            "strata.local/busybox:1.36".to_owned(),
            (
                String::new(),
                serde_json::json!({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"]}}),
            ),
        )]),
        ..StubBridge::with_stack(STACK)
    }
}

#[test]
fn reads_the_stack_file_from_the_dockerfile_local() {
    let mut b = stub();
    let _ = run(
        &mut b,
        &launch(&[("filename", "strata.toml"), ("target", "x")]),
    );
    let first = &b.solves[0];
    let def = first.definition.as_ref().expect("definition");
    assert_eq!(def.def.len(), 2);
    let op = pb::Op::decode(def.def[0].as_slice()).expect("op");
    let Some(pb::op::Op::Source(src)) = op.op else {
        panic!("not a source op")
    };
    assert_eq!(src.identifier, "local://dockerfile");
    assert_eq!(src.attrs["local.session"], "session-1");
    assert_eq!(src.attrs["local.followpaths"], r#"["strata.toml"]"#);
    assert_eq!(src.attrs["local.sharedkeyhint"], "dockerfile");
    assert_eq!(src.attrs["local.differ"], "none");
    assert!(first.allow_result_return && first.allow_result_array_ref);
    assert_eq!(b.reads[0].r#ref, "ref-1");
    assert_eq!(b.reads[0].file_path, "strata.toml");
}

#[test]
fn a_dockerfile_input_replaces_the_local_read() {
    let mut b = stub();
    let (def, digest) = single_source_definition(
        pb::SourceOp {
            identifier: "git://example/repo".into(),
            attrs: BTreeMap::new(),
        },
        "remote".into(),
        &[],
    );
    b.inputs.insert("dockerfile".into(), def.clone());
    let _ = run(&mut b, &launch(&[("target", "x")]));
    assert_eq!(b.solves[0].definition.as_ref(), Some(&def));
    let _ = digest;
}

#[test]
fn base_images_are_probed_without_a_log_name() {
    let mut b = stub();
    let _ = run(
        &mut b,
        &launch(&[("target", "x"), ("image-resolve-mode", "local")]),
    );
    if lower::external_images(
        &crate::load("s", STACK.as_bytes(), &Default::default()).expect("loads"),
        "x",
    )
    .is_empty()
    {
        return; // lower does not list images yet
    }
    let r = &b.resolves[0];
    assert_eq!(r.r#ref, "strata.local/busybox:1.36");
    assert_eq!(r.resolve_mode, "local");
    assert!(r.log_name.is_empty());
    assert_eq!(r.platform.as_ref().map(|p| p.os.as_str()), Some("linux"));
}

#[test]
fn builds_the_target_and_returns_its_config() {
    let mut b = stub();
    let res = run(
        &mut b,
        &launch(&[
            ("target", "x"),
            ("label:org.example", "yes"),
            ("no-cache", ""),
        ]),
    )
    .expect("builds");
    let Some(result::Result::Ref(r)) = &res.result else {
        panic!("no ref: {res:?}")
    };
    assert_eq!(r.id, format!("ref-{}", b.solves.len()));
    let last = b.solves.last().expect("solved");
    assert!(last.allow_result_return && last.allow_result_array_ref);
    let config: serde_json::Value =
        serde_json::from_slice(&res.metadata[IMAGE_CONFIG_KEY]).expect("JSON");
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["config"]["WorkingDir"], "/work");
    assert_eq!(config["config"]["Entrypoint"][0], "sh");
    assert_eq!(config["config"]["Labels"]["org.example"], "yes");
    let env = config["config"]["Env"].to_string();
    assert!(env.contains("GREETING=hello"), "{env}");
}

#[test]
fn tests_are_evaluated_apart_before_the_image_returns_unless_skipped() {
    let text = STACK.replace(
        "entrypoint = [\"sh\", \"-c\", \"echo $GREETING\"]",
        "entrypoint = [\"sh\", \"-c\", \"echo $GREETING\"]\ntest = [\"true\", { cmd = \"false\", name = \"f\" }]",
    );
    let mut b = StubBridge {
        images: stub().images,
        ..StubBridge::with_stack(&text)
    };
    let res = run(&mut b, &launch(&[("target", "x")])).expect("builds");
    let evaluated: Vec<usize> = (0..b.solves.len())
        .filter(|i| b.solves[*i].evaluate)
        .collect();
    assert_eq!(evaluated.len(), 3, "the image, then one solve per test");
    let image = evaluated[0];
    assert!(
        b.solves[image + 1..].iter().all(|s| s.evaluate),
        "the tests come after the image"
    );
    let Some(result::Result::Ref(r)) = &res.result else {
        panic!("no ref")
    };
    assert_eq!(r.id, format!("ref-{}", image + 1), "the image is returned");

    let mut b = StubBridge {
        images: stub().images,
        ..StubBridge::with_stack(&text)
    };
    run(
        &mut b,
        &launch(&[("target", "x"), ("build-arg:STRATA_SKIP_TESTS", "1")]),
    )
    .expect("builds");
    assert_eq!(
        b.solves.iter().filter(|s| s.evaluate).count(),
        1,
        "the tests are skipped; the image is still built here"
    );
}

#[test]
fn cache_imports_reach_the_solve() {
    let mut b = stub();
    run(
        &mut b,
        &launch(&[
            ("target", "x"),
            (
                "cache-imports",
                r#"[{"Type":"registry","Attrs":{"ref":"127.0.0.1:5000/c"}}]"#,
            ),
        ]),
    )
    .expect("builds");
    let last = b.solves.last().expect("solved");
    assert_eq!(last.cache_imports.len(), 1);
    assert_eq!(last.cache_imports[0].r#type, "registry");
    // The stack-file read carries none.
    assert!(b.solves[0].cache_imports.is_empty());
}

#[test]
fn warnings_go_through_warn() {
    let mut b = StubBridge {
        images: stub().images,
        ..StubBridge::with_stack(
            "[stack]\nname = \"w\"\n[component.x]\nfrom = \"strata.local/busybox:latest\"\n",
        )
    };
    let _ = run(&mut b, &launch(&[("target", "x")]));
    // `latest` and no [user] policy: unpinned-image and root-user.
    assert_eq!(b.warnings.len(), 2, "{:?}", b.warnings);
    let w = &b.warnings[0];
    assert_eq!(w.level, 1);
    assert!(w.digest.starts_with("sha256:"));

    // `strata build` prints them itself and asks each target for none.
    let mut b = StubBridge {
        images: stub().images,
        ..StubBridge::with_stack(
            "[stack]\nname = \"w\"\n[component.x]\nfrom = \"strata.local/busybox:latest\"\n",
        )
    };
    let _ = run(
        &mut b,
        &launch(&[("target", "x"), ("build-arg:STRATA_WARNINGS", "none")]),
    );
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
}

#[test]
fn stack_errors_are_located() {
    let mut b = stub();
    let e = run(&mut b, &launch(&[("build-arg:gpu", "maybe")])).expect_err("bad arg");
    let status = e.to_status();
    assert!(
        status.message.starts_with("strata.toml:7:1: `gpu=maybe`"),
        "{}",
        status.message
    );
    assert_eq!(status.details.len(), 1);
}

/// A missing copy source is a located error with a did-you-mean from
/// the context's listing, found before the build is solved: the only
/// solves load the stack file and the named paths.
#[test]
fn a_missing_context_input_fails_before_the_build_is_solved() {
    let stack = "[stack]\nname = \"c\"\n[component.x]\nfrom = \"strata.local/busybox:1.36\"\ncopy = [{ src = \"scr/main.py\", dst = \"/app/\" }]\n";
    let mut b = StubBridge {
        context: vec!["src/main.py".to_owned()],
        ..StubBridge::with_stack(stack)
    };
    b.images = stub().images;
    let e = run(&mut b, &launch(&[("target", "x")])).expect_err("missing input");
    let s = e.to_status();
    assert!(
        s.message
            .starts_with("strata.toml:5:17: copy source `scr/main.py` is not in the build context"),
        "{}",
        s.message
    );
    assert!(e.to_string().contains("did you mean `src/main.py`?"), "{e}");
    for solve in &b.solves[1..] {
        let def = solve.definition.as_ref().expect("definition");
        let names: Vec<&String> = def
            .metadata
            .values()
            .filter_map(|m| m.description.get("llb.customname"))
            .collect();
        assert!(
            names.iter().all(|n| n.starts_with("[internal] ")),
            "{names:?}"
        );
    }
    assert!(b.stats.contains(&"scr/main.py".to_owned()), "{:?}", b.stats);
}

#[test]
fn unknown_and_disabled_targets() {
    let mut b = stub();
    let e = run(&mut b, &launch(&[("target", "z")])).expect_err("unknown");
    assert!(
        e.to_string().contains("target `z` is not a component"),
        "{e}"
    );
    let e = run(&mut b, &launch(&[("target", "y")])).expect_err("disabled");
    let s = e.to_status();
    assert!(
        s.message
            .contains("component `y` is switched off (when gpu: gpu=false (default))"),
        "{}",
        s.message
    );
    assert_eq!(s.details.len(), 1);
}

#[test]
fn missing_images_point_at_the_component() {
    let mut b = stub();
    b.images.clear();
    let Err(e) = run(&mut b, &launch(&[("target", "x")])) else {
        return;
    };
    if b.resolves.is_empty() {
        return; // lower does not list images yet
    }
    let s = e.to_status();
    assert!(
        s.message
            .contains("cannot resolve image `strata.local/busybox:1.36`"),
        "{}",
        s.message
    );
    assert!(s.message.starts_with("strata.toml:9:"), "{}", s.message);
}

#[test]
fn remote_contexts_are_refused_clearly() {
    let mut b = stub();
    let e = run(
        &mut b,
        &launch(&[("context", "https://github.com/x/y.git")]),
    )
    .expect_err("remote");
    assert!(e.to_string().contains("local directory only"), "{e}");
    let e =
        run(&mut b, &launch(&[("context:x", "docker-image://busybox")])).expect_err("component");
    assert!(e.to_string().contains("is a component of the stack"), "{e}");
    let e = run(
        &mut b,
        &launch(&[("context:src", "local:other"), ("target", "x")]),
    )
    .expect_err("local");
    assert!(
        e.to_string()
            .contains("local: named contexts are not supported"),
        "{e}"
    );
}

#[test]
fn one_platform_keeps_the_single_ref_result() {
    let mut b = stub();
    let res = run(
        &mut b,
        &launch(&[("target", "x"), ("platform", "linux/arm64")]),
    )
    .expect("builds");
    assert!(
        matches!(res.result, Some(result::Result::Ref(_))),
        "{res:?}"
    );
    assert!(!res.metadata.contains_key(PLATFORMS_KEY));
    let config: serde_json::Value =
        serde_json::from_slice(&res.metadata[IMAGE_CONFIG_KEY]).expect("JSON");
    assert_eq!(config["architecture"], "arm64");
}

#[test]
fn several_platforms_give_a_ref_and_a_config_each() {
    let mut b = stub();
    let res = run(
        &mut b,
        &launch(&[("target", "x"), ("platform", "linux/amd64,linux/arm/v7")]),
    )
    .expect("builds");
    let Some(result::Result::Refs(refs)) = &res.result else {
        panic!("not a ref map: {res:?}")
    };
    assert_eq!(
        refs.refs.keys().collect::<Vec<_>>(),
        ["linux/amd64", "linux/arm/v7"]
    );
    assert_ne!(refs.refs["linux/amd64"].id, refs.refs["linux/arm/v7"].id);
    // One lowering per platform, each for its own platform.
    let platforms: Vec<String> = b
        .solves
        .iter()
        .filter_map(|s| s.definition.as_ref())
        .flat_map(|d| d.def.iter())
        .filter_map(|op| pb::Op::decode(op.as_slice()).ok())
        .filter_map(|op| op.platform)
        .map(|p| format!("{}/{}/{}", p.os, p.architecture, p.variant))
        .collect();
    assert!(
        platforms.contains(&"linux/amd64/".to_owned()),
        "{platforms:?}"
    );
    assert!(
        platforms.contains(&"linux/arm/v7".to_owned()),
        "{platforms:?}"
    );
    // Progress names say the platform, as the Dockerfile frontend's do.
    let names: Vec<&String> = b
        .solves
        .iter()
        .filter_map(|s| s.definition.as_ref())
        .flat_map(|d| d.metadata.values())
        .filter_map(|m| m.description.get("llb.customname"))
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("[linux/arm/v7 x] ")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("[linux/amd64 x] ")),
        "{names:?}"
    );

    let listed: serde_json::Value =
        serde_json::from_slice(&res.metadata[PLATFORMS_KEY]).expect("JSON");
    assert_eq!(
        listed,
        serde_json::json!({"Platforms": [
            {"ID": "linux/amd64", "Platform": {"architecture": "amd64", "os": "linux"}},
            {"ID": "linux/arm/v7", "Platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
        ]})
    );
    assert!(!res.metadata.contains_key(IMAGE_CONFIG_KEY));
    let config = |key: &str| -> serde_json::Value {
        serde_json::from_slice(&res.metadata[&format!("{IMAGE_CONFIG_KEY}/{key}")]).expect("JSON")
    };
    let arm = config("linux/arm/v7");
    // The stub's base config says amd64: each image names its own platform.
    assert_eq!(arm["architecture"], "arm");
    assert_eq!(arm["variant"], "v7");
    assert_eq!(arm["os"], "linux");
    assert_eq!(arm["config"]["WorkingDir"], "/work");
    let amd = config("linux/amd64");
    assert_eq!(amd["architecture"], "amd64");
    assert!(amd.get("variant").is_none(), "{amd}");
}

const PER_ARCH: &str = r#"[stack]
name = "multi"

[component.base]
from = "strata.local/busybox-{TARGETARCH}:1.36"
env = { ARCH = "{TARGETARCH}", TARGET = "{TARGETPLATFORM}", BUILD = "{BUILDARCH}" }

[component.extra]
from = "base"
when = "TARGETARCH == 'amd64'"
"#;

fn per_arch_stub() -> StubBridge {
    let images = ["amd64", "arm64"].map(|a| {
        (
            format!("strata.local/busybox-{a}:1.36"),
            (
                String::new(),
                serde_json::json!({"architecture": a, "os": "linux", "config": {}}),
            ),
        )
    });
    StubBridge {
        images: BTreeMap::from(images),
        ..StubBridge::with_stack(PER_ARCH)
    }
}

#[test]
fn platform_names_interpolate_per_platform() {
    let mut b = per_arch_stub();
    let res = run(
        &mut b,
        &launch(&[("target", "base"), ("platform", "linux/amd64,linux/arm64")]),
    )
    .expect("builds");
    for arch in ["amd64", "arm64"] {
        let config: serde_json::Value =
            serde_json::from_slice(&res.metadata[&format!("{IMAGE_CONFIG_KEY}/linux/{arch}")])
                .expect("JSON");
        let env = config["config"]["Env"].to_string();
        assert!(env.contains(&format!("ARCH={arch}")), "{env}");
        assert!(env.contains(&format!("TARGET=linux/{arch}")), "{env}");
        // The stub worker has no platform: BUILDARCH is the default, amd64.
        assert!(env.contains("BUILD=amd64"), "{env}");
    }
    let bases: BTreeSet<&str> = b.resolves.iter().map(|r| r.r#ref.as_str()).collect();
    assert_eq!(
        bases,
        BTreeSet::from([
            "strata.local/busybox-amd64:1.36",
            "strata.local/busybox-arm64:1.36"
        ])
    );
}

#[test]
fn a_component_switched_off_on_one_platform_fails_that_build() {
    let mut b = per_arch_stub();
    run(
        &mut b,
        &launch(&[("target", "extra"), ("platform", "linux/amd64")]),
    )
    .expect("amd64 has it");
    let mut b = per_arch_stub();
    let e = run(
        &mut b,
        &launch(&[("target", "extra"), ("platform", "linux/amd64,linux/arm64")]),
    )
    .expect_err("arm64 has not");
    assert!(
        e.to_string()
            .contains("for linux/arm64: component `extra` is switched off"),
        "{e}"
    );
}

#[test]
fn config_gets_architecture_and_os() {
    let mut c = serde_json::json!({"config": {}});
    set_platform(
        &mut c,
        &opts::parse_platform("linux/arm/v7").expect("valid"),
    );
    assert_eq!(c["architecture"], "arm");
    assert_eq!(c["os"], "linux");
    assert_eq!(c["variant"], "v7");
    let mut c = serde_json::json!({"architecture": "amd64", "os": "linux"});
    set_platform(&mut c, &opts::parse_platform("linux/arm64").expect("valid"));
    assert_eq!(c["architecture"], "amd64");
    let mut c = serde_json::json!(null);
    set_platform(&mut c, &Platform::default());
    assert_eq!(c["os"], "linux");
}

#[test]
fn missing_caps_are_named() {
    let (def, _) = single_source_definition(
        pb::SourceOp::default(),
        "x".into(),
        &["source.local", "exec.mount.cache.content"],
    );
    let pong = gw::PongResponse {
        llb_caps: vec![strata_proto::apicaps::ApiCap {
            id: "source.local".into(),
            enabled: true,
            ..Default::default()
        }],
        ..Default::default()
    };
    let e = check_caps(&def, &pong).expect_err("missing");
    assert!(e.to_string().contains("exec.mount.cache.content"), "{e}");
    assert!(check_caps(&def, &gw::PongResponse::default()).is_ok());
}

const CROSS: &str = r#"[stack]
name = "cross"

[component.builder]
platform = "build"
from = "strata.local/busybox:1.36"
env = { GOARCH = "{TARGETARCH}" }
run = ["uname -m > /built"]

[component.app]
from = "strata.local/busybox:1.36"
copy = [{ from = "builder", src = "/built", dst = "/built" }]
"#;

#[test]
fn a_builder_resolves_and_runs_on_the_build_platform() {
    let mut b = stub();
    b.files
        .insert("strata.toml".into(), CROSS.as_bytes().to_vec());
    run(
        &mut b,
        &launch(&[("target", "app"), ("platform", "linux/amd64,linux/arm64")]),
    )
    .expect("builds");
    // The base is resolved for each target, and for the worker (amd64)
    // for the builder.
    let resolved: BTreeSet<String> = b
        .resolves
        .iter()
        .map(|r| {
            r.platform
                .as_ref()
                .map(|p| p.architecture.clone())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(resolved, BTreeSet::from(["amd64".into(), "arm64".into()]));
    // Every exec of both lowerings: the builder's, once per target.
    let runs: BTreeSet<(String, String)> = b
        .solves
        .iter()
        .filter_map(|s| s.definition.as_ref())
        .flat_map(|d| {
            d.def.iter().filter_map(|bytes| {
                let op = pb::Op::decode(bytes.as_slice()).ok()?;
                let Some(pb::op::Op::Exec(_)) = op.op else {
                    return None;
                };
                let name = d
                    .metadata
                    .get(&digest_of(bytes))?
                    .description
                    .get("llb.customname")?;
                Some((name.clone(), op.platform?.architecture))
            })
        })
        .collect();
    let exec = |prefix: &str| {
        (
            format!("[{prefix} builder] RUN uname -m > /built"),
            "amd64".to_owned(),
        )
    };
    assert_eq!(
        runs,
        BTreeSet::from([exec("linux/amd64"), exec("linux/amd64->arm64")]),
        "the builder runs natively, named as the Dockerfile frontend names it"
    );

    // As the target of an arm64 build, the builder is an error at its
    // `platform` line; for the worker's own platform it builds.
    let err = run(
        &mut b,
        &launch(&[("target", "builder"), ("platform", "linux/arm64")]),
    )
    .expect_err("the builder is no arm64 image");
    let text = err.to_string();
    let FrontendError::Stack(d) = &err else {
        panic!("not a stack error: {text}")
    };
    assert_eq!(d.items[0].code, ErrorCode::BuildPlatform.id());
    assert!(
        text.starts_with("strata.toml:5:12: "),
        "at `platform`: {text}"
    );
    assert!(
        text.contains(
            "`builder` runs on the build platform (linux/amd64) and is not an image of linux/arm64"
        ),
        "{text}"
    );
    run(&mut b, &launch(&[("target", "builder")])).expect("builds for amd64");
}

#[test]
fn cross_prefixes_read_as_the_dockerfile_frontend_writes_them() {
    let p = |s: &str| opts::parse_platform(s).expect("a platform");
    let amd = p("linux/amd64");
    assert_eq!(cross_prefix(&amd, &amd), "linux/amd64");
    assert_eq!(cross_prefix(&amd, &p("linux/arm64")), "linux/amd64->arm64");
    assert_eq!(
        cross_prefix(&amd, &p("linux/arm/v7")),
        "linux/amd64->arm/v7"
    );
    assert_eq!(
        cross_prefix(&amd, &p("windows/amd64")),
        "linux/amd64->windows/amd64"
    );
}
