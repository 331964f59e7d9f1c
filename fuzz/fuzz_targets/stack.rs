//! Any bytes as a stack file: `strata::load` answers a stack or located diagnostics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::entry::stack(data));
