//! Resolved stack -> BuildKit LLB, one module per step kind.
//!
//! `lower` turns one component (and everything it needs) into a
//! `pb::Definition` plus the OCI image config the image should carry.
//! What comes from outside the stack file (base image configs, the
//! session, VCS metadata, the platform) arrives in a [`BuildContext`].

pub mod apt;
pub mod conda;
pub mod os;
pub mod pip;
pub mod shell;
pub mod user;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use crate::graph::{ImageRef, Stack};

pub use strata_llb::Platform;

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

/// Ignore files (paths in the context) that lowering `target` reads, for
/// the caller to fetch into [`BuildContext::ignore_files`].
pub fn ignore_files(stack: &Stack, target: &str) -> Vec<String> {
    let set: std::collections::BTreeSet<String> = needed(stack, target).map(ignore_path).collect();
    set.into_iter().collect()
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

/// The component's context directory inside the build context, as
/// `dir/` (empty for the build context itself): the prefix of its paths.
pub(crate) fn context_prefix(c: &Component) -> String {
    match c.context.trim_end_matches('/') {
        "" | "." => String::new(),
        dir => format!("{dir}/"),
    }
}

/// The ignore file a component's context is read with, relative to the build context.
pub(crate) fn ignore_path(c: &Component) -> String {
    c.ignore
        .clone()
        .unwrap_or_else(|| format!("{}.dockerignore", context_prefix(c)))
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

fn lower_here(stack: &Stack, target: &str, ctx: &BuildContext) -> Result<Lowered, LowerError> {
    let mut l = Lowerer {
        stack,
        ctx,
        built: BTreeMap::new(),
        platform: ctx.platform.clone(),
        recorded: RefCell::default(),
    };
    // Dependencies first (the stack's order), so lowering a component never
    // recurses through a long chain of bases.
    for c in needed(stack, target).filter(|c| c.name != target && c.enabled) {
        l.component(&c.name, &mut Vec::new())?;
    }
    let built = l.component(target, &mut Vec::new())?;
    let options = MarshalOptions {
        platform: l.platform.clone(),
        source_infos: vec![SourceInfo {
            filename: stack.file.name.clone(),
            data: stack.file.text.clone().into_bytes(),
            language: "toml".into(),
        }],
    };
    let definition = built.state.marshal(&options).map_err(|e| LowerError {
        code: crate::spec::ErrorCode::InvalidValue,
        message: format!("could not encode the LLB of `{target}`: {e}"),
        span: 0..0,
    })?;
    let mut tests = Vec::new();
    if let Some(c) = stack.component(target) {
        for t in &c.tests {
            let state = test::lower(&l, c, &built, t);
            let definition = state.marshal(&options).map_err(|e| LowerError {
                code: crate::spec::ErrorCode::InvalidValue,
                message: format!("could not encode the LLB of a test of `{target}`: {e}"),
                span: t.span.clone(),
            })?;
            tests.push(LoweredTest {
                name: test::name(t),
                definition,
                span: t.span.clone(),
            });
        }
    }
    let created = ctx.metadata.source_date_epoch.map(crate::image::rfc3339);
    let image_config = built.config.to_document(
        &ctx.platform.os,
        &ctx.platform.architecture,
        ctx.platform.variant.as_deref(),
        created.as_deref(),
    );
    Ok(Lowered {
        definition,
        image_config,
        tests,
    })
}

/// The include patterns of a context source for `include` paths of a
/// component whose context directory is `prefix` (empty: everything).
fn context_includes(prefix: &str, include: &[String]) -> Vec<String> {
    // BuildKit matches include patterns against `dir/file` paths, so
    // `.` (or `./`) would match nothing: the whole directory is meant.
    let whole = |i: &str| matches!(i.trim_start_matches("./"), "" | "." | "/");
    if prefix.is_empty() && include.iter().any(|i| whole(i)) {
        return Vec::new();
    }
    include
        .iter()
        .map(|i| {
            if whole(i) {
                prefix.trim_end_matches('/').to_owned()
            } else {
                format!("{prefix}{}", i.trim_start_matches("./"))
            }
        })
        .collect()
}

/// What the copy steps of every enabled component read from the context,
/// per context directory (see [`BuildContext::shared_context`]): lowers
/// them all once and collects their include patterns.
pub fn shared_context(stack: &Stack, ctx: &BuildContext) -> BTreeMap<String, Vec<String>> {
    let l = Lowerer {
        stack,
        ctx,
        built: BTreeMap::new(),
        platform: ctx.platform.clone(),
        recorded: RefCell::default(),
    };
    let mut l = l;
    for c in stack.components.iter().filter(|c| c.enabled) {
        // A component that cannot be lowered adds nothing; its own build says why.
        let _ = l.component(&c.name, &mut Vec::new());
    }
    l.recorded
        .into_inner()
        .into_iter()
        .map(|(prefix, set)| {
            (
                prefix,
                set.map(|s| s.into_iter().collect()).unwrap_or_default(),
            )
        })
        .collect()
}

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

/// A lowered component: its filesystem and its config.
#[derive(Clone)]
struct Built {
    state: State,
    config: ImageConfig,
    /// Cache mount namespace: the root base (see `packages::cache_ns`),
    /// carried along so no step walks the chain of bases again.
    cache_ns: String,
}

struct Lowerer<'a> {
    stack: &'a Stack,
    ctx: &'a BuildContext,
    built: BTreeMap<String, Built>,
    platform: Platform,
    /// What copy steps read from the context, per context directory
    /// (None: the whole directory), for [`shared_context`].
    recorded: RefCell<BTreeMap<String, Option<BTreeSet<String>>>>,
}

impl Lowerer<'_> {
    fn location(&self, span: &Range<usize>) -> SourceLocation {
        let start = self.stack.file.line_col(span.start);
        let end = self.stack.file.line_col(span.end.max(span.start));
        let line = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        SourceLocation::new(
            0,
            vec![SourceRange::lines(line(start.line), line(end.line))],
        )
    }

    /// The platform a component's ops run on.
    fn platform_of(&self, on: RunsOn) -> &Platform {
        match on {
            RunsOn::Target => &self.platform,
            RunsOn::Build => &self.ctx.build_platform,
        }
    }

    /// An external image of the platform `on`, with its config.
    fn image(&self, r: &ImageRef, on: RunsOn) -> (State, ImageConfig) {
        let bases = match on {
            RunsOn::Target => &self.ctx.bases,
            RunsOn::Build => &self.ctx.build_bases,
        };
        let base = bases.get(&r.normalized());
        let reference = base.map_or_else(|| r.normalized(), |b| b.reference.clone());
        let mode = self.ctx.image_resolve_mode.unwrap_or_default();
        let state = Image::new(&reference)
            .resolve_mode(mode)
            .platform(self.platform_of(on).clone())
            .into_state();
        let config = base
            .map(|b| ImageConfig::from_document(&b.config))
            .unwrap_or_default();
        (state, config)
    }

    fn component(&mut self, name: &str, path: &mut Vec<String>) -> Result<Built, LowerError> {
        if let Some(b) = self.built.get(name) {
            return Ok(b.clone());
        }
        let stack = self.stack;
        let c = stack.component(name).ok_or_else(|| LowerError {
            code: crate::spec::ErrorCode::UnknownComponent,
            message: format!("`{name}` is not a component of this stack"),
            span: 0..0,
        })?;
        if !c.enabled {
            return Err(LowerError {
                code: crate::spec::ErrorCode::DisabledDependency,
                message: format!(
                    "component `{name}` is disabled by `when = \"{}\"`; change the args or profile to build it",
                    c.condition.as_deref().unwrap_or("")
                ),
                span: c.span.clone(),
            });
        }
        if path.iter().any(|p| p == name) {
            return Err(LowerError {
                code: crate::spec::ErrorCode::Cycle,
                message: format!("components form a cycle through `{name}`"),
                span: c.span.clone(),
            });
        }
        path.push(name.to_owned());
        let mut b = Builder::start(self, c, path)?;
        for step in &c.steps {
            b = match &c.gpu {
                Some(g) => self.step(b, c, &gpu::flavoured(step, g), path)?,
                None => self.step(b, c, step, path)?,
            };
        }
        let mut b = metadata::finish(self, c, b);
        if let Some(g) = &c.gpu {
            b = gpu::check(self, c, g, b);
        }
        path.pop();
        self.built.insert(name.to_owned(), b.built.clone());
        Ok(b.built)
    }

    fn step(
        &mut self,
        mut b: Builder,
        c: &Component,
        step: &Step,
        path: &mut Vec<String>,
    ) -> Result<Builder, LowerError> {
        let loc = self.location(&step.span);
        match &step.kind {
            StepKind::Run(r) => b.built.state = run::lower(self, &b, c, r, loc),
            StepKind::Copy(cp) => {
                let from = match &cp.source {
                    CopySource::Context => None,
                    CopySource::Component(other) => Some(self.component(other, path)?.state),
                    CopySource::Image(r) => Some(self.image(r, c.platform).0),
                    CopySource::Http { .. } | CopySource::Git { .. } => {
                        Some(copy::remote_source(c, cp, loc.clone()))
                    }
                };
                b.built.state = copy::lower(self, &b, c, cp, from, loc);
            }
            StepKind::Apt(a) => b.built.state = packages::apt(self, &b, c, a, loc),
            StepKind::Dnf(p) => b.built.state = packages::dnf(self, &b, c, p, loc),
            StepKind::Apk(p) => b.built.state = packages::apk(self, &b, c, p, loc),
            StepKind::Pip(p) => {
                b.built.state = packages::pip(self, &b, c, p, loc);
                if let Some(v) = &p.venv {
                    b.built.config.set_env("VIRTUAL_ENV", v);
                    // The venv's bin first, once: a second pip step into
                    // the same venv (here or in a base) must not repeat it.
                    let bin = format!("{v}/bin");
                    let path = b.built.config.env_value("PATH").unwrap_or(DEFAULT_PATH);
                    let rest: Vec<&str> = path.split(':').filter(|d| *d != bin).collect();
                    let path = if rest.is_empty() {
                        bin
                    } else {
                        format!("{bin}:{}", rest.join(":"))
                    };
                    b.built.config.set_env("PATH", &path);
                }
            }
            StepKind::Conda(cd) => b.built.state = packages::conda(self, &b, c, cd, loc),
            StepKind::Env { vars, .. } => {
                for (k, v) in vars {
                    b.built.config.set_env_expanded(k, v);
                }
            }
            StepKind::Workdir { path: dir } => {
                b.built.config.workdir = Some(dir.clone());
                b.built.state = b.built.state.file(
                    FileActions::new()
                        .mkdir(dir, 0o755, true, None)
                        .custom_name(format!("[{}] WORKDIR {dir}", c.name))
                        .location(loc),
                );
            }
        }
        Ok(b)
    }

    /// A `local://context` source holding only `include` (and never what the ignore file excludes).
    fn context(&self, c: &Component, include: &[String], exclude: &[String]) -> State {
        let prefix = context_prefix(c);
        let mut excludes: Vec<String> = self.ignore_patterns(c);
        excludes.extend(exclude.iter().map(|e| format!("{prefix}{e}")));
        let name = format!("[{}] load context {}", c.name, include.join(" "));
        self.local_context(context_includes(&prefix, include), excludes, name)
    }

    /// The source a copy step reads from the context: its own (as
    /// [`Self::context`]), or, when the build shares the context
    /// ([`BuildContext::shared_context`]), the one source every copy from
    /// this context directory reads, so BuildKit transfers each file once.
    /// A copy with `exclude` patterns keeps its own source.
    fn copy_context(&self, c: &Component, include: &[String], exclude: &[String]) -> State {
        let prefix = context_prefix(c);
        if exclude.is_empty() {
            let includes = context_includes(&prefix, include);
            if let Ok(mut rec) = self.recorded.try_borrow_mut() {
                let entry = rec
                    .entry(prefix.clone())
                    .or_insert_with(|| Some(BTreeSet::new()));
                match (entry.as_mut(), includes.is_empty()) {
                    (Some(_), true) => *entry = None,
                    (Some(set), false) => set.extend(includes.iter().cloned()),
                    (None, _) => {}
                }
            }
            let shared = self
                .ctx
                .shared_context
                .as_ref()
                .and_then(|m| m.get(&prefix));
            if let Some(shared) = shared {
                let name = if prefix.is_empty() {
                    "load build context".to_owned()
                } else {
                    format!("load build context {}", prefix.trim_end_matches('/'))
                };
                return self.local_context(shared.clone(), self.ignore_patterns(c), name);
            }
        }
        self.context(c, include, exclude)
    }

    fn local_context(&self, includes: Vec<String>, excludes: Vec<String>, name: String) -> State {
        let mut local = Local::new("context")
            .shared_key_hint("context")
            .custom_name(name);
        if !includes.is_empty() {
            local = local.include_patterns(includes);
        }
        if !excludes.is_empty() {
            local = local.exclude_patterns(excludes);
        }
        if let Some(s) = &self.ctx.session_id {
            local = local.session_id(s.clone());
        }
        local.into_state()
    }

    /// The ignore file's patterns, relative to the `context` source (the
    /// file's are relative to the component's context directory).
    fn ignore_patterns(&self, c: &Component) -> Vec<String> {
        let prefix = context_prefix(c);
        let patterns = self
            .ctx
            .ignore_files
            .get(&ignore_path(c))
            .map(|text| parse_ignore(text))
            .unwrap_or_default();
        patterns
            .into_iter()
            .map(|p| match p.strip_prefix('!') {
                Some(rest) => format!("!{prefix}{}", rest.trim_start_matches('/')),
                None => format!("{prefix}{p}"),
            })
            .collect()
    }

    /// The env every exec sees: the image's env plus the policy as STRATA_* variables.
    /// `[metadata].env` names are left out: they are image config only (a
    /// component FROM another inherits them), and a new commit or
    /// SOURCE_DATE_EPOCH must not invalidate any layer.
    fn exec_env(&self, config: &ImageConfig) -> Vec<(String, String)> {
        let mut env = self.image_env(config);
        if let Some(p) = &self.stack.user {
            for (k, v) in [
                ("STRATA_USER", p.name.clone()),
                ("STRATA_GROUP", p.group.clone()),
                ("STRATA_UID", p.uid.to_string()),
                ("STRATA_GID", p.gid.to_string()),
                ("STRATA_HOME", p.home.clone()),
            ] {
                env.retain(|(n, _)| n != k);
                env.push((k.to_owned(), v));
            }
        }
        env
    }

    /// The image's env as a container of it sees it (PATH always set),
    /// less the `[metadata].env` names, which change with every commit.
    fn image_env(&self, config: &ImageConfig) -> Vec<(String, String)> {
        let metadata = &self.stack.metadata.env;
        let mut env: Vec<(String, String)> = config
            .env
            .iter()
            .filter(|(k, _)| !metadata.iter().any(|(name, _)| name == k))
            .cloned()
            .collect();
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.insert(0, ("PATH".into(), DEFAULT_PATH.into()));
        }
        env
    }

    /// Who owns a copy's files: root unless the stack says `owner`, so
    /// the running user cannot rewrite its own code.
    fn copy_chown(&self, owner: Owner) -> Option<Chown> {
        match owner {
            Owner::Root => Some(Chown::ids(0, 0)),
            Owner::Ids(u, g) => Some(Chown::ids(u, g)),
            Owner::User => self.stack.user.as_ref().map(|p| Chown::ids(p.uid, p.gid)),
        }
    }
}

/// The PATH of an image that sets none (what Docker uses).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `.dockerignore` text -> exclude patterns, read as Docker reads it
/// (moby/patternmatcher's `ignorefile.ReadAll`): a UTF-8 BOM is dropped, a
/// line that starts with `#` is a comment (before any trimming), blanks
/// are dropped, `!` and the pattern after it are trimmed, and each
/// pattern is cleaned like Go's `filepath.Clean`, then loses one leading
/// `/`.
pub fn parse_ignore(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = if pattern.is_empty() {
            String::new()
        } else {
            clean_path(pattern)
        };
        if cleaned.len() > 1 && cleaned.starts_with('/') {
            cleaned.remove(0);
        }
        out.push(if invert {
            format!("!{cleaned}")
        } else {
            cleaned
        });
    }
    out
}

/// Go's `path.Clean`: the shortest path with the same meaning (no `.`
/// parts, no doubled `/`, `..` applied where it can be).
pub fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// A component being lowered.
pub(crate) struct Builder {
    built: Built,
}

impl Builder {
    /// The base, the user policy, a GPU flavour's environment, the component's env and workdir.
    fn start(
        l: &mut Lowerer,
        c: &Component,
        path: &mut Vec<String>,
    ) -> Result<Builder, LowerError> {
        let (state, mut config, foreign, cache_ns) = match &c.base {
            Base::Image(r) => {
                let (s, cfg) = l.image(r, c.platform);
                (s, cfg, true, r.normalized())
            }
            Base::Component(p) => {
                let b = l.component(p, path)?;
                (b.state, b.config, false, b.cache_ns)
            }
            // The definition's default platform is the target's.
            Base::Scratch => (
                match c.platform {
                    RunsOn::Target => State::scratch(),
                    RunsOn::Build => State::scratch().with_platform(l.ctx.build_platform.clone()),
                },
                ImageConfig::default(),
                true,
                "scratch".into(),
            ),
        };
        if foreign && config.env_value("PATH").is_none() {
            // As Docker does on FROM: `$PATH` then expands over the default.
            config.set_env("PATH", DEFAULT_PATH);
        }
        let mut b = Builder {
            built: Built {
                state,
                config,
                cache_ns,
            },
        };
        let loc = l.location(&c.span);
        if foreign {
            if let Some(p) = &l.stack.user {
                b.built.state = b.built.state.run(
                    Run::args(shell::sh(user::script(p)))
                        .network(Network::None)
                        .user("0:0")
                        .dir("/")
                        .env("PATH", DEFAULT_PATH)
                        .custom_name(format!(
                            "[{}] user policy: {} ({}:{})",
                            c.name, p.name, p.uid, p.gid
                        ))
                        .location(loc),
                );
            }
        }
        if let Some(g) = &c.gpu {
            b = gpu::flavour(l, c, g, b, path)?;
        }
        Ok(b.declare(l, c))
    }

    /// The component's own env and workdir, from here on.
    fn declare(self, l: &Lowerer, c: &Component) -> Builder {
        let loc = l.location(&c.span);
        let mut b = self;
        for (k, v) in &c.config.env {
            b.built.config.set_env_expanded(k, v);
        }
        if let Some(w) = &c.config.workdir {
            b.built.config.workdir = Some(w.clone());
            let owner = match (c.run_as, &l.stack.user) {
                (RunAs::Policy, Some(p)) if *w == p.home => Some(Chown::ids(p.uid, p.gid)),
                _ => None,
            };
            b.built.state = b.built.state.file(
                FileActions::new()
                    .mkdir(w, 0o755, true, owner)
                    .custom_name(format!("[{}] WORKDIR {w}", c.name))
                    .location(loc),
            );
        }
        b
    }

    fn cwd(&self) -> String {
        self.built
            .config
            .workdir
            .clone()
            .unwrap_or_else(|| "/".into())
    }
}

mod copy;
mod gpu;
mod metadata;
mod packages;
mod run;
mod test;

use strata_llb::{
    Chown, FileActions, Image, Local, MarshalOptions, Network, ResolveMode, Run, SourceInfo,
    SourceLocation, SourceRange, State,
};

use crate::graph::{Base, Component, CopySource, Owner, RunAs, RunsOn, Step, StepKind};
use crate::image::ImageConfig;

#[cfg(test)]
mod tests {
    use super::{clean_path, parse_ignore};

    #[test]
    fn ignore_files_read_as_docker_reads_them() {
        // moby/patternmatcher's ignorefile test case.
        let text = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
        assert_eq!(
            parse_ignore(text),
            [
                "test1",
                "test2",
                "a/file/here",
                "lastfile",
                "!inverted/abs/path",
                "!",
                "!"
            ]
        );
        // A BOM before the first pattern does not hide it.
        assert_eq!(
            parse_ignore("\u{feff}.env\nsecrets/\n"),
            [".env", "secrets"]
        );
        // Only a line that starts with `#` is a comment; CRLF endings; cleaning.
        assert_eq!(
            parse_ignore(" #not-a-comment\r\n./build//out/\r\nsrc/../tmp\n//abs\n"),
            ["#not-a-comment", "build/out", "tmp", "abs"]
        );
    }

    #[test]
    fn paths_clean_like_go() {
        for (p, want) in [
            ("", "."),
            (".", "."),
            ("a/b/../c", "a/c"),
            ("../a", "../a"),
            ("/../a", "/a"),
            ("a/../..", ".."),
            ("/", "/"),
            ("./a/./b/", "a/b"),
        ] {
            assert_eq!(clean_path(p), want, "{p:?}");
        }
    }
}
