//! Gaussian expectations `E_{z~N(0,1)}[f(z)]` for integrands with kinks.
//!
//! Every mean-field quantity is such an expectation of `phi(sqrt(q) z)` and its derivatives.
//! Gauss-Hermite quadrature converges slowly when `phi` has a kink (ReLU, SELU, hard-tanh),
//! so this file uses composite, adaptive Gauss-Legendre on `[-RANGE, RANGE]` instead: the
//! range is cut at the caller's breakpoints (a kink `k` of `phi` sits at `z = k / sqrt(q)`)
//! and into panels of at most [`PANEL`] standard deviations, and every panel is halved until
//! its 16-point rule agrees with the sum over its two halves to `1e-13 * E|f|`. Each piece
//! between breakpoints is then a smooth integrand, where Gauss-Legendre converges
//! geometrically. The tails beyond [`RANGE`] = 12 sd carry Gaussian mass `< 1e-32`.
//!
//! Accuracy: absolute error below about `1e-12 * E|f(z)|`, which is `1e-12` relative
//! whenever `f` does not change sign (tested against an adaptive Simpson rule and against
//! closed forms). This file deliberately knows nothing about activations or mean-field maps.

use std::sync::OnceLock;

/// Half-width of the integration range in standard deviations: `P(|z| > 12) < 4e-33`.
pub const RANGE: f64 = 12.0;
/// Widest initial panel, in standard deviations.
pub const PANEL: f64 = 3.0;
/// Points of the Gauss-Legendre rule on each panel.
const ORDER: usize = 16;
/// A panel is accepted when its coarse and refined values differ by `REL_TOL * E|f|`.
const REL_TOL: f64 = 1e-13;
/// Halvings allowed below an initial panel: `3 * 2^-50 ~ 3e-15` sd, past which a missed
/// kink contributes nothing measurable.
const MAX_DEPTH: u32 = 50;

/// `n`-point Gauss-Legendre nodes and weights on `[-1, 1]`: the roots `x_i` of the Legendre
/// polynomial `P_n`, found by Newton's method from Tricomi's guess
/// `cos(pi (i + 3/4) / (n + 1/2))`, and `w_i = 2 / ((1 - x_i^2) P_n'(x_i)^2)`
/// (Abramowitz & Stegun 25.4.29; Golub & Welsch 1969 for the theory).
///
/// ```
/// let (x, w) = sigprop_theory::gauss_legendre(3);
/// // The 3-point rule: nodes 0, +-sqrt(3/5), weights 8/9, 5/9.
/// assert!((x[0] + 0.6f64.sqrt()).abs() < 1e-15 && (w[1] - 8.0 / 9.0).abs() < 1e-15);
/// ```
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; n];
    let mut weights = vec![0.0; n];
    for i in 0..n {
        let mut x = -(std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            let (p, d) = legendre_and_derivative(n, x);
            dp = d;
            let step = p / d;
            x -= step;
            if step.abs() < 1e-16 {
                break;
            }
        }
        // One more evaluation at the converged node for the weight.
        let (_, d) = legendre_and_derivative(n, x);
        if d.is_finite() {
            dp = d;
        }
        nodes[i] = x;
        weights[i] = 2.0 / ((1.0 - x * x) * dp * dp);
    }
    (nodes, weights)
}

/// `(P_n(x), P_n'(x))` by the three-term recurrence `k P_k = (2k-1) x P_(k-1) - (k-1) P_(k-2)`.
fn legendre_and_derivative(n: usize, x: f64) -> (f64, f64) {
    let (mut p0, mut p1) = (1.0, x);
    if n == 0 {
        return (1.0, 0.0);
    }
    for k in 2..=n {
        let k = k as f64;
        let p2 = ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k;
        p0 = p1;
        p1 = p2;
    }
    (p1, n as f64 * (x * p1 - p0) / (x * x - 1.0))
}

fn rule() -> &'static (Vec<f64>, Vec<f64>) {
    static RULE: OnceLock<(Vec<f64>, Vec<f64>)> = OnceLock::new();
    RULE.get_or_init(|| gauss_legendre(ORDER))
}

/// Standard normal density.
fn density(z: f64) -> f64 {
    const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
    INV_SQRT_2PI * (-0.5 * z * z).exp()
}

/// `E_{z~N(0,1)}[f(z)]`, with `f` smooth between the given `breakpoints` (in `z` units;
/// unsorted, repeated, non-finite or out-of-range entries are fine and ignored as needed).
///
/// Composite adaptive Gauss-Legendre on `[-12, 12]`, split at the breakpoints; see the file
/// doc for the accuracy. Non-finite values of `f` propagate into the result (a variance that
/// overflowed stays infinite) and never make the refinement loop.
///
/// ```
/// use sigprop_theory::gauss_expect;
/// // E[relu(z)^2] = 1/2 and E[relu(z)] = 1/sqrt(2 pi), with the kink at 0 as breakpoint.
/// let m2 = gauss_expect(|z| z.max(0.0).powi(2), &[0.0]);
/// let m1 = gauss_expect(|z| z.max(0.0), &[0.0]);
/// assert!((m2 - 0.5).abs() < 1e-14);
/// assert!((m1 - 1.0 / (2.0 * std::f64::consts::PI).sqrt()).abs() < 1e-14);
/// ```
pub fn gauss_expect(f: impl Fn(f64) -> f64, breakpoints: &[f64]) -> f64 {
    let g = |z: f64| f(z) * density(z);
    let panels = initial_panels(breakpoints);
    let coarse: Vec<(f64, f64)> = panels.iter().map(|&(a, b)| panel(&g, a, b)).collect();
    let magnitude: f64 = coarse.iter().map(|&(_, abs)| abs).sum();
    if magnitude == 0.0 {
        return 0.0;
    }
    let tol = REL_TOL * magnitude;
    panels
        .iter()
        .zip(&coarse)
        .map(|(&(a, b), &(whole, _))| refine(&g, a, b, whole, tol, 0))
        .sum()
}

/// `E_{z1,z2 iid N(0,1)}[f(z1, z2)]` as an iterated integral: for each outer node `z1` the
/// inner integral over `z2` is split at `breakpoints_z2(z1)`, so a kink whose position in
/// `z2` moves with `z1` (as in the c-map's `u2 = sqrt(q) (c z1 + sqrt(1-c^2) z2)`) is still
/// a breakpoint. `breakpoints_z1` are the kinks of the outer integrand `z1 -> E_z2[f]`.
///
/// ```
/// use sigprop_theory::gauss_expect_2d;
/// // E[relu(z1) relu(z1/2 + sqrt(3)/2 z2)] = (sqrt(3)/2 + (pi - pi/3)/2) / (2 pi), c = 1/2.
/// let c: f64 = 0.5;
/// let s = (1.0 - c * c).sqrt();
/// let k = gauss_expect_2d(
///     |z1, z2| z1.max(0.0) * (c * z1 + s * z2).max(0.0),
///     &[0.0],
///     |z1| vec![-c * z1 / s],
/// );
/// let exact = (s + (std::f64::consts::PI - c.acos()) * c) / (2.0 * std::f64::consts::PI);
/// assert!((k - exact).abs() < 1e-12);
/// ```
pub fn gauss_expect_2d(
    f: impl Fn(f64, f64) -> f64,
    breakpoints_z1: &[f64],
    breakpoints_z2: impl Fn(f64) -> Vec<f64>,
) -> f64 {
    gauss_expect(
        |z1| gauss_expect(|z2| f(z1, z2), &breakpoints_z2(z1)),
        breakpoints_z1,
    )
}

/// `[-RANGE, RANGE]` cut at the breakpoints inside it, then into panels of at most `PANEL`.
fn initial_panels(breakpoints: &[f64]) -> Vec<(f64, f64)> {
    let mut cuts: Vec<f64> = breakpoints
        .iter()
        .copied()
        .filter(|b| b.is_finite() && b.abs() < RANGE)
        .collect();
    cuts.push(-RANGE);
    cuts.push(RANGE);
    cuts.sort_by(f64::total_cmp);
    cuts.dedup();
    let mut panels = Vec::with_capacity(cuts.len() + 8);
    for pair in cuts.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let pieces = ((b - a) / PANEL).ceil().max(1.0) as usize;
        let h = (b - a) / pieces as f64;
        for i in 0..pieces {
            let lo = a + h * i as f64;
            let hi = if i + 1 == pieces { b } else { lo + h };
            panels.push((lo, hi));
        }
    }
    panels
}

/// The Gauss-Legendre value of `int_a^b g` and of `int_a^b |g|`.
fn panel(g: &impl Fn(f64) -> f64, a: f64, b: f64) -> (f64, f64) {
    let (x, w) = rule();
    let mid = 0.5 * (a + b);
    let half = 0.5 * (b - a);
    let (mut sum, mut abs) = (0.0, 0.0);
    for (xi, wi) in x.iter().zip(w) {
        let v = g(mid + half * xi);
        sum += wi * v;
        abs += wi * v.abs();
    }
    (sum * half, abs * half)
}

/// Halve `[a, b]` until the two halves agree with the whole to `tol`; return the halves.
fn refine(g: &impl Fn(f64) -> f64, a: f64, b: f64, whole: f64, tol: f64, depth: u32) -> f64 {
    let m = 0.5 * (a + b);
    let (left, _) = panel(g, a, m);
    let (right, _) = panel(g, m, b);
    let halves = left + right;
    // Written so that a NaN difference accepts: non-finite integrands never loop.
    if depth >= MAX_DEPTH || !((halves - whole).abs() > tol) {
        return halves;
    }
    refine(g, a, m, left, tol, depth + 1) + refine(g, m, b, right, tol, depth + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sigprop_init::{Activation, SELU_ALPHA, SELU_LAMBDA};
    use std::f64::consts::PI;

    /// Adaptive Simpson with Richardson extrapolation on `[a, b]` to absolute `tol`.
    fn simpson(g: &dyn Fn(f64) -> f64, a: f64, b: f64, tol: f64) -> f64 {
        fn step(g: &dyn Fn(f64) -> f64, a: f64, b: f64, fa: f64, fm: f64, fb: f64, whole: f64, tol: f64, depth: u32) -> f64 {
            let m = 0.5 * (a + b);
            let (lm, rm) = (0.5 * (a + m), 0.5 * (m + b));
            let (flm, frm) = (g(lm), g(rm));
            let left = (m - a) / 6.0 * (fa + 4.0 * flm + fm);
            let right = (b - m) / 6.0 * (fm + 4.0 * frm + fb);
            let delta = left + right - whole;
            if depth > 60 || delta.abs() <= 15.0 * tol {
                return left + right + delta / 15.0;
            }
            step(g, a, m, fa, flm, fm, left, tol / 2.0, depth + 1)
                + step(g, m, b, fm, frm, fb, right, tol / 2.0, depth + 1)
        }
        let (fa, fm, fb) = (g(a), g(0.5 * (a + b)), g(b));
        let whole = (b - a) / 6.0 * (fa + 4.0 * fm + fb);
        step(g, a, b, fa, fm, fb, whole, tol, 0)
    }

    /// `E[f(z)]` by adaptive Simpson to `1e-12`, split at the breakpoints like the real thing.
    fn simpson_expect(f: &dyn Fn(f64) -> f64, breakpoints: &[f64]) -> f64 {
        let g = |z: f64| f(z) * density(z);
        let mut cuts = vec![-RANGE, RANGE];
        cuts.extend(breakpoints.iter().copied().filter(|b| b.abs() < RANGE));
        // Start from pieces of 1/4 sd: adaptive Simpson can stop early when its first
        // five samples happen to agree (false convergence).
        cuts.extend((-47..48).map(|i| i as f64 / 4.0));
        cuts.sort_by(f64::total_cmp);
        cuts.windows(2).map(|p| simpson(&g, p[0], p[1], 1e-14)).sum()
    }

    #[test]
    fn gauss_legendre_integrates_polynomials_of_degree_2n_minus_1_exactly() {
        let (x, w) = gauss_legendre(ORDER);
        for k in 0..2 * ORDER {
            let got: f64 = x.iter().zip(&w).map(|(x, w)| w * x.powi(k as i32)).sum();
            let exact = if k % 2 == 1 { 0.0 } else { 2.0 / (k as f64 + 1.0) };
            assert!((got - exact).abs() < 1e-14, "x^{k}: {got} vs {exact}");
        }
    }

    #[test]
    fn gaussian_moments_are_exact() {
        assert!((gauss_expect(|_| 1.0, &[]) - 1.0).abs() < 1e-14);
        assert!((gauss_expect(|z| z * z, &[]) - 1.0).abs() < 1e-14);
        assert!((gauss_expect(|z| z.powi(4), &[]) - 3.0).abs() < 1e-13);
        assert!(gauss_expect(|z| z.powi(3), &[]).abs() < 1e-15);
        // E[cos(a z)] = exp(-a^2 / 2), an oscillating integrand.
        let a: f64 = 7.0;
        let got = gauss_expect(|z| (a * z).cos(), &[]);
        assert!((got - (-a * a / 2.0).exp()).abs() < 1e-14, "{got}");
    }

    #[test]
    fn relu_moments_match_closed_forms_at_every_scale() {
        for q in [1e-6f64, 0.3, 1.0, 2.0, 50.0, 1e6] {
            let s: f64 = q.sqrt();
            let m2 = gauss_expect(|z| (s * z).max(0.0).powi(2), &[0.0]);
            let m1 = gauss_expect(|z| (s * z).max(0.0), &[0.0]);
            assert!((m2 / (q / 2.0) - 1.0).abs() < 1e-13, "q={q}: {m2}");
            assert!((m1 / (q / (2.0 * PI)).sqrt() - 1.0).abs() < 1e-13, "q={q}: {m1}");
        }
    }

    #[test]
    fn selu_has_mean_zero_and_second_moment_one_at_unit_variance() {
        // Klambauer et al.'s constants solve E[selu(z)] = 0, E[selu(z)^2] = 1 exactly; the
        // published 17-digit values (relative rounding ~1e-16) leave residuals of that size,
        // so any residual above ~1e-14 would be the quadrature's.
        let selu = Activation::Selu;
        let mean = gauss_expect(|z| selu.phi(z), selu.kinks());
        let m2 = gauss_expect(|z| selu.phi(z).powi(2), selu.kinks());
        assert!(mean.abs() < 1e-14, "mean {mean:e}");
        assert!((m2 - 1.0).abs() < 1e-14, "second moment - 1 = {:e}", m2 - 1.0);
        // The constants themselves, to the digits published.
        assert!((SELU_LAMBDA - 1.050_700_987_355_480_5).abs() < 1e-16);
        assert!((SELU_ALPHA - 1.673_263_242_354_377_3).abs() < 1e-15);
    }

    #[test]
    fn agrees_with_adaptive_simpson_for_every_activation() {
        for act in Activation::all() {
            for q in [0.01f64, 0.7, 3.0, 40.0] {
                let s: f64 = q.sqrt();
                let bp: Vec<f64> = act.kinks().iter().map(|k| k / s).collect();
                let fs: [&dyn Fn(f64) -> f64; 3] = [
                    &|z| act.phi(s * z),
                    &|z| act.phi(s * z).powi(2),
                    &|z| act.dphi(s * z).powi(2),
                ];
                for (i, f) in fs.iter().enumerate() {
                    let got = gauss_expect(f, &bp);
                    let reference = simpson_expect(f, &bp);
                    let scale = gauss_expect(|z| f(z).abs(), &bp).max(1e-300);
                    assert!(
                        (got - reference).abs() <= 1e-10 * scale,
                        "{act} q={q} integrand {i}: {got} vs simpson {reference}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_missing_breakpoint_still_converges_by_refinement() {
        // The kink of |z| at 0.3 is not announced; refinement finds it.
        let got = gauss_expect(|z| (z - 0.3).abs(), &[]);
        let reference = simpson_expect(&|z| (z - 0.3).abs(), &[0.3]);
        assert!((got - reference).abs() < 1e-11, "{got} vs {reference}");
    }

    #[test]
    fn non_finite_integrands_propagate_without_hanging() {
        assert_eq!(gauss_expect(|z| if z > 0.0 { f64::INFINITY } else { 0.0 }, &[0.0]), f64::INFINITY);
        assert!(gauss_expect(|_| f64::NAN, &[]).is_nan());
        assert_eq!(gauss_expect(|_| 0.0, &[]), 0.0);
    }

    #[test]
    fn relu_arc_cosine_kernel_matches_cho_and_saul() {
        // Cho & Saul 2009: E[relu(u1) relu(u2)] = q/(2 pi) (sqrt(1-c^2) + (pi - acos c) c).
        for q in [0.5, 2.0] {
            for c in [-0.99f64, -0.4, 0.0, 0.3, 0.9, 0.999] {
                let (sq, s): (f64, f64) = (f64::sqrt(q), (1.0 - c * c).sqrt());
                let got = gauss_expect_2d(
                    |z1, z2| (sq * z1).max(0.0) * (sq * (c * z1 + s * z2)).max(0.0),
                    &[0.0],
                    |z1| vec![-c * z1 / s],
                );
                let exact = q / (2.0 * PI) * (s + (PI - f64::acos(c)) * c);
                assert!((got - exact).abs() < 1e-12 * q, "q={q} c={c}: {got} vs {exact}");
            }
        }
    }
}
