//! The stack file as written: serde types that keep every value's span.
//!
//! Nothing here is checked beyond TOML syntax and value types; `resolve`
//! turns these into the validated model in `crate::graph`.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, DeserializeOwned, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::{Deserialize, Deserializer};
use serde_spanned::Spanned;

mod reuse;
pub use reuse::{Extends, MatrixValue, RawMatrix};

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

/// A command: a shell string or an exec-form list.
#[derive(Debug, Clone)]
pub enum Command {
    /// `"make all"`: run with `/bin/sh -c`.
    Shell(String),
    /// `["make", "all"]`.
    Exec(Vec<String>),
}

/// The shell a [`Command::Shell`] runs with, as Docker's shell form does.
pub const SHELL: [&str; 2] = ["/bin/sh", "-c"];

impl Command {
    /// The argv the command runs: the shell form wrapped in [`SHELL`].
    pub fn argv(&self) -> Vec<String> {
        match self {
            Command::Shell(s) => vec![SHELL[0].to_owned(), SHELL[1].to_owned(), s.clone()],
            Command::Exec(a) => a.clone(),
        }
    }

    /// What the user wrote, for progress names and messages: the shell
    /// form's script, or the exec form's words joined by spaces.
    pub fn shown(argv: &[String]) -> String {
        match argv {
            [sh, dash_c, script] if sh == SHELL[0] && dash_c == SHELL[1] => script.clone(),
            args => args.join(" "),
        }
    }
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Command;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a command: a string, or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Command, E> {
                Ok(Command::Shell(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Command, A::Error> {
                Vec::<String>::deserialize(SeqAccessDeserializer::new(seq)).map(Command::Exec)
            }
        }
        d.deserialize_any(V)
    }
}

/// A value written either in a short form or as a table.
pub trait Shorthand: Sized + DeserializeOwned {
    /// What the error says was expected.
    const EXPECTING: &'static str;
    /// The value written as a bare string, if that form exists.
    fn from_string(_: String) -> Option<Self> {
        None
    }
    /// The value written as a list of strings, if that form exists.
    fn from_list(_: Vec<SpannedString>) -> Option<Self> {
        None
    }
}

/// A value of `T` in any of its written forms (string, list or table).
#[derive(Debug)]
pub struct Short<T>(pub T);

impl<T> std::ops::Deref for Short<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<'de, T: Shorthand> Deserialize<'de> for Short<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ShorthandVisitor::<T>(PhantomData))
            .map(Short)
    }
}

struct ShorthandVisitor<T>(PhantomData<T>);

impl<'de, T: Shorthand> Visitor<'de> for ShorthandVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::from_string(v.to_owned()).ok_or_else(|| E::invalid_type(Unexpected::Str(v), &self))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
        let items = Vec::<SpannedString>::deserialize(SeqAccessDeserializer::new(seq))?;
        T::from_list(items).ok_or_else(|| de::Error::invalid_type(Unexpected::Seq, &self))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
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

/// `image = "rule"` or `image = ["rule", "rule", ...]`: the naming rules of
/// an image, its primary name first, then its extra tags.
#[derive(Debug, Clone)]
pub struct NamingRules(pub Vec<SpannedString>);

impl NamingRules {
    /// Each rule with its own span: the one rule of the string form is
    /// located at the whole value (`at`, the span of the `Spanned` around it).
    pub fn located(&self, at: std::ops::Range<usize>) -> Vec<SpannedString> {
        match self.0.as_slice() {
            [one] if one.span() == (0..0) => vec![Spanned::new(at, one.get_ref().clone())],
            rules => rules.to_vec(),
        }
    }
}

impl<'de> Deserialize<'de> for NamingRules {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NamingRules;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a naming rule, or a list of naming rules")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NamingRules, E> {
                // The span is the whole value's; `Spanned<NamingRules>` keeps it.
                Ok(NamingRules(vec![Spanned::new(0..0, v.to_owned())]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<NamingRules, A::Error> {
                Vec::<SpannedString>::deserialize(SeqAccessDeserializer::new(seq)).map(NamingRules)
            }
        }
        d.deserialize_any(V)
    }
}

/// One path or several.
#[derive(Debug, Clone)]
pub struct Paths(pub Vec<String>);

impl<'de> Deserialize<'de> for Paths {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Paths;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a path or a list of paths")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Paths, E> {
                Ok(Paths(vec![v.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Paths, A::Error> {
                Vec::<String>::deserialize(SeqAccessDeserializer::new(seq)).map(Paths)
            }
        }
        d.deserialize_any(V)
    }
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

/// Parses a stack file's text into the raw types.
pub fn parse(text: &str) -> Result<RawStackFile, toml::de::Error> {
    toml::from_str(text)
}
