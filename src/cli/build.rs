//! `strata build`: every component of a stack built by Strata's own
//! BuildKit client, over one connection and one session (the context is
//! sent once), with the frontend running in this process; then, with
//! `--push`, every published image, only once all of them built.
//!
//! One session matters: the components' LLB share their common ops (the
//! same digests), so BuildKit runs a shared base once for every component.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;

use super::bake::{build_args, BakePlan};
use super::cache::{cache_export, cache_import, CachePlan};
use super::engine::Engine;
use super::lock::build_mirrors;
use super::progress::{Mode, ProgressOpt};
use super::StackArgs;
use crate::client::connect::{Api, Builder, Tls};
use crate::client::filesync::DirStats;
use crate::client::progress::Progress;
use crate::client::session::{Outputs, Session};
use crate::client::solve::{Build, Client, Export, Failure};
use crate::graph::{Component, Stack};
use crate::spec::diag::closest;
use strata_proto::control::{CacheOptions, CacheOptionsEntry};

/// The frontend image bake runs when none is named.
pub const DEFAULT_FRONTEND: &str = "strata/frontend:latest";

/// Which components to build.
#[derive(Args, Clone)]
pub struct Selection {
    /// Build only these components and the components they need (repeatable, or comma-separated).
    #[arg(long, num_args = 1.., value_delimiter = ',', value_name = "COMPONENT")]
    pub only: Vec<String>,
}

/// The frontend image BuildKit runs.
#[derive(Args, Clone)]
pub struct FrontendImage {
    /// The Strata frontend image (passed as BUILDKIT_SYNTAX).
    #[arg(long, env = "STRATA_FRONTEND", default_value = DEFAULT_FRONTEND, value_name = "IMAGE")]
    pub frontend: String,
}

/// `strata build`.
#[derive(Args)]
#[command(after_help = "Examples:
  strata build                          every enabled component, loaded into the engine
  strata build --only app --progress plain
  strata build --push --lock-file strata.lock
  strata build --builder unix:///run/other/docker.sock
  strata build --builder buildkit+tcp://build1:1234 --tlscacert ca.pem --tlscert cert.pem --tlskey key.pem --push")]
pub struct BuildArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    select: Selection,
    /// After every component built, push each published one (nothing is pushed if any failed).
    #[arg(long)]
    push: bool,
    /// With --push: write the pushed images and their digests to FILE (TOML).
    #[arg(long, value_name = "FILE", requires = "push")]
    lock_file: Option<PathBuf>,
    /// Run every step again, ignoring BuildKit's cache.
    #[arg(long)]
    no_cache: bool,
    /// Return the images without running their `test` entries.
    #[arg(long)]
    skip_tests: bool,
    /// The builder: a Docker Engine API (unix:///path or tcp://host:port)
    /// or a BuildKit daemon (buildkit+unix:///path or buildkit+tcp://host:port);
    /// default: DOCKER_HOST, else /var/run/docker.sock. Images built on a
    /// BuildKit daemon are loaded into the local Docker Engine (DOCKER_HOST).
    #[arg(long, env = "STRATA_BUILDER", value_name = "ADDRESS")]
    builder: Option<String>,
    #[command(flatten)]
    tls: TlsOpt,
    #[command(flatten)]
    progress: ProgressOpt,
    /// Build for these platforms (comma-separated, e.g. linux/amd64,linux/arm64):
    /// one image index per component. Loading several platforms needs an
    /// engine with the containerd image store.
    #[arg(long, value_delimiter = ',', value_parser = super::platform_arg, value_name = "PLATFORM")]
    platform: Vec<crate::lower::Platform>,
    /// Import BuildKit's cache (`type=registry,ref=REF`, or just REF, or
    /// `type=local,src=DIR`; repeatable).
    #[arg(long, value_parser = cache_import, value_name = "CACHE")]
    cache_from: Vec<CacheOptionsEntry>,
    /// Export BuildKit's cache (`type=registry,ref=REF[,mode=max]`,
    /// `type=local,dest=DIR[,mode=max]` or `type=inline`; repeatable).
    /// Needs an engine that can export cache (BuildKit, or Docker with the
    /// containerd image store).
    #[arg(long, value_parser = cache_export, value_name = "CACHE")]
    cache_to: Vec<CacheOptionsEntry>,
    /// Also write each image as an OCI layout tar, DIR/<component>.tar
    /// (instead of loading it into the engine).
    #[arg(long, value_name = "DIR", conflicts_with = "push")]
    oci_dir: Option<PathBuf>,
}

/// TLS to a builder at a TCP address (as the docker CLI and buildctl name
/// the files).
#[derive(Args, Clone, Default)]
pub struct TlsOpt {
    /// TLS: the CA certificate that signed the builder's (PEM).
    #[arg(long, value_name = "FILE")]
    tlscacert: Option<PathBuf>,
    /// TLS: the client certificate (PEM), for builders that verify clients.
    #[arg(long, value_name = "FILE", requires = "tlskey")]
    tlscert: Option<PathBuf>,
    /// TLS: the client certificate's key (PEM).
    #[arg(long, value_name = "FILE", requires = "tlscert")]
    tlskey: Option<PathBuf>,
    /// TLS: the name the builder's certificate carries (default: the address's host).
    #[arg(long, value_name = "NAME")]
    tlsservername: Option<String>,
}

impl TlsOpt {
    fn files(&self) -> Tls {
        Tls {
            ca: self.tlscacert.clone(),
            cert: self.tlscert.clone(),
            key: self.tlskey.clone(),
            server_name: self.tlsservername.clone(),
        }
    }
}

/// One bake target: a component and its image.
#[derive(Debug, Clone)]
pub struct Target {
    /// The bake target name (the component's, with `.` made `_`).
    pub name: String,
    /// The component.
    pub component: String,
    /// The image's primary name, from the naming rule.
    pub image: String,
    /// Every name of the image: the primary name, then the extra tags.
    pub names: Vec<String>,
}

/// The components to build, dependencies first: the enabled ones, or
/// those named with `--only` and everything they need.
pub fn select<'a>(stack: &'a Stack, only: &[String]) -> Result<Vec<&'a Component>> {
    if only.is_empty() {
        return Ok(stack.enabled().collect());
    }
    let mut want = BTreeSet::new();
    let mut todo: Vec<String> = Vec::new();
    for name in only {
        let Some(c) = stack.component(name) else {
            let names = stack.components.iter().map(|c| c.name.as_str());
            match closest(name, names) {
                Some(s) => bail!("--only {name}: no such component (did you mean `{s}`?)"),
                None => bail!("--only {name}: no such component (see `strata targets`)"),
            }
        };
        if !c.enabled {
            bail!(
                "--only {name}: the component is disabled by `when = \"{}\"` with these args and profile",
                c.condition.as_deref().unwrap_or("")
            );
        }
        todo.push(name.clone());
    }
    while let Some(name) = todo.pop() {
        if !want.insert(name.clone()) {
            continue;
        }
        if let Some(c) = stack.component(&name) {
            todo.extend(c.dependencies().into_iter().map(|(d, _)| d));
        }
    }
    Ok(stack
        .components
        .iter()
        .filter(|c| want.contains(&c.name))
        .collect())
}

/// Bake target names allow letters, digits, `_` and `-` only.
pub(super) fn target_names(components: &[&Component]) -> Vec<Target> {
    let mut used = BTreeSet::new();
    components
        .iter()
        .map(|c| {
            let base: String = c
                .name
                .chars()
                .map(|ch| if ch == '.' { '_' } else { ch })
                .collect();
            let mut name = base.clone();
            let mut n = 2;
            while !used.insert(name.clone()) {
                name = format!("{base}-{n}");
                n += 1;
            }
            Target {
                name,
                component: c.name.clone(),
                image: c.image.familiar(),
                names: c.names().map(|n| n.familiar()).collect(),
            }
        })
        .collect()
}

/// The branch checked out in the git work tree that holds `dir`; none for
/// a detached HEAD, outside a work tree, or without git.
pub fn git_branch(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["symbolic-ref", "--quiet", "--short", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let branch = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !branch.is_empty()).then_some(branch)
}

/// The stack file's directory (the build context).
pub fn stack_dir(file: &Path) -> &Path {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Runs `strata build`.
pub fn run(a: BuildArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let Some(built) = build(&a)? else {
        return Ok(ExitCode::FAILURE);
    };
    let mut out = std::io::stdout().lock();
    if !a.push {
        for name in built.targets.iter().flat_map(|t| &t.names) {
            writeln!(out, "{name}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    drop(out);
    let components = select(&built.stack, &a.select.only)?;
    let pushed = match (built.pushed, &built.engine) {
        // A BuildKit daemon pushed them itself, once all had built.
        (Some(pushed), _) => pushed,
        (None, Some(engine)) => push_all(engine, &components)?,
        (None, None) => bail!("no engine holds the images to push"),
    };
    record_push(
        &built.stack,
        &components,
        &pushed,
        a.lock_file.as_deref(),
        started,
    )
}

impl BuildArgs {
    /// The build `strata bundle` runs first: every enabled component of
    /// the stack (for each of `platform`, if any), loaded into the engine
    /// `builder` names (default: the local one), tests included.
    pub fn for_bundle(
        stack: StackArgs,
        progress: ProgressOpt,
        builder: Option<String>,
        tls: TlsOpt,
        platform: Vec<crate::lower::Platform>,
    ) -> BuildArgs {
        BuildArgs {
            stack,
            select: Selection { only: Vec::new() },
            push: false,
            lock_file: None,
            no_cache: false,
            skip_tests: false,
            builder,
            tls,
            progress,
            platform,
            cache_from: Vec::new(),
            cache_to: Vec::new(),
            oci_dir: None,
        }
    }
}

/// A successful build: the stack, what was built, and the engine it is in.
pub struct Built {
    /// The stack as loaded.
    pub stack: Stack,
    /// The components built, in build order.
    pub targets: Vec<Target>,
    /// The Docker Engine that holds the images (none when a BuildKit
    /// daemon pushed them or wrote them as OCI archives).
    pub engine: Option<Engine>,
    /// With `--platform`: the platforms each component was built for
    /// (empty without).
    pub platforms: BTreeMap<String, Vec<String>>,
    /// What a BuildKit daemon pushed (with `--push`).
    pushed: Option<Vec<Pushed>>,
}

impl Built {
    /// The Docker Engine that holds the images.
    pub fn engine(&self) -> Result<&Engine> {
        self.engine
            .as_ref()
            .context("no Docker Engine holds the images of this build")
    }
}

/// Where the images of a build go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Output {
    /// Into the Docker Engine that builds them (its `moby` exporter).
    Engine,
    /// As docker archives the session receives into this directory, then
    /// loaded into the local Docker Engine (a BuildKit daemon has no
    /// image store of the engine's).
    Load(PathBuf),
    /// As OCI archives, `DIR/<target>.tar`.
    Oci(PathBuf),
    /// Nowhere: the build fills BuildKit's cache (a BuildKit daemon's first
    /// pass before it pushes).
    Cache,
    /// Pushed by BuildKit to the images' registries.
    Push,
}

impl Output {
    /// The output of `strata build` with these arguments on `builder`.
    fn of(a: &BuildArgs, builder: &Builder) -> Output {
        match (&a.oci_dir, builder.api, a.push) {
            (Some(dir), _, _) => Output::Oci(dir.clone()),
            (None, Api::Docker, _) => Output::Engine,
            (None, Api::BuildKit, true) => Output::Cache,
            (None, Api::BuildKit, false) => Output::Load(std::env::temp_dir().join(format!(
                "strata-load-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            ))),
        }
    }
}

/// The Docker Engine of a build: the builder itself when it is one; the
/// local engine when a BuildKit daemon's images are loaded into it.
fn engine_for(builder: &Builder, output: &Output, progress: Mode) -> Result<Option<Engine>> {
    let mut engine = match (output, builder.api) {
        (_, Api::Docker) => Some(Engine::connect_to(builder)?),
        (Output::Load(_), Api::BuildKit) => Some(Engine::connect().context(
            "the images a BuildKit daemon builds are loaded into the local Docker Engine: \
             start one, or use --push or --oci-dir",
        )?),
        _ => None,
    };
    if let Some(engine) = engine.as_mut() {
        engine.set_progress(progress);
    }
    Ok(engine)
}

/// Says what is built where.
fn announce(stack: &Stack, targets: &[Target], builder: &Builder) {
    let names: Vec<&str> = targets.iter().map(|t| t.component.as_str()).collect();
    eprintln!(
        "strata: building {} components of `{}` in one BuildKit session on {builder}: {}",
        targets.len(),
        stack.name,
        names.join(", ")
    );
}

/// Loads the stack, checks its context and builds the selected components
/// in one session; None when the stack has errors or a component failed
/// (reported on stderr).
pub fn build(a: &BuildArgs) -> Result<Option<Built>> {
    let started = Instant::now();
    let Some(stack) = a.stack.load_for(a.platform.first())? else {
        return Ok(None);
    };
    super::print_warnings(&stack);
    let Some(platforms) = platforms_of(&a.stack, &a.select.only, &a.platform, &stack)? else {
        return Ok(None);
    };
    let components = to_build(a, &stack, &platforms)?;
    if !super::context_ok(&a.stack.file, &stack, needed_by(&stack, &components))? {
        return Ok(None);
    }
    let targets = target_names(&components);
    let cache = CachePlan::new(&a.cache_from, &a.cache_to, &targets)?;
    let builder = Builder::resolve(a.builder.as_deref(), a.tls.files())?;
    let output = Output::of(a, &builder);
    let engine = engine_for(&builder, &output, a.progress.mode())?;
    let mirrors = build_mirrors(&a.stack, &stack, engine.as_ref())?;
    let branch = git_branch(stack_dir(&a.stack.file));
    let plan = BakePlan {
        file: &a.stack.file,
        targets: &targets,
        args: &a.stack.args,
        profile: a.stack.profile.as_deref(),
        mirrors: &mirrors,
        frontend: "",
        skip_tests: a.skip_tests,
        git_branch: branch.as_deref(),
        platforms: None,
    };
    announce(&stack, &targets, &builder);
    let (outcomes, sent, progress) = solve_all(&builder, &plan, a, &cache, &platforms, &output)?;
    for (t, o) in targets.iter().zip(&outcomes) {
        if let Ok(response) = o {
            cache.record(t, response)?;
        }
    }
    eprintln!(
        "strata: the session sent the build context: {} files, {} bytes, in {} requests",
        sent.files, sent.bytes, sent.calls
    );
    let failed: Vec<(&Target, &Failure)> = targets
        .iter()
        .zip(&outcomes)
        .filter_map(|(t, o)| o.as_ref().err().map(|e| (t, e)))
        .collect();
    if !failed.is_empty() {
        report_failure(&stack, &targets, &failed, &progress);
        if a.push {
            eprintln!("strata: nothing pushed: not every component built");
        }
        return Ok(None);
    }
    let (ran, cached) = progress.counts();
    eprintln!(
        "strata: built {} images in {:.1}s ({ran} steps run, {cached} cached)",
        targets.len(),
        started.elapsed().as_secs_f64()
    );
    drop(components);
    let pushed = match deliver(
        &output,
        engine.as_ref(),
        &stack,
        &targets,
        &builder,
        &plan,
        a,
        &cache,
        &platforms,
    )? {
        Delivered::Done(pushed) => pushed,
        Delivered::PushFailed => return Ok(None),
    };
    Ok(Some(Built {
        stack,
        targets,
        engine,
        platforms,
        pushed,
    }))
}

/// What became of the images once every component built.
enum Delivered {
    /// In place (loaded, written, or pushed by BuildKit: what it pushed).
    Done(Option<Vec<Pushed>>),
    /// BuildKit failed to push one (reported on stderr).
    PushFailed,
}

/// Once every component built: a BuildKit daemon's docker archives loaded
/// into the local engine, or its images pushed.
#[allow(clippy::too_many_arguments)]
fn deliver(
    output: &Output,
    engine: Option<&Engine>,
    stack: &Stack,
    targets: &[Target],
    builder: &Builder,
    plan: &BakePlan<'_>,
    a: &BuildArgs,
    cache: &CachePlan,
    platforms: &BTreeMap<String, Vec<String>>,
) -> Result<Delivered> {
    match output {
        Output::Load(dir) => {
            let loaded = load_all(engine, targets, dir);
            let _ = std::fs::remove_dir_all(dir);
            loaded?;
            Ok(Delivered::Done(None))
        }
        Output::Cache => {
            let publishing: Vec<Target> = targets
                .iter()
                .filter(|t| stack.component(&t.component).is_some_and(|c| c.publish))
                .cloned()
                .collect();
            let plan = BakePlan {
                targets: &publishing,
                ..*plan
            };
            Ok(match push_pass(builder, &plan, a, cache, platforms)? {
                Some(pushed) => Delivered::Done(Some(pushed)),
                None => Delivered::PushFailed,
            })
        }
        _ => Ok(Delivered::Done(None)),
    }
}

/// Loads the docker archives a BuildKit daemon sent into the local engine.
fn load_all(engine: Option<&Engine>, targets: &[Target], dir: &Path) -> Result<()> {
    let Some(engine) = engine else {
        bail!("no Docker Engine to load the images into");
    };
    for t in targets {
        let path = dir.join(format!("{}.tar", t.name));
        let loaded = engine.load(&path)?;
        eprintln!("strata: loaded {}", loaded.join(", "));
    }
    Ok(())
}

/// With a BuildKit daemon, once every component built: each published
/// image built again (all cached) and pushed by BuildKit, every name in
/// one export. None when a push failed (reported on stderr).
fn push_pass(
    builder: &Builder,
    plan: &BakePlan<'_>,
    a: &BuildArgs,
    cache: &CachePlan,
    platforms: &BTreeMap<String, Vec<String>>,
) -> Result<Option<Vec<Pushed>>> {
    eprintln!(
        "strata: every component built; {builder} pushes {} images",
        plan.targets.len()
    );
    let (outcomes, _, _) = solve_all(builder, plan, a, cache, platforms, &Output::Push)?;
    let mut pushed = Vec::new();
    for (t, outcome) in plan.targets.iter().zip(outcomes) {
        let response =
            match outcome {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{}", render_failure(&e));
                    let done: Vec<&str> = pushed.iter().map(|p: &Pushed| p.name.as_str()).collect();
                    eprintln!(
                    "strata: error: pushing the image of component `{}` failed; already pushed: {}",
                    t.component,
                    if done.is_empty() { "none".to_owned() } else { done.join(", ") }
                );
                    return Ok(None);
                }
            };
        let Some(digest) = response.get("containerimage.digest") else {
            bail!(
                "the builder pushed {} without reporting its digest",
                t.image
            );
        };
        for name in &t.names {
            pushed.push(Pushed {
                name: name.clone(),
                component: t.component.clone(),
                digest: digest.clone(),
            });
        }
    }
    let mut out = std::io::stdout().lock();
    for p in &pushed {
        writeln!(out, "{}@{}", p.name, p.digest)?;
    }
    Ok(Some(pushed))
}

/// The components `strata build` builds as targets: the selected ones
/// (with `--platform`, those enabled on at least one platform, builders
/// left to the components that copy from them).
fn to_build<'s>(
    a: &BuildArgs,
    stack: &'s Stack,
    platforms: &BTreeMap<String, Vec<String>>,
) -> Result<Vec<&'s Component>> {
    let mut components = if a.platform.is_empty() {
        select(stack, &a.select.only)?
    } else {
        stack
            .components
            .iter()
            .filter(|c| platforms.contains_key(&c.name))
            .collect()
    };
    if components.is_empty() {
        bail!("no component is enabled with these args and profile");
    }
    if !a.platform.is_empty() {
        // A builder (`platform = "build"`) is no image of a target
        // platform: it is built inside the components that copy from it.
        components.retain(|c| c.platform != crate::graph::RunsOn::Build);
        if components.is_empty() {
            bail!("with --platform, builder components (platform = \"build\") are built only as part of the components that copy from them: select those");
        }
    }
    Ok(components)
}

/// Every component the targets need, themselves included.
fn needed_by<'s>(stack: &'s Stack, targets: &[&'s Component]) -> Vec<&'s Component> {
    let mut needed: Vec<&Component> = Vec::new();
    for c in targets {
        for n in crate::lower::needed_components(stack, &c.name) {
            if !needed.iter().any(|m| m.name == n.name) {
                needed.push(n);
            }
        }
    }
    needed
}

/// With `--platform`: the platforms each component is built for, those
/// of the `--platform` list where it is enabled (a component switched off
/// on arm64 is built for amd64 only); empty without `--platform`. None
/// when the stack has errors for one of the platforms.
pub(super) fn platforms_of(
    stack_args: &StackArgs,
    select_only: &[String],
    platforms: &[crate::lower::Platform],
    first: &Stack,
) -> Result<Option<BTreeMap<String, Vec<String>>>> {
    let mut of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if platforms.is_empty() {
        return Ok(Some(of));
    }
    for p in platforms {
        let Some(stack) = stack_args.load_for(Some(p))? else {
            return Ok(None);
        };
        // `--only` names switched off on this platform are built for the others.
        let only: Vec<String> = select_only
            .iter()
            .filter(|n| stack.component(n).is_some_and(|c| c.enabled))
            .cloned()
            .collect();
        if !select_only.is_empty() && only.is_empty() {
            continue;
        }
        for c in select(&stack, &only)? {
            of.entry(c.name.clone()).or_default().push(p.to_string());
        }
    }
    if let Some(off) = select_only.iter().find(|n| !of.contains_key(*n)) {
        // Unknown, or switched off on every platform: said as for the first.
        select(first, std::slice::from_ref(off))?;
        bail!("--only {off}: the component is switched off on every platform asked for");
    }
    Ok(Some(of))
}

/// The frontend options every component's build shares: the stack file's
/// name, the build args, `SOURCE_DATE_EPOCH`, `no-cache` and the cache to
/// import (for the frontend's own solves).
fn common_opts(
    plan: &BakePlan<'_>,
    a: &BuildArgs,
    filename: String,
    imports: &[CacheOptionsEntry],
) -> BTreeMap<String, String> {
    let mut common = BTreeMap::from([("filename".to_owned(), filename)]);
    for (k, v) in build_args(plan) {
        common.insert(format!("build-arg:{k}"), v);
    }
    // As buildx passes it: the one source of creation times.
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        common.insert("build-arg:SOURCE_DATE_EPOCH".into(), epoch);
    }
    if a.no_cache {
        common.insert("no-cache".into(), String::new());
    }
    if !imports.is_empty() {
        // The frontend's own solves import the same cache.
        let list: Vec<serde_json::Value> = imports
            .iter()
            .map(|e| serde_json::json!({ "Type": e.r#type, "Attrs": e.attrs }))
            .collect();
        common.insert(
            "cache-imports".into(),
            serde_json::Value::from(list).to_string(),
        );
    }
    common
}

/// Where a component's image goes: BuildKit's exporter and its attributes
/// (archives the session receives are expected in `outputs`).
fn export_for(t: &Target, output: &Output, outputs: &Outputs) -> Export {
    // The exporter takes every name of the image, comma-separated.
    let mut attrs = BTreeMap::from([("name".to_owned(), t.names.join(","))]);
    let kind = match output {
        Output::Engine => "moby",
        Output::Oci(dir) => {
            outputs.expect(&t.image, dir.join(format!("{}.tar", t.name)));
            "oci"
        }
        Output::Load(dir) => {
            outputs.expect(&t.image, dir.join(format!("{}.tar", t.name)));
            "docker"
        }
        Output::Push => {
            attrs.insert("push".into(), "true".into());
            "image"
        }
        Output::Cache => return Export::default(),
    };
    Export {
        kind: kind.into(),
        attrs,
    }
}

/// Every component's solve's outcome, in order, what the session sent and
/// the progress shown, from a runtime of their own.
type Solved = (
    Vec<Result<BTreeMap<String, String>, Failure>>,
    DirStats,
    Progress,
);

/// Runs [`build_all`] to its end on a new runtime.
fn solve_all(
    builder: &Builder,
    plan: &BakePlan<'_>,
    a: &BuildArgs,
    cache: &CachePlan,
    platforms: &BTreeMap<String, Vec<String>>,
    output: &Output,
) -> Result<Solved> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut progress = Progress::new(a.progress.mode());
    let (outcomes, sent) = runtime.block_on(build_all(
        builder,
        plan,
        a,
        cache,
        platforms,
        output,
        &mut progress,
    ))?;
    progress.finish();
    Ok((outcomes, sent, progress))
}

/// Builds every target over one connection and one session; an outcome per target, in order.
async fn build_all(
    builder: &Builder,
    plan: &BakePlan<'_>,
    a: &BuildArgs,
    cache: &CachePlan,
    platforms: &BTreeMap<String, Vec<String>>,
    output: &Output,
    progress: &mut Progress,
) -> Result<(Vec<Result<BTreeMap<String, String>, Failure>>, DirStats)> {
    let file = std::path::absolute(plan.file)
        .with_context(|| format!("cannot resolve the path {}", plan.file.display()))?;
    let dir = file.parent().unwrap_or(Path::new("/")).to_path_buf();
    let filename = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "strata.toml".into());
    let client = Client::connect(builder).await?;
    let dirs = BTreeMap::from([
        ("context".to_owned(), dir.clone()),
        ("dockerfile".to_owned(), dir.clone()),
    ]);
    let session = Session::start(
        builder,
        client.control(),
        dirs,
        cache.stores.clone(),
        &shared_key(&dir),
    )
    .await?;
    let common = common_opts(plan, a, filename, cache.imports());
    if let Output::Oci(dir) | Output::Load(dir) = output {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let cell = RefCell::new(std::mem::replace(progress, Progress::new(Mode::Quiet)));
    let progress_cell = &cell;
    let builds = plan.targets.iter().enumerate().map(|(i, t)| {
        let mut opts = common.clone();
        opts.insert("target".into(), t.component.clone());
        if let Some(list) = platforms.get(&t.component) {
            opts.insert("platform".into(), list.join(","));
        }
        let export = export_for(t, output, session.outputs());
        let build = Build {
            id: format!("{}-{i}", session.id),
            opts,
            export,
            cache: CacheOptions {
                exports: cache.exports_for(t),
                imports: cache.imports().to_vec(),
            },
        };
        client.build(&session.id, build, progress_cell)
    });
    let mut all = Box::pin(futures_util::future::join_all(builds));
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let outcomes = loop {
        tokio::select! {
            done = &mut all => break done,
            _ = tick.tick() => {
                if let Ok(mut p) = cell.try_borrow_mut() {
                    p.tick();
                }
            }
        }
    };
    drop(all);
    *progress = cell.into_inner();
    Ok((outcomes, session.stats().get("context")))
}

/// The session's shared key: the same directory gets the same key, so
/// BuildKit sends only what changed since the last build of it.
fn shared_key(dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(dir.as_os_str().as_encoded_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("strata-{hex}")
}

/// Pushes every name of every published component (all built) from the
/// engine that holds them.
fn push_all(engine: &Engine, components: &[&Component]) -> Result<Vec<Pushed>> {
    let mut out = std::io::stdout().lock();
    let mut pushed: Vec<Pushed> = Vec::new();
    for c in components.iter().filter(|c| c.publish) {
        for image in c.names() {
            let repo = repository(image);
            let tag = image.tag.clone().unwrap_or_else(|| "latest".into());
            let name = image.familiar();
            eprintln!("strata: pushing {name}");
            let report = match engine.push(&repo, &tag) {
                Ok(r) => r,
                Err(e) => {
                    let done: Vec<&str> = pushed.iter().map(|p| p.name.as_str()).collect();
                    eprintln!(
                        "strata: error: pushing {name} of component `{}` failed; already pushed: {}",
                        c.name,
                        if done.is_empty() {
                            "none".to_owned()
                        } else {
                            done.join(", ")
                        }
                    );
                    return Err(e);
                }
            };
            let digest = match report.digest {
                Some(d) => d,
                None => engine.registry_digest(&name)?,
            };
            eprintln!(
                "strata: pushed {name}: {} layers uploaded, {} already there",
                report.pushed, report.existing
            );
            writeln!(out, "{name}@{digest}")?;
            pushed.push(Pushed {
                name,
                component: c.name.clone(),
                digest,
            });
        }
    }
    Ok(pushed)
}

/// Writes the lock file of a push and its summary.
fn record_push(
    stack: &Stack,
    components: &[&Component],
    pushed: &[Pushed],
    lock_file: Option<&Path>,
    started: Instant,
) -> Result<ExitCode> {
    if let Some(path) = lock_file {
        std::fs::write(path, pushed_lock(stack, pushed))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("strata: wrote {}", path.display());
    }
    eprintln!(
        "strata: pushed {} names of {} images in {:.1}s in all",
        pushed.len(),
        components.iter().filter(|c| c.publish).count(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// One name pushed.
struct Pushed {
    /// The name as pushed (`registry/repo:tag`).
    name: String,
    /// The component whose image it names.
    component: String,
    /// The manifest digest the registry gave it.
    digest: String,
}

/// `repo` as `docker push` takes it: the familiar name without tag.
pub fn repository(image: &crate::graph::ImageRef) -> String {
    if image.registry == "docker.io" {
        image
            .repository
            .strip_prefix("library/")
            .unwrap_or(&image.repository)
            .to_owned()
    } else {
        image.name()
    }
}

/// The `--lock-file` of a push: component -> its primary name and digest
/// (`image`, `digest`, `ref`); an image with extra tags also lists every
/// name it was pushed as, each with its digest (`[[images.<c>.tags]]`).
fn pushed_lock(stack: &Stack, pushed: &[Pushed]) -> String {
    let entry = |p: &Pushed| {
        let mut t = toml::Table::new();
        t.insert("image".into(), p.name.clone().into());
        t.insert("digest".into(), p.digest.clone().into());
        let repo = p
            .name
            .rsplit_once(':')
            .filter(|(_, tag)| !tag.contains('/'))
            .map_or(p.name.as_str(), |(r, _)| r);
        t.insert("ref".into(), format!("{repo}@{}", p.digest).into());
        t
    };
    let mut images = toml::Table::new();
    for p in pushed {
        let all: Vec<&Pushed> = pushed
            .iter()
            .filter(|q| q.component == p.component)
            .collect();
        if images.contains_key(&p.component) {
            continue;
        }
        let mut t = entry(p);
        if all.len() > 1 {
            let tags: Vec<toml::Value> = all.iter().map(|q| entry(q).into()).collect();
            t.insert("tags".into(), tags.into());
        }
        images.insert(p.component.clone(), t.into());
    }
    let mut doc = toml::Table::new();
    doc.insert("stack".into(), stack.name.clone().into());
    doc.insert("images".into(), images.into());
    format!(
        "# Written by `strata build --push`: every pushed image of the stack and its digest.\n{}",
        toml::to_string(&doc).unwrap_or_default()
    )
}

/// Prints why each failed component failed (each distinct error once,
/// located in the stack file), which component a failed step belongs to,
/// and what did build.
fn report_failure(
    stack: &Stack,
    targets: &[Target],
    failed: &[(&Target, &Failure)],
    progress: &Progress,
) {
    let mut shown: Vec<String> = Vec::new();
    let mut culprits: Vec<String> = Vec::new();
    for (t, f) in failed {
        let text = f.to_string();
        // The component whose step failed: a shared base fails every
        // component built on it, with the same error.
        let owner = match f {
            Failure::Frontend(crate::frontend::FrontendError::Step(s)) => s
                .steps
                .values()
                .find_map(|(name, _)| step_owner(name).filter(|_| text.contains(name.as_str())))
                .unwrap_or(t.component.as_str())
                .to_owned(),
            _ => t.component.clone(),
        };
        if !culprits.contains(&owner) {
            culprits.push(owner);
        }
        if shown.contains(&text) {
            continue;
        }
        eprintln!("{}", render_failure(f));
        shown.push(text);
    }
    for (name, error, logs) in progress.failures() {
        if logs.is_empty() {
            continue;
        }
        eprintln!("strata: the last lines of `{name}` ({error}):");
        for l in logs {
            eprintln!("  | {l}");
        }
    }
    for c in &culprits {
        if let Some(comp) = stack.component(c) {
            let at = stack.file.line_col(comp.span.start);
            eprintln!(
                "{}:{}:{}: error: component `{}` failed to build ([component.{}])",
                stack.file.name, at.line, at.col, comp.name, comp.name
            );
        }
    }
    let list = |v: Vec<&str>| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    };
    let built: Vec<&str> = targets
        .iter()
        .filter(|t| !failed.iter().any(|(f, _)| f.name == t.name))
        .map(|t| t.component.as_str())
        .collect();
    let others: Vec<&str> = failed
        .iter()
        .map(|(t, _)| t.component.as_str())
        .filter(|c| !culprits.iter().any(|f| f == c))
        .collect();
    eprintln!(
        "strata: built: {}; failed: {}; not built (needing a failed one): {}",
        list(built),
        list(culprits.iter().map(String::as_str).collect()),
        list(others)
    );
}

/// The component a step belongs to, from its name (`[base] RUN ...`).
fn step_owner(name: &str) -> Option<&str> {
    let inner = name.strip_prefix('[')?.split_once(']')?.0;
    inner.split(' ').next_back()
}

/// A failure as the user reads it: stack errors with their source lines.
fn render_failure(f: &Failure) -> String {
    match f {
        Failure::Frontend(crate::frontend::FrontendError::Stack(d)) => d.to_string(),
        Failure::Frontend(e) => format!("error: {e}"),
        Failure::Engine(s) if s.message().contains("unknown cache exporter") => format!(
            "error: BuildKit: {}: this engine cannot export cache; build on BuildKit or on \
             Docker with the containerd image store (--builder)",
            s.message()
        ),
        Failure::Engine(s) => format!("error: BuildKit: {}", s.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_names_its_component() {
        assert_eq!(step_owner("[base] RUN true"), Some("base"));
        assert_eq!(step_owner("[linux/arm64 app] COPY x"), Some("app"));
        assert_eq!(step_owner("load build definition"), None);
    }

    #[test]
    fn one_directory_one_shared_key() {
        assert_eq!(shared_key(Path::new("/a")), shared_key(Path::new("/a")));
        assert_ne!(shared_key(Path::new("/a")), shared_key(Path::new("/b")));
    }
}
