//! Crash safety, two ways, each with SIGKILL at random instants, many times:
//!
//! * the store alone: `aggregator store-torture` commits full-size model versions (and
//!   server states) in a loop as fast as it can;
//! * the real thing: `aggregator serve` runs rounds back to back against honest clients.
//!
//! After each kill the store must reopen with `latest` loadable and holding the right model,
//! the history consistent with it, and the next run must resume from it.

use std::process::{Command, Stdio};
use std::time::Duration;

use aggregator::history::RoundStatus;
use aggregator::store::ModelStore;
use aggregator::torture::{check_torture_state, check_torture_version};

#[test]
fn kill_9_at_random_instants_never_loses_or_tears_a_version() {
    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_aggregator");
    let mut rng = engine::Rng::new(7);
    let mut last_version = None;
    let mut progressed = 0;
    // Added to the random delay after each run that committed nothing, so a slow (loaded)
    // machine still makes progress; reset when a run commits.
    let mut extra_ms = 0;
    let mut interrupted_writes = 0;
    for kill in 0..60 {
        let mut child = Command::new(exe)
            .args(["store-torture", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // 5..60 ms: the process start, the open and repair, and a few commits of a 1.27 MB
        // model each, so kills land in every phase of a commit.
        std::thread::sleep(Duration::from_micros(
            5_000 + rng.below(55_000) + extra_ms * 1_000,
        ));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        // What the kill interrupted (counted for the log; which phase it hits is random).
        let tmp_left = std::fs::read_dir(dir.path().join("versions"))
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            })
            .unwrap_or(false);
        let torn = std::fs::read(dir.path().join("history.jsonl"))
            .map(|h| !h.is_empty() && !h.ends_with(b"\n"))
            .unwrap_or(false);
        interrupted_writes += usize::from(tmp_left || torn);
        let store = ModelStore::open_checked(dir.path(), "mnist", &check_torture_version)
            .unwrap_or_else(|e| panic!("reopen after kill {kill}: {e}"));
        let history = store.history();
        let latest = store.latest_version();
        // The latest pointer is the newest version the history committed.
        assert_eq!(
            latest,
            history.iter().rev().find_map(|r| r.version),
            "kill {kill}"
        );
        // Rounds are contiguous from 0; versions increase by one over completed rounds.
        for (i, r) in history.iter().enumerate() {
            assert_eq!(r.round, i as u64, "kill {kill}");
        }
        let versions: Vec<u64> = history.iter().filter_map(|r| r.version).collect();
        assert!(
            versions.iter().enumerate().all(|(i, &v)| v == i as u64),
            "kill {kill}: {versions:?}"
        );
        assert!(
            history
                .iter()
                .all(|r| (r.status == RoundStatus::Failed) == r.version.is_none())
        );
        // Every committed version is still readable and intact.
        for &v in &versions {
            let bytes = store.read_version(v).unwrap().unwrap();
            check_torture_version(&bytes).unwrap();
        }
        // The latest version's server state is there and is its own.
        if let Some(v) = latest.filter(|&v| v > 0) {
            let state = store
                .read_server_state(v)
                .unwrap()
                .unwrap_or_else(|| panic!("kill {kill}: version {v} lost its server state"));
            check_torture_state(&state, v).unwrap();
        }
        // Nothing half-written is left behind.
        for entry in std::fs::read_dir(dir.path().join("versions")).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(!name.ends_with(".tmp"), "kill {kill}: {name}");
        }
        // The store never goes back.
        assert!(
            latest >= last_version,
            "kill {kill}: {latest:?} < {last_version:?}"
        );
        if latest > last_version {
            progressed += 1;
            extra_ms = 0;
        } else {
            extra_ms += 20;
        }
        last_version = latest;
    }
    eprintln!("{progressed} of 60 runs committed; {interrupted_writes} kills left a partial file");
    // The loop made progress across restarts (each restart resumed where the last stopped).
    assert!(
        progressed >= 5,
        "only {progressed} of 60 runs committed anything"
    );
}

/// The real `aggregator serve`, running rounds back to back against two honest clients,
/// SIGKILLed at random instants (mid-round, mid-commit) and restarted on the same store, many
/// times: after each kill the store reopens, `latest` is the model its history says, with
/// exactly the value its round count implies, and the next run resumes from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_killed_mid_round_resumes_from_the_last_committed_round() {
    use crate::fake::honest;
    use crate::support::start_serve;

    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    // Each honest client replies global + 0.1 in every parameter (an update norm of 56,
    // inside the default bound of 100), so version v holds initial + 0.1 * v whatever the
    // weighting.
    let mut clients = Vec::new();
    let mut tokens = Vec::new();
    for (id, examples) in [("a", 10), ("b", 30)] {
        let spec = honest(id, 0.1, examples).await;
        let var = format!("FEDGE_TOKEN_{}", id.to_uppercase());
        clients.push(serde_json::json!({ "id": id, "url": spec.url, "token_env": var }));
        tokens.push((var, spec.token.unwrap()));
    }
    let config = serde_json::json!({
        "clients": clients,
        "settings": { "min_fit_clients": 2, "min_available_clients": 2 },
        "train": { "seed": 5 },
        "auto_rounds": 1_000_000,
    });
    let config_path = dir.path().join("config.json");
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();

    let mut rng = engine::Rng::new(11);
    let mut initial: Option<engine::ParamSet> = None;
    let mut last_version = None;
    let mut progressed = 0;
    // Added to the delay after each run that committed nothing (a slow machine), so the
    // loop still makes progress; reset when a run commits. Short runs keep the store small
    // (each version is 1.27 MB).
    let mut extra_ms = 0;
    let mut mid_commit = 0;
    for kill in 0..40 {
        // Without MNIST there is no evaluation, so rounds take milliseconds. Up once
        // /healthz answers; rounds then run back to back until the kill, 0-80 ms later.
        let (mut server, _) = start_serve(&config_path, &store_dir, &tokens, None).await;
        tokio::time::sleep(Duration::from_millis(rng.below(80) + extra_ms)).await;
        server.kill().await.unwrap(); // SIGKILL
        server.wait().await.unwrap();
        // A kill inside a commit leaves a temporary file, or a version file (or a torn
        // line) that the history does not complete.
        let history = std::fs::read_to_string(store_dir.join("history.jsonl")).unwrap();
        let torn = !history.is_empty() && !history.ends_with('\n');
        let recorded = history
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|r| !r["version"].is_null())
            .count();
        let files = std::fs::read_dir(store_dir.join("versions"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp") || !n.contains("server-state"))
            .count();
        mid_commit += usize::from(torn || files > recorded);

        let store = ModelStore::open(&store_dir, "mnist")
            .unwrap_or_else(|e| panic!("reopen after kill {kill}: {e}"));
        let history = store.history();
        let (latest, bytes) = store.latest().expect("version 0 is always there");
        assert_eq!(
            Some(latest),
            history.iter().rev().find_map(|r| r.version),
            "kill {kill}"
        );
        for (i, r) in history.iter().enumerate() {
            assert_eq!(r.round, i as u64, "kill {kill}");
        }
        let weights = engine::weights::from_bytes(bytes.to_vec()).unwrap();
        assert_eq!(weights.meta.version, latest, "kill {kill}");
        let initial = initial.get_or_insert_with(|| {
            let v0 = store.read_version(0).unwrap().unwrap();
            engine::weights::from_bytes(v0.to_vec()).unwrap().params
        });
        for ((name, t), (_, t0)) in weights.params.iter().zip(initial.iter()) {
            let expected = 0.1 * latest as f32;
            let worst = t
                .data()
                .iter()
                .zip(t0.data())
                .map(|(v, v0)| (v - v0 - expected).abs())
                .fold(0f32, f32::max);
            assert!(
                worst < 1e-3 * (1.0 + expected),
                "kill {kill}: `{name}` off by {worst}"
            );
        }
        assert!(Some(latest) >= last_version, "kill {kill}: went back");
        if Some(latest) > last_version {
            progressed += 1;
            extra_ms = 0;
        } else {
            extra_ms += 20;
        }
        last_version = Some(latest);
    }
    eprintln!(
        "40 kills, {mid_commit} inside a commit; {progressed} runs committed a round, last version {last_version:?}"
    );
    assert!(
        progressed >= 5,
        "only {progressed} of 40 runs committed a round"
    );
}
