//! libFuzzer entry point; the target itself is `geecache_fuzz_targets::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| geecache_fuzz_targets::config(data));
