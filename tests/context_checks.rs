//! The build context is checked before a build: the catalogue in
//! `tests/data/context/` (one directory per case: a stack and its context)
//! fails `strata check` at the key that names the missing or misplaced
//! input, and the frontend reports the same error before any step runs.
//!
//! Each case's stack starts with header comments:
//!
//! ```text
//! # expect: <line>:<col> <code> <part of the message>
//! # help: <part of the help>
//! ```
//!
//! `good/` has every kind of input in place and passes.

mod common;

use std::path::Path;

use common::{buildx, frontend, frontend_image, project, root, strata};
use strata::spec::ErrorCode;

const CASES: &str = "tests/data/context";

/// (case name, line, col, code, message part, help part) of every failing case.
fn cases() -> Vec<(String, usize, usize, ErrorCode, String, String)> {
    let mut out = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(root().join(CASES))
        .expect("the catalogue")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.is_dir() && !p.ends_with("good"))
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a UTF-8 name")
            .to_owned();
        let text = std::fs::read_to_string(dir.join("strata.toml")).expect("strata.toml");
        let header = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(str::trim)
                .unwrap_or_else(|| panic!("{name}: no `{key}` line"))
                .to_owned()
        };
        let expect = header("# expect:");
        let (loc, rest) = expect.split_once(' ').expect("line:col code message");
        let (code, msg) = rest.split_once(' ').expect("code message");
        let code = ErrorCode::find(code)
            .unwrap_or_else(|| panic!("{name}: `{code}` after line:col is not an error code"));
        let (l, c) = loc.split_once(':').expect("line:col");
        let help = header("# help:");
        out.push((
            name,
            l.parse().expect("a line"),
            c.parse().expect("a column"),
            code,
            msg.to_owned(),
            help,
        ));
    }
    out
}

#[test]
fn every_missing_or_misplaced_input_fails_check_at_its_key() {
    let cases = cases();
    assert!(cases.len() >= 10, "{} cases", cases.len());
    for (name, line, col, code, msg, help) in cases {
        let file = format!("{CASES}/{name}/strata.toml");
        let out = strata(&["check", &file]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        let at = format!("error[{code}]: ");
        assert!(stderr.contains(&at), "{name}: no `{at}` in\n{stderr}");
        let at = format!("--> {file}:{line}:{col}");
        assert!(stderr.contains(&at), "{name}: no `{at}` in\n{stderr}");
        assert!(stderr.contains(&msg), "{name}: no {msg:?} in\n{stderr}");
        assert!(
            stderr.contains(&help),
            "{name}: no help {help:?} in\n{stderr}"
        );
        assert!(stderr.contains("nothing was built"), "{name}: {stderr}");
    }
}

#[test]
fn a_context_with_every_input_in_place_passes() {
    let out = strata(&["check", &format!("{CASES}/good/strata.toml")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// `strata llb` reads the same context and stops at the same line.
#[test]
fn llb_stops_at_a_missing_input() {
    let file = format!("{CASES}/missing-requirements/strata.toml");
    let out = strata(&["llb", &file, "--target", "app"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "no LLB is written");
    assert!(stderr.contains(&format!("--> {file}:8:25")), "{stderr}");
}

/// Copies a catalogue case into a fresh context with the frontend's
/// `# syntax=` line first (so the error's line moves down by one).
fn as_buildx_project(case: &str) -> std::path::PathBuf {
    let src = root().join(CASES).join(case);
    let text = std::fs::read_to_string(src.join("strata.toml")).expect("strata.toml");
    let dir = project(
        &format!("context-{case}"),
        format!("# syntax={}\n{text}", frontend()),
    );
    copy_tree(&src, &dir);
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).expect("read the case") {
        let e = e.expect("an entry");
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_tree(&e.path(), &target);
        } else if e.file_name() != "strata.toml" {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// Through `docker buildx build`, a missing requirements file fails with
/// the stack file's line and the did-you-mean, before any step runs.
#[test]
fn the_frontend_reports_a_missing_input_before_any_step_runs() {
    frontend_image();
    let dir = as_buildx_project("missing-requirements");
    let (ok, log) = buildx(&dir, &["--target", "app"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!ok, "{log}");
    assert!(log.contains("strata.toml:9"), "{log}");
    assert!(
        log.contains("requirements file `envs/requirement.txt` is not in the build context"),
        "{log}"
    );
    assert!(
        log.contains("did you mean `envs/requirements.txt`?"),
        "{log}"
    );
    assert!(!log.contains("pip install"), "a step ran:\n{log}");
}

/// A path the ignore file excludes is an error through the frontend too,
/// and a complete context builds.
#[test]
fn the_frontend_reads_the_ignore_file_and_passes_a_complete_context() {
    frontend_image();
    let dir = as_buildx_project("copy-source-ignored");
    let (ok, log) = buildx(&dir, &["--target", "app"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!ok, "{log}");
    assert!(
        log.contains("`config/secret.env` is excluded by `.dockerignore` (pattern `**/*.env`)"),
        "{log}"
    );
    let stack = "[stack]\nname = \"ctx\"\n\n[component.app]\nfrom = \"strata.local/busybox:1.36\"\nuser = \"root\"\ncontext = \"app\"\ncopy = [{ src = \"src\", dst = \"/app\" }, { src = \"keep.env\", dst = \"/etc/app.env\" }]\n";
    let dir = project(
        "context-complete",
        format!("# syntax={}\n{stack}", frontend()),
    );
    for (path, body) in [
        ("app/src/main.py", "print(1)\n"),
        ("app/keep.env", "A=1\n"),
        ("app/.dockerignore", "*.env\n!keep.env\n"),
    ] {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
        std::fs::write(p, body).expect("write");
    }
    let (ok, log) = buildx(&dir, &["--target", "app"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok, "{log}");
}
