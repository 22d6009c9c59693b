#!/usr/bin/env python3
"""Builds the seed corpora fuzz/corpus/<target>/ from the committed fixtures.

    python3 fuzz/make_seeds.py

elf      every fixtures/*.o and fixtures/damaged/* file
insn     the code sections of every fixture (both byte orders)
btf      every fixture's .BTF section, the damaged raw *.btf files, and
         self-contained slices of /sys/kernel/btf/vmlinux (when present):
         the type closure of a few kernel structs, renumbered, with their
         own string table
btf_ext  every fixture's .BTF.ext section (fixtures/core.o's matches the
         BTF the target parses against)
link     pairs of fixtures joined by the separator the link target splits on
btf_view the btf and elf seeds together (raw BTF and whole objects)
pcap     the committed captures, fixtures/pcap/*
image    the OCI archives in fuzz/regressions/image

Deterministic; the corpora are not committed (libFuzzer grows them).
"""

import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "fixtures")
OUT = os.path.join(ROOT, "fuzz", "corpus")
# Must match LINK_SEPARATOR in fuzz/src/lib.rs.
LINK_SEPARATOR = b"\n--bpfld-fuzz-next-object--\n"
# Larger seeds (fixtures/insn_gotol_far.o, 321 KB) make every execution
# slow; the fuzzers run with -max_len=65536.
MAX_SEED = 64 * 1024


def sections(data):
    """(name, sh_type, sh_flags, bytes) of each section of an ELF64 file."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return []
    e = "<" if data[5] == 1 else ">"
    shoff, = struct.unpack_from(e + "Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 0x3A)
    hdrs = []
    for i in range(shnum):
        name, typ, flags, _addr, off, size = struct.unpack_from(
            e + "IIQQQQ", data, shoff + i * shentsize
        )
        hdrs.append((name, typ, flags, off, size))
    stroff, strsize = hdrs[shstrndx][3], hdrs[shstrndx][4]
    out = []
    for name, typ, flags, off, size in hdrs:
        end = data.index(b"\0", stroff + name)
        n = data[stroff + name : end].decode()
        body = b"" if typ == 8 else data[off : off + size]
        out.append((n, typ, flags, body))
    return out


def write(target, name, body):
    if len(body) > MAX_SEED:
        return
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(body)


# --- vmlinux slices -------------------------------------------------------

# kind -> bytes per vlen entry (STRUCT UNION ENUM FUNC_PROTO DATASEC ENUM64)
KIND_VLEN_SIZE = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}
# kind -> bytes after the common 12-byte header (INT ARRAY VAR DECL_TAG)
KIND_EXTRA = {1: 4, 3: 12, 14: 4, 17: 4}


def parse_btf(raw):
    magic, ver, flags, hdr_len, toff, tlen, soff, slen = struct.unpack_from(
        "<HBBIIIII", raw, 0
    )
    assert magic == 0xEB9F
    types = raw[hdr_len + toff : hdr_len + toff + tlen]
    strs = raw[hdr_len + soff : hdr_len + soff + slen]
    recs = [None]  # id 0 = void
    p = 0
    while p < len(types):
        name_off, info, size_type = struct.unpack_from("<III", types, p)
        kind = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        n = 12 + KIND_EXTRA.get(kind, 0) + vlen * KIND_VLEN_SIZE.get(kind, 0)
        recs.append(bytearray(types[p : p + n]))
        p += n
    return recs, strs


def refs(rec):
    """(offset in rec, is_type_ref) of every type-id and name-offset field."""
    name_off, info, _ = struct.unpack_from("<III", rec, 0)
    kind = (info >> 24) & 0x1F
    vlen = info & 0xFFFF
    out = [(0, False)]
    if kind in (2, 8, 9, 10, 11, 12, 13, 14, 17, 18):
        out.append((8, True))  # size_type is a type id for these kinds
    if kind == 3:  # ARRAY: elem type, index type
        out += [(12, True), (16, True)]
    if kind in (4, 5):
        for i in range(vlen):
            out += [(12 + 12 * i, False), (12 + 12 * i + 4, True)]
    if kind in (6, 19):
        step = 8 if kind == 6 else 12
        for i in range(vlen):
            out.append((12 + step * i, False))
    if kind == 13:
        for i in range(vlen):
            out += [(12 + 8 * i, False), (12 + 8 * i + 4, True)]
    if kind == 15:
        for i in range(vlen):
            out.append((12 + 12 * i, True))
    return out


def vmlinux_slice(recs, strs, roots, limit):
    order, seen, stack = [], set(), list(roots)
    while stack:
        t = stack.pop()
        if t == 0 or t in seen or t >= len(recs):
            continue
        seen.add(t)
        order.append(t)
        if len(order) > limit:
            return None
        for off, is_type in refs(recs[t]):
            if is_type:
                stack.append(struct.unpack_from("<I", recs[t], off)[0])
    order.sort()
    newid = {old: i + 1 for i, old in enumerate(order)}
    newid[0] = 0
    strtab, stroffs = bytearray(b"\0"), {0: 0}
    out = bytearray()
    for t in order:
        rec = bytearray(recs[t])
        for off, is_type in refs(rec):
            v = struct.unpack_from("<I", rec, off)[0]
            if is_type:
                struct.pack_into("<I", rec, off, newid[v])
            else:
                if v not in stroffs:
                    end = strs.index(b"\0", v)
                    stroffs[v] = len(strtab)
                    strtab += strs[v : end + 1]
                struct.pack_into("<I", rec, off, stroffs[v])
        out += rec
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(out), len(out), len(strtab))
    return hdr + bytes(out) + bytes(strtab)


def vmlinux_seeds():
    path = "/sys/kernel/btf/vmlinux"
    if not os.path.exists(path):
        print("no /sys/kernel/btf/vmlinux: skipping vmlinux slices", file=sys.stderr)
        return
    recs, strs = parse_btf(open(path, "rb").read())
    names = {}
    for i, r in enumerate(recs[1:], 1):
        name_off, info, _ = struct.unpack_from("<III", r, 0)
        end = strs.index(b"\0", name_off)
        names.setdefault((strs[name_off:end].decode(), (info >> 24) & 0x1F), i)
    wanted = [
        ("xdp_md", 4), ("iphdr", 4), ("ethhdr", 4), ("bpf_map_type", 6),
        ("__sk_buff", 4), ("bpf_attr", 5), ("sock_common", 4), ("bpf_func_id", 6),
        ("task_struct", 4), ("bpf_prog", 4), ("sk_buff", 4), ("bpf_xdp_sock", 4),
    ]
    n = 0
    for name, kind in wanted:
        t = names.get((name, kind))
        if t is None:
            continue
        s = vmlinux_slice(recs, strs, [t], 3000)
        if s is None or len(s) > 256 * 1024:
            continue
        write("btf", f"vmlinux_{name}.btf", s)
        n += 1
    # The first few hundred types in id order: base types, typedefs, enums.
    for k in (50, 400):
        s = vmlinux_slice(recs, strs, range(1, k + 1), 3000)
        if s is not None and len(s) <= 256 * 1024:
            write("btf", f"vmlinux_first{k}.btf", s)
            n += 1
    print(f"btf: {n} vmlinux slices", file=sys.stderr)


def main():
    objs = sorted(f for f in os.listdir(FIX) if f.endswith(".o"))
    damaged = sorted(os.listdir(os.path.join(FIX, "damaged")))
    damaged = [f for f in damaged if not f.endswith((".md", ".py"))]
    for f in objs:
        data = open(os.path.join(FIX, f), "rb").read()
        write("elf", f, data)
        for name, typ, flags, body in sections(data):
            safe = name.replace("/", "_").lstrip(".") or "null"
            if typ == 1 and flags & 4 and body:
                write("insn", f"{f}.{safe}", body)
            elif name == ".BTF":
                write("btf", f"{f}.BTF", body)
            elif name == ".BTF.ext":
                write("btf_ext", f"{f}.BTF.ext", body)
    for f in damaged:
        data = open(os.path.join(FIX, "damaged", f), "rb").read()
        if f.endswith(".btf"):
            write("btf", f"damaged_{f}", data)
            continue
        write("elf", f"damaged_{f}", data)
        try:
            secs = sections(data)
        except (struct.error, ValueError, OverflowError, IndexError):
            secs = []  # too damaged for this little reader: the ELF seed is enough
        for name, _typ, _flags, body in secs:
            if name == ".BTF":
                write("btf", f"damaged_{f}.BTF", body)
            elif name == ".BTF.ext":
                write("btf_ext", f"damaged_{f}.BTF.ext", body)
    pairs = [
        ("link_a.o", "link_b.o"), ("link_b.o", "link_a.o"), ("xdp_pass.o", "xdp_drop.o"),
        ("calls.o", "globals.o"), ("maps.o", "core.o"), ("xdp_counter.o", "xdp_compute.o"),
        ("dispatcher.o", "xdp_pass.o"), ("tracing.o", "kfunc_ksym.o"),
    ]
    for a, b in pairs:
        da = open(os.path.join(FIX, a), "rb").read()
        db = open(os.path.join(FIX, b), "rb").read()
        write("link", f"{a}+{b}", da + LINK_SEPARATOR + db)
    for name in sorted(os.listdir(os.path.join(FIX, "pcap"))):
        write("pcap", name, open(os.path.join(FIX, "pcap", name), "rb").read())
    # Images: the committed ones (built by `bpfld image build`), valid and not.
    image_dir = os.path.join(ROOT, "fuzz", "regressions", "image")
    for f in sorted(os.listdir(image_dir)):
        write("image", f, open(os.path.join(image_dir, f), "rb").read())
    vmlinux_seeds()
    for t in ("btf", "elf"):
        for f in sorted(os.listdir(os.path.join(OUT, t))):
            write("btf_view", f"{t}_{f}", open(os.path.join(OUT, t, f), "rb").read())
    for t in sorted(os.listdir(OUT)):
        print(f"{t}: {len(os.listdir(os.path.join(OUT, t)))} seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
