//! `strata bundle`: builds the stack (as `strata build` does; nothing runs
//! again when nothing changed), then writes one offline archive (gzip or
//! zstd) with every published image of the stack, its third-party images
//! and optionally the frontend image, that `docker load -i` restores with
//! every tag; and `strata bundle verify`, which checks one
//! ([`crate::bundle::verify`]).
//!
//! The archive is `docker save`'s tar stream, copied member by member as it
//! arrives from the engine (never whole in memory), with one more member at
//! the end: `strata-bundle.json`, the images and tags it holds and the
//! sha256 of every member. `docker load` ignores that member.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use sha2::Digest;

use crate::bundle::{
    hex, index_names, repo_tags, same_tag, tag_key, verify_stream, BundleImage, BundleManifest,
    Hashing, Member, SavedBlobs, BUNDLE_MANIFEST, FORMAT, MAX_JSON_MEMBER, MAX_JSON_TOTAL,
};

use super::build::{build, BuildArgs, Built, FrontendImage, TlsOpt};
use super::engine::Engine;
use super::progress::{ProgressOpt, Reporter};
use super::StackArgs;

/// `strata bundle`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BundleArgs {
    #[command(subcommand)]
    action: Option<BundleAction>,
    #[command(flatten)]
    stack: StackArgs,
    /// The archive to write (`.tar.gz`/`.tgz`: gzip, `.tar.zst`/`.zst`: zstd).
    #[arg(short = 'o', long, value_name = "FILE", required = true)]
    output: Option<PathBuf>,
    /// Also include the stack's `[third-party]` images (pulled if missing).
    #[arg(long)]
    with_third_party: bool,
    /// Also include the frontend image, so the site can build too.
    #[arg(long)]
    with_frontend: bool,
    #[command(flatten)]
    frontend: FrontendImage,
    /// Compression (default: from the file name; gzip otherwise).
    #[arg(long, value_enum)]
    compression: Option<Compression>,
    #[command(flatten)]
    progress: ProgressOpt,
    /// The engine to build on and save from, as for `strata build`.
    #[arg(long, env = "STRATA_BUILDER", value_name = "ADDRESS")]
    builder: Option<String>,
    #[command(flatten)]
    tls: TlsOpt,
    /// Build and bundle these platforms (comma-separated): each component
    /// carries every one it is enabled for. Needs an engine with the
    /// containerd image store, to build and to load.
    #[arg(long, value_delimiter = ',', value_parser = super::platform_arg, value_name = "PLATFORM")]
    platform: Vec<crate::lower::Platform>,
}

#[derive(Subcommand)]
enum BundleAction {
    /// Check a bundle: every member against its sha256, and that `docker load` loads exactly the images and ids it lists.
    #[command(
        after_help = "Examples:\n  strata bundle verify stack.tar.gz\n  strata bundle verify stack.tar.zst --progress quiet   no live line on a terminal"
    )]
    Verify {
        /// The bundle.
        file: PathBuf,
        #[command(flatten)]
        progress: ProgressOpt,
    },
}

/// How the archive is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Compression {
    /// gzip (flate2).
    Gzip,
    /// zstd, with frame checksums.
    Zstd,
}

/// Runs `strata bundle` or `strata bundle verify`.
pub fn run(a: BundleArgs) -> Result<ExitCode> {
    if let Some(BundleAction::Verify { file, progress }) = a.action {
        return run_verify(&file, progress);
    }
    let Some(output) = a.output.clone() else {
        bail!("give the archive to write with -o FILE");
    };
    let started = std::time::Instant::now();
    // Build first (cheap when nothing changed: BuildKit's cache), so the
    // bundle holds the images of the stack as it is now, never stale ones.
    let args = BuildArgs::for_bundle(
        a.stack.clone(),
        a.progress,
        a.builder.clone(),
        a.tls.clone(),
        a.platform.clone(),
    );
    let Some(built) = build(&args)? else {
        eprintln!("strata: nothing bundled: the stack did not build");
        return Ok(ExitCode::FAILURE);
    };
    let mut images = component_images(&built)?;
    if a.with_third_party {
        images.extend(third_party_images(&built)?);
    }
    if a.with_frontend {
        images.push(frontend_image(built.engine()?, &a.frontend.frontend)?);
    }
    if images.is_empty() {
        bail!("nothing to bundle: no enabled component is published");
    }
    let compression = a.compression.unwrap_or_else(|| compression_for(&output));
    eprintln!(
        "strata: bundling {} images into {} ({compression:?})",
        images.len(),
        output.display()
    );
    let reporter = Reporter::new(a.progress.mode(), "bundle", "blobs");
    let plan = Plan {
        stack: &built.stack.name,
        platforms: &built.platforms,
        output: &output,
        compression,
    };
    let manifest = write_bundle(built.engine()?, images, &plan, &reporter)?;
    reporter.finish();
    let bytes = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
    let mut out = io::stdout().lock();
    for i in &manifest.images {
        writeln!(out, "{}\t{}", i.image, i.id)?;
    }
    eprintln!(
        "strata: wrote {}: {} images, {} members, {:.1} MiB in {:.1}s",
        output.display(),
        manifest.images.len(),
        manifest.members.len(),
        bytes as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// One entry per name of every published component built (with
/// `--platform`, those enabled on at least one platform): `docker load`
/// restores every tag.
fn component_images(built: &Built) -> Result<Vec<BundleImage>> {
    let (stack, engine) = (&built.stack, built.engine()?);
    let mut images = Vec::new();
    let mut missing = Vec::new();
    let built_names: BTreeSet<&str> = built.targets.iter().map(|t| t.component.as_str()).collect();
    for c in stack
        .components
        .iter()
        .filter(|c| c.publish && built_names.contains(c.name.as_str()))
    {
        let tag = c.image.familiar();
        let Some(id) = engine.image_id(&tag)? else {
            missing.push(format!("{tag} (component `{}`)", c.name));
            continue;
        };
        for name in c.names().map(|n| n.familiar()) {
            match engine.image_id(&name)? {
                Some(other) if other == id => images.push(BundleImage {
                    kind: "component".into(),
                    name: c.name.clone(),
                    image: name,
                    id: id.clone(),
                    platforms: Vec::new(),
                }),
                Some(_) => missing.push(format!(
                    "{name} (component `{}`: another image than {tag})",
                    c.name
                )),
                None => missing.push(format!("{name} (component `{}`)", c.name)),
            }
        }
    }
    if !missing.is_empty() {
        bail!("not in the engine after the build: {}", missing.join(", "));
    }
    Ok(images)
}

/// Every platform asked for with `--platform`, in order.
fn asked_platforms(built: &Built) -> Vec<&str> {
    let mut asked: Vec<&str> = Vec::new();
    for p in built.platforms.values().flatten() {
        if !asked.contains(&p.as_str()) {
            asked.push(p);
        }
    }
    asked
}

/// The stack's `[third-party]` images, each pulled if missing (for each
/// platform asked for, if any).
fn third_party_images(built: &Built) -> Result<Vec<BundleImage>> {
    let engine = built.engine()?;
    let mut images = Vec::new();
    let asked = asked_platforms(built);
    for t in &built.stack.third_party {
        let tag = t.image.familiar();
        let id = match engine.image_id(&tag)? {
            Some(id) => id,
            None => {
                eprintln!("strata: pulling third-party image {tag}");
                if asked.is_empty() {
                    engine.pull(&tag)?;
                }
                for p in &asked {
                    engine.pull_for(&tag, Some(p))?;
                }
                engine
                    .image_id(&tag)?
                    .with_context(|| format!("{tag} is not present after pulling it"))?
            }
        };
        images.push(BundleImage {
            kind: "third-party".into(),
            name: t.name.clone(),
            image: tag,
            id,
            platforms: Vec::new(),
        });
    }
    Ok(images)
}

/// The frontend image, which must be in the engine.
fn frontend_image(engine: &Engine, tag: &str) -> Result<BundleImage> {
    let id = engine.image_id(tag)?.with_context(|| {
        format!("the frontend image {tag} is not present (build it, or name it with --frontend)")
    })?;
    Ok(BundleImage {
        kind: "frontend".into(),
        name: "frontend".into(),
        image: tag.to_owned(),
        id,
        platforms: Vec::new(),
    })
}

fn compression_for(path: &Path) -> Compression {
    let name = path.to_string_lossy();
    if name.ends_with(".zst") || name.ends_with(".zstd") {
        Compression::Zstd
    } else {
        Compression::Gzip
    }
}

/// The compressed file being written.
enum Sink {
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
    Zstd(zstd::Encoder<'static, BufWriter<File>>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Gzip(w) => w.write(buf),
            Sink::Zstd(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Gzip(w) => w.flush(),
            Sink::Zstd(w) => w.flush(),
        }
    }
}

impl Sink {
    fn create(path: &Path, c: Compression) -> Result<Sink> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let w = BufWriter::with_capacity(1 << 20, file);
        Ok(match c {
            Compression::Gzip => Sink::Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::default(),
            )),
            Compression::Zstd => {
                let mut e = zstd::Encoder::new(w, 3)?;
                e.include_checksum(true)?;
                Sink::Zstd(e)
            }
        })
    }

    fn finish(self) -> io::Result<()> {
        let mut w = match self {
            Sink::Gzip(e) => e.finish()?,
            Sink::Zstd(e) => e.finish()?,
        };
        w.flush()?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()
    }
}

/// The blobs `docker save` writes for an image (`blobs/sha256/<hex>`): its
/// config (the id) and its layers (the rootfs diff ids).
fn blobs_of(engine: &Engine, image: &BundleImage) -> Result<BTreeSet<String>> {
    let inspect = engine
        .inspect(&image.id)?
        .with_context(|| format!("{} ({}) is no longer present", image.image, image.id))?;
    let layers = inspect.root_fs.and_then(|r| r.layers).unwrap_or_default();
    Ok(std::iter::once(&image.id)
        .chain(&layers)
        .map(|d| d.strip_prefix("sha256:").unwrap_or(d).to_owned())
        .collect())
}

/// Which images are whole in the archive so far: `docker save` writes
/// blobs by digest, not image by image, so an image is whole once its
/// last blob (config or layer) is copied.
struct WholeImages {
    /// The blobs each image still waits for.
    pending: Vec<BTreeSet<String>>,
    images: usize,
    /// The configs and layers of all the images (not the manifests,
    /// which only an OCI layout has).
    known: BTreeSet<String>,
}

impl WholeImages {
    fn new(needs: Vec<BTreeSet<String>>) -> WholeImages {
        WholeImages {
            images: needs.len(),
            known: needs.iter().flatten().cloned().collect(),
            pending: needs,
        }
    }

    /// Records a blob copied; says whether it is a config or a layer.
    fn copied(&mut self, blob: &str) -> bool {
        for needs in &mut self.pending {
            needs.remove(blob);
        }
        self.pending.retain(|n| !n.is_empty());
        self.known.contains(blob)
    }

    /// `2/4 images`.
    fn note(&self) -> String {
        format!(
            "{}/{} images",
            self.images - self.pending.len(),
            self.images
        )
    }
}

/// The blob a member of `docker save`'s output is, by its hex digest.
fn blob_hex(path: &str) -> Option<&str> {
    path.strip_prefix("blobs/sha256/")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Where and how a bundle is written.
struct Plan<'a> {
    /// The stack's name.
    stack: &'a str,
    /// The platforms each component was built for (empty without `--platform`).
    platforms: &'a BTreeMap<String, Vec<String>>,
    output: &'a Path,
    compression: Compression,
}

/// Streams `docker save` of the images into the archive, then appends
/// `strata-bundle.json`; the file appears under its name only when whole.
/// Each blob copied counts on `reporter`, with the images whole so far.
fn write_bundle(
    engine: &Engine,
    images: Vec<BundleImage>,
    plan: &Plan<'_>,
    reporter: &Reporter,
) -> Result<BundleManifest> {
    let partial = {
        let mut p = plan.output.as_os_str().to_owned();
        p.push(".partial");
        PathBuf::from(p)
    };
    match write_to(engine, images, plan, &partial, reporter) {
        Ok(m) => {
            std::fs::rename(&partial, plan.output).with_context(|| {
                format!(
                    "cannot rename {} to {}",
                    partial.display(),
                    plan.output.display()
                )
            })?;
            Ok(m)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// What [`copy_members`] kept of `docker save`'s output.
#[derive(Default)]
struct Copied {
    members: Vec<Member>,
    docker_manifest: Option<Vec<u8>>,
    index: Option<Vec<u8>>,
    blobs: SavedBlobs,
}

/// Writes the bundle to `partial`.
fn write_to(
    engine: &Engine,
    mut images: Vec<BundleImage>,
    plan: &Plan<'_>,
    partial: &Path,
    reporter: &Reporter,
) -> Result<BundleManifest> {
    let mut names: Vec<&str> = images.iter().map(|i| i.image.as_str()).collect();
    names.sort();
    names.dedup();
    let mut whole = WholeImages::new(
        images
            .iter()
            .map(|i| blobs_of(engine, i))
            .collect::<Result<Vec<_>>>()?,
    );
    reporter.set_total(whole.known.len());
    reporter.set_note(&whole.note());
    reporter.set_current("waiting for docker save");
    let export = engine.export(&names).on_wait(|| reporter.tick());
    let mut archive = tar::Archive::new(reporter.reader(export));
    let mut builder = tar::Builder::new(Sink::create(partial, plan.compression)?);
    let copied = copy_members(&mut archive, &mut builder, &mut whole, reporter)?;
    // Engines before Docker 25, and the containerd image store (compressed
    // layers), name layers otherwise: every image is whole now.
    whole.pending.clear();
    reporter.set_note(&whole.note());
    let tags = copied
        .docker_manifest
        .as_deref()
        .map(repo_tags)
        .transpose()?
        .context("docker save's output has no manifest.json")?;
    record_platforms(&mut images, &copied, plan.platforms)?;
    // An image of the containerd image store is loaded from index.json;
    // manifest.json names a platform manifest once, under one of the tags
    // that share it.
    for i in images.iter().filter(|i| i.platforms.is_empty()) {
        if !tags.iter().any(|t| same_tag(t, &i.image)) {
            bail!("docker save's manifest.json does not tag {}", i.image);
        }
    }
    let manifest = BundleManifest {
        format: FORMAT.into(),
        stack: plan.stack.to_owned(),
        strata: env!("CARGO_PKG_VERSION").into(),
        images,
        members: copied.members,
    };
    let json = serde_json::to_vec_pretty(&manifest)?;
    let mut header = tar::Header::new_ustar();
    header.set_size(json.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, BUNDLE_MANIFEST, json.as_slice())?;
    builder.into_inner()?.finish()?;
    Ok(manifest)
}

/// Copies every member of `docker save`'s output into the bundle,
/// hashing each, keeping `manifest.json`, `index.json` and the small JSON
/// blobs (manifests, indexes, configs) to read afterwards.
fn copy_members(
    archive: &mut tar::Archive<impl Read>,
    builder: &mut tar::Builder<Sink>,
    whole: &mut WholeImages,
    reporter: &Reporter,
) -> Result<Copied> {
    let mut copied = Copied::default();
    let mut kept: u64 = 0;
    for entry in archive
        .entries()
        .context("cannot read docker save's output")?
    {
        let mut entry = entry.context("cannot read docker save's output")?;
        reporter.set_current("");
        let path = entry.path()?.to_string_lossy().into_owned();
        if path == BUNDLE_MANIFEST {
            bail!("docker save produced a member named {BUNDLE_MANIFEST}");
        }
        let mut header = entry.header().clone();
        let kind = header.entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let link = entry
                .link_name()?
                .map(|l| l.into_owned())
                .with_context(|| format!("link {path} has no target"))?;
            builder.append_link(&mut header, &path, &link)?;
            continue;
        }
        if !kind.is_file() {
            builder.append_data(&mut header, &path, io::empty())?;
            continue;
        }
        let mut hashing = Hashing::new(&mut entry);
        let blob = blob_hex(&path).map(str::to_owned);
        let keep = header.size()? <= MAX_JSON_MEMBER
            && (blob.is_some() || path == "manifest.json" || path == "index.json");
        if keep {
            let mut data = Vec::new();
            hashing.read_to_end(&mut data)?;
            builder.append_data(&mut header, &path, data.as_slice())?;
            if data.first() == Some(&b'{') || data.first() == Some(&b'[') {
                kept += data.len() as u64;
                if kept > MAX_JSON_TOTAL {
                    bail!(
                        "docker save's JSON members pass {} MiB in all",
                        MAX_JSON_TOTAL >> 20
                    );
                }
                match (&blob, path.as_str()) {
                    (Some(hex), _) => drop(copied.blobs.json.insert(hex.clone(), data)),
                    (None, "manifest.json") => copied.docker_manifest = Some(data),
                    _ => copied.index = Some(data),
                }
            }
        } else {
            builder
                .append_data(&mut header, &path, &mut hashing)
                .with_context(|| format!("cannot copy {path} into the bundle"))?;
        }
        if let Some(hex) = blob {
            copied.blobs.sizes.insert(hex.clone(), hashing.size);
            let known = whole.copied(&hex);
            reporter.set_note(&whole.note());
            if known {
                reporter.item_done();
            }
        }
        copied.members.push(Member {
            path,
            size: hashing.size,
            sha256: hex(&hashing.hasher.finalize()),
        });
    }
    Ok(copied)
}

/// Records the platforms of each image `index.json` names with the id the
/// engine gives it (an engine with the containerd image store), and checks
/// each component carries every platform it was built for.
fn record_platforms(
    images: &mut [BundleImage],
    copied: &Copied,
    built_for: &BTreeMap<String, Vec<String>>,
) -> Result<()> {
    let index = copied
        .index
        .as_deref()
        .map(index_names)
        .transpose()?
        .unwrap_or_default();
    for i in images.iter_mut() {
        if index.get(&tag_key(&i.image)) == Some(&i.id) {
            i.platforms = copied
                .blobs
                .platforms(&i.id)
                .with_context(|| format!("docker save's output for {}", i.image))?;
        }
        if i.kind == "third-party" {
            third_party_platforms(i, built_for);
        }
        let want = match built_for.get(&i.name) {
            Some(w) if i.kind == "component" => w,
            _ => continue,
        };
        if i.platforms.is_empty() && want.len() <= 1 {
            // One platform from the classic store: a plain image.
            continue;
        }
        let lacking: Vec<&str> = want
            .iter()
            .filter(|p| !i.platforms.contains(p))
            .map(String::as_str)
            .collect();
        if !lacking.is_empty() {
            bail!(
                "docker save wrote {} without {}: bundling several platforms needs an engine with the containerd image store (--builder)",
                i.image,
                lacking.join(", ")
            );
        }
    }
    Ok(())
}

/// Says when a third-party image lacks a platform the bundle was asked
/// for (one pulled for another platform only): the bundle carries what the
/// engine holds.
fn third_party_platforms(i: &BundleImage, built_for: &BTreeMap<String, Vec<String>>) {
    let mut lacking: Vec<&str> = Vec::new();
    for p in built_for.values().flatten() {
        if !i.platforms.is_empty() && !i.platforms.contains(p) && !lacking.contains(&p.as_str()) {
            lacking.push(p);
        }
    }
    for p in lacking {
        eprintln!(
            "strata: warning: third-party image {} is in the engine without {p}: the bundle carries it without; `docker pull --platform {p} {}` adds it",
            i.image, i.image
        );
    }
}

/// `strata bundle verify`: a live line of the bytes read on a terminal
/// (verify has no steps to give plain lines for).
fn run_verify(path: &Path, progress: ProgressOpt) -> Result<ExitCode> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reporter = Reporter::new(progress.mode(), "verify", "");
    if let Ok(meta) = file.metadata() {
        reporter.set_total_bytes(meta.len());
    }
    let v = verify_stream(reporter.reader(file), &path.display().to_string());
    reporter.finish();
    let v = v?;
    let mut out = io::stdout().lock();
    for i in &v.manifest.images {
        writeln!(out, "{}\t{}", i.image, i.id)?;
    }
    eprintln!(
        "strata: {}: ok: stack `{}`, {} images, {} members, {:.1} MiB checked",
        path.display(),
        v.manifest.stack,
        v.manifest.images.len(),
        v.manifest.members.len(),
        v.bytes as f64 / (1 << 20) as f64
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_is_whole_once_its_last_blob_is_copied() {
        let set = |b: &[&str]| b.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let mut w = WholeImages::new(vec![set(&["c1", "base", "l1"]), set(&["c2", "base"])]);
        assert_eq!((w.known.len(), w.note()), (4, "0/2 images".to_owned()));
        assert!(w.copied("base"));
        assert!(w.copied("c2"));
        assert_eq!(w.note(), "1/2 images");
        assert!(!w.copied("manifest"));
        assert!(w.copied("l1"));
        assert_eq!(w.note(), "1/2 images");
        assert!(w.copied("c1"));
        assert_eq!(w.note(), "2/2 images");
        let hex = "a".repeat(64);
        assert_eq!(blob_hex(&format!("blobs/sha256/{hex}")), Some(hex.as_str()));
        assert_eq!(blob_hex("blobs/sha256/abc"), None);
        assert_eq!(blob_hex(&format!("{hex}/layer.tar")), None);
    }

    #[test]
    fn compression_follows_the_file_name() {
        assert_eq!(compression_for(Path::new("s.tar.zst")), Compression::Zstd);
        assert_eq!(compression_for(Path::new("s.tar.gz")), Compression::Gzip);
    }
}
