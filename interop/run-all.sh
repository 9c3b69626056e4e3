#!/usr/bin/env bash
# Runs every test warren has: unit and lapin integration tests (cargo test), then the
# interop suites in other languages against the release binary.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins
cargo test --release
WARREN_BIN="$PWD/target/release/warren" bash interop/python/run.sh
