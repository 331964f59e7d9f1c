//! `strata explain CODE`: what an error code or a lint means and what to do.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::spec::ErrorCode;

const ERRORS_DOC: &str = include_str!("../../docs/errors.md");
const LINTS_DOC: &str = include_str!("../../docs/lints.md");

/// `strata explain`.
#[derive(Args)]
pub struct ExplainArgs {
    /// An error code (`E0302`, `unknown-component`) or a lint id (`root-user`).
    code: String,
}

/// Runs `strata explain`: the code's section of docs/errors.md (or the
/// lint's of docs/lints.md) on stdout.
pub fn run(a: ExplainArgs) -> Result<ExitCode> {
    let section = match ErrorCode::find(&a.code) {
        Some(code) => section(ERRORS_DOC, &format!("## {}", code.id())),
        None => crate::lint::LINTS
            .iter()
            .find(|l| l.id == a.code.trim())
            .and_then(|l| section(LINTS_DOC, &format!("## `{}`", l.id))),
    };
    let Some(text) = section else {
        eprintln!(
            "error: `{}` is not an error code or lint id; codes look like E0302 (docs/errors.md), lint ids like root-user (docs/lints.md)",
            crate::spec::values::shown(&a.code)
        );
        return Ok(ExitCode::from(2));
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The part of `doc` from the line `heading` up to the next `## ` heading.
fn section<'d>(doc: &'d str, heading: &str) -> Option<&'d str> {
    let start = doc.match_indices(heading).map(|(i, _)| i).find(|&i| {
        (i == 0 || doc[..i].ends_with('\n')) && doc[i + heading.len()..].starts_with('\n')
    })?;
    let rest = &doc[start..];
    let end = rest[1..].find("\n## ").map_or(rest.len(), |i| i + 2);
    Some(rest[..end].trim_end_matches('\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_and_lint_has_a_section() {
        for c in ErrorCode::ALL {
            let s = section(ERRORS_DOC, &format!("## {}", c.id()));
            assert!(s.is_some_and(|s| s.contains(c.fix())), "{c}");
        }
        for l in crate::lint::LINTS {
            assert!(
                section(LINTS_DOC, &format!("## `{}`", l.id)).is_some(),
                "{}",
                l.id
            );
        }
    }
}
