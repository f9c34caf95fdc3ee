//! Trains the paper's Table 1 CNN on MNIST and reports test accuracy.
//!
//! ```text
//! MNIST_DIR=/work/shared/data/mnist cargo run --release -p engine --example train_mnist -- \
//!     --epochs 1 --batch-size 64 --lr 1e-3 --seed 0 --threads 1 --save /tmp/mnist.safetensors
//! ```
//!
//! `--train-limit N` trains on the first N images only (e.g. a 20,000-image shard).

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use engine::data::mnist::{self, Split};
use engine::weights::{self, WeightsMeta};
use engine::{Adam, AdamConfig, FitConfig, OptimizerConfig, Sequential};
use indicatif::{ProgressBar, ProgressStyle};

/// Train the Table 1 CNN on MNIST.
#[derive(Debug, Parser)]
struct Args {
    /// Passes over the training images.
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Images per training step.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Seed of initialisation, shuffling and dropout.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Compute threads (default: FEDGE_THREADS or the CPUs this process may use).
    #[arg(long)]
    threads: Option<usize>,
    /// Write the trained weights here (safetensors).
    #[arg(long)]
    save: Option<PathBuf>,
    /// MNIST folder (the four IDX files, raw or .gz).
    #[arg(long, env = "MNIST_DIR")]
    mnist_dir: Option<PathBuf>,
    /// Train on the first N training images only.
    #[arg(long)]
    train_limit: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

/// CPU seconds the main thread has run (Linux `/proc/thread-self/schedstat`), if readable.
/// On a shared machine images per CPU-second estimates what an idle core would do; with
/// `--threads 1` all compute runs on this thread.
fn thread_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

fn run(args: &Args) -> BoxResult<()> {
    let threads = args
        .threads
        .unwrap_or_else(conv_kernels::threads::configured_threads);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build_global()?;
    let dir = match &args.mnist_dir {
        Some(d) => d.clone(),
        None => mnist::dir_from_env()?,
    };
    let mut train = mnist::load(&dir, Split::Train)?;
    if let Some(n) = args.train_limit {
        train = train.take(n);
    }
    let test = mnist::load(&dir, Split::Test)?;
    let spec = engine::presets::table1_cnn();
    let mut model = Sequential::new(spec.clone(), args.seed)?;
    println!("{}", model.summary());
    let opt_cfg = OptimizerConfig::Adam(AdamConfig {
        lr: args.lr,
        ..AdamConfig::default()
    });
    opt_cfg.validate()?;
    let mut opt = Adam::new(AdamConfig {
        lr: args.lr,
        ..AdamConfig::default()
    });
    let cfg = FitConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        seed: args.seed,
        shuffle: true,
        proximal_mu: None,
    };
    let batches = train.len().div_ceil(args.batch_size.max(1));
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new((batches * args.epochs) as u64)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} batches {per_sec} {msg}",
        )?
        .progress_chars("=> "),
    );
    println!(
        "training on {} images, {} epoch(s), batch {}, Adam lr {}, seed {}, {threads} thread(s)",
        train.len(),
        args.epochs,
        args.batch_size,
        args.lr,
        args.seed
    );
    let started = Instant::now();
    // Only meaningful when all compute runs on this thread.
    let cpu_clock = || {
        if threads == 1 {
            thread_cpu_seconds()
        } else {
            None
        }
    };
    let cpu_before = cpu_clock();
    let report = model.fit(&train, &cfg, &mut opt, &mut |p| {
        bar.inc(1);
        if p.batch % 20 == 0 || p.batch == p.batches {
            bar.set_message(format!(
                "epoch {}/{} loss {:.4} acc {:.4}",
                p.epoch, p.epochs, p.loss, p.accuracy
            ));
        }
        ControlFlow::Continue(())
    })?;
    bar.finish();
    let train_secs = started.elapsed().as_secs_f64();
    let train_cpu = cpu_before.zip(cpu_clock()).map(|(a, b)| b - a);
    for (i, e) in report.epochs.iter().enumerate() {
        println!(
            "epoch {}: train loss {:.4} accuracy {:.4}",
            i + 1,
            e.loss,
            e.accuracy
        );
    }
    println!(
        "trained {} images in {train_secs:.2} s ({:.0} images/s){}",
        report.examples,
        report.examples as f64 / train_secs,
        per_cpu_second(report.examples, train_cpu)
    );
    let started = Instant::now();
    let cpu_before = cpu_clock();
    let eval = model.evaluate(&test, 500)?;
    let eval_secs = started.elapsed().as_secs_f64();
    let eval_cpu = cpu_before.zip(cpu_clock()).map(|(a, b)| b - a);
    println!(
        "test: loss {:.4} accuracy {:.2} % on {} images ({eval_secs:.2} s, {:.0} images/s{})",
        eval.loss,
        100.0 * eval.accuracy,
        eval.examples,
        eval.examples as f64 / eval_secs,
        per_cpu_second(eval.examples, eval_cpu)
    );
    if let Some(path) = &args.save {
        let mut meta = WeightsMeta::new(spec);
        meta.extra
            .insert("test_accuracy".into(), format!("{:.4}", eval.accuracy));
        weights::save(path, model.params(), &meta)?;
        println!("saved {}", path.display());
    }
    Ok(())
}

fn per_cpu_second(images: usize, cpu: Option<f64>) -> String {
    match cpu {
        Some(c) if c > 0.0 => format!(
            "; main thread {c:.2} CPU-s, {:.0} images per CPU-second",
            images as f64 / c
        ),
        _ => String::new(),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
