//! The reference's examples (docs/stack-file.md) and the example stacks
//! resolve with the stack file's types. The schema and the reference's key
//! tables are checked by crates/schema.

mod common;

use std::path::Path;

use strata::graph::{CopySource, StepKind};
use strata::spec::{self, Overrides, SourceFile};

use common::{examples, root};

const REFERENCE: &str = "docs/stack-file.md";

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

// ------------------------------------------------------------ examples ----

/// The ```toml blocks of the reference: every one is read with the stack
/// file's types (so they use real keys), and whole stacks must resolve.
#[test]
fn the_reference_examples_are_valid() {
    let doc = read(REFERENCE);
    let mut blocks = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    for (i, line) in doc.lines().enumerate() {
        match (&mut cur, line.trim_start()) {
            (None, "```toml") => cur = Some((i + 1, String::new())),
            (Some(_), "```") => blocks.extend(cur.take()),
            (Some((_, text)), _) => {
                text.push_str(line);
                text.push('\n');
            }
            _ => {}
        }
    }
    assert!(
        blocks.len() > 10,
        "the reference should show its keys in use"
    );
    for (line, text) in blocks {
        if let Err(e) = spec::raw::parse(&text) {
            panic!("{REFERENCE}:{line}: the example is not a valid stack file fragment: {e}");
        }
        if text.contains("[stack]") && text.contains("[component.") {
            let file = SourceFile::new(format!("{REFERENCE}:{line}"), text.clone());
            if let Err(d) = strata::resolve(file, &Overrides::default()) {
                panic!(
                    "{REFERENCE}:{line}: the example does not resolve:\n{}",
                    d.render()
                );
            }
        }
    }
}

/// Every example's stack file.
fn stack_files() -> Vec<std::path::PathBuf> {
    examples().into_iter().map(|(_, file)| file).collect()
}

fn load(path: &Path, overrides: &Overrides) -> strata::graph::Stack {
    let bytes = std::fs::read(path).expect("read the example");
    strata::load(&path.display().to_string(), &bytes, overrides).unwrap_or_else(|d| {
        panic!(
            "{} does not resolve with {overrides:?}:\n{}",
            path.display(),
            d.render()
        )
    })
}

#[test]
fn every_example_resolves_with_every_profile() {
    let files = stack_files();
    assert!(
        files.len() >= 4,
        "examples/ should hold the seed systems' stacks"
    );
    for path in files {
        let stack = load(&path, &Overrides::default());
        assert!(
            stack.enabled().count() > 0,
            "{}: nothing enabled",
            path.display()
        );
        for p in &stack.profiles {
            let o = Overrides {
                profile: Some(p.name.clone()),
                ..Overrides::default()
            };
            load(&path, &o);
        }
    }
}

#[test]
fn every_fate_flag_combination_is_buildable() {
    let path = root().join("examples/fate/strata.toml");
    let flags = ["basic", "op", "fum", "nn", "spark", "ipcl", "gpu", "llm"];
    for bits in 0u32..(1 << flags.len()) {
        let args = flags
            .iter()
            .enumerate()
            .map(|(i, f)| ((*f).to_owned(), (bits >> i & 1).to_string()))
            .collect();
        let o = Overrides {
            args,
            ..Overrides::default()
        };
        load(&path, &o);
    }
}

#[test]
fn examples_read_only_files_their_context_holds() {
    for path in stack_files() {
        let stack = load(&path, &Overrides::default());
        let dir = path.parent().expect("a directory");
        for c in &stack.components {
            for step in &c.steps {
                let files: Vec<&String> = match &step.kind {
                    StepKind::Copy(copy) if copy.source == CopySource::Context => {
                        copy.srcs.iter().collect()
                    }
                    StepKind::Pip(pip) => pip.requirements.iter().collect(),
                    StepKind::Conda(conda) => conda.file.iter().collect(),
                    _ => Vec::new(),
                };
                for f in files {
                    let p = dir.join(&c.context).join(f);
                    assert!(
                        p.exists(),
                        "{}: `{}` reads {} (missing)",
                        path.display(),
                        c.name,
                        p.display()
                    );
                }
            }
        }
    }
}

/// The README's quick start is a whole stack that resolves without
/// warnings and declares a test, as the text around it says.
#[test]
fn the_readme_quick_start_resolves() {
    let readme = read("README.md");
    let start = readme
        .find("```toml\n")
        .expect("README has a ```toml block")
        + "```toml\n".len();
    let len = readme[start..].find("```").expect("the block ends");
    let text = &readme[start..start + len];
    let stack = strata::load("README.md", text.as_bytes(), &Overrides::default())
        .unwrap_or_else(|d| panic!("the quick start does not resolve:\n{}", d.render()));
    assert!(
        stack.warnings.is_empty(),
        "{}",
        spec::Diagnostics {
            file: stack.file.clone(),
            items: stack.warnings.clone()
        }
        .render()
    );
    assert!(stack.components.iter().any(|c| !c.tests.is_empty()));
    assert!(stack.components.iter().any(|c| c.gpu.is_some()));
}
