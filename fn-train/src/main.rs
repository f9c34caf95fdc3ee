//! fn-train binary: parse config, init tracing, bind 0.0.0.0:$PORT, serve until SIGTERM.

use std::process::ExitCode;

use clap::Parser as _;
use fn_train::{Config, init_tracing, run};

/// The static musl images' allocator: musl's own malloc unmaps large blocks on free, which
/// made every batch fault its buffers in again (deploy/README.md, "Allocator").
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    init_tracing();
    let addr = std::net::SocketAddr::from(([0, 0, 0, 0], config.port));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%addr, error = %e, "cannot bind");
            eprintln!("fn-train: cannot bind {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(config, listener, service::shutdown::sigterm_or_ctrl_c()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "fn-train failed");
            eprintln!("fn-train: {e:#}");
            ExitCode::FAILURE
        }
    }
}
