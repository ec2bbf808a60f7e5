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
use sigprop_init::{FillContext, Layout, Scheme};

use super::{
    Architecture, Capabilities, ConvIds, Job, LinearIds, LsuvLayer, NetConfig, ParamBuilder,
    ParamId, ResolvedNet, Setting, SettingKind, TheoryKind, refuse_fixup,
};
use crate::error::NetError;
#[cfg(feature = "burn")]
use crate::forward::{DeviceParams, Recorder};
use crate::model::{MODEL_ALLOWED, ModelFile, ModelGraph, Op};
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
}

/// One pattern of `--init-node`.
struct NodeInit {
    pattern: wildmatch::WildMatch,
    scheme: Scheme,
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

    /// The `--init-node` patterns, parsed; each must match a weighted node.
    fn node_inits(&self) -> Result<Vec<NodeInit>, NetError> {
        let g = self.graph();
        let weighted = g.weighted();
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
                let scheme: Scheme = spec
                    .trim()
                    .parse()
                    .map_err(|e| bad(format!("an initializer after '=' ({e})")))?;
                let pattern = wildmatch::WildMatch::new(pattern.trim());
                if !weighted.iter().any(|&i| pattern.matches(&g.nodes[i].name)) {
                    let names: Vec<&str> =
                        weighted.iter().map(|&i| g.nodes[i].name.as_str()).collect();
                    return Err(bad(format!(
                        "a pattern that matches a linear or conv node; the model's are: {}",
                        names.join(", ")
                    )));
                }
                Ok(NodeInit {
                    pattern,
                    scheme,
                })
            })
            .collect()
    }

    /// Node `i`'s weight and bias schemes: see the module's documentation.
    fn schemes(
        &self,
        i: usize,
        inits: &[NodeInit],
        net_weight: &Scheme,
        net_bias: &Scheme,
    ) -> Result<(Scheme, Scheme), NetError> {
        let node = &self.graph().nodes[i];
        let parse = |spec: &Option<String>, key: &str, net: &Scheme| match spec {
            None => Ok(net.clone()),
            Some(s) => s.parse::<Scheme>().map_err(|e| {
                self.refuse(format!("node {}: {key} = {s:?}: {e}", node.name))
            }),
        };
        let weight = match inits.iter().find(|n| n.pattern.matches(&node.name)) {
            Some(n) => n.scheme.clone(),
            None => parse(&node.init, "init", net_weight)?,
        };
        Ok((weight, parse(&node.bias_init, "bias-init", net_bias)?))
    }

    /// Whether the mean-field MLP recursions describe the model: a chain of linear maps and
    /// activations, every activation the run's.
    fn is_mlp(&self, net_activation: Option<&str>) -> bool {
        let g = self.graph();
        g.linear_chain()
            && g.nodes.iter().all(|n| match &n.op {
                Op::Act(Some(a)) => net_activation.is_some_and(|r| r == a.to_string()),
                _ => true,
            })
    }
}

impl Architecture for Graph {
    type Layout = Vec<NodeParams>;

    const SETTINGS: &'static [Setting] = &[
        Setting {
            key: "model",
            help: "Your own model: a .toml file (docs/models.md); implies --arch graph",
            kind: SettingKind::Text,
            allowed: MODEL_ALLOWED,
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
        for i in g.weighted() {
            self.schemes(i, &inits, weight_init, &bias)?;
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
        g.nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let (weight, bias) = self
                    .schemes(i, &inits, &net.weight_init, &net.bias_init)
                    .unwrap_or_else(|_| (net.weight_init.clone(), net.bias_init.clone()));
                // The fill context's activation: the one that reads this node, or the run's.
                let act = g
                    .fused_activation(i)
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
                    _ => NodeParams::None,
                }
            })
            .collect()
    }

    fn input_shape(&self, _net: &ResolvedNet, batch: usize) -> [usize; 2] {
        [batch, self.graph().input_features()]
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
        run::forward(self.graph(), net, layout, p, x, rec)
    }

    /// A chain of linear maps and activations: its linear maps, as an MLP's.
    fn lsuv_layers(&self, layout: &Self::Layout) -> Option<Vec<LsuvLayer>> {
        self.jacobian_chain(layout)
            .map(|chain| chain.into_iter().map(LsuvLayer::Linear).collect())
    }

    fn exact_jacobian(&self) -> bool {
        self.graph().linear_chain()
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
        "your own model (--model FILE.toml): linear, conv, norm, pooling and residual blocks"
    }

    fn primary_site(&self) -> &'static str {
        "layer"
    }

    fn axis_name(&self) -> &'static str {
        "layer"
    }

    fn theory(&self, cfg: &NetConfig) -> TheoryKind {
        if self.is_mlp(Some(&cfg.activation)) {
            TheoryKind::Mlp
        } else {
            TheoryKind::None
        }
    }

    fn pass_sizes(&self, _cfg: &NetConfig, b: f64) -> [f64; 4] {
        let g = self.graph();
        let mut params = 0.0;
        let mut act = 0.0;
        let mut extra: f64 = 0.0;
        for n in &g.nodes {
            let out = n.shape.iter().product::<usize>() as f64;
            act += b * out;
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
                    extra = extra.max(b * pixels * (c_in / groups) as f64 * k2);
                }
                Op::Norm { features, .. } => params += 2.0 * features as f64,
                _ => {}
            }
        }
        [params, act, b * g.input_features() as f64, extra]
    }
}

/// The interpreter of a model's forward pass (needs the `burn` feature).
#[cfg(feature = "burn")]
mod run {
    use burn::tensor::Tensor;
    use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d};
    use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};

    use super::NodeParams;
    use crate::arch::ResolvedNet;
    use crate::forward::{DeviceParams, Recorder, SiteIn, SiteKind, WeightGrad, linear, normalize};
    use crate::model::{ModelGraph, Op};
    use crate::options::Norm;

    /// A value of the pass: `[batch, ..]` with one sample's 1, 2 or 3 axes.
    #[derive(Clone)]
    enum Val {
        D2(Tensor<2>),
        D3(Tensor<3>),
        D4(Tensor<4>),
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
            let b = self.batch();
            match self {
                Val::D2(t) => t,
                Val::D3(t) => t.reshape([b as i32, -1]),
                Val::D4(t) => t.reshape([b as i32, -1]),
            }
        }

        /// `[rows, last axis]`, and the shape to restore.
        fn rows(self) -> (Tensor<2>, Vec<usize>) {
            match self {
                Val::D2(t) => {
                    let d = t.dims().to_vec();
                    (t, d)
                }
                Val::D3(t) => {
                    let d = t.dims();
                    (t.reshape([d[0] * d[1], d[2]]), d.to_vec())
                }
                Val::D4(t) => {
                    let d = t.dims();
                    (t.reshape([d[0] * d[1] * d[2], d[3]]), d.to_vec())
                }
            }
        }

        /// `[rows, n]` back to the shape `dims` with its last axis `n`.
        fn unrows(t: Tensor<2>, dims: &[usize]) -> Val {
            let n = t.dims()[1];
            match *dims {
                [b, _] => Val::D2(t.reshape([b, n])),
                [b, x, _] => Val::D3(t.reshape([b, x, n])),
                [b, x, y, _] => Val::D4(t.reshape([b, x, y, n])),
                _ => unreachable!("a model value of {} axes", dims.len()),
            }
        }

        fn map(self, f2: impl Fn(Tensor<2>) -> Tensor<2>) -> Val {
            let (rows, dims) = self.rows();
            Val::unrows(f2(rows), &dims)
        }

        fn site<R: Recorder>(self, rec: &mut R, s: SiteIn<'_>) -> Val {
            match self {
                Val::D2(t) => Val::D2(rec.site(s, t)),
                Val::D3(t) => Val::D3(rec.site(s, t)),
                Val::D4(t) => Val::D4(rec.site(s, t)),
            }
        }

        fn apply(self, kind: SiteKind) -> Val {
            match self {
                Val::D2(t) => Val::D2(kind.apply(t)),
                Val::D3(t) => Val::D3(kind.apply(t)),
                Val::D4(t) => Val::D4(kind.apply(t)),
            }
        }

        fn add(self, other: Val, scale: f64) -> Val {
            match (self, other) {
                (Val::D2(a), Val::D2(b)) => Val::D2(a + b.mul_scalar(scale)),
                (Val::D3(a), Val::D3(b)) => Val::D3(a + b.mul_scalar(scale)),
                (Val::D4(a), Val::D4(b)) => Val::D4(a + b.mul_scalar(scale)),
                _ => unreachable!("a residual add of two shapes (the front end checks them)"),
            }
        }

        fn scale(self, s: f64) -> Val {
            if s == 1.0 {
                return self;
            }
            match self {
                Val::D2(t) => Val::D2(t.mul_scalar(s)),
                Val::D3(t) => Val::D3(t.mul_scalar(s)),
                Val::D4(t) => Val::D4(t.mul_scalar(s)),
            }
        }

        fn image(self) -> Tensor<4> {
            match self {
                Val::D4(t) => t,
                _ => unreachable!("an image operation on a non-image (the front end checks it)"),
            }
        }
    }

    /// `norm` of `v` with its gain and bias: batch per channel (axis 1), layer and RMS per
    /// position over the last axis.
    fn norm(kind: Norm, v: Val, affine: Option<(Tensor<1>, Tensor<1>)>) -> Val {
        match kind {
            Norm::Batch => {
                let v = match v {
                    Val::D2(t) => Val::D2(normalize(Norm::Batch, t)),
                    Val::D3(t) => Val::D3(normalize(Norm::Batch, t)),
                    Val::D4(t) => Val::D4(normalize(Norm::Batch, t)),
                };
                let Some((g, b)) = affine else { return v };
                let c = g.dims()[0];
                match v {
                    Val::D2(t) => Val::D2(t * g.reshape([1, c]) + b.reshape([1, c])),
                    Val::D3(t) => Val::D3(t * g.reshape([1, c, 1]) + b.reshape([1, c, 1])),
                    Val::D4(t) => {
                        Val::D4(t * g.reshape([1, c, 1, 1]) + b.reshape([1, c, 1, 1]))
                    }
                }
            }
            _ => v.map(|rows| {
                let z = normalize(kind, rows);
                match &affine {
                    Some((g, b)) => z * g.clone().unsqueeze::<2>() + b.clone().unsqueeze::<2>(),
                    None => z,
                }
            }),
        }
    }

    /// Run `graph` on `x` `[batch, input features]`; every site goes to `rec`.
    pub(super) fn forward<R: Recorder>(
        graph: &ModelGraph,
        net: &ResolvedNet,
        layout: &[NodeParams],
        p: &DeviceParams,
        x: Tensor<2>,
        rec: &mut R,
    ) -> Tensor<2> {
        let mut vals: Vec<Option<Val>> = vec![None; graph.nodes.len() + 1];
        vals[0] = Some(Val::of(x, &graph.input));
        // The activations applied at their node's site.
        let mut fused: Vec<bool> = vec![false; graph.nodes.len()];
        let (mut layer, mut block) = (0, 0);
        for (i, node) in graph.nodes.iter().enumerate() {
            if fused[i] {
                continue;
            }
            // What a node reads is computed before it (the front ends order them so).
            let read = |k: usize| vals[node.inputs[k]].clone().expect("a value read before it is made");
            let out = match (&node.op, layout[i]) {
                (Op::Linear { .. }, NodeParams::Linear(ids)) => read(0).map(|h| linear(p, ids, h)),
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
                (Op::Act(a), _) => read(0).apply(SiteKind::Activation(a.unwrap_or(net.activation))),
                (Op::Norm { kind, .. }, NodeParams::Norm(ids)) => {
                    let affine = ids.map(|(g, b)| (p.vector(g), p.vector(b)));
                    norm(*kind, read(0), affine)
                }
                (Op::Add { scale }, _) => {
                    block += 1;
                    let branch = read(1).scale(*scale).site(
                        rec,
                        SiteIn {
                            site: "branch",
                            layer: block,
                            kind: SiteKind::Branch,
                            weight: None,
                            scale: None,
                            tokens: None,
                            attention: None,
                            roles: Vec::new(),
                            node: Some(&node.name),
                        },
                    );
                    read(0).add(branch, 1.0).site(
                        rec,
                        SiteIn {
                            site: "out",
                            layer: block,
                            kind: SiteKind::Sum,
                            weight: None,
                            scale: None,
                            tokens: None,
                            attention: None,
                            roles: Vec::new(),
                            node: Some(&node.name),
                        },
                    )
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
                (Op::Flatten, _) => Val::D2(read(0).flat()),
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
                let act = graph.fused_activation(i);
                let phi = match act.map(|j| &graph.nodes[j].op) {
                    Some(Op::Act(a)) => a.unwrap_or(net.activation),
                    _ => sigprop_init::Activation::Linear,
                };
                let h = out.site(
                    rec,
                    SiteIn {
                        site: "layer",
                        layer,
                        kind: SiteKind::Activation(phi),
                        weight,
                        scale: None,
                        tokens: None,
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
