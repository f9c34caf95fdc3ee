//! Which models fn-serve installs: the pinned architecture, buffers that fit.

use std::sync::Arc;

use engine::weights::{self, WeightsMeta};
use engine::{ModelSpec, Sequential};
use fn_serve::metrics::Metrics;
use fn_serve::model_slot::{Admission, ModelSlot};

use crate::common::{load_failures as failures, write_model};

fn write_spec(path: &std::path::Path, spec: ModelSpec, version: u64) {
    let model = Sequential::new(spec.clone(), 3).unwrap();
    let mut meta = WeightsMeta::new(spec);
    meta.version = version;
    // Written beside and renamed over, as the store does.
    let tmp = path.with_extension("tmp");
    weights::save(&tmp, model.params(), &meta).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Same input and classes as Table 1, another architecture.
fn small_mlp() -> ModelSpec {
    ModelSpec::from_json(
        r#"{"name":"mlp","input_shape":[1,28,28],"layers":[
            {"type":"Flatten"},{"type":"Dense","name":"d","units":10},{"type":"Softmax"}]}"#,
    )
    .unwrap()
}

/// 20,000 1x1 filters: 0.9 MB of weights, about 3 GiB of inference buffers at 16 images.
fn huge() -> ModelSpec {
    ModelSpec::from_json(
        r#"{"name":"huge","input_shape":[1,28,28],"layers":[
            {"type":"Conv2D","name":"c","filters":20000,"kernel_size":[1,1]},
            {"type":"MaxPool2D","pool_size":[28,28]},
            {"type":"Flatten"},{"type":"Dense","name":"d","units":10},{"type":"Softmax"}]}"#,
    )
    .unwrap()
}

#[tokio::test]
async fn the_architecture_is_pinned_and_a_model_that_cannot_fit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.safetensors");
    let uri = file.to_str().unwrap().to_owned();
    write_model(&file, 1, 1);

    // Default admission: Table 1 only.
    let metrics = Arc::new(Metrics::default());
    let slot = ModelSlot::new(&uri, "mnist", dir.path().join("c"), metrics.clone());
    assert!(slot.refresh().await.unwrap());
    write_spec(&file, small_mlp(), 2);
    let err = slot.refresh().await.unwrap_err();
    assert!(format!("{err:#}").contains("architecture"), "{err:#}");
    assert_eq!(slot.get().unwrap().version, "1");
    assert_eq!(failures(&metrics), "1");

    // Any architecture, in a 100 MiB pod: the small one is served, the huge one refused.
    let metrics = Arc::new(Metrics::default());
    let slot = ModelSlot::new(&uri, "mnist", dir.path().join("c"), metrics.clone()).with_admission(
        Admission {
            pinned: None,
            memory: Some(100 << 20),
            threads: 1,
            max_batch: 10_000,
        },
    );
    assert!(slot.refresh().await.unwrap());
    assert_eq!(slot.get().unwrap().version, "2");
    write_spec(&file, huge(), 3);
    let err = slot.refresh().await.unwrap_err();
    assert!(format!("{err:#}").contains("MiB"), "{err:#}");
    assert_eq!(slot.get().unwrap().version, "2");
    assert_eq!(failures(&metrics), "1");

    // Table 1 fits the 100 MiB pod with the default limits on one thread.
    write_model(&file, 1, 4);
    assert!(slot.refresh().await.unwrap());
    assert_eq!(slot.get().unwrap().version, "4");
}
