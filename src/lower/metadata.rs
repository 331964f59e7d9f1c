//! The end of a component: runtime config (user, ports, entrypoint, ...),
//! labels and env from version control and SOURCE_DATE_EPOCH. All of it is
//! image config, not layers, so it never invalidates the build cache.

use super::{Builder, Lowerer};
use crate::graph::{Component, MetadataField, RunAs};
use crate::image::rfc3339;
use crate::spec::Diagnostic;

const OCI: &str = "org.opencontainers.image";

/// The value of a metadata field, if known.
fn field(l: &Lowerer, c: &Component, f: MetadataField) -> Option<String> {
    let m = &l.ctx.metadata;
    match f {
        MetadataField::Revision => m.revision.clone(),
        MetadataField::Branch => m.branch.clone(),
        MetadataField::Source => m.source.clone(),
        MetadataField::Created => m.source_date_epoch.map(rfc3339),
        MetadataField::Version => c.image.tag.clone(),
    }
}

/// The `[metadata].env` entries `m` cannot fill, as located warnings.
pub(crate) fn unknown(stack: &crate::graph::Stack, m: &super::BuildMetadata) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (i, (name, f)) in stack.metadata.env.iter().enumerate() {
        let (known, what, help) = match f {
            MetadataField::Branch => (
                m.branch.is_some(),
                "git branch",
                "`strata build` reads it from the git checkout (a detached HEAD has none); through buildx, pass `--build-arg STRATA_GIT_BRANCH=$(git branch --show-current)`",
            ),
            MetadataField::Revision => (
                m.revision.is_some(),
                "git revision",
                "build from a git checkout: buildx sends the commit (`vcs:revision`) unless BUILDX_GIT_INFO=0",
            ),
            MetadataField::Source => (
                m.source.is_some(),
                "git source URL",
                "build from a git checkout with a remote: buildx sends its URL (`vcs:source`) unless BUILDX_GIT_INFO=0",
            ),
            MetadataField::Created => (
                m.source_date_epoch.is_some(),
                "creation time",
                "set SOURCE_DATE_EPOCH, e.g. `--build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)`",
            ),
            MetadataField::Version => continue,
        };
        if known {
            continue;
        }
        let span = stack.metadata.env_spans.get(i).cloned().unwrap_or(0..0);
        out.push(
            Diagnostic::warning(
                METADATA_UNKNOWN,
                span,
                format!("`{name}` takes the {what}, which this build does not know: the image gets no `{name}`"),
            )
            .with_help(help),
        );
    }
    out
}

/// The warning code of a `[metadata]` value a build does not know.
pub const METADATA_UNKNOWN: &str = "metadata-unknown";

/// Applies the component's declared config and the metadata.
pub(crate) fn finish(l: &Lowerer, c: &Component, mut b: Builder) -> Builder {
    let decl = &c.config;
    let cfg = &mut b.built.config;
    match (&l.stack.user, c.run_as) {
        (Some(p), RunAs::Policy) => cfg.user = Some(format!("{}:{}", p.uid, p.gid)),
        (Some(_), RunAs::Root) => cfg.user = Some("0:0".into()),
        (None, _) => {}
    }
    for p in &decl.expose {
        if !cfg.expose.contains(p) {
            cfg.expose.push(p.clone());
        }
    }
    for v in &decl.volumes {
        if !cfg.volumes.contains(v) {
            cfg.volumes.push(v.clone());
        }
    }
    if let Some(ep) = &decl.entrypoint {
        cfg.set_entrypoint(ep.clone());
    }
    if let Some(cmd) = &decl.cmd {
        cfg.cmd = Some(cmd.clone());
    }
    if let Some(h) = &decl.healthcheck {
        cfg.healthcheck = Some(h.clone());
    }
    if let Some(s) = &decl.stop_signal {
        cfg.stop_signal = Some(s.clone());
    }
    let meta = &l.stack.metadata;
    if meta.oci_labels {
        cfg.labels.insert(format!("{OCI}.title"), c.name.clone());
        // A description inherited from the base would describe the base.
        match &c.description {
            Some(d) => cfg.labels.insert(format!("{OCI}.description"), d.clone()),
            None => cfg.labels.remove(&format!("{OCI}.description")),
        };
        for (key, f) in [
            ("version", MetadataField::Version),
            ("revision", MetadataField::Revision),
            ("source", MetadataField::Source),
            ("created", MetadataField::Created),
        ] {
            match field(l, c, f) {
                Some(v) => cfg.labels.insert(format!("{OCI}.{key}"), v),
                // A value inherited from the base would describe the base.
                None => cfg.labels.remove(&format!("{OCI}.{key}")),
            };
        }
    }
    cfg.labels.extend(meta.labels.clone());
    cfg.labels.extend(decl.labels.clone());
    for (name, f) in &meta.env {
        if let Some(v) = field(l, c, *f) {
            cfg.set_env(name, &v);
        }
    }
    cfg.labels.extend(l.ctx.labels.clone());
    b
}
