//! Faces: each renders an [`crate::analyze::Analysis`] and derives nothing new — the text
//! and JSON report, `check`, the Prometheus exposition (which `serve` answers scrapes with),
//! the dashboard — or writes what the binary hands it: the snapshots of `record`, the
//! selection of `kill`.
//!
//! Report renderers take `&mut impl Write` so tests capture their output; the dashboard
//! ([`tui`]) draws frames that tests capture with ratatui's `TestBackend`. None reads the
//! kernel: the live sources they are handed do.

pub mod check;
pub mod escape;
pub mod json;
pub mod kill;
pub mod prometheus;
pub mod record;
pub mod serve;
pub mod text;
pub mod tui;

use std::time::{Duration, UNIX_EPOCH};

/// The last second RFC 3339 can write: 9999-12-31T23:59:59Z, in ms since the epoch.
const LAST_RFC3339_MS: u64 = 253_402_300_799_000;

/// `2026-11-22T11:21:13Z`: a snapshot's wall time as every face writes it. A time past the
/// year 9999 (only a corrupt recording holds one) is written as that year's last second
/// rather than failing the whole report.
pub fn rfc3339_seconds(ms: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.min(LAST_RFC3339_MS));
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn wall_times_past_the_year_9999_are_written_as_its_last_second() {
        assert_eq!(super::rfc3339_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            super::rfc3339_seconds(1_795_346_472_400),
            "2026-11-22T11:21:12Z"
        );
        // Found by the `recording` fuzz target: a recording's wall_time_ms near u64::MAX.
        for ms in [super::LAST_RFC3339_MS + 1_000, u64::MAX] {
            assert_eq!(super::rfc3339_seconds(ms), "9999-12-31T23:59:59Z");
        }
    }
}
