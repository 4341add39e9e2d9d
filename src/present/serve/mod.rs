//! The Prometheus exporter face: `GET /metrics` (text format 0.0.4), `/` and `/healthz`.
//!
//! ```text
//!  scrape ─┐                       ┌─ fresh (< interval old)? ── the cached exposition
//!  scrape ─┼─> Exporter::latest() ─┤
//!  scrape ─┘                       └─ stale: one thread collects (the others wait for it),
//!                                     analyses [previous, new] and renders once
//! ```
//!
//! Collection runs on demand, at most once per `--interval`, and never in two threads at
//! once: the source of snapshots sits behind its own lock, and whoever holds it re-checks
//! the cache before collecting. The previous snapshot is kept so that rates and growth
//! (drops per second, a growing CLOSE_WAIT leak) cover the time between two collections.
//! The exposition is rendered once per collection and shared (`Arc<str>`) by every scrape
//! that reads it. This module never reads the kernel: it is handed a source of snapshots
//! ([`OnDemand`]), and the window a rate spans is [`Span::PREVIOUS`]. The exposition itself
//! is a face of its own ([`crate::present::prometheus`]), which `report` writes too.

mod http;

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub use http::{BindError, Body, Limits, Request, Response, bind};

use crate::analyze::Settings;
use crate::analyze::window::{Span, Window};
use crate::present::prometheus::{MetricsOptions, render_metrics};
use crate::source::OnDemand;

/// `Content-Type` of the exposition: the Prometheus text format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exporter's state: the cached result of the last collection, and the right to collect.
pub struct Exporter {
    settings: Settings,
    options: MetricsOptions,
    interval: Duration,
    collecting: Mutex<Collecting>,
    latest: Mutex<Option<Arc<Scrape>>>,
}

/// What only the collecting thread touches.
struct Collecting {
    source: Box<dyn OnDemand>,
    window: Window,
}

/// The outcome of one collection, shared by every request until the next.
#[derive(Debug)]
pub struct Scrape {
    /// When the collection started: it stays fresh for `interval` from then.
    pub started: Instant,
    /// The exposition, or why there is none.
    pub result: Result<Arc<str>, String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic anywhere ends the process (see main), so a poisoned lock is never observed
    // by a live server; taking the data is still the right reading of one.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Exporter {
    /// Scrapes within `source`'s interval of a collection share it.
    pub fn new(source: Box<dyn OnDemand>, settings: Settings, options: MetricsOptions) -> Exporter {
        Exporter {
            settings,
            options,
            interval: source.interval(),
            collecting: Mutex::new(Collecting {
                source,
                window: Window::new(Span::PREVIOUS),
            }),
            latest: Mutex::new(None),
        }
    }

    /// The result of a collection at most `interval` old, collecting first if there is none.
    pub fn latest(&self) -> Arc<Scrape> {
        if let Some(scrape) = self.fresh() {
            return scrape;
        }
        let mut collecting = lock(&self.collecting);
        // Another thread may have collected while this one waited for the lock.
        if let Some(scrape) = self.fresh() {
            return scrape;
        }
        let scrape = Arc::new(collecting.collect(&self.settings, self.options));
        *lock(&self.latest) = Some(Arc::clone(&scrape));
        scrape
    }

    fn fresh(&self) -> Option<Arc<Scrape>> {
        lock(&self.latest)
            .as_ref()
            .filter(|s| s.started.elapsed() < self.interval)
            .map(Arc::clone)
    }

    /// Answer one request: the routes of the exporter.
    pub fn respond(&self, request: &Request) -> Response {
        let route = match request.path.as_str() {
            "/metrics" => Route::Metrics,
            "/healthz" => Route::Health,
            "/" => Route::Index,
            _ => return Response::text(404, "not found; the metrics are at /metrics\n"),
        };
        if !request.is_get() {
            return Response {
                allow: Some("GET, HEAD"),
                ..Response::text(405, "only GET and HEAD are served\n")
            };
        }
        match route {
            Route::Index => Response {
                status: 200,
                content_type: "text/html; charset=utf-8",
                allow: None,
                body: Body::Static(INDEX),
            },
            Route::Metrics => match &self.latest().result {
                Ok(text) => Response {
                    status: 200,
                    content_type: CONTENT_TYPE,
                    allow: None,
                    body: Body::Shared(Arc::clone(text)),
                },
                Err(e) => Response::text(503, format!("collection failed: {e}\n")),
            },
            Route::Health => match &self.latest().result {
                Ok(_) => Response::text(200, "ok\n"),
                Err(e) => Response::text(503, format!("collection failed: {e}\n")),
            },
        }
    }
}

enum Route {
    Index,
    Metrics,
    Health,
}

const INDEX: &str = concat!(
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">",
    "<title>sockscope exporter</title></head>\n<body>\n<h1>sockscope exporter</h1>\n",
    "<p>Full accept queues, listener drops, CLOSE_WAIT leaks and descriptor use, for ",
    "Prometheus.</p>\n<ul>\n<li><a href=\"/metrics\">/metrics</a>: the metrics ",
    "(Prometheus text format 0.0.4)</li>\n<li><a href=\"/healthz\">/healthz</a>: 200 while ",
    "collection works</li>\n</ul>\n<p>sockscope ",
    env!("CARGO_PKG_VERSION"),
    "</p>\n</body>\n</html>\n"
);

impl Collecting {
    fn collect(&mut self, settings: &Settings, options: MetricsOptions) -> Scrape {
        let started = Instant::now();
        let snapshot = match self.source.take() {
            Ok(snapshot) => snapshot,
            // The previous snapshot stays: rates resume across a failed collection.
            Err(e) => {
                return Scrape {
                    started,
                    result: Err(e.to_string()),
                };
            }
        };
        self.window.push(snapshot);
        let result = self
            .window
            .analyze(settings)
            .map(|analysis| Arc::from(render_metrics(&analysis, &options)))
            .ok_or_else(|| "no snapshot to analyse".to_owned());
        Scrape { started, result }
    }
}

/// Serve `exporter` on `listener` until accepting connections fails for good.
pub fn serve(listener: &TcpListener, exporter: Exporter, limits: Limits) -> std::io::Result<()> {
    let exporter = Arc::new(exporter);
    let handler: Arc<http::Handler> = Arc::new(move |r: &Request| exporter.respond(r));
    http::run(listener, &handler, limits)
}

/// The line `serve` prints once it listens; tests and scripts read the port from it.
pub fn listening_line(addr: SocketAddr) -> String {
    format!("sockscope: serving metrics on http://{addr}/metrics")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Snapshot;
    use crate::source::SourceError;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn recording(name: &str) -> Vec<Snapshot> {
        let path = format!(
            "{}/tests/fixtures/recordings/{name}.ndjson",
            env!("CARGO_MANIFEST_DIR")
        );
        let file = std::fs::File::open(&path).expect("the fixture exists");
        crate::recording::read(std::io::BufReader::new(file))
            .expect("the fixture reads")
            .snapshots
    }

    /// The recording's snapshots in turn, failing once they run out, counting collections.
    struct Script {
        snapshots: Vec<Snapshot>,
        taken: Arc<AtomicUsize>,
        interval: Duration,
    }

    impl OnDemand for Script {
        fn take(&mut self) -> Result<Snapshot, SourceError> {
            let i = self.taken.fetch_add(1, Ordering::SeqCst);
            // Slow enough that concurrent requests really do overlap the collection.
            std::thread::sleep(Duration::from_millis(50));
            self.snapshots
                .get(i)
                .cloned()
                .ok_or_else(|| SourceError::Exhausted("the recording ran out".to_owned()))
        }

        fn interval(&self) -> Duration {
            self.interval
        }
    }

    fn exporter(name: &str, interval: Duration) -> (Arc<Exporter>, Arc<AtomicUsize>) {
        let taken = Arc::new(AtomicUsize::new(0));
        let script = Script {
            snapshots: recording(name),
            taken: Arc::clone(&taken),
            interval,
        };
        let options = MetricsOptions { top_processes: 100 };
        let exporter = Exporter::new(Box::new(script), Settings::default(), options);
        (Arc::new(exporter), taken)
    }

    fn get(path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
        }
    }

    fn body(r: &Response) -> &str {
        match &r.body {
            Body::Static(s) => s,
            Body::Owned(s) => s,
            Body::Shared(s) => s,
        }
    }

    #[test]
    fn concurrent_scrapes_share_one_collection() {
        let (exporter, taken) = exporter("incidents", Duration::from_secs(60));
        let bodies: Vec<Arc<str>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..32)
                .map(|_| scope.spawn(|| exporter.latest().result.clone().expect("collected")))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a scrape"))
                .collect()
        });
        assert_eq!(taken.load(Ordering::SeqCst), 1, "one collection for all");
        assert!(bodies.iter().all(|b| Arc::ptr_eq(b, &bodies[0])));
    }

    #[test]
    fn a_stale_cache_collects_again_and_rates_span_the_two_collections() {
        let (exporter, taken) = exporter("incidents", Duration::ZERO);
        let first = exporter.respond(&get("/metrics"));
        let second = exporter.respond(&get("/metrics"));
        assert_eq!(taken.load(Ordering::SeqCst), 2);
        let findings = |r: &Response| {
            body(r)
                .lines()
                .filter(|l| l.starts_with("sockscope_findings{id=\"listen-drops\""))
                .count()
        };
        // listen-drops needs a rate: only the second collection has a window.
        assert_eq!((findings(&first), findings(&second)), (0, 1));
    }

    #[test]
    fn routes() {
        let (exporter, _) = exporter("healthy", Duration::from_secs(60));
        let r = exporter.respond(&get("/metrics"));
        assert_eq!((r.status, r.content_type), (200, CONTENT_TYPE));
        assert!(body(&r).contains("# TYPE sockscope_tcp_sockets gauge\n"));
        let r = exporter.respond(&get("/healthz"));
        assert_eq!((r.status, body(&r)), (200, "ok\n"));
        let r = exporter.respond(&get("/"));
        assert_eq!(r.status, 200);
        assert!(body(&r).contains("href=\"/metrics\""));
        assert_eq!(exporter.respond(&get("/nope")).status, 404);
        let post = Request {
            method: "POST".into(),
            path: "/metrics".into(),
        };
        let r = exporter.respond(&post);
        assert_eq!((r.status, r.allow), (405, Some("GET, HEAD")));
    }

    #[test]
    fn a_failing_collection_makes_health_and_metrics_unavailable() {
        // Two snapshots in the recording, then the source fails.
        let (exporter, _) = exporter("healthy", Duration::ZERO);
        for _ in 0..2 {
            assert_eq!(exporter.respond(&get("/healthz")).status, 200);
        }
        let r = exporter.respond(&get("/healthz"));
        assert_eq!(r.status, 503);
        assert_eq!(body(&r), "collection failed: the recording ran out\n");
        assert_eq!(exporter.respond(&get("/metrics")).status, 503);
    }
}
