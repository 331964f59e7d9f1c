//! What `docker load` will load: `manifest.json` (and, for an engine with
//! the containerd image store, `index.json`) followed to the configs and
//! layers, checked against their digests and against `strata-bundle.json`.
//!
//! An image id is the sha256 of its config, and `docker load` checks every
//! layer against the config's `diff_ids`; so a tag whose config hashes to
//! the id `strata-bundle.json` records is that image, layer for layer.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::json::{self, field};
use super::members::{is_hex64, normalise, FileInfo, Kind, Members};
use super::oci::{self, Blobs};
use super::{tag_key, BundleImage, BundleManifest, BUNDLE_MANIFEST};

/// The keys docker save writes in a `manifest.json` entry.
const MANIFEST_KEYS: [&str; 5] = ["Config", "RepoTags", "Layers", "LayerSources", "Parent"];
/// The annotation that names an image in `index.json`.
const IMAGE_NAME: &str = "io.containerd.image.name";

/// One tag `manifest.json` gives.
struct Tagged {
    tag: String,
    /// `sha256:` and the sha256 of its config: the image id on an engine
    /// without the containerd image store.
    id: String,
    config: String,
    /// The sha256 of each layer member, in order.
    layers: Vec<String>,
}

/// Checks blobs, `manifest.json`, `index.json` and the images of `strata-bundle.json`.
pub(super) fn check(m: &Members, bundle: &BundleManifest, out: &mut Vec<String>) {
    check_blob_names(m, out);
    let oci: BTreeSet<String> = bundle
        .images
        .iter()
        .filter(|i| !i.platforms.is_empty())
        .map(|i| tag_key(&i.image))
        .collect();
    let Some(tags) = manifest_tags(m, &oci, out) else {
        return;
    };
    let index = check_index(m, &tags, &oci, out);
    for i in &bundle.images {
        if i.platforms.is_empty() {
            check_saved(i, &tags, out);
        } else {
            check_platforms(m, i, &tags, &index, out);
        }
    }
    for (key, t) in &tags {
        if !bundle.images.iter().any(|i| tag_key(&i.image) == *key) {
            out.push(format!(
                "manifest.json tags {} (config `{}`), which {BUNDLE_MANIFEST} does not list",
                t.tag, t.config
            ));
        }
    }
}

/// An image of an engine without the containerd image store: its id is
/// the config `manifest.json` gives its tag.
fn check_saved(i: &BundleImage, tags: &BTreeMap<String, Tagged>, out: &mut Vec<String>) {
    match tags.get(&tag_key(&i.image)) {
        None => out.push(format!("manifest.json does not tag {}", i.image)),
        Some(t) if t.id != i.id => out.push(format!(
            "{BUNDLE_MANIFEST} gives {} the id {}, but docker load gives it {} (config `{}` in manifest.json)",
            i.image, i.id, t.id, t.config
        )),
        Some(_) => {}
    }
}

/// An image of an engine with the containerd image store (what a bundle
/// of several platforms holds): `index.json` names it with its id, an
/// index (or manifest) whose platforms are the ones `strata-bundle.json`
/// records; `manifest.json`, what an engine without that store loads,
/// gives its tag (if at all) one of those platforms, config and layers alike.
fn check_platforms(
    m: &Members,
    i: &BundleImage,
    tags: &BTreeMap<String, Tagged>,
    index: &BTreeMap<String, String>,
    out: &mut Vec<String>,
) {
    let key = tag_key(&i.image);
    match index.get(&key) {
        None => return out.push(format!("index.json does not name {}", i.image)),
        Some(d) if *d != i.id => {
            return out.push(format!(
                "{BUNDLE_MANIFEST} gives {} the id {}, but docker load gives it {d} (index.json)",
                i.image, i.id
            ))
        }
        Some(_) => {}
    }
    let walked = match oci::walk(m, &i.id) {
        Ok(w) => w,
        Err(e) => return out.push(format!("{} (index.json): {e}", i.image)),
    };
    let found: Vec<&str> = walked
        .platforms
        .iter()
        .map(|p| p.platform.as_str())
        .collect();
    if found != i.platforms {
        let absent = match walked.absent.is_empty() {
            true => String::new(),
            false => format!(
                " (its index names {} too, whose manifests are missing)",
                walked.absent.join(", ")
            ),
        };
        out.push(format!(
            "{BUNDLE_MANIFEST} records {} for {}, but the bundle holds {}{absent}",
            i.platforms.join(", "),
            i.image,
            found.join(", ")
        ));
    }
    // docker save names a platform manifest once in manifest.json, under
    // one of the tags that share it: an engine without the containerd
    // image store loads the others from no tag.
    let Some(t) = tags.get(&key) else {
        return;
    };
    let config = t.id.trim_start_matches("sha256:");
    match walked.platforms.iter().find(|p| p.config == config) {
        None => out.push(format!(
            "manifest.json gives {} the config `{}`, which none of its platforms in index.json has",
            i.image, t.config
        )),
        Some(p) if p.layers != t.layers => out.push(format!(
            "manifest.json gives {} other layers than its {} manifest in index.json",
            i.image, p.platform
        )),
        Some(_) => {}
    }
}

/// Every `blobs/...` member is `blobs/sha256/<its sha256>`.
fn check_blob_names(m: &Members, out: &mut Vec<String>) {
    for (name, f) in m.files() {
        let Some(rest) = name.strip_prefix("blobs/") else {
            continue;
        };
        match rest.strip_prefix("sha256/") {
            Some(h) if is_hex64(h) => {
                if h != f.sha256 {
                    out.push(format!(
                        "member `{name}` is corrupt: its content has sha256 {}",
                        f.sha256
                    ));
                }
            }
            _ => out.push(format!(
                "member `{name}`: docker save names blobs `blobs/sha256/<sha256>`"
            )),
        }
    }
}

/// The regular member a path in `manifest.json` or `index.json` names,
/// after a legacy layer link.
fn resolve<'m>(m: &'m Members, path: &str) -> Result<(String, &'m FileInfo), String> {
    let name = normalise(path).ok_or_else(|| format!("`{path}` is outside the archive"))?;
    let target = match m.by_name.get(&name) {
        Some(Kind::LayerLink(t)) => t.clone(),
        _ => name,
    };
    match m.by_name.get(&target) {
        Some(Kind::File(f)) => Ok((target, f)),
        Some(_) => Err(format!("member `{target}` is not a regular file")),
        None => Err(format!("member `{target}` is missing")),
    }
}

/// A JSON member that must be there, parsed with duplicate keys rejected.
fn json_member(m: &Members, name: &str) -> Result<Value, String> {
    let data = m.json(name).ok_or_else(|| match m.file(name) {
        Some(_) => format!(
            "member `{name}` is not JSON or is over {} MiB",
            super::MAX_JSON_MEMBER >> 20
        ),
        None => format!("member `{name}` is missing"),
    })?;
    json::parse(data).map_err(|e| format!("member `{name}` is not valid JSON: {e}"))
}

/// The tags of `manifest.json`, by their normalised form, each checked
/// down to its config and layers (the layers of an image of `oci`, whose
/// blobs are compressed, are checked against its index instead of its
/// config's `diff_ids`). None when it cannot be read.
fn manifest_tags(
    m: &Members,
    oci: &BTreeSet<String>,
    out: &mut Vec<String>,
) -> Option<BTreeMap<String, Tagged>> {
    let doc = match json_member(m, "manifest.json") {
        Ok(d) => d,
        Err(e) => {
            out.push(format!("{e}: docker load cannot read the archive"));
            return None;
        }
    };
    let Some(entries) = doc.as_array() else {
        out.push("member `manifest.json` is not a list of images".into());
        return None;
    };
    let mut tags = BTreeMap::new();
    for (n, entry) in entries.iter().enumerate() {
        let at = format!("member `manifest.json`, image {}", n + 1);
        if let Err(e) = manifest_entry(m, entry, oci, &mut tags) {
            out.push(format!("{at}: {e}"));
        }
    }
    Some(tags)
}

/// One `manifest.json` entry: its tags, its config, its layers.
fn manifest_entry(
    m: &Members,
    entry: &Value,
    oci: &BTreeSet<String>,
    tags: &mut BTreeMap<String, Tagged>,
) -> Result<(), String> {
    let object = entry.as_object().ok_or("not an object")?;
    if let Some(k) = object.keys().find(|k| !MANIFEST_KEYS.contains(&k.as_str())) {
        return Err(format!("key `{k}` is not one docker save writes"));
    }
    let config_path = object
        .get("Config")
        .and_then(Value::as_str)
        .ok_or("no `Config`")?;
    let (config, info) = resolve(m, config_path).map_err(|e| format!("config: {e}"))?;
    let id = format!("sha256:{}", info.sha256);
    let names = entry_tags(object, &config)?;
    let compressed = names.iter().all(|t| oci.contains(&tag_key(t)));
    let layers = entry_layers(m, object, &config, compressed)?;
    for tag in names {
        let key = tag_key(tag);
        if tags.contains_key(&key) {
            return Err(format!(
                "tag {tag} is given twice: docker load keeps the last"
            ));
        }
        tags.insert(
            key,
            Tagged {
                tag: tag.to_owned(),
                id: id.clone(),
                config: config.clone(),
                layers: layers.clone(),
            },
        );
    }
    Ok(())
}

/// The `RepoTags` of a `manifest.json` entry: at least one, each as docker save writes it.
fn entry_tags<'v>(object: &'v Map<String, Value>, config: &str) -> Result<Vec<&'v str>, String> {
    let repo_tags = match object.get("RepoTags") {
        Some(Value::Array(t)) => t.as_slice(),
        None | Some(Value::Null) => &[],
        Some(_) => return Err("`RepoTags` is not a list".into()),
    };
    if repo_tags.is_empty() {
        return Err(format!(
            "config `{config}` has no tag: docker load would load an image {BUNDLE_MANIFEST} does not list"
        ));
    }
    repo_tags
        .iter()
        .map(|t| {
            let tag = t.as_str().ok_or("a tag is not a string")?;
            if !is_saved_tag(tag) {
                return Err(format!("tag `{tag}` is not in the form docker save writes"));
            }
            Ok(tag)
        })
        .collect()
}

/// The sha256 of each layer of a `manifest.json` entry, one per
/// `diff_id` of its config; unless `compressed`, each must be its `diff_id`.
fn entry_layers(
    m: &Members,
    object: &Map<String, Value>,
    config: &str,
    compressed: bool,
) -> Result<Vec<String>, String> {
    let diff_ids = config_diff_ids(m, config)?;
    let layers = match object.get("Layers") {
        Some(Value::Array(l)) => l.as_slice(),
        _ => return Err("no `Layers` list".into()),
    };
    if layers.len() != diff_ids.len() {
        return Err(format!(
            "{} layers, but config `{config}` has {}",
            layers.len(),
            diff_ids.len()
        ));
    }
    let mut out = Vec::with_capacity(layers.len());
    for (i, (layer, diff_id)) in layers.iter().zip(&diff_ids).enumerate() {
        let path = layer.as_str().ok_or("a layer is not a path")?;
        let (name, f) = resolve(m, path).map_err(|e| format!("layer {}: {e}", i + 1))?;
        if !compressed && diff_id.strip_prefix("sha256:") != Some(f.sha256.as_str()) {
            return Err(format!(
                "layer {} (member `{name}`) has sha256 {}, but config `{config}` expects {diff_id}",
                i + 1,
                f.sha256
            ));
        }
        out.push(f.sha256.clone());
    }
    Ok(out)
}

/// docker save writes a tag in Docker's short form, with a tag and no digest.
fn is_saved_tag(tag: &str) -> bool {
    crate::graph::ImageRef::parse(tag).is_ok_and(|r| {
        r.tag.is_some()
            && r.digest.is_none()
            && r.registry != "index.docker.io"
            && r.familiar() == tag
    })
}

/// The config's `rootfs.diff_ids`, read as docker load reads them.
fn config_diff_ids(m: &Members, config: &str) -> Result<Vec<String>, String> {
    let doc = json_member(m, config)?;
    let in_config = |e: String| format!("config `{config}`: {e}");
    let object = doc
        .as_object()
        .ok_or_else(|| in_config("not an object".into()))?;
    let rootfs = field(object, "rootfs")
        .map_err(in_config)?
        .and_then(Value::as_object)
        .ok_or_else(|| in_config("no `rootfs`".into()))?;
    let diff_ids = field(rootfs, "diff_ids")
        .map_err(in_config)?
        .and_then(Value::as_array)
        .ok_or_else(|| in_config("no `rootfs.diff_ids`".into()))?;
    diff_ids
        .iter()
        .map(|d| {
            d.as_str()
                .map(str::to_owned)
                .ok_or_else(|| in_config("a diff id is not a string".into()))
        })
        .collect()
}

/// `index.json` (read by an engine with the containerd image store) names
/// each image: one of `oci` with the digest returned (checked by the
/// caller), any other with the config `manifest.json` gives it.
fn check_index(
    m: &Members,
    tags: &BTreeMap<String, Tagged>,
    oci: &BTreeSet<String>,
    out: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let mut named = BTreeMap::new();
    if m.file("index.json").is_none() {
        return named;
    }
    let doc = match json_member(m, "index.json") {
        Ok(d) => d,
        Err(e) => {
            out.push(e);
            return named;
        }
    };
    let manifests = doc
        .as_object()
        .map(|o| field(o, "manifests"))
        .transpose()
        .map(Option::flatten);
    let manifests = match manifests {
        Ok(Some(Value::Array(a))) => a,
        Ok(_) => {
            out.push("member `index.json` has no `manifests` list".into());
            return named;
        }
        Err(e) => {
            out.push(format!("member `index.json`: {e}"));
            return named;
        }
    };
    for (n, d) in manifests.iter().enumerate() {
        if let Err(e) = index_entry(m, d, tags, oci, &mut named) {
            out.push(format!("member `index.json`, image {}: {e}", n + 1));
        }
    }
    named
}

/// One `index.json` descriptor: its name, and its digest or its manifest's config.
fn index_entry(
    m: &Members,
    d: &Value,
    tags: &BTreeMap<String, Tagged>,
    oci: &BTreeSet<String>,
    named: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    let object = d.as_object().ok_or("not an object")?;
    let digest = string_field(object, "digest")?;
    let hex = oci::digest_hex(digest)?;
    let name = field(object, "annotations")?
        .and_then(Value::as_object)
        .and_then(|a| a.get(IMAGE_NAME))
        .and_then(Value::as_str)
        .ok_or("it has no image name")?;
    let key = tag_key(name);
    if named.insert(key.clone(), digest.to_owned()).is_some() {
        return Err(format!("it names {name} a second time"));
    }
    if oci.contains(&key) {
        return Ok(());
    }
    let blob = format!("blobs/sha256/{hex}");
    let manifest = json_member(m, &blob)?;
    let config = manifest
        .as_object()
        .map(|o| field(o, "config"))
        .transpose()?
        .flatten()
        .and_then(Value::as_object)
        .ok_or_else(|| format!("member `{blob}` has no `config`"))?;
    let config_digest =
        string_field(config, "digest").map_err(|e| format!("member `{blob}`: {e}"))?;
    match tags.get(&key) {
        None => Err(format!("it names {name}, which manifest.json does not tag")),
        Some(t) if t.id != config_digest => Err(format!(
            "it gives {name} the config {config_digest}, manifest.json gives {}",
            t.id
        )),
        Some(_) => Ok(()),
    }
}

impl Blobs for Members {
    fn json(&self, hex: &str) -> Option<&[u8]> {
        Members::json(self, &format!("blobs/sha256/{hex}"))
    }
    fn size(&self, hex: &str) -> Option<u64> {
        self.file(&format!("blobs/sha256/{hex}")).map(|f| f.size)
    }
}

/// A string field, read as Go reads it.
fn string_field<'v>(object: &'v Map<String, Value>, name: &str) -> Result<&'v str, String> {
    field(object, name)?
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no `{name}`"))
}
