//! fn-serve binary: parse the config, init tracing, bind 0.0.0.0:$PORT, serve until
//! SIGTERM / Ctrl-C, drain, exit 0.

use std::process::ExitCode;

use clap::Parser;

/// The static musl images' allocator: musl's own malloc unmaps large blocks on free, which
/// made every batch fault its buffers in again (deploy/README.md, "Allocator").
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let config = fn_serve::Config::parse();
    fn_serve::init_tracing();
    match fn_serve::main_blocking(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "fn-serve failed");
            eprintln!("fn-serve: {e:#}");
            ExitCode::FAILURE
        }
    }
}
