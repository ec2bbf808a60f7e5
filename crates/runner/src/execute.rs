//! Running an experiment: every run (configuration x seed) into the folder's store, then
//! the CSVs derived from the store.
//!
//! Configurations are validated up front (a typo fails before any compute). The runs are
//! scheduled by `schedule.rs`: on CPU backends in parallel, on a GPU one pass at a time, the
//! next pass's weights filled on the host and uploaded while the current one computes. Each finished run
//! is written at once as its own record (store.rs), so an interrupted suite loses nothing
//! that finished and writing costs one record per run. Once every run of the suite has a
//! record, the CSVs are derived from the records, in configuration and seed order, the
//! same bytes however the runs were split over shards, restarts and threads. Charts,
//! report and manifest come last.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use burn::tensor::Device;
use sigprop_nets::{
    BackendKind, Dtype, Measured, ProbeOptions, Staged, batchable, device, device_name,
    measure_staged_seeds, stage,
};
use sigprop_report::aggregate::{aggregate, key_of};
use sigprop_report::outcome::{Outcome, Tables};
use sigprop_report::output::{keyed_csv, write_atomic};
use sigprop_report::overlay::{
    chi1, corr_fixed_point, fill_theory, jacobian_density_rows, log_gain_theory,
};
use sigprop_report::rows::{
    BatchCols, ConfigKey, JacobianCols, LayerRow, PrecisionCols, RunCols, SpectrumRow, SppCols,
    TheoryCols, TokenCols,
};
use sigprop_report::store::{
    RUNS_DIR, Records, RunKey, RunRecord, STORE_VERSION, Segment, Shard, StoredExperiment,
    StoredHistogram, TuningRecord, columns_digest, read_experiment, remove_replaced,
    remove_stale_temporaries, set_aside_records, write_experiment,
};
use sigprop_report::summary::{Extra, summarize};
use sigprop_spec::error::RunnerError;
use sigprop_spec::experiment::Experiment;
use sigprop_spec::settings::RunSpec;

use crate::schedule::{Place, progress_bar, schedule};

/// Histogram bins.
pub const HIST_BINS: usize = 60;

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output folder.
    pub out: PathBuf,
    /// No progress bar.
    pub quiet: bool,
    /// Skip the runs whose records the folder already holds.
    pub resume: bool,
    /// Run only this shard's runs.
    pub shard: Option<Shard>,
}

/// Check every configuration before running any.
pub(crate) fn validate(exp: &Experiment) -> Result<(), RunnerError> {
    // Every backend the experiment uses must start, checked once each and in this thread
    // before any worker runs.
    let mut backends = Vec::new();
    for r in &exp.runs {
        if !backends.contains(&r.backend) {
            backends.push(r.backend);
        }
    }
    for b in backends {
        device(b)?;
    }
    // A low-precision type must have arithmetic on its backend.
    let mut asked: Vec<(BackendKind, Dtype)> = Vec::new();
    for r in &exp.runs {
        if let Some(p) = r.precision
            && !asked.contains(&(r.backend, p.dtype))
        {
            asked.push((r.backend, p.dtype));
            sigprop_nets::check_dtype(r.backend, p.dtype)?;
        }
    }
    if let Some(r) = exp.runs.iter().find(|r| r.auto_is_pending()) {
        return Err(RunnerError::Internal(format!(
            "configuration {} ({}) asks for init auto, which was not resolved before running \
             (recommend::resolve_auto_runs)",
            r.index, r.label
        )));
    }
    Ok(())
}

/// Create the output folder, failing early with a one-line message if it is unwritable.
pub fn prepare_out(out: &Path) -> Result<(), RunnerError> {
    let fail = |e: std::io::Error| {
        RunnerError::input(format!("--out {}: cannot write there: {e}", out.display()))
    };
    std::fs::create_dir_all(out).map_err(fail)?;
    // A name of its own (other shards may be probing the same folder), removed on drop.
    tempfile::Builder::new()
        .prefix(".sigprop-write-test.")
        .tempfile_in(out)
        .map(drop)
        .map_err(fail)
}

/// The weights of the runs `keys` (seeds of one configuration), filled and uploaded ahead
/// of their pass.
fn stage_seeds(spec: &RunSpec, keys: &[&RunKey]) -> Result<Vec<Staged>, RunnerError> {
    let dev = device(spec.backend)?;
    keys.iter()
        .map(|key| Ok(stage(&spec.net, key.seed, spec.batch, &dev)?))
        .collect()
}

/// The probe options of `key`'s run.
fn probe_options(spec: &RunSpec, key: &RunKey) -> ProbeOptions {
    ProbeOptions {
        batch: spec.batch,
        hist_layers: if key.hist {
            spec.hist_layers.clone()
        } else {
            Vec::new()
        },
        hist_bins: HIST_BINS,
        jacobian: spec.jacobian.clone(),
        precision: spec.precision,
    }
}

/// The runs of `exp` in `todo` in passes: consecutive seeds of one configuration, at most
/// its `seed_batch` in a pass, where their probe options allow batching (a run with
/// histograms or a Jacobian alone).
fn seed_groups<'k>(exp: &Experiment, todo: &[&'k RunKey]) -> Vec<Vec<&'k RunKey>> {
    let mut groups: Vec<Vec<&RunKey>> = Vec::new();
    for &key in todo {
        let spec = &exp.runs[key.config];
        let fits = |g: &Vec<&RunKey>| {
            g.first().is_some_and(|first| {
                first.config == key.config
                    && g.len() < spec.seed_batch.max(1)
                    && batchable(&spec.net, &probe_options(spec, first))
                    && batchable(&spec.net, &probe_options(spec, key))
            })
        };
        match groups.last_mut() {
            Some(g) if fits(g) => g.push(key),
            _ => groups.push(vec![key]),
        }
    }
    groups
}

/// Run seeds of one configuration (one pass where they are several) into their records,
/// from their `staged` weights.
fn run_seeds(
    spec: &RunSpec,
    keys: &[&RunKey],
    staged: Vec<Staged>,
) -> Result<Vec<RunRecord>, RunnerError> {
    let dev = device(spec.backend)?;
    let Some(&first) = keys.first() else {
        return Ok(Vec::new());
    };
    let opts = probe_options(spec, first);
    let measured = measure_staged_seeds(&spec.net, staged, &opts, &dev)?;
    keys.iter()
        .zip(measured)
        .map(|(key, m)| record_of(spec, key, m, &dev))
        .collect()
}

/// The record of one seed's measurement `m`.
fn record_of(
    spec: &RunSpec,
    key: &RunKey,
    m: Measured,
    dev: &Device,
) -> Result<RunRecord, RunnerError> {
    let lsuv_total = (!m.lsuv.is_empty()).then(|| m.lsuv.iter().map(|l| l.0).sum());
    let pruned = m.pruned;
    let tuning = m.tuning.map(TuningRecord::from);
    // Each block output's branch site, for its signal-propagation-plot columns.
    let branches: HashMap<usize, sigprop_nets::LayerStats> = m
        .result
        .stats
        .iter()
        .filter(|s| s.site == "branch")
        .map(|s| (s.layer, s.clone()))
        .collect();
    let times = m.result.times;
    let mut layers = Vec::new();
    let primary = spec.net.config.arch.primary_site();
    for s in m.result.stats {
        let spp = match branches.get(&s.layer) {
            Some(b) if s.site == "out" => SppCols::of(&s, b),
            _ => SppCols::default(),
        };
        let here: Vec<&sigprop_nets::Spectrum> = if s.site == primary {
            m.result
                .spectra
                .iter()
                .filter(|sp| sp.layer == s.layer)
                .collect()
        } else {
            Vec::new()
        };
        let jacobian = JacobianCols::of(&here);
        let precision = PrecisionCols::of(&s);
        let run = RunCols {
            run_id: format!("c{}-s{}", spec.index, key.seed),
            seed: key.seed,
        };
        layers.push(LayerRow {
            run,
            tokens: TokenCols::of(&s),
            batch: BatchCols::of(&s),
            stats: s,
            spp,
            jacobian,
            precision,
            theory: TheoryCols::default(),
        });
    }
    let spectra = SpectrumRow::of(key.seed, &m.result.spectra);
    Ok(RunRecord {
        store: STORE_VERSION,
        columns: columns_digest().to_string(),
        fingerprint: key.fingerprint.clone(),
        seed: key.seed,
        device: device_name(dev),
        init_s: times.init_s,
        forward_backward_s: times.forward_backward_s,
        stats_s: times.stats_s,
        lsuv_total,
        critical_sigma_w: spec.net.critical_sigma_w,
        pruned: pruned
            .into_iter()
            .map(|t| (t.path, t.kept, t.total))
            .collect(),
        tuning,
        log_gains: m.result.log_gains,
        layers: RunRecord::layers_csv(&layers)?,
        histograms: m
            .result
            .histograms
            .iter()
            .map(StoredHistogram::of)
            .collect(),
        spectra: if spectra.is_empty() {
            String::new()
        } else {
            RunRecord::csv_of(&spectra)?
        },
    })
}

/// Every configuration of `exp` whose runs `keys` have records in `dirs` (the first folder
/// holding each), in configuration order, each over its seeds that have one; and the runs
/// that have none.
pub fn derive(
    exp: &Experiment,
    keys: &[RunKey],
    dirs: &[PathBuf],
) -> Result<(Vec<Outcome>, Vec<RunKey>), RunnerError> {
    let found = Records::scan(dirs)?;
    let mut outcomes = Vec::new();
    let mut missing = Vec::new();
    for spec in &exp.runs {
        let mut layers = Vec::new();
        let mut hists = Vec::new();
        let mut spectra = Vec::new();
        let mut times = Vec::new();
        let mut lsuv_totals = Vec::new();
        let mut pruned = Vec::new();
        let mut tuning = Vec::new();
        let mut device = String::new();
        let mut seeds = 0;
        let mut log_gains: Option<Vec<Vec<f64>>> = Some(Vec::new());
        for key in keys.iter().filter(|k| k.config == spec.index) {
            let Some(record) = found.read(&key.fingerprint)? else {
                missing.push(key.clone());
                continue;
            };
            seeds += 1;
            layers.extend(record.layer_rows(spec.index)?);
            spectra.extend(record.spectrum_rows()?);
            if key.hist {
                hists = record.hist_rows(spec.index, &spec.label);
            }
            times.push((record.seed, record.times()));
            lsuv_totals.extend(record.lsuv_total);
            // A record without them (an older build's) leaves the configuration without.
            if record.log_gains.is_empty() {
                log_gains = None;
            }
            if let Some(g) = log_gains.as_mut() {
                g.push(record.log_gains.clone());
            }
            if !record.pruned.is_empty() {
                pruned.push((record.seed, record.pruned.clone()));
            }
            if let Some(t) = &record.tuning {
                tuning.push((record.seed, t.clone()));
            }
            if device.is_empty() {
                device = record.device.clone();
            }
        }
        if seeds == 0 {
            continue;
        }
        let net = &spec.net;
        // The same sigma_w the runs used, recomputed exactly when the spec was read (not
        // read back from JSON).
        let critical_sigma_w = net.critical_sigma_w;
        fill_theory(spec, &mut layers)?;
        let key = key_of(spec);
        let aggs = aggregate(&layers);
        let extra = Extra {
            seeds,
            lsuv_totals,
            theory_chi1: chi1(net),
            corr_fixed: corr_fixed_point(net),
            input_token_cos: net.config.arch.input_token_corr().unwrap_or(0.0),
            log_gains,
            theory_log_gain: log_gain_theory(net),
        };
        let summary = summarize(&key.arch, &layers, &aggs, extra);
        let mut measured: Vec<usize> = spectra.iter().map(|r: &SpectrumRow| r.layer).collect();
        measured.sort_unstable();
        measured.dedup();
        let densities = jacobian_density_rows(net, &measured);
        let mut spec = spec.clone();
        spec.seeds = times.iter().map(|t| t.0).collect();
        outcomes.push(Outcome {
            spec,
            key,
            layers,
            aggs,
            summary,
            hists,
            spectra,
            densities,
            times,
            device,
            critical_sigma_w,
            pruned,
            tuning,
        });
    }
    Ok((outcomes, missing))
}

/// Rewrite the CSVs from the finished outcomes, in configuration order; the tables written
/// (which the charts and the report are drawn from).
pub fn write_csvs(out: &Path, done: &[&Outcome]) -> Result<Tables, RunnerError> {
    let layers: Vec<(ConfigKey, &LayerRow)> = done
        .iter()
        .flat_map(|o| o.layers.iter().map(|r| (o.key_at(r.stats.layer), r)))
        .collect();
    write_atomic(&out.join("layers.csv"), &keyed_csv(&layers)?)?;
    let tables = Tables::of(done);
    tables.write(out)?;
    Ok(tables)
}

/// The files derived from a folder's records.
pub const DERIVED_FILES: [&str; 10] = [
    "layers.csv",
    "aggregate.csv",
    "summary.csv",
    "histograms.csv",
    "spectrum.csv",
    "spectrum_theory.csv",
    "grid.csv",
    "report.md",
    "report.html",
    "manifest.json",
];

/// Held by the shard that derives a shared folder's CSVs.
const DERIVE_LOCK: &str = ".sigprop-derive.lock";

/// Removes the lock file when the derivation is done (or failed).
struct LockGuard(PathBuf);

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What a run of an experiment left in its folder.
#[derive(Debug)]
pub enum Ran {
    /// Every run has its record: the derived outcomes, in configuration order, the tables
    /// written from them, and the wall time.
    Complete(Vec<Outcome>, Tables, f64),
    /// A shard finished its part; other shards hold the rest.
    Partial {
        /// Runs this invocation measured.
        measured: usize,
        /// Runs of the folder's suite still without a record.
        remaining: usize,
    },
}

/// Run `exp` into its folder's store (the runs of `opts.shard`, skipping finished ones with
/// `opts.resume`), then, once every run has a record, derive the CSVs from the store.
pub fn run_experiment(exp: &Experiment, opts: &RunOptions) -> Result<Ran, RunnerError> {
    let start = Instant::now();
    validate(exp)?;
    let out = &opts.out;
    let stored = StoredExperiment::of(exp);
    prepare_out(out)?;
    let replacing = !opts.resume && opts.shard.is_none();
    // A plain run replaces whatever the folder held, also a suite of an older store version.
    let held = match read_experiment(out) {
        Err(e) if replacing && e.is_user_error() => None,
        other => other?,
    };
    if let Some(held) = held
        && let Some(diff) = held.differs_from(&stored)
    {
        let flag = match (opts.resume, opts.shard) {
            (true, _) => Some("--resume"),
            (false, Some(_)) => Some("--shard"),
            _ => None,
        };
        if let Some(flag) = flag {
            return Err(RunnerError::input(format!(
                "{flag}: {} holds another suite ({diff}); choose another --out",
                out.display()
            )));
        }
    }
    // A plain run replaces what the folder held (this suite's earlier runs or another
    // suite's): its derived files go now and its records are set aside (removed once this
    // run is complete), so a run killed part-way never leaves them next to this run's
    // records, and a forgotten `--resume` loses nothing for good.
    if replacing {
        for f in DERIVED_FILES {
            match std::fs::remove_file(out.join(f)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(RunnerError::Io {
                        action: "removing",
                        path: out.join(f),
                        source: e,
                    });
                }
                _ => {}
            }
        }
        set_aside_records(out)?;
    }
    // Temporaries of a killed earlier run; a shard leaves them, since other shards may be
    // writing into the same folder right now.
    if opts.shard.is_none() {
        remove_stale_temporaries(out)?;
    }
    write_experiment(out, &stored)?;
    // The theory of every configuration is derived once its records are read; whether it
    // can be is checked now, before any seed runs.
    for spec in &exp.runs {
        fill_theory(spec, &mut [])?;
    }
    let keys = stored.keys();
    let mine: Vec<&RunKey> = keys
        .iter()
        .filter(|k| opts.shard.is_none_or(|s| s.owns(&k.fingerprint)))
        .collect();
    let held = Records::scan(std::slice::from_ref(out))?;
    let (skipped, todo): (Vec<&RunKey>, Vec<&RunKey>) = mine
        .into_iter()
        .partition(|k| (opts.resume || opts.shard.is_some()) && held.contains(&k.fingerprint));
    let bar = progress_bar(
        skipped.len() + todo.len(),
        skipped.len(),
        "runs",
        opts.quiet,
    );
    if !skipped.is_empty() {
        bar.set_message(format!("{} skipped (finished before)", skipped.len()));
    }
    let progress = Progress::new(exp, keys.len(), held.count(&keys));
    let segment = Segment::new(out);
    let groups = seed_groups(exp, &todo);
    let spec_of = |keys: &[&RunKey]| &exp.runs[keys.first().map_or(0, |k| k.config)];
    // A pass: seeds of one configuration, their weights staged ahead on a GPU; each seed's
    // record is appended as soon as its pass is done.
    schedule(
        &groups,
        Place::of(exp.runs.iter().map(|r| r.backend.is_cpu()), true),
        &bar,
        |keys| keys.len() as u64,
        |keys| stage_seeds(spec_of(keys), keys),
        |keys, staged| {
            let records = run_seeds(spec_of(keys), keys, staged)?;
            for record in &records {
                segment.append(record)?;
            }
            progress.finished(out, records.len())
        },
    )?;
    bar.finish_and_clear();
    // Other shards may have written into the same folder meanwhile.
    let remaining = keys.len() - Records::scan(std::slice::from_ref(out))?.count(&keys);
    // Shards sharing a folder: the one that creates the lock derives, the others stop.
    let lock = out.join(DERIVE_LOCK);
    let _guard = match opts.shard {
        Some(_) if remaining == 0 => match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(_) => Some(LockGuard(lock)),
            Err(_) => {
                return Ok(Ran::Partial {
                    measured: todo.len(),
                    remaining: 0,
                });
            }
        },
        _ => None,
    };
    if remaining > 0 {
        progress.write(
            out,
            "partial: the other runs are other shards'",
            keys.len() - remaining,
        )?;
        return Ok(Ran::Partial {
            measured: todo.len(),
            remaining,
        });
    }
    let (outcomes, _) = derive(exp, &keys, std::slice::from_ref(out))?;
    let tables = write_csvs(out, &outcomes.iter().collect::<Vec<_>>())?;
    remove_replaced(out)?;
    Ok(Ran::Complete(
        outcomes,
        tables,
        start.elapsed().as_secs_f64(),
    ))
}

/// The manifest while runs finish: the suite, how many runs have records, rewritten at
/// most once a second (and the full manifest once all have finished).
struct Progress<'a> {
    exp: &'a Experiment,
    total: usize,
    state: Mutex<(usize, Option<Instant>)>,
}

impl<'a> Progress<'a> {
    fn new(exp: &'a Experiment, total: usize, held: usize) -> Progress<'a> {
        Progress {
            exp,
            total,
            state: Mutex::new((held, None)),
        }
    }

    /// `runs` more runs have their records.
    fn finished(&self, out: &Path, runs: usize) -> Result<(), RunnerError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| RunnerError::Internal("a worker panicked while writing results".into()))?;
        state.0 += runs;
        if state.1.is_some_and(|t| t.elapsed().as_secs_f64() < 1.0) && state.0 < self.total {
            return Ok(());
        }
        state.1 = Some(Instant::now());
        self.write(out, "running", state.0)
    }

    /// The manifest of a folder with `held` of the suite's runs, in `status`.
    fn write(&self, out: &Path, status: &str, held: usize) -> Result<(), RunnerError> {
        let m = serde_json::json!({
            "experiment": self.exp.name,
            "description": self.exp.description,
            "command": self.exp.command,
            "sigprop_version": env!("CARGO_PKG_VERSION"),
            "status": status,
            "runs_with_records": held.min(self.total),
            "runs_total": self.total,
            "store": RUNS_DIR,
        });
        let text =
            serde_json::to_string_pretty(&m).map_err(|e| RunnerError::Plot(e.to_string()))?;
        write_atomic(&out.join("manifest.json"), text.as_bytes())
    }
}
