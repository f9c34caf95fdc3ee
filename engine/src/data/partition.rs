//! Federated partitions: which examples each simulated client holds.
//!
//! Three schemes, each seeded so that the same seed gives the same partition:
//!
//! - [`PartitionSpec::Iid`]: a shuffle cut into equal parts (sizes differ by at most one).
//! - [`PartitionSpec::Dirichlet`]: label skew after Hsu, Qi and Brown, "Measuring the
//!   Effects of Non-Identical Data Distribution for Federated Visual Classification"
//!   (2019): for each label, the share of each client is drawn from a symmetric
//!   Dirichlet(alpha). Small alpha (0.1) gives each client a few labels; large alpha (100)
//!   approaches IID. Every client is guaranteed at least `min(10, N / clients)` examples
//!   (see [`partition`]).
//! - [`PartitionSpec::Shards`]: the label shards of McMahan et al., "Communication-Efficient
//!   Learning of Deep Networks from Decentralized Data" (2017): sort by label, cut into
//!   `clients * per_client` shards, deal `per_client` random shards to each client.
//!
//! Every example lands in exactly one partition; each partition lists its indices in
//! ascending order.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::rng::{Purpose, Rng};

/// How to split a data set among clients. Parses from and prints as `iid`,
/// `dirichlet:<alpha>` and `shards:<per_client>`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PartitionSpec {
    /// Uniformly random, equal sizes.
    Iid,
    /// Label skew: per-label client shares from a symmetric Dirichlet(alpha), alpha > 0.
    Dirichlet {
        /// Concentration; smaller is more skewed.
        alpha: f64,
    },
    /// Label-sorted shards, `per_client` of them per client (>= 1).
    Shards {
        /// Shards dealt to each client.
        per_client: usize,
    },
}

impl PartitionSpec {
    /// Checks the parameters: alpha finite and > 0, `per_client` >= 1.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the bad parameter.
    pub fn validate(&self) -> Result<()> {
        match *self {
            PartitionSpec::Iid => Ok(()),
            PartitionSpec::Dirichlet { alpha } if !(alpha.is_finite() && alpha > 0.0) => {
                Err(Error::InvalidArgument(format!(
                    "dirichlet alpha must be finite and > 0, got {alpha}"
                )))
            }
            PartitionSpec::Shards { per_client: 0 } => Err(Error::InvalidArgument(
                "shards per client must be at least 1".into(),
            )),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for PartitionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionSpec::Iid => write!(f, "iid"),
            PartitionSpec::Dirichlet { alpha } => write!(f, "dirichlet:{alpha}"),
            PartitionSpec::Shards { per_client } => write!(f, "shards:{per_client}"),
        }
    }
}

impl FromStr for PartitionSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::InvalidArgument(format!(
                "partition `{s}`: {why} (expected `iid`, `dirichlet:<alpha>` or `shards:<n>`)"
            ))
        };
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k.trim(), Some(a.trim())),
            None => (s.trim(), None),
        };
        let spec = match (kind.to_ascii_lowercase().as_str(), arg) {
            ("iid", None) => PartitionSpec::Iid,
            ("dirichlet", Some(a)) => PartitionSpec::Dirichlet {
                alpha: a.parse().map_err(|_| bad("alpha is not a number"))?,
            },
            ("shards", Some(a)) => PartitionSpec::Shards {
                per_client: a
                    .parse()
                    .map_err(|_| bad("shard count is not an integer"))?,
            },
            _ => return Err(bad("unknown scheme")),
        };
        spec.validate()?;
        Ok(spec)
    }
}

/// Splits examples `0..labels.len()` among `num_clients` clients according to `spec`,
/// reproducibly from `seed`. Returns one ascending index list per client; together they hold
/// every index exactly once, and none is empty.
///
/// For Dirichlet, a draw that leaves a client with fewer than `min(10, N / clients)` examples
/// is redrawn (up to 100 times, as common FL benchmarks do); if that keeps failing (tiny
/// alpha, many clients) the draw is repaired by moving random examples from the largest
/// client to the small ones.
///
/// # Errors
/// [`Error::InvalidArgument`] when `num_clients` is 0, when there are fewer examples than
/// clients (or, for shards, than shards), or when `spec` is invalid.
pub fn partition(
    labels: &[u8],
    num_clients: usize,
    spec: &PartitionSpec,
    seed: u64,
) -> Result<Vec<Vec<usize>>> {
    spec.validate()?;
    let n = labels.len();
    if num_clients == 0 {
        return Err(Error::InvalidArgument("partition among 0 clients".into()));
    }
    if n < num_clients {
        return Err(Error::InvalidArgument(format!(
            "{n} examples cannot give each of {num_clients} clients at least one"
        )));
    }
    let mut parts = match *spec {
        PartitionSpec::Iid => iid(n, num_clients, seed),
        PartitionSpec::Dirichlet { alpha } => dirichlet(labels, num_clients, alpha, seed),
        PartitionSpec::Shards { per_client } => shards(labels, num_clients, per_client, seed)?,
    };
    for p in &mut parts {
        p.sort_unstable();
    }
    Ok(parts)
}

/// `0..n` cut into `parts` contiguous ranges whose lengths differ by at most one.
fn even_cuts(n: usize, parts: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..parts).map(move |i| i * n / parts..(i + 1) * n / parts)
}

fn iid(n: usize, num_clients: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    Rng::derive(seed, Purpose::PARTITION, 0).shuffle(&mut order);
    even_cuts(n, num_clients)
        .map(|r| order[r].to_vec())
        .collect()
}

fn by_label(labels: &[u8]) -> Vec<Vec<usize>> {
    let mut classes = vec![Vec::new(); 256];
    for (i, &l) in labels.iter().enumerate() {
        classes[usize::from(l)].push(i);
    }
    classes.retain(|c| !c.is_empty());
    classes
}

const DIRICHLET_ATTEMPTS: u64 = 100;

fn dirichlet(labels: &[u8], num_clients: usize, alpha: f64, seed: u64) -> Vec<Vec<usize>> {
    let n = labels.len();
    let min_size = (n / num_clients).clamp(1, 10);
    let classes = by_label(labels);
    let mut parts = Vec::new();
    for attempt in 0..DIRICHLET_ATTEMPTS {
        let mut rng = Rng::derive(seed, Purpose::PARTITION, 1 + attempt);
        parts = dirichlet_draw(&classes, num_clients, alpha, &mut rng);
        if parts.iter().all(|p| p.len() >= min_size) {
            return parts;
        }
    }
    repair(
        &mut parts,
        min_size,
        &mut Rng::derive(seed, Purpose::PARTITION, 1 + DIRICHLET_ATTEMPTS),
    );
    parts
}

fn dirichlet_draw(
    classes: &[Vec<usize>],
    num_clients: usize,
    alpha: f64,
    rng: &mut Rng,
) -> Vec<Vec<usize>> {
    let mut parts = vec![Vec::new(); num_clients];
    let mut shares = vec![0f64; num_clients];
    for class in classes {
        let mut members = class.clone();
        rng.shuffle(&mut members);
        for s in &mut shares {
            *s = rng.gamma(alpha);
        }
        let total: f64 = shares.iter().sum();
        if !(total.is_finite() && total > 0.0) {
            // Every gamma underflowed (alpha tiny): the limit is one client taking the label.
            shares.fill(0.0);
            shares[rng.below(num_clients as u64) as usize] = 1.0;
        }
        let total: f64 = shares.iter().sum();
        let m = members.len();
        let mut start = 0;
        let mut cumulative = 0.0;
        for (c, s) in shares.iter().enumerate() {
            cumulative += s / total;
            let end = if c + 1 == num_clients {
                m
            } else {
                ((cumulative * m as f64) as usize).clamp(start, m)
            };
            parts[c].extend_from_slice(&members[start..end]);
            start = end;
        }
    }
    parts
}

/// Moves random examples from the largest part to any part below `min_size`. Terminates
/// because `min_size * parts <= n`: while a part is short the largest exceeds `min_size`.
fn repair(parts: &mut [Vec<usize>], min_size: usize, rng: &mut Rng) {
    while let Some(short) = parts.iter().position(|p| p.len() < min_size) {
        let largest = (0..parts.len())
            .max_by_key(|&i| parts[i].len())
            .unwrap_or(0);
        let k = rng.below(parts[largest].len() as u64) as usize;
        let moved = parts[largest].swap_remove(k);
        parts[short].push(moved);
    }
}

fn shards(
    labels: &[u8],
    num_clients: usize,
    per_client: usize,
    seed: u64,
) -> Result<Vec<Vec<usize>>> {
    let n = labels.len();
    let num_shards = num_clients.checked_mul(per_client).filter(|&s| s <= n);
    let Some(num_shards) = num_shards else {
        return Err(Error::InvalidArgument(format!(
            "{num_clients} clients x {per_client} shards need at least that many examples, have {n}"
        )));
    };
    let mut rng = Rng::derive(seed, Purpose::PARTITION, 2);
    // Random order within each label, then a stable sort by label.
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    order.sort_by_key(|&i| labels[i]);
    let mut shard_ids: Vec<usize> = (0..num_shards).collect();
    rng.shuffle(&mut shard_ids);
    let cuts: Vec<_> = even_cuts(n, num_shards).collect();
    Ok(shard_ids
        .chunks_exact(per_client)
        .map(|ids| {
            ids.iter()
                .flat_map(|&s| order[cuts[s].clone()].iter().copied())
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn specs_parse_print_and_validate() {
        assert_eq!("iid".parse::<PartitionSpec>().unwrap(), PartitionSpec::Iid);
        assert_eq!(
            "dirichlet:0.5".parse::<PartitionSpec>().unwrap(),
            PartitionSpec::Dirichlet { alpha: 0.5 }
        );
        assert_eq!(
            "shards:2".parse::<PartitionSpec>().unwrap(),
            PartitionSpec::Shards { per_client: 2 }
        );
        for s in ["iid", "dirichlet:0.5", "shards:2"] {
            assert_eq!(s.parse::<PartitionSpec>().unwrap().to_string(), s);
        }
        for bad in [
            "",
            "iid:1",
            "dirichlet",
            "dirichlet:0",
            "dirichlet:-1",
            "dirichlet:nan",
            "dirichlet:inf",
            "shards:0",
            "shards:1.5",
            "shards",
            "zipf:1",
        ] {
            assert!(bad.parse::<PartitionSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_client_counts_are_refused() {
        let labels = [0u8, 1, 2];
        assert!(partition(&labels, 0, &PartitionSpec::Iid, 0).is_err());
        assert!(partition(&labels, 4, &PartitionSpec::Iid, 0).is_err());
        assert!(partition(&labels, 2, &PartitionSpec::Shards { per_client: 2 }, 0).is_err());
    }

    #[test]
    fn iid_sizes_differ_by_at_most_one_and_seed_fixes_the_result() {
        let labels = vec![0u8; 103];
        let a = partition(&labels, 10, &PartitionSpec::Iid, 5).unwrap();
        let sizes: Vec<usize> = a.iter().map(Vec::len).collect();
        assert!(sizes.iter().all(|&s| s == 10 || s == 11), "{sizes:?}");
        assert_eq!(a, partition(&labels, 10, &PartitionSpec::Iid, 5).unwrap());
        assert_ne!(a, partition(&labels, 10, &PartitionSpec::Iid, 6).unwrap());
    }

    #[test]
    fn one_shard_per_client_gives_one_label_each_when_labels_divide_evenly() {
        // 4 labels x 25 examples, 4 clients x 1 shard of 25: each client gets a single label.
        let labels: Vec<u8> = (0..100).map(|i| (i / 25) as u8).collect();
        let parts = partition(&labels, 4, &PartitionSpec::Shards { per_client: 1 }, 9).unwrap();
        for p in &parts {
            assert_eq!(p.len(), 25);
            assert!(p.iter().all(|&i| labels[i] == labels[p[0]]));
        }
    }

    /// Mean over clients of the total-variation distance between the client's label
    /// distribution and the global one: 0 for identical mixes, near 1 for disjoint labels.
    fn mean_label_skew(labels: &[u8], parts: &[Vec<usize>], classes: usize) -> f64 {
        let global: Vec<f64> = (0..classes)
            .map(|c| {
                labels.iter().filter(|&&l| usize::from(l) == c).count() as f64 / labels.len() as f64
            })
            .collect();
        let tv: f64 = parts
            .iter()
            .map(|p| {
                let mut local = vec![0f64; classes];
                for &i in p {
                    local[usize::from(labels[i])] += 1.0 / p.len() as f64;
                }
                0.5 * local
                    .iter()
                    .zip(&global)
                    .map(|(a, b)| (a - b).abs())
                    .sum::<f64>()
            })
            .sum();
        tv / parts.len() as f64
    }

    #[test]
    fn dirichlet_small_alpha_skews_and_large_alpha_is_near_iid() {
        // 10 labels x 600 examples among 10 clients, averaged over 5 seeds.
        // Statistical: with alpha 0.05 a client holds ~1-2 labels (skew ~0.8); with alpha
        // 1000 the shares are within a few percent of uniform (skew ~0.03).
        let labels: Vec<u8> = (0..6000).map(|i| (i % 10) as u8).collect();
        let skew = |alpha: f64| {
            (0..5)
                .map(|seed| {
                    let parts =
                        partition(&labels, 10, &PartitionSpec::Dirichlet { alpha }, seed).unwrap();
                    assert!(parts.iter().all(|p| p.len() >= 10));
                    mean_label_skew(&labels, &parts, 10)
                })
                .sum::<f64>()
                / 5.0
        };
        let (small, large, iid_like) = (skew(0.05), skew(1000.0), {
            let parts = partition(&labels, 10, &PartitionSpec::Iid, 0).unwrap();
            mean_label_skew(&labels, &parts, 10)
        });
        eprintln!("label skew: alpha 0.05 {small:.3}, alpha 1000 {large:.3}, iid {iid_like:.3}");
        assert!(small > 0.5, "alpha 0.05: skew {small}");
        assert!(large < 0.1, "alpha 1000: skew {large}");
        assert!(iid_like < 0.1, "iid: skew {iid_like}");
    }

    #[test]
    fn dirichlet_with_tiny_alpha_and_many_clients_still_fills_every_client() {
        let labels: Vec<u8> = (0..200).map(|i| (i % 2) as u8).collect();
        let parts = partition(&labels, 50, &PartitionSpec::Dirichlet { alpha: 1e-3 }, 1).unwrap();
        assert!(
            parts.iter().all(|p| p.len() >= 4),
            "every client gets min(10, 200/50)"
        );
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 200);
    }

    fn specs() -> impl Strategy<Value = PartitionSpec> {
        prop_oneof![
            Just(PartitionSpec::Iid),
            (0.01f64..100.0).prop_map(|alpha| PartitionSpec::Dirichlet { alpha }),
            (1usize..4).prop_map(|per_client| PartitionSpec::Shards { per_client }),
        ]
    }

    proptest! {
        #[test]
        fn every_example_lands_in_exactly_one_nonempty_partition(
            labels in prop::collection::vec(0u8..10, 1..400),
            clients in 1usize..25,
            spec in specs(),
            seed in any::<u64>(),
        ) {
            let needed = match spec {
                PartitionSpec::Shards { per_client } => clients * per_client,
                _ => clients,
            };
            prop_assume!(needed <= labels.len());
            let parts = partition(&labels, clients, &spec, seed).unwrap();
            prop_assert_eq!(parts.len(), clients);
            let mut seen = vec![0u8; labels.len()];
            for p in &parts {
                prop_assert!(!p.is_empty());
                prop_assert!(p.windows(2).all(|w| w[0] < w[1]), "ascending");
                for &i in p {
                    seen[i] += 1;
                }
            }
            prop_assert!(seen.iter().all(|&s| s == 1));
            prop_assert_eq!(&parts, &partition(&labels, clients, &spec, seed).unwrap());
        }
    }
}
