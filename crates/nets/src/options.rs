//! The typed values of a network's options: the loss, the normalization and its position,
//! the residual branch multiplier and shortcut, an initializer spec, and the pruning spec,
//! with their names, parsing and the settings that carry them. Leaf types: nothing here
//! knows an architecture or a network (those are `arch/`, built in `build.rs`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sigprop_init::spec::{Spec, fmt_f64};
use sigprop_init::{InitError, Scheme};

use crate::error::NetError;
use crate::setting::{Setting, SettingKind};

/// `input-corr`, shared by the architectures whose input can be correlated on purpose.
pub(crate) const INPUT_CORR_SETTING: Setting = Setting {
    key: "input-corr",
    help: "Input correlation c: mlp and resmlp, the exact cosine of each pair of inputs (0, 1), \
           (2, 3), ... (-1 <= c <= 1); transformer, between a sequence's tokens (0 <= c < 1) \
           [default: independent inputs]",
    kind: SettingKind::Number,
    allowed: "a number with -1 <= c <= 1 (mlp, resmlp) or 0 <= c < 1 (transformer)",
};

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

/// What `branch-scale` takes.
const BRANCH_SCALE_ALLOWED: &str = "1, a number >= 0, 1/sqrt(L), 1/L, rezero, skipinit or umup";

/// `branch-scale`, for residual networks.
pub(crate) const BRANCH_SCALE_SETTING: Setting = Setting {
    key: "branch-scale",
    help: "Residual networks: branch multiplier: 1, a number, 1/sqrt(L), 1/L, rezero, skipinit, umup (u-muP's unit-scaled network) [default: 1]",
    kind: SettingKind::Text,
    allowed: BRANCH_SCALE_ALLOWED,
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

/// Epsilon of every normalization (PyTorch's default).
pub const NORM_EPS: f64 = 1e-5;

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
    /// `alpha = 1/L`: the stream's variance grows by `(1 + 1/L^2)` a block at He
    /// initialization, to `1 + 1/L` over the network (CompleteP's branches, Dey et al. 2025).
    InvDepth,
    /// ReZero (Bachlechner et al. 2020): a learnable `alpha` per block, 0 at initialization.
    Rezero,
    /// SkipInit (De & Smith 2020): a learnable `alpha` per block, 0 at initialization (the
    /// same network as ReZero at initialization; SkipInit is meant to replace BatchNorm).
    Skipinit,
    /// Unit scaling's residual add (u-muP, Blake et al. 2024): `a_i x + b_i f(x)` with
    /// `a_i^2 + b_i^2 = 1`, by the rule of [`BranchScale::unit_add`]; it makes the whole
    /// network unit-scaled (every matrix product, activation and attention scaled as unit
    /// scaling scales them). Set by `--param umup`.
    Umup,
}

impl BranchScale {
    /// `alpha` at initialization for a network of `depth` blocks.
    pub fn at_init(self, depth: usize) -> f64 {
        match self {
            BranchScale::One => 1.0,
            BranchScale::Value(v) => v,
            BranchScale::InvSqrtDepth => 1.0 / (depth as f64).sqrt(),
            BranchScale::InvDepth => 1.0 / depth as f64,
            BranchScale::Rezero | BranchScale::Skipinit => 0.0,
            // Per branch: see `unit_add`.
            BranchScale::Umup => f64::NAN,
        }
    }

    /// Under [`BranchScale::Umup`], the skip and branch weights `(a, b)` of branch `index`
    /// (0-based, in the order the branches meet the stream) of `branches`, of `kinds` kinds
    /// (1 for resmlp and rescnn; attention and MLP for a transformer): u-muP's rule
    /// (unit_scaling's `transformer_residual_scaling_rule` at its defaults, Blake et al.
    /// 2024, appendix G) that each kind of branch adds, over the network, as much variance
    /// as the input: branch `i` adds `kinds / branches` to a stream of `1 + i kinds /
    /// branches`, so `tau^2 = 1 / (branches / kinds + i)`, `b = tau / sqrt(1 + tau^2) = (branches / kinds + i + 1)^(-1/2)`, `a = sqrt(1 - b^2)`.
    pub fn unit_add(self, index: usize, branches: usize, kinds: usize) -> Option<(f64, f64)> {
        (self == BranchScale::Umup).then(|| {
            let n = branches as f64 / kinds.max(1) as f64 + index as f64;
            let b2 = 1.0 / (n + 1.0);
            ((1.0 - b2).sqrt(), b2.sqrt())
        })
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
            BranchScale::InvDepth => f.write_str("1/L"),
            BranchScale::Rezero => f.write_str("rezero"),
            BranchScale::Skipinit => f.write_str("skipinit"),
            BranchScale::Umup => f.write_str("umup"),
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
            "1/l" | "1/depth" => Ok(BranchScale::InvDepth),
            "rezero" => Ok(BranchScale::Rezero),
            "skipinit" => Ok(BranchScale::Skipinit),
            "umup" => Ok(BranchScale::Umup),
            other => match other.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Ok(BranchScale::Value(v)),
                _ => Err(NetError::BadConfig {
                    key: "branch-scale",
                    value: s.to_string(),
                    allowed: BRANCH_SCALE_ALLOWED.into(),
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
        text_or_number(d, BRANCH_SCALE_ALLOWED)
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

/// The `--prune` method names.
pub const PRUNE_NAMES: &[&str] = &["random", "magnitude", "snip", "grasp", "synflow"];

/// How the entries to remove are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneMethod {
    /// Uniformly at random, the same fraction per tensor.
    Random,
    /// Smallest `|w|`, globally.
    Magnitude,
    /// Smallest `|w g|` (SNIP).
    Snip,
    /// Largest `-w H g` (GraSP).
    Grasp,
    /// Smallest synaptic flow, iteratively (SynFlow).
    Synflow,
}

impl PruneMethod {
    /// Spec name.
    pub fn as_str(&self) -> &'static str {
        match self {
            PruneMethod::Random => "random",
            PruneMethod::Magnitude => "magnitude",
            PruneMethod::Snip => "snip",
            PruneMethod::Grasp => "grasp",
            PruneMethod::Synflow => "synflow",
        }
    }
}

/// A parsed `--prune` spec.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PruneSpec {
    /// The method.
    pub method: PruneMethod,
    /// Fraction of the pruned tensors' entries set to 0, in `[0, 1)`.
    pub sparsity: f64,
    /// SynFlow's rounds (default 100; 1 for the other methods).
    pub iterations: usize,
}

impl FromStr for PruneSpec {
    type Err = NetError;

    fn from_str(s: &str) -> Result<Self, NetError> {
        let bad = |value: String, allowed: String| NetError::BadConfig {
            key: "prune",
            value,
            allowed,
        };
        let mut spec = Spec::parse(s, "pruning").map_err(|e| bad(s.into(), e.to_string()))?;
        let method = match spec.name.as_str() {
            "random" => PruneMethod::Random,
            "magnitude" => PruneMethod::Magnitude,
            "snip" => PruneMethod::Snip,
            "grasp" => PruneMethod::Grasp,
            "synflow" => PruneMethod::Synflow,
            other => {
                return Err(bad(
                    other.into(),
                    format!("one of {} with :sparsity=S", PRUNE_NAMES.join(", ")),
                ));
            }
        };
        let sparsity = spec
            .get_f64_opt("sparsity")
            .map_err(|e| bad(s.into(), e.to_string()))?
            .ok_or_else(|| {
                bad(
                    s.into(),
                    format!("{}:sparsity=S with S in [0, 1)", spec.name),
                )
            })?;
        if !(0.0..1.0).contains(&sparsity) {
            return Err(bad(
                format!("sparsity={}", fmt_f64(sparsity)),
                "a sparsity in [0, 1)".into(),
            ));
        }
        let iterations = if method == PruneMethod::Synflow {
            let n = spec
                .get_usize("iterations", 100)
                .map_err(|e| bad(s.into(), e.to_string()))?;
            if n == 0 {
                return Err(bad("iterations=0".into(), "a whole number > 0".into()));
            }
            n
        } else {
            1
        };
        spec.finish().map_err(|e| bad(s.into(), e.to_string()))?;
        Ok(PruneSpec {
            method,
            sparsity,
            iterations,
        })
    }
}

impl fmt::Display for PruneSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:sparsity={}",
            self.method.as_str(),
            fmt_f64(self.sparsity)
        )?;
        if self.method == PruneMethod::Synflow && self.iterations != 100 {
            write!(f, ",iterations={}", self.iterations)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// u-muP's tau rule: `a^2 + b^2 = 1`; a resmlp of 4 blocks adds its branches with
    /// `b^2` 1/5, 1/6, 1/7, 1/8 (the stream then holds the input and all branches 1 : 1);
    /// a transformer's 8 branches of two kinds start at 1/5 too; other scales have none.
    #[test]
    fn unit_adds_keep_the_stream_at_unit_variance() {
        for k in 0..4 {
            let (a, b) = BranchScale::Umup.unit_add(k, 4, 1).unwrap();
            assert!((a * a + b * b - 1.0).abs() < 1e-12);
            assert!((b * b - 1.0 / (5 + k) as f64).abs() < 1e-12, "{k}: {b}");
        }
        let (_, b) = BranchScale::Umup.unit_add(0, 8, 2).unwrap();
        assert!((b * b - 0.2).abs() < 1e-12);
        assert_eq!(BranchScale::InvDepth.unit_add(0, 4, 1), None);
        assert_eq!("umup".parse::<BranchScale>().unwrap(), BranchScale::Umup);
        assert_eq!(BranchScale::Umup.to_string(), "umup");
    }

    use super::*;

    #[test]
    fn specs_parse_print_and_refuse() {
        let s: PruneSpec = "snip:sparsity=0.9".parse().unwrap();
        assert_eq!(s.method, PruneMethod::Snip);
        assert_eq!(s.to_string(), "snip:sparsity=0.9");
        let f: PruneSpec = "synflow:sparsity=0.5,iterations=10".parse().unwrap();
        assert_eq!(f.iterations, 10);
        assert_eq!(f.to_string(), "synflow:sparsity=0.5,iterations=10");
        for bad in [
            "snip",
            "snip:sparsity=1",
            "snip:sparsity=-0.1",
            "snap:sparsity=0.5",
            "random:sparsity=0.5,iterations=3",
            "synflow:sparsity=0.5,iterations=0",
        ] {
            assert!(bad.parse::<PruneSpec>().is_err(), "{bad}");
        }
        let e = "snip:sparsity=1.5"
            .parse::<PruneSpec>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("[0, 1)"), "{e}");
    }
}
