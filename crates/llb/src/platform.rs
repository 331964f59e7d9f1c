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

impl FromStr for Platform {
    type Err = LlbError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || LlbError::InvalidPlatform(s.to_owned());
        let mut parts = s.trim().split('/');
        let (Some(os), Some(arch)) = (parts.next(), parts.next()) else {
            return Err(invalid());
        };
        let variant = parts.next();
        if os.is_empty() || arch.is_empty() || variant == Some("") || parts.next().is_some() {
            return Err(invalid());
        }
        let platform = Self::new(os, arch);
        Ok(match variant {
            Some(v) => platform.with_variant(v),
            None => platform,
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
        let p: Platform = "linux/arm64/v8".parse().expect("valid");
        assert_eq!(p, Platform::new("linux", "arm64").with_variant("v8"));
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//v8".parse::<Platform>().is_err());
        assert!("a/b/c/d".parse::<Platform>().is_err());
    }
}
