//! The rules: one function per finding id, each turning views into findings with evidence
//! and a remedy written for what was actually seen.
//!
//! Rules read the views built in `analyze` (so a face and a rule never disagree on a number)
//! and the thresholds; they never see the kernel. Remedies quote the sysctl values of the
//! namespace the finding is in.
//!
//! **Judgement happens here, and only here**: every finding's severity is decided by its
//! rule, against the thresholds. The views carry measurements (a queue's fill, a process's
//! CLOSE_WAIT count, a socket's drops), never a verdict; a face that colours a row by
//! severity joins it to the findings about it (`Analysis::queue_level`,
//! `Analysis::process_level`).

use std::fmt::Write as _;

use super::acceptors;
use super::collision::{MinedPorts, mined_ports};
use super::connections::{
    Connecting, HalfOpen, Holder, PeersGone, ReceiveStall, SendStall, SilentPeers,
};
use super::evidence as ev;
use super::listeners::{ListenerView, Owner, Proto};
use super::thresholds::Thresholds;
use super::udp::{PortUseView, UdpSocketView};
use super::units::{format_age, round1};
use super::{
    Evidence, Finding, Mentions, NetnsView, ProcessView, Severity, Target, TargetKind, pct,
    process_subject,
};
use crate::model::{NetnsSnapshot, Snapshot, Sysctls, TcpState};

/// What every rule may read about one namespace.
pub(super) struct Scope<'a> {
    pub view: &'a NetnsView,
    pub ns: &'a NetnsSnapshot,
    pub last: &'a Snapshot,
    pub t: &'a Thresholds,
}

/// Every finding for one namespace.
pub(super) fn findings(scope: &Scope<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for l in &scope.view.listeners {
        out.extend(accept_queue(scope, l));
        out.extend(syn_queue_listener(scope, l));
        out.extend(abandoned(scope, l));
        out.extend(reuseport_imbalance(scope, l));
    }
    out.extend(listen_drops(scope));
    out.extend(syn_queue_counters(scope));
    for p in &scope.view.processes {
        out.extend(close_wait_leak(scope, p));
    }
    out.extend(
        mined_ports(scope.ns)
            .iter()
            .filter_map(|m| collision(scope, m)),
    );
    out.extend(fd_exhaustion(scope));
    out.extend(orphan_pressure(scope));
    let c = &scope.view.connections;
    out.extend(c.half_open.iter().filter_map(|h| half_open(scope, h)));
    out.extend(c.connecting.iter().map(|g| connect_stall(scope, g)));
    out.extend(c.receive_stalls.iter().map(|r| receive_stall(scope, r)));
    out.extend(c.send_stalls.iter().map(|s| send_stall(scope, s)));
    out.extend(c.peers_gone.iter().map(|g| peer_gone(scope, g)));
    out.extend(
        scope
            .view
            .udp
            .sockets
            .iter()
            .filter_map(|u| udp_drops(scope, u)),
    );
    out.extend(udp_namespace_drops(scope));
    out.extend(
        scope
            .view
            .port_use
            .iter()
            .filter_map(|u| exhaustion(scope, u)),
    );
    out.extend(conntrack_full(scope));
    out.extend(time_wait_overflow(scope));
    out.extend(tcp_memory_pressure(scope));
    out.extend(c.silent_peers.iter().map(|s| silent_peer(scope, s)));
    out
}

/// What a finding is about, and what else it names, before it is placed in its namespace.
enum About<'a> {
    Listener(&'a ListenerView),
    /// A listener, and the processes the finding names besides its owners.
    ListenerAnd(&'a ListenerView, Mentions),
    /// The listeners of a finding about the namespace.
    Listeners(&'a [&'a ListenerView]),
    Process(&'a str, u32),
    Destination(TargetKind, Mentions),
    /// A socket that is not a listener, and what the finding names.
    Socket(TargetKind, Mentions),
    Netns,
}

impl About<'_> {
    fn place(self, netns: &str) -> (Target, Mentions) {
        match self {
            About::Listener(l) => (Target::listener(netns, l), Mentions::listener(l)),
            About::ListenerAnd(l, mentions) => (Target::listener(netns, l), mentions),
            // One listener is the subject of a namespace's drops when it alone dropped.
            About::Listeners([one]) => (Target::listener(netns, one), Mentions::listener(one)),
            About::Listeners(ls) => (Target::netns(netns), Mentions::listeners(ls)),
            About::Process(comm, pid) => (
                Target::process(netns, comm, pid),
                Mentions::process(comm, pid),
            ),
            About::Destination(kind, mentions) | About::Socket(kind, mentions) => (
                Target {
                    netns: netns.to_owned(),
                    kind,
                },
                mentions,
            ),
            About::Netns => (Target::netns(netns), Mentions::default()),
        }
    }
}

/// A finding of this namespace; its id is its evidence's.
fn finding(
    scope: &Scope<'_>,
    severity: Severity,
    about: About<'_>,
    subject: String,
    summary: String,
    evidence: Evidence,
    remedy: String,
) -> Finding {
    Finding::new(
        severity,
        about.place(&scope.view.id),
        subject,
        summary,
        evidence,
        remedy,
    )
}

fn rate_text(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a".to_owned(), |r| format!("{r:+.1}/s"))
}

fn sysctl_text(v: Option<u64>) -> String {
    v.map_or_else(|| "unknown".to_owned(), |v| v.to_string())
}

/// "noaccept (pid 812)", or what to do when the owner is not visible.
fn owner_text(l: &ListenerView) -> String {
    owners_text(&l.owners)
}

/// [`owner_text`] and its verb: "noaccept (pid 812) is", "nginx (pid 1) and 2 other
/// processes are".
fn owner_is(l: &ListenerView) -> String {
    let verb = if l.owners.len() > 1 { "are" } else { "is" };
    format!("{} {verb}", owner_text(l))
}

/// The first sentence of a remedy for a listener that is not drained: what its acceptors
/// are doing when they were read, else the owner's accept loop in general.
fn drain_remedy(l: &ListenerView) -> String {
    acceptors::verdict(&l.acceptors).map_or_else(
        || {
            format!(
                "{} not calling accept() fast enough: find what stalls its accept loop (a \
                 saturated worker pool, slow work on the accepting thread).",
                owner_is(l)
            )
        },
        |v| v.remedy,
    )
}

fn drops_rose(l: &ListenerView) -> bool {
    l.drops_per_s.is_some_and(|r| r > 0.0)
}

/// The severity a value earns against a warning and a critical threshold.
fn level<T: PartialOrd + Copy>(value: T, warn: T, crit: T) -> Option<Severity> {
    if value >= crit {
        Some(Severity::Critical)
    } else if value >= warn {
        Some(Severity::Warning)
    } else {
        None
    }
}

/// `accept-queue-full` (critical) past `fill_crit` or when the listener's drops rose in the
/// window; `accept-queue-high` (warning) from `fill_warn` with something queued.
fn accept_queue(scope: &Scope<'_>, l: &ListenerView) -> Option<Finding> {
    let t = scope.t;
    let severity = if l.fill_pct > t.fill_crit || drops_rose(l) {
        Severity::Critical
    } else if l.accept_queue > 0 && l.fill_pct >= t.fill_warn {
        Severity::Warning
    } else {
        return None;
    };
    let sys = &scope.view.sysctl;
    let state = if l.full {
        "full: the kernel admits backlog + 1"
    } else {
        "not yet full"
    };
    let mut summary = format!(
        "accept queue {}/{} ({:.0} %, {state})",
        l.accept_queue, l.backlog, l.fill_pct
    );
    if let Some(total) = l.drops_total {
        let _ = write!(
            summary,
            ", drops {} ({} total)",
            rate_text(l.drops_per_s),
            total
        );
    }
    if let Some(v) = acceptors::verdict(&l.acceptors) {
        let _ = write!(summary, "; {}", v.clause);
    }
    let mut remedy = drain_remedy(l);
    let somaxconn = sys.somaxconn;
    let _ = match somaxconn {
        Some(max) if l.backlog >= max => write!(
            remedy,
            " Its backlog {} is capped by net.core.somaxconn = {max}: raise both (sysctl -w \
             net.core.somaxconn=N and the listen() argument), then restart the listener.",
            l.backlog
        ),
        _ => write!(
            remedy,
            " A larger listen() backlog buys time (now {}, net.core.somaxconn = {}; it takes \
             effect when the listener is re-created).",
            l.backlog,
            sysctl_text(somaxconn)
        ),
    };
    if l.proto == Proto::Tcp {
        match sys.tcp_abort_on_overflow {
            Some(0) => remedy.push_str(
                " net.ipv4.tcp_abort_on_overflow is 0, so clients see silent timeouts; set it \
                 to 1 to turn overflows into visible connection resets while you debug.",
            ),
            Some(_) => remedy.push_str(
                " net.ipv4.tcp_abort_on_overflow is on: clients get resets, not timeouts.",
            ),
            None => {}
        }
        if sys.tcp_syncookies == Some(1) {
            remedy.push_str(
                " tcp_syncookies is 1: the SYN queue is bounded by this backlog too, so a \
                 larger backlog also relieves SYN drops.",
            );
        }
    } else {
        remedy.push_str(" Unix clients block in connect() (or get EAGAIN) while it is full.");
    }
    let evidence = ev::AcceptQueue {
        proto: l.proto,
        local: l.local.clone(),
        accept_queue: l.accept_queue,
        backlog: l.backlog,
        fill_pct: round1(l.fill_pct),
        full: l.full,
        drops_total: l.drops_total,
        drops_per_s: l.drops_per_s,
        owners: l.owners.clone(),
        somaxconn,
        tcp_abort_on_overflow: sys.tcp_abort_on_overflow,
        tcp_syncookies: sys.tcp_syncookies,
        acceptors: l.acceptors.clone(),
    };
    let evidence = match severity {
        Severity::Critical => Evidence::AcceptQueueFull(evidence),
        _ => Evidence::AcceptQueueHigh(evidence),
    };
    Some(finding(
        scope,
        severity,
        About::Listener(l),
        l.subject(),
        summary,
        evidence,
        remedy,
    ))
}

fn syn_queue_listener(scope: &Scope<'_>, l: &ListenerView) -> Option<Finding> {
    if l.proto != Proto::Tcp || l.syn_recv == 0 {
        return None;
    }
    let capacity = l.backlog + 1;
    let fill = pct(l.syn_recv, capacity);
    if fill < scope.t.syn_recv_warn {
        return None;
    }
    let sys = &scope.view.sysctl;
    let summary = format!(
        "{} SYN_RECV request sockets, {fill:.0} % of backlog + 1 ({capacity})",
        l.syn_recv
    );
    let remedy = syn_remedy(sys.tcp_syncookies, sys.tcp_max_syn_backlog);
    let evidence =
        Evidence::SynQueuePressure(ev::SynQueuePressure::Listener(ev::SynQueueListener {
            local: l.local.clone(),
            syn_recv: l.syn_recv,
            backlog: l.backlog,
            fill_pct: round1(fill),
            tcp_syncookies: sys.tcp_syncookies,
            tcp_max_syn_backlog: sys.tcp_max_syn_backlog,
            acceptors: l.acceptors.clone(),
        }));
    Some(finding(
        scope,
        Severity::Warning,
        About::Listener(l),
        l.subject(),
        summary,
        evidence,
        remedy,
    ))
}

fn syn_remedy(syncookies: Option<u64>, max_syn_backlog: Option<u64>) -> String {
    let base = "Half-open connections are piling up: a SYN flood, or clients whose final ACK \
                is lost or slow.";
    match syncookies {
        Some(0) => format!(
            "{base} tcp_syncookies is 0: enable it (sysctl -w net.ipv4.tcp_syncookies=1) so a \
             full SYN queue answers with cookies instead of dropping."
        ),
        Some(1) => format!(
            "{base} With tcp_syncookies = 1 the SYN queue is bounded by the listener's backlog \
             (not tcp_max_syn_backlog): raise the listen() backlog."
        ),
        _ => format!(
            "{base} Raise net.ipv4.tcp_max_syn_backlog (now {}) and the listen() backlog.",
            sysctl_text(max_syn_backlog)
        ),
    }
}

fn abandoned(scope: &Scope<'_>, l: &ListenerView) -> Option<Finding> {
    if l.unaccepted_close_wait < scope.t.abandoned_warn {
        return None;
    }
    let summary = format!(
        "{} queued connections were closed by their clients before accept() ({} still waiting)",
        l.unaccepted_close_wait, l.unaccepted_established
    );
    let mut remedy = format!(
        "Clients give up waiting for {} to accept(): their timeout is shorter than the queue \
         wait. When accepted, these connections read EOF at once — wasted work.",
        owner_text(l)
    );
    match acceptors::verdict(&l.acceptors) {
        Some(v) => {
            let _ = write!(remedy, " {}", v.remedy);
        }
        None => remedy.push_str(
            " Speed up the accept loop; see the accept-queue findings for this listener.",
        ),
    }
    let evidence = Evidence::AbandonedInAcceptQueue(ev::Abandoned {
        local: l.local.clone(),
        unaccepted_close_wait: l.unaccepted_close_wait,
        unaccepted_established: l.unaccepted_established,
        accept_queue: l.accept_queue,
        backlog: l.backlog,
        acceptors: l.acceptors.clone(),
    });
    Some(finding(
        scope,
        Severity::Warning,
        About::Listener(l),
        l.subject(),
        summary,
        evidence,
        remedy,
    ))
}

/// `reuseport-imbalance`: a member of an `SO_REUSEPORT` group full or dropping while another
/// member has room (warning; critical while it drops). The kernel picks a member by a hash of
/// the client's address and port, not by which has room: the stuck member's share of new
/// connections waits or times out while the others idle.
#[allow(clippy::too_many_lines)] // the summary, the remedy and the evidence of one finding
fn reuseport_imbalance(scope: &Scope<'_>, l: &ListenerView) -> Option<Finding> {
    let member = l.member?;
    if !(l.full || drops_rose(l)) {
        return None;
    }
    let members: Vec<&ListenerView> = scope
        .view
        .listeners
        .iter()
        .filter(|o| o.proto == Proto::Tcp && o.local == l.local && o.member.is_some())
        .collect();
    let roomy: Vec<&&ListenerView> = members
        .iter()
        .filter(|o| o.inode != l.inode && o.accept_queue < o.backlog && !drops_rose(o))
        .collect();
    let roomiest = roomy
        .iter()
        .min_by(|a, b| a.fill_pct.total_cmp(&b.fill_pct))?;
    let severity = if drops_rose(l) {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let share_pct = 100.0 / f64::from(u32::try_from(member.of).unwrap_or(u32::MAX));
    let mut summary = format!(
        "member {} of {} of the SO_REUSEPORT group on {} is {} ({}/{}) while another has \
         room ({}/{}): the kernel still sends it 1/{} of new connections ({share_pct:.0} %)",
        member.index,
        member.of,
        l.local,
        if l.full { "full" } else { "dropping" },
        l.accept_queue,
        l.backlog,
        roomiest.accept_queue,
        roomiest.backlog,
        member.of,
    );
    if let Some(rate) = l.drops_per_s.filter(|r| *r > 0.0) {
        let _ = write!(summary, ", dropping {rate:.1}/s");
    }
    let verdict = acceptors::verdict(&l.acceptors);
    if let Some(v) = &verdict {
        let _ = write!(summary, "; {}", v.clause);
    }
    let others = match roomy.len() {
        1 => "another member has".to_owned(),
        n => format!("{n} other members have"),
    };
    let mut remedy = format!(
        "About 1 in {} new connections to {} lands on this member and waits or times out, \
         while {others} room: the kernel picks a member by a hash of the client's address and \
         port, not by which has room. ",
        member.of, l.local,
    );
    match verdict {
        Some(v) => remedy.push_str(&v.remedy),
        None => {
            let _ = write!(
                remedy,
                "Find why {} does not drain this member.",
                owner_text(l)
            );
        }
    }
    remedy.push_str(
        " Until it is fixed, restarting the stuck process (or closing its listener) takes the \
         member out of the group, and the kernel spreads its share over the others.",
    );
    let evidence = Evidence::ReuseportImbalance(ev::ReuseportImbalance {
        local: l.local.clone(),
        member: member.index,
        members_total: member.of,
        share_pct: round1(share_pct),
        accept_queue: l.accept_queue,
        backlog: l.backlog,
        drops_per_s: l.drops_per_s,
        members: members
            .iter()
            .map(|m| ev::ReuseportMember {
                member: m.member.map_or(0, |x| x.index),
                inode: m.inode,
                accept_queue: m.accept_queue,
                backlog: m.backlog,
                fill_pct: round1(m.fill_pct),
                full: m.full,
                drops_per_s: m.drops_per_s,
            })
            .collect(),
        acceptors: l.acceptors.clone(),
    });
    let mut mentions = Mentions::listener(l);
    mentions.pids.extend(l.acceptors.iter().map(|a| a.pid));
    mentions.pids.sort_unstable();
    mentions.pids.dedup();
    Some(finding(
        scope,
        severity,
        About::ListenerAnd(l, mentions),
        l.subject(),
        summary,
        evidence,
        remedy,
    ))
}

fn counter_rate(view: &NetnsView, name: &str) -> Option<f64> {
    view.counters
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.rate_per_s)
}

fn counter_total(view: &NetnsView, name: &str) -> Option<u64> {
    view.counters
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.total)
}

fn listen_drops(scope: &Scope<'_>) -> Option<Finding> {
    let v = scope.view;
    let drops = counter_rate(v, "ListenDrops");
    let overflows = counter_rate(v, "ListenOverflows");
    let worst = drops.unwrap_or(0.0).max(overflows.unwrap_or(0.0));
    if worst <= 0.0 {
        return None;
    }
    let dropping: Vec<&ListenerView> = v.listeners.iter().filter(|l| drops_rose(l)).collect();
    let severity = if worst >= scope.t.listen_drops_crit {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let subject = match dropping.as_slice() {
        [one] => one.subject(),
        [] => format!("netns {}", v.label),
        many => format!("netns {}: {} listeners", v.label, many.len()),
    };
    let named = if dropping.is_empty() {
        "no listener's own drop counter rose".to_owned()
    } else {
        dropping
            .iter()
            .map(|l| format!("{} {}", l.local, rate_text(l.drops_per_s)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let summary = format!(
        "ListenOverflows {}, ListenDrops {}; dropping: {named}",
        rate_text(overflows),
        rate_text(drops)
    );
    let remedy = if dropping.is_empty() {
        "The kernel dropped SYNs or ACKs at a listener whose own counter did not rise: it may \
         have closed since, or the drops are memory-pressure drops. Check `ss -tlm` (d<N>) and \
         `nstat -az TcpExtListenDrops` over a few seconds."
            .to_owned()
    } else {
        "These listeners' accept queues overflow: each dropped SYN or final ACK costs a client \
         a retransmission (1 s, then 3 s, 7 s…). See their accept-queue findings for the owner \
         and the backlog to raise."
            .to_owned()
    };
    let evidence = Evidence::ListenDrops(ev::ListenDrops {
        listen_overflows_per_s: overflows,
        listen_drops_per_s: drops,
        listen_overflows_total: counter_total(v, "ListenOverflows"),
        listen_drops_total: counter_total(v, "ListenDrops"),
        listeners: dropping
            .iter()
            .map(|l| ev::DroppingListener {
                local: l.local.clone(),
                drops_per_s: l.drops_per_s,
                drops_total: l.drops_total,
                owners: l.owners.clone(),
            })
            .collect(),
    });
    Some(finding(
        scope,
        severity,
        About::Listeners(&dropping),
        subject,
        summary,
        evidence,
        remedy,
    ))
}

fn syn_queue_counters(scope: &Scope<'_>) -> Option<Finding> {
    let v = scope.view;
    let full_drop = counter_rate(v, "TCPReqQFullDrop");
    let cookies = counter_rate(v, "TCPReqQFullDoCookies");
    if full_drop.unwrap_or(0.0) <= 0.0 && cookies.unwrap_or(0.0) <= 0.0 {
        return None;
    }
    let summary = format!(
        "SYN queue overflowing: TCPReqQFullDrop {}, TCPReqQFullDoCookies {}",
        rate_text(full_drop),
        rate_text(cookies)
    );
    let sys = &v.sysctl;
    let evidence =
        Evidence::SynQueuePressure(ev::SynQueuePressure::Counters(ev::SynQueueCounters {
            req_q_full_drop_per_s: full_drop,
            req_q_full_do_cookies_per_s: cookies,
            tcp_syncookies: sys.tcp_syncookies,
            tcp_max_syn_backlog: sys.tcp_max_syn_backlog,
        }));
    let remedy = syn_remedy(sys.tcp_syncookies, sys.tcp_max_syn_backlog);
    Some(finding(
        scope,
        Severity::Warning,
        About::Netns,
        format!("netns {}", v.label),
        summary,
        evidence,
        remedy,
    ))
}

/// `close-wait-leak`: warning from `close_wait_warn` sockets, critical from `close_wait_crit`
/// or when the count grew in the window.
fn close_wait_leak(scope: &Scope<'_>, p: &ProcessView) -> Option<Finding> {
    let t = scope.t;
    let grew = p.close_wait_growth_per_min.is_some_and(|g| g > 0.0);
    let severity = match level(p.close_wait, t.close_wait_warn, t.close_wait_crit)? {
        Severity::Warning if grew => Severity::Critical,
        judged => judged,
    };
    let read_eof = p.close_wait.saturating_sub(p.close_wait_unread);
    let growth = p.close_wait_growth_per_min.map_or_else(
        || "growth unknown (one sample)".to_owned(),
        |g| format!("{g:+.1}/min"),
    );
    let oldest = p
        .close_wait_oldest_s
        .map_or_else(|| "unknown".to_owned(), format_age);
    let summary = format!(
        "{} CLOSE_WAIT sockets, {growth}, oldest {oldest}; {} never read to EOF (Recv-Q > 0), \
         {read_eof} read EOF but not closed",
        p.close_wait, p.close_wait_unread
    );
    let who = format!("{} (pid {})", p.comm, p.pid);
    let mut remedy = if p.close_wait_unread >= read_eof {
        format!(
            "{who} does not close() connections its peers have closed, and most it never even \
             reads to EOF (Recv-Q > 0): look for connections dropped from its event loop or \
             pool without close(), e.g. an error or timeout path that returns early."
        )
    } else {
        format!(
            "{who} reads EOF (read() returns 0) but never calls close(): the bug is in its \
             end-of-stream handling, which forgets to close the descriptor."
        )
    };
    let _ = write!(
        remedy,
        " Until the fix ships, `sockscope kill --pid {}` lists the leaked sockets (a dry run) \
         and with --yes destroys them without a restart (netlink SOCK_DESTROY: the ports and \
         memory are freed, the process keeps its descriptors); restarting it frees them too. \
         Only a fix stops the leak.",
        p.pid
    );
    if let (Some(fds), Some(pct)) = (p.fds, p.fd_use_pct()) {
        let _ = write!(
            remedy,
            " It holds {fds} descriptors ({pct:.0} % of its limit)."
        );
    }
    let evidence = Evidence::CloseWaitLeak(ev::CloseWaitLeak {
        pid: p.pid,
        comm: p.comm.clone(),
        close_wait: p.close_wait,
        close_wait_unread: p.close_wait_unread,
        close_wait_read_eof: read_eof,
        close_wait_oldest_s: p.close_wait_oldest_s,
        close_wait_growth_per_min: p.close_wait_growth_per_min,
        fds: p.fds,
        fd_limit: p.fd_limit.and_then(|l| l.soft),
    });
    Some(finding(
        scope,
        severity,
        About::Process(&p.comm, p.pid),
        process_subject(&p.comm, p.pid),
        summary,
        evidence,
        remedy,
    ))
}

/// How the collision's remedy frees the ports now: the `sockscope kill` dry run for its
/// holders, or a restart when none is visible.
fn kill_command(owners: &[Owner], client: std::net::IpAddr) -> String {
    match owners {
        [] => "restarting the process that holds them".to_owned(),
        [Owner { pid, .. }] => format!(
            "`sockscope kill --pid {pid} --peer {client}` (a dry run; --yes destroys them, \
             without a restart)"
        ),
        several => format!(
            "`sockscope kill --pid PID --peer {client}` for each holder (pids {}; a dry run, \
             --yes destroys them, without a restart)",
            several
                .iter()
                .map(|o| o.pid.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn collision(scope: &Scope<'_>, m: &MinedPorts) -> Option<Finding> {
    let t = scope.t;
    if m.ports < t.collision_warn {
        return None;
    }
    let share = m.pct_of_range();
    // A challenge ACK answers a SYN that lands on an existing connection's 4-tuple.
    let challenged = counter_rate(scope.view, "TCPChallengeACK").filter(|&r| r > 0.0);
    let severity = if share >= t.collision_crit || challenged.is_some() {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let owners: Vec<Owner> = m
        .owners
        .iter()
        .map(|&pid| Owner {
            pid,
            comm: scope
                .last
                .process(pid)
                .map_or_else(|| "?".to_owned(), |p| p.comm.clone()),
        })
        .collect();
    let subject = match owners.as_slice() {
        [o] => process_subject(&o.comm, o.pid),
        [] => format!("server {}", m.server),
        [o, rest @ ..] => format!(
            "{} and {} more",
            process_subject(&o.comm, o.pid),
            rest.len()
        ),
    };
    let holders = owners
        .iter()
        .map(|o| format!("{} (pid {})", o.comm, o.pid))
        .collect::<Vec<_>>()
        .join(", ");
    let mut summary = format!(
        "{} ephemeral ports mined ({share:.1} % of the {}-port range) for {} → {}, held by {}",
        m.ports,
        m.range_size,
        m.client,
        m.server,
        if holders.is_empty() {
            "an unseen process"
        } else {
            &holders
        }
    );
    if let Some(rate) = challenged {
        let _ = write!(
            summary,
            "; TCPChallengeACK is rising ({rate:+.1}/s): collisions are happening now"
        );
    }
    let (lo, hi) = scope.ns.sysctl.ip_local_port_range.unwrap_or((0, 0));
    let kill = kill_command(&owners, m.client);
    let remedy = format!(
        "A new connect() from {} to {} that picks one of these ports lands on a leaked \
         CLOSE_WAIT socket: challenge ACKs, resets and retries, or a hang on some kernels. Fix \
         the CLOSE_WAIT leak (see close-wait-leak); {kill} clears the ports now. Until then, \
         fewer clients hit them if the range (net.ipv4.ip_local_port_range = {lo}-{hi}) is \
         wider.",
        m.client, m.server
    );
    let evidence = Evidence::EphemeralPortCollision(ev::PortCollision {
        client: m.client,
        server: m.server,
        mined_ports: m.ports,
        range_size: m.range_size,
        pct_of_range: round1(share),
        ip_local_port_range: (lo, hi),
        owners: owners.clone(),
        challenge_acks_per_s: challenged,
    });
    Some(finding(
        scope,
        severity,
        About::Destination(
            TargetKind::Destination {
                proto: Proto::Tcp,
                remote: m.server.to_string(),
                local: Some(m.client.to_string()),
                pid: match owners.as_slice() {
                    [o] => Some(o.pid),
                    _ => None,
                },
            },
            Mentions {
                ports: vec![m.server.port()],
                paths: Vec::new(),
                comms: owners.iter().map(|o| o.comm.clone()).collect(),
                pids: owners.iter().map(|o| o.pid).collect(),
            },
        ),
        subject,
        summary,
        evidence,
        remedy,
    ))
}

fn fd_exhaustion(scope: &Scope<'_>) -> Vec<Finding> {
    let v = scope.view;
    v.processes
        .iter()
        .chain(&v.other_processes)
        .filter_map(|p| {
            let fds = p.fds?;
            let soft = p.fd_limit?.soft?;
            let use_pct = pct(fds, soft.max(1));
            let severity = level(use_pct, scope.t.fd_warn, scope.t.fd_crit)?;
            let hard = p.fd_limit.and_then(|l| l.hard);
            let summary =
                format!("{fds} of {soft} descriptors open ({use_pct:.0} % of RLIMIT_NOFILE)");
            let close_wait = p.close_wait;
            let mut remedy = format!(
                "At its limit {} (pid {}) fails accept(), open() and socket() with EMFILE, and \
                 its listeners' queues fill.",
                p.comm, p.pid
            );
            if close_wait > 0 {
                let _ = write!(
                    remedy,
                    " {close_wait} of its descriptors are CLOSE_WAIT sockets: fix that leak first."
                );
            }
            let _ = write!(
                remedy,
                " If the load is real, raise its limit (LimitNOFILE= in its systemd unit, or \
                 ulimit -n before it starts; the hard limit is {}).",
                hard.map_or_else(|| "unlimited".to_owned(), |h| h.to_string())
            );
            let evidence = Evidence::FdExhaustion(ev::FdExhaustion {
                pid: p.pid,
                comm: p.comm.clone(),
                fds,
                fd_limit: soft,
                fd_limit_hard: hard,
                fd_use_pct: round1(use_pct),
                close_wait,
            });
            Some(finding(
                scope,
                severity,
                About::Process(&p.comm, p.pid),
                process_subject(&p.comm, p.pid),
                summary,
                evidence,
                remedy,
            ))
        })
        .collect()
}

/// Orphaned sockets (FIN_WAIT2 where sockstat is unreadable) as a % of `tcp_max_orphans`,
/// with the count; `None` when the limit is unknown (outside the host's namespace).
fn orphan_share(v: &NetnsView) -> Option<(u64, u64, f64)> {
    let max = v.sysctl.tcp_max_orphans?;
    let count = v
        .sockstat
        .map_or_else(|| v.tcp_states.get(TcpState::FinWait2), |s| s.orphan);
    Some((count, max, pct(count, max.max(1))))
}

/// `orphan-pressure`: warning from `orphan_warn` % of `tcp_max_orphans`; critical while the
/// kernel resets connections for it (`TCPAbortOnMemory` rising, "too many orphaned
/// sockets"), which `tcp-memory-pressure` then leaves to it when TCP's memory is not the
/// cause.
fn orphan_pressure(scope: &Scope<'_>) -> Option<Finding> {
    let v = scope.view;
    let (count, max, share) = orphan_share(v)?;
    if share < scope.t.orphan_warn {
        return None;
    }
    let fin_wait2 = v.tcp_states.get(TcpState::FinWait2);
    let orphans = v.sockstat.map(|s| s.orphan);
    let aborting = counter_rate(v, "TCPAbortOnMemory").filter(|&r| r > 0.0);
    let mut summary = format!(
        "{count} orphaned sockets, {share:.0} % of tcp_max_orphans ({max}); FIN_WAIT2 {fin_wait2}"
    );
    if let Some(aborts) = aborting {
        let _ = write!(
            summary,
            "; the kernel is resetting connections (TCPAbortOnMemory {aborts:+.1}/s)"
        );
    }
    let remedy = format!(
        "Past tcp_max_orphans the kernel resets orphaned connections (\"too many orphaned \
         sockets\"). Lower net.ipv4.tcp_fin_timeout (now {}) so FIN_WAIT2 orphans expire \
         sooner, or raise net.ipv4.tcp_max_orphans; look for a client that closes many \
         connections its peer does not close.",
        sysctl_text(v.sysctl.tcp_fin_timeout)
    );
    let evidence = Evidence::OrphanPressure(ev::OrphanPressure {
        orphans,
        fin_wait2,
        tcp_max_orphans: max,
        pct: round1(share),
        tcp_fin_timeout: v.sysctl.tcp_fin_timeout,
        abort_on_memory_per_s: counter_rate(v, "TCPAbortOnMemory").map(round1),
    });
    // A warning, as the contract has it, also while the kernel aborts: the summary and the
    // evidence carry the abort rate, and the alerting rules page on it.
    Some(finding(
        scope,
        Severity::Warning,
        About::Netns,
        format!("netns {}", v.label),
        summary,
        evidence,
        remedy,
    ))
}

/// `nginx (pid 812)`, or what to say when the owner is not visible.
fn holder_text(h: Option<&Holder>) -> String {
    h.map_or_else(
        || "a process not visible (run as root to see it)".to_owned(),
        |h| format!("{} (pid {})", h.comm, h.pid),
    )
}

fn holders_text(hs: &[Holder]) -> String {
    hs.iter()
        .map(|h| format!("{} (pid {})", h.comm, h.pid))
        .collect::<Vec<_>>()
        .join(", ")
}

fn half_open(scope: &Scope<'_>, h: &HalfOpen) -> Option<Finding> {
    let v = scope.view;
    let l = v.listeners.iter().find(|l| l.inode == h.listener_inode)?;
    let sys = &v.sysctl;
    let overflowing = counter_rate(v, "ListenOverflows").filter(|&r| r > 0.0);
    let severity = if l.full || h.requests >= scope.t.half_open_crit {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let mut summary = format!(
        "{} request sockets whose SYN-ACK was retransmitted (up to {} times; \
         net.ipv4.tcp_synack_retries = {}): the clients' final ACKs are not arriving",
        h.requests,
        h.max_retrans,
        sysctl_text(sys.tcp_synack_retries)
    );
    let dropped = l.full || overflowing.is_some();
    if dropped {
        let _ = write!(
            summary,
            " — dropped here: the accept queue is {}/{}{}",
            l.accept_queue,
            l.backlog,
            overflowing.map_or_else(String::new, |r| format!(", ListenOverflows {r:+.1}/s"))
        );
    } else {
        summary.push_str(" — lost on the way in (no accept-queue overflow counted)");
    }
    if h.clients > 0 {
        let _ = write!(
            summary,
            ". {} clients ({}) believe they are connected and have sent {} bytes the server \
             will never read",
            h.clients,
            holders_text(&h.client_processes),
            h.client_bytes
        );
    }
    let remedy = if dropped {
        format!(
            "{} does not accept() fast enough, so the kernel drops the final ACKs of new \
             connections while its queue is full (see accept-queue-full): fix the accept loop. \
             Until then net.ipv4.tcp_abort_on_overflow = 1 (now {}) answers them with a reset \
             instead of leaving clients that think they are connected, and tcp_syncookies \
             (now {}) keeps SYNs from being dropped.",
            owner_text(l),
            sysctl_text(sys.tcp_abort_on_overflow),
            sysctl_text(sys.tcp_syncookies)
        )
    } else {
        format!(
            "The clients' ACKs are lost between them and this host: look for a firewall, \
             conntrack or rate limit dropping them (nft list ruleset, conntrack -S), or loss on \
             the path. Each request is dropped after net.ipv4.tcp_synack_retries (now {}) \
             retransmissions, and its client then fails on its next write.",
            sysctl_text(sys.tcp_synack_retries)
        )
    };
    let evidence = Evidence::HalfOpenHandshakes(ev::HalfOpenHandshakes {
        local: l.local.clone(),
        requests_retransmitted: h.requests,
        max_synack_retransmissions: h.max_retrans,
        accept_queue: l.accept_queue,
        backlog: l.backlog,
        full: l.full,
        listen_overflows_per_s: overflowing,
        visible_clients: h.clients,
        client_bytes_unacknowledged: h.client_bytes,
        client_processes: h.client_processes.clone(),
        tcp_synack_retries: sys.tcp_synack_retries,
        tcp_abort_on_overflow: sys.tcp_abort_on_overflow,
    });
    let mut about = Mentions::listener(l);
    about.pids.extend(h.client_processes.iter().map(|p| p.pid));
    about
        .comms
        .extend(h.client_processes.iter().map(|p| p.comm.clone()));
    Some(finding(
        scope,
        severity,
        About::ListenerAnd(l, about),
        l.subject(),
        summary,
        evidence,
        remedy,
    ))
}

/// A destination target, and the mentions of who connects to it.
fn destination(
    holder: Option<&Holder>,
    remote: std::net::SocketAddr,
    local: Option<String>,
) -> (TargetKind, Mentions) {
    let kind = TargetKind::Destination {
        proto: Proto::Tcp,
        remote: remote.to_string(),
        local,
        pid: holder.map(|h| h.pid),
    };
    let mentions = Mentions {
        ports: vec![remote.port()],
        paths: Vec::new(),
        comms: holder.map(|h| h.comm.clone()).into_iter().collect(),
        pids: holder.map(|h| h.pid).into_iter().collect(),
    };
    (kind, mentions)
}

fn destination_subject(holder: Option<&Holder>, remote: std::net::SocketAddr) -> String {
    match holder {
        Some(h) => format!("{} → {remote}", process_subject(&h.comm, h.pid)),
        None => format!("connections to {remote} (owner not visible)"),
    }
}

fn connect_stall(scope: &Scope<'_>, c: &Connecting) -> Finding {
    let v = scope.view;
    let sys = &v.sysctl;
    let listener = c.listener.and_then(|i| v.listeners.get(i));
    let next = if c.next_retry_ms == u32::MAX {
        "unknown".to_owned()
    } else {
        format!("{:.1}s", f64::from(c.next_retry_ms) / 1000.0)
    };
    let mut summary = format!(
        "{} connect()s to {} unanswered: up to {} SYN retransmissions \
         (net.ipv4.tcp_syn_retries = {}), the next in {next}",
        c.sockets,
        c.remote,
        c.max_retries,
        sysctl_text(sys.tcp_syn_retries)
    );
    if let Some(l) = listener {
        let _ = write!(summary, "; {} is the listener {}", c.remote, l.subject());
        if l.full {
            summary.push_str(", whose accept queue is full (see accept-queue-full)");
        }
    }
    let remedy = match listener {
        Some(l) if l.full => format!(
            "The destination drops these SYNs because its accept queue is full: {} does not \
             accept() fast enough (see accept-queue-full). The clients retry until \
             tcp_syn_retries (now {}) runs out, then connect() fails with ETIMEDOUT.",
            owner_text(l),
            sysctl_text(sys.tcp_syn_retries)
        ),
        _ => format!(
            "Nothing answers SYNs to {}: a firewall dropping them, a route to nowhere, or a \
             host or service that is down. Check the path (nft list ruleset, ip route get {}). \
             {} retries until net.ipv4.tcp_syn_retries (now {}) runs out; a connect timeout \
             in the client fails faster.",
            c.remote,
            c.remote.ip(),
            holder_text(c.holder.as_ref()),
            sysctl_text(sys.tcp_syn_retries)
        ),
    };
    let evidence = Evidence::ConnectStall(ev::ConnectStall {
        remote: c.remote,
        local_address: c.local_ip,
        sockets: c.sockets,
        max_syn_retransmissions: c.max_retries,
        next_retry_ms: (c.next_retry_ms != u32::MAX).then_some(c.next_retry_ms),
        pid: c.holder.as_ref().map(|h| h.pid),
        comm: c.holder.as_ref().map(|h| h.comm.clone()),
        listener: listener.map(|l| l.local.clone()),
        listener_full: listener.map(|l| l.full),
        tcp_syn_retries: sys.tcp_syn_retries,
    });
    let (kind, mentions) = destination(c.holder.as_ref(), c.remote, Some(c.local_ip.to_string()));
    finding(
        scope,
        Severity::Warning,
        About::Destination(kind, mentions),
        destination_subject(c.holder.as_ref(), c.remote),
        summary,
        evidence,
        remedy,
    )
}

fn receive_stall(scope: &Scope<'_>, r: &ReceiveStall) -> Finding {
    let peers = r
        .peers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let how = if r.over_window {
        "that did not shrink over the window".to_owned()
    } else {
        format!("of at least {} bytes each", scope.t.recv_stall_bytes)
    };
    let summary = format!(
        "{} ESTABLISHED sockets hold {} unread bytes {how} (largest {}); peers {peers}",
        r.sockets, r.bytes, r.largest
    );
    let who = format!("{} (pid {})", r.holder.comm, r.holder.pid);
    let remedy = format!(
        "{who} stopped reading these connections: a blocked or busy worker, a lock, or a \
         downstream that does not drain. Its peers' writes stall once its receive buffers fill \
         (see send-queue-stall). Look at what its threads wait on (/proc/{}/task/*/stack, a \
         thread dump), and give its reads and writes timeouts.",
        r.holder.pid
    );
    let evidence = Evidence::ReceiveQueueStall(ev::ReceiveQueueStall {
        pid: r.holder.pid,
        comm: r.holder.comm.clone(),
        sockets: r.sockets,
        unread_bytes: r.bytes,
        largest_unread: r.largest,
        peers: r.peers.clone(),
        judged_over_window: r.over_window,
    });
    finding(
        scope,
        Severity::Warning,
        About::Process(&r.holder.comm, r.holder.pid),
        process_subject(&r.holder.comm, r.holder.pid),
        summary,
        evidence,
        remedy,
    )
}

fn send_stall(scope: &Scope<'_>, s: &SendStall) -> Finding {
    let mut summary = format!(
        "{} connections to {} cannot send ({} bytes waiting): ",
        s.sockets, s.remote, s.bytes
    );
    let mut causes = Vec::new();
    if s.zero_window > 0 {
        causes.push(format!(
            "{} probe a zero window (the peer is not reading)",
            s.zero_window
        ));
    }
    if s.retransmitting > 0 {
        causes.push(format!(
            "{} retransmit unacknowledged data, up to {} times (the peer or the path is not \
             acknowledging)",
            s.retransmitting, s.max_retrans
        ));
    }
    summary.push_str(&causes.join("; "));
    let peer_text = s.peer.as_ref().map(|p| {
        if p.half_open {
            "the peer's end is a request socket still in SYN_RECV: the handshake never \
             completed on the server's side (see half-open-handshakes)"
                .to_owned()
        } else if p.unread {
            format!(
                "the peer is {}, which is not reading (see receive-queue-stall)",
                if p.holders.is_empty() {
                    "a socket whose owner is not visible".to_owned()
                } else {
                    holders_text(&p.holders)
                }
            )
        } else {
            format!("the peer is {}", holders_text(&p.holders))
        }
    });
    if let Some(text) = &peer_text {
        let _ = write!(summary, "; {text}");
    }
    let remedy = if s.peer.as_ref().is_some_and(|p| p.half_open) {
        format!(
            "{} believes it is connected to {}, but the server never saw its final ACK (its \
             accept queue was full or the ACK was lost): these writes will never be read. Fix \
             the server (see half-open-handshakes); TCP_USER_TIMEOUT on the client bounds how \
             long it retransmits before giving up.",
            holder_text(s.holder.as_ref()),
            s.remote
        )
    } else if s.zero_window > 0 {
        format!(
            "The reader at {} is not reading: fix it (see receive-queue-stall). Meanwhile give \
             {}'s writes a timeout (SO_SNDTIMEO, TCP_USER_TIMEOUT) so that it fails instead of \
             blocking.",
            s.remote,
            holder_text(s.holder.as_ref())
        )
    } else {
        format!(
            "Segments to {} are not acknowledged: the peer is down or overloaded, or a \
             firewall or the path drops them. TCP_USER_TIMEOUT bounds how long {} retransmits \
             before the connection fails.",
            s.remote,
            holder_text(s.holder.as_ref())
        )
    };
    let evidence = Evidence::SendQueueStall(ev::SendQueueStall {
        remote: s.remote,
        sockets: s.sockets,
        unacknowledged_bytes: s.bytes,
        zero_window: s.zero_window,
        retransmitting: s.retransmitting,
        max_retransmissions: s.max_retrans,
        pid: s.holder.as_ref().map(|h| h.pid),
        comm: s.holder.as_ref().map(|h| h.comm.clone()),
        peer_processes: s.peer.as_ref().map(|p| p.holders.clone()),
        peer_not_reading: s.peer.as_ref().map(|p| p.unread),
        peer_half_open: s.peer.as_ref().map(|p| p.half_open),
    });
    let (kind, mut mentions) = destination(s.holder.as_ref(), s.remote, None);
    if let Some(p) = &s.peer {
        mentions.pids.extend(p.holders.iter().map(|h| h.pid));
        mentions
            .comms
            .extend(p.holders.iter().map(|h| h.comm.clone()));
    }
    finding(
        scope,
        Severity::Warning,
        About::Destination(kind, mentions),
        destination_subject(s.holder.as_ref(), s.remote),
        summary,
        evidence,
        remedy,
    )
}

/// Where the peers of `g` were: on this host (in the socket's own namespace), or in other
/// scanned namespaces, named.
fn whose_peers(g: &PeersGone) -> String {
    let quoted = |labels: &[String]| {
        labels
            .iter()
            .map(|l| format!("'{l}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (g.peer_netns.as_slice(), g.same_netns) {
        ([], _) => "whose peers on this host".to_owned(),
        ([one], 0) => format!("whose peers in network namespace '{one}'"),
        (labels, 0) => format!("whose peers in network namespaces {}", quoted(labels)),
        (labels, _) => format!(
            "whose peers on this host and in network namespace(s) {}",
            quoted(labels)
        ),
    }
}

/// Which ends of their connections the sockets of `g` are.
fn role_text(g: &PeersGone) -> String {
    match (g.accepted, g.connected) {
        (_, 0) => "it accepted".to_owned(),
        (0, _) => "it connected".to_owned(),
        (a, c) => format!("({a} accepted, {c} connected)"),
    }
}

/// What a connected end whose server is gone does to a client's pool.
fn pool_text(g: &PeersGone) -> &'static str {
    if g.connected > 0 {
        ", and a pool that hands one out hangs on its next request"
    } else {
        ""
    }
}

/// The keepalive sysctls as remedies quote them: how long the kernel takes to find a dead
/// peer of a socket with `SO_KEEPALIVE`.
fn keepalive_sysctls(sys: &Sysctls) -> String {
    format!(
        "net.ipv4.tcp_keepalive_time = {} s, tcp_keepalive_intvl = {} s, \
         tcp_keepalive_probes = {}",
        sysctl_text(sys.tcp_keepalive_time),
        sysctl_text(sys.tcp_keepalive_intvl),
        sysctl_text(sys.tcp_keepalive_probes)
    )
}

fn peer_gone(scope: &Scope<'_>, g: &PeersGone) -> Finding {
    let sys = &scope.view.sysctl;
    let h = &g.holder;
    let peers = g
        .peers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let more = if g.sockets > g.peers.len() as u64 {
        ", …"
    } else {
        ""
    };
    let whose = whose_peers(g);
    let role = role_text(g);
    let mut summary = format!(
        "{} ESTABLISHED sockets {role} {whose} no longer exist ({peers}{more}): their FIN or \
         RST was lost, nothing is in flight",
        g.sockets
    );
    if let Some(ms) = g.idle_ms {
        let _ = write!(
            summary,
            "; idle at least {}",
            format_age(f64::from(ms) / 1000.0)
        );
    }
    let keepalive = match g.keepalive {
        0 => "none has keepalive on".to_owned(),
        k if k == g.sockets => "all have keepalive on".to_owned(),
        k => format!("{k} have keepalive on"),
    };
    let _ = write!(summary, "; {keepalive}");
    let keepalive_text = keepalive_sysctls(sys);
    let mut remedy = format!(
        "{} (pid {}) waits on connections whose other end is gone: a reader without a \
         timeout blocks in read() forever{}. Give its reads a timeout (SO_RCVTIMEO, or its \
         library's read timeout), or set TCP_USER_TIMEOUT; ",
        h.comm,
        h.pid,
        pool_text(g)
    );
    let _ = if g.keepalive == 0 {
        write!(
            remedy,
            "turn SO_KEEPALIVE on, so the kernel probes idle connections and resets dead ones \
             ({keepalive_text}: a dead peer is found after time + intvl × probes)."
        )
    } else {
        write!(
            remedy,
            "{keepalive} ({keepalive_text}): the kernel resets those after time + intvl × \
             probes; lower them to free the sockets sooner."
        )
    };
    // A dry run first: without --yes, kill lists what it would destroy.
    let _ = match g.peers.as_slice() {
        [one] if g.sockets == 1 => write!(
            remedy,
            " To free it now: sockscope kill --pid {} --state established --peer {one}",
            h.pid
        ),
        [first, ..] => write!(
            remedy,
            " To free them now, one peer at a time: sockscope kill --pid {} --state \
             established --peer {first} (and so on; a dry run without --yes).",
            h.pid
        ),
        [] => Ok(()),
    };
    let evidence = Evidence::PeerGone(ev::PeerGone {
        pid: h.pid,
        comm: h.comm.clone(),
        sockets: g.sockets,
        accepted: g.accepted,
        connected: g.connected,
        peers: g.peers.clone(),
        locals: g.locals.clone(),
        idle_ms: g.idle_ms,
        keepalive: g.keepalive,
        peer_netns: g.peer_netns.clone(),
        tcp_keepalive_time: sys.tcp_keepalive_time,
        tcp_keepalive_intvl: sys.tcp_keepalive_intvl,
        tcp_keepalive_probes: sys.tcp_keepalive_probes,
    });
    finding(
        scope,
        Severity::Warning,
        About::Process(&h.comm, h.pid),
        process_subject(&h.comm, h.pid),
        summary,
        evidence,
        remedy,
    )
}

/// "noaccept (pid 812)", "nginx (pid 1) and 2 other processes", or what to do when the
/// owner is not visible.
fn owners_text(owners: &[Owner]) -> String {
    match owners {
        [] => "the owning process (not visible: run as root to see it)".to_owned(),
        [o] => format!("{} (pid {})", o.comm, o.pid),
        [o, _] => format!("{} (pid {}) and 1 other process", o.comm, o.pid),
        [o, rest @ ..] => format!(
            "{} (pid {}) and {} other processes",
            o.comm,
            o.pid,
            rest.len()
        ),
    }
}

/// A receive buffer at least this full (memory charged against its size, %) is full for
/// the next datagram: the kernel drops when the charge would pass the buffer.
const UDP_BUFFER_FULL_PCT: f64 = 90.0;

/// `udp-receive-drops`: one socket's drop counter rose in the window.
/// Warning when it dropped at all, critical from `udp_drops_crit` per second.
fn udp_drops(scope: &Scope<'_>, u: &UdpSocketView) -> Option<Finding> {
    if !u.dropped_in_window() {
        return None;
    }
    let severity = if u.drops_per_s.is_some_and(|r| r >= scope.t.udp_drops_crit) {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let dropped = u.drops_in_window.unwrap_or(0);
    let rmem_max = scope.ns.sysctl.rmem_max;
    let rcvbuf_text = u
        .rcvbuf
        .map_or_else(|| "an unknown buffer".to_owned(), |b| format!("{b} bytes"));
    let fill = u.buffer_fill_pct();
    let buffer_full = fill.is_some_and(|f| f >= UDP_BUFFER_FULL_PCT);
    let summary = format!(
        "{dropped} datagrams dropped in the window ({}; {} since the socket was created): \
         Recv-Q {} bytes, receive memory {} bytes of {rcvbuf_text}{}",
        rate_text(u.drops_per_s),
        u.drops_total.unwrap_or(0),
        u.recv_q,
        u.rmem_alloc
            .map_or_else(|| "unknown".to_owned(), |m| m.to_string()),
        if buffer_full { " (full)" } else { "" }
    );
    let owner = owners_text(&u.owners);
    let (reads, keeps) = if u.owners.len() > 1 {
        ("read", "keep")
    } else {
        ("reads", "keeps")
    };
    let buffer = format!(
        "SO_RCVBUF now {rcvbuf_text} as the kernel counts it (twice what was asked), \
         net.core.rmem_max = {}",
        sysctl_text(rmem_max)
    );
    let remedy = if buffer_full {
        format!(
            "The buffer is full: {owner} {reads} more slowly than datagrams arrive, and every \
             datagram that finds it full is lost. Make the reader faster or add readers (more \
             threads or processes on the same port with SO_REUSEPORT); a larger buffer \
             ({buffer}) only absorbs bursts."
        )
    } else {
        format!(
            "The buffer has room now, so {owner} {keeps} up on average but bursts overflow it \
             ({buffer}): raise SO_RCVBUF in the application (past net.core.rmem_max only \
             with SO_RCVBUFFORCE, or raise net.core.rmem_max first), or spread the load over \
             more readers with SO_REUSEPORT."
        )
    };
    let evidence = Evidence::UdpReceiveDrops(ev::UdpReceiveDrops::Socket(ev::UdpSocketDrops {
        local: u.local.clone(),
        peer: u.peer,
        drops_total: u.drops_total,
        drops_in_window: u.drops_in_window,
        drops_per_s: u.drops_per_s.map(round1),
        recv_q: u.recv_q,
        rmem_alloc: u.rmem_alloc,
        rcvbuf: u.rcvbuf,
        buffer_fill_pct: fill.map(round1),
        rmem_max,
        rmem_default: scope.ns.sysctl.rmem_default,
        owners: u.owners.clone(),
    }));
    let mentions = Mentions {
        ports: vec![u.port],
        paths: Vec::new(),
        comms: u.owners.iter().map(|o| o.comm.clone()).collect(),
        pids: u.owners.iter().map(|o| o.pid).collect(),
    };
    Some(finding(
        scope,
        severity,
        About::Socket(
            TargetKind::Socket {
                proto: Proto::Udp,
                local: u.local.clone(),
            },
            mentions,
        ),
        u.subject(),
        summary,
        evidence,
        remedy,
    ))
}

/// `udp-receive-drops` for the namespace: RcvbufErrors rose, and no socket kept in full
/// says it was the one (a socket left out by the limit, or one that came and went).
fn udp_namespace_drops(scope: &Scope<'_>) -> Option<Finding> {
    let udp = &scope.view.udp;
    let rate = udp
        .counter("RcvbufErrors")?
        .rate_per_s
        .filter(|&r| r > 0.0)?;
    if udp.sockets.iter().any(UdpSocketView::dropped_in_window) {
        return None;
    }
    let severity = if rate >= scope.t.udp_drops_crit {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let total = udp.counter("RcvbufErrors").and_then(|c| c.total);
    let summary = format!(
        "RcvbufErrors is rising ({}): datagrams are dropped on full receive buffers, but none \
         of the {} UDP sockets seen now dropped in the window",
        rate_text(Some(rate)),
        udp.socket_count
    );
    let remedy = format!(
        "A short-lived socket (a DNS client's, one per query) or one past the {} kept is \
         overflowing: `ss -uam` shows each socket's drops as d<N>. A larger default buffer \
         helps short bursts (net.core.rmem_default = {}, net.core.rmem_max = {}).",
        crate::model::UDP_LIMIT,
        sysctl_text(scope.ns.sysctl.rmem_default),
        sysctl_text(scope.ns.sysctl.rmem_max)
    );
    let evidence =
        Evidence::UdpReceiveDrops(ev::UdpReceiveDrops::Namespace(ev::UdpNamespaceDrops {
            rcvbuf_errors_total: total,
            rcvbuf_errors_per_s: round1(rate),
            udp_sockets: udp.socket_count,
            left_out: udp.left_out,
            rmem_default: scope.ns.sysctl.rmem_default,
            rmem_max: scope.ns.sysctl.rmem_max,
        }));
    Some(finding(
        scope,
        severity,
        About::Netns,
        format!("network namespace {}", scope.view.label),
        summary,
        evidence,
        remedy,
    ))
}

/// `ephemeral-port-exhaustion`: one local address uses most of the usable range towards
/// one destination.
fn exhaustion(scope: &Scope<'_>, u: &PortUseView) -> Option<Finding> {
    if u.range_size == 0 {
        return None;
    }
    let severity = level(u.pct_of_range, scope.t.port_use_warn, scope.t.port_use_crit)?;
    let tw_reuse = scope.ns.sysctl.tcp_tw_reuse;
    let (lo, hi) = scope.ns.sysctl.ip_local_port_range.unwrap_or((0, 0));
    let by_state = u
        .states
        .0
        .iter()
        .map(|(s, n)| format!("{n} {}", s.name()))
        .collect::<Vec<_>>()
        .join(", ");
    let holders = owners_text(&u.owners);
    let summary = format!(
        "{} of the {} usable ephemeral ports ({:.1} %) are in use from {} to {} ({by_state}), \
         held by {holders}; when they run out, connect() fails with EADDRNOTAVAIL",
        u.ports, u.range_size, u.pct_of_range, u.local, u.remote
    );
    let time_wait = u.states.get(crate::model::TcpState::TimeWait);
    let mut remedy = format!(
        "Reuse connections to {} (HTTP keep-alive, a connection pool) instead of opening one \
         per request; spread them over more source addresses; widen the range \
         (net.ipv4.ip_local_port_range = {lo}-{hi})",
        u.remote
    );
    if time_wait > 0 {
        let _ = write!(
            remedy,
            "; {time_wait} ports are held by TIME_WAIT: net.ipv4.tcp_tw_reuse = {} ({}) lets \
             connect() reuse them",
            sysctl_text(tw_reuse),
            match tw_reuse {
                Some(1) => "on already",
                Some(2) => "on for loopback only",
                Some(0) => "off: set 1",
                _ => "unknown",
            }
        );
    }
    remedy.push('.');
    let evidence = Evidence::EphemeralPortExhaustion(ev::PortExhaustion {
        local: u.local,
        remote: u.remote,
        ports_in_use: u.ports,
        range_size: u.range_size,
        pct_of_range: round1(u.pct_of_range),
        states: u.states.0.iter().map(|(s, &n)| (s.key(), n)).collect(),
        ip_local_port_range: (lo, hi),
        ip_local_reserved_ports: scope.ns.sysctl.ip_local_reserved_ports.clone(),
        tcp_tw_reuse: tw_reuse,
        owners: u.owners.clone(),
    });
    let subject = match u.owners.as_slice() {
        [o] => format!("{} → {}", process_subject(&o.comm, o.pid), u.remote),
        _ => format!("{} → {}", u.local, u.remote),
    };
    Some(finding(
        scope,
        severity,
        About::Destination(
            TargetKind::Destination {
                proto: Proto::Tcp,
                remote: u.remote.to_string(),
                local: Some(u.local.to_string()),
                pid: match u.owners.as_slice() {
                    [o] => Some(o.pid),
                    _ => None,
                },
            },
            Mentions {
                ports: vec![u.remote.port()],
                paths: Vec::new(),
                comms: u.owners.iter().map(|o| o.comm.clone()).collect(),
                pids: u.owners.iter().map(|o| o.pid).collect(),
            },
        ),
        subject,
        summary,
        evidence,
        remedy,
    ))
}

/// `conntrack-full`: warning from `conntrack_warn` % of `nf_conntrack_max`; critical while
/// the table refuses new connections (`drop`) or evicts entries for them (`early_drop`), or
/// fails inserts while that full.
fn conntrack_full(scope: &Scope<'_>) -> Option<Finding> {
    let c = scope.view.conntrack.as_ref()?;
    let full = c.fill_pct.is_some_and(|f| f >= scope.t.conntrack_warn);
    let failing = c.insert_failed_per_s.is_some_and(|r| r > 0.0);
    let severity = if c.dropping() || (full && failing) {
        Severity::Critical
    } else if full {
        Severity::Warning
    } else {
        return None;
    };
    let max = sysctl_text(c.max);
    let mut summary = format!(
        "The connection tracking table holds {} entries of nf_conntrack_max {max}",
        c.count
    );
    if let Some(fill) = c.fill_pct {
        let _ = write!(summary, " ({fill:.1} %)");
    }
    if c.dropping() {
        let _ = write!(
            summary,
            "; it is refusing new connections silently: drop {}, early_drop {}, insert_failed \
             {} (clients see timeouts, no RST)",
            rate_text(c.drop_per_s),
            rate_text(c.early_drop_per_s),
            rate_text(c.insert_failed_per_s)
        );
    }
    if let Some(ports) = &c.busiest_ports {
        let named = ports
            .busiest
            .iter()
            .map(|p| format!("{} {} port {}", p.entries, p.proto, p.port))
            .collect::<Vec<_>>()
            .join(", ");
        if !named.is_empty() {
            let of = if ports.complete { "" } else { "the first " };
            let _ = write!(summary, "; of {of}{} entries, {named}", ports.entries_read);
        }
    }
    let remedy = format!(
        "Raise net.netfilter.nf_conntrack_max (now {max}; the limit is the host's, set from \
         the initial namespace) and the hash size with it (nf_conntrack_buckets, now {}; \
         /sys/module/nf_conntrack/parameters/hashsize); shorten the timeouts that hold most \
         entries (`conntrack -L` shows them: net.netfilter.nf_conntrack_tcp_timeout_time_wait, \
         _established); or exempt traffic that needs no tracking with a `notrack` rule in the \
         raw table.",
        sysctl_text(c.buckets)
    );
    let evidence = Evidence::ConntrackFull(ev::ConntrackFull {
        count: c.count,
        max: c.max,
        buckets: c.buckets,
        fill_pct: c.fill_pct.map(round1),
        drop_total: c.drop_total,
        drop_per_s: c.drop_per_s.map(round1),
        early_drop_per_s: c.early_drop_per_s.map(round1),
        insert_failed_per_s: c.insert_failed_per_s.map(round1),
        busiest_ports: c.busiest_ports.clone(),
    });
    Some(finding(
        scope,
        severity,
        About::Netns,
        format!("netns {}", scope.view.label),
        summary,
        evidence,
        remedy,
    ))
}

/// `time-wait-overflow` (warning): `TCPTimeWaitOverflow` rose in the window.
fn time_wait_overflow(scope: &Scope<'_>) -> Option<Finding> {
    let v = scope.view;
    let rate = counter_rate(v, "TCPTimeWaitOverflow").filter(|&r| r > 0.0)?;
    let time_wait = v
        .sockstat
        .map_or_else(|| v.tcp_states.get(TcpState::TimeWait), |s| s.tw);
    let buckets = v.sysctl.tcp_max_tw_buckets;
    let tw_reuse = v.sysctl.tcp_tw_reuse;
    let busiest = v
        .time_wait_top
        .iter()
        .map(|g| {
            if g.incoming {
                format!("{} accepted by {}", g.sockets, g.address)
            } else {
                format!("{} to {}", g.sockets, g.address)
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut summary = format!(
        "Connections are closing without TIME_WAIT ({}): {time_wait} sockets hold it, \
         net.ipv4.tcp_max_tw_buckets is {}; old duplicate segments may now corrupt new \
         connections on the same ports",
        rate_text(Some(rate)),
        sysctl_text(buckets)
    );
    if !busiest.is_empty() {
        let _ = write!(summary, "; TIME_WAIT by server: {busiest}");
    }
    let remedy = format!(
        "Raise net.ipv4.tcp_max_tw_buckets (now {}; per namespace) to cover the connections \
         closed in a minute (TIME_WAIT lasts 60 s); reuse connections (keep-alive, a pool) \
         instead of one per request; for outgoing connections net.ipv4.tcp_tw_reuse = {} ({}) \
         lets connect() reuse a TIME_WAIT port safely.",
        sysctl_text(buckets),
        sysctl_text(tw_reuse),
        match tw_reuse {
            Some(1) => "on already",
            Some(2) => "on for loopback only: 1 covers every destination",
            Some(0) => "off: set 1",
            _ => "unknown",
        }
    );
    let evidence = Evidence::TimeWaitOverflow(ev::TimeWaitOverflow {
        overflow_per_s: round1(rate),
        overflow_total: counter_total(v, "TCPTimeWaitOverflow"),
        time_wait,
        tcp_max_tw_buckets: buckets,
        tcp_tw_reuse: tw_reuse,
        destinations: v.time_wait_top.clone(),
    });
    Some(finding(
        scope,
        Severity::Warning,
        About::Netns,
        format!("netns {}", v.label),
        summary,
        evidence,
        remedy,
    ))
}

/// `tcp-memory-pressure`: warning while TCP's memory is past `tcp_mem`'s pressure threshold
/// or `TCPMemoryPressures` rises; critical while the kernel aborts connections for memory
/// (`TCPAbortOnMemory`) or TCP's memory reaches `tcp_mem`'s maximum. Aborts that orphans
/// explain are left to `orphan-pressure`.
fn tcp_memory_pressure(scope: &Scope<'_>) -> Option<Finding> {
    let v = scope.view;
    let mem = v.sockstat.map(|s| s.mem);
    let tcp_mem = v.sysctl.tcp_mem;
    let pressures = counter_rate(v, "TCPMemoryPressures");
    let aborts = counter_rate(v, "TCPAbortOnMemory");
    let rising = |r: Option<f64>| r.is_some_and(|r| r > 0.0);
    let past = |at: usize| {
        mem.zip(tcp_mem)
            .is_some_and(|(m, limits)| limits[at] > 0 && m >= limits[at])
    };
    // Aborts with TCP's memory short of pressure and orphans near their limit are the
    // orphans' ("too many orphaned sockets"): `orphan-pressure` says so, with the rate.
    let orphans_cause = orphan_share(v).is_some_and(|(_, _, share)| share >= scope.t.orphan_warn)
        && !rising(pressures)
        && !past(1);
    if orphans_cause {
        return None;
    }
    let severity = if rising(aborts) || past(2) {
        Severity::Critical
    } else if rising(pressures) || past(1) {
        Severity::Warning
    } else {
        return None;
    };
    let pressure_pct = mem
        .zip(tcp_mem)
        .filter(|(_, l)| l[1] > 0)
        .map(|(m, l)| pct(m, l[1]));
    let orphans = v.sockstat.map(|s| s.orphan);
    let mut summary = format!(
        "TCP holds {} pages of memory (tcp_mem {}); TCPMemoryPressures {}, TCPAbortOnMemory {}",
        sysctl_text(mem),
        tcp_mem.map_or_else(
            || "not readable in this namespace".to_owned(),
            |[lo, pressure, max]| format!("{lo} {pressure} {max}"),
        ),
        rate_text(pressures),
        rate_text(aborts)
    );
    if rising(aborts) {
        summary.push_str(
            ": the kernel is resetting connections (\"out of memory -- consider tuning \
             tcp_mem\", or \"too many orphaned sockets\")",
        );
    }
    let remedy = format!(
        "Under pressure TCP shrinks every socket's buffers; past the maximum it resets \
         connections. Find the sockets that hold memory (`ss -tm`: large Recv-Q of readers that \
         stalled, Send-Q to peers that do not read); raise net.ipv4.tcp_mem (the host's: \
         pages, min pressure max) if the load is real; orphaned sockets ({}, tcp_max_orphans {}) \
         count too: shorten net.ipv4.tcp_fin_timeout (now {}).",
        sysctl_text(orphans),
        sysctl_text(v.sysctl.tcp_max_orphans),
        sysctl_text(v.sysctl.tcp_fin_timeout)
    );
    let evidence = Evidence::TcpMemoryPressure(ev::TcpMemoryPressure {
        mem_pages: mem,
        tcp_mem,
        pressure_pct: pressure_pct.map(round1),
        memory_pressures_per_s: pressures.map(round1),
        abort_on_memory_per_s: aborts.map(round1),
        orphans,
        tcp_max_orphans: v.sysctl.tcp_max_orphans,
    });
    Some(finding(
        scope,
        severity,
        About::Netns,
        format!("netns {}", v.label),
        summary,
        evidence,
        remedy,
    ))
}

/// `silent-peer`: connections a process accepted whose peers sent nothing since the
/// handshake, keepalive off, for at least `silent_peer_after`.
fn silent_peer(scope: &Scope<'_>, s: &SilentPeers) -> Finding {
    let sys = &scope.view.sysctl;
    let h = &s.holder;
    let peers = s
        .top_peers
        .iter()
        .map(|(ip, n)| format!("{ip} ({n})"))
        .collect::<Vec<_>>()
        .join(", ");
    let locals = s
        .locals
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let summary = format!(
        "{} ESTABLISHED connections accepted on {locals} whose peers sent nothing since the \
         handshake (top peers: {peers}), idle {} to {}; keepalive off: if a peer is gone, \
         nothing will tell",
        s.sockets,
        format_age(f64::from(s.shortest_idle_ms) / 1000.0),
        format_age(f64::from(s.longest_idle_ms) / 1000.0),
    );
    let mut remedy = format!(
        "{} (pid {}) holds connections whose peers never sent a byte: a peer that gave up (a \
         proxy's timeout, a client that vanished with its FIN or RST lost) leaves it blocked \
         in read() forever. Give its reads a timeout (SO_RCVTIMEO, or its library's read or \
         header timeout), or turn SO_KEEPALIVE on, so the kernel probes idle connections and \
         resets dead ones ({}: a dead peer is found after time + intvl × probes; \
         TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT set them per socket).",
        h.comm,
        h.pid,
        keepalive_sysctls(sys)
    );
    if let Some((first, _)) = s.top_peers.first() {
        // A dry run first: without --yes, kill lists what it would destroy.
        let _ = write!(
            remedy,
            " To free them now, one peer at a time (check first that the peer is gone): \
             sockscope kill --pid {} --state established --peer {first} (a dry run without \
             --yes).",
            h.pid
        );
    }
    let evidence = Evidence::SilentPeer(ev::SilentPeer {
        pid: h.pid,
        comm: h.comm.clone(),
        sockets: s.sockets,
        top_peers: s
            .top_peers
            .iter()
            .map(|&(address, sockets)| ev::PeerCount { address, sockets })
            .collect(),
        locals: s.locals.clone(),
        longest_idle_ms: s.longest_idle_ms,
        shortest_idle_ms: s.shortest_idle_ms,
        keepalive: 0,
        silent_peer_after_ms: u64::try_from(scope.t.silent_peer_after.as_millis())
            .unwrap_or(u64::MAX),
        tcp_keepalive_time: sys.tcp_keepalive_time,
        tcp_keepalive_intvl: sys.tcp_keepalive_intvl,
        tcp_keepalive_probes: sys.tcp_keepalive_probes,
    });
    finding(
        scope,
        Severity::Warning,
        About::Process(&h.comm, h.pid),
        process_subject(&h.comm, h.pid),
        summary,
        evidence,
        remedy,
    )
}
