//! Fully connected: `z^l = h^(l-1) W^l + b^l`, `h^l = phi(z^l)`, `l = 1..depth`, widths
//! `N_0..N_depth`. A layer is one linear map and its activation (site `layer`). With
//! `--norm`, `z^l` is the normalized `h^(l-1) W^l + b^l`.

use burn::tensor::Tensor;

use super::{Architecture, LinearIds, LsuvLayer, ParamBuilder, TheoryKind};
use crate::config::Norm;
use crate::config::{NetConfig, ResolvedNet};
use crate::forward::{DeviceParams, Recorder, SiteIn, WeightGrad, linear, normalize};

/// The MLP.
pub(crate) struct Mlp;

impl Architecture for Mlp {
    /// One linear map per layer.
    type Layout = Vec<LinearIds>;

    fn declare(&self, b: &mut ParamBuilder<'_>) -> Self::Layout {
        let net = b.net;
        (1..=net.config.depth)
            .map(|l| {
                let ctx = b.ctx(None);
                let dims = (net.widths[l - 1], net.widths[l]);
                b.linear(&format!("layers.{l}"), dims, &net.weight_init, ctx, true)
            })
            .collect()
    }

    fn input_shape(&self, net: &ResolvedNet, batch: usize) -> [usize; 2] {
        [batch, net.widths[0]]
    }

    fn output_features(&self, net: &ResolvedNet) -> usize {
        net.widths[net.config.depth]
    }

    fn forward<R: Recorder>(
        &self,
        net: &ResolvedNet,
        layers: &Self::Layout,
        p: &DeviceParams,
        x: Tensor<2>,
        rec: &mut R,
    ) -> Tensor<2> {
        let mut h = x;
        for (l, ids) in layers.iter().enumerate() {
            let z = normalize(net.config.norm, linear(p, *ids, h));
            let site = SiteIn {
                site: "layer",
                layer: l + 1,
                act: net.activation,
                weight: Some(WeightGrad::Leaf(ids.weight)),
                scale: None,
            };
            h = rec.site(site, z);
        }
        h
    }

    fn lsuv_layers(&self, layers: &Self::Layout) -> Option<Vec<LsuvLayer>> {
        Some(layers.iter().map(|&ids| LsuvLayer::Linear(ids)).collect())
    }

    fn describe(&self) -> &'static str {
        "fully connected; a layer is one linear map and its activation"
    }

    fn primary_site(&self) -> &'static str {
        "layer"
    }

    fn axis_name(&self) -> &'static str {
        "layer"
    }

    fn own_keys(&self) -> &'static [&'static str] {
        &["widths", "norm"]
    }

    fn theory(&self, cfg: &NetConfig) -> TheoryKind {
        match cfg.norm {
            Norm::None => TheoryKind::Mlp,
            Norm::Layer => TheoryKind::SampleNormMlp { rms: false },
            Norm::Rms => TheoryKind::SampleNormMlp { rms: true },
            // Batch statistics couple the samples: Yang et al. 2019's theory, not this one.
            Norm::Batch => TheoryKind::None,
        }
    }

    fn pass_sizes(&self, cfg: &NetConfig, b: f64) -> [f64; 4] {
        let (n, depth) = (cfg.width as f64, cfg.depth as f64);
        match &cfg.widths {
            Some(w) if w.len() >= 2 => {
                let w: Vec<f64> = w.iter().map(|&x| x as f64).collect();
                let p = w.windows(2).map(|w| w[0] * w[1] + w[1]).sum::<f64>();
                let a = w[1..].iter().map(|w| b * w).sum::<f64>();
                [p, a, b * w[0], 0.0]
            }
            _ => [depth * (n * n + n), depth * b * n, b * n, 0.0],
        }
    }
}
