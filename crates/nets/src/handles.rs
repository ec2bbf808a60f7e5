//! Typed handles of a network's parameters: the index of a tensor in `Params::tensors`, and
//! the pairs of handles a linear map or a convolution reads. The architectures hand these
//! out when they declare their parameters; the forward pass, the probe, LSUV, pruning and
//! training reach tensors through them. Not the tensors themselves (`params.rs`) nor how
//! they are declared (`arch/`).

/// The index of a parameter in `Params::tensors` (creation order): the handle through
/// which the forward pass, the probe and LSUV reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParamId(pub usize);

/// A linear map `h W + b` (W `[in, out]`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinearIds {
    pub weight: ParamId,
    pub bias: Option<ParamId>,
}

/// A same-padded 2-D convolution (weights `[out, in/groups, k, k]`, one bias per channel).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvIds {
    pub weight: ParamId,
    pub bias: Option<ParamId>,
}
