//! [`AppState`]: what every handler shares (cheap to clone: one `Arc` inside).

use std::sync::Arc;

use crate::codec::ModelInput;
use crate::codec::images::Budget;
use crate::compute::Compute;
use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::model_slot::{Admission, ModelSlot, Served};

#[derive(Debug)]
struct Inner {
    config: Config,
    slot: Arc<ModelSlot>,
    compute: Compute,
    metrics: Arc<Metrics>,
    budget: Budget,
    server_version: String,
}

/// Shared state of the service.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

impl AppState {
    /// Builds the state and starts the compute threads; no model is loaded yet
    /// (see [`ModelSlot::refresh`]).
    pub fn new(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let metrics = Arc::new(Metrics::default());
        let memory = crate::memory::available();
        tracing::info!(
            memory_mib = memory.map(|m| m >> 20),
            "model limits derived from the memory the process has"
        );
        let slot = Arc::new(
            ModelSlot::new(
                &config.model_uri,
                &config.model_name,
                config.cache_dir.clone(),
                metrics.clone(),
            )
            .with_max_model_bytes(config.model_bytes_cap(memory))
            .with_admission(Admission {
                pinned: (!config.any_architecture).then(engine::presets::table1_cnn),
                memory,
                threads: config.compute_threads(),
                max_batch: config.max_batch,
            }),
        );
        slot.remove_stale_downloads();
        let compute = Compute::start(
            config.compute_threads(),
            config.batch_images,
            config.inline_images,
            metrics.clone(),
        )?;
        let server_version = match std::env::var("K_REVISION") {
            Ok(rev) if !rev.is_empty() => format!("{} ({rev})", env!("CARGO_PKG_VERSION")),
            _ => env!("CARGO_PKG_VERSION").to_owned(),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                budget: Budget::new(config.max_inflight_bytes),
                config,
                slot,
                compute,
                metrics,
                server_version,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The model slot.
    pub fn slot(&self) -> &Arc<ModelSlot> {
        &self.inner.slot
    }

    /// The compute threads.
    pub fn compute(&self) -> &Compute {
        &self.inner.compute
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The metrics, shared (for the tracking middleware).
    pub fn metrics_handle(&self) -> Arc<Metrics> {
        Arc::clone(&self.inner.metrics)
    }

    /// The decoded-input memory budget.
    pub fn budget(&self) -> &Budget {
        &self.inner.budget
    }

    /// The server version reported by `GET /v2`.
    pub fn server_version(&self) -> &str {
        &self.inner.server_version
    }

    /// The served model for `name` (and `version`, when given): 404 for another name or
    /// version, 503 before the first model is loaded.
    pub fn model(&self, name: &str, version: Option<&str>) -> Result<Arc<Served>, ApiError> {
        if name != self.inner.config.model_name {
            return Err(ApiError::NotFound(format!(
                "model {name:?} not found; this server serves {:?}",
                self.inner.config.model_name
            )));
        }
        let served = self
            .inner
            .slot
            .get()
            .ok_or_else(|| ApiError::NotReady(format!("model {name:?} is not loaded yet")))?;
        if let Some(v) = version
            && v != served.version
        {
            return Err(ApiError::NotFound(format!(
                "version {v:?} of model {name:?} is not loaded; the served version is {:?}",
                served.version
            )));
        }
        Ok(served)
    }

    /// The input the decoders check against.
    pub fn model_input(served: &Served) -> ModelInput {
        ModelInput {
            shape: served.model.input_shape,
        }
    }
}
