//! Bearer-token auth for the training routes (when the node has a token configured), with
//! [`TokenGuard`] (`service::token`), the comparison every fedge service uses for its
//! tokens.
//!
//! The token is compared as a SHA-256 digest, in constant time over those fixed 32 bytes, so
//! neither a differing byte nor a differing length shows in the timing. Failures are
//! rate-limited by a token bucket (a burst of [`FAILURE_BURST`], then
//! [`FAILURES_PER_SECOND`]): once it is empty every request is refused with 429 and
//! `Retry-After` *before* any comparison, so guessing gets no answer at all. The bucket is
//! shared by all peers (behind Knative's queue-proxy they all look alike): a flood of wrong
//! tokens also delays the right one for a few seconds, the price of not answering guesses.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

pub use service::token::{FAILURE_BURST, FAILURES_PER_SECOND, Refusal, TokenGuard};

/// Middleware: passes the request on when no token is configured or the
/// `Authorization: Bearer <token>` header matches; 401 otherwise, 429 while failures are
/// rate-limited.
pub async fn require_bearer(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(guard) = state.token_guard() {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if let Err(refusal) = guard.check_header(given) {
            let error = match refusal {
                Refusal::Invalid => ApiError::Unauthorized,
                Refusal::RateLimited { retry_after } => ApiError::AuthRateLimited { retry_after },
            };
            // The request body is left unread, so hyper cannot reuse the connection; say so,
            // or a keep-alive client would send its next request into a closing socket.
            let mut response = error.into_response();
            response.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            return response;
        }
    }
    next.run(request).await
}
