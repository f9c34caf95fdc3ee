//! Measurement helper for `fn-train/bench/run.sh`: writes a shard folder and training
//! requests, and times cold starts and requests against the real binary over loopback.
//!
//! ```text
//! fn_train_bench make-shard --n 20000 --out /tmp/shard        # first N MNIST training images, raw IDX
//! fn_train_bench make-request --epochs 1 --out /tmp/req.json  # table1 CNN inline, batch 64, Adam 1e-3
//! fn_train_bench cold-start --bin target/release/fn-train --shard /tmp/shard --runs 21
//! fn_train_bench figure6 --bin target/release/fn-train --shard /tmp/shard --max-epochs 10
//! ```
//! HTTP is spoken over a plain `TcpStream` (HTTP/1.1, `Connection: close`) so the client adds
//! nothing measurable to the timings.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use clap::{Parser, Subcommand};
use engine::data::{idx, mnist};
use engine::weights::{self, WeightsMeta};

#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Writes the first N MNIST training images and labels as raw IDX files into OUT.
    MakeShard {
        #[arg(long)]
        n: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Writes a POST /train body (table1 CNN inline, batch 64, Adam lr 1e-3).
    MakeRequest {
        #[arg(long, default_value_t = 1)]
        epochs: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Spawns BIN RUNS times and reports the time from spawn to /readyz answering 200.
    ColdStart {
        #[arg(long)]
        bin: PathBuf,
        #[arg(long)]
        shard: PathBuf,
        #[arg(long, default_value_t = 21)]
        runs: usize,
    },
    /// Warm vs cold response time of POST /train for 1..=MAX_EPOCHS epochs.
    Figure6 {
        #[arg(long)]
        bin: PathBuf,
        #[arg(long)]
        shard: PathBuf,
        #[arg(long, default_value_t = 10)]
        max_epochs: usize,
    },
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    match Args::parse().cmd {
        Cmd::MakeShard { n, out } => make_shard(n, &out),
        Cmd::MakeRequest { epochs, out } => {
            std::fs::write(&out, request(epochs)?)?;
            Ok(())
        }
        Cmd::ColdStart { bin, shard, runs } => cold_start(&bin, &shard, runs),
        Cmd::Figure6 {
            bin,
            shard,
            max_epochs,
        } => figure6(&bin, &shard, max_epochs),
    }
}

fn make_shard(n: usize, out: &Path) -> Res<()> {
    let train = mnist::load(&mnist::dir_from_env()?, mnist::Split::Train)?.take(n);
    std::fs::create_dir_all(out)?;
    idx::write_images(
        &out.join("train-images-idx3-ubyte"),
        train.images(),
        train.len(),
        28,
        28,
    )?;
    idx::write_labels(&out.join("train-labels-idx1-ubyte"), train.labels())?;
    println!("wrote {} images to {}", train.len(), out.display());
    Ok(())
}

fn request(epochs: usize) -> Res<String> {
    let spec = engine::presets::table1_cnn();
    let model = engine::Sequential::new(spec.clone(), 0)?;
    let bytes = weights::to_bytes(model.params(), &WeightsMeta::new(spec))?;
    Ok(serde_json::json!({
        "round": 1, "nonce": "bench",
        "model": {"inline_base64": base64::engine::general_purpose::STANDARD.encode(bytes)},
        "epochs": epochs, "batch_size": 64,
        "optimizer": {"type": "adam", "lr": 0.001}, "seed": 0,
    })
    .to_string())
}

fn free_port() -> Res<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn spawn(bin: &Path, shard: &Path, port: u16) -> Res<Child> {
    Ok(Command::new(bin)
        .env("PORT", port.to_string())
        .env("FEDGE_SHARD_DIR", shard)
        .env("FEDGE_CLIENT_ID", "bench")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stdin(Stdio::null())
        .spawn()?)
}

fn stop(mut child: Child) -> Res<()> {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("fn-train exited with {status} after SIGTERM").into());
    }
    Ok(())
}

/// One HTTP/1.1 exchange; returns (status, body).
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_nodelay(true)?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\nAccept: application/json\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let status = std::str::from_utf8(out.get(9..12).unwrap_or(b"000"))
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let start = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(out.len(), |p| p + 4);
    Ok((status, out[start..].to_vec()))
}

fn wait_ready(port: u16, child: &mut Child) -> Res<()> {
    loop {
        if let Ok((200, _)) = http(port, "GET", "/readyz", b"") {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            return Err(format!("fn-train exited early: {status}").into());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn cold_start(bin: &Path, shard: &Path, runs: usize) -> Res<()> {
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let port = free_port()?;
        let t0 = Instant::now();
        let mut child = spawn(bin, shard, port)?;
        wait_ready(port, &mut child)?;
        ms.push(t0.elapsed().as_secs_f64() * 1e3);
        stop(child)?;
    }
    let (min, max) = (
        ms.iter().copied().fold(f64::INFINITY, f64::min),
        ms.iter().copied().fold(0.0, f64::max),
    );
    println!(
        "cold start to ready over {runs} runs: median {:.1} ms, min {min:.1} ms, max {max:.1} ms",
        median(&mut ms)
    );
    Ok(())
}

/// POSTs a training request; returns (wall seconds, train_seconds reported).
fn train(port: u16, body: &[u8]) -> Res<(f64, f64)> {
    let t0 = Instant::now();
    let (status, reply) = http(port, "POST", "/train", body)?;
    let wall = t0.elapsed().as_secs_f64();
    if status != 200 {
        return Err(format!("POST /train: {status} {}", String::from_utf8_lossy(&reply)).into());
    }
    let v: serde_json::Value = serde_json::from_slice(&reply)?;
    Ok((wall, v["train_seconds"].as_f64().unwrap_or(f64::NAN)))
}

fn figure6(bin: &Path, shard: &Path, max_epochs: usize) -> Res<()> {
    let warm_port = free_port()?;
    let mut warm = spawn(bin, shard, warm_port)?;
    wait_ready(warm_port, &mut warm)?;
    train(warm_port, request(1)?.as_bytes())?; // first request warms buffers
    println!(
        "| epochs | warm response (s) | cold response (s) | cold - warm (s) | \
         warm: response - training (ms) | cold: response - training (ms) |"
    );
    println!("|---|---|---|---|---|---|");
    for epochs in 1..=max_epochs {
        let body = request(epochs)?;
        let (warm_s, train_s) = train(warm_port, body.as_bytes())?;
        let port = free_port()?;
        let t0 = Instant::now();
        let mut child = spawn(bin, shard, port)?;
        wait_ready(port, &mut child)?;
        let (_, cold_train_s) = train(port, body.as_bytes())?;
        let cold_s = t0.elapsed().as_secs_f64();
        stop(child)?;
        // Training time swings with the machine's load; the time outside training does not.
        println!(
            "| {epochs} | {warm_s:.2} | {cold_s:.2} | {:.2} | {:.1} | {:.1} |",
            cold_s - warm_s,
            (warm_s - train_s) * 1e3,
            (cold_s - cold_train_s) * 1e3
        );
    }
    stop(warm)
}
