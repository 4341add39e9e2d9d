//! Fuzz target `recording_values`: see [`sockscope_fuzz::recording_values`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockscope_fuzz::recording_values(data));
