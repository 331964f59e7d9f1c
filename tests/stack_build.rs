//! Whole-stack work on the real engine: `strata build` (one bake session),
//! atomic `--push` to the local registry, `strata bundle` and `bundle
//! verify`, `strata lock`, and the profile switches of `strata bake`.
//!
//! Needs what `scripts/test.sh` sets up first: `scripts/engine.sh` (Docker
//! 26.1 and the registry on 127.0.0.1:5000), `scripts/vendor-examples.sh`
//! and `scripts/frontend-image.sh`. Every test names its images with a
//! per-run id, so runs never see each other's tags.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Output;
use std::sync::Mutex;
use std::time::Instant;

use common::{
    docker, docker_ok, frontend_image, image_id, lossy, path_str, project, remove_images,
    require_engine, root, run_id, strata, strata_command, strata_ok, succeeded, BUSYBOX, REGISTRY,
};

const FEDBIOMED_MIRRORS: &str = "python:3.11-slim-bookworm=strata.local/python:3.11-slim-bookworm,nvidia/cuda:12.1.1-base-ubuntu22.04=strata.local/cuda:12.1.1-base-ubuntu22.04";

/// Tests that read the registry's catalogue or move a tag in it run one at a time.
static REGISTRY_LOCK: Mutex<()> = Mutex::new(());

fn registry_lock() -> std::sync::MutexGuard<'static, ()> {
    REGISTRY_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// `strata ARGS` with the fedbiomed example's mirrors; must succeed.
fn strata_mirrored(args: &[&str]) -> Output {
    let out = strata_command()
        .args(args)
        .env("STRATA_MIRRORS", FEDBIOMED_MIRRORS)
        .output()
        .expect("run strata");
    succeeded(out, "strata", args)
}

/// A JSON answer of the registry's API (plain HTTP on the loopback).
fn registry_get(path: &str) -> serde_json::Value {
    let mut s =
        std::net::TcpStream::connect(REGISTRY).expect("the registry on 127.0.0.1:5000 answers");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {REGISTRY}\r\n\r\n").expect("request");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("response");
    let body = resp.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("GET {path}: {e}: {resp}"))
}

/// The strings of a JSON array, as a set.
fn string_set(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The registry's catalogue.
fn catalogue() -> BTreeSet<String> {
    string_set(&registry_get("/v2/_catalog?n=100000")["repositories"])
}

/// The tags the registry holds for `repo`.
fn registry_tags(repo: &str) -> BTreeSet<String> {
    string_set(&registry_get(&format!("/v2/{repo}/tags/list"))["tags"])
}

/// A small stack on busybox: a base writing a unique value, and children.
fn busybox_stack(name: &str, image: &str, extra: &str) -> String {
    format!(
        r#"# syntax=strata/frontend
[stack]
name = "{name}"
image = "{image}"

[args]
tag = "{run}"

[component.base]
from = "strata.local/busybox:1.36"
user = "root"
run = [{{ cmd = "echo {run} > /run-id && cat /proc/sys/kernel/random/uuid > /base-id", network = "none" }}]

[component.one]
from = "base"
user = "root"
run = [{{ cmd = "echo one > /one", network = "none" }}]

[component.two]
from = "base"
user = "root"
run = [{{ cmd = "echo two > /two", network = "none" }}]

[component.three]
from = "base"
user = "root"
run = [{{ cmd = "echo three > /three", network = "none" }}]
{extra}"#,
        run = run_id()
    )
}

fn file_of(image: &str, path: &str) -> String {
    docker_ok(&["run", "--rm", "--network", "none", image, "cat", path])
}

#[test]
fn fedbiomed_build_tags_every_enabled_image() {
    frontend_image();
    let ex = root().join("examples/fedbiomed");
    assert!(
        ex.join("vendor/apt").is_dir() && ex.join("vendor/wheels").is_dir(),
        "examples/fedbiomed/vendor is missing: run scripts/vendor-examples.sh first"
    );
    let file = ex.join("strata.toml");
    let version = format!("test-{}", run_id());
    let version_arg = format!("version={version}");
    let started = Instant::now();
    let out = strata_mirrored(&[
        "build",
        path_str(&file),
        "--arg",
        "apt_repo=vendor/apt",
        "--arg",
        "wheels=vendor/wheels",
        "--arg",
        "gpu_apt_repo=vendor/gpu/apt",
        "--arg",
        &version_arg,
    ]);
    eprintln!(
        "fedbiomed: strata build took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let expected: Vec<String> = ["base", "node", "node-gpu", "node-gui", "researcher"]
        .iter()
        .map(|c| format!("fedbiomed/{c}:{version}"))
        .collect();
    let printed: BTreeSet<String> = lossy(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(printed, expected.iter().cloned().collect());
    for tag in &expected {
        let id = image_id(tag).unwrap_or_else(|| panic!("{tag} was not loaded into the engine"));
        assert!(id.starts_with("sha256:"));
    }
    // The GPU flavour starts through its own entrypoint (tini on the CUDA
    // stand-in, which has no Python of its own) and runs Python as the policy user.
    let gpu = docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &expected[2],
        "python",
        "-c",
        "import os, six, fedbiomed; print(os.getuid(), os.getgid())",
    ]);
    assert_eq!(gpu.trim(), "2101 2101", "{gpu}");
    // The metadata the naming rule promised: FBM_IMAGE_VERSION is the tag.
    let env = docker_ok(&[
        "image",
        "inspect",
        &expected[1],
        "--format",
        "{{json .Config.Env}}",
    ]);
    assert!(
        env.contains(&format!("FBM_IMAGE_VERSION={version}")),
        "{env}"
    );
    // The minimal profile builds exactly base, node and researcher.
    let bake = strata_mirrored(&["bake", path_str(&file), "--profile", "minimal"]);
    let def: serde_json::Value = serde_json::from_slice(&bake.stdout).expect("bake JSON");
    assert_eq!(
        targets(&def),
        ["base", "node", "researcher"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    remove_images(&expected);
}

#[test]
fn shared_base_runs_once_for_every_component() {
    frontend_image();
    let image = format!("strata-test/shared-{}-{{component}}:{{tag}}", run_id());
    let dir = project("shared", busybox_stack("shared", &image, ""));
    let started = Instant::now();
    let out = strata_ok(&["build", path_str(&dir.join("strata.toml"))]);
    eprintln!(
        "shared base: strata build took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let tags: Vec<String> = lossy(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(tags.len(), 4, "{tags:?}");
    let ids: BTreeSet<String> = tags.iter().map(|t| file_of(t, "/base-id")).collect();
    assert_eq!(ids.len(), 1, "the base ran more than once: {ids:?}");
    let id = ids.into_iter().next().unwrap_or_default();
    assert_eq!(id.len(), 36, "not a uuid: {id}");
    for c in ["one", "two", "three"] {
        let tag = format!("strata-test/shared-{}-{c}:{}", run_id(), run_id());
        assert_eq!(file_of(&tag, &format!("/{c}")), c);
    }
    remove_images(&tags);
}

#[test]
fn a_failed_component_pushes_nothing() {
    frontend_image();
    let _registry = registry_lock();
    let image = format!("{REGISTRY}/strata-fail-{}-{{component}}:{{tag}}", run_id());
    let extra = r#"
[component.broken]
from = "base"
user = "root"
run = [{ cmd = "exit 3", network = "none" }]
"#;
    let stack = busybox_stack("fail", &image, extra);
    let line = stack
        .lines()
        .position(|l| l == "[component.broken]")
        .map(|i| i + 1)
        .expect("the broken component's line");
    let dir = project("fail", &stack);
    let before = catalogue();
    let out = strata(&["build", path_str(&dir.join("strata.toml")), "--push"]);
    let err = lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("strata.toml:{line}:")) && err.contains("component `broken` failed"),
        "the error should name the component and its line {line}:\n{err}"
    );
    assert!(err.contains("nothing pushed"), "{err}");
    assert!(
        lossy(&out.stdout).trim().is_empty(),
        "stdout: {}",
        lossy(&out.stdout)
    );
    assert_eq!(
        catalogue(),
        before,
        "the registry changed although a component failed"
    );
    let tags: Vec<String> = ["base", "one", "two", "three", "broken"]
        .iter()
        .map(|c| format!("{REGISTRY}/strata-fail-{}-{c}:{}", run_id(), run_id()))
        .collect();
    assert!(image_id(&tags[4]).is_none(), "the broken image exists");
    remove_images(&tags);
}

#[test]
fn push_then_pull_gives_the_same_digests() {
    frontend_image();
    let _registry = registry_lock();
    let image = format!("{REGISTRY}/strata-push-{}-{{component}}:{{tag}}", run_id());
    // The base is an intermediate: never pushed.
    let stack = busybox_stack("push", &image, "")
        .replace("[component.base]\n", "[component.base]\npublish = false\n");
    let dir = project("push", &stack);
    let lock_file = dir.join("pushed.toml");
    let started = Instant::now();
    let out = strata_ok(&[
        "build",
        path_str(&dir.join("strata.toml")),
        "--push",
        "--lock-file",
        path_str(&lock_file),
    ]);
    eprintln!(
        "push: strata build --push took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let pushed: Vec<(String, String)> = lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (i, d) = l.split_once('@').expect("image@digest");
            (i.to_owned(), d.to_owned())
        })
        .collect();
    let names: BTreeSet<&str> = pushed.iter().map(|(i, _)| i.as_str()).collect();
    let want: Vec<String> = ["one", "two", "three"]
        .iter()
        .map(|c| format!("{REGISTRY}/strata-push-{}-{c}:{}", run_id(), run_id()))
        .collect();
    assert_eq!(names, want.iter().map(String::as_str).collect());
    let catalogue = catalogue();
    assert!(
        !catalogue.contains(&format!("strata-push-{}-base", run_id())),
        "the unpublished base was pushed"
    );
    let lock: toml::Table =
        toml::from_str(&std::fs::read_to_string(&lock_file).expect("lock file"))
            .expect("lock TOML");
    for (image, digest) in &pushed {
        assert!(
            digest.starts_with("sha256:") && digest.len() == 71,
            "{digest}"
        );
        let component = image
            .split("strata-push-")
            .nth(1)
            .and_then(|s| s.split_once('-'))
            .and_then(|(_, rest)| rest.split(':').next())
            .expect("component");
        assert_eq!(
            lock["images"][component]["digest"].as_str(),
            Some(digest.as_str())
        );
        // Pull it back by tag, from the registry: the same digest.
        docker_ok(&["rmi", image]);
        docker_ok(&["pull", "-q", image]);
        let repo_digests = docker_ok(&[
            "image",
            "inspect",
            image,
            "--format",
            "{{json .RepoDigests}}",
        ]);
        assert!(
            repo_digests.contains(digest.as_str()),
            "pulled {image}: {repo_digests}, pushed {digest}"
        );
        // And by digest.
        let repo = image.rsplit_once(':').map_or(image.as_str(), |(r, _)| r);
        docker_ok(&["pull", "-q", &format!("{repo}@{digest}")]);
    }
    let mut all = want.clone();
    all.push(format!(
        "{REGISTRY}/strata-push-{}-base:{}",
        run_id(),
        run_id()
    ));
    remove_images(&all);
}

#[test]
fn bundle_restores_every_image_and_tag_and_verify_rejects_corruption() {
    frontend_image();
    let third = format!("strata-test/third-{}:1", run_id());
    docker_ok(&["tag", "strata.local/busybox:1.36", &third]);
    let image = format!("strata-test/bundle-{}-{{component}}:{{tag}}", run_id());
    let extra = format!("\n[third-party]\ntool = \"{third}\"\n");
    let stack = busybox_stack("bundle", &image, &extra)
        .replace("[component.base]\n", "[component.base]\npublish = false\n");
    let dir = project("bundle", &stack);
    let file = dir.join("strata.toml");
    strata_ok(&["build", path_str(&file)]);
    let published: Vec<String> = ["one", "two", "three"]
        .iter()
        .map(|c| format!("strata-test/bundle-{}-{c}:{}", run_id(), run_id()))
        .collect();
    let mut expected = published.clone();
    expected.push(third.clone());
    let ids: Vec<String> = expected
        .iter()
        .map(|t| image_id(t).expect("built"))
        .collect();

    let archive = dir.join("stack.tar.gz");
    let started = Instant::now();
    let out = strata_ok(&[
        "bundle",
        path_str(&file),
        "-o",
        path_str(&archive),
        "--with-third-party",
    ]);
    eprintln!("bundle: {:.1}s", started.elapsed().as_secs_f64());
    let listed: BTreeSet<String> = lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split('\t').next().map(str::to_owned))
        .collect();
    assert_eq!(listed, expected.iter().cloned().collect());
    let verified = strata_ok(&["bundle", "verify", path_str(&archive)]);
    assert_eq!(lossy(&verified.stdout), lossy(&out.stdout));

    // The base (publish = false) is not in it; everything else comes back.
    let mut all = expected.clone();
    all.push(format!("strata-test/bundle-{}-base:{}", run_id(), run_id()));
    remove_images(&all);
    for t in &expected {
        assert!(image_id(t).is_none(), "{t} still present after rmi");
    }
    docker_ok(&["load", "-i", path_str(&archive)]);
    for (t, id) in expected.iter().zip(&ids) {
        assert_eq!(
            image_id(t).as_ref(),
            Some(id),
            "{t} not restored by docker load"
        );
    }
    assert!(
        image_id(&all[all.len() - 1]).is_none(),
        "the unpublished base was bundled"
    );

    // A flipped bit inside a layer and a truncated archive are rejected.
    let bytes = std::fs::read(&archive).expect("archive");
    let mut flipped = bytes.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x20;
    let bad = dir.join("flipped.tar.gz");
    std::fs::write(&bad, &flipped).expect("write");
    let out = strata(&["bundle", "verify", path_str(&bad)]);
    let err = lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("member `"),
        "the error should name a member: {err}"
    );
    let short = dir.join("truncated.tar.gz");
    std::fs::write(&short, &bytes[..bytes.len() * 3 / 4]).expect("write");
    let out = strata(&["bundle", "verify", path_str(&short)]);
    assert_eq!(out.status.code(), Some(1), "{}", lossy(&out.stderr));

    // Uncompressed content changed in place: the member is named.
    let mut tar = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes.as_slice())
        .read_to_end(&mut tar)
        .expect("gunzip");
    // The first blob's header (512-byte aligned, named blobs/sha256/<hex>); its content follows.
    let header = (0..tar.len() / 512)
        .map(|i| i * 512)
        .find(|&h| tar[h..].starts_with(b"blobs/sha256/") && tar[h + 13].is_ascii_hexdigit())
        .expect("a blob member");
    tar[header + 512 + 5] ^= 0x01;
    let plain = dir.join("edited.tar");
    std::fs::write(&plain, &tar).expect("write");
    let out = strata(&["bundle", "verify", path_str(&plain)]);
    let err = lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is corrupt"), "{err}");

    // zstd works the same way, and docker load reads it.
    let zst = dir.join("stack.tar.zst");
    strata_ok(&[
        "bundle",
        path_str(&file),
        "-o",
        path_str(&zst),
        "--with-third-party",
    ]);
    strata_ok(&["bundle", "verify", path_str(&zst)]);
    remove_images(&expected);
    docker_ok(&["load", "-i", path_str(&zst)]);
    for (t, id) in expected.iter().zip(&ids) {
        assert_eq!(image_id(t).as_ref(), Some(id), "{t} not restored from zstd");
    }
    remove_images(&expected);
}

/// The targets of a bake definition's default group.
fn targets(def: &serde_json::Value) -> BTreeSet<String> {
    def["group"]["default"]["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| t.as_str().expect("name").to_owned())
        .collect()
}

#[test]
fn fate_builds_the_basic_images_for_arm64_and_the_rest_for_amd64_only() {
    // No engine needed: `strata bake` and `strata targets` only print.
    let file = root().join("examples/fate/strata.toml");
    let basic = ["base-image", "eggroll", "fateboard", "fateflow"];
    let out = strata_ok(&[
        "bake",
        path_str(&file),
        "--platform",
        "linux/amd64,linux/arm64",
    ]);
    let def: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bake JSON");
    let all = targets(&def);
    assert!(all.len() > basic.len(), "{all:?}");
    for name in &all {
        let platforms: Vec<&str> = def["target"][name.as_str()]["platforms"]
            .as_array()
            .unwrap_or_else(|| panic!("no platforms for {name}"))
            .iter()
            .filter_map(|p| p.as_str())
            .collect();
        let want: &[&str] = if basic.contains(&name.as_str()) {
            &["linux/amd64", "linux/arm64"]
        } else {
            &["linux/amd64"]
        };
        assert_eq!(platforms, want, "{name}");
    }
    // arm64 alone: the basic set, whatever the profile enables.
    let out = strata_ok(&[
        "bake",
        path_str(&file),
        "--platform",
        "linux/arm64",
        "--profile",
        "all",
    ]);
    let def: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bake JSON");
    let want: BTreeSet<String> = basic.iter().map(|s| s.to_string()).collect();
    assert_eq!(targets(&def), want);
    let out = strata_ok(&["targets", path_str(&file), "--platform", "linux/arm64"]);
    let listed = lossy(&out.stdout);
    let enabled: BTreeSet<String> = listed
        .lines()
        .skip(1)
        .filter(|l| !l.contains("[disabled:"))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    assert_eq!(enabled, want, "{listed}");
}

#[test]
fn fate_profiles_switch_exactly_the_right_components() {
    // No engine needed: `strata bake` only prints.
    let file = root().join("examples/fate/strata.toml");
    let set =
        |names: &[&str]| -> BTreeSet<String> { names.iter().map(|s| s.to_string()).collect() };
    let basic = set(&["base-image", "fateflow", "fateboard", "eggroll"]);
    let spark = &basic
        | &set(&[
            "fateflow-spark",
            "spark-base",
            "spark-master",
            "spark-worker",
            "nginx",
        ]);
    let defaults = &spark
        | &set(&[
            "fateflow-nn",
            "eggroll-nn",
            "fateflow-spark-nn",
            "spark-worker-nn",
            "client",
            "fate-test",
        ]);
    let ipcl = &defaults
        | &set(&[
            "base-image-ipcl",
            "fateflow-ipcl",
            "eggroll-ipcl",
            "fateflow-spark-ipcl",
            "spark-base-ipcl",
            "spark-worker-ipcl",
            "fate-test-ipcl",
        ]);
    let gpu = &defaults
        | &set(&[
            "fateflow-nn-gpu",
            "eggroll-nn-gpu",
            "fateflow-spark-nn-gpu",
            "spark-worker-nn-gpu",
            "fateflow-all-gpu",
            "eggroll-all-gpu",
            "fateflow-spark-all-gpu",
            "spark-worker-all-gpu",
        ]);
    let all = &(&ipcl | &gpu) | &set(&["fate-upgrade-manager"]);
    assert_eq!(all.len(), 31);
    for (profile, want) in [
        (None, &defaults),
        (Some("basic"), &basic),
        (Some("spark"), &spark),
        (Some("ipcl"), &ipcl),
        (Some("gpu"), &gpu),
        (Some("all"), &all),
    ] {
        let mut args = vec!["bake", path_str(&file)];
        if let Some(p) = profile {
            args.extend(["--profile", p]);
        }
        let out = strata_ok(&args);
        let def: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bake JSON");
        assert_eq!(&targets(&def), want, "profile {profile:?}");
        for name in want {
            let t = &def["target"][name.as_str()];
            assert_eq!(t["target"].as_str(), Some(name.as_str()));
            assert_eq!(t["dockerfile"].as_str(), Some("strata.toml"));
            assert_eq!(
                t["tags"][0].as_str().map(str::to_owned),
                Some(format!("federatedai/{name}:1.11.4-release"))
            );
            assert_eq!(t["output"][0].as_str(), Some("type=docker"));
            assert_eq!(
                t["args"]["BUILDKIT_SYNTAX"].as_str(),
                Some("strata/frontend:latest")
            );
            assert_eq!(t["args"]["STRATA_PROFILE"].as_str(), profile);
            assert_eq!(
                Path::new(t["context"].as_str().expect("context")),
                file.parent().expect("dir")
            );
        }
    }
    // --only takes what the component needs along, and a flag still wins over a profile.
    let out = strata_ok(&["bake", path_str(&file), "--only", "spark-master"]);
    let def: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bake JSON");
    assert_eq!(
        targets(&def),
        set(&["base-image", "fateflow", "spark-base", "spark-master"])
    );
    let out = strata_ok(&[
        "bake",
        path_str(&file),
        "--profile",
        "basic",
        "--arg",
        "spark=true",
    ]);
    let def: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bake JSON");
    assert_eq!(targets(&def), spark);
    assert_eq!(
        def["target"]["nginx"]["args"]["spark"].as_str(),
        Some("true")
    );
    // A disabled or unknown component is an error, not a silent skip.
    let out = strata(&["bake", path_str(&file), "--only", "fateflow-ipcl"]);
    assert!(!out.status.success() && lossy(&out.stderr).contains("disabled"));
    let out = strata(&["bake", path_str(&file), "--only", "fateflw"]);
    assert!(!out.status.success() && lossy(&out.stderr).contains("fateflow"));
}

#[test]
fn lock_pins_digests_against_a_moved_tag() {
    frontend_image();
    let _registry = registry_lock();
    let upstream = format!("{REGISTRY}/strata-lock-test:1");
    docker_ok(&["tag", "strata.local/busybox:1.36", &upstream]);
    docker_ok(&["push", "-q", &upstream]);
    let stack = format!(
        r#"# syntax=strata/frontend
[stack]
name = "locktest"
image = "strata-test/lock-{run}-{{component}}:1"

[component.app]
from = "{upstream}"
user = "root"
run = [{{ cmd = "echo {run} > /run-id", network = "none" }}]

[component.tool]
from = "strata.local/debian:bookworm"
user = "root"
run = [{{ cmd = "echo {run} > /run-id", network = "none" }}]
"#,
        run = run_id()
    );
    let dir = project("lock", &stack);
    let file = dir.join("strata.toml");
    strata_ok(&["lock", path_str(&file)]);
    let lock_text = std::fs::read_to_string(dir.join("strata.lock")).expect("strata.lock written");
    let lock: toml::Table = toml::from_str(&lock_text).expect("lock TOML");
    let digest = lock["digests"][upstream.as_str()]
        .as_str()
        .expect("the registry image is pinned")
        .to_owned();
    let registry_digest = docker_ok(&[
        "buildx",
        "imagetools",
        "inspect",
        &upstream,
        "--format",
        "{{json .Manifest.Digest}}",
    ]);
    assert_eq!(registry_digest.trim_matches('"'), digest);
    // A local-only image is recorded by id, and said to be one.
    assert_eq!(
        lock["local"]["strata.local/debian:bookworm"].as_str(),
        image_id("strata.local/debian:bookworm").as_deref()
    );
    let sources = strata_ok(&["sources", path_str(&file), "--format", "json"]);
    let sources: serde_json::Value = serde_json::from_slice(&sources.stdout).expect("sources JSON");
    let pinned = sources["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|i| i["ref"] == upstream.as_str())
        .expect("the upstream image is listed");
    assert_eq!(pinned["locked"]["digest"].as_str(), Some(digest.as_str()));

    // Upstream moves the tag to another image.
    docker_ok(&["tag", "strata.local/debian:bookworm", &upstream]);
    docker_ok(&["push", "-q", &upstream]);
    let _ = docker(&["rmi", &upstream]);
    let first_layer = |image: &str| {
        docker_ok(&[
            "image",
            "inspect",
            image,
            "--format",
            "{{index .RootFS.Layers 0}}",
        ])
    };
    let app = format!("strata-test/lock-{}-app:1", run_id());
    let tool = format!("strata-test/lock-{}-tool:1", run_id());
    let out = strata_ok(&["build", path_str(&file)]);
    assert!(
        lossy(&out.stderr).contains("strata.lock"),
        "{}",
        lossy(&out.stderr)
    );
    assert_eq!(
        first_layer(&app),
        first_layer("strata.local/busybox:1.36"),
        "the build did not use the locked digest"
    );
    // Without the lock, the moved tag wins: the lock is what held it.
    std::fs::rename(dir.join("strata.lock"), dir.join("strata.lock.off")).expect("rename");
    strata_ok(&["build", path_str(&file)]);
    assert_eq!(
        first_layer(&app),
        first_layer("strata.local/debian:bookworm")
    );
    remove_images(&[app, tool]);
}

/// `image = [rule, rule]`: every name is loaded as the same image, listed
/// on stdout, given to bake, pushed (the lock file records each with its
/// digest) and bundled.
#[test]
fn an_image_list_loads_pushes_and_bundles_every_tag() {
    require_engine();
    let _registry = registry_lock();
    let run = run_id();
    let repo = |c: &str| format!("strata-tags-{run}/{c}");
    let stack = format!(
        r#"[stack]
name = "tags"
image = ["{REGISTRY}/strata-tags-{run}/{{component}}:{{version}}", "{REGISTRY}/strata-tags-{run}/{{component}}:latest"]

[args]
version = "1.0"

[component.base]
from = "{BUSYBOX}"
user = "root"
run = [{{ cmd = "echo {run} > /run-id", network = "none" }}]

[component.app]
from = "base"
user = "root"
run = [{{ cmd = "echo app > /app", network = "none" }}]
"#
    );
    let dir = project("tags", &stack);
    let file = dir.join("strata.toml");
    let components = ["base", "app"];
    let names: Vec<String> = components
        .iter()
        .flat_map(|c| ["1.0", "latest"].map(|t| format!("{REGISTRY}/{}:{t}", repo(c))))
        .collect();
    remove_images(&names);

    let out = strata_ok(&["build", path_str(&file), "--progress", "plain"]);
    let printed: BTreeSet<String> = lossy(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(printed, names.iter().cloned().collect(), "stdout");
    for pair in names.chunks(2) {
        let id = image_id(&pair[0]).unwrap_or_else(|| panic!("{} not loaded", pair[0]));
        assert_eq!(image_id(&pair[1]), Some(id), "{} is another image", pair[1]);
    }
    assert_ne!(image_id(&names[0]), image_id(&names[2]));

    let bake: serde_json::Value =
        serde_json::from_slice(&strata_ok(&["bake", path_str(&file)]).stdout).expect("bake JSON");
    assert_eq!(
        bake["target"]["app"]["tags"],
        serde_json::json!([names[2], names[3]])
    );

    let lock_file = dir.join("pushed.toml");
    let out = strata_ok(&[
        "build",
        path_str(&file),
        "--push",
        "--lock-file",
        path_str(&lock_file),
    ]);
    let pushed: Vec<(String, String)> = lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (i, d) = l.split_once('@').expect("image@digest");
            (i.to_owned(), d.to_owned())
        })
        .collect();
    assert_eq!(
        pushed
            .iter()
            .map(|(i, _)| i.clone())
            .collect::<BTreeSet<_>>(),
        names.iter().cloned().collect(),
        "pushed names"
    );
    let lock: toml::Table =
        toml::from_str(&std::fs::read_to_string(&lock_file).expect("lock file"))
            .expect("lock TOML");
    for c in components {
        assert_eq!(
            registry_tags(&repo(c)),
            BTreeSet::from(["1.0".to_owned(), "latest".to_owned()]),
            "tags of {c} in the registry"
        );
        let entry = &lock["images"][c];
        assert_eq!(
            entry["image"].as_str(),
            Some(format!("{REGISTRY}/{}:1.0", repo(c)).as_str())
        );
        let tags = entry["tags"].as_array().expect("tags in the lock file");
        let locked: BTreeSet<(String, String)> = tags
            .iter()
            .map(|t| {
                (
                    t["image"].as_str().expect("image").to_owned(),
                    t["digest"].as_str().expect("digest").to_owned(),
                )
            })
            .collect();
        let want: BTreeSet<(String, String)> = pushed
            .iter()
            .filter(|(i, _)| i.contains(&format!("/{}:", repo(c))))
            .cloned()
            .collect();
        assert_eq!(locked.len(), 2, "{c}: {tags:?}");
        assert_eq!(locked, want, "{c}: the lock file's names and digests");
        // Both tags are one manifest.
        let digests: BTreeSet<&String> = want.iter().map(|(_, d)| d).collect();
        assert_eq!(digests.len(), 1, "{c}: {want:?}");
    }

    let archive = dir.join("stack.tar.gz");
    let out = strata_ok(&["bundle", path_str(&file), "-o", path_str(&archive)]);
    let listed: BTreeSet<String> = lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split('\t').next().map(str::to_owned))
        .collect();
    assert_eq!(listed, names.iter().cloned().collect(), "bundled names");
    strata_ok(&["bundle", "verify", path_str(&archive)]);
    let ids: Vec<Option<String>> = names.iter().map(|n| image_id(n)).collect();
    remove_images(&names);
    docker_ok(&["load", "-i", path_str(&archive)]);
    for (n, id) in names.iter().zip(&ids) {
        assert_eq!(&image_id(n), id, "{n} not restored by docker load");
    }
    remove_images(&names);
}
