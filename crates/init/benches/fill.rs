//! Wall-clock benchmark of the two fills that dominate a run's set-up: 50 He-normal
//! 512x512 matrices through `fill_many`, and one orthogonal 4096x4096 matrix. Plain
//! `Instant`, best of a few repetitions; compare with `scripts/bench_init_torch.py`.
//! Not a test: nothing here asserts a time.

use std::time::Instant;

use sigprop_init::{Activation, FillContext, FillJob, Key, Layout, Scheme, fill_many};

fn best_of<T>(reps: usize, mut f: impl FnMut() -> T) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = FillContext::new(Activation::Relu);
    let he: Scheme = "he-normal".parse()?;
    let jobs: Vec<FillJob> = (0..50)
        .map(|i| FillJob {
            scheme: he.clone(),
            shape: vec![512, 512],
            layout: Layout::InOut,
            key: Key::new(0, format!("layers.{i}.weight")),
            ctx: ctx.clone(),
        })
        .collect();
    println!("rayon threads: {}", rayon::current_num_threads());
    let t = best_of(5, || fill_many(&jobs));
    println!(
        "he-normal, 50 x [512, 512] via fill_many: {t:.4} s ({:.2} ns/entry)",
        t * 1e9 / (50.0 * 512.0 * 512.0)
    );

    // As `normal_` on existing tensors: buffers allocated (and touched) outside the timing.
    let mut bufs = vec![vec![1f32; 512 * 512]; 50];
    let t = best_of(5, || {
        use rayon::prelude::*;
        bufs.par_iter_mut()
            .zip(&jobs)
            .try_for_each(|(b, j)| j.scheme.fill_into(b, &j.shape, j.layout, &j.key, &j.ctx))
    });
    println!(
        "he-normal, 50 x [512, 512] into existing buffers: {t:.4} s ({:.2} ns/entry)",
        t * 1e9 / (50.0 * 512.0 * 512.0)
    );

    let ortho: Scheme = "orthogonal".parse()?;
    let t = best_of(2, || {
        ortho.fill(&[4096, 4096], Layout::OutIn, &Key::new(0, "q"), &ctx)
    });
    println!("orthogonal [4096, 4096]: {t:.3} s");
    Ok(())
}
