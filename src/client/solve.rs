//! One connection to BuildKit's control API and the builds run over it.
//! Each build is a `Control.Solve` with no frontend and no definition:
//! BuildKit then waits for the client to act as the frontend over the same
//! connection (its gateway forwarder), so Strata's frontend code runs in
//! this process, reads the stack once per build from the session, and
//! `Return`s the image; BuildKit exports it as asked.

use std::cell::RefCell;
use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use strata_proto::control::control_client::ControlClient;
use strata_proto::control::{CacheOptions, ListWorkersRequest, SolveRequest, StatusRequest};
use tonic::transport::Channel;

use super::connect::Builder;
use super::progress::Progress;
use crate::frontend::{self, FrontendError, Gateway, Launch};

/// A connection to a builder's control API.
pub struct Client {
    control: ControlClient<Channel>,
    channel: Channel,
}

/// An exporter and its attributes (`moby` with `name`, `oci` with `name`, ...).
#[derive(Debug, Clone, Default)]
pub struct Export {
    /// BuildKit's exporter type.
    pub kind: String,
    /// Its attributes.
    pub attrs: BTreeMap<String, String>,
}

/// One build: a component's image (for one or several platforms).
pub struct Build {
    /// A unique id (BuildKit's build ref).
    pub id: String,
    /// The frontend options, as BuildKit would pass them to the frontend image.
    pub opts: BTreeMap<String, String>,
    /// Where the image goes.
    pub export: Export,
    /// Cache to import and export.
    pub cache: CacheOptions,
}

/// Why a build failed.
#[derive(Debug)]
pub enum Failure {
    /// The frontend found the problem (stack errors, a failed step or test).
    Frontend(FrontendError),
    /// BuildKit refused or failed the solve or the export.
    Engine(tonic::Status),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Frontend(e) => write!(f, "{e}"),
            Failure::Engine(s) => write!(f, "{}", s.message()),
        }
    }
}

impl Client {
    /// Connects to the builder's control API.
    pub async fn connect(builder: &Builder) -> Result<Client> {
        let io = builder.control_stream().await?;
        let channel = frontend::transport::connect(io)
            .await
            .with_context(|| format!("cannot speak gRPC to the builder at {builder}"))?;
        let mut control = ControlClient::new(channel.clone())
            .max_decoding_message_size(frontend::transport::MAX_RECEIVE)
            .max_encoding_message_size(frontend::transport::MAX_SEND);
        // A first call, so that a builder that refuses us (a client
        // certificate it does not accept, another protocol on the port)
        // says so here rather than in the middle of the session.
        let probe = control.list_workers(ListWorkersRequest::default());
        match tokio::time::timeout(std::time::Duration::from_secs(60), probe).await {
            Ok(Ok(_)) => {}
            Ok(Err(status)) => {
                let hint = match &builder.tls {
                    Some(_) => " (over TLS, it closes the connection when it does not accept the client certificate: --tlscert and --tlskey)",
                    None => "",
                };
                bail!(
                    "the builder at {builder} did not answer BuildKit's control API: {}{hint}",
                    status.message()
                );
            }
            Err(_) => bail!("the builder at {builder} did not answer within 60 s"),
        }
        Ok(Client { control, channel })
    }

    /// The control API, for the session.
    pub fn control(&self) -> &ControlClient<Channel> {
        &self.control
    }

    /// Runs one build in `session`, reporting into `progress`; BuildKit's
    /// exporter response (image digest, ...) once the image is exported.
    pub async fn build(
        &self,
        session: &str,
        build: Build,
        progress: &RefCell<Progress>,
    ) -> Result<BTreeMap<String, String>, Failure> {
        let mut control = self.control.clone();
        let request = SolveRequest {
            r#ref: build.id.clone(),
            exporter: build.export.kind.clone(),
            exporter_attrs: build.export.attrs.clone(),
            session: session.to_owned(),
            cache: Some(build.cache.clone()),
            ..SolveRequest::default()
        };
        let solve = async move { control.solve(request).await };
        let mut status_client = self.control.clone();
        let id = build.id.clone();
        let status = async move {
            let Ok(resp) = status_client.status(StatusRequest { r#ref: id }).await else {
                return;
            };
            let mut stream = resp.into_inner();
            while let Ok(Some(msg)) = stream.message().await {
                if let Ok(mut p) = progress.try_borrow_mut() {
                    p.update(msg);
                }
            }
        };
        let launch = Launch {
            opts: build.opts.clone(),
            session_id: session.to_owned(),
            client_side: true,
        };
        let channel = self.channel.clone();
        let id = build.id.clone();
        let gateway = async move {
            let mut gw = Gateway::new(channel, Some(&id))?;
            frontend::serve_client_build(&mut gw, &launch).await
        };
        let (solved, served, ()) = tokio::join!(solve, gateway, status);
        match (solved, served) {
            // BuildKit refused the build before the frontend could run:
            // its own reason, not the frontend's "no such job".
            (Err(s), Err(FrontendError::Engine { .. })) => Err(Failure::Engine(s)),
            (_, Err(e)) => Err(Failure::Frontend(e)),
            (Err(s), Ok(())) => Err(Failure::Engine(s)),
            (Ok(r), Ok(())) => Ok(r.into_inner().exporter_response.into_iter().collect()),
        }
    }
}
