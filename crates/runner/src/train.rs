//! `sigprop train`: the configurations of an experiment, each at every learning rate of the
//! plan, trained over their seeds with the training probe (`sigprop_nets::train`); then
//! `train.csv` (loss and gradient norm per step), `updates.csv` (|dW|/|W| per weight at the
//! logged steps), `train_layers.csv` (the per-layer statistics at the logged steps),
//! `train_spectrum.csv` (with `--jacobian`: the Jacobian singular values at the logged steps),
//! `summary.csv` (per configuration: loss at the last step, steps to a target fraction of
//! the initial loss, divergences) and a loss chart with the seeds' band.
//!
//! Runs are independent: on the CPU backends they go in parallel, on a GPU one at a time.
//! Every file is written in configuration, learning-rate and seed order, so a rerun writes
//! the same bytes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sigprop_nets::{
    Checkpoint, LayerStats, Params, ProbeOptions, TrainOptions, TrainResult, device, initial_params,
};
use sigprop_report::aggregate::{key_of, mean_sd_ci};
use sigprop_report::html::write_html;
use sigprop_report::outcome::{Arm, TrainCols, TrainOutcome, TrainSummary};
use sigprop_report::output::{keyed_csv, write_atomic};
use sigprop_report::rows::{ConfigKey, GridRow, RunCols, SpectrumRow};
use sigprop_spec::error::RunnerError;
use sigprop_spec::experiment::Experiment;
use sigprop_spec::format::fmt_sig;
use sigprop_spec::tables::{Lottery, TrainPlan};

use crate::execute::{prepare_out, validate};
use crate::schedule::{Place, progress_bar, schedule};

/// `train.csv`: one row per configuration x seed x step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainRow {
    /// Seed.
    pub seed: u64,
    /// Updates made before this step's batch (0: the initial network).
    pub step: usize,
    /// The training loss on this step's batch: mean squared error (teacher) or mean
    /// cross-entropy (`loss` is the probed pass's loss, a configuration column).
    pub train_loss: f64,
    /// Norm of the whole gradient, readout included.
    pub grad_norm: f64,
    /// The loss on the fixed evaluation batch (step 0, the logged steps and the last).
    pub eval_loss: Option<f64>,
}

/// `updates.csv`: one row per configuration x seed x logged step x weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateRow {
    /// Seed.
    pub seed: u64,
    /// The logged step (the update is the one step `step + 1` makes).
    pub step: usize,
    /// The tensor's path (`layers.3.weight`, `readout`); `param` is the parametrization.
    pub tensor: String,
    /// `|W|` before the update (Frobenius).
    pub weight_norm: f64,
    /// `|dW|`.
    pub update_norm: f64,
    /// `|dW| / |W|` (infinite for a tensor that is all zeros, such as a zero bias).
    pub update_ratio: f64,
}

/// The step of a `train_layers.csv` row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepCol {
    /// Updates made before the statistics were measured.
    pub step: usize,
}

fn lottery_verdict((tl, th): (f64, f64), (rl, rh): (f64, f64)) -> &'static str {
    if th < rl {
        "the winning ticket retrains to a lower loss than the random mask (intervals apart)"
    } else if rh < tl {
        "the random mask retrains to a lower loss than the winning ticket (intervals apart)"
    } else {
        "no winning ticket at this size: the ticket's and the random mask's intervals overlap"
    }
}

/// The lottery ticket's comparison of one configuration: the winning ticket against the
/// random mask of the same sparsity, by their final losses' 95% intervals.
pub fn lottery_lines(outcomes: &[TrainOutcome], lottery: Option<Lottery>) -> Vec<String> {
    let Some(l) = lottery else {
        return Vec::new();
    };
    let s = l.sparsity;
    let ci = |m: &TrainSummary| match (m.loss_final_lo, m.loss_final_hi) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => None,
    };
    let fmt = |m: &TrainSummary| match ci(m) {
        Some((a, b)) => format!(
            "{} [{}, {}]",
            fmt_sig(m.loss_final, 4),
            fmt_sig(a, 4),
            fmt_sig(b, 4)
        ),
        None => fmt_sig(m.loss_final, 4),
    };
    outcomes
        .chunks(3)
        .filter(|c| c.len() == 3 && c[1].arm == Arm::Ticket && c[2].arm == Arm::Random)
        .map(|c| {
            let (dense, ticket, random) = (&c[0].summary, &c[1].summary, &c[2].summary);
            let verdict = match (ci(ticket), ci(random)) {
                (Some(t), Some(r)) => lottery_verdict(t, r),
                _ => "one seed, or a diverged arm: no interval to compare (run more seeds)",
            };
            let label = c[0]
                .key
                .label
                .strip_suffix(" dense")
                .unwrap_or(&c[0].key.label);
            let how = match (l.rounds, l.rewind) {
                (1, 0) => "one shot".to_string(),
                (1, k) => format!("one shot, rewound to step {k}"),
                (r, 0) => format!("{r} rounds"),
                (r, k) => format!("{r} rounds, rewound to step {k}"),
            };
            format!(
                "{label}, sparsity {s} ({how}): dense {}, ticket {}, random mask {}: {verdict}",
                fmt(dense),
                fmt(ticket),
                fmt(random)
            )
        })
        .collect()
}

/// What `sigprop train` wrote.
#[derive(Debug, Clone)]
pub struct TrainFinished {
    /// Output folder.
    pub dir: PathBuf,
    /// Every configuration.
    pub outcomes: Vec<TrainOutcome>,
    /// Charts.
    pub charts: Vec<PathBuf>,
    /// With several learning rates: how far the best one moves per parametrization.
    pub transfers: Vec<crate::transfer::Transfer>,
}

/// Summarize one configuration's runs.
pub fn summarize_runs(runs: &[(u64, TrainResult)], target: f64) -> TrainSummary {
    let initial: Vec<f64> = runs
        .iter()
        .filter_map(|(_, r)| r.steps.first().and_then(|s| s.eval_loss))
        .collect();
    // The ratio compares the same seeds: those that did not diverge.
    let initial_kept: Vec<f64> = runs
        .iter()
        .filter(|(_, r)| r.diverged_at.is_none())
        .filter_map(|(_, r)| r.steps.first().and_then(|s| s.eval_loss))
        .collect();
    let finals: Vec<f64> = runs
        .iter()
        .filter(|(_, r)| r.diverged_at.is_none())
        .filter_map(|(_, r)| r.steps.last().and_then(|s| s.eval_loss))
        .collect();
    let mean = |xs: &[f64]| {
        if xs.is_empty() {
            f64::NAN
        } else {
            xs.iter().sum::<f64>() / xs.len() as f64
        }
    };
    let (loss_final, _, ci) = if finals.is_empty() {
        (f64::NAN, None, None)
    } else {
        mean_sd_ci(&finals)
    };
    let hits: Vec<f64> = runs
        .iter()
        .filter_map(|(_, r)| {
            // Counted from the run's first step: 0, or the rewind step of a lottery arm.
            let first = r.steps.first()?;
            r.steps
                .iter()
                .find(|s| s.loss.is_finite() && s.loss <= target * first.loss)
                .map(|s| (s.step - first.step) as f64)
        })
        .collect();
    let diverged: Vec<usize> = runs.iter().filter_map(|(_, r)| r.diverged_at).collect();
    let loss_initial = mean(&initial);
    // Seeds whose evaluation loss at the last step is at most `target` times their own at
    // step 0.
    let trained = runs
        .iter()
        .filter(|(_, r)| {
            let first = r.steps.first().and_then(|s| s.eval_loss);
            let last = r.steps.last().and_then(|s| s.eval_loss);
            r.diverged_at.is_none()
                && matches!((first, last), (Some(a), Some(b)) if b <= target * a)
        })
        .count();
    let verdict = if !diverged.is_empty() {
        "diverged"
    } else if trained == runs.len() && !runs.is_empty() {
        "trains"
    } else if trained == 0 {
        "stalls"
    } else {
        "partial"
    };
    TrainSummary {
        seeds: runs.len(),
        loss_initial,
        loss_final,
        loss_final_lo: ci.map(|c| c.0),
        loss_final_hi: ci.map(|c| c.1),
        loss_ratio: loss_final / mean(&initial_kept),
        target,
        steps_to_target: (!hits.is_empty()).then(|| mean(&hits)),
        reached: hits.len(),
        diverged: diverged.len(),
        diverged_step: diverged.first().copied(),
        verdict: verdict.to_string(),
    }
}

/// Train every configuration of `exp` at every learning rate of `plan` into `out`.
pub fn train(
    exp: &Experiment,
    plan: &TrainPlan,
    out: &Path,
    quiet: bool,
) -> Result<TrainFinished, RunnerError> {
    plan.check()?;
    for spec in &exp.runs {
        spec.refuse_precision("train")?;
    }
    validate(exp)?;
    prepare_out(out)?;
    // (configuration, learning rate) pairs, in order; each keyed as its own configuration.
    let mut configs = Vec::new();
    // sigma_b^2 of each configuration where the theory applies (the heatmap's 6 xi_c line).
    let sigma_b2: Vec<Option<f64>> = exp
        .runs
        .iter()
        .map(|spec| sigprop_report::overlay::theory_params(&spec.net).map(|(_, b2)| b2))
        .collect();
    let arms: &[Arm] = if plan.lottery.is_some() {
        &[Arm::Dense, Arm::Ticket, Arm::Random]
    } else {
        &[Arm::Dense]
    };
    for spec in &exp.runs {
        for &lr in &plan.lrs {
            let dense = configs.len();
            for &arm in arms {
                let mut key = key_of(spec);
                key.config = configs.len();
                if plan.lrs.len() > 1 {
                    key.label = format!("{} lr={lr}", key.label);
                }
                if plan.lottery.is_some() {
                    key.label = format!("{} {}", key.label, arm.as_str());
                }
                configs.push((spec, lr, key, arm, dense));
            }
        }
    }
    // Dense runs first; a ticket or random-mask run needs its dense run's final weights.
    let jobs_of = |want: &dyn Fn(Arm) -> bool| -> Vec<(usize, u64)> {
        configs
            .iter()
            .enumerate()
            .filter(|(_, c)| want(c.3))
            .flat_map(|(c, (spec, ..))| spec.seeds.iter().map(move |&s| (c, s)))
            .collect()
    };
    let dense_jobs = jobs_of(&|a| a == Arm::Dense);
    let arm_jobs = jobs_of(&|a| a != Arm::Dense);
    let bar = progress_bar(dense_jobs.len() + arm_jobs.len(), 0, "trainings", quiet);
    // Each dense run's final weights, its checkpoint at the rewind step and the step it
    // diverged at, for its arms.
    type Finals =
        std::collections::HashMap<(usize, u64), (Params, Option<Checkpoint>, Option<usize>)>;
    let finals: std::sync::Mutex<Finals> = std::sync::Mutex::new(Finals::new());
    let stage = |&(c, seed): &(usize, u64)| -> Result<Params, RunnerError> {
        let spec = configs[c].0;
        let dev = device(spec.backend)?;
        Ok(initial_params(&spec.net, seed, spec.batch, &dev)?.0)
    };
    let work = |&(c, seed): &(usize, u64), initial: Params| -> Result<TrainResult, RunnerError> {
        let (spec, lr, _, arm, dense) = &configs[c];
        let net = &spec.net;
        let dev = device(spec.backend)?;
        let mut opts = TrainOptions {
            steps: plan.steps,
            optimizer: plan.optimizer,
            lr: *lr,
            batch: spec.batch,
            task: plan.task.clone(),
            log_steps: plan.log_steps.clone(),
            probe: ProbeOptions {
                batch: spec.batch,
                hist_layers: Vec::new(),
                hist_bins: 0,
                jacobian: spec.jacobian.clone(),
                precision: None,
            },
            param: run_param(spec, plan),
            eval_batch: plan.eval_batch,
            fixed_batch: false,
            coords: false,
            resume: None,
            checkpoint_at: None,
        };
        let Some(l) = plan.lottery.filter(|_| *arm != Arm::Dense) else {
            opts.checkpoint_at = plan.lottery.map(|l| l.rewind);
            let mut r = sigprop_nets::train(net, &initial, seed, &opts, &dev)?;
            // Only a dense run of the lottery procedure keeps its final weights and its
            // checkpoint, until its arms have read them.
            let last = std::mem::replace(&mut r.final_params, Params { tensors: vec![] });
            if plan.lottery.is_some() {
                finals
                    .lock()
                    .map_err(|_| RunnerError::Internal("a training thread panicked".into()))?
                    .insert((c, seed), (last, r.checkpoint.take(), r.diverged_at));
            }
            return Ok(r);
        };
        let (mut trained, checkpoint, dense_diverged) = finals
            .lock()
            .map_err(|_| RunnerError::Internal("a training thread panicked".into()))?
            .get(&(*dense, seed))
            .cloned()
            .ok_or_else(|| RunnerError::Internal("lottery: no dense run".into()))?;
        // A dense run that diverged before the rewind step leaves nothing to rewind to: the
        // arm diverged there too.
        let Some(checkpoint) = checkpoint else {
            return Ok(TrainResult::diverged(
                dense_diverged.unwrap_or(l.rewind),
                initial,
            ));
        };
        opts.resume = Some(checkpoint.resume.clone());
        let masks = |rewound: &Params, trained: &Params, s: f64| {
            sigprop_nets::prune::lottery_masks(net, rewound, trained, s, seed)
                .map_err(|e| RunnerError::input(e.to_string()))
        };
        let mut r = if *arm == Arm::Random {
            let random = masks(&checkpoint.params, &trained, l.sparsity)?.1;
            sigprop_nets::train(net, &random, seed, &opts, &dev)?
        } else {
            // Iterative magnitude pruning: each round prunes the last round's smallest final
            // weights, rewinds the rest to the checkpoint and retrains.
            let mut ticket = checkpoint.params;
            let mut round = 1;
            loop {
                ticket = masks(&ticket, &trained, l.sparsity_after(round))?.0;
                let mut r = sigprop_nets::train(net, &ticket, seed, &opts, &dev)?;
                if round == l.rounds || r.diverged_at.is_some() {
                    break r;
                }
                trained = std::mem::replace(&mut r.final_params, Params { tensors: vec![] });
                round += 1;
            }
        };
        r.final_params = Params { tensors: vec![] };
        Ok(r)
    };
    // Training's staging may compute on the device (LSUV, MetaInit, GradInit, pruning): each
    // job is staged in its turn there.
    let place = Place::of(exp.runs.iter().map(|r| r.backend.is_cpu()), false);
    let run_all = |jobs: &[(usize, u64)]| schedule(jobs, place, &bar, |_| 1, stage, work);
    let mut results = run_all(&dense_jobs)?;
    results.extend(run_all(&arm_jobs)?);
    let jobs: Vec<(usize, u64)> = dense_jobs.into_iter().chain(arm_jobs).collect();
    bar.finish_and_clear();
    let mut outcomes: Vec<TrainOutcome> = configs
        .iter()
        .map(|(spec, lr, key, arm, _)| TrainOutcome {
            key: key.clone(),
            spec: spec.index,
            cols: TrainCols {
                task: plan.task.name().to_string(),
                objective: plan.task.objective().to_string(),
                optimizer: plan.optimizer.to_string(),
                lr: *lr,
                steps: plan.steps,
                param: run_param(spec, plan).kind.to_string(),
            },
            runs: Vec::new(),
            summary: summarize_runs(&[], plan.target),
            arm: *arm,
        })
        .collect();
    for (&(c, seed), r) in jobs.iter().zip(results) {
        outcomes[c].runs.push((seed, r));
    }

    for o in &mut outcomes {
        o.summary = summarize_runs(&o.runs, plan.target);
    }
    write_train_csvs(out, &outcomes)?;
    let grid: Vec<GridRow> = exp
        .runs
        .iter()
        .flat_map(|r| {
            r.grid.iter().map(|(k, v)| GridRow {
                config: r.index,
                key: k.clone(),
                value: v.clone(),
            })
        })
        .collect();
    write_atomic(
        &out.join("grid.csv"),
        &sigprop_report::output::grid_csv(&grid)?,
    )?;
    let best = crate::transfer::best_lrs(exp, &plan.lrs, &outcomes);
    let transfers = crate::transfer::transfers(&best, &plan.lrs);
    if !best.is_empty() {
        write_atomic(&out.join("best_lr.csv"), &keyed_csv(&best)?)?;
    }
    let mut charts = sigprop_report::charts::loss_charts(out, &outcomes)?;
    charts.extend(sigprop_report::charts::train_heatmaps(
        out, &outcomes, &grid, &sigma_b2,
    )?);
    if !best.is_empty() {
        charts.extend(crate::transfer::loss_vs_lr_chart(out, exp, &outcomes)?);
    }
    let mut md = report_md(exp, plan, &outcomes, &charts, out);
    if !best.is_empty() {
        md = with_transfer_md(md, &best, &transfers);
    }
    write_atomic(&out.join("report.md"), md.as_bytes())?;
    write_html(out, &exp.name, &md, None)?;
    let mut manifest = manifest(exp, plan, &outcomes);
    if let Some(m) = manifest.get_mut("train").and_then(|t| t.as_object_mut()) {
        m.insert(
            "params".into(),
            serde_json::json!(
                exp.runs
                    .iter()
                    .map(|r| run_param(r, plan).kind.to_string())
                    .collect::<Vec<_>>()
            ),
        );
        m.insert("transfer".into(), serde_json::json!(transfers));
    }
    let text =
        serde_json::to_string_pretty(&manifest).map_err(|e| RunnerError::Plot(e.to_string()))?;
    write_atomic(&out.join("manifest.json"), text.as_bytes())?;
    Ok(TrainFinished {
        dir: out.to_path_buf(),
        outcomes,
        charts,
        transfers,
    })
}

/// The parametrization `spec` is trained under: its own where the experiment sweeps
/// parametrizations (its grid's `param`), else the plan's.
fn run_param(
    spec: &sigprop_spec::settings::RunSpec,
    plan: &TrainPlan,
) -> sigprop_nets::Parametrization {
    let kind = spec
        .grid
        .iter()
        .find(|(k, _)| k == "param")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(plan.param.kind);
    sigprop_nets::Parametrization { kind, ..plan.param }
}

/// The parametrizations the configurations are trained under, each once, in order.
fn param_names(exp: &Experiment, plan: &TrainPlan) -> Vec<String> {
    let mut kinds: Vec<String> = Vec::new();
    for r in &exp.runs {
        let k = run_param(r, plan).kind.to_string();
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    kinds
}

/// The report's learning-rate transfer section: each configuration's best learning rate and
/// how far it moves per parametrization.
fn with_transfer_md(
    mut md: String,
    best: &[(ConfigKey, crate::transfer::BestLr)],
    transfers: &[crate::transfer::Transfer],
) -> String {
    let mut s = String::from(
        "\n## Best learning rate\n\nThe learning rate of the lowest mean evaluation loss at the \
         last step, among those no seed diverged at (`best_lr.csv`; chart `loss_vs_lr`).\n\n\
         | configuration | best lr | loss at K [95%] | learning rates without divergence |\n\
         |---|---|---|---|\n",
    );
    for (k, b) in best {
        let ci = match (b.loss_final_lo, b.loss_final_hi) {
            (Some(a), Some(c)) => format!(" [{}, {}]", fmt_sig(a, 4), fmt_sig(c, 4)),
            _ => String::new(),
        };
        s += &format!(
            "| {} | {} | {}{} | {} of {} |\n",
            k.label,
            b.best_lr.map_or("-".to_string(), |v| v.to_string()),
            b.loss_final.map_or("-".to_string(), |v| fmt_sig(v, 4)),
            ci,
            b.finite,
            b.lrs
        );
    }
    s += "\n";
    for t in transfers {
        s += &format!("- {}\n", t.line());
    }
    // Before the charts and the closing line.
    match md.find("\n## Charts") {
        Some(i) => md.insert_str(i, &s),
        None => md.push_str(&s),
    }
    md
}

fn write_train_csvs(out: &Path, outcomes: &[TrainOutcome]) -> Result<(), RunnerError> {
    let mut steps = Vec::new();
    let mut updates = Vec::new();
    let mut layers: Vec<(ConfigKey, (TrainCols, StepCol, RunCols, LayerStats))> = Vec::new();
    let mut spectra: Vec<(ConfigKey, (TrainCols, StepCol, SpectrumRow))> = Vec::new();
    let mut summary = Vec::new();
    for o in outcomes {
        for (seed, r) in &o.runs {
            for s in &r.steps {
                steps.push((
                    o.key.clone(),
                    (
                        o.cols.clone(),
                        TrainRow {
                            seed: *seed,
                            step: s.step,
                            train_loss: s.loss,
                            grad_norm: s.grad_norm,
                            eval_loss: s.eval_loss,
                        },
                    ),
                ));
            }
            for u in &r.updates {
                updates.push((
                    o.key.clone(),
                    (
                        o.cols.clone(),
                        UpdateRow {
                            seed: *seed,
                            step: u.step,
                            tensor: u.param.clone(),
                            weight_norm: u.weight_norm,
                            update_norm: u.update_norm,
                            update_ratio: u.update_norm / u.weight_norm,
                        },
                    ),
                ));
            }
            for (step, stats) in &r.stats {
                for s in stats {
                    layers.push((
                        o.key.clone(),
                        (
                            o.cols.clone(),
                            StepCol { step: *step },
                            RunCols {
                                run_id: format!("c{}-s{seed}", o.key.config),
                                seed: *seed,
                            },
                            s.clone(),
                        ),
                    ));
                }
            }
            for (step, measured) in &r.spectra {
                for row in SpectrumRow::of(*seed, measured) {
                    spectra.push((
                        o.key.clone(),
                        (o.cols.clone(), StepCol { step: *step }, row),
                    ));
                }
            }
        }
        summary.push((o.key.clone(), (o.cols.clone(), o.summary.clone())));
    }
    write_atomic(&out.join("train.csv"), &keyed_csv(&steps)?)?;
    write_atomic(&out.join("updates.csv"), &keyed_csv(&updates)?)?;
    write_atomic(&out.join("train_layers.csv"), &keyed_csv(&layers)?)?;
    // Without --jacobian there is no spectrum, and none from an earlier run into this folder
    // may pass for this run's.
    let spectrum = out.join("train_spectrum.csv");
    if spectra.is_empty() {
        match std::fs::remove_file(&spectrum) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(RunnerError::Io {
                    action: "removing",
                    path: spectrum,
                    source: e,
                });
            }
            _ => {}
        }
    } else {
        write_atomic(&spectrum, &keyed_csv(&spectra)?)?;
    }
    write_atomic(&out.join("summary.csv"), &keyed_csv(&summary)?)?;
    Ok(())
}

/// One line per configuration for the terminal.
pub fn summary_table(outcomes: &[TrainOutcome]) -> String {
    let mut s = format!(
        "{:<40} {:>11} {:>11} {:>11}  verdict\n",
        "configuration", "loss at 0", "loss at K", "to target"
    );
    for o in outcomes {
        let m = &o.summary;
        s.push_str(&format!(
            "{:<40} {:>11} {:>11} {:>11}  {}\n",
            o.key.label,
            fmt_sig(m.loss_initial, 4),
            fmt_sig(m.loss_final, 4),
            m.steps_to_target
                .map_or("-".to_string(), |v| format!("{v:.0}")),
            m.verdict
        ));
    }
    s
}

/// `report.md` of a training run: the command, one row per configuration and the charts.
pub fn report_md(
    exp: &Experiment,
    plan: &TrainPlan,
    outcomes: &[TrainOutcome],
    charts: &[PathBuf],
    dir: &Path,
) -> String {
    let mut s = format!("# {}\n\n", exp.name);
    if !exp.description.is_empty() {
        s += &format!("{}\n\n", exp.description.trim());
    }
    s += &format!("Reproduce with:\n\n```sh\n{}\n```\n\n", exp.command);
    s += &format!(
        "Trained for {} steps with {} ({} parametrization) on {}; the losses below are on \
         the task's fixed evaluation batch of {} samples, mean over seeds with the 95% \
         interval. `trains`: every seed's loss at step {} is at most {} of its loss at step 0.\n\n",
        plan.steps,
        plan.optimizer,
        param_names(exp, plan).join(" and "),
        plan.task.describe(),
        plan.task.eval_samples(plan.eval_batch),
        plan.steps,
        plan.target,
    );
    s += "| configuration | lr | loss at 0 | loss at K [95%] | K / 0 | steps to target | verdict |\n";
    s += "|---|---|---|---|---|---|---|\n";
    for o in outcomes {
        let m = &o.summary;
        let ci = match (m.loss_final_lo, m.loss_final_hi) {
            (Some(a), Some(b)) => format!(" [{}, {}]", fmt_sig(a, 4), fmt_sig(b, 4)),
            _ => String::new(),
        };
        s += &format!(
            "| {} | {} | {} | {}{} | {} | {} | {} |\n",
            o.key.label,
            o.cols.lr,
            fmt_sig(m.loss_initial, 4),
            fmt_sig(m.loss_final, 4),
            ci,
            fmt_sig(m.loss_ratio, 3),
            m.steps_to_target
                .map_or("-".to_string(), |v| format!("{v:.0}")),
            m.verdict
        );
    }
    let lottery = lottery_lines(outcomes, plan.lottery);
    if !lottery.is_empty() {
        s += "\n## Lottery ticket\n\nEach configuration trained dense; its winning ticket keeps, \
              in each weight tensor, the largest final weights, rewound to their values at the \
              rewind step (iteratively: each round prunes the last round's smallest final \
              weights and retrains); the random mask keeps as many entries of each tensor at \
              random, rewound alike. Both retrained from the rewind step with the same batches \
              and learning rate. Final loss on the evaluation batch, mean [95% interval]:\n\n";
        for l in &lottery {
            s += &format!("- {l}\n");
        }
        s += "\n";
    }
    s += &sigprop_report::report::charts_md(charts, dir);
    s += &format!(
        "Files and columns are defined in {}.\n",
        sigprop_report::report::docs_link(dir, "training.md")
    );
    s
}

/// `manifest.json` of a training run: the plan, versions, and each configuration's seeds
/// and training times.
pub fn manifest(
    exp: &Experiment,
    plan: &TrainPlan,
    outcomes: &[TrainOutcome],
) -> serde_json::Value {
    let commit = sigprop_report::report::git_commit();
    serde_json::json!({
        "experiment": exp.name,
        "description": exp.description,
        "command": exp.command,
        "sigprop_version": env!("CARGO_PKG_VERSION"),
        "git_commit": commit,
        "train": {
            "steps": plan.steps,
            "optimizer": plan.optimizer.to_string(),
            "lrs": plan.lrs,
            "task": plan.task.describe(),
            "log_steps": plan.log_steps,
            "target": plan.target,
            "param": param_names(exp, plan).join(","),
            "base_width": plan.param.base_width,
            "base_depth": plan.param.base_depth,
            "eval_batch": plan.eval_batch,
            "eval_samples": plan.task.eval_samples(plan.eval_batch),
            "lottery": plan.lottery.map(|l| serde_json::json!({
                "sparsity": l.sparsity,
                "rounds": l.rounds,
                "rewind": l.rewind,
            })),
        },
        "lottery": lottery_lines(outcomes, plan.lottery),
        "configurations": outcomes.iter().map(|o| {
            let spec = &exp.runs[o.spec];
            serde_json::json!({
                "config": o.key.config,
                "label": o.key.label,
                "lr": o.cols.lr,
                "grid": spec.grid,
                "net": spec.net,
                "batch": spec.batch,
                "backend": spec.backend,
                "seeds": o.runs.iter().map(|(s, _)| s).collect::<Vec<_>>(),
                "train_s": o.runs.iter().map(|(_, r)| r.wall_s).collect::<Vec<_>>(),
                "arm": o.arm.as_str(),
                "auto": spec.auto,
                "autoinit": sigprop_report::report::autoinit_json(&spec.net),
            })
        }).collect::<Vec<_>>(),
    })
}
