//! Turning a keyed [`Stream`] into uniform, normal and truncated-normal `f32` samples,
//! and filling a tensor chunk by chunk in parallel.
//!
//! Exactly how samples are drawn (the contract that makes a key's bits reproducible):
//!
//! - **Uniform** `U[low, high)`: `u = (next_u64 >> 11) * 2^-53`, `x = low + (high - low) u`
//!   in `f64`, rounded to the nearest `f32`. Rounding is monotone, so every sample lies in
//!   `[low as f32, high as f32]`.
//! - **Standard normal**: the 128-layer ziggurat of Marsaglia & Tsang (2000) in Doornik's
//!   (2005) formulation (`R = 3.442619855899`, `V = 9.91256303526217e-3`). One `next_u64`
//!   per attempt: its low 7 bits pick the layer, its upper 53 bits, read as a signed
//!   integer (arithmetic shift right by 11), give `u` in `[-1, 1)` in steps of `2^-52`. Rejections in a wedge draw one
//!   53-bit uniform; the tail (`|x| > R`, probability 5.4e-4) uses Marsaglia's exponential
//!   method with two 53-bit uniforms. The `f64` result is scaled, then rounded to `f32`.
//! - **Truncated normal** on `[-b, b]` (in standard deviations): standard normals by the
//!   ziggurat, rejected until `|z| <= b`; the `f32` result `(std z) as f32` lies within
//!   `(std b) as f32` exactly.
//!
//! A tensor's logical order is cut into chunks of [`CHUNK`] elements; chunk `c` draws from
//! stream `c` of the tensor's key, so the parallel fill equals the sequential one bit for bit.

use std::sync::OnceLock;

use rayon::prelude::*;

use crate::activation::{std_normal_cdf, std_normal_pdf};
use crate::rng::{CHUNK, Key, Stream};

const ZIG_LAYERS: usize = 128;
const ZIG_R: f64 = 3.442_619_855_899;
const ZIG_V: f64 = 9.912_563_035_262_17e-3;

/// The ziggurat's layer edges `x[i]` and acceptance ratios `x[i+1] / x[i]`.
struct Ziggurat {
    x: [f64; ZIG_LAYERS + 1],
    ratio: [f64; ZIG_LAYERS],
}

fn ziggurat() -> &'static Ziggurat {
    static TABLES: OnceLock<Ziggurat> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut x = [0.0; ZIG_LAYERS + 1];
        let mut f = (-0.5 * ZIG_R * ZIG_R).exp();
        x[0] = ZIG_V / f;
        x[1] = ZIG_R;
        for i in 2..ZIG_LAYERS {
            // Each layer has area V: x[i-1] (f(x[i]) - f(x[i-1])) = V.
            x[i] = (-2.0 * (ZIG_V / x[i - 1] + f).ln()).sqrt();
            f = (-0.5 * x[i] * x[i]).exp();
        }
        x[ZIG_LAYERS] = 0.0;
        let mut ratio = [0.0; ZIG_LAYERS];
        for i in 0..ZIG_LAYERS {
            ratio[i] = x[i + 1] / x[i];
        }
        Ziggurat { x, ratio }
    })
}

/// A standard normal sampler (holds the ziggurat tables).
#[derive(Clone, Copy)]
pub struct StandardNormal {
    z: &'static Ziggurat,
}

impl Default for StandardNormal {
    fn default() -> Self {
        StandardNormal { z: ziggurat() }
    }
}

impl std::fmt::Debug for StandardNormal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StandardNormal(ziggurat-128)")
    }
}

impl StandardNormal {
    /// One draw from N(0, 1), as described in the module doc.
    #[inline]
    pub fn sample(&self, rng: &mut Stream) -> f64 {
        let z = self.z;
        loop {
            let bits = rng.next_u64();
            let i = (bits & 0x7f) as usize;
            let u = ((bits as i64) >> 11) as f64 * (1.0 / (1u64 << 52) as f64);
            if u.abs() < z.ratio[i] {
                return u * z.x[i];
            }
            if i == 0 {
                return tail(rng, u < 0.0);
            }
            let x = u * z.x[i];
            let f0 = (-0.5 * (z.x[i] * z.x[i] - x * x)).exp();
            let f1 = (-0.5 * (z.x[i + 1] * z.x[i + 1] - x * x)).exp();
            if f1 + rng.uniform_f64() * (f0 - f1) < 1.0 {
                return x;
            }
        }
    }
}

/// Marsaglia's tail method beyond `R`.
#[cold]
fn tail(rng: &mut Stream, negative: bool) -> f64 {
    loop {
        let x = rng.uniform_open0().ln() / ZIG_R;
        let y = rng.uniform_open0().ln();
        if -2.0 * y >= x * x {
            return if negative { x - ZIG_R } else { ZIG_R - x };
        }
    }
}

/// The standard deviation of N(0, 1) truncated to `[-b, b]`:
/// `sqrt(1 - 2 b phi(b) / (2 Phi(b) - 1))`. At `b = 2` it is Keras' and JAX's constant
/// `0.87962566103423978`.
pub fn truncated_std(b: f64) -> f64 {
    (1.0 - 2.0 * b * std_normal_pdf(b) / (2.0 * std_normal_cdf(b) - 1.0)).sqrt()
}

/// Fill `out` (the logical order of one tensor) chunk by chunk: chunk `c` gets stream `c`
/// of `key`. Parallel over chunks; the result does not depend on the thread count.
pub fn fill_chunks<F>(key: &Key, out: &mut [f32], f: F)
where
    F: Fn(&mut Stream, &mut [f32]) + Sync,
{
    let base = key.base();
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(c, chunk)| {
            let mut s = Stream::new(base, c as u64);
            f(&mut s, chunk);
        });
}

/// `out[i] ~ N(mean, std^2)`, i.i.d.
pub fn fill_normal(key: &Key, out: &mut [f32], mean: f64, std: f64) {
    let n = StandardNormal::default();
    fill_chunks(key, out, |s, chunk| {
        for v in chunk {
            *v = (mean + std * n.sample(s)) as f32;
        }
    });
}

/// `out[i] ~ U[low, high)`, i.i.d.
pub fn fill_uniform(key: &Key, out: &mut [f32], low: f64, high: f64) {
    let width = high - low;
    fill_chunks(key, out, |s, chunk| {
        for v in chunk {
            *v = (low + width * s.uniform_f64()) as f32;
        }
    });
}

/// `out[i] = std z`, `z ~ N(0, 1)` conditioned on `|z| <= bound`, i.i.d.
pub fn fill_truncated_normal(key: &Key, out: &mut [f32], std: f64, bound: f64) {
    let n = StandardNormal::default();
    fill_chunks(key, out, |s, chunk| {
        for v in chunk {
            let z = loop {
                let z = n.sample(s);
                if z.abs() <= bound {
                    break z;
                }
            };
            *v = (std * z) as f32;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ziggurat_tables_close_at_zero() {
        let z = ziggurat();
        // The top layer, from x[127] up to f = 1 at x = 0, must also have area V: this
        // closes only when R and V are the matching pair.
        let top = z.x[ZIG_LAYERS - 1];
        let area = top * (1.0 - (-0.5 * top * top).exp());
        assert!(
            (area - ZIG_V).abs() < 1e-6 * ZIG_V,
            "top layer area {area} vs {ZIG_V}"
        );
    }

    #[test]
    fn ziggurat_passes_kolmogorov_smirnov_against_phi() {
        // n = 200_000; the 0.1% critical value of sqrt(n) D is 1.95.
        let n = 200_000;
        let mut v = vec![0f32; n];
        fill_normal(&Key::new(11, "ks"), &mut v, 0.0, 1.0);
        let mut x: Vec<f64> = v.iter().map(|&a| f64::from(a)).collect();
        x.sort_by(f64::total_cmp);
        let mut d: f64 = 0.0;
        for (i, &xi) in x.iter().enumerate() {
            let f = std_normal_cdf(xi);
            d = d
                .max((f - i as f64 / n as f64).abs())
                .max(((i + 1) as f64 / n as f64 - f).abs());
        }
        assert!(
            (n as f64).sqrt() * d < 1.95,
            "KS sqrt(n) D = {}",
            (n as f64).sqrt() * d
        );
        // The tail beyond R = 3.44 is reached, on both sides: P(|z| > 3.44) = 5.8e-4.
        let tails = x.iter().filter(|a| a.abs() > ZIG_R).count();
        assert!(tails > 60 && tails < 180, "{tails} tail samples");
    }

    #[test]
    fn keras_truncation_constant() {
        assert!((truncated_std(2.0) - 0.879_625_661_034_239_8).abs() < 1e-14);
    }

    #[test]
    fn uniform_and_truncated_bounds_hold_exactly() {
        let mut v = vec![0f32; 100_000];
        fill_uniform(&Key::new(1, "u"), &mut v, -0.3, 0.3);
        assert!(v.iter().all(|&a| (-0.3f32..=0.3f32).contains(&a)));
        fill_truncated_normal(&Key::new(1, "t"), &mut v, 0.7, 0.5);
        let b = (0.7f64 * 0.5) as f32;
        assert!(v.iter().all(|&a| a.abs() <= b));
        assert!(v.iter().any(|&a| a.abs() > 0.99 * b));
    }
}
