//! The stack file as written: serde types that keep every value's span.
//!
//! Nothing here is checked beyond TOML syntax and value types; `resolve`
//! turns these into the validated model in `crate::graph`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, MapAccess, Unexpected, Visitor};
use serde::{Deserialize, Deserializer};
use serde_spanned::Spanned;

mod forms;
mod reuse;
mod steps;
pub use forms::{Command, NamingRules, Paths, Short, Shorthand, SHELL};
pub use reuse::{Extends, MatrixValue, RawMatrix};
pub use steps::{
    AptSpec, CondaSpec, CopySpec, OsPackagesSpec, PipSpec, RawStep, RunSpec, TestSpec,
};

/// A string with the byte range it came from.
pub type SpannedString = Spanned<String>;

/// The whole stack file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStackFile {
    /// `[stack]`: name, naming rule, default target.
    pub stack: Option<Spanned<RawStack>>,
    /// `[args]`: typed build arguments.
    #[serde(default)]
    pub args: BTreeMap<SpannedString, Spanned<RawArg>>,
    /// `[profiles.<name>]`: named sets of argument values.
    #[serde(default)]
    pub profiles: BTreeMap<SpannedString, Spanned<RawProfile>>,
    /// `[user]`: the user policy applied to every component.
    pub user: Option<Spanned<RawUser>>,
    /// `[mirrors]`: external image reference -> replacement.
    #[serde(default)]
    pub mirrors: BTreeMap<SpannedString, SpannedString>,
    /// `[third-party]`: images shipped with the stack but not built by it.
    #[serde(default, rename = "third-party")]
    pub third_party: BTreeMap<SpannedString, SpannedString>,
    /// `[metadata]`: labels and env derived from version control and time.
    pub metadata: Option<Spanned<RawMetadata>>,
    /// `[packages]`: where package steps get their packages.
    pub packages: Option<Spanned<RawPackages>>,
    /// `[component.<name>]`: the images of the stack.
    #[serde(default)]
    pub component: BTreeMap<SpannedString, Spanned<RawComponent>>,
    /// `[template.<name>]`: component tables that build nothing, for
    /// components to `extends`.
    #[serde(default)]
    pub template: BTreeMap<SpannedString, Spanned<RawComponent>>,
}

/// `[stack]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStack {
    /// The stack's name; `{stack}` in naming rules.
    pub name: SpannedString,
    /// One line shown by `strata targets`.
    pub description: Option<SpannedString>,
    /// Naming rule for every component's image, e.g. `"{prefix}/{component}:{tag}"`,
    /// or a list of them: the primary name, then extra tags.
    pub image: Option<Spanned<NamingRules>>,
    /// The component built when no target is given.
    pub default: Option<SpannedString>,
    /// Lint ids silenced for the whole stack.
    #[serde(default)]
    pub allow: Vec<SpannedString>,
}

/// One argument: a bare default (`tag = "latest"`) or a table.
#[derive(Debug)]
pub enum RawArg {
    /// `name = value`: the type is the value's type.
    Value(toml::Value),
    /// `name = { type = "...", default = ..., values = [...], description = "..." }`.
    Table(RawArgTable),
}

/// The table form of an argument.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArgTable {
    /// `string`, `bool`, `int` or `enum`.
    #[serde(rename = "type")]
    pub kind: Option<SpannedString>,
    /// The value used when nothing overrides it.
    pub default: Option<Spanned<toml::Value>>,
    /// The allowed values of an `enum`.
    pub values: Option<Vec<SpannedString>>,
    /// What the argument is for.
    pub description: Option<SpannedString>,
}

impl<'de> Deserialize<'de> for RawArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawArg;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a default value (string, bool or integer) or a table { type, default, values, description }")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawArg, E> {
                Ok(RawArg::Value(toml::Value::Boolean(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawArg, E> {
                Ok(RawArg::Value(toml::Value::Integer(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawArg, E> {
                i64::try_from(v)
                    .map(|v| RawArg::Value(toml::Value::Integer(v)))
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawArg, E> {
                Ok(RawArg::Value(toml::Value::String(v.to_owned())))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawArg, A::Error> {
                RawArgTable::deserialize(MapAccessDeserializer::new(map)).map(RawArg::Table)
            }
        }
        d.deserialize_any(V)
    }
}

/// `[profiles.<name>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    /// What the profile is for.
    pub description: Option<SpannedString>,
    /// Argument values the profile sets (command-line `--arg` still wins).
    #[serde(default)]
    pub args: BTreeMap<SpannedString, Spanned<toml::Value>>,
}

/// `[user]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    /// User name.
    pub name: SpannedString,
    /// Primary group name (default: the user name).
    pub group: Option<SpannedString>,
    /// Numeric user id.
    pub uid: Spanned<toml::Value>,
    /// Numeric group id (default: the uid).
    pub gid: Option<Spanned<toml::Value>>,
    /// Home directory (default `/home/<name>`).
    pub home: Option<SpannedString>,
    /// Login shell (default `/bin/sh`).
    pub shell: Option<SpannedString>,
    /// What to do when a base image already has the uid or gid: `rename` or `error`.
    #[serde(rename = "on-conflict")]
    pub on_conflict: Option<SpannedString>,
}

/// `[metadata]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetadata {
    /// Add the `org.opencontainers.image.*` labels (default true).
    #[serde(rename = "oci-labels")]
    pub oci_labels: Option<Spanned<bool>>,
    /// ENV variables set from metadata: `NAME = "revision"|"branch"|"source"|"created"|"version"`.
    #[serde(default)]
    pub env: BTreeMap<SpannedString, SpannedString>,
    /// Labels added to every component.
    #[serde(default)]
    pub labels: BTreeMap<SpannedString, SpannedString>,
}

/// `[packages]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPackages {
    /// A flat apt repository (a directory with a `Packages` index) in the context.
    #[serde(rename = "apt-repo")]
    pub apt_repo: Option<SpannedString>,
    /// A directory of wheels in the context; pip then installs with `--no-index`.
    #[serde(rename = "find-links")]
    pub find_links: Option<SpannedString>,
    /// pip's package index (a PyPI-style simple index URL).
    #[serde(rename = "index-url")]
    pub index_url: Option<SpannedString>,
    /// More package indexes pip also reads.
    #[serde(default, rename = "extra-index-url")]
    pub extra_index_url: Vec<SpannedString>,
    /// Hosts pip trusts without valid HTTPS.
    #[serde(default, rename = "trusted-host")]
    pub trusted_host: Vec<SpannedString>,
    /// An apt mirror for every apt step.
    #[serde(rename = "apt-mirror")]
    pub apt_mirror: Option<Spanned<RawAptMirror>>,
    /// A local conda channel directory in the context for every conda step.
    #[serde(rename = "conda-channel-dir")]
    pub conda_channel: Option<SpannedString>,
}

/// `{ url = "http://...", suite = "bookworm", components = ["main"] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAptMirror {
    /// The archive's URL (http or https).
    pub url: SpannedString,
    /// The suite (distribution), e.g. `bookworm`.
    pub suite: SpannedString,
    /// The components (default `["main"]`).
    #[serde(default)]
    pub components: Vec<SpannedString>,
    /// Install without checking the archive's signature (default false:
    /// apt checks it with the base image's keyrings).
    pub trusted: Option<Spanned<bool>>,
}

/// `[component.<name>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawComponent {
    /// Templates (or components) whose keys this table starts from.
    pub extends: Option<Spanned<Extends>>,
    /// Lists of values: one component per combination, named by the
    /// table's name with the values inserted.
    pub matrix: Option<Spanned<RawMatrix>>,
    /// A component name or an external image reference.
    pub from: Option<SpannedString>,
    /// This component is the GPU flavour of another one.
    pub gpu: Option<Spanned<RawGpu>>,
    /// One line shown by `strata targets`.
    pub description: Option<SpannedString>,
    /// A condition over args; the component is built only when it holds.
    pub when: Option<SpannedString>,
    /// Naming rule (or rules) for this component's image, overriding `[stack].image`.
    pub image: Option<Spanned<NamingRules>>,
    /// Whether `build --push` and `bundle` include it (default true).
    pub publish: Option<Spanned<bool>>,
    /// `"target"` (default): the platform being built for; `"build"`: the
    /// build's own platform, for a builder whose output others copy.
    pub platform: Option<SpannedString>,
    /// Build context directory, relative to the stack file (default `.`).
    pub context: Option<SpannedString>,
    /// Ignore file for the context (default `<context>/.dockerignore` if present).
    pub ignore: Option<SpannedString>,
    /// The user the image runs as: the policy user (default) or `"root"`.
    pub user: Option<SpannedString>,
    /// Lints silenced for this component.
    #[serde(default)]
    pub allow: Vec<SpannedString>,
    /// Packages installed with apt before any other step.
    pub apt: Option<Spanned<Short<AptSpec>>>,
    /// Packages installed with dnf (or microdnf, yum), after apt.
    pub dnf: Option<Spanned<Short<OsPackagesSpec>>>,
    /// Packages installed with apk, after dnf.
    pub apk: Option<Spanned<Short<OsPackagesSpec>>>,
    /// Conda/micromamba environments, after apt.
    #[serde(default)]
    pub conda: Vec<Spanned<Short<CondaSpec>>>,
    /// Python packages, after conda.
    pub pip: Option<Spanned<Short<PipSpec>>>,
    /// Files copied after the package steps.
    #[serde(default)]
    pub copy: Vec<Spanned<Short<CopySpec>>>,
    /// Commands run after the copies.
    #[serde(default)]
    pub run: Vec<Spanned<Short<RunSpec>>>,
    /// Ordered steps, after all the shorthand fields above.
    #[serde(default)]
    pub steps: Vec<Spanned<RawStep>>,
    /// Environment of every step and of the image.
    #[serde(default)]
    pub env: BTreeMap<SpannedString, SpannedString>,
    /// Working directory of every step and of the image.
    pub workdir: Option<SpannedString>,
    /// Image labels.
    #[serde(default)]
    pub labels: BTreeMap<SpannedString, SpannedString>,
    /// Ports, `8080` or `"51820/udp"`.
    #[serde(default)]
    pub expose: Vec<Spanned<toml::Value>>,
    /// Volumes declared by the image.
    #[serde(default)]
    pub volumes: Vec<SpannedString>,
    /// Image entrypoint (exec form).
    pub entrypoint: Option<Spanned<Command>>,
    /// Image default command (exec form).
    pub cmd: Option<Spanned<Command>>,
    /// Image healthcheck.
    pub healthcheck: Option<Spanned<RawHealthcheck>>,
    /// Signal that stops the container.
    #[serde(rename = "stop-signal")]
    pub stop_signal: Option<SpannedString>,
    /// Commands run in the finished image; the image is returned only if they pass.
    #[serde(default)]
    pub test: Vec<Spanned<Short<TestSpec>>>,
}

/// `gpu = { of = "node", base = "nvidia/cuda:...", steps = [...] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGpu {
    /// The CPU component this is the GPU flavour of.
    pub of: SpannedString,
    /// The CUDA base image.
    pub base: SpannedString,
    /// `replay` (re-run the CPU component's steps on the CUDA base) or
    /// `copy` (graft `copy` paths from the CPU image); default `replay`,
    /// or `copy` when `copy` lists paths.
    pub mode: Option<SpannedString>,
    /// Steps run on the CUDA base first, before the replay or the copy.
    #[serde(default)]
    pub steps: Vec<Spanned<RawStep>>,
    /// Offline apt repository for this flavour's apt steps (the CUDA base's
    /// distribution needs its own packages), relative to each step's context.
    #[serde(rename = "apt-repo")]
    pub apt_repo: Option<SpannedString>,
    /// Paths copied from the CPU component (its environment), `copy` mode.
    #[serde(default)]
    pub copy: Vec<SpannedString>,
    /// `NVIDIA_DRIVER_CAPABILITIES` (default `compute,utility`).
    pub capabilities: Option<SpannedString>,
}

/// A healthcheck.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthcheck {
    /// The test command (exec form), or `["NONE"]`.
    pub cmd: Spanned<Command>,
    /// Time between checks, e.g. `"30s"`.
    pub interval: Option<SpannedString>,
    /// Time one check may take.
    pub timeout: Option<SpannedString>,
    /// Grace period after start.
    #[serde(rename = "start-period")]
    pub start_period: Option<SpannedString>,
    /// Failures before unhealthy.
    pub retries: Option<Spanned<i64>>,
}

/// Parses a stack file's text into the raw types.
pub fn parse(text: &str) -> Result<RawStackFile, toml::de::Error> {
    toml::from_str(text)
}
