//! End-to-end tests of the `sigprop` binary in temporary folders: what each command
//! writes, reproducibility, agreement with mean-field theory, and bad input; and the
//! workspace's layering rule (no import circle in any crate, `tests/circles.rs`).

use std::path::Path;

use assert_cmd::Command;

#[path = "tests/circles.rs"]
mod circles;
#[path = "tests/models.rs"]
mod models;

fn sigprop() -> Command {
    Command::cargo_bin("sigprop").unwrap()
}

/// Whether the binary under test has the opt-in ndarray backend, however the feature was
/// turned on (`sigprop/ndarray`, or the runner's or the network crate's own).
/// Whether the binary under test has the GPU backend: `cargo test --workspace` builds it in
/// (the library crates' default); `cargo test -p sigprop` alone tests the CPU-only binary.
fn wgpu_built() -> bool {
    sigprop_nets::BackendKind::all()
        .iter()
        .any(|&(kind, built)| kind == sigprop_nets::BackendKind::Wgpu && built)
}

fn ndarray_built() -> bool {
    sigprop_nets::BackendKind::all()
        .iter()
        .any(|&(kind, built)| kind == sigprop_nets::BackendKind::Ndarray && built)
}

fn header(path: &Path) -> Vec<String> {
    let mut r = csv::Reader::from_path(path).unwrap();
    r.headers().unwrap().iter().map(String::from).collect()
}

/// A CSV names each of its columns once.
fn columns_once(path: &Path) {
    let h = header(path);
    for (i, c) in h.iter().enumerate() {
        assert!(!h[..i].contains(c), "{}: column {c} twice", path.display());
    }
}

/// Run `experiments/<name>.toml` into a fresh temporary folder; the folder lives as long
/// as the returned guard.
fn run_suite(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments")
        .join(format!("{name}.toml"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(name);
    sigprop()
        .arg("suite")
        .arg(&suite)
        .args(["--quiet", "--out"])
        .arg(&out)
        .assert()
        .success();
    (dir, out)
}

/// A JSON file the command wrote (manifest.json, bench.json, ...).
fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn records(path: &Path) -> Vec<csv::StringRecord> {
    let mut r = csv::Reader::from_path(path).unwrap();
    r.records().map(|r| r.unwrap()).collect()
}

/// The position of column `name` in the CSV at `path`. Headers are cached per file
/// version (path, size, modification time): tests call this once per row and field, and
/// reopening a file each time made the larger checks spend most of their time here.
fn col(path: &Path, name: &str) -> usize {
    type Key = (std::path::PathBuf, u64, Option<std::time::SystemTime>);
    thread_local! {
        static HEADERS: std::cell::RefCell<std::collections::HashMap<Key, Vec<String>>> =
            Default::default();
    }
    let meta = std::fs::metadata(path).ok();
    let key = (
        path.to_path_buf(),
        meta.as_ref().map_or(0, |m| m.len()),
        meta.and_then(|m| m.modified().ok()),
    );
    HEADERS.with(|h| {
        let mut h = h.borrow_mut();
        h.entry(key)
            .or_insert_with(|| header(path))
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("{} has no column {name}", path.display()))
    })
}

const SMALL: &[&str] = &[
    "--depth", "6", "--width", "32", "--batch", "16", "--seeds", "2", "--quiet",
];

#[test]
fn run_writes_every_promised_file_with_the_documented_columns() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    sigprop()
        .args(["run", "--init", "he-normal", "--activation", "relu"])
        .args(SMALL)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    // Nothing is swept, and grid.csv still names its columns.
    assert_eq!(header(&out.join("grid.csv")), ["config", "key", "value"]);
    for f in [
        "layers.csv",
        "aggregate.csv",
        "summary.csv",
        "histograms.csv",
    ] {
        columns_once(&out.join(f));
    }
    for f in [
        "layers.csv",
        "aggregate.csv",
        "summary.csv",
        "histograms.csv",
        "manifest.json",
        "report.md",
        "report.html",
        "preact_var.svg",
        "preact_var.png",
        "grad_var.svg",
        "grad_var.png",
        "hist_act_base.png",
        "hist_preact_base.png",
        "hist_grad_base.png",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let cols = header(&out.join("layers.csv"));
    for c in [
        "run_id",
        "arch",
        "init",
        "activation",
        "depth",
        "width",
        "batch",
        "seed",
        "backend",
        "layer",
        "preact_mean",
        "preact_var",
        "act_mean",
        "act_var",
        "act_batch_var",
        "grad_var",
        "act_grad_var",
        "wgrad_var",
        "weight_var",
        "dead_frac",
        "saturated_frac",
        "nonfinite",
        "theory_preact_var",
        "theory_grad_var",
    ] {
        assert!(
            cols.iter().any(|h| h == c),
            "layers.csv lacks {c}: {cols:?}"
        );
    }
    assert_eq!(records(&out.join("layers.csv")).len(), 2 * 6);
    for c in [
        "fwd_log_slope",
        "bwd_log_slope",
        "fwd_ratio",
        "bwd_ratio",
        "fwd_slope_lo",
        "fwd_slope_hi",
        "bwd_slope_lo",
        "bwd_slope_hi",
        "fwd_form",
        "bwd_form",
        "fwd_power",
        "bwd_power",
        "batch_var_share",
        "verdict",
        "verdict_detail",
        "first_nonfinite_layer",
        "lsuv_iterations",
    ] {
        assert!(
            header(&out.join("summary.csv")).iter().any(|h| h == c),
            "summary.csv lacks {c}"
        );
    }
    for c in ["stat", "mean", "sd", "ci95_lo", "ci95_hi", "theory"] {
        assert!(
            header(&out.join("aggregate.csv")).iter().any(|h| h == c),
            "aggregate.csv lacks {c}"
        );
    }
    // unit_scale is the largest |ln| of the four variances' seed means in aggregate.csv:
    // He at width 32 has weight_var 2/32, ln 16 = 2.77 below 1.
    let (a, s) = (out.join("aggregate.csv"), out.join("summary.csv"));
    let mut want = (0.0f64, String::new());
    for r in records(&a) {
        let stat = &r[col(&a, "stat")];
        let mean: f64 = r[col(&a, "mean")].parse().unwrap();
        let vars = ["preact_var", "act_var", "grad_var", "weight_var"];
        if vars.contains(&stat) && mean > 0.0 && mean.ln().abs() > want.0 {
            let at = format!("{stat} at {} {}", &r[col(&a, "site")], &r[col(&a, "layer")]);
            want = (mean.ln().abs(), at);
        }
    }
    let row = &records(&s)[0];
    let unit: f64 = row[col(&s, "unit_scale")].parse().unwrap();
    assert!((unit - want.0).abs() < 1e-9, "{unit} vs {want:?}");
    assert_eq!(&row[col(&s, "unit_scale_at")], want.1.as_str());
    assert!((unit - 16f64.ln()).abs() < 0.2, "{unit}");
    let manifest = read_json(&out.join("manifest.json"));
    assert_eq!(
        manifest["configurations"][0]["seeds"],
        serde_json::json!([0, 1])
    );
    assert!(manifest["configurations"][0]["times"][0]["forward_backward_s"].is_number());
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("sigprop run") && report.contains("preact_var.png"));
}

#[test]
fn rerunning_with_the_same_seed_gives_a_byte_identical_layers_csv() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "compare",
        "--inits",
        "xavier-normal,orthogonal",
        "--activations",
        "tanh,relu",
        "--sigma-b",
        "0.1",
    ];
    // Twice on the machine's threads, once on one thread (Burn's threaded kernels and the
    // parallel seeds and statistics then run serially): the same bytes each time.
    for (name, threads) in [("a", None), ("b", None), ("one", Some("1"))] {
        let mut cmd = sigprop();
        if let Some(n) = threads {
            cmd.env("RAYON_NUM_THREADS", n);
        }
        cmd.args(args)
            .args(SMALL)
            .arg("--out")
            .arg(dir.path().join(name))
            .assert()
            .success();
    }
    let a = std::fs::read(dir.path().join("a/layers.csv")).unwrap();
    let b = std::fs::read(dir.path().join("b/layers.csv")).unwrap();
    let one = std::fs::read(dir.path().join("one/layers.csv")).unwrap();
    assert_eq!(records(&dir.path().join("a/layers.csv")).len(), 4 * 2 * 6);
    assert!(a == b, "layers.csv differs between identical runs");
    assert!(
        a == one,
        "layers.csv differs between all threads and one thread"
    );
}

/// A flag and its suite key are one definition (`runner::Settings`): the shorthands and
/// the Jacobian switch given as flags run the network the same keys run in a suite, and
/// write the same layers.csv.
#[test]
fn flags_and_suite_keys_run_the_same_network() {
    let dir = tempfile::tempdir().unwrap();
    fails_with(
        &["run", "--sigma-w2", "1.5", "--init", "he-normal", "--quiet"],
        "init and sigma-w2 both given",
    );
    fails_with(
        &["recommend", "--sigma-w2", "2", "--depth", "3", "--quiet"],
        "--sigma-w2 is not allowed with recommend",
    );
    sigprop()
        .args([
            "run",
            "--activation",
            "tanh",
            "--sigma-w2",
            "1.5",
            "--sigma-b2",
            "0.04",
        ])
        .args(["--jacobian", "--jacobian-samples", "4"])
        .args(SMALL)
        .arg("--out")
        .arg(dir.path().join("flags"))
        .assert()
        .success();
    let suite = dir.path().join("keys.toml");
    std::fs::write(
        &suite,
        "[base]\nactivation = \"tanh\"\nsigma-w2 = 1.5\nsigma-b2 = 0.04\njacobian = true\n\
         jacobian-samples = 4\ndepth = 6\nwidth = 32\nbatch = 16\nseeds = 2\n",
    )
    .unwrap();
    sigprop()
        .arg("suite")
        .arg(&suite)
        .arg("--quiet")
        .arg("--out")
        .arg(dir.path().join("keys"))
        .assert()
        .success();
    let flags = dir.path().join("flags/layers.csv");
    let init = col(&flags, "init");
    let bias = col(&flags, "bias_init");
    let row = &records(&flags)[0];
    assert_eq!(&row[init], "variance-scaling:scale=1.5,distribution=normal");
    assert_eq!(&row[bias], "normal:std=0.2");
    // The Jacobian is measured at the last layer.
    let jac = col(&flags, "jac_cond");
    assert!(records(&flags).iter().any(|r| !r[jac].is_empty()));
    assert_eq!(
        std::fs::read(&flags).unwrap(),
        std::fs::read(dir.path().join("keys/layers.csv")).unwrap()
    );
    // `--jacobian=false` turns off what --jacobian-samples implies.
    sigprop()
        .args(["run", "--jacobian=false", "--jacobian-samples", "4"])
        .args(SMALL)
        .arg("--out")
        .arg(dir.path().join("off"))
        .assert()
        .success();
    let off = dir.path().join("off/layers.csv");
    assert!(
        records(&off)
            .iter()
            .all(|r| r[col(&off, "jac_cond")].is_empty())
    );
}

/// On a GPU backend (wgpu: Mesa's lavapipe in CI) seeds 1 and 2 run as one pass over their
/// stacked weights (seed 0 draws the histograms and runs alone), and each next pass's
/// weights are filled and uploaded while the current one computes; every seed's rows are
/// still those of the seed run alone, LSUV's device passes during staging included, and
/// the whole layers.csv that of `--seed-batch 1`.
#[test]
fn gpu_seeds_staged_ahead_and_batched_give_the_rows_of_each_seed_run_alone() {
    if std::env::var("SIGPROP_SKIP_WGPU").is_ok_and(|v| v == "1") {
        eprintln!("SIGPROP_SKIP_WGPU=1: skipping wgpu");
        return;
    }
    if !wgpu_built() {
        eprintln!("this sigprop has no wgpu (cargo test --workspace builds it in): skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = [
        "run",
        "--backend",
        "wgpu",
        "--init",
        "lsuv",
        "--activation",
        "tanh",
        "--depth",
        "6",
        "--width",
        "32",
        "--batch",
        "16",
        "--quiet",
    ];
    let all = dir.path().join("all");
    sigprop()
        .args(base)
        .args(["--seeds", "3", "--out"])
        .arg(&all)
        .assert()
        .success();
    let rows = records(&all.join("layers.csv"));
    let seed_col = col(&all.join("layers.csv"), "seed");
    assert_eq!(rows.len(), 3 * 6);
    for seed in 0..3u64 {
        let solo = dir.path().join(format!("solo-{seed}"));
        sigprop()
            .args(base)
            .args(["--seed", &seed.to_string(), "--out"])
            .arg(&solo)
            .assert()
            .success();
        let mine: Vec<&csv::StringRecord> = rows
            .iter()
            .filter(|r| r[seed_col] == *seed.to_string())
            .collect();
        let alone = records(&solo.join("layers.csv"));
        assert_eq!(mine.len(), 6, "seed {seed}");
        for (a, b) in mine.iter().zip(&alone) {
            assert_eq!(*a, b, "seed {seed}: staged rows differ from the seed alone");
        }
    }
    let one = dir.path().join("one");
    sigprop()
        .args(base)
        .args(["--seeds", "3", "--seed-batch", "1", "--out"])
        .arg(&one)
        .assert()
        .success();
    assert!(
        std::fs::read(all.join("layers.csv")).unwrap()
            == std::fs::read(one.join("layers.csv")).unwrap(),
        "layers.csv differs between batched seeds and --seed-batch 1"
    );
}

/// On a CPU backend too, `--seed-batch` runs seeds side by side in one pass with the bytes
/// of one seed a pass; 0 is refused with exit code 2 and one line naming the flag.
#[test]
fn seeds_in_one_pass_write_the_layers_csv_of_one_seed_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let base = [
        "run",
        "--arch",
        "resmlp",
        "--activation",
        "tanh",
        "--init",
        "xavier-normal",
        "--sigma-b",
        "0.1",
        "--depth",
        "5",
        "--width",
        "32",
        "--batch",
        "16",
        "--seeds",
        "5",
        "--quiet",
    ];
    for (name, k) in [("one", "1"), ("three", "3"), ("all", "8")] {
        sigprop()
            .args(base)
            .args(["--seed-batch", k, "--out"])
            .arg(dir.path().join(name))
            .assert()
            .success();
    }
    let one = std::fs::read(dir.path().join("one/layers.csv")).unwrap();
    // Five blocks of four sites (branch.1, branch.2, branch, out) per seed.
    assert_eq!(records(&dir.path().join("one/layers.csv")).len(), 5 * 5 * 4);
    for name in ["three", "all"] {
        let other = std::fs::read(dir.path().join(name).join("layers.csv")).unwrap();
        assert!(
            other == one,
            "{name}: layers.csv differs from one seed a pass"
        );
    }
    // They did share a pass: seeds 1-4 (seed 0 draws the histograms alone) each report
    // the pass's time divided by four, the same number.
    let manifest = read_json(&dir.path().join("all/manifest.json"));
    let times = &manifest["configurations"][0]["times"];
    let fb = |i: usize| times[i]["forward_backward_s"].as_f64().unwrap();
    assert!((2..5).all(|i| fb(i) == fb(1)), "{times}");
    let out = sigprop()
        .args(base)
        .args(["--seed-batch", "0", "--out"])
        .arg(dir.path().join("zero"))
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("seed-batch=0"), "{err}");
    // Commands that run one network at a time refuse it rather than ignore it.
    for cmd in ["bench", "train", "coord-check"] {
        fails_with(
            &[cmd, "--seed-batch", "2"],
            &format!("--seed-batch 2 is not allowed with sigprop {cmd}"),
        );
    }
}

/// Seed means against the mean-field columns. Tolerance: 4 standard errors of the seed
/// mean (from the measured spread), plus the finite-width bias allowance of 1% (the
/// theory is the infinite-width limit; at width 512 its O(1/N) corrections are ~0.2% a
/// layer for tanh and SELU, and exactly 0 for ReLU's q-map).
#[test]
fn measured_seed_means_follow_the_theory_columns() {
    let dir = tempfile::tempdir().unwrap();
    for (act, init) in [
        ("relu", "he-normal"),
        ("tanh", "xavier-normal"),
        ("selu", "lecun-normal"),
    ] {
        let out = dir.path().join(act);
        sigprop()
            .args([
                "run",
                "--activation",
                act,
                "--init",
                init,
                "--depth",
                "8",
                "--width",
                "512",
                "--batch",
                "128",
                "--seeds",
                "8",
                "--quiet",
            ])
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        let agg = out.join("aggregate.csv");
        let (stat, mean, sd, n, theory) = (
            col(&agg, "stat"),
            col(&agg, "mean"),
            col(&agg, "sd"),
            col(&agg, "n"),
            col(&agg, "theory"),
        );
        let mut checked = 0;
        for r in records(&agg) {
            if !["preact_var", "grad_var"].contains(&&r[stat]) {
                continue;
            }
            let t: f64 = r[theory]
                .parse()
                .unwrap_or_else(|_| panic!("{act}: no theory for {}", &r[stat]));
            let (m, s, k): (f64, f64, f64) = (
                r[mean].parse().unwrap(),
                r[sd].parse().unwrap(),
                r[n].parse().unwrap(),
            );
            let tol = 4.0 * s / k.sqrt() + 0.01 * t;
            assert!(
                (m - t).abs() < tol,
                "{act} {} : mean {m} vs theory {t} (tol {tol})",
                &r[stat]
            );
            checked += 1;
        }
        assert_eq!(checked, 16, "{act}");
    }
}

#[test]
fn json_prints_the_summary_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let out = sigprop()
        .args([
            "run",
            "--init",
            "he-normal",
            "--json",
            "--depth",
            "4",
            "--width",
            "16",
            "--batch",
            "8",
            "--seeds",
            "2",
        ])
        .arg("--out")
        .arg(dir.path().join("j"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v[0]["init"], "he-normal");
    assert_eq!(v[0]["seeds"], 2);
    assert!(v[0]["verdict"].is_string() && v[0]["fwd_log_slope"].is_number());
}

#[test]
fn an_overflowing_run_finishes_with_the_verdict_diverged() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    sigprop()
        .args([
            "run",
            "--init",
            "uniform:a=1",
            "--activation",
            "relu",
            "--depth",
            "100",
            "--width",
            "128",
            "--batch",
            "16",
            "--seeds",
            "1",
            "--quiet",
        ])
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let s = out.join("summary.csv");
    let row = &records(&s)[0];
    assert_eq!(&row[col(&s, "verdict")], "diverged");
    let first: usize = row[col(&s, "first_nonfinite_layer")].parse().unwrap();
    assert!(first > 1 && first < 100, "first non-finite layer {first}");
    assert!(
        out.join("preact_var.png").is_file(),
        "charts skip non-finite points instead of failing"
    );
}

#[test]
fn plot_redraws_the_charts_from_the_csvs_of_an_earlier_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p");
    sigprop()
        .args(["run", "--init", "lecun-normal", "--activation", "tanh"])
        .args(SMALL)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    for f in [
        "preact_var.svg",
        "preact_var.png",
        "grad_var.png",
        "report.md",
    ] {
        std::fs::remove_file(out.join(f)).unwrap();
    }
    std::fs::remove_file(out.join("manifest.json")).unwrap();
    // A chart of an older layout and a file of the user's.
    std::fs::write(out.join("hist_act_c0.png"), b"old").unwrap();
    std::fs::write(out.join("notes.txt"), b"mine").unwrap();
    sigprop().arg("plot").arg(&out).assert().success();
    assert!(!out.join("hist_act_c0.png").exists(), "stale chart kept");
    assert!(
        out.join("notes.txt").is_file(),
        "a non-chart file was removed"
    );
    // A manifest that is there but unreadable is an error, not a silent default.
    std::fs::write(out.join("manifest.json"), b"{ not json").unwrap();
    fails_with(&["plot", out.to_str().unwrap()], "manifest.json");
    std::fs::remove_file(out.join("manifest.json")).unwrap();
    for f in [
        "preact_var.svg",
        "preact_var.png",
        "grad_var.png",
        "report.md",
    ] {
        assert!(out.join(f).is_file(), "plot did not redraw {f}");
    }
}

#[test]
fn a_suite_file_runs_its_grid_and_two_numeric_keys_get_heatmaps() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("s.toml");
    std::fs::write(
        &suite,
        "name = \"mini\"\n[base]\nactivation = \"tanh\"\ndepth = 4\nwidth = 16\nbatch = 8\nseeds = 1\n[grid]\nsigma-w2 = [0.5, 1.0, 2.0]\nsigma-b2 = [0.0, 0.1]\n",
    )
    .unwrap();
    let out = dir.path().join("o");
    sigprop()
        .arg("suite")
        .arg(&suite)
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .assert()
        .success();
    assert_eq!(records(&out.join("summary.csv")).len(), 6);
    assert!(out.join("heatmap_grad_growth.png").is_file());
}

#[test]
fn theory_prints_per_layer_predictions_and_fixed_points() {
    let out = sigprop()
        .args([
            "theory",
            "--activation",
            "relu",
            "--init",
            "xavier-normal",
            "--depth",
            "4",
            "--width",
            "100",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("layer,preact_var,"));
    // ReLU with sigma_w^2 = 1 halves q each layer: 1, 1/2, 1/4, 1/8.
    let q: Vec<f64> = lines
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    for (l, q) in q.iter().enumerate() {
        assert!(
            (q - 0.5f64.powi(l as i32)).abs() < 1e-9,
            "layer {}: {q}",
            l + 1
        );
    }
    let info = sigprop()
        .args(["theory", "--activation", "tanh", "--sigma-b", "0", "--info"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let info = String::from_utf8(info).unwrap();
    assert!(
        info.contains("chi_1") && info.contains("critical sigma_w"),
        "{info}"
    );
    // Sensible precision: at most seven significant digits, no float noise.
    assert!(
        !info.contains("0000000") && !info.contains("9999999"),
        "{info}"
    );
    let relu = sigprop()
        .args(["theory", "--activation", "relu", "--info"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let relu = String::from_utf8(relu).unwrap();
    assert!(relu.contains("sigma_w^2       2   "), "{relu}");
}

fn fails_with(args: &[&str], needle: &str) {
    // In a folder of its own: a command that wrongly succeeds writes its default output
    // there, not into the source tree.
    let cwd = tempfile::tempdir().unwrap();
    let out = sigprop()
        .current_dir(cwd.path())
        .args(args)
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: not one line: {err}"
    );
    assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

#[test]
fn bad_input_exits_with_code_2_and_one_line_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let out = out.to_str().unwrap();
    fails_with(&["run", "--init", "he_norml", "--out", out], "he_norml");
    fails_with(&["run", "--activation", "relux", "--out", out], "relux");
    fails_with(
        &["run", "--arch", "vit", "--out", out],
        "unknown architecture \"vit\"",
    );
    fails_with(&["run", "--backend", "tpu", "--out", out], "tpu");
    if !ndarray_built() {
        // Opt-in at build time: named, with the cargo feature that brings it.
        fails_with(
            &["run", "--backend", "ndarray", "--out", out],
            &format!(
                "backend ndarray is unavailable: this sigprop was built without it; build it \
                 with `cargo build --release --features {0}` and run that binary, or `cargo run \
                 --release --features {0} -- ...` (built in: flex",
                if wgpu_built() {
                    "ndarray,wgpu"
                } else {
                    "ndarray"
                }
            ),
        );
    }
    fails_with(&["run", "--depth", "0", "--out", out], "depth");
    fails_with(&["run", "--width=-3", "--out", out], "--width");
    fails_with(&["run", "--init", "normal:std=-1", "--out", out], "std");
    fails_with(&["list", "gizmos"], "gizmos");
    // Sizes that cannot fit are refused with the estimate, before any memory is committed.
    fails_with(
        &[
            "run", "--width", "100000", "--batch", "100000", "--out", out,
        ],
        "need about",
    );
    fails_with(
        &["run", "--max-memory", "1M", "--out", out],
        "more than the limit of 1 MiB (max-memory)",
    );
    fails_with(
        &["run", "--max-memory", "lots", "--out", out],
        "max-memory=lots",
    );
    fails_with(
        &["run", "--seeds", "99999999999", "--out", out],
        "seeds=99999999999",
    );
    fails_with(&["run", "--sigma-b", "nan", "--out", out], "sigma-b=NaN");
    fails_with(&["run", "--sigma-b", "inf", "--out", out], "sigma-b=inf");
    fails_with(&["run", "--sigma-b", "-0.5", "--out", out], "sigma-b=-0.5");
    fails_with(
        &["theory", "--activation", "tanh", "--sigma-b", "-1"],
        "--sigma-b",
    );
    fails_with(
        &["theory", "--activation", "tanh", "--sigma-b", "nan"],
        "--sigma-b",
    );
    fails_with(
        &["theory", "--activation", "tanh", "--depth", "99999999999"],
        "--depth",
    );
    fails_with(&["compare", "--out", out], "--inits");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[base]\ndepth = 3\n[grid\n").unwrap();
    fails_with(&["suite", bad.to_str().unwrap(), "--out", out], "bad.toml");
    std::fs::write(&bad, "[base]\ndepth = 3\ndepht = 4\n").unwrap();
    fails_with(&["suite", bad.to_str().unwrap(), "--out", out], "depht");
    std::fs::write(&bad, "[base]\ndepth = 3\n[grid]\nsigma-w2 = [1.0, nan]\n").unwrap();
    fails_with(
        &["suite", bad.to_str().unwrap(), "--out", out],
        "sigma-w2=NaN",
    );
    std::fs::write(&bad, "[base]\nsigma-b = inf\n").unwrap();
    fails_with(
        &["suite", bad.to_str().unwrap(), "--out", out],
        "sigma-b=inf",
    );
    // Non-ASCII before a syntax error: the line number is still found.
    std::fs::write(&bad, "# σ_w² über alles\n[base]\ndepth = = 3\n").unwrap();
    fails_with(&["suite", bad.to_str().unwrap(), "--out", out], "line 3");
    fails_with(
        &[
            "suite",
            dir.path().join("missing.toml").to_str().unwrap(),
            "--out",
            out,
        ],
        "missing.toml",
    );
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let unwritable = file.join("sub");
    fails_with(
        &[
            "run",
            "--depth",
            "2",
            "--width",
            "4",
            "--seeds",
            "1",
            "--out",
            unwritable.to_str().unwrap(),
        ],
        "--out",
    );
    // A setting of another architecture is an error naming both.
    fails_with(
        &["run", "--arch", "mlp", "--kernel", "5", "--out", out],
        "kernel is not a setting of arch mlp; its own settings are: widths",
    );
    fails_with(
        &["run", "--arch", "rnn", "--branch-layers", "3", "--out", out],
        "branch-layers is not a setting of arch rnn",
    );
    // The transformer's settings: each bad value named, with what is allowed.
    let tf = |extra: &[&'static str]| {
        let mut a = vec!["run", "--arch", "transformer", "--width", "8"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["--out", "unused"]);
        a
    };
    fails_with(
        &tf(&["--heads", "3"]),
        "heads=3 is not allowed; expected a divisor of width 8",
    );
    fails_with(&tf(&["--seq-len", "0"]), "seq-len=0 is not allowed");
    // What is allowed, said once (a spec's own error that only repeats it is not quoted).
    let bad_scale = [
        "run",
        "--arch",
        "resmlp",
        "--branch-scale",
        "foo",
        "--out",
        "unused",
    ];
    fails_with(
        &bad_scale,
        "branch-scale=foo is not allowed; expected 1, a number >= 0",
    );
    let err = sigprop().args(bad_scale).output().unwrap().stderr;
    let err = String::from_utf8(err).unwrap();
    assert_eq!(err.matches("is not allowed").count(), 1, "{err}");
    fails_with(&tf(&["--input-corr", "1"]), "input-corr=1 is not allowed");
    fails_with(&tf(&["--input-corr", "x"]), "--input-corr=x is not allowed");
    fails_with(
        &tf(&["--norm", "batch"]),
        "none, layer or rms for a transformer",
    );
    fails_with(
        &["run", "--arch", "mlp", "--causal", "--out", out],
        "causal is not a setting of arch mlp",
    );
    fails_with(
        &tf(&["--init-role", "embed=zeros"]),
        "unknown role \"embed\"",
    );
    fails_with(
        &tf(&["--init-role", "value=lsuv"]),
        "lsuv needs the whole network",
    );
    fails_with(&tf(&["--skip-scale", "0"]), "skip-scale");
    fails_with(
        &tf(&["--skip-scale", "2", "--shortcut", "none"]),
        "there is no skip to scale",
    );
    fails_with(
        &["run", "--arch", "resmlp", "--skip-scale", "2", "--out", out],
        "skip-scale is not a setting of arch resmlp",
    );
    // A configuration that cannot be built fails the suite before the first one runs.
    for grid in [
        "init = [\"he-normal\", \"dirac\"]",
        "arch = [\"mlp\", \"rnn\"]\ninit = [\"lsuv\"]",
        "arch = [\"cnn\", \"mlp\"]\ninit = [\"delta-orthogonal\"]",
    ] {
        std::fs::write(
            &bad,
            format!("[base]\ndepth = 3\nwidth = 8\n[grid]\n{grid}\n"),
        )
        .unwrap();
        fails_with(&["suite", bad.to_str().unwrap(), "--out", out], "init");
    }
    // Nothing was written by any of them: the output folder was never created.
    assert!(!Path::new(out).exists());
}

#[test]
fn every_architecture_and_loss_runs_end_to_end_with_its_charts() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[&[&str]] = &[
        &["--arch", "resmlp", "--init", "fixup"],
        &[
            "--arch",
            "resmlp",
            "--init",
            "he-normal",
            "--branch-layers",
            "3",
        ],
        &[
            "--arch",
            "cnn",
            "--init",
            "he-normal",
            "--image-size",
            "6",
            "--groups",
            "2",
        ],
        &[
            "--arch",
            "rnn",
            "--init",
            "xavier-normal",
            "--activation",
            "tanh",
        ],
        &["--loss", "cross-entropy", "--init", "lsuv"],
        // The classic ndarray backend where this build has it (the `ndarray` feature).
        &[
            "--loss",
            "mse",
            "--backend",
            if ndarray_built() { "ndarray" } else { "flex" },
        ],
        &[
            "--arch",
            "cnn",
            "--loss",
            "cross-entropy",
            "--image-size",
            "4",
        ],
    ];
    for (i, case) in cases.iter().enumerate() {
        let out = dir.path().join(i.to_string());
        sigprop()
            .arg("run")
            .args(*case)
            .args(SMALL)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        assert!(
            out.join("preact_var.png").is_file() && out.join("hist_act_base.png").is_file(),
            "{case:?}"
        );
        let s = out.join("summary.csv");
        assert_ne!(&records(&s)[0][col(&s, "verdict")], "diverged", "{case:?}");
    }
    // Fixup: every block output equals the block input at initialization.
    let s = dir.path().join("0/summary.csv");
    let fwd: f64 = records(&s)[0][col(&s, "fwd_ratio")].parse().unwrap();
    assert!((fwd - 1.0).abs() < 1e-6, "fixup fwd_ratio {fwd}");
}

#[test]
fn critical_tanh_inits_share_a_verdict_and_he_is_flagged_for_gradient_growth() {
    // The quickstart's tanh half at width 256 and three seeds: Xavier and orthogonal weights
    // are both at the edge of chaos (power-law decay); He is chaotic (chi_1 = 1.106), its
    // gradients grow about 60-fold toward the input.
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("tanh.toml");
    std::fs::write(
        &suite,
        "name = \"tanh\"\n[base]\narch = \"mlp\"\nactivation = \"tanh\"\ndepth = 50\nwidth = 256\nbatch = 128\nseeds = 3\n[grid]\ninit = [\"he-normal\", \"xavier-normal\", \"orthogonal\"]\n",
    )
    .unwrap();
    let out = dir.path().join("o");
    sigprop()
        .arg("suite")
        .arg(&suite)
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .assert()
        .success();
    let s = out.join("summary.csv");
    let verdict = |label: &str| {
        let row = records(&s)
            .into_iter()
            .find(|r| &r[col(&s, "label")] == label)
            .unwrap();
        (
            row[col(&s, "verdict")].to_string(),
            row[col(&s, "verdict_detail")].to_string(),
        )
    };
    let (xavier, orthogonal, he) = (
        verdict("xavier-normal"),
        verdict("orthogonal"),
        verdict("he-normal"),
    );
    assert_eq!(xavier.0, "critical", "{xavier:?}");
    assert_eq!(orthogonal.0, "critical", "{orthogonal:?}");
    assert_eq!(he.0, "exploding-gradients", "{he:?}");
    assert!(he.1.starts_with("exploding gradients (x"), "{he:?}");
    // In the report He is ranked below both critical initializations.
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    let rank_of = |label: &str| {
        report
            .lines()
            .find(|l| l.starts_with("| ") && l.contains(&format!("| {label} |")))
            .and_then(|l| l.split('|').nth(1))
            .map(|r| {
                r.trim()
                    .trim_end_matches(" (tie)")
                    .parse::<usize>()
                    .unwrap()
            })
            .unwrap_or_else(|| panic!("{label} not ranked:\n{report}"))
    };
    assert!(rank_of("he-normal") > rank_of("xavier-normal").max(rank_of("orthogonal")));
    assert!(report.contains("## Outcomes"), "{report}");
}

#[test]
fn the_phase_diagram_draws_the_edge_of_chaos_with_a_legend() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("phase");
    sigprop()
        .args(["theory", "--activation", "tanh", "--phase-diagram", "--out"])
        .arg(&out)
        .assert()
        .success();
    let svg = std::fs::read_to_string(out.join("phase_tanh.svg")).unwrap();
    assert!(svg.contains("χ₁ = 1 (edge of chaos)"), "no legend entry");
    // The curve: many ink segments of width 3 inside the grid (it used to be drawn with
    // its axes swapped and clipped away entirely).
    let segments = svg.matches("stroke=\"#1E1E1E\" stroke-width=\"3\"").count();
    assert!(segments > 10, "{segments} curve segments");
}

#[test]
fn the_width_column_is_each_layers_own_width_with_explicit_widths() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w");
    sigprop()
        .args([
            "run",
            "--depth",
            "3",
            "--widths",
            "8,16,32,4",
            "--batch",
            "8",
            "--seeds",
            "1",
        ])
        .args(["--quiet", "--out"])
        .arg(&out)
        .assert()
        .success();
    let l = out.join("layers.csv");
    let widths: Vec<(String, String)> = records(&l)
        .iter()
        .map(|r| {
            (
                r[col(&l, "layer")].to_string(),
                r[col(&l, "width")].to_string(),
            )
        })
        .collect();
    assert_eq!(
        widths,
        [("1", "16"), ("2", "32"), ("3", "4")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .to_vec()
    );
}

#[test]
fn seeds_run_in_parallel_give_each_seed_its_solo_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (all, solo) = (dir.path().join("all"), dir.path().join("solo"));
    let args = [
        "run", "--depth", "5", "--width", "32", "--batch", "16", "--quiet",
    ];
    sigprop()
        .args(args)
        .args(["--seeds", "4", "--out"])
        .arg(&all)
        .assert()
        .success();
    sigprop()
        .args(args)
        .args(["--seed", "2", "--out"])
        .arg(&solo)
        .assert()
        .success();
    let rows = |p: &Path| -> Vec<Vec<String>> {
        records(&p.join("layers.csv"))
            .iter()
            .filter(|r| &r[col(&p.join("layers.csv"), "seed")] == "2")
            .map(|r| r.iter().map(String::from).collect())
            .collect()
    };
    let (a, s) = (rows(&all), rows(&solo));
    assert_eq!(a.len(), 5);
    assert_eq!(a, s);
}

#[test]
fn yang2019_batchnorm_holds_the_forward_variance_and_explodes_the_gradients() {
    // The suite in experiments/: BatchNorm vs none at depths 10, 25, 50.
    let (_dir, out) = run_suite("yang2019");
    let s = out.join("summary.csv");
    let a = out.join("aggregate.csv");
    let mut totals = Vec::new();
    for row in records(&s) {
        let label = row[col(&s, "label")].to_string();
        let verdict = &row[col(&s, "verdict")];
        let depth: f64 = row[col(&s, "depth")].parse().unwrap();
        let lo: f64 = row[col(&s, "bwd_slope_lo")].parse().unwrap();
        if label.starts_with("batch") {
            // Forward: Var(z) after every BatchNorm is 1 (eps = 1e-5 takes 1e-5 of it).
            let config = &row[col(&s, "config")];
            for r in records(&a) {
                if &r[col(&a, "config")] == config && &r[col(&a, "stat")] == "preact_var" {
                    let v: f64 = r[col(&a, "mean")].parse().unwrap();
                    assert!((v - 1.0).abs() < 1e-3, "{label}: Var(z) = {v}");
                }
            }
            // Backward: growth per layer toward the input, the seeds' interval above 0.
            assert!(lo > 0.0, "{label}: bwd slope interval starts at {lo}");
            assert_eq!(verdict, "exploding-gradients", "{label}");
            let rate: f64 = row[col(&s, "bwd_log_slope")].parse().unwrap();
            totals.push((depth, rate * (depth - 1.0)));
        } else {
            assert_eq!(verdict, "stable", "{label}");
        }
    }
    // The explosion over the whole network grows with depth.
    totals.sort_by(|x, y| x.0.total_cmp(&y.0));
    assert_eq!(totals.len(), 3);
    assert!(totals.windows(2).all(|w| w[1].1 > w[0].1), "{totals:?}");
}

/// `(layer, mean, ci95_lo, ci95_hi, theory)` of `preact_var` at `site` from aggregate.csv.
fn site_series(out: &Path, site: &str) -> Vec<(usize, f64, f64, f64, Option<f64>)> {
    let a = out.join("aggregate.csv");
    records(&a)
        .iter()
        .filter(|r| &r[col(&a, "site")] == site && &r[col(&a, "stat")] == "preact_var")
        .map(|r| {
            let f = |c: &str| r[col(&a, c)].parse::<f64>().unwrap();
            let theory = r[col(&a, "theory")].parse::<f64>().ok();
            (
                f("layer") as usize,
                f("mean"),
                f("ci95_lo"),
                f("ci95_hi"),
                theory,
            )
        })
        .collect()
}

#[test]
fn residual_streams_follow_the_additive_recursion_and_its_scalings() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        sigprop()
            .args([
                "run",
                "--arch",
                "resmlp",
                "--init",
                "he-normal",
                "--activation",
                "relu",
            ])
            .args(extra)
            .args(["--quiet", "--out"])
            .arg(&out)
            .assert()
            .success();
        out
    };
    // Scale 1, He branches of two maps: each branch returns its input's variance, so the
    // stream doubles every block, q^k = 2^k. Seed means within the seeds' 95% interval plus
    // 2% of the prediction at every block.
    let one = run(
        "one",
        &[
            "--depth", "20", "--width", "512", "--batch", "128", "--seeds", "5",
        ],
    );
    let outs = site_series(&one, "out");
    assert_eq!(outs.len(), 20);
    for (k, mean, lo, hi, theory) in outs {
        let t = theory.expect("resmlp theory column");
        assert!(
            (t / 2f64.powi(k as i32) - 1.0).abs() < 1e-9,
            "block {k}: {t}"
        );
        let slack = (hi - lo) / 2.0 + 0.02 * t;
        assert!(
            (mean - t).abs() <= slack,
            "block {k}: {mean} vs {t} +- {slack}"
        );
    }
    // 1/sqrt(L) over 100 blocks: the stream grows by (1 + 1/L) a block, e over the network;
    // within a factor 3 from the first block to the last.
    let nf = run(
        "nf",
        &[
            "--depth",
            "100",
            "--width",
            "256",
            "--batch",
            "64",
            "--seeds",
            "3",
            "--branch-scale",
            "1/sqrt(L)",
        ],
    );
    let means: Vec<f64> = site_series(&nf, "out").iter().map(|s| s.1).collect();
    let (min, max) = means
        .iter()
        .fold((f64::INFINITY, 0f64), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(max / min < 3.0, "1/sqrt(L): Var(h) from {min} to {max}");
    // ReZero: the branches add nothing at initialization, so every block output is the
    // input: identical statistics at every block.
    zero_branches_keep_every_block_the_identity(&run(
        "rz",
        &[
            "--depth",
            "8",
            "--width",
            "64",
            "--batch",
            "32",
            "--seeds",
            "2",
            "--branch-scale",
            "rezero",
        ],
    ));
}

/// SkipInit (De & Smith 2020) replaces BatchNorm in a deep residual network by a learnable
/// branch multiplier that starts at 0: without normalization, He/ReLU branches double the
/// stream every block (`exploding`, x2^49 over 50 blocks in the mean field), while SkipInit
/// starts each block as the identity (`stable`, the stream's statistics equal at every
/// block) with a gradient on every alpha, so training can open the branches.
#[test]
fn skipinit_starts_a_deep_unnormalized_resnet_as_the_identity() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, scale: &str, depth: &str| {
        let out = dir.path().join(name);
        sigprop()
            .args([
                "run",
                "--arch",
                "resmlp",
                "--init",
                "he-normal",
                "--activation",
                "relu",
            ])
            .args([
                "--norm", "none", "--depth", depth, "--width", "64", "--batch", "32",
            ])
            .args(["--seeds", "2", "--branch-scale", scale, "--quiet", "--out"])
            .arg(&out)
            .assert()
            .success();
        out
    };
    let verdict = |out: &Path| {
        let s = out.join("summary.csv");
        let r = records(&s).remove(0);
        (
            r[col(&s, "verdict")].to_string(),
            r[col(&s, "fwd_ratio")].parse::<f64>().unwrap(),
        )
    };
    let (v, ratio) = verdict(&run("plain", "1", "50"));
    assert_eq!(v, "exploding");
    // The mean field's 2^49; two seeds at width 64 land a few doublings short.
    assert!(ratio > 2f64.powi(40), "x{ratio} over 50 blocks");
    let skip = run("skip", "skipinit", "50");
    assert_eq!(verdict(&skip), ("stable".to_string(), 1.0));
    zero_branches_keep_every_block_the_identity(&run("skip8", "skipinit", "8"));
}

/// ReZero's and SkipInit's check: every block output of `rz` (a residual MLP of 8 blocks, 2
/// seeds) has the statistics of the input, and every block's alpha has a non-zero gradient.
fn zero_branches_keep_every_block_the_identity(rz: &Path) {
    let l = rz.join("layers.csv");
    let mut per_seed: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for r in records(&l).iter().filter(|r| &r[col(&l, "site")] == "out") {
        let stats: Vec<&str> = [
            "preact_mean",
            "preact_var",
            "act_var",
            "act_batch_var",
            "grad_var",
        ]
        .iter()
        .map(|c| &r[col(&l, c)])
        .collect();
        per_seed
            .entry(r[col(&l, "seed")].to_string())
            .or_default()
            .push(stats.join(","));
    }
    for (seed, rows) in per_seed {
        assert_eq!(rows.len(), 8);
        assert!(
            rows.windows(2).all(|w| w[0] == w[1]),
            "seed {seed}: {rows:?}"
        );
    }
    // ... while every block's alpha has a non-zero gradient (training can move it).
    let alphas: Vec<f64> = records(&l)
        .iter()
        .filter(|r| &r[col(&l, "site")] == "branch")
        .map(|r| r[col(&l, "scale_grad")].parse().unwrap())
        .collect();
    assert_eq!(alphas.len(), 2 * 8);
    assert!(
        alphas.iter().all(|g| g.is_finite() && *g != 0.0),
        "{alphas:?}"
    );
}

#[test]
fn brock2021_signal_propagation_plots_separate_the_residual_variants() {
    let (_dir, out) = run_suite("brock2021");
    for chart in ["spp_var.png", "spp_sq_mean.png", "spp_branch_var.png"] {
        assert!(out.join(chart).is_file(), "no {chart}");
    }
    let s = out.join("summary.csv");
    let a = out.join("aggregate.csv");
    // Seed means of an SPP statistic at every block, by configuration label.
    let spp = |label: &str, stat: &str| -> Vec<f64> {
        let config = records(&s)
            .into_iter()
            .find(|r| &r[col(&s, "label")] == label)
            .map(|r| r[col(&s, "config")].to_string())
            .unwrap();
        records(&a)
            .iter()
            .filter(|r| {
                r[col(&a, "config")] == *config
                    && &r[col(&a, "site")] == "out"
                    && &r[col(&a, "stat")] == stat
            })
            .map(|r| r[col(&a, "mean")].parse().unwrap())
            .collect()
    };
    let summary = |label: &str, c: &str| -> String {
        let row = records(&s)
            .into_iter()
            .find(|r| &r[col(&s, "label")] == label)
            .unwrap();
        row[col(&s, c)].to_string()
    };
    // No normalization, alpha = 1: the stream doubles every block (rate ln 2 per block
    // inside the seeds' interval).
    let mlp = |l: &str| format!("resmlp / 256 / {l}");
    let cnn = |l: &str| format!("rescnn / 16 / 8 / {l}");
    assert_eq!(summary(&mlp("none / 1"), "verdict"), "exploding");
    let (lo, hi): (f64, f64) = (
        summary(&mlp("none / 1"), "fwd_slope_lo").parse().unwrap(),
        summary(&mlp("none / 1"), "fwd_slope_hi").parse().unwrap(),
    );
    assert!(lo <= 2f64.ln() && 2f64.ln() <= hi, "[{lo}, {hi}]");
    // The CNN's zero padding gives border pixels fewer inputs: a little under doubling.
    assert_eq!(summary(&cnn("none / 1"), "verdict"), "exploding");
    let rate: f64 = summary(&cnn("none / 1"), "fwd_log_slope").parse().unwrap();
    assert!((0.5..0.7).contains(&rate), "rescnn rate {rate}");
    for label in [mlp(""), cnn("")] {
        // 1/sqrt(L): within a factor 3 over the 50 blocks.
        let v = spp(&format!("{label}none / 1/sqrt(L)"), "spp_var");
        assert_eq!(v.len(), 50);
        assert!(v[49] / v[0] < 3.0, "{label}: {} -> {}", v[0], v[49]);
        // BatchNorm in the branches: each branch adds about the same variance, so the
        // stream grows linearly, doubling from block 25 to block 50 (exponential growth
        // would not).
        let bn = format!("{label}batch / 1");
        let v = spp(&bn, "spp_var");
        let ratio = v[49] / v[24];
        assert!(
            (1.6..2.4).contains(&ratio),
            "{bn} stream 25 -> 50: x{ratio}"
        );
        if label.starts_with("resmlp") {
            // (The CNN's 16 channels give a wider interval: its total change of x25 cannot
            // be told from a factor of 10 at three seeds, and the form reads flat.)
            assert_eq!(summary(&bn, "fwd_form"), "power-law", "{bn}");
        }
        // ReZero: the branch contributes exactly nothing; every block output is the input.
        for norm in ["none", "batch"] {
            let rz = format!("{label}{norm} / rezero");
            assert!(spp(&rz, "spp_branch_var").iter().all(|&b| b == 0.0), "{rz}");
            let v = spp(&rz, "spp_var");
            assert!(v.iter().all(|&x| x == v[0]), "{rz}");
        }
    }
}

/// The seed-aggregated `stat` at the last block's `out` site of the configuration labelled
/// `label`: (mean, ci95_lo, ci95_hi).
fn last_block(out: &Path, label: &str, stat: &str) -> (f64, f64, f64) {
    let s = out.join("summary.csv");
    let a = out.join("aggregate.csv");
    let config = records(&s)
        .into_iter()
        .find(|r| &r[col(&s, "label")] == label)
        .map(|r| r[col(&s, "config")].to_string())
        .unwrap_or_else(|| panic!("no configuration {label}"));
    let row = records(&a)
        .into_iter()
        .rev()
        .find(|r| {
            r[col(&a, "config")] == *config
                && &r[col(&a, "site")] == "out"
                && &r[col(&a, "stat")] == stat
        })
        .unwrap();
    let num = |c: &str| row[col(&a, c)].parse::<f64>().unwrap();
    (num("mean"), num("ci95_lo"), num("ci95_hi"))
}

#[test]
fn dong2021_pure_attention_collapses_the_tokens_and_skips_hold_them_apart() {
    let (_dir, out) = run_suite("dong2021");
    for chart in ["token_cos.png", "token_rank.png", "attn_entropy.png"] {
        assert!(out.join(chart).is_file(), "no {chart}");
    }
    for init in ["xavier-normal", "he-normal"] {
        // Attention-only, no skips, depth 12, width 256: rank collapse.
        let (cos, _, _) = last_block(&out, &format!("none / {init}"), "token_cos");
        assert!(cos > 0.99, "{init} without skips: token_cos {cos}");
        let (rank, _, _) = last_block(&out, &format!("none / {init}"), "token_rank");
        assert!(rank < 1.5, "{init} without skips: effective rank {rank}");
        // The same network with skips stays clearly below.
        let (cos, _, hi) = last_block(&out, &format!("identity / {init}"), "token_cos");
        assert!(
            hi < 0.95,
            "{init} with skips: token_cos {cos} (interval to {hi})"
        );
        // The verdicts say so.
        let none = verdict_of(&out, &format!("none / {init}"));
        assert!(
            none.starts_with("collapsed (tokens merge: "),
            "{init}: {none}"
        );
        let skips = verdict_of(&out, &format!("identity / {init}"));
        assert!(
            !skips.starts_with("collapsed"),
            "{init} with skips: {skips}"
        );
    }
}

/// The verdict detail of the configuration labelled `label` in `out`'s summary.csv.
fn verdict_of(out: &Path, label: &str) -> String {
    let s = out.join("summary.csv");
    records(&s)
        .into_iter()
        .find(|r| &r[col(&s, "label")] == label)
        .map(|r| r[col(&s, "verdict_detail")].to_string())
        .unwrap_or_else(|| panic!("no configuration {label}"))
}

/// The issue's case: an attention-only transformer without skips (depth 12, width 64,
/// xavier-normal) keeps its variances within a factor of 10, so the variance rule alone read
/// "stable", while its tokens are one direction from the second block on. It is `collapsed`,
/// pre-LN with 1/sqrt(L) branches is not, and recommend calls no initializer "stable" on it.
#[test]
fn merged_tokens_are_a_collapse_in_the_verdict_and_in_recommend() {
    let dir = tempfile::tempdir().unwrap();
    let net = [
        "--arch",
        "transformer",
        "--depth",
        "12",
        "--width",
        "64",
        "--activation",
        "gelu",
        "--attention-only",
        "--seeds",
        "5",
    ];
    let run = |extra: &[&str], name: &str| {
        let out = dir.path().join(name);
        sigprop()
            .arg("run")
            .args(net)
            .args(["--init", "xavier-normal"])
            .args(extra)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        verdict_of(&out, "base")
    };
    let plain = run(&["--shortcut", "none", "--norm", "none"], "plain");
    assert!(
        plain.starts_with(
            "collapsed (tokens merge: token_cos 1 at block 12, >= 0.99 from block 2; token_rank 1"
        ),
        "{plain}"
    );
    let scaled = run(&["--branch-scale", "1/sqrt(L)"], "scaled");
    assert!(scaled.starts_with("stable ("), "{scaled}");
    let out = sigprop()
        .arg("recommend")
        .args(net)
        .args(["--shortcut", "none", "--norm", "none", "--json", "--out"])
        .arg(dir.path().join("rec"))
        .assert()
        .success()
        .get_output()
        .clone();
    let rec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ranked = rec["ranked"].as_array().unwrap();
    assert!(ranked.len() >= 10, "{ranked:?}");
    for r in ranked {
        let v = r["verdict"].as_str().unwrap();
        assert!(
            v == "collapsed" || v == "diverged",
            "{} is {v} on merged tokens: {}",
            r["init"],
            r["reason"]
        );
    }
    let why = rec["why"].as_str().unwrap();
    assert!(
        why.starts_with("no initializer escapes: every candidate is collapsed"),
        "{why}"
    );
    assert!(!why.contains("any of them will do"), "{why}");
}

#[test]
fn noci2022_branch_scaling_keeps_deep_transformer_tokens_apart() {
    let (_dir, out) = run_suite("noci2022");
    // Depth 48: 1/sqrt(L) gives a lower token_cos at the last block than scale 1, the
    // seeds' intervals apart, for pre-LN and for no normalization.
    for norm in ["layer / pre", "none"] {
        let (one, one_lo, _) = last_block(&out, &format!("{norm} / 1"), "token_cos");
        let (scaled, _, scaled_hi) = last_block(&out, &format!("{norm} / 1/sqrt(L)"), "token_cos");
        assert!(
            scaled_hi < one_lo,
            "{norm}: 1/sqrt(L) {scaled} (to {scaled_hi}) vs 1 {one} (from {one_lo})"
        );
    }
    // Post-LN holds the stream variance at 1 whatever the branches add.
    let (v, _, _) = last_block(&out, "layer / post / 1", "act_var");
    assert!((v - 1.0).abs() < 1e-3, "post-LN stream variance {v}");
}

/// Seed means of `stat` at the stream (`out`) of configuration `label`, by block.
fn by_block(out: &Path, label: &str, stat: &str) -> Vec<f64> {
    let a = out.join("aggregate.csv");
    records(&a)
        .into_iter()
        .filter(|r| {
            &r[col(&a, "label")] == label
                && &r[col(&a, "site")] == "out"
                && &r[col(&a, "stat")] == stat
        })
        .map(|r| r[col(&a, "mean")].parse::<f64>().unwrap())
        .collect()
}

#[test]
fn deepnet2022_deepnorm_evens_the_gradients_of_deep_post_ln_transformers() {
    let (_dir, out) = run_suite("deepnet2022");
    for depth in [100, 200] {
        // DeepNorm: every block's stream gradient variance within 5% of the last's (seed
        // means over 1024 tokens a seed), and the tokens stay apart.
        let g = by_block(&out, &format!("{depth} / deepnet"), "grad_var");
        assert_eq!(g.len(), depth);
        let last = g[depth - 1];
        assert!(g.iter().all(|v| (v / last - 1.0).abs() < 0.05), "{g:?}");
        let (cos, _, _) = last_block(&out, &format!("{depth} / deepnet"), "token_cos");
        assert!(cos.abs() < 0.05, "deepnet {depth}: token_cos {cos}");
        // Xavier: collapsed tokens, and the gradient variance spread over a factor 10 and
        // more along the blocks.
        let label = format!("{depth} / xavier-normal");
        let (cos, _, _) = last_block(&out, &label, "token_cos");
        assert!(cos > 0.99, "xavier {depth}: token_cos {cos}");
        let g = by_block(&out, &label, "grad_var");
        let (lo, hi) = g
            .iter()
            .fold((f64::MAX, 0f64), |(a, b), &v| (a.min(v), b.max(v)));
        assert!(hi / lo > 10.0, "xavier {depth}: {lo} .. {hi}");
    }
    // The small branch weights alone keep the tokens apart; the skip multiplier alone does not.
    let (cos, _, _) = last_block(&out, "100 / deepnet / 1", "token_cos");
    assert!(cos.abs() < 0.05, "beta alone: token_cos {cos}");
    let (cos, _, _) = last_block(&out, "100 / xavier-normal / deepnorm", "token_cos");
    assert!(cos > 0.9, "alpha alone: token_cos {cos}");
}

#[test]
fn layernorm_mlp_follows_its_mean_field_recursion() {
    // tanh with LayerNorm: z is N(0, 1) at every layer whatever sigma_w, and a layer scales
    // the gradient variance by E[phi'^2]/E[phi^2] = 1.18: exploding gradients the theory
    // predicts. Every theory column within the seeds' 95% interval + 2% at every layer.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ln");
    sigprop()
        .args([
            "run",
            "--activation",
            "tanh",
            "--init",
            "xavier-normal",
            "--norm",
            "layer",
        ])
        .args([
            "--depth", "20", "--width", "512", "--batch", "128", "--seeds", "5",
        ])
        .args(["--quiet", "--out"])
        .arg(&out)
        .assert()
        .success();
    let a = out.join("aggregate.csv");
    let mut checked = 0;
    for r in records(&a) {
        let Ok(t) = r[col(&a, "theory")].parse::<f64>() else {
            continue;
        };
        let f = |c: &str| r[col(&a, c)].parse::<f64>().unwrap();
        let (mean, half) = (f("mean"), (f("ci95_hi") - f("ci95_lo")) / 2.0);
        assert!(
            (mean - t).abs() <= half + 0.02 * t,
            "{} layer {}: {mean} vs theory {t} (+- {half})",
            &r[col(&a, "stat")],
            &r[col(&a, "layer")]
        );
        checked += 1;
    }
    assert_eq!(checked, 4 * 20);
    let s = out.join("summary.csv");
    assert_eq!(&records(&s)[0][col(&s, "verdict")], "exploding-gradients");
}

/// Every file of a folder (recursively) with its bytes, temporaries aside.
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

const DERIVED: [&str; 5] = [
    "layers.csv",
    "aggregate.csv",
    "summary.csv",
    "histograms.csv",
    "grid.csv",
];

fn same_csvs(a: &Path, b: &Path) {
    for f in DERIVED {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(
            x == y,
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

#[test]
fn three_shards_merged_give_the_bytes_of_one_run() {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/schoenholz2017.toml");
    let (_guard, whole) = run_suite("schoenholz2017");
    let dir = tempfile::tempdir().unwrap();
    let mut shards = Vec::new();
    let mut measured = 0;
    for k in 1..=3 {
        let out = dir.path().join(format!("shard-{k}"));
        let o = sigprop()
            .arg("suite")
            .arg(&suite)
            .args(["--quiet", "--shard", &format!("{k}/3"), "--out"])
            .arg(&out)
            .assert()
            .success()
            .get_output()
            .clone();
        let err = String::from_utf8(o.stderr).unwrap();
        // "measured N runs into ...": the shards split the 112 runs between them.
        let n: usize = err.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(n > 0 && n < 112, "{err}");
        measured += n;
        assert!(
            !out.join("layers.csv").exists(),
            "a shard derived a partial CSV"
        );
        shards.push(out);
    }
    assert_eq!(measured, 112);
    // Three shards into one shared folder: the last one to finish derives the same bytes.
    let shared = dir.path().join("shared");
    for k in 1..=3 {
        sigprop()
            .arg("suite")
            .arg(&suite)
            .args(["--quiet", "--shard", &format!("{k}/3"), "--out"])
            .arg(&shared)
            .assert()
            .success();
        assert_eq!(shared.join("layers.csv").exists(), k == 3);
    }
    same_csvs(&whole, &shared);
    assert!(!shared.join(".sigprop-derive.lock").exists());
    let merged = dir.path().join("merged");
    sigprop()
        .arg("merge")
        .arg(&merged)
        .args(&shards)
        .arg("--quiet")
        .assert()
        .success();
    same_csvs(&whole, &merged);
    assert!(merged.join("report.md").is_file() && merged.join("manifest.json").is_file());
    // Missing shards are named, and refused without --allow-partial.
    let o = sigprop()
        .arg("merge")
        .arg(dir.path().join("partial"))
        .args(&shards[..2])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("have no record") && err.lines().count() == 1,
        "{err}"
    );
    assert!(!dir.path().join("partial").exists());
    sigprop()
        .arg("merge")
        .arg(dir.path().join("partial"))
        .args(&shards[..2])
        .args(["--allow-partial", "--quiet"])
        .assert()
        .success();
    // examples/slurm/submit.sh with a stand-in `sbatch` that runs each array task (with
    // the variables Slurm sets) and then the dependent merge job.
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("sbatch");
    std::fs::write(
        &fake,
        r#"#!/usr/bin/env bash
set -euo pipefail
array="" ; script=""
for a in "$@"; do
  case "$a" in
    --array=*) array="${a#--array=}" ;;
    --dependency=afterok:*) [ -f "$FAKE_DIR/array-ok" ] || { echo "dependency not met" >&2; exit 1; } ;;
    --*) ;;
    *) script="$a" ;;
  esac
done
if [ -n "$array" ]; then
  lo="${array%-*}"; hi="${array#*-}"
  for id in $(seq "$lo" "$hi"); do
    SLURM_ARRAY_TASK_ID=$id SLURM_ARRAY_TASK_MIN=$lo SLURM_ARRAY_TASK_COUNT=$((hi - lo + 1)) bash "$script" >&2
  done
  touch "$FAKE_DIR/array-ok"
  echo 1001
else
  bash "$script" >&2
  echo 1002
fi
"#,
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .unwrap();
    let slurm_out = dir.path().join("slurm");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let status = std::process::Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/slurm/submit.sh"))
        .arg(&suite)
        .arg(&slurm_out)
        .arg("3")
        .env("PATH", path)
        .env("FAKE_DIR", dir.path())
        .env("SIGPROP", assert_cmd::cargo::cargo_bin("sigprop"))
        .status()
        .unwrap();
    assert!(status.success());
    same_csvs(&whole, &slurm_out.join("merged"));
    // A resumed complete folder measures nothing and writes the same bytes.
    let again = sigprop()
        .arg("suite")
        .arg(&suite)
        .args(["--quiet", "--resume", "--out"])
        .arg(&merged)
        .assert()
        .success();
    drop(again);
    same_csvs(&whole, &merged);
}

#[test]
fn a_killed_suite_resumes_to_the_bytes_of_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("slow.toml");
    std::fs::write(
        &suite,
        "name = \"slow\"\n[base]\narch = \"mlp\"\nactivation = \"tanh\"\ndepth = 40\nwidth = 256\nbatch = 128\nseeds = 2\nhist-layers = [1, 20]\n[grid]\nsigma-w2 = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0, 3.25, 3.5, 3.75, 4.0, 4.25, 4.5, 4.75, 5.0, 5.25]\n",
    )
    .unwrap();
    let whole = dir.path().join("whole");
    sigprop()
        .arg("suite")
        .arg(&suite)
        .args(["--quiet", "--out"])
        .arg(&whole)
        .assert()
        .success();
    let killed = dir.path().join("killed");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("sigprop"))
        .arg("suite")
        .arg(&suite)
        .args(["--quiet", "--out"])
        .arg(&killed)
        .spawn()
        .unwrap();
    // Records are the lines of the store's segments.
    let records = |d: &Path| {
        std::fs::read_dir(d.join("runs"))
            .map(|r| {
                r.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
                    .map(|e| {
                        let bytes = std::fs::read(e.path()).unwrap_or_default();
                        bytes.iter().filter(|&&b| b == b'\n').count()
                    })
                    .sum::<usize>()
            })
            .unwrap_or(0)
    };
    let t = std::time::Instant::now();
    while records(&killed) < 6 && t.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let held = records(&killed);
    assert!(
        (6..40).contains(&held),
        "killed with {held} of 40 runs written"
    );
    // Nothing in the folder is half written: the suite file and the manifest parse whole,
    // and every segment is whole records, one per line, the last ended (an interrupted
    // write of another file is a hidden `.NAME.tmp`, removed on resume).
    for (path, bytes) in snapshot(&killed) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with('.') && name.ends_with(".tmp") {
            continue;
        }
        if name.ends_with(".jsonl") {
            assert!(
                bytes.ends_with(b"\n"),
                "{} ends in a cut line",
                path.display()
            );
            for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                serde_json_ok(line, &path);
            }
        } else {
            assert!(name.ends_with(".json"), "unexpected file {name}");
            serde_json_ok(&bytes, &path);
        }
    }
    assert!(!killed.join("layers.csv").exists());
    sigprop()
        .arg("suite")
        .arg(&suite)
        .args(["--quiet", "--resume", "--out"])
        .arg(&killed)
        .assert()
        .success();
    same_csvs(&whole, &killed);
    assert!(
        snapshot(&killed)
            .iter()
            .all(|(p, _)| !p.to_string_lossy().ends_with(".tmp"))
    );
}

/// `bytes` is one complete JSON document.
fn serde_json_ok(bytes: &[u8], path: &Path) {
    let text = std::str::from_utf8(bytes).unwrap();
    let t = text.trim();
    assert!(
        t.starts_with('{') && t.ends_with('}'),
        "{} is not a whole JSON object",
        path.display()
    );
    // Balanced braces outside strings: a truncated document is not.
    let (mut depth, mut in_str, mut esc) = (0i64, false, false);
    for c in t.chars() {
        match (in_str, esc, c) {
            (true, true, _) => esc = false,
            (true, false, '\\') => esc = true,
            (true, false, '"') => in_str = false,
            (false, _, '"') => in_str = true,
            (false, _, '{' | '[') => depth += 1,
            (false, _, '}' | ']') => depth -= 1,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "{} is truncated", path.display());
}

#[test]
fn shards_resume_and_merge_refuse_bad_input_and_overwrite_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let o = out.to_str().unwrap();
    let quick = [
        "run", "--depth", "3", "--width", "16", "--batch", "8", "--seeds", "2", "--quiet",
    ];
    sigprop().args(quick).args(["--out", o]).assert().success();
    let before = snapshot(&out);
    for bad in ["0/3", "4/3", "x", "auto"] {
        let shard = format!("--shard={bad}");
        let args: Vec<&str> = quick
            .iter()
            .copied()
            .chain(["--out", o, shard.as_str()])
            .collect();
        fails_with(&args, "--shard");
    }
    // Another suite into this folder: refused with --resume and with --shard.
    let other = [
        "run", "--depth", "4", "--width", "16", "--batch", "8", "--seeds", "2", "--quiet", "--out",
        o,
    ];
    let args: Vec<&str> = other.iter().copied().chain(["--resume"]).collect();
    fails_with(&args, "holds another suite");
    let args: Vec<&str> = other.iter().copied().chain(["--shard", "1/2"]).collect();
    fails_with(&args, "holds another suite");
    fails_with(&["run", "--resume", "--quiet"], "--resume needs --out");
    // Merging folders of two different suites.
    let y = dir.path().join("y");
    sigprop()
        .args(&other[..other.len() - 1])
        .arg(&y)
        .assert()
        .success();
    let m = dir.path().join("m");
    fails_with(
        &["merge", m.to_str().unwrap(), o, y.to_str().unwrap()],
        "different suites",
    );
    fails_with(
        &["merge", m.to_str().unwrap(), dir.path().to_str().unwrap()],
        "not a sigprop output folder",
    );
    assert!(!m.exists());
    assert!(
        snapshot(&out) == before,
        "a refused command changed the folder"
    );
}

/// Seed means of a Jacobian statistic of configuration `label` by layer, with the theory.
fn jac_by_layer(out: &Path, label: &str, stat: &str) -> Vec<(usize, f64, Option<f64>)> {
    let a = out.join("aggregate.csv");
    records(&a)
        .into_iter()
        .filter(|r| &r[col(&a, "label")] == label && &r[col(&a, "stat")] == stat)
        .map(|r| {
            (
                r[col(&a, "layer")].parse().unwrap(),
                r[col(&a, "mean")].parse().unwrap(),
                r[col(&a, "theory")].parse().ok(),
            )
        })
        .collect()
}

#[test]
fn pennington2017_orthogonal_tanh_near_zero_q_keeps_the_spectrum_tight() {
    let (_dir, out) = run_suite("pennington2017");
    // Every singular value: 8 configurations x 3 seeds x 8 inputs x 7 layers x 256.
    let s = out.join("spectrum.csv");
    let rows = records(&s);
    assert_eq!(rows.len(), 8 * 3 * 8 * 7 * 256);
    // Linear orthogonal: an isometry at every depth.
    let sv = col(&s, "singular_value");
    let lab = col(&s, "label");
    let iso: Vec<f64> = rows
        .iter()
        .filter(|r| &r[lab] == "linear / orthogonal")
        .map(|r| r[sv].parse().unwrap())
        .collect();
    assert_eq!(iso.len(), 3 * 8 * 7 * 256);
    assert!(iso.iter().all(|v| (v - 1.0).abs() < 1e-4));
    // The measured moments against free probability where finite width allows (l / N
    // small): linear Gaussian, ReLU Gaussian and orthogonal at layer 8, 15% (3 seeds x 8
    // inputs; the network crate's test pins them tighter with 40 seeds).
    for label in [
        "linear / lecun-normal",
        "relu / he-normal",
        "relu / orthogonal:gain=1.4142135623730951",
    ] {
        for stat in ["jac_m1", "jac_var"] {
            let (_, m, t) = jac_by_layer(&out, label, stat)
                .into_iter()
                .find(|r| r.0 == 8)
                .unwrap();
            let t = t.unwrap();
            assert!((m / t - 1.0).abs() < 0.15, "{label} {stat}: {m} vs {t}");
        }
    }
    // The spread relative to the mean, jac_var / jac_m1^2, at depth 128: orthogonal tanh near
    // q* = 0 stays within a few units, Gaussian tanh at the same point and every ReLU net
    // grow with depth to ten times that and more.
    let spread = |label: &str, layer: usize| {
        let at = |stat| {
            jac_by_layer(&out, label, stat)
                .into_iter()
                .find(|r| r.0 == layer)
                .unwrap()
                .1
        };
        at("jac_var") / at("jac_m1").powi(2)
    };
    let iso_tanh = spread("tanh / critical:sigma-b=0.01,distribution=orthogonal", 128);
    assert!(iso_tanh < 5.0, "orthogonal tanh: {iso_tanh}");
    for other in [
        "tanh / critical:sigma-b=0.01",
        "relu / he-normal",
        "relu / orthogonal:gain=1.4142135623730951",
    ] {
        let s = spread(other, 128);
        assert!(s > 10.0 * iso_tanh, "{other}: {s} against {iso_tanh}");
        assert!(s > 4.0 * spread(other, 8), "{other} does not grow: {s}");
    }
    // Theory columns for tanh, equal to the measurement at layer 2.
    let (_, m, t) = jac_by_layer(
        &out,
        "tanh / critical:sigma-b=0.01,distribution=orthogonal",
        "jac_var",
    )[0];
    assert!((m / t.unwrap() - 1.0).abs() < 0.05, "{m} vs {t:?}");
    // The free-probability density where it is a curve: Gaussian tanh, linear and ReLU at
    // every measured layer, orthogonal tanh and ReLU from layer 4 on (point masses or infinite
    // edges before layer 3); none for the orthogonal linear isometry (one point).
    let d = out.join("spectrum_theory.csv");
    let drows = records(&d);
    type Curve = Vec<(f64, f64, f64)>;
    let mut curves: std::collections::BTreeMap<(String, usize), Curve> = Default::default();
    for r in &drows {
        let num = |c: &str| r[col(&d, c)].parse::<f64>().unwrap();
        curves
            .entry((
                r[col(&d, "label")].to_string(),
                r[col(&d, "layer")].parse().unwrap(),
            ))
            .or_default()
            .push((num("log10_sv"), num("density"), num("atom_at_zero")));
    }
    let mut have: Vec<(&str, usize)> = curves.keys().map(|(l, n)| (l.as_str(), *n)).collect();
    have.sort();
    let layers = [2, 4, 8, 16, 32, 64, 128];
    let mut want: Vec<(&str, usize)> = Vec::new();
    for label in [
        "tanh / critical:sigma-b=0.01",
        "tanh / critical:sigma-b=0.3",
        "linear / lecun-normal",
        "relu / he-normal",
    ] {
        want.extend(layers.iter().map(|&l| (label, l)));
    }
    for label in [
        "tanh / critical:sigma-b=0.01,distribution=orthogonal",
        "tanh / critical:sigma-b=0.3,distribution=orthogonal",
        "relu / orthogonal:gain=1.4142135623730951",
    ] {
        want.extend(layers[1..].iter().map(|&l| (label, l)));
    }
    want.sort();
    assert_eq!(have, want);
    // Measured against theory: the share of singular values s with -1 <= log10 s <= 0.5,
    // within 0.025 (the largest gap seen is 0.012, tanh included; 6144 values a layer).
    for ((label, layer), pts) in &curves {
        let theory: f64 = pts
            .windows(2)
            .filter(|w| w[1].0 >= -1.0 && w[1].0 <= 0.5)
            .map(|w| 0.5 * (w[0].1 + w[1].1) * (w[1].0 - w[0].0))
            .sum();
        let here: Vec<f64> = rows
            .iter()
            .filter(|r| &r[lab] == label && r[col(&s, "layer")] == layer.to_string())
            .map(|r| r[sv].parse().unwrap())
            .collect();
        let share = here
            .iter()
            .filter(|v| (-1.0..=0.5).contains(&v.log10()))
            .count() as f64
            / here.len() as f64;
        assert!(
            (share - theory).abs() < 0.025,
            "{label} layer {layer}: {share} vs {theory}"
        );
        let mass: f64 = pts
            .windows(2)
            .map(|w| 0.5 * (w[0].1 + w[1].1) * (w[1].0 - w[0].0))
            .sum::<f64>()
            + pts[0].2;
        // Deeper, Gaussian weights leave mass below the curve's grid (1e-8 of the top
        // singular value): 12% for tanh at layer 8 (docs/theory.md).
        if *layer <= 4 {
            assert!(
                (mass - 1.0).abs() < 0.05,
                "{label} layer {layer}: mass {mass}"
            );
        }
    }
    assert!(out.join("spectrum_relu-he-normal.png").is_file());
    assert!(
        out.join("spectrum_tanh-critical-sigma-b-0.01-distribution-orthogonal.png")
            .is_file()
    );
}

#[test]
fn jacobian_refuses_what_it_cannot_measure() {
    fails_with(
        &["run", "--norm", "batch", "--jacobian", "--quiet"],
        "norm batch",
    );
    fails_with(
        &["run", "--jacobian-samples", "0", "--quiet"],
        "jacobian-samples",
    );
    fails_with(
        &["run", "--depth", "4", "--jacobian-layers", "5", "--quiet"],
        "1..=4",
    );
}

/// Architectures without an exact product get their spectra from vector-Jacobian products:
/// one row per sample, layer and singular value in spectrum.csv, the jac_* columns at the
/// chosen blocks only.
#[test]
fn jacobian_of_a_residual_network_is_measured_at_the_chosen_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("res");
    sigprop()
        .args([
            "run", "--arch", "resmlp", "--depth", "4", "--width", "16", "--batch", "8",
        ])
        .args(["--seeds", "2", "--jacobian", "--jacobian-samples", "3"])
        .args(["--jacobian-layers", "2,4", "--quiet", "--out"])
        .arg(&out)
        .assert()
        .success();
    let s = out.join("spectrum.csv");
    let rows = records(&s);
    // 2 seeds x 3 samples x 2 layers x 16 singular values.
    assert_eq!(rows.len(), 2 * 3 * 2 * 16);
    assert!(
        rows.iter()
            .all(|r| r[col(&s, "singular_value")].parse::<f64>().unwrap() > 0.0)
    );
    let l = out.join("layers.csv");
    for r in records(&l) {
        let at = matches!(&r[col(&l, "layer")], "2" | "4") && &r[col(&l, "site")] == "out";
        let m1 = &r[col(&l, "jac_m1")];
        assert_eq!(!m1.is_empty(), at, "{r:?}");
        if at {
            assert!(m1.parse::<f64>().unwrap() > 0.0, "{r:?}");
        }
    }
}

#[test]
fn poole2016_the_correlation_map_follows_the_c_map_in_both_phases() {
    let (_dir, out) = run_suite("poole2016");
    let a = out.join("aggregate.csv");
    let rows: Vec<csv::StringRecord> = records(&a)
        .into_iter()
        .filter(|r| &r[col(&a, "stat")] == "corr" && &r[col(&a, "site")] == "layer")
        .collect();
    assert_eq!(rows.len(), 4 * 20);
    for r in &rows {
        let num = |c: &str| r[col(&a, c)].parse::<f64>().unwrap();
        let (mean, lo, hi, theory) = (num("mean"), num("ci95_lo"), num("ci95_hi"), num("theory"));
        // Within the seeds' 95% interval widened by 2% of the prediction.
        let slack = 0.02 * theory.abs();
        assert!(
            theory >= lo - slack && theory <= hi + slack,
            "{} layer {}: corr {mean} [{lo}, {hi}] vs c-map {theory}",
            &r[col(&a, "label")],
            &r[col(&a, "layer")]
        );
    }
    // Ordered: the pairs end (nearly) merged. Chaotic: both starts head for the same
    // c* (about 0.17 here), the far one still on its way at layer 20.
    let last = |label: &str| {
        rows.iter()
            .find(|r| &r[col(&a, "label")] == label && &r[col(&a, "layer")] == "20")
            .map(|r| r[col(&a, "mean")].parse::<f64>().unwrap())
            .unwrap()
    };
    assert!(last("1.0 / 0.2") > 0.98 && last("1.0 / 0.9") > 0.99);
    let (c1, c2) = (last("4.0 / 0.2"), last("4.0 / 0.9"));
    assert!(c1 < 0.25 && c2 < 0.35 && c2 > c1, "chaotic: {c1} {c2}");
    // The depth scale of the approach: in the ordered phase the measured fit is within 5% of
    // xi_c (3.63 layers; measured 3.56), and the same fit on the c-map's curve within 1%.
    // In the chaotic phase the c-map's curve from c0 = 0.2 gives xi_c (6.98) back; the
    // measured distance to c* sinks into the seeds' noise there, so no fit is reported.
    let s = out.join("summary.csv");
    let sum = records(&s);
    let get = |label: &str, c: &str| -> Option<f64> {
        let r = sum.iter().find(|r| &r[col(&s, "label")] == label).unwrap();
        r[col(&s, c)].parse().ok()
    };
    for label in ["1.0 / 0.2", "1.0 / 0.9"] {
        let xi = get(label, "theory_xi_c").unwrap();
        let measured = get(label, "corr_depth_scale").unwrap();
        let curve = get(label, "theory_corr_depth_scale").unwrap();
        assert!(
            (measured / xi - 1.0).abs() < 0.05,
            "{label}: {measured} vs {xi}"
        );
        assert!((curve / xi - 1.0).abs() < 0.01, "{label}: {curve} vs {xi}");
    }
    let xi = get("4.0 / 0.2", "theory_xi_c").unwrap();
    let curve = get("4.0 / 0.2", "theory_corr_depth_scale").unwrap();
    assert!((curve / xi - 1.0).abs() < 0.01, "chaotic: {curve} vs {xi}");
    assert_eq!(get("4.0 / 0.9", "theory_corr_depth_scale"), None);
}

#[test]
fn a_constant_initialization_leaves_activations_of_rank_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c");
    sigprop()
        .args([
            "run",
            "--init",
            "constant:value=0.05",
            "--activation",
            "tanh",
        ])
        .args(SMALL)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let l = out.join("layers.csv");
    let recs = records(&l);
    assert!(!recs.is_empty());
    for r in &recs {
        let rank: f64 = r[col(&l, "act_rank")].parse().unwrap();
        assert!(
            (rank - 1.0).abs() < 1e-3,
            "layer {}: act_rank {rank}",
            &r[col(&l, "layer")]
        );
    }
    // Independent He-initialized ReLU inputs stay far from rank one.
    let he = dir.path().join("he");
    sigprop()
        .args(["run", "--init", "he-normal", "--activation", "relu"])
        .args(SMALL)
        .arg("--out")
        .arg(&he)
        .assert()
        .success();
    let l = he.join("layers.csv");
    for r in records(&l) {
        let rank: f64 = r[col(&l, "act_rank")].parse().unwrap();
        assert!(rank > 4.0, "he: act_rank {rank}");
    }
}

#[test]
fn a_plain_run_replaces_an_older_store_and_keeps_no_old_records() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let o = out.to_str().unwrap();
    let quick = [
        "run", "--depth", "3", "--width", "16", "--batch", "8", "--seeds", "2", "--quiet",
    ];
    sigprop().args(quick).args(["--out", o]).assert().success();
    // What a store of version 1 left: its suite file and a record file per run.
    let exp = out.join("experiment.json");
    let text = std::fs::read_to_string(&exp).unwrap();
    std::fs::write(&exp, text.replacen("\"store\": 3", "\"store\": 1", 1)).unwrap();
    let old = out.join("runs").join(format!("{}.json", "a".repeat(32)));
    std::fs::write(&old, "{}").unwrap();
    // --resume refuses it; a plain run replaces it.
    let args: Vec<&str> = quick
        .iter()
        .copied()
        .chain(["--resume", "--out", o])
        .collect();
    fails_with(&args, "store version 1");
    sigprop().args(quick).args(["--out", o]).assert().success();
    let names: Vec<String> = std::fs::read_dir(out.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        names.len() == 1 && names[0].starts_with("seg-") && names[0].ends_with(".jsonl"),
        "{names:?}"
    );
}

/// `sigprop bench` times the phases over the repeats and counts the pass's matrix-product
/// work exactly (6 x batch x weight entries for an MLP), with the memory estimate next to
/// the measured peak, and with `--seeds N` the whole run at one and N seeds a pass; bad
/// input is refused by flag.
#[test]
fn bench_times_the_phases_and_counts_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b");
    let stdout = sigprop()
        .args(["bench", "--depth", "3", "--width", "16", "--batch", "8"])
        .args(["--repeats", "2", "--warmup", "1", "--out"])
        .arg(&out)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(stdout).unwrap();
    assert!(
        text.contains("forward_backward") && text.contains("GFLOP/s"),
        "{text}"
    );
    let j = read_json(&out.join("bench.json"));
    assert_eq!(j["times"].as_array().unwrap().len(), 2);
    let phases: Vec<&str> = j["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["init", "forward_backward", "stats", "total"]);
    for p in j["phases"].as_array().unwrap() {
        let (lo, med, hi) = (
            p["min_ms"].as_f64().unwrap(),
            p["median_ms"].as_f64().unwrap(),
            p["max_ms"].as_f64().unwrap(),
        );
        assert!(lo > 0.0 && lo <= med && med <= hi, "{p}");
    }
    // 3 layers of 16 x 16 weights, batch 8.
    let want = 6.0 * 8.0 * (3.0 * 16.0 * 16.0) / 1e9;
    assert!((j["pass_gflop"].as_f64().unwrap() - want).abs() < 1e-15);
    assert!(j["gemm"]["gflops"].as_f64().unwrap() > 0.0);
    // The estimate --max-memory checks: P = 3 (256 + 16) parameters four times, A = 3 x 8
    // x 16 site entries eight times, the input and target 8 x 16 each twice, in f32, and the
    // fixed 32 MiB workspace; next to it the first repeat's measured peak (Linux, flex).
    let want = 4.0 * (4.0 * 816.0 + 8.0 * 384.0 + 2.0 * 256.0) + 32.0 * 1024.0 * 1024.0;
    assert_eq!(j["memory_estimate_bytes"].as_f64().unwrap(), want);
    if cfg!(target_os = "linux") {
        assert!(j["memory_peak_bytes"].as_f64().unwrap() > 0.0, "{j}");
        assert!(text.contains("MiB measured"), "{text}");
    }
    // --seeds N also times the whole configuration as run runs it: one seed a pass, then N.
    let seeds = dir.path().join("seeds");
    let stdout = sigprop()
        .args([
            "bench", "--depth", "3", "--width", "16", "--batch", "8", "--seeds", "4",
        ])
        .args(["--repeats", "1", "--warmup", "0", "--out"])
        .arg(&seeds)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(stdout).unwrap();
    assert!(text.contains("4 seeds as run runs them"), "{text}");
    let j = read_json(&seeds.join("bench.json"));
    let runs = j["seed_runs"].as_array().unwrap();
    let batches: Vec<u64> = runs
        .iter()
        .map(|r| r["seed_batch"].as_u64().unwrap())
        .collect();
    assert_eq!(batches, [1, 4]);
    assert!(runs.iter().all(|r| r["median_s"].as_f64().unwrap() > 0.0));
    let o = out.to_str().unwrap();
    fails_with(&["bench", "--repeats", "0", "--out", o], "--repeats");
    fails_with(&["bench", "--init", "he_norml", "--out", o], "he_norml");
}

// ---------------------------------------------------------------- sigprop train

const TRAIN_SMALL: &[&str] = &[
    "train",
    "--inits",
    "he-normal,xavier-normal",
    "--activations",
    "relu",
    "--depth",
    "20",
    "--width",
    "64",
    "--batch",
    "64",
    "--steps",
    "100",
    "--task",
    "mixture",
    "--classes",
    "4",
    "--lr",
    "0.01",
    "--seeds",
    "3",
    "--quiet",
];

#[test]
fn train_he_learns_where_xavier_stalls_and_a_rerun_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        sigprop()
            .args(TRAIN_SMALL)
            .arg("--out")
            .arg(dir.path().join(name))
            .assert()
            .success();
    }
    let a = dir.path().join("a");
    for f in [
        "train.csv",
        "updates.csv",
        "train_layers.csv",
        "summary.csv",
    ] {
        let x = std::fs::read(a.join(f)).unwrap();
        let y = std::fs::read(dir.path().join("b").join(f)).unwrap();
        assert!(x == y, "{f} differs between identical runs");
    }
    for f in ["loss.png", "loss.svg", "grad_norm.png"] {
        assert!(a.join(f).is_file(), "{f} missing");
    }
    // 2 configurations x 3 seeds x steps 0..=100; statistics at steps 0, 1, 10, 100 for 20
    // layers; updates at 0, 1, 10 for 20 weights, 20 biases and the readout.
    assert_eq!(records(&a.join("train.csv")).len(), 2 * 3 * 101);
    assert_eq!(records(&a.join("train_layers.csv")).len(), 2 * 3 * 4 * 20);
    assert_eq!(records(&a.join("updates.csv")).len(), 2 * 3 * 3 * 41);
    // Every file's columns are named once (updates.csv once had two `param` columns).
    for f in [
        "train.csv",
        "updates.csv",
        "train_layers.csv",
        "summary.csv",
    ] {
        columns_once(&a.join(f));
    }
    let h = header(&a.join("train.csv"));
    for c in [
        "task",
        "objective",
        "optimizer",
        "lr",
        "seed",
        "step",
        "train_loss",
        "grad_norm",
    ] {
        assert!(h.iter().any(|x| x == c), "train.csv lacks {c}");
    }
    // The mixture trains with cross-entropy; `loss` stays the probed passes' loss.
    for f in [
        "train.csv",
        "summary.csv",
        "train_layers.csv",
        "updates.csv",
    ] {
        let p = a.join(f);
        for r in records(&p) {
            assert_eq!(&r[col(&p, "objective")], "cross-entropy", "{f}");
            assert_eq!(&r[col(&p, "loss")], "projection", "{f}");
        }
    }
    let s = a.join("summary.csv");
    let rows = records(&s);
    let get = |r: usize, c: &str| rows[r][col(&s, c)].to_string();
    let num = |r: usize, c: &str| get(r, c).parse::<f64>().unwrap();
    // He trains: every seed reaches half its initial loss; Xavier's ReLU stack (variance
    // halved per layer) stays at chance, ln 4, within 1%, and the seed intervals are apart.
    assert_eq!(get(0, "verdict"), "trains");
    assert_eq!(get(1, "verdict"), "stalls");
    assert!(num(0, "loss_final_hi") < num(1, "loss_final_lo"));
    assert!((num(1, "loss_final") / 4f64.ln() - 1.0).abs() < 0.01);
    assert!(num(0, "loss_ratio") < 0.2);
}

/// `train --jacobian` writes the Jacobian spectra of its logged steps. Step 0's are exactly
/// those `run --jacobian` measures for the same seed (the same weights and probe batch), and
/// a few steps of SGD at a large rate move them.
#[test]
fn train_jacobian_writes_the_spectra_of_its_logged_steps() {
    let dir = tempfile::tempdir().unwrap();
    let net = [
        "--depth",
        "4",
        "--width",
        "16",
        "--batch",
        "16",
        "--seed",
        "3",
        "--jacobian-samples",
        "2",
        "--jacobian-layers",
        "2,4",
        "--quiet",
    ];
    let run = dir.path().join("run");
    sigprop()
        .args(["run", "--init", "he-normal", "--activation", "tanh"])
        .args(net)
        .arg("--out")
        .arg(&run)
        .assert()
        .success();
    let train = dir.path().join("train");
    sigprop()
        .args(["train", "--inits", "he-normal", "--activations", "tanh"])
        .args(net)
        .args(["--steps", "5", "--log-steps", "0,5", "--lr", "0.5", "--out"])
        .arg(&train)
        .assert()
        .success();
    let ts = train.join("train_spectrum.csv");
    let rs = run.join("spectrum.csv");
    let rows = records(&ts);
    // 2 logged steps x 2 inputs x 2 layers x 16 singular values.
    assert_eq!(rows.len(), 2 * 2 * 2 * 16);
    let cols = ["seed", "sample", "layer", "index", "singular_value"];
    let pick = |path: &Path, r: &csv::StringRecord| -> Vec<String> {
        cols.iter().map(|c| r[col(path, c)].to_string()).collect()
    };
    let step = col(&ts, "step");
    let at = |s: &str| -> Vec<Vec<String>> {
        rows.iter()
            .filter(|r| &r[step] == s)
            .map(|r| pick(&ts, r))
            .collect()
    };
    let alone: Vec<Vec<String>> = records(&rs).iter().map(|r| pick(&rs, r)).collect();
    assert_eq!(at("0"), alone, "step 0 differs from run --jacobian");
    let moved = at("5")
        .iter()
        .zip(&alone)
        .filter(|(a, b)| a[4] != b[4])
        .count();
    assert!(
        moved > 32,
        "training moved only {moved} of 64 singular values"
    );
    // A rerun into the folder without --jacobian leaves no stale spectrum behind.
    sigprop()
        .args(["train", "--inits", "he-normal", "--activations", "tanh"])
        .args(&net[..8])
        .args(["--steps", "5", "--quiet", "--out"])
        .arg(&train)
        .assert()
        .success();
    assert!(!ts.exists(), "a spectrum from the earlier run was left");
}

#[test]
fn train_bad_input_exits_with_code_2_and_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let out = out.to_str().unwrap();
    let data = dir.path().join("d.csv");
    std::fs::write(&data, "x1,x2,y\n1,2,0\n3,4,1\n5,6\n").unwrap();
    let data = data.to_str().unwrap();
    let labels = dir.path().join("l.csv");
    std::fs::write(&labels, "1,2,0\n3,4,5\n").unwrap();
    let labels = labels.to_str().unwrap();
    let base = ["train", "--depth", "2", "--width", "8", "--out", out];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    fails_with(&with(&["--steps", "0"]), "--steps 0");
    fails_with(&with(&["--lr", "-0.1"]), "--lr -0.1");
    fails_with(&with(&["--lr", "nan"]), "--lr NaN");
    fails_with(&with(&["--lr", "abc"]), "--lr");
    fails_with(&with(&["--task", "cifar"]), "--task cifar");
    fails_with(&with(&["--optimizer", "rmsprop"]), "sgd, momentum, adam");
    fails_with(&with(&["--task", "data"]), "--data");
    fails_with(&with(&["--target", "1.5"]), "--target");
    fails_with(&with(&["--log-steps", "0,500"]), "--log-steps 500");
    fails_with(&with(&["--arch", "rnn"]), "rnn");
    fails_with(
        &[
            "train", "--arch", "rnn", "--depth", "1", "--width", "8", "--out", out,
        ],
        "rnn",
    );
    fails_with(&with(&["--lr", "0.01,0.01"]), "given twice");
    fails_with(
        &with(&["--task", "mixture", "--classes", "1"]),
        "--classes 1",
    );
    let mut ragged = with(&["--data"]);
    ragged.push(data);
    fails_with(&ragged, "line 4");
    let mut range = with(&["--classes", "3", "--data"]);
    range.push(labels);
    fails_with(&range, "line 2: label 5 is out of range");
    let mut width = with(&["--data"]);
    width.push(labels);
    fails_with(&width, "2 features");
}

#[test]
fn mup_coord_suite_standard_grows_with_width_after_one_adam_step_and_mup_stays_flat() {
    // experiments/mup-coord.toml: widths 256 to 2048, depth 4, 12 seeds, 5 Adam steps.
    let (_guard, out) = run_suite("mup-coord");
    for f in [
        "coord.csv",
        "coord_step0.png",
        "coord_step1.svg",
        "coord_step5.png",
        "report.md",
        "manifest.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // 2 parametrizations x 4 widths x 12 seeds x 6 steps x (4 layers + readout).
    assert_eq!(records(&out.join("coord.csv")).len(), 2 * 4 * 12 * 6 * 5);
    let fit = out.join("coord_fit.csv");
    let rows = records(&fit);
    let get = |param: &str, step: &str, site: &str, layer: &str, c: &str| -> String {
        rows.iter()
            .find(|r| {
                r[col(&fit, "param")] == *param
                    && r[col(&fit, "quantity")] == *"h"
                    && r[col(&fit, "step")] == *step
                    && r[col(&fit, "site")] == *site
                    && r[col(&fit, "layer")] == *layer
            })
            .unwrap()[col(&fit, c)]
        .to_string()
    };
    let slope = |param: &str, step: &str, layer: &str| -> f64 {
        get(param, step, "layer", layer, "slope").parse().unwrap()
    };
    // Standard parametrization, Adam: after one step the hidden layers' coordinates grow
    // with width (Adam moves every entry by lr, so dW h grows like the width), and the seeds'
    // interval says so.
    assert!(slope("standard", "1", "4") > 0.25);
    assert!(slope("standard", "1", "3") > 0.12);
    for layer in ["3", "4"] {
        assert_eq!(get("standard", "1", "layer", layer, "verdict"), "grows");
    }
    // muP: flat, interval and all, at every hidden layer and step.
    for step in ["0", "1", "2", "3", "4", "5"] {
        for layer in ["1", "2", "3", "4"] {
            let v = get("mup", step, "layer", layer, "verdict");
            assert_eq!(v, "flat", "mup step {step} layer {layer}");
        }
    }
    // The muP readout after one step is seed noise around flat: never called "grows".
    assert_ne!(get("mup", "1", "readout", "5", "verdict"), "grows");
    // The verdict column agrees with the intervals.
    for r in &rows {
        let num = |c: &str| r[col(&fit, c)].parse::<f64>().unwrap();
        let (lo, hi) = (num("slope_lo"), num("slope_hi"));
        let want = if lo >= -0.1 && hi <= 0.1 {
            "flat"
        } else if lo > 0.1 {
            "grows"
        } else if hi < -0.1 {
            "shrinks"
        } else {
            "unsettled"
        };
        assert_eq!(&r[col(&fit, "verdict")], want, "{r:?}");
        assert_eq!(&r[col(&fit, "seeds")], "12");
        assert!(lo <= num("slope") && num("slope") <= hi, "{r:?}");
    }
}

/// experiments/yang2023.toml (12 seeds here, 24 in the suite): the depth coordinate check on
/// a ReLU/He resmlp, Adam, 4 to 64 blocks at width 128, the blocks at 1/4, 1/2, 3/4 and all
/// of the depth:
/// - standard (unit branches) grows in size and in update at every site and step;
/// - depth-muP holds both: every `h` slope is flat, every update (`dh`) slope within
///   +-0.1 and never called grows or shrinks;
/// - CompleteP holds the size flat; its update shrinks mildly (slopes -0.4 to -0.05): it
///   converges to its depth limit as 1 + O(1/L), which a log-log fit from 4 blocks reads as
///   a slope (docs/training.md has the figures).
#[test]
fn yang2023_depth_check_separates_standard_from_depth_mup_and_completep() {
    let (_guard, out) = run_suite_scaled("yang2023", &[("seeds = 24", "seeds = 12")]);
    let fit = out.join("coord_fit.csv");
    let rows = records(&fit);
    // 3 params x 4 steps x 5 sites of h, 3 x 3 x 5 of dh.
    assert_eq!(rows.len(), 3 * 4 * 5 + 3 * 3 * 5);
    for r in &rows {
        let (param, quantity) = (
            r[col(&fit, "param")].to_string(),
            r[col(&fit, "quantity")].to_string(),
        );
        let slope = r[col(&fit, "slope")].parse::<f64>().unwrap();
        let verdict = &r[col(&fit, "verdict")];
        let hidden = r[col(&fit, "layer")] != *"5";
        let case = format!("{r:?}");
        match (&param[..], &quantity[..]) {
            ("standard", _) => {
                assert_eq!(verdict, "grows", "{case}");
                assert!(slope > 1.0, "{case}");
            }
            (_, "h") => assert_eq!(verdict, "flat", "{case}"),
            ("depth-mup", "dh") if hidden => {
                assert!(slope.abs() < 0.1, "{case}");
                assert!(verdict == "flat" || verdict == "unsettled", "{case}");
            }
            ("completep", "dh") if hidden => assert!((-0.4..-0.05).contains(&slope), "{case}"),
            _ => {}
        }
    }
    // A chart per step of the sizes, and per step after the first of the updates.
    for step in 0..=3 {
        assert!(out.join(format!("coord_step{step}.svg")).exists());
    }
    for step in 1..=3 {
        assert!(out.join(format!("coord_delta_step{step}.svg")).exists());
    }
    assert!(!out.join("coord_delta_step0.svg").exists());
}

/// experiments/dey2025.toml (learning rates from 0.004 here): pre-LN resmlps of 2, 8 and 32
/// blocks, Adam over learning rates a factor 2 apart. The best learning rate moves by 2 or more grid steps over depth under
/// standard branches and by at most 1 under CompleteP, whose deepest network trains to a
/// lower loss than standard's; `best_lr.csv`, the chart and the report say so.
#[test]
fn dey2025_completep_keeps_the_best_learning_rate_across_depth() {
    // The grid from 0.004 (the suite starts at 0.001): every best lies within it.
    let (_guard, out) = run_suite_scaled(
        "dey2025",
        &[(
            "lr = [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064]",
            "lr = [0.004, 0.008, 0.016, 0.032, 0.064]",
        )],
    );
    let best = out.join("best_lr.csv");
    let rows = records(&best);
    assert_eq!(rows.len(), 6);
    let m = read_json(&out.join("manifest.json"));
    let transfer = m["train"]["transfer"].as_array().unwrap();
    let steps = |p: &str| {
        transfer
            .iter()
            .find(|t| t["param"] == p)
            .unwrap_or_else(|| panic!("{p}: {transfer:?}"))["grid_steps"]
            .as_u64()
            .unwrap()
    };
    assert!(steps("standard") >= 2, "{transfer:?}");
    assert!(steps("completep") <= 1, "{transfer:?}");
    let loss = |label: &str| {
        rows.iter()
            .find(|r| r[col(&best, "label")] == *label)
            .unwrap()[col(&best, "loss_final")]
        .parse::<f64>()
        .unwrap()
    };
    assert!(loss("completep / 32") < loss("standard / 32"));
    for f in ["loss_vs_lr.svg", "loss_vs_lr.png"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("## Best learning rate") && md.contains("completep: best lr"),
        "{md}"
    );
    assert_eq!(m["train"]["params"].as_array().unwrap().len(), 6);
}

/// At initialization a ReLU/He resmlp's stream grows as `(1 + L^-2a)^L` under branches
/// `L^-a`: 2.69 at 50 blocks for depth-muP (a = 1/2), 1.02 for CompleteP (a = 1). The
/// theory column says so, every block's `preact_var` is within 6 seeds' interval + 2% of
/// it, and `corr` of input pairs at 0.5 follows the residual c-map.
#[test]
fn depth_parametrizations_grow_the_stream_as_their_theory_at_initialization() {
    let dir = tempfile::tempdir().unwrap();
    for (param, a, last) in [("depth-mup", 0.5, 2.6916), ("completep", 1.0, 1.0202)] {
        let out = dir.path().join(param);
        sigprop()
            .args(["run", "--arch", "resmlp", "--param", param, "--depth", "50"])
            .args(["--width", "256", "--seeds", "6", "--input-corr", "0.5"])
            .args(["--quiet", "--out"])
            .arg(&out)
            .assert()
            .success();
        let checked = theory_agrees_on(&out, param, &["preact_var", "corr"]);
        assert!(checked >= 2 * 50, "{param}: {checked}");
        let a_csv = out.join("aggregate.csv");
        let theory = |layer: &str| {
            records(&a_csv)
                .into_iter()
                .find(|r| {
                    r[col(&a_csv, "site")] == *"out"
                        && r[col(&a_csv, "layer")] == *layer
                        && r[col(&a_csv, "stat")] == *"preact_var"
                })
                .unwrap()[col(&a_csv, "theory")]
            .parse::<f64>()
            .unwrap()
        };
        let want = (1.0 + 50f64.powf(-2.0 * a)).powi(50);
        assert!((theory("50") - want).abs() < 1e-9, "{param}");
        assert!((want - last).abs() < 1e-4, "{param}: {want}");
        let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
        let scale = if a == 0.5 { "1/sqrt(L)" } else { "1/L" };
        assert!(
            manifest.contains(&format!("\"branch-scale\": \"{scale}\"")),
            "{manifest}"
        );
    }
}

#[test]
fn coord_check_bad_input_exits_with_code_2_and_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let out = out.to_str().unwrap();
    fails_with(&["coord-check", "--depth", "2", "--out", out], "--widths");
    fails_with(
        &["coord-check", "--widths", "64", "--out", out],
        "at least two",
    );
    fails_with(
        &["coord-check", "--widths", "64,x", "--out", out],
        "--widths 64,x",
    );
    fails_with(
        &[
            "coord-check",
            "--widths",
            "64,128",
            "--params",
            "spx",
            "--out",
            out,
        ],
        "standard, ntk, mup",
    );
    fails_with(
        &["coord-check", "--depths", "4,8", "--out", out],
        "residual networks",
    );
    // A depth parametrization is for residual networks, and sets the branches itself.
    for cmd in ["coord-check", "train", "run"] {
        let mut args = vec![cmd, "--depth", "4", "--out", out];
        if cmd == "coord-check" {
            args.extend(["--widths", "16,32", "--params", "standard,completep"]);
        } else {
            args.extend(["--param", "completep"]);
        }
        fails_with(&args, "residual networks");
    }
    fails_with(
        &[
            "train",
            "--arch",
            "resmlp",
            "--param",
            "depth-mup",
            "--branch-scale",
            "rezero",
            "--out",
            out,
        ],
        "--branch-scale rezero",
    );
    fails_with(&["run", "--param", "mup", "--out", out], "initialization");
    fails_with(
        &[
            "train",
            "--arch",
            "resmlp",
            "--param",
            "completep,completep",
            "--out",
            out,
        ],
        "given twice",
    );
    fails_with(
        &[
            "coord-check",
            "--widths",
            "64,128",
            "--params",
            "mup,mup",
            "--out",
            out,
        ],
        "given twice",
    );
    fails_with(
        &[
            "coord-check",
            "--widths",
            "64,128",
            "--lr",
            "0",
            "--out",
            out,
        ],
        "--lr 0",
    );
    fails_with(
        &[
            "train",
            "--param",
            "mup",
            "--arch",
            "transformer",
            "--score-scale",
            "1/sqrt(d)",
            "--depth",
            "1",
            "--width",
            "8",
            "--out",
            out,
        ],
        "--score-scale 1/sqrt(d): --param mup sets the attention logits",
    );
}

#[test]
fn a_train_suite_over_sigma_w2_and_depth_draws_the_loss_ratio_heatmap() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("map.toml");
    std::fs::write(
        &suite,
        "[base]\nactivation = \"tanh\"\nwidth = 16\nbatch = 16\nseeds = 1\nsigma-b2 = 0.05\n\
         [train]\nsteps = 3\nlr = 0.01\n[train.task]\nkind = \"mixture\"\nclasses = 3\n\
         [grid]\nsigma-w2 = [1.0, 2.0]\ndepth = [2, 4]\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    sigprop()
        .arg("suite")
        .arg(&suite)
        .args(["--quiet", "--out"])
        .arg(&out)
        .assert()
        .success();
    for f in [
        "heatmap_loss_ratio.png",
        "heatmap_loss_ratio.svg",
        "grid.csv",
        "train.csv",
        "summary.csv",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert_eq!(records(&out.join("summary.csv")).len(), 4);
    // The store's flags do not apply to a training suite.
    fails_with(
        &[
            "suite",
            suite.to_str().unwrap(),
            "--resume",
            "--out",
            out.to_str().unwrap(),
        ],
        "--resume",
    );
}

fn recommend_json(args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let out = sigprop()
        .arg("recommend")
        .args(args)
        .args(["--width", "128", "--seeds", "3", "--json", "--out"])
        .arg(dir.path().join("rec"))
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(dir.path().join("rec/recommend.md").exists());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `recommend --quiet` prints the answer (the ranking and the pick), not the file line.
#[test]
fn recommend_quiet_still_prints_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let out = sigprop()
        .args([
            "recommend",
            "--depth",
            "3",
            "--width",
            "16",
            "--seeds",
            "1",
            "--quiet",
        ])
        .arg("--out")
        .arg(dir.path().join("rec"))
        .assert()
        .success()
        .get_output()
        .clone();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("use: --init "), "{text}");
    assert!(text.contains("rank"), "{text}");
    assert!(!text.contains("wrote "), "{text}");
}

/// `sigprop completions bash`, sourced in bash, completes `sigprop ru<TAB>` to `run` and
/// `sigprop run --dep<TAB>` to `--depth` (an architecture's own flag too); `sigprop man`
/// prints a man page with every subcommand's flags.
#[test]
fn completions_complete_commands_and_flags_and_man_documents_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = sigprop()
        .args(["completions", "bash"])
        .assert()
        .success()
        .get_output()
        .clone();
    let script = dir.path().join("sigprop.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let complete = |words: &[&str]| -> String {
        let line = words.join(" ");
        let shell = format!(
            "source '{}'; COMP_WORDS=({line}); COMP_CWORD={}; COMP_LINE='{line}'; \
             COMP_POINT=${{#COMP_LINE}}; _sigprop sigprop '{}' '{}'; echo \"${{COMPREPLY[@]}}\"; \
             complete -p sigprop",
            script.display(),
            words.len() - 1,
            words[words.len() - 1],
            words[words.len() - 2],
        );
        let o = std::process::Command::new("bash")
            .args(["-c", &shell])
            .output()
            .expect("bash runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let run = complete(&["sigprop", "ru"]);
    let mut lines = run.lines();
    assert_eq!(lines.next(), Some("run"));
    assert!(
        lines.next().unwrap().contains("-F _sigprop sigprop"),
        "{run}"
    );
    assert_eq!(
        complete(&["sigprop", "run", "--dep"]).lines().next(),
        Some("--depth")
    );
    assert_eq!(
        complete(&["sigprop", "run", "--kern"]).lines().next(),
        Some("--kernel")
    );
    for shell in ["zsh", "fish", "powershell"] {
        let o = sigprop().args(["completions", shell]).assert().success();
        assert!(o.get_output().stdout.len() > 1000, "{shell}");
    }
    fails_with(&["completions", "tcsh"], "tcsh");
    let man = sigprop().arg("man").assert().success().get_output().clone();
    let man = String::from_utf8(man.stdout).unwrap();
    assert!(
        man.starts_with(".ie") && man.contains(".TH sigprop 1"),
        "{man}"
    );
    for heading in ["SIGPROP RUN", "SIGPROP COORD-CHECK", "SIGPROP COMPLETIONS"] {
        assert!(man.contains(heading), "man lacks {heading}");
    }
    assert!(man.contains("\\-\\-seed\\-batch"), "man lacks --seed-batch");
}

fn ranked<'a>(rec: &'a serde_json::Value, init: &str) -> &'a serde_json::Value {
    rec["ranked"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["init"] == init)
        .unwrap_or_else(|| panic!("{init} not ranked"))
}

/// Issue 14's must-shows for `recommend` at depth 50: He for ReLU (tied with its
/// equivalents, and said so), a chi_1 = 1 choice for tanh; and SELU, where the harness
/// measures LeCun's gradient growing by its theory chi_1 = 1.074 per layer, so the pick is
/// autoinit (LeCun's scale corrected to chi_1 = 1) with LeCun first among the fixed-scale
/// rules.
#[test]
fn recommend_ranks_he_for_relu_a_chi1_one_choice_for_tanh_and_explains_ties() {
    // ReLU's He family and its equivalents: critical and autoinit are He for ReLU, and
    // LSUV rescales orthogonal layers to unit variance, an orthogonal gain of about sqrt(2).
    // Which of them has the flattest point estimate depends on the seeds; that He ranks
    // first, tied with the others, does not.
    let he = |s: &str| {
        ["he-normal", "he-uniform", "critical", "autoinit", "lsuv"].contains(&s)
            || s.starts_with("orthogonal:gain=1.414")
    };
    let relu = recommend_json(&["--activation", "relu", "--depth", "50"]);
    assert!(he(relu["choice"].as_str().unwrap()), "{}", relu["choice"]);
    let top = ranked(&relu, "he-normal");
    assert_eq!(top["rank"], 1);
    let tied: Vec<&str> = top["tied_with"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        tied.contains(&"he-uniform") && tied.contains(&"critical"),
        "{tied:?}"
    );
    assert!(relu["why"].as_str().unwrap().contains("tied with"));
    // Xavier halves the variance per ReLU layer: measured and theory.
    let x = ranked(&relu, "xavier-normal");
    assert_eq!(x["verdict"], "vanishing");
    assert!((x["fwd_factor"].as_f64().unwrap() - 0.5).abs() < 0.05);

    let tanh = recommend_json(&["--activation", "tanh", "--depth", "50"]);
    let choice = ranked(&tanh, tanh["choice"].as_str().unwrap());
    assert!(
        (choice["theory_chi1"].as_f64().unwrap() - 1.0).abs() < 1e-6,
        "{choice}"
    );
    assert_eq!(choice["verdict"], "stable");
    // He puts tanh in the chaotic phase: its gradients grow.
    assert_eq!(ranked(&tanh, "he-normal")["verdict"], "exploding-gradients");

    let selu = recommend_json(&["--activation", "selu", "--depth", "50"]);
    assert_eq!(selu["choice"], "autoinit");
    let lecun = ranked(&selu, "lecun-normal");
    let (lo, hi) = (
        lecun["bwd_factor_lo"].as_f64().unwrap(),
        lecun["bwd_factor_hi"].as_f64().unwrap(),
    );
    let chi1 = lecun["theory_chi1"].as_f64().unwrap();
    assert!(
        lo <= chi1 * 1.005 && chi1 <= hi * 1.005 && chi1 > 1.05,
        "{lecun}"
    );
    let he = ranked(&selu, "he-normal")["rank"].as_u64().unwrap();
    assert!(lecun["rank"].as_u64().unwrap() < he);
}

#[test]
fn init_auto_runs_the_top_recommendation_and_records_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a");
    sigprop()
        .args(["run", "--init", "auto", "--activation", "relu"])
        .args(SMALL)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let layers = out.join("layers.csv");
    let init = col(&layers, "init");
    let chosen = records(&layers)[0][init].to_string();
    let m = read_json(&out.join("manifest.json"));
    let auto = &m["configurations"][0]["auto"];
    assert_eq!(auto["choice"], chosen.as_str());
    assert!(
        ["he-normal", "he-uniform", "critical", "autoinit"].contains(&chosen.as_str())
            || chosen.starts_with("orthogonal:gain=1.414"),
        "{chosen}"
    );
    assert!(auto["why"].as_str().unwrap().contains("stable"), "{auto}");
    assert!(auto["ranking"].as_array().unwrap().len() > 5);
    // --train K ranks by the training probe first and keeps the propagation rank.
    let dir2 = tempfile::tempdir().unwrap();
    let out2 = sigprop()
        .args([
            "recommend",
            "--activation",
            "relu",
            "--depth",
            "8",
            "--width",
            "32",
        ])
        .args([
            "--seeds", "2", "--train", "20", "--task", "mixture", "--json", "--out",
        ])
        .arg(dir2.path().join("r"))
        .assert()
        .success()
        .get_output()
        .clone();
    let rec: serde_json::Value = serde_json::from_slice(&out2.stdout).unwrap();
    let rows = rec["ranked"].as_array().unwrap();
    assert!(
        rows.iter()
            .all(|r| r["train_loss"].is_number() && r["signal_rank"].is_number())
    );
    let class = |r: &serde_json::Value| match r["train_verdict"].as_str().unwrap() {
        "trains" => 0,
        "partial" => 1,
        "stalls" => 2,
        _ => 3,
    };
    assert!(rows.windows(2).all(|w| class(&w[0]) <= class(&w[1])));
    assert!(rec["why"].as_str().unwrap().contains("training probe"));
    assert!(dir2.path().join("r/train/summary.csv").exists());
    fails_with(
        &["recommend", "--max-memory", "1K", "--depth", "3"],
        "no initializer applies",
    );
    fails_with(
        &[
            "theory",
            "--activation",
            "tanh",
            "--init",
            "autoinit",
            "--depth",
            "5",
        ],
        "variance-scaling:scale=",
    );
    // A bad base setting is named once, not once per candidate.
    let cwd = tempfile::tempdir().unwrap();
    let err = sigprop()
        .current_dir(cwd.path())
        .args(["run", "--init", "auto", "--width", "0"])
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(err).unwrap();
    assert_eq!(err.matches("width=0").count(), 1, "{err}");
    fails_with(
        &[
            "run",
            "--init",
            "autoinit",
            "--activation",
            "tanh",
            "--sigma-b",
            "0.1",
        ],
        "sets the bias",
    );
    fails_with(
        &[
            "run", "--init", "autoinit", "--arch", "resmlp", "--depth", "3",
        ],
        "plain layers",
    );
}

/// `--prune` reaches the runs (the manifest reports the realized sparsity per tensor) and
/// removes the theory columns it would falsify; `--lottery` trains the three arms and the
/// report compares them; bad pruning input exits 2 with one line.
#[test]
fn pruning_runs_report_their_masks_and_the_lottery_compares_three_arms() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p");
    sigprop()
        .args([
            "run",
            "--init",
            "he-normal",
            "--prune",
            "snip:sparsity=0.75",
        ])
        .args(SMALL)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let m = read_json(&out.join("manifest.json"));
    let prune = &m["configurations"][0]["prune"];
    assert_eq!(prune["spec"], "snip:sparsity=0.75");
    let seeds = prune["seeds"].as_array().unwrap();
    assert_eq!(seeds.len(), 2);
    let s = seeds[0]["sparsity"].as_f64().unwrap();
    assert!((s - 0.75).abs() < 1e-3, "{s}");
    assert_eq!(seeds[0]["tensors"].as_array().unwrap().len(), 6);
    let layers = out.join("layers.csv");
    let theory = col(&layers, "theory_preact_var");
    assert!(records(&layers).iter().all(|r| r[theory].is_empty()));

    let lot = dir.path().join("l");
    sigprop()
        .args([
            "train",
            "--inits",
            "he-normal",
            "--depth",
            "2",
            "--width",
            "64",
        ])
        .args([
            "--steps",
            "30",
            "--seeds",
            "2",
            "--optimizer",
            "adam",
            "--lr",
            "0.003",
        ])
        .args(["--lottery", "0.8", "--quiet", "--out"])
        .arg(&lot)
        .assert()
        .success();
    let summary = lot.join("summary.csv");
    let label = col(&summary, "label");
    let labels: Vec<String> = records(&summary)
        .iter()
        .map(|r| r[label].to_string())
        .collect();
    assert_eq!(labels.len(), 3);
    assert!(labels[0].ends_with("dense") && labels[1].ends_with("ticket"));
    assert!(labels[2].ends_with("random-mask"));
    let report = std::fs::read_to_string(lot.join("report.md")).unwrap();
    assert!(report.contains("## Lottery ticket"), "{report}");
    let m = read_json(&lot.join("manifest.json"));
    assert_eq!(m["lottery"].as_array().unwrap().len(), 1);

    let out = out.to_str().unwrap();
    fails_with(
        &["run", "--prune", "snip:sparsity=1.5", "--out", out],
        "[0, 1)",
    );
    fails_with(
        &["run", "--prune", "prune-all:sparsity=0.5", "--out", out],
        "synflow",
    );
    fails_with(
        &[
            "run",
            "--arch",
            "resmlp",
            "--prune",
            "synflow:sparsity=0.5",
            "--out",
            out,
        ],
        "plain chain",
    );
    fails_with(
        &["train", "--lottery", "1", "--steps", "5", "--out", out],
        "[0, 1)",
    );
}

/// `experiments/recommend.toml`: `init = "auto"` against the rule of thumb. The picks are
/// He for ReLU and autoinit for tanh, SELU and sigmoid (stable at depth 50), where Xavier
/// leaves tanh critical, LeCun gives SELU exploding gradients and Xavier gives sigmoid
/// vanishing gradients.
#[test]
fn recommend_suite_picks_stable_schemes_where_the_rule_of_thumb_does_not() {
    let (_dir, out) = run_suite("recommend");
    let summary = out.join("summary.csv");
    let (label, init, verdict) = (
        col(&summary, "label"),
        col(&summary, "init"),
        col(&summary, "verdict"),
    );
    let rows = records(&summary);
    let find = |l: &str| {
        rows.iter()
            .find(|r| r[label].starts_with(l))
            .unwrap_or_else(|| panic!("no row {l}"))
    };
    assert_eq!(&find("auto / relu / 50")[init], "he-normal");
    for act in ["tanh", "selu", "sigmoid"] {
        let r = find(&format!("auto / {act} / 50"));
        assert_eq!(&r[init], "autoinit", "{act}");
        assert_eq!(&r[verdict], "stable", "{act}");
    }
    assert_eq!(&find("tanh / xavier-normal / 50")[verdict], "critical");
    assert_eq!(
        &find("selu / lecun-normal / 50")[verdict],
        "exploding-gradients"
    );
    assert_eq!(
        &find("sigmoid / xavier-normal / 50")[verdict],
        "vanishing-gradients"
    );
}

/// `metainit` and `gradinit` reach the runs on any architecture without normalization: the
/// manifest reports each seed's objective before and after and every tuned tensor's scale,
/// the theory columns (which would predict the base draw) are empty, `recommend --learned`
/// measures both, and what they cannot tune exits 2 with one line.
#[test]
fn meta_learned_inits_report_their_scales_and_refuse_what_they_cannot_tune() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    sigprop()
        .args(["run", "--activation", "tanh", "--init", "metainit:steps=5"])
        .args(SMALL)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let m = read_json(&out.join("manifest.json"));
    let t = &m["configurations"][0]["tuning"];
    assert_eq!(t["spec"], "metainit:steps=5");
    let seeds = t["seeds"].as_array().unwrap();
    assert_eq!(seeds.len(), 2);
    assert_eq!(seeds[0]["method"], "metainit");
    assert_eq!(seeds[0]["metrics"][0]["name"], "gradient_quotient");
    assert!(seeds[0]["metrics"][0]["tuned"].as_f64().unwrap() > 0.0);
    let tensors = seeds[0]["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), 6);
    assert!(tensors.iter().all(|x| x["scale"].as_f64().unwrap() > 0.0));
    let layers = out.join("layers.csv");
    let theory = col(&layers, "theory_preact_var");
    assert!(records(&layers).iter().all(|r| r[theory].is_empty()));

    let res = dir.path().join("g");
    sigprop()
        .args(["run", "--arch", "resmlp", "--init", "gradinit:steps=5"])
        .args(SMALL)
        .arg("--out")
        .arg(&res)
        .assert()
        .success();
    let m = read_json(&res.join("manifest.json"));
    let s = &m["configurations"][0]["tuning"]["seeds"][0];
    assert_eq!(s["method"], "gradinit");
    let names: Vec<&str> = s["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lookahead_loss", "grad_norm"]);

    let rec = sigprop()
        .args(["recommend", "--learned", "--depth", "4", "--width", "16"])
        .args(["--seeds", "2", "--batch", "16", "--json", "--out"])
        .arg(dir.path().join("r"))
        .assert()
        .success()
        .get_output()
        .clone();
    let rec: serde_json::Value = serde_json::from_slice(&rec.stdout).unwrap();
    let inits: Vec<&str> = rec["ranked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["init"].as_str().unwrap())
        .collect();
    assert!(
        inits.contains(&"metainit") && inits.contains(&"gradinit"),
        "{inits:?}"
    );

    let out = out.to_str().unwrap();
    fails_with(
        &["run", "--init", "metainit:base=critical", "--out", out],
        "base=critical",
    );
    fails_with(
        &["run", "--init", "gradinit", "--norm", "batch", "--out", out],
        "without --norm",
    );
    fails_with(
        &["run", "--init", "metainit:momentum=1", "--out", out],
        "[0, 1)",
    );
}

/// With `--jacobian`, `recommend` reports each candidate's Jacobian condition number and,
/// within a shared rank, puts the best-conditioned first; orthogonal weights condition the
/// Jacobian far better than Gaussian ones of the same variance.
#[test]
fn recommend_with_the_jacobian_orders_ties_by_its_condition_number() {
    let dir = tempfile::tempdir().unwrap();
    let out = sigprop()
        .args([
            "recommend",
            "--activation",
            "tanh",
            "--depth",
            "6",
            "--width",
            "16",
        ])
        .args([
            "--seeds",
            "2",
            "--batch",
            "32",
            "--jacobian",
            "--json",
            "--out",
        ])
        .arg(dir.path().join("r"))
        .assert()
        .success()
        .get_output()
        .clone();
    let rec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rec["ranked"].as_array().unwrap();
    let cond = |r: &serde_json::Value| r["jac_cond"].as_f64().unwrap();
    assert!(rows.iter().all(|r| {
        r["jac_cond"].is_number()
            && r["reason"]
                .as_str()
                .unwrap()
                .contains("Jacobian condition number")
    }));
    assert!(
        rows.windows(2).any(|w| w[0]["rank"] == w[1]["rank"]),
        "no tie to order"
    );
    for w in rows.windows(2) {
        if w[0]["rank"] == w[1]["rank"] {
            assert!(
                (cond(&w[0]).ln() * 100.0).round() <= (cond(&w[1]).ln() * 100.0).round(),
                "{} before {}",
                w[0]["init"],
                w[1]["init"]
            );
        }
    }
    let of = |init: &str| cond(rows.iter().find(|r| r["init"] == init).unwrap());
    assert!(
        of("orthogonal") * 10.0 < of("lecun-normal"),
        "{} {}",
        of("orthogonal"),
        of("lecun-normal")
    );
}

/// `experiments/dauphin2019.toml`: each meta-learned scheme achieves what it optimises, in
/// the authors' setting. MetaInit lowers the gradient quotient at least tenfold on every
/// seed with the first layer scaled above the head; GradInit brings the looked-ahead loss
/// to within 0.01 of ln 10, the least that random labels over 10 classes allow, while the
/// propagation verdict of both is worse than Xavier's power law.
#[test]
fn dauphin2019_suite_meta_learned_schemes_reach_their_own_objectives() {
    let (_dir, out) = run_suite("dauphin2019");
    let m = read_json(&out.join("manifest.json"));
    let configs = m["configurations"].as_array().unwrap();
    let seeds_of = |method: &str| {
        configs
            .iter()
            .filter_map(|c| c["tuning"]["seeds"].as_array())
            .flatten()
            .filter(|s| s["method"] == method)
            .cloned()
            .collect::<Vec<_>>()
    };
    let meta = seeds_of("metainit");
    assert_eq!(meta.len(), 3);
    for s in &meta {
        let q = &s["metrics"][0];
        let (before, after) = (q["base"].as_f64().unwrap(), q["tuned"].as_f64().unwrap());
        assert!(after < before / 10.0, "GQ {before} -> {after}");
        let t = s["tensors"].as_array().unwrap();
        let scale = |x: &serde_json::Value| x["scale"].as_f64().unwrap();
        assert!(scale(&t[0]) > scale(t.last().unwrap()), "{t:?}");
    }
    let grad = seeds_of("gradinit");
    assert_eq!(grad.len(), 3);
    for s in &grad {
        let ahead = s["metrics"][0]["tuned"].as_f64().unwrap();
        assert!((ahead - 10f64.ln()).abs() < 0.01, "{ahead}");
    }
    let summary = out.join("summary.csv");
    let (init, verdict) = (col(&summary, "init"), col(&summary, "verdict"));
    let v: std::collections::HashMap<String, String> = records(&summary)
        .iter()
        .map(|r| (r[init].to_string(), r[verdict].to_string()))
        .collect();
    assert_eq!(v["xavier-normal"], "critical");
    assert_eq!(v["metainit"], "vanishing");
    assert_eq!(v["gradinit"], "vanishing");
}

// ---------------------------------------------------------------- report.html

/// Headless Chromium from the distribution's packages (`.ci/run` installs it), if any.
fn chromium() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// The DOM of `page` (with `hash`) once its script ran in headless Chromium, and what the
/// browser logged (console messages included).
fn rendered(browser: &Path, page: &Path, hash: &str) -> (String, String) {
    let url = format!("file://{}{hash}", page.display());
    let o = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=5000",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            &url,
        ])
        .output()
        .expect("chromium runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The scripts' own text (which names the attributes checked) is left out.
    let dom = String::from_utf8_lossy(&o.stdout);
    let mut out = String::new();
    let mut rest = dom.as_ref();
    while let Some(at) = rest.find("<script") {
        out.push_str(&rest[..at]);
        rest = rest[at..]
            .find("</script>")
            .map_or("", |e| &rest[at + e + "</script>".len()..]);
    }
    out.push_str(rest);
    (out, String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Every `src="..."` and `href="..."` of `html` that points outside the page's folder.
fn external_urls(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\"", "src='", "href='", "url("] {
        for (i, _) in html.match_indices(attr) {
            let v: String = html[i + attr.len()..]
                .chars()
                .take_while(|c| !matches!(c, '"' | '\'' | ')'))
                .collect();
            let lower = v.to_ascii_lowercase();
            if lower.starts_with("http:")
                || lower.starts_with("https:")
                || lower.starts_with("//")
                || lower.starts_with("ftp:")
            {
                out.push(v);
            }
        }
    }
    out
}

/// Checks a rendered report: the script finished without an error, the browser logged no
/// script error, and the page has its charts, its ranking table and its controls.
fn assert_rendered(dom: &str, log: &str, configs: usize) {
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page's script did not finish"
    );
    let errors = dom
        .find("data-errors")
        .map(|i| &dom[i..(i + 400).min(dom.len())]);
    assert!(errors.is_none(), "script errors: {errors:?}");
    for line in log.lines().filter(|l| l.contains("CONSOLE")) {
        assert!(
            !line.contains("Uncaught") && !line.contains("Error"),
            "console: {line}"
        );
    }
    assert!(dom.matches("<svg class=\"ichart\"").count() >= 5, "charts");
    assert!(dom.contains("<path class=\"series\""), "chart lines");
    assert_eq!(
        dom.matches("<tr data-config=").count(),
        configs,
        "ranking rows"
    );
    assert_eq!(dom.matches("<li data-config=").count(), configs, "outcomes");
    assert!(dom.contains("id=\"controls\"") && dom.contains("type=\"checkbox\""));
    assert_eq!(
        dom.matches("<td><a href=\"#config-").count(),
        configs,
        "a verdict link in each ranking row"
    );
}

/// `report.html` of a 6-configuration compare and of a 400-configuration sweep opens in
/// headless Chromium with its charts, table and controls; a filter in the address hides
/// the configurations it leaves out; the page fetches nothing; train's folder gets a page
/// too. Skipped, with a message, where no Chromium is installed.
#[test]
fn report_html_opens_offline_with_charts_table_and_controls_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let cmp = dir.path().join("cmp");
    sigprop()
        .args([
            "compare",
            "--inits",
            "he-normal,xavier-normal,orthogonal",
            "--activations",
            "tanh,relu",
            "--depth",
            "6",
            "--width",
            "16",
            "--batch",
            "32",
            "--seeds",
            "2",
            "--quiet",
            "--out",
        ])
        .arg(&cmp)
        .assert()
        .success();
    let suite = dir.path().join("sweep.toml");
    std::fs::write(
        &suite,
        "name = \"sweep400\"\n[base]\nwidth = 8\nbatch = 16\nseeds = 1\n[grid]\n\
         activation = [\"relu\", \"tanh\", \"gelu\", \"swish\", \"elu\", \"selu\", \"sigmoid\", \"linear\"]\n\
         init = [\"he-normal\", \"xavier-normal\", \"lecun-normal\", \"orthogonal\", \"he-uniform\"]\n\
         depth = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]\n",
    )
    .unwrap();
    let sweep = dir.path().join("sweep");
    sigprop()
        .arg("suite")
        .arg(&suite)
        .args(["--quiet", "--out"])
        .arg(&sweep)
        .assert()
        .success();
    let train = dir.path().join("train");
    sigprop()
        .args([
            "train",
            "--inits",
            "he-normal",
            "--depth",
            "3",
            "--width",
            "8",
            "--batch",
            "8",
            "--steps",
            "4",
            "--quiet",
            "--out",
        ])
        .arg(&train)
        .assert()
        .success();
    let pages = [
        (cmp.join("report.html"), Some(6)),
        (sweep.join("report.html"), Some(400)),
        (train.join("report.html"), None),
    ];
    for (page, _) in &pages {
        let html = std::fs::read_to_string(page).unwrap();
        assert!(
            external_urls(&html).is_empty(),
            "{}: {:?}",
            page.display(),
            external_urls(&html)
        );
        assert!(!html.contains("<link"), "{}", page.display());
    }
    let size = std::fs::metadata(&pages[1].0).unwrap().len();
    eprintln!("report.html of the 400-configuration sweep: {size} bytes");
    assert!(size < 4 << 20, "{size} bytes");
    // `sigprop plot` redraws the page with the charts.
    std::fs::remove_file(&pages[0].0).unwrap();
    sigprop().arg("plot").arg(&cmp).assert().success();
    assert!(pages[0].0.is_file());
    let Some(browser) = chromium() else {
        eprintln!("skipped the browser half: no chromium installed (apt-get install chromium)");
        return;
    };
    for (page, configs) in &pages {
        let (dom, log) = rendered(&browser, page, "");
        match configs {
            Some(n) => {
                assert_rendered(&dom, &log, *n);
                assert!(!dom.contains(" hidden=\"\""), "nothing is filtered yet");
                // The filter keeps tanh: every other activation's rows and outcomes hide.
                let (dom, log) = rendered(&browser, page, "#filter=activation:tanh");
                assert_rendered(&dom, &log, *n);
                let hidden = dom.matches("\" hidden=\"\"").count();
                let kept = n / if *n == 6 { 2 } else { 8 };
                assert_eq!(hidden, 2 * (n - kept), "{}", page.display());
                assert!(dom.contains(&format!("{kept} of {n} configurations shown")));
            }
            None => {
                assert!(dom.contains("data-ready=\"1\"") && !dom.contains("data-errors"));
                assert!(dom.contains("<table") && dom.contains("id=\"label-filter\""));
                assert!(
                    dom.contains("<svg") || dom.contains("data:image/png"),
                    "figures"
                );
            }
        }
    }
}

/// The finite-width yardstick (Hanin & Nica 2019): one input's log gain
/// `ln(|z^L|^2 / |z^1|^2)` has variance `5 (L - 1) / N` for ReLU with He weights at two
/// widths, and its own theory (kappa of tanh at its q) at tanh's critical point. Each
/// measurement pools at least 1000 (seed, input) samples, and its interval (a jackknife
/// over seeds) is narrow enough that a 10% miss would show.
#[test]
fn the_log_gain_spreads_as_finite_width_theory_says() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("relu", "he-normal", 128, 1000, Some(5.0 * 9.0 / 128.0)),
        ("relu", "he-normal", 256, 1000, Some(5.0 * 9.0 / 256.0)),
        ("tanh", "critical", 128, 300, None),
    ];
    for (act, init, width, seeds, closed_form) in cases {
        let out = dir.path().join(format!("{act}-{width}"));
        sigprop()
            .args([
                "run", "--arch", "mlp", "--depth", "10", "--batch", "64", "--quiet",
            ])
            .args(["--activation", act, "--init", init])
            .args(["--width", &width.to_string(), "--seeds", &seeds.to_string()])
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        let s = out.join("summary.csv");
        let row = &records(&s)[0];
        let num = |c: &str| row[col(&s, c)].parse::<f64>().unwrap();
        let (var, lo, hi, theory) = (
            num("log_gain_var"),
            num("log_gain_var_lo"),
            num("log_gain_var_hi"),
            num("theory_log_gain_var"),
        );
        let case =
            format!("{act} {init} width {width}: measured {var} [{lo}, {hi}], theory {theory}");
        if let Some(want) = closed_form {
            assert!(
                (theory - want).abs() < 1e-9 * want,
                "{case}, 5(L-1)/N = {want}"
            );
            // A log-normal gain whose mean is exactly 1 has E[ln] = -Var/2.
            assert!(
                (num("theory_log_gain_mean") + want / 2.0).abs() < 1e-6,
                "{case}"
            );
        }
        assert!(
            hi - lo < 0.12 * theory,
            "{case}: the interval is too wide to test 10%"
        );
        assert!((var / theory - 1.0).abs() < 0.10, "{case}");
        assert!(
            (num("log_gain_mean") - num("theory_log_gain_mean")).abs() < 0.1 * theory.sqrt(),
            "{case}"
        );
    }
}

/// The residual MLP's backward recursion (docs/theory.md): the gradient of the stream and of
/// each branch site, and the weight gradients, against 16 seeds' means within the seeds'
/// interval + 2%, for He/ReLU branches (the gradient doubles a block toward the input),
/// tanh/Xavier with 1/sqrt(L) branches, and three-map branches with a bias.
#[test]
fn resmlp_gradients_follow_the_backward_recursion() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [&[&str]; 3] = [
        &["--activation", "relu", "--init", "he-normal"],
        &[
            "--activation",
            "tanh",
            "--init",
            "xavier-normal",
            "--branch-scale",
            "1/sqrt(L)",
        ],
        &[
            "--activation",
            "relu",
            "--init",
            "he-normal",
            "--branch-layers",
            "3",
            "--sigma-b",
            "0.1",
        ],
    ];
    for (i, case) in cases.iter().enumerate() {
        let out = dir.path().join(i.to_string());
        sigprop()
            .args(["run", "--arch", "resmlp", "--depth", "10", "--width", "256"])
            .args(["--batch", "64", "--seeds", "16", "--quiet"])
            .args(*case)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        let a = out.join("aggregate.csv");
        let mut checked = std::collections::BTreeMap::<(String, String), usize>::new();
        for r in records(&a) {
            let stat = r[col(&a, "stat")].to_string();
            let theory = &r[col(&a, "theory")];
            if !["grad_var", "wgrad_var"].contains(&stat.as_str()) || theory.is_empty() {
                continue;
            }
            let num = |c: &str| r[col(&a, c)].parse::<f64>().unwrap();
            let (mean, lo, hi, t) = (num("mean"), num("ci95_lo"), num("ci95_hi"), num("theory"));
            let site = r[col(&a, "site")].to_string();
            assert!(
                (mean - t).abs() <= 0.5 * (hi - lo) + 0.02 * t.abs(),
                "{case:?} {site} block {}: {stat} {mean} [{lo}, {hi}] vs theory {t}",
                &r[col(&a, "layer")]
            );
            *checked.entry((site, stat)).or_default() += 1;
        }
        // Every block's stream and branch gradients, and every branch weight's.
        let m = if i == 2 { 3 } else { 2 };
        assert_eq!(
            checked.get(&("out".into(), "grad_var".into())),
            Some(&10),
            "{checked:?}"
        );
        for b in 1..=m {
            for stat in ["grad_var", "wgrad_var"] {
                assert_eq!(
                    checked.get(&(format!("branch.{b}"), stat.into())),
                    Some(&10),
                    "{checked:?}"
                );
            }
        }
    }
    // He/ReLU: the stream's gradient doubles every block toward the input.
    let a = dir.path().join("0/aggregate.csv");
    let g: Vec<f64> = records(&a)
        .iter()
        .filter(|r| &r[col(&a, "site")] == "out" && &r[col(&a, "stat")] == "grad_var")
        .map(|r| r[col(&a, "theory")].parse().unwrap())
        .collect();
    assert!(
        (g[0] - 512.0).abs() < 1e-6 && (g[9] - 1.0).abs() < 1e-9,
        "{g:?}"
    );
}

/// One configuration's summary row of a suite's output, by label.
fn summary_of(out: &Path, label: &str) -> csv::StringRecord {
    let s = out.join("summary.csv");
    records(&s)
        .into_iter()
        .find(|r| &r[col(&s, "label")] == label)
        .unwrap_or_else(|| panic!("no configuration {label}"))
}

/// A number of a summary row.
fn summary_num(out: &Path, label: &str, column: &str) -> f64 {
    let s = out.join("summary.csv");
    summary_of(out, label)[col(&s, column)]
        .parse()
        .unwrap_or_else(|_| panic!("{label}: {column} is not a number"))
}

/// Whether `want` lies in the summary's 95% interval of `slope` (`fwd` or `bwd`), widened by
/// 2% of `want`.
fn slope_holds(out: &Path, label: &str, dir: &str, want: f64) -> bool {
    let lo = summary_num(out, label, &format!("{dir}_slope_lo"));
    let hi = summary_num(out, label, &format!("{dir}_slope_hi"));
    let tol = 0.02 * want.abs();
    lo - tol <= want && want <= hi + tol
}

/// Every seed mean of `stat` at `site` of configuration `label`, layers in order.
fn stat_means(out: &Path, label: &str, site: &str, stat: &str) -> Vec<f64> {
    let a = out.join("aggregate.csv");
    records(&a)
        .into_iter()
        .filter(|r| {
            &r[col(&a, "label")] == label
                && &r[col(&a, "site")] == site
                && &r[col(&a, "stat")] == stat
        })
        .map(|r| r[col(&a, "mean")].parse().unwrap())
        .collect()
}

/// He et al. 2015: in a ReLU network Xavier halves the variance every layer (the seeds'
/// per-layer rate holds ln(1/2), depth scale 1/ln 2 = 1.44 layers), He keeps it.
#[test]
fn he2015_xavier_halves_relu_variance_per_layer_and_he_keeps_it() {
    let (_dir, out) = run_suite("he2015");
    assert!(slope_holds(&out, "xavier-normal", "fwd", 0.5f64.ln()));
    assert_eq!(
        &summary_of(&out, "xavier-normal")[col(&out.join("summary.csv"), "verdict")],
        "vanishing"
    );
    let he = summary_of(&out, "he-normal");
    assert_eq!(&he[col(&out.join("summary.csv"), "verdict")], "stable");
    // Per layer He moves the variance by under 5% (finite width drifts the log a little).
    assert!(summary_num(&out, "he-normal", "fwd_log_slope").abs() < 0.05);
    assert!(summary_num(&out, "he-normal", "bwd_log_slope").abs() < 0.05);
}

/// Klambauer et al. 2017: SELU with LeCun-normal weights holds its activations at mean 0 and
/// variance 1 through all 64 layers; ReLU and tanh with the same weights do not (ReLU halves
/// the variance every layer, tanh decays as a power law).
#[test]
fn selu2017_selu_self_normalizes_where_relu_and_tanh_do_not() {
    let (_dir, out) = run_suite("selu2017");
    let mean = stat_means(&out, "selu", "layer", "act_mean");
    let var = stat_means(&out, "selu", "layer", "act_var");
    assert_eq!((mean.len(), var.len()), (64, 64));
    assert!(
        mean.iter().all(|m| m.abs() < 0.02),
        "SELU act_mean {mean:?}"
    );
    assert!(
        var.iter().all(|v| (v - 1.0).abs() < 0.03),
        "SELU act_var {var:?}"
    );
    let verdict =
        |l: &str| summary_of(&out, l)[col(&out.join("summary.csv"), "verdict")].to_string();
    assert_eq!(verdict("relu"), "vanishing");
    assert!(slope_holds(&out, "relu", "fwd", 0.5f64.ln()));
    assert_eq!(verdict("tanh"), "critical");
    assert!(summary_num(&out, "tanh", "fwd_ratio") < 0.05);
}

/// Saxe et al. 2013: in a deep linear network (depth 100, width 256) orthogonal weights keep
/// every input's norm exactly (its log gain has no spread at all), while Gaussian and
/// uniform weights of the same variance keep it only on average: the log gain spreads as
/// finite-width theory says, 2 (L - 1) / N = 0.773.
#[test]
fn saxe2013_orthogonal_linear_networks_keep_every_norm_and_gaussian_ones_spread() {
    let (_dir, out) = run_suite("saxe2013");
    assert!(summary_num(&out, "orthogonal", "log_gain_var") < 1e-9);
    assert!(summary_num(&out, "orthogonal", "log_gain_mean").abs() < 1e-5);
    assert!((summary_num(&out, "orthogonal", "fwd_ratio") - 1.0).abs() < 1e-3);
    for label in ["lecun-normal", "xavier-uniform"] {
        let theory = summary_num(&out, label, "theory_log_gain_var");
        assert!(
            (theory - 2.0 * 99.0 / 256.0).abs() < 1e-9,
            "{label}: {theory}"
        );
        let (lo, hi) = (
            summary_num(&out, label, "log_gain_var_lo"),
            summary_num(&out, label, "log_gain_var_hi"),
        );
        assert!(lo > 0.3, "{label}: the norms spread, interval from {lo}");
        assert!(
            lo <= theory && theory <= hi,
            "{label}: [{lo}, {hi}] vs {theory}"
        );
    }
}

/// Mishkin & Matas 2015: LSUV rescales each layer to unit output variance, so Var(z) is 1
/// at every one of 40 layers for ReLU and tanh alike; plain orthogonal weights (gain 1)
/// halve ReLU's variance every layer, and He keeps it.
#[test]
fn lsuv2015_lsuv_gives_every_layer_unit_variance() {
    let (_dir, out) = run_suite("lsuv2015");
    for act in ["relu", "tanh"] {
        let v = stat_means(&out, &format!("{act} / lsuv"), "layer", "preact_var");
        assert_eq!(v.len(), 40);
        assert!(v.iter().all(|x| (x - 1.0).abs() < 0.03), "{act}: {v:?}");
    }
    assert!(slope_holds(&out, "relu / orthogonal", "fwd", 0.5f64.ln()));
    let s = out.join("summary.csv");
    assert_eq!(
        &summary_of(&out, "relu / he-normal")[col(&s, "verdict")],
        "stable"
    );
}

/// Zhang et al. 2019: without normalization, He branches double the residual stream every
/// block (the seeds' rate holds ln 2 over 32 blocks); Fixup's zero branch ends make every
/// block the identity at initialization, forward and backward.
#[test]
fn fixup2019_he_doubles_the_stream_every_block_and_fixup_holds_it() {
    let (_dir, out) = run_suite("fixup2019");
    assert!(slope_holds(&out, "he-normal", "fwd", 2f64.ln()));
    assert!(slope_holds(&out, "he-normal", "bwd", 2f64.ln()));
    assert_eq!(summary_num(&out, "fixup", "fwd_ratio"), 1.0);
    assert_eq!(summary_num(&out, "fixup", "bwd_ratio"), 1.0);
    let s = out.join("summary.csv");
    assert_eq!(&summary_of(&out, "fixup")[col(&s, "verdict")], "stable");
}

/// Glorot & Bengio 2010, figures 6-7: with the standard U(+-1/sqrt(n)) initialization the
/// activations and the back-propagated gradients of tanh and softsign networks shrink layer
/// after layer much faster than with the normalized one: per-layer rates whose seed
/// intervals lie apart, the normalized one under two thirds of the standard one.
#[test]
fn glorot2010_normalized_init_keeps_activations_and_gradients_closer_across_layers() {
    let (_dir, out) = run_suite("glorot2010");
    for act in ["tanh", "softsign"] {
        let std = format!("{act} / pytorch-default");
        let norm = format!("{act} / xavier-uniform");
        for dir in ["fwd", "bwd"] {
            let rate = |l: &str| summary_num(&out, l, &format!("{dir}_log_slope"));
            let (s, n) = (rate(&std), rate(&norm));
            assert!(s < 0.0 && n < 0.0, "{act} {dir}: both shrink ({s}, {n})");
            assert!(
                n.abs() < 2.0 / 3.0 * s.abs(),
                "{act} {dir}: {n} vs standard {s}"
            );
            let s_hi = summary_num(&out, &std, &format!("{dir}_slope_hi"));
            let n_lo = summary_num(&out, &norm, &format!("{dir}_slope_lo"));
            assert!(s_hi < n_lo, "{act} {dir}: intervals overlap");
        }
    }
}

/// Schoenholz et al. 2017, figure 1: over the (sigma_w^2, sigma_b^2) grid of a depth-30 tanh
/// network, the measured gradient growth per layer is mean-field theory's ln chi_1: for
/// every point with a bias (48 of 56) ln chi_1 lies in the two seeds' interval + 2%. The
/// points without bias and sigma_w^2 <= 1.5 are left out: there q* is 0 or reached by a slow
/// transient, so 30 layers do not sit at the fixed point chi_1 describes. The sign splits the
/// grid into the ordered and chaotic phases along the chi_1 = 1 curve the heatmap draws.
#[test]
fn schoenholz2017_gradient_growth_per_layer_is_ln_chi1_across_the_phase_diagram() {
    let (_dir, out) = run_suite("schoenholz2017");
    let s = out.join("summary.csv");
    let mut checked = 0;
    for r in records(&s) {
        let label = r[col(&s, "label")].to_string();
        let sb2: f64 = label.rsplit(" / ").next().unwrap().parse().unwrap();
        if sb2 == 0.0 {
            continue;
        }
        let num = |c: &str| r[col(&s, c)].parse::<f64>().unwrap();
        let want = num("theory_chi1").ln();
        let (lo, hi) = (num("bwd_slope_lo"), num("bwd_slope_hi"));
        let tol = 0.02 * want.abs();
        assert!(
            lo - tol <= want && want <= hi + tol,
            "{label}: ln chi_1 {want} vs [{lo}, {hi}]"
        );
        if want > 0.15 {
            assert_eq!(&r[col(&s, "verdict")], "exploding-gradients", "{label}");
        }
        checked += 1;
    }
    assert_eq!(checked, 48);
    assert!(out.join("heatmap_grad_growth.png").is_file());
}

/// A scaled-down copy of suite `name`: each `(from, to)` line of its `[base]` replaced
/// (each must be there), run into a temporary folder.
fn run_suite_scaled(name: &str, lines: &[(&str, &str)]) -> (tempfile::TempDir, std::path::PathBuf) {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments")
        .join(format!("{name}.toml"));
    let mut text = std::fs::read_to_string(&suite).unwrap();
    for (from, to) in lines {
        assert_eq!(
            text.lines().filter(|l| l == from).count(),
            1,
            "{name}: no line {from:?}"
        );
        text = text
            .lines()
            .map(|l| if l == *from { *to } else { l })
            .collect::<Vec<_>>()
            .join("\n");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{name}.toml"));
    std::fs::write(&file, text).unwrap();
    let out = dir.path().join(name);
    sigprop()
        .arg("suite")
        .arg(&file)
        .args(["--quiet", "--out"])
        .arg(&out)
        .assert()
        .success();
    (dir, out)
}

/// Lee et al. 2020 (at width 128): the dense orthogonal tanh network is critical with a
/// well-conditioned Jacobian (condition number below 1e4 at layer 32), and pruning at
/// initialization breaks it: every pruned network's condition number passes 1e9. Random
/// pruning at sparsity S scales each layer's variance by about 1 - S (within 10%; the
/// first layers, where tanh saturates, add to it), forward and backward, and the decay per
/// layer grows with S, the seeds' intervals apart.
#[test]
fn lee2020_pruning_at_initialization_breaks_dynamical_isometry() {
    let (_dir, out) = run_suite_scaled("lee2020", &[("width = 256", "width = 128")]);
    let a = out.join("aggregate.csv");
    let cond = |label: &str| {
        records(&a)
            .into_iter()
            .find(|r| {
                &r[col(&a, "label")] == label
                    && &r[col(&a, "stat")] == "jac_cond"
                    && &r[col(&a, "layer")] == "32"
            })
            .map(|r| r[col(&a, "mean")].parse::<f64>().unwrap())
            .unwrap_or_else(|| panic!("{label}: no jac_cond at layer 32"))
    };
    let s = out.join("summary.csv");
    assert_eq!(&summary_of(&out, "none")[col(&s, "verdict")], "critical");
    assert!(cond("none") < 1e4, "dense: {}", cond("none"));
    for r in records(&s) {
        let label = &r[col(&s, "label")];
        if label != "none" {
            assert!(cond(label) > 1e9, "{label}: {}", cond(label));
        }
    }
    let mut last = (0.0, 0.0);
    for sparsity in [0.3, 0.6, 0.9] {
        let label = format!("random:sparsity={sparsity}");
        let want = (1.0f64 - sparsity).ln();
        for dir in ["fwd", "bwd"] {
            let rate = summary_num(&out, &label, &format!("{dir}_log_slope"));
            assert!(
                (rate / want - 1.0).abs() < 0.10,
                "{label} {dir}: {rate} vs {want}"
            );
        }
        let (lo, hi) = (
            summary_num(&out, &label, "fwd_slope_lo"),
            summary_num(&out, &label, "fwd_slope_hi"),
        );
        assert!(
            sparsity == 0.3 || hi < last.0,
            "{label}: [{lo}, {hi}] overlaps {last:?}"
        );
        last = (lo, hi);
    }
}

/// Every filled theory column of `preact_var`, `act_var`, `grad_var` and `wgrad_var` in
/// `out`'s aggregate.csv against the seed mean, within the seeds' interval + 2%; the number
/// of rows checked.
fn theory_agrees(out: &Path, case: &str) -> usize {
    theory_agrees_on(
        out,
        case,
        &["preact_var", "act_var", "grad_var", "wgrad_var"],
    )
}

/// [`theory_agrees`] on the statistics `stats`.
fn theory_agrees_on(out: &Path, case: &str, stats: &[&str]) -> usize {
    let a = out.join("aggregate.csv");
    let mut checked = 0;
    for r in records(&a) {
        let stat = &r[col(&a, "stat")];
        let theory = &r[col(&a, "theory")];
        if !stats.contains(&stat) || theory.is_empty() {
            continue;
        }
        let num = |c: &str| r[col(&a, c)].parse::<f64>().unwrap();
        let (mean, lo, hi, t) = (num("mean"), num("ci95_lo"), num("ci95_hi"), num("theory"));
        assert!(
            (mean - t).abs() <= 0.5 * (hi - lo) + 0.02 * t.abs(),
            "{case}: {} {} {stat} {mean} [{lo}, {hi}] vs theory {t}",
            &r[col(&a, "site")],
            &r[col(&a, "layer")]
        );
        checked += 1;
    }
    checked
}

/// Delta-orthogonal kernels (Xiao et al. 2018) map each pixel on its own through an
/// orthogonal matrix: the orthogonal MLP's recursions with the channels as width, forward and
/// backward, the weight gradient summed over the pixels each tap reaches, and the orthogonal
/// MLP's Jacobian moments (the Jacobian is block-diagonal over pixels). ReLU at gain sqrt(2)
/// (`jac_m1` 1, `jac_var` growing as l) and tanh with a bias near the edge of chaos, every
/// column within 12 seeds' interval + 2%.
#[test]
fn delta_orthogonal_cnns_follow_the_orthogonal_mlp_pixel_by_pixel() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str]); 2] = [
        (
            "relu",
            &[
                "--width",
                "32",
                "--image-size",
                "4",
                "--activation",
                "relu",
                "--init",
                "delta-orthogonal:gain=1.4142135623730951",
                "--jacobian-layers",
                "3,6",
            ],
        ),
        (
            "tanh",
            &[
                "--width",
                "128",
                "--image-size",
                "2",
                "--activation",
                "tanh",
                "--init",
                "delta-orthogonal",
                "--sigma-b",
                "0.1",
                "--jacobian-layers",
                "6",
            ],
        ),
    ];
    for (name, case) in cases {
        let out = dir.path().join(name);
        sigprop()
            .args(["run", "--arch", "cnn", "--depth", "6", "--seeds", "12"])
            .args(["--jacobian-samples", "2", "--quiet"])
            .args(case)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        assert_eq!(theory_agrees(&out, name), 4 * 6, "{name}");
        let layers = if name == "relu" { 2 } else { 1 };
        assert_eq!(
            theory_agrees_on(&out, name, &["jac_m1", "jac_var"]),
            2 * layers,
            "{name}"
        );
    }
    let var = theory_and_means(&dir.path().join("relu"), "conv", "jac_var");
    let theory: Vec<f64> = var.iter().map(|v| v.0).filter(|t| t.is_finite()).collect();
    assert_eq!(theory.len(), 2, "{var:?}");
    assert!((theory[0] - 3.0).abs() < 1e-9 && (theory[1] - 6.0).abs() < 1e-9);
}

/// TAT (Zhang et al. 2022): `tat-leaky-relu:eta=0.9` solves the slope with which the whole
/// network's C-map takes orthogonal inputs to eta: 0.4305 at depth 50, 0.5704 at depth 100
/// (`theory --info`). At width 512 and depth 50, orthogonal input pairs reach a last-layer
/// `corr` within 0.02 of eta, and `theory_corr` follows the measurement at every layer
/// within the seeds' interval + 0.02. An
/// eta outside (0, 1), or beyond what ReLU reaches at the depth, exits 2.
#[test]
fn tat_leaky_relu_takes_orthogonal_inputs_to_eta_at_the_last_layer() {
    for (depth, want) in [("50", 0.4305), ("100", 0.5704)] {
        let out = sigprop()
            .args(["theory", "--activation", "tat-leaky-relu:eta=0.9"])
            .args(["--depth", depth, "--info"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let line = text.lines().find(|l| l.starts_with("tat slope")).unwrap();
        let slope: f64 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert!((slope - want).abs() < 1e-3, "{line}");
    }
    // The table and an initializer's variance read the activation solved at --depth.
    for extra in [&[][..], &["--init", "orthogonal", "--info"]] {
        sigprop()
            .args([
                "theory",
                "--activation",
                "tat-leaky-relu:eta=0.9",
                "--depth",
                "50",
            ])
            .args(extra)
            .assert()
            .success();
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tat");
    sigprop()
        .args([
            "run",
            "--activation",
            "tat-leaky-relu:eta=0.9",
            "--init",
            "orthogonal",
        ])
        .args(["--depth", "50", "--width", "512", "--input-corr", "0"])
        .args(["--batch", "64", "--seeds", "8", "--quiet", "--out"])
        .arg(&out)
        .assert()
        .success();
    let corr = theory_and_means(&out, "layer", "corr");
    assert_eq!(corr.len(), 50);
    let (theory, last) = corr[49];
    assert!((last - 0.9).abs() < 0.02, "last-layer corr {last}");
    assert!((theory - 0.9).abs() < 0.01, "theory {theory}");
    // Every layer's theory_corr within the seeds' interval + 0.02 (the c-map's steep early
    // layers carry a finite-width excess of about 2% at width 512).
    assert_eq!(corr_within(&out, "tat", 0.02), 50);
    let m = read_json(&out.join("manifest.json"));
    assert_eq!(
        m["configurations"][0]["net"]["activation"],
        "tat-leaky-relu:eta=0.9"
    );
    let slope = m["configurations"][0]["tat_slope"].as_f64().unwrap();
    assert!((slope - 0.4305).abs() < 1e-3, "{slope}");
    let o = dir.path().join("x");
    let o = o.to_str().unwrap();
    fails_with(
        &["run", "--activation", "tat-leaky-relu:eta=1.5", "--out", o],
        "eta",
    );
    fails_with(
        &[
            "run",
            "--activation",
            "tat-leaky-relu:eta=0.99",
            "--depth",
            "2",
            "--out",
            o,
        ],
        "eta",
    );
    fails_with(
        &[
            "run",
            "--arch",
            "resmlp",
            "--activation",
            "tat-leaky-relu:eta=0.5",
            "--out",
            o,
        ],
        "arch mlp",
    );
    fails_with(
        &[
            "theory",
            "--activation",
            "tat-leaky-relu:eta=0.5",
            "--depth",
            "0",
        ],
        "--depth 0",
    );
}

/// experiments/zhang2022.toml (TAT): at depth 50 the tailored leaky ReLU holds orthogonal
/// inputs at cosine 0.9 (within 0.02) while ReLU merges them past 0.97; both follow their
/// c-map within the seeds' interval + 0.02 at every layer.
#[test]
fn zhang2022_tat_holds_orthogonal_inputs_at_eta_where_relu_merges_them() {
    let (_dir, out) = run_suite("zhang2022");
    let a = out.join("aggregate.csv");
    let mut last = std::collections::HashMap::new();
    let mut checked = 0;
    for r in records(&a) {
        if &r[col(&a, "stat")] != "corr" {
            continue;
        }
        let num = |c: &str| r[col(&a, c)].parse::<f64>().unwrap();
        let (mean, lo, hi, t) = (num("mean"), num("ci95_lo"), num("ci95_hi"), num("theory"));
        let act = r[col(&a, "activation")].to_string();
        assert!(
            (mean - t).abs() <= 0.5 * (hi - lo) + 0.02,
            "{act} layer {}: corr {mean} [{lo}, {hi}] vs theory {t}",
            &r[col(&a, "layer")]
        );
        checked += 1;
        if &r[col(&a, "layer")] == "50" {
            last.insert(act, mean);
        }
    }
    assert_eq!(checked, 2 * 50);
    let tat = last["tat-leaky-relu:eta=0.9"];
    assert!((tat - 0.9).abs() < 0.02, "TAT last-layer corr {tat}");
    assert!(last["relu"] > 0.97, "ReLU last-layer corr {}", last["relu"]);
}

/// DKS (Martens et al. 2021): `dks:activation=tanh` solves `gamma (tanh(alpha x + beta) +
/// delta)` for depth 50 (`theory --info` prints it). With orthogonal weights at width 512
/// the network keeps `q = 1` at every layer, keeps orthogonal inputs orthogonal to the last
/// layer (C(0) = 0), and takes pairs at correlation 0.98 to `1 - zeta (1 - 0.98)` = 0.97 at
/// the last layer (C'(1) = zeta = 1.5 over the network, first order). `theory_corr`, the
/// composed C-map, follows the measured `corr` at every layer within the seeds' interval +
/// 0.02, and `theory_preact_var` is 1. A non-smooth base, a zeta of 1 or below and DKS on
/// a residual network exit 2.
#[test]
fn dks_keeps_orthogonal_inputs_orthogonal_and_near_ones_at_zeta() {
    let out = sigprop()
        .args([
            "theory",
            "--activation",
            "dks:activation=tanh",
            "--depth",
            "50",
        ])
        .arg("--info")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().any(|l| l.starts_with("dks shape")), "{text}");
    let dir = tempfile::tempdir().unwrap();
    for (c0, last_want) in [("0", 0.0), ("0.98", 1.0 - 1.5 * 0.02)] {
        let out = dir.path().join(format!("dks{c0}"));
        sigprop()
            .args([
                "run",
                "--activation",
                "dks:activation=tanh",
                "--init",
                "orthogonal",
            ])
            .args(["--depth", "50", "--width", "512", "--input-corr", c0])
            .args(["--batch", "64", "--seeds", "6", "--quiet", "--out"])
            .arg(&out)
            .assert()
            .success();
        let checked = theory_agrees_on(&out, c0, &["preact_var"]);
        assert_eq!(checked, 50, "{c0}");
        for (t, _) in theory_and_means(&out, "layer", "preact_var") {
            assert!((t - 1.0).abs() < 1e-6, "{c0}: theory q {t}");
        }
        assert_eq!(corr_within(&out, c0, 0.02), 50);
        let (t_last, m_last) = theory_and_means(&out, "layer", "corr")[49];
        assert!((t_last - last_want).abs() < 0.005, "{c0}: theory {t_last}");
        assert!((m_last - last_want).abs() < 0.03, "{c0}: measured {m_last}");
        let m = read_json(&out.join("manifest.json"));
        assert!(
            m["configurations"][0]["dks_shape"]["alpha"]
                .as_f64()
                .unwrap()
                > 0.0
        );
    }
    let o = dir.path().join("x");
    let o = o.to_str().unwrap();
    fails_with(
        &["run", "--activation", "dks:activation=relu", "--out", o],
        "smooth",
    );
    fails_with(
        &[
            "run",
            "--activation",
            "dks:activation=tanh,zeta=1",
            "--out",
            o,
        ],
        "zeta",
    );
    fails_with(
        &["run", "--arch", "resmlp", "--activation", "dks", "--out", o],
        "arch mlp",
    );
}

/// Every `corr` row of `out`'s aggregate within the seeds' interval + `excess` (absolute) of
/// its theory; the number of rows.
fn corr_within(out: &Path, case: &str, excess: f64) -> usize {
    let a = out.join("aggregate.csv");
    let rows: Vec<_> = records(&a)
        .into_iter()
        .filter(|r| &r[col(&a, "stat")] == "corr")
        .collect();
    for r in &rows {
        let num = |c: &str| r[col(&a, c)].parse::<f64>().unwrap();
        let (mean, lo, hi, t) = (num("mean"), num("ci95_lo"), num("ci95_hi"), num("theory"));
        assert!(
            (mean - t).abs() <= 0.5 * (hi - lo) + excess,
            "{case} layer {}: corr {mean} [{lo}, {hi}] vs theory {t}",
            &r[col(&a, "layer")]
        );
    }
    rows.len()
}

/// The theory column of `stat` at `site`, block by block, and the measured means.
fn theory_and_means(out: &Path, site: &str, stat: &str) -> Vec<(f64, f64)> {
    let a = out.join("aggregate.csv");
    records(&a)
        .iter()
        .filter(|r| &r[col(&a, "site")] == site && &r[col(&a, "stat")] == stat)
        .map(|r| {
            let t = r[col(&a, "theory")].parse().unwrap_or(f64::NAN);
            (t, r[col(&a, "mean")].parse().unwrap())
        })
        .collect()
}

/// The pre-LN transformer's stream (Kedia et al. 2024): every site's variance, forward,
/// from the stream mean field with the tokens' covariance (attention copies a shared part
/// into every token, so the next attention passes more). Within the seeds' interval + 2% at
/// every block and site: uniform attention (zero queries, as muP initializes them) at width
/// 128; Gaussian scores at width 512 with 16 tokens, unscaled (the growth accelerates) and
/// with 1/sqrt(L) branches (O(1)); unit branches (one token, linear, LeCun) grow exactly as
/// 1 + l per branch. Causal attention and post-LN have no such theory: columns empty.
#[test]
fn the_pre_ln_transformer_stream_follows_its_mean_field() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, args: &[&str]| -> std::path::PathBuf {
        let out = dir.path().join(name);
        sigprop()
            .args(["run", "--arch", "transformer", "--seeds", "8", "--quiet"])
            .args(args)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        out
    };
    let gelu = [
        "--activation",
        "gelu",
        "--init",
        "xavier-normal",
        "--depth",
        "8",
    ];
    let wide = ["--width", "512", "--seq-len", "16"];
    let scores = run("scores", &[&gelu[..], &wide[..]].concat());
    let scaled = run(
        "scaled",
        &[&gelu[..], &wide[..], &["--branch-scale", "1/sqrt(L)"]].concat(),
    );
    for (out, name) in [(&scores, "scores"), (&scaled, "scaled")] {
        // Six sites, eight blocks, two statistics.
        assert_eq!(theory_agrees_on(out, name, &["preact_var", "act_var"]), 96);
    }
    let zero_queries = [
        "--init-role",
        "query=zeros",
        "--width",
        "128",
        "--seq-len",
        "32",
    ];
    let uniform = run("uniform", &[&gelu[..], &zero_queries[..]].concat());
    assert_eq!(
        theory_agrees_on(&uniform, "uniform", &["preact_var", "act_var"]),
        96
    );
    // Uniform attention at block 1: the mean of 32 independent unit values.
    let attn = theory_and_means(&uniform, "attn", "preact_var");
    assert!((attn[0].0 - 1.0 / 32.0).abs() < 1e-6, "{attn:?}");
    // Unscaled, the stream's growth per block accelerates; with 1/sqrt(L) it stays O(1).
    let grow = theory_and_means(&scores, "out", "preact_var");
    let step = |v: &[(f64, f64)], l: usize, m: bool| {
        let pick = |p: (f64, f64)| if m { p.1 } else { p.0 };
        pick(v[l]) - pick(v[l - 1])
    };
    for m in [false, true] {
        assert!(step(&grow, 7, m) > 1.5 * step(&grow, 1, m), "{grow:?}");
    }
    let bounded = theory_and_means(&scaled, "out", "preact_var");
    assert!(bounded[7].0 < 1.5 && bounded[7].1 < 1.5, "{bounded:?}");
    // Unit branches: 1 + 2l after block l (two branches a block).
    let unit = run(
        "unit",
        &[
            "--depth",
            "16",
            "--width",
            "256",
            "--seq-len",
            "1",
            "--activation",
            "linear",
            "--init",
            "lecun-normal",
        ],
    );
    assert_eq!(
        theory_agrees_on(&unit, "unit", &["preact_var", "act_var"]),
        2 * 6 * 16
    );
    for (l, (t, _)) in theory_and_means(&unit, "out", "preact_var")
        .iter()
        .enumerate()
    {
        // Each branch passes LayerNorm's s / (s + eps): 1 to 1e-5.
        let want = 1.0 + 2.0 * (l + 1) as f64;
        assert!((t - want).abs() < 1e-4 * want, "block {}: {t}", l + 1);
    }
    for (name, extra) in [
        ("causal", &["--causal"][..]),
        ("post", &["--norm-position", "post"]),
    ] {
        let out = run(
            name,
            &[
                &["--depth", "2", "--width", "16", "--seq-len", "4"][..],
                extra,
            ]
            .concat(),
        );
        assert_eq!(theory_agrees_on(&out, name, &["preact_var"]), 0, "{name}");
    }
}

/// The RNN's mean field (Chen, Pennington & Schoenholz 2018): the MLP's recursions over time
/// steps with the recurrent weight at every step and the input's variance added to the
/// bias's, forward and backward, and the Jacobian through time `dh_t / dh_0` with the MLP's
/// free-probability moments. A tanh RNN with a bias (orthogonal `W_hh`) at every step and
/// statistic; ReLU RNNs with He-scaled Gaussian and orthogonal `W_hh`, whose Jacobians keep
/// `jac_m1` at 1 while the variance of the squared singular values grows as `2t` (Gaussian)
/// and `t` (orthogonal): every value within the 12 seeds' interval + 2%.
#[test]
fn rnns_follow_the_recurrent_mean_field_and_their_jacobian_through_time() {
    let dir = tempfile::tempdir().unwrap();
    let tanh = dir.path().join("tanh");
    sigprop()
        .args(["run", "--arch", "rnn", "--depth", "12", "--width", "128"])
        .args(["--activation", "tanh", "--init", "xavier-normal"])
        .args([
            "--sigma-b",
            "0.3",
            "--batch",
            "32",
            "--seeds",
            "12",
            "--quiet",
        ])
        .arg("--out")
        .arg(&tanh)
        .assert()
        .success();
    assert_eq!(theory_agrees(&tanh, "tanh rnn"), 4 * 12);
    let s = tanh.join("summary.csv");
    let chi = records(&s)[0][col(&s, "theory_chi1")]
        .parse::<f64>()
        .unwrap();
    assert!(chi > 0.0 && chi < 1.0, "tanh rnn chi_1 {chi}");

    let mut var10 = Vec::new();
    for (name, hidden) in [
        ("gauss", "he-normal"),
        ("orth", "orthogonal:gain=1.4142135623730951"),
    ] {
        let out = dir.path().join(name);
        sigprop()
            .args(["run", "--arch", "rnn", "--depth", "10", "--width", "256"])
            .args(["--activation", "relu", "--init", "he-normal"])
            .args(["--hidden-init", hidden, "--seeds", "12", "--quiet"])
            .args(["--jacobian-layers", "5,10"])
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        assert_eq!(theory_agrees(&out, name), 4 * 10, "{name}");
        assert_eq!(
            theory_agrees_on(&out, name, &["jac_m1", "jac_var"]),
            4,
            "{name}"
        );
        let a = out.join("aggregate.csv");
        let at10 = |c: &str| -> f64 {
            records(&a)
                .iter()
                .find(|r| &r[col(&a, "stat")] == "jac_var" && &r[col(&a, "layer")] == "10")
                .map(|r| r[col(&a, c)].parse().unwrap())
                .unwrap()
        };
        var10.push((at10("mean"), at10("theory")));
    }
    let ((gauss, gauss_theory), (orth, orth_theory)) = (var10[0], var10[1]);
    assert!((gauss_theory - 20.0).abs() < 1e-9 && (orth_theory - 10.0).abs() < 1e-9);
    assert!(gauss > 1.5 * orth, "Gaussian {gauss} vs orthogonal {orth}");
}

/// Zero-padded convolutions (Xiao et al. 2018): the MLP's recursions pixel by pixel, with
/// the taps that fall outside the image missing, forward and backward. A CNN (ReLU/He,
/// tanh/Xavier with a bias, a 5x5 grouped tanh stack) and a residual CNN (ReLU/He, tanh with
/// 1/sqrt(L) branches): every theory column against 16 seeds within the interval + 2%. At
/// the border a pixel gets fewer taps, so the image-wide variance falls below the MLP's:
/// ReLU/He at 8x8 pixels keeps 0.84 of Var(z) per layer, not 1.
#[test]
fn convolutional_networks_follow_the_pixelwise_mean_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str]); 5] = [
        ("cnn", &["--activation", "relu", "--init", "he-normal"]),
        (
            "cnn",
            &[
                "--activation",
                "tanh",
                "--init",
                "xavier-normal",
                "--sigma-b",
                "0.1",
            ],
        ),
        (
            "cnn",
            &[
                "--activation",
                "tanh",
                "--init",
                "he-uniform",
                "--kernel",
                "5",
                "--groups",
                "4",
            ],
        ),
        ("rescnn", &["--activation", "relu", "--init", "he-normal"]),
        (
            "rescnn",
            &[
                "--activation",
                "tanh",
                "--init",
                "xavier-normal",
                "--branch-scale",
                "1/sqrt(L)",
                "--sigma-b",
                "0.1",
            ],
        ),
    ];
    for (i, (arch, case)) in cases.iter().enumerate() {
        let out = dir.path().join(i.to_string());
        sigprop()
            .args(["run", "--arch", arch, "--width", "32"])
            .args(["--batch", "32", "--seeds", "16", "--quiet"])
            .args(["--depth", if *arch == "cnn" { "10" } else { "8" }])
            .args(*case)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        let rows = theory_agrees(&out, &format!("{arch} {case:?}"));
        // Every layer (block) of every site, four statistics (no weight at `out`).
        let want = if *arch == "cnn" {
            4 * 10
        } else {
            (3 * 4 - 1) * 8
        };
        assert_eq!(rows, want, "{arch} {case:?}");
    }
    let p = stat_means(&dir.path().join("0"), "base", "conv", "preact_var");
    let a = dir.path().join("0/aggregate.csv");
    let theory: Vec<f64> = records(&a)
        .iter()
        .filter(|r| &r[col(&a, "site")] == "conv" && &r[col(&a, "stat")] == "preact_var")
        .map(|r| r[col(&a, "theory")].parse().unwrap())
        .collect();
    assert!((theory[0] - 2.0 * 7.5625 / 9.0).abs() < 1e-12, "{theory:?}");
    assert!(
        theory.windows(2).all(|w| w[1] / w[0] < 0.93),
        "{theory:?} (measured {p:?})"
    );
}

/// Fixup on the residual CNN, the paper's own setting: every branch's last convolution is
/// zero and the others are He-normal times L^(-1/2) (two maps a branch), so every block
/// output is its input exactly while He alone explodes; a branch multiplier of its own is
/// refused.
#[test]
fn fixup_initializes_a_residual_cnn_as_the_identity() {
    let dir = tempfile::tempdir().unwrap();
    let run = |init: &str| {
        let out = dir.path().join(init);
        sigprop()
            .args([
                "run",
                "--arch",
                "rescnn",
                "--activation",
                "relu",
                "--depth",
                "16",
            ])
            .args([
                "--width", "16", "--seeds", "3", "--quiet", "--init", init, "--out",
            ])
            .arg(&out)
            .assert()
            .success();
        out
    };
    let he = run("he-normal");
    assert_eq!(
        &summary_of(&he, "base")[col(&he.join("summary.csv"), "verdict")],
        "exploding"
    );
    let fx = run("fixup");
    assert_eq!(summary_num(&fx, "base", "fwd_ratio"), 1.0);
    assert_eq!(summary_num(&fx, "base", "bwd_ratio"), 1.0);
    let l = fx.join("layers.csv");
    // He for a 3x3 convolution over 16 channels, 2 / 144, times 1/16.
    let inner = 2.0 / 144.0 / 16.0;
    for r in records(&l) {
        let w: f64 = r[col(&l, "weight_var")].parse().unwrap_or(f64::NAN);
        match &r[col(&l, "site")] {
            "branch.1" => assert!((w / inner - 1.0).abs() < 0.15, "inner weight variance {w}"),
            "branch.2" => assert_eq!(w, 0.0),
            _ => {}
        }
    }
    sigprop()
        .args([
            "run",
            "--arch",
            "rescnn",
            "--init",
            "fixup",
            "--branch-scale",
            "rezero",
        ])
        .args(["--out", dir.path().join("bad").to_str().unwrap()])
        .assert()
        .code(2);
}

/// Frankle et al. 2019 on real images (held-out 8x8 digits): iterative magnitude pruning with
/// rewinding to step 20 finds a ticket at 96% sparsity whose held-out loss is below a random
/// mask's of the same sparsity, the intervals over 5 seeds apart, and nearer the dense
/// network's than the random mask's. The flags of the procedure are checked.
#[test]
fn iterative_pruning_with_rewinding_finds_a_winning_ticket_on_held_out_digits() {
    let (dir, out) = run_suite("frankle2019");
    let num = |label: &str, c: &str| summary_num(&out, &format!("base {label}"), c);
    let (dense, ticket, random) = (
        num("dense", "loss_final"),
        num("ticket", "loss_final"),
        num("random-mask", "loss_final"),
    );
    assert!(
        num("ticket", "loss_final_hi") < num("random-mask", "loss_final_lo"),
        "ticket {ticket} vs random mask {random}"
    );
    assert!(
        ticket - dense < 0.5 * (random - dense),
        "dense {dense}, ticket {ticket}, random mask {random}"
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("the last 597 held out"), "{report}");
    assert!(report.contains("of 597 samples"), "{report}");
    let m = read_json(&out.join("manifest.json"));
    let line = m["lottery"][0].as_str().unwrap();
    assert!(
        line.contains("(5 rounds, rewound to step 20)")
            && line.contains("the winning ticket retrains to a lower loss"),
        "{line}"
    );
    assert_eq!(m["train"]["lottery"]["rounds"], 5);
    assert_eq!(m["train"]["eval_samples"], 597);

    let o = dir.path().join("bad");
    let o = o.to_str().unwrap();
    fn train<'a>(o: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["train", "--steps", "5", "--out", o];
        a.extend_from_slice(extra);
        a
    }
    fails_with(&train(o, &["--lottery-rounds", "3"]), "needs --lottery");
    fails_with(
        &train(o, &["--lottery", "0.5", "--lottery-rounds", "0"]),
        "rounds > 0",
    );
    fails_with(
        &train(o, &["--lottery", "0.5", "--lottery-rewind", "5"]),
        "before the last (5)",
    );
    fails_with(&train(o, &["--holdout", "10"]), "task teacher");
    let digits = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/data/digits.csv");
    let digits = digits.to_str().unwrap();
    fails_with(
        &train(
            o,
            &[
                "--data",
                digits,
                "--widths",
                "64,32",
                "--depth",
                "1",
                "--holdout",
                "1797",
            ],
        ),
        "fewer rows than the data's 1797",
    );
}

/// Lee et al. 2020, trainability (at width 128): the dense orthogonal tanh network of depth
/// 32 and 30% random pruning train in 300 SGD steps; from 60% random pruning on, and with
/// every method at 90%, the loss ends where it started, within 1%.
#[test]
fn pruning_past_the_isometry_leaves_a_deep_tanh_network_untrainable() {
    let (_dir, out) = run_suite_scaled("lee2020-train", &[("width = 256", "width = 128")]);
    let s = out.join("summary.csv");
    let rows = records(&s);
    assert_eq!(rows.len(), 8);
    for r in &rows {
        let label = &r[col(&s, "label")];
        let verdict = &r[col(&s, "verdict")];
        let ratio: f64 = r[col(&s, "loss_ratio")].parse().unwrap();
        if label == "none" || label == "random:sparsity=0.3" {
            assert_eq!(verdict, "trains", "{label}: loss ratio {ratio}");
            assert!(ratio < 0.35, "{label}: loss ratio {ratio}");
        } else {
            assert_eq!(verdict, "stalls", "{label}: loss ratio {ratio}");
            assert!((ratio - 1.0).abs() < 0.01, "{label}: loss ratio {ratio}");
        }
    }
}

/// Trainability (four sigma_w^2 and ReLU depths 10 and 30 of the suite): He and LSUV train
/// ReLU networks at depths 10 and 30 while Xavier and orthogonal, which halve the variance
/// per layer, stall; and on tanh (sigma_b^2 = 0.05) a network trains when its depth is well
/// below 6 xi_c and does not when well above it (Schoenholz et al. 2017, figure 5): every
/// cell outside 0.75 to 1.25 times the line agrees.
#[test]
fn networks_train_below_six_correlation_depths_and_not_above() {
    let (_dir, out) = run_suite_scaled(
        "trainability",
        &[
            ("depth = [10, 30, 100]", "depth = [10, 30]"),
            (
                "sigma-w2 = [0.5, 1.0, 1.5, 1.76, 2.0, 2.5, 3.0, 4.0]",
                "sigma-w2 = [0.5, 1.0, 1.76, 4.0]",
            ),
        ],
    );
    let s = out.join("summary.csv");
    let (mut below, mut above) = (0, 0);
    for r in records(&s) {
        let label = r[col(&s, "label")].to_string();
        let verdict = &r[col(&s, "verdict")];
        let parts: Vec<&str> = label.split(" / ").collect();
        if parts[0] == "relu" {
            let want = if ["he-normal", "lsuv"].contains(&parts[1]) {
                "trains"
            } else {
                "stalls"
            };
            assert_eq!(verdict, want, "{label}");
            continue;
        }
        let (w2, depth): (f64, f64) = (parts[2].parse().unwrap(), parts[3].parse().unwrap());
        let line =
            6.0 * sigprop_theory::MeanField::new(sigprop_init::Activation::Tanh, w2, 0.05).xi_c();
        if depth < 0.75 * line {
            assert_eq!(verdict, "trains", "{label}: depth {depth}, 6 xi_c {line}");
            below += 1;
        } else if depth > 1.25 * line {
            assert_ne!(verdict, "trains", "{label}: depth {depth}, 6 xi_c {line}");
            above += 1;
        }
    }
    // Both sides of the line are populated: 11 cells below, 7 above.
    assert_eq!((below, above), (11, 7));
}

/// The residual c-map on resmlp (`--input-corr`): skip and branch are uncorrelated, so the
/// pair's covariance adds like the variance. tanh/Xavier with a bias and unit branches,
/// ReLU/He with 1/sqrt(L) branches, and tanh in the chaotic phase without skips: every
/// site's `corr` against 6 seeds within the interval + 2%. Without `--input-corr` there is
/// no prediction to make.
#[test]
fn the_residual_c_map_predicts_how_input_pairs_decorrelate_on_resmlp() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], usize); 3] = [
        (
            &[
                "--activation",
                "tanh",
                "--init",
                "xavier-normal",
                "--sigma-b",
                "0.2",
                "--depth",
                "10",
                "--input-corr",
                "0.5",
            ],
            30,
        ),
        (
            &[
                "--activation",
                "relu",
                "--init",
                "he-normal",
                "--branch-scale",
                "1/sqrt(L)",
                "--depth",
                "16",
                "--input-corr",
                "0.2",
            ],
            48,
        ),
        (
            &[
                "--activation",
                "tanh",
                "--init",
                "variance-scaling:scale=2.5",
                "--shortcut",
                "none",
                "--depth",
                "8",
                "--input-corr",
                "0.9",
            ],
            24,
        ),
    ];
    for (i, (args, sites)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("c{i}"));
        sigprop()
            .args(["run", "--arch", "resmlp", "--width", "512", "--seeds", "6"])
            .args(*args)
            .args(["--quiet", "--out"])
            .arg(&out)
            .assert()
            .success();
        let checked = theory_agrees_on(&out, &format!("{args:?}"), &["corr"]);
        // branch.1, branch.2 and out of every block; the scaled branch has no prediction.
        assert_eq!(checked, *sites, "{args:?}");
    }
    let out = dir.path().join("plain");
    sigprop()
        .args(["run", "--arch", "resmlp", "--width", "32", "--depth", "3"])
        .args(["--seeds", "2", "--quiet", "--out"])
        .arg(&out)
        .assert()
        .success();
    let a = out.join("aggregate.csv");
    assert!(
        records(&a)
            .iter()
            .all(|r| &r[col(&a, "stat")] != "corr" || r[col(&a, "theory")].is_empty())
    );
}

/// experiments/blake2024.toml (its transformer at width 128 and 32 tokens here): u-muP's
/// unit-scale audit at initialization. Every site of the residual MLP has `preact_var`,
/// `act_var`, `grad_var` and `weight_var` within 1 +- 0.25 at 4, 16 and 64 blocks. The
/// transformer's first block forward does too; later attention outputs read `s^2 ((1 -
/// c)/T + c)`,
/// `s` u-muP's attention scale and `c` the incoming stream's `token_cos`, within 10%, and
/// the stream collapses toward one direction.
#[test]
fn blake2024_umup_is_unit_scaled_where_tokens_are_independent() {
    let (_guard, out) = run_suite_scaled(
        "blake2024",
        &[
            ("width = 256", "width = 128"),
            ("seq-len = 64", "seq-len = 32"),
        ],
    );
    let a = out.join("aggregate.csv");
    let rows = records(&a);
    let get = |r: &csv::StringRecord, c: &str| r[col(&a, c)].to_string();
    let means: std::collections::HashMap<(String, String, String, String), f64> = rows
        .iter()
        .map(|r| {
            let key = (
                get(r, "label"),
                get(r, "site"),
                get(r, "layer"),
                get(r, "stat"),
            );
            (key, get(r, "mean").parse().unwrap_or(f64::NAN))
        })
        .collect();
    let mean = |label: &str, site: &str, layer: usize, stat: &str| -> f64 {
        let key = (label.into(), site.into(), layer.to_string(), stat.into());
        *means
            .get(&key)
            .unwrap_or_else(|| panic!("{label} {site} {layer} {stat}"))
    };
    let unit = ["preact_var", "act_var", "grad_var", "weight_var"];
    let mut checked = 0;
    for r in &rows {
        let (label, stat) = (get(r, "label"), get(r, "stat"));
        // A site without a weight has no weight_var (NaN).
        let Some(m) = get(r, "mean").parse::<f64>().ok().filter(|m| m.is_finite()) else {
            continue;
        };
        // The transformer's first block forward (its backward carries the later blocks').
        let first_block =
            label.starts_with("transformer") && get(r, "layer") == "1" && stat != "grad_var";
        if unit.contains(&stat.as_str()) && (label.starts_with("resmlp") || first_block) {
            assert!(
                (0.75..=1.25).contains(&m),
                "{label} {stat} {}: {m}",
                get(r, "site")
            );
            checked += 1;
        }
    }
    // resmlp: 4 + 16 + 64 blocks of branch.1, branch.2 (4 stats), branch and out (3).
    assert!(checked >= 84 * 14, "{checked}");
    let (t, dh) = (32.0f64, 32.0f64);
    let alpha = 1.0 / (1.0 + 4.0 * dh);
    let s2 = t.powf(1.0 - alpha);
    for depth in [4, 16, 64] {
        let label = format!("transformer / 128 / 32 / {depth}");
        for k in 2..=depth {
            let c = mean(&label, "out", k - 1, "token_cos");
            let want = s2 * ((1.0 - c) / t + c);
            let got = mean(&label, "attn", k, "preact_var");
            assert!(
                (got / want - 1.0).abs() < 0.1,
                "{label} block {k}: {got} vs {want}"
            );
        }
        let c = mean(&label, "out", depth, "token_cos");
        assert!(c > 0.8, "{label}: token_cos {c}");
    }
    let s = out.join("summary.csv");
    for r in records(&s) {
        let unit_scale: f64 = r[col(&s, "unit_scale")].parse().unwrap();
        if r[col(&s, "label")].starts_with("resmlp") {
            assert!(unit_scale < (1.0f64 / 0.75).ln(), "{unit_scale}");
        } else {
            assert!(unit_scale > 1.0, "{unit_scale}");
        }
    }
}

/// `--param umup` is for residual networks with N(0, 1) weights, trained with Adam, and
/// its backward pass is not a Jacobian: each refusal exits 2 with one line.
#[test]
fn umup_refuses_what_it_cannot_be() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let out = out.to_str().unwrap();
    fails_with(
        &["run", "--param", "umup", "--out", out],
        "residual networks",
    );
    let role = [
        "run",
        "--arch",
        "transformer",
        "--param",
        "umup",
        "--out",
        out,
    ];
    fails_with(
        &[&role[..], &["--init-role", "query=xavier-normal"]].concat(),
        "init-role",
    );
    let cases: [(&str, &[&str], &str); 4] = [
        ("run", &["--init", "he-normal"], "--init he-normal"),
        ("run", &["--jacobian"], "unit-scaled"),
        ("train", &["--optimizer", "sgd"], "adam"),
        ("train", &["--inits", "he-normal"], "N(0, 1)"),
    ];
    for (cmd, extra, needle) in cases {
        let mut args = vec![cmd, "--arch", "resmlp", "--param", "umup", "--out", out];
        args.extend(extra);
        fails_with(&args, needle);
    }
}

/// u-muP's depth coordinate check (GELU resmlp, width 64, 4 to 64 blocks, Adam at 0.1,
/// 8 seeds): every hidden site's size `h` and update `dh` is `flat` at every step, its
/// slope within +-0.1 (its `L^-1/2` rule for the blocks' Adam steps, with branches of
/// `(L + k)^-1/2`).
#[test]
fn umup_depth_coord_check_is_flat_at_every_hidden_site() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c");
    sigprop()
        .args(["coord-check", "--arch", "resmlp", "--activation", "gelu"])
        .args([
            "--depths",
            "4,8,16,32,64",
            "--width",
            "64",
            "--params",
            "umup",
        ])
        .args([
            "--optimizer",
            "adam",
            "--lr",
            "0.1",
            "--seeds",
            "8",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let fit = out.join("coord_fit.csv");
    let mut checked = 0;
    for r in records(&fit) {
        if &r[col(&fit, "site")] == "readout" {
            continue;
        }
        let slope: f64 = r[col(&fit, "slope")].parse().unwrap();
        let case = format!(
            "{} {} {}",
            &r[col(&fit, "quantity")],
            &r[col(&fit, "step")],
            &r[col(&fit, "layer")]
        );
        assert_eq!(&r[col(&fit, "verdict")], "flat", "{case}: {slope}");
        assert!(slope.abs() < 0.1, "{case}: {slope}");
        checked += 1;
    }
    // h at steps 0 to 5 and dh at 1 to 5, at the four block positions.
    assert_eq!(checked, 44);
}

/// The transformer's modern parts, each against an exact fact or a clear contrast (width
/// 64, 32 tokens, 4 seeds):
/// - a gated MLP's product has the variance of its factors' product, `E[g^2] Var(up)`,
///   with `Var(up)` the gate's pre-activation variance (same fan-in, same initializer);
/// - `--final-norm`'s site `final` is each token RMS-normalized: second moment 1;
/// - with weights of std 0.5, attention saturates (entropy below 1 nat of `ln 32 =
///   3.47`), and `--qk-norm` keeps it near uniform (above 2.5), intervals apart.
#[test]
fn transformer_gated_mlp_final_norm_and_qk_norm_do_what_they_say() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        sigprop()
            .args([
                "run",
                "--arch",
                "transformer",
                "--width",
                "64",
                "--seq-len",
                "32",
            ])
            .args(["--depth", "2", "--seeds", "4", "--quiet"])
            .args(extra)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        let a = out.join("aggregate.csv");
        records(&a)
            .into_iter()
            .map(|r| {
                let key = format!(
                    "{} {} {}",
                    &r[col(&a, "site")],
                    &r[col(&a, "layer")],
                    &r[col(&a, "stat")]
                );
                let v = |c: &str| r[col(&a, c)].parse::<f64>().unwrap_or(f64::NAN);
                (key, [v("mean"), v("ci95_lo"), v("ci95_hi")])
            })
            .collect::<std::collections::HashMap<_, _>>()
    };
    let m = run(
        "llama",
        &[
            "--mlp",
            "swiglu",
            "--final-norm",
            "--norm",
            "rms",
            "--init",
            "xavier-normal",
        ],
    );
    let at = |k: &str| m.get(k).unwrap_or_else(|| panic!("{k}"))[0];
    for layer in [1, 2] {
        let gate2 = at(&format!("mlp.gate {layer} act_var"))
            + at(&format!("mlp.gate {layer} act_mean")).powi(2);
        let want = gate2 * at(&format!("mlp.gate {layer} preact_var"));
        let got = at(&format!("mlp.hidden {layer} preact_var"));
        assert!(
            (got / want - 1.0).abs() < 0.05,
            "layer {layer}: {got} vs {want}"
        );
    }
    let fin = at("final 2 preact_var") + at("final 2 preact_mean").powi(2);
    assert!((fin - 1.0).abs() < 1e-3, "{fin}");
    let wide = ["--init", "normal:std=0.5"];
    let plain = run("plain", &wide);
    let normed = run("qk", &[&wide[..], &["--qk-norm"]].concat());
    for layer in [1, 2] {
        let k = format!("attn {layer} attn_entropy");
        let (p, q) = (plain[&k], normed[&k]);
        assert!(p[2] < 1.0 && q[1] > 2.5, "{k}: {p:?} vs {q:?}");
    }
    // RoPE turns the same tokens' scores by their positions: with correlated tokens
    // (cosine 0.9) the attention of plain, position-free scores is nearly uniform, and
    // rotary positions make it favour near keys: lower entropy.
    let corr = ["--input-corr", "0.9", "--init", "xavier-normal"];
    let flat = run("flat", &corr);
    let rope = run("rope", &[&corr[..], &["--positions", "rope"]].concat());
    let k = "attn 1 attn_entropy";
    assert!(rope[k][2] < flat[k][1], "{:?} vs {:?}", rope[k], flat[k]);
    fails_with(
        &[
            "run",
            "--arch",
            "transformer",
            "--width",
            "12",
            "--positions",
            "rope",
        ],
        "even head size",
    );
}

/// `(mean, ci95_lo, ci95_hi)` of `stat` at `site` of block `layer` for the configuration
/// labelled `label` in `out`'s aggregate.csv.
fn site_stat(out: &Path, label: &str, site: &str, layer: usize, stat: &str) -> (f64, f64, f64) {
    let a = out.join("aggregate.csv");
    let row = records(&a)
        .into_iter()
        .find(|r| {
            &r[col(&a, "label")] == label
                && &r[col(&a, "site")] == site
                && r[col(&a, "layer")] == *layer.to_string()
                && &r[col(&a, "stat")] == stat
        })
        .unwrap_or_else(|| panic!("{label}: no {stat} at {site} {layer}"));
    let num = |c: &str| row[col(&a, c)].parse::<f64>().unwrap();
    (num("mean"), num("ci95_lo"), num("ci95_hi"))
}

/// experiments/radford2019.toml (width 64, 16 tokens, a vocabulary of 1000 here): GPT-2's
/// tables hold the embedded tokens at 2 x 0.02^2, the tied head's logits have variance
/// `width x 0.02^2` behind the final LayerNorm, and GPT-2's blocks keep the stream small
/// and stable where He's grow it as a power of depth and align the tokens.
#[test]
fn radford2019_gpt2_blocks_stay_small_where_he_grows_the_stream() {
    let (_guard, out) = run_suite_scaled(
        "radford2019",
        &[
            ("embedding = 50257", "embedding = 1000"),
            ("width = 256", "width = 64"),
            ("seq-len = 64", "seq-len = 16"),
        ],
    );
    for depth in [12, 48] {
        for init in ["gpt2", "he-normal"] {
            let label = format!("{depth} / {init}");
            // 1024 table entries behind each token's variance: sd about 3%, 4 seeds.
            let (embed, _, _) = site_stat(&out, &label, "embed", 1, "preact_var");
            assert!((embed / 8e-4 - 1.0).abs() < 0.1, "{label}: embed {embed}");
            // |final|^2 = 64 exactly (LayerNorm), over 64000 table entries of 4e-4.
            let (logits, _, _) = site_stat(&out, &label, "logits", depth, "preact_var");
            assert!(
                (logits / (64.0 * 4e-4) - 1.0).abs() < 0.05,
                "{label}: logits {logits}"
            );
            let (fin, _, _) = site_stat(&out, &label, "final", depth, "preact_var");
            assert!((fin - 1.0).abs() < 1e-2, "{label}: final {fin}");
        }
        let gpt2 = format!("{depth} / gpt2");
        let he = format!("{depth} / he-normal");
        let (small, _, _) = site_stat(&out, &gpt2, "out", depth, "preact_var");
        let (grown, _, _) = site_stat(&out, &he, "out", depth, "preact_var");
        assert!(
            small < 0.05 && grown > 10.0,
            "{depth}: gpt2 {small}, he {grown}"
        );
        let (_, _, hi) = site_stat(&out, &gpt2, "out", depth, "token_cos");
        let (_, lo, _) = site_stat(&out, &he, "out", depth, "token_cos");
        assert!(hi < lo, "{depth}: token_cos gpt2 to {hi}, he from {lo}");
        assert!(
            verdict_of(&out, &gpt2).starts_with("stable"),
            "{}",
            verdict_of(&out, &gpt2)
        );
        assert!(
            verdict_of(&out, &he).starts_with("critical"),
            "{}",
            verdict_of(&out, &he)
        );
    }
}

/// experiments/touvron2023.toml (width 64, 4 heads, 32 tokens, a vocabulary of 1000 here).
/// The issue's rank collapse: a LLaMA stack (pre-RMSNorm, RoPE, SwiGLU, QK-norm) of 24
/// blocks keeps the last block's token_cos below that of the same stack without skips,
/// seed intervals apart. The LLaMA grid with grouped-query attention runs, its tables at
/// 0.02^2.
#[test]
fn touvron2023_llama_skips_keep_the_tokens_apart_and_without_them_they_merge() {
    let (_guard, out) = run_suite_scaled(
        "touvron2023",
        &[
            ("embedding = 32000", "embedding = 1000"),
            ("width = 256", "width = 64"),
            ("heads = 8", "heads = 4"),
            ("seq-len = 64", "seq-len = 32"),
        ],
    );
    let (skips, _, skips_hi) =
        site_stat(&out, "qk-norm / 24 / 8 / identity", "out", 24, "token_cos");
    let (merged, merged_lo, _) = site_stat(&out, "qk-norm / 24 / 8 / none", "out", 24, "token_cos");
    assert!(
        skips_hi < merged_lo,
        "with skips {skips} (to {skips_hi}), without {merged} (from {merged_lo})"
    );
    assert!(skips < 0.1 && merged > 0.9, "{skips} vs {merged}");
    assert!(verdict_of(&out, "qk-norm / 24 / 8 / none").starts_with("collapsed"));
    assert!(verdict_of(&out, "qk-norm / 24 / 8 / identity").starts_with("stable"));
    // Without skips each RMSNorm divides a branch of variance ~1e-3 (0.02 weights): the
    // first block's gradient is orders of magnitude above the skipped stack's.
    let (g_none, _, _) = site_stat(&out, "qk-norm / 24 / 8 / none", "out", 1, "grad_var");
    let (g_skip, _, _) = site_stat(&out, "qk-norm / 24 / 8 / identity", "out", 1, "grad_var");
    assert!(g_none > 1e6 * g_skip, "{g_none} vs {g_skip}");
    // The LLaMA grid: the causal attention's branch outgrows the 0.02 tables, so the
    // stream grows with depth and its tokens align, intervals apart.
    let (s8, _, _) = site_stat(&out, "1000 / 2 / 8 / 4", "out", 8, "preact_var");
    let (s32, _, _) = site_stat(&out, "1000 / 2 / 32 / 4", "out", 32, "preact_var");
    assert!(s32 > 3.0 * s8, "{s8} -> {s32}");
    let (_, _, c8_hi) = site_stat(&out, "1000 / 2 / 8 / 4", "out", 8, "token_cos");
    let (_, c32_lo, _) = site_stat(&out, "1000 / 2 / 32 / 4", "out", 32, "token_cos");
    assert!(
        c8_hi < c32_lo,
        "token_cos to {c8_hi} at 8 blocks, from {c32_lo} at 32"
    );
    for depth in [8, 32] {
        let label = format!("1000 / 2 / {depth} / 4");
        let (embed, _, _) = site_stat(&out, &label, "embed", 1, "preact_var");
        assert!((embed / 4e-4 - 1.0).abs() < 0.1, "{label}: embed {embed}");
        // RMSNorm: a second moment of 1, so a variance of at most 1.
        let (fin, _, _) = site_stat(&out, &label, "final", depth, "preact_var");
        assert!(fin <= 1.0 + 1e-3 && fin > 0.9, "{label}: final {fin}");
    }
}

/// experiments/dosovitskiy2021.toml (width 64, 16 tokens here): timm's N(0, 0.02^2) ViT
/// blocks leave the patch tokens nearly as they came (the stream within [1, 2], tokens
/// independent), where Xavier's grow the stream and align the tokens, intervals apart.
#[test]
fn dosovitskiy2021_small_vit_weights_keep_the_patches_independent() {
    let (_guard, out) = run_suite_scaled(
        "dosovitskiy2021",
        &[
            ("width = 256", "width = 64"),
            ("seq-len = 64", "seq-len = 16"),
        ],
    );
    for depth in [12, 48] {
        let small = format!("{depth} / normal:std=0.02");
        let xavier = format!("{depth} / xavier-normal");
        // Unit Gaussian patches plus the 0.02 positions.
        let (embed, _, _) = site_stat(&out, &small, "embed", 1, "preact_var");
        assert!((embed - 1.0).abs() < 0.05, "{small}: embed {embed}");
        let (stream, _, _) = site_stat(&out, &small, "out", depth, "preact_var");
        assert!((1.0..2.0).contains(&stream), "{small}: stream {stream}");
        let (cos, _, hi) = site_stat(&out, &small, "out", depth, "token_cos");
        let (xcos, lo, _) = site_stat(&out, &xavier, "out", depth, "token_cos");
        assert!(
            cos < 0.1 && hi < lo,
            "{depth}: {cos} (to {hi}) vs xavier {xcos} (from {lo})"
        );
        let (grown, _, _) = site_stat(&out, &xavier, "out", depth, "preact_var");
        assert!(grown > 2.0 * stream, "{depth}: xavier {grown} vs {stream}");
    }
}

/// The modern transformer parts refuse, with one line each, what they cannot be.
#[test]
fn embeddings_and_grouped_query_attention_refuse_what_they_cannot_be() {
    let run = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "run",
            "--arch",
            "transformer",
            "--depth",
            "2",
            "--width",
            "32",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    for (extra, needle) in [
        (
            &["--kv-heads", "3"][..],
            "kv-heads=3 is not allowed; expected 0 or a divisor of heads 4",
        ),
        (
            &["--tie-unembedding"][..],
            "tie-unembedding with --embedding VOCAB",
        ),
        (
            &["--embedding", "100", "--input-corr", "0.5"][..],
            "0 with --embedding",
        ),
        (
            &["--embedding", "100", "--jacobian"][..],
            "a network fed features, not token ids",
        ),
        (
            &[
                "--embedding",
                "100",
                "--tie-unembedding",
                "--loss",
                "cross-entropy",
            ][..],
            "projection or mse with tie-unembedding",
        ),
        (
            &["--embedding", "100", "--param", "umup"][..],
            "umup without --embedding",
        ),
        (
            &["--positions", "learned", "--param", "umup"][..],
            "umup without --embedding",
        ),
        (&["--embedding", "16777217"][..], "at most 2^24"),
        (
            &["--positions", "absolute"][..],
            "one of: none, learned, rope",
        ),
        (
            &["--init-role", "embedding=normal"][..],
            "embedding only with --embedding VOCAB",
        ),
        (
            &["--init-role", "position=normal"][..],
            "position only with --positions learned",
        ),
    ] {
        let args = run(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails_with(&args, needle);
    }
    fails_with(
        &[
            "train",
            "--arch",
            "transformer",
            "--depth",
            "2",
            "--width",
            "32",
            "--embedding",
            "100",
        ],
        "embedding=100 is not allowed; expected 0 for training",
    );
}

/// experiments/mup-coord-transformer.toml: the issue's muP on the transformer. Widths 128
/// to 1024, 3 Adam steps, 8 seeds: under muP (1/d attention logits) every hidden site's
/// `mean |h|` slope against width is within 0.1 of flat at every step (and the update's
/// within 0.15); the standard parametrization's update grows with width (slope > 0.2) at
/// every hidden site from step 2, and its size does at step 3 at every site but the first
/// block's `mlp.hidden`, whose size is still its initial one.
#[test]
fn mup_coord_transformer_stays_flat_where_standard_grows() {
    let (_guard, out) = run_suite("mup-coord-transformer");
    let fit = out.join("coord_fit.csv");
    let rows = records(&fit);
    let mut checked = 0;
    for r in &rows {
        let (param, q, step, site) = (
            &r[col(&fit, "param")],
            &r[col(&fit, "quantity")],
            r[col(&fit, "step")].parse::<usize>().unwrap(),
            format!("{}.{}", &r[col(&fit, "site")], &r[col(&fit, "layer")]),
        );
        if site.starts_with("readout") {
            continue;
        }
        let slope: f64 = r[col(&fit, "slope")].parse().unwrap();
        match (param, q) {
            ("mup", "h") => assert!(slope.abs() <= 0.1, "mup h step {step} {site}: {slope}"),
            ("mup", "dh") => assert!(slope.abs() <= 0.15, "mup dh step {step} {site}: {slope}"),
            ("standard", "dh") if step >= 2 => {
                assert!(slope > 0.2, "standard dh step {step} {site}: {slope}")
            }
            ("standard", "h") if step == 3 && site != "mlp.hidden.1" => {
                assert!(slope > 0.2, "standard h step {step} {site}: {slope}")
            }
            _ => continue,
        }
        checked += 1;
    }
    // 12 hidden sites: muP h at 4 steps and dh at 3, standard dh at 2 and h at 1 (11).
    assert_eq!(checked, 12 * 4 + 12 * 3 + 12 * 2 + 11, "{checked}");
    // muP's readout: drawn with variance 1/(features m), its output at step 0 shrinks as
    // m^(-1/2) (the interval holds -0.5), and its update stays flat.
    let readout = |q: &str, step: &str, c: &str| -> f64 {
        rows.iter()
            .find(|r| {
                &r[col(&fit, "param")] == "mup"
                    && &r[col(&fit, "quantity")] == q
                    && &r[col(&fit, "step")] == step
                    && &r[col(&fit, "site")] == "readout"
            })
            .unwrap()[col(&fit, c)]
        .parse()
        .unwrap()
    };
    let (lo, hi) = (readout("h", "0", "slope_lo"), readout("h", "0", "slope_hi"));
    assert!(lo <= -0.5 && -0.5 <= hi, "readout at step 0: [{lo}, {hi}]");
    for step in ["1", "2", "3"] {
        let s = readout("dh", step, "slope");
        assert!(s.abs() <= 0.15, "readout dh step {step}: {s}");
    }
    // muP sets the 1/d logits, and refuses the 1/sqrt(d) ones.
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"score-scale\": \"1/d\""), "{manifest}");
    fails_with(
        &[
            "train",
            "--arch",
            "transformer",
            "--depth",
            "1",
            "--width",
            "32",
            "--param",
            "mup",
            "--score-scale",
            "1/sqrt(d)",
        ],
        "--score-scale 1/sqrt(d): --param mup sets the attention logits",
    );
    fails_with(
        &[
            "run",
            "--arch",
            "transformer",
            "--depth",
            "1",
            "--width",
            "32",
            "--score-scale",
            "1/e",
        ],
        "one of: 1/sqrt(d), 1/d",
    );
}

/// IDInit (Pan et al. 2025) on a square residual stack: the padded identity inside each
/// branch and 0 where the branch writes its stream, so every block starts as the identity
/// and every singular value of the input-output Jacobian is 1 to 1e-5, at every sample and
/// seed; a convolution is refused in one line.
#[test]
fn idinit_starts_a_residual_stack_with_every_jacobian_singular_value_one() {
    let dir = tempfile::tempdir().unwrap();
    // ZerO (`zero-hadamard`) zeroes the same maps and starts the stack alike.
    for init in ["idinit", "zero-hadamard"] {
        let out = dir.path().join(init);
        sigprop()
            .args([
                "run",
                "--arch",
                "resmlp",
                "--init",
                init,
                "--activation",
                "tanh",
                "--depth",
                "16",
                "--width",
                "64",
                "--jacobian",
                "--seeds",
                "2",
                "--quiet",
                "--out",
            ])
            .arg(&out)
            .assert()
            .success();
        let s = out.join("spectrum.csv");
        let rows = records(&s);
        // 2 seeds x 8 samples x 64 singular values.
        assert_eq!(rows.len(), 2 * 8 * 64);
        for r in &rows {
            let v: f64 = r[col(&s, "singular_value")].parse().unwrap();
            assert!((v - 1.0).abs() <= 1e-5, "{init}: {v}");
        }
    }
    fails_with(
        &[
            "run", "--arch", "cnn", "--init", "idinit", "--depth", "2", "--width", "8",
        ],
        "identity is for 2-D linear weights; use dirac for convolutions",
    );
}

/// Grouped-query attention keeps the stream's mean field: one key-value head serving four
/// query heads (pre-LN, GELU, Xavier, 6 blocks of width 128), every `attn` and `out`
/// variance within the seeds' interval + 2% of the theory column.
#[test]
fn grouped_query_attention_follows_the_stream_theory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gqa");
    sigprop()
        .args([
            "run",
            "--arch",
            "transformer",
            "--kv-heads",
            "1",
            "--heads",
            "4",
            "--init",
            "xavier-normal",
            "--activation",
            "gelu",
            "--depth",
            "6",
            "--width",
            "128",
            "--seq-len",
            "16",
            "--seeds",
            "6",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let a = out.join("aggregate.csv");
    let mut checked = 0;
    for r in records(&a) {
        let site = &r[col(&a, "site")];
        if !(site == "attn" || site == "out") || &r[col(&a, "stat")] != "preact_var" {
            continue;
        }
        let num = |c: &str| r[col(&a, c)].parse::<f64>().unwrap();
        let (lo, hi, theory) = (num("ci95_lo"), num("ci95_hi"), num("theory"));
        assert!(
            theory >= lo / 1.02 && theory <= hi * 1.02,
            "{site} {}: theory {theory} outside [{lo}, {hi}]",
            &r[col(&a, "layer")]
        );
        checked += 1;
    }
    assert_eq!(checked, 12);
}

/// experiments/micikevicius2018.toml (the tanh MLP at width 128, the transformer at width
/// 64 on 16 tokens here; the loss-scale grid as it is): one rounding's relative error is
/// at most the unit roundoff u (bf16 2^-8, f16 2^-11), so the first layer's rel_err is of
/// order u and bf16's is f16's times 2^3, the ratio of their roundoffs; the error grows
/// with depth forward and the gradient's backward. The linear MLP with sigma_w^2 = 0.5
/// loses gradient entries below f16's smallest normal without a loss scale, and none at
/// any site with a dynamic one, which leaves the forward pass as it was.
#[test]
fn micikevicius2018_rounding_follows_the_unit_roundoff_and_loss_scaling_stops_underflow() {
    let (_guard, out) = run_suite_scaled(
        "micikevicius2018",
        &[
            ("width = 512", "width = 128"),
            ("batch = 128", "batch = 64"),
            ("width = 256 # 4 heads of 64", "width = 64"),
            ("seq-len = 64", "seq-len = 16"),
            ("depth = [24, 128]", "depth = [6, 24]"),
        ],
    );
    let (u_bf16, u_f16) = (2f64.powi(-8), 2f64.powi(-11));
    let tanh = |d: &str| format!("mlp / tanh / lecun-normal / 64 / 128 / 64 / {d}");
    let (b1, _, _) = site_stat(&out, &tanh("bf16"), "layer", 1, "rel_err");
    let (f1, _, _) = site_stat(&out, &tanh("f16"), "layer", 1, "rel_err");
    let (b64, _, _) = site_stat(&out, &tanh("bf16"), "layer", 64, "rel_err");
    assert!(b1 > u_bf16 / 4.0 && b1 < u_bf16, "bf16 {}", b1 / u_bf16);
    assert!(f1 > u_f16 / 4.0 && f1 < u_f16, "f16 {}", f1 / u_f16);
    assert!(b1 / f1 > 6.0 && b1 / f1 < 10.0, "{b1} / {f1}");
    assert!(b64 > 4.0 * b1, "{b1} -> {b64}");
    let (g1, _, _) = site_stat(&out, &tanh("bf16"), "layer", 1, "grad_rel_err");
    let (g64, _, _) = site_stat(&out, &tanh("bf16"), "layer", 64, "grad_rel_err");
    assert!(g1 > 4.0 * g64, "{g64} -> {g1}");

    let small = |s: &str| {
        format!(
            "mlp / linear / variance-scaling:scale=0.5,distribution=normal / 12 / 256 / 64 / f16 / {s}"
        )
    };
    let (_, lo, _) = site_stat(&out, &small("off"), "layer", 1, "grad_underflow_frac");
    assert!(lo > 0.0, "no underflow without a loss scale: {lo}");
    for layer in 1..=12 {
        let (mean, _, hi) = site_stat(
            &out,
            &small("dynamic"),
            "layer",
            layer,
            "grad_underflow_frac",
        );
        assert_eq!((mean, hi), (0.0, 0.0), "layer {layer}");
        for stat in ["underflow_frac", "rel_err", "preact_var"] {
            let off = site_stat(&out, &small("off"), "layer", layer, stat);
            let on = site_stat(&out, &small("dynamic"), "layer", layer, stat);
            assert_eq!(off, on, "{stat} at {layer}: the forward pass is the same");
        }
    }
    // The scale settled where no gradient (a bias's, a sum over the batch, first) overflows:
    // a power of two below 2^16.
    let l = out.join("layers.csv");
    for r in records(&l)
        .into_iter()
        .filter(|r| r[col(&l, "label")] == small("dynamic"))
    {
        let s: f64 = r[col(&l, "grad_scale")].parse().unwrap();
        assert!(s > 1.0 && s < 65536.0 && s.log2().fract() == 0.0, "{s}");
    }

    let block = |d: usize, t: &str| {
        format!("transformer / gelu / xavier-normal / 64 / 4 / 16 / 8 / {d} / {t}")
    };
    for d in [6, 24] {
        let (first, _, _) = site_stat(&out, &block(d, "bf16"), "out", 1, "rel_err");
        let (last, _, _) = site_stat(&out, &block(d, "bf16"), "out", d, "rel_err");
        let (f16_first, _, _) = site_stat(&out, &block(d, "f16"), "out", 1, "rel_err");
        assert!(
            last > first && first < u_bf16 * 2.0,
            "{d}: {first} -> {last}"
        );
        assert!(
            first / f16_first > 6.0 && first / f16_first < 10.0,
            "{first} / {f16_first}"
        );
        let (g_first, _, _) = site_stat(&out, &block(d, "bf16"), "out", 1, "grad_rel_err");
        let (g_last, _, _) = site_stat(&out, &block(d, "bf16"), "out", d, "grad_rel_err");
        assert!(g_first > 4.0 * g_last, "{d}: {g_last} -> {g_first}");
    }
}

/// Low precision's bad input: each exits 2 with one line naming the flag.
#[test]
fn low_precision_refusals_name_the_flag_and_what_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let out = out.to_str().unwrap();
    let small = ["--depth", "2", "--width", "4", "--out", out];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        extra.iter().copied().chain(small.iter().copied()).collect()
    };
    fails_with(
        &with(&["run", "--dtype", "f8"]),
        "dtype=f8 is not allowed; expected f32, bf16 or f16",
    );
    fails_with(
        &with(&["run", "--loss-scale", "1024"]),
        "--loss-scale 1024: an f32 pass",
    );
    fails_with(
        &with(&["run", "--dtype", "f16", "--loss-scale", "0"]),
        "loss-scale=0 is not allowed; expected off, dynamic, or a number S > 0",
    );
    fails_with(
        &with(&["run", "--dtype", "bf16", "--jacobian"]),
        "--dtype bf16: the Jacobian",
    );
    fails_with(
        &with(&["train", "--dtype", "bf16"]),
        "--dtype bf16: sigprop train runs in f32",
    );
    fails_with(
        &with(&["bench", "--dtype", "f16"]),
        "--dtype f16: sigprop bench runs in f32",
    );
    fails_with(
        &[
            "coord-check",
            "--widths",
            "4,8",
            "--dtype",
            "f16",
            "--out",
            out,
        ],
        "--dtype f16: sigprop coord-check runs in f32",
    );
}

/// The transformer parts against PyTorch: scripts/torch_transformer_parts.py writes the
/// same three networks in PyTorch (a LLaMA stack with RMSNorm, RoPE after QK-norm,
/// grouped-query causal attention, SwiGLU and a token table; a GPT-2 stack with token and
/// position tables, LayerNorm, a GELU MLP and the tied head; a ViT-like stack with mimetic
/// attention), draws from the same laws over 48 seeds and records the per-block variances
/// sigprop records (committed as crates/cli/tests/fixtures/torch_transformer_parts.json).
/// sigprop's seed means over 48 seeds of its own must lie within 3 standard errors of
/// the difference + 2% of PyTorch's, at every site and block, forward and backward.
#[test]
fn transformer_parts_agree_with_pytorch() {
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/torch_transformer_parts.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let size = |k: &str| fixture["sizes"][k].as_u64().unwrap().to_string();
    let common = [
        "--arch",
        "transformer",
        "--init",
        "xavier-normal",
        "--quiet",
    ];
    let sized: Vec<String> = [
        ("--width", "width"),
        ("--heads", "heads"),
        ("--seq-len", "seq_len"),
        ("--batch", "batch"),
        ("--depth", "depth"),
        ("--seeds", "seeds"),
    ]
    .iter()
    .flat_map(|(flag, k)| [flag.to_string(), size(k)])
    .collect();
    let vocab = size("vocab");
    let configs: [(&str, Vec<&str>); 3] = [
        (
            "llama",
            vec![
                "--embedding",
                &vocab,
                "--norm",
                "rms",
                "--positions",
                "rope",
                "--qk-norm",
                "--kv-heads",
                "2",
                "--causal",
                "--mlp",
                "swiglu",
                "--final-norm",
                "--activation",
                "silu",
            ],
        ),
        (
            "gpt2",
            vec![
                "--embedding",
                &vocab,
                "--positions",
                "learned",
                "--causal",
                "--final-norm",
                "--tie-unembedding",
                "--activation",
                "gelu",
            ],
        ),
        (
            "mimetic",
            vec!["--attention-init", "mimetic", "--activation", "gelu"],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, own) in configs {
        let out = dir.path().join(name);
        sigprop()
            .arg("run")
            .args(common)
            .args(&sized)
            .args(own)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        let a = out.join("aggregate.csv");
        let rows = records(&a);
        let torch = fixture["configs"][name].as_object().unwrap();
        assert!(torch.len() >= 12, "{name}: {} sites", torch.len());
        for (key, v) in torch {
            let parts: Vec<&str> = key.split('/').collect();
            let (site, layer, stat) = (parts[0], parts[1], parts[2]);
            let row = rows
                .iter()
                .find(|r| {
                    &r[col(&a, "site")] == site
                        && &r[col(&a, "layer")] == layer
                        && &r[col(&a, "stat")] == stat
                })
                .unwrap_or_else(|| panic!("{name}: sigprop has no {key}"));
            let num = |c: &str| row[col(&a, c)].parse::<f64>().unwrap();
            let (mean, se) = (num("mean"), num("sd") / num("n").sqrt());
            let (t_mean, t_se) = (v[0].as_f64().unwrap(), v[1].as_f64().unwrap());
            let tol = 3.0 * (se * se + t_se * t_se).sqrt() + 0.02 * t_mean.abs();
            assert!(
                (mean - t_mean).abs() <= tol,
                "{name} {key}: sigprop {mean} (se {se}), PyTorch {t_mean} (se {t_se})"
            );
        }
    }
}

/// experiments/trockman2023.toml (width 64, 16 tokens here): mimetic attention starts
/// with each token attending to itself, Xavier's near uniform (1/T), intervals apart at
/// every block; and the tokens align more slowly over the 12 blocks (token_cos at the
/// last block below Xavier's, intervals apart).
#[test]
fn trockman2023_mimetic_attention_starts_on_the_diagonal_and_slows_collapse() {
    let (_guard, out) = run_suite_scaled(
        "trockman2023",
        &[
            ("width = 256", "width = 64"),
            ("seq-len = 64", "seq-len = 16"),
        ],
    );
    for layer in 1..=12 {
        let (_, _, plain_hi) = site_stat(&out, "independent", "attn", layer, "attn_diag");
        let (m, m_lo, _) = site_stat(&out, "mimetic", "attn", layer, "attn_diag");
        assert!(
            m_lo > plain_hi,
            "block {layer}: mimetic {m} (from {m_lo}) vs {plain_hi}"
        );
    }
    let (uniform, _, _) = site_stat(&out, "independent", "attn", 1, "attn_diag");
    assert!((uniform * 16.0 - 1.0).abs() < 0.2, "{uniform}");
    let (plain, plain_lo, _) = site_stat(&out, "independent", "out", 12, "token_cos");
    let (m, _, m_hi) = site_stat(&out, "mimetic", "out", 12, "token_cos");
    assert!(
        m_hi < plain_lo,
        "token_cos at block 12: mimetic {m} (to {m_hi}), xavier {plain}"
    );
}

/// Mimetic attention's refusals: each exits 2 naming attention-init and why.
#[test]
fn mimetic_attention_refuses_what_it_cannot_factor() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let out = out.to_str().unwrap();
    let base = [
        "run",
        "--arch",
        "transformer",
        "--width",
        "16",
        "--seq-len",
        "4",
        "--depth",
        "1",
    ];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        base.iter()
            .copied()
            .chain(extra.iter().copied())
            .chain(["--out", out])
            .collect()
    };
    for (extra, why) in [
        (
            &["--attention-init", "mimetic", "--kv-heads", "2"][..],
            "multi-head attention",
        ),
        (
            &["--attention-init", "mimetic", "--attention", "shaped"][..],
            "softmax attention",
        ),
        (
            &[
                "--attention-init",
                "mimetic",
                "--init-role",
                "value=xavier-normal",
            ][..],
            "no init-role for query, key, value or output",
        ),
        (&["--attention-init", "mimic"][..], "attention-init"),
    ] {
        fails_with(&with(extra), why);
    }
}

/// `--inputs`: with identity weights and a linear first layer, z^1 is the batch itself, so
/// with the whole file as the batch `preact_var` at layer 1 is the file's population
/// variance (every seed: a permutation of the same samples), and 1 with `--standardize`
/// (each feature at mean 0 and variance 1); a smaller batch differs from seed to seed.
/// Bad input exits 2 with one line naming the flag.
#[test]
fn real_inputs_feed_the_first_layer_exactly_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (n, f) = (64usize, 8usize);
    let value = |i: usize, j: usize| (i as f64 * 0.37).sin() * (j + 1) as f64 + j as f64;
    let mut text = (0..f)
        .map(|j| format!("x{j}"))
        .collect::<Vec<_>>()
        .join(",")
        + "\n";
    for i in 0..n {
        text += &((0..f)
            .map(|j| format!("{}", value(i, j) as f32))
            .collect::<Vec<_>>()
            .join(","));
        text += "\n";
    }
    let file = dir.path().join("samples.csv");
    std::fs::write(&file, text).unwrap();
    let all: Vec<f64> = (0..n)
        .flat_map(|i| (0..f).map(move |j| f64::from(value(i, j) as f32)))
        .collect();
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    let var = all.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / all.len() as f64;
    let file = file.to_str().unwrap();
    let run = |extra: &[&str], name: &str| -> std::path::PathBuf {
        let out = dir.path().join(name);
        sigprop()
            .args([
                "run",
                "--inputs",
                file,
                "--init",
                "identity",
                "--activation",
                "linear",
                "--depth",
                "2",
                "--width",
                "8",
                "--seeds",
                "2",
                "--quiet",
            ])
            .args(extra)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        out.join("layers.csv")
    };
    let first = |l: &Path, stat: &str| -> Vec<f64> {
        records(l)
            .into_iter()
            .filter(|r| &r[col(l, "layer")] == "1")
            .map(|r| r[col(l, stat)].parse().unwrap())
            .collect()
    };
    let plain = run(&["--batch", "64"], "plain");
    // The mean field starts from N(0, 1) inputs: no theory for a file's.
    assert!(
        records(&plain)
            .iter()
            .all(|r| r[col(&plain, "theory_preact_var")].is_empty())
    );
    for v in first(&plain, "preact_var") {
        assert!((v / var - 1.0).abs() < 1e-5, "{v} vs the file's {var}");
    }
    let std = run(&["--batch", "64", "--standardize"], "std");
    for (v, m) in first(&std, "preact_var")
        .into_iter()
        .zip(first(&std, "preact_mean"))
    {
        assert!((v - 1.0).abs() < 1e-5 && m.abs() < 1e-6, "{v} {m}");
    }
    let part = first(&run(&["--batch", "16"], "part"), "preact_var");
    assert_ne!(part[0], part[1], "two seeds draw two batches");
    let out = dir.path().join("x");
    let out = out.to_str().unwrap();
    let base = ["--depth", "2", "--width", "8", "--out", out];
    let with = |extra: &[&'static str]| -> Vec<String> {
        extra
            .iter()
            .map(|s| s.to_string())
            .chain(base.iter().map(|s| s.to_string()))
            .collect()
    };
    let check = |args: Vec<String>, needle: &str| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        fails_with(&a, needle);
    };
    let mut a = with(&["run", "--inputs", "/no/such/samples.csv"]);
    check(a.clone(), "inputs=/no/such/samples.csv is not allowed");
    a = vec![
        "run".into(),
        "--inputs".into(),
        file.into(),
        "--width".into(),
        "9".into(),
        "--out".into(),
        out.into(),
    ];
    check(a, "samples of 9 values");
    a = vec![
        "run".into(),
        "--inputs".into(),
        file.into(),
        "--width".into(),
        "8".into(),
        "--batch".into(),
        "65".into(),
        "--out".into(),
        out.into(),
    ];
    check(a, "at most the 64 samples");
    check(
        with(&["run", "--standardize"]),
        "--standardize: it standardizes --inputs FILE",
    );
    a = vec![
        "run".into(),
        "--inputs".into(),
        file.into(),
        "--input-corr".into(),
        "0.5".into(),
        "--width".into(),
        "8".into(),
        "--out".into(),
        out.into(),
    ];
    check(a, "input-corr draws Gaussian pairs instead");
    a = vec![
        "run".into(),
        "--arch".into(),
        "rnn".into(),
        "--inputs".into(),
        file.into(),
        "--width".into(),
        "8".into(),
        "--out".into(),
        out.into(),
    ];
    check(a, "an RNN reads one row per time step");
    a = vec![
        "train".into(),
        "--inputs".into(),
        file.into(),
        "--task".into(),
        "mixture".into(),
        "--width".into(),
        "8".into(),
        "--batch".into(),
        "16".into(),
        "--out".into(),
        out.into(),
    ];
    check(a, "expected inputs with --task teacher");
}

/// experiments/inputs-digits.toml (as it is, the file's path made absolute): the raw digits
/// give the first layer He's `(2/64) E|x|^2` (the pixels' mean squared norm, computed here
/// from the file) within the seeds' interval + 5%, pairs of inputs at a cosine far above
/// Gaussian inputs' 0 and a lower effective rank (intervals apart); standardized per
/// pixel, their pairs are near orthogonal again.
#[test]
fn inputs_digits_real_images_start_correlated_and_low_rank() {
    let digits = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/data/digits.csv");
    let path = digits.canonicalize().unwrap();
    let path = path.to_str().unwrap();
    let (_guard, out) = run_suite_scaled(
        "inputs-digits",
        &[
            (
                "inputs = [\"none\", \"data/digits.csv\"]",
                &format!("inputs = [\"none\", \"{path}\"]"),
            ),
            (
                "inputs = \"data/digits.csv\"",
                &format!("inputs = \"{path}\""),
            ),
        ],
    );
    let text = std::fs::read_to_string(&digits).unwrap();
    let norms: Vec<f64> = text
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .take(64)
                .map(|v| v.parse::<f64>().unwrap().powi(2))
                .sum()
        })
        .collect();
    let want = 2.0 / 64.0 * norms.iter().sum::<f64>() / norms.len() as f64;
    // A file reads as its name in the labels.
    let raw = "relu / digits.csv";
    let (v, lo, hi) = site_stat(&out, raw, "layer", 1, "preact_var");
    assert!(
        want > lo / 1.05 && want < hi * 1.05,
        "{v} [{lo}, {hi}] vs {want}"
    );
    let (_, c_lo, _) = site_stat(&out, raw, "layer", 1, "corr");
    let (_, _, g_hi) = site_stat(&out, "relu / none", "layer", 1, "corr");
    assert!(c_lo > 0.5 && g_hi < 0.1, "{c_lo} vs {g_hi}");
    let (_, _, r_hi) = site_stat(&out, raw, "layer", 1, "act_rank");
    let (_, g_lo, _) = site_stat(&out, "relu / none", "layer", 1, "act_rank");
    assert!(r_hi < g_lo, "rank {r_hi} vs {g_lo}");
    let (s, _, _) = site_stat(&out, "relu / digits.csv / standardize", "layer", 1, "corr");
    assert!(s.abs() < 0.05, "{s}");
}
