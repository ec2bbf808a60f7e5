//! A vanilla RNN unrolled over `depth` time steps: `z_t = x_t W_ih + h_(t-1) W_hh + b`,
//! `h_t = phi(z_t)`, `h_0 = 0`. A layer is a time step (site `step`); its weight gradient
//! is the step's own contribution `h_(t-1)^T dL/dz_t` to the shared `W_hh`. Its Jacobian
//! over time is `dh_t / dh_0`, at `h_0 = 0`.

#[cfg(feature = "burn")]
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::Capabilities;
use super::{Architecture, LinearIds, LsuvLayer, ParamBuilder, Setting, SettingKind};
use super::{NetConfig, ResolvedNet, TheoryKind};
use crate::options::InitSpec;
use sigprop_init::Scheme;
#[cfg(feature = "burn")]
use crate::forward::{DeviceParams, Recorder, SiteIn, SiteKind, WeightGrad};

/// The RNN and its own settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Rnn {
    /// The hidden-to-hidden initializer (input-to-hidden uses the network's `init`).
    pub hidden_init: InitSpec,
}

impl Default for Rnn {
    fn default() -> Self {
        Rnn {
            hidden_init: InitSpec::named("orthogonal"),
        }
    }
}

/// Its two weight matrices and the bias, and the number of time steps.
pub(crate) struct RnnIds {
    input: LinearIds,
    hidden: LinearIds,
    steps: usize,
}

impl Architecture for Rnn {
    type Layout = RnnIds;

    const SETTINGS: &'static [Setting] = &[Setting {
        key: "hidden-init",
        help: "Hidden-to-hidden initializer spec [default: orthogonal]",
        kind: SettingKind::Text,
        allowed: "an initializer spec (sigprop list inits)",
    }];

    fn declare(&self, b: &mut ParamBuilder<'_>) -> Self::Layout {
        let net = b.net;
        let w = net.config.width;
        let ctx = b.ctx(None);
        let input = b.linear("rnn.input", (w, w), &net.weight_init, ctx, false);
        let ctx = b.ctx(None);
        let hidden = b.linear("rnn.hidden", (w, w), self.hidden_init.scheme(), ctx, true);
        RnnIds {
            input,
            hidden,
            steps: net.config.depth,
        }
    }

    fn input_shape(&self, net: &ResolvedNet, batch: usize) -> [usize; 2] {
        [batch * net.config.depth, net.config.width]
    }

    fn output_features(&self, cfg: &NetConfig) -> usize {
        cfg.width
    }

#[cfg(feature = "burn")]
    fn forward<R: Recorder>(
        &self,
        net: &ResolvedNet,
        ids: &Self::Layout,
        p: &DeviceParams,
        x: Tensor<2>,
        rec: &mut R,
    ) -> Tensor<2> {
        let t_steps = net.config.depth;
        let [rows, n] = x.dims();
        let batch = rows / t_steps;
        let w_ih = p.matrix(ids.input.weight);
        let w_hh = p.matrix(ids.hidden.weight);
        let b = p.bias_row(ids.hidden.bias);
        let mut h = crate::forward::in_dtype(Tensor::<2>::zeros([batch, n], &x.device()), x.dtype());
        for t in 1..=t_steps {
            let x_t = x.clone().slice([(t - 1) * batch..t * batch, 0..n]);
            let mut z = crate::kernels::matmul(x_t, w_ih.clone())
                + crate::kernels::matmul(h.clone(), w_hh.clone());
            if let Some(b) = &b {
                z = z + b.clone();
            }
            let weight = Some(WeightGrad::PerStep {
                weight: ids.hidden.weight,
                h_prev: Box::new(h),
            });
            let site = SiteIn {
                site: "step",
                layer: t,
                kind: SiteKind::Activation(net.activation),
                weight,
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

    fn lsuv_layers(&self, _: &Self::Layout) -> Option<Vec<LsuvLayer>> {
        None
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // Its input is all time steps at once.
            trainable: false,
            ..Capabilities::PLAIN
        }
    }

    /// `dh_t / dh_0 = W_hh D_1 W_hh D_2 ... W_hh D_t`: the chain of an MLP whose every layer
    /// is the one recurrent matrix.
    fn exact_jacobian(&self) -> bool {
        true
    }

    fn jacobian_chain(&self, ids: &Self::Layout) -> Option<Vec<LinearIds>> {
        Some(vec![ids.hidden; ids.steps])
    }

    fn theory(&self, _: &NetConfig) -> TheoryKind {
        TheoryKind::Recurrent
    }

    fn recurrent_init(&self) -> Option<&Scheme> {
        Some(self.hidden_init.scheme())
    }

    fn describe(&self) -> &'static str {
        "vanilla RNN unrolled over --depth time steps; a layer is a time step"
    }

    fn primary_site(&self) -> &'static str {
        "step"
    }

    fn axis_name(&self) -> &'static str {
        "time step"
    }

    fn pass_sizes(&self, cfg: &NetConfig, b: f64) -> [f64; 4] {
        let (n, depth) = (cfg.width as f64, cfg.depth as f64);
        // Each step's weight-gradient product (N x N) is kept until the statistics.
        [2.0 * n * n + n, depth * b * n, depth * b * n, depth * n * n]
    }
}
