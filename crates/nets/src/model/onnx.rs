//! The ONNX front end: a model exported from a framework (PyTorch's exporter writes opsets
//! 13 to 20), parsed by `onnx-ir` (tracel-ai's parser: typed nodes, attributes resolved per
//! opset, constants lifted) and compiled to a [`ModelGraph`] whose every value holds one
//! sample (the batch axis stays first and untouched).
//!
//! Linear maps (`Gemm`, `MatMul` by a constant, with the `Add` of a bias) and convolutions
//! become the graph's weighted nodes and keep the file's weights for `--init model`;
//! normalizations keep their gains, biases and running statistics. An operator outside
//! what this file reads, or one used in a way it does not (a reshape across the batch
//! axis, asymmetric padding), is refused with the operator, the node and the opset.

use std::collections::HashMap;

use onnx_ir::node::gelu::GeluApproximate;
use onnx_ir::node::padding::{AutoPad, PaddingConfig2d};
use onnx_ir::node::reduce::ReduceAxes;
use onnx_ir::node::reshape::ReshapeInput;
use onnx_ir::node::slice::SliceInput;
use onnx_ir::node::split::SplitSizesInput;
use onnx_ir::node::squeeze::SqueezeInput;
use onnx_ir::node::unsqueeze::UnsqueezeConfig;
use onnx_ir::{ArgType, Argument, Node as OnnxNode, OnnxGraphBuilder, TensorDataExt};
use sigprop_init::Activation;

use super::{BinaryKind, Constant, ModelGraph, Node, Op, UnaryKind};
use crate::options::{NORM_EPS, Norm};

/// What a name stands for: a value of the pass, or a constant.
#[derive(Clone)]
enum Src {
    Value(usize),
    Const(Constant),
}

/// The default-domain opset the model imports (0 where none is declared).
fn opset_of(bytes: &[u8]) -> i64 {
    use onnx_ir::Message;
    onnx_ir::ModelProto::parse_from_bytes(bytes)
        .ok()
        .and_then(|m| {
            m.opset_import
                .iter()
                .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
                .map(|o| o.version)
        })
        .unwrap_or(0)
}

/// Compile the ONNX model `bytes`; an error is one line.
pub(super) fn compile(bytes: &[u8]) -> Result<ModelGraph, String> {
    let opset = opset_of(bytes);
    let g = OnnxGraphBuilder::new()
        .parse_bytes(bytes)
        .map_err(|e| format!("not a readable ONNX model: {}", one_line(&e.to_string())))?;
    if g.nodes.is_empty() || g.outputs.is_empty() {
        return Err("not a readable ONNX model: it has no nodes or no output".into());
    }
    let inputs: Vec<&Argument> = g.inputs.iter().filter(|a| a.value().is_none()).collect();
    let [input] = inputs[..] else {
        return Err(format!(
            "the model has {} inputs; expected one (a batch of samples)",
            inputs.len()
        ));
    };
    let dims = input.ty.static_shape().cloned().unwrap_or_default();
    let per_sample: Option<Vec<usize>> = dims.iter().skip(1).copied().collect();
    let per_sample = per_sample
        .filter(|s| {
            let values = s.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            (1..=3).contains(&s.len()) && values.is_some_and(|v| v > 0 && v <= 1 << 31)
        })
        .ok_or_else(|| {
            format!(
                "input {} has shape {}; expected [batch, ..] with 1 to 3 known axes after the \
                 batch axis",
                input.name, input.ty
            )
        })?;
    // Integer ids: a token model, whose input only an embedding (Gather) reads.
    let ids = matches!(&input.ty, ArgType::Tensor(t) if !t.dtype.is_float());
    if ids && per_sample.len() != 1 {
        return Err(format!(
            "input {} has shape {} of integers; expected token ids [batch, tokens]",
            input.name, input.ty
        ));
    }
    let mut c = Compiler {
        graph: ModelGraph {
            input: per_sample,
            vocab: None,
            nodes: Vec::new(),
        },
        ids,
        names: HashMap::from([(input.name.clone(), Src::Value(0))]),
        batch: dims.first().copied().flatten(),
        opset,
        readers: g
            .nodes
            .iter()
            .flat_map(|n| n.inputs().iter().map(|a| a.name.clone()))
            .fold(HashMap::new(), |mut m, name| {
                *m.entry(name).or_insert(0) += 1;
                m
            }),
    };
    for node in &g.nodes {
        c.node(node)?;
    }
    if g.outputs.len() != 1 {
        return Err(format!(
            "the model has {} outputs; expected one",
            g.outputs.len()
        ));
    }
    match c.names.get(&g.outputs[0].name) {
        Some(Src::Value(v)) if *v == c.graph.nodes.len() && *v > 0 => {}
        _ => {
            return Err(format!(
                "output {} is not the last operation's result; expected a model that ends in \
                 its output",
                g.outputs[0].name
            ));
        }
    }
    // Token ids mean nothing to any operation but the embedding that reads them.
    if ids {
        let readers: Vec<&Node> = c
            .graph
            .nodes
            .iter()
            .filter(|n| n.inputs.contains(&0))
            .collect();
        if c.graph.vocab.is_none() || readers.len() != 1 {
            return Err(format!(
                "input {} holds integer token ids; expected them read by one Gather of an \
                 embedding table and nothing else",
                input.name
            ));
        }
    }
    if !c.graph.nodes.iter().any(|n| n.op.weighted()) {
        return Err(
            "the model has no Gemm, MatMul by a weight or Conv (nothing to initialize)".into(),
        );
    }
    Ok(c.graph)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct Compiler {
    graph: ModelGraph,
    names: HashMap<String, Src>,
    /// The batch the file fixes, where its input's first axis is not symbolic.
    batch: Option<usize>,
    /// The input is integer token ids.
    ids: bool,
    opset: i64,
    /// How many node inputs read each name.
    readers: HashMap<String, usize>,
}

impl Compiler {
    fn refuse(&self, node: &OnnxNode, why: impl std::fmt::Display) -> String {
        format!(
            "operator {} at node {} (opset {}): {why}",
            node.node_type(),
            node.name(),
            self.opset
        )
    }

    /// What argument `a` is.
    fn src(&self, node: &OnnxNode, a: &Argument) -> Result<Src, String> {
        if let Some(data) = a.value() {
            // A boolean constant (an attention mask) as 0 and 1.
            let values = if data.elem_type().is_bool() {
                data.iter::<f32>().collect()
            } else {
                data.to_f32_vec()
                    .map_err(|e| self.refuse(node, format!("a constant it cannot read ({e:?})")))?
            };
            return Ok(Src::Const(Constant {
                data: values,
                shape: data.shape().to_vec(),
            }));
        }
        self.names
            .get(&a.name)
            .cloned()
            .ok_or_else(|| self.refuse(node, format!("input {} is not computed before it", a.name)))
    }

    fn value(&self, node: &OnnxNode, k: usize) -> Result<usize, String> {
        match node
            .inputs()
            .get(k)
            .map(|a| self.src(node, a))
            .transpose()?
        {
            Some(Src::Value(v)) => Ok(v),
            _ => Err(self.refuse(node, format!("its input {k} is not a value of the pass"))),
        }
    }

    fn constant(&self, node: &OnnxNode, k: usize) -> Result<Option<Constant>, String> {
        match node.inputs().get(k) {
            None => Ok(None),
            Some(a) if a.is_optional() => Ok(None),
            Some(a) => match self.src(node, a)? {
                Src::Const(c) => Ok(Some(c)),
                Src::Value(_) => Err(self.refuse(node, format!("its input {k} is not a constant"))),
            },
        }
    }

    fn shape(&self, v: usize) -> Vec<usize> {
        self.graph.shape_of(v).to_vec()
    }

    /// Add a node `name` reading `inputs`: the value of `node`'s first output.
    fn push(
        &mut self,
        node: &OnnxNode,
        name: String,
        op: Op,
        inputs: Vec<usize>,
        shape: Vec<usize>,
    ) -> usize {
        let v = self.push_named(name, op, inputs, shape);
        if let Some(out) = node.outputs().first() {
            self.names.insert(out.name.clone(), Src::Value(v));
        }
        v
    }

    /// A per-sample axis from a full one (the batch axis is refused).
    fn axis(&self, node: &OnnxNode, axis: i64, rank: usize) -> Result<usize, String> {
        let full = rank as i64 + 1;
        let a = if axis < 0 { axis + full } else { axis };
        if a <= 0 || a >= full {
            return Err(self.refuse(
                node,
                format!("axis {axis} is the batch axis or outside the tensor"),
            ));
        }
        Ok(a as usize - 1)
    }

    fn node(&mut self, node: &OnnxNode) -> Result<(), String> {
        use OnnxNode as N;
        let act = |a: Activation| Op::Act(Some(a));
        match node {
            N::Constant(n) => {
                let a = n.inputs.first().or(n.outputs.first());
                let c = match a.map(|a| self.src(node, a)).transpose()? {
                    Some(Src::Const(c)) => c,
                    _ => return Err(self.refuse(node, "a constant without data")),
                };
                if let Some(out) = n.outputs.first() {
                    self.names.insert(out.name.clone(), Src::Const(c));
                }
                Ok(())
            }
            N::Identity(_) | N::Dropout(_) => {
                let src = self.src(node, &node.inputs()[0])?;
                for out in node.outputs() {
                    self.names.insert(out.name.clone(), src.clone());
                }
                Ok(())
            }
            N::Linear(n) => {
                let x = self.value(node, 0)?;
                let w = self
                    .constant(node, 1)?
                    .ok_or_else(|| self.refuse(node, "a weight that is not a constant"))?;
                let bias = self.constant(node, 2)?;
                let [a, b] = w.shape[..] else {
                    return Err(self.refuse(node, "a weight that is not a matrix"));
                };
                let (n_in, n_out) = if n.config.transpose_weight {
                    (b, a)
                } else {
                    (a, b)
                };
                let weight = if n.config.transpose_weight {
                    transposed(&w.data, a, b)
                } else {
                    w.data
                };
                self.linear(node, x, (n_in, n_out), weight, bias.map(|b| b.data))
            }
            N::Gemm(n) => {
                let x = self.value(node, 0)?;
                let cfg = &n.config;
                let w = self
                    .constant(node, 1)?
                    .ok_or_else(|| self.refuse(node, "a B that is not a constant"))?;
                if cfg.trans_a != 0 {
                    return Err(self.refuse(node, "transA = 1"));
                }
                let [a, b] = w.shape[..] else {
                    return Err(self.refuse(node, "a B that is not a matrix"));
                };
                let (n_in, n_out) = if cfg.trans_b != 0 { (b, a) } else { (a, b) };
                let weight = if cfg.trans_b != 0 {
                    transposed(&w.data, a, b)
                } else {
                    w.data
                };
                // A re-drawn weight would lose alpha and beta: only the plain product is read.
                if cfg.alpha != 1.0 || cfg.beta != 1.0 {
                    return Err(self.refuse(
                        node,
                        format!(
                            "alpha {} and beta {}; expected 1 (a plain x W + b)",
                            cfg.alpha, cfg.beta
                        ),
                    ));
                }
                let bias = match self.constant(node, 2)? {
                    Some(c) if c.data.len() == n_out => Some(c.data),
                    Some(c) if c.data.len() == 1 => Some(vec![c.data[0]; n_out]),
                    Some(_) => return Err(self.refuse(node, "a C that is not one bias per output")),
                    None => None,
                };
                self.linear(node, x, (n_in, n_out), weight, bias)
            }
            N::Conv2d(n) => {
                let x = self.value(node, 0)?;
                let cfg = &n.config;
                let Some(w) = self.constant(node, 1)? else {
                    return Err(self.refuse(node, "a weight that is not a constant"));
                };
                let bias = self.constant(node, 2)?;
                let [c, h, wd] = self.shape(x)[..] else {
                    return Err(self.refuse(
                        node,
                        "an input that is not images [channels, height, width]",
                    ));
                };
                let [k, k2] = cfg.kernel_size;
                let [s, s2] = cfg.stride;
                if k != k2 || s != s2 || cfg.dilation != [1, 1] || s == 0 || k == 0 {
                    return Err(self.refuse(node, "a non-square kernel or stride, or a dilation; expected square ones without dilation"));
                }
                let pad = match (cfg.auto_pad.clone(), &cfg.padding) {
                    (AutoPad::SameUpper | AutoPad::SameLower, _) if s == 1 && k % 2 == 1 => k / 2,
                    (AutoPad::NotSet | AutoPad::Valid, PaddingConfig2d::Valid) => 0,
                    (AutoPad::NotSet, PaddingConfig2d::Explicit(t, l, b, r))
                        if t == l && t == b && t == r =>
                    {
                        *t
                    }
                    _ => {
                        return Err(self
                            .refuse(node, "asymmetric padding; expected the same on every side"));
                    }
                };
                let c_out = w.shape[0];
                let groups = cfg.groups.max(1);
                let side = |n: usize| (n + 2 * pad).checked_sub(k).map(|r| r / s + 1);
                let (Some(ho), Some(wo)) = (side(h), side(wd)) else {
                    return Err(self.refuse(node, "a kernel larger than the padded image"));
                };
                if !c.is_multiple_of(groups)
                    || !c_out.is_multiple_of(groups)
                    || w.shape != [c_out, c / groups, k, k]
                    || bias.as_ref().is_some_and(|b| b.data.len() != c_out)
                {
                    return Err(self.refuse(node, format!("a weight {:?} that does not fit its input of {c} channels in {groups} groups", w.shape)));
                }
                let op = Op::Conv {
                    c_in: c,
                    c_out,
                    kernel: k,
                    stride: s,
                    padding: pad,
                    groups,
                    bias: bias.is_some(),
                };
                let mut file = vec![("weight".to_string(), w.data)];
                if let Some(b) = bias {
                    file.push(("bias".into(), b.data));
                }
                let v = self.push(
                    node,
                    node.name().to_string(),
                    op,
                    vec![x],
                    vec![c_out, ho, wo],
                );
                self.graph.nodes[v - 1].file = file;
                Ok(())
            }
            N::BatchNormalization(n) => {
                let x = self.value(node, 0)?;
                let shape = self.shape(x);
                let eps = match &n.config {
                    onnx_ir::node::batch_norm::BatchNormConfig::Static(c) => c.epsilon,
                    onnx_ir::node::batch_norm::BatchNormConfig::Runtime(c) => c.epsilon,
                };
                // onnx-ir reads an absent epsilon as 0: ONNX's default is 1e-5.
                let eps = if eps > 0.0 { eps } else { NORM_EPS };
                let mut file = Vec::new();
                for (k, name) in [
                    (1, "weight"),
                    (2, "bias"),
                    (3, "running_mean"),
                    (4, "running_var"),
                ] {
                    let c = self.constant(node, k)?.ok_or_else(|| {
                        self.refuse(node, format!("a {name} that is not a constant"))
                    })?;
                    if c.data.len() != shape[0] {
                        return Err(self.refuse(
                            node,
                            format!(
                                "a {name} of {} values for {} channels",
                                c.data.len(),
                                shape[0]
                            ),
                        ));
                    }
                    file.push((name.to_string(), c.data));
                }
                let op = Op::Norm {
                    kind: Norm::Batch,
                    affine: true,
                    features: shape[0],
                    eps,
                };
                let v = self.push(node, node.name().to_string(), op, vec![x], shape);
                self.graph.nodes[v - 1].file = file;
                Ok(())
            }
            N::LayerNormalization(n) => {
                let x = self.value(node, 0)?;
                let shape = self.shape(x);
                let last = shape.len() as i64;
                if n.config.axis != -1 && n.config.axis != last {
                    return Err(self.refuse(
                        node,
                        format!("axis {}; expected the last axis", n.config.axis),
                    ));
                }
                let features = shape[shape.len() - 1];
                let gain = self
                    .constant(node, 1)?
                    .ok_or_else(|| self.refuse(node, "a scale that is not a constant"))?;
                let bias = self
                    .constant(node, 2)?
                    .map_or(vec![0.0; features], |c| c.data);
                if gain.data.len() != features || bias.len() != features {
                    return Err(self.refuse(
                        node,
                        format!("a scale or bias that is not one per feature of {features}"),
                    ));
                }
                let op = Op::Norm {
                    kind: Norm::Layer,
                    affine: true,
                    features,
                    eps: n.config.epsilon,
                };
                let v = self.push(node, node.name().to_string(), op, vec![x], shape);
                self.graph.nodes[v - 1].file =
                    vec![("weight".into(), gain.data), ("bias".into(), bias)];
                Ok(())
            }
            N::Relu(_) => self.same(node, act(Activation::Relu)),
            N::Tanh(_) => self.same(node, act(Activation::Tanh)),
            N::Sigmoid(_) => self.same(node, act(Activation::Sigmoid)),
            N::Softplus(_) => self.same(node, act(Activation::Softplus)),
            N::Mish(_) => self.same(node, act(Activation::Mish)),
            N::LeakyRelu(n) => self.same(
                node,
                act(Activation::LeakyRelu {
                    slope: n.config.alpha,
                }),
            ),
            N::Elu(n) => self.same(
                node,
                act(Activation::Elu {
                    alpha: n.config.alpha,
                }),
            ),
            N::Selu(n) => {
                let (a, g) = (n.config.alpha, n.config.gamma);
                if (a - sigprop_init::SELU_ALPHA).abs() > 1e-6
                    || (g - sigprop_init::SELU_LAMBDA).abs() > 1e-6
                {
                    return Err(self.refuse(
                        node,
                        format!("alpha {a}, gamma {g}; expected SELU's own constants"),
                    ));
                }
                self.same(node, act(Activation::Selu))
            }
            N::Gelu(n) => match n.config.approximate {
                GeluApproximate::Exact => self.same(node, act(Activation::Gelu)),
                GeluApproximate::Tanh => {
                    Err(self.refuse(node, "approximate = tanh; expected the exact (erf) GELU"))
                }
            },
            N::Erf(_) => self.same(node, Op::Unary(UnaryKind::Erf)),
            N::Sqrt(_) => self.same(node, Op::Unary(UnaryKind::Sqrt)),
            N::Exp(_) => self.same(node, Op::Unary(UnaryKind::Exp)),
            N::Neg(_) => self.same(node, Op::Unary(UnaryKind::Neg)),
            N::Reciprocal(_) => self.same(node, Op::Unary(UnaryKind::Reciprocal)),
            N::Add(_) => self.binary(node, BinaryKind::Add),
            N::Sub(_) => self.binary(node, BinaryKind::Sub),
            N::Mul(_) => self.binary(node, BinaryKind::Mul),
            N::Div(_) => self.binary(node, BinaryKind::Div),
            N::Pow(_) => self.binary(node, BinaryKind::Pow),
            N::MatMul(_) => {
                // By a constant matrix: a linear map (onnx-ir fuses only some).
                if let Src::Const(w) = self.src(node, &node.inputs()[1])? {
                    let x = self.value(node, 0)?;
                    let [n_in, n_out] = w.shape[..] else {
                        return Err(self.refuse(node, "a constant that is not a matrix"));
                    };
                    return self.linear(node, x, (n_in, n_out), w.data, None);
                }
                let (a, b) = (self.value(node, 0)?, self.value(node, 1)?);
                let (sa, sb) = (self.shape(a), self.shape(b));
                let r = sa.len();
                if r < 2 || sb.len() != r || sa[..r - 2] != sb[..r - 2] || sa[r - 1] != sb[r - 2] {
                    return Err(self.refuse(node, format!("operands {sa:?} and {sb:?} per sample; expected [.., m, k] and [.., k, n]")));
                }
                let mut out = sa.clone();
                out[r - 1] = sb[r - 1];
                self.push(node, node.name().to_string(), Op::MatMul, vec![a, b], out);
                Ok(())
            }
            N::Attention(n) => {
                let cfg = &n.config;
                if cfg.is_causal || cfg.softcap != 0.0 || node.inputs().len() > 3 {
                    return Err(self.refuse(
                        node,
                        "a mask, causal attention or a softcap; expected plain softmax attention",
                    ));
                }
                let (q, k, v) = (
                    self.value(node, 0)?,
                    self.value(node, 1)?,
                    self.value(node, 2)?,
                );
                let (sq, sk) = (self.shape(q), self.shape(k));
                let (&[h, t, dh], &[_, tk, dk]) = (&sq[..], &sk[..]) else {
                    return Err(self.refuse(
                        node,
                        "q, k, v that are not [heads, tokens, features] per sample",
                    ));
                };
                let sv = self.shape(v);
                if dk != dh || sk[0] != h || sv[0] != h || sv[1] != tk {
                    return Err(self.refuse(node, format!("q {sq:?}, k {sk:?}, v {sv:?} per sample; expected one head count and k and v of one length (no grouped key-value heads)")));
                }
                let name = node.name().to_string();
                let kt = self.push_named(
                    format!("{name}.kt"),
                    Op::Transpose(vec![0, 2, 1]),
                    vec![k],
                    vec![h, dh, tk],
                );
                let s = self.push_named(
                    format!("{name}.scores"),
                    Op::MatMul,
                    vec![q, kt],
                    vec![h, t, tk],
                );
                let scale = cfg.scale.unwrap_or(1.0 / (dh as f64).sqrt()) as f32;
                let s = self.push_named(
                    format!("{name}.scaled"),
                    Op::scaled(scale),
                    vec![s],
                    vec![h, t, tk],
                );
                let a = self.push_named(
                    format!("{name}.softmax"),
                    Op::Softmax { axis: 2 },
                    vec![s],
                    vec![h, t, tk],
                );
                let dv = sv[2];
                self.push(node, name, Op::MatMul, vec![a, v], vec![h, t, dv]);
                Ok(())
            }
            N::Gather(n) => {
                let table = self.constant(node, 0)?;
                let ids = self.value(node, 1);
                let (Some(table), Ok(0), true, 0) = (table, ids, self.ids, n.config.axis) else {
                    return Err(self.refuse(
                        node,
                        "expected an embedding: a constant table's rows (axis 0) picked by the \
                         model's input of token ids",
                    ));
                };
                let [vocab, dim] = table.shape[..] else {
                    return Err(self.refuse(
                        node,
                        format!("a table {:?}; expected [vocabulary, features]", table.shape),
                    ));
                };
                if self.graph.vocab.is_some() || vocab == 0 || dim == 0 {
                    return Err(
                        self.refuse(node, "a second embedding or an empty table; expected one")
                    );
                }
                if vocab > 1 << 24 {
                    return Err(self.refuse(
                        node,
                        format!(
                            "a vocabulary of {vocab}; expected at most 2^24 (ids are exact in f32)"
                        ),
                    ));
                }
                self.graph.vocab = Some(vocab);
                let tokens = self.shape(0)[0];
                let op = Op::Embed {
                    vocab,
                    dim,
                    positions: false,
                };
                let v = self.push(
                    node,
                    node.name().to_string(),
                    op,
                    vec![0],
                    vec![tokens, dim],
                );
                self.graph.nodes[v - 1].file = vec![("table".into(), table.data)];
                Ok(())
            }
            N::Where(_) => {
                let mask = self.constant(node, 0)?.ok_or_else(|| {
                    self.refuse(
                        node,
                        "a condition computed at run time; expected a constant mask",
                    )
                })?;
                let scalar = |c: &Constant| (c.data.len() == 1).then(|| c.data[0]);
                let (x, value, flip) = match (
                    self.src(node, &node.inputs()[1])?,
                    self.src(node, &node.inputs()[2])?,
                ) {
                    (Src::Const(c), Src::Value(x)) if scalar(&c).is_some() => {
                        (x, scalar(&c), false)
                    }
                    (Src::Value(x), Src::Const(c)) if scalar(&c).is_some() => (x, scalar(&c), true),
                    _ => {
                        return Err(self.refuse(
                            node,
                            "expected a mask fill: a constant condition choosing between a \
                             scalar constant and a value",
                        ));
                    }
                };
                let shape = self.shape(x);
                if !broadcasts(&mask, &shape) {
                    return Err(self.refuse(
                        node,
                        format!(
                            "a condition {:?} that does not broadcast against {shape:?} per sample",
                            mask.shape
                        ),
                    ));
                }
                // Where(c, fill, x) fills where c holds; Where(c, x, fill) where it does not.
                let data = mask
                    .data
                    .iter()
                    .map(|&m| if (m != 0.0) != flip { 1.0 } else { 0.0 })
                    .collect();
                let op = Op::MaskFill {
                    mask: Constant {
                        data,
                        shape: mask.shape,
                    },
                    value: value.unwrap_or(0.0),
                };
                self.push(node, node.name().to_string(), op, vec![x], shape);
                Ok(())
            }
            N::Reshape(n) => {
                let x = self.value(node, 0)?;
                let ReshapeInput::Static(target) = &n.config.shape else {
                    return Err(self.refuse(node, "a shape computed at run time; expected a constant shape (export with a static or a symbolic batch)"));
                };
                let shape = self.reshape(node, x, target)?;
                self.push(node, node.name().to_string(), Op::Reshape, vec![x], shape);
                Ok(())
            }
            N::Flatten(n) => {
                if n.config.axis != 1 {
                    return Err(self.refuse(
                        node,
                        format!(
                            "axis {}; expected 1 (each sample to one axis)",
                            n.config.axis
                        ),
                    ));
                }
                let x = self.value(node, 0)?;
                let count = self.shape(x).iter().product();
                self.push(
                    node,
                    node.name().to_string(),
                    Op::Flatten,
                    vec![x],
                    vec![count],
                );
                Ok(())
            }
            N::Squeeze(n) => {
                let x = self.value(node, 0)?;
                let shape = self.shape(x);
                let axes: Vec<usize> = match &n.config.axes {
                    Some(SqueezeInput::Static(a)) => a
                        .iter()
                        .map(|&a| self.axis(node, a, shape.len()))
                        .collect::<Result<_, _>>()?,
                    // A batch of 1 would be squeezed too.
                    None if self.batch == Some(1) => {
                        return Err(
                            self.refuse(node, "no axes with a batch fixed at 1; expected its axes")
                        );
                    }
                    None => (0..shape.len()).filter(|&i| shape[i] == 1).collect(),
                    Some(_) => return Err(self.refuse(node, "axes computed at run time")),
                };
                if axes.iter().any(|&a| shape[a] != 1) {
                    return Err(
                        self.refuse(node, format!("an axis of {shape:?} whose size is not 1"))
                    );
                }
                let out: Vec<usize> = (0..shape.len())
                    .filter(|i| !axes.contains(i))
                    .map(|i| shape[i])
                    .collect();
                self.reshaped(node, x, out)
            }
            N::Unsqueeze(n) => {
                let x = self.value(node, 0)?;
                let UnsqueezeConfig::Static(axes) = &n.config else {
                    return Err(self.refuse(node, "axes computed at run time"));
                };
                let mut out = self.shape(x);
                let rank = out.len() + axes.len();
                let mut axes: Vec<usize> = axes
                    .iter()
                    .map(|&a| self.axis(node, a, rank))
                    .collect::<Result<_, _>>()?;
                axes.sort_unstable();
                for a in axes {
                    out.insert(a, 1);
                }
                self.reshaped(node, x, out)
            }
            N::Transpose(n) => {
                // A constant transposed (an exporter's weight, W^T): folded here.
                if let Src::Const(c) = self.src(node, &node.inputs()[0])? {
                    let p: Vec<usize> = n.config.perm.iter().map(|&a| a as usize).collect();
                    let folded = permuted(&c, &p).ok_or_else(|| {
                        self.refuse(node, "a perm that does not fit its constant")
                    })?;
                    if let Some(out) = node.outputs().first() {
                        self.names.insert(out.name.clone(), Src::Const(folded));
                    }
                    return Ok(());
                }
                let x = self.value(node, 0)?;
                let shape = self.shape(x);
                let perm = &n.config.perm;
                if perm.len() != shape.len() + 1 || perm[0] != 0 {
                    return Err(self.refuse(
                        node,
                        format!("perm {perm:?} moves the batch axis; expected it first"),
                    ));
                }
                let p: Vec<usize> = perm[1..].iter().map(|&a| a as usize - 1).collect();
                let out: Vec<usize> = p.iter().map(|&a| shape[a]).collect();
                self.push(
                    node,
                    node.name().to_string(),
                    Op::Transpose(p),
                    vec![x],
                    out,
                );
                Ok(())
            }
            N::Softmax(n) => {
                let x = self.value(node, 0)?;
                let shape = self.shape(x);
                let axis = self.axis(node, n.config.axis as i64, shape.len())?;
                // Before opset 13 Softmax flattens every axis from `axis` on.
                if self.opset < 13 && axis + 1 != shape.len() {
                    return Err(self.refuse(
                        node,
                        "a softmax over several axes (opset < 13); expected one over the last axis",
                    ));
                }
                self.push(
                    node,
                    node.name().to_string(),
                    Op::Softmax { axis },
                    vec![x],
                    shape,
                );
                Ok(())
            }
            N::ReduceMean(n) => {
                let x = self.value(node, 0)?;
                let shape = self.shape(x);
                let ReduceAxes::Static(axes) = &n.config.axes else {
                    return Err(self.refuse(node, "axes computed at run time"));
                };
                if axes.is_empty() {
                    return Err(self.refuse(node, "no axes (the mean over the batch too)"));
                }
                let axes: Vec<usize> = axes
                    .iter()
                    .map(|&a| self.axis(node, a as i64, shape.len()))
                    .collect::<Result<_, _>>()?;
                let keep = n.config.keepdims;
                let out: Vec<usize> = (0..shape.len())
                    .filter_map(|i| match (axes.contains(&i), keep) {
                        (false, _) => Some(shape[i]),
                        (true, true) => Some(1),
                        (true, false) => None,
                    })
                    .collect();
                if out.is_empty() {
                    return Err(self.refuse(
                        node,
                        "a mean over every axis of a sample; expected one that leaves an axis",
                    ));
                }
                let mut sorted = axes;
                sorted.sort_unstable_by(|a, b| b.cmp(a));
                self.push(
                    node,
                    node.name().to_string(),
                    Op::ReduceMean { axes: sorted, keep },
                    vec![x],
                    out,
                );
                Ok(())
            }
            N::GlobalAveragePool(_) => {
                let x = self.value(node, 0)?;
                let [c, _, _] = self.shape(x)[..] else {
                    return Err(self.refuse(node, "an input that is not images"));
                };
                let op = Op::ReduceMean {
                    axes: vec![2, 1],
                    keep: true,
                };
                self.push(node, node.name().to_string(), op, vec![x], vec![c, 1, 1]);
                Ok(())
            }
            N::MaxPool2d(n) => {
                let c = &n.config;
                self.pool(
                    node,
                    true,
                    (
                        c.kernel_size,
                        c.strides,
                        &c.padding,
                        c.dilation,
                        c.ceil_mode,
                        c.auto_pad.clone(),
                    ),
                    true,
                )
            }
            N::AveragePool2d(n) => {
                let c = &n.config;
                self.pool(
                    node,
                    false,
                    (
                        c.kernel_size,
                        c.strides,
                        &c.padding,
                        c.dilation,
                        c.ceil_mode,
                        c.auto_pad.clone(),
                    ),
                    c.count_include_pad,
                )
            }
            N::Concat(n) => {
                let ins: Vec<usize> = (0..node.inputs().len())
                    .map(|k| self.value(node, k))
                    .collect::<Result<_, _>>()?;
                let first = self.shape(ins[0]);
                let axis = self.axis(node, n.config.axis as i64, first.len())?;
                let mut out = first.clone();
                out[axis] = 0;
                for &v in &ins {
                    let s = self.shape(v);
                    let fits = s.len() == first.len()
                        && (0..s.len()).all(|i| i == axis || s[i] == first[i]);
                    if !fits {
                        return Err(self.refuse(node, "inputs whose shapes differ off the axis"));
                    }
                    out[axis] += s[axis];
                }
                self.push(node, node.name().to_string(), Op::Concat { axis }, ins, out);
                Ok(())
            }
            N::Split(n) => {
                let x = self.value(node, 0)?;
                let shape = self.shape(x);
                let axis = self.axis(node, n.config.axis as i64, shape.len())?;
                let sizes = match &n.config.split_sizes {
                    Some(SplitSizesInput::Static(s)) => s.clone(),
                    _ => return Err(self.refuse(node, "split sizes computed at run time")),
                };
                let mut start = 0;
                for (out, size) in node.outputs().iter().zip(sizes) {
                    let mut s = shape.clone();
                    s[axis] = size;
                    let op = Op::Slice {
                        axis,
                        start,
                        end: start + size,
                        step: 1,
                    };
                    let v = self.push_named(out.name.clone(), op, vec![x], s);
                    self.names.insert(out.name.clone(), Src::Value(v));
                    start += size;
                }
                Ok(())
            }
            N::Slice(n) => {
                let mut x = self.value(node, 0)?;
                let cfg = &n.config;
                let statics = |s: &Option<SliceInput>| match s {
                    None => Ok(None),
                    Some(SliceInput::Static(v)) => Ok(Some(v.clone())),
                    Some(_) => Err(()),
                };
                let (SliceInput::Static(starts), SliceInput::Static(ends)) =
                    (&cfg.starts, &cfg.ends)
                else {
                    return Err(self.refuse(node, "bounds computed at run time"));
                };
                let axes = statics(&cfg.axes)
                    .map_err(|_| self.refuse(node, "axes computed at run time"))?;
                let steps = statics(&cfg.steps)
                    .map_err(|_| self.refuse(node, "steps computed at run time"))?;
                let rank = self.shape(x).len();
                let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
                let short = starts.len() < axes.len()
                    || ends.len() < axes.len()
                    || steps.as_ref().is_some_and(|s| s.len() < axes.len());
                if short {
                    return Err(self.refuse(node, "fewer starts, ends or steps than axes"));
                }
                for (i, &a) in axes.iter().enumerate() {
                    let axis = self.axis(node, a, rank)?;
                    let step = steps.as_ref().map_or(1, |s| s[i]);
                    if step <= 0 {
                        return Err(self.refuse(node, "a step <= 0; expected forward slices"));
                    }
                    let mut shape = self.shape(x);
                    let n = shape[axis] as i64;
                    let clamp = |v: i64| if v < 0 { (v + n).max(0) } else { v.min(n) } as usize;
                    let (start, end) = (clamp(starts[i]), clamp(ends[i]));
                    if end <= start {
                        return Err(self.refuse(node, "an empty slice"));
                    }
                    let step = step as usize;
                    shape[axis] = (end - start).div_ceil(step);
                    let op = Op::Slice {
                        axis,
                        start,
                        end,
                        step,
                    };
                    let name = if i + 1 == axes.len() {
                        node.name().to_string()
                    } else {
                        format!("{}.{i}", node.name())
                    };
                    x = self.push(node, name, op, vec![x], shape);
                }
                Ok(())
            }
            N::Custom(n) => Err(format!(
                "operator {} ({}) at node {} (opset {}) is not supported; see docs/models.md for the operators read",
                n.op_type,
                if n.domain.is_empty() {
                    "ai.onnx"
                } else {
                    &n.domain
                },
                n.name,
                n.opset
            )),
            other => Err(format!(
                "operator {} at node {} (opset {}) is not supported; see docs/models.md for the operators read",
                other.node_type(),
                other.name(),
                self.opset
            )),
        }
    }

    /// Add a node `name` reading `inputs` (an operation of its own, or one of several an
    /// ONNX node becomes); its value.
    fn push_named(&mut self, name: String, op: Op, inputs: Vec<usize>, shape: Vec<usize>) -> usize {
        self.graph.nodes.push(Node::new(name, op, inputs, shape));
        self.graph.nodes.len()
    }

    /// A unary node of the input's shape.
    fn same(&mut self, node: &OnnxNode, op: Op) -> Result<(), String> {
        let x = self.value(node, 0)?;
        let shape = self.shape(x);
        self.push(node, node.name().to_string(), op, vec![x], shape);
        Ok(())
    }

    fn reshaped(&mut self, node: &OnnxNode, x: usize, out: Vec<usize>) -> Result<(), String> {
        if out.is_empty() || out.len() > 3 {
            return Err(self.refuse(
                node,
                format!("{} axes per sample; expected 1 to 3", out.len()),
            ));
        }
        self.push(node, node.name().to_string(), Op::Reshape, vec![x], out);
        Ok(())
    }

    fn linear(
        &mut self,
        node: &OnnxNode,
        x: usize,
        (n_in, n_out): (usize, usize),
        weight: Vec<f32>,
        bias: Option<Vec<f32>>,
    ) -> Result<(), String> {
        let mut shape = self.shape(x);
        if shape.last() != Some(&n_in) {
            return Err(self.refuse(
                node,
                format!("an input {shape:?} whose last axis is not the weight's {n_in} inputs"),
            ));
        }
        if bias.as_ref().is_some_and(|b| b.len() != n_out) {
            return Err(self.refuse(node, "a bias that is not one per output"));
        }
        *shape.last_mut().unwrap_or(&mut 0) = n_out;
        let op = Op::Linear {
            n_in,
            n_out,
            bias: bias.is_some(),
        };
        let v = self.push(node, node.name().to_string(), op, vec![x], shape);
        let mut file = vec![("weight".to_string(), weight)];
        if let Some(b) = bias {
            file.push(("bias".into(), b));
        }
        self.graph.nodes[v - 1].file = file;
        Ok(())
    }

    /// Add, Sub, Mul, Div, Pow: two values of one shape, or a value and a constant that
    /// broadcasts against it. An Add of two values is a residual add: its branch is the
    /// later value, its skip the earlier.
    fn binary(&mut self, node: &OnnxNode, kind: BinaryKind) -> Result<(), String> {
        let (a, b) = (
            self.src(node, &node.inputs()[0])?,
            self.src(node, &node.inputs()[1])?,
        );
        // The bias of the linear map just made (or the position table of the embedding
        // just made), read by nothing else: its own parameter, so that --bias-init (for a
        // position table, the table's initializer) draws it like any other.
        if kind == BinaryKind::Add
            && let (Src::Value(x), Src::Const(c)) | (Src::Const(c), Src::Value(x)) = (&a, &b)
            && *x == self.graph.nodes.len()
            && (self.bias_slot(*x, c, node) || self.positions_slot(*x, c, node))
        {
            if let Some(out) = node.outputs().first() {
                self.names.insert(out.name.clone(), Src::Value(*x));
            }
            return Ok(());
        }
        match (a, b) {
            (Src::Value(x), Src::Value(y)) => {
                let (sx, sy) = (self.shape(x), self.shape(y));
                // One rank, each axis equal or 1 on one side (x - mean(x) of LayerNorm
                // written out).
                let fits = sx.len() == sy.len()
                    && sx
                        .iter()
                        .zip(&sy)
                        .all(|(a, b)| a == b || *a == 1 || *b == 1);
                if !fits {
                    return Err(self.refuse(node, format!("operands {sx:?} and {sy:?} per sample; expected shapes that broadcast at one rank")));
                }
                let out: Vec<usize> = sx.iter().zip(&sy).map(|(a, b)| *a.max(b)).collect();
                let (op, inputs) = match kind {
                    // Two values of one shape: a residual add, its branch the later value.
                    BinaryKind::Add if sx == sy => {
                        (Op::Add { scale: 1.0 }, vec![x.min(y), x.max(y)])
                    }
                    _ => (
                        Op::Binary {
                            kind,
                            constant: None,
                            constant_first: false,
                        },
                        vec![x, y],
                    ),
                };
                self.push(node, node.name().to_string(), op, inputs, out);
                Ok(())
            }
            (Src::Value(x), Src::Const(c)) | (Src::Const(c), Src::Value(x)) => {
                let first = matches!(self.src(node, &node.inputs()[0])?, Src::Const(_));
                let shape = self.shape(x);
                if !broadcasts(&c, &shape) {
                    return Err(self.refuse(
                        node,
                        format!(
                            "a constant {:?} that does not broadcast against {shape:?} per sample",
                            c.shape
                        ),
                    ));
                }
                let op = Op::Binary {
                    kind,
                    constant: Some(c),
                    constant_first: first,
                };
                self.push(node, node.name().to_string(), op, vec![x], shape);
                Ok(())
            }
            (Src::Const(_), Src::Const(_)) => {
                Err(self.refuse(node, "two constants (fold them in the exporter)"))
            }
        }
    }

    /// The per-sample shape a Reshape to `target` gives `x`.
    fn reshape(&self, node: &OnnxNode, x: usize, target: &[i64]) -> Result<Vec<usize>, String> {
        let shape = self.shape(x);
        let count: usize = shape.iter().product();
        let first = target.first().copied().unwrap_or(0);
        let batch_kept =
            first == -1 || first == 0 || Some(first as usize) == self.batch && first > 0;
        if !batch_kept || target.len() < 2 {
            return Err(self.refuse(node, format!("shape {target:?} does not keep the batch axis first; expected [batch or -1, ..]")));
        }
        let mut out = Vec::new();
        let mut unknown = None;
        for (i, &t) in target[1..].iter().enumerate() {
            match t {
                -1 => {
                    unknown = Some(i);
                    out.push(1);
                }
                0 => out.push(
                    *shape
                        .get(i)
                        .ok_or_else(|| self.refuse(node, "a 0 past the input's axes"))?,
                ),
                t if t > 0 => out.push(t as usize),
                _ => return Err(self.refuse(node, format!("shape {target:?}"))),
            }
        }
        if first == -1 && unknown.is_some() {
            return Err(self.refuse(node, "two -1 in its shape"));
        }
        let Some(known) = out.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) else {
            return Err(self.refuse(
                node,
                format!("shape {target:?} does not fit {count} values per sample"),
            ));
        };
        if let Some(i) = unknown {
            if known == 0 || !count.is_multiple_of(known) {
                return Err(self.refuse(
                    node,
                    format!("shape {target:?} does not fit {count} values per sample"),
                ));
            }
            out[i] = count / known;
        } else if known != count {
            return Err(self.refuse(
                node,
                format!("shape {target:?} does not fit {count} values per sample"),
            ));
        }
        if out.len() > 3 {
            return Err(self.refuse(
                node,
                format!("{} axes per sample; expected 1 to 3", out.len()),
            ));
        }
        Ok(out)
    }

    #[allow(clippy::type_complexity)]
    fn pool(
        &mut self,
        node: &OnnxNode,
        max: bool,
        (kernel, strides, padding, dilation, ceil, auto): (
            [usize; 2],
            [usize; 2],
            &PaddingConfig2d,
            [usize; 2],
            bool,
            AutoPad,
        ),
        count_pad: bool,
    ) -> Result<(), String> {
        let x = self.value(node, 0)?;
        let [c, h, w] = self.shape(x)[..] else {
            return Err(self.refuse(node, "an input that is not images"));
        };
        if kernel[0] != kernel[1]
            || strides[0] != strides[1]
            || dilation != [1, 1]
            || ceil
            || kernel[0] == 0
            || strides[0] == 0
        {
            return Err(self.refuse(
                node,
                "a non-square window or stride, a dilation or ceil_mode; expected square windows",
            ));
        }
        let pad = match (auto, padding) {
            (AutoPad::NotSet | AutoPad::Valid, PaddingConfig2d::Valid) => 0,
            (AutoPad::NotSet, PaddingConfig2d::Explicit(t, l, b, r))
                if t == l && t == b && t == r =>
            {
                *t
            }
            _ => return Err(self.refuse(node, "asymmetric or automatic padding")),
        };
        let (k, s) = (kernel[0], strides[0]);
        let side = |n: usize| (n + 2 * pad).checked_sub(k).map(|r| r / s + 1);
        let (Some(ho), Some(wo)) = (side(h), side(w)) else {
            return Err(self.refuse(node, "a window larger than the padded image"));
        };
        if !max && pad > 0 && !count_pad {
            return Err(self.refuse(
                node,
                "count_include_pad = 0 with padding; expected the padding counted",
            ));
        }
        let op = Op::Pool {
            max,
            kernel: k,
            stride: s,
            padding: pad,
        };
        self.push(node, node.name().to_string(), op, vec![x], vec![c, ho, wo]);
        Ok(())
    }
}

impl Compiler {
    /// Whether node value `x` is an embedding without positions, read only by `add`, and
    /// `c` one value per token and feature: then `c` becomes its position table.
    fn positions_slot(&mut self, x: usize, c: &Constant, add: &OnnxNode) -> bool {
        let node = &self.graph.nodes[x - 1];
        let Op::Embed {
            positions: false, ..
        } = node.op
        else {
            return false;
        };
        let fits = c.data.len() == node.shape.iter().product::<usize>()
            && c.shape.ends_with(&node.shape)
            && c.shape.iter().rev().skip(2).all(|&d| d == 1);
        if !fits || !self.read_once(x, add) {
            return false;
        }
        let node = &mut self.graph.nodes[x - 1];
        if let Op::Embed { positions, .. } = &mut node.op {
            *positions = true;
        }
        node.file.push(("positions".into(), c.data.clone()));
        true
    }

    /// Whether every input of `add` that is value `x` is read by nothing else.
    fn read_once(&self, x: usize, add: &OnnxNode) -> bool {
        add.inputs()
            .iter()
            .filter(|a| matches!(self.names.get(&a.name), Some(Src::Value(v)) if *v == x))
            .all(|a| self.readers.get(&a.name) == Some(&1))
    }

    /// Whether node value `x` is a linear map without a bias, read only by `add`, and `c`
    /// one value per output: then `c` becomes its bias.
    fn bias_slot(&mut self, x: usize, c: &Constant, add: &OnnxNode) -> bool {
        let Op::Linear {
            n_out, bias: false, ..
        } = self.graph.nodes[x - 1].op
        else {
            return false;
        };
        let fits = c.data.len() == n_out && c.shape.iter().rev().skip(1).all(|&d| d == 1);
        if !fits || !self.read_once(x, add) {
            return false;
        }
        let node = &mut self.graph.nodes[x - 1];
        if let Op::Linear { bias, .. } = &mut node.op {
            *bias = true;
        }
        node.file.push(("bias".into(), c.data.clone()));
        true
    }
}

/// Whether constant `c` broadcasts against a value of one sample's `shape` (aligned on the
/// last axes, with the batch axis in front).
fn broadcasts(c: &Constant, shape: &[usize]) -> bool {
    let full: Vec<usize> = std::iter::once(1).chain(shape.iter().copied()).collect();
    c.shape.len() <= full.len()
        && c.shape
            .iter()
            .rev()
            .zip(full.iter().rev())
            .all(|(&a, &b)| a == 1 || a == b)
}

/// `c`'s axes in the order `perm` (`None` where `perm` is not a permutation of its axes).
fn permuted(c: &Constant, perm: &[usize]) -> Option<Constant> {
    let rank = c.shape.len();
    let mut seen = vec![false; rank];
    for &p in perm {
        if p >= rank || std::mem::replace(&mut seen[p], true) {
            return None;
        }
    }
    if perm.len() != rank {
        return None;
    }
    let shape: Vec<usize> = perm.iter().map(|&p| c.shape[p]).collect();
    // Row-major strides of the source.
    let mut strides = vec![1; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * c.shape[i + 1];
    }
    let mut data = Vec::with_capacity(c.data.len());
    let mut index = vec![0; rank];
    for _ in 0..c.data.len() {
        let at: usize = index.iter().zip(perm).map(|(&i, &p)| i * strides[p]).sum();
        data.push(c.data[at]);
        for d in (0..rank).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Some(Constant { data, shape })
}

/// `[a, b]` row-major to `[b, a]`.
fn transposed(data: &[f32], a: usize, b: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for i in 0..a {
        for j in 0..b {
            out[j * a + i] = data[i * b + j];
        }
    }
    out
}
