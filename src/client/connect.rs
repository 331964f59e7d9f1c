//! Reaching a BuildKit: the Docker Engine's embedded BuildKit through the
//! Docker API (`POST /grpc` and `POST /session`, both upgraded to HTTP/2
//! cleartext, as buildx's docker driver does), on the local socket or at
//! an address.

use std::fmt;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

/// A byte stream to an engine.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Where the engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Builder {
    /// A Docker Engine's API on a unix socket.
    Unix(PathBuf),
    /// A Docker Engine's API on a TCP address (`host:port`, cleartext).
    Tcp(String),
}

impl fmt::Display for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Builder::Unix(p) => write!(f, "unix://{}", p.display()),
            Builder::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// The Docker socket when `DOCKER_HOST` is not set.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

impl Builder {
    /// The builder `--builder` names, or the local engine (`DOCKER_HOST`,
    /// else the default socket) when it names none.
    pub fn resolve(arg: Option<&str>) -> Result<Builder> {
        match arg {
            Some(a) if a != "default" => Builder::parse(a),
            _ => match std::env::var("DOCKER_HOST") {
                Ok(h) if !h.is_empty() => Builder::parse(&h)
                    .with_context(|| format!("DOCKER_HOST={h} is not an engine address")),
                _ => Ok(Builder::Unix(PathBuf::from(DEFAULT_SOCKET))),
            },
        }
    }

    /// `unix:///path`, `tcp://host:port` or `default`.
    pub fn parse(s: &str) -> Result<Builder> {
        if let Some(path) = s.strip_prefix("unix://") {
            if !path.starts_with('/') {
                bail!("`{s}`: a unix socket address needs an absolute path, as in unix:///run/docker.sock");
            }
            return Ok(Builder::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = s.strip_prefix("tcp://") {
            let addr = addr.trim_end_matches('/');
            if addr.is_empty() || !addr.contains(':') {
                bail!("`{s}`: a TCP address needs a host and a port, as in tcp://10.0.0.5:2375");
            }
            return Ok(Builder::Tcp(addr.to_owned()));
        }
        bail!(
            "`{s}` is not a builder address: use unix:///path/to/docker.sock or tcp://host:port \
             (a Docker Engine API), or `default` for DOCKER_HOST"
        )
    }

    async fn dial(&self) -> Result<Box<dyn Stream>> {
        Ok(match self {
            Builder::Unix(p) => {
                Box::new(UnixStream::connect(p).await.with_context(|| {
                    format!("cannot reach the engine at {self}: is it running?")
                })?)
            }
            Builder::Tcp(a) => {
                Box::new(TcpStream::connect(a.as_str()).await.with_context(|| {
                    format!("cannot reach the engine at {self}: is it running?")
                })?)
            }
        })
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
        let head = read_head(&mut io)
            .await
            .with_context(|| format!("the engine at {self} did not answer {path}"))?;
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
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_addresses_parse() {
        assert_eq!(
            Builder::parse("unix:///run/x.sock").ok(),
            Some(Builder::Unix("/run/x.sock".into()))
        );
        assert_eq!(
            Builder::parse("tcp://10.0.0.5:2375").ok(),
            Some(Builder::Tcp("10.0.0.5:2375".into()))
        );
        for bad in ["unix://run/x.sock", "tcp://host", "ssh://h", "/run/x.sock"] {
            assert!(Builder::parse(bad).is_err(), "{bad}");
        }
    }
}
