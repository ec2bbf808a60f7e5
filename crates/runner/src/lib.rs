//! sigprop-runner: experiments over seeds, statistics, CSV, charts and reports.
//!
//! - [`settings`]: the typed, validated form of every flag and suite key.
//! - [`experiment`]: suites (TOML) and grids into configurations.
//! - [`execute`]: running them, writing CSVs as each finishes.
//! - [`aggregate`], [`summary`], [`verdict`], [`overlay`]: statistics over seeds, trends,
//!   verdicts and ranks, theory.
//! - [`charts`], [`report`], [`output`]: what ends up in the output folder.
#![warn(missing_docs)]

pub mod aggregate;
pub mod charts;
pub mod error;
pub mod execute;
pub mod experiment;
pub mod output;
pub mod overlay;
pub mod report;
pub mod rows;
pub mod settings;
pub mod summary;
pub mod verdict;

use std::path::{Path, PathBuf};

pub use error::RunnerError;
pub use execute::{Outcome, RunOptions, run_experiment};
pub use experiment::Experiment;
pub use rows::{AggRow, ConfigKey, HistRow, LayerRow, SummaryRow};
pub use settings::{RunSpec, Settings};

use charts::{ChartData, draw_all};
use execute::GridRow;
use output::{read_keyed, read_plain, write_atomic};

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

/// Run `exp` into `opts.out`: CSVs, charts, report and manifest.
pub fn run(exp: &Experiment, opts: &RunOptions) -> Result<Finished, RunnerError> {
    let (outcomes, wall_s) = run_experiment(exp, opts)?;
    let dir = &opts.out;
    let manifest = report::manifest(&exp.name, &exp.description, &exp.command, &outcomes, wall_s);
    let text =
        serde_json::to_string_pretty(&manifest).map_err(|e| RunnerError::Plot(e.to_string()))?;
    write_atomic(&dir.join("manifest.json"), text.as_bytes())?;
    let finished = redraw(dir, &exp.name, &exp.description, &exp.command)?;
    Ok(finished)
}

/// Draw charts and the report from the CSVs in `dir` (what `sigprop plot DIR` does).
pub fn redraw(
    dir: &Path,
    title: &str,
    description: &str,
    command: &str,
) -> Result<Finished, RunnerError> {
    for f in ["aggregate.csv", "summary.csv", "histograms.csv", "grid.csv"] {
        if !dir.join(f).is_file() {
            return Err(RunnerError::input(format!(
                "{}: no {f} (not a sigprop output folder?)",
                dir.display()
            )));
        }
    }
    let aggs: Vec<(ConfigKey, AggRow)> = read_keyed(&dir.join("aggregate.csv"))?;
    let summaries: Vec<(ConfigKey, SummaryRow)> = read_keyed(&dir.join("summary.csv"))?;
    let hists: Vec<HistRow> = read_plain(&dir.join("histograms.csv"))?;
    let grid: Vec<GridRow> = read_plain(&dir.join("grid.csv"))?;
    let data = ChartData {
        aggs: &aggs,
        summaries: &summaries,
        hists: &hists,
        grid: &grid,
    };
    let charts = draw_all(dir, &data)?;
    let md = report::report_md(title, description, command, &summaries, &charts, dir);
    write_atomic(&dir.join("report.md"), md.as_bytes())?;
    Ok(Finished {
        dir: dir.to_path_buf(),
        summaries,
        charts,
    })
}
