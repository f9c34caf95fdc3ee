//! benches/benches/model.rs's train_step (b64, Adam) and infer (b32) workloads without
//! criterion, so callgrind can count them (BENCHMARKS.md, "Reshape before/after"):
//! `FEDGE_THREADS=1 valgrind --tool=callgrind <this example> train|infer32 REPS`.
use std::hint::black_box;
use std::ops::ControlFlow;

use benches::{TRAIN_BATCH, generated_images as images, train_step_config};
use engine::{Adam, AdamConfig, InferenceScratch, Pixels, Sequential};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let reps: usize = args[2].parse().expect("reps");
    assert_eq!(
        conv_kernels::threads::configured_threads(),
        1,
        "FEDGE_THREADS=1"
    );
    match args[1].as_str() {
        "train" => {
            let data = images(TRAIN_BATCH, 1);
            let mut model = Sequential::new(engine::presets::table1_cnn(), 0).expect("model");
            let mut opt = Adam::new(AdamConfig::default());
            let cfg = train_step_config();
            for _ in 0..reps {
                black_box(
                    model
                        .fit(&data, &cfg, &mut opt, &mut |_| ControlFlow::Continue(()))
                        .expect("fit"),
                );
            }
        }
        "infer32" => {
            let spec = engine::presets::table1_cnn();
            let model = Sequential::new(spec.clone(), 0).expect("model");
            // The bench draws 10,000 images and uses the first 32: the same bytes.
            let data = images(32, 2);
            let mut scratch = InferenceScratch::new(&spec);
            let mut out = vec![0.0f32; 32 * 10];
            for _ in 0..reps {
                model
                    .predict_with(Pixels::U8(black_box(data.images())), &mut out, &mut scratch)
                    .expect("predict");
                black_box(&out);
            }
        }
        other => panic!("unknown workload {other}"),
    }
}
