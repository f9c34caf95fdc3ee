//! Packing operands into the panels the microkernel streams through.
//!
//! Both operands use one layout, `PackedPanels`: the `outer x k` matrix (A as is; B seen as
//! its transpose, `n x k`) is cut into reduction blocks of at most `kc` and, inside each, into
//! panels of `r` outer rows (`r` = the tile's MR for A, NR for B). A panel stores, for each
//! step `p` of its block, its `r` values contiguously, rows past `outer` as zeros. Block `b`
//! starts at `b · kc · padded_outer`, panel `q` of it `q · kc_b · r` further on, so a run
//! of consecutive panels of one block is a contiguous slice.

use super::MatRef;

/// Which operand a [`PackedPanels`] was packed as: where a tier's MR equals its NR the
/// panels alone could not tell, and a B used as A is a different product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The left operand, panels of MR rows.
    A,
    /// The right operand, panels of NR columns.
    B,
}

/// An operand packed into panels for one tier's tile.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedPanels {
    /// The operand it was packed as.
    pub(crate) side: Side,
    /// Rows along the panels' outer dimension (A's m, B's n).
    pub(crate) outer: usize,
    /// Reduction length.
    pub(crate) k: usize,
    /// Panel width (MR or NR).
    pub(crate) r: usize,
    /// Reduction block length.
    pub(crate) kc: usize,
    pub(crate) data: Vec<f32>,
}

/// Packed panels borrowed from wherever they were written: a [`PackedPanels`], or a
/// kernel's scratch laid out the same way (the Winograd input transform writes its V
/// planes as B panels).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PanelsRef<'a> {
    pub(crate) side: Side,
    pub(crate) outer: usize,
    pub(crate) k: usize,
    pub(crate) r: usize,
    pub(crate) kc: usize,
    pub(crate) data: &'a [f32],
}

impl<'a> PanelsRef<'a> {
    /// The right operand `B[k x n]` packed in `data` (at least [`packed_len`]`(n, k, r)`
    /// values) in panels of `r` columns and reduction blocks of `kc`.
    pub(crate) fn b(k: usize, n: usize, r: usize, kc: usize, data: &'a [f32]) -> Self {
        Self {
            side: Side::B,
            outer: n,
            k,
            r,
            kc,
            data,
        }
    }

    /// Outer rows rounded up to whole panels.
    pub(crate) fn padded_outer(&self) -> usize {
        self.outer.div_ceil(self.r) * self.r
    }

    /// The panels of reduction block starting at `pc`, from outer row `first` (a multiple of
    /// `r`) on.
    pub(crate) fn block(&self, pc: usize, first: usize) -> &'a [f32] {
        let kc = self.kc.min(self.k - pc);
        &self.data[pc * self.padded_outer() + first * kc..]
    }
}

impl PackedPanels {
    /// A borrowed view.
    pub(crate) fn as_panels(&self) -> PanelsRef<'_> {
        PanelsRef {
            side: self.side,
            outer: self.outer,
            k: self.k,
            r: self.r,
            kc: self.kc,
            data: &self.data,
        }
    }

    /// Elements held (for memory accounting).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when nothing is packed.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Elements of a packing of an `outer x k` operand into width-`r` panels.
pub(crate) fn packed_len(outer: usize, k: usize, r: usize) -> usize {
    outer.div_ceil(r) * r * k
}

/// Packs rows `[o0, o0 + rows)` and reduction steps `[p0, p0 + kc)` of the `? x k` view `src`
/// (element `(o, p)` at `o · rs + p · cs`) into `dst` as consecutive width-`r` panels.
pub(crate) fn pack_block(
    src: &MatRef<'_>,
    o0: usize,
    rows: usize,
    p0: usize,
    kc: usize,
    r: usize,
    dst: &mut [f32],
) {
    let panels = dst.chunks_exact_mut(kc * r).take(rows.div_ceil(r));
    for (q, panel) in panels.enumerate() {
        let base = o0 + q * r;
        let live = r.min(rows - q * r);
        if src.cs == 1 && live == r {
            // Row-contiguous source (A row-major, or B column-major): gather r rows.
            for (i, row) in (0..r).map(|i| (i, (base + i) * src.rs + p0)) {
                let s = &src.data[row..][..kc];
                for (p, &v) in s.iter().enumerate() {
                    panel[p * r + i] = v;
                }
            }
            continue;
        }
        if src.rs == 1 && live == r {
            // Outer-contiguous source (B row-major): each step is one r-run.
            for (p, d) in panel.chunks_exact_mut(r).enumerate() {
                let s = &src.data[base + (p0 + p) * src.cs..][..r];
                d.copy_from_slice(s);
            }
            continue;
        }
        for (p, d) in panel.chunks_exact_mut(r).enumerate() {
            for (i, d) in d.iter_mut().enumerate() {
                *d = if i < live {
                    src.data[(base + i) * src.rs + (p0 + p) * src.cs]
                } else {
                    0.0
                };
            }
        }
    }
}

/// Packs a whole `outer x k` operand once (weights), in reduction blocks of `kc`.
pub(crate) fn pack_all(
    side: Side,
    src: &MatRef<'_>,
    outer: usize,
    k: usize,
    r: usize,
    kc: usize,
) -> PackedPanels {
    let padded = outer.div_ceil(r) * r;
    let mut data = vec![0.0; packed_len(outer, k, r)];
    let mut pc = 0;
    while pc < k {
        let kcb = kc.min(k - pc);
        pack_block(
            src,
            0,
            outer,
            pc,
            kcb,
            r,
            &mut data[pc * padded..][..padded * kcb],
        );
        pc += kcb;
    }
    PackedPanels {
        side,
        outer,
        k,
        r,
        kc,
        data,
    }
}
