//! The Strata frontend on the real engine: `docker buildx build` through
//! `# syntax=` and `BUILDKIT_SYNTAX`, subrequests, located errors, named
//! contexts. Builds the frontend image once (scripts/frontend-image.sh).
//!
//! Needs the engine (scripts/engine.sh; the test command starts it): when
//! `docker info` fails, each test fails and says so.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use common::{
    buildx, docker, docker_ok, frontend, frontend_image, inspect_config, project, remove_images,
    run_in, syntax_line, text, BUSYBOX,
};

/// The tiny stack every test starts from; `{syntax}` becomes the first line.
const STACK: &str = r#"{syntax}[stack]
name = "tiny"
image = "tiny/{component}:latest"

[args]
gpu = false
greeting = { type = "string", default = "hello", description = "What the image says" }

[component.x]
description = "A busybox that greets"
from = "strata.local/busybox:1.36"
user = "root"
env = { GREETING = "{greeting}" }
workdir = "/work"
entrypoint = ["sh", "-c", "echo $GREETING from $(pwd)"]
"#;

fn stack(with_syntax_line: bool) -> String {
    let first = if with_syntax_line {
        syntax_line()
    } else {
        String::new()
    };
    STACK.replace("{syntax}", &first)
}

/// A subrequest: `--call=<name>` on newer buildx, `--print=<name>` (experimental) on 0.13.
fn subrequest(dir: &Path, name: &str, args: &[&str]) -> (bool, String) {
    static HAS_CALL: OnceLock<bool> = OnceLock::new();
    let has_call =
        *HAS_CALL.get_or_init(|| text(&docker(&["buildx", "build", "--help"])).contains("--call"));
    let flag = if has_call {
        format!("--call={name}")
    } else {
        format!("--print={name}")
    };
    let mut cmd = Command::new("docker");
    cmd.current_dir(dir)
        .env("BUILDX_EXPERIMENTAL", "1")
        .args(["buildx", "build", "-f", "strata.toml", &flag])
        .args(args)
        .arg(".");
    let out = cmd.output().expect("run docker buildx build");
    (out.status.success(), text(&out))
}

#[test]
fn builds_through_the_syntax_line_and_caches() {
    frontend_image();
    let dir = project("syntax", stack(true));
    let tag = "strata-frontend-test/syntax:latest";
    let (ok, out) = buildx(&dir, &["--target", "x", "--load", "-t", tag]);
    assert!(ok, "build failed:\n{out}");
    assert!(
        out.contains("[internal] load build definition from strata.toml"),
        "{out}"
    );

    let said = docker_ok(&["run", "--rm", tag]);
    assert!(said.contains("hello from /work"), "{said}");
    let config = inspect_config(tag);
    assert_eq!(config["WorkingDir"], "/work");
    assert_eq!(config["Entrypoint"][0], "sh");
    let env = config["Env"].to_string();
    assert!(env.contains("GREETING=hello"), "{env}");

    // Fully cached: nothing is rebuilt, and it is quick.
    let started = Instant::now();
    let (ok, out) = buildx(&dir, &["--target", "x", "--load", "-t", tag]);
    let took = started.elapsed();
    assert!(ok, "{out}");
    assert!(out.contains("CACHED"), "{out}");
    eprintln!("fully cached build through the frontend: {took:?}");
    remove_images(&[tag]);
}

#[test]
fn builds_with_buildkit_syntax_and_build_args() {
    frontend_image();
    let dir = project("buildkit-syntax", stack(false));
    let tag = "strata-frontend-test/buildkit-syntax:latest";
    let syntax = format!("BUILDKIT_SYNTAX={}", frontend());
    let (ok, out) = buildx(
        &dir,
        &[
            "--build-arg",
            &syntax,
            "--build-arg",
            "greeting=bonjour",
            "--label",
            "org.example.test=yes",
            "--target",
            "x",
            "--load",
            "-t",
            tag,
        ],
    );
    assert!(ok, "build failed:\n{out}");
    let said = docker_ok(&["run", "--rm", tag]);
    assert!(said.contains("bonjour from /work"), "{said}");
    let config = inspect_config(tag);
    assert_eq!(config["Labels"]["org.example.test"], "yes", "{config}");
    remove_images(&[tag]);
}

#[test]
fn a_named_context_replaces_an_external_image() {
    frontend_image();
    let dir = project("named-context", stack(true));
    let tag = "strata-frontend-test/named-context:latest";
    let context = format!("{BUSYBOX}=docker-image://strata.local/debian:bookworm");
    let (ok, out) = buildx(
        &dir,
        &[
            "--build-context",
            &context,
            "--target",
            "x",
            "--load",
            "-t",
            tag,
        ],
    );
    assert!(ok, "build failed:\n{out}");
    let said = run_in(tag, "cat", &["/etc/debian_version"]);
    assert!(said.trim().starts_with("12"), "not the Debian base: {said}");
    remove_images(&[tag]);
}

#[test]
fn targets_and_outline_subrequests() {
    frontend_image();
    let dir = project("subrequests", stack(true));
    let (ok, out) = subrequest(&dir, "targets", &[]);
    assert!(ok, "{out}");
    assert!(out.contains("TARGET DESCRIPTION"), "{out}");
    assert!(out.contains("x      A busybox that greets"), "{out}");

    let (ok, out) = subrequest(
        &dir,
        "outline",
        &["--target", "x", "--build-arg", "greeting=hi"],
    );
    assert!(ok, "{out}");
    assert!(out.contains("TARGET:"), "{out}");
    assert!(out.contains("DESCRIPTION: A busybox that greets"), "{out}");
    assert!(out.contains("BUILD ARG"), "{out}");
    assert!(
        out.contains("greeting    hi      What the image says"),
        "{out}"
    );

    let (ok, out) = subrequest(&dir, "targets,format=json", &[]);
    assert!(ok, "{out}");
    let start = out.find('{').expect("JSON in the output");
    let end = out.rfind('}').expect("JSON in the output");
    let json: serde_json::Value = serde_json::from_str(&out[start..=end]).expect("JSON");
    assert_eq!(json["targets"][0]["name"], "x");
    assert_eq!(json["targets"][0]["base"], BUSYBOX);
}

#[test]
fn a_stack_error_shows_the_users_line() {
    frontend_image();
    let broken = stack(true).replace("workdir = \"/work\"", "workdir = 42");
    let dir = project("stack-error", &broken);
    let (ok, out) = buildx(&dir, &["--target", "x"]);
    assert!(!ok, "a broken stack built:\n{out}");
    let line = broken
        .lines()
        .position(|l| l == "workdir = 42")
        .expect("line")
        + 1;
    assert!(out.contains(&format!("strata.toml:{line}\n")), "{out}");
    assert!(out.contains(">>> workdir = 42"), "{out}");
    assert!(
        out.contains("ERROR: failed to solve: strata.toml:"),
        "{out}"
    );
    assert!(
        out.contains("`workdir` takes a string, not the integer `42`"),
        "{out}"
    );
}

#[test]
fn a_bad_build_arg_points_at_the_arg() {
    frontend_image();
    let text = stack(true);
    let dir = project("bad-arg", &text);
    let (ok, out) = buildx(&dir, &["--target", "x", "--build-arg", "gpu=maybe"]);
    assert!(!ok, "a bad arg built:\n{out}");
    let line = text.lines().position(|l| l == "gpu = false").expect("line") + 1;
    assert!(out.contains(&format!("strata.toml:{line}\n")), "{out}");
    assert!(out.contains(">>> gpu = false"), "{out}");
    assert!(out.contains("`maybe` is not a bool"), "{out}");
}

#[test]
fn unknown_targets_and_unsupported_contexts_are_explained() {
    frontend_image();
    let dir = project("unknown-target", stack(true));
    let (ok, out) = buildx(&dir, &["--target", "y"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("target `y` is not a component of stack `tiny`"),
        "{out}"
    );

    let (ok, out) = buildx(&dir, &["--target", "x", "--build-context", "src=."]);
    assert!(!ok, "{out}");
    assert!(out.contains("named contexts are not supported"), "{out}");
}
