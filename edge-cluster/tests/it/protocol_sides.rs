//! The contract seen from both sides: a request the aggregator's code writes is what
//! fn-train's code reads, field by field, optimizer included.

use aggregator::clients::{ModelRef, TrainRequest, encode_request};
use aggregator::rounds::{TrainSettings, adam};

#[test]
fn a_request_written_by_the_aggregator_is_read_by_fn_train() {
    let settings = TrainSettings {
        optimizer: adam(5e-4),
        ..TrainSettings::default()
    };
    let request = TrainRequest {
        round: 4,
        nonce: service::random::hex(16).unwrap(),
        model: ModelRef::url("http://127.0.0.1:9/v1/models/mnist/versions/3"),
        epochs: settings.epochs,
        batch_size: settings.batch_size,
        optimizer: settings.optimizer.clone(),
        seed: 11,
        proximal_mu: Some(0.1),
        deadline_ms: Some(60_000),
    };
    let body = encode_request(&request).unwrap();

    let parsed = fn_train::request::parse(&body).unwrap();
    let job = fn_train::request::validate(parsed, &fn_train::Config::default()).unwrap();
    assert_eq!(job.round, 4);
    assert_eq!(job.nonce, request.nonce);
    assert_eq!((job.epochs, job.batch_size, job.seed), (1, 64, 11));
    assert_eq!(job.proximal_mu, Some(0.1));
    assert_eq!(job.deadline, Some(std::time::Duration::from_secs(60)));
    match &job.model {
        fn_train::request::ModelSource::Url(u) => {
            assert_eq!(u.as_str(), "http://127.0.0.1:9/v1/models/mnist/versions/3")
        }
        other => panic!("{other:?}"),
    }
    // The optimizer fn-train will build is exactly the one the aggregator configured.
    let optimizer: engine::OptimizerConfig = serde_json::from_value(job.optimizer).unwrap();
    assert_eq!(optimizer, settings.optimizer);
}
