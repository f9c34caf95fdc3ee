//! aggregator integration tests: one binary, one file per topic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod crash;
mod fake;
mod faults;
mod full_disk;
mod http_api;
mod rounds;
mod support;
