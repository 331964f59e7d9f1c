//! Strata: build stacks of container images from one declarative stack file.
//!
//! Data flows one way: text -> [`spec`] (spanned, raw) -> [`graph`]
//! (resolved) -> LLB -> frontend result or CLI output.

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
pub mod spec;
