//! sigprop-runner: experiments over seeds, statistics, CSV, charts and reports.
//!
//! The modules in layers, each using only those of the layers before it
//! (docs/architecture.md):
//!
//! - leaves: [`error`], [`format`] (numbers and slugs for people), [`labels`] (the trend's
//!   form and the verdict);
//! - spec: [`settings`] (the typed, validated form of every flag and suite key),
//!   [`tables`] (the training and coordinate-check plans), [`experiment`] (suites and grids
//!   into configurations);
//! - results: [`rows`], [`statistics`] (the registry of every statistic), [`output`],
//!   [`store`] (one record per run), [`outcome`] (what a configuration produced, for the
//!   reporters);
//! - analysis: [`aggregate`], [`trend`], [`verdict`], [`summary`], [`overlay`] (statistics
//!   over seeds, trends, verdicts and ranks, theory);
//! - report: [`charts`], [`report`];
//! - execution: [`schedule`] (jobs over the cores or the GPU, with progress), [`execute`]
//!   (running configurations into the store), [`bench`];
//! - studies: [`recommend`] (also `init = "auto"`), [`train`], [`coord`], [`theory`]
//!   (`sigprop theory`'s numbers);
//! - this file: run, merge and redraw a folder, and `recommend`'s whole study.
#![warn(missing_docs)]

pub mod aggregate;
pub mod bench;
pub mod charts;
pub mod coord;
pub mod error;
pub mod execute;
pub mod experiment;
pub mod format;
pub mod labels;
pub mod outcome;
pub mod output;
pub mod overlay;
pub mod recommend;
pub mod report;
pub mod rows;
pub(crate) mod schedule;
pub mod settings;
pub mod statistics;
pub mod store;
pub mod summary;
pub mod tables;
pub mod theory;
pub mod train;
pub mod trend;
pub mod verdict;

use std::path::{Path, PathBuf};

pub use error::RunnerError;
pub use execute::{Ran, RunOptions, run_experiment};
pub use experiment::Experiment;
pub use outcome::{Outcome, Tables};
pub use rows::{AggRow, ConfigKey, DensityRow, HistRow, LayerRow, SpectrumRow, SummaryRow};
pub use settings::{RunSpec, Settings};
pub use store::Shard;

use charts::draw_all;
use output::write_atomic;

/// What a finished experiment wrote.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Output folder.
    pub dir: PathBuf,
    /// Per-configuration summaries, in configuration order.
    pub summaries: Vec<(ConfigKey, SummaryRow)>,
    /// Chart files.
    pub charts: Vec<PathBuf>,
}

/// What `run` or `merge` left in the output folder.
#[derive(Debug, Clone)]
pub enum Done {
    /// Every run has its record: CSVs, charts, report and manifest are written.
    Finished(Finished),
    /// A shard's runs are written; other shards hold the rest (`sigprop merge`).
    Partial {
        /// Output folder.
        dir: PathBuf,
        /// Runs this invocation measured.
        measured: usize,
        /// Runs of the suite still without a record here.
        remaining: usize,
    },
}

/// Run `exp` into `opts.out`: records, then (once complete) CSVs, charts, report and
/// manifest.
pub fn run(exp: &Experiment, opts: &RunOptions) -> Result<Done, RunnerError> {
    match run_experiment(exp, opts)? {
        Ran::Complete(outcomes, tables, wall_s) => {
            finish(exp, &opts.out, &outcomes, tables, wall_s).map(Done::Finished)
        }
        Ran::Partial {
            measured,
            remaining,
        } => Ok(Done::Partial {
            dir: opts.out.clone(),
            measured,
            remaining,
        }),
    }
}

/// Manifest, charts and report of a folder whose CSVs (`tables`, from `outcomes`) are
/// written.
fn finish(
    exp: &Experiment,
    dir: &Path,
    outcomes: &[Outcome],
    tables: Tables,
    wall_s: f64,
) -> Result<Finished, RunnerError> {
    let manifest = report::manifest(&exp.name, &exp.description, &exp.command, outcomes, wall_s);
    let text =
        serde_json::to_string_pretty(&manifest).map_err(|e| RunnerError::Plot(e.to_string()))?;
    write_atomic(&dir.join("manifest.json"), text.as_bytes())?;
    draw(dir, &exp.name, &exp.description, &exp.command, tables)
}

/// Combine the stores of `dirs` (shard folders, or one folder many shards wrote into)
/// into `out`: their records copied into `out`'s store, then the CSVs, charts and report
/// derived, byte for byte what one machine running the whole suite writes. Folders of
/// different suites are refused; missing runs are an error unless `allow_partial`, which
/// aggregates each configuration over the seeds that have records.
pub fn merge(out: &Path, dirs: &[PathBuf], allow_partial: bool) -> Result<Finished, RunnerError> {
    let start = std::time::Instant::now();
    let mut suite: Option<(PathBuf, store::StoredExperiment)> = None;
    for d in dirs {
        let held = store::read_experiment(d)?.ok_or_else(|| {
            RunnerError::input(format!(
                "merge: {} holds no {} (not a sigprop output folder?)",
                d.display(),
                store::EXPERIMENT_FILE
            ))
        })?;
        match &suite {
            None => suite = Some((d.clone(), held)),
            Some((first, s)) => {
                if let Some(diff) = s.differs_from(&held) {
                    return Err(RunnerError::input(format!(
                        "merge: {} and {} hold different suites ({diff})",
                        first.display(),
                        d.display()
                    )));
                }
            }
        }
    }
    let Some((_, stored)) = suite else {
        return Err(RunnerError::input("merge: no folder to merge"));
    };
    if let Some(held) = store::read_experiment(out)?
        && let Some(diff) = held.differs_from(&stored)
    {
        return Err(RunnerError::input(format!(
            "merge: {} holds another suite ({diff}); choose another output folder",
            out.display()
        )));
    }
    let exp = stored.experiment();
    let keys = stored.keys();
    let found = store::Records::scan(dirs)?;
    let missing: Vec<&store::RunKey> = keys
        .iter()
        .filter(|k| !found.contains(&k.fingerprint))
        .collect();
    if !missing.is_empty() && !allow_partial {
        let list: Vec<String> = missing
            .iter()
            .take(8)
            .map(|k| format!("\"{}\" seed {}", exp.runs[k.config].label, k.seed))
            .collect();
        let more = if missing.len() > 8 {
            format!(" and {} more", missing.len() - 8)
        } else {
            String::new()
        };
        return Err(RunnerError::input(format!(
            "merge: {} of {} runs have no record: {}{more} (--allow-partial merges what there is)",
            missing.len(),
            keys.len(),
            list.join(", ")
        )));
    }
    execute::prepare_out(out)?;
    store::write_experiment(out, &stored)?;
    // The records the output folder lacks are appended to a segment of its own.
    let held = store::Records::scan(&[out.to_path_buf()])?;
    let segment = store::Segment::new(out);
    for k in &keys {
        if !held.contains(&k.fingerprint)
            && let Some(line) = found.line(&k.fingerprint)?
        {
            segment.append_line(&line)?;
        }
    }
    let (outcomes, _) = execute::derive(&exp, &keys, &[out.to_path_buf()])?;
    let tables = execute::write_csvs(out, &outcomes.iter().collect::<Vec<_>>())?;
    finish(&exp, out, &outcomes, tables, start.elapsed().as_secs_f64())
}

/// Redraw `dir` from its CSVs, titled from its `manifest.json`; also whether it had one (a
/// folder of copied CSVs redraws with a generic title; a manifest that is there and
/// unreadable is an error, not a silent default).
pub fn redraw_folder(dir: &Path) -> Result<(Finished, bool), RunnerError> {
    let path = dir.join("manifest.json");
    if !path.is_file() {
        return redraw(dir, "sigprop report", "", "").map(|f| (f, false));
    }
    let text = std::fs::read_to_string(&path).map_err(|source| RunnerError::Io {
        action: "reading",
        path: path.clone(),
        source,
    })?;
    let manifest: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        RunnerError::input(format!("{}: not a sigprop manifest: {e}", path.display()))
    })?;
    let field = |k: &str| manifest[k].as_str().unwrap_or("").to_string();
    let title = manifest["experiment"].as_str().unwrap_or("sigprop report");
    redraw(dir, title, &field("description"), &field("command")).map(|f| (f, true))
}

/// `sigprop recommend`'s study: every candidate of `exp` (built by
/// [`recommend::experiment`] from `base`) measured into `out`, ranked with the Jacobian's
/// spread, with `train` each candidate also trained (`out/train`), then written
/// (`recommend.md`, `recommend.json`) and returned.
pub fn recommend_study(
    exp: &Experiment,
    base: &Settings,
    learned: bool,
    train: Option<&tables::TrainTable>,
    out: &Path,
    quiet: bool,
) -> Result<recommend::Recommendation, RunnerError> {
    let opts = RunOptions {
        out: out.to_path_buf(),
        quiet,
        resume: false,
        shard: None,
    };
    let Ran::Complete(outcomes, tables, wall_s) = run_experiment(exp, &opts)? else {
        return Err(RunnerError::Internal("recommend ran partially".into()));
    };
    let f = finish(exp, out, &outcomes, tables, wall_s)?;
    let jacobian = recommend::jacobian_spread(&outcomes);
    let mut rec = recommend::recommend(base, learned, &f.summaries, &jacobian)?;
    if let Some(table) = train {
        let plan = table.plan(&exp.runs, None)?;
        let done = train::train(exp, &plan, &f.dir.join("train"), quiet)?;
        rec = recommend::with_training(rec, &plan, &done.outcomes)?;
    }
    rec.write(&f.dir)?;
    Ok(rec)
}

/// Draw charts and the report from the CSVs in `dir` (what `sigprop plot DIR` does).
pub fn redraw(
    dir: &Path,
    title: &str,
    description: &str,
    command: &str,
) -> Result<Finished, RunnerError> {
    draw(dir, title, description, command, Tables::read(dir)?)
}

/// Draw the charts and `report.md` of `dir` from `tables`.
fn draw(
    dir: &Path,
    title: &str,
    description: &str,
    command: &str,
    tables: Tables,
) -> Result<Finished, RunnerError> {
    let charts = draw_all(dir, &tables)?;
    let md = report::report_md(title, description, command, &tables.summaries, &charts, dir);
    write_atomic(&dir.join("report.md"), md.as_bytes())?;
    Ok(Finished {
        dir: dir.to_path_buf(),
        summaries: tables.summaries,
        charts,
    })
}
