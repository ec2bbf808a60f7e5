//! Every scheme's empirical mean and variance on a large tensor against its formula.
//!
//! Tolerance: 5 standard errors of the sampling distribution, at a fixed seed. For `n`
//! entries with variance `s2` and fourth central moment `m4`, the sample mean has
//! SE `sqrt(s2 / n)` and the sample variance SE `sqrt((m4 - s2^2) / n)`; `m4 = k s2^2` with
//! kurtosis `k = 3` (normal), `9/5` (uniform), the truncated-normal value below, or
//! `3 / kept` for sparse (a normal mixed with a point mass at 0). At `n = 131072` a normal
//! variance is checked to 5 * sqrt(2/n) = 2%: a wrong fan (factor 2) or a missing gain fails.

use sigprop_init::activation::{std_normal_cdf, std_normal_pdf};
use sigprop_init::{Activation, FillContext, FixupContext, FixupRole, Key, Layout, Scheme, fans};

const NORMAL: f64 = 3.0;
const UNIFORM: f64 = 1.8;

/// Kurtosis of N(0, 1) truncated to [-b, b].
fn truncated_kurtosis(b: f64) -> f64 {
    let z = 2.0 * std_normal_cdf(b) - 1.0;
    let m2 = 1.0 - 2.0 * b * std_normal_pdf(b) / z;
    let m4 = 3.0 - 2.0 * b * (b * b + 3.0) * std_normal_pdf(b) / z;
    m4 / (m2 * m2)
}

fn sample_moments(w: &[f32]) -> (f64, f64) {
    let n = w.len() as f64;
    let mean = w.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = w
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var)
}

/// Fill `spec` at `shape`/`layout`, compare with `Scheme::moments` (and with
/// `entry_variance` for linear weights) within 5 SE.
fn check(spec: &str, shape: &[usize], layout: Layout, ctx: &FillContext, kurtosis: f64) {
    let s: Scheme = spec.parse().unwrap();
    let w = s
        .fill(shape, layout, &Key::new(20240601, "stat"), ctx)
        .unwrap();
    let m = s.moments(shape, layout, ctx).unwrap();
    if matches!(layout, Layout::InOut | Layout::OutIn) {
        let ev = s.entry_variance(fans(shape, layout).unwrap(), ctx).unwrap();
        assert!(
            (ev - m.var).abs() <= 1e-12 * m.var,
            "{spec}: entry_variance {ev} vs {}",
            m.var
        );
    }
    let n = w.len() as f64;
    let (mean, var) = sample_moments(&w);
    let se_mean = (m.var / n).sqrt();
    let se_var = ((kurtosis - 1.0) * m.var * m.var / n).sqrt();
    assert!(
        (mean - m.mean).abs() <= 5.0 * se_mean + 1e-7,
        "{spec}: mean {mean} vs {}",
        m.mean
    );
    assert!(
        (var - m.var).abs() <= 5.0 * se_var + 1e-7 * m.var,
        "{spec}: var {var} vs {} (5 SE = {})",
        m.var,
        5.0 * se_var
    );
}

fn relu() -> FillContext {
    FillContext::new(Activation::Relu)
}

#[test]
fn iid_schemes_match_their_variance_formulas() {
    // [out, in] = [512, 256]: fan_in 256 differs from fan_out 512, so a swapped fan fails.
    let (shape, l) = ([512, 256], Layout::OutIn);
    let tn2 = truncated_kurtosis(2.0);
    for (spec, k) in [
        ("uniform:a=0.1", UNIFORM),
        ("uniform", UNIFORM),
        ("uniform:low=-1,high=3", UNIFORM),
        ("normal", NORMAL),
        ("normal:mean=0.5,std=0.02", NORMAL),
        ("truncated-normal", tn2),
        (
            "truncated-normal:std=0.5,bound=3,correct=true",
            truncated_kurtosis(3.0),
        ),
        ("truncated-normal:std=0.3,bound=1", truncated_kurtosis(1.0)),
        ("variance-scaling", tn2),
        (
            "variance-scaling:scale=2,mode=fan-avg,distribution=uniform",
            UNIFORM,
        ),
        ("variance-scaling:mode=fan-out,distribution=normal", NORMAL),
        ("xavier-uniform", UNIFORM),
        ("xavier-normal:gain=1.5", NORMAL),
        ("he-uniform:mode=fan-out", UNIFORM),
        ("he-uniform", UNIFORM),
        ("he-normal", NORMAL),
        ("he-normal:negative-slope=0.2", NORMAL),
        ("he-normal:mode=fan-out", NORMAL),
        ("lecun-uniform", UNIFORM),
        ("lecun-normal", NORMAL),
        ("pytorch-default", UNIFORM),
        ("sparse:sparsity=0.5,std=0.1", NORMAL / 0.5),
    ] {
        check(spec, &shape, l, &relu(), k);
    }
}

#[test]
fn formulas_use_the_right_fans_in_numbers() {
    // Hand values for [out, in] = [512, 256].
    let f = fans(&[512, 256], Layout::OutIn).unwrap();
    let v = |s: &str| {
        s.parse::<Scheme>()
            .unwrap()
            .entry_variance(f, &relu())
            .unwrap()
    };
    assert!((v("he-normal") - 2.0 / 256.0).abs() < 1e-15);
    assert!((v("he-normal:mode=fan-out") - 2.0 / 512.0).abs() < 1e-15);
    assert!((v("xavier-uniform") - 2.0 / 768.0).abs() < 1e-15);
    assert!((v("xavier-normal:gain=1.5") - 2.25 * 2.0 / 768.0).abs() < 1e-15);
    assert!((v("he-normal:negative-slope=0.2") - 2.0 / 1.04 / 256.0).abs() < 1e-15);
    assert!((v("he-uniform:mode=fan-out") - 2.0 / 512.0).abs() < 1e-15);
    assert!((v("lecun-uniform") - 1.0 / 256.0).abs() < 1e-15);
    assert!((v("uniform:a=0.3") - 0.03).abs() < 1e-15);
    assert!((v("variance-scaling:mode=fan-avg,distribution=uniform") - 1.0 / 384.0).abs() < 1e-15);
    assert!((v("lecun-normal") - 1.0 / 256.0).abs() < 1e-15);
    assert!((v("pytorch-default") - 1.0 / 768.0).abs() < 1e-15);
    assert!((v("variance-scaling:scale=3") - 3.0 / 256.0).abs() < 1e-15);
    assert!((v("truncated-normal:correct=true") - 1.0).abs() < 1e-14);
    assert!((v("truncated-normal") - 0.879_625_661_034_239_8f64.powi(2)).abs() < 1e-14);
    assert!((v("orthogonal:gain=2") - 4.0 / 512.0).abs() < 1e-15);
    assert!((v("sparse:sparsity=0.1") - (1.0 - 52.0 / 512.0) * 1e-4).abs() < 1e-18);
    assert_eq!(v("zeros"), 0.0);
}

#[test]
fn conv_and_transposed_layouts_use_their_fans() {
    let c = Layout::Conv { groups: 4 };
    // [64, 8, 3, 3] in 4 groups: fan_in 72.
    check("he-normal", &[64, 8, 3, 3], c, &relu(), NORMAL);
    check("xavier-uniform", &[64, 8, 3, 3], c, &relu(), UNIFORM);
    check(
        "pytorch-default",
        &[48, 16, 5],
        Layout::ConvTranspose { groups: 2 },
        &relu(),
        UNIFORM,
    );
    check("he-normal", &[256, 512], Layout::InOut, &relu(), NORMAL);
    let f = fans(&[64, 8, 3, 3], c).unwrap();
    let he = "he-normal".parse::<Scheme>().unwrap();
    assert!((he.entry_variance(f, &relu()).unwrap() - 2.0 / 72.0).abs() < 1e-15);
}

#[test]
fn orthogonal_family_has_variance_gain_squared_over_max_dim() {
    // The sum of squares of gain Q is exactly gain^2 min(rows, cols), so the second moment
    // is checked to f32 rounding (1e-5 relative). The mean is random: 1^T Q 1 has variance
    // gain^2 rows cols / max(rows, cols), i.e. SE(mean) = sqrt(var / n); checked to 5 SE.
    let crit = relu().with_critical_sigma_w(1.3);
    for (spec, shape, layout, ctx) in [
        (
            "orthogonal:gain=1.4142135623730951",
            vec![512, 256],
            Layout::OutIn,
            relu(),
        ),
        (
            "orthogonal",
            vec![64, 32, 3, 3],
            Layout::Conv { groups: 1 },
            relu(),
        ),
        ("lsuv", vec![300, 400], Layout::InOut, relu()),
        (
            "critical:distribution=orthogonal",
            vec![256, 256],
            Layout::OutIn,
            crit.clone(),
        ),
    ] {
        let s: Scheme = spec.parse().unwrap();
        let w = s.fill(&shape, layout, &Key::new(7, "orth"), &ctx).unwrap();
        let m = s.moments(&shape, layout, &ctx).unwrap();
        let n = w.len() as f64;
        let mean = w.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let second = w.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / n;
        assert!(
            (second - m.var).abs() < 1e-5 * m.var,
            "{spec}: E[w^2] {second} vs {}",
            m.var
        );
        assert!(mean.abs() < 5.0 * (m.var / n).sqrt(), "{spec}: mean {mean}");
    }
    check(
        "critical:sigma-b=0.1",
        &[512, 256],
        Layout::OutIn,
        &crit,
        NORMAL,
    );
    let s: Scheme = "critical".parse().unwrap();
    let f = fans(&[512, 256], Layout::OutIn).unwrap();
    assert!((s.entry_variance(f, &crit).unwrap() - 1.69 / 256.0).abs() < 1e-15);
    assert_eq!(s.entry_variance(f, &relu()), None);
}

#[test]
fn fixup_scales_branch_layers_and_zeroes_the_rest() {
    let inner = FixupContext {
        num_branches: 16,
        layers_per_branch: 3,
        role: FixupRole::BranchInner,
    };
    let ctx = relu().with_fixup(inner);
    check("fixup", &[512, 256], Layout::OutIn, &ctx, NORMAL);
    let s: Scheme = "fixup".parse().unwrap();
    let f = fans(&[512, 256], Layout::OutIn).unwrap();
    // He (2 / 256) times 16^(-2/4) = 1/4.
    assert!((s.entry_variance(f, &ctx).unwrap() - 0.5 / 256.0).abs() < 1e-15);
    for role in [FixupRole::BranchLast, FixupRole::Head] {
        let c = relu().with_fixup(FixupContext { role, ..inner });
        assert_eq!(s.entry_variance(f, &c), Some(0.0));
    }
}

#[test]
fn deterministic_schemes_have_exact_moments() {
    let r = relu();
    let conv = Layout::Conv { groups: 1 };
    for (spec, shape, layout) in [
        ("zeros", vec![8, 4], Layout::OutIn),
        ("ones", vec![8, 4], Layout::OutIn),
        ("constant:value=0.25", vec![8, 4], Layout::InOut),
        ("identity:gain=2", vec![8, 4], Layout::InOut),
        ("idinit:gain=2", vec![8, 4], Layout::InOut),
        ("idinit", vec![4, 10], Layout::OutIn),
        ("zero-hadamard", vec![3, 8], Layout::InOut),
        ("zero-hadamard", vec![6, 4], Layout::OutIn),
        ("zero-hadamard", vec![4, 4], Layout::OutIn),
        ("dirac", vec![8, 4, 3, 3], conv),
        ("dirac:groups=2", vec![8, 4, 3], conv),
    ] {
        let s: Scheme = spec.parse().unwrap();
        let w = s.fill(&shape, layout, &Key::new(1, "d"), &r).unwrap();
        let (mean, var) = sample_moments(&w);
        let m = s.moments(&shape, layout, &r).unwrap();
        assert!(
            (mean - m.mean).abs() < 1e-12 && (var - m.var).abs() < 1e-12,
            "{spec}: {mean} {var} vs {m:?}"
        );
    }
    // Delta-orthogonal: exact second moment gain^2 min(out, in) / n.
    let s: Scheme = "delta-orthogonal:gain=2".parse().unwrap();
    let w = s.fill(&[16, 8, 3, 3], conv, &Key::new(1, "d"), &r).unwrap();
    let sq: f64 = w.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / w.len() as f64;
    let m = s.moments(&[16, 8, 3, 3], conv, &r).unwrap();
    assert!((sq - m.var).abs() < 1e-6 * m.var, "{sq} vs {}", m.var);
}
