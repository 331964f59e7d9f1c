//! `strata build --cache-from/--cache-to`: BuildKit's cache entries in
//! its own syntax, each component's cache kept apart.
//!
//! - `type=registry,ref=REF`: one tag per component, `REF:<component>`
//!   (`REF:<tag>-<component>` when REF has a tag).
//! - `type=local,dest=DIR` / `type=local,src=DIR`: DIR is an OCI layout
//!   that this client serves to BuildKit over the session (the `Content`
//!   service, store `local:DIR`); each component's cache manifest is one
//!   `index.json` entry tagged `<component>` (`<tag>-<component>` with
//!   `tag=`), as BuildKit's client tags one with `tag=`. Before the build
//!   the tags are read for the imports' `digest`; after each solve the
//!   exported manifest (`cache.manifest` in the solve's response) is
//!   tagged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use strata_proto::control::CacheOptionsEntry;

use super::build::Target;
use crate::client::layout::{Digest, Layout};

/// The solve response key that holds the exported cache manifest's descriptor.
const CACHE_MANIFEST: &str = "cache.manifest";

/// A `--cache-from` value: a cache entry, or a bare registry reference.
pub fn cache_import(s: &str) -> Result<CacheOptionsEntry, String> {
    let entry = cache_entry(s)?;
    if entry.r#type == "local" && entry.attrs.get("src").is_none_or(String::is_empty) {
        return Err("a local cache to import needs src=DIR (type=local,src=DIR)".into());
    }
    Ok(entry)
}

/// A `--cache-to` value: a cache entry, or a bare registry reference.
pub fn cache_export(s: &str) -> Result<CacheOptionsEntry, String> {
    let entry = cache_entry(s)?;
    if entry.r#type == "local" && entry.attrs.get("dest").is_none_or(String::is_empty) {
        return Err("a local cache to export needs dest=DIR (type=local,dest=DIR)".into());
    }
    Ok(entry)
}

/// A cache entry in BuildKit's syntax (`type=registry,ref=...,mode=max`);
/// a bare reference is a registry cache.
fn cache_entry(s: &str) -> Result<CacheOptionsEntry, String> {
    let mut entry = CacheOptionsEntry::default();
    if !s.contains('=') {
        entry.r#type = "registry".into();
        entry.attrs.insert("ref".into(), s.to_owned());
        return Ok(entry);
    }
    for field in s.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let Some((k, v)) = field.split_once('=') else {
            return Err(format!(
                "`{field}` is not key=value (as in type=registry,ref=host/cache)"
            ));
        };
        if k == "type" {
            entry.r#type = v.to_owned();
        } else {
            entry.attrs.insert(k.to_owned(), v.to_owned());
        }
    }
    match entry.r#type.as_str() {
        "registry" | "local" | "inline" | "gha" | "s3" | "azblob" => Ok(entry),
        "" => Err(
            "no type= (use type=registry,ref=host/cache, type=local,dest=DIR or type=inline)"
                .into(),
        ),
        t => Err(format!(
            "unknown cache type `{t}`: use registry, local, inline, gha, s3 or azblob"
        )),
    }
}

/// The cache of one `strata build`.
pub struct CachePlan {
    /// What every component imports: every component's cache.
    imports: Vec<CacheOptionsEntry>,
    /// The exports as given, expanded per component by [`CachePlan::exports_for`].
    exports: Vec<CacheOptionsEntry>,
    /// The local cache directories the session serves, by store id.
    pub stores: BTreeMap<String, PathBuf>,
}

impl CachePlan {
    /// Resolves the entries for `targets`: local directories made
    /// absolute, export directories created, import directories read (an
    /// error when one is missing or is no cache directory).
    pub fn new(
        from: &[CacheOptionsEntry],
        to: &[CacheOptionsEntry],
        targets: &[Target],
    ) -> Result<CachePlan> {
        let mut plan = CachePlan {
            imports: Vec::new(),
            exports: Vec::new(),
            stores: BTreeMap::new(),
        };
        for e in to {
            let mut e = e.clone();
            if e.r#type == "local" {
                let dir = plan.serve(&mut e, "dest")?;
                Layout::new(&dir).create()?;
            }
            plan.exports.push(e);
        }
        for e in from {
            if e.r#type != "local" {
                plan.imports
                    .extend(targets.iter().map(|t| per_component(e, t)));
                continue;
            }
            let mut e = e.clone();
            let dir = plan.serve(&mut e, "src")?;
            if let Some(digest) = e.attrs.get("digest") {
                // An explicit manifest: imported as given, by every component.
                check_manifest(&dir, digest)?;
                plan.imports.push(e);
                continue;
            }
            plan.imports.extend(local_imports(&e, &dir, targets)?);
        }
        Ok(plan)
    }

    /// Makes a local entry's directory (`attr`) absolute and serves it.
    fn serve(&mut self, e: &mut CacheOptionsEntry, attr: &str) -> Result<PathBuf> {
        let given = e.attrs.get(attr).cloned().unwrap_or_default();
        let dir = std::path::absolute(&given)
            .with_context(|| format!("cannot resolve the cache directory {given}"))?;
        let text = dir
            .to_str()
            .with_context(|| format!("the cache directory {} is not UTF-8", dir.display()))?
            .to_owned();
        self.stores.insert(format!("local:{text}"), dir.clone());
        e.attrs.insert(attr.to_owned(), text);
        Ok(dir)
    }

    /// What every component imports.
    pub fn imports(&self) -> &[CacheOptionsEntry] {
        &self.imports
    }

    /// What component `t` exports: each entry with its own tag.
    pub fn exports_for(&self, t: &Target) -> Vec<CacheOptionsEntry> {
        self.exports.iter().map(|e| per_component(e, t)).collect()
    }

    /// After `t`'s solve: tags the cache manifest it exported in each
    /// local cache directory.
    pub fn record(&self, t: &Target, response: &BTreeMap<String, String>) -> Result<()> {
        let Some(text) = response.get(CACHE_MANIFEST) else {
            return Ok(());
        };
        let descriptor: serde_json::Value = serde_json::from_str(text)
            .with_context(|| format!("BuildKit's {CACHE_MANIFEST} is not JSON: {text}"))?;
        for e in self.exports_for(t).iter().filter(|e| e.r#type == "local") {
            let (Some(dir), Some(tag)) = (e.attrs.get("dest"), e.attrs.get("tag")) else {
                continue;
            };
            Layout::new(dir).put(tag, &descriptor)?;
        }
        Ok(())
    }
}

/// An error unless the cache directory to import, `dir`, exists.
fn existing(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        let shown = dir.display();
        bail!("--cache-from type=local,src={shown}: no such directory (write one with --cache-to type=local,dest={shown})");
    }
    Ok(())
}

/// Checks that the cache directory `dir` holds the manifest `digest`.
fn check_manifest(dir: &Path, digest: &str) -> Result<()> {
    let shown = dir.display();
    let digest = Digest::parse(digest)
        .map_err(|e| anyhow::anyhow!("--cache-from type=local,src={shown}: digest={e}"))?;
    existing(dir)?;
    if !Layout::new(dir).blob(&digest).is_file() {
        bail!(
            "--cache-from type=local,src={shown}: the manifest {digest} is not there (no blobs/sha256/{})",
            digest.hex()
        );
    }
    Ok(())
}

/// The imports of a local cache directory: one per component that has a
/// manifest tagged in it, with its digest.
fn local_imports(
    e: &CacheOptionsEntry,
    dir: &Path,
    targets: &[Target],
) -> Result<Vec<CacheOptionsEntry>> {
    let shown = dir.display();
    existing(dir)?;
    let layout = Layout::new(dir);
    let mut imports = Vec::new();
    for t in targets {
        let mut e = per_component(e, t);
        let tag = e.attrs.get("tag").cloned().unwrap_or_default();
        let entry = layout.tagged(&tag).with_context(|| {
            format!("--cache-from type=local,src={shown}: not a cache directory written by --cache-to type=local")
        })?;
        let Some(entry) = entry else {
            eprintln!(
                "strata: warning: {shown} holds no cache for component `{}` (no index.json entry `{tag}`)",
                t.component
            );
            continue;
        };
        if !layout.blob(&entry.digest).is_file() {
            bail!(
                "--cache-from type=local,src={shown}: index.json names {} for `{tag}` but blobs/sha256/{} is missing",
                entry.digest,
                entry.digest.hex()
            );
        }
        e.attrs.insert("digest".into(), entry.digest.to_string());
        imports.push(e);
    }
    Ok(imports)
}

/// A cache entry for one component: a registry cache gets its own tag
/// under the given reference (`REF:<component>`, or `REF:<tag>-<component>`
/// when REF has a tag), a local one its own `index.json` tag
/// (`<component>`, or `<tag>-<component>` with `tag=`), so sibling
/// components do not overwrite each other's cache.
fn per_component(e: &CacheOptionsEntry, t: &Target) -> CacheOptionsEntry {
    let mut e = e.clone();
    match e.r#type.as_str() {
        "registry" => {
            if let Some(r) = e.attrs.get_mut("ref") {
                let tagged = r
                    .rsplit_once(':')
                    .is_some_and(|(_, tag)| !tag.contains('/'));
                let sep = if tagged { '-' } else { ':' };
                *r = format!("{r}{sep}{}", t.name);
            }
        }
        "local" => {
            let tag = match e.attrs.get("tag") {
                Some(tag) if !tag.is_empty() => format!("{tag}-{}", t.name),
                _ => t.name.clone(),
            };
            e.attrs.insert("tag".into(), tag);
        }
        _ => {}
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str) -> Target {
        Target {
            name: name.into(),
            component: name.into(),
            image: format!("x/{name}"),
            names: vec![format!("x/{name}")],
        }
    }

    #[test]
    fn entries_parse_in_buildkits_syntax() {
        let e = cache_export("type=local,dest=out/cache,mode=max").expect("valid");
        assert_eq!(e.r#type, "local");
        assert_eq!(e.attrs["dest"], "out/cache");
        assert_eq!(e.attrs["mode"], "max");
        let bare = cache_import("host/cache").expect("a reference");
        assert_eq!(
            (bare.r#type.as_str(), bare.attrs["ref"].as_str()),
            ("registry", "host/cache")
        );
        let no_src = cache_import("type=local,dest=x").expect_err("src is needed");
        assert!(no_src.contains("src=DIR"), "{no_src}");
        let no_dest = cache_export("type=local").expect_err("dest is needed");
        assert!(no_dest.contains("dest=DIR"), "{no_dest}");
        assert!(cache_export("type=floppy").is_err());
    }

    #[test]
    fn each_component_has_its_own_tag() {
        let local = cache_export("type=local,dest=/c").expect("valid");
        assert_eq!(per_component(&local, &target("app")).attrs["tag"], "app");
        let tagged = cache_export("type=local,dest=/c,tag=v1").expect("valid");
        assert_eq!(
            per_component(&tagged, &target("app")).attrs["tag"],
            "v1-app"
        );
        let reg = cache_export("host:5000/cache").expect("valid");
        assert_eq!(
            per_component(&reg, &target("app")).attrs["ref"],
            "host:5000/cache:app"
        );
        let reg = cache_export("host:5000/cache:main").expect("valid");
        assert_eq!(
            per_component(&reg, &target("app")).attrs["ref"],
            "host:5000/cache:main-app"
        );
    }

    #[test]
    fn a_missing_or_foreign_source_directory_is_an_error() {
        let missing = cache_import("type=local,src=/nonexistent/strata-cache").expect("parses");
        let err = CachePlan::new(&[missing], &[], &[target("app")])
            .err()
            .expect("an error");
        assert!(err.to_string().contains("no such directory"), "{err:#}");
        let dir = std::env::temp_dir().join(format!("strata-cache-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let empty = cache_import(&format!("type=local,src={}", dir.display())).expect("parses");
        let err = CachePlan::new(&[empty], &[], &[target("app")])
            .err()
            .expect("an error");
        assert!(
            format!("{err:#}").contains("not a cache directory"),
            "{err:#}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
