//! The build context checked before a build: every path a component reads
//! from it (copy sources, requirement and environment files, offline
//! repositories, context directories, ignore files) exists, has the right
//! kind and is not excluded by the ignore file. Errors point at the key
//! that names the path, with a did-you-mean from the real directory.
//!
//! The context is read through [`ContextReader`]: the filesystem for the
//! CLI ([`FsContext`]), BuildKit's gateway file API for the frontend. Only
//! the named paths are read (and, for a path that is missing, its
//! directory's listing): the tree is never walked.
//!
//! `keys`: the diagnostic for each kind of problem, with the did-you-mean
//! from the directory; `patterns`: ignore-file and file-sync patterns as
//! Docker and BuildKit read them; `fs`: the context as a local directory.

mod fs;
mod keys;
mod patterns;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use crate::graph::{Component, ContextInput, InputKind};
use crate::lower::{clean_path, context_prefix};
use crate::spec::diag::Diagnostic;

pub use fs::FsContext;
use keys::{empty_repository, excluded, missing, wrong_kind, NearMisses};
use patterns::has_glob;
pub use patterns::{excluded_by, glob_match, Pattern, PatternMatcher};

/// What is at a path of the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file (or a link to one).
    File,
    /// A directory.
    Dir,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its name in the directory.
    pub name: String,
    /// What it is.
    pub kind: Kind,
}

/// Read access to a build context. Paths are relative to its root, `/`
/// separated, cleaned, without a leading `/` (`""` is the root).
#[allow(async_fn_in_trait)]
pub trait ContextReader {
    /// What is at each of `paths` (`None`: nothing), in order.
    async fn stat(&mut self, paths: &[String]) -> Result<Vec<Option<Kind>>, String>;
    /// The entries of directory `dir` whose names match one of `patterns`
    /// (`*` wildcards), or `None` if `dir` is not a directory.
    async fn list(&mut self, dir: &str, patterns: &[&str]) -> Result<Option<Vec<Entry>>, String>;
    /// The text of the files at `paths` that exist (ignore files).
    async fn read(&mut self, paths: &[String]) -> Result<BTreeMap<String, String>, String>;
}

/// Index file names an offline apt repository has (one is enough).
pub const APT_INDEXES: &[&str] = &["Packages", "Packages.gz", "Packages.xz"];

/// Archive names pip's `--find-links` installs from.
pub const WHEEL_PATTERNS: &[&str] = &["*.whl", "*.tar.gz", "*.zip"];

/// One path to check, as the context sees it.
struct Need<'s> {
    component: &'s Component,
    input: &'s ContextInput,
    /// Relative to the context root, cleaned.
    path: String,
}

/// Checks every input of `components` against the context; an empty
/// result means all of them are there. `Err` is a failure to read the
/// context (not a problem of the stack).
pub async fn check<'s, R: ContextReader>(
    components: impl IntoIterator<Item = &'s Component>,
    reader: &mut R,
) -> Result<Vec<Diagnostic>, String> {
    let needs = needs(components);
    let mut out = Vec::new();
    if needs.is_empty() {
        return Ok(out);
    }
    // Ignore files: a path they exclude never reaches the build.
    let ignore_paths: BTreeSet<String> = needs
        .iter()
        .map(|n| crate::lower::ignore_path(n.component))
        .collect();
    let ignore_paths: Vec<String> = ignore_paths.into_iter().collect();
    let ignores = reader.read(&ignore_paths).await?;

    let paths: Vec<String> = needs
        .iter()
        .map(|n| n.path.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let kinds: BTreeMap<String, Option<Kind>> = paths
        .iter()
        .cloned()
        .zip(reader.stat(&paths).await?)
        .collect();

    let mut near = NearMisses::default();
    for n in &needs {
        let found = kinds.get(&n.path).copied().flatten();
        let d = match found {
            None => {
                let miss = near.find(reader, &n.path).await?;
                Some(missing(n, miss))
            }
            Some(found) => match wrong_kind(n, found) {
                Some(d) => Some(d),
                None => empty_repository(reader, n).await?,
            },
        };
        out.extend(d);
    }
    // An excluded path that exists is still an error: the build would not see it.
    for n in &needs {
        if out.iter().any(|d| d.span == n.input.span) {
            continue;
        }
        out.extend(excluded(n, &ignores));
    }
    out.sort_by_key(|d| (d.span.start, d.span.end));
    out.dedup();
    Ok(out)
}

/// The context paths `components` read, relative to the context root;
/// whole-context copies and copy patterns are left out (what
/// `ContextDir` checks covers them).
fn needs<'s>(components: impl IntoIterator<Item = &'s Component>) -> Vec<Need<'s>> {
    let mut needs = Vec::new();
    for c in components {
        let prefix = context_prefix(c);
        for input in &c.inputs {
            let rooted = matches!(input.kind, InputKind::ContextDir | InputKind::IgnoreFile);
            let path = if rooted {
                input.path.clone()
            } else {
                format!("{prefix}{}", input.path)
            };
            let path = match clean_path(&path).as_str() {
                "." => String::new(),
                p => p.to_owned(),
            };
            // A copy of the whole context directory reads what `ContextDir` checks.
            let whole = clean_path(&input.path) == ".";
            if input.kind == InputKind::CopySource && (whole || path.is_empty() || has_glob(&path))
            {
                continue;
            }
            needs.push(Need {
                component: c,
                input,
                path,
            });
        }
    }
    needs
}
