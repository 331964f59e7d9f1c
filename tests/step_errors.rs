//! A step that fails inside BuildKit is reported at its line of the stack
//! file, named as the stack names it (the user's command, the requirement
//! files), never by the shell script Strata generated for it. Needs the
//! engine.

mod common;

use common::{assert_located, buildx, frontend, frontend_image, project};

/// The `ERROR: failed to solve: ...` line buildx ends a failed build with.
fn final_error(log: &str) -> &str {
    log.lines()
        .rev()
        .find(|l| l.starts_with("ERROR: failed to solve:"))
        .unwrap_or_else(|| panic!("no final error in\n{log}"))
}

#[test]
fn a_failing_pip_step_names_its_requirements_entry() {
    frontend_image();
    let stack = format!(
        "# syntax={}\n[stack]\nname = \"steps\"\n\n[component.app]\nfrom = \"strata.local/python:3.11-slim-bookworm\"\nuser = \"root\"\npip = {{ requirements = [\"envs/requirements.txt\"], venv = \"system\" }}\n",
        frontend()
    );
    let dir = project("step-errors-pip", &stack);
    std::fs::create_dir_all(dir.join("envs")).expect("mkdir");
    // Read by pip before any download: fails at once, offline.
    std::fs::write(dir.join("envs/requirements.txt"), "not ==a requirement!!\n").expect("write");
    let (ok, log) = buildx(&dir, &["--target", "app"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!ok, "{log}");
    assert_located(&log, &stack, "requirements = [");
    let line = common::line_of(&stack, "requirements = [");
    let last = final_error(&log);
    assert_eq!(
        last,
        format!("ERROR: failed to solve: strata.toml:{line}: [app] pip install -r envs/requirements.txt failed: exit code: 1"),
        "{log}"
    );
}

#[test]
fn a_failing_run_step_shows_the_users_command() {
    frontend_image();
    let stack = format!(
        "# syntax={}\n[stack]\nname = \"steps\"\n\n[component.app]\nfrom = \"strata.local/busybox:1.36\"\nuser = \"root\"\nrun = [\"echo preparing\", \"test -e /no/such/file && echo found\"]\n",
        frontend()
    );
    let dir = project("step-errors-run", &stack);
    let (ok, log) = buildx(&dir, &["--target", "app"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!ok, "{log}");
    assert_located(&log, &stack, "test -e /no/such/file");
    let line = common::line_of(&stack, "test -e /no/such/file");
    let last = final_error(&log);
    assert_eq!(
        last,
        format!("ERROR: failed to solve: strata.toml:{line}: [app] RUN test -e /no/such/file && echo found failed: exit code: 1"),
        "{log}"
    );
    assert!(!last.contains("/bin/sh"), "{last}");
}
