//! Where a build's images go (the engine, docker archives loaded into the
//! local engine, OCI archives, a BuildKit daemon's push) and what happens
//! to them once every component built.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::push::{already_pushed, Pushed};
use super::report::render_failure;
use super::{solve_all, BuildArgs, Target};
use crate::cli::bake::BakePlan;
use crate::cli::cache::CachePlan;
use crate::cli::engine::Engine;
use crate::cli::progress::Mode;
use crate::client::connect::{Api, Builder};
use crate::client::session::Outputs;
use crate::client::solve::Export;
use crate::graph::Stack;

/// Where the images of a build go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Output {
    /// Into the Docker Engine that builds them (its `moby` exporter).
    Engine,
    /// As docker archives the session receives into this directory, then
    /// loaded into the local Docker Engine (a BuildKit daemon has no
    /// image store of the engine's).
    Load(PathBuf),
    /// As OCI archives, `DIR/<target>.tar`.
    Oci(PathBuf),
    /// Nowhere: the build fills BuildKit's cache (a BuildKit daemon's first
    /// pass before it pushes).
    Cache,
    /// Pushed by BuildKit to the images' registries.
    Push,
}

impl Output {
    /// The output of `strata build` with these arguments on `builder`.
    pub(super) fn of(a: &BuildArgs, builder: &Builder) -> Output {
        match (&a.oci_dir, builder.api, a.push) {
            (Some(dir), _, _) => Output::Oci(dir.clone()),
            (None, Api::Docker, _) => Output::Engine,
            (None, Api::BuildKit, true) => Output::Cache,
            (None, Api::BuildKit, false) => Output::Load(std::env::temp_dir().join(format!(
                "strata-load-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            ))),
        }
    }
}

/// Removes the directory the docker archives of a load were received in
/// when the build ends, however it ends.
pub(super) struct LoadDirGuard(Option<PathBuf>);

impl LoadDirGuard {
    /// The guard of `output`'s directory (none for other outputs).
    pub(super) fn of(output: &Output) -> LoadDirGuard {
        match output {
            Output::Load(dir) => LoadDirGuard(Some(dir.clone())),
            _ => LoadDirGuard(None),
        }
    }
}

impl Drop for LoadDirGuard {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The Docker Engine of a build: the builder itself when it is one; the
/// local engine when a BuildKit daemon's images are loaded into it.
pub(super) fn engine_for(
    builder: &Builder,
    output: &Output,
    progress: Mode,
) -> Result<Option<Engine>> {
    let mut engine = match (output, builder.api) {
        (_, Api::Docker) => Some(Engine::connect_to(builder)?),
        (Output::Load(_), Api::BuildKit) => Some(Engine::connect().context(
            "the images a BuildKit daemon builds are loaded into the local Docker Engine: \
             start one, or use --push or --oci-dir",
        )?),
        _ => None,
    };
    if let Some(engine) = engine.as_mut() {
        engine.set_progress(progress);
    }
    Ok(engine)
}

/// What became of the images once every component built.
pub(super) enum Delivered {
    /// In place (loaded, written, or pushed by BuildKit: what it pushed).
    Done(Option<Vec<Pushed>>),
    /// BuildKit failed to push one (reported on stderr).
    PushFailed,
}

/// Once every component built: a BuildKit daemon's docker archives loaded
/// into the local engine, or its images pushed.
#[allow(clippy::too_many_arguments)]
pub(super) fn deliver(
    output: &Output,
    engine: Option<&Engine>,
    stack: &Stack,
    targets: &[Target],
    builder: &Builder,
    plan: &BakePlan<'_>,
    a: &BuildArgs,
    cache: &CachePlan,
    platforms: &BTreeMap<String, Vec<String>>,
) -> Result<Delivered> {
    match output {
        Output::Load(dir) => {
            load_all(engine, targets, dir)?;
            Ok(Delivered::Done(None))
        }
        Output::Cache => {
            let publishing: Vec<Target> = targets
                .iter()
                .filter(|t| stack.component(&t.component).is_some_and(|c| c.publish))
                .cloned()
                .collect();
            let plan = BakePlan {
                targets: &publishing,
                ..*plan
            };
            Ok(match push_pass(builder, &plan, a, cache, platforms)? {
                Some(pushed) => Delivered::Done(Some(pushed)),
                None => Delivered::PushFailed,
            })
        }
        _ => Ok(Delivered::Done(None)),
    }
}

/// Loads the docker archives a BuildKit daemon sent into the local engine.
pub(super) fn load_all(engine: Option<&Engine>, targets: &[Target], dir: &Path) -> Result<()> {
    let Some(engine) = engine else {
        bail!("no Docker Engine to load the images into");
    };
    for t in targets {
        let path = dir.join(format!("{}.tar", t.name));
        let loaded = engine.load(&path)?;
        eprintln!("strata: loaded {}", loaded.join(", "));
    }
    Ok(())
}

/// With a BuildKit daemon, once every component built: each published
/// image built again (all cached) and pushed by BuildKit, every name in
/// one export. None when a push failed (reported on stderr).
pub(super) fn push_pass(
    builder: &Builder,
    plan: &BakePlan<'_>,
    a: &BuildArgs,
    cache: &CachePlan,
    platforms: &BTreeMap<String, Vec<String>>,
) -> Result<Option<Vec<Pushed>>> {
    eprintln!(
        "strata: every component built; {builder} pushes {} images",
        plan.targets.len()
    );
    let (outcomes, _, _) = solve_all(builder, plan, a, cache, platforms, &Output::Push)?;
    let mut pushed = Vec::new();
    for (t, outcome) in plan.targets.iter().zip(outcomes) {
        let response = match outcome {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{}", render_failure(&e));
                eprintln!(
                    "strata: error: pushing the image of component `{}` failed; already pushed: {}",
                    t.component,
                    already_pushed(&pushed)
                );
                return Ok(None);
            }
        };
        let Some(digest) = response.get("containerimage.digest") else {
            bail!(
                "the builder pushed {} without reporting its digest",
                t.image
            );
        };
        for name in &t.names {
            pushed.push(Pushed {
                name: name.clone(),
                component: t.component.clone(),
                digest: digest.clone(),
            });
        }
    }
    let mut out = std::io::stdout().lock();
    for p in &pushed {
        writeln!(out, "{}@{}", p.name, p.digest)?;
    }
    Ok(Some(pushed))
}

/// Where a component's image goes: BuildKit's exporter and its attributes
/// (archives the session receives are expected in `outputs`).
pub(super) fn export_for(t: &Target, output: &Output, outputs: &Outputs) -> Export {
    // The exporter takes every name of the image, comma-separated.
    let mut attrs = BTreeMap::from([("name".to_owned(), t.names.join(","))]);
    let kind = match output {
        Output::Engine => "moby",
        Output::Oci(dir) => {
            outputs.expect(&t.image, dir.join(format!("{}.tar", t.name)));
            "oci"
        }
        Output::Load(dir) => {
            outputs.expect(&t.image, dir.join(format!("{}.tar", t.name)));
            "docker"
        }
        Output::Push => {
            attrs.insert("push".into(), "true".into());
            "image"
        }
        Output::Cache => return Export::default(),
    };
    Export {
        kind: kind.into(),
        attrs,
    }
}
