//! The HTTP listener every fedge service runs: hyper's HTTP/1.1 + HTTP/2 server under an
//! axum router, with the connection protections a pod needs and axum's own `serve` lacks.
//!
//! - **Header-read deadline** (slowloris): a client that has not sent a complete request
//!   head within [`ConnLimits::header_read_timeout`] is disconnected, however slowly it
//!   dribbles bytes. On HTTP/1 the same deadline bounds the wait for the next request on a
//!   kept-alive connection.
//! - **Idle timeout**: a connection with no request in flight and no bytes moving for
//!   [`ConnLimits::idle_timeout`] is closed gracefully (HTTP/2 included, where the header
//!   deadline does not apply).
//! - **Connection cap**: at most [`ConnLimits::max_connections`] are open at once. Past
//!   the cap the server stops accepting, so further clients wait in the kernel's listen
//!   backlog, costing this process nothing, until a connection closes. Size it to the
//!   pod's memory: each open connection may hold up to [`MAX_BUF_BYTES`] of read buffer.
//! - **Graceful shutdown**: when `shutdown` resolves the listener closes, idle connections
//!   close, requests in flight finish, then [`serve`] returns.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

/// Largest read buffer one connection may grow (request heads above it are refused; bodies
/// stream through it). Bounds the memory an open connection can pin.
pub const MAX_BUF_BYTES: usize = 64 * 1024;

/// The connection protections of [`serve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Open connections at most; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// A request head must arrive completely within this time.
    pub header_read_timeout: Duration,
    /// A connection with nothing in flight and no traffic for this long is closed.
    pub idle_timeout: Duration,
}

impl ConnLimits {
    /// `max_connections` with a 10 s header deadline and a 60 s idle timeout.
    pub const fn new(max_connections: usize) -> Self {
        Self {
            max_connections,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }

    /// These limits overridden by `FEDGE_MAX_CONNECTIONS`, `FEDGE_HEADER_READ_TIMEOUT_MS`
    /// and `FEDGE_IDLE_TIMEOUT_MS` where set.
    ///
    /// # Errors
    /// A variable that is set but not a positive integer, named.
    pub fn from_env(self) -> Result<Self, String> {
        self.from_vars(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with the variables read through `get`.
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn from_vars(self, get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let var = |name: &str| -> Result<Option<u64>, String> {
            match get(name) {
                None => Ok(None),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(Some(n)),
                    _ => Err(format!("{name}={v:?} is not a positive integer")),
                },
            }
        };
        let mut out = self;
        if let Some(n) = var("FEDGE_MAX_CONNECTIONS")? {
            out.max_connections = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(ms) = var("FEDGE_HEADER_READ_TIMEOUT_MS")? {
            out.header_read_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = var("FEDGE_IDLE_TIMEOUT_MS")? {
            out.idle_timeout = Duration::from_millis(ms);
        }
        Ok(out)
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves, then drains (see
/// the module docs) and returns.
///
/// # Errors
/// Only when `max_connections` is 0 or beyond what a semaphore holds; accept errors (out
/// of file descriptors, say) are logged and retried.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let cap = u32::try_from(limits.max_connections)
        .ok()
        .filter(|&n| n > 0 && (n as usize) <= Semaphore::MAX_PERMITS)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("max_connections {} is out of range", limits.max_connections),
            )
        })?;
    let slots = Arc::new(Semaphore::new(cap as usize));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_BUF_BYTES);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        // A slot first, then accept: past the cap, clients queue in the kernel.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and friends: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (app, builder, stop_rx) = (app.clone(), Arc::clone(&builder), stop_rx.clone());
        tokio::spawn(async move {
            serve_connection(stream, app, &builder, limits.idle_timeout, stop_rx).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every open connection holds a slot: holding them all means all have closed.
    let _ = slots.acquire_many(cap).await;
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    app: Router,
    builder: &auto::Builder<TokioExecutor>,
    idle_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let service = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let guard = activity.request_started();
            let app = app.clone();
            async move {
                let response = app.oneshot(req).await;
                drop(guard);
                response
            }
        })
    };
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let check_in = activity.idle_deadline(idle_timeout);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            changed = stop.changed(), if !closing => {
                if changed.is_err() || *stop.borrow() {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
            () = tokio::time::sleep(check_in), if !closing => {
                if activity.is_idle(idle_timeout) {
                    tracing::debug!(?idle_timeout, "closing an idle connection");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// When bytes last moved on a connection, and how many of its requests are in flight.
#[derive(Debug)]
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn quiet_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }

    fn is_idle(&self, timeout: Duration) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0 && self.quiet_for() >= timeout
    }

    /// How long until the connection could first count as idle.
    fn idle_deadline(&self, timeout: Duration) -> Duration {
        timeout
            .saturating_sub(self.quiet_for())
            .max(Duration::from_millis(10))
    }

    fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }
}

/// One request in flight; counts down (and marks activity) when dropped.
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A TCP stream that stamps [`Activity`] whenever bytes move.
#[derive(Debug)]
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
