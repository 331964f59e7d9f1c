//! `strata bundle verify` against tampered bundles: a real bundle of two
//! small images, changed the way someone who rewrites the archive (and its
//! `strata-bundle.json`) would change it so `docker load` loads something
//! else. Each variant must fail with exit code 1, naming the member.
//!
//! A bundle of two platforms (from the multi-platform dockerd, the
//! containerd image store) verifies, loads with both platforms, and is
//! rejected when a platform's manifest is swapped or missing.
//!
//! Needs the engine (`scripts/engine.sh`) and its `strata.local/busybox:1.36`
//! base, and its multi-platform dockerd with the registry's
//! `127.0.0.1:5000/strata/busybox:1.36` index; the images built are removed
//! once the bundles are written.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{docker, lossy, require_engine, run_id, strata_ok, temp_dir};
use sha2::{Digest, Sha256};

const STRATA: &str = env!("CARGO_BIN_EXE_strata");

fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Removes the images it names when dropped, even when a test panics.
struct Images(Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        for t in &self.0 {
            let _ = docker(&["rmi", "--no-prune", t]);
        }
    }
}

/// The untampered bundle: its directory, its tar (uncompressed) and the two images' tags.
struct Fixture {
    dir: PathBuf,
    tar: Vec<u8>,
    tags: [String; 2],
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        require_engine();
        let dir = temp_dir("secbundle");
        let tags = ["one", "two"].map(|c| format!("secbundle-{}/{c}:1", run_id()));
        let images = Images(tags.to_vec());
        for (c, tag) in ["one", "two"].iter().zip(&images.0) {
            let dockerfile = format!("FROM strata.local/busybox:1.36\nRUN echo {c} > /{c}\n");
            let mut child = Command::new("docker")
                .args(["build", "-q", "-t", tag, "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("docker build runs");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(dockerfile.as_bytes())
                .expect("write the Dockerfile");
            let out = child.wait_with_output().expect("docker build");
            assert!(
                out.status.success(),
                "docker build (is strata.local/busybox:1.36 there? run scripts/engine.sh):\n{}",
                lossy(&out.stderr)
            );
        }
        let stack = format!(
            "[stack]\nname = \"secbundle\"\nimage = \"secbundle-{}/{{component}}:1\"\n\n\
             [component.one]\nfrom = \"strata.local/busybox:1.36\"\nuser = \"root\"\nrun = [{{ cmd = \"echo one > /one\", network = \"none\" }}]\n\n\
             [component.two]\nfrom = \"strata.local/busybox:1.36\"\nuser = \"root\"\nrun = [{{ cmd = \"echo two > /two\", network = \"none\" }}]\n",
            run_id()
        );
        let file = dir.join("strata.toml");
        std::fs::write(&file, stack).expect("stack file");
        let archive = dir.join("stack.tar.gz");
        strata_ok(&[
            "bundle",
            file.to_str().expect("a UTF-8 path"),
            "-o",
            archive.to_str().expect("a UTF-8 path"),
        ]);
        drop(images);
        let mut tar = Vec::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&archive).expect("bundle"))
            .read_to_end(&mut tar)
            .expect("gunzip");
        Fixture { dir, tar, tags }
    })
}

/// One member: its header and content.
#[derive(Clone)]
struct Entry {
    header: tar::Header,
    data: Vec<u8>,
}

impl Entry {
    fn name(&self) -> String {
        lossy(&self.header.path_bytes())
    }
}

fn entries(tar: &[u8]) -> Vec<Entry> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .expect("entries")
        .map(|e| {
            let mut e = e.expect("entry");
            let header = e.header().clone();
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("content");
            Entry { header, data }
        })
        .collect()
}

fn regular(name: &str, data: &[u8]) -> Entry {
    let mut header = tar::Header::new_ustar();
    // Written as given: `set_path` would drop a leading `./`.
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    Entry {
        header,
        data: data.to_vec(),
    }
}

fn link(kind: tar::EntryType, name: &str, target: &str) -> Entry {
    let mut header = tar::Header::new_ustar();
    header.set_path(name).expect("name");
    header.set_link_name(target).expect("target");
    header.set_size(0);
    header.set_mode(0o644);
    header.set_entry_type(kind);
    header.set_cksum();
    Entry {
        header,
        data: Vec::new(),
    }
}

fn write_tar(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        b.append(&e.header, e.data.as_slice()).expect("append");
    }
    b.into_inner().expect("tar")
}

fn json_of(entries: &[Entry], name: &str) -> serde_json::Value {
    let e = entries.iter().find(|e| e.name() == name).expect(name);
    serde_json::from_slice(&e.data).expect("json")
}

fn set_json(entries: &mut [Entry], name: &str, v: &serde_json::Value) {
    let e = entries.iter_mut().find(|e| e.name() == name).expect(name);
    *e = regular(name, &serde_json::to_vec(v).expect("json"));
}

/// Rewrites `strata-bundle.json`'s member list from the members themselves,
/// as someone who rewrites the archive would.
fn relist(entries: &mut [Entry]) {
    let members: Vec<serde_json::Value> = entries
        .iter()
        .filter(|e| e.header.entry_type().is_file() && e.name() != "strata-bundle.json")
        .map(|e| {
            serde_json::json!({ "path": e.name(), "size": e.data.len(), "sha256": sha256(&e.data) })
        })
        .collect();
    let mut b = json_of(entries, "strata-bundle.json");
    b["members"] = members.into();
    set_json(entries, "strata-bundle.json", &b);
}

/// The `manifest.json` entry of a tag.
fn manifest_entry<'v>(manifest: &'v serde_json::Value, tag: &str) -> &'v serde_json::Value {
    manifest
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["RepoTags"][0] == tag)
        .expect("entry of the tag")
}

fn verify(path: &Path, limit_memory: bool) -> Output {
    let mut cmd = if limit_memory {
        let mut c = Command::new("prlimit");
        c.arg(format!("--as={}", 512u64 << 20))
            .arg("--")
            .arg(STRATA);
        c
    } else {
        Command::new(STRATA)
    };
    cmd.args(["bundle", "verify"])
        .arg(path)
        .output()
        .expect("strata runs")
}

/// The config members of the fixture's two images.
fn configs(f: &Fixture) -> (String, String) {
    let manifest = json_of(&entries(&f.tar), "manifest.json");
    let config = |t: &str| {
        manifest_entry(&manifest, t)["Config"]
            .as_str()
            .expect("config")
            .to_owned()
    };
    (config(&f.tags[0]), config(&f.tags[1]))
}

/// The fixture's bundle with the member `name` replaced by a link to `target`.
fn replaced_by_link(f: &Fixture, kind: tar::EntryType, name: &str, target: &str) -> Vec<u8> {
    let mut e = entries(&f.tar);
    let at = e.iter().position(|x| x.name() == name).expect("the member");
    e[at] = link(kind, name, target);
    relist(&mut e);
    write_tar(&e)
}

/// Writes the variant, verifies it: exit code 1 and an error with every one of `needles`.
fn rejected(name: &str, tar: &[u8], needles: &[&str]) -> String {
    rejected_in(&fixture().dir, name, tar, needles)
}

/// [`rejected`], the variant written in `dir`.
fn rejected_in(dir: &Path, name: &str, tar: &[u8], needles: &[&str]) -> String {
    let path = dir.join(format!("{name}.tar"));
    std::fs::write(&path, tar).expect("write the variant");
    let out = verify(&path, false);
    let err = lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{name}: verify should fail:\n{err}"
    );
    assert!(
        out.stdout.is_empty(),
        "{name}: verify printed ids:\n{}",
        lossy(&out.stdout)
    );
    for n in needles {
        assert!(
            err.contains(n),
            "{name}: the error should contain `{n}`:\n{err}"
        );
    }
    err
}

#[test]
fn the_untampered_bundle_verifies_and_lists_the_ids_of_manifest_json() {
    let f = fixture();
    let path = f.dir.join("untampered.tar");
    std::fs::write(&path, write_tar(&entries(&f.tar))).expect("write");
    let out = verify(&path, true);
    assert!(out.status.success(), "{}", lossy(&out.stderr));
    let manifest = json_of(&entries(&f.tar), "manifest.json");
    for tag in &f.tags {
        let config = manifest_entry(&manifest, tag)["Config"]
            .as_str()
            .expect("config");
        let id = format!("sha256:{}", config.trim_start_matches("blobs/sha256/"));
        assert!(
            lossy(&out.stdout).contains(&format!("{tag}\t{id}")),
            "{}",
            lossy(&out.stdout)
        );
    }
}

#[test]
fn an_appended_duplicate_member_is_rejected() {
    let f = fixture();
    let mut e = entries(&f.tar);
    let mut manifest = json_of(&e, "manifest.json");
    manifest[0]["RepoTags"] = serde_json::json!([]);
    e.push(regular(
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("json"),
    ));
    rejected(
        "duplicate",
        &write_tar(&e),
        &["member `manifest.json` is a second `manifest.json`"],
    );

    let mut e = entries(&f.tar);
    e.push(regular(
        "./manifest.json",
        &serde_json::to_vec(&manifest).expect("json"),
    ));
    rejected(
        "duplicate-dot",
        &write_tar(&e),
        &["member `./manifest.json` is a second `manifest.json`"],
    );
}

#[test]
fn hard_links_are_rejected() {
    let f = fixture();
    let (one, two) = configs(f);

    // Appended after the real member, so docker load would take image two's config for one.
    let mut e = entries(&f.tar);
    e.push(link(tar::EntryType::Link, &one, &two));
    rejected(
        "hardlink-appended",
        &write_tar(&e),
        &[&format!("member `{one}`")],
    );

    // In place of the real member.
    rejected(
        "hardlink",
        &replaced_by_link(f, tar::EntryType::Link, &one, &two),
        &[&format!("member `{one}` is a hard link to `{two}`")],
    );
}

#[test]
fn symbolic_links_are_rejected() {
    let f = fixture();
    let (one, two) = configs(f);
    let target = format!("../../{two}");
    rejected(
        "symlink",
        &replaced_by_link(f, tar::EntryType::Symlink, &one, &target),
        &[&format!("member `{one}` is a symbolic link")],
    );
}

#[test]
fn manifest_json_giving_a_tag_another_config_is_rejected() {
    let f = fixture();
    let mut e = entries(&f.tar);
    let mut manifest = json_of(&e, "manifest.json");
    let two = manifest_entry(&manifest, &f.tags[1]).clone();
    for entry in manifest.as_array_mut().expect("list") {
        if entry["RepoTags"][0] == f.tags[0].as_str() {
            entry["Config"] = two["Config"].clone();
            entry["Layers"] = two["Layers"].clone();
            entry["LayerSources"] = two["LayerSources"].clone();
        }
    }
    set_json(&mut e, "manifest.json", &manifest);
    relist(&mut e);
    rejected(
        "manifest-config",
        &write_tar(&e),
        &[
            &format!("gives {} the id", f.tags[0]),
            "but docker load gives it",
            "manifest.json",
        ],
    );
}

#[test]
fn a_modified_layer_is_rejected_even_under_its_new_digest() {
    let f = fixture();
    let mut e = entries(&f.tar);
    let mut manifest = json_of(&e, "manifest.json");
    let layer = manifest_entry(&manifest, &f.tags[0])["Layers"][1]
        .as_str()
        .expect("layer")
        .to_owned();
    let at = e
        .iter()
        .position(|x| x.name() == layer)
        .expect("layer member");
    let mut data = e[at].data.clone();
    data[600] ^= 0x01;

    // Under its old name: the blob no longer hashes to its name.
    let mut same = e.clone();
    same[at] = regular(&layer, &data);
    relist(&mut same);
    rejected(
        "layer-in-place",
        &write_tar(&same),
        &[&format!("member `{layer}` is corrupt")],
    );

    // Under its new digest, manifest.json pointing at it: the config's diff_ids disagree.
    let renamed = format!("blobs/sha256/{}", sha256(&data));
    e[at] = regular(&renamed, &data);
    for entry in manifest.as_array_mut().expect("list") {
        for l in entry["Layers"].as_array_mut().expect("layers") {
            if *l == layer.as_str() {
                *l = renamed.clone().into();
            }
        }
    }
    set_json(&mut e, "manifest.json", &manifest);
    relist(&mut e);
    rejected(
        "layer-renamed",
        &write_tar(&e),
        &[
            "member `manifest.json`",
            &format!("(member `{renamed}`) has sha256"),
            "expects",
        ],
    );
}

#[test]
fn a_config_that_does_not_hash_to_its_name_is_rejected() {
    let f = fixture();
    let mut e = entries(&f.tar);
    let manifest = json_of(&e, "manifest.json");
    let config = manifest_entry(&manifest, &f.tags[0])["Config"]
        .as_str()
        .expect("config")
        .to_owned();
    let mut c = json_of(&e, &config);
    c["config"]["Env"] = serde_json::json!(["PATH=/tmp/evil:/bin"]);
    set_json(&mut e, &config, &c);
    relist(&mut e);
    rejected(
        "config",
        &write_tar(&e),
        &[&format!(
            "member `{config}` is corrupt: its content has sha256"
        )],
    );
}

#[test]
fn strata_bundle_json_listing_ids_or_tags_manifest_json_does_not_give_is_rejected() {
    let f = fixture();
    let mut e = entries(&f.tar);
    let mut b = json_of(&e, "strata-bundle.json");
    let forged = format!("sha256:{}", "0".repeat(64));
    b["images"][0]["id"] = forged.clone().into();
    set_json(&mut e, "strata-bundle.json", &b);
    rejected(
        "bundle-id",
        &write_tar(&e),
        &[&format!(
            "strata-bundle.json gives {} the id {forged}",
            b["images"][0]["image"].as_str().expect("tag")
        )],
    );

    let mut e = entries(&f.tar);
    let mut b = json_of(&e, "strata-bundle.json");
    let extra = format!("secbundle-{}/three:1", run_id());
    b["images"].as_array_mut().expect("images").push(
        serde_json::json!({ "kind": "component", "name": "three", "image": extra, "id": forged }),
    );
    set_json(&mut e, "strata-bundle.json", &b);
    rejected(
        "bundle-extra",
        &write_tar(&e),
        &[&format!("manifest.json does not tag {extra}")],
    );

    // And the other way: manifest.json tags an image strata-bundle.json does not list.
    let mut e = entries(&f.tar);
    let mut b = json_of(&e, "strata-bundle.json");
    b["images"].as_array_mut().expect("images").remove(1);
    set_json(&mut e, "strata-bundle.json", &b);
    rejected(
        "bundle-missing",
        &write_tar(&e),
        &[
            &format!("manifest.json tags {}", f.tags[1]),
            "does not list",
        ],
    );
}

#[test]
fn a_huge_long_name_header_fails_fast_in_bounded_memory() {
    let f = fixture();
    let path = f.dir.join("longname.tar.zst");
    let size: u64 = 2 << 30;
    let mut header = tar::Header::new_gnu();
    header.as_gnu_mut().expect("gnu").name[..13].copy_from_slice(b"././@LongLink");
    header.set_size(size);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::GNULongName);
    header.set_cksum();
    let mut z = zstd::Encoder::new(std::fs::File::create(&path).expect("create"), 1).expect("zstd");
    z.write_all(header.as_bytes()).expect("write");
    let zeros = vec![b'a'; 1 << 20];
    for _ in 0..(size >> 20) {
        z.write_all(&zeros).expect("write");
    }
    z.finish().expect("finish");
    assert!(std::fs::metadata(&path).expect("file").len() < 1 << 20);

    let started = Instant::now();
    let out = verify(&path, true);
    let err = lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("its GNU long name header is {size} bytes")),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_truncated_archive_is_rejected_naming_the_member() {
    let f = fixture();
    let e = entries(&f.tar);
    let tar = write_tar(&e);
    // Cut inside the largest member's content.
    let big = e.iter().max_by_key(|x| x.data.len()).expect("a member");
    let name = big.name();
    let start = tar
        .windows(name.len())
        .position(|w| w == name.as_bytes())
        .expect("its header")
        + 512;
    rejected(
        "truncated",
        &tar[..start + big.data.len() / 2],
        &[&format!("member `{name}` is corrupt or truncated")],
    );
}

/// A bundle of two platforms: its directory, its file, its tar
/// (uncompressed) and its tags: a component on amd64 and arm64, one on
/// amd64 only, and two third-party images with attestation manifests, one
/// in the engine, one pulled from the registry for each platform.
struct MpFixture {
    dir: PathBuf,
    file: PathBuf,
    tar: Vec<u8>,
    both: String,
    amd64: String,
    attested: String,
    pulled: String,
}

fn mp_fixture() -> &'static MpFixture {
    static F: OnceLock<MpFixture> = OnceLock::new();
    F.get_or_init(|| {
        require_engine();
        let _engine = common::mp_lock();
        let dir = temp_dir("mpbundle");
        let run = run_id();
        let attested = format!("strata-test/mpbundle-attested:{run}");
        // What `docker buildx build` makes by default: an index with a
        // provenance attestation manifest per platform.
        std::fs::write(
            dir.join("Dockerfile"),
            "FROM 127.0.0.1:5000/strata/busybox:1.36\nRUN uname -m > /arch\n",
        )
        .expect("Dockerfile");
        let pulled = format!("127.0.0.1:5000/strata-test/mpbundle-pulled:{run}");
        let registry = format!("type=registry,name={pulled}");
        for output in [&format!("type=image,name={attested}"), &registry] {
            let out = Command::new("docker")
                .env("DOCKER_HOST", common::mp_host())
                .current_dir(&dir)
                .args(["buildx", "build", "-q", "--provenance=mode=min"])
                .args(["--platform", "linux/amd64,linux/arm64", "--output", output, "."])
                .output()
                .expect("docker buildx build");
            assert!(out.status.success(), "{}", lossy(&out.stderr));
        }
        // Only in the registry: the bundle pulls it for each platform.
        let _ = common::mp_docker(&["rmi", &pulled]);
        let stack = format!(
            "[stack]\nname = \"mpbundle\"\nimage = \"strata-test/mpbundle-{{component}}:{run}\"\n\n\
             [component.both]\nfrom = \"127.0.0.1:5000/strata/busybox:1.36\"\nuser = \"root\"\n\
             run = [{{ cmd = \"uname -m > /built-on\", network = \"none\" }}]\n\n\
             [component.amd64]\nfrom = \"both\"\nuser = \"root\"\nwhen = \"TARGETARCH == 'amd64'\"\n\n\
             [third-party]\nattested = \"{attested}\"\npulled = \"{pulled}\"\n"
        );
        let stack_file = dir.join("strata.toml");
        std::fs::write(&stack_file, stack).expect("stack file");
        let file = dir.join("mp.tar.gz");
        let both = format!("strata-test/mpbundle-both:{run}");
        let amd64 = format!("strata-test/mpbundle-amd64:{run}");
        let images = [both.clone(), amd64.clone(), attested.clone(), pulled.clone()];
        strata_ok(&[
            "bundle",
            stack_file.to_str().expect("a UTF-8 path"),
            "--builder",
            &common::mp_host(),
            "--platform",
            "linux/amd64,linux/arm64",
            "--with-third-party",
            "--progress",
            "quiet",
            "-o",
            file.to_str().expect("a UTF-8 path"),
        ]);
        let mut rm = vec!["rmi"];
        rm.extend(images.iter().map(String::as_str));
        let _ = common::mp_docker(&rm);
        let mut tar = Vec::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&file).expect("bundle"))
            .read_to_end(&mut tar)
            .expect("gunzip");
        MpFixture {
            dir,
            file,
            tar,
            both,
            amd64,
            attested,
            pulled,
        }
    })
}

/// The `strata-bundle.json` entry of a tag.
fn bundle_image<'v>(bundle: &'v serde_json::Value, tag: &str) -> &'v serde_json::Value {
    bundle["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|i| i["image"] == tag)
        .unwrap_or_else(|| panic!("no {tag} in {bundle}"))
}

/// The blob member of a digest.
fn blob(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

#[test]
fn a_bundle_of_two_platforms_verifies_and_loads_each_platform_it_carries() {
    let f = mp_fixture();
    let _engine = common::mp_lock();
    let out = verify(&f.file, true);
    assert!(out.status.success(), "{}", lossy(&out.stderr));
    let b = json_of(&entries(&f.tar), "strata-bundle.json");
    let platforms = |tag: &str| bundle_image(&b, tag)["platforms"].clone();
    let both = serde_json::json!(["linux/amd64", "linux/arm64"]);
    assert_eq!(platforms(&f.both), both);
    assert_eq!(platforms(&f.amd64), serde_json::json!(["linux/amd64"]));
    // Attestation manifests are carried, and are not platforms.
    assert_eq!(platforms(&f.attested), both);
    assert_eq!(platforms(&f.pulled), both);
    let id = bundle_image(&b, &f.attested)["id"].as_str().expect("id");
    let index = json_of(&entries(&f.tar), &blob(id));
    let unknown = index["manifests"]
        .as_array()
        .expect("an index")
        .iter()
        .filter(|m| m["platform"]["os"] == "unknown")
        .count();
    assert_eq!(unknown, 2, "{index}");
    // Strata's own build asks BuildKit for no attestation: its index holds the platforms only.
    let id = bundle_image(&b, &f.both)["id"].as_str().expect("id");
    let index = json_of(&entries(&f.tar), &blob(id));
    assert_eq!(
        index["manifests"].as_array().map(Vec::len),
        Some(2),
        "{index}"
    );

    // Loaded where none of the images is: each platform runs, and the
    // amd64-only component has no arm64 image.
    let load = common::mp_docker(&["load", "-i", f.file.to_str().expect("a UTF-8 path")]);
    assert!(load.status.success(), "{}", lossy(&load.stderr));
    let run = |platform: &str, image: &str| {
        let out = common::mp_docker(&[
            "run",
            "--rm",
            "--pull",
            "never",
            "--network",
            "none",
            "--platform",
            platform,
            image,
            "uname",
            "-m",
        ]);
        out.status
            .success()
            .then(|| lossy(&out.stdout).trim().to_owned())
    };
    for (image, platform, machine) in [
        (&f.both, "linux/arm64", Some("aarch64")),
        (&f.both, "linux/amd64", Some("x86_64")),
        (&f.attested, "linux/arm64", Some("aarch64")),
        (&f.pulled, "linux/arm64", Some("aarch64")),
        (&f.pulled, "linux/amd64", Some("x86_64")),
        (&f.amd64, "linux/amd64", Some("x86_64")),
        (&f.amd64, "linux/arm64", None),
    ] {
        assert_eq!(
            run(platform, image).as_deref(),
            machine,
            "{image} on {platform}"
        );
    }
    for tag in [&f.both, &f.amd64, &f.attested, &f.pulled] {
        let got = common::mp_docker(&["image", "inspect", "-f", "{{.Id}}", tag]);
        assert_eq!(
            lossy(&got.stdout).trim(),
            bundle_image(&b, tag)["id"],
            "{tag}"
        );
    }
    let _ = common::mp_docker(&["rmi", &f.both, &f.amd64, &f.attested, &f.pulled]);
}

/// The digest of the `platform` manifest in the index of `tag`, and that index.
fn platform_manifest(e: &[Entry], tag: &str, arch: &str) -> (serde_json::Value, String) {
    let b = json_of(e, "strata-bundle.json");
    let id = bundle_image(&b, tag)["id"].as_str().expect("id");
    let index = json_of(e, &blob(id));
    let digest = index["manifests"]
        .as_array()
        .expect("an index")
        .iter()
        .find(|m| m["platform"]["architecture"] == arch)
        .and_then(|m| m["digest"].as_str())
        .expect("the platform's manifest")
        .to_owned();
    (index, digest)
}

#[test]
fn an_index_naming_a_missing_platform_manifest_is_rejected() {
    let f = mp_fixture();
    let mut e = entries(&f.tar);
    let (_, arm) = platform_manifest(&e, &f.both, "arm64");
    e.retain(|x| x.name() != blob(&arm));
    relist(&mut e);
    rejected_in(
        &f.dir,
        "mp-missing-manifest",
        &write_tar(&e),
        &[&format!(
            "records linux/amd64, linux/arm64 for {}, but the bundle holds linux/amd64 (its index names linux/arm64 too, whose manifests are missing)",
            f.both
        )],
    );
}

#[test]
fn a_replaced_platform_manifest_is_rejected() {
    let f = mp_fixture();
    // Its content changed under its name.
    let mut e = entries(&f.tar);
    let (mut index, arm) = platform_manifest(&e, &f.both, "arm64");
    let mut m = json_of(&e, &blob(&arm));
    m["layers"].as_array_mut().expect("layers").pop();
    set_json(&mut e, &blob(&arm), &m);
    relist(&mut e);
    rejected_in(
        &f.dir,
        "mp-manifest-in-place",
        &write_tar(&e),
        &[&format!("member `{}` is corrupt", blob(&arm))],
    );

    // The amd64 manifest named for arm64, in an index rewritten under its
    // new digest, with index.json and strata-bundle.json to match.
    let mut e = entries(&f.tar);
    let (_, amd) = platform_manifest(&e, &f.both, "amd64");
    let amd_size = e
        .iter()
        .find(|x| x.name() == blob(&amd))
        .expect("the amd64 manifest")
        .data
        .len();
    for d in index["manifests"].as_array_mut().expect("an index") {
        if d["digest"] == arm.as_str() {
            d["digest"] = amd.clone().into();
            d["size"] = amd_size.into();
        }
    }
    let data = serde_json::to_vec(&index).expect("json");
    let forged = format!("sha256:{}", sha256(&data));
    e.push(regular(&blob(&forged), &data));
    let mut top = json_of(&e, "index.json");
    for d in top["manifests"].as_array_mut().expect("index.json") {
        if d["annotations"]["io.containerd.image.name"]
            .as_str()
            .is_some_and(|n| n.ends_with(f.both.as_str()))
        {
            d["digest"] = forged.clone().into();
            d["size"] = data.len().into();
        }
    }
    set_json(&mut e, "index.json", &top);
    let mut b = json_of(&e, "strata-bundle.json");
    for i in b["images"].as_array_mut().expect("images") {
        if i["image"] == f.both.as_str() {
            i["id"] = forged.clone().into();
        }
    }
    set_json(&mut e, "strata-bundle.json", &b);
    relist(&mut e);
    rejected_in(
        &f.dir,
        "mp-manifest-swapped",
        &write_tar(&e),
        &["the index names it for linux/arm64", "is for linux/amd64"],
    );
}

#[test]
fn strata_bundle_json_recording_other_platforms_is_rejected() {
    let f = mp_fixture();
    let mut e = entries(&f.tar);
    let mut b = json_of(&e, "strata-bundle.json");
    for i in b["images"].as_array_mut().expect("images") {
        if i["image"] == f.both.as_str() {
            i["platforms"] = serde_json::json!(["linux/amd64"]);
        }
    }
    set_json(&mut e, "strata-bundle.json", &b);
    rejected_in(
        &f.dir,
        "mp-platforms",
        &write_tar(&e),
        &[&format!(
            "records linux/amd64 for {}, but the bundle holds linux/amd64, linux/arm64",
            f.both
        )],
    );
}
