//! Open Inference Protocol (KServe V2) REST: server and model metadata, model ready,
//! and inference with JSON or binary tensors (inference-protocols.md, part a).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{BodyReader, Framing, HEADER_LEN, framing};
use crate::codec::json::Tokenizer;
use crate::codec::response::{OutputSel, v2_body};
use crate::codec::v2::{BinaryInput, V2Decoder, V2Request};
use crate::codec::{INPUT_NAME, OUTPUT_CLASS, OUTPUT_PROBABILITIES};
use crate::error::ApiError;
use crate::model_slot::Served;
use crate::state::AppState;

/// The `platform` string of model metadata (`<project>_<format>`).
pub const PLATFORM: &str = "fedge_safetensors";

/// `GET /v2`: server metadata.
pub async fn server_metadata(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "name": "fn-serve",
        "version": state.server_version(),
        "extensions": ["binary_tensor_data"],
    }))
}

fn model_metadata_json(state: &AppState, served: &Served) -> Value {
    let [c, h, w] = served.model.input_shape;
    json!({
        "name": state.config().model_name,
        "versions": [served.version],
        "platform": PLATFORM,
        "inputs": [{ "name": INPUT_NAME, "datatype": "FP32", "shape": [-1, c, h, w] }],
        "outputs": [
            { "name": OUTPUT_PROBABILITIES, "datatype": "FP32", "shape": [-1, served.model.num_classes] },
            { "name": OUTPUT_CLASS, "datatype": "INT64", "shape": [-1] },
        ],
    })
}

/// `GET /v2/models/{name}`.
pub async fn model_metadata(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let served = state.model(&name, None)?;
    Ok(Json(model_metadata_json(&state, &served)))
}

/// `GET /v2/models/{name}/versions/{version}`.
pub async fn model_version_metadata(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let served = state.model(&name, Some(&version))?;
    Ok(Json(model_metadata_json(&state, &served)))
}

/// `GET /v2/models/{name}/ready`.
pub async fn model_ready(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.model(&name, None)?;
    Ok(Json(json!({ "name": name, "ready": true })))
}

/// `GET /v2/models/{name}/versions/{version}/ready`.
pub async fn model_version_ready(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    state.model(&name, Some(&version))?;
    Ok(Json(json!({ "name": name, "ready": true })))
}

/// `POST /v2/models/{name}/infer`.
pub async fn infer(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let served = state.model(&name, None)?;
    run_infer(state, served, headers, body).await
}

/// `POST /v2/models/{name}/versions/{version}/infer`.
pub async fn infer_version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let served = state.model(&name, Some(&version))?;
    run_infer(state, served, headers, body).await
}

/// Decodes the body as it arrives (JSON, then binary tensor data if announced).
async fn decode(
    state: &AppState,
    served: &Served,
    headers: &HeaderMap,
    body: Body,
) -> Result<V2Request, ApiError> {
    let cfg = state.config();
    let framing = framing(headers, cfg.max_body_bytes, true)?;
    let mut reader = BodyReader::new(body, cfg.max_body_bytes);
    let mut tok = Tokenizer::new();
    let mut dec = V2Decoder::new(
        AppState::model_input(served),
        cfg.max_batch,
        state.budget().clone(),
    );
    let (header_len, binary) = match framing {
        Framing::Json => (usize::MAX, false),
        Framing::Binary(n) => (n, true),
    };
    let mut json_read = 0usize;
    let mut rest = bytes::Bytes::new();
    while json_read < header_len {
        let Some(chunk) = reader.next().await? else {
            break;
        };
        let take = (header_len - json_read).min(chunk.len());
        tok.feed(&chunk[..take], &mut dec)?;
        json_read += take;
        if take < chunk.len() {
            rest = chunk.slice(take..);
        }
    }
    if binary && json_read < header_len {
        return Err(ApiError::bad(format!(
            "the body ends after {json_read} bytes, inside the {header_len}-byte JSON header"
        )));
    }
    tok.finish(&mut dec)?;
    let mut req = dec.finish(binary)?;
    match req.binary_size {
        Some(size) => {
            let mut input = BinaryInput::new(
                &req,
                size,
                cfg.max_batch,
                state.budget().clone(),
                AppState::model_input(served).image_len(),
            );
            if !rest.is_empty() {
                input.feed(&rest)?;
            }
            while let Some(chunk) = reader.next().await? {
                input.feed(&chunk)?;
            }
            req.data = Some(input.finish()?);
        }
        None => {
            if !rest.is_empty() || reader.next().await?.is_some() {
                return Err(ApiError::bad(
                    "the body has binary data after the JSON header, but no input has a \
                     binary_data_size parameter",
                ));
            }
        }
    }
    Ok(req)
}

async fn run_infer(
    state: AppState,
    served: Arc<Served>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let _busy = state.compute().enter();
    let mut req = decode(&state, &served, &headers, body).await?;
    let data = req
        .data
        .take()
        .ok_or_else(|| ApiError::Internal("decoded request without data".into()))?;
    let pred = state.compute().predict(served.clone(), data).await?;
    pred.check_finite()?;
    let default_bin = req.binary_output;
    let sel = match &req.outputs {
        None => OutputSel {
            probabilities: Some(default_bin),
            class: Some(default_bin),
        },
        Some(list) => {
            let mut sel = OutputSel {
                probabilities: None,
                class: None,
            };
            for o in list {
                let bin = Some(o.binary.unwrap_or(default_bin));
                if o.name == OUTPUT_PROBABILITIES {
                    sel.probabilities = bin;
                } else {
                    sel.class = bin;
                }
            }
            sel
        }
    };
    let (body, json_len) = v2_body(
        &state.config().model_name,
        &served.version,
        req.id.as_deref(),
        &pred,
        sel,
    );
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    match json_len {
        None => {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        Some(n) => {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            h.insert(HEADER_LEN, HeaderValue::from(n));
        }
    }
    Ok(resp)
}
