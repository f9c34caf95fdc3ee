//! The model body fetched from the store: capped, streamed to disk, refused early.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use axum::body::Body;
use axum::response::Response;
use fn_serve::metrics::Metrics;
use fn_serve::model_slot::ModelSlot;

use crate::common::{load_failures as failures, write_model};

const CHUNK: usize = 64 * 1024;

/// What the fake store answers.
#[derive(Clone)]
struct Store {
    mode: Arc<AtomicUsize>,
    model: Arc<Vec<u8>>,
    /// Bytes the store handed to its connection (polled from the body stream).
    sent: Arc<AtomicU64>,
}

const GOOD: usize = 0;
/// 150 MiB announced by Content-Length.
const ANNOUNCED_LARGE: usize = 1;
/// 64 MiB chunked, no Content-Length.
const STREAMED_LARGE: usize = 2;

fn zeros(total: usize, sent: Arc<AtomicU64>) -> Body {
    let chunks = total / CHUNK;
    let stream = futures_util::stream::iter(0..chunks).map(move |_| {
        sent.fetch_add(CHUNK as u64, Ordering::Relaxed);
        Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; CHUNK]))
    });
    Body::from_stream(stream)
}

async fn latest(axum::extract::State(s): axum::extract::State<Store>) -> Response {
    let b = Response::builder().header("x-model-version", "7");
    match s.mode.load(Ordering::SeqCst) {
        GOOD => b.body(Body::from(s.model.as_ref().clone())).unwrap(),
        ANNOUNCED_LARGE => b
            .header("content-length", (150usize << 20).to_string())
            .body(zeros(150 << 20, s.sent.clone()))
            .unwrap(),
        _ => b.body(zeros(64 << 20, s.sent.clone())).unwrap(),
    }
}

use futures_util::StreamExt;

fn cache_entries(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_model_body_over_the_cap_is_refused_early_and_the_current_model_stays() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.safetensors");
    write_model(&file, 1, 7);
    let store = Store {
        mode: Arc::new(AtomicUsize::new(GOOD)),
        model: Arc::new(std::fs::read(&file).unwrap()),
        sent: Arc::new(AtomicU64::new(0)),
    };
    let app = axum::Router::new()
        .route("/v1/models/mnist/latest", axum::routing::get(latest))
        .with_state(store.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let cache = dir.path().join("cache");
    let metrics = Arc::new(Metrics::default());
    let cap = 4u64 << 20;
    let slot = ModelSlot::new(
        &format!("http://{addr}/v1/models/mnist/latest"),
        "mnist",
        cache.clone(),
        metrics.clone(),
    )
    .with_max_model_bytes(cap);
    assert!(slot.refresh().await.unwrap());
    assert_eq!(slot.get().unwrap().version, "7");
    assert_eq!(failures(&metrics), "0");

    // Content-Length above the cap: refused before the body is read.
    store.mode.store(ANNOUNCED_LARGE, Ordering::SeqCst);
    let err = slot.refresh().await.unwrap_err();
    assert!(
        format!("{err:#}").contains("larger than the cap"),
        "{err:#}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let sent = store.sent.swap(0, Ordering::SeqCst);
    assert!(sent < 16 << 20, "the store sent {sent} bytes");

    // No Content-Length: reading stops once the body passes the cap.
    store.mode.store(STREAMED_LARGE, Ordering::SeqCst);
    let err = slot.refresh().await.unwrap_err();
    assert!(format!("{err:#}").contains("stopped reading"), "{err:#}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let sent = store.sent.load(Ordering::SeqCst);
    // The 64 MiB body is cut off near the cap (loopback socket buffers hold a few MiB).
    assert!(sent < 32 << 20, "the store sent {sent} bytes of 64 MiB");

    // The current model is still served, both failures are counted, nothing partial cached.
    assert_eq!(slot.get().unwrap().version, "7");
    assert_eq!(failures(&metrics), "2");
    let entries = cache_entries(&cache);
    assert_eq!(
        entries,
        vec!["mnist-v7.safetensors".to_string()],
        "{entries:?}"
    );
}
