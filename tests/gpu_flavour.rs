//! GPU flavours on a CUDA stand-in as hostile as the real base: another
//! userland (bullseye), no Python, no tini, uid 1000 taken by `ubuntu`.
//! The CPU component stands on the python:3.11-slim stand-in, whose
//! interpreter lives in /usr/local only.
//!
//! - a replayed flavour starts with its default entrypoint and cmd, and
//!   runs Python as the policy user (uid 1000, taken over from `ubuntu`);
//! - a copied flavour whose entrypoint is absent fails the build at the
//!   `gpu` line, saying what is missing and how to fix it;
//! - after a one-line edit of an application file, a rebuild re-runs only
//!   the steps after that file's copy (package installs stay cached).
//!
//! Needs what `scripts/test.sh` sets up: the engine, the base images,
//! `examples/fedbiomed/vendor` (its offline repositories are reused here)
//! and the frontend image (`STRATA_TEST_FRONTEND`, default
//! `strata/frontend:latest`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{assert_located, buildx, docker_ok, frontend, frontend_image, root, vertices};

const STACK: &str = r#"[stack]
name = "gpu"
image = "strata-test/gpu-{component}:latest"

[user]
name = "app"
uid = 1000
gid = 1000
home = "/home/app"

[packages]
apt-repo = "vendor/apt"
find-links = "vendor/wheels"

[component.cpu]
from = "strata.local/python:3.11-slim-bookworm"
apt = ["tini"]
pip = { packages = ["six==1.16.0"] }
copy = [{ src = "app", dst = "/app" }]
workdir = "/app"
entrypoint = ["/usr/bin/tini", "--"]
cmd = ["python", "/app/main.py"]

[component.gpu]
gpu = { of = "cpu", base = "strata.local/cuda:12.1.1-base-ubuntu22.04", apt-repo = "vendor/gpu/apt", steps = [{ apt = ["python3", "python3-venv"] }] }
env = { APP_FLAVOUR = "gpu" }

[component.gpu-copy]
gpu = { of = "cpu", base = "strata.local/cuda:12.1.1-base-ubuntu22.04", copy = ["/opt/venv", "/app"] }
"#;

/// The frontend image and the offline repositories this test reuses.
fn require_engine() {
    frontend_image();
    let vendor = root().join("examples/fedbiomed/vendor");
    assert!(
        vendor.join("gpu/apt/Packages").is_file() && vendor.join("apt/Packages").is_file(),
        "{} is missing: run scripts/vendor-examples.sh",
        vendor.display()
    );
}

fn copy_tree(from: &Path, to: &Path) {
    let ok = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "cp -a {} {}", from.display(), to.display());
}

/// A project directory: the stack, the application and the offline repositories.
fn project(name: &str) -> PathBuf {
    let dir = common::project(&format!("gpu-{name}"), STACK);
    std::fs::create_dir_all(dir.join("app")).expect("app dir");
    std::fs::write(
        dir.join("app/main.py"),
        "import os, six\nprint('app', os.environ.get('APP_FLAVOUR', 'cpu'), six.__version__)\n",
    )
    .expect("app");
    std::fs::write(dir.join("app/version.txt"), "v1\n").expect("app");
    std::fs::create_dir_all(dir.join("vendor")).expect("vendor");
    let vendor = root().join("examples/fedbiomed/vendor");
    copy_tree(&vendor.join("apt"), &dir.join("vendor/apt"));
    copy_tree(&vendor.join("wheels"), &dir.join("vendor/wheels"));
    std::fs::create_dir_all(dir.join("vendor/gpu")).expect("vendor");
    copy_tree(&vendor.join("gpu/apt"), &dir.join("vendor/gpu/apt"));
    dir
}

/// `docker buildx build` of `target` in `dir`: (success, log, seconds).
fn build(dir: &Path, target: &str, load: bool) -> (bool, String, f64) {
    let syntax = format!("BUILDKIT_SYNTAX={}", frontend());
    let tag = format!("strata-test/gpu-{target}:latest");
    let mut args = vec!["--build-arg", &syntax, "--target", target];
    if load {
        args.extend(["--load", "-t", &tag]);
    }
    let t0 = Instant::now();
    let (ok, log) = buildx(dir, &args);
    (ok, log, t0.elapsed().as_secs_f64())
}

/// `docker run --rm IMAGE ARGS...` with the image's own entrypoint: stdout, trimmed.
fn run(tag: &str, args: &[&str]) -> String {
    docker_ok(&[&["run", "--rm", "--network", "none", tag][..], args].concat())
}

#[test]
fn replayed_flavour_starts_and_runs_python_as_the_policy_user() {
    require_engine();
    // The stand-in is as hostile as the real base.
    let bare = docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "strata.local/cuda:12.1.1-base-ubuntu22.04",
        "sh",
        "-c",
        "command -v python3 tini || echo none; id -un 1000",
    ]);
    assert_eq!(bare, "none\nubuntu");

    let dir = project("replay");
    let (ok, log, secs) = build(&dir, "gpu", true);
    assert!(ok, "{log}");
    eprintln!("gpu (replay) built in {secs:.1} s");
    let tag = "strata-test/gpu-gpu:latest";
    // Default entrypoint (tini, installed by the replayed apt step) and cmd.
    assert_eq!(run(tag, &[]), "app gpu 1.16.0");
    assert_eq!(run(tag, &["id", "-u"]), "1000");
    assert_eq!(run(tag, &["id", "-un"]), "app");
    assert_eq!(
        run(
            tag,
            &[
                "python",
                "-c",
                "import six, sys; print(six.__version__, sys.prefix)"
            ]
        ),
        "1.16.0 /opt/venv"
    );
    // The venv's interpreter is the CUDA base's own.
    assert_eq!(
        run(tag, &["readlink", "-f", "/opt/venv/bin/python"]),
        "/usr/bin/python3.9"
    );
}

#[test]
fn copied_flavour_without_its_entrypoint_fails_at_the_gpu_line() {
    require_engine();
    let dir = project("copy");
    let (ok, log, _) = build(&dir, "gpu-copy", false);
    assert!(!ok, "{log}");
    assert_located(&log, STACK, "copy = [\"/opt/venv\", \"/app\"]");
    assert!(
        log.contains("strata: GPU flavour gpu-copy: the entrypoint '/usr/bin/tini' does not exist (or is not executable) in this image"),
        "{log}"
    );
    assert!(log.contains("help: copy it with `gpu.copy`"), "{log}");
    // The copied venv brought its interpreter from /usr/local, which does
    // not run on the CUDA base's userland: said at build time too.
    assert!(
        log.contains("the venv /opt/venv does not run in this image")
            && log.contains("home = /usr/local/bin"),
        "{log}"
    );
    assert!(
        log.contains("GPU: check that the entrypoint, cmd and venvs run"),
        "{log}"
    );
}

#[test]
fn one_edited_application_file_reruns_only_what_follows_its_copy() {
    require_engine();
    let dir = project("rebuild");
    let (ok, log, first) = build(&dir, "gpu", false);
    assert!(ok, "{log}");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::fs::write(dir.join("app/version.txt"), format!("v2 {nanos}\n")).expect("edit");
    let (ok, log, second) = build(&dir, "gpu", false);
    assert!(ok, "{log}");
    let v = vertices(&log);
    let steps: Vec<(&String, &bool)> = v
        .iter()
        .filter(|(n, _)| n.starts_with("[gpu"))
        .filter(|(n, _)| !n.contains("load context"))
        .collect();
    let ran: Vec<&str> = steps
        .iter()
        .filter(|(_, c)| !**c)
        .map(|(n, _)| n.as_str())
        .collect();
    eprintln!(
        "first build {first:.1} s, rebuild after one edit {second:.1} s: {} steps ran, {} cached: {ran:?}",
        ran.len(),
        steps.len() - ran.len()
    );
    let cached = |prefix: &str| {
        v.iter()
            .find(|(n, _)| n.starts_with(prefix))
            .map(|(_, c)| *c)
    };
    assert_eq!(
        cached("[gpu] apt install python3 python3-venv"),
        Some(true),
        "{v:?}"
    );
    assert_eq!(
        cached("[gpu via cpu] apt install tini"),
        Some(true),
        "{v:?}"
    );
    assert_eq!(cached("[gpu via cpu] pip install six"), Some(true), "{v:?}");
    assert_eq!(cached("[gpu via cpu] COPY app"), Some(false), "{v:?}");
    // The edited copy and the start check: nothing else.
    assert_eq!(ran.len(), 2, "{ran:?}");
}
