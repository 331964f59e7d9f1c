//! The steps of a component, one type per step kind.

use std::ops::Range;

use serde::Serialize;

use super::ImageRef;

/// A build step with its place in the stack file.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// What it does.
    #[serde(flatten)]
    pub kind: StepKind,
    /// Where it is written.
    #[serde(skip)]
    pub span: Range<usize>,
}

/// The kinds of steps.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "lowercase", tag = "step")]
pub enum StepKind {
    /// Run a command.
    Run(Run),
    /// Copy files.
    Copy(Copy),
    /// apt-get install.
    Apt(Apt),
    /// dnf (microdnf, yum) install.
    Dnf(OsPackages),
    /// apk add.
    Apk(OsPackages),
    /// pip install.
    Pip(Pip),
    /// A conda environment.
    Conda(Conda),
    /// Set env from here on.
    Env {
        /// The variables, in order.
        vars: Vec<(String, String)>,
        /// Where each variable's key is written.
        #[serde(skip)]
        keys: Vec<(String, Range<usize>)>,
    },
    /// Set the working directory from here on.
    Workdir {
        /// The directory.
        path: String,
    },
}

/// Network access of a run step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// BuildKit's default sandbox network.
    Default,
    /// No network at all.
    None,
    /// The host's network (needs the engine's entitlement).
    Host,
}

/// A run step.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// The command as exec args.
    pub args: Vec<String>,
    /// Network access.
    pub network: Network,
    /// Secrets mounted at `/run/secrets/<id>`.
    pub secrets: Vec<String>,
    /// Cache mount directories.
    pub cache: Vec<String>,
    /// Run as the policy user instead of root.
    pub as_user: bool,
    /// Extra env for this command.
    pub env: Vec<(String, String)>,
    /// Where each `env` key is written.
    #[serde(skip)]
    pub env_keys: Vec<(String, Range<usize>)>,
    /// Progress name.
    pub name: Option<String>,
}

/// A command run in the finished image: the image is returned only if it passes.
#[derive(Debug, Clone, Serialize)]
pub struct Test {
    /// The command as exec args.
    pub args: Vec<String>,
    /// Progress name (default: the command).
    pub name: Option<String>,
    /// Network access (default none).
    pub network: Network,
    /// Run as the policy user (default: as the image runs).
    pub as_user: bool,
    /// Where it is written.
    #[serde(skip)]
    pub span: Range<usize>,
}

/// Where a copy reads from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "ref")]
pub enum CopySource {
    /// The component's build context.
    Context,
    /// Another component's filesystem.
    Component(String),
    /// An external image's filesystem.
    Image(ImageRef),
    /// One file downloaded over HTTP(S), checked against its digest.
    Http {
        /// The URL.
        url: String,
        /// The digest the file must have (`sha256:<hex>`).
        checksum: String,
    },
    /// A git repository at a ref.
    Git {
        /// The repository (`https://`, `http://` or `git://`).
        remote: String,
        /// The ref.
        at: GitRef,
    },
}

/// The ref a git copy checks out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "name")]
pub enum GitRef {
    /// A tag.
    Tag(String),
    /// A full commit id.
    Commit(String),
    /// A branch: moves, so the build is not pinned.
    Branch(String),
}

impl GitRef {
    /// The ref as BuildKit's git source takes it.
    pub fn name(&self) -> &str {
        match self {
            GitRef::Tag(n) | GitRef::Commit(n) | GitRef::Branch(n) => n,
        }
    }

    /// `tag`, `commit` or `branch`.
    pub fn kind(&self) -> &'static str {
        match self {
            GitRef::Tag(_) => "tag",
            GitRef::Commit(_) => "commit",
            GitRef::Branch(_) => "branch",
        }
    }
}

/// Ownership of copied files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Owner {
    /// root (the default: the running user cannot rewrite what was copied).
    Root,
    /// The policy user.
    User,
    /// Numeric ids.
    Ids(u32, u32),
}

/// A copy step.
#[derive(Debug, Clone, Serialize)]
pub struct Copy {
    /// Source paths.
    pub srcs: Vec<String>,
    /// Destination.
    pub dst: String,
    /// Where from.
    pub source: CopySource,
    /// Ownership.
    pub owner: Owner,
    /// File mode.
    pub mode: Option<u32>,
    /// Excluded patterns.
    pub exclude: Vec<String>,
    /// Where `from` is written.
    #[serde(skip)]
    pub from_span: Option<Range<usize>>,
}

/// An apt step.
#[derive(Debug, Clone, Serialize)]
pub struct Apt {
    /// Packages.
    pub packages: Vec<String>,
    /// Offline flat repository in the context.
    pub repo: Option<String>,
    /// A mirror URL (with its suite and components), instead of a flat repository.
    pub mirror: Option<AptMirror>,
}

/// A dnf or apk step: the packages, from the base's own repositories.
#[derive(Debug, Clone, Serialize)]
pub struct OsPackages {
    /// Package names.
    pub packages: Vec<String>,
}

/// An apt mirror: `deb [trusted=yes] <url> <suite> <components>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AptMirror {
    /// The archive's URL.
    pub url: String,
    /// The suite (`bookworm`).
    pub suite: String,
    /// The components (`main`).
    pub components: Vec<String>,
    /// `[trusted=yes]`: no signature check.
    pub trusted: bool,
}

/// Where pip finds packages besides (or instead of) PyPI.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PipIndex {
    /// `--index-url`.
    pub index_url: Option<String>,
    /// `--extra-index-url`, in order.
    pub extra_index_urls: Vec<String>,
    /// `--trusted-host`, in order.
    pub trusted_hosts: Vec<String>,
}

impl PipIndex {
    /// These settings over `base` (`[packages]`): each key the step sets
    /// replaces the stack-wide one.
    pub fn over(&self, base: &PipIndex) -> PipIndex {
        PipIndex {
            index_url: self.index_url.clone().or_else(|| base.index_url.clone()),
            extra_index_urls: if self.extra_index_urls.is_empty() {
                base.extra_index_urls.clone()
            } else {
                self.extra_index_urls.clone()
            },
            trusted_hosts: if self.trusted_hosts.is_empty() {
                base.trusted_hosts.clone()
            } else {
                self.trusted_hosts.clone()
            },
        }
    }

    /// Whether anything is set.
    pub fn is_empty(&self) -> bool {
        self.index_url.is_none()
            && self.extra_index_urls.is_empty()
            && self.trusted_hosts.is_empty()
    }
}

/// A pip step.
#[derive(Debug, Clone, Serialize)]
pub struct Pip {
    /// Requirement specifiers.
    pub packages: Vec<String>,
    /// Requirement files in the context.
    pub requirements: Vec<String>,
    /// The venv, or None for the system interpreter.
    pub venv: Option<String>,
    /// Offline wheel directory in the context.
    pub find_links: Option<String>,
    /// Package indexes (the step's, or else `[packages]`).
    pub index: PipIndex,
}

/// A conda step.
#[derive(Debug, Clone, Serialize)]
pub struct Conda {
    /// Environment name.
    pub env: String,
    /// Package specs.
    pub packages: Vec<String>,
    /// Channels.
    pub channels: Vec<String>,
    /// Environment file in the context.
    pub file: Option<String>,
    /// A local channel directory in the context: the only channel, offline.
    pub channel_dir: Option<String>,
    /// `micromamba`, `mamba` or `conda`.
    pub tool: String,
}

#[cfg(test)]
mod tests {
    use super::PipIndex;

    #[test]
    fn a_steps_pip_index_keys_replace_the_stacks_one_by_one() {
        let stack = PipIndex {
            index_url: Some("http://pypi.site.local/simple/".into()),
            extra_index_urls: vec!["http://extra.site.local/simple/".into()],
            trusted_hosts: vec!["pypi.site.local".into()],
        };
        let step = PipIndex {
            index_url: None,
            extra_index_urls: vec![],
            trusted_hosts: vec!["team.site.local".into()],
        };
        let got = step.over(&stack);
        assert_eq!(got.index_url, stack.index_url);
        assert_eq!(got.extra_index_urls, stack.extra_index_urls);
        assert_eq!(got.trusted_hosts, vec!["team.site.local".to_owned()]);
        assert!(PipIndex::default().over(&PipIndex::default()).is_empty());
    }
}
