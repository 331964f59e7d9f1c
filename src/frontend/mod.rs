//! The BuildKit gateway frontend: BuildKit runs the frontend image with a
//! gRPC connection on stdin/stdout; the frontend reads the stack file,
//! lowers the target to LLB, solves it and `Return`s the result or an error.
//!
//! stdout is the gRPC pipe: nothing else may write to it. Logs go to
//! stderr, which lands in the daemon's log, never in the user's output;
//! everything the user must see goes through `Return` or `Warn`.
//!
//! # Panics
//!
//! The binary unwinds (profile `release-frontend` keeps `panic = "unwind"`):
//! a panic is caught around the build and `Return`ed as an error that says
//! it is a Strata bug, where `panic = "abort"` would show the user a bare
//! "exit code". Measured on the static x86_64 build: 3.35 MB unwinding
//! against 2.99 MB aborting (+0.36 MB, about 12 %), well under the 5 MB
//! image budget.

mod context;
pub mod errors;
pub(crate) mod gateway;
pub mod opts;
pub mod subrequests;
pub mod transport;

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use strata_proto::gateway as gw;

pub use errors::FrontendError;
pub use gateway::{Gateway, Launch};
pub use opts::FrontendOpts;

/// Where the last panic happened, recorded by the panic hook for the `Return`ed error.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Runs the frontend over stdin/stdout and exits the process.
///
/// Exits explicitly: tokio's stdin reader sits on a blocking thread that
/// never ends while BuildKit holds the pipe open, so returning from `main`
/// would hang the build.
pub fn main() -> ! {
    std::panic::set_hook(Box::new(|info| {
        let text = info.to_string();
        eprintln!("strata-frontend: {text}");
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(text);
        }
    }));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strata-frontend: cannot start the async runtime: {e}");
            std::process::exit(1)
        }
    };
    let code = runtime.block_on(serve(Launch::from_env()));
    // Exit with the runtime still alive: dropping it waits for the stdin thread.
    std::process::exit(code)
}

/// Connects to BuildKit, runs the build and `Return`s its outcome; the exit code.
async fn serve(launch: Launch) -> i32 {
    let channel = match transport::connect_stdio().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("strata-frontend: cannot open the gRPC connection on stdio: {e}");
            return 1;
        }
    };
    let mut client = match gateway::Gateway::new(channel, None) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("strata-frontend: {e}");
            return 1;
        }
    };
    let outcome = run_caught(&mut client, &launch).await;
    if let Err(e) = &outcome {
        eprintln!("strata-frontend: build failed: {e}");
    }
    match gateway::Bridge::finish(&mut client, return_request(outcome).0).await {
        Ok(()) => 0,
        Err(s) => {
            eprintln!("strata-frontend: Return failed: {}", s.message());
            1
        }
    }
}

/// Runs the build; a panic becomes an error that says it is a Strata bug.
async fn run_caught<B: gateway::Bridge>(
    bridge: &mut B,
    launch: &Launch,
) -> Result<gw::Result, FrontendError> {
    match CatchUnwind(Box::pin(gateway::build(bridge, launch))).await {
        Ok(outcome) => outcome,
        Err(payload) => {
            let recorded = LAST_PANIC.lock().ok().and_then(|mut l| l.take());
            Err(FrontendError::Bug(
                recorded.unwrap_or_else(|| panic_message(payload.as_ref())),
            ))
        }
    }
}

/// The `Return` for an outcome (exactly one of result and error is set),
/// and the error it carries.
fn return_request(
    outcome: Result<gw::Result, FrontendError>,
) -> (gw::ReturnRequest, Option<FrontendError>) {
    match outcome {
        Ok(result) => (
            gw::ReturnRequest {
                result: Some(result),
                error: None,
            },
            None,
        ),
        Err(e) => (
            gw::ReturnRequest {
                result: None,
                error: Some(e.to_status()),
            },
            Some(e),
        ),
    }
}

/// Runs the frontend in this process for one build of a client's
/// (`strata build`): builds, `Return`s the outcome to BuildKit, and hands
/// back the error it returned, if any, for the client to show.
pub async fn serve_client_build(
    gateway: &mut Gateway,
    launch: &Launch,
) -> Result<(), FrontendError> {
    let outcome = run_caught(gateway, launch).await;
    let (request, error) = return_request(outcome);
    let returned = gateway::Bridge::finish(gateway, request).await;
    match (error, returned) {
        (Some(e), _) => Err(e),
        (None, Err(s)) => Err(FrontendError::engine("returning the result", s)),
        (None, Ok(())) => Ok(()),
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}

/// Polls a future, turning a panic inside it into `Err(payload)`.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_bug_errors() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let caught = rt.block_on(CatchUnwind(Box::pin(async {
            let v: Vec<u8> = Vec::new();
            // An out-of-bounds index the compiler cannot see through.
            v[std::hint::black_box(3)]
        })));
        let payload = caught.expect_err("panicked");
        assert!(panic_message(payload.as_ref()).contains("index out of bounds"));
    }

    /// A bridge whose first call panics, as a bug in the build would.
    struct PanickingBridge;

    impl gateway::Bridge for PanickingBridge {
        async fn ping(&mut self) -> Result<gw::PongResponse, tonic::Status> {
            panic!("a bug in the build")
        }
        async fn inputs(&mut self) -> Result<gw::InputsResponse, tonic::Status> {
            unreachable!()
        }
        async fn solve(&mut self, _: gw::SolveRequest) -> Result<gw::SolveResponse, tonic::Status> {
            unreachable!()
        }
        async fn read_file(&mut self, _: gw::ReadFileRequest) -> Result<Vec<u8>, tonic::Status> {
            unreachable!()
        }
        async fn read_dir(
            &mut self,
            _: gw::ReadDirRequest,
        ) -> Result<Vec<strata_proto::fsutil::Stat>, tonic::Status> {
            unreachable!()
        }
        async fn stat_file(
            &mut self,
            _: gw::StatFileRequest,
        ) -> Result<gw::StatFileResponse, tonic::Status> {
            unreachable!()
        }
        async fn resolve_image_config(
            &mut self,
            _: gw::ResolveImageConfigRequest,
        ) -> Result<gw::ResolveImageConfigResponse, tonic::Status> {
            unreachable!()
        }
        async fn warn(&mut self, _: gw::WarnRequest) -> Result<(), tonic::Status> {
            unreachable!()
        }
        async fn finish(&mut self, _: gw::ReturnRequest) -> Result<(), tonic::Status> {
            unreachable!()
        }
    }

    #[test]
    fn a_panicking_build_returns_a_bug_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let outcome = rt.block_on(run_caught(&mut PanickingBridge, &Launch::default()));
        let status = return_request(outcome).0.error.expect("an error");
        assert_eq!(status.code, 2);
        assert!(status.message.contains("bug"), "{}", status.message);
        assert!(
            status.message.contains("a bug in the build"),
            "{}",
            status.message
        );
    }

    #[test]
    fn return_sets_exactly_one_side() {
        let (ok, none) = return_request(Ok(gw::Result::default()));
        assert!(ok.result.is_some() && ok.error.is_none() && none.is_none());
        let (err, kept) = return_request(Err(FrontendError::Other("x".into())));
        assert!(err.result.is_none());
        assert_eq!(err.error.map(|s| s.code), Some(2));
        assert_eq!(kept.map(|e| e.to_string()), Some("x".to_owned()));
    }
}
