//! Settings: the parameters of one configuration, and how a grid expands into many.
//!
//! Both the CLI flags and a suite's `[base]` / `[grid]` tables fill the same [`Settings`]
//! (every field optional; the keys of an architecture's own settings kept aside until the
//! architecture is known, and then read into its typed configuration, so a key it does not
//! take, or no architecture takes, is an error); [`Settings::to_run`] turns one into a
//! validated [`RunSpec`] with defaults applied. This is the single place where user input
//! becomes a typed experiment: the CLI only collects arguments.

use serde::{Deserialize, Serialize};
use sigprop_init::{Activation, Scheme};
use sigprop_nets::{
    Arch, BackendKind, Dtype, JacobianOptions, Loss, LossScale, NetConfig, PrecisionOptions,
    ResolvedNet,
};

use crate::error::RunnerError;

/// Every key a configuration may set, as in `[base]` and `[grid]` of a suite file, and as
/// the flags of the commands that run networks (`--depth` is `depth = ...`). A field's
/// documentation is its flag's help.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(rename_all = "kebab-case")]
pub struct Settings {
    /// Architecture: mlp (default), resmlp, cnn, rescnn, rnn, transformer, graph (your own
    /// model: --model FILE.toml); see `sigprop list archs`.
    #[arg(long)]
    pub arch: Option<String>,
    /// Weight initializer spec (a command's own flag: `--init` or `--inits`).
    #[arg(skip)]
    pub init: Option<String>,
    /// Bias initializer spec (default zeros); see `sigprop list inits`.
    #[arg(long)]
    pub bias_init: Option<String>,
    /// Bias standard deviation: shorthand for --bias-init normal:std=X.
    #[arg(long, allow_hyphen_values = true)]
    pub sigma_b: Option<f64>,
    /// Weight variance times fan-in: shorthand for --init
    /// variance-scaling:scale=X,distribution=normal, W ~ N(0, X / fan_in).
    #[arg(long, allow_hyphen_values = true)]
    pub sigma_w2: Option<f64>,
    /// Bias variance: shorthand for --sigma-b sqrt(X).
    #[arg(long, allow_hyphen_values = true)]
    pub sigma_b2: Option<f64>,
    /// Activation spec (a command's own flag: `--activation` or `--activations`).
    #[arg(skip)]
    pub activation: Option<String>,
    /// Prune at initialization: random|magnitude|snip|grasp|synflow with :sparsity=S, S in
    /// [0, 1) (synflow also takes iterations=N, default 100), or none; pruned weights stay
    /// 0 in training.
    #[arg(long)]
    pub prune: Option<String>,
    /// Layers (mlp, cnn), residual blocks (resmlp) or time steps (rnn) [default: 20].
    #[arg(long)]
    pub depth: Option<usize>,
    /// Units or channels per layer [default: 256].
    #[arg(long)]
    pub width: Option<usize>,
    /// Batch size [default: 128; transformer: 16 sequences].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Backend: flex (CPU, default); wgpu (GPU), ndarray and cuda when built with their cargo features.
    #[arg(long)]
    pub backend: Option<String>,
    /// Loss: projection (default), mse, cross-entropy.
    #[arg(long)]
    pub loss: Option<String>,
    /// Run seeds 0..N-1 [default: 3].
    #[arg(long)]
    pub seeds: Option<u64>,
    /// Run this one seed instead.
    #[arg(long, conflicts_with = "seeds")]
    pub seed: Option<u64>,
    /// Layers that get histograms, comma-separated [default: 1, a quarter, half, three
    /// quarters, last].
    #[arg(long, value_delimiter = ',')]
    pub hist_layers: Option<Vec<usize>>,
    /// Measure the singular values of the input-output Jacobian (the RNN's through time,
    /// dh_t/dh_0; not with batch norm): spectrum.csv and the jac_* columns (train: the
    /// spectra at each logged step, train_spectrum.csv).
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub jacobian: Option<bool>,
    /// Inputs of the batch whose Jacobians are taken [default: 8] (implies --jacobian).
    #[arg(long)]
    pub jacobian_samples: Option<usize>,
    /// Layers whose partial Jacobian dh^l/dh^0 is taken, comma-separated [default: the
    /// last] (implies --jacobian).
    #[arg(long, value_delimiter = ',')]
    pub jacobian_layers: Option<Vec<usize>>,
    /// Refuse configurations whose probed pass is estimated to need more memory than this:
    /// bytes, or a number with K, M, G, T (powers of 1024, optional iB/B), e.g. 8G, 512M
    /// [default: 80% of the machine's memory].
    #[arg(long)]
    pub max_memory: Option<String>,
    /// Most seeds run as one pass over their stacked weights, each with its solo numbers
    /// [default: 8 on a GPU backend, while a pass stays within 2 GiB and fits in
    /// --max-memory; 1 on a CPU backend, whose seeds run on separate cores].
    /// Architectures that cannot batch (batch normalization, learnable scalars,
    /// convolutions, recurrences), and seeds with histograms or a Jacobian, run alone;
    /// train and coord-check (one network at a time) refuse it; bench takes it with --seeds
    /// N, timing the seeds one a pass and this many a pass.
    #[arg(long)]
    pub seed_batch: Option<usize>,
    /// Float type of the probed pass: f32 (default), bf16, f16. A bf16 or f16 pass casts the
    /// weights and inputs and runs every operation in that type (the loss in f32), and is
    /// compared with the f32 pass of the same seed: underflow_frac, overflow_frac, rel_err
    /// and their grad_ columns.
    #[arg(long)]
    pub dtype: Option<String>,
    /// Loss scale of a bf16 or f16 pass: off (default), dynamic (start at 2^16, halve while
    /// a gradient overflows), or a number S > 0; the gradients are divided back in f32.
    #[arg(long)]
    pub loss_scale: Option<String>,
    /// Real inputs: a .npy, .npz (its array x, or its only one), .csv, CIFAR-10 .bin or MNIST
    /// IDX (*-ubyte) file of samples, the first axis the samples; each seed's batch is drawn
    /// from it without replacement, in place of the Gaussian inputs (a path relative to the
    /// current folder; none: the Gaussian inputs).
    #[arg(long, value_name = "FILE")]
    pub inputs: Option<String>,
    /// With --inputs: standardize the file to mean 0 and variance 1, per channel for samples
    /// [C, H, W], over the whole of a [H, W] sample (one channel), per feature for [F].
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub standardize: Option<bool>,
    /// The architecture's own settings (`kernel`, `norm`, `branch-scale`, ...), read into
    /// its typed configuration once `arch` is known; every other key lands here too and is
    /// refused then. As flags, they are `ArchFlags`' in the binary, added by
    /// [`Settings::add_arch_flags`].
    #[serde(flatten)]
    #[arg(skip)]
    pub arch_settings: toml::Table,
}

/// The keys of [`Settings`] other than the architectures' own.
pub const KEYS: &[&str] = &[
    "arch",
    "init",
    "bias-init",
    "sigma-b",
    "sigma-w2",
    "sigma-b2",
    "activation",
    "prune",
    "depth",
    "width",
    "batch",
    "backend",
    "loss",
    "seeds",
    "seed",
    "hist-layers",
    "jacobian",
    "jacobian-samples",
    "jacobian-layers",
    "max-memory",
    "seed-batch",
    "dtype",
    "loss-scale",
    "inputs",
    "standardize",
];

/// Whether `key` is a setting at all (common or some architecture's own).
pub fn is_key(key: &str) -> bool {
    KEYS.contains(&key)
        || sigprop_nets::all_settings()
            .iter()
            .any(|(s, _)| s.key == key)
}

/// Every key, for the error line of an unknown one.
pub fn all_keys() -> String {
    let own = sigprop_nets::all_settings();
    KEYS.iter()
        .copied()
        .chain(own.iter().map(|(s, _)| s.key))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One validated configuration, run over its seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Position in the experiment (0-based): the `config` column.
    pub index: usize,
    /// Short label for legends: the grid values that define it.
    pub label: String,
    /// The grid assignments `(key, value)` that made this configuration.
    pub grid: Vec<(String, String)>,
    /// The network, resolved (its specs parsed, its critical sigma_w found); written and read
    /// as its [`NetConfig`].
    pub net: ResolvedNet,
    /// Batch size.
    pub batch: usize,
    /// Backend.
    pub backend: BackendKind,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Layers with histograms.
    pub hist_layers: Vec<usize>,
    /// The Jacobian spectra to measure, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jacobian: Option<JacobianOptions>,
    /// What `init = "auto"` chose and why (the network holds the chosen spec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto: Option<AutoChoice>,
    /// `init = "auto"` before its recommendation has run: the configuration's settings,
    /// from which [`RunSpec::with_auto`] builds the run once `recommend::resolve_auto_runs`
    /// (an explicit step before running) has measured the candidates. Until then `net`
    /// holds the configuration checked with a plain fan-in initializer, and nothing runs it
    /// (`execute` refuses a pending configuration). Never stored.
    #[serde(skip)]
    pub auto_pending: Option<Box<Settings>>,
    /// A low-precision pass (`dtype` bf16 or f16, and its `loss-scale`); `None` for f32.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<PrecisionOptions>,
    /// Most seeds run as one pass (`seed-batch`, after the memory check): how the runs
    /// are computed, not what they measure, so it is neither stored nor part of a run's
    /// identity (0 read back from a store means 1).
    #[serde(skip)]
    pub seed_batch: usize,
}

/// Default values of the quick single run.
pub mod defaults {
    /// Architecture.
    pub const ARCH: &str = "mlp";
    /// Depth.
    pub const DEPTH: usize = 20;
    /// Width.
    pub const WIDTH: usize = 256;
    /// Batch.
    pub const BATCH: usize = 128;
    /// Seeds.
    pub const SEEDS: u64 = 3;
}

/// Most seeds in one pass on a GPU backend when `seed-batch` is not given (fewer where they
/// do not fit in `max-memory`).
pub const DEFAULT_GPU_SEED_BATCH: usize = 8;

/// The default `seed-batch` puts seeds in one pass only while the pass's estimated memory
/// stays within this: a larger pass already fills a GPU, and the bound keeps the default
/// safe on a GPU with less memory than its host (whose memory `max-memory` measures).
pub const AUTO_SEED_BATCH_BYTES: f64 = 2.0 * 1024.0 * 1024.0 * 1024.0;

/// Most seeds one configuration may run (each is a full probed pass, and the manifest
/// lists every one).
pub const MAX_SEEDS: u64 = 10_000;

fn bad(key: &str, value: impl std::fmt::Display, allowed: &str) -> RunnerError {
    RunnerError::input(format!("{key}={value} is not allowed; expected {allowed}"))
}

impl Settings {
    /// The architectures' own flags given on the command line (`--kernel 5`, as `(key,
    /// text)` in the order given) added as the suite values they stand for; a repeated
    /// flag's values make a list.
    pub fn add_arch_flags(&mut self, flags: &[(&str, String)]) -> Result<(), RunnerError> {
        for (key, raw) in flags {
            let Some((setting, _)) = sigprop_nets::all_settings()
                .into_iter()
                .find(|(s, _)| s.key == *key)
            else {
                continue;
            };
            let value = setting
                .parse_flag(raw)
                .map_err(|e| RunnerError::input(format!("--{e}")))?;
            if setting.kind == sigprop_nets::SettingKind::Texts {
                let list = self
                    .arch_settings
                    .entry(key.to_string())
                    .or_insert_with(|| toml::Value::Array(Vec::new()));
                if let toml::Value::Array(a) = list {
                    a.push(value);
                }
            } else {
                self.arch_settings.insert(key.to_string(), value);
            }
        }
        Ok(())
    }

    /// Whether the architecture has attention logits, which muP scales (`score-scale`): its
    /// network at initialization differs under muP.
    pub fn has_attention(&self) -> bool {
        self.arch
            .as_deref()
            .unwrap_or(defaults::ARCH)
            .parse::<Arch>()
            .is_ok_and(|a| a.default_config().mup_scores().is_some())
    }

    /// These settings under the parametrization `kind`: a depth parametrization (depth-muP,
    /// CompleteP) is for residual networks and sets their branches' multiplier (`L^-1/2`,
    /// `L^-1`); a `branch-scale` given with it must be the same (or the default 1, which it
    /// replaces). u-muP sets `branch-scale umup` (the unit-scaled network) and the weights
    /// `normal` (N(0, 1)): an `init` given with it must be that. muP and its depth
    /// extensions set an attention's logits to `score-scale 1/d`. Other parametrizations
    /// leave the settings as they are.
    pub fn under_param(&self, kind: sigprop_nets::ParamKind) -> Result<Settings, RunnerError> {
        let name = self.arch.as_deref().unwrap_or(defaults::ARCH);
        let mut out = self.clone();
        if kind.scales_width() && self.has_attention() {
            if let Some(v) = self.arch_settings.get("score-scale")
                && value_text(v) != "1/d"
            {
                return Err(RunnerError::input(format!(
                    "--score-scale {}: --param {kind} sets the attention logits to q k^T / \
                     d_head; expected no --score-scale with it (or 1/d)",
                    value_text(v)
                )));
            }
            out.arch_settings
                .insert("score-scale".into(), toml::Value::String("1/d".into()));
        }
        let Some(scale) = kind.branch_scale() else {
            return Ok(out);
        };
        let residual = name
            .parse::<Arch>()
            .is_ok_and(|a| a.default_config().capabilities().residual);
        if !residual {
            let what = if kind.unit_weights() {
                "u-muP's unit-scaled network"
            } else {
                "a depth parametrization"
            };
            return Err(RunnerError::input(format!(
                "--param {kind}: {what} is for residual networks (--arch {}), not --arch {name}",
                sigprop_nets::archs_with(|c| c.residual)
            )));
        }
        if kind.unit_weights() {
            // u-muP's weights are N(0, 1); the operations carry the scales.
            let unit = |s: &str| matches!(s.parse::<Scheme>(), Ok(Scheme::Normal { mean, std }) if mean == 0.0 && std == 1.0);
            match &self.init {
                Some(i) if !unit(i) => {
                    return Err(RunnerError::input(format!(
                        "--init {i}: --param {kind} draws every weight from N(0, 1) and scales \
                         the operations; expected no --init with it (or normal)"
                    )));
                }
                _ => out.init = Some("normal".into()),
            }
            if self.sigma_w2.is_some() {
                return Err(RunnerError::input(format!(
                    "--sigma-w2: --param {kind} draws every weight from N(0, 1); expected no \
                     --sigma-w2 with it"
                )));
            }
        }
        if let Some(v) = out.arch_settings.get("branch-scale") {
            let text = value_text(v);
            let given = text.parse::<sigprop_nets::BranchScale>();
            let unit = |b| {
                matches!(b, sigprop_nets::BranchScale::One)
                    || b == sigprop_nets::BranchScale::Value(1.0)
            };
            if !matches!(given, Ok(b) if b == scale || unit(b)) {
                return Err(RunnerError::input(format!(
                    "--branch-scale {text}: --param {kind} sets the branches' multiplier to \
                     {scale}; expected no --branch-scale with it"
                )));
            }
        }
        out.arch_settings.insert(
            "branch-scale".into(),
            toml::Value::String(scale.to_string()),
        );
        Ok(out)
    }

    /// `other`'s fields where set, else `self`'s. A struct literal without `..`: a field
    /// added to [`Settings`] and forgotten here does not compile.
    pub fn overlay(&self, other: &Settings) -> Settings {
        let mut arch_settings = self.arch_settings.clone();
        arch_settings.extend(other.arch_settings.clone());
        macro_rules! pick {
            ($($f:ident),* $(,)?) => {
                Settings { $($f: other.$f.clone().or_else(|| self.$f.clone()),)* arch_settings }
            };
        }
        pick!(
            arch,
            init,
            bias_init,
            sigma_b,
            sigma_w2,
            sigma_b2,
            activation,
            prune,
            depth,
            width,
            batch,
            backend,
            loss,
            seeds,
            seed,
            hist_layers,
            jacobian,
            jacobian_samples,
            jacobian_layers,
            max_memory,
            seed_batch,
            dtype,
            loss_scale,
            inputs,
            standardize,
        )
    }

    /// Apply defaults, expand shorthands, validate, and build the run.
    pub fn to_run(
        &self,
        index: usize,
        label: String,
        grid: Vec<(String, String)>,
    ) -> Result<RunSpec, RunnerError> {
        // `init = "auto"`: the configuration is checked here with a plain fan-in
        // initializer (its sizes, keys and memory, once rather than once per candidate);
        // the recommendation that picks its initializer is measured later, in an explicit
        // step before running (`recommend::resolve_auto_runs`). Parsing runs nothing.
        if self.init.as_deref() == Some("auto") {
            if self.sigma_w2.is_some() {
                return Err(RunnerError::input("init and sigma-w2 both given; use one"));
            }
            let mut plain = self.clone();
            plain.init = Some("lecun-normal".into());
            let mut spec = plain.to_run(index, label, grid)?;
            spec.auto_pending = Some(Box::new(self.clone()));
            return Ok(spec);
        }
        // A model file is the graph architecture's: `--model` alone chooses it.
        let default_arch = if self.arch_settings.contains_key("model") {
            Arch::Graph.name()
        } else {
            defaults::ARCH
        };
        let arch: Arch = self
            .arch
            .as_deref()
            .unwrap_or(default_arch)
            .parse()
            .map_err(|e| RunnerError::input(format!("--arch: {e}")))?;
        let activation = self.activation.clone().unwrap_or_else(|| "relu".into());
        activation
            .parse::<Activation>()
            .map_err(|e| RunnerError::input(format!("--activation: {e}")))?;
        let init = match (self.sigma_w2, &self.init) {
            (Some(w2), None) if w2 > 0.0 && w2.is_finite() => {
                format!("variance-scaling:scale={w2},distribution=normal")
            }
            (Some(w2), None) => return Err(bad("sigma-w2", w2, "a number > 0")),
            (Some(_), Some(_)) => {
                return Err(RunnerError::input("init and sigma-w2 both given; use one"));
            }
            (None, Some(i)) => i.clone(),
            (None, None) => "he-normal".into(),
        };
        // `model` keeps a model file's own weights: no scheme draws them (the network's
        // resolve checks that the model has them).
        let scheme: Scheme = if init.trim() == sigprop_nets::model::MODEL_INIT {
            Scheme::Zeros
        } else {
            init.parse()
                .map_err(|e| RunnerError::input(format!("--init: {e}")))?
        };
        let sigma_b = match (self.sigma_b, self.sigma_b2) {
            (Some(_), Some(_)) => {
                return Err(RunnerError::input(
                    "sigma-b and sigma-b2 both given; use one",
                ));
            }
            (Some(b), None) => Some(b),
            (None, Some(b2)) if b2 >= 0.0 && b2.is_finite() => Some(b2.sqrt()),
            (None, Some(b2)) => return Err(bad("sigma-b2", b2, "a number >= 0")),
            (None, None) => None,
        };
        if let Some(b) = sigma_b.filter(|b| !(*b >= 0.0 && b.is_finite())) {
            return Err(bad("sigma-b", b, "a number >= 0"));
        }
        // A critical initialization is defined together with its bias variance: another
        // bias would silently build a network that is not at the edge of chaos.
        let auto_bias = match scheme.autoinit_q() {
            Some(q) => {
                // TAT's leaky ReLU and DKS are solved at the network's depth (0 is refused
                // later).
                let depth = self.depth.unwrap_or(defaults::DEPTH).max(1);
                let act: Activation = activation
                    .parse::<Activation>()
                    .and_then(|a| sigprop_theory::resolve_activation(a, depth))
                    .map_err(|e| RunnerError::input(format!("--activation: {e}")))?;
                let plan = sigprop_theory::autoinit_plan(act, q)
                    .map_err(|e| RunnerError::input(format!("--init {init}: {e}")))?;
                if self.bias_init.is_some() || sigma_b.is_some() {
                    return Err(RunnerError::input(format!(
                        "--init {init} sets the bias ({} for {act}): drop --bias-init/--sigma-b",
                        sigprop_nets::autoinit_bias_spec(&plan)
                    )));
                }
                Some(sigprop_nets::autoinit_bias_spec(&plan))
            }
            None => None,
        };
        if let Some((sb, _)) = scheme.is_critical() {
            let conflicts =
                self.bias_init.is_some() || sigma_b.is_some_and(|b| (b - sb).abs() > 1e-12);
            if conflicts {
                return Err(RunnerError::input(format!(
                    "--init {init} sets the bias: drop --bias-init/--sigma-b, or give sigma-b={sb} only"
                )));
            }
        }
        let bias_init = match (&self.bias_init, sigma_b) {
            (Some(_), Some(_)) => {
                return Err(RunnerError::input(
                    "bias-init and sigma-b both given; use one",
                ));
            }
            (Some(b), None) => b.clone(),
            (None, Some(b)) if b > 0.0 => format!("normal:std={b}"),
            (None, Some(_)) => "zeros".into(),
            // A critical initialization is defined together with its bias variance.
            (None, None) if auto_bias.is_some() => auto_bias.unwrap_or_default(),
            (None, None) => match scheme.is_critical() {
                Some((sb, _)) if sb > 0.0 => format!("normal:std={sb}"),
                _ => "zeros".into(),
            },
        };
        bias_init
            .parse::<Scheme>()
            .map_err(|e| RunnerError::input(format!("--bias-init: {e}")))?;
        let backend: BackendKind = self
            .backend
            .as_deref()
            .unwrap_or("flex")
            .parse()
            .map_err(|e| RunnerError::input(format!("--backend: {e}")))?;
        let loss: Loss = self
            .loss
            .as_deref()
            .unwrap_or("projection")
            .parse()
            .map_err(|e| RunnerError::input(format!("--loss: {e}")))?;
        let seeds: Vec<u64> = match (self.seed, self.seeds) {
            (Some(s), _) => vec![s],
            (None, Some(n)) if n == 0 || n > MAX_SEEDS => {
                return Err(bad(
                    "seeds",
                    n,
                    &format!("a whole number between 1 and {MAX_SEEDS}"),
                ));
            }
            (None, Some(n)) => (0..n).collect(),
            (None, None) => (0..defaults::SEEDS).collect(),
        };
        // A key of no architecture, or of another one, is an error, never ignored.
        if let Some(key) = self.arch_settings.keys().find(|k| !is_key(k)) {
            return Err(RunnerError::input(format!(
                "unknown key {key}; expected one of: {}",
                all_keys()
            )));
        }
        let own = arch
            .config_from(&self.arch_settings)
            .map_err(|e| RunnerError::input(e.to_string()))?;
        // A model file fixes its own depth (its linear and conv layers) and width.
        let (depth, width) = match own.fixed_size() {
            Some((d, w)) => {
                for (key, given, own) in [("depth", self.depth, d), ("width", self.width, w)] {
                    if let Some(g) = given.filter(|&g| g != own) {
                        return Err(RunnerError::input(format!(
                            "--{key} {g}: the model's {key} is its own ({own}); leave --{key} out"
                        )));
                    }
                }
                (d, w)
            }
            None => (
                self.depth.unwrap_or(defaults::DEPTH),
                self.width.unwrap_or(defaults::WIDTH),
            ),
        };
        for (key, v) in [("depth", depth), ("width", width)] {
            if v == 0 {
                return Err(bad(key, 0, "a whole number > 0"));
            }
        }
        let batch = self
            .batch
            .or(own.default_batch())
            .unwrap_or(defaults::BATCH);
        if batch == 0 {
            return Err(bad("batch", 0, "a whole number > 0"));
        }
        let mut net = NetConfig::new(own, depth, width, &activation, &init);
        net.bias_init = bias_init;
        net.loss = loss;
        // `none` lets a grid hold the dense network next to pruned ones.
        net.prune = self.prune.clone().filter(|p| p.trim() != "none");
        net.inputs = self.input_file()?;
        // Seeds in one pass: only where the architecture takes stacked weights (histograms
        // and Jacobians keep their seeds solo at run time).
        let asked = match self.seed_batch {
            Some(0) => {
                return Err(bad(
                    "seed-batch",
                    0,
                    "a whole number > 0 (1 runs the seeds one at a time)",
                ));
            }
            Some(n) => n,
            None if backend.is_cpu() => 1,
            None => DEFAULT_GPU_SEED_BATCH,
        };
        let wants_jacobian = self
            .jacobian
            .unwrap_or(self.jacobian_samples.is_some() || self.jacobian_layers.is_some());
        let precision = self.precision(wants_jacobian)?;
        // A Jacobian's seeds run one at a time (histograms are drawn by one seed alone).
        // A low-precision pass is measured against its own f32 pass, seed by seed.
        let most = if net.arch.seed_batching() && !wants_jacobian && precision.is_none() {
            asked.min(seeds.len())
        } else {
            1
        };
        // Passes of `k` seeds: on a CPU backend as many at the same time as there are
        // threads; on a GPU one, with the next pass's weights filled and uploaded meanwhile.
        let fits = |k: usize| {
            let (concurrent, staged) = if backend.is_cpu() {
                let passes = seeds.len().div_ceil(k);
                (rayon::current_num_threads().min(passes).max(1) * k, 0)
            } else {
                (k, k)
            };
            check_memory(&net, batch, concurrent, staged, self.max_memory.as_deref())
        };
        // An asked seed-batch must fit; the default shrinks to what fits.
        let seed_batch = if self.seed_batch.is_some() {
            fits(most)?;
            most
        } else {
            let small = |k: usize| k as f64 * net.pass_bytes(batch) <= AUTO_SEED_BATCH_BYTES;
            let k = (1..=most)
                .rev()
                .find(|&k| (k == 1 || small(k)) && fits(k).is_ok())
                .unwrap_or(1);
            fits(k)?;
            k
        };
        let resolved = net
            .resolve()
            .map_err(|e| RunnerError::input(e.to_string()))?;
        sigprop_nets::build::check_inputs(&resolved, batch)
            .map_err(|e| RunnerError::input(e.to_string()))?;
        let jacobian = if wants_jacobian {
            let j = JacobianOptions {
                samples: self.jacobian_samples.unwrap_or(DEFAULT_JACOBIAN_SAMPLES),
                layers: self.jacobian_layers.clone().unwrap_or_default(),
            };
            j.check(&resolved, batch)
                .map_err(|e| RunnerError::input(e.to_string()))?;
            // What is measured, so one measurement has one fingerprint: the layers sorted,
            // the samples the batch holds.
            Some(JacobianOptions {
                samples: j.samples.min(batch),
                layers: j.layers_of(depth),
            })
        } else {
            None
        };
        let hist_layers = match &self.hist_layers {
            Some(h) => {
                if let Some(&l) = h.iter().find(|&&l| l == 0 || l > depth) {
                    return Err(bad(
                        "hist-layers",
                        l,
                        &format!("layers between 1 and {depth}"),
                    ));
                }
                h.clone()
            }
            None => {
                let mut h = vec![
                    1,
                    depth.div_ceil(4),
                    depth.div_ceil(2),
                    (3 * depth).div_ceil(4),
                    depth,
                ];
                h.dedup();
                h
            }
        };
        Ok(RunSpec {
            index,
            label,
            grid,
            net: resolved,
            batch,
            backend,
            seeds,
            hist_layers,
            jacobian,
            auto: None,
            auto_pending: None,
            precision,
            seed_batch,
        })
    }

    /// The file `inputs` names, read and checked (`None` without one): `standardize` needs
    /// it, and `input-corr`'s Gaussian pairs are the other inputs.
    fn input_file(&self) -> Result<Option<sigprop_nets::data::InputFile>, RunnerError> {
        // `none` lets a grid hold the Gaussian inputs next to a file.
        let Some(path) = self.inputs.as_ref().filter(|p| p.trim() != "none") else {
            if self.standardize == Some(true) {
                return Err(RunnerError::input(
                    "--standardize: it standardizes --inputs FILE; expected it with --inputs",
                ));
            }
            return Ok(None);
        };
        if self.arch_settings.contains_key("input-corr") {
            return Err(RunnerError::input(format!(
                "--inputs {path}: input-corr draws Gaussian pairs instead; expected one of the two"
            )));
        }
        sigprop_nets::data::InputFile::open(path, self.standardize.unwrap_or(false))
            .map(Some)
            .map_err(|e| RunnerError::input(e.to_string()))
    }

    /// The low-precision pass `dtype` and `loss-scale` ask for (`None` for f32): a loss
    /// scale needs a low-precision type, and a Jacobian is measured in f32 only.
    fn precision(&self, wants_jacobian: bool) -> Result<Option<PrecisionOptions>, RunnerError> {
        let dtype: Dtype = match &self.dtype {
            Some(d) => d
                .parse()
                .map_err(|_| bad("dtype", d, sigprop_nets::precision::DTYPE_ALLOWED))?,
            None => Dtype::F32,
        };
        let loss_scale: LossScale = match &self.loss_scale {
            Some(s) => s
                .parse()
                .map_err(|_| bad("loss-scale", s, sigprop_nets::precision::LOSS_SCALE_ALLOWED))?,
            None => LossScale::Off,
        };
        if dtype == Dtype::F32 {
            if loss_scale != LossScale::Off {
                return Err(RunnerError::input(format!(
                    "--loss-scale {loss_scale}: an f32 pass has no loss scale; expected it with --dtype bf16 or f16"
                )));
            }
            return Ok(None);
        }
        if wants_jacobian {
            return Err(RunnerError::input(format!(
                "--dtype {dtype}: the Jacobian spectra are measured in f32; expected no --jacobian with it"
            )));
        }
        Ok(Some(PrecisionOptions { dtype, loss_scale }))
    }
}

impl RunSpec {
    /// Refuse a low-precision pass in `command`, which measures in f32 only (`train`,
    /// `coord-check`, `bench`).
    pub fn refuse_precision(&self, command: &str) -> Result<(), RunnerError> {
        match self.precision {
            Some(p) => Err(RunnerError::input(format!(
                "--dtype {}: sigprop {command} runs in f32; expected --dtype with run, compare, \
                 recommend or a suite",
                p.dtype
            ))),
            None => Ok(()),
        }
    }

    /// Refuse `--inputs` in `command`, which trains on its task's data (`coord-check`):
    /// `--task data --data FILE.csv` is its own real data.
    pub fn refuse_inputs(&self, command: &str) -> Result<(), RunnerError> {
        match &self.net.config.inputs {
            Some(f) => Err(RunnerError::input(format!(
                "--inputs {}: sigprop {command} trains on its task's data (--task data --data \
                 FILE.csv); expected --inputs with run, compare, recommend, bench, a suite, or \
                 train and recommend --train with --task teacher",
                f.path
            ))),
            None => Ok(()),
        }
    }

    /// Whether `init = "auto"` still waits for its recommendation.
    pub fn auto_is_pending(&self) -> bool {
        self.auto_pending.is_some()
    }

    /// The configuration as it runs with `auto`'s pick as its initializer (the label names
    /// the pick, so charts and tables say what ran). Only for a configuration whose
    /// `init = "auto"` is pending.
    pub fn with_auto(&self, auto: AutoChoice) -> Result<RunSpec, RunnerError> {
        let Some(settings) = &self.auto_pending else {
            return Err(RunnerError::Internal(format!(
                "configuration {} has no pending init auto",
                self.index
            )));
        };
        let mut chosen = (**settings).clone();
        chosen.init = Some(auto.choice.clone());
        let label = format!("{} = {}", self.label, auto.choice);
        let mut spec = chosen.to_run(self.index, label, self.grid.clone())?;
        spec.auto = Some(auto);
        Ok(spec)
    }
}

/// What `init = "auto"` resolved to, kept with the run (manifest `auto`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoChoice {
    /// The chosen spec.
    pub choice: String,
    /// Its bias spec.
    pub bias_init: String,
    /// Why, in one line.
    pub why: String,
    /// The ranking it came from: `rank init verdict` per candidate.
    pub ranking: Vec<String>,
}

/// Inputs whose Jacobians are taken when `jacobian-samples` is not given.
pub const DEFAULT_JACOBIAN_SAMPLES: usize = 8;

/// The default `max-memory`: this fraction of the machine's physical memory.
pub const DEFAULT_MEMORY_FRACTION: f64 = 0.8;

/// Bytes from `123`, `512M`, `8G`, `8GiB`, `1.5T` (K, M, G, T are powers of 1024).
pub fn parse_bytes(text: &str) -> Option<f64> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_uppercase()),
        _ => (t, ' '),
    };
    let power = match unit {
        ' ' => 0,
        'K' => 1,
        'M' => 2,
        'G' => 3,
        'T' => 4,
        _ => return None,
    };
    let x: f64 = num.trim().parse().ok()?;
    (x.is_finite() && x > 0.0).then(|| x * 1024f64.powi(power))
}

/// Physical memory of this machine in bytes (Linux `/proc/meminfo`), if known.
pub fn machine_memory() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// Bytes in a short human form (`6.4 TiB`).
pub fn human_bytes(b: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut x = b;
    let mut i = 0;
    while x >= 1024.0 && i + 1 < units.len() {
        x /= 1024.0;
        i += 1;
    }
    if i == units.len() - 1 && x >= 1024.0 {
        return format!("{b:.2e} B");
    }
    format!("{} {}", crate::format::fmt_sig(x, 3), units[i])
}

/// Refuse a network whose probed passes would not fit: the estimate of one pass
/// ([`NetConfig::pass_bytes`]) times the passes that run at once, against `max_memory`
/// (default: [`DEFAULT_MEMORY_FRACTION`] of the machine's memory; no limit where that is
/// unknown), plus the weights of the `staged` seeds of the next pass, on the host and on the
/// device (estimated as this network's).
fn check_memory(
    net: &NetConfig,
    batch: usize,
    concurrent: usize,
    staged: usize,
    max_memory: Option<&str>,
) -> Result<(), RunnerError> {
    let (limit, whence) = match max_memory {
        Some(text) => (
            parse_bytes(text).ok_or_else(|| {
                bad(
                    "max-memory",
                    text,
                    "a size such as 8G, 512M or a number of bytes (K, M, G, T are powers of 1024)",
                )
            })?,
            "max-memory".to_string(),
        ),
        None => match machine_memory() {
            Some(m) => (
                DEFAULT_MEMORY_FRACTION * m,
                format!(
                    "{}% of this machine's {}; set max-memory to change it",
                    DEFAULT_MEMORY_FRACTION * 100.0,
                    human_bytes(m)
                ),
            ),
            None => return Ok(()),
        },
    };
    let one = net.pass_bytes(batch);
    let ahead = 2.0 * net.weight_bytes() * staged as f64;
    let need = one * concurrent as f64 + ahead + sigprop_nets::WORKSPACE_BYTES;
    if need > limit {
        let passes = if concurrent > 1 && staged > 0 {
            format!(
                " ({} a seed x {concurrent} seeds in one pass + {} for the next pass's \
                 weights, filled and uploaded meanwhile; a smaller seed-batch needs less)",
                human_bytes(one),
                human_bytes(ahead)
            )
        } else if concurrent > 1 {
            format!(
                " ({} a seed's pass x {concurrent} seeds at once; a smaller seed-batch or \
                 fewer threads need less)",
                human_bytes(one)
            )
        } else if staged > 0 {
            format!(
                " ({} a pass + {} for the next run's weights, filled and uploaded meanwhile)",
                human_bytes(one),
                human_bytes(ahead)
            )
        } else {
            String::new()
        };
        return Err(RunnerError::input(format!(
            "depth={} width={} batch={}: the probed passes need about {}{passes}, more than \
             the limit of {} ({whence})",
            net.depth,
            net.width,
            batch,
            human_bytes(need),
            human_bytes(limit)
        )));
    }
    Ok(())
}

/// The cross product of a grid: each key's list of values, in the order given.
pub fn expand_grid(
    base: &Settings,
    grid: &[(String, Vec<toml::Value>)],
) -> Result<Vec<RunSpec>, RunnerError> {
    let mut combos: Vec<Vec<(String, toml::Value)>> = vec![Vec::new()];
    for (key, values) in grid {
        if values.is_empty() {
            return Err(RunnerError::input(format!("grid key {key} has no values")));
        }
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((key.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    combos
        .into_iter()
        .enumerate()
        .map(|(i, combo)| {
            let mut table = toml::Table::new();
            for (k, v) in &combo {
                table.insert(k.clone(), v.clone());
            }
            let over: Settings =
                toml::Value::Table(table)
                    .try_into()
                    .map_err(|e: toml::de::Error| {
                        RunnerError::input(format!("grid: {}", e.message()))
                    })?;
            let shown: Vec<(String, String)> = combo
                .iter()
                .map(|(k, v)| (k.clone(), value_text(v)))
                .collect();
            // A switch reads as its key (`qk-norm`, `no qk-norm`), not as `true`.
            let label = if shown.is_empty() {
                "base".to_string()
            } else {
                combo
                    .iter()
                    .zip(&shown)
                    .map(|((k, v), (_, text))| match v {
                        toml::Value::Boolean(true) => k.clone(),
                        toml::Value::Boolean(false) => format!("no {k}"),
                        // A model or inputs file reads as its name (grid.csv keeps the
                        // path): a legend is cut inside a long path.
                        _ if k == "model" || k == "inputs" => std::path::Path::new(text)
                            .file_name()
                            .map_or_else(|| text.clone(), |n| n.to_string_lossy().into_owned()),
                        _ => text.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(" / ")
            };
            base.overlay(&over).to_run(i, label, shown)
        })
        .collect()
}

/// A grid value as text (strings without quotes).
pub fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_keys_are_exactly_the_settings_fields() {
        // A struct literal without `..`: a field added and not listed here does not compile.
        let full = Settings {
            arch: Some("mlp".into()),
            init: Some("he-normal".into()),
            bias_init: Some("zeros".into()),
            sigma_b: Some(0.1),
            sigma_w2: Some(2.0),
            sigma_b2: Some(0.01),
            activation: Some("relu".into()),
            prune: Some("snip:sparsity=0.5".into()),
            depth: Some(2),
            width: Some(3),
            batch: Some(4),
            backend: Some("flex".into()),
            loss: Some("mse".into()),
            seeds: Some(2),
            seed: Some(1),
            hist_layers: Some(vec![1]),
            jacobian: Some(true),
            jacobian_samples: Some(2),
            jacobian_layers: Some(vec![1]),
            max_memory: Some("1G".into()),
            seed_batch: Some(2),
            dtype: Some("bf16".into()),
            loss_scale: Some("dynamic".into()),
            inputs: Some("x.npy".into()),
            standardize: Some(true),
            arch_settings: toml::Table::new(),
        };
        let v = toml::Value::try_from(&full).unwrap();
        let keys: Vec<&str> = v.as_table().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, KEYS);
        // No architecture's setting shadows a common key.
        for (s, _) in sigprop_nets::all_settings() {
            assert!(!KEYS.contains(&s.key), "{}", s.key);
        }
    }

    #[test]
    fn sizes_parse_in_powers_of_1024() {
        assert_eq!(parse_bytes("1000"), Some(1000.0));
        assert_eq!(parse_bytes("512M"), Some(512.0 * 1024.0 * 1024.0));
        assert_eq!(parse_bytes("8GiB"), Some(8.0 * 1024f64.powi(3)));
        assert_eq!(parse_bytes("1.5t"), Some(1.5 * 1024f64.powi(4)));
        for bad in ["", "G", "-1G", "nanG", "infG", "8X", "0"] {
            assert_eq!(parse_bytes(bad), None, "{bad:?}");
        }
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
        assert_eq!(human_bytes(7.0 * 1024f64.powi(4)), "7 TiB");
    }

    #[test]
    fn a_pass_that_cannot_fit_is_refused_before_anything_is_built() {
        let base = Settings {
            width: Some(100_000),
            batch: Some(100_000),
            ..Settings::default()
        };
        let e = base.to_run(0, "x".into(), vec![]).unwrap_err().to_string();
        // Either the machine's default limit or, where memory is unknown, nothing: on
        // Linux the default applies and names the flag.
        if machine_memory().is_some() {
            assert!(e.contains("need about") && e.contains("max-memory"), "{e}");
        }
        let small = Settings {
            max_memory: Some("1M".into()),
            ..Settings::default()
        };
        let e = small.to_run(0, "x".into(), vec![]).unwrap_err().to_string();
        assert!(
            e.contains("more than the limit of 1 MiB (max-memory)"),
            "{e}"
        );
        let bad = Settings {
            max_memory: Some("lots".into()),
            ..Settings::default()
        };
        let e = bad.to_run(0, "x".into(), vec![]).unwrap_err().to_string();
        assert!(e.starts_with("max-memory=lots is not allowed"), "{e}");
        // The defaults fit in 1 GiB.
        let ok = Settings {
            max_memory: Some("1G".into()),
            ..Settings::default()
        };
        assert!(ok.to_run(0, "x".into(), vec![]).is_ok());
    }

    #[test]
    fn a_gpu_run_counts_the_next_runs_weights_staged_meanwhile() {
        // depth 50, width 512, batch 1: weights 50 x 512^2 f32 (50 MiB) dominate the pass
        // (4 copies, 200 MiB; with the process's 32 MiB workspace, 232 MiB); a GPU run adds
        // a host and a device copy of the next run's. One seed, so the CPU run has one pass
        // at a time too.
        let at = |backend: &str| Settings {
            depth: Some(50),
            width: Some(512),
            batch: Some(1),
            seeds: Some(1),
            backend: Some(backend.into()),
            max_memory: Some("240M".into()),
            ..Settings::default()
        };
        assert!(at("flex").to_run(0, "x".into(), vec![]).is_ok());
        let e = at("wgpu")
            .to_run(0, "x".into(), vec![])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("+ 100 MiB for the next run's weights") && e.contains("(max-memory)"),
            "{e}"
        );
    }

    #[test]
    fn a_gpu_pass_batches_as_many_seeds_as_fit_and_an_asked_batch_must_fit() {
        // As above: a seed's pass about 200 MiB, its weights staged ahead 100 MiB; 1000 MiB
        // hold three seeds (900 MiB), not four.
        let at = |backend: &str, arch: &str, seed_batch: Option<usize>| Settings {
            arch: Some(arch.into()),
            depth: Some(50),
            width: Some(512),
            batch: Some(1),
            seeds: Some(8),
            backend: Some(backend.into()),
            max_memory: Some("1000M".into()),
            seed_batch,
            ..Settings::default()
        };
        let k = |s: Settings| s.to_run(0, "x".into(), vec![]).map(|r| r.seed_batch);
        assert_eq!(k(at("wgpu", "mlp", None)).unwrap(), 3);
        assert_eq!(k(at("wgpu", "mlp", Some(2))).unwrap(), 2);
        let e = k(at("wgpu", "mlp", Some(4))).unwrap_err().to_string();
        assert!(
            e.contains("x 4 seeds in one pass") && e.contains("seed-batch"),
            "{e}"
        );
        // A CPU backend runs one seed a pass unless asked; an architecture that cannot
        // batch runs one whatever is asked; never more seeds than there are.
        assert_eq!(k(at("flex", "mlp", None)).unwrap(), 1);
        let mut cnn = at("wgpu", "cnn", Some(4));
        (cnn.depth, cnn.width) = (Some(3), Some(8));
        assert_eq!(k(cnn).unwrap(), 1);
        let mut two = at("wgpu", "mlp", Some(8));
        two.seeds = Some(2);
        assert_eq!(k(two).unwrap(), 2);
        // The default stops at 2 GiB a pass: width 2048 (weights 800 MiB a seed) one seed
        // a pass, unless asked.
        let mut wide = at("wgpu", "mlp", None);
        (wide.width, wide.max_memory) = (Some(2048), Some("100G".into()));
        assert_eq!(k(wide.clone()).unwrap(), 1);
        wide.seed_batch = Some(4);
        assert_eq!(k(wide).unwrap(), 4);
        // A Jacobian's seeds run alone: an asked batch is not counted against memory.
        let mut jac = at("wgpu", "mlp", Some(4));
        jac.jacobian = Some(true);
        assert_eq!(k(jac).unwrap(), 1);
        let e = k(at("wgpu", "mlp", Some(0))).unwrap_err().to_string();
        assert!(e.starts_with("seed-batch=0 is not allowed"), "{e}");
    }

    #[test]
    fn non_finite_and_huge_values_are_refused_not_dropped() {
        for (s, key) in [
            (
                Settings {
                    sigma_b: Some(f64::NAN),
                    ..Settings::default()
                },
                "sigma-b=NaN",
            ),
            (
                Settings {
                    sigma_b2: Some(f64::INFINITY),
                    ..Settings::default()
                },
                "sigma-b2=inf",
            ),
            (
                Settings {
                    sigma_w2: Some(f64::NAN),
                    ..Settings::default()
                },
                "sigma-w2=NaN",
            ),
            (
                Settings {
                    seeds: Some(99_999_999_999),
                    ..Settings::default()
                },
                "seeds=99999999999",
            ),
        ] {
            // Through the overlay the grid and the CLI use: NaN must survive it.
            let merged = Settings::default().overlay(&s);
            let e = merged
                .to_run(0, "x".into(), vec![])
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(key), "{e}");
        }
    }
}
