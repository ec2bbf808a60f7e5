//! Pre-activation residual MLP: `x^k = x^(k-1) + branch_k(x^(k-1))`, `k = 1..depth`, a
//! branch `u_0 = x^(k-1)`, `u_i = phi(u_(i-1)) W_(k,i) + b_(k,i)` for `i = 1..m`. Sites per
//! block: `branch.i` (the activation feeding `W_(k,i)`) and `out` (the block output).
//! The scaled branch output before the add is a site of its own (`branch`, no activation).
//! `--branch-scale` multiplies each branch by alpha (1, a number, 1/sqrt(L), or a learnable
//! alpha = 0 for ReZero and SkipInit); `--shortcut none` drops the skip. With `--norm`, each
//! branch site's input is normalized (`pre`) or the block output is
//! (`post`). Under Fixup the per-unit biases give way to scalar biases and a multiplier that are 0
//! and 1 at initialization and so change no value: they are not materialised.

use burn::tensor::Tensor;
use sigprop_init::{Activation, FixupContext, FixupRole, Scheme};

use super::{Architecture, LinearIds, LsuvLayer, ParamBuilder, ParamId, TheoryKind};
use crate::config::{BranchScale, Norm, NormPosition, Shortcut};
use crate::config::{NetConfig, ResolvedNet};
use crate::forward::{DeviceParams, Recorder, SiteIn, WeightGrad, linear, normalize};

/// The residual MLP.
pub(crate) struct Resmlp;

/// One block's handles: its branch's linear maps and, for ReZero and SkipInit, its
/// learnable branch multiplier.
pub(crate) struct Block {
    branch: Vec<LinearIds>,
    alpha: Option<ParamId>,
}

impl Architecture for Resmlp {
    type Layout = Vec<Block>;

    fn declare(&self, b: &mut ParamBuilder<'_>) -> Self::Layout {
        let net = b.net;
        let (depth, m, w) = (net.config.depth, net.config.branch_layers, net.config.width);
        let fixup = net.is_fixup();
        (1..=depth)
            .map(|k| {
                let branch = (1..=m)
                    .map(|i| {
                        let role = if i == m {
                            FixupRole::BranchLast
                        } else {
                            FixupRole::BranchInner
                        };
                        let fx = fixup.then_some(FixupContext {
                            num_branches: depth,
                            layers_per_branch: m,
                            role,
                        });
                        let ctx = b.ctx(fx);
                        let prefix = format!("blocks.{k}.branch.{i}");
                        b.linear(&prefix, (w, w), &net.weight_init, ctx, !fixup)
                    })
                    .collect();
                let alpha = net
                    .config
                    .branch_scale
                    .learnable()
                    .then(|| b.scalar(&format!("blocks.{k}.alpha"), &Scheme::Zeros));
                Block { branch, alpha }
            })
            .collect()
    }

    fn input_shape(&self, net: &ResolvedNet, batch: usize) -> [usize; 2] {
        [batch, net.config.width]
    }

    fn output_features(&self, net: &ResolvedNet) -> usize {
        net.config.width
    }

    fn forward<R: Recorder>(
        &self,
        net: &ResolvedNet,
        blocks: &Self::Layout,
        p: &DeviceParams,
        x: Tensor<2>,
        rec: &mut R,
    ) -> Tensor<2> {
        let (norm, position) = (net.config.norm, net.config.norm_position);
        let (pre, post) = match position {
            NormPosition::Pre => (norm, Norm::None),
            NormPosition::Post => (Norm::None, norm),
        };
        let scale = net.config.branch_scale;
        let fixed = scale.at_init(net.config.depth);
        let mut x = x;
        for (k, block) in blocks.iter().enumerate() {
            let mut u = x.clone();
            for (i, ids) in block.branch.iter().enumerate() {
                let site = format!("branch.{}", i + 1);
                let s = SiteIn {
                    site: &site,
                    layer: k + 1,
                    act: net.activation,
                    weight: Some(WeightGrad::Leaf(ids.weight)),
                    scale: None,
                };
                let h = rec.site(s, normalize(pre, u));
                u = linear(p, *ids, h);
            }
            let u = match (block.alpha, scale) {
                (Some(alpha), _) => u * p.scalar(alpha),
                (None, BranchScale::One) => u,
                (None, _) => u.mul_scalar(fixed),
            };
            // The scaled branch before the add: its own site, for signal-propagation plots.
            let s = SiteIn {
                site: "branch",
                layer: k + 1,
                act: Activation::Linear,
                weight: None,
                scale: block.alpha,
            };
            let u = rec.site(s, u);
            let sum = match net.config.shortcut {
                Shortcut::Identity => x + u,
                Shortcut::None => u,
            };
            let out = normalize(post, sum);
            let s = SiteIn {
                site: "out",
                layer: k + 1,
                act: Activation::Linear,
                weight: None,
                scale: None,
            };
            x = rec.site(s, out);
        }
        x
    }

    fn lsuv_layers(&self, _: &Self::Layout) -> Option<Vec<LsuvLayer>> {
        None
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

    fn own_keys(&self) -> &'static [&'static str] {
        &[
            "branch-layers",
            "norm",
            "norm-position",
            "branch-scale",
            "shortcut",
        ]
    }

    fn theory(&self, cfg: &NetConfig) -> TheoryKind {
        if cfg.norm != Norm::None {
            return TheoryKind::None;
        }
        let alpha = cfg.branch_scale.at_init(cfg.depth);
        TheoryKind::Residual {
            branch_layers: cfg.branch_layers,
            alpha2: alpha * alpha,
            shortcut: cfg.shortcut == Shortcut::Identity,
        }
    }

    fn pass_sizes(&self, cfg: &NetConfig, b: f64) -> [f64; 4] {
        let (n, depth, m) = (cfg.width as f64, cfg.depth as f64, cfg.branch_layers as f64);
        [
            depth * m * (n * n + n),
            depth * (m + 2.0) * b * n,
            b * n,
            0.0,
        ]
    }
}
