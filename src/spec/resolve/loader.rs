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
    } else if let Some(rest) = first.strip_prefix("invalid type: ") {
        d.code = ErrorCode::WrongType.id();
        let (message, help) = type_mismatch(rest, &span, text);
        d.message = message;
        d = d.with_help(help);
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

/// The kinds of value serde names in "expected ...", as a user reads them.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Bool,
    Integer,
    String,
    List,
    Table,
    /// Our own wording (a visitor's `expecting`), kept as written.
    Described,
}

/// "invalid type: string \"yes\", expected a boolean" as a message that
/// names the key and what it takes, and a help with an example for it.
fn type_mismatch(rest: &str, span: &Range<usize>, text: &str) -> (String, String) {
    let (found, expected) = rest
        .split_once(", expected ")
        .unwrap_or((rest, "another type"));
    let kind = match expected.trim() {
        "a boolean" => Kind::Bool,
        "a string" => Kind::String,
        "a sequence" => Kind::List,
        e if e.starts_with("struct ") || e == "a map" => Kind::Table,
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "an integer" => Kind::Integer,
        _ => Kind::Described,
    };
    let wanted = match kind {
        Kind::Bool => "a bool (`true` or `false`, unquoted)",
        Kind::Integer => "an integer",
        Kind::String => "a string",
        Kind::List => "a list",
        Kind::Table => "a table",
        Kind::Described => expected.trim(),
    };
    // serde names the kind first (`string "yes"`, `sequence`): reword only
    // that, never the value written after it.
    let found = [
        ("sequence", "a list"),
        ("map", "a table"),
        ("boolean ", "the bool "),
        ("string ", "the string "),
        ("integer ", "the integer "),
        ("floating point ", "the number "),
    ]
    .iter()
    .find_map(|(kind, said)| {
        found
            .strip_prefix(kind)
            .map(|value| format!("{said}{value}"))
    })
    .unwrap_or_else(|| found.to_owned());
    let key = key_before(text, span.start);
    let message = match key {
        Some(k) => format!("`{k}` takes {wanted}, not {found}"),
        None => format!("expected {wanted}, not {found}"),
    };
    let k = key.unwrap_or("key");
    let written = text
        .get(span.clone())
        .unwrap_or("")
        .trim_matches(['"', '\'']);
    let help = match kind {
        Kind::Bool => match args::parse_bool(written) {
            Ok(b) => format!(
                "write `{k} = {b}`: stack keys take TOML's `true` and `false`; the spellings yes/no, on/off and 1/0 are for arg values (`--arg`, profiles)"
            ),
            Err(_) => format!("write `{k} = true` or `{k} = false`"),
        },
        Kind::Integer => format!("write a number without quotes, e.g. `{k} = 1000`"),
        Kind::String => format!("quote the value, e.g. `{k} = \"...\"`"),
        Kind::List => format!(
            "write a list, e.g. `{k} = [\"{}\"]`; docs/stack-file.md shows every key's form",
            if written.is_empty() { "..." } else { written }
        ),
        Kind::Table => format!("write a table, e.g. `[{k}]` or `{k} = {{ ... }}`; docs/stack-file.md lists its keys"),
        Kind::Described if expected.starts_with("a list") && found.starts_with("the string") => {
            format!("write a list: `{k} = [\"{written}\"]`")
        }
        Kind::Described if expected.contains("string") && !found.starts_with("the string") => {
            format!(
                "quote it: `{k} = \"{}\"`; docs/stack-file.md shows every form of `{k}`",
                if written.is_empty() { "..." } else { written }
            )
        }
        Kind::Described => format!("docs/stack-file.md shows every form of `{k}`, with examples"),
    };
    (message, help)
}

/// The key whose value starts at or contains `at`: the last `name =` on
/// the line before it.
fn key_before(text: &str, at: usize) -> Option<&str> {
    let line_start = text.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
    let before = text.get(line_start..at)?;
    let eq = before.rfind('=')?;
    let key = before[..eq].trim_end();
    let start = key
        .rfind(|c: char| {
            !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' || c == '"')
        })
        .map_or(0, |i| i + 1);
    let key = key[start..].trim_matches('"');
    (!key.is_empty() && key.len() <= 64).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_type_mismatch_rewords_the_kind_not_the_value() {
        let text = "publish = \"map sequence string \"\n";
        let (message, help) = type_mismatch(
            "string \"map sequence string \", expected a boolean",
            &(10..31),
            text,
        );
        assert_eq!(
            message,
            "`publish` takes a bool (`true` or `false`, unquoted), not the string \"map sequence string \""
        );
        assert_eq!(help, "write `publish = true` or `publish = false`");
        let (message, _) = type_mismatch("sequence, expected a string", &(6..8), "name = []\n");
        assert_eq!(message, "`name` takes a string, not a list");
    }
}
