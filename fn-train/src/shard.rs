//! The node's training data, loaded once at start-up and kept as u8 (pixels become f32 only
//! one batch at a time inside the engine).
//!
//! * [`ShardSource::Folder`]: the node's own IDX files. The folder must hold one
//!   `*images*idx3-ubyte[.gz]` and one `*labels*idx1-ubyte[.gz]` file; when it holds MNIST's
//!   train and test pairs, the `train-` pair is used.
//! * [`ShardSource::Partition`]: the full MNIST training set split with the engine's
//!   partitioner (or by a partition file, `file:<path>`); this node keeps client `index`'s
//!   part.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use engine::Dataset;
use engine::data::{PartitionSource, idx, mnist};

use crate::config::ShardSource;

/// Loads the shard, keeping at most `limit` examples.
///
/// # Errors
/// Missing, ambiguous or malformed files; a bad partition spec; an empty shard.
pub fn load(source: &ShardSource, limit: Option<usize>) -> anyhow::Result<Dataset> {
    let data = match source {
        ShardSource::Folder(dir) => load_folder(dir)?,
        ShardSource::Partition {
            mnist_dir,
            spec,
            index,
            num_clients,
            seed,
        } => {
            let source: PartitionSource = spec
                .parse()
                .map_err(|e| anyhow::anyhow!("partition spec {spec:?}: {e}"))?;
            let full = mnist::load(mnist_dir, mnist::Split::Train)
                .with_context(|| format!("loading MNIST from {}", mnist_dir.display()))?;
            let parts = source
                .split(full.labels(), *num_clients, *seed)
                .context("partitioning MNIST")?;
            let mine = parts
                .get(*index)
                .with_context(|| format!("the partition has no client {index}"))?;
            full.subset(mine)
                .context("selecting this client's examples")?
        }
    };
    let data = match limit {
        Some(n) if n < data.len() => data.take(n),
        _ => data,
    };
    if data.is_empty() {
        bail!("the shard is empty: nothing to train on");
    }
    Ok(data)
}

fn load_folder(dir: &Path) -> anyhow::Result<Dataset> {
    let images = find_one(dir, "idx3-ubyte")?;
    let labels = find_one(dir, "idx1-ubyte")?;
    let (pixels, n, rows, cols) = idx::read_images(&images)
        .with_context(|| format!("reading images {}", images.display()))?;
    let label_bytes = idx::read_labels(&labels)
        .with_context(|| format!("reading labels {}", labels.display()))?;
    if label_bytes.len() != n {
        bail!(
            "{} holds {n} images but {} holds {} labels",
            images.display(),
            labels.display(),
            label_bytes.len()
        );
    }
    Dataset::new(pixels, label_bytes, rows, cols).context("building the shard")
}

/// The single file in `dir` whose name contains `kind` (preferring `train-` files).
fn find_one(dir: &Path, kind: &str) -> anyhow::Result<PathBuf> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("reading the shard folder {}", dir.display()))?;
    let mut found: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = entry.context("listing the shard folder")?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.contains(kind) && (name.ends_with("ubyte") || name.ends_with("ubyte.gz")) {
            found.push(path);
        }
    }
    found.sort();
    if found.len() > 1 {
        let train: Vec<PathBuf> = found
            .iter()
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("train"))
            })
            .cloned()
            .collect();
        if train.len() == 1 {
            return Ok(train.into_iter().next().unwrap_or_default());
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!("no *{kind}[.gz] file in the shard folder {}", dir.display()),
        _ => bail!(
            "several *{kind} files in the shard folder {}: {found:?}",
            dir.display()
        ),
    }
}
