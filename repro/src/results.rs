//! Everything a run measured, written as `results.json` beside the report: the report is
//! rendered from this alone, so every number in it comes from the run that made it.

use aggregator::history::RoundRecord;
use serde::{Deserialize, Serialize};

use crate::docker::CpuStat;
use crate::machine::Machine;
use crate::plan::{Plan, RoundsRun};

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    /// The machine and the commit.
    pub machine: Machine,
    /// The command line, as typed.
    pub command: String,
    /// The settings.
    pub plan: Plan,
    /// UTC start time, RFC 3339.
    pub started_utc: String,
    /// Wall time of the whole run, seconds.
    pub wall_seconds: f64,
    /// 1/5/15-minute load averages at the start.
    pub load_start: [f64; 3],
    /// ... and at the end.
    pub load_end: [f64; 3],
    /// How the cold starts were made (`docker run` of which images, or processes).
    pub isolation: String,
    /// Whether Figures 6, 7 and the load test ran in containers or processes.
    #[serde(default)]
    pub runner: Runner,
    /// Figures 4 and 5.
    pub rounds: Vec<RoundsResult>,
    /// Figure 6.
    pub train: Option<TrainResult>,
    /// Figure 7.
    pub serve: Option<ServeResult>,
    /// The load test.
    pub load: Option<LoadResult>,
    /// Parts that failed, with the reason (the report says so instead of a figure).
    pub failures: Vec<(String, String)>,
}

/// Where the instances of Figures 6, 7 and the load test ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runner {
    /// `docker run` of the fedge images under the pod limits.
    #[default]
    Containers,
    /// Child processes of `repro`, without pod limits (no usable Docker engine or images).
    Processes,
}

/// One federated run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoundsResult {
    /// Its settings.
    pub run: RoundsRun,
    /// The store's history, round 0 (the initial model) first.
    pub history: Vec<RoundRecord>,
    /// Why it ended: rounds exhausted, or early stop.
    pub stopped: String,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Examples each client held.
    pub client_examples: Vec<u64>,
    /// Digits each client held (sorted, distinct).
    pub client_labels: Vec<Vec<u8>>,
}

impl RoundsResult {
    /// Best global accuracy (0..1) and the round that reached it.
    pub fn best(&self) -> Option<(u64, f32)> {
        self.history
            .iter()
            .filter(|r| r.round > 0 && r.version.is_some())
            .filter_map(|r| r.global.as_ref().map(|g| (r.round, g.accuracy)))
            .fold(None, |best, (round, acc)| match best {
                Some((_, b)) if b >= acc => best,
                _ => Some((round, acc)),
            })
    }

    /// Global accuracy after the last round.
    pub fn last(&self) -> Option<(u64, f32)> {
        self.history
            .iter()
            .rev()
            .find(|r| r.round > 0 && r.version.is_some())
            .and_then(|r| r.global.as_ref().map(|g| (r.round, g.accuracy)))
    }
}

/// Figure 6: one row per local-epoch count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainResult {
    /// Examples in the shard.
    pub shard: usize,
    /// Rows, epochs ascending.
    pub rows: Vec<TrainRow>,
    /// The image used (id and creation time), or the process fallback.
    pub image: String,
}

/// Figure 6 at one epoch count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainRow {
    /// Local epochs.
    pub epochs: usize,
    /// Warm: POST /train to a running container, seconds.
    pub warm_seconds: f64,
    /// Training time fn-train reported for the warm request, seconds.
    pub warm_train_seconds: f64,
    /// Cold: `docker run` to the reply of the first POST /train, seconds.
    pub cold_seconds: f64,
    /// Of which: `docker run` to ready (shard loaded), seconds.
    pub cold_ready_seconds: f64,
    /// Training time fn-train reported for the cold request, seconds.
    pub cold_train_seconds: f64,
}

/// Request encodings of Figure 7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Codec {
    /// KServe V2 JSON, FP32 pixels in 0..1 (as a Python client sends them).
    JsonFp32,
    /// KServe V2 binary tensor data extension, UINT8 pixels.
    BinaryUint8,
}

impl Codec {
    /// Both.
    pub const ALL: [Codec; 2] = [Codec::JsonFp32, Codec::BinaryUint8];

    /// Label in tables and legends.
    pub fn label(self) -> &'static str {
        match self {
            Codec::JsonFp32 => "JSON FP32",
            Codec::BinaryUint8 => "binary UINT8",
        }
    }
}

/// Figure 7.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServeResult {
    /// Points, per codec and size.
    pub points: Vec<ServePoint>,
    /// The image used (id and creation time).
    pub image: String,
    /// Model version served (from the Figure 4 IID run, or a fresh model).
    pub model: String,
}

/// Figure 7 at one size and codec.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServePoint {
    /// Encoding.
    pub codec: Codec,
    /// Images per request.
    pub images: usize,
    /// Request body bytes.
    pub body_bytes: usize,
    /// Median `docker run` to the reply of the first request, seconds.
    pub cold_seconds: f64,
    /// Median warm response, seconds.
    pub warm_seconds: f64,
    /// Slowest warm response, seconds.
    pub warm_max_seconds: f64,
    /// Cold starts and warm requests measured.
    pub reps: (usize, usize),
    /// Non-200 answers seen (any is a failure of the point).
    pub errors: usize,
}

/// The load test.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadResult {
    /// The generator and its version.
    pub tool: String,
    /// One row per (images, connections).
    pub rows: Vec<LoadRow>,
}

/// One load run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadRow {
    /// Images per request.
    pub images: usize,
    /// Open connections.
    pub connections: usize,
    /// Seconds.
    pub seconds: u64,
    /// Requests completed.
    pub requests: u64,
    /// Requests per second.
    pub rps: f64,
    /// Latency percentiles, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Non-2xx answers.
    pub non_2xx: u64,
    /// Socket errors (connect, read, write, timeout).
    pub socket_errors: u64,
    /// The container's CPU throttling during the run.
    pub throttling: Option<CpuStat>,
}
