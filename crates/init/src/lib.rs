//! sigprop-init: weight initializers as pure `f64`/`f32` math, no Burn.
//!
//! - [`Activation`]: the nonlinearities shared by the workspace (scalar phi, phi', phi'').
//! - [`Spec`]: the `NAME[:key=value,...]` syntax every scheme and activation is written in.
//! - [`fans()`], [`Layout`]: fan-in and fan-out of linear, (grouped, transposed) conv and bias
//!   tensors.
//! - [`calculate_gain`], [`gain_for`]: PyTorch's gain table.
//! - [`Key`], [`Stream`]: reproducible keyed random streams (seed + parameter path).
//! - [`StandardNormal`] and the `fill_*` samplers: exactly how bits become `f32` samples.
//! - [`Scheme`]: every initializer, its formula and paper; [`Scheme::fill`],
//!   [`fill_many`], and the expected moments ([`Scheme::entry_variance`], [`Scheme::moments`]).
//! - [`FillContext`]: what `critical`, `fixup` and `autoinit` need from the network crate;
//!   [`LsuvParams`], [`MetaInitParams`], [`GradInitParams`]: what it reads back to run the
//!   data-driven schemes.
//! - [`orthogonal`], [`dirac`], [`delta_orthogonal`]: the structured matrices and kernels.
//!
//! Not here: the mean-field quadrature (the theory crate) and anything that runs a network
//! (LSUV's rescaling loop, the critical `sigma_w` search: the network crate).
#![warn(missing_docs)]

pub mod activation;
pub mod context;
pub mod error;
pub mod fans;
pub mod fill;
pub mod gain;
pub mod law;
pub mod rng;
pub mod sample;
pub mod scheme;
pub mod scheme_text;
pub mod spec;
pub mod structured;

pub use activation::{
    ACTIVATION_NAMES, Activation, DksShape, SELU_ALPHA, SELU_LAMBDA, SMOOTH_BASE_NAMES, SmoothBase,
};
pub use context::{AutoInitLayer, FillContext, FixupContext, FixupRole, ResidualContext};
pub use error::InitError;
pub use fans::{FanMode, Fans, Layout, fans, logical_matrix};
pub use fill::{AsFillJob, FillJob, fill_many};
pub use gain::{GAIN_NAMES, calculate_gain, gain_for};
pub use law::{Law, Moments};
pub use rng::{CHUNK, Key, SIDE_STREAM, Stream, fnv1a64, mix64, splitmix64};
pub use sample::{
    StandardNormal, fill_chunks, fill_normal, fill_truncated_normal, fill_uniform, truncated_std,
};
pub use scheme::{
    CriticalDistribution, GradInitOpt, GradInitParams, LsuvParams, LsuvTarget, MetaInitParams,
    SCHEME_DESCRIPTIONS, SCHEME_NAMES, Scheme, TUNE_BASE_NAMES, VsDistribution, scheme_description,
};
pub use spec::{Spec, fmt_f64};
pub use structured::{
    QR_PAR_DEGREE, delta_orthogonal, dirac, identity, orthogonal, sparse_zero_count, sparse_zeros,
};
