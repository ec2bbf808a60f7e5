//! The TOML model format: a model's input shape and its layers in order, with blocks that
//! repeat and residual blocks that add a scaled branch to a skip path, compiled to a
//! [`ModelGraph`] with every shape checked. The grammar is documented in docs/models.md.
//!
//! ```toml
//! input = [64]
//!
//! [[layers]]
//! op = "linear"
//! out = 64
//!
//! [[layers]]
//! op = "block"
//! name = "res"
//! repeat = 4
//! residual = true
//! branch-scale = 0.5
//! layers = [{ op = "linear", out = 64 }, { op = "act" }, { op = "linear", out = 64 }]
//! ```

use std::collections::HashSet;

use serde::Deserialize;
use sigprop_init::Activation;

use super::{BinaryKind, Constant, ModelGraph, Node, Op};
use crate::options::Norm;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// One sample's shape.
    input: Vec<usize>,
    /// The layers, in order.
    layers: Vec<Layer>,
    /// Free text, for the reader.
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
enum Layer {
    Linear(Linear),
    Conv(Conv),
    Act(Act),
    Norm(NormLayer),
    MaxPool(Pool),
    AvgPool(Pool),
    GlobalAvgPool(Plain),
    Flatten(Plain),
    Reshape(ReshapeLayer),
    Upsample(Upsample),
    Attention(AttentionLayer),
    Embedding(EmbeddingLayer),
    Block(Block),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbeddingLayer {
    name: Option<String>,
    vocab: usize,
    dim: usize,
    #[serde(default)]
    positions: bool,
    init: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReshapeLayer {
    name: Option<String>,
    shape: Vec<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttentionLayer {
    name: Option<String>,
    heads: usize,
    #[serde(default)]
    causal: bool,
    #[serde(default = "yes")]
    bias: bool,
    init: Option<String>,
    bias_init: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Upsample {
    name: Option<String>,
    #[serde(default = "two")]
    factor: usize,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Linear {
    name: Option<String>,
    out: usize,
    /// Initialized as the transpose of this earlier linear node's weight.
    tie: Option<String>,
    #[serde(default = "yes")]
    bias: bool,
    init: Option<String>,
    bias_init: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Conv {
    name: Option<String>,
    out: usize,
    #[serde(default = "three")]
    kernel: usize,
    #[serde(default = "one")]
    stride: usize,
    /// Default: `kernel / 2` (same size at stride 1, odd kernel).
    padding: Option<usize>,
    #[serde(default = "one")]
    groups: usize,
    #[serde(default = "yes")]
    bias: bool,
    init: Option<String>,
    bias_init: Option<String>,
}

fn one() -> usize {
    1
}

fn three() -> usize {
    3
}

fn two() -> usize {
    2
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Act {
    name: Option<String>,
    /// The activation spec; without it, the run's `--activation`.
    #[serde(rename = "fn")]
    function: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NormLayer {
    name: Option<String>,
    kind: String,
    #[serde(default = "yes")]
    affine: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pool {
    name: Option<String>,
    #[serde(default = "two")]
    kernel: usize,
    /// Default: the kernel.
    stride: Option<usize>,
    #[serde(default)]
    padding: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Plain {
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Block {
    name: Option<String>,
    #[serde(default = "one")]
    repeat: usize,
    #[serde(default)]
    residual: bool,
    branch_scale: Option<f64>,
    layers: Vec<Layer>,
    shortcut: Option<Vec<Layer>>,
}

impl Layer {
    fn op_name(&self) -> &'static str {
        match self {
            Layer::Linear(_) => "linear",
            Layer::Conv(_) => "conv",
            Layer::Act(_) => "act",
            Layer::Norm(_) => "norm",
            Layer::MaxPool(_) => "max-pool",
            Layer::AvgPool(_) => "avg-pool",
            Layer::GlobalAvgPool(_) => "global-avg-pool",
            Layer::Flatten(_) => "flatten",
            Layer::Reshape(_) => "reshape",
            Layer::Upsample(_) => "upsample",
            Layer::Attention(_) => "attention",
            Layer::Embedding(_) => "embedding",
            Layer::Block(_) => "block",
        }
    }

    fn name(&self) -> Option<&String> {
        match self {
            Layer::Linear(l) => l.name.as_ref(),
            Layer::Conv(l) => l.name.as_ref(),
            Layer::Act(l) => l.name.as_ref(),
            Layer::Norm(l) => l.name.as_ref(),
            Layer::MaxPool(l) | Layer::AvgPool(l) => l.name.as_ref(),
            Layer::GlobalAvgPool(l) | Layer::Flatten(l) => l.name.as_ref(),
            Layer::Reshape(l) => l.name.as_ref(),
            Layer::Upsample(l) => l.name.as_ref(),
            Layer::Attention(l) => l.name.as_ref(),
            Layer::Embedding(l) => l.name.as_ref(),
            Layer::Block(l) => l.name.as_ref(),
        }
    }
}

/// The line (1-based) of byte `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.get(..at).map_or(0, |t| t.matches('\n').count()) + 1
}

/// Compile the TOML model `text`; an error is one line (with the file's line where the
/// TOML itself is wrong, with the node's name where a size is).
pub(super) fn compile(text: &str) -> Result<ModelGraph, String> {
    let file: File = ::toml::from_str(text).map_err(|e| {
        let what = e.message().trim().replace('\n', " ");
        match e.span() {
            Some(span) => format!("line {}: {what}", line_of(text, span.start)),
            None => what,
        }
    })?;
    if file.input.is_empty() || file.input.contains(&0) || !fits_values(&file.input) {
        return Err(format!(
            "input = {:?}: expected one sample's shape, whole numbers > 0 ([features], \
             [channels, height, width] or [tokens, features])",
            file.input
        ));
    }
    if file.input.len() > 3 {
        return Err(format!(
            "input = {:?}: expected at most 3 axes per sample",
            file.input
        ));
    }
    let mut c = Compiler {
        graph: ModelGraph {
            input: file.input,
            vocab: None,
            nodes: Vec::new(),
        },
        names: HashSet::new(),
    };
    c.layers("", &file.layers, 0)?;
    if c.graph.vocab.is_some()
        && c.graph
            .nodes
            .iter()
            .filter(|n| n.inputs.contains(&0))
            .count()
            != 1
    {
        return Err("the input is token ids: only the embedding may read it".into());
    }
    if !c.graph.nodes.iter().any(|n| n.op.weighted()) {
        return Err("the model has no linear or conv layer (nothing to initialize)".into());
    }
    Ok(c.graph)
}

/// The largest size a key may give (a width, a kernel, a padding, a repeat).
const MAX_SIZE: usize = 1 << 20;

/// The most values one sample may hold at any node.
const MAX_VALUES: usize = 1 << 31;

/// Whether one sample of `shape` holds at most [`MAX_VALUES`] values (without overflow).
fn fits_values(shape: &[usize]) -> bool {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .is_some_and(|v| v <= MAX_VALUES)
}

/// The most nodes a model may have.
const MAX_NODES: usize = 1 << 16;

struct Compiler {
    graph: ModelGraph,
    names: HashSet<String>,
}

impl Compiler {
    /// Add node `name` computing `op` on `inputs` with output `shape`; its value.
    fn push(&mut self, name: String, op: Op, inputs: Vec<usize>, shape: Vec<usize>) -> usize {
        self.push_node(Node::new(name, op, inputs, shape))
    }

    fn push_node(&mut self, node: Node) -> usize {
        self.names.insert(node.name.clone());
        self.graph.nodes.push(node);
        self.graph.nodes.len()
    }

    /// A node's full name: the file's (or `<op>.<position>`) under `prefix`, unique.
    fn name_of(&self, prefix: &str, layer: &Layer, position: usize) -> Result<String, String> {
        let own = match layer.name() {
            Some(n) => {
                if n.is_empty() || n.contains(char::is_whitespace) || n.contains('=') {
                    return Err(format!("name {n:?}: expected a name without spaces or '='"));
                }
                n.clone()
            }
            None => format!("{}.{position}", layer.op_name()),
        };
        let full = format!("{prefix}{own}");
        if self.names.contains(&full) {
            return Err(format!("name {full:?} is used twice; names must be unique"));
        }
        Ok(full)
    }

    /// Compile `layers` reading value `x`; the value of the last.
    fn layers(&mut self, prefix: &str, layers: &[Layer], mut x: usize) -> Result<usize, String> {
        for (i, layer) in layers.iter().enumerate() {
            let name = self.name_of(prefix, layer, i + 1)?;
            x = self.layer(&name, layer, x)?;
            let shape = self.graph.shape_of(x);
            if !fits_values(shape) || self.graph.nodes.len() > MAX_NODES {
                return Err(format!(
                    "{name}: {shape:?} per sample or {} nodes; expected at most {MAX_VALUES} values \
                     and {MAX_NODES} nodes",
                    self.graph.nodes.len()
                ));
            }
        }
        Ok(x)
    }

    fn layer(&mut self, name: &str, layer: &Layer, x: usize) -> Result<usize, String> {
        let shape = self.graph.shape_of(x).to_vec();
        let at = |why: String| format!("{} {name}: {why}", layer.op_name());
        let positive = |key: &str, v: usize| {
            if v == 0 || v > MAX_SIZE {
                Err(at(format!(
                    "{key} = {v}; expected a whole number from 1 to {MAX_SIZE}"
                )))
            } else {
                Ok(())
            }
        };
        let image = |shape: &[usize]| match *shape {
            [c, h, w] => Ok((c, h, w)),
            _ => Err(at(format!(
                "its input is {shape:?}; expected images [channels, height, width]"
            ))),
        };
        // (side + 2 padding - kernel) / stride + 1, where the window fits.
        let side = |n: usize, k: usize, s: usize, p: usize| {
            (n + 2 * p)
                .checked_sub(k)
                .map(|r| r / s + 1)
                .ok_or_else(|| {
                    at(format!(
                        "kernel {k} is larger than the padded side {}",
                        n + 2 * p
                    ))
                })
        };
        let node = |op: Op, shape: Vec<usize>| Node::new(name.to_string(), op, vec![x], shape);
        match layer {
            Layer::Linear(l) => {
                positive("out", l.out)?;
                let n_in = *shape.last().unwrap_or(&0);
                let mut out = shape.clone();
                if let Some(last) = out.last_mut() {
                    *last = l.out;
                }
                let op = Op::Linear {
                    n_in,
                    n_out: l.out,
                    bias: l.bias,
                };
                let mut n = node(op, out);
                n.init = l.init.clone();
                n.bias_init = l.bias_init.clone();
                if let Some(t) = &l.tie {
                    let fits = self.graph.nodes.iter().any(|m| {
                        m.name == *t
                            && m.op
                                == Op::Linear {
                                    n_in: l.out,
                                    n_out: n_in,
                                    bias: matches!(m.op, Op::Linear { bias: true, .. }),
                                }
                    });
                    if !fits {
                        return Err(at(format!(
                            "tie = {t:?}: expected an earlier linear node of {} inputs and {n_in} \
                             outputs (its weight transposed is this one's)",
                            l.out
                        )));
                    }
                    if l.init.is_some() {
                        return Err(at("tie and init both given; expected one".into()));
                    }
                    n.tie = Some(t.clone());
                }
                Ok(self.push_node(n))
            }
            Layer::Conv(l) => {
                positive("out", l.out)?;
                positive("kernel", l.kernel)?;
                positive("stride", l.stride)?;
                positive("groups", l.groups)?;
                let (c, h, w) = image(&shape)?;
                if !c.is_multiple_of(l.groups) || !l.out.is_multiple_of(l.groups) {
                    return Err(at(format!(
                        "groups = {} must divide its {c} input and {} output channels",
                        l.groups, l.out
                    )));
                }
                let padding = l.padding.unwrap_or(l.kernel / 2);
                if padding > MAX_SIZE {
                    return Err(at(format!(
                        "padding = {padding}; expected at most {MAX_SIZE}"
                    )));
                }
                let out = vec![
                    l.out,
                    side(h, l.kernel, l.stride, padding)?,
                    side(w, l.kernel, l.stride, padding)?,
                ];
                let op = Op::Conv {
                    c_in: c,
                    c_out: l.out,
                    kernel: l.kernel,
                    stride: l.stride,
                    padding,
                    groups: l.groups,
                    bias: l.bias,
                };
                let mut n = node(op, out);
                n.init = l.init.clone();
                n.bias_init = l.bias_init.clone();
                Ok(self.push_node(n))
            }
            Layer::Act(a) => {
                let f = match &a.function {
                    None => None,
                    Some(spec) => {
                        let f: Activation = spec
                            .parse()
                            .map_err(|e| at(format!("fn = {spec:?}: {e}")))?;
                        if f.depends_on_depth() {
                            return Err(at(format!(
                                "fn = {spec:?} is solved for a chain of --depth layers; \
                                 expected an activation of its own"
                            )));
                        }
                        Some(f)
                    }
                };
                Ok(self.push_node(node(Op::Act(f), shape)))
            }
            Layer::Norm(l) => {
                let kind = match l.kind.trim() {
                    "batch" => Norm::Batch,
                    "layer" => Norm::Layer,
                    "rms" => Norm::Rms,
                    other => {
                        return Err(at(format!(
                            "kind = {other:?}; expected batch, layer or rms"
                        )));
                    }
                };
                let features = match kind {
                    Norm::Batch => shape[0],
                    _ => *shape.last().unwrap_or(&0),
                };
                let op = Op::Norm {
                    kind,
                    affine: l.affine,
                    features,
                    eps: crate::options::NORM_EPS,
                };
                Ok(self.push_node(node(op, shape)))
            }
            Layer::MaxPool(p) | Layer::AvgPool(p) => {
                positive("kernel", p.kernel)?;
                let stride = p.stride.unwrap_or(p.kernel);
                positive("stride", stride)?;
                let (c, h, w) = image(&shape)?;
                if p.padding > p.kernel / 2 {
                    return Err(at(format!(
                        "padding = {} is more than half the kernel {}",
                        p.padding, p.kernel
                    )));
                }
                let out = vec![
                    c,
                    side(h, p.kernel, stride, p.padding)?,
                    side(w, p.kernel, stride, p.padding)?,
                ];
                let op = Op::Pool {
                    max: matches!(layer, Layer::MaxPool(_)),
                    kernel: p.kernel,
                    stride,
                    padding: p.padding,
                };
                Ok(self.push_node(node(op, out)))
            }
            Layer::GlobalAvgPool(_) => {
                let (c, _, _) = image(&shape)?;
                Ok(self.push_node(node(Op::GlobalAvgPool, vec![c])))
            }
            Layer::Flatten(_) => {
                let n = shape.iter().product();
                Ok(self.push_node(node(Op::Flatten, vec![n])))
            }
            Layer::Reshape(r) => {
                let (have, want) = (
                    shape.iter().product::<usize>(),
                    r.shape.iter().product::<usize>(),
                );
                if r.shape.is_empty() || r.shape.len() > 3 || r.shape.contains(&0) || have != want {
                    return Err(at(format!(
                        "shape = {:?} for an input {shape:?}; expected 1 to 3 axes of the same {have} values",
                        r.shape
                    )));
                }
                Ok(self.push_node(node(Op::Reshape, r.shape.clone())))
            }
            Layer::Attention(a) => self.attention(name, a, x),
            Layer::Embedding(e) => {
                positive("vocab", e.vocab)?;
                positive("dim", e.dim)?;
                let [tokens] = shape[..] else {
                    return Err(at(format!(
                        "the input is {shape:?}; expected token ids [tokens] (input = [tokens])"
                    )));
                };
                if x != 0 || self.graph.vocab.is_some() {
                    return Err(at(
                        "it does not read the model's input; expected one embedding, first".into(),
                    ));
                }
                self.graph.vocab = Some(e.vocab);
                let op = Op::Embed {
                    vocab: e.vocab,
                    dim: e.dim,
                    positions: e.positions,
                };
                let mut n = node(op, vec![tokens, e.dim]);
                n.init = e.init.clone();
                Ok(self.push_node(n))
            }
            Layer::Upsample(u) => {
                positive("factor", u.factor)?;
                let (c, h, w) = image(&shape)?;
                let out = vec![c, h * u.factor, w * u.factor];
                Ok(self.push_node(node(Op::Upsample { factor: u.factor }, out)))
            }
            Layer::Block(b) => self.block(name, b, x),
        }
    }

    /// Multi-head self-attention on `[tokens, d]`: linear maps `<name>.q`, `.k`, `.v` (each
    /// a site), each token's `d` features split into `heads` heads, the scores `q k^T /
    /// sqrt(d / heads)` (future keys at -inf when `causal`), their softmax over the keys,
    /// its product with the values (the site `attn`), the heads joined again and the map
    /// `<name>.o`. The layers in between are nodes of their own (`<name>.scores`, ...).
    fn attention(&mut self, name: &str, a: &AttentionLayer, x: usize) -> Result<usize, String> {
        let at = |why: String| format!("attention {name}: {why}");
        let [t, d] = self.graph.shape_of(x)[..] else {
            return Err(at(format!(
                "its input is {:?}; expected tokens [tokens, features]",
                self.graph.shape_of(x)
            )));
        };
        if a.heads == 0 || !d.is_multiple_of(a.heads) {
            return Err(at(format!(
                "heads = {}; expected a divisor of its {d} features",
                a.heads
            )));
        }
        let (h, dh) = (a.heads, d / a.heads);
        let linear = |c: &mut Self, role: &str, from: usize| {
            let mut n = Node::new(
                format!("{name}.{role}"),
                Op::Linear {
                    n_in: d,
                    n_out: d,
                    bias: a.bias,
                },
                vec![from],
                vec![t, d],
            );
            n.init = a.init.clone();
            n.bias_init = a.bias_init.clone();
            c.push_node(n)
        };
        let heads = |c: &mut Self, role: &str, v: usize| {
            let r = c.push(
                format!("{name}.{role}.split"),
                Op::Reshape,
                vec![v],
                vec![t, h, dh],
            );
            c.push(
                format!("{name}.{role}.heads"),
                Op::Transpose(vec![1, 0, 2]),
                vec![r],
                vec![h, t, dh],
            )
        };
        let q = linear(self, "q", x);
        let k = linear(self, "k", x);
        let v = linear(self, "v", x);
        let (q, k, v) = (
            heads(self, "q", q),
            heads(self, "k", k),
            heads(self, "v", v),
        );
        let kt = self.push(
            format!("{name}.k.t"),
            Op::Transpose(vec![0, 2, 1]),
            vec![k],
            vec![h, dh, t],
        );
        let s = self.push(
            format!("{name}.scores"),
            Op::MatMul,
            vec![q, kt],
            vec![h, t, t],
        );
        let scale = Op::scaled((1.0 / (dh as f64).sqrt()) as f32);
        let mut s = self.push(format!("{name}.scaled"), scale, vec![s], vec![h, t, t]);
        if a.causal {
            let mask: Vec<f32> = (0..t * t)
                .map(|i| {
                    if i % t > i / t {
                        f32::NEG_INFINITY
                    } else {
                        0.0
                    }
                })
                .collect();
            let masked = Op::Binary {
                kind: BinaryKind::Add,
                constant: Some(Constant {
                    data: mask,
                    shape: vec![t, t],
                }),
                constant_first: false,
            };
            s = self.push(format!("{name}.masked"), masked, vec![s], vec![h, t, t]);
        }
        let p = self.push(
            format!("{name}.softmax"),
            Op::Softmax { axis: 2 },
            vec![s],
            vec![h, t, t],
        );
        let o = self.push(
            format!("{name}.mix"),
            Op::MatMul,
            vec![p, v],
            vec![h, t, dh],
        );
        let o = self.push(
            format!("{name}.join"),
            Op::Transpose(vec![1, 0, 2]),
            vec![o],
            vec![t, h, dh],
        );
        let o = self.push(format!("{name}.concat"), Op::Reshape, vec![o], vec![t, d]);
        Ok(linear(self, "o", o))
    }

    /// `repeat` copies of the block's layers, named `<name>.<i>.<layer>`; a residual one adds
    /// its branch, times `branch-scale`, to its skip path (the input, or its `shortcut`
    /// layers) at a node `<name>.<i>.add`.
    fn block(&mut self, name: &str, b: &Block, mut x: usize) -> Result<usize, String> {
        let at = |why: String| format!("block {name}: {why}");
        if b.repeat == 0 || b.repeat > MAX_SIZE {
            return Err(at(format!(
                "repeat = {}; expected a whole number from 1 to {MAX_SIZE}",
                b.repeat
            )));
        }
        if b.layers.is_empty() {
            return Err(at("layers is empty; expected at least one layer".into()));
        }
        if !b.residual && (b.branch_scale.is_some() || b.shortcut.is_some()) {
            return Err(at(
                "branch-scale and shortcut belong to a residual block; expected residual = true"
                    .into(),
            ));
        }
        let scale = b.branch_scale.unwrap_or(1.0);
        if !scale.is_finite() {
            return Err(at(format!(
                "branch-scale = {scale}; expected a finite number"
            )));
        }
        for i in 1..=b.repeat {
            let prefix = format!("{name}.{i}.");
            let branch = self.layers(&prefix, &b.layers, x)?;
            if !b.residual {
                x = branch;
                continue;
            }
            let skip = match &b.shortcut {
                Some(s) if !s.is_empty() => self.layers(&format!("{prefix}shortcut."), s, x)?,
                _ => x,
            };
            let (s, r) = (self.graph.shape_of(skip), self.graph.shape_of(branch));
            if s != r {
                return Err(at(format!(
                    "copy {i}: the branch gives {r:?} but the skip path {s:?}; expected the \
                     same shape (a shortcut can project it)"
                )));
            }
            let shape = s.to_vec();
            let add = format!("{prefix}add");
            if self.names.contains(&add) {
                return Err(format!("name {add:?} is used twice; names must be unique"));
            }
            x = self.push(add, Op::Add { scale }, vec![skip, branch], shape);
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_residual_cnn_compiles_with_its_shapes_and_names() {
        let g = compile(
            r#"
input = [3, 8, 8]
[[layers]]
op = "conv"
name = "stem"
out = 8
[[layers]]
op = "act"
[[layers]]
op = "block"
name = "res"
repeat = 2
residual = true
branch-scale = 0.5
layers = [{ op = "conv", out = 8 }, { op = "norm", kind = "batch" }, { op = "act", fn = "tanh" }]
[[layers]]
op = "block"
name = "down"
residual = true
layers = [{ op = "conv", out = 16, stride = 2 }]
shortcut = [{ op = "conv", out = 16, kernel = 1, stride = 2, bias = false }]
[[layers]]
op = "max-pool"
[[layers]]
op = "global-avg-pool"
[[layers]]
op = "linear"
out = 10
init = "xavier-normal"
"#,
        )
        .unwrap();
        let names: Vec<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "stem",
                "act.2",
                "res.1.conv.1",
                "res.1.norm.2",
                "res.1.act.3",
                "res.1.add",
                "res.2.conv.1",
                "res.2.norm.2",
                "res.2.act.3",
                "res.2.add",
                "down.1.conv.1",
                "down.1.shortcut.conv.1",
                "down.1.add",
                "max-pool.5",
                "global-avg-pool.6",
                "linear.7"
            ]
        );
        assert_eq!(g.nodes[10].shape, [16, 4, 4]);
        assert_eq!(g.nodes[13].shape, [16, 2, 2]);
        assert_eq!(g.output_features(), 10);
        assert_eq!(g.nodes[5].inputs, [2, 5]);
        assert_eq!(g.nodes[5].op, Op::Add { scale: 0.5 });
        assert_eq!(g.weighted().len(), 6);
        let fused = g.fused_activations();
        assert_eq!((fused[0], fused[2]), (Some(1), None));
        assert_eq!(g.nodes[15].init.as_deref(), Some("xavier-normal"));
        let batch = |n: &Node| {
            matches!(
                n.op,
                Op::Norm {
                    kind: Norm::Batch,
                    ..
                }
            )
        };
        assert!(g.nodes.iter().any(batch) && !g.linear_chain());
    }

    #[test]
    fn mistakes_are_named_on_one_line() {
        let cases = [
            (
                "input = [4]\n[[layers]]\nop = \"lineer\"\nout = 3\n",
                "line 3: unknown variant `lineer`",
            ),
            (
                "input = [4]\n[[layers]]\nop = \"linear\"\nout = 3\nwidth = 2\n",
                "line 2: unknown field `width`",
            ),
            (
                "input = [4]\n[[layers]]\nop = \"conv\"\nout = 3\n",
                "conv conv.1: its input is [4]; expected images",
            ),
            (
                "input = [2, 4, 4]\n[[layers]]\nop = \"conv\"\nout = 3\ngroups = 2\n",
                "groups = 2 must divide",
            ),
            (
                "input = [4]\n[[layers]]\nop = \"act\"\n",
                "no linear or conv layer",
            ),
            (
                "input = [4]\n[[layers]]\nop = \"act\"\nfn = \"tanhh\"\n",
                "act act.1: fn = \"tanhh\"",
            ),
            ("input = [0]\nlayers = []\n", "input = [0]"),
            (
                "input = [4]\n[[layers]]\nop = \"block\"\nresidual = true\nlayers = [{ op = \"linear\", out = 3 }]\n",
                "the branch gives [3] but the skip path [4]",
            ),
            (
                "input = [4]\n[[layers]]\nop = \"linear\"\nname = \"a\"\nout = 3\n[[layers]]\nop = \"linear\"\nname = \"a\"\nout = 3\n",
                "\"a\" is used twice",
            ),
            (
                "input = [4]\n[[layers]]\nop = \"norm\"\nkind = \"group\"\n",
                "expected batch, layer or rms",
            ),
        ];
        for (text, want) in cases {
            let e = compile(text).unwrap_err();
            assert!(e.contains(want), "{text}\n=> {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn a_plain_chain_is_recognized() {
        let g = compile(
            "input = [4]\n[[layers]]\nop = \"linear\"\nout = 3\n[[layers]]\nop = \"act\"\n\
             [[layers]]\nop = \"linear\"\nout = 2\n[[layers]]\nop = \"act\"\n",
        )
        .unwrap();
        assert!(g.linear_chain());
        assert_eq!(g.width(), 3);
    }
}
