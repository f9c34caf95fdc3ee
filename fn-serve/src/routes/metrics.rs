//! `GET /metrics`: the OpenMetrics text of [`crate::metrics::Metrics`].

use axum::extract::State;
use axum::response::Response;

use crate::state::AppState;

/// Renders the counters.
pub async fn metrics(State(state): State<AppState>) -> Response {
    state
        .metrics()
        .response(state.slot().get().is_some(), state.budget().in_use())
}
