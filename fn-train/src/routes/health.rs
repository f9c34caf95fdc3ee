//! `GET /healthz` (alive), `GET /readyz` (shard loaded, not draining), `GET /status`.
//!
//! None of them touches the job slot's lock for longer than a clone, so they answer while a
//! job trains.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::job::JobStatus;
use crate::state::AppState;

/// Liveness: the process serves HTTP.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "alive" }))
}

/// Readiness: 200 once the shard is loaded, 503 before that and while draining.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.ready() {
        return Json(json!({ "status": "ready" })).into_response();
    }
    let reason = if state.draining() {
        "draining".to_owned()
    } else if let Some(e) = state.shard_error() {
        format!("shard failed to load: {e}")
    } else {
        "shard loading".to_owned()
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "not ready", "error": reason })),
    )
        .into_response()
}

/// The running job's progress (no data), for operators and tests.
pub async fn status(State(state): State<AppState>) -> impl IntoResponse {
    let job: Option<JobStatus> = state.jobs().current().map(|h| h.status());
    Json(json!({
        "client_id": state.config().client_id,
        "ready": state.ready(),
        "draining": state.draining(),
        "shard_examples": state.shard().map(|s| s.len()),
        "job": job,
    }))
}
