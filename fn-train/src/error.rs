//! [`ApiError`]: every way a request can fail, mapped to a status and a JSON `{"error": ...}`.
//!
//! 4xx errors carry a precise message for the caller. 5xx errors that come from inside the
//! node (not from the caller's input) answer with a short message; the full error goes to the
//! log at the point where it is turned into a response.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not parseable (malformed JSON, bad base64, malformed CloudEvent): 400.
    #[error("{0}")]
    BadRequest(String),
    /// The request parses but asks for something impossible (epochs 0, unknown optimizer,
    /// weights of another architecture): 422.
    #[error("{0}")]
    Unprocessable(String),
    /// No such route: 404.
    #[error("{0}")]
    NotFound(String),
    /// Missing or wrong bearer token: 401.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// Too many wrong tokens lately: 429 with `Retry-After`, the token not even compared.
    #[error("too many failed authentications; retry later")]
    AuthRateLimited {
        /// Seconds for `Retry-After`.
        retry_after: u64,
    },
    /// The body's media type is not one this route reads: 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body is larger than the configured limit: 413.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The same CloudEvent (source + id) is being processed right now: 409 (retried later,
    /// when the finished reply is replayed).
    #[error("{0}")]
    Conflict(String),
    /// A training job is already running: 429 with `Retry-After`.
    #[error("a training job (round {round}) is already running; one job at a time")]
    Busy {
        /// The round of the running job.
        round: u64,
        /// Seconds for `Retry-After`.
        retry_after: u64,
    },
    /// The shard is still loading, or the node is shutting down: 503 with `Retry-After`.
    #[error("{message}")]
    Unavailable {
        /// What is unavailable.
        message: String,
        /// Seconds for `Retry-After`.
        retry_after: u64,
    },
    /// The model could not be fetched from its URL: 502.
    #[error("{0}")]
    BadGateway(String),
    /// The request's deadline passed before training finished: 408.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// A bug or resource failure inside the node: 500; the detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Busy { .. } | ApiError::AuthRateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::DeadlineExceeded(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The CloudEvents decoder's errors at the HTTP edge.
impl From<crate::cloudevents::EventError> for ApiError {
    fn from(e: crate::cloudevents::EventError) -> Self {
        match e {
            crate::cloudevents::EventError::Malformed(m) => ApiError::BadRequest(m),
            crate::cloudevents::EventError::Unsupported(m) => ApiError::UnsupportedMediaType(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "internal error; see the node's log".to_owned()
            }
            other => {
                if status.is_server_error() {
                    tracing::warn!(status = status.as_u16(), error = %other, "request failed");
                } else {
                    tracing::info!(status = status.as_u16(), error = %other, "request refused");
                }
                other.to_string()
            }
        };
        let mut response = service::error::json_error(status, &message);
        let retry_after = match &self {
            ApiError::Busy { retry_after, .. }
            | ApiError::Unavailable { retry_after, .. }
            | ApiError::AuthRateLimited { retry_after } => Some(*retry_after),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if matches!(self, ApiError::PayloadTooLarge(_)) {
            // The rest of the body is left unread, so hyper closes the connection: say so,
            // or a keep-alive client sends its next request into a closing socket (seen as
            // an IncompleteMessage in the errors test).
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_is_429_with_retry_after_and_internal_hides_detail() {
        let r = ApiError::Busy {
            round: 3,
            retry_after: 7,
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");
        let r = ApiError::Internal("secret path /x".into()).into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let r = ApiError::Unauthorized.into_response();
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
