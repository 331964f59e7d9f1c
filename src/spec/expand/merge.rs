//! How a table extends a template: the merge rule of each key.

use serde_spanned::Spanned;

use super::node::Node;

/// Keys whose lists are appended: the template's items, then the table's.
pub const APPENDED: &[&str] = &[
    "allow", "conda", "copy", "run", "steps", "test", "expose", "volumes",
];

/// Keys whose tables are merged key by key; the table's keys win.
pub const MERGED: &[&str] = &["env", "labels"];

/// Keys a table never inherits: they say how the table itself is made.
pub const NOT_INHERITED: &[&str] = &["extends", "matrix"];

/// Most items a list may reach by appending templates (a guard against a
/// chain of templates that doubles a list at every step).
pub const MAX_ITEMS: usize = 10_000;

/// `table` on top of `base`: every other key of `table` replaces the
/// base's (strings, numbers, `from`, `cmd`, `gpu`, `apt`, `pip`, ...).
/// Err(key) when an appended list would pass [`MAX_ITEMS`].
pub fn merge(base: &Spanned<Node>, table: &Spanned<Node>) -> Result<Spanned<Node>, String> {
    let (Node::Table(below), Node::Table(above)) = (base.get_ref(), table.get_ref()) else {
        return Ok(table.clone());
    };
    let mut out: Vec<(Spanned<String>, Spanned<Node>)> = below
        .iter()
        .filter(|(k, _)| !NOT_INHERITED.contains(&k.get_ref().as_str()))
        .cloned()
        .collect();
    for (key, value) in above {
        let name = key.get_ref().as_str();
        let Some(at) = out.iter().position(|(k, _)| k.get_ref() == name) else {
            out.push((key.clone(), value.clone()));
            continue;
        };
        let below = &out[at].1;
        let merged = if APPENDED.contains(&name) {
            append(below, value).ok_or_else(|| name.to_owned())?
        } else if MERGED.contains(&name) {
            overlay(below, value)
        } else {
            value.clone()
        };
        out[at] = (key.clone(), merged);
    }
    Ok(Spanned::new(table.span(), Node::Table(out)))
}

/// The base's items, then the table's; None past [`MAX_ITEMS`].
fn append(below: &Spanned<Node>, above: &Spanned<Node>) -> Option<Spanned<Node>> {
    match (below.get_ref(), above.get_ref()) {
        (Node::Array(a), Node::Array(b)) => {
            if a.len() + b.len() > MAX_ITEMS {
                return None;
            }
            let items = a.iter().chain(b).cloned().collect();
            Some(Spanned::new(above.span(), Node::Array(items)))
        }
        _ => Some(above.clone()),
    }
}

/// The base's keys, each replaced by the table's of the same name.
fn overlay(below: &Spanned<Node>, above: &Spanned<Node>) -> Spanned<Node> {
    match (below.get_ref(), above.get_ref()) {
        (Node::Table(a), Node::Table(b)) => {
            let mut out = a.clone();
            for (k, v) in b {
                match out.iter_mut().find(|(ok, _)| ok.get_ref() == k.get_ref()) {
                    Some(slot) => *slot = (k.clone(), v.clone()),
                    None => out.push((k.clone(), v.clone())),
                }
            }
            Spanned::new(above.span(), Node::Table(out))
        }
        _ => above.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(text: &str) -> Spanned<Node> {
        toml::from_str(text).expect("TOML")
    }

    fn plain(n: &Spanned<Node>) -> String {
        match n.get_ref() {
            Node::Str(s) => format!("{s:?}"),
            Node::Int(i) => i.to_string(),
            Node::Array(items) => {
                let items: Vec<String> = items.iter().map(plain).collect();
                format!("[{}]", items.join(", "))
            }
            Node::Table(entries) => {
                let items: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{} = {}", k.get_ref(), plain(v)))
                    .collect();
                format!("{{{}}}", items.join(", "))
            }
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn lists_append_tables_merge_the_rest_is_replaced() {
        let base = node(
            "from = 'a'\nextends = 'x'\ntest = ['t1']\nenv = { A = '1', B = '2' }\ncmd = ['x']\napt = ['p']",
        );
        let table =
            node("from = 'b'\ntest = ['t2']\nenv = { B = '3', C = '4' }\ncmd = ['y']\napt = ['q']");
        let merged = merge(&base, &table).expect("merges");
        assert_eq!(
            plain(&merged),
            r#"{apt = ["q"], cmd = ["y"], env = {A = "1", B = "3", C = "4"}, from = "b", test = ["t1", "t2"]}"#
        );
    }

    #[test]
    fn a_list_past_the_limit_is_refused() {
        let items = vec!["'x'"; MAX_ITEMS / 2 + 1].join(", ");
        let base = node(&format!("test = [{items}]"));
        assert_eq!(merge(&base, &base), Err("test".to_owned()));
    }
}
