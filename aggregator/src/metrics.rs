//! The aggregator's `/metrics`: model downloads counted as they happen, and the round
//! history, version and current global model's scores read from the store at each scrape
//! (they survive restarts there, so they are not kept twice). Encoded by
//! `prometheus-client` through [`service::metrics`].

use std::sync::Arc;

use axum::response::Response;
use service::metrics::{
    Collector, ConstCounter, ConstGauge, Counter, DescriptorEncoder, EncodeMetric, Registry, add,
};

use crate::history::RoundStatus;
use crate::rounds::Coordinator;
use crate::store::ModelStore;

/// Counters updated by the HTTP handlers, and the registry that exposes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Model downloads requested.
    pub model_requests: Counter,
    /// Model requests answered 304.
    pub model_not_modified: Counter,
    /// Model bytes sent.
    pub model_bytes: Counter,
}

impl Metrics {
    /// Metrics of `store` (and of `coordinator`'s running flag, in cluster mode).
    pub fn new(store: Arc<ModelStore>, coordinator: Option<Arc<Coordinator>>) -> Self {
        let mut r = Registry::default();
        r.register_collector(Box::new(StoreCollector { store, coordinator }));
        Self {
            model_requests: add(
                &mut r,
                "aggregator_model_requests",
                "Model downloads requested.",
            ),
            model_not_modified: add(
                &mut r,
                "aggregator_model_not_modified",
                "Model requests answered 304.",
            ),
            model_bytes: add(&mut r, "aggregator_model_bytes", "Model bytes sent."),
            registry: r,
        }
    }

    /// The `/metrics` response.
    pub fn response(&self) -> Response {
        service::metrics::response(&self.registry)
    }
}

/// Reads the store at scrape time.
#[derive(Debug)]
struct StoreCollector {
    store: Arc<ModelStore>,
    coordinator: Option<Arc<Coordinator>>,
}

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let history = self.store.history();
        let rounds = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "aggregator_rounds",
            "Rounds recorded, by status.",
            None,
            rounds.metric_type(),
        )?;
        for (label, status) in [
            ("completed", RoundStatus::Completed),
            ("failed", RoundStatus::Failed),
        ] {
            let n = history.iter().filter(|r| r.status == status).count();
            let labels = [("status", label)];
            ConstCounter::new(n as u64).encode(family.encode_family(&labels)?)?;
        }
        let version = self
            .store
            .latest_version()
            .map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX));
        gauge(
            &mut encoder,
            "aggregator_model_version",
            "Current global model version.",
            ConstGauge::new(version),
        )?;
        if let Some(g) = history.iter().rev().find_map(|r| r.global.as_ref()) {
            gauge(
                &mut encoder,
                "aggregator_global_accuracy",
                "Test accuracy of the current global model.",
                ConstGauge::new(f64::from(g.accuracy)),
            )?;
            gauge(
                &mut encoder,
                "aggregator_global_loss",
                "Test loss of the current global model.",
                ConstGauge::new(f64::from(g.loss)),
            )?;
        }
        let running = self.coordinator.as_ref().is_some_and(|c| c.is_running());
        gauge(
            &mut encoder,
            "aggregator_round_running",
            "1 while a round runs.",
            ConstGauge::new(i64::from(running)),
        )
    }
}

fn gauge<N>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    g: ConstGauge<N>,
) -> Result<(), std::fmt::Error>
where
    ConstGauge<N>: EncodeMetric,
{
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}
