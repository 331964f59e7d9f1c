//! Diagnostics: a kind of problem, a span in the stack file, and a hint.
//!
//! Every error a user can cause is one of these; they render like a
//! compiler's: `file:line:col`, the line itself, a caret under the span.

use std::fmt;
use std::ops::Range;

use super::codes::ErrorCode;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A lint: the stack builds, but probably not as intended.
    Warning,
    /// The stack cannot be built.
    Error,
}

/// A 1-based line and column, as editors show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct LineCol {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub col: usize,
}

/// The text of one stack file, with a line index for locating spans.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The name shown to users (a path as given, or the frontend's filename).
    pub name: String,
    /// The whole file.
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// Wraps a file's text.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// The line and column of a byte offset (clamped into the file).
    pub fn line_col(&self, offset: usize) -> LineCol {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        LineCol {
            line: line + 1,
            col,
        }
    }

    /// The text of a 1-based line, without its line break.
    pub fn line_text(&self, line: usize) -> &str {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return "";
        };
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        self.text
            .get(start..end)
            .unwrap_or("")
            .trim_end_matches(['\n', '\r'])
    }
}

/// One problem found in a stack file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The stable id: an error's code (`E0302`, see [`ErrorCode`]) or a
    /// lint's id (`root-user`).
    pub code: &'static str,
    /// What is wrong, in one sentence.
    pub message: String,
    /// Byte range in the stack file the problem is about.
    pub span: Range<usize>,
    /// What to do about it.
    pub help: Option<String>,
    /// Other places the problem involves (the component a template line
    /// is part of, ...).
    pub notes: Vec<Note>,
}

/// A second place a diagnostic points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// What the place is.
    pub message: String,
    /// Where it is.
    pub span: Range<usize>,
}

impl Diagnostic {
    /// An error of kind `code` at `span`.
    pub fn error(code: ErrorCode, span: Range<usize>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code: code.id(),
            message: message.into(),
            span,
            help: None,
            notes: Vec::new(),
        }
    }

    /// A lint warning with an identifier at `span`.
    pub fn warning(code: &'static str, span: Range<usize>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            code,
            message: message.into(),
            span,
            help: None,
            notes: Vec::new(),
        }
    }

    /// The message as shown on one line: escaped and at most 400 characters.
    /// Messages and hints quote user values, so they are escaped where
    /// they are shown, never stored escaped.
    pub fn shown_message(&self) -> String {
        one_line(self.message.clone(), 400)
    }

    /// The hint as shown on one line: escaped and at most 1,000 characters.
    pub fn shown_help(&self) -> Option<String> {
        self.help.clone().map(|h| one_line(h, 1000))
    }

    /// Adds a hint that says how to fix the problem.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a note pointing at another place.
    pub fn with_note(mut self, span: Range<usize>, message: impl Into<String>) -> Self {
        self.notes.push(Note {
            message: message.into(),
            span,
        });
        self
    }

    /// Renders the diagnostic against its file, compiler style.
    pub fn render(&self, file: &SourceFile) -> String {
        Rendered { diag: self, file }.to_string()
    }
}

struct Rendered<'a> {
    diag: &'a Diagnostic,
    file: &'a SourceFile,
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.diag;
        let start = self.file.line_col(d.span.start);
        let end = self.file.line_col(d.span.end.max(d.span.start));
        match d.severity {
            Severity::Error => write!(f, "error[{}]: {}", d.code, d.shown_message())?,
            Severity::Warning => write!(f, "warning[{}]: {}", d.code, d.shown_message())?,
        }
        writeln!(f)?;
        let gutter = start.line.to_string().len();
        writeln!(
            f,
            "{:gutter$}--> {}:{}:{}",
            "", self.file.name, start.line, start.col
        )?;
        let text = self.file.line_text(start.line);
        // At most 200 characters of the line; on a long line, the part
        // around the span, so the caret stays under it.
        let skip = if start.col > 150 { start.col - 61 } else { 0 };
        let prefix = if skip > 0 { "..." } else { "" };
        let shown: String = prefix
            .chars()
            .chain(
                text.chars()
                    .skip(skip)
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .take(200),
            )
            .collect();
        let shown_len = shown.chars().count();
        let col = start.col - skip + prefix.len();
        writeln!(f, "{:gutter$} |", "")?;
        writeln!(f, "{} | {}", start.line, shown)?;
        let width = if end.line == start.line {
            end.col.saturating_sub(start.col).max(1)
        } else {
            shown_len.saturating_sub(col - 1).max(1)
        };
        let pad = (col - 1).min(shown_len);
        writeln!(
            f,
            "{:gutter$} | {:pad$}{}",
            "",
            "",
            "^".repeat(width.min(200))
        )?;
        for note in &d.notes {
            let at = self.file.line_col(note.span.start);
            let message = one_line(note.message.clone(), 400);
            writeln!(
                f,
                "{:gutter$} = note: {message} ({}:{}:{})",
                "", self.file.name, at.line, at.col
            )?;
        }
        if let Some(help) = d.shown_help() {
            writeln!(f, "{:gutter$} = help: {}", "", help)?;
        }
        Ok(())
    }
}

/// How many diagnostics [`Diagnostics::render`] shows; the count covers all.
pub const MAX_RENDERED: usize = 200;

/// Every diagnostic found in one file.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    /// The file they refer to.
    pub file: SourceFile,
    /// Sorted by position, errors and warnings together.
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// True when at least one is an error.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// The first error, if any.
    pub fn first_error(&self) -> Option<&Diagnostic> {
        self.items.iter().find(|d| d.severity == Severity::Error)
    }

    /// The first [`MAX_RENDERED`] rendered, followed by a count of all.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for d in self.items.iter().take(MAX_RENDERED) {
            out.push_str(&d.render(&self.file));
            out.push('\n');
        }
        if self.items.len() > MAX_RENDERED {
            out.push_str(&format!(
                "... and {} more not shown\n",
                self.items.len() - MAX_RENDERED
            ));
        }
        let errors = self
            .items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        let warnings = self.items.len() - errors;
        match (errors, warnings) {
            (0, 0) => {}
            (0, w) => out.push_str(&format!("{}: {w} warning(s)\n", self.file.name)),
            (e, w) => out.push_str(&format!(
                "{}: {e} error(s), {w} warning(s): nothing was built\n",
                self.file.name
            )),
        }
        out
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for Diagnostics {}

/// A message as shown: control characters escaped (a value quoted in it
/// cannot forge lines), at most `max` characters.
fn one_line(text: String, max: usize) -> String {
    let text = match strata_llb::printable(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(escaped) => escaped,
    };
    if text.chars().count() <= max {
        return text;
    }
    let mut cut: String = text.chars().take(max - 3).collect();
    cut.push_str("...");
    cut
}

/// Suggests the closest of `candidates` to `word`, for "did you mean" hints
/// (a fresh budget per call; a resolver shares one per file with [`Suggestions`]).
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    Suggestions::default().closest(word, candidates)
}

/// Longest word, in characters, that did-you-mean hints look at.
pub const MAX_SUGGESTED_WORD: usize = 64;

/// The edit-distance work left for did-you-mean hints, so that a file with
/// many unknown names costs bounded time: once it is spent, hints are
/// left out (the errors stay).
#[derive(Debug, Clone)]
pub struct Suggestions {
    work_left: u64,
}

impl Default for Suggestions {
    fn default() -> Self {
        Suggestions {
            work_left: 20_000_000,
        }
    }
}

impl Suggestions {
    /// The candidate nearest to `word` within a third of its length in
    /// edits (ties: the first in sort order), or none.
    pub fn closest<'a>(
        &mut self,
        word: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Option<&'a str> {
        let w: Vec<char> = word.chars().collect();
        if w.is_empty() || w.len() > MAX_SUGGESTED_WORD {
            return None;
        }
        let mut best: Option<(usize, &'a str)> = None;
        let mut buf = Vec::new();
        for c in candidates {
            if self.work_left == 0 {
                return None;
            }
            self.work_left -= 1;
            let clen = c.chars().count();
            let limit = (clen.max(w.len()) / 3).max(1);
            if clen.abs_diff(w.len()) > limit || clen > MAX_SUGGESTED_WORD * 2 {
                continue;
            }
            let cells = (w.len() * (2 * limit + 1)) as u64;
            self.work_left = self.work_left.saturating_sub(cells);
            buf.clear();
            buf.extend(c.chars());
            if let Some(d) = bounded_distance(&w, &buf, limit) {
                if best.is_none_or(|(bd, bc)| (d, c) < (bd, bc)) {
                    best = Some((d, c));
                }
            }
        }
        best.map(|(_, c)| c)
    }

    /// Up to `n` of `candidates` nearest to `word` in edits, nearest first
    /// (ties in sort order), however far they are; empty once the budget
    /// is spent.
    pub fn nearest<'a>(
        &mut self,
        word: &str,
        candidates: impl IntoIterator<Item = &'a str>,
        n: usize,
    ) -> Vec<&'a str> {
        let w: Vec<char> = word.chars().take(MAX_SUGGESTED_WORD).collect();
        let mut ranked: Vec<(usize, &'a str)> = Vec::new();
        let mut buf = Vec::new();
        for c in candidates {
            buf.clear();
            buf.extend(c.chars().take(MAX_SUGGESTED_WORD));
            let limit = w.len().max(buf.len());
            let cells = (w.len() * (2 * limit + 1)) as u64 + 1;
            if self.work_left < cells {
                self.work_left = 0;
                return Vec::new();
            }
            self.work_left -= cells;
            let d = bounded_distance(&w, &buf, limit).unwrap_or(limit);
            ranked.push((d, c));
        }
        ranked.sort();
        ranked.into_iter().take(n).map(|(_, c)| c).collect()
    }
}

/// Edit distance of `a` and `b` (insertions, deletions, substitutions and
/// transpositions of two neighbours: `bsae` is one edit from `base`) if it is
/// at most `limit`, computing only the band of cells within `limit` of the
/// diagonal.
fn bounded_distance(a: &[char], b: &[char], limit: usize) -> Option<usize> {
    const FAR: usize = usize::MAX / 2;
    let mut before: Vec<usize> = vec![FAR; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len())
        .map(|j| if j <= limit { j } else { FAR })
        .collect();
    let mut cur = vec![FAR; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        let row = i + 1;
        let lo = row.saturating_sub(limit).max(1);
        let hi = (row + limit).min(b.len());
        cur.fill(FAR);
        cur[0] = if row <= limit { row } else { FAR };
        let mut row_min = cur[0];
        for j in lo..=hi {
            let cost = usize::from(*ca != b[j - 1]);
            let mut v = (prev[j - 1] + cost).min(prev[j] + 1).min(cur[j - 1] + 1);
            if i > 0 && j > 1 && *ca == b[j - 2] && a[i - 1] == b[j - 1] {
                v = v.min(before[j - 2] + 1);
            }
            cur[j] = v;
            row_min = row_min.min(v);
        }
        if row_min > limit {
            return None;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(prev[b.len()]).filter(|d| *d <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let f = SourceFile::new("s.toml", "a = 1\nbé = 2\n");
        assert_eq!(f.line_col(0), LineCol { line: 1, col: 1 });
        assert_eq!(f.line_col(6), LineCol { line: 2, col: 1 });
        assert_eq!(f.line_col(9), LineCol { line: 2, col: 3 });
        assert_eq!(f.line_text(2), "bé = 2");
        assert_eq!(f.line_text(9), "");
    }

    #[test]
    fn renders_caret_under_span() {
        let f = SourceFile::new("s.toml", "[stack]\nname = 42\n");
        let d = Diagnostic::error(ErrorCode::WrongType, 15..17, "expected a string")
            .with_help("quote it");
        let out = d.render(&f);
        assert!(out.contains("--> s.toml:2:8"), "{out}");
        assert!(out.contains("2 | name = 42"), "{out}");
        assert!(out.contains("  |        ^^"), "{out}");
        assert!(out.contains("help: quote it"), "{out}");
    }

    #[test]
    fn caret_stays_under_a_span_far_into_a_long_line() {
        let line = format!("a = \"{}\" x", "y".repeat(1000));
        let f = SourceFile::new("s.toml", line.clone());
        let at = line.len() - 1;
        let out = Diagnostic::error(ErrorCode::TomlSyntax, at..at + 1, "here").render(&f);
        let lines: Vec<&str> = out.lines().collect();
        let (text, caret) = (lines[3], lines[4]);
        let col = caret.find('^').expect("a caret");
        assert_eq!(&text[col..col + 1], "x", "{out}");
        assert!(text.contains("| ...yyy"), "{out}");
    }

    #[test]
    fn suggests_close_names() {
        assert_eq!(closest("fom", ["from", "when", "user"]), Some("from"));
        assert_eq!(closest("zzzzzz", ["from", "when"]), None);
        assert_eq!(closest("bsae", ["base", "node"]), Some("base"));
        let mut s = Suggestions::default();
        assert_eq!(
            s.nearest("web-base", ["node", "base", "researcher", "gui"], 2),
            vec!["base", "node"]
        );
    }

    #[test]
    fn bounded_distance_agrees_with_the_full_table() {
        fn full(a: &[char], b: &[char]) -> usize {
            let mut before: Vec<usize> = vec![usize::MAX / 2; b.len() + 1];
            let mut prev: Vec<usize> = (0..=b.len()).collect();
            for (i, ca) in a.iter().enumerate() {
                let mut cur = vec![i + 1];
                for (j, cb) in b.iter().enumerate() {
                    let mut v = (prev[j] + usize::from(ca != cb))
                        .min(prev[j + 1] + 1)
                        .min(cur[j] + 1);
                    if i > 0 && j > 0 && *ca == b[j - 1] && a[i - 1] == *cb {
                        v = v.min(before[j - 1] + 1);
                    }
                    cur.push(v);
                }
                before = std::mem::replace(&mut prev, cur);
            }
            prev[b.len()]
        }
        let words = [
            "",
            "a",
            "base",
            "bsae",
            "node-gpu",
            "nodegpu",
            "researcher",
            "reseacher",
            "abcdef",
            "fedcba",
            "x",
        ];
        for a in words {
            for b in words {
                let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
                for limit in 0..6 {
                    let d = full(&a, &b);
                    assert_eq!(
                        bounded_distance(&a, &b, limit),
                        Some(d).filter(|d| *d <= limit),
                        "{a:?} {b:?} {limit}"
                    );
                }
            }
        }
    }

    #[test]
    fn suggestions_stop_when_the_budget_is_spent() {
        let long = "x".repeat(MAX_SUGGESTED_WORD + 1);
        assert_eq!(closest(&long, [long.as_str()]), None);
        let names: Vec<String> = (0..100_000).map(|i| format!("c{i:05}")).collect();
        let mut s = Suggestions::default();
        let mut hits = 0;
        for i in 0..100_000 {
            hits += usize::from(
                s.closest(&format!("d{i:05}"), names.iter().map(String::as_str))
                    .is_some(),
            );
        }
        assert!(hits > 0 && hits < 100_000, "{hits}");
        assert_eq!(s.work_left, 0);
    }
}
