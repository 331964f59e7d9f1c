//! The `FileSync` session service: BuildKit reads a local directory (the
//! build context, the stack file's directory) by calling `DiffCopy` on the
//! client, which sends it with fsutil's protocol:
//!
//! - the sender walks the tree (names in byte order per directory, each
//!   directory before what is in it) and sends one STAT packet per entry,
//!   then an empty STAT;
//! - the receiver asks for a regular file's content with a REQ packet whose
//!   id is the file's index in the STAT sequence; the sender answers with
//!   DATA packets (32 KiB at most), and an empty DATA ends the file;
//! - the receiver sends FIN when it has everything, the sender answers FIN;
//! - either side reports a failure with an ERR packet.
//!
//! The request's metadata picks the directory (`dir-name`) and filters it
//! (`include-patterns`, `exclude-patterns`, `followpaths`) as fsutil's
//! filter does; a value list is URL-encoded when `<key>-encoded` is set.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex, MutexGuard};

use strata_proto::fsutil::{packet::PacketType, Packet, Stat};
use strata_proto::session::file_sync_server::FileSync;
use tokio::sync::{mpsc, Notify};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

#[cfg(test)]
mod tests;
mod walk;

use walk::{walk, Filter, MODE_TYPE};

/// The most content bytes one DATA packet carries (fsutil's buffer size).
const CHUNK: usize = 32 * 1024;

/// Serves the named local directories to BuildKit.
#[derive(Debug, Clone)]
pub struct FileSyncService {
    dirs: BTreeMap<String, PathBuf>,
    stats: Arc<TransferStats>,
}

/// What each shared directory has sent, by directory name.
#[derive(Debug, Default)]
pub struct TransferStats {
    dirs: Mutex<BTreeMap<String, DirStats>>,
}

/// What one shared directory has sent so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DirStats {
    /// `DiffCopy` calls that asked for this directory.
    pub calls: u64,
    /// Files whose content was sent.
    pub files: u64,
    /// Content bytes sent.
    pub bytes: u64,
}

impl TransferStats {
    /// The counts for `dir` (zero when it was never asked for).
    pub fn get(&self, dir: &str) -> DirStats {
        self.lock().get(dir).copied().unwrap_or_default()
    }

    /// The counts for every directory that was asked for.
    pub fn all(&self) -> BTreeMap<String, DirStats> {
        self.lock().clone()
    }

    fn add(&self, dir: &str, f: impl FnOnce(&mut DirStats)) {
        f(self.lock().entry(dir.to_owned()).or_default());
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, DirStats>> {
        self.dirs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The filters a `DiffCopy` request asks for (its metadata).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncOptions {
    /// Only paths matching these (and the directories above them) are sent.
    pub include_patterns: Vec<String>,
    /// Paths matching these are not sent (`!` patterns are exceptions).
    pub exclude_patterns: Vec<String>,
    /// Paths whose symlinks are resolved into include patterns.
    pub follow_paths: Vec<String>,
}

impl FileSyncService {
    /// Shares `dirs` (name -> local directory), e.g. `context` and `dockerfile`.
    pub fn new(dirs: BTreeMap<String, PathBuf>) -> Self {
        Self {
            dirs,
            stats: Arc::default(),
        }
    }

    /// The transfer counts, shared with the running service.
    pub fn stats(&self) -> Arc<TransferStats> {
        Arc::clone(&self.stats)
    }

    /// Starts sending directory `name`; the packets from the receiver come
    /// in on `incoming`, the ones for it go out on the returned stream.
    async fn start<S>(
        &self,
        name: &str,
        opts: SyncOptions,
        incoming: S,
    ) -> Result<ReceiverStream<Result<Packet, Status>>, Status>
    where
        S: Stream<Item = Result<Packet, Status>> + Send + Unpin + 'static,
    {
        let Some(dir) = self.dirs.get(name) else {
            let known: Vec<String> = self.dirs.keys().map(|k| format!("{k:?}")).collect();
            return Err(Status::not_found(format!(
                "no access allowed to dir {name:?}: this client shares {}",
                if known.is_empty() {
                    "no directories".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        };
        self.stats.add(name, |s| s.calls += 1);
        let dir = dir.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            let root = fs::canonicalize(&dir)
                .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
            if !root.is_dir() {
                return Err(format!("{} is not a directory", root.display()));
            }
            let filter = Filter::new(&root, &opts)?;
            Ok((root, filter))
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
        let (root, filter) =
            prepared.map_err(|e| Status::failed_precondition(format!("dir {name:?}: {e}")))?;
        let (out, rx) = mpsc::channel(64);
        let transfer = Arc::new(Transfer {
            name: name.to_owned(),
            root,
            files: Mutex::default(),
            out,
            stop: AtomicBool::new(false),
            failed: Notify::new(),
            stats: self.stats(),
        });
        tokio::spawn(transfer.run(filter, incoming));
        Ok(ReceiverStream::new(rx))
    }
}

#[tonic::async_trait]
impl FileSync for FileSyncService {
    type DiffCopyStream = ReceiverStream<Result<Packet, Status>>;

    async fn diff_copy(
        &self,
        request: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        let (name, opts) = request_options(request.metadata());
        let stream = self.start(&name, opts, request.into_inner()).await?;
        Ok(Response::new(stream))
    }
}

/// The directory name and filters in a request's metadata, decoded as
/// BuildKit's `decodeOpts` does.
fn request_options(md: &MetadataMap) -> (String, SyncOptions) {
    let values = |key: &str| -> Vec<String> {
        let text = |v: &tonic::metadata::MetadataValue<_>| {
            String::from_utf8_lossy(v.as_bytes()).into_owned()
        };
        let raw: Vec<String> = md.get_all(key).iter().map(text).collect();
        let encoded = md.get(format!("{key}-encoded")).map(text);
        if matches!(
            encoded.as_deref(),
            Some("1" | "t" | "T" | "TRUE" | "true" | "True")
        ) {
            raw.iter()
                .map(|v| query_unescape(v).unwrap_or_default())
                .collect()
        } else {
            raw
        }
    };
    let name = values("dir-name").into_iter().next().unwrap_or_default();
    let opts = SyncOptions {
        include_patterns: values("include-patterns"),
        exclude_patterns: values("exclude-patterns"),
        follow_paths: values("followpaths"),
    };
    (name, opts)
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte.
fn query_unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// One running `DiffCopy`: the walk, the file sender and the loop reading
/// the receiver's packets share it.
struct Transfer {
    name: String,
    root: PathBuf,
    /// Files the receiver may ask for, by STAT index.
    files: Mutex<HashMap<u32, PathBuf>>,
    out: mpsc::Sender<Result<Packet, Status>>,
    /// Set when the transfer failed: the walk and the sender stop, and
    /// only the first failure is reported.
    stop: AtomicBool,
    /// Wakes the loop reading the receiver's packets after a failure.
    failed: Notify,
    stats: Arc<TransferStats>,
}

fn packet(kind: PacketType, id: u32, stat: Option<Stat>, data: Vec<u8>) -> Packet {
    Packet {
        r#type: kind as i32,
        stat,
        id,
        data,
    }
}

impl Transfer {
    async fn run<S>(self: Arc<Self>, filter: Filter, mut incoming: S)
    where
        S: Stream<Item = Result<Packet, Status>> + Unpin,
    {
        let walker = {
            let t = Arc::clone(&self);
            tokio::task::spawn_blocking(move || t.walk_and_send(&filter))
        };
        let (queue, requests) = std_mpsc::channel::<(u32, PathBuf)>();
        let sender = {
            let t = Arc::clone(&self);
            tokio::task::spawn_blocking(move || t.send_files(requests))
        };
        // Err(None): the walk or the sender failed and has said so.
        let outcome: Result<(), Option<Status>> = loop {
            let next = tokio::select! {
                next = incoming.next() => next,
                () = self.failed.notified() => break Err(None),
            };
            let p = match next {
                Some(Ok(p)) => p,
                Some(Err(status)) => break Err(Some(status)),
                None => {
                    break Err(Some(Status::aborted(
                        "the receiver ended the transfer before FIN",
                    )))
                }
            };
            match PacketType::try_from(p.r#type) {
                Ok(PacketType::PacketReq) => {
                    let file = self.files.lock().ok().and_then(|mut f| f.remove(&p.id));
                    let Some(file) = file else {
                        let msg = format!("invalid file id {}", p.id);
                        break Err(Some(Status::invalid_argument(msg)));
                    };
                    // The sender only stops early after a failure it reported.
                    let _ = queue.send((p.id, file));
                }
                Ok(PacketType::PacketFin) => break Ok(()),
                Ok(PacketType::PacketErr) => {
                    let msg = String::from_utf8_lossy(&p.data).into_owned();
                    let msg = format!("error from receiver: {msg}");
                    break Err(Some(Status::unknown(msg)));
                }
                _ => {}
            }
        };
        drop(queue);
        match outcome {
            Ok(()) => {
                let walked = walker.await.unwrap_or(false);
                let sent = sender.await.unwrap_or(false);
                if walked && sent {
                    let fin = packet(PacketType::PacketFin, 0, None, Vec::new());
                    let _ = self.out.send(Ok(fin)).await;
                }
            }
            Err(Some(status)) => {
                if !self.stop.swap(true, Ordering::Relaxed) {
                    let _ = self.out.send(Err(status)).await;
                }
            }
            Err(None) => {}
        }
    }

    /// Reports a failure on this side: an ERR packet, then the gRPC error.
    fn fail(&self, msg: String) {
        if self.stop.swap(true, Ordering::Relaxed) {
            return;
        }
        self.failed.notify_one();
        let err = packet(PacketType::PacketErr, 0, None, msg.clone().into_bytes());
        let _ = self.out.blocking_send(Ok(err));
        let _ = self.out.blocking_send(Err(Status::unknown(msg)));
    }

    fn walk_and_send(&self, filter: &Filter) -> bool {
        let mut id: u32 = 0;
        let result = walk(&self.root, filter, &self.stop, &mut |stat, abs| {
            if stat.mode & MODE_TYPE == 0 {
                if let Ok(mut files) = self.files.lock() {
                    files.insert(id, abs.to_path_buf());
                }
            }
            id = id.wrapping_add(1);
            let p = packet(PacketType::PacketStat, 0, Some(stat), Vec::new());
            self.out
                .blocking_send(Ok(p))
                .map_err(|_| "the receiver is gone".to_owned())
        })
        .and_then(|()| {
            let end = packet(PacketType::PacketStat, 0, None, Vec::new());
            self.out
                .blocking_send(Ok(end))
                .map_err(|_| "the receiver is gone".to_owned())
        });
        match result {
            Ok(()) => true,
            Err(msg) => {
                self.fail(msg);
                false
            }
        }
    }

    /// Sends the requested files in the order they were asked for.
    fn send_files(&self, requests: std_mpsc::Receiver<(u32, PathBuf)>) -> bool {
        let mut buf = vec![0u8; CHUNK];
        for (id, path) in requests {
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            if let Err(msg) = self.send_file(id, &path, &mut buf) {
                self.fail(msg);
                return false;
            }
            self.stats.add(&self.name, |s| s.files += 1);
        }
        true
    }

    fn send_file(&self, id: u32, path: &Path, buf: &mut [u8]) -> Result<(), String> {
        let shown = path.strip_prefix(&self.root).unwrap_or(path).display();
        let gone = |_| "the receiver is gone".to_owned();
        match File::open(path) {
            Ok(mut file) => loop {
                if self.stop.load(Ordering::Relaxed) {
                    return Err("the transfer was stopped".to_owned());
                }
                let n = match file.read(buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(format!("read {shown}: {e}")),
                };
                let data = buf.get(..n).unwrap_or_default().to_vec();
                self.out
                    .blocking_send(Ok(packet(PacketType::PacketData, id, None, data)))
                    .map_err(gone)?;
                self.stats.add(&self.name, |s| s.bytes += n as u64);
            },
            // A socket is sent as an empty file (fsutil cannot open one either).
            Err(_) if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) => {}
            Err(e) => return Err(format!("open {shown}: {e}")),
        }
        let end = packet(PacketType::PacketData, id, None, Vec::new());
        self.out.blocking_send(Ok(end)).map_err(gone)
    }
}
