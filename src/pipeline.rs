//! The stages a stack file passes through, one way: text -> raw ->
//! expanded -> resolved ([`spec`](crate::spec)) -> linted
//! ([`lint`](crate::lint)). Lowering ([`lower`](crate::lower)) and the
//! commands read the stack this returns.

use crate::graph::Stack;
use crate::spec::{self, expand, Diagnostics, Overrides, SourceFile};

/// Loads a stack file from bytes: decoding, parsing, resolving and lint.
pub fn load(name: &str, bytes: &[u8], overrides: &Overrides) -> Result<Stack, Diagnostics> {
    lint(spec::load(name, bytes, overrides)?)
}

/// Parses, resolves and lints a stack file.
pub fn resolve(file: SourceFile, overrides: &Overrides) -> Result<Stack, Diagnostics> {
    lint(spec::resolve(file, overrides)?)
}

/// Lints a resolved stack; every diagnostic on a line that templates or
/// matrices share gets notes naming the components made from it.
fn lint(resolved: spec::resolve::Resolved) -> Result<Stack, Diagnostics> {
    let spec::resolve::Resolved { stack, expansion } = resolved;
    let mut done = crate::lint::finish(stack);
    let items = match &mut done {
        Ok(stack) => &mut stack.warnings,
        Err(d) => &mut d.items,
    };
    expansion.annotate(items);
    expand::merge_notes(items);
    done
}
