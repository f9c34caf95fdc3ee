//! Every bad input gets a 4xx with a JSON reason, and the service keeps serving.

use serde_json::json;

use crate::common::{Server, v2_f32_body};

const INFER: &str = "/v2/models/mnist/infer";

fn input(shape: serde_json::Value, dt: &str, data: serde_json::Value) -> String {
    json!({"inputs": [{"name": "input", "shape": shape, "datatype": dt, "data": data}]}).to_string()
}

#[tokio::test]
async fn bad_requests_get_4xx_json_and_the_server_keeps_serving() {
    let s = Server::start(|c| c.max_body_bytes = 4 * 1024 * 1024).await;
    let zeros = vec![0u8; 784];
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        ("malformed JSON", INFER, r#"{"inputs": [{"name": "input""#.into(), 400, "malformed JSON"),
        ("trailing garbage", INFER, format!("{} x", input(json!([1, 784]), "UINT8", json!(zeros))), 400, "malformed JSON"),
        ("not an object", INFER, "[1, 2]".into(), 400, "JSON object"),
        ("wrong datatype", INFER, input(json!([1, 784]), "INT32", json!(zeros)), 400, "datatype \"INT32\""),
        ("FP64", INFER, input(json!([1, 784]), "FP64", json!(zeros)), 400, "not supported"),
        ("data shorter than shape", INFER, input(json!([2, 784]), "UINT8", json!(zeros)), 400, "needs 1568"),
        ("data longer than shape", INFER, input(json!([1, 784]), "UINT8", json!(vec![0u8; 785])), 400, "\"data\" holds"),
        ("data longer than a shape given first", INFER, format!(r#"{{"inputs":[{{"name":"input","shape":[1,784],"datatype":"UINT8","data":{}}}]}}"#, json!(vec![0u8; 785])), 400, "more than the 784"),
        ("shape of another image size", INFER, input(json!([1, 1, 32, 32]), "UINT8", json!(zeros)), 400, "not accepted"),
        ("shape rank", INFER, input(json!([784]), "UINT8", json!(zeros)), 400, "not accepted"),
        ("element count overflows", INFER, input(json!([u64::MAX, 1u64 << 40, 784]), "UINT8", json!(zeros)), 400, "overflows"),
        ("overflow in a 4-d shape", INFER, input(json!([1u64 << 62, 1, 28, 28]), "FP32", json!([0.0])), 400, "overflows"),
        ("huge batch claimed", INFER, input(json!([1_000_000_000_000u64, 784]), "UINT8", json!(zeros)), 413, "maximum batch"),
        ("empty batch", INFER, input(json!([0, 784]), "UINT8", json!([])), 400, "no image"),
        ("negative dimension", INFER, input(json!([-1, 784]), "UINT8", json!(zeros)), 400, "non-negative"),
        ("NaN token", INFER, input(json!([1, 784]), "FP32", json!([0.0])).replace("[0.0]", "[NaN]"), 400, "finite"),
        ("Infinity by overflow", INFER, input(json!([1, 784]), "FP32", json!([0.0])).replace("[0.0]", "[1e999]"), 400, "finite"),
        ("FP32 above 1", INFER, input(json!([1, 784]), "FP32", json!([1.5])), 400, "[0, 1]"),
        ("FP32 negative", INFER, input(json!([1, 784]), "FP32", json!([-0.25])), 400, "[0, 1]"),
        ("UINT8 above 255", INFER, input(json!([1, 784]), "UINT8", json!([256])), 400, "0..255"),
        ("UINT8 fraction", INFER, input(json!([1, 784]), "UINT8", json!([1.5])), 400, "0..255"),
        ("UINT8 after data out of range", INFER, json!({"inputs": [{"data": [300], "name": "input", "shape": [1, 784], "datatype": "UINT8"}]}).to_string(), 400, "0..255"),
        ("string in data", INFER, input(json!([1, 784]), "FP32", json!(["0.5"])), 400, "numbers"),
        ("unknown input name", INFER, json!({"inputs": [{"name": "x", "shape": [1, 784], "datatype": "UINT8", "data": zeros}]}).to_string(), 400, "unknown input"),
        ("two inputs", INFER, json!({"inputs": [{"name": "input"}, {"name": "input"}]}).to_string(), 400, "exactly one input"),
        ("no inputs", INFER, json!({"id": "x"}).to_string(), 400, "no \"inputs\""),
        ("unknown output", INFER, json!({"inputs": [{"name": "input", "shape": [1, 784], "datatype": "UINT8", "data": zeros}], "outputs": [{"name": "logits"}]}).to_string(), 400, "unknown output"),
        ("shape as a string", INFER, json!({"inputs": [{"name": "input", "shape": "1,784", "datatype": "UINT8", "data": zeros}]}).to_string(), 400, "shape"),
        ("binary size without header", INFER, json!({"inputs": [{"name": "input", "shape": [1, 784], "datatype": "UINT8", "parameters": {"binary_data_size": 784}}]}).to_string(), 400, "Inference-Header-Content-Length"),
        ("unknown model", "/v2/models/fashion/infer", input(json!([1, 784]), "UINT8", json!(zeros)), 404, "not found"),
        ("unknown version", "/v2/models/mnist/versions/7/infer", input(json!([1, 784]), "UINT8", json!(zeros)), 404, "version"),
        ("V1 both keys", "/v1/models/mnist:predict", json!({"instances": [vec![0.0; 784]], "inputs": [vec![0.0; 784]]}).to_string(), 400, "exactly one"),
        ("V1 short instance", "/v1/models/mnist:predict", json!({"instances": [vec![0.0; 783]]}).to_string(), 400, "instance 0 holds 783"),
        ("V1 scalar instances", "/v1/models/mnist:predict", json!({"instances": vec![0.0; 784]}).to_string(), 400, "single number"),
        ("V1 out of range", "/v1/models/mnist:predict", json!({"instances": [vec![255.0; 784]]}).to_string(), 400, "[0, 1]"),
        ("V1 no data", "/v1/models/mnist:predict", json!({"signature_name": "x"}).to_string(), 400, "instances"),
        ("V1 unknown model", "/v1/models/fashion:predict", json!({"instances": [vec![0.0; 784]]}).to_string(), 404, "not found"),
        ("V1 classify", "/v1/models/mnist:classify", json!({"instances": [vec![0.0; 784]]}).to_string(), 501, "predict"),
    ];
    for (what, path, body, status, reason) in cases {
        let (st, v) = s.post_json(path, body).await;
        assert_eq!(st, status, "{what}: {v}");
        let msg = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no error in {v}"));
        assert!(msg.contains(reason), "{what}: {msg:?} lacks {reason:?}");
    }

    // Content types and sizes.
    let good = v2_f32_body(&vec![0.0; 784], &[1, 784]);
    let r = s
        .client
        .post(s.url(INFER))
        .header("content-type", "text/plain")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert!(
        r.json::<serde_json::Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("text/plain")
    );
    let r = s
        .client
        .post(s.url(INFER))
        .header("content-type", "application/octet-stream")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Over the body limit, announced by Content-Length and streamed without it.
    let big = vec![b' '; 5 * 1024 * 1024];
    let r = s
        .client
        .post(s.url(INFER))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(
        r.json::<serde_json::Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("limit")
    );
    let stream = futures_stream(big);
    let r = s
        .client
        .post(s.url(INFER))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    // Binary extension errors.
    for (header_len_delta, size, extra, reason) in [
        (0i64, 100usize, 0usize, "needs 784"),
        (0, 784, 10, "more binary data"),
        (0, 784, 0, "holds 0 bytes"),
        (100_000, 784, 0, "inside the"),
    ] {
        let header = json!({"inputs": [{"name": "input", "shape": [1, 784], "datatype": "UINT8", "parameters": {"binary_data_size": size}}]}).to_string();
        let mut body = header.clone().into_bytes();
        if reason != "holds 0 bytes" && reason != "inside the" {
            body.extend(std::iter::repeat_n(0u8, 784 + extra));
        }
        let r = s
            .client
            .post(s.url(INFER))
            .header(
                "inference-header-content-length",
                (header.len() as i64 + header_len_delta).to_string(),
            )
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{reason}");
        let msg = r.json::<serde_json::Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(msg.contains(reason), "{msg:?} lacks {reason:?}");
    }
    // FP32 binary with a NaN.
    let header = json!({"inputs": [{"name": "input", "shape": [1, 784], "datatype": "FP32", "parameters": {"binary_data_size": 3136}}]}).to_string();
    let mut body = header.clone().into_bytes();
    let mut px = vec![0f32; 784];
    px[5] = f32::NAN;
    body.extend(px.iter().flat_map(|v| v.to_le_bytes()));
    let r = s
        .client
        .post(s.url(INFER))
        .header("inference-header-content-length", header.len())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("element 5"));

    // Still serving, and nothing left reserved.
    let (st, _) = s.post_json(INFER, good).await;
    assert_eq!(st, 200);
    let text = s.metrics_text().await;
    assert!(text.contains("fn_serve_inflight_input_bytes 0"), "{text}");
    s.stop().await;
}

/// The decoded-input budget refuses (503 + Retry-After) rather than overrun memory.
#[tokio::test]
async fn memory_budget_refuses_with_503() {
    let s = Server::start(|c| c.max_inflight_bytes = 100_000).await;
    let body = json!({"inputs": [{"name": "input", "shape": [64, 784], "datatype": "FP32", "data": vec![0.0f32; 64 * 784]}]});
    let r = s
        .client
        .post(s.url(INFER))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    // Within the budget: fine.
    let (st, _) = s
        .post_json(INFER, v2_f32_body(&vec![0.0; 784 * 2], &[2, 784]))
        .await;
    assert_eq!(st, 200);
    s.stop().await;
}

fn futures_stream(
    data: Vec<u8>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    futures_util::stream::iter(chunks)
}
