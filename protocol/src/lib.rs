//! # protocol: what the aggregator and fn-train say to each other
//!
//! One definition each side imports, so the compiler guards the seam:
//!
//! - [`TrainRequest`]: the JSON body of `POST {node}/train`, and the data of a
//!   [`events::TRAIN_REQUESTED`] CloudEvent;
//! - [`ReplyMeta`]: the `fedge.*` metadata the node writes into the reply's safetensors
//!   header (keys in [`keys`]) and the aggregator reads back;
//! - [`events`]: the CloudEvent type names and the aggregator's event source.
//!
//! serde only: neither side's dependencies leak into the other. The optimizer is generic
//! ([`TrainRequest<O>`]): the aggregator sends `engine::OptimizerConfig`, fn-train reads
//! the JSON value first so that it can name a bad field precisely, then converts it.
#![forbid(unsafe_code)]

mod reply;
mod request;

pub use reply::{MetaError, ReplyMeta, keys};
pub use request::{ModelRef, TrainRequest};

/// CloudEvents of the training exchange (binary or structured mode over HTTP).
pub mod events {
    /// Type of the event asking a node to train; its data is a [`crate::TrainRequest`].
    pub const TRAIN_REQUESTED: &str = "dev.fedge.train.requested";
    /// Type of the node's reply; its data is the safetensors update.
    pub const TRAIN_COMPLETED: &str = "dev.fedge.train.completed";
    /// `source` of the events the aggregator sends.
    pub const AGGREGATOR_SOURCE: &str = "/fedge/aggregator";
    /// Extension attribute carrying the round number (`ce-round` in binary mode).
    pub const ROUND_EXTENSION: &str = "round";
}
