//! The serving check: once the rounds are done, classify the test set through fn-serve
//! (KServe V2 JSON, UINT8 pixels) and time single-image requests.

use std::time::{Duration, Instant};

use aggregator::store::ModelStore;
use anyhow::{Context as _, bail};
use engine::Dataset;

/// fn-serve's answers to the test set.
#[derive(Debug, serde::Serialize)]
pub struct ServingReport {
    /// Model version fn-serve had loaded.
    pub version: Option<u64>,
    /// Images classified.
    pub images: usize,
    /// Served accuracy, 0..1.
    pub accuracy: f64,
    /// Images per request in the accuracy pass.
    pub batch: usize,
    /// Latency percentiles (p50, p90, p99, max) of the batched requests, ms.
    pub batch_latency_ms: [f64; 4],
    /// Latency percentiles (p50, p90, p99, max) of single-image requests, ms.
    pub single_latency_ms: [f64; 4],
}

/// Waits until fn-serve serves the store's latest version, then classifies the test set
/// through it (V2 JSON, UINT8) and times single-image requests.
pub async fn serving_check(
    node: &crate::nodes::Node,
    test: &Dataset,
    store: &ModelStore,
    args: &super::LocalArgs,
) -> anyhow::Result<ServingReport> {
    let http = reqwest::Client::new();
    let want = store.latest_version();
    let version = wait_for_version(&http, &node.url, want).await;
    println!(
        "\nserving check: fn-serve at {} has version {}",
        node.url,
        version.map_or("?".into(), |v| v.to_string())
    );
    let url = format!("{}/v2/models/mnist/infer", node.url);
    let (rows, cols) = (test.rows(), test.cols());
    let batch = args.serve_batch.max(1);
    let mut correct = 0usize;
    let mut lat = Vec::new();
    let n = test.len();
    let mut start = 0;
    while start < n {
        let end = (start + batch).min(n);
        let images = &test.images()[start * rows * cols..end * rows * cols];
        let t = Instant::now();
        let classes = infer(&http, &url, images, end - start, rows, cols).await?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        correct += classes
            .iter()
            .zip(&test.labels()[start..end])
            .filter(|(c, l)| **c == i64::from(**l))
            .count();
        start = end;
    }
    let mut single = Vec::new();
    for i in 0..args.serve_single.min(n) {
        let t = Instant::now();
        infer(&http, &url, test.image(i), 1, rows, cols).await?;
        single.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let report = ServingReport {
        version,
        images: n,
        accuracy: correct as f64 / n.max(1) as f64,
        batch,
        batch_latency_ms: percentiles(&mut lat),
        single_latency_ms: percentiles(&mut single),
    };
    println!(
        "  served accuracy {:.2}% on {} images ({} per request)",
        report.accuracy * 100.0,
        n,
        batch
    );
    let p = report.batch_latency_ms;
    println!(
        "  latency, {batch}-image requests: p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        p[0], p[1], p[2], p[3]
    );
    let p = report.single_latency_ms;
    println!(
        "  latency, 1-image requests (x{}): p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        single.len(),
        p[0],
        p[1],
        p[2],
        p[3]
    );
    Ok(report)
}

async fn wait_for_version(http: &reqwest::Client, base: &str, want: Option<u64>) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = None;
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{base}/v2/models/mnist")).send().await
            && let Ok(v) = r.json::<serde_json::Value>().await
        {
            seen = v["versions"]
                .as_array()
                .and_then(|a| a.first())
                .and_then(|s| s.as_str())
                .and_then(|s| s.trim_start_matches('v').parse().ok());
            if seen.is_some() && (want.is_none() || seen >= want) {
                return seen;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    seen
}

async fn infer(
    http: &reqwest::Client,
    url: &str,
    images: &[u8],
    n: usize,
    rows: usize,
    cols: usize,
) -> anyhow::Result<Vec<i64>> {
    let body = serde_json::json!({
        "inputs": [{"name": "input", "shape": [n, 1, rows, cols], "datatype": "UINT8", "data": images}],
        "outputs": [{"name": "class"}],
    });
    let resp = http.post(url).json(&body).send().await?;
    let status = resp.status();
    let v: serde_json::Value = resp.json().await?;
    if !status.is_success() {
        bail!("fn-serve answered {status}: {v}");
    }
    let outputs = v["outputs"].as_array().context("no outputs")?;
    let class = outputs
        .iter()
        .find(|o| o["name"] == "class")
        .context("no `class` output")?;
    let data = class["data"]
        .as_array()
        .context("class output has no data")?;
    Ok(data.iter().filter_map(serde_json::Value::as_i64).collect())
}

fn percentiles(v: &mut [f64]) -> [f64; 4] {
    if v.is_empty() {
        return [0.0; 4];
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    [at(0.5), at(0.9), at(0.99), v[v.len() - 1]]
}
