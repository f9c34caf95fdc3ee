//! Request decoding and response encoding for both protocols.
//!
//! - [`json`]: a resumable push tokenizer, fed body chunks as they arrive.
//! - [`images`]: compact chunked pixel buffers under a shared memory [`images::Budget`].
//! - [`v2`]: Open Inference Protocol requests, JSON and binary tensor data extension.
//! - [`v1`]: TF-Serving `instances` / `inputs` requests.
//! - [`response`]: V2 and V1 response bodies, JSON or binary.
//!
//! Tensor numbers never pass through a `serde_json::Value`: they go from the body bytes
//! to an f32 or u8 in the pixel buffer, checked on the way.

pub mod images;
pub mod json;
pub mod response;
pub mod v1;
pub mod v2;

use crate::error::ApiError;
use images::{Chunks, ImageBuf};

/// The model's input tensor name (V2 metadata and requests).
pub const INPUT_NAME: &str = "input";
/// Output: class probabilities, FP32 [N, classes].
pub const OUTPUT_PROBABILITIES: &str = "probabilities";
/// Output: the predicted class (argmax, lowest index on ties), INT64 [N].
pub const OUTPUT_CLASS: &str = "class";

/// What the decoders need to know about the served model's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelInput {
    /// [C, H, W].
    pub shape: [usize; 3],
}

impl ModelInput {
    /// Elements per image (C*H*W).
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Checks one FP32 pixel: finite and in [0, 1].
#[inline]
pub fn check_f32(v: f32, index: usize) -> Result<(), ApiError> {
    if (0.0..=1.0).contains(&v) {
        return Ok(());
    }
    Err(if v.is_finite() {
        ApiError::bad(format!(
            "input element {index} is {v}: FP32 pixels must be in [0, 1] (pixel / 255); send UINT8 for 0..255"
        ))
    } else {
        ApiError::bad(format!(
            "input element {index} is {v}: values must be finite"
        ))
    })
}

/// Checks every pixel of an FP32 buffer.
pub fn validate_f32_buf(buf: &ImageBuf) -> Result<(), ApiError> {
    if let Chunks::F32(chunks) = buf.chunks() {
        let mut base = 0;
        for c in chunks {
            if let Some(i) = c.iter().position(|v| !(0.0..=1.0).contains(v)) {
                return check_f32(c[i], base + i);
            }
            base += c.len();
        }
    }
    Ok(())
}

/// Parses a UINT8 element written as a JSON integer 0..=255.
#[inline]
pub fn parse_u8(raw: &str, index: usize) -> Result<u8, ApiError> {
    let b = raw.as_bytes();
    if !b.is_empty() && b.len() <= 3 && b.iter().all(u8::is_ascii_digit) {
        let v = b
            .iter()
            .fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0'));
        if let Ok(v) = u8::try_from(v) {
            return Ok(v);
        }
    }
    Err(ApiError::bad(format!(
        "input element {index} is {raw}: UINT8 data must be integers 0..255"
    )))
}
