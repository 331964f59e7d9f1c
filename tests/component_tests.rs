//! Component tests (`test` entries) and copy ownership, through the real
//! frontend: tests run in the finished image as its user and without
//! network, gate the image, are cached, point at their line when they
//! fail, and can be skipped; copies belong to root unless `owner = "user"`.
//!
//! Needs the engine and the frontend image (`bash scripts/test.sh`):
//! `strata/frontend:latest`, or the image named by `STRATA_TEST_FRONTEND`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{
    buildx as build, docker, frontend, frontend_image as require_frontend, text, vertices,
};

/// The 1-based line of the stack file that contains `needle`.
fn line_of(needle: &str) -> usize {
    common::line_of(STACK, needle)
}

const STRATA: &str = env!("CARGO_BIN_EXE_strata");

const STACK: &str = r#"# syntax={frontend}
[stack]
name = "ctest"
image = "ctest-{run}-{component}:latest"

[args]
run = "x"
broken = false

[user]
name = "app"
uid = 1500

[component.base]
from = "strata.local/busybox:1.36"
copy = [
  { src = "run.sh", dst = "/app/run.sh", mode = "0755" },
  { src = "seed", dst = "/var/lib/app", owner = "user" },
]
entrypoint = ["/app/run.sh"]
test = [
  'echo "test uid $(id -u) in $(pwd)"; [ "$(id -u)" = 1500 ]',
  { cmd = '! grep -q eth /proc/net/dev', name = "no network" },
  { cmd = ["sh", "-c", "grep -q eth /proc/net/dev"], network = "default", name = "network when asked" },
  { cmd = "! sh -c 'echo x >> /app/run.sh' 2>/dev/null", name = "code is read-only for the user" },
  { cmd = "touch /app/root-was-here", as = "root", name = "root when asked" },
]

[component.broken]
from = "base"
when = "broken"
test = [{ cmd = "echo checking the widget; exit 4", name = "widget" }]

[component.offline]
from = "base"
when = "broken"
test = [{ cmd = "grep -q eth /proc/net/dev", name = "wants network" }]

[component.writable]
from = "strata.local/busybox:1.36"
when = "broken"
copy = [{ src = "run.sh", dst = "/app/run.sh", owner = "user", mode = "0755" }]
entrypoint = ["/app/run.sh"]
"#;

/// A per-run id for image names.
fn run_id(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{name}{}x{nanos}", std::process::id())
}

fn project(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-ctest-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("seed")).expect("temp dir");
    std::fs::write(
        dir.join("strata.toml"),
        STACK.replace("{frontend}", &frontend()),
    )
    .expect("stack");
    std::fs::write(dir.join("run.sh"), "#!/bin/sh\necho started\n").expect("run.sh");
    // A new image each run, so its tests run (and print) the first time.
    std::fs::write(dir.join("seed/seed.txt"), run_id(name)).expect("seed");
    dir
}

fn exists(tag: &str) -> bool {
    docker(&["image", "inspect", tag]).status.success()
}

/// `stat -c %u:%g` of paths in the image.
fn owners(tag: &str, paths: &[&str]) -> Vec<String> {
    let mut args = vec![
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "stat",
        tag,
        "-c",
        "%u:%g",
    ];
    args.extend(paths);
    let out = docker(&args);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Tags removed when the test ends, passed or not.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for t in &self.0 {
            let _ = docker(&["rmi", "--no-prune", t]);
        }
    }
}

#[test]
fn passing_tests_run_as_the_user_without_network_and_are_cached() {
    require_frontend();
    let dir = project("pass");
    let tag = format!("ctest-{}:base", run_id("pass"));
    let _cleanup = Cleanup(vec![tag.clone()]);
    let (ok, log) = build(&dir, &["--target", "base", "-t", &tag]);
    assert!(ok, "{log}");
    assert!(log.contains("test uid 1500 in /"), "{log}");
    for name in [
        "[base] TEST code is read-only for the user",
        "[base] TEST no network",
        "[base] TEST network when asked",
        "[base] TEST root when asked",
    ] {
        assert!(log.contains(name), "{name} ran:\n{log}");
    }
    let out = docker(&["run", "--rm", "--network", "none", &tag]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "started");
    // What a test writes never reaches the image.
    let out = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "ls",
        &tag,
        "/app",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "run.sh");

    // Same image, same commands: nothing runs again, tests included.
    let (ok, log) = build(&dir, &["--target", "base", "-t", &tag]);
    assert!(ok, "{log}");
    let v = vertices(&log);
    let tests: Vec<_> = v.iter().filter(|(n, _)| n.contains("] TEST ")).collect();
    assert_eq!(tests.len(), 5, "{v:?}");
    assert!(tests.iter().all(|(_, cached)| **cached), "{v:?}");
}

#[test]
fn a_failing_test_points_at_its_line_shows_its_output_and_returns_no_image() {
    require_frontend();
    let dir = project("fail");
    let tag = format!("ctest-{}:broken", run_id("fail"));
    let _cleanup = Cleanup(vec![tag.clone()]);
    let (ok, log) = build(
        &dir,
        &[
            "--target",
            "broken",
            "--build-arg",
            "broken=true",
            "-t",
            &tag,
        ],
    );
    assert!(!ok, "{log}");
    assert!(
        log.contains(&format!("strata.toml:{}", line_of("checking the widget"))),
        "{log}"
    );
    assert!(
        log.contains(">>> test = [{ cmd = \"echo checking the widget; exit 4\""),
        "{log}"
    );
    assert!(
        log.contains("test `widget` of component `broken` failed"),
        "{log}"
    );
    assert!(log.contains("exit code: 4"), "{log}");
    let output_lines = log
        .lines()
        .filter(|l| l.ends_with(" checking the widget"))
        .count();
    assert!(output_lines >= 1, "the command's output is shown:\n{log}");
    assert!(!exists(&tag), "no image is tagged when a test fails");

    // A test that needs the network fails without `network = "default"`.
    let (ok, log) = build(
        &dir,
        &[
            "--target",
            "offline",
            "--build-arg",
            "broken=true",
            "-t",
            &tag,
        ],
    );
    assert!(!ok, "{log}");
    assert!(
        log.contains(&format!("strata.toml:{}", line_of("wants network"))),
        "{log}"
    );
    assert!(!exists(&tag));

    // Skipped, the same failing test lets the image through.
    let (ok, log) = build(
        &dir,
        &[
            "--target",
            "broken",
            "--build-arg",
            "broken=true",
            "--build-arg",
            "STRATA_SKIP_TESTS=1",
            "-t",
            &tag,
        ],
    );
    assert!(ok, "{log}");
    assert!(!log.contains("TEST widget"), "{log}");
    assert!(exists(&tag));
}

#[test]
fn copies_belong_to_root_unless_owner_is_user_and_the_lint_sees_a_writable_entrypoint() {
    require_frontend();
    let dir = project("owner");
    let tag = format!("ctest-{}:writable", run_id("owner"));
    let base = format!("ctest-{}:base", run_id("owner"));
    let _cleanup = Cleanup(vec![tag.clone(), base.clone()]);
    let (ok, log) = build(
        &dir,
        &[
            "--target",
            "writable",
            "--build-arg",
            "broken=true",
            "-t",
            &tag,
        ],
    );
    assert!(ok, "{log}");
    // Lints cover the whole stack: only `writable` is named, in every build.
    assert!(log.contains("user-writable-entrypoint"), "{log}");
    assert!(
        log.contains("component `writable` starts `/app/run.sh`"),
        "{log}"
    );
    assert!(!log.contains("component `base` starts"), "{log}");
    assert_eq!(owners(&tag, &["/app/run.sh"]), ["1500:1500"]);

    let (ok, log) = build(&dir, &["--target", "base", "-t", &base]);
    assert!(ok, "{log}");
    assert_eq!(
        owners(&base, &["/app/run.sh", "/var/lib/app/seed.txt"]),
        ["0:0", "1500:1500"]
    );
}

/// `strata build` with the given args in `dir`.
fn strata_build(dir: &Path, args: &[&str]) -> Output {
    Command::new(STRATA)
        .current_dir(dir)
        .arg("build")
        .args(args)
        .env_remove("STRATA_MIRRORS")
        .env("STRATA_FRONTEND", frontend())
        .output()
        .expect("strata runs")
}

#[test]
fn strata_build_runs_every_components_tests_unless_skipped() {
    require_frontend();
    let dir = project("cli");
    let run = run_id("cli");
    let run_arg = format!("run={run}");
    let image = |c: &str| format!("ctest-{run}-{c}:latest");
    let _cleanup = Cleanup(
        ["base", "broken", "offline", "writable"]
            .map(image)
            .to_vec(),
    );

    let out = strata_build(&dir, &["--arg", &run_arg]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    // Bake names vertices `[<target> <component>]`.
    assert!(log.contains("] TEST no network"), "{log}");
    assert!(exists(&image("base")));

    // Every enabled component's tests run: the broken one fails the build.
    let out = strata_build(&dir, &["--arg", &run_arg, "--arg", "broken=true"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("] TEST widget"), "{log}");
    assert!(log.contains("component `broken` failed to build"), "{log}");
    assert!(!exists(&image("broken")));

    let out = strata_build(
        &dir,
        &["--arg", &run_arg, "--arg", "broken=true", "--skip-tests"],
    );
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains("TEST widget"), "{log}");
    for c in ["base", "broken", "offline", "writable"] {
        assert!(exists(&image(c)), "{c} built");
    }
}
