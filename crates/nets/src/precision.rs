//! Low precision: the float type of the probed pass (`--dtype`) and the loss scale of its
//! gradients (`--loss-scale`), with the numbers that say where each type loses a value.
//! Leaf types: the pass itself is `probe/pass.rs`'s.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sigprop_init::spec::fmt_f64;

/// The float type of the probed pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// IEEE single precision (24-bit significand): the reference.
    #[default]
    F32,
    /// bfloat16: f32's exponent range, an 8-bit significand.
    Bf16,
    /// IEEE half precision: a 5-bit exponent, an 11-bit significand.
    F16,
}

/// What `dtype` takes.
pub const DTYPE_ALLOWED: &str = "f32, bf16 or f16";

impl Dtype {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::Bf16 => "bf16",
            Dtype::F16 => "f16",
        }
    }

    /// The smallest positive normal value: below it a value is subnormal or 0.
    pub fn min_normal(self) -> f64 {
        match self {
            Dtype::F32 => f64::from(f32::MIN_POSITIVE),
            // bf16 keeps f32's exponent range.
            Dtype::Bf16 => f64::from(f32::MIN_POSITIVE),
            Dtype::F16 => 2f64.powi(-14),
        }
    }

    /// The largest finite value.
    pub fn max(self) -> f64 {
        match self {
            Dtype::F32 => f64::from(f32::MAX),
            Dtype::Bf16 => (2.0 - 2f64.powi(-7)) * 2f64.powi(127),
            Dtype::F16 => 65504.0,
        }
    }

    /// The unit roundoff `u = 2^-p` (p the significand's bits, the hidden one included):
    /// the largest relative error of one rounding to nearest.
    pub fn unit_roundoff(self) -> f64 {
        match self {
            Dtype::F32 => 2f64.powi(-24),
            Dtype::Bf16 => 2f64.powi(-8),
            Dtype::F16 => 2f64.powi(-11),
        }
    }

    /// Burn's float type.
    #[cfg(feature = "burn")]
    pub(crate) fn float_dtype(self) -> burn::tensor::FloatDType {
        match self {
            Dtype::F32 => burn::tensor::FloatDType::F32,
            Dtype::Bf16 => burn::tensor::FloatDType::BF16,
            Dtype::F16 => burn::tensor::FloatDType::F16,
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dtype {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(Dtype::F32),
            "bf16" | "bfloat16" => Ok(Dtype::Bf16),
            "f16" | "float16" | "half" => Ok(Dtype::F16),
            other => Err(format!("unknown dtype {other:?}; expected {DTYPE_ALLOWED}")),
        }
    }
}

/// How the loss is scaled before the backward pass of a low-precision pass (the gradients
/// are divided back in f32 before any statistic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub enum LossScale {
    /// No scaling (a scale of 1).
    #[default]
    Off,
    /// A fixed scale `S > 0`.
    Fixed(f64),
    /// PyTorch's `GradScaler` for one step: start at `2^16` and halve while any gradient
    /// the pass records is non-finite, down to 1.
    Dynamic,
}

/// What `loss-scale` takes.
pub const LOSS_SCALE_ALLOWED: &str = "off, dynamic, or a number S > 0";

/// The scale [`LossScale::Dynamic`] starts from (`torch.amp.GradScaler`'s `init_scale`).
pub const DYNAMIC_LOSS_SCALE_START: f64 = 65536.0;

impl fmt::Display for LossScale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LossScale::Off => f.write_str("off"),
            LossScale::Fixed(s) => f.write_str(&fmt_f64(*s)),
            LossScale::Dynamic => f.write_str("dynamic"),
        }
    }
}

impl FromStr for LossScale {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" | "none" => Ok(LossScale::Off),
            "dynamic" => Ok(LossScale::Dynamic),
            t => match t.parse::<f64>() {
                Ok(1.0) => Ok(LossScale::Off),
                Ok(v) if v > 0.0 && v.is_finite() => Ok(LossScale::Fixed(v)),
                _ => Err(format!(
                    "loss scale {t:?} is not allowed; expected {LOSS_SCALE_ALLOWED}"
                )),
            },
        }
    }
}

/// A probed pass in low precision: its float type and its loss scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PrecisionOptions {
    /// The float type of the weights, inputs and every operation of the pass.
    pub dtype: Dtype,
    /// The loss scale of the backward pass.
    #[serde(default)]
    pub loss_scale: LossScale,
}

/// Where one site of a low-precision pass lost values against the f32 pass of the same seed
/// and weights (THEORY.md's `underflow_frac`, `overflow_frac`, `rel_err`), for `z` and for
/// `dL/dz` (`grad_*`, after dividing out the loss scale).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PrecisionStats {
    /// Fraction of the entries of z that are 0 or subnormal in the low-precision pass and
    /// neither in the f32 pass.
    pub underflow_frac: f64,
    /// Fraction of the entries of z that are infinite in the low-precision pass and finite
    /// in the f32 pass.
    pub overflow_frac: f64,
    /// `|z_low - z_f32| / |z_f32|` (Frobenius norms over the site's whole tensor).
    pub rel_err: f64,
    /// [`PrecisionStats::underflow_frac`] of dL/dz (NaN where the site has no gradient).
    pub grad_underflow_frac: f64,
    /// [`PrecisionStats::overflow_frac`] of dL/dz.
    pub grad_overflow_frac: f64,
    /// [`PrecisionStats::rel_err`] of dL/dz.
    pub grad_rel_err: f64,
    /// The loss scale the backward pass ran with (1 without scaling; the one a dynamic scale
    /// settled on).
    pub loss_scale: f64,
}

/// The relative error `sqrt(diff_sq / ref_sq)` from the two sums of squares: 0 where both
/// are 0, infinite where only the reference is 0, NaN where either is.
pub(crate) fn relative_error(diff_sq: f64, ref_sq: f64) -> f64 {
    if diff_sq.is_nan() || ref_sq.is_nan() {
        f64::NAN
    } else if ref_sq == 0.0 {
        if diff_sq == 0.0 { 0.0 } else { f64::INFINITY }
    } else {
        (diff_sq / ref_sq).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_limits_are_the_formats_own() {
        assert_eq!(Dtype::F16.max(), 65504.0);
        assert_eq!(Dtype::F16.min_normal(), 2f64.powi(-14));
        assert_eq!(Dtype::Bf16.min_normal(), 2f64.powi(-126));
        assert_eq!(Dtype::Bf16.max(), (2.0 - 2f64.powi(-7)) * 2f64.powi(127));
        assert_eq!(Dtype::F32.min_normal(), 2f64.powi(-126));
    }

    #[test]
    fn names_parse_back_and_bad_ones_say_what_is_allowed() {
        for d in [Dtype::F32, Dtype::Bf16, Dtype::F16] {
            assert_eq!(d.name().parse::<Dtype>(), Ok(d));
        }
        assert!("f8".parse::<Dtype>().unwrap_err().contains(DTYPE_ALLOWED));
        assert_eq!("dynamic".parse::<LossScale>(), Ok(LossScale::Dynamic));
        assert_eq!("1024".parse::<LossScale>(), Ok(LossScale::Fixed(1024.0)));
        assert_eq!("1".parse::<LossScale>(), Ok(LossScale::Off));
        for bad in ["0", "-2", "inf", "big"] {
            assert!(
                bad.parse::<LossScale>()
                    .unwrap_err()
                    .contains(LOSS_SCALE_ALLOWED)
            );
        }
    }

    #[test]
    fn relative_error_of_zero_references() {
        assert_eq!(relative_error(0.0, 0.0), 0.0);
        assert_eq!(relative_error(1.0, 0.0), f64::INFINITY);
        assert_eq!(relative_error(1.0, 4.0), 0.5);
        assert!(relative_error(f64::NAN, 1.0).is_nan());
    }
}
