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
    /// Normalization: `none`, `batch`, `layer`, `rms` (mlp, resmlp, cnn).
    pub norm: Option<String>,
    /// Residual MLP: `pre` (inside the branch, default) or `post` (after the add).
    pub norm_position: Option<String>,
    /// Residual MLP: branch multiplier `1`, a number, `1/sqrt(L)`, `rezero`, `skipinit`.
    pub branch_scale: Option<String>,
    /// Residual MLP: `identity` (default) or `none` (no skip connection).
    pub shortcut: Option<String>,
    /// Refuse configurations whose probed pass is estimated to need more memory than this:
    /// bytes, or a number with `K`, `M`, `G`, `T` (powers of 1024, optional `iB`/`B`).
    /// Default: 80% of the machine's physical memory.
    pub max_memory: Option<String>,
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

/// Most seeds one configuration may run (each is a full probed pass, and the manifest
/// lists every one).
pub const MAX_SEEDS: u64 = 10_000;

fn bad(key: &str, value: impl std::fmt::Display, allowed: &str) -> RunnerError {
    RunnerError::input(format!("{key}={value} is not allowed; expected {allowed}"))
}

impl Settings {
    /// `other`'s fields where set, else `self`'s. A struct literal without `..`: a field
    /// added to [`Settings`] and forgotten here does not compile.
    pub fn overlay(&self, other: &Settings) -> Settings {
        macro_rules! pick {
            ($($f:ident),* $(,)?) => {
                Settings { $($f: other.$f.clone().or_else(|| self.$f.clone()),)* }
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
            depth,
            width,
            widths,
            batch,
            backend,
            loss,
            seeds,
            seed,
            hidden_init,
            branch_layers,
            kernel,
            image_size,
            groups,
            hist_layers,
            max_memory,
            norm,
            norm_position,
            branch_scale,
            shortcut,
        )
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
            (None, Some(b2)) if b2 >= 0.0 && b2.is_finite() => Some(b2.sqrt()),
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
        // A setting of another architecture is an error, never silently ignored.
        let given = [
            ("widths", self.widths.is_some()),
            ("branch-layers", self.branch_layers.is_some()),
            ("kernel", self.kernel.is_some()),
            ("image-size", self.image_size.is_some()),
            ("groups", self.groups.is_some()),
            ("hidden-init", self.hidden_init.is_some()),
            ("norm", self.norm.is_some()),
            ("norm-position", self.norm_position.is_some()),
            ("branch-scale", self.branch_scale.is_some()),
            ("shortcut", self.shortcut.is_some()),
        ];
        debug_assert!(
            given
                .iter()
                .all(|(k, _)| sigprop_nets::ARCH_KEYS.contains(k))
        );
        if let Some((key, _)) = given
            .iter()
            .find(|(key, set)| *set && !arch.own_keys().contains(key))
        {
            let takes = match arch.own_keys() {
                [] => "none".to_string(),
                keys => keys.join(", "),
            };
            return Err(RunnerError::input(format!(
                "{key} is not a setting of arch {arch}; its own settings are: {takes}"
            )));
        }
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
        if let Some(n) = &self.norm {
            net.norm = n
                .parse()
                .map_err(|e: sigprop_nets::NetError| RunnerError::input(e.to_string()))?;
        }
        if let Some(b) = &self.branch_scale {
            net.branch_scale = b
                .parse()
                .map_err(|e: sigprop_nets::NetError| RunnerError::input(e.to_string()))?;
        }
        if let Some(c) = &self.shortcut {
            net.shortcut = c
                .parse()
                .map_err(|e: sigprop_nets::NetError| RunnerError::input(e.to_string()))?;
        }
        if let Some(p) = &self.norm_position {
            net.norm_position = p
                .parse()
                .map_err(|e: sigprop_nets::NetError| RunnerError::input(e.to_string()))?;
        }
        // On a CPU backend the seeds of a configuration run at the same time.
        let concurrent = if backend.is_cpu() {
            rayon::current_num_threads().min(seeds.len()).max(1)
        } else {
            1
        };
        check_memory(&net, batch, concurrent, self.max_memory.as_deref())?;
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
    format!("{} {}", crate::summary::fmt_sig(x, 3), units[i])
}

/// Refuse a network whose probed passes would not fit: the estimate of one pass
/// ([`NetConfig::pass_bytes`]) times the passes that run at once, against `max_memory`
/// (default: [`DEFAULT_MEMORY_FRACTION`] of the machine's memory; no limit where that is
/// unknown).
fn check_memory(
    net: &NetConfig,
    batch: usize,
    concurrent: usize,
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
    let need = one * concurrent as f64;
    if need > limit {
        let passes = if concurrent > 1 {
            format!(
                " ({} a pass x {concurrent} seeds at once)",
                human_bytes(one)
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

#[cfg(test)]
mod tests {
    use super::*;

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
