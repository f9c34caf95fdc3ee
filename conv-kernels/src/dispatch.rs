//! Runtime CPU dispatch: the [`Isa`] tiers and the [`Kernels`] table of safe fn pointers.
//!
//! The table starts from the portable tier (always present, the fallback) and, on x86_64,
//! `plug_avx2` overrides its entries when AVX2 and FMA are both detected. The process-wide
//! choice is made once ([`kernels`], a `LazyLock`) and logged once at info level.
//!
//! `FEDGE_SIMD=portable|avx2` forces a tier. Forcing `avx2` on a CPU without AVX2+FMA is
//! refused with a warning and the portable tier is used: the same binary runs everywhere.
//! Tests and benches can hold any available tier at once with [`Kernels::for_isa`].
//!
//! Bit-identical results are promised per tier (and for any thread count), not across tiers:
//! FMA rounds once where the portable tier may round twice.

use crate::simd::portable::Portable;
use std::sync::LazyLock;

/// An instruction-set tier of the kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Baseline SIMD of the target (`wide::f32x4`: SSE2 on x86_64, NEON on aarch64).
    Portable,
    /// x86_64 AVX2 + FMA, 8 lanes, fused multiply-add.
    Avx2Fma,
}

impl Isa {
    /// Whether this CPU can run the tier.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Portable => true,
            Isa::Avx2Fma => avx2_fma_detected(),
        }
    }
    /// The name used by `FEDGE_SIMD`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2Fma => "avx2",
        }
    }
    /// The best tier this CPU supports.
    pub fn best_available() -> Isa {
        if Isa::Avx2Fma.is_available() {
            Isa::Avx2Fma
        } else {
            Isa::Portable
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn avx2_fma_detected() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

#[cfg(not(target_arch = "x86_64"))]
fn avx2_fma_detected() -> bool {
    false
}

/// The per-tier inner kernels, as safe fn pointers. Obtain the process-wide table with
/// [`kernels`], or a specific tier with [`Kernels::for_isa`]; the public kernel methods on
/// this type (e.g. [`Kernels::conv2d_forward`]) validate their arguments like the free fns.
#[derive(Debug, Clone, Copy)]
pub struct Kernels {
    pub(crate) isa: Isa,
    pub(crate) lanes: usize,
    pub(crate) fma_chains: fn(usize) -> f32,
    pub(crate) winograd_weights: fn(&[f32], &mut [f32]),
    pub(crate) winograd_input: fn(&crate::geometry::Conv2dGeometry, &[f32], usize, &mut [f32]),
    pub(crate) winograd_output:
        fn(&crate::geometry::Conv2dGeometry, &crate::conv2d::winograd::OutputArgs<'_>, &mut [f32]),
    pub(crate) relu_forward: fn(&[f32], &mut [f32]),
    pub(crate) relu_forward_inplace: fn(&mut [f32]),
    pub(crate) relu_backward: fn(&[f32], &[f32], &mut [f32]),
    pub(crate) relu_backward_inplace: fn(&[f32], &mut [f32]),
    pub(crate) mul: fn(&[f32], &[f32], &mut [f32]),
    pub(crate) mul_inplace: fn(&mut [f32], &[f32]),
    pub(crate) bias_act: fn(&mut [f32], f32, bool),
    pub(crate) add_assign: fn(&mut [f32], &[f32]),
    pub(crate) sum: fn(&[f32]) -> f32,
    pub(crate) conv_direct_plane: fn(&crate::conv2d::direct::PlaneArgs<'_>, &mut [f32]),
    pub(crate) im2col: fn(&crate::geometry::Conv2dGeometry, &[f32], usize, &mut [f32]),
    pub(crate) dense_rows: DenseRowsFn,
    pub(crate) maxpool_2x2_plane:
        fn(&crate::geometry::Pool2dGeometry, &[f32], &mut [f32], &mut [u32]),
    pub(crate) gemm_tile: fn() -> crate::gemm::Tile,
    pub(crate) gemm_block: fn(&crate::gemm::microkernel::BlockArgs<'_>, &mut [f32]),
}

/// `(x, w, bias, relu, y)`: one image through a block of dense rows (see `dense_rows_simd`).
pub(crate) type DenseRowsFn = fn(&[f32], &[f32], Option<&[f32]>, bool, &mut [f32]);

/// Declares, for each generic algorithm, a portable entry and an AVX2+FMA entry (x86_64 only).
macro_rules! entries {
    ($( $name:ident => $($generic:ident)::+ : ($($arg:ident : $ty:ty),*) $(-> $ret:ty)? ;)*) => {
        mod portable_entries {
            #[allow(unused_imports)]
            use super::*;
            $(
                pub(super) fn $name($($arg: $ty),*) $(-> $ret)? {
                    // SAFETY: `Portable` uses only the target's baseline ISA, always present.
                    unsafe { $($generic)::+::<Portable>($($arg),*) }
                }
            )*
        }
        #[cfg(target_arch = "x86_64")]
        mod avx2_entries {
            #[allow(unused_imports)]
            use super::*;
            use crate::simd::x86_64::Avx2;
            $(
                pub(super) fn $name($($arg: $ty),*) $(-> $ret)? {
                    #[target_feature(enable = "avx2,fma")]
                    unsafe fn body($($arg: $ty),*) $(-> $ret)? {
                        // SAFETY: this fn is compiled for AVX2+FMA, `Avx2`'s only precondition,
                        // and is only called after detection (below).
                        unsafe { $($generic)::+::<Avx2>($($arg),*) }
                    }
                    // SAFETY: this entry is installed in a `Kernels` table only by
                    // `plug_avx2`, which `Kernels::for_isa` calls after checking that the CPU
                    // has AVX2 and FMA (`Isa::Avx2Fma.is_available()`).
                    unsafe { body($($arg),*) }
                }
            )*
        }
    };
}

use crate::conv2d::direct::PlaneArgs;

entries! {
    relu_forward => crate::activation::relu_forward_simd: (x: &[f32], y: &mut [f32]);
    relu_forward_inplace => crate::activation::relu_forward_inplace_simd: (x: &mut [f32]);
    relu_backward => crate::activation::relu_backward_simd: (y: &[f32], dy: &[f32], dx: &mut [f32]);
    relu_backward_inplace => crate::activation::relu_backward_inplace_simd: (y: &[f32], g: &mut [f32]);
    mul => crate::dropout::mul_simd: (a: &[f32], b: &[f32], out: &mut [f32]);
    mul_inplace => crate::dropout::mul_inplace_simd: (x: &mut [f32], m: &[f32]);
    bias_act => crate::activation::bias_act_simd: (x: &mut [f32], b: f32, relu: bool);
    add_assign => crate::activation::add_assign_simd: (dst: &mut [f32], src: &[f32]);
    sum => crate::activation::sum_simd: (x: &[f32]) -> f32;
    conv_direct_plane => crate::conv2d::direct::conv_plane: (a: &PlaneArgs<'_>, out: &mut [f32]);
    im2col => crate::conv2d::im2col::im2col_simd: (g: &crate::geometry::Conv2dGeometry, x: &[f32], nimg: usize, col: &mut [f32]);
    dense_rows => crate::dense::dense_rows_simd: (x: &[f32], w: &[f32], bias: Option<&[f32]>, relu: bool, y: &mut [f32]);
    maxpool_2x2_plane => crate::pool::plane_2x2_simd: (g: &crate::geometry::Pool2dGeometry, x: &[f32], out: &mut [f32], argmax: &mut [u32]);
    fma_chains => crate::peak::fma_chains_simd: (iters: usize) -> f32;
    winograd_weights => crate::conv2d::winograd::weights_simd: (w: &[f32], u: &mut [f32]);
    winograd_input => crate::conv2d::winograd::input_simd: (g: &crate::geometry::Conv2dGeometry, x: &[f32], nimg: usize, v: &mut [f32]);
    winograd_output => crate::conv2d::winograd::output_simd: (g: &crate::geometry::Conv2dGeometry, a: &crate::conv2d::winograd::OutputArgs<'_>, out: &mut [f32]);
    gemm_tile => crate::gemm::microkernel::tile_simd: () -> crate::gemm::Tile;
    gemm_block => crate::gemm::microkernel::block_simd: (a: &crate::gemm::microkernel::BlockArgs<'_>, c: &mut [f32]);
}

impl Kernels {
    fn portable() -> Self {
        use portable_entries as p;
        Kernels {
            isa: Isa::Portable,
            lanes: 4,
            fma_chains: p::fma_chains,
            winograd_weights: p::winograd_weights,
            winograd_input: p::winograd_input,
            winograd_output: p::winograd_output,
            relu_forward: p::relu_forward,
            relu_forward_inplace: p::relu_forward_inplace,
            relu_backward: p::relu_backward,
            relu_backward_inplace: p::relu_backward_inplace,
            mul: p::mul,
            mul_inplace: p::mul_inplace,
            bias_act: p::bias_act,
            add_assign: p::add_assign,
            sum: p::sum,
            conv_direct_plane: p::conv_direct_plane,
            im2col: p::im2col,
            dense_rows: p::dense_rows,
            maxpool_2x2_plane: p::maxpool_2x2_plane,
            gemm_tile: p::gemm_tile,
            gemm_block: p::gemm_block,
        }
    }

    /// Overrides every entry with its AVX2+FMA version. Only call after detection.
    #[cfg(target_arch = "x86_64")]
    fn plug_avx2(mut self) -> Self {
        use avx2_entries as a;
        self.isa = Isa::Avx2Fma;
        self.lanes = 8;
        self.fma_chains = a::fma_chains;
        self.winograd_weights = a::winograd_weights;
        self.winograd_input = a::winograd_input;
        self.winograd_output = a::winograd_output;
        self.relu_forward = a::relu_forward;
        self.relu_forward_inplace = a::relu_forward_inplace;
        self.relu_backward = a::relu_backward;
        self.relu_backward_inplace = a::relu_backward_inplace;
        self.mul = a::mul;
        self.mul_inplace = a::mul_inplace;
        self.bias_act = a::bias_act;
        self.add_assign = a::add_assign;
        self.sum = a::sum;
        self.conv_direct_plane = a::conv_direct_plane;
        self.im2col = a::im2col;
        self.dense_rows = a::dense_rows;
        self.maxpool_2x2_plane = a::maxpool_2x2_plane;
        self.gemm_tile = a::gemm_tile;
        self.gemm_block = a::gemm_block;
        self
    }

    /// The table of `isa`, or `None` if this CPU cannot run it.
    pub fn for_isa(isa: Isa) -> Option<&'static Kernels> {
        match isa {
            Isa::Portable => Some(&PORTABLE),
            Isa::Avx2Fma => AVX2.as_ref(),
        }
    }

    /// The tier of this table.
    pub fn isa(&self) -> Isa {
        self.isa
    }
}

static PORTABLE: LazyLock<Kernels> = LazyLock::new(Kernels::portable);

static AVX2: LazyLock<Option<Kernels>> = LazyLock::new(|| {
    #[cfg(target_arch = "x86_64")]
    if Isa::Avx2Fma.is_available() {
        return Some(Kernels::portable().plug_avx2());
    }
    None
});

static ACTIVE: LazyLock<&'static Kernels> = LazyLock::new(select);

/// Why a tier was chosen, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    BestDetected,
    Forced,
    /// `FEDGE_SIMD=avx2` on a CPU without AVX2+FMA.
    Avx2Refused,
    /// `FEDGE_SIMD` had another value.
    UnknownValue,
}

/// The tier for a `FEDGE_SIMD` value on a CPU with or without AVX2+FMA (pure, for tests).
fn choose(requested: Option<&str>, avx2_available: bool) -> (Isa, Choice) {
    let best = if avx2_available {
        Isa::Avx2Fma
    } else {
        Isa::Portable
    };
    match requested.map(str::trim) {
        None | Some("") => (best, Choice::BestDetected),
        Some("portable") => (Isa::Portable, Choice::Forced),
        Some("avx2") if avx2_available => (Isa::Avx2Fma, Choice::Forced),
        Some("avx2") => (Isa::Portable, Choice::Avx2Refused),
        Some(_) => (best, Choice::UnknownValue),
    }
}

fn select() -> &'static Kernels {
    let requested = std::env::var("FEDGE_SIMD").ok();
    let (isa, choice) = choose(requested.as_deref(), Isa::Avx2Fma.is_available());
    match choice {
        Choice::Avx2Refused => tracing::warn!(
            "FEDGE_SIMD=avx2 refused: this CPU lacks AVX2 and/or FMA; using the portable tier"
        ),
        Choice::UnknownValue => tracing::warn!(
            value = requested.as_deref().unwrap_or(""),
            "FEDGE_SIMD must be `portable` or `avx2`; ignored"
        ),
        Choice::BestDetected | Choice::Forced => {}
    }
    let table = Kernels::for_isa(isa).unwrap_or(&PORTABLE);
    tracing::info!(
        isa = table.isa.name(),
        choice = ?choice,
        avx2_fma_detected = Isa::Avx2Fma.is_available(),
        "conv-kernels SIMD tier selected"
    );
    table
}

/// The process-wide kernel table (chosen and logged on first use).
pub fn kernels() -> &'static Kernels {
    *ACTIVE
}

/// The tier the free kernel functions run on.
pub fn active_isa() -> Isa {
    kernels().isa
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fedge_simd_override_is_honoured_or_refused() {
        assert_eq!(choose(None, true), (Isa::Avx2Fma, Choice::BestDetected));
        assert_eq!(choose(None, false), (Isa::Portable, Choice::BestDetected));
        assert_eq!(
            choose(Some("portable"), true),
            (Isa::Portable, Choice::Forced)
        );
        assert_eq!(choose(Some("avx2"), true), (Isa::Avx2Fma, Choice::Forced));
        // Forcing AVX2 on a CPU without it must never install the AVX2 table.
        assert_eq!(
            choose(Some("avx2"), false),
            (Isa::Portable, Choice::Avx2Refused)
        );
        assert_eq!(
            choose(Some("sse9"), false),
            (Isa::Portable, Choice::UnknownValue)
        );
    }

    #[test]
    fn avx2_table_exists_only_when_detected() {
        assert_eq!(
            Kernels::for_isa(Isa::Avx2Fma).is_some(),
            Isa::Avx2Fma.is_available()
        );
        assert_eq!(
            Kernels::for_isa(Isa::Portable).map(|k| k.isa()),
            Some(Isa::Portable)
        );
        assert!(active_isa().is_available());
    }
}
