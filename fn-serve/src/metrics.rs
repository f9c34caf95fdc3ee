//! [`Metrics`]: request counts by endpoint and status, latency histograms, images
//! predicted, the model version loaded; registered with `prometheus-client` through
//! [`service::metrics`], which encodes them.
//!
//! Probes from kubelet / queue-proxy (`User-Agent: kube-probe/...`) are not counted.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use service::metrics::{Counter, Family, Gauge, Histogram, HistogramFamily, Labels, Registry, add};

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The service's metrics and the registry that exposes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels<2>, Counter>,
    latency: HistogramFamily<1>,
    images: Counter,
    batches: Counter,
    model_version: Gauge,
    model_loads: Counter,
    model_load_failures: Counter,
    ready: Gauge,
    inflight_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut r = Registry::default();
        let latency: HistogramFamily<1> = Family::new_with_constructor(latency_histogram);
        r.register(
            "fn_serve_request_duration_seconds",
            "Request latency by endpoint.",
            latency.clone(),
        );
        Self {
            requests: add(
                &mut r,
                "fn_serve_requests",
                "HTTP requests by endpoint and status.",
            ),
            latency,
            images: add(&mut r, "fn_serve_images_predicted", "Images predicted."),
            batches: add(
                &mut r,
                "fn_serve_model_calls",
                "Model calls (a dynamic batch is one call).",
            ),
            model_version: add(
                &mut r,
                "fn_serve_model_version",
                "Version of the model being served (0 = none).",
            ),
            model_loads: add(
                &mut r,
                "fn_serve_model_loads",
                "Models loaded (start and hot swaps).",
            ),
            model_load_failures: add(
                &mut r,
                "fn_serve_model_load_failures",
                "Failed model loads or refreshes.",
            ),
            ready: add(&mut r, "fn_serve_ready", "1 when a model is loaded."),
            inflight_bytes: add(
                &mut r,
                "fn_serve_inflight_input_bytes",
                "Decoded request input bytes held now.",
            ),
            registry: r,
        }
    }
}

impl Metrics {
    /// Records one request.
    pub fn observe(&self, endpoint: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&[
                ("endpoint", endpoint.to_owned()),
                ("status", status.to_string()),
            ])
            .inc();
        self.latency
            .get_or_create(&[("endpoint", endpoint.to_owned())])
            .observe(seconds);
    }

    /// Counts images predicted in one model call.
    pub fn predicted(&self, images: usize) {
        self.images.inc_by(images as u64);
        self.batches.inc();
    }

    /// Records a successful load of model `version`.
    pub fn model_loaded(&self, version: u64) {
        self.model_loads.inc();
        self.model_version
            .set(i64::try_from(version).unwrap_or(i64::MAX));
    }

    /// Records a failed load or refresh.
    pub fn model_load_failed(&self) {
        self.model_load_failures.inc();
    }

    /// Sets the scrape-time gauges and encodes everything.
    pub fn render(&self, ready: bool, inflight_bytes: usize) -> String {
        self.set_now(ready, inflight_bytes);
        service::metrics::encode(&self.registry)
    }

    /// The `/metrics` response (see [`Metrics::render`]).
    pub fn response(&self, ready: bool, inflight_bytes: usize) -> Response {
        self.set_now(ready, inflight_bytes);
        service::metrics::response(&self.registry)
    }

    fn set_now(&self, ready: bool, inflight_bytes: usize) {
        self.ready.set(i64::from(ready));
        self.inflight_bytes
            .set(i64::try_from(inflight_bytes).unwrap_or(i64::MAX));
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
