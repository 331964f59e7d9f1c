//! A local cache directory as BuildKit's own client keeps it: an OCI image
//! layout (`oci-layout`, `index.json`, `blobs/sha256/<hex>`) whose
//! `index.json` names each cache manifest by a tag (the
//! `org.opencontainers.image.ref.name` annotation), one entry per tag.
//! Blob paths are only ever built from a [`Digest`], which checks its text.

use std::fmt;
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// The annotation that names an `index.json` entry.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A sha256 content digest (`sha256:` and 64 lowercase hex digits).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Checks `text`: only sha256 digests, as BuildKit writes them.
    pub fn parse(text: &str) -> Result<Digest, String> {
        let Some(hex) = text.strip_prefix("sha256:") else {
            return Err(format!(
                "{text:?} is not a sha256 digest (sha256:<64 hex digits>)"
            ));
        };
        let hex_ok = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex_ok {
            return Err(format!(
                "{text:?} is not a sha256 digest (sha256:<64 hex digits>)"
            ));
        }
        Ok(Digest(hex.to_owned()))
    }

    /// The digest of what `hasher` has seen.
    pub fn of(hasher: &sha2::Sha256) -> Digest {
        use sha2::Digest as _;
        let sum = hasher.clone().finalize();
        Digest(sum.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0)
    }
}

/// One entry of `index.json`: the cache manifest a tag names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The manifest's digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// A cache directory.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// The layout in `dir` (nothing is read or written yet).
    pub fn new(dir: impl Into<PathBuf>) -> Layout {
        Layout { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the blob `digest` is (or goes).
    pub fn blob(&self, digest: &Digest) -> PathBuf {
        self.blobs().join(digest.hex())
    }

    /// The directory of sha256 blobs.
    pub fn blobs(&self) -> PathBuf {
        self.dir.join("blobs").join("sha256")
    }

    /// Where writes in progress live (the same file system as the blobs,
    /// so a finished one is renamed into place).
    pub fn ingest(&self) -> PathBuf {
        self.dir.join("ingest")
    }

    /// Creates the directory and its blob and ingest directories.
    pub fn create(&self) -> Result<()> {
        for d in [self.blobs(), self.ingest()] {
            fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        Ok(())
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    /// The `index.json` document; an error when it is missing or no index.
    pub fn index(&self) -> Result<Value> {
        let path = self.index_path();
        let text = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let doc: Value = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        if !doc.get("manifests").is_none_or(Value::is_array) || !doc.is_object() {
            bail!("{} is not an OCI image index", path.display());
        }
        Ok(doc)
    }

    /// The manifest `tag` names in `index.json`, if any.
    pub fn tagged(&self, tag: &str) -> Result<Option<Entry>> {
        let doc = self.index()?;
        let Some(found) = manifests(&doc).find(|m| m["annotations"][REF_NAME] == tag) else {
            return Ok(None);
        };
        let path = self.index_path();
        let digest = found["digest"].as_str().unwrap_or_default();
        let digest = Digest::parse(digest).map_err(|e| {
            anyhow::anyhow!(
                "{}: the entry `{tag}` has no valid digest: {e}",
                path.display()
            )
        })?;
        let Some(size) = found["size"].as_u64() else {
            bail!("{}: the entry `{tag}` has no size", path.display());
        };
        Ok(Some(Entry { digest, size }))
    }

    /// Names `descriptor` (a manifest's OCI descriptor) `tag` in
    /// `index.json`, replacing what the tag named, and writes `oci-layout`;
    /// `index.json` is replaced whole (a new file renamed over it) under
    /// the `index.json.lock` lock BuildKit's client also takes.
    pub fn put(&self, tag: &str, descriptor: &Value) -> Result<()> {
        let _lock = self.lock()?;
        let layout_file = self.dir.join("oci-layout");
        fs::write(&layout_file, br#"{"imageLayoutVersion":"1.0.0"}"#)
            .with_context(|| format!("cannot write {}", layout_file.display()))?;
        let mut doc = if self.index_path().exists() {
            self.index()?
        } else {
            serde_json::json!({ "schemaVersion": 2, "manifests": [] })
        };
        let mut entry = descriptor.clone();
        if !entry.is_object() {
            bail!("the cache manifest descriptor is not an object: {descriptor}");
        }
        entry["annotations"][REF_NAME] = Value::from(tag);
        let mut list: Vec<Value> = manifests(&doc)
            .filter(|m| m["annotations"][REF_NAME] != tag)
            .cloned()
            .collect();
        list.push(entry);
        doc["manifests"] = Value::from(list);
        let tmp = self
            .dir
            .join(format!("index.json.{}.tmp", std::process::id()));
        let written = File::create(&tmp).and_then(|mut f| {
            f.write_all(doc.to_string().as_bytes())?;
            f.sync_all()
        });
        written
            .and_then(|()| fs::rename(&tmp, self.index_path()))
            .with_context(|| format!("cannot write {}", self.index_path().display()))
            .inspect_err(|_| {
                let _ = fs::remove_file(&tmp);
            })
    }

    /// An exclusive lock on `index.json.lock`, held until dropped.
    fn lock(&self) -> Result<File> {
        let path = self.dir.join("index.json.lock");
        let file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            bail!(
                "cannot lock {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        Ok(file)
    }
}

/// The entries of an index document.
fn manifests(doc: &Value) -> impl Iterator<Item = &Value> {
    doc["manifests"].as_array().into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sha256_digests_in_hex_make_paths() {
        let hex = "a".repeat(64);
        let d = Digest::parse(&format!("sha256:{hex}")).expect("valid");
        assert_eq!(
            Layout::new("/c").blob(&d),
            Path::new("/c/blobs/sha256").join(&hex)
        );
        for bad in [
            format!("sha512:{hex}"),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            "sha256:../../etc/passwd".to_owned(),
            format!("sha256:{}/x", "a".repeat(62)),
            String::new(),
        ] {
            assert!(Digest::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_tag_names_one_entry_and_other_tags_are_kept() {
        let dir = std::env::temp_dir().join(format!("strata-layout-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let layout = Layout::new(&dir);
        layout.create().expect("create");
        let desc = |c: char| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": format!("sha256:{}", c.to_string().repeat(64)),
                "size": 42,
            })
        };
        layout.put("base", &desc('a')).expect("put base");
        layout.put("app", &desc('b')).expect("put app");
        layout.put("base", &desc('c')).expect("put base again");
        let doc = layout.index().expect("index");
        assert_eq!(doc["schemaVersion"], 2);
        assert_eq!(doc["manifests"].as_array().map(Vec::len), Some(2), "{doc}");
        let base = layout.tagged("base").expect("read").expect("base is there");
        assert_eq!(base.digest.hex(), "c".repeat(64));
        assert_eq!(base.size, 42);
        assert!(layout.tagged("other").expect("read").is_none());
        let layout_file = fs::read_to_string(dir.join("oci-layout")).expect("oci-layout");
        assert_eq!(layout_file, r#"{"imageLayoutVersion":"1.0.0"}"#);
        fs::write(dir.join("index.json"), "not json").expect("write");
        assert!(layout.tagged("base").is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}
