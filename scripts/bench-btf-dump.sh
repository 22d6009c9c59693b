#!/usr/bin/env bash
# Parse and dump the running kernel's BTF (raw format): bpfld against
# bpftool, in one hyperfine run on the same machine. Also reports peak
# memory of each (GNU time). Results go in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
command -v bpftool >/dev/null || apt-get install -y -qq bpftool >/dev/null
command -v /usr/bin/time >/dev/null 2>&1 || apt-get install -y -qq time >/dev/null
cargo build --release --quiet
BTF=${1:-/sys/kernel/btf/vmlinux}
cmp <(./target/release/bpfld btf dump "$BTF") <(bpftool btf dump file "$BTF") \
    && echo "outputs identical"
hyperfine --warmup 3 --runs 20 -N \
    "./target/release/bpfld btf dump $BTF" \
    "bpftool btf dump file $BTF" \
    --output=null --export-markdown /dev/stdout
for cmd in "./target/release/bpfld btf dump $BTF" "bpftool btf dump file $BTF"; do
    /usr/bin/time -f "$cmd: peak RSS %M KiB" $cmd >/dev/null
done
