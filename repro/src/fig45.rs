//! Figures 4 and 5: per-client and global accuracy and loss per round, 3 clients.
//!
//! Each run is the local edge cluster itself (the aggregator's store and coordinator, three
//! fn-train child processes, real HTTP), driven one round at a time so that the paper's
//! early stop (no global improvement for `patience` rounds) can end it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use aggregator::history::RoundRecord;
use aggregator::store::ModelStore;
use anyhow::Context as _;
use clap::Parser as _;
use edge_cluster::local::{self, LocalArgs};
use engine::data::PartitionSource;
use engine::data::mnist;

use crate::plan::{RoundsRun, Split};
use crate::results::RoundsResult;

/// `LocalArgs` built the way the command line builds them, so new flags keep their
/// defaults here too.
#[derive(Debug, clap::Parser)]
struct LocalCli {
    #[command(flatten)]
    args: LocalArgs,
}

/// Digits the skewed split gives client 3 (and only those).
pub const SKEWED_DIGITS: [u8; 3] = [0, 1, 2];

/// Runs one federated run into `dir`.
pub async fn run(
    run: &RoundsRun,
    clients: usize,
    mnist_dir: &Path,
    dir: &Path,
) -> anyhow::Result<RoundsResult> {
    let t0 = Instant::now();
    std::fs::create_dir_all(dir)?;
    let train_labels = {
        let d = mnist_dir.to_path_buf();
        tokio::task::spawn_blocking(move || mnist::load(&d, mnist::Split::Train))
            .await??
            .labels()
            .to_vec()
    };
    let partition = match run.split {
        Split::Iid => "iid".to_string(),
        Split::Skewed => {
            let path = std::path::absolute(dir.join("skewed-split.json"))?;
            let lists = skewed_split(&train_labels, clients, 0);
            std::fs::write(&path, serde_json::to_vec(&lists)?)?;
            format!("file:{}", path.display())
        }
    };
    let lists: PartitionSource = partition.parse()?;
    let lists = lists.split(&train_labels, clients, 0)?;
    let client_labels = lists
        .iter()
        .map(|l| {
            let take = run.shard_limit.unwrap_or(l.len()).min(l.len());
            let mut digits: Vec<u8> = l[..take].iter().map(|&i| train_labels[i]).collect();
            digits.sort_unstable();
            digits.dedup();
            digits
        })
        .collect();

    let mut stopped = format!("{} rounds run", run.max_rounds);
    for round in 1..=run.max_rounds {
        let mut argv = vec![
            "local".to_string(),
            format!("--clients={clients}"),
            "--rounds=1".into(),
            format!("--local-epochs={}", run.local_epochs),
            format!("--partition={partition}"),
            "--seed=0".into(),
            format!("--out={}", dir.display()),
            format!("--mnist-dir={}", mnist_dir.display()),
            "--no-serve".into(),
            // The paper averages every client (plain FedAvg, no defences).
            "--no-direction-check".into(),
        ];
        if let Some(n) = run.shard_limit {
            argv.push(format!("--shard-limit={n}"));
        }
        if round > 1 {
            argv.push("--resume".into());
        }
        let args = LocalCli::try_parse_from(argv)?.args;
        local::run(args)
            .await
            .with_context(|| format!("{}: round {round}", run.name))?;
        let history = read_history(dir)?;
        if let Some(p) = run.patience
            && let Some(since) = rounds_since_best(&history)
            && since >= p
        {
            stopped =
                format!("early stop after round {round}: no global improvement for {p} rounds");
            break;
        }
    }
    let history = read_history(dir)?;
    let client_examples = history
        .iter()
        .find(|r| r.round == 1)
        .map(|r| r.clients.iter().map(|c| c.num_examples).collect())
        .unwrap_or_default();
    Ok(RoundsResult {
        run: run.clone(),
        history,
        stopped,
        seconds: t0.elapsed().as_secs_f64(),
        client_examples,
        client_labels,
    })
}

fn read_history(dir: &Path) -> anyhow::Result<Vec<RoundRecord>> {
    Ok(ModelStore::open(&dir.join("store"), "mnist")?.history())
}

/// The store of a run (its latest version serves Figure 7).
pub fn store_dir(dir: &Path) -> PathBuf {
    dir.join("store")
}

/// Rounds since the best global accuracy (0 when the last round is the best), over
/// completed rounds; None before the first.
pub fn rounds_since_best(history: &[RoundRecord]) -> Option<u64> {
    let done: Vec<(u64, f32)> = history
        .iter()
        .filter(|r| r.round > 0 && r.version.is_some())
        .filter_map(|r| r.global.as_ref().map(|g| (r.round, g.accuracy)))
        .collect();
    let (last, _) = *done.last()?;
    let mut best = (0u64, f32::NEG_INFINITY);
    for &(round, acc) in &done {
        if acc > best.1 {
            best = (round, acc);
        }
    }
    Some(last - best.0)
}

/// The skewed split: the last client holds half of the examples of [`SKEWED_DIGITS`] and
/// nothing else; the other clients share everything left, uniformly at random (so they see
/// every digit). Deterministic in `seed`.
pub fn skewed_split(labels: &[u8], clients: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..labels.len()).collect();
    // A small LCG shuffle: the split only needs to be reproducible, not cryptographic.
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for i in (1..order.len()).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = ((s >> 33) as usize) % (i + 1);
        order.swap(i, j);
    }
    let mut lists = vec![Vec::new(); clients.max(1)];
    let last = lists.len() - 1;
    let mut seen = [0usize; 256];
    let mut next_shared = 0usize;
    for i in order {
        let digit = labels[i];
        if last > 0 && SKEWED_DIGITS.contains(&digit) {
            seen[usize::from(digit)] += 1;
            if seen[usize::from(digit)] % 2 == 1 {
                lists[last].push(i);
                continue;
            }
        }
        if last == 0 {
            lists[0].push(i);
        } else {
            lists[next_shared % last].push(i);
            next_shared += 1;
        }
    }
    for l in &mut lists {
        l.sort_unstable();
    }
    lists
}

#[cfg(test)]
mod tests {
    use super::*;
    use aggregator::history::{GlobalMetrics, RoundRecord};

    #[test]
    fn skewed_split_gives_the_last_client_three_digits_only() {
        let labels: Vec<u8> = (0..1000).map(|i| (i * 7 % 10) as u8).collect();
        let lists = skewed_split(&labels, 3, 0);
        let mut all: Vec<usize> = lists.concat();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert!(lists[2].iter().all(|&i| labels[i] <= 2));
        assert_eq!(lists[2].len(), 150);
        for l in &lists[..2] {
            let mut d: Vec<u8> = l.iter().map(|&i| labels[i]).collect();
            d.sort_unstable();
            d.dedup();
            assert_eq!(d.len(), 10);
        }
        assert_eq!(skewed_split(&labels, 3, 0), lists);
    }

    fn record(round: u64, acc: f32) -> RoundRecord {
        let mut r = RoundRecord::bare(round, Some(round), "");
        r.global = Some(GlobalMetrics {
            loss: 1.0 - acc,
            accuracy: acc,
            per_class_accuracy: vec![],
            examples: 10,
        });
        r
    }

    #[test]
    fn counts_rounds_since_the_best() {
        assert_eq!(rounds_since_best(&[record(0, 0.1)]), None);
        let h = [
            record(0, 0.1),
            record(1, 0.5),
            record(2, 0.7),
            record(3, 0.6),
        ];
        assert_eq!(rounds_since_best(&h), Some(1));
        let h = [record(1, 0.5), record(2, 0.5), record(3, 0.5)];
        assert_eq!(rounds_since_best(&h), Some(2));
    }
}
