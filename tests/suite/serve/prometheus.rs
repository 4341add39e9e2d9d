//! A stock Prometheus scraping `sockscope serve`: the values arrive through its query API,
//! the example alerts fire on the scenarios they are written for, and every expression of
//! the example dashboard evaluates.
//!
//! Prometheus runs inside the test's namespace on 127.0.0.1, with a temporary config and
//! data directory, a 1 s scrape and evaluation interval, and the example rules with their
//! `for:` durations cut to zero (a test cannot wait the minutes they ask for; the rules'
//! own unit tests cover the durations). It is stopped by its pid.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::client::{Serve, eventually, exchange, tool_or_skip, url_encode};
use super::{LEAK, NOACCEPT};
use crate::util::netns::{Netns, netns_or_skip};

/// Where Prometheus listens inside the namespace: nothing else is there to take the port.
const PROMETHEUS: &str = "127.0.0.1:9090";

struct Prometheus {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Prometheus {
    fn start(ns: &Netns, target: SocketAddr) -> Prometheus {
        let dir = std::env::temp_dir().join(format!(
            "sockscope-test-{}-prometheus-{}",
            std::process::id(),
            target.port()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).expect("a temporary directory");
        std::fs::write(dir.join("rules.yml"), rules_without_for()).expect("writing rules");
        std::fs::write(
            dir.join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {rules}\n\
                 scrape_configs:\n  - job_name: sockscope\n    static_configs:\n      - targets: ['{target}']\n",
                rules = dir.join("rules.yml").display()
            ),
        )
        .expect("writing the config");
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("a log file");
        let child = ns
            .command("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={PROMETHEUS}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log)
            .spawn()
            .expect("spawning prometheus");
        Prometheus {
            child,
            dir,
            addr: PROMETHEUS.parse().expect("an address"),
        }
    }

    /// Fail the test with what Prometheus logged.
    fn fail(&self, what: &str) -> ! {
        let log = std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default();
        panic!("{what}\nprometheus log:\n{log}");
    }

    /// GET `path` from Prometheus' API, parsed; `None` while it is not answering.
    fn api(&self, serve: &Serve, path: &str) -> Option<Value> {
        let stream = serve.connect_to(self.addr).ok()?;
        let reply = exchange(stream, "GET", path).ok()?;
        if reply.status != 200 {
            return None;
        }
        serde_json::from_str(&reply.body).ok()
    }

    /// The result vector of an instant query, `None` until the query succeeds.
    fn query(&self, serve: &Serve, expr: &str) -> Option<Vec<Value>> {
        let answer = self.api(serve, &format!("/api/v1/query?query={}", url_encode(expr)))?;
        (answer["status"] == "success").then(|| {
            answer["data"]["result"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
    }

    /// The single value of `expr` once it has one.
    fn value(&self, serve: &Serve, expr: &str) -> Option<String> {
        let result = self.query(serve, expr)?;
        match result.as_slice() {
            [one] => one["value"][1].as_str().map(str::to_owned),
            _ => None,
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn asset(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The example rules with every `for:` set to zero.
fn rules_without_for() -> String {
    asset("prometheus/sockscope.rules.yml")
        .lines()
        .map(|line| match line.split_once("for: ") {
            Some((indent, _)) if indent.trim().is_empty() => format!("{indent}for: 0s"),
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How long Prometheus gets to show each expected thing.
const WAIT: Duration = Duration::from_secs(90);

#[test]
fn prometheus_scrapes_serve_and_the_example_alerts_fire() {
    let test = "prometheus_scrapes_serve_and_the_example_alerts_fire";
    if !tool_or_skip(test, "prometheus") {
        return;
    }
    let Some(mut ns) = netns_or_skip(test) else {
        return;
    };
    ns.lab(&NOACCEPT);
    let leaky = ns.lab(&LEAK).pid("leaky");
    let fdhog = ns
        .lab(&["fds", "--limit", "256", "--open", "240"])
        .pid("fdhog");
    let Some(serve) = Serve::start(&ns, test, &["--interval", "500ms"]) else {
        return;
    };
    let prometheus = Prometheus::start(&ns, serve.addr);
    the_values_arrive(&prometheus, &serve, leaky);
    the_alerts_fire(&prometheus, &serve, fdhog);
    every_panel_evaluates(&prometheus, &serve);
}

/// The full listener's queue and the leak, through Prometheus' query API.
fn the_values_arrive(prometheus: &Prometheus, serve: &Serve, leaky: u32) {
    let queue = eventually(WAIT, || {
        prometheus.value(
            serve,
            "sockscope_listener_accept_queue{local=\"127.0.0.1:5000\",comm=\"noaccept\"}",
        )
    });
    if queue.as_deref() != Some("9") {
        prometheus.fail(&format!("accept queue through Prometheus: {queue:?}"));
    }
    let close_wait = eventually(WAIT, || {
        prometheus.value(
            serve,
            &format!("sockscope_process_close_wait{{comm=\"leaky\",pid=\"{leaky}\"}}"),
        )
    });
    if close_wait.as_deref() != Some("200") {
        prometheus.fail(&format!("CLOSE_WAIT through Prometheus: {close_wait:?}"));
    }
    let up = prometheus.value(serve, "up{job=\"sockscope\"}");
    assert_eq!(up.as_deref(), Some("1"), "the scrape succeeds");
}

/// The example alerts, each on its scenario.
fn the_alerts_fire(prometheus: &Prometheus, serve: &Serve, fdhog: u32) {
    let expected = [
        ("SockscopeListenerFull", "local", "127.0.0.1:5000"),
        ("SockscopeListenerDrops", "local", "127.0.0.1:5000"),
        ("SockscopeCloseWaitLeak", "comm", "leaky"),
        ("SockscopeFdExhaustion", "comm", "fdhog"),
    ];
    let firing = eventually(WAIT, || {
        let answer = prometheus.api(serve, "/api/v1/alerts")?;
        let alerts = answer["data"]["alerts"].as_array()?.clone();
        let fired = |(name, label, value): &(&str, &str, &str)| {
            alerts.iter().any(|a| {
                a["state"] == "firing"
                    && a["labels"]["alertname"] == *name
                    && a["labels"][*label] == *value
            })
        };
        expected.iter().all(fired).then_some(alerts)
    });
    let Some(alerts) = firing else {
        let now = prometheus.api(serve, "/api/v1/alerts");
        prometheus.fail(&format!("expected {expected:?} firing; alerts: {now:?}"));
    };
    let fd_alert = alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == "SockscopeFdExhaustion")
        .expect("the fd alert");
    assert_eq!(fd_alert["labels"]["pid"], fdhog.to_string());
    assert!(
        !alerts
            .iter()
            .any(|a| a["labels"]["alertname"] == "SockscopeCloseWaitLeakGrowing"),
        "a leak that holds steady is not growing: {alerts:?}"
    );
}

/// Every expression of the example dashboard evaluates, and the panels about these
/// scenarios have data.
fn every_panel_evaluates(prometheus: &Prometheus, serve: &Serve) {
    let dashboard: Value =
        serde_json::from_str(&asset("grafana/sockscope.json")).expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let with_data = [
        "Critical findings",
        "Full listeners",
        "CLOSE_WAIT sockets",
        "Findings",
        "Accept-queue fill",
        "Listener drops",
        "Accept queue and backlog",
        "CLOSE_WAIT by process (top 10)",
        "Descriptor use by process (top 10)",
        "TCP sockets by state",
        "Kernel TCP counters",
        "Collection time",
    ];
    for title in with_data {
        assert!(
            panels.iter().any(|p| p["title"] == title),
            "no panel {title:?}"
        );
    }
    for panel in panels {
        let title = panel["title"].as_str().expect("a title");
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"]
                .as_str()
                .expect("an expression")
                .replace("$instance", ".*")
                .replace("$netns", ".*")
                .replace("$__rate_interval", "1m");
            let result = eventually(WAIT, || {
                let result = prometheus.query(serve, &expr)?;
                (!with_data.contains(&title) || !result.is_empty()).then_some(result)
            });
            if result.is_none() {
                prometheus.fail(&format!("dashboard panel {title:?}: {expr} gives no data"));
            }
        }
    }
}
