//! Any bytes as a bundle (plain tar, gzip or zstd): `bundle::verify_stream`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    strata_fuzz::entry::bundle(data);
});
