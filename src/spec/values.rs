//! What a value may be where it lands, checked after interpolation.
//!
//! A build arg can come from outside (a branch name, a tag, a CI variable),
//! so `{arg}` may carry anything: a newline, a `:`, a leading `-`. Every
//! value is checked for the place it goes to once the args are in it, not
//! before: an account field can never gain a record, a package name can
//! never become an option, a path can never hold a control character.
//! docs/stack-file.md ("Values and escaping") lists the same rules.

/// Longest value one interpolation may produce.
pub const MAX_VALUE: usize = 64 * 1024;

/// Most bytes all interpolations of one stack file may produce together.
pub const MAX_INTERPOLATED: usize = 16 * 1024 * 1024;

/// Why a value is refused, in a phrase: "contains a newline".
pub type Refusal = String;

/// The first control character in `s`, named for a message.
fn control(s: &str) -> Option<Refusal> {
    s.chars().find(|c| c.is_control()).map(|c| match c {
        '\n' => "contains a line break".to_owned(),
        '\r' => "contains a carriage return".to_owned(),
        '\t' => "contains a tab".to_owned(),
        '\0' => "contains a NUL byte".to_owned(),
        c => format!("contains the control character U+{:04X}", u32::from(c)),
    })
}

/// An absolute path in the image (workdir, copy destination, home, shell, venv).
pub fn image_path(s: &str) -> Result<(), Refusal> {
    if !s.starts_with('/') {
        return Err("is not an absolute path (it must start with `/`)".into());
    }
    control(s).map_or(Ok(()), Err)
}

/// A copy destination: absolute, or relative to the workdir.
pub fn destination(s: &str) -> Result<(), Refusal> {
    if s.is_empty() {
        return Err("is empty".into());
    }
    control(s).map_or(Ok(()), Err)
}

/// Whether `s` is a URL (`scheme://...`), which is never a path.
pub fn is_url(s: &str) -> bool {
    s.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"+.-".contains(&c))
    })
}

/// A package name for dnf or apk: `name`, `name-1.2`, `name=1.2-r0`,
/// `name>=1.2`; starting with a letter or digit, so never an option.
pub fn os_package(s: &str) -> Result<(), Refusal> {
    let first = s.bytes().next();
    if !first.is_some_and(|c| c.is_ascii_alphanumeric()) {
        return Err("does not start with a letter or digit".into());
    }
    match s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.+:=<>~@/*".contains(*c)))
    {
        Some(c) => Err(format!("contains `{}`", c.escape_default())),
        None => Ok(()),
    }
}

/// A URL of a remote source: `scheme://host[:port]/...` with one of
/// `schemes`, a host, no credentials (they would land in the LLB, the
/// build log and the image history), no spaces or control characters.
pub fn remote_url(s: &str, schemes: &[&str]) -> Result<(), Refusal> {
    if let Some(why) = control(s) {
        return Err(why);
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(format!("is not a URL (write {}://host/path)", schemes[0]));
    };
    if !schemes.contains(&scheme) {
        return Err(format!(
            "has the scheme `{}`; use {}",
            shown(scheme),
            schemes.join(" or ")
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("carries credentials (`user:password@`)".into());
    }
    if authority.is_empty() || authority.starts_with(':') {
        return Err("has no host".into());
    }
    if s.contains(char::is_whitespace) {
        return Err("contains a space".into());
    }
    Ok(())
}

/// A URL as shown in messages: any `user:password@` replaced by `***@`.
pub fn masked_url(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else {
        return shown(s);
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => shown(&format!("{scheme}://***{}", &rest[at..])),
        None => shown(s),
    }
}

/// A host for pip's `--trusted-host`: `host` or `host:port`.
pub fn host(s: &str) -> Result<(), Refusal> {
    let ok = !s.is_empty()
        && !s.starts_with('-')
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".-:[]".contains(&c));
    if ok {
        Ok(())
    } else {
        Err("is not a host name (write `host` or `host:port`, without a scheme)".into())
    }
}

/// A `sha256:<64 hex digits>` digest.
pub fn sha256_digest(s: &str) -> Result<(), Refusal> {
    match s.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64 && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Ok(())
        }
        Some(_) => Err("is not a sha256 digest (64 lowercase hex digits after `sha256:`)".into()),
        None => Err("is not a digest of the form `sha256:<64 hex digits>`".into()),
    }
}

/// A git tag or branch name as `git check-ref-format` allows it, and
/// never an option.
pub fn git_ref_name(s: &str) -> Result<(), Refusal> {
    let bad = s.is_empty()
        || s.starts_with(['-', '/', '.'])
        || s.ends_with(['/', '.'])
        || s.ends_with(".lock")
        || s.contains("..")
        || s.contains("@{")
        || s.contains("//")
        || s.chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c));
    if bad {
        Err("is not a valid git ref name".into())
    } else {
        Ok(())
    }
}

/// A full git commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
pub fn git_commit(s: &str) -> Result<(), Refusal> {
    if matches!(s.len(), 40 | 64) && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err("is not a full commit id (40 lowercase hex digits)".into())
    }
}

/// A suite or component of an apt archive: a word, never an option.
pub fn apt_word(s: &str) -> Result<(), Refusal> {
    let ok = s.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_./+".contains(&c));
    if ok {
        Ok(())
    } else {
        Err("is not a suite or component name".into())
    }
}

/// A path relative to the build context.
pub fn context_path(s: &str) -> Result<(), Refusal> {
    if is_url(s) {
        return Err("is a URL, not a path in the build context".into());
    }
    if s.starts_with('/') || s.split('/').any(|c| c == "..") {
        return Err("is not inside the build context".into());
    }
    control(s).map_or(Ok(()), Err)
}

/// A field of `/etc/passwd` that is a path (home, shell): absolute, and
/// neither `:` (the field separator) nor a line break (the record separator).
pub fn passwd_path(s: &str) -> Result<(), Refusal> {
    image_path(s)?;
    if s.contains(':') {
        return Err("contains `:`, which separates the fields of /etc/passwd".into());
    }
    Ok(())
}

/// A Debian package as `apt-get install` takes it:
/// `name[:arch][=version | /release]`, the name in Debian policy's
/// alphabet (lowercase letters, digits, `+ - .`, starting alphanumeric).
pub fn apt_package(s: &str) -> Result<(), Refusal> {
    if s.starts_with('-') {
        return Err("starts with `-`, so apt-get would read it as an option".into());
    }
    let (head, suffix) = match s.find(['=', '/']) {
        Some(i) => (&s[..i], Some(&s[i..])),
        None => (s, None),
    };
    let (name, arch) = match head.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (head, None),
    };
    let name_ok = name
        .bytes()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"+-.".contains(&c));
    if !name_ok {
        return Err(
            "is not a Debian package name (lowercase letters, digits, `+`, `-`, `.`)".into(),
        );
    }
    if let Some(a) = arch {
        if a.is_empty()
            || !a
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        {
            return Err(format!("has an invalid architecture `{a}`"));
        }
    }
    if let Some(v) = suffix {
        let (kind, text) = v.split_at(1);
        let allowed: &[u8] = if kind == "=" { b".+~:-" } else { b".+~_-" };
        if text.is_empty()
            || !text
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || allowed.contains(&c))
        {
            let what = if kind == "=" { "version" } else { "release" };
            return Err(format!("has an invalid {what} `{text}`"));
        }
    }
    Ok(())
}

/// A pip requirement (`six==1.16.0`, `uvicorn[standard]>=0.20; python_version>"3.8"`):
/// starts with a letter or digit, printable ASCII only.
pub fn pip_requirement(s: &str) -> Result<(), Refusal> {
    if s.starts_with('-') {
        return Err("starts with `-`, so pip would read it as an option (options such as an index URL are set by the stack, not in package names)".into());
    }
    if !s.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric()) {
        return Err("does not start with a package name".into());
    }
    control(s).map_or(Ok(()), Err)?;
    if !s.is_ascii() {
        return Err("is not ASCII (package names and specifiers are)".into());
    }
    Ok(())
}

/// A conda package spec (`python=3.10`, `conda-forge::numpy>=1.26`) or channel
/// (`conda-forge`, a URL, an absolute path): never an option.
pub fn conda_word(s: &str) -> Result<(), Refusal> {
    if s.starts_with('-') {
        return Err("starts with `-`, so conda would read it as an option".into());
    }
    if !s
        .bytes()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'/')
    {
        return Err("does not start with a letter, a digit or `/`".into());
    }
    control(s).map_or(Ok(()), Err)?;
    if !s.is_ascii() {
        return Err("is not ASCII".into());
    }
    Ok(())
}

/// A value shown back to the user in a message: control characters
/// escaped, and at most 80 characters.
pub fn shown(s: &str) -> String {
    // Only the head is looked at: a value may be megabytes long.
    let head: String = s.chars().take(81).collect();
    let p = strata_llb::printable(&head);
    if p.chars().count() <= 80 && head.len() == s.len() {
        return p.into_owned();
    }
    let cut: String = p.chars().take(77).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_urls_have_a_scheme_a_host_and_no_credentials() {
        let web = ["https", "http"];
        assert!(remote_url("http://127.0.0.1:8000/tini", &web).is_ok());
        assert!(remote_url("ftp://host/x", &web).is_err());
        assert!(remote_url("https://user:pw@host/x", &web).is_err());
        assert!(remote_url("https:///x", &web).is_err());
        assert!(remote_url("https://host/a b", &web).is_err());
        assert_eq!(
            masked_url("https://user:pw@host/x@y"),
            "https://***@host/x@y"
        );
        assert_eq!(masked_url("https://host/x"), "https://host/x");
        assert!(sha256_digest(&format!("sha256:{}", "a".repeat(64))).is_ok());
        assert!(sha256_digest("sha256:abc").is_err());
        assert!(git_ref_name("v1.2.0").is_ok());
        assert!(git_ref_name("--upload-pack=x").is_err());
        assert!(git_commit(&"0".repeat(40)).is_ok());
        assert!(git_commit("abc123").is_err());
    }

    #[test]
    fn passwd_fields_cannot_gain_records_or_fields() {
        assert!(passwd_path("/home/app").is_ok());
        assert!(passwd_path("/home/x\nevil::0:0::/:/bin/sh").is_err());
        assert!(passwd_path("/home/a:b").is_err());
        assert!(passwd_path("home").is_err());
    }

    #[test]
    fn apt_packages_are_never_options() {
        for ok in [
            "tini",
            "libssl3=3.0.11-1~deb12u2",
            "python3.11",
            "g++",
            "libc6:amd64",
            "nginx/bookworm-backports",
            "systemd=1:252.22-1",
        ] {
            assert_eq!(apt_package(ok), Ok(()), "{ok}");
        }
        for bad in [
            "-oDPkg::Pre-Invoke::=touch /pwned",
            "--allow-unauthenticated",
            "Tini",
            "a b",
            "x\ny",
            "",
            "pkg=",
            "pkg:",
            "pkg=1 2",
        ] {
            assert!(apt_package(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pip_and_conda_words_are_never_options() {
        assert!(pip_requirement("six==1.16.0").is_ok());
        assert!(pip_requirement("uvicorn[standard]>=0.20; python_version > \"3.8\"").is_ok());
        assert!(pip_requirement("--index-url=https://evil/simple").is_err());
        assert!(pip_requirement("six\n--index-url=x").is_err());
        assert!(conda_word("conda-forge::numpy>=1.26").is_ok());
        assert!(conda_word("/opt/channel").is_ok());
        assert!(conda_word("--override-channels").is_err());
    }

    #[test]
    fn shown_values_are_one_short_line() {
        assert_eq!(shown("a\nb"), "a\\nb");
        assert_eq!(shown(&"x".repeat(100)).chars().count(), 80);
    }
}
