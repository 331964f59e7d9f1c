//! The resolved stack: validated components in dependency order.
//!
//! A value of these types has passed every check: each `from` names an
//! enabled component or a valid image reference, args have their final
//! typed values, conditions are evaluated, and there are no cycles.

pub mod render;

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Serialize;

use crate::spec::diag::{Diagnostic, SourceFile};
pub use crate::spec::image_ref::ImageRef;

/// A validated stack.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The stack file, for locating spans.
    pub file: SourceFile,
    /// `[stack].name`.
    pub name: String,
    /// `[stack].description`.
    pub description: Option<String>,
    /// Every declared arg with its final value.
    pub args: Vec<Arg>,
    /// The profile selected, if any.
    pub profile: Option<String>,
    /// Every declared profile.
    pub profiles: Vec<Profile>,
    /// The user policy, if the stack has one.
    pub user: Option<UserPolicy>,
    /// Images shipped with the stack but not built by it.
    pub third_party: Vec<ThirdParty>,
    /// Labels and env from version control and time.
    pub metadata: MetadataPolicy,
    /// Every component, enabled or not, dependencies first.
    pub components: Vec<Component>,
    /// The component built when no target is given.
    pub default_target: Option<String>,
    /// `[stack].allow`: lint ids silenced everywhere, with their spans.
    pub allow: Vec<(String, Range<usize>)>,
    /// Lint warnings found while resolving.
    pub warnings: Vec<Diagnostic>,
    /// Position of each component in `components`, by name (built with it).
    pub(crate) index: BTreeMap<String, usize>,
}

impl Stack {
    /// The component with this name.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.index.get(name).and_then(|&i| self.components.get(i))
    }

    /// Enabled components, dependencies first.
    pub fn enabled(&self) -> impl Iterator<Item = &Component> {
        self.components.iter().filter(|c| c.enabled)
    }

    /// An arg's final value.
    pub fn arg(&self, name: &str) -> Option<&ArgValue> {
        self.args.iter().find(|a| a.name == name).map(|a| &a.value)
    }

    /// Every edge between enabled components.
    pub fn edges(&self) -> Vec<Edge> {
        let mut edges = Vec::new();
        for c in self.enabled() {
            for (to, kind) in c.dependencies() {
                edges.push(Edge {
                    from: c.name.clone(),
                    to,
                    kind,
                });
            }
        }
        edges.sort();
        edges.dedup();
        edges
    }
}

/// The type of an arg.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "type", content = "values")]
pub enum ArgType {
    /// Any text.
    String,
    /// `true`/`false` (also accepts 1/0, yes/no, on/off in any case).
    Bool,
    /// A 64-bit integer.
    Int,
    /// One of a fixed set of strings.
    Enum(Vec<String>),
}

/// A typed value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ArgValue {
    /// A string or enum value.
    String(String),
    /// A bool.
    Bool(bool),
    /// An integer.
    Int(i64),
}

impl std::fmt::Display for ArgValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArgValue::String(s) => f.write_str(s),
            ArgValue::Bool(b) => write!(f, "{b}"),
            ArgValue::Int(i) => write!(f, "{i}"),
        }
    }
}

/// Where an arg's final value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "name")]
pub enum ArgOrigin {
    /// The declared default.
    Default,
    /// The selected profile.
    Profile(String),
    /// `--arg` or `build-arg:`.
    Override,
}

/// A declared arg.
#[derive(Debug, Clone, Serialize)]
pub struct Arg {
    /// Its name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: ArgType,
    /// Its declared default.
    pub default: ArgValue,
    /// Its final value.
    pub value: ArgValue,
    /// Where the final value came from.
    pub origin: ArgOrigin,
    /// What it is for.
    pub description: Option<String>,
    /// Where it is declared.
    #[serde(skip)]
    pub span: Range<usize>,
    /// Declared by a bare default (`name = value`), its type read from the
    /// value, rather than by a table with `type`.
    #[serde(skip)]
    pub by_value: bool,
}

/// A named set of arg values.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// The values it sets.
    pub args: BTreeMap<String, ArgValue>,
}

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

/// What a component starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "ref")]
pub enum Base {
    /// An external image.
    Image(ImageRef),
    /// Another component of the stack.
    Component(String),
    /// Nothing.
    Scratch,
}

/// A GPU flavour of a CPU component.
#[derive(Debug, Clone, Serialize)]
pub struct Gpu {
    /// The CPU component.
    pub of: String,
    /// How the CPU component's environment reaches the CUDA base.
    pub mode: GpuMode,
    /// Steps run on the CUDA base before the replay or the copy.
    pub steps: Vec<Step>,
    /// Offline apt repository for the flavour's apt steps (replayed ones included).
    pub apt_repo: Option<String>,
    /// Paths copied from it (`copy` mode).
    pub copy: Vec<String>,
    /// `NVIDIA_DRIVER_CAPABILITIES`.
    pub capabilities: String,
    /// Where `gpu = ...` is written: build-time checks point here.
    #[serde(skip)]
    pub span: Range<usize>,
}

/// How a GPU flavour gets the CPU component's environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuMode {
    /// Re-run the steps of the CPU component and of its component
    /// ancestors (up to their external base) on the CUDA base.
    Replay,
    /// Copy listed paths from the built CPU image.
    Copy,
}

/// The platform a component's base and steps run on (`platform = ...`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunsOn {
    /// The platform being built for (`TARGETPLATFORM`): an image of it.
    #[default]
    Target,
    /// The build's own platform (`BUILDPLATFORM`), natively: a builder
    /// whose output target components copy (cross-compilation).
    Build,
}

impl RunsOn {
    /// Its word in the stack file.
    pub fn word(self) -> &'static str {
        match self {
            RunsOn::Target => "target",
            RunsOn::Build => "build",
        }
    }
}

/// Who the image runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunAs {
    /// The stack's user policy.
    Policy,
    /// root, said explicitly (or no policy exists).
    Root,
}

/// A component: one image of the stack.
#[derive(Debug, Clone, Serialize)]
pub struct Component {
    /// Its name.
    pub name: String,
    /// Where `[component.<name>]` is.
    #[serde(skip)]
    pub span: Range<usize>,
    /// One line for `strata targets`.
    pub description: Option<String>,
    /// Whether it is built with the current args and profile.
    pub enabled: bool,
    /// Its `when` condition, as written.
    pub condition: Option<String>,
    /// What it starts from.
    pub base: Base,
    /// Set for a GPU flavour.
    pub gpu: Option<Gpu>,
    /// The image's primary name: from the naming rule, or the first of a
    /// list of rules. Other components name it by this (`from`), and it
    /// is the name shown for the image.
    pub image: ImageRef,
    /// The image's other names, from the rest of a list of naming rules
    /// (`image = ["reg/{component}:{version}", "reg/{component}:latest"]`):
    /// exported, pushed and bundled with the primary name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_tags: Vec<ImageRef>,
    /// Included in push and bundle.
    pub publish: bool,
    /// The platform its base and steps run on.
    pub platform: RunsOn,
    /// Build context directory, relative to the stack file.
    pub context: String,
    /// Ignore file, relative to the stack file.
    pub ignore: Option<String>,
    /// Who the image runs as.
    pub run_as: RunAs,
    /// Build steps in order.
    pub steps: Vec<Step>,
    /// The image config it declares.
    pub config: ConfigSpec,
    /// Lints silenced.
    pub allow: Vec<String>,
    /// Commands run in the finished image before it is returned.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<Test>,
    /// The templates or matrix its table came from, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// Every path it reads from the build context, with where it is named
    /// (checked against the context before a build: `crate::context`).
    #[serde(skip)]
    pub inputs: Vec<ContextInput>,
    /// Where its keys are written, for lints and build-time checks.
    #[serde(skip)]
    pub keys: KeySpans,
}

/// Where a component's keys are written (each when written).
#[derive(Debug, Clone, Default)]
pub struct KeySpans {
    /// `from = "..."`.
    pub from: Option<Range<usize>>,
    /// `gpu = { base = "..." }`.
    pub gpu_base: Option<Range<usize>>,
    /// `user = "..."`.
    pub user: Option<Range<usize>>,
    /// `platform = "..."`.
    pub platform: Option<Range<usize>>,
    /// Each `allow` entry.
    pub allow: Vec<(String, Range<usize>)>,
    /// Each key of the component's `env`.
    pub env: Vec<(String, Range<usize>)>,
}

/// Where a component's table came from when it was not written as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// The templates (or components) it extends, in merge order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extends: Vec<String>,
    /// The matrix it is one combination of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matrix: Option<MatrixInstance>,
}

/// One combination of a matrix table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatrixInstance {
    /// The table's name as written, e.g. `{parent}-nn`.
    pub table: String,
    /// Each matrix name with this instance's value.
    pub values: BTreeMap<String, MatrixValue>,
}

/// A matrix value: a string, or a table of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum MatrixValue {
    /// `"fateflow"`.
    String(String),
    /// `{ name = "fateflow", when = "basic" }`.
    Table(BTreeMap<String, String>),
}

/// A path a component reads from the build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextInput {
    /// The path as written (after interpolation): relative to the
    /// component's context directory, or to the build context for
    /// [`InputKind::ContextDir`] and [`InputKind::IgnoreFile`].
    pub path: String,
    /// What must be there.
    pub kind: InputKind,
    /// The key that names it.
    pub span: Range<usize>,
}

/// What a [`ContextInput`] must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum InputKind {
    /// `context`: a directory.
    ContextDir,
    /// `ignore`: a file.
    IgnoreFile,
    /// A copy source: a file or a directory.
    CopySource,
    /// A pip requirements file.
    Requirements,
    /// A conda environment file.
    CondaFile,
    /// An offline apt repository: a directory with a `Packages` index.
    AptRepo,
    /// pip's `find-links`: a directory with wheels or source archives.
    WheelDir,
    /// A local conda channel: a directory.
    CondaChannel,
}

impl Component {
    /// Every name of the image: the primary name, then the extra tags.
    pub fn names(&self) -> impl Iterator<Item = &ImageRef> {
        std::iter::once(&self.image).chain(&self.extra_tags)
    }

    /// Components this one needs, with the kind of edge.
    pub fn dependencies(&self) -> Vec<(String, EdgeKind)> {
        let mut deps = Vec::new();
        if let Base::Component(c) = &self.base {
            deps.push((c.clone(), EdgeKind::From));
        }
        if let Some(g) = &self.gpu {
            deps.push((g.of.clone(), EdgeKind::Gpu));
        }
        for s in &self.steps {
            if let StepKind::Copy(Copy {
                source: CopySource::Component(c),
                ..
            }) = &s.kind
            {
                deps.push((c.clone(), EdgeKind::CopyFrom));
            }
        }
        deps
    }
}

/// An edge of the component graph.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Edge {
    /// The dependent component.
    pub from: String,
    /// The component it needs.
    pub to: String,
    /// How.
    pub kind: EdgeKind,
}

/// How one component needs another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeKind {
    /// Built FROM it.
    From,
    /// Copies files from it.
    CopyFrom,
    /// Is its GPU flavour.
    Gpu,
}

impl EdgeKind {
    /// The label used in graph output.
    pub fn label(self) -> &'static str {
        match self {
            EdgeKind::From => "FROM",
            EdgeKind::CopyFrom => "COPY --from",
            EdgeKind::Gpu => "GPU of",
        }
    }
}

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

/// A healthcheck.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Healthcheck {
    /// Test command (`["CMD", ...]`, `["CMD-SHELL", ...]` or `["NONE"]`).
    pub test: Vec<String>,
    /// Nanoseconds between checks.
    pub interval_ns: Option<u64>,
    /// Nanoseconds one check may take.
    pub timeout_ns: Option<u64>,
    /// Nanoseconds of grace after start.
    pub start_period_ns: Option<u64>,
    /// Failures before unhealthy.
    pub retries: Option<u32>,
}

/// The image config a component declares (merged over its base's later).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConfigSpec {
    /// Env, in order.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub workdir: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Ports, `8080/tcp`.
    pub expose: Vec<String>,
    /// Volumes.
    pub volumes: Vec<String>,
    /// Entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// Cmd.
    pub cmd: Option<Vec<String>>,
    /// Healthcheck.
    pub healthcheck: Option<Healthcheck>,
    /// Stop signal.
    pub stop_signal: Option<String>,
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
