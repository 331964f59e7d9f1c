//! `cargo run -p strata-schema`: writes docs/stack-file.schema.json from
//! the stack file's types and docs/stack-file.md.

use std::process::ExitCode;

use strata_schema::{read, repo_root, schema_text, REFERENCE, SCHEMA};

fn main() -> ExitCode {
    let text = schema_text(&read(REFERENCE));
    match std::fs::write(repo_root().join(SCHEMA), text) {
        Ok(()) => {
            eprintln!("wrote {SCHEMA}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write {SCHEMA}: {e}");
            ExitCode::FAILURE
        }
    }
}
