//! The test's side of the exporter: `sockscope serve` started in a namespace, an HTTP client
//! that reaches into that namespace, and a reader for the exposition format.
//!
//! The client connects from a short-lived thread that has joined the server's network
//! namespace (setns needs root over it: without root these tests cannot run); the socket stays in
//! that namespace after the thread is gone, so reading and writing happen anywhere.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sockscope::testing::skip_or_fail;

use crate::util::netns::Netns;
use crate::util::{on_path, sockscope_bin};

/// Whether `tool` (promtool or prometheus) is on PATH; where it is not, the test fails with
/// the reason (or, with `SOCKSCOPE_ALLOW_SKIP=1`, this says why and returns false).
pub fn tool_or_skip(test: &str, tool: &str) -> bool {
    if on_path(tool) {
        return true;
    }
    skip_or_fail(
        test,
        &format!("`{tool}` is not installed (Debian package prometheus)"),
    );
    false
}

/// A running `sockscope serve`, stopped (by its pid) when dropped.
pub struct Serve {
    child: Child,
    pub addr: SocketAddr,
    /// `/proc/PID/ns/net` of the server: where clients connect from.
    netns: PathBuf,
}

impl Serve {
    /// Start `sockscope serve --listen 127.0.0.1:0 ARGS` in `ns` and wait for it to listen;
    /// `None` (after printing why) when this process cannot join the namespace.
    pub fn start(ns: &Netns, test: &str, args: &[&str]) -> Option<Serve> {
        let mut child = ns
            .command(sockscope_bin())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning sockscope serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr).lines();
            let _ = tx.send(lines.next().and_then(Result::ok).unwrap_or_default());
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let addr = line
            .strip_prefix("sockscope: serving metrics on http://")
            .and_then(|rest| rest.strip_suffix("/metrics"))
            .and_then(|a| a.parse().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let status = child.wait().expect("reaping serve");
            panic!("sockscope serve did not start ({status}): {line:?}");
        };
        // nsenter execs the program, so the child's pid is the server's.
        let comm =
            std::fs::read_to_string(format!("/proc/{}/comm", child.id())).unwrap_or_default();
        assert_eq!(comm.trim(), "sockscope", "the child is the server itself");
        let serve = Serve {
            netns: PathBuf::from(format!("/proc/{}/ns/net", child.id())),
            child,
            addr,
        };
        match serve.connect() {
            Ok(probe) => {
                drop(probe);
                // The probe's end in the server goes through CLOSE_WAIT until the server
                // reads its end of file and closes; a scrape collects on demand, so until it
                // is gone the namespace's socket counts hold one socket no test made.
                let sport = format!(":{}", addr.port());
                crate::util::poll(
                    "the probe connection's end in the server to be gone",
                    Duration::from_secs(10),
                    || {
                        let left = ns.ss(&["-tanH", "state", "connected", "sport", "=", &sport]);
                        left.trim().is_empty().then_some(())
                    },
                );
                Some(serve)
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                skip_or_fail(
                    test,
                    &format!("cannot join the namespace to reach the server: {e}"),
                );
                None
            }
            Err(e) => panic!("{test}: cannot connect to sockscope serve at {addr}: {e}"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A connection to the server.
    pub fn connect(&self) -> io::Result<TcpStream> {
        connect_in(&self.netns, self.addr)
    }

    /// A connection to `addr` in the server's namespace (another server there).
    pub fn connect_to(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        connect_in(&self.netns, addr)
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path)
    }

    pub fn request(&self, method: &str, path: &str) -> Reply {
        let stream = self.connect().expect("connecting to serve");
        exchange(stream, method, path).expect("an HTTP answer")
    }

    /// Resident memory of the server, KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the server's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse().ok())
            .expect("VmRSS in kB")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connect_in(netns: &PathBuf, addr: SocketAddr) -> io::Result<TcpStream> {
    let ns = File::open(netns)?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                rustix::thread::move_into_link_name_space(
                    ns.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )?;
                TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            })
            .join()
            .expect("the connecting thread")
    })
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Send one request and read the answer up to the server's close.
pub fn exchange(mut stream: TcpStream, method: &str, path: &str) -> io::Result<Reply> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: sockscope\r\nConnection: close\r\n\r\n"
    )?;
    read_reply(&mut stream)
}

pub fn read_reply(stream: &mut TcpStream) -> io::Result<Reply> {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8(raw).map_err(|e| io::Error::other(e.to_string()))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::other(format!("no blank line after the head: {text:?}")))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("HTTP/1.1 "))
        .and_then(|l| l.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::other(format!("not a status line: {head:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("Transfer-Encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_owned()
    };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// A `Transfer-Encoding: chunked` body (Prometheus sends larger answers so).
fn dechunk(mut rest: &str) -> io::Result<String> {
    let bad = || io::Error::other("a malformed chunked body");
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").ok_or_else(bad)?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad())?;
        if size == 0 {
            return Ok(body);
        }
        body.push_str(after.get(..size).ok_or_else(bad)?);
        rest = after.get(size + 2..).ok_or_else(bad)?;
    }
}

/// One sample of an exposition, its value as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: String,
}

/// A sample's value as a number.
pub fn number(value: &str) -> f64 {
    match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("not a number: {v:?}")),
    }
}

/// The test's own reader of the text format (labels unescaped), independent of the
/// exporter's writer.
pub fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').expect("a value after the series");
        number(value);
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').expect("}"))),
        };
        out.push(Sample {
            name: name.to_owned(),
            labels,
            value: value.to_owned(),
        });
    }
    out
}

fn parse_labels(mut rest: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").expect("name=\"");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("a closing quote") {
                (_, '\\') => match chars.next().expect("an escaped char").1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.insert(name.to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

/// The value of the one sample of `name` whose labels include `labels`.
pub fn value_of<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a str> {
    let matching: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert!(
        matching.len() <= 1,
        "{name} {labels:?} matches several series: {matching:?}"
    );
    matching.first().map(|s| s.value.as_str())
}

/// Poll `check` every 200 ms until it gives a value or `limit` passes.
pub fn eventually<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `query` percent-encoded for a URL.
pub fn url_encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
