//! `aggregator serve`: cluster mode. Client URLs, tokens and settings come from a JSON config
//! file (`--config` / `FEDGE_CONFIG`) plus env; the store lives on a mounted volume. Rounds
//! start with `POST /v1/rounds` (or `auto_rounds` at start-up).
//!
//! ```json
//! { "model_name": "mnist",
//!   "public_url": "http://aggregator.fedge.svc.cluster.local",
//!   "clients": [ { "id": "edge-1", "url": "http://fn-train-edge-1.fedge.svc.cluster.local",
//!                  "token_env": "FEDGE_TOKEN_EDGE_1" } ],
//!   "settings": { "fraction_fit": 1.0, "min_fit_clients": 2, "min_available_clients": 2,
//!                 "accept_failures": true, "round_timeout_secs": 600, "client_timeout_secs": 300 },
//!   "train": { "epochs": 1, "batch_size": 64, "optimizer": {"type": "adam", "lr": 0.001}, "seed": 0 },
//!   "strategy": "fedavg",
//!   "limits": { "max_update_norm": 100.0 },
//!   "auto_rounds": 0 }
//! ```
//!
//! Env: `PORT` (8080), `FEDGE_STORE_DIR` (`/data/store`), `FEDGE_PUBLIC_URL`, `MNIST_DIR`
//! (the test set for centralised evaluation; without it rounds are not evaluated), and
//! each client's `token_env` (or `token_file`, e.g. a mounted Secret).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::clients::ClientSpec;
use crate::http::{AppState, app};
use crate::rounds::{Coordinator, CoordinatorConfig, TrainSettings};
use crate::store::ModelStore;
use crate::strategy::{RoundSettings, Strategy, StrategyKind};
use crate::validate::ValidationLimits;

/// Connection limits of the store's listener ([`service::serve`]; `FEDGE_MAX_CONNECTIONS`
/// etc. override them): every node and fn-serve replica polls it; 256 connections pin at
/// most 16 MiB of read buffers.
pub const CONN_LIMITS: service::serve::ConnLimits = service::serve::ConnLimits::new(256);

/// Flags of `aggregator serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// JSON config file.
    #[arg(long, env = "FEDGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Listen port.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// Store directory (a mounted volume).
    #[arg(long, env = "FEDGE_STORE_DIR", default_value = "/data/store")]
    pub store_dir: PathBuf,
    /// URL at which clients reach this aggregator (overrides the config's).
    #[arg(long, env = "FEDGE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Bearer token of the control routes (`POST`/`DELETE /v1/rounds`); not a client's
    /// token. Unset, the control routes answer 403.
    #[arg(long, env = "FEDGE_OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<String>,
}

/// A client entry of the config file.
#[derive(Debug, Clone, Deserialize)]
pub struct ClientEntry {
    /// Client id.
    pub id: String,
    /// Base URL of its fn-train.
    pub url: String,
    /// Env var holding its token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// File holding its token.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// `http` (default) or `cloudevents`.
    #[serde(default)]
    pub transport: crate::clients::Transport,
    /// Its registered shard size: a reply claiming more examples is refused.
    #[serde(default)]
    pub num_examples: Option<u64>,
}

/// The config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Model name in URLs.
    #[serde(default = "mnist")]
    pub model_name: String,
    /// URL at which clients reach this aggregator.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Training clients.
    #[serde(default)]
    pub clients: Vec<ClientEntry>,
    /// Round settings.
    #[serde(default)]
    pub settings: RoundSettings,
    /// Training settings sent to clients.
    #[serde(default)]
    pub train: TrainSettings,
    /// Strategy, as `--strategy` spells it.
    #[serde(default = "fedavg")]
    pub strategy: String,
    /// Validation limits.
    #[serde(default)]
    pub limits: ValidationLimits,
    /// Rounds to run at start-up.
    #[serde(default)]
    pub auto_rounds: u64,
}

fn mnist() -> String {
    "mnist".into()
}
fn fedavg() -> String {
    "fedavg".into()
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            model_name: mnist(),
            public_url: None,
            clients: vec![],
            settings: RoundSettings::default(),
            train: TrainSettings::default(),
            strategy: fedavg(),
            limits: ValidationLimits::default(),
            auto_rounds: 0,
        }
    }
}

fn resolve_token(c: &ClientEntry) -> anyhow::Result<Option<String>> {
    if let Some(var) = &c.token_env {
        let v = std::env::var(var).with_context(|| format!("client {}: env {var} unset", c.id))?;
        return Ok(Some(v.trim().to_string()));
    }
    if let Some(path) = &c.token_file {
        let v = std::fs::read_to_string(path)
            .with_context(|| format!("client {}: reading {}", c.id, path.display()))?;
        return Ok(Some(v.trim().to_string()));
    }
    Ok(None)
}

/// Runs `aggregator serve`.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    service::logging::init(
        "aggregator=info,tower_http=warn",
        service::logging::Sink::Stdout,
    );
    let cfg: ClusterConfig = match &args.config {
        Some(path) => serde_json::from_slice(
            &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("parsing {}", path.display()))?,
        None => ClusterConfig::default(),
    };
    let strategy: StrategyKind = cfg.strategy.parse().map_err(anyhow::Error::msg)?;
    let spec = engine::presets::table1_cnn();
    let store = Arc::new(ModelStore::open(&args.store_dir, &cfg.model_name)?);
    let mut clients = Vec::new();
    for c in &cfg.clients {
        clients.push(ClientSpec {
            id: c.id.clone(),
            url: c.url.clone(),
            token: resolve_token(c)?,
            transport: c.transport,
            num_examples: c.num_examples,
        });
    }
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", args.port)).await?;
    let public_url = args
        .public_url
        .clone()
        .or(cfg.public_url.clone())
        .unwrap_or_else(|| format!("http://127.0.0.1:{}", args.port));
    tracing::info!(
        store = %args.store_dir.display(),
        clients = clients.len(),
        %strategy,
        %public_url,
        settings = ?cfg.settings,
        "aggregator serve starting"
    );
    let evaluator = match engine::data::mnist::dir_from_env() {
        Ok(dir) => {
            let test = engine::data::mnist::load(&dir, engine::data::mnist::Split::Test)?;
            Some(crate::evaluate::test_set_evaluator(Arc::new(test)))
        }
        Err(e) => {
            tracing::warn!(error = %e, "no test set: rounds are not evaluated");
            None
        }
    };
    let coordinator = if clients.is_empty() {
        None
    } else {
        let coord = Arc::new(Coordinator::new(CoordinatorConfig {
            store: Arc::clone(&store),
            spec: spec.clone(),
            clients,
            settings: cfg.settings.clone(),
            train: cfg.train.clone(),
            limits: cfg.limits.clone(),
            strategy: Strategy::new(strategy),
            evaluator,
            public_url,
        })?);
        let initial = engine::Sequential::new(spec, cfg.train.seed)?.take_params();
        coord.ensure_initial(initial).await?;
        Some(coord)
    };
    if cfg.auto_rounds > 0 {
        let Some(coord) = coordinator.clone() else {
            bail!("auto_rounds needs clients");
        };
        tokio::spawn(async move {
            if let Err(e) = coord.run_rounds(cfg.auto_rounds).await {
                tracing::error!(error = format!("{e:#}"), "round aborted");
            }
        });
    }
    let mut state = AppState::new(store, coordinator);
    match args.operator_token.as_deref().map(str::trim) {
        Some(token) if !token.is_empty() => state = state.with_operator_token(token),
        _ => tracing::warn!("no FEDGE_OPERATOR_TOKEN: POST/DELETE /v1/rounds answer 403"),
    }
    let limits = CONN_LIMITS.from_env().map_err(anyhow::Error::msg)?;
    service::serve::serve(
        listener,
        app(state),
        limits,
        service::shutdown::sigterm_or_ctrl_c(),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ConfigMap in deploy/aggregator/aggregator.yaml parses into a valid config.
    #[test]
    fn deploy_config_map_parses() {
        let yaml = include_str!("../../deploy/aggregator/aggregator.yaml");
        let start = yaml.find("aggregator.json: |").unwrap();
        let json: String = yaml[start..]
            .lines()
            .skip(1)
            .take_while(|l| !l.starts_with("---"))
            .collect::<Vec<_>>()
            .join("\n");
        let cfg: ClusterConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(cfg.clients.len(), 3);
        assert_eq!(cfg.settings.min_fit_clients, 2);
        assert_eq!(cfg.limits.max_update_norm, Some(100.0));
        cfg.settings.validate().unwrap();
        assert!(cfg.strategy.parse::<StrategyKind>().is_ok());
    }
}
