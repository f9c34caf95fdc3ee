//! TF-Serving / KServe V1 REST: `POST /v1/models/{name}:predict`, model status and list
//! (inference-protocols.md, part b). Predictions are the per-instance probability vectors,
//! as TF-Serving returns them for the paper's Keras softmax model.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{BodyReader, framing};
use crate::codec::json::Tokenizer;
use crate::codec::response::v1_body;
use crate::codec::v1::{V1Decoder, V1Format};
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /v1/models`: `{"models": [name]}` (KServe V1).
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "models": [state.config().model_name] }))
}

/// `GET /v1/models/{name}`: `{"name", "ready"}` (KServe V1 shape); 503 until loaded.
pub async fn status(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.model(&name, None)?;
    Ok(Json(json!({ "name": name, "ready": true })))
}

fn split_verb(name_verb: &str) -> Result<(&str, &str), ApiError> {
    let (name, verb) = name_verb.rsplit_once(':').ok_or_else(|| {
        ApiError::NotFound(format!(
            "no route for POST /v1/models/{name_verb}: use /v1/models/{{name}}:predict"
        ))
    })?;
    match verb {
        "predict" => Ok((name, verb)),
        "classify" | "regress" | "explain" => Err(ApiError::NotImplemented(format!(
            ":{verb} is not implemented; use :predict"
        ))),
        _ => Err(ApiError::NotFound(format!(
            "unknown verb :{verb}; use :predict"
        ))),
    }
}

/// `POST /v1/models/{name}:predict`.
pub async fn predict(
    State(state): State<AppState>,
    Path(name_verb): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (name, _) = split_verb(&name_verb)?;
    run_predict(state, name, None, headers, body).await
}

/// `POST /v1/models/{name}/versions/{version}:predict`.
pub async fn predict_version(
    State(state): State<AppState>,
    Path((name, version_verb)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (version, _) = split_verb(&version_verb)?;
    run_predict(state, &name, Some(version), headers, body).await
}

async fn run_predict(
    state: AppState,
    name: &str,
    version: Option<&str>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let _busy = state.compute().enter();
    let served = state.model(name, version)?;
    let cfg = state.config();
    framing(&headers, cfg.max_body_bytes, false)?;
    let mut reader = BodyReader::new(body, cfg.max_body_bytes);
    let mut tok = Tokenizer::new();
    let mut dec = V1Decoder::new(
        AppState::model_input(&served),
        cfg.max_batch,
        state.budget().clone(),
    );
    while let Some(chunk) = reader.next().await? {
        tok.feed(&chunk, &mut dec)?;
    }
    tok.finish(&mut dec)?;
    let req = dec.finish()?;
    let pred = state.compute().predict(served.clone(), req.data).await?;
    pred.check_finite()?;
    let key = match req.format {
        V1Format::Instances => "predictions",
        V1Format::Inputs => "outputs",
    };
    let mut resp = v1_body(key, &pred).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}
