//! An `arbitrary` stack description, rendered to TOML, resolved, and every
//! enabled component lowered twice and validated.
#![no_main]

use strata_fuzz::stack_desc::StackDesc;

libfuzzer_sys::fuzz_target!(|desc: StackDesc| {
    let text = desc.to_toml();
    let outcome = strata_fuzz::entry::lower_toml(&text);
    if std::env::var_os("STRATA_FUZZ_PRINT").is_some() {
        eprintln!("----- stack -----\n{text}----- {outcome:?}");
    }
});
