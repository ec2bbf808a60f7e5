//! The network a user describes, and one module per architecture behind [`Architecture`].
//!
//! [`NetConfig`] is the serialisable record of a network (the runner writes it next to every
//! CSV): the common sizes, activation and initializer specs, and an [`ArchConfig`], the
//! architecture with its own typed settings (the struct is the architecture: `Cnn { kernel,
//! image_size, groups, norm }`). [`ResolvedNet`] is the same with its specs parsed and
//! checked (`build.rs` resolves it). They live here, with the trait, because an
//! architecture's methods read the common settings and the record holds the architecture.
//!
//! Each architecture declares its parameters (returned as typed handles, not looked up by
//! path), its input shape, its forward pass with the sites it records, and what LSUV may
//! rescale. Everything else in the crate asks the [`ArchConfig`]; adding an architecture is
//! one file here plus one line in the `architectures!` table at the end of this file.
//!
//! Not the statistics (`stats.rs`) nor the probing (`probe.rs`): an architecture only
//! hands its sites to a [`Recorder`]. Not the parsing and checking of a config (`build.rs`).

use std::fmt;
use std::str::FromStr;

#[cfg(feature = "burn")]
use burn::tensor::Tensor;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sigprop_init::{Activation, FillContext, FixupContext, Layout, Scheme};
use sigprop_theory::AutoInitPlan;

use crate::error::NetError;
#[cfg(feature = "burn")]
use crate::forward::{DeviceParams, Recorder};
pub(crate) use crate::handles::{ConvIds, LinearIds, ParamId};
pub(crate) use crate::options::INPUT_CORR_SETTING;
use crate::options::{Loss, Norm, PruneSpec};
pub(crate) use crate::setting::{Setting, SettingKind};

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
    pub jobs: Vec<Job>,
}

impl<'a> ParamBuilder<'a> {
    pub fn new(net: &'a ResolvedNet) -> Self {
        ParamBuilder {
            net,
            jobs: Vec::new(),
        }
    }

    /// The fill context of this network (activation, critical sigma_w, Fixup role).
    pub fn ctx(&self, fixup: Option<FixupContext>) -> FillContext {
        let mut c = FillContext::new(self.net.activation);
        c.critical_sigma_w = self.net.critical_sigma_w;
        c.fixup = fixup;
        c
    }

    /// The fill context of layer `l` (1-based) of a chain of plain layers: [`Self::ctx`]
    /// with the layer's part of the `autoinit` plan (the first layer reads the input).
    pub fn layer_ctx(&self, l: usize) -> FillContext {
        let mut c = self.ctx(None);
        c.autoinit = self
            .net
            .autoinit
            .map(|p| if l == 1 { p.first } else { p.hidden });
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

    /// A lookup table `[rows, cols]` at `path` (an embedding: row `i` is item `i`'s
    /// vector), filled by `scheme` with the fans of a map from `rows` one-hot inputs.
    pub fn table(
        &mut self,
        path: &str,
        (rows, cols): (usize, usize),
        scheme: &Scheme,
        ctx: FillContext,
    ) -> ParamId {
        self.push(Job {
            path: path.to_string(),
            scheme: scheme.clone(),
            shape: vec![rows, cols],
            layout: Layout::InOut,
            ctx,
        })
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

    /// `<prefix>.weight` `[c, c/g, k, k]` and, with `bias`, `<prefix>.bias` `[c]`.
    pub fn conv(
        &mut self,
        prefix: &str,
        (c, g, k): (usize, usize, usize),
        ctx: FillContext,
        bias: bool,
    ) -> ConvIds {
        let weight = self.push(Job {
            path: format!("{prefix}.weight"),
            scheme: self.net.weight_init.clone(),
            shape: vec![c, c / g, k, k],
            layout: Layout::Conv { groups: g },
            ctx: ctx.clone(),
        });
        let receptive = c / g * k * k;
        let bias = bias.then(|| {
            self.push(Job {
                path: format!("{prefix}.bias"),
                scheme: self.net.bias_init.clone(),
                shape: vec![c],
                layout: Layout::Bias {
                    fan_in: receptive,
                    fan_out: receptive,
                },
                ctx,
            })
        });
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
    /// The MLP recursions pixel by pixel, for zero-padded convolutions (Xiao et al. 2018),
    /// at every `conv` site.
    Conv {
        /// Kernel side.
        kernel: usize,
        /// Image side.
        image_size: usize,
        /// Channel groups (the fan-in is `kernel^2 width / groups`).
        groups: usize,
    },
    /// The MLP recursions over the time steps of an RNN, at every `step` site: the recurrent
    /// weight is each layer's, the input's variance adds to the bias's, and `h_0 = 0`.
    Recurrent,
    /// The forward mean field of a transformer's residual stream (its variance and its
    /// tokens' covariance), at every site; [`ArchConfig::stream_theory`] says where it holds.
    TransformerStream,
    /// The residual MLP's recursions with every branch map a zero-padded convolution, pixel
    /// by pixel, at every `branch.i` and `out` site.
    ResidualConv {
        /// Convolutions per branch.
        branch_layers: usize,
        /// The branch multiplier squared, at initialization.
        alpha2: f64,
        /// Whether the skip connection is there.
        shortcut: bool,
        /// Kernel side.
        kernel: usize,
        /// Image side.
        image_size: usize,
        /// Channel groups.
        groups: usize,
    },
    /// The additive recursions of a residual MLP, forward and backward, at every `branch.i`
    /// and `out` site.
    Residual {
        /// Linear maps per branch.
        branch_layers: usize,
        /// The branch multiplier squared, at initialization.
        alpha2: f64,
        /// Whether the skip connection is there.
        shortcut: bool,
    },
}

impl TheoryKind {
    /// The kernel side and channel groups of a convolutional network's theory.
    pub fn conv(&self) -> Option<(usize, usize)> {
        match *self {
            TheoryKind::Conv { kernel, groups, .. }
            | TheoryKind::ResidualConv { kernel, groups, .. } => Some((kernel, groups)),
            _ => None,
        }
    }
}

/// A layer LSUV rescales: its weight is divided by the square root of its target's
/// variance, measured on what the previous layers output.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LsuvLayer {
    /// A linear map on `[batch, n]`.
    Linear(LinearIds),
    /// A convolution on `[batch, c, s, s]` (flattened to `[batch, c*s*s]` between layers).
    Conv {
        /// Its handles.
        ids: ConvIds,
        /// Kernel size.
        kernel: usize,
        /// Groups.
        groups: usize,
        /// Image side `s`.
        image_size: usize,
    },
}

/// One network to build, as the user wrote it (specs as strings, so it serialises as
/// typed): the common sizes and initializers, and the architecture with its own settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NetConfig {
    /// The architecture and its own settings (`arch = "cnn"`, `kernel = 3`, ...).
    #[serde(flatten)]
    pub arch: ArchConfig,
    /// Layers (mlp, cnn), residual blocks (resmlp) or time steps (rnn).
    pub depth: usize,
    /// Units (mlp, resmlp, rnn) or channels (cnn), the same at every layer.
    pub width: usize,
    /// Activation spec, e.g. `tanh` or `leaky-relu:slope=0.2`.
    pub activation: String,
    /// Weight initializer spec, e.g. `he-normal`.
    pub weight_init: String,
    /// Bias initializer spec, e.g. `zeros` or `normal:std=0.1`.
    pub bias_init: String,
    /// Loss.
    pub loss: Loss,
    /// Pruning at initialization, e.g. `snip:sparsity=0.9` (see the `prune` module).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<String>,
    /// Real inputs (`--inputs FILE`) in place of the Gaussian ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<crate::data::InputFile>,
}

impl NetConfig {
    /// A config of `arch` (an [`Arch`] for its defaults, or a typed architecture such as
    /// `Cnn { groups: 2, ..Cnn::default() }`), zero biases and the projection loss.
    pub fn new(
        arch: impl Into<ArchConfig>,
        depth: usize,
        width: usize,
        activation: &str,
        weight_init: &str,
    ) -> Self {
        NetConfig {
            arch: arch.into(),
            depth,
            width,
            activation: activation.to_string(),
            weight_init: weight_init.to_string(),
            bias_init: "zeros".to_string(),
            loss: Loss::Projection,
            prune: None,
            inputs: None,
        }
    }
}

#[cfg(feature = "burn")]
/// A Burn config: `save` / `load` write and read it as JSON, so the record of a network is
/// its config (the runner also puts it in `manifest.json`). Implemented by hand rather than
/// derived because the derive would replace [`NetConfig::new`]'s defaults with builders.
impl burn::config::Config for NetConfig {}

/// A validated [`NetConfig`] with its specs parsed and everything derived from them, computed
/// once ([`NetConfig::resolve`]). It is written and read as its config (reading one resolves
/// it again, so a record that no longer resolves is refused), and two are equal when their
/// configs are.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "NetConfig", into = "NetConfig")]
pub struct ResolvedNet {
    /// The config it came from.
    pub config: NetConfig,
    /// `N_0..N_depth` (all equal to `width` except for an MLP with explicit widths).
    pub widths: Vec<usize>,
    /// Parsed activation.
    pub activation: Activation,
    /// Parsed weight scheme.
    pub weight_init: Scheme,
    /// Parsed bias scheme.
    pub bias_init: Scheme,
    /// The `autoinit` plan (theory crate) when the weight scheme is `autoinit`.
    pub autoinit: Option<AutoInitPlan>,
    /// Pruning at initialization.
    pub prune: Option<PruneSpec>,
    /// The critical sigma_w of a `critical:` scheme (the theory crate's root of chi_1 = 1
    /// for this activation and the scheme's sigma_b); `None` for other schemes.
    pub critical_sigma_w: Option<f64>,
}

impl PartialEq for ResolvedNet {
    fn eq(&self, other: &Self) -> bool {
        // Everything else is derived from the config.
        self.config == other.config
    }
}

impl TryFrom<NetConfig> for ResolvedNet {
    type Error = NetError;

    fn try_from(config: NetConfig) -> Result<Self, NetError> {
        config.resolve()
    }
}

impl From<ResolvedNet> for NetConfig {
    fn from(net: ResolvedNet) -> Self {
        net.config
    }
}

impl ResolvedNet {
    /// Whether the network is unit-scaled (u-muP: `branch-scale umup`, set by `--param
    /// umup`): every matrix product, activation, attention and residual add is scaled as
    /// unit scaling scales it.
    pub fn unit_scaled(&self) -> bool {
        self.config.arch.branch_scale() == Some(crate::options::BranchScale::Umup)
    }

    /// The site of the network's activation: `phi`, or under unit scaling `phi` scaled to
    /// unit output and unit gradient for a unit input.
    #[cfg(feature = "burn")]
    pub(crate) fn activation_site(&self) -> crate::forward::SiteKind {
        self.activation_site_of(self.activation)
    }

    /// The site of activation `a` (a gated MLP's gate has its own): `phi`, or under unit
    /// scaling `phi` scaled as [`ResolvedNet::activation_site`] says.
    #[cfg(feature = "burn")]
    pub(crate) fn activation_site_of(&self, a: Activation) -> crate::forward::SiteKind {
        use crate::forward::{SiteKind, UnitScales};
        if !self.unit_scaled() {
            return SiteKind::Activation(a);
        }
        let m2 = |f: &dyn Fn(f64) -> f64| {
            sigprop_theory::expect_preact(a, 1.0, |u| f(u).powi(2)).powf(-0.5)
        };
        SiteKind::UnitActivation(
            a,
            UnitScales {
                forward: m2(&|u| a.phi(u)),
                backward: m2(&|u| a.dphi(u)),
            },
        )
    }

    /// True for a residual network in Fixup form (scalar biases and multiplier).
    pub fn is_fixup(&self) -> bool {
        // Only an architecture with residual branches accepts Fixup (`validate`).
        self.weight_init.needs_fixup()
    }
}

/// What an architecture supports beyond its forward pass: every command asks this instead of
/// the architecture's name, and error lines list the architectures that do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Its blocks add a residual branch to a skip path (the depth coordinate check).
    pub residual: bool,
    /// `train` can train it (one input row per sample, a readout on its output).
    pub trainable: bool,
    /// Its input-output Jacobian can be taken (`--jacobian`).
    pub jacobian: bool,
    /// muP is built for it (`--param mup`).
    pub mup: bool,
    /// Orthogonal-family initializers of its weights, `(spec, family)`, which `recommend`
    /// offers next to `orthogonal`.
    pub structured_inits: &'static [(&'static str, &'static str)],
    /// Initializers built for it, `(spec, family)`, which `recommend` offers after the
    /// general catalogue.
    pub own_inits: &'static [(&'static str, &'static str)],
}

impl Capabilities {
    /// A plain network: trainable, with a Jacobian and muP, no residual branches, no
    /// initializers of its own.
    pub const PLAIN: Capabilities = Capabilities {
        residual: false,
        trainable: true,
        jacobian: true,
        mup: true,
        structured_inits: &[],
        own_inits: &[],
    };
}

/// The names of the architectures whose capabilities pass `test`, as an error line writes
/// them: `a`, `a or b`, `a, b or c`.
pub fn archs_with(test: impl Fn(&Capabilities) -> bool) -> String {
    let names: Vec<&str> = Arch::ALL
        .iter()
        .filter(|a| test(&a.default_config().capabilities()))
        .map(|a| a.name())
        .collect();
    match names.split_last() {
        None => "none".into(),
        Some((last, [])) => (*last).into(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// What every architecture provides. The implementing struct is the architecture's typed
/// configuration: serde reads it from a suite's keys (kebab-case, unknown keys refused,
/// defaults for the rest), and [`Architecture::SETTINGS`] lists the same keys with their
/// help for the command line.
pub(crate) trait Architecture:
    fmt::Debug + Clone + PartialEq + Default + Serialize + DeserializeOwned
{
    /// The typed handles of its parameters.
    type Layout;

    /// Its own settings, one per serialized field (checked by a test).
    const SETTINGS: &'static [Setting];

    /// Checks that need the whole configuration (sizes against the width, initializers
    /// against the architecture). By default Fixup is refused: it needs residual branches.
    fn validate(&self, cfg: &NetConfig, weight_init: &Scheme) -> Result<(), NetError> {
        refuse_fixup(cfg, weight_init)
    }

    /// `N_0..N_depth`: the units (or channels) of the input and of each layer's output.
    fn widths(&self, cfg: &NetConfig) -> Vec<usize> {
        vec![cfg.width; cfg.depth + 1]
    }

    /// The normalization it applies, if any (LSUV is refused under one).
    fn norm(&self) -> Norm {
        Norm::None
    }

    /// The batch when none is given, where the common default (128 samples) does not
    /// suit: a transformer's samples are whole sequences.
    fn default_batch(&self) -> Option<usize> {
        None
    }

    /// Declare every parameter, in the order that fixes their RNG keys.
    fn declare(&self, b: &mut ParamBuilder<'_>) -> Self::Layout;

    /// Fill jointly what no single tensor's initializer can (a transformer's mimetic
    /// attention, whose query and key are factors of one matrix), after every parameter
    /// took its own; by default nothing.
    fn refill(
        &self,
        _net: &ResolvedNet,
        _params: &mut crate::params::Params,
        _seed: u64,
    ) -> Result<(), NetError> {
        Ok(())
    }

    /// Shape of the host input batch: `[batch, N_0]`, a CNN's images flattened, an RNN's
    /// `depth` steps stacked.
    fn input_shape(&self, net: &ResolvedNet, batch: usize) -> [usize; 2];

    /// Features of the output `[batch, features]` (what a loss head reads).
    fn output_features(&self, cfg: &NetConfig) -> usize;

    /// The probed pass's input batch of `shape` for `seed`: by default every entry i.i.d.
    /// `N(0, 1)` from the key (seed, `input`).
    fn input(&self, seed: u64, shape: [usize; 2]) -> Result<Vec<f32>, NetError> {
        crate::inputs::normal_input(seed, "input", shape)
    }

    /// An input batch of `shape` from the key `(seed, key)` for a pass other than the
    /// probe's (pruning scores, tuning batches): by default i.i.d. `N(0, 1)`.
    fn input_keyed(&self, seed: u64, key: &str, shape: [usize; 2]) -> Result<Vec<f32>, NetError> {
        crate::inputs::normal_input(seed, key, shape)
    }

    /// The vocabulary, where the input is token ids rather than features (a transformer
    /// with an embedding): no input Jacobian, no training task's features.
    fn token_input(&self) -> Option<usize> {
        None
    }

    /// Whether its attention logits take muP's `1/d_head` (`None`: no attention).
    fn mup_scores(&self) -> Option<bool> {
        None
    }

    #[cfg(feature = "burn")]
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

    /// Whether the network is a chain of linear maps and pointwise activations, whose
    /// input-output Jacobian `W^1 D^1 ... W^L D^L` the probe builds exactly.
    fn exact_jacobian(&self) -> bool {
        false
    }

    /// That chain's linear maps, in order (`Some` exactly where [`Self::exact_jacobian`]).
    fn jacobian_chain(&self, layout: &Self::Layout) -> Option<Vec<LinearIds>> {
        let _ = layout;
        None
    }

    /// Whether several seeds of this configuration can run as one pass over stacked
    /// parameters ([`DeviceParams::stack`]): its pass uses only [`crate::forward::linear`]
    /// for its parameters and otherwise works row by row (no batch statistics, no learnable
    /// scalars, no convolutions, no weights shared across time steps).
    fn seed_batching(&self) -> bool {
        false
    }

    /// What it supports beyond its forward pass.
    fn capabilities(&self) -> Capabilities {
        Capabilities::PLAIN
    }

    /// Matrix-product multiply-adds per weight entry and sample (1 for a linear map, the
    /// pixels for a convolution), for `bench`'s FLOP count; `None` where not counted.
    fn matrix_uses(&self) -> Option<f64> {
        None
    }

    /// The cosine its input pairs are built with (`input-corr` of an MLP), where the
    /// c-map's prediction starts from it.
    fn input_pair_corr(&self) -> Option<f64> {
        None
    }

    /// The cosine of the input tokens of a sequence (`input-corr` of a transformer), where
    /// its tokens start alike.
    fn input_token_corr(&self) -> Option<f64> {
        None
    }

    /// Features of one sample at layer `l` of the primary site.
    fn primary_features(&self, net: &ResolvedNet, l: usize) -> usize {
        let _ = l;
        self.output_features(&net.config)
    }

    /// The width muP scales with.
    fn model_width(&self, net: &ResolvedNet) -> usize {
        net.config.width
    }

    /// A residual network's branch multiplier (none for the others).
    fn branch_scale(&self) -> Option<crate::options::BranchScale> {
        None
    }

    /// Whether its first layer's input features come from the data rather than the width
    /// (an MLP with explicit widths): muP treats that layer as an input layer.
    fn input_from_data(&self) -> bool {
        false
    }

    /// One line for `sigprop list archs`.
    fn describe(&self) -> &'static str;

    /// The site whose rows describe the network's layers (summary, verdict, line charts).
    fn primary_site(&self) -> &'static str;

    /// What a layer is, for chart axes (`layer`, `residual block`, `time step`).
    fn axis_name(&self) -> &'static str;

    /// Which mean-field prediction describes this network (given i.i.d. zero-mean weights
    /// and biases and the projection loss), if any.
    fn theory(&self, cfg: &NetConfig) -> TheoryKind {
        let _ = cfg;
        TheoryKind::None
    }

    /// The recurrent (hidden-to-hidden) weight's initializer, for a network that has one.
    fn recurrent_init(&self) -> Option<&Scheme> {
        None
    }

    /// Sizes of one probed pass for the memory estimate, from the configuration alone:
    /// (parameters, recorded activation entries, input entries, extra entries). An
    /// activation entry counts eight times ([`NetConfig::pass_bytes`]): an activation site's
    /// `z`, `h`, probes and gradients; a site without an activation (a linear map's output,
    /// a sum) holds about five of those, so it counts `5/8` of an entry; what is not a site
    /// (attention probabilities, a model's reshapes) goes to the extra entries, counted once
    /// each.
    fn pass_sizes(&self, cfg: &NetConfig, batch: f64) -> [f64; 4];
}

/// What a site without an activation (a linear map's output, a residual sum) counts in a
/// pass's activation entries, against an activation site's 1 (see
/// [`Architecture::pass_sizes`]).
pub(crate) const LINEAR_SITE: f64 = 5.0 / 8.0;

/// The initializer of an embedding or position table under the network's `weight_init`:
/// that one where it is a fixed-scale draw, as GPT-2, LLaMA and ViT give their tables the
/// weights' `N(0, 0.02^2)` (`normal`, `truncated-normal`, `uniform`, `gpt2`, and
/// `small-init`'s `N(0, 2/(5d))` as GPT-NeoX); else `N(0, 1)`, PyTorch's `nn.Embedding` and
/// the unit variance of Gaussian tokens (a fan-scaled rule such as He would read the
/// vocabulary as the fan-in).
pub(crate) fn table_scheme(weight_init: &Scheme) -> Scheme {
    match weight_init {
        Scheme::Gpt2 { .. }
        | Scheme::SmallInit
        | Scheme::Normal { .. }
        | Scheme::TruncatedNormal { .. }
        | Scheme::Uniform { .. } => weight_init.clone(),
        _ => Scheme::Normal {
            mean: 0.0,
            std: 1.0,
        },
    }
}

/// Fixup's scalar biases and multipliers need residual branches: refused elsewhere.
pub(crate) fn refuse_fixup(cfg: &NetConfig, weight_init: &Scheme) -> Result<(), NetError> {
    if weight_init.needs_fixup() {
        let fixup = |c: &Capabilities| c.own_inits.iter().any(|(s, _)| *s == "fixup");
        return Err(NetError::BadConfig {
            key: "init",
            value: cfg.weight_init.clone(),
            allowed: format!("fixup only with arch {}", archs_with(fixup)),
        });
    }
    Ok(())
}

/// A whole-number setting that must be positive.
pub(crate) fn positive(key: &'static str, v: usize) -> Result<(), NetError> {
    if v == 0 {
        return Err(NetError::BadConfig {
            key,
            value: "0".into(),
            allowed: "a whole number > 0".into(),
        });
    }
    Ok(())
}

/// `input-corr` of an architecture whose inputs come in pairs: a cosine, `-1 <= c <= 1`.
pub(crate) fn pair_cosine(c: Option<f64>) -> Result<(), NetError> {
    match c {
        Some(c) if !(-1.0..=1.0).contains(&c) => Err(NetError::BadConfig {
            key: "input-corr",
            value: c.to_string(),
            allowed: "a number with -1 <= c <= 1".into(),
        }),
        _ => Ok(()),
    }
}

/// The table of architectures, `Variant(module::Type) = "name"`: the module is declared,
/// and [`Arch`], [`ArchConfig`], [`NetLayout`], the names, the settings and every dispatch
/// to the [`Architecture`] methods are generated from it.
macro_rules! architectures {
    ($($variant:ident($module:ident::$ty:ident) = $name:literal,)*) => {
        $(pub mod $module;)*
        $(pub use $module::$ty;)*

        /// The name of an architecture: what `--arch` takes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Arch {
            $(#[doc = concat!("`", $name, "`: see [`", stringify!($ty), "`].")] $variant,)*
        }

        /// Names accepted by `--arch`.
        pub const ARCH_NAMES: &[&str] = &[$($name),*];

        /// An architecture with its own settings: the typed part of a [`NetConfig`],
        /// written as `arch = "<name>"` next to its own keys.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "arch")]
        pub enum ArchConfig {
            $(#[doc = concat!("`", $name, "`.")] #[serde(rename = $name)] $variant($ty),)*
        }

        $(impl From<$ty> for ArchConfig {
            fn from(a: $ty) -> Self {
                ArchConfig::$variant(a)
            }
        })*

        /// A network's declared handles, next to the architecture that declared them.
        pub(crate) enum NetLayout {
            $($variant($ty, <$ty as Architecture>::Layout),)*
        }

        impl Arch {
            /// Every architecture, in table order.
            pub const ALL: &'static [Arch] = &[$(Arch::$variant),*];

            /// The name `--arch` takes.
            pub fn name(self) -> &'static str {
                match self {
                    $(Arch::$variant => $name,)*
                }
            }

            /// The architecture with all its own settings at their defaults.
            pub fn default_config(self) -> ArchConfig {
                match self {
                    $(Arch::$variant => ArchConfig::$variant(<$ty>::default()),)*
                }
            }

            /// Its own settings (flags and suite keys).
            pub fn settings(self) -> &'static [Setting] {
                match self {
                    $(Arch::$variant => <$ty as Architecture>::SETTINGS,)*
                }
            }
        }

        impl FromStr for Arch {
            type Err = NetError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($name => Ok(Arch::$variant),)*
                    other => Err(NetError::UnknownArch {
                        name: other.to_string(),
                        allowed: ARCH_NAMES.join(", "),
                    }),
                }
            }
        }

        impl ArchConfig {
            /// Which architecture this is.
            pub fn kind(&self) -> Arch {
                match self {
                    $(ArchConfig::$variant(_) => Arch::$variant,)*
                }
            }

            /// See [`Architecture::validate`].
            pub(crate) fn validate(&self, cfg: &NetConfig, w: &Scheme) -> Result<(), NetError> {
                match self {
                    $(ArchConfig::$variant(a) => a.validate(cfg, w),)*
                }
            }

            /// `N_0..N_depth`: the input's and each layer's units (or channels).
            pub fn widths(&self, cfg: &NetConfig) -> Vec<usize> {
                match self {
                    $(ArchConfig::$variant(a) => a.widths(cfg),)*
                }
            }

            /// The normalization it applies ([`Norm::None`] for none).
            pub fn norm(&self) -> Norm {
                match self {
                    $(ArchConfig::$variant(a) => a.norm(),)*
                }
            }

            /// See [`Architecture::default_batch`].
            pub fn default_batch(&self) -> Option<usize> {
                match self {
                    $(ArchConfig::$variant(a) => a.default_batch(),)*
                }
            }

            /// One line for `sigprop list archs`.
            pub fn describe(&self) -> &'static str {
                match self {
                    $(ArchConfig::$variant(a) => a.describe(),)*
                }
            }

            /// See [`Architecture::primary_site`].
            pub fn primary_site(&self) -> &'static str {
                match self {
                    $(ArchConfig::$variant(a) => a.primary_site(),)*
                }
            }

            /// See [`Architecture::axis_name`].
            pub fn axis_name(&self) -> &'static str {
                match self {
                    $(ArchConfig::$variant(a) => a.axis_name(),)*
                }
            }

            /// See [`Architecture::seed_batching`].
            pub fn seed_batching(&self) -> bool {
                match self {
                    $(ArchConfig::$variant(a) => a.seed_batching(),)*
                }
            }

            /// What it supports beyond its forward pass.
            pub fn capabilities(&self) -> Capabilities {
                match self {
                    $(ArchConfig::$variant(a) => a.capabilities(),)*
                }
            }

            /// See [`Architecture::matrix_uses`].
            pub fn matrix_uses(&self) -> Option<f64> {
                match self {
                    $(ArchConfig::$variant(a) => a.matrix_uses(),)*
                }
            }

            /// See [`Architecture::input_pair_corr`].
            pub fn input_pair_corr(&self) -> Option<f64> {
                match self {
                    $(ArchConfig::$variant(a) => a.input_pair_corr(),)*
                }
            }

            /// See [`Architecture::input_token_corr`].
            pub fn input_token_corr(&self) -> Option<f64> {
                match self {
                    $(ArchConfig::$variant(a) => a.input_token_corr(),)*
                }
            }

            /// See [`Architecture::primary_features`].
            pub fn primary_features(&self, net: &ResolvedNet, l: usize) -> usize {
                match self {
                    $(ArchConfig::$variant(a) => a.primary_features(net, l),)*
                }
            }

            /// See [`Architecture::model_width`].
            pub fn model_width(&self, net: &ResolvedNet) -> usize {
                match self {
                    $(ArchConfig::$variant(a) => a.model_width(net),)*
                }
            }

            /// See [`Architecture::branch_scale`].
            pub fn branch_scale(&self) -> Option<crate::options::BranchScale> {
                match self {
                    $(ArchConfig::$variant(a) => a.branch_scale(),)*
                }
            }

            /// See [`Architecture::input_from_data`].
            pub fn input_from_data(&self) -> bool {
                match self {
                    $(ArchConfig::$variant(a) => a.input_from_data(),)*
                }
            }

            /// See [`Architecture::exact_jacobian`].
            pub fn exact_jacobian(&self) -> bool {
                match self {
                    $(ArchConfig::$variant(a) => a.exact_jacobian(),)*
                }
            }

            /// Which mean-field prediction describes `cfg`, if any.
            pub fn theory(&self, cfg: &NetConfig) -> TheoryKind {
                // The mean field starts from i.i.d. N(0, 1) inputs: a file's samples are
                // other inputs (their moments, their correlations), so no theory is drawn.
                if cfg.inputs.is_some() {
                    return TheoryKind::None;
                }
                match self {
                    $(ArchConfig::$variant(a) => a.theory(cfg),)*
                }
            }

            /// See [`Architecture::recurrent_init`].
            pub fn recurrent_init(&self) -> Option<&Scheme> {
                match self {
                    $(ArchConfig::$variant(a) => a.recurrent_init(),)*
                }
            }

            /// See [`Architecture::pass_sizes`].
            pub(crate) fn pass_sizes(&self, cfg: &NetConfig, batch: f64) -> [f64; 4] {
                match self {
                    $(ArchConfig::$variant(a) => a.pass_sizes(cfg, batch),)*
                }
            }

            /// See [`Architecture::refill`].
            pub(crate) fn refill(
                &self,
                net: &ResolvedNet,
                params: &mut crate::params::Params,
                seed: u64,
            ) -> Result<(), NetError> {
                match self {
                    $(ArchConfig::$variant(a) => a.refill(net, params, seed),)*
                }
            }

            /// Declare the network's parameters.
            pub(crate) fn declare(&self, b: &mut ParamBuilder<'_>) -> NetLayout {
                match self {
                    $(ArchConfig::$variant(a) => NetLayout::$variant(a.clone(), a.declare(b)),)*
                }
            }

            /// See [`Architecture::input_shape`].
            pub(crate) fn input_shape(&self, net: &ResolvedNet, batch: usize) -> [usize; 2] {
                match self {
                    $(ArchConfig::$variant(a) => a.input_shape(net, batch),)*
                }
            }

            /// See [`Architecture::input`].
            pub(crate) fn input(&self, seed: u64, shape: [usize; 2]) -> Result<Vec<f32>, NetError> {
                match self {
                    $(ArchConfig::$variant(a) => a.input(seed, shape),)*
                }
            }

            /// See [`Architecture::input_keyed`].
            pub(crate) fn input_keyed(&self, seed: u64, key: &str, shape: [usize; 2]) -> Result<Vec<f32>, NetError> {
                match self {
                    $(ArchConfig::$variant(a) => a.input_keyed(seed, key, shape),)*
                }
            }

            /// See [`Architecture::mup_scores`].
            pub fn mup_scores(&self) -> Option<bool> {
                match self {
                    $(ArchConfig::$variant(a) => a.mup_scores(),)*
                }
            }

            /// See [`Architecture::token_input`].
            pub fn token_input(&self) -> Option<usize> {
                match self {
                    $(ArchConfig::$variant(a) => a.token_input(),)*
                }
            }

            /// See [`Architecture::output_features`].
            pub fn output_features(&self, cfg: &NetConfig) -> usize {
                match self {
                    $(ArchConfig::$variant(a) => a.output_features(cfg),)*
                }
            }
        }

        impl NetLayout {
#[cfg(feature = "burn")]
            /// See [`Architecture::forward`].
            pub(crate) fn forward<R: Recorder>(
                &self,
                net: &ResolvedNet,
                p: &DeviceParams,
                x: Tensor<2>,
                rec: &mut R,
            ) -> Tensor<2> {
                match self {
                    $(NetLayout::$variant(a, l) => a.forward(net, l, p, x, rec),)*
                }
            }

            /// See [`Architecture::lsuv_layers`].
            pub(crate) fn lsuv_layers(&self) -> Option<Vec<LsuvLayer>> {
                match self {
                    $(NetLayout::$variant(a, l) => a.lsuv_layers(l),)*
                }
            }

            /// See [`Architecture::jacobian_chain`].
            pub(crate) fn jacobian_chain(&self) -> Option<Vec<LinearIds>> {
                match self {
                    $(NetLayout::$variant(a, l) => a.jacobian_chain(l),)*
                }
            }
        }
    };
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for ArchConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind().name())
    }
}

impl From<Arch> for ArchConfig {
    fn from(a: Arch) -> Self {
        a.default_config()
    }
}

impl Arch {
    /// One line for `sigprop list archs`.
    pub fn describe(self) -> &'static str {
        self.default_config().describe()
    }

    /// The site whose rows describe the network's layers: `layer` (mlp), `out` (resmlp),
    /// `conv` (cnn), `step` (rnn).
    pub fn primary_site(self) -> &'static str {
        self.default_config().primary_site()
    }

    /// What a layer is, for chart axes.
    pub fn axis_name(self) -> &'static str {
        self.default_config().axis_name()
    }

    /// The keys of its own settings.
    pub fn own_keys(self) -> Vec<&'static str> {
        self.settings().iter().map(|s| s.key).collect()
    }

    /// This architecture with `given` settings (suite keys to values, as a suite writes
    /// them; a flag's text through [`Setting::parse_flag`]), the rest at their defaults. A
    /// key it does not take is an error naming the key and the architecture; a bad value
    /// names its key and what is allowed.
    pub fn config_from(self, given: &toml::Table) -> Result<ArchConfig, NetError> {
        let own = self.settings();
        let table = |pairs: &mut dyn Iterator<Item = (&String, &toml::Value)>| {
            let mut t = toml::Table::new();
            t.insert("arch".into(), toml::Value::String(self.name().into()));
            for (k, v) in pairs {
                t.insert(k.clone(), v.clone());
            }
            toml::Value::Table(t).try_into::<ArchConfig>()
        };
        // A list setting given one text (a suite's bare string, or a grid value) is a
        // list of one.
        let given: toml::Table = given
            .iter()
            .map(|(k, v)| {
                let texts = own
                    .iter()
                    .any(|s| s.key == k && s.kind == SettingKind::Texts);
                match v {
                    toml::Value::String(_) if texts => {
                        (k.clone(), toml::Value::Array(vec![v.clone()]))
                    }
                    _ => (k.clone(), v.clone()),
                }
            })
            .collect();
        let given = &given;
        for (key, value) in given {
            let Some(setting) = own.iter().find(|s| s.key == key) else {
                return Err(if all_settings().iter().any(|(s, _)| s.key == key) {
                    NetError::NotASetting {
                        key: key.clone(),
                        arch: self.name(),
                        takes: match self.own_keys().join(", ") {
                            k if k.is_empty() => "none".into(),
                            k => k,
                        },
                    }
                } else {
                    NetError::UnknownKey {
                        key: key.clone(),
                        allowed: all_settings()
                            .iter()
                            .map(|(s, _)| s.key)
                            .collect::<Vec<_>>()
                            .join(", "),
                    }
                });
            };
            // One key at a time, so a bad value is named by its key.
            table(&mut std::iter::once((key, value))).map_err(|e| NetError::BadConfig {
                key: setting.key,
                value: match value {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
                // A spec's own error says what in it is wrong (unless it only repeats what
                // is allowed).
                allowed: match setting.kind {
                    SettingKind::Text | SettingKind::Texts
                        if !e.message().contains(setting.allowed) =>
                    {
                        format!("{} ({})", setting.allowed, e.message().trim())
                    }
                    _ => setting.allowed.into(),
                },
            })?;
        }
        table(&mut given.iter()).map_err(|e| NetError::BadConfig {
            key: "arch",
            value: self.name().into(),
            allowed: e.to_string().trim().to_string(),
        })
    }
}

/// Every architecture's settings, each key once (first declaration's help), with the
/// architectures that take it.
pub fn all_settings() -> Vec<(Setting, Vec<Arch>)> {
    let mut out: Vec<(Setting, Vec<Arch>)> = Vec::new();
    for &arch in Arch::ALL {
        for s in arch.settings() {
            match out.iter_mut().find(|(t, _)| t.key == s.key) {
                Some((_, archs)) => archs.push(arch),
                None => out.push((*s, vec![arch])),
            }
        }
    }
    out
}

architectures! {
    Mlp(mlp::Mlp) = "mlp",
    Resmlp(resmlp::Resmlp) = "resmlp",
    Cnn(cnn::Cnn) = "cnn",
    Rnn(rnn::Rnn) = "rnn",
    Rescnn(rescnn::Rescnn) = "rescnn",
    Transformer(transformer::Transformer) = "transformer",
    Graph(graph::Graph) = "graph",
}

impl ArchConfig {
    /// The depth and width a model file fixes (its linear and conv layers, and their widest
    /// output); `None` where `--depth` and `--width` choose them.
    pub fn fixed_size(&self) -> Option<(usize, usize)> {
        match self {
            ArchConfig::Graph(g) if !g.model.is_none() => {
                Some((g.model.graph.weighted().len(), g.model.graph.width()))
            }
            _ => None,
        }
    }

    /// Whether the network comes from a model file that holds its weights (`--init model`).
    pub fn has_file_weights(&self) -> bool {
        matches!(self, ArchConfig::Graph(g) if g.model.graph.has_weights())
    }

    /// The model file of a graph network ("" for the built-in architectures).
    pub fn model_path(&self) -> &str {
        match self {
            ArchConfig::Graph(g) => &g.model.path,
            _ => "",
        }
    }

    /// The transformer's stream mean field, where it applies (see
    /// [`transformer::Transformer::stream_theory`]); `None` for every other architecture.
    pub fn stream_theory(&self, net: &ResolvedNet) -> Option<sigprop_theory::TransformerStream> {
        match self {
            ArchConfig::Transformer(t) => t.stream_theory(net),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_architecture_declares_exactly_the_settings_it_reads() {
        for &arch in Arch::ALL {
            let v = toml::Value::try_from(arch.default_config()).unwrap();
            let written: Vec<&str> = v
                .as_table()
                .unwrap()
                .keys()
                .map(String::as_str)
                .filter(|k| *k != "arch")
                .collect();
            let declared = arch.own_keys();
            for k in &written {
                assert!(declared.contains(k), "{arch}: {k} is read but not declared");
            }
            // Only optional settings (absent by default) may be missing from the record.
            for k in &declared {
                assert!(
                    written.contains(k)
                        || *k == "widths"
                        || *k == "init-node"
                        || *k == "perturb"
                        || (*k == "input-corr" && [Arch::Mlp, Arch::Resmlp].contains(&arch)),
                    "{arch}: {k} is declared only"
                );
            }
        }
    }

    #[test]
    fn settings_are_read_into_the_typed_configuration_or_refused_by_name() {
        let table = |pairs: &[(&str, toml::Value)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<toml::Table>()
        };
        let s = |t: &str| toml::Value::String(t.into());
        let got = Arch::Resmlp
            .config_from(&table(&[
                ("branch-scale", toml::Value::Float(0.5)),
                ("norm", s("batch")),
                ("branch-layers", toml::Value::Integer(3)),
            ]))
            .unwrap();
        let ArchConfig::Resmlp(r) = got else {
            panic!("{got:?}")
        };
        assert_eq!(r.branch_scale, crate::BranchScale::Value(0.5));
        assert_eq!((r.norm, r.branch_layers), (Norm::Batch, 3));
        let e = Arch::Mlp
            .config_from(&table(&[("kernel", toml::Value::Integer(3))]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "kernel is not a setting of arch mlp; its own settings are: widths, norm, input-corr"
        );
        let e = Arch::Cnn
            .config_from(&table(&[("kernel", s("three"))]))
            .unwrap_err();
        assert!(
            e.to_string().starts_with("kernel=three is not allowed"),
            "{e}"
        );
        let e = Arch::Rnn
            .config_from(&table(&[("hidden-init", s("orthogonl"))]))
            .unwrap_err();
        assert!(e.to_string().starts_with("hidden-init=orthogonl"), "{e}");
        let e = Arch::Cnn
            .config_from(&table(&[("kernal", toml::Value::Integer(3))]))
            .unwrap_err();
        assert!(e.to_string().starts_with("unknown key kernal"), "{e}");
        // A list setting takes one text as a list of one (a suite's bare string).
        let got = Arch::Transformer
            .config_from(&table(&[("init-role", s("value=zeros"))]))
            .unwrap();
        let ArchConfig::Transformer(t) = got else {
            panic!("{got:?}")
        };
        assert_eq!(t.init_role.len(), 1);
        // A flag's text means what the suite value means.
        let kernel = Arch::Cnn.settings()[0];
        assert_eq!(kernel.parse_flag("5").unwrap(), toml::Value::Integer(5));
        assert!(kernel.parse_flag("-5").is_err());
        let widths = Arch::Mlp.settings()[0];
        assert_eq!(
            widths.parse_flag("3,4").unwrap(),
            toml::Value::Array(vec![toml::Value::Integer(3), toml::Value::Integer(4)])
        );
    }

    /// Every initializer an architecture offers to `recommend` is one it accepts (rescnn
    /// once was offered Fixup, which it refuses).
    #[test]
    fn every_architecture_accepts_the_initializers_it_offers() {
        for &arch in Arch::ALL {
            let caps = arch.default_config().capabilities();
            for (init, _) in caps.structured_inits.iter().chain(caps.own_inits) {
                let cfg = NetConfig::new(arch, 3, 8, "relu", init);
                if let Err(e) = cfg.resolve() {
                    panic!("{} offers {init}, which it refuses: {e}", arch.name());
                }
            }
        }
    }

    #[test]
    fn error_lines_list_the_architectures_with_a_capability() {
        assert_eq!(archs_with(|c| c.residual), "resmlp, rescnn or transformer");
        assert_eq!(archs_with(|c| !c.trainable), "rnn");
        assert_eq!(
            archs_with(|c| c.jacobian),
            "mlp, resmlp, cnn, rnn, rescnn, transformer or graph"
        );
        assert_eq!(archs_with(|_| false), "none");
    }

    #[test]
    fn every_configuration_round_trips_through_its_record() {
        for &arch in Arch::ALL {
            let cfg = NetConfig::new(arch, 3, 8, "tanh", "xavier-normal");
            let text = serde_json::to_string(&cfg).unwrap();
            assert!(
                text.starts_with(&format!("{{\"arch\":\"{arch}\"")),
                "{text}"
            );
            let back: NetConfig = serde_json::from_str(&text).unwrap();
            assert_eq!(back, cfg);
        }
        // Another architecture's key in a record is refused, not dropped.
        let bad = r#"{"arch":"mlp","kernel":3,"depth":2,"width":4,"activation":"relu","weight-init":"he-normal","bias-init":"zeros","loss":"projection"}"#;
        assert!(serde_json::from_str::<NetConfig>(bad).is_err());
    }
}
