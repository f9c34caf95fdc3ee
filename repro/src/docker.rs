//! Containers of the fedge images, started with `docker run` under the paper's pod limits
//! and the testbed's hardening (deploy/compose.yaml), and their cgroup CPU counters.
//! [`crate::instance`] falls back to processes where the engine is not usable.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

/// CPU and memory limits of a pod.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// CPU quota, cores.
    pub cpus: f64,
    /// Memory limit, MiB (swap included: no swap).
    pub memory_mib: u64,
}

/// fn-train's pod: 1 CPU / 200 MiB.
pub const TRAIN_POD: Limits = Limits {
    cpus: 1.0,
    memory_mib: 200,
};
/// fn-serve's pod: 0.4 CPU / 100 MiB.
pub const SERVE_POD: Limits = Limits {
    cpus: 0.4,
    memory_mib: 100,
};

/// A container to start.
#[derive(Debug, Clone)]
pub struct RunSpec<'a> {
    /// Image reference, e.g. `fedge/fn-serve:local`.
    pub image: &'a str,
    /// The service in it (`fn-train` or `fn-serve`): the subcommand when it runs as a
    /// process instead ([`crate::instance`]).
    pub service: &'a str,
    /// Pod limits.
    pub limits: Limits,
    /// Read-only bind mounts: (host path, container path).
    pub mounts: Vec<(&'a Path, &'a str)>,
    /// Environment.
    pub env: Vec<(&'a str, String)>,
}

/// A started container, published on a loopback port.
#[derive(Debug)]
pub struct Container {
    /// Full container id.
    pub id: String,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

/// Whether the Docker engine answers.
pub async fn available() -> bool {
    tokio::process::Command::new("docker")
        .args(["info", "-f", "{{.ServerVersion}}"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// Whether `image` is present locally.
pub async fn has_image(image: &str) -> bool {
    tokio::process::Command::new("docker")
        .args(["image", "inspect", image])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// `docker image inspect` id and creation time of `image`.
pub async fn image_id(image: &str) -> Option<String> {
    let out = tokio::process::Command::new("docker")
        .args(["image", "inspect", "-f", "{{.Id}} {{.Created}}", image])
        .output()
        .await
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Container {
    /// `docker run -d` of `spec`, its port 8080 published on a free loopback port. Returns
    /// as soon as docker has started it (not when the service is ready).
    pub async fn start(spec: &RunSpec<'_>) -> anyhow::Result<Self> {
        let port = free_port()?;
        let mut args: Vec<String> = [
            "run",
            "-d",
            "--rm",
            "--user",
            "65532:65532",
            "--read-only",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges:true",
            "--tmpfs",
            "/tmp:size=16m,mode=1777",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        args.extend([
            "--cpus".into(),
            spec.limits.cpus.to_string(),
            "--memory".into(),
            format!("{}m", spec.limits.memory_mib),
            "--memory-swap".into(),
            format!("{}m", spec.limits.memory_mib),
            "-p".into(),
            format!("127.0.0.1:{port}:8080"),
        ]);
        for (host, inside) in &spec.mounts {
            args.extend(["-v".into(), format!("{}:{inside}:ro", host.display())]);
        }
        for (k, v) in &spec.env {
            args.extend(["-e".into(), format!("{k}={v}")]);
        }
        args.push(spec.image.into());
        let out = tokio::process::Command::new("docker")
            .args(&args)
            .output()
            .await
            .context("running docker")?;
        if !out.status.success() {
            bail!(
                "docker run {}: {}",
                spec.image,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Self {
            id: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    /// Polls `GET path` until it answers 200 (or `timeout` passes).
    pub async fn wait_ready(
        &self,
        http: &reqwest::Client,
        path: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        poll_ready(http, &format!("{}{path}", self.url), timeout)
            .await
            .with_context(|| format!("container {}", self.id))
    }

    /// The container's CPU counters from its cgroup (v1 or v2).
    pub fn cpu_stat(&self) -> Option<CpuStat> {
        let candidates = [
            format!("/sys/fs/cgroup/cpu/docker/{}/cpu.stat", self.id),
            format!("/sys/fs/cgroup/cpu,cpuacct/docker/{}/cpu.stat", self.id),
            format!(
                "/sys/fs/cgroup/system.slice/docker-{}.scope/cpu.stat",
                self.id
            ),
            format!("/sys/fs/cgroup/docker/{}/cpu.stat", self.id),
        ];
        candidates
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .map(|t| CpuStat::parse(&t))
    }

    /// `docker rm -f`.
    pub async fn remove(self) {
        let _ = tokio::process::Command::new("docker")
            .args(["rm", "-f", &self.id])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await;
    }
}

/// CFS throttling counters of a cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuStat {
    /// Enforcement periods elapsed.
    pub nr_periods: u64,
    /// Periods in which the group was throttled.
    pub nr_throttled: u64,
    /// Total time throttled, microseconds.
    pub throttled_usec: u64,
}

impl CpuStat {
    /// Parses cgroup v2 `cpu.stat` (`throttled_usec`) or v1 (`throttled_time`, ns).
    pub fn parse(text: &str) -> Self {
        let mut s = Self::default();
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let (Some(k), Some(v)) = (it.next(), it.next().and_then(|v| v.parse::<u64>().ok()))
            else {
                continue;
            };
            match k {
                "nr_periods" => s.nr_periods = v,
                "nr_throttled" => s.nr_throttled = v,
                "throttled_usec" => s.throttled_usec = v,
                "throttled_time" => s.throttled_usec = v / 1000,
                _ => {}
            }
        }
        s
    }

    /// Counters accumulated since `before`.
    pub fn since(self, before: Self) -> Self {
        Self {
            nr_periods: self.nr_periods.saturating_sub(before.nr_periods),
            nr_throttled: self.nr_throttled.saturating_sub(before.nr_throttled),
            throttled_usec: self.throttled_usec.saturating_sub(before.throttled_usec),
        }
    }
}

/// A free loopback port (bound and released: a small race, fine on one machine).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Polls `GET url` every 2 ms until it answers 2xx (or `timeout` passes): the cold-start
/// figures are read off this loop, so it polls faster than `service::probe`'s 10 ms.
pub async fn poll_ready(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{url} not ready within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_cgroup_versions() {
        let v1 = CpuStat::parse("nr_periods 10\nnr_throttled 4\nthrottled_time 2500000\n");
        assert_eq!(
            v1,
            CpuStat {
                nr_periods: 10,
                nr_throttled: 4,
                throttled_usec: 2500
            }
        );
        let v2 = CpuStat::parse("usage_usec 9\nnr_periods 7\nnr_throttled 3\nthrottled_usec 42\n");
        assert_eq!(v2.throttled_usec, 42);
        assert_eq!(v2.since(v1).nr_throttled, 0);
        assert_eq!(v1.since(v2).nr_periods, 3);
    }
}
