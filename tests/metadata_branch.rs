//! `[metadata]` `branch`: `strata build` reads the git checkout, buildx
//! builds take `STRATA_GIT_BRANCH`, and a field a build cannot fill is a
//! located warning, never a silent empty value. Needs the engine.

mod common;

use std::process::Command;

use common::{buildx, frontend, frontend_image, inspect_config, project, run_id, strata_command};

fn stack(image: &str) -> String {
    format!(
        "# syntax={}\n[stack]\nname = \"meta\"\nimage = \"{image}\"\ndefault = \"app\"\n\n[metadata]\nenv = {{ GIT_BRANCH = \"branch\" }}\n\n[component.app]\nfrom = \"strata.local/busybox:1.36\"\nuser = \"root\"\n",
        frontend()
    )
}

fn env_of(tag: &str) -> Vec<String> {
    inspect_config(tag)["Env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn buildx_takes_the_branch_from_a_build_arg_and_warns_without_it() {
    frontend_image();
    let tag = format!("strata-test/meta-buildx:{}", run_id());
    let text = stack(&tag);
    let dir = project("meta-buildx", &text);
    let (ok, log) = buildx(
        &dir,
        &[
            "--build-arg",
            "STRATA_GIT_BRANCH=feature/x",
            "--load",
            "-t",
            &tag,
        ],
    );
    assert!(ok, "{log}");
    assert!(env_of(&tag).contains(&"GIT_BRANCH=feature/x".to_owned()));
    assert!(!log.contains("metadata-unknown"), "{log}");

    let (ok, log) = buildx(&dir, &["--load", "-t", &tag]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok, "{log}");
    let line = common::line_of(&text, "GIT_BRANCH");
    assert!(
        log.contains(&format!(
            "strata.toml:{line}: [metadata-unknown] `GIT_BRANCH` takes the git branch"
        )),
        "{log}"
    );
    assert!(!env_of(&tag).iter().any(|e| e.starts_with("GIT_BRANCH=")));
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
}

#[test]
fn strata_build_reads_the_branch_of_the_git_checkout() {
    frontend_image();
    let tag = format!("strata-test/meta-build:{}", run_id());
    let dir = project("meta-build", stack(&tag));
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .current_dir(&dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=trunk",
            ])
            .args(args)
            .output()
            .expect("run git");
        assert!(out.status.success(), "git {args:?}: {}", common::text(&out));
    };
    git(&["init", "-q"]);
    git(&["checkout", "-q", "-b", "release/2.0"]);
    git(&["add", "strata.toml"]);
    git(&["commit", "-q", "-m", "stack"]);
    let out = strata_command()
        .args(["build", &dir.join("strata.toml").to_string_lossy()])
        .output()
        .expect("run strata build");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{}", common::text(&out));
    assert!(env_of(&tag).contains(&"GIT_BRANCH=release/2.0".to_owned()));
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
}
