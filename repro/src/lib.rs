//! # repro: the paper's evaluation, reproduced on fedge in one command
//!
//! `repro` reruns the evaluation of "Serverless Computing Approach for Deploying Machine
//! Learning Applications in Edge Layer" on fedge and writes `REPORT.md` with SVG charts:
//! - [`fig45`]: accuracy and loss per round (Figures 4 and 5), by running the local edge
//!   cluster of `edge-cluster local`;
//! - [`fig6`]: the training function's cold and warm response against local epochs;
//! - [`fig7`]: the serving function's cold and warm response against images per request;
//! - [`load`]: fn-serve under `wrk` at 1-128 connections;
//! - [`report`]: the Markdown and charts, rendered from [`results::Results`] alone.
//!
//! Cold starts use the fedge images (`deploy/build-images.sh`) under the paper's pod limits;
//! without a usable Docker engine (or images) they fall back to processes of this binary,
//! and the report says so ([`instance`]).
//! [`plan`] holds the default settings (under 30 minutes on 2 cores) and the paper's.
#![forbid(unsafe_code)]

pub mod docker;
pub mod fig45;
pub mod fig6;
pub mod fig7;
pub mod instance;
pub mod load;
pub mod machine;
pub mod plan;
pub mod ratio;
pub mod report;
pub mod results;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use engine::data::mnist;

use crate::instance::Launcher;
use crate::plan::{Part, Plan};
use crate::results::Results;

/// Flags of `repro`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReproArgs {
    /// Output folder: REPORT.md, results.json, the charts, and each run's files.
    #[arg(long, default_value = "repro-out")]
    pub out: PathBuf,
    /// The paper's full settings (hours); the default plan finishes in under 30 minutes
    /// on an idle 2-core machine.
    #[arg(long)]
    pub paper: bool,
    /// Run only these parts (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Part>,
    /// MNIST folder (IDX files); else `$MNIST_DIR`; else downloaded into `--out`/mnist.
    #[arg(long)]
    pub mnist_dir: Option<PathBuf>,
    /// Tag of the fedge images (`fedge/fn-serve:TAG`, `fedge/fn-train:TAG`).
    #[arg(long, default_value = "repro")]
    pub image_tag: String,
    /// Use the images already tagged `--image-tag` instead of building them from this
    /// tree with deploy/build-images.sh first.
    #[arg(long)]
    pub no_build_images: bool,
    /// (development) A tiny plan that exercises every part in a few minutes.
    #[arg(long, hide = true, conflicts_with = "paper")]
    pub smoke: bool,
}

/// Runs the reproduction and writes the report.
pub async fn run(args: ReproArgs, command: String) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let load_start = machine::load_average();
    let started_utc = utc_now();
    let machine = machine::Machine::detect();
    let plan = if args.paper {
        Plan::paper()
    } else if args.smoke {
        Plan::tiny()
    } else {
        Plan::default_plan()
    };
    let parts: Vec<Part> = if args.only.is_empty() {
        Part::ALL.to_vec()
    } else {
        args.only.clone()
    };
    std::fs::create_dir_all(&args.out)?;
    println!(
        "repro: {} plan, parts {parts:?}, out {}\n  CPU {} ({} cores, SIMD tier {}), load {:.2}",
        plan.name,
        args.out.display(),
        machine.cpu_model,
        machine.cores,
        machine.simd_tier,
        load_start[0]
    );
    let mnist_dir = mnist_dir(&args)?;
    let mut results = Results {
        machine,
        command,
        plan: plan.clone(),
        started_utc,
        wall_seconds: 0.0,
        load_start,
        load_end: load_start,
        isolation: String::new(),
        runner: Default::default(),
        rounds: Vec::new(),
        train: None,
        serve: None,
        load: None,
        failures: Vec::new(),
    };

    if parts.contains(&Part::Rounds) {
        for run in &plan.rounds {
            println!("\n== Figures 4/5: {}", run.label);
            let dir = args.out.join("runs").join(&run.name);
            match fig45::run(run, plan.clients, &mnist_dir, &dir).await {
                Ok(r) => results.rounds.push(r),
                Err(e) => results
                    .failures
                    .push((format!("Figures 4/5, {}", run.name), format!("{e:#}"))),
            }
        }
    }

    let containers = parts
        .iter()
        .any(|p| matches!(p, Part::Train | Part::Serve | Part::Load));
    if containers {
        match container_parts(&args, &plan, &parts, &mnist_dir, &mut results).await {
            Ok(()) => {}
            Err(e) => results
                .failures
                .push(("containers".into(), format!("{e:#}"))),
        }
    }

    results.wall_seconds = t0.elapsed().as_secs_f64();
    results.load_end = machine::load_average();
    report::write(&results, &args.out)?;
    println!(
        "\nrepro: wrote {} in {:.1} min",
        args.out.join("REPORT.md").display(),
        results.wall_seconds / 60.0
    );
    if !results.failures.is_empty() {
        bail!("{} part(s) failed (see the report)", results.failures.len());
    }
    Ok(())
}

async fn container_parts(
    args: &ReproArgs,
    plan: &Plan,
    parts: &[Part],
    mnist_dir: &Path,
    results: &mut Results,
) -> anyhow::Result<()> {
    let serve_image = format!("fedge/fn-serve:{}", args.image_tag);
    let train_image = format!("fedge/fn-train:{}", args.image_tag);
    // Files the containers mount must be readable by uid 65532.
    let work = std::env::temp_dir().join(format!("fedge-repro-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let launcher = match images(args, &serve_image, &train_image).await {
        Ok(how) => {
            results.isolation = format!(
                "`docker run` of {train_image} and {serve_image} ({how}), one fresh container per cold request"
            );
            Launcher::Docker
        }
        Err(why) => {
            println!("\n== no containers: {why:#}; falling back to processes");
            results.isolation = format!(
                "**processes, not containers**: {why:#}. Each instance is a child process of \
                 `repro` (`repro fn-train` / `repro fn-serve`) with the pod's thread count but no \
                 CPU or memory limit, one fresh process per cold request"
            );
            Launcher::Process(args.out.join("logs"))
        }
    };
    results.runner = launcher.runner();
    let outcome = async {
        set_mode(&work, 0o755)?;
        if parts.contains(&Part::Train) {
            println!(
                "\n== Figure 6: fn-train response time, {}-example shard",
                plan.train_shard
            );
            let shard = work.join("shard");
            fig6::write_shard(mnist_dir, plan.train_shard, &shard)?;
            open_up(&shard)?;
            match fig6::run(
                &launcher,
                &train_image,
                &shard,
                plan.train_shard,
                plan.train_max_epochs,
            )
            .await
            {
                Ok(t) => results.train = Some(t),
                Err(e) => results.failures.push(("Figure 6".into(), format!("{e:#}"))),
            }
        }
        let serving = parts.contains(&Part::Serve) || parts.contains(&Part::Load);
        if serving {
            let model_dir = work.join("model");
            std::fs::create_dir_all(&model_dir)?;
            let model = write_model(results, &args.out, &model_dir.join("model.safetensors"))?;
            open_up(&model_dir)?;
            let test = mnist::load(mnist_dir, mnist::Split::Test)?;
            if parts.contains(&Part::Serve) {
                println!("\n== Figure 7: fn-serve response time, 0.4 CPU / 100 MiB");
                match fig7::run(
                    &launcher,
                    &serve_image,
                    &model_dir,
                    model.clone(),
                    &test,
                    &plan.serve_sizes,
                    plan.serve_cold_reps,
                    plan.serve_warm_reps,
                )
                .await
                {
                    Ok(s) => results.serve = Some(s),
                    Err(e) => results.failures.push(("Figure 7".into(), format!("{e:#}"))),
                }
            }
            if parts.contains(&Part::Load) {
                println!("\n== Load: wrk against fn-serve, 0.4 CPU / 100 MiB");
                match load::run(
                    &launcher,
                    &serve_image,
                    &model_dir,
                    &work,
                    &test,
                    &plan.load_images,
                    &plan.load_connections,
                    plan.load_seconds,
                )
                .await
                {
                    Ok(l) => results.load = Some(l),
                    Err(e) => results
                        .failures
                        .push(("load test".into(), format!("{e:#}"))),
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    let _ = std::fs::remove_dir_all(&work);
    outcome
}

/// Makes the images usable: Docker reachable, the images built from this tree (unless
/// `--no-build-images`) and present. Returns how they were made, or why containers cannot
/// be used.
async fn images(args: &ReproArgs, serve_image: &str, train_image: &str) -> anyhow::Result<String> {
    if !docker::available().await {
        bail!("the Docker engine is not reachable (`docker info` failed)");
    }
    if !args.no_build_images {
        println!(
            "\n== building the images from this tree (deploy/build-images.sh fn-serve fn-train)"
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/build-images.sh");
        let ok = tokio::process::Command::new("bash")
            .arg(&script)
            .args(["fn-serve", "fn-train"])
            .env("FEDGE_IMAGE_TAG", &args.image_tag)
            .status()
            .await
            .context("running deploy/build-images.sh")?
            .success();
        if !ok {
            bail!("deploy/build-images.sh failed");
        }
    }
    for image in [serve_image, train_image] {
        if !docker::has_image(image).await {
            bail!(
                "image {image} is missing (build it with FEDGE_IMAGE_TAG={} deploy/build-images.sh)",
                args.image_tag
            );
        }
    }
    Ok(if args.no_build_images {
        "built from this tree before the run: --no-build-images".into()
    } else {
        "built from this tree by this run".into()
    })
}

/// The served model: the last version of the IID run with our recipe when it ran, else the
/// initial Table 1 CNN (seed 0). Returns what it is, in words.
fn write_model(results: &Results, out: &Path, path: &Path) -> anyhow::Result<String> {
    if let Some(r) = results.rounds.iter().find(|r| r.run.name == "ours-iid") {
        let dir = fig45::store_dir(&out.join("runs").join(&r.run.name));
        let store = aggregator::store::ModelStore::open(&dir, "mnist")?;
        if let Some((version, bytes)) = store.latest() {
            std::fs::write(path, &bytes)?;
            return Ok(format!("version {version} of the `{}` run", r.run.label));
        }
    }
    let spec = engine::presets::table1_cnn();
    let model = engine::Sequential::new(spec.clone(), 0)?;
    engine::weights::save(
        path,
        model.params(),
        &engine::weights::WeightsMeta::new(spec),
    )?;
    Ok("the untrained Table 1 CNN (seed 0): the rounds did not run".into())
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Makes a folder and its files readable by anyone (the containers run as uid 65532).
fn open_up(dir: &Path) -> anyhow::Result<()> {
    set_mode(dir, 0o755)?;
    for e in std::fs::read_dir(dir)? {
        set_mode(&e?.path(), 0o644)?;
    }
    Ok(())
}

fn mnist_dir(args: &ReproArgs) -> anyhow::Result<PathBuf> {
    if let Some(d) = &args.mnist_dir {
        return Ok(std::path::absolute(d)?);
    }
    if let Ok(d) = mnist::dir_from_env() {
        return Ok(std::path::absolute(d)?);
    }
    let cache = args.out.join("mnist");
    println!(
        "MNIST_DIR is not set: downloading MNIST into {}",
        cache.display()
    );
    Ok(std::path::absolute(mnist::download(
        mnist::DEFAULT_MIRROR,
        &cache,
    )?)?)
}

/// Now, as `YYYY-MM-DD HH:MM:SS`.
pub fn utc_now() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(s)
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00");
        assert_eq!(super::utc(1_795_779_723), "2026-11-27 11:42:03");
    }
}
