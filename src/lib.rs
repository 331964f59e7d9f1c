//! Strata: build stacks of container images from one declarative stack file.
//!
//! Data flows one way: text -> [`spec`] (spanned, raw, then resolved into
//! [`graph`]) -> [`lint`] -> LLB -> frontend result or CLI output;
//! [`pipeline`] runs the stages up to lint.

#[cfg(feature = "bundle")]
pub mod bundle;
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "cli")]
pub mod client;
pub mod context;
pub mod frontend;
pub mod graph;
pub mod image;
pub mod lint;
pub mod lower;
pub mod pipeline;
pub mod spec;

pub use pipeline::{load, resolve};
