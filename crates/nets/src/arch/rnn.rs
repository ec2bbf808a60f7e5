//! A vanilla RNN unrolled over `depth` time steps: `z_t = x_t W_ih + h_(t-1) W_hh + b`,
//! `h_t = phi(z_t)`, `h_0 = 0`. A layer is a time step (site `step`); its weight gradient
//! is the step's own contribution `h_(t-1)^T dL/dz_t` to the shared `W_hh`.

use burn::tensor::Tensor;

use super::{Architecture, LinearIds, LsuvLayer, ParamBuilder};
use crate::config::{NetConfig, ResolvedNet};
use crate::forward::{DeviceParams, Recorder, SiteIn, WeightGrad};

/// The RNN.
pub(crate) struct Rnn;

/// Its two weight matrices and the bias.
pub(crate) struct RnnIds {
    input: LinearIds,
    hidden: LinearIds,
}

impl Architecture for Rnn {
    type Layout = RnnIds;

    fn declare(&self, b: &mut ParamBuilder<'_>) -> Self::Layout {
        let net = b.net;
        let w = net.config.width;
        let ctx = b.ctx(None);
        let input = b.linear("rnn.input", (w, w), &net.weight_init, ctx, false);
        let ctx = b.ctx(None);
        let hidden = b.linear("rnn.hidden", (w, w), &net.hidden_init, ctx, true);
        RnnIds { input, hidden }
    }

    fn input_shape(&self, net: &ResolvedNet, batch: usize) -> [usize; 2] {
        [batch * net.config.depth, net.config.width]
    }

    fn output_features(&self, net: &ResolvedNet) -> usize {
        net.config.width
    }

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
        let mut h = Tensor::<2>::zeros([batch, n], &x.device());
        for t in 1..=t_steps {
            let x_t = x.clone().slice([(t - 1) * batch..t * batch, 0..n]);
            let mut z = x_t.matmul(w_ih.clone()) + h.clone().matmul(w_hh.clone());
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
                act: net.activation,
                weight,
                scale: None,
            };
            h = rec.site(site, z);
        }
        h
    }

    fn lsuv_layers(&self, _: &Self::Layout) -> Option<Vec<LsuvLayer>> {
        None
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

    fn own_keys(&self) -> &'static [&'static str] {
        &["hidden-init"]
    }

    fn pass_sizes(&self, cfg: &NetConfig, b: f64) -> [f64; 4] {
        let (n, depth) = (cfg.width as f64, cfg.depth as f64);
        // Each step's weight-gradient product (N x N) is kept until the statistics.
        [2.0 * n * n + n, depth * b * n, depth * b * n, depth * n * n]
    }
}
