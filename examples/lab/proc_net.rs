//! `/proc/net/tcp` and `/proc/net/tcp6`: how the lab checks that the kernel state it promises
//! holds without using `sock_diag` (the thing under test).
//!
//! For a listener the `rx_queue` column is the accept-queue length; children not yet
//! `accept()`ed show inode 0.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use anyhow::Context;

pub const SYN_SENT: u8 = 0x02;
pub const CLOSE_WAIT: u8 = 0x08;
pub const LISTEN: u8 = 0x0A;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: u8,
    pub rx_queue: u32,
    pub inode: u64,
}

/// The rows of the table for `addr`'s family.
pub fn read(ipv6: bool) -> anyhow::Result<Vec<Row>> {
    let path = if ipv6 {
        "/proc/net/tcp6"
    } else {
        "/proc/net/tcp"
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    parse(&text).with_context(|| format!("parsing {path}"))
}

/// Parse the text of `/proc/net/tcp` or `/proc/net/tcp6` (header line first).
pub fn parse(text: &str) -> anyhow::Result<Vec<Row>> {
    text.lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| parse_row(line).with_context(|| format!("bad line {line:?}")))
        .collect()
}

fn parse_row(line: &str) -> anyhow::Result<Row> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let field = |i: usize| fields.get(i).copied().context("missing column");
    let (_tx, rx) = field(4)?.split_once(':').context("queues")?;
    Ok(Row {
        local: parse_endpoint(field(1)?)?,
        remote: parse_endpoint(field(2)?)?,
        state: u8::from_str_radix(field(3)?, 16)?,
        rx_queue: u32::from_str_radix(rx, 16)?,
        inode: field(9)?.parse()?,
    })
}

/// `0100007F:1388` or the 32-hex-digit IPv6 form: each 32-bit word is printed as the
/// kernel holds it in memory, so the host's byte order turns it back into address bytes.
fn parse_endpoint(text: &str) -> anyhow::Result<SocketAddr> {
    let (addr, port) = text.split_once(':').context("endpoint")?;
    let port = u16::from_str_radix(port, 16)?;
    let word = |i: usize| -> anyhow::Result<[u8; 4]> {
        let hex = addr.get(i * 8..i * 8 + 8).context("short address")?;
        Ok(u32::from_str_radix(hex, 16)?.to_ne_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        n => anyhow::bail!("address of {n} hex digits"),
    };
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from /proc/net/tcp on Linux 6.18 (x86_64) with a backlog-2 listener on
    // 127.0.0.1:7001 holding three unaccepted children, one of them in CLOSE_WAIT.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1B59 00000000:0000 0A 00000000:00000003 00:00000000 00000000     0        0 14171 4 000000004cdf8c1d 100 0 0 10 0
   3: 0100007F:1B59 0100007F:EA1E 08 00000000:00000001 00:00000000 00000000     0        0 0 1 00000000e0cdabfe 20 4 0 10 -1
";

    #[test]
    #[cfg(target_endian = "little")]
    fn listener_queue_and_unaccepted_close_wait() {
        let rows = parse(TCP).expect("parses");
        assert_eq!(rows[0].local, "127.0.0.1:7001".parse().expect("addr"));
        assert_eq!(
            (rows[0].state, rows[0].rx_queue, rows[0].inode),
            (LISTEN, 3, 14171)
        );
        assert_eq!(
            (rows[1].state, rows[1].rx_queue, rows[1].inode),
            (CLOSE_WAIT, 1, 0)
        );
        assert_eq!(rows[1].remote.port(), 0xEA1E);
    }
}
