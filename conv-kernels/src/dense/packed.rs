//! [`PackedDense`]: a dense layer's weights prepared once per model version for one tier.
//!
//! The GEMM path of the forward pass reads `Wᵀ` as its right operand; packing it into our
//! GEMM's panels once (1 MB for the Table 1 fc1) removes the per-call packing that used to
//! dominate mid-sized batches. A copy of the raw `[out, in]` weights serves the GEMV path
//! (small batches) and the tiers where `matrixmultiply` wins, so the value can never
//! disagree with itself; whoever changes the weights makes a new one.

use super::GEMV_MAX_BATCH;
use crate::activation::Activation;
use crate::dispatch::{Isa, Kernels, kernels};
use crate::error::{KernelError, Result, check_len};
use crate::gemm::{MatRef, Operand, PackedPanels};
use crate::geometry::DenseGeometry;

/// Dense weights `[out, in]` prepared for one tier (see the module docs).
#[derive(Debug, Clone)]
pub struct PackedDense {
    isa: Isa,
    in_features: usize,
    out_features: usize,
    weight: Vec<f32>,
    /// `Wᵀ` packed as the right GEMM operand, on tiers where our GEMM wins.
    wt: Option<PackedPanels>,
}

impl PackedDense {
    /// The raw weights `[out, in]` this was made from.
    pub fn weight(&self) -> &[f32] {
        &self.weight
    }

    /// f32 elements held (raw copy plus packed panels).
    pub fn len(&self) -> usize {
        self.weight.len() + self.wt.as_ref().map_or(0, PackedPanels::len)
    }

    /// True for a zero-sized layer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// [`Kernels::pack_dense`] on the process-wide tier.
pub fn pack_dense(in_features: usize, out_features: usize, weight: &[f32]) -> Result<PackedDense> {
    kernels().pack_dense(in_features, out_features, weight)
}

/// [`Kernels::dense_forward_packed`] on the process-wide tier.
pub fn dense_forward_packed(
    g: &DenseGeometry,
    input: &[f32],
    weight: &PackedDense,
    bias: Option<&[f32]>,
    activation: Activation,
    out: &mut [f32],
) -> Result<()> {
    kernels().dense_forward_packed(g, input, weight, bias, activation, out)
}

impl Kernels {
    /// Prepares dense weights `[out_features, in_features]` for this tier.
    ///
    /// # Errors
    /// [`KernelError::BufferLen`] when `weight` does not hold `out · in` values.
    pub fn pack_dense(
        &self,
        in_features: usize,
        out_features: usize,
        weight: &[f32],
    ) -> Result<PackedDense> {
        let len = in_features
            .checked_mul(out_features)
            .ok_or(KernelError::Overflow { op: "pack_dense" })?;
        check_len("pack_dense", "weight", weight.len(), len)?;
        let wt = if self.gemm_beats_matrixmultiply() {
            Some(self.gemm_pack_b(
                in_features,
                out_features,
                MatRef::col_major(weight, in_features),
            )?)
        } else {
            None
        };
        Ok(PackedDense {
            isa: self.isa(),
            in_features,
            out_features,
            weight: weight.to_vec(),
            wt,
        })
    }

    /// [`crate::dense_forward`] with prepared weights.
    ///
    /// # Errors
    /// As [`crate::dense_forward`], and [`KernelError::Geometry`] when `weight` was packed for
    /// another shape or tier.
    pub fn dense_forward_packed(
        &self,
        g: &DenseGeometry,
        input: &[f32],
        weight: &PackedDense,
        bias: Option<&[f32]>,
        activation: Activation,
        out: &mut [f32],
    ) -> Result<()> {
        const OP: &str = "dense_forward_packed";
        let (n, i, o) = (g.batch, g.in_features, g.out_features);
        if (weight.in_features, weight.out_features) != (i, o) || weight.isa != self.isa() {
            return Err(KernelError::Geometry {
                op: OP,
                reason: format!(
                    "weights packed as {}->{} for {} used as {i}->{o} on {}",
                    weight.in_features,
                    weight.out_features,
                    weight.isa.name(),
                    self.isa().name()
                ),
            });
        }
        let (Some(wt), false) = (&weight.wt, n <= GEMV_MAX_BATCH) else {
            return self.dense_forward(g, input, &weight.weight, bias, activation, out);
        };
        check_len(OP, "input", input.len(), g.input_len())?;
        if let Some(b) = bias {
            check_len(OP, "bias", b.len(), o)?;
        }
        check_len(OP, "out", out.len(), g.output_len())?;
        self.gemm_par(
            n,
            i,
            o,
            1.0,
            Operand::View(MatRef::row_major(input, i)),
            Operand::Packed(wt),
            0.0,
            out,
            o,
        )?;
        self.dense_epilogue(o, bias, activation == Activation::Relu, out);
        Ok(())
    }
}
