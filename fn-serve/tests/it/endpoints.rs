//! Every endpoint answers as the protocols say.

use serde_json::json;

use crate::common::Server;

#[tokio::test]
async fn health_metadata_and_status_endpoints() {
    let s = Server::start(|_| {}).await;
    s.wait_ready().await;
    assert_eq!(s.get("/v2/health/live").await, (200, json!({"live": true})));
    assert_eq!(
        s.get("/v2/health/ready").await,
        (200, json!({"ready": true}))
    );
    assert_eq!(s.get("/healthz").await.0, 200);
    assert_eq!(s.get("/readyz").await.0, 200);

    for path in ["/v2", "/v2/"] {
        let (st, v) = s.get(path).await;
        assert_eq!(st, 200);
        assert_eq!(v["name"], "fn-serve");
        assert_eq!(v["extensions"], json!(["binary_tensor_data"]));
        assert!(v["version"].is_string());
    }

    let (st, v) = s.get("/v2/models/mnist").await;
    assert_eq!(st, 200);
    assert_eq!(v["name"], "mnist");
    assert_eq!(v["versions"], json!(["1"]));
    assert_eq!(v["platform"], "fedge_safetensors");
    assert_eq!(
        v["inputs"],
        json!([{"name": "input", "datatype": "FP32", "shape": [-1, 1, 28, 28]}])
    );
    assert_eq!(
        v["outputs"][0],
        json!({"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]})
    );
    assert_eq!(
        v["outputs"][1],
        json!({"name": "class", "datatype": "INT64", "shape": [-1]})
    );
    assert_eq!(s.get("/v2/models/mnist/versions/1").await.1, v);

    assert_eq!(
        s.get("/v2/models/mnist/ready").await,
        (200, json!({"name": "mnist", "ready": true}))
    );
    assert_eq!(s.get("/v2/models/mnist/versions/1/ready").await.0, 200);
    assert_eq!(
        s.get("/v1/models").await,
        (200, json!({"models": ["mnist"]}))
    );
    assert_eq!(
        s.get("/v1/models/mnist").await,
        (200, json!({"name": "mnist", "ready": true}))
    );

    // Unknown model, version, path, method: 404 / 405 with a JSON error.
    for path in [
        "/v2/models/other",
        "/v2/models/other/ready",
        "/v2/models/mnist/versions/9",
        "/v2/models/mnist/versions/9/ready",
        "/v1/models/other",
        "/nowhere",
    ] {
        let (st, v) = s.get(path).await;
        assert_eq!(st, 404, "{path}");
        assert!(v["error"].is_string(), "{path}: {v}");
    }
    let r = s
        .client
        .delete(s.url("/v2/models/mnist"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["error"].is_string());

    // A prediction, then the metrics show it.
    let body = crate::common::v2_f32_body(&vec![0.0; 784], &[1, 784]);
    assert_eq!(s.post_json("/v2/models/mnist/infer", body).await.0, 200);
    let text = s.metrics_text().await;
    assert!(
        text.contains(
            r#"fn_serve_requests_total{endpoint="/v2/models/{name}/infer",status="200"} 1"#
        ),
        "{text}"
    );
    // prometheus-client writes the bucket's `le` before the family's labels.
    assert!(
        text.contains(
            r#"fn_serve_request_duration_seconds_bucket{le="+Inf",endpoint="/v2/models/{name}/infer"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains("fn_serve_images_predicted_total 1"));
    assert!(text.contains("fn_serve_model_version 1"));
    assert!(text.contains("fn_serve_ready 1"));
    s.stop().await;
}

#[tokio::test]
async fn live_at_once_ready_only_after_a_model_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("late.safetensors");
    let mut cfg = fn_serve::Config::for_model(path.to_str().unwrap());
    cfg.poll_seconds = 0.05;
    cfg.cache_dir = dir.path().join("cache");
    let model = engine::Sequential::new(engine::presets::table1_cnn(), 1).unwrap();
    let s = Server::start_with(cfg, dir, path.clone(), model).await;
    assert_eq!(s.get("/v2/health/live").await.0, 200);
    let (st, v) = s.get("/v2/health/ready").await;
    assert_eq!(st, 503);
    assert!(v["error"].is_string());
    assert_eq!(s.get("/v2/models/mnist/ready").await.0, 503);
    assert_eq!(s.get("/v1/models/mnist").await.0, 503);
    let body = crate::common::v2_f32_body(&vec![0.0; 784], &[1, 784]);
    assert_eq!(s.post_json("/v2/models/mnist/infer", body).await.0, 503);
    crate::common::write_model(&path, 3, 4);
    s.wait_ready().await;
    assert_eq!(s.get("/v2/models/mnist").await.1["versions"], json!(["4"]));
    s.stop().await;
}

#[tokio::test]
async fn h2c_prior_knowledge_is_served() {
    let s = Server::start(|_| {}).await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = client.get(s.url("/v2/health/live")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    s.stop().await;
}

/// The model store side of the contract: ETag / If-None-Match / X-Model-Version.
#[tokio::test]
async fn remote_model_is_fetched_cached_and_polled_with_etag() {
    use axum::http::{HeaderMap, StatusCode};
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Store {
        current: Arc<Mutex<(u64, Vec<u8>)>>,
        not_modified: Arc<Mutex<usize>>,
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("store.safetensors");
    crate::common::write_model(&file, 11, 5);
    let store = Store::default();
    *store.current.lock().unwrap() = (5, std::fs::read(&file).unwrap());
    let app = axum::Router::new()
        .route(
            "/v1/models/mnist/latest",
            axum::routing::get(
                |axum::extract::State(st): axum::extract::State<Store>, h: HeaderMap| async move {
                    let (v, bytes) = st.current.lock().unwrap().clone();
                    let tag = format!("\"mnist-v{v}\"");
                    if h.get("if-none-match").and_then(|x| x.to_str().ok()) == Some(tag.as_str()) {
                        *st.not_modified.lock().unwrap() += 1;
                        return (StatusCode::NOT_MODIFIED, HeaderMap::new(), Vec::new());
                    }
                    let mut out = HeaderMap::new();
                    out.insert("etag", tag.parse().unwrap());
                    out.insert("x-model-version", v.to_string().parse().unwrap());
                    out.insert("content-type", "application/octet-stream".parse().unwrap());
                    (StatusCode::OK, out, bytes)
                },
            ),
        )
        .with_state(store.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let store_url = format!(
        "http://{}/v1/models/mnist/latest",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut cfg = fn_serve::Config::for_model(store_url);
    cfg.poll_seconds = 0.05;
    cfg.cache_dir = dir.path().join("cache");
    let model = engine::Sequential::new(engine::presets::table1_cnn(), 11).unwrap();
    let cache = cfg.cache_dir.clone();
    let s = Server::start_with(cfg, dir, file.clone(), model).await;
    s.wait_ready().await;
    assert_eq!(s.get("/v2/models/mnist").await.1["versions"], json!(["5"]));
    assert!(cache.join("mnist-v5.safetensors").exists());
    // Unchanged: polls get 304s.
    for _ in 0..200 {
        if *store.not_modified.lock().unwrap() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(*store.not_modified.lock().unwrap() >= 2);
    // A new version is picked up and the old cache file pruned.
    crate::common::write_model(&file, 12, 6);
    *store.current.lock().unwrap() = (6, std::fs::read(&file).unwrap());
    for _ in 0..300 {
        if s.get("/v2/models/mnist").await.1["versions"] == json!(["6"]) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(s.get("/v2/models/mnist").await.1["versions"], json!(["6"]));
    assert!(cache.join("mnist-v6.safetensors").exists());
    assert!(!cache.join("mnist-v5.safetensors").exists());
    s.stop().await;
}

/// The router answers without a socket (`app(state)` + `oneshot`).
#[tokio::test]
async fn app_answers_without_a_socket() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    crate::common::write_model(&path, 2, 9);
    let state =
        fn_serve::AppState::new(fn_serve::Config::for_model(path.to_str().unwrap())).unwrap();
    let app = fn_serve::app(state.clone());
    let ready = Request::builder()
        .uri("/v2/models/mnist/ready")
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.clone().oneshot(ready).await.unwrap().status(), 503);
    assert!(state.slot().refresh().await.unwrap());
    let ready = Request::builder()
        .uri("/v2/models/mnist/ready")
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.clone().oneshot(ready).await.unwrap().status(), 200);
    let infer = Request::builder()
        .method("POST")
        .uri("/v2/models/mnist/versions/9/infer")
        .header("content-type", "application/json")
        .body(Body::from(crate::common::v2_f32_body(
            &vec![0.5; 784],
            &[1, 1, 28, 28],
        )))
        .unwrap();
    let resp = app.oneshot(infer).await.unwrap();
    assert_eq!(resp.status(), 200);
    state.compute().shutdown();
}
