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

use crate::legendre::gauss_legendre;

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
/// Halvings allowed in one integral (a smooth integrand needs a few dozen).
const MAX_REFINEMENTS: u32 = 2000;

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
    expect_with_magnitude(
        |z| {
            let v = f(z);
            (v, v.abs())
        },
        breakpoints,
    )
    .0
}

/// `(E[f(z)], E|f(z)|)` where `f` returns each value together with a bound on its size (for
/// a plain integrand `(v, |v|)`; for an inner integral, its value and its `E|.|`). The
/// magnitude is the unrefined panel sum, good to a few digits: it is a scale, not a result.
///
/// The magnitude sets the tolerance, `1e-13 * E|f|`. An integrand that is itself an integral
/// carries rounding noise of order `1e-16 * E_inner|f|`, which can be far above
/// `1e-13 * |E_inner f|` when the inner integral nearly cancels (the c-map of tanh near
/// `c = 0`); passing the inner magnitude up keeps the outer tolerance above that noise.
///
/// ```
/// use sigprop_theory::expect_with_magnitude;
/// let (mean, abs) = expect_with_magnitude(|z| (z, z.abs()), &[0.0]);
/// assert!(mean.abs() < 1e-15 && (abs - (2.0 / std::f64::consts::PI).sqrt()).abs() < 1e-6);
/// ```
pub fn expect_with_magnitude(f: impl Fn(f64) -> (f64, f64), breakpoints: &[f64]) -> (f64, f64) {
    let g = |z: f64| {
        let (v, m) = f(z);
        let p = density(z);
        (v * p, m * p)
    };
    let panels = initial_panels(breakpoints);
    let coarse: Vec<(f64, f64)> = panels.iter().map(|&(a, b)| panel(&g, a, b)).collect();
    let magnitude: f64 = coarse.iter().map(|&(_, m)| m).sum();
    if magnitude == 0.0 {
        return (0.0, 0.0);
    }
    let tol = REL_TOL * magnitude;
    let mut budget = MAX_REFINEMENTS;
    let value = panels
        .iter()
        .zip(&coarse)
        .map(|(&(a, b), &(whole, _))| refine(&g, a, b, whole, tol, 0, &mut budget))
        .sum();
    (value, magnitude)
}

/// `E_{z1,z2 iid N(0,1)}[f(z1, z2)]` as an iterated integral: for each outer node `z1` the
/// inner integral over `z2` is split at `breakpoints_z2(z1)`, so a kink whose position in
/// `z2` moves with `z1` (as in the c-map's `u2 = sqrt(q) (c z1 + sqrt(1-c^2) z2)`) is still
/// a breakpoint. `breakpoints_z1` are the kinks of the outer integrand `z1 -> E_z2[f]`.
/// The error is below about `1e-12 * E|f|`, as in one dimension.
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
    expect_with_magnitude(
        |z1| {
            expect_with_magnitude(
                |z2| {
                    let v = f(z1, z2);
                    (v, v.abs())
                },
                &breakpoints_z2(z1),
            )
        },
        breakpoints_z1,
    )
    .0
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

/// The Gauss-Legendre values of `int_a^b g` for both components (value, magnitude).
fn panel(g: &impl Fn(f64) -> (f64, f64), a: f64, b: f64) -> (f64, f64) {
    let (x, w) = rule();
    let mid = 0.5 * (a + b);
    let half = 0.5 * (b - a);
    let (mut sum, mut abs) = (0.0, 0.0);
    for (xi, wi) in x.iter().zip(w) {
        let (v, m) = g(mid + half * xi);
        sum += wi * v;
        abs += wi * m;
    }
    (sum * half, abs * half)
}

/// Halve `[a, b]` until the two halves agree with the whole to `tol`; return the halves.
/// `budget` caps the halvings of one integral, so that an integrand noisier than `tol`
/// costs a bounded amount of work instead of `2^MAX_DEPTH` panels.
fn refine(
    g: &impl Fn(f64) -> (f64, f64),
    a: f64,
    b: f64,
    whole: f64,
    tol: f64,
    depth: u32,
    budget: &mut u32,
) -> f64 {
    let m = 0.5 * (a + b);
    let (left, _) = panel(g, a, m);
    let (right, _) = panel(g, m, b);
    let halves = left + right;
    // A NaN difference accepts: non-finite integrands never loop.
    let diff = (halves - whole).abs();
    if depth >= MAX_DEPTH || *budget == 0 || diff.is_nan() || diff <= tol {
        return halves;
    }
    *budget -= 1;
    refine(g, a, m, left, tol, depth + 1, budget) + refine(g, m, b, right, tol, depth + 1, budget)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sigprop_init::{Activation, SELU_ALPHA, SELU_LAMBDA};
    use std::f64::consts::PI;

    /// Adaptive Simpson with Richardson extrapolation on `[a, b]` to absolute `tol`.
    fn simpson(g: &dyn Fn(f64) -> f64, a: f64, b: f64, tol: f64) -> f64 {
        /// One Simpson panel: its ends and midpoint as `(x, f(x))` pairs.
        type Panel = [(f64, f64); 3];
        fn step(g: &dyn Fn(f64) -> f64, p: Panel, whole: f64, tol: f64, depth: u32) -> f64 {
            let [(a, fa), (m, fm), (b, fb)] = p;
            let (lm, rm) = (0.5 * (a + m), 0.5 * (m + b));
            let (flm, frm) = (g(lm), g(rm));
            let left = (m - a) / 6.0 * (fa + 4.0 * flm + fm);
            let right = (b - m) / 6.0 * (fm + 4.0 * frm + fb);
            let delta = left + right - whole;
            if depth > 60 || delta.abs() <= 15.0 * tol {
                return left + right + delta / 15.0;
            }
            step(g, [(a, fa), (lm, flm), (m, fm)], left, tol / 2.0, depth + 1)
                + step(
                    g,
                    [(m, fm), (rm, frm), (b, fb)],
                    right,
                    tol / 2.0,
                    depth + 1,
                )
        }
        let m = 0.5 * (a + b);
        let (fa, fm, fb) = (g(a), g(m), g(b));
        let whole = (b - a) / 6.0 * (fa + 4.0 * fm + fb);
        step(g, [(a, fa), (m, fm), (b, fb)], whole, tol, 0)
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
        cuts.windows(2)
            .map(|p| simpson(&g, p[0], p[1], 1e-14))
            .sum()
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
            assert!(
                (m1 / (q / (2.0 * PI)).sqrt() - 1.0).abs() < 1e-13,
                "q={q}: {m1}"
            );
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
        assert!(
            (m2 - 1.0).abs() < 1e-14,
            "second moment - 1 = {:e}",
            m2 - 1.0
        );
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
                let fs: [&dyn Fn(f64) -> f64; 3] =
                    [&|z| act.phi(s * z), &|z| act.phi(s * z).powi(2), &|z| {
                        act.dphi(s * z).powi(2)
                    }];
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
        assert_eq!(
            gauss_expect(|z| if z > 0.0 { f64::INFINITY } else { 0.0 }, &[0.0]),
            f64::INFINITY
        );
        assert!(gauss_expect(|_| f64::NAN, &[]).is_nan());
        // Pure noise (never converges) costs a bounded amount of work.
        let noisy = gauss_expect(|z| (z * 1e9).sin() * 1e-3, &[]);
        assert!(noisy.abs() < 1e-3, "{noisy}");
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
                assert!(
                    (got - exact).abs() < 1e-12 * q,
                    "q={q} c={c}: {got} vs {exact}"
                );
            }
        }
    }
}
