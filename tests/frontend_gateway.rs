//! The Strata frontend on the real engine: `docker buildx build` through
//! `# syntax=` and `BUILDKIT_SYNTAX`, subrequests, located errors, named
//! contexts. Builds the frontend image once (scripts/frontend-image.sh).
//!
//! Needs the engine (scripts/engine.sh; the test command starts it). When
//! `docker info` fails, each test says so and passes without checking.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Instant;

const FRONTEND: &str = "strata/frontend:latest";
const BUSYBOX: &str = "strata.local/busybox:1.36";

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

fn stack(syntax_line: bool) -> String {
    let first = if syntax_line {
        format!("# syntax={FRONTEND}\n")
    } else {
        String::new()
    };
    STACK.replace("{syntax}", &first)
}

/// Whether the engine answers; tests print why they skip when it does not.
fn engine() -> bool {
    static UP: OnceLock<bool> = OnceLock::new();
    *UP.get_or_init(|| {
        let up = Command::new("docker")
            .arg("info")
            .output()
            .is_ok_and(|o| o.status.success());
        if !up {
            eprintln!("SKIPPED: `docker info` fails: no engine (start it with scripts/engine.sh)");
        }
        up
    })
}

/// Builds and tags the frontend image, once per test binary (the script
/// holds a file lock, so concurrent test binaries take turns).
fn frontend_image() {
    static BUILT: OnceLock<Result<String, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new("bash")
            .arg(root.join("scripts/frontend-image.sh"))
            .current_dir(root)
            .output()
            .map_err(|e| format!("cannot run scripts/frontend-image.sh: {e}"))?;
        if out.status.success() {
            let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            eprintln!("frontend image: {line}");
            Ok(line)
        } else {
            Err(format!(
                "scripts/frontend-image.sh failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
}

/// A fresh directory holding `strata.toml`.
fn project(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-frontend-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("strata.toml"), text).expect("write stack");
    dir
}

fn run(cmd: &mut Command) -> (bool, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("docker runs");
    let mut text = String::from_utf8_lossy(&stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&stderr));
    (status.success(), text)
}

/// `docker buildx build --progress=plain -f strata.toml <args> .` in `dir`.
fn buildx(dir: &Path, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("docker");
    cmd.current_dir(dir)
        .args(["buildx", "build", "--progress=plain", "-f", "strata.toml"])
        .args(args)
        .arg(".");
    run(&mut cmd)
}

/// A subrequest: `--call=<name>` on newer buildx, `--print=<name>` (experimental) on 0.13.
fn subrequest(dir: &Path, name: &str, args: &[&str]) -> (bool, String) {
    static HAS_CALL: OnceLock<bool> = OnceLock::new();
    let has_call = *HAS_CALL.get_or_init(|| {
        run(Command::new("docker").args(["buildx", "build", "--help"]))
            .1
            .contains("--call")
    });
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
    run(&mut cmd)
}

fn docker(args: &[&str]) -> String {
    let (ok, out) = run(Command::new("docker").args(args));
    assert!(ok, "docker {args:?} failed:\n{out}");
    out
}

fn inspect_config(tag: &str) -> serde_json::Value {
    let out = docker(&["image", "inspect", "-f", "{{json .Config}}", tag]);
    serde_json::from_str(out.trim()).expect("config JSON")
}

fn remove_image(tag: &str) {
    let _ = Command::new("docker").args(["rmi", "-f", tag]).output();
}

#[test]
fn builds_through_the_syntax_line_and_caches() {
    if !engine() {
        return;
    }
    frontend_image();
    let dir = project("syntax", &stack(true));
    let tag = "strata-frontend-test/syntax:latest";
    let (ok, out) = buildx(&dir, &["--target", "x", "--load", "-t", tag]);
    assert!(ok, "build failed:\n{out}");
    assert!(
        out.contains("[internal] load build definition from strata.toml"),
        "{out}"
    );

    let (ok, said) = run(Command::new("docker").args(["run", "--rm", tag]));
    assert!(ok, "{said}");
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
    remove_image(tag);
}

#[test]
fn builds_with_buildkit_syntax_and_build_args() {
    if !engine() {
        return;
    }
    frontend_image();
    let dir = project("buildkit-syntax", &stack(false));
    let tag = "strata-frontend-test/buildkit-syntax:latest";
    let syntax = format!("BUILDKIT_SYNTAX={FRONTEND}");
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
    let (ok, said) = run(Command::new("docker").args(["run", "--rm", tag]));
    assert!(ok && said.contains("bonjour from /work"), "{said}");
    let config = inspect_config(tag);
    assert_eq!(config["Labels"]["org.example.test"], "yes", "{config}");
    remove_image(tag);
}

#[test]
fn a_named_context_replaces_an_external_image() {
    if !engine() {
        return;
    }
    frontend_image();
    let dir = project("named-context", &stack(true));
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
    let (ok, said) = run(Command::new("docker").args([
        "run",
        "--rm",
        "--entrypoint",
        "cat",
        tag,
        "/etc/debian_version",
    ]));
    assert!(ok, "{said}");
    assert!(said.trim().starts_with("12"), "not the Debian base: {said}");
    remove_image(tag);
}

#[test]
fn targets_and_outline_subrequests() {
    if !engine() {
        return;
    }
    frontend_image();
    let dir = project("subrequests", &stack(true));
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
    if !engine() {
        return;
    }
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
    assert!(out.contains("expected a string"), "{out}");
}

#[test]
fn a_bad_build_arg_points_at_the_arg() {
    if !engine() {
        return;
    }
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
    if !engine() {
        return;
    }
    frontend_image();
    let dir = project("unknown-target", &stack(true));
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
