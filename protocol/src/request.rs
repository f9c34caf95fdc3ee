//! The training request: the aggregator writes it, fn-train reads it.

use serde::{Deserialize, Serialize};

/// The JSON body of `POST /train` (and the data of a `dev.fedge.train.requested` event).
///
/// `O` is the optimizer: the aggregator builds requests with `engine::OptimizerConfig`
/// (`{"type":"adam","lr":0.001,...}`); fn-train parses with the default
/// `serde_json::Value` to report a bad optimizer field by name before converting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainRequest<O = serde_json::Value> {
    /// Federated round number.
    pub round: u64,
    /// Opaque per-invocation value the reply must echo (`fedge.nonce`).
    #[serde(default)]
    pub nonce: String,
    /// The global model to start from.
    pub model: ModelRef,
    /// Local epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// The client optimizer.
    pub optimizer: O,
    /// Seed of the client's shuffling and dropout.
    #[serde(default)]
    pub seed: u64,
    /// FedProx proximal coefficient.
    #[serde(default)]
    pub proximal_mu: Option<f32>,
    /// Time budget from receipt, milliseconds.
    #[serde(default)]
    pub deadline_ms: Option<u64>,
}

/// Where the node gets the global model: exactly one of the two (fn-train checks).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    /// `GET` URL of the safetensors bytes (the aggregator's model store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The safetensors bytes, base64 (standard alphabet, padded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline_base64: Option<String>,
}

impl ModelRef {
    /// A model fetched from `url`.
    pub fn url(url: impl Into<String>) -> Self {
        Self {
            url: Some(url.into()),
            inline_base64: None,
        }
    }
}
