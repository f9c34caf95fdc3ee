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

pub use protocol::ModelRef;
pub use protocol::events::{TRAIN_COMPLETED, TRAIN_REQUESTED};

/// The training request as the aggregator writes it (the contract is
/// [`protocol::TrainRequest`]), with the engine's typed optimizer.
pub type TrainRequest = protocol::TrainRequest<engine::OptimizerConfig>;

/// A parsed reply: the node's `fedge.*` metadata (the contract's own type), its weights,
/// and what the aggregator measured receiving it.
#[derive(Debug, Clone)]
pub struct TrainReply {
    /// What the node reports beside its weights.
    pub meta: protocol::ReplyMeta,
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
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(encode_request(request)?);
            (url, b)
        }
        Transport::Cloudevents => {
            let url = format!("{base}/");
            let body = encode_request(request)?;
            let b = http
                .post(&url)
                .header("ce-specversion", "1.0")
                .header("ce-type", TRAIN_REQUESTED)
                .header("ce-source", protocol::events::AGGREGATOR_SOURCE)
                .header("ce-id", request.nonce.clone())
                .header(
                    format!("ce-{}", protocol::events::ROUND_EXTENSION),
                    request.round.to_string(),
                )
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

/// The request's JSON body, as both transports send it.
///
/// # Errors
/// [`InvokeError::Failed`] if it cannot be encoded (a non-finite optimizer number).
pub fn encode_request(request: &TrainRequest) -> Result<Vec<u8>, InvokeError> {
    serde_json::to_vec(request)
        .map_err(|e| InvokeError::Failed(format!("encoding the request: {e}")))
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

/// Parses a safetensors update and its `fedge.*` metadata ([`protocol::ReplyMeta`]).
pub fn parse_reply(body: Vec<u8>) -> Result<TrainReply, InvokeError> {
    let weights = engine::weights::from_bytes(body)
        .map_err(|e| InvokeError::Malformed(format!("not a weights file: {e}")))?;
    let meta = protocol::ReplyMeta::from_metadata(&weights.meta.extra)
        .map_err(|e| InvokeError::Malformed(e.to_string()))?;
    Ok(TrainReply {
        meta,
        params: weights.params,
        bytes: 0,
        round_trip: Duration::ZERO,
    })
}

/// Probes `{url}/healthz`: any HTTP answer within `timeout` means the node is reachable.
pub async fn is_reachable(http: &reqwest::Client, client: &ClientSpec, timeout: Duration) -> bool {
    let url = format!("{}/healthz", client.url.trim_end_matches('/'));
    matches!(
        tokio::time::timeout(timeout, http.get(url).send()).await,
        Ok(Ok(_))
    )
}
