#!/usr/bin/env bash
# The main job on the shipped example objects: compose three XDP
# components (libxdp run priorities from their metadata, chain-call
# actions, one overridden on the command line) into one program without
# freplace, show what the composed object holds, and run it in the kernel
# (root needed for the run) on a 64-byte frame.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bpfld=./target/$(rustc -vV | sed -n 's/^host: //p')/release/bpfld
out=$(mktemp -d)/composed.o
$bpfld xdp compose -o "$out" \
    fixtures/xdp_run_config.o:rc_first \
    fixtures/comp_count.o:xdp_count \
    "fixtures/comp_mark.o:xdp_mark,priority=60,chain=XDP_PASS+XDP_TX" \
    --print-map
echo
$bpfld inspect "$out"
echo
if [ "$(id -u)" -eq 0 ]; then
    $bpfld run "$out" --repeat 1000
else
    echo "(not root: skipping the kernel run; try: sudo $bpfld run $out)"
fi
