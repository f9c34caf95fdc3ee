//! edge-cluster integration tests: the services together, as real processes of the built
//! `edge-cluster` binary. One binary, one file per topic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod attacks;
mod cluster;
mod local;
mod protocol_sides;
mod serve;
mod support;
