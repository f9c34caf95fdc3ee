//! Rounds with well-behaved fake clients: FedAvg weighting, strategies, resume.

use aggregator::history::{ClientStatus, RoundStatus};
use aggregator::strategy::{RoundSettings, StrategyKind};

use crate::fake::{constant, coordinator, honest, latest_value};

#[tokio::test]
async fn fedavg_weights_updates_by_example_count() {
    let dir = tempfile::tempdir().unwrap();
    // 100 examples at 0.1 and 300 at 0.4: (100*0.1 + 300*0.4) / 400 = 0.325.
    let clients = vec![constant("a", 0.1, 100).await, constant("b", 0.4, 300).await];
    let coord = coordinator(
        dir.path(),
        clients,
        RoundSettings::default(),
        StrategyKind::Fedavg,
    )
    .await;
    let record = coord.run_round().await.unwrap();
    assert_eq!(record.status, RoundStatus::Completed, "{record:?}");
    assert_eq!(record.round, 1);
    assert_eq!(record.version, Some(1));
    assert_eq!(record.accepted(), 2);
    assert!(
        (latest_value(&coord) - 0.325).abs() < 1e-7,
        "{}",
        latest_value(&coord)
    );
    let g = record.global.unwrap();
    assert!((g.accuracy - 0.325).abs() < 1e-6);
}

#[tokio::test]
async fn honest_rounds_chain_versions_and_resume_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clients = vec![honest("a", 0.5, 10).await, honest("b", 0.5, 30).await];
    {
        let coord = coordinator(
            dir.path(),
            clients.clone(),
            RoundSettings::default(),
            StrategyKind::Fedavg,
        )
        .await;
        for round in 1..=2 {
            let r = coord.run_round().await.unwrap();
            assert_eq!((r.round, r.version), (round, Some(round)));
            // Every accepted client reported its metrics and norm.
            for c in &r.clients {
                assert_eq!(c.status, ClientStatus::Accepted);
                assert_eq!(c.epoch_loss, vec![0.5]);
                assert!(c.update_norm.unwrap() > 0.0);
            }
        }
        assert!((latest_value(&coord) - 1.0).abs() < 1e-6);
    }
    // A new coordinator over the same directory resumes at round 3 from version 2.
    let coord = coordinator(
        dir.path(),
        clients,
        RoundSettings::default(),
        StrategyKind::Fedavg,
    )
    .await;
    let r = coord.run_round().await.unwrap();
    assert_eq!((r.round, r.base_version, r.version), (3, Some(2), Some(3)));
    assert!((latest_value(&coord) - 1.5).abs() < 1e-5);
    assert_eq!(coord.store().history().len(), 4);
}

#[tokio::test]
async fn median_and_fedavgm_strategies_run_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let clients = vec![
        constant("a", 0.1, 1).await,
        constant("b", 0.2, 1).await,
        constant("c", 0.9, 1000).await,
    ];
    let coord = coordinator(
        dir.path(),
        clients.clone(),
        RoundSettings::default(),
        StrategyKind::Median,
    )
    .await;
    coord.run_round().await.unwrap();
    assert_eq!(latest_value(&coord), 0.2);

    let dir = tempfile::tempdir().unwrap();
    let kind = StrategyKind::Fedavgm {
        momentum: 0.5,
        server_lr: 1.0,
    };
    let coord = coordinator(
        dir.path(),
        clients[..2].to_vec(),
        RoundSettings::default(),
        kind.clone(),
    )
    .await;
    // avg 0.15 both rounds: g1 = 0 - 0.15 -> m = -0.15 -> 0.15; g2 = 0 -> m = -0.075 -> 0.225
    coord.run_round().await.unwrap();
    assert!((latest_value(&coord) - 0.15).abs() < 1e-6);
    coord.run_round().await.unwrap();
    assert!((latest_value(&coord) - 0.225).abs() < 1e-6);
    drop(coord);

    // A restarted aggregator continues with the saved momentum: g3 = 0.225 - 0.15 = 0.075,
    // m = 0.5 * -0.075 + 0.075 = 0.0375 -> 0.1875 (from zero momentum it would be 0.15).
    let coord = coordinator(
        dir.path(),
        clients[..2].to_vec(),
        RoundSettings::default(),
        kind,
    )
    .await;
    let r = coord.run_round().await.unwrap();
    assert_eq!((r.round, r.version), (3, Some(3)));
    assert!(
        (latest_value(&coord) - 0.1875).abs() < 1e-6,
        "{}",
        latest_value(&coord)
    );
    // Only the latest version keeps a server state.
    let states: Vec<String> = std::fs::read_dir(dir.path().join("versions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("server-state"))
        .collect();
    assert_eq!(states, vec!["000003.server-state.safetensors".to_string()]);
}

#[tokio::test]
async fn fraction_fit_samples_a_subset() {
    let dir = tempfile::tempdir().unwrap();
    let mut clients = Vec::new();
    for i in 0..4 {
        clients.push(honest(&format!("c{i}"), 0.1, 5).await);
    }
    let settings = RoundSettings {
        fraction_fit: 0.5,
        min_fit_clients: 1,
        ..RoundSettings::default()
    };
    let coord = coordinator(dir.path(), clients, settings, StrategyKind::Fedavg).await;
    let r = coord.run_round().await.unwrap();
    assert_eq!(r.clients.len(), 2);
    assert_eq!(r.status, RoundStatus::Completed);
}
