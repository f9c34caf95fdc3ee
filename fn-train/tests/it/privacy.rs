//! Only weights and aggregate metrics leave the node: the shard's pixels carry a distinctive
//! byte pattern and its labels a distinctive sequence; neither appears in any response, and
//! every response's size is accounted for by the weights plus a bounded header.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::{self, Server};

const MARK: [u8; 12] = [
    0xDE, 0xAD, 0xBE, 0xEF, 0x5A, 0xFE, 0xED, 0x6E, 0x0D, 0xE0, 0xCA, 0xFE,
];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_response_carries_image_or_label_bytes() {
    let n = 96;
    let dir = common::shard_dir(n, |pixels, _| {
        for image in pixels.chunks_exact_mut(784) {
            image[..MARK.len()].copy_from_slice(&MARK); // top-left corner, every image
        }
    });
    let labels = common::mnist_splits().0.take(n).labels().to_vec();
    let label_run = &labels[..32];
    let server = Server::start(common::config(dir.path())).await;
    let spec = common::small_spec();
    let model = common::model_bytes(spec.clone(), 1);
    let body = common::request(&model, 1);
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let forbidden: Vec<Vec<u8>> = vec![
        MARK.to_vec(),
        b64(&MARK[..9]).into_bytes(),
        label_run.to_vec(),
        serde_json::to_vec(label_run).unwrap(),
    ];
    let mut bodies: Vec<(String, Vec<u8>)> = Vec::new();
    let mut collect = |what: &str, headers: &reqwest::header::HeaderMap, body: Vec<u8>| {
        let mut all = body;
        for (k, v) in headers {
            all.extend_from_slice(k.as_str().as_bytes());
            all.extend_from_slice(v.as_bytes());
        }
        bodies.push((what.to_owned(), all));
    };

    let r = server.train(&body).await;
    assert_eq!(r.status(), 200);
    let headers = r.headers().clone();
    let update = r.bytes().await.unwrap().to_vec();
    // Size: 8-byte length + header JSON + exactly the parameters as f32.
    let header_len = u64::from_le_bytes(update[..8].try_into().unwrap()) as usize;
    assert_eq!(update.len(), 8 + header_len + 4 * spec.num_params());
    assert!(
        header_len < 8 * 1024,
        "safetensors header of {header_len} bytes"
    );
    collect("safetensors", &headers, update);

    let r = server
        .http
        .post(server.url("/train"))
        .header("accept", "application/json")
        .json(&body)
        .send()
        .await
        .unwrap();
    let headers = r.headers().clone();
    let json_reply = r.bytes().await.unwrap().to_vec();
    let summary: Value = serde_json::from_slice(&json_reply).unwrap();
    let weights_b64 = summary["weights_base64"].as_str().unwrap().len();
    assert!(
        json_reply.len() < weights_b64 + 1024,
        "JSON reply beyond the weights"
    );
    collect("json", &headers, json_reply);

    let event = json!({"specversion": "1.0", "id": "p-1", "source": "/t",
                       "type": "dev.fedge.train.requested", "data": body});
    let r = server
        .http
        .post(server.url("/"))
        .header("content-type", "application/cloudevents+json")
        .body(event.to_string())
        .send()
        .await
        .unwrap();
    let headers = r.headers().clone();
    collect("cloudevent", &headers, r.bytes().await.unwrap().to_vec());

    for path in ["/status", "/metrics", "/healthz", "/readyz"] {
        let r = server.http.get(server.url(path)).send().await.unwrap();
        let headers = r.headers().clone();
        collect(path, &headers, r.bytes().await.unwrap().to_vec());
    }
    for (what, bytes) in &bodies {
        for needle in &forbidden {
            assert!(
                !contains(bytes, needle),
                "{what} reply contains shard bytes {needle:?}"
            );
        }
    }
    server.stop().await.unwrap();
}
