//! Any bytes as BuildKit frontend options: the option parser, then the
//! options' args, profile and mirrors applied to a small stack.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::entry::frontend_opts(data));
