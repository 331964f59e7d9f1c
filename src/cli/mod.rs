//! The `strata` command line: whole-stack work on a stack file.

mod bake;
mod build;
mod bundle;
mod cache;
mod check;
mod completions;
pub(crate) mod engine;
mod explain;
mod graph;
mod llb;
mod lock;
pub(crate) mod progress;
mod sources;
mod targets;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::graph::Stack;
use crate::spec::{self, Overrides};

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "Build stacks of container images from one stack file, on BuildKit",
    after_help = "Examples:\n  strata check                       validate strata.toml in this directory\n  strata graph --format mermaid      draw the component graph\n  strata targets examples/fate/strata.toml --profile all\n  strata llb --target node | buildctl debug dump-llb"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Validate a stack file; exit 1 with located diagnostics on error.
    #[command(
        after_help = "Examples:\n  strata check\n  strata check examples/fate/strata.toml --profile all\n  strata check --arg gpu=true --deny-warnings"
    )]
    Check(check::CheckArgs),
    /// Print the enabled components and their edges.
    #[command(
        after_help = "Examples:\n  strata graph\n  strata graph --format dot | dot -Tsvg > stack.svg\n  strata graph --format json --profile spark"
    )]
    Graph(graph::GraphArgs),
    /// Write a component's LLB Definition (binary, as `buildctl debug dump-llb` reads) or a JSON dump.
    #[command(
        after_help = "Examples:\n  strata llb --target node > node.llb\n  strata llb --target node | buildctl debug dump-llb\n  strata llb --target node --format json"
    )]
    Llb(llb::LlbArgs),
    /// List the components with a one-line description.
    #[command(after_help = "Examples:\n  strata targets\n  strata targets --profile all")]
    Targets(targets::TargetsArgs),
    /// Build every enabled component in one BuildKit session (docker buildx bake); --push pushes only if all built.
    #[command(
        after_help = "Examples:\n  strata build\n  strata build --profile cpu --only node\n  strata build --arg registry=127.0.0.1:5000/fedbiomed --push --lock-file pushed.toml"
    )]
    Build(build::BuildArgs),
    /// Print the bake definition (JSON) that `strata build` runs.
    #[command(
        after_help = "Examples:\n  strata bake > docker-bake.json && docker buildx bake -f docker-bake.json\n  strata bake --profile basic | jq '.group.default.targets'"
    )]
    Bake(bake::BakeArgs),
    /// Write one offline archive of the stack's images (`docker load -i` restores them); `bundle verify FILE` checks one.
    #[command(
        after_help = "Examples:\n  strata bundle -o stack.tar.gz                     gzip, from the file name\n  strata bundle -o stack.tar.zst --with-third-party --with-frontend\n  strata bundle -o site.bundle --compression zstd --frontend 127.0.0.1:5000/strata/frontend:1\n  strata bundle -o all.tar.zst --profile all --arg registry=127.0.0.1:5000/fate\n  strata bundle -o stack.tar.gz --mirror python:3.11=strata.local/python:3.11\n  strata bundle -o stack.tar.gz --progress plain 2>bundle.log   a line per layer, for logs\n  strata bundle -o stack.tar.gz --progress quiet    only the summary\n  strata bundle verify stack.tar.gz"
    )]
    Bundle(bundle::BundleArgs),
    /// Resolve every external image to a digest and write strata.lock next to the stack.
    #[command(
        after_help = "Examples:\n  strata lock\n  strata lock examples/fate/strata.toml --profile all\n  strata lock --arg gpu=true --mirror python:3.11=strata.local/python:3.11\n  strata lock -o /tmp/strata.lock                   review before replacing strata.lock\n  strata lock --progress plain                      no live line, even on a terminal\n  strata lock --progress quiet                      only errors and the summary"
    )]
    Lock(lock::LockArgs),
    /// List every external input (images, packages, offline directories) as data.
    #[command(
        after_help = "Examples:\n  strata sources\n  strata sources --format json | jq -r '.images[].ref'"
    )]
    Sources(sources::SourcesArgs),
    /// Say what an error code or lint id means and how to fix it (docs/errors.md, docs/lints.md).
    #[command(
        after_help = "Examples:\n  strata explain E0302\n  strata explain unknown-component\n  strata explain root-user"
    )]
    Explain(explain::ExplainArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    #[command(
        after_help = "Examples:\n  strata completions bash > ~/.local/share/bash-completion/completions/strata\n  strata completions zsh > \"${fpath[1]}/_strata\"\n  strata completions fish > ~/.config/fish/completions/strata.fish\n  source <(strata completions bash)                 this shell only"
    )]
    Completions(completions::CompletionsArgs),
}

/// Options shared by every command that reads a stack.
#[derive(Args, Clone)]
pub struct StackArgs {
    /// The stack file (default: ./strata.toml).
    #[arg(default_value = "strata.toml")]
    pub file: PathBuf,
    /// Set an arg: NAME=VALUE (repeatable).
    #[arg(long = "arg", value_name = "NAME=VALUE", value_parser = key_value)]
    pub args: Vec<(String, String)>,
    /// Select a profile of arg values.
    #[arg(long)]
    pub profile: Option<String>,
    /// Replace an external image: FROM=TO (repeatable; also STRATA_MIRRORS="a=b,c=d").
    #[arg(long = "mirror", value_name = "FROM=TO", value_parser = mirror_pair)]
    pub mirrors: Vec<(String, String)>,
}

/// One `--mirror FROM=TO`, by the rules of `STRATA_MIRRORS`.
fn mirror_pair(s: &str) -> Result<(String, String), String> {
    match spec::resolve::parse_mirror_list(s) {
        Ok(mut pairs) if pairs.len() == 1 => Ok(pairs.remove(0)),
        Ok(_) => Err(format!("`{s}` is not one FROM=TO pair")),
        Err(bad) => Err(bad.join("; ")),
    }
}

/// `--platform os/arch[/variant]`, normalised as the frontend does.
fn platform_arg(s: &str) -> Result<crate::lower::Platform, String> {
    crate::frontend::opts::parse_platform(s)
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{s}` is not NAME=VALUE"))
}

impl StackArgs {
    /// The args, profile and mirrors given: `STRATA_MIRRORS` from the
    /// environment first, then `--mirror` (which wins). A malformed mirror
    /// is an error, as it is through the frontend.
    fn overrides(&self) -> Result<Overrides> {
        let mut mirrors = match std::env::var("STRATA_MIRRORS") {
            Ok(m) => spec::resolve::parse_mirror_list(&m)
                .map_err(|bad| anyhow::anyhow!("STRATA_MIRRORS: {}", bad.join("; ")))?,
            Err(_) => Vec::new(),
        };
        mirrors.extend(self.mirrors.iter().cloned());
        Ok(Overrides {
            args: self.args.clone(),
            profile: self.profile.clone(),
            mirrors,
            platform: None,
        })
    }

    /// Loads and resolves the stack, printing diagnostics on failure.
    fn load(&self) -> Result<Option<Stack>> {
        self.load_for(None)
    }

    /// Loads the stack for a target platform (`TARGETARCH`, ...; default
    /// linux/amd64, the platform `strata llb` lowers for).
    fn load_for(&self, platform: Option<&crate::lower::Platform>) -> Result<Option<Stack>> {
        let bytes = read_stack(&self.file)?;
        let name = self.file.display().to_string();
        let mut overrides = self.overrides()?;
        if let Some(p) = platform {
            let build = crate::lower::Platform::default();
            overrides.platform = Some(spec::PlatformVars::new(
                (&p.os, &p.architecture, p.variant.as_deref()),
                (&build.os, &build.architecture, build.variant.as_deref()),
            ));
        }
        match crate::load(&name, &bytes, &overrides) {
            Ok(stack) => Ok(Some(stack)),
            Err(diags) => {
                eprint!("{}", diags.render());
                Ok(None)
            }
        }
    }
}

/// Checks the build context (the stack file's directory) for every path
/// `components` read; prints the errors and says whether there were none.
pub fn context_ok<'s>(
    file: &Path,
    stack: &'s Stack,
    components: impl IntoIterator<Item = &'s crate::graph::Component>,
) -> Result<bool> {
    let root = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut reader = crate::context::FsContext { root };
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let items = runtime
        .block_on(crate::context::check(components, &mut reader))
        .map_err(|e| anyhow::anyhow!("reading the build context: {e}"))?;
    if items.is_empty() {
        return Ok(true);
    }
    let d = spec::Diagnostics {
        file: stack.file.clone(),
        items,
    };
    eprint!("{}", d.render());
    Ok(false)
}

/// The ignore files lowering needs, read from the context directory.
pub fn read_ignore_files(
    root: &Path,
    stack: &Stack,
    target: &str,
) -> std::collections::BTreeMap<String, String> {
    crate::lower::ignore_files(stack, target)
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(root.join(&p)).ok().map(|t| (p, t)))
        .collect()
}

fn read_stack(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| {
        format!("cannot read the stack file {}: give its path, or run strata in the directory that holds strata.toml", path.display())
    })?;
    if meta.len() > spec::resolve::MAX_FILE_SIZE as u64 * 2 {
        anyhow::bail!(
            "{} is {} bytes: too large for a stack file",
            path.display(),
            meta.len()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Runs the command line; the exit code says whether it worked.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        // A closed stdout (`strata llb | head`) ends the command quietly.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether an error comes from writing to a pipe whose reader has gone.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn print_warnings(stack: &Stack) {
    if !stack.warnings.is_empty() {
        let d = spec::Diagnostics {
            file: stack.file.clone(),
            items: stack.warnings.clone(),
        };
        eprint!("{}", d.render());
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Cmd::Check(a) => check::run(a),
        Cmd::Graph(a) => graph::run(a),
        Cmd::Llb(a) => llb::run(a),
        Cmd::Targets(a) => targets::run(a),
        Cmd::Build(a) => build::run(a),
        Cmd::Bake(a) => bake::run(a),
        Cmd::Bundle(a) => bundle::run(a),
        Cmd::Lock(a) => lock::run(a),
        Cmd::Sources(a) => sources::run(a),
        Cmd::Explain(a) => explain::run(a),
        Cmd::Completions(a) => completions::run(a, Cli::command()),
    }
}
