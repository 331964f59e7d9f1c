//! `--push` from a Docker Engine, and the lock file of what was pushed.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::cli::engine::Engine;
use crate::graph::{Component, Stack};

/// Pushes every name of every published component (all built) from the
/// engine that holds them.
pub(super) fn push_all(engine: &Engine, components: &[&Component]) -> Result<Vec<Pushed>> {
    let mut out = std::io::stdout().lock();
    let mut pushed: Vec<Pushed> = Vec::new();
    for c in components.iter().filter(|c| c.publish) {
        for image in c.names() {
            let repo = repository(image);
            let tag = image.tag.clone().unwrap_or_else(|| "latest".into());
            let name = image.familiar();
            eprintln!("strata: pushing {name}");
            let report = match engine.push(&repo, &tag) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!(
                        "strata: error: pushing {name} of component `{}` failed; already pushed: {}",
                        c.name,
                        already_pushed(&pushed)
                    );
                    return Err(e);
                }
            };
            let digest = match report.digest {
                Some(d) => d,
                None => engine.registry_digest(&name)?,
            };
            eprintln!(
                "strata: pushed {name}: {} layers uploaded, {} already there",
                report.pushed, report.existing
            );
            writeln!(out, "{name}@{digest}")?;
            pushed.push(Pushed {
                name,
                component: c.name.clone(),
                digest,
            });
        }
    }
    Ok(pushed)
}

/// Writes the lock file of a push and its summary.
pub(super) fn record_push(
    stack: &Stack,
    components: &[&Component],
    pushed: &[Pushed],
    lock_file: Option<&Path>,
    started: Instant,
) -> Result<ExitCode> {
    if let Some(path) = lock_file {
        std::fs::write(path, pushed_lock(stack, pushed))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("strata: wrote {}", path.display());
    }
    eprintln!(
        "strata: pushed {} names of {} images in {:.1}s in all",
        pushed.len(),
        components.iter().filter(|c| c.publish).count(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// One name pushed.
pub(super) struct Pushed {
    /// The name as pushed (`registry/repo:tag`).
    pub(super) name: String,
    /// The component whose image it names.
    pub(super) component: String,
    /// The manifest digest the registry gave it.
    pub(super) digest: String,
}

/// `repo` as `docker push` takes it: the familiar name without tag.
fn repository(image: &crate::graph::ImageRef) -> String {
    if image.registry == "docker.io" {
        image
            .repository
            .strip_prefix("library/")
            .unwrap_or(&image.repository)
            .to_owned()
    } else {
        image.name()
    }
}

/// The `--lock-file` of a push: component -> its primary name and digest
/// (`image`, `digest`, `ref`); an image with extra tags also lists every
/// name it was pushed as, each with its digest (`[[images.<c>.tags]]`).
pub(super) fn pushed_lock(stack: &Stack, pushed: &[Pushed]) -> String {
    let entry = |p: &Pushed| {
        let mut t = toml::Table::new();
        t.insert("image".into(), p.name.clone().into());
        t.insert("digest".into(), p.digest.clone().into());
        let repo = p
            .name
            .rsplit_once(':')
            .filter(|(_, tag)| !tag.contains('/'))
            .map_or(p.name.as_str(), |(r, _)| r);
        t.insert("ref".into(), format!("{repo}@{}", p.digest).into());
        t
    };
    let mut images = toml::Table::new();
    for p in pushed {
        let all: Vec<&Pushed> = pushed
            .iter()
            .filter(|q| q.component == p.component)
            .collect();
        if images.contains_key(&p.component) {
            continue;
        }
        let mut t = entry(p);
        if all.len() > 1 {
            let tags: Vec<toml::Value> = all.iter().map(|q| entry(q).into()).collect();
            t.insert("tags".into(), tags.into());
        }
        images.insert(p.component.clone(), t.into());
    }
    let mut doc = toml::Table::new();
    doc.insert("stack".into(), stack.name.clone().into());
    doc.insert("images".into(), images.into());
    format!(
        "# Written by `strata build --push`: every pushed image of the stack and its digest.\n{}",
        toml::to_string(&doc).unwrap_or_default()
    )
}

/// The names pushed so far, for an error that stops a push half-way.
pub(super) fn already_pushed(pushed: &[Pushed]) -> String {
    if pushed.is_empty() {
        return "none".to_owned();
    }
    let names: Vec<&str> = pushed.iter().map(|p| p.name.as_str()).collect();
    names.join(", ")
}
