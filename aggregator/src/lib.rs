//! # aggregator: fedge's cloud side
//!
//! Brief overview: a [`store::ModelStore`] keeps every global model version (crash-safe,
//! atomic files) and the round history ([`history::RoundRecord`]); it is served over HTTP
//! (`GET /v1/models/{name}/latest`) to fn-serve and fn-train.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod charts;
pub mod clients;
pub mod cluster;
pub mod history;
pub mod http;
pub mod local;
pub mod nodes;
pub mod rounds;
pub mod store;
pub mod strategy;
pub mod validate;
