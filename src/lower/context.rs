//! What lowering reads from the build context: each component's context
//! directory and ignore file, `.dockerignore` text as Docker reads it, and
//! the include patterns of a context source.

use crate::graph::{Component, Stack};

use super::needed;

/// Ignore files (paths in the context) that lowering `target` reads, for
/// the caller to fetch into [`BuildContext::ignore_files`](super::BuildContext::ignore_files).
pub fn ignore_files(stack: &Stack, target: &str) -> Vec<String> {
    let set: std::collections::BTreeSet<String> = needed(stack, target).map(ignore_path).collect();
    set.into_iter().collect()
}

/// The component's context directory inside the build context, as
/// `dir/` (empty for the build context itself): the prefix of its paths.
pub(crate) fn context_prefix(c: &Component) -> String {
    match c.context.trim_end_matches('/') {
        "" | "." => String::new(),
        dir => format!("{dir}/"),
    }
}

/// The ignore file a component's context is read with, relative to the build context.
pub(crate) fn ignore_path(c: &Component) -> String {
    c.ignore
        .clone()
        .unwrap_or_else(|| format!("{}.dockerignore", context_prefix(c)))
}

/// The include patterns of a context source for `include` paths of a
/// component whose context directory is `prefix` (empty: everything).
pub(super) fn context_includes(prefix: &str, include: &[String]) -> Vec<String> {
    // BuildKit matches include patterns against `dir/file` paths, so
    // `.` (or `./`) would match nothing: the whole directory is meant.
    let whole = |i: &str| matches!(i.trim_start_matches("./"), "" | "." | "/");
    if prefix.is_empty() && include.iter().any(|i| whole(i)) {
        return Vec::new();
    }
    include
        .iter()
        .map(|i| {
            if whole(i) {
                prefix.trim_end_matches('/').to_owned()
            } else {
                format!("{prefix}{}", i.trim_start_matches("./"))
            }
        })
        .collect()
}

/// `.dockerignore` text -> exclude patterns, read as Docker reads it
/// (moby/patternmatcher's `ignorefile.ReadAll`): a UTF-8 BOM is dropped, a
/// line that starts with `#` is a comment (before any trimming), blanks
/// are dropped, `!` and the pattern after it are trimmed, and each
/// pattern is cleaned like Go's `filepath.Clean`, then loses one leading
/// `/`.
pub fn parse_ignore(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = if pattern.is_empty() {
            String::new()
        } else {
            clean_path(pattern)
        };
        if cleaned.len() > 1 && cleaned.starts_with('/') {
            cleaned.remove(0);
        }
        out.push(if invert {
            format!("!{cleaned}")
        } else {
            cleaned
        });
    }
    out
}

/// Go's `path.Clean`: the shortest path with the same meaning (no `.`
/// parts, no doubled `/`, `..` applied where it can be).
pub fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::{clean_path, parse_ignore};

    #[test]
    fn ignore_files_read_as_docker_reads_them() {
        // moby/patternmatcher's ignorefile test case.
        let text = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
        assert_eq!(
            parse_ignore(text),
            [
                "test1",
                "test2",
                "a/file/here",
                "lastfile",
                "!inverted/abs/path",
                "!",
                "!"
            ]
        );
        // A BOM before the first pattern does not hide it.
        assert_eq!(
            parse_ignore("\u{feff}.env\nsecrets/\n"),
            [".env", "secrets"]
        );
        // Only a line that starts with `#` is a comment; CRLF endings; cleaning.
        assert_eq!(
            parse_ignore(" #not-a-comment\r\n./build//out/\r\nsrc/../tmp\n//abs\n"),
            ["#not-a-comment", "build/out", "tmp", "abs"]
        );
    }

    #[test]
    fn paths_clean_like_go() {
        for (p, want) in [
            ("", "."),
            (".", "."),
            ("a/b/../c", "a/c"),
            ("../a", "../a"),
            ("/../a", "/a"),
            ("a/../..", ".."),
            ("/", "/"),
            ("./a/./b/", "a/b"),
        ] {
            assert_eq!(clean_path(p), want, "{p:?}");
        }
    }
}
