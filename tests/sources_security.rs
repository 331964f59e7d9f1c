//! `strata sources` reads requirement files only inside each component's
//! build context: absolute and `..` includes and symbolic links that lead
//! out are refused (located, exit 1, nothing of theirs printed), and every
//! file is read once however often it is included. Runs the real binary on
//! temporary stacks; needs no engine.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::{lossy, project, strata_command};
const SECRET: &str = "ghp_secsrcTOKEN0123456789abcdef";

/// A stack directory with one component whose context is `app/` and whose
/// pip step reads the given requirement files.
fn stack_dir(name: &str, requirements: &[&str]) -> PathBuf {
    let files: Vec<String> = requirements.iter().map(|r| format!("{r:?}")).collect();
    let stack = format!(
        "[stack]\nname = \"secsrc\"\nimage = \"secsrc/{{component}}:1\"\n\n\
         [component.app]\nfrom = \"strata.local/busybox:1.36\"\nuser = \"root\"\n\
         context = \"app\"\npip = {{ requirements = [{}] }}\n",
        files.join(", ")
    );
    let dir = project(&format!("secsrc-{name}"), stack);
    std::fs::create_dir_all(dir.join("app/sub")).expect("app dir");
    dir
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
}

/// Runs `strata sources` on a stack with a secret in its environment;
/// fails the test rather than hang if it never ends.
fn sources(dir: &Path, format: &str) -> Output {
    let mut child = strata_command()
        .args(["sources", "--format", format])
        .arg(dir.join("strata.toml"))
        .env("SECSRC_TOKEN", SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("strata runs");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("strata sources did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// The pip package names of `strata sources --format json`.
fn pip_packages(out: &Output) -> Vec<String> {
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("sources JSON");
    doc["packages"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|p| p["kind"] == "pip")
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn an_absolute_include_is_refused_and_its_contents_never_printed() {
    let dir = stack_dir("environ", &["requirements.txt"]);
    write(
        &dir.join("app/requirements.txt"),
        "six==1.16.0\n-r /proc/self/environ\n",
    );
    for format in ["text", "json"] {
        let out = sources(&dir, format);
        let (stdout, stderr) = (lossy(&out.stdout), lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
        assert!(!stdout.contains("SECSRC_TOKEN") && !stderr.contains("SECSRC_TOKEN"));
        assert!(stdout.contains("six==1.16.0"), "{stdout}");
        assert!(
            stderr
                .contains("app/requirements.txt:2: `-r /proc/self/environ` names an absolute path"),
            "{stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dot_dot_includes_and_links_out_of_the_context_are_refused() {
    let dir = stack_dir("outside", &["requirements.txt", "linked.txt"]);
    write(&dir.join("outside.txt"), "outside-only-package\n");
    write(
        &dir.join("app/requirements.txt"),
        "six\n-r ../outside.txt\n-r sub/link.txt\n",
    );
    std::os::unix::fs::symlink("../../outside.txt", dir.join("app/sub/link.txt")).expect("symlink");
    std::os::unix::fs::symlink("../outside.txt", dir.join("app/linked.txt")).expect("symlink");
    let out = sources(&dir, "json");
    let stderr = lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(pip_packages(&out), vec!["six"]);
    assert!(!lossy(&out.stdout).contains("outside-only-package"));
    assert!(!stderr.contains("outside-only-package"));
    for located in [
        "app/requirements.txt:2: `-r ../outside.txt` climbs out of the build context",
        "app/requirements.txt:3: `-r sub/link.txt` leads outside the build context",
        "component `app`: `linked.txt` leads outside the build context",
    ] {
        assert!(
            stderr.contains(located),
            "missing `{located}` in:\n{stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_doubling_include_chain_reads_each_file_once() {
    let dir = stack_dir("chain", &["f0.txt"]);
    for i in 0..30 {
        let next = format!("-r f{}.txt\n", i + 1);
        write(
            &dir.join(format!("app/f{i}.txt")),
            &format!("pkg{i}\n{next}{next}"),
        );
    }
    write(&dir.join("app/f30.txt"), "pkg30\n");
    let out = sources(&dir, "json");
    assert!(out.status.success(), "{}", lossy(&out.stderr));
    let want: Vec<String> = (0..=30).map(|i| format!("pkg{i}")).collect();
    assert_eq!(pip_packages(&out), want);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_include_cycle_ends_without_an_error() {
    let dir = stack_dir("cycle", &["a.txt"]);
    write(&dir.join("app/a.txt"), "in-a\n-r sub/b.txt\n");
    write(&dir.join("app/sub/b.txt"), "in-b\n--requirement=../a.txt\n");
    let out = sources(&dir, "json");
    assert!(out.status.success(), "{}", lossy(&out.stderr));
    assert_eq!(pip_packages(&out), vec!["in-a", "in-b"]);
    let _ = std::fs::remove_dir_all(&dir);
}
