//! Bearer-token auth for the training routes, when the node has a token configured (the
//! comparison itself is [`service::auth::TokenGuard`]).

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use service::auth::Refusal;

use crate::error::ApiError;
use crate::state::AppState;

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
