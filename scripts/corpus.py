#!/usr/bin/env python3
"""Checks bpfld on a corpus of objects (started by scripts/corpus.sh).

Per object (checks run in this order; a later one is skipped when what it
needs failed):
  inspect      `bpfld inspect` succeeds
  disasm       `bpfld disasm` == `llvm-objdump-19 -dr --no-show-raw-insn`
               (file header and `<...>` hints left out, as the tests do)
  btf-dump     `bpfld btf dump` == `bpftool btf dump file`, byte for byte
  link         `bpfld link -o x1 OBJ` succeeds (an object with unresolved
               externs, one part of a multi-object program, is skipped and
               linked with --relocatable instead, for the fixed point)
  fixed-point  `bpfld link -o x2 x1`: x2 == x1 byte for byte
  btf-check    `bpfld btf check x1`: the kernel accepts x1's BTF
  loadall      every program libbpf loads from OBJ (the whole object in one
               load, as `bpftool prog loadall`: tools/corpus-run --loadall),
               it loads from x1 with the same verifier instruction count
  prog-load    the same, each program loaded alone by libbpf (the others'
               autoload off, as the selftests' test_loader does), so that
               objects with programs meant to fail verification, or not
               autoloaded, are compared too (tools/corpus-run --each-prog)
  verify       `bpfld verify OBJ --json` loads every program that libbpf
               loads alone (the prog-load reference, on the input itself)
               with the same verifier instruction count
  compose      every XDP program of the object composed alone
               (`bpfld xdp compose -o c.o OBJ:PROG`) succeeds
  compose-btf-check  the kernel accepts each composition's BTF
  compose-load the dispatcher loads (libbpf) wherever its component
               program loads alone from the input
  optimize     for each composition that loads, two instances of the
               program composed with and without `--no-optimize`: both run (`bpfld run --pcap`, pinned to
               one CPU) on the same 2,000 generated frames (every ethertype and
               protocol, truncated ones, random bytes) and give the same
               verdicts, packets out and maps; the optimised one needs no
               more verified instructions
  run-load     every program of a type `bpfld run` runs (RUN_TYPES) that
               libbpf loads (as for loadall), `bpfld run OBJ --prog P`
               loads too (a failed BPF_PROG_TEST_RUN after the load counts
               as loaded): "N of M programs"
Per group of objects linked together (the selftests' *1.c/*2.c pairs and
the Makefile's linked skeletons):
  pair-link        bpfld and libbpf's linker (as `bpftool gen object`:
                   tools/corpus-run --link) agree: both link, or both
                   refuse
  pair-fixed-point bpfld's output relinked is byte-identical
  pair-btf-check   the kernel accepts its BTF
  pair-loadall     what libbpf loads from libbpf's output, it loads from
                   bpfld's with the same verifier instruction counts
  pair-run         for the selftests whose prog_tests check values
                   (test_static_linked, linked_funcs, linked_vars,
                   linked_maps): bpfld's output, loaded by libbpf
                   (tools/corpus-run), attached and triggered, gives the
                   values the prog_test expects

libbpf here is always tools/corpus-run, which scripts/corpus.sh links with
the libbpf of the selftests' own tree (tools/lib/bpf).

Every outcome is pass, fail or skip with a short reason. The outcomes are
compared with the expected-results file: an expected pass that now fails
is a regression (exit status 1); a new pass is an improvement (reported).
"""

import argparse
import concurrent.futures
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

CHECKS = [
    "inspect",
    "disasm",
    "btf-dump",
    "link",
    "fixed-point",
    "btf-check",
    "loadall",
    "prog-load",
    "verify",
    "compose",
    "compose-btf-check",
    "compose-load",
    "optimize",
    "run-load",
    "pair-link",
    "pair-fixed-point",
    "pair-btf-check",
    "pair-loadall",
    "pair-run",
]
TIMEOUT = 300  # seconds, per command (generous: a slow machine must not look like a regression)
PIN_ROOT = "/sys/fs/bpf"

# The Makefile's LINKED_SKELS groups besides the *1/*2 pairs.
MAKEFILE_GROUPS = [
    ["test_subskeleton_lib2", "test_subskeleton_lib", "test_subskeleton"],
    ["test_subskeleton_lib2", "test_subskeleton_lib"],
    ["test_usdt", "test_usdt_multispec"],
]


# What the prog_tests of the multi-object selftests set before loading and
# expect afterwards (tools/corpus-run arguments; "getpgid" is the syscall's
# number, "tid" the runner's thread id).
RUNS = {
    "test_static_linked1+test_static_linked2": (
        ["--set", ".rodata:rovar1=1", "--set", ".rodata:rovar2=4"],
        [(".data", "var1", "7"), (".data", "var2", "23")],
    ),
    "linked_funcs1+linked_funcs2": (
        ["--autoload-all", "--set", ".rodata:my_tid=tid", "--set", ".bss:syscall_id=getpgid"],
        [
            (".bss", "output_val1", "4000"),
            (".bss", "output_ctx1", "getpgid"),
            (".bss", "output_weak1", "42"),
            (".bss", "output_val2", "6000"),
            (".bss", "output_ctx2", "getpgid"),
            (".bss", "output_weak2", "0"),
        ],
    ),
    "linked_vars1+linked_vars2": (
        ["--set", ".bss:input_bss1=1000", "--set", ".bss:input_bss2=2000", "--set", ".bss:input_bss_weak=3000"],
        [
            (".bss", "output_bss1", "6000"),
            (".bss", "output_bss2", "6000"),
            (".bss", "output_data1", "13"),
            (".bss", "output_data2", "13"),
            (".bss", "output_rodata1", "133"),
            (".bss", "output_rodata2", "133"),
        ],
    ),
    "linked_maps1+linked_maps2": (
        [],
        [(".bss", "output_first1", "2000"), (".bss", "output_second1", "2"), (".bss", "output_weak1", "2")],
    ),
}


class Run:
    def __init__(self, args):
        self.bpfld = args.bpfld
        self.runner = args.runner
        self.run_lock = threading.Lock()
        self.work = os.path.join(args.out, "work")
        self.counter = 0
        self.lock = threading.Lock()

    def tmpdir(self, tag):
        with self.lock:
            self.counter += 1
            n = self.counter
        d = os.path.join(self.work, "%d-%s" % (n, re.sub(r"[^A-Za-z0-9_.+-]", "_", tag)))
        os.makedirs(d, exist_ok=True)
        return d

    def pindir(self):
        with self.lock:
            self.counter += 1
            n = self.counter
        return os.path.join(PIN_ROOT, "bpfld-corpus-%d-%d" % (os.getpid(), n))


def sh(cmd, timeout=TIMEOUT):
    """(returncode, stdout bytes, stderr text); returncode None on a timeout."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        return p.returncode, p.stdout, p.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired:
        return None, b"", "timed out after %d s" % timeout


def clean(text, paths):
    """A one-line reason: paths made short, whitespace squeezed."""
    for p, short in paths:
        text = text.replace(p, short)
    text = re.sub(r"/sys/fs/bpf/bpfld-corpus-[0-9-]+", "PINDIR", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text[:300]


def bpfld_error(err):
    """The message of a bpfld error (first paragraph)."""
    lines = [l for l in err.splitlines() if l.strip()]
    if not lines:
        return "no message"
    if "the kernel rejected the BTF" in err:
        # The kernel's own reason is its last log line (after the type).
        return lines[0] + " | " + " | ".join(lines[-2:])
    return lines[0]


def libbpf_error(err):
    """libbpf's reason for a failed load: the program that failed and the
    verifier's last word, else its last lines."""
    lines = [l.strip() for l in err.splitlines() if l.strip()]
    prog = [l for l in lines if l.startswith("libbpf: prog '") and "fail" in l]
    if prog:
        why = prog[0]
        for i, l in enumerate(lines):
            if l.startswith("processed ") and " insns " in l and i > 0:
                why += " | " + lines[i - 1]
                break
        return why
    keep = [l for l in lines if l.startswith("libbpf:") or l.startswith("Error:")] or lines
    return " | ".join(keep[-2:]) if keep else "no message"


def normalize_objdump(text):
    start = text.find("Disassembly of section")
    text = text[start:] if start >= 0 else ""
    out = []
    for l in text.splitlines():
        head = l.lstrip().split(":")[0]
        is_insn = l.startswith(" ") and head.strip().isdigit()
        i = l.find(" <")
        out.append(l[:i] if is_insn and i >= 0 else l)
    return out


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return "line %d: bpfld '%s' vs '%s'" % (i + 1, x.strip(), y.strip())
    return "lengths differ: %d vs %d lines" % (len(a), len(b))


def unpin_by_name(run, obj):
    """libbpf pins LIBBPF_PIN_BY_NAME maps under /sys/fs/bpf and reuses
    them: remove the ones this object pins so no state leaks."""
    rc, out, _ = sh([run.bpfld, "inspect", "--json", obj])
    if rc != 0:
        return
    try:
        maps = json.loads(out).get("maps", [])
    except ValueError:
        return
    for m in maps:
        if m.get("pinning") == 1 and m.get("name"):
            try:
                os.unlink(os.path.join(PIN_ROOT, m["name"]))
            except OSError:
                pass


def loadall(run, obj):
    """{program: verified_insns} of what libbpf loads (the whole object in
    one load, as `bpftool prog loadall`), or an error string."""
    progs, err = loadall_types(run, obj)
    if progs is None:
        return None, err
    return {name: n for name, (_, n) in progs.items()}, None


def loadall_types(run, obj):
    """{program: (libbpf's type name, verified_insns)} of what libbpf loads
    (tools/corpus-run --loadall), or an error string."""
    try:
        rc, out, err = sh([run.runner, obj, "--loadall"])
    finally:
        unpin_by_name(run, obj)
    if rc != 0:
        return None, libbpf_error(err)
    progs = {}
    for line in out.decode(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 3:
            progs[parts[0]] = (parts[1], int(parts[2]))
    return progs, None


def counts_differ(diffs, counted, ref_btf_ok):
    """Verdict on differences: a verified-instruction count may differ when
    the kernel refuses the input's own BTF, so that libbpf loads the input
    without it while bpfld's output keeps it (global functions are then
    verified on their own, as the kernel does with BTF)."""
    if not ref_btf_ok and counted and all("verified insns" in d for d in diffs):
        return "pass", "counts differ (the input's BTF is refused by the kernel, the output's is not): " + "; ".join(diffs[:3])
    return None


def compare_loads(run, ref_obj, ours_obj, paths, ref_btf_ok=True):
    """The loadall check: ('pass'|'fail'|'skip', reason)."""
    ref, err = loadall(run, ref_obj)
    if ref is None:
        return "skip", "libbpf cannot load the reference: " + clean(err, paths)
    if not ref:
        return "skip", "no programs"
    ours, err = loadall(run, ours_obj)
    if ours is None:
        return "fail", "libbpf cannot load bpfld's output: " + clean(err, paths)
    diffs = []
    for name, n in sorted(ref.items()):
        if name not in ours:
            diffs.append("%s not loaded" % name)
        elif ours[name] != n:
            diffs.append("%s: %s verified insns, reference %s" % (name, ours[name], n))
    if diffs:
        return counts_differ(diffs, True, ref_btf_ok) or (
            "fail", "; ".join(diffs[:3]) + ("; ..." if len(diffs) > 3 else ""))
    return "pass", "%d programs" % len(ref)


def each_prog(run, obj):
    """{program: verified_insns or None when it fails}, or an error string."""
    try:
        rc, out, err = sh([run.runner, obj, "--each-prog"])
    finally:
        unpin_by_name(run, obj)
    if rc != 0:
        return None, libbpf_error(err)
    progs = {}
    for line in out.decode(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 2:
            progs[parts[0]] = int(parts[1])
        elif len(parts) == 3 and parts[1] == "failed":
            progs[parts[0]] = None
    return progs, None


def compare_each_prog(run, ref_obj, ours_obj, paths, ref_loads=None, ref_btf_ok=True):
    """The prog-load check: ('pass'|'fail'|'skip', reason)."""
    ref, err = ref_loads if ref_loads else each_prog(run, ref_obj)
    if ref is None:
        return "skip", "libbpf cannot open the reference: " + clean(err, paths)
    loaded = {n: c for n, c in ref.items() if c is not None}
    if not loaded:
        return "skip", "no program loads from the reference"
    ours, err = each_prog(run, ours_obj)
    if ours is None:
        return "fail", "libbpf cannot open bpfld's output: " + clean(err, paths)
    diffs = []
    for name, n in sorted(loaded.items()):
        if name not in ours:
            diffs.append("%s missing" % name)
        elif ours[name] is None:
            diffs.append("%s does not load" % name)
        elif ours[name] != n:
            diffs.append("%s: %s verified insns, reference %s" % (name, ours[name], n))
    if diffs:
        return counts_differ(diffs, True, ref_btf_ok) or ("fail", "%d of %d: " % (len(diffs), len(loaded)) + "; ".join(diffs[:3]) + ("; ..." if len(diffs) > 3 else ""))
    return "pass", "%d programs" % len(loaded)


def compare_verify(run, path, paths, ref_loads):
    """The verify check: ('pass'|'fail'|'skip', reason)."""
    ref, err = ref_loads
    if ref is None:
        return "skip", "libbpf cannot open the reference: " + clean(err, paths)
    loaded = {n: c for n, c in ref.items() if c is not None}
    if not loaded:
        return "skip", "no program loads from the reference"
    # Exit status 1 only says some program failed: the JSON says which.
    # (bpfld pins maps in a directory of its own and removes it.)
    rc, out, err = sh([run.bpfld, "verify", path, "--json"])
    try:
        ours = {p["prog_name"]: p for p in json.loads(out.decode(errors="replace"))}
    except ValueError:
        # The error, not a warning printed before it.
        line = next((l for l in err.splitlines() if "error:" in l), None)
        return "fail", clean(line or bpfld_error(err), paths)
    diffs = []
    for name, n in sorted(loaded.items()):
        p = ours.get(name)
        if p is None:
            diffs.append("%s missing" % name)
        elif p["verdict"] != "success":
            rej = p.get("rejection") or {}
            why = rej.get("reason") or rej.get("error") or "?"
            diffs.append("%s does not load: %s" % (name, why))
        elif p["verified_insns"] != n:
            diffs.append("%s: %s verified insns, reference %s" % (name, p["verified_insns"], n))
    if diffs:
        return "fail", clean("%d of %d: " % (len(diffs), len(loaded)) + "; ".join(diffs[:3]) + ("; ..." if len(diffs) > 3 else ""), paths)
    return "pass", "%d programs" % len(loaded)


# libbpf's names (as bpftool prog show prints them) of the types `bpfld
# run` runs.
RUN_TYPES = {
    "xdp", "sched_cls", "socket_filter", "cgroup_skb", "flow_dissector",
    "raw_tracepoint", "syscall", "lwt_in", "lwt_out", "lwt_xmit", "lwt_seg6local",
}


def run_load(run, obj, paths):
    """The run-load check: ('pass'|'fail'|'skip', reason)."""
    loaded, err = loadall_types(run, obj)
    if loaded is None:
        return "skip", "libbpf cannot load the object: " + clean(err, paths)
    progs = sorted(name for name, (t, _) in loaded.items() if t in RUN_TYPES)
    if not progs:
        return "skip", "no program of a type bpfld runs loads with libbpf"
    missed = []
    for name in progs:
        rc, _, err = sh([run.bpfld, "run", obj, "--prog", name, "--json"])
        text = bpfld_error(err)
        if rc != 0 and "BPF_PROG_TEST_RUN failed" not in text:
            missed.append("%s: %s" % (name, clean(text, paths)[:160]))
    if missed:
        return "fail", "%d of %d programs: " % (len(progs) - len(missed), len(progs)) + "; ".join(missed[:3])
    return "pass", "%d of %d programs" % (len(progs), len(progs))


def check_object(run, oid, path):
    """Every per-object check: {check: (status, reason)}."""
    r = {}
    short = os.path.basename(path)
    paths = [(path, short)]
    b = run.bpfld

    rc, _, err = sh([b, "inspect", path])
    r["inspect"] = ("pass", "") if rc == 0 else ("fail", clean(bpfld_error(err), paths))

    rc, ours, err = sh([b, "disasm", path])
    rc2, theirs, err2 = sh(["llvm-objdump-19", "-dr", "--no-show-raw-insn", path])
    if rc2 != 0:
        r["disasm"] = ("skip", "llvm-objdump-19 fails: " + clean(err2, paths))
    elif rc != 0:
        r["disasm"] = ("fail", clean(bpfld_error(err), paths))
    else:
        a = normalize_objdump(ours.decode(errors="replace"))
        c = normalize_objdump(theirs.decode(errors="replace"))
        r["disasm"] = ("pass", "") if a == c else ("fail", clean(first_difference(a, c), paths))

    rc, ours, err = sh([b, "btf", "dump", path])
    rc2, theirs, err2 = sh(["bpftool", "btf", "dump", "file", path])
    if rc2 != 0:
        r["btf-dump"] = ("skip", "bpftool fails: " + clean(err2, paths))
    elif rc != 0:
        r["btf-dump"] = ("fail", clean(bpfld_error(err), paths))
    elif ours != theirs:
        a = ours.decode(errors="replace").splitlines()
        c = theirs.decode(errors="replace").splitlines()
        r["btf-dump"] = ("fail", clean(first_difference(a, c), paths))
    else:
        r["btf-dump"] = ("pass", "")

    d = run.tmpdir(oid)
    x1, x2 = os.path.join(d, "x1.o"), os.path.join(d, "x2.o")
    paths += [(x1, "x1.o"), (x2, "x2.o"), (d + "/", "")]
    linked = link_output_checks(run, r, "", [path], x1, x2, paths)
    ref_loads = each_prog(run, path)
    if linked:
        # Does libbpf keep the input's own BTF when it loads it?
        ref_btf_ok = sh([b, "btf", "check", path])[0] == 0
        r["loadall"] = compare_loads(run, path, x1, paths, ref_btf_ok)
        r["prog-load"] = compare_each_prog(run, path, x1, paths, ref_loads, ref_btf_ok)
    else:
        why = "partial link" if r["link"][0] == "skip" else "not linked"
        r["loadall"] = ("skip", why)
        r["prog-load"] = ("skip", why)
    r["verify"] = compare_verify(run, path, paths, ref_loads)
    compose_checks(run, r, path, d, ref_loads[0] or {}, paths)
    r["run-load"] = run_load(run, path, paths)
    shutil.rmtree(d, ignore_errors=True)
    return r


def compose_checks(run, r, path, d, ref_loads, paths):
    """compose, compose-btf-check, compose-load over the object's XDP
    programs, each composed alone."""
    rc, out, _ = sh([run.bpfld, "inspect", "--json", path])
    try:
        progs = [p["name"] for p in json.loads(out)["programs"] if p.get("prog_type") == "xdp"]
    except (ValueError, KeyError, TypeError):
        progs = []
    if rc != 0 or not progs:
        for c in ("compose", "compose-btf-check", "compose-load", "optimize"):
            r[c] = ("skip", "no XDP program" if rc == 0 else "not inspected")
        return
    failed, btf_failed, load_failed, composed, loads = [], [], [], 0, 0
    optimized = []
    for prog in progs:
        c = os.path.join(d, "c-%s.o" % prog)
        paths.append((c, "c.o"))
        rc, _, err = sh([run.bpfld, "xdp", "compose", "-o", c, "%s:%s" % (path, prog)])
        if rc != 0:
            failed.append("%s: %s" % (prog, clean(bpfld_error(err), paths)))
            continue
        composed += 1
        rc, _, err = sh([run.bpfld, "btf", "check", c])
        if rc != 0:
            btf_failed.append("%s: %s" % (prog, clean(bpfld_error(err), paths)))
        if ref_loads.get(prog) is None:
            continue  # the component does not load alone: nothing to expect
        ours, err = each_prog(run, c)
        if ours is None:
            load_failed.append("%s: libbpf cannot open the composition: %s" % (prog, clean(err, paths)))
        elif ours.get("bpfld_xdp") is None:
            # Again in one load, for the verifier's reason.
            _, why = loadall(run, c)
            load_failed.append("%s: the dispatcher does not load: %s" % (prog, clean(why or "", paths)))
        else:
            loads += 1
            optimized.append((prog, c))
    n = len(progs)
    r["compose"] = ("fail", "%d of %d: %s" % (len(failed), n, failed[0])) if failed else ("pass", "%d programs" % n)
    if not composed:
        r["compose-btf-check"] = ("skip", "nothing composed")
    elif btf_failed:
        r["compose-btf-check"] = ("fail", "%d of %d: %s" % (len(btf_failed), composed, btf_failed[0]))
    else:
        r["compose-btf-check"] = ("pass", "%d compositions" % composed)
    if load_failed:
        r["compose-load"] = ("fail", "%d of %d: %s" % (len(load_failed), len(load_failed) + loads, load_failed[0]))
    elif loads:
        r["compose-load"] = ("pass", "%d compositions" % loads)
    else:
        r["compose-load"] = ("skip", "no composed program loads alone from the input")
    r["optimize"] = optimize_check(run, path, d, optimized, paths)


def test_frames():
    """The frames the optimize check runs: each ethertype and protocol an
    XDP program commonly branches on, cut at every header boundary, plus
    random bytes (a fixed seed: the same frames on every run)."""
    import random
    import struct
    rnd = random.Random(20261204)
    mac = bytes.fromhex("020000000001020000000002")
    l4 = {
        6: struct.pack("!HHIIBBHHH", 1234, 80, 1, 0, 0x50, 0x02, 512, 0, 0),
        17: struct.pack("!HHHH", 5353, 53, 16, 0) + b"payload!",
        1: struct.pack("!BBHHH", 8, 0, 0, 1, 1) + b"ping",
        58: struct.pack("!BBHHH", 128, 0, 0, 1, 1) + b"ping",
    }
    frames = []
    for proto, payload in l4.items():
        if proto != 58:
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64,
                             proto, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
            frames.append(mac + b"\x08\x00" + ip + payload)
            frames.append(mac + b"\x81\x00\x00\x01\x08\x00" + ip + payload)
        nh = 58 if proto == 58 else proto
        ip6 = struct.pack("!IHBB16s16s", 0x60000000, len(payload), nh, 64,
                          bytes(15) + b"\x01", bytes(15) + b"\x02")
        frames.append(mac + b"\x86\xdd" + ip6 + payload)
    frames.append(mac + b"\x08\x06" + bytes.fromhex("0001080006040001") + bytes(20))
    for et in (b"\x88\xcc", b"\x00\x2e", b"\x88\xa8", b"\x81\x00"):
        frames.append(mac + et + bytes(rnd.randrange(256) for _ in range(46)))
    cut = []
    for f in frames:
        for n in (14, 15, 18, 33, 34, 35, 38, 42, 53, 54, 55, 58, 62):
            if n < len(f):
                cut.append(f[:n])
    frames += cut
    # Each structured frame again with random bytes after its headers
    # (ports, flags, lengths the programs compare), then random frames:
    # 2,000 in all.
    base = list(frames)
    while len(frames) < 1500:
        f = bytearray(rnd.choice(base))
        for _ in range(4):
            if len(f) > 14:
                f[rnd.randrange(14, len(f))] = rnd.randrange(256)
        frames.append(bytes(f))
    while len(frames) < 2000:
        frames.append(bytes(rnd.randrange(256) for _ in range(rnd.randrange(14, 200))))
    return frames


def write_pcap(path, frames):
    import struct
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", i, 0, len(fr), len(fr)) + fr)


def optimize_check(run, path, d, composed, paths):
    """The optimize check: ('pass'|'fail'|'skip', reason)."""
    if not composed:
        return "skip", "no composition loads"
    pcap = os.path.join(d, "frames.pcap")
    frames = test_frames()
    write_pcap(pcap, frames)
    diffs, lower, untested = [], 0, []
    for prog, _ in composed:
        # Two instances, so that what the pass does across components
        # (threaded chain compares, packet bounds kept) runs too.
        opt = os.path.join(d, "opt2-%s.o" % prog)
        plain = os.path.join(d, "plain2-%s.o" % prog)
        paths += [(opt, "opt2.o"), (plain, "plain2.o")]
        both = ["%s:%s" % (path, prog)] * 2
        rc, _, err = sh([run.bpfld, "xdp", "compose", "-o", opt] + both)
        if rc == 0:
            rc, _, err = sh([run.bpfld, "xdp", "compose", "--no-optimize", "-o", plain] + both)
        if rc != 0 and "the kernel would refuse" in err:
            untested.append(prog)  # two instances exceed a kernel limit
            continue
        if rc != 0:
            diffs.append("%s: composing two instances: %s" % (prog, clean(bpfld_error(err), paths)))
            continue
        c = opt
        seen = []
        for obj in (c, plain):
            out_pcap = obj + ".out.pcap"
            # One CPU: per-CPU maps then compare entry for entry.
            rc, out, err = sh(["taskset", "-c", "0", run.bpfld, "run", obj, "--pcap", pcap,
                               "--json", "--all", "--data-out", out_pcap])
            unpin_by_name(run, obj)
            if rc != 0:
                seen.append(("error", clean(bpfld_error(err), paths)))
                continue
            try:
                j = json.loads(out)
            except ValueError:
                seen.append(("error", "no JSON"))
                continue
            with open(out_pcap, "rb") as f:
                packets = f.read()
            verdicts = [x.get("retval") for x in j.get("runs", [])]
            seen.append(("ok", verdicts, packets, j.get("maps"), j.get("verified_insns")))
        (a, b) = seen
        if a[0] != "ok" and b[0] != "ok":
            untested.append(prog)  # neither runs (a devmap program, ...)
            continue
        if a[0] != "ok" or b[0] != "ok":
            diffs.append("%s: %s" % (prog, "optimised: " + a[1] if a[0] != "ok" else "--no-optimize: " + b[1]))
            continue
        if a[1] != b[1]:
            k = next(i for i, (x, y) in enumerate(zip(a[1], b[1])) if x != y) if len(a[1]) == len(b[1]) else -1
            diffs.append("%s: verdicts differ (frame %d)" % (prog, k))
        elif a[2] != b[2]:
            diffs.append("%s: packets out differ" % prog)
        elif a[3] != b[3]:
            diffs.append("%s: maps differ" % prog)
        elif a[4] is not None and b[4] is not None and a[4] > b[4]:
            diffs.append("%s: %s verified insns optimised, %s not" % (prog, a[4], b[4]))
        else:
            lower += a[4] is not None and b[4] is not None and a[4] < b[4]
    if diffs:
        return "fail", "%d of %d: %s" % (len(diffs), len(composed), "; ".join(diffs[:2]))
    tested = len(composed) - len(untested)
    if not tested:
        return "skip", "no composition can be test-run or doubled (%s)" % ", ".join(untested[:3])
    return "pass", "%d compositions, %d frames each, the same; %d verified in fewer insns" % (
        tested, len(frames), lower)


def link_output_checks(run, r, prefix, inputs, x1, x2, paths):
    """link, fixed-point and btf-check (named with `prefix`)."""
    b = run.bpfld
    partial = []
    rc, _, err = sh([b, "link", "-o", x1] + inputs)
    if rc != 0 and prefix == "" and "unresolved extern" in err:
        # One part of a multi-object program (linked_funcs1, ...): link it
        # as a partial link, so that at least its fixed point is checked.
        partial = ["--relocatable"]
        rc, _, err = sh([b, "link", "--relocatable", "-o", x1] + inputs)
        if rc == 0:
            r["link"] = ("skip", "unresolved externs: checked as a partial link (--relocatable)")
    elif prefix == "":
        r["link"] = ("pass", "") if rc == 0 else ("fail", clean(bpfld_error(err), paths))
    if rc != 0:
        if partial:
            r["link"] = ("fail", "--relocatable: " + clean(bpfld_error(err), paths))
        r[prefix + "fixed-point"] = ("skip", "not linked")
        r[prefix + "btf-check"] = ("skip", "not linked")
        return False
    rc, _, err = sh([b, "link"] + partial + ["-o", x2, x1])
    if rc != 0:
        r[prefix + "fixed-point"] = ("fail", "relink fails: " + clean(bpfld_error(err), paths))
    else:
        with open(x1, "rb") as f1, open(x2, "rb") as f2:
            a, c = f1.read(), f2.read()
        if a == c:
            r[prefix + "fixed-point"] = ("pass", "")
        else:
            r[prefix + "fixed-point"] = ("fail", fixed_point_difference(run, x1, x2, paths))
    if partial:
        r[prefix + "btf-check"] = ("skip", "partial link: libbpf does not load unresolved externs")
        return False
    rc, _, err = sh([b, "btf", "check", x1])
    if rc == 0:
        r[prefix + "btf-check"] = ("pass", "")
    else:
        why = bpfld_error(err)
        # Does the kernel take libbpf's own linker output of the same inputs?
        ref = x1 + ".libbpf.o"
        rc, _, _ = sh([run.runner, "--link", ref] + inputs)
        if rc == 0:
            rc, _, _ = sh([b, "btf", "check", ref])
            why += " [libbpf-linked: %s]" % ("accepted" if rc == 0 else "rejected too")
        else:
            why += " [libbpf-linked: libbpf's linker refuses the input]"
        r[prefix + "btf-check"] = ("fail", clean(why, paths))
    return True


def line_diff(a, b):
    """The first lines only one side has, e.g. a DATASEC entry lost (a
    line lost or gained says more than a changed count before it)."""
    ops = [o for o in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes() if o[0] != "equal"]
    ops.sort(key=lambda o: o[0] == "replace")
    for op, i1, i2, j1, j2 in ops:
        gone = " / ".join(l.strip() for l in a[i1:min(i2, i1 + 2)])
        new = " / ".join(l.strip() for l in b[j1:min(j2, j1 + 2)])
        return "x1 line %d '%s' became '%s' in x2" % (i1 + 1, gone, new)
    return "no difference"


def fixed_point_difference(run, x1, x2, paths):
    """Where link(link(x)) differs from link(x), in words."""
    for what in (["inspect"], ["btf", "dump"], ["disasm"]):
        rc1, a, _ = sh([run.bpfld] + what + [x1])
        rc2, c, _ = sh([run.bpfld] + what + [x2])
        if rc1 == 0 and rc2 == 0:
            la = a.decode(errors="replace").replace(x1, "X").splitlines()
            lc = c.decode(errors="replace").replace(x2, "X").splitlines()
            if la != lc:
                return clean("%s differs: %s" % (" ".join(what), line_diff(la, lc)), paths)
    return "bytes differ (listings agree)"


def check_group(run, gid, paths_in):
    r = {}
    d = run.tmpdir(gid)
    x1, x2 = os.path.join(d, "x1.o"), os.path.join(d, "x2.o")
    ref = os.path.join(d, "ref.o")
    paths = [(p, os.path.basename(p)) for p in paths_in]
    paths += [(x1, "x1.o"), (x2, "x2.o"), (ref, "ref.o"), (d + "/", "")]
    rc, _, err = sh([run.bpfld, "link", "-o", x1] + paths_in)
    ours = rc == 0
    ours_err = "" if ours else clean(bpfld_error(err), paths)
    rc, _, err = sh([run.runner, "--link", ref] + paths_in)
    theirs = rc == 0
    theirs_err = "" if theirs else clean(libbpf_error(err), paths)
    if ours and theirs:
        r["pair-link"] = ("pass", "both link")
    elif not ours and not theirs:
        r["pair-link"] = ("pass", "both refuse: " + ours_err)
    elif ours:
        r["pair-link"] = ("fail", "bpfld links, libbpf refuses: " + theirs_err)
    else:
        r["pair-link"] = ("fail", "libbpf links, bpfld refuses: " + ours_err)
    if ours:
        link_output_checks(run, r, "pair-", paths_in, x1, x2, paths)
    else:
        r["pair-fixed-point"] = ("skip", "not linked")
        r["pair-btf-check"] = ("skip", "not linked")
    if ours and theirs:
        r["pair-loadall"] = compare_loads(run, ref, x1, paths)
    else:
        r["pair-loadall"] = ("skip", "not linked by both")
    spec = RUNS.get(gid.split("/")[-1])
    if spec is None:
        r["pair-run"] = ("skip", "no values to check")
    elif not ours:
        r["pair-run"] = ("skip", "not linked")
    else:
        ok, why = run_values(run, x1, spec, paths)
        if theirs:
            ok2, _ = run_values(run, ref, spec, paths)
            why += " [libbpf-linked: %s]" % ("same values" if ok2 else "fails too")
        r["pair-run"] = ("pass" if ok else "fail", why)
    shutil.rmtree(d, ignore_errors=True)
    return r


def run_values(run, obj, spec, paths):
    """Loads, attaches and triggers `obj` with tools/corpus-run; (values as
    expected, reason)."""
    sets, gets = spec
    cmd = [run.runner, obj] + sets
    for sec, var, _ in gets:
        cmd += ["--get", "%s:%s" % (sec, var)]
    with run.run_lock:  # the programs see every syscall: one run at a time
        rc, out, err = sh(cmd)
    if rc != 0:
        return False, "does not run: " + clean(libbpf_error(err), paths)
    got = dict(l.split("=", 1) for l in out.decode().splitlines() if "=" in l)
    wrong = []
    for _, var, want in gets:
        want = got.get("SYS_getpgid") if want == "getpgid" else want
        if got.get(var) != want:
            wrong.append("%s=%s, expected %s" % (var, got.get(var), want))
    if wrong:
        return False, "; ".join(wrong)
    return True, "%d values as expected" % len(gets)


def read_expected(path):
    exp = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 3:
                    exp[(parts[0], parts[1])] = parts[2]
    return exp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bpfld", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--expected", required=True)
    ap.add_argument("--selftests", required=True)
    ap.add_argument("--selftests-src", required=True)
    ap.add_argument("--xdp-tools", required=True)
    ap.add_argument("--gcc", required=True)
    ap.add_argument("--runner", required=True, help="tools/corpus-run built")
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--only", help="check only objects whose id matches this regex")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    run = Run(args)
    os.makedirs(run.work, exist_ok=True)

    objects = []  # (id, path)
    for f in sorted(os.listdir(args.selftests)):
        if f.endswith(".o"):
            objects.append(("selftests/" + f, os.path.join(args.selftests, f)))
    for f in sorted(os.listdir(args.xdp_tools)):
        if f.endswith(".o"):
            objects.append(("xdp-tools/" + f, os.path.join(args.xdp_tools, f)))
    for f in sorted(os.listdir(args.gcc)):
        if f.endswith(".o"):
            objects.append(("gcc/" + f, os.path.join(args.gcc, f)))

    built = {f[: -len(".bpf.o")] for f in os.listdir(args.selftests) if f.endswith(".bpf.o")}
    srcs = {f[:-2] for f in os.listdir(os.path.join(args.selftests_src, "progs")) if f.endswith(".c")}
    groups = []
    for s in sorted(srcs):
        if s.endswith("1") and s[:-1] + "2" in srcs:
            groups.append([s, s[:-1] + "2"])
    groups += MAKEFILE_GROUPS
    group_jobs = []  # (id, paths) or (id, None, reason)
    for g in groups:
        gid = "selftests/" + "+".join(g)
        missing = [n for n in g if n not in built]
        if missing:
            group_jobs.append((gid, None, "not built: " + ", ".join(missing)))
        else:
            group_jobs.append((gid, [os.path.join(args.selftests, n + ".bpf.o") for n in g], None))

    if args.only:
        rx = re.compile(args.only)
        objects = [o for o in objects if rx.search(o[0])]
        group_jobs = [g for g in group_jobs if rx.search(g[0])]

    results = {}  # (check, id) -> (status, reason)
    start = time.time()
    done = [0]
    total = len(objects) + len(group_jobs)

    def record(oid, r):
        with run.lock:
            for check, v in r.items():
                results[(check, oid)] = v
            done[0] += 1
            if done[0] % 100 == 0:
                print("corpus: %d/%d checked (%d s)" % (done[0], total, time.time() - start), flush=True)

    def obj_job(o):
        try:
            r = check_object(run, o[0], o[1])
        except Exception as e:  # a runner bug must not hide the other objects
            r = {"inspect": ("fail", "corpus runner error: %r" % e)}
        record(o[0], r)

    def group_job(g):
        gid, paths, why = g
        if paths is None:
            record(gid, {c: ("skip", why) for c in CHECKS if c.startswith("pair-")})
            return
        try:
            r = check_group(run, gid, paths)
        except Exception as e:
            r = {"pair-link": ("fail", "corpus runner error: %r" % e)}
        record(gid, r)

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as ex:
        futs = [ex.submit(obj_job, o) for o in objects] + [ex.submit(group_job, g) for g in group_jobs]
        for f in futs:
            f.result()
    shutil.rmtree(run.work, ignore_errors=True)

    with open(os.path.join(args.out, "results.tsv"), "w") as f:
        f.write("# check\tobject\tstatus\treason\n")
        for (check, oid), (st, why) in sorted(results.items(), key=lambda kv: (CHECKS.index(kv[0][0]), kv[0][1])):
            f.write("%s\t%s\t%s\t%s\n" % (check, oid, st, why))

    expected = read_expected(args.expected)
    regressions, improvements, lines = [], [], []
    for check in CHECKS:
        mine = {oid: v for (c, oid), v in results.items() if c == check}
        if not mine:
            continue
        n = {s: sum(1 for v in mine.values() if v[0] == s) for s in ("pass", "fail", "skip")}
        reg = sorted(o for o, v in mine.items() if v[0] == "fail" and expected.get((check, o)) == "pass")
        imp = sorted(o for o, v in mine.items() if v[0] == "pass" and expected.get((check, o)) == "fail")
        regressions += [(check, o, mine[o][1]) for o in reg]
        improvements += [(check, o) for o in imp]
        lines.append(
            "corpus: %-16s %4d pass, %4d fail, %4d skip; %d regressions, %d improvements"
            % (check + ":", n["pass"], n["fail"], n["skip"], len(reg), len(imp))
        )
    # Distinct failure reasons per check, with counts and examples.
    with open(os.path.join(args.out, "summary.txt"), "w") as f:
        for l in lines:
            f.write(l + "\n")
        for check in CHECKS:
            reasons = {}
            for (c, oid), (st, why) in results.items():
                if c == check and st != "pass":
                    for part in oid.split("/")[-1].split("+"):
                        why = why.replace(part, "OBJ")
                    key = st + ": " + re.sub(r"\d+", "N", why)[:200]
                    reasons.setdefault(key, []).append(oid)
            if not reasons:
                continue
            f.write("\n== %s: %d distinct failure and skip reasons\n" % (check, len(reasons)))
            for key, oids in sorted(reasons.items(), key=lambda kv: -len(kv[1])):
                f.write("%5d  %s\n       e.g. %s\n" % (len(oids), key, ", ".join(sorted(oids)[:4])))

    if args.update:
        rows = dict(results)
        if args.only:
            # A partial run rewrites only what it checked.
            with open(args.expected) as f:
                for line in f:
                    parts = line.rstrip("\n").split("\t")
                    if not line.startswith("#") and len(parts) >= 3 and (parts[0], parts[1]) not in rows:
                        rows[(parts[0], parts[1])] = (parts[2], parts[3] if len(parts) > 3 else "")
        with open(args.expected, "w") as f:
            f.write("# Expected corpus outcomes (scripts/corpus.sh --update writes this file).\n")
            f.write("# check\tobject\tpass|fail|skip\treason\n")
            for (check, oid), (st, why) in sorted(rows.items(), key=lambda kv: (CHECKS.index(kv[0][0]), kv[0][1])):
                f.write("%s\t%s\t%s\t%s\n" % (check, oid, st, why))
    for l in lines:
        print(l)
    for check, o, why in regressions:
        print("corpus: REGRESSION %s %s: %s" % (check, o, why))
    for check, o in improvements:
        print("corpus: improvement %s %s (run scripts/corpus.sh --update to record it)" % (check, o))
    print(
        "corpus: %d objects, %d groups in %d s; details in %s"
        % (len(objects), len(group_jobs), time.time() - start, os.path.join(args.out, "results.tsv"))
    )
    if args.update:
        print("corpus: %s rewritten" % args.expected)
        return 0
    if regressions:
        print("corpus: %d regressions from %s" % (len(regressions), args.expected))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
