//! The build of the target for each platform: load the stack, check it,
//! lower it, solve the image and run its tests.

use std::collections::BTreeMap;

use strata_proto::gateway::{self as gw, result};
use strata_proto::pb;

use super::bases::{resolve_bases, target_platforms, worker_platform};
use super::checks::{
    check_caps, check_context, check_contexts, check_target_platform, choose_target,
    reject_unsupported_context,
};
use super::inputs::{read_ignore_files, read_stack_file, StackFile};
use super::output::{
    exporter_platform, force_platform, result_ref, set_platform, step_names, StepPrefixes,
    PLATFORMS_KEY,
};
use super::{Bridge, Launch, IMAGE_CONFIG_KEY};
use crate::frontend::errors::{self, FrontendError};
use crate::frontend::opts::FrontendOpts;
use crate::frontend::subrequests;
use crate::graph::Stack;
use crate::lower::{self, BuildContext, BuildMetadata, Platform};
use crate::spec::{self, Diagnostics};

/// Runs one build (or subrequest) and returns what to `Return`.
pub(crate) async fn build<B: Bridge>(
    bridge: &mut B,
    launch: &Launch,
) -> Result<gw::Result, FrontendError> {
    let opts = FrontendOpts::parse(&launch.opts)?;
    if let Some(request) = &opts.request_id {
        if request == subrequests::DESCRIBE {
            return Ok(subrequests::describe());
        }
        if !subrequests::supports(request) {
            return Err(FrontendError::UnsupportedSubrequest(request.clone()));
        }
    }
    let pong = bridge
        .ping()
        .await
        .map_err(|s| FrontendError::engine("asking BuildKit for its capabilities", s))?;
    reject_unsupported_context(&opts)?;
    let platforms = target_platforms(&opts, &pong);
    let build_platform = worker_platform(&pong);
    let file = read_stack_file(bridge, &opts, &launch.session_id).await?;
    let [platform] = platforms.as_slice() else {
        return build_many(
            bridge,
            launch,
            &opts,
            &pong,
            &file,
            &platforms,
            &build_platform,
        )
        .await;
    };
    let built = match build_one(
        bridge,
        launch,
        &opts,
        &pong,
        &file,
        platform,
        &build_platform,
        true,
        None,
    )
    .await?
    {
        Built::Answer(res) => return Ok(res),
        Built::Image(built) => built,
    };
    let mut config = built.config;
    set_platform(&mut config, platform);
    let config = serde_json::to_vec(&config)
        .map_err(|e| FrontendError::Bug(format!("image config is not serialisable: {e}")))?;
    Ok(gw::Result {
        result: Some(result::Result::Ref(gw::Ref {
            id: built.id,
            def: None,
        })),
        metadata: BTreeMap::from([(IMAGE_CONFIG_KEY.to_owned(), config)]),
        attestations: BTreeMap::new(),
    })
}

/// A build for several platforms: one lowering and Solve per platform, a
/// ref per platform keyed by its `os/arch[/variant]`, the `refs.platforms`
/// list and an image config per platform, as BuildKit's image exporter
/// reads them. Subrequests (`--print`) answer for the first platform.
pub(super) async fn build_many<B: Bridge>(
    bridge: &mut B,
    launch: &Launch,
    opts: &FrontendOpts,
    pong: &gw::PongResponse,
    file: &StackFile,
    platforms: &[Platform],
    build_platform: &Platform,
) -> Result<gw::Result, FrontendError> {
    let mut refs = BTreeMap::new();
    let mut metadata = BTreeMap::new();
    let mut listed = Vec::new();
    for (i, platform) in platforms.iter().enumerate() {
        let built = match build_one(
            bridge,
            launch,
            opts,
            pong,
            file,
            platform,
            build_platform,
            i == 0,
            Some(&platform.to_string()),
        )
        .await
        .map_err(|e| for_platform(e, platform))?
        {
            Built::Answer(res) => return Ok(res),
            Built::Image(built) => built,
        };
        let key = platform.to_string();
        if refs.contains_key(&key) {
            continue;
        }
        let mut config = built.config;
        force_platform(&mut config, platform);
        let config = serde_json::to_vec(&config)
            .map_err(|e| FrontendError::Bug(format!("image config is not serialisable: {e}")))?;
        metadata.insert(format!("{IMAGE_CONFIG_KEY}/{key}"), config);
        refs.insert(
            key.clone(),
            gw::Ref {
                id: built.id,
                def: None,
            },
        );
        listed.push(exporter_platform(&key, platform));
    }
    let listed = serde_json::to_vec(&serde_json::json!({ "Platforms": listed }))
        .map_err(|e| FrontendError::Bug(format!("platform list is not serialisable: {e}")))?;
    metadata.insert(PLATFORMS_KEY.to_owned(), listed);
    Ok(gw::Result {
        result: Some(result::Result::Refs(gw::RefMap { refs })),
        metadata,
        attestations: BTreeMap::new(),
    })
}

/// An error of one platform of a multi-platform build says which: the
/// stack may differ per platform (`TARGETARCH` in `when`, in `from`).
pub(super) fn for_platform(e: FrontendError, p: &Platform) -> FrontendError {
    let key = p.to_string();
    match e {
        FrontendError::Other(m) => FrontendError::Other(format!("for {key}: {m}")),
        FrontendError::Stack(mut d) => {
            for item in &mut d.items {
                if item.severity == spec::Severity::Error {
                    item.message = format!("for {key}: {}", item.message);
                }
            }
            FrontendError::Stack(d)
        }
        other => other,
    }
}

/// What one platform's build yields: a subrequest's answer, or an image.
pub(super) enum Built {
    Answer(gw::Result),
    Image(BuiltImage),
}

pub(super) struct BuiltImage {
    /// The solved ref.
    id: String,
    /// The image config, before its platform fields are set.
    config: serde_json::Value,
}

/// Loads, lowers, solves and tests the target for one platform.
/// `first`: warnings are sent, and subrequests answered, once per build.
#[allow(clippy::too_many_arguments)]
pub(super) async fn build_one<B: Bridge>(
    bridge: &mut B,
    launch: &Launch,
    opts: &FrontendOpts,
    pong: &gw::PongResponse,
    file: &StackFile,
    platform: &Platform,
    build_platform: &Platform,
    first: bool,
    name_prefix: Option<&str>,
) -> Result<Built, FrontendError> {
    let stack = load_stack(bridge, opts, file, platform, build_platform).await?;
    if let Some(request) = &opts.request_id {
        return subrequests::answer(request, &stack, opts).map(Built::Answer);
    }
    if !opts.quiet_warnings && first {
        let warnings = Diagnostics {
            file: stack.file.clone(),
            items: stack.warnings.clone(),
        };
        send_warnings(bridge, &warnings, &file.vertex).await;
    }
    check_contexts(&stack, opts)?;

    let target = choose_target(&stack, opts)?;
    check_target_platform(&stack, &target, platform, build_platform)?;
    if !launch.client_side {
        // A client-side build's client checked the context on its own disk.
        check_context(bridge, &stack, &target, opts, &launch.session_id).await?;
    }
    let platforms = (platform, build_platform);
    let ctx = build_context(bridge, launch, opts, &stack, &target, platforms).await?;
    let unknown = Diagnostics {
        file: stack.file.clone(),
        items: lower::unknown_metadata(&stack, &ctx.metadata),
    };
    send_warnings(bridge, &unknown, &file.vertex).await;
    let mut lowered = lower::lower(&stack, &target, &ctx)
        .map_err(|e| FrontendError::at(&stack.file, e.code, e.span, e.message))?;
    check_caps(&lowered.definition, pong)?;
    if let Some(prefix) = name_prefix {
        let names = StepPrefixes::new(&stack, prefix, platform, build_platform);
        names.apply(&mut lowered.definition);
        for t in &mut lowered.tests {
            names.apply(&mut t.definition);
        }
    }
    let cache_imports = cache_imports(opts);
    let id = solve_target(bridge, &stack, &target, lowered.definition, &cache_imports).await?;
    if !opts.skip_tests {
        run_tests(bridge, &stack, &target, lowered.tests, &cache_imports).await?;
    }
    Ok(Built::Image(BuiltImage {
        id,
        config: lowered.image_config,
    }))
}

/// Resolves the stack file for one target and build platform; its
/// diagnostics go to the client as warnings too, on the file's vertex.
pub(super) async fn load_stack<B: Bridge>(
    bridge: &mut B,
    opts: &FrontendOpts,
    file: &StackFile,
    platform: &Platform,
    build_platform: &Platform,
) -> Result<Stack, FrontendError> {
    let mut overrides = opts.overrides(platform);
    overrides.platform = Some(spec::PlatformVars::new(
        (
            &platform.os,
            &platform.architecture,
            platform.variant.as_deref(),
        ),
        (
            &build_platform.os,
            &build_platform.architecture,
            build_platform.variant.as_deref(),
        ),
    ));
    match crate::load(&opts.filename, &file.bytes, &overrides) {
        Ok(stack) => Ok(stack),
        Err(diags) => {
            send_warnings(bridge, &diags, &file.vertex).await;
            Err(diags.into())
        }
    }
}

/// What lowering `target` needs beyond the stack: the base images'
/// digests and configs (for the target and the build platform), the
/// ignore files, the options' metadata, labels and cache settings.
pub(super) async fn build_context<B: Bridge>(
    bridge: &mut B,
    launch: &Launch,
    opts: &FrontendOpts,
    stack: &Stack,
    target: &str,
    (platform, build_platform): (&Platform, &Platform),
) -> Result<BuildContext, FrontendError> {
    let images = lower::external_images(stack, target);
    let bases = resolve_bases(bridge, stack, images, platform, opts).await?;
    let images = lower::build_platform_images(stack, target);
    let build_bases = resolve_bases(bridge, stack, images, build_platform, opts).await?;
    let ignore_files = read_ignore_files(
        bridge,
        &lower::ignore_files(stack, target),
        opts,
        &launch.session_id,
    )
    .await?;
    let mut ctx = BuildContext {
        platform: platform.clone(),
        build_platform: build_platform.clone(),
        bases,
        build_bases,
        session_id: Some(launch.session_id.clone()).filter(|s| !s.is_empty()),
        image_resolve_mode: opts.image_resolve_mode,
        metadata: BuildMetadata {
            revision: opts.vcs_revision.clone(),
            branch: opts.git_branch.clone(),
            source: opts.vcs_source.clone(),
            source_date_epoch: opts.source_date_epoch,
        },
        no_cache: opts.no_cache.applies_to(target),
        labels: opts.labels.clone(),
        ignore_files,
        shared_context: None,
    };
    if launch.client_side {
        ctx.shared_context = Some(lower::shared_context(stack, &ctx));
    }
    Ok(ctx)
}

/// The `cache-from` imports of the options, for every solve.
pub(super) fn cache_imports(opts: &FrontendOpts) -> Vec<gw::CacheOptionsEntry> {
    opts.cache_imports
        .iter()
        .map(|c| gw::CacheOptionsEntry {
            r#type: c.kind.clone(),
            attrs: c.attrs.clone(),
        })
        .collect()
}

/// A Solve of `definition` that BuildKit evaluates at once (a plain Solve
/// is lazy), its result returned as a ref.
fn evaluated(
    definition: pb::Definition,
    cache_imports: &[gw::CacheOptionsEntry],
) -> gw::SolveRequest {
    gw::SolveRequest {
        definition: Some(definition),
        allow_result_return: true,
        allow_result_array_ref: true,
        evaluate: true,
        cache_imports: cache_imports.to_vec(),
        ..Default::default()
    }
}

/// Solves the target's LLB and returns its ref; a failing step is named
/// as the stack names it.
pub(super) async fn solve_target<B: Bridge>(
    bridge: &mut B,
    stack: &Stack,
    target: &str,
    definition: pb::Definition,
    cache_imports: &[gw::CacheOptionsEntry],
) -> Result<String, FrontendError> {
    let steps = step_names(&definition);
    // Evaluated here, not after Return: a failing step then reaches the
    // user through this frontend, named as the stack names it.
    let solved = bridge
        .solve(evaluated(definition, cache_imports))
        .await
        .map_err(|status| {
            FrontendError::Step(Box::new(errors::StepFailure {
                file: stack.file.name.clone(),
                component: target.to_owned(),
                steps,
                status,
            }))
        })?;
    result_ref(&solved)
        .ok_or_else(|| FrontendError::Other("BuildKit's Solve answered without a result".into()))
}

/// Runs the target's tests one after another, each a Solve that BuildKit
/// evaluates at once (a plain Solve is lazy); the first failure ends the build.
pub(super) async fn run_tests<B: Bridge>(
    bridge: &mut B,
    stack: &Stack,
    target: &str,
    tests: Vec<lower::LoweredTest>,
    cache_imports: &[gw::CacheOptionsEntry],
) -> Result<(), FrontendError> {
    for t in tests {
        bridge
            .solve(evaluated(t.definition, cache_imports))
            .await
            .map_err(|status| {
                FrontendError::Test(Box::new(errors::TestFailure {
                    file: stack.file.clone(),
                    span: t.span,
                    component: target.to_owned(),
                    name: t.name,
                    status,
                }))
            })?;
    }
    Ok(())
}

/// Warnings are advisory: a failure to deliver one must not fail the build.
pub(super) async fn send_warnings<B: Bridge>(bridge: &mut B, diags: &Diagnostics, vertex: &str) {
    for d in diags
        .items
        .iter()
        .filter(|d| d.severity == spec::Severity::Warning)
    {
        if let Err(e) = bridge.warn(errors::warning(&diags.file, d, vertex)).await {
            eprintln!("strata-frontend: could not send a warning: {}", e.message());
        }
    }
}
