//! One `docker buildx build --platform linux/amd64,linux/arm64` through the
//! frontend: the pushed index holds both platforms, each image runs on its
//! platform (arm64 under qemu) as the policy user with its own config, and a
//! component switched off on one platform by `when = "TARGETARCH == ..."`
//! fails that build by name. A builder with `platform = "build"` runs
//! natively on the build platform for each target, and the image of each
//! target copies what it made for it. `strata build --platform` on the
//! Debian index applies the user policy to a real arm64 Debian userland.
//!
//! Needs the engine with its multi-platform dockerd (scripts/engine.sh: the
//! containerd image store, socket `STRATA_MP_SOCKET`), qemu-user-static, the
//! `127.0.0.1:5000/strata/busybox:1.36` and
//! `127.0.0.1:5000/strata/debian:bookworm` indexes (scripts/base-images.sh)
//! and the frontend image, which the test pushes to the local registry for
//! that dockerd to pull.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{
    docker, docker_ok, frontend, frontend_image, lossy, mp_docker_ok, mp_host, mp_lock, path_str,
    pushed_stack_table, remove_images, require_engine, run_id, strata, text, REGISTRY,
};

/// The frontend image under test, pushed to the local registry (unique tag).
fn pushed_frontend() -> String {
    frontend_image();
    let remote = format!("{REGISTRY}/strata-test/frontend-mp:{}", run_id());
    docker_ok(&["tag", &frontend(), &remote]);
    docker_ok(&["push", "-q", &remote]);
    remove_images(&[&remote]);
    remote
}

const STACK: &str = r#"# syntax={frontend}
[stack]
name = "multi"

[user]
name = "app"
uid = 2101

[component.app]
from = "127.0.0.1:5000/strata/busybox:1.36"
env = { BUILT_FOR = "{TARGETPLATFORM}", BUILT_ARCH = "{TARGETARCH}" }
run = ["uname -m > /etc/built-on"]

[component.amd-only]
from = "app"
when = "TARGETARCH == 'amd64'"
"#;

/// `docker buildx build` on the multi-platform dockerd: (success, output).
fn buildx_mp(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("docker")
        .current_dir(dir)
        .env("DOCKER_HOST", mp_host())
        .args(["buildx", "build", "--progress=plain", "-f", "strata.toml"])
        .args([
            "--provenance=false",
            "--platform",
            "linux/amd64,linux/arm64",
        ])
        .args(args)
        .arg(".")
        .output()
        .expect("run docker buildx build");
    (out.status.success(), text(&out))
}

/// The lines `script` prints in `image` (pulled again) run on `platform`.
fn run_on(platform: &str, image: &str, script: &str) -> Vec<String> {
    run_with(docker, platform, image, script)
}

/// The lines `script` prints in `image` (pulled again) run on `platform`
/// by the engine `docker` drives.
fn run_with(
    docker: fn(&[&str]) -> std::process::Output,
    platform: &str,
    image: &str,
    script: &str,
) -> Vec<String> {
    let out = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pull",
        "always",
        "--platform",
        platform,
        image,
        "sh",
        "-c",
        script,
    ]);
    assert!(
        out.status.success(),
        "docker run {platform}: {}",
        text(&out)
    );
    lossy(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn one_build_pushes_an_index_of_both_platforms() {
    let fe = pushed_frontend();
    let stack = STACK.replace("# syntax={frontend}", &format!("# syntax={fe}"));
    let dir = common::project("multi-platform", stack);
    let image = format!("{REGISTRY}/strata-test/multi-app:{}", run_id());

    let output = format!("type=image,name={image},push=true");
    let (ok, log) = buildx_mp(&dir, &["--target", "app", "--output", &output]);
    assert!(ok, "multi-platform build failed:\n{log}");
    assert!(log.contains("[linux/arm64 app] RUN uname -m"), "{log}");

    let raw = docker_ok(&["buildx", "imagetools", "inspect", "--raw", &image]);
    let index: serde_json::Value = serde_json::from_str(&raw).expect("index JSON");
    let platforms: BTreeSet<String> = index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("not an index: {raw}"))
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap_or_default(),
                m["platform"]["architecture"].as_str().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        platforms,
        BTreeSet::from(["linux/amd64".to_owned(), "linux/arm64".to_owned()]),
        "{raw}"
    );

    for (platform, arch, machine) in [
        ("linux/arm64", "arm64", "aarch64"),
        ("linux/amd64", "amd64", "x86_64"),
    ] {
        let lines = run_on(
            platform,
            &image,
            "uname -m; id -un; cat /etc/built-on; echo $BUILT_FOR $BUILT_ARCH",
        );
        assert_eq!(
            lines,
            [
                machine.to_owned(),
                "app".to_owned(),
                machine.to_owned(),
                format!("{platform} {arch}")
            ],
            "{platform}"
        );
        let config = docker_ok(&[
            "image",
            "inspect",
            "-f",
            "{{.Os}}/{{.Architecture}} {{.Config.User}}",
            &image,
        ]);
        assert_eq!(config, format!("{platform} 2101:2101"));
        remove_images(&[&image]);
    }

    // amd-only exists on amd64 only: asking for it on both platforms fails
    // and names it, and nothing is pushed.
    let other = format!("{REGISTRY}/strata-test/multi-amd-only:{}", run_id());
    let output = format!("type=image,name={other},push=true");
    let (ok, log) = buildx_mp(&dir, &["--target", "amd-only", "--output", &output]);
    assert!(!ok, "amd-only built for arm64:\n{log}");
    assert!(
        log.contains("for linux/arm64: component `amd-only` is switched off"),
        "{log}"
    );
    let out = docker(&["buildx", "imagetools", "inspect", "--raw", &other]);
    assert!(!out.status.success(), "{other} was pushed");
    let _ = std::fs::remove_dir_all(dir);
}

/// `strata llb` and `strata check` read the stack for `--platform`.
#[test]
fn llb_and_check_take_a_platform() {
    let stack = STACK.replace("# syntax={frontend}\n", "");
    let dir = common::project("multi-platform-cli", &stack);
    let file = dir.join("strata.toml");
    let file = file.to_str().expect("utf-8 path");
    let args = ["llb", file, "--target", "app", "--format", "json"];
    let llb = |extra: &[&str]| {
        let out = common::strata_ok(&[&args[..], extra].concat());
        lossy(&out.stdout)
    };
    let arm = llb(&["--platform", "linux/arm64"]);
    assert!(arm.contains("\"linux/arm64\""), "{arm}");
    assert!(arm.contains("BUILT_ARCH=arm64"), "{arm}");
    assert!(!arm.contains("linux/amd64"), "{arm}");
    let amd = llb(&[]);
    assert!(amd.contains("BUILT_ARCH=amd64"), "{amd}");

    // A component that needs amd-only is fine on amd64, an error on arm64.
    let needs = format!("{stack}\n[component.needs-amd]\nfrom = \"amd-only\"\n");
    std::fs::write(file, needs).expect("write");
    common::strata_ok(&["check", file]);
    let out = common::strata(&["check", file, "--platform", "linux/arm64"]);
    assert!(!out.status.success());
    let err = text(&out);
    assert!(
        err.contains("`needs-amd` is enabled but needs `amd-only`"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A builder on the build platform, and the image of each target platform
/// that copies what it made: the builder writes where it ran and the
/// `TARGETARCH` it built for.
const CROSS: &str = r#"# syntax={frontend}
[stack]
name = "cross"

[user]
name = "app"
uid = 2101

[component.builder]
platform = "build"
from = "127.0.0.1:5000/strata/busybox:1.36"
env = { TARGETARCH = "{TARGETARCH}" }
run = [{ cmd = 'mkdir -p /out && echo "$(uname -m) $TARGETARCH" > /out/built', network = "none" }]

[component.app]
from = "127.0.0.1:5000/strata/busybox:1.36"
copy = [{ from = "builder", src = "/out/built", dst = "/etc/built-by" }]
"#;

#[test]
fn a_builder_on_the_build_platform_builds_for_each_target() {
    let fe = pushed_frontend();
    let stack = CROSS.replace("# syntax={frontend}", &format!("# syntax={fe}"));
    let dir = common::project("multi-platform-cross", stack);
    let image = format!("{REGISTRY}/strata-test/cross-app:{}", run_id());

    let output = format!("type=image,name={image},push=true");
    let (ok, log) = buildx_mp(&dir, &["--target", "app", "--output", &output]);
    assert!(ok, "multi-platform build failed:\n{log}");
    // Named as the Dockerfile frontend names a stage on the build platform.
    assert!(
        log.contains("[linux/amd64->arm64 builder] RUN mkdir -p /out"),
        "{log}"
    );

    for (platform, machine, built_by) in [
        ("linux/arm64", "aarch64", "x86_64 arm64"),
        ("linux/amd64", "x86_64", "x86_64 amd64"),
    ] {
        let lines = run_on(platform, &image, "uname -m; cat /etc/built-by");
        assert_eq!(lines, [machine, built_by], "{platform}");
        remove_images(&[&image]);
    }

    // The builder is no image of arm64: asking for it on both platforms
    // fails at its `platform` line, and nothing is pushed.
    let other = format!("{REGISTRY}/strata-test/cross-builder:{}", run_id());
    let output = format!("type=image,name={other},push=true");
    let (ok, log) = buildx_mp(&dir, &["--target", "builder", "--output", &output]);
    assert!(!ok, "the builder was exported as an arm64 image:\n{log}");
    assert!(
        log.contains("for linux/arm64: component `builder` runs on the build platform (linux/amd64) and is not an image of linux/arm64"),
        "{log}"
    );
    assert!(log.contains("strata.toml:10"), "{log}");
    let out = docker(&["buildx", "imagetools", "inspect", "--raw", &other]);
    assert!(!out.status.success(), "{other} was pushed");
    let _ = std::fs::remove_dir_all(dir);
}

/// `strata llb --platform` lowers a builder for the build platform
/// (linux/amd64 for the CLI) and `strata graph` marks it.
#[test]
fn llb_and_graph_show_a_builder_on_the_build_platform() {
    let stack = CROSS.replace("# syntax={frontend}\n", "");
    let dir = common::project("multi-platform-cross-cli", &stack);
    let file = dir.join("strata.toml");
    let file = file.to_str().expect("utf-8 path");
    let out = common::strata_ok(&[
        "llb",
        file,
        "--target",
        "app",
        "--format",
        "json",
        "--platform",
        "linux/arm64",
    ]);
    let dump: serde_json::Value = serde_json::from_slice(&out.stdout).expect("llb JSON");
    let ops = dump["definition"]["ops"].as_array().expect("ops");
    let platform_of = |name: &str| -> String {
        ops.iter()
            .find(|op| {
                op["description"]["llb.customname"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(name))
            })
            .and_then(|op| op["platform"].as_str())
            .unwrap_or_else(|| panic!("no op {name} with a platform: {dump:#}"))
            .to_owned()
    };
    assert_eq!(platform_of("[builder] RUN mkdir -p /out"), "linux/amd64");
    assert_eq!(platform_of("[app] user policy"), "linux/arm64");
    let all = lossy(&out.stdout);
    assert!(all.contains("TARGETARCH=arm64"), "{all}");

    let graph = common::strata_ok(&["graph", file]);
    let graph = lossy(&graph.stdout);
    assert!(
        graph.contains("builder  [cross/builder:latest (build platform)]  always"),
        "{graph}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A stack on the Debian index (linux/amd64 + linux/arm64, both Debian
/// bookworm minbase: dpkg, bash, /etc/shadow and /etc/gshadow) with a user
/// policy whose group has its own name and gid. The build steps record the
/// architecture dpkg was built for and who `as = "user"` runs as.
fn debian_stack(name: &str) -> String {
    format!(
        r#"{table}
[user]
name = "app"
group = "crew"
uid = 2311
gid = 2312
shell = "/bin/bash"

[component.app]
from = "{REGISTRY}/strata/debian:bookworm"
run = [
  {{ cmd = "dpkg --print-architecture > /etc/built-arch", network = "none" }},
  {{ cmd = "grep -c '^app:!:' /etc/shadow > /etc/built-shadow && grep -c '^crew:!::' /etc/gshadow >> /etc/built-shadow", network = "none" }},
  {{ cmd = "id > /home/app/built-id", as = "user", network = "none" }},
]
"#,
        table = pushed_stack_table(name)
    )
}

#[test]
fn the_user_policy_on_debian_for_amd64_and_arm64() {
    require_engine();
    let _engine = mp_lock();
    let name = "mp-debian";
    let dir = common::project(name, debian_stack(name));
    let image = format!("{REGISTRY}/strata-test/{name}-app:{}", run_id());
    let out = strata(&[
        "build",
        path_str(&dir.join("strata.toml")),
        "--builder",
        &mp_host(),
        "--platform",
        "linux/amd64,linux/arm64",
        "--push",
        "--progress",
        "plain",
    ]);
    let log = lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("[linux/arm64 app] RUN dpkg"), "{log}");

    let id = "uid=2311(app) gid=2312(crew) groups=2312(crew)";
    for (platform, arch, machine) in [
        ("linux/arm64", "arm64", "aarch64"),
        ("linux/amd64", "amd64", "x86_64"),
    ] {
        let got = run_with(
            common::mp_docker,
            platform,
            &image,
            "dpkg --print-architecture; uname -m; id; getent passwd app; \
             cat /etc/built-arch /etc/built-shadow /home/app/built-id; \
             stat -c %u:%g /home/app",
        );
        let lines: Vec<&str> = got.iter().map(String::as_str).collect();
        assert_eq!(
            lines,
            [
                arch,
                machine,
                id,
                "app:x:2311:2312::/home/app:/bin/bash",
                arch,
                "1",
                "1",
                id,
                "2311:2312",
            ],
            "{platform}"
        );
    }
    let _ = mp_docker_ok(&["rmi", "-f", &image]);
    let _ = std::fs::remove_dir_all(dir);
}
