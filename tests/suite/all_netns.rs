//! The whole host in one run: `--all-netns` and `--netns` seen from the caller's namespace,
//! against lab scenarios in named namespaces (`ip netns add`) of the test's own.
//!
//! Issue: "sockscope should see the whole host in one run" — a full listener in one
//! namespace and a CLOSE_WAIT leak in another are both found, each labelled with its name,
//! each finding attributed to its namespace; a namespace that disappears mid-scan makes the
//! report partial, not a failure; without CAP_SYS_ADMIN the report covers the caller's
//! namespace, with a note.
//!
//! These tests need root and `ip`; without them they fail with the reason (unless
//! `SOCKSCOPE_ALLOW_SKIP=1`).

use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use sockscope::testing::skip_or_fail;

use crate::util::netns::{Ready, start_lab};
use crate::util::tmux::{Tmux, shell_quote};
use crate::util::{lab_bin, sockscope_bin, stdout_of};

/// Generous for a loaded CI machine: the dashboard over a few namespaces needs about a second.
const SEEN: Duration = Duration::from_secs(30);

/// A network namespace with an `ip netns` name, deleted on drop, with labs running in it.
struct Named {
    name: String,
    labs: Vec<(Child, Option<ChildStdin>)>,
}

/// A named namespace for `test`; where none can be made, the test fails with the reason (or,
/// with `SOCKSCOPE_ALLOW_SKIP=1`, this says why and returns `None`).
fn named_or_skip(test: &str, tag: &str) -> Option<Named> {
    match Named::new(tag) {
        Ok(ns) => Some(ns),
        Err(reason) => {
            skip_or_fail(
                test,
                &format!("cannot make a named network namespace: {reason}"),
            );
            None
        }
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Named {
    /// `sockscope-test-<tag>-<pid>-<n>`: unique to this test process.
    fn new(tag: &str) -> Result<Named, String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        if !rustix::process::geteuid().is_root() {
            return Err("`ip netns add` needs root".to_owned());
        }
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("sockscope-test-{tag}-{}-{n}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = Named {
            name,
            labs: Vec::new(),
        };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The id the report gives this namespace: its inode.
    fn id(&self) -> String {
        let st = rustix::fs::stat(format!("/run/netns/{}", self.name).as_str())
            .expect("stat the namespace's name");
        st.st_ino.to_string()
    }

    /// Start `lab ARGS` inside and wait for its ready line.
    fn lab(&mut self, args: &[&str]) -> Ready {
        let what = format!("lab {} in {}", args.join(" "), self.name);
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(lab_bin());
        let (child, stdin, ready) = start_lab(command, args, &what);
        self.labs.push((child, stdin));
        ready
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        for (_, stdin) in &mut self.labs {
            *stdin = None;
        }
        for (child, _) in &mut self.labs {
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// The test's own reading of the report: what these tests check, by the contract's names.
#[derive(Debug, Deserialize)]
struct Report {
    netns: Vec<Netns>,
    findings: Vec<Finding>,
    privileges: Privileges,
}

#[derive(Debug, Deserialize)]
struct Privileges {
    notes: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Netns {
    id: String,
    label: String,
    tcp_states: std::collections::BTreeMap<String, u64>,
    listeners: Vec<Listener>,
    processes: Vec<Process>,
}

#[derive(Debug, Deserialize)]
struct Listener {
    local: String,
    full: bool,
    owners: Vec<Owner>,
}

#[derive(Debug, Deserialize)]
struct Owner {
    pid: u32,
}

#[derive(Debug, Deserialize)]
struct Process {
    pid: u32,
    close_wait: u64,
}

#[derive(Debug, Deserialize)]
struct Finding {
    id: String,
    netns: String,
    netns_label: String,
    subject: String,
    target: Target,
}

#[derive(Debug, Deserialize)]
struct Target {
    kind: String,
    netns: String,
    local: Option<String>,
}

impl Report {
    fn netns(&self, label: &str) -> &Netns {
        self.netns
            .iter()
            .find(|n| n.label == label)
            .unwrap_or_else(|| {
                let all: Vec<&str> = self.netns.iter().map(|n| n.label.as_str()).collect();
                panic!("no namespace labelled {label}; the report has {all:?}")
            })
    }
}

fn sockscope(args: &[&str]) -> Output {
    Command::new(sockscope_bin())
        .args(args)
        .output()
        .expect("running sockscope")
}

fn report(args: &[&str]) -> Report {
    let mut all = vec!["report", "--json", "--samples", "1"];
    all.extend_from_slice(args);
    let stdout = stdout_of(&format!("sockscope {}", all.join(" ")), &sockscope(&all));
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("report does not match the test's types: {e}\n{stdout}"))
}

/// A listener that never accepts in one named namespace, a server leaking 200 CLOSE_WAIT
/// sockets in another: each namespace with the pid of its culprit.
fn full_listener_and_leak(test: &str) -> Option<((Named, u32), (Named, u32))> {
    let (Some(mut full), Some(mut leak)) =
        (named_or_skip(test, "full"), named_or_skip(test, "leak"))
    else {
        return None;
    };
    let noaccept = full
        .lab(&["noaccept", "--addr", "127.0.0.1:5000"])
        .pid("noaccept");
    let leaky = leak
        .lab(&["leak", "--addr", "127.0.0.1:5001", "--count", "200"])
        .pid("leaky");
    Some(((full, noaccept), (leak, leaky)))
}

#[test]
fn all_netns_finds_a_full_listener_and_a_leak_each_in_its_named_namespace() {
    let test = "all_netns_finds_a_full_listener_and_a_leak_each_in_its_named_namespace";
    let Some(((full, noaccept), (leak, leaky))) = full_listener_and_leak(test) else {
        return;
    };

    let report = report(&["--all-netns"]);
    let caller = rustix::fs::stat("/proc/self/ns/net")
        .expect("own namespace")
        .st_ino;
    assert_eq!(
        report.netns[0].id,
        caller.to_string(),
        "the caller's namespace comes first"
    );

    let a = report.netns(&full.name);
    assert_eq!(a.id, full.id());
    let listener = a
        .listeners
        .iter()
        .find(|l| l.local == "127.0.0.1:5000")
        .expect("the noaccept listener in its namespace");
    assert!(listener.full);
    assert_eq!(
        listener.owners.iter().map(|o| o.pid).collect::<Vec<_>>(),
        [noaccept]
    );
    assert!(a.processes.iter().any(|p| p.pid == noaccept));
    assert!(
        !a.processes.iter().any(|p| p.pid == leaky),
        "leaky is not in {}",
        a.label
    );

    let b = report.netns(&leak.name);
    assert_eq!(b.id, leak.id());
    assert_eq!(b.tcp_states["CLOSE_WAIT"], 200);
    let p = b
        .processes
        .iter()
        .find(|p| p.pid == leaky)
        .expect("leaky in its namespace");
    assert_eq!(p.close_wait, 200);
    assert!(!b.processes.iter().any(|p| p.pid == noaccept));
    assert!(b.listeners.iter().all(|l| l.local != "127.0.0.1:5000"));

    let found = |id: &str, ns: &Named| {
        report
            .findings
            .iter()
            .filter(|f| f.id == id && f.netns == ns.id())
            .inspect(|f| assert_eq!(f.netns_label, ns.name))
            .count()
    };
    assert_eq!(
        found("accept-queue-full", &full),
        1,
        "{:#?}",
        report.findings
    );
    assert_eq!(found("close-wait-leak", &leak), 1, "{:#?}", report.findings);
    assert_eq!(found("accept-queue-full", &leak), 0);
    assert_eq!(found("close-wait-leak", &full), 0);
    let leak_finding = report
        .findings
        .iter()
        .find(|f| f.id == "close-wait-leak" && f.netns == leak.id())
        .expect("found above");
    assert!(
        leak_finding.subject.contains(&leaky.to_string()),
        "{leak_finding:?}"
    );

    // The text report names the namespace of each finding when there are several.
    let summary = stdout_of(
        "sockscope report --all-netns",
        &sockscope(&["report", "--all-netns", "--samples", "1"]),
    );
    assert!(
        summary
            .lines()
            .any(|l| l.contains("accept-queue-full")
                && l.contains(&format!("[netns {}]", full.name))),
        "{summary}"
    );
    assert!(
        summary.lines().any(|l| l.contains("close-wait-leak")
            && l.contains(&format!("[netns {}]", leak.name))),
        "{summary}"
    );
}

#[test]
fn netns_reads_one_namespace_named_by_name_path_or_pid() {
    let test = "netns_reads_one_namespace_named_by_name_path_or_pid";
    let Some(mut ns) = named_or_skip(test, "one") else {
        return;
    };
    let pid = ns
        .lab(&["noaccept", "--addr", "127.0.0.1:5000"])
        .pid("noaccept");
    for spec in [
        ns.name.clone(),
        format!("/run/netns/{}", ns.name),
        pid.to_string(),
    ] {
        let report = report(&["--netns", &spec]);
        assert_eq!(report.netns.len(), 1, "--netns {spec}");
        assert_eq!(
            (report.netns[0].id.as_str(), report.netns[0].label.as_str()),
            (ns.id().as_str(), ns.name.as_str())
        );
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.id == "accept-queue-full" && f.netns == ns.id()),
            "--netns {spec}: {:#?}",
            report.findings
        );
    }
    let out = sockscope(&["report", "--netns", "sockscope-test-no-such-namespace"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ip netns list"), "{stderr}");
}

#[test]
fn a_namespace_deleted_during_the_scan_makes_the_report_partial() {
    let test = "a_namespace_deleted_during_the_scan_makes_the_report_partial";
    // Namespaces that stay, so that a scan takes long enough to race with the churn.
    let mut padding = Vec::new();
    for _ in 0..20 {
        let Some(ns) = named_or_skip(test, "pad") else {
            return;
        };
        padding.push(ns);
    }
    // Named to sort last: they are entered at the end of each scan.
    let stop = AtomicBool::new(false);
    let churned = AtomicUsize::new(0);
    let (partial, runs) = std::thread::scope(|scope| {
        for worker in 0..3 {
            let (stop, churned) = (&stop, &churned);
            scope.spawn(move || {
                let name = format!("zz-sockscope-test-churn-{}-{worker}", std::process::id());
                while !stop.load(Ordering::Relaxed) {
                    if ip(&["netns", "add", &name]).is_ok() {
                        let _ = ip(&["netns", "del", &name]);
                        churned.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        let started = Instant::now();
        let mut runs = 0;
        let mut partial = None;
        while partial.is_none() && runs < 200 && started.elapsed() < Duration::from_secs(60) {
            runs += 1;
            let out = sockscope(&["report", "--json", "--all-netns", "--samples", "1"]);
            let stdout = stdout_of("sockscope report --all-netns during churn", &out);
            let report: Report = serde_json::from_str(&stdout).expect("a whole JSON report");
            partial = report
                .privileges
                .notes
                .into_iter()
                // Other namespaces of the host (another test's) may come and go too: only
                // this test's churn counts.
                .find(|n| {
                    n.starts_with("partial:")
                        && n.contains("disappeared")
                        && (n.contains("zz-sockscope-test-churn-") || n.contains("(ip)"))
                });
        }
        stop.store(true, Ordering::Relaxed);
        (partial, runs)
    });
    let note = partial.unwrap_or_else(|| {
        panic!(
            "no report among {runs} saw a namespace disappear while {} were created and deleted",
            churned.load(Ordering::Relaxed)
        )
    });
    // The namespace is named by its /run/netns name, or — when the scan met it through a
    // process before `ip netns add` had bound its name — by that process (`ip`).
    assert!(
        note.contains("zz-sockscope-test-churn-") || note.contains("(ip)"),
        "{note}"
    );
    eprintln!("after {runs} reports: {note}");
}

#[test]
fn without_cap_sys_admin_the_callers_namespace_only_with_a_note() {
    let test = "without_cap_sys_admin_the_callers_namespace_only_with_a_note";
    let Some(mut ns) = named_or_skip(test, "nocap") else {
        return;
    };
    ns.lab(&["noaccept", "--addr", "127.0.0.1:5000"]);
    let out = Command::new("setpriv")
        .args(["--inh-caps=-sys_admin", "--bounding-set=-sys_admin", "--"])
        .arg(sockscope_bin())
        .args(["report", "--json", "--all-netns", "--samples", "1"])
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            skip_or_fail(test, &format!("cannot run setpriv: {e}"));
            return;
        }
    };
    let stdout = stdout_of("sockscope report --all-netns without CAP_SYS_ADMIN", &out);
    let report: Report = serde_json::from_str(&stdout).expect("a JSON report");
    assert_eq!(report.netns.len(), 1, "the caller's namespace only");
    assert!(report.netns[0].label != ns.name);
    assert!(
        report
            .privileges
            .notes
            .iter()
            .any(|n| n.contains("CAP_SYS_ADMIN") && n.contains("caller's namespace only")),
        "{:?}",
        report.privileges.notes
    );
    assert!(!report.findings.iter().any(|f| f.netns == ns.id()));
}

#[test]
fn two_unowned_full_listeners_on_one_address_are_two_findings_by_namespace() {
    let test = "two_unowned_full_listeners_on_one_address_are_two_findings_by_namespace";
    let (Some(mut one), Some(mut two)) = (named_or_skip(test, "one"), named_or_skip(test, "two"))
    else {
        return;
    };
    for ns in [&mut one, &mut two] {
        ns.lab(&["noaccept", "--addr", "127.0.0.1:5000"]);
    }
    // As nobody with CAP_SYS_ADMIN alone: every namespace can be entered, no owner is seen
    // in /proc, so both findings read "tcp 127.0.0.1:5000". (CAP_SYS_ADMIN would let the
    // BPF iterator load and see the owners: the /proc walk is asked for.)
    let out = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(["--inh-caps=+sys_admin", "--ambient-caps=+sys_admin", "--"])
        .arg(sockscope_bin())
        .args([
            "report",
            "--json",
            "--all-netns",
            "--samples",
            "1",
            "--owners",
            "proc",
        ])
        .output()
        .expect("running setpriv");
    let stdout = stdout_of("sockscope report --all-netns as nobody", &out);
    let report: Report = serde_json::from_str(&stdout).expect("a JSON report");
    // Other tests' namespaces may hold full listeners of their own at the same time.
    let ours = [one.id(), two.id()];
    let full: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.id == "accept-queue-full" && ours.contains(&f.target.netns))
        .collect();
    let mut seen: Vec<String> = Vec::new();
    for f in &full {
        assert_eq!(
            f.subject, "tcp 127.0.0.1:5000",
            "no owner is visible: {f:?}"
        );
        assert_eq!(
            (f.target.kind.as_str(), f.target.local.as_deref()),
            ("listener", Some("127.0.0.1:5000"))
        );
        assert_eq!(f.target.netns, f.netns, "{f:?}");
        seen.push(f.target.netns.clone());
    }
    seen.sort();
    let mut expected = ours.to_vec();
    expected.sort();
    assert_eq!(seen, expected, "one finding in each namespace: {full:#?}");
}

#[test]
fn the_dashboard_over_all_namespaces_names_the_namespace_of_every_row() {
    let test = "the_dashboard_over_all_namespaces_names_the_namespace_of_every_row";
    if !super::top::tmux_or_skip(test) {
        return;
    }
    let Some(((full, noaccept), (leak, leaky))) = full_listener_and_leak(test) else {
        return;
    };

    let bin = shell_quote(sockscope_bin().as_os_str());
    let term = Tmux::start(&format!("{bin} top --all-netns"), 160, 45).expect("a tmux window");
    // The netns column shows "…" and the last 15 characters of a long name.
    let column = |ns: &Named| {
        let n = ns.name.chars().count();
        ns.name.chars().skip(n - 15).collect::<String>()
    };
    let row_with =
        |screen: &str, a: &str, b: &str| screen.lines().any(|l| l.contains(a) && l.contains(b));
    let (screen, _) = term.wait_for("both culprits with their namespaces", SEEN, |s| {
        row_with(
            s,
            "accept-queue-full",
            &format!(
                "[{}] tcp 127.0.0.1:5000 (noaccept pid {noaccept})",
                full.name
            ),
        ) && row_with(
            s,
            "close-wait-leak",
            &format!("[{}] process leaky (pid {leaky})", leak.name),
        ) && row_with(
            s,
            &format!("…{} 127.0.0.1:5000", column(&full)),
            "noaccept(",
        ) && row_with(s, &format!("…{}", column(&leak)), &format!("{leaky} leaky"))
    });
    let header = screen
        .lines()
        .find(|l| l.contains(" queue ") && l.contains("fds/limit"))
        .unwrap_or_default();
    assert!(header.trim_start().starts_with("netns"), "{screen}");
    term.key("q");
    term.wait_for("the dashboard to exit", SEEN, |s| !s.contains("Findings:"));
}
