//! The user's own network (`--model FILE`): a graph of typed operations, compiled from a model
//! file, that the `graph` architecture declares and runs like any built-in one.
//!
//! A [`ModelGraph`] is the model's input shape and its nodes in an order where every node
//! comes after the values it reads (value 0 is the input, value `k` node `k - 1`'s output).
//! Each node carries its own output shape, checked when the file is compiled, so the
//! architecture never meets a size it has not seen. The front ends compile to it: the TOML
//! description (`model/text.rs`, documented in docs/models.md). [`ModelFile`] is the file as
//! a network's record holds it: its path, its digest (a run's identity changes with the
//! model's content) and the compiled graph.
//!
//! Burn-free: the forward pass is the architecture's (`arch/graph.rs`).

#[cfg(feature = "onnx")]
mod onnx;
mod text;

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sigprop_init::Activation;

use crate::error::NetError;
use crate::options::Norm;

/// One operation of a model.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `x W + b` on the last axis: `[.., n_in] -> [.., n_out]` (`W` `[n_in, n_out]`).
    Linear {
        /// Input features.
        n_in: usize,
        /// Output features.
        n_out: usize,
        /// With a bias.
        bias: bool,
    },
    /// A 2-D convolution `[c_in, h, w] -> [c_out, h', w']` with a square kernel, zero
    /// padding on every side, and `groups` channel groups (weight `[c_out, c_in / groups, k,
    /// k]`).
    Conv {
        /// Input channels.
        c_in: usize,
        /// Output channels.
        c_out: usize,
        /// Kernel side.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Zero padding on each side.
        padding: usize,
        /// Channel groups.
        groups: usize,
        /// With a bias per output channel.
        bias: bool,
    },
    /// A pointwise activation; `None`: the run's `--activation`.
    Act(Option<Activation>),
    /// A normalization with a gain (1 at initialization) and a bias (0) of `features`
    /// entries when `affine`: batch (per channel, the sample's first axis, over the batch and
    /// the other axes), layer or RMS (per position, over the last axis).
    Norm {
        /// Which normalization.
        kind: Norm,
        /// With a learnable gain and bias.
        affine: bool,
        /// Entries of the gain: the channels (batch) or the last axis (layer, RMS).
        features: usize,
        /// Added to the variance (or mean square) under the square root.
        eps: f64,
    },
    /// A residual add `skip + scale * branch` of two values of the same shape (inputs
    /// `[skip, branch]`).
    Add {
        /// The branch's multiplier.
        scale: f64,
    },
    /// Max or average pooling `[c, h, w] -> [c, h', w']` (the average counts the padding,
    /// as PyTorch's default does).
    Pool {
        /// Max rather than average.
        max: bool,
        /// Window side.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Zero padding on each side.
        padding: usize,
    },
    /// The mean over the pixels: `[c, h, w] -> [c]`.
    GlobalAvgPool,
    /// One axis: `[..] -> [product]`.
    Flatten,
    /// The matrix product of two values over their last two axes, batched over the others
    /// (attention's `q k^T` and `a v`).
    MatMul,
    /// `x op c` with a constant `c` broadcast against `x` (aligned on the last axes), or
    /// `x op y` of two values of the same shape (inputs `[x]` or `[x, y]`).
    Binary {
        /// Which operation.
        kind: BinaryKind,
        /// The constant, where there is one.
        constant: Option<Constant>,
        /// The constant is the left operand (`c op x`).
        constant_first: bool,
    },
    /// An entrywise function that is not an activation site.
    Unary(UnaryKind),
    /// One sample to the shape the node holds (same number of entries).
    Reshape,
    /// Nearest-neighbour upsampling of images by a whole factor: `[c, h, w] -> [c, f h, f w]`
    /// (each pixel repeated `f x f` times).
    Upsample {
        /// The factor.
        factor: usize,
    },
    /// One sample's axes in the order `perm` (a permutation of `0..rank`).
    Transpose(Vec<usize>),
    /// Softmax over one axis of a sample.
    Softmax {
        /// The axis.
        axis: usize,
    },
    /// The mean over some axes of a sample.
    ReduceMean {
        /// The axes.
        axes: Vec<usize>,
        /// Whether the reduced axes stay, with size 1.
        keep: bool,
    },
    /// The values read, joined along one axis of a sample.
    Concat {
        /// The axis.
        axis: usize,
    },
    /// A token embedding: the model's input (token ids `[tokens]`, each below `vocab`)
    /// looked up in a table `[vocab, dim]` (`table`), with, when `positions`, a learned
    /// position table `[tokens, dim]` added (`positions`): `[tokens] -> [tokens, dim]`.
    Embed {
        /// Rows of the table: the vocabulary.
        vocab: usize,
        /// Features of a token.
        dim: usize,
        /// With a learned position table.
        positions: bool,
    },
    /// Entries where a constant mask is 1 set to `value` (an attention mask: future keys at
    /// `-inf`), the others kept; the mask broadcasts against the value as a constant does.
    MaskFill {
        /// The mask, 0 or 1 per entry.
        mask: Constant,
        /// The value of the masked entries.
        value: f32,
    },
    /// `start, start + step, ..` below `end` along one axis of a sample.
    Slice {
        /// The axis.
        axis: usize,
        /// First index.
        start: usize,
        /// One past the last.
        end: usize,
        /// Stride (> 0).
        step: usize,
    },
}

/// The operation of [`Op::Binary`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryKind {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a b`.
    Mul,
    /// `a / b`.
    Div,
    /// `a^b`.
    Pow,
}

/// The function of [`Op::Unary`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryKind {
    /// `sqrt(x)`.
    Sqrt,
    /// `erf(x)`.
    Erf,
    /// `e^x`.
    Exp,
    /// `-x`.
    Neg,
    /// `1 / x`.
    Reciprocal,
}

/// A constant tensor of a model: its values (row-major) and shape, broadcast against a
/// value `[batch, ..]` aligned on the last axes.
#[derive(Debug, Clone, PartialEq)]
pub struct Constant {
    /// The values.
    pub data: Vec<f32>,
    /// The shape (empty for a scalar).
    pub shape: Vec<usize>,
}

impl Op {
    /// Whether the node has a weight and is a site of its own (linear maps, convolutions).
    pub fn weighted(&self) -> bool {
        matches!(self, Op::Linear { .. } | Op::Conv { .. })
    }

    /// `x s`: the product by a scalar constant (attention's score scale).
    pub fn scaled(s: f32) -> Op {
        Op::Binary {
            kind: BinaryKind::Mul,
            constant: Some(Constant {
                data: vec![s],
                shape: Vec::new(),
            }),
            constant_first: false,
        }
    }

    /// Whether the node has weights an initializer draws: a weighted node's, or an
    /// embedding's tables.
    pub fn drawn(&self) -> bool {
        self.weighted() || matches!(self, Op::Embed { .. })
    }

    /// The operation's name in a model file.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Linear { .. } => "linear",
            Op::Conv { .. } => "conv",
            Op::Act(_) => "act",
            Op::Norm { .. } => "norm",
            Op::Add { .. } => "add",
            Op::Pool { max: true, .. } => "max-pool",
            Op::Pool { max: false, .. } => "avg-pool",
            Op::GlobalAvgPool => "global-avg-pool",
            Op::Flatten => "flatten",
            Op::MatMul => "matmul",
            Op::Binary { .. } => "binary",
            Op::Unary(_) => "unary",
            Op::Reshape => "reshape",
            Op::Upsample { .. } => "upsample",
            Op::Transpose(_) => "transpose",
            Op::Softmax { .. } => "softmax",
            Op::ReduceMean { .. } => "reduce-mean",
            Op::Concat { .. } => "concat",
            Op::Slice { .. } => "slice",
            Op::Embed { .. } => "embedding",
            Op::MaskFill { .. } => "mask-fill",
        }
    }
}

/// One node of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Its unique name: the site's `node` column and the key of its weights' draws
    /// (`<name>.weight`, `<name>.bias`).
    pub name: String,
    /// What it computes.
    pub op: Op,
    /// The values it reads: 0 is the model's input, `k` is node `k - 1`'s output.
    pub inputs: Vec<usize>,
    /// One sample's output shape.
    pub shape: Vec<usize>,
    /// The weight initializer the file gives this node (else the run's `--init`).
    pub init: Option<String>,
    /// The bias initializer the file gives this node (else the run's `--bias-init`).
    pub bias_init: Option<String>,
    /// The values the file gives this node's parameters, by the parameter's suffix
    /// (`weight`, `bias`), in sigprop's layout (a linear weight `[in, out]`): what
    /// `--init model` keeps.
    pub file: Vec<(String, Vec<f32>)>,
    /// A linear node initialized as the transpose of this earlier linear node's weight (a
    /// tied, symmetric autoencoder at initialization); the two train apart.
    pub tie: Option<String>,
}

impl Node {
    /// Node `name` computing `op` on `inputs` with one sample's output `shape`, initialized
    /// by the run's schemes, with no file values and no tie.
    pub fn new(name: String, op: Op, inputs: Vec<usize>, shape: Vec<usize>) -> Node {
        Node {
            name,
            op,
            inputs,
            shape,
            init: None,
            bias_init: None,
            file: Vec::new(),
            tie: None,
        }
    }
}

/// A compiled model: one sample's input shape and the nodes in an order where each comes
/// after what it reads. The output is the last node's.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelGraph {
    /// One sample's input shape.
    pub input: Vec<usize>,
    /// The vocabulary where the input is token ids (`[tokens]`, read by an embedding)
    /// rather than features.
    pub vocab: Option<usize>,
    /// The nodes.
    pub nodes: Vec<Node>,
}

impl ModelGraph {
    /// The shape of value `v` (0: the input).
    pub fn shape_of(&self, v: usize) -> &[usize] {
        match v {
            0 => &self.input,
            k => &self.nodes[k - 1].shape,
        }
    }

    /// Values per sample of the input.
    pub fn input_features(&self) -> usize {
        self.input.iter().product()
    }

    /// Values per sample of the output.
    pub fn output_features(&self) -> usize {
        self.shape_of(self.nodes.len()).iter().product()
    }

    /// The weighted nodes (the sites `layer` 1, 2, ...), as indices into `nodes`.
    pub fn weighted(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].op.weighted())
            .collect()
    }

    /// The residual adds (the sites `branch` and `out` 1, 2, ...), as indices into `nodes`.
    pub fn adds(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| matches!(self.nodes[i].op, Op::Add { .. }))
            .collect()
    }

    /// For each node, the activation node that alone reads its output, where there is one:
    /// its output is the site's `h`. One pass over the graph.
    pub fn fused_activations(&self) -> Vec<Option<usize>> {
        // Per value: how many node inputs read it, and the last node that does.
        let mut read = vec![(0usize, 0usize); self.nodes.len() + 1];
        for (j, n) in self.nodes.iter().enumerate() {
            for &v in &n.inputs {
                read[v] = (read[v].0 + 1, j);
            }
        }
        (0..self.nodes.len())
            .map(|i| match read[i + 1] {
                (1, j) if matches!(self.nodes[j].op, Op::Act(_)) => Some(j),
                _ => None,
            })
            .collect()
    }

    /// Whether value `v` is attention probabilities: a softmax over the keys of `[heads,
    /// queries, keys]` scores, queries and keys alike.
    pub fn attention_probs(&self, v: usize) -> bool {
        let Some(n) = v.checked_sub(1).and_then(|i| self.nodes.get(i)) else {
            return false;
        };
        matches!((&n.op, &n.shape[..]), (Op::Softmax { axis: 2 }, [_, t, k]) if t == k)
    }

    /// Whether the file gives weights (an ONNX model's; a TOML model has none).
    pub fn has_weights(&self) -> bool {
        self.nodes
            .iter()
            .any(|n| n.op.drawn() && !n.file.is_empty())
    }

    /// The nodes whose weights an initializer draws (linear, conv, embedding), as indices
    /// into `nodes`.
    pub fn drawn(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].op.drawn())
            .collect()
    }

    /// Whether the model is a chain of linear maps, each followed by an activation of its
    /// own: what `--arch mlp` builds, whose input-output Jacobian is built exactly.
    pub fn linear_chain(&self) -> bool {
        let mut expect_linear = true;
        for (i, n) in self.nodes.iter().enumerate() {
            let reads_previous = n.inputs == [i];
            match (&n.op, expect_linear) {
                (Op::Linear { .. }, true) if reads_previous => expect_linear = false,
                (Op::Act(_), false) if reads_previous => expect_linear = true,
                _ => return false,
            }
        }
        // Ending in an activation: every map has its own, as in `--arch mlp`.
        expect_linear && !self.nodes.is_empty()
    }

    /// Whether every activation is the run's (`act` without `fn`).
    pub fn run_activations_only(&self) -> bool {
        self.nodes.iter().all(|n| !matches!(n.op, Op::Act(Some(_))))
    }

    /// Whether the model is a chain of same-padded stride-1 convolutions of one kernel,
    /// channel count and grouping on square images, each followed by an activation of its
    /// own: what `--arch cnn` builds. Its kernel side, image side and groups.
    pub fn conv_chain(&self) -> Option<(usize, usize, usize)> {
        let [c0, h, w] = self.input[..] else {
            return None;
        };
        let first = self.nodes.first()?;
        let Op::Conv { kernel, groups, .. } = first.op else {
            return None;
        };
        let mut expect_conv = true;
        for (i, n) in self.nodes.iter().enumerate() {
            let reads_previous = n.inputs == [i];
            match (&n.op, expect_conv) {
                (
                    Op::Conv {
                        c_in,
                        c_out,
                        kernel: k,
                        stride: 1,
                        padding,
                        groups: g,
                        bias: true,
                    },
                    true,
                ) if reads_previous
                    && *c_in == c0
                    && *c_out == c0
                    && *k == kernel
                    && *g == groups
                    && k % 2 == 1
                    && *padding == k / 2 =>
                {
                    expect_conv = false
                }
                (Op::Act(_), false) if reads_previous => expect_conv = true,
                _ => return None,
            }
        }
        (h == w && expect_conv).then_some((kernel, h, groups))
    }

    /// The largest features per sample of a weighted node's output (the model's width).
    pub fn width(&self) -> usize {
        self.weighted()
            .iter()
            .map(|&i| match self.nodes[i].op {
                Op::Linear { n_out, .. } => n_out,
                Op::Conv { c_out, .. } => c_out,
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }
}

/// The initializer that keeps a model file's own weights (`--init model`, or `model` as an
/// `--init-node` spec).
pub const MODEL_INIT: &str = "model";

/// What `--model` takes.
pub const MODEL_ALLOWED: &str = "a readable .onnx or .toml model file (docs/models.md)";

/// A model file as a network's record holds it: its path as given, the digest of its bytes,
/// and the graph compiled from it. Two are equal when their path and digest are. Written as
/// `{ path, digest }`; read from a path (the file is compiled) or from that record (the file
/// is compiled again and must not have changed).
#[derive(Debug, Clone, Default)]
pub struct ModelFile {
    /// The file, as given ("" for none).
    pub path: String,
    /// FNV-1a 64 of the file's bytes (hex).
    pub digest: String,
    /// The compiled graph (empty for none).
    pub graph: Arc<ModelGraph>,
}

impl PartialEq for ModelFile {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.digest == other.digest
    }
}

fn bad(path: &str, why: impl std::fmt::Display) -> NetError {
    NetError::Model {
        path: path.to_string(),
        why: why.to_string(),
    }
}

/// An ONNX file compiled by the `onnx` front end.
#[cfg(feature = "onnx")]
fn compile_onnx(bytes: &[u8]) -> Result<ModelGraph, String> {
    onnx::compile(bytes)
}

/// Without the `onnx` feature (the Burn-free build) an ONNX file is refused.
#[cfg(not(feature = "onnx"))]
fn compile_onnx(_bytes: &[u8]) -> Result<ModelGraph, String> {
    Err("this build reads no ONNX (sigprop-nets was built without its `onnx` feature)".into())
}

impl ModelFile {
    /// The model at `path`, read and compiled ("" is no model).
    pub fn open(path: &str) -> Result<ModelFile, NetError> {
        if path.is_empty() {
            return Ok(ModelFile::default());
        }
        let lower = path.to_ascii_lowercase();
        let onnx = lower.ends_with(".onnx");
        if !onnx && !lower.ends_with(".toml") {
            return Err(bad(path, format!("expected {MODEL_ALLOWED}")));
        }
        let bytes = std::fs::read(path).map_err(|e| bad(path, e))?;
        let digest = format!("{:016x}", sigprop_init::rng::fnv1a64(&bytes));
        let graph = if onnx {
            compile_onnx(&bytes).map_err(|why| bad(path, why))?
        } else {
            let text =
                std::str::from_utf8(&bytes).map_err(|_| bad(path, "it is not UTF-8 text"))?;
            text::compile(text).map_err(|why| bad(path, why))?
        };
        Ok(ModelFile {
            path: path.to_string(),
            digest,
            graph: Arc::new(graph),
        })
    }

    /// Whether there is a model.
    pub fn is_none(&self) -> bool {
        self.path.is_empty()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelRecord {
    path: String,
    digest: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ModelText {
    Path(String),
    Record(ModelRecord),
}

impl Serialize for ModelFile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ModelRecord {
            path: self.path.clone(),
            digest: self.digest.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ModelFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match ModelText::deserialize(d)? {
            ModelText::Path(p) => ModelFile::open(&p).map_err(|e| D::Error::custom(e.to_string())),
            ModelText::Record(r) => {
                let file = ModelFile::open(&r.path).map_err(|e| D::Error::custom(e.to_string()))?;
                if file.digest != r.digest {
                    return Err(D::Error::custom(
                        bad(&r.path, "it changed since the run was configured").to_string(),
                    ));
                }
                Ok(file)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_the_same_model_and_refuses_a_changed_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        let path = path.to_str().unwrap();
        std::fs::write(
            path,
            "input = [4]\n[[layers]]\nop = \"linear\"\nout = 3\n[[layers]]\nop = \"act\"\n",
        )
        .unwrap();
        let m = ModelFile::open(path).unwrap();
        assert_eq!(m.graph.nodes.len(), 2);
        let text = serde_json::to_string(&m).unwrap();
        let back: ModelFile = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.graph, m.graph);
        std::fs::write(path, "input = [4]\n[[layers]]\nop = \"linear\"\nout = 5\n").unwrap();
        let e = serde_json::from_str::<ModelFile>(&text).unwrap_err();
        assert!(e.to_string().contains("changed since"), "{e}");
        let e = ModelFile::open("nowhere.toml").unwrap_err();
        assert!(e.to_string().starts_with("--model nowhere.toml: "), "{e}");
        let e = ModelFile::open("m.pt").unwrap_err();
        assert!(e.to_string().contains(".onnx or .toml model"), "{e}");
    }
}
