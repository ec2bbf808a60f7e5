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
//!   run's measured `layers.csv` columns as CSV text (floats printed shortest round-trip and
//!   read back exactly, NaN and infinities included), and its histograms as range and
//!   counts. The theory columns are not stored: they are derived from the configuration
//!   whenever records are read, so a fix to the theory reaches every folder.
//! - What a record stores has a digest ([`columns_digest`]: the stored CSV headers, hashed).
//!   It enters the fingerprint and every record and `experiment.json`, so a folder written
//!   by a build with other columns is refused by name rather than mixed into.
//! - `experiment.json` names the suite and its configurations; a folder holding another
//!   suite is never mixed into (`--resume`, `merge`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sigprop_nets::{BackendKind, LayerHistogram, NetConfig, PhaseTimes, histogram_edges};
use sigprop_spec::error::RunnerError;
use sigprop_spec::experiment::Experiment;
use sigprop_spec::settings::RunSpec;

use crate::output::{plain_csv, write_atomic};
use crate::rows::{
    BatchCols, HistRow, JacobianCols, LayerRow, LayerStats, PrecisionCols, RunCols, SpectrumRow,
    SppCols, TheoryCols, TokenCols,
};

/// Version of the record format and of the fingerprint's identity (what is stored of a run
/// and how; the columns themselves are checked through [`columns_digest`]).
pub const STORE_VERSION: u32 = 3;
/// The records' folder inside an output folder.
pub const RUNS_DIR: &str = "runs";
/// The suite a folder holds.
pub const EXPERIMENT_FILE: &str = "experiment.json";

/// A `layers.csv` row as a record stores it: what was measured, without the run columns
/// (the record knows its seed) and the theory columns (derived when it is read).
#[derive(Serialize)]
struct StoredRow<'a>(
    &'a LayerStats,
    &'a SppCols,
    &'a TokenCols,
    &'a BatchCols,
    &'a JacobianCols,
    &'a PrecisionCols,
);

impl<'a> StoredRow<'a> {
    fn of(r: &'a LayerRow) -> Self {
        StoredRow(
            &r.stats,
            &r.spp,
            &r.tokens,
            &r.batch,
            &r.jacobian,
            &r.precision,
        )
    }
}

/// The CSV header line of `row` (a row of plain columns always serializes).
fn header_of<R: Serialize>(row: &R) -> String {
    let bytes = plain_csv(std::slice::from_ref(row)).expect("a row of plain columns serializes");
    let text = String::from_utf8(bytes).expect("CSV of UTF-8 names and numbers");
    text.lines().next().unwrap_or_default().to_string()
}

/// The digest of the columns a record stores: XXH3-64 of the headers of its layer rows and
/// its spectrum rows, as written by this build. Any column added, removed, renamed or moved
/// changes it, so folders of different builds are never mixed.
pub fn columns_digest() -> &'static str {
    static DIGEST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIGEST.get_or_init(|| {
        let layers = header_of(&StoredRow(
            &LayerStats::default(),
            &SppCols::default(),
            &TokenCols::default(),
            &BatchCols::default(),
            &JacobianCols::default(),
            &PrecisionCols::default(),
        ));
        let spectrum = header_of(&SpectrumRow {
            seed: 0,
            sample: 0,
            layer: 0,
            index: 0,
            singular_value: 0.0,
        });
        let text = format!("layers:{layers}\nspectrum:{spectrum}");
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
    })
}

/// The error for a store file written with other columns than this build's.
fn other_columns(path: &Path, what: &str) -> RunnerError {
    RunnerError::input(format!(
        "{}: {what} stored by a sigprop build with other columns than this one writes; \
         use a new output folder, or the build that wrote it",
        path.display()
    ))
}

/// Everything that decides a run's numbers.
#[derive(Serialize)]
struct Identity<'a> {
    store: u32,
    columns: &'a str,
    net: &'a NetConfig,
    batch: usize,
    backend: BackendKind,
    hist_layers: &'a [usize],
    #[serde(skip_serializing_if = "Option::is_none")]
    jacobian: Option<&'a sigprop_nets::JacobianOptions>,
    /// A low-precision pass measures other numbers than the f32 one (absent for f32, so an
    /// f32 run keeps its identity).
    #[serde(skip_serializing_if = "Option::is_none")]
    precision: Option<sigprop_nets::PrecisionOptions>,
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
    let r = &spec.net;
    let mut net = r.config.clone();
    net.weight_init = r.weight_init.to_string();
    net.bias_init = r.bias_init.to_string();
    net.activation = r.activation.to_string();
    // An inputs file is its content (digest) and its standardization, however its path is
    // spelled.
    if let Some(f) = net.inputs.as_mut() {
        f.path.clear();
    }
    net
}

/// The fingerprint of seed `seed` of `spec` (`hist`: it draws the histograms).
pub fn fingerprint(spec: &RunSpec, seed: u64, hist: bool) -> String {
    let net = canonical_net(spec);
    let id = Identity {
        store: STORE_VERSION,
        columns: columns_digest(),
        net: &net,
        batch: spec.batch,
        backend: spec.backend,
        hist_layers: if hist { &spec.hist_layers } else { &[] },
        jacobian: spec.jacobian.as_ref(),
        precision: spec.precision,
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

/// What `metainit` or `gradinit` did to one run's weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuningRecord {
    /// `metainit` or `gradinit`.
    pub method: String,
    /// Optimisation steps.
    pub steps: usize,
    /// Objectives on the evaluation batch: name, at the base draw, after tuning (`None`
    /// where not finite).
    pub metrics: Vec<(String, Option<f64>, Option<f64>)>,
    /// Every tuned tensor's path and its scale over the base draw.
    pub tensors: Vec<(String, f64)>,
}

impl From<sigprop_nets::Tuning> for TuningRecord {
    fn from(t: sigprop_nets::Tuning) -> Self {
        let finite = |v: f64| v.is_finite().then_some(v);
        TuningRecord {
            method: t.method.into(),
            steps: t.steps,
            metrics: t
                .metrics
                .into_iter()
                .map(|(n, a, b)| (n.to_string(), finite(a), finite(b)))
                .collect(),
            tensors: t.tensors.into_iter().map(|x| (x.path, x.scale)).collect(),
        }
    }
}

/// One finished run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// [`STORE_VERSION`].
    pub store: u32,
    /// [`columns_digest`] of the build that wrote it.
    #[serde(default)]
    pub columns: String,
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
    /// `--prune`: per pruned tensor, its path, entries kept and entries in all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<(String, usize, usize)>,
    /// `metainit` or `gradinit`: what the tuning did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<TuningRecord>,
    /// Each input's log gain between the primary site's first and last layers
    /// ([`sigprop_nets::ProbeResult::log_gains`]), as exact text (empty in records of
    /// builds that did not measure it).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        with = "exact_f64_list"
    )]
    pub log_gains: Vec<f64>,
    /// The run's measured layers.csv columns (without the configuration, run and theory
    /// columns), as CSV.
    pub layers: String,
    /// Its histograms (the configuration's first seed only).
    pub histograms: Vec<StoredHistogram>,
    /// Its singular values (`--jacobian`), as spectrum.csv rows without the configuration
    /// columns, CSV text (empty without).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub spectra: String,
}

/// One histogram of a record: the bin edges follow from `range` and the number of counts
/// by the formula that drew them ([`sigprop_nets::histogram_edges`]), so a record keeps
/// counts, not rows (a tenth of the bytes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredHistogram {
    /// Site name.
    pub site: String,
    /// Layer.
    pub layer: usize,
    /// `preact`, `act` or `grad`.
    pub tensor: String,
    /// Half-width of the binned interval, as text (shortest round-trip form: JSON numbers
    /// are not read back exactly by serde_json's default parser).
    #[serde(with = "exact_f64")]
    pub range: f64,
    /// Counts per bin.
    pub counts: Vec<u64>,
}

/// An f64 as its shortest round-trip decimal text: Rust prints it so and parses it back
/// correctly rounded, so the bits survive.
mod exact_f64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A list of f64 as one string of their shortest round-trip forms, space-separated: read
/// back bit for bit (NaN and infinities included).
mod exact_f64_list {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let text: Vec<String> = v.iter().map(f64::to_string).collect();
        s.serialize_str(&text.join(" "))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let text = String::deserialize(d)?;
        text.split_whitespace()
            .map(|x| x.parse().map_err(serde::de::Error::custom))
            .collect()
    }
}

impl StoredHistogram {
    /// The record's form of a measured histogram.
    pub fn of(h: &LayerHistogram) -> StoredHistogram {
        StoredHistogram {
            site: h.site.clone(),
            layer: h.layer,
            tensor: h.tensor.to_string(),
            range: h.range,
            counts: h.counts.clone(),
        }
    }
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

    /// The CSV text a record stores of `rows`: their measured columns.
    pub fn layers_csv(rows: &[LayerRow]) -> Result<String, RunnerError> {
        Self::csv_of(&rows.iter().map(StoredRow::of).collect::<Vec<_>>())
    }

    /// The layers.csv rows, with the run id of configuration `config`; their theory
    /// columns are empty (`overlay::fill_theory` derives them).
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
                let jacobian: JacobianCols = rec.deserialize(Some(&headers)).map_err(bad)?;
                let batch: BatchCols = rec.deserialize(Some(&headers)).map_err(bad)?;
                let precision: PrecisionCols = rec.deserialize(Some(&headers)).map_err(bad)?;
                Ok(LayerRow {
                    run: RunCols {
                        run_id: format!("c{config}-s{}", self.seed),
                        seed: self.seed,
                    },
                    stats,
                    spp,
                    tokens,
                    batch,
                    jacobian,
                    precision,
                    theory: TheoryCols::default(),
                })
            })
            .collect()
    }

    /// The spectrum.csv rows (without the configuration columns).
    pub fn spectrum_rows(&self) -> Result<Vec<SpectrumRow>, RunnerError> {
        let mut rd = csv::Reader::from_reader(self.spectra.as_bytes());
        rd.deserialize().collect::<Result<_, _>>().map_err(|e| {
            RunnerError::input(format!("record {}: spectrum rows: {e}", self.fingerprint))
        })
    }

    /// The histogram rows, labelled for configuration `config`.
    pub fn hist_rows(&self, config: usize, label: &str) -> Vec<HistRow> {
        hist_rows(config, label, self.histograms.iter())
    }

    /// The CSV text of `rows`.
    pub fn csv_of<R: Serialize>(rows: &[R]) -> Result<String, RunnerError> {
        String::from_utf8(plain_csv(rows)?).map_err(|e| RunnerError::Internal(e.to_string()))
    }
}

/// The histograms.csv rows of `histograms`, labelled for configuration `config`.
pub fn hist_rows<'a>(
    config: usize,
    label: &str,
    histograms: impl Iterator<Item = &'a StoredHistogram>,
) -> Vec<HistRow> {
    let mut rows = Vec::new();
    for h in histograms {
        let edges = histogram_edges(h.range, h.counts.len());
        for (bin, &count) in h.counts.iter().enumerate() {
            rows.push(HistRow {
                config,
                label: label.to_string(),
                site: h.site.clone(),
                layer: h.layer,
                tensor: h.tensor.clone(),
                bin,
                lo: edges[bin],
                hi: edges[bin + 1],
                count,
            });
        }
    }
    rows
}

/// Appends the records one process measures to a segment of its own in a folder's store,
/// `runs/seg-<random>.jsonl`: one record per line, each line written by one `write` call
/// of the whole line, the moment its run finishes. A killed process leaves every line it
/// wrote whole (a signal does not cut a write to a local file); what a machine crash can
/// leave (a cut or zeroed last line) is read as no record and run again by `--resume`.
/// One file per process instead of one per run: creating and renaming a file costs a tiny
/// network's run a quarter of its time here, and far more on a cluster's shared
/// filesystem, whose metadata operations are its slowest.
pub struct Segment {
    runs: PathBuf,
    file: std::sync::Mutex<Option<std::fs::File>>,
}

impl Segment {
    /// The segment this process will write into `dir`'s store (created on the first record).
    pub fn new(dir: &Path) -> Segment {
        Segment {
            runs: dir.join(RUNS_DIR),
            file: std::sync::Mutex::new(None),
        }
    }

    /// Append `record`.
    pub fn append(&self, record: &RunRecord) -> Result<(), RunnerError> {
        let mut line =
            serde_json::to_vec(record).map_err(|e| RunnerError::Internal(e.to_string()))?;
        line.push(b'\n');
        self.append_line(&line)
    }

    /// Append one record's line as read from another store (`merge`).
    pub fn append_line(&self, line: &[u8]) -> Result<(), RunnerError> {
        use std::io::Write;
        crate::output::timed_write(|| {
            let mut file = self
                .file
                .lock()
                .map_err(|_| RunnerError::Internal("a worker panicked while writing".into()))?;
            let io = |source| RunnerError::Io {
                action: "writing",
                path: self.runs.clone(),
                source,
            };
            if file.is_none() {
                // A random name made with O_EXCL: processes of several machines appending
                // to one shared folder never share a segment.
                let (f, _) = crate::output::new_file_builder("seg-", ".jsonl")
                    .rand_bytes(12)
                    .tempfile_in(&self.runs)
                    .map_err(io)?
                    .keep()
                    .map_err(|e| io(e.error))?;
                *file = Some(f);
            }
            let f = file
                .as_mut()
                .ok_or_else(|| RunnerError::Internal("no segment".into()))?;
            f.write_all(line).map_err(io)
        })
    }
}

/// Where one record's line lies.
#[derive(Debug, Clone)]
struct Line {
    file: PathBuf,
    offset: u64,
    len: usize,
}

/// The records of one or more folders' stores, by fingerprint (the first folder, segment
/// and line holding each, in that order: a run two processes both measured has the same
/// numbers either way).
#[derive(Debug, Default)]
pub struct Records {
    lines: HashMap<String, Line>,
}

/// What a line must hold to count as a record.
#[derive(Deserialize)]
struct Head {
    store: u32,
    #[serde(default)]
    columns: String,
    fingerprint: String,
}

impl Records {
    /// Index the segments of `dirs`' stores. Only whole lines (ended by a newline) that
    /// parse as a record of this store version count; others are what a crash cut.
    pub fn scan(dirs: &[PathBuf]) -> Result<Records, RunnerError> {
        let mut records = Records::default();
        for dir in dirs {
            records.scan_dir(dir)?;
        }
        Ok(records)
    }

    fn scan_dir(&mut self, dir: &Path) -> Result<(), RunnerError> {
        let runs = dir.join(RUNS_DIR);
        let io = |path: &Path, source| RunnerError::Io {
            action: "reading",
            path: path.to_path_buf(),
            source,
        };
        let entries = match std::fs::read_dir(&runs) {
            Ok(e) => e,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(());
            }
            Err(e) => return Err(io(&runs, e)),
        };
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.map(|e| e.path()).map_err(|e| io(&runs, e)))
            .collect::<Result<_, _>>()?;
        files.retain(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seg-") && n.ends_with(".jsonl"))
        });
        files.sort();
        for file in files {
            use std::io::BufRead;
            let f = std::fs::File::open(&file).map_err(|e| io(&file, e))?;
            let mut reader = std::io::BufReader::with_capacity(1 << 20, f);
            let mut line = Vec::new();
            let mut offset = 0u64;
            loop {
                line.clear();
                let n = reader
                    .read_until(b'\n', &mut line)
                    .map_err(|e| io(&file, e))?;
                if n == 0 {
                    break;
                }
                let start = offset;
                offset += n as u64;
                let Some(body) = line.strip_suffix(b"\n") else {
                    continue; // the cut last line of a crashed writer
                };
                let Ok(head) = serde_json::from_slice::<Head>(body) else {
                    continue;
                };
                if head.store != STORE_VERSION {
                    return Err(RunnerError::input(format!(
                        "{}: a record of store version {}, this sigprop reads version {STORE_VERSION}",
                        file.display(),
                        head.store
                    )));
                }
                if head.columns != columns_digest() {
                    return Err(other_columns(&file, "a record"));
                }
                self.lines.entry(head.fingerprint).or_insert(Line {
                    file: file.clone(),
                    offset: start,
                    len: n,
                });
            }
        }
        Ok(())
    }

    /// Whether a record of `fingerprint` is there.
    pub fn contains(&self, fingerprint: &str) -> bool {
        self.lines.contains_key(fingerprint)
    }

    /// How many of `keys` have a record.
    pub fn count(&self, keys: &[RunKey]) -> usize {
        keys.iter()
            .filter(|k| self.contains(&k.fingerprint))
            .count()
    }

    /// The folder's line of the record `fingerprint` (with its newline).
    pub fn line(&self, fingerprint: &str) -> Result<Option<Vec<u8>>, RunnerError> {
        use std::io::{Read, Seek, SeekFrom};
        let Some(at) = self.lines.get(fingerprint) else {
            return Ok(None);
        };
        let io = |source| RunnerError::Io {
            action: "reading",
            path: at.file.clone(),
            source,
        };
        let mut f = std::fs::File::open(&at.file).map_err(io)?;
        f.seek(SeekFrom::Start(at.offset)).map_err(io)?;
        let mut buf = vec![0; at.len];
        f.read_exact(&mut buf).map_err(io)?;
        Ok(Some(buf))
    }

    /// The record `fingerprint`, `None` if there is none.
    pub fn read(&self, fingerprint: &str) -> Result<Option<RunRecord>, RunnerError> {
        let Some(line) = self.line(fingerprint)? else {
            return Ok(None);
        };
        let record: RunRecord = serde_json::from_slice(&line).map_err(|e| {
            RunnerError::input(format!("record {fingerprint}: not a sigprop record: {e}"))
        })?;
        if record.fingerprint != fingerprint {
            return Err(RunnerError::Internal(format!(
                "record {fingerprint} read back as {}",
                record.fingerprint
            )));
        }
        Ok(Some(record))
    }
}

/// Set aside every record of `dir`'s store (a plain run replaces what the folder held):
/// segments are renamed `replaced-seg-...`, which no scan reads, and removed by
/// [`remove_replaced`] once the new run is complete; a run killed before that leaves them
/// for the user to rename back. Records of store version 1 (`runs/<fingerprint>.json`) are
/// removed.
pub fn set_aside_records(dir: &Path) -> Result<(), RunnerError> {
    let Ok(entries) = std::fs::read_dir(dir.join(RUNS_DIR)) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let path = e.path();
        let done = if name.starts_with("seg-") && name.ends_with(".jsonl") {
            std::fs::rename(&path, path.with_file_name(format!("replaced-{name}")))
        } else if name.len() == 37 && name.ends_with(".json") {
            std::fs::remove_file(&path)
        } else {
            Ok(())
        };
        done.map_err(|source| RunnerError::Io {
            action: "setting aside",
            path,
            source,
        })?;
    }
    Ok(())
}

/// Remove the records [`set_aside_records`] set aside.
pub fn remove_replaced(dir: &Path) -> Result<(), RunnerError> {
    remove_named(&dir.join(RUNS_DIR), |name| {
        name.starts_with("replaced-seg-")
    })
}

/// Remove the files of folder `d` (if there is one) whose names `doomed` picks.
fn remove_named(d: &Path, doomed: impl Fn(&str) -> bool) -> Result<(), RunnerError> {
    let Ok(entries) = std::fs::read_dir(d) else {
        return Ok(());
    };
    for e in entries.flatten() {
        if doomed(&e.file_name().to_string_lossy()) {
            std::fs::remove_file(e.path()).map_err(|source| RunnerError::Io {
                action: "removing",
                path: e.path(),
                source,
            })?;
        }
    }
    Ok(())
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

/// Remove temporary files an interrupted writer left in `dir` and its store.
pub fn remove_stale_temporaries(dir: &Path) -> Result<(), RunnerError> {
    for d in [dir.to_path_buf(), dir.join(RUNS_DIR)] {
        remove_named(&d, |name| name.starts_with('.') && name.ends_with(".tmp"))?;
    }
    Ok(())
}

/// The suite a folder holds: its name, configurations and the fingerprints of their runs
/// (computed when the suite ran, so a folder's runs never depend on reading floats back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredExperiment {
    /// [`STORE_VERSION`].
    pub store: u32,
    /// [`columns_digest`] of the build that wrote it.
    #[serde(default)]
    pub columns: String,
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
            columns: columns_digest().to_string(),
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
            } else if a.jacobian != b.jacobian {
                "Jacobian settings"
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
    if stored.columns != columns_digest() {
        return Err(other_columns(&path, "its runs were"));
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

    /// A run in bf16 or f16, or with another loss scale, measures other numbers: its
    /// identity differs, so a suite never reuses one for another. `dtype = "f32"` is the
    /// f32 run it always was.
    #[test]
    fn the_float_type_and_the_loss_scale_are_part_of_a_runs_identity() {
        let spec = |dtype: Option<&str>, scale: Option<&str>| {
            sigprop_spec::settings::Settings {
                depth: Some(2),
                width: Some(4),
                dtype: dtype.map(Into::into),
                loss_scale: scale.map(Into::into),
                ..Default::default()
            }
            .to_run(0, "x".into(), Vec::new())
            .unwrap()
        };
        let fp = |d, l| fingerprint(&spec(d, l), 0, false);
        assert_eq!(fp(None, None), fp(Some("f32"), None));
        let all = [
            fp(None, None),
            fp(Some("bf16"), None),
            fp(Some("f16"), None),
            fp(Some("f16"), Some("dynamic")),
            fp(Some("f16"), Some("1024")),
        ];
        for (i, a) in all.iter().enumerate() {
            assert!(all[i + 1..].iter().all(|b| b != a), "{i}");
        }
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

    fn record(fingerprint: &str, range: f64) -> RunRecord {
        RunRecord {
            store: STORE_VERSION,
            columns: columns_digest().to_string(),
            fingerprint: fingerprint.into(),
            seed: 3,
            device: "cpu".into(),
            init_s: 0.1,
            forward_backward_s: 0.2,
            stats_s: 0.3,
            lsuv_total: None,
            critical_sigma_w: None,
            pruned: Vec::new(),
            tuning: None,
            log_gains: vec![-0.1, 1.0 / 3.0, f64::NAN, f64::INFINITY],
            layers: "a,b\n1,NaN\n".into(),
            spectra: String::new(),
            histograms: vec![StoredHistogram {
                site: "layer".into(),
                layer: 1,
                tensor: "preact".into(),
                range,
                counts: vec![1, 0, 5],
            }],
        }
    }

    #[test]
    fn segments_keep_whole_lines_and_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(RUNS_DIR)).unwrap();
        // A range whose shortest decimal form needs all 17 digits.
        let range = 0.1f64 + 0.2;
        let seg = Segment::new(dir.path());
        seg.append(&record("aa", range)).unwrap();
        seg.append(&record("bb", 1.0)).unwrap();
        // What a crash can leave: a cut line, a zeroed one, a record of another version.
        let runs = dir.path().join(RUNS_DIR);
        let whole = serde_json::to_string(&record("cc", 1.0)).unwrap();
        std::fs::write(runs.join("seg-cut.jsonl"), &whole[..whole.len() / 2]).unwrap();
        std::fs::write(runs.join("seg-zero.jsonl"), [0u8; 40]).unwrap();
        let recs = Records::scan(&[dir.path().to_path_buf()]).unwrap();
        assert!(recs.contains("aa") && recs.contains("bb") && !recs.contains("cc"));
        let back = recs.read("aa").unwrap().unwrap();
        assert_eq!(back.histograms[0].range.to_bits(), range.to_bits());
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.log_gains), bits(&record("x", 1.0).log_gains));
        let rows = back.hist_rows(4, "x");
        let edges = histogram_edges(range, 3);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (rows[2].lo, rows[2].hi, rows[2].count),
            (edges[2], edges[3], 5)
        );
        assert_eq!((rows[0].config, rows[0].label.as_str()), (4, "x"));
        assert_eq!(back.layers, "a,b\n1,NaN\n");
        assert!(recs.read("cc").unwrap().is_none());
        let old = whole.replacen(&format!("\"store\":{STORE_VERSION}"), "\"store\":1", 1);
        std::fs::write(runs.join("seg-old.jsonl"), format!("{old}\n")).unwrap();
        let e = Records::scan(&[dir.path().to_path_buf()]).unwrap_err();
        assert!(
            e.is_user_error() && e.to_string().contains("store version 1"),
            "{e}"
        );
        set_aside_records(dir.path()).unwrap();
        assert!(
            Records::scan(&[dir.path().to_path_buf()])
                .unwrap()
                .lines
                .is_empty()
        );
        remove_replaced(dir.path()).unwrap();
        assert!(std::fs::read_dir(&runs).unwrap().next().is_none());
        // A record another build wrote, with other columns: refused by name, not mixed in.
        let other = whole.replacen(columns_digest(), "0123456789abcdef", 1);
        assert_ne!(other, whole);
        std::fs::write(runs.join("seg-other.jsonl"), format!("{other}\n")).unwrap();
        let e = Records::scan(&[dir.path().to_path_buf()]).unwrap_err();
        assert!(
            e.is_user_error() && e.to_string().contains("other columns"),
            "{e}"
        );
    }

    /// The digest is the hash of the headers a record really writes: measured columns only
    /// (no run, no theory columns), so a column added anywhere changes it.
    #[test]
    fn the_columns_digest_hashes_the_headers_a_record_writes() {
        let row = LayerRow {
            run: RunCols {
                run_id: "c0-s1".into(),
                seed: 1,
            },
            stats: LayerStats::default(),
            spp: SppCols::default(),
            tokens: TokenCols::default(),
            batch: BatchCols::default(),
            jacobian: JacobianCols::default(),
            precision: PrecisionCols::default(),
            theory: TheoryCols {
                theory_preact_var: Some(2.0),
                ..TheoryCols::default()
            },
        };
        let layers = RunRecord::layers_csv(std::slice::from_ref(&row)).unwrap();
        let head = layers.lines().next().unwrap().to_string();
        assert!(head.starts_with("site,layer,"), "{head}");
        assert!(
            !head.contains("theory_") && !head.contains("run_id"),
            "{head}"
        );
        let spectra = RunRecord::csv_of(&SpectrumRow::of(
            1,
            &[sigprop_nets::Spectrum {
                layer: 2,
                sample: 0,
                values: vec![1.5],
            }],
        ))
        .unwrap();
        let text = format!(
            "layers:{head}\nspectrum:{}",
            spectra.lines().next().unwrap()
        );
        assert_eq!(
            columns_digest(),
            format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
        );
    }

    #[test]
    fn a_folder_of_another_build_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let exp = StoredExperiment {
            store: STORE_VERSION,
            columns: "0123456789abcdef".into(),
            name: "s".into(),
            description: String::new(),
            command: String::new(),
            runs: Vec::new(),
            fingerprints: Vec::new(),
        };
        write_experiment(dir.path(), &exp).unwrap();
        let e = read_experiment(dir.path()).unwrap_err();
        assert!(
            e.is_user_error() && e.to_string().contains("other columns"),
            "{e}"
        );
        let same = StoredExperiment {
            columns: columns_digest().into(),
            ..exp
        };
        write_experiment(dir.path(), &same).unwrap();
        assert_eq!(read_experiment(dir.path()).unwrap(), Some(same));
    }
}
