//! `aggregator store-torture` (hidden): commits full-size model versions to a store as
//! fast as it can, to be killed with SIGKILL at random instants by the crash tests; and
//! the checks those tests run on what survives.

use std::path::Path;

use crate::history::RoundRecord;
use crate::store::ModelStore;

/// A model of the Table 1 layout whose every parameter is `value`.
fn torture_params(spec: &engine::ModelSpec, value: f32) -> anyhow::Result<engine::ParamSet> {
    let mut p = engine::ParamSet::new();
    for (name, shape) in spec.param_shapes()? {
        let mut t = engine::Tensor::zeros(&shape)?;
        t.fill(value);
        p.push(name, t)?;
    }
    Ok(p)
}

/// Checks that a stored version's bytes are the torture model for its own version.
pub fn check_torture_version(bytes: &[u8]) -> Result<(), String> {
    let w = engine::weights::from_bytes(bytes.to_vec()).map_err(|e| e.to_string())?;
    let expected = w.meta.version as f32;
    for (name, t) in w.params.iter() {
        if let Some(v) = t.data().iter().find(|&&v| v != expected) {
            return Err(format!("`{name}` holds {v}, version {expected}"));
        }
    }
    Ok(())
}

/// Checks that a server state's bytes are the torture state of `version` (every value
/// `-version`).
pub fn check_torture_state(bytes: &[u8], version: u64) -> Result<(), String> {
    let w = engine::weights::from_bytes(bytes.to_vec()).map_err(|e| e.to_string())?;
    let expected = -(version as f32);
    for (name, t) in w.params.iter() {
        if let Some(v) = t.data().iter().find(|&&v| v != expected) {
            return Err(format!("state `{name}` holds {v}, expected {expected}"));
        }
    }
    Ok(())
}

/// Commits versions to the store in `dir` as fast as it can (each a full Table 1 model
/// whose parameters all equal the version number, and from version 1 a server state of
/// `-version`), up to `versions`, for crash tests.
pub fn store_torture(dir: &Path, versions: u64) -> anyhow::Result<()> {
    let spec = engine::presets::table1_cnn();
    let store = ModelStore::open_checked(dir, "mnist", &check_torture_version)?;
    while store.next_version() < versions {
        let version = store.next_version();
        let round = store.next_round();
        // Every third round fails, so the history mixes both kinds of record.
        if round % 3 == 2 {
            store.record_failure(&RoundRecord::bare(round, None, "torture"))?;
            continue;
        }
        let mut meta = engine::weights::WeightsMeta::new(spec.clone());
        meta.version = version;
        meta.round = round;
        let bytes = engine::weights::to_bytes(&torture_params(&spec, version as f32)?, &meta)?;
        // Versions after the first carry a server state too, as FedAvgM's rounds do.
        let state = match version {
            0 => None,
            v => Some(engine::weights::to_bytes(
                &torture_params(&spec, -(v as f32))?,
                &meta,
            )?),
        };
        store.commit_with_state(
            bytes,
            state.as_deref(),
            &RoundRecord::bare(round, Some(version), "torture"),
        )?;
    }
    Ok(())
}
