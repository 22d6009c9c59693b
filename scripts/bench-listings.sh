#!/usr/bin/env bash
# Listings against the reference tools, on the running kernel's BTF and on
# a large linked object: `bpfld btf dump` against `bpftool btf dump file`,
# `bpfld disasm` against `llvm-objdump-19 -dr --no-show-raw-insn`. Wall
# time from hyperfine (output discarded), peak RSS from GNU time (five
# runs each: min / median / max). Results go in BENCHMARKS.md.
#
#   scripts/bench-listings.sh [OBJECTS]
#
# The large object links OBJECTS (default 3000) objects of the link
# benchmark's generated corpus (scripts/gen-link-corpus.py, compiled with
# clang-19 -O2 -g) with `bpfld link`; corpus and object are cached in
# target/listing-corpus/ (never committed). BPFLD=path measures another
# bpfld binary (an older build, for before/after numbers) instead of this
# checkout's release build.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
. scripts/lib.sh
need hyperfine
need bpftool
need /usr/bin/time time

N=${1:-3000}
CLANG=${CLANG:-clang-19}
OBJDUMP="llvm-objdump-19 -dr --no-show-raw-insn"
key=$(cat scripts/gen-link-corpus.py fixtures/include/bpfld_fixture.h | sha256sum | cut -c1-12)
corpus=$root/target/listing-corpus/$key-$N
if [ ! -f "$corpus/.done" ]; then
    rm -rf "$root/target/listing-corpus" # one corpus cached at a time
    python3 scripts/gen-link-corpus.py "$corpus" --objects "$N"
    (cd "$corpus" && ls obj*.c | xargs -P "$(nproc)" -I{} sh -c \
        '"$0" -O2 -g -target bpf -mcpu=v3 -I"$1" -I. -c {} -o "$(basename {} .c).o"' \
        "$CLANG" "$root/fixtures/include")
    touch "$corpus/.done"
fi

cargo build --release --quiet
release=$(build_dir)
bpfld=${BPFLD:-$release/bpfld}
big=$corpus/linked.o
if [ ! -f "$big" ]; then
    # Relative paths from inside the corpus, as bench-link.sh links it.
    (cd "$corpus" && "$release/bpfld" link -o linked.o obj*.o)
fi
vmlinux=/sys/kernel/btf/vmlinux
echo "large object: $big: $(stat -c %s "$big") bytes, linked from $N objects"
echo "vmlinux: $(stat -c %s "$vmlinux") bytes"
echo "bpfld: $bpfld"
# The listing path's functions are placed together by the linker
# (crates/bpfld-cli/build.rs); a list gone stale shows here.
order=crates/bpfld-cli/symbol-order.txt
echo "symbol order: $(nm "$bpfld" | awk 'NR==FNR{want[$1]; next} $3 in want && !seen[$3]++ {n++} END{print n+0}' "$order" -) of $(wc -l <"$order") listed functions found (scripts/symbol-order.sh renews the list)"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"

# The outputs must be the same before the times mean anything.
for f in "$vmlinux" "$big"; do
    cmp <("$bpfld" btf dump "$f") <(bpftool btf dump file "$f")
done
cmp <("$bpfld" disasm "$big") <($OBJDUMP "$big")
echo "outputs identical"

bench() {
    local runs=$1 md
    shift
    md=$(mktemp)
    hyperfine --style basic --warmup 3 --runs "$runs" -N --output=null "$@" --export-markdown "$md"
    cat "$md"
    rm -f "$md"
}

echo "## btf dump, vmlinux"
bench 20 -n "bpfld btf dump vmlinux" "$bpfld btf dump $vmlinux" \
    -n "bpftool btf dump file vmlinux" "bpftool btf dump file $vmlinux"
rss "bpfld btf dump vmlinux" "$bpfld" btf dump "$vmlinux"
rss "bpftool btf dump file vmlinux" bpftool btf dump file "$vmlinux"

echo "## btf dump, large object"
bench 20 -n "bpfld btf dump linked.o" "$bpfld btf dump $big" \
    -n "bpftool btf dump file linked.o" "bpftool btf dump file $big"
rss "bpfld btf dump linked.o" "$bpfld" btf dump "$big"
rss "bpftool btf dump file linked.o" bpftool btf dump file "$big"

echo "## disasm, large object"
bench 5 -n "bpfld disasm linked.o" "$bpfld disasm $big" \
    -n "llvm-objdump-19 -dr linked.o" "$OBJDUMP $big"
rss "bpfld disasm linked.o" "$bpfld" disasm "$big"
# shellcheck disable=SC2086
rss "llvm-objdump-19 -dr linked.o" $OBJDUMP "$big"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
