//! Structure and reproducibility: exact bounds, orthonormality, sparse patterns, and the
//! promise that a key's bits depend on nothing but the key.

use sigprop_init::{
    Activation, FillContext, FillJob, FixupContext, FixupRole, Key, Layout, Scheme, fill_many,
};

fn ctx() -> FillContext {
    FillContext::new(Activation::Relu)
        .with_critical_sigma_w(1.2)
        .with_fixup(FixupContext {
            num_branches: 4,
            layers_per_branch: 2,
            role: FixupRole::BranchInner,
        })
}

/// Every scheme that can fill a 2-D linear weight.
const LINEAR_SPECS: &[&str] = &[
    "zeros",
    "ones",
    "constant:value=0.25",
    "uniform:a=0.1",
    "uniform:low=-1,high=3",
    "normal:mean=0.5,std=0.02",
    "truncated-normal:std=0.5,bound=3,correct=true",
    "variance-scaling",
    "variance-scaling:scale=2,mode=fan-avg,distribution=uniform",
    "xavier-uniform",
    "xavier-normal",
    "he-uniform",
    "he-normal:negative-slope=0.2",
    "lecun-uniform",
    "lecun-normal",
    "pytorch-default",
    "orthogonal",
    "identity:gain=2",
    "sparse:sparsity=0.5,std=0.1",
    "critical",
    "critical:distribution=orthogonal",
    "lsuv",
    "fixup",
];

/// max |Q^T Q - I| (columns when rows >= cols, rows otherwise), accumulated in f64.
fn orthogonality_error(q: &[f32], rows: usize, cols: usize) -> f64 {
    let tall = rows >= cols;
    let (n, len) = if tall { (cols, rows) } else { (rows, cols) };
    let vecs: Vec<Vec<f64>> = (0..n)
        .map(|a| {
            (0..len)
                .map(|k| {
                    f64::from(if tall {
                        q[k * cols + a]
                    } else {
                        q[a * cols + k]
                    })
                })
                .collect()
        })
        .collect();
    let mut worst: f64 = 0.0;
    for a in 0..n {
        for b in a..n {
            let dot: f64 = vecs[a].iter().zip(&vecs[b]).map(|(x, y)| x * y).sum();
            worst = worst.max((dot - if a == b { 1.0 } else { 0.0 }).abs());
        }
    }
    worst
}

#[test]
fn orthogonal_is_orthonormal_for_square_tall_wide_and_conv_shapes() {
    let s: Scheme = "orthogonal".parse().unwrap();
    let k = Key::new(9, "layers.0.weight");
    for (shape, layout, rows, cols) in [
        (vec![1024, 1024], Layout::OutIn, 1024, 1024),
        (vec![300, 100], Layout::OutIn, 300, 100),
        (vec![100, 300], Layout::OutIn, 100, 300),
        (vec![64, 16, 3, 3], Layout::Conv { groups: 1 }, 64, 144),
        (vec![256, 4, 3, 3], Layout::Conv { groups: 4 }, 256, 36),
    ] {
        let w = s.fill(&shape, layout, &k, &ctx()).unwrap();
        let e = orthogonality_error(&w, rows, cols);
        assert!(e < 1e-5, "{shape:?}: max |QtQ - I| = {e}");
    }
}

#[test]
fn inout_storage_is_the_transpose_of_outin_for_structured_schemes() {
    let k = Key::new(3, "w");
    let (o, i) = (40, 30);
    let structured = [
        "orthogonal",
        "identity:gain=2",
        "idinit:gain=2",
        "zero-hadamard",
        "sparse:sparsity=0.5,std=0.1",
        "lsuv",
        "critical:distribution=orthogonal",
        "zeros",
        "constant:value=0.25",
    ];
    for spec in structured {
        let s: Scheme = spec.parse().unwrap();
        let a = s.fill(&[o, i], Layout::OutIn, &k, &ctx()).unwrap();
        let b = s.fill(&[i, o], Layout::InOut, &k, &ctx()).unwrap();
        for r in 0..o {
            for c in 0..i {
                assert_eq!(
                    a[r * i + c].to_bits(),
                    b[c * o + r].to_bits(),
                    "{spec} at ({r},{c})"
                );
            }
        }
    }
}

#[test]
fn same_key_same_bits_other_path_other_bits() {
    for spec in LINEAR_SPECS {
        let s: Scheme = spec.parse().unwrap();
        let fill = |seed, path: &str| {
            s.fill(&[130, 150], Layout::OutIn, &Key::new(seed, path), &ctx())
                .unwrap()
        };
        let a = fill(1, "layers.0.weight");
        assert_eq!(a, fill(1, "layers.0.weight"), "{spec}");
        let random = !matches!(
            *spec,
            "zeros" | "ones" | "constant:value=0.25" | "identity:gain=2"
        );
        if random {
            assert_ne!(a, fill(1, "layers.1.weight"), "{spec}");
            assert_ne!(a, fill(2, "layers.0.weight"), "{spec}");
        }
    }
}

fn jobs() -> Vec<FillJob> {
    let mut jobs = Vec::new();
    for (n, spec) in LINEAR_SPECS.iter().enumerate() {
        jobs.push(FillJob {
            scheme: spec.parse().unwrap(),
            shape: vec![200 + n, 300],
            layout: if n % 2 == 0 {
                Layout::InOut
            } else {
                Layout::OutIn
            },
            key: Key::new(5, format!("layers.{n}.weight")),
            ctx: ctx(),
        });
    }
    jobs.push(FillJob {
        scheme: "delta-orthogonal".parse().unwrap(),
        shape: vec![32, 16, 3, 3],
        layout: Layout::Conv { groups: 1 },
        key: Key::new(5, "conv.weight"),
        ctx: ctx(),
    });
    jobs
}

#[test]
fn fill_many_equals_sequential_fills_on_any_thread_count() {
    let jobs = jobs();
    let sequential: Vec<Vec<f32>> = jobs
        .iter()
        .map(|j| j.scheme.fill(&j.shape, j.layout, &j.key, &j.ctx).unwrap())
        .collect();
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let parallel = pool.install(|| fill_many(&jobs)).unwrap();
        assert_eq!(parallel, sequential, "{threads} threads");
    }
    // Order of the jobs does not matter either.
    let reversed: Vec<FillJob> = jobs.iter().rev().cloned().collect();
    let mut back = fill_many(&reversed).unwrap();
    back.reverse();
    assert_eq!(back, sequential);
}

#[test]
fn a_big_orthogonal_fill_is_identical_on_one_two_and_three_threads() {
    // 700 x 600 is past faer's blocking and parallel thresholds, so its parallel QR runs.
    let s: Scheme = "orthogonal".parse().unwrap();
    let fill = |t: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .unwrap();
        pool.install(|| {
            s.fill(&[700, 600], Layout::OutIn, &Key::new(1, "q"), &ctx())
                .unwrap()
        })
    };
    let one = fill(1);
    assert_eq!(one, fill(2));
    assert_eq!(one, fill(3));
}

#[test]
fn fill_many_reports_the_first_error() {
    let mut bad = jobs();
    bad[3].scheme = "dirac".parse().unwrap();
    bad[5].scheme = "dirac".parse().unwrap();
    let (i, e) = fill_many(&bad).unwrap_err();
    assert_eq!(i, 3);
    assert!(e.to_string().contains("dirac"), "{e}");
    // The tuple form gives the same bits.
    let tuples: Vec<_> = jobs()
        .into_iter()
        .map(|j| (j.scheme, j.shape, j.layout, j.key, j.ctx))
        .collect();
    assert_eq!(fill_many(&tuples).unwrap(), fill_many(&jobs()).unwrap());
}

#[test]
fn uniform_and_truncated_bounds_hold_exactly() {
    let k = Key::new(4, "b");
    let c = ctx();
    // [out, in] = [300, 200]: fan_in 200, fan_out 300.
    for (spec, bound) in [
        ("uniform:a=0.1", 0.1),
        ("pytorch-default", 1.0 / 200f64.sqrt()),
        ("he-uniform", (6.0 / 200f64).sqrt()),
        ("xavier-uniform:gain=2", 2.0 * (6.0 / 500f64).sqrt()),
        ("lecun-uniform", (3.0 / 200f64).sqrt()),
        ("truncated-normal:std=0.5,bound=1.5", 0.75),
        (
            "truncated-normal:std=0.5,correct=true",
            1.0 / 0.879_625_661_034_239_8,
        ),
        (
            "variance-scaling",
            2.0 * (1.0 / 200f64).sqrt() / 0.879_625_661_034_239_8,
        ),
    ] {
        let s: Scheme = spec.parse().unwrap();
        let w = s.fill(&[300, 200], Layout::OutIn, &k, &c).unwrap();
        let b = bound as f32;
        let max = w.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!(max <= b, "{spec}: max {max} > {b}");
        assert!(max > 0.99 * b, "{spec}: max {max} far below {b}");
    }
    let w = "uniform:low=-1,high=3"
        .parse::<Scheme>()
        .unwrap()
        .fill(&[300, 200], Layout::OutIn, &k, &c)
        .unwrap();
    assert!(w.iter().all(|&x| (-1.0..=3.0).contains(&x)));
}

#[test]
fn sparse_has_exactly_ceil_sparsity_zeros_per_column() {
    let s: Scheme = "sparse:sparsity=0.3".parse().unwrap();
    let (o, i) = (101, 64);
    let w = s
        .fill(&[o, i], Layout::OutIn, &Key::new(2, "s"), &ctx())
        .unwrap();
    for c in 0..i {
        let zeros = (0..o).filter(|&r| w[r * i + c] == 0.0).count();
        assert_eq!(zeros, 31, "column {c}"); // ceil(0.3 * 101) = ceil(30.3)
    }
}

#[test]
fn dirac_takes_the_layout_groups_by_default() {
    let w = "dirac".parse::<Scheme>().unwrap();
    let a = w
        .fill(
            &[8, 2, 3],
            Layout::Conv { groups: 4 },
            &Key::new(0, "c"),
            &ctx(),
        )
        .unwrap();
    // 4 groups of 2 output channels, each copying its group's 2 inputs: 8 ones.
    assert_eq!(a.iter().filter(|&&x| x == 1.0).count(), 8);
    let b = "dirac:groups=4".parse::<Scheme>().unwrap();
    assert_eq!(
        b.fill(
            &[8, 2, 3],
            Layout::Conv { groups: 4 },
            &Key::new(0, "c"),
            &ctx()
        )
        .unwrap(),
        a
    );
}
