//! HTTP surface: one file per protocol; body reading shared here.

pub mod health;
pub mod metrics;
pub mod v1;
pub mod v2;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use http_body_util::BodyExt;

use crate::error::ApiError;

/// The header of the binary tensor data extension.
pub const HEADER_LEN: &str = "inference-header-content-length";

/// How the body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// JSON only.
    Json,
    /// A JSON header of this many bytes, then binary tensor data.
    Binary(usize),
}

fn content_type(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    match headers.get(header::CONTENT_TYPE) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.split(';').next().unwrap_or("").trim()))
            .map_err(|_| ApiError::UnsupportedMediaType("unreadable Content-Type".into())),
    }
}

fn is_json(ct: &str) -> bool {
    ct.eq_ignore_ascii_case("application/json")
        || ct.eq_ignore_ascii_case("text/json")
        || ct.to_ascii_lowercase().ends_with("+json")
}

/// Decides the framing from the headers; refuses content types we do not decode.
/// `allow_binary` = the endpoint speaks the binary tensor data extension.
pub fn framing(headers: &HeaderMap, limit: usize, allow_binary: bool) -> Result<Framing, ApiError> {
    if let Some(len) = content_length(headers)
        && len > limit as u64
    {
        return Err(too_large(limit));
    }
    let ct = content_type(headers)?;
    if allow_binary && let Some(v) = headers.get(HEADER_LEN) {
        let len = v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .ok_or_else(|| ApiError::bad("Inference-Header-Content-Length must be a byte count"))?;
        if len > limit {
            return Err(too_large(limit));
        }
        return match ct {
            None => Ok(Framing::Binary(len)),
            Some(ct) if is_json(ct) || ct.eq_ignore_ascii_case("application/octet-stream") => {
                Ok(Framing::Binary(len))
            }
            Some(ct) => Err(unsupported(ct, allow_binary)),
        };
    }
    match ct {
        None => Ok(Framing::Json),
        Some(ct) if is_json(ct) => Ok(Framing::Json),
        Some(ct) if allow_binary && ct.eq_ignore_ascii_case("application/octet-stream") => {
            Err(ApiError::bad(
                "an application/octet-stream body needs the Inference-Header-Content-Length \
                 header (binary tensor data extension)",
            ))
        }
        Some(ct) => Err(unsupported(ct, allow_binary)),
    }
}

fn unsupported(ct: &str, binary: bool) -> ApiError {
    ApiError::UnsupportedMediaType(format!(
        "content type {ct:?} is not supported: send application/json{}",
        if binary {
            ", or application/octet-stream with Inference-Header-Content-Length"
        } else {
            ""
        }
    ))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn too_large(limit: usize) -> ApiError {
    ApiError::TooLarge(format!(
        "the request body is larger than the limit of {limit} bytes"
    ))
}

/// Reads a body frame by frame, enforcing the byte limit as data arrives.
#[derive(Debug)]
pub struct BodyReader {
    body: Body,
    seen: usize,
    limit: usize,
}

impl BodyReader {
    /// A reader of `body` that fails past `limit` bytes.
    pub fn new(body: Body, limit: usize) -> Self {
        Self {
            body,
            seen: 0,
            limit,
        }
    }

    /// The next data chunk, `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Bytes>, ApiError> {
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(ApiError::bad(format!(
                        "could not read the request body: {e}"
                    )));
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.seen += data.len();
                        if self.seen > self.limit {
                            return Err(too_large(self.limit));
                        }
                        if !data.is_empty() {
                            return Ok(Some(data));
                        }
                    }
                }
            }
        }
    }
}
