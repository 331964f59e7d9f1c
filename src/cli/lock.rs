//! `strata lock` and `strata sources`: every external input of a stack,
//! and the digests that pin its images.
//!
//! The lock (`strata.lock`, next to the stack file) maps each external
//! image reference, after mirrors, to the digest its registry served when
//! it was locked. Builds turn it into exact mirrors (`ref=ref@digest`), so a
//! tag that moves upstream does not move the stack.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::engine::Engine;
use super::StackArgs;
use crate::graph::{Base, CopySource, ImageRef, Stack, StepKind};
use crate::spec;

/// The lock file's name, next to the stack file.
pub const LOCK_FILE: &str = "strata.lock";

/// `strata lock`.
#[derive(Args)]
pub struct LockArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// Where to write the lock (default: strata.lock next to the stack file).
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
}

/// `strata sources`.
#[derive(Args)]
pub struct SourcesArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SourcesFormat::Text)]
    format: SourcesFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum SourcesFormat {
    Text,
    Json,
}

/// How a component (or the stack) uses an external image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ImageUse {
    /// The component, or the third-party entry's name.
    pub by: String,
    /// `from`, `gpu base`, `copy from` or `third-party`.
    #[serde(rename = "as")]
    pub role: &'static str,
}

/// One external image reference of the stack.
#[derive(Debug, Clone, Serialize)]
pub struct ExternalImage {
    /// As the stack file writes it (after interpolation, before mirrors).
    pub written: ImageRef,
    /// What is built from (after mirrors).
    pub image: ImageRef,
    /// Who uses it, and how.
    pub used_by: Vec<ImageUse>,
}

/// The keys of the stack file's `[mirrors]` table (they are never interpolated).
fn file_mirror_keys(stack: &Stack) -> Vec<String> {
    toml::from_str::<toml::Table>(&stack.file.text)
        .ok()
        .and_then(|t| t.get("mirrors").and_then(|m| m.as_table()).cloned())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Every external image reference of the stack's components (enabled or
/// not, when `all`), its third-party images included, paired with the
/// reference as written. The written form comes from loading the stack a
/// second time with every mirror turned into the identity.
pub fn external_images(args: &StackArgs, stack: &Stack, all: bool) -> Result<Vec<ExternalImage>> {
    let mut overrides = args.overrides();
    overrides.mirrors = file_mirror_keys(stack)
        .into_iter()
        .map(|k| (k.clone(), k))
        .collect();
    let written = spec::load(&stack.file.name, stack.file.text.as_bytes(), &overrides)
        .map_err(|d| anyhow::anyhow!("{}", d.render()))?;
    let mut out: Vec<ExternalImage> = Vec::new();
    let mut add = |w: &ImageRef, i: &ImageRef, by: &str, role: &'static str| {
        let u = ImageUse {
            by: by.to_owned(),
            role,
        };
        match out.iter_mut().find(|e| e.written == *w && e.image == *i) {
            Some(e) => {
                if !e.used_by.contains(&u) {
                    e.used_by.push(u);
                }
            }
            None => out.push(ExternalImage {
                written: w.clone(),
                image: i.clone(),
                used_by: vec![u],
            }),
        }
    };
    for (w, c) in written.components.iter().zip(&stack.components) {
        if w.name != c.name {
            anyhow::bail!(
                "internal error: the stack resolved in a different order without mirrors"
            );
        }
        if !all && !c.enabled {
            continue;
        }
        if let (Base::Image(wr), Base::Image(r)) = (&w.base, &c.base) {
            let role = if c.gpu.is_some() { "gpu base" } else { "from" };
            add(wr, r, &c.name, role);
        }
        for (ws, s) in w.steps.iter().zip(&c.steps) {
            if let (StepKind::Copy(wc), StepKind::Copy(sc)) = (&ws.kind, &s.kind) {
                if let (CopySource::Image(wr), CopySource::Image(r)) = (&wc.source, &sc.source) {
                    add(wr, r, &c.name, "copy from");
                }
            }
        }
    }
    for (w, t) in written.third_party.iter().zip(&stack.third_party) {
        add(&w.image, &t.image, &t.name, "third-party");
    }
    let third_party = |e: &ExternalImage| e.used_by.iter().all(|u| u.role == "third-party");
    out.sort_by_key(|e| (third_party(e), e.written.familiar(), e.image.familiar()));
    Ok(out)
}

/// `strata.lock`: image reference (after mirrors) -> digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// Registry images: reference -> manifest digest.
    #[serde(default)]
    pub digests: BTreeMap<String, String>,
    /// Images only in the local image store (no registry digest): reference -> image id.
    #[serde(default)]
    pub local: BTreeMap<String, String>,
}

/// The lock file that belongs to a stack file.
pub fn lock_path(stack_file: &Path) -> PathBuf {
    stack_file
        .parent()
        .unwrap_or(Path::new("."))
        .join(LOCK_FILE)
}

impl Lock {
    /// Reads a lock file; None when there is none.
    pub fn read(path: &Path) -> Result<Option<Lock>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let lock: Lock = toml::from_str(&text).with_context(|| {
            format!(
                "{} is not a Strata lock file (run `strata lock` to write it again)",
                path.display()
            )
        })?;
        for (r, d) in lock.digests.iter().chain(&lock.local) {
            let pinned = format!("{}@{d}", r.split('@').next().unwrap_or(r));
            ImageRef::parse(r)
                .and_then(|_| ImageRef::parse(&pinned))
                .map_err(|e| anyhow::anyhow!("{}: `{r}` = `{d}`: {e}", path.display()))?;
        }
        Ok(Some(lock))
    }

    fn render(&self) -> String {
        let mut s = String::from(
            "# Written by `strata lock`: the digest of every external image of the stack.\n\
             # Builds pin these images (ref=ref@digest); run `strata lock` again to update.\n",
        );
        s.push_str(&toml::to_string(self).unwrap_or_default());
        s
    }

    /// The digest or local id recorded for an image, and which it is.
    pub fn get(&self, image: &ImageRef) -> Option<Pin<'_>> {
        let key = image.familiar();
        if let Some(d) = self.digests.get(&key) {
            return Some(Pin::Digest(d));
        }
        self.local.get(&key).map(|id| Pin::LocalId(id))
    }
}

/// What the lock says about one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin<'a> {
    /// A registry digest: the build uses `ref@digest`.
    Digest(&'a str),
    /// A local image id: the build checks the local image still has it.
    LocalId(&'a str),
}

/// Mirrors that make a build use the lock: an exact `written=image@digest`
/// for every external image of the stack, after every mirror the user gave
/// (file and command line), so the exact entries are tried first whatever
/// the other keys match. Returns the mirrors and the images the lock misses.
pub fn locked_mirrors(
    images: &[ExternalImage],
    lock: &Lock,
    user: &[(String, String)],
    file_keys: &[String],
) -> (Vec<(String, String)>, Vec<ImageRef>) {
    let mut out: Vec<(String, String)> = user.to_vec();
    let mut exact: Vec<ImageRef> = Vec::new();
    let mut missing = Vec::new();
    for e in images {
        let target = match lock.get(&e.image) {
            Some(Pin::Digest(d)) if e.image.digest.is_none() => {
                let mut r = e.image.clone();
                r.digest = Some(d.to_owned());
                r
            }
            Some(_) => e.image.clone(),
            None => {
                if e.image.digest.is_none() {
                    missing.push(e.image.clone());
                }
                e.image.clone()
            }
        };
        if !exact.contains(&e.written) {
            exact.push(e.written.clone());
            out.push((e.written.familiar(), target.familiar()));
        }
    }
    // Move every other key after the exact entries (a key given again
    // replaces the earlier entry and goes last). File keys become the
    // identity: every reference of the stack has its exact entry already.
    let parsed = |k: &str| ImageRef::parse(k).ok();
    for k in file_keys {
        if parsed(k).is_some_and(|r| !exact.contains(&r)) {
            out.push((k.clone(), k.clone()));
        }
    }
    for (k, v) in user {
        if parsed(k).is_some_and(|r| !exact.contains(&r)) {
            out.push((k.clone(), v.clone()));
        }
    }
    missing.sort();
    missing.dedup();
    (out, missing)
}

/// The mirrors a build of this stack passes to the frontend: the user's,
/// or, with a lock next to the stack file, the pinned ones. Prints what
/// the lock does to stderr; None when there is no lock.
pub fn build_mirrors(
    args: &StackArgs,
    stack: &Stack,
    engine: Option<&Engine>,
) -> Result<Vec<(String, String)>> {
    let user = args.overrides().mirrors;
    let path = lock_path(&args.file);
    let Some(lock) = Lock::read(&path)? else {
        return Ok(user);
    };
    let images = external_images(args, stack, true)?;
    let (mirrors, missing) = locked_mirrors(&images, &lock, &user, &file_mirror_keys(stack));
    let pinned = images
        .iter()
        .filter(|e| matches!(lock.get(&e.image), Some(Pin::Digest(_))))
        .count();
    eprintln!("strata: using {} ({pinned} images pinned)", path.display());
    for m in &missing {
        eprintln!(
            "strata: warning: {m} is not in {}: it is not pinned (run `strata lock`)",
            path.display()
        );
    }
    if let Some(engine) = engine {
        for e in &images {
            if let Some(Pin::LocalId(want)) = lock.get(&e.image) {
                let name = e.image.familiar();
                match engine.image_id(&name)? {
                    Some(id) if id == want => {}
                    Some(id) => anyhow::bail!(
                        "{name} is a local image locked at {want} in {}, but the local image is now {id}: run `strata lock` to accept it",
                        path.display()
                    ),
                    None => anyhow::bail!(
                        "{name} is locked in {} as a local image ({want}) that is no longer present",
                        path.display()
                    ),
                }
            }
        }
    }
    Ok(mirrors)
}

/// Runs `strata lock`.
pub fn run_lock(a: LockArgs) -> Result<ExitCode> {
    let Some(stack) = a.stack.load()? else {
        return Ok(ExitCode::FAILURE);
    };
    super::print_warnings(&stack);
    let engine = Engine::connect()?;
    let images = external_images(&a.stack, &stack, false)?;
    let mut lock = Lock::default();
    let mut failed = false;
    let mut seen = std::collections::BTreeSet::new();
    for e in &images {
        let name = e.image.familiar();
        if e.image.digest.is_some() || !seen.insert(name.clone()) {
            continue;
        }
        match resolve(&engine, &e.image)? {
            Resolved::Registry(d) => {
                eprintln!("{name}: {d}");
                lock.digests.insert(name, d);
            }
            Resolved::LocalRepoDigest(d, why) => {
                eprintln!("{name}: {d} (from the local image's repo digest: {why})");
                lock.digests.insert(name, d);
            }
            Resolved::LocalId(id, why) => {
                eprintln!(
                    "{name}: local image {id} ({why}: the id is recorded, and builds check it)"
                );
                lock.local.insert(name, id);
            }
            Resolved::Missing(why) => {
                eprintln!("{name}: error: not in a registry ({why}) and not a local image");
                failed = true;
            }
        }
    }
    if failed {
        eprintln!("strata: nothing written: some images could not be resolved");
        return Ok(ExitCode::FAILURE);
    }
    let path = a.output.unwrap_or_else(|| lock_path(&a.stack.file));
    std::fs::write(&path, lock.render())
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!(
        "strata: wrote {} ({} digests, {} local ids)",
        path.display(),
        lock.digests.len(),
        lock.local.len()
    );
    Ok(ExitCode::SUCCESS)
}

enum Resolved {
    Registry(String),
    LocalRepoDigest(String, String),
    LocalId(String, String),
    Missing(String),
}

/// The registry's digest for an image. A local image that never came from
/// a registry (no repo digest at all) is recorded by id without asking
/// one; an image the registry does not answer for falls back to the local
/// repo digest or id, saying why.
fn resolve(engine: &Engine, image: &ImageRef) -> Result<Resolved> {
    let name = image.familiar();
    let local = engine.inspect(&name)?;
    if let Some(l) = &local {
        if l.repo_digests.as_ref().is_none_or(|d| d.is_empty()) {
            if let Some(id) = &l.id {
                return Ok(Resolved::LocalId(
                    id.clone(),
                    "the local image has no repo digest".into(),
                ));
            }
        }
    }
    let why = match engine.registry_digest(&name) {
        Ok(d) => return Ok(Resolved::Registry(d)),
        Err(e) => e.to_string(),
    };
    let Some(local) = local else {
        return Ok(Resolved::Missing(why));
    };
    let repo = image.name();
    let repo_digest = local
        .repo_digests
        .unwrap_or_default()
        .into_iter()
        .find_map(|rd| {
            let (r, d) = rd.split_once('@')?;
            let r = ImageRef::parse(r).ok()?;
            (r.name() == repo).then(|| d.to_owned())
        });
    Ok(match (repo_digest, local.id) {
        (Some(d), _) => Resolved::LocalRepoDigest(d, why),
        (None, Some(id)) => Resolved::LocalId(id, why),
        (None, None) => Resolved::Missing(why),
    })
}

/// Runs `strata sources`.
pub fn run_sources(a: SourcesArgs) -> Result<ExitCode> {
    let Some(stack) = a.stack.load()? else {
        return Ok(ExitCode::FAILURE);
    };
    super::print_warnings(&stack);
    let images = external_images(&a.stack, &stack, false)?;
    let lock = Lock::read(&lock_path(&a.stack.file))?.unwrap_or_default();
    let root = a.stack.file.parent().unwrap_or(Path::new("."));
    let (packages, refused) = packages(&stack, root);
    let mut out = std::io::stdout().lock();
    match a.format {
        SourcesFormat::Json => {
            let images: Vec<_> = images
                .iter()
                .map(|e| {
                    let pin = match lock.get(&e.image) {
                        Some(Pin::Digest(d)) => json!({ "digest": d }),
                        Some(Pin::LocalId(id)) => json!({ "local_id": id }),
                        None => serde_json::Value::Null,
                    };
                    json!({
                        "ref": e.written.familiar(),
                        "image": e.image.familiar(),
                        "mirrored": e.written != e.image,
                        "locked": pin,
                        "used_by": e.used_by,
                    })
                })
                .collect();
            let doc = json!({
                "stack": stack.name,
                "profile": stack.profile,
                "images": images,
                "packages": packages,
            });
            writeln!(out, "{doc:#}")?;
        }
        SourcesFormat::Text => {
            let mut rows: Vec<[String; 4]> = Vec::new();
            for e in &images {
                let kind = if e.used_by.iter().all(|u| u.role == "third-party") {
                    "third-party"
                } else {
                    "image"
                };
                let mut detail = Vec::new();
                if e.written != e.image {
                    detail.push(format!("mirrored to {}", e.image));
                }
                match lock.get(&e.image) {
                    Some(Pin::Digest(d)) => detail.push(format!("locked {d}")),
                    Some(Pin::LocalId(id)) => detail.push(format!("local image {id}")),
                    None => {}
                }
                let by: Vec<String> = e
                    .used_by
                    .iter()
                    .map(|u| format!("{} ({})", u.by, u.role))
                    .collect();
                rows.push([
                    kind.into(),
                    e.written.familiar(),
                    by.join(", "),
                    detail.join("; "),
                ]);
            }
            for p in &packages {
                let mut detail = Vec::new();
                if let Some(f) = &p.file {
                    detail.push(format!("in {f}"));
                }
                if let Some(o) = &p.offline {
                    detail.push(format!("offline from {o}"));
                }
                rows.push([
                    p.kind.into(),
                    p.name.clone(),
                    p.used_by.join(", "),
                    detail.join("; "),
                ]);
            }
            let w0 = rows.iter().map(|r| r[0].len()).max().unwrap_or(4).max(4);
            let w1 = rows.iter().map(|r| r[1].len()).max().unwrap_or(4).max(4);
            let w2 = rows.iter().map(|r| r[2].len()).max().unwrap_or(7).max(7);
            writeln!(
                out,
                "{:w0$}  {:w1$}  {:w2$}  DETAIL",
                "KIND", "NAME", "USED BY"
            )?;
            for r in rows {
                let line = format!("{:w0$}  {:w1$}  {:w2$}  {}", r[0], r[1], r[2], r[3]);
                writeln!(out, "{}", line.trim_end())?;
            }
        }
    }
    for r in &refused {
        eprintln!("strata: error: {r}");
    }
    if !refused.is_empty() {
        eprintln!(
            "strata: error: the package list is incomplete: `strata sources` reads requirement files only inside each component's build context; keep them there and write includes relative to the including file"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// One package a build installs from outside the stack.
#[derive(Debug, Clone, Serialize)]
struct Package {
    /// `apt`, `pip` or `conda`.
    kind: &'static str,
    /// The package or requirement specifier.
    name: String,
    /// The requirement or environment file it comes from.
    file: Option<String>,
    /// The offline directory it is installed from (in the context).
    offline: Option<String>,
    /// Conda channels.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    channels: Vec<String>,
    /// Components that install it.
    used_by: Vec<String>,
}

/// The apt, pip and conda packages of the enabled components, with the
/// requirement files read from the context, and why requirement paths
/// were refused.
fn packages(stack: &Stack, root: &Path) -> (Vec<Package>, Vec<String>) {
    let mut out: Vec<Package> = Vec::new();
    let mut add = |p: Package| match out.iter_mut().find(|q| {
        q.kind == p.kind && q.name == p.name && q.file == p.file && q.offline == p.offline
    }) {
        Some(q) => {
            for c in p.used_by {
                if !q.used_by.contains(&c) {
                    q.used_by.push(c);
                }
            }
        }
        None => out.push(p),
    };
    let mut refused = Vec::new();
    for c in stack.enabled() {
        for s in &c.steps {
            match &s.kind {
                StepKind::Apt(a) => {
                    let repo = a.repo.clone().or_else(|| stack.metadata.apt_repo.clone());
                    for name in &a.packages {
                        add(Package {
                            kind: "apt",
                            name: name.clone(),
                            file: None,
                            offline: repo.as_deref().map(|r| in_context(&c.context, r)),
                            channels: Vec::new(),
                            used_by: vec![c.name.clone()],
                        });
                    }
                }
                StepKind::Pip(p) => {
                    let links = p
                        .find_links
                        .clone()
                        .or_else(|| stack.metadata.find_links.clone())
                        .map(|l| in_context(&c.context, &l));
                    for name in &p.packages {
                        add(Package {
                            kind: "pip",
                            name: name.clone(),
                            file: None,
                            offline: links.clone(),
                            channels: Vec::new(),
                            used_by: vec![c.name.clone()],
                        });
                    }
                    for r in &p.requirements {
                        let file = in_context(&c.context, r);
                        let read = read_requirements(root, &c.context, &c.name, r);
                        refused.extend(read.refused);
                        for name in read.specs {
                            add(Package {
                                kind: "pip",
                                name,
                                file: Some(file.clone()),
                                offline: links.clone(),
                                channels: Vec::new(),
                                used_by: vec![c.name.clone()],
                            });
                        }
                    }
                }
                StepKind::Conda(k) => {
                    let file = k.file.as_ref().map(|f| in_context(&c.context, f));
                    for name in &k.packages {
                        add(Package {
                            kind: "conda",
                            name: name.clone(),
                            file: None,
                            offline: None,
                            channels: k.channels.clone(),
                            used_by: vec![c.name.clone()],
                        });
                    }
                    if let Some(f) = file {
                        add(Package {
                            kind: "conda",
                            name: format!("(environment file, env {})", k.env),
                            file: Some(f),
                            offline: None,
                            channels: k.channels.clone(),
                            used_by: vec![c.name.clone()],
                        });
                    }
                }
                _ => {}
            }
        }
    }
    (out, refused)
}

/// Most bytes `strata sources` reads from one requirements file.
const REQUIREMENTS_FILE_BYTES: u64 = 4 << 20;
/// Most bytes it reads from one requirements file and its includes, in all.
const REQUIREMENTS_TOTAL_BYTES: u64 = 64 << 20;
/// Most lines it reads from one requirements file and its includes, in all.
const REQUIREMENTS_TOTAL_LINES: usize = 200_000;
/// How much of a refused line an error message quotes.
const QUOTED_LINE_CHARS: usize = 120;

/// What one requirements file of a component, and its includes, list.
#[derive(Debug, Default)]
struct Requirements {
    /// The requirement specifiers, in pip's order; a file that is not
    /// there is listed as `(cannot read FILE)`.
    specs: Vec<String>,
    /// Why paths were refused, each naming where it was written.
    refused: Vec<String>,
    /// The files read, as the listing shows them, each once.
    files: Vec<String>,
}

/// A requirements or constraints file named by `-r` or `-c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Include {
    Requirements,
    Constraints,
}

/// The file a `-r`/`--requirement` or `-c`/`--constraint` line names,
/// in the forms pip accepts (`-r f`, `-rf`, `--requirement f`, `--requirement=f`).
fn include_of(line: &str) -> Option<(Include, &str)> {
    for (long, kind) in [
        ("--requirement", Include::Requirements),
        ("--constraint", Include::Constraints),
    ] {
        if let Some(rest) = line.strip_prefix(long) {
            let path = rest.strip_prefix('=').or_else(|| {
                rest.starts_with(char::is_whitespace)
                    .then_some(rest.trim_start())
            })?;
            return Some((kind, path.trim()));
        }
    }
    for (short, kind) in [("-r", Include::Requirements), ("-c", Include::Constraints)] {
        if let Some(rest) = line.strip_prefix(short) {
            return Some((kind, rest.trim()));
        }
    }
    None
}

/// A requirements file's logical lines, with the 1-based line each
/// starts on: comments dropped, `\` continuations joined, as pip reads them.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let (start, mut line) = pending.take().unwrap_or((i + 1, String::new()));
        line.push_str(raw);
        if let Some(joined) = line.strip_suffix('\\') {
            pending = Some((start, joined.to_owned()));
            continue;
        }
        out.push((start, line));
    }
    out.extend(pending);
    out.into_iter()
        .filter_map(|(n, line)| {
            let line = strip_comment(&line).trim();
            (!line.is_empty()).then(|| (n, line.to_owned()))
        })
        .collect()
}

/// A line without its comment: `#` at the start or after whitespace.
fn strip_comment(line: &str) -> &str {
    let mut prev_space = true;
    for (i, ch) in line.char_indices() {
        if ch == '#' && prev_space {
            return &line[..i];
        }
        prev_space = ch.is_whitespace();
    }
    line
}

/// A path relative to the context, `..` and `.` resolved by name;
/// None when it climbs above the context.
fn normalize_in_context(dir: &str, path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in dir.split('/').chain(path.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Where a requirements path written in `dir` (relative to the context)
/// leads, relative to the context; or why it is refused.
fn context_relative(dir: &str, path: &str) -> Result<String, &'static str> {
    if path.starts_with('/') {
        Err("names an absolute path")
    } else if path.contains("://") {
        Err("names a URL, not a file")
    } else {
        normalize_in_context(dir, path).ok_or("climbs out of the build context with `..`")
    }
}

/// A path as the listing shows it: relative to the stack file's directory.
fn in_context(context: &str, p: &str) -> String {
    if context == "." || context.is_empty() {
        p.to_owned()
    } else {
        format!("{}/{p}", context.trim_end_matches('/'))
    }
}

/// The text of a line quoted in a message, cut short when long.
fn quoted(line: &str) -> String {
    let mut q: String = line.chars().take(QUOTED_LINE_CHARS).collect();
    if q.len() < line.len() {
        q.push_str("...");
    }
    q
}

/// Where a context path leads.
enum Located {
    /// Inside the context: its canonical path.
    Inside(PathBuf),
    /// Nowhere: it is not there (or a link to nothing).
    Missing,
    /// Outside the context, through a symbolic link.
    Outside,
}

/// Reads one component's pip requirements, only inside its build context.
struct RequirementReader<'a> {
    /// The component, for messages.
    component: &'a str,
    /// The context as the stack file writes it (relative to `root`).
    context: &'a str,
    /// The context directory on this machine.
    dir: PathBuf,
    /// `dir` with every symbolic link followed.
    canonical: PathBuf,
    /// Every file opened, by canonical path: each is read once.
    visited: BTreeSet<PathBuf>,
    lines: usize,
    bytes: u64,
    out: Requirements,
}

impl RequirementReader<'_> {
    fn refuse(&mut self, at: &str, why: &str) {
        self.out.refused.push(format!("{at}: {why}"));
    }

    /// A context file's canonical path, if it is there and inside the context.
    fn locate(&self, rel: &str) -> Located {
        match self.dir.join(rel).canonicalize() {
            Err(_) => Located::Missing,
            Ok(path) if path.starts_with(&self.canonical) => Located::Inside(path),
            Ok(_) => Located::Outside,
        }
    }

    fn refuse_outside(&mut self, at: &str, written: &str) {
        self.refuse(
            at,
            &format!("`{written}` leads outside the build context through a symbolic link"),
        );
    }

    /// A requirements file's text, when it is a regular file within the size limits.
    fn read(&mut self, path: &Path, at: &str, written: &str) -> Option<String> {
        use std::io::Read;
        if !path.is_file() {
            self.refuse(at, &format!("`{written}` is not a regular file"));
            return None;
        }
        let mut bytes = Vec::new();
        let read = std::fs::File::open(path)
            .and_then(|f| f.take(REQUIREMENTS_FILE_BYTES + 1).read_to_end(&mut bytes));
        if read.is_err() {
            let shown = format!("(cannot read {})", self.shown(path));
            self.out.specs.push(shown);
            return None;
        }
        if bytes.len() as u64 > REQUIREMENTS_FILE_BYTES {
            self.refuse(
                at,
                &format!(
                    "`{written}` is larger than {} MiB",
                    REQUIREMENTS_FILE_BYTES >> 20
                ),
            );
            return None;
        }
        self.bytes += bytes.len() as u64;
        if self.bytes > REQUIREMENTS_TOTAL_BYTES {
            self.refuse(
                at,
                &format!(
                    "stopped at `{written}`: more than {} MiB of requirements in all",
                    REQUIREMENTS_TOTAL_BYTES >> 20
                ),
            );
            return None;
        }
        match String::from_utf8(bytes) {
            Ok(t) => Some(t),
            Err(_) => {
                self.refuse(at, &format!("`{written}` is not UTF-8 text"));
                None
            }
        }
    }

    /// A canonical path inside the context, shown as the listing shows paths.
    fn shown(&self, path: &Path) -> String {
        let rel = path
            .strip_prefix(&self.canonical)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        in_context(self.context, &rel)
    }

    /// Reads `file` (relative to the context) and the files it includes,
    /// depth first in pip's order, each once.
    fn read_all(mut self, file: &str) -> Requirements {
        struct Open {
            rel: String,
            lines: std::vec::IntoIter<(usize, String)>,
        }
        let mut stack: Vec<Open> = Vec::new();
        let at = at_component(self.component);
        // The stack file's paths were checked when it loaded; checked again here.
        let mut next = match context_relative("", file) {
            Ok(rel) => Some((rel, at, file.to_owned())),
            Err(why) => {
                self.refuse(&at, &format!("`{file}` {why}"));
                None
            }
        };
        loop {
            if let Some((rel, at, written)) = next.take() {
                match self.locate(&rel) {
                    Located::Missing => self
                        .out
                        .specs
                        .push(format!("(cannot read {})", in_context(self.context, &rel))),
                    Located::Outside => self.refuse_outside(&at, &written),
                    Located::Inside(path) => {
                        if self.visited.insert(path.clone()) {
                            if let Some(text) = self.read(&path, &at, &written) {
                                self.out.files.push(in_context(self.context, &rel));
                                stack.push(Open {
                                    rel,
                                    lines: logical_lines(&text).into_iter(),
                                });
                            }
                        }
                    }
                }
            }
            let Some(top) = stack.last_mut() else {
                break;
            };
            let Some((n, line)) = top.lines.next() else {
                stack.pop();
                continue;
            };
            self.lines += 1;
            let at = format!("{}:{n}", in_context(self.context, &top.rel));
            if self.lines > REQUIREMENTS_TOTAL_LINES {
                self.refuse(
                    &at,
                    &format!(
                        "stopped reading: more than {REQUIREMENTS_TOTAL_LINES} requirement lines in all"
                    ),
                );
                break;
            }
            let Some((kind, target)) = include_of(&line) else {
                if !line.starts_with('-') {
                    self.out.specs.push(line);
                }
                continue;
            };
            let written = quoted(&line);
            let dir = top.rel.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
            match context_relative(&dir, target) {
                Err(why) => self.refuse(&at, &format!("`{written}` {why}")),
                // A constraints file lists versions, not packages: checked, not read.
                Ok(rel) if kind == Include::Constraints => {
                    if matches!(self.locate(&rel), Located::Outside) {
                        self.refuse_outside(&at, &written);
                    }
                }
                Ok(rel) => next = Some((rel, at, written)),
            }
        }
        self.out
    }
}

/// Where a requirements path the stack file names was written.
fn at_component(component: &str) -> String {
    format!("component `{component}`")
}

/// The requirement specifiers of a component's pip requirements file
/// and its `-r` includes, read only inside the component's build context.
fn read_requirements(root: &Path, context: &str, component: &str, file: &str) -> Requirements {
    let context = if context == "." { "" } else { context };
    let root = if root.as_os_str().is_empty() {
        Path::new(".")
    } else {
        root
    };
    let dir = root.join(context);
    let Ok(canonical) = dir.canonicalize() else {
        return Requirements {
            specs: vec![format!("(cannot read {})", in_context(context, file))],
            ..Requirements::default()
        };
    };
    RequirementReader {
        component,
        context,
        dir,
        canonical,
        visited: BTreeSet::new(),
        lines: 0,
        bytes: 0,
        out: Requirements::default(),
    }
    .read_all(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(s: &str) -> ImageRef {
        ImageRef::parse(s).expect("valid")
    }

    #[test]
    fn lock_pins_every_written_reference_before_other_keys() {
        let images = vec![ExternalImage {
            written: img("python:3.11"),
            image: img("mirror.local/python:3.11"),
            used_by: vec![],
        }];
        let mut lock = Lock::default();
        let d = format!("sha256:{}", "a".repeat(64));
        lock.digests
            .insert("mirror.local/python:3.11".into(), d.clone());
        let user = vec![("python".to_owned(), "mirror.local/python".to_owned())];
        let (m, missing) = locked_mirrors(&images, &lock, &user, &["python".to_owned()]);
        assert!(missing.is_empty());
        assert_eq!(
            m,
            vec![
                ("python".to_owned(), "mirror.local/python".to_owned()),
                (
                    "python:3.11".to_owned(),
                    format!("mirror.local/python:3.11@{d}")
                ),
                ("python".to_owned(), "python".to_owned()),
                ("python".to_owned(), "mirror.local/python".to_owned()),
            ]
        );
    }

    /// A fresh directory for one test's build context.
    fn temp_context(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("strata-lock-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("ctx/sub")).expect("temp dir");
        dir
    }

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn includes_are_read_in_every_form_pip_accepts() {
        let cases = [
            ("-r a.txt", Some((Include::Requirements, "a.txt"))),
            ("-ra.txt", Some((Include::Requirements, "a.txt"))),
            (
                "--requirement a.txt",
                Some((Include::Requirements, "a.txt")),
            ),
            (
                "--requirement=a.txt",
                Some((Include::Requirements, "a.txt")),
            ),
            ("-c c.txt", Some((Include::Constraints, "c.txt"))),
            ("--constraint=c.txt", Some((Include::Constraints, "c.txt"))),
            ("--requirements-x", None),
            ("--pre", None),
            ("six==1.16.0", None),
        ];
        for (line, want) in cases {
            assert_eq!(include_of(line), want, "{line}");
        }
    }

    #[test]
    fn comments_and_continuations_as_pip_reads_them() {
        let text = "# top\nsix==1.16 # pinned\nnumpy\\\n  >=1.0\n\nurl#frag\n";
        assert_eq!(
            logical_lines(text),
            vec![
                (2, "six==1.16".to_owned()),
                (3, "numpy  >=1.0".to_owned()),
                (6, "url#frag".to_owned()),
            ]
        );
    }

    #[test]
    fn include_paths_stay_inside_the_context_by_name() {
        assert_eq!(context_relative("sub", "../a.txt"), Ok("a.txt".to_owned()));
        assert_eq!(
            context_relative("sub", "./b/../c.txt"),
            Ok("sub/c.txt".to_owned())
        );
        assert!(context_relative("sub", "../../a.txt").is_err());
        assert!(context_relative("", "../a.txt").is_err());
        assert!(context_relative("", "/proc/self/environ").is_err());
        assert!(context_relative("", "https://example.org/r.txt").is_err());
    }

    #[test]
    fn requirements_outside_the_context_are_refused_and_never_read() {
        let dir = temp_context("outside");
        let ctx = dir.join("ctx");
        write(&dir.join("outside.txt"), "outside-secret\n");
        write(
            &ctx.join("requirements.txt"),
            "six\n-r /proc/self/environ\n-r ../outside.txt\n-r sub/link.txt\n-c ../c.txt\n--constraint=sub/c.txt\n",
        );
        write(&ctx.join("sub/c.txt"), "six<2\n");
        std::os::unix::fs::symlink("../../outside.txt", ctx.join("sub/link.txt")).expect("symlink");
        std::os::unix::fs::symlink("../outside.txt", ctx.join("linked.txt")).expect("symlink");
        let r = read_requirements(&dir, "ctx", "app", "requirements.txt");
        assert_eq!(r.specs, vec!["six"]);
        assert_eq!(r.files, vec!["ctx/requirements.txt"]);
        let lines: Vec<&str> = r
            .refused
            .iter()
            .map(|m| m.split(": ").next().unwrap_or(""))
            .collect();
        assert_eq!(
            lines,
            [
                "ctx/requirements.txt:2",
                "ctx/requirements.txt:3",
                "ctx/requirements.txt:4",
                "ctx/requirements.txt:5"
            ]
        );
        assert!(r.refused[0].contains("absolute"), "{:?}", r.refused);
        assert!(r.refused[2].contains("symbolic link"), "{:?}", r.refused);
        let top = read_requirements(&dir, "ctx", "app", "linked.txt");
        assert!(top.specs.is_empty());
        assert_eq!(top.refused.len(), 1);
        assert!(top.refused[0].starts_with("component `app`: `linked.txt` leads outside"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_file_is_read_once_and_cycles_end() {
        let dir = temp_context("once");
        let ctx = dir.join("ctx");
        // Each file includes the next twice: 2^30 reads without the visited set.
        for i in 0..30 {
            let next = format!("-r f{}.txt\n", i + 1);
            write(
                &ctx.join(format!("f{i}.txt")),
                &format!("pkg{i}\n{next}{next}"),
            );
        }
        write(&ctx.join("f30.txt"), "last\n-r sub/../f0.txt\n");
        let r = read_requirements(&dir, "ctx", "app", "f0.txt");
        assert!(r.refused.is_empty(), "{:?}", r.refused);
        assert_eq!(r.files.len(), 31);
        assert_eq!(r.specs.len(), 31);
        assert_eq!(r.specs[30], "last");
        // a -> b -> a, from a subdirectory (relative to the including file).
        write(&ctx.join("a.txt"), "in-a\n-r sub/b.txt\n");
        write(&ctx.join("sub/b.txt"), "in-b\n-r ../a.txt\n");
        let r = read_requirements(&dir, "ctx", "app", "a.txt");
        assert!(r.refused.is_empty(), "{:?}", r.refused);
        assert_eq!(r.specs, vec!["in-a", "in-b"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn large_and_missing_files_are_not_listed() {
        let dir = temp_context("large");
        let ctx = dir.join("ctx");
        let big = "x\n".repeat((REQUIREMENTS_FILE_BYTES as usize) / 2 + 1);
        write(&ctx.join("big.txt"), &big);
        write(&ctx.join("r.txt"), "ok\n-r big.txt\n-r missing.txt\n");
        let r = read_requirements(&dir, "ctx", "app", "r.txt");
        assert_eq!(r.specs, vec!["ok", "(cannot read ctx/missing.txt)"]);
        assert_eq!(r.refused.len(), 1);
        assert!(r.refused[0].starts_with("ctx/r.txt:2: `-r big.txt` is larger than 4 MiB"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn lock_round_trips() {
        let mut lock = Lock::default();
        lock.digests.insert(
            "127.0.0.1:5000/x:1".into(),
            format!("sha256:{}", "b".repeat(64)),
        );
        lock.local.insert(
            "strata.local/debian:bookworm".into(),
            format!("sha256:{}", "c".repeat(64)),
        );
        let text = lock.render();
        let back: Lock = toml::from_str(&text).expect("parses");
        assert_eq!(back, lock);
    }
}
