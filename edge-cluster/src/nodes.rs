//! Child-process nodes of the local cluster, and the process-level glue they share.
//!
//! A node is this same binary run with a hidden subcommand (`fn-train`, `fn-serve`): it
//! binds `127.0.0.1:0`, prints `FEDGE_LISTENING <addr>` as its first stdout line, then
//! serves until its stdin closes (the parent exited or is shutting it down, even after a
//! `kill -9` of the parent) or it gets SIGTERM/Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser as _;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// The first stdout line of a node.
pub const READY_PREFIX: &str = "FEDGE_LISTENING ";

/// The hidden subcommands that make a binary its own cluster's nodes (`edge-cluster`,
/// `repro`): the parent starts `<exe> fn-train <flags>` and `<exe> fn-serve <flags>`.
#[derive(Debug, clap::Subcommand)]
pub enum NodeCommand {
    /// (internal) Run an fn-train node; arguments are fn-train's own flags.
    #[command(hide = true)]
    FnTrain {
        /// fn-train's flags.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// (internal) Run an fn-serve node; arguments are fn-serve's own flags.
    #[command(hide = true)]
    FnServe {
        /// fn-serve's flags.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

impl NodeCommand {
    /// Runs the node until it is told to stop.
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            NodeCommand::FnTrain { args } => run_async(fn_train(args)),
            NodeCommand::FnServe { args } => run_async(fn_serve(args)),
        }
    }
}

/// A binary's exit status: success, or failure with the error chain on stderr after `name`.
pub fn exit_code(name: &str, result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs fn-train with `args` (its own flags) as a node.
pub async fn fn_train(args: Vec<String>) -> anyhow::Result<()> {
    let config =
        fn_train::Config::try_parse_from(std::iter::once("fn-train".to_string()).chain(args))?;
    let listener = announce().await?;
    fn_train::init_tracing();
    fn_train::run(config, listener, shutdown_signal()).await
}

/// Runs fn-serve with `args` (its own flags) as a node.
pub async fn fn_serve(args: Vec<String>) -> anyhow::Result<()> {
    let config =
        fn_serve::Config::try_parse_from(std::iter::once("fn-serve".to_string()).chain(args))?;
    let listener = announce().await?;
    fn_serve::init_tracing();
    fn_serve::run(config, listener, shutdown_signal()).await
}

async fn announce() -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mut out = tokio::io::stdout();
    out.write_all(format!("{READY_PREFIX}{}\n", listener.local_addr()?).as_bytes())
        .await?;
    out.flush().await?;
    Ok(listener)
}

/// Resolves on stdin EOF, SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let stdin_closed = async {
        let mut buf = [0u8; 64];
        let mut stdin = tokio::io::stdin();
        loop {
            match tokio::io::AsyncReadExt::read(&mut stdin, &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        () = stdin_closed => {},
        () = service::shutdown::sigterm_or_ctrl_c() => {},
    }
}

/// A running child node.
#[derive(Debug)]
pub struct Node {
    /// Display name (`client-0`, `fn-serve`).
    pub name: String,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    child: Child,
    /// Where its stderr (and stdout after the first line) goes.
    log: PathBuf,
}

impl Node {
    /// Spawns this executable with `<subcommand> <args>` and `envs`, logs to `log`, and
    /// waits (up to `ready_timeout`) for its listening line.
    pub async fn spawn(
        name: &str,
        subcommand: &str,
        args: &[String],
        envs: &[(&str, String)],
        log: &Path,
        ready_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating this executable")?;
        Self::spawn_exe(&exe, name, subcommand, args, envs, log, ready_timeout).await
    }

    /// [`spawn`](Self::spawn) with another executable (tests use the built `edge-cluster`).
    pub async fn spawn_exe(
        exe: &Path,
        name: &str,
        subcommand: &str,
        args: &[String],
        envs: &[(&str, String)],
        log: &Path,
        ready_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = Command::new(exe);
        cmd.arg(subcommand)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file.try_clone()?))
            .kill_on_drop(true);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(ready_timeout, lines.next_line())
            .await
            .with_context(|| {
                format!(
                    "{name} did not start within {ready_timeout:?} (log: {})",
                    log.display()
                )
            })??;
        let Some(addr) = first.as_deref().and_then(|l| l.strip_prefix(READY_PREFIX)) else {
            bail!("{name} exited before listening (log: {})", log.display());
        };
        let url = format!("http://{}", addr.trim());
        tokio::spawn(copy_lines(lines.into_inner(), log_file));
        Ok(Self {
            name: name.to_string(),
            url,
            child,
            log: log.to_path_buf(),
        })
    }

    /// The OS process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// CPU seconds (user + system) the process has used so far, from `/proc/<pid>/stat`
    /// (Linux; `None` elsewhere or once it has exited).
    pub fn cpu_seconds(&self) -> Option<f64> {
        self.child.id().and_then(cpu_seconds_of)
    }

    /// Closes its stdin (asking it to drain and exit), waits up to `grace`, then kills it.
    pub async fn stop(mut self, grace: Duration) {
        drop(self.child.stdin.take());
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }

    /// Kills it now (SIGKILL) and reaps it.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Polls `{url}/readyz` until it answers 200 (an fn-train node's shard is in memory).
    /// Fails at once, quoting the end of its log, if the process exits first (a shard that
    /// cannot be loaded, say).
    pub async fn wait_ready(
        &mut self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if service::probe::answers_ok(http, &format!("{}/readyz", self.url)).await {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "{} exited ({status}) before it was ready; the end of its log {}:\n{}",
                    self.name,
                    self.log.display(),
                    log_tail(&self.log, 3)
                );
            }
            if std::time::Instant::now() > deadline {
                bail!("{} not ready within {timeout:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The last `n` non-empty lines of a log file (empty if it cannot be read).
fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// CPU seconds (user + system) of process `pid`, from `/proc/<pid>/stat` in USER_HZ ticks
/// (100 per second on Linux).
pub fn cpu_seconds_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

async fn copy_lines(reader: impl AsyncRead + Unpin, file: std::fs::File) {
    let mut file = tokio::fs::File::from_std(file);
    let mut reader = BufReader::new(reader);
    let _ = tokio::io::copy_buf(&mut reader, &mut file).await;
}

/// Runs `fut` to completion on a multi-threaded runtime, then shuts the runtime down
/// without waiting on the thread blocked reading stdin (nodes watch it for EOF): dropping
/// the runtime would wait for that read, so a node that failed would linger until its
/// parent closed the pipe.
pub fn run_async(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(fut);
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}
