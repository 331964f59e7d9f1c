//! Making one component: its templates merged in, its matrix values
//! filled in, read back as a [`RawComponent`], added under its name.

use super::matrix::{self, Combo, Unfilled};
use super::merge::{self, MAX_ITEMS};
use super::node::{self, Node};
use super::*;

/// One component to make from a written table.
struct Instance<'c> {
    /// Its name, values filled in; the span is the written name's.
    name: SpannedString,
    /// The table as written.
    node: &'c Spanned<Node>,
    /// The matrix table's name as written and this combination, if any.
    matrix: Option<(&'c str, &'c Combo<'c>)>,
    /// Where a clash of its name is reported.
    at: Range<usize>,
}

impl Expander<'_> {
    /// The components one written table stands for.
    pub(super) fn component(&mut self, name: &SpannedString, raw: &RawComponent) {
        let Some(node) = self.tables.component.get(name) else {
            return;
        };
        match &raw.matrix {
            Some(m) => self.matrix(name, node, m),
            None => self.instance(Instance {
                name: name.clone(),
                node,
                matrix: None,
                at: name.span(),
            }),
        }
    }

    fn matrix(&mut self, name: &SpannedString, node: &Spanned<Node>, m: &Spanned<RawMatrix>) {
        if !self.matrix_is_valid(m) {
            return;
        }
        let Some(combos) = matrix::combinations(m.get_ref()) else {
            self.error(
                ErrorCode::Matrix,
                m.span(),
                format!(
                    "this matrix yields more than {} components",
                    matrix::MAX_INSTANCES
                ),
                "split it into several tables, or list fewer values",
            );
            return;
        };
        for combo in &combos {
            let filled = match matrix::fill(name.get_ref(), combo) {
                Ok(f) => f,
                Err(e) => {
                    self.unfilled(name.span(), e);
                    return;
                }
            };
            // A clash or a bad name is the values' doing: point at one.
            let culprit = combo
                .iter()
                .find(|(_, v)| !name_safe(v.get_ref()))
                .or(combo.last())
                .map_or(name.span(), |(_, v)| v.span());
            if !valid_name(&filled) {
                self.error(
                    ErrorCode::InstanceName,
                    culprit,
                    format!("this matrix value makes the component name `{filled}`, which is not valid"),
                    "component names use lowercase letters, digits, `-`, `_` and `.`, starting with a letter or digit",
                );
                continue;
            }
            self.instance(Instance {
                name: Spanned::new(name.span(), filled),
                node,
                matrix: Some((name.get_ref(), combo)),
                at: culprit,
            });
        }
    }

    /// Names that do not shadow args, values that are not empty and hold
    /// no braces.
    fn matrix_is_valid(&mut self, m: &Spanned<RawMatrix>) -> bool {
        let before = self.diags.len();
        if m.get_ref().is_empty() {
            self.error(
                ErrorCode::Matrix,
                m.span(),
                "this matrix has no lists",
                "add `name = [\"value\", ...]`",
            );
        }
        for (key, values) in m.get_ref() {
            let k = key.get_ref();
            if self.args.contains(k) || k == "stack" || k == "component" || k.contains('.') {
                self.error(
                    ErrorCode::Matrix,
                    key.span(),
                    format!("matrix name `{k}` is taken: `{{{k}}}` would be ambiguous"),
                    "rename it: a matrix name is not an arg, `stack`, `component`, and has no `.`",
                );
            }
            if values.get_ref().is_empty() {
                self.error(
                    ErrorCode::Matrix,
                    values.span(),
                    format!("`{k}` lists no values, so the matrix yields no components"),
                    "list at least one value",
                );
            }
            for v in values.get_ref() {
                let texts: Vec<&SpannedString> = match v.get_ref() {
                    MatrixValue::String(_) => Vec::new(),
                    MatrixValue::Table(t) => t.keys().chain(t.values()).collect(),
                };
                let braces = match v.get_ref() {
                    MatrixValue::String(s) => s.contains(['{', '}']),
                    MatrixValue::Table(_) => texts.iter().any(|t| t.get_ref().contains(['{', '}'])),
                };
                if braces {
                    self.error(
                        ErrorCode::Matrix,
                        v.span(),
                        "a matrix value cannot contain `{` or `}`",
                        "matrix values are inserted as they are; write the text without braces",
                    );
                }
            }
        }
        self.diags.len() == before
    }

    fn unfilled(&mut self, span: Range<usize>, e: Unfilled) {
        self.error(ErrorCode::Matrix, span, e.message, e.help);
    }

    /// Merges the templates, fills the values, reads the result back.
    fn instance(&mut self, inst: Instance) {
        let mut extends = extends_of(inst.node);
        if let Some((_, combo)) = inst.matrix {
            for e in &mut extends {
                match matrix::fill(e.get_ref(), combo) {
                    Ok(f) => *e = Spanned::new(e.span(), f),
                    Err(err) => return self.unfilled(e.span(), err),
                }
            }
        }
        let mut table = without_reuse_keys(inst.node);
        let mut passed = Vec::new();
        let mut base: Option<Spanned<Node>> = None;
        for e in &extends {
            let Some((t, via)) = self.effective(e, &mut Vec::new()) else {
                return;
            };
            passed.extend(via);
            base = Some(match base {
                Some(b) => match self.merged(&b, &t, e.span()) {
                    Some(m) => m,
                    None => return,
                },
                None => t,
            });
        }
        if let Some(b) = &base {
            match self.merged(b, &table, inst.name.span()) {
                Some(m) => table = m,
                None => return,
            }
        }
        if let Some((_, combo)) = inst.matrix {
            let mut errors = Vec::new();
            table = matrix::fill_node(&table, combo, &mut errors);
            for (span, e) in errors {
                self.unfilled(span, e);
            }
        }
        let component = match node::read::<RawComponent>(&table) {
            Ok(c) => c,
            Err(e) => {
                let span = e.span.clone().unwrap_or(inst.name.span());
                return self.error(
                    ErrorCode::WrongType,
                    span,
                    e.message,
                    "see docs/stack-file.md for the form of this key",
                );
            }
        };
        self.record(&inst, &extends, &passed);
        self.add(inst, Spanned::new(table.span(), component));
    }

    fn merged(
        &mut self,
        base: &Spanned<Node>,
        table: &Spanned<Node>,
        at: Range<usize>,
    ) -> Option<Spanned<Node>> {
        match merge::merge(base, table) {
            Ok(m) => Some(m),
            Err(key) => {
                self.error(
                    ErrorCode::ExtendsChain,
                    at,
                    format!("extending makes `{key}` longer than {MAX_ITEMS} items"),
                    "a chain of templates repeats this list; extend each template once",
                );
                None
            }
        }
    }

    /// The origin of the instance and the written tables it used.
    fn record(
        &mut self,
        inst: &Instance,
        extends: &[SpannedString],
        passed: &[(String, Vec<Range<usize>>)],
    ) {
        let name = inst.name.get_ref();
        let at = inst.name.span();
        let mut values = Vec::new();
        if let Some((_, combo)) = inst.matrix {
            for (_, v) in combo.iter() {
                match v.get_ref() {
                    MatrixValue::String(s) => values.push(s.clone()),
                    MatrixValue::Table(t) => values.extend(t.values().map(|v| v.get_ref().clone())),
                }
            }
        }
        let mut seen = BTreeSet::new();
        // A template reached twice (through two `extends`) is noted once.
        for (template, written) in passed.iter().filter(|(t, _)| seen.insert(t.as_str())) {
            let owner = self
                .written
                .contains_key(template)
                .then(|| template.clone());
            self.expansion.uses.push(Use {
                regions: written.clone(),
                note: format!("this line is part of `{name}`, which extends `{template}`"),
                at: at.clone(),
                instance: name.clone(),
                values: values.clone(),
                owner,
            });
        }
        let matrix = inst.matrix.map(|(table, combo)| {
            self.expansion.uses.push(Use {
                regions: regions(inst.node),
                note: format!(
                    "this line is part of `{name}`, one component of the matrix `{table}`"
                ),
                at: inst.at.clone(),
                instance: name.clone(),
                values: values.clone(),
                owner: None,
            });
            MatrixInstance {
                table: table.to_owned(),
                values: combo
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), shown(v.get_ref())))
                    .collect(),
            }
        });
        if extends.is_empty() && matrix.is_none() {
            return;
        }
        let origin = Origin {
            extends: extends.iter().map(|e| e.get_ref().clone()).collect(),
            matrix,
        };
        self.expansion.origins.insert(name.clone(), origin);
    }

    /// Adds the component unless its name is taken.
    fn add(&mut self, inst: Instance, c: Spanned<RawComponent>) {
        let name = inst.name.get_ref().clone();
        let made_before = self.out.contains_key(&inst.name);
        if let Some(at) = self
            .written
            .get(&name)
            .filter(|at| **at != inst.node.span())
        {
            let line = self.line(at.start);
            return self.error(
                ErrorCode::InstanceName,
                inst.at,
                format!(
                    "this makes the component `{name}`, which is already declared at line {line}"
                ),
                "rename one of them: component names are unique",
            );
        }
        if made_before {
            return self.error(
                ErrorCode::InstanceName,
                inst.at,
                format!("this makes the component `{name}` a second time"),
                "every combination of a matrix needs its own name: use each matrix name in the table's name",
            );
        }
        self.out.insert(inst.name, c);
    }
}

/// True when a value could be part of a component name as it is.
fn name_safe(v: &MatrixValue) -> bool {
    let ok = |s: &str| {
        s.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.')
        })
    };
    match v {
        MatrixValue::String(s) => ok(s),
        MatrixValue::Table(t) => t.values().all(|s| ok(s.get_ref())),
    }
}

fn shown(v: &MatrixValue) -> graph::MatrixValue {
    match v {
        MatrixValue::String(s) => graph::MatrixValue::String(s.clone()),
        MatrixValue::Table(t) => graph::MatrixValue::Table(
            t.iter()
                .map(|(k, v)| (k.get_ref().clone(), v.get_ref().clone()))
                .collect(),
        ),
    }
}

/// The names a table's `extends` lists, each with its own span.
pub(super) fn extends_of(node: &Spanned<Node>) -> Vec<SpannedString> {
    match node
        .get_ref()
        .get("extends")
        .map(|e| (e.span(), e.get_ref()))
    {
        Some((span, Node::Str(s))) => vec![Spanned::new(span, s.clone())],
        Some((_, Node::Array(items))) => items
            .iter()
            .filter_map(|i| match i.get_ref() {
                Node::Str(s) => Some(Spanned::new(i.span(), s.clone())),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The table without `extends` and `matrix`, which are not component keys.
fn without_reuse_keys(node: &Spanned<Node>) -> Spanned<Node> {
    match node.get_ref() {
        Node::Table(entries) => Spanned::new(
            node.span(),
            Node::Table(
                entries
                    .iter()
                    .filter(|(k, _)| !merge::NOT_INHERITED.contains(&k.get_ref().as_str()))
                    .cloned()
                    .collect(),
            ),
        ),
        _ => node.clone(),
    }
}

mod templates;
