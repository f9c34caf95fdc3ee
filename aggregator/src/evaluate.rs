//! Centralised evaluation: the aggregator scores each candidate global model on a test
//! set it holds (MNIST's 10,000 test images in practice) before committing it.

use std::sync::Arc;

use engine::{Dataset, ModelSpec, ParamSet};

use crate::history::GlobalMetrics;
use crate::rounds::Evaluator;

/// Evaluates a candidate model on `test` with the engine.
pub fn test_set_evaluator(test: Arc<Dataset>) -> Arc<Evaluator> {
    Arc::new(move |spec: &ModelSpec, params: &ParamSet| {
        let model = engine::Sequential::from_params(spec.clone(), params.clone())?;
        let r = model.evaluate(&test, 500)?;
        Ok(GlobalMetrics {
            loss: r.loss,
            accuracy: r.accuracy,
            per_class_accuracy: r.per_class_accuracy,
            examples: r.examples,
        })
    })
}
