//! Round-relative limits: what one client may do to the aggregate, judged against the
//! other updates of the same round rather than against fixed numbers.
//!
//! A fixed bound is easy to game: a client claiming 10,000,000 examples (under a fixed cap)
//! with an update of norm 99 (under a fixed bound of 100) took 99.7 % of FedAvg's weight.
//! Once a round has at least `relative_min_updates` validated updates, and so a median
//! that an honest majority controls, each update is judged against that median:
//!
//! 1. direction: an update whose change `update - global` has a cosine with the
//!    coordinate-wise median change of the other updates below `min_cosine_vs_median`
//!    *and* below half the round's median cosine points away from what the round agrees on
//!    (a sign flip) or nowhere in particular (noise: its cosine is near 0) and is rejected.
//!    The second condition matters once a model has converged: with 10 local epochs on 400
//!    examples, honest updates agreed with each other at cosines of only 0.02-0.04, and a
//!    fixed 0.05 alone rejected every client of those rounds (no model was made). A
//!    majority of honest updates puts the round's median cosine on their side, so half of it
//!    still separates noise (about 0) and flips (negative) from them;
//! 2. weight: a claimed example count above `max_weight_vs_median` times the median claim
//!    is cut to that cap (honest clients with larger shards keep more weight than the median
//!    but cannot dominate), unless the client has a registered shard size: its claim was
//!    then already held to that size, which the aggregator knows better than any median
//!    (a skewed split gives honest clients shards of very different sizes);
//! 3. norm: a change longer than `max_norm_vs_median` times the median norm is clipped to
//!    it (scaled down, direction kept), as norm bounding does in Sun et al., "Can You Really
//!    Backdoor Federated Learning?" (2019).
//!
//! With fewer updates (one or two clients) no median is trustworthy and only the fixed
//! limits of [`validate`](crate::validate) apply.

use engine::{ParamSet, federated};

use crate::validate::ValidationLimits;

/// One validated update, as the round-relative checks need it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The update's weights.
    pub params: &'a ParamSet,
    /// The example count it claims.
    pub claimed: u64,
    /// L2 norm of `params - global`.
    pub norm: f32,
    /// Whether the claim was checked against the client's registered shard size (then it
    /// is not capped relative to the median).
    pub registered: bool,
}

/// What happens to one update.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Aggregated with this weight, its change clipped to `clip_to` when set.
    Keep {
        /// The FedAvg weight used (the claim, or the cap below it).
        weight: u64,
        /// The norm its change is scaled down to, when it was longer.
        clip_to: Option<f32>,
    },
    /// Left out of the aggregate, with the reason.
    Reject(String),
}

/// Judges every candidate against the round's medians (see the module docs); one verdict
/// per candidate, in order.
pub fn judge(
    global: &ParamSet,
    candidates: &[Candidate<'_>],
    limits: &ValidationLimits,
) -> Vec<Verdict> {
    let keep_all = || {
        candidates
            .iter()
            .map(|c| Verdict::Keep {
                weight: c.claimed,
                clip_to: None,
            })
            .collect()
    };
    if candidates.len() < limits.relative_min_updates.max(3) {
        return keep_all();
    }
    let claims: Vec<f64> = candidates.iter().map(|c| c.claimed as f64).collect();
    let norms: Vec<f64> = candidates.iter().map(|c| f64::from(c.norm)).collect();
    let weight_cap = limits
        .max_weight_vs_median
        .map(|k| (k * median(&claims)).ceil().max(1.0) as u64);
    let norm_cap = limits
        .max_norm_vs_median
        .map(|k| (f64::from(k) * median(&norms)) as f32);
    let cosines = limits
        .min_cosine_vs_median
        .map(|_| agreement(global, candidates));
    // The rejection threshold: the fixed minimum, lowered to half the round's median
    // cosine when the round as a whole agrees less than that (see the module docs).
    let min_cosine = limits.min_cosine_vs_median.map(|min| {
        let known: Vec<f64> = cosines.iter().flatten().flatten().copied().collect();
        let half_median = if known.is_empty() {
            f64::INFINITY
        } else {
            median(&known) / 2.0
        };
        f64::from(min).min(half_median)
    });
    candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if let (Some(min), Some(cos)) = (
                min_cosine,
                cosines.as_ref().and_then(|v| v.get(i).copied().flatten()),
            ) && cos < min
            {
                return Verdict::Reject(format!(
                    "update does not follow the round's median change (cosine {cos:.3} < {min:.3})"
                ));
            }
            let weight = match weight_cap {
                Some(cap) if !c.registered => c.claimed.min(cap),
                _ => c.claimed,
            };
            let clip_to = norm_cap.filter(|&cap| c.norm > cap);
            Verdict::Keep { weight, clip_to }
        })
        .collect()
}

/// Rounds up to this many updates judge each direction against the median of the *others*
/// (an attacker's own extreme values pull the median of all towards itself: a random
/// change of norm 99 had a cosine of 0.31 with it, honest ones 0.7); larger rounds use the
/// median of all, `n` medians of `n` updates being too slow.
const LEAVE_ONE_OUT_MAX: usize = 16;

/// Each candidate's cosine with the coordinate-wise median change of the others (of all,
/// past [`LEAVE_ONE_OUT_MAX`]); `None` where no median could be formed.
fn agreement(global: &ParamSet, candidates: &[Candidate<'_>]) -> Vec<Option<f64>> {
    let sets: Vec<&ParamSet> = candidates.iter().map(|c| c.params).collect();
    let median_of = |sets: &[&ParamSet]| match federated::coordinate_median(sets) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!(error = %e, "no coordinate median: direction check skipped");
            None
        }
    };
    if sets.len() > LEAVE_ONE_OUT_MAX {
        let all = median_of(&sets);
        return sets
            .iter()
            .map(|p| all.as_ref().map(|m| change_cosine(global, p, m)))
            .collect();
    }
    (0..sets.len())
        .map(|i| {
            let others: Vec<&ParamSet> = sets
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, p)| *p)
                .collect();
            median_of(&others).map(|m| change_cosine(global, sets[i], &m))
        })
        .collect()
}

/// Scales `params - global` down to norm `to` (its current norm is `from`), in place.
pub fn clip(global: &ParamSet, params: &mut ParamSet, from: f32, to: f32) {
    if !(from > to && from > 0.0) {
        return;
    }
    let scale = f64::from(to) / f64::from(from);
    for (name, t) in params.iter_mut() {
        let Some(g) = global.get(name) else { continue };
        for (v, &base) in t.data_mut().iter_mut().zip(g.data()) {
            let d = f64::from(*v) - f64::from(base);
            *v = (f64::from(base) + d * scale) as f32;
        }
    }
}

/// Median of `values` (mean of the two middle ones for an even count); 0 when empty.
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Cosine between `update - global` and `reference - global`, in f64; 1 when either change
/// is zero (nothing to disagree with).
fn change_cosine(global: &ParamSet, update: &ParamSet, reference: &ParamSet) -> f64 {
    let (mut dot, mut nu, mut nr) = (0.0f64, 0.0f64, 0.0f64);
    for (name, g) in global.iter() {
        let (Some(u), Some(r)) = (update.get(name), reference.get(name)) else {
            continue;
        };
        for ((&gv, &uv), &rv) in g.data().iter().zip(u.data()).zip(r.data()) {
            let du = f64::from(uv) - f64::from(gv);
            let dr = f64::from(rv) - f64::from(gv);
            dot += du * dr;
            nu += du * du;
            nr += dr * dr;
        }
    }
    if nu == 0.0 || nr == 0.0 {
        return 1.0;
    }
    dot / (nu.sqrt() * nr.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::Tensor;

    fn set(v: &[f32]) -> ParamSet {
        let mut p = ParamSet::new();
        p.push("w", Tensor::from_slice(&[v.len()], v).unwrap())
            .unwrap();
        p
    }

    fn norm(p: &ParamSet) -> f32 {
        crate::validate::update_norm(&set(&[0.0, 0.0]), p)
    }

    #[test]
    fn a_lying_count_is_capped_a_long_change_clipped_a_flip_rejected() {
        let global = set(&[0.0, 0.0]);
        let honest = [set(&[1.0, 1.0]), set(&[1.2, 0.9]), set(&[0.9, 1.1])];
        let boosted = set(&[1.0, 1.0]);
        let long = set(&[30.0, 30.0]);
        let flipped = set(&[-1.0, -1.0]);
        let mut c: Vec<Candidate<'_>> = honest
            .iter()
            .map(|p| Candidate {
                params: p,
                claimed: 100,
                norm: norm(p),
                registered: false,
            })
            .collect();
        c.push(Candidate {
            params: &boosted,
            claimed: 10_000_000,
            norm: norm(&boosted),
            registered: false,
        });
        c.push(Candidate {
            params: &long,
            claimed: 100,
            norm: norm(&long),
            registered: false,
        });
        c.push(Candidate {
            params: &flipped,
            claimed: 100,
            norm: norm(&flipped),
            registered: false,
        });
        let v = judge(&global, &c, &ValidationLimits::default());
        assert_eq!(
            v[0],
            Verdict::Keep {
                weight: 100,
                clip_to: None
            }
        );
        assert_eq!(
            v[3],
            Verdict::Keep {
                weight: 150,
                clip_to: None
            },
            "capped at 1.5 times the median claim"
        );
        let Verdict::Keep {
            weight: 100,
            clip_to: Some(to),
        } = v[4]
        else {
            panic!("{:?}", v[4]);
        };
        // 1.5 times the median norm (the median sits between two honest norms near sqrt 2).
        assert!((to - 1.5 * 2f32.sqrt()).abs() < 0.02, "{to}");
        assert!(
            matches!(&v[5], Verdict::Reject(r) if r.contains("cosine")),
            "{:?}",
            v[5]
        );

        let mut clipped = long.clone();
        clip(&global, &mut clipped, norm(&long), to);
        assert!((norm(&clipped) - to).abs() < 1e-3);
    }

    /// Honest updates after convergence: a small shared direction `c` under large
    /// independent changes (`e_i`, orthogonal), so each agrees with the others' median at a
    /// cosine of about 0.03, below the fixed 0.05.
    #[test]
    fn converged_honest_updates_are_kept_and_noise_among_them_is_not() {
        const DIM: usize = 8;
        let global = set(&[0.0; DIM]);
        let honest: Vec<ParamSet> = (1..=3)
            .map(|i| {
                let mut v = [0.0; DIM];
                v[0] = 0.15; // the shared direction c
                v[i] = 1.0; // this client's own change e_i
                set(&v)
            })
            .collect();
        let zero = set(&[0.0; DIM]);
        let candidate = |p| Candidate {
            params: p,
            claimed: 100,
            norm: crate::validate::update_norm(&zero, p),
            registered: false,
        };
        let c: Vec<Candidate<'_>> = honest.iter().map(candidate).collect();
        let v = judge(&global, &c, &ValidationLimits::default());
        assert!(
            v.iter().all(|v| matches!(v, Verdict::Keep { .. })),
            "converged honest round: {v:?}"
        );

        // Pure noise (no shared direction) among them is still rejected.
        let mut noise = [0.0; DIM];
        noise[4] = 1.0;
        let noise = set(&noise);
        let mut c = c;
        c.push(candidate(&noise));
        let v = judge(&global, &c, &ValidationLimits::default());
        assert!(
            v[..3].iter().all(|v| matches!(v, Verdict::Keep { .. })),
            "{v:?}"
        );
        assert!(
            matches!(&v[3], Verdict::Reject(r) if r.contains("cosine")),
            "{v:?}"
        );
    }

    /// A skewed split: the client with the large shard is registered with it, so its honest
    /// claim keeps its weight; unregistered, the same claim is cut to the median cap.
    #[test]
    fn a_claim_held_to_a_registered_shard_is_not_capped_by_the_median() {
        let global = set(&[0.0, 0.0]);
        let updates = [set(&[1.0, 1.0]), set(&[1.2, 0.9]), set(&[0.9, 1.1])];
        let judged = |registered| {
            let c: Vec<Candidate<'_>> = updates
                .iter()
                .zip([300, 400, 5_000])
                .map(|(p, claimed)| Candidate {
                    params: p,
                    claimed,
                    norm: norm(p),
                    registered,
                })
                .collect();
            judge(&global, &c, &ValidationLimits::default())
        };
        let weight = |v: &Verdict| match v {
            Verdict::Keep { weight, .. } => *weight,
            Verdict::Reject(r) => panic!("{r}"),
        };
        assert_eq!(weight(&judged(false)[2]), 600, "1.5 times the median claim");
        assert_eq!(weight(&judged(true)[2]), 5_000);
    }

    #[test]
    fn two_updates_have_no_trustworthy_median() {
        let global = set(&[0.0]);
        let (a, b) = (set(&[1.0]), set(&[-50.0]));
        let c = [
            Candidate {
                params: &a,
                claimed: 1,
                norm: 1.0,
                registered: false,
            },
            Candidate {
                params: &b,
                claimed: 1_000,
                norm: 50.0,
                registered: false,
            },
        ];
        let v = judge(&global, &c, &ValidationLimits::default());
        assert!(
            v.iter()
                .all(|v| matches!(v, Verdict::Keep { clip_to: None, .. }))
        );
    }
}
