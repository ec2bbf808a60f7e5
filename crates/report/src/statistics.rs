//! The statistics registry: every measured column of `layers.csv`, declared once with its
//! meaning, the sites that define it, its mean-field counterpart, how `aggregate.csv`
//! treats it and how it is charted against depth.
//!
//! What is derived from [`STATISTICS`]: the statistics `aggregate.csv` holds and their
//! order ([`aggregated`]), which of them only some sites have, each row's value and theory
//! ([`Statistic::value`], [`Statistic::theory`]), the line charts ([`charted`]) and the
//! chart files a redraw removes. Tests hold the rest to it: its names are exactly the
//! measured columns `layers.csv` writes, in their order; every accessor reads its own
//! column; `docs/columns.md` documents every statistic and lists the aggregated ones in
//! this order. Not the reductions themselves (the network crate's `stats.rs`).

use crate::rows::LayerRow;

/// How `aggregate.csv` treats a statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// A row at every (site, layer), NaN where the site does not define it.
    Always,
    /// Rows only where some seed's row has a value (the site measures it).
    WherePresent,
    /// Not aggregated (a diagnostic column of `layers.csv` only).
    Never,
}

/// The y axis of a statistic's chart against depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// log10 (variances and other positive scales).
    Log,
    /// Linear, fixed to `[0, 1]` (fractions, cosines).
    Fraction,
    /// Linear, from the data (ranks, entropies, signed cosines).
    Linear,
}

/// How a statistic is charted against depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chart {
    /// What the chart shows (its title before the configuration and seeds).
    pub title: &'static str,
    /// The y axis label.
    pub y: &'static str,
    /// The y axis.
    pub axis: Axis,
    /// The site it is read at: `None` for the architecture's primary site.
    pub site: Option<&'static str>,
    /// Say so in the title where no configuration of the chart has a mean-field line.
    pub theory_note: bool,
}

/// One statistic of `layers.csv`.
#[derive(Debug, Clone, Copy)]
pub struct Statistic {
    /// Its column name.
    pub name: &'static str,
    /// What it measures, in one line (docs/columns.md has the whole definition).
    pub meaning: &'static str,
    /// The sites that define it, in words.
    pub sites: &'static str,
    /// How `aggregate.csv` treats it.
    pub aggregate: Aggregate,
    /// Its chart against depth, if it has one.
    pub chart: Option<Chart>,
    /// Its value in a row (NaN where the row's site does not define it).
    pub value: fn(&LayerRow) -> f64,
    /// Its mean-field prediction in a row (the `theory_<name>` column), where one exists.
    pub theory: fn(&LayerRow) -> Option<f64>,
}

fn none(_: &LayerRow) -> Option<f64> {
    None
}

const fn log(title: &'static str, y: &'static str) -> Option<Chart> {
    Some(Chart {
        title,
        y,
        axis: Axis::Log,
        site: None,
        theory_note: false,
    })
}

const fn fraction(title: &'static str, y: &'static str) -> Option<Chart> {
    Some(Chart {
        title,
        y,
        axis: Axis::Fraction,
        site: None,
        theory_note: false,
    })
}

const fn linear(title: &'static str, y: &'static str) -> Option<Chart> {
    Some(Chart {
        title,
        y,
        axis: Axis::Linear,
        site: None,
        theory_note: false,
    })
}

/// `chart`, read at the attention output (`attn`) rather than the primary site.
const fn at_attention(chart: Option<Chart>) -> Option<Chart> {
    match chart {
        Some(c) => Some(Chart {
            site: Some("attn"),
            ..c
        }),
        None => None,
    }
}

/// `chart`, whose title says so where no mean-field line can be drawn.
const fn noting_theory(chart: Option<Chart>) -> Option<Chart> {
    match chart {
        Some(c) => Some(Chart {
            theory_note: true,
            ..c
        }),
        None => None,
    }
}

const EVERY: &str = "every site";
const RESIDUAL_OUT: &str = "residual block outputs (resmlp and rescnn `out`)";
const TOKENS: &str = "transformer sites with tokens";
const ATTENTION: &str = "transformer `attn`";
const FLAT: &str = "`[batch, features]` sites (mlp, resmlp, rnn)";
const JACOBIAN: &str = "the primary site's layers whose Jacobian is measured (`--jacobian`)";
const LOW: &str = "every site of a bf16 or f16 pass (`--dtype`)";

/// Every statistic, in `layers.csv` column order (which is also `aggregate.csv`'s order).
pub const STATISTICS: &[Statistic] = &[
    Statistic {
        name: "preact_mean",
        meaning: "mean of the entries of the pre-activation z",
        sites: EVERY,
        aggregate: Aggregate::Always,
        chart: None,
        value: |r| r.stats.preact_mean,
        theory: none,
    },
    Statistic {
        name: "preact_var",
        meaning: "population variance of the entries of z",
        sites: EVERY,
        aggregate: Aggregate::Always,
        chart: noting_theory(log("Pre-activation variance Var(z)", "Var(z)")),
        value: |r| r.stats.preact_var,
        theory: |r| r.theory.theory_preact_var,
    },
    Statistic {
        name: "act_mean",
        meaning: "mean of the entries of the activation h",
        sites: EVERY,
        aggregate: Aggregate::Always,
        chart: None,
        value: |r| r.stats.act_mean,
        theory: none,
    },
    Statistic {
        name: "act_var",
        meaning: "population variance of the entries of h",
        sites: EVERY,
        aggregate: Aggregate::Always,
        chart: None,
        value: |r| r.stats.act_var,
        theory: |r| r.theory.theory_act_var,
    },
    Statistic {
        name: "act_batch_var",
        meaning: "mean over units of the variance of h across the batch",
        sites: EVERY,
        aggregate: Aggregate::Always,
        chart: None,
        value: |r| r.stats.act_batch_var,
        theory: none,
    },
    Statistic {
        name: "grad_var",
        meaning: "population variance of the entries of dL/dz",
        sites: EVERY,
        aggregate: Aggregate::Always,
        chart: noting_theory(log("Gradient variance Var(dL/dz)", "Var(dL/dz)")),
        value: |r| r.stats.grad_var,
        theory: |r| r.theory.theory_grad_var,
    },
    Statistic {
        name: "act_grad_var",
        meaning: "population variance of the entries of dL/dh",
        sites: EVERY,
        aggregate: Aggregate::Always,
        chart: None,
        value: |r| r.stats.act_grad_var,
        theory: none,
    },
    Statistic {
        name: "wgrad_var",
        meaning: "population variance of the entries of the site's weight gradient dL/dW",
        sites: "sites with a weight",
        aggregate: Aggregate::Always,
        chart: noting_theory(log("Weight-gradient variance Var(dL/dW)", "Var(dL/dW)")),
        value: |r| r.stats.wgrad_var,
        theory: |r| r.theory.theory_wgrad_var,
    },
    Statistic {
        name: "weight_var",
        meaning: "population variance of the site's weight as the network used it",
        sites: "sites with a weight",
        aggregate: Aggregate::Always,
        chart: None,
        value: |r| r.stats.weight_var,
        theory: none,
    },
    Statistic {
        name: "dead_frac",
        meaning: "fraction of the entries of h that are exactly 0",
        sites: "activation sites",
        aggregate: Aggregate::Always,
        chart: fraction("Dead units (h = 0)", "fraction"),
        value: |r| r.stats.dead_frac,
        theory: none,
    },
    Statistic {
        name: "saturated_frac",
        meaning: "fraction of the entries of z where phi'(z) < 0.01",
        sites: "activation sites of tanh, sigmoid, hard-tanh and softsign",
        aggregate: Aggregate::Always,
        chart: fraction("Saturated units (φ′(z) < 0.01)", "fraction"),
        value: |r| r.stats.saturated_frac,
        theory: none,
    },
    Statistic {
        name: "nonfinite",
        meaning: "NaN or infinite entries among z, h, dL/dz, dL/dh and dL/dW",
        sites: EVERY,
        aggregate: Aggregate::Always,
        chart: None,
        value: |r| r.stats.nonfinite as f64,
        theory: none,
    },
    Statistic {
        name: "nonfinite_forward",
        meaning: "the part of nonfinite found in z and h (where an overflow starts)",
        sites: EVERY,
        aggregate: Aggregate::Never,
        chart: None,
        value: |r| r.stats.nonfinite_forward as f64,
        theory: none,
    },
    Statistic {
        name: "scale_grad",
        meaning: "dL/dalpha of a learnable branch multiplier (ReZero, SkipInit)",
        sites: "residual `branch` sites with a learnable multiplier",
        aggregate: Aggregate::Always,
        chart: None,
        value: |r| r.stats.scale_grad,
        theory: none,
    },
    Statistic {
        name: "spp_sq_mean",
        meaning: "mean over channels of the squared channel mean of the block output",
        sites: RESIDUAL_OUT,
        aggregate: Aggregate::Always,
        chart: log(
            "SPP: average squared channel mean of the block output",
            "mean squared channel mean",
        ),
        value: |r| r.spp.spp_sq_mean.unwrap_or(f64::NAN),
        theory: none,
    },
    Statistic {
        name: "spp_var",
        meaning: "mean over channels of the channel variance of the block output",
        sites: RESIDUAL_OUT,
        aggregate: Aggregate::Always,
        chart: log(
            "SPP: average channel variance of the block output",
            "mean channel variance",
        ),
        value: |r| r.spp.spp_var.unwrap_or(f64::NAN),
        theory: none,
    },
    Statistic {
        name: "spp_branch_var",
        meaning: "mean over channels of the channel variance of the scaled residual branch",
        sites: RESIDUAL_OUT,
        aggregate: Aggregate::Always,
        chart: log(
            "SPP: average channel variance of the residual branch",
            "mean channel variance",
        ),
        value: |r| r.spp.spp_branch_var.unwrap_or(f64::NAN),
        theory: none,
    },
    Statistic {
        name: "token_cos",
        meaning: "mean pairwise cosine of a sequence's tokens (1: rank collapse)",
        sites: TOKENS,
        aggregate: Aggregate::WherePresent,
        chart: fraction("Token cosine (1: rank collapse)", "token cosine"),
        value: |r| r.tokens.token_cos.unwrap_or(f64::NAN),
        theory: none,
    },
    Statistic {
        name: "token_rank",
        meaning: "effective rank of a sequence's tokens",
        sites: TOKENS,
        aggregate: Aggregate::WherePresent,
        chart: linear("Effective rank of the tokens", "effective rank"),
        value: |r| r.tokens.token_rank.unwrap_or(f64::NAN),
        theory: none,
    },
    Statistic {
        name: "attn_entropy",
        meaning: "mean entropy of an attention row, in nats",
        sites: ATTENTION,
        aggregate: Aggregate::WherePresent,
        chart: at_attention(linear(
            "Attention entropy (uniform: ln T)",
            "entropy (nats)",
        )),
        value: |r| r.tokens.attn_entropy.unwrap_or(f64::NAN),
        theory: none,
    },
    Statistic {
        name: "attn_diag",
        meaning: "mean attention a token pays itself",
        sites: ATTENTION,
        aggregate: Aggregate::WherePresent,
        chart: at_attention(fraction(
            "Attention on the token itself (uniform: 1/T)",
            "A_tt",
        )),
        value: |r| r.tokens.attn_diag.unwrap_or(f64::NAN),
        theory: none,
    },
    Statistic {
        name: "wgrad_q",
        meaning: "variance of dL/dW of the query projection",
        sites: ATTENTION,
        aggregate: Aggregate::WherePresent,
        chart: at_attention(log("Var(dL/dW_q), query projection", "Var(dL/dW_q)")),
        value: |r| r.tokens.wgrad_q.unwrap_or(f64::NAN),
        theory: none,
    },
    Statistic {
        name: "wgrad_k",
        meaning: "variance of dL/dW of the key projection",
        sites: ATTENTION,
        aggregate: Aggregate::WherePresent,
        chart: at_attention(log("Var(dL/dW_k), key projection", "Var(dL/dW_k)")),
        value: |r| r.tokens.wgrad_k.unwrap_or(f64::NAN),
        theory: none,
    },
    Statistic {
        name: "wgrad_v",
        meaning: "variance of dL/dW of the value projection",
        sites: ATTENTION,
        aggregate: Aggregate::WherePresent,
        chart: at_attention(log("Var(dL/dW_v), value projection", "Var(dL/dW_v)")),
        value: |r| r.tokens.wgrad_v.unwrap_or(f64::NAN),
        theory: none,
    },
    Statistic {
        name: "wgrad_o",
        meaning: "variance of dL/dW of the output projection",
        sites: ATTENTION,
        aggregate: Aggregate::WherePresent,
        chart: at_attention(log("Var(dL/dW_o), output projection", "Var(dL/dW_o)")),
        value: |r| r.tokens.wgrad_o.unwrap_or(f64::NAN),
        theory: none,
    },
    Statistic {
        name: "corr",
        meaning: "mean cosine of the input pairs' pre-activation vectors",
        sites: FLAT,
        aggregate: Aggregate::WherePresent,
        // Negative with a negative input-corr, so not on the [0, 1] axis.
        chart: linear("Cosine of input pairs' pre-activations", "corr"),
        value: |r| r.batch.corr.unwrap_or(f64::NAN),
        theory: |r| r.theory.theory_corr,
    },
    Statistic {
        name: "act_rank",
        meaning: "effective rank of the batch's activation matrix h",
        sites: FLAT,
        aggregate: Aggregate::WherePresent,
        chart: linear(
            "Effective rank of the batch's activations",
            "effective rank",
        ),
        value: |r| r.batch.act_rank.unwrap_or(f64::NAN),
        theory: none,
    },
    Statistic {
        name: "jac_m1",
        meaning: "mean squared singular value of the Jacobian dh^l/dh^0",
        sites: JACOBIAN,
        aggregate: Aggregate::WherePresent,
        chart: log("Jacobian dh^l/dh^0: mean squared singular value", "jac_m1"),
        value: |r| r.jacobian.jac_m1.unwrap_or(f64::NAN),
        theory: |r| r.theory.theory_jac_m1,
    },
    Statistic {
        name: "jac_var",
        meaning: "variance of the Jacobian's squared singular values",
        sites: JACOBIAN,
        aggregate: Aggregate::WherePresent,
        chart: log(
            "Jacobian dh^l/dh^0: variance of the squared singular values",
            "jac_var",
        ),
        value: |r| r.jacobian.jac_var.unwrap_or(f64::NAN),
        theory: |r| r.theory.theory_jac_var,
    },
    Statistic {
        name: "jac_max_sv",
        meaning: "largest singular value of the Jacobian",
        sites: JACOBIAN,
        aggregate: Aggregate::WherePresent,
        chart: None,
        value: |r| r.jacobian.jac_max_sv.unwrap_or(f64::NAN),
        theory: none,
    },
    Statistic {
        name: "jac_min_sv",
        meaning: "smallest singular value of the Jacobian",
        sites: JACOBIAN,
        aggregate: Aggregate::WherePresent,
        chart: None,
        value: |r| r.jacobian.jac_min_sv.unwrap_or(f64::NAN),
        theory: none,
    },
    Statistic {
        name: "jac_cond",
        meaning: "largest over smallest singular value of the Jacobian",
        sites: JACOBIAN,
        aggregate: Aggregate::WherePresent,
        chart: log(
            "Jacobian dh^l/dh^0: spread, largest over smallest singular value",
            "jac_cond",
        ),
        value: |r| r.jacobian.jac_cond.unwrap_or(f64::NAN),
        theory: none,
    },
    Statistic {
        name: "underflow_frac",
        meaning: "fraction of z that became 0 or subnormal in low precision",
        sites: LOW,
        aggregate: Aggregate::WherePresent,
        chart: linear(
            "Underflow of z: 0 or subnormal, not in f32",
            "fraction of z",
        ),
        value: |r| r.precision.underflow_frac.unwrap_or(f64::NAN),
        theory: none,
    },
    Statistic {
        name: "overflow_frac",
        meaning: "fraction of z that became infinite in low precision",
        sites: LOW,
        aggregate: Aggregate::WherePresent,
        chart: linear("Overflow of z: infinite, finite in f32", "fraction of z"),
        value: |r| r.precision.overflow_frac.unwrap_or(f64::NAN),
        theory: none,
    },
    Statistic {
        name: "rel_err",
        meaning: "relative error of z against the f32 pass",
        sites: LOW,
        aggregate: Aggregate::WherePresent,
        chart: log("Relative error of z against f32", "|z - z_f32| / |z_f32|"),
        value: |r| r.precision.rel_err.unwrap_or(f64::NAN),
        theory: none,
    },
    Statistic {
        name: "grad_underflow_frac",
        meaning: "fraction of dL/dz held as 0 or subnormal in low precision",
        sites: LOW,
        aggregate: Aggregate::WherePresent,
        chart: linear(
            "Underflow of dL/dz: 0 or subnormal, not in f32",
            "fraction of dL/dz",
        ),
        value: |r| r.precision.grad_underflow_frac.unwrap_or(f64::NAN),
        theory: none,
    },
    Statistic {
        name: "grad_overflow_frac",
        meaning: "fraction of dL/dz held as infinite in low precision",
        sites: LOW,
        aggregate: Aggregate::WherePresent,
        chart: linear(
            "Overflow of dL/dz: infinite, finite in f32",
            "fraction of dL/dz",
        ),
        value: |r| r.precision.grad_overflow_frac.unwrap_or(f64::NAN),
        theory: none,
    },
    Statistic {
        name: "grad_rel_err",
        meaning: "relative error of dL/dz against the f32 pass",
        sites: LOW,
        aggregate: Aggregate::WherePresent,
        chart: log(
            "Relative error of dL/dz against f32",
            "|g - g_f32| / |g_f32|",
        ),
        value: |r| r.precision.grad_rel_err.unwrap_or(f64::NAN),
        theory: none,
    },
    Statistic {
        name: "grad_scale",
        meaning: "the loss scale the backward pass ran with",
        sites: LOW,
        aggregate: Aggregate::Never,
        chart: None,
        value: |r| r.precision.grad_scale.unwrap_or(f64::NAN),
        theory: none,
    },
];

/// The statistics `aggregate.csv` holds, in its order.
pub fn aggregated() -> impl Iterator<Item = &'static Statistic> {
    STATISTICS
        .iter()
        .filter(|s| s.aggregate != Aggregate::Never)
}

/// The statistic named `name`.
pub fn statistic(name: &str) -> Option<&'static Statistic> {
    STATISTICS.iter().find(|s| s.name == name)
}

/// The line charts against depth, in the order they are drawn: the log-scale ones, the
/// fractions, then the linear ones, each in column order.
pub fn charted() -> Vec<(&'static Statistic, Chart)> {
    let mut out: Vec<(&'static Statistic, Chart)> = STATISTICS
        .iter()
        .filter_map(|s| s.chart.map(|c| (s, c)))
        .collect();
    out.sort_by_key(|(_, c)| match c.axis {
        Axis::Log => 0,
        Axis::Fraction => 1,
        Axis::Linear => 2,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::{
        BatchCols, JacobianCols, PrecisionCols, RunCols, SppCols, TheoryCols, TokenCols,
    };
    use sigprop_nets::LayerStats;

    /// A CSV header and a record of `values` under it, deserialized into `T`.
    fn from_columns<T: serde::de::DeserializeOwned>(names: &[String], values: &[String]) -> T {
        let text = format!("{}\n{}\n", names.join(","), values.join(","));
        let mut rd = csv::Reader::from_reader(text.as_bytes());
        rd.deserialize().next().unwrap().unwrap()
    }

    /// The column names `value` serializes to.
    fn header<T: serde::Serialize>(value: &T) -> Vec<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(value).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        text.lines()
            .next()
            .unwrap()
            .split(',')
            .map(str::to_string)
            .collect()
    }

    /// The column names `T::default()` serializes to.
    fn columns_of<T: serde::Serialize + Default>() -> Vec<String> {
        header(&T::default())
    }

    /// A row whose every measured column holds its own position in `measured` (1-based)
    /// and whose every theory column holds 100 + its position.
    fn numbered_row(measured: &[String]) -> LayerRow {
        let value = |name: &str| {
            measured
                .iter()
                .position(|m| m == name)
                .map_or("0".to_string(), |i| (i + 1).to_string())
        };
        let fill = |names: Vec<String>| -> Vec<String> { names.iter().map(|n| value(n)).collect() };
        let stats_cols = columns_of::<LayerStats>();
        let mut stats_vals = fill(stats_cols.clone());
        stats_vals[0] = "layer".into(); // site
        let theory_cols = columns_of::<TheoryCols>();
        let theory_vals: Vec<String> = (0..theory_cols.len())
            .map(|i| (101 + i).to_string())
            .collect();
        let spp = columns_of::<SppCols>();
        let tokens = columns_of::<TokenCols>();
        let batch = columns_of::<BatchCols>();
        let jacobian = columns_of::<JacobianCols>();
        let precision = columns_of::<PrecisionCols>();
        LayerRow {
            run: RunCols {
                run_id: "c0-s0".into(),
                seed: 0,
            },
            stats: from_columns(&stats_cols, &stats_vals),
            spp: from_columns(&spp, &fill(spp.clone())),
            tokens: from_columns(&tokens, &fill(tokens.clone())),
            batch: from_columns(&batch, &fill(batch.clone())),
            jacobian: from_columns(&jacobian, &fill(jacobian.clone())),
            precision: from_columns(&precision, &fill(precision.clone())),
            theory: from_columns(&theory_cols, &theory_vals),
        }
    }

    /// The measured columns of `layers.csv`, in the order a row writes them: its header
    /// without the run, site, layer, node and theory columns.
    fn measured_columns() -> Vec<String> {
        let row = LayerRow {
            run: RunCols {
                run_id: String::new(),
                seed: 0,
            },
            stats: LayerStats::default(),
            spp: SppCols::default(),
            tokens: TokenCols::default(),
            batch: BatchCols::default(),
            jacobian: JacobianCols::default(),
            precision: PrecisionCols::default(),
            theory: TheoryCols::default(),
        };
        let run = header(&row.run);
        header(&row)
            .into_iter()
            .filter(|c| {
                !run.contains(c)
                    && !["site", "layer", "node"].contains(&c.as_str())
                    && !c.starts_with("theory_")
            })
            .collect()
    }

    #[test]
    fn the_registry_is_exactly_the_measured_columns_in_order() {
        let names: Vec<String> = STATISTICS.iter().map(|s| s.name.to_string()).collect();
        assert_eq!(names, measured_columns());
    }

    /// Each accessor reads its own column: in a row where every column holds its position,
    /// statistic i reads i; each prediction reads the `theory_<name>` column.
    #[test]
    fn every_statistic_reads_its_own_column_and_its_own_prediction() {
        let measured = measured_columns();
        let row = numbered_row(&measured);
        let theory_cols = columns_of::<TheoryCols>();
        for (i, s) in STATISTICS.iter().enumerate() {
            assert_eq!((s.value)(&row), (i + 1) as f64, "{}", s.name);
            let want = theory_cols
                .iter()
                .position(|c| *c == format!("theory_{}", s.name))
                .map(|j| (101 + j) as f64);
            assert_eq!((s.theory)(&row), want, "{}", s.name);
        }
        // Every theory column is some statistic's prediction.
        for c in &theory_cols {
            let name = c.strip_prefix("theory_").unwrap();
            assert!(statistic(name).is_some(), "{c} predicts no statistic");
        }
    }

    #[test]
    fn docs_document_every_statistic_and_list_the_aggregated_ones_in_order() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/columns.md");
        let docs = std::fs::read_to_string(&path).unwrap();
        for s in STATISTICS {
            let quoted = format!("`{}`", s.name);
            assert!(
                docs.lines().any(|l| l.starts_with("| `")
                    && l.split('|').nth(1).is_some_and(|c| c.contains(&quoted))),
                "docs/columns.md has no table row for {}",
                s.name
            );
        }
        // The order paragraph of aggregate.csv.
        let start =
            docs.find("statistics in the order\n`").unwrap() + "statistics in the order\n".len();
        let end = start + docs[start..].find("` (").unwrap() + 1;
        let listed: Vec<String> = docs[start..end]
            .split(',')
            .map(|s| s.trim().trim_matches('`').to_string())
            .collect();
        let want: Vec<String> = aggregated().map(|s| s.name.to_string()).collect();
        assert_eq!(listed, want);
    }

    #[test]
    fn charts_are_drawn_log_then_fraction_then_linear() {
        let axes: Vec<Axis> = charted().iter().map(|(_, c)| c.axis).collect();
        let mut sorted = axes.clone();
        sorted.sort_by_key(|a| *a as u8);
        assert_eq!(axes, sorted);
        assert_eq!(charted()[0].0.name, "preact_var");
    }
}
