//! Following `extends`: a template's table with its own templates merged
//! in, found once per name; unknown names and cycles are errors at the
//! `extends` entry.

use super::super::*;

impl Expander<'_> {
    /// The table `name` stands for, with everything it extends merged in,
    /// and the tables passed through; None after reporting why not.
    pub(in crate::spec::expand) fn effective(
        &mut self,
        name: &SpannedString,
        chain: &mut Vec<String>,
    ) -> Option<Effective> {
        let n = name.get_ref();
        if chain.iter().any(|c| c == n) {
            let cycle: Vec<&str> = chain
                .iter()
                .map(String::as_str)
                .chain([n.as_str()])
                .collect();
            let start = cycle.iter().position(|c| c == n).unwrap_or(0);
            self.error(
                ErrorCode::ExtendsChain,
                name.span(),
                format!("`extends` makes a cycle: {}", cycle[start..].join(" -> ")),
                "remove one `extends` of the cycle",
            );
            return None;
        }
        if chain.len() >= MAX_DEPTH {
            self.error(
                ErrorCode::ExtendsChain,
                name.span(),
                format!("`extends` is nested more than {MAX_DEPTH} templates deep"),
                "flatten the chain of templates",
            );
            return None;
        }
        if let Some(done) = self.memo.get(n) {
            return done.clone();
        }
        let node = self.table_named(name)?;
        chain.push(n.clone());
        let mut passed = vec![(n.clone(), regions(node))];
        let mut table = node.clone();
        let mut base: Option<Spanned<Node>> = None;
        let mut failed = false;
        for e in super::extends_of(node) {
            match self.effective(&e, chain) {
                Some((t, via)) => {
                    passed.extend(via);
                    base = match base {
                        Some(b) => self.merged(&b, &t, e.span()),
                        None => Some(t),
                    };
                    failed |= base.is_none();
                }
                None => failed = true,
            }
        }
        chain.pop();
        if let (Some(b), false) = (&base, failed) {
            match self.merged(b, &table, name.span()) {
                Some(m) => table = m,
                None => failed = true,
            }
        }
        let done = (!failed).then_some((table, passed));
        self.memo.insert(n.clone(), done.clone());
        done
    }

    /// The written template or component `name` names.
    fn table_named(&mut self, name: &SpannedString) -> Option<&'_ Spanned<Node>> {
        let tables = self.tables;
        if let Some(t) = tables.template.get(name) {
            return Some(t);
        }
        if let Some(c) = tables.component.get(name) {
            if c.get_ref().get("matrix").is_some() {
                self.error(
                    ErrorCode::UnknownTemplate,
                    name.span(),
                    format!(
                        "`{}` is a matrix table, which cannot be extended",
                        name.get_ref()
                    ),
                    "move the shared keys into a [template.<name>] and extend that",
                );
                return None;
            }
            return Some(c);
        }
        let candidates: Vec<&str> = tables
            .template
            .keys()
            .chain(tables.component.keys())
            .map(|k| k.get_ref().as_str())
            .collect();
        let help = match self
            .suggestions
            .closest(name.get_ref(), candidates.iter().copied())
        {
            Some(c) => format!("did you mean `{c}`?"),
            None if tables.template.is_empty() => {
                "declare it as `[template.<name>]`, or name a component".to_owned()
            }
            None => format!(
                "templates of this stack: {}",
                tables
                    .template
                    .keys()
                    .map(|k| k.get_ref().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        self.error(
            ErrorCode::UnknownTemplate,
            name.span(),
            format!("unknown template `{}`", name.get_ref()),
            help,
        );
        None
    }
}
