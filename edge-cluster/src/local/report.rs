//! What `edge-cluster local` prints while it runs, and the summary it writes.

use std::path::Path;

use aggregator::history::{ClientStatus, RoundRecord, RoundStatus};

use super::serving::ServingReport;

/// What the run measured, also written as `summary.json`.
#[derive(Debug, serde::Serialize)]
pub struct Summary {
    /// Rounds run (this invocation).
    pub rounds: Vec<RoundRecord>,
    /// Wall time of all rounds, seconds.
    pub rounds_seconds: f64,
    /// Wall time from start to the end of the serving check, seconds.
    pub total_seconds: f64,
    /// CPU seconds each fn-train node used by the end of the rounds.
    pub node_cpu_seconds: Vec<f64>,
    /// CPU seconds the aggregator process used by the end of the rounds.
    pub aggregator_cpu_seconds: f64,
    /// The serving check.
    pub serving: Option<ServingReport>,
}

fn pct(v: f32) -> String {
    format!("{:.2}%", v * 100.0)
}

/// Prints one round's table.
pub fn print_round(r: &RoundRecord) {
    let status = match r.status {
        RoundStatus::Initial => "initial model".to_string(),
        RoundStatus::Completed => format!("completed -> v{}", r.version.unwrap_or(0)),
        RoundStatus::Failed => format!("FAILED: {}", r.failure.as_deref().unwrap_or("")),
    };
    println!("round {} [{}] {status}", r.round, r.strategy);
    if !r.clients.is_empty() {
        println!(
            "  {:<10} {:>8} {:>9} {:>9} {:>8} {:>8} {:>7}  status",
            "client", "examples", "loss", "accuracy", "train s", "rtt s", "norm"
        );
    }
    for c in &r.clients {
        let status = match &c.status {
            ClientStatus::Accepted => "accepted".to_string(),
            ClientStatus::Rejected { reason } => format!("REJECTED: {reason}"),
            ClientStatus::Failed { reason } => format!("FAILED: {reason}"),
            ClientStatus::Timeout { after_seconds } => {
                format!("TIMEOUT after {after_seconds:.0} s")
            }
        };
        println!(
            "  {:<10} {:>8} {:>9.4} {:>9} {:>8.2} {:>8.2} {:>7}  {status}",
            c.client_id,
            c.num_examples,
            c.epoch_loss.last().copied().unwrap_or(f32::NAN),
            c.epoch_accuracy.last().map_or("-".into(), |a| pct(*a)),
            c.train_seconds,
            c.round_trip_seconds,
            c.update_norm.map_or("-".into(), |n| format!("{n:.2}")),
        );
    }
    if let Some(g) = &r.global {
        println!(
            "  global test: accuracy {}  loss {:.4}  ({} images)",
            pct(g.accuracy),
            g.loss,
            g.examples
        );
    }
    let t = &r.timings;
    println!(
        "  round time {:.2} s = clients {:.2} (training {:.2}, transfer/other {:.2}) + validation {:.3} + aggregation {:.3} + evaluation {:.2} + store {:.3}",
        t.total,
        t.clients,
        t.training,
        t.transfer,
        t.validation,
        t.aggregation,
        t.evaluation,
        t.store
    );
}

pub fn print_summary_table(history: &[RoundRecord]) {
    println!(
        "\n round | status    | global acc | global loss | round s | train s | transfer s | aggr s | eval s"
    );
    println!(
        "-------+-----------+------------+-------------+---------+---------+------------+--------+-------"
    );
    for r in history {
        let (acc, loss) = r.global.as_ref().map_or(("-".into(), "-".into()), |g| {
            (pct(g.accuracy), format!("{:.4}", g.loss))
        });
        let t = &r.timings;
        println!(
            " {:>5} | {:<9} | {:>10} | {:>11} | {:>7.2} | {:>7.2} | {:>10.2} | {:>6.3} | {:>6.2}",
            r.round,
            format!("{:?}", r.status).to_lowercase(),
            acc,
            loss,
            t.total,
            t.training,
            t.transfer,
            t.aggregation,
            t.evaluation
        );
    }
}

/// Prints the CPU time each process used, against the wall time it would be on `cores`
/// idle cores.
pub fn print_cpu(node_cpu: &[f64], own_cpu: f64) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let total_cpu: f64 = node_cpu.iter().sum::<f64>() + own_cpu;
    println!(
        "CPU time: fn-train nodes {} s (incl. shard loading), aggregator {own_cpu:.1} s (evaluation, aggregation, store); {total_cpu:.1} CPU-s in all = {:.1} s of wall time on {cores} idle core(s)",
        node_cpu
            .iter()
            .map(|c| format!("{c:.1}"))
            .collect::<Vec<_>>()
            .join(" + "),
        total_cpu / cores as f64
    );
}

impl Summary {
    /// Writes `summary.json` into `out` and says what the run left there.
    pub fn write(&self, out: &Path) -> anyhow::Result<()> {
        std::fs::write(out.join("summary.json"), serde_json::to_vec_pretty(self)?)?;
        println!(
            "\nwrote {0}/store/history.jsonl, {0}/store/versions/, {0}/charts/accuracy.svg, {0}/charts/loss.svg, {0}/summary.json, {0}/logs/",
            out.display()
        );
        println!("total: {:.1} s", self.total_seconds);
        Ok(())
    }
}
