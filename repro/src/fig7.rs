//! Figure 7: the serving function's response time against images per request, cold and
//! warm, inside fn-serve's pod limits (0.4 CPU / 100 MiB), for KServe V2 JSON with FP32
//! pixels and for the V2 binary tensor data extension with UINT8 pixels.
//!
//! Warm is a request to a running fn-serve container that has answered before; cold is
//! `docker run` of the fn-serve image timed to the reply of its first request (processes
//! without a usable Docker engine, [`Launcher`]).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::bail;
use engine::Dataset;

use crate::docker::{RunSpec, SERVE_POD};
use crate::instance::{Instance, Launcher};
use crate::results::{Codec, ServePoint, ServeResult};

/// A request body and its headers.
#[derive(Debug, Clone)]
pub struct Body {
    /// Bytes.
    pub bytes: Vec<u8>,
    /// Content-Type.
    pub content_type: &'static str,
    /// `Inference-Header-Content-Length`, for binary bodies.
    pub header_len: Option<usize>,
}

/// The body of a V2 request for the first `n` images of `test` (cycled past its end).
pub fn body(codec: Codec, test: &Dataset, n: usize) -> Body {
    let px = test.image_len();
    let pixels: Vec<u8> = (0..n)
        .flat_map(|i| test.image(i % test.len()).iter().copied())
        .collect();
    match codec {
        Codec::JsonFp32 => {
            let mut s = String::with_capacity(pixels.len() * 10 + 128);
            s.push_str(&format!(
                r#"{{"inputs":[{{"name":"input","shape":[{n},1,{},{}],"datatype":"FP32","data":["#,
                test.rows(),
                test.cols()
            ));
            for (i, &p) in pixels.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                // What Python's json.dumps writes for float(np.float32(p / 255)).
                s.push_str(&format!("{:?}", f64::from(f32::from(p) / 255.0)));
            }
            s.push_str("]}]}");
            Body {
                bytes: s.into_bytes(),
                content_type: "application/json",
                header_len: None,
            }
        }
        Codec::BinaryUint8 => {
            let header = format!(
                r#"{{"inputs":[{{"name":"input","shape":[{n},{px}],"datatype":"UINT8","parameters":{{"binary_data_size":{}}}}}],"parameters":{{"binary_data_output":true}}}}"#,
                pixels.len()
            );
            let header_len = header.len();
            let mut bytes = header.into_bytes();
            bytes.extend_from_slice(&pixels);
            Body {
                bytes,
                content_type: "application/octet-stream",
                header_len: Some(header_len),
            }
        }
    }
}

/// POSTs `body` to fn-serve's V2 route; the response time in seconds.
pub async fn infer(http: &reqwest::Client, url: &str, body: &Body) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let mut req = http
        .post(format!("{url}/v2/models/mnist/infer"))
        .header(reqwest::header::CONTENT_TYPE, body.content_type)
        .body(body.bytes.clone());
    if let Some(n) = body.header_len {
        req = req.header(fn_serve::routes::HEADER_LEN, n.to_string());
    }
    let resp = req.send().await?;
    let status = resp.status();
    let reply = resp.bytes().await?;
    let seconds = t0.elapsed().as_secs_f64();
    if !status.is_success() {
        bail!(
            "fn-serve answered {status}: {}",
            String::from_utf8_lossy(&reply[..reply.len().min(300)])
        );
    }
    Ok(seconds)
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The fn-serve container of the run: the model folder mounted read-only.
pub fn serve_spec<'a>(image: &'a str, model_dir: &'a Path) -> RunSpec<'a> {
    RunSpec {
        image,
        service: "fn-serve",
        limits: SERVE_POD,
        mounts: vec![(model_dir, "/model")],
        env: vec![
            ("MODEL_URI", "/model/model.safetensors".into()),
            ("FEDGE_POLL_SECONDS", "0".into()),
            ("RUST_LOG", "warn".into()),
        ],
    }
}

/// The readiness route of fn-serve.
pub const READY: &str = "/v2/health/ready";

/// Runs Figure 7 against `image` (or processes, per `launcher`) serving
/// `model_dir/model.safetensors`.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    launcher: &Launcher,
    image: &str,
    model_dir: &Path,
    model: String,
    test: &Dataset,
    sizes: &[usize],
    cold_reps: usize,
    warm_reps: usize,
) -> anyhow::Result<ServeResult> {
    let http = reqwest::Client::new();
    let spec = serve_spec(image, model_dir);
    let ready = Duration::from_secs(60);
    let mut points = Vec::new();
    for codec in Codec::ALL {
        let warm = Instance::start(launcher, &spec).await?;
        let swept = async {
            warm.wait_ready(&http, READY, ready).await?;
            infer(&http, &warm.url, &body(codec, test, 1)).await?;
            let mut points = Vec::new();
            for &n in sizes {
                let b = body(codec, test, n);
                let mut errors = 0;
                let mut warm_s = Vec::new();
                for _ in 0..warm_reps {
                    match infer(&http, &warm.url, &b).await {
                        Ok(s) => warm_s.push(s),
                        Err(e) => {
                            errors += 1;
                            eprintln!("  warm {} x{n}: {e:#}", codec.label());
                        }
                    }
                }
                let mut cold_s = Vec::new();
                for _ in 0..cold_reps {
                    let t0 = Instant::now();
                    let cold = Instance::start(launcher, &spec).await?;
                    let r = async {
                        cold.wait_ready(&http, READY, ready).await?;
                        infer(&http, &cold.url, &b).await
                    }
                    .await;
                    let s = t0.elapsed().as_secs_f64();
                    cold.remove().await;
                    match r {
                        Ok(_) => cold_s.push(s),
                        Err(e) => {
                            errors += 1;
                            eprintln!("  cold {} x{n}: {e:#}", codec.label());
                        }
                    }
                }
                let warm_max = warm_s.iter().copied().fold(f64::NAN, f64::max);
                let point = ServePoint {
                    codec,
                    images: n,
                    body_bytes: b.bytes.len(),
                    cold_seconds: median(&mut cold_s),
                    warm_seconds: median(&mut warm_s),
                    warm_max_seconds: warm_max,
                    reps: (cold_s.len(), warm_s.len()),
                    errors,
                };
                println!(
                    "  {:<12} {n:>5} image(s): cold {:.3} s, warm {:.3} s ({} bytes{})",
                    codec.label(),
                    point.cold_seconds,
                    point.warm_seconds,
                    point.body_bytes,
                    if errors > 0 {
                        format!(", {errors} error(s)")
                    } else {
                        String::new()
                    }
                );
                points.push(point);
            }
            anyhow::Ok(points)
        }
        .await;
        warm.remove().await;
        points.extend(swept?);
    }
    Ok(ServeResult {
        points,
        image: crate::instance::describe(launcher, image).await,
        model,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        Dataset::new(vec![0, 255, 128, 1], vec![3], 2, 2).unwrap()
    }

    #[test]
    fn bodies_carry_every_pixel() {
        let j = body(Codec::JsonFp32, &tiny(), 2);
        let v: serde_json::Value = serde_json::from_slice(&j.bytes).unwrap();
        assert_eq!(v["inputs"][0]["shape"], serde_json::json!([2, 1, 2, 2]));
        assert_eq!(v["inputs"][0]["data"].as_array().unwrap().len(), 8);
        assert_eq!(v["inputs"][0]["data"][1], 1.0);
        let b = body(Codec::BinaryUint8, &tiny(), 2);
        let n = b.header_len.unwrap();
        let h: serde_json::Value = serde_json::from_slice(&b.bytes[..n]).unwrap();
        assert_eq!(h["inputs"][0]["parameters"]["binary_data_size"], 8);
        assert_eq!(&b.bytes[n..], &[0, 255, 128, 1, 0, 255, 128, 1]);
    }
}
