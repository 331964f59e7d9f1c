//! `strata check`: validate a stack file.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::StackArgs;

/// `strata check`.
#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// Treat warnings as errors.
    #[arg(long)]
    deny_warnings: bool,
    /// Check for this target platform (`TARGETARCH` and the other platform
    /// names in `{...}` and `when`; default linux/amd64).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = super::platform_arg)]
    platform: Option<crate::lower::Platform>,
}

/// Runs `strata check`: diagnostics and a summary on stderr, exit 1 on error.
pub fn run(a: CheckArgs) -> Result<ExitCode> {
    let Some(s) = a.stack.load_for(a.platform.as_ref())? else {
        return Ok(ExitCode::FAILURE);
    };
    super::print_warnings(&s);
    if !super::context_ok(&a.stack.file, &s, s.enabled())? {
        return Ok(ExitCode::FAILURE);
    }
    if a.deny_warnings && !s.warnings.is_empty() {
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
    Ok(ExitCode::SUCCESS)
}
