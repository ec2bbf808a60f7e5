//! Reading and printing schemes as `NAME[:key=value,...]` text.
//!
//! Printing gives the canonical spec: keys in a fixed order, keys at their default value
//! left out, so a canonical spec prints back unchanged and `parse(print(s)) == s` for every
//! scheme. A spec written with explicit defaults prints without them. Every error names the
//! key, the value and what is allowed (see [`InitError`]).

use std::fmt;
use std::str::FromStr;

use crate::error::InitError;
use crate::fans::FanMode;
use crate::scheme::{
    CriticalDistribution, GradInitOpt, GradInitParams, LsuvParams, LsuvTarget, MetaInitParams,
    SCHEME_NAMES, Scheme, TUNE_BASE_NAMES, VsDistribution, scheme_table,
};
use crate::spec::{Spec, fmt_f64};

/// A plain key's value read from `spec`, by its check (see [`scheme_table`]).
macro_rules! key_value {
    ($spec:expr, $key:expr, required) => {
        required($spec, $key)?
    };
    ($spec:expr, $key:expr, any, $d:expr) => {
        $spec.get_f64($key, $d)?
    };
    ($spec:expr, $key:expr, positive, $d:expr) => {
        $spec.get_positive($key, $d)?
    };
    ($spec:expr, $key:expr, nonneg, $d:expr) => {
        $spec.get_nonneg($key, $d)?
    };
    ($spec:expr, $key:expr, flag) => {
        $spec.get_bool($key, false)?
    };
}

/// A plain key's canonical pair pushed onto `$p` unless it holds its default.
macro_rules! push_key {
    ($p:ident, $key:expr, $v:expr, required) => {
        $p.push(($key, fmt_f64(*$v)))
    };
    ($p:ident, $key:expr, $v:expr, flag) => {
        if *$v {
            $p.push(($key, "true".to_string()))
        }
    };
    ($p:ident, $key:expr, $v:expr, $check:ident, $d:expr) => {
        if *$v != $d {
            $p.push(($key, fmt_f64(*$v)))
        }
    };
}

/// One plain scheme's spec, read when `$name` is one of its names (`None` otherwise, and
/// for a `custom` scheme).
macro_rules! read_plain {
    ($name:expr, $spec:expr, $($v:ident)|+, [$($n:literal),+], custom) => {
        None::<Result<Scheme, InitError>>
    };
    ($name:expr, $spec:expr, $v:ident, [$($n:literal),+],
     { $($f:ident : $check:ident $(= $d:expr)?),* $(,)? }) => {
        if [$($n),+].contains(&$name) {
            #[allow(unused_variables)]
            let read = |spec: &mut Spec| -> Result<Scheme, InitError> {
                Ok(Scheme::$v { $($f: key_value!(spec, stringify!($f), $check $(, $d)?)),* })
            };
            Some(read($spec))
        } else {
            None
        }
    };
}

/// One plain scheme's canonical pairs when `$s` is that scheme (`None` otherwise, and for
/// a `custom` scheme).
macro_rules! print_plain {
    ($s:expr, $($v:ident)|+, custom) => {
        None::<Vec<(&'static str, String)>>
    };
    ($s:expr, $v:ident, { $($f:ident : $check:ident $(= $d:expr)?),* $(,)? }) => {
        if let Scheme::$v { $($f),* } = $s {
            #[allow(unused_mut)]
            let mut p: Vec<(&'static str, String)> = Vec::new();
            $(push_key!(p, stringify!($f), $f, $check $(, $d)?);)*
            Some(p)
        } else {
            None
        }
    };
}

/// Reading and printing the plain schemes, from [`scheme_table`].
macro_rules! plain_text {
    ($( $($v:ident)|+ => $name:literal $(| $alias:literal)*, $desc:literal, $keys:tt; )*) => {
        impl Scheme {
            /// The scheme named `name` (an alias included) when it is a plain one, read
            /// from `spec`; `None` for a custom or unknown name.
            fn read_plain(name: &str, spec: &mut Spec) -> Option<Result<Scheme, InitError>> {
                $(
                    if let Some(read) =
                        read_plain!(name, spec, $($v)|+, [$name $(, $alias)*], $keys)
                    {
                        return Some(read);
                    }
                )*
                None
            }

            /// The canonical pairs of a plain scheme; `None` for a custom one.
            #[allow(clippy::vec_init_then_push)]
            fn plain_pairs(&self) -> Option<Vec<(&'static str, String)>> {
                $(
                    if let Some(p) = print_plain!(self, $($v)|+, $keys) {
                        return Some(p);
                    }
                )*
                None
            }
        }
    };
}
scheme_table!(plain_text);

impl Scheme {
    /// The canonical `(key, value)` pairs of this scheme: defaults left out.
    fn pairs(&self) -> Vec<(&'static str, String)> {
        use Scheme::*;
        if let Some(p) = self.plain_pairs() {
            return p;
        }
        let mut p: Vec<(&'static str, String)> = Vec::new();
        let num = |p: &mut Vec<_>, k: &'static str, v: f64, default: Option<f64>| {
            if default != Some(v) {
                p.push((k, fmt_f64(v)));
            }
        };
        match self {
            UniformSymmetric { a } => num(&mut p, "a", *a, None),
            // The default U(0, 1) prints no keys.
            Uniform { low, high } if (*low, *high) != (0.0, 1.0) => {
                num(&mut p, "low", *low, None);
                num(&mut p, "high", *high, None);
            }
            VarianceScaling {
                scale,
                mode,
                distribution,
            } => {
                num(&mut p, "scale", *scale, Some(1.0));
                if *mode != FanMode::FanIn {
                    p.push(("mode", mode.as_str().into()));
                }
                if *distribution != VsDistribution::TruncatedNormal {
                    p.push(("distribution", distribution.as_str().into()));
                }
            }
            HeUniform {
                mode,
                negative_slope,
            }
            | HeNormal {
                mode,
                negative_slope,
            } => {
                if *mode != FanMode::FanIn {
                    p.push(("mode", mode.as_str().into()));
                }
                num(&mut p, "negative-slope", *negative_slope, Some(0.0));
            }
            Dirac { groups: Some(g) } => p.push(("groups", g.to_string())),
            Sparse { sparsity, std } => {
                num(&mut p, "sparsity", *sparsity, None);
                num(&mut p, "std", *std, Some(0.01));
            }
            Critical {
                sigma_b,
                distribution,
            } => {
                num(&mut p, "sigma-b", *sigma_b, Some(0.0));
                if *distribution != CriticalDistribution::Normal {
                    p.push(("distribution", distribution.as_str().into()));
                }
            }
            Lsuv(l) => {
                num(&mut p, "tol", l.tol, Some(0.1));
                if l.max_iter != 10 {
                    p.push(("max-iter", l.max_iter.to_string()));
                }
                if l.target != LsuvTarget::Preact {
                    p.push(("target", l.target.as_str().into()));
                }
            }
            MetaInit(m) => {
                let d = MetaInitParams::new(XavierNormal { gain: 1.0 });
                if *m.base != *d.base {
                    p.push(("base", m.base.to_string()));
                }
                if m.steps != d.steps {
                    p.push(("steps", m.steps.to_string()));
                }
                num(&mut p, "lr", m.lr, Some(d.lr));
                num(&mut p, "momentum", m.momentum, Some(d.momentum));
                num(&mut p, "eps", m.eps, Some(d.eps));
            }
            GradInit(g) => {
                let d = GradInitParams::new(XavierNormal { gain: 1.0 });
                if *g.base != *d.base {
                    p.push(("base", g.base.to_string()));
                }
                if g.steps != d.steps {
                    p.push(("steps", g.steps.to_string()));
                }
                num(&mut p, "lr", g.lr, Some(d.lr));
                num(&mut p, "eta", g.eta, Some(d.eta));
                num(&mut p, "gamma", g.gamma, Some(d.gamma));
                if g.opt != d.opt {
                    p.push(("opt", g.opt.as_str().into()));
                }
                num(&mut p, "alpha-min", g.alpha_min, Some(d.alpha_min));
            }
            // The plain schemes (printed above) and the custom ones at their defaults.
            _ => {}
        }
        p
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        for (i, (k, v)) in self.pairs().iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { ':' } else { ',' })?;
        }
        Ok(())
    }
}

fn required(spec: &mut Spec, key: &str) -> Result<f64, InitError> {
    spec.get_f64_opt(key)?.ok_or_else(|| InitError::MissingKey {
        what: spec.what,
        name: spec.name.clone(),
        key: key.to_string(),
    })
}

/// A meta-learned scheme's `base`: a name from [`TUNE_BASE_NAMES`], without keys.
fn tune_base(spec: &mut Spec) -> Result<Scheme, InitError> {
    let name = spec.get_choice("base", TUNE_BASE_NAMES)?;
    name.parse()
}

fn fan_mode(spec: &mut Spec, allowed: &[&'static str]) -> Result<FanMode, InitError> {
    let m = spec.get_choice("mode", allowed)?;
    FanMode::from_name(m).ok_or_else(|| spec.bad("mode", m, &allowed.join(", ")))
}

impl FromStr for Scheme {
    type Err = InitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use Scheme::*;
        let mut spec = Spec::parse(s, "initializer")?;
        let name = spec.name.clone();
        if let Some(plain) = Scheme::read_plain(&name, &mut spec) {
            let scheme = plain?;
            spec.finish()?;
            return Ok(scheme);
        }
        let scheme = match name.as_str() {
            "uniform" => {
                let a = spec.get_f64_opt("a")?;
                let low = spec.get_f64_opt("low")?;
                let high = spec.get_f64_opt("high")?;
                match (a, low, high) {
                    (Some(a), None, None) if a > 0.0 => UniformSymmetric { a },
                    (Some(a), None, None) => {
                        return Err(spec.bad("a", &fmt_f64(a), "a number > 0"));
                    }
                    (Some(a), _, _) => {
                        return Err(spec.bad(
                            "a",
                            &fmt_f64(a),
                            "either a= or low=/high=, not both",
                        ));
                    }
                    (None, low, high) => {
                        let (low, high) = (low.unwrap_or(0.0), high.unwrap_or(1.0));
                        if high <= low {
                            let allowed = format!("a number > low={}", fmt_f64(low));
                            return Err(spec.bad("high", &fmt_f64(high), &allowed));
                        }
                        Uniform { low, high }
                    }
                }
            }
            "variance-scaling" => {
                let scale = spec.get_positive("scale", 1.0)?;
                let mode = fan_mode(&mut spec, &["fan-in", "fan-out", "fan-avg"])?;
                let distribution = match spec
                    .get_choice("distribution", &["truncated-normal", "normal", "uniform"])?
                {
                    "normal" => VsDistribution::Normal,
                    "uniform" => VsDistribution::Uniform,
                    _ => VsDistribution::TruncatedNormal,
                };
                VarianceScaling {
                    scale,
                    mode,
                    distribution,
                }
            }
            name @ ("he-uniform" | "he-normal" | "kaiming-uniform" | "kaiming-normal") => {
                let uniform = name.ends_with("uniform");
                let mode = fan_mode(&mut spec, &["fan-in", "fan-out"])?;
                let negative_slope = spec.get_f64("negative-slope", 0.0)?;
                if uniform {
                    HeUniform {
                        mode,
                        negative_slope,
                    }
                } else {
                    HeNormal {
                        mode,
                        negative_slope,
                    }
                }
            }
            "dirac" => Dirac {
                groups: if spec.get_str("groups").is_some() {
                    Some(spec.get_usize("groups", 1)?)
                } else {
                    None
                },
            },
            "sparse" => {
                let sparsity = required(&mut spec, "sparsity")?;
                if !(0.0..1.0).contains(&sparsity) {
                    return Err(spec.bad("sparsity", &fmt_f64(sparsity), "a number in [0, 1)"));
                }
                Sparse {
                    sparsity,
                    std: spec.get_nonneg("std", 0.01)?,
                }
            }
            "critical" => {
                let sigma_b = spec.get_nonneg("sigma-b", 0.0)?;
                let distribution =
                    match spec.get_choice("distribution", &["normal", "orthogonal"])? {
                        "orthogonal" => CriticalDistribution::Orthogonal,
                        _ => CriticalDistribution::Normal,
                    };
                Critical {
                    sigma_b,
                    distribution,
                }
            }
            "lsuv" => {
                let tol = spec.get_positive("tol", 0.1)?;
                let max_iter = spec.get_usize("max-iter", 10)?;
                let target = match spec.get_choice("target", &["preact", "act"])? {
                    "act" => LsuvTarget::Act,
                    _ => LsuvTarget::Preact,
                };
                Lsuv(LsuvParams {
                    tol,
                    max_iter,
                    target,
                })
            }
            "metainit" => {
                let mut m = MetaInitParams::new(tune_base(&mut spec)?);
                m.steps = spec.get_usize("steps", m.steps)?;
                m.lr = spec.get_positive("lr", m.lr)?;
                m.momentum = spec.get_nonneg("momentum", m.momentum)?;
                if m.momentum >= 1.0 {
                    return Err(spec.bad("momentum", &fmt_f64(m.momentum), "a number in [0, 1)"));
                }
                m.eps = spec.get_positive("eps", m.eps)?;
                MetaInit(m)
            }
            "gradinit" => {
                let mut g = GradInitParams::new(tune_base(&mut spec)?);
                g.steps = spec.get_usize("steps", g.steps)?;
                g.lr = spec.get_positive("lr", g.lr)?;
                g.eta = spec.get_positive("eta", g.eta)?;
                g.gamma = spec.get_positive("gamma", g.gamma)?;
                g.opt = match spec.get_choice("opt", &["sgd", "adam"])? {
                    "adam" => GradInitOpt::Adam,
                    _ => GradInitOpt::Sgd,
                };
                g.alpha_min = spec.get_positive("alpha-min", g.alpha_min)?;
                GradInit(g)
            }
            other => {
                return Err(InitError::UnknownName {
                    what: "initializer",
                    name: other.to_string(),
                    allowed: SCHEME_NAMES.join(", "),
                });
            }
        };
        spec.finish()?;
        Ok(scheme)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One canonical spec per scheme (every variant, several with non-default keys).
    pub(crate) const CANONICAL: &[&str] = &[
        "zeros",
        "ones",
        "constant:value=0.25",
        "uniform:a=0.1",
        "uniform",
        "uniform:low=-1,high=3",
        "normal",
        "normal:mean=0.5,std=0.02",
        "truncated-normal",
        "truncated-normal:std=0.5,bound=3,correct=true",
        "variance-scaling",
        "variance-scaling:scale=2,mode=fan-avg,distribution=uniform",
        "variance-scaling:mode=fan-out,distribution=normal",
        "xavier-uniform",
        "xavier-normal:gain=1.5",
        "he-uniform:mode=fan-out",
        "he-normal:negative-slope=0.2",
        "lecun-uniform",
        "lecun-normal",
        "pytorch-default",
        "orthogonal:gain=1.4142135623730951",
        "identity:gain=2",
        "dirac",
        "dirac:groups=4",
        "delta-orthogonal",
        "sparse:sparsity=0.9",
        "sparse:sparsity=0.5,std=0.1",
        "idinit",
        "idinit:gain=0.5",
        "zero-hadamard",
        "critical",
        "critical:sigma-b=0.05,distribution=orthogonal",
        "lsuv",
        "lsuv:tol=0.01,max-iter=20,target=act",
        "metainit",
        "metainit:base=orthogonal,steps=20,lr=0.05,momentum=0.5,eps=0.001",
        "gradinit",
        "gradinit:base=he-normal,steps=10,lr=0.1,eta=0.5,gamma=2,opt=adam,alpha-min=0.1",
        "autoinit",
        "autoinit:q=2",
        "fixup",
        "gpt2",
        "gpt2:std=0.01",
        "small-init",
        "t-fixup",
        "deepnet",
    ];

    #[test]
    fn every_scheme_prints_back_unchanged() {
        for s in CANONICAL {
            let scheme: Scheme = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(&scheme.to_string(), s);
            assert_eq!(scheme.to_string().parse::<Scheme>().unwrap(), scheme);
        }
        for name in SCHEME_NAMES {
            assert!(
                CANONICAL.iter().any(|c| c.split(':').next() == Some(name)),
                "{name} untested"
            );
        }
    }

    #[test]
    fn explicit_defaults_print_canonically() {
        let s: Scheme = "normal:mean=0,std=1".parse().unwrap();
        assert_eq!(s.to_string(), "normal");
        let s: Scheme = "kaiming-normal:mode=fan-in".parse().unwrap();
        assert_eq!(s.to_string(), "he-normal");
    }

    fn err(s: &str) -> String {
        s.parse::<Scheme>().unwrap_err().to_string()
    }

    #[test]
    fn bad_specs_name_the_key_and_value() {
        let e = err("he-norml");
        assert!(e.contains("\"he-norml\"") && e.contains("he-normal"), "{e}");
        let e = err("he-normal:gain=2");
        assert!(e.contains("\"gain\""), "{e}");
        let e = err("normal:std=-1");
        assert!(e.contains("std=-1") && e.contains(">= 0"), "{e}");
        let e = err("sparse:sparsity=1.5");
        assert!(e.contains("sparsity=1.5") && e.contains("[0, 1)"), "{e}");
        let e = err("sparse");
        assert!(e.contains("sparsity="), "{e}");
        let e = err("constant");
        assert!(e.contains("value="), "{e}");
        let e = err("uniform:a=");
        assert!(e.contains("a="), "{e}");
        let e = err("uniform:low=2,high=1");
        assert!(e.contains("high=1") && e.contains("low=2"), "{e}");
        let e = err("he-uniform:mode=fan-avg");
        assert!(e.contains("mode=fan-avg") && e.contains("fan-out"), "{e}");
        let e = err("lsuv:max-iter=0");
        assert!(e.contains("max-iter=0"), "{e}");
        let e = err("truncated-normal:correct=yes");
        assert!(
            e.contains("correct=yes") && e.contains("true or false"),
            "{e}"
        );
        let e = err("metainit:base=critical");
        assert!(
            e.contains("base=critical") && e.contains("xavier-normal"),
            "{e}"
        );
        let e = err("metainit:momentum=1");
        assert!(e.contains("momentum=1") && e.contains("[0, 1)"), "{e}");
        let e = err("gradinit:opt=sgd2");
        assert!(e.contains("opt=sgd2") && e.contains("adam"), "{e}");
        let e = err("gradinit:steps=0");
        assert!(e.contains("steps=0"), "{e}");
        let e = err("orthogonal:gain=nan");
        assert!(e.contains("gain=nan"), "{e}");
    }
}
