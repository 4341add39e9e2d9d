//! The system log's record of every destroying `sockscope kill` run: one line to the local
//! syslog socket, as `logger` writes it.
//!
//! A datagram to `/dev/log` in the RFC 3164 form the syslog daemons and journald accept,
//! `<PRI>sockscope[PID]: MESSAGE`, without a timestamp (the daemon stamps it). Facility
//! authpriv (10), severity notice (5): an administrative act by a privileged user, the kind
//! of line an audit trail is kept for. It touches no kernel state and reads nothing.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

/// Where syslog listens on Linux.
pub const DEV_LOG: &str = "/dev/log";

/// `authpriv.notice`: facility 10 × 8 + severity 5.
const PRI: u8 = 85;

/// Why the line was not logged.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("no syslog socket at {0}, so this run is not in the system log")]
    NoSocket(String),
    #[error("could not write to the syslog socket {path}: {err}")]
    Io { path: String, err: io::Error },
}

/// The datagram for `message`, from process `pid`. `message` must already be one line with
/// its outside names escaped.
pub fn line(pid: u32, message: &str) -> String {
    format!("<{PRI}>sockscope[{pid}]: {message}")
}

/// Send `line` to the syslog socket at `path`.
pub fn send(path: &Path, line: &str) -> Result<(), AuditError> {
    let shown = || path.display().to_string();
    let io_error = |err: io::Error| match err.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => AuditError::NoSocket(shown()),
        _ => AuditError::Io { path: shown(), err },
    };
    let socket = UnixDatagram::unbound().map_err(io_error)?;
    socket.send_to(line.as_bytes(), path).map_err(io_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_rfc3164_authpriv_notice() {
        assert_eq!(
            line(4242, "uid 0 destroyed 2 sockets"),
            "<85>sockscope[4242]: uid 0 destroyed 2 sockets"
        );
    }

    #[test]
    fn the_line_reaches_a_syslog_socket_and_a_missing_one_is_named() {
        let dir = std::env::temp_dir().join(format!("sockscope-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let path = dir.join("log");
        let _ = std::fs::remove_file(&path);
        let daemon = UnixDatagram::bind(&path).expect("a fake syslog socket");
        send(&path, "<85>sockscope[1]: hello").expect("sent");
        let mut buf = [0u8; 128];
        let n = daemon.recv(&mut buf).expect("received");
        assert_eq!(&buf[..n], b"<85>sockscope[1]: hello");
        drop(daemon);
        std::fs::remove_file(&path).expect("removed");
        let err = send(&path, "x").expect_err("no socket");
        assert!(matches!(err, AuditError::NoSocket(_)), "{err}");
        assert!(err.to_string().contains("no syslog socket at"), "{err}");
        let _ = std::fs::remove_dir(&dir);
    }
}
