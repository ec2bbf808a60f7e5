//! The law of one entry of each scheme, and the moments a fill is expected to have.
//!
//! [`Scheme::law`] is the one place where every formula lives (one match, candle's
//! `init.rs` style): given the fans and the network context, the distribution of an entry.
//! The expected moments ([`Scheme::entry_variance`], [`Scheme::moments`]) are derived from
//! it, so what the network crate audits against is what the sampler draws. No sampling
//! here: see `fill.rs`.

use crate::context::{FillContext, FixupRole};
use crate::error::InitError;
use crate::fans::{FanMode, Fans, Layout, fans, logical_matrix};
use crate::sample::truncated_std;
use crate::scheme::CriticalDistribution;
use crate::scheme::{Scheme, VsDistribution};
use crate::structured::sparse_zero_count;

/// The law of one entry, once fans and context are known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Law {
    /// Every entry equal.
    Constant(f64),
    /// `U[low, high)`.
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// `N(mean, std^2)`.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// `std z`, `z ~ N(0, 1)` conditioned on `|z| <= bound`.
    Truncated {
        /// Scale.
        std: f64,
        /// Truncation in units of `std`.
        bound: f64,
    },
    /// `gain` times a Haar orthogonal logical matrix.
    Orthogonal {
        /// Gain.
        gain: f64,
    },
    /// `gain` on the logical diagonal.
    Identity {
        /// Gain.
        gain: f64,
    },
    /// `gain` on the padded identity: one entry a row (`out >= in`) or a column (`out <
    /// in`), at the index modulo the shorter side.
    PaddedIdentity {
        /// Gain.
        gain: f64,
    },
    /// ZerO's matrix: the (partial) identity for `out <= in`, a scaled Hadamard block for
    /// `out > in`.
    ZerO,
    /// The identity convolution.
    Dirac {
        /// Groups.
        groups: usize,
    },
    /// Orthogonal at the kernel centre.
    DeltaOrthogonal {
        /// Gain.
        gain: f64,
    },
    /// `N(0, std^2)` draws with each logical row's mean subtracted and the row rescaled by
    /// `sqrt(cols / (cols - 1))`: every row sums to 0 and each entry keeps variance `std^2`.
    CenteredNormal {
        /// Standard deviation of an entry.
        std: f64,
    },
    /// `N(0, std^2)` with `ceil(sparsity rows)` zeros per column.
    Sparse {
        /// Fraction of zeros per column.
        sparsity: f64,
        /// Standard deviation of the non-zeros.
        std: f64,
    },
}

/// Mean and variance of an entry picked uniformly from the tensor, over the pick and the
/// draw: `mean = E[w]`, `var = E[w^2] - mean^2`. For i.i.d. schemes this is the law of each
/// entry; for structured ones (orthogonal, identity, dirac, sparse) it is what the sample
/// variance of a filled tensor (THEORY.md's `weight_var`) estimates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    /// `E[w]`.
    pub mean: f64,
    /// `E[w^2] - E[w]^2`.
    pub var: f64,
}

fn needs(scheme: &Scheme, what: &str) -> InitError {
    InitError::NeedsContext {
        name: scheme.to_string(),
        needs: what.to_string(),
    }
}

impl Scheme {
    /// The law of one entry for a tensor with `fans` in context `ctx`.
    pub fn law(&self, fans: Fans, ctx: &FillContext) -> Result<Law, InitError> {
        use Scheme::*;
        let fan_in = fans.fan_in as f64;
        let normal = |var: f64| Law::Normal {
            mean: 0.0,
            std: var.sqrt(),
        };
        let uniform = |var: f64| {
            let b = (3.0 * var).sqrt();
            Law::Uniform { low: -b, high: b }
        };
        let leaky = |s: f64| 2.0 / (1.0 + s * s);
        Ok(match *self {
            Zeros => Law::Constant(0.0),
            Ones => Law::Constant(1.0),
            Constant { value } => Law::Constant(value),
            UniformSymmetric { a } => Law::Uniform { low: -a, high: a },
            Uniform { low, high } => Law::Uniform { low, high },
            Normal { mean, std } => Law::Normal { mean, std },
            TruncatedNormal {
                std,
                bound,
                correct,
            } => Law::Truncated {
                std: if correct {
                    std / truncated_std(bound)
                } else {
                    std
                },
                bound,
            },
            VarianceScaling {
                scale,
                mode,
                distribution,
            } => {
                let var = scale / fans.by_mode(mode);
                match distribution {
                    VsDistribution::Normal => normal(var),
                    VsDistribution::Uniform => uniform(var),
                    VsDistribution::TruncatedNormal => Law::Truncated {
                        std: var.sqrt() / truncated_std(2.0),
                        bound: 2.0,
                    },
                }
            }
            XavierUniform { gain } => uniform(gain * gain / fans.by_mode(FanMode::FanAvg)),
            XavierNormal { gain } => normal(gain * gain / fans.by_mode(FanMode::FanAvg)),
            HeUniform {
                mode,
                negative_slope,
            } => uniform(leaky(negative_slope) / fans.by_mode(mode)),
            HeNormal {
                mode,
                negative_slope,
            } => normal(leaky(negative_slope) / fans.by_mode(mode)),
            LecunUniform => uniform(1.0 / fan_in),
            LecunNormal => normal(1.0 / fan_in),
            PytorchDefault => uniform(1.0 / (3.0 * fan_in)),
            Orthogonal { gain } => Law::Orthogonal { gain },
            Identity { gain } => Law::Identity { gain },
            IdInit { gain } => match ctx.residual {
                Some(r) if r.writes_stream => Law::Constant(0.0),
                _ => Law::PaddedIdentity { gain },
            },
            ZeroHadamard => match ctx.residual {
                Some(r) if r.writes_stream => Law::Constant(0.0),
                _ => Law::ZerO,
            },
            Dirac { groups } => Law::Dirac {
                groups: groups.unwrap_or(0),
            },
            DeltaOrthogonal { gain } => Law::DeltaOrthogonal { gain },
            Sparse { sparsity, std } => Law::Sparse { sparsity, std },
            Critical { distribution, .. } => {
                let sw = ctx.critical_sigma_w.ok_or_else(|| {
                    needs(
                        self,
                        "the critical sigma_w for its activation (FillContext::critical_sigma_w)",
                    )
                })?;
                match distribution {
                    CriticalDistribution::Normal => normal(sw * sw / fan_in),
                    CriticalDistribution::Orthogonal => Law::Orthogonal { gain: sw },
                }
            }
            Lsuv(_) => Law::Orthogonal { gain: 1.0 },
            MetaInit(ref p) => p.base.law(fans, ctx)?,
            GradInit(ref p) => p.base.law(fans, ctx)?,
            AutoInit { .. } => {
                let a = ctx.autoinit.ok_or_else(|| {
                    needs(self, "the layer's autoinit scales (FillContext::autoinit)")
                })?;
                let std = (a.sigma_w2 / fan_in).sqrt();
                if a.center {
                    Law::CenteredNormal { std }
                } else {
                    normal(a.sigma_w2 / fan_in)
                }
            }
            Fixup => {
                let f = ctx.fixup.ok_or_else(|| {
                    needs(
                        self,
                        "its place in the residual network (FillContext::fixup)",
                    )
                })?;
                match f.role {
                    FixupRole::BranchInner => {
                        let s = f.inner_scale()?;
                        normal(2.0 * s * s / fan_in)
                    }
                    FixupRole::BranchLast | FixupRole::Head => Law::Constant(0.0),
                }
            }
            Gpt2 { std } => match ctx.residual {
                Some(r) if r.writes_stream => normal(std * std / r.branches.max(1) as f64),
                _ => normal(std * std),
            },
            SmallInit => {
                let d = ctx.residual.map_or(fan_in, |r| r.width as f64);
                normal(2.0 / (5.0 * d))
            }
            TFixup => {
                let s = match ctx.residual {
                    Some(r) if !r.scores => 0.67 * (r.blocks.max(1) as f64).powf(-0.25),
                    _ => 1.0,
                };
                uniform(s * s / fans.by_mode(FanMode::FanAvg))
            }
            DeepNet => {
                let beta = match ctx.residual {
                    Some(r) if !r.scores => (8.0 * r.blocks.max(1) as f64).powf(-0.25),
                    _ => 1.0,
                };
                normal(beta * beta / fans.by_mode(FanMode::FanAvg))
            }
        })
    }
}

impl Scheme {
    /// The expected variance of one entry for a 2-D `[fan_out, fan_in]` weight: exact for
    /// every i.i.d. scheme at any shape, and for orthogonal (`gain^2 / max(rows, cols)`),
    /// identity and sparse (`(1 - ceil(s rows)/rows) std^2`) on linear weights. `None` where
    /// it depends on more than the fans (dirac, delta-orthogonal; use [`Scheme::moments`])
    /// or on context that is missing.
    pub fn entry_variance(&self, fans: Fans, ctx: &FillContext) -> Option<f64> {
        let law = self.law(fans, ctx).ok()?;
        law_moments(law, fans.fan_out, fans.fan_in).map(|m| m.var)
    }

    /// `sigma_w^2 = Var(W) fan_in` of a zero-mean weight of these fans, what the mean-field
    /// theory takes; `None` where the entries' mean is not 0 or the variance is not known in
    /// advance ([`Self::entry_mean`], [`Self::entry_variance`]).
    pub fn centred_sigma2(&self, fans: Fans, ctx: &FillContext) -> Option<f64> {
        (self.entry_mean(ctx)? == 0.0).then_some(())?;
        Some(self.entry_variance(fans, ctx)? * fans.fan_in as f64)
    }

    /// The variance of a zero-mean bias of `n_out` entries in `layout`; `None` where its mean
    /// is not 0 or its moments are not known.
    pub fn centred_bias_var(&self, n_out: usize, layout: Layout, ctx: &FillContext) -> Option<f64> {
        let m = self.moments(&[n_out], layout, ctx).ok()?;
        (m.mean == 0.0).then_some(m.var)
    }

    /// The expected value of one entry, where it does not depend on the shape (`None` for
    /// identity and dirac, and where needed context is missing).
    pub fn entry_mean(&self, ctx: &FillContext) -> Option<f64> {
        use Scheme::*;
        match *self {
            Zeros => Some(0.0),
            Ones => Some(1.0),
            Constant { value } => Some(value),
            Uniform { low, high } => Some(0.5 * (low + high)),
            Normal { mean, .. } => Some(mean),
            Identity { .. } | IdInit { .. } | ZeroHadamard | Dirac { .. } => None,
            Critical { .. } if ctx.critical_sigma_w.is_none() => None,
            AutoInit { .. } if ctx.autoinit.is_none() => None,
            Fixup if ctx.fixup.is_none() => None,
            _ => Some(0.0),
        }
    }

    /// Exact [`Moments`] of an entry picked uniformly from a tensor of `shape` in `layout`.
    pub fn moments(
        &self,
        shape: &[usize],
        layout: Layout,
        ctx: &FillContext,
    ) -> Result<Moments, InitError> {
        let f = fans(shape, layout)?;
        let (rows, cols) = logical_matrix(shape, layout)?;
        let law = self.law(f, ctx)?;
        if let Some(m) = law_moments(law, rows, cols) {
            return Ok(m);
        }
        let n = (rows * cols) as f64;
        let groups = match layout {
            Layout::Conv { groups } => groups,
            _ => 1,
        };
        let (out, in_g) = (shape[0], shape.get(1).copied().unwrap_or(1));
        Ok(match law {
            Law::Dirac { groups: g } => {
                let g = if g == 0 { groups } else { g };
                let ones = g as f64 * ((out / g.max(1)).min(in_g)) as f64;
                let mean = ones / n;
                Moments {
                    mean,
                    var: ones / n - mean * mean,
                }
            }
            Law::DeltaOrthogonal { gain } => Moments {
                mean: 0.0,
                var: gain * gain * out.min(in_g) as f64 / n,
            },
            // law_moments answered every other law above.
            other => {
                return Err(InitError::BadShape {
                    what: format!("initializer \"{self}\""),
                    shape: shape.to_vec(),
                    why: format!("no moments for {other:?}"),
                });
            }
        })
    }
}

/// Moments of `law` on a `rows x cols` logical matrix; `None` for the kernel laws.
fn law_moments(law: Law, rows: usize, cols: usize) -> Option<Moments> {
    let n = (rows * cols) as f64;
    let k = rows.min(cols) as f64;
    Some(match law {
        Law::Constant(v) => Moments { mean: v, var: 0.0 },
        Law::Uniform { low, high } => Moments {
            mean: 0.5 * (low + high),
            var: (high - low).powi(2) / 12.0,
        },
        Law::Normal { mean, std } => Moments {
            mean,
            var: std * std,
        },
        Law::CenteredNormal { std } => Moments {
            mean: 0.0,
            var: std * std,
        },
        Law::Truncated { std, bound } => Moments {
            mean: 0.0,
            var: (std * truncated_std(bound)).powi(2),
        },
        Law::Orthogonal { gain } => Moments {
            mean: 0.0,
            var: gain * gain * k / n,
        },
        Law::Identity { gain } => {
            let mean = gain * k / n;
            Moments {
                mean,
                var: gain * gain * k / n - mean * mean,
            }
        }
        Law::ZerO if rows <= cols => {
            let mean = k / n;
            Moments {
                mean,
                var: k / n - mean * mean,
            }
        }
        Law::ZerO => {
            // Every entry is +-c: the mean is c times the block's mean sign.
            let (c, _) = crate::structured::hadamard_order(rows);
            let signs: f64 = (0..rows)
                .flat_map(|i| (0..cols).map(move |j| crate::structured::hadamard_sign(i, j)))
                .sum();
            let mean = c * signs / n;
            Moments {
                mean,
                var: c * c - mean * mean,
            }
        }
        Law::PaddedIdentity { gain } => {
            // One entry per row or column of the longer side.
            let ones = rows.max(cols) as f64;
            let mean = gain * ones / n;
            Moments {
                mean,
                var: gain * gain * ones / n - mean * mean,
            }
        }
        Law::Sparse { sparsity, std } => {
            let kept = 1.0 - sparse_zero_count(rows, sparsity) as f64 / rows as f64;
            Moments {
                mean: 0.0,
                var: kept * std * std,
            }
        }
        Law::Dirac { .. } | Law::DeltaOrthogonal { .. } => return None,
    })
}
