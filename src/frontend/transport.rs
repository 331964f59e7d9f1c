//! The gRPC connection to BuildKit: HTTP/2 cleartext over the frontend
//! process's stdin and stdout (the frontend is the client).

use std::future::{ready, Ready};
use std::io;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tonic::transport::{Channel, Endpoint, Uri};

/// BuildKit v0.14+ sends up to 16 MiB; v0.13 accepts at most 4 MiB from us.
pub const MAX_RECEIVE: usize = 16 << 20;
/// Requests beyond this are refused by BuildKit v0.13 (Docker 26.1).
pub const MAX_SEND: usize = 4 << 20;

/// Hands out one byte stream, once: there is only one stdin/stdout pair.
struct OneShot<IO> {
    io: Arc<Mutex<Option<IO>>>,
}

impl<IO> Clone for OneShot<IO> {
    fn clone(&self) -> Self {
        OneShot {
            io: Arc::clone(&self.io),
        }
    }
}

impl<IO> tower_service::Service<Uri> for OneShot<IO>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Response = TokioIo<IO>;
    type Error = io::Error;
    type Future = Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let taken = self.io.lock().ok().and_then(|mut slot| slot.take());
        ready(taken.map(TokioIo::new).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotConnected,
                "the connection to BuildKit was lost and cannot be reopened",
            )
        }))
    }
}

/// Opens an HTTP/2 gRPC channel over `io` (any duplex byte stream).
pub async fn connect<IO>(io: IO) -> Result<Channel, tonic::transport::Error>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let connector = OneShot {
        io: Arc::new(Mutex::new(Some(io))),
    };
    // The authority is never resolved: the connector ignores it.
    Endpoint::from_static("http://localhost")
        .connect_with_connector(connector)
        .await
}

/// Opens the channel over this process's stdin (read) and stdout (write).
pub async fn connect_stdio() -> Result<Channel, tonic::transport::Error> {
    connect(tokio::io::join(tokio::io::stdin(), tokio::io::stdout())).await
}
