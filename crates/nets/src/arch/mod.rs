//! One module per architecture, each behind [`Architecture`]: the parameters it declares
//! (returned as typed handles, not looked up by path), its input shape, its forward pass
//! with the sites it records, and what LSUV may rescale. Everything else in the crate asks
//! these functions; adding an architecture is one file here plus one arm in the
//! [`each_arch!`] and [`each_layout!`] tables (and the [`Arch`] enum it names).
//!
//! Not the statistics (`stats.rs`) nor the probing (`probe.rs`): an architecture only
//! hands its sites to a [`Recorder`].

pub(crate) mod cnn;
pub(crate) mod mlp;
pub(crate) mod resmlp;
pub(crate) mod rnn;

use burn::tensor::Tensor;
use sigprop_init::{FillContext, FixupContext, Layout, Scheme};

use crate::config::{Arch, NetConfig, ResolvedNet};
use crate::forward::{DeviceParams, Recorder};

/// The index of a parameter in `Params::tensors` (creation order): the handle through
/// which the forward pass, the probe and LSUV reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParamId(pub usize);

/// A linear map `h W + b` (W `[in, out]`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinearIds {
    pub weight: ParamId,
    pub bias: Option<ParamId>,
}

/// A same-padded 2-D convolution (weights `[out, in/groups, k, k]`, one bias per channel).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvIds {
    pub weight: ParamId,
    pub bias: Option<ParamId>,
}

/// A tensor to fill: its path (also its RNG key), scheme, shape, layout and context.
pub(crate) struct Job {
    pub path: String,
    pub scheme: Scheme,
    pub shape: Vec<usize>,
    pub layout: Layout,
    pub ctx: FillContext,
}

/// Declares a network's parameters in creation order and hands out their handles.
pub(crate) struct ParamBuilder<'a> {
    pub net: &'a ResolvedNet,
    critical_sigma_w: Option<f64>,
    pub jobs: Vec<Job>,
}

impl<'a> ParamBuilder<'a> {
    pub fn new(net: &'a ResolvedNet, critical_sigma_w: Option<f64>) -> Self {
        ParamBuilder {
            net,
            critical_sigma_w,
            jobs: Vec::new(),
        }
    }

    /// The fill context of this network (activation, critical sigma_w, Fixup role).
    pub fn ctx(&self, fixup: Option<FixupContext>) -> FillContext {
        let mut c = FillContext::new(self.net.activation);
        c.critical_sigma_w = self.critical_sigma_w;
        c.fixup = fixup;
        c
    }

    fn push(&mut self, job: Job) -> ParamId {
        self.jobs.push(job);
        ParamId(self.jobs.len() - 1)
    }

    /// `<prefix>.weight` `[n_in, n_out]` from `w`, and `<prefix>.bias` `[n_out]` from the
    /// network's bias scheme when `bias`.
    pub fn linear(
        &mut self,
        prefix: &str,
        (n_in, n_out): (usize, usize),
        w: &Scheme,
        ctx: FillContext,
        bias: bool,
    ) -> LinearIds {
        let weight = self.push(Job {
            path: format!("{prefix}.weight"),
            scheme: w.clone(),
            shape: vec![n_in, n_out],
            layout: Layout::InOut,
            ctx: ctx.clone(),
        });
        let bias = bias.then(|| {
            self.push(Job {
                path: format!("{prefix}.bias"),
                scheme: self.net.bias_init.clone(),
                shape: vec![n_out],
                layout: Layout::Bias {
                    fan_in: n_in,
                    fan_out: n_out,
                },
                ctx,
            })
        });
        LinearIds { weight, bias }
    }

    /// A learnable scalar `[1]` at `path`, filled by `scheme`.
    pub fn scalar(&mut self, path: &str, scheme: &Scheme) -> ParamId {
        let ctx = self.ctx(None);
        self.push(Job {
            path: path.to_string(),
            scheme: scheme.clone(),
            shape: vec![1],
            layout: Layout::Bias {
                fan_in: 1,
                fan_out: 1,
            },
            ctx,
        })
    }

    /// `<prefix>.weight` `[c, c/g, k, k]` and `<prefix>.bias` `[c]`.
    pub fn conv(
        &mut self,
        prefix: &str,
        c: usize,
        g: usize,
        k: usize,
        ctx: FillContext,
    ) -> ConvIds {
        let weight = self.push(Job {
            path: format!("{prefix}.weight"),
            scheme: self.net.weight_init.clone(),
            shape: vec![c, c / g, k, k],
            layout: Layout::Conv { groups: g },
            ctx: ctx.clone(),
        });
        let receptive = c / g * k * k;
        let bias = Some(self.push(Job {
            path: format!("{prefix}.bias"),
            scheme: self.net.bias_init.clone(),
            shape: vec![c],
            layout: Layout::Bias {
                fan_in: receptive,
                fan_out: receptive,
            },
            ctx,
        }));
        ConvIds { weight, bias }
    }
}

/// How mean-field theory applies to a network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TheoryKind {
    /// It does not (normalization, weight sharing, recurrence, ...).
    None,
    /// The MLP recursions, forward and backward, at every `layer` site.
    Mlp,
    /// The MLP recursions with each pre-activation normalized per sample (LayerNorm, or
    /// RMSNorm when `rms`).
    SampleNormMlp {
        /// RMSNorm rather than LayerNorm.
        rms: bool,
    },
    /// The additive forward recursion of a residual MLP at every `branch.i` and `out` site.
    Residual {
        /// Linear maps per branch.
        branch_layers: usize,
        /// The branch multiplier squared, at initialization.
        alpha2: f64,
        /// Whether the skip connection is there.
        shortcut: bool,
    },
}

/// A layer LSUV rescales: its weight is divided by the square root of its target's
/// variance, measured on what the previous layers output.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LsuvLayer {
    /// A linear map on `[batch, n]`.
    Linear(LinearIds),
    /// A convolution on `[batch, c, s, s]` (flattened to `[batch, c*s*s]` between layers).
    Conv(ConvIds),
}

/// What every architecture provides.
pub(crate) trait Architecture {
    /// The typed handles of its parameters.
    type Layout;

    /// Declare every parameter, in the order that fixes their RNG keys.
    fn declare(&self, b: &mut ParamBuilder<'_>) -> Self::Layout;

    /// Shape of the host input batch: `[batch, N_0]`, a CNN's images flattened, an RNN's
    /// `depth` steps stacked.
    fn input_shape(&self, net: &ResolvedNet, batch: usize) -> [usize; 2];

    /// Features of the output `[batch, features]` (what a loss head reads).
    fn output_features(&self, net: &ResolvedNet) -> usize;

    /// Run on `x` and return the output; every recorded site goes to `rec`.
    fn forward<R: Recorder>(
        &self,
        net: &ResolvedNet,
        layout: &Self::Layout,
        p: &DeviceParams,
        x: Tensor<2>,
        rec: &mut R,
    ) -> Tensor<2>;

    /// The layers LSUV rescales, in order; `None` where LSUV is not defined.
    fn lsuv_layers(&self, layout: &Self::Layout) -> Option<Vec<LsuvLayer>>;

    /// One line for `sigprop list archs`.
    fn describe(&self) -> &'static str;

    /// The site whose rows describe the network's layers (summary, verdict, line charts).
    fn primary_site(&self) -> &'static str;

    /// What a layer is, for chart axes (`layer`, `residual block`, `time step`).
    fn axis_name(&self) -> &'static str;

    /// The settings only this architecture takes (as flags and suite keys), beyond depth,
    /// width, the initializers, activation, batch and loss.
    fn own_keys(&self) -> &'static [&'static str];

    /// Which mean-field prediction describes this network (given i.i.d. zero-mean weights
    /// and biases and the projection loss), if any.
    fn theory(&self, cfg: &NetConfig) -> TheoryKind {
        let _ = cfg;
        TheoryKind::None
    }

    /// Sizes of one probed pass for the memory estimate, from the configuration alone:
    /// (parameters, recorded activation entries, input entries, extra entries).
    fn pass_sizes(&self, cfg: &NetConfig, batch: f64) -> [f64; 4];
}

/// Every architecture's own settings, for telling a misplaced flag from an unknown one.
pub const ARCH_KEYS: &[&str] = &[
    "branch-scale",
    "shortcut",
    "norm",
    "norm-position",
    "widths",
    "branch-layers",
    "kernel",
    "image-size",
    "groups",
    "hidden-init",
];

/// The declared handles of any architecture.
pub(crate) enum NetLayout {
    Mlp(<mlp::Mlp as Architecture>::Layout),
    Resmlp(<resmlp::Resmlp as Architecture>::Layout),
    Cnn(<cnn::Cnn as Architecture>::Layout),
    Rnn(<rnn::Rnn as Architecture>::Layout),
}

/// `$body` with `$a` bound to the architecture of `$arch` (an [`Arch`]).
macro_rules! each_arch {
    ($arch:expr, $a:ident => $body:expr) => {
        match $arch {
            Arch::Mlp => {
                let $a = mlp::Mlp;
                $body
            }
            Arch::Resmlp => {
                let $a = resmlp::Resmlp;
                $body
            }
            Arch::Cnn => {
                let $a = cnn::Cnn;
                $body
            }
            Arch::Rnn => {
                let $a = rnn::Rnn;
                $body
            }
        }
    };
}

/// `$body` with `$a` the architecture and `$l` its handles, for a [`NetLayout`].
macro_rules! each_layout {
    ($layout:expr, $a:ident, $l:ident => $body:expr) => {
        match $layout {
            NetLayout::Mlp($l) => {
                let $a = mlp::Mlp;
                $body
            }
            NetLayout::Resmlp($l) => {
                let $a = resmlp::Resmlp;
                $body
            }
            NetLayout::Cnn($l) => {
                let $a = cnn::Cnn;
                $body
            }
            NetLayout::Rnn($l) => {
                let $a = rnn::Rnn;
                $body
            }
        }
    };
}

/// Declare the network's parameters; the layout's variant is the network's architecture.
pub(crate) fn declare(b: &mut ParamBuilder<'_>) -> NetLayout {
    match b.net.config.arch {
        Arch::Mlp => NetLayout::Mlp(mlp::Mlp.declare(b)),
        Arch::Resmlp => NetLayout::Resmlp(resmlp::Resmlp.declare(b)),
        Arch::Cnn => NetLayout::Cnn(cnn::Cnn.declare(b)),
        Arch::Rnn => NetLayout::Rnn(rnn::Rnn.declare(b)),
    }
}

/// See [`Architecture::input_shape`].
pub(crate) fn input_shape(net: &ResolvedNet, batch: usize) -> [usize; 2] {
    each_arch!(net.config.arch, a => a.input_shape(net, batch))
}

/// See [`Architecture::output_features`].
pub(crate) fn output_features(net: &ResolvedNet) -> usize {
    each_arch!(net.config.arch, a => a.output_features(net))
}

/// See [`Architecture::forward`].
pub(crate) fn forward<R: Recorder>(
    net: &ResolvedNet,
    layout: &NetLayout,
    p: &DeviceParams,
    x: Tensor<2>,
    rec: &mut R,
) -> Tensor<2> {
    each_layout!(layout, a, l => a.forward(net, l, p, x, rec))
}

/// See [`Architecture::lsuv_layers`].
pub(crate) fn lsuv_layers(layout: &NetLayout) -> Option<Vec<LsuvLayer>> {
    each_layout!(layout, a, l => a.lsuv_layers(l))
}

impl Arch {
    /// One line for `sigprop list archs`.
    pub fn describe(self) -> &'static str {
        each_arch!(self, a => a.describe())
    }

    /// The site whose rows describe the network's layers: `layer` (mlp), `out` (resmlp),
    /// `conv` (cnn), `step` (rnn).
    pub fn primary_site(self) -> &'static str {
        each_arch!(self, a => a.primary_site())
    }

    /// What a layer is, for chart axes.
    pub fn axis_name(self) -> &'static str {
        each_arch!(self, a => a.axis_name())
    }

    /// The settings only this architecture takes (`kernel`, `branch-layers`, ...).
    pub fn own_keys(self) -> &'static [&'static str] {
        each_arch!(self, a => a.own_keys())
    }

    /// Which mean-field prediction describes `cfg`, if any.
    pub fn theory(self, cfg: &NetConfig) -> TheoryKind {
        each_arch!(self, a => a.theory(cfg))
    }

    /// See [`Architecture::pass_sizes`].
    pub(crate) fn pass_sizes(self, cfg: &NetConfig, batch: f64) -> [f64; 4] {
        each_arch!(self, a => a.pass_sizes(cfg, batch))
    }
}
