//! # edge-cluster: the whole federated edge system on one machine
//!
//! [`local`] is `edge-cluster local`, the README's first command: it starts the
//! aggregator's model store in-process, fn-train and fn-serve nodes as child processes of
//! this binary ([`nodes`]), runs the rounds with the aggregator's coordinator, checks the
//! served model, and draws [`charts`]. It depends on all three services; none of them
//! depends on it.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod charts;
pub mod local;
pub mod nodes;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
