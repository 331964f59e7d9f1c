//! `strata build` as its own BuildKit client: one session for the whole
//! stack, progress for CI logs, the failing component named, OCI output,
//! cache export and import (registry and local directory), and another
//! engine endpoint with `--builder`.
//! Needs the engine (scripts/engine.sh), the multi-platform engine for the
//! endpoint, OCI and cache tests.

mod common;

use std::path::Path;

// The tests on the second engine take turns (common::mp_lock): the cache
// test empties that engine's build cache, which fails builds running beside it.
use common::{
    docker_ok, lossy, mp_docker_ok, mp_lock, path_str, project, pushed_stack_table, remove_images,
    require_engine, run_id, stack_table, strata, BUSYBOX, REGISTRY,
};

/// The multi-platform engine (containerd image store): a second endpoint.
fn mp_builder() -> String {
    common::mp_host()
}

/// A file of an image, by `docker run cat`. An empty answer is asked
/// again: under load, docker run can lose the output of a container that
/// exits at once (a file that is really empty stays empty).
fn cat_in(image: &str, file: &str) -> String {
    let mut got = String::new();
    for _ in 0..3 {
        got = docker_ok(&["run", "--rm", "--entrypoint", "cat", image, file]);
        if !got.is_empty() {
            break;
        }
    }
    got
}

/// Three components copying the same 2 MiB file, over one base.
fn shared_file_stack(name: &str, from: &str) -> String {
    format!(
        r#"{table}
[component.base]
from = "{from}"
user = "root"
run = ["echo base > /base"]

[component.one]
from = "base"
user = "root"
copy = [{{ src = "blob.bin", dst = "/one/blob.bin" }}]

[component.two]
from = "base"
user = "root"
copy = [{{ src = "blob.bin", dst = "/two/blob.bin" }}]

[component.three]
from = "base"
user = "root"
copy = [{{ src = ".", dst = "/three" }}]
"#,
        table = stack_table(name)
    )
}

fn blob() -> Vec<u8> {
    (0..2u32 << 20).map(|i| (i * 7 % 251) as u8).collect()
}

/// The `strata: the session sent the build context: F files, B bytes, in R requests` numbers.
fn sent(log: &str) -> (u64, u64, u64) {
    let line = log
        .lines()
        .find(|l| l.starts_with("strata: the session sent the build context:"))
        .unwrap_or_else(|| panic!("no transfer line in\n{log}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1], nums[2])
}

#[test]
fn one_session_sends_the_context_once_and_plain_progress_names_components() {
    require_engine();
    let name = "native-once";
    let dir = project(name, shared_file_stack(name, BUSYBOX));
    std::fs::write(dir.join("blob.bin"), blob()).expect("write blob");
    let out = strata(&[
        "build",
        path_str(&dir.join("strata.toml")),
        "--progress",
        "plain",
    ]);
    let log = lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let tags: Vec<String> = lossy(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(tags.len(), 4, "{tags:?}");
    // Three components read blob.bin; its bytes cross the session once.
    let (_, bytes, requests) = sent(&log);
    let size = blob().len() as u64;
    assert!(bytes >= size, "the blob was not sent: {bytes} bytes\n{log}");
    assert!(
        bytes < 2 * size,
        "the context was sent more than once: {bytes} bytes for a {size}-byte file in {requests} requests\n{log}"
    );
    // Plain progress: numbered steps named by component, each shared step once.
    assert!(
        log.contains("] [base] RUN echo base > /base")
            || log.contains(" [base] RUN echo base > /base"),
        "{log}"
    );
    let base_runs = log
        .lines()
        .filter(|l| l.ends_with("[base] RUN echo base > /base"))
        .count();
    assert_eq!(
        base_runs, 1,
        "the shared base step is shown once per build:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.starts_with('#') && l.contains(" DONE ")),
        "{log}"
    );
    for t in &tags[1..] {
        assert_eq!(cat_in(t, "/base"), "base", "{t}");
    }
    let one = docker_ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "wc",
        &tags[1],
        "-c",
        "/one/blob.bin",
    ]);
    assert!(one.starts_with(&size.to_string()), "{one}");
    remove_images(&tags);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failing_component_is_named_with_its_step_and_output() {
    require_engine();
    let name = "native-fail";
    let stack = format!(
        r#"{table}
[component.base]
from = "{BUSYBOX}"
user = "root"

[component.good]
from = "base"
user = "root"
run = ["echo fine > /fine"]

[component.broken]
from = "base"
user = "root"
run = ["echo about to fail; exit 7"]
"#,
        table = stack_table(name)
    );
    let dir = project(name, &stack);
    let out = strata(&[
        "build",
        path_str(&dir.join("strata.toml")),
        "--progress",
        "plain",
    ]);
    let log = lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    let line = common::line_of(&stack, "exit 7");
    assert!(
        log.contains(&format!(
            "strata.toml:{line}: [broken] RUN echo about to fail; exit 7 failed: exit code: 7"
        )),
        "the error names the step at its line:\n{log}"
    );
    let header = common::line_of(&stack, "[component.broken]");
    assert!(
        log.contains(&format!(
            "strata.toml:{header}:12: error: component `broken` failed to build"
        )),
        "{log}"
    );
    assert!(
        log.contains("about to fail"),
        "the step's output is shown:\n{log}"
    );
    assert!(log.contains("failed: broken;"), "{log}");
    let good = format!("strata-test/{name}-good:{}", run_id());
    assert!(
        common::image_id(&good).is_some(),
        "the good component was built:\n{log}"
    );
    remove_images(&[good, format!("strata-test/{name}-base:{}", run_id())]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A busybox stack for the second engine (its store has only what the registry gives it).
fn mp_stack(name: &str) -> String {
    format!(
        r#"{table}
[component.base]
from = "{REGISTRY}/strata/busybox:1.36"
user = "root"
run = ["cat /proc/sys/kernel/random/uuid > /id"]

[component.app]
from = "base"
user = "root"
run = ["uname -m > /arch"]
"#,
        table = pushed_stack_table(name)
    )
}

#[test]
fn another_engine_with_builder_oci_output_and_multi_platform() {
    require_engine();
    let _engine = mp_lock();
    let name = "native-oci";
    let dir = project(name, mp_stack(name));
    let oci = dir.join("oci");
    let out = build_on_mp(
        &dir.join("strata.toml"),
        &[BOTH, "--oci-dir", path_str(&oci), "--progress", "quiet"],
    );
    let log = lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&mp_builder()),
        "the summary names the engine:\n{log}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with('#')),
        "quiet shows no steps:\n{log}"
    );
    // Each component is an OCI layout tar with an index of both platforms.
    for c in ["base", "app"] {
        let tar = oci.join(format!("{c}.tar"));
        let listing = std::process::Command::new("tar")
            .arg("-xOf")
            .arg(&tar)
            .arg("index.json")
            .output()
            .expect("tar runs");
        assert!(
            listing.status.success(),
            "{}: {}",
            tar.display(),
            lossy(&listing.stderr)
        );
        let index: serde_json::Value =
            serde_json::from_slice(&listing.stdout).expect("index.json is JSON");
        assert_eq!(index["schemaVersion"], 2, "{index}");
        let tag = format!("{REGISTRY}/strata-test/{name}-{c}:{}", run_id());
        let names: Vec<&str> = index["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .filter_map(|m| m["annotations"]["io.containerd.image.name"].as_str())
            .collect();
        assert!(names.iter().any(|n| n.ends_with(&tag)), "{index}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `strata build FILE` on the second engine with plain progress and
/// `extra`; its log (stderr), after checking it succeeded.
fn mp_build(file: &Path, extra: &[&str]) -> String {
    let out = build_on_mp(file, &[&["--progress", "plain"], extra].concat());
    let log = lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    log
}

/// `--platform` for both of the second engine's platforms.
const BOTH: &str = "--platform=linux/amd64,linux/arm64";

/// `strata build FILE --builder <the second engine> ARGS`.
fn build_on_mp(file: &Path, args: &[&str]) -> std::process::Output {
    let builder = mp_builder();
    strata(&[&["build", path_str(file), "--builder", &builder], args].concat())
}

/// Every RUN step of a plain-progress log was answered from the cache.
fn assert_every_run_cached(log: &str) {
    let runs: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("] RUN ") && l.starts_with('#'))
        .collect();
    assert!(!runs.is_empty(), "{log}");
    for l in &runs {
        let n = l.split(' ').next().unwrap_or_default();
        assert!(
            log.lines().any(|m| m == format!("{n} CACHED")),
            "step {l} ran again although its cache was imported:\n{log}"
        );
    }
}

/// Empties the second engine's build cache and removes the stack's images.
fn mp_forget(name: &str) {
    let images: Vec<String> = ["base", "app"]
        .iter()
        .map(|c| format!("{REGISTRY}/strata-test/{name}-{c}:{}", run_id()))
        .collect();
    let mut args = vec!["rmi", "-f"];
    args.extend(images.iter().map(String::as_str));
    mp_docker_ok(&args);
    mp_docker_ok(&["builder", "prune", "-af"]);
}

#[test]
fn cache_exported_to_a_registry_is_imported_by_a_fresh_engine_cache() {
    require_engine();
    let _engine = mp_lock();
    let name = "native-cache";
    let dir = project(name, mp_stack(name));
    let file = dir.join("strata.toml");
    let cache = format!("{REGISTRY}/strata-test/{name}-cache:{}", run_id());
    let to = format!("type=registry,ref={cache},mode=max");
    let first = mp_build(&file, &["--cache-to", &to]);
    assert!(
        first.contains("writing cache manifest") || first.contains("exporting cache"),
        "{first}"
    );
    let tag = format!("{REGISTRY}/strata-test/{name}-app:{}", run_id());
    let id_before = mp_docker_ok(&["run", "--rm", "--entrypoint", "cat", &tag, "/id"]);
    // A fresh engine cache: the images and every cache record gone.
    mp_forget(name);
    let second = mp_build(&file, &["--cache-from", &cache]);
    assert_every_run_cached(&second);
    let id_after = mp_docker_ok(&["run", "--rm", "--entrypoint", "cat", &tag, "/id"]);
    assert_eq!(id_before, id_after, "the base step ran again");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `index.json` tags of a local cache directory, each checked to
/// name a blob that is there and has its digest.
fn local_cache_tags(cache: &Path) -> Vec<String> {
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(cache.join("index.json")).expect("index.json is written"),
    )
    .expect("index.json is JSON");
    assert_eq!(index["schemaVersion"], 2, "{index}");
    let layout = std::fs::read_to_string(cache.join("oci-layout")).expect("oci-layout");
    assert!(
        layout.contains(r#""imageLayoutVersion":"1.0.0""#),
        "{layout}"
    );
    let mut tags = Vec::new();
    for m in index["manifests"].as_array().expect("manifests") {
        let digest = m["digest"].as_str().expect("a digest");
        let hex = digest.strip_prefix("sha256:").expect("sha256");
        let blob = std::fs::read(cache.join("blobs/sha256").join(hex)).expect("the manifest blob");
        assert_eq!(blob.len() as u64, m["size"].as_u64().expect("a size"));
        use sha2::Digest as _;
        let sum: String = sha2::Sha256::digest(&blob)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sum, hex, "the blob has the digest it is named by");
        let tag = m["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .expect("a tag");
        tags.push(tag.to_owned());
    }
    tags.sort();
    tags
}

#[test]
fn cache_exported_to_a_local_directory_is_imported_by_a_fresh_engine_cache() {
    require_engine();
    let _engine = mp_lock();
    let name = "native-localcache";
    let dir = project(name, mp_stack(name));
    let file = dir.join("strata.toml");
    let cache = common::temp_dir(&format!("{name}-dir")).join("cache");
    let to = format!("type=local,dest={},mode=max", path_str(&cache));
    let first = mp_build(&file, &["--cache-to", &to]);
    assert!(
        first.contains("exporting cache to client directory"),
        "{first}"
    );
    // One layout, one tag per component.
    assert_eq!(local_cache_tags(&cache), ["app", "base"]);
    let tag = format!("{REGISTRY}/strata-test/{name}-app:{}", run_id());
    let id_before = mp_docker_ok(&["run", "--rm", "--entrypoint", "cat", &tag, "/id"]);
    let arch_before = mp_docker_ok(&["run", "--rm", "--entrypoint", "cat", &tag, "/arch"]);
    mp_forget(name);
    let from = format!("type=local,src={}", path_str(&cache));
    let second = mp_build(&file, &["--cache-from", &from]);
    assert_every_run_cached(&second);
    let id_after = mp_docker_ok(&["run", "--rm", "--entrypoint", "cat", &tag, "/id"]);
    let arch_after = mp_docker_ok(&["run", "--rm", "--entrypoint", "cat", &tag, "/arch"]);
    assert_eq!(id_before, id_after, "the base step ran again");
    assert_eq!(arch_before, arch_after);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(cache.parent().expect("the cache's parent"));
}

#[test]
fn a_missing_or_foreign_local_cache_is_an_error_before_the_build() {
    let name = "native-localcache-bad";
    let dir = project(name, mp_stack(name));
    let file = dir.join("strata.toml");
    let missing = dir.join("no-such-cache");
    let not_a_cache = dir.join("empty");
    std::fs::create_dir_all(&not_a_cache).expect("mkdir");
    for (src, says) in [
        (&missing, "no such directory"),
        (
            &not_a_cache,
            "not a cache directory written by --cache-to type=local",
        ),
    ] {
        let from = format!("type=local,src={}", path_str(src));
        let out = strata(&["build", path_str(&file), "--cache-from", &from]);
        let log = lossy(&out.stderr);
        assert!(!out.status.success(), "{log}");
        assert!(log.contains(says) && log.contains(path_str(src)), "{log}");
        assert!(!log.contains("strata: building"), "no build starts:\n{log}");
    }
    let out = strata(&["build", path_str(&file), "--cache-from", "type=local"]);
    let log = lossy(&out.stderr);
    assert!(!out.status.success() && log.contains("src=DIR"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_engine_that_cannot_export_cache_says_what_can() {
    require_engine();
    let name = "native-nocacheexport";
    let stack = format!(
        r#"{table}
[component.base]
from = "{BUSYBOX}"
run = ["true"]
"#,
        table = stack_table(name)
    );
    let dir = project(name, stack);
    let to = format!("type=local,dest={}", path_str(&dir.join("cache")));
    // The default engine keeps images in its graph driver: no cache export.
    let out = strata(&[
        "build",
        path_str(&dir.join("strata.toml")),
        "--cache-to",
        &to,
    ]);
    let log = lossy(&out.stderr);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("unknown cache exporter")
            && log.contains("Docker with the containerd image store"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bundle_builds_first_so_an_edit_is_never_left_out() {
    require_engine();
    let name = "native-bundle";
    let stack = format!(
        r#"{table}
[component.app]
from = "{BUSYBOX}"
user = "root"
copy = [{{ src = "version.txt", dst = "/version.txt" }}]
"#,
        table = stack_table(name)
    );
    let dir = project(name, &stack);
    let file = dir.join("strata.toml");
    let tag = format!("strata-test/{name}-app:{}", run_id());
    std::fs::write(dir.join("version.txt"), "one\n").expect("write");
    let out = strata(&["build", path_str(&file), "--progress", "quiet"]);
    assert!(out.status.success(), "{}", lossy(&out.stderr));
    // Edited after the build, no rebuild by hand: the bundle has the edit.
    std::fs::write(dir.join("version.txt"), "two\n").expect("write");
    let bundle = dir.join("app.tar.gz");
    let out = strata(&[
        "bundle",
        path_str(&file),
        "-o",
        path_str(&bundle),
        "--progress",
        "plain",
    ]);
    let log = lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("[app] COPY version.txt"),
        "the bundle built first:\n{log}"
    );
    docker_ok(&["rmi", "-f", &tag]);
    docker_ok(&["load", "-i", path_str(&bundle)]);
    assert_eq!(
        cat_in(&tag, "/version.txt"),
        "two",
        "the bundle holds a stale image"
    );
    // A stack that does not build is not bundled.
    std::fs::remove_file(dir.join("version.txt")).expect("rm");
    let out = strata(&[
        "bundle",
        path_str(&file),
        "-o",
        path_str(&dir.join("bad.tar.gz")),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", lossy(&out.stderr));
    assert!(!dir.join("bad.tar.gz").exists());
    remove_images(&[tag]);
    let _ = std::fs::remove_dir_all(&dir);
}

fn registry_get(path: &str) -> Option<serde_json::Value> {
    let out = std::process::Command::new("curl")
        .args([
            "-sf",
            "-H",
            "Accept: application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
            &format!("http://{REGISTRY}/v2/{path}"),
        ])
        .output()
        .expect("curl runs");
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).expect("JSON"))
}

/// The platforms (`os/arch`) of an image in the local registry (an index,
/// or one manifest for a single platform); None when the tag is not there.
fn registry_platforms(repo: &str, tag: &str) -> Option<Vec<String>> {
    let top = registry_get(&format!("{repo}/manifests/{tag}"))?;
    let mut platforms: Vec<String> = match top["manifests"].as_array() {
        Some(list) => list
            .iter()
            .filter_map(|m| {
                let p = &m["platform"];
                let arch = p["architecture"].as_str()?;
                (arch != "unknown").then(|| format!("{}/{arch}", p["os"].as_str().unwrap_or("?")))
            })
            .collect(),
        None => {
            let digest = top["config"]["digest"]
                .as_str()
                .expect("a manifest's config");
            let config = registry_get(&format!("{repo}/blobs/{digest}")).expect("the config blob");
            vec![format!(
                "{}/{}",
                config["os"].as_str().unwrap_or("?"),
                config["architecture"].as_str().unwrap_or("?")
            )]
        }
    };
    platforms.sort();
    Some(platforms)
}

#[test]
fn multi_platform_push_has_each_components_platforms_and_is_atomic() {
    require_engine();
    let _engine = mp_lock();
    let run = run_id();
    // Stand-ins for a base per architecture (FATE's Dockerfile.arm64): one
    // single-platform image each, named by architecture.
    let stand = project(
        "native-stand",
        format!(
            r#"[stack]
name = "stand"
image = "{REGISTRY}/strata-test/native-stand-{{TARGETARCH}}:{run}"

[component.stand]
from = "{REGISTRY}/strata/busybox:1.36"
user = "root"
run = [{{ cmd = "echo $ARCH > /flavour", env = {{ ARCH = "{{TARGETARCH}}" }} }}]
"#
        ),
    );
    for p in ["linux/amd64", "linux/arm64"] {
        let platform = format!("--platform={p}");
        let out = build_on_mp(
            &stand.join("strata.toml"),
            &[&platform, "--push", "--progress", "quiet"],
        );
        assert!(out.status.success(), "{p}: {}", lossy(&out.stderr));
    }
    let stack = |name: &str, extra: &str| {
        format!(
            r#"{table}
[component.base]
from = "{REGISTRY}/strata-test/native-stand-{{TARGETARCH}}:{run}"
user = "root"
run = ["uname -m > /arch"]

[component.app]
from = "base"
user = "root"

[component.ipcl]
from = "base"
user = "root"
when = "TARGETARCH == 'amd64'"
{extra}"#,
            table = pushed_stack_table(name)
        )
    };
    let dir = project("native-mp", stack("native-mp", ""));
    let out = build_on_mp(
        &dir.join("strata.toml"),
        &[BOTH, "--push", "--progress", "plain"],
    );
    let log = lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let both = vec!["linux/amd64".to_owned(), "linux/arm64".to_owned()];
    for c in ["base", "app"] {
        assert_eq!(
            registry_platforms(&format!("strata-test/native-mp-{c}"), run),
            Some(both.clone()),
            "{c}\n{log}"
        );
    }
    assert_eq!(
        registry_platforms("strata-test/native-mp-ipcl", run),
        Some(vec!["linux/amd64".to_owned()]),
        "ipcl is amd64 only\n{log}"
    );
    // The arm64 image runs on arm64, on the arm64 base.
    let app = format!("{REGISTRY}/strata-test/native-mp-app:{run}");
    let got = mp_docker_ok(&[
        "run",
        "--rm",
        "--platform",
        "linux/arm64",
        &app,
        "cat",
        "/arch",
        "/flavour",
    ]);
    assert_eq!(
        got.split_whitespace().collect::<Vec<_>>(),
        ["aarch64", "arm64"],
        "{got}"
    );

    // One platform of one component fails: nothing at all is pushed.
    let broken = "\n[component.broken]\nfrom = \"base\"\nuser = \"root\"\nrun = [\"test \\\"$(uname -m)\\\" != aarch64\"]\n";
    let dir2 = project("native-mpfail", stack("native-mpfail", broken));
    let out = build_on_mp(
        &dir2.join("strata.toml"),
        &[BOTH, "--push", "--progress", "quiet"],
    );
    let log = lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("component `broken` failed to build"), "{log}");
    assert!(log.contains("nothing pushed"), "{log}");
    for c in ["base", "app", "ipcl", "broken"] {
        assert_eq!(
            registry_platforms(&format!("strata-test/native-mpfail-{c}"), run),
            None,
            "{c} was pushed although a component failed\n{log}"
        );
    }
    let _ = std::fs::remove_dir_all(&stand);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
}
