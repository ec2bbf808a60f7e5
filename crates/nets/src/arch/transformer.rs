//! Transformer: `depth` blocks on sequences of `seq-len` tokens of `width` (d-model)
//! features. A block is multi-head self-attention and an MLP, each a residual branch:
//!
//! - attention: `u = LN(x)` (pre-norm; `u = x` otherwise), `q, k, v = u W_q + b_q, ...`
//!   split into `heads` heads of `d/heads` features, `A = softmax(q k^T / sqrt(d/heads))`
//!   per head (future tokens masked with `--causal`), `o = A v` with heads concatenated,
//!   branch `alpha (o W_o + b_o)`;
//! - MLP: `u = LN(x)`, `phi(u W_1 + b_1) W_2 + b_2` with `W_1` `[d, mlp-ratio d]`, branch
//!   scaled by alpha;
//! - each branch is added to the stream (`--shortcut none`: replaces it), then normalized
//!   with `--norm-position post` (the original transformer's post-LN). `--skip-scale a`
//!   multiplies the stream before the add: `LN(a x + branch)` is DeepNorm (Wang et al.
//!   2022), whose `a = (2 N)^(1/4)` over `N` blocks is the default with `--init deepnet`
//!   and post-LN.
//!
//! Normalization (`--norm layer` by default, or `rms`, or `none`) is per token over its
//! features. `--attention-only` drops the MLP. There is no final normalization after the
//! last block unless `--final-norm`: the residual stream is what is measured.
//!
//! The parts of today's models: `--embedding V` (token ids looked up in a table),
//! `--positions learned|rope`, `--tie-unembedding` (the logits `x E^T` as the output),
//! `--mlp swiglu|geglu|glu`, `--qk-norm` and `--kv-heads` (grouped-query attention).
//!
//! `--init-role ROLE=SPEC` (repeatable) gives one role of weights its own initializer:
//! `query`, `key`, `value`, `output` (the attention's four maps), `mlp-up`, `mlp-down`;
//! the others take `--init`, so mixed strategies in one model are expressible.
//!
//! Sites per block: `attn` (the attention output `o`, before `W_o`), `attn.branch` (the
//! scaled attention branch before the add), `attn.out` (the stream after the attention add,
//! only with an MLP), `mlp.hidden` (`phi` of the MLP's first map), `mlp.branch`, and `out`
//! (the stream after the block); `embed` (the stream entering block 1) with tables,
//! `final` and `logits` after the last block. `attn` carries the attention entropy and the weight
//! gradients by role; `attn`, `attn.out` and `out` the token statistics.

use std::fmt;
use std::str::FromStr;

#[cfg(feature = "burn")]
use burn::tensor::activation::softmax;
#[cfg(feature = "burn")]
use burn::tensor::module::embedding;
#[cfg(feature = "burn")]
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};
use sigprop_init::{FillContext, Layout, ResidualContext, Scheme, fans};
use sigprop_theory::{RoleVariances, TransformerStream};

use super::Capabilities;
use super::{LINEAR_SITE, 
    Architecture, INPUT_CORR_SETTING, LinearIds, LsuvLayer, ParamBuilder, ParamId, Setting, SettingKind, positive,
    refuse_fixup,
};
use super::{NetConfig, ResolvedNet, TheoryKind};
use crate::options::{BRANCH_SCALE_SETTING, text_or_number, BranchScale, InitSpec, NORM_POSITION_SETTING, NORM_SETTING, Norm, NormPosition, SHORTCUT_SETTING, Shortcut};
use crate::error::NetError;
use crate::params::Params;
#[cfg(feature = "burn")]
use crate::forward::{
    DeviceParams, Recorder, SiteIn, SiteKind, WeightGrad, in_dtype, linear, normalize, scale_bwd,
    scale_fwd, unit_linear,
};

/// The transformer and its own settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Transformer {
    /// Tokens per sequence.
    pub seq_len: usize,
    /// Attention heads (a divisor of the width).
    pub heads: usize,
    /// Hidden units of the MLP per feature.
    pub mlp_ratio: usize,
    /// Each token attends only to itself and the tokens before it.
    pub causal: bool,
    /// Blocks without the MLP sublayer.
    pub attention_only: bool,
    /// Pairwise correlation of the input tokens of a sequence, in [0, 1).
    pub input_corr: f64,
    /// Normalization per token: none, layer (default) or rms.
    pub norm: Norm,
    /// Pre-LN (default) or post-LN.
    pub norm_position: NormPosition,
    /// The branch multiplier.
    pub branch_scale: BranchScale,
    /// With or without the skip connections.
    pub shortcut: Shortcut,
    /// The skip multiplier: `x + branch` becomes `a x + branch`.
    pub skip_scale: SkipScale,
    /// Initializers of single roles of weights (the rest take the network's `init`).
    pub init_role: Vec<RoleInit>,
    /// The MLP: plain, or gated (GLU, SwiGLU, GeGLU).
    pub mlp: MlpKind,
    /// Each head's queries and keys normalized over their features before the scores.
    pub qk_norm: bool,
    /// The stream normalized after the last block.
    pub final_norm: bool,
    /// Positions: none, learned (a table added to the tokens), or rotary (RoPE) on each
    /// head's queries and keys.
    pub positions: Positions,
    /// Token ids drawn uniformly from a vocabulary of this size and looked up in an
    /// embedding table (0: Gaussian tokens, no table).
    pub embedding: usize,
    /// The output head is the embedding table transposed: per-token logits over the
    /// vocabulary.
    pub tie_unembedding: bool,
    /// Key-value heads of grouped-query attention, a divisor of `heads` (0: one per query
    /// head, multi-head attention).
    pub kv_heads: usize,
    /// The attention logits' multiplier: `1/sqrt(d_head)`, or muP's `1/d_head`.
    pub score_scale: ScoreScale,
    /// The attention matrix: softmax, or shaped (the identity at initialization).
    pub attention: AttentionKind,
    /// How the attention weights start: each from its role's initializer, or mimetic.
    pub attention_init: AttentionInit,
}

/// `--attention-init`: how a block's attention weights start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionInit {
    /// Each weight from its role's initializer (`--init`, `--init-role`).
    #[default]
    Independent,
    /// Mimetic initialization (Trockman & Kolter 2023): each head's `W_q W_k^T` is the
    /// best rank-`d_head` approximation of `a1 Z1 + b1 I`, and `W_v W_o = a2 Z2 - b2 I`,
    /// `Z` with i.i.d. `N(0, 1/d)` entries, both factored by their SVD `U S V^T` as
    /// `(U sqrt(S)) (V sqrt(S))^T`: attention that starts out attending to each token
    /// itself, the identity-like maps the authors found in pre-trained vision transformers.
    Mimetic,
}

/// Mimetic initialization's `(a1, b1)` of `W_q W_k^T ~ a1 Z1 + b1 I` and `(a2, b2)` of
/// `W_v W_o ~ a2 Z2 - b2 I` (Trockman & Kolter 2023's defaults).
pub const MIMETIC_QK: (f64, f64) = (0.7, 0.7);
/// See [`MIMETIC_QK`].
pub const MIMETIC_VO: (f64, f64) = (0.4, 0.4);

/// `a Z + b I` for `Z` `[d, d]` of i.i.d. `N(0, 1/d)` entries drawn from the key
/// `(seed, path)`, and its SVD `U S V^T` (faer's, sequential, so the same on every machine):
/// `(U sqrt(S), V sqrt(S))`, each `[d, d]` row-major, whose product `A B^T` is the matrix
/// and whose first `r` columns give its best rank-`r` approximation.
pub(crate) fn mimetic_factors(
    seed: u64,
    path: &str,
    d: usize,
    a: f64,
    b: f64,
) -> Result<(Vec<f64>, Vec<f64>), NetError> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::svd::{self, ComputeSvdVectors};
    use faer::{Mat, Par, diag::Diag};
    let mut z = vec![0f32; d * d];
    sigprop_init::sample::fill_normal(
        &sigprop_init::Key::new(seed, path),
        &mut z,
        0.0,
        1.0 / (d as f64).sqrt(),
    );
    let m = Mat::<f64>::from_fn(d, d, |i, j| {
        a * f64::from(z[i * d + j]) + if i == j { b } else { 0.0 }
    });
    let (mut u, mut v, mut s) = (
        Mat::<f64>::zeros(d, d),
        Mat::<f64>::zeros(d, d),
        Diag::<f64>::zeros(d),
    );
    let scratch = svd::svd_scratch::<f64>(
        d,
        d,
        ComputeSvdVectors::Full,
        ComputeSvdVectors::Full,
        Par::Seq,
        Default::default(),
    );
    svd::svd(
        m.as_ref(),
        s.as_mut(),
        Some(u.as_mut()),
        Some(v.as_mut()),
        Par::Seq,
        MemStack::new(&mut MemBuffer::new(scratch)),
        Default::default(),
    )
    .map_err(|e| NetError::Readback {
        what: "mimetic initialization's SVD",
        why: format!("{e:?}"),
    })?;
    let root: Vec<f64> = s.column_vector().iter().map(|x| x.max(0.0).sqrt()).collect();
    let left = (0..d * d).map(|k| u[(k / d, k % d)] * root[k % d]).collect();
    let right = (0..d * d).map(|k| v[(k / d, k % d)] * root[k % d]).collect();
    Ok((left, right))
}

/// `--attention`: the matrix that mixes a sequence's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionKind {
    /// `A = softmax(s q k^T + mask)`.
    #[default]
    Softmax,
    /// Shaped attention (Noci et al. 2023; He et al. 2023): `A = I + softmax(s q k^T + mask)
    /// - C`, `C` the softmax of the mask alone (uniform over the visible keys), with the
    /// query map starting at 0 (unless `--init-role query=` says otherwise): the logits are
    /// then 0, `softmax = C`, and `A = I` exactly at initialization.
    Shaped,
}

/// `--score-scale`: the multiplier of the attention logits `q k^T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ScoreScale {
    /// `1/sqrt(d_head)` (Vaswani et al. 2017): unit-variance logits for independent `q`
    /// and `k` of unit entries.
    #[default]
    #[serde(rename = "1/sqrt(d)")]
    InvSqrt,
    /// `1/d_head` (Yang et al. 2022, Tensor Programs V, muP): training correlates `q` and
    /// `k`, so `q k^T` grows like `d_head`, and only `1/d_head` keeps the logits of every
    /// width the same size after the first steps (`--param mup` sets it).
    #[serde(rename = "1/d")]
    Inv,
}

/// `--positions`: how a transformer knows where a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Positions {
    /// None: attention is permutation-equivariant over the tokens.
    #[default]
    None,
    /// A learned table `P` `[seq-len, width]` (init role `position`) added to the tokens
    /// before the first block (GPT-2's and ViT's).
    Learned,
    /// Rotary position embedding (Su et al. 2021): each head's queries and keys rotated
    /// pair by pair by the angle `t theta_i`, `theta_i = 10000^(-2i/d_head)`, the halves
    /// `(x_i, x_(i + d_head/2))` paired (GPT-NeoX's and LLaMA's layout).
    Rope,
}

/// The rotary base (RoFormer's and LLaMA's).
pub const ROPE_BASE: f64 = 10_000.0;

/// `--mlp`: the MLP sublayer of a transformer block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MlpKind {
    /// `phi(u W_1 + b_1) W_2 + b_2`, `phi` the network's activation (GELU in GPT-2 and ViT).
    #[default]
    #[serde(alias = "gelu")]
    Plain,
    /// `(phi(u W_g + b_g) * (u W_1 + b_1)) W_2 + b_2` with the network's activation as the
    /// gate (Dauphin et al. 2017; Shazeer 2020).
    Glu,
    /// The gated MLP with a SiLU gate (LLaMA's; Shazeer 2020).
    Swiglu,
    /// The gated MLP with a GELU gate (Shazeer 2020).
    Geglu,
}

const MLP_ALLOWED: &str = "one of: plain (alias gelu), glu, swiglu, geglu";

impl MlpKind {
    /// The gate's activation, for a gated MLP (`network`: the network's activation).
    pub fn gate(self, network: sigprop_init::Activation) -> Option<sigprop_init::Activation> {
        match self {
            MlpKind::Plain => None,
            MlpKind::Glu => Some(network),
            MlpKind::Swiglu => Some(sigprop_init::Activation::Silu),
            MlpKind::Geglu => Some(sigprop_init::Activation::Gelu),
        }
    }
}

/// The multiplier of the skip connection.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(into = "String")]
pub enum SkipScale {
    /// DeepNorm's `(2 N)^(1/4)` for a post-LN network initialized with `deepnet`, else 1
    /// (DeepNorm is a post-LN rule: before a pre-LN branch, `a > 1` compounds over the
    /// blocks).
    #[default]
    Auto,
    /// DeepNorm's `(2 N)^(1/4)` over `N` blocks, whatever the initializer.
    DeepNorm,
    /// A fixed multiplier > 0.
    Value(f64),
}

const SKIP_SCALE_ALLOWED: &str = "auto, deepnorm or a number > 0";

impl SkipScale {
    /// The multiplier for a network of `blocks` blocks initialized with `init`, `post` for
    /// post-LN.
    pub fn at_init(self, blocks: usize, init: &Scheme, post: bool) -> f64 {
        let deepnorm = (2.0 * blocks as f64).powf(0.25);
        match self {
            SkipScale::Auto if post && matches!(init, Scheme::DeepNet) => deepnorm,
            SkipScale::Auto => 1.0,
            SkipScale::DeepNorm => deepnorm,
            SkipScale::Value(v) => v,
        }
    }
}

impl fmt::Display for SkipScale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipScale::Auto => f.write_str("auto"),
            SkipScale::DeepNorm => f.write_str("deepnorm"),
            SkipScale::Value(v) => write!(f, "{}", sigprop_init::fmt_f64(*v)),
        }
    }
}

impl FromStr for SkipScale {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, NetError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(SkipScale::Auto),
            "deepnorm" => Ok(SkipScale::DeepNorm),
            other => match other.parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => Ok(SkipScale::Value(v)),
                _ => Err(NetError::BadConfig {
                    key: "skip-scale",
                    value: s.to_string(),
                    allowed: SKIP_SCALE_ALLOWED.into(),
                }),
            },
        }
    }
}

impl From<SkipScale> for String {
    fn from(s: SkipScale) -> String {
        s.to_string()
    }
}

impl<'de> Deserialize<'de> for SkipScale {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text_or_number(d, SKIP_SCALE_ALLOWED)
    }
}

/// A role of weights in a transformer block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `W_q`.
    Query,
    /// `W_k`.
    Key,
    /// `W_v`.
    Value,
    /// `W_o`, the attention's output projection.
    Output,
    /// `W_1`, the MLP's up projection.
    MlpUp,
    /// `W_2`, the MLP's down projection.
    MlpDown,
    /// `W_g`, a gated MLP's gate.
    MlpGate,
    /// The token embedding table `E` `[vocab, width]` (and the tied unembedding `E^T`).
    Embedding,
    /// The learned positions `P` `[seq-len, width]`.
    Position,
}

/// Names of the roles `--init-role` takes.
pub const ROLE_NAMES: &[&str] = &[
    "query", "key", "value", "output", "mlp-up", "mlp-down", "mlp-gate", "embedding", "position",
];

impl Role {
    /// The role's name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Query => "query",
            Role::Key => "key",
            Role::Value => "value",
            Role::Output => "output",
            Role::MlpUp => "mlp-up",
            Role::MlpDown => "mlp-down",
            Role::MlpGate => "mlp-gate",
            Role::Embedding => "embedding",
            Role::Position => "position",
        }
    }
}

/// One `ROLE=SPEC`: the initializer of every weight of that role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct RoleInit {
    /// The role.
    pub role: Role,
    /// Its initializer.
    pub spec: InitSpec,
}

impl FromStr for RoleInit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (role, spec) = s
            .split_once('=')
            .ok_or_else(|| format!("\"{s}\" is not ROLE=SPEC"))?;
        let role = match role.trim() {
            "query" => Role::Query,
            "key" => Role::Key,
            "value" => Role::Value,
            "output" => Role::Output,
            "mlp-up" => Role::MlpUp,
            "mlp-down" => Role::MlpDown,
            "mlp-gate" => Role::MlpGate,
            "embedding" => Role::Embedding,
            "position" => Role::Position,
            other => {
                return Err(format!(
                    "unknown role \"{other}\"; expected one of: {}",
                    ROLE_NAMES.join(", ")
                ));
            }
        };
        let spec: InitSpec = spec.trim().parse().map_err(|e| format!("{e}"))?;
        let scheme = spec.scheme();
        if scheme.data_driven() || scheme.needs_fixup() || scheme.is_critical().is_some() {
            return Err(format!(
                "{} needs the whole network; a role takes an initializer of its own weights",
                scheme.name()
            ));
        }
        Ok(RoleInit { role, spec })
    }
}

impl TryFrom<String> for RoleInit {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<RoleInit> for String {
    fn from(r: RoleInit) -> String {
        r.to_string()
    }
}

impl fmt::Display for RoleInit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.role.name(), self.spec)
    }
}

impl Default for Transformer {
    fn default() -> Self {
        Transformer {
            seq_len: 64,
            heads: 4,
            mlp_ratio: 4,
            causal: false,
            attention_only: false,
            input_corr: 0.0,
            norm: Norm::Layer,
            norm_position: NormPosition::Pre,
            branch_scale: BranchScale::One,
            shortcut: Shortcut::Identity,
            skip_scale: SkipScale::Auto,
            init_role: Vec::new(),
            mlp: MlpKind::Plain,
            qk_norm: false,
            final_norm: false,
            positions: Positions::None,
            embedding: 0,
            tie_unembedding: false,
            kv_heads: 0,
            score_scale: ScoreScale::InvSqrt,
            attention: AttentionKind::Softmax,
            attention_init: AttentionInit::Independent,
        }
    }
}

/// The transformer's handles: the tables before the blocks, and the blocks.
pub(crate) struct TransformerLayout {
    embedding: Option<ParamId>,
    positions: Option<ParamId>,
    blocks: Vec<TransformerBlock>,
}

/// One block's handles.
pub(crate) struct TransformerBlock {
    q: LinearIds,
    k: LinearIds,
    v: LinearIds,
    o: LinearIds,
    attn_alpha: Option<ParamId>,
    mlp: Option<MlpIds>,
}

/// The MLP sublayer's handles.
pub(crate) struct MlpIds {
    up: LinearIds,
    gate: Option<LinearIds>,
    down: LinearIds,
    alpha: Option<ParamId>,
}

#[cfg(feature = "burn")]
/// The score added for masked (future) keys: softmax subtracts each row's maximum (a
/// finite diagonal score), so these weigh exactly 0 whatever the scale of the scores (a
/// finite -1e9 would not mask scores of 1e9 and more, as an unnormalized deep stream makes).
const MASKED: f32 = f32::NEG_INFINITY;

/// The smallest head the stream theory takes: its scores are sums of `d/heads` products,
/// Gaussian only for wide heads (at 32 features the softmax moments move by about 0.5%).
pub const MIN_THEORY_HEAD_DIM: usize = 16;

impl Transformer {
    fn head_dim(&self, width: usize) -> usize {
        width / self.heads
    }

    /// Key-value heads: `kv-heads`, or one per query head.
    fn kv(&self) -> usize {
        if self.kv_heads == 0 { self.heads } else { self.kv_heads }
    }

    /// Whether the stream starts from tables (an embedding or learned positions) rather
    /// than the Gaussian tokens alone.
    fn tables(&self) -> bool {
        self.embedding > 0 || self.positions == Positions::Learned
    }

    /// The features of `role`'s map: `(n_in, n_out)`; a table's `(rows, width)`.
    fn role_dims(&self, role: Role, d: usize) -> (usize, usize) {
        let hidden = self.mlp_ratio * d;
        match role {
            Role::MlpUp | Role::MlpGate => (d, hidden),
            Role::MlpDown => (hidden, d),
            Role::Key | Role::Value => (d, self.kv() * self.head_dim(d)),
            Role::Query | Role::Output => (d, d),
            Role::Embedding => (self.embedding, d),
            Role::Position => (self.seq_len, d),
        }
    }

    /// The initializer of an embedding or position table: its `--init-role`, else
    /// [`super::table_scheme`] of the network's.
    fn table_scheme(&self, net: &ResolvedNet, role: Role) -> Scheme {
        match self.init_role.iter().find(|r| r.role == role) {
            Some(r) => r.spec.scheme().clone(),
            None => super::table_scheme(&net.weight_init),
        }
    }

    /// The initializer of `role`'s weights: its `--init-role`, else zeros for the query of
    /// shaped attention, else the network's.
    fn role_scheme<'a>(&'a self, net: &'a ResolvedNet, role: Role) -> &'a Scheme {
        const ZEROS: &Scheme = &Scheme::Zeros;
        match self.init_role.iter().find(|r| r.role == role) {
            Some(r) => r.spec.scheme(),
            None if role == Role::Query && self.zero_query() => ZEROS,
            None => &net.weight_init,
        }
    }

    /// Whether the query map (weight and bias) starts at 0: shaped attention without a
    /// `--init-role query=`.
    fn zero_query(&self) -> bool {
        self.attention == AttentionKind::Shaped
            && !self.init_role.iter().any(|r| r.role == Role::Query)
    }

    /// `base` with the stream a map of `role` feeds or writes (read by gpt2, small-init,
    /// t-fixup, deepnet).
    fn role_ctx(&self, net: &ResolvedNet, base: FillContext, role: Role) -> FillContext {
        let depth = net.config.depth;
        base.with_residual(ResidualContext {
            blocks: depth,
            branches: depth * if self.attention_only { 1 } else { 2 },
            width: net.config.width,
            writes_stream: matches!(role, Role::Output | Role::MlpDown),
            scores: matches!(role, Role::Query | Role::Key),
        })
    }

    /// The forward mean field of the stream (`sigprop_theory::TransformerStream`), where it
    /// applies: pre-norm or no norm, non-causal attention, heads of at least
    /// [`MIN_THEORY_HEAD_DIM`] features (the scores a sum of that many products, near
    /// Gaussian), every role's weights zero-mean with an exact entry variance spread over all
    /// entries (not data-driven, identity or constant), every bias zero-mean with one
    /// variance.
    pub fn stream_theory(&self, net: &ResolvedNet) -> Option<TransformerStream> {
        if self.causal
            || self.branch_scale == BranchScale::Umup
            || self.mlp != MlpKind::Plain
            || self.qk_norm
            || self.final_norm
            || self.positions != Positions::None
            || self.embedding > 0
            || self.score_scale == ScoreScale::Inv
            || self.attention == AttentionKind::Shaped
            || self.attention_init == AttentionInit::Mimetic
            || self.head_dim(net.config.width) < MIN_THEORY_HEAD_DIM
            || (self.norm != Norm::None && self.norm_position == NormPosition::Post)
            || net.prune.is_some_and(|p| p.sparsity > 0.0)
        {
            return None;
        }
        let d = net.config.width;
        let mut base = FillContext::new(net.activation);
        base.critical_sigma_w = net.critical_sigma_w;
        let mut bias: Option<f64> = None;
        let mut sigma2 = |role: Role| -> Option<f64> {
            let (n_in, n_out) = self.role_dims(role, d);
            let scheme = self.role_scheme(net, role);
            if scheme.data_driven() || scheme.is_structured() {
                return None;
            }
            let ctx = self.role_ctx(net, base.clone(), role);
            let f = fans(&[n_in, n_out], Layout::InOut).ok()?;
            let layout = Layout::Bias {
                fan_in: n_in,
                fan_out: n_out,
            };
            let b = net.bias_init.centred_bias_var(n_out, layout, &ctx)?;
            if bias.is_some_and(|v| (v - b).abs() > 1e-12 * v.max(1e-300)) {
                return None;
            }
            bias = Some(b);
            scheme.centred_sigma2(f, &ctx)
        };
        let mlp = !self.attention_only;
        let sigma2 = RoleVariances {
            query: sigma2(Role::Query)?,
            key: sigma2(Role::Key)?,
            value: sigma2(Role::Value)?,
            output: sigma2(Role::Output)?,
            up: if mlp { sigma2(Role::MlpUp)? } else { 0.0 },
            down: if mlp { sigma2(Role::MlpDown)? } else { 0.0 },
        };
        let depth = net.config.depth;
        let skip = match self.shortcut {
            Shortcut::Identity => self.skip_scale.at_init(depth, &net.weight_init, false),
            Shortcut::None => 0.0,
        };
        let alpha = self.branch_scale.at_init(depth);
        Some(TransformerStream {
            activation: net.activation,
            blocks: depth,
            tokens: self.seq_len,
            mlp,
            norm_eps: (self.norm != Norm::None).then_some(crate::options::NORM_EPS),
            skip2: skip * skip,
            alpha2: alpha * alpha,
            sigma2,
            sigma_b2: bias?,
            input_corr: self.input_corr,
        })
    }

#[cfg(feature = "burn")]
    /// `x` `[b, t, d]` through a linear map, token by token (unit-scaled under u-muP).
    fn linear3(p: &DeviceParams, ids: LinearIds, x: Tensor<3>, unit: bool) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let x = x.reshape([b * t, d]);
        let y = if unit {
            unit_linear(p, ids, x)
        } else {
            linear(p, ids, x)
        };
        let n = y.dims()[1];
        y.reshape([b, t, n])
    }

#[cfg(feature = "burn")]
    /// Each head's vectors `[b, heads, t, d_head]` normalized over their features.
    fn norm_heads(norm: Norm, x: Tensor<4>) -> Tensor<4> {
        let [b, h, t, dh] = x.dims();
        normalize(norm, x.reshape([b * h * t, dh])).reshape([b, h, t, dh])
    }

#[cfg(feature = "burn")]
    /// Each token normalized over its features.
    fn norm_tokens(norm: Norm, x: Tensor<3>) -> Tensor<3> {
        let [b, t, d] = x.dims();
        normalize(norm, x.reshape([b * t, d])).reshape([b, t, d])
    }

#[cfg(feature = "burn")]
    /// `skip x + alpha branch`, `alpha branch` without the skip.
    fn add(&self, x: Tensor<3>, branch: Tensor<3>, skip: f64) -> Tensor<3> {
        match self.shortcut {
            Shortcut::Identity if skip == 1.0 => x + branch,
            Shortcut::Identity => x.mul_scalar(skip) + branch,
            Shortcut::None => branch,
        }
    }

#[cfg(feature = "burn")]
    /// u-muP's weights `(a, b)` of branch `index` (attention `2k`, MLP `2k + 1` in block
    /// `k`, 0-based; `k` alone for attention-only blocks), or none.
    fn unit_add(&self, index: usize, depth: usize) -> Option<(f64, f64)> {
        let kinds = if self.attention_only { 1 } else { 2 };
        self.branch_scale.unit_add(index, depth * kinds, kinds)
    }

#[cfg(feature = "burn")]
    /// The stream's gradient into a branch, scaled by its weight under u-muP.
    fn split(x: &Tensor<3>, add: Option<(f64, f64)>) -> Tensor<3> {
        match add {
            Some((_, b)) => scale_bwd(x.clone(), b),
            None => x.clone(),
        }
    }

#[cfg(feature = "burn")]
    /// `skip x + branch`, or u-muP's `a x + b branch` (the branch's gradient unscaled).
    fn join(&self, x: Tensor<3>, branch: Tensor<3>, skip: f64, add: Option<(f64, f64)>) -> Tensor<3> {
        match add {
            Some((a, b)) => x.mul_scalar(a) + scale_fwd(branch, b),
            None => self.add(x, branch, skip),
        }
    }

#[cfg(feature = "burn")]
    /// u-muP's attention output scale (unit_scaling's `scaled_dot_product_attention` at
    /// mult 1): the inverse of its model of the output's standard deviation with scores
    /// `q k^T / d_head`, between `sqrt(1/T)` (`sqrt(ln T / T)` causal) for uniform
    /// attention over independent tokens and 1 for one-hot attention.
    fn unit_attention_scale(&self, d_head: usize) -> f64 {
        let t = self.seq_len as f64;
        let alpha = 1.0 / (1.0 + 4.0 * d_head as f64);
        let lower = if self.causal {
            (t.ln().max(1.0) / t).sqrt()
        } else {
            t.powf(-0.5)
        };
        // exp(alpha ln 1 + (1 - alpha) ln lower), inverted.
        lower.powf(alpha - 1.0)
    }

#[cfg(feature = "burn")]
    fn scaled(&self, u: Tensor<3>, alpha: Option<ParamId>, p: &DeviceParams, depth: usize) -> Tensor<3> {
        match (alpha, self.branch_scale) {
            (Some(a), _) => u * p.scalar::<3>(a),
            // u-muP weighs the branch in the add (`add_unit`).
            (None, BranchScale::One | BranchScale::Umup) => u,
            (None, s) => u.mul_scalar(s.at_init(depth)),
        }
    }
}

#[cfg(feature = "burn")]
/// RoPE's `cos` and `sin` tables `[1, 1, t, d_head]`: entry `(p, j)` at the angle `p
/// theta_(j mod d_head/2)`.
pub(crate) fn rope_tables(
    t: usize,
    dh: usize,
    device: &burn::tensor::Device,
) -> (Tensor<4>, Tensor<4>) {
    let half = dh / 2;
    let angle = |p: usize, j: usize| {
        let i = (j % half) as f64;
        p as f64 * ROPE_BASE.powf(-2.0 * i / dh as f64)
    };
    let table = |f: fn(f64) -> f64| {
        let v: Vec<f32> = (0..t * dh)
            .map(|k| f(angle(k / dh, k % dh)) as f32)
            .collect();
        Tensor::<4>::from_data(TensorData::new(v, [1, 1, t, dh]), device)
    };
    (table(f64::cos), table(f64::sin))
}

#[cfg(feature = "burn")]
/// `x` `[b, heads, t, d_head]` rotated by RoPE: `x cos + rotate_half(x) sin`,
/// `rotate_half(x) = (-x_2, x_1)` for the halves `x = (x_1, x_2)`: each pair `(x_i, x_(i +
/// d_head/2))` turns by its angle, so every token's norm is kept.
pub(crate) fn rotate(x: Tensor<4>, (cos, sin): &(Tensor<4>, Tensor<4>)) -> Tensor<4> {
    let half = x.dims()[3] / 2;
    let x1 = x.clone().narrow(3, 0, half);
    let x2 = x.clone().narrow(3, half, half);
    let turned = Tensor::cat(vec![x2.neg(), x1], 3);
    x * cos.clone() + turned * sin.clone()
}

impl Architecture for Transformer {
    type Layout = TransformerLayout;

    const SETTINGS: &'static [Setting] = &[
        Setting {
            key: "seq-len",
            help: "Tokens per sequence [default: 64]",
            kind: SettingKind::Whole,
            allowed: "a whole number > 0",
        },
        Setting {
            key: "heads",
            help: "Attention heads, a divisor of --width [default: 4]",
            kind: SettingKind::Whole,
            allowed: "a whole number > 0 that divides the width",
        },
        Setting {
            key: "mlp-ratio",
            help: "MLP hidden units per feature [default: 4]",
            kind: SettingKind::Whole,
            allowed: "a whole number > 0",
        },
        Setting {
            key: "causal",
            help: "Causal attention: each token sees itself and the tokens before it",
            kind: SettingKind::Switch,
            allowed: "true or false",
        },
        Setting {
            key: "attention-only",
            help: "Blocks of attention alone, without the MLP sublayer",
            kind: SettingKind::Switch,
            allowed: "true or false",
        },
        INPUT_CORR_SETTING,
        NORM_SETTING,
        NORM_POSITION_SETTING,
        BRANCH_SCALE_SETTING,
        SHORTCUT_SETTING,
        Setting {
            key: "skip-scale",
            help: "Skip multiplier a: LN(a x + branch); auto is DeepNorm's (2N)^(1/4) with --init deepnet and post-LN, else 1 [default: auto]",
            kind: SettingKind::Text,
            allowed: SKIP_SCALE_ALLOWED,
        },
        Setting {
            key: "init-role",
            help: "ROLE=SPEC, repeatable: one role's initializer (query, key, value, output, mlp-up, mlp-down, mlp-gate, embedding, position); the rest take --init",
            kind: SettingKind::Texts,
            allowed: "ROLE=SPEC, ROLE one of query, key, value, output, mlp-up, mlp-down, mlp-gate, embedding, position",
        },
        Setting {
            key: "mlp",
            help: "The MLP: plain phi(u W1) W2 (alias gelu), or gated (phi(u Wg) * u W1) W2 with glu (--activation), swiglu (SiLU) or geglu (GELU) [default: plain]",
            kind: SettingKind::Text,
            allowed: MLP_ALLOWED,
        },
        Setting {
            key: "positions",
            help: "Positions: none, learned (a table added to the tokens, init role position) or rope (rotary, on each head's queries and keys; an even head size) [default: none]",
            kind: SettingKind::Text,
            allowed: "one of: none, learned, rope",
        },
        Setting {
            key: "embedding",
            help: "Vocabulary: token ids drawn uniformly and looked up in an embedding table (init role embedding); 0 feeds Gaussian tokens [default: 0]",
            kind: SettingKind::Whole,
            allowed: "a whole number (0: Gaussian tokens)",
        },
        Setting {
            key: "tie-unembedding",
            help: "The output head is the embedding table transposed: per-token logits over the vocabulary (needs --embedding)",
            kind: SettingKind::Switch,
            allowed: "true or false",
        },
        Setting {
            key: "attention",
            help: "The attention matrix: softmax, or shaped (I + softmax - C, C uniform over the visible keys, the query map at 0: the identity at init) [default: softmax]",
            kind: SettingKind::Text,
            allowed: "one of: softmax, shaped",
        },
        Setting {
            key: "attention-init",
            help: "How the attention weights start: independent (each from --init or its --init-role), or mimetic (Trockman & Kolter 2023: W_q W_k^T ~ 0.7 Z + 0.7 I per head, W_v W_o = 0.4 Z - 0.4 I, by SVD) [default: independent]",
            kind: SettingKind::Text,
            allowed: "one of: independent, mimetic",
        },
        Setting {
            key: "score-scale",
            help: "The attention logits' multiplier: 1/sqrt(d) or muP's 1/d, d the head size (--param mup sets 1/d) [default: 1/sqrt(d)]",
            kind: SettingKind::Text,
            allowed: "one of: 1/sqrt(d), 1/d",
        },
        Setting {
            key: "kv-heads",
            help: "Key-value heads of grouped-query attention, a divisor of --heads; 0 is one per query head [default: 0]",
            kind: SettingKind::Whole,
            allowed: "0 or a divisor of heads",
        },
        Setting {
            key: "qk-norm",
            help: "Normalize each head's queries and keys over their features before the scores (the --norm kind; RMS with --norm none)",
            kind: SettingKind::Switch,
            allowed: "true or false",
        },
        Setting {
            key: "final-norm",
            help: "Normalize the stream after the last block (the --norm kind; RMS with --norm none): the site final",
            kind: SettingKind::Switch,
            allowed: "true or false",
        },
    ];

    fn validate(&self, cfg: &NetConfig, weight_init: &Scheme) -> Result<(), NetError> {
        positive("seq-len", self.seq_len)?;
        positive("heads", self.heads)?;
        positive("mlp-ratio", self.mlp_ratio)?;
        if !cfg.width.is_multiple_of(self.heads) {
            return Err(NetError::BadConfig {
                key: "heads",
                value: self.heads.to_string(),
                allowed: format!("a divisor of width {}", cfg.width),
            });
        }
        if !(0.0..1.0).contains(&self.input_corr) {
            return Err(NetError::BadConfig {
                key: "input-corr",
                value: self.input_corr.to_string(),
                allowed: "a number with 0 <= c < 1".into(),
            });
        }
        for (i, r) in self.init_role.iter().enumerate() {
            if self.init_role[..i].iter().any(|p| p.role == r.role) {
                return Err(NetError::BadConfig {
                    key: "init-role",
                    value: r.to_string(),
                    allowed: format!("each role once ({} is given twice)", r.role.name()),
                });
            }
        }
        if self.shortcut == Shortcut::None && !matches!(self.skip_scale, SkipScale::Auto) {
            return Err(NetError::BadConfig {
                key: "skip-scale",
                value: self.skip_scale.to_string(),
                allowed: "auto with --shortcut none (there is no skip to scale)".into(),
            });
        }
        if self.positions == Positions::Rope && !self.head_dim(cfg.width).is_multiple_of(2) {
            return Err(NetError::BadConfig {
                key: "positions",
                value: "rope".into(),
                allowed: format!(
                    "rope with an even head size (width {} over {} heads is {})",
                    cfg.width,
                    self.heads,
                    self.head_dim(cfg.width)
                ),
            });
        }
        if self.branch_scale == BranchScale::Umup && !self.init_role.is_empty() {
            return Err(NetError::BadConfig {
                key: "init-role",
                value: self.init_role[0].to_string(),
                allowed: "no init-role with branch-scale umup (u-muP draws every weight from \
                          N(0, 1))"
                    .into(),
            });
        }
        if self.branch_scale == BranchScale::Umup
            && (self.shortcut == Shortcut::None || !matches!(self.skip_scale, SkipScale::Auto))
        {
            return Err(NetError::BadConfig {
                key: "branch-scale",
                value: "umup".into(),
                allowed: "umup with the identity shortcut and skip-scale auto (u-muP's add \
                          weighs the skip itself)"
                    .into(),
            });
        }
        for (role, there) in [
            (Role::Embedding, self.embedding > 0),
            (Role::Position, self.positions == Positions::Learned),
        ] {
            if let Some(r) = self.init_role.iter().find(|r| r.role == role && !there) {
                return Err(NetError::BadConfig {
                    key: "init-role",
                    value: r.to_string(),
                    allowed: format!(
                        "{} only with {}",
                        role.name(),
                        if role == Role::Embedding {
                            "--embedding VOCAB"
                        } else {
                            "--positions learned"
                        }
                    ),
                });
            }
        }
        if self.kv_heads > 0 && !self.heads.is_multiple_of(self.kv_heads) {
            return Err(NetError::BadConfig {
                key: "kv-heads",
                value: self.kv_heads.to_string(),
                allowed: format!("0 or a divisor of heads {}", self.heads),
            });
        }
        if self.embedding > 1 << 24 {
            return Err(NetError::BadConfig {
                key: "embedding",
                value: self.embedding.to_string(),
                allowed: "a vocabulary of at most 2^24 tokens (ids travel as exact f32)".into(),
            });
        }
        if self.tie_unembedding && self.embedding == 0 {
            return Err(NetError::BadConfig {
                key: "tie-unembedding",
                value: "true".into(),
                allowed: "tie-unembedding with --embedding VOCAB (the head is the embedding table)"
                    .into(),
            });
        }
        if self.embedding > 0 && self.input_corr > 0.0 {
            return Err(NetError::BadConfig {
                key: "input-corr",
                value: self.input_corr.to_string(),
                allowed: "0 with --embedding (token ids are drawn independently)".into(),
            });
        }
        if self.tie_unembedding && cfg.loss == crate::options::Loss::CrossEntropy {
            return Err(NetError::BadConfig {
                key: "loss",
                value: "cross-entropy".into(),
                allowed: "projection or mse with tie-unembedding (the logits are the output; a \
                          next-token cross-entropy is not built)"
                    .into(),
            });
        }
        if self.branch_scale == BranchScale::Umup && self.attention == AttentionKind::Shaped {
            return Err(NetError::BadConfig {
                key: "attention",
                value: "shaped".into(),
                allowed: "softmax with branch-scale umup (u-muP's attention scale is a softmax's)"
                    .into(),
            });
        }
        if self.branch_scale == BranchScale::Umup && (self.tables() || self.tie_unembedding) {
            return Err(NetError::BadConfig {
                key: "branch-scale",
                value: "umup".into(),
                allowed: "umup without --embedding and learned positions (u-muP's unit-scaled \
                          tables are not built)"
                    .into(),
            });
        }
        if self.attention_init == AttentionInit::Mimetic {
            let why = if self.kv() != self.heads {
                Some("multi-head attention (kv-heads 0): each head's key is its query's partner")
            } else if self.attention == AttentionKind::Shaped {
                Some("softmax attention (shaped attention's query map starts at 0)")
            } else if self.branch_scale == BranchScale::Umup {
                Some("no branch-scale umup (u-muP draws every weight from N(0, 1))")
            } else if self.init_role.iter().any(|r| {
                matches!(r.role, Role::Query | Role::Key | Role::Value | Role::Output)
            }) {
                Some("no init-role for query, key, value or output (mimetic sets all four)")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(NetError::BadConfig {
                    key: "attention-init",
                    value: "mimetic".into(),
                    allowed: format!("mimetic with {why}"),
                });
            }
        }
        if self.norm == Norm::Batch {
            return Err(NetError::BadConfig {
                key: "norm",
                value: "batch".into(),
                allowed: "none, layer or rms for a transformer (normalized per token)".into(),
            });
        }
        refuse_fixup(cfg, weight_init)
    }

    fn norm(&self) -> Norm {
        self.norm
    }

    /// Batch normalization couples the sequences of a batch; ReZero's and SkipInit's alpha
    /// is a learnable scalar; the tables are looked up, not multiplied, so they do not stack.
    /// Attention mixes the tokens of one sequence only.
    fn seed_batching(&self) -> bool {
        self.norm != Norm::Batch && !self.branch_scale.learnable() && !self.tables()
    }

    /// 16 sequences: 1024 tokens at the default 64 a sequence.
    fn default_batch(&self) -> Option<usize> {
        Some(16)
    }

    /// Mimetic initialization: each block's `W_q`, `W_k` (head by head, the first `d_head`
    /// columns of the factors of `a1 Z1 + b1 I`) and `W_v`, `W_o` (the factors of
    /// `a2 Z2 - b2 I`, `W_o` the right one transposed), drawn from their own keys.
    fn refill(&self, net: &ResolvedNet, params: &mut Params, seed: u64) -> Result<(), NetError> {
        if self.attention_init != AttentionInit::Mimetic {
            return Ok(());
        }
        let d = net.config.width;
        let (heads, dh) = (self.heads, self.head_dim(d));
        for k in 1..=net.config.depth {
            let (mut wq, mut wk) = (vec![0f32; d * d], vec![0f32; d * d]);
            for h in 0..heads {
                let path = format!("blocks.{k}.attn.mimetic.qk.{h}");
                let (q, kk) = mimetic_factors(seed, &path, d, MIMETIC_QK.0, MIMETIC_QK.1)?;
                for i in 0..d {
                    for j in 0..dh {
                        wq[i * d + h * dh + j] = q[i * d + j] as f32;
                        wk[i * d + h * dh + j] = kk[i * d + j] as f32;
                    }
                }
            }
            let path = format!("blocks.{k}.attn.mimetic.vo");
            let (v, o) = mimetic_factors(seed, &path, d, MIMETIC_VO.0, -MIMETIC_VO.1)?;
            let wv: Vec<f32> = v.iter().map(|&x| x as f32).collect();
            // W_o = (V sqrt(S))^T.
            let wo: Vec<f32> = (0..d * d).map(|n| o[(n % d) * d + n / d] as f32).collect();
            for (name, data) in [("q", wq), ("k", wk), ("v", wv), ("o", wo)] {
                let path = format!("blocks.{k}.attn.{name}.weight");
                let t = params.get_mut(&path).ok_or_else(|| NetError::Readback {
                    what: "mimetic initialization",
                    why: format!("no parameter {path}"),
                })?;
                t.data = data;
            }
        }
        Ok(())
    }

    fn declare(&self, b: &mut ParamBuilder<'_>) -> Self::Layout {
        let net = b.net;
        let (depth, d) = (net.config.depth, net.config.width);
        let hidden = self.mlp_ratio * d;
        let alpha = |b: &mut ParamBuilder<'_>, path: String| {
            self.branch_scale
                .learnable()
                .then(|| b.scalar(&path, &Scheme::Zeros))
        };
        let table = |b: &mut ParamBuilder<'_>, path: &str, role: Role| {
            let ctx = self.role_ctx(net, b.ctx(None), role);
            b.table(path, self.role_dims(role, d), &self.table_scheme(net, role), ctx)
        };
        let embedding = (self.embedding > 0).then(|| table(b, "embed.tokens", Role::Embedding));
        let positions = (self.positions == Positions::Learned)
            .then(|| table(b, "embed.positions", Role::Position));
        let kv = self.role_dims(Role::Key, d);
        let blocks = (1..=depth)
            .map(|k| {
                let lin = |b: &mut ParamBuilder<'_>, name: &str, dims, role| {
                    let ctx = self.role_ctx(net, b.ctx(None), role);
                    let w = self.role_scheme(net, role);
                    b.linear(&format!("blocks.{k}.{name}"), dims, w, ctx, true)
                };
                let q = lin(b, "attn.q", (d, d), Role::Query);
                // Shaped attention's zero query map: its bias too, so the logits are 0.
                if let Some(bias) = q.bias.filter(|_| self.zero_query()) {
                    b.jobs[bias.0].scheme = Scheme::Zeros;
                }
                let kk = lin(b, "attn.k", kv, Role::Key);
                let v = lin(b, "attn.v", kv, Role::Value);
                let o = lin(b, "attn.o", (d, d), Role::Output);
                let attn_alpha = alpha(b, format!("blocks.{k}.attn.alpha"));
                let mlp = (!self.attention_only).then(|| {
                    let up = lin(b, "mlp.up", (d, hidden), Role::MlpUp);
                    let gate = (self.mlp != MlpKind::Plain)
                        .then(|| lin(b, "mlp.gate", (d, hidden), Role::MlpGate));
                    let down = lin(b, "mlp.down", (hidden, d), Role::MlpDown);
                    let alpha = alpha(b, format!("blocks.{k}.mlp.alpha"));
                    MlpIds {
                        up,
                        gate,
                        down,
                        alpha,
                    }
                });
                TransformerBlock {
                    q,
                    k: kk,
                    v,
                    o,
                    attn_alpha,
                    mlp,
                }
            })
            .collect();
        TransformerLayout {
            embedding,
            positions,
            blocks,
        }
    }

    /// Token ids `[batch, seq-len]` with an embedding, else the tokens' features `[batch,
    /// seq-len width]`.
    fn input_shape(&self, net: &ResolvedNet, batch: usize) -> [usize; 2] {
        if self.embedding > 0 {
            return [batch, self.seq_len];
        }
        [batch, self.seq_len.saturating_mul(net.config.width)]
    }

    /// The stream's tokens, or with a tied unembedding the logits of every token.
    fn output_features(&self, cfg: &NetConfig) -> usize {
        // Saturating: the memory estimate asks before any size is checked.
        let per_token = if self.tie_unembedding {
            self.embedding
        } else {
            cfg.width
        };
        self.seq_len.saturating_mul(per_token)
    }

    /// With an embedding: token ids uniform on the vocabulary, i.i.d. over the tokens, from
    /// the key `<key>.tokens` (as f32, exact below 2^24).
    fn input_keyed(&self, seed: u64, key: &str, shape: [usize; 2]) -> Result<Vec<f32>, NetError> {
        if self.embedding == 0 {
            return crate::inputs::normal_input(seed, key, shape);
        }
        crate::inputs::token_ids(seed, key, shape, self.embedding)
    }

    fn token_input(&self) -> Option<usize> {
        (self.embedding > 0).then_some(self.embedding)
    }

    /// The stream's tokens, also with a tied head (whose logits are the output).
    fn primary_features(&self, net: &ResolvedNet, _: usize) -> usize {
        self.seq_len * net.config.width
    }

    fn mup_scores(&self) -> Option<bool> {
        Some(self.score_scale == ScoreScale::Inv)
    }

    /// Tokens `x_t = sqrt(c) s + sqrt(1 - c) e_t`: `s` one `N(0, I)` vector per sequence
    /// (key `input.shared`), `e_t` i.i.d. `N(0, I)` per token (key `input`). Every entry
    /// has variance 1 and two tokens of a sequence correlation `c`; `c = 0` is the i.i.d.
    /// input of every other architecture, bit for bit.
    fn input(&self, seed: u64, shape: [usize; 2]) -> Result<Vec<f32>, NetError> {
        if self.embedding > 0 {
            return self.input_keyed(seed, "input", shape);
        }
        let mut x = crate::inputs::normal_input(seed, "input", shape)?;
        if self.input_corr > 0.0 {
            let [batch, features] = shape;
            let d = features / self.seq_len;
            let shared = crate::inputs::normal_input(seed, "input.shared", [batch, d])?;
            let (a, e) = (self.input_corr.sqrt(), (1.0 - self.input_corr).sqrt());
            for (i, v) in x.iter_mut().enumerate() {
                let (row, j) = (i / features, i % d);
                *v = (a * f64::from(shared[row * d + j]) + e * f64::from(*v)) as f32;
            }
        }
        Ok(x)
    }

#[cfg(feature = "burn")]
    fn forward<R: Recorder>(
        &self,
        net: &ResolvedNet,
        layout: &Self::Layout,
        p: &DeviceParams,
        x: Tensor<2>,
        rec: &mut R,
    ) -> Tensor<2> {
        let (batch, t, d) = (x.dims()[0], self.seq_len, net.config.width);
        let blocks = &layout.blocks;
        let depth = net.config.depth;
        let post_ln = self.norm != Norm::None && self.norm_position == NormPosition::Post;
        let skip = self.skip_scale.at_init(depth, &net.weight_init, post_ln);
        let (h, dh) = (self.heads, self.head_dim(d));
        let (pre, post) = match self.norm_position {
            NormPosition::Pre => (self.norm, Norm::None),
            NormPosition::Post => (Norm::None, self.norm),
        };
        // Shaped attention's `I - C`: `C` uniform over each query's visible keys.
        let shaped = (self.attention == AttentionKind::Shaped).then(|| {
            let m: Vec<f32> = (0..t * t)
                .map(|i| {
                    let (q, k) = (i / t, i % t);
                    let seen = if self.causal { q + 1 } else { t };
                    let c = if k < seen { 1.0 / seen as f32 } else { 0.0 };
                    f32::from(q == k) - c
                })
                .collect();
            in_dtype(Tensor::<4>::from_data(TensorData::new(m, [1, 1, t, t]), &x.device()), p.dtype())
        });
        let mask = self.causal.then(|| {
            let m: Vec<f32> = (0..t * t)
                .map(|i| if i % t > i / t { MASKED } else { 0.0 })
                .collect();
            in_dtype(Tensor::<4>::from_data(TensorData::new(m, [1, 1, t, t]), &x.device()), p.dtype())
        });
        let heads = |y: Tensor<3>| {
            let n = y.dims()[2] / dh;
            y.reshape([batch, t, n, dh]).swap_dims(1, 2)
        };
        // Grouped-query attention: key-value head `j` serves query heads `j g .. (j + 1) g`.
        let group = h / self.kv();
        let share = |y: Tensor<4>| {
            if group == 1 {
                y
            } else {
                let [b, n, t, dh] = y.dims();
                y.unsqueeze_dim::<5>(2)
                    .repeat_dim(2, group)
                    .reshape([b, n * group, t, dh])
            }
        };
        let site = |name: &'static str, layer: usize, kind: SiteKind| SiteIn {
            site: name,
            layer,
            kind,
            weight: None,
            scale: None,
            tokens: None,
            attention: None,
            roles: Vec::new(),
            node: None,
        };
        let unit = net.unit_scaled();
        let rope = (self.positions == Positions::Rope).then(|| {
            let (cos, sin) = rope_tables(t, dh, &x.device());
            (in_dtype(cos, p.dtype()), in_dtype(sin, p.dtype()))
        });
        // QK-norm's and the final norm's kind: the network's, RMS without one.
        let qk = if self.norm == Norm::None {
            Norm::Rms
        } else {
            self.norm
        };
        // u-muP: scores q k^T / d_head, and the attention's output scale.
        let (score_scale, attn_scale) = if unit {
            (1.0 / dh as f64, self.unit_attention_scale(dh))
        } else if self.score_scale == ScoreScale::Inv {
            (1.0 / dh as f64, 1.0)
        } else {
            (1.0 / (dh as f64).sqrt(), 1.0)
        };
        let kinds = if self.attention_only { 1 } else { 2 };
        let mut x: Tensor<3> = match layout.embedding {
            Some(e) => embedding(p.matrix(e), x.int()),
            None => x.reshape([batch, t, d]),
        };
        if let Some(pos) = layout.positions {
            x = x + p.matrix(pos).unsqueeze::<3>();
        }
        if self.tables() {
            let s = SiteIn {
                tokens: Some(t),
                ..site("embed", 1, SiteKind::Sum)
            };
            x = rec.site(s, x);
        }
        for (k, blk) in blocks.iter().enumerate() {
            let layer = k + 1;
            let add = self.unit_add(kinds * k, depth);
            let u = Self::norm_tokens(pre, Self::split(&x, add));
            let qkv = |ids| scale_bwd(heads(Self::linear3(p, ids, u.clone(), unit)), attn_scale);
            let (q, kk, v) = (qkv(blk.q), qkv(blk.k), qkv(blk.v));
            let (q, kk) = if self.qk_norm {
                (Self::norm_heads(qk, q), Self::norm_heads(qk, kk))
            } else {
                (q, kk)
            };
            let (q, kk) = match &rope {
                Some(r) => (rotate(q, r), rotate(kk, r)),
                None => (q, kk),
            };
            let (kk, v) = (share(kk), share(v));
            let mut scores = q.matmul(kk.swap_dims(2, 3)).mul_scalar(score_scale);
            if let Some(m) = &mask {
                scores = scores + m.clone();
            }
            let a = softmax(scores, 3);
            let mix = match &shaped {
                Some(offset) => a.clone() + offset.clone(),
                None => a.clone(),
            };
            let o = scale_fwd(mix.matmul(v), attn_scale)
                .swap_dims(1, 2)
                .reshape([batch, t, d]);
            let s = SiteIn {
                weight: Some(WeightGrad::Leaf(blk.o.weight)),
                tokens: Some(t),
                attention: Some(a),
                roles: vec![
                    ("q", blk.q.weight),
                    ("k", blk.k.weight),
                    ("v", blk.v.weight),
                    ("o", blk.o.weight),
                ],
                ..site("attn", layer, SiteKind::Attention)
            };
            let o = rec.site(s, o);
            let branch = self.scaled(Self::linear3(p, blk.o, o, unit), blk.attn_alpha, p, depth);
            let s = SiteIn {
                scale: blk.attn_alpha,
                ..site("attn.branch", layer, SiteKind::Branch)
            };
            let branch = rec.site(s, branch);
            x = Self::norm_tokens(post, self.join(x, branch, skip, add));
            if let Some(mlp) = &blk.mlp {
                let s = SiteIn {
                    tokens: Some(t),
                    ..site("attn.out", layer, SiteKind::Sum)
                };
                x = rec.site(s, x);
                let add = self.unit_add(kinds * k + 1, depth);
                let u = Self::norm_tokens(pre, Self::split(&x, add));
                let z = Self::linear3(p, mlp.up, u.clone(), unit);
                let hidden = match (mlp.gate, self.mlp.gate(net.activation)) {
                    (Some(gate), Some(phi)) => {
                        let kind = net.activation_site_of(phi);
                        let g = rec.site(site("mlp.gate", layer, kind), Self::linear3(p, gate, u, unit));
                        let s = SiteIn {
                            weight: Some(WeightGrad::Leaf(mlp.down.weight)),
                            ..site("mlp.hidden", layer, SiteKind::Gated)
                        };
                        rec.site(s, g * z)
                    }
                    _ => {
                        let s = SiteIn {
                            weight: Some(WeightGrad::Leaf(mlp.down.weight)),
                            ..site("mlp.hidden", layer, net.activation_site())
                        };
                        rec.site(s, z)
                    }
                };
                let branch = self.scaled(Self::linear3(p, mlp.down, hidden, unit), mlp.alpha, p, depth);
                let s = SiteIn {
                    scale: mlp.alpha,
                    ..site("mlp.branch", layer, SiteKind::Branch)
                };
                let branch = rec.site(s, branch);
                x = Self::norm_tokens(post, self.join(x, branch, skip, add));
            }
            let s = SiteIn {
                tokens: Some(t),
                ..site("out", layer, SiteKind::Sum)
            };
            x = rec.site(s, x);
        }
        if self.final_norm {
            let s = SiteIn {
                tokens: Some(t),
                ..site("final", depth, SiteKind::Sum)
            };
            x = rec.site(s, Self::norm_tokens(qk, x));
        }
        if let (true, Some(e)) = (self.tie_unembedding, layout.embedding) {
            let vocab = self.embedding;
            let logits = x
                .reshape([batch * t, d])
                .matmul(p.matrix(e).transpose())
                .reshape([batch, t, vocab]);
            let logits = rec.site(site("logits", depth, SiteKind::Sum), logits);
            return logits.reshape([batch, t * vocab]);
        }
        x.reshape([batch, t * d])
    }

    fn lsuv_layers(&self, _: &Self::Layout) -> Option<Vec<LsuvLayer>> {
        None
    }

    fn branch_scale(&self) -> Option<BranchScale> {
        Some(self.branch_scale)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            residual: true,
            own_inits: &[
                ("gpt2", "N(0, 0.02^2), scaled outputs"),
                ("small-init", "N(0, 2/(5d))"),
                ("t-fixup", "Xavier, 0.67 N^(-1/4)"),
                ("deepnet", "Xavier, DeepNorm gain"),
            ],
            ..Capabilities::PLAIN
        }
    }

    fn describe(&self) -> &'static str {
        "transformer blocks (multi-head attention and MLP, pre/post-LN); rows per sublayer and block"
    }

    fn primary_site(&self) -> &'static str {
        "out"
    }

    fn theory(&self, _: &NetConfig) -> TheoryKind {
        if self.branch_scale == BranchScale::Umup {
            return TheoryKind::None;
        }
        TheoryKind::TransformerStream
    }

    fn input_token_corr(&self) -> Option<f64> {
        Some(self.input_corr)
    }

    fn axis_name(&self) -> &'static str {
        "block"
    }

    fn pass_sizes(&self, cfg: &NetConfig, b: f64) -> [f64; 4] {
        let (d, depth) = (cfg.width as f64, cfg.depth as f64);
        let (t, r, h) = (
            self.seq_len as f64,
            self.mlp_ratio as f64,
            self.heads as f64,
        );
        let mlp = if self.attention_only { 0.0 } else { 1.0 };
        // A gated MLP has a third map and a gate site.
        let gated = if self.mlp == MlpKind::Plain { 0.0 } else { 1.0 };
        let kv = (self.kv() as f64 / h) * d;
        let tables = (self.embedding as f64 + if self.positions == Positions::Learned { t } else { 0.0 }) * d;
        let params = tables
            + depth
                * (2.0 * (d * d + d)
                    + 2.0 * (d * kv + kv)
                    + mlp * ((2.0 + gated) * r * d * d + (1.0 + gated) * r * d + d));
        // Per block: q, k, v, o and the branch and stream sites (no activation: 5/8 of an
        // entry each), the MLP's hidden layer (an activation site; a gated MLP's gate and
        // product too).
        let linear = 6.0 * d + mlp * 2.0 * d;
        let acts = depth * b * t * (LINEAR_SITE * linear + mlp * (1.0 + 2.0 * gated) * r * d);
        // The attention probabilities kept for the backward pass, their gradient and the
        // scores: three entries of [heads, T, T] per sequence and block.
        let attention = depth * b * 3.0 * h * t * t;
        // The embedding's site, and the logits of a tied head.
        let tables = if self.tables() { LINEAR_SITE * b * t * d } else { 0.0 };
        let logits = if self.tie_unembedding { LINEAR_SITE * b * t * self.embedding as f64 } else { 0.0 };
        let input = if self.embedding > 0 { b * t } else { b * t * d };
        [params, acts + tables + logits, input, attention]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `a` `[n, k]` times `b` `[m, k]` transposed, in f64 (row-major).
    fn times_t(a: &[f64], b: &[f64], n: usize, m: usize, k: usize) -> Vec<f64> {
        (0..n * m)
            .map(|x| (0..k).map(|j| a[(x / m) * k + j] * b[(x % m) * k + j]).sum())
            .collect()
    }

    /// Mimetic attention, exactly: `W_v W_o` is `a2 Z2 - b2 I` with `Z2` redrawn from its
    /// key (to f32 rounding), and each head's `W_q W_k^T` is the best rank-`d_head`
    /// approximation of `a1 Z1 + b1 I`: its squared Frobenius norm is the sum of that
    /// matrix's `d_head` largest squared singular values (faer's, solved apart), and the
    /// residual holds the rest. Every other weight keeps `--init`; the same seed gives the
    /// same bits.
    #[test]
    fn mimetic_attention_is_the_svd_factorization_of_its_two_targets() {
        use crate::arch::NetConfig;
        let (d, heads) = (16, 4);
        let dh = d / heads;
        let own = Transformer {
            seq_len: 8,
            heads,
            attention_init: AttentionInit::Mimetic,
            ..Transformer::default()
        };
        let net = NetConfig::new(own.clone(), 2, d, "gelu", "xavier-normal")
            .resolve()
            .unwrap();
        let p = crate::build_params(&net, 5).unwrap();
        let plain = NetConfig::new(Transformer { attention_init: AttentionInit::Independent, ..own.clone() }, 2, d, "gelu", "xavier-normal")
            .resolve()
            .unwrap();
        let q0 = crate::build_params(&plain, 5).unwrap();
        // The stream's mean field assumes i.i.d. weights: mimetic maps have none (checked at
        // a head size the theory takes).
        for (init, theory) in [(AttentionInit::Independent, true), (AttentionInit::Mimetic, false)] {
            let t = Transformer { attention_init: init, ..own.clone() };
            let wide = NetConfig::new(t.clone(), 2, 4 * MIN_THEORY_HEAD_DIM, "gelu", "xavier-normal")
                .resolve()
                .unwrap();
            assert_eq!(t.stream_theory(&wide).is_some(), theory, "{init:?}");
        }
        let w = |p: &Params, name: &str| -> Vec<f64> {
            p.get(name).unwrap().data.iter().map(|&x| f64::from(x)).collect()
        };
        assert_eq!(w(&p, "blocks.2.mlp.up.weight"), w(&q0, "blocks.2.mlp.up.weight"));
        assert_ne!(w(&p, "blocks.2.attn.q.weight"), w(&q0, "blocks.2.attn.q.weight"));
        assert_eq!(p.tensors, crate::build_params(&net, 5).unwrap().tensors);
        let target = |path: &str, a: f64, b: f64| -> Vec<f64> {
            let mut z = vec![0f32; d * d];
            sigprop_init::sample::fill_normal(
                &sigprop_init::Key::new(5, path),
                &mut z,
                0.0,
                1.0 / (d as f64).sqrt(),
            );
            (0..d * d)
                .map(|k| a * f64::from(z[k]) + if k / d == k % d { b } else { 0.0 })
                .collect()
        };
        for k in 1..=2 {
            // W_v W_o: v [d, d] times o [d, d] = v times (o^T) transposed.
            let (v, o) = (w(&p, &format!("blocks.{k}.attn.v.weight")), w(&p, &format!("blocks.{k}.attn.o.weight")));
            let o_t: Vec<f64> = (0..d * d).map(|n| o[(n % d) * d + n / d]).collect();
            let vo = times_t(&v, &o_t, d, d, d);
            let m2 = target(&format!("blocks.{k}.attn.mimetic.vo"), MIMETIC_VO.0, -MIMETIC_VO.1);
            let worst = vo.iter().zip(&m2).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-5, "block {k}: W_v W_o off by {worst}");
            let (q, kk) = (w(&p, &format!("blocks.{k}.attn.q.weight")), w(&p, &format!("blocks.{k}.attn.k.weight")));
            for h in 0..heads {
                let cols = |m: &[f64]| -> Vec<f64> {
                    (0..d * dh).map(|x| m[(x / dh) * d + h * dh + x % dh]).collect()
                };
                let qk = times_t(&cols(&q), &cols(&kk), d, d, dh);
                let m1 = target(&format!("blocks.{k}.attn.mimetic.qk.{h}"), MIMETIC_QK.0, MIMETIC_QK.1);
                let sv = faer::Mat::<f64>::from_fn(d, d, |i, j| m1[i * d + j])
                    .singular_values()
                    .unwrap();
                let top: f64 = sv[..dh].iter().map(|s| s * s).sum();
                let rest: f64 = sv[dh..].iter().map(|s| s * s).sum();
                let norm2 = |m: &[f64]| m.iter().map(|x| x * x).sum::<f64>();
                let residual: Vec<f64> = m1.iter().zip(&qk).map(|(a, b)| a - b).collect();
                assert!((norm2(&qk) / top - 1.0).abs() < 1e-5, "head {h}");
                assert!((norm2(&residual) / rest - 1.0).abs() < 1e-4, "head {h}");
            }
        }
    }

    /// RoPE keeps every token's norm (to 1e-5 relative) and makes a query-key product a
    /// function of the positions' difference alone: the same `q` at `i` and `k` at `j`
    /// give the same score as at `i + s`, `j + s`.
    #[cfg(feature = "burn")]
    #[test]
    fn rope_keeps_norms_and_scores_depend_on_relative_position() {
        let device = burn::tensor::Device::flex();
        let (b, h, t, dh) = (2, 3, 16, 8);
        let n = b * h * t * dh;
        let v: Vec<f32> = (0..n).map(|k| ((k as f32) * 0.731).sin() * 3.0).collect();
        let x = Tensor::<4>::from_data(TensorData::new(v.clone(), [b, h, t, dh]), &device);
        let tables = rope_tables(t, dh, &device);
        let y: Vec<f32> = rotate(x, &tables).into_data().try_to_vec().unwrap();
        for tok in 0..b * h * t {
            let norm = |w: &[f32]| w.iter().map(|&a| f64::from(a).powi(2)).sum::<f64>().sqrt();
            let (a, r) = (norm(&v[tok * dh..][..dh]), norm(&y[tok * dh..][..dh]));
            assert!((a - r).abs() <= 1e-5 * a, "token {tok}: {a} vs {r}");
        }
        // One q and one k repeated at every position: score(i, j) = score(i + s, j + s).
        let q: Vec<f32> = (0..dh).map(|k| (k as f32 * 1.3).cos()).collect();
        let k: Vec<f32> = (0..dh).map(|k| (k as f32 * 0.7 + 0.2).sin()).collect();
        let at_every = |w: &[f32]| {
            let all: Vec<f32> = (0..t).flat_map(|_| w.iter().copied()).collect();
            let x = Tensor::<4>::from_data(TensorData::new(all, [1, 1, t, dh]), &device);
            rotate(x, &tables).into_data().try_to_vec::<f32>().unwrap()
        };
        let (rq, rk) = (at_every(&q), at_every(&k));
        let score = |i: usize, j: usize| -> f64 {
            (0..dh)
                .map(|c| f64::from(rq[i * dh + c]) * f64::from(rk[j * dh + c]))
                .sum()
        };
        for (i, j, s) in [(0, 3, 5), (7, 2, 6), (4, 4, 11)] {
            let (a, c) = (score(i, j), score(i + s, j + s));
            assert!((a - c).abs() < 1e-4, "({i}, {j}) + {s}: {a} vs {c}");
        }
    }

    #[test]
    fn correlated_tokens_have_unit_variance_and_the_asked_correlation() {
        let (batch, t, d, c) = (64, 16, 64, 0.5);
        let own = Transformer {
            seq_len: t,
            input_corr: c,
            ..Transformer::default()
        };
        let x = own.input(3, [batch, t * d]).unwrap();
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = x.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
        // 65536 entries, but each sequence shares one vector: sd of the variance about
        // sqrt(2 c^2 / (batch d)) ~ 0.01.
        assert!((var - 1.0).abs() < 0.05, "{var}");
        // Mean pairwise correlation of a sequence's tokens (over features), averaged.
        let mut total = 0.0;
        for b in 0..batch {
            let tok = |i: usize| &x[b * t * d + i * d..b * t * d + (i + 1) * d];
            for i in 0..t {
                for j in i + 1..t {
                    let dot: f64 = tok(i)
                        .iter()
                        .zip(tok(j))
                        .map(|(&a, &b)| f64::from(a) * f64::from(b))
                        .sum();
                    total += dot / d as f64;
                }
            }
        }
        let corr = total / (batch * t * (t - 1) / 2) as f64;
        // Sequence-level spread of |s|^2 / d: sd c sqrt(2/d) / sqrt(batch) ~ 0.011.
        assert!((corr - c).abs() < 0.05, "{corr}");
        // c = 0 is the plain i.i.d. input, bit for bit.
        let iid = Transformer::default().input(3, [batch, t * d]).unwrap();
        assert_eq!(iid, crate::inputs::normal_input(3, "input", [batch, t * d]).unwrap());
    }
}
