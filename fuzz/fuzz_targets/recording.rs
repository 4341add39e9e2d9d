//! Fuzz target `recording`: see [`sockscope_fuzz::recording`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockscope_fuzz::recording(data));
