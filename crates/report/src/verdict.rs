//! The verdict of a configuration and the ranking of several, from the trends that
//! trend.rs fits. The rule (docs/verdicts.md explains it for users), first match wins:
//! `diverged` (any NaN or Inf in any seed); `collapsed` (at the last layer more than 99% of
//! units are dead, Var(h) is exactly 0, the tokens of a sequence have merged (their cosine
//! `token_cos` is at least [`MERGE_COS`] over the seeds' interval, from inputs that were not
//! alike), or the inputs merge: the across-batch share of the variance
//! `act_batch_var / act_var` is below [`COLLAPSE_SHARE`] *and* falls exponentially with
//! depth, rather than slowly as ReLU nets correlate at any depth);
//! `exploding` / `vanishing` (forward variance exponential); `exploding-gradients` /
//! `vanishing-gradients` (forward not exponential, backward is); `critical` (a power law in
//! either direction, nothing exponential); else `stable`. [`rank`] orders by the verdict's
//! class, then by the larger per-layer |rate|; neighbours whose intervals overlap tie.

use sigprop_spec::format::fmt_num;

use crate::labels::{Form, Verdict};
use crate::rows::{ConfigKey, SummaryRow};
use crate::trend::Trend;

/// Below this across-batch share of the activation variance at the last layer, with
/// exponential decay, the inputs have merged: `collapsed`.
pub const COLLAPSE_SHARE: f64 = 0.01;

/// Above this fraction of dead units at the last layer, the network is `collapsed`.
pub const DEAD_LIMIT: f64 = 0.99;

/// At or above this cosine at the last layer (the lower end of the seeds' interval), tokens
/// that started apart have merged: `collapsed`.
pub const MERGE_COS: f64 = 0.99;

/// How alike the primary site's tokens have become with depth (a sequence model).
#[derive(Debug, Clone)]
pub struct TokenMerge {
    /// `token_cos` at the last layer: the seed mean.
    pub cos_last: f64,
    /// The lower end of its 95% interval over seeds (the mean for one seed).
    pub cos_lo: f64,
    /// The cosine the input tokens were built with (0 for independent ones).
    pub input_cos: f64,
    /// The first layer from which the seed mean stays at or above [`MERGE_COS`].
    pub merged_from: Option<usize>,
    /// ln change per layer of `1 - token_cos`, over the layers from the first where it is
    /// still above the f32 floor.
    pub rate: f64,
    /// `token_rank` at the last layer; NaN unmeasured.
    pub rank_last: f64,
}

impl TokenMerge {
    /// The tokens' collapse and its detail, if they merged: at the last layer their cosine
    /// is at least [`MERGE_COS`] over the seeds' interval, from tokens built less alike.
    /// Whatever the shape of the approach: attention averages the tokens of a sequence,
    /// doubly exponentially without skips (Dong et al. 2021). Input pairs are not judged
    /// this way: a ReLU network's `corr` passes 0.99 by depth 50 on a power law and still
    /// tells its inputs apart (the across-batch share decides that).
    fn collapse(&self, axis: &str, at: usize) -> Option<String> {
        if self.cos_lo < MERGE_COS || self.input_cos >= MERGE_COS {
            return None;
        }
        let mut parts = vec![format!(
            "token_cos {} at {axis} {at}",
            fmt_num(self.cos_last)
        )];
        if let Some(from) = self.merged_from {
            parts[0].push_str(&format!(", >= {MERGE_COS} from {axis} {from}"));
        }
        if self.rank_last.is_finite() {
            parts.push(format!("token_rank {}", fmt_num(self.rank_last)));
        }
        if self.rate.is_finite() && self.rate < 0.0 {
            parts.push(format!(
                "depth scale {} {axis}s",
                fmt_num(1.0 / self.rate.abs())
            ));
        }
        Some(format!("collapsed (tokens merge: {})", parts.join("; ")))
    }
}

/// What the verdict is decided from (one configuration, primary site).
#[derive(Debug, Clone)]
pub struct Measured {
    /// Forward trend of Var(z).
    pub fwd: Trend,
    /// Backward trend of Var(dL/dz) (growth toward the input).
    pub bwd: Trend,
    /// Var(z) last / first (seed means).
    pub fwd_ratio: f64,
    /// Var(dL/dz) first / last (seed means).
    pub bwd_ratio: f64,
    /// Layers in the series.
    pub layers: usize,
    /// The last layer's index.
    pub last_layer: usize,
    /// dead_frac at the last layer.
    pub dead_last: f64,
    /// act_var at the last layer.
    pub act_var_last: f64,
    /// act_batch_var / act_var at the last layer.
    pub share_last: f64,
    /// Shape of that share against depth.
    pub share_form: Form,
    /// ln change per layer of that share.
    pub share_rate: f64,
    /// See [`SummaryRow::first_nonfinite_layer`].
    pub first_nonfinite_layer: Option<usize>,
    /// Seeds with a non-finite value.
    pub nonfinite_seeds: usize,
    /// Seeds run.
    pub seeds: usize,
    /// Mean-field chi_1 where it applies.
    pub chi1: Option<f64>,
    /// The tokens' merging, for a sequence model.
    pub tokens: Option<TokenMerge>,
    /// `corr` and `act_rank` at the last layer, as the detail of merged inputs shows them
    /// (`; corr C, act_rank R`; empty where not measured).
    pub pairs_note: String,
    /// What a layer is (`layer`, `block`, ...), for the detail.
    pub axis: &'static str,
    /// The finite-width yardstick of the forward drift, where its theory applies: the
    /// expected ln(Var(z) last / first) and the half-width (2 sd over the seeds) that
    /// finite width gives it.
    pub finite_width: Option<(f64, f64)>,
}

impl Measured {
    /// The verdict and its one-line explanation.
    pub fn verdict(&self) -> (Verdict, String) {
        let n = self.layers;
        if let Some(l) = self.first_nonfinite_layer {
            return (
                Verdict::Diverged,
                format!(
                    "diverged (non-finite from layer {l} in {} of {} seeds)",
                    self.nonfinite_seeds, self.seeds
                ),
            );
        }
        let at = self.last_layer;
        if self.dead_last > DEAD_LIMIT {
            return (
                Verdict::Collapsed,
                format!(
                    "collapsed ({}% of units dead at layer {at})",
                    fmt_num(100.0 * self.dead_last)
                ),
            );
        }
        if self.act_var_last == 0.0 || self.fwd_ratio.is_nan() {
            return (
                Verdict::Collapsed,
                format!("collapsed (Var(h) is exactly 0 at layer {at})"),
            );
        }
        if let Some(detail) = self.tokens.as_ref().and_then(|t| t.collapse(self.axis, at)) {
            return (Verdict::Collapsed, detail);
        }
        if self.share_last < COLLAPSE_SHARE
            && self.share_form == Form::Exponential
            && self.share_rate < 0.0
        {
            return (
                Verdict::Collapsed,
                format!(
                    "collapsed (inputs merge: across-batch variance {}% of Var(h) at layer {at}, \
                     depth scale {} layers{})",
                    fmt_num(100.0 * self.share_last),
                    fmt_num(1.0 / self.share_rate.abs()),
                    self.pairs_note
                ),
            );
        }
        let theory = match self.chi1 {
            Some(c) if c > 0.0 && (c - 1.0).abs() > 1e-9 => {
                format!(", theory {}", fmt_num(1.0 / c.ln().abs()))
            }
            _ => String::new(),
        };
        let exp_detail = |what: &str, ratio: f64, t: &Trend| {
            format!(
                "{what} (x{} over {n} layers; depth scale {} layers{theory})",
                fmt_num(ratio),
                fmt_num(t.depth_scale())
            )
        };
        if self.fwd.form == Form::Exponential {
            let v = if self.fwd.rate > 0.0 {
                Verdict::Exploding
            } else {
                Verdict::Vanishing
            };
            return (v, exp_detail(v.name(), self.fwd_ratio, &self.fwd));
        }
        if self.bwd.form == Form::Exponential {
            let (v, word) = if self.bwd.rate > 0.0 {
                (Verdict::ExplodingGradients, "exploding gradients")
            } else {
                (Verdict::VanishingGradients, "vanishing gradients")
            };
            return (v, exp_detail(word, self.bwd_ratio, &self.bwd));
        }
        let power = |name: &str, t: &Trend| {
            (t.form == Form::PowerLaw).then(|| format!("{name} ~ l^{}", fmt_num(t.power)))
        };
        let laws: Vec<String> = [power("Var(z)", &self.fwd), power("Var(dL/dz)", &self.bwd)]
            .into_iter()
            .flatten()
            .collect();
        if !laws.is_empty() {
            let decays = [&self.fwd, &self.bwd]
                .iter()
                .any(|t| t.form == Form::PowerLaw && t.total() < 0.0);
            let kind = if decays { "decay" } else { "growth" };
            return (
                Verdict::Critical,
                format!("critical (power-law {kind}: {})", laws.join(", ")),
            );
        }
        let yardstick = self.finite_width.map_or(String::new(), |(expected, half)| {
            let drift = self.fwd_ratio.ln();
            let word = if (drift - expected).abs() <= half {
                "within"
            } else {
                "beyond"
            };
            format!(
                "; Var(z) drift {word} finite width: ln x{} = {}, theory {} +- {} over {} seeds",
                fmt_num(self.fwd_ratio),
                fmt_num(drift),
                fmt_num(expected),
                fmt_num(half),
                self.seeds
            )
        });
        (
            Verdict::Stable,
            format!(
                "stable (Var(z) x{}, Var(dL/dz) x{} over {n} layers{yardstick})",
                fmt_num(self.fwd_ratio),
                fmt_num(self.bwd_ratio)
            ),
        )
    }
}

/// The interval of a configuration's ranking key: the larger per-layer |rate| of its two
/// directions (each from its seed interval; the point twice for one seed).
fn severity(s: &SummaryRow) -> (f64, f64) {
    let trend = |rate: f64, lo: Option<f64>, hi: Option<f64>, form: Form| Trend {
        rate,
        rate_ci: lo.zip(hi),
        power: f64::NAN,
        span: 1.0,
        form,
    };
    let f = trend(s.fwd_log_slope, s.fwd_slope_lo, s.fwd_slope_hi, s.fwd_form).abs_interval();
    let b = trend(s.bwd_log_slope, s.bwd_slope_lo, s.bwd_slope_hi, s.bwd_form).abs_interval();
    (f.0.max(b.0), f.1.max(b.1))
}

/// Rank configurations: by verdict class, then by the larger per-layer |rate| of the two
/// directions (all configurations of one report share a depth only by convention, so the
/// rate, not the total, is compared). Returns (rank, row) in order; a configuration whose
/// class matches the previous rank's first member and whose rate interval overlaps it
/// shares that rank (a tie within the seeds' spread).
pub fn rank(summaries: &[(ConfigKey, SummaryRow)]) -> Vec<(usize, &(ConfigKey, SummaryRow))> {
    let key = |s: &SummaryRow| {
        let (lo, hi) = severity(s);
        let mid = if lo.is_finite() && hi.is_finite() {
            0.5 * (lo + hi)
        } else {
            f64::INFINITY
        };
        (s.verdict.class(), mid)
    };
    let mut v: Vec<&(ConfigKey, SummaryRow)> = summaries.iter().collect();
    v.sort_by(|a, b| {
        let (ka, kb) = (key(&a.1), key(&b.1));
        ka.0.cmp(&kb.0)
            .then(ka.1.total_cmp(&kb.1))
            .then(a.0.config.cmp(&b.0.config))
    });
    let mut out: Vec<(usize, &(ConfigKey, SummaryRow))> = Vec::with_capacity(v.len());
    let mut leader: Option<&SummaryRow> = None;
    for (i, item) in v.into_iter().enumerate() {
        let s = &item.1;
        let tied = leader.is_some_and(|l| {
            let (a, b) = (severity(l), severity(s));
            l.verdict.class() == s.verdict.class()
                && a.0.is_finite()
                && b.0.is_finite()
                && a.0 <= b.1
                && b.0 <= a.1
        });
        let r = if tied {
            out.last().map_or(1, |p| p.0)
        } else {
            leader = Some(s);
            i + 1
        };
        out.push((r, item));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::{BatchCols, LayerRow, RunCols, TokenCols};
    use crate::summary::{Extra, summarize};
    use sigprop_nets::LayerStats;

    /// Synthetic rows: `seeds` seeds of a `depth`-layer MLP whose seed `s` has Var(z) =
    /// `fwd(l) * (1 + jitter)`, Var(dL/dz) = `bwd(l) * (1 + jitter)`, with a small
    /// deterministic seed-to-seed jitter so the intervals are real.
    struct Synth {
        depth: usize,
        seeds: usize,
        fwd: fn(f64) -> f64,
        bwd: fn(f64) -> f64,
        share: fn(f64) -> f64,
        dead: f64,
        nonfinite_at: Option<usize>,
        /// token_cos by layer (`None`: not a sequence model).
        token_cos: Option<fn(f64) -> f64>,
        /// corr by layer (`None`: not measured).
        corr: Option<fn(f64) -> f64>,
        input_cos: f64,
    }

    impl Synth {
        fn new(fwd: fn(f64) -> f64, bwd: fn(f64) -> f64) -> Self {
            Synth {
                depth: 50,
                seeds: 5,
                fwd,
                bwd,
                share: |_| 0.5,
                dead: 0.0,
                nonfinite_at: None,
                token_cos: None,
                corr: None,
                input_cos: 0.0,
            }
        }

        fn rows(&self) -> Vec<LayerRow> {
            let mut rows = Vec::new();
            for s in 0..self.seeds {
                // Seed-to-seed wobble of a few percent that also tilts the slope a little.
                let jit = 0.03 * (s as f64 - (self.seeds as f64 - 1.0) / 2.0);
                for l in 1..=self.depth {
                    let x = l as f64;
                    let wob = (1.0 + jit * (x / self.depth as f64)).max(0.01);
                    let act_var = 0.5 * (self.fwd)(x) * wob;
                    let bad = self.nonfinite_at.is_some_and(|k| l >= k && s == 0);
                    rows.push(LayerRow {
                        run: RunCols {
                            run_id: format!("c0-s{s}"),
                            seed: s as u64,
                        },
                        stats: LayerStats {
                            site: "layer".into(),
                            layer: l,
                            preact_var: (self.fwd)(x) * wob,
                            grad_var: (self.bwd)(x) * wob,
                            act_var,
                            act_batch_var: act_var * (self.share)(x),
                            dead_frac: self.dead,
                            nonfinite: u64::from(bad),
                            nonfinite_forward: u64::from(bad),
                            ..LayerStats::default()
                        },
                        spp: Default::default(),
                        tokens: TokenCols {
                            token_cos: self.token_cos.map(|f| (f(x) * (1.0 - 1e-7 * jit)).min(1.0)),
                            token_rank: self.token_cos.map(|f| 1.0 + 15.0 * (1.0 - f(x))),
                            ..TokenCols::default()
                        },
                        batch: BatchCols {
                            corr: self.corr.map(|f| (f(x) * (1.0 - 1e-7 * jit)).min(1.0)),
                            act_rank: self.corr.map(|f| 1.0 + 100.0 * (1.0 - f(x))),
                        },
                        jacobian: Default::default(),
                        precision: Default::default(),
                        theory: Default::default(),
                    });
                }
            }
            rows
        }

        fn summary(&self, chi1: Option<f64>) -> SummaryRow {
            let rows = self.rows();
            let aggs = crate::aggregate::aggregate(&rows);
            let extra = Extra {
                seeds: self.seeds,
                lsuv_totals: vec![],
                theory_chi1: chi1,
                corr_fixed: None,
                input_token_cos: self.input_cos,
                log_gains: None,
                theory_log_gain: None,
            };
            summarize("mlp", &rows, &aggs, extra)
        }
    }

    fn key(i: usize) -> ConfigKey {
        ConfigKey {
            config: i,
            label: format!("c{i}"),
            arch: "mlp".into(),
            init: "x".into(),
            bias_init: "zeros".into(),
            activation: "tanh".into(),
            depth: 50,
            width: 512,
            batch: 256,
            backend: "flex".into(),
            loss: "projection".into(),
            prune: String::new(),
            dtype: "f32".into(),
            loss_scale: "off".into(),
        }
    }

    #[test]
    fn flat_variances_are_stable() {
        let s = Synth::new(|_| 1.0, |_| 1.0).summary(Some(1.0));
        assert_eq!(s.verdict, Verdict::Stable, "{}", s.verdict_detail);
        assert_eq!((s.fwd_form, s.bwd_form), (Form::Flat, Form::Flat));
        assert!(s.verdict_detail.starts_with("stable (Var(z) x"));
    }

    #[test]
    fn a_transient_into_a_fixed_point_is_stable() {
        // tanh + He forward: 2 at layer 1, settling on q* = 0.62 within a few layers.
        let s = Synth::new(|l| 0.62 + 1.38 * (-(l - 1.0)).exp(), |_| 1.0).summary(None);
        assert_eq!(s.verdict, Verdict::Stable, "{}", s.verdict_detail);
    }

    #[test]
    fn power_law_decay_is_critical_not_vanishing() {
        // tanh at sigma_w = 1: q ~ 1/(2l) forward, Var(dL/dz) ~ l backward.
        let s = Synth::new(|l| 1.0 / (1.0 + 2.0 * (l - 1.0)), |l| l / 50.0).summary(Some(1.0));
        assert_eq!(s.verdict, Verdict::Critical, "{}", s.verdict_detail);
        assert_eq!((s.fwd_form, s.bwd_form), (Form::PowerLaw, Form::PowerLaw));
        assert!(
            (s.fwd_power + 1.0).abs() < 0.1,
            "fwd exponent {}",
            s.fwd_power
        );
        assert!(
            (s.bwd_power - 1.0).abs() < 0.1,
            "bwd exponent {}",
            s.bwd_power
        );
        assert!(
            s.verdict_detail
                .starts_with("critical (power-law decay: Var(z) ~ l^-")
        );
    }

    #[test]
    fn geometric_forward_decay_is_vanishing_with_its_depth_scale() {
        // ReLU + Xavier: q halves per layer; chi_1 = 1/2 gives the theory depth scale 1.44.
        let s = Synth::new(|l| 0.5f64.powf(l), |l| 0.5f64.powf(51.0 - l)).summary(Some(0.5));
        assert_eq!(s.verdict, Verdict::Vanishing, "{}", s.verdict_detail);
        assert!((s.fwd_log_slope - 0.5f64.ln()).abs() < 0.02);
        assert!(
            s.verdict_detail
                .contains("depth scale 1.443 layers, theory 1.443"),
            "{}",
            s.verdict_detail
        );
    }

    #[test]
    fn geometric_forward_growth_is_exploding() {
        let s = Synth::new(|l| 1.2f64.powf(l), |_| 1.0).summary(None);
        assert_eq!(s.verdict, Verdict::Exploding, "{}", s.verdict_detail);
    }

    #[test]
    fn gradient_growth_with_a_held_forward_is_exploding_gradients() {
        // tanh + He: forward holds, gradients grow by chi_1 = 1.1055 per layer downward.
        let s = Synth::new(|_| 0.62, |l| 1.1055f64.powf(50.0 - l)).summary(Some(1.1055));
        assert_eq!(
            s.verdict,
            Verdict::ExplodingGradients,
            "{}",
            s.verdict_detail
        );
        assert!(s.bwd_log_slope > 0.0 && s.bwd_slope_lo.unwrap() > 0.0);
        assert!(
            s.verdict_detail.starts_with("exploding gradients (x"),
            "{}",
            s.verdict_detail
        );
    }

    #[test]
    fn gradient_decay_with_a_held_forward_is_vanishing_gradients() {
        let s = Synth::new(|_| 1.0, |l| 0.9f64.powf(50.0 - l)).summary(Some(0.9));
        assert_eq!(
            s.verdict,
            Verdict::VanishingGradients,
            "{}",
            s.verdict_detail
        );
    }

    #[test]
    fn merged_inputs_are_collapsed_but_slow_relu_correlation_is_not() {
        let mut syn = Synth::new(|_| 1.0, |_| 1.0);
        syn.share = |l| 0.5 * 0.8f64.powf(l);
        let s = syn.summary(None);
        assert_eq!(s.verdict, Verdict::Collapsed, "{}", s.verdict_detail);
        assert!(s.verdict_detail.contains("inputs merge"));
        // The same small share reached by a power law (ReLU's 1 - c ~ 1/l^2) is not collapse.
        syn.share = |l| 0.5 / (l * l);
        assert_eq!(syn.summary(None).verdict, Verdict::Stable);
    }

    #[test]
    fn merged_tokens_are_collapsed_whatever_the_variances_do() {
        // Attention without skips: tokens 30% alike after one block, merged from block 3,
        // while both variances stay flat (what the verdict read before it read tokens).
        let mut syn = Synth::new(|_| 1.0, |_| 1.0);
        syn.depth = 12;
        syn.token_cos = Some(|l| 1.0 - 0.7 * 0.01f64.powf(l - 1.0));
        let s = syn.summary(None);
        assert_eq!(s.verdict, Verdict::Collapsed, "{}", s.verdict_detail);
        assert!(
            s.verdict_detail.starts_with(
                "collapsed (tokens merge: token_cos 1 at layer 12, >= 0.99 from layer 2; \
                 token_rank 1; depth scale 0.217 layers)"
            ),
            "{}",
            s.verdict_detail
        );
        // Tokens that drift together slowly stay apart: the verdict is the variances'.
        syn.token_cos = Some(|l| 0.06 * l);
        assert_eq!(syn.summary(None).verdict, Verdict::Stable);
        // Tokens built alike are not a collapse of the network's making.
        syn.token_cos = Some(|_| 0.995);
        syn.input_cos = 0.995;
        assert_eq!(syn.summary(None).verdict, Verdict::Stable);
    }

    #[test]
    fn merged_inputs_show_their_pair_cosine_but_a_high_corr_alone_is_no_collapse() {
        // The ordered phase: the across-batch share and 1 - corr fall together.
        let mut syn = Synth::new(|_| 1.0, |_| 1.0);
        syn.share = |l| 0.5 * 0.8f64.powf(l);
        syn.corr = Some(|l| 1.0 - 0.7f64.powf(l));
        let s = syn.summary(None);
        assert_eq!(s.verdict, Verdict::Collapsed, "{}", s.verdict_detail);
        assert!(
            s.verdict_detail.ends_with("; corr 1, act_rank 1)"),
            "{}",
            s.verdict_detail
        );
        // ReLU at depth 50: pairs 0.993 alike, yet 1 - c ~ 1/l^2 and the share holds.
        syn.share = |_| 0.5;
        syn.corr = Some(|l| 1.0 - 20.0 / (l * l));
        assert_eq!(syn.summary(None).verdict, Verdict::Stable);
    }

    #[test]
    fn dead_units_and_zero_variance_are_collapsed() {
        let mut syn = Synth::new(|_| 1.0, |_| 1.0);
        syn.dead = 0.995;
        let s = syn.summary(None);
        assert_eq!(s.verdict, Verdict::Collapsed);
        assert!(
            s.verdict_detail.contains("units dead"),
            "{}",
            s.verdict_detail
        );
        let s = Synth::new(|_| 0.0, |_| 0.0).summary(None);
        assert_eq!(s.verdict, Verdict::Collapsed, "{}", s.verdict_detail);
    }

    #[test]
    fn any_non_finite_value_is_diverged_first() {
        let mut syn = Synth::new(|l| 1.2f64.powf(l), |_| 1.0);
        syn.nonfinite_at = Some(30);
        let s = syn.summary(None);
        assert_eq!(s.verdict, Verdict::Diverged);
        assert_eq!(s.first_nonfinite_layer, Some(30));
        assert_eq!(
            s.verdict_detail,
            "diverged (non-finite from layer 30 in 1 of 5 seeds)"
        );
    }

    #[test]
    fn ranking_orders_classes_then_change_and_ties_overlapping_intervals() {
        let rows = vec![
            (
                key(0),
                Synth::new(|l| 0.5f64.powf(l), |_| 1.0).summary(None),
            ),
            (
                key(1),
                Synth::new(|_| 0.62, |l| 1.1f64.powf(50.0 - l)).summary(None),
            ),
            (key(2), Synth::new(|l| 1.0 / (2.0 * l), |l| l).summary(None)),
            (key(3), Synth::new(|_| 1.0, |_| 1.0).summary(None)),
            // The same critical decay a hair slower: within the seeds' spread of key 2.
            (
                key(4),
                Synth::new(|l| 1.0 / (2.0 * l).powf(0.99), |l| l).summary(None),
            ),
            (
                key(5),
                Synth::new(|l| 0.9f64.powf(l), |_| 1.0).summary(None),
            ),
        ];
        let ranked: Vec<(usize, usize)> = rank(&rows)
            .iter()
            .map(|(r, (k, _))| (*r, k.config))
            .collect();
        // Stable first; the two critical ones tie; gradients-only growth before forward
        // vanishing; the slower forward decay (0.9 per layer) before the faster (0.5).
        assert_eq!(ranked, vec![(1, 3), (2, 4), (2, 2), (4, 1), (5, 5), (6, 0)]);
    }
}
