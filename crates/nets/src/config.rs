//! What network to build: architecture, sizes, activation and initializers, validated.
//!
//! `NetConfig` is the serialisable record (the runner writes it next to every CSV);
//! [`NetConfig::resolve`] parses its specs and checks every size once, so the builders never
//! see a zero width or an unknown name. Not the experiment grid: that lives in the runner.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sigprop_init::{Activation, InitError, Scheme};

use crate::error::NetError;

/// The architectures sigprop builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// Fully connected: `z^l = h^(l-1) W^l + b^l`, `h^l = phi(z^l)`.
    Mlp,
    /// Pre-activation residual MLP: `x^(k+1) = x^k + branch(x^k)`, `m` linear layers a branch.
    Resmlp,
    /// Stack of same-padded 2-D convolutions over `width` channels.
    Cnn,
    /// Vanilla RNN unrolled over `depth` time steps; a layer is a time step.
    Rnn,
}

/// Names accepted by `--arch`.
pub const ARCH_NAMES: &[&str] = &["mlp", "resmlp", "cnn", "rnn"];

impl Arch {
    /// The spec name.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Mlp => "mlp",
            Arch::Resmlp => "resmlp",
            Arch::Cnn => "cnn",
            Arch::Rnn => "rnn",
        }
    }

    /// One-line description for `sigprop list archs`.
    pub fn describe(self) -> &'static str {
        match self {
            Arch::Mlp => "fully connected; a layer is one linear map and its activation",
            Arch::Resmlp => {
                "pre-activation residual MLP (optionally Fixup); rows per block output and branch site"
            }
            Arch::Cnn => "same-padded 3x3 (--kernel) convolutions on --image-size images",
            Arch::Rnn => "vanilla RNN unrolled over --depth time steps; a layer is a time step",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mlp" => Ok(Arch::Mlp),
            "resmlp" => Ok(Arch::Resmlp),
            "cnn" => Ok(Arch::Cnn),
            "rnn" => Ok(Arch::Rnn),
            other => Err(NetError::UnknownArch {
                name: other.to_string(),
                allowed: ARCH_NAMES.join(", "),
            }),
        }
    }
}

/// The loss whose gradient enters the backward pass (THEORY.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// `L = sum g * h^depth`, `g ~ N(0,1)`: `dL/dh^depth = g` exactly (the default).
    Projection,
    /// `L = 1/2 sum (h^depth - y)^2` to targets `y ~ N(0,1)`: `dL/dh^depth = h - y`.
    Mse,
    /// Summed cross-entropy of a linear head (10 classes, LeCun-normal, zero under Fixup)
    /// on uniformly random labels.
    CrossEntropy,
}

impl Loss {
    /// The spec name.
    pub fn name(self) -> &'static str {
        match self {
            Loss::Projection => "projection",
            Loss::Mse => "mse",
            Loss::CrossEntropy => "cross-entropy",
        }
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Loss {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "projection" => Ok(Loss::Projection),
            "mse" => Ok(Loss::Mse),
            "cross-entropy" | "ce" => Ok(Loss::CrossEntropy),
            other => Err(NetError::UnknownLoss {
                name: other.to_string(),
            }),
        }
    }
}

/// One network to build, as the user wrote it (specs as strings, so it serialises as typed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetConfig {
    /// Architecture.
    pub arch: Arch,
    /// Layers (mlp, cnn), residual blocks (resmlp) or time steps (rnn).
    pub depth: usize,
    /// Units (mlp, resmlp, rnn) or channels (cnn), the same at every layer.
    pub width: usize,
    /// MLP only: explicit widths `N_0..N_depth` (length depth + 1), overriding `width`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widths: Option<Vec<usize>>,
    /// Activation spec, e.g. `tanh` or `leaky-relu:slope=0.2`.
    pub activation: String,
    /// Weight initializer spec, e.g. `he-normal`.
    pub weight_init: String,
    /// Bias initializer spec, e.g. `zeros` or `normal:std=0.1`.
    pub bias_init: String,
    /// RNN only: the hidden-to-hidden initializer (input-to-hidden uses `weight_init`).
    pub hidden_init: String,
    /// Residual MLP: linear layers per branch (`m`).
    pub branch_layers: usize,
    /// CNN: kernel size (odd).
    pub kernel: usize,
    /// CNN: input image side.
    pub image_size: usize,
    /// CNN: convolution groups (divides `width`).
    pub groups: usize,
    /// Loss.
    pub loss: Loss,
}

impl NetConfig {
    /// A config with the defaults for everything but the essentials.
    pub fn new(
        arch: Arch,
        depth: usize,
        width: usize,
        activation: &str,
        weight_init: &str,
    ) -> Self {
        NetConfig {
            arch,
            depth,
            width,
            widths: None,
            activation: activation.to_string(),
            weight_init: weight_init.to_string(),
            bias_init: "zeros".to_string(),
            hidden_init: "orthogonal".to_string(),
            branch_layers: 2,
            kernel: 3,
            image_size: 8,
            groups: 1,
            loss: Loss::Projection,
        }
    }

    /// Parse the specs and check every size.
    pub fn resolve(&self) -> Result<ResolvedNet, NetError> {
        let positive = |key: &'static str, v: usize| {
            if v == 0 {
                Err(NetError::BadConfig {
                    key,
                    value: "0".into(),
                    allowed: "a whole number > 0".into(),
                })
            } else {
                Ok(())
            }
        };
        positive("depth", self.depth)?;
        positive("width", self.width)?;
        let widths = match (&self.widths, self.arch) {
            (Some(w), Arch::Mlp) => {
                if w.len() != self.depth + 1 || w.contains(&0) {
                    return Err(NetError::BadConfig {
                        key: "widths",
                        value: format!("{w:?}"),
                        allowed: format!("{} positive widths (N_0..N_depth)", self.depth + 1),
                    });
                }
                w.clone()
            }
            (Some(_), arch) => {
                return Err(NetError::BadConfig {
                    key: "widths",
                    value: arch.to_string(),
                    allowed: "a list of widths only with arch mlp".into(),
                });
            }
            (None, _) => vec![self.width; self.depth + 1],
        };
        let parse_scheme = |key: &'static str, s: &str| -> Result<Scheme, NetError> {
            s.parse::<Scheme>()
                .map_err(|e: InitError| NetError::init(key, e))
        };
        let activation = self
            .activation
            .parse::<Activation>()
            .map_err(|e| NetError::init("activation", e))?;
        let weight_init = parse_scheme("init", &self.weight_init)?;
        let bias_init = parse_scheme("bias-init", &self.bias_init)?;
        let hidden_init = parse_scheme("hidden-init", &self.hidden_init)?;
        match self.arch {
            Arch::Resmlp => positive("branch-layers", self.branch_layers)?,
            Arch::Cnn => {
                positive("image-size", self.image_size)?;
                positive("groups", self.groups)?;
                if self.kernel.is_multiple_of(2) {
                    return Err(NetError::BadConfig {
                        key: "kernel",
                        value: self.kernel.to_string(),
                        allowed: "an odd kernel size (same padding)".into(),
                    });
                }
                if !self.width.is_multiple_of(self.groups) {
                    return Err(NetError::BadConfig {
                        key: "groups",
                        value: self.groups.to_string(),
                        allowed: format!("a divisor of width {}", self.width),
                    });
                }
            }
            _ => {}
        }
        if weight_init.needs_fixup() && self.arch != Arch::Resmlp {
            return Err(NetError::BadConfig {
                key: "init",
                value: self.weight_init.clone(),
                allowed: "fixup only with arch resmlp".into(),
            });
        }
        Ok(ResolvedNet {
            config: self.clone(),
            widths,
            activation,
            weight_init,
            bias_init,
            hidden_init,
        })
    }
}

/// A Burn config: `save` / `load` write and read it as JSON, so the record of a network is
/// its config (the runner also puts it in `manifest.json`). Implemented by hand rather than
/// derived because the derive would replace [`NetConfig::new`]'s defaults with builders.
impl burn::config::Config for NetConfig {}

/// A validated [`NetConfig`] with its specs parsed.
#[derive(Debug, Clone)]
pub struct ResolvedNet {
    /// The config it came from.
    pub config: NetConfig,
    /// `N_0..N_depth` (all equal to `width` except for an MLP with explicit widths).
    pub widths: Vec<usize>,
    /// Parsed activation.
    pub activation: Activation,
    /// Parsed weight scheme.
    pub weight_init: Scheme,
    /// Parsed bias scheme.
    pub bias_init: Scheme,
    /// Parsed RNN hidden-to-hidden scheme.
    pub hidden_init: Scheme,
}

impl ResolvedNet {
    /// True for a residual network in Fixup form (scalar biases and multiplier).
    pub fn is_fixup(&self) -> bool {
        self.config.arch == Arch::Resmlp && self.weight_init.needs_fixup()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::config::Config;

    #[test]
    fn a_config_saves_and_loads_as_its_own_record() {
        let mut c = NetConfig::new(Arch::Cnn, 4, 16, "leaky-relu:slope=0.2", "delta-orthogonal");
        c.groups = 2;
        c.loss = Loss::CrossEntropy;
        let path =
            std::env::temp_dir().join(format!("sigprop-netconfig-{}.json", std::process::id()));
        c.save(&path).unwrap();
        let back = NetConfig::load(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(back, c);
        assert!(back.resolve().is_ok());
    }
}
