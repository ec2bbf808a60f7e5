//! The results store: one record per run (configuration x seed) under `OUT/runs/`, named
//! by the run's fingerprint, written atomically the moment the run finishes. Every CSV,
//! chart and report of a folder is derived from its records, so an interrupted suite keeps
//! every finished run, `--resume` skips them, shards of a suite write disjoint records and
//! `sigprop merge` derives the same bytes from their union as one machine would.
//!
//! - The fingerprint is the 128-bit XXH3 hash of the run's identity written as JSON: the
//!   store version, the network with its initializers and activation in canonical spec
//!   form, the batch, the backend, the histogram layers (the first seed of a configuration
//!   draws the histograms) and the seed. Nothing positional (grid index, label, suite
//!   name) enters it, so it is stable across runs, machines and grid reorderings.
//! - A record is JSON: the fingerprint, seed, device, phase times, LSUV rescalings, and the
//!   run's `layers.csv` rows and histogram rows as CSV text (floats printed shortest
//!   round-trip and read back exactly, NaN and infinities included).
//! - `experiment.json` names the suite and its configurations; a folder holding another
//!   suite is never mixed into (`--resume`, `merge`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sigprop_nets::{BackendKind, NetConfig, PhaseTimes};

use crate::error::RunnerError;
use crate::experiment::Experiment;
use crate::output::{plain_csv, write_atomic};
use crate::rows::{HistRow, LayerRow, LayerStats, RunCols, SppCols, TheoryCols, TokenCols};
use crate::settings::RunSpec;

/// Version of the record format and of the fingerprint's identity.
pub const STORE_VERSION: u32 = 1;
/// The records' folder inside an output folder.
pub const RUNS_DIR: &str = "runs";
/// The suite a folder holds.
pub const EXPERIMENT_FILE: &str = "experiment.json";

/// Everything that decides a run's numbers.
#[derive(Serialize)]
struct Identity<'a> {
    store: u32,
    net: &'a NetConfig,
    batch: usize,
    backend: BackendKind,
    hist_layers: &'a [usize],
    seed: u64,
}

/// One run of a configuration: its seed and whether it draws the histograms.
#[derive(Debug, Clone, PartialEq)]
pub struct RunKey {
    /// Configuration index.
    pub config: usize,
    /// Seed.
    pub seed: u64,
    /// The configuration's first seed draws the histograms.
    pub hist: bool,
    /// Fingerprint (32 hex digits).
    pub fingerprint: String,
}

/// The network of `spec` with its specs in canonical form (`xavier-normal:gain=1` and
/// `xavier-normal` are one network).
fn canonical_net(spec: &RunSpec) -> NetConfig {
    let mut net = spec.net.clone();
    if let Ok(r) = spec.net.resolve() {
        net.weight_init = r.weight_init.to_string();
        net.bias_init = r.bias_init.to_string();
        net.activation = r.activation.to_string();
    }
    net
}

/// The fingerprint of seed `seed` of `spec` (`hist`: it draws the histograms).
pub fn fingerprint(spec: &RunSpec, seed: u64, hist: bool) -> String {
    let net = canonical_net(spec);
    let id = Identity {
        store: STORE_VERSION,
        net: &net,
        batch: spec.batch,
        backend: spec.backend,
        hist_layers: if hist { &spec.hist_layers } else { &[] },
        seed,
    };
    // A struct of strings and numbers always serializes.
    let text = serde_json::to_string(&id).unwrap_or_default();
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(text.as_bytes()))
}

/// Every run of `exp`, configurations in order, seeds in order.
pub fn run_keys(exp: &Experiment) -> Vec<RunKey> {
    exp.runs
        .iter()
        .flat_map(|spec| {
            spec.seeds.iter().enumerate().map(move |(i, &seed)| RunKey {
                config: spec.index,
                seed,
                hist: i == 0 && !spec.hist_layers.is_empty(),
                fingerprint: fingerprint(spec, seed, i == 0 && !spec.hist_layers.is_empty()),
            })
        })
        .collect()
}

/// One finished run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// [`STORE_VERSION`].
    pub store: u32,
    /// The run's fingerprint.
    pub fingerprint: String,
    /// Seed.
    pub seed: u64,
    /// Device description.
    pub device: String,
    /// Phase times.
    pub init_s: f64,
    /// Forward and backward pass.
    pub forward_backward_s: f64,
    /// Statistics.
    pub stats_s: f64,
    /// LSUV rescalings summed over layers (LSUV only).
    pub lsuv_total: Option<usize>,
    /// sigma_w of a critical scheme.
    pub critical_sigma_w: Option<f64>,
    /// The run's layers.csv rows (without the configuration columns), as CSV.
    pub layers: String,
    /// Its histogram rows (the configuration's first seed only), as CSV.
    pub histograms: String,
}

impl RunRecord {
    /// The phase times.
    pub fn times(&self) -> PhaseTimes {
        PhaseTimes {
            init_s: self.init_s,
            forward_backward_s: self.forward_backward_s,
            stats_s: self.stats_s,
        }
    }

    /// The layers.csv rows, with the run id of configuration `config`.
    pub fn layer_rows(&self, config: usize) -> Result<Vec<LayerRow>, RunnerError> {
        let bad = |e: csv::Error| {
            RunnerError::input(format!("record {}: layer rows: {e}", self.fingerprint))
        };
        let mut rd = csv::Reader::from_reader(self.layers.as_bytes());
        let headers = rd.headers().map_err(bad)?.clone();
        rd.records()
            .map(|rec| {
                let rec = rec.map_err(bad)?;
                let stats: LayerStats = rec.deserialize(Some(&headers)).map_err(bad)?;
                let spp: SppCols = rec.deserialize(Some(&headers)).map_err(bad)?;
                let tokens: TokenCols = rec.deserialize(Some(&headers)).map_err(bad)?;
                let theory: TheoryCols = rec.deserialize(Some(&headers)).map_err(bad)?;
                Ok(LayerRow {
                    run: RunCols {
                        run_id: format!("c{config}-s{}", self.seed),
                        seed: self.seed,
                    },
                    stats,
                    spp,
                    tokens,
                    theory,
                })
            })
            .collect()
    }

    /// The histogram rows, labelled for configuration `config`.
    pub fn hist_rows(&self, config: usize, label: &str) -> Result<Vec<HistRow>, RunnerError> {
        let bad = |e: csv::Error| {
            RunnerError::input(format!("record {}: histograms: {e}", self.fingerprint))
        };
        let mut rd = csv::Reader::from_reader(self.histograms.as_bytes());
        rd.deserialize()
            .map(|r| {
                let mut h: HistRow = r.map_err(bad)?;
                h.config = config;
                h.label = label.to_string();
                Ok(h)
            })
            .collect()
    }

    /// The CSV text of `rows`.
    pub fn csv_of<R: Serialize>(rows: &[R]) -> Result<String, RunnerError> {
        String::from_utf8(plain_csv(rows)?).map_err(|e| RunnerError::Internal(e.to_string()))
    }
}

/// The path of the record `fingerprint` in output folder `dir`.
pub fn record_path(dir: &Path, fingerprint: &str) -> PathBuf {
    dir.join(RUNS_DIR).join(format!("{fingerprint}.json"))
}

/// Write `record` into `dir`'s store (atomically).
pub fn write_record(dir: &Path, record: &RunRecord) -> Result<(), RunnerError> {
    let text = serde_json::to_string(record).map_err(|e| RunnerError::Internal(e.to_string()))?;
    write_atomic(&record_path(dir, &record.fingerprint), text.as_bytes())
}

/// Parse the JSON file `path` as `what`; `None` where there is no file (or no folder).
fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
) -> Result<Option<T>, RunnerError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        // No folder there (yet): whether one can be made is the writer's question.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None);
        }
        Err(source) => {
            return Err(RunnerError::Io {
                action: "reading",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| RunnerError::input(format!("{}: not a sigprop {what}: {e}", path.display())))
}

/// Read the record `fingerprint` from `dir`, `None` if there is none.
pub fn read_record(dir: &Path, fingerprint: &str) -> Result<Option<RunRecord>, RunnerError> {
    let path = record_path(dir, fingerprint);
    let Some(record) = read_json::<RunRecord>(&path, "record")? else {
        return Ok(None);
    };
    if record.store != STORE_VERSION || record.fingerprint != fingerprint {
        return Err(RunnerError::input(format!(
            "{}: a record of store version {} for {}, expected version {STORE_VERSION} for {fingerprint}",
            path.display(),
            record.store,
            record.fingerprint
        )));
    }
    Ok(Some(record))
}

/// Whether `dir` holds the record `fingerprint`.
pub fn has_record(dir: &Path, fingerprint: &str) -> bool {
    record_path(dir, fingerprint).is_file()
}

/// Remove temporary files an interrupted writer left in `dir` and its store.
pub fn remove_stale_temporaries(dir: &Path) -> Result<(), RunnerError> {
    for d in [dir.to_path_buf(), dir.join(RUNS_DIR)] {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".tmp") {
                std::fs::remove_file(e.path()).map_err(|source| RunnerError::Io {
                    action: "removing",
                    path: e.path(),
                    source,
                })?;
            }
        }
    }
    Ok(())
}

/// The suite a folder holds: its name, configurations and the fingerprints of their runs
/// (computed when the suite ran, so a folder's runs never depend on reading floats back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredExperiment {
    /// [`STORE_VERSION`].
    pub store: u32,
    /// Suite name.
    pub name: String,
    /// What it shows.
    pub description: String,
    /// The command that last ran it into the folder.
    pub command: String,
    /// Its configurations.
    pub runs: Vec<RunSpec>,
    /// Per configuration, the fingerprint of each seed's run, seeds in order.
    pub fingerprints: Vec<Vec<String>>,
}

impl StoredExperiment {
    /// The stored form of `exp`.
    pub fn of(exp: &Experiment) -> StoredExperiment {
        let keys = run_keys(exp);
        let fingerprints = exp
            .runs
            .iter()
            .map(|spec| {
                keys.iter()
                    .filter(|k| k.config == spec.index)
                    .map(|k| k.fingerprint.clone())
                    .collect()
            })
            .collect();
        StoredExperiment {
            store: STORE_VERSION,
            name: exp.name.clone(),
            description: exp.description.clone(),
            command: exp.command.clone(),
            runs: exp.runs.clone(),
            fingerprints,
        }
    }

    /// Its runs, configurations in order, seeds in order, with the stored fingerprints.
    pub fn keys(&self) -> Vec<RunKey> {
        self.runs
            .iter()
            .zip(&self.fingerprints)
            .flat_map(|(spec, fps)| {
                spec.seeds
                    .iter()
                    .zip(fps)
                    .enumerate()
                    .map(|(i, (&seed, fp))| RunKey {
                        config: spec.index,
                        seed,
                        hist: i == 0 && !spec.hist_layers.is_empty(),
                        fingerprint: fp.clone(),
                    })
            })
            .collect()
    }

    /// The experiment back (its command: the one that first ran it).
    pub fn experiment(&self) -> Experiment {
        Experiment {
            name: self.name.clone(),
            description: self.description.clone(),
            runs: self.runs.clone(),
            command: self.command.clone(),
        }
    }

    /// `None` when `self` and `other` are the same suite (the same name, and
    /// configurations with the same labels, grid values and run fingerprints; description
    /// and command aside), else what differs first.
    pub fn differs_from(&self, other: &StoredExperiment) -> Option<String> {
        if self.name != other.name {
            return Some(format!(
                "suite \"{}\" against \"{}\"",
                other.name, self.name
            ));
        }
        if self.runs.len() != other.runs.len() {
            return Some(format!(
                "{} configurations against {}",
                other.runs.len(),
                self.runs.len()
            ));
        }
        let runs = self.runs.iter().zip(&self.fingerprints);
        for ((a, fa), (b, fb)) in runs.zip(other.runs.iter().zip(&other.fingerprints)) {
            if fa == fb && a.label == b.label && a.grid == b.grid {
                continue;
            }
            let what = if a.net != b.net {
                "network"
            } else if a.seeds != b.seeds {
                "seeds"
            } else if a.batch != b.batch {
                "batch"
            } else if a.backend != b.backend {
                "backend"
            } else if a.label != b.label || a.grid != b.grid {
                "grid values"
            } else {
                "histogram layers"
            };
            return Some(format!(
                "configuration {} (\"{}\"): its {what} differs",
                a.index, a.label
            ));
        }
        None
    }
}

/// Read `dir/experiment.json`, `None` if there is none.
pub fn read_experiment(dir: &Path) -> Result<Option<StoredExperiment>, RunnerError> {
    let path = dir.join(EXPERIMENT_FILE);
    let Some(stored) = read_json::<StoredExperiment>(&path, "experiment")? else {
        return Ok(None);
    };
    if stored.store != STORE_VERSION {
        return Err(RunnerError::input(format!(
            "{}: store version {}, this sigprop reads version {STORE_VERSION}",
            path.display(),
            stored.store
        )));
    }
    Ok(Some(stored))
}

/// Write `dir/experiment.json`.
pub fn write_experiment(dir: &Path, stored: &StoredExperiment) -> Result<(), RunnerError> {
    let text =
        serde_json::to_string_pretty(stored).map_err(|e| RunnerError::Internal(e.to_string()))?;
    std::fs::create_dir_all(dir.join(RUNS_DIR)).map_err(|source| RunnerError::Io {
        action: "creating",
        path: dir.join(RUNS_DIR),
        source,
    })?;
    write_atomic(&dir.join(EXPERIMENT_FILE), text.as_bytes())
}

/// A deterministic slice of the runs: shard `index` (0-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based index.
    pub index: u64,
    /// Number of shards.
    pub count: u64,
}

impl Shard {
    /// Whether the run `fingerprint` is this shard's: its first 64 bits modulo the count,
    /// so adding configurations never moves a finished run to another shard.
    pub fn owns(&self, fingerprint: &str) -> bool {
        let h = u64::from_str_radix(&fingerprint[..16.min(fingerprint.len())], 16).unwrap_or(0);
        h % self.count == self.index
    }

    /// `K/N` (1 <= K <= N), `auto` (a Slurm job array's `SLURM_ARRAY_TASK_ID`,
    /// `SLURM_ARRAY_TASK_MIN` and `SLURM_ARRAY_TASK_COUNT`) or `auto/N` (a Kubernetes
    /// Indexed Job's `JOB_COMPLETION_INDEX`, else Slurm's task id, with `N` shards), with
    /// the environment read through `env`.
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Shard, RunnerError> {
        const ALLOWED: &str =
            "K/N with 1 <= K <= N, auto (Slurm job arrays) or auto/N (Kubernetes Indexed Jobs)";
        let bad =
            |why: String| RunnerError::input(format!("--shard {text}: {why}; expected {ALLOWED}"));
        let whole = |name: &str, v: &str| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| bad(format!("{name} \"{v}\" is not a whole number")))
        };
        let var = |name: &str| -> Result<Option<u64>, RunnerError> {
            env(name).map(|v| whole(name, &v)).transpose()
        };
        let (index, count) = match text.trim().split_once('/') {
            None if text.trim() == "auto" => {
                let (Some(id), Some(count)) =
                    (var("SLURM_ARRAY_TASK_ID")?, var("SLURM_ARRAY_TASK_COUNT")?)
                else {
                    return Err(bad(
                        "no SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT in the environment (not a Slurm job array)".into(),
                    ));
                };
                let min = var("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
                (
                    id.checked_sub(min).ok_or_else(|| {
                        bad(format!("task id {id} below SLURM_ARRAY_TASK_MIN {min}"))
                    })?,
                    count,
                )
            }
            Some((k, n)) if k.trim() == "auto" => {
                let count = whole("N", n)?;
                let index = match var("JOB_COMPLETION_INDEX")? {
                    Some(i) => i,
                    None => {
                        let id = var("SLURM_ARRAY_TASK_ID")?.ok_or_else(|| {
                            bad(
                                "no JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID in the environment"
                                    .into(),
                            )
                        })?;
                        let min = var("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
                        id.checked_sub(min).ok_or_else(|| {
                            bad(format!("task id {id} below SLURM_ARRAY_TASK_MIN {min}"))
                        })?
                    }
                };
                (index, count)
            }
            Some((k, n)) => {
                let (k, count) = (whole("K", k)?, whole("N", n)?);
                if k == 0 {
                    return Err(bad("K counts from 1".into()));
                }
                (k - 1, count)
            }
            None => return Err(bad("no K/N".into())),
        };
        if count == 0 {
            return Err(bad("N must be at least 1".into()));
        }
        if index >= count {
            return Err(bad(format!(
                "shard {} of {count} does not exist",
                index + 1
            )));
        }
        Ok(Shard { index, count })
    }
}

/// Each of `keys` that has a record in one of `dirs` (the first that has it).
pub fn locate(keys: &[RunKey], dirs: &[PathBuf]) -> BTreeMap<String, PathBuf> {
    keys.iter()
        .filter_map(|k| {
            dirs.iter()
                .find(|d| has_record(d, &k.fingerprint))
                .map(|d| (k.fingerprint.clone(), d.clone()))
        })
        .collect()
}

/// Whether `dir` holds a whole, readable record `fingerprint` (what `--resume` keeps; a
/// record a crash left empty or cut is run again).
pub fn has_readable_record(dir: &Path, fingerprint: &str) -> bool {
    matches!(read_record(dir, fingerprint), Ok(Some(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn shards_parse_from_text_and_from_schedulers() {
        let none = env(&[]);
        assert_eq!(
            Shard::parse("2/3", &none).unwrap(),
            Shard { index: 1, count: 3 }
        );
        assert_eq!(
            Shard::parse("1/1", &none).unwrap(),
            Shard { index: 0, count: 1 }
        );
        for bad in [
            "0/3", "4/3", "x", "1/0", "a/b", "auto", "auto/3", "/3", "1/",
        ] {
            let e = Shard::parse(bad, &none).unwrap_err();
            assert!(
                e.is_user_error() && e.to_string().starts_with("--shard"),
                "{e}"
            );
        }
        // Slurm: task ids from SLURM_ARRAY_TASK_MIN (an array --array=1-4 has min 1).
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(
            Shard::parse("auto", &slurm).unwrap(),
            Shard { index: 2, count: 4 }
        );
        // Kubernetes Indexed Jobs: 0-based index, count given.
        let k8s = env(&[("JOB_COMPLETION_INDEX", "0")]);
        assert_eq!(
            Shard::parse("auto/5", &k8s).unwrap(),
            Shard { index: 0, count: 5 }
        );
        assert!(Shard::parse("auto/5", env(&[("JOB_COMPLETION_INDEX", "5")])).is_err());
    }

    #[test]
    fn every_run_belongs_to_exactly_one_shard() {
        for i in 0..200u64 {
            let fp = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&i.to_le_bytes()));
            let owners = (0..3)
                .filter(|&k| Shard { index: k, count: 3 }.owns(&fp))
                .count();
            assert_eq!(owners, 1);
        }
    }
}
