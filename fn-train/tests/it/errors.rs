//! Auth and every bad input: a JSON error naming the problem, and the node stays up.

use serde_json::{Value, json};

use crate::common::{self, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_is_required_on_training_routes_only() {
    let dir = common::shard_dir(64, |_, _| {});
    let mut config = common::config(dir.path());
    config.token = Some("s3cret-token".into());
    let server = Server::start(config).await;
    let body = common::request(&common::model_bytes(common::small_spec(), 1), 1);
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Basic s3cret-token"),
        Some("Bearer s3cret-tokenX"),
    ] {
        for path in ["/train", "/"] {
            let mut req = server.http.post(server.url(path)).json(&body);
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 401, "{path} with {auth:?}");
            assert_eq!(r.headers()["www-authenticate"], "Bearer");
            let e: Value = r.json().await.unwrap();
            assert!(e["error"].as_str().unwrap().contains("bearer"));
        }
    }
    for path in ["/healthz", "/readyz", "/metrics", "/status"] {
        assert_eq!(
            server
                .http
                .get(server.url(path))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let r = server
        .http
        .post(server.url("/train"))
        .bearer_auth("s3cret-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_is_a_json_error_naming_it_and_the_node_stays_up() {
    let dir = common::shard_dir(64, |_, _| {});
    let mut config = common::config(dir.path());
    config.max_epochs = 50;
    config.max_batch_size = 512;
    config.model_fetch_timeout_ms = 2_000;
    let server = Server::start(config).await;
    let model = common::model_bytes(common::small_spec(), 1);
    let good = common::request(&model, 1);
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        v
    };
    let dead = common::dead_url().await;
    let missing = common::model_store(Vec::new())
        .await
        .replace("versions/1", "versions/9");
    let other_arch = {
        let mut spec = common::small_spec();
        spec.input_shape = [1, 14, 14];
        common::model_bytes(spec, 1)
    };
    let b64 = |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b);
    let cases: Vec<(Value, u16, &str)> = vec![
        (edit(&|v| v["epochs"] = 0.into()), 422, "epochs"),
        (edit(&|v| v["epochs"] = 51.into()), 422, "epochs"),
        (edit(&|v| v["epochs"] = json!(1e300)), 422, "epochs"),
        (edit(&|v| v["batch_size"] = 0.into()), 422, "batch_size"),
        (
            edit(&|v| v["batch_size"] = 100_000.into()),
            422,
            "batch_size",
        ),
        (
            edit(&|v| v["optimizer"] = json!({"type": "adam", "lr": 1e39})),
            422,
            "finite",
        ),
        (
            edit(&|v| v["optimizer"] = json!({"type": "sgd", "lr": -0.1})),
            422,
            "lr",
        ),
        (
            edit(&|v| v["optimizer"] = json!({"type": "rmsprop", "lr": 0.1})),
            422,
            "unknown optimizer",
        ),
        (
            edit(&|v| v["optimizer"] = json!({"type": "adam", "lr": "fast"})),
            422,
            "lr",
        ),
        (
            edit(&|v| v["proximal_mu"] = json!(-1.0)),
            422,
            "proximal_mu",
        ),
        (
            edit(&|v| drop(v.as_object_mut().unwrap().remove("model"))),
            422,
            "missing field `model`",
        ),
        (
            edit(&|v| drop(v.as_object_mut().unwrap().remove("epochs"))),
            422,
            "missing field `epochs`",
        ),
        (edit(&|v| v["model"] = json!({})), 422, "exactly one"),
        (
            edit(&|v| v["model"] = json!({"inline_base64": "***"})),
            400,
            "base64",
        ),
        (
            edit(&|v| v["model"] = json!({"inline_base64": b64(b"not safetensors")})),
            422,
            "weights",
        ),
        (
            edit(&|v| v["model"] = json!({"inline_base64": b64(&other_arch)})),
            422,
            "input shape",
        ),
        (
            edit(&|v| v["model"] = json!({"url": dead.clone()})),
            502,
            "could not be reached",
        ),
        (
            edit(&|v| v["model"] = json!({"url": missing.clone()})),
            502,
            "error status",
        ),
        (
            edit(&|v| v["model"] = json!({"url": "ftp://x/m"})),
            422,
            "scheme",
        ),
    ];
    for (body, status, needle) in &cases {
        let r = server.train(body).await;
        assert_eq!(r.status().as_u16(), *status, "case {needle}");
        let e: Value = r.json().await.unwrap();
        let msg = e["error"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "case {needle}: {msg}");
    }
    // Bodies that are not JSON at all, or not JSON-typed.
    let raw = |ct: &'static str, body: &'static str| {
        server
            .http
            .post(server.url("/train"))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    assert_eq!(
        raw("application/json", "{\"round\": ")
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(raw("application/json", "").await.unwrap().status(), 400);
    assert_eq!(raw("text/plain", "{}").await.unwrap().status(), 415);
    let huge = vec![b'a'; 17 << 20];
    let r = server
        .http
        .post(server.url("/train"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = server.http.get(server.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    // Still up, the slot is free, and a good request trains.
    assert_eq!(
        server
            .http
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(server.status().await["job"].is_null());
    assert_eq!(server.train(&good).await.status(), 200);
    assert!(
        server
            .metric("fn_train_jobs_total{outcome=\"invalid\"}")
            .await
            >= 10.0
    );
    assert_eq!(
        server
            .metric("fn_train_jobs_total{outcome=\"fetch_failed\"}")
            .await,
        2.0
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_until_the_shard_loads_and_a_bad_shard_fails_start_up() {
    let empty = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let result = fn_train::run(
        common::config(empty.path()),
        listener,
        std::future::pending(),
    )
    .await;
    let err = format!("{:#}", result.unwrap_err());
    assert!(err.contains("idx3-ubyte"), "{err}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let result = fn_train::run(
        fn_train::Config::default(),
        listener,
        std::future::pending(),
    )
    .await;
    assert!(format!("{:#}", result.unwrap_err()).contains("no data"));
}
