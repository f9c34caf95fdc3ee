//! [`AppState`]: the config, the shard (once loaded), the job slot, metrics, the http client.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use engine::Dataset;
use engine::spec::ModelSpec;

use crate::cloudevents::Reply;
use crate::config::{Config, ConfigError, ShardSource};
use crate::error::ApiError;
use crate::job::JobSlot;
use crate::metrics::Metrics;
use crate::shard;

/// Shared state of the service; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    source: ShardSource,
    expected_spec: Option<ModelSpec>,
    shard: OnceLock<Arc<Dataset>>,
    shard_error: Mutex<Option<String>>,
    jobs: Arc<JobSlot>,
    metrics: Arc<Metrics>,
    http: reqwest::Client,
    draining: AtomicBool,
    events: Mutex<EventMemo>,
    token_guard: Option<service::token::TokenGuard>,
    memory: Option<u64>,
}

/// At-least-once delivery: the event being processed and the last one answered, by
/// (source, id), so a redelivered event gets the same reply instead of a second training run.
#[derive(Debug, Default)]
struct EventMemo {
    in_flight: Vec<EventKey>,
    last: Option<(EventKey, Reply)>,
}

/// A CloudEvent's identity: (source, id).
pub type EventKey = (String, String);

/// Clears the in-flight event when the request ends, however it ends.
#[derive(Debug)]
pub struct InFlightEvent {
    state: AppState,
    key: EventKey,
}

impl Drop for InFlightEvent {
    fn drop(&mut self) {
        self.state.memo().in_flight.retain(|k| *k != self.key);
    }
}

impl AppState {
    /// Validates `config` and builds the state; the shard is not loaded yet
    /// (see [`AppState::load_shard`]), so the server can listen at once.
    ///
    /// # Errors
    /// [`ConfigError`] for a bad setting or an unreadable/invalid expected spec.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        let source = config.validate()?;
        let expected_spec = config
            .expected_spec_json()?
            .map(|json| {
                let spec = ModelSpec::from_json(&json)
                    .map_err(|e| ConfigError(format!("expected spec: {e}")))?;
                spec.validate()
                    .map_err(|e| ConfigError(format!("expected spec: {e}")))?;
                Ok::<_, ConfigError>(spec)
            })
            .transpose()?
            .or_else(|| (!config.any_architecture).then(engine::presets::table1_cnn));
        let mut config = config;
        let memory = crate::memory::available();
        if config.max_batch_size == 0 {
            let spec = expected_spec
                .clone()
                .unwrap_or_else(engine::presets::table1_cnn);
            config.max_batch_size =
                crate::memory::default_max_batch(&spec, memory, shard_estimate(&config));
            tracing::info!(
                max_batch_size = config.max_batch_size,
                memory_mib = memory.map(|m| m >> 20),
                "max batch size derived from the memory the process has"
            );
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.model_fetch_timeout())
            .build()
            .map_err(|e| ConfigError(format!("http client: {e}")))?;
        let metrics = Arc::new(Metrics::default());
        let jobs = Arc::new(JobSlot::new(Arc::clone(&metrics), config.retry_after_secs));
        let token_guard = config.token.as_deref().map(service::token::TokenGuard::new);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                source,
                expected_spec,
                shard: OnceLock::new(),
                shard_error: Mutex::new(None),
                jobs,
                metrics,
                http,
                draining: AtomicBool::new(false),
                events: Mutex::new(EventMemo::default()),
                token_guard,
                memory,
            }),
        })
    }

    /// Loads the shard (blocking: call from a blocking thread) and marks the node ready.
    ///
    /// # Errors
    /// The loader's error, also kept for `/readyz`.
    pub fn load_shard(&self) -> anyhow::Result<()> {
        let t0 = Instant::now();
        match shard::load(&self.inner.source, self.inner.config.shard_limit) {
            Ok(data) => {
                tracing::info!(
                    examples = data.len(),
                    rows = data.rows(),
                    cols = data.cols(),
                    label_counts = ?data.label_counts(),
                    millis = t0.elapsed().as_secs_f64() * 1e3,
                    "shard loaded; ready"
                );
                self.inner.metrics.set_shard_examples(data.len() as u64);
                let _ = self.inner.shard.set(Arc::new(data));
                Ok(())
            }
            Err(e) => {
                *self
                    .inner
                    .shard_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(format!("{e:#}"));
                Err(e)
            }
        }
    }

    /// The validated config.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The check of the bearer token, when one is configured.
    pub fn token_guard(&self) -> Option<&service::token::TokenGuard> {
        self.inner.token_guard.as_ref()
    }

    /// The architecture this node insists on: the configured one, else the Table 1 CNN,
    /// `None` only with `any_architecture`.
    pub fn expected_spec(&self) -> Option<&ModelSpec> {
        self.inner.expected_spec.as_ref()
    }

    /// The memory the process may use, bytes, when it could be read.
    pub fn memory(&self) -> Option<u64> {
        self.inner.memory
    }

    /// The shard, once loaded.
    pub fn shard(&self) -> Option<&Arc<Dataset>> {
        self.inner.shard.get()
    }

    /// The shard for a job, or 503 while it loads (or after it failed to load).
    ///
    /// # Errors
    /// [`ApiError::Unavailable`].
    pub fn shard_for_job(&self) -> Result<Arc<Dataset>, ApiError> {
        if let Some(shard) = self.shard() {
            return Ok(Arc::clone(shard));
        }
        let message = match self.shard_error() {
            Some(e) => format!("the node's data failed to load: {e}"),
            None => "the node's data is still loading".to_owned(),
        };
        Err(ApiError::Unavailable {
            message,
            retry_after: self.inner.config.retry_after_secs,
        })
    }

    /// Why the shard failed to load, if it did.
    pub fn shard_error(&self) -> Option<String> {
        self.inner
            .shard_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The job slot.
    pub fn jobs(&self) -> &Arc<JobSlot> {
        &self.inner.jobs
    }

    /// The counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The http client for model downloads.
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// From now on refuse new jobs and report not-ready (SIGTERM received).
    pub fn start_draining(&self) {
        self.inner.draining.store(true, Ordering::Release);
    }

    /// True after SIGTERM.
    pub fn draining(&self) -> bool {
        self.inner.draining.load(Ordering::Acquire)
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, EventMemo> {
        self.inner
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The reply already sent for this event, if it was the last one answered.
    pub fn replayed_reply(&self, key: &EventKey) -> Option<Reply> {
        let memo = self.memo();
        memo.last
            .as_ref()
            .filter(|(k, _)| k == key)
            .map(|(_, r)| r.clone())
    }

    /// Marks `key` as being processed; 409 if it already is.
    ///
    /// # Errors
    /// [`ApiError::Conflict`].
    pub fn begin_event(&self, key: &EventKey) -> Result<InFlightEvent, ApiError> {
        let mut memo = self.memo();
        if memo.in_flight.contains(key) {
            return Err(ApiError::Conflict(format!(
                "event {:?} from {:?} is already being processed",
                key.1, key.0
            )));
        }
        memo.in_flight.push(key.clone());
        Ok(InFlightEvent {
            state: self.clone(),
            key: key.clone(),
        })
    }

    /// Remembers the reply to `key` (only the last one: it holds a whole update).
    pub fn remember_reply(&self, key: EventKey, reply: Reply) {
        self.memo().last = Some((key, reply));
    }

    /// Ready = shard loaded and not draining.
    pub fn ready(&self) -> bool {
        self.shard().is_some() && !self.draining()
    }
}

/// Bytes the shard will hold once loaded, guessed from the config before it is: MNIST's
/// 60,000 28x28 images split over the clients, or the shard limit.
fn shard_estimate(config: &Config) -> u64 {
    let examples =
        (60_000 / config.num_clients.max(1)).min(config.shard_limit.unwrap_or(usize::MAX));
    (examples * 28 * 28) as u64
}
