//! The activation functions shared by the whole workspace, as scalar `f64` maps.
//!
//! `phi`, `phi'` and `phi''` are what the mean-field theory integrates; the network crate
//! maps each variant onto Burn tensor ops. This file is the single list of names: parsing,
//! printing, kinks (for the quadrature) and the families used by the dead/saturated
//! statistics all live here. It deliberately knows nothing about tensors.

use std::fmt;
use std::str::FromStr;

use crate::error::InitError;
use crate::spec::{Spec, fmt_f64};

/// SELU's scale, Klambauer et al. 2017.
pub const SELU_LAMBDA: f64 = 1.050_700_987_355_480_5;
/// SELU's negative-side saturation, Klambauer et al. 2017.
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_2;

/// A pointwise nonlinearity `phi`, written as a spec `NAME[:key=value]`.
///
/// ```
/// use sigprop_init::Activation;
/// let a: Activation = "leaky-relu:slope=0.2".parse().unwrap();
/// assert_eq!(a.to_string(), "leaky-relu:slope=0.2");
/// assert_eq!(a.phi(-1.0), -0.2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// `phi(x) = x`.
    Linear,
    /// `phi(x) = max(x, 0)`.
    Relu,
    /// `phi(x) = x` for `x >= 0`, `slope * x` otherwise (default slope 0.01, as PyTorch).
    LeakyRelu {
        /// Slope on the negative side.
        slope: f64,
    },
    /// `phi(x) = x` for `x >= 0`, `alpha (e^x - 1)` otherwise (Clevert et al. 2015).
    Elu {
        /// Negative-side saturation value (default 1).
        alpha: f64,
    },
    /// `lambda * elu_alpha(x)` with Klambauer et al.'s constants [`SELU_LAMBDA`], [`SELU_ALPHA`].
    Selu,
    /// `phi(x) = x Phi(x)`, the exact (erf) GELU of Hendrycks & Gimpel 2016.
    Gelu,
    /// `phi(x) = x sigmoid(x)` (SiLU, also called swish).
    Silu,
    /// `phi(x) = x tanh(softplus(x))` (Misra 2019).
    Mish,
    /// `phi(x) = ln(1 + e^x)`.
    Softplus,
    /// `phi(x) = x / (1 + |x|)` (Glorot & Bengio 2010).
    Softsign,
    /// `phi(x) = tanh(x)`.
    Tanh,
    /// `phi(x) = 1 / (1 + e^-x)`.
    Sigmoid,
    /// `phi(x) = clamp(x, -1, 1)`.
    HardTanh,
    /// `phi(x) = sin(x)`.
    Sin,
    /// TAT's leaky ReLU (Zhang et al. 2022): `sqrt(2 / (1 + a^2))` times the leaky ReLU of
    /// negative slope `a`, so that `E[phi(z)^2] = 1` for `z ~ N(0, 1)`. The slope is solved
    /// from `eta` and the network's depth ([`Activation::at_depth`]): `None` until then.
    TatLeakyRelu {
        /// What the whole network's C-map makes of orthogonal inputs, in (0, 1).
        eta: f64,
        /// The solved negative slope `a`.
        slope: Option<f64>,
    },
    /// Deep Kernel Shaping's transformed activation (Martens et al. 2021):
    /// `gamma (phi(alpha x + beta) + delta)` of a smooth `base`, its four numbers solved for
    /// the network's depth `L` (by the theory crate's `resolve_activation`: `None` until then)
    /// so that for unit-variance inputs `E[phi^2] = 1` (Q(1) = 1), `E[phi] = 0` (C(0) = 0),
    /// `Q'(1) = 1`, and each layer's `C'(1) = zeta^(1/L)`: the whole network's C-map has
    /// slope `zeta` at 1.
    Dks {
        /// The smooth activation transformed.
        base: SmoothBase,
        /// The whole network's `C'(1)`, above 1.
        zeta: f64,
        /// The solved transformation.
        shape: Option<DksShape>,
    },
}

/// The smooth activations DKS transforms (it needs `phi''`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmoothBase {
    /// tanh.
    Tanh,
    /// The logistic sigmoid.
    Sigmoid,
    /// softplus.
    Softplus,
    /// The exact GELU.
    Gelu,
    /// SiLU.
    Silu,
}

/// Names `dks:activation=` takes.
pub const SMOOTH_BASE_NAMES: &[&str] = &["tanh", "sigmoid", "softplus", "gelu", "silu"];

impl SmoothBase {
    /// The activation itself.
    pub fn activation(self) -> Activation {
        match self {
            SmoothBase::Tanh => Activation::Tanh,
            SmoothBase::Sigmoid => Activation::Sigmoid,
            SmoothBase::Softplus => Activation::Softplus,
            SmoothBase::Gelu => Activation::Gelu,
            SmoothBase::Silu => Activation::Silu,
        }
    }

    /// Whether `phi(-x) = -phi(x)`.
    pub fn is_odd(self) -> bool {
        matches!(self, SmoothBase::Tanh)
    }
}

/// DKS's transformation `gamma (phi(alpha x + beta) + delta)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DksShape {
    /// Input scale.
    pub alpha: f64,
    /// Input shift.
    pub beta: f64,
    /// Output scale.
    pub gamma: f64,
    /// Output shift (inside the scale).
    pub delta: f64,
}

/// Every activation name `FromStr` accepts, in the order `sigprop list activations` prints.
pub const ACTIVATION_NAMES: &[&str] = &[
    "linear",
    "relu",
    "leaky-relu",
    "elu",
    "selu",
    "gelu",
    "silu",
    "swish",
    "mish",
    "softplus",
    "softsign",
    "tanh",
    "sigmoid",
    "hard-tanh",
    "sin",
    "tat-leaky-relu",
    "dks",
];

impl Activation {
    /// All activations with their default parameters, one per name (aliases excluded).
    pub fn all() -> Vec<Activation> {
        use Activation::*;
        vec![
            Linear,
            Relu,
            LeakyRelu { slope: 0.01 },
            Elu { alpha: 1.0 },
            Selu,
            Gelu,
            Silu,
            Mish,
            Softplus,
            Softsign,
            Tanh,
            Sigmoid,
            HardTanh,
            Sin,
            // TAT's slope for eta 0.9 over 50 layers (0.4305).
            TatLeakyRelu {
                eta: 0.9,
                slope: tat_slope(0.9, 50).ok(),
            },
            // A transformation as DKS solves them (its values are the theory crate's to find).
            Dks {
                base: SmoothBase::Tanh,
                zeta: 1.5,
                shape: Some(DksShape {
                    alpha: 0.5,
                    beta: 0.3,
                    gamma: 1.7,
                    delta: -0.2,
                }),
            },
        ]
    }

    /// Whether the activation is solved for the network's depth (TAT, DKS).
    pub fn depends_on_depth(&self) -> bool {
        matches!(
            self,
            Activation::TatLeakyRelu { .. } | Activation::Dks { .. }
        )
    }

    /// DKS's base activation and transformation, the latter NaN before it is solved.
    fn dks(base: SmoothBase, shape: Option<DksShape>) -> (Activation, DksShape) {
        let nan = f64::NAN;
        (
            base.activation(),
            shape.unwrap_or(DksShape {
                alpha: nan,
                beta: nan,
                gamma: nan,
                delta: nan,
            }),
        )
    }

    /// The activation a network of `depth` layers runs: TAT's leaky ReLU gets the slope with
    /// which `depth` layers' C-map takes 0 to its `eta` (an error where no slope reaches it);
    /// every other activation is itself.
    ///
    /// ```
    /// use sigprop_init::Activation;
    /// let a: Activation = "tat-leaky-relu:eta=0.9".parse().unwrap();
    /// let Activation::TatLeakyRelu { slope: Some(s), .. } = a.at_depth(50).unwrap() else { panic!() };
    /// assert!((s - 0.4305).abs() < 1e-3);
    /// ```
    pub fn at_depth(self, depth: usize) -> Result<Activation, InitError> {
        match self {
            Activation::TatLeakyRelu { eta, slope: None } => Ok(Activation::TatLeakyRelu {
                eta,
                slope: Some(tat_slope(eta, depth)?),
            }),
            other => Ok(other),
        }
    }

    /// TAT's slope and its scale `sqrt(2 / (1 + a^2))` (NaN before [`Self::at_depth`]).
    fn tat(slope: Option<f64>) -> (f64, f64) {
        let a = slope.unwrap_or(f64::NAN);
        (a, (2.0 / (1.0 + a * a)).sqrt())
    }

    /// The spec name without parameters.
    pub fn name(&self) -> &'static str {
        use Activation::*;
        match self {
            Linear => "linear",
            Relu => "relu",
            LeakyRelu { .. } => "leaky-relu",
            Elu { .. } => "elu",
            Selu => "selu",
            Gelu => "gelu",
            Silu => "silu",
            Mish => "mish",
            Softplus => "softplus",
            Softsign => "softsign",
            Tanh => "tanh",
            Sigmoid => "sigmoid",
            HardTanh => "hard-tanh",
            Sin => "sin",
            TatLeakyRelu { .. } => "tat-leaky-relu",
            Dks { .. } => "dks",
        }
    }

    /// `phi(x)`.
    pub fn phi(&self, x: f64) -> f64 {
        use Activation::*;
        match *self {
            Linear => x,
            Relu => x.max(0.0),
            LeakyRelu { slope } => {
                if x >= 0.0 {
                    x
                } else {
                    slope * x
                }
            }
            Elu { alpha } => elu(x, alpha),
            Selu => SELU_LAMBDA * elu(x, SELU_ALPHA),
            Gelu => x * std_normal_cdf(x),
            Silu => x * sigmoid(x),
            Mish => x * softplus(x).tanh(),
            Softplus => softplus(x),
            Softsign => x / (1.0 + x.abs()),
            Tanh => x.tanh(),
            Sigmoid => sigmoid(x),
            HardTanh => x.clamp(-1.0, 1.0),
            Sin => x.sin(),
            TatLeakyRelu { slope, .. } => {
                let (a, scale) = Self::tat(slope);
                scale * if x >= 0.0 { x } else { a * x }
            }
            Dks { base, shape, .. } => {
                let (b, s) = Self::dks(base, shape);
                s.gamma * (b.phi(s.alpha * x + s.beta) + s.delta)
            }
        }
    }

    /// `phi'(x)`; at a kink, the right derivative (what autodiff frameworks use for ReLU is
    /// 0 at 0, a set of measure zero that no integral or statistic here depends on).
    pub fn dphi(&self, x: f64) -> f64 {
        use Activation::*;
        match *self {
            Linear => 1.0,
            Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            LeakyRelu { slope } => {
                if x >= 0.0 {
                    1.0
                } else {
                    slope
                }
            }
            Elu { alpha } => {
                if x >= 0.0 {
                    1.0
                } else {
                    alpha * x.exp()
                }
            }
            Selu => SELU_LAMBDA * if x >= 0.0 { 1.0 } else { SELU_ALPHA * x.exp() },
            Gelu => std_normal_cdf(x) + x * std_normal_pdf(x),
            Silu => {
                let s = sigmoid(x);
                s * (1.0 + x * (1.0 - s))
            }
            Mish => {
                let t = softplus(x).tanh();
                t + x * (1.0 - t * t) * sigmoid(x)
            }
            Softplus => sigmoid(x),
            Softsign => 1.0 / (1.0 + x.abs()).powi(2),
            Tanh => 1.0 - x.tanh().powi(2),
            Sigmoid => {
                let s = sigmoid(x);
                s * (1.0 - s)
            }
            HardTanh => {
                if x.abs() < 1.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Sin => x.cos(),
            TatLeakyRelu { slope, .. } => {
                let (a, scale) = Self::tat(slope);
                scale * if x >= 0.0 { 1.0 } else { a }
            }
            Dks { base, shape, .. } => {
                let (b, s) = Self::dks(base, shape);
                s.gamma * s.alpha * b.dphi(s.alpha * x + s.beta)
            }
        }
    }

    /// `phi''(x)` away from kinks (0 on the linear pieces of piecewise-linear activations).
    pub fn d2phi(&self, x: f64) -> f64 {
        use Activation::*;
        match *self {
            Linear | Relu | LeakyRelu { .. } | TatLeakyRelu { .. } | HardTanh => 0.0,
            Elu { alpha } => {
                if x >= 0.0 {
                    0.0
                } else {
                    alpha * x.exp()
                }
            }
            Selu => {
                if x >= 0.0 {
                    0.0
                } else {
                    SELU_LAMBDA * SELU_ALPHA * x.exp()
                }
            }
            Gelu => std_normal_pdf(x) * (2.0 - x * x),
            Silu => {
                let s = sigmoid(x);
                let ds = s * (1.0 - s);
                2.0 * ds + x * ds * (1.0 - 2.0 * s)
            }
            Mish => {
                // d/dx [t + x (1 - t^2) s] with t = tanh(softplus(x)), s = sigmoid(x),
                // t' = (1 - t^2) s, s' = s (1 - s).
                let t = softplus(x).tanh();
                let s = sigmoid(x);
                let dt = (1.0 - t * t) * s;
                dt + (1.0 - t * t) * s + x * (-2.0 * t * dt * s + (1.0 - t * t) * s * (1.0 - s))
            }
            Softplus => {
                let s = sigmoid(x);
                s * (1.0 - s)
            }
            Softsign => -2.0 * x.signum() / (1.0 + x.abs()).powi(3),
            Tanh => {
                let t = x.tanh();
                -2.0 * t * (1.0 - t * t)
            }
            Sigmoid => {
                let s = sigmoid(x);
                s * (1.0 - s) * (1.0 - 2.0 * s)
            }
            Sin => -x.sin(),
            Dks { base, shape, .. } => {
                let (b, s) = Self::dks(base, shape);
                s.gamma * s.alpha * s.alpha * b.d2phi(s.alpha * x + s.beta)
            }
        }
    }

    /// Points where `phi` or `phi'` is not smooth: quadrature splits its intervals there.
    pub fn kinks(&self) -> &'static [f64] {
        use Activation::*;
        match self {
            Relu | LeakyRelu { .. } | TatLeakyRelu { .. } | Elu { .. } | Selu | Softsign => &[0.0],
            HardTanh => &[-1.0, 1.0],
            _ => &[],
        }
    }

    /// True when `phi` maps a half-line to exactly 0, so `dead_frac` is meaningful.
    pub fn can_die(&self) -> bool {
        matches!(self, Activation::Relu)
    }

    /// True when `phi'` tends to 0 in the tails, so `saturated_frac` is meaningful.
    pub fn can_saturate(&self) -> bool {
        use Activation::*;
        matches!(self, Tanh | Sigmoid | HardTanh | Softsign)
    }
}

/// The C-map of TAT's leaky ReLU of negative slope `a` at unit variance: the correlation of
/// `phi(u_1), phi(u_2)` (`E[phi^2] = 1`) for unit-variance `u` of correlation `c`,
/// `c + (1 - a)^2 / (pi (1 + a^2)) (sqrt(1 - c^2) - c arccos c)` (Zhang et al. 2022, from
/// Cho & Saul's arc-cosine kernel).
pub fn tat_cmap(c: f64, a: f64) -> f64 {
    let c = c.clamp(-1.0, 1.0);
    let k = (1.0 - a).powi(2) / (std::f64::consts::PI * (1.0 + a * a));
    c + k * ((1.0 - c * c).sqrt() - c * c.acos())
}

/// The negative slope `a` in `[0, 1]` with which `depth` layers of TAT's leaky ReLU map
/// correlation 0 to `eta`: the composed C-map falls monotonically from ReLU's (`a = 0`) to
/// the identity's (`a = 1`), so bisection finds it to 1e-15; an error where even ReLU's
/// does not reach `eta`.
pub fn tat_slope(eta: f64, depth: usize) -> Result<f64, InitError> {
    if depth == 0 || depth > 100_000 {
        return Err(InitError::BadValue {
            what: "activation",
            name: "tat-leaky-relu".into(),
            key: "depth".into(),
            value: depth.to_string(),
            allowed: "a network of 1 to 100000 layers".into(),
        });
    }
    let reach = |a: f64| (0..depth).fold(0.0, |c, _| tat_cmap(c, a));
    let most = reach(0.0);
    if !(eta > 0.0 && eta < 1.0) || most < eta {
        return Err(InitError::BadValue {
            what: "activation",
            name: "tat-leaky-relu".into(),
            key: "eta".into(),
            value: fmt_f64(eta),
            allowed: format!(
                "0 < eta <= {} at depth {depth} (what {depth} ReLU layers make of orthogonal \
                 inputs)",
                fmt_f64(most)
            ),
        });
    }
    let (mut lo, mut hi) = (0.0, 1.0);
    while hi - lo > 1e-15 {
        let mid = 0.5 * (lo + hi);
        if reach(mid) > eta {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(0.5 * (lo + hi))
}

fn elu(x: f64, alpha: f64) -> f64 {
    if x >= 0.0 { x } else { alpha * x.exp_m1() }
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn softplus(x: f64) -> f64 {
    // ln(1 + e^x) without overflow: max(x, 0) + ln(1 + e^-|x|).
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// Standard normal density.
pub fn std_normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Standard normal distribution function `Phi(x)`, through the complementary error function.
pub fn std_normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Complementary error function to about 1e-15 relative (W. J. Cody's rational
/// approximations, as in most libm implementations).
pub fn erfc(x: f64) -> f64 {
    libm_erfc(x)
}

// Rust's std has no erf; `libm`'s port of FreeBSD's erfc is the well-kept reference.
fn libm_erfc(x: f64) -> f64 {
    libm::erfc(x)
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Activation::LeakyRelu { slope } => write!(f, "leaky-relu:slope={}", fmt_f64(slope)),
            Activation::Elu { alpha } => write!(f, "elu:alpha={}", fmt_f64(alpha)),
            // The slope is derived from the depth: the spec is what was asked.
            Activation::TatLeakyRelu { eta, .. } => {
                write!(f, "tat-leaky-relu:eta={}", fmt_f64(eta))
            }
            Activation::Dks { base, zeta, .. } => {
                write!(
                    f,
                    "dks:activation={},zeta={}",
                    base.activation().name(),
                    fmt_f64(zeta)
                )
            }
            other => f.write_str(other.name()),
        }
    }
}

impl FromStr for Activation {
    type Err = InitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut spec = Spec::parse(s, "activation")?;
        let act = match spec.name.as_str() {
            "linear" | "identity" => Activation::Linear,
            "relu" => Activation::Relu,
            "leaky-relu" => {
                let slope = spec.get_f64("slope", 0.01)?;
                Activation::LeakyRelu { slope }
            }
            "elu" => {
                let alpha = spec.get_positive("alpha", 1.0)?;
                Activation::Elu { alpha }
            }
            "selu" => Activation::Selu,
            "gelu" => Activation::Gelu,
            "silu" | "swish" => Activation::Silu,
            "mish" => Activation::Mish,
            "softplus" => Activation::Softplus,
            "softsign" => Activation::Softsign,
            "tanh" => Activation::Tanh,
            "sigmoid" => Activation::Sigmoid,
            "hard-tanh" | "hardtanh" => Activation::HardTanh,
            "sin" => Activation::Sin,
            "tat-leaky-relu" => {
                let eta = spec.get_f64("eta", 0.9)?;
                if !(eta > 0.0 && eta < 1.0) {
                    return Err(InitError::BadValue {
                        what: "activation",
                        name: "tat-leaky-relu".into(),
                        key: "eta".into(),
                        value: fmt_f64(eta),
                        allowed: "a number with 0 < eta < 1".into(),
                    });
                }
                Activation::TatLeakyRelu { eta, slope: None }
            }
            "dks" => {
                let name = spec.get_str("activation").unwrap_or_else(|| "tanh".into());
                let base = match SMOOTH_BASE_NAMES.iter().position(|n| *n == name) {
                    Some(i) => [
                        SmoothBase::Tanh,
                        SmoothBase::Sigmoid,
                        SmoothBase::Softplus,
                        SmoothBase::Gelu,
                        SmoothBase::Silu,
                    ][i],
                    None => {
                        return Err(spec.bad(
                            "activation",
                            &name,
                            &format!("a smooth activation: {}", SMOOTH_BASE_NAMES.join(", ")),
                        ));
                    }
                };
                let zeta = spec.get_f64("zeta", 1.5)?;
                if !(zeta > 1.0 && zeta <= 1e6) {
                    return Err(spec.bad(
                        "zeta",
                        &fmt_f64(zeta),
                        "a number above 1 (the network's C'(1); DKS uses 1.5)",
                    ));
                }
                Activation::Dks {
                    base,
                    zeta,
                    shape: None,
                }
            }
            other => {
                return Err(InitError::UnknownName {
                    what: "activation",
                    name: other.to_string(),
                    allowed: ACTIVATION_NAMES.join(", "),
                });
            }
        };
        spec.finish()?;
        Ok(act)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_activation_prints_back_unchanged() {
        for a in Activation::all() {
            let s = a.to_string();
            if let Activation::Dks { .. } = a {
                // DKS's spec leaves the transformation to the theory crate's solver.
                assert_eq!(s.parse::<Activation>().unwrap().to_string(), s);
                continue;
            }
            // TAT's spec leaves the slope to the depth (all() holds it solved at 50).
            let back = s.parse::<Activation>().unwrap().at_depth(50).unwrap();
            assert_eq!(back, a, "{s}");
            assert_eq!(back.to_string(), s);
        }
        let s = "elu:alpha=0.5";
        assert_eq!(s.parse::<Activation>().unwrap().to_string(), s);
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let h = 1e-5;
        for a in Activation::all() {
            for &x in &[-2.3, -0.7, 0.4, 1.9] {
                let fd = (a.phi(x + h) - a.phi(x - h)) / (2.0 * h);
                assert!(
                    (fd - a.dphi(x)).abs() < 1e-7,
                    "{a} phi' at {x}: {fd} vs {}",
                    a.dphi(x)
                );
                let fd2 = (a.dphi(x + h) - a.dphi(x - h)) / (2.0 * h);
                assert!((fd2 - a.d2phi(x)).abs() < 1e-6, "{a} phi'' at {x}");
            }
        }
    }

    #[test]
    fn selu_constants_and_gelu_values() {
        assert!((Activation::Selu.phi(-50.0) + SELU_LAMBDA * SELU_ALPHA).abs() < 1e-12);
        // GELU(1) = Phi(1) = 0.8413447460685429.
        assert!((Activation::Gelu.phi(1.0) - 0.841_344_746_068_542_9).abs() < 1e-15);
    }

    #[test]
    fn unknown_activation_names_the_allowed_ones() {
        let e = "relux".parse::<Activation>().unwrap_err().to_string();
        assert!(e.contains("relux") && e.contains("leaky-relu"), "{e}");
        let e = "relu:slope=2"
            .parse::<Activation>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("slope"), "{e}");
    }
}
