//! Resolved stack -> BuildKit LLB, one module per step kind.
//!
//! `lower` turns one component (and everything it needs) into a
//! `pb::Definition` plus the OCI image config the image should carry.
//! What comes from outside the stack file (base image configs, the
//! session, VCS metadata, the platform) arrives in a [`BuildContext`].
//!
//! `driver` lowers one component after another (base, user policy, env,
//! then each step through its kind's module); `context` holds what lowering
//! reads from the build context: context directories, ignore files, the
//! include patterns of context sources.

pub mod apt;
pub mod conda;
pub mod os;
pub mod pip;
pub mod shell;
pub mod user;

use std::collections::BTreeMap;
use std::ops::Range;

use crate::graph::{ImageRef, Stack};

pub use strata_llb::Platform;

pub use context::{clean_path, ignore_files, parse_ignore};
pub(crate) use context::{context_prefix, ignore_path};
use driver::lower_here;
pub use driver::shared_context;
use driver::{Builder, Built, Lowerer};

/// A base image as the engine resolved it.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseImage {
    /// The reference for the `docker-image://` source (pinned `@digest` when known).
    pub reference: String,
    /// The image's config JSON (the whole OCI/Docker config document).
    pub config: serde_json::Value,
}

/// Version-control and time metadata (buildx sends `vcs:revision`/`vcs:source`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildMetadata {
    /// Commit id.
    pub revision: Option<String>,
    /// Branch name.
    pub branch: Option<String>,
    /// Repository URL.
    pub source: Option<String>,
    /// SOURCE_DATE_EPOCH: the only source of a creation time.
    pub source_date_epoch: Option<i64>,
}

/// Everything `lower` needs that is not in the stack file.
#[derive(Debug, Clone, Default)]
pub struct BuildContext {
    /// Target platform.
    pub platform: Platform,
    /// The build's own platform (`BUILDPLATFORM`): where components with
    /// `platform = "build"` run.
    pub build_platform: Platform,
    /// Resolved external images, keyed by `ImageRef::normalized()`.
    /// Missing entries are used by plain reference with an empty config.
    pub bases: BTreeMap<String, BaseImage>,
    /// The same for the bases of build-platform components, resolved for
    /// [`BuildContext::build_platform`] (see [`build_platform_images`]).
    pub build_bases: BTreeMap<String, BaseImage>,
    /// BuildKit session id for `local://` sources (None for `strata llb`).
    pub session_id: Option<String>,
    /// `image-resolve-mode` for image sources (`default`, `pull`, `local`).
    pub image_resolve_mode: Option<ResolveMode>,
    /// VCS and time metadata.
    pub metadata: BuildMetadata,
    /// `no-cache`: ignore the cache for every op.
    pub no_cache: bool,
    /// Extra labels (`label:*` options).
    pub labels: BTreeMap<String, String>,
    /// Ignore files read from the context, keyed by path in the context
    /// (see [`ignore_files`]); missing ones are treated as empty.
    pub ignore_files: BTreeMap<String, String>,
    /// Context directories (by prefix) whose copy steps all read one
    /// source holding the union of what they read ([`shared_context`]):
    /// a client that builds several components in one session sets it,
    /// so BuildKit transfers each file once instead of once per step.
    /// None: every step has its own source.
    pub shared_context: Option<BTreeMap<String, Vec<String>>>,
}

/// A lowered component.
#[derive(Debug, Clone)]
pub struct Lowered {
    /// The LLB, terminal op last.
    pub definition: strata_proto::pb::Definition,
    /// The image config JSON to return as `containerimage.config`.
    pub image_config: serde_json::Value,
    /// The target's tests, in the stack's order: each solved on its own,
    /// and the image returned only when every one passed.
    pub tests: Vec<LoweredTest>,
}

/// One `test` entry of the target, lowered.
#[derive(Debug, Clone)]
pub struct LoweredTest {
    /// Its name in progress and messages.
    pub name: String,
    /// The LLB running it on the finished image, terminal op last.
    pub definition: strata_proto::pb::Definition,
    /// Where it is written in the stack file.
    pub span: Range<usize>,
}

/// A problem found while lowering, located in the stack file.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct LowerError {
    /// The kind of problem.
    pub code: crate::spec::ErrorCode,
    /// What is wrong.
    pub message: String,
    /// Where in the stack file.
    pub span: Range<usize>,
}

/// A warning for each `[metadata].env` entry whose value this build does
/// not know (no git branch, revision, source or SOURCE_DATE_EPOCH): the
/// image would silently lack that variable.
pub fn unknown_metadata(stack: &Stack, m: &BuildMetadata) -> Vec<crate::spec::Diagnostic> {
    metadata::unknown(stack, m)
}

/// External images the target needs, whose configs the caller should resolve
/// for the target platform before calling [`lower`]: the bases of every
/// component on the way that runs on the target platform. (Images only
/// copied from need no config.)
pub fn external_images(stack: &Stack, target: &str) -> Vec<ImageRef> {
    images_on(stack, target, RunsOn::Target)
}

/// The bases of the build-platform components the target needs, to
/// resolve for the build platform into [`BuildContext::build_bases`].
pub fn build_platform_images(stack: &Stack, target: &str) -> Vec<ImageRef> {
    images_on(stack, target, RunsOn::Build)
}

fn images_on(stack: &Stack, target: &str, on: RunsOn) -> Vec<ImageRef> {
    let mut out: Vec<ImageRef> = needed(stack, target)
        .filter(|c| c.platform == on)
        .filter_map(|c| match &c.base {
            Base::Image(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `target` and the enabled components it needs, in the stack's order:
/// the components whose context inputs a build of `target` reads.
pub fn needed_components<'s>(stack: &'s Stack, target: &str) -> Vec<&'s Component> {
    needed(stack, target).filter(|c| c.enabled).collect()
}

/// `target` and the components it needs, in the stack's order (dependencies first).
fn needed<'s>(stack: &'s Stack, target: &str) -> impl Iterator<Item = &'s Component> {
    let names = closure(stack, target);
    stack
        .components
        .iter()
        .filter(move |c| names.contains(&c.name))
}

/// Lowers `target` (and the components it needs) to LLB.
pub fn lower(stack: &Stack, target: &str, ctx: &BuildContext) -> Result<Lowered, LowerError> {
    // Dropping a long chain of ops recurses once per op; a thread with a
    // roomy stack keeps very deep stacks (thousands of components) safe.
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("strata-lower".into())
            .stack_size(LOWER_STACK)
            .spawn_scoped(scope, || lower_here(stack, target, ctx))
            .map_err(|e| LowerError {
                code: crate::spec::ErrorCode::InvalidValue,
                message: format!("cannot start the lowering thread: {e}"),
                span: 0..0,
            })?
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Stack size of the lowering thread (reserved, not committed, memory).
const LOWER_STACK: usize = 256 << 20;

/// `target` and every component it needs.
fn closure(stack: &Stack, target: &str) -> std::collections::BTreeSet<String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut todo = vec![target.to_owned()];
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(c) = stack.component(&name) {
            todo.extend(c.dependencies().into_iter().map(|(d, _)| d));
        }
    }
    seen
}

/// The PATH of an image that sets none (what Docker uses).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

mod context;
mod copy;
mod driver;
mod gpu;
mod metadata;
mod packages;
mod run;
mod test;

use strata_llb::ResolveMode;

use crate::graph::{Base, Component, RunsOn};
