//! Safe single-precision GEMM over slices: `C ← α·A·B + β·C`, two implementations.
//!
//! * [`sgemm`]: the one door into `matrixmultiply::sgemm` (its `threading` feature stays
//!   off; we split row panels ourselves). The reference of the tests and benches, and the
//!   fallback wherever ours loses.
//! * [`Kernels::gemm`] (`blocked.rs`, `pack.rs`, `microkernel.rs`): our register-blocked
//!   GEMM, its microkernel written once over the SIMD vector trait and instantiated per
//!   tier, with operands that may be packed once ([`PackedPanels`], e.g. weights per model
//!   version) instead of on every call.
//!
//! Matrices are described by a slice plus row and column strides in elements, so transposes
//! are just swapped strides, never copies. Every index the product can touch is checked to lie
//! inside its slice, and C's strides are checked not to alias, before the unsafe call.

mod blocked;
pub(crate) mod microkernel;
pub(crate) mod pack;
pub mod reference;

pub(crate) use blocked::KC;
pub use blocked::Operand;
pub(crate) use microkernel::MAX_NR;
pub use microkernel::Tile;
pub use pack::PackedPanels;
pub(crate) use pack::{PanelsRef, packed_len};

use crate::dispatch::Kernels;
use crate::error::{KernelError, Result};
use rayon::prelude::*;

/// A read-only strided matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    /// Backing storage.
    pub data: &'a [f32],
    /// Row stride in elements.
    pub rs: usize,
    /// Column stride in elements.
    pub cs: usize,
}

impl<'a> MatRef<'a> {
    /// Row-major view with leading dimension `ld` (row stride).
    pub fn row_major(data: &'a [f32], ld: usize) -> Self {
        Self {
            data,
            rs: ld,
            cs: 1,
        }
    }
    /// Column-major view with leading dimension `ld` (column stride): the transpose of a
    /// row-major matrix with that leading dimension.
    pub fn col_major(data: &'a [f32], ld: usize) -> Self {
        Self {
            data,
            rs: 1,
            cs: ld,
        }
    }
}

/// A mutable strided matrix view (the output C).
#[derive(Debug)]
pub struct MatMut<'a> {
    /// Backing storage.
    pub data: &'a mut [f32],
    /// Row stride in elements.
    pub rs: usize,
    /// Column stride in elements.
    pub cs: usize,
}

impl<'a> MatMut<'a> {
    /// Row-major view with leading dimension `ld`.
    pub fn row_major(data: &'a mut [f32], ld: usize) -> Self {
        Self {
            data,
            rs: ld,
            cs: 1,
        }
    }
}

fn err(reason: String) -> KernelError {
    KernelError::Geometry {
        op: "sgemm",
        reason,
    }
}

/// Largest index touched by a `rows x cols` view, or an error if it overflows.
fn extent(rows: usize, cols: usize, rs: usize, cs: usize) -> Result<usize> {
    let r = (rows - 1).checked_mul(rs);
    let c = (cols - 1).checked_mul(cs);
    r.zip(c)
        .and_then(|(r, c)| r.checked_add(c))
        .ok_or(KernelError::Overflow { op: "sgemm" })
}

fn check_view(
    name: &str,
    len: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
) -> Result<()> {
    let last = extent(rows, cols, rs, cs)?;
    if last >= len {
        return Err(err(format!(
            "{name}: {rows}x{cols} view with strides ({rs}, {cs}) reaches index {last}, slice has {len}"
        )));
    }
    if rs > isize::MAX as usize || cs > isize::MAX as usize {
        return Err(KernelError::Overflow { op: "sgemm" });
    }
    Ok(())
}

/// Distinct `(i, j)` of an `m x n` view map to distinct indices: the smaller stride is at
/// least 1 and the larger one steps over the whole extent of the smaller dimension.
fn check_no_alias(m: usize, n: usize, rs: usize, cs: usize) -> Result<()> {
    let ok = match (m, n) {
        (1, 1) => true,
        (1, _) => cs >= 1,
        (_, 1) => rs >= 1,
        _ => {
            let (small, small_dim, large) = if cs <= rs { (cs, n, rs) } else { (rs, m, cs) };
            small >= 1 && small.checked_mul(small_dim).is_some_and(|e| large >= e)
        }
    };
    if ok {
        Ok(())
    } else {
        Err(err(format!(
            "C: strides ({rs}, {cs}) alias elements of a {m}x{n} matrix"
        )))
    }
}

/// `C[m x n] ← alpha · A[m x k] · B[k x n] + beta · C`, single-threaded.
///
/// With `beta == 0`, C's previous contents are ignored (NaNs in it do not propagate).
/// Errors if a view reaches outside its slice or C's strides alias.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: MatMut<'_>,
) -> Result<()> {
    if m == 0 || n == 0 {
        return Ok(());
    }
    check_view("C", c.data.len(), m, n, c.rs, c.cs)?;
    check_no_alias(m, n, c.rs, c.cs)?;
    if k == 0 {
        // Empty sum: C ← beta · C.
        for i in 0..m {
            for j in 0..n {
                let x = &mut c.data[i * c.rs + j * c.cs];
                *x = if beta == 0.0 { 0.0 } else { beta * *x };
            }
        }
        return Ok(());
    }
    check_view("A", a.data.len(), m, k, a.rs, a.cs)?;
    check_view("B", b.data.len(), k, n, b.rs, b.cs)?;
    // SAFETY: every index (i*rs + j*cs) the product reads from A and B or writes in C was
    // checked above to lie inside its slice, all strides fit in isize, and C's strides were
    // checked not to alias; `c` is a unique borrow, so A and B cannot overlap it.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.data.as_mut_ptr(),
            c.rs as isize,
            c.cs as isize,
        );
    }
    Ok(())
}

/// Rows per parallel panel: a multiple of every microkernel height matrixmultiply uses.
const PANEL_ROWS: usize = 64;

/// Runs a row-major C of `m x n` (leading dimension `c_ld`) either whole, `whole(c)`, when
/// one rayon worker is enough, or as row panels of whole `panel` rows over the workers,
/// `part(r0, rows, c_panel)` with `c_panel`'s row 0 being C's row `r0` (C's layout checked
/// first). The split depends on the work, never on what the panels compute.
#[allow(clippy::too_many_arguments)]
fn par_row_panels(
    m: usize,
    k: usize,
    n: usize,
    panel: usize,
    c: &mut [f32],
    c_ld: usize,
    whole: impl FnOnce(&mut [f32]) -> Result<()>,
    part: impl Fn(usize, usize, &mut [f32]) -> Result<()> + Sync,
) -> Result<()> {
    let flops = 2usize.saturating_mul(m).saturating_mul(n).saturating_mul(k);
    let workers = crate::threads::workers_for(flops, m.div_ceil(panel));
    if workers <= 1 {
        return whole(c);
    }
    if c_ld < n {
        return Err(err(format!(
            "C: leading dimension {c_ld} below {n} columns"
        )));
    }
    let needed = extent(m, n, c_ld, 1)? + 1;
    if c.len() < needed {
        return Err(err(format!(
            "C: needs {needed} elements, slice has {}",
            c.len()
        )));
    }
    let rows_per = m.div_ceil(workers).div_ceil(panel) * panel;
    c[..needed]
        .par_chunks_mut(rows_per * c_ld)
        .enumerate()
        .try_for_each(|(p, c_panel)| {
            let r0 = p * rows_per;
            part(r0, rows_per.min(m - r0), c_panel)
        })
}

/// Like [`sgemm`] for a row-major C (`c_ld` ≥ n), split into row panels run on the current
/// rayon pool when the product is big enough. Each C element is computed by exactly the same
/// sequence of operations whatever the split, so results are bit-identical for any thread count.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm_rows_par(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: &mut [f32],
    c_ld: usize,
) -> Result<()> {
    par_row_panels(
        m,
        k,
        n,
        PANEL_ROWS,
        c,
        c_ld,
        |c| sgemm(m, k, n, alpha, a, b, beta, MatMut::row_major(c, c_ld)),
        |r0, rows, c_panel| {
            let a_panel = MatRef {
                data: a.data.get(r0 * a.rs..).unwrap_or(&[]),
                ..a
            };
            let c = MatMut::row_major(c_panel, c_ld);
            sgemm(rows, k, n, alpha, a_panel, b, beta, c)
        },
    )
}

impl Kernels {
    /// Whether our GEMM is the faster one on this tier, measured on the CNN's shapes (kernel
    /// bench `gemm/*`, BENCHMARKS.md): on the AVX2 and AVX-512 tiers, with the weights
    /// packed once. The portable tier's 4-lane microkernel loses to `matrixmultiply`, which
    /// picks its own SIMD kernels whatever our tier is, so that tier keeps it.
    pub fn gemm_beats_matrixmultiply(&self) -> bool {
        self.isa() != crate::dispatch::Isa::Portable
    }

    /// Like [`Kernels::gemm`] for a row-major C (`c_ld` ≥ n), split into row panels (whole
    /// MR tiles) run on the current rayon pool when the product is big enough: bit-identical
    /// for any thread count.
    #[allow(clippy::too_many_arguments)]
    pub fn gemm_par(
        &self,
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: Operand<'_>,
        b: Operand<'_>,
        beta: f32,
        c: &mut [f32],
        c_ld: usize,
    ) -> Result<()> {
        let mr = self.gemm_tile().mr;
        let panel = PANEL_ROWS.div_ceil(mr) * mr;
        par_row_panels(
            m,
            k,
            n,
            panel,
            c,
            c_ld,
            |c| self.gemm(m, k, n, alpha, a, b, beta, MatMut::row_major(c, c_ld)),
            |r0, rows, c_panel| {
                let c = MatMut::row_major(c_panel, c_ld);
                self.gemm_rows(m, k, n, r0, rows, alpha, a.into(), b.into(), beta, c)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_out_of_bounds_and_aliasing() {
        let a = [1.0f32; 6];
        let b = [1.0f32; 6];
        let mut c = [0.0f32; 4];
        let ok = sgemm(
            2,
            3,
            2,
            1.0,
            MatRef::row_major(&a, 3),
            MatRef::row_major(&b, 2),
            0.0,
            MatMut::row_major(&mut c, 2),
        );
        assert!(ok.is_ok());
        assert_eq!(c, [3.0; 4]);
        let bad = sgemm(
            2,
            4,
            2,
            1.0,
            MatRef::row_major(&a, 3),
            MatRef::row_major(&b, 2),
            0.0,
            MatMut::row_major(&mut c, 2),
        );
        assert!(bad.is_err());
        let alias = sgemm(
            2,
            3,
            2,
            1.0,
            MatRef::row_major(&a, 3),
            MatRef::row_major(&b, 2),
            0.0,
            MatMut {
                data: &mut c,
                rs: 1,
                cs: 1,
            },
        );
        assert!(alias.is_err());
    }
}
