//! [`Config`]: every setting of the node, from flags or environment variables, validated once.
//!
//! Environment variables (each also a `--flag`):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `PORT` | listen port (Knative sets it) | 8080 |
//! | `FEDGE_CLIENT_ID` | this node's id in replies, metadata and the CloudEvent source | `node-0` |
//! | `FEDGE_TRAIN_TOKEN` | bearer token required on the training routes; unset = no auth | unset |
//! | `FEDGE_SHARD_DIR` | folder with the node's own MNIST-format IDX files (raw or .gz) | unset |
//! | `MNIST_DIR` | full MNIST folder, partitioned here (local clusters, tests) | unset |
//! | `FEDGE_PARTITION` | `iid`, `dirichlet:<alpha>`, `shards:<per client>` or `file:<path>` (JSON index lists) | `iid` |
//! | `FEDGE_CLIENT_INDEX`, `FEDGE_NUM_CLIENTS` | this node is client i of n | 0 of 1 |
//! | `FEDGE_PARTITION_SEED` | seed of the partition (same on every node) | 42 |
//! | `FEDGE_SHARD_LIMIT` | keep only the first N examples of the shard | all |
//! | `FEDGE_MAX_EPOCHS`, `FEDGE_MAX_BATCH_SIZE` | largest values a request may ask for (batch 0: the largest power of two whose training fits the memory the process has, see [`memory`](crate::memory)) | 100, 0 |
//! | `FEDGE_MAX_BODY_BYTES` | request body limit (inline models are base64) | 16 MiB |
//! | `FEDGE_MAX_MODEL_BYTES` | largest model accepted from a URL or inline | 64 MiB |
//! | `FEDGE_MODEL_FETCH_TIMEOUT_MS` | timeout of the model download | 30000 |
//! | `FEDGE_GRACE_PERIOD_MS` | after SIGTERM, how long a running job may still finish | 20000 |
//! | `FEDGE_RETRY_AFTER_SECS` | `Retry-After` sent with 429 and 503 | 5 |
//! | `FEDGE_EXPECTED_SPEC` | JSON model spec the node insists on (refuses other architectures) | the Table 1 CNN |
//! | `FEDGE_ANY_ARCHITECTURE` | with no expected spec, train any architecture whose buffers fit | false |
//!
//! When both `FEDGE_SHARD_DIR` and `MNIST_DIR` are set the shard folder wins: the node's
//! own data is the production path, partitioning the full set is for local runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

/// Default listen port when `PORT` is unset (Knative's default too).
pub const DEFAULT_PORT: u16 = 8080;

/// Settings of one fn-train node. Construct with [`Config::parse`] (flags and environment)
/// or in code from [`Config::default`] plus field updates.
#[derive(Parser, Clone, PartialEq)]
#[command(name = "fn-train", version, about = "fedge training function")]
pub struct Config {
    /// Listen port.
    #[arg(long, env = "PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// This node's id (letters, digits, '.', '_', '-').
    #[arg(long, env = "FEDGE_CLIENT_ID", default_value = "node-0")]
    pub client_id: String,
    /// Bearer token required on /train and POST /; unset disables auth.
    #[arg(long, env = "FEDGE_TRAIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Folder holding this node's own MNIST-format IDX files.
    #[arg(long, env = "FEDGE_SHARD_DIR")]
    pub shard_dir: Option<PathBuf>,
    /// Folder of the full MNIST set to partition (when no shard folder is given).
    #[arg(long, env = "MNIST_DIR")]
    pub mnist_dir: Option<PathBuf>,
    /// Partition of the full set: `iid`, `dirichlet:ALPHA`, `shards:PER_CLIENT` or
    /// `file:PATH` (a JSON file of index lists, one per client).
    #[arg(long, env = "FEDGE_PARTITION", default_value = "iid")]
    pub partition: String,
    /// This node's index among the clients of the partition.
    #[arg(long, env = "FEDGE_CLIENT_INDEX", default_value_t = 0)]
    pub client_index: usize,
    /// Number of clients the full set is partitioned into.
    #[arg(long, env = "FEDGE_NUM_CLIENTS", default_value_t = 1)]
    pub num_clients: usize,
    /// Seed of the partition (identical on every node of a cluster).
    #[arg(long, env = "FEDGE_PARTITION_SEED", default_value_t = 42)]
    pub partition_seed: u64,
    /// Keep only the first N examples of the shard.
    #[arg(long, env = "FEDGE_SHARD_LIMIT")]
    pub shard_limit: Option<usize>,
    /// Largest number of local epochs a request may ask for.
    #[arg(long, env = "FEDGE_MAX_EPOCHS", default_value_t = 100)]
    pub max_epochs: usize,
    /// Largest batch size a request may ask for; 0 derives it from the memory the process
    /// has (the cgroup limit).
    #[arg(long, env = "FEDGE_MAX_BATCH_SIZE", default_value_t = 0)]
    pub max_batch_size: usize,
    /// Request body limit in bytes.
    #[arg(long, env = "FEDGE_MAX_BODY_BYTES", default_value_t = 16 << 20)]
    pub max_body_bytes: usize,
    /// Largest model (safetensors bytes) accepted.
    #[arg(long, env = "FEDGE_MAX_MODEL_BYTES", default_value_t = 64 << 20)]
    pub max_model_bytes: usize,
    /// Timeout of the model download in milliseconds.
    #[arg(long, env = "FEDGE_MODEL_FETCH_TIMEOUT_MS", default_value_t = 30_000)]
    pub model_fetch_timeout_ms: u64,
    /// After SIGTERM, milliseconds a running job may use to finish before it is cancelled.
    #[arg(long, env = "FEDGE_GRACE_PERIOD_MS", default_value_t = 20_000)]
    pub grace_period_ms: u64,
    /// Seconds sent in Retry-After with 429 (busy) and 503 (not ready).
    #[arg(long, env = "FEDGE_RETRY_AFTER_SECS", default_value_t = 5)]
    pub retry_after_secs: u64,
    /// JSON model spec this node insists on; weights of another architecture are refused.
    /// Unset: the Table 1 CNN, unless `any_architecture`.
    #[arg(long, env = "FEDGE_EXPECTED_SPEC")]
    pub expected_spec: Option<PathBuf>,
    /// With no expected spec, accept any architecture (whose training still has to fit
    /// the memory the process has).
    #[arg(long, env = "FEDGE_ANY_ARCHITECTURE")]
    pub any_architecture: bool,
}

impl Default for Config {
    /// The flag defaults, without reading the environment (for code and tests).
    fn default() -> Self {
        Self {
            port: DEFAULT_PORT,
            client_id: "node-0".to_owned(),
            token: None,
            shard_dir: None,
            mnist_dir: None,
            partition: "iid".to_owned(),
            client_index: 0,
            num_clients: 1,
            partition_seed: 42,
            shard_limit: None,
            max_epochs: 100,
            max_batch_size: 0,
            max_body_bytes: 16 << 20,
            max_model_bytes: 64 << 20,
            model_fetch_timeout_ms: 30_000,
            grace_period_ms: 20_000,
            retry_after_secs: 5,
            expected_spec: None,
            any_architecture: false,
        }
    }
}

impl std::fmt::Debug for Config {
    /// Everything but the token, so the effective config can be logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("shard_dir", &self.shard_dir)
            .field("mnist_dir", &self.mnist_dir)
            .field("partition", &self.partition)
            .field("client_index", &self.client_index)
            .field("num_clients", &self.num_clients)
            .field("partition_seed", &self.partition_seed)
            .field("shard_limit", &self.shard_limit)
            .field("max_epochs", &self.max_epochs)
            .field("max_batch_size", &self.max_batch_size)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_model_bytes", &self.max_model_bytes)
            .field("model_fetch_timeout_ms", &self.model_fetch_timeout_ms)
            .field("grace_period_ms", &self.grace_period_ms)
            .field("retry_after_secs", &self.retry_after_secs)
            .field("expected_spec", &self.expected_spec)
            .field("any_architecture", &self.any_architecture)
            .finish()
    }
}

/// Where the node's training data comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ShardSource {
    /// A folder of MNIST-format IDX files: the node's own data.
    Folder(PathBuf),
    /// Client `index` of `num_clients` of the full MNIST training set, split by `spec`.
    Partition {
        /// The MNIST folder.
        mnist_dir: PathBuf,
        /// `iid`, `dirichlet:<alpha>` or `shards:<n>` (parsed by the engine).
        spec: String,
        /// This node's index.
        index: usize,
        /// Number of clients.
        num_clients: usize,
        /// Partition seed.
        seed: u64,
    },
}

/// A setting that cannot work, named.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Checks every setting; returns the shard source to load.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad setting.
    pub fn validate(&self) -> Result<ShardSource, ConfigError> {
        let bad = |m: String| Err(ConfigError(m));
        if !is_token_like(&self.client_id) {
            return bad(format!(
                "client id {:?} must be 1..=64 of letters, digits, '.', '_', '-'",
                self.client_id
            ));
        }
        if let Some(t) = &self.token
            && (t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()))
        {
            return bad("the bearer token must be non-empty visible ASCII".to_owned());
        }
        if self.max_epochs == 0 {
            return bad("max epochs must be at least 1".to_owned());
        }
        if self.max_body_bytes < 1024 || self.max_model_bytes < 1024 {
            return bad("body and model limits must be at least 1 KiB".to_owned());
        }
        if self.shard_limit == Some(0) {
            return bad("a shard limit of 0 leaves nothing to train on".to_owned());
        }
        if let Some(dir) = &self.shard_dir {
            return Ok(ShardSource::Folder(dir.clone()));
        }
        let Some(mnist_dir) = &self.mnist_dir else {
            return bad(
                "no data: set FEDGE_SHARD_DIR (the node's IDX files) or MNIST_DIR plus a partition"
                    .to_owned(),
            );
        };
        if self.num_clients == 0 || self.client_index >= self.num_clients {
            return bad(format!(
                "client index {} is not below the number of clients {}",
                self.client_index, self.num_clients
            ));
        }
        Ok(ShardSource::Partition {
            mnist_dir: mnist_dir.clone(),
            spec: self.partition.clone(),
            index: self.client_index,
            num_clients: self.num_clients,
            seed: self.partition_seed,
        })
    }

    /// The model download timeout.
    pub fn model_fetch_timeout(&self) -> Duration {
        Duration::from_millis(self.model_fetch_timeout_ms)
    }

    /// The SIGTERM grace period.
    pub fn grace_period(&self) -> Duration {
        Duration::from_millis(self.grace_period_ms)
    }

    /// `max_batch_size`, or when it is 0 the largest Table 1 batch that fits the memory
    /// the process has ([`AppState`](crate::state::AppState) resolves it once at start).
    pub fn effective_max_batch_size(&self) -> usize {
        match self.max_batch_size {
            0 => crate::memory::default_max_batch(
                &engine::presets::table1_cnn(),
                crate::memory::available(),
                0,
            ),
            n => n,
        }
    }

    /// Reads `expected_spec` when set.
    ///
    /// # Errors
    /// [`ConfigError`] when the file cannot be read.
    pub fn expected_spec_json(&self) -> Result<Option<String>, ConfigError> {
        self.expected_spec
            .as_deref()
            .map(|p: &Path| {
                std::fs::read_to_string(p)
                    .map_err(|e| ConfigError(format!("expected spec {}: {e}", p.display())))
            })
            .transpose()
    }
}

/// 1..=64 of `[A-Za-z0-9._-]`: safe in headers, URIs and log lines.
pub(crate) fn is_token_like(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_defaults_agree() {
        // Every flag given explicitly (so the environment, e.g. CI's MNIST_DIR, cannot
        // interfere) with the documented default values must parse to `Config::default()`.
        let parsed = Config::try_parse_from([
            "fn-train",
            "--port=8080",
            "--client-id=node-0",
            "--partition=iid",
            "--client-index=0",
            "--num-clients=1",
            "--partition-seed=42",
            "--max-epochs=100",
            "--max-batch-size=0",
            "--max-body-bytes=16777216",
            "--max-model-bytes=67108864",
            "--model-fetch-timeout-ms=30000",
            "--grace-period-ms=20000",
            "--retry-after-secs=5",
        ])
        .unwrap();
        let optional_from_env = Config {
            token: parsed.token.clone(),
            shard_dir: parsed.shard_dir.clone(),
            mnist_dir: parsed.mnist_dir.clone(),
            shard_limit: parsed.shard_limit,
            expected_spec: parsed.expected_spec.clone(),
            ..Config::default()
        };
        assert_eq!(parsed, optional_from_env);
    }

    #[test]
    fn shard_folder_wins_and_partition_needs_a_valid_index() {
        let mut c = Config {
            mnist_dir: Some("/m".into()),
            num_clients: 3,
            client_index: 2,
            ..Config::default()
        };
        assert!(matches!(
            c.validate().unwrap(),
            ShardSource::Partition { index: 2, .. }
        ));
        c.client_index = 3;
        assert!(c.validate().unwrap_err().0.contains("client index 3"));
        c.shard_dir = Some("/s".into());
        assert_eq!(c.validate().unwrap(), ShardSource::Folder("/s".into()));
        assert!(Config::default().validate().is_err());
    }

    #[test]
    fn client_id_and_token_are_checked_and_the_token_never_printed() {
        let c = Config {
            shard_dir: Some("/s".into()),
            client_id: "node 1".into(),
            ..Config::default()
        };
        assert!(c.validate().is_err());
        let c = Config {
            shard_dir: Some("/s".into()),
            token: Some("s3cret".into()),
            ..Config::default()
        };
        assert!(c.validate().is_ok());
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
