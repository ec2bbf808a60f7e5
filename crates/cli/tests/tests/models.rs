//! Your own model (`--model FILE.toml`, docs/models.md): the same network twice, sites by
//! node, residual adds, per-node initializers, train and recommend, and bad model files.

use std::path::{Path, PathBuf};

use super::{col, fails_with, header, records, sigprop};

/// A chain of `depth` linear maps of `width` units, each followed by the run's activation,
/// named as `--arch mlp` names its layers.
fn mlp_toml(depth: usize, width: usize) -> String {
    let mut t = format!("input = [{width}]\n");
    for l in 1..=depth {
        t += &format!(
            "[[layers]]\nop = \"linear\"\nname = \"layers.{l}\"\nout = {width}\n\
             [[layers]]\nop = \"act\"\n"
        );
    }
    t
}

fn run_to(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    sigprop()
        .args(args)
        .args(["--quiet", "--out"])
        .arg(&out)
        .assert()
        .success();
    out.join("layers.csv")
}

/// The same cell of two CSVs: equal text, or numbers within `tol` relative (NaN = NaN).
fn same_cell(a: &str, b: &str, tol: f64) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) if x.is_nan() && y.is_nan() => true,
        (Ok(x), Ok(y)) => (x - y).abs() <= tol * x.abs().max(y.abs()).max(1e-300),
        _ => false,
    }
}

/// An MLP written as a model file is `--arch mlp`: the weights are drawn under the nodes'
/// names (`layers.l`), so every statistic of `layers.csv`, the Jacobian's and the theory's
/// included, agrees within 1e-6 (the issue's bound; they are the same floats), with and
/// without LSUV.
#[test]
fn an_mlp_written_as_a_model_file_gives_the_layers_csv_of_arch_mlp() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("mlp.toml");
    std::fs::write(&model, mlp_toml(4, 16)).unwrap();
    let model = model.to_str().unwrap();
    let common = [
        "--activation",
        "tanh",
        "--bias-init",
        "normal:std=0.1",
        "--seeds",
        "3",
        "--batch",
        "64",
        "--jacobian",
    ];
    for init in ["xavier-normal", "lsuv"] {
        let mut g = vec!["run", "--model", model, "--init", init];
        g.extend(common);
        let mut m = vec![
            "run", "--arch", "mlp", "--depth", "4", "--width", "16", "--init", init,
        ];
        m.extend(common);
        let a = run_to(dir.path(), &format!("graph-{init}"), &g);
        let b = run_to(dir.path(), &format!("mlp-{init}"), &m);
        let (ra, rb) = (records(&a), records(&b));
        assert_eq!(ra.len(), rb.len());
        assert_eq!(ra.len(), 3 * 4);
        let names = header(&a);
        assert_eq!(names, header(&b));
        let first = col(&a, "preact_mean");
        let mut compared = 0;
        for (x, y) in ra.iter().zip(&rb) {
            assert_eq!(&x[col(&a, "arch")], "graph");
            assert_eq!(
                x[col(&a, "node")],
                format!("layers.{}", &x[col(&a, "layer")])
            );
            for (j, name) in names.iter().enumerate().skip(first) {
                assert!(
                    same_cell(&x[j], &y[j], 1e-6),
                    "{init} {name} at layer {}: {} vs {}",
                    &x[col(&a, "layer")],
                    &x[j],
                    &y[j]
                );
                compared += usize::from(!x[j].is_empty());
            }
        }
        // The statistics, the spectrum of the last layer and the theory: not empty columns.
        assert!(compared > 12 * 15, "{compared}");
        assert!(!ra[3][col(&a, "jac_max_sv")].is_empty());
        // LSUV's rescaled weights have no mean-field prediction, for either.
        let theory = !ra[0][col(&a, "theory_preact_var")].is_empty();
        assert_eq!(theory, init != "lsuv");
    }
}

/// A CNN written as a model file (convolutions named as `--arch cnn` names its layers, same
/// padding) is `--arch cnn`: the same statistics, to 1e-6.
#[test]
fn a_cnn_written_as_a_model_file_gives_the_layers_csv_of_arch_cnn() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = "input = [8, 6, 6]\n".to_string();
    for l in 1..=3 {
        text += &format!(
            "[[layers]]\nop = \"conv\"\nname = \"layers.{l}\"\nout = 8\n[[layers]]\nop = \"act\"\n"
        );
    }
    let model = dir.path().join("cnn.toml");
    std::fs::write(&model, text).unwrap();
    let common = ["--activation", "tanh", "--seeds", "2", "--batch", "16"];
    let mut g = vec!["run", "--model", model.to_str().unwrap()];
    g.extend(common);
    let mut c = vec![
        "run",
        "--arch",
        "cnn",
        "--depth",
        "3",
        "--width",
        "8",
        "--image-size",
        "6",
    ];
    c.extend(common);
    let (a, b) = (
        run_to(dir.path(), "graph", &g),
        run_to(dir.path(), "cnn", &c),
    );
    let (ra, rb) = (records(&a), records(&b));
    assert_eq!(ra.len(), rb.len());
    let first = col(&a, "preact_mean");
    for (x, y) in ra.iter().zip(&rb) {
        for (j, name) in header(&a).iter().enumerate().skip(first) {
            assert!(
                same_cell(&x[j], &y[j], 1e-6),
                "{name}: {} vs {}",
                &x[j],
                &y[j]
            );
        }
    }
}

const RESIDUAL: &str = r#"
input = [3, 8, 8]
[[layers]]
op = "conv"
name = "stem"
out = 8
[[layers]]
op = "act"
[[layers]]
op = "block"
name = "res"
repeat = 3
residual = true
branch-scale = 0.5
layers = [{ op = "conv", out = 8 }, { op = "norm", kind = "batch" }, { op = "act" }, { op = "conv", out = 8 }]
[[layers]]
op = "global-avg-pool"
[[layers]]
op = "linear"
name = "head"
out = 4
"#;

fn rows_of<'a>(
    rows: &'a [csv::StringRecord],
    path: &Path,
    site: &str,
) -> Vec<&'a csv::StringRecord> {
    rows.iter()
        .filter(|r| &r[col(path, "site")] == site && &r[col(path, "seed")] == "0")
        .collect()
}

fn num(r: &csv::StringRecord, path: &Path, name: &str) -> f64 {
    r[col(path, name)].parse().unwrap()
}

/// A residual CNN: every conv and linear node is a `layer` site in graph order, every add a
/// `branch` and an `out` site with the signal-propagation columns. Two exact facts: the
/// `branch` site is the branch's last convolution times branch-scale 0.5 (its variance a
/// quarter of that site's), and with `--init-node 'res.*.conv.4=zeros'` every branch adds
/// nothing, so every block output is the stem's activation and the branch variance is 0.
#[test]
fn a_residual_model_measures_its_layers_branches_and_sums_by_node() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("res.toml");
    std::fs::write(&model, RESIDUAL).unwrap();
    let model = model.to_str().unwrap();
    let args = ["run", "--model", model, "--seeds", "2", "--batch", "16"];
    let plain = run_to(dir.path(), "plain", &args);
    let rows = records(&plain);
    let layers = rows_of(&rows, &plain, "layer");
    let nodes: Vec<&str> = layers.iter().map(|r| &r[col(&plain, "node")]).collect();
    assert_eq!(
        nodes,
        [
            "stem",
            "res.1.conv.1",
            "res.1.conv.4",
            "res.2.conv.1",
            "res.2.conv.4",
            "res.3.conv.1",
            "res.3.conv.4",
            "head"
        ]
    );
    assert_eq!(&rows[0][col(&plain, "depth")], "8");
    let branches = rows_of(&rows, &plain, "branch");
    let outs = rows_of(&rows, &plain, "out");
    assert_eq!((branches.len(), outs.len()), (3, 3));
    for k in 0..3 {
        let last = layers[2 + 2 * k];
        let (b, l) = (
            num(branches[k], &plain, "preact_var"),
            num(last, &plain, "preact_var"),
        );
        assert!(
            (b / (0.25 * l) - 1.0).abs() < 1e-5,
            "block {k}: {b} vs {l} / 4"
        );
        assert_eq!(&outs[k][col(&plain, "node")], &format!("res.{}.add", k + 1));
        assert!(!outs[k][col(&plain, "spp_var")].is_empty());
    }
    let mut zero = args.to_vec();
    zero.extend(["--init-node", "res.*.conv.4=zeros"]);
    let zeroed = run_to(dir.path(), "zeroed", &zero);
    let rows = records(&zeroed);
    let stem_h = num(rows_of(&rows, &zeroed, "layer")[0], &zeroed, "act_var");
    for out in rows_of(&rows, &zeroed, "out") {
        assert_eq!(num(out, &zeroed, "spp_branch_var"), 0.0);
        let v = num(out, &zeroed, "preact_var");
        assert!(
            (v / stem_h - 1.0).abs() < 1e-9,
            "{v} vs the stem's {stem_h}"
        );
    }
}

/// `train` and `recommend` take a model like any architecture.
#[test]
fn train_and_recommend_run_on_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("res.toml");
    std::fs::write(&model, RESIDUAL).unwrap();
    let model = model.to_str().unwrap();
    let out = dir.path().join("train");
    sigprop()
        .args(["train", "--model", model, "--steps", "5", "--seeds", "1"])
        .args(["--batch", "16", "--lr", "0.001", "--quiet", "--out"])
        .arg(&out)
        .assert()
        .success();
    let train = out.join("train.csv");
    let steps = records(&train);
    assert!(steps.len() >= 5, "{}", steps.len());
    assert!(steps.iter().all(|r| {
        r[col(&train, "train_loss")]
            .parse::<f64>()
            .is_ok_and(f64::is_finite)
    }));
    let out = dir.path().join("rec");
    let got = sigprop()
        .args([
            "recommend",
            "--model",
            model,
            "--seeds",
            "2",
            "--batch",
            "16",
        ])
        .args(["--quiet", "--out"])
        .arg(&out)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let got = String::from_utf8(got).unwrap();
    assert!(got.contains("use: --init "), "{got}");
}

/// Bad model files and flags exit 2 with one line naming the file, the line or the node.
#[test]
fn bad_models_are_refused_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| -> String {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let ok = write("ok.toml", &mlp_toml(2, 8));
    let op = write(
        "op.toml",
        "input = [4]\n[[layers]]\nop = \"dense\"\nout = 3\n",
    );
    let broken = write("broken.toml", "input = [4\n");
    let shape = write(
        "shape.toml",
        "input = [4]\n[[layers]]\nop = \"conv\"\nout = 3\n",
    );
    let vit =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/models/vit_blocks.onnx");
    let bytes = std::fs::read(vit).unwrap();
    let truncated = dir.path().join("truncated.onnx");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let truncated = truncated.to_str().unwrap().to_string();
    let unsupported = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cumsum.onnx");
    let unsupported = unsupported.to_str().unwrap().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["run", "--model", &op],
            "line 3: unknown variant `dense`",
        ),
        (vec!["run", "--model", &broken], "broken.toml: line 1"),
        (
            vec!["run", "--model", &shape],
            "conv conv.1: its input is [4]",
        ),
        (
            vec!["run", "--model", "/no/such/model.toml"],
            "/no/such/model.toml",
        ),
        (
            vec!["run", "--model", &truncated],
            "not a readable ONNX model",
        ),
        (
            vec!["run", "--model", &unsupported],
            "operator CumSum at node cumsum1 (opset 20) is not supported",
        ),
        (
            vec!["run", "--model", &ok, "--init-node", "head=zeros"],
            "init-node=head=zeros is not allowed; expected a pattern that matches a linear, \
             conv or embedding node; the model's are: layers.1, layers.2",
        ),
        (
            vec!["run", "--model", &ok, "--init-node", "layers.*=zeross"],
            "init-node=layers.*=zeross",
        ),
        (
            vec!["run", "--model", &ok, "--depth", "5"],
            "--depth 5: the model's depth is its own (2)",
        ),
        (vec!["run", "--arch", "graph"], "model="),
        (
            vec!["run", "--arch", "mlp", "--model", &ok],
            "model is not a setting of arch mlp",
        ),
    ];
    for (args, needle) in cases {
        fails_with(&args, needle);
    }
}

/// Two models exported from PyTorch (scripts/torch_models.py) and re-initialized the same way
/// in both tools (He-normal and Xavier-normal, zero biases, LayerNorm gains 1): sigprop's
/// per-site `preact_var` seed means over 32 seeds lie within 3 standard errors (of the
/// difference) + 2% of PyTorch's forward hooks on every Linear and Conv, in the order they
/// run.
#[test]
fn onnx_models_agree_with_pytorch_under_the_same_initializers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/models");
    let fixture: serde_json::Value = super::read_json(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch_models.json"),
    );
    let seeds = fixture["seeds"].as_u64().unwrap().to_string();
    let batch = fixture["batch"].as_u64().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    for (name, want) in fixture["models"].as_object().unwrap() {
        let model = root.join(format!("{name}.onnx"));
        for (init, w) in want.as_object().unwrap() {
            let out = format!("{name}-{init}");
            let layers = run_to(
                dir.path(),
                &out,
                &[
                    "run",
                    "--model",
                    model.to_str().unwrap(),
                    "--init",
                    init,
                    "--seeds",
                    &seeds,
                    "--batch",
                    &batch,
                ],
            );
            let rows = records(&layers);
            let sites = w["mean"].as_array().unwrap().len();
            // The same sites as PyTorch's hooks, no more.
            let ours = rows
                .iter()
                .filter(|r| &r[col(&layers, "site")] == "layer" && &r[col(&layers, "seed")] == "0")
                .count();
            assert_eq!(ours, sites, "{name}");
            let mut zs = Vec::new();
            for l in 1..=sites {
                let v: Vec<f64> = rows
                    .iter()
                    .filter(|r| {
                        &r[col(&layers, "site")] == "layer"
                            && r[col(&layers, "layer")] == l.to_string()
                    })
                    .map(|r| num(r, &layers, "preact_var"))
                    .collect();
                let n = v.len() as f64;
                assert_eq!(v.len().to_string(), seeds, "{name} layer {l}");
                let mean = v.iter().sum::<f64>() / n;
                let se = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt();
                let (tm, ts) = (
                    w["mean"][l - 1].as_f64().unwrap(),
                    w["se"][l - 1].as_f64().unwrap(),
                );
                let tol = 3.0 * (se * se + ts * ts).sqrt() + 0.02 * tm;
                assert!(
                    (mean - tm).abs() <= tol,
                    "{name} {init} layer {l}: sigprop {mean:.4} +- {se:.4}, PyTorch {tm:.4} +- {ts:.4}"
                );
                zs.push((mean - tm) / (se * se + ts * ts).sqrt());
            }
            eprintln!("{name} {init}: z = {zs:.2?}");
        }
    }
}

/// `--init model` keeps the file's weights (theory off); `--init-node PATTERN=model` keeps
/// part of them, the rest drawn; `--perturb shrink=0` leaves only the noise, `shrink=1` with
/// no noise the file's own; `--bn-stats model` needs stored statistics.
#[test]
fn a_models_own_weights_can_be_kept_in_part_shrunk_and_perturbed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/models");
    let model = root.join("resnet_small.onnx");
    let model = model.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = ["run", "--model", model, "--seeds", "1", "--batch", "8"];
    let with = |extra: &[&str], name: &str| {
        let mut a = base.to_vec();
        a.extend(extra);
        let l = run_to(dir.path(), name, &a);
        let rows = records(&l);
        let v: Vec<(String, f64, f64)> = rows
            .iter()
            .filter(|r| &r[col(&l, "site")] == "layer")
            .map(|r| {
                (
                    r[col(&l, "node")].to_string(),
                    num(r, &l, "weight_var"),
                    num(r, &l, "preact_var"),
                )
            })
            .collect();
        (
            v,
            rows.iter()
                .all(|r| r[col(&l, "theory_preact_var")].is_empty()),
        )
    };
    let (file, no_theory) = with(&["--init", "model"], "file");
    assert!(no_theory);
    let (same, _) = with(&["--init", "model", "--perturb", "shrink=1"], "same");
    assert_eq!(file, same);
    let (he, _) = with(&["--init", "he-normal"], "he");
    let last = file.len() - 1;
    let (mixed, _) = with(
        &[
            "--init",
            "he-normal",
            "--init-node",
            &format!("{}=model", file[last].0),
        ],
        "mixed",
    );
    for (i, ((m, f), h)) in mixed.iter().zip(&file).zip(&he).enumerate() {
        let want = if i == last { f.1 } else { h.1 };
        assert_eq!(m.1, want, "{}: weight_var", m.0);
    }
    // shrink=0 leaves N(0, 0.01^2) noise: weight_var 1e-4 within its sampling spread.
    let (noise, _) = with(
        &[
            "--init",
            "model",
            "--perturb",
            "shrink=0,noise=normal:std=0.01",
        ],
        "noise",
    );
    for (node, wv, _) in &noise {
        assert!((wv / 1e-4 - 1.0).abs() < 0.5, "{node}: {wv}");
    }
    fails_with(
        &["run", "--model", model, "--perturb", "shrink=0.5"],
        "perturb with --init model",
    );
    // The running statistics the file stores (20 passes of N(0, 1) batches) are not the
    // batch's: the layers after the first normalization read other values.
    let (running, _) = with(&["--init", "model", "--bn-stats", "model"], "running");
    assert_eq!(running[0], file[0]);
    assert!(running[1..].iter().zip(&file[1..]).all(|(r, f)| r.2 != f.2));
    let toml_model = dir.path().join("m.toml");
    std::fs::write(&toml_model, mlp_toml(2, 8)).unwrap();
    fails_with(
        &[
            "run",
            "--model",
            toml_model.to_str().unwrap(),
            "--bn-stats",
            "model",
        ],
        "bn-stats=model is not allowed",
    );
    fails_with(
        &[
            "run",
            "--model",
            toml_model.to_str().unwrap(),
            "--init",
            "model",
        ],
        "init=model is not allowed; expected model only with --model FILE.onnx",
    );
}

/// A suite of experiments/ with its `models/...` and `data/...` paths made absolute (the
/// scaled copy runs from a temporary folder); a model's label is its file name.
fn run_model_suite(name: &str, lines: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments")
        .canonicalize()
        .unwrap();
    let root = root.to_str().unwrap().to_string();
    let swapped: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            let to = l
                .replace("\"models/", &format!("\"{root}/models/"))
                .replace("\"data/", &format!("\"{root}/data/"));
            (l.to_string(), to)
        })
        .collect();
    let pairs: Vec<(&str, &str)> = swapped
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    super::run_suite_scaled(name, &pairs)
}

/// experiments/models-dcgan.toml (as it is): N(0, 0.02) starts the generator's projection at
/// 64 x 0.02^2 and He at 2 (each within its seeds' interval + 5%); at the discriminator's
/// first convolution the two stand in the ratio of their variances, 0.02^2 / (2/27) (within
/// 15%: the same inputs and padding); without a normalization after it the second
/// convolution under N(0, 0.02) is below 1e-3 where He's is above 1; the generator's image
/// leaves its last convolution at under a quarter of He's scale.
#[test]
fn models_dcgan_small_weights_lose_the_signal_where_no_normalization_follows() {
    let (_dir, out) = run_model_suite(
        "models-dcgan",
        &[r#"model = ["models/dcgan_generator.toml", "models/dcgan_discriminator.toml"]"#],
    );
    // A model file's label is its name.
    let (g, d) = ("dcgan_generator.toml", "dcgan_discriminator.toml");
    let stat = |m: &str, init: &str, l: usize| {
        super::site_stat(&out, &format!("{m} / {init}"), "layer", l, "preact_var")
    };
    for (init, want) in [("normal:std=0.02", 64.0 * 0.0004), ("he-normal", 2.0)] {
        let (v, lo, hi) = stat(g, init, 1);
        assert!(
            want > lo / 1.05 && want < hi * 1.05,
            "{init}: {v} [{lo}, {hi}] vs {want}"
        );
    }
    let ratio = stat(d, "normal:std=0.02", 1).0 / stat(d, "he-normal", 1).0;
    let want = 0.0004 / (2.0 / 27.0);
    assert!((ratio / want - 1.0).abs() < 0.15, "{ratio} vs {want}");
    assert!(stat(d, "normal:std=0.02", 2).2 < 1e-3 && stat(d, "he-normal", 2).1 > 1.0);
    assert!(stat(g, "normal:std=0.02", 4).2 < stat(g, "he-normal", 4).1 / 4.0);
}

/// experiments/models-pytorch.toml (as it is): PyTorch's default draws weights and biases
/// of variance 1/(3 fan_in), so the ResNet's stem reads He's Var(z) / 6 plus the bias's
/// 1/81, and the ViT's first map (after LayerNorm's unit output) 32/96 + 1/96, each within
/// the seeds' interval + 5%; under N(0, 0.02) the ViT's first-block gradient is below 1e-5
/// where He's is above 1.
#[test]
fn models_pytorch_defaults_are_a_sixth_of_he_and_small_weights_starve_the_vit() {
    let (_dir, out) = run_model_suite(
        "models-pytorch",
        &[
            r#"model = "models/resnet_small.onnx""#,
            r#"model = "models/vit_blocks.onnx""#,
        ],
    );
    let (r, v) = ("resnet_small.onnx", "vit_blocks.onnx");
    let stat = |m: &str, init: &str, l: usize, s: &str| {
        super::site_stat(&out, &format!("{m} / {init}"), "layer", l, s)
    };
    let he = stat(r, "he-normal", 1, "preact_var").0;
    let (m, lo, hi) = stat(r, "model", 1, "preact_var");
    let want = he / 6.0 + 1.0 / 81.0;
    assert!(
        want > lo / 1.05 && want < hi * 1.05,
        "stem {m} [{lo}, {hi}] vs {want}"
    );
    let (m, lo, hi) = stat(v, "model", 1, "preact_var");
    let want = 32.0 / 96.0 + 1.0 / 96.0;
    assert!(
        want > lo / 1.05 && want < hi * 1.05,
        "vit {m} [{lo}, {hi}] vs {want}"
    );
    assert!(stat(v, "normal:std=0.02", 1, "grad_var").2 < 1e-5);
    assert!(stat(v, "he-normal", 1, "grad_var").1 > 1.0);
}

/// experiments/models-lm.toml (as it is): the embedding sets the stream's scale (PyTorch's
/// N(0, 1) table: 1 within 10%, the file's one draw; He's N(0, 1) tables: 2; N(0, 0.02):
/// 2 x 0.02^2), the weights the first map's after LayerNorm (32/96 + 1/96, 2, 32 x 0.02^2),
/// each within the seeds' interval + 5%; under N(0, 0.02) the causal attention is uniform
/// over the tokens seen, entropy ln(8!)/8 within 1e-3, and He's is below 90% of that.
#[test]
fn models_lm_the_embedding_sets_the_stream_and_the_weights_set_the_branches() {
    let (_dir, out) = run_model_suite("models-lm", &[r#"model = "models/tiny_lm.onnx""#]);
    let stat = |init: &str, site: &str, s: &str| {
        super::site_stat(&out, &format!("tiny_lm.onnx / {init}"), site, 1, s)
    };
    let (m, _, _) = stat("model", "embed", "preact_var");
    assert!((m - 1.0).abs() < 0.1, "PyTorch's embedding {m}");
    for (init, embed, first) in [
        ("model", None, 32.0 / 96.0 + 1.0 / 96.0),
        ("he-normal", Some(2.0), 2.0),
        ("normal:std=0.02", Some(2.0 * 0.0004), 32.0 * 0.0004),
    ] {
        let mut checks = vec![("layer", first)];
        checks.extend(embed.map(|e| ("embed", e)));
        for (site, want) in checks {
            let (v, lo, hi) = stat(init, site, "preact_var");
            assert!(
                want > lo / 1.05 && want < hi * 1.05,
                "{init} {site}: {v} [{lo}, {hi}] vs {want}"
            );
        }
    }
    let uniform = (1..=8).map(|i| (i as f64).ln()).sum::<f64>() / 8.0;
    let (e, _, _) = stat("normal:std=0.02", "attn", "attn_entropy");
    assert!((e - uniform).abs() < 1e-3, "{e} vs {uniform}");
    let (_, _, he_hi) = stat("he-normal", "attn", "attn_entropy");
    assert!(he_hi < 0.9 * uniform, "{he_hi}");
}

/// experiments/models-transfer.toml (as it is): the trained body's layers are the same
/// numbers whatever the head; new heads on it stand in the ratios of their weight variances
/// (N(0, 1) over He 16, Xavier over He 32/42), within 10% (8 seeds of 320 weights).
#[test]
fn models_transfer_new_heads_read_the_same_trained_body() {
    let (_dir, out) = run_model_suite(
        "models-transfer",
        &[
            r#"model = "models/digits_cnn.onnx""#,
            r#"inputs = "data/digits.csv""#,
        ],
    );
    let stat = |label: &str, l: usize| super::site_stat(&out, label, "layer", l, "preact_var").0;
    for l in 1..=3 {
        assert_eq!(
            stat("model", l),
            stat("model / linear1=he-normal", l),
            "layer {l}"
        );
    }
    let he = stat("model / linear1=he-normal", 4);
    let n = stat("model / linear1=normal:std=1", 4) / he;
    let x = stat("model / linear1=xavier-normal", 4) / he;
    assert!((n / 16.0 - 1.0).abs() < 0.1, "{n}");
    assert!((x / (32.0 / 42.0) - 1.0).abs() < 0.1, "{x}");
}

/// experiments/models-autoencoder.toml (as it is): a tied decoder map holds its encoder map's
/// weights (the same variance, to 1e-12); the untied autoencoder follows the mean field
/// (within the seeds' interval + 5%); tied LeCun reconstructs below untied LeCun and tied
/// Xavier above untied Xavier, the intervals apart.
#[test]
fn models_autoencoder_tying_wants_a_symmetric_scale() {
    let (_dir, out) = run_model_suite(
        "models-autoencoder",
        &[r#"model = ["models/autoencoder_tied.toml", "models/autoencoder_untied.toml"]"#],
    );
    let (t, u) = ("autoencoder_tied.toml", "autoencoder_untied.toml");
    let layers = out.join("layers.csv");
    let rows = records(&layers);
    let wv = |node: &str| -> Vec<f64> {
        rows.iter()
            .filter(|r| r[col(&layers, "label")].starts_with(t) && &r[col(&layers, "node")] == node)
            .map(|r| num(r, &layers, "weight_var"))
            .collect()
    };
    // The same entries in another order: the variance's sum differs in the last bits only.
    for (dec, enc) in [("dec2", "enc2"), ("dec1", "enc1")] {
        assert!(
            !wv(dec).is_empty() && wv(dec).len() == wv(enc).len(),
            "{dec}"
        );
        for (d, e) in wv(dec).iter().zip(wv(enc)) {
            assert!((d / e - 1.0).abs() < 1e-12, "{dec} {d} vs {enc} {e}");
        }
    }
    let a = out.join("aggregate.csv");
    for label in [
        format!("{u} / lecun-normal / linear"),
        format!("{u} / lecun-normal / tanh"),
    ] {
        let row = records(&a)
            .into_iter()
            .find(|r| {
                r[col(&a, "label")] == *label
                    && &r[col(&a, "layer")] == "4"
                    && &r[col(&a, "stat")] == "preact_var"
                    && &r[col(&a, "site")] == "layer"
            })
            .unwrap();
        let f = |c: &str| row[col(&a, c)].parse::<f64>().unwrap();
        let (lo, hi, th) = (f("ci95_lo"), f("ci95_hi"), f("theory"));
        assert!(
            th > lo / 1.05 && th < hi * 1.05,
            "{label}: [{lo}, {hi}] vs {th}"
        );
    }
    let stat = |m: &str, rest: &str| {
        super::site_stat(&out, &format!("{m} / {rest}"), "layer", 4, "preact_var")
    };
    assert!(stat(t, "lecun-normal / linear").2 < stat(u, "lecun-normal / linear").1);
    assert!(stat(t, "xavier-normal / linear").1 > stat(u, "xavier-normal / linear").2);
}

/// The TOML `attention` op: with its query and key maps zero (`--init-node`), every score is
/// 0 and each query attends uniformly, so the attention site's entropy is ln(T) and its
/// diagonal 1/T, to float precision; causal, query i attends uniformly to the i + 1 keys
/// it sees: entropy ln(T!)/T and diagonal the mean of 1/(i + 1). The q, k, v, o maps are
/// sites with the token columns.
#[test]
fn attention_written_in_toml_is_uniform_with_zero_queries_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let t = 8usize;
    for causal in [false, true] {
        let model = dir.path().join(format!("vit-{causal}.toml"));
        std::fs::write(
            &model,
            format!(
                "input = [{t}, 32]\n[[layers]]\nop = \"block\"\nname = \"blocks\"\nrepeat = 2\n\
                 residual = true\nlayers = [{{ op = \"norm\", kind = \"layer\" }}, \
                 {{ op = \"attention\", name = \"attn\", heads = 4, causal = {causal} }}]\n"
            ),
        )
        .unwrap();
        let args = [
            "run",
            "--model",
            model.to_str().unwrap(),
            "--seeds",
            "2",
            "--batch",
            "4",
            "--init-node",
            "*.q=zeros",
            "--init-node",
            "*.k=zeros",
        ];
        let layers = run_to(dir.path(), &format!("out-{causal}"), &args);
        let rows = records(&layers);
        let (entropy, diag) = if causal {
            let ln_fact: f64 = (1..=t).map(|i| (i as f64).ln()).sum();
            let diag: f64 = (1..=t).map(|i| 1.0 / i as f64).sum::<f64>() / t as f64;
            (ln_fact / t as f64, diag)
        } else {
            ((t as f64).ln(), 1.0 / t as f64)
        };
        let attn: Vec<_> = rows
            .iter()
            .filter(|r| &r[col(&layers, "site")] == "attn")
            .collect();
        assert_eq!(attn.len(), 2 * 2, "two attentions, two seeds");
        for r in attn {
            let (e, d) = (
                num(r, &layers, "attn_entropy"),
                num(r, &layers, "attn_diag"),
            );
            assert!(
                (e - entropy).abs() < 1e-5,
                "causal {causal}: entropy {e} vs {entropy}"
            );
            assert!(
                (d - diag).abs() < 1e-6,
                "causal {causal}: diag {d} vs {diag}"
            );
        }
        let sites: Vec<String> = rows
            .iter()
            .filter(|r| &r[col(&layers, "site")] == "layer" && &r[col(&layers, "seed")] == "0")
            .map(|r| r[col(&layers, "node")].to_string())
            .collect();
        assert_eq!(
            sites[..4],
            [
                "blocks.1.attn.q",
                "blocks.1.attn.k",
                "blocks.1.attn.v",
                "blocks.1.attn.o"
            ]
        );
        assert!(
            rows.iter()
                .filter(|r| &r[col(&layers, "site")] == "layer")
                .all(|r| !r[col(&layers, "token_cos")].is_empty())
        );
    }
}

/// A model (the residual CNN, and the token model with its embedding and mask) runs on the
/// GPU backend (Mesa's lavapipe in CI) with the numbers of flex, within
/// f32 reduction-order differences (1e-4 relative); in bf16 on flex it records what the
/// type loses at every site.
#[test]
fn a_model_runs_on_wgpu_and_in_low_precision() {
    for name in ["resnet_small", "tiny_lm"] {
        runs_on_wgpu_and_in_low_precision(name);
    }
}

fn runs_on_wgpu_and_in_low_precision(name: &str) {
    let model =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../experiments/models/{name}.onnx"));
    let model = model.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = ["run", "--model", model, "--seeds", "2", "--batch", "8"];
    let flex = run_to(dir.path(), "flex", &base);
    if super::wgpu_built() {
        let mut w = base.to_vec();
        w.extend(["--backend", "wgpu"]);
        let gpu = run_to(dir.path(), "wgpu", &w);
        let (a, b) = (records(&flex), records(&gpu));
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            for stat in ["preact_var", "act_var", "grad_var"] {
                let (p, q) = (num(x, &flex, stat), num(y, &gpu, stat));
                assert!(
                    same_cell(&p.to_string(), &q.to_string(), 1e-4),
                    "{name} {stat}: {p} vs {q}"
                );
            }
        }
    }
    let mut lp = base.to_vec();
    lp.extend(["--dtype", "bf16"]);
    let bf16 = run_to(dir.path(), "bf16", &lp);
    let rows = records(&bf16);
    let errs: Vec<f64> = rows
        .iter()
        .filter(|r| &r[col(&bf16, "site")] == "layer")
        .map(|r| num(r, &bf16, "rel_err"))
        .collect();
    // bf16 keeps 8 bits: errors of a few 2^-8 at most, and not zero.
    assert!(!errs.is_empty());
    assert!(
        errs.iter().all(|&e| e > 0.0 && e < 0.05),
        "{name}: {errs:?}"
    );
}

/// `train --inputs`: the teacher labels the file's samples, and the training probe's
/// statistics read them: on the raw digits a He ReLU network's first layer starts at about
/// (2/64) E|x|^2 = 0.47, far below the 2 of Gaussian inputs (checked against 1, a wide
/// margin on both sides for 64-sample batches); the loss is finite at every step.
/// `recommend --train` trains on the file the same way; only with the teacher task.
#[test]
fn train_on_real_inputs_labels_the_files_samples() {
    let digits = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/data/digits.csv");
    let dir = tempfile::tempdir().unwrap();
    let first = |extra: &[&str], name: &str| -> f64 {
        let out = dir.path().join(name);
        sigprop()
            .args([
                "train", "--width", "64", "--depth", "4", "--steps", "10", "--seeds", "1",
            ])
            .args(["--batch", "64", "--quiet", "--out"])
            .arg(&out)
            .args(extra)
            .assert()
            .success();
        let train = out.join("train.csv");
        assert!(
            records(&train)
                .iter()
                .all(|r| num(r, &train, "train_loss").is_finite())
        );
        let l = out.join("train_layers.csv");
        records(&l)
            .iter()
            .find(|r| &r[col(&l, "step")] == "0" && &r[col(&l, "layer")] == "1")
            .map(|r| num(r, &l, "preact_var"))
            .unwrap()
    };
    let real = first(&["--inputs", digits.to_str().unwrap()], "digits");
    let gauss = first(&[], "gauss");
    assert!(real < 1.0 && gauss > 1.0, "{real} vs {gauss}");
    // `recommend --train --inputs` trains each candidate on the file as `train` does: its
    // He-normal candidate's losses and gradient norms are train's, to the bit.
    let digits = digits.to_str().unwrap();
    let size = [
        "--width", "64", "--depth", "4", "--seeds", "2", "--batch", "64",
    ];
    let steps = [
        "--lr",
        "0.01",
        "--optimizer",
        "sgd",
        "--inputs",
        digits,
        "--quiet",
    ];
    let rec = dir.path().join("rec");
    sigprop()
        .args(["recommend", "--train", "5"])
        .args(size)
        .args(steps)
        .arg("--out")
        .arg(&rec)
        .assert()
        .success();
    let one = dir.path().join("one");
    sigprop()
        .args(["train", "--steps", "5", "--inits", "he-normal"])
        .args(size)
        .args(steps)
        .arg("--out")
        .arg(&one)
        .assert()
        .success();
    let curve = |path: &Path| -> Vec<(String, String, String, String)> {
        records(path)
            .iter()
            .filter(|r| &r[col(path, "init")] == "he-normal")
            .map(|r| {
                let c = |k: &str| r[col(path, k)].to_string();
                (c("seed"), c("step"), c("train_loss"), c("grad_norm"))
            })
            .collect()
    };
    let (a, b) = (
        curve(&rec.join("train/train.csv")),
        curve(&one.join("train.csv")),
    );
    assert_eq!(a.len(), 2 * 6);
    assert_eq!(a, b);
    fails_with(
        &[
            "recommend",
            "--train",
            "5",
            "--inputs",
            digits,
            "--task",
            "mixture",
            "--width",
            "64",
        ],
        "sigprop recommend --train trains on the file with --task teacher",
    );
}

/// A token model. The ONNX language model (scripts/torch_models.py: `nn.Embedding`, a learned
/// position table, a causal mask by `masked_fill`) reads token ids uniform on its vocabulary;
/// with block 1's query and key maps at zero each query attends uniformly to the keys it
/// sees, so the first attention's entropy is ln(T!)/T and its diagonal the mean of 1/(i + 1)
/// (the mask is exact); under He the token and position tables are N(0, 1), so the
/// embedding site's variance is 2 (within 5 standard deviations of its sampling spread).
/// A TOML token model reads ids from a file: a file of one repeated id gives every token
/// the same vector, token cosine 1. Ids outside the vocabulary, `--standardize`, training
/// and the input Jacobian are refused on one line.
#[test]
fn token_models_embed_ids_and_mask_the_future() {
    let lm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/models/tiny_lm.onnx");
    let lm = lm.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "--model",
        lm,
        "--init",
        "he-normal",
        "--seeds",
        "4",
        "--batch",
        "16",
        "--init-node",
        "linear1=zeros",
        "--init-node",
        "linear2=zeros",
    ];
    let layers = run_to(dir.path(), "lm", &args);
    let rows = records(&layers);
    let at = |site: &str, layer: &str| -> Vec<&csv::StringRecord> {
        rows.iter()
            .filter(|r| &r[col(&layers, "site")] == site && &r[col(&layers, "layer")] == layer)
            .collect()
    };
    let t = 8usize;
    let entropy = (1..=t).map(|i| (i as f64).ln()).sum::<f64>() / t as f64;
    let diag = (1..=t).map(|i| 1.0 / i as f64).sum::<f64>() / t as f64;
    let attn = at("attn", "1");
    assert_eq!(attn.len(), 4, "block 1's attention, 4 seeds");
    for r in attn {
        assert!((num(r, &layers, "attn_entropy") - entropy).abs() < 1e-5);
        assert!((num(r, &layers, "attn_diag") - diag).abs() < 1e-6);
    }
    // Var(E[id] + P[t]) = 2: a seed's estimate sees at most the 64 x 32 token entries and
    // the 8 x 32 position entries, each N(0, 1), so its standard deviation is at least
    // sqrt(2/2048 + 2/256); the mean of 4 seeds' is half of that.
    let embed: Vec<f64> = at("embed", "1")
        .iter()
        .map(|r| num(r, &layers, "preact_var"))
        .collect();
    assert_eq!(embed.len(), 4);
    let mean = embed.iter().sum::<f64>() / 4.0;
    let sd = (2.0f64 / 2048.0 + 2.0 / 256.0).sqrt() / 2.0;
    assert!((mean - 2.0).abs() < 5.0 * sd, "embed variance {mean}");
    assert_eq!(
        at("embed", "1")[0][col(&layers, "node")].to_string(),
        "gather1"
    );

    let model = dir.path().join("lm.toml");
    std::fs::write(
        &model,
        "input = [8]\n[[layers]]\nop = \"embedding\"\nname = \"tokens\"\nvocab = 50\ndim = 16\n\
         [[layers]]\nop = \"block\"\nname = \"blocks\"\nresidual = true\nlayers = [\
         { op = \"norm\", kind = \"layer\" }, { op = \"attention\", name = \"attn\", heads = 2, \
         causal = true }]\n[[layers]]\nop = \"linear\"\nname = \"head\"\nout = 50\n",
    )
    .unwrap();
    let model = model.to_str().unwrap();
    let write = |name: &str, rows: &[Vec<f64>]| -> String {
        let text: String = rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
                    + "\n"
            })
            .collect();
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let same = write("same.csv", &vec![vec![3.0; t]; 20]);
    let layers = run_to(
        dir.path(),
        "same",
        &[
            "run", "--model", model, "--inputs", &same, "--seeds", "2", "--batch", "8",
        ],
    );
    let rows = records(&layers);
    let embed: Vec<_> = rows
        .iter()
        .filter(|r| &r[col(&layers, "site")] == "embed")
        .collect();
    assert_eq!(embed.len(), 2);
    for r in embed {
        assert!((num(r, &layers, "token_cos") - 1.0).abs() < 1e-6);
        assert_eq!(&r[col(&layers, "node")], "tokens");
    }
    let outside = write("outside.csv", &vec![vec![50.0; t]; 20]);
    let fraction = write("fraction.csv", &vec![vec![1.5; t]; 20]);
    let ids = write("ids.csv", &vec![vec![1.0; t]; 20]);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "run", "--model", model, "--inputs", &outside, "--batch", "8",
            ],
            "expected token ids, whole numbers from 0 to 49 (the vocabulary); the file holds 50",
        ),
        (
            vec![
                "run", "--model", model, "--inputs", &fraction, "--batch", "8",
            ],
            "the file holds 1.5",
        ),
        (
            vec![
                "run",
                "--model",
                model,
                "--inputs",
                &ids,
                "--batch",
                "8",
                "--standardize",
            ],
            "standardize=on is not allowed; expected off with token ids",
        ),
        (
            vec!["train", "--model", model, "--steps", "2"],
            "expected a model fed features for training",
        ),
        (
            vec!["run", "--model", lm, "--jacobian"],
            "jacobian=token ids below 64 is not allowed",
        ),
        (
            vec!["recommend", "--model", model, "--train", "5"],
            "sigprop recommend --train trains on tasks that feed features",
        ),
    ];
    for (args, needle) in cases {
        fails_with(&args, needle);
    }
}
