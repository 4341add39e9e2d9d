//! Fuzz target `proc_limits`: see [`sockscope_fuzz::proc_limits`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockscope_fuzz::proc_limits(data));
