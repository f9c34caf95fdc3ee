//! # engine: fedge's from-scratch ML engine
//!
//! A small, dependency-light engine that builds, trains and runs image classifiers on
//! the CPU, with all arithmetic in [`kernels`] (`conv-kernels`).
//!
//! ## Brief overview
//!
//! * [`ModelSpec`] ([`spec`]) describes a Sequential model in JSON, like Keras's config:
//!   Conv2D, MaxPool2D, Dropout, Flatten, Dense, ReLU and a final Softmax.
//!   [`presets::table1_cnn`] is the seed paper's CNN (317,066 parameters).
//! * [`Sequential`] ([`model`]) is a spec plus its [`ParamSet`] (named [`Tensor`]s in
//!   PyTorch layouts: `conv1.weight` `[32, 1, 5, 5]`, `fc1.weight` `[256, 1024]`, ...).
//!   [`Sequential::predict`] returns class probabilities, micro-batched so memory stays
//!   bounded; [`Sequential::predict_with`] reuses an [`InferenceScratch`].
//! * [`Sequential::fit`] trains on a [`Dataset`] (u8 images, f32 one batch at a time) with
//!   an [`Optimizer`] ([`Sgd`], [`Adam`], or built from an [`OptimizerConfig`]) under a
//!   [`FitConfig`], reporting [`Progress`] after every batch (return `Break` to cancel);
//!   [`Sequential::evaluate`] gives an [`EvalReport`]. Same seed and data give
//!   bit-identical weights at any thread count.
//! * [`weights`] saves and memory-maps safetensors files PyTorch can load;
//!   [`data`] reads MNIST IDX files and partitions data sets for federated clients;
//!   [`federated`] averages parameter sets (FedAvg, median, trimmed mean).
//!
//! ## Example: build, train, save, load, predict
//!
//! ```
//! use std::ops::ControlFlow;
//! use engine::{Adam, AdamConfig, Dataset, FitConfig, ModelSpec, Pixels, Sequential};
//! use engine::weights::{self, WeightsMeta};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // 8x8 images: class 0 is bright in the top half, class 1 in the bottom half.
//! let mut rng = engine::Rng::new(1);
//! let (mut images, mut labels) = (Vec::new(), Vec::new());
//! for i in 0..256 {
//!     let label = (i % 2) as u8;
//!     for px in 0..64 {
//!         let bright = (px < 32) == (label == 0);
//!         let noise = rng.below(60) as u8;
//!         images.push(if bright { 180 + noise } else { noise });
//!     }
//!     labels.push(label);
//! }
//! let data = Dataset::new(images, labels, 8, 8)?;
//!
//! let spec = ModelSpec::from_json(r#"{"name": "tiny", "input_shape": [1, 8, 8], "layers": [
//!     {"type": "Conv2D", "name": "conv1", "filters": 4, "kernel_size": [3, 3], "activation": "relu"},
//!     {"type": "MaxPool2D", "pool_size": [2, 2]},
//!     {"type": "Flatten"},
//!     {"type": "Dense", "name": "fc1", "units": 2},
//!     {"type": "Softmax"}]}"#)?;
//! let mut model = Sequential::new(spec.clone(), 42)?;
//! let cfg = FitConfig { epochs: 3, batch_size: 16, seed: 7, ..FitConfig::default() };
//! let mut opt = Adam::new(AdamConfig { lr: 0.01, ..AdamConfig::default() });
//! model.fit(&data, &cfg, &mut opt, &mut |_progress| ControlFlow::Continue(()))?;
//! assert!(model.evaluate(&data, 64)?.accuracy > 0.9);
//!
//! // Save as safetensors, load (memory-mapped), predict.
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("tiny.safetensors");
//! weights::save(&path, model.params(), &WeightsMeta::new(spec))?;
//! let loaded = Sequential::from_weights(weights::load(&path)?)?;
//! let mut probs = vec![0.0f32; 2 * 2];
//! loaded.predict(Pixels::U8(&data.images()[..2 * 64]), &mut probs)?;
//! assert!(probs[0] > 0.5 && probs[3] > 0.5, "{probs:?}"); // image 0 is class 0, image 1 class 1
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
// The one exception, `weights.rs`'s memory map, carries `#[allow(unsafe_code)]` and a SAFETY note.
#![deny(unsafe_code)]

pub mod data;
pub mod error;
pub mod federated;
pub mod fsutil;
pub mod init;
pub(crate) mod layers;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod optim;
mod packed;
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
pub use rng::{Purpose, Rng};
pub use spec::{ActivationSpec, LayerSpec, ModelSpec, PaddingSpec};
pub use tensor::{SharedBytes, Tensor};
pub use train::{EpochMetrics, EvalReport, FitConfig, FitReport, Progress};
