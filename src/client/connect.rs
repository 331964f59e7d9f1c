//! Reaching a BuildKit: the Docker Engine's embedded BuildKit through the
//! Docker API (`POST /grpc` and `POST /session`, both upgraded to HTTP/2
//! cleartext, as buildx's docker driver does), or a BuildKit daemon's own
//! gRPC API (`buildkit+unix://`, `buildkit+tcp://`, as buildctl talks to
//! it), on a unix socket or at a TCP address, in cleartext or over TLS.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A byte stream to an engine.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Which API the builder speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// A Docker Engine API, whose embedded BuildKit is reached by upgrading
    /// `/grpc` and `/session` requests.
    Docker,
    /// A BuildKit daemon's gRPC API (`buildkitd --addr ...`); the session
    /// rides on its `Control.Session` call.
    BuildKit,
}

/// Where the builder listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A unix socket.
    Unix(PathBuf),
    /// A TCP address, `host:port`.
    Tcp(String),
}

/// The files of a TLS connection, as the docker CLI and buildctl name them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// The CA certificate that signed the builder's certificate (PEM).
    pub ca: Option<PathBuf>,
    /// The client's certificate (PEM), for builders that verify clients.
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key: Option<PathBuf>,
    /// The name the builder's certificate must carry; default: the host.
    pub server_name: Option<String>,
}

/// A builder: the API it speaks, its address, and TLS when it uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Builder {
    /// The API.
    pub api: Api,
    /// The address.
    pub address: Address,
    /// TLS files; None for cleartext.
    pub tls: Option<Tls>,
}

impl fmt::Display for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match self.api {
            Api::Docker => "",
            Api::BuildKit => "buildkit+",
        };
        match &self.address {
            Address::Unix(p) => write!(f, "{prefix}unix://{}", p.display())?,
            Address::Tcp(a) => write!(f, "{prefix}tcp://{a}")?,
        }
        if self.tls.is_some() {
            write!(f, " (TLS)")?;
        }
        Ok(())
    }
}

/// The Docker socket when `DOCKER_HOST` is not set.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

impl Builder {
    /// The builder `--builder` names, or the local engine (`DOCKER_HOST`,
    /// else the default socket) when it names none; `tls` as given, or
    /// for a Docker Engine at a TCP address, the docker CLI's
    /// `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`.
    pub fn resolve(arg: Option<&str>, tls: Tls) -> Result<Builder> {
        let mut builder = match arg {
            Some(a) if a != "default" => Builder::parse(a)?,
            _ => match std::env::var("DOCKER_HOST") {
                Ok(h) if !h.is_empty() => Builder::parse(&h)
                    .with_context(|| format!("DOCKER_HOST={h} is not an engine address"))?,
                _ => Builder {
                    api: Api::Docker,
                    address: Address::Unix(PathBuf::from(DEFAULT_SOCKET)),
                    tls: None,
                },
            },
        };
        let docker_env = std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty());
        builder.tls = if tls != Tls::default() {
            Some(tls)
        } else if docker_env && builder.api == Api::Docker {
            Some(Tls::docker_cert_path()?)
        } else {
            None
        };
        if builder.tls.is_some() && matches!(builder.address, Address::Unix(_)) {
            bail!("`{builder}`: TLS is for TCP addresses; a unix socket is reached without it");
        }
        Ok(builder)
    }

    /// `unix:///path`, `tcp://host:port`, either with `buildkit+` before
    /// it for a BuildKit daemon.
    pub fn parse(s: &str) -> Result<Builder> {
        let (api, rest) = match s.strip_prefix("buildkit+") {
            Some(rest) => (Api::BuildKit, rest),
            None => (Api::Docker, s),
        };
        let address = if let Some(path) = rest.strip_prefix("unix://") {
            if !path.starts_with('/') {
                bail!("`{s}`: a unix socket address needs an absolute path, as in unix:///run/docker.sock");
            }
            Address::Unix(PathBuf::from(path))
        } else if let Some(addr) = rest.strip_prefix("tcp://") {
            let addr = addr.trim_end_matches('/');
            if addr.is_empty() || !addr.contains(':') {
                bail!("`{s}`: a TCP address needs a host and a port, as in tcp://10.0.0.5:2375");
            }
            Address::Tcp(addr.to_owned())
        } else {
            bail!(
                "`{s}` is not a builder address: use unix:///path/to/docker.sock or tcp://host:port \
                 for a Docker Engine API, buildkit+unix:///run/buildkit/buildkitd.sock or \
                 buildkit+tcp://host:port for a BuildKit daemon, or `default` for DOCKER_HOST"
            )
        };
        Ok(Builder {
            api,
            address,
            tls: None,
        })
    }

    async fn dial(&self) -> Result<Box<dyn Stream>> {
        let unreachable = || format!("cannot reach the builder at {self}: is it running?");
        let tcp = match &self.address {
            Address::Unix(p) => {
                return Ok(Box::new(
                    UnixStream::connect(p).await.with_context(unreachable)?,
                ))
            }
            Address::Tcp(a) => TcpStream::connect(a.as_str())
                .await
                .with_context(unreachable)?,
        };
        let (Some(tls), Address::Tcp(addr)) = (&self.tls, &self.address) else {
            return Ok(Box::new(tcp));
        };
        // gRPC servers want HTTP/2 named in the handshake; the Docker API
        // is HTTP/1.1 until a request upgrades.
        let alpn: &[u8] = match self.api {
            Api::BuildKit => b"h2",
            Api::Docker => b"http/1.1",
        };
        let config = tls.client_config(alpn)?;
        let name = tls.server_name(addr)?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .with_context(|| format!("the TLS handshake with {self} failed"))?;
        Ok(Box::new(stream))
    }

    /// A byte stream that carries BuildKit's control API as HTTP/2: the
    /// builder's own socket for a BuildKit daemon, `/grpc` upgraded for a
    /// Docker Engine.
    pub async fn control_stream(&self) -> Result<Box<dyn Stream>> {
        match self.api {
            Api::BuildKit => self.dial().await,
            Api::Docker => self.hijack("/grpc", &[]).await,
        }
    }

    /// Opens `path` on the engine's API and upgrades the connection to
    /// HTTP/2 cleartext, sending `headers`; the upgraded stream.
    pub async fn hijack(
        &self,
        path: &str,
        headers: &[(String, String)],
    ) -> Result<Box<dyn Stream>> {
        let mut io = self.dial().await?;
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: strata/{}\r\n\
             Content-Length: 0\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n",
            env!("CARGO_PKG_VERSION")
        );
        for (k, v) in headers {
            if k.contains(['\r', '\n', ':']) || v.contains(['\r', '\n']) {
                bail!("a session header cannot hold a line break: {k}");
            }
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        io.write_all(req.as_bytes())
            .await
            .with_context(|| format!("cannot write to the engine at {self}"))?;
        let head = read_head(&mut io).await.with_context(|| {
            format!(
                "the engine at {self} did not answer {path} as a Docker Engine API does \
                 (for a BuildKit daemon, write buildkit+{})",
                self.to_string().trim_end_matches(" (TLS)")
            )
        })?;
        let status = head.lines().next().unwrap_or_default();
        if !status.contains(" 101 ") {
            let code = status.split(' ').nth(1).unwrap_or("?");
            if code == "404" {
                bail!(
                    "the engine at {self} has no BuildKit API ({path} answered 404): \
                     Strata needs Docker Engine 23 or later with BuildKit enabled"
                );
            }
            bail!("the engine at {self} refused to open {path}: {status}");
        }
        Ok(io)
    }
}

impl Tls {
    /// The docker CLI's files: `ca.pem`, `cert.pem` and `key.pem` in
    /// `DOCKER_CERT_PATH`, else in `~/.docker`.
    fn docker_cert_path() -> Result<Tls> {
        let dir = match std::env::var_os("DOCKER_CERT_PATH") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => match std::env::var_os("HOME") {
                Some(h) => PathBuf::from(h).join(".docker"),
                None => bail!("DOCKER_TLS_VERIFY is set but neither DOCKER_CERT_PATH nor HOME is"),
            },
        };
        Ok(Tls {
            ca: Some(dir.join("ca.pem")),
            cert: Some(dir.join("cert.pem")),
            key: Some(dir.join("key.pem")),
            server_name: None,
        })
    }

    fn client_config(&self, alpn: &[u8]) -> Result<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        let Some(ca) = &self.ca else {
            bail!("TLS needs the CA certificate that signed the builder's (--tlscacert FILE)");
        };
        for cert in CertificateDer::pem_slice_iter(&read(ca)?) {
            let cert =
                cert.map_err(|e| anyhow::anyhow!("{}: not a PEM certificate: {e}", ca.display()))?;
            roots
                .add(cert)
                .with_context(|| format!("{}: not a usable CA certificate", ca.display()))?;
        }
        if roots.is_empty() {
            bail!("{}: holds no PEM certificate", ca.display());
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("cannot set up TLS")?
        .with_root_certificates(roots);
        let mut config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_slice_iter(&read(cert)?)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| anyhow::anyhow!("{}: not a PEM certificate: {e}", cert.display()))?;
                let key_der = PrivateKeyDer::from_pem_slice(&read(key)?)
                    .map_err(|e| anyhow::anyhow!("{}: not a PEM private key: {e}", key.display()))?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .with_context(|| {
                        format!("{} and {} do not go together", cert.display(), key.display())
                    })?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => bail!("a client certificate needs its key and the key its certificate (--tlscert and --tlskey)"),
        };
        config.alpn_protocols = vec![alpn.to_vec()];
        Ok(config)
    }

    fn server_name(&self, addr: &str) -> Result<ServerName<'static>> {
        let host = match &self.server_name {
            Some(n) => n.as_str(),
            None => addr
                .rsplit_once(':')
                .map_or(addr, |(h, _)| h)
                .trim_start_matches('[')
                .trim_end_matches(']'),
        };
        ServerName::try_from(host.to_owned()).map_err(|_| {
            anyhow::anyhow!("`{host}` is not a host name for TLS (--tlsservername NAME)")
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Reads an HTTP/1.1 response head, byte by byte: nothing after it may be
/// consumed (HTTP/2 follows at once).
async fn read_head(io: &mut Box<dyn Stream>) -> Result<String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 << 10 {
            bail!("the response head is over 64 KiB");
        }
        let b = io.read_u8().await.context("the connection closed")?;
        head.push(b);
        if head.len() == 5 && &head[..] != b"HTTP/" {
            bail!("the answer is not HTTP/1.1");
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_addresses_parse() {
        let b = Builder::parse("unix:///run/x.sock").ok();
        assert_eq!(
            b.map(|b| (b.api, b.address)),
            Some((Api::Docker, Address::Unix("/run/x.sock".into())))
        );
        let b = Builder::parse("tcp://10.0.0.5:2375").ok();
        assert_eq!(
            b.map(|b| (b.api, b.address)),
            Some((Api::Docker, Address::Tcp("10.0.0.5:2375".into())))
        );
        let b = Builder::parse("buildkit+unix:///run/buildkit/buildkitd.sock").ok();
        assert_eq!(
            b.map(|b| (b.api, b.address)),
            Some((
                Api::BuildKit,
                Address::Unix("/run/buildkit/buildkitd.sock".into())
            ))
        );
        for bad in [
            "unix://run/x.sock",
            "tcp://host",
            "ssh://h",
            "/run/x.sock",
            "buildkit+ssh://h",
            "buildkit+",
        ] {
            assert!(Builder::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tls_names_the_host_or_the_given_name() {
        let tls = Tls::default();
        assert_eq!(
            tls.server_name("127.0.0.1:2376").ok(),
            ServerName::try_from("127.0.0.1").ok()
        );
        assert_eq!(
            tls.server_name("build.example:1234").ok(),
            ServerName::try_from("build.example").ok()
        );
        let named = Tls {
            server_name: Some("buildkitd".into()),
            ..Tls::default()
        };
        assert_eq!(
            named.server_name("10.0.0.1:1234").ok(),
            ServerName::try_from("buildkitd").ok()
        );
    }

    #[test]
    fn tls_is_refused_on_a_unix_socket() {
        let tls = Tls {
            ca: Some("/ca.pem".into()),
            ..Tls::default()
        };
        let err = Builder::resolve(Some("unix:///run/x.sock"), tls).err();
        assert!(err.is_some_and(|e| e.to_string().contains("TLS is for TCP")));
    }
}
