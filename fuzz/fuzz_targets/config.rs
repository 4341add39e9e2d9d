//! Fuzz target `config`: see [`sockscope_fuzz::config`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockscope_fuzz::config(data));
