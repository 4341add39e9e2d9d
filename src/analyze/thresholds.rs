//! The thresholds every rule reads, with the defaults of the design.
//!
//! One type for every face: `report`, `check`, `top` and `serve` all judge with the same
//! numbers. Percentages are of the quantity the rule names (a listener's backlog, the
//! ephemeral port range, a process's soft `RLIMIT_NOFILE`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// `accept-queue-high` (warning) at this accept-queue fill, % of the backlog.
    pub fill_warn: f64,
    /// `accept-queue-full` (critical) above this fill; 100 means past the backlog, which is
    /// exactly when the kernel starts dropping.
    pub fill_crit: f64,
    /// `listen-drops` turns critical at this many ListenDrops per second.
    pub listen_drops_crit: f64,
    /// `syn-queue-pressure` at this many SYN_RECV, % of a listener's backlog + 1.
    pub syn_recv_warn: f64,
    /// `abandoned-in-accept-queue` at this many queued children whose client gave up.
    pub abandoned_warn: u64,
    /// `close-wait-leak` warning at this many CLOSE_WAIT sockets in one process.
    pub close_wait_warn: u64,
    /// `close-wait-leak` critical at this many (or when the count grew in the window).
    pub close_wait_crit: u64,
    /// `ephemeral-port-collision` warning at this many mined ports for one client/server pair.
    pub collision_warn: u64,
    /// `ephemeral-port-collision` critical at this share of the ephemeral range, %.
    pub collision_crit: f64,
    /// `fd-exhaustion` warning at this % of the soft `RLIMIT_NOFILE`.
    pub fd_warn: f64,
    /// `fd-exhaustion` critical at this %.
    pub fd_crit: f64,
    /// `orphan-pressure` warning at this % of `tcp_max_orphans`.
    pub orphan_warn: f64,
    /// `half-open-handshakes` turns critical at this many request sockets of one listener
    /// whose SYN-ACK was retransmitted.
    pub half_open_crit: u64,
    /// `receive-queue-stall` from one sample: a socket holding at least this many unread
    /// bytes (with two samples, unread data that did not shrink is enough).
    pub recv_stall_bytes: u64,
    /// `udp-receive-drops` turns critical at this many drops per second on one socket.
    pub udp_drops_crit: f64,
    /// `ephemeral-port-exhaustion` warning at this % of the usable ephemeral range in use
    /// from one local address to one destination.
    pub port_use_warn: f64,
    /// `ephemeral-port-exhaustion` critical at this %.
    pub port_use_crit: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds::DEFAULT
    }
}

impl Thresholds {
    /// The defaults of the design, written once: `--help` shows these values, and the
    /// example config file documents them (both checked by tests).
    pub const DEFAULT: Thresholds = Thresholds {
        fill_warn: 80.0,
        fill_crit: 100.0,
        listen_drops_crit: 10.0,
        syn_recv_warn: 80.0,
        abandoned_warn: 1,
        close_wait_warn: 50,
        close_wait_crit: 500,
        collision_warn: 1,
        collision_crit: 5.0,
        fd_warn: 80.0,
        fd_crit: 95.0,
        orphan_warn: 50.0,
        half_open_crit: 64,
        recv_stall_bytes: 65_536,
        udp_drops_crit: 100.0,
        port_use_warn: 50.0,
        port_use_crit: 90.0,
    };
}

impl Thresholds {
    /// Check that every value makes sense and that each warning comes before its critical.
    pub fn validate(&self) -> Result<(), String> {
        let pcts = [
            ("fill_warn", self.fill_warn),
            ("fill_crit", self.fill_crit),
            ("syn_recv_warn", self.syn_recv_warn),
            ("collision_crit", self.collision_crit),
            ("fd_warn", self.fd_warn),
            ("fd_crit", self.fd_crit),
            ("orphan_warn", self.orphan_warn),
            ("port_use_warn", self.port_use_warn),
            ("port_use_crit", self.port_use_crit),
        ];
        for (name, v) in pcts {
            if !(v.is_finite() && (0.0..=1000.0).contains(&v)) {
                return Err(format!("{name} = {v} is not a percentage from 0 to 1000"));
            }
        }
        for (name, v) in [
            ("listen_drops_crit", self.listen_drops_crit),
            ("udp_drops_crit", self.udp_drops_crit),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!(
                    "{name} = {v} must be a rate of 0 or more per second"
                ));
            }
        }
        let ordered = [
            ("fill_warn", self.fill_warn, "fill_crit", self.fill_crit),
            ("fd_warn", self.fd_warn, "fd_crit", self.fd_crit),
            (
                "port_use_warn",
                self.port_use_warn,
                "port_use_crit",
                self.port_use_crit,
            ),
            #[allow(clippy::cast_precision_loss)]
            (
                "close_wait_warn",
                self.close_wait_warn as f64,
                "close_wait_crit",
                self.close_wait_crit as f64,
            ),
        ];
        for (w, wv, c, cv) in ordered {
            if wv > cv {
                return Err(format!(
                    "{w} ({wv}) is above {c} ({cv}): a warning must come first"
                ));
            }
        }
        if self.abandoned_warn == 0
            || self.collision_warn == 0
            || self.close_wait_warn == 0
            || self.half_open_crit == 0
            || self.recv_stall_bytes == 0
        {
            return Err(
                "count thresholds (abandoned_warn, collision_warn, close_wait_warn, \
                 half_open_crit, recv_stall_bytes) must be at least 1"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_design_defaults_and_valid() {
        let t = Thresholds::default();
        assert_eq!(
            (t.fill_warn, t.fill_crit, t.fd_warn, t.fd_crit),
            (80.0, 100.0, 80.0, 95.0)
        );
        assert_eq!((t.close_wait_warn, t.close_wait_crit), (50, 500));
        assert_eq!(t.validate(), Ok(()));
    }

    #[test]
    fn a_warning_above_its_critical_is_rejected() {
        let t = Thresholds {
            fd_warn: 96.0,
            ..Thresholds::default()
        };
        assert!(
            t.validate()
                .expect_err("rejected")
                .contains("fd_warn (96) is above fd_crit (95)")
        );
        let t = Thresholds {
            fill_crit: f64::NAN,
            ..Thresholds::default()
        };
        assert!(t.validate().is_err());
        let t = Thresholds {
            close_wait_warn: 0,
            ..Thresholds::default()
        };
        assert!(t.validate().is_err());
    }
}
