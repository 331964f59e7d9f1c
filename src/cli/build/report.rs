//! A failed build as the user reads it: each error once, located in the
//! stack file, the failed steps' last lines and the components to blame.

use super::Target;
use crate::client::progress::Progress;
use crate::client::solve::Failure;
use crate::graph::Stack;

/// Prints why each failed component failed (each distinct error once,
/// located in the stack file), which component a failed step belongs to,
/// and what did build.
pub(super) fn report_failure(
    stack: &Stack,
    targets: &[Target],
    failed: &[(&Target, &Failure)],
    progress: &Progress,
) {
    let mut shown: Vec<String> = Vec::new();
    let mut culprits: Vec<String> = Vec::new();
    for (t, f) in failed {
        let text = f.to_string();
        // The component whose step failed: a shared base fails every
        // component built on it, with the same error.
        let owner = match f {
            Failure::Frontend(crate::frontend::FrontendError::Step(s)) => s
                .steps
                .values()
                .find_map(|(name, _)| step_owner(name).filter(|_| text.contains(name.as_str())))
                .unwrap_or(t.component.as_str())
                .to_owned(),
            _ => t.component.clone(),
        };
        if !culprits.contains(&owner) {
            culprits.push(owner);
        }
        if shown.contains(&text) {
            continue;
        }
        eprintln!("{}", render_failure(f));
        shown.push(text);
    }
    for (name, error, logs) in progress.failures() {
        if logs.is_empty() {
            continue;
        }
        eprintln!("strata: the last lines of `{name}` ({error}):");
        for l in logs {
            eprintln!("  | {l}");
        }
    }
    for c in &culprits {
        if let Some(comp) = stack.component(c) {
            let at = stack.file.line_col(comp.span.start);
            eprintln!(
                "{}:{}:{}: error: component `{}` failed to build ([component.{}])",
                stack.file.name, at.line, at.col, comp.name, comp.name
            );
        }
    }
    let list = |v: Vec<&str>| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    };
    let built: Vec<&str> = targets
        .iter()
        .filter(|t| !failed.iter().any(|(f, _)| f.name == t.name))
        .map(|t| t.component.as_str())
        .collect();
    let others: Vec<&str> = failed
        .iter()
        .map(|(t, _)| t.component.as_str())
        .filter(|c| !culprits.iter().any(|f| f == c))
        .collect();
    eprintln!(
        "strata: built: {}; failed: {}; not built (needing a failed one): {}",
        list(built),
        list(culprits.iter().map(String::as_str).collect()),
        list(others)
    );
}

/// The component a step belongs to, from its name (`[base] RUN ...`).
pub(super) fn step_owner(name: &str) -> Option<&str> {
    let inner = name.strip_prefix('[')?.split_once(']')?.0;
    inner.split(' ').next_back()
}

/// A failure as the user reads it: stack errors with their source lines.
pub(super) fn render_failure(f: &Failure) -> String {
    match f {
        Failure::Frontend(crate::frontend::FrontendError::Stack(d)) => d.to_string(),
        Failure::Frontend(e) => format!("error: {e}"),
        Failure::Engine(s) if s.message().contains("unknown cache exporter") => format!(
            "error: BuildKit: {}: this engine cannot export cache; build on BuildKit or on \
             Docker with the containerd image store (--builder)",
            s.message()
        ),
        Failure::Engine(s) => format!("error: BuildKit: {}", s.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_names_its_component() {
        assert_eq!(step_owner("[base] RUN true"), Some("base"));
        assert_eq!(step_owner("[linux/arm64 app] COPY x"), Some("app"));
        assert_eq!(step_owner("load build definition"), None);
    }
}
