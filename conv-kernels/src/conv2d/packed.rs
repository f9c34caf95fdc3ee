//! [`PackedConv`]: a conv layer's weights prepared once per model version for one tier.
//!
//! For a 5x5 kernel over enough channels it holds the 36 Winograd-transformed filter
//! matrices, packed into the tier's GEMM panels, so a forward pass neither transforms nor
//! packs weights; where im2col runs on our GEMM ([`super::im2col::packs_weight`]) it holds
//! the weight matrix packed for it too. It also owns a copy of the raw weights for the other
//! paths, so it can never disagree with itself: a caller that changes the weights makes a
//! new one (`engine::Sequential` does this whenever its parameters may have changed).

use super::{
    ConvAlgo, Layout, WINOGRAD_MIN_CHANNELS, check_forward, direct, direct_pays, im2col, winograd,
    winograd_pays,
};
use crate::activation::Activation;
use crate::dispatch::{Isa, Kernels, kernels};
use crate::error::{KernelError, Result, check_len};
use crate::gemm::PackedPanels;
use crate::geometry::Conv2dGeometry;

/// Conv weights `[O, C, KH, KW]` prepared for one tier (see the module docs).
#[derive(Debug, Clone)]
pub struct PackedConv {
    isa: Isa,
    shape: [usize; 4],
    weight: Vec<f32>,
    winograd: Option<winograd::Filters>,
    /// `[C·KH·KW, Op]` for the direct kernel, where it runs ([`super::direct_pays`]).
    direct: Option<Vec<f32>>,
    /// `W [O, C·KH·KW]` packed for the im2col GEMM, where that runs on our GEMM.
    im2col: Option<PackedPanels>,
}

impl PackedConv {
    /// The raw weights `[O, C, KH, KW]` this was made from.
    pub fn weight(&self) -> &[f32] {
        &self.weight
    }

    /// The tier it was packed for.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Whether Winograd filters were prepared (5x5 kernel, enough input channels, a tier
    /// where they pay: [`super::winograd_pays`]).
    pub fn is_winograd(&self) -> bool {
        self.winograd.is_some()
    }

    /// Whether [`Kernels::conv2d_forward_packed`] runs `g` on the Winograd path: prepared
    /// filters and a batch of at least [`super::packed_winograd_min_batch`] for its tier
    /// (1 on AVX2; on AVX-512 the im2col GEMM on the packed weight won batch 1).
    pub fn runs_winograd(&self, g: &Conv2dGeometry) -> bool {
        self.winograd.is_some() && g.batch >= super::packed_winograd_min_batch(self.isa)
    }

    /// Whether the direct kernel (one vector over output channels) runs this layer: filters
    /// over one input channel on a tier where it wins ([`super::direct_pays`]).
    pub fn runs_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Whether the forward pass of `g` can read its input channels-last ([`Layout::Nhwc`]):
    /// the direct kernel and Winograd's input transform can, im2col cannot.
    pub fn reads_channels_last(&self, g: &Conv2dGeometry) -> bool {
        self.runs_direct() || self.runs_winograd(g)
    }

    /// Whether the forward pass can write its output channels-last: the direct kernel's
    /// native layout (the others write NCHW only; no geometry matters, unlike
    /// [`Self::reads_channels_last`], whose Winograd rule depends on the batch).
    pub fn writes_channels_last(&self) -> bool {
        self.runs_direct()
    }

    /// f32 elements held (raw copy plus packed panels).
    pub fn len(&self) -> usize {
        self.weight.len()
            + self.direct.as_ref().map_or(0, Vec::len)
            + self.winograd.as_ref().map_or(0, winograd::Filters::len)
            + self.im2col.as_ref().map_or(0, PackedPanels::len)
    }

    /// The im2col path's weight operand: packed if prepared, else the raw matrix.
    fn im2col_weight(&self) -> im2col::Weight<'_> {
        let kk = self.shape[1] * self.shape[2] * self.shape[3];
        self.im2col.as_ref().map_or(
            im2col::Weight::Raw(crate::gemm::MatRef::row_major(&self.weight, kk)),
            im2col::Weight::Packed,
        )
    }

    /// True for a zero-sized layer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The forward pass (pooled when `pool`) after the caller's checks: the direct kernel
    /// where it was prepared and the output is pooled or either side channels-last (on
    /// unpooled NCHW it only ties im2col, which keeps it: [`super::direct_pays`]), else
    /// Winograd on the prepared filters when [`Self::runs_winograd`], else im2col (what
    /// `Auto` runs there), on the prepared im2col weight where there is one.
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        k: &Kernels,
        g: &Conv2dGeometry,
        input: &[f32],
        bias: Option<&[f32]>,
        activation: Activation,
        pool: bool,
        io: Layouts,
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<()> {
        let relu = activation == Activation::Relu;
        let nchw = Layouts::default();
        if let (Some(weight), true) = (&self.direct, pool || io != nchw) {
            let d = direct::Direct {
                weight,
                bias,
                relu,
                pool,
                input: io.input,
                output: io.output,
            };
            return direct::forward(k, g, input, &d, out, scratch);
        }
        let refuse = |what: &str| KernelError::Geometry {
            op: "conv2d_forward_packed",
            reason: format!("{what} channels-last is not supported on this layer's path"),
        };
        if io.output != Layout::Nchw {
            return Err(refuse("output"));
        }
        if let (Some(u), true) = (&self.winograd, self.runs_winograd(g)) {
            let x = winograd::Input {
                data: input,
                channels_last: io.input == Layout::Nhwc,
            };
            return winograd::forward(k, g, x, u, bias, relu, pool, out, scratch);
        }
        if io.input != Layout::Nchw {
            return Err(refuse("input"));
        }
        // Below the packed Winograd rule `Auto` runs im2col too: its Winograd rule needs the
        // same filters and a larger batch (checked at compile time in `super`), and it
        // takes Direct only where the direct weights were prepared.
        debug_assert_eq!(ConvAlgo::Auto.resolve_for(g, k.isa()), ConvAlgo::Im2colGemm);
        let w = self.im2col_weight();
        im2col::forward(k, g, input, w, bias, relu, pool, out, scratch)
    }

    fn check(&self, op: &'static str, k: &Kernels, g: &Conv2dGeometry) -> Result<()> {
        let want = [g.out_channels, g.in_channels, g.kernel_h, g.kernel_w];
        if self.shape != want || self.isa != k.isa() {
            return Err(KernelError::Geometry {
                op,
                reason: format!(
                    "weights packed as {:?} for {} used as {want:?} on {}",
                    self.shape,
                    self.isa.name(),
                    k.isa().name()
                ),
            });
        }
        Ok(())
    }
}

/// [`Kernels::pack_conv2d`] on the process-wide tier.
pub fn pack_conv2d(shape: [usize; 4], weight: &[f32]) -> Result<PackedConv> {
    kernels().pack_conv2d(shape, weight)
}

/// [`Kernels::conv2d_forward_packed`] on the process-wide tier.
pub fn conv2d_forward_packed(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &PackedConv,
    bias: Option<&[f32]>,
    activation: Activation,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    kernels().conv2d_forward_packed(g, input, weight, bias, activation, out, scratch)
}

/// The layouts a packed forward pass reads and writes (both NCHW by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Layouts {
    /// The input's layout.
    pub input: Layout,
    /// The output's layout.
    pub output: Layout,
}

/// [`Kernels::conv2d_forward_packed_io`] on the process-wide tier.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward_packed_io(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &PackedConv,
    bias: Option<&[f32]>,
    activation: Activation,
    pool: bool,
    io: Layouts,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    kernels().conv2d_forward_packed_io(g, input, weight, bias, activation, pool, io, out, scratch)
}

/// [`Kernels::conv2d_forward_maxpool2x2_packed`] on the process-wide tier.
pub fn conv2d_forward_maxpool2x2_packed(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &PackedConv,
    bias: Option<&[f32]>,
    activation: Activation,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    kernels().conv2d_forward_maxpool2x2_packed(g, input, weight, bias, activation, out, scratch)
}

impl Kernels {
    /// Prepares conv weights of `shape` `[O, C, KH, KW]` for this tier.
    ///
    /// # Errors
    /// [`KernelError::BufferLen`] when `weight` does not hold `O·C·KH·KW` values.
    pub fn pack_conv2d(&self, shape: [usize; 4], weight: &[f32]) -> Result<PackedConv> {
        let [o, c, kh, kw] = shape;
        let len = o
            .checked_mul(c)
            .and_then(|v| v.checked_mul(kh))
            .and_then(|v| v.checked_mul(kw))
            .ok_or(KernelError::Overflow { op: "pack_conv2d" })?;
        check_len("pack_conv2d", "weight", weight.len(), len)?;
        let winograd =
            if kh == 5 && kw == 5 && c >= WINOGRAD_MIN_CHANNELS && winograd_pays(self.isa()) {
                Some(winograd::pack_weights(self, o, c, weight)?)
            } else {
                None
            };
        let direct =
            direct_pays(c, self.isa()).then(|| direct::pack_weights(shape, self.lanes, weight));
        Ok(PackedConv {
            isa: self.isa(),
            shape,
            weight: weight.to_vec(),
            direct,
            winograd,
            im2col: im2col::pack_forward_weight(self, o, c * kh * kw, weight)?,
        })
    }

    /// [`crate::conv2d_forward`] with prepared weights: Winograd on the pre-transformed
    /// filters when [`PackedConv::runs_winograd`], else the unpacked choice on the raw copy.
    ///
    /// # Errors
    /// As [`crate::conv2d_forward`], and [`KernelError::Geometry`] when `weight` was packed
    /// for another shape or tier.
    #[allow(clippy::too_many_arguments)]
    pub fn conv2d_forward_packed(
        &self,
        g: &Conv2dGeometry,
        input: &[f32],
        weight: &PackedConv,
        bias: Option<&[f32]>,
        activation: Activation,
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<()> {
        let (op, io) = ("conv2d_forward_packed", Layouts::default());
        self.checked_packed(
            op, g, input, weight, bias, activation, false, io, out, scratch,
        )
    }

    /// [`crate::conv2d_forward_maxpool2x2`] with prepared weights.
    ///
    /// # Errors
    /// As [`crate::conv2d_forward_maxpool2x2`], and [`KernelError::Geometry`] when `weight`
    /// was packed for another shape or tier.
    #[allow(clippy::too_many_arguments)]
    pub fn conv2d_forward_maxpool2x2_packed(
        &self,
        g: &Conv2dGeometry,
        input: &[f32],
        weight: &PackedConv,
        bias: Option<&[f32]>,
        activation: Activation,
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<()> {
        let (op, io) = ("conv2d_forward_maxpool2x2_packed", Layouts::default());
        self.checked_packed(
            op, g, input, weight, bias, activation, true, io, out, scratch,
        )
    }

    /// [`Self::conv2d_forward_packed`] (or, when `pool`, its fused 2x2 max-pool variant)
    /// with the input and output in the layouts `io` names: `[N, H, W, C]` for
    /// [`Layout::Nhwc`]. An inference pass hands a channels-last activation from a layer
    /// that [`PackedConv::writes_channels_last`] to one that
    /// [`PackedConv::reads_channels_last`], and skips two transpositions.
    ///
    /// # Errors
    /// As [`Self::conv2d_forward_packed`], and [`KernelError::Geometry`] when the layer's
    /// path cannot read or write the layout asked for.
    #[allow(clippy::too_many_arguments)]
    pub fn conv2d_forward_packed_io(
        &self,
        g: &Conv2dGeometry,
        input: &[f32],
        weight: &PackedConv,
        bias: Option<&[f32]>,
        activation: Activation,
        pool: bool,
        io: Layouts,
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<()> {
        let op = "conv2d_forward_packed_io";
        self.checked_packed(
            op, g, input, weight, bias, activation, pool, io, out, scratch,
        )
    }

    /// The packed forward entry points' shared body: the weights' shape and tier, the
    /// buffers, then the pass.
    #[allow(clippy::too_many_arguments)]
    fn checked_packed(
        &self,
        op: &'static str,
        g: &Conv2dGeometry,
        input: &[f32],
        weight: &PackedConv,
        bias: Option<&[f32]>,
        activation: Activation,
        pool: bool,
        io: Layouts,
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<()> {
        weight.check(op, self, g)?;
        check_forward(op, g, input, bias, out, scratch, pool)?;
        weight.forward(self, g, input, bias, activation, pool, io, out, scratch)
    }
}
