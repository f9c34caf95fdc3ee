//! # conv-kernels: where all of fedge's compute happens
//!
//! Pure functions over `&[f32]` / `&mut [f32]` with explicit, checked shapes. A geometry
//! ([`Conv2dGeometry`], [`Pool2dGeometry`], [`DenseGeometry`]) validates a shape once; every
//! public kernel checks its buffers against it and returns a [`KernelError`] instead of
//! touching memory it should not. The free functions ([`conv2d_forward`], [`dense_forward`],
//! ...) run on the process-wide [`Kernels`] table; the same methods on a table obtained with
//! [`Kernels::for_isa`] pin a SIMD tier (tests run every tier in one process), and
//! [`Kernels::conv2d_forward`] also pins a [`ConvAlgo`]. The crate knows nothing of layers or
//! models; `engine` builds those on top.
//!
//! ```
//! use conv_kernels::{Activation, Conv2dGeometry, Padding, conv2d_forward, conv2d_scratch_len};
//! // One 3x3 image, one 2x2 all-ones filter, bias 0.5, 'valid': each output sums a window.
//! let g = Conv2dGeometry::new(1, 1, 3, 3, 1, 2, 2, Padding::Valid)?;
//! let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
//! let mut out = [0.0; 4];
//! let mut scratch = vec![0.0; conv2d_scratch_len(&g)];
//! conv2d_forward(&g, &x, &[1.0; 4], Some(&[0.5]), Activation::Relu, &mut out, &mut scratch)?;
//! assert_eq!(out, [12.5, 16.5, 24.5, 28.5]);
//! # Ok::<(), conv_kernels::KernelError>(())
//! ```
//!
//! ## Layouts
//! Activations NCHW (the packed conv path can also pass `[N, H, W, C]` between two layers:
//! [`Layout`]); conv weights OIHW `(out, in, kh, kw)`; dense input `[N, in]`, weights
//! `[out, in]` (PyTorch's layouts, so safetensors files map 1:1). Callers own outputs and
//! scratch ([`conv2d_scratch_len`] sizes the conv scratch); the only allocations are our
//! GEMM's per-thread packing buffer (grown once, then reused) and the unpacked Winograd
//! path's per-call filter transform (use [`PackedConv`] to do it once). Each
//! family keeps a naive `reference` module beside it: the oracle of the tests and benches.
//!
//! ## Algorithms
//! GEMMs run on one of two implementations behind [`gemm`], chosen per call site by
//! measurement ([`Kernels::gemm_beats_matrixmultiply`]): our register-blocked GEMM
//! ([`Kernels::gemm`], microkernel written once over the vector trait, 6x8 / 6x16 / 8x32
//! tiles on the portable / AVX2 / AVX-512 tiers), fed by weights packed once per model
//! version ([`PackedConv`], [`PackedDense`]) for the inference forward passes; and
//! [`gemm::sgemm`], a checked wrapper over `matrixmultiply::sgemm`, for the gradients, the
//! im2col conv1 and the portable tier (and as the tests' and benches' reference line).
//! Transposes are strides, never copies. conv2d uses im2col + GEMM with a fused bias + ReLU
//! epilogue, col2im for the input gradient; see [`conv2d`] for the algorithms and when each
//! wins. Element-wise kernels (ReLU, dropout, epilogues, sums), im2col, the 2x2 max-pool and
//! the small-batch dense GEMV ([`dense::GEMV_MAX_BATCH`]) run on the dispatched SIMD tier.
//!
//! ## SIMD dispatch
//! [`dispatch`] holds four tiers: `Portable` (`wide::f32x4`: SSE2 on x86_64, NEON on
//! aarch64), `Neon` (aarch64, 4 lanes of `core::arch::aarch64` intrinsics with FMA),
//! `Avx2Fma` (8 lanes, `core::arch` intrinsics inside `#[target_feature(enable =
//! "avx2,fma")]` fns) and `Avx512` (16 lanes, AVX-512F, compiled with AVX2+FMA too). Each
//! algorithm is written once, generic over a small vector trait; the dispatched kernels are
//! listed once in [`dispatch`] and each tier's module instantiates the list for its vector
//! type. The best detected tier is chosen once, logged once (tracing, info), and can be
//! forced with **`FEDGE_SIMD=portable|neon|avx2|avx512`**; forcing a tier the CPU lacks is
//! refused with a warning and the best detected tier runs. The same binary runs on any
//! x86_64 or aarch64 CPU.
//!
//! ## Threads and determinism
//! [`threads`] sizes parallelism from **`FEDGE_THREADS`** or
//! `std::thread::available_parallelism()` (which honours cgroup CPU quotas); kernels run on
//! rayon's current pool. Work is split only over disjoint output blocks (chunks of images,
//! row panels of a GEMM output); the weight gradient reduces over the batch in a fixed chunk
//! order that depends on the geometry alone. Results are therefore bit-identical for any
//! thread count (tested with 1 vs 2 threads); they are *not* bit-identical across tiers
//! (FMA rounds once), nor across batch sizes on either side of
//! [`dense::GEMV_MAX_BATCH`] (the small-batch dense path sums in another order). Below [`threads::PAR_MIN_FLOPS`] of work, or with one thread, kernels
//! run inline without entering the pool.
//!
//! ## Unsafe policy
//! `unsafe` lives only in leaf code: the one `matrixmultiply::sgemm` call in [`gemm`], after
//! every index it can touch has been checked against its slice; and the SIMD tier code
//! (our GEMM microkernel included, which reads its packed panels through slices), whose
//! vector loads and stores go through bounds-checked slices and whose only precondition (the
//! CPU supports the tier) is established by detection before a tier's table exists. Every
//! `unsafe` block carries a `// SAFETY:` comment; `unsafe_op_in_unsafe_fn`,
//! `clippy::undocumented_unsafe_blocks` and `clippy::missing_safety_doc` are denied.
//!
//! ## Environment variables
//! | variable | effect |
//! |---|---|
//! | `FEDGE_SIMD` | `portable`, `neon`, `avx2` or `avx512`: force a tier (read once) |
//! | `FEDGE_THREADS` | positive integer: thread budget (read once) |
//! | `FEDGE_REQUIRE_AVX2` | tests only: `1` turns "AVX2 missing, tier skipped" into a failure |
//! | `FEDGE_REQUIRE_AVX512` | tests only: `1` turns "AVX-512 missing, tier skipped" into a failure |
//! | `FEDGE_REQUIRE_NEON` | tests only: `1` turns "NEON missing, tier skipped" into a failure (`.ci/aarch64.sh`) |

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

pub mod activation;
pub mod conv2d;
pub mod dense;
pub mod dispatch;
pub mod elementwise;
mod error;
pub mod gemm;
pub mod geometry;
pub mod loss;
pub mod peak;
pub mod pool;
mod simd;
pub mod threads;

pub use activation::Activation;
pub use conv2d::{
    ConvAlgo, Layout, Layouts, PackedConv, conv2d_backward_bias, conv2d_backward_input,
    conv2d_backward_weight, conv2d_forward, conv2d_forward_maxpool2x2,
    conv2d_forward_maxpool2x2_packed, conv2d_forward_packed, conv2d_forward_packed_io,
    conv2d_pool_fusable, conv2d_scratch_len, conv2d_scratch_slot_len, pack_conv2d,
};
pub use dense::{
    PackedDense, dense_backward_bias, dense_backward_input, dense_backward_weight, dense_forward,
    dense_forward_packed, pack_dense,
};
pub use dispatch::{Isa, Kernels, active_isa, kernels};
pub use elementwise::{
    dropout_backward, dropout_forward, dropout_forward_inplace, relu_backward,
    relu_backward_inplace, relu_forward, relu_forward_inplace,
};
pub use error::{KernelError, Result};
pub use geometry::{Conv2dGeometry, DenseGeometry, Padding, Pool2dGeometry};
pub use loss::{softmax_cross_entropy_backward, softmax_cross_entropy_forward, softmax_forward};
pub use pool::{maxpool2d_backward, maxpool2d_forward};
