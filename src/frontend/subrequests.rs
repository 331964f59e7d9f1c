//! Subrequests (`requestid`): questions about the stack answered without
//! building. buildx asks them with `--print=targets|outline` (0.13) or
//! `--call=...` (later); the answer is metadata only, no ref.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::ops::Range;

use serde_json::{json, Value};
use strata_proto::gateway as gw;

use super::errors::{base64, range, range_json, FrontendError};
use super::opts::FrontendOpts;
use crate::graph::{render, Base, Stack, StepKind};

/// Lists the subrequests this frontend answers.
pub const DESCRIBE: &str = "frontend.subrequests.describe";
/// The args, secrets and description of one target.
pub const OUTLINE: &str = "frontend.outline";
/// Every component, with the default marked.
pub const TARGETS: &str = "frontend.targets";
const VERSION: &str = "1.0.0";

/// Whether `name` is a subrequest this frontend answers.
pub fn supports(name: &str) -> bool {
    matches!(name, DESCRIBE | OUTLINE | TARGETS)
}

/// A metadata-only result, as BuildKit's subrequest helpers build it.
fn metadata_result(json: &Value, text: String) -> gw::Result {
    let pretty = serde_json::to_vec_pretty(json).unwrap_or_default();
    gw::Result {
        result: None,
        metadata: BTreeMap::from([
            ("result.json".to_owned(), pretty),
            ("result.txt".to_owned(), text.into_bytes()),
            ("version".to_owned(), VERSION.as_bytes().to_vec()),
        ]),
        attestations: BTreeMap::new(),
    }
}

/// The answer to `frontend.subrequests.describe`.
pub fn describe() -> gw::Result {
    let metadata = json!([{"name": "result.json", "description": ""}, {"name": "result.txt", "description": ""}]);
    let request = |name: &str, description: &str, opts: Value| {
        json!({
            "name": name,
            "version": VERSION,
            "type": "rpc",
            "description": description,
            "opts": opts,
            "inputs": [],
            "metadata": metadata,
            "refs": [],
        })
    };
    let all = json!([
        request(
            OUTLINE,
            "List all parameters current build target supports",
            json!([{"name": "target", "description": "Target component"}]),
        ),
        request(
            TARGETS,
            "List all targets current build supports",
            json!([])
        ),
        request(DESCRIBE, "List available subrequest types", json!([])),
    ]);
    let rows = all.as_array().into_iter().flatten().map(|r| {
        let field = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
        vec![
            field("name").trim_start_matches("frontend.").to_owned(),
            field("version"),
            field("description"),
        ]
    });
    let text = table(
        std::iter::once(vec!["NAME".into(), "VERSION".into(), "DESCRIPTION".into()])
            .chain(rows)
            .collect(),
        1,
    );
    metadata_result(&all, text)
}

/// Answers a subrequest about a loaded stack.
pub fn answer(name: &str, stack: &Stack, opts: &FrontendOpts) -> Result<gw::Result, FrontendError> {
    match name {
        DESCRIBE => Ok(describe()),
        OUTLINE => outline(stack, opts),
        TARGETS => Ok(targets(stack)),
        other => Err(FrontendError::UnsupportedSubrequest(other.to_owned())),
    }
}

/// A `pb.Location` in the stack file, as BuildKit's Go JSON (source index 0 omitted).
fn location(stack: &Stack, span: &Range<usize>) -> Value {
    json!({ "ranges": [range_json(&range(&stack.file, span))] })
}

fn outline(stack: &Stack, opts: &FrontendOpts) -> Result<gw::Result, FrontendError> {
    let target = opts.target.clone().or_else(|| stack.default_target.clone());
    let component = match &target {
        Some(t) => Some(stack.component(t).ok_or_else(|| {
            FrontendError::Other(format!(
                "target `{t}` is not a component of stack `{}`",
                stack.name
            ))
        })?),
        None => None,
    };
    let args: Vec<Value> = stack
        .args
        .iter()
        .map(|a| {
            let mut o = json!({"name": a.name, "value": a.value.to_string(), "location": location(stack, &a.span)});
            if let Some(d) = &a.description {
                o["description"] = d.clone().into();
            }
            o
        })
        .collect();
    let (secrets, seen) = outline_secrets(stack, target.as_deref());
    let mut o = serde_json::Map::new();
    if let Some(t) = &target {
        o.insert("name".into(), t.clone().into());
    }
    if let Some(d) = component.and_then(|c| c.description.clone()) {
        o.insert("description".into(), d.into());
    }
    if !args.is_empty() {
        o.insert("args".into(), args.clone().into());
    }
    if !secrets.is_empty() {
        o.insert("secrets".into(), secrets.clone().into());
    }
    o.insert(
        "sources".into(),
        json!([base64(stack.file.text.as_bytes())]),
    );

    let description = component.and_then(|c| c.description.clone());
    let text = outline_text(stack, target.as_deref(), description, &seen);
    Ok(metadata_result(&Value::Object(o), text))
}

/// The secrets the target's run steps (and those of the components it
/// needs) mount, each once, where first used; and their names, sorted.
fn outline_secrets(stack: &Stack, target: Option<&str>) -> (Vec<Value>, BTreeSet<String>) {
    let mut secrets: Vec<Value> = Vec::new();
    let mut seen = BTreeSet::new();
    for name in needed_components(stack, target) {
        let Some(c) = stack.component(&name) else {
            continue;
        };
        for step in &c.steps {
            let StepKind::Run(run) = &step.kind else {
                continue;
            };
            for id in &run.secrets {
                if seen.insert(id.clone()) {
                    secrets.push(json!({"name": id, "required": true, "location": location(stack, &step.span)}));
                }
            }
        }
    }
    (secrets, seen)
}

/// The outline as text, as `docker buildx build --call outline` prints it:
/// the target, the build args, the secrets.
fn outline_text(
    stack: &Stack,
    target: Option<&str>,
    description: Option<String>,
    secrets: &BTreeSet<String>,
) -> String {
    let mut text = String::new();
    if let Some(t) = target {
        let mut head = vec![vec!["TARGET:".to_owned(), t.to_owned()]];
        if let Some(d) = description {
            head.push(vec!["DESCRIPTION:".to_owned(), d]);
        }
        text.push_str(&table(head, 1));
        text.push('\n');
    }
    if !stack.args.is_empty() {
        let mut rows = vec![vec![
            "BUILD ARG".into(),
            "VALUE".into(),
            "DESCRIPTION".into(),
        ]];
        rows.extend(stack.args.iter().map(|a| {
            vec![
                a.name.clone(),
                a.value.to_string(),
                a.description.clone().unwrap_or_default(),
            ]
        }));
        text.push_str(&table(rows, 3));
        text.push('\n');
    }
    if !secrets.is_empty() {
        let mut rows = vec![vec!["SECRET".into(), "REQUIRED".into()]];
        rows.extend(secrets.iter().map(|s| vec![s.clone(), "true".to_owned()]));
        text.push_str(&table(rows, 3));
        text.push('\n');
    }
    text
}

/// The target and every component it needs, transitively.
fn needed_components(stack: &Stack, target: Option<&str>) -> BTreeSet<String> {
    let mut needed = BTreeSet::new();
    let mut todo: Vec<String> = target.map(str::to_owned).into_iter().collect();
    while let Some(name) = todo.pop() {
        if !needed.insert(name.clone()) {
            continue;
        }
        if let Some(c) = stack.component(&name) {
            todo.extend(c.dependencies().into_iter().map(|(d, _)| d));
        }
    }
    needed
}

fn targets(stack: &Stack) -> gw::Result {
    let mut list = Vec::new();
    let mut rows = vec![vec!["TARGET".to_owned(), "DESCRIPTION".to_owned()]];
    for c in &stack.components {
        let default = stack.default_target.as_deref() == Some(c.name.as_str());
        let mut description = c.description.clone().unwrap_or_default();
        if !c.enabled {
            let why = format!("[off: {}]", render::reason(stack, &c.name));
            description = if description.is_empty() {
                why
            } else {
                format!("{description} {why}")
            };
        }
        let base = match &c.base {
            Base::Image(r) => r.familiar(),
            Base::Component(n) => n.clone(),
            Base::Scratch => "scratch".to_owned(),
        };
        let mut t = json!({"name": c.name, "base": base, "location": location(stack, &c.span)});
        if default {
            t["default"] = true.into();
        }
        if !description.is_empty() {
            t["description"] = description.clone().into();
        }
        list.push(t);
        let name = if default {
            format!("{} (default)", c.name)
        } else {
            c.name.clone()
        };
        rows.push(vec![name, description]);
    }
    let json = json!({"targets": list, "sources": [base64(stack.file.text.as_bytes())]});
    metadata_result(&json, table(rows, 1))
}

/// Left-aligned columns separated by at least `gap` spaces (Go's tabwriter).
fn table(rows: Vec<Vec<String>>, gap: usize) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}", w = widths[i] + gap);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::gateway::tests::{launch, run, StubBridge};

    const STACK: &str = r#"# syntax=strata/frontend:latest
[stack]
name = "tiny"
image = "tiny/{component}:latest"
default = "x"

[args]
gpu = { type = "bool", default = false, description = "Build the GPU flavour" }
tag = "latest"

[component.x]
description = "The small one"
from = "strata.local/busybox:1.36"

[component.y]
from = "x"
when = "gpu"
"#;

    fn ask(request: &str, extra: &[(&str, &str)]) -> gw::Result {
        let mut b = StubBridge::with_stack(STACK);
        let mut opts = vec![("requestid", request)];
        opts.extend_from_slice(extra);
        let res = run(&mut b, &launch(&opts)).expect("answered");
        assert!(b.resolves.is_empty(), "a subrequest resolves no image");
        assert_eq!(
            b.solves.len(),
            usize::from(request != DESCRIBE),
            "only the stack file is read"
        );
        res
    }

    fn json_of(res: &gw::Result) -> Value {
        serde_json::from_slice(&res.metadata["result.json"]).expect("JSON")
    }

    fn text_of(res: &gw::Result) -> String {
        String::from_utf8_lossy(&res.metadata["result.txt"]).into_owned()
    }

    #[test]
    fn targets_lists_every_component() {
        let res = ask(TARGETS, &[]);
        assert!(res.result.is_none());
        assert_eq!(res.metadata["version"], b"1.0.0");
        let j = json_of(&res);
        assert_eq!(j["targets"][0]["name"], "x");
        assert_eq!(j["targets"][0]["default"], true);
        assert_eq!(j["targets"][0]["description"], "The small one");
        assert_eq!(j["targets"][0]["base"], "strata.local/busybox:1.36");
        assert_eq!(
            j["targets"][0]["location"]["ranges"][0]["start"]["line"],
            11
        );
        assert_eq!(j["targets"][1]["base"], "x");
        assert!(j["targets"][1].get("default").is_none());
        assert_eq!(j["sources"][0], base64(STACK.as_bytes()));
        assert_eq!(
            text_of(&res),
            "TARGET      DESCRIPTION\nx (default) The small one\ny           [off: when gpu: gpu=false (default)]\n"
        );
    }

    #[test]
    fn targets_lists_each_matrix_instance_at_its_table() {
        const MATRIX: &str = r#"[stack]
name = "tiny"

[template.base]
from = "strata.local/busybox:1.36"

[component."{v}-x"]
matrix = { v = ["a", "b"] }
extends = "base"
description = "variant {v}"
"#;
        let mut b = StubBridge::with_stack(MATRIX);
        let res = run(&mut b, &launch(&[("requestid", TARGETS)])).expect("answered");
        let j = json_of(&res);
        for (i, v) in ["a", "b"].iter().enumerate() {
            let t = &j["targets"][i];
            assert_eq!(t["name"], format!("{v}-x"));
            assert_eq!(t["description"], format!("variant {v}"));
            assert_eq!(t["base"], "strata.local/busybox:1.36");
            assert_eq!(t["location"]["ranges"][0]["start"]["line"], 7);
        }
        assert_eq!(j["targets"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn outline_lists_args_with_values() {
        let res = ask(OUTLINE, &[("build-arg:gpu", "true")]);
        let j = json_of(&res);
        assert_eq!(j["name"], "x");
        assert_eq!(j["description"], "The small one");
        assert_eq!(j["args"][0]["name"], "gpu");
        assert_eq!(j["args"][0]["value"], "true");
        assert_eq!(j["args"][0]["description"], "Build the GPU flavour");
        assert_eq!(j["args"][0]["location"]["ranges"][0]["start"]["line"], 8);
        assert_eq!(j["args"][1]["value"], "latest");
        let text = text_of(&res);
        assert!(text.starts_with("TARGET:      x\nDESCRIPTION: The small one\n\nBUILD ARG   VALUE    DESCRIPTION\ngpu         true     Build the GPU flavour\ntag         latest\n"), "{text}");
    }

    #[test]
    fn outline_of_an_unknown_target_fails() {
        let mut b = StubBridge::with_stack(STACK);
        let e = run(
            &mut b,
            &launch(&[("requestid", OUTLINE), ("target", "nope")]),
        )
        .expect_err("unknown");
        assert!(e.to_string().contains("`nope` is not a component"));
    }

    #[test]
    fn describe_lists_the_three() {
        let res = ask(DESCRIBE, &[]);
        let j = json_of(&res);
        let names: Vec<&str> = j
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert_eq!(names, [OUTLINE, TARGETS, DESCRIBE]);
        assert!(
            text_of(&res).starts_with("NAME                 VERSION DESCRIPTION\noutline "),
            "{}",
            text_of(&res)
        );
    }

    #[test]
    fn unknown_subrequests_are_refused_with_the_detail() {
        let mut b = StubBridge::default();
        let e = run(&mut b, &launch(&[("requestid", "frontend.lint")])).expect_err("unsupported");
        let s = e.to_status();
        assert!(s.details[0].type_url.ends_with("errdefs.Subrequest+json"));
        assert!(b.solves.is_empty());
    }
}
