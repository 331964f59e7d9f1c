//! The per-component driver: a [`Lowerer`] lowers the target and the
//! components it needs, one [`Builder`] per component (its base, the user
//! policy, env and workdir, then its steps).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use strata_llb::{
    Chown, FileActions, Image, Local, MarshalOptions, Network, Run, SourceInfo, SourceLocation,
    SourceRange, State,
};

use super::context::{context_includes, context_prefix, ignore_path, parse_ignore};
use super::needed;
use super::{copy, gpu, metadata, packages, run, shell, test, user};
use super::{BuildContext, LowerError, Lowered, LoweredTest, Platform, DEFAULT_PATH};
use crate::graph::{
    Base, Component, CopySource, ImageRef, Owner, RunAs, RunsOn, Stack, Step, StepKind,
};
use crate::image::ImageConfig;

pub(super) fn lower_here(
    stack: &Stack,
    target: &str,
    ctx: &BuildContext,
) -> Result<Lowered, LowerError> {
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

/// A lowered component: its filesystem and its config.
#[derive(Clone)]
pub(super) struct Built {
    pub(super) state: State,
    pub(super) config: ImageConfig,
    /// Cache mount namespace: the root base (see `packages::cache_ns`),
    /// carried along so no step walks the chain of bases again.
    pub(super) cache_ns: String,
}

pub(super) struct Lowerer<'a> {
    pub(super) stack: &'a Stack,
    pub(super) ctx: &'a BuildContext,
    pub(super) built: BTreeMap<String, Built>,
    pub(super) platform: Platform,
    /// What copy steps read from the context, per context directory
    /// (None: the whole directory), for [`shared_context`].
    pub(super) recorded: RefCell<BTreeMap<String, Option<BTreeSet<String>>>>,
}

impl Lowerer<'_> {
    pub(super) fn location(&self, span: &Range<usize>) -> SourceLocation {
        let start = self.stack.file.line_col(span.start);
        let end = self.stack.file.line_col(span.end.max(span.start));
        let line = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        SourceLocation::new(
            0,
            vec![SourceRange::lines(line(start.line), line(end.line))],
        )
    }

    /// The platform a component's ops run on.
    pub(super) fn platform_of(&self, on: RunsOn) -> &Platform {
        match on {
            RunsOn::Target => &self.platform,
            RunsOn::Build => &self.ctx.build_platform,
        }
    }

    /// An external image of the platform `on`, with its config.
    pub(super) fn image(&self, r: &ImageRef, on: RunsOn) -> (State, ImageConfig) {
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

    pub(super) fn component(
        &mut self,
        name: &str,
        path: &mut Vec<String>,
    ) -> Result<Built, LowerError> {
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

    pub(super) fn step(
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
    pub(super) fn context(&self, c: &Component, include: &[String], exclude: &[String]) -> State {
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
    pub(super) fn copy_context(
        &self,
        c: &Component,
        include: &[String],
        exclude: &[String],
    ) -> State {
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

    pub(super) fn local_context(
        &self,
        includes: Vec<String>,
        excludes: Vec<String>,
        name: String,
    ) -> State {
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
    pub(super) fn ignore_patterns(&self, c: &Component) -> Vec<String> {
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
    pub(super) fn exec_env(&self, config: &ImageConfig) -> Vec<(String, String)> {
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
    pub(super) fn image_env(&self, config: &ImageConfig) -> Vec<(String, String)> {
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
    pub(super) fn copy_chown(&self, owner: Owner) -> Option<Chown> {
        match owner {
            Owner::Root => Some(Chown::ids(0, 0)),
            Owner::Ids(u, g) => Some(Chown::ids(u, g)),
            Owner::User => self.stack.user.as_ref().map(|p| Chown::ids(p.uid, p.gid)),
        }
    }
}

/// A component being lowered.
pub(crate) struct Builder {
    pub(super) built: Built,
}

impl Builder {
    /// The base, the user policy, a GPU flavour's environment, the component's env and workdir.
    pub(super) fn start(
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
    pub(super) fn declare(self, l: &Lowerer, c: &Component) -> Builder {
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

    pub(super) fn cwd(&self) -> String {
        self.built
            .config
            .workdir
            .clone()
            .unwrap_or_else(|| "/".into())
    }
}
