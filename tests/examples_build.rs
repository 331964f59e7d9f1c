//! Every component of every example, built on the real engine through the
//! Strata frontend with `docker buildx build`, then inspected: user (by
//! running `id`), env, workdir, entrypoint, cmd, ports and labels as the
//! stack declares them. Every component declares `test`s: the frontend runs
//! them before it returns the image, and the build's progress must show
//! each one.
//!
//! Needs what `scripts/test.sh` sets up first: the engine, the base images,
//! `examples/*/vendor` and the frontend image `strata/frontend:latest`.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{docker_ok, frontend, frontend_image, inspect_config, root, run_in, succeeded};
use serde_json::Value;
use strata::graph::{MetadataField, RunAs, Stack};
use strata::spec::Overrides;

fn mirrors() -> String {
    let text = std::fs::read_to_string(root().join("examples/offline.mirrors"))
        .expect("examples/offline.mirrors");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(",")
}

/// The overrides that let an example build offline here.
fn offline_args(stack: &Stack) -> Vec<(String, String)> {
    let mut args = Vec::new();
    for (name, value) in [
        ("apt_repo", "vendor/apt"),
        ("wheels", "vendor/wheels"),
        ("gpu_apt_repo", "vendor/gpu/apt"),
    ] {
        if stack.args.iter().any(|a| a.name == name) {
            args.push((name.to_owned(), value.to_owned()));
        }
    }
    args
}

/// The example's profile that enables the most components (all of them, where one does).
fn widest(dir: &Path) -> (Option<String>, Stack) {
    let bytes = std::fs::read(dir.join("strata.toml")).expect("stack file");
    let load = |profile: Option<String>| {
        let probe =
            strata::load("strata.toml", &bytes, &Overrides::default()).expect("example loads");
        let o = Overrides {
            args: offline_args(&probe),
            profile: profile.clone(),
            mirrors: mirrors()
                .split(',')
                .filter_map(|p| p.split_once('='))
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .collect(),
            ..Overrides::default()
        };
        (
            profile,
            strata::load("strata.toml", &bytes, &o).expect("example loads"),
        )
    };
    let mut best = load(None);
    let names: Vec<String> = best.1.profiles.iter().map(|p| p.name.clone()).collect();
    for p in names {
        let cand = load(Some(p));
        if cand.1.enabled().count() > best.1.enabled().count() {
            best = cand;
        }
    }
    best
}

fn build(
    dir: &Path,
    stack: &Stack,
    profile: Option<&str>,
    target: &str,
    tag: &str,
    via_syntax_line: bool,
) -> String {
    let file = dir.join("strata.toml");
    let mut cmd = Command::new("docker");
    cmd.args([
        "buildx",
        "build",
        "--progress=plain",
        "--load",
        "-t",
        tag,
        "--target",
        target,
        "-f",
    ])
    .arg(&file)
    .arg("--build-arg")
    .arg(format!("STRATA_MIRRORS={}", mirrors()));
    // The syntax line names the default frontend: another one is passed as an arg.
    let fe = frontend();
    if !via_syntax_line || fe != "strata/frontend:latest" {
        cmd.arg("--build-arg").arg(format!("BUILDKIT_SYNTAX={fe}"));
    }
    if let Some(p) = profile {
        cmd.arg("--build-arg").arg(format!("STRATA_PROFILE={p}"));
    }
    for (k, v) in offline_args(stack) {
        cmd.arg("--build-arg").arg(format!("{k}={v}"));
    }
    cmd.arg(dir);
    let out = cmd.output().expect("docker buildx runs");
    let out = succeeded(
        out,
        "docker buildx build --target",
        &[target, &dir.to_string_lossy()],
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The names of `target`'s tests that the build's progress shows (run or
/// cached): `#N [target] TEST <name>`.
fn tests_in_progress(log: &str, target: &str) -> BTreeSet<String> {
    let marker = format!(" [{target}] TEST ");
    log.lines()
        .filter(|l| l.starts_with('#'))
        .filter_map(|l| l.split_once(&marker).map(|(_, name)| name.to_owned()))
        .collect()
}

fn id(tag: &str, flag: &str) -> String {
    run_in(tag, "id", &[flag]).trim().to_owned()
}

fn check_image(stack: &Stack, name: &str, tag: &str) {
    let c = stack.component(name).expect("component");
    let cfg = inspect_config(tag);
    // The user policy, checked by running the image.
    let (uid, gid) = match (&stack.user, c.run_as) {
        (Some(p), RunAs::Policy) => (p.uid, p.gid),
        _ => (0, 0),
    };
    assert_eq!(id(tag, "-u"), uid.to_string(), "{name}: uid");
    assert_eq!(id(tag, "-g"), gid.to_string(), "{name}: gid");
    if let Some(p) = &stack.user {
        if c.run_as == RunAs::Policy {
            assert_eq!(id(tag, "-un"), p.name, "{name}: user name");
        }
    }
    let env: Vec<String> = cfg["Env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for (k, v) in &c.config.env {
        if v.contains('$') {
            assert!(
                env.iter().any(|e| e.starts_with(&format!("{k}="))),
                "{name}: env {k} missing: {env:?}"
            );
        } else {
            assert!(
                env.contains(&format!("{k}={v}")),
                "{name}: env {k}={v} missing: {env:?}"
            );
        }
    }
    if let Some(w) = &c.config.workdir {
        assert_eq!(
            cfg["WorkingDir"],
            Value::from(w.as_str()),
            "{name}: workdir"
        );
    }
    if let Some(ep) = &c.config.entrypoint {
        assert_eq!(
            cfg["Entrypoint"],
            serde_json::json!(ep),
            "{name}: entrypoint"
        );
    }
    if let Some(cmd) = &c.config.cmd {
        assert_eq!(cfg["Cmd"], serde_json::json!(cmd), "{name}: cmd");
    }
    for p in &c.config.expose {
        assert!(cfg["ExposedPorts"].get(p).is_some(), "{name}: port {p}");
    }
    for (k, v) in &c.config.labels {
        assert_eq!(
            cfg["Labels"][k],
            Value::from(v.as_str()),
            "{name}: label {k}"
        );
    }
    if stack.metadata.oci_labels {
        assert_eq!(
            cfg["Labels"]["org.opencontainers.image.title"],
            Value::from(name),
            "{name}: title label"
        );
    }
    for (k, v) in &stack.metadata.labels {
        assert_eq!(
            cfg["Labels"][k],
            Value::from(v.as_str()),
            "{name}: stack label {k}"
        );
    }
    // The commit reaches the image as ENV and, with OCI labels, as a label.
    for (k, field) in &stack.metadata.env {
        if *field != MetadataField::Revision {
            continue;
        }
        let revision = env
            .iter()
            .find_map(|e| e.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{name}: env {k} (the git revision) missing: {env:?}"));
        assert!(
            revision.len() >= 40 && revision[..40].bytes().all(|b| b.is_ascii_hexdigit()),
            "{name}: {k}={revision} is not a commit"
        );
        if stack.metadata.oci_labels {
            assert_eq!(
                cfg["Labels"]["org.opencontainers.image.revision"],
                Value::from(revision),
                "{name}: revision label and {k}"
            );
        }
    }
    if let Some(g) = &c.gpu {
        assert!(
            env.contains(&"NVIDIA_VISIBLE_DEVICES=all".to_owned()),
            "{name}: NVIDIA_VISIBLE_DEVICES"
        );
        assert!(
            env.contains(&format!("NVIDIA_DRIVER_CAPABILITIES={}", g.capabilities)),
            "{name}: capabilities"
        );
    }
}

fn build_example(example: &str) {
    frontend_image();
    let dir = root().join("examples").join(example);
    let (profile, stack) = widest(&dir);
    let names: Vec<String> = stack.enabled().map(|c| c.name.clone()).collect();
    let disabled: Vec<&str> = stack
        .components
        .iter()
        .filter(|c| !c.enabled)
        .map(|c| c.name.as_str())
        .collect();
    assert!(
        disabled.is_empty(),
        "{example}: no profile enables {disabled:?}, so they are never built here"
    );
    for (i, name) in names.iter().enumerate() {
        let tag = format!("strata-test/{example}-{name}:latest");
        let log = build(&dir, &stack, profile.as_deref(), name, &tag, i % 2 == 0);
        let declared = stack.component(name).expect("component").tests.len();
        let shown = tests_in_progress(&log, name);
        assert_eq!(
            shown.len(),
            declared,
            "{example} / {name}: the build shows tests {shown:?}, the stack declares {declared}:\n{log}"
        );
        check_image(&stack, name, &tag);
    }
    eprintln!("{example}: built and checked {} components", names.len());
}

/// Every component of every example, enabled or not, declares a test.
#[test]
fn every_example_component_declares_a_test() {
    for example in ["fedbiomed", "fate", "application101", "data-science"] {
        let bytes = std::fs::read(root().join("examples").join(example).join("strata.toml"))
            .expect("stack file");
        let stack =
            strata::load("strata.toml", &bytes, &Overrides::default()).expect("example loads");
        let untested: Vec<&str> = stack
            .components
            .iter()
            .filter(|c| c.tests.is_empty())
            .map(|c| c.name.as_str())
            .collect();
        assert!(
            untested.is_empty(),
            "{example}: components without a test: {untested:?}"
        );
    }
}

#[test]
fn fedbiomed_every_component() {
    build_example("fedbiomed");
    // One user everywhere: base, FROM-base components and the GPU flavour on
    // the CUDA stand-in (no Python, no tini, `ubuntu` at uid 1000).
    let gpu = "strata-test/fedbiomed-node-gpu:latest";
    let text = run_in(gpu, "sh", &["-c", "ls -ldn /fbm-node /home/fedbiomed | awk '{print $3\":\"$4}'; python -c 'import six, fedbiomed; print(fedbiomed.__version__)'"]);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        ["2101:2101", "2101:2101", "6.3.3"],
        "the replayed node keeps owners and its environment works"
    );
    // Through the image's own entrypoint (tini) as the policy user.
    for (args, want) in [
        (&["id", "-un"][..], "fedbiomed"),
        (
            &["python", "-c", "import six; print(six.__version__)"][..],
            "1.16.0",
        ),
    ] {
        let out = docker_ok(&[&["run", "--rm", "--network", "none", gpu][..], args].concat());
        assert_eq!(out, want, "{args:?}");
    }
    // Its default entrypoint and cmd start (the node's entrypoint prints and exits).
    docker_ok(&["run", "--rm", "--network", "none", gpu]);
}

#[test]
fn fate_every_component() {
    build_example("fate");
}

#[test]
fn application101_every_component() {
    build_example("application101");
}

#[test]
fn data_science_every_component() {
    build_example("data-science");
    let envs = run_in(
        "strata-test/data-science-data-science-ai:latest",
        "sh",
        &["-c", "ls /opt/conda/envs"],
    );
    for e in ["python_deps", "R", "python_ai"] {
        assert!(
            envs.split_whitespace().any(|x| x == e),
            "environment {e} in {envs}"
        );
    }
}
