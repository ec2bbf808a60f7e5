//! A stack of same-padded 2-D convolutions over `width` channels on `image-size`-square
//! images: `h^l = phi(conv(h^(l-1)) + b^l)`. A layer is one convolution (site `conv`).

use burn::tensor::Tensor;

use super::{Architecture, ConvIds, LsuvLayer, ParamBuilder};
use crate::config::{NetConfig, ResolvedNet};
use crate::forward::{DeviceParams, Recorder, SiteIn, WeightGrad, conv, normalize};

/// The CNN.
pub(crate) struct Cnn;

impl Architecture for Cnn {
    /// One convolution per layer.
    type Layout = Vec<ConvIds>;

    fn declare(&self, b: &mut ParamBuilder<'_>) -> Self::Layout {
        let cfg = &b.net.config;
        let (depth, c, g, k) = (cfg.depth, cfg.width, cfg.groups, cfg.kernel);
        (1..=depth)
            .map(|l| {
                let ctx = b.ctx(None);
                b.conv(&format!("layers.{l}"), c, g, k, ctx)
            })
            .collect()
    }

    fn input_shape(&self, net: &ResolvedNet, batch: usize) -> [usize; 2] {
        [batch, self.output_features(net)]
    }

    fn output_features(&self, net: &ResolvedNet) -> usize {
        let cfg = &net.config;
        cfg.width * cfg.image_size * cfg.image_size
    }

    fn forward<R: Recorder>(
        &self,
        net: &ResolvedNet,
        layers: &Self::Layout,
        p: &DeviceParams,
        x: Tensor<2>,
        rec: &mut R,
    ) -> Tensor<2> {
        let cfg = &net.config;
        let (c, s) = (cfg.width, cfg.image_size);
        let batch = x.dims()[0];
        let mut h: Tensor<4> = x.reshape([batch, c, s, s]);
        for (l, ids) in layers.iter().enumerate() {
            let z = normalize(cfg.norm, conv(p, *ids, cfg.kernel, cfg.groups, h));
            let site = SiteIn {
                site: "conv",
                layer: l + 1,
                act: net.activation,
                weight: Some(WeightGrad::Leaf(ids.weight)),
                scale: None,
            };
            h = rec.site(site, z);
        }
        h.reshape([batch, c * s * s])
    }

    fn lsuv_layers(&self, layers: &Self::Layout) -> Option<Vec<LsuvLayer>> {
        Some(layers.iter().map(|&ids| LsuvLayer::Conv(ids)).collect())
    }

    fn describe(&self) -> &'static str {
        "same-padded 3x3 (--kernel) convolutions on --image-size images"
    }

    fn primary_site(&self) -> &'static str {
        "conv"
    }

    fn axis_name(&self) -> &'static str {
        "layer"
    }

    fn own_keys(&self) -> &'static [&'static str] {
        &["kernel", "image-size", "groups", "norm"]
    }

    fn pass_sizes(&self, cfg: &NetConfig, b: f64) -> [f64; 4] {
        let (n, depth) = (cfg.width as f64, cfg.depth as f64);
        let (s, k) = (cfg.image_size as f64, cfg.kernel as f64);
        let g = (cfg.groups as f64).max(1.0);
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
