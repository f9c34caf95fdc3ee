//! [`Metrics`]: request counts by endpoint and status, latency histograms, images
//! predicted, the model version loaded; rendered in the Prometheus text format.
//!
//! Probes from kubelet / queue-proxy (`User-Agent: kube-probe/...`) are not counted.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct PerEndpoint {
    by_status: BTreeMap<u16, u64>,
    latency: Histogram,
}

/// The service's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    endpoints: Mutex<BTreeMap<String, PerEndpoint>>,
    images: AtomicU64,
    batches: AtomicU64,
    model_version: AtomicU64,
    model_loads: AtomicU64,
    model_load_failures: AtomicU64,
}

impl Metrics {
    /// Records one request.
    pub fn observe(&self, endpoint: &str, status: u16, seconds: f64) {
        let mut map = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        let e = match map.get_mut(endpoint) {
            Some(e) => e,
            None => map.entry(endpoint.to_owned()).or_default(),
        };
        *e.by_status.entry(status).or_default() += 1;
        let h = &mut e.latency;
        if let Some(i) = BUCKETS.iter().position(|&b| seconds <= b) {
            h.counts[i] += 1;
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// Counts images predicted in one model call.
    pub fn predicted(&self, images: usize) {
        self.images.fetch_add(images as u64, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a successful load of model `version`.
    pub fn model_loaded(&self, version: u64) {
        self.model_loads.fetch_add(1, Ordering::Relaxed);
        self.model_version.store(version, Ordering::Relaxed);
    }

    /// Records a failed load or refresh.
    pub fn model_load_failed(&self) {
        self.model_load_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self, ready: bool, inflight_bytes: usize) -> String {
        let mut out = String::with_capacity(4096);
        let map = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP fn_serve_requests_total HTTP requests by endpoint and status.\n");
        out.push_str("# TYPE fn_serve_requests_total counter\n");
        for (ep, e) in map.iter() {
            for (status, n) in &e.by_status {
                let _ = writeln!(
                    out,
                    "fn_serve_requests_total{{endpoint=\"{ep}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP fn_serve_request_duration_seconds Request latency by endpoint.\n");
        out.push_str("# TYPE fn_serve_request_duration_seconds histogram\n");
        for (ep, e) in map.iter() {
            let h = &e.latency;
            let mut cum = 0;
            for (b, c) in BUCKETS.iter().zip(h.counts) {
                cum += c;
                let _ = writeln!(
                    out,
                    "fn_serve_request_duration_seconds_bucket{{endpoint=\"{ep}\",le=\"{b}\"}} {cum}"
                );
            }
            let _ = writeln!(
                out,
                "fn_serve_request_duration_seconds_bucket{{endpoint=\"{ep}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "fn_serve_request_duration_seconds_sum{{endpoint=\"{ep}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "fn_serve_request_duration_seconds_count{{endpoint=\"{ep}\"}} {}",
                h.count
            );
        }
        drop(map);
        let gauges = [
            (
                "fn_serve_images_predicted_total",
                "counter",
                "Images predicted.",
                self.images.load(Ordering::Relaxed),
            ),
            (
                "fn_serve_model_calls_total",
                "counter",
                "Model calls (a dynamic batch is one call).",
                self.batches.load(Ordering::Relaxed),
            ),
            (
                "fn_serve_model_version",
                "gauge",
                "Version of the model being served (0 = none).",
                self.model_version.load(Ordering::Relaxed),
            ),
            (
                "fn_serve_model_loads_total",
                "counter",
                "Models loaded (start and hot swaps).",
                self.model_loads.load(Ordering::Relaxed),
            ),
            (
                "fn_serve_model_load_failures_total",
                "counter",
                "Failed model loads or refreshes.",
                self.model_load_failures.load(Ordering::Relaxed),
            ),
            (
                "fn_serve_ready",
                "gauge",
                "1 when a model is loaded.",
                u64::from(ready),
            ),
            (
                "fn_serve_inflight_input_bytes",
                "gauge",
                "Decoded request input bytes held now.",
                inflight_bytes as u64,
            ),
        ];
        for (name, kind, help, v) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        out
    }
}

/// Middleware: times the request and counts it under its route pattern.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let probe = req
        .headers()
        .get(axum::http::header::USER_AGENT)
        .is_some_and(|ua| ua.as_bytes().starts_with(b"kube-probe/"));
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let start = Instant::now();
    let resp = next.run(req).await;
    if !probe && let Some(ep) = endpoint {
        metrics.observe(&ep, resp.status().as_u16(), start.elapsed().as_secs_f64());
    }
    resp
}
