//! Inputs that made a fuzz target (`fuzz/`, `scripts/fuzz.sh`) fail,
//! replayed through the targets' own bodies in plain `cargo test`: `fuzz/regressions/<target>/*` (for `lower`, the stack
//! the fuzzer's input rendered to, as `.toml`). The option seeds of
//! `frontend_opts` are replayed too, and the bundle seeds (which must verify).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[path = "../fuzz/src/entry.rs"]
mod entry;

fn files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    // A target without regressions has no directory (git keeps no empty ones).
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    out.sort();
    out
}

/// Runs `body` on every file of `dir`; fails the test with the files that
/// panic, and why. How many files it ran.
fn replay(dir: &str, body: impl Fn(&[u8])) -> usize {
    let mut failures = Vec::new();
    let files = files(dir);
    for path in &files {
        let bytes = std::fs::read(path).expect("read a regression input");
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| body(&bytes))) {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("{}: {why}", path.display()));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    files.len()
}

#[test]
fn stack_regressions() {
    replay("fuzz/regressions/stack", entry::stack);
}

/// A stack with templates, a chain of `extends`, a component extended
/// by another and a matrix of table values, cut short at every byte and
/// with each byte left out: the `stack` body never panics, and every
/// diagnostic and note stays inside the file.
#[test]
fn templates_and_matrices_cut_and_garbled() {
    const STACK: &str = r#"[stack]
name = "t"
[args]
tag = "1"
[template.base]
from = "debian:bookworm"
env = { A = "{component}" }
test = ["true"]
[template.more]
extends = "base"
test = ["test -n \"$A\""]
[component.plain]
extends = ["more"]
user = "root"
[component."{v.name}-{w}"]
matrix.v = [{ name = "a", os = "bookworm" }, { name = "b", os = "trixie" }]
matrix.w = ["x", "y"]
extends = ["more", "plain"]
from = "debian:{v.os}"
labels = { "k.{w}" = "{tag}-{v.name}" }
"#;
    let bytes = STACK.as_bytes();
    let mut inputs: Vec<Vec<u8>> = (0..bytes.len()).map(|n| bytes[..n].to_vec()).collect();
    inputs.extend((0..bytes.len()).map(|i| [&bytes[..i], &bytes[i + 1..]].concat()));
    let mut failures = Vec::new();
    for input in &inputs {
        if catch_unwind(AssertUnwindSafe(|| entry::stack(input))).is_err() {
            failures.push(String::from_utf8_lossy(input).into_owned());
        }
    }
    assert!(
        failures.is_empty(),
        "{} inputs failed, first:\n{}",
        failures.len(),
        failures[0]
    );
    // The whole stack loads: four matrix instances and `plain`.
    let stack = strata::load("t.toml", bytes, &Default::default()).expect("loads");
    assert_eq!(stack.components.len(), 5);
}

#[test]
fn lower_regressions() {
    replay("fuzz/regressions/lower", |bytes| {
        let text = std::str::from_utf8(bytes).expect("a rendered stack is UTF-8");
        entry::lower_toml(text);
    });
}

#[test]
fn frontend_opts_regressions_and_seeds() {
    replay("fuzz/regressions/frontend_opts", entry::frontend_opts);
    let seeds = replay("fuzz/seeds/frontend_opts", entry::frontend_opts);
    assert!(seeds > 0);
}

#[test]
fn build_args_regressions_and_seeds() {
    replay("fuzz/regressions/build_args", entry::build_args);
    let seeds = replay("fuzz/seeds/build_args", entry::build_args);
    assert!(seeds >= 6);
}

/// The hostile stack loads with its defaults and lowers every component,
/// so the target reaches the places the args land.
#[test]
fn the_hostile_stack_loads() {
    let outcome = entry::lower_toml(entry::HOSTILE_STACK);
    assert!(outcome.resolved && outcome.lowered == 1, "{outcome:?}");
}

#[test]
fn bundle_regressions_and_seeds() {
    replay("fuzz/regressions/bundle", |b| {
        entry::bundle(b);
    });
    let seeds = files("fuzz/seeds/bundle");
    assert!(seeds.len() >= 3);
    for path in &seeds {
        let bytes = std::fs::read(path).expect("read a seed");
        assert!(entry::bundle(&bytes), "{} does not verify", path.display());
    }
}

/// The option stack itself is valid and lowers, so the target reaches lowering's inputs.
#[test]
fn the_frontend_opts_stack_loads() {
    let stack = strata::load(
        "strata.toml",
        entry::OPTS_STACK.as_bytes(),
        &strata::spec::Overrides::default(),
    )
    .expect("OPTS_STACK loads");
    assert_eq!(stack.components.len(), 2);
    let outcome = entry::lower_toml(entry::OPTS_STACK);
    assert!(outcome.resolved && outcome.lowered == 1, "{outcome:?}");
}
