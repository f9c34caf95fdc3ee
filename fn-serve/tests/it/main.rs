//! fn-serve integration tests: a real server on an ephemeral loopback port, a real
//! weights file, real MNIST images. One binary; a module per topic.

mod common;

mod admission;
mod bad_input;
mod client_gone;
mod drain;
mod endpoints;
mod hot_swap;
mod model_fetch;
mod predict;
