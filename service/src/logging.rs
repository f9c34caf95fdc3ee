//! The global log subscriber, set up the same way by every binary.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// A service in a pod: stdout, JSON lines (one flattened object per event, with the
    /// current span) when stdout is not a terminal, human-readable when it is.
    Stdout,
    /// A command-line tool whose stdout is its report: stderr, human-readable.
    Stderr,
}

/// Installs the global subscriber. `RUST_LOG` overrides `default_filter` (e.g.
/// `"fn_serve=info,tower_http=warn"`). Idempotent: a second call changes nothing.
pub fn init(default_filter: &str, sink: Sink) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match sink {
        Sink::Stderr => builder.with_writer(std::io::stderr).try_init(),
        Sink::Stdout if std::io::stdout().is_terminal() => {
            builder.with_writer(std::io::stdout).try_init()
        }
        Sink::Stdout => builder
            .with_writer(std::io::stdout)
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
