#!/usr/bin/env python3
"""`bpfld btf dump` against `bpftool btf dump file` on many small objects.

For each object both commands run ROUNDS times, interleaved; the figure
kept per command is the fastest wall time (spawn to exit, as the parent
sees it) and the largest peak RSS (GNU time's %M).
Outputs are compared first: a listing that differs is reported, not
timed. Prints one line per object where bpfld is slower or larger, then a
summary.

    scripts/bench-small-listings.py BPFLD [--rounds N] [--recheck M] OBJECT_OR_DIR...

Objects where bpfld came out slower are measured again with M rounds
(31 by default): on a busy machine one slow round decides a 1 ms race.
"""
import argparse
import os
import subprocess
import sys
import time


def wall_time(argv):
    start = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, os.environ,
                          file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                                        (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)])
    _, status = os.waitpid(pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv)} failed")
    return wall


def peak_rss(argv):
    """KiB, from GNU time: a child spawned from this (large) interpreter
    would report the interpreter's size, which exec does not reset."""
    r = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], capture_output=True, text=True,
                       check=True)
    return int(r.stderr.strip().splitlines()[-1])


def objects(args):
    for a in args:
        if os.path.isdir(a):
            yield from sorted(os.path.join(a, f) for f in os.listdir(a) if f.endswith(".o"))
        else:
            yield a


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bpfld")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--recheck", type=int, default=31,
                   help="rounds for measuring again the objects where bpfld came out slower")
    p.add_argument("paths", nargs="+")
    a = p.parse_args()
    rows, differ = measure_all(list(objects(a.paths)), a.bpfld, a.rounds)
    report(rows, differ, a.rounds)
    slower = [r[0] for r in rows if r[1] > r[2]]
    if slower and a.recheck:
        # One slow round in a busy machine decides a 1 ms race: measure
        # those again, longer.
        print(f"\nagain, the {len(slower)} where bpfld came out slower:")
        rows, differ = measure_all(slower, a.bpfld, a.recheck)
        report(rows, differ, a.recheck)


def measure_all(objs, bpfld, rounds):
    rows, differ = [], []
    for obj in objs:
        ours = [bpfld, "btf", "dump", obj]
        theirs = ["bpftool", "btf", "dump", "file", obj]
        out1 = subprocess.run(ours, capture_output=True)
        out2 = subprocess.run(theirs, capture_output=True)
        if out1.returncode != 0 or out2.returncode != 0 or out1.stdout != out2.stdout:
            differ.append(obj)
            continue
        t = {0: [], 1: []}
        m = {0: 0, 1: 0}
        for _ in range(rounds):
            for i, argv in enumerate((ours, theirs)):
                t[i].append(wall_time(argv))
                m[i] = max(m[i], peak_rss(argv))
        rows.append((obj, min(t[0]), min(t[1]), m[0], m[1]))
    return rows, differ


def report(rows, differ, rounds):
    slower = [r for r in rows if r[1] > r[2]]
    larger = [r for r in rows if r[3] > r[4]]
    for obj, t0, t1, m0, m1 in sorted(set(slower + larger)):
        print(f"{obj}: {t0 * 1e3:.3f} ms vs {t1 * 1e3:.3f} ms, {m0} KiB vs {m1} KiB")
    if not rows:
        sys.exit("nothing measured")
    ratios = sorted(r[1] / r[2] for r in rows)
    mem = sorted(r[3] / r[4] for r in rows)
    print(f"{len(rows)} objects ({len(differ)} with a different listing, not timed; "
          f"{rounds} interleaved rounds each)")
    print(f"time bpfld/bpftool (fastest round): min {ratios[0]:.2f} median "
          f"{ratios[len(ratios) // 2]:.2f} max {ratios[-1]:.2f}; bpfld slower on {len(slower)}")
    print(f"peak RSS bpfld/bpftool: min {mem[0]:.2f} median {mem[len(mem) // 2]:.2f} "
          f"max {mem[-1]:.2f}; bpfld larger on {len(larger)}")
    for obj in differ:
        print(f"different listing: {obj}")


if __name__ == "__main__":
    main()
