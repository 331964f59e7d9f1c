//! A component: its base, platform, user, inputs from the build context,
//! where its keys are written, and the edges between components.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Serialize;

use super::{ConfigSpec, Copy, CopySource, ImageRef, Step, StepKind, Test};

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
