//! The initial parameters of a network, on the host, keyed by tensor path.
//!
//! Every tensor is filled by `sigprop-init` from the key `(seed, path)`, so a seed gives
//! bit-identical initial weights on every backend: the device only ever receives these
//! bytes. The network context that some schemes need (critical sigma_w, Fixup's branch
//! layout) is supplied here. Not the forward pass: see `forward.rs`.

use sigprop_init::{
    Activation, FillContext, FixupContext, FixupRole, Key, Layout, Scheme, fill_many,
};

use crate::config::{Arch, Loss, ResolvedNet};
use crate::error::NetError;

/// Classes of the cross-entropy head.
pub const HEAD_CLASSES: usize = 10;

/// One parameter tensor: its path, shape and row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamTensor {
    /// Path such as `layers.3.weight`: also its RNG key.
    pub path: String,
    /// Shape (Burn's layout: linear `[in, out]`, conv `[out, in/groups, k, k]`).
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// All parameters of a network, in creation order.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// The tensors.
    pub tensors: Vec<ParamTensor>,
}

impl Params {
    /// The tensor at `path`.
    pub fn get(&self, path: &str) -> Option<&ParamTensor> {
        self.tensors.iter().find(|t| t.path == path)
    }

    /// Mutable access to the tensor at `path`.
    pub fn get_mut(&mut self, path: &str) -> Option<&mut ParamTensor> {
        self.tensors.iter_mut().find(|t| t.path == path)
    }
}

/// A tensor to fill: scheme, shape, layout and network context.
struct Job {
    path: String,
    scheme: Scheme,
    shape: Vec<usize>,
    layout: Layout,
    ctx: FillContext,
}

/// Fill every parameter of `net` for `seed`.
///
/// `critical_sigma_w` is the theory crate's answer for `critical:` schemes (the runner
/// computes it); `None` makes a critical scheme an error naming what is missing.
pub fn build_params(
    net: &ResolvedNet,
    seed: u64,
    critical_sigma_w: Option<f64>,
) -> Result<Params, NetError> {
    let cfg = &net.config;
    let act = net.activation;
    let ctx = |fixup: Option<FixupContext>| {
        let mut c = FillContext::new(act);
        c.critical_sigma_w = critical_sigma_w;
        c.fixup = fixup;
        c
    };
    let mut jobs: Vec<Job> = Vec::new();
    let linear = |jobs: &mut Vec<Job>,
                  prefix: &str,
                  n_in: usize,
                  n_out: usize,
                  w: &Scheme,
                  c: FillContext,
                  bias: bool| {
        jobs.push(Job {
            path: format!("{prefix}.weight"),
            scheme: w.clone(),
            shape: vec![n_in, n_out],
            layout: Layout::InOut,
            ctx: c.clone(),
        });
        if bias {
            jobs.push(Job {
                path: format!("{prefix}.bias"),
                scheme: net.bias_init.clone(),
                shape: vec![n_out],
                layout: Layout::Bias {
                    fan_in: n_in,
                    fan_out: n_out,
                },
                ctx: c,
            });
        }
    };
    match cfg.arch {
        Arch::Mlp => {
            for l in 1..=cfg.depth {
                let (n_in, n_out) = (net.widths[l - 1], net.widths[l]);
                linear(
                    &mut jobs,
                    &format!("layers.{l}"),
                    n_in,
                    n_out,
                    &net.weight_init,
                    ctx(None),
                    true,
                );
            }
        }
        Arch::Resmlp => {
            let m = cfg.branch_layers;
            let fixup = net.is_fixup();
            for k in 1..=cfg.depth {
                for i in 1..=m {
                    let role = if i == m {
                        FixupRole::BranchLast
                    } else {
                        FixupRole::BranchInner
                    };
                    let fx = fixup.then_some(FixupContext {
                        num_branches: cfg.depth,
                        layers_per_branch: m,
                        role,
                    });
                    // Fixup replaces per-unit biases by scalar biases (zero at initialization).
                    let w = cfg.width;
                    linear(
                        &mut jobs,
                        &format!("blocks.{k}.branch.{i}"),
                        w,
                        w,
                        &net.weight_init,
                        ctx(fx),
                        !fixup,
                    );
                }
            }
        }
        Arch::Cnn => {
            let (c, g, kk) = (cfg.width, cfg.groups, cfg.kernel);
            for l in 1..=cfg.depth {
                let c_ctx = ctx(None);
                jobs.push(Job {
                    path: format!("layers.{l}.weight"),
                    scheme: net.weight_init.clone(),
                    shape: vec![c, c / g, kk, kk],
                    layout: Layout::Conv { groups: g },
                    ctx: c_ctx.clone(),
                });
                jobs.push(Job {
                    path: format!("layers.{l}.bias"),
                    scheme: net.bias_init.clone(),
                    shape: vec![c],
                    layout: Layout::Bias {
                        fan_in: c / g * kk * kk,
                        fan_out: c / g * kk * kk,
                    },
                    ctx: c_ctx,
                });
            }
        }
        Arch::Rnn => {
            let w = cfg.width;
            linear(
                &mut jobs,
                "rnn.input",
                w,
                w,
                &net.weight_init,
                ctx(None),
                false,
            );
            linear(
                &mut jobs,
                "rnn.hidden",
                w,
                w,
                &net.hidden_init,
                ctx(None),
                true,
            );
        }
    }
    if cfg.loss == Loss::CrossEntropy {
        // The head reads the network's output as the probe sees it: a CNN's is flattened
        // to width x image-size^2 features.
        let n = match cfg.arch {
            Arch::Cnn => cfg.width * cfg.image_size * cfg.image_size,
            _ => *net.widths.last().unwrap_or(&cfg.width),
        };
        let head = if net.is_fixup() {
            Scheme::Zeros
        } else {
            Scheme::LecunNormal
        };
        let c = ctx(None);
        let c = FillContext {
            activation: Activation::Linear,
            ..c
        };
        linear(&mut jobs, "head", n, HEAD_CLASSES, &head, c, false);
    }
    let keyed: Vec<_> = jobs
        .iter()
        .map(|j| {
            (
                j.scheme.clone(),
                j.shape.clone(),
                j.layout,
                Key::new(seed, &j.path),
                j.ctx.clone(),
            )
        })
        .collect();
    let filled =
        fill_many(&keyed).map_err(|(i, source)| NetError::init(jobs[i].path.clone(), source))?;
    Ok(Params {
        tensors: jobs
            .into_iter()
            .zip(filled)
            .map(|(j, data)| ParamTensor {
                path: j.path,
                shape: j.shape,
                data,
            })
            .collect(),
    })
}
