//! [`Coordinator`]: runs federated rounds against the configured clients.
//!
//! One round: probe which clients are reachable (`min_available_clients`), sample
//! `fraction_fit` of them, invoke them concurrently (per-client and round timeouts), validate
//! each update, aggregate the accepted ones with the strategy, evaluate the result on the
//! aggregator's test set, store it as the next version and append the round's record. A
//! round with fewer than `min_fit_clients` accepted updates (or any failure when
//! `accept_failures` is off) is recorded as failed and the previous version stays current.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use engine::weights::WeightsMeta;
use engine::{ModelSpec, ParamSet};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::clients::{self, ClientSpec, InvokeError, ModelRef, TrainReply, TrainRequest};
use crate::history::{
    ClientRecord, ClientStatus, GlobalMetrics, RoundRecord, RoundStatus, RoundTimings,
    bounded_seconds, bounded_series, bounded_text, unix_ms,
};
use crate::relative::{self, Candidate, Verdict};
use crate::store::ModelStore;
use crate::strategy::{RoundSettings, Strategy, StrategyKind};
use crate::validate::{self, Claimed, Expected, ValidationLimits};

/// The stream that picks a round's clients (one sub-stream per round). The id is fixed:
/// a seed must sample the same clients in every release.
const CLIENT_SAMPLING: engine::Purpose = engine::Purpose::new(5);
/// The stream of the training seed sent to each client (one sub-stream per round and
/// client).
const CLIENT_SEED: engine::Purpose = engine::Purpose::new(6);

/// A sampled client, the nonce it was sent and what came back.
type Outcome = (ClientSpec, String, Result<TrainReply, InvokeError>);

/// What clients are asked to do each round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainSettings {
    /// Local epochs per round.
    pub epochs: usize,
    /// Client batch size.
    pub batch_size: usize,
    /// The clients' optimizer.
    pub optimizer: engine::OptimizerConfig,
    /// Base seed; each client and round derive their own from it.
    pub seed: u64,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            epochs: 1,
            batch_size: 64,
            optimizer: adam(1e-3),
            seed: 0,
        }
    }
}

/// The Adam optimizer config (Keras defaults besides `lr`).
pub fn adam(lr: f32) -> engine::OptimizerConfig {
    engine::OptimizerConfig::Adam(engine::AdamConfig {
        lr,
        ..engine::AdamConfig::default()
    })
}

/// Evaluates a candidate global model on the aggregator's test set.
pub type Evaluator = dyn Fn(&ModelSpec, &ParamSet) -> anyhow::Result<GlobalMetrics> + Send + Sync;

/// Everything a coordinator needs.
pub struct CoordinatorConfig {
    /// The model store (its name is the model name in URLs).
    pub store: Arc<ModelStore>,
    /// The model's architecture.
    pub spec: ModelSpec,
    /// The training clients.
    pub clients: Vec<ClientSpec>,
    /// Sampling, minimums, timeouts.
    pub settings: RoundSettings,
    /// What clients train with.
    pub train: TrainSettings,
    /// Update validation limits.
    pub limits: ValidationLimits,
    /// The aggregation rule.
    pub strategy: Strategy,
    /// Centralised evaluation; `None` skips it.
    pub evaluator: Option<Arc<Evaluator>>,
    /// Base URL at which clients reach this aggregator's store, e.g. `http://127.0.0.1:9000`.
    pub public_url: String,
}

impl std::fmt::Debug for CoordinatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoordinatorConfig")
            .field("clients", &self.clients)
            .field("settings", &self.settings)
            .field("train", &self.train)
            .field("strategy", self.strategy.kind())
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// Gives `strategy` the state saved with the store's latest version, so a restarted
/// aggregator continues FedAvgM with its momentum rather than from zero.
fn restore_server_state(store: &ModelStore, strategy: &mut Strategy) -> anyhow::Result<()> {
    let Some(version) = store.latest_version() else {
        return Ok(());
    };
    if !matches!(strategy.kind(), StrategyKind::Fedavgm { .. }) {
        return Ok(());
    }
    match store.read_server_state(version)? {
        Some(bytes) => {
            let state = engine::weights::from_bytes(bytes)
                .with_context(|| format!("the server state of version {version}"))?;
            tracing::info!(version, "restored the FedAvgM momentum");
            strategy.restore_server_state(state.params);
        }
        None if version > 0 => {
            tracing::warn!(
                version,
                "no server state saved with the latest version: FedAvgM momentum starts from zero"
            );
        }
        None => {}
    }
    Ok(())
}

/// Runs rounds; one at a time (a second caller waits).
#[derive(Debug)]
pub struct Coordinator {
    cfg: CoordinatorConfig,
    http: reqwest::Client,
    strategy: tokio::sync::Mutex<Strategy>,
    running: tokio::sync::Mutex<()>,
    /// Set by [`cancel`](Self::cancel): the current round stops waiting for clients and
    /// fails, and a run of rounds stops before its next one.
    cancelled: tokio::sync::watch::Sender<bool>,
}

impl Coordinator {
    /// A coordinator over `cfg`.
    pub fn new(cfg: CoordinatorConfig) -> anyhow::Result<Self> {
        cfg.settings
            .validate()
            .map_err(|e| anyhow::anyhow!("round settings: {e}"))?;
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        let mut strategy = cfg.strategy.clone();
        restore_server_state(&cfg.store, &mut strategy)?;
        let strategy = tokio::sync::Mutex::new(strategy);
        Ok(Self {
            cfg,
            http,
            strategy,
            running: tokio::sync::Mutex::new(()),
            cancelled: tokio::sync::watch::Sender::new(false),
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<ModelStore> {
        &self.cfg.store
    }

    /// True while a round runs.
    pub fn is_running(&self) -> bool {
        self.running.try_lock().is_err()
    }

    /// Runs up to `n` rounds, one after the other, until one errs or the run is cancelled;
    /// returns how many ran. The cancellation is cleared when the run ends.
    pub async fn run_rounds(&self, n: u64) -> anyhow::Result<u64> {
        let mut done = 0;
        let result = loop {
            if done == n {
                break Ok(n);
            }
            if *self.cancelled.borrow() {
                tracing::warn!(done, of = n, "run cancelled");
                break Ok(done);
            }
            if let Err(e) = self.run_round().await {
                break Err(e);
            }
            done += 1;
        };
        self.clear_cancel();
        result
    }

    /// Forgets a cancellation (one that came while nothing ran must not stop the next run).
    pub fn clear_cancel(&self) {
        self.cancelled.send_replace(false);
    }

    /// Cancels the running round (it stops waiting for clients and is recorded as failed)
    /// and the rounds after it in a [`run_rounds`](Self::run_rounds); returns whether a
    /// round was running.
    pub fn cancel(&self) -> bool {
        self.cancelled.send_replace(true);
        self.is_running()
    }

    /// Stores `initial` as version 0 (round 0, evaluated) unless the store already has a
    /// version; returns the current version.
    pub async fn ensure_initial(&self, initial: ParamSet) -> anyhow::Result<u64> {
        let _guard = self.running.lock().await;
        if let Some(v) = self.cfg.store.latest_version() {
            return Ok(v);
        }
        let start = Instant::now();
        let started_unix_ms = unix_ms();
        let params = Arc::new(initial);
        let t = Instant::now();
        let global = self.evaluate(&params).await?;
        let evaluation = t.elapsed().as_secs_f64();
        let record = RoundRecord {
            round: 0,
            status: RoundStatus::Initial,
            base_version: None,
            version: Some(0),
            strategy: self.cfg.strategy.kind().to_string(),
            started_unix_ms,
            clients: vec![],
            global,
            timings: RoundTimings {
                evaluation,
                ..RoundTimings::default()
            },
            failure: None,
        };
        self.commit(params, None, record, start).await?;
        Ok(0)
    }

    /// Runs one round; `Ok` with a failed record when the round failed cleanly, `Err` only
    /// when the store itself could not be read or written.
    pub async fn run_round(&self) -> anyhow::Result<RoundRecord> {
        let _guard = self.running.lock().await;
        let start = Instant::now();
        let started_unix_ms = unix_ms();
        let round = self.cfg.store.next_round();
        let (base_version, base_bytes) = self
            .cfg
            .store
            .latest()
            .context("the store has no model yet: store an initial version first")?;
        let global = Arc::new(
            tokio::task::spawn_blocking(move || engine::weights::from_bytes(base_bytes.to_vec()))
                .await??
                .params,
        );
        let mut record = RoundRecord {
            round,
            status: RoundStatus::Failed,
            base_version: Some(base_version),
            version: None,
            strategy: self.strategy.lock().await.kind().to_string(),
            started_unix_ms,
            clients: vec![],
            global: None,
            timings: RoundTimings::default(),
            failure: None,
        };
        let span = tracing::info_span!("round", round, base_version);
        let _enter = span.enter();

        let sampled = self.sample(round).await;
        if let Err(reason) = &sampled {
            return self.fail(record, reason.clone(), start).await;
        }
        let sampled = sampled.unwrap_or_default();
        let t = Instant::now();
        let replies = self.invoke_all(&sampled, round, base_version).await;
        record.timings.clients = t.elapsed().as_secs_f64();
        if *self.cancelled.borrow() {
            return self
                .fail(record, "cancelled by the operator".into(), start)
                .await;
        }

        let t = Instant::now();
        let (clients, accepted) = self.validate_all(replies, round, &global).await?;
        record.timings.validation = t.elapsed().as_secs_f64();
        record.clients = clients;
        let slowest = accepted
            .iter()
            .map(|(_, r)| r)
            .max_by(|a, b| a.round_trip.cmp(&b.round_trip));
        if let Some(r) = slowest {
            record.timings.training = r.meta.train_seconds;
            record.timings.transfer = (r.round_trip.as_secs_f64() - r.meta.train_seconds).max(0.0);
        }

        let failures = record.clients.len() - accepted.len();
        if accepted.len() < self.cfg.settings.min_fit_clients {
            let reason = format!(
                "{} accepted update(s), min_fit_clients is {}",
                accepted.len(),
                self.cfg.settings.min_fit_clients
            );
            return self.fail(record, reason, start).await;
        }
        if failures > 0 && !self.cfg.settings.accept_failures {
            let reason = format!("{failures} client(s) failed and accept_failures is off");
            return self.fail(record, reason, start).await;
        }

        let t = Instant::now();
        let mut strategy = self.strategy.lock().await.clone();
        let aggregated = {
            let global = Arc::clone(&global);
            let (after, next) = tokio::task::spawn_blocking(move || {
                let updates: Vec<(&ParamSet, u64)> = accepted
                    .iter()
                    .map(|(_, r)| (&r.params, r.meta.num_examples))
                    .collect();
                let next = strategy.aggregate(&global, &updates);
                (strategy, next)
            })
            .await?;
            strategy = after;
            next
        };
        let next = match aggregated {
            Ok(next) => next,
            Err(e) => return self.fail(record, format!("aggregation: {e}"), start).await,
        };
        record.timings.aggregation = t.elapsed().as_secs_f64();

        let next = Arc::new(next);
        let t = Instant::now();
        record.global = self.evaluate(&next).await?;
        record.timings.evaluation = t.elapsed().as_secs_f64();
        record.status = RoundStatus::Completed;
        record.version = Some(self.cfg.store.next_version());
        let server_state = strategy.server_state().cloned();
        let record = self.commit(next, server_state, record, start).await?;
        // The strategy's state advances only with a committed round.
        *self.strategy.lock().await = strategy;
        Ok(record)
    }

    async fn evaluate(&self, params: &Arc<ParamSet>) -> anyhow::Result<Option<GlobalMetrics>> {
        let Some(eval) = self.cfg.evaluator.clone() else {
            return Ok(None);
        };
        let spec = self.cfg.spec.clone();
        let params = Arc::clone(params);
        let metrics = tokio::task::spawn_blocking(move || eval(&spec, &params)).await??;
        Ok(Some(metrics))
    }

    /// Stores `params` as the record's version, with the strategy's `server_state` beside it.
    async fn commit(
        &self,
        params: Arc<ParamSet>,
        server_state: Option<ParamSet>,
        mut record: RoundRecord,
        start: Instant,
    ) -> anyhow::Result<RoundRecord> {
        let t = Instant::now();
        let store = Arc::clone(&self.cfg.store);
        let spec = self.cfg.spec.clone();
        let record = tokio::task::spawn_blocking(move || -> anyhow::Result<RoundRecord> {
            let mut meta = WeightsMeta::new(spec);
            meta.version = record.version.unwrap_or(0);
            meta.round = record.round;
            if let Some(g) = &record.global {
                meta.extra
                    .insert("fedge.test_accuracy".into(), g.accuracy.to_string());
                meta.extra
                    .insert("fedge.test_loss".into(), g.loss.to_string());
            }
            meta.extra
                .insert("fedge.strategy".into(), record.strategy.clone());
            let bytes = engine::weights::to_bytes(&params, &meta)?;
            let state = match &server_state {
                Some(state) => {
                    meta.extra
                        .insert("fedge.server_state".into(), "fedavgm-momentum".into());
                    Some(engine::weights::to_bytes(state, &meta)?)
                }
                None => None,
            };
            record.timings.store = t.elapsed().as_secs_f64();
            record.timings.total = start.elapsed().as_secs_f64();
            store.commit_with_state(bytes, state.as_deref(), &record)?;
            Ok(record)
        })
        .await??;
        tracing::info!(
            version = ?record.version,
            accuracy = ?record.global.as_ref().map(|g| g.accuracy),
            "round committed"
        );
        Ok(record)
    }

    async fn fail(
        &self,
        mut record: RoundRecord,
        reason: String,
        start: Instant,
    ) -> anyhow::Result<RoundRecord> {
        tracing::warn!(round = record.round, %reason, "round failed; the previous model stays");
        record.status = RoundStatus::Failed;
        record.version = None;
        record.failure = Some(reason);
        record.timings.total = start.elapsed().as_secs_f64();
        let store = Arc::clone(&self.cfg.store);
        let rec = record.clone();
        tokio::task::spawn_blocking(move || store.record_failure(&rec)).await??;
        Ok(record)
    }

    /// Reachable clients, then a seeded sample of them.
    async fn sample(&self, round: u64) -> Result<Vec<ClientSpec>, String> {
        let settings = &self.cfg.settings;
        let mut probes = JoinSet::new();
        for (i, c) in self.cfg.clients.iter().enumerate() {
            let (http, c) = (self.http.clone(), c.clone());
            probes.spawn(async move {
                (
                    i,
                    clients::is_reachable(&http, &c, Duration::from_secs(3)).await,
                )
            });
        }
        let mut available = Vec::new();
        while let Some(res) = probes.join_next().await {
            if let Ok((i, true)) = res {
                available.push(i);
            }
        }
        available.sort_unstable();
        if available.len() < settings.min_available_clients {
            return Err(format!(
                "{} client(s) reachable, min_available_clients is {}",
                available.len(),
                settings.min_available_clients
            ));
        }
        let n = settings.sample_size(available.len());
        if n < available.len() {
            let mut rng = engine::Rng::derive(self.cfg.train.seed, CLIENT_SAMPLING, round);
            rng.shuffle(&mut available);
            available.truncate(n);
            available.sort_unstable();
        }
        Ok(available
            .into_iter()
            .map(|i| self.cfg.clients[i].clone())
            .collect())
    }

    /// Invokes every sampled client concurrently; returns each with its nonce and outcome.
    async fn invoke_all(
        &self,
        sampled: &[ClientSpec],
        round: u64,
        base_version: u64,
    ) -> Vec<Outcome> {
        let settings = &self.cfg.settings;
        let client_timeout = settings.client_timeout();
        let proximal_mu = self.strategy.lock().await.proximal_mu();
        let model_url = format!(
            "{}/v1/models/{}/versions/{base_version}",
            self.cfg.public_url.trim_end_matches('/'),
            self.cfg.store.name()
        );
        let mut tasks = JoinSet::new();
        for (i, client) in sampled.iter().enumerate() {
            let (http, client) = (self.http.clone(), client.clone());
            let nonce = match service::random::hex(16) {
                Ok(nonce) => nonce,
                Err(e) => {
                    let failed = InvokeError::Failed(format!("no nonce: the OS generator: {e}"));
                    tasks.spawn(async move { (i, client, String::new(), Err(failed)) });
                    continue;
                }
            };
            let request = TrainRequest {
                round,
                nonce: nonce.clone(),
                model: ModelRef::url(model_url.clone()),
                epochs: self.cfg.train.epochs,
                batch_size: self.cfg.train.batch_size,
                optimizer: self.cfg.train.optimizer.clone(),
                seed: engine::Rng::derive(
                    self.cfg.train.seed,
                    CLIENT_SEED,
                    round * 1_000_003 + i as u64,
                )
                .next_u64()
                    >> 1,
                proximal_mu,
                deadline_ms: Some(client_timeout.as_millis() as u64),
            };
            let max_bytes = self.cfg.limits.max_update_bytes;
            tasks.spawn(async move {
                let out =
                    clients::invoke(&http, &client, &request, client_timeout, max_bytes).await;
                (i, client, nonce, out)
            });
        }
        let mut done: Vec<Option<Outcome>> = vec![None; sampled.len()];
        let deadline = tokio::time::Instant::now() + settings.round_timeout();
        let mut cancelled = self.cancelled.subscribe();
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout_at(deadline, tasks.join_next()) => next,
                _ = cancelled.wait_for(|c| *c) => {
                    tasks.abort_all();
                    break;
                }
            };
            match next {
                Ok(Some(Ok((i, client, nonce, out)))) => {
                    if let Some(slot) = done.get_mut(i) {
                        *slot = Some((client, nonce, out));
                    }
                }
                Ok(Some(Err(e))) => tracing::error!(error = %e, "client task failed"),
                Ok(None) => break,
                Err(_) => {
                    tasks.abort_all();
                    break;
                }
            }
        }
        done.into_iter()
            .zip(sampled)
            .map(|(slot, client)| {
                slot.unwrap_or_else(|| {
                    (
                        client.clone(),
                        String::new(),
                        Err(InvokeError::Timeout(settings.round_timeout())),
                    )
                })
            })
            .collect()
    }

    /// Validates every reply; returns all client records and the accepted replies.
    #[allow(clippy::type_complexity)]
    async fn validate_all(
        &self,
        replies: Vec<Outcome>,
        round: u64,
        global: &Arc<ParamSet>,
    ) -> anyhow::Result<(Vec<ClientRecord>, Vec<(ClientSpec, TrainReply)>)> {
        let limits = self.cfg.limits.clone();
        let epochs = self.cfg.train.epochs;
        let global = Arc::clone(global);
        let out = tokio::task::spawn_blocking(move || {
            let mut records = Vec::new();
            let mut valid = Vec::new();
            for (client, nonce, outcome) in replies {
                let (record, keep) =
                    judge(&client, &nonce, outcome, round, &global, &limits, epochs);
                if let Some(reply) = keep {
                    valid.push((records.len(), client, reply));
                }
                records.push(record);
            }
            let accepted = judge_relative(&global, valid, &mut records, &limits);
            (records, accepted)
        })
        .await?;
        Ok(out)
    }
}

/// Applies the round-relative limits ([`relative`]) to the individually `valid` updates
/// (each with the index of its record): rejects, caps weights (the reply's `num_examples`
/// becomes the weight used) and clips, noting each in the record.
fn judge_relative(
    global: &ParamSet,
    valid: Vec<(usize, ClientSpec, TrainReply)>,
    records: &mut [ClientRecord],
    limits: &ValidationLimits,
) -> Vec<(ClientSpec, TrainReply)> {
    let candidates: Vec<Candidate<'_>> = valid
        .iter()
        .map(|(i, client, r)| Candidate {
            params: &r.params,
            claimed: r.meta.num_examples,
            norm: records[*i].update_norm.unwrap_or(0.0),
            registered: client.num_examples.is_some(),
        })
        .collect();
    let verdicts = relative::judge(global, &candidates, limits);
    let mut accepted = Vec::new();
    for ((i, client, mut reply), verdict) in valid.into_iter().zip(verdicts) {
        let record = &mut records[i];
        match verdict {
            Verdict::Reject(reason) => {
                tracing::warn!(client = %client.id, %reason, "update rejected");
                record.status = ClientStatus::Rejected { reason };
            }
            Verdict::Keep { weight, clip_to } => {
                if weight != reply.meta.num_examples {
                    tracing::warn!(client = %client.id, claimed = reply.meta.num_examples, weight, "example count capped");
                    record.weight = Some(weight);
                    reply.meta.num_examples = weight;
                }
                if let (Some(to), Some(from)) = (clip_to, record.update_norm) {
                    tracing::warn!(client = %client.id, from, to, "update clipped");
                    relative::clip(global, &mut reply.params, from, to);
                    record.clipped_to = Some(to);
                }
                accepted.push((client, reply));
            }
        }
    }
    accepted
}

/// One client's record, and its reply if accepted.
fn judge(
    client: &ClientSpec,
    nonce: &str,
    outcome: Result<TrainReply, InvokeError>,
    round: u64,
    global: &ParamSet,
    limits: &ValidationLimits,
    max_epochs: usize,
) -> (ClientRecord, Option<TrainReply>) {
    let mut record = ClientRecord {
        client_id: client.id.clone(),
        status: ClientStatus::Accepted,
        num_examples: 0,
        epoch_loss: vec![],
        epoch_accuracy: vec![],
        train_seconds: 0.0,
        round_trip_seconds: 0.0,
        update_bytes: 0,
        update_norm: None,
        weight: None,
        clipped_to: None,
    };
    let reply = match outcome {
        Ok(r) => r,
        Err(e) => {
            record.status = match e {
                InvokeError::Timeout(d) => ClientStatus::Timeout {
                    after_seconds: d.as_secs_f64(),
                },
                InvokeError::Failed(reason) => ClientStatus::Failed {
                    reason: bounded_text(&reason),
                },
                InvokeError::Malformed(reason) => ClientStatus::Rejected {
                    reason: bounded_text(&reason),
                },
            };
            tracing::warn!(client = %client.id, status = ?record.status, "no update");
            return (record, None);
        }
    };
    record.num_examples = reply.meta.num_examples;
    record.epoch_loss = bounded_series(&reply.meta.epoch_loss, max_epochs);
    record.epoch_accuracy = bounded_series(&reply.meta.epoch_accuracy, max_epochs);
    record.train_seconds = bounded_seconds(reply.meta.train_seconds);
    record.round_trip_seconds = reply.round_trip.as_secs_f64();
    record.update_bytes = reply.bytes;
    let claimed = Claimed {
        client_id: &reply.meta.client_id,
        round: reply.meta.round,
        nonce: &reply.meta.nonce,
        num_examples: reply.meta.num_examples,
        bytes: reply.bytes,
        params: &reply.params,
    };
    let expected = Expected {
        client_id: &client.id,
        round,
        nonce,
        global,
        registered_examples: client.num_examples,
    };
    match validate::validate(&claimed, &expected, limits) {
        Ok(norm) => {
            record.update_norm = Some(norm);
            (record, Some(reply))
        }
        Err(rejection) => {
            tracing::warn!(client = %client.id, reason = %rejection, "update rejected");
            if matches!(rejection, validate::Rejection::NormExceeded { .. }) {
                record.update_norm = Some(validate::update_norm(global, &reply.params));
            }
            record.status = ClientStatus::Rejected {
                reason: bounded_text(&rejection.to_string()),
            };
            (record, None)
        }
    }
}
