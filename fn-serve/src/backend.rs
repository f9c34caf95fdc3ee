//! The one place that touches the engine's model and weights API.

use std::path::Path;

use anyhow::Context;
pub use engine::{InferenceScratch as Scratch, Pixels};

/// Images per engine micro-batch. Measured on the Table 1 CNN (CPU time per image, one
/// thread): 16 costs within 5 % of 64 while its scratch is 3.5 MiB instead of 11 MiB,
/// which keeps the service's resident memory small.
pub const SCRATCH_MICRO_BATCH: usize = 16;

/// A loaded model and what the service reports about it.
#[derive(Debug)]
pub struct Model {
    seq: engine::Sequential,
    /// Version from the weights metadata.
    pub version: u64,
    /// Round from the weights metadata.
    pub round: u64,
    /// [C, H, W].
    pub input_shape: [usize; 3],
    /// Output classes.
    pub num_classes: usize,
}

impl Model {
    fn from_loaded(w: engine::weights::LoadedWeights) -> anyhow::Result<Self> {
        anyhow::ensure!(
            w.meta.normalisation.is_empty() || w.meta.normalisation == "pixel/255",
            "the model expects input normalisation {:?}; fn-serve feeds pixel/255",
            w.meta.normalisation
        );
        let version = w.meta.version;
        let round = w.meta.round;
        let seq = engine::Sequential::from_weights(w)?;
        let spec = seq.spec();
        Ok(Self {
            version,
            round,
            input_shape: spec.input_shape,
            num_classes: spec.num_classes(),
            seq,
        })
    }

    /// Loads a safetensors file (memory-mapped; tensors used in place).
    pub fn load_file(path: &Path) -> anyhow::Result<Self> {
        let w = engine::weights::load(path)
            .with_context(|| format!("loading the model {}", path.display()))?;
        Self::from_loaded(w)
    }

    /// Loads safetensors bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> anyhow::Result<Self> {
        Self::from_loaded(engine::weights::from_bytes(bytes)?)
    }

    /// The architecture.
    pub fn spec(&self) -> &engine::ModelSpec {
        self.seq.spec()
    }

    /// Parameters.
    pub fn num_params(&self) -> usize {
        self.seq.num_params()
    }

    /// Fresh scratch for this model's architecture, for micro-batches of
    /// [`SCRATCH_MICRO_BATCH`] images.
    pub fn scratch(&self) -> Scratch {
        Scratch::with_micro_batch(self.seq.spec(), SCRATCH_MICRO_BATCH)
    }

    /// Probabilities [N, classes] into `out`.
    pub fn predict(
        &self,
        input: Pixels<'_>,
        out: &mut [f32],
        scratch: &mut Scratch,
    ) -> anyhow::Result<()> {
        Ok(self.seq.predict_with(input, out, scratch)?)
    }

    /// Whether `other` takes the same input and gives the same outputs.
    pub fn same_interface(&self, other: &Model) -> bool {
        self.input_shape == other.input_shape && self.num_classes == other.num_classes
    }
}
