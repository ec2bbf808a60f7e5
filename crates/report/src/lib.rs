//! sigprop-report: the results of an experiment and what is made of them, without Burn:
//! `sigprop plot` redraws a folder from its CSVs with this crate alone.
//!
//! The modules in layers, each using only those of the layers before it (and the spec
//! crate below them all):
//!
//! - leaves: [`labels`] (the trend's form and the verdict);
//! - results: [`rows`], [`statistics`] (the registry of every statistic), [`output`],
//!   [`store`] (one record per run), [`outcome`] (what a configuration produced, for the
//!   reporters);
//! - analysis: [`aggregate`], [`trend`], [`verdict`], [`summary`], [`overlay`] (statistics
//!   over seeds, trends, verdicts and ranks, theory);
//! - report: [`charts`], [`report`] (`report.md`), [`html`] (`report.html`);
//! - this file: a folder's charts and report drawn from its tables, and `sigprop plot`'s
//!   redraw.
#![warn(missing_docs)]

pub mod aggregate;
pub mod charts;
pub mod html;
pub mod labels;
pub mod outcome;
pub mod output;
pub mod overlay;
pub mod report;
pub mod rows;
pub mod statistics;
pub mod store;
pub mod summary;
pub mod trend;
pub mod verdict;

use std::path::{Path, PathBuf};

use sigprop_spec::RunnerError;

pub use outcome::{Outcome, Tables};
pub use rows::{AggRow, ConfigKey, DensityRow, HistRow, LayerRow, SpectrumRow, SummaryRow};
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
pub fn draw(
    dir: &Path,
    title: &str,
    description: &str,
    command: &str,
    tables: Tables,
) -> Result<Finished, RunnerError> {
    let charts = draw_all(dir, &tables)?;
    let md = report::report_md(title, description, command, &tables.summaries, &charts, dir);
    write_atomic(&dir.join("report.md"), md.as_bytes())?;
    html::write_html(dir, title, &md, Some(&tables))?;
    Ok(Finished {
        dir: dir.to_path_buf(),
        summaries: tables.summaries,
        charts,
    })
}
