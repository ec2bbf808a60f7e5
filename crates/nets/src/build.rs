//! Building a network above the architectures: a [`NetConfig`] parsed and checked into a
//! [`ResolvedNet`] once (every size, every spec, every tensor's scheme against its shape),
//! its parameters declared in creation order and filled from their keys, and the memory
//! estimate of one probed pass. Not an architecture's own layout (`arch/`) nor the pass
//! (`probe.rs`).

use sigprop_init::{Activation, FillContext, InitError, Key, Layout, Scheme, fill_many};
use sigprop_theory::{AutoInitPlan, Critical, autoinit_plan, critical_sigma_w};

use crate::arch::{Job, NetConfig, NetLayout, ParamBuilder, ResolvedNet, positive};
use crate::error::NetError;
use crate::handles::ParamId;
use crate::options::{Loss, Norm, PruneMethod, PruneSpec};
use crate::params::{HEAD_CLASSES, ParamTensor, Params};

impl NetConfig {
    /// Parse the specs and check every size.
    pub fn resolve(&self) -> Result<ResolvedNet, NetError> {
        positive("depth", self.depth)?;
        positive("width", self.width)?;
        let parse_scheme = |key: &'static str, s: &str| -> Result<Scheme, NetError> {
            s.parse::<Scheme>()
                .map_err(|e: InitError| NetError::init(key, e))
        };
        // TAT's leaky ReLU solves its slope for this depth.
        let activation = self
            .activation
            .parse::<Activation>()
            .and_then(|a| sigprop_theory::resolve_activation(a, self.depth))
            .map_err(|e| NetError::init("activation", e))?;
        // TAT's slope and DKS's transformation are solved for a chain of --depth layers: a
        // plain MLP.
        if activation.depends_on_depth() && self.arch.theory(self) != crate::TheoryKind::Mlp {
            return Err(NetError::BadConfig {
                key: "activation",
                value: self.activation.clone(),
                allowed: format!(
                    "{} on arch mlp without --norm (it is solved for a chain of --depth layers)",
                    activation.name()
                ),
            });
        }
        // `model` keeps a model file's weights: a placeholder scheme, the file's values
        // copied over it (`Architecture::refill`).
        let weight_init = if self.weight_init.trim() == crate::model::MODEL_INIT {
            if !self.arch.has_file_weights() {
                return Err(NetError::BadConfig {
                    key: "init",
                    value: self.weight_init.clone(),
                    allowed: "model only with --model FILE.onnx (a model file that holds its \
                              weights)"
                        .into(),
                });
            }
            Scheme::Zeros
        } else {
            parse_scheme("init", &self.weight_init)?
        };
        let bias_init = parse_scheme("bias-init", &self.bias_init)?;
        self.arch.validate(self, &weight_init)?;
        let autoinit = match weight_init.autoinit_q() {
            Some(q) => Some(
                autoinit_plan(activation, q).map_err(|e| NetError::BadConfig {
                    key: "init",
                    value: self.weight_init.clone(),
                    allowed: format!("an autoinit plan for {activation}: {e}"),
                })?,
            ),
            None => None,
        };
        let prune = self
            .prune
            .as_deref()
            .map(str::parse::<PruneSpec>)
            .transpose()?;
        let critical_sigma_w = self.critical_sigma_w(activation, &weight_init)?;
        let net = ResolvedNet {
            config: self.clone(),
            widths: self.arch.widths(self),
            activation,
            weight_init,
            bias_init,
            autoinit,
            prune,
            critical_sigma_w,
        };
        net.check_tensors()?;
        Ok(net)
    }

    /// sigma_w of a `critical:` scheme, from the theory crate; `None` for other schemes.
    fn critical_sigma_w(
        &self,
        activation: Activation,
        scheme: &Scheme,
    ) -> Result<Option<f64>, NetError> {
        let Some((sigma_b, _)) = scheme.is_critical() else {
            return Ok(None);
        };
        let why = match critical_sigma_w(activation, sigma_b) {
            Critical::Root { sigma_w, .. } => return Ok(Some(sigma_w)),
            Critical::NoCrossing { below, above } => format!(
                "{activation} has no critical sigma_w at sigma_b={sigma_b}: chi_1 jumps over 1 \
                 between sigma_w={:.4} (chi_1={:.4}) and sigma_w={:.4} (chi_1={:.4})",
                below.0, below.1, above.0, above.1
            ),
            Critical::None { reason } => {
                format!("no critical sigma_w for {activation} at sigma_b={sigma_b}: {reason}")
            }
        };
        Err(NetError::NoCritical {
            spec: self.weight_init.clone(),
            why,
        })
    }
}

/// Bytes per stored value (every tensor sigprop builds is f32).
const F32: f64 = 4.0;

impl NetConfig {
    /// Bytes of the network's weights in `f32`: what one more seed's weights staged ahead
    /// (on the host and on the device) add to a GPU run.
    pub fn weight_bytes(&self) -> f64 {
        F32 * self.arch.pass_sizes(self, 1.0)[0]
    }

    /// An estimate of the peak memory of one probed pass of this network on a batch of
    /// `batch`, in bytes, from the sizes alone (nothing is allocated; computed in f64, so no
    /// overflow whatever the sizes). On a CPU backend device and host memory are the same memory, so both are
    /// counted:
    ///
    /// - parameters P, four times: the host copy, the device copy, the gradient, and the
    ///   transient copy made while uploading;
    /// - activation entries A (every recorded site: batch x units, or batch x channels x
    ///   pixels), eight times: z and h, the two zero probes, phi(z) saved for the backward
    ///   pass, dL/dz and dL/dh after it, and one reduction temporary;
    /// - the input and the loss target, twice each (host and device);
    /// - per architecture: an RNN keeps each step's weight-gradient product (T x N^2) until
    ///   the statistics are read; a CNN's convolution may unfold its input (batch x pixels x
    ///   channels x k^2) one layer at a time; the cross-entropy head's weights and logits.
    ///
    /// It is an estimate meant to refuse sizes that cannot fit before any memory is
    /// committed, not an exact account of an allocator. With the process's
    /// [`WORKSPACE_BYTES`] once (not per pass), `sigprop bench` measures the peak next to it:
    /// within 25% on every architecture at the benchmark sizes (docs/benchmarks.md).
    pub fn pass_bytes(&self, batch: usize) -> f64 {
        let b = batch as f64;
        let [params, act, input, extra] = self.arch.pass_sizes(self, b);
        // The loss reads the whole output: a CNN's flattened images, a transformer's tokens.
        let out = self.arch.output_features(self) as f64;
        let head = match self.loss {
            Loss::CrossEntropy => out * HEAD + 3.0 * b * HEAD,
            _ => 0.0,
        };
        let target = b * out;
        F32 * (4.0 * params + 8.0 * act + 2.0 * (input + target) + extra + head)
    }
}

/// What a process running passes holds beyond their tensors once the sizes are real (a few
/// hundred units and more), once however many passes run: the matrix products' per-thread
/// packing buffers and the allocator's pools. Measured with `sigprop bench` on flex, 2
/// threads (2026-12-07): an RNN's peak exceeds its tensors by 28 to 39 MiB from 8 x 256 to
/// 32 x 1024, a 2-unit MLP's whole pass is 9 MiB.
pub const WORKSPACE_BYTES: f64 = 32.0 * 1024.0 * 1024.0;

/// Classes of the cross-entropy head (as `params::HEAD_CLASSES`).
const HEAD: f64 = HEAD_CLASSES as f64;

/// The bias spec an `autoinit` plan defines: `normal:std=sigma_b`, or `zeros`.
pub fn autoinit_bias_spec(plan: &AutoInitPlan) -> String {
    let b2 = plan.hidden.sigma_b2;
    if b2 > 0.0 {
        format!("normal:std={}", b2.sqrt())
    } else {
        "zeros".into()
    }
}

impl ResolvedNet {
    /// Every tensor the network declares can be filled by its scheme (dirac only on
    /// convolutions, identity and sparse only on linear weights, ...), and LSUV only on an
    /// architecture that defines it: checked before anything is drawn, so a suite fails
    /// before its first run rather than in the middle.
    fn check_tensors(&self) -> Result<(), NetError> {
        let declared = declare(self);
        if let Some(plan) = &self.autoinit {
            self.check_autoinit(plan, &declared)?;
        }
        if let Some(spec) = &self.prune {
            check_prune(self, spec)?;
        }
        for job in &declared.jobs {
            job.scheme
                .check(&job.shape, job.layout, &job.ctx)
                .map_err(|e| NetError::init(job.path.clone(), e))?;
        }
        if self.weight_init.lsuv().is_some() && self.config.arch.norm() != Norm::None {
            return Err(NetError::BadConfig {
                key: "init",
                value: self.config.weight_init.clone(),
                allowed: "lsuv without --norm (a normalization undoes its rescaling)".into(),
            });
        }
        let tuned = self.weight_init.metainit().is_some() || self.weight_init.gradinit().is_some();
        if tuned && self.config.arch.norm() != Norm::None {
            return Err(NetError::BadConfig {
                key: "init",
                value: self.config.weight_init.clone(),
                allowed: format!(
                    "{} without --norm (a normalization makes the loss nearly blind to the scales of the weights before it, and sigprop does not tune normalization gains)",
                    self.weight_init.name()
                ),
            });
        }
        if self.weight_init.lsuv().is_some() && declared.layout.lsuv_layers().is_none() {
            return Err(NetError::BadConfig {
                key: "init",
                value: self.config.weight_init.clone(),
                allowed: format!(
                    "lsuv with an architecture of plain layers (mlp, cnn), not {}",
                    self.config.arch
                ),
            });
        }
        Ok(())
    }

    /// `autoinit` needs plain layers (its plan is per layer of a chain), no normalization
    /// (which would undo its scales), and the bias the plan defines.
    fn check_autoinit(&self, plan: &AutoInitPlan, declared: &Declared) -> Result<(), NetError> {
        let refuse = |allowed: String| NetError::BadConfig {
            key: "init",
            value: self.config.weight_init.clone(),
            allowed,
        };
        if declared.layout.lsuv_layers().is_none() {
            return Err(refuse(format!(
                "autoinit with an architecture of plain layers (mlp, cnn), not {}",
                self.config.arch
            )));
        }
        if self.config.arch.norm() != Norm::None {
            return Err(refuse(
                "autoinit without --norm (a normalization undoes its scales)".into(),
            ));
        }
        let want = plan.hidden.sigma_b2;
        let n = self.widths.get(1).copied().unwrap_or(1);
        let layout = Layout::Bias {
            fan_in: self.widths[0],
            fan_out: n,
        };
        let got = self
            .bias_init
            .moments(&[n], layout, &FillContext::new(self.activation))
            .ok();
        let same =
            got.is_some_and(|m| m.mean == 0.0 && (m.var - want).abs() <= 1e-9 * want.max(1e-300));
        if !same {
            return Err(NetError::BadConfig {
                key: "bias-init",
                value: self.config.bias_init.clone(),
                allowed: format!(
                    "{} (autoinit sets the bias for {}; leave --bias-init and --sigma-b out)",
                    autoinit_bias_spec(plan),
                    self.activation
                ),
            });
        }
        Ok(())
    }
}

/// The declared parameters of a network, before any value is drawn: the fill jobs in
/// creation order, the architecture's handles, and the cross-entropy head if any.
pub(crate) struct Declared {
    pub jobs: Vec<Job>,
    pub layout: NetLayout,
    pub head: Option<ParamId>,
}

/// Declare `net`'s parameters.
pub(crate) fn declare(net: &ResolvedNet) -> Declared {
    let mut b = ParamBuilder::new(net);
    let layout = net.config.arch.declare(&mut b);
    let head = (net.config.loss == Loss::CrossEntropy).then(|| {
        // The head reads the network's output as the probe sees it (a CNN's flattened).
        let n = net.config.arch.output_features(&net.config);
        let scheme = if net.is_fixup() {
            Scheme::Zeros
        } else {
            Scheme::LecunNormal
        };
        let ctx = FillContext {
            activation: Activation::Linear,
            ..b.ctx(None)
        };
        b.linear("head", (n, HEAD_CLASSES), &scheme, ctx, false)
            .weight
    });
    Declared {
        jobs: b.jobs,
        layout,
        head,
    }
}

/// Fill every parameter of `net` for `seed`.
pub fn build_params(net: &ResolvedNet, seed: u64) -> Result<Params, NetError> {
    let jobs = declare(net).jobs;
    let keyed: Vec<_> = jobs
        .iter()
        .map(|j| {
            (
                j.scheme.clone(),
                j.shape.clone(),
                j.layout,
                Key::new(seed, &j.path),
                j.ctx.clone(),
            )
        })
        .collect();
    let filled =
        fill_many(&keyed).map_err(|(i, source)| NetError::init(jobs[i].path.clone(), source))?;
    let mut params = Params {
        tensors: jobs
            .into_iter()
            .zip(filled)
            .map(|(j, data)| ParamTensor {
                path: j.path,
                shape: j.shape,
                data,
                mask: None,
            })
            .collect(),
    };
    net.config.arch.refill(net, &mut params, seed)?;
    Ok(params)
}

/// The input batch of `shape` that `net` reads under the key `(seed, key)`: rows drawn
/// from its `--inputs` file where it has one, else `gaussian()` (the architecture's own
/// draw). Every input a pass reads comes through here: the probe's (`input`), LSUV's,
/// the pruning scores' and the tuners' batches.
pub(crate) fn net_input(
    net: &ResolvedNet,
    seed: u64,
    key: &str,
    shape: [usize; 2],
    gaussian: impl FnOnce() -> Result<Vec<f32>, NetError>,
) -> Result<Vec<f32>, NetError> {
    match &net.config.inputs {
        Some(file) => file.batch(seed, key, shape[0], shape[1]),
        None => gaussian(),
    }
}

/// Whether `net` can read its `--inputs` in batches of `batch`: one sample a row of its
/// input (not an RNN, whose rows are time steps), samples of the size it reads (token ids
/// below its vocabulary where it reads ids), and at least `batch` of them. Nothing to check
/// without `--inputs`.
pub fn check_inputs(net: &ResolvedNet, batch: usize) -> Result<(), NetError> {
    let Some(file) = &net.config.inputs else {
        return Ok(());
    };
    let arch = &net.config.arch;
    if arch.kind() == crate::arch::Arch::Rnn {
        return Err(NetError::BadConfig {
            key: "inputs",
            value: file.path.clone(),
            allowed: "inputs for mlp, resmlp, cnn, rescnn or transformer (an RNN reads one \
                      row per time step, not per sample)"
                .into(),
        });
    }
    let [rows, features] = arch.input_shape(net, batch);
    let d = file.fitting(rows, features)?;
    // Token ids: read as they are, each a whole number below the vocabulary.
    if let Some(vocab) = arch.token_input() {
        if file.standardize {
            return Err(NetError::BadConfig {
                key: "standardize",
                value: "on".into(),
                allowed: "off with token ids (a network reading token ids takes them as they are)"
                    .into(),
            });
        }
        let outside = |v: f32| v.fract() != 0.0 || v < 0.0 || v >= vocab as f32;
        if let Some(v) = d.data.iter().copied().find(|&v| outside(v)) {
            return Err(NetError::BadConfig {
                key: "inputs",
                value: file.path.clone(),
                allowed: format!(
                    "token ids, whole numbers from 0 to {} (the vocabulary); the file holds {v}",
                    vocab - 1
                ),
            });
        }
    }
    Ok(())
}

/// `--prune`'s refusals that depend on the network.
pub(crate) fn check_prune(net: &ResolvedNet, spec: &PruneSpec) -> Result<(), NetError> {
    if spec.method == PruneMethod::Synflow
        && (declare(net).layout.lsuv_layers().is_none() || net.config.arch.norm() != Norm::None)
    {
        return Err(NetError::BadConfig {
            key: "prune",
            value: spec.to_string(),
            allowed: format!(
                "synflow on a plain chain of layers (mlp, cnn) without --norm, not {}",
                net.config.arch
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    #[cfg(feature = "burn")]
    use burn::config::Config;

    #[test]
    fn the_pass_estimate_counts_parameters_and_activations() {
        // MLP depth 2, width 10, batch 4: P = 2 (100 + 10), A = 2 * 4 * 10, input and
        // target 40 each.
        let c = NetConfig::new(Arch::Mlp, 2, 10, "relu", "he-normal");
        assert_eq!(
            c.pass_bytes(4),
            4.0 * (4.0 * 220.0 + 8.0 * 80.0 + 2.0 * (40.0 + 40.0))
        );
        // Explicit widths 3 -> 5 -> 2: the target has the output's 2 features.
        let mut w = c.clone();
        w.arch = crate::arch::Mlp {
            widths: Some(vec![3, 5, 2]),
            ..Default::default()
        }
        .into();
        assert_eq!(
            w.pass_bytes(4),
            4.0 * (4.0 * (20.0 + 12.0) + 8.0 * (20.0 + 8.0) + 2.0 * (12.0 + 8.0))
        );
        // The sizes of the issue do not overflow: width 1e5, batch 1e5 is terabytes.
        let huge = NetConfig::new(Arch::Mlp, 20, 100_000, "relu", "he-normal");
        assert!(huge.pass_bytes(100_000) > 1e12);
        let absurd = NetConfig::new(Arch::Cnn, usize::MAX, usize::MAX, "relu", "he-normal");
        assert!(absurd.pass_bytes(usize::MAX).is_finite());
    }

    #[cfg(feature = "burn")]
    #[test]
    fn a_config_saves_and_loads_as_its_own_record() {
        let cnn = crate::arch::Cnn {
            groups: 2,
            ..Default::default()
        };
        let mut c = NetConfig::new(cnn, 4, 16, "leaky-relu:slope=0.2", "delta-orthogonal");
        c.loss = Loss::CrossEntropy;
        let path =
            std::env::temp_dir().join(format!("sigprop-netconfig-{}.json", std::process::id()));
        c.save(&path).unwrap();
        let back = NetConfig::load(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(back, c);
        assert!(back.resolve().is_ok());
    }
}
