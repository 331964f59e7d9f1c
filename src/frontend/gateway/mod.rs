//! One frontend run: options → stack file → base images → LLB → result.
//!
//! Every call to BuildKit goes through [`Bridge`], so the whole flow runs
//! against a stub in unit tests and against [`Gateway`] for real.
//!
//! - `build`: the build of the target for each platform, from loading the
//!   stack file to the solved image and its tests;
//! - `inputs`: reading the stack file and build-context files through BuildKit;
//! - `bases`: the platforms to build for and the base images resolved for them;
//! - `checks`: what is refused before anything is solved (target, contexts,
//!   build-platform targets, LLB capabilities);
//! - `output`: the result's metadata (image configs, platform list) and the
//!   progress names of its steps.

mod bases;
mod build;
mod checks;
mod inputs;
mod output;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::BTreeMap;
use std::ffi::OsString;

use strata_proto::gateway as gw;
use strata_proto::LlbBridgeClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic::{Request, Status};

use super::errors::FrontendError;
use super::opts;

pub(crate) use build::build;
pub(super) use inputs::{read_context_files, single_source_definition, solve_ref};

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
