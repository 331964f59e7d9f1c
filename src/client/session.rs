//! The client session BuildKit calls back into: the directories it reads
//! (build context, stack file), the files it exports to us, registry
//! credentials and local cache directories. One session serves every
//! solve of a `strata build`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use strata_proto::content::content_server::ContentServer;
use strata_proto::control::control_client::ControlClient;
use strata_proto::session::auth_server::{Auth, AuthServer};
use strata_proto::session::file_send_server::{FileSend, FileSendServer};
use strata_proto::session::file_sync_server::FileSyncServer;
use strata_proto::session::{BytesMessage, CredentialsRequest, CredentialsResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::codegen::http::{Request, Response};
use tonic::transport::Channel;
use tonic::{Status, Streaming};

use super::connect::{Api, Builder, Stream};
use super::content::ContentService;
use super::filesync::{FileSyncService, TransferStats};

/// A running session.
pub struct Session {
    /// The id solves name in `SolveRequest.Session` and `local.session`.
    pub id: String,
    stats: Arc<TransferStats>,
    outputs: Outputs,
    task: tokio::task::JoinHandle<()>,
}

/// Files BuildKit exports to the client (OCI layouts, tars), by the image
/// name the exporter reports; the one file when only one is expected.
#[derive(Clone, Default)]
pub struct Outputs(Arc<Mutex<BTreeMap<String, PathBuf>>>);

impl Outputs {
    /// Expects the export of the image `name` into `path`.
    pub fn expect(&self, name: &str, path: PathBuf) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(name.to_owned(), path);
        }
    }

    fn path_for(&self, name: Option<&str>) -> Option<PathBuf> {
        let m = self.0.lock().ok()?;
        match name.and_then(|n| n.split(',').find_map(|n| m.get(n))) {
            Some(p) => Some(p.clone()),
            None if m.len() == 1 => m.values().next().cloned(),
            None => None,
        }
    }
}

impl Session {
    /// Opens a session on `builder` offering `dirs` (name -> directory)
    /// and the content stores of local cache directories (store id ->
    /// directory).
    pub async fn start(
        builder: &Builder,
        control: &ControlClient<Channel>,
        dirs: BTreeMap<String, PathBuf>,
        stores: BTreeMap<String, PathBuf>,
        key: &str,
    ) -> Result<Session> {
        let id = new_id();
        let sync = FileSyncService::new(dirs);
        let stats = sync.stats();
        let outputs = Outputs::default();
        let router = Router {
            sync: FileSyncServer::new(sync),
            send: FileSendServer::new(Sender(outputs.clone())),
            auth: AuthServer::new(Credentials),
            content: ContentServer::new(ContentService::new(stores.clone()))
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        };
        let mut headers = vec![
            ("X-Docker-Expose-Session-Uuid".to_owned(), id.clone()),
            (
                "X-Docker-Expose-Session-Name".to_owned(),
                "strata".to_owned(),
            ),
            (
                "X-Docker-Expose-Session-Sharedkey".to_owned(),
                key.to_owned(),
            ),
        ];
        let mut methods = vec![
            "/moby.filesync.v1.FileSync/DiffCopy",
            "/moby.filesync.v1.FileSend/DiffCopy",
            "/moby.filesync.v1.Auth/Credentials",
        ];
        if !stores.is_empty() {
            methods.extend(CONTENT_METHODS);
        }
        for method in methods {
            headers.push((
                "X-Docker-Expose-Session-Grpc-Method".to_owned(),
                method.to_owned(),
            ));
        }
        let io = match builder.api {
            Api::Docker => builder.hijack("/session", &headers).await,
            Api::BuildKit => control_session(control.clone(), &headers).await,
        }
        .context("cannot open a BuildKit session")?;
        let task = tokio::spawn(async move {
            let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .max_frame_size(1 << 20)
                .serve_connection(TokioIo::new(io), router);
            if let Err(e) = conn.await {
                eprintln!("strata: the BuildKit session ended: {e}");
            }
        });
        Ok(Session {
            id,
            stats,
            outputs,
            task,
        })
    }

    /// What the session sent, per directory.
    pub fn stats(&self) -> &TransferStats {
        &self.stats
    }

    /// Where exported files go.
    pub fn outputs(&self) -> &Outputs {
        &self.outputs
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A session over a BuildKit daemon's `Control.Session` call: the
/// session's headers go as the call's metadata, and the bytes of the
/// HTTP/2 connection BuildKit opens back to the client travel in the
/// call's messages, both ways. The byte stream the session serves on.
async fn control_session(
    mut control: ControlClient<Channel>,
    headers: &[(String, String)],
) -> Result<Box<dyn Stream>> {
    use strata_proto::control::BytesMessage as Bytes;
    use tonic::metadata::{MetadataKey, MetadataValue};
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    for (k, v) in headers {
        let key = MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
            .with_context(|| format!("`{k}` is not a gRPC metadata key"))?;
        let value = MetadataValue::try_from(v.as_str())
            .with_context(|| format!("`{v}` is not a gRPC metadata value"))?;
        request.metadata_mut().append(key, value);
    }
    let mut incoming = control
        .session(request)
        .await
        .context("the builder refused Control.Session")?
        .into_inner();
    tokio::spawn(async move {
        let (mut from_session, mut to_session) = tokio::io::split(theirs);
        let outgoing = async move {
            let mut buf = vec![0u8; 32 << 10];
            while let Ok(n @ 1..) = from_session.read(&mut buf).await {
                let msg = Bytes {
                    data: buf[..n].to_vec(),
                };
                if tx.send(msg).await.is_err() {
                    break;
                }
            }
        };
        let inbound = async move {
            while let Ok(Some(msg)) = incoming.message().await {
                if to_session.write_all(&msg.data).await.is_err() {
                    break;
                }
            }
            let _ = to_session.shutdown().await;
        };
        tokio::join!(outgoing, inbound);
    });
    Ok(Box::new(ours))
}

/// A session id as BuildKit's own: 25 lowercase base-32 characters.
fn new_id() -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(std::process::id().to_le_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.update(now.to_le_bytes());
    let mut x = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut x);
    }
    h.update(x);
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    h.finalize()
        .iter()
        .take(25)
        .map(|b| ALPHABET[usize::from(b % 32)] as char)
        .collect()
}

/// The content API's methods, offered when there are cache directories.
const CONTENT_METHODS: [&str; 9] = [
    "/containerd.services.content.v1.Content/Info",
    "/containerd.services.content.v1.Content/Update",
    "/containerd.services.content.v1.Content/List",
    "/containerd.services.content.v1.Content/Delete",
    "/containerd.services.content.v1.Content/Read",
    "/containerd.services.content.v1.Content/Status",
    "/containerd.services.content.v1.Content/ListStatuses",
    "/containerd.services.content.v1.Content/Write",
    "/containerd.services.content.v1.Content/Abort",
];

/// The largest content message either way: a 1 MiB blob chunk and its framing.
const MAX_MESSAGE: usize = 8 << 20;

type BoxFuture =
    Pin<Box<dyn Future<Output = Result<Response<tonic::body::Body>, Infallible>> + Send>>;

/// Dispatches BuildKit's calls to the session's services by gRPC path.
#[derive(Clone)]
struct Router {
    sync: FileSyncServer<FileSyncService>,
    send: FileSendServer<Sender>,
    auth: AuthServer<Credentials>,
    content: ContentServer<ContentService>,
}

impl hyper::service::Service<Request<Incoming>> for Router {
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        use tower_service::Service;
        let path = req.uri().path().to_owned();
        if path.starts_with("/moby.filesync.v1.FileSync/") {
            let mut s = self.sync.clone();
            Box::pin(async move { s.call(req).await })
        } else if path.starts_with("/moby.filesync.v1.FileSend/") {
            let mut s = self.send.clone();
            Box::pin(async move { s.call(req).await })
        } else if path.starts_with("/moby.filesync.v1.Auth/") {
            let mut s = self.auth.clone();
            Box::pin(async move { s.call(req).await })
        } else if path.starts_with("/containerd.services.content.v1.Content/") {
            let mut s = self.content.clone();
            Box::pin(async move { s.call(req).await })
        } else {
            let status = Status::unimplemented(format!("the Strata session does not offer {path}"));
            Box::pin(async move { Ok(status.into_http()) })
        }
    }
}

/// Receives exported files (`FileSend/DiffCopy`: the file's bytes in order).
struct Sender(Outputs);

#[tonic::async_trait]
impl FileSend for Sender {
    type DiffCopyStream =
        Pin<Box<dyn futures_util::Stream<Item = Result<BytesMessage, Status>> + Send>>;

    async fn diff_copy(
        &self,
        req: tonic::Request<Streaming<BytesMessage>>,
    ) -> Result<tonic::Response<Self::DiffCopyStream>, Status> {
        let name = req
            .metadata()
            .get("exporter-md-image.name")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let path = self.0.path_for(name.as_deref()).ok_or_else(|| {
            Status::failed_precondition(format!(
                "the Strata session expects no exported file{}",
                name.map(|n| format!(" for {n}")).unwrap_or_default()
            ))
        })?;
        let mut stream = req.into_inner();
        let mut file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| Status::internal(format!("cannot create {}: {e}", path.display())))?;
        while let Some(msg) = stream.message().await? {
            file.write_all(&msg.data)
                .await
                .map_err(|e| Status::internal(format!("cannot write {}: {e}", path.display())))?;
        }
        file.flush()
            .await
            .map_err(|e| Status::internal(format!("cannot write {}: {e}", path.display())))?;
        Ok(tonic::Response::new(
            Box::pin(futures_util::stream::empty()),
        ))
    }
}

/// Registry credentials from the docker CLI's configuration.
struct Credentials;

#[tonic::async_trait]
impl Auth for Credentials {
    async fn credentials(
        &self,
        req: tonic::Request<CredentialsRequest>,
    ) -> Result<tonic::Response<CredentialsResponse>, Status> {
        let host = req.into_inner().host;
        let registry = match host.as_str() {
            "registry-1.docker.io" | "index.docker.io" => "docker.io",
            h => h,
        };
        let found = crate::cli::engine::credentials(registry);
        let resp = match found {
            Some(c) => match (c.identitytoken, c.username, c.password) {
                (Some(token), _, _) => CredentialsResponse {
                    username: String::new(),
                    secret: token,
                },
                (None, Some(u), p) => CredentialsResponse {
                    username: u,
                    secret: p.unwrap_or_default(),
                },
                _ => CredentialsResponse::default(),
            },
            None => CredentialsResponse::default(),
        };
        Ok(tonic::Response::new(resp))
    }
}
