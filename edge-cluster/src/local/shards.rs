//! The shard size each node of the local cluster is registered with at the aggregator.
//!
//! The aggregator refuses a reply claiming more examples than the client's registered shard
//! and, for a client it knows no size of, cuts a claim above 1.5x the round's median claim
//! (`aggregator::relative`). Local mode spawned its nodes without sizes, so on a skewed
//! split an honest node with a large shard lost weight to the median cap, and a node could
//! claim any count up to the cap. The parent computes each node's shard the way fn-train
//! does (the same partition of MNIST's training labels, the same `--shard-limit`), from the
//! data rather than from what the node says.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use engine::data::{PartitionSource, idx, mnist};

/// Examples of each client's shard: its part of MNIST's training set under `partition`
/// (`clients` clients, `seed`), at most `limit`.
pub fn registered_sizes(
    partition: &PartitionSource,
    mnist_dir: &Path,
    clients: usize,
    seed: u64,
    limit: Option<usize>,
) -> anyhow::Result<Vec<u64>> {
    let labels = idx::read_labels(&train_labels(mnist_dir)?)
        .with_context(|| format!("reading MNIST's training labels in {}", mnist_dir.display()))?;
    let parts = partition
        .split(&labels, clients, seed)
        .context("partitioning MNIST")?;
    Ok(parts
        .iter()
        .map(|p| limit.map_or(p.len(), |n| p.len().min(n)) as u64)
        .collect())
}

/// The training labels file, raw or gzip (raw preferred), as `mnist::load` finds it.
fn train_labels(dir: &Path) -> anyhow::Result<PathBuf> {
    let name = mnist::Split::Train.file_names().1;
    [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
        .with_context(|| format!("no {name}[.gz] in {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_partition_and_the_shard_limit() {
        let dir = tempfile::tempdir().unwrap();
        let labels: Vec<u8> = (0..100u8).map(|i| i % 10).collect();
        idx::write_labels(&dir.path().join("train-labels-idx1-ubyte"), &labels).unwrap();
        let file = dir.path().join("split.json");
        std::fs::write(&file, b"[[0, 1, 2], [3, 4, 5, 6, 7, 8, 9, 10], [11]]").unwrap();
        let from_file = PartitionSource::File(file);
        assert_eq!(
            registered_sizes(&from_file, dir.path(), 3, 0, None).unwrap(),
            vec![3, 8, 1]
        );
        assert_eq!(
            registered_sizes(&from_file, dir.path(), 3, 0, Some(4)).unwrap(),
            vec![3, 4, 1]
        );
        let iid: PartitionSource = "iid".parse().unwrap();
        let sizes = registered_sizes(&iid, dir.path(), 4, 7, None).unwrap();
        assert_eq!(sizes.iter().sum::<u64>(), 100);
        assert_eq!(sizes.len(), 4);
        assert!(registered_sizes(&iid, Path::new("/nonexistent"), 2, 0, None).is_err());
    }
}
