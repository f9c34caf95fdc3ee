//! Stride-1 2D convolution, NCHW activations, OIHW weights: forward and the three gradients.
//!
//! # Algorithms ([`ConvAlgo`])
//!
//! * [`ConvAlgo::Im2colGemm`] (`im2col.rs`): a chunk of images is unrolled into a
//!   `[C·KH·KW, images·OH·OW]` matrix and multiplied by the weights; the bias + ReLU
//!   epilogue (and, fused, the 2x2 max-pool) is applied on the way out. On AVX-512 the
//!   weight is packed once (per call, or per model version by [`PackedConv`]) for our GEMM
//!   and, for 'valid' rows of whole 8-float moves, the unrolled matrix is written straight
//!   into our GEMM's packed B panels (implicit GEMM: never materialised); elsewhere
//!   `matrixmultiply`'s sgemm multiplies it (it won or tied on AVX2). It runs conv1's
//!   unpooled NCHW forward (training) everywhere, conv1 where the direct kernel does not
//!   pay, and conv2 at small batches on AVX-512 and on the portable and NEON tiers.
//!   Both gradients always use it: `dcol = Wᵀ·dY` then col2im (Wᵀ packed once per call on
//!   AVX-512), and `dW = dY·colᵀ`.
//! * [`ConvAlgo::Direct`] (`direct.rs`, forward only): one vector over output channels,
//!   a 2 x 6 block of output pixels in registers, each input value broadcast once per
//!   kernel row; bias, ReLU and the 2x2 pool on the accumulators, stored channels-last.
//!   For small reductions (conv1: one channel, 25 taps), where im2col spends as long
//!   unrolling, packing and pooling as multiplying. It runs conv1 fused with its pool and
//!   in [`PackedConv`] on AVX2 ([`direct_pays`]: 1.5-1.9x faster than im2col's fused path
//!   in the same rounds there); its unpooled NCHW output goes through a transposition and
//!   only ties im2col.
//!   (Its predecessor, with lanes over output columns, lost everywhere and is gone.)
//! * [`ConvAlgo::Winograd`] (`winograd.rs`, forward only, 5x5 kernels): F(2x2, 5x5), 2.78x
//!   fewer multiplies than direct convolution, as 36 GEMMs over transformed tiles (on our
//!   GEMM with the transformed filters packed, on the AVX2 and AVX-512 tiers).
//!   [`PackedConv`] transforms and packs the filters once per model version (the engine's
//!   inference path); the unpacked entry points do it once per call.
//! * [`ConvAlgo::Auto`] resolves by shape and tier, from measurements (see
//!   [`ConvAlgo::resolve_for`] and BENCHMARKS.md): Winograd for conv2-like layers from
//!   batch 8 on AVX2 and AVX-512, im2col otherwise. The packed path has its own rule
//!   ([`PackedConv::runs_winograd`]): with no per-call weight transform, Winograd pays from
//!   [`packed_winograd_min_batch`] images (1 on AVX2, 4 on AVX-512; [`winograd_pays`]).
//!
//! # Layouts
//! Every entry point takes and gives NCHW, except [`Kernels::conv2d_forward_packed_io`]:
//! there a layer whose packed path [`PackedConv::writes_channels_last`] (the direct kernel)
//! may hand its output to one that [`PackedConv::reads_channels_last`] (the direct kernel,
//! and Winograd, whose transforms work channels-last anyway) as `[N, H, W, C]`
//! ([`Layout::Nhwc`]), and neither side transposes. The engine's inference does this
//! between conv1 and conv2.
//!
//! The public functions validate every buffer against the [`Conv2dGeometry`] and return a
//! [`crate::KernelError`] before touching memory; [`reference`](mod@reference) holds the naive oracle.
//! Work is split over images only (forward, input gradient) or over row panels of the weight
//! gradient, whose reduction over the batch runs in a fixed chunk order: bit-identical for
//! any thread count.

pub(crate) mod direct;
pub(crate) mod im2col;
mod packed;
pub mod reference;
pub(crate) mod winograd;

pub use packed::{
    Layouts, PackedConv, conv2d_forward_maxpool2x2_packed, conv2d_forward_packed,
    conv2d_forward_packed_io, pack_conv2d,
};

use crate::activation::Activation;
use crate::dispatch::{Isa, Kernels, kernels};
use crate::error::{KernelError, Result, check_len};
use crate::geometry::Conv2dGeometry;

/// Memory order of a batch of conv activations.
///
/// The public conv API speaks NCHW; the packed inference path may pass an activation
/// channels-last between two convs whose kernels both work that way (see
/// [`PackedConv::writes_channels_last`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Layout {
    /// `[N, C, H, W]`: each channel's plane contiguous.
    #[default]
    Nchw,
    /// `[N, H, W, C]`: each pixel's channels contiguous.
    Nhwc,
}

/// Forward convolution algorithm; every variant works for every geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ConvAlgo {
    /// Choose by shape (see the module docs).
    #[default]
    Auto,
    /// im2col + sgemm.
    Im2colGemm,
    /// Direct SIMD accumulation.
    Direct,
    /// Winograd F(2x2, 5x5) for 5x5 kernels; other kernels run [`ConvAlgo::Im2colGemm`].
    Winograd,
}

impl ConvAlgo {
    /// The concrete algorithm that runs `g` on the process-wide tier ([`crate::active_isa`]);
    /// see [`ConvAlgo::resolve_for`].
    pub fn resolve(self, g: &Conv2dGeometry) -> ConvAlgo {
        self.resolve_for(g, crate::dispatch::active_isa())
    }

    /// The concrete algorithm that runs `g` on tier `isa`: `Auto` chooses by shape and tier
    /// (the rule and the measurements behind it: `auto_algo` in this module's source, and
    /// BENCHMARKS.md); `Winograd` on a kernel it cannot compute runs im2col; the others run
    /// as asked.
    pub fn resolve_for(self, g: &Conv2dGeometry, isa: Isa) -> ConvAlgo {
        match self {
            ConvAlgo::Auto => auto_algo(g, isa),
            ConvAlgo::Winograd if !winograd::applies(g) => ConvAlgo::Im2colGemm,
            other => other,
        }
    }
}

/// What `Auto` runs for `g` on `isa`, from the kernel bench's per-tier figures for the
/// Table 1 layer shapes at batches 1, 8, 32 and 64 (`conv<i>_forward_b<n>/<tier>/<algo>`
/// and `conv2_forward_pool_b<n>/...`; BENCHMARKS.md, "Kernels"; one core):
///
/// * **Winograd** on the AVX2 and AVX-512 tiers for 5x5 kernels over at least
///   [`WINOGRAD_MIN_CHANNELS`] input channels and batches of at least
///   [`WINOGRAD_MIN_BATCH`]. AVX2 (AMD EPYC Zen 3, two rounds): conv2 at batch 8
///   0.69-0.89 ms vs 1.16-1.22 ms im2col, at batch 32 3.41-3.43 vs 4.20-4.81 ms (fused with
///   the pool, as inference runs it: 2.31-3.17 vs 4.99-5.03 ms); at batch 1 0.24-0.29 vs
///   0.13-0.16 ms, a loss (the per-call weight transform). AVX-512 (Zen 4, before the
///   transforms lost their closures, which made them 1.5x faster on AVX2): batch 64 5.4 vs
///   5.9 ms, batch 32 fused 2.5 vs 3.0 ms, batch 8 fused 0.71 vs 0.79 ms.
/// * **im2col + GEMM** everywhere else: conv1 (one input channel, K = 25) on every tier
///   (Winograd 9-19x and direct convolution 2.5-4x slower there), batches below 8, and the
///   portable and NEON tiers (portable Winograd lost at every batch on Zen 4; NEON is only
///   tested under qemu, not timed).
/// * **Direct** is never chosen: it lost on every tier, batch and layer measured (its rows
///   keep one or two accumulators per output channel, latency-bound; conv2 12 % of peak).
///   It stays callable for tests and benches.
fn auto_algo(g: &Conv2dGeometry, isa: Isa) -> ConvAlgo {
    if winograd_pays(isa)
        && winograd::applies(g)
        && g.in_channels >= WINOGRAD_MIN_CHANNELS
        && g.batch >= WINOGRAD_MIN_BATCH
    {
        ConvAlgo::Winograd
    } else {
        ConvAlgo::Im2colGemm
    }
}

/// Input channels from which `Auto` takes Winograd for a 5x5 kernel (on the AVX2 and
/// AVX-512 tiers): with fewer, its 36 GEMMs have too short a reduction (conv1 has one channel).
pub const WINOGRAD_MIN_CHANNELS: usize = 8;

/// Images from which `Auto` takes Winograd (on the AVX2 and AVX-512 tiers): its weight
/// transform is paid per call, so conv2 at batch 1 runs im2col faster; from batch 8 on
/// Winograd wins (measured at 1, 8, 32, 64; see `auto_algo`).
pub const WINOGRAD_MIN_BATCH: usize = 8;

/// Whether Winograd wins on tier `isa` at all, so that `Auto` may choose it and
/// [`PackedConv`] prepares its filters: on AVX2 and AVX-512, where it was measured to beat
/// im2col (see `auto_algo`; the packed filters on AVX2, AMD EPYC Zen 3, kernel bench
/// `conv2_forward_b<n>/avx2/{WinogradPacked,Im2colGemm}`, two rounds: batch 8 0.74-0.79 vs
/// 1.16-1.22 ms, batch 32 3.11-3.12 vs 4.20-4.81 ms). NEON and portable are untimed and keep
/// im2col, so they hold no unused filters.
pub fn winograd_pays(isa: Isa) -> bool {
    matches!(isa, Isa::Avx2Fma | Isa::Avx512)
}

/// Whether the direct kernel (one vector over output channels; bias, ReLU and the 2x2 pool
/// in registers) runs a layer over `in_channels` input channels on tier `isa` where its
/// output is pooled or channels-last: in [`conv2d_forward_maxpool2x2`] (`Auto`) and in
/// [`PackedConv`], which then prepares its weights. One input channel (conv1) on AVX2.
///
/// Kernel bench, AMD EPYC Zen 3, conv1 at batch 32, three rounds (`d8b3f14`): fused with the
/// pool (`conv1_forward_pool_b32/avx2/*`) 0.396-0.496 ms vs 0.712-0.762 ms for im2col's
/// fused path, 0.379-0.406 ms packed with channels-last output (71-76 % of the FMA probe in
/// the same rounds). Unpooled NCHW output, which it writes through a transposed tile, ties
/// (`conv1_forward_b32/avx2/*`: 0.527 / 0.533 / 0.649 vs 0.545-0.550 ms), so `Auto` keeps
/// im2col there (training's forward). On the portable tier it loses everywhere (pooled
/// 1.60-1.61 vs 0.83-0.90 ms, two rounds of the earlier 2 x 4-pixel build: no FMA, 4
/// lanes). AVX-512 and NEON are untimed and keep
/// im2col.
pub fn direct_pays(in_channels: usize, isa: Isa) -> bool {
    in_channels == 1 && isa == Isa::Avx2Fma
}

/// Images from which the packed path ([`PackedConv::runs_winograd`]) takes Winograd on tier
/// `isa`: the filters are transformed once per model version, so only the per-image work
/// counts.
///
/// * **AVX2: from 1 image.** With the transforms' lanes over channels (one image's 16 tiles
///   fill whole 6-row GEMM panels but two rows), packed Winograd beats the im2col GEMM at
///   batch 1: model bench `infer/table1_cnn/1`, AMD EPYC Zen 3, four alternated rounds,
///   109-128 us vs 188-203 us (BENCHMARKS.md, "Kernels").
/// * **AVX-512: from [`PACKED_WINOGRAD_MIN_BATCH`] images.** Last measured on Zen 5 with the
///   transforms' lanes over tiles, where the implicit-GEMM im2col on the packed weight won
///   batch 1 (61.3 vs 65-66 us); not re-measured since (no AVX-512 CPU in that session).
pub fn packed_winograd_min_batch(isa: Isa) -> usize {
    match isa {
        Isa::Avx2Fma => 1,
        _ => PACKED_WINOGRAD_MIN_BATCH,
    }
}

/// The largest [`packed_winograd_min_batch`] of any tier (AVX-512's, see there).
pub const PACKED_WINOGRAD_MIN_BATCH: usize = 4;

// `PackedConv` runs im2col wherever its own Winograd rule does not apply, which is only
// what `Auto` would run if `Auto` takes Winograd from no fewer images.
const _: () = assert!(PACKED_WINOGRAD_MIN_BATCH <= WINOGRAD_MIN_BATCH);

/// Scratch elements one worker needs for any conv2d kernel of geometry `g`.
pub fn conv2d_scratch_slot_len(g: &Conv2dGeometry) -> usize {
    let w = if winograd::applies(g) {
        winograd::WinogradPlan::new(g, winograd::MAX_LANES).slot_len()
    } else {
        0
    };
    im2col::Im2colPlan::new(g)
        .slot_len
        .max(direct::slot_len(g))
        .max(w)
}

/// Scratch elements the conv2d kernels need for geometry `g`: one slot per worker thread the
/// process is configured for (see [`crate::threads`]), at most one per image.
///
/// Any length of at least [`conv2d_scratch_slot_len`] is accepted; kernels use as many
/// parallel workers as there are whole slots (and threads). Results do not depend on it.
pub fn conv2d_scratch_len(g: &Conv2dGeometry) -> usize {
    let slots = crate::threads::configured_threads().clamp(1, g.batch);
    conv2d_scratch_slot_len(g).saturating_mul(slots)
}

fn check_scratch(op: &'static str, g: &Conv2dGeometry, scratch: &[f32]) -> Result<()> {
    let need = conv2d_scratch_slot_len(g);
    if scratch.len() < need {
        return Err(KernelError::BufferLen {
            op,
            buffer: "scratch",
            expected: need,
            got: scratch.len(),
        });
    }
    Ok(())
}

/// The buffer checks every forward entry point shares (weights are the caller's: raw slices
/// by length, packed ones by shape and tier); `pooled` for the fused 2x2 max-pool's output.
pub(crate) fn check_forward(
    op: &'static str,
    g: &Conv2dGeometry,
    input: &[f32],
    bias: Option<&[f32]>,
    out: &[f32],
    scratch: &[f32],
    pooled: bool,
) -> Result<()> {
    if pooled && !conv2d_pool_fusable(g) {
        return Err(KernelError::Geometry {
            op,
            reason: "the fused pool needs an even output height and width".into(),
        });
    }
    check_len(op, "input", input.len(), g.input_len())?;
    if let Some(b) = bias {
        check_len(op, "bias", b.len(), g.out_channels)?;
    }
    let out_len = if pooled {
        g.output_len() / 4
    } else {
        g.output_len()
    };
    check_len(op, "out", out.len(), out_len)?;
    check_scratch(op, g, scratch)
}

/// Forward convolution: `out = act(conv(input, weight) + bias)`.
///
/// # Shapes
/// input `[N, C, H, W]`, weight `[O, C, KH, KW]`, bias `[O]`, out `[N, O, OH, OW]`,
/// scratch at least [`conv2d_scratch_slot_len`] (size it with [`conv2d_scratch_len`]).
pub fn conv2d_forward(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    kernels().conv2d_forward(
        g,
        ConvAlgo::Auto,
        input,
        weight,
        bias,
        activation,
        out,
        scratch,
    )
}

/// Whether [`conv2d_forward_maxpool2x2`] computes `g`: an even output height and width (the
/// pool's windows then tile the output exactly: Winograd's 2x2 output tiles, or 2x2 blocks
/// of im2col's staged output planes).
pub fn conv2d_pool_fusable(g: &Conv2dGeometry) -> bool {
    g.out_h.is_multiple_of(2) && g.out_w.is_multiple_of(2)
}

/// Forward convolution fused with the following 2x2 stride-2 max-pool, for inference:
/// `out = maxpool2x2(act(conv(input, weight) + bias))`, without writing the full-size
/// activation or an argmax: on the direct kernel where [`direct_pays`] (it pools in
/// registers), else on the algorithm [`ConvAlgo::Auto`] picks (Winograd pools each 2x2
/// output tile; im2col pools each output plane from the GEMM's staging rows). Values are
/// bit-identical to [`Kernels::conv2d_forward`] with the algorithm that ran followed by
/// [`crate::maxpool2d_forward`] (when the activation is ReLU: the fused maximum is a plain
/// `max`, exact on ReLU's outputs, which are never NaN or -0.0). Pin the algorithm with
/// [`Kernels::conv2d_forward_maxpool2x2_with`].
///
/// # Shapes
/// input `[N, C, H, W]`, weight `[O, C, KH, KW]`, bias `[O]`, out `[N, O, OH/2, OW/2]`,
/// scratch as for [`conv2d_forward`].
///
/// # Errors
/// [`KernelError::Geometry`] unless [`conv2d_pool_fusable`]; buffer lengths as usual.
pub fn conv2d_forward_maxpool2x2(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    kernels().conv2d_forward_maxpool2x2(g, input, weight, bias, activation, out, scratch)
}

/// Gradient w.r.t. the input (overwrites `grad_input`).
///
/// # Shapes
/// grad_out `[N, O, OH, OW]`, weight `[O, C, KH, KW]`, grad_input `[N, C, H, W]`.
pub fn conv2d_backward_input(
    g: &Conv2dGeometry,
    grad_out: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    kernels().conv2d_backward_input(g, grad_out, weight, grad_input, scratch)
}

/// Gradient w.r.t. the weight (overwrites `grad_weight`).
///
/// # Shapes
/// input `[N, C, H, W]`, grad_out `[N, O, OH, OW]`, grad_weight `[O, C, KH, KW]`.
pub fn conv2d_backward_weight(
    g: &Conv2dGeometry,
    input: &[f32],
    grad_out: &[f32],
    grad_weight: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    kernels().conv2d_backward_weight(g, input, grad_out, grad_weight, scratch)
}

/// Gradient w.r.t. the bias (overwrites `grad_bias`).
///
/// # Shapes
/// grad_out `[N, O, OH, OW]`, grad_bias `[O]`.
pub fn conv2d_backward_bias(
    g: &Conv2dGeometry,
    grad_out: &[f32],
    grad_bias: &mut [f32],
) -> Result<()> {
    kernels().conv2d_backward_bias(g, grad_out, grad_bias)
}

impl Kernels {
    /// [`conv2d_forward`] on this tier with a pinned algorithm.
    #[allow(clippy::too_many_arguments)]
    pub fn conv2d_forward(
        &self,
        g: &Conv2dGeometry,
        algo: ConvAlgo,
        input: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
        activation: Activation,
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<()> {
        let op = "conv2d_forward";
        self.forward_unpacked(
            op, g, algo, input, weight, bias, activation, false, out, scratch,
        )
    }

    /// [`conv2d_forward_maxpool2x2`] on this tier.
    #[allow(clippy::too_many_arguments)]
    pub fn conv2d_forward_maxpool2x2(
        &self,
        g: &Conv2dGeometry,
        input: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
        activation: Activation,
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<()> {
        let algo = ConvAlgo::Auto;
        self.conv2d_forward_maxpool2x2_with(g, algo, input, weight, bias, activation, out, scratch)
    }

    /// [`conv2d_forward_maxpool2x2`] on this tier with a pinned algorithm (each pools in
    /// its own epilogue: Winograd per 2x2 output tile, the direct kernel in registers,
    /// im2col from the GEMM's staged output planes).
    #[allow(clippy::too_many_arguments)]
    pub fn conv2d_forward_maxpool2x2_with(
        &self,
        g: &Conv2dGeometry,
        algo: ConvAlgo,
        input: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
        activation: Activation,
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<()> {
        let op = "conv2d_forward_maxpool2x2";
        self.forward_unpacked(
            op, g, algo, input, weight, bias, activation, true, out, scratch,
        )
    }

    /// The unpacked forward entry points' shared body: the buffers, then the algorithm
    /// `algo` resolves to (fused with the pool when `pool`, where `Auto` takes the direct
    /// kernel if it pays), on weights prepared per call.
    #[allow(clippy::too_many_arguments)]
    fn forward_unpacked(
        &self,
        op: &'static str,
        g: &Conv2dGeometry,
        algo: ConvAlgo,
        input: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
        activation: Activation,
        pool: bool,
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<()> {
        check_forward(op, g, input, bias, out, scratch, pool)?;
        check_len(op, "weight", weight.len(), g.weight_len())?;
        let relu = activation == Activation::Relu;
        let algo = if pool && algo == ConvAlgo::Auto && direct_pays(g.in_channels, self.isa) {
            ConvAlgo::Direct
        } else {
            algo.resolve_for(g, self.isa)
        };
        let forward_raw = match algo {
            ConvAlgo::Direct => direct::forward_raw,
            ConvAlgo::Winograd => winograd::forward_raw,
            _ => im2col::forward_raw,
        };
        forward_raw(self, g, input, weight, bias, relu, pool, out, scratch)
    }

    /// [`conv2d_backward_input`] on this tier.
    pub fn conv2d_backward_input(
        &self,
        g: &Conv2dGeometry,
        grad_out: &[f32],
        weight: &[f32],
        grad_input: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<()> {
        const OP: &str = "conv2d_backward_input";
        check_len(OP, "grad_out", grad_out.len(), g.output_len())?;
        check_len(OP, "weight", weight.len(), g.weight_len())?;
        check_len(OP, "grad_input", grad_input.len(), g.input_len())?;
        check_scratch(OP, g, scratch)?;
        im2col::backward_input(self, g, grad_out, weight, grad_input, scratch)
    }

    /// [`conv2d_backward_weight`] on this tier.
    pub fn conv2d_backward_weight(
        &self,
        g: &Conv2dGeometry,
        input: &[f32],
        grad_out: &[f32],
        grad_weight: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<()> {
        const OP: &str = "conv2d_backward_weight";
        check_len(OP, "input", input.len(), g.input_len())?;
        check_len(OP, "grad_out", grad_out.len(), g.output_len())?;
        check_len(OP, "grad_weight", grad_weight.len(), g.weight_len())?;
        check_scratch(OP, g, scratch)?;
        im2col::backward_weight(self, g, input, grad_out, grad_weight, scratch)
    }

    /// [`conv2d_backward_bias`] on this tier: per channel, the batch in order, each plane
    /// summed in the tier's fixed order.
    pub fn conv2d_backward_bias(
        &self,
        g: &Conv2dGeometry,
        grad_out: &[f32],
        grad_bias: &mut [f32],
    ) -> Result<()> {
        const OP: &str = "conv2d_backward_bias";
        check_len(OP, "grad_out", grad_out.len(), g.output_len())?;
        check_len(OP, "grad_bias", grad_bias.len(), g.out_channels)?;
        let p = g.out_h * g.out_w;
        for (oc, b) in grad_bias.iter_mut().enumerate() {
            let mut acc = 0.0f32;
            for n in 0..g.batch {
                acc += (self.sum)(&grad_out[(n * g.out_channels + oc) * p..][..p]);
            }
            *b = acc;
        }
        Ok(())
    }
}
