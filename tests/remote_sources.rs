//! Remote sources and site package sources, built offline on the real
//! engine. Every server is started here and listens only on the loopback
//! or on the engine's bridge address:
//!
//! - a copy from an HTTP URL pinned by its checksum (BuildKit's daemon
//!   fetches it: the loopback), and a wrong checksum failing at the copy's
//!   line;
//! - a copy from a git repository at a tag (`git daemon` on the loopback),
//!   with `strata sources` and `strata lock` reporting it;
//! - a pip step reading a PyPI-style simple index and an apt step reading
//!   an apt mirror, both served on the bridge address (the way a build
//!   container reaches the host), from the packages
//!   `scripts/vendor-examples.sh` downloads;
//! - the LLB of a conda step reading a local channel directory.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    assert_located, buildx, docker_ok, frontend, frontend_image, lossy, project, remove_images,
    root, run_id, run_in, strata, strata_ok, temp_dir,
};

const BASE: &str = "strata.local/python:3.11-slim-bookworm";

/// A static file server for one directory (GET and HEAD, one request per
/// connection), recording the paths asked for.
struct Server {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<String>>>,
}

fn serve(dir: PathBuf, ip: &str) -> Server {
    let listener = TcpListener::bind((ip, 0)).expect("bind the test server");
    let addr = listener.local_addr().expect("address");
    let hits = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&hits);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let dir = dir.clone();
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || answer(stream, &dir, &seen));
        }
    });
    Server { addr, hits }
}

fn answer(stream: TcpStream, dir: &Path, seen: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(n) if n > 2 => continue,
            _ => break,
        }
    }
    let mut words = request.split_whitespace();
    let method = words.next().unwrap_or("");
    let path = words.next().unwrap_or("/");
    let path = path.split(['?', '#']).next().unwrap_or("/");
    seen.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(path.to_owned());
    let decoded = percent_decoded(path);
    let rel = decoded.trim_start_matches('/');
    let mut file = dir.join(rel);
    if file.is_dir() {
        file = file.join("index.html");
    }
    let body = if rel.split('/').any(|c| c == "..") {
        None
    } else {
        std::fs::read(&file).ok()
    };
    let _ = match body {
        Some(body) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: {}\r\nConnection: close\r\n\r\n",
                body.len(),
                if file.extension().is_some_and(|e| e == "html") {
                    "text/html"
                } else {
                    "application/octet-stream"
                }
            );
            out.write_all(head.as_bytes()).and_then(|()| {
                if method == "HEAD" {
                    Ok(())
                } else {
                    out.write_all(&body)
                }
            })
        }
        None => out
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    };
}

/// A URL path with `%XX` escapes decoded (apt escapes `+` in file names).
fn percent_decoded(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Server {
    fn asked(&self, path: &str) -> bool {
        self.hits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|p| p == path)
    }
}

/// The engine's bridge address (`docker0`): build containers in the
/// default network reach the host there.
fn bridge_address() -> String {
    docker_ok(&[
        "network",
        "inspect",
        "bridge",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
    ])
}

/// `sha256:<hex>` of a file, from `sha256sum`.
fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success(), "sha256sum {}", path.display());
    let text = lossy(&out.stdout);
    format!("sha256:{}", text.split_whitespace().next().unwrap_or(""))
}

/// A vendored package of the examples (`scripts/vendor-examples.sh`).
fn vendored(kind: &str, prefix: &str) -> PathBuf {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root().join("examples")).expect("examples/") {
        let dir = entry.expect("entry").path().join("vendor").join(kind);
        for f in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if f.file_name().to_string_lossy().starts_with(prefix) {
                found.push(f.path());
            }
        }
    }
    found.sort();
    found.into_iter().next().unwrap_or_else(|| {
        panic!("no vendored {kind} package {prefix}*: run scripts/vendor-examples.sh (scripts/test.sh does)")
    })
}

fn stack_head(name: &str, default: &str) -> String {
    format!(
        "# syntax={}\n[stack]\nname = \"{name}\"\ndefault = \"{default}\"\nimage = \"strata-test/{name}-{{component}}:{}\"\n",
        frontend(),
        run_id()
    )
}

fn tag(name: &str, component: &str) -> String {
    format!("strata-test/{name}-{component}:{}", run_id())
}

#[test]
fn a_url_copy_is_checked_against_its_checksum() {
    frontend_image();
    let files = temp_dir("remote-http-files");
    let payload = format!("#!/bin/sh\necho remote {}\n", run_id());
    std::fs::write(files.join("tool.sh"), &payload).expect("write");
    let sum = sha256(&files.join("tool.sh"));
    let server = serve(files, "127.0.0.1");
    let url = format!("http://{}/tool.sh", server.addr);
    let stack = |checksum: &str| {
        format!(
            "{}\n[component.app]\nfrom = \"{BASE}\"\nuser = \"root\"\ncopy = [\n  {{ url = \"{url}\",\n    checksum = \"{checksum}\",\n    dst = \"/opt/tool.sh\", mode = \"0755\" }},\n  {{ url = \"{url}\", checksum = \"{sum}\", dst = \"/opt/downloads/\" }},\n]\n",
            stack_head("remote-http", "app")
        )
    };
    let image = tag("remote-http", "app");
    let dir = project("remote-http", stack(&sum));
    let (ok, log) = buildx(&dir, &["--load", "-t", &image]);
    assert!(ok, "{log}");
    assert!(
        server.asked("/tool.sh"),
        "the file was downloaded from the loopback server"
    );
    assert_eq!(
        run_in(&image, "/opt/tool.sh", &[]).trim(),
        format!("remote {}", run_id())
    );
    assert_eq!(
        run_in(&image, "stat", &["-c", "%a %U", "/opt/tool.sh"]).trim(),
        "755 root"
    );
    assert_eq!(
        run_in(&image, "cat", &["/opt/downloads/tool.sh"]),
        payload,
        "a `dst` ending in `/` keeps the URL's file name"
    );

    // The server now serves other bytes than the stack pins: the build fails at the copy.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let text = stack(&wrong);
    std::fs::write(dir.join("strata.toml"), &text).expect("write");
    let (ok, log) = buildx(&dir, &["-t", &format!("{image}-wrong")]);
    assert!(!ok, "a wrong checksum must fail the build:\n{log}");
    assert!(
        log.contains("digest mismatch") || log.contains("checksum"),
        "the error says the checksum does not match:\n{log}"
    );
    assert_located(&log, &text, "{ url =");
    remove_images(&[image]);
}

/// `git ARGS` in `dir`, with a fixed identity; its stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Strata Test",
            "-c",
            "user.email=test@strata.local",
        ])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {}: {}",
        args.join(" "),
        lossy(&out.stderr)
    );
    lossy(&out.stdout).trim().to_owned()
}

/// `git daemon` serving `base` on the loopback; killed when dropped.
struct GitDaemon {
    child: Child,
    port: u16,
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn git_daemon(base: &Path) -> GitDaemon {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    // git-daemon itself, not the `git daemon` wrapper: the wrapper runs it
    // as a child that killing the wrapper would leave running.
    let exec_path = Command::new("git")
        .arg("--exec-path")
        .output()
        .expect("git --exec-path (the `git` package)");
    let exec_path = lossy(&exec_path.stdout).trim().to_owned();
    let child = Command::new(Path::new(&exec_path).join("git-daemon"))
        .arg("--export-all")
        .arg("--reuseaddr")
        .arg("--listen=127.0.0.1")
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(base)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start git daemon (the `git` package)");
    let daemon = GitDaemon { child, port };
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "git daemon did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    daemon
}

#[test]
fn a_git_copy_takes_the_tag_and_sources_and_lock_report_it() {
    frontend_image();
    let base = temp_dir("remote-git-repos");
    let repo = base.join("tools");
    std::fs::create_dir_all(repo.join("bin")).expect("mkdir");
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("bin/hello"), "tagged\n").expect("write");
    std::fs::write(repo.join("README"), "not copied\n").expect("write");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "v1"]);
    git(&repo, &["tag", "v1.0"]);
    let tagged = git(&repo, &["rev-parse", "v1.0^{commit}"]);
    // The branch moves on: the build must still copy the tag's files.
    std::fs::write(repo.join("bin/hello"), "moved\n").expect("write");
    git(&repo, &["commit", "-q", "-am", "after the tag"]);
    let daemon = git_daemon(&base);
    let remote = format!("git://127.0.0.1:{}/tools", daemon.port);
    let text = format!(
        "{}\n[component.app]\nfrom = \"{BASE}\"\nuser = \"root\"\ncopy = [\n  {{ git = \"{remote}\", tag = \"v1.0\", src = \"bin\", dst = \"/opt/tools\" }},\n  {{ git = \"{remote}\", commit = \"{tagged}\", src = \"bin/hello\", dst = \"/opt/by-commit/hello\" }},\n]\n",
        stack_head("remote-git", "app")
    );
    let dir = project("remote-git", &text);
    let image = tag("remote-git", "app");
    let (ok, log) = buildx(&dir, &["--load", "-t", &image]);
    assert!(ok, "{log}");
    assert_eq!(
        run_in(&image, "cat", &["/opt/tools/hello"]).trim(),
        "tagged"
    );
    assert_eq!(
        run_in(&image, "ls", &["/opt/tools"]).trim(),
        "hello",
        "only `src` is copied, without .git or the rest of the repository"
    );

    let file = dir.join("strata.toml");
    let file = file.to_str().expect("utf-8 path");
    let out = strata_ok(&["sources", file, "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("sources JSON");
    let git_row = doc["remote"]
        .as_array()
        .and_then(|r| r.iter().find(|s| s["kind"] == "git"))
        .unwrap_or_else(|| panic!("no git source in {doc:#}"));
    assert_eq!(git_row["location"], remote.as_str());
    assert_eq!(git_row["git_ref"]["kind"], "tag");
    assert_eq!(git_row["git_ref"]["name"], "v1.0");
    assert_eq!(git_row["used_by"][0], "app");

    let lock = dir.join("strata.lock");
    let out = strata(&["lock", file]);
    assert!(out.status.success(), "strata lock: {}", lossy(&out.stderr));
    let written: toml::Table =
        toml::from_str(&std::fs::read_to_string(&lock).expect("strata.lock")).expect("lock TOML");
    assert_eq!(
        written["git"][&format!("{remote}#v1.0")].as_str(),
        Some(tagged.as_str()),
        "the lock records the commit the tag is at: {written:#?}"
    );
    let out = strata_ok(&["sources", file]);
    assert!(
        lossy(&out.stdout).contains(&format!("tag v1.0; locked commit {tagged}")),
        "{}",
        lossy(&out.stdout)
    );
    remove_images(&[image]);
}

#[test]
fn a_pip_step_installs_from_a_simple_index_and_the_step_overrides_packages() {
    frontend_image();
    let bridge = bridge_address();
    let index = temp_dir("remote-pypi-index");
    let wheel = vendored("wheels", "six-1.16.0-");
    let name = wheel
        .file_name()
        .and_then(|n| n.to_str())
        .expect("wheel name")
        .to_owned();
    std::fs::create_dir_all(index.join("packages")).expect("mkdir");
    std::fs::create_dir_all(index.join("simple/six")).expect("mkdir");
    std::fs::copy(&wheel, index.join("packages").join(&name)).expect("copy the wheel");
    std::fs::write(
        index.join("simple/index.html"),
        "<html><body><a href=\"six/\">six</a></body></html>\n",
    )
    .expect("write");
    std::fs::write(
        index.join("simple/six/index.html"),
        format!("<html><body><a href=\"../../packages/{name}\">{name}</a></body></html>\n"),
    )
    .expect("write");
    let server = serve(index, &bridge);
    let text = format!(
        "{}\n[packages]\n# Not served: the step's own index replaces it.\nindex-url = \"http://{bridge}:9/nothing/simple/\"\n\n[component.api]\nfrom = \"{BASE}\"\nuser = \"root\"\npip = {{ packages = [\"six==1.16.0\"], index-url = \"http://{addr}/simple/\", trusted-host = [\"{addr}\"] }}\n",
        stack_head("remote-pypi", "api"),
        addr = server.addr
    );
    let dir = project("remote-pypi", &text);
    let image = tag("remote-pypi", "api");
    let (ok, log) = buildx(&dir, &["--load", "-t", &image]);
    assert!(ok, "{log}");
    assert!(server.asked("/simple/six/"), "pip read the index");
    assert_eq!(
        run_in(
            &image,
            "/opt/venv/bin/python",
            &["-c", "import six; print(six.__version__)"]
        )
        .trim(),
        "1.16.0"
    );
    remove_images(&[image]);
}

#[test]
fn an_apt_step_installs_from_a_mirror() {
    frontend_image();
    let bridge = bridge_address();
    let root_dir = temp_dir("remote-apt-mirror");
    let mirror = root_dir.join("debian");
    let deb = vendored("apt", "tini_");
    let pool = mirror.join("pool/main");
    let lists = mirror.join("dists/bookworm/main/binary-amd64");
    std::fs::create_dir_all(&pool).expect("mkdir");
    std::fs::create_dir_all(&lists).expect("mkdir");
    std::fs::copy(&deb, pool.join(deb.file_name().expect("name"))).expect("copy the .deb");
    let scan = Command::new("dpkg-scanpackages")
        .current_dir(&mirror)
        .args(["--multiversion", "pool", "/dev/null"])
        .stderr(Stdio::null())
        .output()
        .expect("run dpkg-scanpackages (dpkg-dev)");
    assert!(scan.status.success(), "dpkg-scanpackages");
    std::fs::write(lists.join("Packages"), &scan.stdout).expect("write Packages");
    let sum = sha256(&lists.join("Packages"));
    let date = lossy(
        &Command::new("date")
            .args(["-u", "-R"])
            .output()
            .expect("date")
            .stdout,
    );
    std::fs::write(
        mirror.join("dists/bookworm/Release"),
        format!(
            "Suite: bookworm\nCodename: bookworm\nDate: {}\nArchitectures: amd64\nComponents: main\nSHA256:\n {} {} main/binary-amd64/Packages\n",
            date.trim(),
            sum.trim_start_matches("sha256:"),
            scan.stdout.len()
        ),
    )
    .expect("write Release");
    let server = serve(root_dir, &bridge);
    let text = format!(
        "{}\n[component.runtime]\nfrom = \"{BASE}\"\nuser = \"root\"\napt = {{ packages = [\"tini\"], mirror = {{ url = \"http://{}/debian\", suite = \"bookworm\", trusted = true }} }}\n",
        stack_head("remote-apt", "runtime"),
        server.addr
    );
    let dir = project("remote-apt", &text);
    let image = tag("remote-apt", "runtime");
    let (ok, log) = buildx(&dir, &["--load", "-t", &image]);
    assert!(ok, "{log}");
    assert!(
        server.asked("/debian/dists/bookworm/main/binary-amd64/Packages"),
        "apt read the mirror's index"
    );
    assert!(
        run_in(&image, "tini", &["--version"]).contains("0.19.0"),
        "tini from the mirror is installed"
    );
    let lists = run_in(
        &image,
        "sh",
        &["-c", "ls /var/lib/apt/lists | grep -c Packages || true"],
    );
    assert_eq!(lists.trim(), "0", "no package lists stay in the image");
    remove_images(&[image]);
}

#[test]
fn a_conda_step_reads_a_local_channel_offline() {
    let text = "[stack]\nname = \"conda-offline\"\ndefault = \"ds\"\n\n[packages]\nconda-channel-dir = \"vendor/conda\"\n\n[component.ds]\nfrom = \"strata.local/micromamba:stand-in\"\nuser = \"root\"\nconda = [{ env = \"py\", packages = [\"python=3.11\"], channels = [\"conda-forge\"] }]\n";
    let dir = project("conda-offline", text);
    let channel = dir.join("vendor/conda/noarch");
    std::fs::create_dir_all(&channel).expect("mkdir");
    std::fs::write(channel.join("repodata.json"), "{\"packages\": {}}\n").expect("write");
    let file = dir.join("strata.toml");
    let out = strata_ok(&["llb", file.to_str().expect("utf-8"), "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("llb JSON");
    let ops = doc["definition"]["ops"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let exec = ops
        .iter()
        .map(|o| &o["exec"])
        .find(|e| e["args"].to_string().contains("create -y -n py"))
        .unwrap_or_else(|| panic!("no conda exec in {doc:#}"));
    let script = exec["args"][2].as_str().expect("the script");
    assert!(
        script.contains(
            "create -y -n py --override-channels -c file:///run/strata/conda-channel python=3.11"
        ),
        "{script}"
    );
    assert!(
        !script.contains("conda-forge"),
        "the local channel replaces the named ones: {script}"
    );
    assert_eq!(exec["network"], "none", "{exec:#}");
    let mount = exec["mounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["dest"] == "/run/strata/conda-channel"))
        .unwrap_or_else(|| panic!("no channel mount in {exec:#}"));
    assert_eq!(mount["type"], "bind");
    assert_eq!(mount["readonly"], true);
    assert_eq!(mount["selector"], "/vendor/conda");
}
