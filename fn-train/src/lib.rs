//! # fn-train: fedge's federated training function
//!
//! A Knative service on each edge node. When the aggregator asks (a JSON `POST /train`, or
//! the same request as a CloudEvent on `POST /`), it fetches the global model, trains it on
//! the node's own shard for the requested local epochs, and replies with the updated
//! weights (safetensors) plus aggregate numbers: example count, per-epoch loss and accuracy,
//! training time. Images and labels never leave the node.
//!
//! Principal pieces: [`Config`] (flags + env), [`AppState`] (shard, job slot, metrics),
//! [`app`] (the router, testable without a socket), [`run`] (serve until shutdown, with the
//! SIGTERM grace period for a running job), [`init_tracing`]; the shutdown signal is
//! `service::shutdown`.
//!
//! Routes: `POST /train`, `POST /` (CloudEvents), `GET /healthz`, `GET /readyz`,
//! `GET /status`, `GET /metrics`. One job at a time: a second request gets 429.
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod auth;
pub mod cloudevents;
pub mod config;
pub mod error;
pub mod fetch;
pub mod job;
pub mod memory;
pub mod metrics;
pub mod request;
pub mod routes;
pub mod shard;
pub mod state;
pub mod trainer;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

pub use config::Config;
pub use error::ApiError;
pub use state::AppState;

/// Connection limits of the listener ([`service::serve`]; `FEDGE_MAX_CONNECTIONS` etc.
/// override them). One job runs at a time; the rest is probes, metrics and refusals, so
/// 32 connections are plenty and pin at most 2 MiB of read buffers.
pub const CONN_LIMITS: service::serve::ConnLimits = service::serve::ConnLimits::new(32);

/// The router: training routes behind auth and the body limit, health and metrics open.
pub fn app(state: AppState) -> Router {
    let training = Router::new()
        .route("/train", post(routes::train::train))
        .route("/", post(routes::cloudevents::receive))
        .layer(DefaultBodyLimit::max(state.config().max_body_bytes))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_bearer,
        ));
    let open = Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/status", get(routes::health::status))
        .route("/metrics", get(routes::metrics::metrics));
    training
        .merge(open)
        .fallback(|| async {
            ApiError::NotFound(
                "no such route; see POST /train, POST /, GET /healthz, /readyz, /status, /metrics"
                    .to_owned(),
            )
        })
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            tracing::info_span!(
                "request",
                method = %req.method(),
                path = %req.uri().path(),
                request_id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(""),
            )
        }))
        .with_state(state)
}

/// Serves on `listener` until `shutdown` resolves, then drains: new jobs are refused, a
/// running job may finish within the grace period, after which it is cancelled (logged).
/// The shard loads in the background; `/readyz` turns 200 when it is in memory.
///
/// # Errors
/// Invalid configuration, a shard that fails to load, or a server error.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState::new(config)?;
    let revision = std::env::var("K_REVISION").unwrap_or_default();
    tracing::info!(
        config = ?state.config(),
        addr = %listener.local_addr()?,
        revision,
        "fn-train listening"
    );
    let stop = Arc::new(tokio::sync::Notify::new());
    let loader = {
        let state = state.clone();
        let stop = Arc::clone(&stop);
        tokio::task::spawn_blocking(move || {
            let result = state.load_shard();
            if let Err(e) = &result {
                tracing::error!(error = %format!("{e:#}"), "cannot load the shard; stopping");
                stop.notify_one();
            }
            result
        })
    };
    let supervisor = {
        let state = state.clone();
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            shutdown.await;
            state.start_draining();
            let grace = state.config().grace_period();
            let running = state.jobs().current().map(|h| h.round());
            tracing::info!(
                grace_ms = grace.as_millis() as u64,
                running_round = running,
                "shutdown requested: refusing new jobs, draining"
            );
            stop.notify_one();
            if running.is_some() {
                tokio::time::sleep(grace).await;
                if let Some(round) = state.jobs().cancel_current(job::CancelReason::Shutdown) {
                    tracing::warn!(
                        round,
                        grace_ms = grace.as_millis() as u64,
                        "grace period over with the training job still running: cancelling it"
                    );
                }
            }
        })
    };
    let limits = CONN_LIMITS.from_env().map_err(anyhow::Error::msg)?;
    let served = service::serve::serve(listener, app(state.clone()), limits, async move {
        stop.notified().await;
    })
    .await;
    supervisor.abort();
    served?;
    // Not draining means the loader stopped the server: it failed and is about to return
    // its error (it notifies first), so wait for it rather than exiting 0 on a race.
    if loader.is_finished() || !state.draining() {
        loader.await??;
    }
    tracing::info!("fn-train stopped");
    Ok(())
}

/// Installs the global log subscriber ([`service::logging`]): JSON lines on stdout when
/// stdout is not a terminal (Knative), human-readable otherwise; `RUST_LOG` overrides the
/// default filter `fn_train=info,tower_http=info`. Idempotent.
pub fn init_tracing() {
    service::logging::init(
        "fn_train=info,tower_http=info",
        service::logging::Sink::Stdout,
    );
}
