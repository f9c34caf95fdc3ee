//! [`Tensor`]: a shape plus contiguous, 64-byte aligned f32 storage. No autograd graph:
//! layers own their buffers and call the kernels directly.
//!
//! Storage is either owned (a vector of 64-byte blocks) or borrowed in place from a
//! memory-mapped weights file; writing to a mapped tensor first copies it (copy on write).

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};

/// One cache line of f32s: the unit of allocation that gives 64-byte alignment.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C, align(64))]
struct Block([f32; 16]);

const BLOCK: usize = 16;

/// Read-only bytes a tensor can borrow from (a memory map, or shared bytes).
pub trait SharedBytes: Send + Sync + std::fmt::Debug {
    /// The bytes.
    fn bytes(&self) -> &[u8];
}

#[derive(Clone)]
enum Storage {
    Owned {
        blocks: Vec<Block>,
        len: usize,
    },
    Mapped {
        source: Arc<dyn SharedBytes>,
        offset: usize,
        len: usize,
    },
}

/// An n-dimensional f32 array, row-major, 64-byte aligned.
#[derive(Clone)]
pub struct Tensor {
    shape: Vec<usize>,
    storage: Storage,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.storage {
            Storage::Owned { .. } => "owned",
            Storage::Mapped { .. } => "mapped",
        };
        f.debug_struct("Tensor")
            .field("shape", &self.shape)
            .field("storage", &kind)
            .finish()
    }
}

fn numel(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "shape {shape:?} has more elements than fit in memory"
            ))
        })
}

fn zeroed_blocks(len: usize) -> Vec<Block> {
    vec![Block([0.0; BLOCK]); len.div_ceil(BLOCK)]
}

impl Tensor {
    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Result<Self> {
        let len = numel(shape)?;
        Ok(Self {
            shape: shape.to_vec(),
            storage: Storage::Owned {
                blocks: zeroed_blocks(len),
                len,
            },
        })
    }

    /// A tensor holding a copy of `data`, which must have `shape`'s element count.
    pub fn from_slice(shape: &[usize], data: &[f32]) -> Result<Self> {
        let mut t = Self::zeros(shape)?;
        if data.len() != t.len() {
            return Err(Error::Shape {
                what: "Tensor::from_slice data".into(),
                expected: vec![t.len()],
                got: vec![data.len()],
            });
        }
        t.data_mut().copy_from_slice(data);
        Ok(t)
    }

    /// A tensor borrowing `len` f32s at byte `offset` of `source` in place.
    /// Fails unless the range is in bounds and 4-byte aligned in memory.
    pub fn mapped(shape: &[usize], source: Arc<dyn SharedBytes>, offset: usize) -> Result<Self> {
        let len = numel(shape)?;
        let bytes = source.bytes();
        let end = len.checked_mul(4).and_then(|b| b.checked_add(offset));
        let Some(slice) = end.and_then(|end| bytes.get(offset..end)) else {
            return Err(Error::Weights(format!(
                "tensor of shape {shape:?} at byte {offset} runs past the {}-byte buffer",
                bytes.len()
            )));
        };
        if bytemuck::try_cast_slice::<u8, f32>(slice).is_err() {
            return Err(Error::Weights(format!(
                "tensor at byte {offset} is not 4-byte aligned"
            )));
        }
        Ok(Self {
            shape: shape.to_vec(),
            storage: Storage::Mapped {
                source,
                offset,
                len,
            },
        })
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.storage {
            Storage::Owned { len, .. } | Storage::Mapped { len, .. } => *len,
        }
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the data is borrowed in place from a mapped file.
    pub fn is_mapped(&self) -> bool {
        matches!(self.storage, Storage::Mapped { .. })
    }

    /// The elements, row-major.
    pub fn data(&self) -> &[f32] {
        match &self.storage {
            Storage::Owned { blocks, len } => &bytemuck::cast_slice::<Block, f32>(blocks)[..*len],
            Storage::Mapped {
                source,
                offset,
                len,
            } => {
                // Alignment and bounds were checked in `Tensor::mapped`; the source is immutable.
                bytemuck::cast_slice(&source.bytes()[*offset..*offset + *len * 4])
            }
        }
    }

    /// The elements, mutable. A mapped tensor is copied into owned storage first.
    pub fn data_mut(&mut self) -> &mut [f32] {
        if let Storage::Mapped { .. } = self.storage {
            let mut blocks = zeroed_blocks(self.len());
            let len = self.len();
            bytemuck::cast_slice_mut::<Block, f32>(&mut blocks)[..len].copy_from_slice(self.data());
            self.storage = Storage::Owned { blocks, len };
        }
        match &mut self.storage {
            Storage::Owned { blocks, len } => {
                &mut bytemuck::cast_slice_mut::<Block, f32>(blocks)[..*len]
            }
            Storage::Mapped { .. } => unreachable!("converted to owned above"),
        }
    }

    /// Sets every element to `value`.
    pub fn fill(&mut self, value: f32) {
        self.data_mut().fill(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_storage_is_64_byte_aligned_and_zeroed() {
        let t = Tensor::zeros(&[3, 5, 7]).unwrap();
        assert_eq!(t.len(), 105);
        assert_eq!(t.data().as_ptr() as usize % 64, 0);
        assert!(t.data().iter().all(|&v| v == 0.0));
    }

    #[test]
    fn from_slice_refuses_wrong_length() {
        assert!(Tensor::from_slice(&[2, 2], &[1.0; 3]).is_err());
        let t = Tensor::from_slice(&[2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(t.data(), &[1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn overflowing_shape_is_an_error_not_a_panic() {
        assert!(Tensor::zeros(&[usize::MAX, 2]).is_err());
    }

    #[derive(Debug)]
    struct Bytes(Vec<u8>);
    impl SharedBytes for Bytes {
        fn bytes(&self) -> &[u8] {
            &self.0
        }
    }

    #[test]
    fn mapped_tensor_reads_in_place_and_copies_on_write() {
        let values = [1.5f32, -2.0, 3.25];
        let mut raw = vec![0u8; 4];
        raw.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        let src: Arc<dyn SharedBytes> = Arc::new(Bytes(raw));
        // The Vec<u8> allocation is at least 4-aligned in practice; offset 4 keeps that.
        let mut t = Tensor::mapped(&[3], src.clone(), 4).unwrap();
        assert!(t.is_mapped());
        assert_eq!(t.data(), &values);
        t.data_mut()[0] = 9.0;
        assert!(!t.is_mapped());
        assert_eq!(t.data(), &[9.0, -2.0, 3.25]);
        assert!(
            Tensor::mapped(&[4], src, 4).is_err(),
            "out of bounds must be refused"
        );
    }
}
