//! [`Dropout`]: inverted dropout, in place. Masks come from the model's seeded [`Rng`].
//!
//! Working in place is safe for backward: a dropped element becomes 0 and a kept one is
//! scaled by a positive factor, so a ReLU before it still sees the sign it produced, and
//! the gradient of a dropped element is zeroed by this layer's backward anyway.

use crate::error::Result;
use crate::rng::Rng;

/// A Dropout layer.
#[derive(Debug, Clone)]
pub(crate) struct Dropout {
    /// Fraction dropped, in `[0, 1)`.
    pub rate: f32,
}

impl Dropout {
    /// True when training changes anything.
    pub fn active(&self) -> bool {
        self.rate > 0.0
    }

    /// Training forward: draws `mask` (0 or `1/(1-rate)`) and applies it to `x` in place.
    /// Two mask elements per 64 random bits, each kept when its 32 bits are at or above
    /// `rate * 2^32`.
    ///
    /// # Shapes
    /// `mask.len() == x.len()`.
    pub fn forward_train(&self, x: &mut [f32], mask: &mut [f32], rng: &mut Rng) -> Result<()> {
        let scale = 1.0 / (1.0 - self.rate);
        let threshold = (f64::from(self.rate) * 4_294_967_296.0) as u64;
        let keep = |bits: u64| if bits >= threshold { scale } else { 0.0 };
        let mut pairs = mask.chunks_exact_mut(2);
        for pair in &mut pairs {
            let r = rng.next_u64();
            pair[0] = keep(r & 0xFFFF_FFFF);
            pair[1] = keep(r >> 32);
        }
        if let [last] = pairs.into_remainder() {
            *last = keep(rng.next_u64() >> 32);
        }
        conv_kernels::dropout_forward_inplace(x, mask)?;
        Ok(())
    }

    /// Backward in place: `grad *= mask`.
    pub fn backward(&self, grad: &mut [f32], mask: &[f32]) -> Result<()> {
        conv_kernels::dropout_forward_inplace(grad, mask)?;
        Ok(())
    }
}
