//! Support for sockscope's own tests, and nothing else: the one place that decides what a test
//! does when it cannot run here (no network namespace, no IPv6, no privilege to drop, a tool
//! such as `tmux` or `promtool` missing).
//!
//! It is public only so that the integration tests under `tests/` reach the same helper as the
//! unit tests under `src/`; no face uses it, and it is hidden from the documentation.
//!
//! A test that cannot run fails, with its reason and a pointer to `scripts/test` (which
//! installs every tool and server the tests use): a green run then means every test ran. Where
//! a test is known not to run (a laptop without `promtool`, a container without namespaces),
//! `SOCKSCOPE_ALLOW_SKIP=1` turns each such failure into a `SKIP <test>: <reason>` line on
//! stderr (`cargo test -- --nocapture` shows them) and a pass.

/// The environment variable that lets a test that cannot run pass after saying why.
pub const ALLOW_SKIP: &str = "SOCKSCOPE_ALLOW_SKIP";

/// Whether `SOCKSCOPE_ALLOW_SKIP=1` is set.
pub fn skips_allowed() -> bool {
    std::env::var_os(ALLOW_SKIP).is_some_and(|v| v == "1")
}

/// `test` cannot run here, because of `reason`. Fails the test, unless skipping is allowed
/// ([`ALLOW_SKIP`]): then it prints `SKIP <test>: <reason>` and returns, and the caller must
/// return without testing anything.
///
/// # Panics
///
/// Unless `SOCKSCOPE_ALLOW_SKIP=1` is set: that is the failure of a test that did not run.
#[track_caller]
pub fn skip_or_fail(test: &str, reason: &str) {
    assert!(
        skips_allowed(),
        "{test} cannot run here: {reason}. `scripts/test` installs what the tests need and runs \
         them ({ALLOW_SKIP}=1 lets this test pass without running)"
    );
    eprintln!("SKIP {test}: {reason}");
}
