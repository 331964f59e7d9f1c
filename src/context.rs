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

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::graph::{Component, ContextInput, InputKind};
use crate::lower::{clean_path, context_prefix, parse_ignore};
use crate::spec::diag::{Diagnostic, Suggestions};
use crate::spec::ErrorCode;

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

/// The error for a path that exists but is a directory where the key
/// names a file, or the other way round.
fn wrong_kind(n: &Need, found: Kind) -> Option<Diagnostic> {
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
async fn empty_repository<R: ContextReader>(
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
fn excluded(n: &Need, ignores: &BTreeMap<String, String>) -> Option<Diagnostic> {
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
fn missing(n: &Need, near: NearMiss) -> Diagnostic {
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
enum NearMiss {
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
struct NearMisses {
    listings: BTreeMap<String, Option<Vec<Entry>>>,
    suggestions: Suggestions,
}

impl NearMisses {
    /// Lists the deepest existing directory on the way to `path` and
    /// suggests the nearest name there.
    async fn find<R: ContextReader>(
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

/// Whether `path` has wildcards (copied as a pattern, not checked).
fn has_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// The ignore file's pattern that excludes `path` (relative to the
/// context root), read as Docker reads it: patterns are relative to the
/// component's context directory (`prefix`), later ones win, `!` re-includes,
/// and a pattern that matches a parent directory excludes what is in it.
pub fn excluded_by(text: &str, prefix: &str, path: &str) -> Option<String> {
    let rel = path.strip_prefix(prefix).unwrap_or(path);
    let mut verdict = None;
    for p in parse_ignore(text) {
        let (negated, pattern) = match p.strip_prefix('!') {
            Some(rest) => (true, rest.to_owned()),
            None => (false, p.clone()),
        };
        if pattern.is_empty() || pattern == "." {
            continue;
        }
        let mut hit = glob_match(&pattern, rel);
        let mut parent = rel;
        while !hit {
            match parent.rfind('/') {
                Some(i) => {
                    parent = &parent[..i];
                    hit = glob_match(&pattern, parent);
                }
                None => break,
            }
        }
        if hit {
            verdict = if negated { None } else { Some(pattern) };
        }
    }
    verdict
}

/// Docker's ignore-pattern match (moby/patternmatcher): `*` and `?` stay
/// within a path part, `**` crosses parts, `[...]` is a class, `\` escapes.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = path.chars().collect();
    // Bounded work: patterns and paths are short; the memo keeps `**` linear.
    let mut memo = vec![None; (p.len() + 1) * (s.len() + 1)];
    glob_at(&p, &s, 0, 0, &mut memo)
}

fn glob_at(p: &[char], s: &[char], i: usize, j: usize, memo: &mut Vec<Option<bool>>) -> bool {
    let key = i * (s.len() + 1) + j;
    if let Some(v) = memo[key] {
        return v;
    }
    let v = if i == p.len() {
        j == s.len()
    } else if p[i] == '*' && p.get(i + 1) == Some(&'*') {
        let mut k = i;
        while k < p.len() && p[k] == '*' {
            k += 1;
        }
        if p.get(k) == Some(&'/') {
            // `**/`: zero or more whole directories.
            glob_at(p, s, k + 1, j, memo)
                || (j..s.len()).any(|m| s[m] == '/' && glob_at(p, s, k + 1, m + 1, memo))
        } else {
            (j..=s.len()).any(|m| glob_at(p, s, k, m, memo))
        }
    } else if p[i] == '*' {
        let mut m = j;
        loop {
            if glob_at(p, s, i + 1, m, memo) {
                break true;
            }
            if m == s.len() || s[m] == '/' {
                break false;
            }
            m += 1;
        }
    } else if j == s.len() {
        false
    } else if p[i] == '?' {
        s[j] != '/' && glob_at(p, s, i + 1, j + 1, memo)
    } else if p[i] == '[' {
        match class(p, i, s[j]) {
            Some((true, next)) => s[j] != '/' && glob_at(p, s, next, j + 1, memo),
            Some((false, _)) => false,
            None => s[j] == '[' && glob_at(p, s, i + 1, j + 1, memo),
        }
    } else if p[i] == '\\' && i + 1 < p.len() {
        p[i + 1] == s[j] && glob_at(p, s, i + 2, j + 1, memo)
    } else {
        p[i] == s[j] && glob_at(p, s, i + 1, j + 1, memo)
    };
    memo[key] = Some(v);
    v
}

/// Whether `c` is in the class that starts at `p[i]` (`[`), and where the
/// pattern goes on; `None` for an unclosed class (a literal `[`).
fn class(p: &[char], i: usize, c: char) -> Option<(bool, usize)> {
    let mut k = i + 1;
    let negated = matches!(p.get(k), Some('^' | '!'));
    if negated {
        k += 1;
    }
    let mut hit = false;
    let mut first = true;
    while k < p.len() {
        if p[k] == ']' && !first {
            return Some((hit != negated, k + 1));
        }
        first = false;
        let lo = if p[k] == '\\' && k + 1 < p.len() {
            k += 1;
            p[k]
        } else {
            p[k]
        };
        if p.get(k + 1) == Some(&'-') && p.get(k + 2).is_some_and(|e| *e != ']') {
            let hi = p[k + 2];
            hit |= lo <= c && c <= hi;
            k += 3;
        } else {
            hit |= lo == c;
            k += 1;
        }
    }
    None
}

/// A list of patterns read as moby/patternmatcher reads them, which is how
/// BuildKit's file sync filters a local directory (`include-patterns`,
/// `exclude-patterns`): each pattern is trimmed and cleaned, `!` makes an
/// exception, later patterns win, and a pattern that matches a parent
/// directory matches what is in it. Matching differs from [`glob_match`] where
/// patternmatcher differs from a glob: a `**` that ends the pattern matches
/// anything after it, a `**` inside a part only matches across whole
/// directories, and a pattern that starts with `**` and has no other
/// wildcard matches any path ending with the rest.
#[derive(Debug, Clone)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

/// One pattern of a [`PatternMatcher`].
#[derive(Debug, Clone)]
pub struct Pattern {
    cleaned: String,
    exclusion: bool,
    kind: PatternKind,
}

#[derive(Debug, Clone)]
enum PatternKind {
    Exact,
    Prefix(String),
    Suffix(String),
    Tokens(Vec<Token>),
}

/// What patternmatcher turns each piece of a pattern into (a regexp there).
#[derive(Debug, Clone)]
enum Token {
    Char(char),
    /// `*`: any run of characters other than `/`.
    Star,
    /// `?`: one character other than `/`.
    One,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class(bool, Vec<(char, char)>),
    /// `**` inside the pattern: nothing, or anything that ends with `/`.
    Dirs,
    /// `**` that ends the pattern: anything.
    Rest,
}

impl PatternMatcher {
    /// Reads `patterns`; a pattern that is `!` alone or has a malformed
    /// `[...]` class or a trailing `\` is an error naming it.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, String> {
        let mut out = Vec::new();
        let mut exclusions = false;
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let mut cleaned = clean_path(p);
            let exclusion = cleaned.starts_with('!');
            if exclusion {
                if cleaned.len() == 1 {
                    return Err("illegal exclusion pattern: \"!\"".to_owned());
                }
                cleaned.remove(0);
                exclusions = true;
            }
            let kind = compile(&cleaned).ok_or_else(|| format!("syntax error in pattern {p:?}"))?;
            out.push(Pattern {
                cleaned,
                exclusion,
                kind,
            });
        }
        Ok(Self {
            patterns: out,
            exclusions,
        })
    }

    /// The patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether any pattern is a `!` exception.
    pub fn exclusions(&self) -> bool {
        self.exclusions
    }

    /// Whether `file` (a `/`-separated relative path) matches, given which
    /// patterns its parent directory matched (`parent`, from this call on
    /// the parent; empty when unknown, then the parents are checked here).
    /// Returns the verdict and the per-pattern results for `file`'s children.
    pub fn matches_using_parent_results(&self, file: &str, parent: &[bool]) -> (bool, Vec<bool>) {
        let known = parent.len() == self.patterns.len() && !parent.is_empty();
        let mut matched = false;
        let mut info = vec![false; self.patterns.len()];
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = known && parent[i];
            if !hit {
                if pattern.exclusion != matched {
                    continue;
                }
                hit = pattern.matches(file);
                if !hit && !known {
                    if let Some(dir) = file.rfind('/').map(|i| &file[..i]) {
                        hit = dir
                            .match_indices('/')
                            .map(|(k, _)| &dir[..k])
                            .chain([dir])
                            .any(|d| pattern.matches(d));
                    }
                }
            }
            info[i] = hit;
            if hit {
                matched = !pattern.exclusion;
            }
        }
        (matched, info)
    }
}

impl Pattern {
    /// The cleaned pattern, without its `!`.
    pub fn text(&self) -> &str {
        &self.cleaned
    }

    /// Whether this is a `!` exception.
    pub fn exclusion(&self) -> bool {
        self.exclusion
    }

    /// Whether `path` itself matches (parents are not considered).
    pub fn matches(&self, path: &str) -> bool {
        match &self.kind {
            PatternKind::Exact => path == self.cleaned,
            PatternKind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            PatternKind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            PatternKind::Tokens(tokens) => {
                let s: Vec<char> = path.chars().collect();
                let mut memo = vec![None; (tokens.len() + 1) * (s.len() + 1)];
                tokens_at(tokens, &s, 0, 0, &mut memo)
            }
        }
    }
}

/// patternmatcher's `compile`, and `filepath.Match`'s syntax check; `None`
/// for a malformed pattern.
fn compile(pattern: &str) -> Option<PatternKind> {
    #[derive(PartialEq)]
    enum Detected {
        Exact,
        Prefix,
        Suffix,
        Tokens,
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut detected = Detected::Exact;
    let mut k = 0;
    let mut first = true;
    while k < chars.len() {
        let c = chars[k];
        k += 1;
        match c {
            '*' if chars.get(k) == Some(&'*') => {
                k += 1;
                if chars.get(k) == Some(&'/') {
                    k += 1;
                }
                if k == chars.len() {
                    if detected == Detected::Exact {
                        detected = Detected::Prefix;
                    } else {
                        tokens.push(Token::Rest);
                        detected = Detected::Tokens;
                    }
                } else {
                    tokens.push(Token::Dirs);
                    detected = Detected::Tokens;
                }
                if first {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                tokens.push(Token::Star);
                detected = Detected::Tokens;
            }
            '?' => {
                tokens.push(Token::One);
                detected = Detected::Tokens;
            }
            '\\' => {
                let escaped = *chars.get(k)?;
                k += 1;
                tokens.push(Token::Char(escaped));
                detected = Detected::Tokens;
            }
            '[' => {
                let (class, next) = parse_class(&chars, k)?;
                tokens.push(class);
                k = next;
                detected = Detected::Tokens;
            }
            c => tokens.push(Token::Char(c)),
        }
        first = false;
    }
    Some(match detected {
        Detected::Exact => PatternKind::Exact,
        // Both cut the (ASCII) `**` that made them.
        Detected::Prefix => PatternKind::Prefix(pattern.get(..pattern.len() - 2)?.to_owned()),
        Detected::Suffix => PatternKind::Suffix(pattern.get(2..)?.to_owned()),
        Detected::Tokens => PatternKind::Tokens(tokens),
    })
}

/// The class whose body starts at `chars[k]` (after `[`), with
/// `filepath.Match`'s syntax: `^` negates, `\` escapes, `a-z` is a range,
/// and a class is never empty. Returns the class and where the pattern goes on.
fn parse_class(chars: &[char], mut k: usize) -> Option<(Token, usize)> {
    let negated = chars.get(k) == Some(&'^');
    if negated {
        k += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if chars.get(k) == Some(&']') && !ranges.is_empty() {
            return Some((Token::Class(negated, ranges), k + 1));
        }
        let (lo, next) = class_char(chars, k)?;
        k = next;
        let mut hi = lo;
        if chars.get(k) == Some(&'-') {
            let (h, next) = class_char(chars, k + 1)?;
            hi = h;
            k = next;
        }
        ranges.push((lo, hi));
    }
}

fn class_char(chars: &[char], k: usize) -> Option<(char, usize)> {
    match chars.get(k)? {
        '-' | ']' => None,
        '\\' => chars.get(k + 1).map(|c| (*c, k + 2)),
        c => Some((*c, k + 1)),
    }
}

fn tokens_at(t: &[Token], s: &[char], i: usize, j: usize, memo: &mut [Option<bool>]) -> bool {
    let key = i * (s.len() + 1) + j;
    if let Some(v) = memo[key] {
        return v;
    }
    let v = match t.get(i) {
        None => j == s.len(),
        // Both come from a regexp `.*`, whose `.` stops at a newline.
        Some(Token::Rest) => !s[j..].contains(&'\n') && tokens_at(t, s, i + 1, s.len(), memo),
        Some(Token::Dirs) => {
            tokens_at(t, s, i + 1, j, memo)
                || (j..s.len())
                    .take_while(|m| s[*m] != '\n')
                    .any(|m| s[m] == '/' && tokens_at(t, s, i + 1, m + 1, memo))
        }
        Some(Token::Star) => (j..=s.len())
            .take_while(|m| *m == j || s[*m - 1] != '/')
            .any(|m| tokens_at(t, s, i + 1, m, memo)),
        Some(_) if j == s.len() => false,
        Some(Token::Char(c)) => s[j] == *c && tokens_at(t, s, i + 1, j + 1, memo),
        Some(Token::One) => s[j] != '/' && tokens_at(t, s, i + 1, j + 1, memo),
        Some(Token::Class(negated, ranges)) => {
            let inside = ranges.iter().any(|(lo, hi)| *lo <= s[j] && s[j] <= *hi);
            inside != *negated && tokens_at(t, s, i + 1, j + 1, memo)
        }
    };
    memo[key] = Some(v);
    v
}

/// The build context as a directory on this machine (the CLI's view).
#[derive(Debug, Clone)]
pub struct FsContext {
    /// The context's root.
    pub root: PathBuf,
}

impl FsContext {
    fn kind(&self, path: &str) -> Option<Kind> {
        let meta = std::fs::metadata(self.root.join(path)).ok()?;
        Some(if meta.is_dir() { Kind::Dir } else { Kind::File })
    }
}

impl ContextReader for FsContext {
    async fn stat(&mut self, paths: &[String]) -> Result<Vec<Option<Kind>>, String> {
        Ok(paths.iter().map(|p| self.kind(p)).collect())
    }

    async fn list(&mut self, dir: &str, patterns: &[&str]) -> Result<Option<Vec<Entry>>, String> {
        let Ok(read) = std::fs::read_dir(self.root.join(dir)) else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for e in read.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !patterns.iter().any(|p| glob_match(p, &name)) {
                continue;
            }
            let path = if dir.is_empty() {
                name.clone()
            } else {
                format!("{dir}/{name}")
            };
            if let Some(kind) = self.kind(&path) {
                out.push(Entry { name, kind });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some(out))
    }

    async fn read(&mut self, paths: &[String]) -> Result<BTreeMap<String, String>, String> {
        Ok(paths
            .iter()
            .filter_map(|p| {
                std::fs::read(self.root.join(p))
                    .ok()
                    .map(|b| (p.clone(), String::from_utf8_lossy(&b).into_owned()))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_patterns_match_as_docker_matches_them() {
        assert!(glob_match("*.pyc", "a.pyc"));
        assert!(!glob_match("*.pyc", "dir/a.pyc"));
        assert!(glob_match("**/*.pyc", "dir/sub/a.pyc"));
        assert!(glob_match("**/*.pyc", "a.pyc"));
        assert!(glob_match("data/**", "data/x/y"));
        assert!(glob_match("d?ta", "data"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[!a-c]x", "bx"));
        assert_eq!(
            excluded_by("data\n", "", "data/set.csv").as_deref(),
            Some("data")
        );
        assert_eq!(
            excluded_by("data\n!data/set.csv\n", "", "data/set.csv"),
            None
        );
        assert_eq!(
            excluded_by("*.txt\n", "app/", "app/req.txt").as_deref(),
            Some("*.txt")
        );
        assert_eq!(excluded_by("*.txt\n", "app/", "app/sub/req.txt"), None);
    }
    /// moby/patternmatcher's own test tables (patternmatcher_test.go).
    #[test]
    fn pattern_matcher_matches_as_moby_patternmatcher_does() {
        let single: &[(&str, &str, bool)] = &[
            ("**", "file", true),
            ("**", "file/", true),
            ("**/", "file", true),
            ("**/", "file/", true),
            ("**", "/", true),
            ("**/", "/", true),
            ("**", "dir/file", true),
            ("**/", "dir/file", true),
            ("**", "dir/file/", true),
            ("**/", "dir/file/", true),
            ("**/**", "dir/file", true),
            ("**/**", "dir/file/", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/file/", true),
            ("dir/**", "dir/dir2/file", true),
            ("dir/**", "dir/dir2/file/", true),
            ("**/dir", "dir", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/*", "dir/dir2/file/", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file/", true),
            ("**file", "file", true),
            ("**file", "dir/file", true),
            ("**/file", "dir/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file", "dir/dir/file", true),
            ("**/file*", "dir/dir/file", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/file.txt", true),
            ("a**/*.txt", "a/dir/file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt", "a/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc.def", "abc.def", true),
            ("abc.def", "abcZdef", false),
            ("abc?def", "abcZdef", true),
            ("abc?def", "abcdef", false),
            ("a\\\\", "a\\", true),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "dir/foo/bar", true),
            ("**/foo/bar", "dir/dir2/foo/bar", true),
            ("abc/**", "abc", false),
            ("abc/**", "abc/def", true),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", ".foo", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a(b)c/def", "a(b)c/xyz", false),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a*", "ab/c", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[^c]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a?b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[x\\-]", "-", true),
            ("[\\-x]", "a", false),
            ("*x", "xxx", true),
        ];
        let multi: &[(&[&str], &str, bool)] = &[
            (&["**", "!util/docker/web"], "util/docker/web/foo", false),
            (
                &["**", "!util/docker/web", "util/docker/web/foo"],
                "util/docker/web/foo",
                true,
            ),
            (
                &["**", "!dist/*.whl"],
                "dist/proxy.py-2.4.0rc3-py3-none-any.whl",
                false,
            ),
            (&["docs", "!docs/README.md"], "docs/README.md", false),
            (&["docs/", "!docs/README.md"], "docs/README.md", false),
            (&["!fileutils.go", "*.go"], "fileutils.go", true),
        ];
        let cases = single
            .iter()
            .map(|(p, text, pass)| (vec![*p], *text, *pass))
            .chain(
                multi
                    .iter()
                    .map(|(ps, text, pass)| (ps.to_vec(), *text, *pass)),
            );
        for (patterns, text, pass) in cases {
            let m = PatternMatcher::new(&patterns).expect("valid pattern");
            // Without the parents' results, then with them, as a walk has them.
            assert_eq!(
                m.matches_using_parent_results(text, &[]).0,
                pass,
                "{patterns:?} {text:?}"
            );
            let mut info = Vec::new();
            if let Some((dir, _)) = text.rsplit_once('/') {
                let parts: Vec<&str> = dir.split('/').collect();
                for i in 1..=parts.len() {
                    info = m
                        .matches_using_parent_results(&parts[..i].join("/"), &info)
                        .1;
                }
            }
            assert_eq!(
                m.matches_using_parent_results(text, &info).0,
                pass,
                "{patterns:?} {text:?} walked"
            );
        }
        for bad in [
            "!", "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[",
        ] {
            assert!(PatternMatcher::new(&[bad]).is_err(), "{bad:?}");
        }
        let m = PatternMatcher::new(&["  !docs/README.md  ", "", "./a/../b/"]).expect("valid");
        let texts: Vec<(&str, bool)> = m
            .patterns()
            .iter()
            .map(|p| (p.text(), p.exclusion()))
            .collect();
        assert_eq!(texts, [("docs/README.md", true), ("b", false)]);
        assert!(m.exclusions());
    }
}
