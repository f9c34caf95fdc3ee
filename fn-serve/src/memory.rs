//! What memory the process really has, and what serving a model needs of it.
//!
//! fn-serve ships in a 100 MiB pod: a 150 MiB model body from the store and a model whose
//! inference buffers did not fit both OOM-killed it. So the largest model body accepted and
//! the check of a new model's buffers derive from the memory the process has (the cgroup
//! limit, v2 or v1, else the machine's available memory).
//! The limit itself is read by [`service::memory::available`].

use engine::kernels::{Conv2dGeometry, Padding, conv2d_scratch_len};
use engine::spec::LayerShape;
use engine::{LayerSpec, ModelSpec, PaddingSpec};

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
/// keep a raw copy beside their panels: `engine`'s `packed.rs`), each thread's scratch
/// ([`scratch_bytes`]) and the probabilities of the largest request. `None` for a spec that
/// does not validate. The rest of the process (runtime, connections, the decoded inputs
/// within the decode budget) is [`SERVING_OVERHEAD`]; measured peaks are in
/// docs/ROBUSTNESS.md.
pub fn inference_bytes(
    spec: &ModelSpec,
    threads: usize,
    micro_batch: usize,
    max_batch: usize,
) -> Option<u64> {
    let scratch = scratch_bytes(spec, micro_batch)?;
    let output = max_batch as u64 * spec.num_classes() as u64;
    Some(4 * (3 * spec.num_params() as u64 + output) + threads as u64 * scratch)
}

/// Bytes of one compute thread's inference scratch for micro-batches of `micro_batch`
/// images, sized as the engine sizes it (the input, two activation buffers of the largest
/// layer output, the max-pool indices, and the convolution kernels' own scratch from
/// [`conv2d_scratch_len`]), from the spec alone: nothing is allocated for a model that may
/// be refused. `None` for a spec that does not validate.
pub fn scratch_bytes(spec: &ModelSpec, micro_batch: usize) -> Option<u64> {
    let n = micro_batch.max(1);
    let shapes = spec.layer_shapes().ok()?;
    let max_act = shapes.iter().map(|s| s.len() as u64).max().unwrap_or(0);
    let (mut argmax, mut conv) = (0u64, 0u64);
    let mut input = LayerShape::Chw(spec.input_shape);
    for (layer, out) in spec.layers.iter().zip(&shapes) {
        match layer {
            LayerSpec::Conv2D {
                filters,
                kernel_size: [kh, kw],
                padding,
                ..
            } => {
                let LayerShape::Chw([c, h, w]) = input else {
                    return None;
                };
                let padding = match padding {
                    PaddingSpec::Valid => Padding::Valid,
                    PaddingSpec::Same => Padding::Same,
                };
                let g = Conv2dGeometry::new(n, c, h, w, *filters, *kh, *kw, padding).ok()?;
                conv = conv.max(conv2d_scratch_len(&g) as u64);
            }
            LayerSpec::MaxPool2D { .. } => argmax = argmax.max((n * out.len()) as u64),
            _ => {}
        }
        input = *out;
    }
    let n = n as u64;
    Some(4 * (n * spec.input_len() as u64 + 2 * n * max_act + argmax + conv))
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

    /// The estimate's scratch is what the engine allocates, for the Table 1 CNN and for
    /// shapes where the convolution scratch, not the activations, is the largest buffer.
    #[test]
    fn the_scratch_estimate_is_what_the_engine_allocates() {
        let mut wide_in = engine::presets::table1_cnn();
        wide_in.name = "wide_in".into();
        if let engine::LayerSpec::Conv2D { filters, .. } = &mut wide_in.layers[0] {
            *filters = 96;
        }
        let mut same = engine::presets::table1_cnn();
        same.name = "same".into();
        for l in &mut same.layers {
            if let engine::LayerSpec::Conv2D { padding, .. } = l {
                *padding = PaddingSpec::Same;
            }
        }
        same.layers.insert(
            0,
            engine::LayerSpec::Conv2D {
                name: "conv0".into(),
                filters: 4,
                kernel_size: [1, 1],
                padding: PaddingSpec::Valid,
                activation: engine::ActivationSpec::Relu,
            },
        );
        for spec in [engine::presets::table1_cnn(), wide_in, same] {
            for micro in [1, 16, 32] {
                let real = engine::InferenceScratch::with_micro_batch(&spec, micro).bytes();
                assert_eq!(
                    scratch_bytes(&spec, micro),
                    Some(real as u64),
                    "{} at {micro}",
                    spec.name
                );
            }
        }
    }
}
