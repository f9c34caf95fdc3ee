//! Aggregation strategies, wrapping `engine::federated`, and the Flower-named round settings.
//!
//! | strategy | `--strategy` | what the server does |
//! |---|---|---|
//! | FedAvg (default) | `fedavg` | mean of the updates weighted by example count |
//! | FedAvgM | `fedavgm[:momentum[:server_lr]]` | FedAvg as a pseudo-gradient `g = global - avg`, server momentum `m = beta*m + g`, `global -= lr * m` (Hsu et al. 2019) |
//! | FedProx | `fedprox[:mu]` | FedAvg; clients add `mu/2 * ||w - w_global||^2` (the mu travels in the train request) (Li et al. 2020) |
//! | coordinate-wise median | `median` | per-coordinate median, robust to a minority of poisoned updates (Yin et al. 2018) |
//! | trimmed mean | `trimmed-mean[:beta]` | per-coordinate mean after cutting the `beta` fraction at each end |

use std::str::FromStr;
use std::time::Duration;

use engine::{ParamSet, Tensor, federated};
use serde::{Deserialize, Serialize};

/// Which aggregation rule, with its parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum StrategyKind {
    /// Example-weighted mean.
    #[default]
    Fedavg,
    /// FedAvg with server momentum and a server learning rate.
    Fedavgm {
        /// Server momentum beta (Flower's `server_momentum`).
        momentum: f32,
        /// Server learning rate (Flower's `server_learning_rate`).
        server_lr: f32,
    },
    /// FedAvg plus a client-side proximal term.
    Fedprox {
        /// Proximal coefficient mu, sent to clients.
        mu: f32,
    },
    /// Coordinate-wise median.
    Median,
    /// Coordinate-wise trimmed mean.
    TrimmedMean {
        /// Fraction cut at each end, `0 <= beta < 0.5` (Flower's `beta`).
        beta: f32,
    },
}

impl std::fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fedavg => write!(f, "fedavg"),
            Self::Fedavgm {
                momentum,
                server_lr,
            } => write!(f, "fedavgm:{momentum}:{server_lr}"),
            Self::Fedprox { mu } => write!(f, "fedprox:{mu}"),
            Self::Median => write!(f, "median"),
            Self::TrimmedMean { beta } => write!(f, "trimmed-mean:{beta}"),
        }
    }
}

impl FromStr for StrategyKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.split(':');
        let name = parts.next().unwrap_or_default().to_ascii_lowercase();
        let mut num = |default: f32| -> Result<f32, String> {
            match parts.next() {
                None => Ok(default),
                Some(p) => p
                    .parse::<f32>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| format!("`{p}` in `{s}` is not a finite number")),
            }
        };
        let kind = match name.as_str() {
            "fedavg" => Self::Fedavg,
            "fedavgm" => Self::Fedavgm {
                momentum: num(0.9)?,
                server_lr: num(1.0)?,
            },
            "fedprox" => Self::Fedprox { mu: num(0.01)? },
            "median" | "fedmedian" => Self::Median,
            "trimmed-mean" | "trimmed_mean" | "fedtrimmedavg" => {
                Self::TrimmedMean { beta: num(0.2)? }
            }
            _ => {
                return Err(format!(
                    "unknown strategy `{s}` (fedavg, fedavgm[:momentum[:lr]], fedprox[:mu], median, trimmed-mean[:beta])"
                ));
            }
        };
        kind.validate()?;
        Ok(kind)
    }
}

impl StrategyKind {
    /// Checks the parameters' ranges.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Self::Fedavgm {
                momentum,
                server_lr,
            } if !((0.0..1.0).contains(&momentum) && server_lr > 0.0 && server_lr.is_finite()) => {
                Err(format!(
                    "fedavgm needs 0 <= momentum < 1 and server_lr > 0, got {momentum}, {server_lr}"
                ))
            }
            Self::Fedprox { mu } if !(mu >= 0.0 && mu.is_finite()) => {
                Err(format!("fedprox needs mu >= 0, got {mu}"))
            }
            Self::TrimmedMean { beta } if !(0.0..0.5).contains(&beta) => {
                Err(format!("trimmed-mean needs 0 <= beta < 0.5, got {beta}"))
            }
            _ => Ok(()),
        }
    }
}

/// A strategy with its server-side state (FedAvgM's momentum buffer).
#[derive(Debug, Clone, Default)]
pub struct Strategy {
    kind: StrategyKind,
    momentum: Option<ParamSet>,
}

impl Strategy {
    /// A fresh strategy (no momentum yet).
    pub fn new(kind: StrategyKind) -> Self {
        Self {
            kind,
            momentum: None,
        }
    }

    /// The rule and its parameters.
    pub fn kind(&self) -> &StrategyKind {
        &self.kind
    }

    /// The server-side state a restart needs to continue the same run: FedAvgM's momentum
    /// buffer once a round has built it; `None` for the stateless rules.
    pub fn server_state(&self) -> Option<&ParamSet> {
        match self.kind {
            StrategyKind::Fedavgm { .. } => self.momentum.as_ref(),
            _ => None,
        }
    }

    /// Puts back a state saved from [`server_state`](Self::server_state). The stateless rules
    /// ignore it; FedAvgM starts afresh at its next round if the layout does not match.
    pub fn restore_server_state(&mut self, state: ParamSet) {
        if matches!(self.kind, StrategyKind::Fedavgm { .. }) {
            self.momentum = Some(state);
        }
    }

    /// The proximal mu clients must use (FedProx), if any.
    pub fn proximal_mu(&self) -> Option<f32> {
        match self.kind {
            StrategyKind::Fedprox { mu } => Some(mu),
            _ => None,
        }
    }

    /// Combines accepted `updates` (weights, example count) into the next global model.
    ///
    /// # Errors
    /// When there is no update or the layouts differ (validation should have refused those).
    pub fn aggregate(
        &mut self,
        global: &ParamSet,
        updates: &[(&ParamSet, u64)],
    ) -> engine::Result<ParamSet> {
        let plain: Vec<&ParamSet> = updates.iter().map(|(p, _)| *p).collect();
        match self.kind {
            StrategyKind::Fedavg | StrategyKind::Fedprox { .. } => federated::fedavg(updates),
            StrategyKind::Median => federated::coordinate_median(&plain),
            StrategyKind::TrimmedMean { beta } => federated::trimmed_mean(&plain, beta),
            StrategyKind::Fedavgm {
                momentum,
                server_lr,
            } => {
                let avg = federated::fedavg(updates)?;
                self.server_step(global, &avg, momentum, server_lr)
            }
        }
    }

    /// FedAvgM: `g = global - avg`, `m = beta*m + g` (m = g the first time), `global - lr*m`.
    fn server_step(
        &mut self,
        global: &ParamSet,
        avg: &ParamSet,
        beta: f32,
        lr: f32,
    ) -> engine::Result<ParamSet> {
        global.check_same_layout(avg)?;
        let fresh = match &self.momentum {
            Some(m) => m.check_same_layout(global).is_err(),
            None => true,
        };
        if fresh {
            let mut zero = ParamSet::new();
            for (name, t) in global.iter() {
                zero.push(name, Tensor::zeros(t.shape())?)?;
            }
            self.momentum = Some(zero);
        }
        let mut next = ParamSet::new();
        if let Some(m) = self.momentum.as_mut() {
            for (name, mt) in m.iter_mut() {
                let (Some(g), Some(a)) = (global.get(name), avg.get(name)) else {
                    return Err(engine::Error::Weights(format!("missing tensor `{name}`")));
                };
                let mut out = g.clone();
                for ((o, mv), av) in out.data_mut().iter_mut().zip(mt.data_mut()).zip(a.data()) {
                    let grad = *o - av;
                    *mv = if fresh { grad } else { beta * *mv + grad };
                    *o -= lr * *mv;
                }
                next.push(name, out)?;
            }
        }
        Ok(next)
    }
}

/// Round settings, named as Flower names them where they mean the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoundSettings {
    /// Fraction of available clients sampled each round (Flower `fraction_fit`).
    pub fraction_fit: f64,
    /// Fewest clients sampled, and fewest accepted updates for a round to aggregate
    /// (Flower `min_fit_clients`).
    pub min_fit_clients: usize,
    /// Fewest reachable clients for a round to start (Flower `min_available_clients`).
    pub min_available_clients: usize,
    /// Whether a round with failures or rejections still aggregates the rest (Flower
    /// `accept_failures`).
    pub accept_failures: bool,
    /// Budget for the whole client phase of a round (Flower `round_timeout`), seconds.
    pub round_timeout_secs: f64,
    /// Budget for one client's reply, seconds.
    pub client_timeout_secs: f64,
}

impl Default for RoundSettings {
    fn default() -> Self {
        Self {
            fraction_fit: 1.0,
            min_fit_clients: 1,
            min_available_clients: 1,
            accept_failures: true,
            round_timeout_secs: 600.0,
            client_timeout_secs: 300.0,
        }
    }
}

impl RoundSettings {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.fraction_fit > 0.0 && self.fraction_fit <= 1.0) {
            return Err(format!("fraction_fit {} not in (0, 1]", self.fraction_fit));
        }
        if self.min_fit_clients == 0 {
            return Err("min_fit_clients must be at least 1".into());
        }
        for (name, v) in [
            ("round_timeout_secs", self.round_timeout_secs),
            ("client_timeout_secs", self.client_timeout_secs),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return Err(format!("{name} must be positive, got {v}"));
            }
        }
        Ok(())
    }

    /// How many of `available` clients to sample: `max(floor(available * fraction_fit),
    /// min_fit_clients)`, capped at `available` (Flower's `num_fit_clients`).
    pub fn sample_size(&self, available: usize) -> usize {
        let by_fraction = (available as f64 * self.fraction_fit).floor() as usize;
        by_fraction.max(self.min_fit_clients).min(available)
    }

    /// The per-client timeout.
    pub fn client_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.client_timeout_secs.min(self.round_timeout_secs))
    }

    /// The round's client-phase timeout.
    pub fn round_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.round_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[f32]) -> ParamSet {
        let mut p = ParamSet::new();
        p.push("w", Tensor::from_slice(&[v.len()], v).unwrap())
            .unwrap();
        p
    }

    #[test]
    fn parses_flower_like_names() {
        assert_eq!(
            "fedavg".parse::<StrategyKind>().unwrap(),
            StrategyKind::Fedavg
        );
        assert_eq!(
            "fedavgm:0.5:2".parse::<StrategyKind>().unwrap(),
            StrategyKind::Fedavgm {
                momentum: 0.5,
                server_lr: 2.0
            }
        );
        assert_eq!(
            "trimmed-mean".parse::<StrategyKind>().unwrap(),
            StrategyKind::TrimmedMean { beta: 0.2 }
        );
        assert!("trimmed-mean:0.5".parse::<StrategyKind>().is_err());
        assert!("krum".parse::<StrategyKind>().is_err());
    }

    #[test]
    fn fedavgm_applies_server_momentum() {
        // global 1.0, clients average to 0.0 each round: g = 1 - 0 = 1.
        // round 1: m = 1, global = 1 - 0.5*1 = 0.5
        // round 2 (global 0.5, avg 0): g = 0.5, m = 0.9*1 + 0.5 = 1.4, global = 0.5 - 0.7 = -0.2
        let mut s = Strategy::new(StrategyKind::Fedavgm {
            momentum: 0.9,
            server_lr: 0.5,
        });
        let zero = set(&[0.0]);
        let g1 = s.aggregate(&set(&[1.0]), &[(&zero, 5)]).unwrap();
        assert!((g1.get("w").unwrap().data()[0] - 0.5).abs() < 1e-6);
        let g2 = s.aggregate(&g1, &[(&zero, 5)]).unwrap();
        assert!((g2.get("w").unwrap().data()[0] + 0.2).abs() < 1e-6);
    }

    #[test]
    fn sample_size_follows_flower() {
        let s = RoundSettings {
            fraction_fit: 0.5,
            min_fit_clients: 2,
            ..RoundSettings::default()
        };
        assert_eq!(s.sample_size(10), 5);
        assert_eq!(s.sample_size(3), 2);
        assert_eq!(s.sample_size(1), 1);
    }

    #[test]
    fn median_ignores_one_outlier() {
        let mut s = Strategy::new(StrategyKind::Median);
        let (a, b, c) = (set(&[1.0]), set(&[2.0]), set(&[1000.0]));
        let out = s
            .aggregate(&set(&[0.0]), &[(&a, 1), (&b, 1), (&c, 1)])
            .unwrap();
        assert_eq!(out.get("w").unwrap().data()[0], 2.0);
    }
}
