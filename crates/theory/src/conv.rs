//! Mean-field predictions for a stack of zero-padded ("same") convolutions (Xiao et al.
//! 2018): with independent zero-mean kernel entries every output channel at pixel `p` is a
//! sum over the in-bounds taps of its receptive field, so the MLP's length map holds pixel by
//! pixel with the fan-in `k^2 c / groups` counted over the taps that exist:
//!
//! ```text
//! q^1(p)     = sigma_w2 n(p) / k^2 * E[x^2] + sigma_b2
//! q^(l+1)(p) = sigma_w2 / k^2 * sum_(o in K, p + o inside) E[phi(sqrt(q^l(p + o)) z)^2] + sigma_b2
//! ```
//!
//! `n(p)` the number of taps of pixel `p` inside the image (`k^2` away from the border).
//! Without padding (or with circular padding) every pixel would have the MLP's `q`; zero
//! padding starves the border, so the image-wide variance a pass measures, the mean over
//! pixels of `q^l(p)`, falls below the MLP's. Backward the same tap sums run the other way
//! (the kernel's taps are symmetric about its centre):
//!
//! ```text
//! Var(dL/dh^(l-1))(p) = sigma_w2 / k^2 * sum_(o in K, p - o inside) Var(dL/dz^l)(p - o)
//! Var(dL/dz^l)(p)     = E[phi'(z^l(p))^2] Var(dL/dh^l)(p)
//! ```
//!
//! and `Var(dL/dW^l) ~= batch * mean over taps o of sum_(p: p + o inside) E[h^(l-1)(p + o)^2]
//! Var(dL/dz^l)(p)`, each weight being used at every pixel.

use std::collections::HashMap;

use sigprop_init::Activation;

use crate::error::TheoryError;
use crate::moments::expect_preact;
use crate::predict::{LayerPrediction, SitePrediction, check_branches};

/// `E[phi]`, `E[phi^2]`, `E[phi'^2]` at `q`, each distinct `q` computed once (pixels with the
/// same border pattern share it).
struct Moments {
    act: Activation,
    memo: HashMap<u64, (f64, f64, f64)>,
}

impl Moments {
    fn at(&mut self, q: f64) -> (f64, f64, f64) {
        let act = self.act;
        *self.memo.entry(q.to_bits()).or_insert_with(|| {
            (
                expect_preact(act, q, |u| act.phi(u)),
                expect_preact(act, q, |u| act.phi(u).powi(2)),
                expect_preact(act, q, |u| act.dphi(u).powi(2)),
            )
        })
    }
}

/// One site's per-pixel `q` and its moments `(E[phi], E[phi^2], E[phi'^2])` there.
type PixelLayer = (Vec<f64>, Vec<(f64, f64, f64)>);

/// Each pixel's in-bounds neighbours `p + o` over the taps `o` of a `kernel x kernel`
/// window on an `image x image` grid, row-major (the same set as `p - o`: the taps are
/// symmetric about the centre).
fn taps(kernel: usize, image: usize) -> Vec<Vec<usize>> {
    let (s, half) = (image, (kernel / 2) as isize);
    (0..s * s)
        .map(|p| {
            let (r, c) = ((p / s) as isize, (p % s) as isize);
            let mut t = Vec::new();
            for dr in -half..=half {
                for dc in -half..=half {
                    let (rr, cc) = (r + dr, c + dc);
                    if (0..s as isize).contains(&rr) && (0..s as isize).contains(&cc) {
                        t.push(rr as usize * s + cc as usize);
                    }
                }
            }
            t
        })
        .collect()
}

/// The mean of `v`.
fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// `w2 / k2 * sum over the taps of p of f(tap)` at every pixel `p`, plus `plus`.
fn tap_sum(taps: &[Vec<usize>], w2: f64, k2: f64, plus: f64, f: impl Fn(usize) -> f64) -> Vec<f64> {
    taps.iter()
        .map(|t| w2 / k2 * t.iter().map(|&o| f(o)).sum::<f64>() + plus)
        .collect()
}

/// Mean-field predictions for `sigma_w2.len()` zero-padded `kernel x kernel` convolutions
/// over `image x image` pixels (every layer the same channels; groups change nothing in the
/// mean field), `sigma_w2[l]` layer `l + 1`'s entry variance times its fan-in
/// `kernel^2 channels / groups`. Each layer's prediction is the image-wide one a pass
/// measures: `preact_var` the mean over pixels of `q^l(p)`, `act_var` the variance of
/// `phi(z)` over pixels and channels together, `grad_var`, `act_grad_var` the means over
/// pixels, `wgrad_var` as the module documents (`batch` samples; `output_grad_var` is
/// `Var(dL/dh^depth)` at every pixel).
#[allow(clippy::too_many_arguments)]
pub fn predict_conv(
    act: Activation,
    sigma_w2: &[f64],
    sigma_b2: f64,
    kernel: usize,
    image: usize,
    batch: usize,
    input_second_moment: f64,
    output_grad_var: f64,
) -> Result<Vec<LayerPrediction>, TheoryError> {
    if sigma_w2.is_empty() {
        return Err(TheoryError::Empty { what: "sigma_w2" });
    }
    for (what, n) in [("kernel", kernel), ("image size", image), ("batch", batch)] {
        if n == 0 {
            return Err(TheoryError::Zero { what: what.into() });
        }
    }
    let s = image;
    let k2 = (kernel * kernel) as f64;
    let taps = taps(kernel, image);
    let mut mo = Moments {
        act,
        memo: HashMap::new(),
    };
    // Forward, pixel by pixel: q, and E[phi], E[phi^2], E[phi'^2] there.
    let depth = sigma_w2.len();
    let mut q: Vec<f64> = taps
        .iter()
        .map(|t| sigma_w2[0] * t.len() as f64 / k2 * input_second_moment + sigma_b2)
        .collect();
    let mut fwd: Vec<PixelLayer> = Vec::with_capacity(depth);
    for l in 0..depth {
        let m: Vec<(f64, f64, f64)> = q.iter().map(|&x| mo.at(x)).collect();
        let next: Vec<f64> = match sigma_w2.get(l + 1) {
            Some(&w2) => tap_sum(&taps, w2, k2, sigma_b2, |o| m[o].1),
            None => Vec::new(),
        };
        fwd.push((std::mem::replace(&mut q, next), m));
    }
    // Backward from Var(dL/dh^depth) = output_grad_var at every pixel.
    let mut layers: Vec<LayerPrediction> = Vec::with_capacity(depth);
    let mut a = vec![output_grad_var; s * s];
    let mut out = vec![None; depth];
    for l in (0..depth).rev() {
        let (q, m) = &fwd[l];
        let gz: Vec<f64> = a.iter().zip(m).map(|(a, m)| m.2 * a).collect();
        // E[h^(l-1)^2] at each pixel: the input's below the first layer.
        let h2: Vec<f64> = if l == 0 {
            vec![input_second_moment; s * s]
        } else {
            fwd[l - 1].1.iter().map(|m| m.1).collect()
        };
        // Each tap o: sum over pixels p with p + o inside of h2(p + o) gz(p); the tap sets
        // pair each pixel with its neighbours, so the sum over taps is over (p, neighbour).
        let pairs: f64 = taps
            .iter()
            .enumerate()
            .map(|(p, t)| gz[p] * t.iter().map(|&o| h2[o]).sum::<f64>())
            .sum();
        let m1 = mean(&m.iter().map(|m| m.0).collect::<Vec<_>>());
        let m2 = mean(&m.iter().map(|m| m.1).collect::<Vec<_>>());
        out[l] = Some(LayerPrediction {
            layer: l + 1,
            preact_var: mean(q),
            act_mean: m1,
            act_var: if m2.is_infinite() { m2 } else { m2 - m1 * m1 },
            act_second_moment: m2,
            grad_var: mean(&gz),
            act_grad_var: mean(&a),
            wgrad_var: batch as f64 * pairs / k2,
        });
        a = tap_sum(&taps, sigma_w2[l], k2, 0.0, |o| gz[o]);
    }
    layers.extend(out.into_iter().flatten());
    Ok(layers)
}

/// Mean-field predictions, forward and backward, for a pre-activation residual CNN of
/// zero-padded convolutions: the residual MLP's recursions (`predict_resmlp`) with every
/// branch map's variance the tap sum above, pixel by pixel. `sigma_w2` has one entry per
/// branch map (block-major), `m` maps a branch, `alpha2` the branch multiplier squared,
/// `shortcut` the skip. Sites `branch.i` and `out` per block, each the mean over pixels (the
/// activation's variance over pixels and channels together), in forward order.
#[allow(clippy::too_many_arguments)]
pub fn predict_rescnn(
    act: Activation,
    sigma_w2: &[f64],
    m: usize,
    sigma_b2: f64,
    alpha2: f64,
    shortcut: bool,
    kernel: usize,
    image: usize,
    batch: usize,
) -> Result<Vec<SitePrediction>, TheoryError> {
    check_branches(sigma_w2, m, sigma_b2, alpha2)?;
    for (what, n) in [("kernel", kernel), ("image size", image), ("batch", batch)] {
        if n == 0 {
            return Err(TheoryError::Zero { what: what.into() });
        }
    }
    let k2 = (kernel * kernel) as f64;
    let taps = taps(kernel, image);
    let pixels = image * image;
    let s2 = if shortcut { 1.0 } else { 0.0 };
    let mut mo = Moments {
        act,
        memo: HashMap::new(),
    };
    // Forward: per block, each branch site's per-pixel q and moments, and the stream's q.
    let mut q = vec![1.0; pixels];
    // Per block: its branch sites, and the stream's q after the add.
    let mut blocks: Vec<(Vec<PixelLayer>, Vec<f64>)> = Vec::new();
    for branch in sigma_w2.chunks(m) {
        let mut v = q.clone();
        let mut sites = Vec::with_capacity(m);
        for &w2 in branch {
            let mm: Vec<(f64, f64, f64)> = v.iter().map(|&x| mo.at(x)).collect();
            let next = tap_sum(&taps, w2, k2, sigma_b2, |o| mm[o].1);
            sites.push((std::mem::replace(&mut v, next), mm));
        }
        q = q.iter().zip(&v).map(|(q, v)| s2 * q + alpha2 * v).collect();
        blocks.push((sites, q.clone()));
    }
    // Backward from Var(dL/dx^depth) = 1 at every pixel.
    let nan = f64::NAN;
    let mut per_block: Vec<Vec<SitePrediction>> = Vec::with_capacity(blocks.len());
    let mut g = vec![1.0; pixels];
    for (k, (sites, stream)) in blocks.iter().enumerate().rev() {
        let mut out = Vec::with_capacity(m + 1);
        out.push(SitePrediction {
            block: k + 1,
            site: "out".into(),
            preact_var: mean(stream),
            act_var: mean(stream),
            grad_var: mean(&g),
            act_grad_var: mean(&g),
            wgrad_var: nan,
        });
        let mut gu: Vec<f64> = g.iter().map(|g| alpha2 * g).collect();
        for (i, (v, mm)) in sites.iter().enumerate().rev() {
            let w2 = sigma_w2[k * m + i];
            let dh = tap_sum(&taps, w2, k2, 0.0, |o| gu[o]);
            let gz: Vec<f64> = dh.iter().zip(mm).map(|(a, m)| m.2 * a).collect();
            let pairs: f64 = taps
                .iter()
                .enumerate()
                .map(|(p, t)| gu[p] * t.iter().map(|&o| mm[o].1).sum::<f64>())
                .sum();
            let (m1, m2) = (
                mean(&mm.iter().map(|m| m.0).collect::<Vec<_>>()),
                mean(&mm.iter().map(|m| m.1).collect::<Vec<_>>()),
            );
            out.push(SitePrediction {
                block: k + 1,
                site: format!("branch.{}", i + 1),
                preact_var: mean(v),
                act_var: m2 - m1 * m1,
                grad_var: mean(&gz),
                act_grad_var: mean(&dh),
                wgrad_var: batch as f64 * pairs / k2,
            });
            gu = gz;
        }
        g = g.iter().zip(&gu).map(|(g, b)| s2 * g + b).collect();
        out.reverse();
        per_block.push(out);
    }
    per_block.reverse();
    Ok(per_block.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predict::predict_mlp;

    #[test]
    fn a_one_pixel_kernel_is_the_mlp() {
        // 1x1 convolutions have no border: every pixel is an MLP unit.
        for act in [Activation::Tanh, Activation::Relu] {
            let c = predict_conv(act, &[1.7; 6], 0.1, 1, 5, 16, 1.0, 1.0).unwrap();
            let m = predict_mlp(act, &[1.7; 6], 0.1, &[8; 7], 16, 1.0, 1.0).unwrap();
            for (c, m) in c.iter().zip(&m) {
                for (x, y) in [
                    (c.preact_var, m.preact_var),
                    (c.act_var, m.act_var),
                    (c.grad_var, m.grad_var),
                    (c.act_grad_var, m.act_grad_var),
                    // 25 pixels each use the weight once.
                    (c.wgrad_var, 25.0 * m.wgrad_var),
                ] {
                    assert!(
                        (x - y).abs() < 1e-12 * y.abs().max(1.0),
                        "{act:?} {x} vs {y}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_one_pixel_kernel_residual_cnn_is_the_residual_mlp() {
        use crate::predict::predict_resmlp;
        for act in [Activation::Tanh, Activation::Relu] {
            let w2 = [1.7, 2.0, 0.5, 1.0, 1.3, 2.2];
            let c = predict_rescnn(act, &w2, 2, 0.1, 0.5, true, 1, 4, 16).unwrap();
            let m = predict_resmlp(act, &w2, 2, 0.1, 0.5, true, 1.0, 16, 1.0).unwrap();
            assert_eq!(c.len(), m.len());
            for (c, m) in c.iter().zip(&m) {
                assert_eq!((c.block, &c.site), (m.block, &m.site));
                for (x, y) in [
                    (c.preact_var, m.preact_var),
                    (c.act_var, m.act_var),
                    (c.grad_var, m.grad_var),
                    (c.act_grad_var, m.act_grad_var),
                    // 16 pixels each use the weight once.
                    (c.wgrad_var, 16.0 * m.wgrad_var),
                ] {
                    assert!(
                        (x - y).abs() < 1e-12 * y.abs().max(1.0) || (x.is_nan() && y.is_nan()),
                        "{act:?} {} {}: {x} vs {y}",
                        c.block,
                        c.site
                    );
                }
            }
        }
    }

    #[test]
    fn zero_padding_starves_the_border_of_a_linear_stack() {
        // Linear, sigma_w2 = 1, 3x3 on 3x3 pixels: taps 4 (corners), 6 (edges), 9 (centre).
        let p = predict_conv(Activation::Linear, &[1.0; 2], 0.0, 3, 3, 1, 1.0, 1.0).unwrap();
        let q1 = [4.0, 6.0, 4.0, 6.0, 9.0, 6.0, 4.0, 6.0, 4.0].map(|t: f64| t / 9.0);
        assert!((p[0].preact_var - q1.iter().sum::<f64>() / 9.0).abs() < 1e-14);
        // Layer 2 at the centre sums all of layer 1; at a corner its 4 nearest.
        let corner = (q1[0] + q1[1] + q1[3] + q1[4]) / 9.0;
        let edge = (q1[0] + q1[1] + q1[2] + q1[3] + q1[4] + q1[5]) / 9.0;
        let centre = q1.iter().sum::<f64>() / 9.0;
        let want = (4.0 * corner + 4.0 * edge + centre) / 9.0;
        assert!(
            (p[1].preact_var - want).abs() < 1e-14,
            "{} vs {want}",
            p[1].preact_var
        );
    }
}
