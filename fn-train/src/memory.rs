//! What memory the process really has, and what training a model needs of it.
//!
//! A node ships in a 200 MiB pod; a default batch of 1024 was OOM-killed there and a model
//! of 20,000 1x1 filters (0.9 MB of weights) too. So the limits derive from the memory the
//! process has (the cgroup limit, v2 or v1, else the machine's available memory) and from
//! an estimate of a training step's buffers, and a job whose estimate does not fit is
//! refused before it allocates.
//!
//! The estimate per example: every layer's activation and its gradient (f32; the
//! convolutions' im2col buffers are tiled, not per batch); per model: weights, gradients,
//! two Adam moments and the starting copy (5 x parameters). For the Table 1 CNN that is
//! 278 KB per example; measured under `run-limited --cpus 1 --memory 200M` (a 4,096-image
//! shard), peaks were 33 MiB at batch 64, 83 MiB at 256 and 150 MiB at 512: 272 KB per
//! example over a 16 MiB base, which [`TRAINING_OVERHEAD`] covers three times over. In a
//! 200 MiB pod with a third of MNIST (15.7 MB) the derived default is 256.

use engine::ModelSpec;

/// Bytes the process needs besides the training buffers: runtime, HTTP, the model bytes
/// as received, allocator slack.
pub const TRAINING_OVERHEAD: u64 = 48 << 20;

/// The smallest batch the derived default goes down to.
const MIN_DEFAULT_BATCH: usize = 32;
/// The largest batch the derived default goes up to.
const MAX_DEFAULT_BATCH: usize = 1024;

pub use service::memory::available;

/// Estimated bytes of training `spec` with batches of `batch` (see the module docs);
/// `None` for a spec that does not validate.
pub fn training_bytes(spec: &ModelSpec, batch: usize) -> Option<u64> {
    let shapes = spec.layer_shapes().ok()?;
    let per_example =
        spec.input_len() as u64 + shapes.iter().map(|s| 2 * s.len() as u64).sum::<u64>();
    let params = 5 * spec.num_params() as u64;
    Some(4 * (per_example * batch as u64 + params))
}

/// The largest power-of-two batch (32..=1024) whose training of `spec` fits `available`
/// bytes beside [`TRAINING_OVERHEAD`] and `resident` bytes (the shard); 1024 when the
/// memory is unknown.
pub fn default_max_batch(spec: &ModelSpec, available: Option<u64>, resident: u64) -> usize {
    let Some(available) = available else {
        return MAX_DEFAULT_BATCH;
    };
    let budget = available.saturating_sub(TRAINING_OVERHEAD + resident);
    let mut batch = MAX_DEFAULT_BATCH;
    while batch > MIN_DEFAULT_BATCH && training_bytes(spec, batch).is_none_or(|b| b > budget) {
        batch /= 2;
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table1_default_fits_a_200_mib_pod_and_a_huge_model_does_not() {
        let spec = engine::presets::table1_cnn();
        // A 1/3 MNIST shard as f32 pixels: 20,000 x 784 x 4 bytes.
        let shard = 20_000 * 784 * 4;
        // 256 peaked at 83 MiB in the pod; 1024 was OOM-killed there.
        assert_eq!(default_max_batch(&spec, Some(200 << 20), shard), 256);
        assert!(training_bytes(&spec, 1024).unwrap() > 150 << 20);
        assert_eq!(default_max_batch(&spec, None, 0), 1024);
        // The reported attack: 0.9 MB of weights, 63 MB of activations per example.
        let huge = ModelSpec::from_json(
            r#"{"name":"huge","input_shape":[1,28,28],"layers":[
                {"type":"Conv2D","name":"c","filters":20000,"kernel_size":[1,1]},
                {"type":"MaxPool2D","pool_size":[28,28]},
                {"type":"Flatten"},{"type":"Dense","name":"d","units":10},{"type":"Softmax"}]}"#,
        )
        .unwrap();
        assert!(training_bytes(&huge, 2).unwrap() > 200 << 20);
    }
}
