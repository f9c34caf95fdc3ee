use super::*;
use crate::presets::table1_cnn;
use crate::spec::LayerSpec;
use serde_json::{Value, json};

fn tiny_spec(units: usize) -> ModelSpec {
    ModelSpec::from_json(&format!(
        r#"{{"name": "tiny", "input_shape": [1, 4, 4], "layers": [
            {{"type": "Conv2D", "name": "c1", "filters": 2, "kernel_size": [3, 3]}},
            {{"type": "Flatten"}},
            {{"type": "Dense", "name": "d1", "units": {units}}},
            {{"type": "Softmax"}}]}}"#
    ))
    .unwrap()
}

/// Parameters for `spec` with distinct, reproducible values.
fn params_for(spec: &ModelSpec) -> ParamSet {
    let mut p = ParamSet::new();
    for (k, (name, shape)) in spec.param_shapes().unwrap().into_iter().enumerate() {
        let mut t = Tensor::zeros(&shape).unwrap();
        for (i, v) in t.data_mut().iter_mut().enumerate() {
            *v = (i as f32 * 0.731).sin() + k as f32;
        }
        p.push(name, t).unwrap();
    }
    p
}

fn bits(p: &ParamSet) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    p.iter()
        .map(|(n, t)| {
            let b = t.data().iter().map(|v| v.to_bits()).collect();
            (n.to_string(), t.shape().to_vec(), b)
        })
        .collect()
}

/// A safetensors file assembled by hand: `tensors` are (name, dtype, shape), laid out in
/// order with zero data; `metadata` goes in `__metadata__` when given.
fn craft(tensors: &[(&str, &str, &[usize])], metadata: Option<Value>) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    if let Some(m) = metadata {
        header.insert("__metadata__".into(), m);
    }
    let mut offset = 0usize;
    for (name, dtype, shape) in tensors {
        let size = match *dtype {
            "F64" => 8,
            "F32" => 4,
            "F16" => 2,
            _ => 1,
        } * shape.iter().product::<usize>();
        header.insert(
            name.to_string(),
            json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}),
        );
        offset += size;
    }
    raw_file(&Value::Object(header).to_string(), &vec![0u8; offset])
}

fn raw_file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.as_bytes().to_vec();
    h.resize(h.len().next_multiple_of(8), b' ');
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out
}

fn tiny_meta() -> Value {
    json!({"spec": tiny_spec(3).to_json()})
}

const TINY_OK: [(&str, &str, &[usize]); 4] = [
    ("c1.weight", "F32", &[2, 1, 3, 3]),
    ("c1.bias", "F32", &[2]),
    ("d1.weight", "F32", &[3, 8]),
    ("d1.bias", "F32", &[3]),
];

fn err(r: Result<LoadedWeights>) -> String {
    r.expect_err("expected the file to be refused").to_string()
}

#[test]
fn save_then_load_round_trips_bits_and_metadata_in_place() {
    let spec = table1_cnn();
    let params = params_for(&spec);
    let mut meta = WeightsMeta::new(spec.clone());
    meta.version = 7;
    meta.round = 3;
    meta.extra.insert("accuracy".into(), "0.9871".into());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v7.safetensors");
    save(&path, &params, &meta).unwrap();

    let loaded = load(&path).unwrap();
    assert_eq!(loaded.meta, meta);
    assert_eq!(bits(&loaded.params), bits(&params));
    assert!(
        loaded.params.iter().all(|(_, t)| t.is_mapped()),
        "aligned tensors are used in place"
    );
    let checked = load_checked(&path, &spec).unwrap();
    assert_eq!(bits(&checked.params), bits(&params));
    let from_mem = from_bytes(std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(bits(&from_mem.params), bits(&params));
    assert_eq!(from_mem.meta, meta);
    // Only the file itself in the folder: the temporary was renamed.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn table1_cnn_file_has_exactly_the_design_doc_names_shapes_and_metadata() {
    // shared/docs/design.md, "Weights file: safetensors, PyTorch names and layouts".
    let design: [(&str, &[usize]); 8] = [
        ("conv1.weight", &[32, 1, 5, 5]),
        ("conv1.bias", &[32]),
        ("conv2.weight", &[64, 32, 5, 5]),
        ("conv2.bias", &[64]),
        ("fc1.weight", &[256, 1024]),
        ("fc1.bias", &[256]),
        ("fc2.weight", &[10, 256]),
        ("fc2.bias", &[10]),
    ];
    let spec = table1_cnn();
    let bytes = to_bytes(&params_for(&spec), &WeightsMeta::new(spec.clone())).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!(n % 8, 0, "header padded to 8 bytes so tensors are aligned");
    let header: serde_json::Map<String, Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    assert_eq!(header.len(), design.len() + 1);
    let mut total = 0;
    for (name, shape) in design {
        let info = &header[name];
        assert_eq!(info["dtype"], "F32", "{name}");
        assert_eq!(info["shape"], json!(shape), "{name}");
        let [s, e] = [0, 1].map(|i| info["data_offsets"][i].as_u64().unwrap() as usize);
        assert_eq!(e - s, 4 * shape.iter().product::<usize>(), "{name}");
        total += shape.iter().product::<usize>();
    }
    assert_eq!(total, 317_066);
    let meta = &header["__metadata__"];
    assert_eq!(meta["normalisation"], "pixel/255");
    assert_eq!(meta["version"], "0");
    assert_eq!(meta["round"], "0");
    assert_eq!(
        ModelSpec::from_json(meta["spec"].as_str().unwrap()).unwrap(),
        spec
    );
    // Little-endian F32: the first element of conv1.weight is sin(0) + 0 = 0.0, the second
    // sin(0.731) ~ 0.6677; read it back from the raw bytes.
    let s = header["conv1.weight"]["data_offsets"][0].as_u64().unwrap() as usize;
    let at = 8 + n + s + 4;
    let v = f32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(v, 0.731f32.sin());
}

#[test]
fn hand_made_file_with_the_right_tensors_loads() {
    let loaded = from_bytes(craft(&TINY_OK, Some(tiny_meta()))).unwrap();
    let names: Vec<&str> = loaded.params.iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["c1.weight", "c1.bias", "d1.weight", "d1.bias"],
        "spec order"
    );
    assert_eq!(loaded.meta.normalisation, PIXEL_255);
}

#[test]
fn missing_tensor_is_refused_naming_it_and_its_shape() {
    let msg = err(from_bytes(craft(&TINY_OK[..3], Some(tiny_meta()))));
    assert!(
        msg.contains("missing tensor `d1.bias`") && msg.contains("[3]"),
        "{msg}"
    );
}

#[test]
fn wrong_shape_is_refused_with_both_shapes() {
    let mut t = TINY_OK;
    t[2] = ("d1.weight", "F32", &[3, 9]);
    let e = from_bytes(craft(&t, Some(tiny_meta()))).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("d1.weight") && msg.contains("[3, 8]") && msg.contains("[3, 9]"),
        "{msg}"
    );
}

#[test]
fn wrong_dtype_is_refused() {
    let mut t = TINY_OK;
    t[3] = ("d1.bias", "F64", &[3]);
    let msg = err(from_bytes(craft(&t, Some(tiny_meta()))));
    assert!(
        msg.contains("d1.bias") && msg.contains("F64") && msg.contains("F32"),
        "{msg}"
    );
}

#[test]
fn extra_tensor_is_refused() {
    let mut t = TINY_OK.to_vec();
    t.push(("d2.weight", "F32", &[1]));
    let msg = err(from_bytes(craft(&t, Some(tiny_meta()))));
    assert!(msg.contains("unexpected tensor `d2.weight`"), "{msg}");
}

#[test]
fn truncated_file_names_the_cut_tensor_and_every_cut_is_an_error() {
    let spec = tiny_spec(3);
    let bytes = to_bytes(&params_for(&spec), &WeightsMeta::new(spec)).unwrap();
    // Tensors are laid out by name: d1.weight is last.
    let msg = err(from_bytes(bytes[..bytes.len() - 4].to_vec()));
    assert!(
        msg.contains("truncated") && msg.contains("d1.weight"),
        "{msg}"
    );
    for cut in 0..bytes.len() {
        assert!(from_bytes(bytes[..cut].to_vec()).is_err(), "cut at {cut}");
    }
    let mut long = bytes;
    long.push(0);
    let msg = err(from_bytes(long));
    assert!(msg.contains("follow the header"), "{msg}");
}

#[test]
fn header_offsets_that_lie_are_refused() {
    let meta = tiny_meta().to_string();
    let data = vec![0u8; 4 * (18 + 2 + 24 + 3)];
    let cases = [
        // Overlapping: c1.bias starts inside c1.weight.
        r#""c1.weight": {"dtype": "F32", "shape": [2, 1, 3, 3], "data_offsets": [0, 72]},
           "c1.bias": {"dtype": "F32", "shape": [2], "data_offsets": [68, 76]},
           "d1.weight": {"dtype": "F32", "shape": [3, 8], "data_offsets": [76, 172]},
           "d1.bias": {"dtype": "F32", "shape": [3], "data_offsets": [172, 188]}"#,
        // Range size disagrees with shape x dtype.
        r#""c1.weight": {"dtype": "F32", "shape": [2, 1, 3, 3], "data_offsets": [0, 76]},
           "c1.bias": {"dtype": "F32", "shape": [2], "data_offsets": [76, 84]},
           "d1.weight": {"dtype": "F32", "shape": [3, 8], "data_offsets": [84, 180]},
           "d1.bias": {"dtype": "F32", "shape": [3], "data_offsets": [180, 188]}"#,
        // Points far past the end of the file.
        r#""c1.weight": {"dtype": "F32", "shape": [2, 1, 3, 3], "data_offsets": [0, 72]},
           "c1.bias": {"dtype": "F32", "shape": [2], "data_offsets": [72, 80]},
           "d1.weight": {"dtype": "F32", "shape": [3, 8], "data_offsets": [80, 176]},
           "d1.bias": {"dtype": "F32", "shape": [1000000000], "data_offsets": [176, 4000000176]}"#,
        // A gap between tensors.
        r#""c1.weight": {"dtype": "F32", "shape": [2, 1, 3, 3], "data_offsets": [0, 72]},
           "c1.bias": {"dtype": "F32", "shape": [2], "data_offsets": [76, 84]},
           "d1.weight": {"dtype": "F32", "shape": [3, 8], "data_offsets": [84, 180]},
           "d1.bias": {"dtype": "F32", "shape": [3], "data_offsets": [180, 192]}"#,
    ];
    for (i, tensors) in cases.iter().enumerate() {
        let header = format!(r#"{{"__metadata__": {meta}, {tensors}}}"#);
        let msg = err(from_bytes(raw_file(&header, &data)));
        assert!(!msg.is_empty(), "case {i}");
    }
    // The far-past-the-end case names its tensor.
    let header = format!(r#"{{"__metadata__": {meta}, {}}}"#, cases[2]);
    let msg = err(from_bytes(raw_file(&header, &data)));
    assert!(
        msg.contains("d1.bias") && msg.contains("truncated"),
        "{msg}"
    );
}

#[test]
fn offsets_summing_past_usize_are_an_error_not_an_overflow() {
    // Eight U8 tensors of usize::MAX / 8 bytes each: the claimed end of the data is within
    // 8 of usize::MAX, so "end + header" would overflow in a naive check.
    let big = usize::MAX / 8;
    let tensors: String = (0..8)
        .map(|i| {
            format!(
                r#""t{i}": {{"dtype": "U8", "shape": [{big}], "data_offsets": [{}, {}]}}"#,
                i * big,
                (i + 1) * big
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    let msg = err(from_bytes(raw_file(&format!("{{{tensors}}}"), &[])));
    assert!(msg.contains("truncated"), "{msg}");
}

#[test]
fn garbage_is_refused() {
    for bytes in [
        vec![],
        vec![1, 2, 3],
        u64::MAX.to_le_bytes().to_vec(),
        raw_file("not json", &[]),
        raw_file("[1, 2]", &[]),
        raw_file("{}", &[]),
        raw_file(r#"{"__metadata__": {"spec": "{\"name\": 1}"}}"#, &[]),
        {
            let mut b = raw_file("{}", &[]);
            b[8] = 0xff;
            b
        },
    ] {
        assert!(from_bytes(bytes.clone()).is_err(), "{bytes:?}");
    }
}

#[test]
fn file_without_spec_needs_the_expected_architecture() {
    let bytes = craft(&TINY_OK, Some(json!({"format": "pt"})));
    assert!(err(from_bytes(bytes.clone())).contains("no `spec`"));
    let loaded = from_shared_checked(Arc::new(OwnedBytes(bytes)), &tiny_spec(3)).unwrap();
    assert_eq!(loaded.meta.version, 0);
    assert_eq!(
        loaded.meta.extra.get("format").map(String::as_str),
        Some("pt")
    );
    // And with no __metadata__ at all.
    let bare = craft(&TINY_OK, None);
    assert!(from_shared_checked(Arc::new(OwnedBytes(bare)), &tiny_spec(3)).is_ok());
}

#[test]
fn load_checked_refuses_another_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let spec = tiny_spec(3);
    save(&path, &params_for(&spec), &WeightsMeta::new(spec.clone())).unwrap();
    let msg = load_checked(&path, &tiny_spec(4)).unwrap_err().to_string();
    assert!(
        msg.contains("m.safetensors") && msg.contains("d1.weight") && msg.contains("[4, 8]"),
        "{msg}"
    );
    // Same tensors, different layers (a ReLU before the softmax): another architecture.
    let mut relu = spec.clone();
    relu.layers.insert(3, LayerSpec::ReLU);
    let msg = load_checked(&path, &relu).unwrap_err().to_string();
    assert!(msg.contains("differs"), "{msg}");
    assert!(load_checked(&path, &spec).is_ok());
}

#[test]
fn to_bytes_refuses_params_that_do_not_fit_the_spec() {
    let spec = tiny_spec(3);
    let meta = WeightsMeta::new(spec.clone());
    let other = params_for(&tiny_spec(4));
    let msg = to_bytes(&other, &meta).unwrap_err().to_string();
    assert!(
        msg.contains("d1.weight") && msg.contains("[3, 8]") && msg.contains("[4, 8]"),
        "{msg}"
    );
    let mut extra = params_for(&spec);
    extra.push("zz", Tensor::zeros(&[1]).unwrap()).unwrap();
    assert!(
        to_bytes(&extra, &meta)
            .unwrap_err()
            .to_string()
            .contains("`zz`")
    );
    let mut reserved = meta;
    reserved.extra.insert("round".into(), "9".into());
    assert!(to_bytes(&params_for(&spec), &reserved).is_err());
}

#[test]
fn bad_metadata_values_are_refused() {
    let mut m = tiny_meta();
    m["version"] = json!("seven");
    let msg = err(from_bytes(craft(&TINY_OK, Some(m))));
    assert!(msg.contains("version") && msg.contains("seven"), "{msg}");
}

/// Bytes starting one past an allocation's start: odd addresses, so never 4-aligned.
#[derive(Debug)]
struct Misaligned(Vec<u8>);
impl SharedBytes for Misaligned {
    fn bytes(&self) -> &[u8] {
        &self.0[1..]
    }
}

#[test]
fn misaligned_tensors_are_copied_with_the_same_values() {
    let spec = tiny_spec(3);
    let params = params_for(&spec);
    let bytes = to_bytes(&params, &WeightsMeta::new(spec)).unwrap();
    // Find an allocation whose second byte is odd-addressed (alignment of Vec<u8> is at
    // least 1; in practice 8 or 16, which makes index 1 odd).
    let mut v = vec![0u8];
    v.extend_from_slice(&bytes);
    let src = Misaligned(v);
    assert_ne!(src.bytes().as_ptr() as usize % 4, 0);
    let loaded = from_shared(Arc::new(src)).unwrap();
    assert!(loaded.params.iter().all(|(_, t)| !t.is_mapped()));
    assert_eq!(bits(&loaded.params), bits(&params));
}

#[test]
fn empty_and_missing_files_are_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.safetensors");
    std::fs::write(&path, b"").unwrap();
    assert!(
        load(&path)
            .unwrap_err()
            .to_string()
            .contains("empty.safetensors")
    );
    let missing = dir.path().join("nope.safetensors");
    assert!(
        load(&missing)
            .unwrap_err()
            .to_string()
            .contains("nope.safetensors")
    );
}

/// Random byte-level mutations of `seed` (flips, interesting values, cuts, inserts).
pub(crate) fn mutate(seed: &[u8], rng: &mut crate::Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = b.len() as u64;
        match rng.below(5) {
            0 if len > 0 => {
                let i = rng.below(len) as usize;
                b[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len) as usize;
                b[i] = [0, 0xff, 0x7f, 0x80, b'9', b'"', b'['][rng.below(7) as usize];
            }
            2 => b.truncate(rng.below(len + 1) as usize),
            3 => {
                let i = rng.below(len + 1) as usize;
                b.insert(i, rng.below(256) as u8);
            }
            _ if len > 0 => {
                // Overwrite 8 bytes with a little-endian integer (header length, offsets).
                let i = rng.below(len) as usize;
                let v = [0u64, 1, 8, u32::MAX as u64, u64::MAX][rng.below(5) as usize];
                for (k, byte) in v.to_le_bytes().iter().enumerate() {
                    if let Some(dst) = b.get_mut(i + k) {
                        *dst = *byte;
                    }
                }
            }
            _ => {}
        }
    }
    b
}

#[test]
fn fuzz_seed_is_a_valid_file() {
    let seed = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/seeds/weights/tiny.safetensors"
    ))
    .unwrap();
    let loaded = from_bytes(seed).unwrap();
    assert_eq!((loaded.meta.version, loaded.meta.round), (1, 2));
    assert_eq!(loaded.params.num_params(), 18 + 2 + 24 + 3);
}

/// The fuzz target's property on seeded random mutations, so CI runs it on stable:
/// every input is an error or a complete model that saves and reloads bit-identically.
#[test]
fn mutated_files_are_errors_or_complete_models_never_panics() {
    let spec = tiny_spec(3);
    let mut meta = WeightsMeta::new(spec.clone());
    meta.extra.insert("k".into(), "v".into());
    let seed = to_bytes(&params_for(&spec), &meta).unwrap();
    let mut rng = crate::Rng::new(2026);
    let mut accepted = 0;
    for _ in 0..5000 {
        let input = mutate(&seed, &mut rng);
        if let Ok(loaded) = from_bytes(input) {
            accepted += 1;
            assert_eq!(loaded.params.len(), 4);
            let again = from_bytes(to_bytes(&loaded.params, &loaded.meta).unwrap()).unwrap();
            assert_eq!(again.meta, loaded.meta);
            assert_eq!(bits(&again.params), bits(&loaded.params));
        }
    }
    // Flips inside tensor data keep the file valid: some mutants must load.
    assert!(accepted > 0);
}
