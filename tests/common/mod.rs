//! Helpers shared by the integration tests: the repository root, the
//! `strata` binary, the engine, the frontend image and `docker buildx build`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh temporary directory for one test (under `$TMPDIR`).
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
}

/// Runs the `strata` binary.
pub fn strata(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .expect("run strata")
}

/// stdout and stderr of an output, as text.
pub fn text(out: &Output) -> String {
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s
}

/// Runs docker with `args`.
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("run docker")
}

/// The engine answers; a test that needs it fails when it does not.
pub fn require_engine() {
    let out = docker(&["info"]);
    assert!(
        out.status.success(),
        "`docker info` fails: start the engine with scripts/engine.sh ({})",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds `strata/frontend:latest` from this tree (idempotent, locked).
pub fn frontend_image() {
    require_engine();
    let out = Command::new("bash")
        .arg(root().join("scripts/frontend-image.sh"))
        .current_dir(root())
        .output()
        .expect("run scripts/frontend-image.sh");
    assert!(
        out.status.success(),
        "scripts/frontend-image.sh failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `docker buildx build --progress=plain -f strata.toml ARGS .` in `dir`:
/// (success, stdout and stderr).
pub fn buildx(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("docker")
        .current_dir(dir)
        .args(["buildx", "build", "--progress=plain", "-f", "strata.toml"])
        .args(args)
        .arg(".")
        .output()
        .expect("run docker buildx build");
    (out.status.success(), text(&out))
}

/// `docker run --rm --network none --entrypoint ENTRYPOINT IMAGE ARGS`: stdout.
pub fn run_in(image: &str, entrypoint: &str, args: &[&str]) -> String {
    let out = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            entrypoint,
            image,
        ])
        .args(args)
        .output()
        .expect("run docker run");
    assert!(
        out.status.success(),
        "docker run {image} {entrypoint} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Removes images, ignoring those that do not exist.
pub fn remove_images(images: &[&str]) {
    let _ = Command::new("docker")
        .args(["image", "rm", "-f"])
        .args(images)
        .output();
}
