//! The stack file: parsing with spans, validation, diagnostics.

pub mod codes;
pub mod diag;
pub mod expand;
pub mod expr;
pub mod image_ref;
pub mod raw;
pub mod resolve;
pub mod values;

pub use codes::ErrorCode;
pub use diag::{Diagnostic, Diagnostics, Severity, SourceFile};
pub use resolve::{load, resolve, Overrides, PlatformVars, PLATFORM_VARS};
