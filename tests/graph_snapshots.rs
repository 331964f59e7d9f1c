//! The component graph of every `examples/*/strata.toml`, as text, Mermaid,
//! DOT and JSON: with the default args, then once per profile.
//!
//! Examples are found by listing `examples/`, so a new one is covered as
//! soon as it exists (accept its snapshots with `INSTA_UPDATE=always` or
//! `cargo insta review`).

mod common;

use std::path::Path;

use common::examples;

use strata::graph::{render, Stack};
use strata::spec::Overrides;

fn load(name: &str, path: &Path, profile: Option<&str>) -> Stack {
    let bytes = std::fs::read(path).expect("read the example");
    let overrides = Overrides {
        profile: profile.map(str::to_owned),
        ..Overrides::default()
    };
    let shown = format!("examples/{name}/strata.toml");
    strata::load(&shown, &bytes, &overrides).unwrap_or_else(|d| {
        panic!(
            "{shown} (profile {}) does not load:\n{d}",
            profile.unwrap_or("none")
        )
    })
}

fn snapshot_all(snapshot: &str, stack: &Stack) {
    // What `strata graph` prints ends with a line break in every format.
    for shown in [
        render::text(stack),
        render::mermaid(stack),
        render::dot(stack),
    ] {
        assert!(shown.ends_with('\n'), "{snapshot}: no final newline");
    }
    insta::assert_snapshot!(format!("{snapshot}-text"), render::text(stack));
    insta::assert_snapshot!(format!("{snapshot}-mermaid"), render::mermaid(stack));
    insta::assert_snapshot!(format!("{snapshot}-dot"), render::dot(stack));
    insta::assert_snapshot!(
        format!("{snapshot}-json"),
        format!("{:#}\n", render::json(stack))
    );
}

#[test]
fn every_example_graph_with_default_args_and_each_profile() {
    for (name, path) in examples() {
        let stack = load(&name, &path, None);
        snapshot_all(&name, &stack);
        let profiles: Vec<String> = stack.profiles.iter().map(|p| p.name.clone()).collect();
        for profile in profiles {
            let with = load(&name, &path, Some(&profile));
            assert_eq!(with.profile.as_deref(), Some(profile.as_str()));
            snapshot_all(&format!("{name}-profile-{profile}"), &with);
        }
    }
}

#[test]
fn graphs_are_deterministic() {
    for (name, path) in examples() {
        let a = load(&name, &path, None);
        let b = load(&name, &path, None);
        assert_eq!(render::dot(&a), render::dot(&b), "{name}");
        assert_eq!(render::json(&a), render::json(&b), "{name}");
    }
}
