//! What fedge's benchmarks share: the generated input and the training step they time, so
//! the criterion model bench, the callgrind driver (`examples/reshape_driver.rs`) and the
//! peer harness (`peer_bench`) measure the same workload.

use engine::{Dataset, FitConfig};

/// Examples per training step of every benchmark (the paper's batch size).
pub const TRAIN_BATCH: usize = 64;

/// `n` deterministic MNIST-sized images with labels (random bytes: speed does not depend on
/// the content).
pub fn generated_images(n: usize, seed: u64) -> Dataset {
    let mut rng = engine::Rng::new(seed);
    let pixels = (0..n * 784).map(|_| rng.below(256) as u8).collect();
    let labels = (0..n).map(|_| rng.below(10) as u8).collect();
    Dataset::new(pixels, labels, 28, 28).expect("valid generated data set")
}

/// One epoch in steps of [`TRAIN_BATCH`], shuffled with seed 0: over `TRAIN_BATCH` images,
/// exactly one training step.
pub fn train_step_config() -> FitConfig {
    FitConfig {
        epochs: 1,
        batch_size: TRAIN_BATCH,
        seed: 0,
        shuffle: true,
        proximal_mu: None,
    }
}
