//! The mean-field maps of one infinitely wide layer (Poole et al. 2016; Schoenholz et al.
//! 2017): the length map `q -> q'`, its fixed point `q*`, the gradient factor `chi_1`, the
//! depth scale `xi_q` and the phase. The correlation map and `xi_c` are the second half of
//! the same `impl`, in `cmap.rs`.
//!
//! Conventions (THEORY.md): `W ~ N(0, sigma_w2 / N)`, `b ~ N(0, sigma_b2)`, so
//! `q' = sigma_w2 E[phi(sqrt(q) z)^2] + sigma_b2`. Which fixed point: the one that iterating
//! the map reaches from `q^1 = sigma_w2 + sigma_b2`, the first-layer pre-activation variance
//! of THEORY.md's `x ~ N(0, 1)` inputs ([`MeanField::q_star_from`] takes another start).
//! Positively homogeneous activations (linear, ReLU, leaky ReLU) are handled in closed form:
//! there `E[phi(sqrt(q) z)^2] = q E[phi(z)^2]` and `chi_1` does not depend on `q`.
//! This file is one layer's maps; a finite network's predictions are in `predict.rs`.

use sigprop_init::Activation;

use crate::moments::expect_preact;
use crate::roots::brent;

/// `|chi_1 - 1|` at or below which [`MeanField::phase`] says [`Phase::Critical`]. The
/// quadrature gives `chi_1` to ~1e-12 and `critical_sigma_w` (critical.rs) lands within ~1e-10,
/// so this admits computed critical points and nothing visibly ordered or chaotic.
pub const CRITICAL_TOL: f64 = 1e-8;

/// Geometric step of the search that brackets `q*` (fixed points closer together than this
/// factor, a band near a saddle-node, could be stepped over).
const Q_STEP: f64 = 1.25;
/// Below this `q` the iterate is taken to reach the fixed point `q = 0`.
const Q_MIN: f64 = 1e-30;
/// Above this `q` the iterate is taken to diverge.
const Q_MAX: f64 = 1e30;

/// Order-to-chaos classification by `chi_1` (Poole et al. 2016, Schoenholz et al. 2017).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `chi_1 < 1`: inputs converge (`c* = 1`), gradients vanish geometrically.
    Ordered,
    /// `|chi_1 - 1| <= CRITICAL_TOL`: the edge of chaos.
    Critical,
    /// `chi_1 > 1`: gradients explode; nearby inputs decorrelate (`c* < 1`) unless `phi`
    /// is homogeneous (ReLU's `c*` stays 1).
    Chaotic,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Ordered => "ordered",
            Phase::Critical => "critical",
            Phase::Chaotic => "chaotic",
        })
    }
}

/// One layer's mean-field maps for an activation and the weight and bias variances.
///
/// ```
/// use sigprop_init::Activation;
/// use sigprop_theory::{MeanField, Phase};
/// // tanh at sigma_w^2 = 1.5, sigma_b^2 = 0.05 is ordered; at 3 it is chaotic.
/// let ordered = MeanField::new(Activation::Tanh, 1.5, 0.05);
/// assert!(ordered.chi1() < 1.0 && ordered.c_star() == 1.0);
/// assert_eq!(MeanField::new(Activation::Tanh, 3.0, 0.05).phase(), Phase::Chaotic);
/// // ReLU: q' = sigma_w2 q / 2 + sigma_b2, so q* = sigma_b2 / (1 - sigma_w2 / 2).
/// let relu = MeanField::new(Activation::Relu, 1.0, 0.1);
/// assert!((relu.q_star().unwrap() - 0.2).abs() < 1e-15);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanField {
    /// The nonlinearity `phi`.
    pub activation: Activation,
    /// `sigma_w^2 = Var(W) * fan_in`.
    pub sigma_w2: f64,
    /// `sigma_b^2 = Var(b)`.
    pub sigma_b2: f64,
}

impl MeanField {
    /// The maps for `activation` with weight variance `sigma_w2 / fan_in` and bias `sigma_b2`.
    pub fn new(activation: Activation, sigma_w2: f64, sigma_b2: f64) -> Self {
        MeanField {
            activation,
            sigma_w2,
            sigma_b2,
        }
    }

    /// The length map `q^(l+1) = sigma_w2 E[phi(sqrt(q^l) z)^2] + sigma_b2` (Poole et al.
    /// 2016, eq. 3). `q = +inf` is allowed (bounded `phi` maps it to a finite value).
    pub fn q_map(&self, q: f64) -> f64 {
        let act = self.activation;
        match homogeneous_second_moment(act) {
            Some(k) => self.sigma_w2 * k * q + self.sigma_b2,
            None => self.sigma_w2 * expect_preact(act, q, |u| act.phi(u).powi(2)) + self.sigma_b2,
        }
    }

    /// The fixed point `q*` reached from `q^1 = sigma_w2 + sigma_b2`; see [`Self::q_star_from`].
    pub fn q_star(&self) -> Option<f64> {
        self.q_star_from(self.sigma_w2 + self.sigma_b2)
    }

    /// The fixed point `q* = q_map(q*)` that iterating the length map reaches from `q1`.
    ///
    /// Found by stepping from `q1` by factors of 1.25 in the direction the map moves until
    /// `q_map(q) - q` changes sign, then refining with Brent's method to ~1e-15 relative.
    /// Returns `Some(0.0)` when the iterate decays to 0 (`sigma_b = 0`, `phi(0) = 0`, e.g.
    /// tanh with `sigma_w <= 1`: then `q^l -> 0`, for tanh like `1/(2l)` at `sigma_w = 1`;
    /// computed values below ~1e-15 are that same 0 in rounding), and `None` when it
    /// diverges: past 1e30, or past `1e6 max(1, q1)` once the large-`q` slope
    /// [`Self::chi1_limit`] is `>= 1` (GELU or SiLU once `q1` lies above their unstable fixed
    /// point; ReLU at `sigma_w2 = 2` with
    /// `sigma_b2 > 0`, where `q` grows by `sigma_b2` per layer). `q*` is located to the
    /// map's resolution, ~1e-13 relative; where `q_map(q) - q` stays below that over a
    /// whole range (hard-tanh at `sigma_w = 1`, no bias), any point of the range may come
    /// back, and the network would indeed take ~1e13 layers to cross it. For a
    /// homogeneous `phi` at exactly `sigma_w2 E[phi(z)^2] = 1` with `sigma_b2 = 0` every `q`
    /// is a fixed point and the answer is `q1` itself. Assumes the map is monotone in `q`,
    /// true for every activation in [`Activation::all`].
    pub fn q_star_from(&self, q1: f64) -> Option<f64> {
        if !(q1.is_finite() && q1 >= 0.0) {
            return None;
        }
        if let Some(k) = homogeneous_second_moment(self.activation) {
            let slope = self.sigma_w2 * k;
            return if slope < 1.0 - 1e-14 {
                Some(self.sigma_b2 / (1.0 - slope))
            } else if slope <= 1.0 + 1e-14 && self.sigma_b2 == 0.0 {
                Some(q1)
            } else if q1 == 0.0 && self.sigma_b2 == 0.0 {
                Some(0.0)
            } else {
                None
            };
        }
        let g = |q: f64| self.q_map(q) - q;
        let g1 = g(q1);
        if g1 == 0.0 {
            return Some(q1);
        }
        let (lo, hi, glo, ghi) = if g1 < 0.0 {
            // Decreasing: the nearest fixed point below q1.
            let (mut hi, mut ghi) = (q1, g1);
            loop {
                let q = hi / Q_STEP;
                if q < Q_MIN {
                    let g0 = self.q_map(0.0);
                    if g0 <= 0.0 {
                        return Some(0.0);
                    }
                    break (0.0, hi, g0, ghi);
                }
                let gq = g(q);
                if gq >= 0.0 {
                    break (q, hi, gq, ghi);
                }
                (hi, ghi) = (q, gq);
            }
        } else {
            // Increasing: the nearest fixed point above q1, if any. Once q is far above q1
            // and the map's large-q slope chi_1(inf) (= lim q_map(q)/q for phi with linear
            // tails) is >= 1 while q_map(q) > q still, no fixed point can follow.
            let far = 1e6 * q1.max(1.0);
            let diverging = self.chi1_limit() >= 1.0;
            let (mut lo, mut glo) = (q1, g1);
            loop {
                let q = (lo * Q_STEP).max(Q_MIN);
                if q > Q_MAX || (diverging && q > far) {
                    return None;
                }
                let gq = g(q);
                if gq <= 0.0 {
                    break (lo, q, glo, gq);
                }
                (lo, glo) = (q, gq);
            }
        };
        if !(glo.is_finite() && ghi.is_finite()) {
            return None;
        }
        Some(brent(g, lo, hi, glo, ghi, 1e-15 * hi))
    }

    /// `chi_1 = sigma_w2 E[phi'(sqrt(q) z)^2]` at a given `q` (Schoenholz et al. 2017, eq. 5).
    pub fn chi1_at(&self, q: f64) -> f64 {
        let act = self.activation;
        if is_homogeneous(act) {
            return self.sigma_w2 * tail_mean(|u| act.dphi(u).powi(2), 1.0);
        }
        self.sigma_w2 * expect_preact(act, q, |u| act.dphi(u).powi(2))
    }

    /// `chi_1` at the fixed point `q*`: the factor by which `Var(dL/dz)` grows per layer
    /// going down, and the slope of the c-map at `c = 1`. When `q` diverges it is the limit
    /// `q -> inf`, `sigma_w2 (phi'(+inf)^2 + phi'(-inf)^2) / 2` (e.g. `sigma_w2 / 2` for GELU),
    /// what a layer does to gradients once the pre-activations are huge.
    pub fn chi1(&self) -> f64 {
        self.chi1_with(self.q_star())
    }

    /// [`Self::chi1`] for an already computed `q_star()`.
    pub(crate) fn chi1_with(&self, q_star: Option<f64>) -> f64 {
        match q_star {
            Some(q) => self.chi1_at(q),
            None => self.chi1_limit(),
        }
    }

    /// `lim_(q -> inf) chi_1(q) = sigma_w2 (phi'(+inf)^2 + phi'(-inf)^2) / 2`, taken at
    /// `|u| = 1000` (where every activation here has reached its asymptote).
    pub fn chi1_limit(&self) -> f64 {
        let act = self.activation;
        self.sigma_w2 * tail_mean(|u| act.dphi(u).powi(2), 1e3)
    }

    /// The slope of the length map, `dq'/dq = chi_1 + sigma_w2 E[phi''(u) phi(u)]` at `q`
    /// (the bracket in Schoenholz et al. 2017, eq. 7).
    ///
    /// For smooth `phi` this is the formula as written. For kinked `phi`, `phi''` has Dirac
    /// masses at the kinks that `Activation::d2phi` omits (hard-tanh's count), so the same
    /// quantity is computed through Gaussian integration by parts (Stein's lemma),
    /// `E[phi'^2 + phi phi''] = E[z phi(sqrt(q) z) phi'(sqrt(q) z)] / sqrt(q)`, which holds
    /// in the distributional sense; at `q = 0` it is taken at `q = 1e-24` (its limit).
    pub fn q_slope(&self, q: f64) -> f64 {
        let act = self.activation;
        if let Some(k) = homogeneous_second_moment(act) {
            return self.sigma_w2 * k;
        }
        if act.kinks().is_empty() {
            return self.sigma_w2
                * expect_preact(act, q, |u| act.dphi(u).powi(2) + act.d2phi(u) * act.phi(u));
        }
        let q = q.max(1e-24);
        let s = q.sqrt();
        self.sigma_w2 * expect_preact(act, q, |u| (u / s) * act.phi(u) * act.dphi(u)) / s
    }

    /// Depth scale of the length map (Schoenholz et al. 2017, eq. 7):
    /// `xi_q^-1 = -log(chi_1 + sigma_w2 E[phi''(u) phi(u)])` at `q*`, i.e. `-log` of the map's
    /// slope [`Self::q_slope`] (taken in absolute value). Infinite when the slope is `>= 1`,
    /// NaN when `q*` does not exist.
    pub fn xi_q(&self) -> f64 {
        match self.q_star() {
            Some(q) => depth_scale(self.q_slope(q)),
            None => f64::NAN,
        }
    }

    /// Ordered, critical (`|chi_1 - 1| <= CRITICAL_TOL`) or chaotic.
    pub fn phase(&self) -> Phase {
        let chi = self.chi1();
        if (chi - 1.0).abs() <= CRITICAL_TOL {
            Phase::Critical
        } else if chi < 1.0 {
            Phase::Ordered
        } else {
            Phase::Chaotic
        }
    }
}

/// `-1 / ln|slope|`: infinite for `|slope| >= 1`, 0 for slope 0.
pub(crate) fn depth_scale(slope: f64) -> f64 {
    let s = slope.abs();
    if s >= 1.0 {
        f64::INFINITY
    } else {
        -1.0 / s.ln()
    }
}

/// Linear, ReLU and leaky ReLU: `phi(a x) = a phi(x)` for `a > 0`.
pub(crate) fn is_homogeneous(act: Activation) -> bool {
    matches!(
        act,
        Activation::Linear
            | Activation::Relu
            | Activation::LeakyRelu { .. }
            | Activation::TatLeakyRelu { .. }
    )
}

/// `E[phi(z)^2]` for a positively homogeneous `phi`, exactly: `(phi(1)^2 + phi(-1)^2) / 2`.
pub(crate) fn homogeneous_second_moment(act: Activation) -> Option<f64> {
    is_homogeneous(act).then(|| tail_mean(|u| act.phi(u).powi(2), 1.0))
}

/// `(f(t) + f(-t)) / 2`: the Gaussian mean of `f` when `f` is constant on each half-line
/// (like `phi'^2` of a homogeneous `phi`), or its `q -> inf` limit for large `t`.
fn tail_mean(f: impl Fn(f64) -> f64, t: f64) -> f64 {
    0.5 * (f(t) + f(-t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relu_with_unit_sigma_w2_halves_q() {
        let mf = MeanField::new(Activation::Relu, 1.0, 0.0);
        assert_eq!(mf.q_map(3.0), 1.5);
        assert_eq!(mf.q_star(), Some(0.0));
        assert_eq!(
            MeanField::new(Activation::Relu, 2.0, 0.0).q_star(),
            Some(2.0)
        );
        assert_eq!(MeanField::new(Activation::Relu, 2.0, 0.1).q_star(), None);
    }

    #[test]
    fn tanh_fixed_point_solves_the_length_map() {
        let mf = MeanField::new(Activation::Tanh, 1.76, 0.05);
        let q = mf.q_star().unwrap();
        assert!((mf.q_map(q) - q).abs() < 1e-14 * q, "q* = {q}");
        // Unique fixed point: the same from far above and below.
        assert!((mf.q_star_from(100.0).unwrap() - q).abs() < 1e-13);
        assert!((mf.q_star_from(1e-9).unwrap() - q).abs() < 1e-13);
    }

    #[test]
    fn tanh_below_sigma_w_one_without_bias_decays_to_zero_with_chi1_sigma_w2() {
        let mf = MeanField::new(Activation::Tanh, 0.81, 0.0);
        assert_eq!(mf.q_star(), Some(0.0));
        assert!((mf.chi1() - 0.81).abs() < 1e-15);
        assert_eq!(mf.phase(), Phase::Ordered);
        // Ordered: xi_q = xi_c = -1/ln(sigma_w2) (q* = 0, slope of the q-map = chi_1).
        let xi = -1.0 / 0.81f64.ln();
        assert!((mf.xi_c() / xi - 1.0).abs() < 1e-12);
        assert!((mf.xi_q() / xi - 1.0).abs() < 1e-12);
    }

    #[test]
    fn q_slope_is_the_derivative_of_the_length_map_also_for_kinked_activations() {
        for act in [
            Activation::Tanh,
            Activation::HardTanh,
            Activation::Selu,
            Activation::Gelu,
            Activation::Softsign,
        ] {
            let mf = MeanField::new(act, 1.7, 0.2);
            for q in [0.3, 1.1, 4.0] {
                let h = 1e-5 * q;
                let fd = (mf.q_map(q + h) - mf.q_map(q - h)) / (2.0 * h);
                let slope = mf.q_slope(q);
                assert!((fd - slope).abs() < 1e-7, "{act} q={q}: {fd} vs {slope}");
            }
        }
    }

    #[test]
    fn relu_phase_is_set_by_sigma_w2_alone() {
        for sb2 in [0.0, 0.5] {
            assert_eq!(
                MeanField::new(Activation::Relu, 2.0, sb2).phase(),
                Phase::Critical
            );
            assert_eq!(
                MeanField::new(Activation::Relu, 1.9, sb2).phase(),
                Phase::Ordered
            );
            assert_eq!(
                MeanField::new(Activation::Relu, 2.1, sb2).phase(),
                Phase::Chaotic
            );
        }
    }

    #[test]
    fn diverging_gelu_reports_the_large_q_limit_of_chi1() {
        let mf = MeanField::new(Activation::Gelu, 5.0, 0.0);
        assert_eq!(mf.q_star(), None);
        assert!((mf.chi1() - 2.5).abs() < 1e-12);
        assert!(mf.c_star().is_nan() && mf.xi_q().is_nan());
    }
}
