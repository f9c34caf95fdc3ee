//! Health: V2 live/ready (the Knative probes), plus `/healthz` and `/readyz` aliases.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::AppState;

/// `GET /v2/health/live`, `GET /healthz`: 200 from the first instant.
pub async fn live() -> Json<Value> {
    Json(json!({ "live": true }))
}

/// `GET /v2/health/ready`, `GET /readyz`: 200 once a model is loaded, else 503.
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.slot().get() {
        Some(_) => Ok(Json(json!({ "ready": true }))),
        None => Err(ApiError::NotReady("no model loaded yet".into())),
    }
}
