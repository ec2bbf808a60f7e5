//! The device side of the statistics: column reductions of a pass's tensors, fused on a GPU,
//! read back in one transfer, with sums in a fixed order. Needs the `burn` feature.

use burn::tensor::Tensor;

use crate::error::NetError;

/// What to compute for one tensor.
#[derive(Clone, Copy)]
pub(crate) struct Want {
    pub zeros: bool,
    /// Count entries with |x| > threshold (saturation of phi at z).
    pub saturation: Option<f64>,
}

/// Column summaries of one tensor, back on the host.
#[derive(Debug, Clone)]
pub(crate) struct Summary {
    pub mean: f64,
    pub var: f64,
    /// Mean over columns of the variance across rows.
    pub within_var: f64,
    pub nonfinite: u64,
    pub zero_frac: f64,
    pub sat_frac: f64,
}

/// Collects device-side column reductions and reads them back in one transfer.
///
/// On a GPU backend, tensors of the same row count and the same counts asked for are reduced together: side
/// by side as the columns of one tensor, a few kernels for a whole group instead of a few for
/// each tensor (on a GPU a pass's statistics are otherwise hundreds of tiny kernels, each
/// costing a launch). A column's reductions do not depend on its neighbours: each is the
/// same sum over the same rows in the same order.
pub(crate) struct Reducer {
    tensors: Vec<Tensor<2>>,
    layout: Vec<(usize, usize, Want)>,
    /// Merge on a host backend too (for tests of the merging on the CPU).
    fuse_on_host: bool,
}

/// Tensors of more entries than this are reduced on their own (their kernels are long
/// enough; a copy would only cost memory).
const FUSE_MAX_ENTRIES: usize = 1 << 20;

/// Entries of one group of tensors reduced together, at most (a bound on the copy).
const FUSE_GROUP_ENTRIES: usize = 1 << 24;

/// Column means and variances, and the count of non-finite entries, with the scaling
/// that keeps finite values near f32's limit from overflowing (the exact second pass).
fn exact_pass(x: &Tensor<2>) -> Tensor<2> {
    let scale = x.clone().abs().max_dim(0).clamp_min(f32::MIN_POSITIVE);
    let y = x.clone() / scale.clone();
    let mean = y.clone().mean_dim(0);
    let var = (y - mean.clone()).square().mean_dim(0);
    let nonfinite = x.clone().is_finite().bool_not().float().sum_dim(0);
    Tensor::cat(vec![scale, mean, var, nonfinite], 1)
}

/// A tensor's values on the host as `f32` (converted if the backend's dtype differs); a
/// failed transfer is an error naming `what`, never an empty vector.
pub(crate) fn read_back<const D: usize>(
    t: Tensor<D>,
    what: &'static str,
) -> Result<Vec<f32>, NetError> {
    t.try_into_vec_as::<f32>().map_err(|e| NetError::Readback {
        what,
        why: format!("{e:?}"),
    })
}

/// The sum of every entry of `t`, in an order that does not depend on the thread count.
///
/// flex's whole-tensor sum (and mean) splits a tensor of 4Mi entries or more over rayon's
/// threads and adds the pieces in whatever tree the work-stealing produced, so its last
/// bits may change between runs. Here a long tensor is summed in rows of 64Ki entries
/// (each row one sequential sum), then the row sums (fewer than 4Mi), then the tail.
pub(crate) fn ordered_sum<const D: usize>(t: Tensor<D>) -> Tensor<1> {
    const ROW: usize = 1 << 16;
    let t: Tensor<1> = t.flatten(0, D - 1);
    let n = t.dims()[0];
    if n < 1 << 20 {
        return t.sum();
    }
    let rows = n / ROW;
    let head = rows * ROW;
    let main = t
        .clone()
        .narrow(0, 0, head)
        .reshape([rows, ROW])
        .sum_dim(1)
        .reshape([rows])
        .sum();
    if head == n {
        main
    } else {
        main + t.narrow(0, head, n - head).sum()
    }
}

/// The mean of every entry of `t`, in an order that does not depend on the thread count
/// (see [`ordered_sum`]).
pub(crate) fn ordered_mean<const D: usize>(t: Tensor<D>) -> Tensor<1> {
    let n = t.shape().num_elements();
    ordered_sum(t).div_scalar(n as f64)
}

fn read(t: Tensor<2>, what: &'static str) -> Result<Vec<f64>, NetError> {
    Ok(read_back(t, what)?.into_iter().map(f64::from).collect())
}

impl Reducer {
    pub fn new() -> Self {
        Reducer {
            tensors: Vec::new(),
            layout: Vec::new(),
            fuse_on_host: false,
        }
    }

    /// Queue `x` (viewed as `[rows, cols]`); returns the handle for [`Reducer::finish`].
    pub fn push(&mut self, x: Tensor<2>, want: Want) -> usize {
        let [rows, cols] = x.dims();
        self.tensors.push(x.inner());
        self.layout.push((rows, cols, want));
        self.layout.len() - 1
    }

    /// The groups of tensors reduced together, in push order: same rows, same counts, each
    /// small, at most [`FUSE_GROUP_ENTRIES`] a group.
    fn groups(&self) -> Vec<Vec<usize>> {
        // On the host each kernel is a loop with no launch to save: every tensor alone.
        let fuse = self
            .tensors
            .first()
            .is_some_and(|t| self.fuse_on_host || !crate::backend::on_host(&t.device()));
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut open: Vec<(usize, usize)> = Vec::new(); // (group, entries so far)
        for (i, &(rows, cols, want)) in self.layout.iter().enumerate() {
            let entries = rows * cols;
            let joins = |g: &[usize]| {
                let (r, _, w) = self.layout[g[0]];
                r == rows && w.zeros == want.zeros && w.saturation == want.saturation
            };
            let slot = (fuse && entries <= FUSE_MAX_ENTRIES)
                .then(|| {
                    open.iter()
                        .position(|&(g, n)| n + entries <= FUSE_GROUP_ENTRIES && joins(&groups[g]))
                })
                .flatten();
            match slot {
                Some(o) => {
                    groups[open[o].0].push(i);
                    open[o].1 += entries;
                }
                None => {
                    if entries <= FUSE_MAX_ENTRIES {
                        open.push((groups.len(), entries));
                    }
                    groups.push(vec![i]);
                }
            }
        }
        groups
    }

    /// Read everything back and combine in `f64`.
    pub fn finish(self) -> Result<Vec<Summary>, NetError> {
        if self.tensors.is_empty() {
            return Ok(Vec::new());
        }
        // Per group: its columns' means, variances, then the counts asked for. Each
        // tensor's place: (its group's offset in the read-back, the group's columns, the
        // tensor's first column in the group).
        let mut parts = Vec::new();
        let mut place = vec![(0usize, 0usize, 0usize); self.tensors.len()];
        let mut at = 0usize;
        for group in self.groups() {
            let want = self.layout[group[0]].2;
            let mut first = 0usize;
            for &i in &group {
                place[i] = (at, 0, first);
                first += self.layout[i].1;
            }
            let total = first;
            for &i in &group {
                place[i].1 = total;
            }
            let x = if group.len() == 1 {
                self.tensors[group[0]].clone()
            } else {
                Tensor::cat(group.iter().map(|&i| self.tensors[i].clone()).collect(), 1)
            };
            let col_mean = x.clone().mean_dim(0);
            let col_var = (x.clone() - col_mean.clone()).square().mean_dim(0);
            parts.push(col_mean);
            parts.push(col_var);
            let mut n = 2;
            if want.zeros {
                parts.push(x.clone().equal_elem(0.0).float().sum_dim(0));
                n += 1;
            }
            if let Some(t) = want.saturation {
                parts.push(x.abs().greater_elem(t).float().sum_dim(0));
                n += 1;
            }
            at += n * total;
        }
        let values = read(Tensor::cat(parts, 1), "the per-layer reductions")?;
        // A short read-back (a failed transfer) gives NaN, never made-up zeros.
        let take = |from: usize, n: usize| -> Vec<f64> {
            (from..from + n)
                .map(|i| values.get(i).copied().unwrap_or(f64::NAN))
                .collect()
        };
        self.layout
            .iter()
            .zip(&self.tensors)
            .zip(&place)
            .map(|((&(rows, cols, want), x), &(base, total, first))| {
                let mut means = take(base + first, cols);
                let mut vars = take(base + total + first, cols);
                let zeros_at = base + 2 * total;
                let sat_at = zeros_at + if want.zeros { total } else { 0 };
                let zeros = if want.zeros {
                    take(zeros_at + first, cols).iter().sum::<f64>()
                } else {
                    f64::NAN
                };
                let sat = if want.saturation.is_some() {
                    take(sat_at + first, cols).iter().sum::<f64>()
                } else {
                    f64::NAN
                };
                let mut nonfinite = 0.0;
                // A variance in (0, 1e-30) or above 1e30 may have underflowed to subnormals
                // or be near overflow in f32, and a zero variance with a non-zero mean may be
                // an underflow too (a dead ReLU unit has mean and variance exactly 0): such
                // tensors, and any with a non-finite result, get the exact scaled pass.
                let suspect = means.iter().any(|v| !v.is_finite())
                    || means.iter().zip(&vars).any(|(m, v)| {
                        (*v > 0.0 && *v < 1e-30) || *v > 1e30 || (*v == 0.0 && *m != 0.0)
                    });
                let exact = if suspect {
                    read(exact_pass(x), "the exact second pass")?
                } else {
                    Vec::new()
                };
                if exact.len() == 4 * cols {
                    let (scale, rest) = exact.split_at(cols);
                    means = rest[..cols].iter().zip(scale).map(|(m, s)| m * s).collect();
                    vars = rest[cols..2 * cols]
                        .iter()
                        .zip(scale)
                        .map(|(v, s)| v * s * s)
                        .collect();
                    nonfinite = rest[2 * cols..3 * cols].iter().sum::<f64>();
                }
                let n = cols as f64;
                let mean = means.iter().sum::<f64>() / n;
                let within_var = vars.iter().sum::<f64>() / n;
                let between = means.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / n;
                let entries = (rows * cols) as f64;
                Ok(Summary {
                    mean,
                    var: within_var + between,
                    within_var,
                    nonfinite: nonfinite as u64,
                    zero_frac: zeros / entries,
                    sat_frac: sat / entries,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{effective_rank, saturation_threshold};
    use burn::tensor::Device;
    use sigprop_init::Activation;

    #[test]
    fn effective_rank_is_exp_of_the_singular_value_entropy() {
        // Orthonormal rows: n equal singular values, rank n.
        let eye: Vec<f32> = (0..16)
            .map(|i| if i % 5 == 0 { 1.0 } else { 0.0 })
            .collect();
        assert!((effective_rank(&eye, 4) - 4.0).abs() < 1e-9);
        // Four equal tokens of 3 features: one singular value.
        assert!((effective_rank(&[1.0f32; 12], 4) - 1.0).abs() < 1e-9);
        // Singular values 2 and 1 (rows (2, 0, 0) and (0, 1, 0)): p = (2/3, 1/3).
        let p: [f64; 2] = [2.0 / 3.0, 1.0 / 3.0];
        let want = (-p.iter().map(|p| p * p.ln()).sum::<f64>()).exp();
        let x = [2.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        assert!((effective_rank(&x, 2) - want).abs() < 1e-9);
        assert_eq!(effective_rank(&[0.0; 6], 2), 0.0);
        assert!(effective_rank(&[f32::NAN, 0.0, 0.0, 1.0], 2).is_nan());
    }

    #[test]
    fn tensors_reduced_together_give_the_summaries_of_each_reduced_alone() {
        let dev = Device::flex();
        let t = |rows: usize, cols: usize, k: u32| {
            // Deterministic values with zeros, large magnitudes and varied columns.
            let data: Vec<f32> = (0..rows * cols)
                .map(|i| {
                    let v = ((i as u32).wrapping_mul(2654435761).wrapping_add(k) >> 8) as f32
                        / 16_777_216.0
                        - 0.5;
                    if i % 7 == 0 {
                        0.0
                    } else {
                        v * (1 + k % 3) as f32
                    }
                })
                .collect();
            Tensor::<2>::from_data(burn::tensor::TensorData::new(data, [rows, cols]), &dev)
        };
        let plain = Want {
            zeros: false,
            saturation: None,
        };
        let zeros = Want {
            zeros: true,
            saturation: None,
        };
        let sat = Want {
            zeros: false,
            saturation: Some(0.4),
        };
        // Interleaved shapes and counts; a tensor past the fusing bound; one that takes the
        // exact second pass (a near-overflow column); one with a single column.
        let mut huge = vec![3.0e37f32; 64];
        huge[1] = -2.0e37;
        let cases: Vec<(Tensor<2>, Want)> = vec![
            (t(32, 16, 1), plain),
            (t(32, 8, 2), zeros),
            (t(16, 16, 3), plain),
            (t(32, 16, 4), sat),
            (t(32, 5, 5), plain),
            (t(1100, 1000, 6), plain),
            (
                Tensor::<2>::from_data(burn::tensor::TensorData::new(huge, [32, 2]), &dev),
                plain,
            ),
            (t(32, 1, 7), zeros),
            (t(32, 16, 8), sat),
            (t(16, 3, 9), plain),
        ];
        let mut together = Reducer::new();
        together.fuse_on_host = true;
        for (x, w) in &cases {
            together.push(x.clone(), *w);
        }
        assert!(together.groups().len() < cases.len());
        let mut host = Reducer::new();
        host.push(cases[0].0.clone(), plain);
        host.push(cases[0].0.clone(), plain);
        assert_eq!(host.groups().len(), 2, "flex reduces each tensor alone");
        assert!(crate::backend::on_host(&Device::flex()));
        #[cfg(feature = "wgpu")]
        assert!(!crate::backend::on_host(&Device::wgpu(
            burn::tensor::DeviceKind::DefaultDevice
        )));
        let together = together.finish().unwrap();
        for ((x, w), fused) in cases.iter().zip(&together) {
            let mut alone = Reducer::new();
            alone.push(x.clone(), *w);
            let alone = alone.finish().unwrap();
            assert_eq!(
                format!("{fused:?}"),
                format!("{:?}", alone[0]),
                "{:?}",
                x.dims()
            );
        }
        // Not vacuous: the counts were asked and found.
        assert!(together[1].zero_frac > 0.1 && together[3].sat_frac > 0.0);
        assert!(together[6].var.is_finite() && together[6].var > 1e70);
    }

    #[test]
    fn ordered_sums_do_not_depend_on_the_thread_count() {
        // 5Mi + 3 entries: past flex's 4Mi threshold for a threaded sum, with a tail.
        let n: usize = 5 * (1 << 20) + 3;
        let tensor = |f: fn(usize) -> f32| {
            let data: Vec<f32> = (0..n).map(f).collect();
            Tensor::<1>::from_data(burn::tensor::TensorData::new(data, [n]), &Device::flex())
        };
        let bits = |t: &Tensor<1>, threads: usize| -> [u32; 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let s = read_back(ordered_sum(t.clone()), "sum").unwrap()[0];
                let m = read_back(ordered_mean(t.clone()), "mean").unwrap()[0];
                [s.to_bits(), m.to_bits()]
            })
        };
        // Fractions, whose f32 sum depends on the order of the additions (flex's own
        // `sum` gives other bits on 2 threads than on 1 here).
        let t = tensor(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.4);
        let one = bits(&t, 1);
        for threads in [2, 3, 4] {
            assert_eq!(bits(&t, threads), one, "{threads} threads");
        }
        // Small integers, whose every partial sum (below 2^24) is exact in f32 in any order:
        // the value must be the exact sum, every row and the tail included, and the mean
        // that sum divided by n, rounded once.
        let t = tensor(|i| ((i * 7919) % 4) as f32);
        let exact: u64 = (0..n).map(|i| ((i * 7919) % 4) as u64).sum();
        assert!(exact < 1 << 24);
        let [s, m] = bits(&t, 2);
        assert_eq!(f32::from_bits(s), exact as f32);
        let mean = exact as f64 / n as f64;
        let got = f64::from(f32::from_bits(m));
        assert!((got - mean).abs() <= mean * 2f64.powi(-24), "{got} {mean}");
    }

    #[test]
    fn saturation_thresholds_solve_phi_prime_equals_one_percent() {
        // tanh' = 1 - tanh^2 = 0.01 at |z| = atanh(sqrt(0.99)).
        let t = saturation_threshold(Activation::Tanh).unwrap();
        assert!((t - 0.99f64.sqrt().atanh()).abs() < 1e-9, "{t}");
        let t = saturation_threshold(Activation::HardTanh).unwrap();
        assert!((t - 1.0).abs() < 1e-9);
        // softsign' = 1/(1+|z|)^2 = 0.01 at |z| = 9.
        let t = saturation_threshold(Activation::Softsign).unwrap();
        assert!((t - 9.0).abs() < 1e-9);
        assert!(saturation_threshold(Activation::Relu).is_none());
    }

    /// Reduce host data `[rows, cols]` on flex and return its summary.
    fn reduce(data: Vec<f32>, shape: [usize; 2], want: Want) -> Summary {
        let x = Tensor::<2>::from_data(burn::tensor::TensorData::new(data, shape), &Device::flex());
        let mut r = Reducer::new();
        r.push(x, want);
        r.finish().unwrap().remove(0)
    }

    /// Rows alternating `a` and `b` in every column of an 8x8 tensor.
    fn alternating_rows(a: f32, b: f32) -> Vec<f32> {
        (0..64)
            .map(|i| if (i / 8) % 2 == 0 { a } else { b })
            .collect()
    }

    const PLAIN: Want = Want {
        zeros: false,
        saturation: None,
    };

    #[test]
    fn reducer_matches_direct_population_statistics() {
        let rows = 7;
        let cols = 5;
        let data: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 37 % 11) as f32 - 3.0) * 0.5)
            .collect();
        let s = &reduce(
            data.clone(),
            [rows, cols],
            Want {
                zeros: true,
                saturation: Some(1.0),
            },
        );
        let n = data.len() as f64;
        let mean = data.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = data.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(
            (s.mean - mean).abs() < 1e-6 && (s.var - var).abs() < 1e-6,
            "{s:?} {mean} {var}"
        );
        let zeros = data.iter().filter(|&&v| v == 0.0).count() as f64 / n;
        let sat = data.iter().filter(|&&v| v.abs() > 1.0).count() as f64 / n;
        assert_eq!(s.zero_frac, zeros);
        assert_eq!(s.sat_frac, sat);
        assert_eq!(s.nonfinite, 0);
    }

    #[test]
    fn finite_values_near_the_f32_limit_keep_a_finite_variance() {
        // Rows alternate +-3e20 in every column: their squares overflow f32, the variance
        // 9e40 does not overflow f64.
        let s = &reduce(alternating_rows(3e20, -3e20), [8, 8], PLAIN);
        assert!((s.var / 9e40 - 1.0).abs() < 1e-5, "{}", s.var);
        assert_eq!(s.nonfinite, 0);
    }

    #[test]
    fn vanishing_values_keep_their_variance_instead_of_underflowing_to_zero() {
        // Rows alternate +-3e-21 in every column: squares (9e-42) are below f32's normal
        // range, so the within-column variance itself underflows.
        let s = &reduce(alternating_rows(3e-21, -3e-21), [8, 8], PLAIN);
        assert!((s.var / 9e-42 - 1.0).abs() < 1e-5, "{}", s.var);
    }

    #[test]
    fn tiny_values_whose_squares_vanish_entirely_still_get_their_variance() {
        // Rows alternate 1e-25 and 3e-25 in every column (mean 2e-25, variance 1e-50):
        // their squares are 0 in f32.
        let s = &reduce(alternating_rows(1e-25, 3e-25), [8, 8], PLAIN);
        assert!((s.var / 1e-50 - 1.0).abs() < 1e-4, "{}", s.var);
    }

    #[test]
    fn non_finite_entries_are_counted_exactly() {
        let mut data: Vec<f32> = (0..40).map(|i| i as f32).collect();
        data[3] = f32::NAN;
        data[17] = f32::INFINITY;
        data[18] = f32::NEG_INFINITY;
        let s = &reduce(
            data,
            [8, 5],
            Want {
                zeros: true,
                saturation: None,
            },
        );
        assert_eq!(s.nonfinite, 3);
        assert!(s.var.is_nan());
        assert_eq!(s.zero_frac, 1.0 / 40.0);
    }
}
