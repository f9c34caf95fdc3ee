//! `GET /metrics`: Prometheus text format.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// Renders the counters.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let text = state
        .metrics()
        .render(state.slot().get().is_some(), state.budget().in_use());
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}
