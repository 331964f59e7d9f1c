//! What users rely on when they build through the frontend: the user
//! policy on a base without useradd, build args that change what is built,
//! caching that re-runs only what a change invalidates, and failures that
//! point at the stack file's line.
//!
//! Needs the engine and `strata/frontend:latest` (`bash scripts/test.sh`).

mod common;

use std::path::PathBuf;

use common::{assert_located, buildx, docker_ok, frontend_image, vertices};

/// The stack every test here builds (tests/data/stacks/behaviour.toml).
const STACK: &str = include_str!("data/stacks/behaviour.toml");

fn project(name: &str) -> PathBuf {
    let dir = common::project(&format!("behaviour-{name}"), STACK);
    std::fs::write(dir.join("conf.txt"), "conf v1\n").expect("conf");
    std::fs::write(
        dir.join("app.txt"),
        format!("app v1 {}\n", std::process::id()),
    )
    .expect("app");
    dir
}

/// `docker run` of `tag` with `args[0]` as entrypoint: its stdout, trimmed.
fn run_in(tag: &str, args: &[&str]) -> String {
    let (entrypoint, rest) = args.split_first().expect("an entrypoint");
    common::run_in(tag, entrypoint, rest).trim().to_owned()
}

#[test]
fn user_policy_on_a_base_without_useradd_and_uid_override() {
    frontend_image();
    let dir = project("user");
    let tag = "strata-test/behaviour-app:user";
    let (ok, log) = buildx(&dir, &["--target", "app", "--load", "-t", tag]);
    assert!(ok, "{log}");
    assert_eq!(run_in(tag, &["id", "-u"]), "1500");
    assert_eq!(run_in(tag, &["id", "-un"]), "app");
    assert_eq!(
        run_in(tag, &["sh", "-c", "ls -ldn /home/app | awk '{print $3}'"]),
        "1500"
    );
    assert_eq!(
        run_in(tag, &["sh", "-c", "which useradd adduser || echo none"]),
        "none",
        "the base really has no useradd"
    );
    // Copied files belong to root: the user cannot rewrite what it runs.
    assert_eq!(
        run_in(
            tag,
            &["sh", "-c", "ls -ln /app/app.txt | awk '{print $3\":\"$4}'"]
        ),
        "0:0"
    );

    let (ok, log) = buildx(
        &dir,
        &[
            "--target",
            "app",
            "--load",
            "-t",
            tag,
            "--build-arg",
            "uid=1600",
        ],
    );
    assert!(ok, "{log}");
    assert_eq!(
        run_in(tag, &["id", "-u"]),
        "1600",
        "a build arg changes the user everywhere"
    );
}

#[test]
fn build_args_and_profiles_change_what_is_built() {
    frontend_image();
    let dir = project("args");
    let tag = "strata-test/behaviour-extra:args";
    // `extra` is off by default: building it explains why and where.
    let (ok, log) = buildx(&dir, &["--target", "extra", "-t", tag]);
    assert!(!ok);
    assert!(log.contains("component `extra` is switched off"), "{log}");
    // A flag switches it on; so does the profile that sets the flag.
    let (ok, log) = buildx(
        &dir,
        &[
            "--target",
            "extra",
            "--load",
            "-t",
            tag,
            "--build-arg",
            "extra=TRUE",
            "--build-arg",
            "tag=2.0",
        ],
    );
    assert!(ok, "{log}");
    let version = docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{index .Config.Labels \"org.opencontainers.image.version\"}}",
        tag,
    ]);
    assert_eq!(version, "2.0", "the tag arg reaches the image");
    let (ok, log) = buildx(
        &dir,
        &["--target", "extra", "--build-arg", "STRATA_PROFILE=full"],
    );
    assert!(ok, "{log}");
    // A bad value is an error at the arg's declaration, never a silent false.
    let (ok, log) = buildx(&dir, &["--target", "extra", "--build-arg", "extra=maybe"]);
    assert!(!ok);
    assert_located(&log, STACK, "extra =");
}

#[test]
fn cached_rebuild_and_one_changed_file_reruns_only_what_follows_its_copy() {
    frontend_image();
    let dir = project("cache");
    let tag = "strata-test/behaviour-app:cache";
    let (ok, log) = buildx(&dir, &["--target", "app", "--load", "-t", tag]);
    assert!(ok, "{log}");

    let (ok, log) = buildx(&dir, &["--target", "app", "--load", "-t", tag]);
    assert!(ok, "{log}");
    let v = vertices(&log);
    let steps: Vec<_> = v
        .iter()
        .filter(|(n, _)| n.starts_with("[base]") || n.starts_with("[app]"))
        .filter(|(n, _)| !n.contains("load context"))
        .collect();
    // BuildKit shows only what it had to look at: the final step, cached.
    assert!(!steps.is_empty(), "{v:?}");
    assert!(
        steps.iter().all(|(_, cached)| **cached),
        "a second build is fully cached: {v:?}"
    );

    // Content never built before, so the engine's cache cannot have it.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let v2 = format!("app v2 {nanos}");
    std::fs::write(dir.join("app.txt"), format!("{v2}\n")).expect("change");
    let (ok, log) = buildx(&dir, &["--target", "app", "--load", "-t", tag]);
    assert!(ok, "{log}");
    let v = vertices(&log);
    let cached = |prefix: &str| {
        v.iter()
            .find(|(n, _)| n.starts_with(prefix))
            .map(|(_, c)| *c)
    };
    assert_eq!(cached("[base] RUN echo base"), Some(true), "{v:?}");
    assert_eq!(cached("[app] COPY conf.txt"), Some(true), "{v:?}");
    assert_eq!(cached("[app] use conf"), Some(true), "{v:?}");
    assert_eq!(cached("[app] COPY app.txt"), Some(false), "{v:?}");
    assert_eq!(cached("[app] use app"), Some(false), "{v:?}");
    assert_eq!(run_in(tag, &["cat", "/app/app.out"]), v2);
}

#[test]
fn a_failing_run_points_at_its_line() {
    frontend_image();
    let dir = project("fail");
    let (ok, log) = buildx(&dir, &["--target", "broken"]);
    assert!(!ok);
    assert_located(&log, STACK, "exit 3");
    assert!(log.contains("exit code: 3"), "{log}");
}
