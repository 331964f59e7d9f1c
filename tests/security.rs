//! Hostile input: build args, stack files and ignore files written by an
//! attacker (a branch name in CI, a contributed stack file) never become a
//! root account, a command, a forged progress line, a leaked file or a
//! hang. Each case is an attack, and it fails with
//! a located error, or is harmless.
//!
//! The stack-level cases run `strata check`/`strata llb` (no engine); the
//! cases that reach an image run through the real frontend with
//! `docker buildx build` (the engine and `strata/frontend:latest`, built
//! from this tree).

mod common;

use std::path::Path;
use std::process::Command;

use common::{buildx, frontend_image, line_of, project, remove_images, run_in, strata, text};

/// The stack the hostile args are given to (tests/data/stacks/hostile.toml).
const STACK: &str = include_str!("data/stacks/hostile.toml");

/// `strata llb` of `target` with one hostile `--arg`: it must fail, print
/// nothing on stdout, and locate the error at `line` with `says`.
fn refused(target: &str, arg: &str, line: &str, says: &str) {
    let dir = project("security-refused", STACK);
    let file = dir.join("strata.toml");
    let out = strata(&[
        "llb",
        file.to_str().expect("utf-8 path"),
        "--target",
        target,
        "--arg",
        arg,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{arg:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{arg:?}: LLB was written");
    let at = format!("strata.toml:{}:", line_of(STACK, line));
    assert!(stderr.contains(&at), "{arg:?}: no `{at}` in\n{stderr}");
    assert!(stderr.contains(says), "{arg:?}: no {says:?} in\n{stderr}");
    // The error shows the value on one line: no forged lines.
    assert!(
        !stderr.lines().any(|l| l.starts_with("evil")),
        "{arg:?}: a value's line break reached the terminal\n{stderr}"
    );
}

#[test]
fn passwd_fields_from_args_never_add_a_record_or_a_field() {
    refused(
        "base",
        "who=x\nevil::0:0::/:/bin/sh",
        "home = ",
        "contains a line break",
    );
    refused("base", "who=a:b", "home = ", "contains `:`");
    refused(
        "base",
        "login=/bin/sh\nevil::0:0::/:/bin/sh",
        "shell = ",
        "contains a line break",
    );
    refused("base", "login=sh", "shell = ", "is not an absolute path");
}

#[test]
fn package_args_never_become_options() {
    refused(
        "apt",
        "extra=-oDPkg::Pre-Invoke::=touch /pwned",
        "steps = [{ apt",
        "starts with `-`",
    );
    refused(
        "apt",
        "extra=--allow-unauthenticated",
        "steps = [{ apt",
        "starts with `-`",
    );
    refused(
        "apt",
        "extra=tini curl",
        "steps = [{ apt",
        "is not a Debian package name",
    );
    refused(
        "pip",
        "req=--index-url=http://127.0.0.1:1/simple",
        "steps = [{ pip",
        "starts with `-`",
    );
    refused(
        "pip",
        "req=six\n--index-url=x",
        "steps = [{ pip",
        "contains a line break",
    );
    refused(
        "conda",
        "channel=--override-channels",
        "steps = [{ conda",
        "starts with `-`",
    );
}

#[test]
fn paths_from_args_hold_no_control_characters() {
    refused(
        "base",
        "dir=/srv\n#99 [verify] signature check: OK",
        "workdir = ",
        "contains a line break",
    );
    refused("base", "dir=/srv\u{1b}[2K", "workdir = ", "U+001B");
}

/// Runs `strata check` on `text` with a CPU-time and memory ceiling, so
/// that work that grows faster than the input fails instead of hanging.
fn check_bounded(name: &str, stack: &str) -> (Option<i32>, String) {
    let dir = project(&format!("security-{name}"), stack);
    let file = dir.join("strata.toml");
    let out = Command::new("prlimit")
        .args(["--cpu=60", "--as=2147483648", "--"])
        .arg(env!("CARGO_BIN_EXE_strata"))
        .arg("check")
        .arg(&file)
        .output()
        .expect("run prlimit (util-linux)");
    let _ = std::fs::remove_dir_all(&dir);
    (out.status.code(), text(&out))
}

#[test]
fn interpolation_output_is_bounded() {
    // A 1 MiB arg inserted 150,000 times would be 150 GB.
    let big = "a".repeat(1 << 20);
    let mut s = format!(
        "[stack]\nname = \"s\"\nimage = \"s/{{component}}:1\"\n[args]\nbig = \"{big}\"\nsmall = \"{}\"\n[component.base]\nfrom = \"debian:bookworm\"\n",
        "b".repeat(60 * 1024)
    );
    s.push_str("labels = { ");
    for i in 0..150_000 {
        s.push_str(&format!("l{i} = \"{{big}}\", "));
    }
    s.push_str("x = \"{big}\" }\n");
    let (code, out) = check_bounded("bomb", &s);
    assert_eq!(code, Some(1), "{}", &out[..out.len().min(2000)]);
    assert!(
        out.contains("longer than 64 KiB"),
        "{}",
        &out[..out.len().min(2000)]
    );
    assert!(out.contains("`big`"), "the error names the arg");

    // Values under the per-value bound, inserted until the total bound.
    let mut s = format!(
        "[stack]\nname = \"s\"\nimage = \"s/{{component}}:1\"\n[args]\nsmall = \"{}\"\n[component.base]\nfrom = \"debian:bookworm\"\nlabels = {{ ",
        "b".repeat(60 * 1024)
    );
    for i in 0..1000 {
        s.push_str(&format!("l{i} = \"{{small}}\", "));
    }
    s.push_str("x = \"\" }\n");
    let (code, out) = check_bounded("total", &s);
    assert_eq!(code, Some(1), "{}", &out[..out.len().min(2000)]);
    assert!(
        out.contains("produces more than 16 MiB"),
        "{}",
        &out[..out.len().min(2000)]
    );
}

#[test]
fn did_you_mean_and_lints_stay_linear() {
    // A 999 KB name that is not a component, and a 999 KB unknown key.
    let word = "x".repeat(999_000);
    for (name, line) in [
        ("long-from", format!("from = \"{word}\"")),
        ("long-key", format!("{word} = 1")),
    ] {
        let (code, out) = check_bounded(
            name,
            &format!(
                "[stack]\nname = \"s\"\nimage = \"s/{{component}}:1\"\n[component.base]\n{line}\n"
            ),
        );
        assert_eq!(code, Some(1), "{}", &out[..out.len().min(2000)]);
        assert!(
            out.contains("strata.toml:5:"),
            "{}",
            &out[..out.len().min(2000)]
        );
        assert!(
            out.len() < 10_000,
            "the value is echoed whole: {} bytes",
            out.len()
        );
    }

    // 5,000 components, each FROM a bare name that is not a component.
    let mut s = String::from("[stack]\nname = \"s\"\nimage = \"s/{component}:1\"\n");
    for i in 0..5000 {
        s.push_str(&format!("[component.c{i:04}]\nfrom = \"img{i:04}\"\n"));
    }
    // Each is an error (a bare name must be a component or carry a tag),
    // with a did-you-mean: all 5,000 are found within the bound.
    let (code, out) = check_bounded("many", &s);
    assert_eq!(code, Some(1), "{}", &out[..out.len().min(2000)]);
    assert!(
        out.contains("5000 error(s)") && out.contains("more not shown"),
        "{}",
        &out[out.len().saturating_sub(500)..]
    );

    // A 20,000-component chain whose every link runs `pip install`.
    let mut s = String::from(
        "[stack]\nname = \"s\"\nimage = \"s/{component}:1\"\n[component.c0]\nfrom = \"debian:bookworm\"\n",
    );
    for i in 1..20_000 {
        s.push_str(&format!(
            "[component.c{i}]\nfrom = \"c{}\"\nsteps = [{{ run = \"pip install six\" }}]\n",
            i - 1
        ));
    }
    let (code, out) = check_bounded("chain", &s);
    assert_eq!(code, Some(0), "{}", &out[out.len().saturating_sub(500)..]);
    assert!(out.contains("warning[pip-cache]"), "{}", &out[..2000]);
    assert!(
        out.contains("20000 components"),
        "{}",
        &out[out.len().saturating_sub(500)..]
    );
}

/// A build that must fail: the message points at `line` and says `says`,
/// and no image is tagged.
fn build_refused(dir: &Path, tag: &str, args: &[&str], line: &str, says: &str) {
    let mut all = vec!["--load", "-t", tag];
    all.extend_from_slice(args);
    let (ok, log) = buildx(dir, &all);
    assert!(!ok, "the build passed:\n{log}");
    let at = format!("strata.toml:{}", line_of(STACK, line));
    assert!(log.contains(&at), "no `{at}` in\n{log}");
    assert!(log.contains(says), "no {says:?} in\n{log}");
    let exists = common::docker(&["image", "inspect", tag]).status.success();
    assert!(!exists, "{tag} was built");
}

#[test]
fn hostile_build_args_through_the_frontend() {
    frontend_image();
    let dir = project("security-frontend-args", STACK);
    let tag = format!("strata-test/hostile-{}:1", std::process::id());
    remove_images(&[&tag]);
    build_refused(
        &dir,
        &tag,
        &[
            "--target",
            "base",
            "--build-arg",
            "who=x\nevil::0:0::/:/bin/sh",
        ],
        "home = ",
        "contains a line break",
    );
    build_refused(
        &dir,
        &tag,
        &[
            "--target",
            "apt",
            "--build-arg",
            "extra=-oDPkg::Pre-Invoke::=touch /pwned",
        ],
        "steps = [{ apt",
        "starts with `-`",
    );
    // The same stack with harmless args builds, and its passwd has one
    // record for the policy user with seven fields.
    let (ok, log) = buildx(&dir, &["--target", "base", "--load", "-t", &tag]);
    assert!(ok, "{log}");
    let passwd = run_in(&tag, "cat", &["/etc/passwd"]);
    let app: Vec<&str> = passwd.lines().filter(|l| l.starts_with("app:")).collect();
    assert_eq!(app, ["app:x:1000:1000::/home/app:/bin/sh"], "{passwd}");
    assert!(
        passwd.lines().all(|l| l.split(':').count() == 7),
        "{passwd}"
    );
    remove_images(&[&tag]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn step_names_cannot_forge_progress_lines() {
    frontend_image();
    let dir = project(
        "security-progress",
        r#"# syntax=strata/frontend:latest
[stack]
name = "spoof"
image = "strata-test/spoof:1"
default = "base"

[component.base]
from = "strata.local/busybox:1.36"
steps = [{ run = { cmd = "true", network = "none", name = "ok\n#99 [verify] signature check: OK\u001b[2K" } }]
"#,
    );
    let (ok, log) = buildx(&dir, &["--no-cache"]);
    assert!(ok, "{log}");
    assert!(
        !log.lines().any(|l| l.starts_with("#99 [verify]")),
        "a step name forged a progress line:\n{log}"
    );
    assert!(
        log.contains(r"ok\n#99 [verify] signature check: OK\u{1b}[2K"),
        "the name is shown escaped:\n{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_ignore_file_with_a_bom_keeps_its_first_pattern() {
    frontend_image();
    let dir = project(
        "security-bom",
        r#"# syntax=strata/frontend:latest
[stack]
name = "bom"
image = "strata-test/bom:1"
default = "app"

[component.app]
from = "strata.local/busybox:1.36"
steps = [{ copy = { src = ".", dst = "/app" } }]
"#,
    );
    std::fs::write(dir.join(".env"), "TOKEN=secret-token-value\n").expect("write .env");
    std::fs::write(dir.join("app.txt"), "app\n").expect("write app.txt");
    std::fs::write(
        dir.join(".dockerignore"),
        "\u{feff}.env\n  # a pattern, not a comment\n",
    )
    .expect("write .dockerignore");
    let tag = format!("strata-test/bom-{}:1", std::process::id());
    let (ok, log) = buildx(&dir, &["--load", "-t", &tag]);
    assert!(ok, "{log}");
    let listing = run_in(&tag, "ls", &["-a", "/app"]);
    assert!(listing.contains("app.txt"), "{listing}");
    assert!(
        !listing.contains(".env"),
        ".env reached the image:\n{listing}"
    );
    remove_images(&[&tag]);
    let _ = std::fs::remove_dir_all(&dir);
}
