//! `strata build`: every component of a stack built by Strata's own
//! BuildKit client, over one connection and one session (the context is
//! sent once), with the frontend running in this process; then, with
//! `--push`, every published image, only once all of them built.
//!
//! One session matters: the components' LLB share their common ops (the
//! same digests), so BuildKit runs a shared base once for every component.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::cli::bake::{build_args, BakePlan};
use crate::cli::cache::{cache_export, cache_import, CachePlan};
use crate::cli::engine::Engine;
use crate::cli::lock::build_mirrors;
use crate::cli::progress::{Mode, ProgressOpt};
use crate::cli::StackArgs;
use crate::client::connect::{Builder, Tls};
use crate::client::filesync::DirStats;
use crate::client::progress::Progress;
use crate::client::session::Session;
use crate::client::solve::{Build, Client, Failure};
use crate::graph::Stack;
use strata_proto::control::{CacheOptions, CacheOptionsEntry};

mod output;
mod push;
mod report;
mod select;

use output::{deliver, engine_for, export_for, Delivered, LoadDirGuard, Output};
use push::{push_all, record_push, Pushed};
use report::report_failure;
use select::{needed_by, to_build};
pub(super) use select::{platforms_of, target_names};
pub use select::{select, Target};

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
    #[arg(long, value_delimiter = ',', value_parser = crate::cli::platform_arg, value_name = "PLATFORM")]
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
    crate::cli::print_warnings(&stack);
    let Some(platforms) = platforms_of(&a.stack, &a.select.only, &a.platform, &stack)? else {
        return Ok(None);
    };
    let components = to_build(a, &stack, &platforms)?;
    if !crate::cli::context_ok(&a.stack.file, &stack, needed_by(&stack, &components))? {
        return Ok(None);
    }
    let targets = target_names(&components);
    let cache = CachePlan::new(&a.cache_from, &a.cache_to, &targets)?;
    let builder = Builder::resolve(a.builder.as_deref(), a.tls.files())?;
    let output = Output::of(a, &builder);
    let _load_dir = LoadDirGuard::of(&output);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_directory_one_shared_key() {
        assert_eq!(shared_key(Path::new("/a")), shared_key(Path::new("/a")));
        assert_ne!(shared_key(Path::new("/a")), shared_key(Path::new("/b")));
    }
}
