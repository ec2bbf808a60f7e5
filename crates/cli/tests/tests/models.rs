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
            "init-node=head=zeros is not allowed; expected a pattern that matches a linear \
             or conv node; the model's are: layers.1, layers.2",
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
