//! # fn-serve: fedge's serving function
//!
//! A Knative service that classifies MNIST-sized images with the engine's model, inside
//! 0.4 CPU / 100 MiB. It speaks:
//!
//! - the **Open Inference Protocol (KServe V2)** REST API: `/v2/health/{live,ready}`,
//!   `/v2`, `/v2/models/{name}[/versions/{v}][/ready|/infer]`, with JSON tensors and the
//!   binary tensor data extension (requests and responses); input `input` FP32 in [0, 1]
//!   or UINT8 0..255, shape `[N, 1, 28, 28]` or `[N, 784]`; outputs `probabilities`
//!   (FP32 `[N, 10]`) and `class` (INT64 `[N]`);
//! - **TF-Serving / KServe V1**: `POST /v1/models/{name}:predict` (`instances` or
//!   `inputs`), `GET /v1/models/{name}`, `GET /v1/models`;
//! - `GET /metrics` (OpenMetrics text, [`metrics`]), and `/healthz` / `/readyz` aliases.
//!
//! How the pieces fit: [`Config`] (flags + env) → [`AppState`] (the [`model_slot`] with
//! the served model behind an `Arc`, the [`compute`] threads, the metrics, the memory
//! budget) → [`app`] (the router) → [`run`] (serve until shutdown, then drain). Request
//! bodies are decoded as they arrive by the [`codec`] straight into compact pixel
//! buffers; inference runs on the compute threads, never on the async runtime.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod backend;
pub mod codec;
pub mod compute;
pub mod config;
pub mod error;
pub mod memory;
pub mod metrics;
pub mod model_slot;
pub mod routes;
pub mod state;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;

pub use config::Config;
pub use error::ApiError;
pub use state::AppState;

/// Connection limits of the listener ([`service::serve`]; `FEDGE_MAX_CONNECTIONS` etc.
/// override them): 128 open connections of at most 64 KiB read buffer each pin at most
/// 8 MiB of the pod's 100 MiB, beside the model and the decoded-input budget.
pub const CONN_LIMITS: service::serve::ConnLimits = service::serve::ConnLimits::new(128);

/// The router over `state` (no socket needed: tests drive it with `oneshot`).
pub fn app(state: AppState) -> Router {
    use routes::{health, metrics as m, v1, v2};
    let timeout = Duration::from_secs(state.config().request_timeout_seconds);
    Router::new()
        .route("/v2/health/live", get(health::live))
        .route("/v2/health/ready", get(health::ready))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/v2", get(v2::server_metadata))
        .route("/v2/", get(v2::server_metadata))
        .route("/v2/models/{name}", get(v2::model_metadata))
        .route("/v2/models/{name}/ready", get(v2::model_ready))
        .route("/v2/models/{name}/infer", post(v2::infer))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(v2::model_version_metadata),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(v2::model_version_ready),
        )
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(v2::infer_version),
        )
        .route("/v1/models", get(v1::list))
        .route("/v1/models/{name}", get(v1::status).post(v1::predict))
        .route(
            "/v1/models/{name}/versions/{version}",
            post(v1::predict_version),
        )
        .route("/metrics", get(m::metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            state.metrics_handle(),
            metrics::track,
        ))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("method not allowed on this endpoint".into())
        })
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .with_state(state)
}

/// Installs the log subscriber ([`service::logging`]): JSON lines on stdout when it is
/// not a terminal (Knative), human-readable otherwise; filter from `RUST_LOG`, default
/// `fn_serve=info,tower_http=warn`. Idempotent.
pub fn init_tracing() {
    service::logging::init(
        "fn_serve=info,tower_http=warn",
        service::logging::Sink::Stdout,
    );
}

/// Serves on `listener` until `shutdown` resolves, then stops accepting, finishes the
/// requests in flight and returns.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState::new(config)?;
    let cfg = state.config();
    tracing::info!(
        addr = %listener.local_addr()?,
        model_uri = %cfg.model_uri,
        model_name = %cfg.model_name,
        compute_threads = cfg.compute_threads(),
        max_batch = cfg.max_batch,
        max_body_bytes = cfg.max_body_bytes,
        revision = %std::env::var("K_REVISION").unwrap_or_default(),
        "fn-serve starting"
    );
    let slot = state.slot().clone();
    // A local file loads in about a millisecond: do it before the first accept so the
    // first request finds the model. A remote one loads in the background.
    let local = !(cfg.model_uri.starts_with("http://") || cfg.model_uri.starts_with("https://"));
    let mut loaded = false;
    if local {
        match slot.refresh().await {
            Ok(_) => loaded = true,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "initial model load failed; not ready")
            }
        }
    }
    let poll = cfg.poll_interval();
    let poller = tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        while !loaded {
            match slot.refresh().await {
                Ok(_) => loaded = true,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "model load failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(poll.unwrap_or(Duration::from_secs(5)));
                }
            }
        }
        if let Some(interval) = poll {
            slot.poll_forever(interval).await;
        }
    });
    let limits = CONN_LIMITS.from_env().map_err(anyhow::Error::msg)?;
    let served = service::serve::serve(listener, app(state.clone()), limits, shutdown).await;
    poller.abort();
    let st = state.clone();
    let _ = tokio::task::spawn_blocking(move || st.compute().shutdown()).await;
    tracing::info!("fn-serve drained; exiting");
    served.map_err(Into::into)
}

/// What the binary does after parsing: a runtime sized to the CPU quota, bind
/// `0.0.0.0:$PORT`, [`run`] until SIGTERM / Ctrl-C.
pub fn main_blocking(config: Config) -> anyhow::Result<()> {
    config.validate()?;
    // One I/O thread when the quota is one CPU or less (the compute threads do the
    // heavy work): a current-thread runtime parks and wakes more cheaply.
    let threads = config.compute_threads().max(1);
    let rt = if threads == 1 && std::env::var_os("FEDGE_MULTI_THREAD_IO").is_none() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("0.0.0.0", config.port)).await?;
        run(config, listener, service::shutdown::sigterm_or_ctrl_c()).await
    })
}
