//! Fuzz target `proc_net`: see [`sockscope_fuzz::proc_net`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockscope_fuzz::proc_net(data));
