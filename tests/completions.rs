//! `strata completions SHELL`: the scripts parse in their shell, name every
//! command, and complete commands, options and option values in bash.

mod common;

use std::process::Command;

use common::{lossy, strata, strata_ok, temp_dir};

/// Every subcommand of `strata`.
const COMMANDS: [&str; 11] = [
    "check",
    "graph",
    "llb",
    "targets",
    "build",
    "bake",
    "bundle",
    "lock",
    "sources",
    "explain",
    "completions",
];

fn script(shell: &str) -> String {
    let out = strata_ok(&["completions", shell]);
    assert!(out.stderr.is_empty(), "{}", lossy(&out.stderr));
    lossy(&out.stdout)
}

/// Whether `program` can be run here (zsh and fish may not be installed).
fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs bash's completion function for the command line `words` (the last
/// word being the one completed) and returns the candidates.
fn bash_complete(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={}\n_strata strata \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        quoted.join(" "),
        words.len() - 1
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("run bash");
    assert!(out.status.success(), "{}", lossy(&out.stderr));
    lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_bash_script_parses_names_every_command_and_completes() {
    let text = script("bash");
    for c in COMMANDS {
        assert!(
            text.contains(&format!("strata,{c})")),
            "no `{c}` in the script"
        );
    }
    let path = temp_dir("completions").join("strata.bash");
    std::fs::write(&path, &text).expect("write the script");
    let check = Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .expect("run bash -n");
    assert!(check.status.success(), "{}", lossy(&check.stderr));

    assert_eq!(
        bash_complete(&path, &["strata", "b"]),
        ["build", "bake", "bundle"]
    );
    assert_eq!(
        bash_complete(&path, &["strata", "bundle", "--progress", ""]),
        ["auto", "tty", "plain", "quiet"]
    );
    assert_eq!(
        bash_complete(&path, &["strata", "lock", "--prog"]),
        ["--progress"]
    );
    assert_eq!(
        bash_complete(&path, &["strata", "completions", "z"]),
        ["zsh"]
    );
}

#[test]
fn the_zsh_and_fish_scripts_parse_where_those_shells_exist() {
    let dir = temp_dir("completions-shells");
    for (shell, check) in [("zsh", vec!["-n"]), ("fish", vec!["--no-execute"])] {
        let text = script(shell);
        assert!(text.contains("progress"), "{shell}: no --progress");
        for c in COMMANDS {
            assert!(text.contains(c), "{shell}: no `{c}` in the script");
        }
        if !installed(shell) {
            eprintln!("{shell} is not installed: its script is not parsed");
            continue;
        }
        let path = dir.join(format!("strata.{shell}"));
        std::fs::write(&path, &text).expect("write the script");
        let out = Command::new(shell)
            .args(&check)
            .arg(&path)
            .output()
            .expect("run the shell");
        assert!(out.status.success(), "{shell}: {}", lossy(&out.stderr));
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error_that_lists_the_shells() {
    let out = strata(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = lossy(&out.stderr);
    assert!(
        err.contains("bash") && err.contains("zsh") && err.contains("fish"),
        "{err}"
    );
}
