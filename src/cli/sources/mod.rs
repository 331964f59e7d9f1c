//! `strata sources`: every external input of a stack (images, packages,
//! offline directories) as data, with the digests the lock pins.

use std::io::Write;
use std::path::Path;
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
use requirements::{in_context, read_requirements};

mod requirements;

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
