//! relu and dropout: every length 0..3*lanes+1 and every misaligned start, every tier.

use crate::common::{MAX_LANES, tiers, values};
use conv_kernels::elementwise::reference as relu_ref;
use conv_kernels::elementwise::reference as drop_ref;

/// Lengths and start offsets covering every vector tail and misalignment of the widest
/// (16-lane) vectors, hence of every narrower one.
fn shapes() -> impl Iterator<Item = (usize, usize)> {
    (0..=3 * MAX_LANES + 1).flat_map(|len| (0..MAX_LANES).map(move |off| (len, off)))
}

#[test]
fn relu_forward_and_backward_match_reference_every_tail_and_offset() {
    for k in tiers() {
        for (len, off) in shapes() {
            let all = values(len as u64 * 31 + off as u64, len + off);
            let x = &all[off..];
            let dy_all = values(len as u64 * 17 + 5, len + off);
            let dy = &dy_all[off..];
            let mut want = vec![0.0; len];
            relu_ref::relu_forward(x, &mut want);
            let mut got = vec![f32::NAN; len + off];
            k.relu_forward(x, &mut got[off..]).unwrap();
            assert_eq!(
                &got[off..],
                &want[..],
                "{:?} relu_forward len {len} off {off}",
                k.isa()
            );
            let mut inplace = x.to_vec();
            k.relu_forward_inplace(&mut inplace);
            assert_eq!(
                inplace,
                want,
                "{:?} relu_forward_inplace len {len}",
                k.isa()
            );

            let mut want_dx = vec![0.0; len];
            relu_ref::relu_backward(&want, dy, &mut want_dx);
            let mut dx = vec![f32::NAN; len];
            k.relu_backward(&want, dy, &mut dx).unwrap();
            assert_eq!(
                dx,
                want_dx,
                "{:?} relu_backward len {len} off {off}",
                k.isa()
            );
            let mut g = dy.to_vec();
            k.relu_backward_inplace(&want, &mut g).unwrap();
            assert_eq!(g, want_dx, "{:?} relu_backward_inplace len {len}", k.isa());
        }
    }
}

#[test]
fn dropout_matches_reference_every_tail_and_offset() {
    for k in tiers() {
        for (len, off) in shapes() {
            let all = values(len as u64 + 99, len + off);
            let x = &all[off..];
            let mask: Vec<f32> = values(len as u64 + 7, len)
                .iter()
                .map(|&r| if r < -0.5 { 0.0 } else { 1.0 / 0.75 })
                .collect();
            let mut want = vec![0.0; len];
            drop_ref::dropout_forward(x, &mask, &mut want);
            let mut got = vec![f32::NAN; len];
            k.dropout_forward(x, &mask, &mut got).unwrap();
            assert_eq!(
                got,
                want,
                "{:?} dropout_forward len {len} off {off}",
                k.isa()
            );
            let mut inplace = x.to_vec();
            k.dropout_forward_inplace(&mut inplace, &mask).unwrap();
            assert_eq!(
                inplace,
                want,
                "{:?} dropout_forward_inplace len {len}",
                k.isa()
            );
            let mut dx = vec![f32::NAN; len];
            k.dropout_backward(x, &mask, &mut dx).unwrap();
            assert_eq!(dx, want, "{:?} dropout_backward len {len}", k.isa());
        }
    }
}

#[test]
fn free_functions_use_the_active_tier() {
    let isa = conv_kernels::active_isa();
    assert!(isa.is_available());
    let x = values(3, 19);
    let mut a = vec![0.0; 19];
    let mut b = vec![0.0; 19];
    conv_kernels::relu_forward(&x, &mut a).unwrap();
    conv_kernels::Kernels::for_isa(isa)
        .unwrap()
        .relu_forward(&x, &mut b)
        .unwrap();
    assert_eq!(a, b);
}
