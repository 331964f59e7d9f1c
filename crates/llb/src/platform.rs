use std::fmt;
use std::str::FromStr;

use strata_proto::pb;

use crate::LlbError;

/// A target platform, written `os/arch[/variant]` (e.g. `linux/arm64/v8`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU architecture in Go's naming, e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// Architecture variant, e.g. `v7`.
    pub variant: Option<String>,
}

impl Platform {
    /// A platform without variant.
    pub fn new(os: impl Into<String>, architecture: impl Into<String>) -> Self {
        Self {
            os: os.into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// `linux/amd64`, the default when nothing else says otherwise.
    pub fn linux_amd64() -> Self {
        Self::new("linux", "amd64")
    }

    /// The same platform with `variant` set.
    pub fn with_variant(mut self, variant: impl Into<String>) -> Self {
        self.variant = Some(variant.into());
        self
    }

    /// The protobuf form carried by `Op.platform`.
    pub fn to_pb(&self) -> pb::Platform {
        pb::Platform {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            variant: self.variant.clone().unwrap_or_default(),
            ..Default::default()
        }
    }
}

impl Default for Platform {
    fn default() -> Self {
        Self::linux_amd64()
    }
}

/// `os/arch[/variant]`, normalised as BuildKit's platform normaliser
/// does: lowercase, the architecture aliases `x86_64`/`x86-64` (amd64),
/// `aarch64` (arm64) and `i386` (386), and `arm64/v8` without its variant.
impl FromStr for Platform {
    type Err = LlbError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        let valid = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| valid(p)) {
            return Err(LlbError::InvalidPlatform(s.to_owned()));
        }
        let mut architecture = parts[1].to_ascii_lowercase();
        let mut variant = parts.get(2).map(|v| v.to_ascii_lowercase());
        match architecture.as_str() {
            "x86_64" | "x86-64" => architecture = "amd64".to_owned(),
            "aarch64" => architecture = "arm64".to_owned(),
            "i386" => architecture = "386".to_owned(),
            _ => {}
        }
        if architecture == "arm64" && variant.as_deref() == Some("v8") {
            variant = None;
        }
        Ok(Self {
            os: parts[0].to_ascii_lowercase(),
            architecture,
            variant,
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl From<&pb::Platform> for Platform {
    fn from(p: &pb::Platform) -> Self {
        Self {
            os: p.os.clone(),
            architecture: p.architecture.clone(),
            variant: (!p.variant.is_empty()).then(|| p.variant.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let p: Platform = "linux/arm/v7".parse().expect("valid");
        assert_eq!(p, Platform::new("linux", "arm").with_variant("v7"));
        assert_eq!(p.to_string(), "linux/arm/v7");
        // BuildKit's normal forms.
        let p: Platform = "Linux/aarch64/v8".parse().expect("valid");
        assert_eq!(p, Platform::new("linux", "arm64"));
        let p: Platform = "linux/x86_64".parse().expect("valid");
        assert_eq!(p.to_string(), "linux/amd64");
        assert!("linux/am d64".parse::<Platform>().is_err());
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//v8".parse::<Platform>().is_err());
        assert!("a/b/c/d".parse::<Platform>().is_err());
    }
}
