//! Benchmark (not a test): one probed forward+backward pass with all statistics on flex,
//! next to PyTorch doing the same work on this machine (`scripts/bench_torch.py`, when
//! torch is installed), and the fraction of the GEMM floor at this machine's measured flex
//! GEMM rate. Two cases: a ReLU he-normal MLP (depth 50, width 512, batch 256; 20.1 GFLOP)
//! and a pre-LN transformer (depth 12, width 256, seq-len 128, batch 16; 126 GFLOP).

use std::process::Command;
use std::time::Instant;

use burn::tensor::{Device, Tensor};
use sigprop_nets::arch::Transformer;
use sigprop_nets::{Arch, NetConfig, ProbeOptions, ResolvedNet, build_params, probe};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Single-precision GEMM rate of flex, GFLOP/s, on 1024^3 products.
fn gemm_rate(device: &Device) -> f64 {
    let n = 1024;
    let a = Tensor::<2>::ones([n, n], device);
    let b = Tensor::<2>::ones([n, n], device);
    let _: Vec<f32> = a
        .clone()
        .matmul(b.clone())
        .into_data()
        .try_to_vec()
        .unwrap();
    let times: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let _: Vec<f32> = a
                .clone()
                .matmul(b.clone())
                .slice([0..1, 0..1])
                .into_data()
                .try_to_vec()
                .unwrap();
            t.elapsed().as_secs_f64()
        })
        .collect();
    2.0 * (n as f64).powi(3) / median(times) / 1e9
}

/// Time `probe` on `net` (median of 7 after a warm-up) and print it next to the GEMM floor
/// of `flops` and the PyTorch script's figure for `torch_case`.
fn bench(title: &str, net: &ResolvedNet, batch: usize, flops: f64, torch_case: &str) {
    let device = Device::flex();
    let params = build_params(net, 0).unwrap();
    let opts = ProbeOptions {
        batch,
        hist_layers: vec![],
        hist_bins: 0,
        jacobian: None,
        precision: None,
    };
    let _ = probe(net, &params, 0, &opts, &device).unwrap();
    let runs: Vec<(f64, f64, f64)> = (0..7)
        .map(|_| {
            let t = Instant::now();
            let r = probe(net, &params, 0, &opts, &device).unwrap();
            let times = r.times;
            (
                t.elapsed().as_secs_f64(),
                times.forward_backward_s,
                times.stats_s,
            )
        })
        .collect();
    let total = median(runs.iter().map(|r| r.0).collect());
    let fb = median(runs.iter().map(|r| r.1).collect());
    let stats = median(runs.iter().map(|r| r.2).collect());
    let rate = gemm_rate(&device);
    let floor = flops / (rate * 1e9);
    println!("sigprop flex  {title}");
    println!(
        "  probed pass incl. statistics: {total:.3} s (forward+backward {fb:.3} s, statistics {stats:.3} s)"
    );
    println!(
        "  GEMM work {:.1} GFLOP; flex GEMM rate {rate:.0} GFLOP/s -> floor {floor:.3} s; pass at {:.0}% of the floor rate",
        flops / 1e9,
        100.0 * floor / total
    );
    let torch = Command::new("python3")
        .arg("scripts/bench_torch.py")
        .arg(torch_case)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output();
    match torch {
        Ok(o) if o.status.success() => print!("{}", String::from_utf8_lossy(&o.stdout)),
        _ => println!("  PyTorch: not installed (pip install torch) - skipped"),
    }
}

/// The Jacobian spectrum of a tanh MLP (depth 50, width 1024, 8 inputs): the probed pass
/// with `--jacobian` against the same pass without, median of 3 after a warm-up.
fn bench_jacobian() {
    let (depth, width, samples) = (50usize, 1024usize, 8usize);
    let net = NetConfig::new(Arch::Mlp, depth, width, "tanh", "xavier-normal")
        .resolve()
        .unwrap();
    let device = Device::flex();
    let params = build_params(&net, 0).unwrap();
    let time = |jacobian: bool| {
        let opts = ProbeOptions {
            batch: samples,
            hist_layers: vec![],
            hist_bins: 0,
            jacobian: jacobian.then(|| sigprop_nets::JacobianOptions {
                samples,
                layers: vec![],
            }),
            precision: None,
        };
        let _ = probe(&net, &params, 0, &opts, &device).unwrap();
        median(
            (0..3)
                .map(|_| {
                    let t = Instant::now();
                    let _ = probe(&net, &params, 0, &opts, &device).unwrap();
                    t.elapsed().as_secs_f64()
                })
                .collect(),
        )
    };
    let (with, without) = (time(true), time(false));
    // The product: `samples x N x N x N` multiply-adds for each layer after the first.
    let flops = 2.0 * (samples * width * width * width) as f64 * (depth - 1) as f64;
    println!(
        "sigprop flex  Jacobian spectrum, MLP tanh depth {depth} width {width}, {samples} inputs"
    );
    println!(
        "  pass with --jacobian {with:.2} s, without {without:.3} s: the spectrum {:.2} s ({:.0} GFLOP of products, 8 SVDs of 1024 x 1024 in f64)",
        with - without,
        flops / 1e9
    );
    let torch = Command::new("python3")
        .arg("scripts/bench_torch.py")
        .arg("jacobian")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output();
    match torch {
        Ok(o) if o.status.success() => print!("{}", String::from_utf8_lossy(&o.stdout)),
        _ => println!("  PyTorch: not installed (pip install torch) - skipped"),
    }
}

/// `cargo bench --bench probe [-- mlp|transformer|jacobian]`: every case without an
/// argument.
fn main() {
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wants = |case: &str| only.as_deref().is_none_or(|o| o == case);
    if wants("mlp") {
        let (depth, width, batch) = (50usize, 512usize, 256usize);
        let net = NetConfig::new(Arch::Mlp, depth, width, "relu", "he-normal")
            .resolve()
            .unwrap();
        let flops = 3.0 * depth as f64 * 2.0 * (batch * width * width) as f64;
        let title = format!("MLP relu he-normal depth {depth} width {width} batch {batch}");
        bench(&title, &net, batch, flops, "probe");
    }
    if wants("transformer") {
        // Pre-LN, 4 heads, GELU MLP of ratio 4, biases, Xavier-normal.
        let (depth, d, t, batch) = (12usize, 256usize, 128usize, 16usize);
        let own = Transformer {
            seq_len: t,
            ..Transformer::default()
        };
        let net = NetConfig::new(own, depth, d, "gelu", "xavier-normal")
            .resolve()
            .unwrap();
        // Per block, forward: q, k, v, o (8 n d^2 for n = batch t tokens), scores and
        // A v (4 batch t^2 d), the MLP (16 n d^2); backward twice the forward.
        let n = (batch * t) as f64;
        let (d, tf) = (d as f64, t as f64);
        let block = 24.0 * n * d * d + 4.0 * batch as f64 * tf * tf * d;
        let flops = 3.0 * depth as f64 * block;
        let title = format!(
            "transformer pre-LN gelu xavier-normal depth {depth} width {d} seq-len {t} batch {batch}"
        );
        bench(&title, &net, batch, flops, "transformer");
    }
    if wants("jacobian") {
        bench_jacobian();
    }
}
