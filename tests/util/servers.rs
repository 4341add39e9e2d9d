//! Real servers from Debian's packages, run inside a test's own network namespace: nginx
//! (package nginx-light: a master and its workers, a shared or a `reuseport` listener),
//! redis-server (with redis-tools' `redis-cli` and `redis-benchmark`), HAProxy, fcgiwrap
//! behind nginx, and `curl` as a client.
//!
//! Each server runs in the foreground from a config written into a scratch directory of its
//! own (pid files, logs and temporary files go there too): nothing under /etc is read or
//! written, no system service is involved, and every port is a loopback port of the test's
//! namespace. A [`Tree`] stops what it started on drop, also when the test fails: it
//! continues every process of the tree (a test may have stopped some with SIGSTOP), asks the
//! root to stop, and kills what is left by the pids it found under that root. Nothing is ever
//! killed by name. `scripts/test` installs the packages; where one is missing the test fails
//! with the reason (or skips, with `SOCKSCOPE_ALLOW_SKIP=1`).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};
use sockscope::testing::skip_or_fail;

use super::netns::Netns;
use super::oracle::parse_tcp_listeners;
use super::scratch::{Scratch, as_str};
use super::{on_path, poll};

/// How long a server may take to listen.
const READY: Duration = Duration::from_secs(30);

/// Whether every tool in `tools` is installed; otherwise `test` fails with the reason (or,
/// with `SOCKSCOPE_ALLOW_SKIP=1`, says why and the caller returns).
pub fn tools_or_skip(test: &str, tools: &[&str]) -> bool {
    // Debian installs daemons into /usr/sbin, which a non-root PATH may lack.
    let found = |tool: &str| {
        on_path(tool)
            || ["/usr/sbin", "/sbin"]
                .iter()
                .any(|dir| PathBuf::from(dir).join(tool).is_file())
    };
    let missing: Vec<&str> = tools.iter().copied().filter(|tool| !found(tool)).collect();
    if missing.is_empty() {
        return true;
    }
    skip_or_fail(
        test,
        &format!(
            "{} not installed (scripts/test installs them)",
            missing.join(", ")
        ),
    );
    false
}

/// A program and everything it forks, started inside a namespace; stopped on drop.
pub struct Tree {
    what: String,
    child: Child,
    /// Where its output goes, to show when it misbehaves.
    log: PathBuf,
    /// Holds the config and the log; removed on drop, after the processes are gone.
    dir: Scratch,
}

impl Tree {
    /// Start `program args` inside `ns`, its output into a log in a scratch directory named
    /// after `test` and `what`. `setup` writes the config into that directory first.
    fn start(
        ns: &Netns,
        test: &str,
        what: &str,
        program: &str,
        args: impl FnOnce(&Scratch) -> Vec<String>,
    ) -> Tree {
        let dir = Scratch::new(&format!("{test}-{what}"));
        let args = args(&dir);
        let log = dir.path(&format!("{what}.out"));
        let out = std::fs::File::create(&log).expect("creating the server's log");
        let err = out.try_clone().expect("cloning the log's descriptor");
        let child = ns
            .command(program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program}: {e}"));
        Tree {
            what: what.to_owned(),
            child,
            log,
            dir,
        }
    }

    /// The root process's pid (nsenter execs the program, so it is the program's own).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its direct children (nginx's workers, fcgiwrap's), sorted.
    pub fn children(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = processes()
            .into_iter()
            .filter(|&(_, parent)| parent == self.pid())
            .map(|(pid, _)| pid)
            .collect();
        pids.sort_unstable();
        pids
    }

    /// What it has written so far, for a failing assertion's message.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A path inside its scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path(name)
    }

    /// Panics with its output if it has exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status}):\n{}", self.what, self.output());
        }
    }

    /// Wait until `ns` holds `count` TCP listeners on `local` (and the root still runs).
    fn wait_listening(&mut self, ns: &Netns, local: &str, count: usize) {
        let what = format!("{} to listen on {local} ({count} sockets)", self.what);
        let deadline = Instant::now() + READY;
        loop {
            self.assert_running();
            let listeners = parse_tcp_listeners(&ns.ss(&["-tlnH"])).expect("ss -tln parses");
            if listeners.iter().filter(|l| l.local == local).count() >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "gave up waiting for {what}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until the root has `count` children.
    fn wait_children(&mut self, count: usize) -> Vec<u32> {
        let what = format!("{} to have {count} children", self.what);
        poll(&what, READY, || {
            self.assert_running();
            let children = self.children();
            (children.len() >= count).then_some(children)
        })
    }

    /// The root and its descendants, parents before children.
    fn tree(&self) -> Vec<u32> {
        let all = processes();
        let mut tree = vec![self.pid()];
        let mut i = 0;
        while i < tree.len() {
            let parent = tree[i];
            tree.extend(
                all.iter()
                    .filter(|&&(_, p)| p == parent)
                    .map(|&(pid, _)| pid),
            );
            i += 1;
        }
        tree
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let tree = self.tree();
        // A stopped process would not act on SIGTERM (nginx's master waits for its workers).
        for &pid in &tree {
            signal(pid, Signal::CONT);
        }
        signal(self.pid(), Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) | Err(_) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whatever is left of the tree found above (a worker whose master died first).
        for &pid in tree.iter().rev() {
            signal(pid, Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Send `signal` to `pid`, one of the test's own processes; one that has exited is no error.
pub fn signal(pid: u32, signal: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Stop `pid` (SIGSTOP) and wait until the kernel says it is stopped.
pub fn stop(pid: u32) {
    signal(pid, Signal::STOP);
    poll(&format!("pid {pid} to stop"), READY, || {
        (state_of(pid) == Some('T')).then_some(())
    });
}

/// The scheduler state letter of `pid` (`R`, `S`, `T`, ...), from /proc/PID/stat.
pub fn state_of(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Every process as (pid, parent pid), from /proc/*/stat.
fn processes() -> Vec<(u32, u32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let rest = stat.rsplit_once(')')?.1;
            let parent = rest.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, parent))
        })
        .collect()
}

/// One `listen` line of an nginx `server` block.
#[derive(Debug, Clone)]
pub struct Listen {
    pub local: String,
    pub backlog: u32,
    /// `reuseport`: one socket per worker, a group the kernel spreads connections over.
    pub reuseport: bool,
    /// The body of its `location /` block; `None` serves a small static page.
    pub location: Option<String>,
}

impl Listen {
    /// A static page on `local`.
    pub fn page(local: &str, backlog: u32) -> Listen {
        Listen {
            local: local.to_owned(),
            backlog,
            reuseport: false,
            location: None,
        }
    }
}

/// nginx: a master and `workers` workers, serving a small page on each of `listens`; `extra`
/// is added to the `http` block (a FastCGI server, say).
pub struct Nginx {
    pub tree: Tree,
    pub workers: Vec<u32>,
}

impl Nginx {
    pub fn start(ns: &Netns, test: &str, workers: usize, listens: &[Listen], extra: &str) -> Nginx {
        let mut tree = Tree::start(ns, test, "nginx", "nginx", |dir| {
            let root = dir.path("");
            let root = as_str(&root).trim_end_matches('/');
            std::fs::create_dir_all(dir.path("html")).expect("creating nginx's html directory");
            dir.write("html/index.html", "sockscope test page\n");
            let mut servers = String::new();
            for listen in listens {
                let reuseport = if listen.reuseport { " reuseport" } else { "" };
                let location = listen.location.as_deref().unwrap_or("");
                writeln!(
                    servers,
                    "  server {{\n    listen {}{reuseport} backlog={};\n    root {root}/html;\n\
                     location / {{\n{location}\n    }}\n  }}",
                    listen.local, listen.backlog
                )
                .expect("writing to a String");
            }
            // Workers run as root: the scratch directory is root's, and no port is privileged
            // in a namespace of the test's own anyway.
            let conf = format!(
                "daemon off;\nmaster_process on;\nuser root;\nworker_processes {workers};\n\
                 pid {root}/nginx.pid;\nerror_log {root}/error.log warn;\n\
                 events {{\n  worker_connections 512;\n}}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {root}/body;\n\
                 proxy_temp_path {root}/proxy;\n  fastcgi_temp_path {root}/fastcgi;\n\
                 uwsgi_temp_path {root}/uwsgi;\n  scgi_temp_path {root}/scgi;\n\
                 {extra}\n{servers}}}\n"
            );
            let conf = dir.write("nginx.conf", &conf);
            vec![
                "-e".into(),
                format!("{root}/error.log"),
                "-p".into(),
                format!("{root}/"),
                "-c".into(),
                as_str(&conf).to_owned(),
            ]
        });
        let workers = tree.wait_children(workers);
        for listen in listens {
            let count = if listen.reuseport { workers.len() } else { 1 };
            tree.wait_listening(ns, &listen.local, count);
        }
        Nginx { tree, workers }
    }

    pub fn master(&self) -> u32 {
        self.tree.pid()
    }
}

/// redis-server on `local`'s port with `backlog` (its `tcp-backlog`), no persistence.
pub fn redis(ns: &Netns, test: &str, port: u16, backlog: u32) -> Tree {
    let mut tree = Tree::start(ns, test, "redis", "redis-server", |dir| {
        let root = dir.path("");
        let conf = format!(
            "bind 127.0.0.1\nport {port}\ntcp-backlog {backlog}\ndaemonize no\nsave \"\"\n\
             appendonly no\ndir {}\nlogfile \"\"\nprotected-mode yes\n\
             enable-debug-command local\n",
            as_str(&root)
        );
        vec![as_str(&dir.write("redis.conf", &conf)).to_owned()]
    });
    tree.wait_listening(ns, &format!("127.0.0.1:{port}"), 1);
    tree
}

/// HAProxy in HTTP mode on `port`, balancing round robin over `backends` (loopback ports),
/// with no health checks (a stopped backend keeps getting its share, as with checks that
/// have not noticed yet).
pub fn haproxy(ns: &Netns, test: &str, port: u16, backends: &[u16]) -> Tree {
    let mut tree = Tree::start(ns, test, "haproxy", "haproxy", |dir| {
        let mut conf = format!(
            "global\n  maxconn 1000\n\ndefaults\n  mode http\n  timeout connect 30s\n\
             timeout client 30s\n  timeout server 30s\n\n\
             frontend web\n  bind 127.0.0.1:{port}\n  default_backend app\n\n\
             backend app\n  balance roundrobin\n"
        );
        for (i, backend) in backends.iter().enumerate() {
            writeln!(conf, "  server app{i} 127.0.0.1:{backend}").expect("writing to a String");
        }
        // -W: master-worker mode, as systemd runs it; -db: stay in the foreground.
        vec![
            "-W".into(),
            "-db".into(),
            "-f".into(),
            as_str(&dir.write("haproxy.cfg", &conf)).to_owned(),
        ]
    });
    tree.wait_listening(ns, &format!("127.0.0.1:{port}"), 1);
    tree
}

/// fcgiwrap on `local` (TCP), with `children` preforked workers, and a CGI script
/// `name` in its directory whose body is `script` (a shell script).
pub fn fcgiwrap(
    ns: &Netns,
    test: &str,
    local: &str,
    children: u32,
    name: &str,
    script: &str,
) -> Tree {
    let mut tree = Tree::start(ns, test, "fcgiwrap", "fcgiwrap", |dir| {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.write(name, &format!("#!/bin/sh\n{script}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("making the CGI script executable");
        vec![
            "-c".into(),
            children.to_string(),
            "-s".into(),
            format!("tcp:{local}"),
        ]
    });
    tree.wait_listening(ns, local, 1);
    tree
}

/// A client (curl, redis-benchmark) running inside `ns`; stopped on drop.
pub fn client(ns: &Netns, test: &str, what: &str, program: &str, args: &[&str]) -> Tree {
    let args: Vec<String> = args.iter().map(|&a| a.to_owned()).collect();
    Tree::start(ns, test, what, program, move |_| args)
}

/// One curl inside `ns` fetching `url` `count` times at once (`--parallel-immediate`: every
/// connection opened at the start), each giving up after `max_time_s`; stopped on drop.
pub fn curl_parallel(ns: &Netns, test: &str, url: &str, count: usize, max_time_s: u32) -> Tree {
    let mut args = vec![
        "-s".to_owned(),
        "-o".to_owned(),
        "/dev/null".to_owned(),
        "--max-time".to_owned(),
        max_time_s.to_string(),
        "--parallel".to_owned(),
        "--parallel-immediate".to_owned(),
        "--parallel-max".to_owned(),
        count.to_string(),
    ];
    args.extend(std::iter::repeat_n(url.to_owned(), count));
    Tree::start(ns, test, "curl", "curl", move |_| args)
}
