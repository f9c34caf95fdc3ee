//! safetensors weights loader: any input is an error or a complete model, never a panic; a
//! loaded model saves and reloads to the same metadata and bit-identical tensors.
#![no_main]

use engine::weights;
use libfuzzer_sys::fuzz_target;

fn bits(p: &engine::ParamSet) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    p.iter()
        .map(|(n, t)| {
            let b = t.data().iter().map(|v| v.to_bits()).collect();
            (n.to_string(), t.shape().to_vec(), b)
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(loaded) = weights::from_bytes(data.to_vec()) else {
        return;
    };
    let expected: usize = loaded
        .meta
        .spec
        .param_shapes()
        .expect("a loaded spec is valid")
        .len();
    assert_eq!(loaded.params.len(), expected, "complete model");
    let bytes = weights::to_bytes(&loaded.params, &loaded.meta).expect("a loaded model saves");
    let again = weights::from_bytes(bytes).expect("a saved model loads");
    assert_eq!(again.meta, loaded.meta);
    assert_eq!(bits(&again.params), bits(&loaded.params));
});
