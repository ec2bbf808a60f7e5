//! `report.md` and `manifest.json`: what was run, how to rerun it, and what it showed.
//!
//! The report embeds the charts, ranks the configurations by stability and quotes the
//! exact command; the manifest records the resolved configurations, versions, devices and
//! wall times. Pure functions from results to text; the caller writes them.

use std::path::{Path, PathBuf};

use serde_json::json;
use sigprop_spec::format::fmt_num;

use crate::labels::Form;
use crate::outcome::Outcome;
use crate::rows::{ConfigKey, SummaryRow};
use crate::verdict::rank;

/// The relative link from `dir` to the repository's `docs/<page>`, if `dir` lies inside a
/// checkout that has it; else the page named in words.
pub fn docs_link(dir: &Path, page: &str) -> String {
    let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    for (up, anc) in abs.ancestors().enumerate() {
        if anc.join("docs").join(page).is_file() {
            let rel = format!("{}docs/{page}", "../".repeat(up));
            return format!("[docs/{page}]({rel})");
        }
    }
    format!("docs/{page} in the sigprop repository")
}

/// One plain-language sentence on a configuration's outcome: what grows, what vanishes,
/// by how much, and whether mean-field theory agrees.
pub fn outcome_sentence(k: &ConfigKey, r: &SummaryRow) -> String {
    let dir = |name: &str, form: Form, ratio: f64, power: f64, rate: f64| match form {
        Form::Flat => format!("{name} holds (x{} over the depth)", fmt_num(ratio)),
        Form::PowerLaw => format!(
            "{name} follows a power law (~ l^{}; x{} over the depth)",
            fmt_num(power),
            fmt_num(ratio)
        ),
        Form::Exponential => format!(
            "{name} {} exponentially (x{} over the depth, {} per layer)",
            if ratio > 1.0 { "grows" } else { "shrinks" },
            fmt_num(ratio),
            fmt_num(rate.exp())
        ),
        Form::Unknown => format!("{name} cannot be fitted"),
    };
    let mut s = format!(
        "**{}**: {}. Forward, {}; backward toward the input, {}.",
        k.label,
        r.verdict_detail,
        dir(
            "Var(z)",
            r.fwd_form,
            r.fwd_ratio,
            r.fwd_power,
            r.fwd_log_slope
        ),
        dir(
            "Var(dL/dz)",
            r.bwd_form,
            r.bwd_ratio,
            r.bwd_power,
            r.bwd_log_slope
        ),
    );
    if let Some(chi) = r.theory_chi1 {
        let critical = (chi - 1.0).abs() < 1e-6;
        if critical {
            // At chi_1 = 1 the theory predicts no exponential change: a power law at most.
            let agrees = matches!(r.bwd_form, Form::Flat | Form::PowerLaw);
            s += &format!(
                " Mean-field theory: chi_1 = 1 (critical), no exponential change of the \
                 gradients; measured: {}: {}.",
                match r.bwd_form {
                    Form::Flat => "flat",
                    Form::PowerLaw => "a power law",
                    Form::Exponential => "exponential",
                    Form::Unknown => "unknown",
                },
                if agrees { "agrees" } else { "disagrees" }
            );
        } else {
            let predicted = chi.ln();
            let phase = if chi < 1.0 { "ordered" } else { "chaotic" };
            let (lo, hi) = (
                r.bwd_slope_lo.unwrap_or(r.bwd_log_slope),
                r.bwd_slope_hi.unwrap_or(r.bwd_log_slope),
            );
            // Finite depth and width bias the fit (the first layers are not at q* yet), so
            // a prediction within 10% of itself (or 0.01 per layer) of the interval agrees.
            let slack = 0.1 * predicted.abs() + 0.01;
            let agrees = predicted >= lo - slack && predicted <= hi + slack;
            s += &format!(
                " Mean-field theory: chi_1 = {} ({phase}), ln chi_1 = {} backward per layer; \
                 measured {} [{}, {}]: {}.",
                fmt_num(chi),
                fmt_num(predicted),
                fmt_num(r.bwd_log_slope),
                fmt_num(lo),
                fmt_num(hi),
                if agrees { "agrees" } else { "disagrees" }
            );
        }
    }
    s
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
    let ranked = rank(summaries);
    s += "## Outcomes\n\n";
    for (_, (k, r)) in &ranked {
        s += &format!("- {}\n", outcome_sentence(k, r));
    }
    s += "\n## Ranked by stability\n\n";
    s += "| rank | configuration | arch | init | activation | depth | width | fwd ln-slope/layer [95%] | bwd ln-slope/layer [95%] | Var(z) last/first | Var(dL/dz) first/last | verdict | chi_1 (theory) |\n";
    s += "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    let interval = |x: f64, lo: Option<f64>, hi: Option<f64>| match (lo, hi) {
        (Some(a), Some(b)) => format!("{} [{}, {}]", fmt_num(x), fmt_num(a), fmt_num(b)),
        _ => fmt_num(x),
    };
    for &(rank, (k, r)) in &ranked {
        let tied = ranked.iter().filter(|(q, _)| *q == rank).count() > 1;
        let chi = r.theory_chi1.map(fmt_num).unwrap_or_else(|| "-".into());
        s += &format!(
            "| {}{} | {} | {} | `{}` | `{}` | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            rank,
            if tied { " (tie)" } else { "" },
            k.label,
            k.arch,
            k.init,
            k.activation,
            k.depth,
            k.width,
            interval(r.fwd_log_slope, r.fwd_slope_lo, r.fwd_slope_hi),
            interval(r.bwd_log_slope, r.bwd_slope_lo, r.bwd_slope_hi),
            fmt_num(r.fwd_ratio),
            fmt_num(r.bwd_ratio),
            r.verdict_detail,
            chi
        );
    }
    s += &format!(
        "\nVerdicts and ranks follow the rule in {}: the shape of each direction's change \
         with depth (flat, power law, exponential) decides the class, then the larger \
         per-layer rate; configurations whose 95% intervals overlap share a rank (tie).\n",
        docs_link(dir, "verdicts.md")
    );
    s += &charts_md(charts, dir);
    s += &format!(
        "Columns are defined in {}; dashed lines are the mean-field prediction where it applies \
         ({}).\n",
        docs_link(dir, "columns.md"),
        docs_link(dir, "theory.md")
    );
    s
}

/// A `## Charts` section embedding every PNG of `charts` by its path relative to `dir`
/// (empty without charts).
pub fn charts_md(charts: &[PathBuf], dir: &Path) -> String {
    let pngs: Vec<&PathBuf> = charts
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    let mut s = String::new();
    if !pngs.is_empty() {
        s += "\n## Charts\n\n";
        for p in pngs {
            let rel = p.strip_prefix(dir).unwrap_or(p);
            let name = rel.file_stem().and_then(|n| n.to_str()).unwrap_or("chart");
            s += &format!("![{}]({})\n\n", name.replace('_', " "), rel.display());
        }
    }
    s
}

/// The commit of the checkout the command runs in, if it is one.
pub fn git_commit() -> Option<String> {
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// What `autoinit` chose for `net`, per layer: the plan's moments, rule and reason, and each
/// layer's weight variance times fan-in (`sigma_w2`), bias variance and whether its rows are centred.
/// `None` for other schemes.
pub fn autoinit_json(net: &sigprop_nets::ResolvedNet) -> Option<serde_json::Value> {
    let p = net.autoinit?;
    let layers: Vec<serde_json::Value> = (1..net.widths.len())
        .map(|l| {
            let a = if l == 1 { p.first } else { p.hidden };
            json!({
                "layer": l,
                "sigma_w2": a.sigma_w2,
                "sigma_b2": a.sigma_b2,
                "centred_rows": a.center,
            })
        })
        .collect();
    Some(json!({
        "q": p.q,
        "rule": p.rule.as_str(),
        "reason": p.describe(),
        "act_mean": p.mean,
        "act_second_moment": p.second_moment,
        "dphi_second_moment": p.deriv_moment,
        "chi1": p.chi1,
        "layers": layers,
    }))
}

/// The manifest: resolved configurations, versions, devices, seeds and wall times.
pub fn manifest(
    name: &str,
    description: &str,
    command: &str,
    outcomes: &[Outcome],
    wall_s: f64,
) -> serde_json::Value {
    let commit = git_commit();
    json!({
        "experiment": name,
        "description": description,
        "command": command,
        "sigprop_version": env!("CARGO_PKG_VERSION"),
        "git_commit": commit,
        "wall_time_s": wall_s,
        "write_s": crate::output::write_seconds(),
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
            // TAT's leaky ReLU: the slope solved for this depth.
            "tat_slope": match o.spec.net.activation {
                sigprop_init::Activation::TatLeakyRelu { slope, .. } => slope,
                _ => None,
            },
            // DKS: the transformation solved for this depth.
            "dks_shape": match o.spec.net.activation {
                sigprop_init::Activation::Dks { shape: Some(s), .. } => Some(serde_json::json!({
                    "alpha": s.alpha,
                    "beta": s.beta,
                    "gamma": s.gamma,
                    "delta": s.delta,
                })),
                _ => None,
            },
            "autoinit": autoinit_json(&o.spec.net),
            "auto": o.spec.auto,
            "prune": o.spec.net.config.prune.as_ref().map(|spec| json!({
                "spec": spec,
                "seeds": o.pruned.iter().map(|(seed, t)| json!({
                    "seed": seed,
                    "sparsity": 1.0 - t.iter().map(|x| x.1).sum::<usize>() as f64
                        / t.iter().map(|x| x.2).sum::<usize>().max(1) as f64,
                    "tensors": t.iter().map(|(path, kept, total)| json!({
                        "path": path,
                        "kept": kept,
                        "total": total,
                        "kept_frac": *kept as f64 / (*total).max(1) as f64,
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })),
            "tuning": (!o.tuning.is_empty()).then(|| json!({
                "spec": o.spec.net.config.weight_init,
                "seeds": o.tuning.iter().map(|(seed, t)| json!({
                    "seed": seed,
                    "method": t.method,
                    "steps": t.steps,
                    "metrics": t.metrics.iter().map(|(name, before, after)| json!({
                        "name": name,
                        "base": before,
                        "tuned": after,
                    })).collect::<Vec<_>>(),
                    "tensors": t.tensors.iter().map(|(path, scale)| json!({
                        "path": path,
                        "scale": scale,
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })),
            "times": o.times.iter().map(|(seed, t)| json!({
                "seed": seed,
                "init_s": t.init_s,
                "forward_backward_s": t.forward_backward_s,
                "stats_s": t.stats_s,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
