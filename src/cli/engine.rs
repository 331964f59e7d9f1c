//! The Docker engine as the CLI uses it: the Docker API (bollard) for
//! images, registries and archives. BuildKit itself is driven by
//! `docker buildx bake` (see `build`), not through this module.

use std::future::Future;
use std::io::Read;
use std::pin::Pin;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use bollard::auth::DockerCredentials;
use bollard::models::{ImageInspect, ProgressDetail};
use bollard::query_parameters::{CreateImageOptions, PushImageOptions};
use bollard::Docker;
use futures_util::{Stream, StreamExt};

use super::progress::{Mode, Reporter, MIN_REDRAW};

/// A connection to the Docker daemon (`DOCKER_HOST` or the default socket)
/// with a runtime to drive it from synchronous code.
pub struct Engine {
    docker: Docker,
    runtime: tokio::runtime::Runtime,
    progress: Mode,
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
        Engine::connect_with(
            Docker::connect_with_defaults()
                .context("cannot reach the Docker daemon (DOCKER_HOST or /var/run/docker.sock)")?,
        )
    }

    /// Connects to the Docker Engine `strata build --builder` names.
    pub fn connect_to(builder: &crate::client::connect::Builder) -> Result<Engine> {
        use crate::client::connect::Address;
        let docker = match (&builder.address, &builder.tls) {
            (Address::Unix(p), _) => {
                Docker::connect_with_unix(&p.to_string_lossy(), 600, bollard::API_DEFAULT_VERSION)
            }
            (Address::Tcp(a), None) => {
                Docker::connect_with_http(&format!("tcp://{a}"), 600, bollard::API_DEFAULT_VERSION)
            }
            (Address::Tcp(a), Some(tls)) => {
                let (Some(ca), Some(cert), Some(key)) = (&tls.ca, &tls.cert, &tls.key) else {
                    bail!("{builder}: a Docker Engine over TLS needs --tlscacert, --tlscert and --tlskey (or DOCKER_CERT_PATH with ca.pem, cert.pem and key.pem)");
                };
                Docker::connect_with_ssl(a, key, cert, ca, 600, bollard::API_DEFAULT_VERSION)
            }
        }
        .with_context(|| format!("cannot reach the Docker daemon at {builder}"))?;
        Engine::connect_with(docker)
    }

    fn connect_with(docker: Docker) -> Result<Engine> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let docker = docker.with_timeout(std::time::Duration::from_secs(600));
        let docker = runtime
            .block_on(docker.negotiate_version())
            .context("cannot talk to the Docker daemon: is it running? (try `docker info`)")?;
        Ok(Engine {
            docker,
            runtime,
            progress: Mode::auto(),
        })
    }

    /// How pushes and pulls show their progress on stderr (default: a
    /// live line on a terminal, a line per layer otherwise).
    pub fn set_progress(&mut self, mode: Mode) {
        self.progress = mode;
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
            .block_on(
                self.docker
                    .inspect_registry_image(name, credentials(&registry_of(name))),
            )
            .map_err(|e| anyhow::anyhow!("{}", short_error(&e)))?;
        info.descriptor
            .digest
            .filter(|d| !d.is_empty())
            .ok_or_else(|| anyhow::anyhow!("the registry gave no digest for {name}"))
    }

    /// Pulls `name` (`repo:tag` or `repo@digest`), failing on the first error the daemon reports.
    pub fn pull(&self, name: &str) -> Result<()> {
        self.pull_for(name, None)
    }

    /// [`Engine::pull`] of one platform's image (`linux/arm64`); None: the engine's own.
    pub fn pull_for(&self, name: &str, platform: Option<&str>) -> Result<()> {
        let opts = CreateImageOptions {
            from_image: Some(name.to_owned()),
            platform: platform.unwrap_or_default().to_owned(),
            ..Default::default()
        };
        let creds = credentials(&registry_of(name));
        let mut stream = self.docker.create_image(Some(opts), None, creds);
        let reporter = Reporter::new(self.progress, format!("pull {name}"), "layers");
        let mut layers = Layers::default();
        self.block_on(async {
            while let Some(item) = stream.next().await {
                let info = item.map_err(|e| anyhow::anyhow!("{}", short_error(&e)))?;
                if let Some(err) = info.error_detail.and_then(|d| d.message) {
                    bail!("{err}");
                }
                if let Some(status) = &info.status {
                    let detail = info.progress_detail.as_ref();
                    layers.follow(info.id.as_deref(), status, detail, &reporter);
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
        let creds = credentials(&registry_of(repo));
        let mut stream = self.docker.push_image(repo, Some(opts), creds);
        let mut report = PushReport::default();
        let reporter = Reporter::new(self.progress, format!("push {repo}:{tag}"), "layers");
        let mut layers = Layers::default();
        self.block_on(async {
            while let Some(item) = stream.next().await {
                let info = item.map_err(|e| anyhow::anyhow!("{}", short_error(&e)))?;
                if let Some(err) = info.error_detail.and_then(|d| d.message) {
                    bail!("{err}");
                }
                let Some(status) = info.status else { continue };
                layers.follow(None, &status, info.progress_detail.as_ref(), &reporter);
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

    /// `docker load` of the archive at `path`: the names it loaded.
    pub fn load(&self, path: &std::path::Path) -> Result<Vec<String>> {
        use bollard::query_parameters::ImportImageOptions;
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let chunks = futures_util::stream::unfold(file, |mut f| async move {
            let mut buf = vec![0u8; 1 << 20];
            match f.read(&mut buf) {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok::<_, std::io::Error>(tonic::codegen::Bytes::from(buf)), f))
                }
                Err(e) => Some((Err(e), f)),
            }
        });
        let opts = ImportImageOptions {
            quiet: true,
            ..Default::default()
        };
        let mut stream = self.docker.import_image_stream(opts, chunks, None);
        self.block_on(async {
            let mut loaded = Vec::new();
            while let Some(item) = stream.next().await {
                let info = item.map_err(|e| anyhow::anyhow!("{}", short_error(&e)))?;
                if let Some(err) = info.error_detail.and_then(|d| d.message) {
                    bail!("{err}");
                }
                for line in info.stream.iter().flat_map(|s| s.lines()) {
                    if let Some(name) = line.strip_prefix("Loaded image: ") {
                        loaded.push(name.trim().to_owned());
                    }
                }
            }
            Ok(loaded)
        })
        .with_context(|| format!("cannot load {} into the engine", path.display()))
    }

    /// `docker save` of these names as a byte stream, read synchronously.
    pub fn export<'a>(&'a self, names: &[&str]) -> ExportReader<'a> {
        ExportReader {
            engine: self,
            stream: Box::pin(self.docker.export_images(names).map(|r| r.map(Vec::from))),
            chunk: Vec::new(),
            offset: 0,
            on_wait: None,
        }
    }
}

/// Layers counted and bytes moved, from the daemon's push or pull progress
/// stream, for a [`Reporter`].
#[derive(Default)]
struct Layers {
    /// Layers announced ("Preparing", "Pulling fs layer", "Already exists").
    announced: usize,
    /// Bytes moved per layer: by id, or, for a push (whose events bollard
    /// gives without the layer's id), by the layer's size.
    moved: std::collections::BTreeMap<String, (u64, u64)>,
}

impl Layers {
    fn follow<W: std::io::Write>(
        &mut self,
        id: Option<&str>,
        status: &str,
        detail: Option<&ProgressDetail>,
        reporter: &Reporter<W>,
    ) {
        let amounts = detail.map(|d| {
            let n = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
            (n(d.current), n(d.total))
        });
        let key = |total: Option<u64>| match (id, total) {
            (Some(id), _) => Some(id.to_owned()),
            (None, Some(t)) => Some(t.to_string()),
            (None, None) => None,
        };
        match status {
            "Preparing" | "Pulling fs layer" => self.announce(reporter),
            "Already exists" => {
                self.announce(reporter);
                reporter.item_done_silently();
            }
            "Pushing" | "Downloading" => {
                if let Some((Some(current), total)) = amounts {
                    if let Some(k) = key(total) {
                        self.moved.insert(k, (current, total.unwrap_or(0)));
                        reporter.set_bytes(self.moved.values().map(|(c, _)| c).sum());
                    }
                }
            }
            "Download complete" => {
                if let Some(m) = id.and_then(|id| self.moved.get_mut(id)) {
                    m.0 = m.0.max(m.1);
                    reporter.set_bytes(self.moved.values().map(|(c, _)| c).sum());
                }
            }
            "Pushed" | "Pull complete" => reporter.item_done(),
            "Layer already exists" => reporter.item_done_silently(),
            s if s.starts_with("Mounted from") => reporter.item_done_silently(),
            _ => {}
        }
    }

    fn announce<W: std::io::Write>(&mut self, reporter: &Reporter<W>) {
        self.announced += 1;
        reporter.set_total(self.announced);
        reporter.tick();
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>, bollard::errors::Error>>>>;

/// The body of `GET /images/get`, one chunk in memory at a time.
pub struct ExportReader<'a> {
    engine: &'a Engine,
    stream: ByteStream,
    chunk: Vec<u8>,
    offset: usize,
    on_wait: Option<Box<dyn FnMut() + 'a>>,
}

impl<'a> ExportReader<'a> {
    /// Calls `f` every [`MIN_REDRAW`] while no data comes (the engine
    /// prepares the whole export before the first byte), so a live
    /// progress line keeps its time moving.
    pub fn on_wait(mut self, f: impl FnMut() + 'a) -> Self {
        self.on_wait = Some(Box::new(f));
        self
    }
}

impl Read for ExportReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.offset >= self.chunk.len() {
            let next = match &mut self.on_wait {
                None => self.engine.block_on(self.stream.next()),
                // `next()` is cancel-safe: a timeout loses nothing. (bollard
                // enables tokio's timers.)
                Some(wait) => loop {
                    // The timer is made inside the runtime, which it needs.
                    let stream = &mut self.stream;
                    let next = async { tokio::time::timeout(MIN_REDRAW, stream.next()).await };
                    match self.engine.block_on(next) {
                        Ok(next) => break next,
                        Err(_) => wait(),
                    }
                },
            };
            match next {
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

/// The registry host of an image name (`docker.io` when none is written).
fn registry_of(name: &str) -> String {
    crate::graph::ImageRef::parse(name).map_or_else(|_| "docker.io".to_owned(), |r| r.registry)
}

/// The docker CLI's credentials for a registry: `auths` of
/// `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`), or its
/// `credHelpers`/`credsStore` helper. None when there are none: the
/// daemon then tries anonymously, as `docker push` would.
pub(crate) fn credentials(registry: &str) -> Option<DockerCredentials> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".docker")))?;
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_str(&text).ok()?;
    credentials_in(&config, registry)
}

/// The credentials a docker CLI config gives a registry.
fn credentials_in(config: &serde_json::Value, registry: &str) -> Option<DockerCredentials> {
    let keys: Vec<String> = if registry == "docker.io" {
        vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
        ]
    } else {
        vec![
            registry.to_owned(),
            format!("https://{registry}"),
            format!("http://{registry}"),
        ]
    };
    let helper = keys
        .iter()
        .find_map(|k| config["credHelpers"][k.as_str()].as_str())
        .or_else(|| config["credsStore"].as_str());
    if let Some(helper) = helper {
        if let Some(c) = from_helper(helper, &keys[0]) {
            return Some(c);
        }
    }
    let entry = keys.iter().find_map(|k| config["auths"].get(k.as_str()))?;
    let decoded = entry["auth"]
        .as_str()
        .and_then(|a| base64::engine::general_purpose::STANDARD.decode(a).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let (username, password) = match decoded.as_deref().and_then(|d| d.split_once(':')) {
        Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
        None => (None, None),
    };
    let identitytoken = entry["identitytoken"].as_str().map(str::to_owned);
    if username.is_none() && identitytoken.is_none() {
        return None;
    }
    Some(DockerCredentials {
        username,
        password,
        identitytoken,
        serveraddress: Some(keys[0].clone()),
        ..Default::default()
    })
}

/// Asks `docker-credential-<helper> get` for a server's credentials.
fn from_helper(helper: &str, server: &str) -> Option<DockerCredentials> {
    use std::io::Write;
    let mut child = std::process::Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(server.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let user = v["Username"].as_str()?.to_owned();
    let secret = v["Secret"].as_str()?.to_owned();
    Some(if user == "<token>" {
        DockerCredentials {
            identitytoken: Some(secret),
            serveraddress: Some(server.to_owned()),
            ..Default::default()
        }
    } else {
        DockerCredentials {
            username: Some(user),
            password: Some(secret),
            serveraddress: Some(server.to_owned()),
            ..Default::default()
        }
    })
}

/// The daemon's own message, without bollard's wrapping.
pub fn short_error(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_cli_config() {
        let config = serde_json::json!({
            "auths": {
                "registry.example:5000": { "auth": "dXNlcjpwYXNz" },
                "https://index.docker.io/v1/": { "identitytoken": "tok" }
            }
        });
        let c = credentials_in(&config, "registry.example:5000").expect("auths entry");
        assert_eq!(c.username.as_deref(), Some("user"));
        assert_eq!(c.password.as_deref(), Some("pass"));
        let hub = credentials_in(&config, "docker.io").expect("hub entry");
        assert_eq!(hub.identitytoken.as_deref(), Some("tok"));
        assert!(credentials_in(&config, "127.0.0.1:5000").is_none());
        assert_eq!(registry_of("fedbiomed/node:1"), "docker.io");
        assert_eq!(registry_of("127.0.0.1:5000/x"), "127.0.0.1:5000");
    }

    /// A plain reporter writing into a buffer the test reads back, at 1 s.
    fn plain(label: &str, out: &std::rc::Rc<std::cell::RefCell<Vec<u8>>>) -> Reporter<Buf> {
        Reporter::with_output(
            Mode::Plain,
            label,
            "layers",
            Buf(out.clone()),
            Box::new(|| std::time::Duration::from_secs(1)),
            0,
        )
    }

    struct Buf(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn detail(current: i64, total: i64) -> Option<ProgressDetail> {
        Some(ProgressDetail {
            current: Some(current),
            total: Some(total),
        })
    }

    #[test]
    fn a_push_stream_gives_a_line_per_uploaded_layer_with_its_bytes() {
        let out = std::rc::Rc::default();
        let r = plain("push x:1", &out);
        let mut layers = Layers::default();
        for s in ["Preparing", "Preparing", "Preparing", "Waiting"] {
            layers.follow(None, s, None, &r);
        }
        layers.follow(None, "Layer already exists", None, &r);
        // Two layers upload at once; their events carry no id.
        layers.follow(None, "Pushing", detail(1 << 20, 3 << 20).as_ref(), &r);
        layers.follow(None, "Pushing", detail(512 << 10, 1 << 20).as_ref(), &r);
        layers.follow(None, "Pushing", detail(1 << 20, 1 << 20).as_ref(), &r);
        layers.follow(None, "Pushed", None, &r);
        layers.follow(None, "Pushing", detail(3 << 20, 3 << 20).as_ref(), &r);
        layers.follow(None, "Pushed", None, &r);
        layers.follow(None, "1: digest: sha256:ab size: 527", None, &r);
        drop(r);
        assert_eq!(
            String::from_utf8_lossy(&out.borrow()),
            "push x:1: 2/3 layers, 2.0 MiB, 2.0 MiB/s\n\
             push x:1: 3/3 layers, 4.0 MiB, 4.0 MiB/s\n"
        );
    }

    #[test]
    fn a_pull_stream_counts_layers_by_id() {
        let out = std::rc::Rc::default();
        let r = plain("pull x:1", &out);
        let mut layers = Layers::default();
        layers.follow(Some("1"), "Pulling from library/x", None, &r);
        layers.follow(Some("aaa"), "Already exists", None, &r);
        layers.follow(Some("bbb"), "Pulling fs layer", None, &r);
        layers.follow(Some("bbb"), "Downloading", detail(100, 2048).as_ref(), &r);
        layers.follow(Some("bbb"), "Download complete", None, &r);
        layers.follow(Some("bbb"), "Extracting", detail(10, 4096).as_ref(), &r);
        layers.follow(Some("bbb"), "Pull complete", None, &r);
        drop(r);
        assert_eq!(
            String::from_utf8_lossy(&out.borrow()),
            "pull x:1: 2/2 layers, 2.0 KiB, 2.0 KiB/s\n"
        );
    }
}
