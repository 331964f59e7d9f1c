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
//! the test says so and passes without checking.

use std::path::{Path, PathBuf};
use std::process::Command;

const STACK: &str = r#"# syntax=strata/frontend:latest
[stack]
name = "opts"
image = "strata-test/opts-{component}:{tag}"

[args]
tag = "1"
n = 3
gpu = false

[profiles.big]
args = { n = 10 }

[user]
name = "app"
uid = 1000

[component.base]
from = "strata.local/busybox:1.36"
run = [{ cmd = "echo {n}", network = "none" }]
"#;

/// One bad build: what is given, and what the failure must say.
struct Case {
    name: &'static str,
    /// The stack file's bytes (default: [`STACK`]).
    file: Option<Vec<u8>>,
    args: Vec<String>,
    /// Parts of the message, all present.
    says: Vec<String>,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn engine() -> bool {
    let up = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    if !up {
        eprintln!("SKIPPED: `docker info` fails: no engine (start it with scripts/engine.sh)");
    }
    up
}

fn frontend_image() {
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

/// The 1-based line of `STACK` that is exactly `text`.
fn line_of(text: &str) -> usize {
    STACK
        .lines()
        .position(|l| l == text)
        .unwrap_or_else(|| panic!("no line `{text}`"))
        + 1
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn cases() -> Vec<Case> {
    let at = |text: &str| format!("strata.toml:{}", line_of(text));
    let mut huge = STACK.as_bytes().to_vec();
    let filler = format!("# {}\n", "x".repeat(1021));
    while huge.len() <= (4 << 20) + 4096 {
        huge.extend_from_slice(filler.as_bytes());
    }
    let mut not_utf8 = STACK.as_bytes().to_vec();
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
                "build-arg STRATA_PROFILES: Strata reads only STRATA_MIRRORS, STRATA_PROFILE and STRATA_SKIP_TESTS"
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

fn project(name: &str, bytes: &[u8]) -> PathBuf {
    let slug: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let dir = std::env::temp_dir().join(format!("strata-badopts-{slug}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("strata.toml"), bytes).expect("write stack");
    dir
}

#[test]
fn bad_options_and_inputs_fail_with_located_messages() {
    if !engine() {
        return;
    }
    frontend_image();
    let cases = cases();
    assert!(cases.len() >= 10);
    let mut failures = Vec::new();
    for case in &cases {
        let bytes = case
            .file
            .clone()
            .unwrap_or_else(|| STACK.as_bytes().to_vec());
        let dir = project(case.name, &bytes);
        let mut cmd = Command::new("docker");
        cmd.current_dir(&dir)
            .args(["buildx", "build", "--progress=plain", "-f", "strata.toml"])
            .args(&case.args)
            .arg(".");
        if !case.args.iter().any(|a| a == "--target") {
            cmd.args(["--target", "base"]);
        }
        let out = cmd.output().expect("docker runs");
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_dir_all(&dir);
        let mut problems = Vec::new();
        if out.status.success() {
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
