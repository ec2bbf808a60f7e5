//! `sigprop recommend`: every applicable initializer measured on the configuration, ranked
//! by what the harness measures, with a one-line reason per rank and ties said as ties.
//!
//! The candidates are a fixed catalogue, simplest first (the fan-based rules, orthogonal,
//! then the theory-derived and data-driven ones, then the architecture's own); a candidate
//! the configuration refuses (LSUV on a residual network, `critical` where `chi_1` jumps
//! over 1, `autoinit` with a bias fixed by the user) is listed as not applicable, with the
//! refusal. The ranking is [`sigprop_report::verdict::rank`]: the verdict's class, then the larger
//! per-layer |ln change| of the two directions; candidates whose intervals overlap the
//! leader of a rank share it, and the table says that they are equivalent. Within a shared
//! rank the flattest point estimate comes first, equal estimates in catalogue order; the
//! first is the pick (`--init auto`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Serialize;
use sigprop_init::{Activation, gain_for};
use sigprop_nets::{Arch, Capabilities};
use sigprop_report::labels::Verdict;
use sigprop_report::outcome::{Outcome, TrainOutcome};
use sigprop_report::output::write_atomic;
use sigprop_report::rows::{ConfigKey, SummaryRow};
use sigprop_report::verdict::rank;
use sigprop_spec::error::RunnerError;
use sigprop_spec::experiment::Experiment;
use sigprop_spec::format::{fmt_num, fmt_sig};
use sigprop_spec::settings::{AutoChoice, RunSpec, Settings};
use sigprop_spec::tables::TrainPlan;

use crate::execute::{Ran, RunOptions, run_experiment};

/// One candidate of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The spec.
    pub init: String,
    /// What it is, for the table.
    pub family: &'static str,
}

/// The catalogue for `base`'s architecture and activation, simplest first. The specs
/// whose bias the scheme defines (`critical`, `autoinit`) follow the user's `--sigma-b`.
/// With `learned`, the meta-learned `metainit` and `gradinit` come last: each runs a
/// hundred optimisation steps of several passes per seed, so they are asked for.
pub fn candidates(base: &Settings, learned: bool) -> Vec<Candidate> {
    let c = |init: String, family: &'static str| Candidate { init, family };
    // What the architecture offers of its own (an unknown name offers nothing; the
    // configuration refuses it by name anyway).
    let caps = base
        .arch
        .as_deref()
        .unwrap_or(sigprop_spec::settings::defaults::ARCH)
        .parse::<Arch>()
        .map_or(Capabilities::PLAIN, |a| a.default_config().capabilities());
    let act: Option<Activation> = base.activation.as_deref().and_then(|a| a.parse().ok());
    let mut v = vec![
        c("lecun-normal".into(), "fan-in, variance 1"),
        c("he-normal".into(), "fan-in, variance 2 (ReLU)"),
        c("xavier-normal".into(), "fan average, variance 1"),
        c("lecun-uniform".into(), "fan-in, variance 1"),
        c("he-uniform".into(), "fan-in, variance 2 (ReLU)"),
        c("xavier-uniform".into(), "fan average, variance 1"),
        c("pytorch-default".into(), "fan-in, variance 1/3"),
        c("orthogonal".into(), "orthogonal, gain 1"),
    ];
    if let Some(g) = act.as_ref().and_then(gain_for).filter(|g| *g != 1.0) {
        v.push(c(
            format!("orthogonal:gain={g}"),
            "orthogonal, PyTorch's gain",
        ));
    }
    for &(init, family) in caps.structured_inits {
        v.push(c(init.into(), family));
    }
    let sigma_b = base.sigma_b.or(base.sigma_b2.map(f64::sqrt)).unwrap_or(0.0);
    let critical = if sigma_b > 0.0 {
        format!("critical:sigma-b={sigma_b}")
    } else {
        "critical".into()
    };
    v.push(c(critical, "edge of chaos, mean-field"));
    v.push(c("autoinit".into(), "analytic moments, chi_1 = 1"));
    v.push(c("lsuv".into(), "data-driven unit variance"));
    for &(init, family) in caps.own_inits {
        v.push(c(init.into(), family));
    }
    if learned {
        v.push(c(
            "metainit".into(),
            "meta-learned: small gradient quotient",
        ));
        v.push(c(
            "gradinit".into(),
            "meta-learned: best first step, bounded",
        ));
    }
    v
}

/// One ranked candidate.
#[derive(Debug, Clone, Serialize)]
pub struct Ranked {
    /// Rank (tied candidates share one).
    pub rank: usize,
    /// The spec.
    pub init: String,
    /// The bias it ran with.
    pub bias_init: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Per-layer factor of Var(z) (exp of the fitted ln change per layer) and its 95%
    /// interval over the seeds.
    pub fwd_factor: f64,
    /// Lower end.
    pub fwd_factor_lo: Option<f64>,
    /// Upper end.
    pub fwd_factor_hi: Option<f64>,
    /// Per-layer factor of Var(dL/dz) toward the input, with its interval.
    pub bwd_factor: f64,
    /// Lower end.
    pub bwd_factor_lo: Option<f64>,
    /// Upper end.
    pub bwd_factor_hi: Option<f64>,
    /// Mean-field chi_1 where the theory applies.
    pub theory_chi1: Option<f64>,
    /// With `--jacobian`: the condition number of the input-output Jacobian at the deepest
    /// measured layer (geometric mean over the seeds of `jac_cond`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jac_cond: Option<f64>,
    /// The specs this one is tied with (same rank).
    pub tied_with: Vec<String>,
    /// The one-line reason.
    pub reason: String,
    /// With `--train`: its rank by signal propagation alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal_rank: Option<usize>,
    /// With `--train`: the final evaluation loss (mean over seeds) and its 95% interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_loss: Option<f64>,
    /// Lower end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_loss_lo: Option<f64>,
    /// Upper end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_loss_hi: Option<f64>,
    /// With `--train`: the training verdict (`trains`, `partial`, `stalls`, `diverged`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_verdict: Option<String>,
}

/// The outcome of `recommend`.
#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    /// What was evaluated, in one line (arch, activation, depth, width).
    pub setting: String,
    /// Ranked candidates, best first (within a tie: flattest point estimate, then catalogue).
    pub ranked: Vec<Ranked>,
    /// Candidates the configuration refuses, with the refusal.
    pub not_applicable: Vec<(String, String)>,
    /// The pick: the first of rank 1.
    pub choice: String,
    /// Its bias spec.
    pub choice_bias: String,
    /// Why, in one line (with the tie, if any).
    pub why: String,
}

/// The candidates `base` accepts (in catalogue order) and the refusals of the others.
pub fn applicable(base: &Settings, learned: bool) -> (Vec<Candidate>, Vec<(String, String)>) {
    let mut ok = Vec::new();
    let mut refused = Vec::new();
    for cand in candidates(base, learned) {
        match check(base, &cand.init) {
            Ok(()) => ok.push(cand),
            Err(e) => refused.push((cand.init, e.to_string())),
        }
    }
    (ok, refused)
}

fn with_init(base: &Settings, init: &str) -> Settings {
    let mut s = base.clone();
    s.init = Some(init.to_string());
    s
}

/// Whether `init` can run on `base`: the settings' checks, the network's, and a critical
/// `sigma_w` that exists.
fn check(base: &Settings, init: &str) -> Result<(), RunnerError> {
    // Building the configurations resolves each network (its critical sigma_w included).
    Experiment::from_grid("check", "", &with_init(base, init), vec![], String::new())?;
    Ok(())
}

/// The experiment that measures every applicable candidate of `base`, one configuration
/// each, in catalogue order. Exit-2 error when none applies.
pub fn experiment(
    base: &Settings,
    learned: bool,
    command: String,
) -> Result<Experiment, RunnerError> {
    if base.sigma_w2.is_some() {
        return Err(RunnerError::input(
            "--sigma-w2 is not allowed with recommend, which chooses the initializer; drop it",
        ));
    }
    let (ok, refused) = applicable(base, learned);
    if ok.is_empty() {
        let why: Vec<String> = refused.iter().map(|(i, e)| format!("{i}: {e}")).collect();
        return Err(RunnerError::input(format!(
            "recommend: no initializer applies to this configuration ({})",
            why.join("; ")
        )));
    }
    let inits = ok
        .iter()
        .map(|c| toml::Value::String(c.init.clone()))
        .collect();
    Experiment::from_grid(
        "recommend",
        "every applicable initializer, ranked by what the harness measures",
        base,
        vec![("init".to_string(), inits)],
        command,
    )
}

/// Per configuration, the mean over its seeds of `ln jac_cond` at the deepest layer whose
/// Jacobian was measured (no entry where nothing was measured; an infinite condition number
/// stays infinite).
pub fn jacobian_spread(outcomes: &[Outcome]) -> HashMap<usize, f64> {
    // (config, seed) -> (layer, ln cond) at the deepest measured layer; ordered maps, so the
    // sums below run in one order and give the same bits every time.
    let mut deepest: BTreeMap<(usize, u64), (usize, f64)> = BTreeMap::new();
    for o in outcomes {
        for row in &o.layers {
            let Some(cond) = row.jacobian.jac_cond else {
                continue;
            };
            let (layer, ln) = (row.stats.layer, cond.ln());
            let e = deepest
                .entry((o.key.config, row.run.seed))
                .or_insert((layer, ln));
            if layer > e.0 {
                *e = (layer, ln);
            }
        }
    }
    let mut sums: BTreeMap<usize, (f64, usize)> = BTreeMap::new();
    for ((config, _), (_, ln)) in deepest {
        let e = sums.entry(config).or_insert((0.0, 0));
        e.0 += ln;
        e.1 += 1;
    }
    sums.into_iter()
        .map(|(c, (sum, n))| (c, sum / n as f64))
        .collect()
}

/// The larger per-layer |ln change| of the two directions (point estimates), in units of
/// 1e-4: estimates that agree to that are equal (the same law drawn from the same keys,
/// as `he-normal`, `critical` and `autoinit` for ReLU), and the catalogue decides.
fn point_key(s: &SummaryRow) -> i64 {
    let worst = s.fwd_log_slope.abs().max(s.bwd_log_slope.abs());
    if worst.is_finite() {
        (worst * 1e4).round() as i64
    } else {
        i64::MAX
    }
}

fn factor_ci(rate: f64, lo: Option<f64>, hi: Option<f64>) -> (f64, Option<f64>, Option<f64>) {
    (rate.exp(), lo.map(f64::exp), hi.map(f64::exp))
}

fn fmt_factor(f: f64, lo: Option<f64>, hi: Option<f64>) -> String {
    match (lo, hi) {
        (Some(a), Some(b)) => format!("{} [{}, {}]", fmt_sig(f, 4), fmt_sig(a, 4), fmt_sig(b, 4)),
        _ => fmt_sig(f, 4),
    }
}

/// Rank the measured candidates (`summaries` in catalogue order) of `base`.
///
/// `jacobian` holds, per configuration, the mean over seeds of `ln jac_cond` where the
/// Jacobian was measured ([`jacobian_spread`]). Within a shared rank, the best-conditioned
/// Jacobian comes first (dynamical isometry: an equally stable choice that also keeps every
/// direction of the input), then the flattest point estimate, then the catalogue order.
pub fn recommend(
    base: &Settings,
    learned: bool,
    summaries: &[(ConfigKey, SummaryRow)],
    jacobian: &HashMap<usize, f64>,
) -> Result<Recommendation, RunnerError> {
    let (_, refused) = applicable(base, learned);
    let mut rows: Vec<(usize, &(ConfigKey, SummaryRow))> = rank(summaries);
    let jac_key = |config: usize| match jacobian.get(&config) {
        // ln cond rounded to 0.01 (about 1% of the condition number).
        Some(l) if l.is_finite() => (l * 1e2).round() as i64,
        // Not finite, then not measured: after every measured one.
        Some(_) => i64::MAX - 1,
        None => i64::MAX,
    };
    rows.sort_by_key(|(r, (k, s))| (*r, jac_key(k.config), point_key(s), k.config));
    let mut ranked: Vec<Ranked> = Vec::with_capacity(rows.len());
    for (r, (k, s)) in &rows {
        let tied_with: Vec<String> = rows
            .iter()
            .filter(|(r2, (k2, _))| r2 == r && k2.config != k.config)
            .map(|(_, (k2, _))| k2.init.clone())
            .collect();
        let (ff, flo, fhi) = factor_ci(s.fwd_log_slope, s.fwd_slope_lo, s.fwd_slope_hi);
        let (bf, blo, bhi) = factor_ci(s.bwd_log_slope, s.bwd_slope_lo, s.bwd_slope_hi);
        let mut reason = s.verdict_detail.clone();
        if let Some(c) = s.theory_chi1 {
            reason.push_str(&format!("; theory chi_1 {}", fmt_num(c)));
        }
        let jac_cond = jacobian.get(&k.config).map(|l| l.exp());
        if let Some(c) = jac_cond {
            reason.push_str(&format!("; Jacobian condition number {}", fmt_sig(c, 3)));
        }
        reason.push_str(&tie_note(&tied_with));
        ranked.push(Ranked {
            rank: *r,
            init: k.init.clone(),
            bias_init: k.bias_init.clone(),
            verdict: s.verdict,
            fwd_factor: ff,
            fwd_factor_lo: flo,
            fwd_factor_hi: fhi,
            bwd_factor: bf,
            bwd_factor_lo: blo,
            bwd_factor_hi: bhi,
            theory_chi1: s.theory_chi1,
            jac_cond,
            tied_with,
            reason,
            signal_rank: None,
            train_loss: None,
            train_loss_lo: None,
            train_loss_hi: None,
            train_verdict: None,
        });
    }
    let top = ranked
        .first()
        .ok_or_else(|| RunnerError::Internal("recommend: nothing was measured".into()))?;
    let key = &summaries[0].0;
    let setting = format!(
        "{} {} depth {} width {} batch {} bias {}, {} seeds",
        key.arch,
        key.activation,
        key.depth,
        key.width,
        key.batch,
        base.bias_init
            .clone()
            .or(base.sigma_b.map(|b| format!("normal:std={b}")))
            .unwrap_or_else(|| "zeros".into()),
        summaries[0].1.seeds
    );
    let mut why = why_of(top);
    // Ranked by class: a collapsed or diverged first means no candidate escapes it.
    if matches!(top.verdict, Verdict::Collapsed | Verdict::Diverged) {
        why = format!(
            "no initializer escapes: every candidate is {} or worse, so the fix is in the \
             network (skip connections, normalization, branch scaling), not its initial \
             weights. Least bad: {why}",
            top.verdict.name()
        );
    }
    Ok(Recommendation {
        setting,
        choice: top.init.clone(),
        choice_bias: top.bias_init.clone(),
        why,
        ranked,
        not_applicable: refused,
    })
}

/// The reason's tie clause: empty without a tie.
fn tie_note(tied_with: &[String]) -> String {
    match tied_with.len() {
        0 => String::new(),
        1 => "; tied with 1 other within the seeds' spread".into(),
        n => format!("; tied with {n} others within the seeds' spread"),
    }
}

fn why_of(top: &Ranked) -> String {
    let trained = top.train_verdict.as_ref().map_or(String::new(), |v| {
        format!(
            ", trained: {v}, loss {}",
            fmt_factor(
                top.train_loss.unwrap_or(f64::NAN),
                top.train_loss_lo,
                top.train_loss_hi
            )
        )
    });
    if top.tied_with.is_empty() {
        format!("{}: {}", top.init, top.reason)
    } else {
        let first = match top.jac_cond {
            Some(c) => format!(
                "has the best-conditioned Jacobian of the tie (condition number {})",
                fmt_sig(c, 3)
            ),
            None => "has the flattest point estimate of the tie (equal estimates: the \
                     catalogue's simplest first)"
                .to_string(),
        };
        // "Any of them will do" only where they do: not among collapsed or diverged ones.
        let will_do = if matches!(top.verdict, Verdict::Collapsed | Verdict::Diverged) {
            "; of them"
        } else {
            ", so any of them will do:"
        };
        format!(
            "{} ({}{trained}); tied with {} within the seeds' spread{will_do} {} {first}",
            top.init,
            s_verdict(top),
            top.tied_with.join(", "),
            top.init
        )
    }
}

/// Rank by the training probe first: the training verdict's class (`trains`, `partial`,
/// `stalls`, `diverged`), then the final evaluation loss, candidates whose loss intervals
/// overlap the leader of a rank sharing it; within a shared rank, the signal-propagation
/// order. Each row keeps its propagation rank in `signal_rank`.
pub fn with_training(
    mut rec: Recommendation,
    plan: &TrainPlan,
    outcomes: &[TrainOutcome],
) -> Result<Recommendation, RunnerError> {
    let class = |v: &str| match v {
        "trains" => 0u8,
        "partial" => 1,
        "stalls" => 2,
        _ => 3,
    };
    for r in rec.ranked.iter_mut() {
        let o = outcomes
            .iter()
            .find(|o| o.key.init == r.init)
            .ok_or_else(|| {
                RunnerError::Internal(format!("recommend: {} was not trained", r.init))
            })?;
        let m = &o.summary;
        r.signal_rank = Some(r.rank);
        r.train_loss = Some(m.loss_final);
        r.train_loss_lo = m.loss_final_lo;
        r.train_loss_hi = m.loss_final_hi;
        r.train_verdict = Some(m.verdict.clone());
    }
    let interval = |r: &Ranked| {
        let l = r
            .train_loss
            .filter(|l| l.is_finite())
            .unwrap_or(f64::INFINITY);
        (
            r.train_loss_lo.unwrap_or(l),
            r.train_loss_hi.unwrap_or(l),
            l,
        )
    };
    let key = |r: &Ranked| {
        (
            class(r.train_verdict.as_deref().unwrap_or("")),
            interval(r).2,
        )
    };
    // Signal order is the current order: a stable sort keeps it among equal keys.
    let mut rows = std::mem::take(&mut rec.ranked);
    rows.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
    });
    let mut ranks = Vec::with_capacity(rows.len());
    let mut leader: Option<usize> = None;
    for i in 0..rows.len() {
        let tied = leader.is_some_and(|l| {
            let ((a0, a1, _), (b0, b1, _)) = (interval(&rows[l]), interval(&rows[i]));
            key(&rows[l]).0 == key(&rows[i]).0
                && a1.is_finite()
                && b1.is_finite()
                && a0 <= b1
                && b0 <= a1
        });
        if tied {
            ranks.push(ranks.last().copied().unwrap_or(1));
        } else {
            leader = Some(i);
            ranks.push(i + 1);
        }
    }
    let mut rows: Vec<(usize, Ranked)> = ranks.into_iter().zip(rows).collect();
    rows.sort_by_key(|(r, row)| (*r, row.signal_rank.unwrap_or(usize::MAX)));
    let inits: Vec<(usize, String)> = rows.iter().map(|(r, x)| (*r, x.init.clone())).collect();
    for (r, row) in rows.iter_mut() {
        row.rank = *r;
        row.tied_with = inits
            .iter()
            .filter(|(r2, i2)| r2 == r && *i2 != row.init)
            .map(|(_, i)| i.clone())
            .collect();
        // The propagation reason without its tie note, then the training and the new tie.
        let base = row
            .reason
            .split("; tied with")
            .next()
            .unwrap_or_default()
            .to_string();
        row.reason = format!(
            "{base}; trained {} steps ({}): {}, loss {}",
            plan.steps,
            plan.optimizer,
            row.train_verdict.as_deref().unwrap_or("-"),
            fmt_factor(
                row.train_loss.unwrap_or(f64::NAN),
                row.train_loss_lo,
                row.train_loss_hi
            )
        );
        let note = tie_note(&row.tied_with);
        row.reason.push_str(&note);
    }
    rec.ranked = rows.into_iter().map(|(_, r)| r).collect();
    let top = rec
        .ranked
        .first()
        .ok_or_else(|| RunnerError::Internal("recommend: nothing was trained".into()))?;
    rec.choice = top.init.clone();
    rec.choice_bias = top.bias_init.clone();
    rec.why = format!(
        "{} (ranked by the training probe first, {} steps of {} at lr {:?} on {}, then by \
         signal propagation)",
        why_of(top),
        plan.steps,
        plan.optimizer,
        plan.lrs,
        plan.task.describe()
    );
    Ok(rec)
}

fn s_verdict(r: &Ranked) -> String {
    format!(
        "{}, per layer Var(z) x{} and Var(dL/dz) x{}",
        r.verdict,
        fmt_sig(r.fwd_factor, 4),
        fmt_sig(r.bwd_factor, 4)
    )
}

impl Recommendation {
    /// The ranked table as text (what the CLI prints).
    pub fn table(&self) -> String {
        let mut out = format!("recommend: {}\n", self.setting);
        out.push_str(&format!(
            "{:>4}  {:<34} {:<20} {:>28} {:>28}  reason\n",
            "rank", "init", "verdict", "Var(z) per layer", "Var(dL/dz) per layer"
        ));
        for r in &self.ranked {
            out.push_str(&format!(
                "{:>4}  {:<34} {:<20} {:>28} {:>28}  {}\n",
                r.rank,
                r.init,
                r.verdict.name(),
                fmt_factor(r.fwd_factor, r.fwd_factor_lo, r.fwd_factor_hi),
                fmt_factor(r.bwd_factor, r.bwd_factor_lo, r.bwd_factor_hi),
                r.reason
            ));
        }
        for (i, e) in &self.not_applicable {
            out.push_str(&format!("   -  {i:<34} not applicable: {e}\n"));
        }
        out.push_str(&format!("use: --init {}", self.choice));
        if self.choice_bias != "zeros" {
            out.push_str(&format!(" (its bias: {})", self.choice_bias));
        }
        out.push_str(&format!("\nwhy: {}\n", self.why));
        out
    }

    /// The Markdown section of `recommend.md`.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# Recommendation\n\n{}\n\n**Use `--init {}`.** {}\n\n",
            self.setting, self.choice, self.why
        );
        out.push_str(
            "| rank | init | verdict | Var(z) per layer [95%] | Var(dL/dz) per layer [95%] | reason |\n\
             |---|---|---|---|---|---|\n",
        );
        for r in &self.ranked {
            out.push_str(&format!(
                "| {} | `{}` | {} | {} | {} | {} |\n",
                r.rank,
                r.init,
                r.verdict.name(),
                fmt_factor(r.fwd_factor, r.fwd_factor_lo, r.fwd_factor_hi),
                fmt_factor(r.bwd_factor, r.bwd_factor_lo, r.bwd_factor_hi),
                r.reason.replace('|', "/")
            ));
        }
        if !self.not_applicable.is_empty() {
            out.push_str("\nNot applicable here:\n\n");
            for (i, e) in &self.not_applicable {
                out.push_str(&format!("- `{i}`: {}\n", e.replace('|', "/")));
            }
        }
        out.push_str(
            "\nThe rule: the verdict's class first (stable, critical, exploding or vanishing \
             gradients, exploding or vanishing, collapsed, diverged), then the larger per-layer \
             |ln change| of the two directions; a candidate whose seed interval overlaps the \
             leader of a rank shares it; within a shared rank the flattest point estimate comes \
             first (equal estimates in the catalogue's order, simplest first). See \
             docs/recommend.md.\n",
        );
        out
    }

    /// Write `recommend.md` and `recommend.json` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), RunnerError> {
        write_atomic(&dir.join("recommend.md"), self.markdown().as_bytes())?;
        let json =
            serde_json::to_string_pretty(self).map_err(|e| RunnerError::Plot(e.to_string()))?;
        write_atomic(&dir.join("recommend.json"), json.as_bytes())
    }
}

/// `init = "auto"`, the explicit step between parsing and running: every configuration of
/// `exp` whose `init = "auto"` is pending gets the top recommendation for its own settings,
/// measured now ([`resolve_auto`]), in configuration order. Configurations without it are
/// left as they are.
pub fn resolve_auto_runs(exp: &mut Experiment) -> Result<(), RunnerError> {
    resolve_auto_specs(&mut exp.runs)
}

/// [`resolve_auto_runs`] over a list of configurations.
pub fn resolve_auto_specs(runs: &mut [RunSpec]) -> Result<(), RunnerError> {
    for run in runs.iter_mut() {
        if let Some(settings) = &run.auto_pending {
            let auto = resolve_auto(settings)?;
            *run = run.with_auto(auto)?;
        }
    }
    Ok(())
}

/// Measure the candidates of `base` (its `init` ignored) without keeping an output folder,
/// and return the pick.
pub fn resolve_auto(base: &Settings) -> Result<AutoChoice, RunnerError> {
    let mut b = base.clone();
    b.init = None;
    let exp = experiment(&b, false, String::new())?;
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sigprop-auto-{}-{n}", std::process::id()));
    let ran = run_experiment(
        &exp,
        &RunOptions {
            out: dir.clone(),
            quiet: true,
            resume: false,
            shard: None,
        },
    );
    let _ = std::fs::remove_dir_all(&dir);
    let Ran::Complete(outcomes, ..) = ran? else {
        return Err(RunnerError::Internal(
            "init auto: the recommendation ran partially".into(),
        ));
    };
    let jacobian = jacobian_spread(&outcomes);
    let summaries: Vec<(ConfigKey, SummaryRow)> =
        outcomes.into_iter().map(|o| (o.key, o.summary)).collect();
    let rec = recommend(&b, false, &summaries, &jacobian)?;
    Ok(AutoChoice {
        choice: rec.choice.clone(),
        bias_init: rec.choice_bias.clone(),
        why: rec.why.clone(),
        ranking: rec
            .ranked
            .iter()
            .map(|r| format!("{} {} {}", r.rank, r.init, r.verdict.name()))
            .collect(),
    })
}
