//! Response bodies: V2 (JSON, or JSON header + binary tensors) and V1 `predictions`.
//!
//! Floats are written in their shortest form that reads back to the same f32, so a
//! client recovers the model's probabilities bit for bit.

use super::{OUTPUT_CLASS, OUTPUT_PROBABILITIES};
use crate::error::ApiError;

/// Which tensors to return, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputSel {
    /// Return probabilities; `Some(true)` = as binary.
    pub probabilities: Option<bool>,
    /// Return classes; `Some(true)` = as binary.
    pub class: Option<bool>,
}

/// The prediction of a batch: probabilities [n, classes] row-major.
#[derive(Debug)]
pub struct Prediction {
    /// Probabilities, `n * classes` values.
    pub probs: Vec<f32>,
    /// Classes per image.
    pub classes: usize,
}

impl Prediction {
    /// Number of images.
    pub fn images(&self) -> usize {
        self.probs.len() / self.classes.max(1)
    }

    /// Argmax of each row (lowest index on ties).
    pub fn argmax(&self) -> impl Iterator<Item = i64> + '_ {
        self.probs.chunks_exact(self.classes.max(1)).map(|row| {
            let mut best = 0;
            for (i, &p) in row.iter().enumerate() {
                if p > row[best] {
                    best = i;
                }
            }
            best as i64
        })
    }

    /// Refuses non-finite output (never emitted as JSON; a 500 instead).
    pub fn check_finite(&self) -> Result<(), ApiError> {
        if self.probs.iter().all(|p| p.is_finite()) {
            Ok(())
        } else {
            Err(ApiError::Internal(
                "the model produced non-finite probabilities".into(),
            ))
        }
    }
}

fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn push_usize(out: &mut Vec<u8>, v: usize) {
    let _ = serde_json::to_writer(&mut *out, &v);
}

/// A V2 response body: `(body, json_len)`; `json_len` is `Some` when binary tensors
/// follow the JSON (the `Inference-Header-Content-Length` value).
pub fn v2_body(
    model_name: &str,
    model_version: &str,
    id: Option<&str>,
    pred: &Prediction,
    sel: OutputSel,
) -> (Vec<u8>, Option<usize>) {
    let n = pred.images();
    let mut out = Vec::with_capacity(200 + pred.probs.len() * 12 + n * 3);
    out.extend_from_slice(b"{\"model_name\":");
    push_json_str(&mut out, model_name);
    out.extend_from_slice(b",\"model_version\":");
    push_json_str(&mut out, model_version);
    if let Some(id) = id {
        out.extend_from_slice(b",\"id\":");
        push_json_str(&mut out, id);
    }
    out.extend_from_slice(b",\"outputs\":[");
    let mut binary: Vec<&str> = Vec::new();
    let mut first = true;
    if let Some(bin) = sel.probabilities {
        first = false;
        out.extend_from_slice(b"{\"name\":\"");
        out.extend_from_slice(OUTPUT_PROBABILITIES.as_bytes());
        out.extend_from_slice(b"\",\"datatype\":\"FP32\",\"shape\":[");
        push_usize(&mut out, n);
        out.push(b',');
        push_usize(&mut out, pred.classes);
        out.extend_from_slice(b"],");
        if bin {
            out.extend_from_slice(b"\"parameters\":{\"binary_data_size\":");
            push_usize(&mut out, pred.probs.len() * 4);
            out.extend_from_slice(b"}}");
            binary.push(OUTPUT_PROBABILITIES);
        } else {
            out.extend_from_slice(b"\"data\":");
            let _ = serde_json::to_writer(&mut out, &pred.probs);
            out.push(b'}');
        }
    }
    if let Some(bin) = sel.class {
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":\"");
        out.extend_from_slice(OUTPUT_CLASS.as_bytes());
        out.extend_from_slice(b"\",\"datatype\":\"INT64\",\"shape\":[");
        push_usize(&mut out, n);
        out.extend_from_slice(b"],");
        if bin {
            out.extend_from_slice(b"\"parameters\":{\"binary_data_size\":");
            push_usize(&mut out, n * 8);
            out.extend_from_slice(b"}}");
            binary.push(OUTPUT_CLASS);
        } else {
            out.extend_from_slice(b"\"data\":[");
            for (i, c) in pred.argmax().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut out, &c);
            }
            out.extend_from_slice(b"]}");
        }
    }
    out.extend_from_slice(b"]}");
    if binary.is_empty() {
        return (out, None);
    }
    let json_len = out.len();
    for name in binary {
        if name == OUTPUT_PROBABILITIES {
            out.reserve(pred.probs.len() * 4);
            for p in &pred.probs {
                out.extend_from_slice(&p.to_le_bytes());
            }
        } else {
            for c in pred.argmax() {
                out.extend_from_slice(&c.to_le_bytes());
            }
        }
    }
    (out, Some(json_len))
}

/// A V1 body: `{"<key>": [[p0, ..., p9], ...]}` (`key` = predictions or outputs).
pub fn v1_body(key: &str, pred: &Prediction) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + pred.probs.len() * 12);
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":[");
    for (i, row) in pred.probs.chunks_exact(pred.classes.max(1)).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut out, row);
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pred() -> Prediction {
        Prediction {
            probs: vec![0.1, 0.7, 0.2, 0.5, 0.5, 0.0],
            classes: 3,
        }
    }

    #[test]
    fn v2_json_body_reads_back() {
        let all = OutputSel {
            probabilities: Some(false),
            class: Some(false),
        };
        let (body, json_len) = v2_body("mnist", "3", Some("r\"1"), &pred(), all);
        assert!(json_len.is_none());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["id"], "r\"1");
        assert_eq!(v["model_version"], "3");
        assert_eq!(v["outputs"][0]["shape"], serde_json::json!([2, 3]));
        assert_eq!(v["outputs"][0]["data"][1].as_f64().unwrap() as f32, 0.7f32);
        assert_eq!(v["outputs"][1]["data"], serde_json::json!([1, 0]));
    }

    #[test]
    fn v2_binary_body_has_header_then_tensors() {
        let sel = OutputSel {
            probabilities: Some(true),
            class: Some(false),
        };
        let (body, json_len) = v2_body("mnist", "1", None, &pred(), sel);
        let json_len = json_len.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body[..json_len]).unwrap();
        assert_eq!(v["outputs"][0]["parameters"]["binary_data_size"], 24);
        assert!(v["outputs"][0].get("data").is_none());
        let probs: Vec<f32> = body[json_len..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(probs, pred().probs);
    }

    #[test]
    fn v1_body_is_one_row_per_instance() {
        let v: serde_json::Value =
            serde_json::from_slice(&v1_body("predictions", &pred())).unwrap();
        assert_eq!(v["predictions"].as_array().unwrap().len(), 2);
        assert_eq!(v["predictions"][1].as_array().unwrap().len(), 3);
    }
}
