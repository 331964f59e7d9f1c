//! One frontend run: options → stack file → base images → LLB → result.
//!
//! Every call to BuildKit goes through [`Bridge`], so the whole flow runs
//! against a stub in unit tests and against [`Gateway`] for real.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;

use prost::Message;
use sha2::{Digest, Sha256};
use strata_proto::gateway::{self as gw, result};
use strata_proto::{pb, LlbBridgeClient};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic::{Request, Status};

use super::errors::{self, FrontendError};
use super::opts::{self, FrontendOpts, NamedContext};
use super::subrequests;
use crate::graph::{Base, CopySource, ImageRef, RunsOn, Stack, StepKind};
use crate::lower::{self, BaseImage, BuildContext, BuildMetadata, Platform};
use crate::spec::{self, Diagnostic, Diagnostics, ErrorCode};

/// The metadata key BuildKit's image exporter reads the image config from.
pub const IMAGE_CONFIG_KEY: &str = "containerimage.config";
/// The session directory holding the build context.
const CONTEXT_KEY: &str = "context";

/// The LLBBridge calls the frontend makes.
pub(crate) trait Bridge {
    async fn ping(&mut self) -> Result<gw::PongResponse, Status>;
    async fn inputs(&mut self) -> Result<gw::InputsResponse, Status>;
    async fn solve(&mut self, req: gw::SolveRequest) -> Result<gw::SolveResponse, Status>;
    async fn read_file(&mut self, req: gw::ReadFileRequest) -> Result<Vec<u8>, Status>;
    async fn read_dir(
        &mut self,
        req: gw::ReadDirRequest,
    ) -> Result<Vec<strata_proto::fsutil::Stat>, Status>;
    async fn stat_file(&mut self, req: gw::StatFileRequest)
        -> Result<gw::StatFileResponse, Status>;
    async fn resolve_image_config(
        &mut self,
        req: gw::ResolveImageConfigRequest,
    ) -> Result<gw::ResolveImageConfigResponse, Status>;
    async fn warn(&mut self, req: gw::WarnRequest) -> Result<(), Status>;
    async fn finish(&mut self, req: gw::ReturnRequest) -> Result<(), Status>;
}

/// The LLBBridge client: over the frontend's stdio, or, for a client
/// that runs the frontend in its own process, over the client's
/// connection with every call naming the build it belongs to.
pub struct Gateway {
    client: LlbBridgeClient<Channel>,
    build_id: Option<MetadataValue<Ascii>>,
}

/// The gRPC metadata key naming the build a client-side frontend serves.
const BUILD_ID_KEY: &str = "buildkit-controlapi-buildid";

impl Gateway {
    /// The gateway on `channel`; `build_id` for a client-side frontend.
    pub fn new(channel: Channel, build_id: Option<&str>) -> Result<Gateway, FrontendError> {
        let build_id = build_id
            .map(|id| {
                id.parse()
                    .map_err(|_| FrontendError::Bug(format!("build id `{id}` is not ASCII")))
            })
            .transpose()?;
        let client = LlbBridgeClient::new(channel)
            .max_decoding_message_size(super::transport::MAX_RECEIVE)
            .max_encoding_message_size(super::transport::MAX_SEND);
        Ok(Gateway { client, build_id })
    }

    fn req<T>(&self, message: T) -> Request<T> {
        let mut r = Request::new(message);
        if let Some(id) = &self.build_id {
            r.metadata_mut().insert(BUILD_ID_KEY, id.clone());
        }
        r
    }
}

impl Bridge for Gateway {
    async fn ping(&mut self) -> Result<gw::PongResponse, Status> {
        let r = self.req(gw::PingRequest {});
        Ok(self.client.ping(r).await?.into_inner())
    }
    async fn inputs(&mut self) -> Result<gw::InputsResponse, Status> {
        let r = self.req(gw::InputsRequest {});
        Ok(self.client.inputs(r).await?.into_inner())
    }
    async fn solve(&mut self, req: gw::SolveRequest) -> Result<gw::SolveResponse, Status> {
        let r = self.req(req);
        Ok(self.client.solve(r).await?.into_inner())
    }
    async fn read_file(&mut self, req: gw::ReadFileRequest) -> Result<Vec<u8>, Status> {
        let r = self.req(req);
        Ok(self.client.read_file(r).await?.into_inner().data)
    }
    async fn read_dir(
        &mut self,
        req: gw::ReadDirRequest,
    ) -> Result<Vec<strata_proto::fsutil::Stat>, Status> {
        let r = self.req(req);
        Ok(self.client.read_dir(r).await?.into_inner().entries)
    }
    async fn stat_file(
        &mut self,
        req: gw::StatFileRequest,
    ) -> Result<gw::StatFileResponse, Status> {
        let r = self.req(req);
        Ok(self.client.stat_file(r).await?.into_inner())
    }
    async fn resolve_image_config(
        &mut self,
        req: gw::ResolveImageConfigRequest,
    ) -> Result<gw::ResolveImageConfigResponse, Status> {
        let r = self.req(req);
        Ok(self.client.resolve_image_config(r).await?.into_inner())
    }
    async fn warn(&mut self, req: gw::WarnRequest) -> Result<(), Status> {
        let r = self.req(req);
        self.client.warn(r).await.map(drop)
    }
    async fn finish(&mut self, req: gw::ReturnRequest) -> Result<(), Status> {
        let r = self.req(req);
        self.client.r#return(r).await.map(drop)
    }
}

/// What BuildKit hands the frontend process when it starts it.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// The raw frontend options.
    pub opts: BTreeMap<String, String>,
    /// `BUILDKIT_SESSION_ID`: the client session serving local directories.
    pub session_id: String,
    /// The frontend runs inside a client (`strata build`) that builds
    /// several components in one session and checked the context on its
    /// own disk: skip the context check, and let every component's copy
    /// steps read one context source, so each file is transferred once.
    pub client_side: bool,
}

impl Launch {
    /// Reads the environment BuildKit set.
    pub fn from_env() -> Launch {
        Launch::from_vars(std::env::vars_os())
    }

    /// Reads a given environment (for tests).
    pub fn from_vars(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Launch {
        let vars: Vec<(OsString, OsString)> = vars.into_iter().collect();
        let session_id = vars
            .iter()
            .find(|(k, _)| k == "BUILDKIT_SESSION_ID")
            .map(|(_, v)| v.to_string_lossy().into_owned())
            .unwrap_or_default();
        Launch {
            opts: opts::raw_from_env(vars),
            session_id,
            client_side: false,
        }
    }
}

/// The stack file as read through BuildKit.
struct StackFile {
    bytes: Vec<u8>,
    /// The vertex that loaded it: warnings attach to it.
    vertex: String,
}

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
async fn build_many<B: Bridge>(
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
fn for_platform(e: FrontendError, p: &Platform) -> FrontendError {
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

/// The metadata key listing the platforms of a multi-platform result.
pub const PLATFORMS_KEY: &str = "refs.platforms";

/// One entry of `refs.platforms`: `{"ID": key, "Platform": {OCI platform}}`.
fn exporter_platform(key: &str, p: &Platform) -> serde_json::Value {
    let mut platform = serde_json::json!({
        "architecture": p.architecture,
        "os": p.os,
    });
    if let Some(v) = p.variant.as_deref().filter(|v| !v.is_empty()) {
        platform["variant"] = v.into();
    }
    serde_json::json!({ "ID": key, "Platform": platform })
}

/// What one platform's build yields: a subrequest's answer, or an image.
enum Built {
    Answer(gw::Result),
    Image(BuiltImage),
}

struct BuiltImage {
    /// The solved ref.
    id: String,
    /// The image config, before its platform fields are set.
    config: serde_json::Value,
}

/// Loads, lowers, solves and tests the target for one platform.
/// `first`: warnings are sent, and subrequests answered, once per build.
#[allow(clippy::too_many_arguments)]
async fn build_one<B: Bridge>(
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
async fn load_stack<B: Bridge>(
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
async fn build_context<B: Bridge>(
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
fn cache_imports(opts: &FrontendOpts) -> Vec<gw::CacheOptionsEntry> {
    opts.cache_imports
        .iter()
        .map(|c| gw::CacheOptionsEntry {
            r#type: c.kind.clone(),
            attrs: c.attrs.clone(),
        })
        .collect()
}

/// Solves the target's LLB and returns its ref; a failing step is named
/// as the stack names it.
async fn solve_target<B: Bridge>(
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
        .solve(gw::SolveRequest {
            definition: Some(definition),
            allow_result_return: true,
            allow_result_array_ref: true,
            evaluate: true,
            cache_imports: cache_imports.to_vec(),
            ..Default::default()
        })
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

/// `[component] ...` progress names become `[PREFIX component] ...`, as
/// BuildKit's Dockerfile frontend names the steps of a multi-platform
/// build (`[linux/arm64 app] RUN ...`), and a build-platform component's
/// `[linux/amd64->arm64 builder] ...` (it runs on linux/amd64 for arm64).
/// Metadata is outside the ops' digests: the LLB is unchanged.
struct StepPrefixes<'a> {
    target: &'a str,
    build: String,
    on_build: BTreeSet<&'a str>,
}

impl<'a> StepPrefixes<'a> {
    fn new(stack: &'a Stack, target: &'a str, platform: &Platform, build: &Platform) -> Self {
        StepPrefixes {
            target,
            build: cross_prefix(build, platform),
            on_build: stack
                .components
                .iter()
                .filter(|c| c.platform == RunsOn::Build)
                .map(|c| c.name.as_str())
                .collect(),
        }
    }

    fn apply(&self, def: &mut pb::Definition) {
        for m in def.metadata.values_mut() {
            if let Some(name) = m.description.get_mut("llb.customname") {
                if let Some(rest) = name.strip_prefix('[') {
                    let component = rest.split([' ', ']']).next().unwrap_or_default();
                    let prefix = if self.on_build.contains(component) {
                        &self.build
                    } else {
                        self.target
                    };
                    *name = format!("[{prefix} {rest}");
                }
            }
        }
    }
}

/// `linux/amd64->arm64`: ops on the build platform for another target
/// (the OS repeated only when it differs), as the Dockerfile frontend
/// writes it; just the build platform when both are the same.
fn cross_prefix(build: &Platform, target: &Platform) -> String {
    let from = build.to_string();
    if build == target {
        return from;
    }
    if build.os == target.os {
        let arch = match target.variant.as_deref().filter(|v| !v.is_empty()) {
            Some(v) => format!("{}/{v}", target.architecture),
            None => target.architecture.clone(),
        };
        format!("{from}->{arch}")
    } else {
        format!("{from}->{}", target)
    }
}

/// A build-platform component is an image of the build platform only: as
/// the target of a build for another platform it would be exported under
/// that platform's name with the build platform's programs in it.
fn check_target_platform(
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

/// Each op of `def` by digest: its progress name and the first stack-file
/// line of its location, for naming a failed step.
fn step_names(def: &pb::Definition) -> BTreeMap<String, (String, Option<u32>)> {
    let locations = def.source.as_ref().map(|s| &s.locations);
    def.metadata
        .iter()
        .filter_map(|(digest, m)| {
            let name = m.description.get("llb.customname")?.clone();
            let line = locations
                .and_then(|l| l.get(digest))
                .and_then(|l| l.locations.first())
                .and_then(|l| l.ranges.first())
                .and_then(|r| r.start)
                .and_then(|p| u32::try_from(p.line).ok());
            Some((digest.clone(), (name, line)))
        })
        .collect()
}

/// Runs the target's tests one after another, each a Solve that BuildKit
/// evaluates at once (a plain Solve is lazy); the first failure ends the build.
async fn run_tests<B: Bridge>(
    bridge: &mut B,
    stack: &Stack,
    target: &str,
    tests: Vec<lower::LoweredTest>,
    cache_imports: &[gw::CacheOptionsEntry],
) -> Result<(), FrontendError> {
    for t in tests {
        bridge
            .solve(gw::SolveRequest {
                definition: Some(t.definition),
                allow_result_return: true,
                allow_result_array_ref: true,
                evaluate: true,
                cache_imports: cache_imports.to_vec(),
                ..Default::default()
            })
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

/// The ref id of a Solve answer (new-style `result.ref`, or the deprecated fields).
fn result_ref(res: &gw::SolveResponse) -> Option<String> {
    match res.result.as_ref().and_then(|r| r.result.as_ref()) {
        Some(result::Result::Ref(r)) => Some(r.id.clone()),
        Some(result::Result::RefDeprecated(id)) => Some(id.clone()),
        _ if !res.r#ref.is_empty() => Some(res.r#ref.clone()),
        // An empty definition solves to the empty ref: a scratch result.
        None => Some(String::new()),
        _ => None,
    }
}

/// Warnings are advisory: a failure to deliver one must not fail the build.
async fn send_warnings<B: Bridge>(bridge: &mut B, diags: &Diagnostics, vertex: &str) {
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

fn reject_unsupported_context(opts: &FrontendOpts) -> Result<(), FrontendError> {
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
fn check_contexts(stack: &Stack, opts: &FrontendOpts) -> Result<(), FrontendError> {
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

/// The platforms to build for: the `platform` option (one or more), else
/// the worker's own.
fn target_platforms(opts: &FrontendOpts, pong: &gw::PongResponse) -> Vec<Platform> {
    if opts.platforms.is_empty() {
        vec![worker_platform(pong)]
    } else {
        opts.platforms.clone()
    }
}

/// The worker's own platform: `BUILDPLATFORM`.
fn worker_platform(pong: &gw::PongResponse) -> Platform {
    pong.workers
        .iter()
        .find_map(|w| w.platforms.first())
        .and_then(platform_from_pb)
        .unwrap_or_default()
}

fn digest_of(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// A Definition holding one source op, as `local://dockerfile` reads need.
pub(super) fn single_source_definition(
    source: pb::SourceOp,
    name: String,
    caps: &[&str],
) -> (pb::Definition, String) {
    let op = pb::Op {
        op: Some(pb::op::Op::Source(source)),
        constraints: Some(pb::WorkerConstraints::default()),
        ..Default::default()
    };
    let bytes = op.encode_to_vec();
    let digest = digest_of(&bytes);
    let terminal = pb::Op {
        inputs: vec![pb::Input {
            digest: digest.clone(),
            index: 0,
        }],
        ..Default::default()
    };
    let metadata = pb::OpMetadata {
        description: BTreeMap::from([("llb.customname".to_owned(), name)]),
        caps: caps.iter().map(|c| ((*c).to_owned(), true)).collect(),
        ..Default::default()
    };
    let def = pb::Definition {
        def: vec![bytes, terminal.encode_to_vec()],
        metadata: BTreeMap::from([(digest.clone(), metadata)]),
        source: None,
    };
    (def, digest)
}

/// The session serving local directory `name`.
fn session_for(opts: &FrontendOpts, name: &str, session_id: &str) -> String {
    opts.local_sessions
        .get(name)
        .cloned()
        .unwrap_or_else(|| session_id.to_owned())
}

/// A Definition reading only `paths` of the session's local directory `name`.
fn local_files_definition(
    name: &str,
    session: &str,
    paths: &[String],
    shared_key: &str,
    description: String,
) -> (pb::Definition, String) {
    let follow = serde_json::to_string(paths).unwrap_or_default();
    let source = pb::SourceOp {
        identifier: format!("local://{name}"),
        attrs: BTreeMap::from([
            ("local.differ".to_owned(), "none".to_owned()),
            ("local.followpaths".to_owned(), follow),
            ("local.session".to_owned(), session.to_owned()),
            ("local.sharedkeyhint".to_owned(), shared_key.to_owned()),
        ]),
    };
    single_source_definition(
        source,
        description,
        &[
            "source.local",
            "source.local.differ",
            "source.local.followpaths",
            "source.local.sessionid",
            "source.local.sharedkeyhint",
        ],
    )
}

/// Solves a definition and returns its ref id.
pub(super) async fn solve_ref<B: Bridge>(
    bridge: &mut B,
    definition: pb::Definition,
) -> Result<String, Status> {
    let solved = bridge
        .solve(gw::SolveRequest {
            definition: Some(definition),
            allow_result_return: true,
            allow_result_array_ref: true,
            ..Default::default()
        })
        .await?;
    Ok(result_ref(&solved).unwrap_or_default())
}

/// Checks every path the target's components read from the build context
/// (`crate::context`), before anything is solved: a missing or misplaced
/// input is a located error, not a failure deep in the build.
async fn check_context<B: Bridge>(
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
    let mut reader = super::context::GatewayContext {
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

/// Reads the ignore files lowering needs from the build context; a missing
/// file is simply absent from the map.
async fn read_ignore_files<B: Bridge>(
    bridge: &mut B,
    paths: &[String],
    opts: &FrontendOpts,
    session_id: &str,
) -> Result<BTreeMap<String, String>, FrontendError> {
    read_context_files(bridge, paths, &session_for(opts, CONTEXT_KEY, session_id))
        .await
        .map_err(|s| FrontendError::engine("reading the build context's ignore files", s))
}

/// Reads `paths` of the session's build context; a missing file is simply
/// absent from the map.
pub(super) async fn read_context_files<B: Bridge>(
    bridge: &mut B,
    paths: &[String],
    session: &str,
) -> Result<BTreeMap<String, String>, Status> {
    let mut files = BTreeMap::new();
    if paths.is_empty() {
        return Ok(files);
    }
    let (definition, _) = local_files_definition(
        CONTEXT_KEY,
        session,
        paths,
        "context-ignore-files",
        format!("[internal] load {}", paths.join(", ")),
    );
    let id = solve_ref(bridge, definition).await?;
    for path in paths {
        let read = bridge
            .read_file(gw::ReadFileRequest {
                r#ref: id.clone(),
                file_path: path.clone(),
                range: None,
            })
            .await;
        if let Ok(bytes) = read {
            files.insert(path.clone(), String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    Ok(files)
}

/// Reads the stack file from the `dockerfile` input if the caller passed
/// one (a remote context), else from the session's local directory.
async fn read_stack_file<B: Bridge>(
    bridge: &mut B,
    opts: &FrontendOpts,
    session_id: &str,
) -> Result<StackFile, FrontendError> {
    let key = &opts.dockerfile_key;
    let from_input = match bridge.inputs().await {
        Ok(mut inputs) => inputs.definitions.remove(key),
        // Older daemons without the Inputs call: local directories only.
        Err(s) if s.code() == tonic::Code::Unimplemented => None,
        Err(s) => {
            return Err(FrontendError::engine(
                "asking BuildKit for the frontend inputs",
                s,
            ))
        }
    };
    let (definition, vertex) = match from_input {
        Some(def) => {
            let vertex = def
                .def
                .last()
                .and_then(|t| pb::Op::decode(t.as_slice()).ok())
                .and_then(|t| t.inputs.first().map(|i| i.digest.clone()))
                .unwrap_or_default();
            (def, vertex)
        }
        None => local_files_definition(
            key,
            &session_for(opts, key, session_id),
            std::slice::from_ref(&opts.filename),
            key,
            format!("[internal] load build definition from {}", opts.filename),
        ),
    };
    let reading = || format!("reading the stack file `{}`", opts.filename);
    let id = solve_ref(bridge, definition)
        .await
        .map_err(|s| FrontendError::engine(reading(), s))?;
    let bytes = bridge
        .read_file(gw::ReadFileRequest {
            r#ref: id,
            file_path: opts.filename.clone(),
            range: None,
        })
        .await
        .map_err(|s| FrontendError::engine(reading(), s))?;
    Ok(StackFile { bytes, vertex })
}

/// The component to build: `target`, else the stack's default.
fn choose_target(stack: &Stack, opts: &FrontendOpts) -> Result<String, FrontendError> {
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

/// Where the stack uses an external image (for locating resolve errors).
fn image_use_span(stack: &Stack, image: &ImageRef) -> std::ops::Range<usize> {
    for c in stack.enabled() {
        if c.base == Base::Image(image.clone()) {
            return c.span.clone();
        }
        for s in &c.steps {
            if let StepKind::Copy(copy) = &s.kind {
                if copy.source == CopySource::Image(image.clone()) {
                    return s.span.clone();
                }
            }
        }
    }
    0..0
}

/// Resolves external images (bases the target needs) for `platform`.
async fn resolve_bases<B: Bridge>(
    bridge: &mut B,
    stack: &Stack,
    images: Vec<ImageRef>,
    platform: &Platform,
    opts: &FrontendOpts,
) -> Result<BTreeMap<String, BaseImage>, FrontendError> {
    let mode = opts.image_resolve_mode.unwrap_or_default().as_str();
    let mut bases = BTreeMap::new();
    for image in images {
        let normalized = image.normalized();
        if bases.contains_key(&normalized) {
            continue;
        }
        // No LogName: a probe must not show the user a step of its own.
        let answer = bridge
            .resolve_image_config(gw::ResolveImageConfigRequest {
                r#ref: normalized.clone(),
                platform: Some(pb_platform(platform)),
                resolve_mode: mode.to_owned(),
                ..Default::default()
            })
            .await;
        let answer = match answer {
            Ok(a) => a,
            Err(s) => {
                let d = Diagnostic::error(
                    ErrorCode::UnresolvableImage,
                    image_use_span(stack, &image),
                    format!(
                        "cannot resolve image `{}` for {}: {}",
                        image.familiar(),
                        platform,
                        s.message()
                    ),
                )
                .with_help(
                    "load or pull it into the engine's image store, or map it to a reachable copy with a mirror (build-arg STRATA_MIRRORS=from=to)",
                );
                return Err(FrontendError::Stack(Diagnostics {
                    file: stack.file.clone(),
                    items: vec![d],
                }));
            }
        };
        let config = if answer.config.is_empty() {
            serde_json::Value::Object(Default::default())
        } else {
            serde_json::from_slice(&answer.config).map_err(|e| {
                FrontendError::Other(format!(
                    "the config of image `{}` is not JSON: {e}",
                    image.familiar()
                ))
            })?
        };
        let name = if answer.r#ref.is_empty() {
            normalized.clone()
        } else {
            answer.r#ref.clone()
        };
        // Images only in the local store have no registry digest: use them by name.
        let reference = if answer.digest.is_empty() || name.contains('@') {
            name
        } else {
            format!("{name}@{}", answer.digest)
        };
        bases.insert(normalized, BaseImage { reference, config });
    }
    Ok(bases)
}

fn platform_from_pb(p: &pb::Platform) -> Option<Platform> {
    let text = match p.variant.as_str() {
        "" => format!("{}/{}", p.os, p.architecture),
        v => format!("{}/{}/{v}", p.os, p.architecture),
    };
    opts::parse_platform(&text).ok()
}

fn pb_platform(p: &Platform) -> pb::Platform {
    pb::Platform {
        architecture: p.architecture.clone(),
        os: p.os.clone(),
        variant: p.variant.clone().unwrap_or_default(),
        ..Default::default()
    }
}

/// Every LLB capability the definition relies on must be enabled in the engine.
fn check_caps(def: &pb::Definition, pong: &gw::PongResponse) -> Result<(), FrontendError> {
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

/// A multi-platform image's config names its own platform, whatever the
/// base's config said (as BuildKit's Dockerfile frontend does).
fn force_platform(config: &mut serde_json::Value, p: &Platform) {
    if let Some(obj) = config.as_object_mut() {
        obj.remove("architecture");
        obj.remove("os");
        obj.remove("variant");
    }
    set_platform(config, p);
}

/// BuildKit's image exporter requires top-level `architecture` and `os`.
fn set_platform(config: &mut serde_json::Value, p: &Platform) {
    if !config.is_object() {
        *config = serde_json::Value::Object(Default::default());
    }
    let Some(obj) = config.as_object_mut() else {
        return;
    };
    let missing =
        |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).is_none_or(str::is_empty);
    if missing(obj.get("architecture")) {
        obj.insert("architecture".into(), p.architecture.clone().into());
    }
    if missing(obj.get("os")) {
        obj.insert("os".into(), p.os.clone().into());
    }
    if let Some(v) = &p.variant {
        if missing(obj.get("variant")) {
            obj.insert("variant".into(), v.clone().into());
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A BuildKit stand-in: serves one stack file and a set of images, records calls.
    #[derive(Default)]
    pub(crate) struct StubBridge {
        /// Files served by ReadFile, by path (whatever the ref).
        pub files: BTreeMap<String, Vec<u8>>,
        pub images: BTreeMap<String, (String, serde_json::Value)>,
        pub inputs: BTreeMap<String, pb::Definition>,
        pub llb_caps: Vec<&'static str>,
        pub solves: Vec<gw::SolveRequest>,
        pub resolves: Vec<gw::ResolveImageConfigRequest>,
        pub warnings: Vec<gw::WarnRequest>,
        pub reads: Vec<gw::ReadFileRequest>,
        /// Files of the build context for StatFile/ReadDir (empty: every path is a file).
        pub context: Vec<String>,
        /// Paths asked with StatFile.
        pub stats: Vec<String>,
    }

    impl StubBridge {
        pub(crate) fn with_stack(text: &str) -> StubBridge {
            StubBridge {
                files: BTreeMap::from([("strata.toml".to_owned(), text.as_bytes().to_vec())]),
                ..Default::default()
            }
        }
    }

    impl Bridge for StubBridge {
        async fn ping(&mut self) -> Result<gw::PongResponse, Status> {
            Ok(gw::PongResponse {
                llb_caps: self
                    .llb_caps
                    .iter()
                    .map(|id| strata_proto::apicaps::ApiCap {
                        id: (*id).to_owned(),
                        enabled: true,
                        ..Default::default()
                    })
                    .collect(),
                workers: vec![strata_proto::types::WorkerRecord {
                    platforms: vec![pb::Platform {
                        os: "linux".into(),
                        architecture: "amd64".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            })
        }
        async fn inputs(&mut self) -> Result<gw::InputsResponse, Status> {
            Ok(gw::InputsResponse {
                definitions: self.inputs.clone(),
            })
        }
        async fn solve(&mut self, req: gw::SolveRequest) -> Result<gw::SolveResponse, Status> {
            self.solves.push(req);
            Ok(gw::SolveResponse {
                r#ref: String::new(),
                result: Some(gw::Result {
                    result: Some(result::Result::Ref(gw::Ref {
                        id: format!("ref-{}", self.solves.len()),
                        def: None,
                    })),
                    ..Default::default()
                }),
            })
        }
        async fn read_file(&mut self, req: gw::ReadFileRequest) -> Result<Vec<u8>, Status> {
            let file = self.files.get(&req.file_path).cloned();
            self.reads.push(req);
            file.ok_or_else(|| Status::not_found("no such file or directory"))
        }
        async fn read_dir(
            &mut self,
            req: gw::ReadDirRequest,
        ) -> Result<Vec<strata_proto::fsutil::Stat>, Status> {
            let dir = req.dir_path.trim_matches('/');
            let mut names: Vec<String> = self
                .context
                .iter()
                .filter_map(|p| match dir {
                    "" => Some(p.as_str()),
                    d => p.strip_prefix(d).and_then(|r| r.strip_prefix('/')),
                })
                .map(|r| r.split('/').next().unwrap_or_default().to_owned())
                .collect();
            names.dedup();
            Ok(names
                .into_iter()
                .map(|path| strata_proto::fsutil::Stat {
                    path,
                    mode: 0o100644,
                    ..Default::default()
                })
                .collect())
        }
        async fn stat_file(
            &mut self,
            req: gw::StatFileRequest,
        ) -> Result<gw::StatFileResponse, Status> {
            self.stats.push(req.path.clone());
            let p = req.path.as_str();
            let mode = if self.context.is_empty() || self.context.iter().any(|c| c == p) {
                0o100644
            } else if self.context.iter().any(|c| c.starts_with(&format!("{p}/"))) {
                1 << 31
            } else {
                return Err(Status::not_found("no such file or directory"));
            };
            Ok(gw::StatFileResponse {
                stat: Some(strata_proto::fsutil::Stat {
                    path: req.path,
                    mode,
                    ..Default::default()
                }),
            })
        }
        async fn resolve_image_config(
            &mut self,
            req: gw::ResolveImageConfigRequest,
        ) -> Result<gw::ResolveImageConfigResponse, Status> {
            let answer = self.images.get(&req.r#ref).cloned();
            self.resolves.push(req.clone());
            match answer {
                Some((digest, config)) => Ok(gw::ResolveImageConfigResponse {
                    digest,
                    config: serde_json::to_vec(&config).unwrap_or_default(),
                    r#ref: String::new(),
                }),
                None => Err(Status::unknown(format!("{}: not found", req.r#ref))),
            }
        }
        async fn warn(&mut self, req: gw::WarnRequest) -> Result<(), Status> {
            self.warnings.push(req);
            Ok(())
        }
        async fn finish(&mut self, _: gw::ReturnRequest) -> Result<(), Status> {
            Ok(())
        }
    }

    pub(crate) fn launch(pairs: &[(&str, &str)]) -> Launch {
        let mut vars = vec![(
            OsString::from("BUILDKIT_SESSION_ID"),
            OsString::from("session-1"),
        )];
        for (i, (k, v)) in pairs.iter().enumerate() {
            vars.push((
                OsString::from(format!("BUILDKIT_FRONTEND_OPT_{i}")),
                OsString::from(format!("{k}={v}")),
            ));
        }
        Launch::from_vars(vars)
    }

    pub(crate) fn run(
        bridge: &mut StubBridge,
        launch: &Launch,
    ) -> Result<gw::Result, FrontendError> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(build(bridge, launch))
    }

    const STACK: &str = r#"# syntax=strata/frontend:latest
[stack]
name = "tiny"
image = "tiny/{component}:latest"

[args]
gpu = false

[component.x]
from = "strata.local/busybox:1.36"
env = { GREETING = "hello" }
workdir = "/work"
entrypoint = ["sh", "-c", "echo $GREETING"]

[component.y]
from = "strata.local/busybox:1.36"
when = "gpu"
"#;

    fn stub() -> StubBridge {
        StubBridge {
            images: BTreeMap::from([(
                "strata.local/busybox:1.36".to_owned(),
                (
                    String::new(),
                    serde_json::json!({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"]}}),
                ),
            )]),
            ..StubBridge::with_stack(STACK)
        }
    }

    #[test]
    fn reads_the_stack_file_from_the_dockerfile_local() {
        let mut b = stub();
        let _ = run(
            &mut b,
            &launch(&[("filename", "strata.toml"), ("target", "x")]),
        );
        let first = &b.solves[0];
        let def = first.definition.as_ref().expect("definition");
        assert_eq!(def.def.len(), 2);
        let op = pb::Op::decode(def.def[0].as_slice()).expect("op");
        let Some(pb::op::Op::Source(src)) = op.op else {
            panic!("not a source op")
        };
        assert_eq!(src.identifier, "local://dockerfile");
        assert_eq!(src.attrs["local.session"], "session-1");
        assert_eq!(src.attrs["local.followpaths"], r#"["strata.toml"]"#);
        assert_eq!(src.attrs["local.sharedkeyhint"], "dockerfile");
        assert_eq!(src.attrs["local.differ"], "none");
        assert!(first.allow_result_return && first.allow_result_array_ref);
        assert_eq!(b.reads[0].r#ref, "ref-1");
        assert_eq!(b.reads[0].file_path, "strata.toml");
    }

    #[test]
    fn a_dockerfile_input_replaces_the_local_read() {
        let mut b = stub();
        let (def, digest) = single_source_definition(
            pb::SourceOp {
                identifier: "git://example/repo".into(),
                attrs: BTreeMap::new(),
            },
            "remote".into(),
            &[],
        );
        b.inputs.insert("dockerfile".into(), def.clone());
        let _ = run(&mut b, &launch(&[("target", "x")]));
        assert_eq!(b.solves[0].definition.as_ref(), Some(&def));
        let _ = digest;
    }

    #[test]
    fn base_images_are_probed_without_a_log_name() {
        let mut b = stub();
        let _ = run(
            &mut b,
            &launch(&[("target", "x"), ("image-resolve-mode", "local")]),
        );
        if lower::external_images(
            &crate::load("s", STACK.as_bytes(), &Default::default()).expect("loads"),
            "x",
        )
        .is_empty()
        {
            return; // lower does not list images yet
        }
        let r = &b.resolves[0];
        assert_eq!(r.r#ref, "strata.local/busybox:1.36");
        assert_eq!(r.resolve_mode, "local");
        assert!(r.log_name.is_empty());
        assert_eq!(r.platform.as_ref().map(|p| p.os.as_str()), Some("linux"));
    }

    #[test]
    fn builds_the_target_and_returns_its_config() {
        let mut b = stub();
        let res = run(
            &mut b,
            &launch(&[
                ("target", "x"),
                ("label:org.example", "yes"),
                ("no-cache", ""),
            ]),
        )
        .expect("builds");
        let Some(result::Result::Ref(r)) = &res.result else {
            panic!("no ref: {res:?}")
        };
        assert_eq!(r.id, format!("ref-{}", b.solves.len()));
        let last = b.solves.last().expect("solved");
        assert!(last.allow_result_return && last.allow_result_array_ref);
        let config: serde_json::Value =
            serde_json::from_slice(&res.metadata[IMAGE_CONFIG_KEY]).expect("JSON");
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["os"], "linux");
        assert_eq!(config["config"]["WorkingDir"], "/work");
        assert_eq!(config["config"]["Entrypoint"][0], "sh");
        assert_eq!(config["config"]["Labels"]["org.example"], "yes");
        let env = config["config"]["Env"].to_string();
        assert!(env.contains("GREETING=hello"), "{env}");
    }

    #[test]
    fn tests_are_evaluated_apart_before_the_image_returns_unless_skipped() {
        let text = STACK.replace(
            "entrypoint = [\"sh\", \"-c\", \"echo $GREETING\"]",
            "entrypoint = [\"sh\", \"-c\", \"echo $GREETING\"]\ntest = [\"true\", { cmd = \"false\", name = \"f\" }]",
        );
        let mut b = StubBridge {
            images: stub().images,
            ..StubBridge::with_stack(&text)
        };
        let res = run(&mut b, &launch(&[("target", "x")])).expect("builds");
        let evaluated: Vec<usize> = (0..b.solves.len())
            .filter(|i| b.solves[*i].evaluate)
            .collect();
        assert_eq!(evaluated.len(), 3, "the image, then one solve per test");
        let image = evaluated[0];
        assert!(
            b.solves[image + 1..].iter().all(|s| s.evaluate),
            "the tests come after the image"
        );
        let Some(result::Result::Ref(r)) = &res.result else {
            panic!("no ref")
        };
        assert_eq!(r.id, format!("ref-{}", image + 1), "the image is returned");

        let mut b = StubBridge {
            images: stub().images,
            ..StubBridge::with_stack(&text)
        };
        run(
            &mut b,
            &launch(&[("target", "x"), ("build-arg:STRATA_SKIP_TESTS", "1")]),
        )
        .expect("builds");
        assert_eq!(
            b.solves.iter().filter(|s| s.evaluate).count(),
            1,
            "the tests are skipped; the image is still built here"
        );
    }

    #[test]
    fn cache_imports_reach_the_solve() {
        let mut b = stub();
        run(
            &mut b,
            &launch(&[
                ("target", "x"),
                (
                    "cache-imports",
                    r#"[{"Type":"registry","Attrs":{"ref":"127.0.0.1:5000/c"}}]"#,
                ),
            ]),
        )
        .expect("builds");
        let last = b.solves.last().expect("solved");
        assert_eq!(last.cache_imports.len(), 1);
        assert_eq!(last.cache_imports[0].r#type, "registry");
        // The stack-file read carries none.
        assert!(b.solves[0].cache_imports.is_empty());
    }

    #[test]
    fn warnings_go_through_warn() {
        let mut b = StubBridge {
            images: stub().images,
            ..StubBridge::with_stack(
                "[stack]\nname = \"w\"\n[component.x]\nfrom = \"strata.local/busybox:latest\"\n",
            )
        };
        let _ = run(&mut b, &launch(&[("target", "x")]));
        // `latest` and no [user] policy: unpinned-image and root-user.
        assert_eq!(b.warnings.len(), 2, "{:?}", b.warnings);
        let w = &b.warnings[0];
        assert_eq!(w.level, 1);
        assert!(w.digest.starts_with("sha256:"));

        // `strata build` prints them itself and asks each target for none.
        let mut b = StubBridge {
            images: stub().images,
            ..StubBridge::with_stack(
                "[stack]\nname = \"w\"\n[component.x]\nfrom = \"strata.local/busybox:latest\"\n",
            )
        };
        let _ = run(
            &mut b,
            &launch(&[("target", "x"), ("build-arg:STRATA_WARNINGS", "none")]),
        );
        assert!(b.warnings.is_empty(), "{:?}", b.warnings);
    }

    #[test]
    fn stack_errors_are_located() {
        let mut b = stub();
        let e = run(&mut b, &launch(&[("build-arg:gpu", "maybe")])).expect_err("bad arg");
        let status = e.to_status();
        assert!(
            status.message.starts_with("strata.toml:7:1: `gpu=maybe`"),
            "{}",
            status.message
        );
        assert_eq!(status.details.len(), 1);
    }

    /// A missing copy source is a located error with a did-you-mean from
    /// the context's listing, found before the build is solved: the only
    /// solves load the stack file and the named paths.
    #[test]
    fn a_missing_context_input_fails_before_the_build_is_solved() {
        let stack = "[stack]\nname = \"c\"\n[component.x]\nfrom = \"strata.local/busybox:1.36\"\ncopy = [{ src = \"scr/main.py\", dst = \"/app/\" }]\n";
        let mut b = StubBridge {
            context: vec!["src/main.py".to_owned()],
            ..StubBridge::with_stack(stack)
        };
        b.images = stub().images;
        let e = run(&mut b, &launch(&[("target", "x")])).expect_err("missing input");
        let s = e.to_status();
        assert!(
            s.message.starts_with(
                "strata.toml:5:17: copy source `scr/main.py` is not in the build context"
            ),
            "{}",
            s.message
        );
        assert!(e.to_string().contains("did you mean `src/main.py`?"), "{e}");
        for solve in &b.solves[1..] {
            let def = solve.definition.as_ref().expect("definition");
            let names: Vec<&String> = def
                .metadata
                .values()
                .filter_map(|m| m.description.get("llb.customname"))
                .collect();
            assert!(
                names.iter().all(|n| n.starts_with("[internal] ")),
                "{names:?}"
            );
        }
        assert!(b.stats.contains(&"scr/main.py".to_owned()), "{:?}", b.stats);
    }

    #[test]
    fn unknown_and_disabled_targets() {
        let mut b = stub();
        let e = run(&mut b, &launch(&[("target", "z")])).expect_err("unknown");
        assert!(
            e.to_string().contains("target `z` is not a component"),
            "{e}"
        );
        let e = run(&mut b, &launch(&[("target", "y")])).expect_err("disabled");
        let s = e.to_status();
        assert!(
            s.message
                .contains("component `y` is switched off (when gpu: gpu=false (default))"),
            "{}",
            s.message
        );
        assert_eq!(s.details.len(), 1);
    }

    #[test]
    fn missing_images_point_at_the_component() {
        let mut b = stub();
        b.images.clear();
        let Err(e) = run(&mut b, &launch(&[("target", "x")])) else {
            return;
        };
        if b.resolves.is_empty() {
            return; // lower does not list images yet
        }
        let s = e.to_status();
        assert!(
            s.message
                .contains("cannot resolve image `strata.local/busybox:1.36`"),
            "{}",
            s.message
        );
        assert!(s.message.starts_with("strata.toml:9:"), "{}", s.message);
    }

    #[test]
    fn remote_contexts_are_refused_clearly() {
        let mut b = stub();
        let e = run(
            &mut b,
            &launch(&[("context", "https://github.com/x/y.git")]),
        )
        .expect_err("remote");
        assert!(e.to_string().contains("local directory only"), "{e}");
        let e = run(&mut b, &launch(&[("context:x", "docker-image://busybox")]))
            .expect_err("component");
        assert!(e.to_string().contains("is a component of the stack"), "{e}");
        let e = run(
            &mut b,
            &launch(&[("context:src", "local:other"), ("target", "x")]),
        )
        .expect_err("local");
        assert!(
            e.to_string()
                .contains("local: named contexts are not supported"),
            "{e}"
        );
    }

    #[test]
    fn one_platform_keeps_the_single_ref_result() {
        let mut b = stub();
        let res = run(
            &mut b,
            &launch(&[("target", "x"), ("platform", "linux/arm64")]),
        )
        .expect("builds");
        assert!(
            matches!(res.result, Some(result::Result::Ref(_))),
            "{res:?}"
        );
        assert!(!res.metadata.contains_key(PLATFORMS_KEY));
        let config: serde_json::Value =
            serde_json::from_slice(&res.metadata[IMAGE_CONFIG_KEY]).expect("JSON");
        assert_eq!(config["architecture"], "arm64");
    }

    #[test]
    fn several_platforms_give_a_ref_and_a_config_each() {
        let mut b = stub();
        let res = run(
            &mut b,
            &launch(&[("target", "x"), ("platform", "linux/amd64,linux/arm/v7")]),
        )
        .expect("builds");
        let Some(result::Result::Refs(refs)) = &res.result else {
            panic!("not a ref map: {res:?}")
        };
        assert_eq!(
            refs.refs.keys().collect::<Vec<_>>(),
            ["linux/amd64", "linux/arm/v7"]
        );
        assert_ne!(refs.refs["linux/amd64"].id, refs.refs["linux/arm/v7"].id);
        // One lowering per platform, each for its own platform.
        let platforms: Vec<String> = b
            .solves
            .iter()
            .filter_map(|s| s.definition.as_ref())
            .flat_map(|d| d.def.iter())
            .filter_map(|op| pb::Op::decode(op.as_slice()).ok())
            .filter_map(|op| op.platform)
            .map(|p| format!("{}/{}/{}", p.os, p.architecture, p.variant))
            .collect();
        assert!(
            platforms.contains(&"linux/amd64/".to_owned()),
            "{platforms:?}"
        );
        assert!(
            platforms.contains(&"linux/arm/v7".to_owned()),
            "{platforms:?}"
        );
        // Progress names say the platform, as the Dockerfile frontend's do.
        let names: Vec<&String> = b
            .solves
            .iter()
            .filter_map(|s| s.definition.as_ref())
            .flat_map(|d| d.metadata.values())
            .filter_map(|m| m.description.get("llb.customname"))
            .collect();
        assert!(
            names.iter().any(|n| n.starts_with("[linux/arm/v7 x] ")),
            "{names:?}"
        );
        assert!(
            names.iter().any(|n| n.starts_with("[linux/amd64 x] ")),
            "{names:?}"
        );

        let listed: serde_json::Value =
            serde_json::from_slice(&res.metadata[PLATFORMS_KEY]).expect("JSON");
        assert_eq!(
            listed,
            serde_json::json!({"Platforms": [
                {"ID": "linux/amd64", "Platform": {"architecture": "amd64", "os": "linux"}},
                {"ID": "linux/arm/v7", "Platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
            ]})
        );
        assert!(!res.metadata.contains_key(IMAGE_CONFIG_KEY));
        let config = |key: &str| -> serde_json::Value {
            serde_json::from_slice(&res.metadata[&format!("{IMAGE_CONFIG_KEY}/{key}")])
                .expect("JSON")
        };
        let arm = config("linux/arm/v7");
        // The stub's base config says amd64: each image names its own platform.
        assert_eq!(arm["architecture"], "arm");
        assert_eq!(arm["variant"], "v7");
        assert_eq!(arm["os"], "linux");
        assert_eq!(arm["config"]["WorkingDir"], "/work");
        let amd = config("linux/amd64");
        assert_eq!(amd["architecture"], "amd64");
        assert!(amd.get("variant").is_none(), "{amd}");
    }

    const PER_ARCH: &str = r#"[stack]
name = "multi"

[component.base]
from = "strata.local/busybox-{TARGETARCH}:1.36"
env = { ARCH = "{TARGETARCH}", TARGET = "{TARGETPLATFORM}", BUILD = "{BUILDARCH}" }

[component.extra]
from = "base"
when = "TARGETARCH == 'amd64'"
"#;

    fn per_arch_stub() -> StubBridge {
        let images = ["amd64", "arm64"].map(|a| {
            (
                format!("strata.local/busybox-{a}:1.36"),
                (
                    String::new(),
                    serde_json::json!({"architecture": a, "os": "linux", "config": {}}),
                ),
            )
        });
        StubBridge {
            images: BTreeMap::from(images),
            ..StubBridge::with_stack(PER_ARCH)
        }
    }

    #[test]
    fn platform_names_interpolate_per_platform() {
        let mut b = per_arch_stub();
        let res = run(
            &mut b,
            &launch(&[("target", "base"), ("platform", "linux/amd64,linux/arm64")]),
        )
        .expect("builds");
        for arch in ["amd64", "arm64"] {
            let config: serde_json::Value =
                serde_json::from_slice(&res.metadata[&format!("{IMAGE_CONFIG_KEY}/linux/{arch}")])
                    .expect("JSON");
            let env = config["config"]["Env"].to_string();
            assert!(env.contains(&format!("ARCH={arch}")), "{env}");
            assert!(env.contains(&format!("TARGET=linux/{arch}")), "{env}");
            // The stub worker has no platform: BUILDARCH is the default, amd64.
            assert!(env.contains("BUILD=amd64"), "{env}");
        }
        let bases: BTreeSet<&str> = b.resolves.iter().map(|r| r.r#ref.as_str()).collect();
        assert_eq!(
            bases,
            BTreeSet::from([
                "strata.local/busybox-amd64:1.36",
                "strata.local/busybox-arm64:1.36"
            ])
        );
    }

    #[test]
    fn a_component_switched_off_on_one_platform_fails_that_build() {
        let mut b = per_arch_stub();
        run(
            &mut b,
            &launch(&[("target", "extra"), ("platform", "linux/amd64")]),
        )
        .expect("amd64 has it");
        let mut b = per_arch_stub();
        let e = run(
            &mut b,
            &launch(&[("target", "extra"), ("platform", "linux/amd64,linux/arm64")]),
        )
        .expect_err("arm64 has not");
        assert!(
            e.to_string()
                .contains("for linux/arm64: component `extra` is switched off"),
            "{e}"
        );
    }

    #[test]
    fn config_gets_architecture_and_os() {
        let mut c = serde_json::json!({"config": {}});
        set_platform(
            &mut c,
            &opts::parse_platform("linux/arm/v7").expect("valid"),
        );
        assert_eq!(c["architecture"], "arm");
        assert_eq!(c["os"], "linux");
        assert_eq!(c["variant"], "v7");
        let mut c = serde_json::json!({"architecture": "amd64", "os": "linux"});
        set_platform(&mut c, &opts::parse_platform("linux/arm64").expect("valid"));
        assert_eq!(c["architecture"], "amd64");
        let mut c = serde_json::json!(null);
        set_platform(&mut c, &Platform::default());
        assert_eq!(c["os"], "linux");
    }

    #[test]
    fn missing_caps_are_named() {
        let (def, _) = single_source_definition(
            pb::SourceOp::default(),
            "x".into(),
            &["source.local", "exec.mount.cache.content"],
        );
        let pong = gw::PongResponse {
            llb_caps: vec![strata_proto::apicaps::ApiCap {
                id: "source.local".into(),
                enabled: true,
                ..Default::default()
            }],
            ..Default::default()
        };
        let e = check_caps(&def, &pong).expect_err("missing");
        assert!(e.to_string().contains("exec.mount.cache.content"), "{e}");
        assert!(check_caps(&def, &gw::PongResponse::default()).is_ok());
    }

    const CROSS: &str = r#"[stack]
name = "cross"

[component.builder]
platform = "build"
from = "strata.local/busybox:1.36"
env = { GOARCH = "{TARGETARCH}" }
run = ["uname -m > /built"]

[component.app]
from = "strata.local/busybox:1.36"
copy = [{ from = "builder", src = "/built", dst = "/built" }]
"#;

    #[test]
    fn a_builder_resolves_and_runs_on_the_build_platform() {
        let mut b = stub();
        b.files
            .insert("strata.toml".into(), CROSS.as_bytes().to_vec());
        run(
            &mut b,
            &launch(&[("target", "app"), ("platform", "linux/amd64,linux/arm64")]),
        )
        .expect("builds");
        // The base is resolved for each target, and for the worker (amd64)
        // for the builder.
        let resolved: BTreeSet<String> = b
            .resolves
            .iter()
            .map(|r| {
                r.platform
                    .as_ref()
                    .map(|p| p.architecture.clone())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(resolved, BTreeSet::from(["amd64".into(), "arm64".into()]));
        // Every exec of both lowerings: the builder's, once per target.
        let runs: BTreeSet<(String, String)> = b
            .solves
            .iter()
            .filter_map(|s| s.definition.as_ref())
            .flat_map(|d| {
                d.def.iter().filter_map(|bytes| {
                    let op = pb::Op::decode(bytes.as_slice()).ok()?;
                    let Some(pb::op::Op::Exec(_)) = op.op else {
                        return None;
                    };
                    let name = d
                        .metadata
                        .get(&digest_of(bytes))?
                        .description
                        .get("llb.customname")?;
                    Some((name.clone(), op.platform?.architecture))
                })
            })
            .collect();
        let exec = |prefix: &str| {
            (
                format!("[{prefix} builder] RUN uname -m > /built"),
                "amd64".to_owned(),
            )
        };
        assert_eq!(
            runs,
            BTreeSet::from([exec("linux/amd64"), exec("linux/amd64->arm64")]),
            "the builder runs natively, named as the Dockerfile frontend names it"
        );

        // As the target of an arm64 build, the builder is an error at its
        // `platform` line; for the worker's own platform it builds.
        let err = run(
            &mut b,
            &launch(&[("target", "builder"), ("platform", "linux/arm64")]),
        )
        .expect_err("the builder is no arm64 image");
        let text = err.to_string();
        let FrontendError::Stack(d) = &err else {
            panic!("not a stack error: {text}")
        };
        assert_eq!(d.items[0].code, ErrorCode::BuildPlatform.id());
        assert!(
            text.starts_with("strata.toml:5:12: "),
            "at `platform`: {text}"
        );
        assert!(
            text.contains("`builder` runs on the build platform (linux/amd64) and is not an image of linux/arm64"),
            "{text}"
        );
        run(&mut b, &launch(&[("target", "builder")])).expect("builds for amd64");
    }

    #[test]
    fn cross_prefixes_read_as_the_dockerfile_frontend_writes_them() {
        let p = |s: &str| opts::parse_platform(s).expect("a platform");
        let amd = p("linux/amd64");
        assert_eq!(cross_prefix(&amd, &amd), "linux/amd64");
        assert_eq!(cross_prefix(&amd, &p("linux/arm64")), "linux/amd64->arm64");
        assert_eq!(
            cross_prefix(&amd, &p("linux/arm/v7")),
            "linux/amd64->arm/v7"
        );
        assert_eq!(
            cross_prefix(&amd, &p("windows/amd64")),
            "linux/amd64->windows/amd64"
        );
    }
}
