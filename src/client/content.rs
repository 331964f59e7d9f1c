//! The `Content` session service (containerd's content API): BuildKit
//! reads and writes a local cache directory through it, as it does
//! through BuildKit's own client (session/content). Each call names its
//! store in the `buildkit-attachable-store-id` metadata header: `local:`
//! and the directory the cache entry gives (`dest` or `src`).
//!
//! What BuildKit calls: `Info` (does a blob exist, its size), `Read`
//! (a range of a blob), `Write` (a new blob: STAT, WRITE..., COMMIT) and,
//! when a write fails, `Abort`. `Status`, `ListStatuses`, `List`,
//! `Delete` and `Update` answer as containerd's local store does.
//!
//! A write goes to a file of its own under `ingest/`; on COMMIT its size
//! and sha256 are checked against what the writer declared and it is
//! renamed to `blobs/sha256/<hex>`, a path made from the digest computed
//! here, never from the request's text.

use std::collections::BTreeMap;
use std::io::SeekFrom;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures_util::Stream;
use sha2::{Digest as _, Sha256};
use strata_proto::content::content_server::Content;
use strata_proto::content::{
    AbortRequest, DeleteContentRequest, Info, InfoRequest, InfoResponse, ListContentRequest,
    ListContentResponse, ListStatusesRequest, ListStatusesResponse, ReadContentRequest,
    ReadContentResponse, StatusRequest, StatusResponse, UpdateRequest, UpdateResponse, WriteAction,
    WriteContentRequest, WriteContentResponse,
};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use super::layout::{Digest, Layout};

#[cfg(test)]
mod tests;

/// The metadata header that picks the store (BuildKit's `GRPCHeaderID`).
pub const STORE_HEADER: &str = "buildkit-attachable-store-id";

/// The most bytes one `Read` response carries.
const CHUNK: usize = 1 << 20;

/// A boxed response stream.
type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Serves local cache directories by store id.
#[derive(Clone, Default)]
pub struct ContentService {
    stores: Arc<BTreeMap<String, Layout>>,
    writes: Arc<Mutex<BTreeMap<(String, String), Active>>>,
}

/// A write in progress, as `Status` reports it.
#[derive(Debug, Clone)]
struct Active {
    /// Tells this write from a later one with the same ref.
    token: u64,
    temp: PathBuf,
    started: SystemTime,
    updated: SystemTime,
    offset: i64,
    total: i64,
    expected: String,
}

impl ContentService {
    /// Serves `stores` (store id -> directory).
    pub fn new(stores: BTreeMap<String, PathBuf>) -> ContentService {
        let stores = stores
            .into_iter()
            .map(|(k, v)| (k, Layout::new(v)))
            .collect();
        ContentService {
            stores: Arc::new(stores),
            writes: Arc::default(),
        }
    }

    /// The store a call names.
    fn store(&self, md: &MetadataMap) -> Result<(String, Layout), Status> {
        let Some(id) = md.get(STORE_HEADER).and_then(|v| v.to_str().ok()) else {
            return Err(Status::invalid_argument(format!(
                "request lacks metadata {STORE_HEADER:?}"
            )));
        };
        match self.stores.get(id) {
            Some(layout) => Ok((id.to_owned(), layout.clone())),
            None => Err(Status::not_found(format!("unknown store {id}"))),
        }
    }

    fn writes(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Active>> {
        self.writes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A request's digest, checked.
fn digest_arg(text: &str) -> Result<Digest, Status> {
    Digest::parse(text).map_err(Status::invalid_argument)
}

/// The blob's size and modification time; NotFound when it is absent.
async fn blob_info(layout: &Layout, digest: &Digest) -> Result<Info, Status> {
    let meta = match tokio::fs::metadata(layout.blob(digest)).await {
        Ok(m) if m.is_file() => m,
        Ok(_) => return Err(Status::not_found(format!("content {digest}: not found"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Status::not_found(format!("content {digest}: not found")))
        }
        Err(e) => return Err(Status::internal(format!("content {digest}: {e}"))),
    };
    let modified = meta.modified().ok().map(prost_types::Timestamp::from);
    Ok(Info {
        digest: digest.to_string(),
        size: i64::try_from(meta.len()).unwrap_or(i64::MAX),
        created_at: modified,
        updated_at: modified,
        labels: BTreeMap::new(),
    })
}

fn io_error(what: &str, e: std::io::Error) -> Status {
    Status::internal(format!("{what}: {e}"))
}

#[tonic::async_trait]
impl Content for ContentService {
    async fn info(&self, req: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        let (_, layout) = self.store(req.metadata())?;
        let digest = digest_arg(&req.get_ref().digest)?;
        let info = blob_info(&layout, &digest).await?;
        Ok(Response::new(InfoResponse { info: Some(info) }))
    }

    async fn update(
        &self,
        req: Request<UpdateRequest>,
    ) -> Result<Response<UpdateResponse>, Status> {
        let (_, layout) = self.store(req.metadata())?;
        let text = req.get_ref().info.as_ref().map(|i| i.digest.as_str());
        let digest = digest_arg(text.unwrap_or_default())?;
        blob_info(&layout, &digest).await?;
        // The directory holds blobs only: labels have nowhere to live.
        Err(Status::failed_precondition(
            "update not supported on immutable content store",
        ))
    }

    type ListStream = BoxStream<ListContentResponse>;

    async fn list(
        &self,
        req: Request<ListContentRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        let (_, layout) = self.store(req.metadata())?;
        if !req.get_ref().filters.is_empty() {
            return Err(Status::invalid_argument(
                "this store lists without filters only",
            ));
        }
        let mut infos = Vec::new();
        if let Ok(mut dir) = tokio::fs::read_dir(layout.blobs()).await {
            while let Ok(Some(entry)) = dir.next_entry().await {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Ok(digest) = Digest::parse(&format!("sha256:{name}")) {
                    if let Ok(info) = blob_info(&layout, &digest).await {
                        infos.push(info);
                    }
                }
            }
        }
        let blocks: Vec<Result<ListContentResponse, Status>> = infos
            .chunks(100)
            .map(|c| Ok(ListContentResponse { info: c.to_vec() }))
            .collect();
        Ok(Response::new(Box::pin(futures_util::stream::iter(blocks))))
    }

    async fn delete(&self, req: Request<DeleteContentRequest>) -> Result<Response<()>, Status> {
        let (_, layout) = self.store(req.metadata())?;
        let digest = digest_arg(&req.get_ref().digest)?;
        blob_info(&layout, &digest).await?;
        tokio::fs::remove_file(layout.blob(&digest))
            .await
            .map_err(|e| io_error(&format!("cannot delete {digest}"), e))?;
        Ok(Response::new(()))
    }

    type ReadStream = BoxStream<ReadContentResponse>;

    async fn read(
        &self,
        req: Request<ReadContentRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let (_, layout) = self.store(req.metadata())?;
        let r = req.get_ref();
        let digest = digest_arg(&r.digest)?;
        let total = blob_info(&layout, &digest).await?.size;
        let offset = r.offset.max(0);
        if offset > total {
            return Err(Status::out_of_range(format!(
                "read past object length {total} bytes"
            )));
        }
        let size = if r.size <= 0 || offset + r.size > total {
            total - offset
        } else {
            r.size
        };
        let mut file = tokio::fs::File::open(layout.blob(&digest))
            .await
            .map_err(|e| io_error(&format!("cannot open {digest}"), e))?;
        file.seek(SeekFrom::Start(offset.unsigned_abs()))
            .await
            .map_err(|e| io_error(&format!("cannot read {digest}"), e))?;
        Ok(Response::new(read_stream(file, offset, size)))
    }

    async fn status(
        &self,
        req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let (id, _) = self.store(req.metadata())?;
        let r = req.get_ref().r#ref.clone();
        match self.writes().get(&(id, r.clone())) {
            Some(a) => Ok(Response::new(StatusResponse {
                status: Some(a.status(&r)),
            })),
            None => Err(Status::not_found(format!(
                "could not get status for ref {r:?}: not found"
            ))),
        }
    }

    async fn list_statuses(
        &self,
        req: Request<ListStatusesRequest>,
    ) -> Result<Response<ListStatusesResponse>, Status> {
        let (id, _) = self.store(req.metadata())?;
        if !req.get_ref().filters.is_empty() {
            return Err(Status::invalid_argument(
                "this store lists without filters only",
            ));
        }
        let statuses = self
            .writes()
            .iter()
            .filter(|((store, _), _)| *store == id)
            .map(|((_, r), a)| a.status(r))
            .collect();
        Ok(Response::new(ListStatusesResponse { statuses }))
    }

    type WriteStream = BoxStream<WriteContentResponse>;

    async fn write(
        &self,
        req: Request<Streaming<WriteContentRequest>>,
    ) -> Result<Response<Self::WriteStream>, Status> {
        let (id, layout) = self.store(req.metadata())?;
        let writer = Writer {
            service: self.clone(),
            store: id,
            layout,
            open: None,
        };
        Ok(Response::new(write_stream(writer, req.into_inner())))
    }

    async fn abort(&self, req: Request<AbortRequest>) -> Result<Response<()>, Status> {
        let (id, _) = self.store(req.metadata())?;
        let r = req.get_ref().r#ref.clone();
        let Some(active) = self.writes().remove(&(id, r.clone())) else {
            return Err(Status::not_found(format!(
                "no write in progress for ref {r:?}"
            )));
        };
        let _ = tokio::fs::remove_file(&active.temp).await;
        Ok(Response::new(()))
    }
}

impl Active {
    fn status(&self, r: &str) -> strata_proto::content::Status {
        strata_proto::content::Status {
            started_at: Some(self.started.into()),
            updated_at: Some(self.updated.into()),
            r#ref: r.to_owned(),
            offset: self.offset,
            total: self.total,
            expected: self.expected.clone(),
        }
    }
}

/// The blob from `offset` on, `size` bytes, in chunks.
fn read_stream(file: tokio::fs::File, offset: i64, size: i64) -> BoxStream<ReadContentResponse> {
    let state = (file, offset, size);
    Box::pin(futures_util::stream::unfold(
        Some(state),
        |state| async move {
            let (mut file, offset, left) = state?;
            if left <= 0 {
                return None;
            }
            let want = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
            let mut data = vec![0u8; want];
            match file.read(&mut data).await {
                Ok(0) => Some((
                    Err(Status::data_loss("the blob is shorter than its size")),
                    None,
                )),
                Ok(n) => {
                    data.truncate(n);
                    let len = i64::try_from(n).unwrap_or(0);
                    let msg = ReadContentResponse { offset, data };
                    Some((Ok(msg), Some((file, offset + len, left - len))))
                }
                Err(e) => Some((Err(io_error("cannot read the blob", e)), None)),
            }
        },
    ))
}

/// Responses to a `Write` stream, one per request, until COMMIT or an error.
fn write_stream(
    writer: Writer,
    incoming: Streaming<WriteContentRequest>,
) -> BoxStream<WriteContentResponse> {
    Box::pin(futures_util::stream::unfold(
        Some((writer, incoming)),
        |state| async move {
            let (mut writer, mut incoming) = state?;
            let req = match incoming.message().await {
                Ok(Some(req)) => req,
                Ok(None) => return None,
                Err(e) => return Some((Err(e), None)),
            };
            match writer.step(req).await {
                Ok((resp, true)) => Some((Ok(resp), None)),
                Ok((resp, false)) => Some((Ok(resp), Some((writer, incoming)))),
                Err(e) => Some((Err(e), None)),
            }
        },
    ))
}

/// One `Write` call.
struct Writer {
    service: ContentService,
    store: String,
    layout: Layout,
    open: Option<Open>,
}

/// The file a write fills, once the first message named its ref.
struct Open {
    r#ref: String,
    token: u64,
    temp: PathBuf,
    file: tokio::fs::File,
    hasher: Sha256,
    offset: i64,
    total: i64,
    expected: Option<Digest>,
    started: SystemTime,
}

impl Drop for Open {
    fn drop(&mut self) {
        // A write that did not commit leaves nothing behind (a committed
        // one was renamed away).
        let _ = std::fs::remove_file(&self.temp);
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // The stream ended or broke: the ref is free again.
        self.end();
    }
}

impl Writer {
    /// Handles one request: its answer, and whether the write is over.
    async fn step(
        &mut self,
        req: WriteContentRequest,
    ) -> Result<(WriteContentResponse, bool), Status> {
        if self.open.is_none() {
            self.open = Some(self.begin(&req).await?);
        }
        let action = WriteAction::try_from(req.action).map_err(|_| {
            Status::invalid_argument(format!("unknown write action {}", req.action))
        })?;
        if !req.expected.is_empty() {
            let expected = digest_arg(&req.expected)?;
            if blob_info(&self.layout, &expected).await.is_ok() {
                self.end();
                return Err(Status::already_exists(format!(
                    "blob with expected digest {expected} exists"
                )));
            }
            self.opened()?.expected = Some(expected);
        }
        let open = self.opened()?;
        if req.total > 0 {
            open.total = req.total;
        }
        let mut resp = WriteContentResponse {
            action: req.action,
            ..WriteContentResponse::default()
        };
        if action == WriteAction::Stat {
            resp.started_at = Some(open.started.into());
            resp.updated_at = Some(SystemTime::now().into());
            resp.total = open.total;
        } else {
            open.append(&req).await?;
        }
        resp.offset = open.offset;
        resp.digest = Digest::of(&open.hasher).to_string();
        self.publish();
        if action == WriteAction::Commit {
            self.commit().await?;
            return Ok((resp, true));
        }
        Ok((resp, false))
    }

    fn opened(&mut self) -> Result<&mut Open, Status> {
        self.open
            .as_mut()
            .ok_or_else(|| Status::internal("the write has no file"))
    }

    /// Takes the ref (one write per ref at a time, as containerd's store
    /// locks it) and creates the write's file.
    async fn begin(&self, req: &WriteContentRequest) -> Result<Open, Status> {
        if req.r#ref.is_empty() {
            return Err(Status::invalid_argument(
                "first message must have a reference",
            ));
        }
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let token = NEXT.fetch_add(1, Ordering::Relaxed);
        let temp = self
            .layout
            .ingest()
            .join(format!("{}-{token}", std::process::id()));
        let now = SystemTime::now();
        {
            let mut writes = self.service.writes();
            let key = (self.store.clone(), req.r#ref.clone());
            if writes.contains_key(&key) {
                return Err(Status::unavailable(format!("ref {} locked", req.r#ref)));
            }
            writes.insert(
                key,
                Active {
                    token,
                    temp: temp.clone(),
                    started: now,
                    updated: now,
                    offset: 0,
                    total: req.total,
                    expected: req.expected.clone(),
                },
            );
        }
        let created = async {
            tokio::fs::create_dir_all(self.layout.ingest()).await?;
            tokio::fs::File::create(&temp).await
        };
        let file = match created.await {
            Ok(f) => f,
            Err(e) => {
                self.service
                    .writes()
                    .remove(&(self.store.clone(), req.r#ref.clone()));
                return Err(io_error(&format!("cannot create {}", temp.display()), e));
            }
        };
        Ok(Open {
            r#ref: req.r#ref.clone(),
            token,
            temp,
            file,
            hasher: Sha256::new(),
            offset: 0,
            total: req.total,
            expected: None,
            started: now,
        })
    }

    /// Copies the write's progress where `Status` finds it.
    fn publish(&mut self) {
        let Some(open) = &self.open else { return };
        let key = (self.store.clone(), open.r#ref.clone());
        if let Some(a) = self.service.writes().get_mut(&key) {
            if a.token == open.token {
                a.offset = open.offset;
                a.total = open.total;
                a.updated = SystemTime::now();
                a.expected = open
                    .expected
                    .as_ref()
                    .map(Digest::to_string)
                    .unwrap_or_default();
            }
        }
    }

    /// Releases the ref (if still this write's) and removes the file.
    fn end(&mut self) {
        if let Some(open) = self.open.take() {
            let key = (self.store.clone(), open.r#ref.clone());
            let mut writes = self.service.writes();
            if writes.get(&key).is_some_and(|a| a.token == open.token) {
                writes.remove(&key);
            }
        }
    }

    /// Checks the size and digest and moves the file into `blobs/`.
    async fn commit(&mut self) -> Result<(), Status> {
        let result = self.finish().await;
        self.end();
        result
    }

    async fn finish(&mut self) -> Result<(), Status> {
        let key = self.store.clone();
        let service = self.service.clone();
        let layout = self.layout.clone();
        let open = self.opened()?;
        let still_ours = service
            .writes()
            .get(&(key, open.r#ref.clone()))
            .is_some_and(|a| a.token == open.token);
        if !still_ours {
            return Err(Status::not_found(format!(
                "the write {:?} was aborted",
                open.r#ref
            )));
        }
        if open.total > 0 && open.offset != open.total {
            return Err(Status::failed_precondition(format!(
                "unexpected commit size {}, expected {}",
                open.offset, open.total
            )));
        }
        let actual = Digest::of(&open.hasher);
        if let Some(expected) = open.expected.as_ref().filter(|e| **e != actual) {
            return Err(Status::failed_precondition(format!(
                "unexpected commit digest {actual}, expected {expected}"
            )));
        }
        let synced = async {
            open.file.flush().await?;
            open.file.sync_all().await
        };
        synced
            .await
            .map_err(|e| io_error("cannot write the blob", e))?;
        let target = layout.blob(&actual);
        if tokio::fs::try_exists(&target).await.unwrap_or(false) {
            return Err(Status::already_exists(format!(
                "content {actual}: already exists"
            )));
        }
        tokio::fs::create_dir_all(layout.blobs())
            .await
            .map_err(|e| io_error("cannot create blobs/sha256", e))?;
        tokio::fs::rename(&open.temp, &target)
            .await
            .map_err(|e| io_error(&format!("cannot move the blob to {}", target.display()), e))
    }
}

impl Open {
    /// WRITE or COMMIT data at the request's offset (0 starts over).
    async fn append(&mut self, req: &WriteContentRequest) -> Result<(), Status> {
        if req.offset > 0 && req.offset != self.offset {
            return Err(Status::out_of_range(format!(
                "write @{} must occur at current offset {}",
                req.offset, self.offset
            )));
        }
        if req.offset == 0 && self.offset > 0 {
            let reset = async {
                self.file.set_len(0).await?;
                self.file.seek(SeekFrom::Start(0)).await.map(|_| ())
            };
            reset
                .await
                .map_err(|e| io_error("cannot truncate the write", e))?;
            self.hasher = Sha256::new();
            self.offset = 0;
        }
        if !req.data.is_empty() {
            self.file
                .write_all(&req.data)
                .await
                .map_err(|e| io_error("cannot write the blob", e))?;
            self.hasher.update(&req.data);
            self.offset += i64::try_from(req.data.len()).unwrap_or(i64::MAX);
        }
        Ok(())
    }
}
