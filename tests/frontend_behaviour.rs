//! What users rely on when they build through the frontend: the user
//! policy on a base without useradd, build args that change what is built,
//! caching that re-runs only what a change invalidates, and failures that
//! point at the stack file's line.
//!
//! Needs the engine and `strata/frontend:latest` (`bash scripts/test.sh`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const STACK: &str = r#"# syntax=strata/frontend:latest
[stack]
name = "behaviour"
image = "behaviour/{component}:{tag}"

[args]
tag = "1.0"
uid = 1500
extra = { type = "bool", default = false }

[profiles.full]
args = { extra = true }

[user]
name = "app"
uid = "{uid}"
home = "/home/app"

[component.base]
from = "strata.local/busybox:1.36"
run = [{ cmd = "echo base > /base.txt", network = "none" }]

[component.app]
from = "base"
workdir = "/app"
steps = [
  { copy = { src = "conf.txt", dst = "/app/conf.txt" } },
  { run = { cmd = "cat /app/conf.txt > /app/conf.out", network = "none", name = "use conf" } },
  { copy = { src = "app.txt", dst = "/app/app.txt" } },
  { run = { cmd = "cat /app/app.txt > /app/app.out", network = "none", name = "use app" } },
]
cmd = ["cat", "/app/app.out"]

[component.extra]
from = "app"
when = "extra"

[component.broken]
from = "base"
run = [{ cmd = "echo about to fail; exit 3", network = "none" }]
"#;

fn project(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-behaviour-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("strata.toml"), STACK).expect("stack");
    std::fs::write(dir.join("conf.txt"), "conf v1\n").expect("conf");
    std::fs::write(
        dir.join("app.txt"),
        format!("app v1 {}\n", std::process::id()),
    )
    .expect("app");
    dir
}

fn require_frontend() {
    let ok = Command::new("docker")
        .args(["image", "inspect", "strata/frontend:latest"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "strata/frontend:latest is missing: run `bash scripts/test.sh` first"
    );
}

/// `docker buildx build` in `dir`; (success, stdout+stderr).
fn build(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("docker")
        .current_dir(dir)
        .args(["buildx", "build", "--progress=plain", "-f", "strata.toml"])
        .args(args)
        .arg(".")
        .output()
        .expect("docker runs");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn run_in(tag: &str, args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(["run", "--rm", "--network", "none"])
        .args(
            args.first()
                .map(|e| ["--entrypoint", e])
                .unwrap_or(["--entrypoint", "id"]),
        )
        .arg(tag)
        .args(args.get(1..).unwrap_or(&[]))
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Named vertices of a plain progress log and whether each was CACHED.
fn vertices(log: &str) -> BTreeMap<String, bool> {
    let mut names = BTreeMap::new();
    let mut cached = std::collections::BTreeSet::new();
    for line in log.lines() {
        let Some(rest) = line.strip_prefix('#') else {
            continue;
        };
        let Some((num, text)) = rest.split_once(' ') else {
            continue;
        };
        if text == "CACHED" {
            cached.insert(num.to_owned());
        } else if text.starts_with('[') && !names.contains_key(num) {
            names.insert(num.to_owned(), text.to_owned());
        }
    }
    names
        .into_iter()
        .map(|(n, name)| (name, cached.contains(&n)))
        .collect()
}

#[test]
fn user_policy_on_a_base_without_useradd_and_uid_override() {
    require_frontend();
    let dir = project("user");
    let tag = "strata-test/behaviour-app:user";
    let (ok, log) = build(&dir, &["--target", "app", "--load", "-t", tag]);
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

    let (ok, log) = build(
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
    require_frontend();
    let dir = project("args");
    let tag = "strata-test/behaviour-extra:args";
    // `extra` is off by default: building it explains why and where.
    let (ok, log) = build(&dir, &["--target", "extra", "-t", tag]);
    assert!(!ok);
    assert!(log.contains("component `extra` is switched off"), "{log}");
    // A flag switches it on; so does the profile that sets the flag.
    let (ok, log) = build(
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
    let out = Command::new("docker")
        .args([
            "image",
            "inspect",
            "-f",
            "{{index .Config.Labels \"org.opencontainers.image.version\"}}",
            tag,
        ])
        .output()
        .expect("docker");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "2.0",
        "the tag arg reaches the image"
    );
    let (ok, log) = build(
        &dir,
        &["--target", "extra", "--build-arg", "STRATA_PROFILE=full"],
    );
    assert!(ok, "{log}");
    // A bad value is an error at the arg's declaration, never a silent false.
    let (ok, log) = build(&dir, &["--target", "extra", "--build-arg", "extra=maybe"]);
    assert!(!ok);
    let line = STACK
        .lines()
        .position(|l| l.starts_with("extra ="))
        .expect("line")
        + 1;
    assert!(log.contains(&format!("strata.toml:{line}")), "{log}");
    assert!(
        log.contains(">>> extra = { type = \"bool\", default = false }"),
        "{log}"
    );
}

#[test]
fn cached_rebuild_and_one_changed_file_reruns_only_what_follows_its_copy() {
    require_frontend();
    let dir = project("cache");
    let tag = "strata-test/behaviour-app:cache";
    let (ok, log) = build(&dir, &["--target", "app", "--load", "-t", tag]);
    assert!(ok, "{log}");

    let (ok, log) = build(&dir, &["--target", "app", "--load", "-t", tag]);
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
    let (ok, log) = build(&dir, &["--target", "app", "--load", "-t", tag]);
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
    require_frontend();
    let dir = project("fail");
    let (ok, log) = build(&dir, &["--target", "broken"]);
    assert!(!ok);
    let line = STACK
        .lines()
        .position(|l| l.contains("exit 3"))
        .expect("line")
        + 1;
    assert!(log.contains(&format!("strata.toml:{line}")), "{log}");
    assert!(
        log.contains(">>> run = [{ cmd = \"echo about to fail; exit 3\""),
        "{log}"
    );
    assert!(log.contains("exit code: 3"), "{log}");
}
