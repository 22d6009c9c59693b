#!/usr/bin/env bash
# Deduplicate the running kernel's BTF merged with itself (vmlinux x2):
# `bpfld btf dedup` against libbpf's btf__dedup (the reference harness in
# tools/libbpf-dedup: btf__parse each input, btf__add_btf, btf__dedup,
# write raw BTF), whole process, in one hyperfine run. Also reports the
# type counts and peak memory of each (GNU time). Results go in
# BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need hyperfine
need /usr/bin/time time
[ -e /usr/include/bpf/btf.h ] || apt-get install -y -qq libbpf-dev >/dev/null
cargo build --release --quiet
BTF=${1:-/sys/kernel/btf/vmlinux}
# Outputs go to tmpfs: bpfld writes atomically and durably (temporary
# file, fsync, rename) while the harness just fwrite()s; on a disk shared
# with other jobs the fsync alone can cost more than the deduplication.
OUT=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'rm -rf "$OUT"' EXIT
gcc -O2 -Wall -o "$OUT/libbpf-dedup" tools/libbpf-dedup/libbpf-dedup.c -lbpf
BPFLD="$(build_dir)/bpfld btf dedup -o $OUT/bpfld.btf $BTF $BTF"
LIBBPF="$OUT/libbpf-dedup $OUT/libbpf.btf $BTF $BTF"
# Counts exclude void.
echo "input:  $(bpftool btf dump file "$BTF" | grep -c '^\[') types in $BTF, given twice"
$BPFLD --stats
echo "libbpf: $(($($LIBBPF) - 1)) types out"
cmp <(bpftool btf dump file "$OUT/bpfld.btf") <(bpftool btf dump file "$BTF") \
    && echo "bpfld's output dumps exactly as the input"
# (The table goes to a file: exporting to /dev/stdout would truncate a
# redirected output.)
hyperfine --warmup 3 --runs 20 -N "$BPFLD" "$LIBBPF" --export-markdown "$OUT/table.md"
cat "$OUT/table.md"
for cmd in "$BPFLD" "$LIBBPF"; do
    # shellcheck disable=SC2086 # the commands are meant to split into words
    echo "peak RSS $(peak_rss $cmd) KiB: $cmd"
done
