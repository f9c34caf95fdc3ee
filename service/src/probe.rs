//! Waiting for a peer to come up: `GET url` until it answers 2xx. The local cluster waits
//! on its nodes with it and the integration tests on the servers they start, so the poll
//! and the timeout message are one piece of code (behind the `probe` feature: it needs the
//! HTTP client, which a service's own request path does not).

use std::time::{Duration, Instant};

/// How long a wait sleeps between two probes.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Whether `GET url` answers 2xx now.
pub async fn answers_ok(http: &reqwest::Client, url: &str) -> bool {
    http.get(url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// `url` did not answer 2xx within the timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    /// What was probed.
    pub url: String,
    /// How long it was given.
    pub timeout: Duration,
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} did not answer 2xx within {:?}",
            self.url, self.timeout
        )
    }
}

impl std::error::Error for NotReady {}

/// Probes `url` every [`POLL_INTERVAL`] until it answers 2xx, for at most `timeout`.
///
/// # Errors
/// [`NotReady`] once `timeout` has passed without a 2xx answer.
pub async fn wait_ok(http: &reqwest::Client, url: &str, timeout: Duration) -> Result<(), NotReady> {
    let deadline = Instant::now() + timeout;
    while !answers_ok(http, url).await {
        if Instant::now() >= deadline {
            return Err(NotReady {
                url: url.to_owned(),
                timeout,
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_port_is_not_ready_and_says_which_url() {
        // Bind then drop: nothing listens there any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/healthz");
        let e = wait_ok(&reqwest::Client::new(), &url, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert_eq!(e.url, url);
        assert!(e.to_string().contains("did not answer 2xx"), "{e}");
    }

    #[tokio::test]
    async fn a_server_answering_200_is_ready() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let url = format!("http://{addr}/healthz");
        wait_ok(&reqwest::Client::new(), &url, Duration::from_secs(10))
            .await
            .unwrap();
    }
}
