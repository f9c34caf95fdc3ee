//! `GET /metrics`: the OpenMetrics text of [`crate::metrics::Metrics`].

use axum::extract::State;
use axum::response::Response;

use crate::state::AppState;

/// The node's metrics.
pub async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics().response()
}
