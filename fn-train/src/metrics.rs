//! Prometheus counters of the node, rendered as text at `/metrics`.
//!
//! Only aggregate numbers: job outcomes, seconds trained, examples and batches seen.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

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

    fn index(self) -> usize {
        self as usize
    }
}

/// The node's counters; lock-free, shared through `AppState`.
#[derive(Debug, Default)]
pub struct Metrics {
    jobs: [AtomicU64; 8],
    train_micros: AtomicU64,
    examples: AtomicU64,
    batches: AtomicU64,
    running: AtomicU64,
    shard_examples: AtomicU64,
}

impl Metrics {
    /// Counts one request or job that ended with `outcome`.
    pub fn job_finished(&self, outcome: Outcome) {
        self.jobs[outcome.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// How many jobs ended with `outcome` so far.
    pub fn jobs(&self, outcome: Outcome) -> u64 {
        self.jobs[outcome.index()].load(Ordering::Relaxed)
    }

    /// Adds the wall time of a training run.
    pub fn add_training_time(&self, seconds: f64) {
        let micros = (seconds.max(0.0) * 1e6).round() as u64;
        self.train_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Adds examples processed (a batch's worth, per batch).
    pub fn add_examples(&self, n: u64) {
        self.examples.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a trained batch.
    pub fn add_batch(&self) {
        self.batches.fetch_add(1, Ordering::Relaxed);
    }

    /// Batches trained so far.
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Sets whether a job is running.
    pub fn set_running(&self, running: bool) {
        self.running.store(u64::from(running), Ordering::Relaxed);
    }

    /// Records the size of the loaded shard.
    pub fn set_shard_examples(&self, n: u64) {
        self.shard_examples.store(n, Ordering::Relaxed);
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(2048);
        let _ = writeln!(
            s,
            "# HELP fn_train_jobs_total Training requests by outcome."
        );
        let _ = writeln!(s, "# TYPE fn_train_jobs_total counter");
        for o in Outcome::ALL {
            let _ = writeln!(
                s,
                "fn_train_jobs_total{{outcome=\"{}\"}} {}",
                o.label(),
                self.jobs(o)
            );
        }
        let secs = self.train_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let gauges: [(&str, &str, &str, String); 5] = [
            (
                "fn_train_training_seconds_total",
                "counter",
                "Wall seconds spent training.",
                format!("{secs:.6}"),
            ),
            (
                "fn_train_examples_total",
                "counter",
                "Training examples processed (epochs x examples).",
                self.examples.load(Ordering::Relaxed).to_string(),
            ),
            (
                "fn_train_batches_total",
                "counter",
                "Training batches processed.",
                self.batches().to_string(),
            ),
            (
                "fn_train_job_running",
                "gauge",
                "1 while a training job runs.",
                self.running.load(Ordering::Relaxed).to_string(),
            ),
            (
                "fn_train_shard_examples",
                "gauge",
                "Examples in this node's shard.",
                self.shard_examples.load(Ordering::Relaxed).to_string(),
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        s
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
        assert!(text.contains("fn_train_training_seconds_total 1.500000\n"));
    }
}
