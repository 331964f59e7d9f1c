//! The catalogue of malformed stacks in `tests/data/bad/`: every one fails
//! with located diagnostics, and `strata check` exits 1 on them.
//!
//! Each file starts with header comments:
//!
//! ```text
//! # args: name=value other=value    (optional: overrides, as `--arg`)
//! # profile: name                   (optional: as `--profile`)
//! # expect: <line>:<col> <code> <part of the message>   (one or more)
//! ```
//!
//! The rendered diagnostics of each file are snapshots
//! (`tests/snapshots/spec_diagnostics__<file stem>.snap`). The catalogue
//! is also where `docs/errors.md` takes its examples from: the first case
//! of each code, in file name order.

mod common;

use std::path::Path;

use common::{examples, root, stack_files, strata};
use strata::spec::{ErrorCode, Overrides, SourceFile};

const BAD: &str = "tests/data/bad";

/// What a catalogue file's header asks for.
struct Case {
    stem: String,
    bytes: Vec<u8>,
    overrides: Overrides,
    expect: Vec<Expect>,
}

/// One `# expect:` line: an error of `code` at `line:col` whose message
/// contains `message`.
struct Expect {
    line: usize,
    col: usize,
    code: ErrorCode,
    message: String,
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
            let mut words = e.trim_start().splitn(3, ' ');
            let loc = words.next().unwrap_or("");
            let (l, c) = loc
                .split_once(':')
                .unwrap_or_else(|| panic!("{stem}: `# expect:` needs line:col, got {loc}"));
            let code = words.next().unwrap_or("");
            let code = ErrorCode::find(code)
                .unwrap_or_else(|| panic!("{stem}: `{code}` after line:col is not an error code"));
            expect.push(Expect {
                line: l.parse().expect("a line number"),
                col: c.parse().expect("a column number"),
                code,
                message: words.next().unwrap_or("").trim().to_owned(),
            });
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
        let diags = match strata::load(&name, &case.bytes, &case.overrides) {
            Ok(_) => {
                failures.push(format!("{}: loaded without an error", case.stem));
                continue;
            }
            Err(d) => d,
        };
        assert!(diags.has_errors(), "{}: Err without an error", case.stem);
        let file: &SourceFile = &diags.file;
        let found: Vec<(usize, usize, &str, &str)> = diags
            .items
            .iter()
            .map(|d| {
                let at = file.line_col(d.span.start);
                (at.line, at.col, d.code, d.message.as_str())
            })
            .collect();
        for e in &case.expect {
            let hit = found.iter().any(|(l, c, code, m)| {
                (*l, *c, *code) == (e.line, e.col, e.code.id()) && m.contains(e.message.as_str())
            });
            if !hit {
                failures.push(format!(
                    "{}: expected {}:{} {} {:?}, found {found:?}",
                    case.stem, e.line, e.col, e.code, e.message
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
        for e in &case.expect {
            let at = format!("--> {path}:{}:{}", e.line, e.col);
            assert!(stderr.contains(&at), "{stem}: no `{at}` in\n{stderr}");
            let head = format!("error[{}]: ", e.code);
            assert!(stderr.contains(&head), "{stem}: no `{head}` in\n{stderr}");
            assert!(
                stderr.contains(e.message.as_str()),
                "{stem}: no {:?} in\n{stderr}",
                e.message
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
    assert_eq!(stderr.matches("error[").count(), 1, "{stderr}");
    assert!(stderr.contains("error[E0804]"), "{stderr}");
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

/// Codes that no catalogue file can show, and where a test shows them.
const SHOWN_ELSEWHERE: &[(ErrorCode, &str)] = &[
    (
        ErrorCode::FileTooLarge,
        "a stack file over 4 MiB; tests/frontend_bad_options.rs sends one",
    ),
    (
        ErrorCode::UnresolvableImage,
        "reported by the frontend, which asks the engine for the image's config; tests in src/frontend/gateway.rs",
    ),
    (
        ErrorCode::ValueTooLarge,
        "a value over 64 KiB once args are inserted; tests/security.rs inserts a large arg",
    ),
];

/// `docs/errors.md`: every code, what it means, what to do, and the first
/// catalogue case that shows it with its rendered error.
fn errors_doc() -> String {
    let cases = cases();
    let mut out = String::from(ERRORS_DOC_HEAD);
    out.push_str("| code | name | what |\n| --- | --- | --- |\n");
    for c in ErrorCode::ALL {
        out.push_str(&format!(
            "| [{id}](#{lower}) | `{}` | {} |\n",
            c.name(),
            c.summary(),
            id = c.id(),
            lower = c.id().to_lowercase()
        ));
    }
    for c in ErrorCode::ALL {
        out.push_str(&format!(
            "\n## {}\n\n`{}`: {}.\n\nWhat to do: {}.\n",
            c.id(),
            c.name(),
            c.summary(),
            c.fix()
        ));
        let example = cases
            .iter()
            .find(|case| case.expect.iter().any(|e| e.code == *c));
        if let Some(case) = example {
            out.push_str(&example_section(case));
        } else if let Some(name) = context_case(*c) {
            out.push_str(&context_example(&name));
        } else {
            let (_, why) = SHOWN_ELSEWHERE
                .iter()
                .find(|(code, _)| code == c)
                .unwrap_or_else(|| panic!("{c}: no catalogue case in {BAD}"));
            out.push_str(&format!("\nExample: {why}.\n"));
        }
    }
    out
}

const ERRORS_DOC_HEAD: &str = "# Errors

Every error Strata finds in a stack file has a stable code, shown as
`error[E0302]` before the message, with the file, line and column it is
about and a hint for the case at hand. The code says what kind of error it
is; `strata explain E0302` prints its section of this page. Warnings are
lints, named by id (`warning[root-user]`): see [lints.md](lints.md).

Codes never change meaning. Each example below is a file of the catalogue
of malformed stacks (`tests/data/bad/`), and the error under it is what
`strata check` prints for it; the tests check both.

";

/// A catalogue case as an example: the stack (without the test header)
/// and the rendered errors.
fn example_section(case: &Case) -> String {
    let name = display_name(case);
    let text = String::from_utf8_lossy(&case.bytes);
    let body: Vec<&str> = text
        .lines()
        .skip_while(|l| {
            l.starts_with("# expect:") || l.starts_with("# args:") || l.starts_with("# profile:")
        })
        .collect();
    let mut invocation = String::from("strata check");
    for (k, v) in &case.overrides.args {
        invocation.push_str(&format!(" --arg {k}={v}"));
    }
    if let Some(p) = &case.overrides.profile {
        invocation.push_str(&format!(" --profile {p}"));
    }
    let rendered = match strata::load(&name, &case.bytes, &case.overrides) {
        Err(d) => d.render(),
        Ok(_) => panic!("{}: loaded without an error", case.stem),
    };
    format!(
        "\nExample (`{name}`):\n\n```toml\n{}\n```\n\n`{invocation}` prints:\n\n```text\n{}```\n",
        body.join("\n"),
        rendered
    )
}

/// The first case of `tests/data/context/` (one directory per case, a
/// stack and its context) whose `# expect:` has `code`.
fn context_case(code: ErrorCode) -> Option<String> {
    let dir = root().join("tests/data/context");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/data/context")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names.into_iter().find(|n| {
        std::fs::read_to_string(dir.join(n).join("strata.toml")).is_ok_and(|t| {
            t.lines()
                .filter_map(|l| l.strip_prefix("# expect: "))
                .any(|e| e.split(' ').nth(1) == Some(code.id()))
        })
    })
}

/// A context case as an example: its stack and what `strata check` prints.
fn context_example(name: &str) -> String {
    let file = format!("tests/data/context/{name}/strata.toml");
    let text = std::fs::read_to_string(root().join(&file)).expect("a context case");
    let body: Vec<&str> = text
        .lines()
        .skip_while(|l| l.starts_with("# expect:") || l.starts_with("# help:"))
        .collect();
    let out = strata(&["check", &file]);
    format!(
        "\nExample (`{file}`, with its build context beside it):\n\n```toml\n{}\n```\n\n`strata check` prints:\n\n```text\n{}```\n",
        body.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `docs/errors.md` is generated from the codes and the catalogue; set
/// `STRATA_UPDATE_DOCS=1` to write it.
#[test]
fn errors_doc_is_current_and_covers_every_code() {
    let want = errors_doc();
    let path = root().join("docs/errors.md");
    if std::env::var_os("STRATA_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).expect("write docs/errors.md");
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/errors.md is not current: run `STRATA_UPDATE_DOCS=1 cargo test --test spec_diagnostics errors_doc`"
    );
}

/// `strata explain CODE` prints the code's section of `docs/errors.md`.
#[test]
fn explain_prints_the_section_of_a_code() {
    let out = strata(&["explain", "E0302"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout.starts_with("## E0302"), "{stdout}");
    assert!(
        stdout.contains(ErrorCode::UnknownComponent.fix()),
        "{stdout}"
    );
    assert!(!stdout.contains("## E0303"), "{stdout}");
    let by_name = strata(&["explain", "unknown-component"]);
    assert_eq!(by_name.stdout, out.stdout);
    let lint = strata(&["explain", "root-user"]);
    assert_eq!(lint.status.code(), Some(0), "{lint:?}");
    assert!(String::from_utf8_lossy(&lint.stdout).starts_with("## `root-user`"));
    let bad = strata(&["explain", "E0302x"]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(bad.stdout.is_empty());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not an error code or lint id"));
}
