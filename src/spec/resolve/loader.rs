//! Text -> raw: size and nesting guards, TOML errors as located diagnostics.

use super::*;

pub(super) fn too_deep(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_str: Option<u8> = None;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match in_str {
            Some(q) => {
                if c == b'\\' && q == b'"' {
                    i += 1;
                } else if c == q {
                    in_str = None;
                }
            }
            None => match c {
                b'"' | b'\'' => in_str = Some(c),
                b'#' => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Some(i);
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                b'\n' => {}
                _ => {}
            },
        }
        i += 1;
    }
    None
}

/// The first line with a key of toml's 80 levels or more: its
/// "recursion limit" error has no span.
pub(super) fn deep_key(text: &str) -> Option<Range<usize>> {
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        if line.matches('.').count() >= 79 {
            let trimmed = line.trim_start();
            let from = start + line.len() - trimmed.len();
            return Some(from..from + trimmed.trim_end().len());
        }
        start += line.len();
    }
    None
}

pub(super) fn toml_error(e: &toml::de::Error, span: Range<usize>, text: &str) -> Diagnostic {
    let msg = e.message().trim().to_owned();
    let first = msg.lines().next().unwrap_or("invalid TOML").to_owned();
    let mut d = Diagnostic::error(ErrorCode::TomlSyntax, span.clone(), first.clone());
    if let Some(rest) = first.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or("");
        let expected: Vec<&str> = msg
            .split("expected ")
            .nth(1)
            .map(|s| {
                s.split(['`', ',', ' '])
                    .filter(|w| !w.is_empty() && *w != "one" && *w != "of" && *w != "or")
                    .collect()
            })
            .unwrap_or_default();
        d.message = format!("unknown key `{field}`");
        d.code = ErrorCode::UnknownKey.id();
        d = match closest(field, expected.iter().copied()) {
            Some(c) => d.with_help(format!("did you mean `{c}`?")),
            None => d.with_help(format!("allowed keys here: {}", expected.join(", "))),
        };
    } else if first.starts_with("duplicate key") {
        d.code = ErrorCode::DuplicateKey.id();
        if let Some(key) = text
            .get(span)
            .filter(|k| first == "duplicate key" && !k.is_empty())
        {
            d.message = format!("duplicate key `{key}`");
        }
        d = d.with_help("each key may appear once; merge the two definitions");
    } else if first.starts_with("missing field") {
        d.code = ErrorCode::MissingKey.id();
        d.message = first.replace("missing field", "missing key");
        d = d.with_help("add the key to this table");
    } else if first.starts_with("invalid type") {
        d.code = ErrorCode::WrongType.id();
        // serde names our types (`expected struct RawStack`): say what is written.
        if let Some(i) = first.find("expected struct ") {
            d.message = format!("{}expected a table", &first[..i]);
        }
        d = d.with_help("see docs/stack-file.md for the expected form of this key");
    } else if first.contains("string") && first.contains("expected `") {
        d = d.with_help(
            "close the string on the same line; use `\"\"\"` for text over several lines",
        );
    } else if first == "recursion limit" {
        d.code = ErrorCode::TooDeep.id();
        d.message = "a key is nested 80 or more levels deep".into();
        d = d.with_help("flatten the dotted key or table header");
    } else if first.starts_with("unclosed") {
        d = d.with_help("close it where the value or header ends");
    } else {
        d = d.with_help("this is not valid TOML; write `key = value`, `[table]` or `[[array-of-tables]]` (https://toml.io)");
    }
    d
}
