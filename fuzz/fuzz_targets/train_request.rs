//! fn-train's training request: any body is a request or an error (400/422), never a panic;
//! a request that validates respects every limit of the node.
#![no_main]

use fn_train::request::{parse, validate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = parse(data) else {
        return;
    };
    let config = fn_train::Config {
        max_epochs: 50,
        max_batch_size: 256,
        max_model_bytes: 1 << 16,
        ..fn_train::Config::default()
    };
    if let Ok(job) = validate(request, &config) {
        assert!((1..=50).contains(&job.epochs));
        assert!((1..=256).contains(&job.batch_size));
        assert!(job.proximal_mu.is_none_or(|mu| mu.is_finite() && mu >= 0.0));
    }
});
