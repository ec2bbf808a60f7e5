//! Settings: the parameters of one configuration, and how a grid expands into many.
//!
//! Both the CLI flags and a suite's `[base]` / `[grid]` tables fill the same [`Settings`]
//! (every field optional, unknown keys rejected); [`Settings::to_run`] turns one into a
//! validated [`RunSpec`] with defaults applied. This is the single place where user input
//! becomes a typed experiment: the CLI only collects arguments.

use serde::{Deserialize, Serialize};
use sigprop_init::{Activation, Scheme};
use sigprop_nets::{Arch, BackendKind, Loss, NetConfig};

use crate::error::RunnerError;

/// Every key a configuration may set, as in `[base]` and `[grid]` of a suite file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// `mlp`, `resmlp`, `cnn`, `rnn`.
    pub arch: Option<String>,
    /// Weight initializer spec.
    pub init: Option<String>,
    /// Bias initializer spec (default `zeros`).
    pub bias_init: Option<String>,
    /// Shorthand for `bias-init = "normal:std=X"` (0 gives zeros).
    pub sigma_b: Option<f64>,
    /// Shorthand for `init = "variance-scaling:scale=X,distribution=normal"`: W ~ N(0, X / fan_in).
    pub sigma_w2: Option<f64>,
    /// Shorthand for `sigma-b = sqrt(X)`.
    pub sigma_b2: Option<f64>,
    /// Activation spec.
    pub activation: Option<String>,
    /// Layers, blocks or time steps.
    pub depth: Option<usize>,
    /// Units or channels.
    pub width: Option<usize>,
    /// MLP widths N_0..N_depth.
    pub widths: Option<Vec<usize>>,
    /// Batch size.
    pub batch: Option<usize>,
    /// `flex`, `ndarray`, `wgpu`, `cuda`.
    pub backend: Option<String>,
    /// `projection`, `mse`, `cross-entropy`.
    pub loss: Option<String>,
    /// Number of seeds: 0..seeds-1.
    pub seeds: Option<u64>,
    /// A single seed (overrides `seeds`).
    pub seed: Option<u64>,
    /// RNN hidden-to-hidden initializer.
    pub hidden_init: Option<String>,
    /// Residual MLP: linear layers per branch.
    pub branch_layers: Option<usize>,
    /// CNN kernel size.
    pub kernel: Option<usize>,
    /// CNN image side.
    pub image_size: Option<usize>,
    /// CNN groups.
    pub groups: Option<usize>,
    /// Layers that get histograms (default: 1, a quarter, half, three quarters, last).
    pub hist_layers: Option<Vec<usize>>,
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
    /// The network.
    pub net: NetConfig,
    /// Batch size.
    pub batch: usize,
    /// Backend.
    pub backend: BackendKind,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Layers with histograms.
    pub hist_layers: Vec<usize>,
}

/// Default values of the quick single run.
pub mod defaults {
    /// Depth.
    pub const DEPTH: usize = 20;
    /// Width.
    pub const WIDTH: usize = 256;
    /// Batch.
    pub const BATCH: usize = 128;
    /// Seeds.
    pub const SEEDS: u64 = 3;
}

fn bad(key: &str, value: impl std::fmt::Display, allowed: &str) -> RunnerError {
    RunnerError::input(format!("{key}={value} is not allowed; expected {allowed}"))
}

impl Settings {
    /// `other`'s fields where set, else `self`'s.
    pub fn overlay(&self, other: &Settings) -> Settings {
        let a = serde_json::to_value(self).unwrap_or_default();
        let b = serde_json::to_value(other).unwrap_or_default();
        let mut merged = a.as_object().cloned().unwrap_or_default();
        for (k, v) in b.as_object().cloned().unwrap_or_default() {
            if !v.is_null() {
                merged.insert(k, v);
            }
        }
        serde_json::from_value(serde_json::Value::Object(merged)).unwrap_or_default()
    }

    /// Apply defaults, expand shorthands, validate, and build the run.
    pub fn to_run(
        &self,
        index: usize,
        label: String,
        grid: Vec<(String, String)>,
    ) -> Result<RunSpec, RunnerError> {
        let arch: Arch = self
            .arch
            .as_deref()
            .unwrap_or("mlp")
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
        let scheme: Scheme = init
            .parse()
            .map_err(|e| RunnerError::input(format!("--init: {e}")))?;
        let sigma_b = match (self.sigma_b, self.sigma_b2) {
            (Some(_), Some(_)) => {
                return Err(RunnerError::input(
                    "sigma-b and sigma-b2 both given; use one",
                ));
            }
            (Some(b), None) => Some(b),
            (None, Some(b2)) if b2 >= 0.0 => Some(b2.sqrt()),
            (None, Some(b2)) => return Err(bad("sigma-b2", b2, "a number >= 0")),
            (None, None) => None,
        };
        if let Some(b) = sigma_b.filter(|b| !(*b >= 0.0 && b.is_finite())) {
            return Err(bad("sigma-b", b, "a number >= 0"));
        }
        // A critical initialization is defined together with its bias variance: another
        // bias would silently build a network that is not at the edge of chaos.
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
            (None, None) => match scheme.is_critical() {
                Some((sb, _)) if sb > 0.0 => format!("normal:std={sb}"),
                _ => "zeros".into(),
            },
        };
        bias_init
            .parse::<Scheme>()
            .map_err(|e| RunnerError::input(format!("--bias-init: {e}")))?;
        let depth = self.depth.unwrap_or(defaults::DEPTH);
        let width = self.width.unwrap_or(defaults::WIDTH);
        let batch = self.batch.unwrap_or(defaults::BATCH);
        for (key, v) in [("depth", depth), ("width", width), ("batch", batch)] {
            if v == 0 {
                return Err(bad(key, 0, "a whole number > 0"));
            }
        }
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
            (None, Some(0)) => return Err(bad("seeds", 0, "a whole number > 0")),
            (None, Some(n)) => (0..n).collect(),
            (None, None) => (0..defaults::SEEDS).collect(),
        };
        let mut net = NetConfig::new(arch, depth, width, &activation, &init);
        net.widths = self.widths.clone();
        net.bias_init = bias_init;
        net.loss = loss;
        if let Some(h) = &self.hidden_init {
            net.hidden_init = h.clone();
        }
        if let Some(m) = self.branch_layers {
            net.branch_layers = m;
        }
        if let Some(k) = self.kernel {
            net.kernel = k;
        }
        if let Some(s) = self.image_size {
            net.image_size = s;
        }
        if let Some(g) = self.groups {
            net.groups = g;
        }
        net.resolve()
            .map_err(|e| RunnerError::input(e.to_string()))?;
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
            net,
            batch,
            backend,
            seeds,
            hist_layers,
        })
    }
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
            let label = if shown.is_empty() {
                "base".to_string()
            } else {
                shown
                    .iter()
                    .map(|(_, v)| v.as_str())
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
