#!/usr/bin/env bash
# The main job on the shipped example objects: build bpfld and show what
# each example object holds.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
for obj in fixtures/xdp_*.o; do
    ./target/release/bpfld inspect "$obj"
    echo
done
