//! Each subcommand: raw arguments into the runner's typed settings, run, print.
//!
//! Validation lives in the runner (`Settings::to_run`); this file only maps flags onto
//! settings, chooses the output folder and prints results.

use std::path::{Path, PathBuf};

use anyhow::Result;
use sigprop_init::{ACTIVATION_NAMES, Activation, SCHEME_NAMES, scheme_description};
use sigprop_nets::{Arch, BackendKind, ParamKind};
use sigprop_report::{Finished, Shard, redraw_folder};
use sigprop_runner::recommend::resolve_auto_runs;
use sigprop_runner::theory;
use sigprop_runner::{Done, RunOptions, merge, recommend_study, run};
use sigprop_spec::experiment::SuiteKind;
use sigprop_spec::format::fmt_sig;
use sigprop_spec::tables::{CoordTable, OneOrMany, TrainTable};
use sigprop_spec::{Experiment, RunnerError, Settings};
use sigprop_theory::Critical;

use crate::args::{
    BenchArgs, CompareArgs, CompletionsArgs, CoordArgs, ListArgs, MergeArgs, NetArgs, OutArgs,
    PlotArgs, RecommendArgs, RunArgs, SuiteArgs, TheoryArgs, TrainArgs,
};

/// The built-in quickstart suite (`sigprop suite` without a file).
const QUICKSTART: &str = include_str!("../suites/quickstart.toml");

/// The command line as typed, for manifests and reports.
pub fn command_line() -> String {
    let args: Vec<String> = std::env::args().collect();
    let mut out = vec!["sigprop".to_string()];
    out.extend(args.into_iter().skip(1).map(|a| {
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "\"'$;&|".contains(c)) {
            format!("'{}'", a.replace('\'', "'\\''"))
        } else {
            a
        }
    }));
    out.join(" ")
}

/// Split a comma-separated list of specs, keeping `key=value` pieces with their spec.
pub fn split_specs(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        for piece in v.split(',') {
            let piece = piece.trim();
            let continuation = piece.contains('=') && !piece.contains(':');
            match out.last_mut() {
                Some(last) if continuation => {
                    last.push(',');
                    last.push_str(piece);
                }
                _ => out.push(piece.to_string()),
            }
        }
    }
    out
}

/// A fresh folder under `reports/` named after the experiment.
fn fresh_out(name: &str) -> PathBuf {
    let base = Path::new("reports");
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut dir = base.join(&stem);
    let mut n = 2;
    while dir.exists() {
        dir = base.join(format!("{stem}-{n}"));
        n += 1;
    }
    dir
}

/// `exp` with every `init = "auto"` resolved: the recommendation each such configuration
/// runs is measured here, between parsing and running.
fn auto_resolved(exp: &Experiment) -> Result<Experiment> {
    let mut exp = exp.clone();
    resolve_auto_runs(&mut exp)?;
    Ok(exp)
}

fn execute(exp: &Experiment, out: &OutArgs) -> Result<()> {
    if out.resume && out.out.is_none() {
        return Err(RunnerError::input(
            "--resume needs --out: the folder whose finished runs to keep",
        )
        .into());
    }
    let shard = out
        .shard
        .as_deref()
        .map(|s| Shard::parse(s, |name| std::env::var(name).ok()))
        .transpose()?;
    let dir = out.out.clone().unwrap_or_else(|| fresh_out(&exp.name));
    let exp = &auto_resolved(exp)?;
    let done = run(
        exp,
        &RunOptions {
            out: dir.clone(),
            quiet: out.quiet,
            resume: out.resume,
            shard,
        },
    )?;
    match done {
        Done::Finished(f) => print_finished(&f, out.json, out.quiet),
        Done::Partial {
            dir,
            measured,
            remaining,
        } => {
            eprintln!(
                "measured {measured} runs into {}; {remaining} runs of the suite are other shards' (combine the folders with `sigprop merge OUT DIR...`)",
                dir.display()
            );
            Ok(())
        }
    }
}

fn print_finished(finished: &Finished, json: bool, quiet: bool) -> Result<()> {
    if json {
        let rows: Vec<serde_json::Value> = finished
            .summaries
            .iter()
            .map(|(k, s)| {
                let mut v = serde_json::to_value(k)?;
                if let (Some(m), serde_json::Value::Object(extra)) =
                    (v.as_object_mut(), serde_json::to_value(s)?)
                {
                    m.extend(extra);
                }
                Ok(v)
            })
            .collect::<Result<_, serde_json::Error>>()?;
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if !quiet {
        println!(
            "{:<40} {:>12} {:>12}  verdict",
            "configuration", "fwd ln/layer", "bwd ln/layer"
        );
        for (k, s) in &finished.summaries {
            println!(
                "{:<40} {:>12} {:>12}  {}",
                k.label,
                fmt_sig(s.fwd_log_slope, 4),
                fmt_sig(s.bwd_log_slope, 4),
                s.verdict_detail
            );
        }
        println!(
            "wrote {} and report.html (open it in a browser)",
            finished.dir.join("report.md").display()
        );
    }
    Ok(())
}

/// `sigprop merge`.
pub fn merge_cmd(a: &MergeArgs) -> Result<()> {
    let finished = merge(&a.out, &a.dirs, a.allow_partial)?;
    print_finished(&finished, false, a.quiet)
}

/// `sigprop run`.
pub fn run_cmd(a: &RunArgs) -> Result<()> {
    let mut base = a.net.settings()?;
    if let Some(p) = &a.param {
        let kind: ParamKind = p
            .parse()
            .map_err(|e| RunnerError::input(format!("--{e}")))?;
        // At initialization only the branches' multiplier differs, and muP's attention
        // logits (`score-scale 1/d`).
        if !matches!(kind, ParamKind::Standard)
            && kind.branch_scale().is_none()
            && !(base.has_attention() && kind.scales_width())
        {
            return Err(RunnerError::input(format!(
                "--param {kind}: run measures the network at initialization, where {kind} is \
                 the standard network; expected standard, depth-mup, completep or umup (or mup \
                 on a transformer, whose attention logits it scales; train and coord-check \
                 take {kind})"
            ))
            .into());
        }
        base.init = a.init.clone();
        base = base.under_param(kind)?;
    } else {
        base.init = a.init.clone();
    }
    base.activation = a.activation.clone();
    let exp = Experiment::from_grid("run", "", &base, Vec::new(), command_line())?;
    execute(&exp, &a.out)
}

/// `sigprop recommend`.
pub fn recommend_cmd(a: &RecommendArgs) -> Result<()> {
    refuse_store_flags(&a.out, "recommend")?;
    let mut base = a.net.settings()?;
    base.activation = a.activation.clone();
    let exp = sigprop_runner::recommend::experiment(&base, a.learned, command_line())?;
    // `--train` trains the top candidates: refused up front, not after the whole study.
    if a.train.is_some() {
        for spec in &exp.runs {
            spec.refuse_precision("recommend --train")?;
            if let Some(vocab) = spec.net.config.arch.token_input() {
                return Err(RunnerError::input(format!(
                    "--train: sigprop recommend --train trains on tasks that feed features, not \
                     token ids (this network reads ids below {vocab}); expected a network fed \
                     features, or no --train"
                ))
                .into());
            }
        }
        // With --inputs the teacher labels the file's samples (as `train --inputs`).
        let task = a.task.kind_name();
        if let Some(f) = exp.runs.iter().find_map(|s| s.net.config.inputs.as_ref())
            && task != "teacher"
        {
            return Err(RunnerError::input(format!(
                "--inputs {}: sigprop recommend --train trains on the file with --task teacher \
                 (the teacher labels its samples); expected --task teacher, or no --inputs \
                 (--task {task} brings its own inputs)",
                f.path
            ))
            .into());
        }
    }
    let dir = a.out.out.clone().unwrap_or_else(|| fresh_out(&exp.name));
    let train = a.train.map(|steps| TrainTable {
        steps: Some(steps),
        optimizer: a.optimizer.clone(),
        lr: a.lr.map(OneOrMany::One),
        log_steps: Some(Vec::new()),
        task: a.task.clone(),
        ..TrainTable::default()
    });
    let quiet = a.out.quiet || a.out.json;
    let rec = recommend_study(&exp, &base, a.learned, train.as_ref(), &dir, quiet)?;
    // `--quiet` silences the progress and the file line, never the answer.
    if a.out.json {
        println!("{}", serde_json::to_string_pretty(&rec)?);
    } else {
        print!("{}", rec.table());
        if !a.out.quiet {
            println!("wrote {}", dir.join("recommend.md").display());
        }
    }
    Ok(())
}

/// `sigprop bench`.
/// `--seed-batch` only where seeds run as probed passes (`run`, `compare`, `recommend`,
/// suites, and `bench --seeds N`, which times them): `train` and `coord-check` train one
/// network at a time.
fn refuse_seed_batch(net: &NetArgs, command: &str) -> Result<()> {
    match net.settings.seed_batch {
        Some(n) => Err(RunnerError::input(format!(
            "--seed-batch {n} is not allowed with sigprop {command}; expected it with run, \
             compare, recommend, a suite or bench --seeds N (sigprop {command} runs one \
             network at a time)"
        ))
        .into()),
        None => Ok(()),
    }
}

pub fn bench_cmd(a: &BenchArgs) -> Result<()> {
    // --seeds N (N > 1) also times the whole configuration's seeds as `run` runs them: one
    // seed a pass, then --seed-batch (default N) a pass.
    let seeds = a.net.settings.seeds.filter(|&n| n > 1);
    if seeds.is_none() {
        refuse_seed_batch(&a.net, "bench without --seeds N (N > 1)")?;
    }
    let mut base = a.net.settings()?;
    base.init = a.init.clone();
    base.activation = a.activation.clone();
    let config = |name: &str, seed_batch: Option<usize>| -> Result<Experiment> {
        let mut s = base.clone();
        s.seed_batch = seed_batch;
        auto_resolved(&Experiment::from_grid(
            name,
            "",
            &s,
            Vec::new(),
            command_line(),
        )?)
    };
    let exp = config("bench", None)?;
    let spec = exp
        .runs
        .first()
        .ok_or_else(|| RunnerError::input("bench: no configuration to time"))?;
    let seed_exps = match seeds {
        Some(n) => {
            let batched = base.seed_batch.unwrap_or(n as usize);
            vec![
                config("bench-seeds", Some(1))?,
                config("bench-seeds", Some(batched))?,
            ]
        }
        None => Vec::new(),
    };
    let r = sigprop_runner::bench::bench(spec, a.repeats, a.warmup, &seed_exps, &a.out)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!(
        "{} on {} ({}), depth {} width {} batch {}, {} thread(s); {} repeats after {} warm-up",
        r.label, r.backend, r.device, r.depth, r.width, r.batch, r.threads, r.repeats, r.warmup
    );
    println!(
        "{:<18} {:>11} {:>11} {:>11}",
        "phase", "median ms", "min ms", "max ms"
    );
    for p in &r.phases {
        println!(
            "{:<18} {:>11.2} {:>11.2} {:>11.2}",
            p.phase, p.median_ms, p.min_ms, p.max_ms
        );
    }
    match (r.pass_gflop, r.pass_gflops) {
        (Some(w), Some(rate)) => println!(
            "forward+backward: {:.3} GFLOP of matrix products at {:.1} GFLOP/s",
            w, rate
        ),
        _ => println!("forward+backward: no matrix-product count for this architecture"),
    }
    println!(
        "bare product [{}x{}] x [{}x{}]: {:.3} ms, {:.1} GFLOP/s",
        r.gemm.m, r.gemm.k, r.gemm.k, r.gemm.n, r.gemm.median_ms, r.gemm.gflops
    );
    let mib = |b: f64| b / (1024.0 * 1024.0);
    match r.memory_peak_bytes {
        Some(peak) => println!(
            "memory of one pass: {:.1} MiB measured (peak resident, first repeat), {:.1} MiB \
             estimated (--max-memory's check), estimate/measured {:.2}",
            mib(peak),
            mib(r.memory_estimate_bytes),
            r.memory_estimate_bytes / peak.max(1.0)
        ),
        None => println!(
            "memory of one pass: {:.1} MiB estimated (--max-memory's check); not measured here \
             (Linux and a CPU backend only)",
            mib(r.memory_estimate_bytes)
        ),
    }
    if let (Some(n), [one, batched]) = (seeds, &r.seed_runs[..]) {
        println!(
            "{n} seeds as run runs them (medians of {}): one seed a pass {:.3} s, {} a pass \
             {:.3} s ({:.2}x)",
            a.repeats,
            one.median_s,
            batched.seed_batch,
            batched.median_s,
            one.median_s / batched.median_s
        );
    }
    println!("wrote {}", a.out.join("bench.json").display());
    Ok(())
}

/// `sigprop train`.
pub fn train_cmd(a: &TrainArgs) -> Result<()> {
    refuse_seed_batch(&a.net, "train")?;
    let base = a.net.settings()?;
    let to_values = |v: Vec<String>| v.into_iter().map(toml::Value::String).collect::<Vec<_>>();
    let mut grid = Vec::new();
    let inits = split_specs(&a.inits);
    if !inits.is_empty() {
        grid.push(("init".to_string(), to_values(inits)));
    }
    let acts = split_specs(&a.activations);
    if !acts.is_empty() {
        grid.push(("activation".to_string(), to_values(acts)));
    }
    if !a.depths.is_empty() {
        let depths = a.depths.iter().map(|&d| toml::Value::Integer(d as i64));
        grid.push(("depth".to_string(), depths.collect()));
    }
    let kinds = a.table.param_kinds()?;
    let exp = Experiment::under_params("train", "", &base, vec![grid], command_line(), &kinds)?;
    train_exp(&exp, &a.table, None, a.out.clone(), a.quiet, a.json)
}

/// Train `exp` by `table` and print the summary.
fn train_exp(
    exp: &Experiment,
    table: &TrainTable,
    dir: Option<&Path>,
    out: Option<PathBuf>,
    quiet: bool,
    json: bool,
) -> Result<()> {
    let plan = table.plan(&exp.runs, dir)?;
    let exp = &auto_resolved(exp)?;
    let out = out.unwrap_or_else(|| fresh_out(&exp.name));
    let done = sigprop_runner::train::train(exp, &plan, &out, quiet)?;
    if json {
        let rows: Vec<serde_json::Value> = done
            .outcomes
            .iter()
            .map(|o| {
                let mut v = serde_json::to_value(&o.key)?;
                // Seconds per seed of the training loop (a timing: stdout only, no CSV).
                let wall: Vec<f64> = o.runs.iter().map(|(_, r)| r.wall_s).collect();
                let timing = serde_json::json!({ "train_s": wall, "arm": o.arm.as_str() });
                for extra in [
                    serde_json::to_value(&o.cols)?,
                    serde_json::to_value(&o.summary)?,
                    timing,
                ] {
                    if let (Some(m), serde_json::Value::Object(extra)) = (v.as_object_mut(), extra)
                    {
                        m.extend(extra);
                    }
                }
                Ok(v)
            })
            .collect::<Result<_, serde_json::Error>>()?;
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if !quiet {
        print!("{}", sigprop_runner::train::summary_table(&done.outcomes));
        for l in sigprop_runner::train::lottery_lines(&done.outcomes, plan.lottery) {
            println!("lottery: {l}");
        }
        for t in &done.transfers {
            println!("transfer: {}", t.line());
        }
        println!("wrote {}", done.dir.display());
    }
    Ok(())
}

/// `sigprop coord-check`.
pub fn coord_cmd(a: &CoordArgs) -> Result<()> {
    refuse_seed_batch(&a.net, "coord-check")?;
    // `--widths` lists the widths to compare here (coord-check sets each mlp's own widths).
    let mut net = a.net.clone();
    let mut table = a.table.clone();
    table.take_widths(&mut net.own.0)?;
    let mut base = net.settings()?;
    base.init = a.init.clone();
    base.activation = a.activation.clone();
    coord_exp(
        ("coord-check", "", &command_line()),
        &base,
        &table,
        None,
        a.out.clone(),
        a.quiet,
    )
}

/// Run the coordinate check `table` on `base` and print its fits.
fn coord_exp(
    about: (&str, &str, &str),
    base: &Settings,
    table: &CoordTable,
    dir: Option<&Path>,
    out: Option<PathBuf>,
    quiet: bool,
) -> Result<()> {
    let plan = table.plan(dir)?;
    let out = out.unwrap_or_else(|| fresh_out(about.0));
    let done = sigprop_runner::coord::coord_check(base, &plan, &out, about, quiet)?;
    if !quiet {
        println!(
            "{:<10} {:>3} {:>5} {:<14} {:>8} {:>18}  verdict",
            "param", "of", "step", "site", "slope", "95% interval"
        );
        for f in &done.fits {
            println!(
                "{:<10} {:>3} {:>5} {:<14} {:>8.3} {:>18}  {}",
                f.param,
                f.quantity,
                f.step,
                format!("{} {}", f.site, f.layer),
                f.slope,
                f.interval(),
                f.verdict_text()
            );
        }
        println!("wrote {}", done.dir.display());
    }
    Ok(())
}

/// `sigprop compare`.
pub fn compare_cmd(a: &CompareArgs) -> Result<()> {
    let base = a.net.settings()?;
    let to_values = |v: Vec<String>| v.into_iter().map(toml::Value::String).collect::<Vec<_>>();
    let mut grid = vec![("init".to_string(), to_values(split_specs(&a.inits)))];
    let acts = split_specs(&a.activations);
    if !acts.is_empty() {
        grid.push(("activation".to_string(), to_values(acts)));
    }
    let exp = Experiment::from_grid("compare", "", &base, grid, command_line())?;
    execute(&exp, &a.out)
}

/// `sigprop suite`.
pub fn suite_cmd(a: &SuiteArgs) -> Result<()> {
    let (exp, kind, dir) = match &a.file {
        Some(f) => {
            let (exp, kind) = Experiment::parse_suite_file(f, command_line())?;
            (exp, kind, f.parent().map(Path::to_path_buf))
        }
        None => {
            let (exp, kind) = Experiment::parse_suite(
                QUICKSTART,
                "built-in quickstart",
                "quickstart",
                command_line(),
            )?;
            (exp, kind, None)
        }
    };
    match kind {
        SuiteKind::Probe => execute(&exp, &a.out),
        SuiteKind::Train(table) => {
            refuse_store_flags(&a.out, "[train]")?;
            train_exp(
                &exp,
                &table,
                dir.as_deref(),
                a.out.out.clone(),
                a.out.quiet,
                a.out.json,
            )
        }
        SuiteKind::Coord(table, base) => {
            refuse_store_flags(&a.out, "[coord]")?;
            coord_exp(
                (&exp.name, &exp.description, &exp.command),
                &base,
                &table,
                dir.as_deref(),
                a.out.out.clone(),
                a.out.quiet,
            )
        }
    }
}

/// `--resume` and `--shard` work on the results store, which training and the coordinate
/// check do not keep.
fn refuse_store_flags(out: &OutArgs, table: &str) -> Result<()> {
    for (set, flag) in [(out.resume, "--resume"), (out.shard.is_some(), "--shard")] {
        if set {
            return Err(RunnerError::input(format!(
                "{flag}: a {table} suite keeps no results store; run it whole"
            ))
            .into());
        }
    }
    Ok(())
}

/// `sigprop plot`.
pub fn plot_cmd(a: &PlotArgs) -> Result<()> {
    let (finished, titled) = redraw_folder(&a.dir)?;
    if !titled {
        eprintln!(
            "note: {} has no manifest.json; the report gets a generic title",
            a.dir.display()
        );
    }
    println!(
        "redrew {} charts in {}",
        finished.charts.len(),
        a.dir.display()
    );
    Ok(())
}

/// `sigprop list`.
pub fn list_cmd(a: &ListArgs) -> Result<()> {
    match a.what.as_str() {
        "inits" => {
            for name in SCHEME_NAMES {
                println!("{name:<18} {}", scheme_description(name));
            }
        }
        "activations" => {
            for name in ACTIVATION_NAMES {
                println!("{name}");
            }
        }
        "archs" => {
            let w = Arch::ALL.iter().map(|a| a.name().len()).max().unwrap_or(0);
            for &arch in Arch::ALL {
                println!("{:<w$}  {}", arch.name(), arch.describe());
            }
        }
        "backends" => {
            for (b, built) in BackendKind::all() {
                println!(
                    "{:<8} {}",
                    b.name(),
                    if built {
                        "built in".to_string()
                    } else {
                        format!(
                            "not in this build (build or run with --features {})",
                            b.features_to_build()
                        )
                    }
                );
            }
        }
        other => {
            return Err(RunnerError::input(format!(
                "unknown list \"{other}\"; expected one of: inits, activations, archs, backends"
            ))
            .into());
        }
    }
    Ok(())
}

/// `sigprop theory`.
pub fn theory_cmd(a: &TheoryArgs) -> Result<()> {
    // TAT's leaky ReLU solves its slope at the table's depth (20 unless --depth).
    let depth = a.depth.unwrap_or(20);
    if depth == 0 || depth > theory::MAX_SIZE {
        return Err(RunnerError::input(format!(
            "--depth {depth} is not allowed; expected a whole number from 1 to {}",
            theory::MAX_SIZE
        ))
        .into());
    }
    let act: Activation = a
        .activation
        .parse::<Activation>()
        .and_then(|act| sigprop_theory::resolve_activation(act, depth))
        .map_err(|e| RunnerError::input(format!("--activation: {e}")))?;
    let sigma_b = theory::sigma_b(a.sigma_b)?;
    if a.phase_diagram {
        let dir = a
            .out
            .clone()
            .unwrap_or_else(|| fresh_out(&format!("phase-{}", act.name())));
        let files = theory::phase_diagram(act, &dir)?;
        for f in files {
            println!("wrote {}", f.display());
        }
        return Ok(());
    }
    if a.info {
        let i = theory::info(act, sigma_b, a.init.as_deref(), a.width.unwrap_or(256))?;
        let n = |x: f64| fmt_sig(x, 7);
        println!("activation      {act}");
        if let Activation::TatLeakyRelu {
            eta,
            slope: Some(s),
        } = act
        {
            println!(
                "tat slope       {}   ({depth} layers take correlation 0 to eta {}; scale \
                 sqrt(2/(1+a^2)) = {})",
                n(s),
                n(eta),
                n((2.0 / (1.0 + s * s)).sqrt())
            );
        }
        if let Activation::Dks {
            base,
            zeta,
            shape: Some(s),
        } = act
        {
            println!(
                "dks shape       gamma (phi(alpha x + beta) + delta) of {}: alpha {}, beta {}, \
                 gamma {}, delta {}   ({depth} layers: C'(1) = {} per layer, {} over the \
                 network; Q(1) = 1, Q'(1) = 1, C(0) = 0)",
                base.activation().name(),
                n(s.alpha),
                n(s.beta),
                n(s.gamma),
                n(s.delta),
                n(zeta.powf(1.0 / depth as f64)),
                n(zeta)
            );
        }
        println!("sigma_b         {}", n(i.sigma_b));
        println!("sigma_w^2       {}   (from {})", n(i.sigma_w2), i.from);
        match i.q_star {
            Some(q) => println!("q*              {}", n(q)),
            None => println!("q*              none (q diverges)"),
        }
        println!("chi_1           {}", n(i.chi1));
        println!("xi_q            {}", n(i.xi_q));
        println!("xi_c            {}", n(i.xi_c));
        println!("phase           {:?}", i.phase);
        match i.critical {
            Critical::Root { sigma_w, q_star } => println!(
                "critical sigma_w {}   (sigma_w^2 = {}, q* = {})",
                n(sigma_w),
                n(sigma_w * sigma_w),
                n(q_star)
            ),
            Critical::NoCrossing { below, above } => println!(
                "critical sigma_w none: chi_1 jumps over 1 between sigma_w={} (chi_1={}) and sigma_w={} (chi_1={})",
                n(below.0),
                n(below.1),
                n(above.0),
                n(above.1)
            ),
            Critical::None { reason } => println!("critical sigma_w none: {reason}"),
        }
        return Ok(());
    }
    let preds = theory::table(act, sigma_b, a.init.as_deref(), (a.depth, a.width, a.batch))?;
    println!("layer,preact_var,act_mean,act_var,grad_var,act_grad_var,wgrad_var");
    for p in preds {
        println!(
            "{},{},{},{},{},{},{}",
            p.layer, p.preact_var, p.act_mean, p.act_var, p.grad_var, p.act_grad_var, p.wgrad_var
        );
    }
    Ok(())
}

/// `sigprop completions SHELL`: the completion script on stdout.
pub fn completions_cmd(a: &CompletionsArgs) -> Result<()> {
    let mut cmd = <crate::args::Cli as clap::CommandFactory>::command();
    clap_complete::generate(a.shell, &mut cmd, "sigprop", &mut std::io::stdout());
    Ok(())
}

/// `sigprop man`: the man page (roff) on stdout, every subcommand's flags included.
pub fn man_cmd() -> Result<()> {
    let cmd = <crate::args::Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    // Each subcommand's flags under its own heading.
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
        std::io::Write::write_all(
            &mut out,
            format!(
                ".SH \"SIGPROP {}\"\n{}\n",
                sub.get_name().to_uppercase(),
                about.replace('\\', "\\\\")
            )
            .as_bytes(),
        )?;
        clap_mangen::Man::new(sub.clone()).render_options_section(&mut out)?;
    }
    std::io::Write::write_all(&mut std::io::stdout(), &out)?;
    Ok(())
}
