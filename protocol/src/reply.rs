//! The reply's metadata: fn-train writes it into the safetensors header of the update,
//! the aggregator reads it back and checks it against what it asked.

use std::collections::BTreeMap;

/// Metadata keys of the reply's safetensors header.
pub mod keys {
    /// The node's client id.
    pub const CLIENT_ID: &str = "fedge.client_id";
    /// The round trained.
    pub const ROUND: &str = "fedge.round";
    /// The request's nonce.
    pub const NONCE: &str = "fedge.nonce";
    /// Examples in the shard (the FedAvg weight).
    pub const NUM_EXAMPLES: &str = "fedge.num_examples";
    /// JSON array of per-epoch mean losses.
    pub const EPOCH_LOSS: &str = "fedge.epoch_loss";
    /// JSON array of per-epoch accuracies.
    pub const EPOCH_ACCURACY: &str = "fedge.epoch_accuracy";
    /// Seconds spent in `fit`.
    pub const TRAIN_SECONDS: &str = "fedge.train_seconds";
}

/// What a node reports beside its weights.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyMeta {
    /// `fedge.client_id`.
    pub client_id: String,
    /// `fedge.round`.
    pub round: u64,
    /// `fedge.nonce`.
    pub nonce: String,
    /// `fedge.num_examples`.
    pub num_examples: u64,
    /// `fedge.epoch_loss` (absent reads as empty).
    pub epoch_loss: Vec<f32>,
    /// `fedge.epoch_accuracy` (absent reads as empty).
    pub epoch_accuracy: Vec<f32>,
    /// `fedge.train_seconds` (absent or unreadable reads as 0).
    pub train_seconds: f64,
}

/// Why a reply's metadata is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaError(pub String);

impl std::fmt::Display for MetaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MetaError {}

impl ReplyMeta {
    /// The metadata entries, as they go into the safetensors header.
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let list = |v: &[f32]| serde_json::to_string(v).unwrap_or_else(|_| "[]".to_owned());
        BTreeMap::from([
            (keys::CLIENT_ID.to_owned(), self.client_id.clone()),
            (keys::ROUND.to_owned(), self.round.to_string()),
            (keys::NONCE.to_owned(), self.nonce.clone()),
            (keys::NUM_EXAMPLES.to_owned(), self.num_examples.to_string()),
            (keys::EPOCH_LOSS.to_owned(), list(&self.epoch_loss)),
            (keys::EPOCH_ACCURACY.to_owned(), list(&self.epoch_accuracy)),
            (
                keys::TRAIN_SECONDS.to_owned(),
                format!("{:.6}", self.train_seconds),
            ),
        ])
    }

    /// Reads the entries back.
    ///
    /// # Errors
    /// [`MetaError`] naming a missing id, round, nonce or example count, a non-integer
    /// count, or a list that is not a JSON array of numbers.
    pub fn from_metadata(extra: &BTreeMap<String, String>) -> Result<Self, MetaError> {
        let get = |key: &str| {
            extra
                .get(key)
                .ok_or_else(|| MetaError(format!("metadata lacks `{key}`")))
        };
        let num = |key: &str| -> Result<u64, MetaError> {
            get(key)?
                .parse()
                .map_err(|_| MetaError(format!("metadata `{key}` is not an integer")))
        };
        let list = |key: &str| -> Result<Vec<f32>, MetaError> {
            match extra.get(key) {
                None => Ok(Vec::new()),
                Some(s) => serde_json::from_str(s)
                    .map_err(|_| MetaError(format!("metadata `{key}` is not a list"))),
            }
        };
        Ok(Self {
            client_id: get(keys::CLIENT_ID)?.clone(),
            round: num(keys::ROUND)?,
            nonce: get(keys::NONCE)?.clone(),
            num_examples: num(keys::NUM_EXAMPLES)?,
            epoch_loss: list(keys::EPOCH_LOSS)?,
            epoch_accuracy: list(keys::EPOCH_ACCURACY)?,
            train_seconds: extra
                .get(keys::TRAIN_SECONDS)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0.0),
        })
    }
}
