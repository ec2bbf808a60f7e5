//! Fully connected: `z^l = h^(l-1) W^l + b^l`, `h^l = phi(z^l)`, `l = 1..depth`, widths
//! `N_0..N_depth`. A layer is one linear map and its activation (site `layer`). With
//! `--norm`, `z^l` is the normalized `h^(l-1) W^l + b^l`.

#[cfg(feature = "burn")]
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use sigprop_init::Scheme;

use super::{
    Architecture, INPUT_CORR_SETTING, LinearIds, LsuvLayer, ParamBuilder, Setting, SettingKind,
    TheoryKind, pair_cosine, refuse_fixup,
};
use super::{NetConfig, ResolvedNet};
use crate::options::{NORM_SETTING, Norm};
use crate::error::NetError;
#[cfg(feature = "burn")]
use crate::forward::{DeviceParams, Recorder, SiteIn, SiteKind, WeightGrad, linear, normalize};

/// The MLP and its own settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Mlp {
    /// Explicit widths `N_0..N_depth` (length depth + 1), overriding `width`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub widths: Option<Vec<usize>>,
    /// Normalization of every pre-activation.
    pub norm: Norm,
    /// The exact cosine of each pair of inputs `(0, 1), (2, 3), ...` (inputs independent
    /// when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_corr: Option<f64>,
}

impl Architecture for Mlp {
    /// One linear map per layer.
    type Layout = Vec<LinearIds>;

    const SETTINGS: &'static [Setting] = &[
        Setting {
            key: "widths",
            help: "Widths N_0..N_depth, comma-separated (overrides --width)",
            kind: SettingKind::Wholes,
            allowed: "a list of depth + 1 whole numbers > 0",
        },
        NORM_SETTING,
        INPUT_CORR_SETTING,
    ];

    fn validate(&self, cfg: &NetConfig, weight_init: &Scheme) -> Result<(), NetError> {
        if let Some(w) = &self.widths
            && (w.len() != cfg.depth + 1 || w.contains(&0))
        {
            return Err(NetError::BadConfig {
                key: "widths",
                value: format!("{w:?}"),
                allowed: format!("{} positive widths (N_0..N_depth)", cfg.depth + 1),
            });
        }
        pair_cosine(self.input_corr)?;
        refuse_fixup(cfg, weight_init)
    }

    fn widths(&self, cfg: &NetConfig) -> Vec<usize> {
        match &self.widths {
            Some(w) => w.clone(),
            None => vec![cfg.width; cfg.depth + 1],
        }
    }

    fn norm(&self) -> Norm {
        self.norm
    }

    fn declare(&self, b: &mut ParamBuilder<'_>) -> Self::Layout {
        let net = b.net;
        (1..=net.config.depth)
            .map(|l| {
                let ctx = b.layer_ctx(l);
                let dims = (net.widths[l - 1], net.widths[l]);
                b.linear(&format!("layers.{l}"), dims, &net.weight_init, ctx, true)
            })
            .collect()
    }

    fn input_shape(&self, net: &ResolvedNet, batch: usize) -> [usize; 2] {
        [batch, net.widths[0]]
    }

    fn output_features(&self, cfg: &NetConfig) -> usize {
        // The last width (checked to be N_depth by `validate`; the memory estimate asks
        // before that check).
        // Without building the list: the estimate may see a depth no list could hold.
        match &self.widths {
            Some(w) => w.last().copied().unwrap_or(cfg.width),
            None => cfg.width,
        }
    }

    /// With `input-corr = c`: the pairs of [`paired_input`](crate::inputs::paired_input).
    /// Without it, the i.i.d. rows of every architecture.
    fn input(&self, seed: u64, shape: [usize; 2]) -> Result<Vec<f32>, NetError> {
        crate::inputs::paired_input(seed, shape, self.input_corr)
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
        let mut h = x;
        for (l, ids) in layers.iter().enumerate() {
            let z = normalize(self.norm, linear(p, *ids, h));
            let site = SiteIn {
                site: "layer",
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
        h
    }

    fn lsuv_layers(&self, layers: &Self::Layout) -> Option<Vec<LsuvLayer>> {
        Some(layers.iter().map(|&ids| LsuvLayer::Linear(ids)).collect())
    }

    fn exact_jacobian(&self) -> bool {
        self.norm == Norm::None
    }

    /// Batch normalization couples the rows of a batch.
    fn seed_batching(&self) -> bool {
        self.norm != Norm::Batch
    }

    fn jacobian_chain(&self, layers: &Self::Layout) -> Option<Vec<LinearIds>> {
        self.exact_jacobian().then(|| layers.clone())
    }

    fn matrix_uses(&self) -> Option<f64> {
        Some(1.0)
    }

    fn input_pair_corr(&self) -> Option<f64> {
        self.input_corr
    }

    fn primary_features(&self, net: &ResolvedNet, l: usize) -> usize {
        net.widths[l]
    }

    fn model_width(&self, net: &ResolvedNet) -> usize {
        match &self.widths {
            // Explicit widths: the largest hidden width.
            Some(_) => net.widths[1..]
                .iter()
                .copied()
                .max()
                .unwrap_or(net.config.width),
            None => net.config.width,
        }
    }

    fn input_from_data(&self) -> bool {
        self.widths.is_some()
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

    fn theory(&self, cfg: &NetConfig) -> TheoryKind {
        let _ = cfg;
        match self.norm {
            Norm::None => TheoryKind::Mlp,
            Norm::Layer => TheoryKind::SampleNormMlp { rms: false },
            Norm::Rms => TheoryKind::SampleNormMlp { rms: true },
            // Batch statistics couple the samples: Yang et al. 2019's theory, not this one.
            Norm::Batch => TheoryKind::None,
        }
    }

    fn pass_sizes(&self, cfg: &NetConfig, b: f64) -> [f64; 4] {
        let (n, depth) = (cfg.width as f64, cfg.depth as f64);
        match &self.widths {
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
