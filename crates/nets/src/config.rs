//! What network to build: architecture, sizes, activation and initializers, validated.
//!
//! `NetConfig` is the serialisable record (the runner writes it next to every CSV);
//! [`NetConfig::resolve`] parses its specs and checks every size once, so the builders never
//! see a zero width or an unknown name. Not the experiment grid: that lives in the runner.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sigprop_init::{Activation, FillContext, InitError, Layout, Scheme};
use sigprop_theory::{AutoInitPlan, autoinit_plan};

pub use crate::arch::{ARCH_NAMES, Arch, ArchConfig};
use crate::arch::{Setting, SettingKind};
use crate::error::NetError;

/// `norm`, a setting of every architecture that normalizes.
pub(crate) const NORM_SETTING: Setting = Setting {
    key: "norm",
    help: "Normalization: none, batch, layer, rms [default: none; transformer: layer]",
    kind: SettingKind::Text,
    allowed: "one of: none, batch, layer, rms",
};

/// `norm-position`, for residual networks.
pub(crate) const NORM_POSITION_SETTING: Setting = Setting {
    key: "norm-position",
    help: "Residual networks: normalize inside the branch (pre) or after the add (post) [default: pre]",
    kind: SettingKind::Text,
    allowed: "pre or post",
};

/// `branch-scale`, for residual networks.
pub(crate) const BRANCH_SCALE_SETTING: Setting = Setting {
    key: "branch-scale",
    help: "Residual networks: branch multiplier: 1, a number, 1/sqrt(L), rezero, skipinit [default: 1]",
    kind: SettingKind::Text,
    allowed: "1, a number >= 0, 1/sqrt(L), rezero or skipinit",
};

/// `shortcut`, for residual networks.
pub(crate) const SHORTCUT_SETTING: Setting = Setting {
    key: "shortcut",
    help: "Residual networks: identity, or none for the same blocks without skips [default: identity]",
    kind: SettingKind::Text,
    allowed: "identity or none",
};

/// `branch-layers`, for residual networks.
pub(crate) const BRANCH_LAYERS_SETTING: Setting = Setting {
    key: "branch-layers",
    help: "Residual networks: layers per branch [default: 2]",
    kind: SettingKind::Whole,
    allowed: "a whole number > 0",
};

/// An initializer spec as written (kept verbatim, so a config round-trips) and parsed
/// (so a config that exists holds a valid one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct InitSpec {
    text: String,
    scheme: Scheme,
}

impl InitSpec {
    /// A built-in spec known to parse (a default).
    pub(crate) fn named(text: &str) -> Self {
        match text.parse() {
            Ok(scheme) => InitSpec {
                text: text.to_string(),
                scheme,
            },
            Err(e) => unreachable!("built-in spec {text}: {e}"),
        }
    }

    /// The spec as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The parsed scheme.
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }
}

impl FromStr for InitSpec {
    type Err = InitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(InitSpec {
            text: s.to_string(),
            scheme: s.parse()?,
        })
    }
}

impl TryFrom<String> for InitSpec {
    type Error = InitError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<InitSpec> for String {
    fn from(s: InitSpec) -> String {
        s.text
    }
}

impl fmt::Display for InitSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The loss whose gradient enters the backward pass (THEORY.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// `L = sum g * h^depth`, `g ~ N(0,1)`: `dL/dh^depth = g` exactly (the default).
    Projection,
    /// `L = 1/2 sum (h^depth - y)^2` to targets `y ~ N(0,1)`: `dL/dh^depth = h - y`.
    Mse,
    /// Summed cross-entropy of a linear head (10 classes, LeCun-normal, zero under Fixup)
    /// on uniformly random labels.
    CrossEntropy,
}

impl Loss {
    /// The spec name.
    pub fn name(self) -> &'static str {
        match self {
            Loss::Projection => "projection",
            Loss::Mse => "mse",
            Loss::CrossEntropy => "cross-entropy",
        }
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Loss {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "projection" => Ok(Loss::Projection),
            "mse" => Ok(Loss::Mse),
            "cross-entropy" | "ce" => Ok(Loss::CrossEntropy),
            other => Err(NetError::UnknownLoss {
                name: other.to_string(),
            }),
        }
    }
}

/// A normalization layer applied to every pre-activation (to the block output with
/// `post` in a residual network). Gain 1 and bias 0, as at initialization: they change no
/// value and are not materialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Norm {
    /// No normalization.
    #[default]
    None,
    /// BatchNorm in training mode: each unit (channel) standardized over the batch (and the
    /// pixels), with the batch's own mean and population variance, eps = 1e-5 (Ioffe &
    /// Szegedy 2015), as at the first step of training.
    Batch,
    /// LayerNorm: each sample standardized over its features (Ba et al. 2016), eps = 1e-5.
    Layer,
    /// RMSNorm: each sample divided by the root mean square of its features (Zhang &
    /// Sennrich 2019), eps = 1e-5.
    Rms,
}

/// Names accepted by `--norm`.
pub const NORM_NAMES: &[&str] = &["none", "batch", "layer", "rms"];

impl Norm {
    /// The spec name.
    pub fn name(self) -> &'static str {
        match self {
            Norm::None => "none",
            Norm::Batch => "batch",
            Norm::Layer => "layer",
            Norm::Rms => "rms",
        }
    }
}

impl fmt::Display for Norm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Norm {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Norm::None),
            "batch" | "batchnorm" | "bn" => Ok(Norm::Batch),
            "layer" | "layernorm" | "ln" => Ok(Norm::Layer),
            "rms" | "rmsnorm" => Ok(Norm::Rms),
            other => Err(NetError::BadConfig {
                key: "norm",
                value: other.to_string(),
                allowed: format!("one of: {}", NORM_NAMES.join(", ")),
            }),
        }
    }
}

/// Where a residual network normalizes: inside each branch before its activations (`pre`,
/// as in pre-activation ResNets and pre-LN transformers) or the block output after the add
/// (`post`, as in the original transformer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NormPosition {
    /// Inside the branch, before each activation.
    #[default]
    Pre,
    /// On the block output, after the residual add.
    Post,
}

impl FromStr for NormPosition {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pre" => Ok(NormPosition::Pre),
            "post" => Ok(NormPosition::Post),
            other => Err(NetError::BadConfig {
                key: "norm-position",
                value: other.to_string(),
                allowed: "pre or post".into(),
            }),
        }
    }
}

/// The multiplier of a residual branch, `x^k = shortcut(x^(k-1)) + alpha * branch(x^(k-1))`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(into = "String")]
pub enum BranchScale {
    /// `alpha = 1`.
    #[default]
    One,
    /// A fixed `alpha`.
    Value(f64),
    /// `alpha = 1/sqrt(L)` over `L = depth` blocks, so the variance grows by a factor
    /// `(1 + 1/L)` a block at He initialization, about e over the network (the NF-net scaling
    /// of Brock, De & Smith 2021).
    InvSqrtDepth,
    /// ReZero (Bachlechner et al. 2020): a learnable `alpha` per block, 0 at initialization.
    Rezero,
    /// SkipInit (De & Smith 2020): a learnable `alpha` per block, 0 at initialization (the
    /// same network as ReZero at initialization; SkipInit is meant to replace BatchNorm).
    Skipinit,
}

impl BranchScale {
    /// `alpha` at initialization for a network of `depth` blocks.
    pub fn at_init(self, depth: usize) -> f64 {
        match self {
            BranchScale::One => 1.0,
            BranchScale::Value(v) => v,
            BranchScale::InvSqrtDepth => 1.0 / (depth as f64).sqrt(),
            BranchScale::Rezero | BranchScale::Skipinit => 0.0,
        }
    }

    /// Whether `alpha` is a parameter (ReZero, SkipInit).
    pub fn learnable(self) -> bool {
        matches!(self, BranchScale::Rezero | BranchScale::Skipinit)
    }
}

impl fmt::Display for BranchScale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BranchScale::One => f.write_str("1"),
            BranchScale::Value(v) => write!(f, "{}", sigprop_init::fmt_f64(*v)),
            BranchScale::InvSqrtDepth => f.write_str("1/sqrt(L)"),
            BranchScale::Rezero => f.write_str("rezero"),
            BranchScale::Skipinit => f.write_str("skipinit"),
        }
    }
}

impl FromStr for BranchScale {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase().replace(' ', "");
        match t.as_str() {
            "1" => Ok(BranchScale::One),
            "1/sqrt(l)" | "1/sqrt(depth)" => Ok(BranchScale::InvSqrtDepth),
            "rezero" => Ok(BranchScale::Rezero),
            "skipinit" => Ok(BranchScale::Skipinit),
            other => match other.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Ok(BranchScale::Value(v)),
                _ => Err(NetError::BadConfig {
                    key: "branch-scale",
                    value: s.to_string(),
                    allowed: "1, a number >= 0, 1/sqrt(L), rezero or skipinit".into(),
                }),
            },
        }
    }
}

impl From<BranchScale> for String {
    fn from(b: BranchScale) -> String {
        b.to_string()
    }
}

/// Text (`"1/sqrt(L)"`, `"0.5"`) or a number (`0.5` in a suite).
impl<'de> Deserialize<'de> for BranchScale {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text_or_number(d, "1, a number >= 0, 1/sqrt(L), rezero or skipinit")
    }
}

/// A setting read with `FromStr` from text or from a number (a suite's `0.5`).
pub(crate) fn text_or_number<'de, D, T>(d: D, expecting: &'static str) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    struct V<T>(&'static str, std::marker::PhantomData<T>);
    impl<T: FromStr> serde::de::Visitor<'_> for V<T>
    where
        T::Err: fmt::Display,
    {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<T, E> {
            s.parse().map_err(E::custom)
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<T, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
            self.visit_str(&v.to_string())
        }
    }
    d.deserialize_any(V(expecting, std::marker::PhantomData))
}

/// Whether a residual block keeps its skip connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shortcut {
    /// `x^k = x^(k-1) + alpha * branch`.
    #[default]
    Identity,
    /// `x^k = alpha * branch`: the same blocks without skips (a plain deep network).
    None,
}

impl FromStr for Shortcut {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "identity" => Ok(Shortcut::Identity),
            "none" => Ok(Shortcut::None),
            other => Err(NetError::BadConfig {
                key: "shortcut",
                value: other.to_string(),
                allowed: "identity or none".into(),
            }),
        }
    }
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
    /// Pruning at initialization, e.g. `snip:sparsity=0.9` (see [`crate::prune`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<String>,
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
        }
    }

    /// Parse the specs and check every size.
    pub fn resolve(&self) -> Result<ResolvedNet, NetError> {
        crate::arch::positive("depth", self.depth)?;
        crate::arch::positive("width", self.width)?;
        let parse_scheme = |key: &'static str, s: &str| -> Result<Scheme, NetError> {
            s.parse::<Scheme>()
                .map_err(|e: InitError| NetError::init(key, e))
        };
        let activation = self
            .activation
            .parse::<Activation>()
            .map_err(|e| NetError::init("activation", e))?;
        let weight_init = parse_scheme("init", &self.weight_init)?;
        let bias_init = parse_scheme("bias-init", &self.bias_init)?;
        self.arch.validate(self, &weight_init)?;
        let autoinit = match weight_init.autoinit_q() {
            Some(q) => Some(
                autoinit_plan(activation, q).map_err(|e| NetError::BadConfig {
                    key: "init",
                    value: self.weight_init.clone(),
                    allowed: format!("an autoinit plan for {activation}: {e}"),
                })?,
            ),
            None => None,
        };
        let prune = self
            .prune
            .as_deref()
            .map(str::parse::<crate::prune::PruneSpec>)
            .transpose()?;
        let net = ResolvedNet {
            config: self.clone(),
            widths: self.arch.widths(self),
            activation,
            weight_init,
            bias_init,
            autoinit,
            prune,
        };
        net.check_tensors()?;
        Ok(net)
    }
}

/// Bytes per stored value (every tensor sigprop builds is f32).
const F32: f64 = 4.0;

impl NetConfig {
    /// Bytes of the network's weights in `f32`: what one more seed's weights staged ahead
    /// (on the host and on the device) add to a GPU run.
    pub fn weight_bytes(&self) -> f64 {
        F32 * self.arch.pass_sizes(self, 1.0)[0]
    }

    /// An estimate of the peak memory of one probed pass of this network on a batch of
    /// `batch`, in bytes, from the sizes alone (nothing is allocated; computed in f64, so no
    /// overflow whatever the sizes). On a CPU backend device and host memory are the same memory, so both are
    /// counted:
    ///
    /// - parameters P, four times: the host copy, the device copy, the gradient, and the
    ///   transient copy made while uploading;
    /// - activation entries A (every recorded site: batch x units, or batch x channels x
    ///   pixels), eight times: z and h, the two zero probes, phi(z) saved for the backward
    ///   pass, dL/dz and dL/dh after it, and one reduction temporary;
    /// - the input and the loss target, twice each (host and device);
    /// - per architecture: an RNN keeps each step's weight-gradient product (T x N^2) until
    ///   the statistics are read; a CNN's convolution may unfold its input (batch x pixels x
    ///   channels x k^2) one layer at a time; the cross-entropy head's weights and logits.
    ///
    /// It is an estimate meant to refuse sizes that cannot fit before any memory is
    /// committed, not an exact account of an allocator.
    pub fn pass_bytes(&self, batch: usize) -> f64 {
        let b = batch as f64;
        let [params, act, input, extra] = self.arch.pass_sizes(self, b);
        // The loss reads the whole output: a CNN's flattened images, a transformer's tokens.
        let out = self.arch.output_features(self) as f64;
        let head = match self.loss {
            Loss::CrossEntropy => out * HEAD + 3.0 * b * HEAD,
            _ => 0.0,
        };
        let target = b * out;
        F32 * (4.0 * params + 8.0 * act + 2.0 * (input + target) + extra + head)
    }
}

/// Classes of the cross-entropy head (as `params::HEAD_CLASSES`).
const HEAD: f64 = crate::params::HEAD_CLASSES as f64;

/// A Burn config: `save` / `load` write and read it as JSON, so the record of a network is
/// its config (the runner also puts it in `manifest.json`). Implemented by hand rather than
/// derived because the derive would replace [`NetConfig::new`]'s defaults with builders.
impl burn::config::Config for NetConfig {}

/// A validated [`NetConfig`] with its specs parsed.
#[derive(Debug, Clone)]
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
    pub prune: Option<crate::prune::PruneSpec>,
}

/// The bias spec an `autoinit` plan defines: `normal:std=sigma_b`, or `zeros`.
pub fn autoinit_bias_spec(plan: &AutoInitPlan) -> String {
    let b2 = plan.hidden.sigma_b2;
    if b2 > 0.0 {
        format!("normal:std={}", b2.sqrt())
    } else {
        "zeros".into()
    }
}

impl ResolvedNet {
    /// Every tensor the network declares can be filled by its scheme (dirac only on
    /// convolutions, identity and sparse only on linear weights, ...), and LSUV only on an
    /// architecture that defines it: checked before anything is drawn, so a suite fails
    /// before its first run rather than in the middle.
    fn check_tensors(&self) -> Result<(), NetError> {
        // A placeholder critical sigma_w: what is checked here is the layout, and the runner
        // finds the real value (or reports that there is none) before any run.
        let declared = crate::params::declare(self, Some(1.0));
        if let Some(plan) = &self.autoinit {
            self.check_autoinit(plan, &declared)?;
        }
        if let Some(spec) = &self.prune {
            crate::prune::check(self, spec)?;
        }
        for job in &declared.jobs {
            job.scheme
                .check(&job.shape, job.layout, &job.ctx)
                .map_err(|e| NetError::init(job.path.clone(), e))?;
        }
        if self.weight_init.lsuv().is_some() && self.config.arch.norm() != Norm::None {
            return Err(NetError::BadConfig {
                key: "init",
                value: self.config.weight_init.clone(),
                allowed: "lsuv without --norm (a normalization undoes its rescaling)".into(),
            });
        }
        let tuned = self.weight_init.metainit().is_some() || self.weight_init.gradinit().is_some();
        if tuned && self.config.arch.norm() != Norm::None {
            return Err(NetError::BadConfig {
                key: "init",
                value: self.config.weight_init.clone(),
                allowed: format!(
                    "{} without --norm (a normalization makes the loss nearly blind to the scales of the weights before it, and sigprop does not tune normalization gains)",
                    self.weight_init.name()
                ),
            });
        }
        if self.weight_init.lsuv().is_some() && declared.layout.lsuv_layers().is_none() {
            return Err(NetError::BadConfig {
                key: "init",
                value: self.config.weight_init.clone(),
                allowed: format!(
                    "lsuv with an architecture of plain layers (mlp, cnn), not {}",
                    self.config.arch
                ),
            });
        }
        Ok(())
    }

    /// `autoinit` needs plain layers (its plan is per layer of a chain), no normalization
    /// (which would undo its scales), and the bias the plan defines.
    fn check_autoinit(
        &self,
        plan: &AutoInitPlan,
        declared: &crate::params::Declared,
    ) -> Result<(), NetError> {
        let refuse = |allowed: String| NetError::BadConfig {
            key: "init",
            value: self.config.weight_init.clone(),
            allowed,
        };
        if declared.layout.lsuv_layers().is_none() {
            return Err(refuse(format!(
                "autoinit with an architecture of plain layers (mlp, cnn), not {}",
                self.config.arch
            )));
        }
        if self.config.arch.norm() != Norm::None {
            return Err(refuse(
                "autoinit without --norm (a normalization undoes its scales)".into(),
            ));
        }
        let want = plan.hidden.sigma_b2;
        let n = self.widths.get(1).copied().unwrap_or(1);
        let layout = Layout::Bias {
            fan_in: self.widths[0],
            fan_out: n,
        };
        let got = self
            .bias_init
            .moments(&[n], layout, &FillContext::new(self.activation))
            .ok();
        let same =
            got.is_some_and(|m| m.mean == 0.0 && (m.var - want).abs() <= 1e-9 * want.max(1e-300));
        if !same {
            return Err(NetError::BadConfig {
                key: "bias-init",
                value: self.config.bias_init.clone(),
                allowed: format!(
                    "{} (autoinit sets the bias for {}; leave --bias-init and --sigma-b out)",
                    autoinit_bias_spec(plan),
                    self.activation
                ),
            });
        }
        Ok(())
    }

    /// True for a residual network in Fixup form (scalar biases and multiplier).
    pub fn is_fixup(&self) -> bool {
        // Only an architecture with residual branches accepts Fixup (`validate`).
        self.weight_init.needs_fixup()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::config::Config;

    #[test]
    fn the_pass_estimate_counts_parameters_and_activations() {
        // MLP depth 2, width 10, batch 4: P = 2 (100 + 10), A = 2 * 4 * 10, input and
        // target 40 each.
        let c = NetConfig::new(Arch::Mlp, 2, 10, "relu", "he-normal");
        assert_eq!(
            c.pass_bytes(4),
            4.0 * (4.0 * 220.0 + 8.0 * 80.0 + 2.0 * (40.0 + 40.0))
        );
        // Explicit widths 3 -> 5 -> 2: the target has the output's 2 features.
        let mut w = c.clone();
        w.arch = crate::arch::Mlp {
            widths: Some(vec![3, 5, 2]),
            ..Default::default()
        }
        .into();
        assert_eq!(
            w.pass_bytes(4),
            4.0 * (4.0 * (20.0 + 12.0) + 8.0 * (20.0 + 8.0) + 2.0 * (12.0 + 8.0))
        );
        // The sizes of the issue do not overflow: width 1e5, batch 1e5 is terabytes.
        let huge = NetConfig::new(Arch::Mlp, 20, 100_000, "relu", "he-normal");
        assert!(huge.pass_bytes(100_000) > 1e12);
        let absurd = NetConfig::new(Arch::Cnn, usize::MAX, usize::MAX, "relu", "he-normal");
        assert!(absurd.pass_bytes(usize::MAX).is_finite());
    }

    #[test]
    fn a_config_saves_and_loads_as_its_own_record() {
        let cnn = crate::arch::Cnn {
            groups: 2,
            ..Default::default()
        };
        let mut c = NetConfig::new(cnn, 4, 16, "leaky-relu:slope=0.2", "delta-orthogonal");
        c.loss = Loss::CrossEntropy;
        let path =
            std::env::temp_dir().join(format!("sigprop-netconfig-{}.json", std::process::id()));
        c.save(&path).unwrap();
        let back = NetConfig::load(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(back, c);
        assert!(back.resolve().is_ok());
    }
}
