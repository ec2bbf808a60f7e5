//! The forward pass of every architecture, written once against a [`Recorder`].
//!
//! The recorder decides what a "site" does: in the probed pass it adds zero probe leaves
//! that require grad (`z + probe`, THEORY.md: Burn panics on `require_grad()` of a
//! non-leaf, upstream issue #1802) and keeps z and h for the statistics; in LSUV's plain
//! pass it only applies the activation. The parameters come in as device tensors already.

use std::collections::HashMap;

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use sigprop_init::Activation;

use crate::activation::apply;
use crate::config::{Arch, ResolvedNet};
use crate::params::Params;

/// A parameter on the device: a 2-D or 4-D leaf.
#[derive(Clone)]
pub(crate) enum DeviceParam {
    /// Linear weights `[in, out]`, biases as `[1, out]`.
    D2(Tensor<2>),
    /// Conv weights `[out, in/groups, k, k]`.
    D4(Tensor<4>),
    /// Biases `[n]`.
    D1(Tensor<1>),
}

/// Upload `params` to `device`; leaves require grad when `grad` (device must be autodiff).
pub(crate) fn upload(params: &Params, device: &Device, grad: bool) -> HashMap<String, DeviceParam> {
    params
        .tensors
        .iter()
        .map(|t| {
            let data = TensorData::new(t.data.clone(), t.shape.clone());
            let p = match t.shape.len() {
                1 => DeviceParam::D1(leaf(Tensor::<1>::from_data(data, device), grad)),
                4 => DeviceParam::D4(leaf(Tensor::<4>::from_data(data, device), grad)),
                _ => DeviceParam::D2(leaf(Tensor::<2>::from_data(data, device), grad)),
            };
            (t.path.clone(), p)
        })
        .collect()
}

fn leaf<const D: usize>(t: Tensor<D>, grad: bool) -> Tensor<D> {
    if grad { t.require_grad() } else { t }
}

/// How the weight feeding out of a site gets its gradient.
#[derive(Clone)]
pub(crate) enum WeightGrad {
    /// A parameter leaf: read `leaf.grad()` (path for the host-side weight audit).
    Leaf(String),
    /// A weight shared across time steps: the step's own contribution `h_prev^T dL/dz`.
    PerStep {
        path: String,
        h_prev: Box<Tensor<2>>,
    },
}

/// What one site hands to the recorder.
pub(crate) struct SiteIn<'a> {
    pub site: &'a str,
    pub layer: usize,
    pub act: Activation,
    pub weight: Option<WeightGrad>,
}

/// Receives every site of the forward pass.
pub(crate) trait Recorder {
    /// Apply `phi` at a site of pre-activation `z` and return `h`.
    fn site<const D: usize>(&mut self, s: SiteIn<'_>, z: Tensor<D>) -> Tensor<D>;
}

/// A recorder that only applies the activation (LSUV and plain forwards).
pub(crate) struct Plain;

impl Recorder for Plain {
    fn site<const D: usize>(&mut self, s: SiteIn<'_>, z: Tensor<D>) -> Tensor<D> {
        apply(s.act, z)
    }
}

fn d2(p: &HashMap<String, DeviceParam>, path: &str) -> Tensor<2> {
    match p.get(path) {
        Some(DeviceParam::D2(t)) => t.clone(),
        _ => unreachable!("parameter {path} is built by params.rs for this architecture"),
    }
}

fn bias_row(p: &HashMap<String, DeviceParam>, path: &str) -> Option<Tensor<2>> {
    match p.get(path) {
        Some(DeviceParam::D1(t)) => Some(t.clone().unsqueeze::<2>()),
        _ => None,
    }
}

/// `h W + b` for the linear layer at `prefix` (`layers.3`, `blocks.2.branch.1`).
pub(crate) fn linear(p: &HashMap<String, DeviceParam>, prefix: &str, h: Tensor<2>) -> Tensor<2> {
    let z = h.matmul(d2(p, &format!("{prefix}.weight")));
    match bias_row(p, &format!("{prefix}.bias")) {
        Some(b) => z + b,
        None => z,
    }
}

/// The same-padded convolution of layer `l` (weights `[out, in/groups, k, k]`).
pub(crate) fn conv(
    net: &ResolvedNet,
    p: &HashMap<String, DeviceParam>,
    l: usize,
    h: Tensor<4>,
) -> Tensor<4> {
    let w = match p.get(&format!("layers.{l}.weight")) {
        Some(DeviceParam::D4(t)) => t.clone(),
        _ => unreachable!("conv weights are 4-D"),
    };
    let b = match p.get(&format!("layers.{l}.bias")) {
        Some(DeviceParam::D1(t)) => Some(t.clone()),
        _ => None,
    };
    let pad = net.config.kernel / 2;
    conv2d(
        h,
        w,
        b,
        ConvOptions::new([1, 1], [pad, pad], [1, 1], net.config.groups),
    )
}

/// Run the network on `x` (`[batch, N_0]`, or `[batch, C, S, S]` flattened for the CNN;
/// `[T, batch, N]` stacked as `[T*batch, N]` for the RNN) and return the output `[batch, N_L]`.
pub(crate) fn forward<R: Recorder>(
    net: &ResolvedNet,
    p: &HashMap<String, DeviceParam>,
    x: Tensor<2>,
    rec: &mut R,
) -> Tensor<2> {
    let cfg = &net.config;
    let act = net.activation;
    match cfg.arch {
        Arch::Mlp => {
            let mut h = x;
            for l in 1..=cfg.depth {
                let z = linear(p, &format!("layers.{l}"), h);
                let weight = Some(WeightGrad::Leaf(format!("layers.{l}.weight")));
                h = rec.site(
                    SiteIn {
                        site: "layer",
                        layer: l,
                        act,
                        weight,
                    },
                    z,
                );
            }
            h
        }
        Arch::Resmlp => {
            let mut x = x;
            for k in 1..=cfg.depth {
                let mut u = x.clone();
                for i in 1..=cfg.branch_layers {
                    let path = format!("blocks.{k}.branch.{i}");
                    let weight = Some(WeightGrad::Leaf(format!("{path}.weight")));
                    let site = format!("branch.{i}");
                    let h = rec.site(
                        SiteIn {
                            site: &site,
                            layer: k,
                            act,
                            weight,
                        },
                        u,
                    );
                    u = linear(p, &path, h);
                }
                // Fixup's scalar biases (0) and multiplier (1) change no value at
                // initialization, so they are not materialised.
                let out = x + u;
                let s = SiteIn {
                    site: "out",
                    layer: k,
                    act: Activation::Linear,
                    weight: None,
                };
                x = rec.site(s, out);
            }
            x
        }
        Arch::Cnn => {
            let (c, s) = (cfg.width, cfg.image_size);
            let batch = x.dims()[0];
            let mut h: Tensor<4> = x.reshape([batch, c, s, s]);
            for l in 1..=cfg.depth {
                let z = conv(net, p, l, h);
                let weight = Some(WeightGrad::Leaf(format!("layers.{l}.weight")));
                h = rec.site(
                    SiteIn {
                        site: "conv",
                        layer: l,
                        act,
                        weight,
                    },
                    z,
                );
            }
            h.reshape([batch, c * s * s])
        }
        Arch::Rnn => {
            let t_steps = cfg.depth;
            let [rows, n] = x.dims();
            let batch = rows / t_steps;
            let w_ih = d2(p, "rnn.input.weight");
            let w_hh = d2(p, "rnn.hidden.weight");
            let b = bias_row(p, "rnn.hidden.bias");
            let mut h = Tensor::<2>::zeros([batch, n], &x.device());
            for t in 1..=t_steps {
                let x_t = x.clone().slice([(t - 1) * batch..t * batch, 0..n]);
                let mut z = x_t.matmul(w_ih.clone()) + h.clone().matmul(w_hh.clone());
                if let Some(b) = &b {
                    z = z + b.clone();
                }
                let weight = Some(WeightGrad::PerStep {
                    path: "rnn.hidden.weight".into(),
                    h_prev: Box::new(h),
                });
                h = rec.site(
                    SiteIn {
                        site: "step",
                        layer: t,
                        act,
                        weight,
                    },
                    z,
                );
            }
            h
        }
    }
}

/// Rows of the input batch: the RNN stacks its `depth` time steps.
pub(crate) fn input_shape(net: &ResolvedNet, batch: usize) -> [usize; 2] {
    let cfg = &net.config;
    match cfg.arch {
        Arch::Cnn => [batch, cfg.width * cfg.image_size * cfg.image_size],
        Arch::Rnn => [batch * cfg.depth, cfg.width],
        _ => [batch, net.widths[0]],
    }
}
