//! sigprop-nets: Burn networks built from sigprop's initializers, and one probed forward
//! and backward pass turned into the per-layer statistics of THEORY.md.
//!
//! Two halves. Without the `burn` feature the crate is the Burn-free description of a
//! network: its configuration and settings, what each architecture supports, its parameters
//! filled on the host, and the records a pass returns. The spec and report crates build on
//! that half alone. The `burn` feature adds the pass itself (each `pass`/`run`/`reduce`
//! submodule and the modules marked below).
//!
//! The modules, from the leaves up (each uses only those above it in this list):
//!
//! - [`error`], [`activation`] (burn), [`backend`] (`--backend` to a Burn `Device`, the
//!   only place that knows backends), [`setting`] (an architecture's own flags and suite
//!   keys), [`options`] (loss, normalization, branch scale, initializer and pruning specs),
//!   `handles` (typed parameter handles), [`params`] (host-side weights keyed by (seed,
//!   tensor path));
//! - `forward` (burn: device parameters, linear maps, convolutions, normalization, the
//!   recorder of sites) and [`inputs`] (the keyed input and the losses); [`data`] (real
//!   inputs from a file) and [`model`] (a model file, ONNX or TOML, compiled to a graph of
//!   typed operations);
//! - [`arch`]: [`NetConfig`] and [`ResolvedNet`], and one module per architecture (mlp,
//!   resmlp, cnn, rescnn, rnn, transformer, and graph: a [`model`] run node by node) behind
//!   one trait: its typed settings, parameters as typed handles, input, forward pass with
//!   its sites, what LSUV rescales;
//! - [`build`]: a config resolved and checked, its parameters declared and filled;
//! - [`stats`], [`jacobian`] and [`probe`]: the probed pass and its per-layer statistics;
//! - [`lsuv`] (burn), [`tune`] (`metainit`, `gradinit`), [`prune`]: the data-driven steps
//!   on the initial weights; [`train`]: the training probe;
//! - `measure` (burn): the initial weights of a seed with every step applied, staged and
//!   measured.
#![warn(missing_docs)]
// Without the pass, the parameter layouts and the helpers only the pass reads have no
// reader; the lint stays on in every build with `burn`.
#![cfg_attr(not(feature = "burn"), allow(dead_code))]

#[cfg(feature = "burn")]
pub mod activation;
pub mod arch;
pub mod backend;
pub mod build;
pub mod data;
pub mod error;
#[cfg(feature = "burn")]
mod forward;
mod handles;
pub mod inputs;
pub mod jacobian;
#[cfg(feature = "burn")]
mod kernels;
#[cfg(feature = "burn")]
pub mod lsuv;
#[cfg(feature = "burn")]
mod measure;
pub mod model;
pub mod options;
pub mod params;
pub mod precision;
pub mod probe;
pub mod prune;
pub mod setting;
pub mod stats;
pub mod train;
pub mod tune;

pub use arch::{
    ARCH_NAMES, Arch, ArchConfig, Capabilities, NetConfig, ResolvedNet, TheoryKind, all_settings,
    archs_with,
};
pub use backend::{BACKEND_NAMES, BackendKind};
#[cfg(feature = "burn")]
pub use backend::{check_dtype, device, device_name};
pub use build::{WORKSPACE_BYTES, autoinit_bias_spec, build_params};
pub use error::NetError;
pub use jacobian::{JacobianOptions, Spectrum};
#[cfg(feature = "burn")]
pub use measure::{
    Initial, Measured, Staged, initial_params, initial_params_pruned, measure, measure_staged,
    measure_staged_seeds, stage,
};
pub use options::{
    BranchScale, InitSpec, Loss, NORM_EPS, NORM_NAMES, Norm, NormPosition, PRUNE_NAMES,
    PruneMethod, PruneSpec, Shortcut,
};
pub use params::{ParamTensor, Params};
pub use precision::{Dtype, LossScale, PrecisionOptions, PrecisionStats};
pub use probe::{
    LayerHistogram, PhaseTimes, ProbeOptions, ProbeResult, batchable, histogram_edges,
};
#[cfg(feature = "burn")]
pub use probe::{forward_plain, probe};
pub use prune::PrunedTensor;
pub use setting::{Setting, SettingKind};
pub use stats::{ChannelMoments, LayerStats, TokenStats};
#[cfg(feature = "burn")]
pub use train::train;
pub use train::{
    Checkpoint, CoordRecord, Dataset, MAX_CLASSES, OPTIMIZER_NAMES, OptimizerKind, PARAM_NAMES,
    ParamKind, Parametrization, Resume, Role, StepRecord, Task, TrainOptions, TrainResult,
    UpdateRecord, model_width, role, roles,
};
pub use tune::{TunedTensor, Tuning};
