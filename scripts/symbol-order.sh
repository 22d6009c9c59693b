#!/usr/bin/env bash
# Writes crates/bpfld-cli/symbol-order.txt: the functions that the listing
# commands (`btf dump`, `btf dump --json`, `disasm`, `inspect`) execute,
# found by running the release binary under valgrind's callgrind on the
# fixtures and the running kernel's BTF. The build (crates/bpfld-cli/
# build.rs) asks the linker to place these functions first, together.
#
# Symbol names carry a hash of their crate's build settings (dependency
# versions, toolchain), not of the code: re-run this after changing
# dependencies or the toolchain, or after reshaping the listing code.
# scripts/bench-listings.sh reports how many listed names the binary has.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need valgrind
cargo build --release --quiet -p bpfld-cli
bin=$(build_dir)/bpfld
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
n=0
profile() {
    n=$((n + 1))
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.$n" --demangle=no \
        "$bin" "$@" >/dev/null 2>&1 || true
}
objects=(fixtures/*.o fixtures/gcc/*.o)
for f in "${objects[@]}"; do
    profile btf dump "$f"
done
for f in "${objects[@]:0:12}"; do
    profile btf dump "$f" --json
    profile disasm "$f"
    profile inspect "$f"
done
[ -r /sys/kernel/btf/vmlinux ] && profile btf dump /sys/kernel/btf/vmlinux
# Callgrind names each function once per file as "fn=(id) name". Keep
# the order of the runs above, so the plain `btf dump` path comes first
# and sits in the fewest pages, then what the other listings add.
for i in $(seq 1 "$n"); do
    sed -n 's/^c\{0,1\}fn=([0-9]*) //p' "$out/cg.$i" | grep -E '^_(ZN|R)' || true
done | awk '!seen[$0]++' >crates/bpfld-cli/symbol-order.txt
echo "$(wc -l <crates/bpfld-cli/symbol-order.txt) functions in crates/bpfld-cli/symbol-order.txt"
