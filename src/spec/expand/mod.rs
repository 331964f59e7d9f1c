//! Templates and matrices, the stage between raw and resolve: every
//! `[component.<name>]` that `extends` templates or has a `matrix` becomes
//! the ordinary components it stands for. Each value keeps the span of
//! the line it was written on (the template's or the instance's), so the
//! resolver's errors point there; [`Expansion::annotate`] then names the
//! instance a shared line was part of.

mod matrix;
mod merge;
mod node;

pub use merge::{APPENDED, MERGED};

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::codes::ErrorCode;
use super::diag::{Diagnostic, Suggestions};
use super::raw::{MatrixValue, RawComponent, RawMatrix, RawStackFile, SpannedString};
use super::resolve::valid_name;
use crate::graph::{self, MatrixInstance, Origin};
use node::Node;

/// Most tables one chain of `extends` may pass through.
pub const MAX_DEPTH: usize = 32;

/// Most notes one diagnostic gets (one per instance of a shared line).
const MAX_NOTES: usize = 3;

/// What the expansion made: each instance's origin, and which written
/// tables each instance was made from.
#[derive(Debug, Default)]
pub struct Expansion {
    /// Each instance's origin, by component name.
    pub origins: BTreeMap<String, Origin>,
    uses: Vec<Use>,
}

/// An instance made (in part) from a written table.
#[derive(Debug)]
struct Use {
    /// Where the table is written: its header and each of its keys.
    regions: Vec<Range<usize>>,
    note: String,
    at: Range<usize>,
    /// The instance's name: a message that quotes it is about it.
    instance: String,
    /// Its matrix values: a message that quotes one is likely about it.
    values: Vec<String>,
    /// The component the table is, when an instance extends a component:
    /// a message that quotes it is about that component, not the instance.
    owner: Option<String>,
}

impl Use {
    fn quoted_in(name: &str, message: &str) -> bool {
        message.contains(&format!("`{name}`"))
    }

    /// Whether a diagnostic with `message` at `at` may be about this use.
    fn covers(&self, at: usize, message: &str) -> bool {
        self.regions.iter().any(|r| r.contains(&at))
            && !self
                .owner
                .as_deref()
                .is_some_and(|o| Use::quoted_in(o, message))
    }
}

impl Expansion {
    /// Notes on the resolver's diagnostics: one found while resolving a
    /// component (`owners`: index -> name) names that component if its
    /// line is shared; any other is [`Expansion::annotate`]d.
    pub fn attribute(&self, items: &mut [Diagnostic], owners: &[(usize, String)]) {
        let mut done = vec![false; items.len()];
        for (i, name) in owners {
            let Some(d) = items.get_mut(*i) else {
                continue;
            };
            done[*i] = true;
            let mut uses: Vec<&Use> = self
                .uses
                .iter()
                .filter(|u| &u.instance == name && u.covers(d.span.start, &d.message))
                .collect();
            // A message that does not name its component is about the line
            // (reported once): the others made from it are noted too.
            if !uses.is_empty() && !Use::quoted_in(name, &d.message) {
                uses.extend(self.pick(d).into_iter().filter(|u| &u.instance != name));
            }
            push_notes(d, &uses);
        }
        for (d, _) in items.iter_mut().zip(done).filter(|(_, done)| !done) {
            self.annotate_one(d);
        }
    }

    /// Adds, to each lint warning on a line that several components share
    /// (a template, a matrix table), notes naming them. (Errors were
    /// given theirs by [`Expansion::attribute`].)
    pub fn annotate(&self, items: &mut [Diagnostic]) {
        let warnings = items
            .iter_mut()
            .filter(|d| d.severity == super::diag::Severity::Warning && d.notes.is_empty());
        for d in warnings {
            self.annotate_one(d);
        }
    }

    fn annotate_one(&self, d: &mut Diagnostic) {
        let uses = self.pick(d);
        push_notes(d, &uses);
    }

    /// The uses a diagnostic is likely about, from its place and message.
    fn pick(&self, d: &Diagnostic) -> Vec<&Use> {
        let mut uses: Vec<&Use> = self
            .uses
            .iter()
            .filter(|u| u.covers(d.span.start, &d.message))
            .collect();
        // The instances the message names, else those whose values it
        // quotes, else every one that uses the line.
        let named = |u: &&Use| Use::quoted_in(&u.instance, &d.message);
        let valued = |u: &&Use| u.values.iter().any(|v| d.message.contains(v.as_str()));
        if uses.iter().any(named) {
            uses.retain(named);
        } else if uses.iter().any(valued) {
            uses.retain(valued);
        }
        uses
    }

    /// Sets each resolved component's origin.
    pub fn mark(&self, components: &mut [graph::Component]) {
        for c in components {
            c.origin = self.origins.get(&c.name).cloned();
        }
    }
}

fn push_notes(d: &mut Diagnostic, uses: &[&Use]) {
    for u in uses {
        d.notes.push(super::diag::Note {
            message: u.note.clone(),
            span: u.at.clone(),
        });
    }
}

/// Sorts diagnostics by place and merges those that differ only in their
/// notes (the same template line, reported for each component made from
/// it), keeping at most [`MAX_NOTES`] notes each.
pub fn merge_notes(items: &mut Vec<Diagnostic>) {
    items.sort_by_key(|d| (d.span.start, d.span.end));
    let same = |a: &Diagnostic, b: &Diagnostic| {
        (a.severity, a.code, &a.message, &a.span, &a.help)
            == (b.severity, b.code, &b.message, &b.span, &b.help)
    };
    let mut out: Vec<Diagnostic> = Vec::with_capacity(items.len());
    for d in items.drain(..) {
        match out
            .iter_mut()
            .rev()
            .take_while(|o| o.span == d.span)
            .find(|o| same(o, &d))
        {
            Some(o) => {
                for n in d.notes {
                    if !o.notes.contains(&n) {
                        o.notes.push(n);
                    }
                }
            }
            None => out.push(d),
        }
    }
    for d in &mut out {
        if d.notes.len() > MAX_NOTES {
            let more = d.notes.len() - MAX_NOTES;
            d.notes.truncate(MAX_NOTES);
            let at = d.span.clone();
            d.notes.push(super::diag::Note {
                message: format!("and {more} more components use this line"),
                span: at,
            });
        }
    }
    *items = out;
}

/// The reused tables again, as nodes to merge and copy.
#[derive(Deserialize)]
struct Tables {
    #[serde(default)]
    component: BTreeMap<SpannedString, Spanned<Node>>,
    #[serde(default)]
    template: BTreeMap<SpannedString, Spanned<Node>>,
}

/// Replaces `raw`'s components with the components they stand for.
pub fn expand(raw: &mut RawStackFile, text: &str) -> Result<Expansion, Vec<Diagnostic>> {
    let reuses = !raw.template.is_empty()
        || raw
            .component
            .values()
            .any(|c| c.get_ref().extends.is_some() || c.get_ref().matrix.is_some());
    if !reuses {
        return Ok(Expansion::default());
    }
    let tables: Tables = match toml::from_str(text) {
        Ok(t) => t,
        // The same text already parsed; this only fails if it changed.
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let d = Diagnostic::error(ErrorCode::TomlSyntax, span, e.message().to_owned())
                .with_help("the stack file changed while it was read; read it again");
            return Err(vec![d]);
        }
    };
    let mut reused = BTreeMap::new();
    let mut written = BTreeMap::new();
    for (name, c) in std::mem::take(&mut raw.component) {
        written.insert(name.get_ref().clone(), c.span());
        let r = c.get_ref();
        if r.extends.is_some() || r.matrix.is_some() {
            reused.insert(name, c);
        } else {
            raw.component.insert(name, c);
        }
    }
    let mut x = Expander {
        text,
        written,
        tables: &tables,
        args: raw.args.keys().map(|k| k.get_ref().clone()).collect(),
        memo: BTreeMap::new(),
        out: std::mem::take(&mut raw.component),
        diags: Vec::new(),
        expansion: Expansion::default(),
        suggestions: Suggestions::default(),
    };
    x.check_templates(&raw.template);
    for (name, c) in &reused {
        x.component(name, c.get_ref());
    }
    raw.component = x.out;
    if x.diags.is_empty() {
        Ok(x.expansion)
    } else {
        Err(x.diags)
    }
}

/// A template's table with every `extends` merged in, and the tables
/// it passed through (name, where written).
type Effective = (Spanned<Node>, Vec<(String, Vec<Range<usize>>)>);

/// Where a table is written: its header (a header-defined table's span
/// is the header alone) and each `key = value`.
fn regions(node: &Spanned<Node>) -> Vec<Range<usize>> {
    let mut out = vec![node.span()];
    if let Node::Table(entries) = node.get_ref() {
        out.extend(
            entries
                .iter()
                .map(|(k, v)| k.span().start.min(v.span().start)..k.span().end.max(v.span().end)),
        );
    }
    out
}

struct Expander<'a> {
    text: &'a str,
    /// Every component as written: name and table span.
    written: BTreeMap<String, Range<usize>>,
    tables: &'a Tables,
    args: BTreeSet<String>,
    memo: BTreeMap<String, Option<Effective>>,
    out: BTreeMap<SpannedString, Spanned<RawComponent>>,
    diags: Vec<Diagnostic>,
    expansion: Expansion,
    suggestions: Suggestions,
}

impl Expander<'_> {
    fn error(
        &mut self,
        code: ErrorCode,
        span: Range<usize>,
        msg: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.diags
            .push(Diagnostic::error(code, span, msg).with_help(help));
    }

    /// The line `offset` is on, for messages.
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    fn check_templates(&mut self, templates: &BTreeMap<SpannedString, Spanned<RawComponent>>) {
        for (name, t) in templates {
            if let Some(at) = self.written.get(name.get_ref()) {
                let line = self.line(at.start);
                self.error(
                    ErrorCode::InstanceName,
                    name.span(),
                    format!(
                        "`{}` is both a template and a component (line {line})",
                        name.get_ref()
                    ),
                    "rename one of them: `extends` names either",
                );
            }
            if let Some(m) = &t.get_ref().matrix {
                self.error(
                    ErrorCode::Matrix,
                    m.span(),
                    "a template cannot have a matrix",
                    "put the matrix on the [component] table that extends this template",
                );
            }
        }
    }
}

mod instance;
