#!/usr/bin/env python3
"""Generate the C sources of the link benchmark corpus (deterministic).

    scripts/gen-link-corpus.py OUTDIR [--objects N] [--seed S]

Writes OUTDIR/corpus.h (the shared header) and OUTDIR/objNNN.c, one source
per object. Same arguments, same bytes: the generator uses its own seeded
random number generator and nothing from the environment.

Shape of every object (see BENCHMARKS.md):
- includes the shared header (fixtures/include/bpfld_fixture.h plus a few
  dozen enum/typedef/struct/union types) and uses every one of its types,
  through one .bss variable of an aggregate type, so each object's BTF
  carries the whole header (what the linker's type merge has to match);
- 20..40 functions: static noinline helpers whose names repeat in every
  object (statics never collide), global "leaf" functions that call only
  the object's own helpers, and global "mid" functions that also call leaf
  functions of other objects through extern declarations;
- one XDP program calling the object's mid functions and one extern mid;
- a .data, a .rodata and a .bss global, an ARRAY map, and extern
  declarations of another object's .data global and map.
Every extern is defined by exactly one other object of the corpus, so
linking all objects resolves everything. Call depth is bounded (program ->
mid -> leaf -> helpers) so each program stays far below the kernel's limit
of 256 subprograms and loads.
"""

import argparse
import os
import random

N_ENUMS = 6
N_TYPEDEFS = 10
N_STRUCTS = 16
N_UNIONS = 6


def header(rng):
    out = []
    w = out.append
    w("/* Shared header of the bpfld link benchmark corpus (generated). */")
    w("#ifndef CORPUS_H")
    w("#define CORPUS_H")
    w('#include "bpfld_fixture.h"')
    w("")
    for e in range(N_ENUMS):
        w(f"enum corpus_e{e} {{")
        for v in range(rng.randint(3, 8)):
            w(f"\tCE{e}_V{v} = {v * (e + 1)},")
        w("};")
    w("")
    scalar = ["__u8", "__u16", "__u32", "__u64", "__s32", "__s64"]
    typedefs = []
    for t in range(N_TYPEDEFS):
        base = scalar[t % len(scalar)]
        w(f"typedef {base} corpus_t{t};")
        typedefs.append(f"corpus_t{t}")
    w("")
    # Structs without padding holes: members sorted by size, largest first,
    # so a zeroed local is fully initialized for the verifier.
    structs = []
    sizes = {"__u8": 1, "__u16": 2, "__u32": 4, "__u64": 8, "__s32": 4, "__s64": 8}
    for t in range(N_TYPEDEFS):
        sizes[f"corpus_t{t}"] = sizes[scalar[t % len(scalar)]]
    for s in range(N_STRUCTS):
        members = []
        for m in range(rng.randint(3, 9)):
            ty = rng.choice(scalar + typedefs)
            members.append((sizes[ty], ty, f"m{m}"))
        if s >= 2 and rng.random() < 0.5:
            # Nested struct (defined earlier), 8-aligned by construction.
            members.append((8, f"struct corpus_s{rng.randrange(s)}", f"inner{s}"))
        if rng.random() < 0.3:
            members.append((sizes["__u32"], f"enum corpus_e{rng.randrange(N_ENUMS)}", "kind"))
        if rng.random() < 0.3:
            members.append((1, "__u8", "tag[4]"))
        members.sort(key=lambda m: -m[0])
        w(f"struct corpus_s{s} {{")
        for _, ty, name in members:
            w(f"\t{ty} {name};")
        w("} __attribute__((aligned(8)));")
        structs.append((f"struct corpus_s{s}", [n for _, t, n in members if "[" not in n and not t.startswith("struct")]))
    w("")
    for u in range(N_UNIONS):
        w(f"union corpus_u{u} {{")
        w(f"\tstruct corpus_s{rng.randrange(N_STRUCTS)} s;")
        w(f"\t__u64 raw[{rng.randint(1, 4)}];")
        w(f"\tcorpus_t{rng.randrange(N_TYPEDEFS)} t;")
        w("};")
    w("")
    w("typedef struct corpus_s0 corpus_s0_t;")
    w("typedef union corpus_u0 corpus_u0_t;")
    w("typedef int (*corpus_fn_t)(struct corpus_s1 *, __u32);")
    w("")
    # One aggregate holding every type, so each object's BTF has all of them.
    w("struct corpus_all {")
    for e in range(N_ENUMS):
        w(f"\tenum corpus_e{e} e{e};")
    for t in range(N_TYPEDEFS):
        w(f"\tcorpus_t{t} t{t};")
    for s in range(N_STRUCTS):
        w(f"\tstruct corpus_s{s} s{s};")
    for u in range(N_UNIONS):
        w(f"\tunion corpus_u{u} u{u};")
    w("\tcorpus_s0_t s0t;")
    w("\tcorpus_u0_t u0t;")
    w("\tcorpus_fn_t fn;")
    w("};")
    w("")
    w("#endif")
    return "\n".join(out) + "\n", structs


def plan(rng, n_objects):
    """Decide each object's functions first, so externs can name them."""
    objs = []
    for i in range(n_objects):
        total = rng.randint(20, 40)
        n_static = max(4, total * 2 // 5)
        n_mid = max(2, total // 4)
        n_leaf = total - n_static - n_mid
        objs.append({"static": n_static, "leaf": n_leaf, "mid": n_mid})
    return objs


def leaf_sig(i, j):
    # Even leaves take a pointer to a shared struct (checked for BTF
    # compatibility across objects), odd ones two scalars.
    if j % 2 == 0:
        return f"int leaf{i}_{j}(struct corpus_s{j % N_STRUCTS} *p, __u32 x)"
    return f"int leaf{i}_{j}(__u32 x, __u64 y)"


def leaf_call(i, j, var):
    if j % 2 == 0:
        return f"leaf{i}_{j}(&{var}{j % N_STRUCTS}, x)"
    return f"leaf{i}_{j}(x, {j})"


def source(rng, i, objs, structs):
    me = objs[i]
    n = len(objs)
    out = []
    w = out.append
    w(f"/* Object {i} of the bpfld link benchmark corpus (generated). */")
    w('#include "corpus.h"')
    w("")
    w(f"int data{i} = {i + 1};")
    w(f"const volatile __u64 ro{i} = {i * 7 + 3};")
    w(f"struct corpus_all all{i};")
    w("")
    w("struct {")
    w("\t__uint(type, BPF_MAP_TYPE_ARRAY);")
    w("\t__uint(max_entries, 4);")
    w("\t__type(key, __u32);")
    w(f"\t__type(value, struct corpus_s{i % N_STRUCTS});")
    w(f"}} map{i} SEC(\".maps\");")
    w("")
    # Extern global variable and map of another object.
    o = (i + 1 + rng.randrange(n - 1)) % n
    w(f"extern int data{o};")
    w("extern struct {")
    w("\t__uint(type, BPF_MAP_TYPE_ARRAY);")
    w("\t__uint(max_entries, 4);")
    w("\t__type(key, __u32);")
    w(f"\t__type(value, struct corpus_s{o % N_STRUCTS});")
    w(f"}} map{o} __attribute__((section(\".maps\")));")
    w("")
    # Extern leaves called by this object's mids, and one extern mid.
    calls = {}
    ext = set()
    for m in range(me["mid"]):
        picks = []
        for _ in range(rng.randint(1, 3)):
            t = (i + 1 + rng.randrange(n - 1)) % n
            j = rng.randrange(objs[t]["leaf"])
            picks.append((t, j))
            ext.add(("leaf", t, j))
        calls[m] = picks
    tm = (i + 1 + rng.randrange(n - 1)) % n
    mj = rng.randrange(objs[tm]["mid"])
    ext.add(("mid", tm, mj))
    for kind, t, j in sorted(ext):
        if kind == "leaf":
            w(f"extern {leaf_sig(t, j)};")
        else:
            w(f"extern int mid{t}_{j}(__u32 x);")
    w("")

    # Static helpers: same names in every object, different bodies.
    for s in range(me["static"]):
        sname, fields = structs[(i + s) % N_STRUCTS]
        f1 = fields[s % len(fields)]
        f2 = fields[(s + 1) % len(fields)]
        w(f"static __noinline int helper{s}({sname} *p, __u32 x)")
        w("{")
        w(f"\t__u64 acc = x * {rng.randint(2, 97)} + {s};")
        w(f"\tacc ^= p->{f1} + (x >> {rng.randint(1, 7)});")
        w(f"\tacc += p->{f2} * {rng.randint(3, 31)};")
        if s > 0 and s % 3 != 0:
            w(f"\tacc += helper{s - 1}(&all{i}.s{(i + s - 1) % N_STRUCTS}, x + {s});")
        w("\treturn (int)(acc & 0xffff);")
        w("}")
        w("")

    # Global leaf functions: own helpers only.
    for j in range(me["leaf"]):
        w(f"__noinline {leaf_sig(i, j)}")
        w("{")
        h = rng.randrange(me["static"])
        if j % 2 == 0:
            w("\tif (!p)")
            w("\t\treturn 0;")
            _, fields = structs[j % N_STRUCTS]
            w(f"\tx += p->{fields[0]};")
        else:
            w("\tx += y;")
        w(f"\treturn helper{h}(&all{i}.s{(i + h) % N_STRUCTS}, x) + all{i}.t{j % N_TYPEDEFS};")
        w("}")
        w("")

    # Global mid functions: own helpers, own leaves, extern leaves, data,
    # maps (own and extern).
    for m in range(me["mid"]):
        w(f"__noinline int mid{i}_{m}(__u32 x)")
        w("{")
        w("\t__u32 key = x & 3;")
        # One struct on the stack (the rest from .bss): the kernel allows
        # 512 bytes of stack for the whole call chain.
        t0, j0 = calls[m][0]
        k0 = j0 % N_STRUCTS
        w(f"\tstruct corpus_s{k0} a{k0};")
        w(f"\t__builtin_memset(&a{k0}, 0, sizeof(a{k0}));")
        w("\tint r = 0;")
        for n_call, (t, j) in enumerate(calls[m]):
            w(f"\tr += {leaf_call(t, j, 'a' if n_call == 0 else f'all{i}.s')};")
        own = rng.randrange(me["leaf"])
        if own % 2 == 0:
            w(f"\tr += leaf{i}_{own}(&all{i}.s{own % N_STRUCTS}, x);")
        else:
            w(f"\tr += leaf{i}_{own}(x, r);")
        h = rng.randrange(me["static"])
        w(f"\tr += helper{h}(&all{i}.s{(i + h) % N_STRUCTS}, x);")
        mp = f"map{i}" if m % 2 == 0 else f"map{o}"
        st = i % N_STRUCTS if m % 2 == 0 else o % N_STRUCTS
        _, fields = structs[st]
        w(f"\tstruct corpus_s{st} *v = bpf_map_lookup_elem(&{mp}, &key);")
        w("\tif (v)")
        w(f"\t\tr += v->{fields[0]};")
        w(f"\treturn r + data{i} + data{o} + ro{i};")
        w("}")
        w("")

    w('SEC("xdp")')
    w(f"int prog{i}(struct xdp_md *ctx)")
    w("{")
    w("\t__u32 x = ctx->data_end - ctx->data;")
    w("\tint r = 0;")
    for m in rng.sample(range(me["mid"]), min(2, me["mid"])):
        w(f"\tr += mid{i}_{m}(x);")
    w(f"\tr += mid{tm}_{mj}(x);")
    w(f"\tall{i}.e0 = r;")
    w("\treturn r ? XDP_PASS : XDP_DROP;")
    w("}")
    w("")
    w('char _license[] SEC("license") = "GPL";')
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--objects", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.objects < 2:
        ap.error("need at least 2 objects (externs point at other objects)")
    rng = random.Random(a.seed)
    os.makedirs(a.outdir, exist_ok=True)
    text, structs = header(rng)
    with open(os.path.join(a.outdir, "corpus.h"), "w") as f:
        f.write(text)
    objs = plan(rng, a.objects)
    for i in range(a.objects):
        with open(os.path.join(a.outdir, f"obj{i:03d}.c"), "w") as f:
            f.write(source(rng, i, objs, structs))


if __name__ == "__main__":
    main()
