//! Fuzz target `proc_netstat`: see [`sockscope_fuzz::proc_netstat`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockscope_fuzz::proc_netstat(data));
