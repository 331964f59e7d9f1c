//! Does a name or a value look like a secret?

/// Words that make a name secret-like when the name ends a word with them
/// (`DB_PASSWORD`, `GITHUB_TOKEN`, `ACCESSTOKEN`).
const SECRET_WORDS: &[&str] = &["TOKEN", "PASSWORD", "PASSWD", "SECRET"];
/// The last words of names that point at a secret instead of holding one.
const POINTER_WORDS: &[&str] = &["FILE", "FILES", "PATH", "DIR", "ID"];
/// Prefixes of well-known credentials.
const PREFIXES: &[(&str, &str)] = &[
    ("ghp_", "a GitHub token"),
    ("gho_", "a GitHub token"),
    ("ghu_", "a GitHub token"),
    ("ghs_", "a GitHub token"),
    ("ghr_", "a GitHub token"),
    ("github_pat_", "a GitHub token"),
    ("glpat-", "a GitLab token"),
    ("xoxb-", "a Slack token"),
    ("xoxp-", "a Slack token"),
];

/// The words of a name: split at `_`, `-`, `.` and lower-to-upper case changes, upper-cased.
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_uppercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The secret word a name contains, if it looks like it holds a secret:
/// `KEY` as a whole word (`API_KEY`, `apiKey`, not `KEYBOARD`), or a word
/// ending in TOKEN, PASSWORD, PASSWD or SECRET (plural too). Names that
/// end in FILE, PATH, DIR or ID point at a secret and are left alone.
pub fn secret_name(name: &str) -> Option<&'static str> {
    let words = words(name);
    if words
        .last()
        .is_some_and(|w| POINTER_WORDS.contains(&w.as_str()))
    {
        return None;
    }
    for w in &words {
        let singular = w.strip_suffix('S').unwrap_or(w);
        if w == "KEY" || w == "KEYS" {
            return Some("KEY");
        }
        for s in SECRET_WORDS {
            if w.ends_with(s) || singular.ends_with(s) {
                return Some(s);
            }
        }
    }
    None
}

/// Why a value looks like a credential: a known prefix, a PEM block, an
/// AWS access key id, or a long random-looking string.
pub fn secret_value(value: &str) -> Option<&'static str> {
    let v = value.trim();
    if v.contains("-----BEGIN") {
        return Some("a PEM key or certificate");
    }
    if let Some((_, what)) = PREFIXES.iter().find(|(p, _)| v.starts_with(p)) {
        return Some(what);
    }
    let aws = (v.starts_with("AKIA") || v.starts_with("ASIA"))
        && v.len() == 20
        && v.bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if aws {
        return Some("an AWS access key id");
    }
    random_looking(v).then_some("a long random-looking string")
}

/// At least 20 characters of a token alphabet (letters, digits, `+/=_-`),
/// with letters and digits, and close to the most entropy such a string
/// can have. Hex strings of 40 or 64 characters are commit and sha256
/// digests, not secrets.
fn random_looking(v: &str) -> bool {
    let token_alphabet = v
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"+/=_-".contains(&c));
    let has_digit = v.bytes().any(|c| c.is_ascii_digit());
    let has_letter = v.bytes().any(|c| c.is_ascii_alphabetic());
    if v.len() < 20 || !token_alphabet || !has_digit || !has_letter {
        return false;
    }
    let hex = v.bytes().all(|c| c.is_ascii_hexdigit());
    if hex {
        return v.len() >= 32 && v.len() != 40 && v.len() != 64 && entropy(v) >= 3.0;
    }
    entropy(v) >= 3.8
}

/// Shannon entropy in bits per character.
fn entropy(v: &str) -> f64 {
    let mut counts = [0usize; 256];
    for b in v.bytes() {
        counts[usize::from(b)] += 1;
    }
    let n = v.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for n in [
            "API_KEY",
            "apiKey",
            "GITHUB_TOKEN",
            "db_password",
            "PASSWD",
            "AWS_SECRET_ACCESS_KEY",
            "client_secret",
            "ACCESSTOKEN",
            "SSH_KEYS",
            "secrets",
        ] {
            assert!(secret_name(n).is_some(), "{n}");
        }
        for n in [
            "KEYBOARD",
            "MONKEY",
            "TOKENIZER_PATH",
            "PASSWORD_FILE",
            "SSH_KEY_PATH",
            "PYTHONPATH",
            "keyring_backend",
            "AWS_ACCESS_KEY_ID",
            "tag",
        ] {
            assert!(secret_name(n).is_none(), "{n}");
        }
    }

    #[test]
    fn values() {
        for v in [
            "ghp_0123456789abcdefghijABCDEFGHIJ012345",
            "AKIAIOSFODNN7EXAMPLE",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nabc",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "3f9a8c1d2b7e4f6a9c0d1e2f3a4b5c6d",
            "Zx8Qp2LmN4vB7tR1yW3kH6jD",
        ] {
            assert!(secret_value(v).is_some(), "{v}");
        }
        for v in [
            "",
            "latest",
            "/data/projects/python/venv/bin",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
            "1.11.4-release",
            "e83c5163316f89bfbde7d9ab23ca2e25604af290",
            "us-west1-docker.pkg.dev/allen-discovery-center-mcovert/wcm",
            "federatedai",
            "compute,utility",
            "aaaaaaaaaaaaaaaaaaaaaaaa1",
        ] {
            assert!(secret_value(v).is_none(), "{v}");
        }
    }
}
