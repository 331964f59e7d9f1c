//! What a raw `run` command does with apt and pip, read from its shell
//! text: a small tokenizer (quotes, escapes, `;`, `&&`, `|`, newlines,
//! subshells), not a shell. It looks for `apt-get update`, `apt-get
//! install`, `rm -rf /var/lib/apt/lists`, `pip install` and whether that
//! install keeps pip's cache.

/// Shells whose `-c` argument is a script.
const SHELLS: &[&str] = &["sh", "bash", "dash", "ash", "zsh", "ksh"];
/// Words that run the command after them.
const WRAPPERS: &[&str] = &[
    "sudo", "env", "exec", "time", "nice", "nohup", "command", "builtin", "then", "do", "else",
    "elif", "if", "while", "until", "!", "{", "}",
];
/// apt options that take a value as the next word.
const APT_VALUE_OPTIONS: &[&str] = &[
    "-o",
    "-c",
    "-t",
    "--option",
    "--config-file",
    "--target-release",
];

/// What one run command does, as far as the lints care.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Script {
    /// Calls `apt-get update` (or `apt update`).
    pub apt_update: bool,
    /// Calls `apt-get install` (or `apt install`).
    pub apt_install: bool,
    /// Removes `/var/lib/apt/lists`.
    pub apt_lists_removed: bool,
    /// Calls `pip install` at all.
    pub pip_install: bool,
    /// A `pip install` without `--no-cache-dir`.
    pub pip_install_cached: bool,
    /// Sets `PIP_NO_CACHE_DIR` (`export PIP_NO_CACHE_DIR=1`, or before a command).
    pub sets_pip_no_cache: bool,
    /// Installs Python with apk (`apk add python3`, `py3-*`).
    pub apk_python: bool,
}

impl Script {
    /// Reads a run step's exec args: the script of `sh -c SCRIPT`, or the
    /// args as one command.
    pub fn of_args(args: &[String]) -> Script {
        let mut s = Script::default();
        let shell = args.first().is_some_and(|a| SHELLS.contains(&basename(a)));
        let dash_c = args
            .get(1)
            .is_some_and(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('c'));
        match (shell && dash_c, args.get(2)) {
            (true, Some(script)) => {
                for words in simple_commands(script) {
                    s.command(&words);
                }
            }
            _ => s.command(args),
        }
        s
    }

    fn command(&mut self, words: &[String]) {
        let mut rest = words;
        while let Some((first, tail)) = rest.split_first() {
            if let Some((name, _)) = assignment(first) {
                self.sets_pip_no_cache |= name == "PIP_NO_CACHE_DIR";
                rest = tail;
            } else if WRAPPERS.contains(&first.as_str()) {
                rest = tail;
                while rest.first().is_some_and(|w| w.starts_with('-')) {
                    rest = &rest[1..];
                }
            } else {
                break;
            }
        }
        let Some((name, args)) = rest.split_first() else {
            return;
        };
        let name = basename(name);
        match name {
            "apt-get" | "apt" => match subcommand(args, APT_VALUE_OPTIONS) {
                Some("update") => self.apt_update = true,
                Some("install") => self.apt_install = true,
                _ => {}
            },
            "rm" => {
                self.apt_lists_removed |= args.iter().any(|a| a.contains("/var/lib/apt/lists"));
            }
            "export" => {
                self.sets_pip_no_cache |= args
                    .iter()
                    .any(|a| assignment(a).is_some_and(|(n, _)| n == "PIP_NO_CACHE_DIR"));
            }
            "apk" if subcommand(args, &[]) == Some("add") => {
                self.apk_python |= args.iter().any(|a| {
                    a.starts_with("python") || a.starts_with("py3-") || a.starts_with("py-")
                });
            }
            _ if is_pip(name) => self.pip(args),
            _ if is_python(name) => {
                let module = args.iter().position(|a| a == "-m");
                if let Some(i) = module.filter(|i| args.get(i + 1).is_some_and(|m| m == "pip")) {
                    self.pip(&args[i + 2..]);
                }
            }
            _ => {}
        }
    }

    fn pip(&mut self, args: &[String]) {
        if subcommand(
            args,
            &["--cache-dir", "--log", "--proxy", "--timeout", "--retries"],
        ) != Some("install")
        {
            return;
        }
        self.pip_install = true;
        let no_cache = args
            .iter()
            .any(|a| a == "--no-cache-dir" || a.starts_with("--no-cache-dir="));
        self.pip_install_cached |= !no_cache;
    }
}

fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

fn is_pip(name: &str) -> bool {
    name.strip_prefix("pip")
        .is_some_and(|v| v.bytes().all(|c| c.is_ascii_digit() || c == b'.'))
}

fn is_python(name: &str) -> bool {
    name.strip_prefix("python")
        .is_some_and(|v| v.bytes().all(|c| c.is_ascii_digit() || c == b'.'))
}

/// `NAME=value` with a valid variable name.
fn assignment(word: &str) -> Option<(&str, &str)> {
    let (name, value) = word.split_once('=')?;
    let valid = name
        .bytes()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
    valid.then_some((name, value))
}

/// The first word that is not an option (skipping the values of `value_options`).
fn subcommand<'a>(args: &'a [String], value_options: &[&str]) -> Option<&'a str> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if value_options.contains(&a.as_str()) {
            it.next();
        } else if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

/// Splits a script into simple commands of unquoted words.
pub fn simple_commands(script: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = script.chars().peekable();
    let end_word = |words: &mut Vec<String>, word: &mut String, in_word: &mut bool| {
        if *in_word {
            words.push(std::mem::take(word));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                if e != '\n' {
                                    word.push(e);
                                }
                            }
                        }
                        _ => word.push(q),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(e) => {
                    in_word = true;
                    word.push(e);
                }
            },
            '#' if !in_word => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
                end_word(&mut words, &mut word, &mut in_word);
                commands.push(std::mem::take(&mut words));
            }
            ';' | '&' | '|' | '\n' | '(' | ')' | '`' => {
                end_word(&mut words, &mut word, &mut in_word);
                if !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
            }
            c if c.is_whitespace() => end_word(&mut words, &mut word, &mut in_word),
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    end_word(&mut words, &mut word, &mut in_word);
    commands.push(words);
    commands.retain(|w| !w.is_empty());
    commands
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Script {
        Script::of_args(&["/bin/sh".into(), "-c".into(), script.into()])
    }

    #[test]
    fn splits_commands_and_keeps_quoted_words() {
        let c = simple_commands("apt-get update && apt-get install -y 'a b' \\\n  c; echo \"x;y\" # apt-get install z\nls");
        assert_eq!(
            c,
            vec![
                vec!["apt-get", "update"],
                vec!["apt-get", "install", "-y", "a b", "c"],
                vec!["echo", "x;y"],
                vec!["ls"],
            ]
        );
    }

    #[test]
    fn apt_update_and_install() {
        let s = sh("apt-get update && DEBIAN_FRONTEND=noninteractive apt-get -o Dpkg::Use-Pty=0 install -y x && rm -rf /var/lib/apt/lists/*");
        assert!(s.apt_update && s.apt_install && s.apt_lists_removed);
        let s = sh("sudo -E apt install -y x");
        assert!(!s.apt_update && s.apt_install);
        let s = sh("echo apt-get update");
        assert_eq!(s, Script::default());
    }

    #[test]
    fn pip_cache() {
        assert!(sh("pip install x").pip_install_cached);
        assert!(!sh("pip install --no-cache-dir x").pip_install_cached);
        assert!(!sh("pip --no-cache-dir install x").pip_install_cached);
        assert!(sh("python3 -m pip install -r r.txt").pip_install_cached);
        assert!(sh("/opt/venv/bin/pip3.11 install x").pip_install_cached);
        assert!(sh("export PIP_NO_CACHE_DIR=1; pip install x").sets_pip_no_cache);
        assert!(sh("PIP_NO_CACHE_DIR=1 pip install x").sets_pip_no_cache);
        assert!(!sh("pip freeze").pip_install);
        assert!(!sh("pipx install x").pip_install);
        let exec = Script::of_args(&["pip".into(), "install".into(), "x".into()]);
        assert!(exec.pip_install_cached);
    }

    #[test]
    fn apk_python() {
        assert!(sh("apk add --no-cache py3-numpy").apk_python);
        assert!(sh("apk add python3").apk_python);
        assert!(!sh("apk add curl").apk_python);
    }
}
