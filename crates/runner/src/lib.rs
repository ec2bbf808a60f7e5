//! sigprop-runner: experiments run over seeds on the cores or the GPU, and the studies
//! built on them (recommend, training, coordinate checks).
//!
//! Above the spec crate (what to run) and the report crate (results, analysis, charts and
//! reports). Its own modules, in layers (docs/architecture.md):
//!
//! - execution: `schedule` (jobs over the cores or the GPU, with progress), [`execute`]
//!   (running configurations into the store), [`bench`];
//! - studies: [`recommend`] (also `init = "auto"`), [`train`], [`coord`], [`theory`]
//!   (`sigprop theory`'s numbers);
//! - this file: run and merge a folder, and `recommend`'s whole study.
#![warn(missing_docs)]

pub mod bench;
pub mod coord;
pub mod execute;
pub mod recommend;
pub(crate) mod schedule;
pub mod theory;
pub mod train;
pub mod transfer;

use std::path::{Path, PathBuf};

use sigprop_report::output::write_atomic;
use sigprop_report::{Finished, Outcome, Tables, draw, report, store};
use sigprop_spec::tables::TrainTable;
use sigprop_spec::{Experiment, RunnerError, Settings};

pub use execute::{Ran, RunOptions, run_experiment};

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

/// `sigprop recommend`'s study: every candidate of `exp` (built by
/// [`recommend::experiment`] from `base`) measured into `out`, ranked with the Jacobian's
/// spread, with `train` each candidate also trained (`out/train`), then written
/// (`recommend.md`, `recommend.json`) and returned.
pub fn recommend_study(
    exp: &Experiment,
    base: &Settings,
    learned: bool,
    train: Option<&TrainTable>,
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
