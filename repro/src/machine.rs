//! The machine a report was made on: CPU, cores, the SIMD tier the engine picked, the
//! commit, and the load other processes put on it (a shared machine slows every figure).

use serde::{Deserialize, Serialize};

/// Where and from what a report was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// `model name` of /proc/cpuinfo.
    pub cpu_model: String,
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// Whether the CPU has AVX2 and FMA, and AVX-512F.
    pub avx2_fma: bool,
    /// AVX-512F present.
    pub avx512f: bool,
    /// The kernel tier the engine runs on (`FEDGE_SIMD` may force one).
    pub simd_tier: String,
    /// Total memory, GiB.
    pub memory_gib: f64,
    /// `git rev-parse HEAD`, with `-dirty` when the tree has changes.
    pub commit: String,
    /// Docker server version, when the engine answers.
    pub docker: Option<String>,
    /// Cargo profile this binary was built with (`release`, or `dev` with debug asserts;
    /// the engine and kernels are optimised at opt-level 3 in both).
    #[serde(default)]
    pub profile: String,
}

impl Machine {
    /// Reads it from this machine.
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        };
        let flags = field("flags").unwrap_or_default();
        let has = |f: &str| flags.split_whitespace().any(|x| x == f);
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / (1024.0 * 1024.0));
        Self {
            cpu_model: field("model name").unwrap_or_else(|| "unknown".into()),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            avx2_fma: has("avx2") && has("fma"),
            avx512f: has("avx512f"),
            simd_tier: conv_kernels::dispatch::active_isa().name().to_string(),
            memory_gib,
            commit: commit(),
            docker: command_output("docker", &["version", "-f", "{{.Server.Version}}"]),
            profile: if cfg!(debug_assertions) {
                "dev (engine and kernels at opt-level 3, debug assertions on)".into()
            } else {
                "release".into()
            },
        }
    }
}

/// The 1-, 5- and 15-minute load averages.
pub fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut v = text
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(f64::NAN));
    [
        v.next().unwrap_or(f64::NAN),
        v.next().unwrap_or(f64::NAN),
        v.next().unwrap_or(f64::NAN),
    ]
}

fn commit() -> String {
    let head = command_output("git", &["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = command_output("git", &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty());
    if dirty { format!("{head}-dirty") } else { head }
}

/// Trimmed stdout of a command that succeeded.
pub fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_this_machine() {
        let m = Machine::detect();
        assert!(m.cores >= 1);
        assert!(!m.simd_tier.is_empty());
        assert!(load_average()[0] >= 0.0);
    }
}
