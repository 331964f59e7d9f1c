//! `strata llb`: one component's LLB Definition, binary or as JSON.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};

use super::{read_ignore_files, StackArgs};
use crate::lower::{BuildContext, BuildMetadata};
use crate::spec;

/// `strata llb`.
#[derive(Args)]
pub struct LlbArgs {
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
    /// Lower for this target platform, which the stack reads as
    /// `TARGETARCH` and the other platform names (default linux/amd64).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = super::platform_arg)]
    platform: Option<crate::lower::Platform>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LlbFormat {
    Binary,
    Json,
}

/// Runs `strata llb`: the Definition on stdout; a lowering error, located, on stderr.
pub fn run(a: LlbArgs) -> Result<ExitCode> {
    let Some(s) = a.stack.load_for(a.platform.as_ref())? else {
        return Ok(ExitCode::FAILURE);
    };
    let Some(target) = a.target.or_else(|| s.default_target.clone()) else {
        let names: Vec<&str> = s.enabled().map(|c| c.name.as_str()).collect();
        anyhow::bail!(
            "no --target given and the stack has no default; targets: {}",
            names.join(", ")
        );
    };
    if !super::context_ok(
        &a.stack.file,
        &s,
        crate::lower::needed_components(&s, &target),
    )? {
        return Ok(ExitCode::FAILURE);
    }
    let root = a.stack.file.parent().unwrap_or(Path::new("."));
    let ctx = BuildContext {
        metadata: BuildMetadata {
            source_date_epoch: a.source_date_epoch,
            ..Default::default()
        },
        ignore_files: read_ignore_files(root, &s, &target),
        platform: a.platform.clone().unwrap_or_default(),
        ..Default::default()
    };
    let lowered = match crate::lower::lower(&s, &target, &ctx) {
        Ok(l) => l,
        Err(e) => {
            let d = spec::Diagnostics {
                file: s.file.clone(),
                items: vec![spec::Diagnostic::error(e.code, e.span, e.message)],
            };
            eprint!("{}", d.render());
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut out = std::io::stdout().lock();
    match a.format {
        LlbFormat::Binary => out.write_all(&strata_llb::encode_definition(&lowered.definition))?,
        LlbFormat::Json => {
            let dump = serde_json::json!({
                "definition": strata_llb::dump::to_json(&lowered.definition),
                "image_config": lowered.image_config,
            });
            writeln!(out, "{dump:#}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
