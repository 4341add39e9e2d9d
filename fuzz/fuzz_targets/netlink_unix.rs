//! Fuzz target `netlink_unix`: see [`sockscope_fuzz::netlink_unix`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockscope_fuzz::netlink_unix(data));
