//! The initial parameters of a network, on the host, keyed by tensor path: plain data.
//!
//! Every tensor is filled by `sigprop-init` from the key `(seed, path)` (see `build.rs`), so
//! a seed gives bit-identical initial weights on every backend: the device only ever
//! receives these bytes. Not how they are declared or filled (`build.rs`), nor the forward
//! pass (`forward.rs`).

/// Classes of the cross-entropy head.
pub const HEAD_CLASSES: usize = 10;

/// Whether the tensor at `path` is a lookup table (a transformer's token embedding
/// `embed.tokens` or position table `embed.positions`; a model's embedding node's
/// `<node>.table` and `<node>.positions`, names no other parameter ends in): rows are read,
/// not multiplied, so its fan-in does not grow with width, a batch touches only its own
/// rows, and neither pruning nor the tuned initializers take it.
pub fn is_table(path: &str) -> bool {
    path == "embed.tokens" || path.ends_with(".table") || path.ends_with(".positions")
}

/// One parameter tensor: its path, shape and row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamTensor {
    /// Path such as `layers.3.weight`: also its RNG key.
    pub path: String,
    /// Shape (Burn's layout: linear `[in, out]`, conv `[out, in/groups, k, k]`).
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
    /// After `--prune`: which entries are kept (pruned ones are 0 and stay 0 in training).
    pub mask: Option<Vec<bool>>,
}

/// All parameters of a network, in creation order.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// The tensors.
    pub tensors: Vec<ParamTensor>,
}

impl Params {
    /// The tensor at `path`.
    pub fn get(&self, path: &str) -> Option<&ParamTensor> {
        self.tensors.iter().find(|t| t.path == path)
    }

    /// Mutable access to the tensor at `path`.
    pub fn get_mut(&mut self, path: &str) -> Option<&mut ParamTensor> {
        self.tensors.iter_mut().find(|t| t.path == path)
    }
}
