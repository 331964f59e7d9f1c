use std::collections::BTreeSet;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::sync::atomic::AtomicUsize;

use super::walk::{dedupe_paths, follow_links, go_mode, MODE_DIR, MODE_SYMLINK};
use super::*;
use crate::lower::clean_path;

/// A fresh directory under `$TMPDIR`, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("strata-filesync-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    fn file(&self, rel: &str, content: &[u8]) -> &Self {
        let path = self.0.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent");
        }
        fs::write(path, content).expect("write file");
        self
    }

    fn dir(&self, rel: &str) -> &Self {
        fs::create_dir_all(self.0.join(rel)).expect("create dir");
        self
    }

    fn link(&self, rel: &str, target: &str) -> &Self {
        symlink(target, self.0.join(rel)).expect("create symlink");
        self
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn opts(include: &[&str], exclude: &[&str], follow: &[&str]) -> SyncOptions {
    SyncOptions {
        include_patterns: strings(include),
        exclude_patterns: strings(exclude),
        follow_paths: strings(follow),
    }
}

/// The stats the walk sends for `root` under `opts`.
fn walked(root: &Path, opts: &SyncOptions) -> Vec<Stat> {
    let filter = Filter::new(root, opts).expect("filter");
    let mut out = Vec::new();
    walk(root, &filter, &AtomicBool::new(false), &mut |stat, _| {
        out.push(stat);
        Ok(())
    })
    .expect("walk");
    assert_fsutil_order(&out);
    out
}

fn paths(root: &Path, opts: &SyncOptions) -> Vec<String> {
    walked(root, opts).into_iter().map(|s| s.path).collect()
}

/// fsutil's receiving `Validator`: clean relative paths, each directory
/// before what is in it, names in byte order within a directory.
fn assert_fsutil_order(stats: &[Stat]) {
    let mut open: Vec<(String, String)> = vec![(String::new(), String::new())];
    for s in stats {
        let p = &s.path;
        assert_eq!(*p, clean_path(p), "unclean path");
        assert!(!p.starts_with('/') && !p.starts_with("../"), "{p} escapes");
        let (dir, base) = p.rsplit_once('/').unwrap_or(("", p));
        while open.last().is_some_and(|(d, _)| d != dir) {
            open.pop();
        }
        let Some(last) = open.last_mut() else {
            panic!("{p} comes without its parent directory");
        };
        assert!(
            last.1.as_str() < base,
            "{p} is out of order after {}",
            last.1
        );
        last.1 = base.to_owned();
        if s.mode & MODE_DIR != 0 {
            open.push((p.clone(), String::new()));
        }
    }
}

fn tree() -> TempDir {
    let t = TempDir::new();
    t.file("a/x", b"x")
        .file("a/keep", b"k")
        .file("a/sub/y.log", b"y")
        .file("a-b", b"")
        .file("a.txt", b"t")
        .file("b/c/d.txt", b"d")
        .file("top.log", b"l");
    t
}

#[test]
fn walks_each_directory_in_byte_order_parents_first() {
    let t = tree();
    // Per directory, not by full path: "a/x" before "a-b" although '-' < '/'.
    assert_eq!(
        paths(&t.0, &SyncOptions::default()),
        [
            "a",
            "a/keep",
            "a/sub",
            "a/sub/y.log",
            "a/x",
            "a-b",
            "a.txt",
            "b",
            "b/c",
            "b/c/d.txt",
            "top.log"
        ]
    );
}

#[test]
fn include_patterns_send_matches_and_the_directories_above_them() {
    let t = tree();
    assert_eq!(paths(&t.0, &opts(&["a/x"], &[], &[])), ["a", "a/x"]);
    assert_eq!(
        paths(&t.0, &opts(&["b"], &[], &[])),
        ["b", "b/c", "b/c/d.txt"]
    );
    // `*` stays within a part; the walk enters every directory for it.
    assert_eq!(paths(&t.0, &opts(&["*.txt"], &[], &[])), ["a.txt"]);
    assert_eq!(
        paths(&t.0, &opts(&["**/*.txt"], &[], &[])),
        ["a.txt", "b", "b/c", "b/c/d.txt"]
    );
    assert_eq!(
        paths(&t.0, &opts(&["a/**"], &[], &[])),
        ["a", "a/keep", "a/sub", "a/sub/y.log", "a/x"]
    );
    // An include list can have its own exceptions.
    assert_eq!(
        paths(&t.0, &opts(&["a", "!a/sub"], &[], &[])),
        ["a", "a/keep", "a/x"]
    );
    assert!(paths(&t.0, &opts(&["nothing"], &[], &[])).is_empty());
}

#[test]
fn exclude_patterns_drop_matches_and_what_is_in_them_but_keep_exceptions() {
    let t = tree();
    assert_eq!(
        paths(&t.0, &opts(&[], &["a", "b"], &[])),
        ["a-b", "a.txt", "top.log"]
    );
    assert_eq!(
        paths(&t.0, &opts(&[], &["**/*.log", "a.txt"], &[])),
        [
            "a",
            "a/keep",
            "a/sub",
            "a/x",
            "a-b",
            "b",
            "b/c",
            "b/c/d.txt"
        ]
    );
    // `a` itself is excluded; its exception brings it back as a parent only.
    assert_eq!(
        paths(&t.0, &opts(&[], &["a", "!a/keep"], &[])),
        [
            "a",
            "a/keep",
            "a-b",
            "a.txt",
            "b",
            "b/c",
            "b/c/d.txt",
            "top.log"
        ]
    );
    // A wildcard exception makes the walk enter every excluded directory.
    assert_eq!(
        paths(&t.0, &opts(&[], &["*", "!**/*.log"], &[])),
        ["a", "a/sub", "a/sub/y.log", "top.log"]
    );
    assert_eq!(
        paths(&t.0, &opts(&["a", "b"], &["a/sub", "**/d.txt"], &[])),
        ["a", "a/keep", "a/x", "b", "b/c"]
    );
}

#[test]
fn symlinks_are_sent_as_symlinks_and_followpaths_adds_their_targets() {
    let t = tree();
    t.dir("real/dir")
        .file("real/dir/f", b"f")
        .file("real/other", b"o");
    t.link("link", "real/dir").link("abs", "/real/other");
    let all = walked(&t.0, &opts(&["link", "abs"], &[], &[]));
    let got: Vec<(&str, &str)> = all
        .iter()
        .map(|s| (s.path.as_str(), s.linkname.as_str()))
        .collect();
    assert_eq!(got, [("abs", "/real/other"), ("link", "real/dir")]);
    assert!(all.iter().all(|s| s.mode & MODE_SYMLINK != 0));

    // followpaths: the link, then its target (from the root, even when absolute).
    assert_eq!(
        paths(&t.0, &opts(&[], &[], &["link/f", "abs"])),
        [
            "abs",
            "link",
            "real",
            "real/dir",
            "real/dir/f",
            "real/other"
        ]
    );
    // Added to the include patterns; a missing path is included as itself.
    assert_eq!(
        paths(&t.0, &opts(&["a.txt"], &[], &["missing", "lin?"])),
        ["a.txt", "link", "real", "real/dir", "real/dir/f"]
    );
    // A path that is the whole directory leaves the include patterns as they are.
    assert_eq!(paths(&t.0, &opts(&["a.txt"], &[], &["."])), ["a.txt"]);
}

#[test]
fn follow_links_resolves_chains_and_loops() {
    let t = TempDir::new();
    t.dir("d")
        .file("d/f", b"")
        .link("one", "two")
        .link("two", "d")
        .link("loop1", "loop2")
        .link("loop2", "loop1");
    assert_eq!(
        follow_links(&t.0, &strings(&["one/f", "loop1"])).expect("follow"),
        Some(strings(&["d/f", "loop1", "loop2", "one", "two"]))
    );
    assert_eq!(
        follow_links(&t.0, &strings(&["/d", "d/f"])).expect("follow"),
        Some(strings(&["d"]))
    );
    assert_eq!(dedupe_paths(strings(&["a", "a/b", "ab", "."])), None);
    assert_eq!(
        dedupe_paths(strings(&["a", "a/b", "ab"])),
        Some(strings(&["a", "ab"]))
    );
}

#[test]
fn modes_carry_go_file_mode_bits() {
    let t = TempDir::new();
    t.dir("d")
        .file("f", b"12345")
        .file("run", b"#!")
        .link("l", "f");
    fs::set_permissions(t.0.join("d"), fs::Permissions::from_mode(0o750)).expect("chmod");
    fs::set_permissions(t.0.join("f"), fs::Permissions::from_mode(0o640)).expect("chmod");
    fs::set_permissions(t.0.join("run"), fs::Permissions::from_mode(0o755)).expect("chmod");
    let stats = walked(&t.0, &SyncOptions::default());
    let by: BTreeMap<&str, &Stat> = stats.iter().map(|s| (s.path.as_str(), s)).collect();
    assert_eq!(by["d"].mode, (1 << 31) | 0o750);
    assert_eq!(by["d"].size, 0);
    assert_eq!(by["f"].mode, 0o640);
    assert_eq!(by["f"].size, 5);
    assert_eq!(by["run"].mode, 0o755);
    assert_eq!(by["l"].mode, (1 << 27) | 0o777);
    assert_eq!((by["l"].linkname.as_str(), by["l"].size), ("f", 1));
    let md = fs::metadata(t.0.join("f")).expect("stat");
    assert_eq!((by["f"].uid, by["f"].gid), (md.uid(), md.gid()));
    assert_eq!(
        by["f"].mod_time,
        md.mtime() * 1_000_000_000 + md.mtime_nsec()
    );

    assert_eq!(go_mode(0o104755), (1 << 23) | 0o755, "setuid");
    assert_eq!(
        go_mode(0o041777),
        (1 << 31) | (1 << 20) | 0o777,
        "sticky dir"
    );
    assert_eq!(
        go_mode(0o020666),
        (1 << 26) | (1 << 21) | 0o666,
        "char device"
    );
    assert_eq!(go_mode(0o060660), (1 << 26) | 0o660, "block device");
    assert_eq!(go_mode(0o010644), (1 << 25) | 0o644, "fifo");
    assert_eq!(go_mode(0o140755), 0o755, "a socket loses its type bit");
}

#[test]
fn a_second_hard_link_names_the_first() {
    let t = TempDir::new();
    t.file("a", b"same");
    fs::hard_link(t.0.join("a"), t.0.join("b")).expect("link");
    let stats = walked(&t.0, &SyncOptions::default());
    assert_eq!(
        (stats[0].linkname.as_str(), stats[1].linkname.as_str()),
        ("", "a")
    );
    // Only what is sent counts: with `a` excluded, `b` stands alone.
    let stats = walked(&t.0, &opts(&[], &["a"], &[]));
    assert_eq!(
        (stats[0].path.as_str(), stats[0].linkname.as_str()),
        ("b", "")
    );
}

#[test]
fn request_metadata_is_decoded_as_buildkit_encodes_it() {
    let mut md = MetadataMap::new();
    md.insert("dir-name", "context".parse().expect("ascii"));
    md.append("exclude-patterns", "caf%C3%A9+x".parse().expect("ascii"));
    md.append("exclude-patterns", "*.o".parse().expect("ascii"));
    md.insert("exclude-patterns-encoded", "1".parse().expect("ascii"));
    md.append("include-patterns", "a%20b".parse().expect("ascii"));
    let (name, o) = request_options(&md);
    assert_eq!(name, "context");
    assert_eq!(o, opts(&["a%20b"], &["café x", "*.o"], &[]));
    assert_eq!(query_unescape("%zz"), None);
    assert_eq!(query_unescape("%4"), None);
}

type Incoming = mpsc::Sender<Result<Packet, Status>>;

async fn open(
    service: &FileSyncService,
    name: &str,
    o: SyncOptions,
) -> (Incoming, ReceiverStream<Result<Packet, Status>>) {
    let (tx, rx) = mpsc::channel(16);
    let out = service
        .start(name, o, ReceiverStream::new(rx))
        .await
        .expect("start");
    (tx, out)
}

fn req(id: u32) -> Result<Packet, Status> {
    Ok(packet(PacketType::PacketReq, id, None, Vec::new()))
}

fn kind(p: &Packet) -> PacketType {
    PacketType::try_from(p.r#type).expect("packet type")
}

/// Reads STAT packets up to the empty one.
async fn read_stats(out: &mut ReceiverStream<Result<Packet, Status>>) -> Vec<Stat> {
    let mut stats = Vec::new();
    loop {
        let p = out.next().await.expect("a packet").expect("no error");
        assert_eq!(kind(&p), PacketType::PacketStat);
        match p.stat {
            Some(s) => stats.push(s),
            None => return stats,
        }
    }
}

#[tokio::test]
async fn diff_copy_sends_stats_then_requested_contents_then_fin() {
    let t = TempDir::new();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    t.file("big.bin", &big)
        .file("empty", b"")
        .file("sub/small", b"hello")
        .link("ln", "big.bin");
    t.file("skip.o", b"o");
    let service = FileSyncService::new(BTreeMap::from([("context".to_owned(), t.0.clone())]));
    let (tx, mut out) = open(&service, "context", opts(&[], &["*.o"], &[])).await;
    let stats = read_stats(&mut out).await;
    let names: Vec<&str> = stats.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(names, ["big.bin", "empty", "ln", "sub", "sub/small"]);

    // Ids are STAT indexes; ask for every regular file.
    let wanted: BTreeMap<u32, &str> = [(0, "big.bin"), (1, "empty"), (4, "sub/small")].into();
    for id in wanted.keys() {
        tx.send(req(*id)).await.expect("send REQ");
    }
    let mut got: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut ended = BTreeSet::new();
    let mut chunks = 0;
    while ended.len() < wanted.len() {
        let p = out.next().await.expect("a packet").expect("no error");
        assert_eq!(kind(&p), PacketType::PacketData);
        assert!(
            wanted.contains_key(&p.id) && !ended.contains(&p.id),
            "unexpected DATA for {}",
            p.id
        );
        assert!(p.data.len() <= CHUNK);
        if p.data.is_empty() {
            ended.insert(p.id);
        } else {
            chunks += 1;
            got.entry(p.id).or_default().extend_from_slice(&p.data);
        }
    }
    assert_eq!(got.get(&0), Some(&big));
    assert_eq!(got.get(&1), None, "an empty file is just its end packet");
    assert_eq!(got.get(&4).map(Vec::as_slice), Some(&b"hello"[..]));
    assert!(
        chunks >= 5,
        "100,000 bytes take four chunks, plus one for `small`"
    );

    tx.send(Ok(packet(PacketType::PacketFin, 0, None, Vec::new())))
        .await
        .expect("send FIN");
    let fin = out.next().await.expect("FIN").expect("no error");
    assert_eq!(kind(&fin), PacketType::PacketFin);
    assert!(out.next().await.is_none(), "the stream ends after FIN");
    let s = service.stats().get("context");
    assert_eq!(
        s,
        DirStats {
            calls: 1,
            files: 3,
            bytes: 100_005
        }
    );
}

#[tokio::test]
async fn an_unknown_dir_name_is_an_error_naming_the_shared_ones() {
    let t = TempDir::new();
    let service = FileSyncService::new(BTreeMap::from([
        ("context".to_owned(), t.0.clone()),
        ("dockerfile".to_owned(), t.0.clone()),
    ]));
    let (_tx, rx) = mpsc::channel(1);
    let err = service
        .start("ctx", SyncOptions::default(), ReceiverStream::new(rx))
        .await
        .expect_err("unknown dir");
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert_eq!(
        err.message(),
        r#"no access allowed to dir "ctx": this client shares "context", "dockerfile""#
    );
    let (_tx, rx) = mpsc::channel(1);
    let err = service
        .start("context", opts(&[], &["!"], &[]), ReceiverStream::new(rx))
        .await
        .expect_err("bad pattern");
    assert!(
        err.message().contains("illegal exclusion pattern"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn a_file_that_cannot_be_opened_is_an_err_packet_and_an_error() {
    let t = TempDir::new();
    t.file("gone", b"x");
    let service = FileSyncService::new(BTreeMap::from([("context".to_owned(), t.0.clone())]));
    let (tx, mut out) = open(&service, "context", SyncOptions::default()).await;
    assert_eq!(read_stats(&mut out).await.len(), 1);
    fs::remove_file(t.0.join("gone")).expect("remove");
    tx.send(req(0)).await.expect("send REQ");
    let p = out.next().await.expect("ERR").expect("a packet");
    assert_eq!(kind(&p), PacketType::PacketErr);
    assert!(
        String::from_utf8_lossy(&p.data).starts_with("open gone: "),
        "{:?}",
        p.data
    );
    let err = out
        .next()
        .await
        .expect("an error")
        .expect_err("the gRPC error");
    assert!(err.message().starts_with("open gone: "));
    assert!(out.next().await.is_none());
}

#[tokio::test]
async fn a_request_for_a_directory_or_twice_for_a_file_is_an_error() {
    let t = TempDir::new();
    t.file("d/f", b"x");
    let service = FileSyncService::new(BTreeMap::from([("context".to_owned(), t.0.clone())]));
    let (tx, mut out) = open(&service, "context", SyncOptions::default()).await;
    read_stats(&mut out).await;
    tx.send(req(0)).await.expect("send REQ");
    let err = out
        .next()
        .await
        .expect("an error")
        .expect_err("the gRPC error");
    assert_eq!(err.message(), "invalid file id 0");

    let (tx, mut out) = open(&service, "context", SyncOptions::default()).await;
    read_stats(&mut out).await;
    tx.send(req(1)).await.expect("send REQ");
    for len in [1, 0] {
        let p = out.next().await.expect("DATA").expect("no error");
        assert_eq!(
            (kind(&p), p.id, p.data.len()),
            (PacketType::PacketData, 1, len)
        );
    }
    tx.send(req(1)).await.expect("send REQ");
    let err = out
        .next()
        .await
        .expect("an error")
        .expect_err("the gRPC error");
    assert_eq!(err.message(), "invalid file id 1");
    assert!(out.next().await.is_none());
}

#[tokio::test]
async fn an_err_packet_from_the_receiver_ends_the_transfer() {
    let t = TempDir::new();
    t.file("f", b"x");
    let service = FileSyncService::new(BTreeMap::from([("context".to_owned(), t.0.clone())]));
    let (tx, mut out) = open(&service, "context", SyncOptions::default()).await;
    read_stats(&mut out).await;
    tx.send(Ok(packet(
        PacketType::PacketErr,
        0,
        None,
        b"disk full".to_vec(),
    )))
    .await
    .expect("send ERR");
    let err = out
        .next()
        .await
        .expect("an error")
        .expect_err("the gRPC error");
    assert_eq!(err.message(), "error from receiver: disk full");
}

/// The service behind a real gRPC connection (in memory): the request's
/// metadata picks and filters the directory, packets survive the codec.
#[tokio::test]
async fn diff_copy_over_grpc_reads_its_options_from_the_metadata() {
    use strata_proto::session::file_sync_client::FileSyncClient;
    use strata_proto::session::file_sync_server::FileSyncServer;

    let t = TempDir::new();
    t.file("Dockerfile", b"FROM scratch")
        .file("src/main.rs", b"fn main() {}")
        .file("target/big", b"x");
    let service = FileSyncService::new(BTreeMap::from([("context".to_owned(), t.0.clone())]));
    let stats = service.stats();
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(tonic::transport::Server::builder().serve_with_incoming(
        FileSyncServer::new(service),
        tokio_stream::once(Ok::<_, io::Error>(server_io)),
    ));
    let channel = crate::frontend::transport::connect(client_io)
        .await
        .expect("connect");
    let mut client = FileSyncClient::new(channel);

    let (tx, rx) = mpsc::channel::<Packet>(16);
    let mut request = Request::new(ReceiverStream::new(rx));
    let md = request.metadata_mut();
    md.insert("dir-name", "context".parse().expect("ascii"));
    md.append("exclude-patterns", "target".parse().expect("ascii"));
    md.append(
        "exclude-patterns",
        "%2A%2A%2F%2A.md".parse().expect("ascii"),
    );
    md.insert("exclude-patterns-encoded", "1".parse().expect("ascii"));
    let mut out = client
        .diff_copy(request)
        .await
        .expect("DiffCopy")
        .into_inner();

    let mut stats_seen = Vec::new();
    while let Some(stat) = out.message().await.expect("a packet").and_then(|p| p.stat) {
        stats_seen.push(stat.path);
    }
    assert_eq!(stats_seen, ["Dockerfile", "src", "src/main.rs"]);
    tx.send(packet(PacketType::PacketReq, 2, None, Vec::new()))
        .await
        .expect("REQ");
    let mut content = Vec::new();
    loop {
        let p = out.message().await.expect("a packet").expect("DATA");
        assert_eq!((kind(&p), p.id), (PacketType::PacketData, 2));
        if p.data.is_empty() {
            break;
        }
        content.extend(p.data);
    }
    assert_eq!(content, b"fn main() {}");
    tx.send(packet(PacketType::PacketFin, 0, None, Vec::new()))
        .await
        .expect("FIN");
    let fin = out.message().await.expect("FIN").expect("a packet");
    assert_eq!(kind(&fin), PacketType::PacketFin);
    assert!(out.message().await.expect("a clean end").is_none());
    assert_eq!(
        stats.get("context"),
        DirStats {
            calls: 1,
            files: 1,
            bytes: 12
        }
    );

    let (_tx, rx) = mpsc::channel::<Packet>(1);
    let mut request = Request::new(ReceiverStream::new(rx));
    request
        .metadata_mut()
        .insert("dir-name", "nope".parse().expect("ascii"));
    let err = client.diff_copy(request).await.expect_err("unknown dir");
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert!(
        err.message()
            .contains(r#""nope": this client shares "context""#),
        "{}",
        err.message()
    );
    server.abort();
}
