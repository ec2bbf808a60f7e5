//! Mean-field theory next to the measurement: which configurations it applies to, and the
//! per-layer predictions and chi_1 that go into the CSVs.
//!
//! The theory (THEORY.md) describes i.i.d. zero-mean weights and biases of known variance
//! in an MLP with the projection loss. It applies here when the weight and bias schemes
//! have an exact entry variance and zero mean (every variance-scaling family, orthogonal,
//! critical, normal, uniform, sparse; not LSUV, whose scale is data-driven). Elsewhere the
//! theory columns are left empty rather than filled with a prediction that does not hold.

use rayon::prelude::*;
use sigprop_init::{Fans, FillContext, Layout, fans};
use sigprop_nets::NORM_EPS;
use sigprop_nets::{Loss, ResolvedNet, TheoryKind};
use sigprop_spec::error::RunnerError;
use sigprop_spec::settings::RunSpec;
use sigprop_theory::{
    MeanField, Recurrent, SampleNorm, predict_conv, predict_mlp, predict_normalized_mlp,
    predict_rescnn, predict_resmlp, predict_resmlp_corr,
};

use crate::rows::{DensityRow, LayerRow, TheoryCols};

/// Fill the theory columns of a configuration's rows (any seeds): the mean-field
/// prediction at each row's site and layer, and, where the Jacobian was measured (its
/// columns are filled), the free-probability moments of its spectrum. Derived whenever rows
/// are read from the store, never stored.
pub fn fill_theory(spec: &RunSpec, rows: &mut [LayerRow]) -> Result<(), RunnerError> {
    let net = &spec.net;
    let sites: std::collections::HashMap<(String, usize), TheoryCols> =
        predictions(net, spec.batch)?
            .unwrap_or_default()
            .into_iter()
            .map(|t| ((t.site, t.layer), t.cols))
            .collect();
    let jacobian = match spec.jacobian {
        Some(_) => jacobian_theory(net)?,
        None => None,
    };
    for row in rows {
        let mut theory = sites
            .get(&(row.stats.site.clone(), row.stats.layer))
            .cloned()
            .unwrap_or_default();
        // Only the primary site's measured layers have Jacobian columns.
        if row.jacobian.jac_m1.is_some()
            && let Some(&(m1, var)) = jacobian
                .as_ref()
                .and_then(|j| j.get(row.stats.layer.wrapping_sub(1)))
        {
            // An overflow is a prediction (inf); a NaN (inf times a zero spread) is none.
            theory.theory_jac_m1 = (!m1.is_nan()).then_some(m1);
            theory.theory_jac_var = (!var.is_nan()).then_some(var);
        }
        row.theory = theory;
    }
    Ok(())
}

/// The weight variance times fan-in (sigma_w^2) per layer, and sigma_b^2, when the theory
/// applies to `net`.
pub fn theory_params(net: &ResolvedNet) -> Option<(Vec<f64>, f64)> {
    let cfg = &net.config;
    if matches!(
        cfg.arch.theory(cfg),
        TheoryKind::Recurrent | TheoryKind::TransformerStream
    ) {
        return None;
    }
    let mut ctx = theory_context(net)?;
    let mut sigma_w2 = Vec::with_capacity(cfg.depth);
    for l in 1..=cfg.depth {
        ctx.autoinit = net
            .autoinit
            .map(|p| if l == 1 { p.first } else { p.hidden });
        let f: Fans = match cfg.arch.theory(cfg).conv() {
            Some((kernel, groups)) => fans(
                &[cfg.width, cfg.width / groups.max(1), kernel, kernel],
                Layout::Conv { groups },
            )
            .ok()?,
            None => fans(&[net.widths[l - 1], net.widths[l]], Layout::InOut).ok()?,
        };
        sigma_w2.push(match delta_orthogonal_gain(net) {
            // Pixel by pixel the map is gain times an orthogonal matrix.
            Some(gain) => gain * gain,
            None => net.weight_init.centred_sigma2(f, &ctx)?,
        });
    }
    // The bias of every layer must have the same zero-mean variance (exact moments of the
    // 1-D bias tensor, whose fans can differ between layers).
    let mut sigma_b2: Option<f64> = None;
    for l in 1..=cfg.depth {
        let (n_in, n_out) = (net.widths[l - 1], net.widths[l]);
        // A convolution's bias takes its receptive field as both fans (nets' conv builder).
        let layout = match cfg.arch.theory(cfg).conv() {
            Some((kernel, groups)) => {
                let receptive = cfg.width / groups.max(1) * kernel * kernel;
                Layout::Bias {
                    fan_in: receptive,
                    fan_out: receptive,
                }
            }
            None => Layout::Bias {
                fan_in: n_in,
                fan_out: n_out,
            },
        };
        let var = net.bias_init.centred_bias_var(n_out, layout, &ctx)?;
        if sigma_b2.is_some_and(|v| (v - var).abs() > 1e-12 * v.max(1e-300)) {
            return None;
        }
        sigma_b2 = Some(var);
    }
    let sigma_b2 = sigma_b2?;
    Some((sigma_w2, sigma_b2))
}

/// The fill context of `net`'s weights, where the theory can apply at all: an architecture
/// it describes, the projection loss, weights that follow their scheme's law (not
/// data-driven, not pruned) and rows that are not centred (autoinit for sigmoid, softplus
/// follows another recursion).
fn theory_context(net: &ResolvedNet) -> Option<FillContext> {
    let cfg = &net.config;
    if cfg.arch.theory(cfg) == TheoryKind::None
        || cfg.loss != Loss::Projection
        || net.weight_init.data_driven()
        || net.prune.is_some_and(|p| p.sparsity > 0.0)
        || net.autoinit.is_some_and(|p| p.hidden.center)
    {
        return None;
    }
    let mut ctx = FillContext::new(net.activation);
    ctx.critical_sigma_w = net.critical_sigma_w;
    Some(ctx)
}

/// An RNN's mean field, and the spectrum of its recurrent weight where the Jacobian's
/// theory describes it: both weights zero-mean with an exact entry variance, the bias too,
/// and a recurrent weight that mixes the units (an identity or other structured `W_hh`
/// keeps each unit's own non-Gaussian history, which the Gaussian recursion does not
/// describe).
pub fn recurrent_setting(net: &ResolvedNet) -> Option<(Recurrent, sigprop_theory::WeightSpectrum)> {
    let cfg = &net.config;
    if cfg.arch.theory(cfg) != TheoryKind::Recurrent || net.autoinit.is_some() {
        return None;
    }
    let hidden = cfg.arch.recurrent_init()?;
    if hidden.data_driven() {
        return None;
    }
    let ctx = theory_context(net)?;
    let w = cfg.width;
    let f = fans(&[w, w], Layout::InOut).ok()?;
    let spectrum = weight_spectrum(hidden)?;
    let bias = Layout::Bias {
        fan_in: w,
        fan_out: w,
    };
    let rnn = Recurrent {
        activation: net.activation,
        sigma_ih2: net.weight_init.centred_sigma2(f, &ctx)?,
        sigma_hh2: hidden.centred_sigma2(f, &ctx)?,
        sigma_b2: net.bias_init.centred_bias_var(w, bias, &ctx)?,
        input_second_moment: 1.0,
    };
    Some((rnn, spectrum))
}

/// The theory columns of one site.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteTheory {
    /// Site name.
    pub site: String,
    /// Layer (block) index.
    pub layer: usize,
    /// The predictions.
    pub cols: TheoryCols,
}

/// Per-site predictions for `net` at `batch`: `None` where the theory does not apply; a
/// prediction that fails where it does apply is an error, not an empty column.
pub fn predictions(
    net: &ResolvedNet,
    batch: usize,
) -> Result<Option<Vec<SiteTheory>>, RunnerError> {
    let failed = |e: sigprop_theory::TheoryError| {
        RunnerError::Internal(format!(
            "mean-field prediction for {}: {e}",
            net.config.weight_init
        ))
    };
    let cfg = &net.config;
    if let Some((rnn, _)) = recurrent_setting(net) {
        let steps = rnn
            .predict(cfg.depth, cfg.width, batch, 1.0)
            .map_err(failed)?;
        return Ok(Some(sites_named(steps, "step")));
    }
    if cfg.arch.theory(cfg) == TheoryKind::TransformerStream {
        // Forward only, so any loss; the weights must follow their schemes' laws.
        if net.weight_init.data_driven() {
            return Ok(None);
        }
        return match cfg.arch.stream_theory(net) {
            Some(tf) => Ok(Some(residual_sites(tf.predict().map_err(failed)?))),
            None => Ok(None),
        };
    }
    let Some((sigma_w2, sigma_b2)) = theory_params(net) else {
        return Ok(None);
    };
    // The plain MLP's recursions over these layers (an MLP's, a delta-orthogonal CNN's).
    let plain = || {
        predict_mlp(
            net.activation,
            &sigma_w2,
            sigma_b2,
            &net.widths,
            batch,
            1.0,
            1.0,
        )
        .map_err(failed)
    };
    Ok(match cfg.arch.theory(cfg) {
        TheoryKind::None | TheoryKind::Recurrent | TheoryKind::TransformerStream => None,
        TheoryKind::Mlp => {
            let layers = plain()?;
            let corr = cfg
                .arch
                .input_pair_corr()
                .and_then(|c0| corr_map(net, &sigma_w2, sigma_b2, c0, &layers));
            let mut sites = mlp_sites(layers);
            if let Some(c) = corr {
                for (s, c) in sites.iter_mut().zip(c) {
                    s.cols.theory_corr = Some(c);
                }
            }
            Some(sites)
        }
        TheoryKind::SampleNormMlp { rms } => Some(mlp_sites(
            predict_normalized_mlp(
                net.activation,
                &sigma_w2,
                sigma_b2,
                &net.widths,
                batch,
                1.0,
                1.0,
                if rms {
                    SampleNorm::Rms
                } else {
                    SampleNorm::Layer
                },
                NORM_EPS,
            )
            .map_err(failed)?,
        )),
        TheoryKind::Conv {
            kernel, image_size, ..
        } => {
            // A delta-orthogonal kernel maps each pixel on its own: the MLP's recursions
            // with the channels as width, the weight's gradient summed over the pixels
            // each tap reaches.
            if delta_orthogonal_gain(net).is_some() {
                let mut layers = plain()?;
                let reach = tap_reach(kernel, image_size);
                for l in &mut layers {
                    l.wgrad_var *= reach;
                }
                return Ok(Some(sites_named(layers, net.config.arch.primary_site())));
            }
            // Other structured kernels (identity, Dirac) put their weight on some taps only:
            // the tap sums assume every tap alike.
            if net.weight_init.is_structured() {
                return Ok(None);
            }
            let layers = predict_conv(
                net.activation,
                &sigma_w2,
                sigma_b2,
                kernel,
                image_size,
                batch,
                1.0,
                1.0,
            )
            .map_err(failed)?;
            Some(sites_named(layers, net.config.arch.primary_site()))
        }
        TheoryKind::ResidualConv {
            branch_layers,
            alpha2,
            shortcut,
            kernel,
            image_size,
            ..
        } => {
            if net.weight_init.is_structured() {
                return Ok(None);
            }
            // Every branch map is [width, width/groups, k, k]: one sigma_w^2 for all.
            let w2 = vec![sigma_w2[0]; cfg.depth * branch_layers];
            Some(residual_sites(
                predict_rescnn(
                    net.activation,
                    &w2,
                    branch_layers,
                    sigma_b2,
                    alpha2,
                    shortcut,
                    kernel,
                    image_size,
                    batch,
                )
                .map_err(failed)?,
            ))
        }
        TheoryKind::Residual {
            branch_layers,
            alpha2,
            shortcut,
        } => {
            // Every branch map is [width, width]: one sigma_w^2 for all of them.
            let w2 = vec![sigma_w2[0]; cfg.depth * branch_layers];
            let predicted = predict_resmlp(
                net.activation,
                &w2,
                branch_layers,
                sigma_b2,
                alpha2,
                shortcut,
                1.0,
                batch,
                1.0,
            )
            .map_err(failed)?;
            // The residual c-map, from inputs at an exact cosine.
            let corr = match cfg.arch.input_pair_corr() {
                Some(c0) => Some(
                    predict_resmlp_corr(
                        net.activation,
                        &predicted,
                        &w2,
                        branch_layers,
                        sigma_b2,
                        alpha2,
                        shortcut,
                        c0,
                    )
                    .map_err(failed)?,
                ),
                None => None,
            };
            let mut sites = residual_sites(predicted);
            for (s, c) in sites.iter_mut().zip(corr.into_iter().flatten()) {
                s.cols.theory_corr = c.is_finite().then_some(c);
            }
            Some(sites)
        }
    })
}

/// A residual network's per-site predictions as theory columns (no weight at `out`).
fn residual_sites(sites: Vec<sigprop_theory::SitePrediction>) -> Vec<SiteTheory> {
    sites
        .into_iter()
        .map(|p| SiteTheory {
            site: p.site,
            layer: p.block,
            cols: TheoryCols {
                // NaN: no prediction (the transformer's gradients, softmax moments past
                // their range); an overflow (inf) is one.
                theory_preact_var: (!p.preact_var.is_nan()).then_some(p.preact_var),
                theory_act_var: (!p.act_var.is_nan()).then_some(p.act_var),
                theory_grad_var: (!p.grad_var.is_nan()).then_some(p.grad_var),
                theory_wgrad_var: p.wgrad_var.is_finite().then_some(p.wgrad_var),
                ..TheoryCols::default()
            },
        })
        .collect()
}

/// Per-layer predictions as the theory columns of the sites named `site` (a CNN's `conv`,
/// an RNN's `step`).
fn sites_named(layers: Vec<sigprop_theory::LayerPrediction>, site: &str) -> Vec<SiteTheory> {
    mlp_sites(layers)
        .into_iter()
        .map(|s| SiteTheory {
            site: site.into(),
            ..s
        })
        .collect()
}

/// An MLP's per-layer predictions as the theory columns of its `layer` sites.
fn mlp_sites(layers: Vec<sigprop_theory::LayerPrediction>) -> Vec<SiteTheory> {
    layers
        .into_iter()
        .map(|p| SiteTheory {
            site: "layer".into(),
            layer: p.layer,
            cols: TheoryCols {
                theory_preact_var: Some(p.preact_var),
                theory_act_var: Some(p.act_var),
                theory_grad_var: Some(p.grad_var),
                theory_wgrad_var: Some(p.wgrad_var),
                ..TheoryCols::default()
            },
        })
        .collect()
}

/// The one-layer mean field of a network whose layers share one `sigma_w2` (`None` if
/// they do not).
fn uniform_mean_field(net: &ResolvedNet, sigma_w2: &[f64], sigma_b2: f64) -> Option<MeanField> {
    // The first layer only sets q^1 (autoinit's reads the input): the map that repeats, and
    // its fixed point, are those of the later layers.
    let sigma_w2 = if sigma_w2.len() > 1 {
        &sigma_w2[1..]
    } else {
        sigma_w2
    };
    let w2 = *sigma_w2.first()?;
    if sigma_w2.iter().any(|&s| (s - w2).abs() > 1e-12 * w2) {
        return None;
    }
    Some(MeanField {
        activation: net.activation,
        sigma_w2: w2,
        sigma_b2,
    })
}

/// chi_1 at the fixed point, for equal-variance layers, where the theory applies.
pub fn chi1(net: &ResolvedNet) -> Option<f64> {
    if let Some((rnn, _)) = recurrent_setting(net) {
        // Chen et al. 2018's chi of a time step: sigma_hh2 E[phi'^2] at the q* the steps
        // reach from q_1 = the drive (h_0 = 0).
        let mf = rnn.step_map();
        let q = mf.q_star_from(rnn.drive())?;
        let c = mf.chi1_at(q);
        return c.is_finite().then_some(c);
    }
    if net.config.arch.theory(&net.config) != TheoryKind::Mlp {
        return None;
    }
    let (sigma_w2, sigma_b2) = theory_params(net)?;
    let mf = uniform_mean_field(net, &sigma_w2, sigma_b2)?;
    mf.q_star()?;
    let c = mf.chi1();
    c.is_finite().then_some(c)
}

/// The c-map's fixed point `c*` and depth scale `xi_c` of an MLP with equal-variance layers,
/// where they exist.
pub fn corr_fixed_point(net: &ResolvedNet) -> Option<(f64, f64)> {
    if net.config.arch.theory(&net.config) != TheoryKind::Mlp {
        return None;
    }
    let (sigma_w2, sigma_b2) = theory_params(net)?;
    // Without a bias, a homogeneous phi's c-map does not depend on q: the identity for a
    // linear network, a map of slope 1 at c = 1 for ReLU (a power-law approach), so no
    // exponential depth scale exists.
    if sigma_b2 == 0.0
        && matches!(
            net.activation,
            sigprop_init::Activation::Linear
                | sigprop_init::Activation::Relu
                | sigprop_init::Activation::LeakyRelu { .. }
                | sigprop_init::Activation::TatLeakyRelu { .. }
        )
    {
        return None;
    }
    let mf = uniform_mean_field(net, &sigma_w2, sigma_b2)?;
    mf.q_star()?;
    let c = mf.c_star();
    c.is_finite().then(|| (c, mf.xi_c()))
}

/// The free-probability moments of the Jacobian at each layer `l` (`(m1, var)` of the
/// eigenvalues of `J J^T`, docs/theory.md) of an MLP of equal widths whose weights have
/// independent entries or are scaled orthogonal, of an RNN (through time) and of a
/// delta-orthogonal CNN (pixel by pixel); `None` elsewhere.
pub fn jacobian_theory(net: &ResolvedNet) -> Result<Option<Vec<(f64, f64)>>, RunnerError> {
    let failed =
        |e: sigprop_theory::TheoryError| RunnerError::Internal(format!("Jacobian prediction: {e}"));
    let p = if let Some((rnn, spectrum)) = recurrent_setting(net) {
        rnn.jacobian(net.config.depth, spectrum).map_err(failed)?
    } else {
        let Some((sigma_w2, sigma_b2, spectrum)) = jacobian_setting(net) else {
            return Ok(None);
        };
        sigprop_theory::predict_jacobian(net.activation, &sigma_w2, sigma_b2, 1.0, spectrum)
            .map_err(failed)?
    };
    Ok(Some(p.iter().map(|j| (j.m1, j.var)).collect()))
}

/// Points of each layer's density in `spectrum_theory.csv`.
pub const DENSITY_POINTS: usize = 400;

/// The free-probability density of the singular values at each of `layers` (where it is a
/// curve: linear and ReLU MLPs of equal widths, and delta-orthogonal CNNs, whose blocks per
/// pixel are such MLPs; see `sigprop_theory::jacobian_density`),
/// [`DENSITY_POINTS`] points a layer, the solver's grid four times finer.
pub fn jacobian_density_rows(net: &ResolvedNet, layers: &[usize]) -> Vec<DensityRow> {
    let Some((sigma_w2, sigma_b2, spectrum)) = jacobian_setting(net) else {
        return Vec::new();
    };
    // Layers in parallel (each density is a sequential sweep), collected in order.
    let per: Vec<Vec<DensityRow>> = layers
        .par_iter()
        .map(|&l| {
            let Some(w) = sigma_w2.get(..l) else {
                return Vec::new();
            };
            let points = 4 * DENSITY_POINTS;
            let Some(d) =
                sigprop_theory::jacobian_density(net.activation, w, sigma_b2, spectrum, points)
            else {
                return Vec::new();
            };
            let dens = d.log10_sv_density();
            d.lambda
                .iter()
                .zip(&dens)
                .step_by(4)
                .map(|(&x, &p)| DensityRow {
                    layer: l,
                    log10_sv: 0.5 * x.log10(),
                    density: p,
                    atom_at_zero: d.atom_at_zero,
                })
                .collect()
        })
        .collect();
    per.into_iter().flatten().collect()
}

/// The per-layer `sigma_w^2`, `sigma_b^2` and weight spectrum of an MLP of equal widths whose
/// Jacobian the free-probability theory describes.
fn jacobian_setting(net: &ResolvedNet) -> Option<(Vec<f64>, f64, sigprop_theory::WeightSpectrum)> {
    if net.widths.windows(2).any(|w| w[0] != w[1]) {
        return None;
    }
    // A delta-orthogonal CNN's Jacobian is block-diagonal over the pixels, each block an
    // orthogonal MLP's (Xiao et al. 2018).
    if delta_orthogonal_gain(net).is_some() {
        let (sigma_w2, sigma_b2) = theory_params(net)?;
        return Some((
            sigma_w2,
            sigma_b2,
            sigprop_theory::WeightSpectrum::Orthogonal,
        ));
    }
    mlp_setting(net)
}

/// The gain of a plain CNN (one channel group) whose kernels are delta-orthogonal: each
/// pixel's channels then go through `gain` times an orthogonal matrix, alone.
fn delta_orthogonal_gain(net: &ResolvedNet) -> Option<f64> {
    match (net.config.arch.theory(&net.config), &net.weight_init) {
        (TheoryKind::Conv { groups: 1, .. }, sigprop_init::Scheme::DeltaOrthogonal { gain }) => {
            Some(*gain)
        }
        _ => None,
    }
}

/// The mean over a `kernel x kernel` window's taps of the pixels of an `image x image`
/// zero-padded image the tap reaches inside: `(sum_(|d| <= h) max(0, image - |d|))^2 / k^2`,
/// `h = k / 2` (`(image k - h (h + 1))^2 / k^2` while `h <= image`).
fn tap_reach(kernel: usize, image: usize) -> f64 {
    let h = (kernel / 2) as isize;
    let per_axis: f64 = (-h..=h)
        .map(|d| (image as isize - d.abs()).max(0) as f64)
        .sum();
    per_axis * per_axis / (kernel * kernel) as f64
}

/// The finite-width mean and variance of one input's log gain `ln(|z^L|^2 / |z^1|^2)`
/// (sigprop_theory::log_gain) of a plain MLP with independent weight entries, fed the
/// `N(0, 1)` inputs of THEORY.md; `None` elsewhere (orthogonal or structured weights keep
/// norms without the chi-squared spread the theory counts).
pub fn log_gain_theory(net: &ResolvedNet) -> Option<sigprop_theory::LogGain> {
    let (sigma_w2, sigma_b2, spectrum) = mlp_setting(net)?;
    if spectrum != sigprop_theory::WeightSpectrum::Iid {
        return None;
    }
    sigprop_theory::log_gain(net.activation, &sigma_w2, sigma_b2, &net.widths, 1.0)
}

/// The per-layer `sigma_w^2`, `sigma_b^2` and weight spectrum of a plain MLP whose weights
/// have independent entries or are scaled orthogonal.
fn mlp_setting(net: &ResolvedNet) -> Option<(Vec<f64>, f64, sigprop_theory::WeightSpectrum)> {
    if net.config.arch.theory(&net.config) != TheoryKind::Mlp {
        return None;
    }
    let (sigma_w2, sigma_b2) = theory_params(net)?;
    Some((sigma_w2, sigma_b2, weight_spectrum(&net.weight_init)?))
}

/// The spectrum family of a weight drawn by `scheme`: scaled orthogonal, or independent
/// entries; `None` for weights on chosen entries (identity, Dirac, delta-orthogonal,
/// constants).
fn weight_spectrum(scheme: &sigprop_init::Scheme) -> Option<sigprop_theory::WeightSpectrum> {
    use sigprop_init::{CriticalDistribution, Scheme};
    use sigprop_theory::WeightSpectrum;
    Some(match scheme {
        Scheme::Orthogonal { .. } => WeightSpectrum::Orthogonal,
        s if matches!(s.is_critical(), Some((_, CriticalDistribution::Orthogonal))) => {
            WeightSpectrum::Orthogonal
        }
        s if s.is_structured() || matches!(s, Scheme::Zeros) => return None,
        _ => WeightSpectrum::Iid,
    })
}

/// The correlation of the pairs' pre-activations at each layer from the c-map (Poole et al.
/// 2016): `c^1 = (sigma_w2 c0 + sigma_b2) / q^1` from inputs of second moment 1 at cosine
/// `c0`, then `c^(l+1) = c_map(c^l, q^l)`. Layers after the first of equal `sigma_w2` only.
fn corr_map(
    net: &ResolvedNet,
    sigma_w2: &[f64],
    sigma_b2: f64,
    c0: f64,
    layers: &[sigprop_theory::LayerPrediction],
) -> Option<Vec<f64>> {
    let mf = uniform_mean_field(net, sigma_w2, sigma_b2)?;
    let w1 = *sigma_w2.first()?;
    let mut c = (w1 * c0 + sigma_b2) / (w1 + sigma_b2);
    let mut out = Vec::with_capacity(layers.len());
    for l in layers {
        out.push(c);
        c = mf.c_map(c, l.preact_var);
    }
    out.iter().all(|c| c.is_finite()).then_some(out)
}
