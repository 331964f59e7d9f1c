//! `strata bake`: a bake definition for the stack, as JSON, for
//! `docker buildx bake -f` (one target per component, each built by the
//! Strata frontend image through `BUILDKIT_SYNTAX`), for users whose
//! pipelines run bake.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use super::build::{platforms_of, select, target_names, FrontendImage, Selection, Target};
use super::lock::build_mirrors;
use super::StackArgs;

/// `strata bake`.
#[derive(Args)]
pub struct BakeArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    select: Selection,
    #[command(flatten)]
    frontend: FrontendImage,
    /// Return the images without running their `test` entries (STRATA_SKIP_TESTS=1).
    #[arg(long)]
    skip_tests: bool,
    /// Build for these platforms (comma-separated): each target gets the
    /// `platforms` where its component is enabled.
    #[arg(long, value_delimiter = ',', value_parser = super::platform_arg, value_name = "PLATFORM")]
    platform: Vec<crate::lower::Platform>,
}

/// Runs `strata bake`: prints the definition.
pub fn run(a: BakeArgs) -> Result<ExitCode> {
    let Some(stack) = a.stack.load_for(a.platform.first())? else {
        return Ok(ExitCode::FAILURE);
    };
    super::print_warnings(&stack);
    let Some(platforms) = platforms_of(&a.stack, &a.select.only, &a.platform, &stack)? else {
        return Ok(ExitCode::FAILURE);
    };
    let components: Vec<&crate::graph::Component> = if a.platform.is_empty() {
        select(&stack, &a.select.only)?
    } else {
        stack
            .components
            .iter()
            .filter(|c| {
                platforms.contains_key(&c.name) && c.platform != crate::graph::RunsOn::Build
            })
            .collect()
    };
    let targets = target_names(&components);
    let mirrors = build_mirrors(&a.stack, &stack, None)?;
    let def = bake_definition(&BakePlan {
        file: &a.stack.file,
        targets: &targets,
        args: &a.stack.args,
        profile: a.stack.profile.as_deref(),
        mirrors: &mirrors,
        frontend: &a.frontend.frontend,
        skip_tests: a.skip_tests,
        git_branch: super::build::git_branch(super::build::stack_dir(&a.stack.file)).as_deref(),
        platforms: (!a.platform.is_empty()).then_some(&platforms),
    })?;
    writeln!(std::io::stdout().lock(), "{def:#}")?;
    Ok(ExitCode::SUCCESS)
}

/// The inputs of a bake definition.
pub struct BakePlan<'a> {
    /// The stack file as given.
    pub file: &'a Path,
    /// The targets.
    pub targets: &'a [Target],
    /// `--arg` values, in order.
    pub args: &'a [(String, String)],
    /// `--profile`.
    pub profile: Option<&'a str>,
    /// Mirrors for the frontend.
    pub mirrors: &'a [(String, String)],
    /// The frontend image.
    pub frontend: &'a str,
    /// Pass `STRATA_SKIP_TESTS=1`: the frontend does not run the components' tests.
    pub skip_tests: bool,
    /// The git branch checked out, passed as `STRATA_GIT_BRANCH`.
    pub git_branch: Option<&'a str>,
    /// With `--platform`: each component's platforms.
    pub platforms: Option<&'a BTreeMap<String, Vec<String>>>,
}

/// The build args every component's frontend run gets: the stack's
/// `--arg` values and Strata's own (`STRATA_*`); `strata build` passes the
/// same to its in-process frontend.
pub fn build_args(p: &BakePlan) -> BTreeMap<String, String> {
    let mut args: BTreeMap<String, String> = p.args.iter().cloned().collect();
    if !p.mirrors.is_empty() {
        let m: Vec<String> = p.mirrors.iter().map(|(k, v)| format!("{k}={v}")).collect();
        args.insert("STRATA_MIRRORS".into(), m.join(","));
    }
    if let Some(profile) = p.profile {
        args.insert("STRATA_PROFILE".into(), profile.to_owned());
    }
    if p.skip_tests {
        args.insert("STRATA_SKIP_TESTS".into(), "1".into());
    }
    // The command printed the stack's warnings once; each target's
    // frontend would send them all again.
    args.insert("STRATA_WARNINGS".into(), "none".into());
    if let Some(b) = p.git_branch {
        args.insert("STRATA_GIT_BRANCH".into(), b.to_owned());
    }
    args
}

/// The bake definition (JSON): one target per component, a `default`
/// group with all of them, every image loaded into the engine.
pub fn bake_definition(p: &BakePlan) -> Result<serde_json::Value> {
    let file = std::path::absolute(p.file)
        .with_context(|| format!("cannot resolve the path {}", p.file.display()))?;
    let context = file.parent().unwrap_or(Path::new("/"));
    let dockerfile = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "strata.toml".into());
    let mut args = build_args(p);
    args.insert("BUILDKIT_SYNTAX".into(), p.frontend.to_owned());
    let mut targets = serde_json::Map::new();
    for t in p.targets {
        let tags = &t.names;
        let mut target = json!({
            "context": context.to_string_lossy(),
            "dockerfile": dockerfile,
            "target": t.component,
            "args": args,
            "tags": tags,
            "output": ["type=docker"],
        });
        if let Some(list) = p.platforms.and_then(|m| m.get(&t.component)) {
            // The classic image store holds one platform: the user chooses
            // the output (`--push`, `--set '*.output=...'`).
            target["platforms"] = json!(list);
            if let Some(o) = target.as_object_mut() {
                o.remove("output");
            }
        }
        targets.insert(t.name.clone(), target);
    }
    let names: Vec<&str> = p.targets.iter().map(|t| t.name.as_str()).collect();
    Ok(escape_definition(json!({
        "group": { "default": { "targets": names } },
        "target": targets,
    })))
}

/// A string as a literal of bake's HCL templates, which bake evaluates in
/// every string (and object key) of a JSON definition: `${` becomes
/// `$${` and `%{` becomes `%%{`; everything else is read as written.
fn escape_template(s: &str) -> String {
    s.replace("${", "$${").replace("%{", "%%{")
}

/// Every string and object key of a bake definition escaped, so bake
/// passes the user's values on byte for byte. Target names are left as
/// they are by this (bake allows only `[a-zA-Z0-9_-]` in them).
fn escape_definition(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(escape_template(&s)),
        Value::Array(a) => Value::Array(a.into_iter().map(escape_definition).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (escape_template(&k), escape_definition(v)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Component, Stack};

    const STACK: &str = "[stack]\nname = \"t\"\nimage = \"t/{component}:1\"\n\n[component.base]\nfrom = \"debian:bookworm\"\nrun = [\"true\"]\n\n[component.node-gui]\nfrom = \"base\"\n";

    fn stack() -> Stack {
        crate::load("strata.toml", STACK.as_bytes(), &Default::default()).expect("valid")
    }

    #[test]
    fn template_sequences_are_escaped_for_bake() {
        let cases = [
            ("release-${HOME}", "release-$${HOME}"),
            ("$${x}", "$$${x}"),
            ("%{ if true }x%{ endif }", "%%{ if true }x%%{ endif }"),
            ("%%{", "%%%{"),
            ("${upper(\"x\")}", "$${upper(\"x\")}"),
            ("$ $$ % %% {} x$", "$ $$ % %% {} x$"),
        ];
        for (value, escaped) in cases {
            assert_eq!(escape_template(value), escaped, "{value}");
        }
    }

    #[test]
    fn every_string_of_the_definition_is_escaped() {
        let s = stack();
        let comps: Vec<&Component> = s.components.iter().collect();
        let targets = target_names(&comps);
        let args = vec![
            ("branch".to_owned(), "a-${HOME}-%{x}".to_owned()),
            ("k${y}".to_owned(), "v".to_owned()),
        ];
        let mirrors = vec![("a".to_owned(), "b${c}".to_owned())];
        let def = bake_definition(&BakePlan {
            file: Path::new("/src/${dir}/strata.toml"),
            targets: &targets,
            args: &args,
            profile: Some("p%{x}"),
            mirrors: &mirrors,
            frontend: "fe:${t}",
            skip_tests: true,
            git_branch: Some("main"),
            platforms: None,
        })
        .expect("definition");
        let base = &def["target"]["base"];
        assert_eq!(base["context"], "/src/$${dir}");
        assert_eq!(base["args"]["branch"], "a-$${HOME}-%%{x}");
        assert_eq!(base["args"]["k$${y}"], "v");
        assert_eq!(base["args"]["STRATA_GIT_BRANCH"], "main");
        assert_eq!(base["args"]["STRATA_MIRRORS"], "a=b$${c}");
        assert_eq!(base["args"]["STRATA_PROFILE"], "p%%{x}");
        assert_eq!(base["args"]["BUILDKIT_SYNTAX"], "fe:$${t}");
        assert_eq!(base["args"]["STRATA_SKIP_TESTS"], "1");
        assert_eq!(base["args"]["STRATA_WARNINGS"], "none");
        assert_eq!(def["group"]["default"]["targets"][0], "base");
        assert_eq!(base["output"][0], "type=docker");
    }

    #[test]
    fn each_target_gets_the_platforms_of_its_component() {
        let s = stack();
        let comps: Vec<&Component> = s.components.iter().collect();
        let targets = target_names(&comps);
        let platforms = BTreeMap::from([
            (
                "base".to_owned(),
                vec!["linux/amd64".to_owned(), "linux/arm64".to_owned()],
            ),
            ("node-gui".to_owned(), vec!["linux/amd64".to_owned()]),
        ]);
        let def = bake_definition(&BakePlan {
            file: Path::new("/src/strata.toml"),
            targets: &targets,
            args: &[],
            profile: None,
            mirrors: &[],
            frontend: "fe",
            skip_tests: false,
            git_branch: None,
            platforms: Some(&platforms),
        })
        .expect("definition");
        let t = &def["target"];
        assert_eq!(
            t["base"]["platforms"],
            json!(["linux/amd64", "linux/arm64"])
        );
        assert_eq!(t["node-gui"]["platforms"], json!(["linux/amd64"]));
        // One platform per tag in the classic store: the user picks the output.
        assert!(t["base"].get("output").is_none(), "{def}");
    }
}
