//! The node's Prometheus metrics at `/metrics`, registered with `prometheus-client` through
//! [`service::metrics`], which encodes them.
//!
//! Only aggregate numbers: job outcomes, seconds trained, examples and batches seen.

use axum::response::Response;
use service::metrics::{Counter, Family, FloatCounter, Gauge, Labels, Registry, add};

/// How a training job ended (or why a request never became one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Trained and replied.
    Ok,
    /// The caller disconnected; training stopped between batches.
    ClientDisconnected,
    /// The request's deadline passed.
    Deadline,
    /// SIGTERM's grace period ran out.
    Shutdown,
    /// Refused with 429: another job was running.
    Busy,
    /// The request or its model was refused (4xx).
    Invalid,
    /// The model could not be fetched (502).
    FetchFailed,
    /// An internal failure (500).
    Error,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Outcome; 8] = [
        Outcome::Ok,
        Outcome::ClientDisconnected,
        Outcome::Deadline,
        Outcome::Shutdown,
        Outcome::Busy,
        Outcome::Invalid,
        Outcome::FetchFailed,
        Outcome::Error,
    ];

    /// The Prometheus label value.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ClientDisconnected => "client_disconnected",
            Outcome::Deadline => "deadline",
            Outcome::Shutdown => "shutdown",
            Outcome::Busy => "busy",
            Outcome::Invalid => "invalid",
            Outcome::FetchFailed => "fetch_failed",
            Outcome::Error => "error",
        }
    }

    fn labels(self) -> Labels<1> {
        [("outcome", self.label().to_owned())]
    }
}

/// The node's metrics (atomic handles shared with the registry), in `AppState`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    jobs: Family<Labels<1>, Counter>,
    training_seconds: FloatCounter,
    examples: Counter,
    batches: Counter,
    running: Gauge,
    shard_examples: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut r = Registry::default();
        let jobs: Family<Labels<1>, Counter> =
            add(&mut r, "fn_train_jobs", "Training requests by outcome.");
        // Every outcome is listed from the start, at 0, so a rate() sees the first one.
        for o in Outcome::ALL {
            drop(jobs.get_or_create(&o.labels()));
        }
        Self {
            jobs,
            training_seconds: add(
                &mut r,
                "fn_train_training_seconds",
                "Wall seconds spent training.",
            ),
            examples: add(
                &mut r,
                "fn_train_examples",
                "Training examples processed (epochs x examples).",
            ),
            batches: add(&mut r, "fn_train_batches", "Training batches processed."),
            running: add(
                &mut r,
                "fn_train_job_running",
                "1 while a training job runs.",
            ),
            shard_examples: add(
                &mut r,
                "fn_train_shard_examples",
                "Examples in this node's shard.",
            ),
            registry: r,
        }
    }
}

impl Metrics {
    /// Counts one request or job that ended with `outcome`.
    pub fn job_finished(&self, outcome: Outcome) {
        self.jobs.get_or_create(&outcome.labels()).inc();
    }

    /// How many jobs ended with `outcome` so far.
    pub fn jobs(&self, outcome: Outcome) -> u64 {
        self.jobs.get_or_create(&outcome.labels()).get()
    }

    /// Adds the wall time of a training run.
    pub fn add_training_time(&self, seconds: f64) {
        self.training_seconds.inc_by(seconds.max(0.0));
    }

    /// Adds examples processed (a batch's worth, per batch).
    pub fn add_examples(&self, n: u64) {
        self.examples.inc_by(n);
    }

    /// Counts a trained batch.
    pub fn add_batch(&self) {
        self.batches.inc();
    }

    /// Batches trained so far.
    pub fn batches(&self) -> u64 {
        self.batches.get()
    }

    /// Sets whether a job is running.
    pub fn set_running(&self, running: bool) {
        self.running.set(i64::from(running));
    }

    /// Records the size of the loaded shard.
    pub fn set_shard_examples(&self, n: u64) {
        self.shard_examples
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The metrics as OpenMetrics text.
    pub fn render(&self) -> String {
        service::metrics::encode(&self.registry)
    }

    /// The `/metrics` response.
    pub fn response(&self) -> Response {
        service::metrics::response(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_lists_every_outcome_and_counts() {
        let m = Metrics::default();
        m.job_finished(Outcome::Busy);
        m.job_finished(Outcome::Busy);
        m.add_training_time(1.5);
        let text = m.render();
        assert!(text.contains("fn_train_jobs_total{outcome=\"busy\"} 2\n"));
        assert!(text.contains("fn_train_jobs_total{outcome=\"ok\"} 0\n"));
        assert!(text.contains("fn_train_training_seconds_total 1.5\n"));
        assert_eq!(m.jobs(Outcome::Busy), 2);
    }
}
