//! The `strata` command line: whole-stack work on a stack file.

mod build;
mod bundle;
mod engine;
mod lock;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::graph::{render, Stack};
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
    Check {
        #[command(flatten)]
        stack: StackArgs,
        /// Treat warnings as errors.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Print the enabled components and their edges.
    #[command(
        after_help = "Examples:\n  strata graph\n  strata graph --format dot | dot -Tsvg > stack.svg\n  strata graph --format json --profile spark"
    )]
    Graph {
        #[command(flatten)]
        stack: StackArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
        format: GraphFormat,
    },
    /// Write a component's LLB Definition (binary, as `buildctl debug dump-llb` reads) or a JSON dump.
    #[command(
        after_help = "Examples:\n  strata llb --target node > node.llb\n  strata llb --target node | buildctl debug dump-llb\n  strata llb --target node --format json"
    )]
    Llb {
        #[command(flatten)]
        stack: StackArgs,
        /// The component (default: the stack's default target).
        #[arg(long)]
        target: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = LlbFormat::Binary)]
        format: LlbFormat,
        /// SOURCE_DATE_EPOCH for labels and env (default: the environment's).
        #[arg(long, env = "SOURCE_DATE_EPOCH")]
        source_date_epoch: Option<i64>,
    },
    /// List the components with a one-line description.
    #[command(after_help = "Examples:\n  strata targets\n  strata targets --profile all")]
    Targets {
        #[command(flatten)]
        stack: StackArgs,
    },
    /// Build every enabled component in one BuildKit session (docker buildx bake); --push pushes only if all built.
    #[command(
        after_help = "Examples:\n  strata build\n  strata build --profile cpu --only node\n  strata build --arg registry=127.0.0.1:5000/fedbiomed --push --lock-file pushed.toml"
    )]
    Build(build::BuildArgs),
    /// Print the bake definition (JSON) that `strata build` runs.
    #[command(
        after_help = "Examples:\n  strata bake > docker-bake.json && docker buildx bake -f docker-bake.json\n  strata bake --profile basic | jq '.group.default.targets'"
    )]
    Bake(build::BakeArgs),
    /// Write one offline archive of the stack's images (`docker load -i` restores them); `bundle verify FILE` checks one.
    #[command(
        after_help = "Examples:\n  strata bundle -o stack.tar.gz\n  strata bundle -o stack.tar.zst --with-third-party --with-frontend\n  strata bundle verify stack.tar.gz"
    )]
    Bundle(bundle::BundleArgs),
    /// Resolve every external image to a digest and write strata.lock next to the stack.
    #[command(
        after_help = "Examples:\n  strata lock\n  strata lock examples/fate/strata.toml --profile all"
    )]
    Lock(lock::LockArgs),
    /// List every external input (images, packages, offline directories) as data.
    #[command(
        after_help = "Examples:\n  strata sources\n  strata sources --format json | jq -r '.images[].ref'"
    )]
    Sources(lock::SourcesArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum LlbFormat {
    Binary,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Text,
    Dot,
    Mermaid,
    Json,
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
    #[arg(long = "mirror", value_name = "FROM=TO", value_parser = key_value)]
    pub mirrors: Vec<(String, String)>,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{s}` is not NAME=VALUE"))
}

/// Parses `a=b,c=d` (the STRATA_MIRRORS format).
pub fn parse_pairs(s: &str) -> Vec<(String, String)> {
    s.split([',', '\n'])
        .filter_map(|p| p.trim().split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

impl StackArgs {
    fn overrides(&self) -> Overrides {
        let mut mirrors = std::env::var("STRATA_MIRRORS")
            .map(|m| parse_pairs(&m))
            .unwrap_or_default();
        mirrors.extend(self.mirrors.iter().cloned());
        Overrides {
            args: self.args.clone(),
            profile: self.profile.clone(),
            mirrors,
        }
    }

    /// Loads and resolves the stack, printing diagnostics on failure.
    fn load(&self) -> Result<Option<Stack>> {
        let bytes = read_stack(&self.file)?;
        let name = self.file.display().to_string();
        match spec::load(&name, &bytes, &self.overrides()) {
            Ok(stack) => Ok(Some(stack)),
            Err(diags) => {
                eprint!("{}", diags.render());
                Ok(None)
            }
        }
    }
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
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
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
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match cli.command {
        Cmd::Check {
            stack,
            deny_warnings,
        } => {
            let Some(s) = stack.load()? else {
                return Ok(ExitCode::FAILURE);
            };
            print_warnings(&s);
            if deny_warnings && !s.warnings.is_empty() {
                eprintln!("{}: warnings are denied (--deny-warnings)", s.file.name);
                return Ok(ExitCode::FAILURE);
            }
            let enabled = s.enabled().count();
            eprintln!(
                "{}: ok: stack `{}`, {} components ({} enabled)",
                s.file.name,
                s.name,
                s.components.len(),
                enabled
            );
        }
        Cmd::Graph { stack, format } => {
            let Some(s) = stack.load()? else {
                return Ok(ExitCode::FAILURE);
            };
            print_warnings(&s);
            let text = match format {
                GraphFormat::Text => render::text(&s),
                GraphFormat::Dot => render::dot(&s),
                GraphFormat::Mermaid => render::mermaid(&s),
                GraphFormat::Json => format!("{:#}\n", render::json(&s)),
            };
            out.write_all(text.as_bytes())?;
        }
        Cmd::Llb {
            stack,
            target,
            format,
            source_date_epoch,
        } => {
            let Some(s) = stack.load()? else {
                return Ok(ExitCode::FAILURE);
            };
            let Some(target) = target.or_else(|| s.default_target.clone()) else {
                let names: Vec<&str> = s.enabled().map(|c| c.name.as_str()).collect();
                anyhow::bail!(
                    "no --target given and the stack has no default; targets: {}",
                    names.join(", ")
                );
            };
            let root = stack.file.parent().unwrap_or(Path::new("."));
            let ctx = crate::lower::BuildContext {
                metadata: crate::lower::BuildMetadata {
                    source_date_epoch,
                    ..Default::default()
                },
                ignore_files: read_ignore_files(root, &s, &target),
                ..Default::default()
            };
            let lowered = match crate::lower::lower(&s, &target, &ctx) {
                Ok(l) => l,
                Err(e) => {
                    let d = spec::Diagnostics {
                        file: s.file.clone(),
                        items: vec![spec::Diagnostic::error(e.span, e.message)],
                    };
                    eprint!("{}", d.render());
                    return Ok(ExitCode::FAILURE);
                }
            };
            match format {
                LlbFormat::Binary => {
                    out.write_all(&strata_llb::encode_definition(&lowered.definition))?
                }
                LlbFormat::Json => {
                    let dump = serde_json::json!({
                        "definition": strata_llb::dump::to_json(&lowered.definition),
                        "image_config": lowered.image_config,
                    });
                    writeln!(out, "{dump:#}")?;
                }
            }
        }
        Cmd::Targets { stack } => {
            let Some(s) = stack.load()? else {
                return Ok(ExitCode::FAILURE);
            };
            let width = s
                .components
                .iter()
                .map(|c| c.name.len())
                .max()
                .unwrap_or(6)
                .max(6);
            writeln!(out, "{:width$}  DESCRIPTION", "TARGET")?;
            for c in &s.components {
                let mut desc = c.description.clone().unwrap_or_default();
                if s.default_target.as_deref() == Some(&c.name) {
                    desc.push_str(" (default)");
                }
                if !c.enabled {
                    desc.push_str(" [disabled: ");
                    desc.push_str(c.condition.as_deref().unwrap_or(""));
                    desc.push(']');
                }
                writeln!(out, "{:width$}  {}", c.name, desc.trim())?;
            }
        }
        Cmd::Build(a) => return build::run_build(a),
        Cmd::Bake(a) => return build::run_bake(a),
        Cmd::Bundle(a) => return bundle::run(a),
        Cmd::Lock(a) => return lock::run_lock(a),
        Cmd::Sources(a) => return lock::run_sources(a),
    }
    Ok(ExitCode::SUCCESS)
}
