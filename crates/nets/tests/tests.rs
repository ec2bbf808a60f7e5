//! Integration tests of the network crate: exact facts about probed passes, agreement
//! between backends, LSUV's invariant, and overflow handled as a result.

use burn::tensor::{Device, Tensor, TensorData};
use sigprop_init::Activation;
use sigprop_nets::arch::{Cnn, Mlp, Rescnn, Resmlp, Transformer};
use sigprop_nets::{
    Arch, BackendKind, BranchScale, Dtype, LayerStats, Loss, LossScale, NetConfig, Norm,
    NormPosition, PrecisionOptions, PrecisionStats, ProbeOptions, Shortcut, build_params, device,
    forward_plain, measure, measure_staged, measure_staged_seeds, probe, stage,
};
use sigprop_nets::{
    Dataset, OptimizerKind, ParamKind, Parametrization, Role, StepRecord, Task, TrainOptions,
    TrainResult, model_width, roles, train,
};

/// The classic ndarray CPU backend when this build includes it (the `ndarray` feature).
fn ndarray_if_built() -> Vec<BackendKind> {
    if cfg!(feature = "ndarray") {
        vec![BackendKind::Ndarray]
    } else {
        Vec::new()
    }
}

/// The backends compared against flex: ndarray when built, and wgpu.
fn other_backends() -> Vec<BackendKind> {
    let mut kinds = ndarray_if_built();
    kinds.push(BackendKind::Wgpu);
    kinds
}

/// The device of `kind`. wgpu must run: CI installs Mesa's lavapipe, and so does a developer
/// (`apt-get install mesa-vulkan-drivers`). Skipping it takes an explicit
/// SIGPROP_SKIP_WGPU=1 (then `None`), never a missing driver going unnoticed.
fn backend_or_skip(kind: BackendKind) -> Option<Device> {
    match device(kind) {
        Ok(d) => Some(d),
        Err(e)
            if kind == BackendKind::Wgpu
                && std::env::var("SIGPROP_SKIP_WGPU").is_ok_and(|v| v == "1") =>
        {
            eprintln!("SIGPROP_SKIP_WGPU=1: skipping wgpu ({e})");
            None
        }
        Err(e) => panic!(
            "{e} (install Mesa's software Vulkan driver, mesa-vulkan-drivers, or set \
             SIGPROP_SKIP_WGPU=1 to skip wgpu knowingly)"
        ),
    }
}

fn cpu() -> Device {
    device(BackendKind::Flex).unwrap()
}

fn opts(batch: usize) -> ProbeOptions {
    ProbeOptions {
        batch,
        hist_layers: vec![],
        hist_bins: 0,
        jacobian: None,
        precision: None,
    }
}

fn mlp(depth: usize, width: usize, act: &str, init: &str) -> NetConfig {
    NetConfig::new(Arch::Mlp, depth, width, act, init)
}

fn run(cfg: &NetConfig, batch: usize, seed: u64, dev: &Device) -> Vec<LayerStats> {
    let net = cfg.resolve().unwrap();
    measure(&net, seed, &opts(batch), dev).unwrap().result.stats
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-30)
}

/// Host f64 forward/backward of a tanh MLP with the projection loss: the independent
/// computation the probes are checked against.
#[test]
fn probe_gradients_equal_the_analytic_backward_on_a_tiny_network() {
    let (depth, width, batch, seed) = (3, 5, 4, 7);
    let mut cfg = mlp(depth, width, "tanh", "xavier-normal");
    cfg.bias_init = "normal:std=0.3".into();
    let net = cfg.resolve().unwrap();
    let params = build_params(&net, seed).unwrap();
    let stats = probe(&net, &params, seed, &opts(batch), &Device::flex())
        .unwrap()
        .stats;

    let x: Vec<f64> = sigprop_nets::inputs::normal_input(seed, "input", [batch, width])
        .unwrap()
        .iter()
        .map(|&v| v as f64)
        .collect();
    let g: Vec<f64> = sigprop_nets::inputs::normal_input(seed, "loss.g", [batch, width])
        .unwrap()
        .iter()
        .map(|&v| v as f64)
        .collect();
    let w = |l: usize| {
        params
            .get(&format!("layers.{l}.weight"))
            .unwrap()
            .data
            .iter()
            .map(|&v| v as f64)
            .collect::<Vec<f64>>()
    };
    let b = |l: usize| {
        params
            .get(&format!("layers.{l}.bias"))
            .unwrap()
            .data
            .iter()
            .map(|&v| v as f64)
            .collect::<Vec<f64>>()
    };
    let mut hs = vec![x];
    let mut zs = Vec::new();
    for l in 1..=depth {
        let (wl, bl, h) = (w(l), b(l), hs.last().unwrap().clone());
        let mut z = vec![0.0; batch * width];
        for r in 0..batch {
            for j in 0..width {
                z[r * width + j] = bl[j]
                    + (0..width)
                        .map(|i| h[r * width + i] * wl[i * width + j])
                        .sum::<f64>();
            }
        }
        hs.push(z.iter().map(|v| v.tanh()).collect());
        zs.push(z);
    }
    let var = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64
    };
    let mut dh = g;
    for l in (1..=depth).rev() {
        let z = &zs[l - 1];
        let dz: Vec<f64> = dh
            .iter()
            .zip(z)
            .map(|(d, z)| d * (1.0 - z.tanh().powi(2)))
            .collect();
        let h_prev = &hs[l - 1];
        // dL/dW = h^(l-1)^T dL/dz^l.
        let mut dw = vec![0.0; width * width];
        for i in 0..width {
            for j in 0..width {
                dw[i * width + j] = (0..batch)
                    .map(|r| h_prev[r * width + i] * dz[r * width + j])
                    .sum();
            }
        }
        let s = &stats[l - 1];
        assert!(
            rel(s.preact_var, var(z)) < 1e-5,
            "layer {l} preact_var {} vs {}",
            s.preact_var,
            var(z)
        );
        assert!(
            rel(s.act_grad_var, var(&dh)) < 1e-5,
            "layer {l} act_grad_var"
        );
        assert!(
            rel(s.grad_var, var(&dz)) < 1e-5,
            "layer {l} grad_var {} vs {}",
            s.grad_var,
            var(&dz)
        );
        assert!(
            rel(s.wgrad_var, var(&dw)) < 1e-4,
            "layer {l} wgrad_var {} vs {}",
            s.wgrad_var,
            var(&dw)
        );
        let wl = w(l);
        let mut next = vec![0.0; batch * width];
        for r in 0..batch {
            for i in 0..width {
                next[r * width + i] = (0..width)
                    .map(|j| dz[r * width + j] * wl[i * width + j])
                    .sum();
            }
        }
        dh = next;
    }
}

#[test]
fn cpu_and_wgpu_backends_agree_and_receive_bit_identical_weights() {
    let mut cfg = mlp(10, 64, "tanh", "xavier-normal");
    cfg.bias_init = "normal:std=0.1".into();
    let net = cfg.resolve().unwrap();
    let params = build_params(&net, 3).unwrap();
    let reference = probe(&net, &params, 3, &opts(32), &Device::flex())
        .unwrap()
        .stats;
    let w = &params.get("layers.4.weight").unwrap();
    let (mut compared, mut skipped) = (0, 0);
    for kind in other_backends() {
        let Some(dev) = backend_or_skip(kind) else {
            skipped += 1;
            continue;
        };
        let t = Tensor::<2>::from_data(TensorData::new(w.data.clone(), w.shape.clone()), &dev);
        let back: Vec<f32> = t.into_data().try_to_vec().unwrap();
        assert!(
            back.iter()
                .zip(&w.data)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{kind}: weights changed on upload"
        );
        let stats = probe(&net, &params, 3, &opts(32), &dev).unwrap().stats;
        for (a, b) in stats.iter().zip(&reference) {
            for (name, x, y) in [
                ("preact_var", a.preact_var, b.preact_var),
                ("act_var", a.act_var, b.act_var),
                ("grad_var", a.grad_var, b.grad_var),
                ("act_grad_var", a.act_grad_var, b.act_grad_var),
                ("wgrad_var", a.wgrad_var, b.wgrad_var),
            ] {
                assert!(
                    rel(x, y) < 1e-4,
                    "{kind} layer {} {name}: {x} vs flex {y}",
                    a.layer
                );
            }
        }
        compared += 1;
    }
    // Every backend compared but a wgpu that SIGPROP_SKIP_WGPU=1 let go.
    assert_eq!(compared + skipped, other_backends().len());
    assert!(skipped == 0 || std::env::var("SIGPROP_SKIP_WGPU").is_ok_and(|v| v == "1"));
}

/// Weights staged on another thread while the device computes another seed's pass (how
/// the runner overlaps a GPU's seeds) give the numbers of a pass on its own: on flex and
/// wgpu, for plain weights and for LSUV's (which uses the device while it stages).
#[test]
fn weights_staged_during_another_pass_give_the_numbers_of_a_solo_pass() {
    let mut kinds = vec![BackendKind::Flex];
    kinds.push(BackendKind::Wgpu);
    let mut compared = 0;
    for kind in kinds {
        let Some(dev) = backend_or_skip(kind) else {
            continue;
        };
        for init in ["xavier-normal", "lsuv:tol=0.05"] {
            let mut cfg = mlp(8, 64, "tanh", init);
            cfg.bias_init = "normal:std=0.1".into();
            let net = cfg.resolve().unwrap();
            let solo = measure(&net, 5, &opts(32), &dev).unwrap();
            let (other, staged) = std::thread::scope(|s| {
                let ahead = s.spawn(|| stage(&net, 5, 32, &dev).unwrap());
                let other = measure(&net, 4, &opts(32), &dev).unwrap();
                (other, ahead.join().unwrap())
            });
            let overlapped = measure_staged(&net, staged, &opts(32), &dev).unwrap();
            // Debug text, so NaN columns (no weight at a site) compare equal to themselves.
            let text = |m: &sigprop_nets::Measured| format!("{:?} {:?}", m.result.stats, m.lsuv);
            assert_eq!(text(&overlapped), text(&solo), "{kind} {init}");
            assert_ne!(
                text(&other),
                text(&solo),
                "{kind} {init}: seeds 4 and 5 alike"
            );
            compared += 1;
        }
    }
    assert!(compared >= 2);
}

/// Seeds run as one pass over stacked weights give each seed's solo numbers, bit for bit,
/// on every backend: MLPs (saturating tanh with biases, ReLU with dead units, LayerNorm,
/// the cross-entropy head, LSUV), a residual MLP and a transformer.
#[test]
fn seeds_batched_into_one_pass_give_the_numbers_of_their_solo_passes() {
    let mut cases: Vec<NetConfig> = Vec::new();
    let mut tanh = mlp(6, 48, "tanh", "xavier-normal:gain=2");
    tanh.bias_init = "normal:std=0.2".into();
    cases.push(tanh);
    let mut relu = mlp(5, 40, "relu", "lsuv:tol=0.05");
    relu.bias_init = "constant:value=-0.3".into();
    relu.loss = Loss::CrossEntropy;
    cases.push(relu);
    let mut ln = mlp(4, 32, "gelu", "xavier-normal");
    ln.arch = Mlp {
        widths: Some(vec![24, 32, 40, 32, 16]),
        norm: Norm::Layer,
        input_corr: Some(0.5),
    }
    .into();
    ln.loss = Loss::Mse;
    cases.push(ln);
    cases.push(NetConfig::new(
        Resmlp::default(),
        3,
        32,
        "relu",
        "he-normal",
    ));
    cases.push(NetConfig::new(
        Transformer {
            seq_len: 8,
            heads: 2,
            ..Transformer::default()
        },
        2,
        16,
        "gelu",
        "xavier-normal",
    ));
    let mut compared = 0;
    for kind in [BackendKind::Flex, BackendKind::Wgpu] {
        let Some(dev) = backend_or_skip(kind) else {
            continue;
        };
        for cfg in &cases {
            let net = cfg.resolve().unwrap();
            assert!(sigprop_nets::batchable(&net, &opts(6)), "{}", cfg.arch);
            let seeds = [3u64, 4, 7];
            let staged: Vec<_> = seeds
                .iter()
                .map(|&s| stage(&net, s, 6, &dev).unwrap())
                .collect();
            let batched = measure_staged_seeds(&net, staged, &opts(6), &dev).unwrap();
            assert_eq!(batched.len(), seeds.len());
            for (&seed, b) in seeds.iter().zip(&batched) {
                let solo = measure(&net, seed, &opts(6), &dev).unwrap();
                // Debug text, so NaN columns compare equal to themselves.
                let text =
                    |m: &sigprop_nets::Measured| format!("{:?} {:?}", m.result.stats, m.lsuv);
                assert_eq!(text(b), text(&solo), "{kind} {} seed {seed}", cfg.arch);
                // Not vacuous: the statistics are finite and the seeds differ.
                let first = &b.result.stats[0];
                assert!(first.grad_var > 0.0 && first.wgrad_var > 0.0, "{first:?}");
            }
            assert_ne!(
                format!("{:?}", batched[0].result.stats),
                format!("{:?}", batched[1].result.stats)
            );
            compared += 1;
        }
    }
    assert!(compared >= cases.len());
}

/// Histograms, Jacobians, batch normalization and learnable scalars keep seeds solo.
#[test]
fn what_cannot_batch_runs_seed_by_seed() {
    let dev = cpu();
    let mut bn = mlp(3, 16, "relu", "he-normal");
    bn.arch = Mlp {
        norm: Norm::Batch,
        ..Mlp::default()
    }
    .into();
    let rezero = NetConfig::new(
        Resmlp {
            branch_scale: BranchScale::Rezero,
            ..Resmlp::default()
        },
        3,
        16,
        "relu",
        "he-normal",
    );
    for cfg in [bn, rezero] {
        let net = cfg.resolve().unwrap();
        assert!(!sigprop_nets::batchable(&net, &opts(4)), "{}", cfg.arch);
        let staged: Vec<_> = (0..2).map(|s| stage(&net, s, 4, &dev).unwrap()).collect();
        let m = measure_staged_seeds(&net, staged, &opts(4), &dev).unwrap();
        let solo = measure(&net, 1, &opts(4), &dev).unwrap();
        assert_eq!(
            format!("{:?}", m[1].result.stats),
            format!("{:?}", solo.result.stats)
        );
    }
    let net = mlp(3, 16, "relu", "he-normal").resolve().unwrap();
    let mut hist = opts(4);
    hist.hist_layers = vec![1];
    hist.hist_bins = 4;
    assert!(!sigprop_nets::batchable(&net, &hist));
    let staged: Vec<_> = (0..2).map(|s| stage(&net, s, 4, &dev).unwrap()).collect();
    let m = measure_staged_seeds(&net, staged, &hist, &dev).unwrap();
    assert!(m.iter().all(|m| m.result.histograms.len() == 3));
}

#[test]
fn linear_network_with_orthogonal_weights_keeps_every_sample_norm_over_50_layers() {
    let (depth, width, batch) = (50, 64, 16);
    let net = mlp(depth, width, "linear", "orthogonal").resolve().unwrap();
    let params = build_params(&net, 11).unwrap();
    let x = sigprop_nets::inputs::normal_input(11, "input", [batch, width]).unwrap();
    let y = forward_plain(&net, &params, x.clone(), batch, &Device::flex()).unwrap();
    for r in 0..batch {
        let norm = |v: &[f32]| {
            v[r * width..(r + 1) * width]
                .iter()
                .map(|&a| (a as f64).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        let (nx, ny) = (norm(&x), norm(&y));
        assert!(rel(ny, nx) < 1e-5, "sample {r}: |x| = {nx}, |y| = {ny}");
    }
}

/// Orthogonal linear maps keep inner products: every layer's pair cosine is the inputs'
/// exact cosine `c` (the `input-corr` construction), on every backend.
#[test]
fn orthogonal_linear_maps_keep_the_pair_cosine_of_the_inputs_at_every_layer() {
    for kind in [BackendKind::Flex, BackendKind::Wgpu] {
        let Some(dev) = backend_or_skip(kind) else {
            continue;
        };
        for c in [0.3, -0.8] {
            let mut cfg = mlp(12, 64, "linear", "orthogonal");
            cfg.arch = Mlp {
                input_corr: Some(c),
                ..Mlp::default()
            }
            .into();
            let stats = run(&cfg, 16, 2, &dev);
            assert_eq!(stats.len(), 12);
            for s in &stats {
                let corr = s.batch.as_ref().unwrap().corr;
                assert!(
                    (corr - c).abs() < 1e-5,
                    "{kind} c={c} layer {}: {corr}",
                    s.layer
                );
            }
        }
        // A zero pre-activation has no direction: NaN, not a cosine of 0.
        let mut zero = mlp(2, 8, "relu", "zeros");
        zero.bias_init = "zeros".into();
        let stats = run(&zero, 4, 0, &dev);
        assert!(stats[1].batch.as_ref().unwrap().corr.is_nan(), "{kind}");
    }
}

#[test]
fn relu_with_negative_bias_reports_the_dead_fraction_it_must() {
    // Layer 1: z = x W + b with W ~ N(0, 2/256), b = -1, x ~ N(0,1): z ~ N(-1, 2) nearly,
    // so P(h = 0) = Phi(1/sqrt 2) = 0.760250. The fraction over 256 x 256 entries has a
    // standard deviation of about 1e-3 (from the spread of the column norms of W): 5e-3
    // is five of them.
    let mut cfg = mlp(2, 256, "relu", "he-normal");
    cfg.bias_init = "constant:value=-1".into();
    let s = run(&cfg, 256, 0, &Device::flex());
    assert!(
        (s[0].dead_frac - 0.760_250).abs() < 5e-3,
        "dead_frac {}",
        s[0].dead_frac
    );
    // A strongly negative bias kills everything: exactly 1, and no gradient gets through.
    cfg.bias_init = "constant:value=-20".into();
    let s = run(&cfg, 64, 0, &Device::flex());
    assert_eq!(s[0].dead_frac, 1.0);
    assert_eq!(s[0].grad_var, 0.0);
}

#[test]
fn lsuv_leaves_every_layer_target_variance_within_tol_of_one() {
    for act in ["tanh", "relu"] {
        let net = mlp(12, 128, act, "lsuv:tol=0.05").resolve().unwrap();
        let m = measure(&net, 2, &opts(128), &Device::flex()).unwrap();
        assert_eq!(m.lsuv.len(), 12);
        for (l, &(iters, var)) in m.lsuv.iter().enumerate() {
            assert!(
                (var - 1.0).abs() < 0.05,
                "{act} layer {}: var {var} after {iters} rescalings",
                l + 1
            );
        }
        // The probe's batch is another draw: its variance is near 1 up to sampling.
        assert!(
            m.lsuv.iter().any(|l| l.0 > 0),
            "LSUV made no rescaling at all"
        );
    }
}

/// Issue 14's must-show for `autoinit`: on a sigmoid MLP of depth 30, whose Xavier default
/// loses the gradient by a factor of about 7 per layer, the plan (centred rows, chi_1 = 1)
/// keeps both the forward and the backward variance within 10% of flat per layer. Also
/// exact facts of the fill: every unit's incoming weights sum to 0 and their variance is
/// the plan's, and what autoinit refuses.
#[test]
fn autoinit_holds_a_deep_sigmoid_network_within_ten_percent_per_layer_both_ways() {
    let plan = sigprop_theory::autoinit_plan(Activation::Sigmoid, 1.0).unwrap();
    let (depth, width) = (30, 256);
    let per_layer = |init: &str, bias: &str| {
        let mut cfg = mlp(depth, width, "sigmoid", init);
        cfg.bias_init = bias.into();
        // Seed means of the log ratios, last over first layer.
        let (mut f, mut b) = (0.0, 0.0);
        for seed in 0..3 {
            let s = run(&cfg, 128, seed, &cpu());
            f += (s[depth - 1].preact_var / s[0].preact_var).ln() / 3.0;
            b += (s[0].grad_var / s[depth - 1].grad_var).ln() / 3.0;
        }
        let n = (depth - 1) as f64;
        ((f / n).exp(), (b / n).exp())
    };
    let (fwd, bwd) = per_layer("autoinit", &sigprop_nets::autoinit_bias_spec(&plan));
    assert!(
        (fwd - 1.0).abs() < 0.1 && (bwd - 1.0).abs() < 0.1,
        "{fwd} {bwd}"
    );
    let (_, xavier_bwd) = per_layer("xavier-normal", "zeros");
    assert!(
        xavier_bwd < 0.5,
        "xavier sigmoid backward per layer {xavier_bwd}"
    );

    let mut cfg = mlp(3, width, "sigmoid", "autoinit");
    cfg.bias_init = sigprop_nets::autoinit_bias_spec(&plan);
    let net = cfg.resolve().unwrap();
    let p = build_params(&net, 4).unwrap();
    let w = &p.get("layers.2.weight").unwrap().data; // [in, out]
    for o in 0..width {
        let sum: f64 = (0..width).map(|i| f64::from(w[i * width + o])).sum();
        assert!(sum.abs() < 1e-4, "unit {o}: row sum {sum}");
    }
    let var = w.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / w.len() as f64;
    let want = plan.hidden.sigma_w2 / width as f64;
    // 65536 entries: the sample variance's relative sd is sqrt(2 / 65536) = 0.0055.
    assert!(
        rel(var, want) < 5.0 * (2.0 / w.len() as f64).sqrt(),
        "{var} vs {want}"
    );
    let first = &p.get("layers.1.weight").unwrap().data;
    let v1 = first.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / first.len() as f64;
    assert!(rel(v1, plan.first.sigma_w2 / width as f64) < 0.03);

    // The bias is the plan's; residual networks and normalizations are refused.
    assert!(mlp(3, width, "sigmoid", "autoinit").resolve().is_err());
    let mut res = NetConfig::new(Arch::Resmlp, 3, width, "relu", "autoinit");
    res.bias_init = "zeros".into();
    let e = res.resolve().unwrap_err().to_string();
    assert!(e.contains("plain layers"), "{e}");
}

/// Pruning at initialization, exact facts: `random` removes `floor(S n)` entries of every
/// weight tensor, `magnitude` `floor(S N)` of all of them with every kept |w| at least every
/// removed one, SNIP and GraSP differ from magnitude, SynFlow reaches `S` in rounds without
/// emptying a layer; pruned entries are exactly 0, biases and the head untouched, and the
/// masks are recorded. Training keeps pruned weights at 0.
#[test]
fn pruning_at_init_removes_exactly_the_asked_fraction_and_training_keeps_it() {
    let widths = [64usize, 96, 96, 96, 32];
    let net_with = |prune: &str| {
        let mut cfg = mlp(4, 96, "tanh", "xavier-normal");
        cfg.arch = sigprop_nets::ArchConfig::Mlp(Mlp {
            widths: Some(widths.to_vec()),
            ..Mlp::default()
        });
        cfg.bias_init = "normal:std=0.1".into();
        cfg.prune = Some(prune.into());
        cfg.resolve().unwrap()
    };
    let weights = |p: &sigprop_nets::Params| -> Vec<sigprop_nets::ParamTensor> {
        p.tensors
            .iter()
            .filter(|t| t.shape.len() == 2)
            .cloned()
            .collect()
    };
    let dense = build_params(&net_with("random:sparsity=0"), 1).unwrap();
    let s = 0.8;
    let prune = |spec: &str| {
        let net = net_with(spec);
        let i = sigprop_nets::initial_params_pruned(&net, 1, 64, &cpu()).unwrap();
        (i.params, i.pruned)
    };
    // random: per tensor.
    let (p, report) = prune("random:sparsity=0.8");
    assert_eq!(report.len(), 4);
    for t in weights(&p) {
        let n = t.data.len();
        let zeros = t.data.iter().filter(|&&v| v == 0.0).count();
        assert_eq!(zeros, (s * n as f64).floor() as usize, "{}", t.path);
        let mask = t.mask.as_ref().unwrap();
        assert!(mask.iter().zip(&t.data).all(|(&k, &v)| k || v == 0.0));
    }
    for t in p.tensors.iter().filter(|t| t.shape.len() == 1) {
        assert!(t.mask.is_none() && t.data == dense.get(&t.path).unwrap().data);
    }
    // magnitude: one global threshold.
    let (p, _) = prune("magnitude:sparsity=0.8");
    let all: Vec<(f32, bool)> = weights(&p)
        .iter()
        .flat_map(|t| {
            let d = dense.get(&t.path).unwrap().data.clone();
            d.into_iter().zip(t.mask.clone().unwrap())
        })
        .collect();
    let removed = all.iter().filter(|(_, k)| !k).count();
    assert_eq!(removed, (s * all.len() as f64).floor() as usize);
    let min_kept = all
        .iter()
        .filter(|(_, k)| *k)
        .map(|(w, _)| w.abs())
        .fold(f32::MAX, f32::min);
    let max_removed = all
        .iter()
        .filter(|(_, k)| !k)
        .map(|(w, _)| w.abs())
        .fold(0.0, f32::max);
    assert!(min_kept >= max_removed);
    // The first layer (fan-in 64) has the largest weights: magnitude keeps more of it.
    let frac = |p: &sigprop_nets::Params, path: &str| {
        let m = p.get(path).unwrap().mask.clone().unwrap();
        m.iter().filter(|&&k| k).count() as f64 / m.len() as f64
    };
    assert!(frac(&p, "layers.1.weight") > frac(&p, "layers.2.weight"));
    // SNIP and GraSP rank by more than |w|.
    let mask_of = |p: &sigprop_nets::Params| -> Vec<bool> {
        weights(p)
            .iter()
            .flat_map(|t| t.mask.clone().unwrap())
            .collect()
    };
    let magnitude = mask_of(&p);
    for spec in [
        "snip:sparsity=0.8",
        "grasp:sparsity=0.8",
        "synflow:sparsity=0.8,iterations=20",
    ] {
        let (q, report) = prune(spec);
        let m = mask_of(&q);
        let kept = m.iter().filter(|&&k| k).count();
        assert_eq!(
            m.len() - kept,
            (s * m.len() as f64).floor() as usize,
            "{spec}"
        );
        assert_ne!(m, magnitude, "{spec} equals magnitude pruning");
        assert!(report.iter().all(|t| t.kept > 0), "{spec} emptied a layer");
    }
    // Random pruning of an orthogonal linear network multiplies the variance by exactly
    // 1 - S per layer in expectation (the cross terms of a row cancel by orthogonality).
    let mut cfg = mlp(10, 256, "linear", "orthogonal");
    cfg.prune = Some("random:sparsity=0.5".into());
    let st = run(&cfg, 128, 3, &cpu());
    let per_layer = (st[9].preact_var / st[0].preact_var).powf(1.0 / 9.0);
    // 256 x 128 entries per layer, 9 layers: the ratio's noise is well under 2%.
    assert!((per_layer - 0.5).abs() < 0.02, "{per_layer}");
    // Training: pruned weights stay exactly 0.
    let net = net_with("snip:sparsity=0.8");
    let (p, _) = prune("snip:sparsity=0.8");
    let mut o = train_opts(5, OptimizerKind::Adam, 0.01, teacher());
    o.log_steps = vec![];
    let r = train(&net, &p, 1, &o, &cpu()).unwrap();
    for (t0, t1) in p.tensors.iter().zip(&r.final_params.tensors) {
        if let Some(m) = &t0.mask {
            assert!(
                m.iter().zip(&t1.data).all(|(&k, &v)| k || v == 0.0),
                "{}",
                t0.path
            );
            assert!(t0.data != t1.data, "{} did not train", t0.path);
        }
    }
}

#[test]
fn an_overflowing_network_reports_non_finite_counts_instead_of_panicking() {
    // U(-1, 1) weights: Var(W) fan_in = 256/3, so ReLU variance grows ~42x per layer and
    // overflows f32 long before layer 100.
    let s = run(
        &mlp(100, 256, "relu", "uniform:a=1"),
        32,
        0,
        &Device::flex(),
    );
    assert_eq!(s.len(), 100);
    // The backward pass from an overflowed output is non-finite everywhere; the forward
    // counts say where the overflow starts.
    assert!(s.iter().all(|r| r.nonfinite > 0));
    let first = s
        .iter()
        .position(|r| r.nonfinite_forward > 0)
        .expect("no non-finite value recorded");
    assert!(
        first > 5 && first < 60,
        "first non-finite layer {}",
        first + 1
    );
    assert!(s[..first].iter().all(|r| r.preact_var.is_finite()));
}

#[test]
fn dirac_convolutions_and_fixup_blocks_pass_the_input_through_exactly() {
    // Dirac (identity) convolutions with a linear activation: every layer's z is the input.
    let six = Cnn {
        image_size: 6,
        ..Cnn::default()
    };
    let cnn = NetConfig::new(six, 6, 8, "linear", "dirac");
    let s = run(&cnn, 8, 1, &Device::flex());
    for r in &s[1..] {
        assert!(rel(r.preact_var, s[0].preact_var) < 1e-6 && r.site == "conv");
    }
    // Fixup zeroes each branch's last layer: every block output equals the input.
    let res = NetConfig::new(Arch::Resmlp, 5, 32, "relu", "fixup");
    let s = run(&res, 16, 1, &Device::flex());
    let outs: Vec<&LayerStats> = s.iter().filter(|r| r.site == "out").collect();
    assert_eq!(outs.len(), 5);
    for r in &outs[1..] {
        assert!(rel(r.preact_var, outs[0].preact_var) < 1e-6);
    }
    // ...and the gradient reaching the branch's first site is exactly zero.
    assert!(
        s.iter()
            .filter(|r| r.site == "branch.1")
            .all(|r| r.grad_var == 0.0)
    );
}

#[test]
fn rnn_steps_are_layers_and_the_first_step_has_no_hidden_weight_gradient() {
    let cfg = NetConfig::new(Arch::Rnn, 8, 32, "tanh", "xavier-normal");
    let s = run(&cfg, 16, 0, &Device::flex());
    assert_eq!(s.len(), 8);
    assert!(s.iter().all(|r| r.site == "step"));
    // h_0 = 0, so the step-1 contribution h_0^T dL/dz_1 to dL/dW_hh is exactly zero.
    assert_eq!(s[0].wgrad_var, 0.0);
    assert!(s[1].wgrad_var > 0.0);
    let _ = Activation::Tanh;
}

#[test]
fn unknown_backend_and_bad_sizes_are_errors_not_panics() {
    assert!(
        "tpu"
            .parse::<BackendKind>()
            .unwrap_err()
            .to_string()
            .contains("flex")
    );
    let e = mlp(0, 8, "relu", "he-normal")
        .resolve()
        .unwrap_err()
        .to_string();
    assert!(e.contains("depth"), "{e}");
    let four = Cnn {
        groups: 4,
        ..Cnn::default()
    };
    let c = NetConfig::new(four, 2, 6, "relu", "he-normal");
    assert!(c.resolve().unwrap_err().to_string().contains("groups"));
}

#[test]
fn every_architecture_runs_with_the_cross_entropy_head() {
    // The head reads the flattened output: for a CNN, width x image-size^2 features. It
    // used to be built [width, 10] and could not multiply an 8x8 image's 16 x 64 features.
    // A graph needs a model file: the CLI's model tests run it with the head.
    for &arch in Arch::ALL.iter().filter(|&&a| a != Arch::Graph) {
        let mut cfg = NetConfig::new(arch, 3, 16, "tanh", "xavier-normal");
        cfg.loss = Loss::CrossEntropy;
        let stats = run(&cfg, 8, 1, &Device::flex());
        assert!(!stats.is_empty(), "{arch}");
        // The loss gradient reaches the first layer and is finite and non-zero.
        let first = stats.iter().find(|s| s.layer == 1).unwrap();
        assert!(
            first.grad_var.is_finite() && first.grad_var > 0.0,
            "{arch}: {first:?}"
        );
    }
}

#[test]
fn residual_cnn_channel_moments_decompose_the_second_moment() {
    let own = Rescnn {
        image_size: 4,
        ..Rescnn::default()
    };
    let cfg = NetConfig::new(own, 3, 8, "relu", "he-normal");
    let stats = run(&cfg, 16, 1, &Device::flex());
    let residual: Vec<&LayerStats> = stats
        .iter()
        .filter(|s| s.site == "out" || s.site == "branch")
        .collect();
    assert_eq!(residual.len(), 6);
    for s in residual {
        let c = s
            .channel
            .expect("a residual CNN site carries channel moments");
        // Mean over channels of (channel mean^2 + channel variance) is E[h^2].
        let second = s.act_var + s.act_mean * s.act_mean;
        assert!(rel(c.sq_mean + c.var, second) < 1e-5, "{s:?}");
        // A channel's variance over batch and pixels holds each pixel's over the batch
        // plus the spread of the pixels' means (law of total variance).
        assert!(c.var >= s.act_batch_var * (1.0 - 1e-6), "{s:?}");
        assert!(s.dead_frac.is_nan() && s.saturated_frac.is_nan());
    }
    for s in stats.iter().filter(|s| s.site.starts_with("branch.")) {
        assert!(s.channel.is_none() && s.dead_frac.is_finite(), "{s:?}");
    }
}

#[test]
fn near_uniform_attention_has_the_entropy_of_uniform_rows_and_identical_outputs() {
    // Weights N(0, 1e-8) and zero biases: every score is about 1e-8, so each attention row
    // is uniform to about 1e-7: entropy ln T, or with a causal mask the mean of ln(i) over
    // the rows i = 1..T. Without the mask every token's output is the same mean of the
    // values: token cosine 1, effective rank 1.
    let t = 8;
    for causal in [false, true] {
        let own = Transformer {
            seq_len: t,
            heads: 2,
            causal,
            attention_only: true,
            norm: Norm::None,
            ..Transformer::default()
        };
        let cfg = NetConfig::new(own, 1, 16, "gelu", "normal:std=1e-4");
        let s = run(&cfg, 8, 1, &Device::flex());
        let attn = s.iter().find(|r| r.site == "attn").unwrap();
        let want = if causal {
            (1..=t).map(|i| (i as f64).ln()).sum::<f64>() / t as f64
        } else {
            (t as f64).ln()
        };
        assert!(
            (attn.attn_entropy.unwrap() - want).abs() < 1e-4,
            "{causal}: {attn:?}"
        );
        let tokens = attn.tokens.unwrap();
        if causal {
            assert!(tokens.cos < 0.99 && tokens.rank > 2.0, "{tokens:?}");
        } else {
            assert!(tokens.cos > 1.0 - 1e-4 && tokens.rank < 1.1, "{tokens:?}");
        }
        // Only attention outputs carry an entropy; the stream carries token statistics.
        let out = s.iter().find(|r| r.site == "out").unwrap();
        assert!(out.attn_entropy.is_none() && out.tokens.is_some());
    }
}

#[test]
fn gpt2_scales_the_weights_that_write_into_the_stream() {
    // 4 blocks with an MLP: 8 residual branches. W_o (weight of the `attn` site) and
    // W_down (weight of `mlp.hidden`) write into the stream: N(0, 0.02^2 / 8); the query,
    // key, value and up projections are N(0, 0.02^2). 64 x 64 and 256 x 64 entries: the
    // sample variance is within 10% (sd 2.2% and 1.1%).
    let own = Transformer {
        seq_len: 4,
        ..Transformer::default()
    };
    let cfg = NetConfig::new(own, 4, 64, "gelu", "gpt2");
    let net = cfg.resolve().unwrap();
    let params = build_params(&net, 2).unwrap();
    let var = |path: &str| {
        let t = params.tensors.iter().find(|t| t.path == path).unwrap();
        let n = t.data.len() as f64;
        t.data.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / n
    };
    for k in 1..=4 {
        for (name, want) in [
            ("attn.q", 4e-4),
            ("attn.k", 4e-4),
            ("attn.v", 4e-4),
            ("attn.o", 4e-4 / 8.0),
            ("mlp.up", 4e-4),
            ("mlp.down", 4e-4 / 8.0),
        ] {
            let v = var(&format!("blocks.{k}.{name}.weight"));
            assert!((v / want - 1.0).abs() < 0.1, "{name}: {v} vs {want}");
        }
    }
}

#[test]
fn deepnet_and_t_fixup_scale_all_but_the_query_and_key() {
    // 8 blocks with an MLP, width 64. Xavier on [64, 64]: 1/64; on [64, 256]: 2/320.
    // DeepNet: gain beta = (8 N)^(-1/4), beta^2 = 1/8; T-Fixup: (0.67 N^(-1/4))^2 =
    // 0.4489/sqrt(8). 4096 and 16384 entries: sample variance within 10% (sd 2.2%, 1.1%).
    let own = Transformer {
        seq_len: 4,
        ..Transformer::default()
    };
    let t = 0.67f64.powi(2) / 8f64.sqrt();
    for (init, scaled) in [("deepnet", 1.0 / 8.0), ("t-fixup", t)] {
        let cfg = NetConfig::new(own.clone(), 8, 64, "gelu", init);
        let params = build_params(&cfg.resolve().unwrap(), 5).unwrap();
        let var = |path: &str| {
            let t = params.tensors.iter().find(|t| t.path == path).unwrap();
            t.data.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / t.data.len() as f64
        };
        for k in [1, 8] {
            for (name, want) in [
                ("attn.q", 1.0 / 64.0),
                ("attn.k", 1.0 / 64.0),
                ("attn.v", scaled / 64.0),
                ("attn.o", scaled / 64.0),
                ("mlp.up", scaled * 2.0 / 320.0),
                ("mlp.down", scaled * 2.0 / 320.0),
            ] {
                let v = var(&format!("blocks.{k}.{name}.weight"));
                assert!((v / want - 1.0).abs() < 0.1, "{init} {name}: {v} vs {want}");
            }
        }
    }
}

#[test]
fn the_skip_scale_multiplies_the_stream_before_each_add() {
    // Attention-only, no normalization, zero values: every branch is exactly 0, so block
    // k's output is a^k x and its variance a^(2k) Var(x).
    let cfg = |skip: &str, init: &str, position: NormPosition| {
        let own = Transformer {
            seq_len: 8,
            attention_only: true,
            norm: Norm::None,
            norm_position: position,
            skip_scale: skip.parse().unwrap(),
            init_role: vec!["value=zeros".parse().unwrap()],
            ..Transformer::default()
        };
        NetConfig::new(own, 3, 32, "gelu", init)
    };
    let growth = |c: &NetConfig| {
        let s = run(c, 4, 1, &Device::flex());
        let out: Vec<f64> = s
            .iter()
            .filter(|r| r.site == "out")
            .map(|r| r.act_var)
            .collect();
        (out[2] / out[1], out[1] / out[0])
    };
    // DeepNorm's alpha = (2 N)^(1/4): alpha^2 = sqrt(6) a block.
    for (skip, want) in [("2", 4.0), ("deepnorm", 6f64.sqrt())] {
        let (a, b) = growth(&cfg(skip, "xavier-normal", NormPosition::Pre));
        assert!(
            rel(a, want) < 1e-5 && rel(b, want) < 1e-5,
            "{skip}: {a} {b}"
        );
    }
    // auto: 1 unless deepnet meets post-LN; this network has no LayerNorm.
    let (a, b) = growth(&cfg("auto", "deepnet", NormPosition::Post));
    assert!(rel(a, 1.0) < 1e-6 && rel(b, 1.0) < 1e-6, "{a} {b}");
    use sigprop_nets::arch::transformer::SkipScale;
    let deepnet: sigprop_init::Scheme = "deepnet".parse().unwrap();
    let xavier: sigprop_init::Scheme = "xavier-normal".parse().unwrap();
    assert!(rel(SkipScale::Auto.at_init(50, &deepnet, true), 10f64.sqrt()) < 1e-12);
    assert_eq!(SkipScale::Auto.at_init(50, &deepnet, false), 1.0);
    assert_eq!(SkipScale::Auto.at_init(50, &xavier, true), 1.0);
    // No skip, nothing to scale; bad values named.
    let own = Transformer {
        shortcut: Shortcut::None,
        skip_scale: SkipScale::Value(2.0),
        ..Transformer::default()
    };
    let e = NetConfig::new(own, 2, 32, "gelu", "deepnet")
        .resolve()
        .unwrap_err();
    assert!(e.to_string().contains("skip-scale"), "{e}");
    for bad in ["0", "-1", "nan", "deep"] {
        let e = bad.parse::<SkipScale>().unwrap_err().to_string();
        assert!(e.contains("skip-scale") && e.contains("deepnorm"), "{e}");
    }
}

#[test]
fn a_role_takes_its_own_initializer_and_the_rest_the_networks() {
    let roles = ["value=zeros", "mlp-down=xavier-normal:gain=0.5"];
    let own = Transformer {
        seq_len: 4,
        init_role: roles.iter().map(|r| r.parse().unwrap()).collect(),
        ..Transformer::default()
    };
    let cfg = NetConfig::new(own, 2, 32, "gelu", "he-normal");
    let net = cfg.resolve().unwrap();
    let params = build_params(&net, 4).unwrap();
    let var = |path: &str| {
        let t = params.tensors.iter().find(|t| t.path == path).unwrap();
        t.data.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / t.data.len() as f64
    };
    for k in 1..=2 {
        assert_eq!(var(&format!("blocks.{k}.attn.v.weight")), 0.0);
        // He for the others: 2 / fan_in; xavier gain 0.5 on [128, 32]: 0.25 * 2 / 160.
        for (name, want) in [
            ("attn.q", 2.0 / 32.0),
            ("attn.o", 2.0 / 32.0),
            ("mlp.up", 2.0 / 32.0),
            ("mlp.down", 0.5 / 160.0),
        ] {
            let v = var(&format!("blocks.{k}.{name}.weight"));
            assert!((v / want - 1.0).abs() < 0.15, "{name}: {v} vs {want}");
        }
    }
    // The attention reads zero values: its output and branch are exactly 0.
    let s = run(&cfg, 4, 4, &Device::flex());
    for r in s
        .iter()
        .filter(|r| r.site == "attn" || r.site == "attn.branch")
    {
        assert_eq!(r.act_var, 0.0, "{r:?}");
    }
    // A role is named once, and takes only an initializer of its own weights.
    for bad in ["embed=zeros", "value=lsuv", "value=fixup", "value"] {
        assert!(
            bad.parse::<sigprop_nets::arch::transformer::RoleInit>()
                .is_err(),
            "{bad}"
        );
    }
    let twice = Transformer {
        init_role: ["value=zeros", "value=ones"]
            .iter()
            .map(|r| r.parse().unwrap())
            .collect(),
        ..Transformer::default()
    };
    let e = NetConfig::new(twice, 2, 32, "gelu", "he-normal")
        .resolve()
        .unwrap_err();
    assert!(e.to_string().contains("value is given twice"), "{e}");
}

/// Per-column (mean, variance) of a row-major buffer.
type ColumnMoments = Vec<(f64, f64)>;
/// Per-row (mean, variance, mean square).
type RowMoments = Vec<(f64, f64, f64)>;

/// Host f64 statistics of a row-major `[rows, cols]` buffer.
fn column_and_row_moments(v: &[f32], rows: usize, cols: usize) -> (ColumnMoments, RowMoments) {
    let at = |r: usize, c: usize| v[r * cols + c] as f64;
    let moments = |xs: &[f64]| {
        let n = xs.len() as f64;
        let m = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n;
        let ms = xs.iter().map(|x| x * x).sum::<f64>() / n;
        (m, var, ms)
    };
    let colm = (0..cols)
        .map(|c| {
            let (m, var, _) = moments(&(0..rows).map(|r| at(r, c)).collect::<Vec<_>>());
            (m, var)
        })
        .collect();
    let rowm = (0..rows)
        .map(|r| moments(&(0..cols).map(|c| at(r, c)).collect::<Vec<_>>()))
        .collect();
    (colm, rowm)
}

#[test]
fn normalization_layers_standardize_what_they_claim() {
    // One linear layer with a linear activation: the output is the normalized h W + b.
    // eps = 1e-5 on a variance of about 2 (He): a standardized variance of 1 - 5e-6.
    let (batch, width) = (64, 48);
    for norm in [Norm::Batch, Norm::Layer, Norm::Rms] {
        let mut cfg = mlp(1, width, "linear", "he-normal");
        cfg.bias_init = "normal:std=0.5".into();
        cfg.arch = Mlp {
            widths: None,
            norm,
            input_corr: None,
        }
        .into();
        let net = cfg.resolve().unwrap();
        let params = build_params(&net, 5).unwrap();
        let x = sigprop_nets::inputs::normal_input(5, "input", [batch, width]).unwrap();
        let y = forward_plain(&net, &params, x, batch, &Device::flex()).unwrap();
        let (cols, rows) = column_and_row_moments(&y, batch, width);
        let close = |a: f64, b: f64, tol: f64| (a - b).abs() < tol;
        match norm {
            Norm::Batch => assert!(
                cols.iter()
                    .all(|&(m, v)| close(m, 0.0, 1e-5) && close(v, 1.0, 1e-3)),
                "{norm}: {:?}",
                &cols[..3]
            ),
            Norm::Layer => assert!(
                rows.iter()
                    .all(|&(m, v, _)| close(m, 0.0, 1e-5) && close(v, 1.0, 1e-3)),
                "{norm}: {:?}",
                &rows[..3]
            ),
            Norm::Rms => assert!(
                rows.iter().all(|&(_, _, ms)| close(ms, 1.0, 1e-3)),
                "{norm}: {:?}",
                &rows[..3]
            ),
            Norm::None => unreachable!(),
        }
    }
}

#[test]
fn every_normalization_and_residual_variant_agrees_across_backends() {
    let mut cases = Vec::new();
    for (scale, shortcut) in [
        (BranchScale::InvSqrtDepth, Shortcut::Identity),
        (BranchScale::Rezero, Shortcut::Identity),
        (BranchScale::Value(0.5), Shortcut::None),
    ] {
        let own = Resmlp {
            branch_scale: scale,
            shortcut,
            ..Resmlp::default()
        };
        cases.push(NetConfig::new(own, 3, 32, "tanh", "xavier-normal"));
        let own = Rescnn {
            image_size: 4,
            branch_scale: scale,
            shortcut,
            ..Rescnn::default()
        };
        cases.push(NetConfig::new(own, 3, 8, "tanh", "xavier-normal"));
    }
    for norm in [Norm::Batch, Norm::Layer, Norm::Rms] {
        let mut m = mlp(4, 32, "tanh", "xavier-normal");
        m.arch = Mlp {
            widths: None,
            norm,
            input_corr: None,
        }
        .into();
        cases.push(m);
        let own = Cnn {
            image_size: 4,
            norm,
            ..Cnn::default()
        };
        cases.push(NetConfig::new(own, 3, 8, "relu", "he-normal"));
        for norm_position in [NormPosition::Pre, NormPosition::Post] {
            let own = Resmlp {
                norm,
                norm_position,
                ..Resmlp::default()
            };
            cases.push(NetConfig::new(own, 3, 32, "relu", "he-normal"));
        }
        let own = Rescnn {
            image_size: 4,
            norm,
            norm_position: NormPosition::Post,
            ..Rescnn::default()
        };
        cases.push(NetConfig::new(own, 2, 8, "relu", "he-normal"));
    }
    // Transformers: pre- and post-LN, RMSNorm, causal, attention-only without skips,
    // ReZero, and the modern parts.
    let tf = |own: Transformer| NetConfig::new(own, 2, 8, "gelu", "xavier-normal");
    let small = Transformer {
        seq_len: 4,
        heads: 2,
        mlp_ratio: 2,
        ..Transformer::default()
    };
    cases.push(tf(small.clone()));
    cases.push(tf(Transformer {
        norm_position: NormPosition::Post,
        causal: true,
        ..small.clone()
    }));
    cases.push(tf(Transformer {
        norm: Norm::Rms,
        branch_scale: BranchScale::Rezero,
        input_corr: 0.5,
        ..small.clone()
    }));
    cases.push(tf(Transformer {
        attention_only: true,
        shortcut: Shortcut::None,
        norm: Norm::None,
        ..small.clone()
    }));
    // GPT-2's tables and tied head; LLaMA's RMSNorm, RoPE, SwiGLU, grouped-query
    // attention and QK-norm.
    use sigprop_nets::arch::transformer::{MlpKind, Positions};
    cases.push(tf(Transformer {
        embedding: 24,
        tie_unembedding: true,
        positions: Positions::Learned,
        final_norm: true,
        causal: true,
        ..small.clone()
    }));
    cases.push(tf(Transformer {
        norm: Norm::Rms,
        positions: Positions::Rope,
        mlp: MlpKind::Swiglu,
        kv_heads: 1,
        qk_norm: true,
        final_norm: true,
        ..small
    }));
    let skip_wgpu = std::env::var("SIGPROP_SKIP_WGPU").is_ok_and(|v| v == "1");
    let mut kinds = ndarray_if_built();
    if !skip_wgpu {
        kinds.push(BackendKind::Wgpu);
    }
    for cfg in &cases {
        let reference = run(cfg, 16, 4, &Device::flex());
        for &kind in &kinds {
            let stats = run(cfg, 16, 4, &device(kind).unwrap());
            for (a, b) in stats.iter().zip(&reference) {
                let token = |s: &LayerStats, f: fn(&sigprop_nets::TokenStats) -> f64| {
                    s.tokens.as_ref().map_or(f64::NAN, f)
                };
                for (name, x, y) in [
                    ("preact_var", a.preact_var, b.preact_var),
                    ("act_var", a.act_var, b.act_var),
                    ("grad_var", a.grad_var, b.grad_var),
                    ("wgrad_var", a.wgrad_var, b.wgrad_var),
                    (
                        "attn_entropy",
                        a.attn_entropy.unwrap_or(f64::NAN),
                        b.attn_entropy.unwrap_or(f64::NAN),
                    ),
                    ("token_cos", token(a, |t| t.cos), token(b, |t| t.cos)),
                    ("token_rank", token(a, |t| t.rank), token(b, |t| t.rank)),
                ] {
                    // A site without a weight has no weight gradient on either side.
                    let both_absent = x.is_nan() && y.is_nan();
                    assert!(
                        both_absent || rel(x, y) < 1e-4,
                        "{:?} on {kind}, {} layer {} {name}: {x} vs flex {y}",
                        cfg.arch,
                        a.site,
                        a.layer
                    );
                }
            }
        }
    }
}

/// The probe's Jacobian spectrum of `cfg` at `samples` inputs and `layers`.
fn spectra(
    cfg: &NetConfig,
    batch: usize,
    seed: u64,
    samples: usize,
    layers: Vec<usize>,
) -> Vec<sigprop_nets::Spectrum> {
    spectra_on(cfg, batch, seed, samples, layers, &Device::flex())
}

fn spectra_on(
    cfg: &NetConfig,
    batch: usize,
    seed: u64,
    samples: usize,
    layers: Vec<usize>,
    dev: &Device,
) -> Vec<sigprop_nets::Spectrum> {
    let net = cfg.resolve().unwrap();
    let params = build_params(&net, seed).unwrap();
    let mut o = opts(batch);
    o.jacobian = Some(sigprop_nets::JacobianOptions { samples, layers });
    probe(&net, &params, seed, &o, dev).unwrap().spectra
}

/// The spectrum on ndarray and wgpu equals flex's within 1e-4 (relative to each value), for
/// every singular value above 1e-3 of the largest.
#[test]
fn jacobian_spectra_agree_across_backends() {
    let mut cfg = mlp(6, 64, "tanh", "xavier-normal:gain=1.2");
    cfg.bias_init = "normal:std=0.1".into();
    let reference = spectra(&cfg, 8, 2, 4, vec![3, 6]);
    let mut kinds = ndarray_if_built();
    if !std::env::var("SIGPROP_SKIP_WGPU").is_ok_and(|v| v == "1") {
        kinds.push(BackendKind::Wgpu);
    }
    for kind in kinds {
        let got = spectra_on(&cfg, 8, 2, 4, vec![3, 6], &device(kind).unwrap());
        assert_eq!(got.len(), reference.len());
        for (a, b) in got.iter().zip(&reference) {
            assert_eq!((a.sample, a.layer), (b.sample, b.layer));
            for (x, y) in a.values.iter().zip(&b.values) {
                if *y > 1e-3 * b.values[0] {
                    assert!(rel(*x, *y) < 1e-4, "{kind:?} layer {}: {x} vs {y}", a.layer);
                }
            }
        }
    }
}

/// Singular values of a row-major f64 matrix, by the one-sided Jacobi method (the
/// independent check of the probe's faer decomposition of its backend product).
fn jacobi_singular_values(mut a: Vec<f64>, rows: usize, cols: usize) -> Vec<f64> {
    for _ in 0..60 {
        let mut off = 0.0f64;
        for p in 0..cols {
            for q in p + 1..cols {
                let (mut alpha, mut beta, mut gamma) = (0.0, 0.0, 0.0);
                for i in 0..rows {
                    let (x, y) = (a[i * cols + p], a[i * cols + q]);
                    alpha += x * x;
                    beta += y * y;
                    gamma += x * y;
                }
                off = off.max(gamma.abs() / (alpha * beta).sqrt().max(1e-300));
                if gamma.abs() < 1e-300 {
                    continue;
                }
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                for i in 0..rows {
                    let (x, y) = (a[i * cols + p], a[i * cols + q]);
                    a[i * cols + p] = c * x - s * y;
                    a[i * cols + q] = s * x + c * y;
                }
            }
        }
        if off < 1e-15 {
            break;
        }
    }
    let mut sv: Vec<f64> = (0..cols)
        .map(|j| {
            (0..rows)
                .map(|i| a[i * cols + j].powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    sv.sort_by(|x, y| y.total_cmp(x));
    sv.truncate(rows.min(cols));
    sv
}

/// One link of a Jacobian chain on the host: `J W diag(tanh'(z))` for square `J` and `W`
/// (row-major, `z.len()` wide).
fn tanh_chain_step(j: &[f64], w: &[f64], z: &[f64]) -> Vec<f64> {
    let n = z.len();
    let d: Vec<f64> = z.iter().map(|&v| 1.0 - v.tanh().powi(2)).collect();
    (0..n * n)
        .map(|rc| {
            let (r, c) = (rc / n, rc % n);
            (0..n).map(|m| j[r * n + m] * w[m * n + c]).sum::<f64>() * d[c]
        })
        .collect()
}

/// The Jacobian of a tiny tanh MLP with biases, built on the host in f64 from its own
/// forward pass (J = W^1 D^1 W^2 D^2 ...), has the probe's singular values at every layer.
#[test]
fn jacobian_spectrum_equals_the_host_product_of_w_and_phi_prime() {
    let (depth, width, batch, seed) = (3, 6, 5, 11);
    let mut cfg = mlp(depth, width, "tanh", "xavier-normal:gain=1.5");
    cfg.bias_init = "normal:std=0.3".into();
    let net = cfg.resolve().unwrap();
    let params = build_params(&net, seed).unwrap();
    let got = spectra(&cfg, batch, seed, 3, vec![1, 2, 3]);
    assert_eq!(got.len(), 3 * 3);
    let x = sigprop_nets::inputs::normal_input(seed, "input", [batch, width]).unwrap();
    let get = |name: String| -> Vec<f64> {
        params
            .get(&name)
            .unwrap()
            .data
            .iter()
            .map(|&v| f64::from(v))
            .collect()
    };
    for sample in 0..3 {
        let mut h: Vec<f64> = x[sample * width..(sample + 1) * width]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let mut j = vec![0.0; width * width];
        for i in 0..width {
            j[i * width + i] = 1.0;
        }
        for l in 1..=depth {
            let (w, b) = (
                get(format!("layers.{l}.weight")),
                get(format!("layers.{l}.bias")),
            );
            let z: Vec<f64> = (0..width)
                .map(|o| b[o] + (0..width).map(|i| h[i] * w[i * width + o]).sum::<f64>())
                .collect();
            j = tanh_chain_step(&j, &w, &z);
            h = z.iter().map(|v| v.tanh()).collect();
            let want = jacobi_singular_values(j.clone(), width, width);
            let s = got
                .iter()
                .find(|s| s.sample == sample && s.layer == l)
                .unwrap();
            for (a, b) in s.values.iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 1e-5 * want[0],
                    "sample {sample} layer {l}: {:?} vs {want:?}",
                    s.values
                );
            }
        }
    }
}

/// The singular values of the output Jacobian of `cfg` at input `sample` by central
/// differences of the plain forward pass (`eps` per coordinate, every coordinate in one
/// batch), in f64 on the host.
fn finite_difference_spectrum(
    cfg: &NetConfig,
    batch: usize,
    seed: u64,
    sample: usize,
    eps: f32,
) -> Vec<f64> {
    let net = cfg.resolve().unwrap();
    let params = build_params(&net, seed).unwrap();
    let n0 = cfg.arch.output_features(cfg);
    let x = sigprop_nets::inputs::normal_input(seed, "input", [batch, n0]).unwrap();
    let row = &x[sample * n0..(sample + 1) * n0];
    let mut xs = Vec::with_capacity(2 * n0 * n0);
    for sign in [1.0f32, -1.0] {
        for i in 0..n0 {
            let mut r = row.to_vec();
            r[i] += sign * eps;
            xs.extend(r);
        }
    }
    let out = forward_plain(&net, &params, xs, 2 * n0, &Device::flex()).unwrap();
    let n = out.len() / (2 * n0);
    // Row i: d f / d x_i, an N_0 x N_out matrix (J in the row-vector convention).
    let j: Vec<f64> = (0..n0 * n)
        .map(|ic| {
            let (i, c) = (ic / n, ic % n);
            (f64::from(out[i * n + c]) - f64::from(out[(n0 + i) * n + c])) / (2.0 * f64::from(eps))
        })
        .collect();
    jacobi_singular_values(j, n0, n)
}

/// The RNN's Jacobian through time, built on the host in f64 from its own forward pass
/// (`dh_t / dh_0 = W_hh D_1 W_hh D_2 ... W_hh D_t`, with a bias and fresh inputs every
/// step), has the probe's singular values at every step.
#[test]
fn rnn_jacobian_through_time_equals_the_host_product() {
    let (steps, width, batch, seed) = (4, 6, 5, 3);
    let mut cfg = NetConfig::new(Arch::Rnn, steps, width, "tanh", "xavier-normal:gain=1.5");
    cfg.bias_init = "normal:std=0.3".into();
    let net = cfg.resolve().unwrap();
    let params = build_params(&net, seed).unwrap();
    let got = spectra(&cfg, batch, seed, 2, vec![1, 2, 4]);
    assert_eq!(got.len(), 3 * 2);
    let x = sigprop_nets::inputs::normal_input(seed, "input", [batch * steps, width]).unwrap();
    let get = |name: &str| -> Vec<f64> {
        let p = params.get(name).unwrap();
        p.data.iter().map(|&v| f64::from(v)).collect()
    };
    let (w_ih, w_hh, b) = (
        get("rnn.input.weight"),
        get("rnn.hidden.weight"),
        get("rnn.hidden.bias"),
    );
    for sample in 0..2 {
        let mut h = vec![0.0; width];
        let mut j = vec![0.0; width * width];
        for i in 0..width {
            j[i * width + i] = 1.0;
        }
        for t in 1..=steps {
            let row = ((t - 1) * batch + sample) * width;
            let x_t: Vec<f64> = x[row..row + width].iter().map(|&v| f64::from(v)).collect();
            let z: Vec<f64> = (0..width)
                .map(|o| {
                    b[o] + (0..width)
                        .map(|i| x_t[i] * w_ih[i * width + o] + h[i] * w_hh[i * width + o])
                        .sum::<f64>()
                })
                .collect();
            j = tanh_chain_step(&j, &w_hh, &z);
            h = z.iter().map(|v| v.tanh()).collect();
            let Some(s) = got.iter().find(|s| s.sample == sample && s.layer == t) else {
                continue;
            };
            let want = jacobi_singular_values(j.clone(), width, width);
            for (a, w) in s.values.iter().zip(&want) {
                assert!(
                    (a - w).abs() <= 1e-5 * want[0],
                    "sample {sample} step {t}: {:?} vs {want:?}",
                    s.values
                );
            }
        }
    }
}

/// Architectures without an exact product take the vector-Jacobian route: its singular values
/// equal those of central differences of the plain forward pass, exactly (up to f32 rounding)
/// for linear networks and to the differences' own error (eps^2 terms) otherwise.
#[test]
fn vector_jacobian_spectra_equal_finite_differences_on_every_architecture() {
    let small_cnn = Cnn {
        image_size: 4,
        ..Cnn::default()
    };
    let small_rescnn = Rescnn {
        image_size: 4,
        ..Rescnn::default()
    };
    let tiny_tf = Transformer {
        seq_len: 3,
        ..Transformer::default()
    };
    let mut rms = mlp(3, 6, "tanh", "xavier-normal:gain=1.3");
    rms.arch = Mlp {
        norm: Norm::Rms,
        ..Mlp::default()
    }
    .into();
    let cases: Vec<(NetConfig, f32, f64)> = vec![
        (
            NetConfig::new(Arch::Resmlp, 3, 8, "linear", "xavier-normal"),
            1.0,
            1e-4,
        ),
        (
            NetConfig::new(Arch::Resmlp, 3, 8, "tanh", "he-normal"),
            1e-2,
            2e-3,
        ),
        (
            NetConfig::new(small_cnn, 3, 2, "linear", "he-normal"),
            1.0,
            1e-4,
        ),
        (
            NetConfig::new(small_rescnn, 2, 2, "relu", "he-normal"),
            1e-3,
            2e-3,
        ),
        (
            NetConfig::new(tiny_tf, 2, 8, "gelu", "xavier-normal"),
            1e-2,
            3e-3,
        ),
        (rms, 1e-2, 2e-3),
    ];
    let (batch, seed) = (4, 7);
    for (cfg, eps, tol) in cases {
        let got = spectra(&cfg, batch, seed, 2, vec![]);
        assert_eq!(got.len(), 2, "{:?}", cfg.arch);
        for s in &got {
            assert_eq!(s.layer, cfg.depth);
            let want = finite_difference_spectrum(&cfg, batch, seed, s.sample, eps);
            assert_eq!(s.values.len(), want.len(), "{:?}", cfg.arch);
            for (a, b) in s.values.iter().zip(&want) {
                assert!(
                    (a - b).abs() <= tol * want[0],
                    "{:?} sample {}: {:?} vs {want:?}",
                    cfg.arch,
                    s.sample,
                    s.values
                );
            }
        }
    }
}

/// Partial Jacobians of a residual MLP: layer l's spectrum from a run asking for layers
/// 1..depth equals that of a network cut at depth l (the same weights: keyed by path).
#[test]
fn vector_jacobian_partial_layers_match_shallower_networks() {
    let cfg = NetConfig::new(Arch::Resmlp, 4, 16, "relu", "he-normal");
    let all = spectra(&cfg, 3, 5, 3, vec![1, 2, 3, 4]);
    assert_eq!(all.len(), 3 * 4);
    for l in [1, 2, 4] {
        let mut cut = cfg.clone();
        cut.depth = l;
        let own = spectra(&cut, 3, 5, 3, vec![]);
        for s in own {
            let a = all
                .iter()
                .find(|a| a.sample == s.sample && a.layer == l)
                .unwrap();
            for (x, y) in a.values.iter().zip(&s.values) {
                assert!(rel(*x, *y) < 1e-5, "layer {l}: {x} vs {y}");
            }
        }
    }
}

/// Mean and standard error over seeds of (m1, var) of the eigenvalues of J J^T at the last
/// layer, each seed averaging its samples.
fn jacobian_moments(cfg: &NetConfig, seeds: u64, samples: usize) -> [(f64, f64); 2] {
    let per: Vec<[f64; 2]> = (0..seeds)
        .map(|seed| {
            let sp = spectra(cfg, samples, seed, samples, vec![]);
            let mut acc = [0.0; 2];
            for s in &sp {
                let lam: Vec<f64> = s.values.iter().map(|v| v * v).collect();
                let m1 = lam.iter().sum::<f64>() / lam.len() as f64;
                let var = lam.iter().map(|l| (l - m1).powi(2)).sum::<f64>() / lam.len() as f64;
                acc[0] += m1 / sp.len() as f64;
                acc[1] += var / sp.len() as f64;
            }
            acc
        })
        .collect();
    let n = per.len() as f64;
    [0, 1].map(|i| {
        let mean = per.iter().map(|p| p[i]).sum::<f64>() / n;
        let sd = (per.iter().map(|p| (p[i] - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        (mean, sd / n.sqrt())
    })
}

/// Pennington et al. 2017 at width 256, depth 8, 8 samples x 40 seeds: linear Gaussian
/// (m1 = 1, var = L), ReLU with He Gaussian weights (var = 2L) and with orthogonal weights
/// of gain sqrt(2) (var = L), against the theory crate. Each seed's estimate is a mean over 8
/// inputs; the tolerance is the issue's (5% on m1, 15% on var) and the seeds' standard
/// error must be well inside it (so that passing is not luck). Orthogonal linear: every
/// singular value is 1 to 1e-4.
#[test]
fn jacobian_moments_follow_free_probability_at_depth_8() {
    use sigprop_theory::{WeightSpectrum, predict_jacobian};
    let (depth, width) = (8, 256);
    // ReLU's m1 tolerance is 10%: which units an input switches off makes its m1 vary
    // log-normally, with 4-5x the seed spread of the linear network's.
    for (act, init, w2, spectrum, m1_tol) in [
        (
            "linear",
            "normal:std=0.0625",
            1.0,
            WeightSpectrum::Iid,
            0.05,
        ),
        ("relu", "he-normal", 2.0, WeightSpectrum::Iid, 0.10),
        (
            "relu",
            "orthogonal:gain=1.4142135623730951",
            2.0,
            WeightSpectrum::Orthogonal,
            0.10,
        ),
    ] {
        let act_of: Activation = act.parse().unwrap();
        let theory = predict_jacobian(act_of, &[w2; 8], 0.0, 1.0, spectrum).unwrap();
        let (m1_t, var_t) = (theory[depth - 1].m1, theory[depth - 1].var);
        let mut cfg = mlp(depth, width, act, init);
        cfg.bias_init = "zeros".into();
        let [(m1, m1_se), (var, var_se)] = jacobian_moments(&cfg, 40, 8);
        eprintln!(
            "{act} {init}: m1 {m1:.4} +- {m1_se:.4} (theory {m1_t}), var {var:.3} +- {var_se:.3} (theory {var_t})"
        );
        assert!(
            rel(m1, m1_t) < m1_tol && m1_se < 0.3 * m1_tol * m1_t,
            "{act} {init}: m1 {m1} +- {m1_se}"
        );
        assert!(
            rel(var, var_t) < 0.15 && var_se < 0.05 * var_t,
            "{act} {init}: var {var} +- {var_se} vs {var_t}"
        );
    }
    let mut cfg = mlp(depth, width, "linear", "orthogonal");
    cfg.bias_init = "zeros".into();
    for s in spectra(&cfg, 4, 0, 4, vec![1, 4, 8]) {
        assert!(
            s.values.iter().all(|v| (v - 1.0).abs() < 1e-4),
            "layer {}: {:?}",
            s.layer,
            &s.values[..4]
        );
    }
}

/// What a Jacobian cannot be taken of is refused, naming the flag.
#[test]
fn jacobian_refuses_other_architectures_and_bad_sizes() {
    use sigprop_nets::JacobianOptions;
    let ok = JacobianOptions {
        samples: 2,
        layers: vec![],
    };
    let rnn = NetConfig::new(Arch::Rnn, 4, 8, "tanh", "xavier-normal")
        .resolve()
        .unwrap();
    ok.check(&rnn, 4).unwrap();
    let mut bn = mlp(4, 8, "relu", "he-normal");
    bn.arch = Mlp {
        norm: Norm::Batch,
        ..Mlp::default()
    }
    .into();
    let e = ok.check(&bn.resolve().unwrap(), 4).unwrap_err().to_string();
    assert!(e.contains("jacobian") && e.contains("norm batch"), "{e}");
    let res = NetConfig::new(Arch::Resmlp, 4, 8, "relu", "he-normal")
        .resolve()
        .unwrap();
    ok.check(&res, 4).unwrap();
    let big = NetConfig::new(Arch::Resmlp, 4, 1 << 13, "relu", "he-normal")
        .resolve()
        .unwrap();
    let e = JacobianOptions {
        samples: 8,
        layers: vec![1, 2, 3],
    }
    .check(&big, 8)
    .unwrap_err()
    .to_string();
    assert!(e.contains("4 GiB") && e.contains("summed widths"), "{e}");
    let net = mlp(4, 8, "relu", "he-normal").resolve().unwrap();
    ok.check(&net, 4).unwrap();
    let zero = JacobianOptions {
        samples: 0,
        layers: vec![],
    };
    assert!(
        zero.check(&net, 4)
            .unwrap_err()
            .to_string()
            .contains("jacobian-samples")
    );
    let deep = JacobianOptions {
        samples: 1,
        layers: vec![5],
    };
    assert!(
        deep.check(&net, 4)
            .unwrap_err()
            .to_string()
            .contains("1..=4")
    );
    let wide = mlp(2, 1 << 16, "relu", "he-normal").resolve().unwrap();
    let e = JacobianOptions {
        samples: 8,
        layers: vec![],
    }
    .check(&wide, 8)
    .unwrap_err()
    .to_string();
    assert!(e.contains("4 GiB"), "{e}");
}

// ---------------------------------------------------------------- the training probe

fn train_opts(steps: usize, optimizer: OptimizerKind, lr: f64, task: Task) -> TrainOptions {
    TrainOptions {
        steps,
        optimizer,
        lr,
        batch: 32,
        task,
        log_steps: vec![0, 1],
        probe: ProbeOptions {
            batch: 16,
            hist_layers: Vec::new(),
            hist_bins: 0,
            jacobian: None,
            precision: None,
        },
        param: Parametrization::standard(),
        eval_batch: 64,
        fixed_batch: false,
        coords: false,
        resume: None,
        checkpoint_at: None,
    }
}

fn teacher() -> Task {
    Task::Teacher {
        depth: 1,
        width: 16,
        outputs: 2,
        seed: 3,
    }
}

fn trained(cfg: &NetConfig, opts: &TrainOptions) -> TrainResult {
    let net = cfg.resolve().unwrap();
    let params = build_params(&net, 5).unwrap();
    train(&net, &params, 5, opts, &cpu()).unwrap()
}

#[test]
fn sgd_and_momentum_first_updates_are_lr_times_the_gradient() {
    // The first update of plain SGD and of heavy-ball momentum (velocity = gradient) is
    // -lr g for every tensor: the update norms over all tensors make lr x the gradient norm.
    let cfg = mlp(3, 24, "tanh", "xavier-normal");
    for opt in [OptimizerKind::Sgd, OptimizerKind::Momentum] {
        let r = trained(&cfg, &train_opts(2, opt, 0.05, teacher()));
        let step0: f64 = r
            .updates
            .iter()
            .filter(|u| u.step == 0)
            .map(|u| u.update_norm.powi(2))
            .sum::<f64>()
            .sqrt();
        let g = r.steps[0].grad_norm;
        assert!(
            (step0 / (0.05 * g) - 1.0).abs() < 1e-4,
            "{opt}: |update| {step0} vs lr |g| {}",
            0.05 * g
        );
        // Every trained tensor is logged: 3 weights, 3 biases and the readout.
        assert_eq!(r.updates.iter().filter(|u| u.step == 0).count(), 7);
    }
}

#[test]
fn adam_first_update_moves_every_entry_by_lr() {
    // Adam's bias-corrected first step is lr * g / (|g| + eps): every entry with a gradient
    // far above eps moves by lr, so |dW| = lr sqrt(entries). tanh: no unit is dead, every
    // entry has a gradient.
    let cfg = mlp(2, 16, "tanh", "xavier-normal");
    let r = trained(&cfg, &train_opts(1, OptimizerKind::Adam, 1e-3, teacher()));
    let entries = |p: &str| match p {
        "readout" => 16 * 2,
        p if p.ends_with(".bias") => 16,
        _ => 16 * 16,
    };
    assert_eq!(r.updates.len(), 5);
    for u in &r.updates {
        let want = 1e-3 * (entries(&u.param) as f64).sqrt();
        assert!(
            (u.update_norm / want - 1.0).abs() < 1e-4,
            "{}: {} vs {want}",
            u.param,
            u.update_norm
        );
    }
}

#[test]
fn training_is_deterministic_and_lowers_the_loss() {
    let cfg = mlp(2, 32, "tanh", "xavier-normal");
    let opts = train_opts(60, OptimizerKind::Momentum, 0.02, teacher());
    let mut a = trained(&cfg, &opts);
    let mut b = trained(&cfg, &opts);
    // The loop's wall time is the one thing that may differ.
    (a.wall_s, b.wall_s) = (0.0, 0.0);
    // Debug text: NaN statistics (undefined columns) compare equal as text.
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert_eq!(a.steps.len(), 61);
    assert_eq!(a.diverged_at, None);
    // The per-layer statistics at step 0 are the untrained network's probed pass.
    let net = cfg.resolve().unwrap();
    let params = build_params(&net, 5).unwrap();
    let p0 = probe(&net, &params, 5, &opts.probe, &cpu()).unwrap();
    assert_eq!(a.stats[0].0, 0);
    assert_eq!(format!("{:?}", a.stats[0].1), format!("{:?}", p0.stats));
    assert_ne!(format!("{:?}", a.stats[1].1), format!("{:?}", p0.stats));
    let mean = |r: &[StepRecord]| r.iter().map(|s| s.loss).sum::<f64>() / r.len() as f64;
    // The evaluation loss is taken at step 0, the logged steps and the last only.
    let evaluated: Vec<usize> = a
        .steps
        .iter()
        .filter(|s| s.eval_loss.is_some())
        .map(|s| s.step)
        .collect();
    assert_eq!(evaluated, vec![0, 1, 60]);
    let first = mean(&a.steps[..10]);
    let last = mean(&a.steps[51..]);
    assert!(last < 0.7 * first, "loss {first} -> {last}");
}

#[test]
fn a_diverging_run_stops_at_its_first_non_finite_loss() {
    let cfg = mlp(4, 32, "relu", "he-normal");
    let r = trained(&cfg, &train_opts(50, OptimizerKind::Sgd, 50.0, teacher()));
    let at = r.diverged_at.expect("lr 50 diverges");
    assert_eq!(r.steps.len(), at + 1);
    assert!(!r.steps[at].loss.is_finite() || !r.steps[at].grad_norm.is_finite());
    assert!(r.steps[..at].iter().all(|s| s.loss.is_finite()));
}

#[test]
fn every_seed_is_evaluated_on_the_tasks_own_batch() {
    // A network of zeros outputs 0: its evaluation loss is the mean square of the teacher's
    // outputs on the evaluation batch, the same for every seed since the batch is the task's.
    let cfg = mlp(2, 16, "relu", "zeros");
    let net = cfg.resolve().unwrap();
    let opts = train_opts(1, OptimizerKind::Sgd, 0.1, teacher());
    let e: Vec<f64> = [1, 2]
        .iter()
        .map(|&seed| {
            let params = build_params(&net, seed).unwrap();
            let r = train(&net, &params, seed, &opts, &cpu()).unwrap();
            r.steps[0].eval_loss.unwrap()
        })
        .collect();
    assert_eq!(e[0], e[1]);
    // The teacher is scaled to mean square 1 over its reference batch; 64 other samples
    // give a mean square near 1.
    assert!((e[0] - 1.0).abs() < 0.5, "{e:?}");
}

#[test]
fn mixture_classification_starts_at_chance_with_a_zero_output() {
    // A network whose output is all zeros gives uniform logits: cross-entropy ln(classes).
    let cfg = mlp(2, 16, "relu", "zeros");
    let task = Task::Mixture {
        classes: 4,
        noise: 1.0,
        seed: 0,
    };
    let r = trained(&cfg, &train_opts(1, OptimizerKind::Sgd, 0.1, task));
    assert!((r.steps[0].loss - 4f64.ln()).abs() < 1e-6);
}

#[test]
fn data_csv_is_parsed_and_checked() {
    let d = Dataset::from_csv("a,b,label\n1,2,0\n3,4.5,2\n\n-1,0,1\n", None).unwrap();
    assert_eq!((d.features, d.rows(), d.classes), (2, 3, 3));
    assert_eq!(d.x, vec![1.0, 2.0, 3.0, 4.5, -1.0, 0.0]);
    assert_eq!(d.labels, vec![0, 2, 1]);
    let err = |t: &str, c: Option<usize>| Dataset::from_csv(t, c).unwrap_err();
    assert!(err("1,2,0\n1,0\n", None).contains("line 2"));
    assert!(err("1,2,0\n1,x,0\n", None).contains("line 2, column 2"));
    assert!(err("1,2,0\n1,2,1.5\n", None).contains("label \"1.5\""));
    assert!(err("1,2,0\n1,2,3\n", Some(3)).contains("out of range"));
    assert!(err("1,2,0\n", None).contains("at least 2"));
    assert!(err("1,2,0\n1,2,1\n", Some(0)).contains("--classes 0"));
    assert!(err("1,2,0\n1,2,18446744073709551615\n", None).contains("at most"));
    // A network whose input is not the data's width is refused, naming --data.
    let cfg = mlp(2, 16, "relu", "he-normal");
    let net = cfg.resolve().unwrap();
    let params = build_params(&net, 0).unwrap();
    let e = train(
        &net,
        &params,
        0,
        &train_opts(
            1,
            OptimizerKind::Sgd,
            0.1,
            Task::Data(std::sync::Arc::new(d)),
        ),
        &cpu(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("data"), "{e}");
}

#[test]
fn held_out_rows_are_never_trained_on_and_are_the_evaluation_batch() {
    // The same rows without the held-out tail give the same training batches (the epoch
    // order is over the rows trained on), so the same step losses, bit for bit; only the
    // evaluation batch differs: the held-out rows, at most.
    let mut text = String::new();
    for i in 0..40 {
        text += &format!(
            "{},{},{}\n",
            (i as f64 * 0.37).sin(),
            (i as f64 * 0.11).cos(),
            i % 3
        );
    }
    let kept: String = text.lines().take(30).map(|l| format!("{l}\n")).collect();
    let all = Dataset::from_csv(&text, None)
        .unwrap()
        .with_holdout(10)
        .unwrap();
    let head = Dataset::from_csv(&kept, None).unwrap();
    assert_eq!((all.train_rows(), head.train_rows()), (30, 30));
    let mut cfg = mlp(1, 16, "tanh", "xavier-normal");
    cfg.arch = sigprop_nets::ArchConfig::Mlp(Mlp {
        widths: Some(vec![2, 16]),
        ..Mlp::default()
    });
    let run = |d: Dataset| {
        let task = Task::Data(std::sync::Arc::new(d));
        let held_out = task.describe().contains("held out");
        assert_eq!(task.eval_samples(64), if held_out { 10 } else { 30 });
        trained(&cfg, &train_opts(25, OptimizerKind::Sgd, 0.1, task))
    };
    let (a, b) = (run(all), run(head));
    let losses = |r: &TrainResult| r.steps.iter().map(|s| s.loss).collect::<Vec<_>>();
    assert_eq!(losses(&a), losses(&b));
    assert_ne!(a.steps[0].eval_loss, b.steps[0].eval_loss);
    let e = Dataset::from_csv(&text, None)
        .unwrap()
        .with_holdout(40)
        .unwrap_err();
    assert!(e.contains("--holdout 40"), "{e}");
}

#[test]
fn a_run_resumed_from_its_checkpoint_repeats_the_rest_exactly_under_sgd() {
    // Plain SGD keeps no state, so a run resumed from its own checkpoint at step 7 (weights,
    // readout, and the batches of steps 7 on) makes the same steps as the run that went on.
    let cfg = mlp(2, 24, "tanh", "xavier-normal");
    let net = cfg.resolve().unwrap();
    let params = build_params(&net, 5).unwrap();
    let mut opts = train_opts(20, OptimizerKind::Sgd, 0.05, teacher());
    opts.checkpoint_at = Some(7);
    let whole = train(&net, &params, 5, &opts, &cpu()).unwrap();
    let cp = whole.checkpoint.clone().unwrap();
    assert_eq!(cp.resume.step, 7);
    assert_eq!(cp.resume.readout.len(), 24 * 2);
    opts.checkpoint_at = None;
    opts.resume = Some(cp.resume.clone());
    let rest = train(&net, &cp.params, 5, &opts, &cpu()).unwrap();
    let of = |r: &TrainResult| {
        r.steps
            .iter()
            .map(|s| (s.step, s.loss, s.grad_norm))
            .collect::<Vec<_>>()
    };
    assert_eq!(of(&rest), of(&whole)[7..].to_vec());
    assert_eq!(rest.final_params, whole.final_params);
    // The resumed run is evaluated where it starts; a resume at or past the last step and a
    // readout of the wrong size are refused.
    assert!(rest.steps[0].eval_loss.is_some());
    opts.resume = Some(sigprop_nets::Resume {
        step: 20,
        readout: cp.resume.readout.clone(),
    });
    let e = train(&net, &cp.params, 5, &opts, &cpu()).unwrap_err();
    assert!(e.to_string().contains("before the last"), "{e}");
    opts.resume = Some(sigprop_nets::Resume {
        step: 3,
        readout: vec![0.0; 5],
    });
    let e = train(&net, &cp.params, 5, &opts, &cpu()).unwrap_err();
    assert!(e.to_string().contains("24 x 2 values"), "{e}");
}

/// The first update of each tensor under `kind` (base width `base`), by path.
fn first_updates(
    cfg: &NetConfig,
    optimizer: OptimizerKind,
    kind: ParamKind,
    base: usize,
) -> std::collections::HashMap<String, f64> {
    first_updates_at(cfg, optimizer, kind, (base, 1))
}

/// The first update of each tensor under `kind` at base width and depth `base`, by path.
fn first_updates_at(
    cfg: &NetConfig,
    optimizer: OptimizerKind,
    kind: ParamKind,
    (base_width, base_depth): (usize, usize),
) -> std::collections::HashMap<String, f64> {
    let mut o = train_opts(1, optimizer, 1e-3, teacher());
    o.param = Parametrization {
        kind,
        base_width,
        base_depth,
    };
    trained(cfg, &o)
        .updates
        .into_iter()
        .map(|u| (u.param, u.update_norm))
        .collect()
}

#[test]
fn ntk_and_mup_scale_each_tensors_first_update_by_their_rules() {
    // Same seed, same initial weights, same first gradient: the first updates differ
    // exactly by the parametrization's factors. An mlp with 8 input features and width 32
    // (base width 8 for muP: m = 4); tanh, so every gradient entry is nonzero.
    let mut cfg = mlp(3, 32, "tanh", "xavier-normal");
    cfg.arch = sigprop_nets::ArchConfig::Mlp(Mlp {
        widths: Some(vec![8, 32, 32, 32]),
        ..Mlp::default()
    });
    // The update is read as new - old in f32: |W| / |dW| ~ 1e4 times f32's rounding.
    let close =
        |a: f64, b: f64, what: &str| assert!((a / b - 1.0).abs() < 2e-3, "{what}: {a} vs {b}");
    // SGD under NTK: W = w / sqrt(fan_in), so dW = lr g / fan_in; biases unchanged.
    let sp = first_updates(&cfg, OptimizerKind::Sgd, ParamKind::Standard, 8);
    let ntk = first_updates(&cfg, OptimizerKind::Sgd, ParamKind::Ntk, 8);
    close(
        ntk["layers.1.weight"],
        sp["layers.1.weight"] / 8.0,
        "ntk sgd input",
    );
    close(
        ntk["layers.2.weight"],
        sp["layers.2.weight"] / 32.0,
        "ntk sgd hidden",
    );
    close(ntk["readout"], sp["readout"] / 32.0, "ntk sgd readout");
    close(ntk["layers.2.bias"], sp["layers.2.bias"], "ntk sgd bias");
    // Adam under NTK: Adam is blind to the gradient's scale, so dW = lr adam(g) / sqrt(fan_in).
    let sp = first_updates(&cfg, OptimizerKind::Adam, ParamKind::Standard, 8);
    let ntk = first_updates(&cfg, OptimizerKind::Adam, ParamKind::Ntk, 8);
    close(
        ntk["layers.2.weight"],
        sp["layers.2.weight"] / 32f64.sqrt(),
        "ntk adam hidden",
    );
    // muP with Adam, m = 4: hidden weights and the readout at lr / m, the input layer and
    // biases at lr (Adam's first step moves every entry by its learning rate).
    let mup = first_updates(&cfg, OptimizerKind::Adam, ParamKind::Mup, 8);
    close(
        mup["layers.1.weight"],
        sp["layers.1.weight"],
        "mup adam input",
    );
    close(
        mup["layers.2.weight"],
        sp["layers.2.weight"] / 4.0,
        "mup adam hidden",
    );
    close(mup["readout"], sp["readout"] / 4.0, "mup adam readout");
    close(mup["layers.3.bias"], sp["layers.3.bias"], "mup adam bias");
    // Roles: an mlp with explicit widths takes its input from the data, so its first layer is
    // a vector even when the input has the hidden width; ReZero's alpha is a scalar.
    let mut same = mlp(2, 32, "tanh", "xavier-normal");
    same.arch = sigprop_nets::ArchConfig::Mlp(Mlp {
        widths: Some(vec![32, 32, 32]),
        ..Mlp::default()
    });
    let net = same.resolve().unwrap();
    let params = build_params(&net, 0).unwrap();
    let by_path: Vec<(String, Role)> = params
        .tensors
        .iter()
        .map(|t| t.path.clone())
        .zip(roles(&net, &params))
        .collect();
    assert!(by_path.contains(&("layers.1.weight".into(), Role::Vector)));
    assert!(by_path.contains(&("layers.2.weight".into(), Role::Hidden)));
    assert!(by_path.contains(&("layers.2.bias".into(), Role::Vector)));
    let rez = NetConfig::new(
        Resmlp {
            branch_scale: BranchScale::Rezero,
            ..Resmlp::default()
        },
        2,
        16,
        "relu",
        "he-normal",
    )
    .resolve()
    .unwrap();
    let p = build_params(&rez, 0).unwrap();
    let r = roles(&rez, &p);
    assert!(
        p.tensors
            .iter()
            .zip(&r)
            .any(|(t, role)| t.shape == vec![1] && *role == Role::Scalar),
        "{:?}",
        p.tensors
            .iter()
            .map(|t| (&t.path, &t.shape))
            .collect::<Vec<_>>()
    );
    assert_eq!(model_width(&net), 32);
    // muP with SGD, m = 4: input layer and biases at lr m, hidden at lr. The readout starts
    // smaller (variance / m), which changes the backward pass: not compared.
    let sp = first_updates(&cfg, OptimizerKind::Sgd, ParamKind::Standard, 32);
    let mup1 = first_updates(&cfg, OptimizerKind::Sgd, ParamKind::Mup, 32);
    // At the base width muP is standard.
    for (k, v) in &sp {
        close(mup1[k], *v, k);
    }
}

/// Depth-muP and CompleteP against muP on the same residual network (width 32 at base
/// width 8, depth 8 at base depth 2: L / base = 4): Adam's first step moves every entry by
/// its learning rate, so depth-muP's tensors inside the blocks move by 1/sqrt(4) of muP's
/// and CompleteP's by as much as muP's (its epsilon rule is invisible at gradients far above
/// 1e-8); under SGD CompleteP's move 4 times as far. The readout is muP's in all.
#[test]
fn depth_parametrizations_scale_the_updates_inside_the_blocks_by_their_rules() {
    let close =
        |a: f64, b: f64, what: &str| assert!((a / b - 1.0).abs() < 2e-3, "{what}: {a} vs {b}");
    let res = |scale: BranchScale| {
        NetConfig::new(
            Resmlp {
                branch_scale: scale,
                ..Resmlp::default()
            },
            8,
            32,
            "tanh",
            "xavier-normal",
        )
    };
    let cases = [
        (
            BranchScale::InvSqrtDepth,
            OptimizerKind::Adam,
            ParamKind::DepthMup,
            0.5,
        ),
        (
            BranchScale::InvDepth,
            OptimizerKind::Adam,
            ParamKind::Completep,
            1.0,
        ),
        (
            BranchScale::InvDepth,
            OptimizerKind::Sgd,
            ParamKind::Completep,
            4.0,
        ),
        (
            BranchScale::InvSqrtDepth,
            OptimizerKind::Sgd,
            ParamKind::DepthMup,
            1.0,
        ),
    ];
    for (scale, opt, kind, factor) in cases {
        let cfg = res(scale);
        let mup = first_updates_at(&cfg, opt, ParamKind::Mup, (8, 2));
        let deep = first_updates_at(&cfg, opt, kind, (8, 2));
        assert_eq!(mup.len(), deep.len());
        for (path, v) in &deep {
            let want = if path.starts_with("blocks.") {
                factor
            } else {
                1.0
            };
            close(*v, mup[path] * want, &format!("{kind} {opt} {path}"));
        }
        assert!(deep.keys().any(|p| p.ends_with(".bias")), "{deep:?}");
    }
    // A depth parametrization needs the branches it sets, and a residual network.
    let mut o = train_opts(1, OptimizerKind::Adam, 1e-3, teacher());
    o.param.kind = ParamKind::Completep;
    let net = res(BranchScale::InvSqrtDepth).resolve().unwrap();
    let params = build_params(&net, 0).unwrap();
    let e = train(&net, &params, 0, &o, &cpu()).unwrap_err().to_string();
    assert!(e.contains("branch-scale") && e.contains("1/L"), "{e}");
    let net = mlp(3, 16, "tanh", "xavier-normal").resolve().unwrap();
    let params = build_params(&net, 0).unwrap();
    let e = train(&net, &params, 0, &o, &cpu()).unwrap_err().to_string();
    assert!(e.contains("residual"), "{e}");
}

#[test]
fn training_runs_on_every_backend_with_the_same_curve() {
    // Ten momentum steps of a small tanh MLP: the loss curves of ndarray and wgpu follow
    // flex's to f32 rounding (different summation orders), and each backend's Adam, SGD and
    // momentum are Burn's own.
    let cfg = mlp(3, 32, "tanh", "xavier-normal");
    let net = cfg.resolve().unwrap();
    let params = build_params(&net, 4).unwrap();
    let opts = train_opts(10, OptimizerKind::Momentum, 0.05, teacher());
    let reference = train(&net, &params, 4, &opts, &cpu()).unwrap();
    for kind in other_backends() {
        let Some(dev) = backend_or_skip(kind) else {
            continue;
        };
        let r = train(&net, &params, 4, &opts, &dev).unwrap();
        assert_eq!(r.steps.len(), reference.steps.len());
        for (a, b) in r.steps.iter().zip(&reference.steps) {
            assert!(
                (a.loss / b.loss - 1.0).abs() < 1e-3,
                "{kind} step {}: loss {} vs flex {}",
                a.step,
                a.loss,
                b.loss
            );
        }
    }
}

/// The largest entrywise difference of two outputs.
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

/// The MHA parameters equivalent to `gqa`'s: every query head `j` of a group of `g` reads
/// key-value head `j / g`, so the MHA key and value maps repeat each head's columns (and
/// bias entries) `g` times.
fn repeat_kv_heads(
    gqa: &sigprop_nets::Params,
    mha: &mut sigprop_nets::Params,
    dh: usize,
    g: usize,
) {
    for t in &mut mha.tensors {
        if !(t.path.contains("attn.k.") || t.path.contains("attn.v.")) {
            let src = gqa.get(&t.path).unwrap();
            assert_eq!(
                src.data, t.data,
                "{}: keyed by path, so drawn alike",
                t.path
            );
            continue;
        }
        let src = gqa.get(&t.path).unwrap();
        let (n_out, kv_out) = (*t.shape.last().unwrap(), *src.shape.last().unwrap());
        let rows = t.data.len() / n_out;
        for r in 0..rows {
            for c in 0..n_out {
                let (head, i) = (c / dh, c % dh);
                t.data[r * n_out + c] = src.data[r * kv_out + (head / g) * dh + i];
            }
        }
    }
}

/// Grouped-query attention is multi-head attention whose key and value heads are shared
/// within each group: the outputs agree to 1e-5 with the MHA network holding each
/// key-value head's columns repeated, through RoPE, QK-norm, causal masking and biases.
#[test]
fn grouped_query_attention_is_multi_head_attention_with_shared_key_value_heads() {
    use sigprop_nets::arch::transformer::Positions;
    let (t, d, batch) = (8, 32, 3);
    let gqa = Transformer {
        seq_len: t,
        heads: 4,
        kv_heads: 2,
        positions: Positions::Rope,
        qk_norm: true,
        causal: true,
        ..Transformer::default()
    };
    let mha = Transformer {
        kv_heads: 0,
        ..gqa.clone()
    };
    let net = |own: Transformer| {
        let mut cfg = NetConfig::new(own, 2, d, "gelu", "xavier-normal");
        cfg.bias_init = "normal:std=0.1".into();
        cfg.resolve().unwrap()
    };
    let (net_g, net_m) = (net(gqa), net(mha));
    let pg = build_params(&net_g, 3).unwrap();
    assert_eq!(pg.get("blocks.1.attn.k.weight").unwrap().shape, vec![d, 16]);
    let mut pm = build_params(&net_m, 3).unwrap();
    repeat_kv_heads(&pg, &mut pm, 8, 2);
    let x = sigprop_nets::inputs::normal_input(3, "input", [batch, t * d]).unwrap();
    let yg = forward_plain(&net_g, &pg, x.clone(), batch, &cpu()).unwrap();
    let ym = forward_plain(&net_m, &pm, x, batch, &cpu()).unwrap();
    let worst = max_abs_diff(&yg, &ym);
    assert!(worst < 1e-5, "{worst}");
    // The unrepeated MHA differs: the check can fail.
    let own = build_params(&net_m, 3).unwrap();
    let x = sigprop_nets::inputs::normal_input(3, "input", [batch, t * d]).unwrap();
    let y0 = forward_plain(&net_m, &own, x, batch, &cpu()).unwrap();
    assert!(max_abs_diff(&yg, &y0) > 1e-3);
}

/// The embedding looks up each token id's row: the network fed ids gives, to 1e-5, the
/// output of the same network fed the looked-up rows as features. The tied head is the
/// final stream times the table transposed, exactly. The tables draw from their role's
/// initializer, the network's fixed-scale one, or N(0, 1).
#[test]
fn embedding_looks_up_rows_and_the_tied_head_reads_them_back() {
    use sigprop_nets::arch::transformer::Positions;
    let (t, d, vocab, batch) = (6, 16, 40, 2);
    let base = Transformer {
        seq_len: t,
        heads: 2,
        positions: Positions::Learned,
        final_norm: true,
        ..Transformer::default()
    };
    let resolve = |own: Transformer| {
        NetConfig::new(own, 2, d, "gelu", "xavier-normal")
            .resolve()
            .unwrap()
    };
    let ids_net = resolve(Transformer {
        embedding: vocab,
        ..base.clone()
    });
    let tied_net = resolve(Transformer {
        embedding: vocab,
        tie_unembedding: true,
        ..base.clone()
    });
    let feat_net = resolve(base);
    let p = build_params(&ids_net, 9).unwrap();
    let table = p.get("embed.tokens").unwrap();
    assert_eq!(table.shape, vec![vocab, d]);
    let ids = sigprop_nets::inputs::uniform_classes(9, "input.tokens", batch * t, vocab).unwrap();
    assert!(ids.iter().any(|&i| i != ids[0]));
    let rows: Vec<f32> = ids
        .iter()
        .flat_map(|&i| table.data[i * d..(i + 1) * d].iter().copied())
        .collect();
    let ids_f: Vec<f32> = ids.iter().map(|&i| i as f32).collect();
    let feat = build_params(&feat_net, 9).unwrap();
    assert!(feat.get("embed.tokens").is_none());
    let y_ids = forward_plain(&ids_net, &p, ids_f.clone(), batch, &cpu()).unwrap();
    let y_feat = forward_plain(&feat_net, &feat, rows, batch, &cpu()).unwrap();
    let worst = max_abs_diff(&y_ids, &y_feat);
    assert!(worst < 1e-5, "{worst}");
    // Tied: logits[token, v] = final[token] . E[v].
    let logits = forward_plain(&tied_net, &p, ids_f, batch, &cpu()).unwrap();
    assert_eq!(logits.len(), batch * t * vocab);
    for tok in 0..batch * t {
        for v in 0..vocab {
            let want: f64 = (0..d)
                .map(|j| f64::from(y_ids[tok * d + j]) * f64::from(table.data[v * d + j]))
                .sum();
            let got = f64::from(logits[tok * vocab + v]);
            assert!(
                (got - want).abs() < 1e-4,
                "token {tok} class {v}: {got} vs {want}"
            );
        }
    }
    // The tables' initializers: 640 and 96 entries, sample variance within 45% (3 sd of
    // the 96-entry table's 14%; the 640-entry table's is 6%).
    let var = |p: &sigprop_nets::Params, path: &str| {
        let t = p.get(path).unwrap();
        t.data.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / t.data.len() as f64
    };
    let own = Transformer {
        embedding: vocab,
        seq_len: t,
        heads: 2,
        positions: Positions::Learned,
        ..Transformer::default()
    };
    for (init, roles, want) in [
        ("xavier-normal", vec![], 1.0),
        ("gpt2", vec![], 4e-4),
        ("normal:std=0.1", vec![], 0.01),
        (
            "he-normal",
            vec!["embedding=normal:std=0.5", "position=normal:std=0.5"],
            0.25,
        ),
    ] {
        let own = Transformer {
            init_role: roles.iter().map(|r| r.parse().unwrap()).collect(),
            ..own.clone()
        };
        let net = NetConfig::new(own, 2, d, "gelu", init).resolve().unwrap();
        let p = build_params(&net, 4).unwrap();
        for path in ["embed.tokens", "embed.positions"] {
            let v = var(&p, path);
            assert!(
                (v / want - 1.0).abs() < 0.45,
                "{init} {path}: {v} vs {want}"
            );
        }
    }
}

/// Shaped attention (`A = I + softmax - C`, the query map at 0) is the identity at
/// initialization: through attention sublayers with orthogonal value and output maps and
/// no skip, each sequence's token Gram matrix is unchanged to 1e-5 (relative to its
/// largest entry), causal or not. Softmax attention changes it (the check can fail).
#[test]
fn shaped_attention_keeps_the_token_gram_matrix_at_initialization() {
    use sigprop_nets::arch::transformer::AttentionKind;
    let (t, d, batch) = (6, 16, 3);
    for causal in [false, true] {
        let gram_change = |attention: AttentionKind| -> f64 {
            let own = Transformer {
                seq_len: t,
                heads: 2,
                attention_only: true,
                shortcut: Shortcut::None,
                norm: Norm::None,
                causal,
                attention,
                ..Transformer::default()
            };
            let net = NetConfig::new(own, 3, d, "gelu", "orthogonal")
                .resolve()
                .unwrap();
            let p = build_params(&net, 5).unwrap();
            let q = p.get("blocks.1.attn.q.weight").unwrap();
            if attention == AttentionKind::Shaped {
                assert!(
                    q.data.iter().all(|&w| w == 0.0),
                    "the query map starts at 0"
                );
            }
            let x = sigprop_nets::inputs::normal_input(5, "input", [batch, t * d]).unwrap();
            let y = forward_plain(&net, &p, x.clone(), batch, &cpu()).unwrap();
            let gram = |v: &[f32], b: usize| -> Vec<f64> {
                let tok = |i: usize| &v[(b * t + i) * d..(b * t + i + 1) * d];
                (0..t * t)
                    .map(|k| {
                        let (i, j) = (k / t, k % t);
                        tok(i)
                            .iter()
                            .zip(tok(j))
                            .map(|(&a, &c)| f64::from(a) * f64::from(c))
                            .sum()
                    })
                    .collect()
            };
            (0..batch)
                .map(|b| {
                    let (gx, gy) = (gram(&x, b), gram(&y, b));
                    let top = gx.iter().fold(0f64, |m, v| m.max(v.abs()));
                    gx.iter()
                        .zip(&gy)
                        .map(|(a, c)| (a - c).abs() / top)
                        .fold(0f64, f64::max)
                })
                .fold(0f64, f64::max)
        };
        let shaped = gram_change(AttentionKind::Shaped);
        assert!(shaped <= 1e-5, "causal {causal}: {shaped}");
        let softmax = gram_change(AttentionKind::Softmax);
        assert!(
            softmax > 0.1,
            "causal {causal}: softmax changes it by {softmax}"
        );
    }
}

/// IDInit and ZerO on a transformer: the maps that write a branch into the stream (`W_o`,
/// `W_2`) are 0; the up map `[d, 4d]` (logically `[4d, d]`, tall) is the stacked identity
/// under IDInit (output `i` reads input `i mod d`) and a `2^(-(m-1)/2)` Hadamard block under
/// ZerO. Shaped attention zeroes the query bias with its weight, whatever `--bias-init`.
#[test]
fn idinit_zero_hadamard_and_shaped_attention_fill_the_transformer_as_stated() {
    use sigprop_nets::arch::transformer::AttentionKind;
    let d = 8;
    let own = Transformer {
        seq_len: 4,
        heads: 2,
        ..Transformer::default()
    };
    for init in ["idinit", "zero-hadamard"] {
        let net = NetConfig::new(own.clone(), 2, d, "gelu", init)
            .resolve()
            .unwrap();
        let p = build_params(&net, 1).unwrap();
        for k in 1..=2 {
            for name in ["attn.o", "mlp.down"] {
                let w = p.get(&format!("blocks.{k}.{name}.weight")).unwrap();
                assert!(w.data.iter().all(|&x| x == 0.0), "{init} {name}");
            }
            let up = p.get(&format!("blocks.{k}.mlp.up.weight")).unwrap();
            assert_eq!(up.shape, vec![d, 4 * d]);
            // Stored [in, out]: entry (j, i) is logical (i, j).
            for j in 0..d {
                for i in 0..4 * d {
                    let got = up.data[j * 4 * d + i];
                    let want = match init {
                        "idinit" => f32::from(i % d == j),
                        // 32 outputs: m = 5, c = 1/4.
                        _ => {
                            0.25 * if (i & j).count_ones() % 2 == 0 {
                                1.0
                            } else {
                                -1.0
                            }
                        }
                    };
                    assert_eq!(got, want, "{init} up ({i}, {j})");
                }
            }
            let q = p.get(&format!("blocks.{k}.attn.q.weight")).unwrap();
            let eye: Vec<f32> = (0..d * d).map(|e| f32::from(e / d == e % d)).collect();
            assert_eq!(q.data, eye, "{init}: a square map is the identity");
        }
    }
    let shaped = Transformer {
        attention: AttentionKind::Shaped,
        ..own
    };
    let mut cfg = NetConfig::new(shaped, 2, d, "gelu", "xavier-normal");
    cfg.bias_init = "normal:std=0.1".into();
    let p = build_params(&cfg.resolve().unwrap(), 1).unwrap();
    for path in ["blocks.1.attn.q.weight", "blocks.1.attn.q.bias"] {
        assert!(
            p.get(path).unwrap().data.iter().all(|&x| x == 0.0),
            "{path}"
        );
    }
    assert!(
        p.get("blocks.1.attn.k.bias")
            .unwrap()
            .data
            .iter()
            .any(|&x| x != 0.0)
    );
}

/// Probe options of a pass in `dtype` with `loss_scale`.
fn low_precision(batch: usize, dtype: Dtype, loss_scale: LossScale) -> ProbeOptions {
    ProbeOptions {
        precision: Some(PrecisionOptions { dtype, loss_scale }),
        ..opts(batch)
    }
}

/// One seed's probed pass of `cfg` with `o`: each site's statistics.
fn probed(cfg: &NetConfig, seed: u64, o: &ProbeOptions) -> Vec<LayerStats> {
    let net = cfg.resolve().unwrap();
    let params = build_params(&net, seed).unwrap();
    probe(&net, &params, seed, o, &cpu()).unwrap().stats
}

/// The low-precision statistics of each site of `stats`, with its site and layer.
fn lost(stats: &[LayerStats]) -> Vec<(String, usize, PrecisionStats)> {
    stats
        .iter()
        .map(|s| {
            let p = s.precision.expect("a low-precision pass fills them");
            (s.site.clone(), s.layer, p)
        })
        .collect()
}

/// bf16 on a 64-layer tanh MLP at sigma_w = 1: the first layer's z carries a few roundings
/// of relative size at most u = 2^-8 (the input's, the weights', the product's), so its
/// relative error is of order u (measured 0.74 u); errors then enter at every layer and are
/// carried up, so it grows with depth (measured 8x by layer 64), and the gradient's grows
/// the other way, from the loss down. Nothing under- or overflows, and the pass's own
/// variances are the f32 pass's to within their relative error. An f32 pass has none of
/// these columns and is the same pass as before them, to the bit.
#[test]
fn bf16_relative_error_starts_at_the_unit_roundoff_and_grows_with_depth() {
    let u = Dtype::Bf16.unit_roundoff();
    let cfg = mlp(64, 128, "tanh", "lecun-normal");
    let f32_stats = probed(&cfg, 1, &opts(64));
    assert!(f32_stats.iter().all(|s| s.precision.is_none()));
    let f32_named = low_precision(64, Dtype::F32, LossScale::Off);
    // Compared as text: NaN (a site without a multiplier's gradient) is not equal to itself.
    let text = |s: &[LayerStats]| format!("{s:?}");
    assert_eq!(text(&probed(&cfg, 1, &f32_named)), text(&f32_stats));
    let bf16 = probed(&cfg, 1, &low_precision(64, Dtype::Bf16, LossScale::Off));
    let l = lost(&bf16);
    let (first, last) = (l[0].2, l[63].2);
    assert!(
        first.rel_err > u / 4.0 && first.rel_err < u,
        "{}",
        first.rel_err / u
    );
    assert!(
        last.rel_err > 4.0 * first.rel_err && last.rel_err < 64.0 * u,
        "{last:?}"
    );
    assert!(
        first.grad_rel_err > 4.0 * last.grad_rel_err,
        "{first:?} {last:?}"
    );
    assert!(
        last.grad_rel_err > u / 4.0 && last.grad_rel_err < u,
        "{last:?}"
    );
    for ((_, layer, p), (s, r)) in l.iter().zip(bf16.iter().zip(&f32_stats)) {
        assert_eq!(
            (p.underflow_frac, p.overflow_frac, p.grad_overflow_frac),
            (0.0, 0.0, 0.0)
        );
        assert_eq!(p.loss_scale, 1.0);
        // A variance is a mean of squares: its relative error is at most about twice the
        // entries', with a margin.
        let worst = 3.0 * p.rel_err;
        assert!(rel(s.preact_var, r.preact_var) < worst, "layer {layer}");
    }
}

/// f16's smallest normal is 2^-14. A linear MLP of 16 layers with sigma_w^2 = 0.5 halves
/// the gradient's variance at each layer down from the loss's N(0, 1), so the lower layers'
/// small entries fall below it: without a loss scale they underflow, where f32 keeps them.
/// A dynamic scale (2^16 halved while a gradient, a weight's included, overflows) lifts
/// every one above it: no underflow at any site, the scale a power of two, the forward pass
/// untouched. A forward pass that overflows is a result: the overflow and the non-finite
/// entries are counted, and no scale is tried (it cannot help).
#[test]
fn f16_gradients_underflow_without_a_loss_scale_and_not_with_a_dynamic_one() {
    let mut cfg = mlp(
        16,
        128,
        "linear",
        "variance-scaling:scale=0.5,distribution=normal",
    );
    cfg.bias_init = "zeros".into();
    let off = lost(&probed(
        &cfg,
        1,
        &low_precision(64, Dtype::F16, LossScale::Off),
    ));
    let dynamic = lost(&probed(
        &cfg,
        1,
        &low_precision(64, Dtype::F16, LossScale::Dynamic),
    ));
    let under: f64 = off.iter().map(|r| r.2.grad_underflow_frac).sum();
    assert!(under > 0.01, "{under}");
    let scale = dynamic[0].2.loss_scale;
    assert!(
        scale > 1.0 && scale <= 65536.0 && scale.log2().fract() == 0.0,
        "{scale}"
    );
    for (a, b) in off.iter().zip(&dynamic) {
        assert_eq!(b.2.grad_underflow_frac, 0.0, "layer {}", b.1);
        assert_eq!(b.2.grad_overflow_frac, 0.0, "layer {}", b.1);
        assert_eq!(
            (a.2.underflow_frac, a.2.rel_err),
            (b.2.underflow_frac, b.2.rel_err)
        );
        assert!(b.2.grad_rel_err <= a.2.grad_rel_err + 1e-6, "layer {}", b.1);
    }
    // He-normal ReLU times 20 in variance: the forward pass leaves f16's range.
    let hot = mlp(
        12,
        64,
        "relu",
        "variance-scaling:scale=20,distribution=normal",
    );
    let stats = probed(&hot, 1, &low_precision(32, Dtype::F16, LossScale::Dynamic));
    let over = lost(&stats);
    assert!(over.iter().any(|r| r.2.overflow_frac > 0.0));
    assert!(stats.iter().any(|s| s.nonfinite_forward > 0));
    assert_eq!(over[0].2.loss_scale, 1.0);
    assert_eq!(over[0].2.overflow_frac, 0.0);
}

/// bf16 on a LLaMA-style stack of 24 blocks (token table, RMSNorm, RoPE, SwiGLU, QK-norm,
/// grouped-query causal attention): every constant the pass makes (the rotation tables,
/// the mask) is in bf16 too, so the pass runs (a mixed pair of types would be caught by
/// the backend's debug checks). The table's lookup is one rounding of its rows (measured
/// 0.43 u at `embed`); the stream's error grows block by block (9x by the last block), the
/// gradient's from the head down, and nothing overflows.
#[test]
fn bf16_llama_stack_of_24_blocks_accumulates_rounding_with_depth() {
    use sigprop_nets::arch::transformer::{MlpKind, Positions};
    let u = Dtype::Bf16.unit_roundoff();
    let own = Transformer {
        seq_len: 16,
        heads: 4,
        kv_heads: 2,
        positions: Positions::Rope,
        qk_norm: true,
        causal: true,
        norm: Norm::Rms,
        embedding: 256,
        mlp: MlpKind::Swiglu,
        final_norm: true,
        ..Transformer::default()
    };
    let cfg = NetConfig::new(own, 24, 64, "silu", "normal:std=0.02");
    let stats = probed(&cfg, 1, &low_precision(4, Dtype::Bf16, LossScale::Off));
    let l = lost(&stats);
    let at = |site: &str, layer: usize| {
        l.iter()
            .find(|r| r.0 == site && r.1 == layer)
            .map(|r| r.2)
            .unwrap_or_else(|| panic!("no site {site} at {layer}"))
    };
    let (embed, last) = (at("embed", 1), at("out", 24));
    assert!(
        embed.rel_err > u / 8.0 && embed.rel_err < u,
        "{}",
        embed.rel_err / u
    );
    assert!(
        last.rel_err > 4.0 * embed.rel_err && last.rel_err < 24.0 * u,
        "{last:?}"
    );
    assert!(
        embed.grad_rel_err > 2.0 * last.grad_rel_err,
        "{embed:?} {last:?}"
    );
    assert!(
        l.iter()
            .all(|r| r.2.overflow_frac == 0.0 && r.2.grad_overflow_frac == 0.0)
    );
    assert!(stats.iter().all(|s| s.nonfinite == 0));
}

/// Low precision on the GPU backend: where Burn reports the type's arithmetic (f16 on
/// Mesa's lavapipe and on NVIDIA GPUs), the same seed's pass runs there with errors of the
/// same order as flex's (the kernels differ, so not the same bits), and the f16 gradients
/// underflow there too; where it does not (bf16 on lavapipe), the pass is refused with the
/// types that are, never run to give garbage.
#[test]
fn low_precision_runs_on_wgpu_where_the_type_has_arithmetic_and_is_refused_where_not() {
    let Some(gpu) = backend_or_skip(BackendKind::Wgpu) else {
        return;
    };
    let mut cfg = mlp(
        16,
        128,
        "linear",
        "variance-scaling:scale=0.5,distribution=normal",
    );
    cfg.bias_init = "zeros".into();
    let net = cfg.resolve().unwrap();
    let params = build_params(&net, 1).unwrap();
    for dtype in [Dtype::F16, Dtype::Bf16] {
        let u = dtype.unit_roundoff();
        match sigprop_nets::check_dtype(BackendKind::Wgpu, dtype) {
            Ok(()) => {
                let o = low_precision(64, dtype, LossScale::Off);
                let on = |dev: &Device| lost(&probe(&net, &params, 1, &o, dev).unwrap().stats);
                let (gpu_lost, cpu_lost) = (on(&gpu), on(&cpu()));
                let (g, c) = (gpu_lost[0].2.rel_err, cpu_lost[0].2.rel_err);
                assert!(
                    g > u / 8.0 && g < u && g / c < 2.0 && c / g < 2.0,
                    "{dtype}: {g} vs {c}"
                );
                if dtype == Dtype::F16 {
                    let under: f64 = gpu_lost.iter().map(|r| r.2.grad_underflow_frac).sum();
                    assert!(under > 0.01, "{under}");
                }
            }
            Err(e) => {
                let text = e.to_string();
                assert!(
                    text.contains(&format!("dtype={dtype}")) && text.contains("f32"),
                    "{text}"
                );
            }
        }
    }
    // f16 has arithmetic on every Vulkan device this runs on (lavapipe, NVIDIA).
    assert!(sigprop_nets::check_dtype(BackendKind::Wgpu, Dtype::F16).is_ok());
}

/// `--init model` keeps an ONNX file's own weights: on the input its exporting script
/// committed, the graph's output is PyTorch's within 1e-5 relative to the output's scale
/// (scripts/torch_models.py writes both; f32 sums in another order differ by about 1e-7).
#[test]
fn a_model_with_its_own_weights_gives_the_output_pytorch_gave() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/models");
    for name in [
        "vit_blocks",
        "resnet_small",
        "digits_cnn",
        "written_out",
        "tiny_lm",
    ] {
        let model = root.join(format!("{name}.onnx"));
        let io: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root.join(format!("{name}.io.json"))).unwrap(),
        )
        .unwrap();
        let floats = |k: &str| -> Vec<f32> {
            io[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect()
        };
        let (x, want) = (floats("input"), floats("output"));
        let batch = io["input_shape"][0].as_u64().unwrap() as usize;
        let mut table = toml::Table::new();
        table.insert(
            "model".into(),
            toml::Value::String(model.to_str().unwrap().into()),
        );
        // PyTorch's output is its evaluation mode's: the stored running statistics.
        if ["resnet_small", "digits_cnn"].contains(&name) {
            table.insert("bn-stats".into(), toml::Value::String("model".into()));
        }
        let arch = sigprop_nets::Arch::Graph.config_from(&table).unwrap();
        let (depth, width) = arch.fixed_size().unwrap();
        let cfg = NetConfig::new(arch, depth, width, "relu", "model");
        let net = cfg.resolve().unwrap();
        let params = build_params(&net, 0).unwrap();
        let got = sigprop_nets::forward_plain(&net, &params, x, batch, &cpu()).unwrap();
        assert_eq!(got.len(), want.len(), "{name}");
        let scale = want.iter().map(|v| v.abs()).fold(0f32, f32::max);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-5 * scale,
                "{name} output {i}: {g} vs PyTorch's {w}"
            );
        }
        // Re-initialized, the same file gives another output.
        let he = NetConfig {
            weight_init: "he-normal".into(),
            ..cfg.clone()
        }
        .resolve()
        .unwrap();
        let params = build_params(&he, 0).unwrap();
        let other =
            sigprop_nets::forward_plain(&he, &params, floats("input"), batch, &cpu()).unwrap();
        assert!(
            other
                .iter()
                .zip(&want)
                .any(|(g, w)| (g - w).abs() > 1e-3 * scale)
        );
    }
}

/// A `tie`d linear node starts as its partner's weight transposed, entry by entry (its
/// `[in, out]` entry `(a, b)` is the partner's `(b, a)`), whatever draws the partner.
#[test]
fn a_tied_map_starts_as_its_partners_transpose() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ae.toml");
    std::fs::write(
        &path,
        "input = [6]\n[[layers]]\nop = \"linear\"\nname = \"enc\"\nout = 3\n[[layers]]\nop = \"act\"\n\
         [[layers]]\nop = \"linear\"\nname = \"dec\"\nout = 6\ntie = \"enc\"\n[[layers]]\nop = \"act\"\n",
    )
    .unwrap();
    let mut table = toml::Table::new();
    table.insert(
        "model".into(),
        toml::Value::String(path.to_str().unwrap().into()),
    );
    let arch = sigprop_nets::Arch::Graph.config_from(&table).unwrap();
    let (depth, width) = arch.fixed_size().unwrap();
    let net = NetConfig::new(arch, depth, width, "tanh", "xavier-normal")
        .resolve()
        .unwrap();
    let params = build_params(&net, 5).unwrap();
    let (enc, dec) = (
        params.get("enc.weight").unwrap(),
        params.get("dec.weight").unwrap(),
    );
    assert_eq!(
        (enc.shape.clone(), dec.shape.clone()),
        (vec![6, 3], vec![3, 6])
    );
    for a in 0..3 {
        for b in 0..6 {
            assert_eq!(dec.data[a * 6 + b], enc.data[b * 3 + a], "({a}, {b})");
        }
    }
    assert!(enc.data.iter().any(|&v| v != 0.0));
}
