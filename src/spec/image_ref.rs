//! Container image references (`[registry/]path[:tag][@digest]`), parsed
//! and normalised the way Docker does (`debian` is
//! `docker.io/library/debian:latest`).

use std::fmt;

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ImageRef {
    /// Registry host (with port), `docker.io` when none was written.
    pub registry: String,
    /// Repository path, with `library/` added for official images.
    pub repository: String,
    /// The tag, if one was written.
    pub tag: Option<String>,
    /// The digest (`sha256:...`), if one was written.
    pub digest: Option<String>,
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefError(pub String);

impl fmt::Display for RefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_path_component(s: &str) -> bool {
    // [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*
    let b = s.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            i += 1;
            continue;
        }
        let sep_start = i;
        while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let sep = &s[sep_start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if sep.is_empty() || !ok {
            return false;
        }
    }
    true
}

fn is_registry(s: &str) -> bool {
    s.contains('.')
        || s.contains(':')
        || s == "localhost"
        || s.chars().any(|c| c.is_ascii_uppercase())
}

/// A digest: `sha256:` and 64 lowercase hex digits.
fn check_digest(d: &str) -> Result<String, RefError> {
    let hex = d
        .strip_prefix("sha256:")
        .ok_or_else(|| RefError(format!("digest `{d}` must start with `sha256:`")))?;
    if hex.len() != 64 || !hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(RefError(format!(
            "digest `{d}` must be `sha256:` and 64 lowercase hex digits"
        )));
    }
    Ok(d.to_owned())
}

/// A tag: letters, digits, `_`, `.` and `-`, not starting with `.` or `-`.
fn check_tag(tag: &str) -> Result<(), RefError> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && (tag.as_bytes()[0].is_ascii_alphanumeric() || tag.starts_with('_'))
        && tag
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if !ok {
        return Err(RefError(format!(
            "tag `{tag}` is not valid: use letters, digits, `_`, `.` and `-` (at most 128)"
        )));
    }
    Ok(())
}

/// A registry host: dot-separated labels, optionally `:port`.
fn check_registry(registry: &str) -> Result<(), RefError> {
    let host = registry.split(':').next().unwrap_or("");
    let port_ok = registry
        .split_once(':')
        .is_none_or(|(_, p)| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()));
    let host_ok = !host.is_empty()
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'));
    if !port_ok || !host_ok {
        return Err(RefError(format!(
            "`{registry}` is not a valid registry host"
        )));
    }
    Ok(())
}

impl ImageRef {
    /// Parses a reference as written in a stack file or on a command line.
    pub fn parse(input: &str) -> Result<ImageRef, RefError> {
        if input.is_empty() {
            return Err(RefError("an image reference cannot be empty".into()));
        }
        if input.len() > 512 {
            return Err(RefError(
                "an image reference is at most 512 characters".into(),
            ));
        }
        if let Some(c) = input.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(RefError(format!("an image reference cannot contain {c:?}")));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => (r, Some(check_digest(d)?)),
            None => (input, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(tag)?;
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if is_registry(first) => (first.to_owned(), path.to_owned()),
            _ => ("docker.io".to_owned(), name.to_owned()),
        };
        if registry != "docker.io" {
            check_registry(&registry)?;
        }
        if path.is_empty() {
            return Err(RefError("the repository name is missing".into()));
        }
        for part in path.split('/') {
            if !is_path_component(part) {
                return Err(RefError(format!(
                    "`{part}` is not a valid repository name component: use lowercase letters, digits and single separators (`.`, `_`, `-`)"
                )));
            }
        }
        let repository = if registry == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        Ok(ImageRef {
            registry,
            repository,
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The fully qualified reference: `docker.io/library/debian:latest`.
    pub fn normalized(&self) -> String {
        let mut s = self.name();
        match (&self.tag, &self.digest) {
            (Some(t), _) => {
                s.push(':');
                s.push_str(t);
            }
            (None, None) => s.push_str(":latest"),
            (None, Some(_)) => {}
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// The short form Docker shows (`debian:bookworm`, `127.0.0.1:5000/x:y`).
    pub fn familiar(&self) -> String {
        let mut s = if self.registry == "docker.io" {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_owned()
        } else {
            self.name()
        };
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        } else if self.digest.is_none() {
            s.push_str(":latest");
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.familiar())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_docker() {
        let r = ImageRef::parse("debian").expect("valid");
        assert_eq!(r.normalized(), "docker.io/library/debian:latest");
        assert_eq!(r.familiar(), "debian:latest");
        let r = ImageRef::parse("nvidia/cuda:12.1.1-base-ubuntu22.04").expect("valid");
        assert_eq!(
            r.normalized(),
            "docker.io/nvidia/cuda:12.1.1-base-ubuntu22.04"
        );
        let r = ImageRef::parse("127.0.0.1:5000/strata/debian:bookworm").expect("valid");
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.familiar(), "127.0.0.1:5000/strata/debian:bookworm");
        let r = ImageRef::parse("localhost:5000/a").expect("valid");
        assert_eq!(r.registry, "localhost:5000");
        let d = format!("alpine@sha256:{}", "a".repeat(64));
        assert_eq!(
            ImageRef::parse(&d).expect("valid").normalized(),
            format!("docker.io/library/alpine@sha256:{}", "a".repeat(64))
        );
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "Debian",
            "debian:",
            "debian:bad tag",
            "a//b",
            "-a",
            "debian@sha256:abc",
            "debian:.x",
            "x/y:z:w",
            "a..b",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
