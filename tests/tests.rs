//! Integration tests: the real `sockscope` binary, run against kernel state that the lab
//! example builds in private network namespaces, checked against `ss` and `nstat` run in
//! the same namespace.
//!
//! One test binary (ripgrep's layout). Its modules live in directories because Cargo would
//! build every top-level `tests/*.rs` file as a test binary of its own.
//!
//! A test that cannot run here (no namespace, a tool missing) fails with its reason, unless
//! `SOCKSCOPE_ALLOW_SKIP=1` is set: `sockscope::testing::skip_or_fail` decides, for every test.

mod suite;
mod util;
