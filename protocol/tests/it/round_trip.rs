//! Every message survives encoding and decoding unchanged, and the wire form is the one
//! the contract documents.

use std::collections::BTreeMap;

use protocol::{ModelRef, ReplyMeta, TrainRequest, keys};
use serde_json::json;

fn request() -> TrainRequest {
    TrainRequest {
        round: 3,
        nonce: "n-1".into(),
        model: ModelRef::url("http://aggregator/v1/models/mnist/versions/2"),
        epochs: 1,
        batch_size: 64,
        optimizer: json!({"type": "adam", "lr": 0.001}),
        seed: 42,
        proximal_mu: Some(0.01),
        deadline_ms: Some(120_000),
    }
}

#[test]
fn a_request_round_trips_and_keeps_the_documented_shape() {
    let r = request();
    let wire = serde_json::to_value(&r).unwrap();
    assert_eq!(
        wire,
        json!({"round": 3, "nonce": "n-1",
               "model": {"url": "http://aggregator/v1/models/mnist/versions/2"},
               "epochs": 1, "batch_size": 64, "optimizer": {"type": "adam", "lr": 0.001},
               "seed": 42, "proximal_mu": 0.01f32, "deadline_ms": 120000})
    );
    let back: TrainRequest = serde_json::from_value(wire).unwrap();
    assert_eq!(back, r);
}

#[test]
fn optional_request_fields_default_and_unknown_model_fields_are_refused() {
    let minimal = json!({"round": 1, "model": {"inline_base64": "AAAA"}, "epochs": 2,
                         "batch_size": 8, "optimizer": {"type": "sgd"}});
    let r: TrainRequest = serde_json::from_value(minimal).unwrap();
    assert_eq!(
        (r.nonce.as_str(), r.seed, r.proximal_mu, r.deadline_ms),
        ("", 0, None, None)
    );
    assert_eq!(r.model.inline_base64.as_deref(), Some("AAAA"));
    let bad = json!({"round": 1, "model": {"uri": "x"}, "epochs": 2, "batch_size": 8,
                     "optimizer": {}});
    assert!(serde_json::from_value::<TrainRequest>(bad).is_err());
}

#[test]
fn reply_metadata_round_trips() {
    let meta = ReplyMeta {
        client_id: "client-1".into(),
        round: 7,
        nonce: "abc".into(),
        num_examples: 20_000,
        epoch_loss: vec![0.5, 0.25],
        epoch_accuracy: vec![0.8, 0.9],
        train_seconds: 12.5,
    };
    let extra = meta.to_metadata();
    assert_eq!(extra[keys::ROUND], "7");
    assert_eq!(extra[keys::EPOCH_LOSS], "[0.5,0.25]");
    assert_eq!(ReplyMeta::from_metadata(&extra).unwrap(), meta);
}

#[test]
fn reply_metadata_errors_name_the_key() {
    let mut extra: BTreeMap<String, String> = ReplyMeta {
        client_id: "c".into(),
        round: 1,
        nonce: "n".into(),
        num_examples: 1,
        epoch_loss: vec![],
        epoch_accuracy: vec![],
        train_seconds: 0.0,
    }
    .to_metadata();
    extra.insert(keys::NUM_EXAMPLES.into(), "many".into());
    let e = ReplyMeta::from_metadata(&extra).unwrap_err().to_string();
    assert!(
        e.contains(keys::NUM_EXAMPLES) && e.contains("integer"),
        "{e}"
    );
    extra.remove(keys::NONCE);
    let e = ReplyMeta::from_metadata(&extra).unwrap_err().to_string();
    assert!(e.contains("lacks `fedge.nonce`"), "{e}");
    extra.insert(keys::NONCE.into(), "n".into());
    extra.insert(keys::NUM_EXAMPLES.into(), "1".into());
    extra.insert(keys::EPOCH_LOSS.into(), "{".into());
    let e = ReplyMeta::from_metadata(&extra).unwrap_err().to_string();
    assert!(e.contains("not a list"), "{e}");
}
