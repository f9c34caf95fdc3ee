//! `edge-cluster local`, the README's main job, as a user runs it: the real binary with its
//! child nodes, on a small partition file so that it takes seconds.

use std::process::Stdio;
use std::time::Duration;

use crate::support::mnist_dir;

/// Runs `edge-cluster local <args>` to completion (at most 5 minutes); returns whether it
/// succeeded and its stderr.
async fn run_local(args: &[&str]) -> (bool, String) {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_edge-cluster"))
        .arg("local")
        .args(args)
        .env("MNIST_DIR", mnist_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .expect("edge-cluster local did not finish within 5 minutes")
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_runs_rounds_and_serves_the_result_on_a_partition_file() {
    let dir = tempfile::tempdir().unwrap();
    let split = dir.path().join("split.json");
    // Shards of very different sizes (as a skewed split makes): each node is registered
    // with its own, so the largest keeps its weight (no cap relative to the median claim).
    let lists: Vec<Vec<usize>> = vec![
        (0..300).collect(),
        (300..700).collect(),
        (700..2200).collect(),
    ];
    std::fs::write(&split, serde_json::to_vec(&lists).unwrap()).unwrap();
    let out = dir.path().join("out");
    let partition = format!("file:{}", split.display());
    let (ok, stderr) = run_local(&[
        "--clients",
        "3",
        "--rounds",
        "2",
        "--partition",
        &partition,
        "--test-limit",
        "500",
        "--serve-single",
        "5",
        "--out",
        out.to_str().unwrap(),
    ])
    .await;
    assert!(ok, "{stderr}");

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let rounds = summary["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2);
    for r in rounds {
        assert_eq!(r["status"], "completed", "{r:#}");
        // Each node trained on exactly its list from the file.
        let examples: Vec<u64> = r["clients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["num_examples"].as_u64().unwrap())
            .collect();
        assert_eq!(examples, vec![300, 400, 1500], "{r:#}");
        for c in r["clients"].as_array().unwrap() {
            assert_eq!(c["status"], "accepted", "{r:#}");
            assert!(c.get("weight").is_none(), "weight capped: {r:#}");
        }
    }
    let last = &rounds[1]["global"];
    assert_eq!(last["examples"], 500);
    assert!(last["accuracy"].as_f64().unwrap() > 0.3, "{last:#}");
    // fn-serve followed the store to the last version and served what the aggregator measured.
    assert_eq!(summary["serving"]["version"], 2);
    assert_eq!(summary["serving"]["images"], 500);
    assert!(
        (summary["serving"]["accuracy"].as_f64().unwrap() - last["accuracy"].as_f64().unwrap())
            .abs()
            < 1e-9
    );
    let history = std::fs::read_to_string(out.join("store/history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 3, "round 0 and two rounds");
    for chart in ["accuracy.svg", "loss.svg"] {
        let svg = std::fs::read_to_string(out.join("charts").join(chart)).unwrap();
        assert!(svg.contains("<svg"), "{chart}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_stops_at_once_with_the_reason_when_a_node_cannot_load_its_shard() {
    let dir = tempfile::tempdir().unwrap();
    let split = dir.path().join("split.json");
    std::fs::write(&split, b"[[0, 1], [2]]").unwrap();
    let partition = format!("file:{}", split.display());
    let out = dir.path().join("out");
    let (ok, stderr) =
        run_local(&["--partition", &partition, "--out", out.to_str().unwrap()]).await;
    assert!(!ok);
    // The dead node is noticed (not the 120 s readiness timeout), and its reason quoted.
    assert!(stderr.contains("exited"), "{stderr}");
    assert!(
        stderr.contains("it holds 2 client(s), the run has 3"),
        "{stderr}"
    );
}
