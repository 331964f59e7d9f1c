//! Bad frontend options and inputs on the real engine: each build fails
//! with a message that says what is wrong and where (the stack file's line,
//! or the option), never a crash, a panic or an "internal error".
//!
//! The catalogue of malformed stack files (`tests/data/bad/`,
//! `tests/spec_diagnostics.rs`) covers what a stack file can get wrong;
//! these are what reaches the frontend from the command line: build args
//! of the wrong type, unknown targets and profiles, bad mirrors, and stack
//! files too large, not UTF-8, or with a cycle.
//!
//! Needs the engine (scripts/engine.sh) and the frontend image, which the
//! test builds with scripts/frontend-image.sh. When `docker info` fails,
//! the test fails and says so.

mod common;

use std::path::PathBuf;

use common::{buildx, frontend_image, line_of, project, with_frontend};

/// The stack the cases start from (tests/data/stacks/bad-options.toml).
const STACK: &str = include_str!("data/stacks/bad-options.toml");

/// One bad build: what is given, and what the failure must say.
struct Case {
    name: &'static str,
    /// The stack file's bytes (default: [`STACK`]).
    file: Option<Vec<u8>>,
    args: Vec<String>,
    /// Parts of the message, all present.
    says: Vec<String>,
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn cases() -> Vec<Case> {
    let at = |text: &str| format!("strata.toml:{}", line_of(STACK, text));
    let mut huge = STACK.as_bytes().to_vec();
    let filler = format!("# {}\n", "x".repeat(1021));
    while huge.len() <= (4 << 20) + 4096 {
        huge.extend_from_slice(filler.as_bytes());
    }
    // Offsets in the file as written (its `# syntax=` line names the frontend under test).
    let mut not_utf8 = with_frontend(STACK.as_bytes());
    let at_byte = not_utf8.len();
    not_utf8.extend_from_slice(b"# caf\xe9\n");
    let cycle = STACK.replace(
        "run = [{ cmd = \"echo {n}\", network = \"none\" }]",
        "copy = [{ from = \"app\", src = \"/x\", dst = \"/x\" }]\n\n[component.app]\nfrom = \"base\"",
    );
    vec![
        Case {
            name: "int build-arg",
            file: None,
            args: args(&["--build-arg", "n=many"]),
            says: vec!["`n=many`: `many` is not an integer".into(), at("n = 3")],
        },
        Case {
            name: "bool build-arg",
            file: None,
            args: args(&["--build-arg", "gpu=maybe"]),
            says: vec!["`maybe` is not a bool".into(), at("gpu = false")],
        },
        Case {
            name: "undeclared build-arg",
            file: None,
            args: args(&["--build-arg", "tagg=2"]),
            says: vec![
                "`tagg=2` sets an arg this stack does not declare".into(),
                "did you mean `tag`?".into(),
                at("tag = \"1\""),
            ],
        },
        Case {
            name: "unknown target",
            file: None,
            args: args(&["--target", "nope"]),
            says: vec!["target `nope` is not a component of stack `opts`".into()],
        },
        Case {
            name: "unknown profile",
            file: None,
            args: args(&["--build-arg", "STRATA_PROFILE=huge"]),
            says: vec!["unknown profile `huge`".into(), at("[profiles.big]")],
        },
        Case {
            name: "misspelt STRATA_ build-arg",
            file: None,
            args: args(&["--build-arg", "STRATA_PROFILES=big"]),
            says: vec![
                "build-arg STRATA_PROFILES: Strata reads only STRATA_MIRRORS, STRATA_PROFILE, STRATA_SKIP_TESTS, STRATA_WARNINGS and STRATA_GIT_BRANCH"
                    .into(),
            ],
        },
        Case {
            name: "STRATA_MIRRORS without =",
            file: None,
            args: args(&["--build-arg", "STRATA_MIRRORS=strata.local/busybox"]),
            says: vec!["build-arg STRATA_MIRRORS: `strata.local/busybox` is not FROM=TO".into()],
        },
        Case {
            name: "STRATA_MIRRORS to a bad reference",
            file: None,
            args: args(&["--build-arg", "STRATA_MIRRORS=busybox=Not/A Ref"]),
            says: vec!["mirror `busybox=Not/A Ref`".into()],
        },
        // BuildKit checks this one before the frontend runs.
        Case {
            name: "SOURCE_DATE_EPOCH not a number",
            file: None,
            args: args(&["--build-arg", "SOURCE_DATE_EPOCH=yesterday"]),
            says: vec!["SOURCE_DATE_EPOCH".into(), "yesterday".into()],
        },
        Case {
            name: "stack file over 4 MiB",
            file: Some(huge),
            args: Vec::new(),
            says: vec!["the limit is 4194304 bytes".into()],
        },
        Case {
            name: "stack file not UTF-8",
            file: Some(not_utf8),
            args: Vec::new(),
            says: vec![
                format!("the stack file is not valid UTF-8 (byte {})", at_byte + 5),
                format!("strata.toml:{}", STACK.lines().count() + 1),
            ],
        },
        Case {
            name: "cycle through copy-from",
            file: Some(cycle.clone().into_bytes()),
            args: Vec::new(),
            says: vec!["components form a cycle".into(), {
                let line = cycle
                    .lines()
                    .position(|l| l.starts_with("copy = [{ from = \"app\""))
                    .expect("the copy line")
                    + 1;
                format!("strata.toml:{line}")
            }],
        },
    ]
}

/// A project for one case, named after it.
fn case_project(name: &str, bytes: &[u8]) -> PathBuf {
    let slug: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    project(&format!("badopts-{slug}"), bytes)
}

#[test]
fn bad_options_and_inputs_fail_with_located_messages() {
    frontend_image();
    let cases = cases();
    assert!(cases.len() >= 10);
    let mut failures = Vec::new();
    for case in &cases {
        let bytes = case
            .file
            .clone()
            .unwrap_or_else(|| STACK.as_bytes().to_vec());
        let dir = case_project(case.name, &bytes);
        let mut args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        if !args.contains(&"--target") {
            args.extend(["--target", "base"]);
        }
        let (ok, log) = buildx(&dir, &args);
        let _ = std::fs::remove_dir_all(&dir);
        let mut problems = Vec::new();
        if ok {
            problems.push("it built".to_owned());
        }
        for part in &case.says {
            if !log.contains(part.as_str()) {
                problems.push(format!("no {part:?}"));
            }
        }
        for crash in ["internal error", "panicked", "a bug", "RUST_BACKTRACE"] {
            if log.contains(crash) {
                problems.push(format!("says {crash:?}"));
            }
        }
        if !log.contains("ERROR: failed to") {
            problems.push("no ERROR line".to_owned());
        }
        if !problems.is_empty() {
            let tail: Vec<&str> = log.lines().rev().take(25).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            failures.push(format!(
                "{}: {}\n{}",
                case.name,
                problems.join("; "),
                tail.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}
