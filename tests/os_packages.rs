//! `dnf` and `apk` steps, and system package steps on a base that lacks
//! their package manager.
//!
//! No RHEL-family or Alpine base can be made offline here (their packages
//! come only from their own repositories), so the installs themselves are
//! checked as LLB; what the engine runs is the failure on a base without
//! the package manager: located at the step's line, naming the base's
//! distribution (its /etc/os-release) and the step that fits it.

mod common;

use common::{
    assert_located, buildx, frontend, frontend_image, project, run_id, strata_ok, BUSYBOX,
};

const DEBIAN: &str = "strata.local/debian:bookworm";

fn stack(name: &str, from: &str, step: &str) -> String {
    format!(
        "# syntax={}\n[stack]\nname = \"{name}\"\ndefault = \"app\"\nimage = \"strata-test/{name}-{{component}}:{}\"\n\n[component.app]\nfrom = \"{from}\"\nuser = \"root\"\n{step}\n",
        frontend(),
        run_id()
    )
}

/// Builds `text` and expects it to fail at the line holding `needle`.
fn fails_at(name: &str, text: &str, needle: &str) -> String {
    let dir = project(name, text);
    let (ok, log) = buildx(&dir, &[]);
    assert!(!ok, "the build must fail:\n{log}");
    assert_located(&log, text, needle);
    log
}

#[test]
fn dnf_and_apk_on_a_debian_base_name_debian_and_the_apt_step() {
    frontend_image();
    for (tool, step) in [("dnf", "dnf = [\"curl\"]"), ("apk", "apk = [\"curl\"]")] {
        let text = stack(&format!("os-{tool}"), DEBIAN, step);
        let log = fails_at(&format!("os-{tool}"), &text, step);
        assert!(
            log.contains(&format!(
                "strata: {tool} step: the base image is Debian GNU/Linux 12 (bookworm)"
            )),
            "{log}"
        );
        assert!(log.contains("use the `apt` step for its packages"), "{log}");
    }
}

#[test]
fn apt_on_a_base_without_apt_says_so() {
    frontend_image();
    let step = "apt = [\"tini\"]";
    let text = stack("os-apt", BUSYBOX, step);
    let log = fails_at("os-apt", &text, step);
    assert!(log.contains("strata: apt step: the base image is"), "{log}");
    assert!(log.contains("which has no apt-get"), "{log}");
}

#[test]
fn dnf_and_apk_install_in_one_exec_with_their_caches_mounted() {
    let text = "[stack]\nname = \"os-llb\"\ndefault = \"app\"\n\n[component.app]\nfrom = \"rockylinux:9.3-minimal\"\nuser = \"root\"\ndnf = [\"gmp\", \"python3.11\"]\n\n[component.edge]\nfrom = \"alpine:3.19\"\nuser = \"root\"\napk = { packages = [\"tini\"] }\n";
    let dir = project("os-llb", text);
    let file = dir.join("strata.toml");
    let file = file.to_str().expect("utf-8 path");
    for (target, command, caches) in [
        (
            "app",
            "$pm install -y --setopt=install_weak_deps=0 --setopt=keepcache=1 --nodocs gmp python3.11",
            &["/var/cache/dnf", "/var/cache/yum"][..],
        ),
        (
            "edge",
            "apk add --update-cache --no-progress tini",
            &["/etc/apk/cache"][..],
        ),
    ] {
        let out = strata_ok(&["llb", file, "--target", target, "--format", "json"]);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("llb JSON");
        let ops = doc["definition"]["ops"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let execs: Vec<&serde_json::Value> = ops
            .iter()
            .map(|o| &o["exec"])
            .filter(|e| e.is_object())
            .collect();
        assert_eq!(execs.len(), 1, "one exec for {target}: {doc:#}");
        let exec = execs[0];
        let script = exec["args"][2].as_str().expect("the script");
        assert!(script.contains(command), "{script}");
        for cache in caches {
            let mount = exec["mounts"]
                .as_array()
                .and_then(|m| m.iter().find(|m| m["dest"] == *cache))
                .unwrap_or_else(|| panic!("no {cache} mount in {exec:#}"));
            assert_eq!(mount["type"], "cache", "{mount:#}");
            assert_eq!(mount["cache"]["sharing"], "locked", "{mount:#}");
        }
        assert_eq!(exec["network"], "sandbox", "{exec:#}");
    }
}
