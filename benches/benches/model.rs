//! Model benchmarks of the Table 1 CNN on one thread: a full training step at batch 64
//! (forward, backward, Adam update) and inference at batch 1, 32, 500 and 10,000 through
//! `predict_with` (u8 pixels, micro-batched, reused scratch), and 500 images at several
//! micro-batch sizes. Throughput is in images.
//!
//! Run: `FEDGE_THREADS=1 taskset -c 1 cargo bench -p benches --bench model`
//!
//! On a shared, loaded machine set `FEDGE_BENCH_CPU_TIME=1`: every routine is then timed by
//! the CPU time of the benchmarking thread (Linux `/proc/thread-self/schedstat`) instead of
//! the wall clock, which is what one idle core would take (less the cache sharing). With
//! one thread all the work runs on that thread.

use std::hint::black_box;
use std::ops::ControlFlow;
use std::time::Duration;

use benches::{TRAIN_BATCH, generated_images as images, train_step_config};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use engine::{Adam, AdamConfig, InferenceScratch, Pixels, Sequential};

/// CPU time of this thread (Linux), if readable.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(
        s.split_whitespace().next()?.parse().ok()?,
    ))
}

/// Runs `f` the way criterion asks, timing by thread CPU time when `FEDGE_BENCH_CPU_TIME`
/// is set and readable, else by the wall clock.
fn run<R>(b: &mut criterion::Bencher<'_>, mut f: impl FnMut() -> R) {
    if std::env::var_os("FEDGE_BENCH_CPU_TIME").is_some() && thread_cpu().is_some() {
        b.iter_custom(|iters| {
            let start = thread_cpu().unwrap_or_default();
            for _ in 0..iters {
                black_box(f());
            }
            thread_cpu().unwrap_or_default().saturating_sub(start)
        });
    } else {
        b.iter(f);
    }
}

fn check_one_thread() {
    let t = conv_kernels::threads::configured_threads();
    assert_eq!(
        t, 1,
        "run the model benches with FEDGE_THREADS=1 (configured threads: {t})"
    );
}

fn train_step(c: &mut Criterion) {
    check_one_thread();
    let data = images(TRAIN_BATCH, 1);
    let mut model = Sequential::new(engine::presets::table1_cnn(), 0).expect("model");
    let mut opt = Adam::new(AdamConfig::default());
    let cfg = train_step_config();
    let mut group = c.benchmark_group("train_step");
    group.measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(TRAIN_BATCH as u64));
    group.bench_function("table1_cnn/batch64_adam", |b| {
        run(b, || {
            model
                .fit(&data, &cfg, &mut opt, &mut |_| ControlFlow::Continue(()))
                .expect("fit")
        })
    });
    group.finish();
}

fn inference(c: &mut Criterion) {
    check_one_thread();
    let spec = engine::presets::table1_cnn();
    let model = Sequential::new(spec.clone(), 0).expect("model");
    let data = images(10_000, 2);
    let mut scratch = InferenceScratch::new(&spec);
    let mut group = c.benchmark_group("infer");
    for n in [1usize, 32, 500, 10_000] {
        let mut out = vec![0.0f32; n * 10];
        let input = &data.images()[..n * 784];
        group.throughput(Throughput::Elements(n as u64));
        group.measurement_time(Duration::from_secs(if n >= 500 { 10 } else { 5 }));
        if n >= 500 {
            group.sample_size(10);
        } else {
            group.sample_size(50);
        }
        group.bench_with_input(BenchmarkId::new("table1_cnn", n), &n, |b, _| {
            run(b, || {
                model
                    .predict_with(Pixels::U8(black_box(input)), &mut out, &mut scratch)
                    .expect("predict")
            })
        });
    }
    group.finish();
}

/// Inference of 500 images at several micro-batch sizes: the evidence behind
/// `engine::model::DEFAULT_MICRO_BATCH`.
fn micro_batch(c: &mut Criterion) {
    check_one_thread();
    let spec = engine::presets::table1_cnn();
    let model = Sequential::new(spec.clone(), 0).expect("model");
    let data = images(500, 3);
    let mut out = vec![0.0f32; 500 * 10];
    let mut group = c.benchmark_group("infer_micro_batch");
    group.throughput(Throughput::Elements(500));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for micro in [8usize, 16, 32, 64, 128] {
        let mut scratch = InferenceScratch::with_micro_batch(&spec, micro);
        group.bench_with_input(BenchmarkId::new("table1_cnn_500", micro), &micro, |b, _| {
            run(b, || {
                model
                    .predict_with(Pixels::U8(black_box(data.images())), &mut out, &mut scratch)
                    .expect("predict")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, train_step, inference, micro_batch);
criterion_main!(benches);
