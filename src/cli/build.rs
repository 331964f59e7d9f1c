//! `strata build`: every component of a stack in one BuildKit session,
//! through `docker buildx bake` and a generated bake definition (one
//! target per component, the one `strata bake` prints); then, with
//! `--push`, every published image, only once all of them built.
//!
//! One session matters: the targets' LLB share their common ops (the same
//! digests), so BuildKit runs a shared base once for every component.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;

use super::engine::Engine;
use super::lock::build_mirrors;
use super::StackArgs;
use crate::graph::{Component, Stack};
use crate::spec::diag::closest;

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
pub struct BuildArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    select: Selection,
    #[command(flatten)]
    frontend: FrontendImage,
    /// After every component built, push each published one (nothing is pushed if any failed).
    #[arg(long)]
    push: bool,
    /// With --push: write the pushed images and their digests to FILE (TOML).
    #[arg(long, value_name = "FILE", requires = "push")]
    lock_file: Option<PathBuf>,
    /// Run every step again, ignoring BuildKit's cache (bake --no-cache).
    #[arg(long)]
    no_cache: bool,
    /// Return the images without running their `test` entries (STRATA_SKIP_TESTS=1).
    #[arg(long)]
    skip_tests: bool,
}

/// One bake target: a component and its image.
#[derive(Debug, Clone)]
pub struct Target {
    /// The bake target name (the component's, with `.` made `_`).
    pub name: String,
    /// The component.
    pub component: String,
    /// The image tag from the naming rule.
    pub image: String,
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
            }
        })
        .collect()
}

/// The inputs of a bake definition.
pub struct BakePlan<'a> {
    /// The stack file as given.
    pub file: &'a Path,
    /// The targets.
    pub targets: &'a [Target],
    /// `--arg` values, in order.
    pub args: &'a [(String, String)],
    /// `--profile`.
    pub profile: Option<&'a str>,
    /// Mirrors for the frontend.
    pub mirrors: &'a [(String, String)],
    /// The frontend image.
    pub frontend: &'a str,
    /// A second tag per target (`strata build` uses it to see what was built).
    pub marker: Option<&'a str>,
    /// Pass `STRATA_SKIP_TESTS=1`: the frontend does not run the components' tests.
    pub skip_tests: bool,
    /// The git branch checked out, passed as `STRATA_GIT_BRANCH`.
    pub git_branch: Option<&'a str>,
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

/// The bake definition (JSON): one target per component, a `default`
/// group with all of them, every image loaded into the engine.
pub fn bake_definition(p: &BakePlan) -> Result<serde_json::Value> {
    let file = std::path::absolute(p.file)
        .with_context(|| format!("cannot resolve the path {}", p.file.display()))?;
    let context = file.parent().unwrap_or(Path::new("/"));
    let dockerfile = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "strata.toml".into());
    let mut args: BTreeMap<String, String> = p.args.iter().cloned().collect();
    args.insert("BUILDKIT_SYNTAX".into(), p.frontend.to_owned());
    if !p.mirrors.is_empty() {
        let m: Vec<String> = p.mirrors.iter().map(|(k, v)| format!("{k}={v}")).collect();
        args.insert("STRATA_MIRRORS".into(), m.join(","));
    }
    if let Some(profile) = p.profile {
        args.insert("STRATA_PROFILE".into(), profile.to_owned());
    }
    if p.skip_tests {
        args.insert("STRATA_SKIP_TESTS".into(), "1".into());
    }
    // The command printed the stack's warnings once; each target's
    // frontend would send them all again.
    args.insert("STRATA_WARNINGS".into(), "none".into());
    if let Some(b) = p.git_branch {
        args.insert("STRATA_GIT_BRANCH".into(), b.to_owned());
    }
    let mut targets = serde_json::Map::new();
    for t in p.targets {
        let mut tags = vec![t.image.clone()];
        if let Some(m) = p.marker {
            tags.push(format!("{m}:{}", t.name));
        }
        targets.insert(
            t.name.clone(),
            json!({
                "context": context.to_string_lossy(),
                "dockerfile": dockerfile,
                "target": t.component,
                "args": args,
                "tags": tags,
                "output": ["type=docker"],
            }),
        );
    }
    let names: Vec<&str> = p.targets.iter().map(|t| t.name.as_str()).collect();
    Ok(escape_definition(json!({
        "group": { "default": { "targets": names } },
        "target": targets,
    })))
}

/// A string as a literal of bake's HCL templates, which bake evaluates in
/// every string (and object key) of a JSON definition: `${` becomes
/// `$${` and `%{` becomes `%%{`; everything else is read as written.
fn escape_template(s: &str) -> String {
    s.replace("${", "$${").replace("%{", "%%{")
}

/// Every string and object key of a bake definition escaped, so bake
/// passes the user's values on byte for byte. Target names are left as
/// they are by this (bake allows only `[a-zA-Z0-9_-]` in them).
fn escape_definition(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(escape_template(&s)),
        Value::Array(a) => Value::Array(a.into_iter().map(escape_definition).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (escape_template(&k), escape_definition(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Runs `strata build`.
pub fn run(a: BuildArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let Some(stack) = a.stack.load()? else {
        return Ok(ExitCode::FAILURE);
    };
    super::print_warnings(&stack);
    let components = select(&stack, &a.select.only)?;
    if components.is_empty() {
        bail!("no component is enabled with these args and profile");
    }
    let mut needed: Vec<&crate::graph::Component> = Vec::new();
    for c in &components {
        for n in crate::lower::needed_components(&stack, &c.name) {
            if !needed.iter().any(|m| m.name == n.name) {
                needed.push(n);
            }
        }
    }
    if !super::context_ok(&a.stack.file, &stack, needed)? {
        return Ok(ExitCode::FAILURE);
    }
    let targets = target_names(&components);
    let engine = Engine::connect()?;
    let mirrors = build_mirrors(&a.stack, &stack, Some(&engine))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let marker = format!("strata-build.local/run-{}-{nanos}", std::process::id());
    let def = bake_definition(&BakePlan {
        file: &a.stack.file,
        targets: &targets,
        args: &a.stack.args,
        profile: a.stack.profile.as_deref(),
        mirrors: &mirrors,
        frontend: &a.frontend.frontend,
        marker: Some(&marker),
        skip_tests: a.skip_tests,
        git_branch: git_branch(stack_dir(&a.stack.file)).as_deref(),
    })?;
    eprintln!(
        "strata: building {} components of `{}` in one BuildKit session: {}",
        targets.len(),
        stack.name,
        targets
            .iter()
            .map(|t| t.component.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let outcome = bake(&def.to_string(), a.no_cache);
    // What was built, from the marker tags (read even when bake failed).
    let mut built = BTreeSet::new();
    for t in &targets {
        let tag = format!("{marker}:{}", t.name);
        if engine.image_id(&tag)?.is_some() {
            built.insert(t.component.clone());
            engine.untag(&tag)?;
        }
    }
    let (status, tail) = outcome?;
    let elapsed = started.elapsed().as_secs_f64();
    if !status.success() || built.len() != targets.len() {
        report_failure(&stack, &targets, &built, &tail, status.code());
        if a.push {
            eprintln!("strata: nothing pushed: not every component built");
        }
        return Ok(ExitCode::FAILURE);
    }
    eprintln!("strata: built {} images in {elapsed:.1}s", targets.len());
    let mut out = std::io::stdout().lock();
    if !a.push {
        for t in &targets {
            writeln!(out, "{}", t.image)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut pushed = Vec::new();
    for c in components.iter().filter(|c| c.publish) {
        let repo = repository(&c.image);
        let tag = c.image.tag.clone().unwrap_or_else(|| "latest".into());
        let name = c.image.familiar();
        eprintln!("strata: pushing {name}");
        let report = match engine.push(&repo, &tag) {
            Ok(r) => r,
            Err(e) => {
                let done: Vec<&str> = pushed
                    .iter()
                    .map(|(n, _, _)| n)
                    .map(String::as_str)
                    .collect();
                eprintln!(
                    "strata: error: pushing component `{}` failed; already pushed: {}",
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
        pushed.push((name, c.name.clone(), digest));
    }
    if let Some(path) = &a.lock_file {
        std::fs::write(path, pushed_lock(&stack, &pushed))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("strata: wrote {}", path.display());
    }
    eprintln!(
        "strata: pushed {} images in {:.1}s in all",
        pushed.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
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

/// The `--lock-file` of a push: component -> image and digest.
fn pushed_lock(stack: &Stack, pushed: &[(String, String, String)]) -> String {
    let mut images = toml::Table::new();
    for (name, component, digest) in pushed {
        let mut t = toml::Table::new();
        t.insert("image".into(), name.clone().into());
        t.insert("digest".into(), digest.clone().into());
        let repo = name
            .rsplit_once(':')
            .filter(|(_, tag)| !tag.contains('/'))
            .map_or(name.as_str(), |(r, _)| r);
        t.insert("ref".into(), format!("{repo}@{digest}").into());
        images.insert(component.clone(), t.into());
    }
    let mut doc = toml::Table::new();
    doc.insert("stack".into(), stack.name.clone().into());
    doc.insert("images".into(), images.into());
    format!(
        "# Written by `strata build --push`: every pushed image of the stack and its digest.\n{}",
        toml::to_string(&doc).unwrap_or_default()
    )
}

/// Prints which component failed, located in the stack file, and what did build.
fn report_failure(
    stack: &Stack,
    targets: &[Target],
    built: &BTreeSet<String>,
    tail: &str,
    code: Option<i32>,
) {
    let not_built: Vec<&Target> = targets
        .iter()
        .filter(|t| !built.contains(&t.component))
        .collect();
    let failed = failed_targets(stack, &not_built, tail);
    for c in &failed {
        if let Some(comp) = stack.component(c) {
            let at = stack.file.line_col(comp.span.start);
            eprintln!(
                "{}:{}:{}: error: component `{}` failed to build ([component.{}])",
                stack.file.name, at.line, at.col, comp.name, comp.name
            );
        }
    }
    if failed.is_empty() {
        eprintln!(
            "strata: error: docker buildx bake failed (exit {}); see its output above",
            code.map_or_else(|| "by a signal".to_owned(), |c| c.to_string())
        );
    }
    let list = |v: Vec<&str>| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    };
    let others: Vec<&str> = not_built
        .iter()
        .map(|t| t.component.as_str())
        .filter(|c| !failed.iter().any(|f| f == c))
        .collect();
    eprintln!(
        "strata: built: {}; failed: {}; not built (stopped or needing a failed one): {}",
        list(
            targets
                .iter()
                .filter(|t| built.contains(&t.component))
                .map(|t| t.component.as_str())
                .collect()
        ),
        list(failed.iter().map(String::as_str).collect()),
        list(others)
    );
}

/// The components that failed, among those not built. Bake's error lines
/// name a vertex as `[<target> <component>] <step>` (the frontend names
/// each step `[<component>] ...`, bake adds the target): the component is
/// the one whose step failed, maybe a shared base built for another
/// target. A frontend error has no vertex but names a line of the stack
/// file, inside the failing component's table.
fn failed_targets(stack: &Stack, not_built: &[&Target], tail: &str) -> Vec<String> {
    let text = strip_ansi(tail);
    let mut failed: Vec<String> = Vec::new();
    let add = |failed: &mut Vec<String>, c: &str| {
        if !failed.iter().any(|f| f == c) {
            failed.push(c.to_owned());
        }
    };
    for line in text.lines() {
        let l = line.trim_start();
        if !(l.starts_with("> [") || l.contains("ERROR [") || l.contains("ERROR: [")) {
            continue;
        }
        let Some(inner) = l
            .split_once('[')
            .and_then(|(_, r)| r.split_once(']'))
            .map(|(i, _)| i)
        else {
            continue;
        };
        let mut words = inner.split(' ');
        let Some(target) = words
            .next()
            .and_then(|w| not_built.iter().find(|t| t.name == w))
        else {
            continue;
        };
        match words.next().filter(|w| stack.component(w).is_some()) {
            Some(component) => add(&mut failed, component),
            None => add(&mut failed, &target.component),
        }
    }
    if !failed.is_empty() {
        return failed;
    }
    let name = Path::new(&stack.file.name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for line in text.lines() {
        let Some(i) = line.find(&format!("{name}:")) else {
            continue;
        };
        let rest = &line[i + name.len() + 1..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Some(c) = digits
            .parse()
            .ok()
            .and_then(|n| component_at_line(stack, n))
        {
            if not_built.iter().any(|t| t.component == c) {
                add(&mut failed, &c);
            }
        }
    }
    failed
}

/// The component whose table holds a 1-based line of the stack file.
fn component_at_line(stack: &Stack, line: usize) -> Option<String> {
    let mut by_start: Vec<(usize, &str)> = stack
        .components
        .iter()
        .map(|c| (stack.file.line_col(c.span.start).line, c.name.as_str()))
        .collect();
    by_start.sort();
    by_start
        .iter()
        .rev()
        .find(|(start, _)| *start <= line)
        .map(|(_, n)| (*n).to_owned())
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            }
            continue;
        }
        if c != '\r' {
            out.push(c);
        }
    }
    out
}

/// How much of bake's output is kept to find the failing target.
const TAIL: usize = 256 << 10;

/// Runs `docker buildx bake -f -` with this definition. Bake's display
/// goes to our stderr as it is (through a pseudo-terminal when stderr is
/// one, so bake keeps its interactive display); the end of it is kept.
fn bake(definition: &str, no_cache: bool) -> Result<(std::process::ExitStatus, String)> {
    let mut cmd = Command::new("docker");
    cmd.args(["buildx", "bake", "-f", "-"]);
    if no_cache {
        cmd.arg("--no-cache");
    }
    cmd.stdin(Stdio::piped());
    // Bake's stdout is not our data: send it to stderr.
    cmd.stdout(stderr_stdio()?);
    let (mut reader, child_err) = output_channel()?;
    cmd.stderr(child_err);
    let mut child = cmd
        .spawn()
        .context("cannot run `docker buildx bake`: is the docker CLI with buildx installed?")?;
    // The child holds its end now; drop ours so reading ends when it exits.
    drop(cmd);
    if let Some(mut stdin) = child.stdin.take() {
        // A bake that exits before reading says why itself; its status decides.
        let _ = stdin.write_all(definition.as_bytes());
    }
    let copier = std::thread::spawn(move || {
        let mut tail: Vec<u8> = Vec::new();
        let mut buf = [0u8; 16 << 10];
        let mut err = std::io::stderr();
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let _ = err.write_all(&buf[..n]);
                    let _ = err.flush();
                    tail.extend_from_slice(&buf[..n]);
                    if tail.len() > 2 * TAIL {
                        tail.drain(..tail.len() - TAIL);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // A pty's reader gets EIO once the last writer is gone.
                Err(_) => break,
            }
        }
        String::from_utf8_lossy(&tail).into_owned()
    });
    // Ctrl-C stops bake (same process group); we stay to clean up and report.
    let _sigint = pty::DeferInterrupt::new();
    let status = child.wait().context("waiting for docker buildx bake")?;
    let tail = copier.join().unwrap_or_default();
    Ok((status, tail))
}

fn stderr_stdio() -> Result<Stdio> {
    use std::os::fd::AsFd;
    let fd = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .context("cannot duplicate stderr")?;
    Ok(Stdio::from(fd))
}

/// A pipe, or a pseudo-terminal of the same size when stderr is a terminal.
fn output_channel() -> Result<(std::fs::File, Stdio)> {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        if let Some((master, slave)) = pty::open_like_stderr() {
            return Ok((master, Stdio::from(slave)));
        }
    }
    let (r, w) = std::io::pipe().context("cannot create a pipe")?;
    Ok((
        std::fs::File::from(std::os::fd::OwnedFd::from(r)),
        Stdio::from(w),
    ))
}

mod pty {
    //! The one place that needs libc: a pseudo-terminal for bake's stderr,
    //! and SIGINT held off while bake runs.
    use std::fs::File;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    /// A pty (master, slave) sized like our stderr's terminal.
    pub fn open_like_stderr() -> Option<(File, OwnedFd)> {
        let mut master: libc::c_int = -1;
        let mut slave: libc::c_int = -1;
        // SAFETY: winsize is plain data; ioctl fills it or fails.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ writes a winsize into the pointer we pass.
        let have_size = unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut ws) } == 0;
        let wsp: *const libc::winsize = if have_size { &ws } else { std::ptr::null() };
        // SAFETY: openpty writes two descriptors; the name pointer may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                wsp,
            )
        };
        if rc != 0 {
            return None;
        }
        // SAFETY: openpty succeeded: both descriptors are open and ours alone.
        let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        // Our own terminal turns "\n" into "\r\n" already: the pty must not too.
        // SAFETY: termios is plain data, filled by tcgetattr on an open pty.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(slave.as_raw_fd(), &mut t) == 0 {
                t.c_oflag &= !libc::ONLCR;
                libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &t);
            }
        }
        Some((master, slave))
    }

    extern "C" fn ignore(_: libc::c_int) {}

    /// While alive, SIGINT runs a no-op handler in this process (a handler,
    /// not SIG_IGN: children reset handlers on exec, so bake still stops).
    pub struct DeferInterrupt {
        old: libc::sigaction,
    }

    impl DeferInterrupt {
        pub fn new() -> DeferInterrupt {
            // SAFETY: sigaction is plain data; the handler is async-signal-safe (does nothing).
            unsafe {
                let mut new: libc::sigaction = std::mem::zeroed();
                new.sa_sigaction = ignore as extern "C" fn(libc::c_int) as libc::sighandler_t;
                libc::sigemptyset(&mut new.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                libc::sigaction(libc::SIGINT, &new, &mut old);
                DeferInterrupt { old }
            }
        }
    }

    impl Drop for DeferInterrupt {
        fn drop(&mut self) {
            // SAFETY: restores the disposition saved by `new`.
            unsafe {
                libc::sigaction(libc::SIGINT, &self.old, std::ptr::null_mut());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STACK: &str = "[stack]\nname = \"t\"\nimage = \"t/{component}:1\"\n\n[component.base]\nfrom = \"debian:bookworm\"\nrun = [\"true\"]\n\n[component.node-gui]\nfrom = \"base\"\n\n[component.b]\nfrom = \"base\"\nrun = [\"exit 3\"]\n";

    fn stack() -> Stack {
        crate::spec::load("strata.toml", STACK.as_bytes(), &Default::default()).expect("valid")
    }

    #[test]
    fn the_failed_step_names_its_component() {
        let s = stack();
        let comps: Vec<&Component> = s.components.iter().collect();
        let targets = target_names(&comps);
        let not_built: Vec<&Target> = targets.iter().collect();
        // A shared base's step, shown under another target.
        let tail = "#9 [node-gui base] RUN true\n------\n > [node-gui base] RUN true:\n------\nERROR: failed to solve";
        assert_eq!(failed_targets(&s, &not_built, tail), vec!["base"]);
        let tail = "\u{1b}[31m => ERROR [b b] RUN exit 3\u{1b}[0m\r\n";
        assert_eq!(failed_targets(&s, &not_built, tail), vec!["b"]);
        // A frontend error: only a line of the stack file.
        let tail = "ERROR: failed to solve: strata.toml:14:7: something is wrong";
        assert_eq!(failed_targets(&s, &not_built, tail), vec!["b"]);
        assert!(failed_targets(&s, &not_built, "ERROR: no builder").is_empty());
    }

    #[test]
    fn template_sequences_are_escaped_for_bake() {
        let cases = [
            ("release-${HOME}", "release-$${HOME}"),
            ("$${x}", "$$${x}"),
            ("%{ if true }x%{ endif }", "%%{ if true }x%%{ endif }"),
            ("%%{", "%%%{"),
            ("${upper(\"x\")}", "$${upper(\"x\")}"),
            ("$ $$ % %% {} x$", "$ $$ % %% {} x$"),
        ];
        for (value, escaped) in cases {
            assert_eq!(escape_template(value), escaped, "{value}");
        }
    }

    #[test]
    fn every_string_of_the_definition_is_escaped() {
        let s = stack();
        let comps: Vec<&Component> = s.components.iter().collect();
        let targets = target_names(&comps);
        let args = vec![
            ("branch".to_owned(), "a-${HOME}-%{x}".to_owned()),
            ("k${y}".to_owned(), "v".to_owned()),
        ];
        let mirrors = vec![("a".to_owned(), "b${c}".to_owned())];
        let def = bake_definition(&BakePlan {
            file: Path::new("/src/${dir}/strata.toml"),
            targets: &targets,
            args: &args,
            profile: Some("p%{x}"),
            mirrors: &mirrors,
            frontend: "fe:${t}",
            marker: None,
            skip_tests: true,
            git_branch: Some("main"),
        })
        .expect("definition");
        let base = &def["target"]["base"];
        assert_eq!(base["context"], "/src/$${dir}");
        assert_eq!(base["args"]["branch"], "a-$${HOME}-%%{x}");
        assert_eq!(base["args"]["k$${y}"], "v");
        assert_eq!(base["args"]["STRATA_GIT_BRANCH"], "main");
        assert_eq!(base["args"]["STRATA_MIRRORS"], "a=b$${c}");
        assert_eq!(base["args"]["STRATA_PROFILE"], "p%%{x}");
        assert_eq!(base["args"]["BUILDKIT_SYNTAX"], "fe:$${t}");
        assert_eq!(base["args"]["STRATA_SKIP_TESTS"], "1");
        assert_eq!(base["args"]["STRATA_WARNINGS"], "none");
        assert_eq!(def["group"]["default"]["targets"][0], "base");
    }

    #[test]
    fn ansi_and_carriage_returns_are_stripped() {
        assert_eq!(
            strip_ansi("\u{1b}[31m=> ERROR [b b] RUN\u{1b}[0m\r\n"),
            "=> ERROR [b b] RUN\n"
        );
    }
}
