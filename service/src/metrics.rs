//! `/metrics` for every fedge service: typed metrics in a `prometheus-client` registry,
//! encoded by that library, never written by hand.
//!
//! Each service builds one [`Registry`] at start-up, registers its counters, gauges and
//! histograms (cheap atomic handles it keeps and updates), and answers `GET /metrics`
//! with [`response`]. The body is the OpenMetrics text format, so the response says so:
//! Prometheus picks its parser from the content type, and OpenMetrics names a counter's
//! family without `_total` (`# TYPE fn_serve_requests counter`) while its samples keep it
//! (`fn_serve_requests_total{...} 3`). Register counters *without* the `_total` suffix;
//! the encoder appends it, so the series names stay the ones dashboards and tests use.
//! A histogram bucket's `le` label comes first (`_bucket{le="0.5",endpoint="/x"}`), before
//! the family's labels: label order carries no meaning in either format.
//!
//! Values known only at scrape time (the aggregator's round history) are a [`Collector`]
//! registered with [`Registry::register_collector`].

use std::sync::atomic::AtomicU64;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub use prometheus_client::collector::Collector;
pub use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
pub use prometheus_client::metrics::counter::{ConstCounter, Counter};
pub use prometheus_client::metrics::family::Family;
pub use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
pub use prometheus_client::metrics::histogram::Histogram;
pub use prometheus_client::registry::Registry;

/// The content type of [`response`]'s body.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A counter of a fractional quantity (seconds).
pub type FloatCounter = Counter<f64, AtomicU64>;

/// A gauge of a fractional quantity (accuracy, loss).
pub type FloatGauge = Gauge<f64, AtomicU64>;

/// A label set of `N` fixed names, e.g. `[("outcome", "ok".into())]`.
pub type Labels<const N: usize> = [(&'static str, String); N];

/// A histogram per label set, all with the same bucket bounds.
pub type HistogramFamily<const N: usize> = Family<Labels<N>, Histogram, fn() -> Histogram>;

/// Registers a new `M` under `name` and returns the handle the service keeps (handles
/// share their value with the registry's copy).
pub fn add<M>(registry: &mut Registry, name: &str, help: &str) -> M
where
    M: prometheus_client::registry::Metric + Default + Clone,
{
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}

/// The registry encoded as OpenMetrics text.
pub fn encode(registry: &Registry) -> String {
    let mut text = String::with_capacity(4096);
    // Writing into a String cannot fail; a Collector's own error would only cut the body.
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, registry) {
        tracing::error!(error = %e, "encoding /metrics failed");
    }
    text
}

/// The `GET /metrics` response: the registry's text with [`CONTENT_TYPE`].
pub fn response(registry: &Registry) -> Response {
    let mut resp = (StatusCode::OK, encode(registry)).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gain_total_and_labels_keep_their_order() {
        let mut r = Registry::default();
        let jobs = Family::<Labels<2>, Counter>::default();
        r.register("x_jobs", "Jobs.", jobs.clone());
        let secs = FloatCounter::default();
        r.register("x_seconds", "Seconds.", secs.clone());
        let g = Gauge::<i64>::default();
        r.register("x_version", "Version.", g.clone());
        jobs.get_or_create(&[("endpoint", "/a".into()), ("status", "200".into())])
            .inc_by(2);
        secs.inc_by(1.5);
        g.set(-1);
        let text = encode(&r);
        assert!(text.contains("# TYPE x_jobs counter\n"), "{text}");
        assert!(
            text.contains("x_jobs_total{endpoint=\"/a\",status=\"200\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("x_seconds_total 1.5\n"), "{text}");
        assert!(text.contains("x_version -1\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn histograms_list_every_bucket_and_inf() {
        let mut r = Registry::default();
        let h: HistogramFamily<1> = Family::new_with_constructor(|| Histogram::new([0.0005, 1.0]));
        r.register("x_duration_seconds", "Latency.", h.clone());
        h.get_or_create(&[("endpoint", "/a".into())]).observe(0.3);
        let text = encode(&r);
        for line in [
            "x_duration_seconds_bucket{le=\"0.0005\",endpoint=\"/a\"} 0\n",
            "x_duration_seconds_bucket{le=\"1.0\",endpoint=\"/a\"} 1\n",
            "x_duration_seconds_bucket{le=\"+Inf\",endpoint=\"/a\"} 1\n",
            "x_duration_seconds_count{endpoint=\"/a\"} 1\n",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }

    #[tokio::test]
    async fn the_response_carries_the_openmetrics_content_type() {
        let resp = response(&Registry::default());
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], CONTENT_TYPE);
    }
}
