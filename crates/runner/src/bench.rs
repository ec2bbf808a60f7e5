//! `sigprop bench`: the phases of one configuration's probed pass (initialization, forward and
//! backward, statistics) timed over repeats after warm-up, with the rate the pass achieves in
//! matrix-product work next to the bare matrix product's rate on the same backend, measured
//! in the same process. Benchmarks, not tests: the numbers are the machine's.

use std::path::Path;
use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use serde::Serialize;
use sigprop_nets::{PhaseTimes, ProbeOptions, ResolvedNet, build_params, measure};
use sigprop_report::output::write_atomic;
use sigprop_spec::error::RunnerError;
use sigprop_spec::experiment::Experiment;
use sigprop_spec::settings::RunSpec;

use crate::execute::{Ran, RunOptions, run_experiment};

/// Timing of one phase over the repeats, milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseMs {
    /// `init`, `forward_backward`, `stats` or `total`.
    pub phase: &'static str,
    /// Median over the repeats.
    pub median_ms: f64,
    /// Fastest repeat.
    pub min_ms: f64,
    /// Slowest repeat.
    pub max_ms: f64,
}

/// The bare matrix product `[m, k] x [k, n]` on the benchmark's backend.
#[derive(Debug, Clone, Serialize)]
pub struct Gemm {
    /// Rows (the batch).
    pub m: usize,
    /// Inner size (the width).
    pub k: usize,
    /// Columns (the width).
    pub n: usize,
    /// Median time of one product, milliseconds.
    pub median_ms: f64,
    /// `2 m k n` over the median time, GFLOP/s.
    pub gflops: f64,
}

/// A whole configuration's seeds run as `sigprop run` runs them, at one seed-batch.
#[derive(Debug, Clone, Serialize)]
pub struct SeedRuns {
    /// Seeds a pass (1: each seed its own pass; on a CPU backend the seeds' passes share
    /// the cores).
    pub seed_batch: usize,
    /// The run's wall time (every seed measured and its record written, the tables derived;
    /// no charts), median over the repeats, seconds.
    pub median_s: f64,
    /// Fastest repeat, seconds.
    pub min_s: f64,
    /// Slowest repeat, seconds.
    pub max_s: f64,
}

/// Time each of `exps` (one configuration each, the same seeds at different seed-batches)
/// `repeats` times as `sigprop run` runs it, interleaved, into a temporary folder.
pub fn time_seeds(exps: &[Experiment], repeats: usize) -> Result<Vec<SeedRuns>, RunnerError> {
    if exps.is_empty() {
        return Ok(Vec::new());
    }
    let dir = tempfile::tempdir()
        .map_err(|e| RunnerError::Internal(format!("bench: a temporary folder: {e}")))?;
    let mut walls = vec![Vec::with_capacity(repeats); exps.len()];
    for _ in 0..repeats.max(1) {
        for (i, exp) in exps.iter().enumerate() {
            let opts = RunOptions {
                out: dir.path().join(i.to_string()),
                quiet: true,
                resume: false,
                shard: None,
            };
            match run_experiment(exp, &opts)? {
                Ran::Complete(_, _, wall_s) => walls[i].push(wall_s),
                Ran::Partial { .. } => {
                    return Err(RunnerError::Internal("bench: a run ended partially".into()));
                }
            }
        }
    }
    Ok(exps
        .iter()
        .zip(walls)
        .map(|(exp, mut w)| {
            w.sort_by(f64::total_cmp);
            SeedRuns {
                seed_batch: exp.runs.first().map_or(1, |r| r.seed_batch.max(1)),
                median_s: median(&w),
                min_s: w[0],
                max_s: w[w.len() - 1],
            }
        })
        .collect())
}

/// What `sigprop bench` measured (written as `bench.json`).
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// The configuration's label.
    pub label: String,
    /// Architecture.
    pub arch: String,
    /// Backend.
    pub backend: String,
    /// The device, as the backend names it.
    pub device: String,
    /// Depth, width and batch.
    pub depth: usize,
    /// Width.
    pub width: usize,
    /// Batch.
    pub batch: usize,
    /// The seed every repeat runs (the same work each time).
    pub seed: u64,
    /// Threads of the rayon pool (the CPU backends' and the statistics').
    pub threads: usize,
    /// Repeats timed, after `warmup` untimed ones.
    pub repeats: usize,
    /// Untimed repeats first (kernel compilation, caches, allocator).
    pub warmup: usize,
    /// Each phase over the repeats.
    pub phases: Vec<PhaseMs>,
    /// Every timed repeat.
    pub times: Vec<PhaseTimes>,
    /// Matrix-product work of one forward and backward pass, GFLOP: `6 x batch x` the
    /// weight entries, times the pixels for convolutions (forward `2 B P`, backward `4 B P`
    /// for the input and weight gradients); absent for the RNN and transformer.
    pub pass_gflop: Option<f64>,
    /// That work over the median forward and backward time, GFLOP/s.
    pub pass_gflops: Option<f64>,
    /// The bare product of the pass's size.
    pub gemm: Gemm,
    /// The estimate of one probed pass's peak memory that `--max-memory` checks
    /// ([`sigprop_nets::NetConfig::pass_bytes`] and the process's
    /// [`sigprop_nets::WORKSPACE_BYTES`]), bytes.
    pub memory_estimate_bytes: f64,
    /// The first repeat's measured peak: the process's peak resident memory during it less
    /// its resident memory before it, bytes (the weights drawn, the pass, the statistics).
    /// Linux on a CPU backend only (`/proc/self/status`'s `VmHWM`, reset through
    /// `/proc/self/clear_refs`); absent elsewhere (a GPU's memory is not resident).
    pub memory_peak_bytes: Option<f64>,
    /// With `--seeds N` (N > 1): the whole configuration's N seeds as `run` runs them, one
    /// seed a pass and then `--seed-batch` (default N) a pass.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub seed_runs: Vec<SeedRuns>,
}

/// This process's resident memory and its peak since the last reset, bytes (Linux).
fn resident() -> Option<(f64, f64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|k| 1024.0 * k)
    };
    Some((kib("VmRSS:")?, kib("VmHWM:")?))
}

/// Reset the peak resident memory to the current one (Linux: writing 5 to clear_refs).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Time `spec`'s first seed `warmup + repeats` times and the bare product `repeats` times,
/// then each of `seed_exps` (`spec`'s configuration with all its seeds, at different
/// seed-batches; none to skip) `repeats` times as `run` runs it; write `bench.json` into
/// `out`.
pub fn bench(
    spec: &RunSpec,
    repeats: usize,
    warmup: usize,
    seed_exps: &[Experiment],
    out: &Path,
) -> Result<BenchReport, RunnerError> {
    if repeats == 0 {
        return Err(RunnerError::input(
            "--repeats 0: expected a whole number of timed repeats > 0",
        ));
    }
    spec.refuse_precision("bench")?;
    if spec.auto_is_pending() {
        return Err(RunnerError::Internal(
            "bench: init auto was not resolved before timing (recommend::resolve_auto_runs)".into(),
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| {
        RunnerError::input(format!("--out {}: cannot write there: {e}", out.display()))
    })?;
    let net = &spec.net;
    let dev = sigprop_nets::device(spec.backend)?;
    let seed = spec.seeds.first().copied().unwrap_or(0);
    let opts = ProbeOptions {
        batch: spec.batch,
        hist_layers: Vec::new(),
        hist_bins: 0,
        jacobian: spec.jacobian.clone(),
        precision: None,
    };
    let mut times = Vec::with_capacity(repeats);
    // The first repeat's peak, before the allocator holds on to any pass's pages.
    let cpu = spec.backend.is_cpu();
    let before = resident().filter(|_| cpu && reset_peak());
    let mut memory_peak_bytes = None;
    for i in 0..warmup + repeats {
        let m = measure(net, seed, &opts, &dev)?;
        if i == 0
            && let (Some((rss, _)), Some((_, peak))) = (before, resident())
        {
            memory_peak_bytes = Some((peak - rss).max(0.0));
        }
        if i >= warmup {
            times.push(m.result.times);
        }
    }
    let phase = |name: &'static str, f: &dyn Fn(&PhaseTimes) -> f64| {
        let mut v: Vec<f64> = times.iter().map(|t| 1e3 * f(t)).collect();
        v.sort_by(f64::total_cmp);
        PhaseMs {
            phase: name,
            median_ms: median(&v),
            min_ms: v[0],
            max_ms: v[v.len() - 1],
        }
    };
    let phases = vec![
        phase("init", &|t| t.init_s),
        phase("forward_backward", &|t| t.forward_backward_s),
        phase("stats", &|t| t.stats_s),
        phase("total", &|t| t.init_s + t.forward_backward_s + t.stats_s),
    ];
    let pass_gflop = pass_work(net, seed, spec.batch)?.map(|f| f / 1e9);
    let pass_gflops = pass_gflop.map(|g| g / (phases[1].median_ms / 1e3));
    let gemm = gemm(spec.batch, net.config.width, repeats.max(3), &dev)?;
    let report = BenchReport {
        label: spec.label.clone(),
        arch: net.config.arch.kind().name().to_string(),
        backend: spec.backend.name().to_string(),
        device: sigprop_nets::backend::device_name(&dev),
        depth: net.config.depth,
        width: net.config.width,
        batch: spec.batch,
        seed,
        threads: rayon::current_num_threads(),
        repeats,
        warmup,
        phases,
        times,
        pass_gflop,
        pass_gflops,
        gemm,
        memory_estimate_bytes: net.config.pass_bytes(spec.batch) + sigprop_nets::WORKSPACE_BYTES,
        memory_peak_bytes,
        seed_runs: time_seeds(seed_exps, repeats)?,
    };
    let text = serde_json::to_string_pretty(&report)
        .map_err(|e| RunnerError::Internal(format!("bench.json: {e}")))?;
    write_atomic(&out.join("bench.json"), text.as_bytes())?;
    Ok(report)
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
    }
}

/// Matrix-product FLOPs of one forward and backward pass (see [`BenchReport::pass_gflop`]).
fn pass_work(net: &ResolvedNet, seed: u64, batch: usize) -> Result<Option<f64>, RunnerError> {
    let Some(per_use) = net.config.arch.matrix_uses() else {
        return Ok(None);
    };
    let params = build_params(net, seed)?;
    let entries: usize = params
        .tensors
        .iter()
        .filter(|t| t.path.ends_with(".weight") && t.path != "head.weight")
        .map(|t| t.data.len())
        .sum();
    Ok(Some(6.0 * batch as f64 * entries as f64 * per_use))
}

/// The median time of `[m, k] x [k, n]` (`k = n = width`) over `repeats` after one warm-up.
fn gemm(m: usize, width: usize, repeats: usize, dev: &Device) -> Result<Gemm, RunnerError> {
    let fill = |rows: usize, cols: usize, name: &str| -> Result<Tensor<2>, RunnerError> {
        let data = sigprop_nets::inputs::normal_input(0, name, [rows, cols])?;
        Ok(Tensor::<2>::from_data(
            TensorData::new(data, [rows, cols]),
            dev,
        ))
    };
    let a = fill(m, width, "bench.a")?;
    let b = fill(width, width, "bench.b")?;
    let mut ms = Vec::with_capacity(repeats);
    for i in 0..=repeats {
        let t = Instant::now();
        let c = a.clone().matmul(b.clone());
        // Reading one value back waits for the product on every backend.
        let _ = c.slice([0..1, 0..1]).into_data();
        if i > 0 {
            ms.push(1e3 * t.elapsed().as_secs_f64());
        }
    }
    ms.sort_by(f64::total_cmp);
    let median_ms = median(&ms);
    Ok(Gemm {
        m,
        k: width,
        n: width,
        median_ms,
        gflops: 2.0 * (m * width * width) as f64 / (median_ms / 1e3) / 1e9,
    })
}
