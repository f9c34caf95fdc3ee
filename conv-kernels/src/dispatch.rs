//! Runtime CPU dispatch: the [`Isa`] tiers, the one list of per-tier kernels, and the
//! [`Kernels`] table of safe fn pointers.
//!
//! Every dispatched kernel is named once, in `with_kernel_list!`: entry name, the generic
//! algorithm (`unsafe fn f<V: F32Vec>`), and its signature. That list declares the fields of
//! [`Kernels`], and each tier's own module instantiates it for its vector type
//! (`simd/portable.rs`, `simd/aarch64.rs`, `simd/x86_64/avx2.rs`, `simd/x86_64/avx512.rs`:
//! each a `table()` calling `simd::tier_table!`); a tier with a kernel of its own overrides
//! that entry there. Adding a kernel is one line here; adding a tier is one module and one
//! [`Isa`] variant.
//!
//! The process-wide choice is made once ([`kernels`], a `LazyLock`) and logged once at info
//! level. `FEDGE_SIMD=portable|neon|avx2|avx512` forces a tier; forcing one the CPU lacks is
//! refused with a warning and the best detected tier runs instead: the same binary runs
//! everywhere. Tests and benches can hold every available tier at once with
//! [`Kernels::for_isa`].
//!
//! Bit-identical results are promised per tier (and for any thread count), not across tiers:
//! vector widths change summation orders, and FMA rounds once where the portable tier may
//! round twice.

use std::sync::LazyLock;

/// An instruction-set tier of the kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Baseline SIMD of the target (`wide::f32x4`: SSE2 on x86_64, NEON on aarch64).
    Portable,
    /// aarch64 NEON intrinsics, 4 lanes, fused multiply-add (baseline on aarch64).
    Neon,
    /// x86_64 AVX2 + FMA, 8 lanes, fused multiply-add.
    Avx2Fma,
    /// x86_64 AVX-512F (with AVX2 + FMA), 16 lanes, fused multiply-add.
    Avx512,
}

impl Isa {
    /// Every tier, narrowest first (the last available one is the best).
    pub const ALL: [Isa; 4] = [Isa::Portable, Isa::Neon, Isa::Avx2Fma, Isa::Avx512];

    /// Whether this CPU can run the tier.
    pub fn is_available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        use crate::simd::x86_64::{avx2_fma_detected, avx512_detected};
        #[cfg(not(target_arch = "x86_64"))]
        let (avx2_fma_detected, avx512_detected) = (|| false, || false);
        match self {
            Isa::Portable => true,
            Isa::Neon => cfg!(target_arch = "aarch64"),
            Isa::Avx2Fma => avx2_fma_detected(),
            Isa::Avx512 => avx512_detected(),
        }
    }
    /// The name used by `FEDGE_SIMD`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Neon => "neon",
            Isa::Avx2Fma => "avx2",
            Isa::Avx512 => "avx512",
        }
    }
    /// f32 lanes per vector of the tier.
    pub fn lanes(self) -> usize {
        match self {
            Isa::Portable | Isa::Neon => 4,
            Isa::Avx2Fma => 8,
            Isa::Avx512 => 16,
        }
    }
    /// The best tier this CPU supports.
    pub fn best_available() -> Isa {
        best_of(Isa::is_available)
    }
}

fn best_of(available: impl Fn(Isa) -> bool) -> Isa {
    Isa::ALL
        .into_iter()
        .rev()
        .find(|&i| available(i))
        .unwrap_or(Isa::Portable)
}

/// The one list of dispatched kernels: `entry => generic algorithm : (signature);`.
/// Invokes `$callback! { $args <the list> }`; the callbacks are [`declare_kernels!`]
/// (the [`Kernels`] fields) and [`crate::simd::tier_table!`] (one tier's table).
macro_rules! with_kernel_list {
    ($($callback:ident)::+ ! $args:tt) => {
        $($callback)::+! { $args
            fma_chains => crate::peak::fma_chains_simd: (iters: usize) -> f32;
            relu_forward => crate::elementwise::relu_forward_simd: (x: &[f32], y: &mut [f32]);
            relu_forward_inplace => crate::elementwise::relu_forward_inplace_simd: (x: &mut [f32]);
            relu_backward => crate::elementwise::relu_backward_simd: (y: &[f32], dy: &[f32], dx: &mut [f32]);
            relu_backward_inplace => crate::elementwise::relu_backward_inplace_simd: (y: &[f32], g: &mut [f32]);
            mul => crate::elementwise::mul_simd: (a: &[f32], b: &[f32], out: &mut [f32]);
            mul_inplace => crate::elementwise::mul_inplace_simd: (x: &mut [f32], m: &[f32]);
            bias_act => crate::elementwise::bias_act_simd: (x: &mut [f32], b: f32, relu: bool);
            add_assign => crate::elementwise::add_assign_simd: (dst: &mut [f32], src: &[f32]);
            sum => crate::elementwise::sum_simd: (x: &[f32]) -> f32;
            conv_direct_image => crate::conv2d::direct::image_simd: (a: &crate::conv2d::direct::ImageArgs<'_>, tile: &mut [f32], out: &mut [f32]);
            im2col => crate::conv2d::im2col::im2col_simd: (g: &crate::geometry::Conv2dGeometry, x: &[f32], nimg: usize, col: &mut [f32]);
            im2col_panels => crate::conv2d::im2col::im2col_panels_simd: (g: &crate::geometry::Conv2dGeometry, x: &[f32], nimg: usize, nr: usize, kc: usize, dst: &mut [f32]);
            winograd_weights => crate::conv2d::winograd::weights_simd: (w: &[f32], u: &mut [f32]);
            winograd_input => crate::conv2d::winograd::input_simd: (g: &crate::geometry::Conv2dGeometry, x: &[f32], channels_last: bool, nimg: usize, cp: usize, stage: &mut [f32], v: &mut [f32]);
            winograd_output => crate::conv2d::winograd::output_simd: (g: &crate::geometry::Conv2dGeometry, a: &crate::conv2d::winograd::OutputArgs<'_>, out: &mut [f32]);
            dense_rows => crate::dense::dense_rows_simd: (x: &[f32], w: &[f32], bias: Option<&[f32]>, relu: bool, y: &mut [f32]);
            maxpool_2x2_plane => crate::pool::plane_2x2_simd: (g: &crate::geometry::Pool2dGeometry, x: &[f32], out: &mut [f32], argmax: &mut [u32]);
            maxpool_2x2_values => crate::pool::plane_2x2_values_simd: (g: &crate::geometry::Pool2dGeometry, x: &[f32], out: &mut [f32]);
            gemm_tile => crate::gemm::microkernel::tile_simd: () -> crate::gemm::Tile;
            gemm_block => crate::gemm::microkernel::block_simd: (a: &crate::gemm::microkernel::BlockArgs<'_>, c: &mut [f32]);
        }
    };
}
pub(crate) use with_kernel_list;

/// Declares [`Kernels`] from the kernel list.
macro_rules! declare_kernels {
    ({} $( $name:ident => $($generic:ident)::+ : ($($arg:ident : $ty:ty),*) $(-> $ret:ty)? ;)*) => {
        /// The per-tier inner kernels, as safe fn pointers. Obtain the process-wide table with
        /// [`kernels`], or a specific tier with [`Kernels::for_isa`]; the public kernel
        /// methods on this type (e.g. [`Kernels::conv2d_forward`]) validate their arguments
        /// like the free fns.
        #[derive(Debug, Clone, Copy)]
        pub struct Kernels {
            pub(crate) isa: Isa,
            pub(crate) lanes: usize,
            $( pub(crate) $name: fn($($ty),*) $(-> $ret)?, )*
        }
    };
}

with_kernel_list!(declare_kernels! {});

impl Kernels {
    /// The table of `isa`, or `None` if this CPU cannot run it.
    pub fn for_isa(isa: Isa) -> Option<&'static Kernels> {
        match isa {
            Isa::Portable => Some(&PORTABLE),
            Isa::Neon => NEON.as_ref(),
            Isa::Avx2Fma => AVX2.as_ref(),
            Isa::Avx512 => AVX512.as_ref(),
        }
    }

    /// Every tier this CPU can run, narrowest first.
    pub fn available() -> impl Iterator<Item = &'static Kernels> {
        Isa::ALL.into_iter().filter_map(Kernels::for_isa)
    }

    /// The tier of this table.
    pub fn isa(&self) -> Isa {
        self.isa
    }
}

static PORTABLE: LazyLock<Kernels> = LazyLock::new(crate::simd::portable::table);

static NEON: LazyLock<Option<Kernels>> = LazyLock::new(|| {
    #[cfg(target_arch = "aarch64")]
    let table = Some(crate::simd::aarch64::table());
    #[cfg(not(target_arch = "aarch64"))]
    let table = None;
    table
});

static AVX2: LazyLock<Option<Kernels>> = LazyLock::new(|| {
    #[cfg(target_arch = "x86_64")]
    if Isa::Avx2Fma.is_available() {
        // SAFETY: AVX2 and FMA were just detected, the table's only precondition.
        return Some(unsafe { crate::simd::x86_64::avx2::table() });
    }
    None
});

static AVX512: LazyLock<Option<Kernels>> = LazyLock::new(|| {
    #[cfg(target_arch = "x86_64")]
    if Isa::Avx512.is_available() {
        // SAFETY: AVX-512F, AVX2 and FMA were just detected, the table's only precondition.
        return Some(unsafe { crate::simd::x86_64::avx512::table() });
    }
    None
});

static ACTIVE: LazyLock<&'static Kernels> = LazyLock::new(select);

/// Why a tier was chosen, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    BestDetected,
    Forced,
    /// `FEDGE_SIMD` named a tier this CPU lacks.
    Refused,
    /// `FEDGE_SIMD` had another value.
    UnknownValue,
}

/// The tier for a `FEDGE_SIMD` value, given which tiers the CPU has (pure, for tests).
fn choose(requested: Option<&str>, available: impl Fn(Isa) -> bool) -> (Isa, Choice) {
    let best = best_of(&available);
    let Some(req) = requested.map(str::trim).filter(|r| !r.is_empty()) else {
        return (best, Choice::BestDetected);
    };
    match Isa::ALL.into_iter().find(|i| i.name() == req) {
        Some(isa) if available(isa) => (isa, Choice::Forced),
        Some(_) => (best, Choice::Refused),
        None => (best, Choice::UnknownValue),
    }
}

fn select() -> &'static Kernels {
    let requested = std::env::var("FEDGE_SIMD").ok();
    let (isa, choice) = choose(requested.as_deref(), Isa::is_available);
    let value = requested.as_deref().unwrap_or("");
    match choice {
        Choice::Refused => tracing::warn!(
            value,
            using = isa.name(),
            "FEDGE_SIMD refused: this CPU lacks that tier; using the best detected one"
        ),
        Choice::UnknownValue => tracing::warn!(
            value,
            "FEDGE_SIMD must be `portable`, `neon`, `avx2` or `avx512`; ignored"
        ),
        Choice::BestDetected | Choice::Forced => {}
    }
    let table = Kernels::for_isa(isa).unwrap_or(&PORTABLE);
    tracing::info!(
        isa = table.isa.name(),
        choice = ?choice,
        avx2_fma_detected = Isa::Avx2Fma.is_available(),
        avx512_detected = Isa::Avx512.is_available(),
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
        let all = |i: Isa| i != Isa::Neon;
        let no512 = |i: Isa| i != Isa::Avx512 && i != Isa::Neon;
        let none = |i: Isa| i == Isa::Portable;
        let arm = |i: Isa| i == Isa::Portable || i == Isa::Neon;
        assert_eq!(choose(None, arm), (Isa::Neon, Choice::BestDetected));
        assert_eq!(
            choose(Some("portable"), arm),
            (Isa::Portable, Choice::Forced)
        );
        assert_eq!(choose(Some("avx2"), arm), (Isa::Neon, Choice::Refused));
        assert_eq!(choose(Some("neon"), no512), (Isa::Avx2Fma, Choice::Refused));
        assert_eq!(choose(None, all), (Isa::Avx512, Choice::BestDetected));
        assert_eq!(
            choose(Some(""), no512),
            (Isa::Avx2Fma, Choice::BestDetected)
        );
        assert_eq!(choose(None, none), (Isa::Portable, Choice::BestDetected));
        assert_eq!(
            choose(Some("portable"), all),
            (Isa::Portable, Choice::Forced)
        );
        assert_eq!(choose(Some("avx2"), all), (Isa::Avx2Fma, Choice::Forced));
        assert_eq!(choose(Some(" avx512 "), all), (Isa::Avx512, Choice::Forced));
        // Forcing a tier the CPU lacks must never install its table.
        assert_eq!(
            choose(Some("avx512"), no512),
            (Isa::Avx2Fma, Choice::Refused)
        );
        assert_eq!(choose(Some("avx2"), none), (Isa::Portable, Choice::Refused));
        assert_eq!(
            choose(Some("sse9"), none),
            (Isa::Portable, Choice::UnknownValue)
        );
    }

    #[test]
    fn a_table_exists_only_when_its_tier_is_detected() {
        for isa in Isa::ALL {
            let k = Kernels::for_isa(isa);
            assert_eq!(k.is_some(), isa.is_available(), "{isa:?}");
            if let Some(k) = k {
                assert_eq!((k.isa(), k.lanes), (isa, isa.lanes()));
            }
        }
        assert!(Kernels::for_isa(Isa::Portable).is_some());
        assert!(active_isa().is_available());
        // AVX-512 implies AVX2+FMA (its tails run 8-lane AVX2 code).
        assert!(!Isa::Avx512.is_available() || Isa::Avx2Fma.is_available());
    }
}
