//! `strata lock`: the digests that pin a stack's external images.
//!
//! The lock (`strata.lock`, next to the stack file) maps each external
//! image reference, after mirrors, to the digest its registry served when
//! it was locked. Builds turn it into exact mirrors (`ref=ref@digest`), so a
//! tag that moves upstream does not move the stack.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};

use super::engine::Engine;
use super::progress::{Mode, ProgressOpt, Reporter};
use super::StackArgs;
use crate::graph::{Base, CopySource, GitRef, ImageRef, Stack, StepKind};

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
    #[command(flatten)]
    progress: ProgressOpt,
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
    let mut overrides = args.overrides()?;
    overrides.mirrors = file_mirror_keys(stack)
        .into_iter()
        .map(|k| (k.clone(), k))
        .collect();
    let written = crate::load(&stack.file.name, stack.file.text.as_bytes(), &overrides)
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

/// A download or a git checkout a copy reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteSource {
    /// `url` or `git`.
    pub kind: &'static str,
    /// The URL or the repository.
    pub location: String,
    /// The checksum of a download.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// The ref of a git checkout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<GitRef>,
    /// Components that copy it.
    pub used_by: Vec<String>,
}

impl RemoteSource {
    /// The key the lock records a git checkout under: `<repository>#<ref>`.
    pub fn lock_key(&self) -> String {
        match &self.git_ref {
            Some(r) => format!("{}#{}", self.location, r.name()),
            None => self.location.clone(),
        }
    }
}

/// The downloads and git checkouts of the enabled components (all, when `all`).
pub fn remote_sources(stack: &Stack, all: bool) -> Vec<RemoteSource> {
    let mut out: Vec<RemoteSource> = Vec::new();
    for c in &stack.components {
        if !all && !c.enabled {
            continue;
        }
        for s in &c.steps {
            let StepKind::Copy(cp) = &s.kind else {
                continue;
            };
            let src = match &cp.source {
                CopySource::Http { url, checksum } => RemoteSource {
                    kind: "url",
                    location: url.clone(),
                    checksum: Some(checksum.clone()),
                    git_ref: None,
                    used_by: Vec::new(),
                },
                CopySource::Git { remote, at } => RemoteSource {
                    kind: "git",
                    location: remote.clone(),
                    checksum: None,
                    git_ref: Some(at.clone()),
                    used_by: Vec::new(),
                },
                _ => continue,
            };
            let i = match out.iter().position(|o| {
                o.kind == src.kind && o.lock_key() == src.lock_key() && o.checksum == src.checksum
            }) {
                Some(i) => i,
                None => {
                    out.push(src);
                    out.len() - 1
                }
            };
            if !out[i].used_by.contains(&c.name) {
                out[i].used_by.push(c.name.clone());
            }
        }
    }
    out
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
    /// Downloads: URL -> the checksum the stack pins them to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub downloads: BTreeMap<String, String>,
    /// Git checkouts: `<repository>#<ref>` -> the commit the ref was at.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub git: BTreeMap<String, String>,
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
    let user = args.overrides()?.mirrors;
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
pub fn run(a: LockArgs) -> Result<ExitCode> {
    let Some(stack) = a.stack.load()? else {
        return Ok(ExitCode::FAILURE);
    };
    super::print_warnings(&stack);
    let engine = Engine::connect()?;
    let mut seen = std::collections::BTreeSet::new();
    let images: Vec<ImageRef> = external_images(&a.stack, &stack, false)?
        .into_iter()
        .map(|e| e.image)
        .filter(|i| i.digest.is_none() && seen.insert(i.familiar()))
        .collect();
    let remote = remote_sources(&stack, false);
    // One line per source as it is resolved (not with --progress quiet),
    // and a live line on a terminal; errors always print.
    let mut locking = Locking {
        reporter: Reporter::new(a.progress.mode(), "lock", "sources"),
        lock: Lock::default(),
        failed: false,
    };
    locking.reporter.set_total(images.len() + remote.len());
    for image in images {
        locking.image(&engine, image)?;
    }
    for r in remote {
        locking.remote(&r);
    }
    locking.reporter.finish();
    if locking.failed {
        eprintln!("strata: nothing written: some sources could not be resolved");
        return Ok(ExitCode::FAILURE);
    }
    let lock = locking.lock;
    let path = a.output.unwrap_or_else(|| lock_path(&a.stack.file));
    std::fs::write(&path, lock.render())
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!(
        "strata: wrote {} ({} digests, {} local ids, {} downloads, {} git commits)",
        path.display(),
        lock.digests.len(),
        lock.local.len(),
        lock.downloads.len(),
        lock.git.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// The lock being written, one source at a time, with its progress.
struct Locking {
    reporter: Reporter,
    lock: Lock,
    /// Whether a source could not be resolved.
    failed: bool,
}

impl Locking {
    /// A source resolved: its line, unless progress is quiet.
    fn say(&self, line: String) {
        self.reporter.item_done_silently();
        if self.reporter.mode() != Mode::Quiet {
            self.reporter.println(&line);
        }
    }

    /// A source that could not be resolved: its line always prints.
    fn fail(&mut self, line: String) {
        self.reporter.item_done_silently();
        self.reporter.println(&line);
        self.failed = true;
    }

    /// Pins an external image: its registry digest, else the local image's.
    fn image(&mut self, engine: &Engine, image: ImageRef) -> Result<()> {
        let name = image.familiar();
        self.reporter.set_current(&name);
        match resolve(engine, &image)? {
            Resolved::Registry(d) => {
                self.say(format!("{name}: {d}"));
                self.lock.digests.insert(name, d);
            }
            Resolved::LocalRepoDigest(d, why) => {
                self.say(format!(
                    "{name}: {d} (from the local image's repo digest: {why})"
                ));
                self.lock.digests.insert(name, d);
            }
            Resolved::LocalId(id, why) => {
                self.say(format!(
                    "{name}: local image {id} ({why}: the id is recorded, and builds check it)"
                ));
                self.lock.local.insert(name, id);
            }
            Resolved::Missing(why) => self.fail(format!(
                "{name}: error: not in a registry ({why}) and not a local image"
            )),
        }
        Ok(())
    }

    /// Pins a download (its checksum) or a git checkout (its commit).
    fn remote(&mut self, r: &RemoteSource) {
        let key = r.lock_key();
        self.reporter.set_current(&key);
        match (&r.checksum, &r.git_ref) {
            (Some(sum), _) => {
                self.say(format!(
                    "{key}: {sum} (the stack's checksum; BuildKit checks it)"
                ));
                self.lock.downloads.insert(key, sum.clone());
            }
            (None, Some(GitRef::Commit(id))) => {
                self.say(format!("{key}: commit {id}"));
                self.lock.git.insert(key, id.clone());
            }
            (None, Some(at)) => match ls_remote(&r.location, at) {
                Ok(id) => {
                    self.say(format!(
                        "{key}: {} {} is at commit {id}",
                        at.kind(),
                        at.name()
                    ));
                    self.lock.git.insert(key, id);
                }
                Err(why) => self.fail(format!("{key}: error: {why}")),
            },
            (None, None) => self.reporter.item_done_silently(),
        }
    }
}

/// The commit a tag or branch of a repository is at, from `git ls-remote`
/// (a tag's peeled commit when it is annotated).
fn ls_remote(remote: &str, at: &GitRef) -> Result<String> {
    let full = match at {
        GitRef::Tag(t) => format!("refs/tags/{t}"),
        GitRef::Branch(b) => format!("refs/heads/{b}"),
        GitRef::Commit(c) => return Ok(c.clone()),
    };
    let out = std::process::Command::new("git")
        .args(["ls-remote", "--", remote, &full, &format!("{full}^{{}}")])
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .output()
        .context("cannot run `git ls-remote` (is git installed?)")?;
    if !out.status.success() {
        anyhow::bail!(
            "`git ls-remote` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut found = None;
    for line in text.lines() {
        let Some((id, name)) = line.split_once('\t') else {
            continue;
        };
        if name.ends_with("^{}") {
            return Ok(id.to_owned());
        }
        found = Some(id.to_owned());
    }
    found.ok_or_else(|| anyhow::anyhow!("the repository has no {} `{}`", at.kind(), at.name()))
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
