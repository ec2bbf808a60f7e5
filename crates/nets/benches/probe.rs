//! Benchmark (not a test): one probed forward+backward pass with all statistics, ReLU,
//! he-normal, MLP depth 50, width 512, batch 256 on flex, next to PyTorch doing the same
//! forward+backward on this machine (`scripts/bench_torch.py`, when torch is installed),
//! and the fraction of the GEMM floor (20.1 GFLOP at this machine's measured flex GEMM rate).

use std::process::Command;
use std::time::Instant;

use burn::tensor::{Device, Tensor};
use sigprop_nets::{Arch, NetConfig, ProbeOptions, build_params, probe};

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

fn main() {
    let (depth, width, batch) = (50usize, 512usize, 256usize);
    let device = Device::flex();
    let net = NetConfig::new(Arch::Mlp, depth, width, "relu", "he-normal")
        .resolve()
        .unwrap();
    let params = build_params(&net, 0, None).unwrap();
    let opts = ProbeOptions {
        batch,
        hist_layers: vec![],
        hist_bins: 0,
    };
    let _ = probe(&net, &params, 0, &opts, &device).unwrap();
    let runs: Vec<(f64, f64)> = (0..7)
        .map(|_| {
            let t = Instant::now();
            let r = probe(&net, &params, 0, &opts, &device).unwrap();
            (t.elapsed().as_secs_f64(), r.times.forward_backward_s)
        })
        .collect();
    let total = median(runs.iter().map(|r| r.0).collect());
    let fb = median(runs.iter().map(|r| r.1).collect());
    let flops = 3.0 * depth as f64 * 2.0 * (batch * width * width) as f64;
    let rate = gemm_rate(&device);
    let floor = flops / (rate * 1e9);
    println!("sigprop flex  MLP relu he-normal depth {depth} width {width} batch {batch}");
    println!("  probed pass incl. statistics: {total:.3} s (forward+backward {fb:.3} s)");
    println!(
        "  GEMM work {:.1} GFLOP; flex GEMM rate {rate:.0} GFLOP/s -> floor {floor:.3} s; pass at {:.0}% of the floor rate",
        flops / 1e9,
        100.0 * floor / total
    );
    let torch = Command::new("python3")
        .arg("scripts/bench_torch.py")
        .arg("probe")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output();
    match torch {
        Ok(o) if o.status.success() => print!("{}", String::from_utf8_lossy(&o.stdout)),
        _ => println!("  PyTorch: not installed (pip install torch) - skipped"),
    }
}
