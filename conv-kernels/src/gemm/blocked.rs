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
            Src::View(_) => {}
        }
        match b {
            Src::View(v) if k > 0 => check_view("B", v.data.len(), k, n, v.rs, v.cs)?,
            Src::Packed(p) => check_packed(Side::B, &p, n, t.nr)?,
            Src::View(_) => {}
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
            Src::Packed(_) => 0,
        };
        let b_ws = match b {
            Src::View(_) => nc.min(n.div_ceil(t.nr) * t.nr) * kc_max,
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
                        Src::View(v) => {
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
                        let ap: &[f32] = match a {
                            Src::View(v) => {
                                pack_block(&v, r0 + ic, mcb, pc, kcb, t.mr, a_buf);
                                a_buf
                            }
                            Src::Packed(p) => p.block(pc, r0 + ic),
                        };
                        let args = BlockArgs {
                            kc: kcb,
                            m: mcb,
                            n: ncb,
                            a: ap,
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
