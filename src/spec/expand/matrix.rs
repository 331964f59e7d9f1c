//! Matrix combinations and the insertion of their values, `{name}` and
//! `{name.key}`, into every string and key of a table.

use std::ops::Range;

use serde_spanned::Spanned;

use super::node::Node;
use crate::spec::raw::{MatrixValue, RawMatrix};

/// Most components one matrix may yield.
pub const MAX_INSTANCES: usize = 256;

/// One combination: each matrix name with its value.
pub type Combo<'a> = Vec<(&'a str, &'a Spanned<MatrixValue>)>;

/// Every combination, the first name's values varying slowest; None when
/// there are more than [`MAX_INSTANCES`].
pub fn combinations(m: &RawMatrix) -> Option<Vec<Combo<'_>>> {
    let mut out: Vec<Combo> = vec![Vec::new()];
    for (name, values) in m {
        let mut next = Vec::new();
        for combo in &out {
            for v in values.get_ref() {
                if next.len() == MAX_INSTANCES {
                    return None;
                }
                let mut c = combo.clone();
                c.push((name.get_ref().as_str(), v));
                next.push(c);
            }
        }
        out = next;
    }
    Some(out)
}

/// Why a `{...}` could not be filled.
#[derive(Debug, PartialEq)]
pub struct Unfilled {
    /// What is wrong.
    pub message: String,
    /// What to write instead.
    pub help: String,
}

/// `text` with the combination's values inserted; `{{`, `}}` and names
/// that are not the matrix's (args) are left for the resolver.
pub fn fill(text: &str, combo: &Combo) -> Result<String, Unfilled> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        if rest[i + 1..].starts_with('{') {
            out.push_str("{{");
            rest = &rest[i + 2..];
            continue;
        }
        let Some(end) = rest[i..].find('}') else {
            break;
        };
        let inner = &rest[i + 1..i + end];
        match value_of(inner, combo)? {
            Some(v) => out.push_str(v),
            None => out.push_str(&rest[i..=i + end]),
        }
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The value `{inner}` names: None when `inner` is not a matrix name.
fn value_of<'a>(inner: &str, combo: &'a Combo) -> Result<Option<&'a str>, Unfilled> {
    let (name, key) = match inner.split_once('.') {
        Some((n, k)) => (n, Some(k)),
        None => (inner, None),
    };
    let Some((_, value)) = combo.iter().find(|(n, _)| *n == name) else {
        return Ok(None);
    };
    match (value.get_ref(), key) {
        (MatrixValue::String(s), None) => Ok(Some(s)),
        (MatrixValue::String(_), Some(k)) => Err(Unfilled {
            message: format!(
                "`{{{inner}}}`: the matrix value of `{name}` is a string, not a table with `{k}`"
            ),
            help: format!("write `{{{name}}}`, or make each value of `{name}` a table"),
        }),
        (MatrixValue::Table(t), Some(k)) => match t.iter().find(|(tk, _)| tk.get_ref() == k) {
            Some((_, v)) => Ok(Some(v.get_ref())),
            None => Err(Unfilled {
                message: format!("`{{{inner}}}`: a value of `{name}` has no key `{k}`"),
                help: format!("keys of this value: {}", keys(t)),
            }),
        },
        (MatrixValue::Table(t), None) => Err(Unfilled {
            message: format!("`{{{inner}}}`: the matrix value of `{name}` is a table"),
            help: format!("insert one of its keys: {}", keys(t)),
        }),
    }
}

fn keys(t: &std::collections::BTreeMap<Spanned<String>, Spanned<String>>) -> String {
    t.keys()
        .map(|k| format!("`{{{}}}`", k.get_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The node with the combination filled into every string and key; each
/// refusal with the span of the string it is in.
pub fn fill_node(
    node: &Spanned<Node>,
    combo: &Combo,
    errors: &mut Vec<(Range<usize>, Unfilled)>,
) -> Spanned<Node> {
    let mut text = |s: &Spanned<String>| -> Spanned<String> {
        match fill(s.get_ref(), combo) {
            Ok(v) => Spanned::new(s.span(), v),
            Err(e) => {
                errors.push((s.span(), e));
                s.clone()
            }
        }
    };
    let filled = match node.get_ref() {
        Node::Str(s) => Node::Str(text(&Spanned::new(node.span(), s.clone())).into_inner()),
        Node::Array(items) => {
            Node::Array(items.iter().map(|i| fill_node(i, combo, errors)).collect())
        }
        Node::Table(entries) => Node::Table(
            entries
                .iter()
                .map(|(k, v)| {
                    let k = match fill(k.get_ref(), combo) {
                        Ok(f) => Spanned::new(k.span(), f),
                        Err(e) => {
                            errors.push((k.span(), e));
                            k.clone()
                        }
                    };
                    (k, fill_node(v, combo, errors))
                })
                .collect(),
        ),
        other => other.clone(),
    };
    Spanned::new(node.span(), filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn s(v: &str) -> Spanned<MatrixValue> {
        Spanned::new(0..0, MatrixValue::String(v.into()))
    }

    fn t(pairs: &[(&str, &str)]) -> Spanned<MatrixValue> {
        let map: BTreeMap<_, _> = pairs
            .iter()
            .map(|(k, v)| {
                (
                    Spanned::new(0..0, (*k).into()),
                    Spanned::new(0..0, (*v).into()),
                )
            })
            .collect();
        Spanned::new(0..0, MatrixValue::Table(map))
    }

    #[test]
    fn fills_names_and_keys_and_leaves_args_and_escapes() {
        let (a, b) = (s("eggroll"), t(&[("when", "basic")]));
        let combo: Combo = vec![("parent", &a), ("v", &b)];
        assert_eq!(
            fill("{parent}-nn {v.when} {tag} {{parent}}", &combo),
            Ok("eggroll-nn basic {tag} {{parent}}".to_owned())
        );
        assert!(fill("{v}", &combo).is_err());
        assert!(fill("{v.other}", &combo).is_err());
        assert!(fill("{parent.x}", &combo).is_err());
        assert_eq!(fill("{unclosed", &combo), Ok("{unclosed".to_owned()));
    }

    #[test]
    fn combinations_vary_the_last_name_fastest_and_stop_at_the_limit() {
        let text = "a = ['1', '2']\nb = ['x', 'y']";
        let m: RawMatrix = toml::from_str(text).expect("matrix");
        let names: Vec<String> = combinations(&m)
            .expect("small")
            .iter()
            .map(|c| fill("{a}{b}", c).expect("fills"))
            .collect();
        assert_eq!(names, ["1x", "1y", "2x", "2y"]);
        let big = format!("a = [{}]\nb = ['x', 'y', 'z']", vec!["'v'"; 100].join(","));
        let m: RawMatrix = toml::from_str(&big).expect("matrix");
        assert!(combinations(&m).is_none());
    }
}
