//! A TOML value with a span on every node: what templates merge and
//! matrices copy, then read back into [`RawComponent`] with the spans kept.
//!
//! [`RawComponent`]: crate::spec::raw::RawComponent

use std::fmt;
use std::ops::Range;

use serde::de::value::{BorrowedStrDeserializer, MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_spanned::Spanned;

/// One value as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// An array.
    Array(Vec<Spanned<Node>>),
    /// A table, keys in the order written (a date-time is the table toml
    /// gives serde, and reads back as one).
    Table(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl Node {
    /// The value of `key` in a table.
    pub fn get(&self, key: &str) -> Option<&Spanned<Node>> {
        match self {
            Node::Table(entries) => entries
                .iter()
                .find(|(k, _)| k.get_ref() == key)
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a TOML value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
                i64::try_from(v)
                    .map(Node::Int)
                    .map_err(|_| E::custom("integer out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Str(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
                Ok(Node::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Node::Table(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// An error reading a node back, at the innermost node that has a span.
#[derive(Debug)]
pub struct NodeError {
    /// The message, as serde words it (toml's messages read the same).
    pub message: String,
    /// Where, once known.
    pub span: Option<Range<usize>>,
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NodeError {}

impl de::Error for NodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        NodeError {
            message: msg.to_string(),
            span: None,
        }
    }
}

impl NodeError {
    fn at(mut self, span: Range<usize>) -> Self {
        self.span.get_or_insert(span);
        self
    }
}

/// Reads `T` from a node, as toml would have read it from the text.
pub fn read<T: de::DeserializeOwned>(node: &Spanned<Node>) -> Result<T, NodeError> {
    T::deserialize(NodeDe(node))
}

/// A node as a serde `Deserializer`.
struct NodeDe<'a>(&'a Spanned<Node>);

const SPANNED: &str = "$__serde_spanned_private_Spanned";
const START: &str = "$__serde_spanned_private_start";
const END: &str = "$__serde_spanned_private_end";
const VALUE: &str = "$__serde_spanned_private_value";

impl<'de> Deserializer<'de> for NodeDe<'_> {
    type Error = NodeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        let span = self.0.span();
        let r = match self.0.get_ref() {
            Node::Str(s) => v.visit_str(s),
            Node::Int(i) => v.visit_i64(*i),
            Node::Float(f) => v.visit_f64(*f),
            Node::Bool(b) => v.visit_bool(*b),
            Node::Array(items) => v.visit_seq(SeqDeserializer::new(items.iter().map(NodeDe))),
            Node::Table(entries) => v.visit_map(MapDeserializer::new(
                entries.iter().map(|(k, v)| (KeyDe(k), NodeDe(v))),
            )),
        };
        r.map_err(|e| e.at(span))
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        let span = self.0.span();
        v.visit_some(self).map_err(|e| e.at(span))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, NodeError> {
        if name == SPANNED {
            return v.visit_map(SpannedAccess {
                node: self.0,
                next: 0,
            });
        }
        let _ = fields;
        self.deserialize_any(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, NodeError> {
        v.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, NodeError> for NodeDe<'_> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

/// A table key, which `Spanned<String>` keys read with their span.
struct KeyDe<'a>(&'a Spanned<String>);

impl<'de> IntoDeserializer<'de, NodeError> for KeyDe<'_> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> Deserializer<'de> for KeyDe<'_> {
    type Error = NodeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        v.visit_str(self.0.get_ref())
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, NodeError> {
        if name == SPANNED {
            let node = Spanned::new(self.0.span(), Node::Str(self.0.get_ref().clone()));
            return v.visit_map(SpannedAccess {
                node: &node,
                next: 0,
            });
        }
        self.deserialize_any(v)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// The three fields serde_spanned reads: start, end, then the value.
struct SpannedAccess<'a> {
    node: &'a Spanned<Node>,
    next: u8,
}

impl<'de> MapAccess<'de> for SpannedAccess<'_> {
    type Error = NodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, NodeError> {
        let key = match self.next {
            0 => START,
            1 => END,
            2 => VALUE,
            _ => return Ok(None),
        };
        seed.deserialize(BorrowedStrDeserializer::<NodeError>::new(key))
            .map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, NodeError> {
        let span = self.node.span();
        self.next += 1;
        match self.next {
            1 => seed.deserialize(span.start.into_deserializer()),
            2 => seed.deserialize(span.end.into_deserializer()),
            _ => seed.deserialize(NodeDe(self.node)),
        }
    }
}
