//! `strata targets`: the components, one line each.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::StackArgs;

/// `strata targets`.
#[derive(Args)]
pub struct TargetsArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// List them as built for this target platform (`TARGETARCH` and the
    /// other platform names set from it, so `when` conditions on them apply).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = super::platform_arg)]
    platform: Option<crate::lower::Platform>,
}

/// Runs `strata targets`: a table of names and descriptions on stdout.
pub fn run(a: TargetsArgs) -> Result<ExitCode> {
    let Some(s) = a.stack.load_for(a.platform.as_ref())? else {
        return Ok(ExitCode::FAILURE);
    };
    let width = s
        .components
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut out = std::io::stdout().lock();
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
    Ok(ExitCode::SUCCESS)
}
