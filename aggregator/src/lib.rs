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
//! - [`cluster`] is `aggregator serve` (config file + env, for a Kubernetes Deployment);
//!   [`evaluate`] scores candidates on the test set; [`torture`] is the crash tests' writer.
//!
//! The one-command local cluster (nodes as child processes, charts) is the `edge-cluster`
//! crate: this crate depends on neither fn-train nor fn-serve, so its image holds the
//! aggregator only. What it sends to the nodes is the `protocol` crate.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod clients;
pub mod cluster;
pub mod evaluate;
pub mod history;
pub mod http;
pub mod metrics;
pub mod relative;
pub mod rounds;
pub mod store;
pub mod strategy;
pub mod torture;
pub mod validate;
