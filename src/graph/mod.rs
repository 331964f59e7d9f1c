//! The resolved stack: validated components in dependency order.
//!
//! A value of these types has passed every check: each `from` names an
//! enabled component or a valid image reference, args have their final
//! typed values, conditions are evaluated, and there are no cycles.
//!
//! The types live by concept: `args` (args and profiles), `policy` (the
//! stack-wide user, third-party image and metadata policies), `component`
//! (a component, its base, platform, inputs and edges), `steps` (the step
//! kinds), `config` (the image config a component declares).

mod args;
mod component;
mod config;
mod policy;
pub mod render;
mod steps;

use std::collections::BTreeMap;
use std::ops::Range;

use crate::spec::diag::{Diagnostic, SourceFile};
pub use crate::spec::image_ref::ImageRef;

pub use args::*;
pub use component::*;
pub use config::*;
pub use policy::*;
pub use steps::*;

/// A validated stack.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The stack file, for locating spans.
    pub file: SourceFile,
    /// `[stack].name`.
    pub name: String,
    /// `[stack].description`.
    pub description: Option<String>,
    /// Every declared arg with its final value.
    pub args: Vec<Arg>,
    /// The profile selected, if any.
    pub profile: Option<String>,
    /// Every declared profile.
    pub profiles: Vec<Profile>,
    /// The user policy, if the stack has one.
    pub user: Option<UserPolicy>,
    /// Images shipped with the stack but not built by it.
    pub third_party: Vec<ThirdParty>,
    /// Labels and env from version control and time.
    pub metadata: MetadataPolicy,
    /// Every component, enabled or not, dependencies first.
    pub components: Vec<Component>,
    /// The component built when no target is given.
    pub default_target: Option<String>,
    /// `[stack].allow`: lint ids silenced everywhere, with their spans.
    pub allow: Vec<(String, Range<usize>)>,
    /// Lint warnings found while resolving.
    pub warnings: Vec<Diagnostic>,
    /// Position of each component in `components`, by name (built with it).
    pub(crate) index: BTreeMap<String, usize>,
}

impl Stack {
    /// The component with this name.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.index.get(name).and_then(|&i| self.components.get(i))
    }

    /// Enabled components, dependencies first.
    pub fn enabled(&self) -> impl Iterator<Item = &Component> {
        self.components.iter().filter(|c| c.enabled)
    }

    /// An arg's final value.
    pub fn arg(&self, name: &str) -> Option<&ArgValue> {
        self.args.iter().find(|a| a.name == name).map(|a| &a.value)
    }

    /// Every edge between enabled components.
    pub fn edges(&self) -> Vec<Edge> {
        let mut edges = Vec::new();
        for c in self.enabled() {
            for (to, kind) in c.dependencies() {
                edges.push(Edge {
                    from: c.name.clone(),
                    to,
                    kind,
                });
            }
        }
        edges.sort();
        edges.dedup();
        edges
    }
}
