//! The built binary drains on SIGTERM: a request in flight completes, then exit 0.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::common::{mnist_images, write_model};

#[tokio::test]
async fn sigterm_drains_in_flight_request_then_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    write_model(&path, 5, 1);
    // A free port: bind, note, release.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fn-serve"))
        .env("PORT", port.to_string())
        .env("MODEL_URI", &path)
        .env("FEDGE_CACHE_DIR", dir.path().join("cache"))
        .env("FEDGE_POLL_SECONDS", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..500 {
        if let Ok(r) = client.get(format!("{base}/v2/health/ready")).send().await
            && r.status() == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(ready, "the binary never became ready");

    // Send half of a request body, SIGTERM, then the rest: the request is in flight.
    let images = mnist_images(2);
    let body = json!({"inputs": [{"name": "input", "shape": [2, 784], "datatype": "UINT8", "data": images}]}).to_string().into_bytes();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let half = body.len() / 2;
    tx.send(Ok(body[..half].to_vec())).await.unwrap();
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    let req = tokio::spawn(
        client
            .post(format!("{base}/v2/models/mnist/infer"))
            .header("content-type", "application/json")
            .header("content-length", body.len())
            .body(reqwest::Body::wrap_stream(stream))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Still running: it waits for the request in flight.
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited before the in-flight request ended"
    );
    tx.send(Ok(body[half..].to_vec())).await.unwrap();
    drop(tx);
    let resp = req.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["outputs"][1]["shape"], json!([2]));
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    // New connections are refused now.
    assert!(
        client
            .get(format!("{base}/v2/health/live"))
            .send()
            .await
            .is_err()
    );
}
