//! Fan-in and fan-out of a weight tensor, from its shape and its storage layout.
//!
//! The fans are what each output unit sees (`fan_in`) and what each input unit feeds
//! (`fan_out`), the quantities the variance-scaling initializers divide by. This file
//! knows shapes only: no sampling, no gains.
//!
//! Grouped convolutions differ from PyTorch on purpose. PyTorch's
//! `_calculate_fan_in_and_fan_out` takes `fan_in = size(1) * rf = (in / groups) * rf`,
//! which is right, but `fan_out = size(0) * rf = out * rf`, which ignores the groups
//! (pytorch/pytorch issue #23854, open since 2019): an input channel of a grouped
//! convolution feeds only the `out / groups` output channels of its group. Here
//! `fan_out = (out / groups) * rf`, so the backward ("fan-out") variance is preserved for
//! grouped and depthwise convolutions too. With `groups = 1` both agree.

use crate::error::InitError;

/// How a weight tensor's dimensions map onto the layer's input and output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Burn's `Linear` weight `[d_in, d_out]` (`y = x W`).
    InOut,
    /// PyTorch's `nn.Linear` weight `[out, in]` (`y = x W^T`).
    OutIn,
    /// Convolution weight `[out, in / groups, k...]`, as both Burn and PyTorch store it.
    Conv {
        /// Number of channel groups (1 for a dense convolution, `in` for depthwise).
        groups: usize,
    },
    /// Transposed convolution weight `[in, out / groups, k...]`.
    ConvTranspose {
        /// Number of channel groups.
        groups: usize,
    },
    /// A 1-D bias vector; its fans are those of the layer it belongs to.
    Bias {
        /// The layer's fan-in.
        fan_in: usize,
        /// The layer's fan-out.
        fan_out: usize,
    },
}

/// The fans of one weight tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fans {
    /// Number of inputs each output unit sums over.
    pub fan_in: usize,
    /// Number of outputs each input unit feeds.
    pub fan_out: usize,
}

impl Fans {
    /// The fans selected by a `mode=fan-in|fan-out|fan-avg` key.
    pub fn by_mode(&self, mode: FanMode) -> f64 {
        match mode {
            FanMode::FanIn => self.fan_in as f64,
            FanMode::FanOut => self.fan_out as f64,
            FanMode::FanAvg => 0.5 * (self.fan_in as f64 + self.fan_out as f64),
        }
    }
}

/// Which fan a variance-scaling initializer divides by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanMode {
    /// Preserve the forward variance: divide by `fan_in`.
    FanIn,
    /// Preserve the backward variance: divide by `fan_out`.
    FanOut,
    /// Glorot's compromise: divide by `(fan_in + fan_out) / 2`.
    FanAvg,
}

impl FanMode {
    /// The spec text (`fan-in`, `fan-out`, `fan-avg`).
    pub fn as_str(&self) -> &'static str {
        match self {
            FanMode::FanIn => "fan-in",
            FanMode::FanOut => "fan-out",
            FanMode::FanAvg => "fan-avg",
        }
    }

    /// Inverse of [`FanMode::as_str`].
    pub fn from_name(s: &str) -> Option<FanMode> {
        match s {
            "fan-in" => Some(FanMode::FanIn),
            "fan-out" => Some(FanMode::FanOut),
            "fan-avg" => Some(FanMode::FanAvg),
            _ => None,
        }
    }
}

fn bad(shape: &[usize], layout: Layout, why: impl Into<String>) -> InitError {
    InitError::BadShape {
        what: format!("layout {layout:?}"),
        shape: shape.to_vec(),
        why: why.into(),
    }
}

/// The fans of a tensor of `shape` stored in `layout`.
///
/// ```
/// use sigprop_init::{fans, Fans, Layout};
/// // A grouped 3x3 convolution, 64 in and 64 out channels in 8 groups: [64, 8, 3, 3].
/// let f = fans(&[64, 8, 3, 3], Layout::Conv { groups: 8 }).unwrap();
/// assert_eq!(f, Fans { fan_in: 72, fan_out: 72 });
/// ```
pub fn fans(shape: &[usize], layout: Layout) -> Result<Fans, InitError> {
    if shape.contains(&0) {
        return Err(bad(shape, layout, "every dimension must be > 0"));
    }
    match layout {
        Layout::InOut | Layout::OutIn => {
            if shape.len() != 2 {
                return Err(bad(shape, layout, "a linear weight has 2 dimensions"));
            }
            let (fan_in, fan_out) = if layout == Layout::InOut {
                (shape[0], shape[1])
            } else {
                (shape[1], shape[0])
            };
            Ok(Fans { fan_in, fan_out })
        }
        Layout::Conv { groups } | Layout::ConvTranspose { groups } => {
            if shape.len() < 3 {
                return Err(bad(
                    shape,
                    layout,
                    "a convolution weight has at least 3 dimensions",
                ));
            }
            if groups == 0 {
                return Err(bad(shape, layout, "groups must be > 0"));
            }
            if !shape[0].is_multiple_of(groups) {
                return Err(bad(
                    shape,
                    layout,
                    format!(
                        "{} channels in dimension 0 are not divisible by groups={groups}",
                        shape[0]
                    ),
                ));
            }
            let rf: usize = shape[2..].iter().product();
            // Conv: [out, in/g, k..]; ConvTranspose: [in, out/g, k..].
            let per_group_0 = shape[0] / groups;
            let per_group_1 = shape[1];
            let (fan_in, fan_out) = if matches!(layout, Layout::Conv { .. }) {
                (per_group_1 * rf, per_group_0 * rf)
            } else {
                (per_group_0 * rf, per_group_1 * rf)
            };
            Ok(Fans { fan_in, fan_out })
        }
        Layout::Bias { fan_in, fan_out } => {
            if shape.len() != 1 {
                return Err(bad(shape, layout, "a bias has 1 dimension"));
            }
            if fan_in == 0 || fan_out == 0 {
                return Err(bad(shape, layout, "the layer's fans must be > 0"));
            }
            Ok(Fans { fan_in, fan_out })
        }
    }
}

/// The tensor as the 2-D matrix the structured schemes (orthogonal, identity, sparse) act
/// on: `(rows, cols)`, with `rows` the output side and the tensor's storage order equal to
/// that matrix's row-major order, except for [`Layout::InOut`], whose storage is its
/// transpose.
///
/// `OutIn`, `InOut`: `[out, in]`; `Conv`: `[out, (in/groups) * rf]`; `ConvTranspose`:
/// `[in, (out/groups) * rf]` (the stored flattening, as `torch.nn.init.orthogonal_` takes
/// it: the map from one input channel to its output patch); `Bias`: `[len, 1]`.
pub fn logical_matrix(shape: &[usize], layout: Layout) -> Result<(usize, usize), InitError> {
    fans(shape, layout)?;
    Ok(match layout {
        Layout::InOut => (shape[1], shape[0]),
        Layout::Bias { .. } => (shape[0], 1),
        _ => (shape[0], shape[1..].iter().product()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_fans_follow_the_layout() {
        assert_eq!(
            fans(&[3, 5], Layout::InOut).unwrap(),
            Fans {
                fan_in: 3,
                fan_out: 5
            }
        );
        assert_eq!(
            fans(&[3, 5], Layout::OutIn).unwrap(),
            Fans {
                fan_in: 5,
                fan_out: 3
            }
        );
    }

    #[test]
    fn grouped_and_depthwise_conv_fans_count_one_group() {
        // [64, 8, 3, 3], groups 8: 64 in channels (8 per group), 64 out (8 per group).
        let g = Layout::Conv { groups: 8 };
        assert_eq!(
            fans(&[64, 8, 3, 3], g).unwrap(),
            Fans {
                fan_in: 8 * 9,
                fan_out: 8 * 9
            }
        );
        // Depthwise [32, 1, 5, 5], groups 32: each channel sees and feeds one channel.
        let d = Layout::Conv { groups: 32 };
        assert_eq!(
            fans(&[32, 1, 5, 5], d).unwrap(),
            Fans {
                fan_in: 25,
                fan_out: 25
            }
        );
        // Dense conv1d [16, 4, 7]: the PyTorch values.
        let c = Layout::Conv { groups: 1 };
        assert_eq!(
            fans(&[16, 4, 7], c).unwrap(),
            Fans {
                fan_in: 28,
                fan_out: 112
            }
        );
        // Conv3d with 2 groups: [12, 3, 2, 2, 2] = 6 in, 12 out channels.
        let c3 = Layout::Conv { groups: 2 };
        assert_eq!(
            fans(&[12, 3, 2, 2, 2], c3).unwrap(),
            Fans {
                fan_in: 24,
                fan_out: 48
            }
        );
    }

    #[test]
    fn transposed_conv_fans_swap_the_channel_roles() {
        // ConvTranspose2d(in=16, out=8, k=4, groups=2): weight [16, 4, 4, 4].
        // Each output channel sees 8 input channels x 16 taps; each input feeds 4 x 16.
        let t = Layout::ConvTranspose { groups: 2 };
        assert_eq!(
            fans(&[16, 4, 4, 4], t).unwrap(),
            Fans {
                fan_in: 128,
                fan_out: 64
            }
        );
        let t1 = Layout::ConvTranspose { groups: 1 };
        assert_eq!(
            fans(&[16, 4, 3], t1).unwrap(),
            Fans {
                fan_in: 48,
                fan_out: 12
            }
        );
    }

    #[test]
    fn bias_takes_the_layer_fans() {
        let b = Layout::Bias {
            fan_in: 7,
            fan_out: 9,
        };
        assert_eq!(
            fans(&[9], b).unwrap(),
            Fans {
                fan_in: 7,
                fan_out: 9
            }
        );
        assert!(fans(&[9, 1], b).is_err());
    }

    #[test]
    fn bad_shapes_are_errors_that_say_why() {
        let e = fans(&[0, 3], Layout::InOut).unwrap_err().to_string();
        assert!(e.contains("> 0"), "{e}");
        let e = fans(&[3, 3, 3], Layout::OutIn).unwrap_err().to_string();
        assert!(e.contains("2 dimensions"), "{e}");
        let e = fans(&[10, 3, 3, 3], Layout::Conv { groups: 4 })
            .unwrap_err()
            .to_string();
        assert!(e.contains("groups=4") && e.contains("10"), "{e}");
        assert!(fans(&[10, 3], Layout::Conv { groups: 1 }).is_err());
        assert!(fans(&[10, 3, 3], Layout::Conv { groups: 0 }).is_err());
    }

    #[test]
    fn logical_matrix_puts_outputs_on_rows() {
        assert_eq!(logical_matrix(&[3, 5], Layout::InOut).unwrap(), (5, 3));
        assert_eq!(logical_matrix(&[3, 5], Layout::OutIn).unwrap(), (3, 5));
        assert_eq!(
            logical_matrix(&[8, 2, 3, 3], Layout::Conv { groups: 1 }).unwrap(),
            (8, 18)
        );
    }
}
