//! Capture the raw `sock_diag` reply datagrams that `tests/fixtures/netlink/` holds.
//!
//! ```text
//! cargo build --example capture_sockdiag
//! sudo unshare -n target/debug/examples/capture_sockdiag capture tests/fixtures/netlink
//! sudo unshare -n target/debug/examples/capture_sockdiag measure 8000
//! ```
//!
//! It must run as root in a fresh network namespace (it refuses to run where any interface but
//! `lo` exists): it sets up
//! that namespace (loopback up, `net.core.somaxconn` = 4, a `tc` rule that sinks the SYN-ACKs
//! of port 7003 so that its handshakes stay in `SYN_RECV`), builds known socket states with
//! std sockets (and `python3` for the one state std cannot make, a bound, inactive TCP
//! socket), then sends each dump request from a netlink socket bound to a fixed port id and
//! writes every reply datagram, unmodified, to a file.
//!
//! File format: the datagrams of one dump in the order received, each preceded by its length
//! as a little-endian `u32`.
//!
//! `measure N` instead opens N loopback connections and times full dumps with receive buffers
//! of several sizes.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr as InetAddr, TcpListener, TcpStream};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage};
use netlink_packet_sock_diag::{
    AF_INET, IPPROTO_TCP, SockDiagMessage,
    inet::{ExtensionFlags, InetRequest, SocketId, StateFlags},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};
use sockscope::collect::netlink::{
    DiagSocket, Extensions, StateMask, UnixStates, inet_request, parse_datagram, parse_inet_msg,
    parse_unix_msg, unix_request,
};
use sockscope::model::{Family, TcpState};

/// The netlink port id the capture socket binds to; the fixture tests expect it.
const FIXTURE_PORT_ID: u32 = 424_242;
/// `MSG_TRUNC`: `recv` returns the datagram's real length.
const MSG_TRUNC: i32 = 0x20;
const AF_AX25: u8 = 3;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["capture", dir] => {
            ensure_private_netns()?;
            capture(Path::new(dir))
        }
        ["measure", n] => {
            ensure_private_netns()?;
            measure(n.parse()?)
        }
        _ => Err("usage: capture_sockdiag capture DIR | measure CONNECTIONS".into()),
    }
}

/// Refuse to touch the host's loopback, `tc` and sysctls: a fresh namespace has no interface
/// but `lo`.
fn ensure_private_netns() -> Result<()> {
    let dev = fs::read_to_string("/proc/self/net/dev")?;
    let interfaces: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|line| line.split(':').next())
        .map(str::trim)
        .collect();
    if interfaces != ["lo"] {
        return Err(format!(
            "run me in a fresh network namespace (unshare -n ...); this one has {interfaces:?}"
        )
        .into());
    }
    run("ip link set lo up")?;
    fs::write("/proc/sys/net/core/somaxconn", "4")?;
    Ok(())
}

/// Run a command line (split on spaces) and fail unless it succeeds.
fn run(command: &str) -> Result<()> {
    let mut words = command.split_whitespace();
    let program = words.next().ok_or("empty command")?;
    let status = Command::new(program).args(words).status()?;
    if !status.success() {
        return Err(format!("{command}: {status}").into());
    }
    Ok(())
}

/// Sockets (and the helper process) that must stay open until the dumps are taken.
type Keep = Vec<Box<dyn std::any::Any>>;

fn capture(dir: &Path) -> Result<()> {
    sink_synacks_of_port_7003()?;
    let mut keep = Keep::new();
    tcp4_sockets(&mut keep)?;
    let mut bound = bound_inactive_socket()?;
    tcp6_sockets(&mut keep)?;
    let unix_path = unix_sockets(&mut keep)?;
    std::thread::sleep(Duration::from_millis(300));

    let mut nl = Capture::open()?;
    let info = Extensions {
        tcp_info: true,
        ..Extensions::default()
    };
    let meminfo = Extensions {
        skmeminfo: true,
        ..Extensions::default()
    };
    let both = Extensions {
        tcp_info: true,
        skmeminfo: true,
    };
    let bare = Extensions::default();
    let listen = StateMask::only(&[TcpState::Listen]);
    let close_wait = StateMask::only(&[TcpState::CloseWait]);
    let established = StateMask::only(&[TcpState::Established]);
    let syn_sent = StateMask::only(&[TcpState::SynSent]);
    let all = StateMask::ALL;
    let inet = |seq, family, states, ext| (states, inet_request(seq, family, states, ext));
    let none = StateMask(0);
    let dumps = [
        (
            "tcp4_listen_skmeminfo",
            inet(101, Family::Inet, listen, meminfo),
        ),
        ("tcp4_all", inet(102, Family::Inet, all, bare)),
        (
            "tcp4_close_wait_info",
            inet(103, Family::Inet, close_wait, info),
        ),
        ("tcp6_all", inet(104, Family::Inet6, all, both)),
        ("unix_all", (none, unix_request(105, UnixStates::All))),
        (
            "error_enoent",
            (none, raw_inet_request(107, AF_AX25, IPPROTO_TCP)),
        ),
        ("done_enoent", (none, raw_inet_request(108, AF_INET, 200))),
        ("done_empty", inet(109, Family::Inet, syn_sent, bare)),
    ];
    fs::create_dir_all(dir)?;
    for (name, (states, request)) in &dumps {
        save(&mut nl, dir, name, request, *states, true)?;
    }

    // 7008, last so that it does not swell the dumps above: enough connections that one
    // dump spans several datagrams.
    let many = TcpListener::bind("127.0.0.1:7008")?;
    for _ in 0..300 {
        keep.push(Box::new(TcpStream::connect("127.0.0.1:7008")?));
        keep.push(Box::new(many.accept()?.0));
    }
    std::thread::sleep(Duration::from_millis(100));
    let request = inet_request(106, Family::Inet, established, bare);
    save(&mut nl, dir, "tcp4_many", &request, established, false)?;

    drop(bound.stdin.take());
    bound.wait()?;
    drop(keep);
    fs::remove_file(unix_path)?;
    Ok(())
}

/// SYN-ACKs from port 7003 go to a veth whose peer is down, where they vanish: the clients
/// never answer them and the listener keeps its request sockets in `SYN_RECV`.
fn sink_synacks_of_port_7003() -> Result<()> {
    run("ip link add synack-sink type veth peer name synack-peer")?;
    run("ip link set synack-sink up")?;
    run("tc qdisc add dev lo clsact")?;
    run("tc filter add dev lo egress protocol ip prio 1 u32 \
         match ip sport 7003 0xffff match u8 0x12 0xff at 33 \
         action mirred egress redirect dev synack-sink")
}

fn tcp4_sockets(keep: &mut Keep) -> Result<()> {
    // 7001: backlog 4 (somaxconn), five connections queued (backlog + 1, full), two more
    // whose SYNs the full listener drops.
    let full = TcpListener::bind("127.0.0.1:7001")?;
    for _ in 0..5 {
        keep.push(Box::new(TcpStream::connect("127.0.0.1:7001")?));
    }
    let addr: InetAddr = "127.0.0.1:7001".parse()?;
    for _ in 0..2 {
        let attempt = TcpStream::connect_timeout(&addr, Duration::from_millis(300));
        assert!(attempt.is_err(), "the full listener should drop the SYN");
    }
    keep.push(Box::new(full));

    // 7002: an accepting server and one connection of each fate.
    let server = TcpListener::bind("127.0.0.1:7002")?;
    let mut unread = TcpStream::connect("127.0.0.1:7002")?;
    keep.push(Box::new(server.accept()?.0));
    unread.write_all(b"hello")?;
    drop(unread); // server: CLOSE_WAIT with 5 bytes + FIN unread
    let read_eof = TcpStream::connect("127.0.0.1:7002")?;
    let (mut read_eof_srv, _) = server.accept()?;
    drop(read_eof);
    read_eof_srv.read_to_end(&mut Vec::new())?; // server: CLOSE_WAIT, EOF read, never closed
    keep.push(Box::new(read_eof_srv));
    let closed = TcpStream::connect("127.0.0.1:7002")?;
    let (mut closed_srv, _) = server.accept()?;
    drop(closed);
    closed_srv.read_to_end(&mut Vec::new())?;
    drop(closed_srv); // client: TIME_WAIT
    keep.push(Box::new(TcpStream::connect("127.0.0.1:7002")?));
    let (mut open_srv, _) = server.accept()?;
    open_srv.write_all(b"abc")?; // client: ESTABLISHED with 3 bytes unread
    keep.push(Box::new(open_srv));
    keep.push(Box::new(server));

    // 7003: two handshakes left in SYN_RECV.
    let half_open = TcpListener::bind("127.0.0.1:7003")?;
    let addr: InetAddr = "127.0.0.1:7003".parse()?;
    for _ in 0..2 {
        let attempt = TcpStream::connect_timeout(&addr, Duration::from_millis(200));
        assert!(attempt.is_err(), "the SYN-ACK should have been sunk");
    }
    keep.push(Box::new(half_open));
    Ok(())
}

/// 7009: a TCP socket bound, never listening or connected, held by a `python3` child until
/// its stdin closes. std has no `bind()` without `listen()`.
fn bound_inactive_socket() -> Result<Child> {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import socket, sys\n\
             s = socket.socket()\n\
             s.bind(('127.0.0.1', 7009))\n\
             print('bound', flush=True)\n\
             sys.stdin.read()",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("python3 stdout")?).read_line(&mut line)?;
    assert_eq!(line.trim(), "bound");
    Ok(child)
}

/// IPv6: a `::1` connection, and a dual-stack `[::]` listener with an IPv4 client.
fn tcp6_sockets(keep: &mut Keep) -> Result<()> {
    let v6 = TcpListener::bind("[::1]:7006")?;
    keep.push(Box::new(TcpStream::connect("[::1]:7006")?));
    keep.push(Box::new(v6.accept()?.0));
    keep.push(Box::new(v6));
    let dual = TcpListener::bind("[::]:7007")?;
    keep.push(Box::new(TcpStream::connect("127.0.0.1:7007")?));
    keep.push(Box::new(dual.accept()?.0));
    keep.push(Box::new(dual));
    Ok(())
}

/// Unix: a path listener with three pending connections, an abstract listener (with a NUL
/// inside its name) and one accepted connection, a datagram pair with one datagram queued.
/// Returns the listener's path.
fn unix_sockets(keep: &mut Keep) -> Result<PathBuf> {
    let unix_dir = std::env::temp_dir().join("sockscope-fixture");
    fs::create_dir_all(&unix_dir)?;
    let path = unix_dir.join("listen.sock");
    let _ = fs::remove_file(&path);
    keep.push(Box::new(UnixListener::bind(&path)?));
    for _ in 0..3 {
        keep.push(Box::new(UnixStream::connect(&path)?));
    }
    let abstract_addr = UnixAddr::from_abstract_name(b"sockscope\0fixture")?;
    let abstract_listener = UnixListener::bind_addr(&abstract_addr)?;
    keep.push(Box::new(UnixStream::connect_addr(&abstract_addr)?));
    keep.push(Box::new(abstract_listener.accept()?.0));
    keep.push(Box::new(abstract_listener));
    let (dgram_a, dgram_b) = UnixDatagram::pair()?;
    dgram_a.send(b"ping")?;
    keep.push(Box::new(dgram_a));
    keep.push(Box::new(dgram_b));
    Ok(path)
}

/// Run one dump, write its datagrams to `DIR/NAME.bin`, and print what the library makes of
/// them (every socket when `verbose`).
fn save(
    nl: &mut Capture,
    dir: &Path,
    name: &str,
    request: &[u8],
    states: StateMask,
    verbose: bool,
) -> Result<()> {
    let datagrams = nl.dump(request, 64 * 1024)?;
    let mut file = Vec::new();
    for datagram in &datagrams {
        file.extend_from_slice(&u32::try_from(datagram.len())?.to_le_bytes());
        file.extend_from_slice(datagram);
    }
    fs::write(dir.join(format!("{name}.bin")), &file)?;
    let sizes: Vec<_> = datagrams.iter().map(Vec::len).collect();
    println!("{name}.bin: datagrams {sizes:?}");

    let seq = u32::from_ne_bytes([request[8], request[9], request[10], request[11]]);
    let unix = request[16] == 1;
    let mut sockets = 0;
    for datagram in &datagrams {
        let result = parse_datagram(datagram, seq, FIXTURE_PORT_ID, |payload| {
            sockets += 1;
            if verbose && unix {
                println!("  {:?}", parse_unix_msg(payload)?);
            } else if verbose {
                let mut sock = parse_inet_msg(payload, states)?;
                let info = sock.tcp_info.take().map(|i| (i.last_ack_recv, i.rtt));
                println!("  {sock:?} info (last_ack_recv, rtt): {info:?}");
            }
            Ok(())
        });
        if let Err(e) = result {
            println!("  error: {e}");
        }
    }
    println!("  {sockets} sockets");
    Ok(())
}

/// An inet request with any family and protocol byte, to draw the kernel's error replies.
fn raw_inet_request(seq: u32, family: u8, protocol: u8) -> Vec<u8> {
    let request = InetRequest {
        family,
        protocol,
        extensions: ExtensionFlags::empty(),
        states: StateFlags::from_bits_retain(StateMask::ALL.0),
        socket_id: SocketId::new_v4(),
    };
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let mut message = NetlinkMessage::new(header, SockDiagMessage::InetRequest(request).into());
    message.finalize();
    let mut buf = vec![0; message.buffer_len()];
    message.serialize(&mut buf);
    buf
}

struct Capture {
    socket: Socket,
}

impl Capture {
    fn open() -> Result<Capture> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
        socket.bind(&SocketAddr::new(FIXTURE_PORT_ID, 0))?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Capture { socket })
    }

    /// Send `request` and return every reply datagram, up to `NLMSG_DONE` or an error.
    fn dump(&mut self, request: &[u8], buf_len: usize) -> Result<Vec<Vec<u8>>> {
        self.socket.send(request, 0)?;
        let seq = u32::from_ne_bytes([request[8], request[9], request[10], request[11]]);
        let mut buf = vec![0u8; buf_len];
        let mut out = Vec::new();
        loop {
            let len = self.socket.recv(&mut &mut buf[..], MSG_TRUNC)?;
            let datagram = buf.get(..len).ok_or("datagram larger than the buffer")?;
            out.push(datagram.to_vec());
            match parse_datagram(datagram, seq, FIXTURE_PORT_ID, |_| Ok(())) {
                Ok(progress) if !progress.done => {}
                _ => return Ok(out),
            }
        }
    }
}

/// Time full dumps of `n` loopback connections with several receive buffer sizes.
fn measure(n: usize) -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:7010")?;
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let client = TcpStream::connect("127.0.0.1:7010")?;
        conns.push((client, listener.accept()?.0));
    }
    let mut seq = 1000;
    for ext in [
        Extensions::default(),
        Extensions {
            tcp_info: true,
            skmeminfo: true,
        },
    ] {
        for buf_len in [8 << 10, 16 << 10, 32 << 10, 64 << 10, 256 << 10] {
            // A fresh socket each time: the kernel remembers the largest buffer a socket ever
            // read with and keeps building datagrams that large.
            let mut nl = Capture::open()?;
            let mut times = Vec::new();
            let mut sizes = Vec::new();
            for _ in 0..7 {
                seq += 1;
                let request = inet_request(seq, Family::Inet, StateMask::ALL, ext);
                let start = Instant::now();
                let datagrams = nl.dump(&request, buf_len)?;
                times.push(start.elapsed());
                sizes = datagrams.iter().map(Vec::len).collect();
            }
            times.sort();
            println!(
                "sockets {} ext {ext:?} buffer {:>6}: {:>4} datagrams, largest {:>6} B, median {:?}",
                2 * n + 1,
                buf_len,
                sizes.len(),
                sizes.iter().max().unwrap_or(&0),
                times[times.len() / 2],
            );
        }
    }
    let mut diag = DiagSocket::new()?;
    for ext in [
        Extensions::default(),
        Extensions {
            tcp_info: true,
            skmeminfo: true,
        },
    ] {
        let mut times = Vec::new();
        let mut count = 0;
        for _ in 0..7 {
            count = 0;
            let start = Instant::now();
            diag.dump_inet(Family::Inet, StateMask::ALL, ext, |_| count += 1)?;
            times.push(start.elapsed());
        }
        times.sort();
        println!(
            "DiagSocket::dump_inet ext {ext:?}: {count} sockets decoded, median {:?}",
            times[times.len() / 2]
        );
    }
    drop(conns);
    Ok(())
}
