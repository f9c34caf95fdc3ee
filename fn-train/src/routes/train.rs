//! `POST /train`: the JSON trigger, and [`execute`], the path every trigger shares.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use serde::Serialize;

use crate::error::ApiError;
use crate::fetch::{self, FetchLimits};
use crate::job::{self, CancelOnDrop};
use crate::request::{self, TrainJob};
use crate::state::AppState;
use crate::trainer::{self, Summary, TrainContext, TrainOutput};

/// The JSON reply (`Accept: application/json`).
#[derive(Debug, Serialize)]
struct JsonReply {
    #[serde(flatten)]
    summary: Summary,
    weights_base64: String,
}

/// Trains as the JSON body asks; replies with safetensors (default) or a JSON summary.
pub async fn train(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_or_error(body)?;
    if let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        && !crate::cloudevents::is_json_media_type(ct)
    {
        return Err(ApiError::UnsupportedMediaType(format!(
            "POST /train takes application/json, got {ct:?} (CloudEvents go to POST /)"
        )));
    }
    let job = parse_job(&state, &body)?;
    drop(body); // the job holds the decoded model; the request bytes are not needed
    let want_json = wants_json(&headers);
    let out = execute(&state, job).await?;
    Ok(if want_json {
        Json(JsonReply {
            weights_base64: base64::engine::general_purpose::STANDARD.encode(&out.weights),
            summary: out.summary,
        })
        .into_response()
    } else {
        weights_response(out)
    })
}

/// Parses and validates a request body; refusals are counted as invalid jobs.
///
/// # Errors
/// The parse or validation error.
pub fn parse_job(state: &AppState, body: &[u8]) -> Result<TrainJob, ApiError> {
    request::parse(body)
        .and_then(|r| request::validate(r, state.config()))
        .inspect_err(|e| state.metrics().job_finished(job::outcome_of_error(e)))
}

/// Maps axum's body rejections to our JSON errors.
///
/// # Errors
/// 413 past the body limit, 400 otherwise.
pub fn body_or_error(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!("request body is too large: {}", r.body_text()))
        } else {
            ApiError::BadRequest(format!("cannot read the request body: {}", r.body_text()))
        }
    })
}

/// Runs a validated job: takes the slot (429 if busy), fetches the model, trains on the job
/// thread. Dropping the returned future (caller gone) cancels the job.
///
/// # Errors
/// 503 before the shard is loaded or while draining; 429 when busy; fetch and training errors.
pub async fn execute(state: &AppState, mut job: TrainJob) -> Result<TrainOutput, ApiError> {
    let retry_after = state.config().retry_after_secs;
    if state.draining() {
        return Err(ApiError::Unavailable {
            message: "the node is shutting down".to_owned(),
            retry_after,
        });
    }
    let shard = state.shard_for_job()?;
    let mut lease = state.jobs().try_start(job.round, job.deadline)?;
    let handle = Arc::clone(lease.handle());
    tracing::info!(
        round = job.round,
        epochs = job.epochs,
        batch_size = job.batch_size,
        deadline_ms = job.deadline.map(|d| d.as_millis() as u64),
        "training job accepted"
    );
    let guard = CancelOnDrop::new(Arc::clone(&handle));
    let limits = FetchLimits {
        timeout: state.config().model_fetch_timeout(),
        max_bytes: state.config().max_model_bytes,
    };
    // Move the model out of the job: an inline model is not kept twice during training.
    let model = std::mem::replace(
        &mut job.model,
        crate::request::ModelSource::Inline(Vec::new()),
    );
    let download = fetch::model_bytes(state.http(), model, limits);
    let fetched = match handle.remaining() {
        None => download.await,
        Some(left) => tokio::time::timeout(left, download)
            .await
            .unwrap_or_else(|_| {
                handle.cancel(job::CancelReason::Deadline);
                Err(ApiError::DeadlineExceeded(
                    "the request's deadline passed while fetching the model".to_owned(),
                ))
            }),
    };
    let model_bytes = match fetched {
        Ok(bytes) => bytes,
        Err(e) => {
            lease.set_outcome(job::outcome_of_error(&e));
            guard.disarm();
            return Err(e);
        }
    };
    guard.disarm(); // run_on_thread arms its own guard
    let ctx = TrainContext {
        client_id: state.config().client_id.clone(),
        expected_spec: state.expected_spec().cloned(),
        metrics: Arc::clone(state.metrics()),
        memory: state.memory(),
    };
    let round = job.round;
    let result = job::run_on_thread(lease, move |h| {
        trainer::train(&job, model_bytes, &shard, &ctx, h)
    })
    .await;
    match &result {
        Ok(out) => tracing::info!(
            round,
            examples = out.summary.num_examples,
            epochs = out.summary.epochs.len(),
            train_seconds = out.summary.train_seconds,
            train_cpu_seconds = out.cpu_seconds,
            final_loss = out.summary.epochs.last().map(|e| e.loss),
            "training job finished"
        ),
        Err(e) => tracing::warn!(round, error = %e, "training job failed"),
    }
    result
}

/// `Accept` asks for JSON before (or instead of) octet-stream.
fn wants_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    for item in accept.split(',') {
        let media = item
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/json" => return true,
            "application/octet-stream" => return false,
            _ => {}
        }
    }
    false
}

/// 200 with the safetensors body and the `X-Fedge-*` headers.
fn weights_response(out: TrainOutput) -> Response {
    let s = &out.summary;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    put("x-fedge-client-id", s.client_id.clone());
    put("x-fedge-round", s.round.to_string());
    put("x-fedge-num-examples", s.num_examples.to_string());
    (StatusCode::OK, headers, out.weights).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation_defaults_to_octet_stream() {
        let mut h = HeaderMap::new();
        assert!(!wants_json(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(wants_json(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/octet-stream, application/json"),
        );
        assert!(!wants_json(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(!wants_json(&h));
    }
}
