//! Lints: warnings about a stack that builds, but probably not as intended.
//!
//! They run on the resolved [`Stack`] once every check has passed. Each
//! has an id, points at the stack file and says how to fix it; a component
//! silences one with `allow = ["id"]`, and an id in `allow` that is not a
//! lint is an error. `docs/lints.md` describes each one.
//!
//! The lints read the resolved stack only: the spans of components and
//! steps, and of the few keys they point at beyond those (`from`, `user`,
//! `allow` entries, env keys: `Component::keys`, a copy's `from_span`, a
//! run's or env step's keys). Nothing here reads the build
//! context: see `copy-everything`.

mod commands;
mod images;
mod ownership;
mod secrets;

use std::collections::BTreeMap;
use std::ops::Range;

use crate::graph::{Base, Component, CopySource, GitRef, ImageRef, Stack, StepKind};
use crate::spec::diag::{closest, Diagnostic, Diagnostics, Severity};
use crate::spec::ErrorCode;

use commands::Script;

/// A lint: the id `allow` names and what it warns about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lint {
    /// The id in `warning[id]` and in `allow = ["id"]`.
    pub id: &'static str,
    /// One line on what it finds.
    pub summary: &'static str,
}

/// Python packages installed on an alpine base.
pub const ALPINE_PYTHON: &str = "alpine-python";
/// An external image on `latest` or with no tag.
pub const UNPINNED_IMAGE: &str = "unpinned-image";
/// A component that runs as root without saying so.
pub const ROOT_USER: &str = "root-user";
/// An arg or env whose name or value looks like a secret.
pub const SECRET_LIKE_ARG: &str = "secret-like-arg";
/// A raw `run` with apt-get update and install apart, or lists left behind.
pub const APT_SPLIT: &str = "apt-split";
/// A raw `run` pip install that keeps pip's cache.
pub const PIP_CACHE: &str = "pip-cache";
/// A copy of the whole context with no ignore file.
pub const COPY_EVERYTHING: &str = "copy-everything";
/// A GPU flavour whose CUDA tag is not `<version>-<flavour>-<os>`.
pub const CUDA_TAG: &str = "cuda-tag";
/// An entrypoint or cmd program the user the image runs as can rewrite.
pub const USER_WRITABLE_ENTRYPOINT: &str = "user-writable-entrypoint";
/// A string arg declared by a quoted value that reads as a bool or a number.
pub const AMBIGUOUS_ARG: &str = "ambiguous-arg";
/// A copy from a git repository at a branch.
pub const GIT_BRANCH: &str = "git-branch";

/// Every lint, in the order of `docs/lints.md`.
pub const LINTS: &[Lint] = &[
    Lint {
        id: ALPINE_PYTHON,
        summary: "Python packages installed on an alpine base",
    },
    Lint {
        id: UNPINNED_IMAGE,
        summary: "an external image on `latest` or with no tag",
    },
    Lint {
        id: ROOT_USER,
        summary: "a component that runs as root without saying so",
    },
    Lint {
        id: SECRET_LIKE_ARG,
        summary: "an arg or env whose name or value looks like a secret",
    },
    Lint {
        id: APT_SPLIT,
        summary: "a raw run with apt-get update and install apart, or the lists left in the layer",
    },
    Lint {
        id: PIP_CACHE,
        summary: "a raw run pip install without --no-cache-dir",
    },
    Lint {
        id: COPY_EVERYTHING,
        summary: "a copy of the whole build context with no ignore file",
    },
    Lint {
        id: CUDA_TAG,
        summary: "a GPU flavour whose CUDA tag is not <major>.<minor>[.<patch>]-<flavour>-<os>",
    },
    Lint {
        id: USER_WRITABLE_ENTRYPOINT,
        summary: "an entrypoint or cmd program that the user the image runs as can rewrite",
    },
    Lint {
        id: GIT_BRANCH,
        summary: "a copy from a git repository at a branch, which moves",
    },
    Lint {
        id: AMBIGUOUS_ARG,
        summary: "a string arg declared by a quoted bool or number",
    },
];

const SECRET_HELP: &str = "build args and env are written into the LLB, the image config and its history; give the secret to the run step that needs it with `secrets = [\"id\"]` (`docker buildx build --secret id=id,src=FILE`): it is mounted at /run/secrets/id for that command only and stays out of every layer";
const APT_HELP: &str = "use the `apt` step (`apt = [\"pkg\"]`: update and install in one layer, cache mounts, lists removed), or write `apt-get update && apt-get install -y ... && rm -rf /var/lib/apt/lists/*` in one run";

/// Adds the lints to the warnings the resolver left in `stack.warnings`
/// and returns the stack, or every diagnostic when an `allow` names no lint.
pub fn finish(mut stack: Stack) -> Result<Stack, Diagnostics> {
    let mut items = std::mem::take(&mut stack.warnings);
    items.extend(check(&stack));
    items.sort_by_key(|d| (d.span.start, d.span.end));
    items.dedup();
    if items.iter().any(|d| d.severity == Severity::Error) {
        return Err(Diagnostics {
            file: stack.file,
            items,
        });
    }
    stack.warnings = items;
    Ok(stack)
}

/// The lint warnings of a resolved stack, less those its components
/// allow, plus an error for each `allow` entry that names no lint.
pub fn check(stack: &Stack) -> Vec<Diagnostic> {
    // Each component's root image, in one pass: the stack lists bases first.
    let mut roots: BTreeMap<&str, Option<&ImageRef>> = BTreeMap::new();
    for c in &stack.components {
        let root = match &c.base {
            Base::Image(r) => Some(r),
            Base::Scratch => None,
            Base::Component(b) => roots.get(b.as_str()).copied().flatten(),
        };
        roots.insert(&c.name, root);
    }
    // Whether each component's final env sets PIP_NO_CACHE_DIR, in the same
    // dependency order: one pass, not a walk down every chain per step.
    let mut no_pip_cache: BTreeMap<&str, bool> = BTreeMap::new();
    for c in &stack.components {
        let inherited = below(c)
            .iter()
            .any(|b| no_pip_cache.get(b).copied().unwrap_or(false));
        no_pip_cache.insert(&c.name, inherited || sets_no_pip_cache(c, c.steps.len()));
    }
    let mut l = Linter {
        stack,
        roots,
        no_pip_cache,
        out: Vec::new(),
    };
    l.allow_lists();
    for c in &stack.components {
        l.component(c);
    }
    l.args();
    l.third_party();
    l.out
}

struct Linter<'a> {
    stack: &'a Stack,
    /// The external image at the bottom of each component's chain of bases.
    roots: BTreeMap<&'a str, Option<&'a ImageRef>>,
    /// Components whose env (their own or inherited) sets `PIP_NO_CACHE_DIR`.
    no_pip_cache: BTreeMap<&'a str, bool>,
    out: Vec<Diagnostic>,
}

impl Linter<'_> {
    /// Whether `[stack].allow` silences lint `id` everywhere.
    fn stack_allows(&self, id: &str) -> bool {
        self.stack.allow.iter().any(|(a, _)| a == id)
    }

    /// A finding about `c`, unless `c` or the stack allows it.
    fn warn(&mut self, c: &Component, d: Diagnostic) {
        if !c.allow.iter().any(|a| a == d.code) && !self.stack_allows(d.code) {
            self.out.push(d);
        }
    }

    /// A finding that belongs to no component (`[args]`, `[third-party]`):
    /// an `allow` of its id on the stack or on any component silences it.
    fn warn_stack(&mut self, d: Diagnostic) {
        let allowed = self
            .stack
            .components
            .iter()
            .any(|c| c.allow.iter().any(|a| a == d.code));
        if !allowed && !self.stack_allows(d.code) {
            self.out.push(d);
        }
    }

    fn allow_lists(&mut self) {
        let ids: Vec<&str> = LINTS.iter().map(|l| l.id).collect();
        let stack_wide = self.stack.allow.iter().map(|(id, span)| (id, span));
        let per_component = self
            .stack
            .components
            .iter()
            .flat_map(|c| c.keys.allow.iter().map(|(id, span)| (id, span)));
        let mut unknown = Vec::new();
        for (id, span) in stack_wide.chain(per_component) {
            if ids.contains(&id.as_str()) {
                continue;
            }
            let help = match closest(id, ids.iter().copied()) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("the lints are: {}", ids.join(", ")),
            };
            unknown.push(
                Diagnostic::error(
                    ErrorCode::UnknownLint,
                    span.clone(),
                    format!("`{id}` in `allow` is not a lint"),
                )
                .with_help(help),
            );
        }
        self.out.extend(unknown);
    }

    fn component(&mut self, c: &Component) {
        self.images(c);
        self.root_user(c);
        self.alpine_python(c);
        self.env(c);
        self.writable_start(c);
        for (i, step) in c.steps.iter().enumerate() {
            match &step.kind {
                StepKind::Run(run) => {
                    let script = Script::of_args(&run.args);
                    self.apt_split(c, &script, &run.cache, step.span.clone());
                    if script.pip_install_cached
                        && !script.sets_pip_no_cache
                        && !pip_cache_mounted(&run.cache)
                        && !self.pip_no_cache_env(c, i)
                        && !run.env.iter().any(|(k, _)| k == "PIP_NO_CACHE_DIR")
                    {
                        self.warn(
                            c,
                            Diagnostic::warning(
                                PIP_CACHE,
                                step.span.clone(),
                                "this run calls `pip install` without `--no-cache-dir`: pip's download cache stays in the layer",
                            )
                            .with_help("use the `pip` step (a cache mount, nothing cached in the image), or add `--no-cache-dir`"),
                        );
                    }
                    for (k, v) in &run.env {
                        self.secret_env(c, step, &run.env_keys, k, v);
                    }
                }
                StepKind::Env { vars, keys } => {
                    for (k, v) in vars {
                        self.secret_env(c, step, keys, k, v);
                    }
                }
                StepKind::Copy(copy) if copy.source == CopySource::Context => {
                    let whole = copy.srcs.iter().any(|s| {
                        matches!(s.trim_start_matches("./"), "" | "." | "*" | "**" | "**/*")
                    });
                    if whole && c.ignore.is_none() && copy.exclude.is_empty() {
                        self.warn(
                            c,
                            Diagnostic::warning(
                                COPY_EVERYTHING,
                                step.span.clone(),
                                format!("component `{}` copies the whole build context, and no ignore file is set", c.name),
                            )
                            .with_help("copy only what the image needs, list `exclude` patterns, or name the ignore file with `ignore = \".dockerignore\"` so .git, caches and local secrets stay out of the image (a `.dockerignore` in the context directory is applied when building, but lints read the stack file only: naming it with `ignore` says it is there)"),
                        );
                    }
                }
                _ => {}
            }
        }
    }

    /// `unpinned-image` for the base and copy sources, `cuda-tag` for a GPU base.
    fn images(&mut self, c: &Component) {
        if let Base::Image(r) = &c.base {
            let (what, span) = match &c.gpu {
                Some(_) => ("GPU base image", c.keys.gpu_base.clone()),
                None => ("base image", c.keys.from.clone()),
            };
            let span = span.unwrap_or(c.span.clone());
            self.unpinned(c, r, what, span.clone());
            if c.gpu.is_some() {
                let ok = r.tag.as_deref().is_some_and(images::cuda_tag_ok);
                if !ok {
                    self.warn(
                        c,
                        Diagnostic::warning(
                            CUDA_TAG,
                            span,
                            format!("GPU base image `{}` has no tag of the form <major>.<minor>[.<patch>]-<flavour>-<os>", shown(r)),
                        )
                        .with_help("name the CUDA version, flavour and OS, e.g. `nvidia/cuda:12.1.1-runtime-ubuntu22.04`, so the driver the image needs and its OS are explicit"),
                    );
                }
            }
        }
        for step in &c.steps {
            if let StepKind::Copy(copy) = &step.kind {
                if let CopySource::Git {
                    remote,
                    at: GitRef::Branch(branch),
                } = &copy.source
                {
                    self.warn(
                        c,
                        Diagnostic::warning(
                            GIT_BRANCH,
                            step.span.clone(),
                            format!("component `{}` copies `{}` at the branch `{}`: a branch moves, so each build may copy different files", c.name, crate::spec::values::shown(remote), crate::spec::values::shown(branch)),
                        )
                        .with_help("pin it with `tag = \"...\"` or `commit = \"<full id>\"` instead of `branch`; `strata lock` records the commit a branch is at"),
                    );
                }
                if let CopySource::Image(r) = &copy.source {
                    let span = copy.from_span.clone().unwrap_or(step.span.clone());
                    self.unpinned(c, r, "copy source image", span);
                }
            }
        }
    }

    fn unpinned(&mut self, c: &Component, r: &ImageRef, what: &str, span: Range<usize>) {
        if let Some(why) = images::unpinned(r) {
            self.warn(c, unpinned_warning(r, what, why, span));
        }
    }

    fn writable_start(&mut self, c: &Component) {
        for (start, copy) in ownership::writable_starts(self.stack, c) {
            let (span, whose) = if copy.component == c.name {
                (copy.span, String::new())
            } else {
                (
                    c.span.clone(),
                    format!(" in component `{}`", copy.component),
                )
            };
            let under = if start == copy.dst {
                String::new()
            } else {
                format!(", under `{}`", copy.dst)
            };
            self.warn(
                c,
                Diagnostic::warning(
                    USER_WRITABLE_ENTRYPOINT,
                    span,
                    format!("component `{}` starts `{start}`, which the user it runs as can rewrite: it is copied with a user owner{under}{whose}", c.name),
                )
                .with_help("leave `owner` out (root-owned, readable by everyone) for programs and code; give the user only the directories it writes, such as a data directory"),
            );
        }
    }

    fn root_user(&mut self, c: &Component) {
        // A builder on the build platform is copied from, never run.
        if c.platform == crate::graph::RunsOn::Build {
            return;
        }
        if self.stack.user.is_none() && c.keys.user.is_none() {
            self.warn(
                c,
                Diagnostic::warning(
                    ROOT_USER,
                    c.span.clone(),
                    format!("component `{}` runs as root: the stack has no [user] policy and the component does not say `user = \"root\"`", c.name),
                )
                .with_help("add a [user] policy (`name`, `uid`) so every component runs as that user, or write `user = \"root\"` on this component if it must run as root"),
            );
        }
    }

    fn alpine_python(&mut self, c: &Component) {
        let Some(base) = self
            .roots
            .get(c.name.as_str())
            .copied()
            .flatten()
            .filter(|r| images::is_alpine(r))
        else {
            return;
        };
        let installs = c.steps.iter().find(|s| match &s.kind {
            StepKind::Pip(_) | StepKind::Conda(_) => true,
            StepKind::Run(r) => {
                let script = Script::of_args(&r.args);
                script.pip_install || script.apk_python
            }
            _ => false,
        });
        if let Some(step) = installs {
            self.warn(
                c,
                Diagnostic::warning(
                    ALPINE_PYTHON,
                    step.span.clone(),
                    format!("component `{}` installs Python packages on an alpine base (`{}`)", c.name, base.familiar()),
                )
                .with_help("musl libc has no manylinux wheels, so pip builds from source (slow, needs compilers), and musl's math library can give different floating-point results; use a Debian-based image such as `python:3.11-slim-bookworm`"),
            );
        }
    }

    /// Whether `PIP_NO_CACHE_DIR` is in the env of the step at `index`:
    /// set by the component, an env step before it, or a component below it.
    fn pip_no_cache_env(&self, c: &Component, index: usize) -> bool {
        sets_no_pip_cache(c, index)
            || below(c)
                .iter()
                .any(|b| self.no_pip_cache.get(b).copied().unwrap_or(false))
    }

    fn apt_split(&mut self, c: &Component, s: &Script, cache: &[String], span: Range<usize>) {
        let lists_cached = cache
            .iter()
            .any(|d| "/var/lib/apt/lists".starts_with(d.trim_end_matches('/')) && d.len() > 1);
        let message = match (s.apt_update, s.apt_install) {
            (true, false) => "this run calls `apt-get update` without `apt-get install` in the same command: the package lists go into the layer, and a later install may run on stale lists from the cache",
            (false, true) => "this run calls `apt-get install` without `apt-get update` in the same command: it installs from whatever lists an older, cached layer has (or fails with none)",
            (true, true) if !s.apt_lists_removed && !lists_cached => "this run installs with apt-get but leaves /var/lib/apt/lists in the layer",
            _ => return,
        };
        self.warn(
            c,
            Diagnostic::warning(APT_SPLIT, span, message).with_help(APT_HELP),
        );
    }

    /// `secret-like-arg` for the component's env (and the image's).
    fn env(&mut self, c: &Component) {
        for (k, v) in &c.config.env {
            let span = c
                .keys
                .env
                .iter()
                .find(|(name, _)| name == k)
                .map_or(c.span.clone(), |(_, s)| s.clone());
            if let Some(d) = secret_env_warning(k, v, span) {
                self.warn(c, d);
            }
        }
    }

    fn secret_env(
        &mut self,
        c: &Component,
        step: &crate::graph::Step,
        keys: &[(String, Range<usize>)],
        k: &str,
        v: &str,
    ) {
        let span = keys
            .iter()
            .find(|(name, _)| name == k)
            .map_or(step.span.clone(), |(_, s)| s.clone());
        if let Some(d) = secret_env_warning(k, v, span) {
            self.warn(c, d);
        }
    }

    fn args(&mut self) {
        for a in &self.stack.args {
            if let Some(d) = ambiguous_arg(a) {
                self.warn_stack(d);
            }
        }
        for a in &self.stack.args {
            let default = match &a.default {
                crate::graph::ArgValue::String(s) => s.as_str(),
                _ => "",
            };
            let message = if let Some(word) = secrets::secret_name(&a.name) {
                format!(
                    "arg `{}` looks like it holds a secret (its name has `{word}`)",
                    a.name
                )
            } else if let Some(what) = secrets::secret_value(default) {
                format!("the default of arg `{}` looks like {what}", a.name)
            } else {
                continue;
            };
            self.warn_stack(
                Diagnostic::warning(SECRET_LIKE_ARG, a.span.clone(), message)
                    .with_help(SECRET_HELP),
            );
        }
    }

    fn third_party(&mut self) {
        for t in &self.stack.third_party {
            if let Some(why) = images::unpinned(&t.image) {
                let span = t.span.clone();
                self.warn_stack(unpinned_warning(&t.image, "third-party image", why, span));
            }
        }
    }
}

/// `monitor = "Yes"`: a string arg whose quoted default reads as a bool or
/// a number, so conditions cannot read it alone and `--arg monitor=false`
/// sets the text `false`.
fn ambiguous_arg(a: &crate::graph::Arg) -> Option<Diagnostic> {
    let crate::graph::ArgValue::String(v) = &a.default else {
        return None;
    };
    if !a.by_value {
        return None;
    }
    let (what, typed) = match crate::spec::resolve::parse_bool(v) {
        Ok(b) => ("a bool", b.to_string()),
        Err(_) => match v.trim().parse::<i64>() {
            Ok(i) => ("an integer", i.to_string()),
            Err(_) => return None,
        },
    };
    let shown = crate::spec::values::shown(v);
    Some(
        Diagnostic::warning(
            AMBIGUOUS_ARG,
            a.span.clone(),
            format!(
                "`{} = \"{shown}\"` declares a string arg, though its value reads as {what}",
                a.name
            ),
        )
        .with_help(format!(
            "write `{} = {typed}` (unquoted) for {what} arg, or `{} = {{ type = \"string\", default = \"{shown}\" }}` to keep a string",
            a.name, a.name
        )),
    )
}

/// Components whose env `c` starts from: its `from` and, for a GPU flavour, the CPU component.
fn below(c: &Component) -> Vec<&str> {
    let mut out = Vec::new();
    if let Base::Component(b) = &c.base {
        out.push(b.as_str());
    }
    if let Some(g) = &c.gpu {
        out.push(g.of.as_str());
    }
    out
}

/// Whether `c` sets `PIP_NO_CACHE_DIR` in its config or in an env step before step `upto`.
fn sets_no_pip_cache(c: &Component, upto: usize) -> bool {
    c.config.env.iter().any(|(k, _)| k == "PIP_NO_CACHE_DIR")
        || c.steps[..upto].iter().any(|s| match &s.kind {
            StepKind::Env { vars, .. } => vars.iter().any(|(k, _)| k == "PIP_NO_CACHE_DIR"),
            _ => false,
        })
}

/// A cache mount that holds pip's cache (`/root/.cache`, `~/.cache/pip`).
fn pip_cache_mounted(cache: &[String]) -> bool {
    cache.iter().any(|d| {
        let d = d.trim_end_matches('/');
        d.ends_with("/.cache") || d.ends_with("/.cache/pip")
    })
}

fn secret_env_warning(k: &str, v: &str, span: Range<usize>) -> Option<Diagnostic> {
    let message = if let Some(word) = secrets::secret_name(k) {
        format!("env `{k}` looks like it holds a secret (its name has `{word}`)")
    } else if let Some(what) = secrets::secret_value(v) {
        format!("the value of env `{k}` looks like {what}")
    } else {
        return None;
    };
    Some(Diagnostic::warning(SECRET_LIKE_ARG, span, message).with_help(SECRET_HELP))
}

fn unpinned_warning(r: &ImageRef, what: &str, why: &str, span: Range<usize>) -> Diagnostic {
    Diagnostic::warning(
        UNPINNED_IMAGE,
        span,
        format!(
            "{what} `{}` {why}: each build may get a different image",
            shown(r)
        ),
    )
    .with_help(format!(
        "pin a version tag (`{}:<version>`) or a digest; `strata lock` pins every external image",
        shown_name(r)
    ))
}

/// A reference as written: `debian`, `debian:latest`, `nvidia/cuda:12`.
fn shown(r: &ImageRef) -> String {
    match (&r.tag, &r.digest) {
        (None, None) => shown_name(r),
        _ => r.familiar(),
    }
}

/// The repository as Docker shows it: `debian`, `nvidia/cuda`, `registry.local/x`.
fn shown_name(r: &ImageRef) -> String {
    if r.registry == "docker.io" {
        r.repository
            .strip_prefix("library/")
            .unwrap_or(&r.repository)
            .to_owned()
    } else {
        r.name()
    }
}
