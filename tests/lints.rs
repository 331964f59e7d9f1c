//! The lints (`src/lint`, `docs/lints.md`) on the cases in `tests/data/lint/`.
//!
//! A case marks each line a diagnostic starts on with a trailing comment,
//! `# warn: id[, id...]` or `# error: what`, and must produce exactly
//! those: no more, no fewer. Rendered output is snapshotted next to the
//! cases (`tests/data/lint/snapshots/`).

mod common;

use std::collections::BTreeMap;

use common::{buildx, examples, frontend_image, project, root, stack_files};

use strata::lint::LINTS;
use strata::spec::{Diagnostics, Overrides, Severity};

const CASES: &str = "tests/data/lint";

/// The text of the case `tests/data/lint/STEM.toml`.
fn case(stem: &str) -> String {
    cases()
        .into_iter()
        .find(|(s, _)| s == stem)
        .unwrap_or_else(|| panic!("no case {stem}.toml"))
        .1
}

fn cases() -> Vec<(String, String)> {
    stack_files(CASES)
        .into_iter()
        .map(|p| {
            let stem = p
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("a UTF-8 name")
                .to_owned();
            (stem, std::fs::read_to_string(&p).expect("read a case"))
        })
        .collect()
}

/// `(line, "warn"|"error", id)` for every marker, counted.
fn markers(text: &str) -> BTreeMap<(usize, String, String), usize> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        for kind in ["warn", "error"] {
            let Some((_, list)) = line.split_once(&format!("# {kind}:")) else {
                continue;
            };
            for id in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                *out.entry((i + 1, kind.to_owned(), id.to_owned()))
                    .or_default() += 1;
            }
        }
    }
    out
}

/// The diagnostics of a case, as `(line, kind, id)`; an error's id is the
/// first backquoted word of its message.
fn found(diags: &Diagnostics) -> BTreeMap<(usize, String, String), usize> {
    let mut out = BTreeMap::new();
    for d in &diags.items {
        let line = diags.file.line_col(d.span.start).line;
        let (kind, id) = match d.severity {
            Severity::Warning => ("warn", d.code.to_owned()),
            Severity::Error => (
                "error",
                d.message.split('`').nth(1).unwrap_or("").to_owned(),
            ),
        };
        *out.entry((line, kind.to_owned(), id)).or_default() += 1;
    }
    out
}

fn load(name: &str, text: &str) -> Diagnostics {
    match strata::load(name, text.as_bytes(), &Overrides::default()) {
        Ok(stack) => Diagnostics {
            file: stack.file.clone(),
            items: stack.warnings.clone(),
        },
        Err(d) => d,
    }
}

/// `text` loads without a warning.
fn assert_no_warnings(name: &str, text: &str) {
    let stack = strata::load(name, text.as_bytes(), &Overrides::default())
        .unwrap_or_else(|d| panic!("{name} loads:\n{}", d.render()));
    let messages: Vec<&String> = stack.warnings.iter().map(|w| &w.message).collect();
    assert!(messages.is_empty(), "{name}: {messages:?}");
}

#[test]
fn every_case_warns_exactly_where_marked() {
    let mut failures = Vec::new();
    for (stem, text) in cases() {
        let name = format!("{CASES}/{stem}.toml");
        let diags = load(&name, &text);
        let want = markers(&text);
        let got = found(&diags);
        if want != got {
            failures.push(format!(
                "{stem}:\n  marked {want:?}\n  found  {got:?}\n{}",
                diags.render()
            ));
        }
        for d in &diags.items {
            assert!(d.help.is_some(), "{stem}: `{}` has no help", d.message);
            assert!(d.span.end <= text.len(), "{stem}: span outside the file");
            if d.severity == Severity::Warning {
                assert!(
                    LINTS.iter().any(|l| l.id == d.code),
                    "{stem}: unknown code {}",
                    d.code
                );
            }
        }
        insta::with_settings!({
            snapshot_path => "data/lint/snapshots",
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(stem.as_str(), diags.render());
        });
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_lint_has_a_case_a_doc_section_and_an_allow() {
    let cases = cases();
    let docs = std::fs::read_to_string(root().join("docs/lints.md")).expect("docs/lints.md");
    // `allowed.toml` and `allowed-*.toml`: lints that need a [user] policy
    // and `root-user`, which needs none, cannot all fire in one file.
    let allowed: String = cases
        .iter()
        .filter(|(s, _)| s.starts_with("allowed"))
        .map(|(_, text)| text.as_str())
        .collect();
    for lint in LINTS {
        let warned = cases.iter().any(|(_, text)| {
            markers(text)
                .keys()
                .any(|(_, k, id)| k == "warn" && id == lint.id)
        });
        assert!(warned, "no case in {CASES} warns `{}`", lint.id);
        assert!(
            docs.contains(&format!("## `{}`", lint.id)),
            "docs/lints.md has no `## `{}`` section",
            lint.id
        );
        assert!(
            allowed.contains(&format!("\"{}\"", lint.id)),
            "allowed.toml does not allow `{}`",
            lint.id
        );
    }
}

#[test]
fn allow_silences_and_removing_it_brings_every_lint_back() {
    let mut fired = Vec::new();
    for (stem, text) in cases()
        .into_iter()
        .filter(|(s, _)| s.starts_with("allowed"))
    {
        assert_no_warnings(&stem, &text);
        let bare: String = text
            .lines()
            .filter(|l| !l.starts_with("allow = "))
            .map(|l| format!("{l}\n"))
            .collect();
        let stack = strata::load("bare.toml", bare.as_bytes(), &Overrides::default())
            .expect("without allow it still loads");
        fired.extend(stack.warnings.iter().map(|w| w.code));
    }
    for lint in LINTS {
        assert!(
            fired.contains(&lint.id),
            "`{}` does not fire without its allow",
            lint.id
        );
    }
}

#[test]
fn an_unknown_lint_in_allow_is_an_error_with_a_suggestion() {
    let text = case("unknown-allow");
    let diags = strata::load("u.toml", text.as_bytes(), &Overrides::default())
        .expect_err("an unknown lint id is an error");
    let typo = diags
        .items
        .iter()
        .find(|d| d.message.contains("unpined-image"))
        .expect("the typo is reported");
    assert_eq!(typo.help.as_deref(), Some("did you mean `unpinned-image`?"));
    assert_eq!(&text[typo.span.clone()], "\"unpined-image\"");
}

/// `strata check ARGS`: (exit code, stderr).
fn check(args: &[&str]) -> (Option<i32>, String) {
    let out = common::strata(&[&["check"][..], args].concat());
    assert!(out.stdout.is_empty(), "check writes nothing on stdout");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn deny_warnings_makes_lints_fail_check() {
    let case = format!("{CASES}/root-user.toml");
    let (code, err) = check(&[&case]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("warning[root-user]"), "{err}");
    assert!(err.contains(&format!("--> {case}:5:12")), "{err}");
    let (code, err) = check(&["--deny-warnings", &case]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("warnings are denied"), "{err}");
}

/// The examples are lint-clean for every profile, with and without the
/// offline mirrors, and `strata check --deny-warnings` passes on each.
#[test]
fn examples_are_clean() {
    let mirrors: Vec<(String, String)> =
        std::fs::read_to_string(root().join("examples/offline.mirrors"))
            .expect("examples/offline.mirrors")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(a, b)| (a.trim().to_owned(), b.trim().to_owned()))
            .collect();
    let mut seen = 0;
    for (name, file) in examples() {
        let rel = format!("examples/{name}/strata.toml");
        let bytes = std::fs::read(file).expect("read");
        let base = strata::load(&rel, &bytes, &Overrides::default()).expect("loads");
        let mut profiles: Vec<Option<String>> = vec![None];
        profiles.extend(base.profiles.iter().map(|p| Some(p.name.clone())));
        for profile in profiles {
            for m in [Vec::new(), mirrors.clone()] {
                let o = Overrides {
                    profile: profile.clone(),
                    mirrors: m,
                    ..Overrides::default()
                };
                let stack = strata::load(&rel, &bytes, &o).expect("loads");
                let d = Diagnostics {
                    file: stack.file.clone(),
                    items: stack.warnings.clone(),
                };
                assert!(stack.warnings.is_empty(), "{rel} {profile:?}:\n{d}");
            }
        }
        let (code, err) = check(&["--deny-warnings", &rel]);
        assert_eq!(code, Some(0), "{rel}: {err}");
        assert!(!err.contains("warning["), "{rel}: {err}");
        seen += 1;
    }
    assert_eq!(seen, 4, "four examples");
}

/// Through the frontend, lints reach `docker buildx build` as BuildKit
/// warnings with their line. Needs the engine.
#[test]
fn lints_reach_buildx_as_warnings() {
    frontend_image();
    let stack = "# syntax=strata/frontend:latest\n[stack]\nname = \"w\"\n\n[component.x]\nfrom = \"strata.local/busybox:1.36\"\n";
    let dir = project("lints", stack);
    let (ok, log) = buildx(&dir, &["--target", "x"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok, "a warning does not fail the build:\n{log}");
    assert!(log.contains("1 warning found"), "{log}");
    assert!(
        log.contains("strata.toml:5: [root-user] component `x` runs as root"),
        "{log}"
    );
}

/// `[stack] allow` silences a lint everywhere: the allowed cases with their
/// components' `allow` lists moved to the stack have no warnings.
#[test]
fn a_stack_wide_allow_silences_every_component() {
    for (stem, text) in cases()
        .into_iter()
        .filter(|(s, _)| s.starts_with("allowed"))
    {
        let ids: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("allow = "))
            .flat_map(|list| {
                list.trim_matches(['[', ']'])
                    .split(',')
                    .map(|id| id.trim().to_owned())
                    .collect::<Vec<_>>()
            })
            .filter(|id| !id.is_empty())
            .collect();
        assert!(!ids.is_empty(), "{stem} allows nothing");
        let moved: String = text
            .lines()
            .filter(|l| !l.starts_with("allow = "))
            .map(|l| {
                if l == "[stack]" {
                    format!("[stack]\nallow = [{}]\n", ids.join(", "))
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        assert!(moved.contains("\nallow = ["), "{stem} has no [stack] line");
        assert_no_warnings(&stem, &moved);
    }
}
