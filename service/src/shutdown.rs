//! The shutdown signal: SIGTERM (what Knative sends) or Ctrl-C (local runs).

/// Resolves on the first SIGTERM or SIGINT. A handler that cannot be installed is logged
/// and not awaited (rather than resolving at once and stopping the server); the other
/// signal still is.
pub async fn sigterm_or_ctrl_c() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot install the Ctrl-C handler");
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
            Err(e) => {
                tracing::error!(error = %e, "cannot install the SIGTERM handler");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received: draining"),
        () = term => tracing::info!("SIGTERM received: draining"),
    }
}
