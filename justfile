# Named recipes. Plain cargo works too: see README.md.

# Start the server on the embedded SQLite default.
run:
    cargo run -p domain-api

# Run every test (SQLite; PostgreSQL too when DOMAIN_API_TEST_POSTGRES_URL is set).
test:
    cargo test --workspace

# Start the local PostgreSQL and run every test on both backends, as CI does.
test-all:
    bash .ci/run

# Format and lint as CI does.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --all-features -- -D warnings

# Start the machine's PostgreSQL and print the exports for it.
postgres:
    scripts/dev-postgres.sh

# Build release and run every benchmark (criterion, HTTP load on SQLite and PostgreSQL,
# and their ceilings); results in bench/results/. See docs/benchmarks.md.
bench:
    scripts/bench.sh

# Fuzz every cargo-fuzz target for SECONDS each (default 60), as CI does; see fuzz/README.md.
fuzz SECONDS="60":
    bash scripts/ci-fuzz.sh {{SECONDS}}
