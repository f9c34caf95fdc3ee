//! fedge's side of the peer comparison (`benches/peers/run.sh` drives it).
//!
//! * `peer_bench export DIR` writes the Table 1 CNN (seed 0, then a few Adam steps so the
//!   weights are not the initial draw) as `DIR/model.safetensors`, 256 test images as
//!   `DIR/images.u8` (MNIST's first test images when `MNIST_DIR` is set, else generated),
//!   their labels as `DIR/labels.u8` and our class probabilities as `DIR/probs.f32`
//!   (little-endian): the peers load the same weights and must reproduce these.
//! * `peer_bench time DIR` times inference at batch 1, 32, 500 and 10,000 (u8 pixels through
//!   `predict_with`, as fn-serve calls it) and one Adam training step at batch 64, with the
//!   same clock and repetition rule as the Python peers (`peers.py`: median over calls of the
//!   process CPU time of one call, after a warm-up), and prints one JSON object per line; the first line is this
//!   core's FMA peak on the active SIMD tier (`conv_kernels::peak`).
//!
//! Run it with `FEDGE_THREADS=1` under `taskset -c 1`, as the script does.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use benches::{TRAIN_BATCH, generated_images, train_step_config};
use engine::weights::{self, WeightsMeta};
use engine::{Adam, AdamConfig, Dataset, InferenceScratch, Pixels, Sequential};

const EXPORT_IMAGES: usize = 256;
const INFER_BATCHES: [usize; 4] = [1, 32, 500, 10_000];

fn test_images(n: usize) -> Dataset {
    match engine::data::mnist::dir_from_env()
        .and_then(|d| engine::data::mnist::load(&d, engine::data::mnist::Split::Test))
    {
        Ok(d) => d.take(n),
        Err(_) => generated_images(n, 7),
    }
}

fn train_steps(model: &mut Sequential, data: &Dataset, opt: &mut Adam) -> engine::Result<()> {
    model.fit(data, &train_step_config(), opt, &mut |_| {
        ControlFlow::Continue(())
    })?;
    Ok(())
}

fn export(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let spec = engine::presets::table1_cnn();
    let mut model = Sequential::new(spec.clone(), 0)?;
    let mut opt = Adam::new(AdamConfig::default());
    train_steps(&mut model, &generated_images(4 * TRAIN_BATCH, 11), &mut opt)?;
    weights::save(
        &dir.join("model.safetensors"),
        model.params(),
        &WeightsMeta::new(spec),
    )?;
    let data = test_images(EXPORT_IMAGES);
    let mut probs = vec![0.0f32; data.len() * 10];
    model.predict(Pixels::U8(data.images()), &mut probs)?;
    std::fs::write(dir.join("images.u8"), data.images())?;
    std::fs::write(dir.join("labels.u8"), data.labels())?;
    let bytes: Vec<u8> = probs.iter().flat_map(|p| p.to_le_bytes()).collect();
    std::fs::write(dir.join("probs.f32"), bytes)?;
    println!("exported {} images to {}", data.len(), dir.display());
    Ok(())
}

/// CPU time of this process in seconds (`CLOCK_PROCESS_CPUTIME_ID`, what Python's
/// `time.process_time` reads): on a core shared with other processes it leaves out the time
/// slices they take, which the wall clock would charge to the call.
fn process_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec owned by this frame; the clock id is a
    // constant every Linux kernel supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Median process CPU time of one call of `f`: warm-up calls first, then calls until both
/// `min_calls` and `min_time` (wall) are reached; the rule `peers.py` applies to the peers.
fn median_call(mut f: impl FnMut(), warmup: usize, min_calls: usize, min_time: f64) -> f64 {
    for _ in 0..warmup {
        f();
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < min_calls || start.elapsed() < Duration::from_secs_f64(min_time) {
        let t = process_cpu();
        f();
        times.push(process_cpu() - t);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn time(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let threads = conv_kernels::threads::configured_threads();
    let k = conv_kernels::kernels();
    println!(
        r#"{{"system": "fedge", "what": "peak", "gflops": {:.3}, "isa": "{}"}}"#,
        k.peak_gflops(2_000_000, 30),
        k.isa().name()
    );
    let loaded = weights::load(&dir.join("model.safetensors"))?;
    let spec = loaded.meta.spec.clone();
    let mut model = Sequential::from_weights(loaded)?;
    let data = generated_images(10_000, 2);
    let mut scratch = InferenceScratch::new(&spec);
    for n in INFER_BATCHES {
        let mut out = vec![0.0f32; n * 10];
        let input = &data.images()[..n * 784];
        let (warmup, calls, secs) = if n >= 10_000 {
            (1, 3, 0.0)
        } else {
            (3, 10, 1.0)
        };
        let t = median_call(
            || {
                model
                    .predict_with(Pixels::U8(input), &mut out, &mut scratch)
                    .expect("predict");
            },
            warmup,
            calls,
            secs,
        );
        println!(
            r#"{{"system": "fedge", "what": "infer", "batch": {n}, "seconds": {t:.9}, "threads": {threads}}}"#
        );
    }
    let batch = data.take(TRAIN_BATCH);
    let mut opt = Adam::new(AdamConfig::default());
    let t = median_call(
        || train_steps(&mut model, &batch, &mut opt).expect("train step"),
        3,
        20,
        2.0,
    );
    println!(
        r#"{{"system": "fedge", "what": "train", "batch": {TRAIN_BATCH}, "seconds": {t:.9}, "threads": {threads}}}"#
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [cmd, dir] if cmd == "export" => export(&PathBuf::from(dir)),
        [cmd, dir] if cmd == "time" => time(&PathBuf::from(dir)),
        _ => {
            eprintln!("usage: peer_bench export DIR | peer_bench time DIR");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peer_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
