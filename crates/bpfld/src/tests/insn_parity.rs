//! Parity of `show::disasm` with llvm-objdump-19, and decode/encode round
//! trips, on objects built here with llvm-mc-19 and clang-19.
//!
//! Each test skips (with a loud message) when the LLVM tools are missing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use bpfld::model::Endian;
use bpfld::read::elf;
use bpfld::show::disasm::{disasm, file_header};

fn tool(name: &str) -> Option<PathBuf> {
    let ok = Command::new(name)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        Some(PathBuf::from(name))
    } else {
        eprintln!("!!!!! SKIPPED: {name} not found; llvm parity not checked !!!!!");
        None
    }
}

fn tmpdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bpfld-insn-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// llvm-objdump -dr --no-show-raw-insn, without its file header line.
fn objdump(path: &Path) -> String {
    let out = Command::new("llvm-objdump-19")
        .args(["-dr", "--no-show-raw-insn"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "llvm-objdump failed on {path:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let header = file_header(&path.display().to_string());
    assert!(
        text.starts_with(&header),
        "unexpected header in {text:.200}"
    );
    text[header.len()..].to_string()
}

/// Compares line by line; jump hints (`<...>` after the instruction) must
/// match too.
fn assert_same(ours: &str, llvm: &str, what: &str) {
    let (a, b): (Vec<_>, Vec<_>) = (ours.lines().collect(), llvm.lines().collect());
    let mut bad = 0;
    let mut report = String::new();
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        if x != y {
            bad += 1;
            if bad <= 30 {
                let _ = writeln!(report, "line {i}:\n  ours: {x:?}\n  llvm: {y:?}");
            }
        }
    }
    assert!(
        bad == 0 && a.len() == b.len(),
        "{what}: {bad} differing lines, {} vs {} lines\n{report}",
        a.len(),
        b.len()
    );
}

fn assemble(dir: &Path, name: &str, asm: &str, endian: Endian) -> PathBuf {
    let src = dir.join(format!("{name}.s"));
    let obj = dir.join(format!("{name}.o"));
    std::fs::write(&src, asm).unwrap();
    let triple = match endian {
        Endian::Little => "bpfel",
        Endian::Big => "bpfeb",
    };
    let st = Command::new("llvm-mc-19")
        .args(["-triple", triple, "-mcpu=v4", "-filetype=obj", "-o"])
        .arg(&obj)
        .arg(&src)
        .status()
        .unwrap();
    assert!(st.success(), "llvm-mc failed on {src:?}");
    obj
}

fn slot(endian: Endian, code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let regs = match endian {
        Endian::Little => src << 4 | dst,
        Endian::Big => dst << 4 | src,
    };
    let o = endian.u16_bytes(off as u16);
    let i = endian.u32_bytes(imm as u32);
    [code, regs, o[0], o[1], i[0], i[1], i[2], i[3]]
}

fn bytes_line(out: &mut String, b: &[u8]) {
    let list: Vec<String> = b.iter().map(|x| x.to_string()).collect();
    let _ = writeln!(out, ".byte {}", list.join(","));
}

/// Every opcode byte with registers, offsets and immediates chosen to hit
/// each decoder rule (invalid registers, sdiv/movsx/addr_space_cast offsets,
/// byte-swap widths, atomic operations, signed extremes), each followed by
/// a filler slot that an `ld_imm64` swallows as its second half.
fn all_opcodes_asm(endian: Endian) -> String {
    let regs = [(0u8, 0u8), (1, 2), (10, 11), (11, 10), (12, 1), (1, 15)];
    let offs = [0i16, 1, 8, 16, 32, -1, 0x7fff, -0x8000];
    let imms = [
        0i32,
        1,
        -1,
        2,
        16,
        32,
        64,
        0x7fff_ffff,
        i32::MIN,
        0x10001,
        0xe1,
        0xf1,
        0x41,
        0xa1,
        0x51,
        0x40,
        -0x1f,
    ];
    let mut out = String::from(".text\n.globl f\n.type f,@function\nf:\n");
    for code in 0..=255u8 {
        for &(d, s) in &regs {
            for &o in &offs {
                for &i in &imms {
                    bytes_line(&mut out, &slot(endian, code, d, s, o, i));
                    // The second half of an ld_imm64, or an `exit`.
                    bytes_line(&mut out, &slot(endian, 0x95, 0, 0, 0, i.wrapping_mul(3)));
                }
            }
        }
    }
    out
}

#[test]
fn every_opcode_matches_llvm_objdump() {
    if tool("llvm-mc-19").is_none() || tool("llvm-objdump-19").is_none() {
        return;
    }
    let dir = tmpdir("opcodes");
    for endian in [Endian::Little, Endian::Big] {
        let path = assemble(
            &dir,
            &format!("ops-{endian:?}"),
            &all_opcodes_asm(endian),
            endian,
        );
        let obj = elf::read_file(&path).unwrap();
        let llvm = objdump(&path);
        // Guard against comparing two empty listings.
        assert!(llvm.lines().count() > 200_000, "{:.300}", llvm);
        assert_same(&disasm(&obj), &llvm, &format!("{endian:?} opcodes"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Hand-written assembly for what objdump's walk does around the
/// instructions: local labels as jump hints, aliases, zero runs with and
/// without relocations inside, data symbols in code, an `ld_imm64` cut off
/// by the section end, a section without a symbol at offset 0, an empty one.
#[test]
fn listing_layout_matches_llvm_objdump() {
    if tool("llvm-mc-19").is_none() || tool("llvm-objdump-19").is_none() {
        return;
    }
    let dir = tmpdir("layout");
    let asm = LAYOUT_ASM;
    for endian in [Endian::Little, Endian::Big] {
        let path = assemble(&dir, &format!("layout-{endian:?}"), asm, endian);
        let obj = elf::read_file(&path).unwrap();
        let ours = disasm(&obj);
        assert!(ours.contains("<LBB0_2>:"), "{ours}");
        assert_same(&ours, &objdump(&path), &format!("{endian:?} layout"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

const LAYOUT_ASM: &str = r#"	.text
	.globl	f
	.type	f,@function
f:
	may_goto LBB0_2
	gotol LBB0_2
	r1 = addr_space_cast(r2, 1, 0)
	callx r3
	r1 = counter ll
	if w1 s> 0x4d goto LBB0_2
	call ext
	call f
	r0 = -1 ll
	r0 = 0x123456789 ll
LBB0_2:
	w0 = 1
	exit
g:
h:
	.type h,@function
	r0 = 0
	.byte 0,0,0,0,0,0,0,0
	.byte 0,0,0,0,0,0,0,0
	.byte 0,0,0,0,5,0,0,0
	exit
	.byte 0,0,0,0,0,0,0,0
	.byte 0,0,0,0,0,0,0,0
	.quad counter
	.byte 0,0,0,0,0,0,0,0
	.byte 0,0,0,0,0,0,0,0
	exit
	.type dat,@object
dat:
	.byte 0x41,0x42,0,1,2,3,4,5,6,7,8,9,10
	.byte 1,2,3
	.globl last
last:
	.byte 0x18,1,0,0,0,0,0,0

	.section sec2,"ax",@progbits
	r0 = 1
sym8:
	.long sym8
	.long 0
	call 1
	exit

	.section empty,"ax",@progbits

	.data
	.globl counter
counter:
	.quad 0
"#;

fn compile(dir: &Path, name: &str, src: &str, target: &str, cpu: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    let obj = dir.join(format!("{name}-{target}-{cpu}.o"));
    std::fs::write(&c, src).unwrap();
    let out = Command::new("clang-19")
        .args([
            "-O2",
            "-g",
            "-target",
            target,
            &format!("-mcpu={cpu}"),
            "-c",
            "-o",
        ])
        .arg(&obj)
        .arg(&c)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "clang failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    obj
}

/// Every code section of a real object decodes and encodes back to the
/// same bytes.
fn assert_round_trip(path: &Path) {
    use object::{Object as _, ObjectSection as _};
    let obj = elf::read_file(path).unwrap();
    let bytes = std::fs::read(path).unwrap();
    let file = object::File::parse(&*bytes).unwrap();
    let mut code_sections = 0;
    for sec in obj.sections.iter().filter(|s| s.is_program()) {
        code_sections += 1;
        let raw = file
            .section_by_name(&sec.name)
            .and_then(|s| s.data().ok())
            .unwrap_or_else(|| panic!("{path:?}: no section {}", sec.name));
        let insns = bpfld::read::insn::decode(raw, obj.endian).unwrap();
        assert_eq!(insns, sec.insns, "{path:?} {}", sec.name);
        assert_eq!(
            bpfld::write::insn::encode(&insns, obj.endian),
            raw,
            "{path:?} {}",
            sec.name
        );
    }
    assert!(code_sections > 0, "{path:?} has no code");
}

/// A C program using every instruction class clang emits for v1..v4
/// (helper, BPF-to-BPF, kfunc and extern calls, callbacks, maps, global
/// data, atomics, signed division, sign extension, byte swaps, JMP32),
/// compiled for both byte orders.
#[test]
fn clang_objects_match_llvm_objdump() {
    if tool("clang-19").is_none() || tool("llvm-objdump-19").is_none() {
        return;
    }
    let dir = tmpdir("clang");
    for target in ["bpfel", "bpfeb"] {
        for cpu in ["v1", "v2", "v3", "v4"] {
            let path = compile(&dir, "prog", PROG_C, target, cpu);
            assert_round_trip(&path);
            let obj = elf::read_file(&path).unwrap();
            let ours = disasm(&obj);
            assert!(ours.contains("call 0x1"), "{ours}");
            assert_same(&ours, &objdump(&path), &format!("{target} {cpu}"));
        }
        // CO-RE relocations of every kind, printed from BTF.ext.
        let path = compile(&dir, "core", CORE_C, target, "v4");
        assert_round_trip(&path);
        let ours = disasm(&elf::read_file(&path).unwrap());
        assert!(ours.contains("CO-RE <enumval_value>"), "{ours}");
        assert_same(&ours, &objdump(&path), &format!("{target} CO-RE"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

const PROG_C: &str = r#"/* Self-contained: no system headers. */
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long s64;
#define SEC(n) __attribute__((section(n), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define __ksym __attribute__((section(".ksyms")))

struct xdp_md { u32 data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex; };

struct {
	__uint(type, 2);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, u64);
} counts SEC(".maps");

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_loop)(u32 nr, void *fn, void *ctx, u64 flags) = (void *)181;
static long (*bpf_skb_load_bytes)(const void *skb, u32 off, void *to, u32 len) = (void *)26;

volatile u64 g_data = 5;
const volatile u32 cfg = 3;
static volatile s64 bss_v;
const char msg[] = "hello";
extern void bpf_rcu_read_lock(void) __ksym;
extern int ext_func(int);

static __attribute__((noinline)) int sub(int a, s64 b)
{
#if __BPF_CPU_VERSION__ >= 4
	return a / (int)b + (a % 7) + (int)(b / 3) + (int)(b % a);
#else
	return (unsigned)a / (int)b + ((unsigned)a % 7);
#endif
}

__attribute__((noinline)) int gsub(s64 a, s64 b)
{
	return ((u64)a / b) + (long)(signed char)a + (long)(short)b + (int)a;
}

static int cb(u32 i, void *ctx)
{
	*(u64 *)ctx += i;
	return 0;
}

SEC("xdp")
int prog(struct xdp_md *ctx)
{
	u32 key = 0;
	u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (!v)
		return 2;
	__sync_fetch_and_add(v, 1);
#if __BPF_CPU_VERSION__ >= 3
	__sync_fetch_and_or(v, 2);
	__sync_fetch_and_and(v, 3);
	__sync_fetch_and_xor(v, 4);
	s64 old = __sync_fetch_and_add(v, 9);
	old += __sync_lock_test_and_set(v, 10);
	old += __sync_val_compare_and_swap(v, 11, 12);
	u32 *w = (u32 *)v;
	__sync_fetch_and_add(w, 1);
	old += __sync_fetch_and_xor(w, 7);
	old += __sync_val_compare_and_swap(w, 1, 2);
	old += __sync_lock_test_and_set(w, 3);
#else
	s64 old = *v;
#endif
	signed char *sc = (signed char *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if ((void *)(sc + 8) > end)
		return 1;
	s64 s = sc[0] + *(short *)(sc + 2) + *(int *)(sc + 4) + *(unsigned char *)(sc + 1);
	s += __builtin_bswap16((unsigned short)s) + __builtin_bswap32((u32)s) + __builtin_bswap64(s);
	s += sub((int)s, old) + gsub(s, cfg) + g_data + bss_v + msg[s & 3];
	bpf_rcu_read_lock();
	s += ext_func(3);
	u64 acc = 0;
	bpf_loop(10, cb, &acc, 0);
	s += acc;
	if ((int)s > 77)
		s = -s;
	if ((unsigned)s < 99)
		s <<= 3;
	if ((int)s == -5 || s == 1000000 || (int)s != (int)old)
		s ^= 0x1234;
	if ((s & 0x100) && (unsigned)s <= 7 && (int)s >= -3 && (int)s <= (int)old)
		s |= 1;
	return s > 3 ? (int)(s >> 2) : (int)((u64)s >> 9) + (int)(s >> 60) + (int)((u32)s >> (int)old);
}

SEC("socket")
int sock(void *skb)
{
	char buf[16];
	for (int i = 0; i < 16; i++)
		buf[i] = (char)i;
	bpf_skb_load_bytes(skb, 0, buf, 4);
	return buf[3] * 2 - buf[5];
}

char LICENSE[] SEC("license") = "GPL";
"#;

/// Objects for the exact-parity sweep: every `.o` under the repository's
/// `fixtures/` plus the files and directories listed in
/// `BPFLD_DISASM_OBJECTS` (colon-separated).
fn sweep_objects() -> Vec<PathBuf> {
    let mut roots = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")];
    if let Ok(extra) = std::env::var("BPFLD_DISASM_OBJECTS") {
        roots.extend(
            extra
                .split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
        );
    }
    let mut out = Vec::new();
    while let Some(p) = roots.pop() {
        if p.is_dir() {
            // Hostile inputs have their own test (crates/bpfld-cli/tests/damaged.rs).
            if p.file_name().is_some_and(|n| n == "damaged") {
                continue;
            }
            if let Ok(rd) = std::fs::read_dir(&p) {
                roots.extend(rd.flatten().map(|e| e.path()));
            }
        } else if p.extension().is_some_and(|e| e == "o") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Exact parity, jump hints included, on every object found. Objects our
/// reader rejects are skipped (the damaged corpus is tested elsewhere).
#[test]
fn fixture_objects_match_llvm_objdump_exactly() {
    if tool("llvm-objdump-19").is_none() {
        return;
    }
    let objects = sweep_objects();
    if objects.is_empty() {
        eprintln!("!!!!! SKIPPED: no fixture objects found for the disasm sweep !!!!!");
        return;
    }
    for path in objects {
        let Ok(obj) = elf::read_file(&path) else {
            eprintln!("note: {path:?} not readable by bpfld, skipped");
            continue;
        };
        assert_same(&disasm(&obj), &objdump(&path), &path.display().to_string());
    }
}

const CORE_C: &str = r#"#define SEC(n) __attribute__((section(n), used))
typedef unsigned int u32;
typedef int myint;
enum e { EA = 1, EB = -2 };
enum e64 { FA = 0x100000000ULL, FB = 3 };
enum __attribute__((packed)) ue { UA = 1, UB = 200 };
struct inner { int a; myint b[4]; };
struct task {
	int pid;
	long x;
	union { int u1; short u2; };
	struct inner in[3];
	const volatile struct inner *p;
	unsigned int bits : 3;
} __attribute__((preserve_access_index));
typedef struct task task_t;

SEC("tp/x")
int core(task_t *t)
{
	int r = t->pid + t->in[2].b[1] + t->u2;
	r += __builtin_preserve_field_info(t->x, 2);
	r += __builtin_preserve_field_info(t->bits, 1);
	r += __builtin_preserve_field_info(t->bits, 3);
	r += __builtin_preserve_field_info(t->bits, 4);
	r += __builtin_preserve_field_info(t->bits, 5);
	r += __builtin_preserve_field_info(t[1].pid, 0);
	r += __builtin_btf_type_id(*t, 0);
	r += __builtin_btf_type_id(*t, 1);
	r += __builtin_preserve_type_info(*t, 0);
	r += __builtin_preserve_type_info(*t, 1);
	r += __builtin_preserve_type_info(*t, 2);
	r += __builtin_preserve_enum_value(*(enum e *)EB, 0);
	r += __builtin_preserve_enum_value(*(enum e *)EB, 1);
	r += __builtin_preserve_enum_value(*(enum e64 *)FA, 1);
	r += __builtin_preserve_enum_value(*(enum ue *)UB, 1);
	r += t->p->a;
	return r;
}
char LICENSE[] SEC("license") = "GPL";
"#;

/// Needs no LLVM tool: any bytes decode to slots that encode back to
/// the same bytes.
#[test]
fn any_bytes_round_trip() {
    // A deterministic pseudo-random byte stream: every field value,
    // including invalid opcodes and registers above 10.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..8 * 4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    for endian in [Endian::Little, Endian::Big] {
        let insns = bpfld::read::insn::decode(&bytes, endian).unwrap();
        assert_eq!(insns.len(), 4096);
        assert_eq!(bpfld::write::insn::encode(&insns, endian), bytes);
    }
}
