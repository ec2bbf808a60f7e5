//! Critical initialization: the `sigma_w` at which `chi_1 = 1` (the edge of chaos,
//! Schoenholz et al. 2017), and the "numerical gain" that keeps `q = 1` fixed.
//!
//! `chi_1(sigma_w)` is evaluated at the fixed point `q*(sigma_w)` that the network actually
//! reaches ([`MeanField::q_star`]), and that fixed point can jump: for GELU and SiLU without
//! bias, `q*` switches from 0 to divergence and `chi_1` jumps over 1 without taking the
//! value. Following THEORY.md ("never report a root that is not one"), a sign change of
//! `chi_1 - 1` is refined by bisection down to a bracket of a few ulps, and reported as a
//! root only if both `chi_1` and `q*` are continuous across that bracket; otherwise it is a
//! [`Critical::NoCrossing`] with the values on either side.
//! This file finds critical points; the phase diagram built on it is in `phase.rs`.

use sigprop_init::Activation;

use crate::error::TheoryError;
use crate::meanfield::{MeanField, is_homogeneous};
use crate::quadrature::gauss_expect;

/// The first scan for a crossing covers `(0, SIGMA_W_MAX]`; past it, `sigma_w` doubles until
/// `chi_1` passes 1 (up to [`SIGMA_W_CAP`]) and that octave is scanned the same way.
pub const SIGMA_W_MAX: f64 = 10.0;
/// Largest `sigma_w` searched (q* ~ sigma_w^2 stays far inside the quadrature's range).
pub const SIGMA_W_CAP: f64 = 1e6;
/// Grid points of each scan (step 0.05 over `(0, SIGMA_W_MAX]`).
const SCAN_STEPS: usize = 200;
/// Largest jump of `chi_1` across the final bracket that still counts as continuous
/// (a continuous `chi_1` changes by ~1e-12 there; a `sqrt`-like onset by ~1e-7).
const JUMP_TOL: f64 = 1e-5;
/// Largest jump of `q*` across the final bracket, relative to `max(1, q*)`, that still
/// counts as continuous. Generous on purpose: `q*` can leave 0 very steeply (hard-tanh
/// without bias, where `q* ~ 1 / (2 ln(1 / (sigma_w^2 - 1)))`); the jumps it must catch
/// (GELU's `q*` from 0 to divergence) are of order 1 or infinite.
const Q_JUMP_TOL: f64 = 0.05;
/// A finite `q*` next to a diverging one counts as "running off to infinity" above this.
const Q_HUGE: f64 = 1e6;

/// Where `chi_1 = 1` for an activation and bias, as far as it exists.
#[derive(Debug, Clone, PartialEq)]
pub enum Critical {
    /// `chi_1` crosses 1 continuously at `sigma_w`, where the length map's fixed point is
    /// `q_star` (`f64::INFINITY` for a homogeneous `phi` with bias: `q` then grows by
    /// `sigma_b^2` per layer at criticality).
    Root {
        /// The critical weight scale (`sigma_w^2 / fan_in` is the weight variance).
        sigma_w: f64,
        /// `q*` at that `sigma_w`.
        q_star: f64,
    },
    /// `chi_1 - 1` changes sign but `chi_1` (or `q*`) jumps: the bracketing `(sigma_w,
    /// chi_1)` pairs, a few ulps of `sigma_w` apart.
    NoCrossing {
        /// The side with `chi_1 < 1` at the lower `sigma_w` of the bracket.
        below: (f64, f64),
        /// The upper `sigma_w` of the bracket and its `chi_1`.
        above: (f64, f64),
    },
    /// No sign change of `chi_1 - 1` up to [`SIGMA_W_CAP`], or an invalid `sigma_b`.
    None {
        /// Why, in a sentence for the user.
        reason: String,
    },
}

impl std::fmt::Display for Critical {
    /// One line for a user: `sigma_w = 1.327010 (sigma_w^2 = 1.760955, q* = 0.570048)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Critical::Root { sigma_w, q_star } => write!(
                f,
                "sigma_w = {sigma_w:.6} (sigma_w^2 = {:.6}, q* = {q_star:.6})",
                sigma_w * sigma_w
            ),
            Critical::NoCrossing { below, above } => write!(
                f,
                "no critical point: chi_1 jumps from {:.4} at sigma_w = {:.6} to {:.4} at \
                 sigma_w = {:.6} without taking the value 1",
                below.1, below.0, above.1, above.0
            ),
            Critical::None { reason } => write!(f, "no critical point: {reason}"),
        }
    }
}

/// `sigma_w`, `chi_1` and `q*` at one point of the scan.
#[derive(Debug, Clone, Copy)]
struct Point {
    sigma_w: f64,
    chi1: f64,
    q_star: Option<f64>,
}

fn point(act: Activation, sigma_b2: f64, sigma_w: f64) -> Point {
    let mf = MeanField::new(act, sigma_w * sigma_w, sigma_b2);
    let q_star = mf.q_star();
    Point {
        sigma_w,
        chi1: mf.chi1_with(q_star),
        q_star,
    }
}

/// The critical `sigma_w` (`chi_1 = 1`) for `act` with bias standard deviation `sigma_b`.
///
/// Positively homogeneous `phi` (linear, ReLU, leaky ReLU) are answered in closed form:
/// `chi_1 = sigma_w^2 E[phi'(z)^2]` does not depend on `q`, so `sigma_w^2 = 1 / E[phi'^2]`
/// for every `sigma_b` (2 for ReLU, He et al. 2015). Otherwise `sigma_w` is scanned over
/// `(0, 10]` in steps of 0.05; the first sign change of `chi_1 - 1` that is a continuous
/// crossing is refined to ~1e-15 and returned; if every sign change is a jump, the first
/// jump is returned as [`Critical::NoCrossing`]. Without a sign change there, `sigma_w`
/// doubles until `chi_1` reaches 1 and that octave is scanned alike (sigmoid's edge of chaos
/// is at sigma_w ~ 10.15; bounded activations with a large bias lie further out).
///
/// ```
/// use sigprop_init::Activation;
/// use sigprop_theory::{Critical, critical_sigma_w};
/// // tanh without bias: the edge of chaos is sigma_w = 1, where q* = 0 (found to ~1e-8:
/// // chi_1 - 1 ~ (4/3) (sigma_w - 1)^2 there, flat to rounding within 1e-8 of the root).
/// let Critical::Root { sigma_w, q_star } = critical_sigma_w(Activation::Tanh, 0.0) else {
///     panic!()
/// };
/// assert!((sigma_w - 1.0).abs() < 1e-7 && q_star < 1e-7);
/// ```
pub fn critical_sigma_w(act: Activation, sigma_b: f64) -> Critical {
    if !(sigma_b.is_finite() && sigma_b >= 0.0) {
        return Critical::None {
            reason: format!("sigma_b = {sigma_b} is not allowed; expected a finite number >= 0"),
        };
    }
    let sigma_b2 = sigma_b * sigma_b;
    if is_homogeneous(act) {
        let dphi2 = MeanField::new(act, 1.0, sigma_b2).chi1_at(1.0);
        if dphi2.is_nan() || dphi2 <= 0.0 {
            return Critical::None {
                reason: format!("{act}: E[phi'(z)^2] = {dphi2}, so chi_1 = 0 for every sigma_w"),
            };
        }
        let sigma_w2 = dphi2.recip();
        let sigma_w = sigma_w2.sqrt();
        // sigma_b = 0: every q is a fixed point; the iterate from unit inputs stays at q^1.
        let q_star = if sigma_b2 == 0.0 {
            sigma_w2
        } else {
            f64::INFINITY
        };
        return Critical::Root { sigma_w, q_star };
    }
    let mut scan = Scan {
        lowest: f64::INFINITY,
        highest: f64::NEG_INFINITY,
        first_jump: None,
    };
    if let Some(root) = scan.interval(act, sigma_b2, 0.0, SIGMA_W_MAX) {
        return root;
    }
    if let Some(jump) = scan.first_jump.take() {
        return jump;
    }
    // No sign change in (0, 10]. Every non-homogeneous activation here has chi_1 -> inf as
    // sigma_w -> inf (linear tails: chi_1 ~ sigma_w^2; bounded phi: chi_1 ~ sigma_w), so
    // double sigma_w until chi_1 passes 1, then scan that octave as finely as the first.
    let mut lo = SIGMA_W_MAX;
    while lo < SIGMA_W_CAP {
        let hi = (2.0 * lo).min(SIGMA_W_CAP);
        let end = point(act, sigma_b2, hi);
        if end.chi1.is_finite() && end.chi1 >= 1.0 {
            if let Some(root) = scan.interval(act, sigma_b2, lo, hi) {
                return root;
            }
            if let Some(jump) = scan.first_jump.take() {
                return jump;
            }
        }
        lo = hi;
    }
    Critical::None {
        reason: format!(
            "{act} at sigma_b = {sigma_b}: chi_1 stays on one side of 1 for sigma_w in \
             (0, {SIGMA_W_CAP:e}] (it ranges over [{:.4}, {:.4}] on (0, {SIGMA_W_MAX}])",
            scan.lowest, scan.highest
        ),
    }
}

/// A scan for sign changes of `chi_1 - 1`, remembering the range of `chi_1` and the first
/// jump seen.
struct Scan {
    lowest: f64,
    highest: f64,
    first_jump: Option<Critical>,
}

impl Scan {
    /// Scan `[lo, hi]` in [`SCAN_STEPS`] steps; the first continuous crossing, refined.
    fn interval(&mut self, act: Activation, sigma_b2: f64, lo: f64, hi: f64) -> Option<Critical> {
        let h = (hi - lo) / SCAN_STEPS as f64;
        let mut prev = point(act, sigma_b2, lo);
        if prev.chi1.is_finite() {
            self.lowest = self.lowest.min(prev.chi1);
            self.highest = self.highest.max(prev.chi1);
        }
        for i in 1..=SCAN_STEPS {
            let cur = point(act, sigma_b2, lo + h * i as f64);
            if cur.chi1.is_nan() {
                continue;
            }
            self.lowest = self.lowest.min(cur.chi1);
            self.highest = self.highest.max(cur.chi1);
            if (prev.chi1 < 1.0) != (cur.chi1 < 1.0) {
                match refine(act, sigma_b2, prev, cur) {
                    root @ Critical::Root { .. } => return Some(root),
                    jump => {
                        self.first_jump.get_or_insert(jump);
                    }
                }
            }
            prev = cur;
        }
        None
    }
}

/// Bisect a sign change of `chi_1 - 1` down to adjacent floating-point `sigma_w`s, then
/// decide whether it is a root or a jump.
fn refine(act: Activation, sigma_b2: f64, a: Point, b: Point) -> Critical {
    let below_at_a = a.chi1 < 1.0;
    let (mut lo, mut hi) = (a, b);
    for _ in 0..80 {
        let mid = 0.5 * (lo.sigma_w + hi.sigma_w);
        if mid <= lo.sigma_w || mid >= hi.sigma_w {
            break;
        }
        let m = point(act, sigma_b2, mid);
        if (m.chi1 < 1.0) == below_at_a {
            lo = m;
        } else {
            hi = m;
        }
    }
    let mid = 0.5 * (lo.sigma_w + hi.sigma_w);
    let chi_continuous = (hi.chi1 - lo.chi1).abs() <= JUMP_TOL;
    match (lo.q_star, hi.q_star) {
        (Some(x), Some(y)) if chi_continuous && (x - y).abs() <= Q_JUMP_TOL * x.max(y).max(1.0) => {
            let p = point(act, sigma_b2, mid);
            return Critical::Root {
                sigma_w: p.sigma_w,
                q_star: p.q_star.unwrap_or(f64::NAN),
            };
        }
        (Some(x), None) | (None, Some(x)) if x > Q_HUGE => {
            if let Some(root) = root_at_infinity(act, sigma_b2, mid) {
                return root;
            }
        }
        (None, None) if chi_continuous => {
            if let Some(root) = root_at_infinity(act, sigma_b2, mid) {
                return root;
            }
        }
        _ => {}
    }
    let (below, above) = if below_at_a { (lo, hi) } else { (hi, lo) };
    Critical::NoCrossing {
        below: (below.sigma_w, below.chi1),
        above: (above.sigma_w, above.chi1),
    }
}

/// A sign change where `q*` runs off to infinity: `chi_1` then tends to its large-q limit,
/// which is 1 exactly at `sigma_w^2 = 2 / (phi'(inf)^2 + phi'(-inf)^2)` (2 for softplus, as
/// for the ReLU it becomes at large `q`). A root there when the bracket `mid` is that point.
fn root_at_infinity(act: Activation, sigma_b2: f64, mid: f64) -> Option<Critical> {
    let limit = MeanField::new(act, 1.0, sigma_b2).chi1_limit();
    let at_limit = limit.sqrt().recip();
    ((at_limit - mid).abs() <= 1e-9 * at_limit).then_some(Critical::Root {
        sigma_w: at_limit,
        q_star: f64::INFINITY,
    })
}

/// The `sigma_w` that makes `q = 1` a fixed point without bias:
/// `sigma_w = 1 / sqrt(E[phi(z)^2])`, `z ~ N(0, 1)`; the "gain" that keeps unit-variance
/// pre-activations at unit variance (sqrt(2) for ReLU, as He et al. 2015; 1 for linear).
///
/// ```
/// use sigprop_init::Activation;
/// let g = sigprop_theory::numerical_gain(Activation::Relu).unwrap();
/// assert!((g - 2f64.sqrt()).abs() < 1e-12);
/// ```
pub fn numerical_gain(act: Activation) -> Result<f64, TheoryError> {
    let m2 = gauss_expect(|z| act.phi(z).powi(2), act.kinks());
    if m2.is_finite() && m2 > 0.0 {
        Ok(m2.sqrt().recip())
    } else {
        Err(TheoryError::Degenerate {
            activation: act.to_string(),
            why: format!("E[phi(z)^2] = {m2}; no sigma_w makes q = 1 a fixed point"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(act: Activation, sigma_b: f64) -> (f64, f64) {
        match critical_sigma_w(act, sigma_b) {
            Critical::Root { sigma_w, q_star } => (sigma_w, q_star),
            other => panic!("{act} at sigma_b = {sigma_b}: {other:?}"),
        }
    }

    /// At a reported root chi_1 really is 1, and it is not 1 a little to either side.
    fn assert_genuine_root(act: Activation, sigma_b: f64) -> f64 {
        let (sigma_w, q_star) = root(act, sigma_b);
        let mf = |s: f64| MeanField::new(act, s * s, sigma_b * sigma_b);
        assert!((mf(sigma_w).chi1() - 1.0).abs() < 1e-9, "{act}");
        assert!(mf(sigma_w * (1.0 - 1e-4)).chi1() < 1.0 && mf(sigma_w * (1.0 + 1e-4)).chi1() > 1.0);
        let q = mf(sigma_w).q_star().unwrap();
        assert!(
            (q - q_star).abs() <= 1e-9 * q.max(1.0),
            "{act}: q* {q} vs {q_star}"
        );
        sigma_w
    }

    #[test]
    fn tanh_without_bias_is_critical_at_sigma_w_one() {
        // chi_1 - 1 ~ (4/3) (q*)^2 just above sigma_w = 1 (q* ~ sigma_w - 1): the crossing is
        // quadratically flat, so rounding at 1e-16 places it within ~1e-8 of 1.
        let (sigma_w, q_star) = root(Activation::Tanh, 0.0);
        assert!((sigma_w - 1.0).abs() < 1e-7, "{sigma_w}");
        assert!(q_star < 1e-7, "{q_star}");
    }

    #[test]
    fn tanh_with_bias_variance_005_is_critical_near_sigma_w2_176() {
        let sigma_w = assert_genuine_root(Activation::Tanh, 0.05f64.sqrt());
        // Schoenholz et al. 2017, fig. 1: sigma_w^2 ~ 1.76. Computed: 1.760954639607.
        println!(
            "tanh, sigma_b^2 = 0.05: critical sigma_w^2 = {:.12}",
            sigma_w * sigma_w
        );
        assert!((sigma_w * sigma_w - 1.760_954_639_607).abs() < 1e-9);
        assert!((sigma_w * sigma_w - 1.76).abs() < 1e-2);
        let line = critical_sigma_w(Activation::Tanh, 0.05f64.sqrt()).to_string();
        assert_eq!(
            line,
            "sigma_w = 1.327010 (sigma_w^2 = 1.760955, q* = 0.570048)"
        );
    }

    #[test]
    fn relu_is_critical_at_he_for_every_bias() {
        for sigma_b in [0.0, 0.3, 2.0] {
            let (sigma_w, q_star) = root(Activation::Relu, sigma_b);
            assert!((sigma_w * sigma_w - 2.0).abs() < 1e-15);
            // Without bias every q is fixed; with bias q grows by sigma_b^2 per layer.
            assert_eq!(q_star, if sigma_b == 0.0 { 2.0 } else { f64::INFINITY });
        }
        let (sigma_w, _) = root(Activation::LeakyRelu { slope: 0.2 }, 0.1);
        assert!((sigma_w * sigma_w - 2.0 / 1.04).abs() < 1e-14);
        assert_eq!(root(Activation::Linear, 0.5).0, 1.0);
    }

    #[test]
    fn gelu_and_silu_jump_over_one_without_bias() {
        for act in [Activation::Gelu, Activation::Silu] {
            let Critical::NoCrossing { below, above } = critical_sigma_w(act, 0.0) else {
                panic!("{act}: expected a jump");
            };
            println!("{act}: chi_1 jumps from {below:?} to {above:?}");
            // Adjacent sigma_w; below, q* = 0 and chi_1 = sigma_w^2 phi'(0)^2 = sigma_w^2 / 4.
            // Above, q leaves for infinity and chi_1 is its limit sigma_w^2 / 2 (or, at the
            // very bracket, chi_1 at the unstable fixed point q = q^1 the jump sits on).
            assert!(above.0 - below.0 < 1e-12);
            assert!((below.1 - below.0.powi(2) / 4.0).abs() < 1e-9, "{below:?}");
            assert!(below.1 < 0.7 && above.1 > 1.0, "{below:?} {above:?}");
            let past = MeanField::new(act, (above.0 * (1.0 + 1e-9)).powi(2), 0.0);
            assert_eq!(past.q_star(), None);
            assert!((past.chi1() - above.0.powi(2) / 2.0).abs() < 1e-8);
        }
    }

    #[test]
    fn gelu_and_silu_cross_continuously_with_enough_bias() {
        // Computed by this crate: GELU crosses from sigma_b = 0.5 (not at 0.3), SiLU from
        // sigma_b = 1 (not at 0.5).
        let gelu = assert_genuine_root(Activation::Gelu, 0.5);
        assert!((gelu - 1.399_868_216_405_819_6).abs() < 1e-9, "{gelu}");
        let silu = assert_genuine_root(Activation::Silu, 1.0);
        assert!((silu - 1.402_512_417_978_650_6).abs() < 1e-9, "{silu}");
        assert!(matches!(
            critical_sigma_w(Activation::Gelu, 0.3),
            Critical::NoCrossing { .. }
        ));
        assert!(matches!(
            critical_sigma_w(Activation::Silu, 0.5),
            Critical::NoCrossing { .. }
        ));
    }

    #[test]
    fn softplus_reaches_criticality_only_as_q_diverges() {
        // Softplus -> ReLU at large q: chi_1 -> 1 as q* -> inf at sigma_w^2 = 2.
        for sigma_b in [0.0, 0.3] {
            let (sigma_w, q_star) = root(Activation::Softplus, sigma_b);
            assert!((sigma_w * sigma_w - 2.0).abs() < 1e-15 && q_star == f64::INFINITY);
        }
    }

    #[test]
    fn sigmoid_reaches_chi_one_beyond_the_first_scan() {
        // chi_1(10) ~ 0.986 and chi_1(10.5) ~ 1.03 for sigmoid without bias: the root lies
        // just past the first scan's end and is found by the doubling search.
        let (sigma_w, q_star) = root(Activation::Sigmoid, 0.0);
        assert!(sigma_w > 10.0 && sigma_w < 10.5, "{sigma_w}");
        let chi1 = MeanField::new(Activation::Sigmoid, sigma_w * sigma_w, 0.0).chi1();
        assert!(
            (chi1 - 1.0).abs() < 1e-9,
            "chi_1 = {chi1} at {sigma_w}, q* = {q_star}"
        );
        // tanh with a very large bias: the root grows like sqrt(sigma_b), here past 10.
        let (sigma_w, _) = root(Activation::Tanh, 60.0);
        let chi1 = MeanField::new(Activation::Tanh, sigma_w * sigma_w, 3600.0).chi1();
        assert!(
            sigma_w > 10.0 && (chi1 - 1.0).abs() < 1e-9,
            "{sigma_w} {chi1}"
        );
        let Critical::None { reason } = critical_sigma_w(Activation::Tanh, -1.0) else {
            panic!()
        };
        assert!(reason.contains("sigma_b = -1"), "{reason}");
    }

    #[test]
    fn numerical_gains_keep_unit_variance() {
        assert!((numerical_gain(Activation::Relu).unwrap() - 2f64.sqrt()).abs() < 1e-6);
        assert!((numerical_gain(Activation::Linear).unwrap() - 1.0).abs() < 1e-6);
        // SELU's constants make E[selu(z)^2] = 1: gain 1.
        assert!((numerical_gain(Activation::Selu).unwrap() - 1.0).abs() < 1e-12);
        // tanh against a midpoint rule on [-12, 12] with 200 000 cells (error ~1e-10).
        let n = 200_000;
        let h = 24.0 / n as f64;
        let m2: f64 = (0..n)
            .map(|i| {
                let z = -12.0 + (i as f64 + 0.5) * h;
                z.tanh().powi(2) * (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt() * h
            })
            .sum();
        let tanh = numerical_gain(Activation::Tanh).unwrap();
        println!("numerical gain: tanh {tanh}");
        assert!(
            (tanh - 1.0 / m2.sqrt()).abs() < 1e-8,
            "{tanh} vs {}",
            1.0 / m2.sqrt()
        );
        for act in Activation::all() {
            let g = numerical_gain(act).unwrap();
            let q = MeanField::new(act, g * g, 0.0).q_map(1.0);
            assert!((q - 1.0).abs() < 1e-12, "{act}: q_map(1) = {q}");
        }
    }
}
