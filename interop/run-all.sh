#!/usr/bin/env bash
# Runs every test warren has: unit and lapin integration tests (cargo test), then the interop
# suites (Python, Node.js, Go, Java, C clients) against the release binary. Each interop suite
# installs its client itself (pip into a venv, npm, apt for Go, Java and rabbitmq-c). Then a
# smoke run of the benchmark scenarios.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins
cargo test --release
WARREN_BIN="$PWD/target/release/warren" bash interop/run.sh
# The benchmark scenarios, a few seconds each against warren: proves warren-perf and
# bench/compare.sh work; no speed is asserted (benchmarks: bash bench/compare.sh).
bash bench/compare.sh --smoke
