//! [`Dataset`]: labelled greyscale images kept as u8 in memory.
//!
//! Images become f32 (`pixel / 255`) only one batch at a time ([`Dataset::write_batch_f32`]),
//! so 60,000 MNIST images cost 47 MB rather than 188 MB.

use crate::error::{Error, Result};

/// Labelled images: `images` is `[N, rows, cols]` u8 row-major, `labels` is `[N]` u8.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dataset {
    images: Vec<u8>,
    labels: Vec<u8>,
    rows: usize,
    cols: usize,
}

impl Dataset {
    /// A data set of `labels.len()` images of `rows x cols` pixels.
    ///
    /// # Errors
    /// [`Error::Data`] when `rows` or `cols` is zero, or when `images.len()` is not
    /// `labels.len() * rows * cols`.
    pub fn new(images: Vec<u8>, labels: Vec<u8>, rows: usize, cols: usize) -> Result<Self> {
        if rows == 0 || cols == 0 {
            return Err(Error::Data(format!(
                "image size {rows}x{cols} has a zero dimension"
            )));
        }
        let expected = labels
            .len()
            .checked_mul(rows)
            .and_then(|v| v.checked_mul(cols));
        if expected != Some(images.len()) {
            return Err(Error::Data(format!(
                "{} labels of {rows}x{cols} images need {} pixel bytes, got {}",
                labels.len(),
                expected.map_or_else(|| "more".to_string(), |e| e.to_string()),
                images.len()
            )));
        }
        Ok(Self {
            images,
            labels,
            rows,
            cols,
        })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image height in pixels.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Image width in pixels.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Pixels per image (`rows * cols`).
    pub fn image_len(&self) -> usize {
        self.rows * self.cols
    }

    /// All pixels, `[N, rows, cols]` row-major.
    pub fn images(&self) -> &[u8] {
        &self.images
    }

    /// All labels, `[N]`.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The pixels of image `i`.
    ///
    /// # Panics
    /// When `i >= self.len()`, like slice indexing.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// Number of examples of each label, indexed by label, up to the largest label present.
    pub fn label_counts(&self) -> Vec<usize> {
        let mut counts = [0usize; 256];
        for &l in &self.labels {
            counts[usize::from(l)] += 1;
        }
        let used = counts.iter().rposition(|&c| c > 0).map_or(0, |i| i + 1);
        counts[..used].to_vec()
    }

    /// A new data set of the examples at `indices`, in that order (repeats allowed).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the first index that is out of range.
    pub fn subset(&self, indices: &[usize]) -> Result<Dataset> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(Error::InvalidArgument(format!(
                "subset index {bad} is out of range for a data set of {} examples",
                self.len()
            )));
        }
        let mut images = Vec::with_capacity(indices.len() * self.image_len());
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            images.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
        }
        Ok(Dataset {
            images,
            labels,
            rows: self.rows,
            cols: self.cols,
        })
    }

    /// The first `n` examples (all of them when `n >= len`).
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            images: self.images[..n * self.image_len()].to_vec(),
            labels: self.labels[..n].to_vec(),
            rows: self.rows,
            cols: self.cols,
        }
    }

    /// Writes the images at `indices` into `out` as f32 `pixel / 255`, image after image,
    /// and their labels into `labels_out`: the one place pixels become f32.
    ///
    /// # Shapes
    /// `out.len() == indices.len() * rows * cols`, `labels_out.len() == indices.len()`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an out-of-range index or a buffer of the wrong length.
    pub fn write_batch_f32(
        &self,
        indices: &[usize],
        out: &mut [f32],
        labels_out: &mut [u8],
    ) -> Result<()> {
        let n = self.image_len();
        if out.len() != indices.len() * n || labels_out.len() != indices.len() {
            return Err(Error::InvalidArgument(format!(
                "batch of {} images needs {} pixels and {} labels, buffers hold {} and {}",
                indices.len(),
                indices.len() * n,
                indices.len(),
                out.len(),
                labels_out.len()
            )));
        }
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(Error::InvalidArgument(format!(
                "batch index {bad} is out of range for a data set of {} examples",
                self.len()
            )));
        }
        for ((&i, dst), label) in indices.iter().zip(out.chunks_exact_mut(n)).zip(labels_out) {
            for (d, &p) in dst.iter_mut().zip(self.image(i)) {
                *d = f32::from(p) / 255.0;
            }
            *label = self.labels[i];
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        // 3 images of 2x2: image k has every pixel = 10*k, label k.
        let images = vec![0, 0, 0, 0, 10, 10, 10, 10, 20, 20, 20, 20];
        Dataset::new(images, vec![0, 1, 2], 2, 2).unwrap()
    }

    #[test]
    fn new_checks_pixel_count_and_dimensions() {
        assert!(Dataset::new(vec![0; 7], vec![0, 1], 2, 2).is_err());
        assert!(Dataset::new(vec![], vec![], 0, 2).is_err());
        assert!(Dataset::new(vec![], vec![0], usize::MAX, 2).is_err());
        let empty = Dataset::new(vec![], vec![], 28, 28).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn image_subset_and_take_select_the_right_examples() {
        let d = tiny();
        assert_eq!(d.len(), 3);
        assert_eq!(d.image(1), &[10, 10, 10, 10]);
        let s = d.subset(&[2, 0, 2]).unwrap();
        assert_eq!(s.labels(), &[2, 0, 2]);
        assert_eq!(s.image(0), &[20; 4]);
        assert_eq!(s.image(1), &[0; 4]);
        assert!(d.subset(&[3]).is_err());
        let t = d.take(2);
        assert_eq!(t.labels(), &[0, 1]);
        assert_eq!(t.images().len(), 8);
        assert_eq!(d.take(99), d);
    }

    #[test]
    fn label_counts_cover_up_to_the_largest_label() {
        let d = Dataset::new(vec![0; 4], vec![3, 1, 3, 3], 1, 1).unwrap();
        assert_eq!(d.label_counts(), vec![0, 1, 0, 3]);
        assert!(Dataset::default().label_counts().is_empty());
    }

    #[test]
    fn write_batch_f32_scales_by_255_and_checks_lengths() {
        let d = Dataset::new(vec![0, 255, 51, 102], vec![7, 9], 1, 2).unwrap();
        let mut out = [0f32; 4];
        let mut labels = [0u8; 2];
        d.write_batch_f32(&[1, 0], &mut out, &mut labels).unwrap();
        assert_eq!(out, [0.2, 0.4, 0.0, 1.0]);
        assert_eq!(labels, [9, 7]);
        assert!(d.write_batch_f32(&[0], &mut out, &mut labels).is_err());
        assert!(d.write_batch_f32(&[0, 2], &mut out, &mut labels).is_err());
    }
}
