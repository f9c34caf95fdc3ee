//! fn-serve's request decoding, without HTTP or inference: a 500-image body parsed by the
//! streaming tokenizer into the decoders' pixel buffers, fed in 64 KiB chunks as a body
//! arrives. The JSON bodies are what the 500-image latency target of fn-serve spends its
//! time on before inference. Throughput is in images.
//!
//! Run: `taskset -c 1 cargo bench -p benches --bench decode`

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fn_serve::codec::ModelInput;
use fn_serve::codec::images::Budget;
use fn_serve::codec::json::Tokenizer;
use fn_serve::codec::v1::V1Decoder;
use fn_serve::codec::v2::V2Decoder;

const IMAGES: usize = 500;
const MODEL: ModelInput = ModelInput { shape: [1, 28, 28] };
const CHUNK: usize = 64 * 1024;

/// `IMAGES` deterministic pixel values, each written by `fmt`, comma-separated.
fn values(fmt: impl Fn(&mut String, usize)) -> String {
    let mut out = String::new();
    for i in 0..IMAGES * 784 {
        if i > 0 {
            out.push(',');
        }
        fmt(&mut out, i);
    }
    out
}

fn v2_body(datatype: &str, data: &str) -> Vec<u8> {
    format!(
        r#"{{"inputs":[{{"name":"input","shape":[{IMAGES},1,28,28],"datatype":"{datatype}","data":[{data}]}}]}}"#
    )
    .into_bytes()
}

fn bench_decode(c: &mut Criterion) {
    let f32_data = values(|s, i| {
        let _ = write!(s, "{}", ((i * 7919) % 256) as f32 / 255.0);
    });
    let u8_data = values(|s, i| {
        let _ = write!(s, "{}", (i * 7919) % 256);
    });
    let bodies = [
        ("v2_fp32", v2_body("FP32", &f32_data)),
        ("v2_uint8", v2_body("UINT8", &u8_data)),
        (
            "v1_inputs",
            format!(r#"{{"inputs":[{f32_data}]}}"#).into_bytes(),
        ),
    ];
    let budget = Budget::new(64 << 20);
    let mut g = c.benchmark_group("decode_500_images");
    g.throughput(Throughput::Elements(IMAGES as u64));
    for (name, body) in &bodies {
        g.bench_with_input(BenchmarkId::from_parameter(name), body, |b, body| {
            b.iter(|| {
                let mut tok = Tokenizer::new();
                if name.starts_with("v2") {
                    let mut dec = V2Decoder::new(MODEL, IMAGES, budget.clone());
                    for piece in body.chunks(CHUNK) {
                        tok.feed(piece, &mut dec).expect("valid body");
                    }
                    tok.finish(&mut dec).expect("valid body");
                    black_box(dec.finish(false).expect("valid request").images)
                } else {
                    let mut dec = V1Decoder::new(MODEL, IMAGES, budget.clone());
                    for piece in body.chunks(CHUNK) {
                        tok.feed(piece, &mut dec).expect("valid body");
                    }
                    tok.finish(&mut dec).expect("valid body");
                    black_box(dec.finish().expect("valid request").images)
                }
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
