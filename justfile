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

# Benchmarks, side by side with PyTorch on this machine: the README's table (MLP and
# transformer passes, Jacobian, training, thread scaling; regenerated with the date), then the
# initializer fills, the per-seed marginal time and the results store.
bench:
    cargo build --release
    python3 scripts/bench_table.py --sigprop target/release/sigprop
    cargo bench -p sigprop-init
    python3 scripts/bench_init_torch.py
    scripts/bench_marginal.sh target/release/sigprop
    scripts/bench_store.sh target/release/sigprop

# Run every classic-result suite.
suites:
    for f in experiments/*.toml; do cargo run --release -- suite "$f"; done

# The binary with the GPU backend (wgpu) built in: about twice the CPU binary's first build.
# Run it as target/release/sigprop: a plain `cargo run --release` rebuilds without wgpu.
build-gpu:
    cargo build --release --features wgpu
