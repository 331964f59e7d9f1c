//! Shell scripts Strata writes: one way to quote a word and one way to
//! run a script, for every step kind.

use crate::spec::raw::SHELL;

/// A word for a POSIX sh script: as is when it holds only safe
/// characters, else single-quoted (a `'` inside becomes `'\''`).
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"/._-:=+,@%".contains(&c))
    {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The argv that runs `script` with the shell of Docker's shell form.
pub fn sh(script: String) -> Vec<String> {
    vec![SHELL[0].to_owned(), SHELL[1].to_owned(), script]
}

#[cfg(test)]
mod tests {
    use super::quote;
    use std::process::Command;

    #[test]
    fn quoted_words_come_back_unchanged_from_sh() {
        for word in [
            "plain", "", "a b", "it's", "$(id)", "`x`", "a\nb", "-n", "*",
        ] {
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(word)))
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&out.stdout), word, "{word:?}");
        }
    }
}
