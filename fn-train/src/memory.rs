//! What memory the process really has, and what training a model needs of it.
//!
//! A node ships in a 200 MiB pod; a default batch of 1024 was OOM-killed there and a model
//! of 20,000 1x1 filters (0.9 MB of weights) too. So the limits derive from the memory the
//! process has (the cgroup limit, v2 or v1, else the machine's available memory) and from
//! an estimate of a training step's buffers, and a job whose estimate does not fit is
//! refused before it allocates.
//!
//! The estimate per example: every layer's activation and its gradient (f32), plus the
//! im2col matrix of each convolution (`kh*kw*c_in` by `h_out*w_out`) and its gradient; per
//! model: weights, gradients, two Adam moments and the starting copy (5 x parameters).
//! Calibrated on the Table 1 CNN under `run-limited --memory 200M`: see
//! [`TRAINING_OVERHEAD`].

use engine::ModelSpec;
use engine::spec::{LayerShape, LayerSpec};

/// Bytes the process needs besides the training buffers: runtime, HTTP, the model bytes
/// as received, allocator slack.
pub const TRAINING_OVERHEAD: u64 = 48 << 20;

/// The smallest batch the derived default goes down to.
const MIN_DEFAULT_BATCH: usize = 32;
/// The largest batch the derived default goes up to.
const MAX_DEFAULT_BATCH: usize = 1024;

/// The memory this process may use, bytes: the cgroup limit (v2 `memory.max`, v1
/// `memory.limit_in_bytes`), else `MemAvailable`; `None` when none can be read.
pub fn available() -> Option<u64> {
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(p).ok())
    .filter_map(|s| s.trim().parse::<u64>().ok())
    // v1 reports "no limit" as a huge number.
    .find(|&v| v < 1 << 50);
    cgroup.or_else(mem_available)
}

fn mem_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Estimated bytes of training `spec` with batches of `batch` (see the module docs);
/// `None` for a spec that does not validate.
pub fn training_bytes(spec: &ModelSpec, batch: usize) -> Option<u64> {
    let shapes = spec.layer_shapes().ok()?;
    let mut per_example = spec.input_len() as u64;
    let mut input = LayerShape::Chw(spec.input_shape);
    for (layer, out) in spec.layers.iter().zip(&shapes) {
        per_example += 2 * out.len() as u64;
        if let (
            LayerSpec::Conv2D { kernel_size, .. },
            LayerShape::Chw([c_in, _, _]),
            LayerShape::Chw([_, h, w]),
        ) = (layer, input, *out)
        {
            per_example += 2 * (kernel_size[0] * kernel_size[1] * c_in * h * w) as u64;
        }
        input = *out;
    }
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
        let batch = default_max_batch(&spec, Some(200 << 20), shard);
        assert!((64..=256).contains(&batch), "{batch}");
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
