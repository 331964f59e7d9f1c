//! `strata bake`: the bake definition `strata build` runs, as JSON, for
//! `docker buildx bake -f`. It is made by build.rs, which owns the
//! definition; this command only prints it.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::build::{bake_definition, select, target_names, BakePlan, FrontendImage, Selection};
use super::lock::build_mirrors;
use super::StackArgs;

/// `strata bake`.
#[derive(Args)]
pub struct BakeArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    select: Selection,
    #[command(flatten)]
    frontend: FrontendImage,
    /// Return the images without running their `test` entries (STRATA_SKIP_TESTS=1).
    #[arg(long)]
    skip_tests: bool,
}

/// Runs `strata bake`: prints the definition.
pub fn run(a: BakeArgs) -> Result<ExitCode> {
    let Some(stack) = a.stack.load()? else {
        return Ok(ExitCode::FAILURE);
    };
    super::print_warnings(&stack);
    let components = select(&stack, &a.select.only)?;
    let targets = target_names(&components);
    let mirrors = build_mirrors(&a.stack, &stack, None)?;
    let def = bake_definition(&BakePlan {
        file: &a.stack.file,
        targets: &targets,
        args: &a.stack.args,
        profile: a.stack.profile.as_deref(),
        mirrors: &mirrors,
        frontend: &a.frontend.frontend,
        marker: None,
        skip_tests: a.skip_tests,
        git_branch: super::build::git_branch(super::build::stack_dir(&a.stack.file)).as_deref(),
    })?;
    writeln!(std::io::stdout().lock(), "{def:#}")?;
    Ok(ExitCode::SUCCESS)
}
