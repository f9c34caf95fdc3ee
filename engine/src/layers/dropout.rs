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
        // Random words are drawn a block at a time and turned into mask values in a
        // separate loop, which compiles to vector compares and blends: per element, the
        // select compiles to a branch that mispredicts on a quarter of the elements at rate
        // 0.25 (5 % of the Table 1 train step, perf on Zen 5). Same words, same order.
        const BLOCK: usize = 8;
        let mut blocks = mask.chunks_exact_mut(2 * BLOCK);
        for block in &mut blocks {
            let mut words = [0u64; BLOCK];
            for w in &mut words {
                *w = rng.next_u64();
            }
            for (pair, &r) in block.chunks_exact_mut(2).zip(&words) {
                pair[0] = keep(r & 0xFFFF_FFFF);
                pair[1] = keep(r >> 32);
            }
        }
        let mut pairs = blocks.into_remainder().chunks_exact_mut(2);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The mask is the documented function of the random stream (two elements per word, low
    /// half first, an odd last element from a word's high half), whatever the length's
    /// remainder after the blocks of words, and the stream is left where it would be.
    #[test]
    fn mask_follows_the_stream_two_elements_per_word() {
        let d = Dropout { rate: 0.25 };
        let threshold = (0.25f64 * 4_294_967_296.0) as u64;
        let keep = |bits: u64| if bits >= threshold { 1.0 / 0.75 } else { 0.0 };
        for len in [0, 1, 2, 3, 15, 16, 17, 31, 33, 100] {
            let mut x = vec![1.0f32; len];
            let mut mask = vec![f32::NAN; len];
            let mut rng = Rng::new(7);
            d.forward_train(&mut x, &mut mask, &mut rng).unwrap();
            let mut reference = Rng::new(7);
            let mut want = Vec::with_capacity(len);
            while want.len() + 2 <= len {
                let w = reference.next_u64();
                want.extend([keep(w & 0xFFFF_FFFF), keep(w >> 32)]);
            }
            if want.len() < len {
                want.push(keep(reference.next_u64() >> 32));
            }
            assert_eq!(mask, want, "len {len}");
            assert_eq!(x, want, "len {len}: x scaled by the mask");
            assert_eq!(
                rng.next_u64(),
                reference.next_u64(),
                "len {len}: stream position"
            );
        }
    }
}
