//! Federated arithmetic: combining clients' parameter sets into a global one.
//!
//! Plain functions over [`ParamSet`]s, called by the aggregator once per round:
//!
//! - [`fedavg`]: the weighted mean of McMahan et al. (2017), weights = example counts.
//!   The standard choice; one malicious or broken client can move it arbitrarily.
//! - [`coordinate_median`]: the coordinate-wise median of Yin et al., "Byzantine-Robust
//!   Distributed Learning: Towards Optimal Statistical Rates" (2018). Robust to a minority
//!   of arbitrary updates; ignores example counts.
//! - [`trimmed_mean`]: the coordinate-wise trimmed mean of the same paper: drop the
//!   `trim_fraction` largest and smallest values of each coordinate, average the rest.
//!
//! All accumulate in f64 and round once to f32. Every update must have the reference (first)
//! update's names, order and shapes, and only finite values; otherwise the error names the
//! update, the tensor and both shapes.

use crate::error::{Error, Result};
use crate::params::ParamSet;
use crate::tensor::Tensor;

/// Weighted average `sum_i (w_i / W) * p_i` with `W = sum_i w_i`, usually `w_i` = the number
/// of examples client `i` trained on. Weights are normalised before use, so scaling every
/// weight by the same factor gives bit-identical results (while the scaled weights stay
/// exact in f64, i.e. below 2^53).
///
/// # Errors
/// [`Error::InvalidArgument`] for no updates, a zero total weight or a non-finite value;
/// [`Error::Shape`] / [`Error::Weights`] when the layouts differ.
pub fn fedavg(updates: &[(&ParamSet, u64)]) -> Result<ParamSet> {
    let sets: Vec<&ParamSet> = updates.iter().map(|(p, _)| *p).collect();
    check_updates(&sets, "fedavg")?;
    let total: u128 = updates.iter().map(|&(_, w)| u128::from(w)).sum();
    if total == 0 {
        return Err(Error::InvalidArgument(
            "fedavg: the updates' weights (example counts) sum to 0".into(),
        ));
    }
    let total = total as f64;
    let shares: Vec<f64> = updates.iter().map(|&(_, w)| w as f64 / total).collect();
    combine(&sets, |name, acc| {
        for (set, share) in sets.iter().zip(&shares) {
            let data = tensor_of(set, name)?.data();
            for (a, &x) in acc.iter_mut().zip(data) {
                *a += share * f64::from(x);
            }
        }
        Ok(())
    })
}

/// Coordinate-wise median; for an even number of updates, the mean of the two middle values.
///
/// # Errors
/// As [`fedavg`] (no weights involved).
pub fn coordinate_median(updates: &[&ParamSet]) -> Result<ParamSet> {
    check_updates(updates, "coordinate_median")?;
    let n = updates.len();
    per_coordinate(updates, |values| {
        let (_, &mut upper, _) = values.select_nth_unstable_by(n / 2, f32::total_cmp);
        if n % 2 == 1 {
            return f64::from(upper);
        }
        // The lower middle is the largest of the values left of the upper middle.
        let lower = values[..n / 2]
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        (f64::from(lower) + f64::from(upper)) / 2.0
    })
}

/// Coordinate-wise trimmed mean: with `k = floor(trim_fraction * n)`, drops the `k`
/// smallest and `k` largest values of each coordinate and averages the remaining `n - 2k`.
/// `trim_fraction` 0 is the plain (unweighted) mean.
///
/// # Errors
/// As [`coordinate_median`], and [`Error::InvalidArgument`] unless
/// `0 <= trim_fraction < 0.5`.
pub fn trimmed_mean(updates: &[&ParamSet], trim_fraction: f32) -> Result<ParamSet> {
    if !(0.0..0.5).contains(&trim_fraction) {
        return Err(Error::InvalidArgument(format!(
            "trimmed_mean: trim fraction must be in [0, 0.5), got {trim_fraction}"
        )));
    }
    check_updates(updates, "trimmed_mean")?;
    let n = updates.len();
    let k = (f64::from(trim_fraction) * n as f64).floor() as usize;
    let kept = n - 2 * k;
    per_coordinate(updates, |values| {
        values.sort_unstable_by(f32::total_cmp);
        values[k..n - k].iter().map(|&v| f64::from(v)).sum::<f64>() / kept as f64
    })
}

/// Refuses an empty list, layouts that differ from the first update's, and non-finite values.
fn check_updates(updates: &[&ParamSet], op: &str) -> Result<()> {
    let Some(reference) = updates.first() else {
        return Err(Error::InvalidArgument(format!("{op}: no updates")));
    };
    for (i, update) in updates.iter().enumerate() {
        if i > 0 {
            check_layout(reference, update, i, op)?;
        }
        for (name, t) in update.iter() {
            if let Some(j) = t.data().iter().position(|v| !v.is_finite()) {
                return Err(Error::InvalidArgument(format!(
                    "{op}: update {i}, tensor `{name}` holds a non-finite value at index {j}"
                )));
            }
        }
    }
    Ok(())
}

fn check_layout(reference: &ParamSet, other: &ParamSet, i: usize, op: &str) -> Result<()> {
    for (name, t) in reference.iter() {
        match other.get(name) {
            None => {
                return Err(Error::Weights(format!(
                    "{op}: update {i} lacks tensor `{name}` (shape {:?} in update 0)",
                    t.shape()
                )));
            }
            Some(o) if o.shape() != t.shape() => {
                return Err(Error::Shape {
                    what: format!("{op}: update {i}, tensor `{name}` (expected = update 0's)"),
                    expected: t.shape().to_vec(),
                    got: o.shape().to_vec(),
                });
            }
            Some(_) => {}
        }
    }
    if let Some((extra, t)) = other.iter().find(|(n, _)| reference.get(n).is_none()) {
        return Err(Error::Weights(format!(
            "{op}: update {i} has tensor `{extra}` (shape {:?}) that update 0 lacks",
            t.shape()
        )));
    }
    Ok(())
}

/// The tensor `name` of a set (already checked to have it by `check_updates`).
fn tensor_of<'a>(set: &'a ParamSet, name: &str) -> Result<&'a Tensor> {
    set.get(name)
        .ok_or_else(|| Error::Weights(format!("missing tensor `{name}`")))
}

/// Builds a set with the first update's layout; `fill(name, acc)` accumulates each tensor
/// into a zeroed f64 buffer, which is then rounded to f32.
fn combine(
    updates: &[&ParamSet],
    mut fill: impl FnMut(&str, &mut [f64]) -> Result<()>,
) -> Result<ParamSet> {
    let mut out = ParamSet::new();
    for (name, t) in updates[0].iter() {
        let mut acc = vec![0f64; t.len()];
        fill(name, &mut acc)?;
        let values: Vec<f32> = acc.iter().map(|&v| v as f32).collect();
        out.push(name, Tensor::from_slice(t.shape(), &values)?)?;
    }
    Ok(out)
}

/// Applies `reduce` to the `n` values of every coordinate (in a scratch buffer it may reorder).
fn per_coordinate(
    updates: &[&ParamSet],
    mut reduce: impl FnMut(&mut [f32]) -> f64,
) -> Result<ParamSet> {
    let mut column = vec![0f32; updates.len()];
    combine(updates, |name, acc| {
        let datas = updates
            .iter()
            .map(|u| Ok(tensor_of(u, name)?.data()))
            .collect::<Result<Vec<&[f32]>>>()?;
        for (j, a) in acc.iter_mut().enumerate() {
            for (c, d) in column.iter_mut().zip(&datas) {
                *c = d[j];
            }
            *a = reduce(&mut column);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(w: &[f32], b: &[f32]) -> ParamSet {
        let mut p = ParamSet::new();
        p.push("fc.weight", Tensor::from_slice(&[w.len()], w).unwrap())
            .unwrap();
        p.push("fc.bias", Tensor::from_slice(&[b.len()], b).unwrap())
            .unwrap();
        p
    }

    fn values(p: &ParamSet) -> Vec<Vec<f32>> {
        p.iter().map(|(_, t)| t.data().to_vec()).collect()
    }

    #[test]
    fn fedavg_weights_by_example_counts() {
        // (1 * [1, 2] + 3 * [3, 6]) / 4 = [2.5, 5]; bias (1 * 0 + 3 * 4) / 4 = 3.
        let a = set(&[1.0, 2.0], &[0.0]);
        let b = set(&[3.0, 6.0], &[4.0]);
        let avg = fedavg(&[(&a, 1), (&b, 3)]).unwrap();
        assert_eq!(values(&avg), vec![vec![2.5, 5.0], vec![3.0]]);
        // A client with 0 examples contributes nothing.
        let avg = fedavg(&[(&a, 0), (&b, 7)]).unwrap();
        assert_eq!(values(&avg), values(&b));
    }

    #[test]
    fn median_and_trimmed_mean_by_hand() {
        let s: Vec<ParamSet> = [1.0, 2.0, 3.0, 100.0]
            .iter()
            .map(|&v| set(&[v, -v], &[v * 2.0]))
            .collect();
        let refs: Vec<&ParamSet> = s.iter().collect();
        // Even count: mean of the middle two, (2 + 3) / 2 = 2.5; (-3 + -2) / 2 = -2.5; (4 + 6) / 2 = 5.
        assert_eq!(
            values(&coordinate_median(&refs).unwrap()),
            vec![vec![2.5, -2.5], vec![5.0]]
        );
        // Odd count: the middle value.
        assert_eq!(
            values(&coordinate_median(&refs[..3]).unwrap()),
            vec![vec![2.0, -2.0], vec![4.0]]
        );
        // 0.25 of 4 trims one each side: (2 + 3) / 2; 0.0 is the mean (1+2+3+100)/4 = 26.5.
        assert_eq!(
            values(&trimmed_mean(&refs, 0.25).unwrap()),
            vec![vec![2.5, -2.5], vec![5.0]]
        );
        assert_eq!(
            values(&trimmed_mean(&refs, 0.0).unwrap()),
            vec![vec![26.5, -26.5], vec![53.0]]
        );
        // 0.2 of 4 is 0.8, floor 0: nothing trimmed.
        assert_eq!(
            values(&trimmed_mean(&refs, 0.2).unwrap()),
            values(&trimmed_mean(&refs, 0.0).unwrap())
        );
    }

    #[test]
    fn bad_inputs_are_errors_naming_what_is_wrong() {
        let a = set(&[1.0, 2.0], &[0.0]);
        assert!(fedavg(&[]).is_err());
        assert!(coordinate_median(&[]).is_err());
        assert!(
            fedavg(&[(&a, 0), (&a, 0)])
                .unwrap_err()
                .to_string()
                .contains("sum to 0")
        );
        let wrong = set(&[1.0, 2.0, 3.0], &[0.0]);
        let msg = fedavg(&[(&a, 1), (&wrong, 1)]).unwrap_err().to_string();
        assert!(
            msg.contains("fc.weight") && msg.contains("[2]") && msg.contains("[3]"),
            "{msg}"
        );
        let mut extra = set(&[1.0, 2.0], &[0.0]);
        extra
            .push("fc2.bias", Tensor::zeros(&[1]).unwrap())
            .unwrap();
        let msg = coordinate_median(&[&a, &extra]).unwrap_err().to_string();
        assert!(msg.contains("fc2.bias"), "{msg}");
        let msg = trimmed_mean(&[&extra, &a], 0.1).unwrap_err().to_string();
        assert!(msg.contains("lacks tensor `fc2.bias`"), "{msg}");
        let nan = set(&[1.0, f32::NAN], &[0.0]);
        let msg = fedavg(&[(&a, 1), (&nan, 1)]).unwrap_err().to_string();
        assert!(
            msg.contains("update 1") && msg.contains("fc.weight"),
            "{msg}"
        );
        assert!(trimmed_mean(&[&a], 0.5).is_err());
        assert!(trimmed_mean(&[&a], -0.1).is_err());
        assert!(trimmed_mean(&[&a], f32::NAN).is_err());
    }

    fn sets(n: std::ops::Range<usize>) -> impl Strategy<Value = Vec<ParamSet>> {
        (1usize..6, 1usize..4).prop_flat_map(move |(wl, bl)| {
            prop::collection::vec(
                (
                    prop::collection::vec(-1e3f32..1e3, wl),
                    prop::collection::vec(-1e3f32..1e3, bl),
                )
                    .prop_map(|(w, b)| set(&w, &b)),
                n.clone(),
            )
        })
    }

    proptest! {
        #[test]
        fn fedavg_of_identical_sets_is_that_set(
            s in sets(1..2), copies in 1usize..6, weights in prop::collection::vec(1u64..10_000, 6)
        ) {
            let updates: Vec<(&ParamSet, u64)> = (0..copies).map(|i| (&s[0], weights[i])).collect();
            prop_assert_eq!(values(&fedavg(&updates).unwrap()), values(&s[0]));
            let refs = vec![&s[0]; copies];
            prop_assert_eq!(values(&coordinate_median(&refs).unwrap()), values(&s[0]));
            prop_assert_eq!(values(&trimmed_mean(&refs, 0.3).unwrap()), values(&s[0]));
        }

        #[test]
        fn fedavg_is_invariant_to_scaling_all_weights(
            s in sets(1..6), weights in prop::collection::vec(1u64..1_000_000, 6), k in 1u64..1000
        ) {
            let a: Vec<(&ParamSet, u64)> = s.iter().zip(&weights).map(|(p, &w)| (p, w)).collect();
            let b: Vec<(&ParamSet, u64)> = s.iter().zip(&weights).map(|(p, &w)| (p, w * k)).collect();
            prop_assert_eq!(values(&fedavg(&a).unwrap()), values(&fedavg(&b).unwrap()));
        }

        #[test]
        fn median_stays_within_the_honest_range_despite_one_outlier(
            honest in sets(2..7), outlier in prop_oneof![Just(1e30f32), Just(-1e30f32)]
        ) {
            let (wl, bl) = {
                let mut it = honest[0].iter();
                (it.next().unwrap().1.len(), it.next().unwrap().1.len())
            };
            let bad = set(&vec![outlier; wl], &vec![outlier; bl]);
            let mut all: Vec<&ParamSet> = honest.iter().collect();
            all.push(&bad);
            let med = coordinate_median(&all).unwrap();
            for (name, t) in med.iter() {
                for (j, &v) in t.data().iter().enumerate() {
                    let column: Vec<f32> = honest.iter().map(|h| h.get(name).unwrap().data()[j]).collect();
                    let lo = column.iter().copied().fold(f32::INFINITY, f32::min);
                    let hi = column.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    prop_assert!(lo <= v && v <= hi, "{name}[{j}] = {v} outside [{lo}, {hi}]");
                }
            }
        }
    }
}
