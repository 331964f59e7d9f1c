//! What the frontend refuses before anything is solved: unsupported
//! contexts, a target that is not an enabled component, a build-platform
//! target of another platform, missing context inputs, missing LLB caps.

use std::collections::BTreeSet;

use strata_proto::gateway as gw;
use strata_proto::pb;

use super::inputs::session_for;
use super::{Bridge, CONTEXT_KEY};
use crate::frontend::errors::FrontendError;
use crate::frontend::opts::{self, FrontendOpts, NamedContext};
use crate::graph::{RunsOn, Stack};
use crate::lower::{self, Platform};
use crate::spec::{self, Diagnostic, Diagnostics, ErrorCode};

/// A build-platform component is an image of the build platform only: as
/// the target of a build for another platform it would be exported under
/// that platform's name with the build platform's programs in it.
pub(super) fn check_target_platform(
    stack: &Stack,
    target: &str,
    platform: &Platform,
    build_platform: &Platform,
) -> Result<(), FrontendError> {
    let Some(c) = stack.component(target) else {
        return Ok(());
    };
    if c.platform != RunsOn::Build || platform == build_platform {
        return Ok(());
    }
    let d = Diagnostic::error(
        ErrorCode::BuildPlatform,
        c.keys.platform.clone().unwrap_or_else(|| c.span.clone()),
        format!(
            "component `{target}` runs on the build platform ({}) and is not an image of {}",
            build_platform,
            platform
        ),
    )
    .with_help(format!(
        "build a component of the target platform that copies what `{target}` makes (`copy = [{{ from = \"{target}\", ... }}]`), or build `{target}` for {} only",
        build_platform
    ));
    Err(FrontendError::Stack(Diagnostics {
        file: stack.file.clone(),
        items: vec![d],
    }))
}

pub(super) fn reject_unsupported_context(opts: &FrontendOpts) -> Result<(), FrontendError> {
    if let Some(url) = &opts.remote_context {
        return Err(FrontendError::Other(format!(
            "the build context `{url}` is remote; the Strata frontend builds from a local directory only: clone or download it and run the build there"
        )));
    }
    if let Some(dir) = &opts.context_subdir {
        return Err(FrontendError::Other(format!(
            "contextsubdir `{dir}` is not supported by the Strata frontend: set each component's `context` in the stack file instead"
        )));
    }
    Ok(())
}

/// Named contexts Strata cannot honour are errors, not silently ignored.
pub(super) fn check_contexts(stack: &Stack, opts: &FrontendOpts) -> Result<(), FrontendError> {
    let mut problems = Vec::new();
    for (name, overrides) in &opts.contexts {
        for c in overrides {
            match &c.value {
                NamedContext::Image(_) if stack.component(name).is_some() => problems.push(format!(
                    "context:{name}: `{name}` is a component of the stack; a named context can replace an external image, not a component"
                )),
                NamedContext::Image(_) => {}
                other => problems.push(format!(
                    "context:{name}: {} named contexts are not supported by the Strata frontend; use docker-image://<ref> to replace an external image",
                    other.kind()
                )),
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(FrontendError::Opts(opts::OptsError { problems }))
    }
}

/// Checks every path the target's components read from the build context
/// (`crate::context`), before anything is solved: a missing or misplaced
/// input is a located error, not a failure deep in the build.
pub(super) async fn check_context<B: Bridge>(
    bridge: &mut B,
    stack: &Stack,
    target: &str,
    opts: &FrontendOpts,
    session_id: &str,
) -> Result<(), FrontendError> {
    let components = lower::needed_components(stack, target);
    if components.iter().all(|c| c.inputs.is_empty()) {
        return Ok(());
    }
    let mut reader = crate::frontend::context::GatewayContext {
        bridge,
        session: session_for(opts, CONTEXT_KEY, session_id),
    };
    let items = crate::context::check(components, &mut reader)
        .await
        .map_err(FrontendError::Other)?;
    if items.is_empty() {
        return Ok(());
    }
    Err(Diagnostics {
        file: stack.file.clone(),
        items,
    }
    .into())
}

/// The component to build: `target`, else the stack's default.
pub(super) fn choose_target(stack: &Stack, opts: &FrontendOpts) -> Result<String, FrontendError> {
    let names = || {
        stack
            .enabled()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(target) = opts.target.clone().or_else(|| stack.default_target.clone()) else {
        return Err(FrontendError::Other(format!(
            "no target: pass --target with one of: {}; or set a default in the stack file",
            names()
        )));
    };
    match stack.component(&target) {
        Some(c) if c.enabled => Ok(target),
        Some(c) => {
            let why = crate::graph::render::reason(stack, &c.name);
            let d = Diagnostic::error(
                ErrorCode::DisabledDependency,
                c.span.clone(),
                format!("component `{target}` is switched off ({why})"),
            )
            .with_help("change the args or profile that its `when` reads, or build another target");
            Err(FrontendError::Stack(Diagnostics {
                file: stack.file.clone(),
                items: vec![d],
            }))
        }
        None => {
            let hint =
                spec::diag::closest(&target, stack.components.iter().map(|c| c.name.as_str()))
                    .map(|c| format!("did you mean `{c}`? "))
                    .unwrap_or_default();
            Err(FrontendError::Other(format!(
                "target `{target}` is not a component of stack `{}`: {hint}components: {}",
                stack.name,
                names()
            )))
        }
    }
}

/// Every LLB capability the definition relies on must be enabled in the engine.
pub(super) fn check_caps(
    def: &pb::Definition,
    pong: &gw::PongResponse,
) -> Result<(), FrontendError> {
    if pong.llb_caps.is_empty() {
        return Ok(());
    }
    let enabled: BTreeSet<&str> = pong
        .llb_caps
        .iter()
        .filter(|c| c.enabled)
        .map(|c| c.id.as_str())
        .collect();
    let missing: BTreeSet<&str> = def
        .metadata
        .values()
        .flat_map(|m| m.caps.iter())
        .filter(|(cap, needed)| **needed && !enabled.contains(cap.as_str()))
        .map(|(cap, _)| cap.as_str())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(FrontendError::Other(format!(
        "this BuildKit lacks LLB capabilities the build needs: {}; use a newer BuildKit (Docker 26.1 / BuildKit 0.13 or later)",
        missing.into_iter().collect::<Vec<_>>().join(", ")
    )))
}
