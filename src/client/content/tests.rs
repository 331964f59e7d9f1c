//! The content service behind a real gRPC connection (in memory), called
//! as BuildKit's proxy store calls it.

use std::io;

use strata_proto::content::content_client::ContentClient;
use strata_proto::content::content_server::ContentServer;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::*;

/// A fresh store directory, removed when dropped.
struct Store(PathBuf);

impl Store {
    fn new(name: &str) -> Store {
        let dir =
            std::env::temp_dir().join(format!("strata-content-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Layout::new(&dir).create().expect("create the store");
        Store(dir)
    }

    fn id(&self) -> String {
        format!("local:{}", self.0.display())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn client_for(store: &Store) -> ContentClient<Channel> {
    let service = ContentService::new(BTreeMap::from([(store.id(), store.0.clone())]));
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(tonic::transport::Server::builder().serve_with_incoming(
        ContentServer::new(service),
        tokio_stream::once(Ok::<_, io::Error>(server_io)),
    ));
    let channel = crate::frontend::transport::connect(client_io)
        .await
        .expect("connect");
    ContentClient::new(channel)
}

/// `msg` addressed to `store`.
fn to<T>(store: &Store, msg: T) -> Request<T> {
    let mut req = Request::new(msg);
    let id = store.id().parse().expect("an ASCII store id");
    req.metadata_mut().insert(STORE_HEADER, id);
    req
}

fn sha256(data: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(data);
    Digest::of(&h).to_string()
}

/// Writes `data` as the proxy store does: STAT (with the expected digest),
/// WRITE, COMMIT; the commit's answer or the stream's error.
async fn write(
    client: &mut ContentClient<Channel>,
    store: &Store,
    r: &str,
    data: &[u8],
    expected: &str,
) -> Result<WriteContentResponse, Status> {
    let (tx, rx) = mpsc::channel(4);
    let mut out = client
        .write(to(store, ReceiverStream::new(rx)))
        .await?
        .into_inner();
    let total = i64::try_from(data.len()).expect("small");
    let msgs = [
        WriteContentRequest {
            action: WriteAction::Stat.into(),
            r#ref: r.into(),
            total,
            expected: expected.into(),
            ..Default::default()
        },
        WriteContentRequest {
            action: WriteAction::Write.into(),
            data: data.to_vec(),
            ..Default::default()
        },
        WriteContentRequest {
            action: WriteAction::Commit.into(),
            total,
            offset: total,
            expected: expected.into(),
            ..Default::default()
        },
    ];
    let mut last = None;
    for msg in msgs {
        tx.send(msg).await.expect("send");
        last = Some(out.message().await?.expect("an answer"));
    }
    Ok(last.expect("three answers"))
}

#[tokio::test]
async fn a_written_blob_is_committed_under_its_digest_and_read_back() {
    let store = Store::new("write");
    let mut client = client_for(&store).await;
    let data = b"hello cache".repeat(1000);
    let digest = sha256(&data);
    let done = write(&mut client, &store, "layer-1", &data, &digest)
        .await
        .expect("committed");
    assert_eq!(done.digest, digest);
    assert_eq!(done.offset, i64::try_from(data.len()).expect("small"));
    let hex = digest.trim_start_matches("sha256:");
    let on_disk = std::fs::read(store.0.join("blobs/sha256").join(hex)).expect("the blob");
    assert_eq!(on_disk, data);
    let ingest = std::fs::read_dir(store.0.join("ingest"))
        .expect("ingest")
        .count();
    assert_eq!(ingest, 0, "nothing left in ingest/");

    let info = client
        .info(to(
            &store,
            InfoRequest {
                digest: digest.clone(),
            },
        ))
        .await
        .expect("info")
        .into_inner()
        .info
        .expect("an info");
    assert_eq!(info.size, i64::try_from(data.len()).expect("small"));

    let mut read = client
        .read(to(
            &store,
            ReadContentRequest {
                digest: digest.clone(),
                offset: 6,
                size: 5,
            },
        ))
        .await
        .expect("read")
        .into_inner();
    let mut got = Vec::new();
    while let Some(chunk) = read.message().await.expect("a chunk") {
        got.extend(chunk.data);
    }
    assert_eq!(got, b"cache");

    // Written again: the store already has it.
    let again = write(&mut client, &store, "layer-1", &data, &digest)
        .await
        .expect_err("already there");
    assert_eq!(again.code(), tonic::Code::AlreadyExists);
}

#[tokio::test]
async fn a_blob_that_does_not_match_its_digest_is_refused_and_not_kept() {
    let store = Store::new("mismatch");
    let mut client = client_for(&store).await;
    let claimed = sha256(b"something else");
    let err = write(&mut client, &store, "layer-2", b"the real bytes", &claimed)
        .await
        .expect_err("a digest mismatch");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err}");
    assert!(err.message().contains("unexpected commit digest"), "{err}");
    let blobs = std::fs::read_dir(store.0.join("blobs/sha256"))
        .expect("blobs")
        .count();
    let ingest = std::fs::read_dir(store.0.join("ingest"))
        .expect("ingest")
        .count();
    assert_eq!((blobs, ingest), (0, 0));
    // The ref is free again.
    let ok = sha256(b"the real bytes");
    write(&mut client, &store, "layer-2", b"the real bytes", &ok)
        .await
        .expect("a new write of the same ref");
}

#[tokio::test]
async fn calls_name_a_known_store_and_a_checked_digest() {
    let store = Store::new("args");
    let mut client = client_for(&store).await;
    let digest = sha256(b"x");
    let no_store = client
        .info(Request::new(InfoRequest {
            digest: digest.clone(),
        }))
        .await
        .expect_err("no store header");
    assert_eq!(no_store.code(), tonic::Code::InvalidArgument);
    let mut other = Request::new(InfoRequest {
        digest: digest.clone(),
    });
    other
        .metadata_mut()
        .insert(STORE_HEADER, "local:/elsewhere".parse().expect("ascii"));
    let unknown = client.info(other).await.expect_err("an unknown store");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    let missing = client
        .info(to(&store, InfoRequest { digest }))
        .await
        .expect_err("no such blob");
    assert_eq!(missing.code(), tonic::Code::NotFound);
    for bad in ["sha256:../../../etc/passwd", "md5:abc", ""] {
        let err = client
            .read(to(
                &store,
                ReadContentRequest {
                    digest: bad.into(),
                    ..Default::default()
                },
            ))
            .await
            .expect_err("a bad digest");
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{bad}");
    }
}

#[tokio::test]
async fn a_write_in_progress_has_a_status_and_an_aborted_one_commits_nothing() {
    let store = Store::new("abort");
    let mut client = client_for(&store).await;
    let (tx, rx) = mpsc::channel(4);
    let mut out = client
        .write(to(&store, ReceiverStream::new(rx)))
        .await
        .expect("write")
        .into_inner();
    let data = b"half of it".to_vec();
    for msg in [
        WriteContentRequest {
            action: WriteAction::Stat.into(),
            r#ref: "layer-3".into(),
            total: 100,
            ..Default::default()
        },
        WriteContentRequest {
            action: WriteAction::Write.into(),
            data: data.clone(),
            ..Default::default()
        },
    ] {
        tx.send(msg).await.expect("send");
        out.message().await.expect("an answer").expect("one");
    }
    let status = client
        .status(to(
            &store,
            StatusRequest {
                r#ref: "layer-3".into(),
            },
        ))
        .await
        .expect("a status")
        .into_inner()
        .status
        .expect("one");
    assert_eq!((status.offset, status.total), (10, 100));
    let all = client
        .list_statuses(to(&store, ListStatusesRequest::default()))
        .await
        .expect("statuses")
        .into_inner()
        .statuses;
    assert_eq!(all.len(), 1);
    // A second writer of the same ref waits its turn.
    let locked = write(&mut client, &store, "layer-3", &data, &sha256(&data))
        .await
        .expect_err("the ref is taken");
    assert_eq!(locked.code(), tonic::Code::Unavailable);

    client
        .abort(to(
            &store,
            AbortRequest {
                r#ref: "layer-3".into(),
            },
        ))
        .await
        .expect("abort");
    tx.send(WriteContentRequest {
        action: WriteAction::Commit.into(),
        offset: 10,
        ..Default::default()
    })
    .await
    .expect("send");
    let err = out.message().await.expect_err("the write was aborted");
    assert_eq!(err.code(), tonic::Code::NotFound, "{err}");
    let blobs = std::fs::read_dir(store.0.join("blobs/sha256"))
        .expect("blobs")
        .count();
    let ingest = std::fs::read_dir(store.0.join("ingest"))
        .expect("ingest")
        .count();
    assert_eq!((blobs, ingest), (0, 0));
    let gone = client
        .status(to(
            &store,
            StatusRequest {
                r#ref: "layer-3".into(),
            },
        ))
        .await
        .expect_err("no write any more");
    assert_eq!(gone.code(), tonic::Code::NotFound);
}
