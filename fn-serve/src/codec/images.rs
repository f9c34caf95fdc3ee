//! [`ImageBuf`]: decoded input pixels, compact (f32 or u8), in chunks of whole images.
//!
//! The buffer grows only with data actually read, one chunk at a time, and every chunk's
//! bytes are first taken from a shared [`Budget`], so all requests together never hold
//! more decoded input than configured, whatever shapes they claim. Chunks hold whole
//! images, so inference can run chunk by chunk without copying them together.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::ApiError;

/// Images per chunk once a request is past its first chunk (FP32: 784 KiB per chunk).
pub const CHUNK_IMAGES: usize = 256;

/// Bytes of decoded input all requests may hold together.
#[derive(Debug, Clone)]
pub struct Budget {
    available: Arc<AtomicUsize>,
    total: usize,
}

impl Budget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Self {
        Self {
            available: Arc::new(AtomicUsize::new(bytes)),
            total: bytes,
        }
    }

    /// Bytes currently reserved by requests.
    pub fn in_use(&self) -> usize {
        self.total
            .saturating_sub(self.available.load(Ordering::Relaxed))
    }

    fn try_take(&self, bytes: usize) -> bool {
        self.available
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |a| {
                a.checked_sub(bytes)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.available.fetch_add(bytes, Ordering::AcqRel);
    }
}

/// The element type of decoded pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelType {
    /// FP32 in [0, 1].
    F32,
    /// UINT8 0..=255.
    U8,
}

impl PixelType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::U8 => 1,
        }
    }

    /// The V2 datatype name.
    pub fn v2_name(self) -> &'static str {
        match self {
            Self::F32 => "FP32",
            Self::U8 => "UINT8",
        }
    }
}

/// Chunks of one element type.
#[derive(Debug)]
pub enum Chunks {
    /// FP32 pixels.
    F32(Vec<Vec<f32>>),
    /// UINT8 pixels.
    U8(Vec<Vec<u8>>),
}

/// An element type of [`Chunks`]: finds its own variant.
trait Pixel: Copy {
    const NAME: &'static str;
    fn chunks(c: &mut Chunks) -> Option<&mut Vec<Vec<Self>>>;
}

impl Pixel for f32 {
    const NAME: &'static str = "FP32";
    fn chunks(c: &mut Chunks) -> Option<&mut Vec<Vec<f32>>> {
        match c {
            Chunks::F32(v) => Some(v),
            Chunks::U8(_) => None,
        }
    }
}

impl Pixel for u8 {
    const NAME: &'static str = "UINT8";
    fn chunks(c: &mut Chunks) -> Option<&mut Vec<Vec<u8>>> {
        match c {
            Chunks::U8(v) => Some(v),
            Chunks::F32(_) => None,
        }
    }
}

/// Decoded pixels of one request.
#[derive(Debug)]
pub struct ImageBuf {
    image_len: usize,
    max_elems: usize,
    first_chunk_images: usize,
    chunks: Chunks,
    /// Capacity (elements) of the last chunk.
    cap: usize,
    elems: usize,
    budget: Budget,
    reserved: usize,
}

impl Drop for ImageBuf {
    fn drop(&mut self) {
        self.budget.give_back(self.reserved);
    }
}

impl ImageBuf {
    /// An empty buffer for images of `image_len` elements, at most `max_images` of them.
    /// `hint_images` (a shape already validated against the limit, or 0) sizes the first
    /// chunk, never beyond one chunk.
    pub fn new(
        ty: PixelType,
        image_len: usize,
        max_images: usize,
        hint_images: usize,
        budget: Budget,
    ) -> Self {
        let chunks = match ty {
            PixelType::F32 => Chunks::F32(Vec::new()),
            PixelType::U8 => Chunks::U8(Vec::new()),
        };
        Self {
            image_len: image_len.max(1),
            max_elems: max_images.saturating_mul(image_len),
            first_chunk_images: hint_images.clamp(1, CHUNK_IMAGES),
            chunks,
            cap: 0,
            elems: 0,
            budget,
            reserved: 0,
        }
    }

    /// The element type.
    pub fn pixel_type(&self) -> PixelType {
        match self.chunks {
            Chunks::F32(_) => PixelType::F32,
            Chunks::U8(_) => PixelType::U8,
        }
    }

    /// Elements pushed so far.
    pub fn len(&self) -> usize {
        self.elems
    }

    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.elems == 0
    }

    /// Elements per image.
    pub fn image_len(&self) -> usize {
        self.image_len
    }

    /// Whole images held (`len / image_len`).
    pub fn images(&self) -> usize {
        self.elems / self.image_len
    }

    /// The chunks (each a whole number of images once the count was validated).
    pub fn chunks(&self) -> &Chunks {
        &self.chunks
    }

    #[cold]
    fn grow(&mut self) -> Result<(), ApiError> {
        if self.elems >= self.max_elems {
            return Err(ApiError::TooLarge(format!(
                "more than {} images in one request (the configured maximum batch)",
                self.max_elems / self.image_len
            )));
        }
        let images = if self.cap == 0 {
            self.first_chunk_images
        } else {
            CHUNK_IMAGES
        };
        let elems = (images * self.image_len).min(self.max_elems - self.elems);
        let bytes = elems * self.pixel_type().size();
        if !self.budget.try_take(bytes) {
            return Err(ApiError::Busy(
                "the server is holding as much request data as its memory allows; retry shortly"
                    .into(),
            ));
        }
        self.reserved += bytes;
        match &mut self.chunks {
            Chunks::F32(c) => c.push(Vec::with_capacity(elems)),
            Chunks::U8(c) => c.push(Vec::with_capacity(elems)),
        }
        self.cap = elems;
        Ok(())
    }

    fn room(&self) -> usize {
        let used = match &self.chunks {
            Chunks::F32(c) => c.last().map_or(0, Vec::len),
            Chunks::U8(c) => c.last().map_or(0, Vec::len),
        };
        self.cap - used
    }

    /// Appends one f32 (the buffer must be F32).
    #[inline]
    pub fn push_f32(&mut self, v: f32) -> Result<(), ApiError> {
        self.push(v)
    }

    /// Appends one u8 (the buffer must be U8).
    #[inline]
    pub fn push_u8(&mut self, v: u8) -> Result<(), ApiError> {
        self.push(v)
    }

    /// Appends one element of the buffer's type: into the last chunk while it has room,
    /// else into a new chunk taken from the budget.
    #[inline]
    fn push<T: Pixel>(&mut self, v: T) -> Result<(), ApiError> {
        let cap = self.cap;
        if let Some(last) = T::chunks(&mut self.chunks).and_then(|c| c.last_mut())
            && last.len() < cap
        {
            last.push(v);
            self.elems += 1;
            return Ok(());
        }
        self.grow()?;
        let Some(last) = T::chunks(&mut self.chunks).and_then(|c| c.last_mut()) else {
            return Err(ApiError::Internal(format!(
                "{} pushed into a {} buffer",
                T::NAME,
                self.pixel_type().v2_name()
            )));
        };
        last.push(v);
        self.elems += 1;
        Ok(())
    }

    /// Appends raw little-endian bytes of the buffer's type (binary tensor data). `carry`
    /// holds the bytes of an f32 split across calls.
    pub fn push_le_bytes(&mut self, bytes: &[u8], carry: &mut Vec<u8>) -> Result<(), ApiError> {
        match self.pixel_type() {
            PixelType::U8 => {
                let mut rest = bytes;
                while !rest.is_empty() {
                    if self.room() == 0 {
                        self.grow()?;
                    }
                    let take = self.room().min(rest.len());
                    if let Chunks::U8(c) = &mut self.chunks
                        && let Some(last) = c.last_mut()
                    {
                        last.extend_from_slice(&rest[..take]);
                    }
                    self.elems += take;
                    rest = &rest[take..];
                }
                Ok(())
            }
            PixelType::F32 => {
                let mut rest = bytes;
                if !carry.is_empty() {
                    let need = 4 - carry.len();
                    let take = need.min(rest.len());
                    carry.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if carry.len() < 4 {
                        return Ok(());
                    }
                    let v = f32::from_le_bytes([carry[0], carry[1], carry[2], carry[3]]);
                    carry.clear();
                    self.push_f32(v)?;
                }
                let mut words = rest.chunks_exact(4);
                for w in &mut words {
                    self.push_f32(f32::from_le_bytes([w[0], w[1], w[2], w[3]]))?;
                }
                carry.extend_from_slice(words.remainder());
                Ok(())
            }
        }
    }

    /// Converts an F32 buffer holding integers 0..=255 into a U8 one (a JSON request that
    /// named its datatype UINT8 only after its data). Errors name the first bad element.
    pub fn into_u8(mut self) -> Result<Self, ApiError> {
        let Chunks::F32(chunks) = std::mem::replace(&mut self.chunks, Chunks::U8(Vec::new()))
        else {
            return Ok(self);
        };
        let mut out = Vec::with_capacity(chunks.len());
        let mut index = 0usize;
        for c in chunks {
            let mut u = Vec::with_capacity(c.len());
            for v in c {
                if !(v.fract() == 0.0 && (0.0..=255.0).contains(&v)) {
                    return Err(ApiError::bad(format!(
                        "input element {index} is {v}: UINT8 data must be integers 0..255"
                    )));
                }
                u.push(v as u8);
                index += 1;
            }
            out.push(u);
        }
        // The f32 reservation is larger than what u8 needs; keep it until drop (simple).
        self.chunks = Chunks::U8(out);
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hold_whole_images_and_the_budget_is_returned() {
        let budget = Budget::new(1 << 20);
        {
            let mut b = ImageBuf::new(PixelType::F32, 4, 1000, 2, budget.clone());
            for i in 0..(4 * 300) {
                b.push_f32(i as f32).unwrap();
            }
            let Chunks::F32(c) = b.chunks() else { panic!() };
            assert_eq!(c.len(), 3);
            assert_eq!(c[0].len(), 8); // the 2-image hint
            assert_eq!(c[1].len(), 4 * CHUNK_IMAGES);
            assert!(c.iter().all(|c| c.len() % 4 == 0));
            assert_eq!(b.images(), 300);
            assert!(budget.in_use() > 0);
        }
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn limits_and_budget_refuse_growth() {
        let mut b = ImageBuf::new(PixelType::U8, 4, 2, 0, Budget::new(1 << 20));
        for _ in 0..8 {
            b.push_u8(1).unwrap();
        }
        assert_eq!(b.push_u8(1).unwrap_err().status(), 413);
        let mut b = ImageBuf::new(PixelType::F32, 784, 10, 1, Budget::new(100));
        assert_eq!(b.push_f32(0.0).unwrap_err().status(), 503);
    }

    #[test]
    fn le_bytes_split_anywhere() {
        let vals: Vec<f32> = (0..50).map(|i| i as f32 / 7.0).collect();
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        for split in [1, 3, 5, 7, 200] {
            let mut b = ImageBuf::new(PixelType::F32, 10, 100, 0, Budget::new(1 << 20));
            let mut carry = Vec::new();
            for c in bytes.chunks(split) {
                b.push_le_bytes(c, &mut carry).unwrap();
            }
            let Chunks::F32(c) = b.chunks() else { panic!() };
            let got: Vec<f32> = c.concat();
            assert_eq!(got, vals);
        }
    }
}
