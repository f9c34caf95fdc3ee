//! `REPORT.md` and its SVG charts, rendered from a [`Results`] alone.

use std::fmt::Write as _;
use std::path::Path;

use edge_cluster::charts::{self, Chart, Marker, Scale, Series};

use crate::ratio::{Better, ratio};
use crate::results::{Codec, LoadResult, Results, RoundsResult, Runner, ServeResult, TrainResult};

/// The paper's numbers, as `../shared/docs/design.md` quotes them.
pub mod paper {
    /// Global accuracy after 50 rounds x 10 local epochs, %.
    pub const GLOBAL_ACCURACY_PCT: f64 = 82.0;
    /// Rounds of that run.
    pub const ROUNDS: u64 = 50;
    /// Accuracy the paper's client 3 (most labels missing) reached, %.
    pub const CLIENT3_ACCURACY_PCT: f64 = 70.0;
    /// Serving cold start, seconds, under 500 images.
    pub const SERVE_COLD_S: f64 = 5.0;
    /// Serving warm response, seconds, under 500 images.
    pub const SERVE_WARM_S: f64 = 0.3;
    /// The largest request those two figures cover.
    pub const SERVE_UNDER_IMAGES: usize = 500;
}

/// Writes `REPORT.md`, `results.json` and the charts into `out`.
pub fn write(results: &Results, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    std::fs::write(
        out.join("results.json"),
        serde_json::to_vec_pretty(results)?,
    )?;
    let mut md = String::new();
    header(&mut md, results);
    summary(&mut md, results);
    rounds(&mut md, results, out)?;
    train(&mut md, results.train.as_ref(), results.runner, out)?;
    serve(&mut md, results.serve.as_ref(), results.runner, out)?;
    load(&mut md, results.load.as_ref(), results.runner, out)?;
    estimate(&mut md, results);
    if !results.failures.is_empty() {
        md.push_str("\n## Parts that failed\n\n");
        for (part, why) in &results.failures {
            let _ = writeln!(md, "- **{part}**: {why}");
        }
    }
    std::fs::write(out.join("REPORT.md"), md)?;
    Ok(())
}

fn header(md: &mut String, r: &Results) {
    let m = &r.machine;
    let _ = writeln!(
        md,
        "# fedge beside the paper: its evaluation, reproduced\n\n\
         \"Serverless Computing Approach for Deploying Machine Learning Applications in Edge \
         Layer\" (Bac, Tran, Kim), Figures 4-7 and its load test, rerun on fedge. Every number \
         below comes from the run that wrote this file (`results.json` holds them all); the \
         paper's numbers are quoted as the paper's.\n"
    );
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| command | `{}` |", r.command);
    let _ = writeln!(md, "| settings | `{}` plan |", r.plan.name);
    let _ = writeln!(md, "| commit | `{}` |", m.commit);
    let _ = writeln!(md, "| started (UTC) | {} |", r.started_utc);
    let _ = writeln!(
        md,
        "| wall time | **{:.1} min** ({:.0} s) |",
        r.wall_seconds / 60.0,
        r.wall_seconds
    );
    let _ = writeln!(
        md,
        "| CPU | {}, {} logical cores, AVX2+FMA: {}, AVX-512F: {} |",
        m.cpu_model,
        m.cores,
        yes(m.avx2_fma),
        yes(m.avx512f)
    );
    let _ = writeln!(md, "| SIMD tier the engine picked | `{}` |", m.simd_tier);
    let _ = writeln!(md, "| build profile of this binary | {} |", m.profile);
    let _ = writeln!(md, "| memory | {:.1} GiB |", m.memory_gib);
    let _ = writeln!(
        md,
        "| Docker | {} |",
        m.docker.as_deref().unwrap_or("not available")
    );
    let _ = writeln!(md, "| cold starts | {} |", r.isolation);
    let _ = writeln!(
        md,
        "| load average (1/5/15 min) | start {}, end {} |",
        triple(r.load_start),
        triple(r.load_end)
    );
    let busiest = r.load_start[0].max(r.load_end[0]);
    if busiest > m.cores as f64 * 0.5 {
        let _ = writeln!(
            md,
            "\n**The machine was shared during this run**: a 1-minute load average of up to \
             {busiest:.1} on {} cores means other processes competed for the CPU, so every \
             wall-clock figure below (round times, response times, throughput) is slower than \
             on an idle machine; accuracies are unaffected.",
            m.cores
        );
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn triple(v: [f64; 3]) -> String {
    format!("{:.2} / {:.2} / {:.2}", v[0], v[1], v[2])
}

fn pct(v: f32) -> String {
    format!("{:.2} %", f64::from(v) * 100.0)
}

fn find<'a>(r: &'a Results, name: &str) -> Option<&'a RoundsResult> {
    r.rounds.iter().find(|x| x.run.name == name)
}

fn summary(md: &mut String, r: &Results) {
    md.push_str(
        "\n## Summary: the paper's figures beside ours\n\n\
         | figure | what | paper | fedge (this run) | fedge / paper |\n|---|---|---|---|---|\n",
    );
    for (name, what) in [
        (
            "paper-iid",
            "global test accuracy, paper's recipe (10 local epochs), IID",
        ),
        (
            "ours-iid",
            "global test accuracy, our recipe (1 local epoch), IID",
        ),
        (
            "paper-skewed",
            "global test accuracy, paper's recipe, skewed split",
        ),
        (
            "ours-skewed",
            "global test accuracy, our recipe, skewed split",
        ),
    ] {
        if let Some(x) = find(r, name)
            && let Some((round, acc)) = x.best()
        {
            let _ = writeln!(
                md,
                "| 4/5 | {what} | {:.0} % after {} rounds | **{}** (best, round {round} of {}) | {} |",
                paper::GLOBAL_ACCURACY_PCT,
                paper::ROUNDS,
                pct(acc),
                x.history.iter().filter(|h| h.round > 0).count(),
                ratio(
                    f64::from(acc) * 100.0,
                    paper::GLOBAL_ACCURACY_PCT,
                    Better::Higher
                )
            );
        }
    }
    if let Some(x) = find(r, "paper-skewed").or_else(|| find(r, "ours-skewed"))
        && let Some(last) = x.history.iter().rev().find(|h| h.round > 0)
        && let Some(c) = last.clients.last()
        && let Some(a) = c.epoch_accuracy.last()
    {
        let _ = writeln!(
            md,
            "| 4/5 | the skewed client (ours: {}, digits {:?} only), accuracy on its own data, last round | client 3: about {:.0} % | {} | not comparable (ours is training accuracy on 3 digits) |",
            c.client_id,
            x.client_labels.last().cloned().unwrap_or_default(),
            paper::CLIENT3_ACCURACY_PCT,
            pct(*a)
        );
    }
    if let Some(s) = &r.serve {
        for codec in Codec::ALL {
            let small = || {
                s.points
                    .iter()
                    .filter(move |p| p.codec == codec && p.images <= paper::SERVE_UNDER_IMAGES)
            };
            let cold = small().map(|p| p.cold_seconds).fold(f64::NAN, f64::max);
            let warm = small().map(|p| p.warm_seconds).fold(f64::NAN, f64::max);
            if cold.is_finite() {
                let _ = writeln!(
                    md,
                    "| 7 | serving cold start to first reply{}, up to {} images, {} (slowest size) | about {:.0} s | **{}** | {} |",
                    if r.runner == Runner::Processes {
                        " (a process, not a container)"
                    } else {
                        ""
                    },
                    paper::SERVE_UNDER_IMAGES,
                    codec.label(),
                    paper::SERVE_COLD_S,
                    secs(cold),
                    ratio(cold, paper::SERVE_COLD_S, Better::Lower)
                );
            }
            if warm.is_finite() {
                let _ = writeln!(
                    md,
                    "| 7 | serving warm response, up to {} images, {} (slowest size) | about {:.1} s | **{}** | {} |",
                    paper::SERVE_UNDER_IMAGES,
                    codec.label(),
                    paper::SERVE_WARM_S,
                    secs(warm),
                    ratio(warm, paper::SERVE_WARM_S, Better::Lower)
                );
            }
        }
    }
    if let Some(t) = &r.train
        && let Some(last) = t.rows.last()
    {
        let _ = writeln!(
            md,
            "| 6 | training response, {} epochs on {} examples: cold / warm / training alone | (no number quoted in design.md) | {} / {} / {} | - |",
            last.epochs,
            t.shard,
            secs(last.cold_seconds),
            secs(last.warm_seconds),
            secs(last.warm_train_seconds)
        );
    }
    if let Some(l) = &r.load
        && let Some(best) = l
            .rows
            .iter()
            .filter(|x| x.images == 1)
            .max_by(|a, b| a.rps.total_cmp(&b.rps))
    {
        let _ = writeln!(
            md,
            "| load | single-image requests, best throughput in the 0.4 CPU pod | (JMeter, no number quoted in design.md) | {:.0} req/s at {} connections, p99 {:.1} ms | - |",
            best.rps, best.connections, best.p99_ms
        );
    }
}

/// Under a section whose instances ran as processes: what its container words mean then.
fn runner_note(md: &mut String, runner: Runner) {
    if runner == Runner::Processes {
        md.push_str(
            "**Processes, not containers** (no usable Docker engine or images; see *cold starts* \
             at the top): below, a \"container\" is a child process of `repro` with the pod's \
             thread count but no CPU or memory limit, \"docker run\" is starting that process, \
             and there are no throttling counters.\n\n",
        );
    }
}

/// Seconds, with a unit that reads well.
pub fn secs(s: f64) -> String {
    if !s.is_finite() {
        "-".into()
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

fn rounds(md: &mut String, r: &Results, out: &Path) -> anyhow::Result<()> {
    md.push_str("\n## Figures 4 and 5: accuracy and loss per round, 3 clients\n\n");
    if r.rounds.is_empty() {
        md.push_str("Not run.\n");
        return Ok(());
    }
    md.push_str(
        "Each run is `edge-cluster local`'s cluster: the aggregator's store and coordinator, three \
         fn-train child processes with their own partition, real HTTP, FedAvg; Table 1 CNN, \
         batch 64, Adam 1e-3, seed 0. Global = the new global model on the 10,000 MNIST test \
         images; per client = the client's last local epoch on its own training data (dropout \
         on). The skewed split gives client 3 half of the examples of digits 0-2 and nothing \
         else (the paper's client 3 lacked most labels); clients 1 and 2 share the rest at \
         random. The paper's recipe stops early once the global accuracy has not improved for \
         the given number of rounds. The aggregator's direction check (docs/ROBUSTNESS.md) is \
         off in these runs (`--no-direction-check`), as the paper's FedAvg has no such \
         defence: with it on, honest updates of converged rounds and of the skewed client \
         were rejected in some rounds, so the figures would not average every client. Its \
         norm, finiteness and example-count checks stay on.\n\n",
    );
    md.push_str(
        "| run | clients' examples | client digits | rounds | stopped | best global accuracy | last | wall time |\n|---|---|---|---|---|---|---|---|\n",
    );
    for x in &r.rounds {
        let digits: Vec<String> = x
            .client_labels
            .iter()
            .map(|d| {
                if d.len() == 10 {
                    "all".into()
                } else {
                    format!("{d:?}")
                }
            })
            .collect();
        let _ = writeln!(
            md,
            "| {} | {:?} | {} | {} | {} | {} | {} | {:.0} s |",
            x.run.label,
            x.client_examples,
            digits.join(", "),
            x.history.iter().filter(|h| h.round > 0).count(),
            x.stopped,
            x.best()
                .map_or("-".into(), |(rd, a)| format!("{} (round {rd})", pct(a))),
            x.last().map_or("-".into(), |(_, a)| pct(a)),
            x.seconds
        );
    }
    // Global accuracy of every run on one chart, with the paper's final figure.
    let mut all = Vec::new();
    let mut x_max = 1.0f64;
    for (i, x) in r.rounds.iter().enumerate() {
        let (acc, _) = charts::round_series(&x.history);
        if let Some(g) = acc.into_iter().next() {
            x_max = g.points.iter().map(|p| p.0).fold(x_max, f64::max);
            let mut s = Series::line(short_label(&x.run), g.points, i);
            s.marker = if x.run.local_epochs > 1 {
                Marker::Triangle
            } else {
                Marker::Circle
            };
            all.push(s);
        }
    }
    all.push(Series {
        name: format!(
            "paper: {:.0} % after {} rounds (final)",
            paper::GLOBAL_ACCURACY_PCT,
            paper::ROUNDS
        ),
        points: vec![
            (1.0, paper::GLOBAL_ACCURACY_PCT),
            (x_max, paper::GLOBAL_ACCURACY_PCT),
        ],
        line: true,
        marker: Marker::None,
        color: 7,
    });
    let chart = Chart {
        title: "Global test accuracy per round, all runs".into(),
        x_label: "round".into(),
        y_label: "accuracy (%)".into(),
        x_scale: Scale::Integer,
        y_scale: Scale::Linear,
        series: all,
    };
    charts::draw(&chart, &out.join("fig4-global-accuracy.svg"))?;
    md.push_str("\n![global accuracy, all runs](fig4-global-accuracy.svg)\n");
    for x in &r.rounds {
        let (acc, loss) = charts::round_charts(&x.history, &short_label(&x.run));
        let a = format!("fig4-{}-accuracy.svg", x.run.name);
        let l = format!("fig5-{}-loss.svg", x.run.name);
        charts::draw(&acc, &out.join(&a))?;
        charts::draw(&loss, &out.join(&l))?;
        let _ = writeln!(
            md,
            "\n### {}\n\n![accuracy]({a})\n![loss]({l})\n",
            x.run.label
        );
        md.push_str("| round | global accuracy | global loss |");
        let ids: Vec<String> = x
            .history
            .iter()
            .find(|h| h.round == 1)
            .map(|h| h.clients.iter().map(|c| c.client_id.clone()).collect())
            .unwrap_or_default();
        for id in &ids {
            let _ = write!(md, " {id} accuracy / loss |");
        }
        md.push_str(" round time |\n|---|---|---|");
        for _ in &ids {
            md.push_str("---|");
        }
        md.push_str("---|\n");
        for h in &x.history {
            let (ga, gl) = h.global.as_ref().map_or(("-".into(), "-".into()), |g| {
                (pct(g.accuracy), format!("{:.4}", g.loss))
            });
            let _ = write!(md, "| {} | {ga} | {gl} |", h.round);
            for id in &ids {
                let c = h.clients.iter().find(|c| &c.client_id == id);
                let cell = c
                    .and_then(|c| Some((c.epoch_accuracy.last()?, c.epoch_loss.last()?)))
                    .map_or("-".into(), |(a, l)| format!("{} / {l:.4}", pct(*a)));
                let _ = write!(md, " {cell} |");
            }
            let _ = writeln!(md, " {:.1} s |", h.timings.total);
        }
    }
    Ok(())
}

/// A legend-sized name of a run: `ours, iid (1 epoch)`.
fn short_label(run: &crate::plan::RoundsRun) -> String {
    let split = match run.split {
        crate::plan::Split::Iid => "IID",
        crate::plan::Split::Skewed => "skewed",
    };
    let who = if run.name.starts_with("paper") {
        "paper's recipe"
    } else {
        "ours"
    };
    format!(
        "{who}, {split} ({} local epoch{})",
        run.local_epochs,
        if run.local_epochs == 1 { "" } else { "s" }
    )
}

fn train(
    md: &mut String,
    t: Option<&TrainResult>,
    runner: Runner,
    out: &Path,
) -> anyhow::Result<()> {
    md.push_str("\n## Figure 6: training-function response time against local epochs\n\n");
    let Some(t) = t else {
        md.push_str("Not run.\n");
        return Ok(());
    };
    runner_note(md, runner);
    let _ = writeln!(
        md,
        "fn-train image `{}` under its pod limits (`docker run --cpus 1 --memory 200m`, read-only \
         root, no capabilities, uid 65532), a {}-example shard mounted read-only, the Table 1 CNN \
         inline in the request, batch 64, Adam 1e-3. **Warm**: `POST /train` to a running \
         container that has answered one request before. **Cold**: a fresh container per \
         request, timed from `docker run` to the reply. **Training**: the training time \
         fn-train reports for the warm request (the engine's loop alone).\n",
        t.image, t.shard
    );
    md.push_str("| local epochs | warm response | cold response | cold: docker run to ready | training alone (warm) | warm - training | cold - warm |\n|---|---|---|---|---|---|---|\n");
    for row in &t.rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.epochs,
            secs(row.warm_seconds),
            secs(row.cold_seconds),
            secs(row.cold_ready_seconds),
            secs(row.warm_train_seconds),
            secs(row.warm_seconds - row.warm_train_seconds),
            signed_secs(row.cold_seconds - row.warm_seconds)
        );
    }
    let pts = |f: &dyn Fn(&crate::results::TrainRow) -> f64| {
        t.rows
            .iter()
            .map(|r| (r.epochs as f64, f(r)))
            .collect::<Vec<_>>()
    };
    let mut training = Series::line(
        "training alone (warm request)",
        pts(&|r| r.warm_train_seconds),
        2,
    );
    training.marker = Marker::Cross;
    let mut cold = Series::line("cold: docker run to reply", pts(&|r| r.cold_seconds), 1);
    cold.marker = Marker::Triangle;
    let chart = Chart {
        title: format!(
            "Figure 6: fn-train response time, {}-example shard, 1 CPU / 200 MiB",
            t.shard
        ),
        x_label: "local epochs".into(),
        y_label: "response time (s)".into(),
        x_scale: Scale::Integer,
        y_scale: Scale::Linear,
        series: vec![
            Series::line("warm: running container", pts(&|r| r.warm_seconds), 0),
            cold,
            training,
        ],
    };
    charts::draw(&chart, &out.join("fig6-train-response.svg"))?;
    md.push_str("\n![Figure 6](fig6-train-response.svg)\n");
    Ok(())
}

fn signed_secs(s: f64) -> String {
    if s < 0.0 {
        format!("-{}", secs(-s))
    } else {
        format!("+{}", secs(s))
    }
}

fn serve(
    md: &mut String,
    s: Option<&ServeResult>,
    runner: Runner,
    out: &Path,
) -> anyhow::Result<()> {
    md.push_str("\n## Figure 7: serving-function response time against images per request\n\n");
    let Some(s) = s else {
        md.push_str("Not run.\n");
        return Ok(());
    };
    runner_note(md, runner);
    let _ = writeln!(
        md,
        "fn-serve image `{}` inside its pod limits (`docker run --cpus 0.4 --memory 100m`, \
         read-only root, no capabilities, uid 65532), serving {}. **Warm**: the median response \
         of a running container that has answered before. **Cold**: a fresh container per \
         request, timed from `docker run` to the reply (median). KServe V2 JSON with FP32 \
         pixels (what a Python client sends) and the V2 binary tensor data extension with \
         UINT8 pixels. The paper: about {:.0} s cold and {:.1} s warm under {} images.\n",
        s.image,
        s.model,
        paper::SERVE_COLD_S,
        paper::SERVE_WARM_S,
        paper::SERVE_UNDER_IMAGES
    );
    md.push_str("| images | encoding | body | cold (median) | warm (median) | warm (slowest) | runs cold / warm | errors |\n|---|---|---|---|---|---|---|---|\n");
    for p in &s.points {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} / {} | {} |",
            p.images,
            p.codec.label(),
            bytes(p.body_bytes),
            secs(p.cold_seconds),
            secs(p.warm_seconds),
            secs(p.warm_max_seconds),
            p.reps.0,
            p.reps.1,
            p.errors
        );
    }
    let mut series = Vec::new();
    for (i, codec) in Codec::ALL.into_iter().enumerate() {
        let pts = |f: &dyn Fn(&crate::results::ServePoint) -> f64| {
            s.points
                .iter()
                .filter(|p| p.codec == codec)
                .map(|p| (p.images as f64, f(p)))
                .collect::<Vec<_>>()
        };
        let mut cold = Series::line(
            format!("cold, {}", codec.label()),
            pts(&|p| p.cold_seconds),
            i * 2 + 1,
        );
        cold.marker = Marker::Triangle;
        series.push(cold);
        series.push(Series::line(
            format!("warm, {}", codec.label()),
            pts(&|p| p.warm_seconds),
            i * 2,
        ));
    }
    let under = paper::SERVE_UNDER_IMAGES as f64;
    for (name, v, color) in [
        (
            format!(
                "paper: about {:.0} s cold (<= 500 images)",
                paper::SERVE_COLD_S
            ),
            paper::SERVE_COLD_S,
            5,
        ),
        (
            format!(
                "paper: about {:.1} s warm (<= 500 images)",
                paper::SERVE_WARM_S
            ),
            paper::SERVE_WARM_S,
            7,
        ),
    ] {
        series.push(Series {
            name,
            points: vec![(1.0, v), (under, v)],
            line: true,
            marker: Marker::None,
            color,
        });
    }
    let chart = Chart {
        title: "Figure 7: fn-serve response time, 0.4 CPU / 100 MiB".into(),
        x_label: "images per request (log scale)".into(),
        y_label: "response time (s, log scale)".into(),
        x_scale: Scale::Log,
        y_scale: Scale::Log,
        series,
    };
    charts::draw(&chart, &out.join("fig7-serve-response.svg"))?;
    md.push_str("\n![Figure 7](fig7-serve-response.svg)\n");
    Ok(())
}

fn bytes(n: usize) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20))
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

fn load(md: &mut String, l: Option<&LoadResult>, runner: Runner, out: &Path) -> anyhow::Result<()> {
    md.push_str("\n## Load: fn-serve under a real HTTP load generator\n\n");
    let Some(l) = l else {
        md.push_str("Not run.\n");
        return Ok(());
    };
    runner_note(md, runner);
    let _ = writeln!(
        md,
        "`{}` (the paper used Apache JMeter) on this machine's loopback against one fn-serve \
         container under its pod limits (0.4 CPU / 100 MiB), KServe V2 JSON FP32 bodies \
         (fn-serve/bench/post.lua), `--latency`, 10 s request timeout. Throttling: the \
         container's CFS counters (`cpu.stat` nr_throttled / throttled time) over the run. \
         wrk shares the 2 cores with the container.\n",
        l.tool
    );
    md.push_str("| images / request | connections | seconds | requests | req/s | images/s | p50 | p90 | p99 | non-2xx | socket errors | periods throttled | time throttled |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in &l.rows {
        let (thr, thr_t) = r.throttling.map_or(("-".into(), "-".into()), |t| {
            (
                format!("{} of {}", t.nr_throttled, t.nr_periods),
                secs(t.throttled_usec as f64 / 1e6),
            )
        });
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.1} | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms | {} | {} | {thr} | {thr_t} |",
            r.images,
            r.connections,
            r.seconds,
            r.requests,
            r.rps,
            r.rps * r.images as f64,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.non_2xx,
            r.socket_errors
        );
    }
    let mut images: Vec<usize> = l.rows.iter().map(|r| r.images).collect();
    images.dedup();
    let mut tput = Vec::new();
    let mut lat = Vec::new();
    for (i, n) in images.iter().enumerate() {
        let rows: Vec<_> = l.rows.iter().filter(|r| r.images == *n).collect();
        tput.push(Series::line(
            format!("{n} image(s) per request"),
            rows.iter().map(|r| (r.connections as f64, r.rps)).collect(),
            i,
        ));
        for (q, f, marker) in [
            (
                "p50",
                (|r: &crate::results::LoadRow| r.p50_ms) as fn(&_) -> f64,
                Marker::Circle,
            ),
            (
                "p99",
                |r: &crate::results::LoadRow| r.p99_ms,
                Marker::Triangle,
            ),
        ] {
            let mut s = Series::line(
                format!("{q}, {n} image(s)"),
                rows.iter().map(|r| (r.connections as f64, f(r))).collect(),
                i,
            );
            s.marker = marker;
            lat.push(s);
        }
    }
    let t = Chart {
        title: "Load: fn-serve throughput, 0.4 CPU / 100 MiB".into(),
        x_label: "open connections (log scale)".into(),
        y_label: "requests per second (log scale)".into(),
        x_scale: Scale::Log,
        y_scale: Scale::Log,
        series: tput,
    };
    let la = Chart {
        title: "Load: fn-serve latency, 0.4 CPU / 100 MiB".into(),
        x_label: "open connections (log scale)".into(),
        y_label: "latency (ms, log scale)".into(),
        x_scale: Scale::Log,
        y_scale: Scale::Log,
        series: lat,
    };
    charts::draw(&t, &out.join("load-throughput.svg"))?;
    charts::draw(&la, &out.join("load-latency.svg"))?;
    md.push_str("\n![throughput](load-throughput.svg)\n![latency](load-latency.svg)\n");
    Ok(())
}

/// Seconds per example-epoch of federated training, measured by this run's rounds (the
/// whole round's wall time over one client's examples x epochs: clients train in parallel).
fn round_rate(r: &Results) -> Option<f64> {
    let (mut secs, mut work) = (0.0, 0.0);
    for x in &r.rounds {
        for h in x.history.iter().filter(|h| h.round > 0) {
            let n = h.clients.iter().map(|c| c.num_examples).max().unwrap_or(0) as f64;
            secs += h.timings.total;
            work += n * x.run.local_epochs as f64;
        }
    }
    (work > 0.0).then(|| secs / work)
}

fn estimate(md: &mut String, r: &Results) {
    md.push_str("\n## How long the paper's full settings take\n\n");
    if r.plan.name == "paper" {
        let _ = writeln!(
            md,
            "This run used them (`--paper`): {:.1} min in all, measured.",
            r.wall_seconds / 60.0
        );
        return;
    }
    let full = crate::plan::Plan::paper();
    let mut lines = Vec::new();
    let mut total = 0.0;
    if let Some(rate) = round_rate(r) {
        // Each client's full IID shard; the skewed split's largest client is about as big.
        let per_client = 60_000.0 / full.clients as f64;
        let mut s = 0.0;
        for run in &full.rounds {
            s += rate * per_client * run.local_epochs as f64 * run.max_rounds as f64;
        }
        total += s;
        lines.push(format!(
            "- Figures 4/5: {:.0} min at most ({:.2} ms per example-epoch per round measured here, full 20,000-example shards, every run to its round limit; early stopping shortens the paper's-recipe runs)",
            s / 60.0,
            rate * 1e3
        ));
    }
    if let Some(t) = &r.train {
        let (mut secs, mut work) = (0.0, 0.0);
        for row in &t.rows {
            secs += row.warm_seconds + row.cold_seconds;
            work += 2.0 * (row.epochs * t.shard) as f64;
        }
        if work > 0.0 {
            let epochs: usize = (1..=full.train_max_epochs).sum();
            let s = secs / work * (2 * epochs * full.train_shard) as f64;
            total += s;
            lines.push(format!(
                "- Figure 6: {:.0} min ({:.2} ms per example-epoch measured here, {}-example shard)",
                s / 60.0,
                secs / work * 1e3,
                full.train_shard
            ));
        }
    }
    let other = r.wall_seconds
        - r.rounds.iter().map(|x| x.seconds).sum::<f64>()
        - r.train.as_ref().map_or(0.0, |t| {
            t.rows.iter().map(|x| x.warm_seconds + x.cold_seconds).sum()
        });
    let load_extra = r.load.as_ref().map_or(0.0, |l| {
        l.rows.len() as f64 * (full.load_seconds as f64 - r.plan.load_seconds as f64)
    });
    total += other.max(0.0) + load_extra;
    lines.push(format!(
        "- Figure 7, load test and set-up: {:.0} min (as measured here, load runs {} s instead of {} s)",
        (other.max(0.0) + load_extra) / 60.0,
        full.load_seconds,
        r.plan.load_seconds
    ));
    let _ = writeln!(
        md,
        "Not run here: **an estimate** from this run's measured times, not a measurement. \
         `--paper` would take about **{:.1} h** on this machine at this load:\n\n{}",
        total / 3600.0,
        lines.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use edge_cluster::testing::{round_history, svg_text_items, svg_texts};

    use super::*;
    use crate::docker::CpuStat;
    use crate::machine::Machine;
    use crate::plan::Plan;
    use crate::results::{LoadRow, ServePoint, TrainRow};

    /// A made-up run with every part, small.
    pub(crate) fn synthetic() -> Results {
        let plan = Plan::default_plan();
        let rounds = plan
            .rounds
            .iter()
            .map(|run| RoundsResult {
                run: run.clone(),
                history: round_history(4, 3),
                stopped: "4 rounds run".into(),
                seconds: 10.0,
                client_examples: vec![100, 100, 100],
                client_labels: vec![(0..10).collect(), (0..10).collect(), vec![0, 1, 2]],
            })
            .collect();
        let train = TrainResult {
            shard: 100,
            rows: (1..=3)
                .map(|e| TrainRow {
                    epochs: e,
                    warm_seconds: 0.5 * e as f64 + 0.01,
                    warm_train_seconds: 0.5 * e as f64,
                    cold_seconds: 0.5 * e as f64 + 0.4,
                    cold_ready_seconds: 0.35,
                    cold_train_seconds: 0.5 * e as f64,
                })
                .collect(),
            image: "fedge/fn-train:test".into(),
        };
        let serve = ServeResult {
            points: Codec::ALL
                .into_iter()
                .flat_map(|codec| {
                    [1usize, 10, 500, 10_000].map(|n| ServePoint {
                        codec,
                        images: n,
                        body_bytes: n * 784,
                        cold_seconds: 0.3 + n as f64 * 1e-3,
                        warm_seconds: 0.001 + n as f64 * 1e-3,
                        warm_max_seconds: 0.002 + n as f64 * 1e-3,
                        reps: (3, 5),
                        errors: 0,
                    })
                })
                .collect(),
            image: "fedge/fn-serve:test".into(),
            model: "a test model".into(),
        };
        let load = LoadResult {
            tool: "wrk 4.1.0".into(),
            rows: [1usize, 100]
                .into_iter()
                .flat_map(|n| {
                    [1usize, 8, 32, 128].map(|c| LoadRow {
                        images: n,
                        connections: c,
                        seconds: 10,
                        requests: 1000,
                        rps: 100.0 / n as f64 * c.min(8) as f64,
                        p50_ms: 2.0 * c as f64,
                        p90_ms: 3.0 * c as f64,
                        p99_ms: 5.0 * c as f64,
                        non_2xx: 0,
                        socket_errors: 0,
                        throttling: Some(CpuStat {
                            nr_periods: 100,
                            nr_throttled: 90,
                            throttled_usec: 5_000_000,
                        }),
                    })
                })
                .collect(),
        };
        Results {
            machine: Machine {
                cpu_model: "Test CPU".into(),
                cores: 2,
                avx2_fma: true,
                avx512f: false,
                simd_tier: "avx2".into(),
                memory_gib: 24.0,
                commit: "0123abc".into(),
                docker: Some("28.2.2".into()),
                profile: "release".into(),
            },
            command: "cargo run --release -p repro".into(),
            plan,
            started_utc: "2026-11-27 12:00:00".into(),
            wall_seconds: 1500.0,
            load_start: [3.0, 2.0, 1.0],
            load_end: [0.5, 0.5, 0.5],
            isolation: "docker run".into(),
            runner: Default::default(),
            rounds,
            train: Some(train),
            serve: Some(serve),
            load: Some(load),
            failures: vec![],
        }
    }

    /// The labels on the same baseline as the label `known` (the x axis's tick labels).
    fn x_ticks(svg: &str, known: &str) -> Vec<String> {
        let items = svg_text_items(svg);
        let Some((y, _)) = items.iter().rev().find(|(_, t)| t == known) else {
            return vec![];
        };
        items
            .iter()
            .filter(|(yy, _)| yy == y)
            .map(|(_, t)| t.clone())
            .collect()
    }

    #[test]
    fn writes_every_section_and_every_chart() {
        let dir = tempfile::tempdir().unwrap();
        let r = synthetic();
        write(&r, dir.path()).unwrap();
        let md = std::fs::read_to_string(dir.path().join("REPORT.md")).unwrap();
        for section in [
            "## Summary",
            "## Figures 4 and 5",
            "## Figure 6",
            "## Figure 7",
            "## Load",
            "## How long the paper's full settings take",
        ] {
            assert!(md.contains(section), "missing {section}");
        }
        for needle in [
            "Test CPU",
            "`avx2`",
            "0123abc",
            "cargo run --release -p repro",
            "25.0 min",
            "start 3.00 / 2.00 / 1.00",
            "The machine was shared",
            "an estimate",
            "| 7 | serving cold start",
            "| 4/5 |",
        ] {
            assert!(md.contains(needle), "missing {needle}");
        }
        // Every chart the report links exists and is a complete SVG.
        let links: Vec<&str> = md
            .split("](")
            .skip(1)
            .filter_map(|s| s.split(')').next())
            .filter(|s| s.ends_with(".svg"))
            .collect();
        assert_eq!(links.len(), 1 + 2 * 4 + 1 + 1 + 2);
        for l in links {
            let svg = std::fs::read_to_string(dir.path().join(l)).unwrap();
            assert!(
                svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
                "{l}"
            );
        }
        // Integer axes: Figure 6's epochs and the rounds tick on whole numbers only.
        for f in ["fig6-train-response.svg", "fig4-global-accuracy.svg"] {
            let ticks = x_ticks(&std::fs::read_to_string(dir.path().join(f)).unwrap(), "3");
            assert!(ticks.len() >= 3, "{f}: {ticks:?}");
            for t in &ticks {
                assert!(t.parse::<u64>().is_ok(), "{f}: x tick {t} in {ticks:?}");
            }
        }
        // Figure 7's log axis labels the paper's request sizes as plain numbers.
        let texts = svg_texts(
            &std::fs::read_to_string(dir.path().join("fig7-serve-response.svg")).unwrap(),
        );
        for n in ["1", "10", "100", "1000", "10000"] {
            assert!(
                texts.contains(&n.to_string()),
                "fig7: no tick {n} in {texts:?}"
            );
        }
        let back: Results =
            serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).unwrap())
                .unwrap();
        assert_eq!(back.rounds.len(), 4);
    }

    #[test]
    fn summary_ratios_use_the_papers_numbers() {
        let mut md = String::new();
        summary(&mut md, &synthetic());
        // Best of the synthetic history: 94 % against the paper's 82 %.
        assert!(
            md.contains("**94.00 %** (best, round 4 of 4) | 1.15x (higher) |"),
            "{md}"
        );
        // Cold start up to 500 images: 0.3 + 0.5 = 0.8 s against 5 s.
        assert!(md.contains("**800.0 ms** | 0.16x (6.25x faster)"), "{md}");
    }
}
