//! A stack of same-padded 2-D convolutions over `width` channels on `image-size`-square
//! images: `h^l = phi(conv(h^(l-1)) + b^l)`. A layer is one convolution (site `conv`).

#[cfg(feature = "burn")]
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use sigprop_init::Scheme;

use super::Capabilities;
use super::{
    Architecture, ConvIds, LsuvLayer, ParamBuilder, Setting, SettingKind, TheoryKind, positive,
    refuse_fixup,
};
use super::{NetConfig, ResolvedNet};
use crate::options::{NORM_SETTING, Norm};
use crate::error::NetError;
#[cfg(feature = "burn")]
use crate::forward::{DeviceParams, Recorder, SiteIn, SiteKind, WeightGrad, conv, normalize};

/// The CNN and its own settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Cnn {
    /// Kernel size (odd: same padding).
    pub kernel: usize,
    /// Side of the square input images.
    pub image_size: usize,
    /// Convolution groups (a divisor of the width).
    pub groups: usize,
    /// Normalization of every pre-activation (BatchNorm per channel over batch and pixels).
    pub norm: Norm,
}

impl Default for Cnn {
    fn default() -> Self {
        Cnn {
            kernel: 3,
            image_size: 8,
            groups: 1,
            norm: Norm::None,
        }
    }
}

/// `kernel`: shared with the residual CNN.
pub(crate) const KERNEL_SETTING: Setting = Setting {
    key: "kernel",
    help: "Convolution kernel size, odd [default: 3]",
    kind: SettingKind::Whole,
    allowed: "an odd whole number (same padding)",
};

/// `image-size`: shared with the residual CNN.
pub(crate) const IMAGE_SIZE_SETTING: Setting = Setting {
    key: "image-size",
    help: "Side of the square input images [default: 8]",
    kind: SettingKind::Whole,
    allowed: "a whole number > 0",
};

/// `groups`: shared with the residual CNN.
pub(crate) const GROUPS_SETTING: Setting = Setting {
    key: "groups",
    help: "Convolution groups, a divisor of --width [default: 1]",
    kind: SettingKind::Whole,
    allowed: "a whole number > 0 that divides the width",
};

/// The checks of a convolution stack's sizes.
pub(crate) fn check_conv(
    width: usize,
    kernel: usize,
    image_size: usize,
    groups: usize,
) -> Result<(), NetError> {
    positive("image-size", image_size)?;
    positive("groups", groups)?;
    if kernel.is_multiple_of(2) {
        return Err(NetError::BadConfig {
            key: "kernel",
            value: kernel.to_string(),
            allowed: "an odd kernel size (same padding)".into(),
        });
    }
    if !width.is_multiple_of(groups) {
        return Err(NetError::BadConfig {
            key: "groups",
            value: groups.to_string(),
            allowed: format!("a divisor of width {width}"),
        });
    }
    Ok(())
}

impl Architecture for Cnn {
    /// One convolution per layer.
    type Layout = Vec<ConvIds>;

    const SETTINGS: &'static [Setting] = &[
        KERNEL_SETTING,
        IMAGE_SIZE_SETTING,
        GROUPS_SETTING,
        NORM_SETTING,
    ];

    fn validate(&self, cfg: &NetConfig, weight_init: &Scheme) -> Result<(), NetError> {
        check_conv(cfg.width, self.kernel, self.image_size, self.groups)?;
        refuse_fixup(cfg, weight_init)
    }

    fn norm(&self) -> Norm {
        self.norm
    }

    fn declare(&self, b: &mut ParamBuilder<'_>) -> Self::Layout {
        let cfg = &b.net.config;
        let (depth, c, g, k) = (cfg.depth, cfg.width, self.groups, self.kernel);
        (1..=depth)
            .map(|l| {
                let ctx = b.layer_ctx(l);
                b.conv(&format!("layers.{l}"), (c, g, k), ctx, true)
            })
            .collect()
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
        layers: &Self::Layout,
        p: &DeviceParams,
        x: Tensor<2>,
        rec: &mut R,
    ) -> Tensor<2> {
        let (c, s) = (net.config.width, self.image_size);
        let batch = x.dims()[0];
        let mut h: Tensor<4> = x.reshape([batch, c, s, s]);
        for (l, ids) in layers.iter().enumerate() {
            let z = normalize(self.norm, conv(p, *ids, self.kernel, self.groups, h));
            let site = SiteIn {
                site: "conv",
                layer: l + 1,
                kind: SiteKind::Activation(net.activation),
                weight: Some(WeightGrad::Leaf(ids.weight)),
                scale: None,
                tokens: None,
                attention: None,
                roles: Vec::new(),
                node: None,
            };
            h = rec.site(site, z);
        }
        h.reshape([batch, c * s * s])
    }

    fn lsuv_layers(&self, layers: &Self::Layout) -> Option<Vec<LsuvLayer>> {
        let conv = |&ids| LsuvLayer::Conv {
            ids,
            kernel: self.kernel,
            groups: self.groups,
            image_size: self.image_size,
        };
        Some(layers.iter().map(conv).collect())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            structured_inits: &[("delta-orthogonal", "orthogonal kernel centre")],
            ..Capabilities::PLAIN
        }
    }

    fn matrix_uses(&self) -> Option<f64> {
        Some((self.image_size * self.image_size) as f64)
    }

    fn describe(&self) -> &'static str {
        "same-padded 3x3 (--kernel) convolutions on --image-size images"
    }

    fn primary_site(&self) -> &'static str {
        "conv"
    }

    fn theory(&self, _: &NetConfig) -> TheoryKind {
        match self.norm {
            Norm::None => TheoryKind::Conv {
                kernel: self.kernel,
                image_size: self.image_size,
                groups: self.groups,
            },
            _ => TheoryKind::None,
        }
    }

    fn axis_name(&self) -> &'static str {
        "layer"
    }

    fn pass_sizes(&self, cfg: &NetConfig, b: f64) -> [f64; 4] {
        let (n, depth) = (cfg.width as f64, cfg.depth as f64);
        let (s, k) = (self.image_size as f64, self.kernel as f64);
        let g = (self.groups as f64).max(1.0);
        let pixels = b * n * s * s;
        // The convolution may unfold its input (pixels x k^2), one layer at a time.
        [
            depth * (n * (n / g).max(1.0) * k * k + n),
            depth * pixels,
            pixels,
            pixels * k * k,
        ]
    }
}
