//! The training and coordinate-check settings as a suite writes them (`[train]`,
//! `[train.task]`, `[coord]`, `[coord.task]`) and as the `train` and `coord-check` flags
//! fill them: one place for their defaults and their checks. Errors name the flag (which
//! is also the suite key).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sigprop_nets::{Dataset, OptimizerKind, ParamKind, Parametrization, Task};

use crate::error::RunnerError;
use crate::settings::RunSpec;

/// The task: `[train.task]` / `[coord.task]`, or the task flags. A field's documentation is
/// its flag's help.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TaskSpec {
    /// Task: teacher (regression onto a random tanh network; the default), mixture
    /// (Gaussian-mixture classification), data (the CSV given by --data).
    #[arg(long = "task", value_name = "TASK")]
    pub kind: Option<String>,
    /// CSV of features and an integer class label last (implies --task data; in a suite,
    /// relative to the suite file's folder).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Classes of the mixture [default: 10], or of --data [default: largest label + 1].
    #[arg(long)]
    pub classes: Option<usize>,
    /// Noise of the mixture's samples relative to its class means [default: 1].
    #[arg(long, allow_hyphen_values = true)]
    pub noise: Option<f64>,
    /// The teacher's hidden layers [default: 2].
    #[arg(long)]
    pub teacher_depth: Option<usize>,
    /// The teacher's hidden width [default: 64].
    #[arg(long)]
    pub teacher_width: Option<usize>,
    /// The teacher's outputs [default: 1].
    #[arg(long)]
    pub teacher_outputs: Option<usize>,
    /// Seed of the task's fixed parts (teacher weights, class means) [default: 0].
    #[arg(long)]
    pub task_seed: Option<u64>,
    /// Hold out the last N rows of --data: never trained on, they are the evaluation batch
    /// [default: 0, the evaluation batch is the first rows].
    #[arg(long)]
    pub holdout: Option<usize>,
}

fn positive(flag: &str, v: usize) -> Result<usize, RunnerError> {
    if v == 0 {
        Err(RunnerError::input(format!(
            "--{flag} 0: expected a whole number > 0"
        )))
    } else {
        Ok(v)
    }
}

impl TaskSpec {
    /// The task's name: `--task`, else `data` where `--data` is given, else `teacher`.
    pub fn kind_name(&self) -> &str {
        match (&self.kind, &self.data) {
            (Some(k), _) => k.as_str(),
            (None, Some(_)) => "data",
            (None, None) => "teacher",
        }
    }

    /// The task; a relative `data` path is read from `dir` when given.
    pub fn build(&self, dir: Option<&Path>) -> Result<Task, RunnerError> {
        let kind = self.kind_name();
        let seed = self.task_seed.unwrap_or(0);
        if kind != "data"
            && let Some(h) = self.holdout
        {
            return Err(RunnerError::input(format!(
                "--holdout {h}: holds out rows of --data; task {kind} draws fresh samples"
            )));
        }
        Ok(match kind {
            "teacher" => Task::Teacher {
                depth: self.teacher_depth.unwrap_or(2),
                width: positive("teacher-width", self.teacher_width.unwrap_or(64))?,
                outputs: positive("teacher-outputs", self.teacher_outputs.unwrap_or(1))?,
                seed,
            },
            "mixture" => {
                let classes = self.classes.unwrap_or(10);
                if !(2..=sigprop_nets::MAX_CLASSES).contains(&classes) {
                    return Err(RunnerError::input(format!(
                        "--classes {classes}: expected a whole number from 2 to {}",
                        sigprop_nets::MAX_CLASSES
                    )));
                }
                let noise = self.noise.unwrap_or(1.0);
                if !(noise.is_finite() && noise >= 0.0) {
                    return Err(RunnerError::input(format!(
                        "--noise {noise}: expected a finite number >= 0"
                    )));
                }
                Task::Mixture {
                    classes,
                    noise,
                    seed,
                }
            }
            "data" => {
                let Some(path) = &self.data else {
                    return Err(RunnerError::input("--task data needs --data PATH (a CSV)"));
                };
                let path = match dir {
                    Some(d) if path.is_relative() => d.join(path),
                    _ => path.clone(),
                };
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    RunnerError::input(format!("--data {}: cannot read it: {e}", path.display()))
                })?;
                let d = Dataset::from_csv(&text, self.classes)
                    .map_err(|e| RunnerError::input(format!("--data {}: {e}", path.display())))?;
                let d = d
                    .with_holdout(self.holdout.unwrap_or(0))
                    .map_err(RunnerError::input)?;
                Task::Data(Arc::new(d))
            }
            other => {
                return Err(RunnerError::input(format!(
                    "--task {other}: expected one of teacher, mixture, data"
                )));
            }
        })
    }
}

/// One number or a list of them (`lr = 0.01` or `lr = [0.01, 0.1]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One.
    One(f64),
    /// Several.
    Many(Vec<f64>),
}

/// `[train]`, or the `train` flags. A field's documentation is its flag's help.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TrainTable {
    /// Optimizer steps [default: 200].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Optimizer: sgd (the default), momentum (heavy ball 0.9), adam.
    #[arg(long)]
    pub optimizer: Option<String>,
    /// Learning rates, comma-separated: each configuration is trained at every one
    /// [default: 0.01].
    #[arg(long, value_parser = many_numbers, allow_hyphen_values = true)]
    pub lr: Option<OneOrMany>,
    /// Steps at which the per-layer statistics and update ratios are recorded [default:
    /// 0,1,10,steps].
    #[arg(long, value_delimiter = ',')]
    pub log_steps: Option<Vec<usize>>,
    /// The fraction of the initial loss whose first crossing summary.csv reports [default:
    /// 0.5].
    #[arg(long, allow_hyphen_values = true)]
    pub target: Option<f64>,
    /// Parametrizations, comma-separated: standard (the default), ntk, mup, depth-mup,
    /// completep, umup (docs/training.md has the rules; the depth ones set a residual
    /// network's branch multiplier, umup its unit scaling and N(0, 1) weights); with
    /// several, each configuration is trained under each.
    #[arg(long, value_delimiter = ',')]
    #[serde(default, deserialize_with = "one_or_many_names")]
    pub param: Option<Vec<String>>,
    /// The width at which muP equals standard [default: the configuration's width].
    #[arg(long)]
    pub base_width: Option<usize>,
    /// The depth at which depth-muP's and CompleteP's learning-rate and epsilon rules are 1
    /// [default: the first configuration's depth].
    #[arg(long)]
    pub base_depth: Option<usize>,
    /// Samples of the fixed evaluation batch whose loss summary.csv reports [default: 1024;
    /// with --data, at most its first rows, or its held-out rows with --holdout].
    #[arg(long)]
    pub eval_batch: Option<usize>,
    /// The lottery ticket procedure at this sparsity (Frankle & Carbin 2019): each
    /// configuration trained dense, then its winning ticket (the largest final weights of
    /// each tensor, rewound to their values at --lottery-rewind) and a random mask of the
    /// same sparsity, both retrained; the report compares them.
    #[arg(long)]
    pub lottery: Option<f64>,
    /// Rounds of iterative magnitude pruning to reach the --lottery sparsity, each removing
    /// the same fraction of the weights left and retraining [default: 1, one shot].
    #[arg(long)]
    pub lottery_rounds: Option<usize>,
    /// The step the ticket and the random mask are rewound to and retrained from
    /// (Frankle et al. 2019, "Stabilizing the lottery ticket hypothesis") [default: 0].
    #[arg(long)]
    pub lottery_rewind: Option<usize>,
    /// The task.
    #[serde(default)]
    #[command(flatten)]
    pub task: TaskSpec,
}

/// A name or a list of names (`param = "mup"` or `param = ["standard", "completep"]`).
fn one_or_many_names<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Names {
        One(String),
        Many(Vec<String>),
    }
    Ok(Some(match Names::deserialize(d)? {
        Names::One(n) => vec![n],
        Names::Many(v) => v,
    }))
}

/// A flag's comma-separated numbers, as a list.
fn many_numbers(text: &str) -> Result<OneOrMany, String> {
    text.split(',')
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .map_err(|e| format!("{}: {e}", v.trim()))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(OneOrMany::Many)
}

impl TrainTable {
    /// The parametrizations `param` names, each once (standard when absent).
    pub fn param_kinds(&self) -> Result<Vec<ParamKind>, RunnerError> {
        let Some(names) = &self.param else {
            return Ok(vec![ParamKind::Standard]);
        };
        let kinds = names
            .iter()
            .map(|n| n.parse::<ParamKind>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RunnerError::input(format!("--{e}")))?;
        if kinds.is_empty() {
            return Err(RunnerError::input(format!(
                "--param: expected one or more of {}",
                sigprop_nets::PARAM_NAMES.join(", ")
            )));
        }
        if let Some((_, d)) = kinds
            .iter()
            .enumerate()
            .find(|(i, k)| kinds[..*i].contains(k))
        {
            return Err(RunnerError::input(format!(
                "--param {d}: given twice; expected each parametrization once"
            )));
        }
        Ok(kinds)
    }

    /// The plan for the configurations `runs` (the first one's width is muP's default base
    /// width); `dir` resolves a relative data path.
    pub fn plan(&self, runs: &[RunSpec], dir: Option<&Path>) -> Result<TrainPlan, RunnerError> {
        let steps = self.steps.unwrap_or(200);
        let optimizer: OptimizerKind = self
            .optimizer
            .as_deref()
            .unwrap_or("sgd")
            .parse()
            .map_err(|e| RunnerError::input(format!("--{e}")))?;
        let kind = self.param_kinds()?[0];
        let lrs = match &self.lr {
            None => vec![0.01],
            Some(OneOrMany::One(v)) => vec![*v],
            Some(OneOrMany::Many(v)) => v.clone(),
        };
        if let Some(d) = lrs.iter().enumerate().find(|(i, v)| lrs[..*i].contains(v)) {
            return Err(RunnerError::input(format!(
                "--lr {}: given twice; expected each learning rate once",
                d.1
            )));
        }
        let mut log_steps = match &self.log_steps {
            Some(v) => v.clone(),
            None => [0, 1, 10, steps]
                .into_iter()
                .filter(|&s| s <= steps)
                .collect(),
        };
        log_steps.sort_unstable();
        log_steps.dedup();
        let plan = TrainPlan {
            steps,
            optimizer,
            lrs,
            task: self.task.build(dir)?,
            log_steps,
            target: self.target.unwrap_or(0.5),
            param: Parametrization {
                kind,
                base_width: self
                    .base_width
                    .unwrap_or_else(|| runs.first().map_or(1, |r| r.net.config.width)),
                base_depth: self
                    .base_depth
                    .unwrap_or_else(|| runs.first().map_or(1, |r| r.net.config.depth)),
            },
            eval_batch: self.eval_batch.unwrap_or(1024),
            lottery: match (self.lottery, self.lottery_rounds, self.lottery_rewind) {
                (Some(sparsity), rounds, rewind) => Some(Lottery {
                    sparsity,
                    rounds: rounds.unwrap_or(1),
                    rewind: rewind.unwrap_or(0),
                }),
                (None, Some(_), _) => {
                    return Err(RunnerError::input(
                        "--lottery-rounds: needs --lottery S, the sparsity to reach",
                    ));
                }
                (None, _, Some(_)) => {
                    return Err(RunnerError::input(
                        "--lottery-rewind: needs --lottery S, the sparsity to reach",
                    ));
                }
                (None, None, None) => None,
            },
        };
        plan.check()?;
        Ok(plan)
    }
}

/// `[coord]`, or the `coord-check` flags. A field's documentation is its flag's help.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CoordTable {
    /// Widths compared (the width check; as a flag, `--widths W1,W2,...`, which an mlp also
    /// takes: [`CoordTable::take_widths`]).
    #[arg(skip)]
    pub widths: Option<Vec<usize>>,
    /// Depths of a residual network to compare, comma-separated (the depth check; the width
    /// check takes the widths to compare from --widths W1,W2,...).
    #[arg(long, value_delimiter = ',')]
    pub depths: Option<Vec<usize>>,
    /// Parametrizations, comma-separated: standard, ntk, mup, depth-mup, completep, umup
    /// [default: standard,mup].
    #[arg(long, value_delimiter = ',')]
    pub params: Option<Vec<String>>,
    /// Optimizer steps (coordinates are recorded at steps 0 to this) [default: 5].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Optimizer: sgd, momentum, adam [default: adam].
    #[arg(long)]
    pub optimizer: Option<String>,
    /// Learning rate (at the base width under muP) [default: 0.001].
    #[arg(long, allow_hyphen_values = true)]
    pub lr: Option<f64>,
    /// The width at which muP equals standard [default: the smallest width].
    #[arg(long)]
    pub base_width: Option<usize>,
    /// The depth at which the depth parametrizations' rules are 1 [default: the smallest
    /// depth].
    #[arg(long)]
    pub base_depth: Option<usize>,
    /// Input features of an mlp in the width check (fixed while the width varies) [default:
    /// 32].
    #[arg(long)]
    pub input_dim: Option<usize>,
    /// The band +-T the seeds' interval of a log-log slope must lie within to be called
    /// flat (beyond it: grows or shrinks; across it: unsettled) [default: 0.1].
    #[arg(long, allow_hyphen_values = true)]
    pub tolerance: Option<f64>,
    /// The task.
    #[serde(default)]
    #[command(flatten)]
    pub task: TaskSpec,
}

impl CoordTable {
    /// The widths to compare from the command line: `--widths W1,W2,...` is also an mlp's
    /// own setting, so it arrives among the architecture flags `own`, whence it is taken.
    pub fn take_widths(&mut self, own: &mut Vec<(&str, String)>) -> Result<(), RunnerError> {
        let Some(i) = own.iter().position(|(k, _)| *k == "widths") else {
            return Ok(());
        };
        let raw = own.remove(i).1;
        let widths = raw
            .split(',')
            .map(|v| v.trim().parse::<usize>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                RunnerError::input(format!(
                    "--widths {raw}: expected whole numbers, comma-separated"
                ))
            })?;
        self.widths = Some(widths);
        Ok(())
    }

    /// The plan; `dir` resolves a relative data path.
    pub fn plan(&self, dir: Option<&Path>) -> Result<CoordPlan, RunnerError> {
        let axis = match (&self.widths, &self.depths) {
            (Some(w), None) => Axis::Width(w.clone()),
            (None, Some(d)) => Axis::Depth(d.clone()),
            _ => {
                return Err(RunnerError::input(
                    "coord-check needs --widths W1,W2,... or --depths D1,D2,... (one of them)",
                ));
            }
        };
        let optimizer: OptimizerKind = self
            .optimizer
            .as_deref()
            .unwrap_or("adam")
            .parse()
            .map_err(|e| RunnerError::input(format!("--{e}")))?;
        let params = match &self.params {
            None => vec![ParamKind::Standard, ParamKind::Mup],
            Some(v) => v
                .iter()
                .map(|p| p.parse::<ParamKind>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| RunnerError::input(format!("--params: {e}")))?,
        };
        if let Some(d) = params
            .iter()
            .enumerate()
            .find(|(i, p)| params[..*i].contains(p))
        {
            return Err(RunnerError::input(format!(
                "--params {}: given twice; expected each parametrization once",
                d.1
            )));
        }
        let input_dim = positive("input-dim", self.input_dim.unwrap_or(32))?;
        let tolerance = self.tolerance.unwrap_or(0.1);
        if !(tolerance.is_finite() && tolerance > 0.0) {
            return Err(RunnerError::input(format!(
                "--tolerance {tolerance}: expected a positive number"
            )));
        }
        Ok(CoordPlan {
            steps: self.steps.unwrap_or(5),
            optimizer,
            lr: self.lr.unwrap_or(0.001),
            params,
            axis,
            base_width: self.base_width,
            base_depth: self.base_depth,
            input_dim,
            task: self.task.build(dir)?,
            tolerance,
        })
    }
}

/// What to train: shared by every configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainPlan {
    /// Optimizer steps.
    pub steps: usize,
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// Learning rates: each configuration is trained at every one.
    pub lrs: Vec<f64>,
    /// The task.
    pub task: Task,
    /// Steps at which the per-layer statistics and update ratios are recorded.
    pub log_steps: Vec<usize>,
    /// The fraction of the initial loss whose first crossing `steps_to_target` reports.
    pub target: f64,
    /// The parametrization.
    pub param: Parametrization,
    /// Samples of the fixed evaluation batch.
    pub eval_batch: usize,
    /// The lottery ticket procedure (Frankle & Carbin 2019).
    pub lottery: Option<Lottery>,
}

/// The lottery ticket procedure: iterative magnitude pruning with rewinding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lottery {
    /// The sparsity the ticket reaches, per prunable tensor.
    pub sparsity: f64,
    /// Rounds of pruning: round `r` of `R` keeps `(1 - sparsity)^(r / R)` of each tensor.
    pub rounds: usize,
    /// The step the arms are rewound to (0: the initial weights).
    pub rewind: usize,
}

impl Lottery {
    /// The sparsity after round `r` (1-based) of [`Lottery::rounds`].
    pub fn sparsity_after(&self, r: usize) -> f64 {
        if r >= self.rounds {
            self.sparsity
        } else {
            1.0 - (1.0 - self.sparsity).powf(r as f64 / self.rounds as f64)
        }
    }
}

impl TrainPlan {
    /// Check the plan's values; errors name the flag.
    pub fn check(&self) -> Result<(), RunnerError> {
        if self.steps == 0 {
            return Err(RunnerError::input(
                "--steps 0: expected a whole number of steps > 0",
            ));
        }
        if self.lrs.is_empty() {
            return Err(RunnerError::input(
                "--lr: expected one or more positive finite numbers",
            ));
        }
        for &lr in &self.lrs {
            if !(lr.is_finite() && lr > 0.0) {
                return Err(RunnerError::input(format!(
                    "--lr {lr}: expected positive finite numbers"
                )));
            }
        }
        if self.eval_batch == 0 {
            return Err(RunnerError::input(
                "--eval-batch 0: expected a whole number of samples > 0",
            ));
        }
        if !(self.target > 0.0 && self.target < 1.0) {
            return Err(RunnerError::input(format!(
                "--target {}: expected a fraction of the initial loss, 0 < f < 1",
                self.target
            )));
        }
        if let Some(l) = &self.lottery {
            if !(0.0..1.0).contains(&l.sparsity) {
                return Err(RunnerError::input(format!(
                    "--lottery {}: expected a sparsity in [0, 1)",
                    l.sparsity
                )));
            }
            if l.rounds == 0 {
                return Err(RunnerError::input(
                    "--lottery-rounds 0: expected a whole number of rounds > 0",
                ));
            }
            if l.rewind >= self.steps {
                return Err(RunnerError::input(format!(
                    "--lottery-rewind {}: expected a step before the last ({})",
                    l.rewind, self.steps
                )));
            }
        }
        if let Some(&s) = self.log_steps.iter().find(|&&s| s > self.steps) {
            return Err(RunnerError::input(format!(
                "--log-steps {s}: past the last step ({})",
                self.steps
            )));
        }
        Ok(())
    }
}

/// What the coordinate check varies.
#[derive(Debug, Clone, PartialEq)]
pub enum Axis {
    /// Widths (every site of every layer is compared across them).
    Width(Vec<usize>),
    /// Depths of a residual network (the last block's output and the readout are compared
    /// across them).
    Depth(Vec<usize>),
}

impl Axis {
    /// `width` or `depth`.
    pub fn name(&self) -> &'static str {
        match self {
            Axis::Width(_) => "width",
            Axis::Depth(_) => "depth",
        }
    }

    /// The widths or depths.
    pub fn values(&self) -> &[usize] {
        match self {
            Axis::Width(v) | Axis::Depth(v) => v,
        }
    }
}

/// A coordinate check.
#[derive(Debug, Clone, PartialEq)]
pub struct CoordPlan {
    /// Steps trained (the coordinates are recorded at steps `0..=steps`).
    pub steps: usize,
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// Learning rate (at the base width under muP).
    pub lr: f64,
    /// Parametrizations compared.
    pub params: Vec<ParamKind>,
    /// Widths or depths.
    pub axis: Axis,
    /// muP's base width [the smallest width].
    pub base_width: Option<usize>,
    /// The depth parametrizations' base depth [the smallest depth].
    pub base_depth: Option<usize>,
    /// The input features of an `mlp` in the width check (fixed while the width varies).
    pub input_dim: usize,
    /// The task.
    pub task: Task,
    /// The band the seeds' interval of a slope must lie within to be flat.
    pub tolerance: f64,
}
