//! Cold start: spawn a command that starts fn-serve on PORT, then POST a one-image V2
//! request over a raw HTTP/1.1 socket as fast as possible until the first 200 OK.
//! Prints one line per run and the median / p90 / max in milliseconds.
//!
//!     rustc -O fn-serve/examples/coldstart.rs -o coldstart   # std only
//!     ./coldstart RUNS PORT BODY_FILE -- CMD ARGS...
//!
//! The command must end the server when it receives SIGTERM (fn-serve does, run-limited
//! passes it on).
//!
//! With `COLD_CGROUP=<dir>[:<dir>...]` (cgroup directories whose CPU quota and memory
//! limit are already set: one v2 directory, or the v1 cpu and memory ones) each spawned
//! process is moved into that cgroup right after
//! spawn, so the limits apply without a wrapper script's own start-up in the figure.
//! Besides the wall time, the server's CPU time up to the first 200 (sum of its threads'
//! /proc schedstat run time) is printed: it does not depend on how loaded the host is.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn try_once(port: u16, body: &[u8]) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let head = format!(
        "POST /v2/models/mnist/infer HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if s.write_all(head.as_bytes()).is_err() || s.write_all(body).is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && &buf[9..12] == b"200"
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// CPU time (ms) of all threads of `pid` so far.
fn cpu_ms(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return f64::NAN;
    };
    let mut ns = 0u64;
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
            ns += s
                .split_whitespace()
                .next()
                .and_then(|x| x.parse().ok())
                .unwrap_or(0);
        }
    }
    ns as f64 / 1e6
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let sep = args
        .iter()
        .position(|a| a == "--")
        .ok_or("usage: RUNS PORT BODY -- CMD...")?;
    let runs: usize = args[1].parse()?;
    let port: u16 = args[2].parse()?;
    let body = std::fs::read(&args[3])?;
    let cmd = &args[sep + 1..];
    let mut times = Vec::new();
    let mut cpus = Vec::new();
    for run in 0..runs {
        let t0 = Instant::now();
        let mut child = Command::new(&cmd[0])
            .args(&cmd[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        if let Ok(cgs) = std::env::var("COLD_CGROUP") {
            for cg in cgs.split(':').filter(|c| !c.is_empty()) {
                std::fs::write(format!("{cg}/cgroup.procs"), child.id().to_string())?;
            }
        }
        let mut ok = false;
        while t0.elapsed() < Duration::from_secs(10) {
            if try_once(port, &body) {
                ok = true;
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        let cpu = cpu_ms(child.id());
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
        if !ok {
            return Err(format!("run {run}: no 200 within 10 s").into());
        }
        println!("run {run}: {ms:.2} ms wall, {cpu:.2} ms CPU");
        times.push(ms);
        cpus.push(cpu);
        std::thread::sleep(Duration::from_millis(100));
    }
    times.sort_by(f64::total_cmp);
    cpus.sort_by(f64::total_cmp);
    let q = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    println!(
        "cold start (spawn -> first 200 OK), {} runs: median {:.2} ms, p90 {:.2} ms, max {:.2} ms; server CPU to first 200: median {:.2} ms",
        times.len(),
        q(0.5),
        q(0.9),
        times[times.len() - 1],
        cpus[cpus.len() / 2]
    );
    Ok(())
}
