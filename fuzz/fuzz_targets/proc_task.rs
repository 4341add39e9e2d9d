//! Fuzz target `proc_task`: see [`sockscope_fuzz::proc_task`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockscope_fuzz::proc_task(data));
