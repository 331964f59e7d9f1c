//! Offline bundles: the format `strata bundle` writes (`docker save`'s tar
//! stream plus `strata-bundle.json`, compressed with gzip or zstd) and
//! [`verify`], which checks a bundle against what `docker load` will do
//! with it.
//!
//! Verification reads the archive once, as a stream, in bounded memory:
//! - `members` reads the tar members as Docker's reader sees them and
//!   rejects anything `docker save` does not write (links, devices, names
//!   that differ once cleaned, duplicates, oversized headers);
//! - `images` follows `manifest.json` and `index.json` to the configs and
//!   layers `docker load` will use, and checks them against the digests and
//!   the image ids `strata-bundle.json` records;
//! - `oci` follows an image of an engine with the containerd image store
//!   (an index of platforms, or one manifest) through its blobs.

mod images;
mod json;
mod members;
mod oci;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use members::{MAX_HEADER_EXTENSION, MAX_JSON_MEMBER, MAX_JSON_TOTAL, MAX_MEMBERS, MAX_NAME};

/// The member that describes the bundle.
pub const BUNDLE_MANIFEST: &str = "strata-bundle.json";
/// The format `strata-bundle.json` declares.
pub const FORMAT: &str = "strata-bundle/1";

/// One image in a bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BundleImage {
    /// `component`, `third-party` or `frontend`.
    pub kind: String,
    /// The component or third-party name.
    pub name: String,
    /// The tag `docker load` restores.
    pub image: String,
    /// The image id.
    pub id: String,
    /// The platforms it holds (`linux/amd64`, ...), in the order of its
    /// index, for an image saved by an engine with the containerd image
    /// store (its id is then the digest `index.json` names it with);
    /// absent for an image saved by the classic store (its id is its config's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
}

/// One member of the archive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Member {
    /// Its path in the tar.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// The sha256 of its content (hex).
    pub sha256: String,
}

/// `strata-bundle.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleManifest {
    /// `strata-bundle/1`.
    pub format: String,
    /// The stack's name.
    pub stack: String,
    /// The Strata version that wrote it.
    pub strata: String,
    /// The images and their tags.
    pub images: Vec<BundleImage>,
    /// Every regular member but this one.
    pub members: Vec<Member>,
}

/// What [`verify`] found.
#[derive(Debug)]
pub struct Verified {
    /// The bundle's description, checked against `manifest.json`.
    pub manifest: BundleManifest,
    /// Bytes of content checked.
    pub bytes: u64,
}

/// Reads through, hashing and counting.
pub struct Hashing<R> {
    /// The reader hashed.
    pub inner: R,
    /// The sha256 of what was read so far.
    pub hasher: Sha256,
    /// The bytes read so far.
    pub size: u64,
}

impl<R> Hashing<R> {
    /// Starts hashing `inner`.
    pub fn new(inner: R) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// The small JSON blobs and the sizes of all the blobs `docker save`
/// wrote, for the writer to read each image's platforms as verify will.
#[derive(Default)]
pub struct SavedBlobs {
    /// The content of each small JSON blob, by hex digest.
    pub json: std::collections::BTreeMap<String, Vec<u8>>,
    /// The size of each blob, by hex digest.
    pub sizes: std::collections::BTreeMap<String, u64>,
}

impl oci::Blobs for SavedBlobs {
    fn json(&self, hex: &str) -> Option<&[u8]> {
        self.json.get(hex).map(Vec::as_slice)
    }
    fn size(&self, hex: &str) -> Option<u64> {
        self.sizes.get(hex).copied()
    }
}

impl SavedBlobs {
    /// The platforms of the image `digest` names (an index or a
    /// manifest), attestation manifests left out.
    pub fn platforms(&self, digest: &str) -> Result<Vec<String>> {
        let walked = oci::walk(self, digest).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(walked.platforms.into_iter().map(|p| p.platform).collect())
    }
}

/// The digest `index.json` (as docker save writes it) names each image
/// with, by its normalised name.
pub fn index_names(data: &[u8]) -> Result<std::collections::BTreeMap<String, String>> {
    let doc = json::parse(data).context("index.json is not JSON")?;
    let mut names = std::collections::BTreeMap::new();
    for d in doc["manifests"].as_array().into_iter().flatten() {
        if let (Some(name), Some(digest)) = (
            d["annotations"]["io.containerd.image.name"].as_str(),
            d["digest"].as_str(),
        ) {
            names.insert(tag_key(name), digest.to_owned());
        }
    }
    Ok(names)
}

/// Lowercase hex of a digest.
pub fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every `RepoTags` entry of docker save's `manifest.json` (the writer's
/// check that `docker save` tagged what was asked).
pub fn repo_tags(data: &[u8]) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Entry {
        #[serde(rename = "RepoTags", default)]
        repo_tags: Option<Vec<String>>,
    }
    let entries: Vec<Entry> =
        serde_json::from_slice(data).context("manifest.json is not docker save's manifest")?;
    Ok(entries
        .into_iter()
        .flat_map(|e| e.repo_tags.unwrap_or_default())
        .collect())
}

/// Docker writes `docker.io/library/x:t` as `x:t`; compare normalised.
pub fn same_tag(a: &str, b: &str) -> bool {
    tag_key(a) == tag_key(b)
}

/// The fully qualified form of a tag, or the tag itself when it does not parse.
pub fn tag_key(tag: &str) -> String {
    crate::graph::ImageRef::parse(tag).map_or_else(|_| tag.to_owned(), |r| r.normalized())
}

/// Verifies the bundle at `path`; see [`verify_stream`].
pub fn verify(path: &Path) -> Result<Verified> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    verify_stream(file, &path.display().to_string())
}

/// Reads a whole bundle (gzip, zstd or plain tar) from `input` and checks
/// that `docker load` will load exactly the images and ids its
/// `strata-bundle.json` lists, and that no member is damaged. `display`
/// names the bundle in errors. Memory stays bounded whatever the input.
pub fn verify_stream(input: impl Read, display: &str) -> Result<Verified> {
    let mut input = BufReader::with_capacity(1 << 20, input);
    let magic = input
        .fill_buf()
        .with_context(|| format!("cannot read {display}"))?
        .to_vec();
    let decoder: Box<dyn Read + '_> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(input))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(
            zstd::Decoder::with_buffer(input)
                .with_context(|| format!("{display}: cannot start the zstd decoder"))?,
        )
    } else {
        Box::new(input)
    };
    let read = members::read(decoder);
    let m = &read.members;
    let Some(json) = m.json(BUNDLE_MANIFEST) else {
        match (&read.error, m.file(BUNDLE_MANIFEST)) {
            (Some(e), _) => bail!("{display}: {e:#}"),
            (None, Some(_)) => bail!(
                "{display}: member `{BUNDLE_MANIFEST}` is not JSON or is over {} MiB",
                MAX_JSON_MEMBER >> 20
            ),
            (None, None) => bail!(
                "{display}: no {BUNDLE_MANIFEST}: the archive is truncated, or was not written by `strata bundle`"
            ),
        }
    };
    let manifest: BundleManifest = serde_json::from_slice(json)
        .with_context(|| format!("{display}: member `{BUNDLE_MANIFEST}` is corrupt"))?;
    if manifest.format != FORMAT {
        bail!(
            "{display}: unknown bundle format `{}` (this Strata reads {FORMAT})",
            manifest.format
        );
    }
    let mut problems: Vec<String> = read.error.iter().map(|e| format!("{e:#}")).collect();
    check_listed_members(m, &manifest, &mut problems);
    if read.error.is_none() {
        images::check(m, &manifest, &mut problems);
    }
    if !problems.is_empty() {
        let n = problems.len();
        let shown: Vec<String> = problems.into_iter().take(20).collect();
        bail!(
            "{display}: {n} problem{}:\n  {}",
            if n == 1 { "" } else { "s" },
            shown.join("\n  ")
        );
    }
    Ok(Verified {
        manifest,
        bytes: m.bytes,
    })
}

/// Every regular member is listed in `strata-bundle.json` with its size
/// and sha256, and every listed member is there.
fn check_listed_members(m: &members::Members, manifest: &BundleManifest, out: &mut Vec<String>) {
    let mut listed = std::collections::BTreeSet::new();
    for l in &manifest.members {
        if !listed.insert(l.path.as_str()) {
            out.push(format!(
                "member `{}` is listed twice in {BUNDLE_MANIFEST}",
                l.path
            ));
        }
        match m.file(&l.path) {
            None => out.push(format!("member `{}` is missing", l.path)),
            Some(f) if f.size != l.size || f.sha256 != l.sha256 => out.push(format!(
                "member `{}` is corrupt: sha256 {} ({} bytes), recorded {} ({} bytes)",
                l.path, f.sha256, f.size, l.sha256, l.size
            )),
            Some(_) => {}
        }
    }
    for (name, _) in m.files() {
        if name != BUNDLE_MANIFEST && !listed.contains(name) {
            out.push(format!(
                "member `{name}` is not listed in {BUNDLE_MANIFEST}"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_compare_normalised() {
        assert!(same_tag(
            "debian:bookworm",
            "docker.io/library/debian:bookworm"
        ));
        assert!(!same_tag("debian:bookworm", "debian:bullseye"));
    }
}
