//! Residual CNN: `x^k = x^(k-1) + alpha * branch_k(x^(k-1))`, `k = 1..depth`, on
//! `width` channels of `image-size`-square images, each branch `m` same-padded convolutions
//! in pre-activation order (`u_i = conv(phi(u_(i-1)))`, `u_0 = x^(k-1)`), as in the
//! pre-activation ResNets of He et al. 2016 and the NF-ResNets of Brock, De & Smith 2021.
//! Sites per block as in `resmlp`: `branch.i`, `branch` (the scaled branch before the
//! add) and `out`; the residual options (`norm`, `norm-position`, `branch-scale`,
//! `shortcut`) mean what they mean there, BatchNorm per channel over batch and pixels.

#[cfg(feature = "burn")]
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use sigprop_init::Scheme;

use super::cnn::{GROUPS_SETTING, IMAGE_SIZE_SETTING, KERNEL_SETTING, check_conv};
#[cfg(feature = "burn")]
use super::resmlp::ResidualOpts;
use super::resmlp::{Block, branch_ctx, check_fixup, declare_blocks};
use super::Capabilities;
use super::{
    Architecture, ConvIds, LsuvLayer, ParamBuilder, Setting, TheoryKind, positive,
};
use super::{NetConfig, ResolvedNet};
use crate::options::{BRANCH_LAYERS_SETTING, BRANCH_SCALE_SETTING, BranchScale, NORM_POSITION_SETTING, NORM_SETTING, Norm, NormPosition, SHORTCUT_SETTING, Shortcut};
use crate::error::NetError;
#[cfg(feature = "burn")]
use crate::forward::{DeviceParams, Recorder, conv, unit_conv};

/// The residual CNN and its own settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Rescnn {
    /// Kernel size (odd: same padding).
    pub kernel: usize,
    /// Side of the square input images.
    pub image_size: usize,
    /// Convolution groups (a divisor of the width).
    pub groups: usize,
    /// Convolutions per branch (`m`).
    pub branch_layers: usize,
    /// Normalization (none, batch, layer, rms).
    pub norm: Norm,
    /// Where the normalization sits: in the branch (`pre`) or on the block output (`post`).
    pub norm_position: NormPosition,
    /// The branch multiplier.
    pub branch_scale: BranchScale,
    /// With or without the skip connection.
    pub shortcut: Shortcut,
}

impl Default for Rescnn {
    fn default() -> Self {
        Rescnn {
            kernel: 3,
            image_size: 8,
            groups: 1,
            branch_layers: 2,
            norm: Norm::None,
            norm_position: NormPosition::Pre,
            branch_scale: BranchScale::One,
            shortcut: Shortcut::Identity,
        }
    }
}

impl Architecture for Rescnn {
    type Layout = Vec<Block<ConvIds>>;

    const SETTINGS: &'static [Setting] = &[
        KERNEL_SETTING,
        IMAGE_SIZE_SETTING,
        GROUPS_SETTING,
        BRANCH_LAYERS_SETTING,
        NORM_SETTING,
        NORM_POSITION_SETTING,
        BRANCH_SCALE_SETTING,
        SHORTCUT_SETTING,
    ];

    fn validate(&self, cfg: &NetConfig, weight_init: &Scheme) -> Result<(), NetError> {
        check_conv(cfg.width, self.kernel, self.image_size, self.groups)?;
        positive("branch-layers", self.branch_layers)?;
        check_fixup(cfg, weight_init, self.branch_scale, self.shortcut)
    }

    fn norm(&self) -> Norm {
        self.norm
    }

    fn declare(&self, b: &mut ParamBuilder<'_>) -> Self::Layout {
        let (depth, c) = (b.net.config.depth, b.net.config.width);
        let (m, g, k) = (self.branch_layers, self.groups, self.kernel);
        // Fixup: no per-channel biases (its scalar biases are 0 at initialization).
        let fixup = b.net.is_fixup();
        declare_blocks(b, (depth, m), self.branch_scale, |b, block, i| {
            let ctx = branch_ctx(b, (depth, m, c), i);
            b.conv(&format!("blocks.{block}.branch.{i}"), (c, g, k), ctx, !fixup)
        })
    }

    fn input_shape(&self, net: &ResolvedNet, batch: usize) -> [usize; 2] {
        [batch, self.output_features(&net.config)]
    }

    fn output_features(&self, cfg: &NetConfig) -> usize {
        // Saturating: the memory estimate asks before any size is checked.
        cfg.width
            .saturating_mul(self.image_size)
            .saturating_mul(self.image_size)
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
        let (c, s) = (net.config.width, self.image_size);
        let batch = x.dims()[0];
        let opts = ResidualOpts {
            norm: self.norm,
            position: self.norm_position,
            scale: self.branch_scale,
            shortcut: self.shortcut,
        };
        let x: Tensor<4> = x.reshape([batch, c, s, s]);
        let unit = net.unit_scaled();
        let out = opts.forward(net, blocks, p, x, rec, |ids| ids.weight, |ids, h| {
            if unit {
                unit_conv(p, ids, self.kernel, self.groups, h)
            } else {
                conv(p, ids, self.kernel, self.groups, h)
            }
        });
        out.reshape([batch, c * s * s])
    }

    fn lsuv_layers(&self, _: &Self::Layout) -> Option<Vec<LsuvLayer>> {
        None
    }

    fn theory(&self, cfg: &NetConfig) -> TheoryKind {
        if self.norm != Norm::None || self.branch_scale == BranchScale::Umup {
            return TheoryKind::None;
        }
        let alpha = self.branch_scale.at_init(cfg.depth);
        TheoryKind::ResidualConv {
            branch_layers: self.branch_layers,
            alpha2: alpha * alpha,
            shortcut: self.shortcut == Shortcut::Identity,
            kernel: self.kernel,
            image_size: self.image_size,
            groups: self.groups,
        }
    }

    fn branch_scale(&self) -> Option<BranchScale> {
        Some(self.branch_scale)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            residual: true,
            structured_inits: &[("delta-orthogonal", "orthogonal kernel centre")],
            own_inits: &[("fixup", "residual, zero branch ends")],
            ..Capabilities::PLAIN
        }
    }

    fn matrix_uses(&self) -> Option<f64> {
        Some((self.image_size * self.image_size) as f64)
    }

    fn describe(&self) -> &'static str {
        "pre-activation residual CNN (NF-ResNet style options); rows per block output and branch site"
    }

    fn primary_site(&self) -> &'static str {
        "out"
    }

    fn axis_name(&self) -> &'static str {
        "residual block"
    }

    fn pass_sizes(&self, cfg: &NetConfig, b: f64) -> [f64; 4] {
        let (n, depth, m) = (
            cfg.width as f64,
            cfg.depth as f64,
            self.branch_layers as f64,
        );
        let (s, k) = (self.image_size as f64, self.kernel as f64);
        let g = (self.groups as f64).max(1.0);
        let pixels = b * n * s * s;
        [
            depth * m * (n * (n / g).max(1.0) * k * k + n),
            depth * (m + 2.0) * pixels,
            pixels,
            pixels * k * k,
        ]
    }
}
