//! Fuzz target `proc_stat`: see [`sockscope_fuzz::proc_stat`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockscope_fuzz::proc_stat(data));
