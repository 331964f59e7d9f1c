//! Secrets on the real engine: a run step's `secrets = ["token"]` mounts
//! the BuildKit secret `docker buildx build --secret id=token,src=FILE`
//! gives, at /run/secrets/token, for that command only. The build uses it,
//! and its value is in no layer of the image (`docker save`, every layer
//! tar scanned, compressed or not), not in the image config or history,
//! and not in the LLB (`strata llb`, JSON and binary).
//!
//! Needs the engine (scripts/engine.sh) and the frontend image, which the
//! test builds with scripts/frontend-image.sh. When `docker info` fails,
//! the test fails and says so.

mod common;

use std::io::Read;

use common::{
    buildx, docker_ok, frontend_image, project, remove_images, run_in, strata_ok, temp_dir,
};

use sha2::{Digest, Sha256};

const TAG: &str = "strata-test/secrets-app:1";

/// The stack: one component whose steps use the secret `token` (tests/data/stacks/secrets.toml).
const STACK: &str = include_str!("data/stacks/secrets.toml");

/// The tests build the same steps: BuildKit merges identical steps that
/// run at the same time, even across builds, and the merged step would
/// see the other build's secret. They take turns.
static ONE_BUILD_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_build_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_BUILD_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A value no file on the machine holds by chance.
fn secret_value() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "strata-test-secret-{:x}-{nanos:x}-do-not-leak",
        std::process::id()
    )
}

/// Every file in a tar stream, with its bytes (gzip or zstd layers are
/// decompressed; nested tars are walked).
fn tar_files(bytes: &[u8], path: &str, out: &mut Vec<(String, Vec<u8>)>) {
    let mut archive = tar::Archive::new(bytes);
    let Ok(entries) = archive.entries() else {
        return;
    };
    for entry in entries {
        let Ok(mut entry) = entry else {
            break;
        };
        let name = format!(
            "{path}!{}",
            entry
                .path()
                .map_or_else(|_| "?".into(), |p| p.display().to_string())
        );
        let mut data = Vec::new();
        if entry.read_to_end(&mut data).is_err() {
            continue;
        }
        let data = decompress(data);
        if is_tar(&data) {
            tar_files(&data, &name, out);
        }
        out.push((name, data));
    }
}

fn decompress(data: Vec<u8>) -> Vec<u8> {
    if data.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        if flate2::read::GzDecoder::new(&data[..])
            .read_to_end(&mut out)
            .is_ok()
        {
            return out;
        }
    }
    if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        if let Ok(out) = zstd::decode_all(&data[..]) {
            return out;
        }
    }
    data
}

fn is_tar(data: &[u8]) -> bool {
    data.len() >= 512 && &data[257..262] == b"ustar"
}

#[test]
fn a_secret_is_used_by_its_step_and_left_nowhere() {
    frontend_image();
    let _turn = one_build_at_a_time();
    let secret = secret_value();
    let digest = format!("{:x}", Sha256::digest(secret.as_bytes()));

    // The secret lives outside the build context.
    let project = project("secrets-project", STACK);
    let private = temp_dir("secrets-private");
    let token = private.join("token.txt");
    std::fs::write(&token, &secret).expect("token");

    remove_images(&[TAG]);
    let secret_arg = format!("id=token,src={}", token.display());
    let (ok, log) = buildx(
        &project,
        &[
            // A secret is not part of the cache key: without this, an earlier
            // build's result (with another secret) would be reused.
            "--no-cache",
            "--secret",
            &secret_arg,
            "--target",
            "app",
            "--load",
            "-t",
            TAG,
        ],
    );
    assert!(ok, "the build failed:\n{log}");
    assert!(!log.contains(&secret), "the secret shows in the build log");

    // The run read the secret: its hash is in the image, its length too.
    let hashed = docker_ok(&["run", "--rm", "--network", "none", TAG]);
    assert_eq!(hashed, digest);
    let len = run_in(TAG, "cat", &["/home/app/token.len"]);
    assert_eq!(
        len.trim(),
        secret.len().to_string(),
        "the policy user read the whole secret"
    );
    let after = run_in(
        TAG,
        "sh",
        &[
            "-c",
            "cat /secret.after; cat /run/secrets/token 2>/dev/null | wc -c",
        ],
    );
    assert_eq!(
        after.split_whitespace().collect::<Vec<_>>(),
        ["absent", "0"],
        "the secret is mounted for its steps only: at most an empty mount point is left"
    );

    // No layer holds it: every file of `docker save`, layers unpacked.
    let saved = private.join("image.tar");
    docker_ok(&["save", "-o", &saved.to_string_lossy(), TAG]);
    let bytes = std::fs::read(&saved).expect("saved image");
    assert!(
        !contains(&bytes, secret.as_bytes()),
        "the secret is in the saved image"
    );
    let mut files = Vec::new();
    tar_files(&bytes, "image.tar", &mut files);
    let layers = files.iter().filter(|(_, data)| is_tar(data)).count();
    assert!(
        layers >= 2,
        "expected the base and the run layers, found {layers}: {:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (name, data) in &files {
        assert!(
            !contains(data, secret.as_bytes()),
            "the secret is in {name}"
        );
    }
    // The scan sees file contents: the hash written by the run is found.
    assert!(
        files
            .iter()
            .any(|(name, data)| name.ends_with("token.sha256") && contains(data, digest.as_bytes())),
        "the scan did not reach /token.sha256 in the layers"
    );

    // Not in the image config or the history.
    let inspect = docker_ok(&["image", "inspect", TAG]);
    assert!(
        !inspect.contains(&secret),
        "the secret is in the image config"
    );
    let history = docker_ok(&["history", "--no-trunc", "--format", "{{json .}}", TAG]);
    assert!(!history.contains(&secret), "the secret is in the history");

    // Not in the LLB: the definition names the secret's id and mount, never its value.
    let strata = |format: &str| {
        let file = project.join("strata.toml");
        let file = file.to_str().expect("a UTF-8 path");
        strata_ok(&["llb", "--target", "app", "--format", format, file]).stdout
    };
    let json = strata("json");
    assert!(
        !contains(&json, secret.as_bytes()),
        "the secret is in the LLB (JSON)"
    );
    let text = String::from_utf8_lossy(&json);
    assert!(
        text.contains("/run/secrets/token"),
        "no secret mount in the LLB:\n{text}"
    );
    let binary = strata("binary");
    assert!(!binary.is_empty());
    assert!(
        !contains(&binary, secret.as_bytes()),
        "the secret is in the LLB (binary)"
    );
    assert!(contains(&binary, b"/run/secrets/token"));

    let _ = std::fs::remove_dir_all(&project);
    let _ = std::fs::remove_dir_all(&private);
    remove_images(&[TAG]);
}

/// Without the secret the build fails at the step that needs it, and the
/// error says which step, not a frontend crash.
#[test]
fn a_missing_secret_fails_the_step_that_needs_it() {
    frontend_image();
    let _turn = one_build_at_a_time();
    let project = project("secrets-missing", STACK);
    let (ok, log) = buildx(&project, &["--no-cache", "--target", "app"]);
    assert!(!ok, "built without the secret:\n{log}");
    assert!(log.contains("hash the token"), "{log}");
    assert!(!log.contains("internal error"), "{log}");
    let _ = std::fs::remove_dir_all(&project);
}
