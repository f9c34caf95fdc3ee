//! `POST /`: the training request as a CloudEvent (binary or structured mode, as Knative
//! delivers it); the reply is a `dev.fedge.train.completed` event in the same mode.
//!
//! Delivery is at least once: a redelivery of the last answered event (same source and id)
//! gets the same reply without training again; one that arrives while the original is
//! still training gets 409, which Knative retries.

use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;

use crate::cloudevents::{self, ExtValue, Reply, TRAIN_COMPLETED, TRAIN_REQUESTED};
use crate::error::ApiError;
use crate::routes::train::{body_or_error, execute, parse_job};
use crate::state::AppState;

/// Handles one `dev.fedge.train.requested` event.
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_or_error(body)?;
    let (event, mode) = cloudevents::parse(&headers, body)?;
    if event.ty != TRAIN_REQUESTED {
        return Err(ApiError::BadRequest(format!(
            "event type {:?} is not handled here; fn-train accepts {TRAIN_REQUESTED:?}",
            event.ty
        )));
    }
    if !event.data_is_json() {
        return Err(ApiError::UnsupportedMediaType(format!(
            "event data must be the JSON training request, got datacontenttype {:?}",
            event.datacontenttype.as_deref().unwrap_or("")
        )));
    }
    tracing::info!(event_id = %event.id, event_source = %event.source, ?mode, "training event received");
    let key = (event.source.clone(), event.id.clone());
    if let Some(reply) = state.replayed_reply(&key) {
        tracing::info!(event_id = %event.id, "redelivered event: replaying the reply sent before");
        return Ok(reply.into_response(mode));
    }
    let job = parse_job(&state, &event.data)?;
    drop(event.data); // the job holds the decoded model
    let in_flight = state.begin_event(&key)?;
    let out = execute(&state, job).await?;
    drop(in_flight);
    let s = &out.summary;
    let mut extensions = vec![
        ("round".to_owned(), ExtValue::from_u64(s.round)),
        ("clientid".to_owned(), ExtValue::Str(s.client_id.clone())),
        (
            "numexamples".to_owned(),
            ExtValue::from_u64(s.num_examples as u64),
        ),
    ];
    if !s.nonce.is_empty() {
        extensions.push(("nonce".to_owned(), ExtValue::Str(s.nonce.clone())));
    }
    let id = service::random::uuid_v4()
        .map_err(|e| ApiError::Internal(format!("no event id: the OS generator: {e}")))?;
    let reply = Reply {
        id,
        source: format!("/fedge/fn-train/{}", s.client_id),
        ty: TRAIN_COMPLETED.to_owned(),
        time: cloudevents::now_rfc3339(),
        subject: Some(format!("round/{}", s.round)),
        extensions,
        datacontenttype: "application/octet-stream".to_owned(),
        data: Bytes::from(out.weights),
    };
    state.remember_reply(key, reply.clone());
    Ok(reply.into_response(mode))
}
