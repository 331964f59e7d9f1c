//! A typed, deterministic builder for BuildKit LLB graphs.
//!
//! A [`State`] is an immutable value: a filesystem (the output of some op, or
//! scratch) plus the env, working directory, user and platform that later ops
//! inherit. Every method returns a new `State`; clones are cheap because ops
//! are shared behind `Arc`s. [`State::marshal`] turns the graph into a
//! [`pb::Definition`] the way BuildKit's Go client does: ops in post-order,
//! each digested as `sha256` of its protobuf bytes, identical ops emitted once,
//! a terminal op last, and per-op metadata listing the LLB caps it relies on.
//! The same graph always gives the same bytes: there is no `HashMap`, no
//! global counter and no clock on that path.
//!
//! Only what BuildKit v0.13 (Docker 26.1) understands is emitted: no MergeOp,
//! no DiffOp, no fields added after v0.13.
//!
//! ```
//! use strata_llb::{MarshalOptions, State};
//!
//! let state = State::image("debian").run("echo hi").with_dir("/app");
//! let definition = state.marshal(&MarshalOptions::default())?;
//!
//! // image source, exec, terminal
//! assert_eq!(definition.def.len(), 3);
//! strata_llb::validate(&definition)?;
//! # Ok::<(), strata_llb::LlbError>(())
//! ```
//!
//! Modules: [`source`] (image and local sources), [`exec`] (run), [`file`](mod@file)
//! (copy/mkdir/mkfile/rm), [`marshal`] (graph to definition), [`validate`](mod@validate)
//! (checks on any definition), [`dump`] (readable JSON), [`caps`] (LLB
//! capability ids).

pub mod caps;
pub mod dump;
mod error;
pub mod exec;
pub mod file;
pub mod marshal;
mod op;
mod platform;
pub mod source;
mod state;
pub mod validate;

pub use error::LlbError;
pub use exec::{CacheSharing, Exec, Mount, Network, Run};
pub use file::{Chown, CopyOptions, FileActions, Owner};
pub use marshal::{digest_of, encode_definition, MarshalOptions, SourceInfo};
pub use op::{SourceLocation, SourceRange};
pub use platform::Platform;
pub use source::{Differ, Git, Http, Image, Local, ResolveMode};
pub use state::State;
pub use strata_proto::pb;
pub use validate::{decode_definition, validate};

/// `s` with every control character escaped the way Rust writes it
/// (`\n`, `\u{1b}`), for text shown on one line of a terminal: progress
/// names, log lines, messages that quote user values.
/// Bidirectional overrides are escaped too: they reorder what a terminal
/// shows.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let hidden =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !s.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hidden(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}
