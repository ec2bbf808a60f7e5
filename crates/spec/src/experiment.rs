//! An experiment: named configurations to run, from a suite file or from CLI flags.
//!
//! A suite file has `name`, `description`, a `[base]` table of [`Settings`], a `[grid]`
//! table whose keys are settings and whose values are lists (the cross product is run, in
//! the order written; a single value sets that key for the whole grid). Several `[[grid]]`
//! tables run one after the other, each its own cross product over the same base (a suite
//! comparing a residual MLP at width 256 with a residual CNN at 32 channels). A grid of exactly two numeric keys also gets heatmaps, the first key
//! on x. Unknown keys anywhere are errors naming the key and line.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::RunnerError;
use crate::settings::{RunSpec, Settings, expand_grid};

/// A validated experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    /// Name (the default output folder's stem).
    pub name: String,
    /// What it shows.
    pub description: String,
    /// The configurations.
    pub runs: Vec<RunSpec>,
    /// The command line that reproduces it.
    pub command: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    base: Settings,
    #[serde(default)]
    grid: Grids,
    /// Train the configurations instead of probing them (`sigprop train`'s settings).
    train: Option<crate::tables::TrainTable>,
    /// Run the coordinate check on the base instead (`sigprop coord-check`'s settings).
    coord: Option<crate::tables::CoordTable>,
}

/// What a suite file asks for besides its configurations.
#[derive(Debug, Clone, PartialEq)]
pub enum SuiteKind {
    /// The probed pass over seeds (`[base]` and `[grid]` only).
    Probe,
    /// Training (a `[train]` table).
    Train(Box<crate::tables::TrainTable>),
    /// The coordinate check of the base configuration (a `[coord]` table).
    Coord(Box<crate::tables::CoordTable>, Box<Settings>),
}

/// `[grid]` or several `[[grid]]`.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a [grid] table of settings, or [[grid]] tables")]
enum Grids {
    One(toml::Table),
    Many(Vec<toml::Table>),
}

impl Default for Grids {
    fn default() -> Self {
        Grids::One(toml::Table::new())
    }
}

impl Experiment {
    /// Build from a base and a grid (CLI `run` and `compare` use this too).
    pub fn from_grid(
        name: &str,
        description: &str,
        base: &Settings,
        grid: Vec<(String, Vec<toml::Value>)>,
        command: String,
    ) -> Result<Experiment, RunnerError> {
        Self::from_grids(name, description, base, vec![grid], command)
    }

    /// Several grids over one base, run one after the other (configurations numbered on).
    pub fn from_grids(
        name: &str,
        description: &str,
        base: &Settings,
        grids: Vec<Vec<(String, Vec<toml::Value>)>>,
        command: String,
    ) -> Result<Experiment, RunnerError> {
        let mut runs = Vec::new();
        for grid in &grids {
            for mut run in expand_grid(base, grid)? {
                run.index = runs.len();
                runs.push(run);
            }
        }
        Ok(Experiment {
            name: name.to_string(),
            description: description.to_string(),
            runs,
            command,
        })
    }

    /// The configurations of `grids` over `base` under each parametrization of `kinds` (none:
    /// `base` as it is). A depth parametrization sets the branches' multiplier of what it
    /// trains; with several parametrizations each configuration comes once under each, the
    /// parametrization first in its label and its grid (`param`).
    pub fn under_params(
        name: &str,
        description: &str,
        base: &Settings,
        grids: Vec<Vec<(String, Vec<toml::Value>)>>,
        command: String,
        kinds: &[sigprop_nets::ParamKind],
    ) -> Result<Experiment, RunnerError> {
        if kinds.is_empty() {
            return Self::from_grids(name, description, base, grids, command);
        }
        let mut runs = Vec::new();
        for &kind in kinds {
            let under = base.under_param(kind)?;
            let exp = Self::from_grids(name, description, &under, grids.clone(), String::new())?;
            for mut run in exp.runs {
                // A grid that varies branch-scale must not undo what a depth
                // parametrization sets.
                let have = run.net.config.arch.branch_scale();
                if let Some(want) = kind.branch_scale().filter(|&w| have != Some(w)) {
                    return Err(RunnerError::input(format!(
                        "configuration \"{}\": --param {kind} sets branch-scale {want}, but it \
                         has branch-scale {}; expected no branch-scale with it",
                        run.label,
                        have.map_or("none".to_string(), |b| b.to_string())
                    )));
                }
                if kind.unit_weights()
                    && !matches!(run.net.weight_init, sigprop_init::Scheme::Normal { mean, std } if mean == 0.0 && std == 1.0)
                {
                    return Err(RunnerError::input(format!(
                        "configuration \"{}\": --param {kind} draws every weight from N(0, 1), \
                         but it has init {}; expected no init with it (or normal)",
                        run.label, run.net.config.weight_init
                    )));
                }
                run.index = runs.len();
                if kinds.len() > 1 {
                    run.grid.insert(0, ("param".to_string(), kind.to_string()));
                    run.label = match run.label.as_str() {
                        "base" => kind.to_string(),
                        l => format!("{kind} / {l}"),
                    };
                }
                runs.push(run);
            }
        }
        Ok(Experiment {
            name: name.to_string(),
            description: description.to_string(),
            runs,
            command,
        })
    }

    /// Read and parse a suite file into its experiment and what to do with it (named by its
    /// file's stem; errors name the file).
    pub fn parse_suite_file(
        path: &Path,
        command: String,
    ) -> Result<(Experiment, SuiteKind), RunnerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RunnerError::input(format!("suite file {}: {e}", path.display())))?;
        Self::parse_suite_in(
            &text,
            &path.display().to_string(),
            path.file_stem().and_then(|s| s.to_str()).unwrap_or("suite"),
            command,
            path.parent(),
        )
    }

    /// Parse suite text; `origin` names it in errors.
    pub fn from_suite_text(
        text: &str,
        origin: &str,
        stem: &str,
        command: String,
    ) -> Result<Experiment, RunnerError> {
        Self::parse_suite(text, origin, stem, command).map(|(e, _)| e)
    }

    /// Parse suite text into its experiment and what to do with it.
    pub fn parse_suite(
        text: &str,
        origin: &str,
        stem: &str,
        command: String,
    ) -> Result<(Experiment, SuiteKind), RunnerError> {
        Self::parse_suite_in(text, origin, stem, command, None)
    }

    /// [`Experiment::parse_suite`] of a file in the folder `dir`, against which a relative
    /// `inputs` or `model` path is read (as a `[train]` table's `data`).
    fn parse_suite_in(
        text: &str,
        origin: &str,
        stem: &str,
        command: String,
        dir: Option<&Path>,
    ) -> Result<(Experiment, SuiteKind), RunnerError> {
        let mut suite: SuiteFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| {
                let upto = &text.as_bytes()[..s.start.min(text.len())];
                upto.iter().filter(|&&b| b == b'\n').count() + 1
            });
            let at = line.map(|l| format!(" line {l}")).unwrap_or_default();
            RunnerError::input(format!(
                "{origin}{at}: {}",
                e.message().trim().replace('\n', " ")
            ))
        })?;
        let tables = match suite.grid {
            Grids::One(t) => vec![t],
            Grids::Many(ts) if ts.is_empty() => {
                return Err(RunnerError::input(format!(
                    "{origin}: grid has no tables; write [grid] or one [[grid]] per part"
                )));
            }
            Grids::Many(ts) => ts,
        };
        let mut tables = tables;
        if let Some(dir) = dir {
            let resolve = |p: &mut String| {
                if p.trim() != "none" && Path::new(p.as_str()).is_relative() {
                    *p = dir.join(p.as_str()).display().to_string();
                }
            };
            if let Some(p) = suite.base.inputs.as_mut() {
                resolve(p);
            }
            if let Some(toml::Value::String(p)) = suite.base.arch_settings.get_mut("model") {
                resolve(p);
            }
            // `inputs` and a model file's path, in every grid.
            for t in &mut tables {
                for key in ["inputs", "model"] {
                    match t.get_mut(key) {
                        Some(toml::Value::String(p)) => resolve(p),
                        Some(toml::Value::Array(a)) => {
                            for v in a {
                                if let toml::Value::String(p) = v {
                                    resolve(p);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        // A key that is no setting at all, named with its line (serde cannot: the
        // architectures' keys are read later, into the chosen architecture).
        let keys = suite
            .base
            .arch_settings
            .keys()
            .chain(tables.iter().flat_map(|t| t.keys()));
        if let Some(key) = keys.into_iter().find(|k| !crate::settings::is_key(k)) {
            let at = line_of(text, key)
                .map(|l| format!(" line {l}"))
                .unwrap_or_default();
            return Err(RunnerError::input(format!(
                "{origin}{at}: unknown key {key}; expected one of: {}",
                crate::settings::all_keys()
            )));
        }
        let grids: Vec<Vec<(String, Vec<toml::Value>)>> = tables
            .into_iter()
            .map(|t| {
                t.into_iter()
                    .map(|(k, v)| match v {
                        toml::Value::Array(a) => (k, a),
                        other => (k, vec![other]),
                    })
                    .collect()
            })
            .collect();
        let name = suite.name.unwrap_or_else(|| stem.to_string());
        let kind = match (suite.train, suite.coord) {
            (Some(_), Some(_)) => {
                return Err(RunnerError::input(format!(
                    "{origin}: [train] and [coord] in one suite; write one suite for each"
                )));
            }
            (Some(t), None) => SuiteKind::Train(Box::new(t)),
            (None, Some(c)) => {
                if grids.iter().any(|g| !g.is_empty()) {
                    return Err(RunnerError::input(format!(
                        "{origin}: a [coord] suite varies widths or depths in [coord]; it takes no [grid]"
                    )));
                }
                SuiteKind::Coord(Box::new(c), Box::new(suite.base.clone()))
            }
            (None, None) => SuiteKind::Probe,
        };
        let kinds = match &kind {
            SuiteKind::Train(t) => t
                .param_kinds()
                .map_err(|e| RunnerError::input(format!("{origin}: {e}")))?,
            _ => Vec::new(),
        };
        let exp = Self::under_params(
            &name,
            &suite.description,
            &suite.base,
            grids,
            command,
            &kinds,
        )
        .map_err(|e| match e {
            RunnerError::Input(m) => RunnerError::Input(format!("{origin}: {m}")),
            other => other,
        })?;
        Ok((exp, kind))
    }
}

/// The first line (1-based) of `text` that sets `key` (`key = ...`, bare or quoted).
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            [key.to_string(), format!("\"{key}\""), format!("'{key}'")]
                .iter()
                .any(|k| {
                    l.strip_prefix(k.as_str())
                        .is_some_and(|r| r.trim_start().starts_with('='))
                })
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Experiment, RunnerError> {
        Experiment::from_suite_text(text, "t.toml", "t", "sigprop suite t.toml".into())
    }

    #[test]
    fn a_grid_expands_to_its_cross_product_in_the_order_written() {
        let e = parse("[base]\ndepth = 3\nwidth = 8\n[grid]\nactivation = [\"tanh\", \"relu\"]\ninit = [\"he-normal\", \"orthogonal\", \"lecun-normal\"]\n").unwrap();
        assert_eq!(e.runs.len(), 6);
        assert_eq!(e.runs[0].label, "tanh / he-normal");
        assert_eq!(e.runs[5].label, "relu / lecun-normal");
        assert!(
            e.runs
                .iter()
                .all(|r| r.net.config.depth == 3 && r.net.config.width == 8)
        );
        assert_eq!(e.name, "t");
    }

    #[test]
    fn several_grids_run_one_after_the_other() {
        let e = parse(
            "[base]\ndepth = 3\n[[grid]]\narch = \"resmlp\"\nwidth = 16\nbranch-scale = [\"1\", \"rezero\"]\n[[grid]]\narch = \"rescnn\"\nwidth = 4\nimage-size = 4\nbranch-scale = [\"1\", \"rezero\"]\n",
        )
        .unwrap();
        assert_eq!(e.runs.len(), 4);
        let idx: Vec<usize> = e.runs.iter().map(|r| r.index).collect();
        assert_eq!(idx, [0, 1, 2, 3]);
        assert_eq!(e.runs[1].label, "resmlp / 16 / rezero");
        assert_eq!(e.runs[2].label, "rescnn / 4 / 4 / 1");
        assert_eq!(e.runs[3].net.config.width, 4);
        // image-size is a rescnn setting: in the resmlp grid it is refused by name.
        let err =
            parse("[[grid]]\narch = \"resmlp\"\nimage-size = 4\n[[grid]]\narch = \"rescnn\"\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("image-size is not a setting of arch resmlp"),
            "{err}"
        );
        let err = parse("grid = []\n").unwrap_err().to_string();
        assert!(err.contains("grid has no tables"), "{err}");
        let err = parse("grid = 3\n").unwrap_err().to_string();
        assert!(err.contains("a [grid] table of settings"), "{err}");
    }

    #[test]
    fn shorthands_become_specs() {
        let e = parse("[grid]\nsigma-w2 = [1.5]\nsigma-b2 = [0.04]\n").unwrap();
        assert_eq!(
            e.runs[0].net.config.weight_init,
            "variance-scaling:scale=1.5,distribution=normal"
        );
        assert_eq!(e.runs[0].net.config.bias_init, "normal:std=0.2");
        let e = parse("[base]\ninit = \"critical:sigma-b=0.3\"\nactivation = \"tanh\"\n").unwrap();
        assert_eq!(e.runs[0].net.config.bias_init, "normal:std=0.3");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key_and_line() {
        let e = parse("[base]\ndepth = 3\ndepht = 4\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("depht") && e.contains("line 3"), "{e}");
        let e = parse("[grid]\nwidht = [1, 2]\n").unwrap_err().to_string();
        assert!(e.contains("widht"), "{e}");
        let e = parse("[base]\nwidth = 0\n").unwrap_err().to_string();
        assert!(e.contains("width=0"), "{e}");
        let e = parse("[base]\ninit = \"he_norml\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("he_norml") && e.contains("he-normal"), "{e}");
        let e = parse("nmae = 3\n").unwrap_err().to_string();
        assert!(e.contains("nmae"), "{e}");
    }

    mod fuzz {
        //! Fuzz target over suite TOML (proptest, a fixed number of cases): any text is a
        //! suite or one error line, never a panic; a suite that parses also validates (every
        //! configuration resolved, sizes and memory checked) without panicking.
        use super::parse;
        use proptest::prelude::*;

        /// Every key a suite takes (the settings' own list and every architecture's), and
        /// some it does not.
        fn keys() -> Vec<String> {
            let mut keys: Vec<String> = crate::settings::all_keys()
                .split(", ")
                .map(str::to_string)
                .collect();
            keys.extend(["depht".to_string(), String::new()]);
            keys
        }

        /// Names a value may take: every architecture, activation, initializer,
        /// normalization, pruning method and backend, and some specs that are wrong.
        fn names() -> Vec<String> {
            let lists: [&[&str]; 6] = [
                sigprop_nets::ARCH_NAMES,
                sigprop_init::ACTIVATION_NAMES,
                sigprop_init::SCHEME_NAMES,
                sigprop_nets::NORM_NAMES,
                sigprop_nets::PRUNE_NAMES,
                sigprop_nets::BACKEND_NAMES,
            ];
            let mut names: Vec<String> = lists
                .iter()
                .flat_map(|l| l.iter())
                .map(|s| s.to_string())
                .collect();
            names.extend(
                [
                    "critical:sigma-b=0.3",
                    "snip:sparsity=0.5",
                    "cross-entropy",
                    "mse",
                    "post",
                    "1/sqrt(L)",
                    "rezero",
                    "1K",
                    "2G",
                    "normal:std=nan",
                    "variance-scaling:scale=-1",
                    "sparse:sparsity=2",
                ]
                .map(str::to_string),
            );
            names
        }

        fn scalar() -> impl Strategy<Value = String> {
            prop_oneof![
                (0u64..6).prop_map(|x| x.to_string()),
                (1u64..40).prop_map(|x| x.to_string()),
                Just("18446744073709551615".to_string()),
                Just("99999999999".to_string()),
                Just("-3".to_string()),
                any::<f64>().prop_map(|x| format!("{x:?}")),
                Just("nan".to_string()),
                Just("-inf".to_string()),
                Just("true".to_string()),
                proptest::sample::select(names()).prop_map(|s| format!("\"{s}\"")),
                "[ -~]{0,6}".prop_map(|s| format!("{s:?}")),
            ]
        }

        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                3 => scalar(),
                1 => proptest::collection::vec(scalar(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            ]
        }

        fn line() -> impl Strategy<Value = String> {
            prop_oneof![
                8 => (proptest::sample::select(keys()), value()).prop_map(|(k, v)| format!("{k} = {v}")),
                1 => Just("[base]".to_string()),
                1 => Just("[grid]".to_string()),
                1 => "[ -~]{0,20}",
            ]
        }

        proptest! {
            // A fixed seed and number of cases, so CI never fails by the draw;
            // `just fuzz` sets PROPTEST_RNG_SEED and PROPTEST_CASES to explore others.
            #![proptest_config(ProptestConfig {
                cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(400),
                failure_persistence: None,
                rng_seed: proptest::test_runner::RngSeed::Fixed(
                    std::env::var("PROPTEST_RNG_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_130),
                ),
                ..ProptestConfig::default()
            })]

            #[test]
            fn any_suite_text_parses_or_errors(
                head in proptest::collection::vec(line(), 0..3),
                base in proptest::collection::vec(line(), 0..6),
                grid in proptest::collection::vec(line(), 0..3),
            ) {
                let text = format!(
                    "{}\n[base]\n{}\n[grid]\n{}\n",
                    head.join("\n"),
                    base.join("\n"),
                    grid.join("\n")
                );
                // Parsing is the whole check here: whether a backend starts is the runner's.
                if let Err(e) = parse(&text) {
                    prop_assert!(!e.to_string().is_empty());
                }
            }
        }
    }

    #[test]
    fn every_suite_in_experiments_parses_with_its_kind() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
        let mut kinds = Vec::new();
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "toml") {
                let (exp, kind) = Experiment::parse_suite_file(&p, String::new())
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                assert!(!exp.runs.is_empty());
                match &kind {
                    SuiteKind::Train(t) => {
                        t.plan(&exp.runs, Some(&dir)).unwrap();
                    }
                    SuiteKind::Coord(c, _) => {
                        c.plan(Some(&dir)).unwrap();
                    }
                    SuiteKind::Probe => {}
                }
                kinds.push((p.file_stem().unwrap().to_string_lossy().to_string(), kind));
            }
        }
        let kind_of = |name: &str| &kinds.iter().find(|(n, _)| n == name).unwrap().1;
        assert!(matches!(kind_of("trainability"), SuiteKind::Train(_)));
        assert!(matches!(kind_of("mup-coord"), SuiteKind::Coord(..)));
        assert!(matches!(kind_of("he2015"), SuiteKind::Probe));
    }

    #[test]
    fn train_and_coord_tables_are_checked() {
        let suite = |extra: &str| {
            Experiment::parse_suite(
                &format!("[base]\ndepth = 3\nwidth = 8\n{extra}"),
                "t.toml",
                "t",
                String::new(),
            )
        };
        let (exp, kind) = suite(
            "[train]\nsteps = 7\nlr = [0.1, 0.2]\n[train.task]\nkind = \"mixture\"\nclasses = 3\n",
        )
        .unwrap();
        let SuiteKind::Train(t) = kind else {
            panic!("not a train suite")
        };
        let plan = t.plan(&exp.runs, None).unwrap();
        assert_eq!((plan.steps, plan.lrs.clone()), (7, vec![0.1, 0.2]));
        assert_eq!(plan.log_steps, vec![0, 1, 7]);
        assert_eq!(plan.task.outputs(), 3);
        // Unknown keys name themselves and their line.
        let e = suite("[train]\nstep = 7\n").unwrap_err().to_string();
        assert!(e.contains("line 5") && e.contains("step"), "{e}");
        let e = suite("[train.task]\nkind = \"mixture\"\nclases = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("clases"), "{e}");
        // Values are checked by the plan, naming the key.
        let (exp, kind) = suite("[train]\nsteps = 0\n").unwrap();
        let SuiteKind::Train(t) = kind else {
            panic!("not a train suite")
        };
        assert!(
            t.plan(&exp.runs, None)
                .unwrap_err()
                .to_string()
                .contains("--steps 0")
        );
        let e = suite("[train]\n[coord]\nwidths = [8, 16]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("one suite for each"), "{e}");
        let e =
            suite("[coord]\nwidths = [8, 16]\n[grid]\ninit = [\"he-normal\", \"lecun-normal\"]\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("takes no [grid]"), "{e}");
    }
}
