//! The aggregator's HTTP surface (axum).
//!
//! | route | what |
//! |---|---|
//! | `GET /v1/models/{name}/latest` | safetensors of the current version; `ETag: "<name>-v<version>"`, `X-Model-Version`; 304 on a matching `If-None-Match`; 404 JSON before the first version |
//! | `GET /v1/models/{name}/versions/{v}` | the same for one version |
//! | `GET /v1/rounds` | the round history, JSON array |
//! | `POST /v1/rounds` | cluster mode, operator token: start `{"rounds": n}` rounds in the background (202), 409 while rounds run |
//! | `DELETE /v1/rounds` | cluster mode, operator token: cancel the running round (recorded as failed) and the rest of the run (202) |
//! | `GET /healthz` | liveness |
//! | `GET /metrics` | OpenMetrics text ([`crate::metrics`]) |
//!
//! The control routes (`POST`/`DELETE /v1/rounds`) need `Authorization: Bearer` with the
//! operator token, which is not any client's token; with none configured they answer 403.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;

use service::token::{Refusal, TokenGuard};

use crate::metrics::Metrics;
use crate::rounds::Coordinator;
use crate::store::ModelStore;

/// Shared state of the router.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The model store served.
    pub store: Arc<ModelStore>,
    /// The round runner, in cluster mode (`POST /v1/rounds`).
    pub coordinator: Option<Arc<Coordinator>>,
    /// `/metrics`: download counters and the store's round history.
    pub metrics: Arc<Metrics>,
    /// The operator token's check, guarding the control routes.
    pub operator: Option<Arc<TokenGuard>>,
}

impl AppState {
    /// State serving `store`, optionally running rounds with `coordinator`.
    pub fn new(store: Arc<ModelStore>, coordinator: Option<Arc<Coordinator>>) -> Self {
        Self {
            metrics: Arc::new(Metrics::new(store.clone(), coordinator.clone())),
            store,
            coordinator,
            operator: None,
        }
    }

    /// The same state with the control routes open to bearers of `token`.
    pub fn with_operator_token(mut self, token: &str) -> Self {
        self.operator = Some(Arc::new(TokenGuard::new(token)));
        self
    }
}

/// Refuses a control request without the operator token.
fn require_operator(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(guard) = &state.operator else {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "control routes are disabled: no operator token is configured (FEDGE_OPERATOR_TOKEN)"
                .into(),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    guard.check_header(given).map_err(|refusal| match refusal {
        Refusal::Invalid => ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or invalid operator token".into(),
        ),
        Refusal::RateLimited { retry_after } => ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed authentications; retry in {retry_after} s"),
        ),
    })
}

/// The API error: a status and a message, rendered as `{"error": ...}`.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.0.is_server_error() {
            tracing::error!(status = %self.0, error = %self.1, "request failed");
        }
        service::error::json_error(self.0, &self.1)
    }
}

/// The router.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/v1/models/{name}/latest", get(latest))
        .route("/v1/models/{name}/versions/{version}", get(version))
        .route(
            "/v1/rounds",
            get(rounds).post(start_rounds).delete(cancel_rounds),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

fn check_name(state: &AppState, name: &str) -> Result<(), ApiError> {
    if name == state.store.name() {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::NOT_FOUND,
            format!(
                "no model `{name}` (this store serves `{}`)",
                state.store.name()
            ),
        ))
    }
}

async fn latest(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_name(&state, &name)?;
    let Some((version, bytes)) = state.store.latest() else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("model `{name}` has no version yet"),
        ));
    };
    Ok(model_response(&state, &name, version, bytes, &headers))
}

async fn version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_name(&state, &name)?;
    let version: u64 = version
        .trim_start_matches('v')
        .parse()
        .map_err(|_| ApiError(StatusCode::BAD_REQUEST, format!("bad version `{version}`")))?;
    let store = Arc::clone(&state.store);
    let bytes = tokio::task::spawn_blocking(move || store.read_version(version))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("model `{name}` has no version {version}"),
            )
        })?;
    Ok(model_response(&state, &name, version, bytes, &headers))
}

fn model_response(
    state: &AppState,
    name: &str,
    version: u64,
    bytes: Bytes,
    headers: &HeaderMap,
) -> Response {
    state.metrics.model_requests.inc();
    let etag = format!("\"{name}-v{version}\"");
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag
        });
    let mut out = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, v);
    }
    out.insert("x-model-version", HeaderValue::from(version));
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if matches {
        state.metrics.model_not_modified.inc();
        return (StatusCode::NOT_MODIFIED, out).into_response();
    }
    state.metrics.model_bytes.inc_by(bytes.len() as u64);
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    (StatusCode::OK, out, bytes).into_response()
}

async fn rounds(State(state): State<AppState>) -> Response {
    axum::Json(state.store.history()).into_response()
}

#[derive(Debug, Deserialize)]
struct StartRounds {
    #[serde(default = "one")]
    rounds: u64,
}

fn one() -> u64 {
    1
}

async fn start_rounds(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Option<axum::Json<StartRounds>>,
) -> Result<Response, ApiError> {
    let coordinator = coordinator_of(&state)?;
    require_operator(&state, &headers)?;
    let n = body.map_or(1, |b| b.rounds);
    if !(1..=1000).contains(&n) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("rounds must be 1..=1000, got {n}"),
        ));
    }
    if coordinator.is_running() {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "rounds are already running".into(),
        ));
    }
    let first = state.store.next_round();
    coordinator.clear_cancel();
    tokio::spawn(async move {
        if let Err(e) = coordinator.run_rounds(n).await {
            tracing::error!(error = format!("{e:#}"), "round aborted");
        }
    });
    let body = serde_json::json!({ "started": n, "first_round": first });
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

async fn cancel_rounds(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let coordinator = coordinator_of(&state)?;
    require_operator(&state, &headers)?;
    let running = coordinator.cancel();
    let body = serde_json::json!({ "cancelled": running });
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

fn coordinator_of(state: &AppState) -> Result<Arc<Coordinator>, ApiError> {
    state.coordinator.clone().ok_or_else(|| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "this aggregator does not run rounds (no clients configured)".into(),
        )
    })
}

async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.response()
}
