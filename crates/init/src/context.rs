//! What a fill may need to know about the network around the tensor, and the parameters
//! the network crate reads back from a scheme (LSUV, critical, Fixup).
//!
//! The initializer crate does not compute a critical `sigma_w` (that is the theory crate's
//! quadrature) and does not run LSUV's data-dependent loop (that needs a forward pass): the
//! network crate supplies the first through [`FillContext`] and runs the second from
//! [`LsuvParams`].

use crate::activation::Activation;
use crate::error::InitError;

/// Network context for one fill.
#[derive(Debug, Clone, PartialEq)]
pub struct FillContext {
    /// The activation that follows the layer.
    pub activation: Activation,
    /// The `sigma_w` with `chi_1 = 1` for this activation and the scheme's `sigma_b`
    /// (needed by `critical`).
    pub critical_sigma_w: Option<f64>,
    /// Where the tensor sits in a residual network (needed by `fixup`).
    pub fixup: Option<FixupContext>,
    /// The residual stream around the tensor (read by `gpt2`, `small-init`, `t-fixup` and
    /// `deepnet`).
    pub residual: Option<ResidualContext>,
    /// The layer's scales under `autoinit` (computed by the theory crate for the
    /// activation; needed by `autoinit`).
    pub autoinit: Option<AutoInitLayer>,
}

/// One layer's part of an `autoinit` plan: what its weights and biases are drawn with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoInitLayer {
    /// Weight variance times fan-in: `W ~ N(0, sigma_w2 / fan_in)`.
    pub sigma_w2: f64,
    /// Bias variance: `b ~ N(0, sigma_b2)` (zeros when 0).
    pub sigma_b2: f64,
    /// Whether each output unit's incoming weights are centred (row sums exactly 0, the
    /// variance kept), so the mean of the incoming activations cancels.
    pub center: bool,
}

/// A weight's place relative to a residual stream: what `gpt2`, `small-init`, `t-fixup`
/// and `deepnet` read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResidualContext {
    /// Blocks of the network, `N` in T-Fixup's and DeepNet's formulas (a transformer block
    /// holds an attention and an MLP branch).
    pub blocks: usize,
    /// Residual branches adding into the stream over the whole network (a transformer:
    /// two per block, one with `--attention-only`; a residual MLP or CNN: one per block).
    pub branches: usize,
    /// Features of the stream (a transformer's d-model).
    pub width: usize,
    /// Whether this weight writes into the stream: a branch's last map (a transformer's
    /// attention output projection and MLP down projection).
    pub writes_stream: bool,
    /// Whether this weight computes attention scores (a query or key projection), which
    /// T-Fixup and DeepNet leave at Xavier gain 1.
    pub scores: bool,
}

impl FillContext {
    /// A context that knows only the activation.
    pub fn new(activation: Activation) -> FillContext {
        FillContext {
            activation,
            critical_sigma_w: None,
            fixup: None,
            residual: None,
            autoinit: None,
        }
    }

    /// The same context with a critical `sigma_w`.
    pub fn with_critical_sigma_w(mut self, sigma_w: f64) -> FillContext {
        self.critical_sigma_w = Some(sigma_w);
        self
    }

    /// The same context with a residual-stream position.
    pub fn with_residual(mut self, residual: ResidualContext) -> FillContext {
        self.residual = Some(residual);
        self
    }

    /// The same context with a Fixup position.
    pub fn with_fixup(mut self, fixup: FixupContext) -> FillContext {
        self.fixup = Some(fixup);
        self
    }
}

/// A tensor's position in a residual network, for Fixup (Zhang et al. 2019).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixupContext {
    /// `L`, the number of residual branches.
    pub num_branches: usize,
    /// `m`, the number of weight layers in each branch.
    pub layers_per_branch: usize,
    /// What this tensor is.
    pub role: FixupRole,
}

/// Which Fixup rule a tensor follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixupRole {
    /// A weight layer inside a branch, not its last: He-normal times `L^(-1/(2m-2))`.
    BranchInner,
    /// The last weight layer of a branch: zeros.
    BranchLast,
    /// The classification head (last layer of the network): zeros.
    Head,
}

impl FixupContext {
    /// Fixup's multiplier for inner branch layers, `L^(-1/(2m-2))`.
    ///
    /// With `m = 1` a branch's only layer is its last (zero-initialised), so there is no
    /// inner layer to scale: asking for one is an error rather than a division by zero.
    pub fn inner_scale(&self) -> Result<f64, InitError> {
        if self.num_branches == 0 || self.layers_per_branch < 2 {
            return Err(InitError::NeedsContext {
                name: "fixup".into(),
                needs: format!(
                    "num_branches >= 1 and layers_per_branch >= 2 for a branch-inner layer \
                     (got L={}, m={}; with m=1 the only layer is the zero-initialised last one)",
                    self.num_branches, self.layers_per_branch
                ),
            });
        }
        let m = self.layers_per_branch as f64;
        Ok((self.num_branches as f64).powf(-1.0 / (2.0 * m - 2.0)))
    }
}

/// Parameters of LSUV (Mishkin & Matas 2015), run by the network crate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LsuvParams {
    /// Stop when `|Var - 1| < tol`.
    pub tol: f64,
    /// At most this many rescalings per layer.
    pub max_iter: usize,
    /// Which variance is driven to 1.
    pub target: LsuvTarget,
}

impl Default for LsuvParams {
    fn default() -> Self {
        LsuvParams {
            tol: 0.1,
            max_iter: 10,
            target: LsuvTarget::Preact,
        }
    }
}

/// The tensor LSUV normalises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LsuvTarget {
    /// The pre-activation `z^l` (the paper's choice: the layer's output before `phi`).
    Preact,
    /// The activation `h^l`.
    Act,
}

impl LsuvTarget {
    /// Spec text.
    pub fn as_str(&self) -> &'static str {
        match self {
            LsuvTarget::Preact => "preact",
            LsuvTarget::Act => "act",
        }
    }
}

/// The weight law of the `critical` scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CriticalDistribution {
    /// `W ~ N(0, sigma_w^2 / fan_in)`.
    Normal,
    /// Haar orthogonal times `sigma_w`.
    Orthogonal,
}

impl CriticalDistribution {
    /// Spec text.
    pub fn as_str(&self) -> &'static str {
        match self {
            CriticalDistribution::Normal => "normal",
            CriticalDistribution::Orthogonal => "orthogonal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixup_scale_is_l_to_the_minus_one_over_2m_minus_2() {
        let c = FixupContext {
            num_branches: 16,
            layers_per_branch: 3,
            role: FixupRole::BranchInner,
        };
        assert!((c.inner_scale().unwrap() - 0.5).abs() < 1e-15); // 16^(-1/4)
        let c = FixupContext {
            num_branches: 9,
            layers_per_branch: 2,
            role: FixupRole::BranchInner,
        };
        assert!((c.inner_scale().unwrap() - 1.0 / 3.0).abs() < 1e-15); // 9^(-1/2)
        let c1 = FixupContext {
            num_branches: 9,
            layers_per_branch: 1,
            role: FixupRole::BranchInner,
        };
        let e = c1.inner_scale().unwrap_err().to_string();
        assert!(e.contains("m=1"), "{e}");
    }
}

/// The initializers a meta-learned scheme may start from: plain laws that need no context.
pub const TUNE_BASE_NAMES: &[&str] = &[
    "xavier-normal",
    "xavier-uniform",
    "lecun-normal",
    "lecun-uniform",
    "he-normal",
    "he-uniform",
    "orthogonal",
    "pytorch-default",
];

/// Parameters of MetaInit (Dauphin & Schoenholz 2019), run by the network crate: the norm
/// of every weight tensor (two or more dimensions) is tuned from `base` by signSGD with
/// momentum on its logarithm, to lower the gradient quotient.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaInitParams {
    /// The initializer whose draws are rescaled (one of [`TUNE_BASE_NAMES`]).
    pub base: Box<crate::scheme::Scheme>,
    /// Optimisation steps (default 100).
    pub steps: usize,
    /// Step of the log-norm per unit of momentum (default 0.01).
    pub lr: f64,
    /// Momentum of the sign updates, in `[0, 1)` (default 0.9).
    pub momentum: f64,
    /// The quotient's guard against division by a vanishing gradient (default 1e-5).
    pub eps: f64,
}

impl MetaInitParams {
    /// The defaults around `base`.
    pub fn new(base: crate::scheme::Scheme) -> Self {
        MetaInitParams {
            base: Box::new(base),
            steps: 100,
            lr: 0.01,
            momentum: 0.9,
            eps: 1e-5,
        }
    }
}

/// The optimizer whose first step GradInit looks ahead through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GradInitOpt {
    /// `theta - eta g`; the gradient bound is on `||g||_2`.
    Sgd,
    /// Adam's first step, `theta - eta sign(g)`; the bound is on `||g||_1`.
    Adam,
}

impl GradInitOpt {
    /// Spec text.
    pub fn as_str(&self) -> &'static str {
        match self {
            GradInitOpt::Sgd => "sgd",
            GradInitOpt::Adam => "adam",
        }
    }
}

/// Parameters of GradInit (Zhu et al. 2021), run by the network crate: one scale per
/// weight tensor, learned by Adam so that one optimizer step from the scaled weights lowers
/// the loss on a second batch most, while the gradient's norm stays under `gamma`.
#[derive(Debug, Clone, PartialEq)]
pub struct GradInitParams {
    /// The initializer whose draws are rescaled (one of [`TUNE_BASE_NAMES`]).
    pub base: Box<crate::scheme::Scheme>,
    /// Optimisation steps (default 100).
    pub steps: usize,
    /// Adam's learning rate for the scales (default 0.01).
    pub lr: f64,
    /// The looked-ahead step's learning rate (default 0.1).
    pub eta: f64,
    /// The bound on the gradient's norm (default 1).
    pub gamma: f64,
    /// The looked-ahead optimizer.
    pub opt: GradInitOpt,
    /// The smallest scale allowed (default 0.01).
    pub alpha_min: f64,
}

impl GradInitParams {
    /// The defaults around `base`.
    pub fn new(base: crate::scheme::Scheme) -> Self {
        GradInitParams {
            base: Box::new(base),
            steps: 100,
            lr: 0.01,
            eta: 0.1,
            gamma: 1.0,
            opt: GradInitOpt::Sgd,
            alpha_min: 0.01,
        }
    }
}
