//! # engine: fedge's from-scratch ML engine (under construction)
#![deny(missing_docs)]

pub mod data;
pub mod error;
pub mod federated;
mod fsutil;
pub mod init;
pub(crate) mod layers;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod params;
pub mod presets;
pub mod rng;
pub mod spec;
pub mod tensor;
pub mod train;
pub mod weights;

pub use conv_kernels as kernels;
pub use data::Dataset;
pub use error::{Error, Result};
pub use model::{InferenceScratch, Pixels, Sequential};
pub use optim::{Adam, AdamConfig, Optimizer, OptimizerConfig, Sgd, SgdConfig};
pub use params::ParamSet;
pub use rng::Rng;
pub use spec::{ActivationSpec, LayerSpec, ModelSpec, PaddingSpec};
pub use tensor::{SharedBytes, Tensor};
pub use train::{EpochMetrics, EvalReport, FitConfig, FitReport, Progress};
