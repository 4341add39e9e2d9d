//! Fuzz target `tcp_info`: see [`sockscope_fuzz::tcp_info`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockscope_fuzz::tcp_info(data));
