//! Pre-activation residual MLP: `x^k = x^(k-1) + branch_k(x^(k-1))`, `k = 1..depth`, a
//! branch `u_0 = x^(k-1)`, `u_i = phi(u_(i-1)) W_(k,i) + b_(k,i)` for `i = 1..m`. Sites per
//! block: `branch.i` (the activation feeding `W_(k,i)`) and `out` (the block output).
//! The scaled branch output before the add is a site of its own (`branch`, no activation).
//! `--branch-scale` multiplies each branch by alpha (1, a number, 1/sqrt(L), 1/L, or a learnable
//! alpha = 0 for ReZero and SkipInit); `--shortcut none` drops the skip. With `--norm`, each
//! branch site's input is normalized (`pre`) or the block output is
//! (`post`). Under Fixup the per-unit biases give way to scalar biases and a multiplier that are 0
//! and 1 at initialization and so change no value: they are not materialised.

#[cfg(feature = "burn")]
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use sigprop_init::{FillContext, FixupContext, FixupRole, ResidualContext, Scheme};

use super::Capabilities;
use super::{
    Architecture, LinearIds, LsuvLayer, ParamBuilder, ParamId, Setting, TheoryKind,
    pair_cosine, positive,
};
use super::{NetConfig, ResolvedNet};
use crate::options::{BranchScale, Norm, NormPosition, Shortcut};
use crate::options::{
    BRANCH_LAYERS_SETTING, BRANCH_SCALE_SETTING, INPUT_CORR_SETTING, NORM_POSITION_SETTING,
    NORM_SETTING, SHORTCUT_SETTING,
};
use crate::error::NetError;
#[cfg(feature = "burn")]
use crate::forward::{
    DeviceParams, Recorder, SiteIn, SiteKind, WeightGrad, linear, normalize, scale_bwd, scale_fwd,
    unit_linear,
};

/// The residual MLP and its own settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Resmlp {
    /// Linear maps per branch (`m`).
    pub branch_layers: usize,
    /// Normalization (none, batch, layer, rms).
    pub norm: Norm,
    /// Where the normalization sits: in the branch (`pre`) or on the block output (`post`).
    pub norm_position: NormPosition,
    /// The branch multiplier.
    pub branch_scale: BranchScale,
    /// With or without the skip connection.
    pub shortcut: Shortcut,
    /// The exact cosine of each pair of inputs `(0, 1), (2, 3), ...` (inputs independent
    /// when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_corr: Option<f64>,
}

impl Default for Resmlp {
    fn default() -> Self {
        Resmlp {
            branch_layers: 2,
            norm: Norm::None,
            norm_position: NormPosition::Pre,
            branch_scale: BranchScale::One,
            shortcut: Shortcut::Identity,
            input_corr: None,
        }
    }
}

/// One block's handles: its branch's maps (`I`: linear or convolution handles) and, for
/// ReZero and SkipInit, its learnable branch multiplier.
pub(crate) struct Block<I> {
    pub branch: Vec<I>,
    pub alpha: Option<ParamId>,
}

#[cfg(feature = "burn")]
/// How a residual network's blocks are wired (shared by `resmlp` and `rescnn`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResidualOpts {
    pub norm: Norm,
    pub position: NormPosition,
    pub scale: BranchScale,
    pub shortcut: Shortcut,
}

#[cfg(feature = "burn")]
impl ResidualOpts {
    /// Run the blocks on `x`: per block `k`, each branch map `i` is fed by the site
    /// `branch.i` (its input normalized when `pre`, then the activation), the branch output
    /// times alpha is the site `branch`, and the sum (normalized when `post`) the site `out`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward<I: Copy, const D: usize, R: Recorder>(
        self,
        net: &ResolvedNet,
        blocks: &[Block<I>],
        p: &DeviceParams,
        x: Tensor<D>,
        rec: &mut R,
        weight: impl Fn(I) -> ParamId,
        map: impl Fn(I, Tensor<D>) -> Tensor<D>,
    ) -> Tensor<D> {
        let (pre, post) = match self.position {
            NormPosition::Pre => (self.norm, Norm::None),
            NormPosition::Post => (Norm::None, self.norm),
        };
        let fixed = self.scale.at_init(net.config.depth);
        let mut x = x;
        for (k, block) in blocks.iter().enumerate() {
            // Under u-muP the branch's input gradient is scaled by its weight b on the way
            // back (unit scaling's `residual_split`), its output by b on the way forward
            // (`residual_add`): inside the branch both directions stay unit.
            let add = self.scale.unit_add(k, blocks.len(), 1);
            let mut u = match add {
                Some((_, b)) => scale_bwd(x.clone(), b),
                None => x.clone(),
            };
            for (i, &ids) in block.branch.iter().enumerate() {
                let site = format!("branch.{}", i + 1);
                let s = SiteIn {
                    site: &site,
                    layer: k + 1,
                    kind: net.activation_site(),
                    weight: Some(WeightGrad::Leaf(weight(ids))),
                    scale: None,
                    tokens: None,
                    attention: None,
                    roles: Vec::new(),
                    node: None,
                };
                let h = rec.site(s, normalize(pre, u));
                u = map(ids, h);
            }
            let u = match (block.alpha, self.scale) {
                (Some(alpha), _) => u * p.scalar::<D>(alpha),
                (None, BranchScale::One | BranchScale::Umup) => u,
                (None, _) => u.mul_scalar(fixed),
            };
            // The scaled branch before the add: its own site, for signal-propagation plots
            // (under u-muP the branch's weight belongs to the add: the site is unit).
            let s = SiteIn {
                site: "branch",
                layer: k + 1,
                kind: SiteKind::Branch,
                weight: None,
                scale: block.alpha,
                tokens: None,
                attention: None,
                roles: Vec::new(),
                node: None,
            };
            let u = rec.site(s, u);
            let sum = match (self.shortcut, add) {
                (Shortcut::Identity, Some((a, b))) => x.mul_scalar(a) + scale_fwd(u, b),
                (Shortcut::Identity, None) => x + u,
                (Shortcut::None, _) => u,
            };
            let s = SiteIn {
                site: "out",
                layer: k + 1,
                kind: SiteKind::Sum,
                weight: None,
                scale: None,
                tokens: None,
                attention: None,
                roles: Vec::new(),
                node: None,
            };
            x = rec.site(s, normalize(post, sum));
        }
        x
    }
}

/// Declare `depth` blocks of `m` branch maps each (`map(b, k, i)` declares map `i` of block
/// `k`, both 1-based), with a learnable alpha per block for ReZero and SkipInit.
/// Fixup sets its own branch multipliers: it takes the default branch scale 1 and the
/// identity skip only.
pub(crate) fn check_fixup(
    cfg: &NetConfig,
    weight_init: &Scheme,
    scale: BranchScale,
    shortcut: Shortcut,
) -> Result<(), NetError> {
    if scale == BranchScale::Umup && shortcut != Shortcut::Identity {
        return Err(NetError::BadConfig {
            key: "shortcut",
            value: "none".into(),
            allowed: "identity with branch-scale umup (u-muP's add weighs the skip)".into(),
        });
    }
    if weight_init.needs_fixup() && (scale != BranchScale::One || shortcut != Shortcut::Identity) {
        return Err(NetError::BadConfig {
            key: "init",
            value: cfg.weight_init.clone(),
            allowed: "fixup with the default branch-scale 1 and shortcut identity (Fixup \
                      sets its own branch multipliers)"
                .into(),
        });
    }
    Ok(())
}

/// The fill context of map `i` of block `k`'s branch of `m` maps in a residual network of
/// `depth` blocks and `width` features: Fixup's role when the scheme is Fixup (the last map
/// zero, the others scaled), and the residual stream's place for the schemes that read it.
pub(crate) fn branch_ctx(
    b: &ParamBuilder<'_>,
    (depth, m, width): (usize, usize, usize),
    i: usize,
) -> FillContext {
    let role = if i == m {
        FixupRole::BranchLast
    } else {
        FixupRole::BranchInner
    };
    let fx = b.net.is_fixup().then_some(FixupContext {
        num_branches: depth,
        layers_per_branch: m,
        role,
    });
    b.ctx(fx).with_residual(ResidualContext {
        blocks: depth,
        branches: depth,
        width,
        writes_stream: i == m,
        scores: false,
    })
}

pub(crate) fn declare_blocks<I>(
    b: &mut ParamBuilder<'_>,
    (depth, m): (usize, usize),
    scale: BranchScale,
    mut map: impl FnMut(&mut ParamBuilder<'_>, usize, usize) -> I,
) -> Vec<Block<I>> {
    (1..=depth)
        .map(|k| {
            let branch = (1..=m).map(|i| map(b, k, i)).collect();
            let alpha = scale
                .learnable()
                .then(|| b.scalar(&format!("blocks.{k}.alpha"), &Scheme::Zeros));
            Block { branch, alpha }
        })
        .collect()
}

impl Architecture for Resmlp {
    type Layout = Vec<Block<LinearIds>>;

    const SETTINGS: &'static [Setting] = &[
        BRANCH_LAYERS_SETTING,
        NORM_SETTING,
        NORM_POSITION_SETTING,
        BRANCH_SCALE_SETTING,
        SHORTCUT_SETTING,
        INPUT_CORR_SETTING,
    ];

    fn validate(&self, cfg: &NetConfig, weight_init: &Scheme) -> Result<(), NetError> {
        positive("branch-layers", self.branch_layers)?;
        pair_cosine(self.input_corr)?;
        check_fixup(cfg, weight_init, self.branch_scale, self.shortcut)
    }

    fn norm(&self) -> Norm {
        self.norm
    }

    /// Batch normalization couples the rows of a batch; ReZero's and SkipInit's alpha is a
    /// learnable scalar.
    fn seed_batching(&self) -> bool {
        self.norm != Norm::Batch && !self.branch_scale.learnable()
    }

    fn declare(&self, b: &mut ParamBuilder<'_>) -> Self::Layout {
        let net = b.net;
        let (depth, m, w) = (net.config.depth, self.branch_layers, net.config.width);
        let fixup = net.is_fixup();
        declare_blocks(b, (depth, m), self.branch_scale, |b, k, i| {
            let ctx = branch_ctx(b, (depth, m, w), i);
            let prefix = format!("blocks.{k}.branch.{i}");
            b.linear(&prefix, (w, w), &net.weight_init, ctx, !fixup)
        })
    }

    fn input_shape(&self, net: &ResolvedNet, batch: usize) -> [usize; 2] {
        [batch, net.config.width]
    }

    fn output_features(&self, cfg: &NetConfig) -> usize {
        cfg.width
    }

#[cfg(feature = "burn")]
    fn forward<R: Recorder>(
        &self,
        net: &ResolvedNet,
        blocks: &Self::Layout,
        p: &DeviceParams,
        x: Tensor<2>,
        rec: &mut R,
    ) -> Tensor<2> {
        let opts = ResidualOpts {
            norm: self.norm,
            position: self.norm_position,
            scale: self.branch_scale,
            shortcut: self.shortcut,
        };
        let unit = net.unit_scaled();
        opts.forward(net, blocks, p, x, rec, |ids| ids.weight, |ids, h| {
            if unit {
                unit_linear(p, ids, h)
            } else {
                linear(p, ids, h)
            }
        })
    }

    fn lsuv_layers(&self, _: &Self::Layout) -> Option<Vec<LsuvLayer>> {
        None
    }

    fn branch_scale(&self) -> Option<BranchScale> {
        Some(self.branch_scale)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            residual: true,
            own_inits: &[("fixup", "residual, zero branch ends")],
            ..Capabilities::PLAIN
        }
    }

    fn matrix_uses(&self) -> Option<f64> {
        Some(1.0)
    }

    fn describe(&self) -> &'static str {
        "pre-activation residual MLP (optionally Fixup); rows per block output and branch site"
    }

    fn primary_site(&self) -> &'static str {
        "out"
    }

    fn axis_name(&self) -> &'static str {
        "residual block"
    }

    /// With `input-corr = c`: the MLP's pairs at an exact cosine.
    fn input(&self, seed: u64, shape: [usize; 2]) -> Result<Vec<f32>, NetError> {
        crate::inputs::paired_input(seed, shape, self.input_corr)
    }

    fn input_pair_corr(&self) -> Option<f64> {
        self.input_corr
    }

    fn theory(&self, cfg: &NetConfig) -> TheoryKind {
        if self.norm != Norm::None || self.branch_scale == BranchScale::Umup {
            return TheoryKind::None;
        }
        let alpha = self.branch_scale.at_init(cfg.depth);
        TheoryKind::Residual {
            branch_layers: self.branch_layers,
            alpha2: alpha * alpha,
            shortcut: self.shortcut == Shortcut::Identity,
        }
    }

    fn pass_sizes(&self, cfg: &NetConfig, b: f64) -> [f64; 4] {
        let (n, depth, m) = (cfg.width as f64, cfg.depth as f64, self.branch_layers as f64);
        [
            depth * m * (n * n + n),
            depth * (m + 2.0) * b * n,
            b * n,
            0.0,
        ]
    }
}
