//! The component graph as text, DOT, Mermaid or JSON.

use std::fmt::Write;

use super::{ArgOrigin, Base, Component, RunsOn, Stack};

/// Why a component is on or off, in words.
pub fn reason(stack: &Stack, name: &str) -> String {
    let Some(c) = stack.component(name) else {
        return String::new();
    };
    let Some(cond) = &c.condition else {
        return "always".to_owned();
    };
    let mut names = Vec::new();
    if let Ok(e) = crate::spec::expr::parse(cond) {
        e.names(&mut names);
    }
    let mut names: Vec<String> = names.into_iter().map(|(n, _)| n).collect();
    names.sort();
    names.dedup();
    let values: Vec<String> = names
        .iter()
        .filter_map(|n| stack.args.iter().find(|a| &a.name == n))
        .map(|a| {
            let from = match &a.origin {
                ArgOrigin::Default => "default".to_owned(),
                ArgOrigin::Profile(p) => format!("profile {p}"),
                ArgOrigin::Override => "override".to_owned(),
            };
            format!("{}={} ({from})", a.name, a.value)
        })
        .collect();
    format!("when {cond}: {}", values.join(", "))
}

fn base_text(base: &Base) -> String {
    match base {
        Base::Image(r) => r.familiar(),
        Base::Component(c) => c.clone(),
        Base::Scratch => "scratch".into(),
    }
}

/// A build-platform component's mark in the drawings.
const ON_BUILD: &str = "(build platform)";

/// The component's image, marked when it runs on the build platform.
fn image_text(c: &Component) -> String {
    let names: Vec<String> = c.names().map(|n| n.familiar()).collect();
    let names = names.join(", ");
    match c.platform {
        RunsOn::Target => names,
        RunsOn::Build => format!("{names} {ON_BUILD}"),
    }
}

/// One line per enabled component, then its edges.
pub fn text(stack: &Stack) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "stack {}", stack.name);
    for c in stack.enabled() {
        let _ = writeln!(
            out,
            "{}  [{}]  {}",
            c.name,
            image_text(c),
            reason(stack, &c.name)
        );
        let _ = writeln!(out, "  from {}", base_text(&c.base));
        for (dep, kind) in c.dependencies() {
            if kind != super::EdgeKind::From {
                let _ = writeln!(out, "  {} {dep}", kind.label());
            }
        }
    }
    let off: Vec<&str> = stack
        .components
        .iter()
        .filter(|c| !c.enabled)
        .map(|c| c.name.as_str())
        .collect();
    if !off.is_empty() {
        let _ = writeln!(out, "disabled: {}", off.join(", "));
    }
    out
}

fn dot_id(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Graphviz DOT.
pub fn dot(stack: &Stack) -> String {
    let mut out = format!(
        "digraph {} {{\n  rankdir=BT;\n  node [shape=box];\n",
        dot_id(&stack.name)
    );
    for c in stack.enabled() {
        let _ = writeln!(
            out,
            "  {} [label={}];",
            dot_id(&c.name),
            dot_id(&format!("{}\\n{}", c.name, image_text(c)))
        );
        if let Base::Image(r) = &c.base {
            let _ = writeln!(
                out,
                "  {} [shape=ellipse, style=dashed];",
                dot_id(&r.familiar())
            );
            let _ = writeln!(
                out,
                "  {} -> {} [label=\"FROM\"];",
                dot_id(&c.name),
                dot_id(&r.familiar())
            );
        }
    }
    for e in stack.edges() {
        let style = if e.kind == super::EdgeKind::From {
            ""
        } else {
            ", style=dashed"
        };
        let _ = writeln!(
            out,
            "  {} -> {} [label={}{style}];",
            dot_id(&e.from),
            dot_id(&e.to),
            dot_id(e.kind.label())
        );
    }
    out.push_str("}\n");
    out
}

fn mermaid_id(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// A Mermaid flowchart (renders on GitHub and in most Markdown viewers).
pub fn mermaid(stack: &Stack) -> String {
    let mut out = String::from("flowchart BT\n");
    for c in stack.enabled() {
        let _ = writeln!(
            out,
            "  {}[\"{}<br/>{}\"]",
            mermaid_id(&c.name),
            c.name,
            image_text(c)
        );
        if let Base::Image(r) = &c.base {
            let id = format!("img_{}", mermaid_id(&r.familiar()));
            let _ = writeln!(out, "  {id}([\"{}\"])", r.familiar());
            let _ = writeln!(out, "  {} -->|FROM| {id}", mermaid_id(&c.name));
        }
    }
    for e in stack.edges() {
        let arrow = if e.kind == super::EdgeKind::From {
            "-->"
        } else {
            "-.->"
        };
        let _ = writeln!(
            out,
            "  {} {arrow}|{}| {}",
            mermaid_id(&e.from),
            e.kind.label(),
            mermaid_id(&e.to)
        );
    }
    out
}

/// Machine-readable: components, edges, args and why each component is on.
pub fn json(stack: &Stack) -> serde_json::Value {
    let components: Vec<serde_json::Value> = stack
        .components
        .iter()
        .map(|c| {
            let mut v = serde_json::json!({
                "name": c.name,
                "enabled": c.enabled,
                "reason": reason(stack, &c.name),
                "image": c.image.familiar(),
                "base": base_text(&c.base),
                "description": c.description,
                "publish": c.publish,
            });
            // Only build-platform components say so: `platform` is rare.
            if c.platform == RunsOn::Build {
                v["platform"] = c.platform.word().into();
            }
            // Only images with extra tags list their names.
            if !c.extra_tags.is_empty() {
                let names: Vec<String> = c.names().map(|n| n.familiar()).collect();
                v["tags"] = serde_json::json!(names);
            }
            // Only components made from a template or a matrix say so.
            if let Some(origin) = &c.origin {
                v["origin"] = serde_json::json!(origin);
            }
            v
        })
        .collect();
    serde_json::json!({
        "stack": stack.name,
        "profile": stack.profile,
        "args": stack.args,
        "components": components,
        "edges": stack.edges(),
    })
}

#[cfg(test)]
mod tests {
    use crate::load;
    use crate::spec::resolve::Overrides;

    #[test]
    fn every_name_of_an_image_is_shown() {
        let text = "[stack]\nname = \"s\"\n[component.a]\nfrom = \"scratch\"\nimage = [\"r/a:1\", \"r/a:latest\"]\n[component.b]\nfrom = \"a\"\nimage = \"r/b:1\"\n";
        let stack = load("strata.toml", text.as_bytes(), &Overrides::default()).expect("valid");
        let t = super::text(&stack);
        assert!(t.contains("a  [r/a:1, r/a:latest]"), "{t}");
        assert!(t.contains("b  [r/b:1]"), "{t}");
        let j = super::json(&stack);
        let a = &j["components"][0];
        assert_eq!(a["image"], "r/a:1");
        assert_eq!(a["tags"], serde_json::json!(["r/a:1", "r/a:latest"]));
        assert!(j["components"][1].get("tags").is_none());
    }
}
