//! The keys that reuse tables: `extends` (templates) and `matrix`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_spanned::Spanned;

use super::SpannedString;

/// `extends = "name"` or `extends = ["a", "b"]`: the templates (or
/// components) a table starts from, merged in order.
#[derive(Debug, Clone)]
pub struct Extends(pub Vec<SpannedString>);

impl<'de> Deserialize<'de> for Extends {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Extends;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a template name, or a list of template names")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Extends, E> {
                // The span is the whole value's; `Spanned<Extends>` keeps it.
                Ok(Extends(vec![Spanned::new(0..0, v.to_owned())]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Extends, A::Error> {
                Vec::<SpannedString>::deserialize(SeqAccessDeserializer::new(seq)).map(Extends)
            }
        }
        d.deserialize_any(V)
    }
}

/// `matrix = { name = [value, ...], ... }`: one instance per combination.
pub type RawMatrix = BTreeMap<SpannedString, Spanned<Vec<Spanned<MatrixValue>>>>;

/// One value of a matrix list: a string, or a table of strings read as
/// `{name.key}`.
#[derive(Debug, Clone)]
pub enum MatrixValue {
    /// `"fateflow"`, inserted by `{name}`.
    String(String),
    /// `{ name = "fateflow", when = "basic" }`, inserted by `{name.key}`.
    Table(BTreeMap<SpannedString, SpannedString>),
}

impl<'de> Deserialize<'de> for MatrixValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MatrixValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, or a table of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MatrixValue, E> {
                Ok(MatrixValue::String(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MatrixValue, A::Error> {
                BTreeMap::<SpannedString, SpannedString>::deserialize(MapAccessDeserializer::new(
                    map,
                ))
                .map(MatrixValue::Table)
            }
        }
        d.deserialize_any(V)
    }
}
