//! Faulty and malicious clients: the round completes with the rest, or fails cleanly.

use std::time::Duration;

use aggregator::history::{ClientStatus, RoundStatus};
use aggregator::strategy::{RoundSettings, StrategyKind};

use crate::fake::{Behaviour, constant, coordinator, latest_value, spawn_dying, spawn_fake};

fn settings(min_fit: usize) -> RoundSettings {
    RoundSettings {
        min_fit_clients: min_fit,
        client_timeout_secs: 1.0,
        round_timeout_secs: 2.0,
        ..RoundSettings::default()
    }
}

fn status_of<'a>(r: &'a aggregator::history::RoundRecord, id: &str) -> &'a ClientStatus {
    &r.clients.iter().find(|c| c.client_id == id).unwrap().status
}

#[tokio::test]
async fn garbage_timeout_and_killed_clients_are_recorded_and_the_rest_aggregate() {
    let dir = tempfile::tempdir().unwrap();
    let clients = vec![
        constant("good1", 0.1, 10).await,
        constant("good2", 0.3, 10).await,
        spawn_fake("garbage", Behaviour::Garbage).await,
        spawn_fake("slow", Behaviour::Hang).await,
        spawn_dying("killed").await,
        spawn_fake("error", Behaviour::Error).await,
    ];
    let coord = coordinator(dir.path(), clients, settings(2), StrategyKind::Fedavg).await;
    let r = coord.run_round().await.unwrap();
    assert_eq!(r.status, RoundStatus::Completed, "{r:#?}");
    assert_eq!(r.accepted(), 2);
    assert!(
        matches!(status_of(&r, "garbage"), ClientStatus::Rejected { reason } if reason.contains("not a weights file"))
    );
    assert!(matches!(
        status_of(&r, "slow"),
        ClientStatus::Timeout { .. }
    ));
    assert!(matches!(
        status_of(&r, "killed"),
        ClientStatus::Failed { .. }
    ));
    assert!(
        matches!(status_of(&r, "error"), ClientStatus::Failed { reason } if reason.contains("500"))
    );
    assert!((latest_value(&coord) - 0.2).abs() < 1e-6);
    // The faults are in the durable history too.
    let h = coord.store().history();
    assert_eq!(h.last().unwrap().clients.len(), 6);
}

#[tokio::test]
async fn too_few_updates_fail_the_round_and_keep_the_previous_model() {
    let dir = tempfile::tempdir().unwrap();
    let clients = vec![
        constant("good", 0.7, 10).await,
        spawn_fake("slow", Behaviour::Hang).await,
        spawn_dying("killed").await,
    ];
    let coord = coordinator(dir.path(), clients, settings(2), StrategyKind::Fedavg).await;
    let r = coord.run_round().await.unwrap();
    assert_eq!(r.status, RoundStatus::Failed);
    assert_eq!(r.version, None);
    assert!(r.failure.as_deref().unwrap().contains("min_fit_clients"));
    assert_eq!(coord.store().latest_version(), Some(0));
    assert_eq!(latest_value(&coord), 0.0);
    // The next round is numbered after the failed one and still builds on version 0.
    let r = coord.run_round().await.unwrap();
    assert_eq!((r.round, r.base_version), (2, Some(0)));
}

#[tokio::test]
async fn accept_failures_off_fails_on_any_failure() {
    let dir = tempfile::tempdir().unwrap();
    let clients = vec![
        constant("good", 0.7, 10).await,
        spawn_fake("error", Behaviour::Error).await,
    ];
    let s = RoundSettings {
        accept_failures: false,
        ..settings(1)
    };
    let coord = coordinator(dir.path(), clients, s, StrategyKind::Fedavg).await;
    let r = coord.run_round().await.unwrap();
    assert_eq!(r.status, RoundStatus::Failed);
    assert_eq!(latest_value(&coord), 0.0);
}

#[tokio::test]
async fn poisoned_updates_are_rejected_and_do_not_touch_the_global_model() {
    let dir = tempfile::tempdir().unwrap();
    let clients = vec![
        constant("good", 0.25, 10).await,
        spawn_fake("nan", Behaviour::Nan).await,
        spawn_fake("huge", Behaviour::Huge).await,
        spawn_fake("shape", Behaviour::WrongShape).await,
        spawn_fake("replay", Behaviour::Replay).await,
    ];
    let coord = coordinator(dir.path(), clients, settings(1), StrategyKind::Fedavg).await;
    let r = coord.run_round().await.unwrap();
    assert_eq!(r.status, RoundStatus::Completed);
    assert_eq!(r.accepted(), 1);
    let reason = |id| match status_of(&r, id) {
        ClientStatus::Rejected { reason } => reason.clone(),
        other => panic!("{id}: {other:?}"),
    };
    assert!(reason("nan").contains("non-finite"), "{}", reason("nan"));
    assert!(reason("huge").contains("norm"), "{}", reason("huge"));
    assert!(reason("shape").contains("layout"), "{}", reason("shape"));
    assert!(reason("replay").contains("round"), "{}", reason("replay"));
    // Only the good update counts: the global model is exactly it.
    assert!((latest_value(&coord) - 0.25).abs() < 1e-7);
}

#[tokio::test]
async fn only_poisoned_updates_fail_the_round() {
    let dir = tempfile::tempdir().unwrap();
    let clients = vec![
        spawn_fake("nan", Behaviour::Nan).await,
        spawn_fake("huge", Behaviour::Huge).await,
    ];
    let coord = coordinator(dir.path(), clients, settings(1), StrategyKind::Fedavg).await;
    let r = coord.run_round().await.unwrap();
    assert_eq!(r.status, RoundStatus::Failed);
    assert_eq!(latest_value(&coord), 0.0);
    let _ = Duration::ZERO;
}

#[tokio::test]
async fn client_data_is_bounded_and_error_bodies_stay_private() {
    let dir = tempfile::tempdir().unwrap();
    let clients = vec![
        constant("good", 0.25, 10).await,
        spawn_fake("bloated-id", Behaviour::BloatedId).await,
        spawn_fake("bloated-metrics", Behaviour::BloatedMetrics).await,
        spawn_fake("unauthorized", Behaviour::Unauthorized).await,
    ];
    let coord = coordinator(dir.path(), clients, settings(1), StrategyKind::Fedavg).await;
    let r = coord.run_round().await.unwrap();
    assert_eq!(r.status, RoundStatus::Completed, "{r:#?}");
    let line = serde_json::to_string(&r).unwrap();
    assert!(
        line.len() < 10_000,
        "the round's record is {} bytes",
        line.len()
    );
    assert!(!line.contains("SECRET"), "{line}");
    assert!(
        matches!(status_of(&r, "unauthorized"), ClientStatus::Failed { reason } if reason.contains("401"))
    );
    assert!(
        matches!(status_of(&r, "bloated-id"), ClientStatus::Rejected { reason } if reason.contains("client"))
    );
    let metrics = r
        .clients
        .iter()
        .find(|c| c.client_id == "bloated-metrics")
        .unwrap();
    assert!(metrics.epoch_loss.is_empty() && metrics.epoch_accuracy.is_empty());
    assert_eq!(metrics.train_seconds, 0.0);
    // The persisted history stays small and readable after a restart.
    let size = std::fs::metadata(dir.path().join("history.jsonl"))
        .unwrap()
        .len();
    assert!(size < 20_000, "history is {size} bytes");
    drop(coord);
    aggregator::store::ModelStore::open(dir.path(), "tiny").unwrap();
}
