//! # service: what every fedge server does the same way
//!
//! fn-train, fn-serve, the aggregator and the local cluster each need logs, a shutdown
//! signal, an error body, random ids and a protected listener; one copy of each lives here so they cannot
//! drift apart.
//!
//! - [`memory::available`]: the memory the process really has (its cgroup's limit);
//! - [`logging::init`]: JSON lines on stdout for Knative, human-readable on a terminal;
//! - [`shutdown::sigterm_or_ctrl_c`]: what Knative sends, or a local Ctrl-C;
//! - [`error::json_error`]: the `{"error": "..."}` body every 4xx/5xx carries;
//! - [`metrics`]: the Prometheus registry and its `/metrics` response;
//! - [`token::TokenGuard`]: constant-time, rate-limited bearer-token checks;
//! - [`random`]: the operating system's generator (nonces, tokens, event ids), no fallback;
//! - `probe::wait_ok` (feature `probe`): poll a peer's URL until it answers 2xx;
//! - [`serve::serve`]: the listener, with a header deadline, an idle timeout and a cap on
//!   open connections (axum's own `serve` has none of them).
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod error;
pub mod logging;
pub mod memory;
pub mod metrics;
#[cfg(feature = "probe")]
pub mod probe;
pub mod random;
pub mod serve;
pub mod shutdown;
pub mod token;
