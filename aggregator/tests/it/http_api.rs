//! The store's HTTP surface: ETag, 304, versions, history, 404s.

use std::sync::Arc;

use aggregator::http::{AppState, app};
use aggregator::store::ModelStore;
use aggregator::strategy::{RoundSettings, StrategyKind};

use crate::fake::{Behaviour, coordinator, honest, serve, spawn_fake};

#[tokio::test]
async fn latest_has_etag_version_and_answers_304() {
    let dir = tempfile::tempdir().unwrap();
    let clients = vec![honest("a", 1.0, 3).await];
    let coord = coordinator(
        dir.path(),
        clients,
        RoundSettings::default(),
        StrategyKind::Fedavg,
    )
    .await;
    coord.run_round().await.unwrap();
    let addr = serve(app(AppState::new(Arc::clone(coord.store()), None))).await;
    let http = reqwest::Client::new();
    let r = http
        .get(format!("http://{addr}/v1/models/tiny/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], "\"tiny-v1\"");
    assert_eq!(r.headers()["x-model-version"], "1");
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    let body = r.bytes().await.unwrap();
    let w = engine::weights::from_bytes(body.to_vec()).unwrap();
    assert_eq!((w.meta.version, w.meta.round), (1, 1));

    let r = http
        .get(format!("http://{addr}/v1/models/tiny/latest"))
        .header("if-none-match", "\"tiny-v1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = http
        .get(format!("http://{addr}/v1/models/tiny/versions/0"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-model-version"], "0");
    let r = http
        .get(format!("http://{addr}/v1/models/tiny/versions/9"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .get(format!("http://{addr}/v1/models/other/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let rounds: serde_json::Value = http
        .get(format!("http://{addr}/v1/rounds"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rounds.as_array().unwrap().len(), 2);
    assert_eq!(rounds[1]["status"], "completed");
    let metrics = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("aggregator_model_version 1"), "{metrics}");
    // Without a coordinator, POST /v1/rounds is refused.
    let r = http
        .post(format!("http://{addr}/v1/rounds"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
}

#[tokio::test]
async fn empty_store_answers_404_json() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ModelStore::open(dir.path(), "mnist").unwrap());
    let addr = serve(app(AppState::new(store, None))).await;
    let r = reqwest::get(format!("http://{addr}/v1/models/mnist/latest"))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("no version"));
}

#[tokio::test]
async fn post_rounds_runs_rounds_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let clients = vec![honest("a", 1.0, 3).await];
    let coord = coordinator(
        dir.path(),
        clients,
        RoundSettings::default(),
        StrategyKind::Fedavg,
    )
    .await;
    let addr = serve(app(AppState::new(
        Arc::clone(coord.store()),
        Some(Arc::clone(&coord)),
    )
    .with_operator_token("operator")))
    .await;
    let http = reqwest::Client::new();
    let post = |token: Option<&'static str>| {
        let mut r = http
            .post(format!("http://{addr}/v1/rounds"))
            .json(&serde_json::json!({"rounds": 2}));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 401);
    // A client's token is not the operator's.
    assert_eq!(post(Some("token-a")).await.unwrap().status(), 401);
    assert_eq!(post(Some("operator")).await.unwrap().status(), 202);
    for _ in 0..200 {
        if coord.store().latest_version() == Some(2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(coord.store().latest_version(), Some(2));
}

#[tokio::test]
async fn control_routes_need_a_configured_operator_token() {
    let dir = tempfile::tempdir().unwrap();
    let coord = coordinator(
        dir.path(),
        vec![honest("a", 1.0, 3).await],
        RoundSettings::default(),
        StrategyKind::Fedavg,
    )
    .await;
    let addr = serve(app(AppState::new(
        Arc::clone(coord.store()),
        Some(Arc::clone(&coord)),
    )))
    .await;
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/v1/rounds"))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(coord.store().next_round(), 1, "no round ran");
}

#[tokio::test]
async fn a_started_run_can_be_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let clients = vec![
        honest("a", 1.0, 3).await,
        spawn_fake("slow", Behaviour::Hang).await,
    ];
    let settings = RoundSettings {
        client_timeout_secs: 60.0,
        round_timeout_secs: 60.0,
        ..RoundSettings::default()
    };
    let coord = coordinator(dir.path(), clients, settings, StrategyKind::Fedavg).await;
    let addr = serve(app(AppState::new(
        Arc::clone(coord.store()),
        Some(Arc::clone(&coord)),
    )
    .with_operator_token("operator")))
    .await;
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/v1/rounds");
    let r = http
        .post(&url)
        .bearer_auth("operator")
        .json(&serde_json::json!({"rounds": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    while !coord.is_running() {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(http.delete(&url).send().await.unwrap().status(), 401);
    let t = std::time::Instant::now();
    let r = http
        .delete(&url)
        .bearer_auth("operator")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    while coord.is_running() || coord.store().next_round() < 2 {
        assert!(t.elapsed().as_secs() < 10, "the round did not stop");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // The hung client was not waited for: the round failed as cancelled, and no other ran.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let history = coord.store().history();
    assert_eq!(history.len(), 2, "{history:#?}");
    let last = history.last().unwrap();
    assert_eq!(last.failure.as_deref(), Some("cancelled by the operator"));
    assert!(!coord.is_running());
}
