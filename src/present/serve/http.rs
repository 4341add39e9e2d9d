//! A small HTTP/1.1 server on `std::net`: enough for an exporter with three routes, and no
//! more.
//!
//! One request per connection (`Connection: close`), one thread per connection up to
//! [`Limits::max_connections`], a cap on the request head and a deadline for reading it and
//! for writing the answer: a slow or malformed client costs one thread for a few seconds and
//! never holds up another. Request bodies are never read; headers are read and ignored. What
//! to answer is the caller's [`Handler`]; this module knows nothing about metrics.
//!
//! Why by hand rather than with an HTTP crate: the exporter answers `GET` (and `HEAD`) on three
//! paths and nothing else, and the README promises hard limits to whoever runs it — at most 256
//! connections with a 503 for one more, 8 KiB of request head, 5 s for the whole head (one deadline
//! across all reads, so a client trickling a byte at a time is cut off too), 5 s to send the
//! answer, request bodies never read. Here, on blocking `std::net` with one thread per connection,
//! each limit is a few lines of code, and the tests below drive real sockets into the head cap, the
//! head deadline and the connection cap. hyper would bring an async runtime that nothing else in
//! sockscope needs (collection is synchronous), and any server crate brings its own defaults for
//! those limits, to be found, configured and re-checked on every upgrade, and more code listening
//! on a port of a process that usually runs as root. So it stays small: routes are the
//! [`Handler`]'s business, and what an exporter does not need (keep-alive, chunked bodies, TLS) is
//! left out.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How much a client may ask of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time to receive the whole request head, from the moment the connection is accepted.
    pub read_timeout: Duration,
    /// Time to send the whole answer.
    pub write_timeout: Duration,
    /// Longest request head (request line and headers).
    pub max_head: usize,
    /// Connections served at once; one more is answered 503 at once and closed.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            read_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
            max_head: 8 * 1024,
            max_connections: 256,
        }
    }
}

/// A request as far as the routes care: the method and the path without its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
}

impl Request {
    /// `HEAD` is answered like `GET`, without the body.
    pub fn is_get(&self) -> bool {
        self.method == "GET" || self.method == "HEAD"
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    /// Sent as `Allow:` (with 405).
    pub allow: Option<&'static str>,
    pub body: Body,
}

/// A body that is either built for this answer or shared by every scrape of one collection.
#[derive(Debug, Clone)]
pub enum Body {
    Static(&'static str),
    Owned(String),
    Shared(Arc<str>),
}

impl Body {
    fn bytes(&self) -> &[u8] {
        match self {
            Body::Static(s) => s.as_bytes(),
            Body::Owned(s) => s.as_bytes(),
            Body::Shared(s) => s.as_bytes(),
        }
    }
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            allow: None,
            body: Body::Owned(body.into()),
        }
    }
}

/// What the server calls for each request it could read.
pub type Handler = dyn Fn(&Request) -> Response + Send + Sync;

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Bind `addr`, saying in one sentence what to do when that fails.
pub fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr).map_err(|error| BindError { addr, error })
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {}", bind_reason(.error))]
pub struct BindError {
    addr: SocketAddr,
    /// Not a `source`: the sentence already says it, and errors print as one line.
    error: io::Error,
}

fn bind_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::AddrInUse => {
            "the port is taken (another exporter?); choose another with --listen".to_owned()
        }
        io::ErrorKind::AddrNotAvailable => {
            "no interface has that address; choose another with --listen".to_owned()
        }
        io::ErrorKind::PermissionDenied => {
            "permission denied (a port below 1024 needs root or CAP_NET_BIND_SERVICE)".to_owned()
        }
        _ => e.to_string(),
    }
}

/// Serve connections from `listener` until accepting fails for good.
pub fn run(listener: &TcpListener, handler: &Arc<Handler>, limits: Limits) -> io::Result<()> {
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if transient(&e) => {
                // Out of descriptors or memory: give the open connections time to finish
                // instead of spinning on accept().
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => return Err(e),
        };
        if active.fetch_add(1, Ordering::SeqCst) >= limits.max_connections {
            active.fetch_sub(1, Ordering::SeqCst);
            refuse(stream);
            continue;
        }
        let slot = Slot(Arc::clone(&active));
        let handler = Arc::clone(handler);
        let spawned = std::thread::Builder::new()
            .name("sockscope-http".to_owned())
            .spawn(move || {
                let _slot = slot;
                serve_connection(stream, &*handler, limits);
            });
        // A failed spawn drops the closure, its slot and the stream: the client sees a close.
        drop(spawned);
    }
}

/// One connection being served; dropping it frees its place.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::OutOfMemory
    ) || matches!(
        e.raw_os_error(),
        Some(code) if [
            rustix::io::Errno::MFILE.raw_os_error(),
            rustix::io::Errno::NFILE.raw_os_error(),
            rustix::io::Errno::NOBUFS.raw_os_error(),
            rustix::io::Errno::NOMEM.raw_os_error(),
            rustix::io::Errno::PROTO.raw_os_error(),
        ].contains(&code)
    )
}

/// Too many connections: say so without reading anything. The answer fits any socket buffer,
/// so the write does not wait for the client.
fn refuse(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let response = Response::text(503, "too many connections; try again\n");
    let _ = write_response(
        &mut stream,
        &response,
        false,
        Instant::now() + Duration::from_millis(100),
    );
    let _ = stream.shutdown(Shutdown::Both);
}

fn serve_connection(mut stream: TcpStream, handler: &Handler, limits: Limits) {
    let accepted = Instant::now();
    let _ = stream.set_nodelay(true);
    let (response, head_only) =
        match read_head(&mut stream, accepted + limits.read_timeout, limits.max_head) {
            Ok(head) => match parse_head(&head) {
                Ok(request) => (handler(&request), request.method == "HEAD"),
                Err(bad) => (bad, false),
            },
            Err(HeadError::TooLarge) => (Response::text(431, "request head too large\n"), false),
            Err(HeadError::Timeout) => {
                (Response::text(408, "request not received in time\n"), false)
            }
            Err(HeadError::Closed) => return,
        };
    let deadline = Instant::now() + limits.write_timeout;
    if write_response(&mut stream, &response, head_only, deadline).is_ok() {
        let _ = stream.flush();
        let _ = stream.shutdown(Shutdown::Write);
        linger(&mut stream);
    }
}

/// Read and drop what the client still sends (a request body, a pipelined request) for a
/// moment before closing: closing with unread data makes the kernel send a reset, and some
/// clients' stacks drop an answer they have not read yet when a reset arrives.
fn linger(stream: &mut TcpStream) {
    const LINGER: Duration = Duration::from_millis(500);
    const MAX: usize = 64 * 1024;
    let until = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < MAX {
        let Some(left) = until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            return;
        };
        if stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

#[derive(Debug)]
enum HeadError {
    TooLarge,
    Timeout,
    /// The client went away or the connection broke.
    Closed,
}

/// Read up to the blank line that ends the head, by `deadline`, at most `max` bytes.
fn read_head(stream: &mut TcpStream, deadline: Instant, max: usize) -> Result<Vec<u8>, HeadError> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = head_end(&head) {
            head.truncate(end);
            return Ok(head);
        }
        if head.len() >= max {
            return Err(HeadError::TooLarge);
        }
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(HeadError::Timeout)?;
        stream
            .set_read_timeout(Some(left))
            .map_err(|_| HeadError::Closed)?;
        let want = chunk.len().min(max - head.len());
        match stream.read(&mut chunk[..want]) {
            Ok(0) => return Err(HeadError::Closed),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(HeadError::Timeout);
            }
            Err(_) => return Err(HeadError::Closed),
        }
    }
}

/// Where the head ends (before the blank line); bare `\n` line ends are accepted too.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The request line of a head; a response (400, 505) when it is not one we can answer.
fn parse_head(head: &[u8]) -> Result<Request, Response> {
    let bad = |why: &str| Response::text(400, format!("bad request: {why}\n"));
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let line = std::str::from_utf8(&head[..line_end])
        .map_err(|_| bad("the request line is not UTF-8"))?
        .trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected METHOD TARGET HTTP/1.1"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad("the method is not a token"));
    }
    if !version.starts_with("HTTP/") {
        return Err(bad("expected an HTTP version"));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(Response::text(
            505,
            "only HTTP/1.0 and HTTP/1.1 are served\n",
        ));
    }
    if !target.starts_with('/') {
        return Err(bad("the target must be a path"));
    }
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    Ok(Request {
        method: method.to_owned(),
        path: path.to_owned(),
    })
}

fn write_response(
    stream: &mut TcpStream,
    response: &Response,
    head_only: bool,
    deadline: Instant,
) -> io::Result<()> {
    let body = response.body.bytes();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\
         Cache-Control: no-store\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        body.len()
    );
    if let Some(allow) = response.allow {
        head.push_str("Allow: ");
        head.push_str(allow);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    write_all_by(stream, head.as_bytes(), deadline)?;
    if !head_only {
        write_all_by(stream, body, deadline)?;
    }
    Ok(())
}

/// `write_all`, but giving up at `deadline` however the client trickles its window open.
fn write_all_by(stream: &mut TcpStream, mut buf: &[u8], deadline: Instant) -> io::Result<()> {
    while !buf.is_empty() {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))?;
        stream.set_write_timeout(Some(left))?;
        match stream.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};

    fn parse(head: &str) -> Result<Request, u16> {
        parse_head(head.as_bytes()).map_err(|r| r.status)
    }

    #[test]
    fn request_lines() {
        assert_eq!(
            parse("GET /metrics?x=1 HTTP/1.1\r\nHost: a"),
            Ok(Request {
                method: "GET".into(),
                path: "/metrics".into()
            })
        );
        assert_eq!(parse("HEAD / HTTP/1.0").map(|r| r.is_get()), Ok(true));
        assert_eq!(parse("POST / HTTP/1.1").map(|r| r.is_get()), Ok(false));
        assert_eq!(parse("GET /"), Err(400));
        assert_eq!(parse("GET  / HTTP/1.1"), Err(400));
        assert_eq!(parse("get / HTTP/1.1"), Err(400));
        assert_eq!(parse("GET metrics HTTP/1.1"), Err(400));
        assert_eq!(parse("GET / HTTP/2.0"), Err(505));
        assert_eq!(parse("GET / SPDY/3"), Err(400));
        assert_eq!(
            parse_head(b"GET /\xff HTTP/1.1").map_err(|r| r.status),
            Err(400)
        );
    }

    #[test]
    fn heads_end_at_the_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"), Some(20));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(14));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }

    /// A server on an ephemeral loopback port, answering every path with its own name.
    fn server(limits: Limits) -> SocketAddr {
        let listener = bind("127.0.0.1:0".parse().expect("an address")).expect("bind");
        let addr = listener.local_addr().expect("an address");
        let handler: Arc<Handler> = Arc::new(|r: &Request| {
            if r.path == "/slow" {
                std::thread::sleep(Duration::from_millis(300));
            }
            Response::text(200, format!("{} {}\n", r.method, r.path))
        });
        std::thread::spawn(move || run(&listener, &handler, limits));
        addr
    }

    fn exchange(addr: SocketAddr, request: &[u8]) -> (String, String) {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream.write_all(request).expect("send");
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).expect("status line");
        let mut rest = String::new();
        reader.read_to_string(&mut rest).expect("the rest");
        (status.trim_end().to_owned(), rest)
    }

    #[test]
    fn answers_and_closes() {
        let addr = server(Limits::default());
        let (status, rest) = exchange(addr, b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(rest.contains("Content-Length: 7\r\n"), "{rest}");
        assert!(rest.contains("Connection: close\r\n"), "{rest}");
        assert!(rest.ends_with("\r\n\r\nGET /x\n"), "{rest}");
        let (status, rest) = exchange(addr, b"HEAD /x HTTP/1.1\r\n\r\n");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(
            rest.contains("Content-Length: 8\r\n") && rest.ends_with("\r\n\r\n"),
            "HEAD: the length of the body, not the body: {rest}"
        );
        let (status, _) = exchange(addr, b"BREW /pot HTCPCP/1.0\r\n\r\n");
        assert_eq!(status, "HTTP/1.1 400 Bad Request");
    }

    #[test]
    fn a_request_with_an_unread_body_gets_its_answer() {
        let addr = server(Limits::default());
        let mut request = b"POST /x HTTP/1.1\r\nContent-Length: 200000\r\n\r\n".to_vec();
        request.extend(std::iter::repeat_n(b'x', 200_000));
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        // The server answers after the head; the body is still being sent meanwhile.
        let writer = {
            let mut stream = stream.try_clone().expect("clone");
            std::thread::spawn(move || {
                let _ = stream.write_all(&request);
            })
        };
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .expect("the answer, not a reset");
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("POST /x\n"), "{answer}");
        writer.join().expect("the writer");
    }

    #[test]
    fn an_oversized_head_is_refused() {
        let addr = server(Limits {
            max_head: 64,
            ..Limits::default()
        });
        let mut request = b"GET / HTTP/1.1\r\nX: ".to_vec();
        request.extend(std::iter::repeat_n(b'a', 100));
        request.extend(b"\r\n\r\n");
        let (status, _) = exchange(addr, &request);
        assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
    }

    /// A request head that never ends, sent one byte at a time, each `gap` after the last,
    /// until the server answers or `most` bytes are sent: the answer, and how many bytes
    /// went before it.
    fn trickle(addr: SocketAddr, gap: Duration, most: usize) -> (String, usize) {
        let mut stream = TcpStream::connect(addr).expect("connect");
        let head = b"GET / HTTP/1.1\r\nX-Trickle: "
            .iter()
            .chain(std::iter::repeat(&b'a'));
        let mut answer = Vec::new();
        let mut sent = 0;
        // Waiting for an answer for `gap` is what spaces the bytes.
        stream.set_read_timeout(Some(gap)).expect("timeout");
        for byte in head.take(most) {
            if stream.write_all(&[*byte]).is_err() {
                break;
            }
            sent += 1;
            let mut chunk = [0u8; 1024];
            match stream.read(&mut chunk) {
                Ok(n) => {
                    answer.extend_from_slice(&chunk[..n]);
                    break;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("the trickling client's connection broke: {e}"),
            }
        }
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let _ = stream.read_to_end(&mut answer);
        (String::from_utf8_lossy(&answer).into_owned(), sent)
    }

    #[test]
    fn a_trickling_client_times_out_while_others_are_served() {
        // Half a head, then nothing: another client is answered meanwhile. The deadline lies
        // far beyond the test, so this holds however slowly the test runs.
        let patient = server(Limits {
            read_timeout: Duration::from_secs(3600),
            ..Limits::default()
        });
        let mut waiting = TcpStream::connect(patient).expect("connect");
        waiting
            .write_all(b"GET / HTTP/1.1\r\n")
            .expect("half a head");
        let (status, _) = exchange(patient, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(status, "HTTP/1.1 200 OK");
        waiting.set_nonblocking(true).expect("nonblocking");
        assert!(
            matches!(waiting.peek(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock),
            "the client with half a head is still waiting when the other is answered"
        );

        // A byte every 100 ms keeps every read well within the 500 ms, but not the head: the
        // answer comes while the client is still sending. Were the deadline per read, it
        // would come only after the client stopped.
        let strict = server(Limits {
            read_timeout: Duration::from_millis(500),
            ..Limits::default()
        });
        let most = 200;
        let (answer, sent) = trickle(strict, Duration::from_millis(100), most);
        assert!(
            answer.starts_with("HTTP/1.1 408 Request Timeout"),
            "{answer}"
        );
        assert!(
            sent < most,
            "the deadline covers the whole head, not each read: answered after all {sent} bytes"
        );
    }

    #[test]
    fn past_the_connection_cap_clients_are_told_to_come_back() {
        let addr = server(Limits {
            max_connections: 1,
            read_timeout: Duration::from_secs(2),
            ..Limits::default()
        });
        let idle = TcpStream::connect(addr).expect("connect");
        std::thread::sleep(Duration::from_millis(100));
        let (status, _) = exchange(addr, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
        drop(idle);
        // The idle connection's place is freed once the server sees it closed.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (status, _) = exchange(addr, b"GET / HTTP/1.1\r\n\r\n");
            if status == "HTTP/1.1 200 OK" {
                break;
            }
            assert!(Instant::now() < deadline, "the place was never freed");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn a_taken_port_is_one_clear_sentence() {
        let first = bind("127.0.0.1:0".parse().expect("an address")).expect("bind");
        let addr = first.local_addr().expect("an address");
        let err = bind(addr).expect_err("the port is taken").to_string();
        assert_eq!(
            err,
            format!(
                "cannot listen on {addr}: the port is taken (another exporter?); choose another \
                 with --listen"
            )
        );
    }
}
