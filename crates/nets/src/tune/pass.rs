//! MetaInit and GradInit on Burn: the objective's gradients and Hessian-vector products
//! through autodiff, and the steps on the weights' scales. Needs the `burn` feature.

use burn::tensor::{Device, Tensor, TensorData};
use sigprop_init::{GradInitOpt, GradInitParams, MetaInitParams};

use crate::arch::ResolvedNet;
use crate::build::{Declared, declare};
use crate::error::NetError;
use crate::forward::{Plain, upload};
use crate::handles::ParamId;
use crate::inputs::loss;
use crate::params::Params;
use crate::prune::read_grads;
use crate::stats::read_back;

use super::{TunedTensor, Tuning};

/// Run the network's meta-learned scheme on `params` in place (nothing for other schemes).
pub fn tune(
    net: &ResolvedNet,
    params: &mut Params,
    seed: u64,
    batch: usize,
    device: &Device,
) -> Result<Option<Tuning>, NetError> {
    let scheme = net.weight_init.clone();
    let obj = Objective::new(net, seed, batch, device);
    if let Some(m) = scheme.metainit() {
        return metainit(&obj, params, m).map(Some);
    }
    if let Some(g) = scheme.gradinit() {
        return gradinit(&obj, params, g).map(Some);
    }
    Ok(None)
}

/// The tuned tensors: two or more dimensions.
fn tuned_ids(params: &Params) -> Vec<usize> {
    (0..params.tensors.len())
        .filter(|&i| {
            let t = &params.tensors[i];
            t.shape.len() >= 2 && !crate::params::is_table(&t.path)
        })
        .collect()
}

fn scaled(base: &Params, ids: &[usize], scales: &[f64]) -> Params {
    let mut p = base.clone();
    for (&i, &s) in ids.iter().zip(scales) {
        p.tensors[i]
            .data
            .iter_mut()
            .for_each(|v| *v = (f64::from(*v) * s) as f32);
    }
    p
}

/// `params + d v` over every tensor.
fn shifted(params: &Params, v: &[Vec<f64>], d: f64) -> Params {
    let mut p = params.clone();
    for (t, v) in p.tensors.iter_mut().zip(v) {
        for (w, v) in t.data.iter_mut().zip(v) {
            *w = (f64::from(*w) + d * v) as f32;
        }
    }
    p
}

fn norm2(v: &[Vec<f64>]) -> f64 {
    v.iter().flatten().map(|x| x * x).sum::<f64>().sqrt()
}

fn params_norm(p: &Params) -> f64 {
    p.tensors
        .iter()
        .flat_map(|t| &t.data)
        .map(|&x| f64::from(x).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// The difference step along `v`: the largest entry of `v` moves by `rel` times the
/// weights' root mean square. A direction concentrated on a few entries (the quotient's `b`
/// sits on the entries whose gradient is near `eps`) then moves no entry by more than a
/// small fraction of a typical weight, and a spread one moves the weights by about
/// `rel / 4` of their norm.
fn fd_step(params: &Params, v: &[Vec<f64>], rel: f64) -> f64 {
    let n = params
        .tensors
        .iter()
        .map(|t| t.data.len())
        .sum::<usize>()
        .max(1);
    let rms = (params_norm(params) / (n as f64).sqrt()).max(1e-6);
    let vmax = v.iter().flatten().fold(0.0f64, |m, x| m.max(x.abs()));
    rel * rms / vmax
}

fn dot(a: &[f64], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(a, &b)| a * f64::from(b)).sum()
}

/// The gradient quotient of `g` and `h = H g`, and its partial derivatives `a` in `g` and
/// `b` in `h` (see [`Objective::quotient_slope`]); infinite where not finite.
fn quotient_terms(g: &[Vec<f64>], h: &[Vec<f64>], eps: f64) -> (f64, Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let n = g.iter().map(Vec::len).sum::<usize>().max(1) as f64;
    let mut sum = 0.0;
    let mut a = Vec::with_capacity(g.len());
    let mut b = Vec::with_capacity(g.len());
    for (g, h) in g.iter().zip(h) {
        let (mut at, mut bt) = (Vec::with_capacity(g.len()), Vec::with_capacity(g.len()));
        for (&g, &h) in g.iter().zip(h) {
            let e = if g >= 0.0 { eps } else { -eps };
            let d = g + e;
            let r = (g - h) / d - 1.0;
            sum += r.abs();
            let sr = if r == 0.0 { 0.0 } else { r.signum() };
            at.push(sr * (e + h) / (n * d * d));
            bt.push(-sr / (n * d));
        }
        a.push(at);
        b.push(bt);
    }
    let q = sum / n;
    (if q.is_finite() { q } else { f64::INFINITY }, a, b)
}

struct Objective<'a> {
    net: &'a ResolvedNet,
    declared: Declared,
    seed: u64,
    batch: usize,
    device: &'a Device,
}

impl<'a> Objective<'a> {
    fn new(net: &'a ResolvedNet, seed: u64, batch: usize, device: &'a Device) -> Self {
        Objective {
            net,
            declared: declare(net),
            seed,
            batch,
            device,
        }
    }

    /// The probe's loss averaged over batch `name` (input key `<name>.input`, targets under
    /// `<name>.loss`) and its gradient for every tensor, at `params`.
    fn grads(&self, params: &Params, name: &str) -> Result<(f64, Vec<Vec<f64>>), NetError> {
        let ad = self.device.clone().autodiff();
        let p = upload(params, &ad, true);
        let shape = self.net.config.arch.input_shape(self.net, self.batch);
        let x = Tensor::<2>::from_data(
            TensorData::new(
                {
                    let key = format!("{name}.input");
                    crate::build::net_input(self.net, self.seed, &key, shape, || {
                        self.net.config.arch.input_keyed(self.seed, &key, shape)
                    })?
                },
                shape,
            ),
            &ad,
        );
        let out = self.declared.layout.forward(self.net, &p, x, &mut Plain);
        let loss = loss(
            self.net.config.loss,
            &p,
            self.declared.head,
            out,
            self.seed,
            &format!("{name}.loss"),
            &ad,
        )?
        .div_scalar(self.batch as f32);
        let value = read_back(loss.clone(), "a tuning loss")?
            .first()
            .map_or(f64::NAN, |&v| f64::from(v));
        let g = loss.backward();
        let ids: Vec<ParamId> = (0..params.tensors.len()).map(ParamId).collect();
        Ok((value, read_grads(&p, &ids, &g, params)?))
    }

    /// `H v` at `params` on batch `name`, by a central difference of gradients (0 for
    /// `v = 0`).
    fn hvp(&self, params: &Params, v: &[Vec<f64>], name: &str) -> Result<Vec<Vec<f64>>, NetError> {
        let nv = norm2(v);
        if nv == 0.0 || !nv.is_finite() {
            return Ok(v.iter().map(|t| vec![0.0; t.len()]).collect());
        }
        let d = fd_step(params, v, 4e-3);
        let (_, gp) = self.grads(&shifted(params, v, d), name)?;
        let (_, gm) = self.grads(&shifted(params, v, -d), name)?;
        Ok(gp
            .iter()
            .zip(&gm)
            .map(|(a, b)| a.iter().zip(b).map(|(a, b)| (a - b) / (2.0 * d)).collect())
            .collect())
    }

    /// The gradient quotient at `params` on batch `name` (infinite where the pass is not
    /// finite: a worse value than any).
    fn quotient(&self, params: &Params, name: &str, eps: f64) -> Result<f64, NetError> {
        let (_, g) = self.grads(params, name)?;
        let hg = self.hvp(params, &g, name)?;
        Ok(quotient_terms(&g, &hg, eps).0)
    }

    /// The gradient quotient at `params` on batch `name` and its slope in the log-norm of
    /// each tensor `ids`, exact up to finite differences (what the authors' double
    /// backward gives). With `r_i = (g_i - h_i) / (g_i + e_i) - 1`, `h = H g`,
    /// `e_i = eps sign(g_i)` and `N` entries:
    ///
    /// `dGQ = a . dg + b . dh`, `a_i = sign(r_i) (e_i + h_i) / (N (g_i + e_i)^2)`,
    /// `b_i = -sign(r_i) / (N (g_i + e_i))`; `dg = H dw` and `dh = H H dw + T[dw, g]`
    /// (`T` the third derivative), so the slope in the weights is
    /// `G = H (a + H b) + T[b, g]`, and in tensor `t`'s log-norm `<G_t, w_t>`. `T[b, g]` is
    /// the mixed difference `(g(w+tg+sb) - g(w+tg-sb) - g(w-tg+sb) + g(w-tg-sb)) / (4ts)`:
    /// eleven passes in all.
    /// (`third` false leaves out `T[b, g]`: for the test that shows it matters.)
    fn quotient_slope(
        &self,
        params: &Params,
        ids: &[usize],
        name: &str,
        eps: f64,
        third: bool,
    ) -> Result<(f64, Vec<f64>), NetError> {
        let (_, g) = self.grads(params, name)?;
        let hg = self.hvp(params, &g, name)?;
        let (q, a, b) = quotient_terms(&g, &hg, eps);
        if !q.is_finite() {
            return Ok((f64::INFINITY, vec![0.0; ids.len()]));
        }
        let hb = self.hvp(params, &b, name)?;
        let a_hb: Vec<Vec<f64>> = a
            .iter()
            .zip(&hb)
            .map(|(a, h)| a.iter().zip(h).map(|(a, h)| a + h).collect())
            .collect();
        let mut total = self.hvp(params, &a_hb, name)?;
        let (ng, nb) = (norm2(&g), norm2(&b));
        if third && ng > 0.0 && nb > 0.0 && ng.is_finite() && nb.is_finite() {
            let (t, s) = (fd_step(params, &g, 4e-2), fd_step(params, &b, 4e-2));
            let at = |dt: f64, ds: f64| -> Result<Vec<Vec<f64>>, NetError> {
                Ok(self
                    .grads(&shifted(&shifted(params, &g, dt), &b, ds), name)?
                    .1)
            };
            let (pp, pm, mp, mm) = (at(t, s)?, at(t, -s)?, at(-t, s)?, at(-t, -s)?);
            for (k, tot) in total.iter_mut().enumerate() {
                for (i, v) in tot.iter_mut().enumerate() {
                    *v += (pp[k][i] - pm[k][i] - mp[k][i] + mm[k][i]) / (4.0 * t * s);
                }
            }
        }
        let slope = ids
            .iter()
            .map(|&i| dot(&total[i], &params.tensors[i].data))
            .collect();
        Ok((q, slope))
    }

    /// GradInit's objective and (with `slope`) its slope in the scales, at `base` scaled by
    /// `alpha`, on the batch pair `name` and `<name>.ahead`: `(objective, looked-ahead
    /// loss, ||g||, slope)`. Two passes, and two more for the slope except for Adam's step
    /// under the bound.
    fn gradinit_step(
        &self,
        base: &Params,
        ids: &[usize],
        alpha: &[f64],
        g_opt: &GradInitParams,
        name: &str,
        slope: bool,
    ) -> Result<(f64, f64, f64, Vec<f64>), NetError> {
        let theta = scaled(base, ids, alpha);
        let (_, g) = self.grads(&theta, name)?;
        let sign = |g: &[Vec<f64>]| -> Vec<Vec<f64>> {
            g.iter()
                .map(|t| {
                    t.iter()
                        .map(|&x| if x == 0.0 { 0.0 } else { x.signum() })
                        .collect()
                })
                .collect()
        };
        let gnorm = match g_opt.opt {
            GradInitOpt::Sgd => norm2(&g),
            GradInitOpt::Adam => g.iter().flatten().map(|x| x.abs()).sum(),
        };
        let slope_of = |v: &[Vec<f64>]| -> Vec<f64> {
            ids.iter()
                .map(|&i| dot(&v[i], &base.tensors[i].data))
                .collect()
        };
        let step = match g_opt.opt {
            GradInitOpt::Sgd => g.clone(),
            GradInitOpt::Adam => sign(&g),
        };
        let ahead = shifted(&theta, &step, -g_opt.eta);
        let (l_ahead, v) = self.grads(&ahead, &format!("{name}.ahead"))?;
        if !gnorm.is_finite() || !l_ahead.is_finite() {
            // An overflowing pass: shrink every scale.
            return Ok((f64::INFINITY, l_ahead, gnorm, vec![1.0; ids.len()]));
        }
        let objective = if gnorm > g_opt.gamma { gnorm } else { l_ahead };
        if !slope {
            return Ok((objective, l_ahead, gnorm, Vec::new()));
        }
        if gnorm > g_opt.gamma {
            // d||g||/dw = H (g / ||g||_2) for the 2-norm, H sign(g) for the 1-norm.
            let dir = match g_opt.opt {
                GradInitOpt::Sgd => g
                    .iter()
                    .map(|t| t.iter().map(|x| x / gnorm).collect())
                    .collect(),
                GradInitOpt::Adam => sign(&g),
            };
            let hv = self.hvp(&theta, &dir, name)?;
            return Ok((gnorm, l_ahead, gnorm, slope_of(&hv)));
        }
        let mut slope = slope_of(&v);
        if g_opt.opt == GradInitOpt::Sgd {
            let hv = self.hvp(&theta, &v, name)?;
            for (s, h) in slope.iter_mut().zip(slope_of(&hv)) {
                *s -= g_opt.eta * h;
            }
        }
        Ok((l_ahead, l_ahead, gnorm, slope))
    }
}

fn report(
    method: &'static str,
    steps: usize,
    params: &Params,
    ids: &[usize],
    scales: &[f64],
    metrics: Vec<(&'static str, f64, f64)>,
) -> Tuning {
    Tuning {
        method,
        steps,
        metrics,
        tensors: ids
            .iter()
            .zip(scales)
            .map(|(&i, &s)| TunedTensor {
                path: params.tensors[i].path.clone(),
                scale: s,
            })
            .collect(),
    }
}

fn metainit(obj: &Objective, params: &mut Params, m: &MetaInitParams) -> Result<Tuning, NetError> {
    let base = params.clone();
    let ids = tuned_ids(&base);
    let n = ids.len();
    let mut logs = vec![0.0f64; n];
    let mut velocity = vec![0.0; n];
    let before = obj.quotient(&base, "metainit.eval", m.eps)?;
    for t in 0..m.steps {
        let scales: Vec<f64> = logs.iter().map(|l| l.exp()).collect();
        let at = scaled(&base, &ids, &scales);
        let (q, slope) = obj.quotient_slope(&at, &ids, &format!("metainit.{t}"), m.eps, true)?;
        for ((l, v), s) in logs.iter_mut().zip(velocity.iter_mut()).zip(&slope) {
            // An overflowing pass (the quotient's, or a shifted one's): shrink the tensor.
            let sign = if !q.is_finite() || !s.is_finite() {
                1.0
            } else if *s == 0.0 {
                0.0
            } else {
                s.signum()
            };
            *v = m.momentum * *v - m.lr * sign;
            *l += *v;
        }
    }
    let scales: Vec<f64> = logs.iter().map(|l| l.exp()).collect();
    *params = scaled(&base, &ids, &scales);
    let after = obj.quotient(params, "metainit.eval", m.eps)?;
    Ok(report(
        "metainit",
        m.steps,
        params,
        &ids,
        &scales,
        vec![("gradient_quotient", before, after)],
    ))
}

fn gradinit(obj: &Objective, params: &mut Params, g: &GradInitParams) -> Result<Tuning, NetError> {
    let base = params.clone();
    let ids = tuned_ids(&base);
    let n = ids.len();
    let mut alpha = vec![1.0; n];
    let (mut m1, mut m2) = (vec![0.0; n], vec![0.0; n]);
    let (b1, b2) = (0.9f64, 0.999f64);
    let (_, ahead0, norm0, _) =
        obj.gradinit_step(&base, &ids, &alpha, g, "gradinit.eval", false)?;
    for t in 0..g.steps {
        let (_, _, _, slope) =
            obj.gradinit_step(&base, &ids, &alpha, g, &format!("gradinit.{t}"), true)?;
        let k = (t + 1) as i32;
        for i in 0..n {
            let s = if slope[i].is_finite() { slope[i] } else { 1.0 };
            m1[i] = b1 * m1[i] + (1.0 - b1) * s;
            m2[i] = b2 * m2[i] + (1.0 - b2) * s * s;
            let mh = m1[i] / (1.0 - b1.powi(k));
            let vh = m2[i] / (1.0 - b2.powi(k));
            alpha[i] = (alpha[i] - g.lr * mh / (vh.sqrt() + 1e-8)).max(g.alpha_min);
        }
    }
    let (_, ahead1, norm1, _) =
        obj.gradinit_step(&base, &ids, &alpha, g, "gradinit.eval", false)?;
    *params = scaled(&base, &ids, &alpha);
    Ok(report(
        "gradinit",
        g.steps,
        params,
        &ids,
        &alpha,
        vec![
            ("lookahead_loss", ahead0, ahead1),
            ("grad_norm", norm0, norm1),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{Arch, NetConfig};
    use crate::backend::{BackendKind, device};
    use crate::build::build_params;
    use crate::inputs::normal_input;
    use crate::options::Loss;

    fn net(depth: usize, width: usize, act: &str, init: &str, loss: Loss) -> ResolvedNet {
        let mut cfg = NetConfig::new(Arch::Mlp, depth, width, act, init);
        cfg.loss = loss;
        cfg.bias_init = "normal:std=0.1".into();
        cfg.resolve().unwrap()
    }

    /// A linear layer under the mean squared error is quadratic in its parameters:
    /// `L = |X W + 1 b - T|^2 / (2 B)`, so the loss, the gradient and `H v` have closed
    /// forms. The finite-difference `H v` must match them to f32 rounding, and the gradient
    /// quotient must be the formula applied to them.
    #[test]
    fn loss_gradient_and_hessian_vector_product_match_the_closed_form_of_a_linear_layer() {
        let (b, n) = (16, 8);
        let dev = device(BackendKind::Flex).unwrap();
        let net = net(1, n, "linear", "xavier-normal", Loss::Mse);
        let params = build_params(&net, 3).unwrap();
        assert_eq!(params.tensors.len(), 2);
        assert_eq!(params.tensors[0].shape, vec![n, n]);
        let obj = Objective::new(&net, 3, b, &dev);
        let x: Vec<f64> = normal_input(3, "t.input", [b, n])
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect();
        let t: Vec<f64> = normal_input(3, "t.loss.target", [b, n])
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect();
        let w: Vec<f64> = params.tensors[0]
            .data
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let bias: Vec<f64> = params.tensors[1]
            .data
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        // Residual R = X W + 1 b - T, [b, n]; gradient X^T R / B and 1^T R / B.
        let lin = |w: &[f64], bias: &[f64], with_t: bool| -> Vec<f64> {
            let mut r = vec![0.0; b * n];
            for i in 0..b {
                for o in 0..n {
                    let z: f64 = (0..n).map(|k| x[i * n + k] * w[k * n + o]).sum::<f64>() + bias[o];
                    r[i * n + o] = z - if with_t { t[i * n + o] } else { 0.0 };
                }
            }
            r
        };
        let back = |r: &[f64]| -> (Vec<f64>, Vec<f64>) {
            let mut gw = vec![0.0; n * n];
            let mut gb = vec![0.0; n];
            for i in 0..b {
                for o in 0..n {
                    gb[o] += r[i * n + o] / b as f64;
                    for k in 0..n {
                        gw[k * n + o] += x[i * n + k] * r[i * n + o] / b as f64;
                    }
                }
            }
            (gw, gb)
        };
        let r = lin(&w, &bias, true);
        let want_loss = r.iter().map(|v| v * v).sum::<f64>() / (2.0 * b as f64);
        let (gw, gb) = back(&r);
        let (loss, g) = obj.grads(&params, "t").unwrap();
        assert!(
            (loss - want_loss).abs() < 1e-5 * want_loss,
            "{loss} {want_loss}"
        );
        // The shifted weights are rounded to f32 (relative 6e-8) against a shift of 1e-3 of
        // their norm: about 1e-4 of H v, on top of the gradients' own rounding.
        let close = |a: &[f64], e: &[f64], what: &str| {
            let scale = e.iter().map(|v| v.abs()).fold(0.0, f64::max);
            for (a, e) in a.iter().zip(e) {
                assert!((a - e).abs() < 1e-3 * scale, "{what}: {a} vs {e}");
            }
        };
        close(&g[0], &gw, "dL/dW");
        close(&g[1], &gb, "dL/db");
        // H v = back(X V_W + 1 v_b) for the direction v = g.
        let (hw, hb) = back(&lin(&g[0], &g[1], false));
        let hg = obj.hvp(&params, &g, "t").unwrap();
        close(&hg[0], &hw, "(H g)_W");
        close(&hg[1], &hb, "(H g)_b");
        let eps = 1e-5;
        let (mut sum, mut count) = (0.0, 0);
        for (g, h) in gw.iter().chain(&gb).zip(hw.iter().chain(&hb)) {
            sum += ((g - h) / (g + if *g >= 0.0 { eps } else { -eps }) - 1.0).abs();
            count += 1;
        }
        let want = sum / count as f64;
        let got = obj.quotient(&params, "t", eps).unwrap();
        assert!((got - want).abs() < 1e-2 * want, "GQ {got} vs {want}");
    }

    /// GradInit's slope in the scales is exact up to the finite difference of gradients:
    /// it matches a central difference of the objective itself, in both regimes (the
    /// looked-ahead loss under the bound, the gradient norm above it) and for both
    /// looked-ahead optimizers where the objective is smooth.
    #[test]
    fn gradinit_slope_matches_a_finite_difference_of_its_objective() {
        let dev = device(BackendKind::Flex).unwrap();
        let net = net(3, 12, "tanh", "xavier-normal", Loss::Mse);
        let base = build_params(&net, 5).unwrap();
        let obj = Objective::new(&net, 5, 32, &dev);
        let ids = tuned_ids(&base);
        assert_eq!(ids.len(), 3);
        let alpha = vec![1.1, 0.8, 1.3];
        for (gamma, opt) in [
            (1e6, GradInitOpt::Sgd),
            (1e-3, GradInitOpt::Sgd),
            (1e-3, GradInitOpt::Adam),
        ] {
            let mut p = GradInitParams::new(sigprop_init::Scheme::XavierNormal { gain: 1.0 });
            p.gamma = gamma;
            p.opt = opt;
            // Large enough that a wrong sign of the -eta H v term fails the comparison.
            p.eta = 0.5;
            let (f0, _, _, slope) = obj
                .gradinit_step(&base, &ids, &alpha, &p, "s", true)
                .unwrap();
            assert!(f0.is_finite());
            let h = 1e-2;
            for i in 0..ids.len() {
                let at = |d: f64| {
                    let mut a = alpha.clone();
                    a[i] += d;
                    obj.gradinit_step(&base, &ids, &a, &p, "s", false)
                        .unwrap()
                        .0
                };
                let fd = (at(h) - at(-h)) / (2.0 * h);
                assert!(
                    (fd - slope[i]).abs() < 2e-2 * slope[i].abs().max(1e-2 * f0.abs()),
                    "gamma {gamma} {opt:?} tensor {i}: slope {} vs difference {fd}",
                    slope[i]
                );
            }
        }
    }

    /// MetaInit's slope of the gradient quotient in each log-norm (second and third
    /// derivatives by differences of gradients) matches a central difference of the
    /// quotient itself.
    #[test]
    fn metainit_slope_matches_a_finite_difference_of_the_gradient_quotient() {
        let dev = device(BackendKind::Flex).unwrap();
        let net = net(3, 12, "tanh", "xavier-normal", Loss::Mse);
        let base = build_params(&net, 7).unwrap();
        let obj = Objective::new(&net, 7, 32, &dev);
        let ids = tuned_ids(&base);
        let logs = [0.2f64, -0.1, 0.3];
        let at = |l: &[f64]| scaled(&base, &ids, &l.iter().map(|v| v.exp()).collect::<Vec<_>>());
        let eps = 1e-5;
        let (q, slope) = obj
            .quotient_slope(&at(&logs), &ids, "s", eps, true)
            .unwrap();
        let (_, no_third) = obj
            .quotient_slope(&at(&logs), &ids, "s", eps, false)
            .unwrap();
        let mut third_matters = false;
        assert!(q.is_finite() && q > 0.0);
        let h = 1e-3;
        for i in 0..ids.len() {
            let mut up = logs;
            up[i] += h;
            let mut down = logs;
            down[i] -= h;
            let fd = (obj.quotient(&at(&up), "s", eps).unwrap()
                - obj.quotient(&at(&down), "s", eps).unwrap())
                / (2.0 * h);
            let tol = 0.05 * slope[i].abs().max(0.05 * q);
            assert!(
                (fd - slope[i]).abs() < tol,
                "tensor {i}: slope {} vs difference {fd} (GQ {q})",
                slope[i]
            );
            third_matters |= (fd - no_third[i]).abs() > tol;
        }
        // The third-derivative term is not negligible: without it the slope fails the
        // same tolerance.
        assert!(third_matters, "{slope:?} vs {no_third:?}");
    }

    /// MetaInit lowers its own objective on the evaluation batch, and what it reports is
    /// what it did: every weight tensor is its base draw times the reported scale, biases
    /// are untouched.
    #[test]
    fn metainit_lowers_the_gradient_quotient_and_reports_the_scales_it_applied() {
        let dev = device(BackendKind::Flex).unwrap();
        // The authors' setting: cross-entropy on random labels.
        let net = net(6, 32, "tanh", "metainit:steps=60", Loss::CrossEntropy);
        let base = build_params(&net, 2).unwrap();
        let mut p = base.clone();
        let t = tune(&net, &mut p, 2, 64, &dev).unwrap().unwrap();
        assert_eq!(t.method, "metainit");
        let (name, before, after) = t.metrics[0];
        assert_eq!(name, "gradient_quotient");
        assert!(after < 0.5 * before, "GQ {before} -> {after}");
        // Six layers and the head.
        assert_eq!(t.tensors.len(), 7);
        for (i, (now, was)) in p.tensors.iter().zip(&base.tensors).enumerate() {
            match t.tensors.iter().find(|x| x.path == now.path) {
                Some(tt) => {
                    assert!(now.shape.len() >= 2, "{i}");
                    for (a, b) in now.data.iter().zip(&was.data) {
                        assert_eq!(*a, (f64::from(*b) * tt.scale) as f32);
                    }
                }
                None => assert_eq!(now.data, was.data, "{}", now.path),
            }
        }
    }

    /// GradInit does what it optimises: with a loose bound the looked-ahead loss falls;
    /// with a bound below the base gradient's norm, the norm ends at the bound (Adam's
    /// steps of `lr` make it hover there).
    #[test]
    fn gradinit_lowers_the_looked_ahead_loss_and_brings_the_gradient_under_its_bound() {
        let dev = device(BackendKind::Flex).unwrap();
        let net_with = |init: &str| net(4, 32, "tanh", init, Loss::Mse);
        let run = |init: &str| {
            let net = net_with(init);
            let mut p = build_params(&net, 1).unwrap();
            tune(&net, &mut p, 1, 64, &dev).unwrap().unwrap()
        };
        let loose = run("gradinit:steps=60,gamma=1000,eta=0.05");
        let (name, before, after) = loose.metrics[0];
        assert_eq!(name, "lookahead_loss");
        assert!(after < 0.95 * before, "{before} -> {after}");
        let norm0 = loose.metrics[1].1;
        let tight = run(&format!("gradinit:steps=100,gamma={}", norm0 / 2.0));
        let (_, n0, n1) = tight.metrics[1];
        assert!((n0 - norm0).abs() < 1e-9 * norm0);
        assert!(n1 < 0.55 * n0 && n1 > 0.3 * n0, "{n0} -> {n1}");
        assert!(
            tight
                .tensors
                .iter()
                .all(|t| t.scale >= 0.01 && t.scale < 1.0)
        );
    }
}
