//! One job at a time, and every way a job is stopped: caller gone, deadline, shutdown.
//! Progress is observed through /status and /metrics, never by timing.

use crate::common::{self, Server};

/// A job that would run far longer than any test: 1000 epochs.
fn long_request() -> serde_json::Value {
    common::request(&common::model_bytes(common::small_spec(), 3), 1000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_request_gets_429_with_retry_after_while_health_answers() {
    let dir = common::shard_dir(256, |_, _| {});
    let server = Server::start(common::config(dir.path())).await;
    let first = {
        let (http, url, body) = (server.http.clone(), server.url("/train"), long_request());
        tokio::spawn(async move { http.post(url).json(&body).send().await })
    };
    server.wait_for_training().await;
    let second = server.train(&long_request()).await;
    assert_eq!(second.status(), 429);
    assert_eq!(second.headers()["retry-after"], "2");
    let error: serde_json::Value = second.json().await.unwrap();
    assert!(error["error"].as_str().unwrap().contains("already running"));
    // Health, readiness and metrics answer while training.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    assert_eq!(
        server.metric("fn_train_jobs_total{outcome=\"busy\"}").await,
        1.0
    );
    assert_eq!(server.metric("fn_train_job_running").await, 1.0);
    first.abort();
    server.wait_idle().await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnected_caller_stops_the_job_between_batches() {
    let dir = common::shard_dir(256, |_, _| {});
    let server = Server::start(common::config(dir.path())).await;
    let caller = {
        let (http, url, body) = (server.http.clone(), server.url("/train"), long_request());
        tokio::spawn(async move { http.post(url).json(&body).send().await })
    };
    server.wait_for_training().await;
    caller.abort(); // drops the connection
    server.wait_idle().await;
    assert_eq!(
        server
            .metric("fn_train_jobs_total{outcome=\"client_disconnected\"}")
            .await,
        1.0
    );
    assert_eq!(server.metric("fn_train_job_running").await, 0.0);
    // The job stopped: no batch is trained after the slot was freed...
    let batches = server.metric("fn_train_batches_total").await;
    assert!(
        batches < 1000.0 * 8.0,
        "{batches} batches: the job ran to the end"
    );
    assert_eq!(server.metric("fn_train_batches_total").await, batches);
    // ...and the node takes the next job.
    let model = common::model_bytes(common::small_spec(), 4);
    assert_eq!(
        server.train(&common::request(&model, 1)).await.status(),
        200
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_deadline_stops_the_job_with_408() {
    let dir = common::shard_dir(256, |_, _| {});
    let server = Server::start(common::config(dir.path())).await;
    let mut body = long_request();
    body["deadline_ms"] = 200.into();
    let response = server.train(&body).await;
    assert_eq!(response.status(), 408);
    let error: serde_json::Value = response.json().await.unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("deadline"),
        "{error}"
    );
    assert_eq!(
        server
            .metric("fn_train_jobs_total{outcome=\"deadline\"}")
            .await,
        1.0
    );
    assert!(server.status().await["job"].is_null());
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cancels_a_job_still_running_after_the_grace_period_and_exits_cleanly() {
    let dir = common::shard_dir(256, |_, _| {});
    let mut config = common::config(dir.path());
    config.grace_period_ms = 100;
    let server = Server::start(config).await;
    let caller = {
        let (http, url, body) = (server.http.clone(), server.url("/train"), long_request());
        tokio::spawn(async move { http.post(url).json(&body).send().await })
    };
    server.wait_for_training().await;
    server.stop().await.unwrap();
    let response = caller.await.unwrap().unwrap();
    assert_eq!(response.status(), 503);
    let error: serde_json::Value = response.json().await.unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("shutting down"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_job_finish_within_the_grace_period() {
    let dir = common::shard_dir(256, |_, _| {});
    let server = Server::start(common::config(dir.path())).await; // 60 s grace
    let caller = {
        let body = common::request(&common::model_bytes(common::small_spec(), 5), 3);
        let (http, url) = (server.http.clone(), server.url("/train"));
        tokio::spawn(async move { http.post(url).json(&body).send().await })
    };
    // Wait for a trained batch (counter, so a job that already finished is seen too).
    server
        .poll_until("a batch is trained", || async {
            server.metric("fn_train_batches_total").await > 0.0
        })
        .await;
    server.stop().await.unwrap();
    assert_eq!(caller.await.unwrap().unwrap().status(), 200);
}
