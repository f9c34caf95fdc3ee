//! [`Config`]: every knob of fn-serve, as a flag with an environment fallback.
//!
//! Environment variables read here (each also a flag):
//! - `PORT`: listen port (Knative sets it; default 8080).
//! - `MODEL_URI`: a local safetensors path (memory-mapped) or an `http://` URL of the
//!   aggregator's latest model (`.../v1/models/{name}/latest`).
//! - `FEDGE_MODEL_NAME`: the model name served (`mnist`).
//! - `FEDGE_POLL_SECONDS`: how often to look for a newer model (0 = never).
//! - `FEDGE_MAX_BODY_BYTES`, `FEDGE_MAX_BATCH`, `FEDGE_MAX_INFLIGHT_BYTES`: request limits.
//! - `FEDGE_THREADS`: compute threads (default: the CPU quota, `available_parallelism`).
//! - `FEDGE_BATCH_IMAGES`: largest dynamic batch of small concurrent requests.
//! - `FEDGE_CACHE_DIR`: where remote models are cached (under /tmp).
//! - `FEDGE_MAX_MODEL_BYTES`: largest model body taken from the store (0 = a quarter of
//!   the memory the process has, at most 256 MiB).
//! - `FEDGE_ANY_ARCHITECTURE`: serve any architecture whose buffers fit (default: only the
//!   Table 1 CNN, as fn-train).
//! - `FEDGE_REQUEST_TIMEOUT_SECONDS`: per-request deadline (408), so a drain cannot hang.
//! - `FEDGE_MULTI_THREAD_IO` (env only, read by `main_blocking`): use tokio's multi-thread
//!   runtime even with one compute thread (default there: a current-thread runtime).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// fn-serve's configuration. Construct with [`Config::parse`] (flags + env) or in code
/// with [`Config::for_model`] and field updates.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "fn-serve",
    version,
    about = "fedge serving function (KServe V2 + TF-Serving V1 REST)"
)]
pub struct Config {
    /// Port to listen on (0.0.0.0).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Model to serve: a local safetensors file or an http:// URL of the model store.
    #[arg(long, env = "MODEL_URI")]
    pub model_uri: String,

    /// Name under which the model is served (V2 /v2/models/{name}, V1 /v1/models/{name}).
    #[arg(long, env = "FEDGE_MODEL_NAME", default_value = "mnist")]
    pub model_name: String,

    /// Seconds between checks for a newer model (ETag / X-Model-Version, or file change); 0 = never.
    #[arg(long, env = "FEDGE_POLL_SECONDS", default_value_t = 10.0)]
    pub poll_seconds: f64,

    /// Largest request body in bytes (JSON or binary). The default admits a 10,000-image
    /// FP32 JSON request written with full float precision.
    #[arg(long, env = "FEDGE_MAX_BODY_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Largest number of images in one request.
    #[arg(long, env = "FEDGE_MAX_BATCH", default_value_t = 10_000)]
    pub max_batch: usize,

    /// Bytes of decoded input tensors all requests together may hold at once; beyond it a
    /// request is refused with 503 + Retry-After instead of risking the memory limit.
    #[arg(long, env = "FEDGE_MAX_INFLIGHT_BYTES", default_value_t = 40 * 1024 * 1024)]
    pub max_inflight_bytes: usize,

    /// Compute threads; 0 = from the CPU quota (`available_parallelism`).
    #[arg(long, env = "FEDGE_THREADS", default_value_t = 0)]
    pub threads: usize,

    /// Largest dynamic batch: small requests waiting together are predicted in one call.
    #[arg(long, env = "FEDGE_BATCH_IMAGES", default_value_t = 32)]
    pub batch_images: usize,

    /// A request of at most this many images that is the only one in the server runs
    /// inline on the I/O thread (no thread hop); 0 (default) = always use the compute
    /// threads and their dynamic batching. Measured at 0.4 CPU with 32 connections, inline
    /// halves throughput (a single I/O thread rarely sees the other requests in time), so
    /// it only suits low-concurrency deployments with several I/O threads.
    #[arg(long, env = "FEDGE_INLINE_IMAGES", default_value_t = 0)]
    pub inline_images: usize,

    /// Directory for the cached remote model (must be under /tmp in Knative).
    #[arg(long, env = "FEDGE_CACHE_DIR", default_value = "/tmp/fn-serve-cache")]
    pub cache_dir: PathBuf,

    /// Per-request deadline in seconds (408 after it).
    #[arg(long, env = "FEDGE_REQUEST_TIMEOUT_SECONDS", default_value_t = 120)]
    pub request_timeout_seconds: u64,

    /// Largest model body in bytes taken from the store; 0 = derived from the memory the
    /// process has ([`crate::memory::default_max_model_bytes`]).
    #[arg(long, env = "FEDGE_MAX_MODEL_BYTES", default_value_t = 0)]
    pub max_model_bytes: u64,

    /// Serve any architecture whose inference buffers fit; unset: only the Table 1 CNN.
    #[arg(long, env = "FEDGE_ANY_ARCHITECTURE", action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    pub any_architecture: bool,
}

impl Config {
    /// A configuration with every default, serving `model_uri`.
    pub fn for_model(model_uri: impl Into<String>) -> Self {
        let mut cfg = Self::defaults();
        cfg.model_uri = model_uri.into();
        cfg
    }

    fn defaults() -> Self {
        Self {
            port: 8080,
            model_uri: String::new(),
            model_name: "mnist".into(),
            poll_seconds: 10.0,
            max_body_bytes: 256 * 1024 * 1024,
            max_batch: 10_000,
            max_inflight_bytes: 40 * 1024 * 1024,
            threads: 0,
            batch_images: 32,
            inline_images: 0,
            cache_dir: PathBuf::from("/tmp/fn-serve-cache"),
            request_timeout_seconds: 120,
            max_model_bytes: 0,
            any_architecture: false,
        }
    }

    /// Checks the values once; the rest of the service trusts them.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.model_uri.is_empty(), "MODEL_URI is empty");
        anyhow::ensure!(
            !self.model_name.is_empty() && !self.model_name.contains(['/', ':']),
            "model name {:?} must be non-empty without '/' or ':'",
            self.model_name
        );
        anyhow::ensure!(
            self.poll_seconds.is_finite() && self.poll_seconds >= 0.0,
            "poll interval must be >= 0 seconds"
        );
        anyhow::ensure!(self.max_batch > 0, "max batch must be > 0");
        anyhow::ensure!(self.batch_images > 0, "batch images must be > 0");
        anyhow::ensure!(self.max_body_bytes > 0, "max body bytes must be > 0");
        anyhow::ensure!(
            self.request_timeout_seconds > 0,
            "request timeout must be > 0"
        );
        Ok(())
    }

    /// Compute threads: the flag, else the CPU quota the process really has.
    pub fn compute_threads(&self) -> usize {
        if self.threads > 0 {
            return self.threads;
        }
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// The largest model body taken from the store: the flag, else derived from
    /// `available` (the memory the process has).
    pub fn model_bytes_cap(&self, available: Option<u64>) -> u64 {
        if self.max_model_bytes > 0 {
            return self.max_model_bytes;
        }
        crate::memory::default_max_model_bytes(available)
    }

    /// The poll interval, `None` when polling is off.
    pub fn poll_interval(&self) -> Option<Duration> {
        (self.poll_seconds > 0.0).then(|| Duration::from_secs_f64(self.poll_seconds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_reproduce_for_model() {
        // Every flag given explicitly, so the test does not depend on the environment.
        let d = Config::for_model("/tmp/m.safetensors");
        let args = [
            "fn-serve".to_string(),
            format!("--port={}", d.port),
            format!("--model-uri={}", d.model_uri),
            format!("--model-name={}", d.model_name),
            format!("--poll-seconds={}", d.poll_seconds),
            format!("--max-body-bytes={}", d.max_body_bytes),
            format!("--max-batch={}", d.max_batch),
            format!("--max-inflight-bytes={}", d.max_inflight_bytes),
            format!("--threads={}", d.threads),
            format!("--batch-images={}", d.batch_images),
            format!("--inline-images={}", d.inline_images),
            format!("--cache-dir={}", d.cache_dir.display()),
            format!("--request-timeout-seconds={}", d.request_timeout_seconds),
            format!("--max-model-bytes={}", d.max_model_bytes),
            format!("--any-architecture={}", d.any_architecture),
        ];
        let parsed = Config::parse_from(&args);
        assert_eq!(format!("{parsed:?}"), format!("{d:?}"));
        // And the declared clap defaults are the ones `for_model` uses.
        use clap::CommandFactory;
        for arg in Config::command().get_arguments() {
            let Some(default) = arg.get_default_values().first() else {
                continue;
            };
            let long = arg.get_long().unwrap();
            let given = args
                .iter()
                .find_map(|a| a.strip_prefix(&format!("--{long}=")))
                .unwrap();
            assert_eq!(default.to_str().unwrap(), given, "--{long}");
        }
        d.validate().unwrap();
        assert!(Config::for_model("").validate().is_err());
        let mut bad = Config::for_model("x");
        bad.model_name = "a/b".into();
        assert!(bad.validate().is_err());
    }

    #[test]
    fn default_limits_admit_a_10000_image_request() {
        let cfg = Config::for_model("x");
        assert!(cfg.max_batch >= 10_000);
        assert!(cfg.max_inflight_bytes >= 10_000 * 784 * 4);
        // "0.0039215689," is 13 bytes: a full-precision FP32 JSON body of 10,000 images.
        assert!(cfg.max_body_bytes >= 10_000 * 784 * 13);
    }
}
