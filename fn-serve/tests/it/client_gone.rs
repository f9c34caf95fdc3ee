//! Work for a client that has gone stops at the next chunk.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::common::{Server, mnist_images};

fn metric(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
        .trim()
        .parse()
        .unwrap()
}

fn images_predicted(metrics: &str) -> u64 {
    metric(metrics, "fn_serve_images_predicted_total")
}

/// UINT8 bytes of the large request's 10,000 images, once decoded.
const LARGE_INPUT_BYTES: u64 = 10_000 * 28 * 28;

/// Waits until the server holds the large request's whole decoded input: it is then being
/// computed (the bytes are released when its computation ends). A fixed 700 ms sleep raced
/// the engine: on a fast CPU (Zen 5) the 10,000 images were computed before it ended.
async fn wait_until_computing(s: &Server) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while metric(&s.metrics_text().await, "fn_serve_inflight_input_bytes") < LARGE_INPUT_BYTES {
        assert!(
            std::time::Instant::now() < deadline,
            "the large request was never held decoded"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn a_large_request_whose_client_has_gone_stops_and_frees_the_thread() {
    let s = Server::start(|c| c.threads = 1).await;
    s.wait_ready().await;
    let before = images_predicted(&s.metrics_text().await);

    // 10,000 UINT8 images over a raw connection, closed while they are computed.
    let px = mnist_images(10_000);
    let data: Vec<String> = px.iter().map(|v| v.to_string()).collect();
    let body = format!(
        r#"{{"inputs":[{{"name":"input","shape":[10000,1,28,28],"datatype":"UINT8","data":[{}]}}]}}"#,
        data.join(",")
    );
    let addr = s.url("").trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v2/models/mnist/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(body.as_bytes()).await.unwrap();
    wait_until_computing(&s).await;
    drop(conn);

    // One small request on the single compute thread: it runs after the big one stopped.
    let small = crate::common::v2_f32_body(&crate::common::to_f32(&px[..784]), &[1, 1, 28, 28]);
    let (status, _) = s.post_json("/v2/models/mnist/infer", small).await;
    assert_eq!(status, 200);
    let after = images_predicted(&s.metrics_text().await);
    assert_eq!(
        after - before,
        1,
        "the 10,000 images of a client that had gone were computed to the end"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_small_request_does_not_wait_for_a_large_one_to_finish() {
    let s = std::sync::Arc::new(Server::start(|c| c.threads = 1).await);
    s.wait_ready().await;
    let px = mnist_images(10_000);
    let data: Vec<String> = px.iter().map(|v| v.to_string()).collect();
    let body = format!(
        r#"{{"inputs":[{{"name":"input","shape":[10000,1,28,28],"datatype":"UINT8","data":[{}]}}]}}"#,
        data.join(",")
    );
    let big = {
        let s = s.clone();
        tokio::spawn(async move {
            let (status, _) = s.post_json("/v2/models/mnist/infer", body).await;
            status
        })
    };
    wait_until_computing(&s).await;
    let small = crate::common::v2_f32_body(&crate::common::to_f32(&px[..784]), &[1, 1, 28, 28]);
    let t = std::time::Instant::now();
    let (status, _) = s.post_json("/v2/models/mnist/infer", small).await;
    let waited = t.elapsed();
    eprintln!("small request behind a 10,000-image one answered in {waited:?}");
    assert_eq!(status, 200);
    assert_eq!(big.await.unwrap(), 200);
    let big_left = t.elapsed();
    // Before: the small one waited for the whole large one (4.3 s of 4.4 s in a debug build).
    assert!(
        waited * 4 < big_left,
        "the small request waited {waited:?}; the large one ended {big_left:?} after it was sent"
    );
}
