//! Crash safety: a child process commits full-size model versions in a loop and is killed
//! with SIGKILL at random instants, many times; after each kill the store must reopen with
//! `latest` loadable and holding the right model, its server state beside it, and the
//! history consistent with it.

use std::process::{Command, Stdio};
use std::time::Duration;

use aggregator::history::RoundStatus;
use aggregator::nodes::{check_torture_state, check_torture_version};
use aggregator::store::ModelStore;

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
