//! A hostile caller or model host: poisoned input models are refused, fetch errors name the
//! failure's class and nothing of the remote answer, and wrong tokens are rate-limited.

use engine::weights::{self, WeightsMeta};
use engine::{ParamSet, Sequential};
use serde_json::{Value, json};

use crate::common::{self, Server};

/// A small-spec model whose first weight is `value`.
fn poisoned(value: f32) -> Vec<u8> {
    let spec = common::small_spec();
    let model = Sequential::new(spec.clone(), 1).unwrap();
    let mut params: ParamSet = model.params().clone();
    if let Some((_, t)) = params.iter_mut().next() {
        t.data_mut()[0] = value;
    }
    weights::to_bytes(&params, &WeightsMeta::new(spec)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_finite_or_absurd_input_weights_are_refused() {
    let dir = common::shard_dir(64, |_, _| {});
    let server = Server::start(common::config(dir.path())).await;
    for value in [f32::NAN, f32::INFINITY, 1e30, -2e6] {
        let r = server.train(&common::request(&poisoned(value), 1)).await;
        assert_eq!(r.status(), 422, "{value}");
        let e: Value = r.json().await.unwrap();
        assert!(e["error"].as_str().unwrap().contains("finite"), "{e}");
    }
    let r = server.train(&common::request(&poisoned(5e5), 1)).await;
    assert_eq!(r.status(), 200, "a large but plausible weight trains");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_errors_name_the_class_not_the_remote_content() {
    let dir = common::shard_dir(64, |_, _| {});
    let server = Server::start(common::config(dir.path())).await;
    let secret = b"SECRET-INTRANET-PAGE 0123456789".repeat(10);
    let len = secret.len().to_string();
    let url = common::model_store(secret).await;
    let mut body = common::request(&[], 1);
    body["model"] = json!({ "url": url });
    let r = server.train(&body).await;
    assert_eq!(r.status(), 422);
    let msg = r.text().await.unwrap();
    assert!(!msg.contains("SECRET") && !msg.contains(&len), "{msg}");
    assert!(msg.contains("not a usable safetensors"), "{msg}");
    body["model"] = json!({ "url": common::dead_url().await });
    let msg = server.train(&body).await.text().await.unwrap();
    assert!(msg.contains("could not be reached"), "{msg}");
    assert!(!msg.contains("onnect"), "no transport detail: {msg}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_are_rate_limited() {
    let dir = common::shard_dir(64, |_, _| {});
    let mut config = common::config(dir.path());
    config.token = Some("the-right-token".into());
    let server = Server::start(config).await;
    let model = common::model_bytes(common::small_spec(), 1);
    let send = |token: &'static str| {
        server
            .http
            .post(server.url("/train"))
            .bearer_auth(token)
            .json(&common::request(&model, 1))
            .send()
    };
    assert_eq!(send("the-right-token").await.unwrap().status(), 200);
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(send("a-guess").await.unwrap().status().as_u16());
    }
    assert_eq!(statuses[0], 401);
    assert!(statuses.contains(&429), "{statuses:?}");
    let r = send("the-right-token").await.unwrap();
    assert_eq!(
        r.status(),
        429,
        "locked out, even the right token is not compared"
    );
    assert!(r.headers().contains_key("retry-after"));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_architecture_is_pinned_and_a_model_that_cannot_fit_is_refused() {
    let dir = common::shard_dir(64, |_, _| {});
    let pinned = fn_train::Config {
        any_architecture: false,
        ..common::config(dir.path())
    };
    let server = Server::start(pinned).await;
    let small = common::model_bytes(common::small_spec(), 1);
    let r = server.train(&common::request(&small, 1)).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("architecture"));
    let table1 = common::model_bytes(engine::presets::table1_cnn(), 1);
    assert_eq!(
        server.train(&common::request(&table1, 1)).await.status(),
        200
    );
    server.stop().await.unwrap();

    // Any architecture, but not one whose buffers exceed the memory: the reported 0.9 MB
    // model of 20,000 1x1 filters.
    let server = Server::start(common::config(dir.path())).await;
    let huge = engine::ModelSpec::from_json(
        r#"{"name":"huge","input_shape":[1,28,28],"layers":[
            {"type":"Conv2D","name":"c","filters":20000,"kernel_size":[1,1]},
            {"type":"MaxPool2D","pool_size":[28,28]},
            {"type":"Flatten"},{"type":"Dense","name":"d","units":10},{"type":"Softmax"}]}"#,
    )
    .unwrap();
    let mut body = common::request(&common::model_bytes(huge, 1), 1);
    body["batch_size"] = 1024.into();
    let r = server.train(&body).await;
    let status = r.status();
    let msg = r.text().await.unwrap();
    assert!(
        status == 422 && (msg.contains("MiB") || msg.contains("batch_size")),
        "{status} {msg}"
    );
    server.stop().await.unwrap();
}
