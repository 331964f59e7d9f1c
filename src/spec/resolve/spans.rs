//! Where the keys the lints (and build-time checks) point at are written
//! (a component's `from`, `user`, `platform` and `allow` entries, env keys, a copy's `from`, third-party
//! images), taken from the raw stack once templates and matrices are
//! expanded, and kept in the resolved [`Stack`](crate::graph::Stack).

use std::collections::BTreeMap;
use std::ops::Range;

use serde_spanned::Spanned;

use crate::spec::raw::{RawComponent, RawStackFile, RunSpec, Short, SpannedString};

/// Spans of one component's keys.
#[derive(Debug, Clone, Default)]
pub struct ComponentSpans {
    /// `from = "..."`.
    pub from: Option<Range<usize>>,
    /// `gpu = { base = "..." }`.
    pub gpu_base: Option<Range<usize>>,
    /// `user = "..."`, when written.
    pub user: Option<Range<usize>>,
    /// `platform = "..."`, when written.
    pub platform: Option<Range<usize>>,
    /// Each `allow` entry.
    pub allow: Vec<(String, Range<usize>)>,
    /// Each key of the component's `env`.
    pub env: Vec<(String, Range<usize>)>,
}

/// Spans of one step's keys, found by the step's own span.
#[derive(Debug, Clone, Default)]
pub struct StepSpans {
    /// A copy's `from = "..."`.
    pub from: Option<Range<usize>>,
    /// Each key of a run's or an env step's variables.
    pub env: Vec<(String, Range<usize>)>,
}

/// Every span the lints point at beyond the components' and steps' own.
#[derive(Debug, Clone, Default)]
pub struct Spans {
    components: BTreeMap<String, ComponentSpans>,
    steps: BTreeMap<(usize, usize), StepSpans>,
    third_party: BTreeMap<String, Range<usize>>,
}

impl Spans {
    /// The spans of an expanded raw stack.
    pub fn of_raw(file: &RawStackFile) -> Spans {
        let mut spans = Spans::default();
        for (name, c) in &file.component {
            spans.component(name.get_ref(), c.get_ref());
        }
        for (name, image) in &file.third_party {
            spans
                .third_party
                .insert(name.get_ref().clone(), image.span());
        }
        spans
    }

    fn component(&mut self, name: &str, c: &RawComponent) {
        let keys = |m: &BTreeMap<SpannedString, SpannedString>| {
            m.keys()
                .map(|k| (k.get_ref().clone(), k.span()))
                .collect::<Vec<_>>()
        };
        self.components.insert(
            name.to_owned(),
            ComponentSpans {
                from: c.from.as_ref().map(Spanned::span),
                gpu_base: c.gpu.as_ref().map(|g| g.get_ref().base.span()),
                user: c.user.as_ref().map(Spanned::span),
                platform: c.platform.as_ref().map(Spanned::span),
                allow: c
                    .allow
                    .iter()
                    .map(|a| (a.get_ref().clone(), a.span()))
                    .collect(),
                env: keys(&c.env),
            },
        );
        let copies = c
            .copy
            .iter()
            .chain(c.steps.iter().filter_map(|s| s.get_ref().copy.as_ref()));
        for copy in copies {
            self.step(copy.span()).from = copy.get_ref().from.as_ref().map(Spanned::span);
        }
        let runs = c
            .run
            .iter()
            .chain(c.steps.iter().filter_map(|s| s.get_ref().run.as_ref()));
        for run in runs {
            let r: &Short<RunSpec> = run.get_ref();
            self.step(run.span()).env = keys(&r.env);
        }
        for env in c.steps.iter().filter_map(|s| s.get_ref().env.as_ref()) {
            self.step(env.span()).env = keys(env.get_ref());
        }
    }

    fn step(&mut self, span: Range<usize>) -> &mut StepSpans {
        self.steps.entry((span.start, span.end)).or_default()
    }

    /// The spans of a component's keys (empty when not found).
    pub fn of(&self, component: &str) -> Option<&ComponentSpans> {
        self.components.get(component)
    }

    /// The spans inside the step written at `span`.
    pub fn in_step(&self, span: &Range<usize>) -> Option<&StepSpans> {
        self.steps.get(&(span.start, span.end))
    }

    /// Where a third-party image is written.
    pub fn third_party(&self, name: &str) -> Option<Range<usize>> {
        self.third_party.get(name).cloned()
    }
}
