//! The initializer schemes: their names, parameters, formulas and papers.
//!
//! This file is the catalogue: the [`Scheme`] enum, the list of names with one-line
//! descriptions, and the accessors the network crate reads. Parsing and printing the
//! `NAME[:key=value,...]` text is `scheme_text.rs`; the laws and sampling are `fill.rs`
//! and `law.rs`, the structured matrices `structured.rs`.

use crate::fans::FanMode;

/// The law of a `variance-scaling` draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VsDistribution {
    /// Normal truncated at 2 standard deviations, rescaled to keep the variance (Keras).
    TruncatedNormal,
    /// Normal.
    Normal,
    /// Uniform on `[-sqrt(3 scale / fan), sqrt(3 scale / fan))`.
    Uniform,
}

impl VsDistribution {
    /// Spec text.
    pub fn as_str(&self) -> &'static str {
        match self {
            VsDistribution::TruncatedNormal => "truncated-normal",
            VsDistribution::Normal => "normal",
            VsDistribution::Uniform => "uniform",
        }
    }
}

/// An initializer. Variances below are per entry; `fan` is chosen by `mode`.
///
/// ```
/// use sigprop_init::Scheme;
/// let s: Scheme = "he-normal:mode=fan-out".parse().unwrap();
/// assert_eq!(s.to_string(), "he-normal:mode=fan-out");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Scheme {
    /// `zeros`: every entry 0.
    Zeros,
    /// `ones`: every entry 1.
    Ones,
    /// `constant:value=v`: every entry `v` (`value` required).
    Constant {
        /// The value.
        value: f64,
    },
    /// `uniform:a=a`: `U(-a, a)`, variance `a^2 / 3`.
    UniformSymmetric {
        /// Half-width, > 0.
        a: f64,
    },
    /// `uniform[:low=l,high=h]`: `U(l, h)`, variance `(h - l)^2 / 12`; default `U(0, 1)` as
    /// `torch.nn.init.uniform_`.
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound, > `low`.
        high: f64,
    },
    /// `normal[:mean=,std=]`: `N(mean, std^2)`, default `N(0, 1)` as `torch.nn.init.normal_`.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation, >= 0.
        std: f64,
    },
    /// `truncated-normal[:std=,bound=,correct=]`: `std' z` with `z ~ N(0,1)` conditioned on
    /// `|z| <= bound` (bound in standard deviations, default 2). With `correct=false` (the
    /// default, as `torch.nn.init.trunc_normal_`) `std' = std` and the variance is
    /// `std^2 t(bound)^2`, `t(2) = 0.87962566103423978`; with `correct=true`,
    /// `std' = std / t(bound)`, so the variance is `std^2` (Keras/JAX `VarianceScaling`).
    TruncatedNormal {
        /// Standard deviation before truncation (after, if `correct`).
        std: f64,
        /// Truncation point in standard deviations, > 0.
        bound: f64,
        /// Rescale so the truncated variance is `std^2`.
        correct: bool,
    },
    /// `variance-scaling[:scale=,mode=,distribution=]`: variance `scale / fan`, as Keras'
    /// `VarianceScaling` (defaults scale 1, fan-in, truncated-normal corrected at 2 std;
    /// uniform limit `sqrt(3 scale / fan)`).
    VarianceScaling {
        /// Variance multiplier, > 0.
        scale: f64,
        /// Which fan.
        mode: FanMode,
        /// Which law.
        distribution: VsDistribution,
    },
    /// `xavier-uniform[:gain=]`: `U(-b, b)`, `b = gain sqrt(6 / (fan_in + fan_out))`,
    /// variance `2 gain^2 / (fan_in + fan_out)` (Glorot & Bengio 2010).
    XavierUniform {
        /// Gain, > 0 (default 1).
        gain: f64,
    },
    /// `xavier-normal[:gain=]`: `N(0, 2 gain^2 / (fan_in + fan_out))` (Glorot & Bengio 2010).
    XavierNormal {
        /// Gain, > 0 (default 1).
        gain: f64,
    },
    /// `he-uniform[:mode=,negative-slope=]`: `U(-b, b)`, `b = g sqrt(3 / fan)`,
    /// `g = sqrt(2 / (1 + s^2))`, variance `g^2 / fan` (He et al. 2015; PyTorch's
    /// `kaiming_uniform_`).
    HeUniform {
        /// fan-in (default) or fan-out.
        mode: FanMode,
        /// Leaky-ReLU negative slope `s` (default 0).
        negative_slope: f64,
    },
    /// `he-normal[:mode=,negative-slope=]`: `N(0, g^2 / fan)`, `g = sqrt(2 / (1 + s^2))`
    /// (He et al. 2015; PyTorch's `kaiming_normal_`, untruncated).
    HeNormal {
        /// fan-in (default) or fan-out.
        mode: FanMode,
        /// Leaky-ReLU negative slope `s` (default 0).
        negative_slope: f64,
    },
    /// `lecun-uniform`: `U(-sqrt(3 / fan_in), sqrt(3 / fan_in))`, variance `1 / fan_in`
    /// (LeCun et al. 1998).
    LecunUniform,
    /// `lecun-normal`: `N(0, 1 / fan_in)` (LeCun et al. 1998; the SELU paper, Klambauer et
    /// al. 2017). Untruncated; Keras truncates, `variance-scaling` reproduces that.
    LecunNormal,
    /// `pytorch-default`: `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, variance `1 / (3 fan_in)`:
    /// what `nn.Linear` and `nn.ConvNd` do to weights (`kaiming_uniform_(a=sqrt(5))`) and
    /// biases.
    PytorchDefault,
    /// `orthogonal[:gain=]`: `gain Q`, `Q` Haar-distributed with orthonormal rows or columns
    /// (whichever there are fewer of) of the `[out, in*rf]` matrix; entry variance
    /// `gain^2 / max(rows, cols)` (Saxe et al. 2013; `torch.nn.init.orthogonal_`).
    Orthogonal {
        /// Gain, > 0 (default 1).
        gain: f64,
    },
    /// `identity[:gain=]`: `gain` on the diagonal of the 2-D `[out, in]` matrix, 0 elsewhere
    /// (`torch.nn.init.eye_`; rectangular allowed).
    Identity {
        /// Gain (default 1).
        gain: f64,
    },
    /// `idinit[:gain=]` (Pan et al. 2025, IDInit): `gain` times the padded identity of the
    /// 2-D `[out, in]` matrix, `W[i][j] = gain` where `i = j (mod in)` for `out >= in` (the
    /// identity stacked) and `j = i (mod out)` for `out < in` (tiled), 0 elsewhere; the map
    /// that writes a residual branch into its stream is 0, so every block starts as the
    /// identity.
    IdInit {
        /// Gain, > 0 (default 1).
        gain: f64,
    },
    /// `zero-hadamard` (Zhao et al. 2022, ZerO): deterministic, from zeros and ones. On the
    /// 2-D `[out, in]` matrix: the identity when square, the partial identity (the first
    /// `out` rows of `I`) when `out < in`, and when `out > in` the first `out` rows and `in`
    /// columns of `c H`, `H` the Sylvester-Hadamard matrix of order `2^m`, `m = ceil(log2
    /// out)`, `c = 2^(-(m-1)/2)`; the map that writes a residual branch into its stream is 0.
    /// (Named apart from `zeros`, all 0.)
    ZeroHadamard,
    /// `dirac[:groups=]`: the convolution that copies its input, `W[g*o_g + d, d, centre] = 1`
    /// for `d < min(out/groups, in/groups)` (`torch.nn.init.dirac_`); `groups` defaults to
    /// the layout's.
    Dirac {
        /// Channel groups (default: those of the layout).
        groups: Option<usize>,
    },
    /// `delta-orthogonal[:gain=]`: a Haar orthogonal `[out, in]` matrix times `gain` at the
    /// kernel centre, zeros elsewhere (Xiao et al. 2018); needs `out >= in`.
    DeltaOrthogonal {
        /// Gain, > 0 (default 1).
        gain: f64,
    },
    /// `sparse:sparsity=[,std=]`: in each column of the `[out, in]` matrix,
    /// `ceil(sparsity * out)` rows set to 0, the rest `N(0, std^2)` (Martens 2010;
    /// `torch.nn.init.sparse_`, default std 0.01).
    Sparse {
        /// Fraction of zeros per column, in `[0, 1)`.
        sparsity: f64,
        /// Standard deviation of the non-zeros.
        std: f64,
    },
    /// `critical[:sigma-b=,distribution=]`: `N(0, sigma_w^2 / fan_in)` or `sigma_w` times
    /// Haar orthogonal, with `sigma_w` the edge-of-chaos value (`chi_1 = 1`) for the
    /// activation and `sigma_b` (Poole et al. 2016; Schoenholz et al. 2017), supplied by
    /// the network crate in the [`FillContext`](crate::FillContext). Biases `N(0, sigma_b^2)`.
    Critical {
        /// Bias standard deviation, >= 0 (default 0).
        sigma_b: f64,
        /// The weight law.
        distribution: CriticalDistribution,
    },
    /// `lsuv[:tol=,max-iter=,target=]`: orthogonal (gain 1) pre-initialisation; the network
    /// crate then rescales each layer until the variance of its output is 1 within `tol`
    /// (Mishkin & Matas 2015).
    Lsuv(LsuvParams),
    /// `metainit[:base=,steps=,lr=,momentum=,eps=]`: `base` (default
    /// xavier-normal), then the network crate tunes each weight tensor's norm to lower the
    /// gradient quotient `|(g - H g) / g - 1|` (Dauphin & Schoenholz 2019).
    MetaInit(MetaInitParams),
    /// `gradinit[:base=,steps=,lr=,eta=,gamma=,opt=,alpha-min=]`: `base` (default
    /// xavier-normal), then the network crate learns one scale per weight tensor so that
    /// one optimizer step lowers the loss most under a gradient-norm bound (Zhu et al.
    /// 2021).
    GradInit(GradInitParams),
    /// `autoinit[:q=]`: scales from the analytic moments of the activation at
    /// pre-activation variance `q` (default 1), chosen so the forward variance stays at `q`
    /// and the backward factor `chi_1` is 1 where the activation allows both (sigprop's
    /// own derivation, in the spirit of Bingham & Miikkulainen 2023): hidden weights
    /// `N(0, sigma_w^2 / fan_in)` with `sigma_w^2 = 1 / E[phi'(z)^2]`, rows centred when
    /// the activation's mean would carry too much variance forward, biases
    /// `N(0, sigma_b^2)` filling the rest of `q`. The theory crate computes the plan; the
    /// network crate supplies each layer's part in the
    /// [`FillContext`](crate::FillContext).
    AutoInit {
        /// Target pre-activation variance, > 0.
        q: f64,
    },
    /// `fixup`: He-normal times `L^(-1/(2m-2))` inside residual branches, zeros for each
    /// branch's last layer and the head (Zhang et al. 2019); needs the
    /// [`FixupContext`](crate::FixupContext).
    Fixup,
    /// `gpt2[:std=]`: `N(0, std^2)`, default std 0.02, and for a weight that writes into a
    /// residual stream of `N` branches `N(0, std^2 / N)` (Radford et al. 2019: the residual
    /// output projections scaled by `1/sqrt(2 L)` for `L` transformer blocks). Without a
    /// residual context every weight is `N(0, std^2)`.
    Gpt2 {
        /// Standard deviation, > 0 (default 0.02).
        std: f64,
    },
    /// `small-init`: `N(0, 2 / (5 d))` with `d` the width of the residual stream (Nguyen &
    /// Salazar 2019, "Transformers without tears"); without a residual context `d` is the
    /// fan-in.
    SmallInit,
    /// `t-fixup`: Xavier-uniform, and inside a residual stream of `N` blocks the value,
    /// output and MLP weights (every map but the query and key) times `0.67 N^(-1/4)`
    /// (Huang et al. 2020, for networks without LayerNorm). Without a residual context it
    /// is Xavier-uniform.
    TFixup,
    /// `deepnet`: Xavier-normal, and inside a residual stream of `N` blocks the value,
    /// output and MLP weights with gain `beta = (8 N)^(-1/4)` (Wang et al. 2022, DeepNorm;
    /// the query and key keep gain 1). The other half of DeepNorm, the skip multiplier
    /// `alpha = (2 N)^(1/4)` before a post-LN, is the network's (a transformer's
    /// `skip-scale`). Without a residual context it is Xavier-normal.
    DeepNet,
}

/// Every scheme, one line each, in the order `sigprop list inits` prints them: its variant
/// (or variants), its spec name (then any alias), its one-line description, and its keys.
/// A scheme whose keys are plain numbers lists them here with their check (`required`,
/// `any`, `positive` or `nonneg`, then `= default`) or as a `flag` (a boolean, default
/// false), and nothing else reads or prints its spec text; one with other keys says `custom`
/// and reads and prints them in `scheme_text.rs`. The names, descriptions,
/// [`Scheme::name`] and the spec text of the plain schemes are generated from this table;
/// adding an initializer is its variant, its line here and its law (`law.rs`).
macro_rules! scheme_table {
    ($then:ident) => {
        $then! {
            Zeros => "zeros", "all 0", {};
            Ones => "ones", "all 1", {};
            Constant => "constant", "all `value`", { value: required };
            UniformSymmetric | Uniform => "uniform",
                "U(-a, a), or U(low, high) (default U(0, 1))", custom;
            Normal => "normal", "N(mean, std^2) (default N(0, 1))",
                { mean: any = 0.0, std: nonneg = 1.0 };
            TruncatedNormal => "truncated-normal",
                "N(0, std^2) truncated at `bound` std (default 2), optionally variance-corrected",
                { std: positive = 1.0, bound: positive = 2.0, correct: flag };
            VarianceScaling => "variance-scaling",
                "Keras VarianceScaling: variance scale/fan, normal, truncated-normal or uniform",
                custom;
            XavierUniform => "xavier-uniform" | "glorot-uniform",
                "Glorot & Bengio 2010: U(+-gain sqrt(6/(fan_in+fan_out)))",
                { gain: positive = 1.0 };
            XavierNormal => "xavier-normal" | "glorot-normal",
                "Glorot & Bengio 2010: N(0, 2 gain^2/(fan_in+fan_out))",
                { gain: positive = 1.0 };
            HeUniform => "he-uniform" | "kaiming-uniform",
                "He et al. 2015: U(+-sqrt(6/((1+s^2) fan)))", custom;
            HeNormal => "he-normal" | "kaiming-normal",
                "He et al. 2015: N(0, 2/((1+s^2) fan))", custom;
            LecunUniform => "lecun-uniform", "LeCun et al. 1998: U(+-sqrt(3/fan_in))", {};
            LecunNormal => "lecun-normal", "LeCun et al. 1998: N(0, 1/fan_in)", {};
            PytorchDefault => "pytorch-default",
                "PyTorch nn.Linear default: U(+-1/sqrt(fan_in)), variance 1/(3 fan_in)", {};
            Orthogonal => "orthogonal",
                "Saxe et al. 2013: gain times a Haar orthogonal [out, in*rf] matrix",
                { gain: positive = 1.0 };
            Identity => "identity" | "eye", "gain times the identity [out, in] matrix",
                { gain: any = 1.0 };
            IdInit => "idinit",
                "Pan et al. 2025: gain times the padded identity [out, in]; 0 where a branch writes its stream",
                { gain: positive = 1.0 };
            ZeroHadamard => "zero-hadamard",
                "Zhao et al. 2022 (ZerO): identity, partial identity or 2^(-(m-1)/2) Hadamard [out, in]; 0 where a branch writes its stream",
                {};
            Dirac => "dirac", "identity convolution (torch.nn.init.dirac_), per group", custom;
            DeltaOrthogonal => "delta-orthogonal",
                "Xiao et al. 2018: orthogonal [out, in] at the kernel centre",
                { gain: positive = 1.0 };
            Sparse => "sparse",
                "Martens 2010: ceil(sparsity*out) zeros per column, the rest N(0, std^2)", custom;
            Critical => "critical",
                "edge of chaos (chi_1 = 1): sigma_w from mean-field theory for the activation",
                custom;
            Lsuv => "lsuv",
                "Mishkin & Matas 2015: orthogonal, then rescaled to unit output variance", custom;
            MetaInit => "metainit",
                "Dauphin & Schoenholz 2019: base, then weight norms tuned to a small gradient quotient",
                custom;
            GradInit => "gradinit",
                "Zhu et al. 2021: base, then per-tensor scales so one step lowers the loss most",
                custom;
            AutoInit => "autoinit",
                "analytic moments: forward variance q and chi_1 = 1 per layer, mean cancelled where needed",
                { q: positive = 1.0 };
            Fixup => "fixup",
                "Zhang et al. 2019: He scaled by L^(-1/(2m-2)) in branches, zeros at branch ends",
                {};
            Gpt2 => "gpt2",
                "Radford et al. 2019: N(0, 0.02^2), residual output projections / sqrt(branches)",
                { std: positive = 0.02 };
            SmallInit => "small-init",
                "Nguyen & Salazar 2019: N(0, 2/(5 d)), d the residual stream's width", {};
            TFixup => "t-fixup",
                "Huang et al. 2020: Xavier-uniform, value/output/MLP weights x 0.67 N^(-1/4), N blocks",
                {};
            DeepNet => "deepnet",
                "Wang et al. 2022 (DeepNorm): Xavier-normal, value/output/MLP gain (8N)^(-1/4); skip x (2N)^(1/4)",
                {};
        }
    };
}
pub(crate) use scheme_table;

/// The names, descriptions and [`Scheme::name`] from [`scheme_table`].
macro_rules! names {
    ($( $($v:ident)|+ => $name:literal $(| $alias:literal)*, $desc:literal, $keys:tt; )*) => {
        /// Every scheme name with its one-line description, in the order `sigprop list
        /// inits` prints.
        pub const SCHEME_DESCRIPTIONS: &[(&str, &str)] = &[$(($name, $desc)),*];

        /// Every scheme name `FromStr` accepts (aliases aside).
        pub const SCHEME_NAMES: &[&str] = &[$($name),*];

        impl Scheme {
            /// The spec name without parameters.
            pub fn name(&self) -> &'static str {
                match self {
                    $($(Scheme::$v { .. })|+ => $name,)*
                }
            }
        }
    };
}
scheme_table!(names);

/// The one-line description of `name` (empty for a name not in [`SCHEME_NAMES`]).
pub fn scheme_description(name: &str) -> &'static str {
    Scheme::describe(name).unwrap_or("")
}

impl Scheme {
    /// The one-line description of a scheme name, for `sigprop list inits`.
    pub fn describe(name: &str) -> Option<&'static str> {
        SCHEME_DESCRIPTIONS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| *d)
    }

    /// `critical`'s `sigma_b`.
    pub fn sigma_b(&self) -> Option<f64> {
        self.is_critical().map(|(b, _)| b)
    }

    /// `Some((sigma_b, distribution))` for `critical`.
    pub fn is_critical(&self) -> Option<(f64, CriticalDistribution)> {
        match *self {
            Scheme::Critical {
                sigma_b,
                distribution,
            } => Some((sigma_b, distribution)),
            _ => None,
        }
    }

    /// LSUV's parameters, for `lsuv`.
    pub fn lsuv(&self) -> Option<LsuvParams> {
        match *self {
            Scheme::Lsuv(p) => Some(p),
            _ => None,
        }
    }

    /// MetaInit's parameters, for `metainit`.
    pub fn metainit(&self) -> Option<&MetaInitParams> {
        match self {
            Scheme::MetaInit(p) => Some(p),
            _ => None,
        }
    }

    /// GradInit's parameters, for `gradinit`.
    pub fn gradinit(&self) -> Option<&GradInitParams> {
        match self {
            Scheme::GradInit(p) => Some(p),
            _ => None,
        }
    }

    /// True for the schemes whose scales the network crate sets from passes over data
    /// (`lsuv`, `metainit`, `gradinit`): what they draw is only a starting point, so no
    /// theory predicts them from the drawn variance.
    pub fn data_driven(&self) -> bool {
        matches!(
            self,
            Scheme::Lsuv(_) | Scheme::MetaInit(_) | Scheme::GradInit(_)
        )
    }

    /// True for the schemes that put their weight on chosen entries (identity, Dirac,
    /// delta-orthogonal, constants) rather than spread a variance over every entry alike,
    /// which the mean-field sums over entries assume.
    pub fn is_structured(&self) -> bool {
        matches!(
            self,
            Scheme::Identity { .. }
                | Scheme::IdInit { .. }
                | Scheme::ZeroHadamard
                | Scheme::Dirac { .. }
                | Scheme::DeltaOrthogonal { .. }
                | Scheme::Constant { .. }
                | Scheme::Ones
        )
    }

    /// `autoinit`'s target pre-activation variance `q`.
    pub fn autoinit_q(&self) -> Option<f64> {
        match *self {
            Scheme::AutoInit { q } => Some(q),
            _ => None,
        }
    }

    /// True for `fixup`, which needs a [`FixupContext`](crate::FixupContext) per tensor.
    pub fn needs_fixup(&self) -> bool {
        matches!(self, Scheme::Fixup)
    }
}

/// Parameters of LSUV (Mishkin & Matas 2015), run by the network crate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LsuvParams {
    /// Stop when `|Var - 1| < tol`.
    pub tol: f64,
    /// At most this many rescalings per layer.
    pub max_iter: usize,
    /// Which variance is driven to 1.
    pub target: LsuvTarget,
}

impl Default for LsuvParams {
    fn default() -> Self {
        LsuvParams {
            tol: 0.1,
            max_iter: 10,
            target: LsuvTarget::Preact,
        }
    }
}

/// The tensor LSUV normalises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LsuvTarget {
    /// The pre-activation `z^l` (the paper's choice: the layer's output before `phi`).
    Preact,
    /// The activation `h^l`.
    Act,
}

impl LsuvTarget {
    /// Spec text.
    pub fn as_str(&self) -> &'static str {
        match self {
            LsuvTarget::Preact => "preact",
            LsuvTarget::Act => "act",
        }
    }
}

/// The weight law of the `critical` scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CriticalDistribution {
    /// `W ~ N(0, sigma_w^2 / fan_in)`.
    Normal,
    /// Haar orthogonal times `sigma_w`.
    Orthogonal,
}

impl CriticalDistribution {
    /// Spec text.
    pub fn as_str(&self) -> &'static str {
        match self {
            CriticalDistribution::Normal => "normal",
            CriticalDistribution::Orthogonal => "orthogonal",
        }
    }
}

/// The initializers a meta-learned scheme may start from: plain laws that need no context.
pub const TUNE_BASE_NAMES: &[&str] = &[
    "xavier-normal",
    "xavier-uniform",
    "lecun-normal",
    "lecun-uniform",
    "he-normal",
    "he-uniform",
    "orthogonal",
    "pytorch-default",
];

/// Parameters of MetaInit (Dauphin & Schoenholz 2019), run by the network crate: the norm
/// of every weight tensor (two or more dimensions) is tuned from `base` by signSGD with
/// momentum on its logarithm, to lower the gradient quotient.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaInitParams {
    /// The initializer whose draws are rescaled (one of [`TUNE_BASE_NAMES`]).
    pub base: Box<Scheme>,
    /// Optimisation steps (default 100).
    pub steps: usize,
    /// Step of the log-norm per unit of momentum (default 0.01).
    pub lr: f64,
    /// Momentum of the sign updates, in `[0, 1)` (default 0.9).
    pub momentum: f64,
    /// The quotient's guard against division by a vanishing gradient (default 1e-5).
    pub eps: f64,
}

impl MetaInitParams {
    /// The defaults around `base`.
    pub fn new(base: Scheme) -> Self {
        MetaInitParams {
            base: Box::new(base),
            steps: 100,
            lr: 0.01,
            momentum: 0.9,
            eps: 1e-5,
        }
    }
}

/// The optimizer whose first step GradInit looks ahead through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GradInitOpt {
    /// `theta - eta g`; the gradient bound is on `||g||_2`.
    Sgd,
    /// Adam's first step, `theta - eta sign(g)`; the bound is on `||g||_1`.
    Adam,
}

impl GradInitOpt {
    /// Spec text.
    pub fn as_str(&self) -> &'static str {
        match self {
            GradInitOpt::Sgd => "sgd",
            GradInitOpt::Adam => "adam",
        }
    }
}

/// Parameters of GradInit (Zhu et al. 2021), run by the network crate: one scale per
/// weight tensor, learned by Adam so that one optimizer step from the scaled weights lowers
/// the loss on a second batch most, while the gradient's norm stays under `gamma`.
#[derive(Debug, Clone, PartialEq)]
pub struct GradInitParams {
    /// The initializer whose draws are rescaled (one of [`TUNE_BASE_NAMES`]).
    pub base: Box<Scheme>,
    /// Optimisation steps (default 100).
    pub steps: usize,
    /// Adam's learning rate for the scales (default 0.01).
    pub lr: f64,
    /// The looked-ahead step's learning rate (default 0.1).
    pub eta: f64,
    /// The bound on the gradient's norm (default 1).
    pub gamma: f64,
    /// The looked-ahead optimizer.
    pub opt: GradInitOpt,
    /// The smallest scale allowed (default 0.01).
    pub alpha_min: f64,
}

impl GradInitParams {
    /// The defaults around `base`.
    pub fn new(base: Scheme) -> Self {
        GradInitParams {
            base: Box::new(base),
            steps: 100,
            lr: 0.01,
            eta: 0.1,
            gamma: 1.0,
            opt: GradInitOpt::Sgd,
            alpha_min: 0.01,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_has_one_description() {
        assert_eq!(SCHEME_NAMES.len(), SCHEME_DESCRIPTIONS.len());
        for (n, (d, _)) in SCHEME_NAMES.iter().zip(SCHEME_DESCRIPTIONS) {
            assert_eq!(n, d);
            assert!(Scheme::describe(n).is_some());
        }
    }

    #[test]
    fn accessors_expose_the_network_crates_parameters() {
        let s: Scheme = "critical:sigma-b=0.3,distribution=orthogonal"
            .parse()
            .unwrap();
        assert_eq!(s.sigma_b(), Some(0.3));
        assert_eq!(
            s.is_critical(),
            Some((0.3, CriticalDistribution::Orthogonal))
        );
        let l: Scheme = "lsuv".parse().unwrap();
        assert_eq!(
            l.lsuv(),
            Some(LsuvParams {
                tol: 0.1,
                max_iter: 10,
                target: LsuvTarget::Preact
            })
        );
        assert!("fixup".parse::<Scheme>().unwrap().needs_fixup());
        assert!(!l.needs_fixup() && l.is_critical().is_none());
    }
}
