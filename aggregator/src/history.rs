//! The round history: one [`RoundRecord`] per round, serialised as one JSON line each in the
//! store's `history.jsonl`, and served as-is by `GET /v1/rounds`.

use serde::{Deserialize, Serialize};

/// What happened to a round.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RoundStatus {
    /// Round 0: the initial global model (version 0) before any training.
    Initial,
    /// Aggregated and stored as a new version.
    Completed,
    /// Not enough usable updates (or failures not accepted): the previous version stays.
    Failed,
}

/// What happened to one client in a round.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum ClientStatus {
    /// The update passed validation and went into the aggregate.
    Accepted,
    /// The client replied, but validation refused the update.
    Rejected {
        /// Why, in words.
        reason: String,
    },
    /// No usable reply: transport error, HTTP error status, unparsable body.
    Failed {
        /// Why, in words.
        reason: String,
    },
    /// No reply within the client timeout or the round timeout.
    Timeout {
        /// The budget that ran out, seconds.
        after_seconds: f64,
    },
}

/// One client's part in a round.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ClientRecord {
    /// The client's configured id.
    pub client_id: String,
    /// Accepted, rejected, failed or timed out.
    #[serde(flatten)]
    pub status: ClientStatus,
    /// Examples the client trained on (its FedAvg weight).
    #[serde(default)]
    pub num_examples: u64,
    /// Training loss per local epoch, as the client reported it.
    #[serde(default)]
    pub epoch_loss: Vec<f32>,
    /// Training accuracy per local epoch, as the client reported it.
    #[serde(default)]
    pub epoch_accuracy: Vec<f32>,
    /// Seconds the client spent training.
    #[serde(default)]
    pub train_seconds: f64,
    /// Seconds from sending the request to holding the parsed reply.
    #[serde(default)]
    pub round_trip_seconds: f64,
    /// Bytes of the update received.
    #[serde(default)]
    pub update_bytes: u64,
    /// L2 norm of (update - global), when it could be computed.
    #[serde(default)]
    pub update_norm: Option<f32>,
    /// The FedAvg weight the update was aggregated with, when it differs from the claim
    /// (capped relative to the round's median claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u64>,
    /// The norm its change was clipped to, when it was longer than the round allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clipped_to: Option<f32>,
}

/// The new global model's centralised evaluation on the aggregator's test set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct GlobalMetrics {
    /// Mean cross-entropy.
    pub loss: f32,
    /// Fraction correct, 0..1.
    pub accuracy: f32,
    /// Fraction correct per class, 0..1.
    pub per_class_accuracy: Vec<f32>,
    /// Test examples used.
    pub examples: usize,
}

/// Where a round's wall time went, seconds.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct RoundTimings {
    /// From start to the record being written.
    pub total: f64,
    /// Waiting for clients (the slowest accepted client's round trip).
    pub clients: f64,
    /// The slowest accepted client's own training time.
    pub training: f64,
    /// Client wait not spent training: model fetch, upload, parsing, queueing.
    pub transfer: f64,
    /// Validation of all updates.
    pub validation: f64,
    /// Aggregation.
    pub aggregation: f64,
    /// Evaluation on the test set.
    pub evaluation: f64,
    /// Serialising and durably storing the new version.
    pub store: f64,
}

/// One round, as recorded in the history.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RoundRecord {
    /// Round number, 0 for the initial model.
    pub round: u64,
    /// Initial, completed or failed.
    pub status: RoundStatus,
    /// The global version the round started from (None for round 0).
    pub base_version: Option<u64>,
    /// The version the round produced (None when it failed).
    pub version: Option<u64>,
    /// Strategy name, e.g. `fedavg`.
    pub strategy: String,
    /// Unix time the round started, milliseconds.
    pub started_unix_ms: u64,
    /// Per-client outcomes.
    pub clients: Vec<ClientRecord>,
    /// Evaluation of the new global model (of the initial model for round 0).
    pub global: Option<GlobalMetrics>,
    /// Where the time went.
    pub timings: RoundTimings,
    /// Why the round failed, when it did.
    pub failure: Option<String>,
}

impl RoundRecord {
    /// A record with no client, metric or timing, for stores written outside a round
    /// (tests, crash drills): round 0 is `Initial`; a later round is `Completed` with a
    /// version and `Failed` (with `failure`) without one.
    pub fn bare(round: u64, version: Option<u64>, failure: &str) -> Self {
        let status = match (round, version) {
            (0, _) => RoundStatus::Initial,
            (_, Some(_)) => RoundStatus::Completed,
            _ => RoundStatus::Failed,
        };
        Self {
            round,
            status,
            base_version: None,
            version,
            strategy: "fedavg".into(),
            started_unix_ms: unix_ms(),
            clients: vec![],
            global: None,
            timings: RoundTimings::default(),
            failure: (status == RoundStatus::Failed).then(|| failure.to_string()),
        }
    }

    /// Every number of the record, mutably: JSON has no NaN or infinity (serde_json writes
    /// `null`, which then does not parse), so each must be finite to be stored.
    fn numbers_mut(&mut self) -> Vec<&mut f64> {
        let t = &mut self.timings;
        let mut out = vec![
            &mut t.total,
            &mut t.clients,
            &mut t.training,
            &mut t.transfer,
            &mut t.validation,
            &mut t.aggregation,
            &mut t.evaluation,
            &mut t.store,
        ];
        for c in &mut self.clients {
            out.push(&mut c.train_seconds);
            out.push(&mut c.round_trip_seconds);
            if let ClientStatus::Timeout { after_seconds } = &mut c.status {
                out.push(after_seconds);
            }
        }
        out
    }

    /// The f32 numbers of the record, mutably (see [`numbers_mut`](Self::numbers_mut)).
    fn numbers32_mut(&mut self) -> Vec<&mut f32> {
        let mut out = Vec::new();
        if let Some(g) = &mut self.global {
            out.push(&mut g.loss);
            out.push(&mut g.accuracy);
            out.extend(g.per_class_accuracy.iter_mut());
        }
        for c in &mut self.clients {
            out.extend(c.epoch_loss.iter_mut());
            out.extend(c.epoch_accuracy.iter_mut());
            out.extend(c.update_norm.iter_mut());
            out.extend(c.clipped_to.iter_mut());
        }
        out
    }

    /// True when every number is finite, so the record survives a JSON round trip.
    pub fn is_finite(&self) -> bool {
        let mut copy = self.clone();
        copy.numbers_mut().iter().all(|v| v.is_finite())
            && copy.numbers32_mut().iter().all(|v| v.is_finite())
    }

    /// Replaces every non-finite number by the largest finite one of its sign (NaN by 0),
    /// so a diverged model's infinite loss is stored as a huge one instead of making the
    /// history unreadable.
    pub fn make_finite(&mut self) {
        for v in self.numbers_mut() {
            if !v.is_finite() {
                *v = if v.is_nan() {
                    0.0
                } else {
                    f64::MAX.copysign(*v)
                };
            }
        }
        for v in self.numbers32_mut() {
            if !v.is_finite() {
                *v = if v.is_nan() {
                    0.0
                } else {
                    f32::MAX.copysign(*v)
                };
            }
        }
    }

    /// Number of accepted client updates.
    pub fn accepted(&self) -> usize {
        self.clients
            .iter()
            .filter(|c| c.status == ClientStatus::Accepted)
            .count()
    }
}

/// Longest reason (failure, rejection) kept in a record, characters.
pub const MAX_REASON_CHARS: usize = 300;

/// `text` fit to be stored and served: at most [`MAX_REASON_CHARS`] characters, control
/// characters replaced, marked when cut.
pub fn bounded_text(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_REASON_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(MAX_REASON_CHARS).is_some() {
        out.push_str("...");
    }
    out
}

/// A client-reported per-epoch series fit to be stored: kept only when it has at most
/// `max_len` entries, all finite (JSON has no NaN: one would make the history unreadable).
pub fn bounded_series(series: &[f32], max_len: usize) -> Vec<f32> {
    if series.len() <= max_len && series.iter().all(|v| v.is_finite()) {
        series.to_vec()
    } else {
        Vec::new()
    }
}

/// A client-reported duration fit to be stored: finite and not negative, else 0.
pub fn bounded_seconds(seconds: f64) -> f64 {
    if seconds.is_finite() && seconds >= 0.0 {
        seconds
    } else {
        0.0
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_data_is_bounded_before_it_is_kept() {
        let long = "x".repeat(5_000_000);
        let b = bounded_text(&long);
        assert_eq!(b.len(), MAX_REASON_CHARS + 3);
        assert_eq!(bounded_text("a\nb\u{1b}[31m"), "a?b?[31m");
        assert_eq!(bounded_series(&[0.5, 0.25], 2), vec![0.5, 0.25]);
        assert!(bounded_series(&vec![0.5; 1_000_000], 2).is_empty());
        assert!(bounded_series(&[f32::NAN], 2).is_empty());
        assert_eq!(bounded_seconds(f64::INFINITY), 0.0);
        assert_eq!(bounded_seconds(-1.0), 0.0);
        assert_eq!(bounded_seconds(1.5), 1.5);
    }
}
