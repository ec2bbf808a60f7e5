//! `report.md` and `manifest.json`: what was run, how to rerun it, and what it showed.
//!
//! The report embeds the charts, ranks the configurations by stability and quotes the
//! exact command; the manifest records the resolved configurations, versions, devices and
//! wall times. Pure functions from results to text; the caller writes them.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::execute::Outcome;
use crate::rows::{ConfigKey, SummaryRow};
use crate::summary::RATIO_LIMIT;

/// Rank: stable first, by the larger absolute log change over depth; collapsed and
/// diverged last.
pub fn ranked(summaries: &[(ConfigKey, SummaryRow)]) -> Vec<&(ConfigKey, SummaryRow)> {
    let score = |s: &SummaryRow| {
        let class = match s.verdict.as_str() {
            "diverged" => 3.0f64,
            "collapsed" => 2.0,
            _ => 0.0,
        };
        let change = s.fwd_ratio.ln().abs().max(s.bwd_ratio.ln().abs());
        (
            class,
            if change.is_finite() {
                change
            } else {
                f64::INFINITY
            },
        )
    };
    let mut v: Vec<_> = summaries.iter().collect();
    v.sort_by(|a, b| {
        let (sa, sb) = (score(&a.1), score(&b.1));
        sa.0.total_cmp(&sb.0)
            .then(sa.1.total_cmp(&sb.1))
            .then(a.0.config.cmp(&b.0.config))
    });
    v
}

fn num(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x != 0.0 && (x.abs() >= 1e4 || x.abs() < 1e-3) {
        format!("{x:.3e}")
    } else {
        format!("{x:.4}")
    }
}

/// The Markdown report.
pub fn report_md(
    title: &str,
    description: &str,
    command: &str,
    summaries: &[(ConfigKey, SummaryRow)],
    charts: &[PathBuf],
    dir: &Path,
) -> String {
    let mut s = format!("# {title}\n\n");
    if !description.is_empty() {
        s += &format!("{}\n\n", description.trim());
    }
    s += &format!("Reproduce with:\n\n```sh\n{command}\n```\n\n");
    s += "## Summary, ranked by stability\n\n";
    s += "| rank | configuration | arch | init | activation | depth | width | fwd ln-slope/layer | bwd ln-slope/layer | Var(z) last/first | Var(dL/dz) first/last | verdict | chi_1 (theory) |\n";
    s += "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (i, (k, r)) in ranked(summaries).into_iter().enumerate() {
        let chi = r.theory_chi1.map(num).unwrap_or_else(|| "-".into());
        let verdict = match r.first_nonfinite_layer {
            Some(l) => format!("{} (non-finite from layer {l})", r.verdict),
            None => r.verdict.clone(),
        };
        s += &format!(
            "| {} | {} | {} | `{}` | `{}` | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            i + 1,
            k.label,
            k.arch,
            k.init,
            k.activation,
            k.depth,
            k.width,
            num(r.fwd_log_slope),
            num(r.bwd_log_slope),
            num(r.fwd_ratio),
            num(r.bwd_ratio),
            verdict,
            chi
        );
    }
    s += &format!(
        "\nVerdict rule: `diverged` if any seed produced NaN/Inf; `collapsed` if at the last layer \
         more than 99% of units are dead or the across-batch variance is below 1% of the activation \
         variance; otherwise `exploding` / `vanishing` when Var(z) (forward) or Var(dL/dz) (backward) \
         changes by more than a factor {RATIO_LIMIT} over the depth (the larger change decides), else `stable`.\n"
    );
    let pngs: Vec<&PathBuf> = charts
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    if !pngs.is_empty() {
        s += "\n## Charts\n\n";
        for p in pngs {
            let rel = p.strip_prefix(dir).unwrap_or(p);
            let name = rel.file_stem().and_then(|n| n.to_str()).unwrap_or("chart");
            s += &format!("![{name}]({})\n\n", rel.display());
        }
    }
    s += "Columns are defined in THEORY.md; dashed lines are the mean-field prediction where it applies.\n";
    s
}

/// The manifest: resolved configurations, versions, devices, seeds and wall times.
pub fn manifest(
    name: &str,
    description: &str,
    command: &str,
    outcomes: &[Outcome],
    wall_s: f64,
) -> serde_json::Value {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    json!({
        "experiment": name,
        "description": description,
        "command": command,
        "sigprop_version": env!("CARGO_PKG_VERSION"),
        "git_commit": commit,
        "wall_time_s": wall_s,
        "configurations": outcomes.iter().map(|o| json!({
            "config": o.spec.index,
            "label": o.spec.label,
            "grid": o.spec.grid,
            "net": o.spec.net,
            "batch": o.spec.batch,
            "backend": o.spec.backend,
            "device": o.device,
            "seeds": o.spec.seeds,
            "hist_layers": o.spec.hist_layers,
            "critical_sigma_w": o.critical_sigma_w,
            "times": o.times.iter().map(|(seed, t)| json!({
                "seed": seed,
                "init_s": t.init_s,
                "forward_backward_s": t.forward_backward_s,
                "stats_s": t.stats_s,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
