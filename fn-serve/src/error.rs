//! [`ApiError`]: every way a request can fail, mapped to an HTTP status and a JSON
//! `{"error": "..."}` body (the KServe mapping of inference-protocols.md A.9).
//!
//! 4xx errors carry a precise message for the caller; 5xx errors say little on the wire
//! and the full message goes to the log.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed JSON, wrong datatype, shape, size, value range, unknown input/output (400).
    #[error("{0}")]
    BadRequest(String),
    /// Unknown model name or version, or unknown path (404).
    #[error("{0}")]
    NotFound(String),
    /// The method is not allowed on this path (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The body or the batch is over the configured limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// The content type is not one we decode (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// No model loaded yet (503).
    #[error("{0}")]
    NotReady(String),
    /// The decoded-input memory budget is used up by other requests; retry shortly (503).
    #[error("{0}")]
    Busy(String),
    /// The request took longer than the configured deadline (408).
    #[error("{0}")]
    Timeout(String),
    /// A protocol verb we do not implement (501).
    #[error("{0}")]
    NotImplemented(String),
    /// The model failed, a worker died, or anything else unexpected (500).
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// Shorthand for [`ApiError::BadRequest`].
    pub fn bad(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotReady(_) | Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Internal(detail) => {
                tracing::error!(error = %detail, "request failed");
                "internal error while running the model".to_string()
            }
            other => other.to_string(),
        };
        let mut resp = service::error::json_error(status, &message);
        if matches!(self, Self::Busy(_) | Self::NotReady(_)) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

/// A body that is not JSON is the caller's mistake.
impl From<crate::codec::json::JsonError> for ApiError {
    fn from(e: crate::codec::json::JsonError) -> Self {
        Self::BadRequest(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_kserve_mapping() {
        assert_eq!(ApiError::bad("x").status(), 400);
        assert_eq!(ApiError::NotFound("x".into()).status(), 404);
        assert_eq!(ApiError::TooLarge("x".into()).status(), 413);
        assert_eq!(ApiError::UnsupportedMediaType("x".into()).status(), 415);
        assert_eq!(ApiError::NotReady("x".into()).status(), 503);
        assert_eq!(ApiError::Internal("x".into()).status(), 500);
    }
}
