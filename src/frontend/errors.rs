//! Errors as BuildKit shows them: a `google.rpc.Status` with code 2 and
//! typed details that buildx renders (`errdefs.Source` → `file:line` and
//! the user's lines with `>>>`; `errdefs.Subrequest` → "not supported").

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use base64::Engine as _;
use prost::Message as _;
use prost_types::Any;
use serde_json::{json, Value};
use strata_proto::{gateway, pb, rpc};

use super::opts::OptsError;
use crate::spec::{Diagnostic, Diagnostics, ErrorCode, Severity, SourceFile};

/// gRPC code `Unknown`: any other code gets its name prefixed at every hop.
const CODE_UNKNOWN: i32 = 2;
const SOURCE_TYPE_URL: &str = "github.com/moby/buildkit/errdefs.Source+json";
const SUBREQUEST_TYPE_URL: &str = "github.com/moby/buildkit/errdefs.Subrequest+json";

/// The language buildx is told the stack file is in.
pub const LANGUAGE: &str = "toml";

/// Why a frontend run failed.
#[derive(Debug)]
pub enum FrontendError {
    /// The frontend options cannot be honoured.
    Opts(OptsError),
    /// Problems located in the stack file (parse, resolve, lower, images).
    Stack(Diagnostics),
    /// A request BuildKit could not answer.
    Engine {
        /// What Strata was doing.
        doing: String,
        /// BuildKit's answer.
        status: tonic::Status,
    },
    /// A build step failed while BuildKit built the target.
    Step(Box<StepFailure>),
    /// A `test` entry of the target failed.
    Test(Box<TestFailure>),
    /// A subrequest (`requestid`) this frontend does not answer.
    UnsupportedSubrequest(String),
    /// Anything else the user can act on.
    Other(String),
    /// A panic: always a Strata bug.
    Bug(String),
}

/// A failed build step: BuildKit's error, told with the step's name (the
/// user's command or package list, not the script Strata generated) and
/// its line in the stack file.
#[derive(Debug)]
pub struct StepFailure {
    /// The stack file's name.
    pub file: String,
    /// The component being built.
    pub component: String,
    /// Each op of the solved Definition by digest: its progress name and
    /// the first stack-file line of its location.
    pub steps: BTreeMap<String, (String, Option<u32>)>,
    /// BuildKit's answer to the solve.
    pub status: tonic::Status,
}

const VERTEX_TYPE_URL_SUFFIX: &str = "errdefs.Vertex+json";

impl StepFailure {
    /// The digest of the failing op, from BuildKit's `errdefs.Vertex` detail
    /// (JSON, or protobuf on older daemons).
    fn vertex(details: &[Any]) -> Option<String> {
        details.iter().find_map(|d| {
            if d.type_url.ends_with(VERTEX_TYPE_URL_SUFFIX) {
                let v: Value = serde_json::from_slice(&d.value).ok()?;
                v.get("digest")?.as_str().map(str::to_owned)
            } else if d.type_url.ends_with("errdefs.Vertex") {
                strata_proto::errdefs::Vertex::decode(d.value.as_slice())
                    .ok()
                    .map(|v| v.digest)
            } else {
                None
            }
        })
    }

    /// BuildKit's message without the generated script: an exec's
    /// `process "<script>" did not complete successfully: exit code: N`
    /// becomes `failed: exit code: N`.
    fn reason(message: &str) -> String {
        const DONE: &str = " did not complete successfully: ";
        match (message.starts_with("process \""), message.rfind(DONE)) {
            (true, Some(i)) => format!("failed: {}", &message[i + DONE.len()..]),
            _ => message.to_owned(),
        }
    }

    fn describe(&self, details: &[Any]) -> String {
        let reason = Self::reason(self.status.message());
        match Self::vertex(details).and_then(|d| self.steps.get(&d)) {
            Some((name, Some(line))) => format!("{}:{line}: {name} {reason}", self.file),
            Some((name, None)) => format!("{name} {reason}"),
            None => format!("building component `{}`: {reason}", self.component),
        }
    }
}

/// A failed `test` entry: BuildKit's error, located at the entry.
#[derive(Debug)]
pub struct TestFailure {
    /// The stack file.
    pub file: SourceFile,
    /// Where the test is written.
    pub span: Range<usize>,
    /// The component tested.
    pub component: String,
    /// The test's name.
    pub name: String,
    /// BuildKit's answer to the solve that ran it.
    pub status: tonic::Status,
}

impl FrontendError {
    /// A BuildKit call failed while `doing` something.
    pub fn engine(doing: impl Into<String>, status: tonic::Status) -> Self {
        FrontendError::Engine {
            doing: doing.into(),
            status,
        }
    }

    /// One problem at `span` of the stack file.
    pub fn at(
        file: &SourceFile,
        code: ErrorCode,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        FrontendError::Stack(Diagnostics {
            file: file.clone(),
            items: vec![Diagnostic::error(code, span, message)],
        })
    }

    /// The status Returned to BuildKit.
    pub fn to_status(&self) -> rpc::Status {
        let mut details = Vec::new();
        let message = match self {
            FrontendError::Opts(e) => match e.problems.len() {
                1 => format!("frontend option {e}"),
                n => format!("{n} frontend options cannot be used:\n{e}"),
            },
            FrontendError::Stack(diags) => stack_message(diags, &mut details),
            FrontendError::Engine { doing, status } => {
                format!("{doing}: {}", status.message())
            }
            FrontendError::Step(s) => {
                // BuildKit's details (the failing vertex, its location in
                // the stack file) go through, so buildx shows the lines.
                details.extend(
                    rpc::Status::decode(s.status.details())
                        .map(|st| st.details)
                        .unwrap_or_default(),
                );
                s.describe(&details)
            }
            FrontendError::Test(t) => t.describe(&mut details),
            FrontendError::UnsupportedSubrequest(name) => {
                details.push(Any {
                    type_url: SUBREQUEST_TYPE_URL.to_owned(),
                    value: json!({ "name": name }).to_string().into_bytes(),
                });
                format!("the Strata frontend does not support the subrequest `{name}`")
            }
            FrontendError::Other(m) => m.clone(),
            FrontendError::Bug(m) => format!(
                "internal error in the Strata frontend (a bug; please report it with the stack file): {m}"
            ),
        };
        rpc::Status {
            code: CODE_UNKNOWN,
            message,
            details,
        }
    }
}

/// The message of a stack with errors (one line each, located), and a
/// source detail per error for buildx to show the lines.
fn stack_message(diags: &Diagnostics, details: &mut Vec<Any>) -> String {
    let errors: Vec<&Diagnostic> = diags
        .items
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    for d in &errors {
        if let Some(detail) = source_detail(&diags.file, &d.span) {
            details.push(detail);
        }
    }
    let lines: Vec<String> = errors.iter().map(|d| describe(&diags.file, d)).collect();
    match lines.len() {
        0 => format!("{}: the stack file has problems", diags.file.name),
        1 => lines.concat(),
        n => format!("{n} errors in {}:\n{}", diags.file.name, lines.join("\n")),
    }
}

impl TestFailure {
    /// The message of a failed component test; BuildKit's own details
    /// (the failing vertex, its exit code, its location) go through as
    /// they came, with the test's location when they have none.
    fn describe(&self, details: &mut Vec<Any>) -> String {
        details.extend(
            rpc::Status::decode(self.status.details())
                .map(|s| s.details)
                .unwrap_or_default(),
        );
        if !details.iter().any(|d| d.type_url == SOURCE_TYPE_URL) {
            details.extend(source_detail(&self.file, &self.span));
        }
        let at = self.file.line_col(self.span.start);
        format!(
            "{}:{}: test `{}` of component `{}` failed: {}",
            self.file.name,
            at.line,
            self.name,
            self.component,
            self.status.message()
        )
    }
}

impl fmt::Display for FrontendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_status().message)
    }
}

impl std::error::Error for FrontendError {}

impl From<OptsError> for FrontendError {
    fn from(e: OptsError) -> Self {
        FrontendError::Opts(e)
    }
}

impl From<Diagnostics> for FrontendError {
    fn from(d: Diagnostics) -> Self {
        FrontendError::Stack(d)
    }
}

/// `file:line:col: message`, then the help on its own line.
fn describe(file: &SourceFile, d: &Diagnostic) -> String {
    let mut s = if located(&d.span) {
        let at = file.line_col(d.span.start);
        format!(
            "{}:{}:{}: {}",
            file.name,
            at.line,
            at.col,
            d.shown_message()
        )
    } else {
        d.shown_message()
    };
    if let Some(help) = d.shown_help() {
        s.push_str("\n  help: ");
        s.push_str(&help);
    }
    s
}

/// Spans at `0..0` mean "not in the file" (for example a `--build-arg` naming no arg).
fn located(span: &Range<usize>) -> bool {
    *span != (0..0)
}

/// The stack file as BuildKit's `SourceInfo`.
pub fn source_info(file: &SourceFile) -> pb::SourceInfo {
    pb::SourceInfo {
        filename: file.name.clone(),
        data: file.text.clone().into_bytes(),
        definition: None,
        language: LANGUAGE.to_owned(),
    }
}

/// A span as a BuildKit range: 1-based lines, 0-based characters.
pub fn range(file: &SourceFile, span: &Range<usize>) -> pb::Range {
    let start = file.line_col(span.start);
    // A span that ends with its line break would otherwise reach into the next line.
    let last = if span.end > span.start {
        span.end - 1
    } else {
        span.start
    };
    let end = file.line_col(last.max(span.start));
    let pos = |lc: crate::spec::diag::LineCol| pb::Position {
        line: i32::try_from(lc.line).unwrap_or(i32::MAX),
        character: i32::try_from(lc.col.saturating_sub(1)).unwrap_or(i32::MAX),
    };
    pb::Range {
        start: Some(pos(start)),
        end: Some(pos(end)),
    }
}

/// `pb.Range` as BuildKit's Go JSON (`omitempty` on zero numbers).
pub fn range_json(r: &pb::Range) -> Value {
    let pos = |p: &Option<pb::Position>| {
        let p = p.unwrap_or_default();
        let mut o = serde_json::Map::new();
        if p.line != 0 {
            o.insert("line".into(), p.line.into());
        }
        if p.character != 0 {
            o.insert("character".into(), p.character.into());
        }
        Value::Object(o)
    };
    json!({ "start": pos(&r.start), "end": pos(&r.end) })
}

/// Standard base64, as Go's `encoding/json` writes `[]byte`.
pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The `errdefs.Source` detail that makes buildx print the user's lines.
fn source_detail(file: &SourceFile, span: &Range<usize>) -> Option<Any> {
    if !located(span) {
        return None;
    }
    let value = json!({
        "info": {
            "filename": file.name,
            "data": base64(file.text.as_bytes()),
            "language": LANGUAGE,
        },
        "ranges": [range_json(&range(file, span))],
    });
    Some(Any {
        type_url: SOURCE_TYPE_URL.to_owned(),
        value: value.to_string().into_bytes(),
    })
}

/// A stack-file warning as a `Warn` request attached to vertex `digest`.
pub fn warning(file: &SourceFile, d: &Diagnostic, digest: &str) -> gateway::WarnRequest {
    let at = file.line_col(d.span.start);
    let short = if d.code.is_empty() {
        format!("{}:{}: {}", file.name, at.line, d.shown_message())
    } else {
        format!(
            "{}:{}: [{}] {}",
            file.name,
            at.line,
            d.code,
            d.shown_message()
        )
    };
    gateway::WarnRequest {
        digest: digest.to_owned(),
        level: 1,
        short: short.into_bytes(),
        detail: d.shown_help().into_iter().map(String::into_bytes).collect(),
        url: String::new(),
        info: located(&d.span).then(|| source_info(file)),
        ranges: if located(&d.span) {
            vec![range(file, &d.span)]
        } else {
            Vec::new()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_step_is_named_and_located_without_its_script() {
        let vertex = Any {
            type_url: "github.com/moby/buildkit/errdefs.Vertex+json".to_owned(),
            value: br#"{"digest":"sha256:aa"}"#.to_vec(),
        };
        let status = tonic::Status::with_details(
            tonic::Code::Unknown,
            "process \"/bin/sh -c set -eu\\npip install -r /run/x\" did not complete successfully: exit code: 1",
            rpc::Status {
                code: 2,
                message: String::new(),
                details: vec![vertex],
            }
            .encode_to_vec()
            .into(),
        );
        let e = FrontendError::Step(Box::new(StepFailure {
            file: "strata.toml".to_owned(),
            component: "app".to_owned(),
            steps: BTreeMap::from([(
                "sha256:aa".to_owned(),
                (
                    "[app] pip install -r envs/requirements.txt".to_owned(),
                    Some(8),
                ),
            )]),
            status,
        }));
        let s = e.to_status();
        assert_eq!(
            s.message,
            "strata.toml:8: [app] pip install -r envs/requirements.txt failed: exit code: 1"
        );
        assert_eq!(s.details.len(), 1, "BuildKit's details go through");
    }

    fn file() -> SourceFile {
        SourceFile::new(
            "strata.toml",
            "# syntax=strata/frontend\n[args]\ngpu = false\n[component.x]\nfrom = \"busybox:1.36\"\n",
        )
    }

    fn detail_json(any: &Any) -> Value {
        serde_json::from_slice(&any.value).expect("detail is JSON")
    }

    #[test]
    fn located_errors_carry_a_source_detail() {
        let f = file();
        let at = f.text.find("gpu").expect("present");
        let d = Diagnostic::error(
            ErrorCode::ArgValue,
            at..at + 11,
            "`gpu=maybe`: `maybe` is not a bool",
        )
        .with_help("give true or false");
        let status = FrontendError::Stack(Diagnostics {
            file: f.clone(),
            items: vec![d],
        })
        .to_status();
        assert_eq!(status.code, 2);
        assert_eq!(
            status.message,
            "strata.toml:3:1: `gpu=maybe`: `maybe` is not a bool\n  help: give true or false"
        );
        assert_eq!(status.details.len(), 1);
        assert_eq!(status.details[0].type_url, SOURCE_TYPE_URL);
        let v = detail_json(&status.details[0]);
        assert_eq!(v["info"]["filename"], "strata.toml");
        assert_eq!(v["info"]["language"], "toml");
        assert_eq!(v["info"]["data"], base64(f.text.as_bytes()));
        assert_eq!(
            v["ranges"],
            json!([{"start": {"line": 3}, "end": {"line": 3, "character": 10}}])
        );
    }

    #[test]
    fn a_failed_test_keeps_buildkits_details_and_is_located() {
        let f = file();
        let at = f.text.find("from").expect("present");
        let failure = |status| {
            FrontendError::Test(Box::new(TestFailure {
                file: f.clone(),
                span: at..at + 4,
                component: "x".into(),
                name: "imports".into(),
                status,
            }))
            .to_status()
        };
        // No details from BuildKit: the test's own location is attached.
        let s = failure(tonic::Status::unknown("exit code: 1"));
        assert_eq!(
            s.message,
            "strata.toml:5: test `imports` of component `x` failed: exit code: 1"
        );
        assert_eq!(s.details.len(), 1);
        assert_eq!(detail_json(&s.details[0])["ranges"][0]["start"]["line"], 5);
        // BuildKit's details (its own Source among them) go through alone.
        let theirs = rpc::Status {
            code: 2,
            message: "exit code: 1".into(),
            details: vec![Any {
                type_url: SOURCE_TYPE_URL.into(),
                value: b"{}".to_vec(),
            }],
        };
        let status = tonic::Status::with_details(
            tonic::Code::Unknown,
            "exit code: 1",
            theirs.encode_to_vec().into(),
        );
        let s = failure(status);
        assert_eq!(s.details, theirs.details);
    }

    #[test]
    fn several_errors_are_all_named_and_warnings_left_out() {
        let f = file();
        let status = FrontendError::Stack(Diagnostics {
            file: f,
            items: vec![
                Diagnostic::error(ErrorCode::UnknownComponent, 25..31, "first"),
                Diagnostic::warning("root-user", 40..45, "a lint"),
                Diagnostic::error(
                    ErrorCode::UndeclaredArg,
                    0..0,
                    "`nope=1` sets an arg this stack does not declare",
                ),
            ],
        })
        .to_status();
        assert!(status.message.starts_with("2 errors in strata.toml:\n"));
        assert!(status.message.contains("strata.toml:2:1: first"));
        assert!(status.message.contains("\n`nope=1` sets an arg"));
        assert!(!status.message.contains("a lint"));
        // The unlocated one has no source to show.
        assert_eq!(status.details.len(), 1);
    }

    #[test]
    fn a_span_ending_in_a_line_break_stays_on_its_line() {
        let f = file();
        let start = f.text.find("[args]").expect("present");
        let r = range(&f, &(start..start + 7));
        assert_eq!(r.start.map(|p| p.line), Some(2));
        assert_eq!(r.end.map(|p| p.line), Some(2));
    }

    #[test]
    fn unknown_subrequest_detail() {
        let s = FrontendError::UnsupportedSubrequest("frontend.lint".into()).to_status();
        assert_eq!(s.code, 2);
        assert_eq!(s.details[0].type_url, SUBREQUEST_TYPE_URL);
        assert_eq!(detail_json(&s.details[0]), json!({"name": "frontend.lint"}));
    }

    #[test]
    fn warnings_name_file_line_and_code() {
        let f = file();
        let d = Diagnostic::warning("root-user", 57..71, "runs as root").with_help("add [user]");
        let w = warning(&f, &d, "sha256:abc");
        assert_eq!(w.level, 1);
        assert_eq!(w.digest, "sha256:abc");
        assert_eq!(
            String::from_utf8_lossy(&w.short),
            "strata.toml:4: [root-user] runs as root"
        );
        assert_eq!(w.detail, vec![b"add [user]".to_vec()]);
        assert_eq!(w.ranges.len(), 1);
        assert_eq!(w.info.map(|i| i.language).as_deref(), Some("toml"));
    }

    #[test]
    fn bugs_say_so() {
        let s = FrontendError::Bug("index out of bounds".into()).to_status();
        assert!(s.message.contains("bug"), "{}", s.message);
        assert!(s.message.contains("index out of bounds"));
    }
}
