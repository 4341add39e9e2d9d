//! `struct tcp_info` (the `INET_DIAG_INFO` attribute), read field by field.
//!
//! The kernel sends its own `sizeof(struct tcp_info)`: every field added since Linux 2.6 was
//! appended, so an older kernel sends a prefix of the struct and a newer one sends more than we
//! know. A field is read when the bytes reach its end; otherwise it is `None`; bytes past the
//! last field we know are ignored.
//!
//! Offsets are those of `struct tcp_info` in `include/uapi/linux/tcp.h` (Linux 6.18), in host
//! byte order, the `__u64` fields naturally aligned with no padding before them:
//!
//! | offset | field                 | offset | field                 |
//! | ------ | --------------------- | ------ | --------------------- |
//! | 0      | `tcpi_state` (u8)     | 56     | `tcpi_last_ack_recv`  |
//! | 1      | `tcpi_ca_state` (u8)  | 60     | `tcpi_pmtu`           |
//! | 2      | `tcpi_retransmits`    | 64     | `tcpi_rcv_ssthresh`   |
//! | 3      | `tcpi_probes` (u8)    | 68     | `tcpi_rtt`            |
//! | 4      | `tcpi_backoff` (u8)   | 72     | `tcpi_rttvar`         |
//! | 8      | `tcpi_rto`            | 76     | `tcpi_snd_ssthresh`   |
//! | 12     | `tcpi_ato`            | 80     | `tcpi_snd_cwnd`       |
//! | 16     | `tcpi_snd_mss`        | 84     | `tcpi_advmss`         |
//! | 20     | `tcpi_rcv_mss`        | 88     | `tcpi_reordering`     |
//! | 24     | `tcpi_unacked`        | 92     | `tcpi_rcv_rtt`        |
//! | 28     | `tcpi_sacked`         | 96     | `tcpi_rcv_space`      |
//! | 32     | `tcpi_lost`           | 100    | `tcpi_total_retrans`  |
//! | 36     | `tcpi_retrans`        | 104    | `tcpi_pacing_rate` (u64)     |
//! | 40     | `tcpi_fackets`        | 112    | `tcpi_max_pacing_rate` (u64) |
//! | 44     | `tcpi_last_data_sent` | 120    | `tcpi_bytes_acked` (u64)     |
//! | 48     | `tcpi_last_ack_sent`  | 128    | `tcpi_bytes_received` (u64)  |
//! | 52     | `tcpi_last_data_recv` | 136    | `tcpi_segs_out`, 140 `tcpi_segs_in` |
//! |        |                       | 144    | `tcpi_notsent_bytes`, 148 `tcpi_min_rtt` |
//!
//! Unmarked fields are `__u32`. The struct goes on (delivery rate, busy times, `bytes_sent`,
//! ...); Linux 6.18 sends 280 bytes.

use super::TcpInfo;
use super::inet::tcp_state;
use super::wire::{read_u32, read_u64};

/// Parse `struct tcp_info` of whatever length the kernel sent.
pub fn parse_tcp_info(raw: &[u8]) -> TcpInfo {
    let byte = |at: usize| raw.get(at).copied();
    let word = |at| read_u32(raw, at);
    let dword = |at| read_u64(raw, at);
    TcpInfo {
        state: byte(0).map(tcp_state),
        retransmits: byte(2),
        probes: byte(3),
        backoff: byte(4),
        rto: word(8),
        ato: word(12),
        snd_mss: word(16),
        rcv_mss: word(20),
        unacked: word(24),
        sacked: word(28),
        lost: word(32),
        retrans: word(36),
        last_data_sent: word(44),
        last_ack_sent: word(48),
        last_data_recv: word(52),
        last_ack_recv: word(56),
        pmtu: word(60),
        rtt: word(68),
        rttvar: word(72),
        snd_ssthresh: word(76),
        snd_cwnd: word(80),
        total_retrans: word(100),
        bytes_acked: dword(120),
        bytes_received: dword(128),
        notsent_bytes: word(144),
        min_rtt: word(148),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TcpState;

    /// A struct with every byte distinct enough to catch a wrong offset.
    fn synthetic(len: usize) -> Vec<u8> {
        let mut raw = vec![0u8; len];
        raw[0] = 8; // TCP_CLOSE_WAIT
        raw[2] = 3;
        for (at, value) in [(8usize, 204_000u32), (56, 1234), (68, 50), (100, 9)] {
            if at + 4 <= len {
                raw[at..at + 4].copy_from_slice(&value.to_ne_bytes());
            }
        }
        if 136 <= len {
            raw[128..136].copy_from_slice(&77u64.to_ne_bytes());
        }
        raw
    }

    #[test]
    fn fields_land_at_their_offsets() {
        let info = parse_tcp_info(&synthetic(280));
        assert_eq!(info.state, Some(TcpState::CloseWait));
        assert_eq!(info.retransmits, Some(3));
        assert_eq!(info.rto, Some(204_000));
        assert_eq!(info.last_ack_recv, Some(1234));
        assert_eq!(info.rtt, Some(50));
        assert_eq!(info.total_retrans, Some(9));
        assert_eq!(info.bytes_received, Some(77));
    }

    #[test]
    fn a_field_cut_in_half_is_missing() {
        let info = parse_tcp_info(&synthetic(58));
        assert_eq!(info.last_data_recv, Some(0));
        assert_eq!(info.last_ack_recv, None);
        assert_eq!(info.rtt, None);
    }

    #[test]
    fn empty_input_gives_an_empty_struct() {
        assert_eq!(parse_tcp_info(&[]), TcpInfo::default());
    }
}
