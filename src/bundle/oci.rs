//! An image as an engine with the containerd image store saves and loads
//! it: a digest in `index.json` naming an image index (one manifest per
//! platform, plus any attestation manifests) or a single manifest, each
//! manifest naming its config and layers by digest.
//!
//! [`walk`] follows one such digest through the bundle's blobs and checks
//! that every manifest, config and layer it names is there with the size
//! its descriptor gives, that each platform's config is for that platform
//! and has one `diff_id` per layer. Blob contents are checked against
//! their names elsewhere (every `blobs/sha256/<hex>` must hash to `<hex>`).

use serde_json::{Map, Value};

use super::json::{self, field};
use super::members::is_hex64;

/// The annotation BuildKit puts on an attestation manifest.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// The blobs of a bundle, by hex digest.
pub(crate) trait Blobs {
    /// A small JSON blob's content.
    fn json(&self, hex: &str) -> Option<&[u8]>;
    /// A blob's size, if it is there.
    fn size(&self, hex: &str) -> Option<u64>;
}

/// One platform of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Platform {
    /// `os/arch` or `os/arch/variant`.
    pub platform: String,
    /// The hex digest of its config.
    pub config: String,
    /// The hex digests of its layers, in order.
    pub layers: Vec<String>,
}

/// What [`walk`] found under an image's digest.
#[derive(Debug, Default)]
pub(crate) struct Walked {
    /// The platforms, in the order of the index.
    pub platforms: Vec<Platform>,
    /// Attestation manifests (platform `unknown/unknown`): carried, not platforms.
    pub attestations: usize,
    /// The platforms the index names whose manifests are not in the bundle
    /// (an image pulled for some of its platforms only), in index order.
    pub absent: Vec<String>,
}

/// The hex of a `sha256:<hex>` digest.
pub(crate) fn digest_hex(digest: &str) -> Result<&str, String> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| is_hex64(h))
        .ok_or_else(|| format!("digest `{digest}` is not a sha256"))
}

fn blob(hex: &str) -> String {
    format!("blobs/sha256/{hex}")
}

/// A descriptor's digest (hex), checked against the blob's size.
fn descriptor<'v>(
    blobs: &impl Blobs,
    d: &'v Map<String, Value>,
    what: &str,
) -> Result<&'v str, String> {
    let digest = field(d, "digest")?
        .and_then(Value::as_str)
        .ok_or_else(|| format!("a {what} descriptor has no `digest`"))?;
    let hex = digest_hex(digest)?;
    let size = field(d, "size")?.and_then(Value::as_u64);
    match (blobs.size(hex), size) {
        (None, _) => Err(format!("its {what} `{}` is missing", blob(hex))),
        (Some(have), Some(want)) if have != want => Err(format!(
            "its {what} `{}` has {have} bytes, its descriptor says {want}",
            blob(hex)
        )),
        (Some(_), None) => Err(format!(
            "the {what} descriptor of `{}` has no size",
            blob(hex)
        )),
        (Some(_), Some(_)) => Ok(hex),
    }
}

/// A JSON blob as an object, duplicate keys rejected.
fn object(blobs: &impl Blobs, hex: &str) -> Result<Map<String, Value>, String> {
    let data = blobs
        .json(hex)
        .ok_or_else(|| format!("`{}` is missing or is not JSON", blob(hex)))?;
    match json::parse(data) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(format!("`{}` is not a JSON object", blob(hex))),
        Err(e) => Err(format!("`{}` is not valid JSON: {e}", blob(hex))),
    }
}

/// Follows the image at `digest` (an index or a manifest) to its platforms.
pub(crate) fn walk(blobs: &impl Blobs, digest: &str) -> Result<Walked, String> {
    let hex = digest_hex(digest)?;
    if blobs.size(hex).is_none() {
        return Err(format!("its index or manifest `{}` is missing", blob(hex)));
    }
    let top = object(blobs, hex)?;
    let mut walked = Walked::default();
    let Some(list) = field(&top, "manifests")? else {
        walked.platforms.push(manifest(blobs, hex, &top, None)?);
        return Ok(walked);
    };
    let list = list
        .as_array()
        .ok_or_else(|| format!("`{}`: `manifests` is not a list", blob(hex)))?;
    for (n, d) in list.iter().enumerate() {
        let at = |e: String| format!("`{}`, manifest {}: {e}", blob(hex), n + 1);
        let d = d.as_object().ok_or_else(|| at("not an object".into()))?;
        let (named, attestation) = descriptor_platform(d).map_err(at)?;
        if absent(blobs, d).map_err(at)? {
            // Not pulled (or not saved): the engine loads the index without it.
            match named {
                _ if attestation => {}
                Some(p) => walked.absent.push(p),
                None => return Err(at("its manifest is missing and names no platform".into())),
            }
            continue;
        }
        let mhex = descriptor(blobs, d, "manifest").map_err(at)?;
        let m = object(blobs, mhex).map_err(at)?;
        if field(&m, "manifests").map_err(at)?.is_some() {
            return Err(at(format!("`{}` is an index inside an index", blob(mhex))));
        }
        if attestation {
            manifest_blobs(blobs, &m).map_err(|e| at(format!("`{}`: {e}", blob(mhex))))?;
            walked.attestations += 1;
        } else {
            walked
                .platforms
                .push(manifest(blobs, mhex, &m, named.as_deref()).map_err(at)?);
        }
    }
    if walked.platforms.is_empty() {
        return Err(format!("`{}` names no platform", blob(hex)));
    }
    Ok(walked)
}

/// The blob an index descriptor names is not in the bundle.
fn absent(blobs: &impl Blobs, d: &Map<String, Value>) -> Result<bool, String> {
    let digest = field(d, "digest")?
        .and_then(Value::as_str)
        .ok_or("a manifest descriptor has no `digest`")?;
    Ok(blobs.size(digest_hex(digest)?).is_none())
}

/// The platform an index descriptor names, and whether it is an attestation.
fn descriptor_platform(d: &Map<String, Value>) -> Result<(Option<String>, bool), String> {
    let kind = field(d, "annotations")?
        .and_then(Value::as_object)
        .and_then(|a| a.get(REFERENCE_TYPE))
        .and_then(Value::as_str);
    let platform = field(d, "platform")?
        .and_then(Value::as_object)
        .map(platform_of)
        .transpose()?;
    let unknown = platform.as_deref() == Some("unknown/unknown");
    match (kind, unknown) {
        (Some("attestation-manifest"), true) => Ok((platform, true)),
        (Some(k), _) => Err(format!(
            "a manifest of reference type `{k}` for `{}`, which BuildKit does not write",
            platform.unwrap_or_default()
        )),
        (None, true) => {
            Err("a manifest for platform unknown/unknown that is no attestation".into())
        }
        (None, false) => Ok((platform, false)),
    }
}

/// `os/arch[/variant]` of a platform object or an image config.
fn platform_of(o: &Map<String, Value>) -> Result<String, String> {
    let get =
        |k: &str| -> Result<Option<&str>, String> { Ok(field(o, k)?.and_then(Value::as_str)) };
    let os = get("os")?.ok_or("no `os`")?;
    let arch = get("architecture")?.ok_or("no `architecture`")?;
    Ok(match get("variant")? {
        // As containerd normalises it: arm64/v8 is arm64.
        Some("v8") if arch == "arm64" => format!("{os}/{arch}"),
        Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
        _ => format!("{os}/{arch}"),
    })
}

/// The config and layer digests of a manifest, each checked to be there.
fn manifest_blobs(
    blobs: &impl Blobs,
    m: &Map<String, Value>,
) -> Result<(String, Vec<String>), String> {
    let config = field(m, "config")?
        .and_then(Value::as_object)
        .ok_or("no `config`")?;
    let config = descriptor(blobs, config, "config")?.to_owned();
    let layers = field(m, "layers")?
        .and_then(Value::as_array)
        .ok_or("no `layers` list")?;
    let layers = layers
        .iter()
        .map(|l| {
            let l = l.as_object().ok_or("a layer descriptor is not an object")?;
            descriptor(blobs, l, "layer").map(str::to_owned)
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok((config, layers))
}

/// One platform's manifest: its config is for the platform the index
/// names, with one `diff_id` per layer.
fn manifest(
    blobs: &impl Blobs,
    hex: &str,
    m: &Map<String, Value>,
    named: Option<&str>,
) -> Result<Platform, String> {
    let at = |e: String| format!("`{}`: {e}", blob(hex));
    let (config, layers) = manifest_blobs(blobs, m).map_err(at)?;
    let c = object(blobs, &config).map_err(at)?;
    let in_config = |e: String| at(format!("config `{}`: {e}", blob(&config)));
    let platform = platform_of(&c).map_err(in_config)?;
    if let Some(named) = named {
        if named != platform {
            return Err(at(format!(
                "the index names it for {named}, its config `{}` is for {platform}",
                blob(&config)
            )));
        }
    }
    let diff_ids = field(&c, "rootfs")
        .map_err(in_config)?
        .and_then(Value::as_object)
        .map(|r| field(r, "diff_ids"))
        .transpose()
        .map_err(in_config)?
        .flatten()
        .and_then(Value::as_array)
        .ok_or_else(|| in_config("no `rootfs.diff_ids`".into()))?;
    if diff_ids.len() != layers.len() {
        return Err(at(format!(
            "{} layers, but config `{}` has {} diff_ids",
            layers.len(),
            blob(&config),
            diff_ids.len()
        )));
    }
    Ok(Platform {
        platform,
        config,
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct Map2(BTreeMap<String, Vec<u8>>);

    impl Map2 {
        fn add(&mut self, v: Value) -> (String, usize) {
            let data = serde_json::to_vec(&v).expect("json");
            let hex = super::super::hex(&Sha256::digest(&data));
            let size = data.len();
            self.0.insert(hex.clone(), data);
            (format!("sha256:{hex}"), size)
        }
    }

    impl Blobs for Map2 {
        fn json(&self, hex: &str) -> Option<&[u8]> {
            self.0.get(hex).map(Vec::as_slice)
        }
        fn size(&self, hex: &str) -> Option<u64> {
            self.0.get(hex).map(|d| d.len() as u64)
        }
    }

    /// A one-layer manifest for `arch` (the layer is a JSON blob too, for the test).
    fn image(b: &mut Map2, arch: &str) -> Value {
        let (layer, lsize) = b.add(serde_json::json!({ "layer": arch }));
        let (config, csize) = b.add(serde_json::json!({
            "os": "linux", "architecture": arch,
            "rootfs": { "type": "layers", "diff_ids": [layer] }
        }));
        let (m, msize) = b.add(serde_json::json!({
            "schemaVersion": 2,
            "config": { "digest": config, "size": csize },
            "layers": [{ "digest": layer, "size": lsize }]
        }));
        let os = if arch == "unknown" {
            "unknown"
        } else {
            "linux"
        };
        serde_json::json!({ "digest": m, "size": msize, "platform": { "os": os, "architecture": arch } })
    }

    #[test]
    fn an_index_gives_its_platforms_and_counts_attestations_apart() {
        let mut b = Map2::default();
        let mut att = image(&mut b, "unknown");
        att["annotations"] = serde_json::json!({ REFERENCE_TYPE: "attestation-manifest" });
        let list = vec![image(&mut b, "amd64"), image(&mut b, "arm64"), att];
        let (index, _) = b.add(serde_json::json!({ "schemaVersion": 2, "manifests": list }));
        let w = walk(&b, &index).expect("walks");
        let names: Vec<&str> = w.platforms.iter().map(|p| p.platform.as_str()).collect();
        assert_eq!(
            (names, w.attestations),
            (vec!["linux/amd64", "linux/arm64"], 1)
        );
    }

    #[test]
    fn a_missing_platform_is_absent_and_a_wrong_size_or_platform_is_an_error() {
        let mut b = Map2::default();
        let amd = image(&mut b, "amd64");
        let mut arm = image(&mut b, "arm64");
        arm["digest"] = format!("sha256:{}", "0".repeat(64)).into();
        let (index, _) = b.add(serde_json::json!({ "manifests": [amd.clone(), arm] }));
        let w = walk(&b, &index).expect("an index with a platform left out");
        assert_eq!(
            (w.platforms.len(), w.absent),
            (1, vec!["linux/arm64".to_owned()])
        );
        let mut broken = amd.clone();
        broken["size"] = 1.into();
        let (index, _) = b.add(serde_json::json!({ "manifests": [broken] }));
        let e = walk(&b, &index).expect_err("wrong size");
        assert!(e.contains("its descriptor says 1"), "{e}");

        let mut lie = amd;
        lie["platform"]["architecture"] = "arm64".into();
        let (index, _) = b.add(serde_json::json!({ "manifests": [lie] }));
        let e = walk(&b, &index).expect_err("wrong platform");
        assert!(e.contains("the index names it for linux/arm64"), "{e}");
        assert!(e.contains("is for linux/amd64"), "{e}");
    }

    #[test]
    fn an_unknown_platform_that_is_no_attestation_is_an_error() {
        let mut b = Map2::default();
        let odd = image(&mut b, "unknown");
        let (index, _) = b.add(serde_json::json!({ "manifests": [odd] }));
        let e = walk(&b, &index).expect_err("not an attestation");
        assert!(e.contains("unknown/unknown that is no attestation"), "{e}");
    }
}
