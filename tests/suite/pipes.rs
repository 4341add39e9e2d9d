//! A reader that goes away: `sockscope report | head -1` must exit 0 and say nothing.
//!
//! Rust ignores SIGPIPE, so a write to a closed pipe comes back as EPIPE; every face must
//! take that as the reader's choice, not as a failure — including when the report is far
//! larger than a pipe's buffer and the write fails half way.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::util::sockscope_bin;

fn fixture_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative)
}

/// Run sockscope with a stdout whose reader is already gone: every write fails with EPIPE.
fn with_reader_gone(args: &[&str]) -> Output {
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    drop(theirs);
    Command::new(sockscope_bin())
        .args(args)
        .stdout(Stdio::from(OwnedFd::from(ours)))
        .stderr(Stdio::piped())
        .output()
        .expect("running sockscope")
}

fn assert_quiet_success(what: &str, out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "{what}: a closed pipe must end in a quiet exit 0, got {} and stderr {stderr:?}",
        out.status
    );
}

#[test]
fn a_closed_pipe_ends_every_face_quietly() {
    let incidents = fixture_path("recordings/incidents.ndjson");
    let incidents = incidents.to_str().expect("utf-8 path");
    let cases: [&[&str]; 6] = [
        &["report", "--replay", incidents],
        &["report", "--json", "--replay", incidents],
        &["report", "--samples", "1"],
        &["report", "--json", "--samples", "1"],
        &["--help"],
        &["report", "--help"],
    ];
    for args in cases {
        assert_quiet_success(&args.join(" "), &with_reader_gone(args));
    }
    // check speaks the plugin protocol whoever reads it: its status is the exit code.
    for format in ["text", "json"] {
        let out = with_reader_gone(&["check", "--format", format, "--replay", incidents]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "check --format {format}: CRITICAL"
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A recording whose newest snapshot has `n` more listeners than the incident capture, so
/// that its report is far larger than a pipe's 64 KiB buffer.
fn large_recording(n: u16, path: &Path) {
    let text = std::fs::read_to_string(fixture_path("recordings/incidents.ndjson"))
        .expect("incidents fixture");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let last = lines.last_mut().expect("a snapshot");
    let mut snapshot: serde_json::Value = serde_json::from_str(last).expect("snapshot json");
    let listeners = snapshot["netns"][0]["tcp_listeners"]
        .as_array_mut()
        .expect("tcp_listeners");
    let model = listeners[0].clone();
    for i in 0..n {
        let mut l = model.clone();
        l["local"] = format!("127.0.0.1:{}", 20000 + i).into();
        l["inode"] = (9_000_000 + u64::from(i)).into();
        listeners.push(l);
    }
    *last = snapshot.to_string();
    std::fs::write(path, lines.join("\n") + "\n").expect("writing the recording");
}

#[test]
fn head_of_a_large_report_exits_0() {
    let path = std::env::temp_dir().join(format!(
        "sockscope-test-{}-large.ndjson",
        std::process::id()
    ));
    large_recording(5000, &path);
    let file = path.to_str().expect("utf-8 path").to_owned();
    for json in ["", "--json"] {
        let full = Command::new(sockscope_bin())
            .args(["report", "--replay", &file])
            .args((!json.is_empty()).then_some(json))
            .output()
            .expect("running sockscope");
        assert!(full.status.success());
        assert!(
            full.stdout.len() > 4 * 65536,
            "the report is {} bytes, not larger than the pipe",
            full.stdout.len()
        );
        // What an operator types: the shell reports sockscope's own status with pipefail.
        let line = format!(
            "set -o pipefail; '{}' report {json} --replay '{file}' | head -1 >/dev/null",
            sockscope_bin().display()
        );
        let out = Command::new("bash")
            .args(["-c", &line])
            .output()
            .expect("running bash");
        assert_quiet_success(&format!("report {json} | head -1"), &out);
    }
    let _ = std::fs::remove_file(&path);
}
