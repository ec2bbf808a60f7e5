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

# Format and lint (clippy, -D warnings): run before every commit; CI checks the format only.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Exactly what CI runs.
ci:
    bash .ci/run

# Benchmarks: initializer fill speed and the probed pass, side by side with PyTorch.
bench:
    cargo bench -p sigprop-init
    cargo bench -p sigprop-nets
    python3 scripts/bench_init_torch.py
    python3 scripts/bench_torch.py probe
    python3 scripts/bench_torch.py transformer
    cargo build --release
    scripts/bench_marginal.sh target/release/sigprop
    scripts/bench_store.sh target/release/sigprop

# Run every classic-result suite.
suites:
    for f in experiments/*.toml; do cargo run --release -- suite "$f"; done

# The binary with the GPU backend (wgpu) built in: about twice the CPU binary's first build.
build-gpu:
    cargo build --release --features wgpu
