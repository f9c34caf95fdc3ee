//! A new model version is swapped in under concurrent load with zero failed requests,
//! and requests after the swap get the new model's answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::json;

use crate::common::{Server, assert_same, mnist_images, reference, v2_probs, write_model};

#[tokio::test]
async fn hot_swap_under_load_fails_no_request() {
    let s = Arc::new(Server::start(|c| c.poll_seconds = 0.02).await);
    s.wait_ready().await;
    let images = mnist_images(2);
    let want_v1 = reference(&s.model, &images);
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let saw_v2 = Arc::new(AtomicUsize::new(0));
    let body = json!({"inputs": [{"name": "input", "shape": [2, 784], "datatype": "UINT8", "data": images}]}).to_string();
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (s, stop, ok, saw_v2, body) = (
            s.clone(),
            stop.clone(),
            ok.clone(),
            saw_v2.clone(),
            body.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut v2_probs_seen = Vec::new();
            for _ in 0..5000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let (st, v) = s.post_json("/v2/models/mnist/infer", body.clone()).await;
                assert_eq!(st, 200, "a request failed during the swap: {v}");
                ok.fetch_add(1, Ordering::Relaxed);
                if v["model_version"] == "2" {
                    saw_v2.fetch_add(1, Ordering::Relaxed);
                    v2_probs_seen = v2_probs(&v);
                }
            }
            v2_probs_seen
        }));
    }
    // Let load build up, then publish version 2 by atomic rename over the served file.
    while ok.load(Ordering::Relaxed) < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let model_v2 = write_model(&s.model_path, 99, 2);
    let want_v2 = reference(&model_v2, &images);
    assert_ne!(want_v1, want_v2);
    for _ in 0..1000 {
        if saw_v2.load(Ordering::Relaxed) >= 20 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let probs = w.await.unwrap();
        assert_same(&probs, &want_v2);
    }
    assert!(saw_v2.load(Ordering::Relaxed) >= 20);
    let (_, meta) = s.get("/v2/models/mnist").await;
    assert_eq!(meta["versions"], json!(["2"]));
    let text = s.metrics_text().await;
    assert!(text.contains("fn_serve_model_version 2"));
    assert!(text.contains("fn_serve_model_loads_total 2"));
}
