//! The diagnostic for each problem with an input: missing (with what is
//! nearest in the directory), the wrong kind, an empty offline repository,
//! excluded by the ignore file.

use std::collections::BTreeMap;

use super::patterns::excluded_by;
use super::{ContextReader, Entry, Kind, Need, APT_INDEXES, WHEEL_PATTERNS};
use crate::graph::InputKind;
use crate::lower::context_prefix;
use crate::spec::diag::{Diagnostic, Suggestions};
use crate::spec::ErrorCode;

/// The error for a path that exists but is a directory where the key
/// names a file, or the other way round.
pub(super) fn wrong_kind(n: &Need, found: Kind) -> Option<Diagnostic> {
    let span = n.input.span.clone();
    let shown = crate::spec::values::shown(&n.path);
    let (message, help) = match (found, n.input.kind) {
        (Kind::Dir, InputKind::IgnoreFile | InputKind::Requirements | InputKind::CondaFile) => (
            format!("`{shown}` is a directory, not a file"),
            format!("name the {} inside it", file_word(n.input.kind)),
        ),
        (
            Kind::File,
            InputKind::ContextDir
            | InputKind::AptRepo
            | InputKind::WheelDir
            | InputKind::CondaChannel,
        ) => (
            format!("`{shown}` is a file, not a directory"),
            match n.input.kind {
                InputKind::ContextDir => {
                    "name the directory that holds the component's files".to_owned()
                }
                InputKind::AptRepo => {
                    "name the directory that holds the `.deb` files and their `Packages` index"
                        .to_owned()
                }
                InputKind::CondaChannel => {
                    "name the channel directory (the one with `noarch/` and the platform directories)".to_owned()
                }
                _ => "name the directory that holds the wheels".to_owned(),
            },
        ),
        _ => return None,
    };
    Some(Diagnostic::error(ErrorCode::WrongInputKind, span, message).with_help(help))
}

/// The error for an offline apt repository without an index or a wheel
/// directory without archives.
pub(super) async fn empty_repository<R: ContextReader>(
    reader: &mut R,
    n: &Need<'_>,
) -> Result<Option<Diagnostic>, String> {
    let span = n.input.span.clone();
    let shown = crate::spec::values::shown(&n.path);
    let d = match n.input.kind {
        InputKind::AptRepo => {
            let index = reader.list(&n.path, APT_INDEXES).await?.unwrap_or_default();
            if !index.is_empty() {
                return Ok(None);
            }
            Diagnostic::error(ErrorCode::WrongInputKind, span, format!("`{shown}` has no `Packages` index: apt cannot read it as a repository"))
                .with_help(format!("write the index next to the packages: `cd {shown} && dpkg-scanpackages . > Packages`"))
        }
        InputKind::WheelDir => {
            let wheels = reader
                .list(&n.path, WHEEL_PATTERNS)
                .await?
                .unwrap_or_default();
            if wheels.iter().any(|e| e.kind == Kind::File) {
                return Ok(None);
            }
            Diagnostic::error(
                ErrorCode::WrongInputKind,
                span,
                format!("`{shown}` holds no wheels (`*.whl`) or source archives"),
            )
            .with_help(format!(
                "download them into it: `pip download -d {shown} -r requirements.txt`"
            ))
        }
        _ => return Ok(None),
    };
    Ok(Some(d))
}

/// The error for a path the component's ignore file excludes.
pub(super) fn excluded(n: &Need, ignores: &BTreeMap<String, String>) -> Option<Diagnostic> {
    if matches!(n.input.kind, InputKind::ContextDir | InputKind::IgnoreFile) {
        return None;
    }
    let ignore_file = crate::lower::ignore_path(n.component);
    let text = ignores.get(&ignore_file)?;
    let prefix = context_prefix(n.component);
    let pattern = excluded_by(text, &prefix, &n.path)?;
    let shown = crate::spec::values::shown(&n.path);
    Some(
        Diagnostic::error(
            ErrorCode::IgnoredInput,
            n.input.span.clone(),
            format!("`{shown}` is excluded by `{ignore_file}` (pattern `{pattern}`)"),
        )
        .with_help(format!(
            "the build never sees an excluded path: remove the pattern, or add `!{}` after it",
            n.path.strip_prefix(&prefix).unwrap_or(&n.path)
        )),
    )
}

/// The word for what a file key names.
fn file_word(kind: InputKind) -> &'static str {
    match kind {
        InputKind::Requirements => "requirements file",
        InputKind::CondaFile => "environment file",
        InputKind::IgnoreFile => "ignore file",
        _ => "file",
    }
}

/// The error for a path that is not in the context.
pub(super) fn missing(n: &Need, near: NearMiss) -> Diagnostic {
    let shown = crate::spec::values::shown(&n.path);
    let span = n.input.span.clone();
    let what = match n.input.kind {
        InputKind::ContextDir => "context directory",
        InputKind::IgnoreFile => "ignore file",
        InputKind::CopySource => "copy source",
        InputKind::Requirements => "requirements file",
        InputKind::CondaFile => "environment file",
        InputKind::AptRepo => "apt repository",
        InputKind::WheelDir => "wheel directory",
        InputKind::CondaChannel => "conda channel",
    };
    let message = match &near {
        NearMiss::NoDir(dir) => format!(
            "{what} `{shown}` is not in the build context: there is no directory `{}`",
            crate::spec::values::shown(dir)
        ),
        _ => format!("{what} `{shown}` is not in the build context"),
    };
    let help = match near {
        NearMiss::Suggest(p) => format!("did you mean `{}`?", crate::spec::values::shown(&p)),
        _ => "paths are relative to the component's context directory (the stack file's directory unless `context` says otherwise)".to_owned(),
    };
    Diagnostic::error(ErrorCode::MissingInput, span, message).with_help(help)
}

/// What the nearest existing directory says about a missing path.
pub(super) enum NearMiss {
    /// A sibling one typo away (the whole path with it).
    Suggest(String),
    /// The first directory on the way that does not exist.
    NoDir(String),
    /// Nothing to add.
    Nothing,
}

/// Directory listings read so far, for did-you-mean hints on missing
/// paths, and the edit-distance work left for them.
#[derive(Default)]
pub(super) struct NearMisses {
    listings: BTreeMap<String, Option<Vec<Entry>>>,
    suggestions: Suggestions,
}

impl NearMisses {
    /// Lists the deepest existing directory on the way to `path` and
    /// suggests the nearest name there.
    pub(super) async fn find<R: ContextReader>(
        &mut self,
        reader: &mut R,
        path: &str,
    ) -> Result<NearMiss, String> {
        let parts: Vec<&str> = path.split('/').collect();
        // From the parent up to the root: the first directory that exists.
        for depth in (0..parts.len()).rev() {
            let dir = parts[..depth].join("/");
            if !self.listings.contains_key(&dir) {
                let l = reader.list(&dir, &["*"]).await?;
                self.listings.insert(dir.clone(), l);
            }
            let Some(entries) = self.listings.get(&dir).and_then(Option::as_ref) else {
                continue;
            };
            let missing = parts[depth];
            let names = entries.iter().map(|e| e.name.as_str());
            let near = self.suggestions.closest(missing, names);
            return Ok(match near {
                Some(name) => {
                    let mut fixed: Vec<&str> = parts.clone();
                    fixed[depth] = name;
                    NearMiss::Suggest(fixed.join("/"))
                }
                None if depth + 1 < parts.len() => NearMiss::NoDir(parts[..=depth].join("/")),
                None => NearMiss::Nothing,
            });
        }
        Ok(NearMiss::Nothing)
    }
}
