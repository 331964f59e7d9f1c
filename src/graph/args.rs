//! Args with their final typed values, and profiles.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Serialize;

/// The type of an arg.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "type", content = "values")]
pub enum ArgType {
    /// Any text.
    String,
    /// `true`/`false` (also accepts 1/0, yes/no, on/off in any case).
    Bool,
    /// A 64-bit integer.
    Int,
    /// One of a fixed set of strings.
    Enum(Vec<String>),
}

/// A typed value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ArgValue {
    /// A string or enum value.
    String(String),
    /// A bool.
    Bool(bool),
    /// An integer.
    Int(i64),
}

impl std::fmt::Display for ArgValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArgValue::String(s) => f.write_str(s),
            ArgValue::Bool(b) => write!(f, "{b}"),
            ArgValue::Int(i) => write!(f, "{i}"),
        }
    }
}

/// Where an arg's final value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "name")]
pub enum ArgOrigin {
    /// The declared default.
    Default,
    /// The selected profile.
    Profile(String),
    /// `--arg` or `build-arg:`.
    Override,
}

/// A declared arg.
#[derive(Debug, Clone, Serialize)]
pub struct Arg {
    /// Its name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: ArgType,
    /// Its declared default.
    pub default: ArgValue,
    /// Its final value.
    pub value: ArgValue,
    /// Where the final value came from.
    pub origin: ArgOrigin,
    /// What it is for.
    pub description: Option<String>,
    /// Where it is declared.
    #[serde(skip)]
    pub span: Range<usize>,
    /// Declared by a bare default (`name = value`), its type read from the
    /// value, rather than by a table with `type`.
    #[serde(skip)]
    pub by_value: bool,
}

/// A named set of arg values.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// The values it sets.
    pub args: BTreeMap<String, ArgValue>,
}
