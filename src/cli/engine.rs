//! The Docker engine as the CLI uses it: the Docker API (bollard) for
//! images, registries and archives. BuildKit itself is driven by
//! `docker buildx bake` (see `build`), not through this module.

use std::future::Future;
use std::io::Read;
use std::pin::Pin;

use anyhow::{bail, Context, Result};
use bollard::models::ImageInspect;
use bollard::query_parameters::{CreateImageOptions, PushImageOptions, RemoveImageOptions};
use bollard::Docker;
use futures_util::{Stream, StreamExt};

/// A connection to the Docker daemon (`DOCKER_HOST` or the default socket)
/// with a runtime to drive it from synchronous code.
pub struct Engine {
    docker: Docker,
    runtime: tokio::runtime::Runtime,
}

/// Counts of what a push did, from the daemon's progress stream.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// Layers uploaded.
    pub pushed: usize,
    /// Layers the registry already had.
    pub existing: usize,
    /// The manifest digest the daemon reported, if it did.
    pub digest: Option<String>,
}

impl Engine {
    /// Connects and agrees on an API version with the daemon.
    pub fn connect() -> Result<Engine> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let docker = Docker::connect_with_defaults()
            .context("cannot reach the Docker daemon (DOCKER_HOST or /var/run/docker.sock)")?
            .with_timeout(std::time::Duration::from_secs(600));
        let docker = runtime
            .block_on(docker.negotiate_version())
            .context("cannot talk to the Docker daemon: is it running? (try `docker info`)")?;
        Ok(Engine { docker, runtime })
    }

    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// The local image with this name, or None when there is none.
    pub fn inspect(&self, name: &str) -> Result<Option<ImageInspect>> {
        match self.block_on(self.docker.inspect_image(name)) {
            Ok(i) => Ok(Some(i)),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot inspect the image {name}")),
        }
    }

    /// The local image id (`sha256:...`) of this name, if present.
    pub fn image_id(&self, name: &str) -> Result<Option<String>> {
        Ok(self.inspect(name)?.and_then(|i| i.id))
    }

    /// The manifest (or index) digest the registry serves for `name`.
    pub fn registry_digest(&self, name: &str) -> Result<String> {
        let info = self
            .block_on(self.docker.inspect_registry_image(name, None))
            .map_err(|e| anyhow::anyhow!("{}", short_error(&e)))?;
        info.descriptor
            .digest
            .filter(|d| !d.is_empty())
            .ok_or_else(|| anyhow::anyhow!("the registry gave no digest for {name}"))
    }

    /// Removes one tag; the image stays while other tags name it.
    pub fn untag(&self, name: &str) -> Result<()> {
        let opts = RemoveImageOptions {
            force: false,
            noprune: true,
            ..Default::default()
        };
        match self.block_on(self.docker.remove_image(name, Some(opts), None)) {
            Ok(_)
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot remove the tag {name}")),
        }
    }

    /// Pulls `name` (`repo:tag` or `repo@digest`), failing on the first error the daemon reports.
    pub fn pull(&self, name: &str) -> Result<()> {
        let opts = CreateImageOptions {
            from_image: Some(name.to_owned()),
            ..Default::default()
        };
        let mut stream = self.docker.create_image(Some(opts), None, None);
        self.block_on(async {
            while let Some(item) = stream.next().await {
                let info = item.map_err(|e| anyhow::anyhow!("{}", short_error(&e)))?;
                if let Some(err) = info.error_detail.and_then(|d| d.message) {
                    bail!("{err}");
                }
            }
            Ok(())
        })
        .with_context(|| format!("cannot pull {name}"))
    }

    /// Pushes `repo:tag`, following the daemon's progress stream to its
    /// end; fails on the first error the daemon reports.
    pub fn push(&self, repo: &str, tag: &str) -> Result<PushReport> {
        let opts = PushImageOptions {
            tag: Some(tag.to_owned()),
            ..Default::default()
        };
        let mut stream = self.docker.push_image(repo, Some(opts), None);
        let mut report = PushReport::default();
        self.block_on(async {
            while let Some(item) = stream.next().await {
                let info = item.map_err(|e| anyhow::anyhow!("{}", short_error(&e)))?;
                if let Some(err) = info.error_detail.and_then(|d| d.message) {
                    bail!("{err}");
                }
                let Some(status) = info.status else { continue };
                match status.as_str() {
                    "Pushed" => report.pushed += 1,
                    "Layer already exists" => report.existing += 1,
                    s if s.starts_with("Mounted from") => report.existing += 1,
                    _ => {}
                }
                // The daemon's last line: "<tag>: digest: sha256:... size: N".
                if let Some(rest) = status.split_once("digest: ").map(|(_, r)| r) {
                    if let Some(d) = rest.split_whitespace().next() {
                        report.digest = Some(d.to_owned());
                    }
                }
            }
            Ok(())
        })
        .with_context(|| format!("cannot push {repo}:{tag}"))?;
        Ok(report)
    }

    /// `docker save` of these names as a byte stream, read synchronously.
    pub fn export<'a>(&'a self, names: &[&str]) -> ExportReader<'a> {
        ExportReader {
            engine: self,
            stream: Box::pin(self.docker.export_images(names).map(|r| r.map(Vec::from))),
            chunk: Vec::new(),
            offset: 0,
        }
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>, bollard::errors::Error>>>>;

/// The body of `GET /images/get`, one chunk in memory at a time.
pub struct ExportReader<'a> {
    engine: &'a Engine,
    stream: ByteStream,
    chunk: Vec<u8>,
    offset: usize,
}

impl Read for ExportReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.offset >= self.chunk.len() {
            match self.engine.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(c)) => {
                    self.chunk = c;
                    self.offset = 0;
                }
                Some(Err(e)) => return Err(std::io::Error::other(short_error(&e))),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.offset);
        buf[..n].copy_from_slice(&self.chunk[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}

/// The daemon's own message, without bollard's wrapping.
pub fn short_error(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}
