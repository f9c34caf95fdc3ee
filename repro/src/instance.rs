//! One instance of fn-train or fn-serve for the cold and warm measurements: a container of
//! the fedge image under the pod's limits where the Docker engine is usable, else a child
//! process of this binary (`repro fn-train` / `repro fn-serve`, as `edge-cluster local`
//! starts its nodes). The report says which ([`Runner`]); a process has no CPU or memory
//! limit, only the pod's thread count, and no cgroup counters of its own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use edge_cluster::nodes::Node;

use crate::docker::{Container, CpuStat, RunSpec};
pub use crate::results::Runner;

/// How instances are started.
#[derive(Debug, Clone)]
pub enum Launcher {
    /// `docker run` of the spec's image.
    Docker,
    /// This executable with the spec's service as subcommand; node logs go to the folder.
    Process(PathBuf),
}

impl Launcher {
    /// What the report calls it.
    pub fn runner(&self) -> Runner {
        match self {
            Launcher::Docker => Runner::Containers,
            Launcher::Process(_) => Runner::Processes,
        }
    }
}

/// A started instance.
#[derive(Debug)]
pub struct Instance {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Container(Container),
    Process(Box<Node>),
}

impl Instance {
    /// Starts `spec`; returns once it is started (a process: once it listens), not when it
    /// is ready.
    pub async fn start(launcher: &Launcher, spec: &RunSpec<'_>) -> anyhow::Result<Self> {
        match launcher {
            Launcher::Docker => {
                let c = Container::start(spec).await?;
                Ok(Self {
                    url: c.url.clone(),
                    inner: Inner::Container(c),
                })
            }
            Launcher::Process(logs) => {
                static NEXT: std::sync::atomic::AtomicUsize =
                    std::sync::atomic::AtomicUsize::new(0);
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                std::fs::create_dir_all(logs)?;
                let log = logs.join(format!("{}-{n}.log", spec.service));
                let node = Node::spawn(
                    spec.service,
                    spec.service,
                    &[],
                    &process_env(spec),
                    &log,
                    Duration::from_secs(60),
                )
                .await?;
                Ok(Self {
                    url: node.url.clone(),
                    inner: Inner::Process(Box::new(node)),
                })
            }
        }
    }

    /// Polls `GET path` until it answers 200 (or `timeout` passes).
    pub async fn wait_ready(
        &self,
        http: &reqwest::Client,
        path: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        crate::docker::poll_ready(http, &format!("{}{path}", self.url), timeout).await
    }

    /// The container's CFS counters; `None` for a process (no cgroup of its own).
    pub fn cpu_stat(&self) -> Option<CpuStat> {
        match &self.inner {
            Inner::Container(c) => c.cpu_stat(),
            Inner::Process(_) => None,
        }
    }

    /// Removes the container, or stops the process (stdin closed, killed after 5 s).
    pub async fn remove(self) {
        match self.inner {
            Inner::Container(c) => c.remove().await,
            Inner::Process(node) => node.stop(Duration::from_secs(5)).await,
        }
    }
}

/// What ran: the image with its id and creation time, or the process.
pub async fn describe(launcher: &Launcher, image: &str) -> String {
    match launcher {
        Launcher::Docker => crate::docker::image_id(image)
            .await
            .map_or_else(|| image.to_string(), |id| format!("{image} ({id})")),
        Launcher::Process(_) => {
            let service = image
                .rsplit('/')
                .next()
                .and_then(|s| s.split(':').next())
                .unwrap_or(image);
            format!("(none: a process, repro {service}; {image} was not used)")
        }
    }
}

/// The spec's environment for a process on this machine: paths inside a mount become the
/// host's, and the service gets the pod's CPU count as its thread count.
fn process_env<'a>(spec: &RunSpec<'a>) -> Vec<(&'a str, String)> {
    let mut env: Vec<(&str, String)> = spec
        .env
        .iter()
        .map(|(k, v)| (*k, host_path(v, &spec.mounts)))
        .collect();
    env.push((
        "FEDGE_THREADS",
        (spec.limits.cpus.ceil() as usize).max(1).to_string(),
    ));
    env
}

fn host_path(value: &str, mounts: &[(&Path, &str)]) -> String {
    for (host, inside) in mounts {
        if let Some(rest) = value.strip_prefix(inside)
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return format!("{}{rest}", host.display());
        }
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::SERVE_POD;

    #[test]
    fn a_process_reads_the_mounted_files_at_their_host_paths() {
        let host = Path::new("/tmp/work/model");
        let spec = RunSpec {
            image: "fedge/fn-serve:repro",
            service: "fn-serve",
            limits: SERVE_POD,
            mounts: vec![(host, "/model")],
            env: vec![
                ("MODEL_URI", "/model/model.safetensors".into()),
                ("OTHER", "/modelx".into()),
                ("FEDGE_POLL_SECONDS", "0".into()),
            ],
        };
        let env = process_env(&spec);
        assert_eq!(
            env[0],
            ("MODEL_URI", "/tmp/work/model/model.safetensors".into())
        );
        assert_eq!(env[1], ("OTHER", "/modelx".into()));
        assert_eq!(env[2], ("FEDGE_POLL_SECONDS", "0".into()));
        assert_eq!(env[3], ("FEDGE_THREADS", "1".into()));
    }
}
