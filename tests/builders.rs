//! `strata build --builder` on the builders a site runs: a Docker Engine
//! API over TLS with client certificates (the multi-platform dockerd's TCP
//! listener that scripts/engine.sh starts), and a BuildKit daemon's own
//! gRPC API, in cleartext on a unix socket and over TLS on TCP.
//!
//! No buildkitd binary can be installed here, so the BuildKit daemon is the
//! multi-platform engine's embedded BuildKit behind a forwarder: each
//! connection to the forwarder's address is joined to that engine's
//! `/grpc` endpoint, so the client meets BuildKit's control API directly
//! on the socket (no Docker API in between), its session rides on
//! `Control.Session`, and only the exporters a buildkitd has are used.
//! The TLS forwarder verifies client certificates and requires HTTP/2 in
//! the handshake (ALPN `h2`), as gRPC servers do.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{
    docker_ok, lossy, mp_docker_ok, mp_host, mp_lock, path_str, project, pushed_stack_table,
    run_id, strata, REGISTRY,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The certificates scripts/engine.sh made.
fn tls_dir() -> PathBuf {
    let dir =
        std::env::var("STRATA_TLS_DIR").unwrap_or_else(|_| "/var/lib/strata-engine/tls".into());
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("client/key.pem").exists(),
        "no TLS certificates in {}: start the engine with scripts/engine.sh",
        dir.display()
    );
    dir
}

/// A base from the registry and a component copying a file of the context.
fn stack(name: &str) -> PathBuf {
    let dir = project(
        name,
        format!(
            r#"{table}
[component.base]
from = "{REGISTRY}/strata/busybox:1.36"
user = "root"
run = ["echo {name} > /base"]

[component.app]
from = "base"
user = "root"
copy = [{{ src = "hello.txt", dst = "/hello.txt" }}]
"#,
            table = pushed_stack_table(name)
        ),
    );
    std::fs::write(dir.join("hello.txt"), format!("hello from {name}\n")).expect("write");
    dir
}

/// Where the forwarder listens.
enum Listen {
    Unix(PathBuf),
    Tls,
}

/// Starts a forwarder to the multi-platform engine's BuildKit; the
/// `--builder` address that reaches it.
fn buildkitd(listen: Listen) -> String {
    let socket = mp_host()
        .strip_prefix("unix://")
        .expect("a unix socket")
        .to_owned();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        rt.block_on(async move {
            match listen {
                Listen::Unix(p) => {
                    let _ = std::fs::remove_file(&p);
                    let l = tokio::net::UnixListener::bind(&p).expect("bind");
                    tx.send(format!("buildkit+unix://{}", p.display()))
                        .expect("send");
                    loop {
                        let Ok((conn, _)) = l.accept().await else {
                            return;
                        };
                        tokio::spawn(forward(conn, socket.clone()));
                    }
                }
                Listen::Tls => {
                    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("bind");
                    let port = l.local_addr().expect("addr").port();
                    tx.send(format!("buildkit+tcp://127.0.0.1:{port}"))
                        .expect("send");
                    let acceptor = tokio_rustls::TlsAcceptor::from(server_config());
                    loop {
                        let Ok((conn, _)) = l.accept().await else {
                            return;
                        };
                        let acceptor = acceptor.clone();
                        let socket = socket.clone();
                        tokio::spawn(async move {
                            let Ok(tls) = acceptor.accept(conn).await else {
                                return;
                            };
                            if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                                return;
                            }
                            forward(tls, socket).await;
                        });
                    }
                }
            }
        });
    });
    rx.recv().expect("the forwarder listens")
}

/// The forwarder's TLS: the engine's server certificate, client
/// certificates signed by the test CA required, HTTP/2 only.
fn server_config() -> Arc<rustls::ServerConfig> {
    let dir = tls_dir();
    let read = |f: &str| std::fs::read(dir.join(f)).expect("read a TLS file");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&read("ca.pem")) {
        roots.add(c.expect("a CA certificate")).expect("add the CA");
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("a client verifier");
    let chain: Vec<_> = CertificateDer::pem_slice_iter(&read("server-cert.pem"))
        .collect::<Result<_, _>>()
        .expect("the server certificate");
    let key = PrivateKeyDer::from_pem_slice(&read("server-key.pem")).expect("the server key");
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .expect("a server config");
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// Joins `conn` to the engine's `/grpc` endpoint (upgraded to HTTP/2).
async fn forward<S>(mut conn: S, socket: String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Ok(mut engine) = tokio::net::UnixStream::connect(&socket).await else {
        return;
    };
    let req = "POST /grpc HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\
               Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
    if engine.write_all(req.as_bytes()).await.is_err() {
        return;
    }
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let Ok(b) = engine.read_u8().await else {
            return;
        };
        head.push(b);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut conn, &mut engine).await;
}

fn client_tls_args(dir: &Path) -> Vec<String> {
    vec![
        "--tlscacert".into(),
        dir.join("ca.pem").display().to_string(),
        "--tlscert".into(),
        dir.join("client/cert.pem").display().to_string(),
        "--tlskey".into(),
        dir.join("client/key.pem").display().to_string(),
    ]
}

fn build(dir: &Path, extra: &[String]) -> (bool, String, String) {
    let file = dir.join("strata.toml");
    let mut args = vec!["build".to_owned(), path_str(&file).to_owned()];
    args.extend(extra.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = strata(&args);
    (out.status.success(), lossy(&out.stdout), lossy(&out.stderr))
}

#[test]
fn a_docker_engine_over_tls_builds_with_client_certificates() {
    let _lock = mp_lock();
    let tls = tls_dir();
    let name = "tls-docker";
    let dir = stack(name);
    let mut args = vec![
        "--builder".to_owned(),
        "tcp://127.0.0.1:2376".to_owned(),
        "--progress".to_owned(),
        "plain".to_owned(),
    ];
    args.extend(client_tls_args(&tls));
    let (ok, out, log) = build(&dir, &args);
    assert!(ok, "{log}");
    assert!(log.contains("on tcp://127.0.0.1:2376 (TLS)"), "{log}");
    let app = format!("{REGISTRY}/strata-test/{name}-app:{}", run_id());
    assert!(out.lines().any(|l| l == app), "{out}");
    // The image is in the engine behind the TLS listener.
    let got = mp_docker_ok(&["run", "--rm", &app, "cat", "/hello.txt", "/base"]);
    assert_eq!(got, format!("hello from {name}\n{name}\n"));

    // The docker CLI's variables work as well.
    let out = common::strata_command()
        .args([
            "build",
            path_str(&dir.join("strata.toml")),
            "--progress",
            "quiet",
        ])
        .env("DOCKER_HOST", "tcp://127.0.0.1:2376")
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", tls.join("client"))
        .output()
        .expect("run strata");
    assert!(out.status.success(), "{}", lossy(&out.stderr));

    // Without a client certificate the engine refuses, and the error says where.
    let (ok, _, log) = build(
        &dir,
        &[
            "--builder".into(),
            "tcp://127.0.0.1:2376".into(),
            "--tlscacert".into(),
            tls.join("ca.pem").display().to_string(),
        ],
    );
    assert!(
        !ok,
        "a build without a client certificate succeeded:\n{log}"
    );
    assert!(log.contains("127.0.0.1:2376"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_buildkit_daemon_on_a_socket_builds_and_the_images_are_loaded() {
    let _lock = mp_lock();
    let sock = common::temp_dir("buildkitd-sock").join("buildkitd.sock");
    let addr = buildkitd(Listen::Unix(sock));
    let name = "bkd-load";
    let dir = stack(name);
    let (ok, out, log) = build(
        &dir,
        &[
            "--builder".into(),
            addr.clone(),
            "--progress".into(),
            "plain".into(),
        ],
    );
    assert!(ok, "{log}");
    assert!(
        log.contains(&format!("one BuildKit session on {addr}")),
        "{log}"
    );
    let app = format!("{REGISTRY}/strata-test/{name}-app:{}", run_id());
    assert!(out.lines().any(|l| l == app), "{out}");
    // Loaded into the local Docker Engine (not the one behind the daemon).
    let got = docker_ok(&["run", "--rm", &app, "cat", "/hello.txt", "/base"]);
    assert_eq!(got, format!("hello from {name}\n{name}"));
    common::remove_images(&[app]);
}

#[test]
fn a_buildkit_daemon_over_tls_pushes_every_image_once_all_built() {
    let _lock = mp_lock();
    let tls = tls_dir();
    let addr = buildkitd(Listen::Tls);
    let name = "bkd-push";
    let dir = stack(name);
    let lock = dir.join("pushed.lock");
    let mut args = vec![
        "--builder".to_owned(),
        addr.clone(),
        "--push".to_owned(),
        "--lock-file".to_owned(),
        path_str(&lock).to_owned(),
        "--progress".to_owned(),
        "plain".to_owned(),
    ];
    args.extend(client_tls_args(&tls));
    let (ok, out, log) = build(&dir, &args);
    assert!(ok, "{log}");
    // Every pushed name with its digest on stdout, the same in the lock
    // file and in the registry.
    let app = format!("{REGISTRY}/strata-test/{name}-app:{}", run_id());
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{app}@sha256:")))
        .unwrap_or_else(|| panic!("no digest for {app} in\n{out}\n{log}"));
    let digest = line.rsplit_once('@').map(|(_, d)| d).expect("a digest");
    let locked = std::fs::read_to_string(&lock).expect("the lock file");
    assert!(locked.contains(digest), "{locked}");
    let inspect = docker_ok(&["buildx", "imagetools", "inspect", &app]);
    assert!(
        inspect.contains(digest),
        "the registry has another digest for {app}: {inspect}"
    );

    // A client without a certificate is refused by the daemon.
    let (ok, _, log) = build(
        &dir,
        &[
            "--builder".into(),
            addr,
            "--tlscacert".into(),
            tls.join("ca.pem").display().to_string(),
            "--push".into(),
        ],
    );
    assert!(!ok, "{log}");
    assert!(log.contains("client certificate"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_buildkit_daemon_pushes_nothing_when_a_component_fails() {
    let _lock = mp_lock();
    let sock = common::temp_dir("buildkitd-fail").join("buildkitd.sock");
    let addr = buildkitd(Listen::Unix(sock));
    let name = "bkd-fail";
    let dir = stack(name);
    let file = dir.join("strata.toml");
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(
        &file,
        format!(
            "{text}\n[component.broken]\nfrom = \"base\"\nuser = \"root\"\nrun = [\"exit 3\"]\n"
        ),
    )
    .expect("write");
    let (ok, out, log) = build(&dir, &["--builder".into(), addr, "--push".into()]);
    assert!(!ok, "{log}");
    assert!(out.is_empty(), "{out}");
    assert!(log.contains("nothing pushed"), "{log}");
    assert!(log.contains("RUN exit 3"), "{log}");
    for c in ["base", "app", "broken"] {
        let image = format!("{REGISTRY}/strata-test/{name}-{c}:{}", run_id());
        let got = common::docker(&["buildx", "imagetools", "inspect", &image]);
        assert!(
            !got.status.success(),
            "{image} was pushed although `broken` failed"
        );
    }
}
