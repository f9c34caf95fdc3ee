//! The training request (`POST /train` body, CloudEvent data) and its validation into a
//! [`TrainJob`].
//!
//! Parsing and validation happen before the job slot is taken or any byte of a model is
//! fetched, so a bad request costs nothing and never blocks a good one.

use std::time::Duration;

use base64::Engine as _;

use crate::config::Config;
use crate::error::ApiError;

/// Longest accepted nonce, in bytes.
pub const MAX_NONCE_LEN: usize = 256;
/// Longest accepted deadline: one day.
pub const MAX_DEADLINE_MS: u64 = 24 * 3600 * 1000;

/// The request as it arrives: the contract's type, with the optimizer still JSON so that
/// [`validate`] can name a bad optimizer field before the engine sees it.
pub use protocol::{ModelRef, TrainRequest};

/// Where the model comes from, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSource {
    /// Fetch over http.
    Url(reqwest::Url),
    /// Already here.
    Inline(Vec<u8>),
}

/// A validated request: every field in range, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainJob {
    /// Federated round number.
    pub round: u64,
    /// The caller's nonce (≤ 256 bytes, no control characters).
    pub nonce: String,
    /// The model.
    pub model: ModelSource,
    /// Local epochs, 1..=max.
    pub epochs: usize,
    /// Batch size, 1..=max.
    pub batch_size: usize,
    /// Optimizer config in serde form; its type and learning rate were checked.
    pub optimizer: serde_json::Value,
    /// Seed.
    pub seed: u64,
    /// FedProx mu, finite and >= 0.
    pub proximal_mu: Option<f32>,
    /// Time budget from receipt.
    pub deadline: Option<Duration>,
}

/// Parses a JSON body: malformed JSON is 400, well-formed JSON of the wrong shape 422.
///
/// # Errors
/// [`ApiError::BadRequest`] or [`ApiError::Unprocessable`] naming the problem.
pub fn parse(body: &[u8]) -> Result<TrainRequest, ApiError> {
    let syntax = |e: serde_json::Error| {
        ApiError::BadRequest(format!("training request is not valid JSON: {e}"))
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let request = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let e = e.into_inner();
        match e.classify() {
            serde_json::error::Category::Data if path == "." => {
                ApiError::Unprocessable(format!("invalid training request: {e}"))
            }
            serde_json::error::Category::Data => {
                ApiError::Unprocessable(format!("invalid training request: {path}: {e}"))
            }
            _ => syntax(e),
        }
    })?;
    de.end().map_err(syntax)?;
    Ok(request)
}

/// Checks every field of `request` against the node's limits.
///
/// # Errors
/// [`ApiError::Unprocessable`] (or [`ApiError::BadRequest`] for undecodable base64)
/// naming the field and the accepted range.
pub fn validate(request: TrainRequest, config: &Config) -> Result<TrainJob, ApiError> {
    let bad = |m: String| Err(ApiError::Unprocessable(m));
    if request.epochs == 0 || request.epochs > config.max_epochs {
        return bad(format!(
            "epochs must be in 1..={}, got {}",
            config.max_epochs, request.epochs
        ));
    }
    let max_batch = config.effective_max_batch_size();
    if request.batch_size == 0 || request.batch_size > max_batch {
        return bad(format!(
            "batch_size must be in 1..={max_batch}, got {}",
            request.batch_size
        ));
    }
    if request.nonce.len() > MAX_NONCE_LEN || request.nonce.chars().any(char::is_control) {
        return bad(format!(
            "nonce must be at most {MAX_NONCE_LEN} bytes without control characters"
        ));
    }
    if let Some(mu) = request.proximal_mu
        && !(mu.is_finite() && mu >= 0.0)
    {
        return bad(format!("proximal_mu must be finite and >= 0, got {mu}"));
    }
    let deadline = match request.deadline_ms {
        Some(0) => return bad("deadline_ms must be at least 1".to_owned()),
        Some(ms) if ms > MAX_DEADLINE_MS => {
            return bad(format!(
                "deadline_ms must be at most {MAX_DEADLINE_MS}, got {ms}"
            ));
        }
        Some(ms) => Some(Duration::from_millis(ms)),
        None => None,
    };
    check_optimizer(&request.optimizer)?;
    let model = model_source(request.model, config.max_model_bytes)?;
    Ok(TrainJob {
        round: request.round,
        nonce: request.nonce,
        model,
        epochs: request.epochs,
        batch_size: request.batch_size,
        optimizer: request.optimizer,
        seed: request.seed,
        proximal_mu: request.proximal_mu,
        deadline,
    })
}

/// The optimizer must name a known type, and every rate-like number must be a finite f32.
/// The engine's own `OptimizerConfig::validate` runs again when the job is built.
fn check_optimizer(opt: &serde_json::Value) -> Result<(), ApiError> {
    let bad = |m: String| Err(ApiError::Unprocessable(m));
    let Some(obj) = opt.as_object() else {
        return bad("optimizer must be an object like {\"type\":\"adam\",\"lr\":0.001}".to_owned());
    };
    match obj.get("type").and_then(|t| t.as_str()) {
        Some("sgd" | "adam") => {}
        Some(other) => {
            return bad(format!(
                "unknown optimizer {other:?}; expected \"sgd\" or \"adam\""
            ));
        }
        None => return bad("optimizer.type is missing; expected \"sgd\" or \"adam\"".to_owned()),
    }
    for (key, value) in obj {
        if let Some(x) = value.as_f64() {
            // Checked as f32, the engine's precision: 1e39 is finite in f64, not in f32.
            #[allow(clippy::cast_possible_truncation)]
            let as_f32 = x as f32;
            if !as_f32.is_finite() {
                return bad(format!("optimizer.{key} must be a finite f32, got {x}"));
            }
        }
    }
    if let Some(lr) = obj.get("lr") {
        match lr.as_f64() {
            Some(x) if x > 0.0 => {}
            _ => return bad(format!("optimizer.lr must be a positive number, got {lr}")),
        }
    }
    Ok(())
}

fn model_source(wire: ModelRef, max_bytes: usize) -> Result<ModelSource, ApiError> {
    match (wire.url, wire.inline_base64) {
        (Some(url), None) => {
            let url = reqwest::Url::parse(&url).map_err(|e| {
                ApiError::Unprocessable(format!("model.url {url:?} is not a URL: {e}"))
            })?;
            if url.scheme() != "http" {
                return Err(ApiError::Unprocessable(format!(
                    "model.url scheme {:?} is not supported: fn-train fetches models over \
                     plain http inside the cluster (TLS ends at the ingress)",
                    url.scheme()
                )));
            }
            Ok(ModelSource::Url(url))
        }
        (None, Some(b64)) => {
            // 4 base64 characters carry 3 bytes: refuse before decoding anything too large.
            if b64.len() / 4 * 3 > max_bytes {
                return Err(ApiError::PayloadTooLarge(format!(
                    "inline model is larger than the limit of {max_bytes} bytes"
                )));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| {
                    ApiError::BadRequest(format!("model.inline_base64 is not valid base64: {e}"))
                })?;
            Ok(ModelSource::Inline(bytes))
        }
        (Some(_), Some(_)) => Err(ApiError::Unprocessable(
            "model must have exactly one of url and inline_base64, got both".to_owned(),
        )),
        (None, None) => Err(ApiError::Unprocessable(
            "model must have exactly one of url and inline_base64, got neither".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> serde_json::Value {
        json!({"round": 3, "nonce": "n-1", "model": {"url": "http://127.0.0.1:9/m"},
               "epochs": 1, "batch_size": 64, "optimizer": {"type": "adam", "lr": 0.001},
               "seed": 42, "proximal_mu": null, "deadline_ms": 120000})
    }

    fn check(v: &serde_json::Value) -> Result<TrainJob, ApiError> {
        validate(parse(v.to_string().as_bytes())?, &Config::default())
    }

    fn refused_with(mut edit: impl FnMut(&mut serde_json::Value), needle: &str) {
        let mut v = base();
        edit(&mut v);
        let err = check(&v).unwrap_err().to_string();
        assert!(err.contains(needle), "{err:?} should mention {needle:?}");
    }

    #[test]
    fn the_contract_example_validates() {
        let job = check(&base()).unwrap();
        assert_eq!(job.round, 3);
        assert_eq!(job.deadline, Some(Duration::from_secs(120)));
        assert!(matches!(job.model, ModelSource::Url(_)));
    }

    #[test]
    fn every_bad_field_is_named() {
        refused_with(|v| v["epochs"] = json!(0), "epochs");
        refused_with(|v| v["epochs"] = json!(1_000_000), "epochs");
        refused_with(|v| v["batch_size"] = json!(0), "batch_size");
        refused_with(|v| v["batch_size"] = json!(1u64 << 40), "batch_size");
        refused_with(
            |v| v["optimizer"] = json!({"type": "rmsprop"}),
            "unknown optimizer",
        );
        refused_with(|v| v["optimizer"] = json!({"lr": 0.1}), "optimizer.type");
        refused_with(|v| v["optimizer"]["lr"] = json!(1e39), "finite");
        refused_with(|v| v["optimizer"]["lr"] = json!(-1.0), "positive");
        refused_with(|v| v["proximal_mu"] = json!(-0.5), "proximal_mu");
        refused_with(|v| v["deadline_ms"] = json!(0), "deadline_ms");
        refused_with(|v| v["model"] = json!({}), "neither");
        refused_with(|v| v["model"]["inline_base64"] = json!("AAAA"), "both");
        refused_with(|v| v["model"] = json!({"url": "https://x/m"}), "scheme");
        refused_with(|v| v["model"] = json!({"inline_base64": "!!"}), "base64");
        refused_with(|v| v["nonce"] = json!("a\nb"), "nonce");
        refused_with(
            |v| {
                v.as_object_mut().unwrap().remove("round");
            },
            "missing field `round`",
        );
    }

    #[test]
    fn malformed_json_is_400_and_wrong_shape_is_422() {
        assert!(matches!(
            parse(b"{\"round\": "),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse(b"{\"round\": NaN}"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse(b"{\"round\": \"x\"}"),
            Err(ApiError::Unprocessable(_))
        ));
    }
}
