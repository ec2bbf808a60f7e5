//! The training probe: a network trained for a few hundred steps on a built-in task, with
//! Burn's optimizers and autodiff, logging the loss, the gradient norm, per-weight update
//! ratios and, at chosen steps, the usual per-layer statistics of the probed pass.
//!
//! Every number is drawn from keyed streams, as the probe's are: the task's fixed parts
//! (teacher weights, class means) from the task seed, each step's batch from `(seed,
//! train.<what>.<step>)`, the readout from `(seed, train.readout)`. Same seed, same curve.
//!
//! The network's output `[batch, features]` feeds a linear readout `[features, outputs]`
//! (LeCun normal, no bias) trained with the rest. Losses: mean squared error over batch and
//! outputs for regression, mean cross-entropy over the batch for classification.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::arch::ResolvedNet;
use crate::error::NetError;
use crate::options::Loss;
use crate::params::Params;
use crate::probe::ProbeOptions;
use crate::stats::LayerStats;

#[cfg(feature = "burn")]
mod run;
#[cfg(feature = "burn")]
pub use run::train;

/// `--optimizer`: Burn's SGD, SGD with heavy-ball momentum 0.9 (no dampening, PyTorch's
/// `SGD(momentum=0.9)`), or Adam (beta 0.9, 0.999, epsilon 1e-8, PyTorch's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// Plain gradient descent on each batch.
    Sgd,
    /// Heavy-ball momentum 0.9.
    Momentum,
    /// Adam.
    Adam,
}

/// Names `--optimizer` takes.
pub const OPTIMIZER_NAMES: &[&str] = &["sgd", "momentum", "adam"];

impl FromStr for OptimizerKind {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, NetError> {
        match s.trim() {
            "sgd" => Ok(OptimizerKind::Sgd),
            "momentum" => Ok(OptimizerKind::Momentum),
            "adam" => Ok(OptimizerKind::Adam),
            other => Err(NetError::BadConfig {
                key: "optimizer",
                value: other.to_string(),
                allowed: OPTIMIZER_NAMES.join(", "),
            }),
        }
    }
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Momentum => "momentum",
            OptimizerKind::Adam => "adam",
        })
    }
}

/// `--param`: how weights are scaled with width (and depth) during training (the initial
/// weights are the initializer's in every case, but for the readout under muP and its depth
/// extensions, which also set the residual branches' multiplier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParamKind {
    /// The weights themselves are trained at the learning rate.
    Standard,
    /// The neural-tangent parametrization: every weight is `W = w / sqrt(fan_in)` and `w`
    /// is what the optimizer trains (biases and scalars as in standard).
    Ntk,
    /// The maximal-update parametrization of Yang et al. 2022 (Tensor Programs V), relative
    /// to a base width (equal to standard there): per-tensor learning rates and a readout
    /// initialized with variance `1 / (features m)`, `m = width / base width`.
    Mup,
    /// Depth-muP (Yang et al. 2023, Tensor Programs VI; Bordelon et al. 2023): muP across
    /// width, residual branches scaled by `L^-1/2`, and the learning rate of every tensor
    /// inside the blocks scaled by `(L / base depth)^-1/2` under Adam (unscaled under SGD).
    DepthMup,
    /// CompleteP (Dey et al. 2025): muP across width, residual branches scaled by `L^-1`,
    /// Adam's learning rate unscaled with depth (`L` times under SGD), and Adam's epsilon of
    /// every tensor inside the blocks scaled by `(L / base depth)^-1` (and by `1/m` for the
    /// hidden ones).
    Completep,
    /// u-muP (Blake et al. 2024): unit-variance weights in a unit-scaled network
    /// (`branch-scale umup`), Adam's learning rate `fan_in^-1/2` for weights and
    /// `L^-1/2` more inside the blocks, a readout multiplied by `1 / fan_in`.
    Umup,
}

/// Names `--param` takes.
pub const PARAM_NAMES: &[&str] = &["standard", "ntk", "mup", "depth-mup", "completep", "umup"];

impl ParamKind {
    /// The depth exponent `a` of the branches' multiplier `L^-a`: 1/2 for depth-muP, 1 for
    /// CompleteP; none for the parametrizations across width alone.
    pub fn depth_exponent(self) -> Option<f64> {
        match self {
            ParamKind::DepthMup => Some(0.5),
            ParamKind::Completep => Some(1.0),
            _ => None,
        }
    }

    /// The residual branches' multiplier this parametrization sets (none: the network's own).
    pub fn branch_scale(self) -> Option<crate::options::BranchScale> {
        match self {
            ParamKind::DepthMup => Some(crate::options::BranchScale::InvSqrtDepth),
            ParamKind::Completep => Some(crate::options::BranchScale::InvDepth),
            ParamKind::Umup => Some(crate::options::BranchScale::Umup),
            _ => None,
        }
    }

    /// Whether the initial weights must be unit normal (u-muP's).
    pub fn unit_weights(self) -> bool {
        self == ParamKind::Umup
    }

    /// Whether muP's width rules apply (muP and its depth extensions).
    pub fn scales_width(self) -> bool {
        matches!(
            self,
            ParamKind::Mup | ParamKind::DepthMup | ParamKind::Completep
        )
    }
}

impl FromStr for ParamKind {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, NetError> {
        match s.trim() {
            "standard" | "sp" => Ok(ParamKind::Standard),
            "ntk" => Ok(ParamKind::Ntk),
            "mup" => Ok(ParamKind::Mup),
            "depth-mup" | "depth-μp" => Ok(ParamKind::DepthMup),
            "completep" => Ok(ParamKind::Completep),
            "umup" | "u-mup" | "u-μp" => Ok(ParamKind::Umup),
            other => Err(NetError::BadConfig {
                key: "param",
                value: other.to_string(),
                allowed: PARAM_NAMES.join(", "),
            }),
        }
    }
}

impl fmt::Display for ParamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParamKind::Standard => "standard",
            ParamKind::Ntk => "ntk",
            ParamKind::Mup => "mup",
            ParamKind::DepthMup => "depth-mup",
            ParamKind::Completep => "completep",
            ParamKind::Umup => "umup",
        })
    }
}

/// A parametrization with the base width muP is relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parametrization {
    /// Which.
    pub kind: ParamKind,
    /// The width at which muP equals standard (unused by the others).
    pub base_width: usize,
    /// The depth at which the depth parametrizations' learning-rate and epsilon rules are 1
    /// (unused by the others).
    pub base_depth: usize,
}

impl Parametrization {
    /// The standard parametrization.
    pub fn standard() -> Self {
        Parametrization {
            kind: ParamKind::Standard,
            base_width: 1,
            base_depth: 1,
        }
    }
}

/// Whether the tensor at `path` sits inside a residual block (`blocks.K....`): the tensors
/// whose learning rate and epsilon the depth parametrizations scale.
pub fn in_block(path: &str) -> bool {
    path.starts_with("blocks.")
}

/// A trained tensor's role under muP (docs/training.md has the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A weight whose fan-in does not grow with width (the input layer of an mlp with
    /// explicit widths) or a bias: one dimension grows with width.
    Vector,
    /// A learnable scalar (ReZero's alpha, Fixup's biases and multiplier): no dimension
    /// grows; its learning rate is never scaled.
    Scalar,
    /// A weight whose fan-in is a multiple of the width (both dimensions grow).
    Hidden,
    /// The readout.
    Readout,
}

/// The role of a tensor of `shape` (Burn's layouts: linear `[in, out]`, conv
/// `[out, in/groups, k, k]`) in a network of `width`: a linear weight whose fan-in is a
/// multiple of the width and every convolution weight are hidden, a `[1]` tensor is a
/// scalar, any other tensor a vector. (An mlp with explicit widths has its first layer set
/// to a vector by [`roles`], whatever its size.)
pub fn role(shape: &[usize], width: usize) -> Role {
    match shape {
        [fan_in, _] if width > 0 && fan_in.is_multiple_of(width) => Role::Hidden,
        [_, _, _, _] => Role::Hidden,
        [1] => Role::Scalar,
        _ => Role::Vector,
    }
}

/// The width muP scales with: for an mlp with explicit widths its largest hidden width,
/// else the configuration's width.
pub fn model_width(net: &ResolvedNet) -> usize {
    net.config.arch.model_width(net)
}

/// The role of every declared tensor of `net` (in `params`' order). An mlp with explicit
/// widths takes its input features from the data: its first layer is a vector whatever
/// its size.
pub fn roles(net: &ResolvedNet, params: &Params) -> Vec<Role> {
    let width = model_width(net);
    let explicit = net.config.arch.input_from_data();
    params
        .tensors
        .iter()
        .map(|t| {
            // An input layer, and a transformer's tables: fan-ins that do not grow with
            // width, whatever their count.
            if (explicit && t.path == "layers.1.weight") || crate::params::is_table(&t.path) {
                Role::Vector
            } else {
                role(&t.shape, width)
            }
        })
        .collect()
}

/// One site's coordinate size at one step: the mean of |h| over the batch and units, in
/// the forward pass of that step's batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoordRecord {
    /// Updates made before the forward pass.
    pub step: usize,
    /// Site (`layer`, `out`, ..., and `readout` for the network's output after the readout).
    pub site: String,
    /// Layer (the depth + 1 for the readout).
    pub layer: usize,
    /// `mean |h|`.
    pub mean_abs: f64,
    /// `mean |h - h_0|`: the change since step 0 on the same batch (none at the first step).
    pub delta_abs: Option<f64>,
}

/// A user's data set: rows of features with an integer class label each.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Features per row.
    pub features: usize,
    /// Row-major features, `rows x features`.
    pub x: Vec<f32>,
    /// The class of each row, `0..classes`.
    pub labels: Vec<usize>,
    /// Classes.
    pub classes: usize,
    /// The last this many rows are held out: never trained on, and the evaluation batch
    /// is drawn from them (0: the evaluation batch is the first rows, also trained on).
    pub holdout: usize,
}

/// Most classes a classification task may have (the one-hot targets are dense).
pub const MAX_CLASSES: usize = 65_536;

impl Dataset {
    /// Rows.
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    /// Rows trained on: all but the held-out ones.
    pub fn train_rows(&self) -> usize {
        self.rows() - self.holdout
    }

    /// Hold out the last `rows` rows; at least one row must stay to train on.
    pub fn with_holdout(mut self, rows: usize) -> Result<Dataset, String> {
        if rows >= self.rows() {
            return Err(format!(
                "--holdout {rows}: expected fewer rows than the data's {}, so some are left to \
                 train on",
                self.rows()
            ));
        }
        self.holdout = rows;
        Ok(self)
    }

    /// Parse CSV text: one row per sample, the features then the class label (a whole number
    /// `0..classes`) last; a first line that is not numeric is a header. `classes` given: a
    /// label outside `0..classes` is an error; else `classes` is the largest label + 1.
    /// Errors name the line (1-based) and what is wrong.
    pub fn from_csv(text: &str, classes: Option<usize>) -> Result<Dataset, String> {
        if let Some(c) = classes
            && !(2..=MAX_CLASSES).contains(&c)
        {
            return Err(format!(
                "--classes {c}: expected a whole number from 2 to {MAX_CLASSES}"
            ));
        }
        let mut features = None;
        let mut x = Vec::new();
        let mut labels = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            let numbers: Vec<Option<f64>> = cells.iter().map(|c| c.parse::<f64>().ok()).collect();
            if features.is_none() && labels.is_empty() && numbers.iter().any(Option::is_none) {
                // A header line.
                continue;
            }
            if cells.len() < 2 {
                return Err(format!(
                    "line {line_no}: {} cell; expected the features then the label",
                    cells.len()
                ));
            }
            let n = cells.len() - 1;
            match features {
                None => features = Some(n),
                Some(f) if f != n => {
                    return Err(format!(
                        "line {line_no}: {} cells where the first row has {}",
                        cells.len(),
                        f + 1
                    ));
                }
                _ => {}
            }
            for (j, (cell, v)) in cells.iter().zip(&numbers).enumerate().take(n) {
                match v {
                    Some(v) if v.is_finite() => x.push(*v as f32),
                    _ => {
                        return Err(format!(
                            "line {line_no}, column {}: \"{cell}\" is not a finite number",
                            j + 1
                        ));
                    }
                }
            }
            let label = cells[n];
            let l = label
                .parse::<usize>()
                .ok()
                .or_else(|| {
                    label
                        .parse::<f64>()
                        .ok()
                        .filter(|v| *v >= 0.0 && v.fract() == 0.0 && *v < 1e9)
                        .map(|v| v as usize)
                })
                .ok_or_else(|| {
                    format!("line {line_no}: label \"{label}\" is not a whole number >= 0")
                })?;
            if let Some(c) = classes
                && l >= c
                && c > 0
            {
                return Err(format!(
                    "line {line_no}: label {l} is out of range; --classes {c} allows 0 to {}",
                    c - 1
                ));
            }
            labels.push(l);
        }
        let Some(features) = features else {
            return Err("no data rows".to_string());
        };
        let classes = match classes {
            Some(c) => c,
            None => labels.iter().max().map_or(0, |m| m.saturating_add(1)),
        };
        if classes > MAX_CLASSES {
            return Err(format!(
                "{classes} classes; at most {MAX_CLASSES} are allowed"
            ));
        }
        if classes < 2 {
            return Err(format!(
                "{classes} class in the labels; classification needs at least 2"
            ));
        }
        Ok(Dataset {
            features,
            x,
            labels,
            classes,
            holdout: 0,
        })
    }
}

/// What the network is trained to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// Regression onto a fixed random teacher: a tanh MLP of `depth` hidden layers of
    /// `width` units (weights `N(0, 1/fan_in)`, no biases) and a linear readout to `outputs`,
    /// scaled so its outputs have mean square 1 over a reference batch; inputs `N(0, 1)`.
    Teacher {
        /// Hidden layers.
        depth: usize,
        /// Units per hidden layer.
        width: usize,
        /// Outputs.
        outputs: usize,
        /// Seed of the teacher's weights.
        seed: u64,
    },
    /// Classification of a Gaussian mixture: class means `m_c ~ N(0, I)` from the task seed,
    /// samples `x = (m_c + noise e) / sqrt(1 + noise^2)`, `e ~ N(0, I)`, classes uniform.
    Mixture {
        /// Classes.
        classes: usize,
        /// Noise standard deviation relative to the means'.
        noise: f64,
        /// Seed of the class means.
        seed: u64,
    },
    /// The user's rows, in a fresh random order each epoch.
    Data(Arc<Dataset>),
}

impl Task {
    /// The loss training minimizes: the mean squared error onto the teacher's outputs, the
    /// mean cross-entropy of the classes of a mixture or a data set.
    pub fn objective(&self) -> Loss {
        match self {
            Task::Teacher { .. } => Loss::Mse,
            Task::Mixture { .. } | Task::Data(_) => Loss::CrossEntropy,
        }
    }

    /// Outputs of the readout.
    pub fn outputs(&self) -> usize {
        match self {
            Task::Teacher { outputs, .. } => *outputs,
            Task::Mixture { classes, .. } => *classes,
            Task::Data(d) => d.classes,
        }
    }

    /// The task and its settings in one line (a data set by its size, not its values).
    pub fn describe(&self) -> String {
        match self {
            Task::Teacher {
                depth,
                width,
                outputs,
                seed,
            } => format!(
                "teacher: tanh MLP, {depth} hidden layers of {width}, {outputs} outputs, task seed {seed}"
            ),
            Task::Mixture {
                classes,
                noise,
                seed,
            } => format!("mixture: {classes} classes, noise {noise}, task seed {seed}"),
            Task::Data(d) if d.holdout > 0 => format!(
                "data: {} rows of {} features, {} classes; the last {} held out for evaluation",
                d.rows(),
                d.features,
                d.classes,
                d.holdout
            ),
            Task::Data(d) => format!(
                "data: {} rows of {} features, {} classes",
                d.rows(),
                d.features,
                d.classes
            ),
        }
    }

    /// Samples in the evaluation batch when `eval_batch` are asked for: at most a data
    /// set's held-out rows, or else its rows.
    pub fn eval_samples(&self, eval_batch: usize) -> usize {
        match self {
            Task::Data(d) if d.holdout > 0 => eval_batch.min(d.holdout),
            Task::Data(d) => eval_batch.min(d.rows()),
            _ => eval_batch,
        }
    }

    /// `teacher`, `mixture` or `data`.
    pub fn name(&self) -> &'static str {
        match self {
            Task::Teacher { .. } => "teacher",
            Task::Mixture { .. } => "mixture",
            Task::Data(_) => "data",
        }
    }
}

/// Options of one training run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// Optimizer steps.
    pub steps: usize,
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// Learning rate.
    pub lr: f64,
    /// Samples per step.
    pub batch: usize,
    /// The task.
    pub task: Task,
    /// Steps (after that many updates, 0 = initialization) at which the per-layer statistics
    /// and the update ratios are recorded.
    pub log_steps: Vec<usize>,
    /// The probed pass run at each logged step.
    pub probe: ProbeOptions,
    /// Samples of the fixed evaluation batch whose loss is recorded at step 0, at the
    /// logged steps and at the last step: drawn from the task seed, so every run and
    /// configuration is evaluated on the same samples (a `data` task: its first rows, at
    /// most this many).
    pub eval_batch: usize,
    /// The parametrization.
    pub param: Parametrization,
    /// Train on step 0's batch at every step (the coordinate check's one fixed batch).
    pub fixed_batch: bool,
    /// Record every site's `mean |h|` at every step ([`TrainResult::coords`]).
    pub coords: bool,
    /// Start after this many updates, with this readout (a lottery ticket rewound to an
    /// early step): the run's steps are `resume.step..=steps`, its batches those of the same
    /// steps of a run from 0, its optimizer state fresh. `None`: start at step 0 with the
    /// readout drawn from the seed.
    pub resume: Option<Resume>,
    /// Keep the weights and the readout as they are after this many updates
    /// ([`TrainResult::checkpoint`]).
    pub checkpoint_at: Option<usize>,
}

impl TrainResult {
    /// A run that could not start: diverged at `step`, before any record.
    pub fn diverged(step: usize, params: Params) -> TrainResult {
        TrainResult {
            steps: Vec::new(),
            updates: Vec::new(),
            stats: Vec::new(),
            spectra: Vec::new(),
            diverged_at: Some(step),
            coords: Vec::new(),
            wall_s: 0.0,
            final_params: params,
            checkpoint: None,
        }
    }
}

/// Where a resumed run starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Resume {
    /// Updates already made.
    pub step: usize,
    /// The readout's values, `[features, outputs]` row-major.
    pub readout: Vec<f32>,
}

/// The weights and the readout of a run after some updates.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The weights (the run's masks kept).
    pub params: Params,
    /// The step and the readout, to resume from.
    pub resume: Resume,
}

/// The loss and gradient norm at one step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Updates made before this step's batch (0: the initial network).
    pub step: usize,
    /// The loss on this step's batch.
    pub loss: f64,
    /// Euclidean norm of the gradient of every trained tensor together, readout included.
    pub grad_norm: f64,
    /// The loss on the fixed evaluation batch, at step 0, the logged steps and the last.
    pub eval_loss: Option<f64>,
}

/// One trained tensor's update at a logged step (weights, biases, scalars, the readout):
/// the update that follows the step's batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateRecord {
    /// The logged step.
    pub step: usize,
    /// The weight's path (`layers.3.weight`, `readout`).
    pub param: String,
    /// `|W|` (Frobenius) before the update.
    pub weight_norm: f64,
    /// `|dW|`, the update's norm.
    pub update_norm: f64,
}

/// What a training run recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainResult {
    /// One record per step made, `0..=steps` (fewer when the loss went non-finite).
    pub steps: Vec<StepRecord>,
    /// Update norms at the logged steps below `steps`.
    pub updates: Vec<UpdateRecord>,
    /// The probed pass's statistics at each logged step reached.
    pub stats: Vec<(usize, Vec<LayerStats>)>,
    /// The probed pass's Jacobian spectra at each logged step reached (with
    /// [`ProbeOptions::jacobian`](crate::ProbeOptions); empty without it).
    pub spectra: Vec<(usize, Vec<crate::jacobian::Spectrum>)>,
    /// The first step whose loss was not finite (training stops there).
    pub diverged_at: Option<usize>,
    /// Coordinate sizes per step and site (with [`TrainOptions::coords`]).
    pub coords: Vec<CoordRecord>,
    /// Wall time of the training loop (steps, evaluations and logged statistics), seconds:
    /// a timing, not part of any CSV.
    pub wall_s: f64,
    /// The weights after the last step made (the lottery ticket's final magnitudes).
    pub final_params: Params,
    /// The weights and readout at [`TrainOptions::checkpoint_at`] (`None` without one, or
    /// when the run diverged before it).
    pub checkpoint: Option<Checkpoint>,
}
