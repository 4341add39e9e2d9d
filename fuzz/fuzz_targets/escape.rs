//! Fuzz target `escape`: see [`sockscope_fuzz::escape`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockscope_fuzz::escape(data));
