//! Hostile build args: any bytes as the values of a stack's args, in
//! account fields, package operands, paths and step names.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::entry::build_args(data));
