//! Helpers shared by the integration tests: the repository root and its
//! examples, temporary projects, the `strata` binary, the engine, the
//! frontend image, `docker` and `docker buildx build`.
//!
//! A test that needs the engine calls [`require_engine`] (or
//! [`frontend_image`], which requires it): when the engine is down the test
//! fails and says how to start it; it never passes without checking.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The multi-platform dockerd (containerd image store, arm64 under qemu)
/// that scripts/engine.sh starts: its Docker API address.
pub fn mp_host() -> String {
    let socket =
        std::env::var("STRATA_MP_SOCKET").unwrap_or_else(|_| "/run/strata-mp/docker.sock".into());
    assert!(
        Path::new(&socket).exists(),
        "the multi-platform dockerd's socket {socket} is missing: start it with scripts/engine.sh"
    );
    format!("unix://{socket}")
}

/// `docker ARGS` on the multi-platform dockerd: stdout, after checking
/// that it succeeded.
pub fn mp_docker_ok(args: &[&str]) -> String {
    lossy(&succeeded(mp_docker(args), "docker (multi-platform engine)", args).stdout)
}

/// Runs docker with `args` on the multi-platform dockerd.
pub fn mp_docker(args: &[&str]) -> Output {
    Command::new("docker")
        .env("DOCKER_HOST", mp_host())
        .args(args)
        .output()
        .expect("run docker")
}

/// The local registry both engines push to and pull from.
pub const REGISTRY: &str = "127.0.0.1:5000";

/// A path as an argument (the tests' paths are UTF-8).
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The `[stack]` table of an engine test's stack named `name`: each
/// component's image is `strata-test/NAME-COMPONENT:RUN` ([`run_id`]).
pub fn stack_table(name: &str) -> String {
    let run = run_id();
    format!("[stack]\nname = \"{name}\"\nimage = \"strata-test/{name}-{{component}}:{run}\"\n")
}

/// [`stack_table`] with the images named in the local [`REGISTRY`], for
/// stacks that are pushed.
pub fn pushed_stack_table(name: &str) -> String {
    let run = run_id();
    format!(
        "[stack]\nname = \"{name}\"\nimage = \"{REGISTRY}/strata-test/{name}-{{component}}:{run}\"\n"
    )
}

/// The `# syntax=` line naming the frontend image under test ([`frontend`]).
pub fn syntax_line() -> String {
    format!("# syntax={}\n", frontend())
}

/// The multi-platform dockerd's turn: held while a test uses it, so tests
/// that empty its build cache or remove its images never run beside
/// another test of the same binary (cargo runs test binaries one at a time).
pub fn mp_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The base image most test stacks start from (made by scripts/base-images.sh).
pub const BUSYBOX: &str = "strata.local/busybox:1.36";

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `(name, path of its strata.toml)` of every `examples/*/strata.toml`, by name.
pub fn examples() -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(root().join("examples"))
        .expect("examples/ exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|dir| dir.join("strata.toml").is_file())
        .map(|dir| {
            let name = dir
                .file_name()
                .expect("a directory name")
                .to_string_lossy()
                .into_owned();
            (name, dir.join("strata.toml"))
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no examples/*/strata.toml");
    out
}

/// The `.toml` files of the repository directory `dir`, sorted.
pub fn stack_files(dir: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
}

/// A per-run id for tags, repositories and directories (process id and time).
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("r{}{}", std::process::id(), nanos % 1_000_000_000)
    })
}

/// A fresh temporary directory for one test (under `$TMPDIR`).
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
}

/// A fresh temporary directory holding `strata.toml` with `stack`, its
/// default `# syntax=` line naming the frontend image under test.
pub fn project(name: &str, stack: impl AsRef<[u8]>) -> PathBuf {
    let dir = temp_dir(name);
    std::fs::write(dir.join("strata.toml"), with_frontend(stack.as_ref()))
        .expect("write strata.toml");
    dir
}

/// The test stacks' default first line; [`project`] makes it name the
/// frontend image under test ([`frontend`]).
const DEFAULT_SYNTAX: &[u8] = b"# syntax=strata/frontend:latest\n";

/// `stack` with a leading [`DEFAULT_SYNTAX`] line naming [`frontend`]:
/// the bytes [`project`] writes.
pub fn with_frontend(stack: &[u8]) -> Vec<u8> {
    match stack.strip_prefix(DEFAULT_SYNTAX) {
        Some(rest) => [syntax_line().as_bytes(), rest].concat(),
        None => stack.to_vec(),
    }
}

/// The 1-based number of the first line of `text` that contains `needle`.
pub fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no line with `{needle}` in\n{text}"))
}

/// A build log points at the line of `stack` that contains `needle`: it
/// names `strata.toml:LINE` and shows the line itself after `>>>`.
pub fn assert_located(log: &str, stack: &str, needle: &str) {
    let line = line_of(stack, needle);
    let text = stack.lines().nth(line - 1).unwrap_or_default();
    assert!(
        log.contains(&format!("strata.toml:{line}")),
        "no strata.toml:{line} in\n{log}"
    );
    assert!(
        log.contains(&format!(">>> {text}")),
        "no `>>> {text}` in\n{log}"
    );
}

/// Bytes as text (lossy UTF-8).
pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// stdout and stderr of an output, as text.
pub fn text(out: &Output) -> String {
    let mut s = lossy(&out.stdout);
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s
}

/// The `strata` binary, run from the repository root, with no mirrors or
/// frontend from the environment (the frontend `STRATA_TEST_FRONTEND`
/// names, if set).
pub fn strata_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.current_dir(root())
        .env_remove("STRATA_MIRRORS")
        .env_remove("STRATA_FRONTEND");
    if let Some(fe) = std::env::var_os("STRATA_TEST_FRONTEND") {
        cmd.env("STRATA_FRONTEND", fe);
    }
    cmd
}

/// Runs the `strata` binary (see [`strata_command`]).
pub fn strata(args: &[&str]) -> Output {
    strata_command().args(args).output().expect("run strata")
}

/// The output of `program ARGS`; fails the test, with its stderr, when it failed.
pub fn succeeded(out: Output, program: &str, args: &[&str]) -> Output {
    assert!(
        out.status.success(),
        "{program} {} failed:\n{}",
        args.join(" "),
        lossy(&out.stderr)
    );
    out
}

/// Runs the `strata` binary; fails the test when it fails.
pub fn strata_ok(args: &[&str]) -> Output {
    succeeded(strata(args), "strata", args)
}

/// Runs docker with `args`.
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("run docker")
}

/// Runs docker with `args`; fails the test when it fails. Its stdout, trimmed.
pub fn docker_ok(args: &[&str]) -> String {
    let out = succeeded(docker(args), "docker", args);
    lossy(&out.stdout).trim().to_owned()
}

/// The engine answers; a test that needs it fails when it does not (checked
/// once per test binary).
pub fn require_engine() {
    static UP: OnceLock<Result<(), String>> = OnceLock::new();
    let up = UP.get_or_init(|| match Command::new("docker").arg("info").output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "`docker info` fails: the engine is not running; start it with scripts/engine.sh \
             (scripts/test.sh does)\n{}",
            lossy(&out.stderr)
        )),
        Err(e) => Err(format!(
            "cannot run `docker info` ({e}): start the engine with scripts/engine.sh"
        )),
    });
    if let Err(e) = up {
        panic!("{e}");
    }
}

/// The frontend image the tests build through: `STRATA_TEST_FRONTEND`,
/// default `strata/frontend:latest` (what the test stacks' `# syntax=` names).
pub fn frontend() -> String {
    std::env::var("STRATA_TEST_FRONTEND").unwrap_or_else(|_| "strata/frontend:latest".into())
}

/// Makes the frontend image ready, once per test binary: builds
/// `strata/frontend:latest` from this tree with scripts/frontend-image.sh
/// (idempotent; it holds a file lock, so test binaries take turns), or,
/// when `STRATA_TEST_FRONTEND` names another image, checks that it exists.
pub fn frontend_image() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    require_engine();
    let ready = READY.get_or_init(|| {
        if std::env::var_os("STRATA_TEST_FRONTEND").is_some() {
            let fe = frontend();
            return if image_id(&fe).is_some() {
                Ok(())
            } else {
                Err(format!(
                    "the frontend image {fe} (STRATA_TEST_FRONTEND) is missing"
                ))
            };
        }
        let out = Command::new("bash")
            .arg(root().join("scripts/frontend-image.sh"))
            .current_dir(root())
            .output()
            .map_err(|e| format!("cannot run scripts/frontend-image.sh: {e}"))?;
        if out.status.success() {
            eprintln!("frontend image: {}", lossy(&out.stdout).trim());
            Ok(())
        } else {
            Err(format!(
                "scripts/frontend-image.sh failed:\n{}",
                lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = ready {
        panic!("{e}");
    }
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
    let what = format!("docker run {image} {entrypoint}");
    lossy(&succeeded(out, &what, args).stdout)
}

/// The `Config` of a local image (`docker image inspect`).
pub fn inspect_config(tag: &str) -> serde_json::Value {
    let out = docker_ok(&["image", "inspect", "-f", "{{json .Config}}", tag]);
    serde_json::from_str(&out).expect("config JSON")
}

/// The local image id of a tag, or None.
pub fn image_id(tag: &str) -> Option<String> {
    let out = docker(&["image", "inspect", tag, "--format", "{{.Id}}"]);
    out.status
        .success()
        .then(|| lossy(&out.stdout).trim().to_owned())
}

/// Removes images, ignoring those that do not exist.
pub fn remove_images<S: AsRef<str>>(images: &[S]) {
    let _ = Command::new("docker")
        .args(["image", "rm", "-f"])
        .args(images.iter().map(AsRef::as_ref))
        .output();
}

/// Named vertices (`#N [...]`) of a plain progress log and whether each was CACHED.
pub fn vertices(log: &str) -> BTreeMap<String, bool> {
    let mut names = BTreeMap::new();
    let mut cached = BTreeSet::new();
    for line in log.lines() {
        let Some((num, text)) = line.strip_prefix('#').and_then(|r| r.split_once(' ')) else {
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
