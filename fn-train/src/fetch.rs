//! Getting the global model's bytes: inline (already decoded) or over http with a timeout
//! and a size cap, streamed so a lying `Content-Length` cannot make us allocate.
//!
//! An error tells the caller the failure's class only (unreachable, error status, timeout,
//! too large): never the transport's words, a length or bytes of the remote answer, which
//! would make the node a probe of what it can reach. The detail goes to the node's log.

use std::time::Duration;

use crate::error::ApiError;
use crate::request::ModelSource;

/// Limits of one fetch.
#[derive(Debug, Clone, Copy)]
pub struct FetchLimits {
    /// Overall timeout of the download (connect + body).
    pub timeout: Duration,
    /// Largest body accepted.
    pub max_bytes: usize,
}

/// The model's safetensors bytes.
///
/// # Errors
/// [`ApiError::BadGateway`] when the URL is unreachable, answers non-2xx or times out;
/// [`ApiError::PayloadTooLarge`] past `max_bytes`.
pub async fn model_bytes(
    client: &reqwest::Client,
    source: ModelSource,
    limits: FetchLimits,
) -> Result<Vec<u8>, ApiError> {
    let url = match source {
        ModelSource::Inline(bytes) => return Ok(bytes),
        ModelSource::Url(url) => url,
    };
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "the model is larger than the limit of {} bytes",
            limits.max_bytes
        ))
    };
    let download = async {
        let mut response = client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/octet-stream")
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(%url, error = %e, "model fetch failed");
                ApiError::BadGateway("the model URL could not be reached".into())
            })?;
        let status = response.status();
        if !status.is_success() {
            tracing::warn!(%url, %status, "model fetch refused");
            return Err(ApiError::BadGateway(
                "the model URL answered with an error status".into(),
            ));
        }
        if response
            .content_length()
            .is_some_and(|n| n > limits.max_bytes as u64)
        {
            return Err(too_large());
        }
        let capacity = response.content_length().unwrap_or(0) as usize;
        let mut body = Vec::with_capacity(capacity.min(limits.max_bytes));
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            tracing::warn!(%url, error = %e, "model download broke off");
            ApiError::BadGateway("the model download broke off".into())
        })? {
            if body.len() + chunk.len() > limits.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(limits.timeout, download)
        .await
        .map_err(|_| {
            ApiError::BadGateway(format!(
                "fetching the model took longer than {} ms",
                limits.timeout.as_millis()
            ))
        })?
}
