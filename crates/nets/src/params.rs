//! The initial parameters of a network, on the host, keyed by tensor path.
//!
//! Every tensor is filled by `sigprop-init` from the key `(seed, path)`, so a seed gives
//! bit-identical initial weights on every backend: the device only ever receives these
//! bytes. The network context that some schemes need (critical sigma_w, Fixup's branch
//! layout) is supplied here. Not the forward pass: see `forward.rs`.

use sigprop_init::{Activation, FillContext, Key, Scheme, fill_many};

use crate::arch::{Job, NetLayout, ParamBuilder, ParamId};
use crate::config::{Loss, ResolvedNet};
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
    /// After `--prune`: which entries are kept (pruned ones are 0 and stay 0 in training).
    pub mask: Option<Vec<bool>>,
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

/// The declared parameters of a network, before any value is drawn: the fill jobs in
/// creation order, the architecture's handles, and the cross-entropy head if any.
pub(crate) struct Declared {
    pub jobs: Vec<Job>,
    pub layout: NetLayout,
    pub head: Option<ParamId>,
}

/// Declare `net`'s parameters (`critical_sigma_w` goes into the fill context of
/// `critical:` schemes).
pub(crate) fn declare(net: &ResolvedNet, critical_sigma_w: Option<f64>) -> Declared {
    let mut b = ParamBuilder::new(net, critical_sigma_w);
    let layout = net.config.arch.declare(&mut b);
    let head = (net.config.loss == Loss::CrossEntropy).then(|| {
        // The head reads the network's output as the probe sees it (a CNN's flattened).
        let n = net.config.arch.output_features(&net.config);
        let scheme = if net.is_fixup() {
            Scheme::Zeros
        } else {
            Scheme::LecunNormal
        };
        let ctx = FillContext {
            activation: Activation::Linear,
            ..b.ctx(None)
        };
        b.linear("head", (n, HEAD_CLASSES), &scheme, ctx, false)
            .weight
    });
    Declared {
        jobs: b.jobs,
        layout,
        head,
    }
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
    let jobs = declare(net, critical_sigma_w).jobs;
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
                mask: None,
            })
            .collect(),
    })
}
