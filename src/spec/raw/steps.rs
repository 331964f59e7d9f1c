//! The step kinds as written: `run`, `test`, `apt`, `dnf`/`apk`, `pip`,
//! `copy`, `conda`, and one ordered step of `steps`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::{Command, Paths, RawAptMirror, Short, Shorthand, SpannedString};

/// One ordered step: exactly one of its fields is set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// Run a command.
    pub run: Option<Spanned<Short<RunSpec>>>,
    /// Copy files.
    pub copy: Option<Spanned<Short<CopySpec>>>,
    /// Install Debian packages.
    pub apt: Option<Spanned<Short<AptSpec>>>,
    /// Install RPM packages with dnf, microdnf or yum.
    pub dnf: Option<Spanned<Short<OsPackagesSpec>>>,
    /// Install Alpine packages with apk.
    pub apk: Option<Spanned<Short<OsPackagesSpec>>>,
    /// Install Python packages.
    pub pip: Option<Spanned<Short<PipSpec>>>,
    /// Create a conda environment.
    pub conda: Option<Spanned<Short<CondaSpec>>>,
    /// Set environment variables from here on.
    pub env: Option<Spanned<BTreeMap<SpannedString, SpannedString>>>,
    /// Change the working directory from here on.
    pub workdir: Option<SpannedString>,
}

/// `run = "cmd"`, `run = ["cmd", "arg"]` or `run = { cmd = ..., network = ..., ... }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// The command.
    pub cmd: Spanned<Command>,
    /// `none`, `default` or `host` (default: `default`).
    pub network: Option<SpannedString>,
    /// Secret ids mounted at `/run/secrets/<id>` for this command only.
    #[serde(default)]
    pub secrets: Vec<SpannedString>,
    /// Directories kept as BuildKit cache mounts between builds.
    #[serde(default)]
    pub cache: Vec<SpannedString>,
    /// `root` (default) or `user` (the policy user).
    #[serde(rename = "as")]
    pub run_as: Option<SpannedString>,
    /// Extra environment for this command only.
    #[serde(default)]
    pub env: BTreeMap<SpannedString, SpannedString>,
    /// Name shown in the build progress.
    pub name: Option<SpannedString>,
}

impl Shorthand for RunSpec {
    const EXPECTING: &'static str =
        "a command string, a list of strings, or a table { cmd = ..., network = ..., secrets = [...] }";
    fn from_string(s: String) -> Option<Self> {
        Some(RunSpec::bare(Command::Shell(s)))
    }
    fn from_list(items: Vec<SpannedString>) -> Option<Self> {
        Some(RunSpec::bare(Command::Exec(
            items.into_iter().map(Spanned::into_inner).collect(),
        )))
    }
}

impl RunSpec {
    fn bare(cmd: Command) -> Self {
        RunSpec {
            cmd: Spanned::new(0..0, cmd),
            network: None,
            secrets: Vec::new(),
            cache: Vec::new(),
            run_as: None,
            env: BTreeMap::new(),
            name: None,
        }
    }
}

/// `test = "cmd"` or `test = { cmd = ..., name = ..., network = ..., as = ... }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSpec {
    /// The command: a shell string or an exec-form list.
    pub cmd: Spanned<Command>,
    /// Name shown in the build progress.
    pub name: Option<SpannedString>,
    /// `none` (default), `default` or `host`.
    pub network: Option<SpannedString>,
    /// `user` or `root` (default: the user the image runs as).
    #[serde(rename = "as")]
    pub run_as: Option<SpannedString>,
}

impl Shorthand for TestSpec {
    const EXPECTING: &'static str =
        "a command string, a list of strings, or a table { cmd = ..., name = ..., network = ..., as = ... }";
    fn from_string(s: String) -> Option<Self> {
        Some(TestSpec {
            cmd: Spanned::new(0..0, Command::Shell(s)),
            name: None,
            network: None,
            run_as: None,
        })
    }
    fn from_list(items: Vec<SpannedString>) -> Option<Self> {
        let mut spec = Self::from_string(String::new())?;
        spec.cmd = Spanned::new(
            0..0,
            Command::Exec(items.into_iter().map(Spanned::into_inner).collect()),
        );
        Some(spec)
    }
}

/// `apt = ["pkg", ...]` or `apt = { packages = [...], repo = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AptSpec {
    /// Package names, optionally `name=version`.
    pub packages: Vec<SpannedString>,
    /// A flat repository directory in the context (overrides `[packages].apt-repo`).
    pub repo: Option<SpannedString>,
    /// An apt mirror (overrides `[packages].apt-mirror` and `apt-repo`).
    pub mirror: Option<Spanned<RawAptMirror>>,
}

impl Shorthand for AptSpec {
    const EXPECTING: &'static str =
        "a list of package names, or a table { packages = [...], repo = \"...\", mirror = {...} }";
    fn from_list(packages: Vec<SpannedString>) -> Option<Self> {
        Some(AptSpec {
            packages,
            repo: None,
            mirror: None,
        })
    }
}

/// `dnf = ["pkg", ...]`, `apk = ["pkg", ...]`, or `{ packages = [...] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OsPackagesSpec {
    /// Package names, optionally with a version.
    pub packages: Vec<SpannedString>,
}

impl Shorthand for OsPackagesSpec {
    const EXPECTING: &'static str = "a list of package names, or a table { packages = [...] }";
    fn from_list(packages: Vec<SpannedString>) -> Option<Self> {
        Some(OsPackagesSpec { packages })
    }
}

/// `pip = ["pkg", ...]` or `pip = { requirements = [...], packages = [...], venv = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipSpec {
    /// Requirement specifiers.
    #[serde(default)]
    pub packages: Vec<SpannedString>,
    /// Requirement files in the context, copied alone before anything else.
    #[serde(default)]
    pub requirements: Vec<SpannedString>,
    /// The virtual environment (default `/opt/venv`); `"system"` for none.
    pub venv: Option<SpannedString>,
    /// A wheel directory in the context (overrides `[packages].find-links`).
    #[serde(rename = "find-links")]
    pub find_links: Option<SpannedString>,
    /// pip's package index (overrides `[packages].index-url`).
    #[serde(rename = "index-url")]
    pub index_url: Option<SpannedString>,
    /// More package indexes (overrides `[packages].extra-index-url`).
    #[serde(default, rename = "extra-index-url")]
    pub extra_index_url: Vec<SpannedString>,
    /// Hosts trusted without valid HTTPS (overrides `[packages].trusted-host`).
    #[serde(default, rename = "trusted-host")]
    pub trusted_host: Vec<SpannedString>,
}

impl Shorthand for PipSpec {
    const EXPECTING: &'static str =
        "a list of requirement specifiers, or a table { packages, requirements, venv, find-links, index-url }";
    fn from_list(packages: Vec<SpannedString>) -> Option<Self> {
        Some(PipSpec {
            packages,
            requirements: Vec::new(),
            venv: None,
            find_links: None,
            index_url: None,
            extra_index_url: Vec::new(),
            trusted_host: Vec::new(),
        })
    }
}

/// `copy = { src = ..., dst = ..., from = ..., owner = ..., mode = ... }`,
/// or a download (`url`, `checksum`) or a git checkout (`git`, `tag`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopySpec {
    /// Source path(s): in the context, in `from`, or in the `git` checkout.
    pub src: Option<Spanned<Paths>>,
    /// Destination in the image.
    pub dst: SpannedString,
    /// A component or an external image to copy from (default: the context).
    pub from: Option<SpannedString>,
    /// A file to download (http or https) instead of a path.
    pub url: Option<SpannedString>,
    /// The digest the downloaded file must have, `sha256:<hex>` (required with `url`).
    pub checksum: Option<SpannedString>,
    /// A git repository to check out (https, http or git URL).
    pub git: Option<SpannedString>,
    /// The git tag to check out.
    pub tag: Option<SpannedString>,
    /// The git commit (full id) to check out.
    pub commit: Option<SpannedString>,
    /// The git branch to check out (moves: not pinned).
    pub branch: Option<SpannedString>,
    /// `root` (default), `user` (the policy user) or `uid:gid`.
    pub owner: Option<SpannedString>,
    /// File mode, octal string such as `"0755"`.
    pub mode: Option<SpannedString>,
    /// Patterns left out of the copy.
    #[serde(default)]
    pub exclude: Vec<SpannedString>,
}

impl Shorthand for CopySpec {
    const EXPECTING: &'static str = "a table { src = ..., dst = ..., from = ... }";
}

/// `conda = { env = "name", packages = [...], channels = [...] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CondaSpec {
    /// Environment name.
    pub env: SpannedString,
    /// Package specs.
    #[serde(default)]
    pub packages: Vec<SpannedString>,
    /// Channels, in priority order.
    #[serde(default)]
    pub channels: Vec<SpannedString>,
    /// An environment file in the context (`environment.yml`).
    pub file: Option<SpannedString>,
    /// `micromamba` (default), `mamba` or `conda`.
    pub tool: Option<SpannedString>,
    /// A local channel directory in the context: the only channel, offline
    /// (overrides `[packages].conda-channel-dir`).
    #[serde(rename = "channel-dir")]
    pub channel_dir: Option<SpannedString>,
}

impl Shorthand for CondaSpec {
    const EXPECTING: &'static str =
        "a table { env = \"name\", packages = [...], channels = [...] }";
}
