//! PyTorch's `torch.nn.init.calculate_gain` table, and our activations mapped onto it.
//!
//! These are PyTorch's recommended gains, not the mean-field critical `sigma_w`: tanh's
//! 5/3, for instance, is a heuristic, while the mean-field value (1 at `sigma_b = 0`) is
//! computed by quadrature in the theory crate, which depends on this one. No integrals here.

use crate::activation::Activation;
use crate::error::InitError;

/// Names [`calculate_gain`] accepts (PyTorch's spelling; `-` may replace `_`).
pub const GAIN_NAMES: &[&str] = &[
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
];

/// PyTorch's gain for `nonlinearity`, exactly as `torch.nn.init.calculate_gain`:
///
/// | nonlinearity | gain |
/// |---|---|
/// | linear, conv{1,2,3}d, conv_transpose{1,2,3}d, sigmoid | 1 |
/// | tanh | 5/3 |
/// | relu | sqrt(2) |
/// | leaky_relu | sqrt(2 / (1 + s^2)), `s = param`, default 0.01 |
/// | selu | 3/4 |
///
/// `param` is read only by `leaky_relu` (PyTorch ignores it for the others, and so do we).
///
/// ```
/// use sigprop_init::calculate_gain;
/// assert_eq!(calculate_gain("tanh", None).unwrap(), 5.0 / 3.0);
/// assert_eq!(calculate_gain("relu", None).unwrap(), 2f64.sqrt());
/// assert_eq!(calculate_gain("leaky_relu", Some(0.2)).unwrap(), (2.0 / 1.04f64).sqrt());
/// ```
pub fn calculate_gain(nonlinearity: &str, param: Option<f64>) -> Result<f64, InitError> {
    let name = nonlinearity.trim().to_ascii_lowercase().replace('-', "_");
    match name.as_str() {
        "linear" | "conv1d" | "conv2d" | "conv3d" | "conv_transpose1d" | "conv_transpose2d"
        | "conv_transpose3d" | "sigmoid" => Ok(1.0),
        "tanh" => Ok(5.0 / 3.0),
        "relu" => Ok(2f64.sqrt()),
        "leaky_relu" => {
            let s = param.unwrap_or(0.01);
            if !s.is_finite() {
                return Err(InitError::BadValue {
                    what: "gain",
                    name: name.clone(),
                    key: "param".into(),
                    value: s.to_string(),
                    allowed: "a finite negative slope".into(),
                });
            }
            Ok((2.0 / (1.0 + s * s)).sqrt())
        }
        "selu" => Ok(0.75),
        _ => Err(InitError::UnknownName {
            what: "nonlinearity",
            name: nonlinearity.to_string(),
            allowed: GAIN_NAMES.join(", "),
        }),
    }
}

/// The [`calculate_gain`] value for one of our activations, where PyTorch defines one
/// (linear, sigmoid, tanh, relu, leaky-relu with its slope, selu); `None` for the others
/// (ELU, GELU, SiLU, ...), whose gain the theory crate computes numerically.
pub fn gain_for(act: &Activation) -> Option<f64> {
    let (name, param) = match *act {
        Activation::Linear => ("linear", None),
        Activation::Sigmoid => ("sigmoid", None),
        Activation::Tanh => ("tanh", None),
        Activation::Relu => ("relu", None),
        Activation::LeakyRelu { slope } => ("leaky_relu", Some(slope)),
        Activation::Selu => ("selu", None),
        // Scaled to unit second moment already (TAT, DKS): the linear gain.
        Activation::TatLeakyRelu { .. } | Activation::Dks { .. } => ("linear", None),
        _ => return None,
    };
    calculate_gain(name, param).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gain_table_matches_pytorch_exactly() {
        for n in [
            "linear",
            "conv1d",
            "conv2d",
            "conv3d",
            "conv_transpose1d",
            "conv_transpose2d",
        ] {
            assert_eq!(calculate_gain(n, None).unwrap(), 1.0, "{n}");
        }
        assert_eq!(calculate_gain("conv_transpose3d", None).unwrap(), 1.0);
        assert_eq!(calculate_gain("sigmoid", Some(3.0)).unwrap(), 1.0);
        assert_eq!(calculate_gain("tanh", None).unwrap(), 5.0 / 3.0);
        assert_eq!(
            calculate_gain("relu", None).unwrap(),
            std::f64::consts::SQRT_2
        );
        assert_eq!(calculate_gain("selu", None).unwrap(), 0.75);
        // PyTorch: math.sqrt(2.0 / (1 + 0.01 ** 2)) = 1.4141428569978354.
        assert_eq!(
            calculate_gain("leaky_relu", None).unwrap(),
            1.414_142_856_997_835_4
        );
        assert_eq!(
            calculate_gain("leaky-relu", Some(0.0)).unwrap(),
            std::f64::consts::SQRT_2
        );
        assert_eq!(calculate_gain("leaky_relu", Some(1.0)).unwrap(), 1.0);
    }

    #[test]
    fn unknown_nonlinearity_names_the_table() {
        let e = calculate_gain("gelu", None).unwrap_err().to_string();
        assert!(e.contains("gelu") && e.contains("leaky_relu"), "{e}");
        assert!(calculate_gain("leaky_relu", Some(f64::NAN)).is_err());
    }

    #[test]
    fn activations_map_onto_the_table() {
        assert_eq!(gain_for(&Activation::Tanh), Some(5.0 / 3.0));
        assert_eq!(
            gain_for(&Activation::LeakyRelu { slope: 0.2 }),
            Some((2.0 / 1.04f64).sqrt())
        );
        assert_eq!(gain_for(&Activation::Selu), Some(0.75));
        assert_eq!(gain_for(&Activation::Gelu), None);
    }
}
