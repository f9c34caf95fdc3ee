//! Without a reachable Docker engine, the cold-start parts run on processes and the report
//! says so (issue 14: "fall back to processes, and say which"). The real binary, the
//! smallest plan, Figure 7 only.

use std::process::Command;

#[test]
fn without_docker_figure_7_runs_on_processes_and_the_report_says_so() {
    let mnist = std::env::var("MNIST_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/mnist").into());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_repro"))
        .args(["--smoke", "--only", "serve", "--no-build-images", "--out"])
        .arg(&out)
        .env("MNIST_DIR", &mnist)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("falling back to processes"), "{stdout}");

    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["runner"], "processes");
    assert!(
        results["failures"].as_array().unwrap().is_empty(),
        "{results:#}"
    );
    let points = results["serve"]["points"].as_array().unwrap();
    assert_eq!(points.len(), 4, "2 codecs x 2 sizes");
    for p in points {
        assert_eq!(p["errors"], 0, "{p}");
        assert!(p["cold_seconds"].as_f64().unwrap() > 0.0, "{p}");
    }
    let report = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    assert!(
        report.contains("**processes, not containers**: the Docker engine is not reachable"),
        "{report}"
    );
    assert!(report.contains("**Processes, not containers**"), "{report}");
    assert!(report.contains("a process, not a container"), "{report}");
}
