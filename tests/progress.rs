//! Progress of long commands on stderr, on the real engine: `strata bundle`
//! and `strata lock` with `--progress plain|tty|quiet|auto`. stdout holds
//! the data and nothing else in every mode.

mod common;

use common::{
    image_id, lossy, path_str, project, remove_images, require_engine, run_id, strata_ok, BUSYBOX,
};

/// Removes the images it names when dropped, even when a test panics.
struct Images(Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        remove_images(&self.0);
    }
}

/// The lines of `stderr` that start with `prefix`.
fn lines_with<'a>(stderr: &'a str, prefix: &str) -> Vec<&'a str> {
    stderr.lines().filter(|l| l.starts_with(prefix)).collect()
}

#[test]
fn bundle_progress_goes_to_stderr_in_every_mode_and_stdout_keeps_the_data() {
    require_engine();
    let tags: Vec<String> = ["one", "two"]
        .iter()
        .map(|c| format!("strata-progress-{}/{c}:1", run_id()))
        .collect();
    let _images = Images(tags.clone());
    // `strata bundle` builds the stack first: the images are the stack's.
    let stack = format!(
        "[stack]\nname = \"progress\"\nimage = \"strata-progress-{}/{{component}}:1\"\n\n\
         [component.one]\nfrom = \"{BUSYBOX}\"\nuser = \"root\"\n\
         run = [\"head -c 3000000 /dev/urandom > /one\"]\n\n\
         [component.two]\nfrom = \"{BUSYBOX}\"\nuser = \"root\"\nrun = [\"echo two > /two\"]\n",
        run_id()
    );
    let dir = project("progress-bundle", &stack);
    let file = dir.join("strata.toml");
    let archive = dir.join("stack.tar.gz");
    let data = || -> String {
        tags.iter()
            .map(|t| format!("{t}\t{}\n", image_id(t).expect("built")))
            .collect()
    };
    let bundle = |mode: &str| {
        let out = strata_ok(&[
            "bundle",
            path_str(&file),
            "-o",
            path_str(&archive),
            "--progress",
            mode,
        ]);
        assert_eq!(lossy(&out.stdout), data(), "stdout with --progress {mode}");
        let err = lossy(&out.stderr);
        assert!(
            err.contains("strata: wrote "),
            "the summary prints with --progress {mode}: {err}"
        );
        err
    };

    // plain: one line per blob (image config or layer) copied, numbered, with
    // the images whole so far, bytes and a rate; no control characters.
    let err = bundle("plain");
    let lines = lines_with(&err, "bundle: ");
    let blobs = lines.len();
    assert!(
        blobs >= 4,
        "a config and a layer of each image at least: {err}"
    );
    let mut whole = 0;
    for (i, line) in lines.iter().enumerate() {
        let rest = line
            .strip_prefix(&format!("bundle: {}/{blobs} blobs, ", i + 1))
            .unwrap_or_else(|| panic!("`{line}` in {err}"));
        let parts: Vec<&str> = rest.split(", ").collect();
        let [images, bytes, rate] = parts[..] else {
            panic!("`{line}`: blobs, images, bytes, rate")
        };
        let now: usize = images
            .strip_suffix("/2 images")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("`{line}`"));
        assert!(now >= whole, "images whole never go down: {err}");
        whole = now;
        assert!(bytes.ends_with("B"), "{line}");
        assert!(rate.ends_with("B/s"), "{line}");
    }
    assert_eq!(whole, 2, "{err}");
    assert!(
        lines[blobs - 1].contains(" MiB, "),
        "the images hold > 3 MB: {err}"
    );
    assert!(!err.contains(['\r', '\x1b']), "{err:?}");

    // auto, with stderr not a terminal, is plain.
    assert_eq!(lines_with(&bundle("auto"), "bundle: ").len(), blobs);

    // quiet: no progress at all.
    let err = bundle("quiet");
    assert!(lines_with(&err, "bundle: ").is_empty(), "{err}");

    // tty: a live line redrawn in place, cleared before the summary.
    let err = bundle("tty");
    assert!(
        err.contains(&format!("\rbundle: 0/{blobs} blobs, 0/2 images, "))
            && err.contains(&format!("\rbundle: {blobs}/{blobs} blobs, 2/2 images, ")),
        "{err:?}"
    );
    assert!(err.contains("\r\x1b[Kstrata: wrote "), "{err:?}");
    assert!(!err.contains("\nbundle: "), "no plain lines: {err:?}");

    // verify: a live line of the bytes read on a terminal, nothing in plain.
    let verify = |mode: &str| {
        let out = strata_ok(&["bundle", "verify", path_str(&archive), "--progress", mode]);
        assert_eq!(
            lossy(&out.stdout),
            data(),
            "verify stdout with --progress {mode}"
        );
        lossy(&out.stderr)
    };
    let size = std::fs::metadata(&archive).expect("the bundle").len();
    let err = verify("tty");
    let of = format!(" of {:.1} MiB", size as f64 / f64::from(1 << 20));
    assert!(
        err.contains("\rverify: ") && err.contains(&of),
        "{err:?} {of}"
    );
    assert!(
        err.contains("\r\x1b[Kstrata: "),
        "cleared before the summary: {err:?}"
    );
    let err = verify("plain");
    assert!(!err.contains("verify: ") && !err.contains('\r'), "{err:?}");
}

#[test]
fn lock_progress_modes_keep_stdout_empty_and_quiet_keeps_only_the_summary() {
    require_engine();
    let stack = format!(
        "[stack]\nname = \"progress-lock\"\nimage = \"strata-progress-lock/{{component}}:1\"\n\n\
         [component.one]\nfrom = \"{BUSYBOX}\"\n"
    );
    let dir = project("progress-lock", &stack);
    let file = dir.join("strata.toml");
    let lock = dir.join("out.lock");
    let run = |mode: &str| {
        let out = strata_ok(&[
            "lock",
            path_str(&file),
            "-o",
            path_str(&lock),
            "--progress",
            mode,
        ]);
        assert_eq!(lossy(&out.stdout), "", "stdout with --progress {mode}");
        let err = lossy(&out.stderr);
        assert!(err.contains("strata: wrote "), "{err}");
        err
    };
    let source = format!("{BUSYBOX}: ");
    let err = run("plain");
    assert_eq!(lines_with(&err, &source).len(), 1, "{err}");
    assert!(!err.contains(['\r', '\x1b']), "{err:?}");
    let err = run("quiet");
    assert!(lines_with(&err, &source).is_empty(), "{err}");
    let err = run("tty");
    assert!(err.contains(&format!("\r\x1b[K{source}")), "{err:?}");
    assert!(err.contains("\rlock: 1/1 sources, "), "{err:?}");
}
