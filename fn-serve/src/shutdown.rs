//! The shutdown signal: SIGTERM (what Knative sends) or Ctrl-C (local runs).

/// Resolves on the first SIGTERM or SIGINT. If a handler cannot be installed, that
/// signal is simply not awaited (the other one still is).
pub async fn sigterm_or_ctrl_c() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received: draining"),
        () = term => tracing::info!("SIGTERM received: draining"),
    }
}
