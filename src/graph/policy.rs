//! Stack-wide policies: the user policy, third-party images, metadata labels.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Serialize;

use super::{AptMirror, ImageRef, PipIndex};

/// What to do when a base image already has the policy's uid or gid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnConflict {
    /// Rename the existing user/group to the policy's names (Ubuntu's `ubuntu` becomes ours).
    Rename,
    /// Fail the build, naming the clash.
    Error,
}

/// The user every component runs as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserPolicy {
    /// User name.
    pub name: String,
    /// Primary group name.
    pub group: String,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
    /// Behaviour on a uid/gid clash in a base image.
    pub on_conflict: OnConflict,
}

/// A third-party image shipped with the stack.
#[derive(Debug, Clone, Serialize)]
pub struct ThirdParty {
    /// Its name in the stack.
    pub name: String,
    /// The reference (after mirrors).
    pub image: ImageRef,
    /// Where the reference is written.
    #[serde(skip)]
    pub span: Range<usize>,
}

/// Which metadata a field of `[metadata].env` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetadataField {
    /// The VCS revision (`vcs:revision`, `git rev-parse HEAD`).
    Revision,
    /// The VCS branch.
    Branch,
    /// The VCS source URL.
    Source,
    /// The build time, from SOURCE_DATE_EPOCH only.
    Created,
    /// The image tag.
    Version,
}

/// `[metadata]`, resolved.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MetadataPolicy {
    /// Add `org.opencontainers.image.*` labels.
    pub oci_labels: bool,
    /// ENV names filled from metadata.
    pub env: Vec<(String, MetadataField)>,
    /// Where each of `env` is written.
    #[serde(skip)]
    pub env_spans: Vec<Range<usize>>,
    /// Labels on every component.
    pub labels: BTreeMap<String, String>,
    /// `[packages].apt-repo`.
    pub apt_repo: Option<String>,
    /// `[packages].find-links`.
    pub find_links: Option<String>,
    /// `[packages]` pip indexes.
    pub pip_index: PipIndex,
    /// `[packages].apt-mirror`.
    pub apt_mirror: Option<AptMirror>,
    /// `[packages].conda-channel-dir`.
    pub conda_channel: Option<String>,
}
