//! Running the training probe on Burn: the task made ready on the device, the optimizer
//! loop with muP's multipliers, and the records it logs. Needs the `burn` feature.

use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, Optimizer as BurnOptimizer, SgdConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use sigprop_init::Scheme;

use crate::arch::ResolvedNet;
use crate::build::declare;
use crate::error::NetError;
use crate::forward::{DeviceParam, DeviceParams, Plain, upload};
use crate::inputs::{normal_input, uniform_classes, uniform_draws};
use crate::params::Params;
use crate::probe::probe;
use crate::stats::{ordered_mean, ordered_sum, read_back};

use super::{
    Checkpoint, CoordRecord, OptimizerKind, ParamKind, Parametrization, Resume, Role, StepRecord,
    Task, TrainOptions, TrainResult, UpdateRecord, in_block, model_width, roles,
};

/// How one tensor is trained: the forward multiplier `a` (the weight is `a w`, and `w` is
/// what the optimizer sees) and the learning-rate multiplier.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scaling {
    a: f64,
    lr: f64,
}

/// How a tensor of `role` with `fan_in` is trained in a network of `width` and `depth`
/// blocks (`in_block`: it sits inside a residual block). Adam's epsilon rule of CompleteP
/// is exact through `W = a w`: Adam on `w` with the gradient `a g` is Adam on `W`'s own
/// gradient with epsilon `eps / a`, at `a` times the learning rate `w` gets.
fn scaling(
    p: Parametrization,
    role: Role,
    fan_in: usize,
    shape: (usize, usize),
    in_block: bool,
    adam: bool,
) -> Scaling {
    let (width, depth) = shape;
    match p.kind {
        ParamKind::Standard => Scaling { a: 1.0, lr: 1.0 },
        ParamKind::Ntk => Scaling {
            a: match (role, fan_in) {
                (_, 0) | (Role::Scalar, _) => 1.0,
                (Role::Vector, _) if fan_in == 1 => 1.0,
                _ => 1.0 / (fan_in as f64).sqrt(),
            },
            lr: 1.0,
        },
        // u-muP: the weights stay unit; Adam's step is `fan_in^-1/2` for a weight (its
        // output then moves O(1)), `L^-1/2` more inside the blocks (unit_scaling's
        // `lr_scale_func_adam`), and the readout's, at multiplier 1 / fan_in, is unscaled.
        ParamKind::Umup => {
            let depth_lr = if in_block {
                (depth as f64).powf(-0.5)
            } else {
                1.0
            };
            let lr = match role {
                Role::Readout | Role::Scalar => 1.0,
                _ if fan_in > 1 => (fan_in as f64).powf(-0.5),
                _ => 1.0,
            };
            Scaling {
                a: 1.0,
                lr: lr * depth_lr,
            }
        }
        ParamKind::Mup | ParamKind::DepthMup | ParamKind::Completep => {
            let m = width as f64 / p.base_width.max(1) as f64;
            let lr = match (role, adam) {
                (Role::Vector, false) => m,
                (Role::Vector, true) => 1.0,
                (Role::Scalar, _) => 1.0,
                (Role::Hidden, false) => 1.0,
                (Role::Hidden, true) => 1.0 / m,
                (Role::Readout, _) => 1.0 / m,
            };
            let Some(alpha) = p.kind.depth_exponent().filter(|_| in_block) else {
                return Scaling { a: 1.0, lr };
            };
            // A block's update moves the stream by L^-alpha times the update of its
            // weights: Adam's normalized step wants L^(alpha-1) to add up to O(1) over L
            // blocks, SGD's (whose gradient carries another L^-alpha) L^(2 alpha - 1).
            let ml = depth as f64 / p.base_depth.max(1) as f64;
            let depth_lr = if adam {
                ml.powf(alpha - 1.0)
            } else {
                ml.powf(2.0 * alpha - 1.0)
            };
            // CompleteP's epsilon: eps (1/m for hidden tensors) L^-alpha, as the gradient's scale.
            let eps = match (p.kind, adam, role) {
                (ParamKind::Completep, true, Role::Hidden) => ml.powf(-alpha) / m,
                (ParamKind::Completep, true, _) => ml.powf(-alpha),
                _ => 1.0,
            };
            Scaling {
                a: 1.0 / eps,
                lr: lr * depth_lr * eps,
            }
        }
    }
}

/// A batch's targets.
enum Targets {
    /// `[batch, outputs]` regression targets.
    Values(Tensor<2>),
    /// One-hot classes `[batch, classes]`.
    Classes(Tensor<2>),
}

fn one_hot(labels: &[usize], classes: usize, device: &Device) -> Tensor<2> {
    let mut v = vec![0f32; labels.len() * classes];
    for (b, &c) in labels.iter().enumerate() {
        v[b * classes + c] = 1.0;
    }
    Tensor::from_data(TensorData::new(v, [labels.len(), classes]), device)
}

/// A task made ready for one network input size: its fixed parts on the device.
struct Ready {
    task: Task,
    n_in: usize,
    /// The samples a teacher labels (`--inputs`), in place of Gaussian inputs.
    inputs: Option<crate::data::InputFile>,
    teacher: Vec<Tensor<2>>,
    teacher_scale: f64,
    means: Vec<f32>,
}

/// Reference samples over which the teacher's output scale is measured.
const TEACHER_REFERENCE: usize = 4096;

impl Ready {
    fn new(
        task: &Task,
        n_in: usize,
        inputs: Option<&crate::data::InputFile>,
        device: &Device,
    ) -> Result<Ready, NetError> {
        let mut ready = Ready {
            task: task.clone(),
            n_in,
            inputs: inputs.cloned(),
            teacher: Vec::new(),
            teacher_scale: 1.0,
            means: Vec::new(),
        };
        match task {
            Task::Teacher {
                depth,
                width,
                outputs,
                seed,
            } => {
                let mut fan_in = n_in;
                for l in 0..=*depth {
                    let n_out = if l == *depth { *outputs } else { *width };
                    let name = format!("teacher.{l}");
                    let scale = (1.0 / fan_in as f64).sqrt() as f32;
                    let w: Vec<f32> = normal_input(*seed, &name, [fan_in, n_out])?
                        .into_iter()
                        .map(|v| v * scale)
                        .collect();
                    ready.teacher.push(Tensor::from_data(
                        TensorData::new(w, [fan_in, n_out]),
                        device,
                    ));
                    fan_in = n_out;
                }
                let rows = match inputs {
                    Some(f) => TEACHER_REFERENCE.min(f.dataset()?.samples()),
                    None => TEACHER_REFERENCE,
                };
                let x = ready.draw(*seed, "teacher.reference", [rows, n_in])?;
                let x = Tensor::from_data(TensorData::new(x, [rows, n_in]), device);
                let y = read_back(ready.teacher_raw(x), "the teacher's outputs")?;
                let ms = y.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / y.len() as f64;
                ready.teacher_scale = if ms > 0.0 { 1.0 / ms.sqrt() } else { 1.0 };
            }
            Task::Mixture { classes, seed, .. } => {
                ready.means = normal_input(*seed, "mixture.means", [*classes, n_in])?;
            }
            Task::Data(d) => {
                if d.features != n_in {
                    return Err(NetError::BadConfig {
                        key: "data",
                        value: format!("{} features", d.features),
                        allowed: format!(
                            "rows of {n_in} features, the network's input (an mlp takes \
                             --widths with {} first)",
                            d.features
                        ),
                    });
                }
            }
        }
        Ok(ready)
    }

    fn teacher_raw(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.teacher.len() - 1;
        let mut h = x;
        for (l, w) in self.teacher.iter().enumerate() {
            h = h.matmul(w.clone());
            if l < last {
                h = h.tanh();
            }
        }
        h
    }

    /// `shape` inputs under the key `(seed, key)`: rows of the `--inputs` file, or
    /// i.i.d. N(0, 1).
    fn draw(&self, seed: u64, key: &str, shape: [usize; 2]) -> Result<Vec<f32>, NetError> {
        match &self.inputs {
            Some(f) => f.batch(seed, key, shape[0], shape[1]),
            None => normal_input(seed, key, shape),
        }
    }

    /// The inputs and targets of step `step`'s batch (`None`: the evaluation batch).
    fn batch(
        &self,
        seed: u64,
        step: Option<usize>,
        batch: usize,
        device: &Device,
    ) -> Result<(Tensor<2>, Targets), NetError> {
        let tag = step.map_or("eval".to_string(), |s| s.to_string());
        // The evaluation batch is the task's own (its seed), the same for every run.
        let seed = match (&self.task, step) {
            (Task::Teacher { seed, .. } | Task::Mixture { seed, .. }, None) => *seed,
            _ => seed,
        };
        let batch = match (step, &self.inputs) {
            // The evaluation batch draws from the file too: at most all of it.
            (None, Some(f)) => self.task.eval_samples(batch).min(f.dataset()?.samples()),
            (None, None) => self.task.eval_samples(batch),
            (Some(_), _) => batch,
        };
        let shape = [batch, self.n_in];
        match &self.task {
            Task::Teacher { .. } => {
                let x = self.draw(seed, &format!("train.x.{tag}"), shape)?;
                let x = Tensor::<2>::from_data(TensorData::new(x, shape), device);
                let y = self
                    .teacher_raw(x.clone())
                    .mul_scalar(self.teacher_scale)
                    .detach();
                Ok((x, Targets::Values(y)))
            }
            Task::Mixture { classes, noise, .. } => {
                let labels =
                    uniform_classes(seed, &format!("train.labels.{tag}"), batch, *classes)?;
                let e = normal_input(seed, &format!("train.x.{tag}"), shape)?;
                let norm = (1.0 + noise * noise).sqrt();
                let mut x = Vec::with_capacity(batch * self.n_in);
                for (b, &c) in labels.iter().enumerate() {
                    let m = &self.means[c * self.n_in..(c + 1) * self.n_in];
                    let e = &e[b * self.n_in..(b + 1) * self.n_in];
                    x.extend(
                        m.iter()
                            .zip(e)
                            .map(|(&m, &e)| ((m as f64 + noise * e as f64) / norm) as f32),
                    );
                }
                let x = Tensor::from_data(TensorData::new(x, shape), device);
                Ok((x, Targets::Classes(one_hot(&labels, *classes, device))))
            }
            Task::Data(d) => {
                let rows = d.train_rows();
                let mut x = Vec::with_capacity(batch * self.n_in);
                let mut labels = Vec::with_capacity(batch);
                let picked: Vec<usize> = match step {
                    Some(step) => {
                        let mut order: Option<(usize, Vec<usize>)> = None;
                        let mut picked = Vec::with_capacity(batch);
                        for i in step * batch..(step + 1) * batch {
                            let (epoch, at) = (i / rows, i % rows);
                            if order.as_ref().is_none_or(|(e, _)| *e != epoch) {
                                order = Some((epoch, epoch_order(seed, epoch, rows)?));
                            }
                            picked.push(order.as_ref().map_or(at, |(_, o)| o[at]));
                        }
                        picked
                    }
                    // The held-out rows, or else the first ones.
                    None => {
                        let first = if d.holdout > 0 { rows } else { 0 };
                        (first..first + batch).collect()
                    }
                };
                for row in picked {
                    x.extend_from_slice(&d.x[row * d.features..(row + 1) * d.features]);
                    labels.push(d.labels[row]);
                }
                let x = Tensor::from_data(TensorData::new(x, shape), device);
                Ok((x, Targets::Classes(one_hot(&labels, d.classes, device))))
            }
        }
    }
}

/// The order of the rows in `epoch`: sorted by uniform keys from `(seed, train.epoch.<e>)`.
fn epoch_order(seed: u64, epoch: usize, rows: usize) -> Result<Vec<usize>, NetError> {
    let u = uniform_draws(seed, &format!("train.epoch.{epoch}"), rows)?;
    let mut order: Vec<usize> = (0..rows).collect();
    order.sort_by(|&a, &b| u[a].total_cmp(&u[b]).then(a.cmp(&b)));
    Ok(order)
}

/// One optimizer's state for one tensor, by rank.
enum Slot<O: BurnOptimizer> {
    D1(Option<O::State<1>>),
    D2(Option<O::State<2>>),
    D4(Option<O::State<4>>),
}

/// Train `net` from `params` (the initial weights, LSUV already applied) for `seed`.
pub fn train(
    net: &ResolvedNet,
    params: &Params,
    seed: u64,
    opts: &TrainOptions,
    device: &Device,
) -> Result<TrainResult, NetError> {
    match opts.optimizer {
        OptimizerKind::Sgd => run(SgdConfig::new().build(), net, params, seed, opts, device),
        OptimizerKind::Momentum => run(
            SgdConfig::new()
                .with_momentum(Some(MomentumConfig::new().with_dampening(0.0)))
                .build(),
            net,
            params,
            seed,
            opts,
            device,
        ),
        OptimizerKind::Adam => run(
            AdamConfig::new().with_epsilon(1e-8).build(),
            net,
            params,
            seed,
            opts,
            device,
        ),
    }
}

fn check_train(net: &ResolvedNet, opts: &TrainOptions) -> Result<(), NetError> {
    let bad = |key: &'static str, value: String, allowed: &str| NetError::BadConfig {
        key,
        value,
        allowed: allowed.to_string(),
    };
    // A teacher labels the file's samples; a mixture and a data set bring their own inputs.
    if let Some(f) = &net.config.inputs
        && !matches!(opts.task, Task::Teacher { .. })
    {
        return Err(bad(
            "inputs",
            f.path.clone(),
            &format!(
                "inputs with --task teacher (the teacher labels the file's samples); --task {} \
                 draws its own inputs",
                opts.task.name()
            ),
        ));
    }
    if let Some(vocab) = net.config.arch.token_input() {
        return Err(match net.config.arch.kind() {
            crate::arch::Arch::Graph => bad(
                "model",
                net.config.arch.model_path().to_string(),
                "a model fed features for training (its tasks feed features, not token ids)",
            ),
            _ => bad(
                "embedding",
                vocab.to_string(),
                "0 for training (its tasks feed features, not token ids)",
            ),
        });
    }
    if opts.steps == 0 {
        return Err(bad("steps", "0".into(), "a whole number of steps > 0"));
    }
    if !(opts.lr.is_finite() && opts.lr > 0.0) {
        return Err(bad("lr", opts.lr.to_string(), "a positive finite number"));
    }
    if opts.batch == 0 {
        return Err(bad("batch", "0".into(), "a whole number > 0"));
    }
    let caps = net.config.arch.capabilities();
    if opts.param.kind.scales_width() && !caps.mup {
        return Err(bad(
            "param",
            opts.param.kind.to_string(),
            &format!(
                "standard or ntk for arch {} (muP is built for arch {})",
                net.config.arch,
                crate::arch::archs_with(|c| c.mup && c.trainable)
            ),
        ));
    }
    if opts.param.kind.scales_width() && net.config.arch.mup_scores() == Some(false) {
        return Err(bad(
            "score-scale",
            "1/sqrt(d)".into(),
            &format!(
                "1/d, which --param {} sets (muP's attention logits q k^T / d_head)",
                opts.param.kind
            ),
        ));
    }
    if let Some(r) = &opts.resume
        && r.step >= opts.steps
    {
        return Err(bad(
            "resume",
            format!("step {}", r.step),
            &format!("a step before the last ({})", opts.steps),
        ));
    }
    if let Some(c) = opts.checkpoint_at.filter(|&c| c > opts.steps) {
        return Err(bad(
            "checkpoint",
            format!("step {c}"),
            &format!("a step up to the last ({})", opts.steps),
        ));
    }
    if opts.param.base_width == 0 {
        return Err(bad("base-width", "0".into(), "a whole number > 0"));
    }
    if opts.param.base_depth == 0 {
        return Err(bad("base-depth", "0".into(), "a whole number > 0"));
    }
    if opts.param.kind.unit_weights() {
        if opts.optimizer != OptimizerKind::Adam {
            return Err(bad(
                "optimizer",
                opts.optimizer.to_string(),
                "adam with --param umup (u-muP's learning-rate rules are Adam's)",
            ));
        }
        if !matches!(net.weight_init, Scheme::Normal { mean, std } if mean == 0.0 && std == 1.0) {
            return Err(bad(
                "init",
                net.config.weight_init.clone(),
                "normal (N(0, 1)) with --param umup",
            ));
        }
    }
    if let Some(want) = opts.param.kind.branch_scale() {
        if !caps.residual {
            return Err(bad(
                "param",
                opts.param.kind.to_string(),
                &format!(
                    "standard, ntk or mup for arch {} (depth parametrizations and u-muP \
                     are for residual networks: {})",
                    net.config.arch,
                    crate::arch::archs_with(|c| c.residual)
                ),
            ));
        }
        let have = net.config.arch.branch_scale();
        if have != Some(want) {
            return Err(bad(
                "branch-scale",
                have.map_or("none".into(), |b| b.to_string()),
                &format!("{want}, which --param {} sets", opts.param.kind),
            ));
        }
    }
    let shape = net.config.arch.input_shape(net, opts.batch);
    if shape[0] != opts.batch || !caps.trainable {
        return Err(bad(
            "arch",
            net.config.arch.to_string(),
            &format!(
                "an architecture with one input row per sample for training: {}",
                crate::arch::archs_with(|c| c.trainable)
            ),
        ));
    }
    Ok(())
}

fn run<O: BurnOptimizer>(
    opt: O,
    net: &ResolvedNet,
    params: &Params,
    seed: u64,
    opts: &TrainOptions,
    device: &Device,
) -> Result<TrainResult, NetError> {
    check_train(net, opts)?;
    let ad = device.clone().autodiff();
    let declared = declare(net);
    let n_in = net.config.arch.input_shape(net, opts.batch)[1];
    let features = net.config.arch.output_features(&net.config);
    let outputs = opts.task.outputs();
    let ready = Ready::new(&opts.task, n_in, net.config.inputs.as_ref(), &ad)?;
    let mut p = upload(params, &ad, true);
    let adam = opts.optimizer == OptimizerKind::Adam;
    let width = model_width(net);
    let shape = (width, net.config.depth);
    let scalings: Vec<Scaling> = params
        .tensors
        .iter()
        .zip(roles(net, params))
        .map(|(t, role)| {
            let fan_in = match t.shape.len() {
                2 => t.shape[0],
                4 => t.shape[1..].iter().product(),
                _ => 1,
            };
            scaling(opts.param, role, fan_in, shape, in_block(&t.path), adam)
        })
        .collect();
    let readout_scaling = scaling(opts.param, Role::Readout, features, shape, false, adam);
    // muP's readout starts with variance 1 / (features m).
    let m = width as f64 / opts.param.base_width.max(1) as f64;
    let readout_var = if opts.param.kind.unit_weights() {
        1.0
    } else if opts.param.kind.scales_width() {
        1.0 / (features as f64 * m)
    } else {
        1.0 / features as f64
    };
    // u-muP's readout multiplier (unit_scaling's `linear_readout`): 1 / fan_in.
    let readout_mult = if opts.param.kind.unit_weights() {
        1.0 / features as f64
    } else {
        1.0
    };
    let scale = readout_var.sqrt() as f32;
    let readout: Vec<f32> = match &opts.resume {
        Some(r) if r.readout.len() != features * outputs => {
            return Err(NetError::BadConfig {
                key: "resume",
                value: format!("a readout of {} values", r.readout.len()),
                allowed: format!("{features} x {outputs} values, the network's readout"),
            });
        }
        Some(r) => r.readout.clone(),
        None => normal_input(seed, "train.readout", [features, outputs])?
            .into_iter()
            .map(|v| v * scale)
            .collect(),
    };
    let mut readout =
        Tensor::<2>::from_data(TensorData::new(readout, [features, outputs]), &ad).require_grad();
    let mut slots: Vec<Option<Slot<O>>> =
        p.0.iter()
            .map(|d| {
                d.as_ref().map(|d| match d {
                    DeviceParam::D1(_) => Slot::D1(None),
                    DeviceParam::D2(_) => Slot::D2(None),
                    DeviceParam::D4(_) => Slot::D4(None),
                })
            })
            .collect();
    let mut readout_state: Option<O::State<2>> = None;
    // `--prune`'s masks: a pruned weight's gradient is 0, so it stays 0 under every
    // optimizer here (no weight decay).
    let masks: Vec<Option<Tensor<1>>> = params
        .tensors
        .iter()
        .map(|t| {
            t.mask.as_ref().map(|m| {
                let v: Vec<f32> = m.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
                Tensor::<1>::from_data(TensorData::new(v, [m.len()]), device)
            })
        })
        .collect();
    let mut result = TrainResult {
        steps: Vec::with_capacity(opts.steps + 1),
        updates: Vec::new(),
        stats: Vec::new(),
        spectra: Vec::new(),
        diverged_at: None,
        coords: Vec::new(),
        wall_s: 0.0,
        final_params: params.clone(),
        checkpoint: None,
    };
    let start = opts.resume.as_ref().map_or(0, |r| r.step);
    let mut last_coord = Coord::default();
    let t0 = std::time::Instant::now();
    for step in start..=opts.steps {
        if opts.checkpoint_at == Some(step) {
            result.checkpoint = Some(Checkpoint {
                params: download(params, &p)?,
                resume: Resume {
                    step,
                    readout: read_back(readout.clone().inner(), "the readout")?,
                },
            });
        }
        let logged = opts.log_steps.contains(&step);
        if logged {
            let host = download(params, &p)?;
            let r = probe(net, &host, seed, &opts.probe, device)?;
            result.stats.push((step, r.stats));
            if opts.probe.jacobian.is_some() {
                result.spectra.push((step, r.spectra));
            }
        }
        let batch_step = if opts.fixed_batch { 0 } else { step };
        let eval_loss = if step == start || step == opts.steps || logged {
            let (x, targets) = ready.batch(seed, None, opts.eval_batch, &ad)?;
            let out = declared.layout.forward(net, &p, x, &mut Plain);
            let l = loss_of(
                crate::kernels::matmul(out, readout.clone()).mul_scalar(readout_mult),
                targets,
            )
            .inner();
            Some(read_back(l.reshape([1]), "the evaluation loss")?[0] as f64)
        } else {
            None
        };
        let (x, targets) = ready.batch(seed, Some(batch_step), opts.batch, &ad)?;
        let mut coord = Coord::after(std::mem::take(&mut last_coord));
        let out = if opts.coords {
            declared.layout.forward(net, &p, x, &mut coord)
        } else {
            declared.layout.forward(net, &p, x, &mut Plain)
        };
        let logits = crate::kernels::matmul(out, readout.clone()).mul_scalar(readout_mult);
        if opts.coords {
            let flat = logits.clone().inner();
            let n = flat.shape().num_elements();
            coord.record(
                "readout".to_string(),
                net.config.depth + 1,
                flat.reshape([n]),
            );
        }
        let loss = loss_of(logits, targets);
        let mut grads = loss.backward();
        // The loss, the coordinate sizes and every gradient's squared norm in one read.
        let mut parts: Vec<Tensor<1>> = vec![loss.inner().reshape([1])];
        let n_coords = coord.sites.len();
        // Changes since step 0 exist from the step after it (a NaN then is a divergence).
        let has_initial = !coord.initial.is_empty();
        let mut coord_names = Vec::with_capacity(n_coords / 2);
        for (k, (site, layer, t)) in std::mem::take(&mut coord.sites).into_iter().enumerate() {
            if k % 2 == 0 {
                coord_names.push((site, layer));
            }
            parts.push(t);
        }
        last_coord = coord;
        // Each tensor's squared norm as (max |g|, sum (g / max|g|)^2): no overflow in f32.
        let grad_of = |g: Option<Tensor<1>>, parts: &mut Vec<Tensor<1>>| {
            if let Some(g) = g {
                let m = g.clone().abs().max();
                let scaled = ordered_sum((g / m.clone().clamp_min(f32::MIN_POSITIVE)).square());
                parts.push(Tensor::cat(vec![m, scaled], 0));
            }
        };
        for d in p.0.iter().flatten() {
            match d {
                DeviceParam::D1(t) => grad_of(t.grad(&grads), &mut parts),
                DeviceParam::D2(t) => grad_of(t.grad(&grads).map(|g| g.flatten(0, 1)), &mut parts),
                DeviceParam::D4(t) => grad_of(t.grad(&grads).map(|g| g.flatten(0, 3)), &mut parts),
            }
        }
        grad_of(readout.grad(&grads).map(|g| g.flatten(0, 1)), &mut parts);
        let read = read_back(Tensor::cat(parts, 0), "the loss and gradient norms")?;
        let loss_v = read[0] as f64;
        for ((site, layer), v) in coord_names.into_iter().zip(read[1..1 + n_coords].chunks(2)) {
            result.coords.push(CoordRecord {
                step,
                site,
                layer,
                mean_abs: v[0] as f64,
                delta_abs: has_initial.then_some(v[1] as f64),
            });
        }
        let grad_norm = read[1 + n_coords..]
            .chunks(2)
            .map(|c| {
                let m = c[0] as f64;
                if m > 0.0 { m * m * c[1] as f64 } else { 0.0 }
            })
            .sum::<f64>()
            .sqrt();
        result.steps.push(StepRecord {
            step,
            loss: loss_v,
            grad_norm,
            eval_loss,
        });
        if !loss_v.is_finite() || !grad_norm.is_finite() {
            result.diverged_at = Some(step);
            break;
        }
        if step == opts.steps {
            break;
        }
        // The update.
        let lr = opts.lr;
        let mut norms: Vec<(String, Tensor<1>)> = Vec::new();
        for (i, (d, slot)) in p.0.iter_mut().zip(slots.iter_mut()).enumerate() {
            let (Some(d), Some(slot)) = (d.as_mut(), slot.as_mut()) else {
                continue;
            };
            let path = &params.tensors[i].path;
            let sc = scalings[i];
            match (d, slot) {
                (DeviceParam::D1(t), Slot::D1(s)) => {
                    if let Some(g) = t.grad_remove(&mut grads) {
                        let old = t.clone().inner();
                        let (new, st) = scaled_step(&opt, lr, sc, old.clone(), g, s.take());
                        if logged {
                            norms.push((path.clone(), pair_norms(old, new.clone())));
                        }
                        *s = st;
                        *t = Tensor::from_inner(new).require_grad();
                    }
                }
                (DeviceParam::D2(t), Slot::D2(s)) => {
                    if let Some(g) = t.grad_remove(&mut grads) {
                        let g = masked(g, &masks[i]);
                        let old = t.clone().inner();
                        let (new, st) = scaled_step(&opt, lr, sc, old.clone(), g, s.take());
                        if logged {
                            norms.push((
                                path.clone(),
                                pair_norms(old.flatten(0, 1), new.clone().flatten(0, 1)),
                            ));
                        }
                        *s = st;
                        *t = Tensor::from_inner(new).require_grad();
                    }
                }
                (DeviceParam::D4(t), Slot::D4(s)) => {
                    if let Some(g) = t.grad_remove(&mut grads) {
                        let g = masked(g, &masks[i]);
                        let old = t.clone().inner();
                        let (new, st) = scaled_step(&opt, lr, sc, old.clone(), g, s.take());
                        if logged {
                            norms.push((
                                path.clone(),
                                pair_norms(old.flatten(0, 3), new.clone().flatten(0, 3)),
                            ));
                        }
                        *s = st;
                        *t = Tensor::from_inner(new).require_grad();
                    }
                }
                _ => unreachable!("each slot is made for its tensor's rank"),
            }
        }
        if let Some(g) = readout.grad_remove(&mut grads) {
            let old = readout.clone().inner();
            let (new, st) = scaled_step(
                &opt,
                lr,
                readout_scaling,
                old.clone(),
                g,
                readout_state.take(),
            );
            if logged {
                norms.push((
                    "readout".into(),
                    pair_norms(old.flatten(0, 1), new.clone().flatten(0, 1)),
                ));
            }
            readout_state = st;
            readout = Tensor::from_inner(new).require_grad();
        }
        if !norms.is_empty() {
            let (names, ts): (Vec<String>, Vec<Tensor<1>>) = norms.into_iter().unzip();
            let v = read_back(Tensor::cat(ts, 0), "the update norms")?;
            for (k, name) in names.into_iter().enumerate() {
                result.updates.push(UpdateRecord {
                    step,
                    param: name,
                    weight_norm: (v[2 * k] as f64).sqrt(),
                    update_norm: (v[2 * k + 1] as f64).sqrt(),
                });
            }
        }
    }
    // A logged step past the last one reached (divergence) has no statistics.
    result.wall_s = t0.elapsed().as_secs_f64();
    result.final_params = download(params, &p)?;
    Ok(result)
}

/// A gradient times its tensor's `--prune` mask (flat, row-major), if it has one.
fn masked<const D: usize>(g: Tensor<D>, mask: &Option<Tensor<1>>) -> Tensor<D> {
    match mask {
        Some(m) => {
            let dims = g.dims();
            g * m.clone().reshape(dims)
        }
        None => g,
    }
}

/// One optimizer step of a tensor trained as `W = a w` at `lr` times its multiplier: the
/// optimizer sees `w = W / a` and its gradient `a dL/dW`; `W` comes back as `a w`.
fn scaled_step<O: BurnOptimizer, const D: usize>(
    opt: &O,
    lr: f64,
    sc: Scaling,
    old: Tensor<D>,
    grad: Tensor<D>,
    state: Option<O::State<D>>,
) -> (Tensor<D>, Option<O::State<D>>) {
    if sc.a == 1.0 {
        opt.step(lr * sc.lr, old, grad, state)
    } else {
        let (w, st) = opt.step(
            lr * sc.lr,
            old.div_scalar(sc.a),
            grad.mul_scalar(sc.a),
            state,
        );
        (w.mul_scalar(sc.a), st)
    }
}

/// A recorder that applies the activation and keeps each site's `mean |h|` and, after the
/// first step, `mean |h - h_0|` against the site's values at step 0 (`initial`, in site
/// order; the first step fills `kept`).
#[derive(Default)]
struct Coord {
    sites: Vec<(String, usize, Tensor<1>)>,
    initial: Vec<Tensor<1>>,
    kept: Vec<Tensor<1>>,
}

impl Coord {
    /// A coordinate check's recorder after the step whose values `last` kept.
    fn after(last: Coord) -> Coord {
        let initial = if last.initial.is_empty() {
            last.kept
        } else {
            last.initial
        };
        Coord {
            initial,
            ..Coord::default()
        }
    }

    /// Record the site `h`'s `mean |h|` and its change since step 0.
    fn record(&mut self, site: String, layer: usize, h: Tensor<1>) {
        let mean = ordered_mean(h.clone().abs());
        let delta = match self.initial.get(self.sites.len() / 2) {
            Some(h0) => ordered_mean((h - h0.clone()).abs()),
            None => {
                self.kept.push(h);
                Tensor::<1>::from_data(TensorData::new(vec![f32::NAN], [1]), &mean.device())
            }
        };
        self.sites.push((site.clone(), layer, mean));
        self.sites.push((site, layer, delta));
    }
}

impl crate::forward::Recorder for Coord {
    fn site<const D: usize>(&mut self, s: crate::forward::SiteIn<'_>, z: Tensor<D>) -> Tensor<D> {
        let h = s.kind.apply(z);
        let flat = h.clone().inner();
        let n = flat.shape().num_elements();
        self.record(s.site.to_string(), s.layer, flat.reshape([n]));
        h
    }
}

/// Mean squared error over batch and outputs, or mean cross-entropy over the batch.
fn loss_of(logits: Tensor<2>, targets: Targets) -> Tensor<1> {
    match targets {
        Targets::Values(y) => ordered_mean((logits - y).square()),
        Targets::Classes(onehot) => {
            let b = onehot.dims()[0] as f64;
            ordered_sum(log_softmax(logits, 1) * onehot)
                .neg()
                .div_scalar(b)
        }
    }
}

/// `[|old|^2, |new - old|^2]`.
fn pair_norms(old: Tensor<1>, new: Tensor<1>) -> Tensor<1> {
    let d = ordered_sum((new - old.clone()).square());
    Tensor::cat(vec![ordered_sum(old.square()), d], 0)
}

/// The current weights back on the host, as `Params` with the initial ones' paths.
fn download(initial: &Params, p: &DeviceParams) -> Result<Params, NetError> {
    let mut out = initial.clone();
    for (t, d) in out.tensors.iter_mut().zip(&p.0) {
        let data = match d {
            Some(DeviceParam::D1(x)) => read_back(x.clone().inner(), "the trained weights")?,
            Some(DeviceParam::D2(x)) => read_back(x.clone().inner(), "the trained weights")?,
            Some(DeviceParam::D4(x)) => read_back(x.clone().inner(), "the trained weights")?,
            None => continue,
        };
        t.data = data;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The depth rules at width 32 over base width 8 (m = 4) and depth 8 over base depth 2
    /// (mL = 4): CompleteP's Adam epsilon `1e-8 / (m mL)` for a hidden tensor in a block is
    /// `a = 16` at a learning rate divided by 16 (so `W` moves at muP's `lr / m`), `1e-8 / mL`
    /// for a bias; nothing outside the blocks; SGD at `lr mL`; depth-muP's Adam at
    /// `lr / sqrt(mL)`, its SGD unscaled.
    #[test]
    fn depth_rules_set_each_tensors_multiplier_and_learning_rate() {
        let close = |s: Scaling, a: f64, lr: f64| {
            assert!(
                (s.a - a).abs() < 1e-12 && (s.lr - lr).abs() < 1e-12,
                "{s:?} vs a {a}, lr {lr}"
            )
        };
        let p = Parametrization {
            kind: ParamKind::Completep,
            base_width: 8,
            base_depth: 2,
        };
        let shape = (32, 8);
        close(
            scaling(p, Role::Hidden, 32, shape, true, true),
            16.0,
            0.25 / 16.0,
        );
        close(
            scaling(p, Role::Vector, 1, shape, true, true),
            4.0,
            1.0 / 4.0,
        );
        close(scaling(p, Role::Hidden, 32, shape, false, true), 1.0, 0.25);
        close(scaling(p, Role::Readout, 32, shape, false, true), 1.0, 0.25);
        close(scaling(p, Role::Hidden, 32, shape, true, false), 1.0, 4.0);
        let d = Parametrization {
            kind: ParamKind::DepthMup,
            ..p
        };
        close(
            scaling(d, Role::Hidden, 32, shape, true, true),
            1.0,
            0.25 * 0.5,
        );
        close(scaling(d, Role::Vector, 1, shape, true, true), 1.0, 0.5);
        close(scaling(d, Role::Hidden, 32, shape, true, false), 1.0, 1.0);
        // u-muP at depth 16 (no base shapes): a block's weight of fan-in 64 at
        // `lr / (8 * 4)`, its bias at `lr / 4`, a weight outside the blocks at `lr / 8`, the
        // readout at `lr`; never a multiplier.
        let u = Parametrization {
            kind: ParamKind::Umup,
            ..p
        };
        let shape = (64, 16);
        close(
            scaling(u, Role::Hidden, 64, shape, true, true),
            1.0,
            1.0 / 32.0,
        );
        close(scaling(u, Role::Vector, 1, shape, true, true), 1.0, 0.25);
        close(scaling(u, Role::Hidden, 64, shape, false, true), 1.0, 0.125);
        close(scaling(u, Role::Readout, 64, shape, false, true), 1.0, 1.0);
    }
}
