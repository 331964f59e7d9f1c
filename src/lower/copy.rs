//! `copy` steps: from the context (only the named paths are sent, the
//! ignore file applies), from another component, or from an image; owned
//! by root unless `owner` says otherwise, set by the copy itself, not a
//! later chown layer.

use strata_llb::{CopyOptions, FileActions, Git, Http, SourceLocation, State};

use super::{Builder, Lowerer};
use crate::graph::{Component, Copy, CopySource};

/// The source state of a copy with `url` (one file, named as the copy's
/// only `src`, checked against the checksum by BuildKit) or `git` (the
/// checkout, without `.git`).
pub fn remote_source(c: &Component, cp: &Copy, loc: SourceLocation) -> State {
    match &cp.source {
        CopySource::Http { url, checksum } => {
            let name = cp.srcs.first().map_or("download", String::as_str);
            Http::new(url)
                .checksum(checksum)
                .filename(name)
                .custom_name(format!("[{}] download {url}", c.name))
                .location(loc)
                .into_state()
        }
        CopySource::Git { remote, at } => Git::new(remote, at.name())
            .custom_name(format!(
                "[{}] git {remote} {} {}",
                c.name,
                at.kind(),
                at.name()
            ))
            .location(loc)
            .into_state(),
        _ => State::scratch(),
    }
}

/// Lowers a copy step; `from` is the source state unless copying from the context.
pub fn lower(
    l: &Lowerer,
    b: &Builder,
    c: &Component,
    cp: &Copy,
    from: Option<State>,
    loc: SourceLocation,
) -> State {
    let prefix = match super::context_prefix(c).trim_end_matches('/') {
        "" => String::new(),
        dir => format!("/{dir}"),
    };
    let (source, base) = match from {
        Some(s) => (s, String::new()),
        None => (l.copy_context(c, &cp.srcs, &cp.exclude), prefix),
    };
    let dst = if cp.dst.starts_with('/') {
        cp.dst.clone()
    } else {
        format!("{}/{}", b.cwd().trim_end_matches('/'), cp.dst)
    };
    let many = cp.srcs.len() > 1;
    let dst = if many && !dst.ends_with('/') {
        format!("{dst}/")
    } else {
        dst
    };
    let mut actions = FileActions::new();
    for src in &cp.srcs {
        let src_path = match &cp.source {
            CopySource::Context => format!("{base}/{}", src.trim_start_matches("./")),
            CopySource::Http { .. } | CopySource::Git { .. } => {
                match src.trim_start_matches("./").trim_matches('/') {
                    "" | "." => "/".to_owned(),
                    p => format!("/{p}"),
                }
            }
            _ => src.clone(),
        };
        let options = CopyOptions {
            owner: l.copy_chown(cp.owner),
            mode: cp.mode,
            follow_symlinks: true,
            copy_dir_contents: true,
            create_dest_path: true,
            allow_wildcard: true,
            allow_empty_wildcard: false,
            exclude_patterns: cp.exclude.clone(),
            ..CopyOptions::default()
        };
        actions = actions.copy(&source, &src_path, &dst, options);
    }
    let from_text = match &cp.source {
        CopySource::Context => String::new(),
        CopySource::Component(n) => format!("--from={n} "),
        CopySource::Image(r) => format!("--from={r} "),
        CopySource::Http { url, .. } => format!("{url} "),
        CopySource::Git { remote, at } => format!("--from={remote}#{} ", at.name()),
    };
    b.built.state.file(
        actions
            .custom_name(match &cp.source {
                CopySource::Http { .. } => format!("[{}] COPY {from_text}{}", c.name, cp.dst),
                _ => format!(
                    "[{}] COPY {from_text}{} {}",
                    c.name,
                    cp.srcs.join(" "),
                    cp.dst
                ),
            })
            .location(loc),
    )
}
