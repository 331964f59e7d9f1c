//! Values reach the frontend through `docker buildx bake` exactly as the
//! user wrote them: bake evaluates `${...}` and `%{...}` in every string
//! of a definition, so `strata bake` escapes them. Checked with bake's own
//! `--print`, and by building an image whose label is an arg value and
//! comparing it with `strata llb`.
//!
//! Needs what `scripts/test.sh` sets up first: the engine, the base image
//! `strata.local/busybox:1.36` and the frontend image `strata/frontend:latest`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{docker, frontend_image, lossy, project, remove_images, strata_ok};
const LABEL: &str = "org.example.branch";

/// A value with every template form bake knows, and its escape.
const VALUE: &str = r#"release-${HOME}-$${x}-%{ if true }x%{ endif }-%%{y}-${upper("x")}-$"#;

/// A stack whose one component labels its image with the `branch` arg,
/// in a directory whose name bake would evaluate too.
fn stack_dir(name: &str, image: &str) -> PathBuf {
    let stack = format!(
        "[stack]\nname = \"secsrc\"\nimage = \"{image}\"\n\n[args]\nbranch = \"main\"\n\n\
         [component.app]\nfrom = \"strata.local/busybox:1.36\"\nuser = \"root\"\n\
         labels = {{ \"{LABEL}\" = \"{{branch}}\" }}\n"
    );
    project(&format!("bake-{name}-${{HOME}}-%{{x}}"), stack)
}

/// `strata ARGS FILE --arg branch=VALUE`, which must succeed.
fn strata_with_branch(args: &[&str], file: &Path) -> Output {
    let file = file.to_str().expect("a UTF-8 path");
    let branch = format!("branch={VALUE}");
    strata_ok(&[args, &[file, "--arg", &branch]].concat())
}

#[test]
fn bake_reads_back_every_value_as_written() {
    let dir = stack_dir("print", "secsrc-print/{component}:1");
    let def = strata_with_branch(&["bake"], &dir.join("strata.toml"));
    let mut bake = Command::new("docker")
        .args(["buildx", "bake", "-f", "-", "--print"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("docker buildx runs");
    {
        use std::io::Write;
        let mut stdin = bake.stdin.take().expect("stdin");
        stdin.write_all(&def.stdout).expect("definition written");
    }
    let out = bake.wait_with_output().expect("bake --print");
    assert!(out.status.success(), "{}", lossy(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bake JSON");
    let app = &printed["target"]["app"];
    assert_eq!(app["args"]["branch"], VALUE);
    assert_eq!(app["context"], dir.to_string_lossy().as_ref());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_built_label_is_the_literal_value_and_matches_strata_llb() {
    frontend_image();
    let repo = format!("secsrc-bake-{}", std::process::id());
    let dir = stack_dir("build", &format!("{repo}/{{component}}:1"));
    let file = dir.join("strata.toml");
    let llb = strata_with_branch(&["llb", "--target", "app", "--format", "json"], &file);
    let llb: serde_json::Value = serde_json::from_slice(&llb.stdout).expect("llb JSON");
    let built = strata_with_branch(&["build"], &file);
    let image = lossy(&built.stdout).trim().to_owned();
    let inspect = docker(&[
        "image",
        "inspect",
        &image,
        "--format",
        "{{json .Config.Labels}}",
    ]);
    remove_images(&[&image]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(image, format!("{repo}/app:1"));
    assert!(inspect.status.success(), "{}", lossy(&inspect.stderr));
    let labels: serde_json::Value = serde_json::from_slice(&inspect.stdout).expect("labels JSON");
    assert_eq!(labels[LABEL], VALUE);
    assert_eq!(llb["image_config"]["config"]["Labels"][LABEL], VALUE);
}
