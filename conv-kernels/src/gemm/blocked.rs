//! Our blocked GEMM: the GotoBLAS loop nest around the dispatched microkernel.
//!
//! `for jc (NC columns) { for pc (KC steps) { pack B block; for ic (MC rows) { pack A block;
//! microkernel over the block's tiles } } }`. Either operand may come packed already
//! ([`Operand::Packed`], weights packed once per model version), and is then sliced instead
//! of copied. KC depends on nothing but the constant below, so each C element is summed in
//! the same order whatever the caller splits over threads (rows, in multiples of MR).

use std::cell::RefCell;

use super::microkernel::{BlockArgs, Tile};
use super::pack::{PackedPanels, PanelsRef, Side, pack_all, pack_block};
use super::{MatMut, MatRef, check_no_alias, check_view, err};
use crate::dispatch::Kernels;
use crate::error::Result;

/// Reduction block: an A panel (MR · KC) and a B panel (NR · KC) stay in L1.
pub(crate) const KC: usize = 256;
/// Rows of C per A block (rounded down to whole MR panels): the A block stays in L2.
const MC: usize = 144;
/// Columns of C per B block (rounded down to whole NR panels).
const NC: usize = 2048;

/// A GEMM operand: a strided view, or panels packed once for this tier (see
/// [`Kernels::gemm_pack_a`] and [`Kernels::gemm_pack_b`]).
#[derive(Debug, Clone, Copy)]
pub enum Operand<'a> {
    /// Packed on every call.
    View(MatRef<'a>),
    /// Packed beforehand for this tier's tile.
    Packed(&'a PackedPanels),
}

/// An operand as the loop nest reads it: a view to pack, or panels to slice.
#[derive(Clone, Copy)]
pub(crate) enum Src<'a> {
    View(MatRef<'a>),
    Packed(PanelsRef<'a>),
    /// A row-major A (`cs` 1) the microkernel reads in place, without packing: for an A
    /// that is used once and already laid out along the reduction (Winograd's V). As B it
    /// is packed like a view.
    Rows(MatRef<'a>),
}

impl<'a> From<Operand<'a>> for Src<'a> {
    fn from(o: Operand<'a>) -> Self {
        match o {
            Operand::View(v) => Src::View(v),
            Operand::Packed(p) => Src::Packed(p.as_panels()),
        }
    }
}

thread_local! {
    /// Per-thread packing buffer, grown on demand and kept: the packing copies of a GEMM
    /// never allocate after a thread's first call at the largest shape.
    static WORKSPACE: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

fn with_workspace<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    WORKSPACE.with(|w| match w.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        // Re-entered on this thread (not done by this crate): a private buffer.
        Err(_) => f(&mut vec![0.0; len]),
    })
}

fn block_dims(t: Tile) -> (usize, usize) {
    ((MC / t.mr).max(1) * t.mr, (NC / t.nr).max(1) * t.nr)
}

impl Kernels {
    /// This tier's microkernel tile.
    pub fn gemm_tile(&self) -> Tile {
        (self.gemm_tile)()
    }

    /// Packs the left operand `A[m x k]` once for this tier (for [`Operand::Packed`]).
    pub fn gemm_pack_a(&self, m: usize, k: usize, a: MatRef<'_>) -> Result<PackedPanels> {
        if m > 0 && k > 0 {
            check_view("A", a.data.len(), m, k, a.rs, a.cs)?;
        }
        Ok(pack_all(Side::A, &a, m, k, self.gemm_tile().mr, KC))
    }

    /// Packs the right operand `B[k x n]` once for this tier (for [`Operand::Packed`]).
    pub fn gemm_pack_b(&self, k: usize, n: usize, b: MatRef<'_>) -> Result<PackedPanels> {
        if n > 0 && k > 0 {
            check_view("B", b.data.len(), k, n, b.rs, b.cs)?;
        }
        let bt = MatRef {
            data: b.data,
            rs: b.cs,
            cs: b.rs,
        };
        Ok(pack_all(Side::B, &bt, n, k, self.gemm_tile().nr, KC))
    }

    /// `C[m x n] ← alpha · A[m x k] · B[k x n] + beta · C` on our blocked GEMM, one thread.
    /// With `beta == 0`, C's previous contents are ignored. Errors if a view reaches outside
    /// its slice, C's strides alias, or a packed operand does not match the shape and tier.
    #[allow(clippy::too_many_arguments)]
    pub fn gemm(
        &self,
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: Operand<'_>,
        b: Operand<'_>,
        beta: f32,
        c: MatMut<'_>,
    ) -> Result<()> {
        self.gemm_rows(m, k, n, 0, m, alpha, a.into(), b.into(), beta, c)
    }

    /// [`Kernels::gemm`] with B already in packed panels somewhere other than a
    /// [`PackedPanels`] (a kernel's scratch), checked like a packed operand.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn gemm_b_panels(
        &self,
        m: usize,
        k: usize,
        n: usize,
        a: Operand<'_>,
        b: PanelsRef<'_>,
        c: MatMut<'_>,
    ) -> Result<()> {
        self.gemm_rows(m, k, n, 0, m, 1.0, a.into(), Src::Packed(b), 0.0, c)
    }

    /// `C[m x n] ← A[m x k] · B[k x n]` with A row-major (`cs` 1) read in place by the
    /// microkernel, no packing (an A used once and already laid out along the reduction),
    /// and B packed once for this tier.
    pub(crate) fn gemm_a_in_place(
        &self,
        m: usize,
        k: usize,
        n: usize,
        a: MatRef<'_>,
        b: &PackedPanels,
        c: MatMut<'_>,
    ) -> Result<()> {
        let b = Src::Packed(b.as_panels());
        self.gemm_rows(m, k, n, 0, m, 1.0, Src::Rows(a), b, 0.0, c)
    }

    /// Rows `[r0, r0 + rows)` of the product into `c` (whose row 0 is C's row `r0`); `r0`
    /// is a multiple of MR when A is packed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn gemm_rows(
        &self,
        m: usize,
        k: usize,
        n: usize,
        r0: usize,
        rows: usize,
        alpha: f32,
        a: Src<'_>,
        b: Src<'_>,
        beta: f32,
        c: MatMut<'_>,
    ) -> Result<()> {
        let t = self.gemm_tile();
        if rows == 0 || n == 0 {
            return Ok(());
        }
        check_view("C", c.data.len(), rows, n, c.rs, c.cs)?;
        check_no_alias(rows, n, c.rs, c.cs)?;
        let check_packed = |side: Side, p: &PanelsRef<'_>, outer: usize, r: usize| {
            if p.data.len() < super::pack::packed_len(p.outer, p.k, p.r) {
                return Err(err(format!(
                    "{side:?}: {} packed values, fewer than its shape needs",
                    p.data.len()
                )));
            }
            if p.side != side || p.outer != outer || p.k != k || p.r != r || p.kc != KC {
                return Err(err(format!(
                    "{side:?}: packed as {:?} {}x{} (panel {}, kc {}) used as {side:?} {outer}x{k} (panel {r}, kc {KC})",
                    p.side, p.outer, p.k, p.r, p.kc
                )));
            }
            Ok(())
        };
        match a {
            Src::View(v) if k > 0 => check_view("A", v.data.len(), m, k, v.rs, v.cs)?,
            Src::Packed(p) => {
                check_packed(Side::A, &p, m, t.mr)?;
                if !r0.is_multiple_of(t.mr) {
                    return Err(err(format!("A: packed rows split at {r0}")));
                }
            }
            Src::Rows(v) if k > 0 => {
                check_view("A", v.data.len(), m, k, v.rs, v.cs)?;
                if v.cs != 1 || v.rs == 0 {
                    return Err(err(format!(
                        "A: read in place needs row-major rows, got strides {}, {}",
                        v.rs, v.cs
                    )));
                }
            }
            Src::View(_) | Src::Rows(_) => {}
        }
        match b {
            Src::View(v) | Src::Rows(v) if k > 0 => {
                check_view("B", v.data.len(), k, n, v.rs, v.cs)?
            }
            Src::Packed(p) => check_packed(Side::B, &p, n, t.nr)?,
            Src::View(_) | Src::Rows(_) => {}
        }
        if r0 + rows > m {
            return Err(err(format!("rows {r0}+{rows} beyond {m}")));
        }
        if k == 0 {
            for i in 0..rows {
                for j in 0..n {
                    let x = &mut c.data[i * c.rs + j * c.cs];
                    *x = if beta == 0.0 { 0.0 } else { beta * *x };
                }
            }
            return Ok(());
        }
        let (mc, nc) = block_dims(t);
        let kc_max = KC.min(k);
        let a_ws = match a {
            Src::View(_) => mc.min(rows.div_ceil(t.mr) * t.mr) * kc_max,
            Src::Packed(_) | Src::Rows(_) => 0,
        };
        let b_ws = match b {
            Src::View(_) | Src::Rows(_) => nc.min(n.div_ceil(t.nr) * t.nr) * kc_max,
            Src::Packed(_) => 0,
        };
        with_workspace(a_ws + b_ws, |ws| {
            let (a_buf, b_buf) = ws.split_at_mut(a_ws);
            let mut jc = 0;
            while jc < n {
                let ncb = nc.min(n - jc);
                let mut pc = 0;
                while pc < k {
                    let kcb = KC.min(k - pc);
                    let bp: &[f32] = match b {
                        Src::View(v) | Src::Rows(v) => {
                            let bt = MatRef {
                                data: v.data,
                                rs: v.cs,
                                cs: v.rs,
                            };
                            pack_block(&bt, jc, ncb, pc, kcb, t.nr, b_buf);
                            b_buf
                        }
                        Src::Packed(p) => p.block(pc, jc),
                    };
                    let mut ic = 0;
                    while ic < rows {
                        let mcb = mc.min(rows - ic);
                        let (ap, a_rs): (&[f32], usize) = match a {
                            Src::View(v) => {
                                pack_block(&v, r0 + ic, mcb, pc, kcb, t.mr, a_buf);
                                (a_buf, 0)
                            }
                            Src::Packed(p) => (p.block(pc, r0 + ic), 0),
                            Src::Rows(v) => (&v.data[(r0 + ic) * v.rs + pc..], v.rs),
                        };
                        let args = BlockArgs {
                            kc: kcb,
                            m: mcb,
                            n: ncb,
                            a: ap,
                            a_rs,
                            b: bp,
                            alpha,
                            beta: if pc == 0 { beta } else { 1.0 },
                            rs: c.rs,
                            cs: c.cs,
                        };
                        (self.gemm_block)(&args, &mut c.data[ic * c.rs + jc * c.cs..]);
                        ic += mcb;
                    }
                    pc += kcb;
                }
                jc += ncb;
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{MatMut, MatRef, reference};
    use super::{KC, Operand};
    use crate::dispatch::Kernels;
    use proptest::prelude::*;

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32)
            .map(|v| v / (1u32 << 24) as f32 - 0.5)
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// A read in place (row stride past its columns, as Winograd's V planes are) gives
        /// the bits of the same A packed, on every tier, with partial row and column
        /// panels and reductions longer than one KC block; both are close to the f64
        /// reference.
        #[test]
        fn a_in_place_equals_packed_a(
            m in 1usize..40,
            k in prop_oneof![1usize..48, (KC - 3)..(KC + 40)],
            n in 1usize..70,
            pad in 0usize..5,
            seed in any::<u32>(),
        ) {
            let lda = k + pad;
            let a = values(m * lda, seed);
            let b = values(k * n, seed ^ 0x9e37);
            let mut want = vec![0.0; m * n];
            reference::sgemm(
                m, k, n, 1.0,
                MatRef::row_major(&a, lda), MatRef::row_major(&b, n), 0.0,
                MatMut::row_major(&mut want, n),
            );
            for kern in Kernels::available() {
                let pb = kern.gemm_pack_b(k, n, MatRef::row_major(&b, n)).unwrap();
                let mut packed = vec![f32::NAN; m * n];
                kern.gemm(
                    m, k, n, 1.0,
                    Operand::View(MatRef::row_major(&a, lda)), Operand::Packed(&pb), 0.0,
                    MatMut::row_major(&mut packed, n),
                ).unwrap();
                let mut in_place = vec![f32::NAN; m * n];
                kern.gemm_a_in_place(
                    m, k, n, MatRef::row_major(&a, lda), &pb,
                    MatMut::row_major(&mut in_place, n),
                ).unwrap();
                prop_assert_eq!(
                    in_place.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    packed.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "{:?}", kern.isa()
                );
                for (got, want) in in_place.iter().zip(&want) {
                    prop_assert!((got - want).abs() <= 1e-4 * (k as f32).sqrt(), "{:?}", kern.isa());
                }
            }
        }
    }

    /// An A read in place must be row-major (unit column stride).
    #[test]
    fn in_place_a_needs_row_major_rows() {
        for k in Kernels::available() {
            let (a, b) = (vec![1.0; 12], vec![1.0; 12]);
            let pb = k.gemm_pack_b(3, 4, MatRef::row_major(&b, 4)).unwrap();
            let mut c = vec![0.0; 16];
            let col_major = MatRef {
                data: &a,
                rs: 1,
                cs: 4,
            };
            let c_view = MatMut::row_major(&mut c, 4);
            assert!(k.gemm_a_in_place(4, 3, 4, col_major, &pb, c_view).is_err());
            let c_view = MatMut::row_major(&mut c, 4);
            let ok = k.gemm_a_in_place(4, 3, 4, MatRef::row_major(&a, 3), &pb, c_view);
            assert!(ok.is_ok());
            assert!(c.iter().all(|&v| v == 3.0));
        }
    }
}
