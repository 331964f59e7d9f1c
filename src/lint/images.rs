//! Facts about external images: pinned or not, alpine or not, and the
//! shape of an NVIDIA CUDA tag.

use crate::graph::ImageRef;

/// Why a reference is not pinned: no tag (so `latest`), or `latest`.
/// A digest pins it whatever the tag says.
pub fn unpinned(r: &ImageRef) -> Option<&'static str> {
    if r.digest.is_some() {
        return None;
    }
    match r.tag.as_deref() {
        None => Some("has no tag, so it means `latest`"),
        Some("latest") => Some("is on `latest`"),
        Some(_) => None,
    }
}

/// An Alpine Linux image: `alpine` itself or a `*-alpine*` tag (`python:3.11-alpine3.19`).
pub fn is_alpine(r: &ImageRef) -> bool {
    let last = r.repository.rsplit('/').next().unwrap_or(&r.repository);
    last == "alpine" || r.tag.as_deref().is_some_and(|t| t.contains("alpine"))
}

/// Whether a CUDA image tag reads `<major>.<minor>[.<patch>]-<flavour>-<os>`,
/// as NVIDIA's do (`12.1.1-runtime-ubuntu22.04`, `11.8.0-cudnn8-devel-ubi8`):
/// the flavour ends in `base`, `runtime` or `devel`, the OS is a name and a
/// version.
pub fn cuda_tag_ok(tag: &str) -> bool {
    let Some((version, rest)) = tag.split_once('-') else {
        return false;
    };
    let numbers: Vec<&str> = version.split('.').collect();
    let version_ok = (2..=3).contains(&numbers.len())
        && numbers
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()));
    let Some((flavour, os)) = rest.rsplit_once('-') else {
        return false;
    };
    let flavour_ok = flavour
        .split('-')
        .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric()))
        && ["base", "runtime", "devel"]
            .iter()
            .any(|f| flavour == *f || flavour.ends_with(&format!("-{f}")));
    let os_name = os.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    let os_ok = !os_name.is_empty()
        && os_name.len() < os.len()
        && os_name.bytes().all(|c| c.is_ascii_lowercase());
    version_ok && flavour_ok && os_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> ImageRef {
        ImageRef::parse(s).expect("a valid reference")
    }

    #[test]
    fn pinning() {
        assert!(unpinned(&r("debian")).is_some());
        assert!(unpinned(&r("debian:latest")).is_some());
        assert!(unpinned(&r("debian:bookworm")).is_none());
        let digest = format!("debian@sha256:{}", "a".repeat(64));
        assert!(unpinned(&r(&digest)).is_none());
    }

    #[test]
    fn alpine() {
        assert!(is_alpine(&r("alpine:3.19")));
        assert!(is_alpine(&r("python:3.11-alpine3.19")));
        assert!(is_alpine(&r("registry.local/base/alpine")));
        assert!(!is_alpine(&r("python:3.11-slim-bookworm")));
        assert!(!is_alpine(&r("alpinelinux/build-base:latest")));
    }

    #[test]
    fn cuda_tags() {
        for t in [
            "12.1.1-runtime-ubuntu22.04",
            "12.1-runtime-ubuntu22.04",
            "11.8.0-cudnn8-devel-ubi8",
            "12.4.1-base-rockylinux9",
            "11.7.1-cudnn8-runtime-centos7",
        ] {
            assert!(cuda_tag_ok(t), "{t}");
        }
        for t in [
            "latest",
            "12",
            "12-runtime-ubuntu22.04",
            "12.1.1-runtime",
            "12.1.1-ubuntu22.04",
            "12.1.1-runtime-ubuntu",
            "v12.1.1-runtime-ubuntu22.04",
            "12.1.1.1-runtime-ubuntu22.04",
            "12.1.1-fast-ubuntu22.04",
        ] {
            assert!(!cuda_tag_ok(t), "{t}");
        }
    }
}
