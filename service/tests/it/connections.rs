//! The listener's protections against real sockets: a slow header is cut off, idle
//! connections are closed, connections past the cap wait in the backlog, and shutdown
//! lets a request in flight finish.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use service::serve::{ConnLimits, serve};

/// Serves a router (`/` answers "ok", `/slow` after 300 ms) with `limits` on a loopback
/// port, in its own runtime thread; returns the address and the shutdown trigger.
fn start(limits: ConnLimits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let app = Router::new().route("/", get(|| async { "ok" })).route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "slow ok"
                }),
            );
            serve(listener, app, limits, async {
                let _ = stop_rx.await;
            })
            .await
            .unwrap();
        });
    });
    (addr_rx.recv().unwrap(), stop_tx)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Sends a keep-alive GET and reads one response (headers and the short body).
fn get_on(s: &mut TcpStream, path: &str) -> String {
    write!(s, "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut buf = [0u8; 1024];
    let mut got = String::new();
    while !(got.contains("\r\n\r\n") && got.ends_with("ok")) {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the response ended: {got:?}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    got
}

/// Blocks until the server closes `s` (EOF or reset); returns how long that took.
fn time_to_close(s: &mut TcpStream) -> Duration {
    let t = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return t.elapsed(),
            Ok(_) => {}
        }
    }
}

fn limits(max: usize, header_ms: u64, idle_ms: u64) -> ConnLimits {
    ConnLimits {
        max_connections: max,
        header_read_timeout: Duration::from_millis(header_ms),
        idle_timeout: Duration::from_millis(idle_ms),
    }
}

#[test]
fn a_header_dribbled_slower_than_the_deadline_is_cut_off() {
    let (addr, _stop) = start(limits(8, 300, 10_000));
    let mut s = connect(addr);
    let t = Instant::now();
    // One byte every 50 ms keeps the connection busy but never finishes the head.
    let head = b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for b in head {
        if s.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        if t.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    let closed_after = t.elapsed() + time_to_close(&mut s);
    assert!(
        closed_after < Duration::from_secs(3),
        "slow header still open after {closed_after:?}"
    );
    // The server still answers others.
    assert!(get_on(&mut connect(addr), "/").starts_with("HTTP/1.1 200"));
}

#[test]
fn an_idle_connection_is_closed_and_a_busy_one_is_not() {
    let (addr, _stop) = start(limits(8, 10_000, 400));
    let mut s = connect(addr);
    assert!(get_on(&mut s, "/").starts_with("HTTP/1.1 200"));
    let closed = time_to_close(&mut s);
    assert!(
        closed >= Duration::from_millis(250) && closed < Duration::from_secs(3),
        "idle connection closed after {closed:?}, expected about 400 ms"
    );
    // A request in flight longer than... the idle timeout is not idle time: a 300 ms
    // handler after 200 ms of quiet completes on the same connection.
    let mut s = connect(addr);
    std::thread::sleep(Duration::from_millis(200));
    assert!(get_on(&mut s, "/slow").contains("slow ok"));
}

#[test]
fn connections_past_the_cap_wait_in_the_backlog_until_a_slot_frees() {
    let (addr, _stop) = start(limits(2, 10_000, 10_000));
    let mut a = connect(addr);
    let mut b = connect(addr);
    assert!(get_on(&mut a, "/").starts_with("HTTP/1.1 200"));
    assert!(get_on(&mut b, "/").starts_with("HTTP/1.1 200"));
    // The third TCP handshake completes in the kernel, but nobody reads its request.
    let mut c = connect(addr);
    write!(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    c.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 64];
    let waited = c.read(&mut buf);
    assert!(
        matches!(&waited, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
            || e.kind() == std::io::ErrorKind::TimedOut),
        "served past the cap: {waited:?}"
    );
    // Closing one frees a slot: the waiting request is served.
    drop(a);
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = String::new();
    while !got.ends_with("ok") {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0);
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    drop(b);
}

#[test]
fn shutdown_lets_the_request_in_flight_finish_and_refuses_new_ones() {
    let (addr, stop) = start(limits(8, 10_000, 10_000));
    let mut s = connect(addr);
    write!(s, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    stop.send(()).unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    assert!(got.contains("slow ok"), "{got:?}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(TcpStream::connect(addr).is_err(), "still accepting");
}

#[test]
fn limits_come_from_the_environment_when_set() {
    let base = ConnLimits::new(64);
    assert_eq!(base.from_vars(|_| None).unwrap(), base);
    let set = |value: &'static str| {
        move |name: &str| (name == "FEDGE_IDLE_TIMEOUT_MS").then(|| value.to_owned())
    };
    assert_eq!(
        base.from_vars(set("1500")).unwrap().idle_timeout,
        Duration::from_millis(1500)
    );
    assert!(
        base.from_vars(set("soon"))
            .unwrap_err()
            .contains("FEDGE_IDLE_TIMEOUT_MS")
    );
    assert!(base.from_vars(set("0")).is_err());
}
