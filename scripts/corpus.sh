#!/usr/bin/env bash
# The corpus run: bpfld on ~800 objects nobody here wrote.
#
#   bash scripts/corpus.sh [--update] [--only REGEX] [--libbpf-only]
#
# - Installs (as root, when missing) linux-source-6.12, xdp-tools, gcc-bpf,
#   clang-19, llvm-19, bpftool.
# - Builds the BPF selftests (tools/testing/selftests/bpf/progs/*.c of
#   /usr/src/linux-source-6.12.tar.xz) with clang-19 the way the selftests
#   Makefile builds them (CLANG_BPF_BUILD_RULE with the test_progs flavour's
#   BPF_CFLAGS), against a vmlinux.h of the running kernel and the tree's
#   own libbpf headers, then strips DWARF. What does not build is listed
#   (selftests-build-failures.tsv, with the first error line).
# - Adds libxdp/xdp-tools' objects (/usr/lib/*/bpf/*.o) and the project's
#   fixtures/src/*.c built with bpf-gcc -O2 -gbtf (failures listed too).
# - Checks every object with scripts/corpus.py (see there) and compares the
#   outcome with corpus/expected.tsv: an expected pass that now fails is a
#   regression (exit 1); a new pass is reported as an improvement. The
#   multi-object selftests whose prog_tests check values are also run
#   (tools/corpus-run, with libbpf) and their values compared. The libbpf
#   of every reference (loads, verified counts, links) is the one of the
#   selftests' tree (tools/lib/bpf), built static here.
#   --update rewrites corpus/expected.tsv from this run.
#
# Everything extracted and built is cached under
# ${BPFLD_CORPUS_CACHE:-/var/cache/bpfld-corpus}, keyed by the source
# package's version, the compiler's and the running kernel's, so a second
# run only checks. Results: target/corpus/results.tsv (one line per check
# and object) and target/corpus/summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

update=()
only=()
libbpf_only=0
while (($#)); do
    case "$1" in
    --update) update=(--update) ;;
    --libbpf-only) libbpf_only=1 ;;
    --only)
        only=(--only "$2")
        shift
        ;;
    *)
        echo "usage: scripts/corpus.sh [--update] [--only REGEX] [--libbpf-only]" >&2
        exit 2
        ;;
    esac
    shift
done

say() { echo "corpus: $*"; }

# --- tools -----------------------------------------------------------------
missing=()
[ -e /usr/src/linux-source-6.12.tar.xz ] || missing+=(linux-source-6.12)
compgen -G '/usr/lib/*/bpf/xdp-dispatcher.o' >/dev/null || missing+=(xdp-tools)
command -v bpf-gcc >/dev/null 2>&1 || missing+=(gcc-bpf)
command -v clang-19 >/dev/null 2>&1 || missing+=(clang-19)
command -v llvm-objdump-19 >/dev/null 2>&1 || missing+=(llvm-19)
command -v bpftool >/dev/null 2>&1 || missing+=(bpftool)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v xz >/dev/null 2>&1 || missing+=(xz-utils)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
[ -e /usr/include/bpf/libbpf.h ] || missing+=(libbpf-dev)
if ((${#missing[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        echo "corpus: not root, cannot install ${missing[*]}" >&2
        exit 1
    fi
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! mountpoint -q /sys/fs/bpf 2>/dev/null; then
    mount -t bpf bpf /sys/fs/bpf
fi

cache=${BPFLD_CORPUS_CACHE:-/var/cache/bpfld-corpus}
srcver=$(dpkg-query -W -f '${Version}' linux-source-6.12)
clangver=$(clang-19 --version | head -1 | grep -Eo '[0-9]+\.[0-9]+\.[0-9]+' | head -1)
# The build recipe below is part of the key: changing it rebuilds.
recipe=$(sed -n '/^# --- selftests build/,/^# --- end of selftests build/p' "$0" | sha256sum | cut -c1-12)
# What is extracted from the source package is part of its key.
src_parts=(tools/testing/selftests/bpf tools/lib/bpf tools/include 'tools/arch/*/include'
    scripts/bpf_doc.py)
src=$cache/src-$srcver-$(printf '%s\n' "${src_parts[@]}" | sha256sum | cut -c1-8)
build=$cache/selftests-$srcver-clang$clangver-$(uname -r)-$recipe
mkdir -p "$cache"

# --- source ----------------------------------------------------------------
if [ ! -e "$src/.complete" ]; then
    say "extracting the selftests of linux-source $srcver"
    rm -rf "$src" "$src.tmp"
    mkdir -p "$src.tmp"
    tar -xJf /usr/src/linux-source-6.12.tar.xz -C "$src.tmp" --strip-components=1 \
        --wildcards "${src_parts[@]/#/linux-source-6.12/}"
    touch "$src.tmp/.complete"
    mv "$src.tmp" "$src"
fi

# --- libbpf -----------------------------------------------------------------
# The reference loader (tools/corpus-run) is linked with the libbpf of the
# tree the selftests come from (tools/lib/bpf), built static once, with the
# flags and include paths of its Makefile: the objects' libbpf, not the
# distribution's older one (which predates kfunc flavours, for one).
gccver=$(gcc -dumpfullversion)
karch=$(uname -m)
case "$karch" in
x86_64) karch=x86 ;;
aarch64) karch=arm64 ;;
esac
libbpf_recipe=$(sed -n '/^# --- libbpf/,/^# --- end of libbpf/p' "$0" | sha256sum | cut -c1-12)
libbpf=$cache/libbpf-$srcver-gcc$gccver-$libbpf_recipe
libbpf_inc=(-I"$libbpf/include" -I"$src/tools/include/uapi")
if [ ! -e "$libbpf/.complete" ]; then
    say "building libbpf from $src/tools/lib/bpf into $libbpf (cached afterwards)"
    rm -rf "$libbpf"
    mkdir -p "$libbpf/obj" "$libbpf/include/bpf" "$libbpf/lib"
    # The objects tools/lib/bpf/Build lists.
    grep -o '[a-z_]*\.o' "$src/tools/lib/bpf/Build" | sed 's/\.o$//' |
        (cd "$src/tools/lib/bpf" && xargs -P2 -I{} \
            gcc -O2 -std=gnu89 -Wall -Wno-switch-enum -fvisibility=hidden \
            -D_LARGEFILE64_SOURCE -D_FILE_OFFSET_BITS=64 -I. -I"$src/tools/include" \
            -I"$src/tools/include/uapi" -I"$src/tools/arch/$karch/include" \
            -c {}.c -o "$libbpf/obj/{}.o")
    ar rcs "$libbpf/lib/libbpf.a" "$libbpf"/obj/*.o
    cp "$src"/tools/lib/bpf/*.h "$libbpf/include/bpf/"
    rm -rf "$libbpf/obj"
    touch "$libbpf/.complete"
fi
# --- end of libbpf -------------------------------------------------------------

# scripts/test.sh asks for this libbpf alone, before the tests that use it
# as a reference (crates/bpfld-cli/tests/verify.rs): its directory is the
# last line printed.
if ((libbpf_only)); then
    echo "$libbpf"
    exit 0
fi

# --- selftests build --------------------------------------------------------
# As the selftests Makefile: BPF_CFLAGS (-g -Wall -Werror, the arch and
# endianness, the generated include dir, the selftests dir, the tools'
# UAPI headers) plus clang's own system include dirs (-idirafter), the
# test_progs flavour's -DENABLE_ATOMICS_TESTS, per-file extra flags, and
# CLANG_BPF_BUILD_RULE (-O2 --target=bpf -mcpu=v3). Then llvm-strip -g.
if [ ! -e "$build/.complete" ]; then
    say "building the selftests' progs/*.c into $build (cached afterwards)"
    rm -rf "$build"
    mkdir -p "$build/include/bpf" "$build/obj" "$build/log"
    sel=$src/tools/testing/selftests/bpf
    cp "$src"/tools/lib/bpf/*.h "$build/include/bpf/"
    python3 "$src/scripts/bpf_doc.py" --header \
        --file "$src/tools/include/uapi/linux/bpf.h" >"$build/include/bpf/bpf_helper_defs.h"
    bpftool btf dump file /sys/kernel/btf/vmlinux format c >"$build/include/vmlinux.h"
    sys_includes=$(clang-19 -v -E - </dev/null 2>&1 |
        sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }' | tr '\n' ' ')
    arch=$(uname -m)
    case "$arch" in
    x86_64) arch=x86 ;;
    aarch64) arch=arm64 ;;
    esac
    cat >"$build/cc.sh" <<EOF
#!/bin/sh
# Builds one selftest: cc.sh NAME (progs/NAME.c -> obj/NAME.bpf.o).
n=\$1
extra=
case "\$n" in
bind4_prog | bind6_prog | dynptr_fail | linked_list_fail | map_kptr_fail | syscall | \\
    test_pkt_md_access | test_sk_lookup | timer_crash | test_global_func9 | verifier_nocsr)
    extra=-fno-strict-aliasing ;;
test_l4lb_noinline | test_xdp_noinline) extra=-fno-inline ;;
esac
cd "$sel"
if clang-19 -g -Wall -Werror -D__TARGET_ARCH_$arch -mlittle-endian \\
    -I$build/include -I$sel -I$src/tools/include/uapi \\
    -Wno-compare-distinct-pointer-types $sys_includes -DENABLE_ATOMICS_TESTS \$extra \\
    -O2 --target=bpf -c progs/\$n.c -mcpu=v3 -o $build/obj/\$n.bpf.o.tmp \\
    >$build/log/\$n.log 2>&1 &&
    llvm-strip-19 -g $build/obj/\$n.bpf.o.tmp 2>>$build/log/\$n.log; then
    mv $build/obj/\$n.bpf.o.tmp $build/obj/\$n.bpf.o
    rm -f $build/log/\$n.log
else
    rm -f $build/obj/\$n.bpf.o.tmp
fi
EOF
    chmod +x "$build/cc.sh"
    start=$(date +%s)
    (cd "$sel/progs" && ls *.c) | sed 's/\.c$//' | xargs -P2 -n1 "$build/cc.sh"
    # What did not build, with its first error line.
    for log in "$build"/log/*.log; do
        [ -e "$log" ] || continue
        n=$(basename "$log" .log)
        first=$(grep -m1 -E 'error|fatal' "$log" || head -1 "$log")
        printf '%s\t%s\n' "$n" "$(echo "$first" | sed "s|$sel/||; s|\t| |g")"
    done | sort >"$build/build-failures.tsv"
    echo "$(($(date +%s) - start))" >"$build/build-seconds"
    touch "$build/.complete"
fi
# --- end of selftests build --------------------------------------------------

out=$repo/target/corpus
rm -rf "$out"
mkdir -p "$out/gcc"
cp "$build/build-failures.tsv" "$out/selftests-build-failures.tsv"
nbuilt=$(find "$build/obj" -name '*.bpf.o' | wc -l)
nfailed=$(wc -l <"$build/build-failures.tsv")
say "selftests: $nbuilt built, $nfailed did not build (target/corpus/selftests-build-failures.tsv; built in $(cat "$build/build-seconds") s)"

# --- the project's fixtures with GCC -------------------------------------------
: >"$out/gcc-build-failures.tsv"
for c in fixtures/src/*.c; do
    n=$(basename "$c" .c)
    if ! bpf-gcc -O2 -gbtf -Ifixtures/include -Ifixtures/src -c "$c" -o "$out/gcc/$n.gcc.o" \
        >"$out/gcc/$n.log" 2>&1; then
        printf '%s\t%s\n' "$n" "$(grep -m1 -i 'error' "$out/gcc/$n.log" || head -1 "$out/gcc/$n.log")" \
            >>"$out/gcc-build-failures.tsv"
        rm -f "$out/gcc/$n.gcc.o"
    fi
    rm -f "$out/gcc/$n.log"
done
say "fixtures with bpf-gcc: $(find "$out/gcc" -name '*.o' | wc -l) built, $(wc -l <"$out/gcc-build-failures.tsv") did not build (target/corpus/gcc-build-failures.tsv)"


# The runner of the multi-object selftests (libbpf, as their prog_tests) and
# the reference for verified instruction counts.
gcc -O2 -Wall "${libbpf_inc[@]}" -o "$out/corpus_run" tools/corpus-run/corpus_run.c \
    "$libbpf/lib/libbpf.a" -lelf -lz

# --- bpfld -------------------------------------------------------------------
# The debug build: scripts/test.sh has built it already, and the whole
# corpus takes under a minute with it (a release build would cost CI more
# compile time than it saves).
cargo build -q -p bpfld-cli
bpfld=$repo/target/$(rustc -vV | sed -n 's/^host: //p')/debug/bpfld

# --- check -------------------------------------------------------------------
exec python3 scripts/corpus.py --bpfld "$bpfld" --out "$out" \
    --expected corpus/expected.tsv \
    --selftests "$build/obj" --selftests-src "$src/tools/testing/selftests/bpf" \
    --xdp-tools "$(compgen -G '/usr/lib/*/bpf' | head -1)" --gcc "$out/gcc" \
    --runner "$out/corpus_run" \
    "${update[@]}" "${only[@]}"
