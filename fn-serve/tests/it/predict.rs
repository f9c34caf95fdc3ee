//! Predictions equal the engine's (to float rounding: the server's batching may differ from the
//! reference call's), over every protocol and encoding.

use serde_json::json;

use crate::common::{
    Server, argmax, assert_same, mnist_images, reference, to_f32, v2_f32_body, v2_probs,
};

#[tokio::test]
async fn v2_json_fp32_and_uint8_match_the_engine() {
    let s = Server::start(|_| {}).await;
    let images = mnist_images(5);
    let want = reference(&s.model, &images);

    // FP32, shape [N, 1, 28, 28], flat data.
    let (st, v) = s
        .post_json(
            "/v2/models/mnist/infer",
            v2_f32_body(&to_f32(&images), &[5, 1, 28, 28]),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["model_name"], "mnist");
    assert_eq!(v["model_version"], "1");
    assert_eq!(v["id"], "t-1");
    assert_eq!(v["outputs"][0]["shape"], json!([5, 10]));
    assert_eq!(v["outputs"][0]["datatype"], "FP32");
    assert_same(&v2_probs(&v), &want);
    let classes: Vec<i64> = want.chunks(10).map(argmax).collect();
    assert_eq!(v["outputs"][1]["datatype"], "INT64");
    assert_eq!(v["outputs"][1]["shape"], json!([5]));
    assert_eq!(v["outputs"][1]["data"], json!(classes));

    // FP32 nested to match the shape [N, 784], versioned path, datatype after data.
    let pixels = to_f32(&images);
    let nested: Vec<serde_json::Value> = pixels.chunks(784).map(|r| json!(r)).collect();
    let body = json!({"inputs": [{"name": "input", "data": nested, "shape": [5, 784], "datatype": "FP32"}]});
    let (st, v) = s
        .post_json("/v2/models/mnist/versions/1/infer", body.to_string())
        .await;
    assert_eq!(st, 200, "{v}");
    assert!(v.get("id").is_none());
    assert_same(&v2_probs(&v), &want);

    // UINT8, [N, 784], datatype given before and after the data.
    for body in [
        json!({"inputs": [{"name": "input", "shape": [5, 784], "datatype": "UINT8", "data": images}]}),
        json!({"inputs": [{"data": images, "name": "input", "shape": [5, 784], "datatype": "UINT8"}]}),
    ] {
        let (st, v) = s
            .post_json("/v2/models/mnist/infer", body.to_string())
            .await;
        assert_eq!(st, 200, "{v}");
        assert_same(&v2_probs(&v), &want);
    }
    s.stop().await;
}

#[tokio::test]
async fn output_subset_and_binary_outputs() {
    let s = Server::start(|_| {}).await;
    let images = mnist_images(3);
    let want = reference(&s.model, &images);
    let classes: Vec<i64> = want.chunks(10).map(argmax).collect();

    let body = json!({"inputs": [{"name": "input", "shape": [3, 784], "datatype": "UINT8", "data": images}],
                      "outputs": [{"name": "class"}]});
    let (st, v) = s
        .post_json("/v2/models/mnist/infer", body.to_string())
        .await;
    assert_eq!(st, 200);
    assert_eq!(v["outputs"].as_array().unwrap().len(), 1);
    assert_eq!(v["outputs"][0]["name"], "class");
    assert_eq!(v["outputs"][0]["data"], json!(classes));

    // Per-output binary_data: probabilities binary, class JSON.
    let body = json!({"inputs": [{"name": "input", "shape": [3, 784], "datatype": "UINT8", "data": images}],
                      "outputs": [{"name": "probabilities", "parameters": {"binary_data": true}}, {"name": "class"}]});
    let r = s
        .client
        .post(s.url("/v2/models/mnist/infer"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let json_len: usize = r.headers()["inference-header-content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let bytes = r.bytes().await.unwrap();
    let head: serde_json::Value = serde_json::from_slice(&bytes[..json_len]).unwrap();
    assert_eq!(head["outputs"][0]["parameters"]["binary_data_size"], 120);
    assert_eq!(head["outputs"][1]["data"], json!(classes));
    let probs: Vec<f32> = bytes[json_len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_same(&probs, &want);
    s.stop().await;
}

/// The binary tensor data extension for requests and responses, FP32 and UINT8.
#[tokio::test]
async fn binary_tensor_round_trip() {
    let s = Server::start(|_| {}).await;
    let images = mnist_images(4);
    let want = reference(&s.model, &images);
    let classes: Vec<i64> = want.chunks(10).map(argmax).collect();
    let f32_bytes: Vec<u8> = to_f32(&images)
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    for (dt, shape, data) in [
        ("UINT8", json!([4, 784]), images.clone()),
        ("FP32", json!([4, 1, 28, 28]), f32_bytes),
    ] {
        let header = json!({
            "id": "bin",
            "inputs": [{"name": "input", "shape": shape, "datatype": dt,
                        "parameters": {"binary_data_size": data.len()}}],
            "parameters": {"binary_data_output": true}
        })
        .to_string();
        let mut body = header.clone().into_bytes();
        body.extend_from_slice(&data);
        let r = s
            .client
            .post(s.url("/v2/models/mnist/infer"))
            .header("content-type", "application/octet-stream")
            .header("inference-header-content-length", header.len())
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{dt}");
        assert_eq!(r.headers()["content-type"], "application/octet-stream");
        let json_len: usize = r.headers()["inference-header-content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let bytes = r.bytes().await.unwrap();
        let head: serde_json::Value = serde_json::from_slice(&bytes[..json_len]).unwrap();
        assert_eq!(head["id"], "bin");
        assert_eq!(head["outputs"][0]["parameters"]["binary_data_size"], 160);
        assert_eq!(head["outputs"][1]["parameters"]["binary_data_size"], 32);
        let tail = &bytes[json_len..];
        assert_eq!(tail.len(), 160 + 32);
        let probs: Vec<f32> = tail[..160]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_same(&probs, &want);
        let got_classes: Vec<i64> = tail[160..]
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(got_classes, classes);
    }
    s.stop().await;
}

#[tokio::test]
async fn v1_instances_and_inputs_match_the_engine() {
    let s = Server::start(|_| {}).await;
    let images = mnist_images(3);
    let want = reference(&s.model, &images);
    let pixels = to_f32(&images);
    // Row format, each instance 28x28 nested; and flat 784; and named objects.
    let nested: Vec<serde_json::Value> = pixels
        .chunks(784)
        .map(|img| json!(img.chunks(28).map(|r| r.to_vec()).collect::<Vec<_>>()))
        .collect();
    let flat: Vec<serde_json::Value> = pixels.chunks(784).map(|r| json!(r)).collect();
    let named: Vec<serde_json::Value> = pixels.chunks(784).map(|r| json!({"input": r})).collect();
    for (body, key) in [
        (json!({"instances": nested}), "predictions"),
        (
            json!({"signature_name": "serving_default", "instances": flat}),
            "predictions",
        ),
        (json!({"instances": named}), "predictions"),
        (
            json!({"inputs": pixels.chunks(784).map(|r| r.to_vec()).collect::<Vec<_>>()}),
            "outputs",
        ),
        (
            json!({"inputs": {"input": pixels.chunks(784).map(|r| r.to_vec()).collect::<Vec<_>>()}}),
            "outputs",
        ),
    ] {
        let (st, v) = s
            .post_json("/v1/models/mnist:predict", body.to_string())
            .await;
        assert_eq!(st, 200, "{v}");
        let rows = v[key].as_array().unwrap();
        assert_eq!(rows.len(), 3);
        let got: Vec<f32> = rows
            .iter()
            .flat_map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
            })
            .collect();
        assert_same(&got, &want);
    }
    let (st, _) = s
        .post_json(
            "/v1/models/mnist/versions/1:predict",
            json!({"instances": flat}).to_string(),
        )
        .await;
    assert_eq!(st, 200);
    s.stop().await;
}

/// Concurrent single-image requests (dynamic batching fuses them) each get their own
/// answer, equal to the engine's.
#[tokio::test]
async fn concurrent_requests_each_get_their_own_prediction() {
    let s = std::sync::Arc::new(Server::start(|c| c.threads = 1).await);
    let images = mnist_images(24);
    let want = reference(&s.model, &images);
    let mut tasks = Vec::new();
    for i in 0..24 {
        let s = s.clone();
        let img = images[i * 784..(i + 1) * 784].to_vec();
        tasks.push(tokio::spawn(async move {
            let body = json!({"inputs": [{"name": "input", "shape": [1, 784], "datatype": "UINT8", "data": img}]});
            let (st, v) = s.post_json("/v2/models/mnist/infer", body.to_string()).await;
            assert_eq!(st, 200);
            v2_probs(&v)
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        assert_same(&t.await.unwrap(), &want[i * 10..(i + 1) * 10]);
    }
}

/// A request larger than one chunk (256 images) runs chunk by chunk, same answers.
#[tokio::test]
async fn large_request_spans_chunks() {
    let s = Server::start(|_| {}).await;
    let images = mnist_images(300);
    let want = reference(&s.model, &images);
    let body = json!({"inputs": [{"name": "input", "shape": [300, 784], "datatype": "UINT8", "data": images}]});
    let (st, v) = s
        .post_json("/v2/models/mnist/infer", body.to_string())
        .await;
    assert_eq!(st, 200);
    assert_same(&v2_probs(&v), &want);
    s.stop().await;
}
