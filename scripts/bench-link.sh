#!/usr/bin/env bash
# Link a generated corpus (scripts/gen-link-corpus.py: 300 objects by
# default) with bpfld and with libbpf's linker (bpftool gen object), in one
# hyperfine run on the same machine, plus the peak memory of each (GNU
# time). Results go in BENCHMARKS.md.
#
#   scripts/bench-link.sh [OBJECTS]
#
# The corpus is generated and compiled once into target/link-corpus/, keyed
# by the generator's hash and the object count (never committed).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
. scripts/lib.sh
need hyperfine
need bpftool
need /usr/bin/time time

N=${1:-300}
CLANG=${CLANG:-clang-19}
key=$(cat scripts/gen-link-corpus.py fixtures/include/bpfld_fixture.h | sha256sum | cut -c1-12)
corpus=$root/target/link-corpus/$key-$N
if [ ! -f "$corpus/.done" ]; then
    rm -rf "$root/target/link-corpus" # one corpus cached at a time
    python3 scripts/gen-link-corpus.py "$corpus" --objects "$N"
    # Relative paths from inside the corpus directory, so the BTF line info
    # does not depend on where the checkout lives.
    (cd "$corpus" && ls obj*.c | xargs -P "$(nproc)" -I{} sh -c \
        '"$0" -O2 -g -target bpf -mcpu=v3 -I"$1" -I. -c {} -o "$(basename {} .c).o"' \
        "$CLANG" "$root/fixtures/include")
    touch "$corpus/.done"
fi
inputs=$(ls "$corpus"/obj*.o)
echo "corpus: $corpus: $N objects, $(cat "$corpus"/obj*.o | wc -c) bytes"

cargo build --release --quiet
bpfld=$(build_dir)/bpfld
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Both linkers must succeed on the corpus before their times mean anything.
# shellcheck disable=SC2086
"$bpfld" link -o "$out/bpfld.o" $inputs
# shellcheck disable=SC2086
bpftool gen object "$out/bpftool.o" $inputs
ls -l "$out/bpfld.o" "$out/bpftool.o"

# Load each output with libbpf (every program pinned, then unpinned).
for l in bpfld bpftool; do
    pin=/sys/fs/bpf/bench-link-$l-$$
    if bpftool prog loadall "$out/$l.o" "$pin" >"$out/$l.load.log" 2>&1; then
        echo "$l output: loaded, $(ls "$pin" | wc -l) programs"
    else
        echo "$l output: load FAILED: $(grep -v '^[0-9;]' "$out/$l.load.log" | tail -n 3 | tr '\n' ' ')"
    fi
    rm -rf "$pin"
done

hyperfine --warmup 3 --runs "${RUNS:-20}" -N \
    -n "bpfld link ($N objects)" "$bpfld link -o $out/bpfld.o $(echo $inputs)" \
    -n "bpftool gen object ($N objects)" "bpftool gen object $out/bpftool.o $(echo $inputs)" \
    --export-markdown "$out/table.md"
cat "$out/table.md"
# shellcheck disable=SC2086
rss "bpfld link" "$bpfld" link -o "$out/bpfld.o" $inputs
# shellcheck disable=SC2086
rss "bpftool gen object" bpftool gen object "$out/bpftool.o" $inputs
