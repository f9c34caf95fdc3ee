//! Bit-identical outputs and gradients for 1 and 2 rayon threads, on a Table-1-sized batch,
//! for every tier this host has.

use crate::common;

use common::{bits, tiers, values};
use conv_kernels::{
    Activation, Conv2dGeometry, ConvAlgo, DenseGeometry, Kernels, Padding, Pool2dGeometry,
    conv2d_scratch_slot_len,
};

/// Every output and gradient of the Table 1 layers at batch 64, as bit patterns.
fn run_all(k: &Kernels) -> Vec<(String, Vec<u32>)> {
    let mut res = Vec::new();
    let convs = [
        Conv2dGeometry::new(64, 1, 28, 28, 32, 5, 5, Padding::Valid).unwrap(),
        Conv2dGeometry::new(64, 32, 12, 12, 64, 5, 5, Padding::Valid).unwrap(),
        Conv2dGeometry::new(64, 3, 9, 9, 8, 4, 4, Padding::Same).unwrap(),
    ];
    for (i, g) in convs.iter().enumerate() {
        let x = values(i as u64, g.input_len());
        let w = values(i as u64 + 10, g.weight_len());
        let b = values(i as u64 + 20, g.out_channels);
        let dy = values(i as u64 + 30, g.output_len());
        // Two slots: room for two workers; kernels decide from the pool they run in.
        let mut scratch = vec![0.0; 2 * conv2d_scratch_slot_len(g)];
        for algo in [ConvAlgo::Im2colGemm, ConvAlgo::Direct, ConvAlgo::Winograd] {
            let mut out = vec![0.0; g.output_len()];
            k.conv2d_forward(
                g,
                algo,
                &x,
                &w,
                Some(&b),
                Activation::Relu,
                &mut out,
                &mut scratch,
            )
            .unwrap();
            res.push((format!("conv{i} forward {algo:?}"), bits(&out)));
        }
        let mut dx = vec![0.0; g.input_len()];
        k.conv2d_backward_input(g, &dy, &w, &mut dx, &mut scratch)
            .unwrap();
        res.push((format!("conv{i} grad input"), bits(&dx)));
        let mut dw = vec![0.0; g.weight_len()];
        k.conv2d_backward_weight(g, &x, &dy, &mut dw, &mut scratch)
            .unwrap();
        res.push((format!("conv{i} grad weight"), bits(&dw)));
        let mut db = vec![0.0; g.out_channels];
        k.conv2d_backward_bias(g, &dy, &mut db).unwrap();
        res.push((format!("conv{i} grad bias"), bits(&db)));
    }
    for (i, g) in [
        DenseGeometry::new(64, 1024, 256).unwrap(),
        DenseGeometry::new(200, 256, 130).unwrap(),
        // The GEMV path (batch <= GEMV_MAX_BATCH), big enough to split its rows over threads.
        DenseGeometry::new(3, 2048, 301).unwrap(),
    ]
    .iter()
    .enumerate()
    {
        let x = values(40 + i as u64, g.input_len());
        let w = values(41 + i as u64, g.weight_len());
        let b = values(42 + i as u64, g.out_features);
        let dy = values(43 + i as u64, g.output_len());
        let mut y = vec![0.0; g.output_len()];
        k.dense_forward(g, &x, &w, Some(&b), Activation::Relu, &mut y)
            .unwrap();
        res.push((format!("dense{i} forward"), bits(&y)));
        let mut dx = vec![0.0; g.input_len()];
        k.dense_backward_input(g, &dy, &w, &mut dx).unwrap();
        res.push((format!("dense{i} grad input"), bits(&dx)));
        let mut dw = vec![0.0; g.weight_len()];
        k.dense_backward_weight(g, &x, &dy, &mut dw).unwrap();
        res.push((format!("dense{i} grad weight"), bits(&dw)));
        let mut db = vec![0.0; g.out_features];
        k.dense_backward_bias(g, &dy, &mut db).unwrap();
        res.push((format!("dense{i} grad bias"), bits(&db)));
    }
    let p = Pool2dGeometry::two_by_two(64, 32, 24, 24).unwrap();
    let x = values(50, p.input_len());
    let mut out = vec![0.0; p.output_len()];
    let mut arg = vec![0u32; p.output_len()];
    k.maxpool2d_forward(&p, &x, &mut out, &mut arg).unwrap();
    res.push(("pool forward".into(), bits(&out)));
    res.push(("pool argmax".into(), arg));
    res
}

fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn one_and_two_threads_give_bit_identical_outputs_and_gradients() {
    for k in tiers() {
        let one = in_pool(1, || run_all(k));
        let two = in_pool(2, || run_all(k));
        assert_eq!(one.len(), two.len());
        for ((name, a), (_, b)) in one.iter().zip(&two) {
            let first = a.iter().zip(b).position(|(x, y)| x != y);
            assert!(
                first.is_none(),
                "{:?} {name}: 1 vs 2 threads differ at index {first:?}",
                k.isa()
            );
        }
    }
}

#[test]
fn scratch_of_one_slot_gives_the_same_bits_as_many() {
    let g = Conv2dGeometry::new(9, 4, 10, 10, 6, 3, 3, Padding::Same).unwrap();
    let x = values(1, g.input_len());
    let w = values(2, g.weight_len());
    let slot = conv2d_scratch_slot_len(&g);
    for k in tiers() {
        let mut a = vec![0.0; g.output_len()];
        let mut b = vec![0.0; g.output_len()];
        in_pool(2, || {
            k.conv2d_forward(
                &g,
                ConvAlgo::Im2colGemm,
                &x,
                &w,
                None,
                Activation::None,
                &mut a,
                &mut vec![0.0; slot],
            )
            .unwrap();
            k.conv2d_forward(
                &g,
                ConvAlgo::Im2colGemm,
                &x,
                &w,
                None,
                Activation::None,
                &mut b,
                &mut vec![0.0; 5 * slot],
            )
            .unwrap();
        });
        assert_eq!(bits(&a), bits(&b), "{:?}", k.isa());
    }
}
