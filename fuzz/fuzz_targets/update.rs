//! The aggregator's reading and validation of a client's update: any reply body is a
//! rejection or an update that is finite, of the global model's layout and within the norm
//! bound, never a panic; the round-relative checks never panic and keep weights within the
//! claims.
#![no_main]

use aggregator::clients::parse_reply;
use aggregator::relative::{self, Candidate, Verdict};
use aggregator::validate::{Claimed, Expected, ValidationLimits, validate};
use engine::{ParamSet, Tensor};
use libfuzzer_sys::fuzz_target;

fn global() -> ParamSet {
    let mut p = ParamSet::new();
    p.push("fc.weight", Tensor::from_slice(&[2, 2], &[0.0; 4]).unwrap())
        .unwrap();
    p.push("fc.bias", Tensor::from_slice(&[2], &[0.0; 2]).unwrap())
        .unwrap();
    p
}

fuzz_target!(|data: &[u8]| {
    let Ok(reply) = parse_reply(data.to_vec()) else {
        return;
    };
    let global = global();
    let limits = ValidationLimits::default();
    let claimed = Claimed {
        client_id: &reply.meta.client_id,
        round: reply.meta.round,
        nonce: &reply.meta.nonce,
        num_examples: reply.meta.num_examples,
        bytes: data.len() as u64,
        params: &reply.params,
    };
    let expected = Expected {
        client_id: "c",
        round: 1,
        nonce: "n",
        global: &global,
        registered_examples: Some(1000),
    };
    let Ok(norm) = validate(&claimed, &expected, &limits) else {
        return;
    };
    assert!(norm.is_finite() && norm <= limits.max_update_norm.unwrap_or(f32::MAX));
    assert!(reply.meta.num_examples <= 1000);
    // Three copies of the update with different claims through the relative checks.
    let c = |claimed| Candidate {
        params: &reply.params,
        claimed,
        norm,
        registered: false,
    };
    let candidates = [c(reply.meta.num_examples), c(1), c(1000)];
    for (v, cand) in relative::judge(&global, &candidates, &limits)
        .iter()
        .zip(&candidates)
    {
        if let Verdict::Keep { weight, .. } = v {
            assert!(*weight <= cand.claimed && *weight >= 1);
        }
    }
});
