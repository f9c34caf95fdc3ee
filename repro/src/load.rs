//! The load test (the paper drove its functions with Apache JMeter): `wrk` against one
//! fn-serve container inside its pod limits, at several connection counts, with the
//! container's CFS throttling counters read from its cgroup around each run.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use engine::Dataset;

use crate::fig7::{self, READY};
use crate::instance::{Instance, Launcher};
use crate::results::{Codec, LoadResult, LoadRow};

/// The wrk script of fn-serve's own benchmark (POSTs the file named by `$BODY` as JSON).
pub fn post_lua() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fn-serve/bench/post.lua")
}

/// Installs wrk with apt-get when it is missing; returns its version line.
pub async fn ensure_wrk() -> anyhow::Result<String> {
    if version().await.is_none() {
        println!("wrk is missing: installing it with apt-get (Debian's package)");
        let ok = tokio::process::Command::new("sh")
            .args([
                "-c",
                "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk",
            ])
            .status()
            .await?
            .success();
        if !ok {
            bail!("apt-get install wrk failed");
        }
    }
    version().await.context("wrk does not run")
}

async fn version() -> Option<String> {
    // `wrk -v` prints its version and exits 1.
    let out = tokio::process::Command::new("wrk")
        .arg("-v")
        .output()
        .await
        .ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    text.lines()
        .find(|l| l.starts_with("wrk"))
        .map(|l| l.split(" Copyright").next().unwrap_or(l).trim().to_string())
}

/// Runs the load test against `image` (or a process, per `launcher`) serving
/// `model_dir/model.safetensors`.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    launcher: &Launcher,
    image: &str,
    model_dir: &Path,
    work: &Path,
    test: &Dataset,
    images: &[usize],
    connections: &[usize],
    seconds: u64,
) -> anyhow::Result<LoadResult> {
    let tool = ensure_wrk().await?;
    let http = reqwest::Client::new();
    let spec = fig7::serve_spec(image, model_dir);
    let container = Instance::start(launcher, &spec).await?;
    let rows = async {
        container
            .wait_ready(&http, READY, Duration::from_secs(60))
            .await?;
        let mut rows = Vec::new();
        for &n in images {
            let body = fig7::body(Codec::JsonFp32, test, n);
            let path = work.join(format!("load-{n}.json"));
            std::fs::write(&path, &body.bytes)?;
            fig7::infer(&http, &container.url, &body).await?;
            for &c in connections {
                let before = container.cpu_stat();
                let out = tokio::process::Command::new("wrk")
                    .env("BODY", &path)
                    .env("TARGET_PATH", "/v2/models/mnist/infer")
                    .args([
                        format!("-t{}", c.min(2)),
                        format!("-c{c}"),
                        format!("-d{seconds}s"),
                        "--timeout".into(),
                        "10s".into(),
                        "--latency".into(),
                        "-s".into(),
                        post_lua().display().to_string(),
                        container.url.clone(),
                    ])
                    .output()
                    .await
                    .context("running wrk")?;
                let after = container.cpu_stat();
                let text = String::from_utf8_lossy(&out.stdout);
                if !out.status.success() {
                    bail!(
                        "wrk failed: {}{}",
                        text,
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                let mut row = parse_wrk(&text).with_context(|| format!("wrk output:\n{text}"))?;
                row.images = n;
                row.connections = c;
                row.seconds = seconds;
                row.throttling = after.zip(before).map(|(a, b)| a.since(b));
                println!(
                    "  {n:>3} image(s), {c:>3} connection(s): {:.1} req/s, p50 {:.1} ms, p99 {:.1} ms, errors {}",
                    row.rps,
                    row.p50_ms,
                    row.p99_ms,
                    row.non_2xx + row.socket_errors
                );
                rows.push(row);
            }
        }
        anyhow::Ok(rows)
    }
    .await;
    container.remove().await;
    Ok(LoadResult { tool, rows: rows? })
}

/// A wrk duration (`812.00us`, `1.23ms`, `2.01s`, `1.5m`) in milliseconds.
fn duration_ms(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => v / 1e3,
        "ms" => v,
        "s" => v * 1e3,
        "m" => v * 60e3,
        "h" => v * 3600e3,
        _ => return None,
    })
}

/// Parses `wrk --latency` output (the row's identity fields are left for the caller).
pub fn parse_wrk(text: &str) -> anyhow::Result<LoadRow> {
    let mut row = LoadRow {
        images: 0,
        connections: 0,
        seconds: 0,
        requests: 0,
        rps: 0.0,
        p50_ms: f64::NAN,
        p90_ms: f64::NAN,
        p99_ms: f64::NAN,
        non_2xx: 0,
        socket_errors: 0,
        throttling: None,
    };
    let mut saw_rps = false;
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", d] => row.p50_ms = duration_ms(d).unwrap_or(f64::NAN),
            ["90%", d] => row.p90_ms = duration_ms(d).unwrap_or(f64::NAN),
            ["99%", d] => row.p99_ms = duration_ms(d).unwrap_or(f64::NAN),
            [n, "requests", "in", ..] => row.requests = n.parse().unwrap_or(0),
            ["Requests/sec:", r] => {
                row.rps = r.parse().unwrap_or(0.0);
                saw_rps = true;
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => row.non_2xx = n.parse().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                row.socket_errors = rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum();
            }
            _ => {}
        }
    }
    if !saw_rps {
        bail!("no Requests/sec line");
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Running 10s test @ http://127.0.0.1:1
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.34ms    2.00ms  40.00ms   90.00%
    Req/Sec   300.00     20.00   400.00     80.00%
  Latency Distribution
     50%  812.00us
     75%    5.00ms
     90%   13.50ms
     99%    1.20s
  6000 requests in 10.00s, 1.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:    599.50
Transfer/sec:    100.00KB
";

    #[test]
    fn parses_wrk_latency_output() {
        let r = parse_wrk(SAMPLE).unwrap();
        assert_eq!(r.requests, 6000);
        assert!((r.rps - 599.5).abs() < 1e-9);
        assert!((r.p50_ms - 0.812).abs() < 1e-9);
        assert!((r.p90_ms - 13.5).abs() < 1e-9);
        assert!((r.p99_ms - 1200.0).abs() < 1e-9);
        assert_eq!(r.non_2xx, 7);
        assert_eq!(r.socket_errors, 5);
        assert!(parse_wrk("garbage").is_err());
    }
}
