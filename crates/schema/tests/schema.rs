//! The committed schema is what `cargo run -p strata-schema` writes, and
//! the reference documents every key of the stack file and no other.

use serde_json::json;
use strata::spec;
use strata_schema::{
    cells, read, reference_problems, schema, schema_text, section, REFERENCE, SCHEMA,
};

#[test]
fn the_reference_documents_every_key_and_no_other() {
    let problems = reference_problems(&read(REFERENCE));
    assert!(
        problems.is_empty(),
        "{REFERENCE} is out of date:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_committed_schema_is_current() {
    let generated = schema_text(&read(REFERENCE));
    assert!(
        read(SCHEMA) == generated,
        "{SCHEMA} is out of date with the stack file's types or {REFERENCE}; \
         regenerate it with\n  cargo run -p strata-schema"
    );
}

#[test]
fn the_schema_describes_the_shapes_serde_accepts() {
    let s = schema(&read(REFERENCE));
    let d = &s["definitions"];
    assert_eq!(
        s["properties"]["stack"]["allOf"][0]["$ref"],
        "#/definitions/stack"
    );
    assert_eq!(s["required"], json!(["stack", "component"]));
    assert_eq!(d["user"]["required"], json!(["name", "uid"]));
    assert_eq!(
        d["user"]["properties"]["on-conflict"]["enum"],
        json!(["rename", "error"])
    );
    assert_eq!(d["pip"]["properties"]["venv"]["default"], "/opt/venv");
    assert_eq!(d["component"]["properties"]["publish"]["type"], "boolean");
    // `apt = [...]` or a table; `copy` and `conda` only tables.
    let apt = &d["component"]["properties"]["apt"]["oneOf"];
    assert_eq!(apt[0]["type"], "array");
    assert_eq!(apt[1]["$ref"], "#/definitions/apt");
    assert_eq!(
        d["component"]["properties"]["copy"]["items"]["$ref"],
        "#/definitions/copy"
    );
    // Args: a bare string, bool or integer, or the table form.
    let arg = &s["properties"]["args"]["additionalProperties"]["oneOf"];
    assert_eq!(arg.as_array().map(Vec::len), Some(4));
    for def in d.as_object().expect("definitions").values() {
        assert_eq!(def["additionalProperties"], false);
        for (k, p) in def["properties"].as_object().expect("properties") {
            assert!(p["description"].is_string(), "{k} has no description");
        }
    }
}

#[test]
fn the_bool_spellings_in_the_reference_are_the_accepted_ones() {
    let doc = read(REFERENCE);
    let lines = section(&doc, "## Bool values").expect("a Bool values section");
    let rows: Vec<Vec<String>> = lines
        .iter()
        .filter(|l| l.starts_with('|'))
        .map(|l| cells(l))
        .collect();
    assert_eq!(rows[0], ["true", "false"]);
    let mut listed = 0;
    for (col, want) in [(0, true), (1, false)] {
        for word in rows[2][col].split(',') {
            let word = word.trim().trim_matches('`');
            for spelling in [word.to_owned(), word.to_uppercase(), capitalise(word)] {
                assert_eq!(
                    spec::resolve::parse_bool(&spelling),
                    Ok(want),
                    "{REFERENCE} lists `{spelling}` as {want}"
                );
            }
            listed += 1;
        }
    }
    assert_eq!(listed, 8, "every accepted spelling is listed");
    for bad in ["2", "maybe", "", "t", "nope"] {
        assert!(
            spec::resolve::parse_bool(bad).is_err(),
            "`{bad}` must be an error"
        );
    }
}

fn capitalise(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
