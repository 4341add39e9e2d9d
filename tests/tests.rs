//! Integration tests: the real `sockscope` binary, run against kernel state that the lab
//! example builds in private network namespaces, checked against `ss` and `nstat` run in
//! the same namespace.
//!
//! One test binary (ripgrep's layout). Its modules live in directories because Cargo would
//! build every top-level `tests/*.rs` file as a test binary of its own.
//!
//! Tests that need a namespace print `SKIP <test>: <reason>` and pass when one cannot be
//! made, unless `SOCKSCOPE_REQUIRE_NETNS=1` (CI), which makes that a failure.

mod suite;
mod util;
