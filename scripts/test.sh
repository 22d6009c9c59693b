#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests
# compare against (clang-19, llvm-19, bpftool) when missing, then checks
# formatting and lints and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v clang-19 >/dev/null 2>&1 || missing+=(clang-19)
command -v llvm-objdump-19 >/dev/null 2>&1 || missing+=(llvm-19)
command -v bpftool >/dev/null 2>&1 || missing+=(bpftool)
# GCC-built fixtures (fixtures/gcc) are rebuilt and compared with bpf-gcc.
command -v bpf-gcc >/dev/null 2>&1 || missing+=(gcc-bpf)
# The BTF dedup tests compare against libbpf's btf__dedup (a C harness).
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
[ -e /usr/include/bpf/btf.h ] || missing+=(libbpf-dev)
# The image tests read bpfld's OCI archives back with skopeo and umoci.
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v umoci >/dev/null 2>&1 || missing+=(umoci)
# The bpfman YAML test parses what bpfld writes.
python3 -c 'import yaml' >/dev/null 2>&1 || missing+=(python3-yaml)
# The attach tests build veth pairs in network namespaces.
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
if ((${#missing[@]})); then
    if [ "$(id -u)" -eq 0 ]; then
        echo "installing: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "WARNING: not root, cannot install ${missing[*]}; parity tests will skip" >&2
    fi
fi

# Kernel tests pin objects; bpffs is not always mounted.
if [ "$(id -u)" -eq 0 ] && ! mountpoint -q /sys/fs/bpf 2>/dev/null; then
    mount -t bpf bpf /sys/fs/bpf 2>/dev/null || echo "WARNING: cannot mount bpffs" >&2
fi

# The libbpf of the selftests' tree (1.5; Debian's is 1.1), built once and
# cached by the corpus script: tests compare bpfld with it where 1.1 lacks
# what they check (exception callbacks).
if [ "$(id -u)" -eq 0 ] && [ -z "${BPFLD_LIBBPF_DIR:-}" ]; then
    BPFLD_LIBBPF_DIR=$(bash scripts/corpus.sh --libbpf-only | tail -1) &&
        export BPFLD_LIBBPF_DIR ||
        echo "WARNING: no libbpf from the kernel tree; tests comparing with it will skip" >&2
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line over every test binary (cargo prints one per binary,
# the last of which may be an empty doc-test run).
passed=$(grep -Eo '^test result: .* ([0-9]+) passed' "$log" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '^test result: .*; ([0-9]+) failed' "$log" | grep -Eo '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')

# The corpus run (issue #14): ~850 real objects against the committed
# expectations; it counts as one test in the closing line.
echo
if [ "$(id -u)" -eq 0 ]; then
    set +e
    bash scripts/corpus.sh
    corpus_status=$?
    set -e
    if [ "$corpus_status" -eq 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        status=1
    fi
else
    echo "WARNING: not root, the corpus run (scripts/corpus.sh) is skipped" >&2
fi
echo
echo "${passed} passed, ${failed} failed"
exit "$status"
