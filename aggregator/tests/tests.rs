//! aggregator integration tests: one binary, one file per topic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod attacks;
mod cluster;
mod crash;
mod fake;
mod faults;
mod full_disk;
mod http_api;
mod local;
mod rounds;
mod serve;
mod support;
