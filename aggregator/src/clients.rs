//! Invoking fn-train nodes over HTTP, as the wire contract says: `POST {url}/train` with a
//! bearer token, the round, a fresh nonce and a URL of the global model in this aggregator's
//! store; the reply is safetensors whose metadata carries the client id, round, nonce,
//! example count and training metrics.

use std::time::{Duration, Instant};

use engine::ParamSet;
use serde::{Deserialize, Serialize};

/// One configured training client (an fn-train node).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct ClientSpec {
    /// Stable id; the reply's `fedge.client_id` must equal it.
    pub id: String,
    /// Base URL, e.g. `http://edge-1.fedge.svc:8080`; requests go to `{url}/train`.
    pub url: String,
    /// Bearer token the node expects (never logged or serialised back out).
    #[serde(default, skip_serializing)]
    pub token: Option<String>,
    /// How the training request is delivered.
    #[serde(default)]
    pub transport: Transport,
    /// The client's registered shard size: a reply claiming more examples is refused.
    /// Unknown (`None`), its claim is capped relative to the round's median instead.
    #[serde(default)]
    pub num_examples: Option<u64>,
}

/// How a training request reaches a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// `POST {url}/train`, JSON body, safetensors reply.
    #[default]
    Http,
    /// `POST {url}/` as a binary-mode CloudEvent `dev.fedge.train.requested` (as a Knative
    /// broker delivers it); the reply is a `dev.fedge.train.completed` event whose data is
    /// the safetensors.
    Cloudevents,
}

impl std::fmt::Debug for ClientSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSpec")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("transport", &self.transport)
            .field("num_examples", &self.num_examples)
            .finish()
    }
}

/// Where the client fetches the global model from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelRef {
    /// `GET` URL of the safetensors.
    pub url: String,
}

/// The JSON body of `POST /train`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainRequest {
    /// Round number.
    pub round: u64,
    /// Opaque per-invocation value the reply must echo.
    pub nonce: String,
    /// The global model to start from.
    pub model: ModelRef,
    /// Local epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// `engine::optim::OptimizerConfig` in its serde form, e.g. `{"type":"adam","lr":0.001}`.
    pub optimizer: serde_json::Value,
    /// Seed of the client's shuffling and dropout.
    pub seed: u64,
    /// FedProx proximal coefficient.
    pub proximal_mu: Option<f32>,
    /// Time budget from receipt, milliseconds.
    pub deadline_ms: Option<u64>,
}

/// CloudEvent type of a training request.
pub const TRAIN_REQUESTED: &str = "dev.fedge.train.requested";
/// CloudEvent type of a training reply.
pub const TRAIN_COMPLETED: &str = "dev.fedge.train.completed";

/// A parsed reply.
#[derive(Debug, Clone)]
pub struct TrainReply {
    /// `fedge.client_id`.
    pub client_id: String,
    /// `fedge.round`.
    pub round: u64,
    /// `fedge.nonce`.
    pub nonce: String,
    /// `fedge.num_examples`.
    pub num_examples: u64,
    /// `fedge.epoch_loss`.
    pub epoch_loss: Vec<f32>,
    /// `fedge.epoch_accuracy`.
    pub epoch_accuracy: Vec<f32>,
    /// `fedge.train_seconds`.
    pub train_seconds: f64,
    /// The updated weights.
    pub params: ParamSet,
    /// Body size.
    pub bytes: u64,
    /// From sending the request to holding the parsed reply.
    pub round_trip: Duration,
}

/// Why an invocation gave no update.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InvokeError {
    /// No complete reply in time.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// Transport error or an error status.
    #[error("{0}")]
    Failed(String),
    /// A 200 reply whose body is not a usable update (garbage, wrong metadata, too large).
    #[error("{0}")]
    Malformed(String),
}

/// Sends `request` to `client` and parses the reply, within `timeout`, reading at most
/// `max_bytes` of body.
pub async fn invoke(
    http: &reqwest::Client,
    client: &ClientSpec,
    request: &TrainRequest,
    timeout: Duration,
    max_bytes: u64,
) -> Result<TrainReply, InvokeError> {
    let start = Instant::now();
    let work = invoke_inner(http, client, request, max_bytes, start);
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(InvokeError::Timeout(timeout)),
    }
}

async fn invoke_inner(
    http: &reqwest::Client,
    client: &ClientSpec,
    request: &TrainRequest,
    max_bytes: u64,
    start: Instant,
) -> Result<TrainReply, InvokeError> {
    let base = client.url.trim_end_matches('/');
    let (url, mut builder) = match client.transport {
        Transport::Http => {
            let url = format!("{base}/train");
            let b = http
                .post(&url)
                .header(reqwest::header::ACCEPT, "application/octet-stream")
                .json(request);
            (url, b)
        }
        Transport::Cloudevents => {
            let url = format!("{base}/");
            let body = serde_json::to_vec(request)
                .map_err(|e| InvokeError::Failed(format!("encoding the request: {e}")))?;
            let b = http
                .post(&url)
                .header("ce-specversion", "1.0")
                .header("ce-type", TRAIN_REQUESTED)
                .header("ce-source", "/fedge/aggregator")
                .header("ce-id", request.nonce.clone())
                .header("ce-round", request.round.to_string())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
            (url, b)
        }
    };
    if let Some(token) = &client.token {
        builder = builder.bearer_auth(token);
    }
    let mut resp = builder
        .send()
        .await
        .map_err(|e| InvokeError::Failed(format!("POST {url}: {}", error_chain(&e))))?;
    let status = resp.status();
    if client.transport == Transport::Cloudevents && status.is_success() {
        let ty = resp
            .headers()
            .get("ce-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if ty != TRAIN_COMPLETED {
            return Err(InvokeError::Malformed(format!(
                "reply event type is not {TRAIN_COMPLETED:?} in binary mode"
            )));
        }
    }
    if !status.is_success() {
        // The body is the client's words: never copied into the public history.
        return Err(InvokeError::Failed(format!("HTTP {status}")));
    }
    if let Some(len) = resp.content_length()
        && len > max_bytes
    {
        return Err(InvokeError::Malformed(format!(
            "reply of {len} bytes exceeds the {max_bytes}-byte limit"
        )));
    }
    let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0).min(max_bytes) as usize);
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| InvokeError::Failed(format!("reading the reply: {}", error_chain(&e))))?
    {
        if (body.len() + chunk.len()) as u64 > max_bytes {
            return Err(InvokeError::Malformed(format!(
                "reply exceeds the {max_bytes}-byte limit"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    let bytes = body.len() as u64;
    let parsed = tokio::task::spawn_blocking(move || parse_reply(body))
        .await
        .map_err(|e| InvokeError::Failed(format!("parser task: {e}")))??;
    Ok(TrainReply {
        bytes,
        round_trip: start.elapsed(),
        ..parsed
    })
}

/// The error and its sources on one line (reqwest hides the cause in the source chain).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Parses a safetensors update and its `fedge.*` metadata.
pub fn parse_reply(body: Vec<u8>) -> Result<TrainReply, InvokeError> {
    let weights = engine::weights::from_bytes(body)
        .map_err(|e| InvokeError::Malformed(format!("not a weights file: {e}")))?;
    let extra = &weights.meta.extra;
    let get = |key: &str| {
        extra
            .get(key)
            .ok_or_else(|| InvokeError::Malformed(format!("metadata lacks `{key}`")))
    };
    let num = |key: &str| -> Result<u64, InvokeError> {
        get(key)?
            .parse()
            .map_err(|_| InvokeError::Malformed(format!("metadata `{key}` is not an integer")))
    };
    let list = |key: &str| -> Result<Vec<f32>, InvokeError> {
        match extra.get(key) {
            None => Ok(Vec::new()),
            Some(s) => serde_json::from_str(s)
                .map_err(|_| InvokeError::Malformed(format!("metadata `{key}` is not a list"))),
        }
    };
    Ok(TrainReply {
        client_id: get("fedge.client_id")?.clone(),
        round: num("fedge.round")?,
        nonce: get("fedge.nonce")?.clone(),
        num_examples: num("fedge.num_examples")?,
        epoch_loss: list("fedge.epoch_loss")?,
        epoch_accuracy: list("fedge.epoch_accuracy")?,
        train_seconds: extra
            .get("fedge.train_seconds")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0),
        params: weights.params,
        bytes: 0,
        round_trip: Duration::ZERO,
    })
}

/// `n` random bytes as hex, from the OS (`/dev/urandom`), falling back to a seeded generator
/// mixed from time and process id where that file is missing.
pub fn random_hex(n: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    let from_os = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !from_os {
        let seed = crate::history::unix_ms() ^ (u64::from(std::process::id()) << 32);
        let mut rng =
            engine::Rng::new(seed ^ COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        for b in &mut buf {
            *b = rng.next_u64() as u8;
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Probes `{url}/healthz`: any HTTP answer within `timeout` means the node is reachable.
pub async fn is_reachable(http: &reqwest::Client, client: &ClientSpec, timeout: Duration) -> bool {
    let url = format!("{}/healthz", client.url.trim_end_matches('/'));
    matches!(
        tokio::time::timeout(timeout, http.get(url).send()).await,
        Ok(Ok(_))
    )
}
