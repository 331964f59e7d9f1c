//! `strata graph`: the enabled components and their edges.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};

use super::StackArgs;
use crate::graph::render;

/// `strata graph`.
#[derive(Args)]
pub struct GraphArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
    format: GraphFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Text,
    Dot,
    Mermaid,
    Json,
}

/// Runs `strata graph`: the graph on stdout, in the chosen format.
pub fn run(a: GraphArgs) -> Result<ExitCode> {
    let Some(s) = a.stack.load()? else {
        return Ok(ExitCode::FAILURE);
    };
    super::print_warnings(&s);
    let text = match a.format {
        GraphFormat::Text => render::text(&s),
        GraphFormat::Dot => render::dot(&s),
        GraphFormat::Mermaid => render::mermaid(&s),
        GraphFormat::Json => format!("{:#}\n", render::json(&s)),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
