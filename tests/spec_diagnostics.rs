//! The catalogue of malformed stacks in `tests/data/bad/`: every one fails
//! with located diagnostics, and `strata check` exits 1 on them.
//!
//! Each file starts with header comments:
//!
//! ```text
//! # args: name=value other=value    (optional: overrides, as `--arg`)
//! # profile: name                   (optional: as `--profile`)
//! # expect: <line>:<col> <part of the message>   (one or more)
//! ```
//!
//! The rendered diagnostics of each file are snapshots
//! (`tests/snapshots/spec_diagnostics__<file stem>.snap`).

mod common;

use std::path::Path;

use common::{examples, root, stack_files, strata};
use strata::spec::{self, Overrides, SourceFile};

const BAD: &str = "tests/data/bad";

/// What a catalogue file's header asks for.
struct Case {
    stem: String,
    bytes: Vec<u8>,
    overrides: Overrides,
    expect: Vec<(usize, usize, String)>,
}

fn parse_case(path: &Path) -> Case {
    let bytes = std::fs::read(path).expect("read a catalogue file");
    let text = String::from_utf8_lossy(&bytes);
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("a UTF-8 file name")
        .to_owned();
    let mut overrides = Overrides::default();
    let mut expect = Vec::new();
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        if let Some(args) = line.strip_prefix("# args:") {
            for pair in args.split_whitespace() {
                let (k, v) = pair
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{stem}: `# args:` takes name=value, got {pair}"));
                overrides.args.push((k.to_owned(), v.to_owned()));
            }
        } else if let Some(p) = line.strip_prefix("# profile:") {
            overrides.profile = Some(p.trim().to_owned());
        } else if let Some(e) = line.strip_prefix("# expect:") {
            let e = e.trim_start();
            let (loc, msg) = e.split_once(' ').unwrap_or((e, ""));
            let (l, c) = loc
                .split_once(':')
                .unwrap_or_else(|| panic!("{stem}: `# expect:` needs line:col, got {loc}"));
            let line_no = l.parse().expect("a line number");
            let col = c.parse().expect("a column number");
            expect.push((line_no, col, msg.trim().to_owned()));
        }
    }
    assert!(!expect.is_empty(), "{stem}: no `# expect:` line");
    Case {
        stem,
        bytes,
        overrides,
        expect,
    }
}

fn cases() -> Vec<Case> {
    stack_files(BAD).iter().map(|p| parse_case(p)).collect()
}

/// The name diagnostics show: the path relative to the repository.
fn display_name(case: &Case) -> String {
    format!("{BAD}/{}.toml", case.stem)
}

#[test]
fn catalogue_is_large() {
    let n = cases().len();
    assert!(n >= 60, "only {n} malformed stacks in {BAD}");
}

#[test]
fn every_malformed_stack_fails_at_the_expected_place() {
    let mut failures = Vec::new();
    for case in cases() {
        let name = display_name(&case);
        let diags = match spec::load(&name, &case.bytes, &case.overrides) {
            Ok(_) => {
                failures.push(format!("{}: loaded without an error", case.stem));
                continue;
            }
            Err(d) => d,
        };
        assert!(diags.has_errors(), "{}: Err without an error", case.stem);
        let file: &SourceFile = &diags.file;
        let found: Vec<(usize, usize, &str)> = diags
            .items
            .iter()
            .map(|d| {
                let at = file.line_col(d.span.start);
                (at.line, at.col, d.message.as_str())
            })
            .collect();
        for (line, col, msg) in &case.expect {
            let hit = found
                .iter()
                .any(|(l, c, m)| l == line && c == col && m.contains(msg.as_str()));
            if !hit {
                failures.push(format!(
                    "{}: expected {line}:{col} {msg:?}, found {found:?}",
                    case.stem
                ));
            }
        }
        for d in &diags.items {
            if d.span.start > file.text.len() || d.span.end > file.text.len() {
                failures.push(format!(
                    "{}: span {:?} outside the file ({} bytes)",
                    case.stem,
                    d.span,
                    file.text.len()
                ));
            }
            if d.help.is_none() {
                failures.push(format!("{}: `{}` has no help", case.stem, d.message));
            }
        }
        insta::assert_snapshot!(case.stem.as_str(), diags.render());
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

#[test]
fn check_exits_1_with_diagnostics_on_stderr_only() {
    for stem in [
        "unknown-key-in-component",
        "cycle-via-copy-from",
        "disabled-dependency",
        "invalid-toml-syntax",
        "multiple-errors",
        "override-bool-maybe",
        "unknown-profile",
        "invalid-utf8",
        "empty-file",
    ] {
        let case = parse_case(&root().join(BAD).join(format!("{stem}.toml")));
        let path = display_name(&case);
        let mut args = vec!["check".to_owned(), path.clone()];
        for (k, v) in &case.overrides.args {
            args.push("--arg".into());
            args.push(format!("{k}={v}"));
        }
        if let Some(p) = &case.overrides.profile {
            args.push("--profile".into());
            args.push(p.clone());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = strata(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stem}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "{stem}: stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        for (line, col, msg) in &case.expect {
            let at = format!("--> {path}:{line}:{col}");
            assert!(stderr.contains(&at), "{stem}: no `{at}` in\n{stderr}");
            assert!(
                stderr.contains(msg.as_str()),
                "{stem}: no {msg:?} in\n{stderr}"
            );
        }
        assert!(stderr.contains("nothing was built"), "{stem}: {stderr}");
    }
}

#[test]
fn check_exits_0_on_every_example() {
    let mut seen = 0;
    for (name, _) in examples() {
        seen += 1;
        let rel = format!("examples/{name}/strata.toml");
        let out = strata(&["check", &rel]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{rel}:\n{stderr}");
        assert!(stderr.contains(": ok: stack"), "{rel}:\n{stderr}");
    }
    assert!(seen > 0, "no examples/*/strata.toml");
}

/// An empty build arg in the naming rule is one error, at the rule, that
/// names the arg and its value, not one box per component.
#[test]
fn an_invalid_interpolation_names_its_args_once() {
    let file = root().join("examples/fedbiomed/strata.toml");
    let out = strata(&["check", &file.to_string_lossy(), "--arg", "version="]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");
    assert!(stderr.contains("strata.toml:8:9"), "{stderr}");
    assert!(stderr.contains("version = ``"), "{stderr}");
}

/// `STRATA_MIRRORS` in the CLI's environment is read by the frontend's
/// rules: a malformed pair fails the command, it is never dropped.
#[test]
fn a_malformed_mirror_in_the_environment_is_an_error() {
    let file = root().join("examples/fedbiomed/strata.toml");
    let out = common::strata_command()
        .args(["check", &file.to_string_lossy()])
        .env(
            "STRATA_MIRRORS",
            "python=strata.local/python:3.11-slim-bookworm,oops",
        )
        .output()
        .expect("run strata");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("STRATA_MIRRORS: `oops` is not FROM=TO"),
        "{stderr}"
    );
}
