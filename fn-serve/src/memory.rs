//! What memory the process really has, and what serving a model needs of it.
//!
//! fn-serve ships in a 100 MiB pod: a 150 MiB model body from the store and a model whose
//! inference buffers did not fit both OOM-killed it. So the largest model body accepted and
//! the check of a new model's buffers derive from the memory the process has (the cgroup
//! limit, v2 or v1, else the machine's available memory).
//! The limit itself is read by [`service::memory::available`].

use engine::ModelSpec;

/// Bytes the process needs besides the model and its buffers: runtime, HTTP, request
/// bodies within the decode budget, allocator slack.
pub const SERVING_OVERHEAD: u64 = 48 << 20;

/// The largest model body accepted when nothing limits it further.
pub const MAX_MODEL_BYTES_CEILING: u64 = 256 << 20;

pub use service::memory::available;

/// The largest model body to accept from the store: a quarter of `available` (the cached
/// file is memory-mapped, and under /tmp on tmpfs it is memory too; the old and the new
/// version are both mapped during a swap), at most [`MAX_MODEL_BYTES_CEILING`]; the
/// ceiling when the memory is unknown. The Table 1 CNN is 1.7 MB.
pub fn default_max_model_bytes(available: Option<u64>) -> u64 {
    available.map_or(MAX_MODEL_BYTES_CEILING, |a| {
        (a / 4).min(MAX_MODEL_BYTES_CEILING)
    })
}

/// Estimated bytes of serving `spec` on `threads` compute threads with micro-batches of
/// `micro_batch` images and requests of up to `max_batch` images: the weights three times
/// (the mapped parameters, and the conv and dense weights packed for the SIMD tier, which
/// keep a raw copy beside their panels: `engine`'s `packed.rs`), each
/// thread's scratch (input and two activation buffers per image, plus one more for the
/// convolutions' im2col) and the probabilities of the largest request. `None` for a spec
/// that does not validate.
pub fn inference_bytes(
    spec: &ModelSpec,
    threads: usize,
    micro_batch: usize,
    max_batch: usize,
) -> Option<u64> {
    let shapes = spec.layer_shapes().ok()?;
    let max_act = shapes.iter().map(|s| s.len() as u64).max().unwrap_or(0);
    let per_image = spec.input_len() as u64 + 3 * max_act;
    let scratch = threads as u64 * micro_batch as u64 * per_image;
    let output = max_batch as u64 * spec.num_classes() as u64;
    Some(4 * (3 * spec.num_params() as u64 + scratch + output))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_100_mib_pod_refuses_a_150_mib_model_body() {
        let cap = default_max_model_bytes(Some(100 << 20));
        assert_eq!(cap, 25 << 20);
        assert!(cap < 150 << 20);
        // The Table 1 CNN's weights file fits with room to spare.
        let table1 = 4 * engine::presets::table1_cnn().num_params() as u64;
        assert!(table1 * 4 < cap, "{table1}");
        assert_eq!(default_max_model_bytes(None), MAX_MODEL_BYTES_CEILING);
        assert_eq!(
            default_max_model_bytes(Some(64 << 30)),
            MAX_MODEL_BYTES_CEILING
        );
    }
}
