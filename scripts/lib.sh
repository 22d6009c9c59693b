# Shared by the bench scripts (sourced, not run): tool installation, the
# release binary's path, and peak memory from GNU time.
# shellcheck shell=bash

# Installs the Debian package of each missing tool (as root): `need TOOL
# [PACKAGE]`, the package named as the tool unless given.
need() {
    local tool=$1 pkg=${2:-$1}
    command -v "$tool" >/dev/null 2>&1 || apt-get install -y -qq "$pkg" >/dev/null
}

# The checkout this file belongs to.
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The directory of the bpfld binary built with PROFILE (release unless
# given): .cargo/config.toml builds for the host as a target of its own,
# so artifacts sit under target/<host triple>/.
build_dir() {
    echo "$repo_root/target/$(rustc -vV | sed -n 's/^host: //p')/${1:-release}"
}

# Peak RSS in KiB of one run of a command (its output discarded).
peak_rss() {
    /usr/bin/time -f "%M" "$@" 2>&1 >/dev/null | tail -n 1
}

# Peak RSS varies by a few hundred KiB from run to run: five runs of a
# command, reported as min / median / max under NAME.
rss() {
    local name=$1
    shift
    local all=()
    for _ in 1 2 3 4 5; do
        all+=("$(peak_rss "$@")")
    done
    printf '%s\n' "${all[@]}" | sort -n | awk -v n="$name" \
        '{v[NR]=$1} END {printf "%s: peak RSS %d / %d / %d KiB (min / median / max of 5)\n", n, v[1], v[3], v[5]}'
}
