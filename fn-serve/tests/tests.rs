//! fn-serve integration tests: a real server on an ephemeral loopback port, a real
//! weights file, real MNIST images. One binary; a module per topic under suite/.

#[path = "suite/common/mod.rs"]
mod common;

#[path = "suite/admission.rs"]
mod admission;
#[path = "suite/bad_input.rs"]
mod bad_input;
#[path = "suite/client_gone.rs"]
mod client_gone;
#[path = "suite/drain.rs"]
mod drain;
#[path = "suite/endpoints.rs"]
mod endpoints;
#[path = "suite/hot_swap.rs"]
mod hot_swap;
#[path = "suite/model_fetch.rs"]
mod model_fetch;
#[path = "suite/predict.rs"]
mod predict;
