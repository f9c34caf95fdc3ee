//! Sequential model tests: gradients, learning on MNIST, determinism across thread counts,
//! micro-batched prediction, summaries and refused specs.

use std::ops::ControlFlow;

use engine::data::mnist::{self, Split};
use engine::spec::{ActivationSpec, LayerSpec, ModelSpec, PaddingSpec};
use engine::{
    Adam, AdamConfig, Dataset, Error, FitConfig, InferenceScratch, Optimizer, ParamSet, Pixels,
    Sequential, Sgd, SgdConfig,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn tiny_spec(dropout: f32) -> ModelSpec {
    ModelSpec {
        name: "tiny".into(),
        input_shape: [2, 6, 6],
        layers: vec![
            LayerSpec::Conv2D {
                name: "c1".into(),
                filters: 3,
                kernel_size: [3, 3],
                padding: PaddingSpec::Same,
                activation: ActivationSpec::Relu,
            },
            LayerSpec::MaxPool2D {
                pool_size: [2, 2],
                strides: None,
            },
            LayerSpec::Dropout { rate: dropout },
            LayerSpec::Conv2D {
                name: "c2".into(),
                filters: 4,
                kernel_size: [2, 2],
                padding: PaddingSpec::Valid,
                activation: ActivationSpec::Linear,
            },
            LayerSpec::ReLU,
            LayerSpec::Flatten,
            LayerSpec::Dense {
                name: "d1".into(),
                units: 5,
                activation: ActivationSpec::Linear,
            },
            LayerSpec::ReLU,
            LayerSpec::Dense {
                name: "d2".into(),
                units: 3,
                activation: ActivationSpec::Linear,
            },
            LayerSpec::Softmax,
        ],
    }
}

fn no_progress() -> impl FnMut(&engine::Progress) -> ControlFlow<()> {
    |_| ControlFlow::Continue(())
}

fn mnist_dir() -> std::path::PathBuf {
    mnist::dir_from_env()
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/mnist").into())
}

fn bits(p: &ParamSet) -> Vec<u32> {
    p.iter()
        .flat_map(|(_, t)| t.data().iter().map(|v| v.to_bits()))
        .collect()
}

#[test]
fn learns_mnist_subset() -> TestResult {
    let dir = mnist_dir();
    let train = mnist::load(&dir, Split::Train)?.take(2000);
    let test = mnist::load(&dir, Split::Test)?.take(1000);
    let mut model = Sequential::new(engine::presets::table1_cnn(), 1)?;
    let mut opt = Adam::new(AdamConfig::default());
    let cfg = FitConfig {
        epochs: 2,
        batch_size: 32,
        seed: 5,
        ..FitConfig::default()
    };
    let report = model.fit(&train, &cfg, &mut opt, &mut no_progress())?;
    assert_eq!(report.epochs.len(), 2);
    assert_eq!(report.examples, 4000);
    assert!(report.epochs[1].loss < report.epochs[0].loss, "{report:?}");
    let eval = model.evaluate(&test, 256)?;
    eprintln!("fit {report:?}\neval {eval:?}");
    assert_eq!(eval.examples, 1000);
    assert!(eval.accuracy > 0.85, "test accuracy {}", eval.accuracy);
    assert_eq!(eval.per_class_accuracy.len(), 10);
    Ok(())
}

/// Keeps the gradients it is given instead of updating anything.
#[derive(Default)]
struct Capture(Option<ParamSet>);

impl Optimizer for Capture {
    fn step(&mut self, _params: &mut ParamSet, grads: &ParamSet) -> engine::Result<()> {
        self.0 = Some(grads.clone());
        Ok(())
    }
    fn reset(&mut self) {
        self.0 = None;
    }
}

fn random_data(n: usize, input_len: usize, classes: u8, seed: u64) -> Dataset {
    let mut rng = engine::Rng::new(seed);
    let images = (0..n * input_len).map(|_| rng.below(256) as u8).collect();
    let labels = (0..n)
        .map(|_| rng.below(u64::from(classes)) as u8)
        .collect();
    // Dataset only knows rows x cols; any factorisation of C*H*W works.
    Dataset::new(images, labels, 1, input_len).unwrap()
}

/// Central differences of the mean loss against the analytic gradient of every parameter.
/// d loss / d w ~ (L(w + e) - L(w - e)) / 2e.
#[test]
fn backward_matches_finite_differences_on_a_tiny_model() -> TestResult {
    let spec = tiny_spec(0.0);
    let data = random_data(20, spec.input_len(), 3, 11); // several im2col chunks
    let mut model = Sequential::new(spec, 3)?;
    // Non-zero biases so that ReLU kinks are not all sitting at 0.
    for (name, t) in model.params_mut().iter_mut() {
        if name.ends_with(".bias") {
            for (i, v) in t.data_mut().iter_mut().enumerate() {
                *v = 0.05 * (i as f32 + 1.0);
            }
        }
    }
    let cfg = FitConfig {
        epochs: 1,
        batch_size: data.len(),
        shuffle: false,
        ..FitConfig::default()
    };
    let mut cap = Capture::default();
    model.fit(&data, &cfg, &mut cap, &mut no_progress())?;
    let grads = cap.0.ok_or("no gradient captured")?;
    let loss = |m: &Sequential| -> f64 { f64::from(m.evaluate(&data, 64).unwrap().loss) };
    let eps = 1e-3f32;
    let (mut checked, mut bad) = (0, Vec::new());
    let names: Vec<String> = model.params().iter().map(|(n, _)| n.to_string()).collect();
    for name in &names {
        let len = model.params().get(name).ok_or("param")?.len();
        for i in 0..len {
            let orig = model.params().get(name).ok_or("param")?.data()[i];
            let set = |m: &mut Sequential, v: f32| {
                m.params_mut().get_mut(name).unwrap().data_mut()[i] = v;
            };
            set(&mut model, orig + eps);
            let up = loss(&model);
            set(&mut model, orig - eps);
            let down = loss(&model);
            set(&mut model, orig);
            let numeric = (up - down) / (2.0 * f64::from(eps));
            let analytic = f64::from(grads.get(name).ok_or("grad")?.data()[i]);
            let tol = 2e-3 + 0.05 * numeric.abs().max(analytic.abs());
            if (numeric - analytic).abs() > tol {
                bad.push(format!(
                    "{name}[{i}]: analytic {analytic} numeric {numeric}"
                ));
            }
            checked += 1;
        }
    }
    // A kink of ReLU or a max-pool switch inside +-eps can spoil a rare element.
    assert!(
        bad.len() * 50 <= checked,
        "{} of {checked} gradients differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
    Ok(())
}

fn train_bits(threads: usize) -> Result<Vec<u32>, Box<dyn std::error::Error + Send + Sync>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    pool.install(|| {
        let data = mnist::load(&mnist_dir(), Split::Train)
            .map_err(|e| e.to_string())?
            .take(192);
        let mut model =
            Sequential::new(engine::presets::table1_cnn(), 9).map_err(|e| e.to_string())?;
        let mut opt = Adam::new(AdamConfig::default());
        let cfg = FitConfig {
            epochs: 1,
            batch_size: 64,
            seed: 4,
            ..FitConfig::default()
        };
        model
            .fit(&data, &cfg, &mut opt, &mut no_progress())
            .map_err(|e| e.to_string())?;
        Ok(bits(model.params()))
    })
}

#[test]
fn training_is_bit_identical_at_one_and_two_threads() {
    let one = train_bits(1).unwrap();
    let two = train_bits(2).unwrap();
    assert_eq!(one.len(), 317_066);
    let differing = one.iter().zip(&two).filter(|(a, b)| a != b).count();
    assert_eq!(
        differing, 0,
        "{differing} parameters differ between 1 and 2 threads"
    );
}

#[test]
fn micro_batched_prediction_equals_one_batch_and_u8_equals_f32() -> TestResult {
    let spec = engine::presets::table1_cnn();
    let model = Sequential::new(spec.clone(), 2)?;
    let data = mnist::load(&mnist_dir(), Split::Test)?.take(70);
    let n = data.len();
    let mut small = InferenceScratch::with_micro_batch(&spec, 7);
    let mut big = InferenceScratch::with_micro_batch(&spec, 100);
    let (mut a, mut b) = (vec![0.0; n * 10], vec![0.0; n * 10]);
    let (mut c, mut d) = (vec![0.0; n * 10], vec![0.0; n * 10]);
    model.predict_with(Pixels::U8(data.images()), &mut a, &mut small)?;
    model.predict_with(Pixels::U8(data.images()), &mut b, &mut big)?;
    let f: Vec<f32> = data
        .images()
        .iter()
        .map(|&p| f32::from(p) / 255.0)
        .collect();
    // Same micro-batching for u8 and f32 input (the kernels may pick another summation order,
    // e.g. dense's GEMV path, for a small last micro-batch): bit-identical.
    model.predict(Pixels::F32(&f), &mut c)?;
    model.predict(Pixels::U8(data.images()), &mut d)?;
    for (i, (((x, y), z), u)) in a.iter().zip(&b).zip(&c).zip(&d).enumerate() {
        assert!((x - y).abs() <= 1e-6, "[{i}] micro {x} vs one batch {y}");
        assert!(
            (y - z).abs() <= 1e-6,
            "[{i}] one batch {y} vs default micro-batches {z}"
        );
        assert_eq!(u.to_bits(), z.to_bits(), "[{i}] u8 {u} vs f32 {z}");
    }
    for row in a.chunks_exact(10) {
        let s: f32 = row.iter().sum();
        assert!((s - 1.0).abs() < 1e-5, "probabilities sum to {s}");
    }
    // Shapes and values are checked before any work.
    assert!(matches!(
        model.predict(Pixels::U8(&data.images()[..783]), &mut [0.0; 10]),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        model.predict(Pixels::U8(&data.images()[..784]), &mut [0.0; 9]),
        Err(Error::Shape { .. })
    ));
    let mut nan = f[..784].to_vec();
    nan[5] = f32::NAN;
    assert!(matches!(
        model.predict(Pixels::F32(&nan), &mut [0.0; 10]),
        Err(Error::InvalidArgument(_))
    ));
    model.predict(Pixels::U8(&[]), &mut [])?;
    Ok(())
}

#[test]
fn summary_lists_layers_and_317066_params() -> TestResult {
    let model = Sequential::new(engine::presets::table1_cnn(), 0)?;
    assert_eq!(model.num_params(), 317_066);
    let s = model.summary();
    for needle in [
        "Model: \"table1_cnn\"",
        "conv1 (Conv2D)",
        "(None, 32, 24, 24)",
        "max_pooling2d_1 (MaxPool2D)",
        "(None, 1024)",
        "262,400",
        "Total params: 317,066",
    ] {
        assert!(s.contains(needle), "summary lacks {needle}:\n{s}");
    }
    Ok(())
}

#[test]
fn bad_specs_and_parameter_sets_are_refused() -> TestResult {
    let mut spec = tiny_spec(0.5);
    spec.layers.remove(5); // Flatten: Dense after a [C, H, W] tensor
    assert!(matches!(Sequential::new(spec, 0), Err(Error::Spec(_))));
    let json = r#"{"name": "x", "input_shape": [1, 28, 28], "layers": [{"type": "Dense", "name": "d", "units": 10}]}"#;
    assert!(matches!(ModelSpec::from_json(json), Err(Error::Spec(_))));

    let good = Sequential::new(engine::presets::table1_cnn(), 0)?;
    let mut params = ParamSet::new();
    for (name, t) in good.params().iter() {
        if name == "fc1.weight" {
            params.push(name, engine::Tensor::zeros(&[256, 1000])?)?;
        } else {
            params.push(name, t.clone())?;
        }
    }
    match Sequential::from_params(engine::presets::table1_cnn(), params) {
        Err(Error::Shape {
            what,
            expected,
            got,
        }) => {
            assert!(what.contains("fc1.weight"), "{what}");
            assert_eq!((expected, got), (vec![256, 1024], vec![256, 1000]));
        }
        other => panic!("expected a shape error, got {other:?}"),
    }
    // Any order is accepted and rearranged.
    let mut reversed = ParamSet::new();
    let all: Vec<_> = good.params().iter().collect();
    for (name, t) in all.into_iter().rev() {
        reversed.push(name, t.clone())?;
    }
    let m = Sequential::from_params(engine::presets::table1_cnn(), reversed)?;
    assert_eq!(bits(m.params()), bits(good.params()));

    // A batch whose buffers would exceed the limit is refused before any allocation.
    let mut m = m;
    let many = random_data(8000, 784, 10, 3);
    let huge = FitConfig {
        batch_size: 8000,
        ..FitConfig::default()
    };
    let mut opt = Adam::new(AdamConfig::default());
    match m.fit(&many, &huge, &mut opt, &mut no_progress()) {
        Err(Error::InvalidArgument(msg)) => assert!(msg.contains("batch_size 8000"), "{msg}"),
        other => panic!("expected the batch to be refused, got {other:?}"),
    }
    Ok(())
}

#[test]
fn cancel_stops_after_the_batch_and_fedprox_changes_the_update() -> TestResult {
    let spec = tiny_spec(0.25);
    let data = random_data(40, spec.input_len(), 3, 2);
    let mut model = Sequential::new(spec.clone(), 1)?;
    let mut opt = Sgd::new(SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        nesterov: true,
    });
    let mut calls = 0;
    let cfg = FitConfig {
        epochs: 3,
        batch_size: 8,
        ..FitConfig::default()
    };
    let r = model.fit(&data, &cfg, &mut opt, &mut |p| {
        calls += 1;
        assert_eq!((p.epoch, p.batch, p.batches, p.epochs), (1, calls, 5, 3));
        if calls == 2 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    assert!(matches!(r, Err(Error::Cancelled)));
    assert_eq!(calls, 2);

    let run = |mu: Option<f32>| -> engine::Result<Vec<u32>> {
        let mut m = Sequential::new(spec.clone(), 1)?;
        let cfg = FitConfig {
            epochs: 2,
            batch_size: 8,
            proximal_mu: mu,
            ..FitConfig::default()
        };
        let mut opt = Sgd::new(SgdConfig::default());
        m.fit(&data, &cfg, &mut opt, &mut no_progress())?;
        Ok(bits(m.params()))
    };
    assert_eq!(run(None)?, run(Some(0.0))?);
    assert_ne!(run(None)?, run(Some(0.5))?);
    assert!(matches!(run(Some(-1.0)), Err(Error::InvalidArgument(_))));
    let bad_batch = FitConfig {
        batch_size: 0,
        ..FitConfig::default()
    };
    assert!(
        model
            .fit(&data, &bad_batch, &mut opt, &mut no_progress())
            .is_err()
    );
    let bad_labels = random_data(4, spec.input_len(), 9, 1);
    assert!(matches!(
        model.fit(&bad_labels, &cfg, &mut opt, &mut no_progress()),
        Err(Error::Data(_))
    ));
    Ok(())
}

/// Flatten is channel-major, as PyTorch's `x.flatten(1)` on NCHW: element (c, h, w) of a
/// [C, H, W] activation is feature `c*H*W + h*W + w` of the next Dense layer.
#[test]
fn flatten_feeds_dense_in_pytorch_order() -> TestResult {
    let spec = ModelSpec::from_json(
        r#"{"name": "flat", "input_shape": [2, 2, 3], "layers": [
            {"type": "Flatten"},
            {"type": "Dense", "name": "fc", "units": 2},
            {"type": "Softmax"}]}"#,
    )?;
    let mut model = Sequential::new(spec, 0)?;
    let (c, h, w) = (1, 0, 2);
    let index = c * 2 * 3 + h * 3 + w; // 8
    for (name, t) in model.params_mut().iter_mut() {
        let data = t.data_mut();
        data.fill(0.0);
        if name == "fc.weight" {
            data[index] = 1.0; // row 0 picks feature `index`
        }
    }
    let mut x = [0.0f32; 12];
    x[index] = 0.7;
    let mut p = [0.0f32; 2];
    model.predict(Pixels::F32(&x), &mut p)?;
    let expected = 1.0 / (1.0 + (-0.7f32).exp()); // softmax([0.7, 0])[0]
    assert!((p[0] - expected).abs() < 1e-6, "{} vs {expected}", p[0]);
    Ok(())
}

/// The weights packed for inference follow every change of the parameters: after a write
/// through `params_mut`, predictions equal those of a model freshly built from the new
/// parameters (bit for bit) and differ from the old ones.
#[test]
fn packed_weights_never_go_stale() -> TestResult {
    let spec = engine::presets::table1_cnn();
    let mut model = Sequential::new(spec.clone(), 5)?;
    assert!(model.packed_len() > 0, "weights packed at construction");
    let images: Vec<u8> = (0..33 * spec.input_len())
        .map(|i| (i * 37 % 251) as u8)
        .collect();
    let predict = |m: &Sequential, n: usize| -> Vec<f32> {
        let mut out = vec![0.0; n * 10];
        m.predict(Pixels::U8(&images[..n * spec.input_len()]), &mut out)
            .unwrap();
        out
    };
    let before = (predict(&model, 1), predict(&model, 33));
    for name in ["conv2.weight", "fc1.weight", "conv1.weight", "fc2.weight"] {
        let t = model.params_mut().get_mut(name).ok_or("param")?;
        for v in t.data_mut().iter_mut().step_by(3) {
            *v = -*v * 1.5;
        }
    }
    assert_eq!(model.packed_len(), 0, "params_mut drops the packing");
    let after = (predict(&model, 1), predict(&model, 33));
    let fresh = Sequential::from_params(spec.clone(), model.params().clone())?;
    assert_eq!(after.0, predict(&fresh, 1));
    assert_eq!(after.1, predict(&fresh, 33));
    assert_ne!(before.0, after.0);
    assert_ne!(before.1, after.1);
    // A clone shares the packing of its source; set_params repacks at once.
    let mut swapped = model.clone();
    swapped.set_params(fresh.params().clone())?;
    assert!(swapped.packed_len() > 0);
    assert_eq!(predict(&swapped, 33), after.1);
    Ok(())
}

/// Inference (packed weights, conv1 handing conv2 a channels-last activation where both
/// kernels work that way, fused pools) gives the probabilities of the naive reference
/// forward pass of the Table 1 CNN, at batch 1 and at a batch that runs Winograd.
#[test]
fn inference_matches_the_naive_reference_forward() -> TestResult {
    use conv_kernels::conv2d::reference as conv;
    use conv_kernels::dense::reference as dense;
    use conv_kernels::loss::reference as loss;
    use conv_kernels::pool::reference as pool;
    use conv_kernels::{Conv2dGeometry, DenseGeometry, Padding, Pool2dGeometry};

    let spec = engine::presets::table1_cnn();
    let model = Sequential::new(spec.clone(), 11)?;
    let p = |name: &str| -> Result<&[f32], String> {
        Ok(model.params().get(name).ok_or(name.to_string())?.data())
    };
    for n in [1, 33] {
        let images: Vec<u8> = (0..n * spec.input_len())
            .map(|i| (i * 53 % 256) as u8)
            .collect();
        let mut got = vec![0.0; n * 10];
        model.predict(Pixels::U8(&images), &mut got)?;

        let x: Vec<f32> = images.iter().map(|&v| f32::from(v) / 255.0).collect();
        let conv_pool = |x: &[f32], g: Conv2dGeometry, w: &[f32], b: &[f32]| {
            let mut y = vec![0.0; g.output_len()];
            conv::conv2d_forward(&g, x, w, Some(b), true, &mut y);
            let pg = Pool2dGeometry::two_by_two(g.batch, g.out_channels, g.out_h, g.out_w)
                .expect("pool geometry");
            let mut out = vec![0.0; pg.output_len()];
            pool::maxpool2d_forward(&pg, &y, &mut out, &mut vec![0; pg.output_len()]);
            out
        };
        let g1 = Conv2dGeometry::new(n, 1, 28, 28, 32, 5, 5, Padding::Valid)?;
        let h1 = conv_pool(&x, g1, p("conv1.weight")?, p("conv1.bias")?);
        let g2 = Conv2dGeometry::new(n, 32, 12, 12, 64, 5, 5, Padding::Valid)?;
        let h2 = conv_pool(&h1, g2, p("conv2.weight")?, p("conv2.bias")?);
        let d1 = DenseGeometry::new(n, 1024, 256)?;
        let mut h3 = vec![0.0; n * 256];
        dense::dense_forward(
            &d1,
            &h2,
            p("fc1.weight")?,
            Some(p("fc1.bias")?),
            true,
            &mut h3,
        );
        let d2 = DenseGeometry::new(n, 256, 10)?;
        let mut logits = vec![0.0; n * 10];
        dense::dense_forward(
            &d2,
            &h3,
            p("fc2.weight")?,
            Some(p("fc2.bias")?),
            false,
            &mut logits,
        );
        let mut want = vec![0.0; n * 10];
        loss::softmax_forward(&logits, 10, &mut want);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 2e-5,
                "batch {n} [{i}]: {g} vs reference {w}"
            );
        }
    }
    Ok(())
}
