# List the recipes.
default:
    @just --list

# The main job: the quickstart suite, report under reports/.
quickstart:
    cargo run --release -- suite

# Every test (the README's test command).
test:
    cargo test --workspace

# Every test with the opt-in ndarray backend built in (its cross-backend agreement tests run too).
test-ndarray:
    cargo test --workspace --features sigprop/ndarray

# Format and lint (clippy, -D warnings): run before every commit; CI runs both.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy --release -- -D warnings
    cargo clippy -p sigprop-nets -p sigprop-spec -p sigprop-report --no-default-features --all-targets -- -D warnings

# The fuzz targets (initializer specs, suite files) with a fresh random seed and many cases;
# CI runs them with a fixed seed. A failure prints the seed to rerun it with.
fuzz cases="20000":
    seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' '); echo "PROPTEST_RNG_SEED=$seed"; \
    PROPTEST_RNG_SEED=$seed PROPTEST_CASES={{cases}} cargo test -p sigprop-init --test tests fuzz && \
    PROPTEST_RNG_SEED=$seed PROPTEST_CASES={{cases}} cargo test -p sigprop-spec --lib fuzz

# Exactly what CI runs.
ci:
    bash .ci/run

# Benchmarks: initializer fill speed and the probed pass, side by side with PyTorch.
bench:
    cargo bench -p sigprop-init
    python3 scripts/bench_init_torch.py
    cargo build --release
    scripts/bench_marginal.sh target/release/sigprop
    target/release/sigprop bench --depth 50 --width 512 --batch 256 --repeats 5
    python3 scripts/bench_torch.py probe
    target/release/sigprop bench --arch transformer --depth 12 --width 256 --heads 4 --seq-len 128 --batch 16 --activation gelu --init xavier-normal --repeats 5
    python3 scripts/bench_torch.py transformer
    target/release/sigprop bench --activation tanh --init xavier-normal --depth 50 --width 1024 --batch 8 --repeats 3
    target/release/sigprop bench --activation tanh --init xavier-normal --depth 50 --width 1024 --batch 8 --jacobian --jacobian-samples 8 --repeats 3
    python3 scripts/bench_torch.py jacobian
    for i in 1 2 3 4; do target/release/sigprop train --inits he-normal --activations relu --depth 30 --width 256 --batch 128 --steps 200 --lr 0.003 --seeds 1 --json --out reports/bench-train-$i | grep -A1 train_s; done
    python3 scripts/bench_train_torch.py
    scripts/bench_store.sh target/release/sigprop

# Run every classic-result suite.
suites:
    for f in experiments/*.toml; do cargo run --release -- suite "$f"; done

# The binary with the GPU backend (wgpu) built in: about twice the CPU binary's first build.
# Run it as target/release/sigprop: a plain `cargo run --release` rebuilds without wgpu.
build-gpu:
    cargo build --release --features wgpu
