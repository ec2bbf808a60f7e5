//! The user's own model (`--model FILE`, `arch = "graph"`): a [`ModelGraph`] declared and
//! run node by node.
//!
//! Every weighted node (linear map, convolution) is a site `layer`, numbered in graph order:
//! its output is `z`; `h` is the output of the activation that reads it alone, where one
//! does (else `h = z`); `dL/dz` is taken at `z`; the `node` column names it. Every residual
//! add `skip + s branch` is a pair of sites numbered in graph order: `branch` (the scaled
//! branch) and `out` (the sum), which carry the signal-propagation-plot columns.
//!
//! Weights are drawn under their node's name (`<node>.weight`, `<node>.bias`) with the fans
//! of their operation (a linear map's `[in, out]`, a convolution's kernel and groups): by
//! `--init-node PATTERN=SPEC` where a pattern matches the node's name (the first that
//! does), else by the model file's own `init`, else by `--init`; biases by the file's
//! `bias-init`, else `--bias-init`. Normalization gains start at 1 and their biases at 0.

#[cfg(feature = "burn")]
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use sigprop_init::{FillContext, Layout, ResidualContext, Scheme};

use super::{
    Architecture, Capabilities, ConvIds, Job, LinearIds, LsuvLayer, NetConfig, ParamBuilder,
    ParamId, ResolvedNet, Setting, SettingKind, TheoryKind, refuse_fixup,
};
use crate::error::NetError;
#[cfg(feature = "burn")]
use crate::forward::{DeviceParams, Recorder};
use crate::model::{MODEL_ALLOWED, MODEL_INIT, ModelFile, ModelGraph, Op};
use crate::options::Norm;

/// A model file and the initializers of some of its nodes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Graph {
    /// The model file.
    pub model: ModelFile,
    /// `PATTERN=SPEC`: the weights of the nodes whose names match the glob take SPEC.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub init_node: Vec<String>,
    /// Batch normalization's statistics: the batch's (`batch`, as at the first training
    /// step) or the file's running ones (`model`).
    pub bn_stats: BnStats,
    /// Shrink and perturb the file's kept weights: `shrink=S,noise=SPEC` (either part alone),
    /// `W = S W_file + noise`, the noise drawn by SPEC with the weight's fans.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub perturb: Option<String>,
}

/// Whose statistics batch normalization uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BnStats {
    /// The batch's own mean and variance.
    #[default]
    Batch,
    /// The running mean and variance the file stores.
    Model,
}

/// A parsed `--perturb`.
struct Perturb {
    shrink: f64,
    noise: Option<Scheme>,
}

/// A node's parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NodeParams {
    /// None.
    None,
    /// A linear map's.
    Linear(LinearIds),
    /// A convolution's.
    Conv(ConvIds),
    /// A normalization's gain and bias.
    Norm(Option<(ParamId, ParamId)>),
    /// An embedding's token table and position table.
    Embed(ParamId, Option<ParamId>),
}

/// One pattern of `--init-node`.
struct NodeInit {
    pattern: wildmatch::WildMatch,
    scheme: Scheme,
    /// `model`: the file's own values.
    keep: bool,
}

/// How one weighted node is initialized.
struct NodeSchemes {
    weight: Scheme,
    bias: Scheme,
    /// The file's own weight and bias are kept (`model`): the schemes are placeholders.
    keep: bool,
}

impl Graph {
    fn graph(&self) -> &ModelGraph {
        &self.model.graph
    }

    fn refuse(&self, why: impl Into<String>) -> NetError {
        NetError::Model {
            path: self.model.path.clone(),
            why: why.into(),
        }
    }

    /// The `--init-node` patterns, parsed; each must match a node with weights.
    fn node_inits(&self) -> Result<Vec<NodeInit>, NetError> {
        let g = self.graph();
        let weighted = g.drawn();
        self.init_node
            .iter()
            .map(|text| {
                let bad = |why: String| NetError::BadConfig {
                    key: "init-node",
                    value: text.clone(),
                    allowed: why,
                };
                let (pattern, spec) = text.split_once('=').ok_or_else(|| {
                    bad("PATTERN=SPEC, a glob on node names and an initializer".into())
                })?;
                let keep = spec.trim() == MODEL_INIT;
                if keep && !g.has_weights() {
                    return Err(bad(
                        "model only with --model FILE.onnx (a model file that holds its weights)"
                            .into(),
                    ));
                }
                let scheme: Scheme = if keep {
                    Scheme::Zeros
                } else {
                    spec.trim()
                        .parse()
                        .map_err(|e| bad(format!("an initializer after '=' ({e})")))?
                };
                let pattern = wildmatch::WildMatch::new(pattern.trim());
                if !weighted.iter().any(|&i| pattern.matches(&g.nodes[i].name)) {
                    let names: Vec<&str> =
                        weighted.iter().map(|&i| g.nodes[i].name.as_str()).collect();
                    return Err(bad(format!(
                        "a pattern that matches a linear, conv or embedding node; the model's are: {}",
                        names.join(", ")
                    )));
                }
                Ok(NodeInit {
                    pattern,
                    scheme,
                    keep,
                })
            })
            .collect()
    }

    /// Node `i`'s weight and bias schemes: see the module's documentation. `keep_all`:
    /// `--init model`.
    fn schemes(
        &self,
        i: usize,
        inits: &[NodeInit],
        (net_weight, net_bias): (&Scheme, &Scheme),
        keep_all: bool,
    ) -> Result<NodeSchemes, NetError> {
        let node = &self.graph().nodes[i];
        let parse = |spec: &Option<String>, key: &str, net: &Scheme| match spec {
            None => Ok(net.clone()),
            Some(s) => s.parse::<Scheme>().map_err(|e| {
                self.refuse(format!("node {}: {key} = {s:?}: {e}", node.name))
            }),
        };
        let bias = parse(&node.bias_init, "bias-init", net_bias)?;
        // A table's default is the network's fixed-scale draw, or N(0, 1).
        let table;
        let net_weight = if matches!(node.op, Op::Embed { .. }) {
            table = super::table_scheme(net_weight);
            &table
        } else {
            net_weight
        };
        Ok(match inits.iter().find(|n| n.pattern.matches(&node.name)) {
            Some(n) => NodeSchemes {
                weight: n.scheme.clone(),
                bias,
                keep: n.keep,
            },
            None => NodeSchemes {
                weight: parse(&node.init, "init", net_weight)?,
                bias,
                keep: keep_all && node.init.is_none(),
            },
        })
    }

    /// `--perturb`, parsed.
    fn perturb(&self) -> Result<Option<Perturb>, NetError> {
        let Some(text) = &self.perturb else {
            return Ok(None);
        };
        let bad = |why: &str| NetError::BadConfig {
            key: "perturb",
            value: text.clone(),
            allowed: format!("shrink=S,noise=SPEC with S >= 0 and an initializer spec ({why})"),
        };
        let t = text.trim();
        let (shrink, noise) = match t.strip_prefix("shrink=") {
            Some(rest) => match rest.split_once(",noise=") {
                Some((s, n)) => (s, Some(n)),
                None => (rest, None),
            },
            None => ("1", Some(t.strip_prefix("noise=").ok_or_else(|| bad("it starts with shrink= or noise="))?)),
        };
        let shrink: f64 = shrink
            .trim()
            .parse()
            .ok()
            .filter(|s: &f64| *s >= 0.0 && s.is_finite())
            .ok_or_else(|| bad("S is not a number >= 0"))?;
        let noise = noise
            .map(|n| n.trim().parse::<Scheme>().map_err(|e| bad(&e.to_string())))
            .transpose()?;
        Ok(Some(Perturb { shrink, noise }))
    }

    /// Whether any weight is the file's own (`--init model`, an `--init-node` to `model`).
    fn keeps_file_weights(&self, cfg: &NetConfig) -> bool {
        cfg.weight_init.trim() == MODEL_INIT
            || self
                .init_node
                .iter()
                .any(|t| t.split_once('=').is_some_and(|(_, s)| s.trim() == MODEL_INIT))
    }

    /// Whether every activation of the model is the run's (`None` or the same spec).
    fn run_activations(&self, net_activation: &str) -> bool {
        self.graph().nodes.iter().all(|n| match &n.op {
            Op::Act(Some(a)) => net_activation == a.to_string(),
            _ => true,
        })
    }
}

impl Architecture for Graph {
    type Layout = Vec<NodeParams>;

    const SETTINGS: &'static [Setting] = &[
        Setting {
            key: "model",
            help: "Your own model: an .onnx or .toml file (docs/models.md); implies --arch graph",
            kind: SettingKind::Text,
            allowed: MODEL_ALLOWED,
        },
        Setting {
            key: "bn-stats",
            help: "Batch normalization's statistics: batch (the batch's, default) or model (the \
                   file's running ones)",
            kind: SettingKind::Text,
            allowed: "batch or model",
        },
        Setting {
            key: "perturb",
            help: "shrink=S,noise=SPEC: shrink the file's kept weights by S and add noise drawn \
                   by SPEC (Ash & Adams 2020; either part alone)",
            kind: SettingKind::Text,
            allowed: "shrink=S,noise=SPEC with S >= 0 and an initializer spec",
        },
        Setting {
            key: "init-node",
            help: "PATTERN=SPEC: the nodes whose names match the glob take this weight \
                   initializer (repeatable; the first match wins)",
            kind: SettingKind::Texts,
            allowed: "PATTERN=SPEC, a glob on node names and an initializer",
        },
    ];

    fn validate(&self, cfg: &NetConfig, weight_init: &Scheme) -> Result<(), NetError> {
        if self.model.is_none() {
            return Err(NetError::BadConfig {
                key: "model",
                value: String::new(),
                allowed: format!("{MODEL_ALLOWED} with arch graph"),
            });
        }
        let g = self.graph();
        let weighted = g.weighted().len();
        if cfg.depth != weighted || cfg.width != g.width() {
            return Err(self.refuse(format!(
                "depth {} and width {} given; the model's are {weighted} (its linear and conv \
                 layers) and {} (their widest output)",
                cfg.depth,
                cfg.width,
                g.width()
            )));
        }
        let inits = self.node_inits()?;
        let bias: Scheme = cfg
            .bias_init
            .parse()
            .map_err(|e| NetError::init("bias-init", e))?;
        let keep_all = cfg.weight_init.trim() == MODEL_INIT;
        for i in g.drawn() {
            self.schemes(i, &inits, (weight_init, &bias), keep_all)?;
        }
        if self.perturb()?.is_some() && !self.keeps_file_weights(cfg) {
            return Err(NetError::BadConfig {
                key: "perturb",
                value: self.perturb.clone().unwrap_or_default(),
                allowed: "perturb with --init model or an --init-node to model (it perturbs the \
                          file's weights)"
                    .into(),
            });
        }
        let stats = g.nodes.iter().any(|n| n.file.iter().any(|(k, _)| k == "running_mean"));
        if self.bn_stats == BnStats::Model && !stats {
            return Err(NetError::BadConfig {
                key: "bn-stats",
                value: "model".into(),
                allowed: "model only with a model whose batch normalizations store running \
                          statistics (an ONNX file)"
                    .into(),
            });
        }
        refuse_fixup(cfg, weight_init)
    }

    fn widths(&self, cfg: &NetConfig) -> Vec<usize> {
        let g = self.graph();
        if !g.linear_chain() {
            return vec![cfg.width; cfg.depth + 1];
        }
        let mut w = vec![g.input_features()];
        w.extend(g.weighted().iter().map(|&i| g.nodes[i].shape.iter().product::<usize>()));
        w
    }

    fn norm(&self) -> Norm {
        let g = self.graph();
        let kinds = g.nodes.iter().filter_map(|n| match n.op {
            Op::Norm { kind, .. } => Some(kind),
            _ => None,
        });
        let kinds: Vec<Norm> = kinds.collect();
        [Norm::Batch, Norm::Layer, Norm::Rms]
            .into_iter()
            .find(|k| kinds.contains(k))
            .unwrap_or(Norm::None)
    }

    fn declare(&self, b: &mut ParamBuilder<'_>) -> Self::Layout {
        let net = b.net;
        let g = self.graph();
        // `validate` refused a pattern or spec that does not parse: none is dropped here.
        let inits = self.node_inits().unwrap_or_default();
        let fused = g.fused_activations();
        g.nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let keep_all = net.config.weight_init.trim() == MODEL_INIT;
                let (weight, bias) = self
                    .schemes(i, &inits, (&net.weight_init, &net.bias_init), keep_all)
                    .map_or_else(
                        |_| (net.weight_init.clone(), net.bias_init.clone()),
                        |s| (s.weight, s.bias),
                    );
                // The fill context's activation: the one that reads this node, or the run's.
                let act = fused[i]
                    .and_then(|j| match g.nodes[j].op {
                        Op::Act(a) => a,
                        _ => None,
                    })
                    .unwrap_or(net.activation);
                let ctx = FillContext {
                    activation: act,
                    ..b.ctx(None)
                };
                let mut job = |suffix: &str, scheme: &Scheme, shape: Vec<usize>, layout| {
                    b.push(Job {
                        path: format!("{}.{suffix}", node.name),
                        scheme: scheme.clone(),
                        shape,
                        layout,
                        ctx: ctx.clone(),
                    })
                };
                match node.op {
                    Op::Linear { n_in, n_out, bias: with_bias } => {
                        let weight = job("weight", &weight, vec![n_in, n_out], Layout::InOut);
                        let fans = Layout::Bias {
                            fan_in: n_in,
                            fan_out: n_out,
                        };
                        let bias = with_bias.then(|| job("bias", &bias, vec![n_out], fans));
                        NodeParams::Linear(LinearIds { weight, bias })
                    }
                    Op::Conv {
                        c_in,
                        c_out,
                        kernel,
                        groups,
                        bias: with_bias,
                        ..
                    } => {
                        let shape = vec![c_out, c_in / groups, kernel, kernel];
                        let weight = job("weight", &weight, shape, Layout::Conv { groups });
                        let receptive = c_in / groups * kernel * kernel;
                        let fans = Layout::Bias {
                            fan_in: receptive,
                            fan_out: c_out / groups * kernel * kernel,
                        };
                        let bias = with_bias.then(|| job("bias", &bias, vec![c_out], fans));
                        NodeParams::Conv(ConvIds { weight, bias })
                    }
                    Op::Norm {
                        affine: true,
                        features,
                        ..
                    } => {
                        let fans = Layout::Bias {
                            fan_in: features,
                            fan_out: features,
                        };
                        let gain = job("weight", &Scheme::Ones, vec![features], fans);
                        let shift = job("bias", &Scheme::Zeros, vec![features], fans);
                        NodeParams::Norm(Some((gain, shift)))
                    }
                    Op::Norm { affine: false, .. } => NodeParams::Norm(None),
                    Op::Embed {
                        vocab,
                        dim,
                        positions,
                    } => {
                        // A table's width is its features (small-init's `2/(5d)`), not the
                        // vocabulary its fan-in would be.
                        let ctx = ctx.clone().with_residual(ResidualContext {
                            blocks: 1,
                            branches: 1,
                            width: dim,
                            writes_stream: false,
                            scores: false,
                        });
                        let tokens = node.shape[0];
                        let mut table = |suffix: &str, rows: usize| {
                            b.push(Job {
                                path: format!("{}.{suffix}", node.name),
                                scheme: weight.clone(),
                                shape: vec![rows, dim],
                                layout: Layout::InOut,
                                ctx: ctx.clone(),
                            })
                        };
                        let t = table("table", vocab);
                        NodeParams::Embed(t, positions.then(|| table("positions", tokens)))
                    }
                    _ => NodeParams::None,
                }
            })
            .collect()
    }

    /// `--init model` and `--init-node PATTERN=model`: the file's own values over the
    /// placeholders of the nodes that keep them (with `--init model`, the normalizations'
    /// gains and biases too).
    fn refill(
        &self,
        net: &ResolvedNet,
        params: &mut crate::params::Params,
        seed: u64,
    ) -> Result<(), NetError> {
        let g = self.graph();
        let inits = self.node_inits()?;
        let keep_all = net.config.weight_init.trim() == MODEL_INIT;
        let perturb = self.perturb()?;
        for (i, node) in g.nodes.iter().enumerate() {
            // A tied node (unless an --init-node sets it) starts as its partner's transpose.
            if let (Some(partner), Op::Linear { n_in, n_out, .. }) = (&node.tie, &node.op)
                && !inits.iter().any(|n| n.pattern.matches(&node.name))
            {
                let from = params
                    .get(&format!("{partner}.weight"))
                    .map(|t| t.data.clone())
                    .unwrap_or_default();
                if let Some(t) = params.get_mut(&format!("{}.weight", node.name))
                    && from.len() == t.data.len()
                {
                    // The partner is [n_out, n_in]: this one's [n_in, n_out] is its transpose.
                    for a in 0..*n_in {
                        for b in 0..*n_out {
                            t.data[a * n_out + b] = from[b * n_in + a];
                        }
                    }
                }
            }
            let keep = match node.op {
                Op::Linear { .. } | Op::Conv { .. } | Op::Embed { .. } => {
                    self.schemes(i, &inits, (&net.weight_init, &net.bias_init), keep_all)?
                        .keep
                }
                Op::Norm { affine: true, .. } => keep_all,
                _ => false,
            };
            if !keep {
                continue;
            }
            for (suffix, values) in &node.file {
                let path = format!("{}.{suffix}", node.name);
                // Running statistics are the file's, not parameters.
                let Some(t) = params.get_mut(&path) else {
                    continue;
                };
                if t.data.len() != values.len() {
                    return Err(self.refuse(format!(
                        "{path} holds {} values; the network's tensor takes {}",
                        values.len(),
                        t.data.len()
                    )));
                }
                t.data.clone_from(values);
            }
            let Some(p) = &perturb else {
                continue;
            };
            let tables: &[&str] = match node.op {
                Op::Linear { .. } | Op::Conv { .. } => &["weight"],
                Op::Embed { .. } => &["table", "positions"],
                _ => &[],
            };
            for suffix in tables {
                let path = format!("{}.{suffix}", node.name);
                let Some(t) = params.get_mut(&path) else {
                    continue;
                };
                let layout = match node.op {
                    Op::Conv { groups, .. } => Layout::Conv { groups },
                    _ => Layout::InOut,
                };
                let noise = match &p.noise {
                    Some(scheme) => {
                        let key = sigprop_init::Key::new(seed, format!("{path}.perturb"));
                        let ctx = FillContext::new(net.activation);
                        scheme
                            .fill(&t.shape, layout, &key, &ctx)
                            .map_err(|e| NetError::init(path.clone(), e))?
                    }
                    None => vec![0.0; t.data.len()],
                };
                for (w, n) in t.data.iter_mut().zip(noise) {
                    *w = (p.shrink * f64::from(*w)) as f32 + n;
                }
            }
        }
        Ok(())
    }

    fn input_shape(&self, _net: &ResolvedNet, batch: usize) -> [usize; 2] {
        [batch, self.graph().input_features()]
    }

    /// Token ids uniform on the vocabulary where the model reads them, else `N(0, 1)`.
    fn input(&self, seed: u64, shape: [usize; 2]) -> Result<Vec<f32>, NetError> {
        self.input_keyed(seed, "input", shape)
    }

    fn input_keyed(&self, seed: u64, key: &str, shape: [usize; 2]) -> Result<Vec<f32>, NetError> {
        match self.graph().vocab {
            Some(vocab) => crate::inputs::token_ids(seed, key, shape, vocab),
            None => crate::inputs::normal_input(seed, key, shape),
        }
    }

    fn token_input(&self) -> Option<usize> {
        self.graph().vocab
    }

    fn output_features(&self, _cfg: &NetConfig) -> usize {
        self.graph().output_features()
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
        run::forward(self.graph(), net, (layout, self.bn_stats == BnStats::Model), p, x, rec)
    }

    /// A chain of linear maps and activations: its linear maps, as an MLP's.
    fn lsuv_layers(&self, layout: &Self::Layout) -> Option<Vec<LsuvLayer>> {
        self.jacobian_chain(layout)
            .map(|chain| chain.into_iter().map(LsuvLayer::Linear).collect())
    }

    /// The exact product builds every derivative from the run's activation: a chain whose
    /// activations are all the run's.
    fn exact_jacobian(&self) -> bool {
        let g = self.graph();
        g.linear_chain() && g.run_activations_only()
    }

    fn jacobian_chain(&self, layout: &Self::Layout) -> Option<Vec<LinearIds>> {
        if !self.exact_jacobian() {
            return None;
        }
        layout
            .iter()
            .map(|p| match p {
                NodeParams::Linear(ids) => Some(Some(*ids)),
                NodeParams::None => Some(None),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(|ids| ids.into_iter().flatten().collect())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            residual: !self.graph().adds().is_empty(),
            mup: false,
            ..Capabilities::PLAIN
        }
    }

    fn matrix_uses(&self) -> Option<f64> {
        self.graph().linear_chain().then_some(1.0)
    }

    fn primary_features(&self, _net: &ResolvedNet, l: usize) -> usize {
        let g = self.graph();
        g.weighted()
            .get(l.wrapping_sub(1))
            .map_or(0, |&i| g.nodes[i].shape.iter().product())
    }

    fn model_width(&self, _net: &ResolvedNet) -> usize {
        self.graph().width()
    }

    fn describe(&self) -> &'static str {
        "your own model (--model FILE.onnx or FILE.toml): see docs/models.md"
    }

    fn primary_site(&self) -> &'static str {
        "layer"
    }

    fn axis_name(&self) -> &'static str {
        "layer"
    }

    /// A chain of linear maps (or of same-padded convolutions) and the run's activations
    /// has the MLP's (or the CNN's) mean field, unless a weight is the file's (no
    /// initializer's law draws it) or tied (not independent of its partner).
    fn theory(&self, cfg: &NetConfig) -> TheoryKind {
        let g = self.graph();
        // Every weight from --init and every bias from --bias-init, drawn on its own.
        let own = g
            .nodes
            .iter()
            .any(|n| n.tie.is_some() || n.init.is_some() || n.bias_init.is_some());
        if !self.run_activations(&cfg.activation)
            || self.keeps_file_weights(cfg)
            || own
            || !self.init_node.is_empty()
        {
            return TheoryKind::None;
        }
        match g.conv_chain() {
            _ if g.linear_chain() => TheoryKind::Mlp,
            Some((kernel, image_size, groups)) => TheoryKind::Conv {
                kernel,
                image_size,
                groups,
            },
            None => TheoryKind::None,
        }
    }

    /// Sites count as the built-in architectures' (a linear or conv node with the
    /// activation that reads it alone as one activation site, else a site without one; a
    /// residual add's branch and sum; an attention's output; an embedding); every other
    /// node's output and its gradient as two extra entries.
    fn pass_sizes(&self, _cfg: &NetConfig, b: f64) -> [f64; 4] {
        let g = self.graph();
        let fused = g.fused_activations();
        // The activations that alone read a layer: counted at the layer's site.
        let mut at_site = vec![false; g.nodes.len()];
        for j in fused.iter().flatten() {
            at_site[*j] = true;
        }
        let mut params = 0.0;
        let mut act = 0.0;
        let mut unfold: f64 = 0.0;
        let mut other = 0.0;
        for (i, n) in g.nodes.iter().enumerate() {
            let out = b * n.shape.iter().product::<usize>() as f64;
            let attention =
                matches!(n.op, Op::MatMul) && n.inputs.first().is_some_and(|&v| g.attention_probs(v));
            match n.op {
                // Its activation's output is the site's h.
                _ if n.op.weighted() && fused[i].is_some() => act += out,
                _ if n.op.weighted() || attention || matches!(n.op, Op::Embed { .. }) => {
                    act += super::LINEAR_SITE * out
                }
                Op::Add { .. } => act += 2.0 * super::LINEAR_SITE * out,
                Op::Act(_) if at_site[i] => {}
                _ => other += 2.0 * out,
            }
            match n.op {
                Op::Linear { n_in, n_out, bias } => {
                    params += (n_in * n_out + usize::from(bias) * n_out) as f64;
                }
                Op::Conv {
                    c_in,
                    c_out,
                    kernel,
                    groups,
                    bias,
                    ..
                } => {
                    let k2 = (kernel * kernel) as f64;
                    params += c_out as f64 * (c_in / groups) as f64 * k2
                        + (usize::from(bias) * c_out) as f64;
                    // The convolution may unfold its input, one layer at a time.
                    let pixels = out / c_out as f64;
                    unfold = unfold.max(pixels * (c_in / groups) as f64 * k2);
                }
                Op::Norm { features, .. } => params += 2.0 * features as f64,
                Op::Embed {
                    vocab,
                    dim,
                    positions,
                } => params += ((vocab + usize::from(positions) * n.shape[0]) * dim) as f64,
                _ => {}
            }
        }
        [params, act, b * g.input_features() as f64, unfold + other]
    }
}

/// The interpreter of a model's forward pass (needs the `burn` feature).
#[cfg(feature = "burn")]
mod run {
    use burn::tensor::activation::softmax;
    use burn::tensor::module::{avg_pool2d, conv2d, embedding, max_pool2d};
    use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
    use burn::tensor::{Int, Tensor, TensorData};

    use super::NodeParams;
    use crate::arch::ResolvedNet;
    use crate::forward::{DeviceParams, Recorder, SiteIn, SiteKind, WeightGrad, in_dtype, linear};
    use crate::model::{BinaryKind, Constant, ModelGraph, Op, UnaryKind};
    use crate::options::Norm;

    /// A value of the pass: `[batch, ..]` with one sample's 1, 2 or 3 axes.
    #[derive(Clone)]
    enum Val {
        D2(Tensor<2>),
        D3(Tensor<3>),
        D4(Tensor<4>),
    }

    /// `$e` on the tensor of `$v`, whatever its rank, as a value of the same rank.
    macro_rules! each {
        ($v:expr, |$t:ident| $e:expr) => {
            match $v {
                Val::D2($t) => Val::D2($e),
                Val::D3($t) => Val::D3($e),
                Val::D4($t) => Val::D4($e),
            }
        };
    }

    /// `$e` on the tensors of `$a` and `$b` of the same rank.
    macro_rules! both {
        ($a:expr, $b:expr, |$x:ident, $y:ident| $e:expr) => {
            match ($a, $b) {
                (Val::D2($x), Val::D2($y)) => Val::D2($e),
                (Val::D3($x), Val::D3($y)) => Val::D3($e),
                (Val::D4($x), Val::D4($y)) => Val::D4($e),
                // The front ends give both operands one shape (or a constant of its rank).
                _ => unreachable!("two operands of different ranks"),
            }
        };
    }

    impl Val {
        /// `[batch, features]` reshaped to `[batch, shape..]`.
        fn of(x: Tensor<2>, shape: &[usize]) -> Val {
            let b = x.dims()[0];
            match *shape {
                [_] => Val::D2(x),
                [t, d] => Val::D3(x.reshape([b, t, d])),
                [c, h, w] => Val::D4(x.reshape([b, c, h, w])),
                // The front ends give every value 1 to 3 axes per sample.
                _ => unreachable!("a model value of {} axes", shape.len()),
            }
        }

        fn batch(&self) -> usize {
            match self {
                Val::D2(t) => t.dims()[0],
                Val::D3(t) => t.dims()[0],
                Val::D4(t) => t.dims()[0],
            }
        }

        /// `[batch, features]`.
        fn flat(self) -> Tensor<2> {
            let b = self.batch() as i32;
            match self {
                Val::D2(t) => t,
                Val::D3(t) => t.reshape([b, -1]),
                Val::D4(t) => t.reshape([b, -1]),
            }
        }

        /// `f` on `[rows, last axis]`, the other axes restored after.
        fn rows(self, f: impl Fn(Tensor<2>) -> Tensor<2>) -> Val {
            match self {
                Val::D2(t) => Val::D2(f(t)),
                Val::D3(t) => {
                    let [b, x, n] = t.dims();
                    let y = f(t.reshape([b * x, n]));
                    let m = y.dims()[1];
                    Val::D3(y.reshape([b, x, m]))
                }
                Val::D4(t) => {
                    let [b, x, y, n] = t.dims();
                    let z = f(t.reshape([b * x * y, n]));
                    let m = z.dims()[1];
                    Val::D4(z.reshape([b, x, y, m]))
                }
            }
        }

        fn site<R: Recorder>(self, rec: &mut R, s: SiteIn<'_>) -> Val {
            each!(self, |t| rec.site(s, t))
        }

        fn image(self) -> Tensor<4> {
            match self {
                Val::D4(t) => t,
                // The front ends give image operations images.
                _ => unreachable!("an image operation on a non-image"),
            }
        }

        /// The constant `c` as a tensor of this value's rank (leading axes of size 1).
        fn constant(&self, c: &Constant) -> Val {
            let (device, dtype) = match self {
                Val::D2(t) => (t.device(), t.dtype()),
                Val::D3(t) => (t.device(), t.dtype()),
                Val::D4(t) => (t.device(), t.dtype()),
            };
            let rank = match self {
                Val::D2(_) => 2,
                Val::D3(_) => 3,
                Val::D4(_) => 4,
            };
            let mut shape = vec![1; rank - c.shape.len().min(rank)];
            shape.extend(&c.shape[c.shape.len().saturating_sub(rank)..]);
            let t = Tensor::<1>::from_data(TensorData::new(c.data.clone(), [c.data.len()]), &device);
            let t = in_dtype(t, dtype);
            match rank {
                2 => Val::D2(t.reshape([shape[0], shape[1]])),
                3 => Val::D3(t.reshape([shape[0], shape[1], shape[2]])),
                _ => Val::D4(t.reshape([shape[0], shape[1], shape[2], shape[3]])),
            }
        }
    }

    /// Each row minus its mean, over the square root of its population variance plus eps.
    fn standardize(rows: Tensor<2>, eps: f64) -> Tensor<2> {
        let centred = rows.clone() - rows.mean_dim(1);
        let var = centred.clone().square().mean_dim(1);
        centred / (var + eps).sqrt()
    }

    /// `norm` of `v` with its gain and bias: batch per channel (axis 1, over the batch and
    /// the other axes), layer and RMS per position over the last axis.
    fn norm(kind: Norm, eps: f64, v: Val, affine: Option<(Tensor<1>, Tensor<1>)>) -> Val {
        match kind {
            Norm::Batch => {
                let by_channel = |t: Tensor<3>| {
                    let [b, c, n] = t.dims();
                    let rows = t.swap_dims(0, 1).reshape([c, b * n]);
                    let z = standardize(rows, eps).reshape([c, b, n]).swap_dims(0, 1);
                    match &affine {
                        Some((g, s)) => z * g.clone().reshape([1, c, 1]) + s.clone().reshape([1, c, 1]),
                        None => z,
                    }
                };
                match v {
                    Val::D2(t) => {
                        let [b, c] = t.dims();
                        Val::D2(by_channel(t.reshape([b, c, 1])).reshape([b, c]))
                    }
                    Val::D3(t) => Val::D3(by_channel(t)),
                    Val::D4(t) => {
                        let [b, c, h, w] = t.dims();
                        Val::D4(by_channel(t.reshape([b, c, h * w])).reshape([b, c, h, w]))
                    }
                }
            }
            _ => v.rows(|rows| {
                let z = match kind {
                    Norm::Rms => {
                        let ms = rows.clone().square().mean_dim(1);
                        rows / (ms + eps).sqrt()
                    }
                    _ => standardize(rows, eps),
                };
                match &affine {
                    Some((g, b)) => z * g.clone().unsqueeze::<2>() + b.clone().unsqueeze::<2>(),
                    None => z,
                }
            }),
        }
    }

    /// Batch normalization with stored statistics: `(x - mean) / sqrt(var + eps)` per
    /// channel (the sample's first axis), then the gain and bias.
    fn running(
        x: Val,
        shape: &[usize],
        (mean, var): (&[f32], &[f32]),
        eps: f64,
        affine: Option<(Tensor<1>, Tensor<1>)>,
    ) -> Val {
        let per_channel = |v: Vec<f32>| {
            let mut s = vec![v.len()];
            s.extend(std::iter::repeat_n(1, shape.len() - 1));
            Constant { data: v, shape: s }
        };
        let inv: Vec<f32> = var.iter().map(|&v| (1.0 / (f64::from(v) + eps).sqrt()) as f32).collect();
        let m = x.constant(&per_channel(mean.to_vec()));
        let s = x.constant(&per_channel(inv));
        let z = binary(BinaryKind::Mul, binary(BinaryKind::Sub, x, m), s);
        match affine {
            Some((g, b)) => {
                let (g, b) = (channel(g, &z), channel(b, &z));
                binary(BinaryKind::Add, binary(BinaryKind::Mul, z, g), b)
            }
            None => z,
        }
    }

    /// A per-channel vector `[c]` shaped to broadcast over `like` (channels on axis 1).
    fn channel(t: Tensor<1>, like: &Val) -> Val {
        let c = t.dims()[0];
        match like {
            Val::D2(_) => Val::D2(t.reshape([1, c])),
            Val::D3(_) => Val::D3(t.reshape([1, c, 1])),
            Val::D4(_) => Val::D4(t.reshape([1, c, 1, 1])),
        }
    }

    fn binary(kind: BinaryKind, a: Val, b: Val) -> Val {
        match kind {
            BinaryKind::Add => both!(a, b, |x, y| x + y),
            BinaryKind::Sub => both!(a, b, |x, y| x - y),
            BinaryKind::Mul => both!(a, b, |x, y| x * y),
            BinaryKind::Div => both!(a, b, |x, y| x / y),
            BinaryKind::Pow => both!(a, b, |x, y| x.powf(y)),
        }
    }

    fn unary(kind: UnaryKind, v: Val) -> Val {
        match kind {
            UnaryKind::Sqrt => each!(v, |t| t.sqrt()),
            UnaryKind::Erf => each!(v, |t| t.erf()),
            UnaryKind::Exp => each!(v, |t| t.exp()),
            UnaryKind::Neg => each!(v, |t| t.neg()),
            UnaryKind::Reciprocal => each!(v, |t| t.recip()),
        }
    }

    /// One sample's axes permuted by `perm` (the batch axis stays first).
    fn transpose(v: Val, perm: &[usize]) -> Val {
        match (v, perm) {
            (Val::D3(t), [a, b]) => Val::D3(t.permute([0, a + 1, b + 1])),
            (Val::D4(t), [a, b, c]) => Val::D4(t.permute([0, a + 1, b + 1, c + 1])),
            (v, _) => v,
        }
    }

    fn slice(v: Val, axis: usize, start: usize, end: usize, step: usize) -> Val {
        let dim = axis + 1;
        if step == 1 {
            return each!(v, |t| t.narrow(dim, start, end - start));
        }
        let picks: Vec<i64> = (start..end).step_by(step).map(|i| i as i64).collect();
        let n = picks.len();
        each!(v, |t| {
            let idx = Tensor::<1, Int>::from_data(TensorData::new(picks.clone(), [n]), &t.device());
            t.select(dim, idx)
        })
    }

    /// Run `graph` on `x` `[batch, input features]`; every site goes to `rec`.
    pub(super) fn forward<R: Recorder>(
        graph: &ModelGraph,
        net: &ResolvedNet,
        (layout, bn_model): (&[NodeParams], bool),
        p: &DeviceParams,
        x: Tensor<2>,
        rec: &mut R,
    ) -> Tensor<2> {
        let mut vals: Vec<Option<Val>> = vec![None; graph.nodes.len() + 1];
        vals[0] = Some(Val::of(x, &graph.input));
        // The activations applied at their node's site.
        let mut fused: Vec<bool> = vec![false; graph.nodes.len()];
        let fused_act = graph.fused_activations();
        let (mut layer, mut block, mut attn, mut embed) = (0, 0, 0, 0);
        for (i, node) in graph.nodes.iter().enumerate() {
            if fused[i] {
                continue;
            }
            // What a node reads is computed before it (the front ends order them so).
            let read = |k: usize| {
                vals[node.inputs[k]]
                    .clone()
                    .expect("a value read before it is made")
            };
            let out = match (&node.op, layout[i]) {
                (Op::Linear { .. }, NodeParams::Linear(ids)) => read(0).rows(|h| linear(p, ids, h)),
                (
                    Op::Conv {
                        stride,
                        padding,
                        groups,
                        ..
                    },
                    NodeParams::Conv(ids),
                ) => Val::D4(conv2d(
                    read(0).image(),
                    p.kernel(ids.weight),
                    ids.bias.map(|b| p.vector(b)),
                    ConvOptions::new([*stride; 2], [*padding; 2], [1, 1], *groups),
                )),
                (Op::Act(a), _) => {
                    let kind = SiteKind::Activation(a.unwrap_or(net.activation));
                    each!(read(0), |t| kind.apply(t))
                }
                (Op::Norm { kind, eps, .. }, NodeParams::Norm(ids)) => {
                    let affine = ids.map(|(g, b)| (p.vector(g), p.vector(b)));
                    let stats = |k: &str| node.file.iter().find(|(n, _)| n == k).map(|(_, v)| v);
                    match (kind, bn_model, stats("running_mean"), stats("running_var")) {
                        (Norm::Batch, true, Some(mean), Some(var)) => {
                            running(read(0), &node.shape, (mean, var), *eps, affine)
                        }
                        _ => norm(*kind, *eps, read(0), affine),
                    }
                }
                (Op::Add { scale }, _) => {
                    block += 1;
                    let site = |site, kind| SiteIn {
                        site,
                        layer: block,
                        kind,
                        weight: None,
                        scale: None,
                        tokens: None,
                        attention: None,
                        roles: Vec::new(),
                        node: Some(&node.name),
                    };
                    let s = *scale;
                    let branch = each!(read(1), |t| if s == 1.0 { t } else { t.mul_scalar(s) });
                    let branch = branch.site(rec, site("branch", SiteKind::Branch));
                    binary(BinaryKind::Add, read(0), branch).site(rec, site("out", SiteKind::Sum))
                }
                (
                    Op::Pool {
                        max,
                        kernel,
                        stride,
                        padding,
                    },
                    _,
                ) => {
                    let t = read(0).image();
                    Val::D4(if *max {
                        let o = MaxPoolOptions::new([*kernel; 2])
                            .with_stride([*stride; 2])
                            .with_padding([*padding; 2]);
                        max_pool2d(t, o)
                    } else {
                        let o = AvgPoolOptions::new([*kernel; 2])
                            .with_stride([*stride; 2])
                            .with_padding([*padding; 2])
                            .with_count_include_pad(true);
                        avg_pool2d(t, o)
                    })
                }
                (Op::GlobalAvgPool, _) => {
                    let t = read(0).image();
                    let [b, c, h, w] = t.dims();
                    Val::D2(t.reshape([b, c, h * w]).mean_dim(2).reshape([b, c]))
                }
                (Op::Flatten | Op::Reshape, _) => Val::of(read(0).flat(), &node.shape),
                (Op::Upsample { factor }, _) => {
                    let t = read(0).image();
                    let [b, c, h, w] = t.dims();
                    let f = *factor;
                    Val::D4(
                        t.reshape([b, c, h, 1, w, 1])
                            .repeat_dim(3, f)
                            .repeat_dim(5, f)
                            .reshape([b, c, h * f, w * f]),
                    )
                }
                (Op::MatMul, _) => {
                    let out = both!(read(0), read(1), |a, b| a.matmul(b));
                    // Attention probabilities times the values: an attention site, whose
                    // probabilities give `attn_entropy` and `attn_diag`.
                    match (graph.attention_probs(node.inputs[0]), read(0)) {
                        (true, Val::D4(probs)) => {
                            attn += 1;
                            out.site(
                                rec,
                                SiteIn {
                                    site: "attn",
                                    layer: attn,
                                    kind: SiteKind::Attention,
                                    weight: None,
                                    scale: None,
                                    tokens: None,
                                    attention: Some(probs),
                                    roles: Vec::new(),
                                    node: Some(&node.name),
                                },
                            )
                        }
                        _ => out,
                    }
                }
                (
                    Op::Binary {
                        kind,
                        constant,
                        constant_first,
                    },
                    _,
                ) => {
                    let x = read(0);
                    let y = match constant {
                        Some(c) => x.constant(c),
                        None => read(1),
                    };
                    if *constant_first {
                        binary(*kind, y, x)
                    } else {
                        binary(*kind, x, y)
                    }
                }
                (Op::Unary(kind), _) => unary(*kind, read(0)),
                (Op::Embed { .. }, NodeParams::Embed(table, positions)) => {
                    // Token ids [batch, tokens] (the pass keeps them in f32, exact).
                    let ids = read(0).flat();
                    let tokens = ids.dims()[1];
                    let mut x = embedding(p.matrix(table), ids.int());
                    if let Some(pos) = positions {
                        x = x + p.matrix(pos).unsqueeze::<3>();
                    }
                    embed += 1;
                    Val::D3(x).site(
                        rec,
                        SiteIn {
                            site: "embed",
                            layer: embed,
                            kind: SiteKind::Sum,
                            weight: None,
                            scale: None,
                            tokens: Some(tokens),
                            attention: None,
                            roles: Vec::new(),
                            node: Some(&node.name),
                        },
                    )
                }
                (Op::MaskFill { mask, value }, _) => {
                    let x = read(0);
                    let m = x.constant(mask);
                    let v = *value;
                    both!(x, m, |t, m| {
                        let dims = t.dims();
                        t.mask_fill(m.greater_elem(0.5).expand(dims), v)
                    })
                }
                (Op::Transpose(perm), _) => transpose(read(0), perm),
                (Op::Softmax { axis }, _) => {
                    let d = axis + 1;
                    each!(read(0), |t| softmax(t, d))
                }
                (Op::ReduceMean { axes, .. }, _) => {
                    let mut v = read(0);
                    for &a in axes {
                        v = each!(v, |t| t.mean_dim(a + 1));
                    }
                    Val::of(v.flat(), &node.shape)
                }
                (Op::Concat { axis }, _) => {
                    let parts: Vec<Val> = (0..node.inputs.len()).map(read).collect();
                    let d = axis + 1;
                    match &parts[0] {
                        Val::D2(_) => Val::D2(Tensor::cat(
                            parts.into_iter().map(|v| match v { Val::D2(t) => t, _ => unreachable!("a concat of two ranks") }).collect(),
                            d,
                        )),
                        Val::D3(_) => Val::D3(Tensor::cat(
                            parts.into_iter().map(|v| match v { Val::D3(t) => t, _ => unreachable!("a concat of two ranks") }).collect(),
                            d,
                        )),
                        Val::D4(_) => Val::D4(Tensor::cat(
                            parts.into_iter().map(|v| match v { Val::D4(t) => t, _ => unreachable!("a concat of two ranks") }).collect(),
                            d,
                        )),
                    }
                }
                (
                    Op::Slice {
                        axis,
                        start,
                        end,
                        step,
                    },
                    _,
                ) => slice(read(0), *axis, *start, *end, *step),
                // `declare` gives every weighted and normalization node its parameters.
                (op, _) => unreachable!("node {} ({}) without its parameters", node.name, op.name()),
            };
            let out = if node.op.weighted() {
                layer += 1;
                let weight = match layout[i] {
                    NodeParams::Linear(ids) => Some(WeightGrad::Leaf(ids.weight)),
                    NodeParams::Conv(ids) => Some(WeightGrad::Leaf(ids.weight)),
                    _ => None,
                };
                let act = fused_act[i];
                let phi = match act.map(|j| &graph.nodes[j].op) {
                    Some(Op::Act(a)) => a.unwrap_or(net.activation),
                    _ => sigprop_init::Activation::Linear,
                };
                let tokens = match node.shape[..] {
                    [t, _] => Some(t),
                    _ => None,
                };
                let h = out.site(
                    rec,
                    SiteIn {
                        site: "layer",
                        layer,
                        kind: SiteKind::Activation(phi),
                        weight,
                        scale: None,
                        tokens,
                        attention: None,
                        roles: Vec::new(),
                        node: Some(&node.name),
                    },
                );
                if let Some(j) = act {
                    fused[j] = true;
                    vals[j + 1] = Some(h.clone());
                }
                h
            } else {
                out
            };
            vals[i + 1] = Some(out);
        }
        vals.pop()
            .flatten()
            .expect("the model has a node (the front ends refuse an empty one)")
            .flat()
    }
}
