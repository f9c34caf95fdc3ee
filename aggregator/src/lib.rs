//! # aggregator: fedge's cloud side
//!
//! Brief overview:
//! - [`store::ModelStore`] keeps every global model version (atomic files, a `latest`
//!   pointer, an fsynced JSON-lines history of [`history::RoundRecord`]s) and survives a
//!   crash at any instant; [`http::app`] serves it (`GET /v1/models/{name}/latest`, ETag,
//!   304) to fn-serve and fn-train, with `/v1/rounds`, `/healthz` and `/metrics`.
//! - [`rounds::Coordinator`] runs a round: sample clients ([`strategy::RoundSettings`],
//!   Flower's names), invoke them over HTTP ([`clients`]), validate each update
//!   ([`validate`], then against the rest of the round: [`relative`]), aggregate ([`strategy::Strategy`]: FedAvg, FedAvgM, FedProx, median,
//!   trimmed mean), evaluate, commit.
//! - [`local`] is `aggregator local`, the whole edge system on one machine with each node a
//!   child process ([`nodes`]); [`cluster`] is `aggregator serve`; [`charts`] draws the SVGs.
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
pub mod relative;
pub mod rounds;
pub mod store;
pub mod strategy;
pub mod validate;
