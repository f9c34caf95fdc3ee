//! Writes the fixtures of `bench/run.sh` into a folder: a Table 1 CNN weights file and
//! request bodies built from the MNIST test images (`MNIST_DIR`).
//!
//!     cargo run --release -p fn-serve --example bench_fixtures -- OUT_DIR
//!
//! Files: model.safetensors; one.json (1 image, V2 FP32 JSON); b500.json (500 images);
//! b10k.json (10,000 images, FP32 JSON as a Python client writes float32/255 values);
//! b10k_u8.bin + b10k_u8.hlen (10,000 images, UINT8 binary tensor data extension, and its
//! Inference-Header-Content-Length).

use std::io::Write;
use std::path::PathBuf;

use engine::weights::{self, WeightsMeta};
use engine::{Sequential, presets};

fn v2_json(images: &[u8]) -> String {
    let n = images.len() / 784;
    let mut s = String::with_capacity(images.len() * 12);
    s.push_str(&format!(
        r#"{{"inputs":[{{"name":"input","shape":[{n},1,28,28],"datatype":"FP32","data":["#
    ));
    for (i, &p) in images.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let v = f32::from(p) / 255.0;
        // Python's json.dumps of float(np.float32(v)): the f64 repr of the f32 value.
        s.push_str(&format!("{:?}", f64::from(v)));
    }
    s.push_str("]}]}");
    s
}

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "bench-fixtures".into()),
    );
    std::fs::create_dir_all(&out)?;
    let model = Sequential::new(presets::table1_cnn(), 42)?;
    let mut meta = WeightsMeta::new(presets::table1_cnn());
    meta.version = 1;
    weights::save(&out.join("model.safetensors"), model.params(), &meta)?;
    let dir = std::env::var("MNIST_DIR").unwrap_or_else(|_| "../shared/data/mnist".into());
    let (images, count, _, _) =
        engine::data::idx::read_images(&PathBuf::from(dir).join("t10k-images-idx3-ubyte.gz"))?;
    anyhow::ensure!(count >= 10_000, "need the 10,000 MNIST test images");
    std::fs::write(out.join("one.json"), v2_json(&images[..784]))?;
    std::fs::write(out.join("b500.json"), v2_json(&images[..500 * 784]))?;
    std::fs::write(out.join("b10k.json"), v2_json(&images[..10_000 * 784]))?;
    let header = r#"{"inputs":[{"name":"input","shape":[10000,784],"datatype":"UINT8","parameters":{"binary_data_size":7840000}}],"parameters":{"binary_data_output":true}}"#;
    let mut f = std::fs::File::create(out.join("b10k_u8.bin"))?;
    f.write_all(header.as_bytes())?;
    f.write_all(&images[..10_000 * 784])?;
    std::fs::write(out.join("b10k_u8.hlen"), header.len().to_string())?;
    println!("fixtures written to {}", out.display());
    Ok(())
}
