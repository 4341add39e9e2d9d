//! Fuzz target `netlink_inet`: see [`sockscope_fuzz::netlink_inet`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockscope_fuzz::netlink_inet(data));
