//! JSON read the way no two readers disagree on: Go's decoder (under
//! `docker load`) takes the last of two equal keys and matches struct
//! fields case-insensitively, so duplicates are an error here and keys are
//! compared after Go's case folding.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON value whose objects have no key twice.
pub(super) struct Strict(pub Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Strict, E> {
        Ok(Strict(v.into()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Strict(Value::Array(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(v) = map.next_value()?;
            if out.insert(key.clone(), v).is_some() {
                return Err(de::Error::custom(format!("key `{key}` appears twice")));
            }
        }
        Ok(Strict(Value::Object(out)))
    }
}

/// Parses JSON, rejecting duplicate keys.
pub(super) fn parse(data: &[u8]) -> serde_json::Result<Value> {
    serde_json::from_slice::<Strict>(data).map(|s| s.0)
}

/// Go's key matching: ASCII case, plus the two non-ASCII letters that fold
/// to ASCII ones (`ſ` to `s`, the Kelvin sign to `k`).
pub(super) fn folds_to(key: &str, name: &str) -> bool {
    let fold = |c: char| match c {
        '\u{17f}' => 's',
        '\u{212a}' => 'k',
        c => c.to_ascii_lowercase(),
    };
    key.chars().map(fold).eq(name.chars().map(fold))
}

/// The value of `name` in `object`, Go's way: the only key that folds to
/// it must be `name` itself.
pub(super) fn field<'v>(
    object: &'v Map<String, Value>,
    name: &str,
) -> Result<Option<&'v Value>, String> {
    for k in object.keys() {
        if k != name && folds_to(k, name) {
            return Err(format!("key `{k}` reads as `{name}` to docker load"));
        }
    }
    Ok(object.get(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_errors_at_any_depth() {
        assert!(parse(br#"{"a":1,"a":2}"#).is_err());
        assert!(parse(br#"[{"b":{"c":1,"c":1}}]"#).is_err());
        assert!(parse(br#"[{"a":1,"b":{"a":2}}]"#).is_ok());
    }

    #[test]
    fn keys_fold_as_go_folds_them() {
        assert!(folds_to("CONFIG", "Config"));
        assert!(folds_to("Layer\u{17f}", "Layers"));
        assert!(!folds_to("Configs", "Config"));
        let v = parse(br#"{"Config":"a","config":"b"}"#).expect("json");
        assert!(field(v.as_object().expect("object"), "Config").is_err());
    }
}
