//! The JSON Schema of the stack file (docs/stack-file.schema.json) and the
//! check that its reference (docs/stack-file.md) documents every key, both
//! derived from the stack file's serde types so neither can drift.
//!
//! A recording `Deserializer` walks `RawStackFile::deserialize` and keeps
//! every struct's field list and each field's shape. Types that accept
//! several forms (`Short<T>`, `RawArg`, `Command`, `Paths`, `Extends`,
//! `NamingRules`, `MatrixValue`, `toml::Value`)
//! call `deserialize_any`; the recorder recognises them by their visitor's
//! `expecting` text and walks the table form of each. Every struct maps to
//! one section of the reference, whose first Markdown table lists exactly
//! its keys. The schema is generated from the same walk plus the
//! reference's descriptions, defaults and enumerations.
//!
//! `cargo run -p strata-schema` rewrites the schema; this crate's tests
//! fail when the committed file differs from what it would write.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use serde_spanned::de::{is_spanned, SpannedDeserializer};
use strata::spec::raw::{
    AptSpec, Command, CondaSpec, CopySpec, Extends, MatrixValue, NamingRules, OsPackagesSpec,
    Paths, PipSpec, RawArg, RawArgTable, RawStackFile, RunSpec, Short, Shorthand, TestSpec,
};

/// The reference, relative to the repository root.
pub const REFERENCE: &str = "docs/stack-file.md";
/// The generated schema, relative to the repository root.
pub const SCHEMA: &str = "docs/stack-file.schema.json";

/// Each serde struct of the stack file: its section heading in the
/// reference and its definition name in the schema.
const SECTIONS: &[(&str, &str, &str)] = &[
    ("RawStackFile", "## Top-level tables", ""),
    ("RawStack", "## `[stack]`", "stack"),
    ("RawArgTable", "## `[args]`", "arg"),
    ("RawProfile", "## `[profiles.<name>]`", "profile"),
    ("RawUser", "## `[user]`", "user"),
    ("RawMetadata", "## `[metadata]`", "metadata"),
    ("RawPackages", "## `[packages]`", "packages"),
    ("RawComponent", "## `[component.<name>]`", "component"),
    ("RawGpu", "### `gpu`", "gpu"),
    ("RawHealthcheck", "### `healthcheck`", "healthcheck"),
    ("RawStep", "### `steps`", "step"),
    ("RunSpec", "### `run`", "run"),
    ("AptSpec", "### `apt`", "apt"),
    ("RawAptMirror", "#### apt mirrors", "apt-mirror"),
    ("OsPackagesSpec", "### `dnf` and `apk`", "os-packages"),
    ("PipSpec", "### `pip`", "pip"),
    ("CopySpec", "### `copy`", "copy"),
    ("CondaSpec", "### `conda`", "conda"),
    ("TestSpec", "### `test`", "test"),
];

/// The repository root (this crate is `crates/schema`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file of the repository, by its path relative to the root.
pub fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_root().join(rel))
        .unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

// ------------------------------------------------------------ recorder ----

#[derive(Debug)]
struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// What a field holds, as the serde types ask for it.
#[derive(Debug, Default)]
enum Node {
    #[default]
    Unknown,
    Bool,
    Int,
    Str,
    Optional(Slot),
    Seq(Slot),
    Map(Slot),
    Struct(&'static str),
    /// A `deserialize_any` type: an index into the registry.
    Any(usize),
}

type Slot = Rc<RefCell<Node>>;

/// A type read with `deserialize_any`, recognised by its visitor's text.
struct AnyType {
    expecting: String,
    /// The struct of its table form, if it has one.
    table: Option<(&'static str, &'static [&'static str])>,
    /// The JSON Schemas of its other forms.
    forms: Vec<Value>,
}

struct StructRecord {
    fields: &'static [&'static str],
    shapes: BTreeMap<&'static str, Slot>,
}

#[derive(Default)]
struct State {
    structs: RefCell<BTreeMap<&'static str, StructRecord>>,
    registry: Vec<AnyType>,
    /// While probing which fields are required: leave this one out.
    omit: RefCell<Option<(&'static str, &'static str)>>,
}

#[derive(Clone)]
struct Recorder {
    slot: Slot,
    st: Rc<State>,
}

impl Recorder {
    fn set(&self, n: Node) {
        *self.slot.borrow_mut() = n;
    }

    fn child(&self) -> Recorder {
        Recorder {
            slot: Slot::default(),
            st: self.st.clone(),
        }
    }

    fn fields_map(&self, name: &'static str, fields: &'static [&'static str]) -> FieldsMap {
        let mut structs = self.st.structs.borrow_mut();
        let first = !structs.contains_key(name);
        let rec = structs.entry(name).or_insert_with(|| StructRecord {
            fields,
            shapes: BTreeMap::new(),
        });
        let slots = fields
            .iter()
            .map(|f| {
                if first {
                    rec.shapes.entry(f).or_default().clone()
                } else {
                    Slot::default()
                }
            })
            .collect();
        FieldsMap {
            name,
            fields,
            slots,
            next: 0,
            st: self.st.clone(),
        }
    }
}

impl<'de> IntoDeserializer<'de, Error> for Recorder {
    type Deserializer = Recorder;
    fn into_deserializer(self) -> Recorder {
        self
    }
}

/// A visitor's `expecting` text.
fn expecting<'de, V: Visitor<'de>>(v: &V) -> String {
    struct Show<'a, V>(&'a V);
    impl<'de, V: Visitor<'de>> fmt::Display for Show<'_, V> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.expecting(f)
        }
    }
    Show(v).to_string()
}

macro_rules! ints {
    ($($m:ident)*) => {$(
        fn $m<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            self.set(Node::Int);
            v.visit_i64(0)
        }
    )*};
}

impl<'de> Deserializer<'de> for Recorder {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let text = expecting(&v);
        let st = self.st.clone();
        let Some(i) = st.registry.iter().position(|a| a.expecting == text) else {
            return Err(Error(format!(
                "a field accepts several forms (\"{text}\"), and this test does not know the type: add it to `registry()`"
            )));
        };
        self.set(Node::Any(i));
        match st.registry[i].table {
            Some((name, fields)) => v.visit_map(self.fields_map(name, fields)),
            None => v.visit_str("x"),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.set(Node::Bool);
        v.visit_bool(false)
    }

    ints!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64);

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.set(Node::Str);
        v.visit_str("x")
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let inner = self.child();
        self.set(Node::Optional(inner.slot.clone()));
        v.visit_some(inner)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let item = self.child();
        self.set(Node::Seq(item.slot.clone()));
        v.visit_seq(OneItem(Some(item)))
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let value = self.child();
        self.set(Node::Map(value.slot.clone()));
        v.visit_map(OneEntry {
            key: Some(self.child()),
            value: Some(value),
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        if is_spanned(name) {
            // Transparent: the value fills this slot.
            return v.visit_map(SpannedDeserializer::<Recorder, Error>::new(self, 0..0));
        }
        self.set(Node::Struct(name));
        v.visit_map(self.fields_map(name, fields))
    }

    serde::forward_to_deserialize_any! {
        i128 u128 f32 f64 char bytes byte_buf unit unit_struct newtype_struct
        tuple tuple_struct enum identifier ignored_any
    }
}

struct OneItem<D>(Option<D>);

impl<'de, D: Deserializer<'de, Error = Error>> SeqAccess<'de> for OneItem<D> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0.take().map(|r| seed.deserialize(r)).transpose()
    }
}

/// The string `"x"`, also where a `Spanned<String>` is expected.
struct SpannedStr;

impl<'de> Deserializer<'de> for SpannedStr {
    type Error = Error;
    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_str("x")
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        if is_spanned(name) {
            return v.visit_map(SpannedDeserializer::<&str, Error>::new("x", 0..0));
        }
        v.visit_str("x")
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

struct OneEntry {
    key: Option<Recorder>,
    value: Option<Recorder>,
}

impl<'de> MapAccess<'de> for OneEntry {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        self.key.take().map(|r| seed.deserialize(r)).transpose()
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let r = self
            .value
            .take()
            .ok_or_else(|| Error("value without key".into()))?;
        seed.deserialize(r)
    }
}

struct FieldsMap {
    name: &'static str,
    fields: &'static [&'static str],
    slots: Vec<Slot>,
    next: usize,
    st: Rc<State>,
}

impl<'de> MapAccess<'de> for FieldsMap {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let omit = *self.st.omit.borrow();
        while self.next < self.fields.len() && omit == Some((self.name, self.fields[self.next])) {
            self.next += 1;
        }
        let Some(field) = self.fields.get(self.next) else {
            return Ok(None);
        };
        seed.deserialize(BorrowedStrDeserializer::<Error>::new(field))
            .map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let slot = self.slots[self.next].clone();
        self.next += 1;
        seed.deserialize(Recorder {
            slot,
            st: self.st.clone(),
        })
    }
}

/// Learns a type's struct name and fields, or its `expecting` text.
#[derive(Default)]
struct Grab {
    name: Option<&'static str>,
    fields: Option<&'static [&'static str]>,
    expecting: Option<String>,
}

struct Grabber<'a>(&'a RefCell<Grab>);

impl<'de> Deserializer<'de> for Grabber<'_> {
    type Error = Error;
    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.0.borrow_mut().expecting = Some(expecting(&v));
        Err(Error("grabbed".into()))
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Error> {
        let mut g = self.0.borrow_mut();
        g.name = Some(name);
        g.fields = Some(fields);
        Err(Error("grabbed".into()))
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

fn grab<'de, T: Deserialize<'de>>() -> Grab {
    let cell = RefCell::new(Grab::default());
    let _ = T::deserialize(Grabber(&cell));
    cell.into_inner()
}

/// A value of one simple form, to learn which forms a type accepts.
#[derive(Clone, Copy)]
enum Probe {
    Str,
    Bool,
    Int,
    StrList,
}

impl<'de> Deserializer<'de> for Probe {
    type Error = Error;
    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self {
            Probe::Str => v.visit_str("x"),
            Probe::Bool => v.visit_bool(true),
            Probe::Int => v.visit_i64(1),
            Probe::StrList => v.visit_seq(OneItem(Some(SpannedStr))),
        }
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

fn forms<'de, T: Deserialize<'de>>() -> Vec<Value> {
    let mut out = Vec::new();
    for (probe, schema) in [
        (Probe::Str, json!({ "type": "string" })),
        (Probe::Bool, json!({ "type": "boolean" })),
        (Probe::Int, json!({ "type": "integer" })),
        (
            Probe::StrList,
            json!({ "type": "array", "items": { "type": "string" } }),
        ),
    ] {
        if T::deserialize(probe).is_ok() {
            out.push(schema);
        }
    }
    out
}

fn any_type<'de, W: Deserialize<'de>>(table: Option<Grab>) -> AnyType {
    let expecting = grab::<W>()
        .expecting
        .expect("a deserialize_any type asks for any");
    AnyType {
        expecting,
        table: table.map(|g| (g.name.expect("a struct"), g.fields.expect("fields"))),
        forms: forms::<W>(),
    }
}

fn short<T: Shorthand>() -> AnyType {
    let a = any_type::<Short<T>>(Some(grab::<T>()));
    assert_eq!(a.expecting, T::EXPECTING);
    a
}

/// Every type of the stack file that is read with `deserialize_any`.
fn registry() -> Vec<AnyType> {
    vec![
        any_type::<RawArg>(Some(grab::<RawArgTable>())),
        short::<RunSpec>(),
        short::<AptSpec>(),
        short::<OsPackagesSpec>(),
        short::<PipSpec>(),
        short::<CopySpec>(),
        short::<CondaSpec>(),
        short::<TestSpec>(),
        any_type::<Command>(None),
        any_type::<Paths>(None),
        any_type::<Extends>(None),
        any_type::<NamingRules>(None),
        // Its table form is a table of strings, not a struct.
        AnyType {
            forms: vec![
                json!({ "type": "string" }),
                json!({ "type": "object", "additionalProperties": { "type": "string" } }),
            ],
            ..any_type::<MatrixValue>(None)
        },
        AnyType {
            forms: Vec::new(),
            ..any_type::<toml::Value>(None)
        },
    ]
}

/// The stack file's structs as serde sees them.
struct Model {
    st: Rc<State>,
    required: BTreeMap<&'static str, BTreeSet<&'static str>>,
}

fn model() -> Model {
    let st = Rc::new(State {
        registry: registry(),
        ..State::default()
    });
    let walk = |st: &Rc<State>| {
        RawStackFile::deserialize(Recorder {
            slot: Slot::default(),
            st: st.clone(),
        })
    };
    if let Err(e) = walk(&st) {
        panic!("walking RawStackFile failed: {e}");
    }
    // A field is required when leaving it out is an error.
    let fields: Vec<(&'static str, &'static str)> = st
        .structs
        .borrow()
        .iter()
        .flat_map(|(name, rec)| rec.fields.iter().map(move |f| (*name, *f)))
        .collect();
    let mut required: BTreeMap<&'static str, BTreeSet<&'static str>> = BTreeMap::new();
    for (name, field) in fields {
        *st.omit.borrow_mut() = Some((name, field));
        match walk(&st) {
            Ok(_) => {}
            Err(e) if e.0.contains(&format!("missing field `{field}`")) => {
                required.entry(name).or_default().insert(field);
            }
            Err(e) => panic!("probing {name}.{field}: {e}"),
        }
    }
    *st.omit.borrow_mut() = None;
    Model { st, required }
}

// ----------------------------------------------------------- reference ----

/// One row of a key table.
#[derive(Debug)]
struct Row {
    key: String,
    kind: String,
    default: String,
    meaning: String,
}

/// The cells of a Markdown table row, trimmed.
pub fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cur.push('|');
                chars.next();
            }
            '|' => out.push(std::mem::take(&mut cur).trim().to_owned()),
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_owned());
    out
}

/// The lines of a section: after its heading, up to the next heading of
/// the same or a higher level.
pub fn section<'a>(doc: &'a str, heading: &str) -> Option<Vec<&'a str>> {
    let level = heading.split(' ').next().unwrap_or("").len();
    let mut lines = doc.lines().skip_while(|l| l.trim_end() != heading);
    lines.next()?;
    let mut in_code = false;
    Some(
        lines
            .take_while(|l| {
                if l.starts_with("```") {
                    in_code = !in_code;
                }
                let hashes = l.chars().take_while(|c| *c == '#').count();
                in_code || hashes == 0 || hashes > level || !l[hashes..].starts_with(' ')
            })
            .collect(),
    )
}

/// The first table of a section, as rows.
fn key_table(doc: &str, heading: &str) -> Vec<Row> {
    let lines =
        section(doc, heading).unwrap_or_else(|| panic!("{REFERENCE} has no heading `{heading}`"));
    let table: Vec<&str> = lines
        .iter()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .copied()
        .collect();
    assert!(
        table.len() > 2,
        "`{heading}` in {REFERENCE} has no key table"
    );
    let header = cells(table[0]);
    assert_eq!(
        header,
        ["Key", "Type", "Default", "Meaning"],
        "the key table of `{heading}` must have the columns Key | Type | Default | Meaning"
    );
    table[2..]
        .iter()
        .map(|l| {
            let c = cells(l);
            assert_eq!(c.len(), 4, "row `{l}` under `{heading}` needs 4 cells");
            let key = c[0]
                .strip_prefix('`')
                .and_then(|k| k.strip_suffix('`'))
                .unwrap_or_else(|| {
                    panic!(
                        "key `{}` under `{heading}` must be written in backticks",
                        c[0]
                    )
                })
                .to_owned();
            assert!(!c[3].is_empty(), "`{key}` under `{heading}` has no meaning");
            Row {
                key,
                kind: c[1].clone(),
                default: c[2].clone(),
                meaning: c[3].clone(),
            }
        })
        .collect()
}

fn heading_of(name: &str) -> Option<&'static str> {
    SECTIONS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, h, _)| *h)
}

fn def_of(name: &str) -> &'static str {
    SECTIONS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, d)| *d)
        .unwrap_or_else(|| panic!("struct {name} has no entry in SECTIONS"))
}

/// What the reference `doc` gets wrong about the stack file's keys, one
/// line each: empty when it documents every key and no other.
pub fn reference_problems(doc: &str) -> Vec<String> {
    let m = model();
    let structs = m.st.structs.borrow();
    let mut problems = Vec::new();
    for (name, rec) in structs.iter() {
        let Some(heading) = heading_of(name) else {
            problems.push(format!(
                "the stack file has a new table ({name}, keys {:?}): document it in {REFERENCE} and add it to SECTIONS",
                rec.fields
            ));
            continue;
        };
        let rows = key_table(doc, heading);
        let documented: BTreeSet<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        let accepted: BTreeSet<&str> = rec.fields.iter().copied().collect();
        for k in accepted.difference(&documented) {
            problems.push(format!(
                "`{heading}`: key `{k}` is accepted but not documented"
            ));
        }
        for k in documented.difference(&accepted) {
            problems.push(format!(
                "`{heading}`: key `{k}` is documented but does not exist"
            ));
        }
        if rows.len() != documented.len() {
            problems.push(format!("`{heading}`: a key is documented twice"));
        }
        for r in &rows {
            let required = m
                .required
                .get(name)
                .is_some_and(|s| s.contains(r.key.as_str()));
            if required && !r.default.starts_with("required") {
                problems.push(format!(
                    "`{heading}`: `{}` is required, but its Default says `{}`",
                    r.key, r.default
                ));
            }
        }
    }
    for (name, heading, _) in SECTIONS {
        if !structs.contains_key(name) {
            problems.push(format!(
                "SECTIONS names {name} ({heading}), which the stack file no longer has"
            ));
        }
    }
    drop(structs);
    problems
}

// -------------------------------------------------------------- schema ----

/// `one of `"a"`, `"b"`` in a Type cell.
fn enum_values(kind: &str) -> Option<Vec<String>> {
    let rest = kind.strip_prefix("one of ")?;
    let values: Vec<String> = rest
        .split(',')
        .map(|v| v.trim().trim_matches('`'))
        .map(|v| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
        .collect::<Option<Vec<&str>>>()?
        .into_iter()
        .map(str::to_owned)
        .collect();
    Some(values)
}

/// A Default cell that is one TOML literal in backticks.
fn default_value(cell: &str) -> Option<Value> {
    let lit = cell.strip_prefix('`')?.strip_suffix('`')?;
    if lit.contains('`') {
        return None;
    }
    let v: toml::Table = toml::from_str(&format!("v = {lit}")).ok()?;
    serde_json::to_value(v.get("v")?).ok()
}

fn plain(text: &str) -> String {
    // Markdown links `[text](#anchor)` read as `text` in an editor tooltip.
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        // The `[` that opens this link text, past brackets inside it.
        let mut depth = 0usize;
        let open = rest[..i].char_indices().rev().find_map(|(j, c)| match c {
            ']' => {
                depth += 1;
                None
            }
            '[' if depth == 0 => Some(j),
            '[' => {
                depth -= 1;
                None
            }
            _ => None,
        });
        let (Some(open), Some(close)) = (open, rest[i..].find(')')) else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&rest[open + 1..i]);
        rest = &rest[i + close + 1..];
    }
    out.push_str(rest);
    out
}

fn node_schema(m: &Model, slot: &Slot) -> Value {
    match &*slot.borrow() {
        Node::Unknown => json!({}),
        Node::Bool => json!({ "type": "boolean" }),
        Node::Int => json!({ "type": "integer" }),
        Node::Str => json!({ "type": "string" }),
        Node::Optional(s) => node_schema(m, s),
        Node::Seq(s) => json!({ "type": "array", "items": node_schema(m, s) }),
        Node::Map(s) => json!({ "type": "object", "additionalProperties": node_schema(m, s) }),
        Node::Struct(name) => json!({ "$ref": format!("#/definitions/{}", def_of(name)) }),
        Node::Any(i) => {
            let a = &m.st.registry[*i];
            let mut forms = a.forms.clone();
            if let Some((name, _)) = a.table {
                forms.push(json!({ "$ref": format!("#/definitions/{}", def_of(name)) }));
            }
            match forms.len() {
                0 => json!({}),
                1 => forms.remove(0),
                _ => json!({ "oneOf": forms }),
            }
        }
    }
}

fn with_docs(mut schema: Value, row: &Row) -> Value {
    if schema.get("$ref").is_some() {
        schema = json!({ "allOf": [schema] });
    }
    let obj = schema.as_object_mut().expect("a schema object");
    obj.insert("description".into(), Value::String(plain(&row.meaning)));
    if let Some(values) = enum_values(&row.kind) {
        obj.insert("enum".into(), json!(values));
    }
    if let Some(d) = default_value(&row.default) {
        obj.insert("default".into(), d);
    }
    schema
}

fn struct_schema(m: &Model, doc: &str, name: &'static str) -> Value {
    let structs = m.st.structs.borrow();
    let rec = &structs[name];
    let heading = heading_of(name).expect("checked by the reference test");
    let rows = key_table(doc, heading);
    let mut props = Map::new();
    let mut required = Vec::new();
    for field in rec.fields {
        let row = rows
            .iter()
            .find(|r| r.key == *field)
            .unwrap_or_else(|| panic!("`{heading}` does not document `{field}`"));
        props.insert(
            (*field).to_owned(),
            with_docs(node_schema(m, &rec.shapes[field]), row),
        );
        let serde_required = m.required.get(name).is_some_and(|s| s.contains(field));
        if serde_required || row.default == "required" {
            required.push(*field);
        }
    }
    let title = heading.trim_start_matches('#').trim().trim_matches('`');
    let mut s = json!({
        "title": title,
        "type": "object",
        "additionalProperties": false,
        "properties": props,
    });
    if !required.is_empty() {
        s["required"] = json!(required);
    }
    s
}

/// The JSON Schema of the stack file: its types, with the descriptions,
/// defaults and enumerations of the reference `doc`.
pub fn schema(doc: &str) -> Value {
    let m = model();
    let names: Vec<&'static str> = m.st.structs.borrow().keys().copied().collect();
    let mut defs = Map::new();
    for name in &names {
        if *name != "RawStackFile" {
            defs.insert(def_of(name).to_owned(), struct_schema(&m, doc, name));
        }
    }
    let mut root = struct_schema(&m, doc, "RawStackFile");
    let obj = root.as_object_mut().expect("an object");
    obj.insert(
        "$schema".into(),
        json!("http://json-schema.org/draft-07/schema#"),
    );
    obj.insert("title".into(), json!("Strata stack file (strata.toml)"));
    obj.insert(
        "description".into(),
        json!("A stack of container images built by Strata. Generated from the stack file's types and docs/stack-file.md by crates/schema (`cargo run -p strata-schema`); do not edit."),
    );
    obj.insert("definitions".into(), Value::Object(defs));
    root
}

/// The schema file's text: [`schema`] as pretty JSON with a final newline.
pub fn schema_text(doc: &str) -> String {
    serde_json::to_string_pretty(&schema(doc)).expect("a JSON value serialises") + "\n"
}
