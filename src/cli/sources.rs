//! `strata sources`: every external input of a stack (images, packages,
//! offline directories) as data, with the digests the lock pins.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::json;

use super::lock::{
    external_images, lock_path, remote_sources, ExternalImage, Lock, Pin, RemoteSource,
};
use super::StackArgs;
use crate::graph::{Apt, Component, Conda, OsPackages, Pip, Stack, StepKind};

/// `strata sources`.
#[derive(Args)]
pub struct SourcesArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SourcesFormat::Text)]
    format: SourcesFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum SourcesFormat {
    Text,
    Json,
}

/// Runs `strata sources`.
pub fn run(a: SourcesArgs) -> Result<ExitCode> {
    let Some(stack) = a.stack.load()? else {
        return Ok(ExitCode::FAILURE);
    };
    super::print_warnings(&stack);
    let images = external_images(&a.stack, &stack, false)?;
    let lock = Lock::read(&lock_path(&a.stack.file))?.unwrap_or_default();
    let root = a.stack.file.parent().unwrap_or(Path::new("."));
    let (packages, refused) = packages(&stack, root);
    let remote = remote_sources(&stack, false);
    let mut out = std::io::stdout().lock();
    match a.format {
        SourcesFormat::Json => {
            let doc = json_doc(&stack, &images, &remote, &packages, &lock);
            writeln!(out, "{doc:#}")?;
        }
        SourcesFormat::Text => {
            let rows = text_rows(&images, &remote, &packages, &lock);
            write_table(&mut out, rows)?;
        }
    }
    for r in &refused {
        eprintln!("strata: error: {r}");
    }
    if !refused.is_empty() {
        eprintln!(
            "strata: error: the package list is incomplete: `strata sources` reads requirement files only inside each component's build context; keep them there and write includes relative to the including file"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// `strata sources --format json`.
fn json_doc(
    stack: &Stack,
    images: &[ExternalImage],
    remote: &[RemoteSource],
    packages: &[Package],
    lock: &Lock,
) -> serde_json::Value {
    let images: Vec<_> = images
        .iter()
        .map(|e| {
            let pin = match lock.get(&e.image) {
                Some(Pin::Digest(d)) => json!({ "digest": d }),
                Some(Pin::LocalId(id)) => json!({ "local_id": id }),
                None => serde_json::Value::Null,
            };
            json!({
                "ref": e.written.familiar(),
                "image": e.image.familiar(),
                "mirrored": e.written != e.image,
                "locked": pin,
                "used_by": e.used_by,
            })
        })
        .collect();
    let remote: Vec<_> = remote
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            if let Some(c) = lock.git.get(&r.lock_key()) {
                v["locked_commit"] = json!(c);
            }
            v
        })
        .collect();
    json!({
        "stack": stack.name,
        "profile": stack.profile,
        "images": images,
        "remote": remote,
        "packages": packages,
    })
}

/// `strata sources` as text: one row per image, remote source and package.
fn text_rows(
    images: &[ExternalImage],
    remote: &[RemoteSource],
    packages: &[Package],
    lock: &Lock,
) -> Vec<[String; 4]> {
    let mut rows: Vec<[String; 4]> = Vec::new();
    for e in images {
        let kind = if e.used_by.iter().all(|u| u.role == "third-party") {
            "third-party"
        } else {
            "image"
        };
        let mut detail = Vec::new();
        if e.written != e.image {
            detail.push(format!("mirrored to {}", e.image));
        }
        match lock.get(&e.image) {
            Some(Pin::Digest(d)) => detail.push(format!("locked {d}")),
            Some(Pin::LocalId(id)) => detail.push(format!("local image {id}")),
            None => {}
        }
        let by: Vec<String> = e
            .used_by
            .iter()
            .map(|u| format!("{} ({})", u.by, u.role))
            .collect();
        rows.push([
            kind.into(),
            e.written.familiar(),
            by.join(", "),
            detail.join("; "),
        ]);
    }
    for r in remote {
        let mut detail = Vec::new();
        if let Some(sum) = &r.checksum {
            detail.push(format!("checksum {sum}"));
        }
        if let Some(at) = &r.git_ref {
            detail.push(format!("{} {}", at.kind(), at.name()));
            if let Some(c) = lock.git.get(&r.lock_key()) {
                detail.push(format!("locked commit {c}"));
            }
        }
        rows.push([
            r.kind.into(),
            r.location.clone(),
            r.used_by.join(", "),
            detail.join("; "),
        ]);
    }
    for p in packages {
        let mut detail = Vec::new();
        if let Some(f) = &p.file {
            detail.push(format!("in {f}"));
        }
        if let Some(o) = &p.offline {
            detail.push(format!("offline from {o}"));
        }
        if !p.index.is_empty() {
            detail.push(format!("from {}", p.index.join(", ")));
        }
        rows.push([
            p.kind.into(),
            p.name.clone(),
            p.used_by.join(", "),
            detail.join("; "),
        ]);
    }
    rows
}

/// The rows under a header, in columns as wide as their widest cell.
fn write_table(out: &mut impl Write, rows: Vec<[String; 4]>) -> std::io::Result<()> {
    let w0 = rows.iter().map(|r| r[0].len()).max().unwrap_or(4).max(4);
    let w1 = rows.iter().map(|r| r[1].len()).max().unwrap_or(4).max(4);
    let w2 = rows.iter().map(|r| r[2].len()).max().unwrap_or(7).max(7);
    writeln!(
        out,
        "{:w0$}  {:w1$}  {:w2$}  DETAIL",
        "KIND", "NAME", "USED BY"
    )?;
    for r in rows {
        let line = format!("{:w0$}  {:w1$}  {:w2$}  {}", r[0], r[1], r[2], r[3]);
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// One package a build installs from outside the stack.
#[derive(Debug, Clone, Serialize)]
struct Package {
    /// `apt`, `dnf`, `apk`, `pip` or `conda`.
    kind: &'static str,
    /// The package or requirement specifier.
    name: String,
    /// The requirement or environment file it comes from.
    file: Option<String>,
    /// The offline directory it is installed from (in the context).
    offline: Option<String>,
    /// Conda channels.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    channels: Vec<String>,
    /// The package indexes or the apt mirror it is installed from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    index: Vec<String>,
    /// Components that install it.
    used_by: Vec<String>,
}

/// The apt, pip and conda packages of the enabled components, with the
/// requirement files read from the context, and why requirement paths
/// were refused.
fn packages(stack: &Stack, root: &Path) -> (Vec<Package>, Vec<String>) {
    let mut list = Packages {
        stack,
        root,
        out: Vec::new(),
        refused: Vec::new(),
    };
    for c in stack.enabled() {
        for s in &c.steps {
            match &s.kind {
                StepKind::Apt(a) => list.apt(c, a),
                StepKind::Dnf(o) => list.os("dnf", c, o),
                StepKind::Apk(o) => list.os("apk", c, o),
                StepKind::Pip(p) => list.pip(c, p),
                StepKind::Conda(k) => list.conda(c, k),
                _ => {}
            }
        }
    }
    (list.out, list.refused)
}

/// The packages found so far, one row per package and source.
struct Packages<'a> {
    stack: &'a Stack,
    /// The build context's root, where requirement files are read.
    root: &'a Path,
    out: Vec<Package>,
    /// Why requirement paths were refused.
    refused: Vec<String>,
}

impl Packages<'_> {
    /// Adds `p`, or its user to the same package from the same source.
    fn add(&mut self, p: Package) {
        let same = |q: &&mut Package| {
            q.kind == p.kind
                && q.name == p.name
                && q.file == p.file
                && q.offline == p.offline
                && q.index == p.index
        };
        match self.out.iter_mut().find(same) {
            Some(q) => {
                for c in p.used_by {
                    if !q.used_by.contains(&c) {
                        q.used_by.push(c);
                    }
                }
            }
            None => self.out.push(p),
        }
    }

    /// An apt step's packages, with the mirror or offline repository
    /// (the step's own, else `[packages]`).
    fn apt(&mut self, c: &Component, a: &Apt) {
        let (repo, mirror) = match (&a.repo, &a.mirror) {
            (None, None) => (
                self.stack.metadata.apt_repo.clone(),
                self.stack.metadata.apt_mirror.as_ref(),
            ),
            (repo, mirror) => (repo.clone(), mirror.as_ref()),
        };
        let index: Vec<String> = mirror
            .map(|m| format!("{} {} {}", m.url, m.suite, m.components.join(" ")))
            .into_iter()
            .collect();
        let offline = match mirror {
            Some(_) => None,
            None => repo.as_deref().map(|r| in_context(&c.context, r)),
        };
        for name in &a.packages {
            self.add(Package {
                offline: offline.clone(),
                index: index.clone(),
                ..Package::new("apt", name.clone(), c)
            });
        }
    }

    /// A dnf or apk step's packages.
    fn os(&mut self, kind: &'static str, c: &Component, o: &OsPackages) {
        for name in &o.packages {
            self.add(Package::new(kind, name.clone(), c));
        }
    }

    /// A pip step's packages and the specifiers of its requirement files,
    /// with its wheel directory and indexes (the step's own, else `[packages]`).
    fn pip(&mut self, c: &Component, p: &Pip) {
        let metadata = &self.stack.metadata;
        let links = p
            .find_links
            .clone()
            .or_else(|| metadata.find_links.clone())
            .map(|l| in_context(&c.context, &l));
        let pip_index = p.index.over(&metadata.pip_index);
        let index: Vec<String> = pip_index
            .index_url
            .iter()
            .chain(&pip_index.extra_index_urls)
            .cloned()
            .collect();
        let from = |name: String, file: Option<String>| Package {
            file,
            offline: links.clone(),
            index: index.clone(),
            ..Package::new("pip", name, c)
        };
        for name in &p.packages {
            self.add(from(name.clone(), None));
        }
        for r in &p.requirements {
            let file = in_context(&c.context, r);
            let read = read_requirements(self.root, &c.context, &c.name, r);
            self.refused.extend(read.refused);
            for name in read.specs {
                self.add(from(name, Some(file.clone())));
            }
        }
    }

    /// A conda step's packages and environment file, with its channels
    /// and offline channel directory (the step's own, else `[packages]`).
    fn conda(&mut self, c: &Component, k: &Conda) {
        let file = k.file.as_ref().map(|f| in_context(&c.context, f));
        let channel = k
            .channel_dir
            .clone()
            .or_else(|| self.stack.metadata.conda_channel.clone())
            .map(|d| in_context(&c.context, &d));
        let from = |name: String, file: Option<String>| Package {
            file,
            offline: channel.clone(),
            channels: k.channels.clone(),
            ..Package::new("conda", name, c)
        };
        for name in &k.packages {
            self.add(from(name.clone(), None));
        }
        if let Some(f) = file {
            self.add(from(format!("(environment file, env {})", k.env), Some(f)));
        }
    }
}

impl Package {
    /// Package `name` of `kind`, installed by `c` from the default source.
    fn new(kind: &'static str, name: String, c: &Component) -> Package {
        Package {
            kind,
            name,
            file: None,
            offline: None,
            channels: Vec::new(),
            index: Vec::new(),
            used_by: vec![c.name.clone()],
        }
    }
}

/// Most bytes `strata sources` reads from one requirements file.
const REQUIREMENTS_FILE_BYTES: u64 = 4 << 20;
/// Most bytes it reads from one requirements file and its includes, in all.
const REQUIREMENTS_TOTAL_BYTES: u64 = 64 << 20;
/// Most lines it reads from one requirements file and its includes, in all.
const REQUIREMENTS_TOTAL_LINES: usize = 200_000;
/// How much of a refused line an error message quotes.
const QUOTED_LINE_CHARS: usize = 120;

/// What one requirements file of a component, and its includes, list.
#[derive(Debug, Default)]
struct Requirements {
    /// The requirement specifiers, in pip's order; a file that is not
    /// there is listed as `(cannot read FILE)`.
    specs: Vec<String>,
    /// Why paths were refused, each naming where it was written.
    refused: Vec<String>,
    /// The files read, as the listing shows them, each once.
    files: Vec<String>,
}

/// A requirements or constraints file named by `-r` or `-c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Include {
    Requirements,
    Constraints,
}

/// The file a `-r`/`--requirement` or `-c`/`--constraint` line names,
/// in the forms pip accepts (`-r f`, `-rf`, `--requirement f`, `--requirement=f`).
fn include_of(line: &str) -> Option<(Include, &str)> {
    for (long, kind) in [
        ("--requirement", Include::Requirements),
        ("--constraint", Include::Constraints),
    ] {
        if let Some(rest) = line.strip_prefix(long) {
            let path = rest.strip_prefix('=').or_else(|| {
                rest.starts_with(char::is_whitespace)
                    .then_some(rest.trim_start())
            })?;
            return Some((kind, path.trim()));
        }
    }
    for (short, kind) in [("-r", Include::Requirements), ("-c", Include::Constraints)] {
        if let Some(rest) = line.strip_prefix(short) {
            return Some((kind, rest.trim()));
        }
    }
    None
}

/// A requirements file's logical lines, with the 1-based line each
/// starts on: comments dropped, `\` continuations joined, as pip reads them.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let (start, mut line) = pending.take().unwrap_or((i + 1, String::new()));
        line.push_str(raw);
        if let Some(joined) = line.strip_suffix('\\') {
            pending = Some((start, joined.to_owned()));
            continue;
        }
        out.push((start, line));
    }
    out.extend(pending);
    out.into_iter()
        .filter_map(|(n, line)| {
            let line = strip_comment(&line).trim();
            (!line.is_empty()).then(|| (n, line.to_owned()))
        })
        .collect()
}

/// A line without its comment: `#` at the start or after whitespace.
fn strip_comment(line: &str) -> &str {
    let mut prev_space = true;
    for (i, ch) in line.char_indices() {
        if ch == '#' && prev_space {
            return &line[..i];
        }
        prev_space = ch.is_whitespace();
    }
    line
}

/// A path relative to the context, `..` and `.` resolved by name;
/// None when it climbs above the context.
fn normalize_in_context(dir: &str, path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in dir.split('/').chain(path.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Where a requirements path written in `dir` (relative to the context)
/// leads, relative to the context; or why it is refused.
fn context_relative(dir: &str, path: &str) -> Result<String, &'static str> {
    if path.starts_with('/') {
        Err("names an absolute path")
    } else if path.contains("://") {
        Err("names a URL, not a file")
    } else {
        normalize_in_context(dir, path).ok_or("climbs out of the build context with `..`")
    }
}

/// A path as the listing shows it: relative to the stack file's directory.
fn in_context(context: &str, p: &str) -> String {
    if context == "." || context.is_empty() {
        p.to_owned()
    } else {
        format!("{}/{p}", context.trim_end_matches('/'))
    }
}

/// The text of a line quoted in a message, cut short when long.
fn quoted(line: &str) -> String {
    let mut q: String = line.chars().take(QUOTED_LINE_CHARS).collect();
    if q.len() < line.len() {
        q.push_str("...");
    }
    q
}

/// Where a context path leads.
enum Located {
    /// Inside the context: its canonical path.
    Inside(PathBuf),
    /// Nowhere: it is not there (or a link to nothing).
    Missing,
    /// Outside the context, through a symbolic link.
    Outside,
}

/// Reads one component's pip requirements, only inside its build context.
struct RequirementReader<'a> {
    /// The component, for messages.
    component: &'a str,
    /// The context as the stack file writes it (relative to `root`).
    context: &'a str,
    /// The context directory on this machine.
    dir: PathBuf,
    /// `dir` with every symbolic link followed.
    canonical: PathBuf,
    /// Every file opened, by canonical path: each is read once.
    visited: BTreeSet<PathBuf>,
    lines: usize,
    bytes: u64,
    out: Requirements,
}

impl RequirementReader<'_> {
    fn refuse(&mut self, at: &str, why: &str) {
        self.out.refused.push(format!("{at}: {why}"));
    }

    /// A context file's canonical path, if it is there and inside the context.
    fn locate(&self, rel: &str) -> Located {
        match self.dir.join(rel).canonicalize() {
            Err(_) => Located::Missing,
            Ok(path) if path.starts_with(&self.canonical) => Located::Inside(path),
            Ok(_) => Located::Outside,
        }
    }

    fn refuse_outside(&mut self, at: &str, written: &str) {
        self.refuse(
            at,
            &format!("`{written}` leads outside the build context through a symbolic link"),
        );
    }

    /// A requirements file's text, when it is a regular file within the size limits.
    fn read(&mut self, path: &Path, at: &str, written: &str) -> Option<String> {
        use std::io::Read;
        if !path.is_file() {
            self.refuse(at, &format!("`{written}` is not a regular file"));
            return None;
        }
        let mut bytes = Vec::new();
        let read = std::fs::File::open(path)
            .and_then(|f| f.take(REQUIREMENTS_FILE_BYTES + 1).read_to_end(&mut bytes));
        if read.is_err() {
            let shown = format!("(cannot read {})", self.shown(path));
            self.out.specs.push(shown);
            return None;
        }
        if bytes.len() as u64 > REQUIREMENTS_FILE_BYTES {
            self.refuse(
                at,
                &format!(
                    "`{written}` is larger than {} MiB",
                    REQUIREMENTS_FILE_BYTES >> 20
                ),
            );
            return None;
        }
        self.bytes += bytes.len() as u64;
        if self.bytes > REQUIREMENTS_TOTAL_BYTES {
            self.refuse(
                at,
                &format!(
                    "stopped at `{written}`: more than {} MiB of requirements in all",
                    REQUIREMENTS_TOTAL_BYTES >> 20
                ),
            );
            return None;
        }
        match String::from_utf8(bytes) {
            Ok(t) => Some(t),
            Err(_) => {
                self.refuse(at, &format!("`{written}` is not UTF-8 text"));
                None
            }
        }
    }

    /// A canonical path inside the context, shown as the listing shows paths.
    fn shown(&self, path: &Path) -> String {
        let rel = path
            .strip_prefix(&self.canonical)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        in_context(self.context, &rel)
    }

    /// Reads `file` (relative to the context) and the files it includes,
    /// depth first in pip's order, each once.
    fn read_all(mut self, file: &str) -> Requirements {
        struct Open {
            rel: String,
            lines: std::vec::IntoIter<(usize, String)>,
        }
        let mut stack: Vec<Open> = Vec::new();
        let at = at_component(self.component);
        // The stack file's paths were checked when it loaded; checked again here.
        let mut next = match context_relative("", file) {
            Ok(rel) => Some((rel, at, file.to_owned())),
            Err(why) => {
                self.refuse(&at, &format!("`{file}` {why}"));
                None
            }
        };
        loop {
            if let Some((rel, at, written)) = next.take() {
                match self.locate(&rel) {
                    Located::Missing => self
                        .out
                        .specs
                        .push(format!("(cannot read {})", in_context(self.context, &rel))),
                    Located::Outside => self.refuse_outside(&at, &written),
                    Located::Inside(path) => {
                        if self.visited.insert(path.clone()) {
                            if let Some(text) = self.read(&path, &at, &written) {
                                self.out.files.push(in_context(self.context, &rel));
                                stack.push(Open {
                                    rel,
                                    lines: logical_lines(&text).into_iter(),
                                });
                            }
                        }
                    }
                }
            }
            let Some(top) = stack.last_mut() else {
                break;
            };
            let Some((n, line)) = top.lines.next() else {
                stack.pop();
                continue;
            };
            self.lines += 1;
            let at = format!("{}:{n}", in_context(self.context, &top.rel));
            if self.lines > REQUIREMENTS_TOTAL_LINES {
                self.refuse(
                    &at,
                    &format!(
                        "stopped reading: more than {REQUIREMENTS_TOTAL_LINES} requirement lines in all"
                    ),
                );
                break;
            }
            let Some((kind, target)) = include_of(&line) else {
                if !line.starts_with('-') {
                    self.out.specs.push(line);
                }
                continue;
            };
            let written = quoted(&line);
            let dir = top.rel.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
            match context_relative(&dir, target) {
                Err(why) => self.refuse(&at, &format!("`{written}` {why}")),
                // A constraints file lists versions, not packages: checked, not read.
                Ok(rel) if kind == Include::Constraints => {
                    if matches!(self.locate(&rel), Located::Outside) {
                        self.refuse_outside(&at, &written);
                    }
                }
                Ok(rel) => next = Some((rel, at, written)),
            }
        }
        self.out
    }
}

/// Where a requirements path the stack file names was written.
fn at_component(component: &str) -> String {
    format!("component `{component}`")
}

/// The requirement specifiers of a component's pip requirements file
/// and its `-r` includes, read only inside the component's build context.
fn read_requirements(root: &Path, context: &str, component: &str, file: &str) -> Requirements {
    let context = if context == "." { "" } else { context };
    let root = if root.as_os_str().is_empty() {
        Path::new(".")
    } else {
        root
    };
    let dir = root.join(context);
    let Ok(canonical) = dir.canonicalize() else {
        return Requirements {
            specs: vec![format!("(cannot read {})", in_context(context, file))],
            ..Requirements::default()
        };
    };
    RequirementReader {
        component,
        context,
        dir,
        canonical,
        visited: BTreeSet::new(),
        lines: 0,
        bytes: 0,
        out: Requirements::default(),
    }
    .read_all(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory for one test's build context.
    fn temp_context(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("strata-lock-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("ctx/sub")).expect("temp dir");
        dir
    }

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn includes_are_read_in_every_form_pip_accepts() {
        let cases = [
            ("-r a.txt", Some((Include::Requirements, "a.txt"))),
            ("-ra.txt", Some((Include::Requirements, "a.txt"))),
            (
                "--requirement a.txt",
                Some((Include::Requirements, "a.txt")),
            ),
            (
                "--requirement=a.txt",
                Some((Include::Requirements, "a.txt")),
            ),
            ("-c c.txt", Some((Include::Constraints, "c.txt"))),
            ("--constraint=c.txt", Some((Include::Constraints, "c.txt"))),
            ("--requirements-x", None),
            ("--pre", None),
            ("six==1.16.0", None),
        ];
        for (line, want) in cases {
            assert_eq!(include_of(line), want, "{line}");
        }
    }

    #[test]
    fn comments_and_continuations_as_pip_reads_them() {
        let text = "# top\nsix==1.16 # pinned\nnumpy\\\n  >=1.0\n\nurl#frag\n";
        assert_eq!(
            logical_lines(text),
            vec![
                (2, "six==1.16".to_owned()),
                (3, "numpy  >=1.0".to_owned()),
                (6, "url#frag".to_owned()),
            ]
        );
    }

    #[test]
    fn include_paths_stay_inside_the_context_by_name() {
        assert_eq!(context_relative("sub", "../a.txt"), Ok("a.txt".to_owned()));
        assert_eq!(
            context_relative("sub", "./b/../c.txt"),
            Ok("sub/c.txt".to_owned())
        );
        assert!(context_relative("sub", "../../a.txt").is_err());
        assert!(context_relative("", "../a.txt").is_err());
        assert!(context_relative("", "/proc/self/environ").is_err());
        assert!(context_relative("", "https://example.org/r.txt").is_err());
    }

    #[test]
    fn requirements_outside_the_context_are_refused_and_never_read() {
        let dir = temp_context("outside");
        let ctx = dir.join("ctx");
        write(&dir.join("outside.txt"), "outside-secret\n");
        write(
            &ctx.join("requirements.txt"),
            "six\n-r /proc/self/environ\n-r ../outside.txt\n-r sub/link.txt\n-c ../c.txt\n--constraint=sub/c.txt\n",
        );
        write(&ctx.join("sub/c.txt"), "six<2\n");
        std::os::unix::fs::symlink("../../outside.txt", ctx.join("sub/link.txt")).expect("symlink");
        std::os::unix::fs::symlink("../outside.txt", ctx.join("linked.txt")).expect("symlink");
        let r = read_requirements(&dir, "ctx", "app", "requirements.txt");
        assert_eq!(r.specs, vec!["six"]);
        assert_eq!(r.files, vec!["ctx/requirements.txt"]);
        let lines: Vec<&str> = r
            .refused
            .iter()
            .map(|m| m.split(": ").next().unwrap_or(""))
            .collect();
        assert_eq!(
            lines,
            [
                "ctx/requirements.txt:2",
                "ctx/requirements.txt:3",
                "ctx/requirements.txt:4",
                "ctx/requirements.txt:5"
            ]
        );
        assert!(r.refused[0].contains("absolute"), "{:?}", r.refused);
        assert!(r.refused[2].contains("symbolic link"), "{:?}", r.refused);
        let top = read_requirements(&dir, "ctx", "app", "linked.txt");
        assert!(top.specs.is_empty());
        assert_eq!(top.refused.len(), 1);
        assert!(top.refused[0].starts_with("component `app`: `linked.txt` leads outside"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_file_is_read_once_and_cycles_end() {
        let dir = temp_context("once");
        let ctx = dir.join("ctx");
        // Each file includes the next twice: 2^30 reads without the visited set.
        for i in 0..30 {
            let next = format!("-r f{}.txt\n", i + 1);
            write(
                &ctx.join(format!("f{i}.txt")),
                &format!("pkg{i}\n{next}{next}"),
            );
        }
        write(&ctx.join("f30.txt"), "last\n-r sub/../f0.txt\n");
        let r = read_requirements(&dir, "ctx", "app", "f0.txt");
        assert!(r.refused.is_empty(), "{:?}", r.refused);
        assert_eq!(r.files.len(), 31);
        assert_eq!(r.specs.len(), 31);
        assert_eq!(r.specs[30], "last");
        // a -> b -> a, from a subdirectory (relative to the including file).
        write(&ctx.join("a.txt"), "in-a\n-r sub/b.txt\n");
        write(&ctx.join("sub/b.txt"), "in-b\n-r ../a.txt\n");
        let r = read_requirements(&dir, "ctx", "app", "a.txt");
        assert!(r.refused.is_empty(), "{:?}", r.refused);
        assert_eq!(r.specs, vec!["in-a", "in-b"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn large_and_missing_files_are_not_listed() {
        let dir = temp_context("large");
        let ctx = dir.join("ctx");
        let big = "x\n".repeat((REQUIREMENTS_FILE_BYTES as usize) / 2 + 1);
        write(&ctx.join("big.txt"), &big);
        write(&ctx.join("r.txt"), "ok\n-r big.txt\n-r missing.txt\n");
        let r = read_requirements(&dir, "ctx", "app", "r.txt");
        assert_eq!(r.specs, vec!["ok", "(cannot read ctx/missing.txt)"]);
        assert_eq!(r.refused.len(), 1);
        assert!(r.refused[0].starts_with("ctx/r.txt:2: `-r big.txt` is larger than 4 MiB"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
