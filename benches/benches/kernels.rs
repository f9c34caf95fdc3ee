//! Kernel benchmarks: the Table 1 layer shapes on one thread, on **every SIMD tier the CPU
//! has** (`<kernel>/<tier>/...`, the tiers of one kernel back to back), with the naive
//! reference kernels beside them, `matrixmultiply::sgemm` on a 512 cube as the practical
//! GEMM line and the FMA probe (`fma_peak/<tier>`) as the machine's one-core arithmetic peak.
//! Throughput is in FLOPs (criterion prints GFLOP/s as "Gelem/s"), so a kernel's ratio to
//! `fma_peak/<tier>` is its fraction of this CPU's peak on that tier. The conv forward runs
//! every algorithm at batch 1 and 64 per tier: the figures `ConvAlgo::Auto` chooses by.
//!
//! Run: `FEDGE_THREADS=1 taskset -c 1 cargo bench -p benches --bench kernels`
//! (append `-- '(portable|avx2|avx512)'` to skip the slow naive references).
//!
//! Time is the benchmark thread's own CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall
//! time: the 2-core machine is shared with other builds, and time slices spent on other
//! processes would otherwise be charged to the kernel. Cache and SMT interference remain, so
//! compare kernels with the sgemm line of the same run.

use conv_kernels::gemm::{MatMut, MatRef, Operand, sgemm};
use conv_kernels::{
    Activation, Conv2dGeometry, ConvAlgo, DenseGeometry, Kernels, Layout, Layouts, Padding,
    Pool2dGeometry, conv2d, conv2d_scratch_len, dense, pool,
};
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

const BATCH: usize = 64;

/// CPU time of the calling thread, in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`, exact; the
/// `/proc/thread-self/schedstat` counter is only updated on scheduler ticks).
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec owned by this frame; the clock id is a
    // constant every Linux kernel supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// criterion measurement: the benchmark thread's CPU time.
struct ThreadCpu;

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Formats CPU nanoseconds as ms and FLOP throughputs as GFLOP/s.
struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, _typical: f64, values: &mut [f64]) -> &'static str {
        values.iter_mut().for_each(|v| *v /= 1e6);
        "ms(cpu)"
    }
    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let n = match *t {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => {
                n as f64
            }
        };
        // values are ns per iteration; n units per iteration -> G units per second.
        values.iter_mut().for_each(|v| *v = n / *v);
        "Gelem/s(cpu)"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns(cpu)"
    }
}

/// Deterministic values in [-1, 1).
fn values(seed: u32, len: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// The conv layers of Table 1 at batch `n`.
fn conv_shapes(n: usize) -> [(&'static str, Conv2dGeometry); 2] {
    [
        (
            "conv1",
            Conv2dGeometry::new(n, 1, 28, 28, 32, 5, 5, Padding::Valid).unwrap(),
        ),
        (
            "conv2",
            Conv2dGeometry::new(n, 32, 12, 12, 64, 5, 5, Padding::Valid).unwrap(),
        ),
    ]
}

/// Every tier this CPU has, narrowest first.
fn tiers() -> Vec<&'static Kernels> {
    Kernels::available().collect()
}

fn conv_flops(g: &Conv2dGeometry) -> u64 {
    (2 * g.output_len() * g.in_channels * g.kernel_h * g.kernel_w) as u64
}

/// Kernels must take their sequential paths: `FEDGE_THREADS=1` (or `taskset -c 1`, which
/// `available_parallelism` honours) makes the configured thread count 1.
fn check_one_thread() {
    let t = conv_kernels::threads::configured_threads();
    assert_eq!(
        t, 1,
        "run the kernel benches with FEDGE_THREADS=1 (configured threads: {t})"
    );
}

fn configure(c: &mut Criterion<ThreadCpu>) -> criterion::BenchmarkGroup<'_, ThreadCpu> {
    check_one_thread();
    let mut g = c.benchmark_group("kernels");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g
}

/// The machine's one-core FMA peak per SIMD tier the CPU has (`conv_kernels::peak`): the
/// 100 % line of every GFLOP/s figure below.
fn bench_peak(c: &mut Criterion<ThreadCpu>) {
    let mut grp = configure(c);
    const ITERS: usize = 1_000_000;
    for k in tiers() {
        let isa = k.isa();
        grp.throughput(Throughput::Elements(k.fma_probe_flops(ITERS)));
        grp.bench_function(BenchmarkId::new("fma_peak", isa.name()), |bch| {
            bch.iter(|| black_box(k.fma_probe(ITERS)))
        });
    }
    grp.finish();
}

fn bench_sgemm(c: &mut Criterion<ThreadCpu>) {
    let mut grp = configure(c);
    for (name, m, k, n) in [
        ("sgemm_512", 512, 512, 512),
        ("sgemm_conv2_shape_4096x800x64", 4096, 800, 64),
    ] {
        let a = values(1, m * k);
        let b = values(2, k * n);
        let mut out = vec![0.0; m * n];
        grp.throughput(Throughput::Elements((2 * m * k * n) as u64));
        grp.bench_function(name, |bch| {
            bch.iter(|| {
                sgemm(
                    m,
                    k,
                    n,
                    1.0,
                    MatRef::row_major(&a, k),
                    MatRef::row_major(&b, n),
                    0.0,
                    MatMut::row_major(&mut out, n),
                )
                .unwrap();
                black_box(&out);
            })
        });
    }
    grp.finish();
}

/// Which operand of a benchmarked GEMM is the weight (packed once in `ours_packed_w`).
#[derive(Clone, Copy, PartialEq)]
enum Weight {
    /// The left operand A.
    Left,
    /// The right operand B.
    Right,
    /// Neither: both operands change every call (weight gradients).
    None,
}

/// Our blocked GEMM (`Kernels::gemm`) against `matrixmultiply::sgemm` on the CNN's real GEMM
/// shapes, inference and training, per tier: `mm` = matrixmultiply, `ours` = both operands
/// packed per call, `ours_packed_w` = the weight operand packed once (as the model does:
/// inference per model version, training per step). `_t` in a layout means column-major
/// storage (a transposed view), as the model's calls read it.
fn bench_gemm_ours(c: &mut Criterion<ThreadCpu>) {
    let mut grp = configure(c);
    // (name, m, k, n, A column-major?, B column-major?, which operand is the weight)
    let shapes = [
        (
            "winograd_xi_64x32x64",
            64,
            32,
            64,
            false,
            false,
            Weight::Left,
        ),
        (
            "conv1_im2col_32x25x576",
            32,
            25,
            576,
            false,
            false,
            Weight::Left,
        ),
        (
            "fc1_b64_64x1024x256",
            64,
            1024,
            256,
            false,
            true,
            Weight::Right,
        ),
        ("cube_512", 512, 512, 512, false, false, Weight::Left),
        // Training, batch 64 (im2col chunks of TARGET_COLS columns: conv2 4 images = 256).
        (
            "train_conv2_fwd_64x800x256",
            64,
            800,
            256,
            false,
            false,
            Weight::Left,
        ),
        (
            "train_conv2_dx_800x64x256",
            800,
            64,
            256,
            true,
            false,
            Weight::Left,
        ),
        (
            "train_conv2_dw_64x256x800",
            64,
            256,
            800,
            false,
            true,
            Weight::None,
        ),
        (
            "train_conv1_dw_32x576x25",
            32,
            576,
            25,
            false,
            true,
            Weight::None,
        ),
        (
            "train_fc1_dx_64x256x1024",
            64,
            256,
            1024,
            false,
            false,
            Weight::Right,
        ),
        (
            "train_fc1_dw_256x64x1024",
            256,
            64,
            1024,
            true,
            false,
            Weight::None,
        ),
        (
            "train_fc2_fwd_64x256x10",
            64,
            256,
            10,
            false,
            true,
            Weight::Right,
        ),
        (
            "train_fc2_dx_64x10x256",
            64,
            10,
            256,
            false,
            false,
            Weight::Right,
        ),
        (
            "train_fc2_dw_10x64x256",
            10,
            64,
            256,
            true,
            false,
            Weight::None,
        ),
    ];
    for (name, m, k, n, a_t, b_t, weight) in shapes {
        let a = values(1, m * k);
        let b = values(2, k * n);
        let mut out = vec![0.0; m * n];
        let av = if a_t {
            MatRef::col_major(&a, m)
        } else {
            MatRef::row_major(&a, k)
        };
        let bv = if b_t {
            MatRef::col_major(&b, k)
        } else {
            MatRef::row_major(&b, n)
        };
        grp.throughput(Throughput::Elements((2 * m * k * n) as u64));
        grp.bench_function(BenchmarkId::new(format!("gemm/{name}"), "mm"), |bch| {
            bch.iter(|| {
                sgemm(m, k, n, 1.0, av, bv, 0.0, MatMut::row_major(&mut out, n)).unwrap();
                black_box(&out);
            })
        });
        for kt in tiers() {
            let isa = kt.isa();
            grp.bench_function(
                BenchmarkId::new(format!("gemm/{name}"), format!("ours_{}", isa.name())),
                |bch| {
                    bch.iter(|| {
                        kt.gemm(
                            m,
                            k,
                            n,
                            1.0,
                            Operand::View(av),
                            Operand::View(bv),
                            0.0,
                            MatMut::row_major(&mut out, n),
                        )
                        .unwrap();
                        black_box(&out);
                    })
                },
            );
            if weight == Weight::None {
                continue;
            }
            let pa = kt.gemm_pack_a(m, k, av).unwrap();
            let pb = kt.gemm_pack_b(k, n, bv).unwrap();
            let (ao, bo) = if weight == Weight::Left {
                (Operand::Packed(&pa), Operand::View(bv))
            } else {
                (Operand::View(av), Operand::Packed(&pb))
            };
            grp.bench_function(
                BenchmarkId::new(
                    format!("gemm/{name}"),
                    format!("ours_packed_w_{}", isa.name()),
                ),
                |bch| {
                    bch.iter(|| {
                        kt.gemm(m, k, n, 1.0, ao, bo, 0.0, MatMut::row_major(&mut out, n))
                            .unwrap();
                        black_box(&out);
                    })
                },
            );
        }
    }
    grp.finish();
}

/// The model's inference path for conv2: filters transformed and packed once (per model
/// version), per tier and batch: `conv2_forward_b<n>/<tier>/WinogradPacked`.
fn bench_conv_packed(c: &mut Criterion<ThreadCpu>) {
    let mut grp = configure(c);
    for n in FORWARD_BATCHES {
        let (name, g) = conv_shapes(n)[1];
        let x = values(3, g.input_len());
        let w = values(4, g.weight_len());
        let b = values(5, g.out_channels);
        let mut out = vec![0.0; g.output_len()];
        let mut scratch = vec![0.0; conv2d_scratch_len(&g)];
        grp.throughput(Throughput::Elements(conv_flops(&g)));
        for k in tiers() {
            let shape = [g.out_channels, g.in_channels, g.kernel_h, g.kernel_w];
            let packed = k.pack_conv2d(shape, &w).unwrap();
            if !packed.is_winograd() {
                continue;
            }
            grp.bench_function(
                BenchmarkId::new(
                    format!("{name}_forward_b{n}/{}", k.isa().name()),
                    "WinogradPacked",
                ),
                |bch| {
                    bch.iter(|| {
                        k.conv2d_forward_packed(
                            &g,
                            &x,
                            &packed,
                            Some(&b),
                            Activation::Relu,
                            &mut out,
                            &mut scratch,
                        )
                        .unwrap()
                    })
                },
            );
        }
    }
    grp.finish();
}

/// Batches the conv forward runs at: 1 (latency), 8, 32 (the engine's inference
/// micro-batch) and 64 (training).
const FORWARD_BATCHES: [usize; 4] = [1, 8, 32, BATCH];

/// Every conv forward algorithm on every tier and batch of [`FORWARD_BATCHES`]:
/// `conv<i>_forward_b<n>/<tier>/<algo>`, the figures `ConvAlgo::Auto` chooses by.
fn bench_conv_forward(c: &mut Criterion<ThreadCpu>) {
    let mut grp = configure(c);
    for n in FORWARD_BATCHES {
        for (name, g) in conv_shapes(n) {
            let x = values(3, g.input_len());
            let w = values(4, g.weight_len());
            let b = values(5, g.out_channels);
            let mut out = vec![0.0; g.output_len()];
            let mut scratch = vec![0.0; conv2d_scratch_len(&g)];
            grp.throughput(Throughput::Elements(conv_flops(&g)));
            // Winograd's figure counts the direct convolution's FLOPs (what it replaces), so
            // it can exceed the FMA peak: it does 2.78x fewer multiplies.
            for algo in [ConvAlgo::Im2colGemm, ConvAlgo::Direct, ConvAlgo::Winograd] {
                for k in tiers() {
                    grp.bench_function(
                        BenchmarkId::new(
                            format!("{name}_forward_b{n}/{}", k.isa().name()),
                            format!("{algo:?}"),
                        ),
                        |bch| {
                            bch.iter(|| {
                                k.conv2d_forward(
                                    &g,
                                    algo,
                                    &x,
                                    &w,
                                    Some(&b),
                                    Activation::Relu,
                                    &mut out,
                                    &mut scratch,
                                )
                                .unwrap()
                            })
                        },
                    );
                }
            }
            if n == BATCH {
                grp.bench_function(
                    BenchmarkId::new(format!("{name}_forward_b{n}"), "reference"),
                    |bch| {
                        bch.iter(|| {
                            conv2d::reference::conv2d_forward(&g, &x, &w, Some(&b), true, &mut out)
                        })
                    },
                );
            }
        }
    }
    grp.finish();
}

/// Each conv followed by its 2x2 max-pool, as inference runs it
/// (`conv<i>_forward_pool_b<n>/<tier>/<path>`; FLOPs are the conv's): im2col conv then the
/// pool kernel, each algorithm's fused conv + pool (`<algo>_fused`; Winograd for conv2
/// only, it loses conv1 by 9-19x), and the packed weights with the output written
/// channels-last where the layer's path can (`Packed_nhwc`, the engine's inference path
/// for conv1 when the direct kernel runs it).
fn bench_conv_pool(c: &mut Criterion<ThreadCpu>) {
    let mut grp = configure(c);
    for n in FORWARD_BATCHES {
        for (name, g) in conv_shapes(n) {
            let p = Pool2dGeometry::two_by_two(n, g.out_channels, g.out_h, g.out_w).unwrap();
            let x = values(3, g.input_len());
            let w = values(4, g.weight_len());
            let b = values(5, g.out_channels);
            let mut full = vec![0.0; g.output_len()];
            let mut pooled = vec![0.0; p.output_len()];
            let mut argmax = vec![0u32; p.output_len()];
            let mut scratch = vec![0.0; conv2d_scratch_len(&g)];
            grp.throughput(Throughput::Elements(conv_flops(&g)));
            let mut paths = vec![
                ("Im2colGemm+pool", None),
                ("Im2colGemm_fused", Some(ConvAlgo::Im2colGemm)),
                ("Direct_fused", Some(ConvAlgo::Direct)),
            ];
            if name == "conv2" {
                paths.push(("Winograd_fused", Some(ConvAlgo::Winograd)));
            }
            for k in tiers() {
                let id = |path: &str| {
                    BenchmarkId::new(format!("{name}_forward_pool_b{n}/{}", k.isa().name()), path)
                };
                for &(path, fused) in &paths {
                    grp.bench_function(id(path), |bch| {
                        bch.iter(|| {
                            if let Some(algo) = fused {
                                return k
                                    .conv2d_forward_maxpool2x2_with(
                                        &g,
                                        algo,
                                        &x,
                                        &w,
                                        Some(&b),
                                        Activation::Relu,
                                        &mut pooled,
                                        &mut scratch,
                                    )
                                    .unwrap();
                            }
                            k.conv2d_forward(
                                &g,
                                ConvAlgo::Im2colGemm,
                                &x,
                                &w,
                                Some(&b),
                                Activation::Relu,
                                &mut full,
                                &mut scratch,
                            )
                            .unwrap();
                            k.maxpool2d_forward(&p, &full, &mut pooled, &mut argmax)
                                .unwrap();
                        })
                    });
                }
                let shape = [g.out_channels, g.in_channels, g.kernel_h, g.kernel_w];
                let packed = k.pack_conv2d(shape, &w).unwrap();
                if !packed.writes_channels_last() {
                    continue;
                }
                let io = Layouts {
                    input: Layout::Nchw,
                    output: Layout::Nhwc,
                };
                grp.bench_function(id("Packed_nhwc"), |bch| {
                    bch.iter(|| {
                        k.conv2d_forward_packed_io(
                            &g,
                            &x,
                            &packed,
                            Some(&b),
                            Activation::Relu,
                            true,
                            io,
                            &mut pooled,
                            &mut scratch,
                        )
                        .unwrap()
                    })
                });
            }
        }
    }
    grp.finish();
}

/// The conv gradients at batch 64, every tier: `conv<i>_backward*/<tier>`.
fn bench_conv_backward(c: &mut Criterion<ThreadCpu>) {
    let mut grp = configure(c);
    for (name, g) in conv_shapes(BATCH) {
        let x = values(3, g.input_len());
        let w = values(4, g.weight_len());
        let dy = values(6, g.output_len());
        let mut dx = vec![0.0; g.input_len()];
        let mut dw = vec![0.0; g.weight_len()];
        let mut db = vec![0.0; g.out_channels];
        let mut scratch = vec![0.0; conv2d_scratch_len(&g)];
        for k in tiers() {
            let tier = k.isa().name();
            // Backward = input gradient + weight gradient + bias gradient: twice the forward
            // FLOPs.
            grp.throughput(Throughput::Elements(2 * conv_flops(&g)));
            grp.bench_function(BenchmarkId::new(format!("{name}_backward"), tier), |bch| {
                bch.iter(|| {
                    (|| -> conv_kernels::Result<()> {
                        k.conv2d_backward_input(&g, &dy, &w, &mut dx, &mut scratch)?;
                        k.conv2d_backward_weight(&g, &x, &dy, &mut dw, &mut scratch)?;
                        k.conv2d_backward_bias(&g, &dy, &mut db)
                    })()
                    .unwrap()
                })
            });
            grp.throughput(Throughput::Elements(conv_flops(&g)));
            grp.bench_function(
                BenchmarkId::new(format!("{name}_backward_input"), tier),
                |bch| {
                    bch.iter(|| {
                        k.conv2d_backward_input(&g, &dy, &w, &mut dx, &mut scratch)
                            .unwrap()
                    })
                },
            );
            grp.bench_function(
                BenchmarkId::new(format!("{name}_backward_weight"), tier),
                |bch| {
                    bch.iter(|| {
                        k.conv2d_backward_weight(&g, &x, &dy, &mut dw, &mut scratch)
                            .unwrap()
                    })
                },
            );
        }
        grp.throughput(Throughput::Elements(2 * conv_flops(&g)));
        grp.bench_function(
            BenchmarkId::new(format!("{name}_backward"), "reference"),
            |bch| {
                bch.iter(|| {
                    conv2d::reference::conv2d_backward_input(&g, &dy, &w, &mut dx);
                    conv2d::reference::conv2d_backward_weight(&g, &x, &dy, &mut dw);
                    conv2d::reference::conv2d_backward_bias(&g, &dy, &mut db);
                })
            },
        );
    }
    grp.finish();
}

fn bench_dense_pool(c: &mut Criterion<ThreadCpu>) {
    let mut grp = configure(c);
    let g = DenseGeometry::new(BATCH, 1024, 256).unwrap();
    let x = values(7, g.input_len());
    let w = values(8, g.weight_len());
    let b = values(9, g.out_features);
    let dy = values(10, g.output_len());
    let mut y = vec![0.0; g.output_len()];
    let mut dx = vec![0.0; g.input_len()];
    let mut dw = vec![0.0; g.weight_len()];
    let mut db = vec![0.0; g.out_features];
    let flops = (2 * g.batch * g.in_features * g.out_features) as u64;
    grp.throughput(Throughput::Elements(flops));
    for k in tiers() {
        grp.bench_function(BenchmarkId::new("fc1_forward", k.isa().name()), |bch| {
            bch.iter(|| {
                k.dense_forward(&g, &x, &w, Some(&b), Activation::Relu, &mut y)
                    .unwrap()
            })
        });
    }
    grp.bench_function(BenchmarkId::new("fc1_forward", "reference"), |bch| {
        bch.iter(|| dense::reference::dense_forward(&g, &x, &w, Some(&b), true, &mut y))
    });
    grp.throughput(Throughput::Elements(2 * flops));
    for k in tiers() {
        grp.bench_function(BenchmarkId::new("fc1_backward", k.isa().name()), |bch| {
            bch.iter(|| {
                (|| -> conv_kernels::Result<()> {
                    k.dense_backward_input(&g, &dy, &w, &mut dx)?;
                    k.dense_backward_weight(&g, &x, &dy, &mut dw)?;
                    k.dense_backward_bias(&g, &dy, &mut db)
                })()
                .unwrap()
            })
        });
    }
    grp.bench_function(BenchmarkId::new("fc1_backward", "reference"), |bch| {
        bch.iter(|| {
            dense::reference::dense_backward_input(&g, &dy, &w, &mut dx);
            dense::reference::dense_backward_weight(&g, &x, &dy, &mut dw);
            dense::reference::dense_backward_bias(&g, &dy, &mut db);
        })
    });

    // maxpool after conv1: [64, 32, 24, 24] -> [64, 32, 12, 12]; throughput = input elements.
    let p = Pool2dGeometry::two_by_two(BATCH, 32, 24, 24).unwrap();
    let px = values(11, p.input_len());
    let pdy = values(12, p.output_len());
    let mut po = vec![0.0; p.output_len()];
    let mut pa = vec![0u32; p.output_len()];
    let mut pdx = vec![0.0; p.input_len()];
    grp.throughput(Throughput::Elements(p.input_len() as u64));
    for k in tiers() {
        grp.bench_function(BenchmarkId::new("pool1_forward", k.isa().name()), |bch| {
            bch.iter(|| k.maxpool2d_forward(&p, &px, &mut po, &mut pa).unwrap())
        });
    }
    grp.bench_function(BenchmarkId::new("pool1_forward", "reference"), |bch| {
        bch.iter(|| pool::reference::maxpool2d_forward(&p, &px, &mut po, &mut pa))
    });
    for k in tiers() {
        grp.bench_function(BenchmarkId::new("pool1_backward", k.isa().name()), |bch| {
            bch.iter(|| k.maxpool2d_backward(&p, &pdy, &pa, &mut pdx).unwrap())
        });
    }
    grp.finish();
}

/// fc1 forward (1024 -> 256, bias + ReLU) at small batches: `dense_forward` (the GEMV path up
/// to `dense::GEMV_MAX_BATCH`, GEMM above) beside the plain GEMM it replaces; picks the
/// threshold.
fn bench_dense_small(c: &mut Criterion<ThreadCpu>) {
    let mut grp = configure(c);
    for n in [1usize, 2, 4, 6, 8] {
        let g = DenseGeometry::new(n, 1024, 256).unwrap();
        let x = values(13, g.input_len());
        let w = values(14, g.weight_len());
        let b = values(15, g.out_features);
        let mut y = vec![0.0; g.output_len()];
        grp.throughput(Throughput::Elements((2 * n * 1024 * 256) as u64));
        for k in tiers() {
            grp.bench_function(
                BenchmarkId::new(
                    format!("fc1_forward_small/dense_forward/{}", k.isa().name()),
                    n,
                ),
                |bch| {
                    bch.iter(|| {
                        k.dense_forward(&g, &x, &w, Some(&b), Activation::Relu, &mut y)
                            .unwrap()
                    })
                },
            );
        }
        grp.bench_function(BenchmarkId::new("fc1_forward_small/sgemm", n), |bch| {
            bch.iter(|| {
                sgemm(
                    n,
                    1024,
                    256,
                    1.0,
                    MatRef::row_major(&x, 1024),
                    MatRef::col_major(&w, 1024),
                    0.0,
                    MatMut::row_major(&mut y, 256),
                )
                .unwrap();
                black_box(&y);
            })
        });
    }
    grp.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = bench_peak, bench_sgemm, bench_gemm_ours, bench_conv_forward, bench_conv_packed, bench_conv_pool, bench_conv_backward,
        bench_dense_pool,
        bench_dense_small
}
criterion_main!(benches);
