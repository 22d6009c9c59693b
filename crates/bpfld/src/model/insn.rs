//! BPF instructions, one 8-byte slot each.
//!
//! `ld_imm64` (`BPF_LD | BPF_IMM | BPF_DW`) occupies two slots; the model
//! keeps both, so an [`InsnIndex`] is a slot number exactly as relocation
//! offsets (divided by 8), BTF.ext offsets and llvm-objdump count them.
//!
//! The constants follow the Linux instruction-set document
//! (Documentation/bpf/standardization/instruction-set.rst) and
//! `include/uapi/linux/bpf.h`; the helpers answer the questions a linker
//! asks: which slots are calls (helper, BPF-to-BPF, kfunc), which are
//! `ld_imm64` and where their second half is, where a jump lands.

use crate::error::{Error, Result};

/// Index of an instruction slot within its section.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct InsnIndex(pub u32);

/// One raw instruction slot, fields as in `struct bpf_insn`.
///
/// `dst` and `src` are 4-bit register fields; values above 15 are masked to
/// their low nibble when encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Insn {
    /// Opcode: class, then size and mode or operation and source.
    pub code: u8,
    /// Destination register (low nibble of the register byte).
    pub dst: u8,
    /// Source register, or a pseudo value (`BPF_PSEUDO_*`) for calls and `ld_imm64`.
    pub src: u8,
    /// Signed offset: of memory accesses, and of jumps in slots.
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

/// Size of one instruction slot in bytes.
pub const INSN_SIZE: usize = 8;

// Instruction classes (`code & 0x07`).
/// Class: non-standard loads (`ld_imm64`, legacy packet access).
pub const BPF_LD: u8 = 0x00;
/// Class: loads from memory into a register.
pub const BPF_LDX: u8 = 0x01;
/// Class: stores of an immediate to memory.
pub const BPF_ST: u8 = 0x02;
/// Class: stores of a register to memory (and atomics).
pub const BPF_STX: u8 = 0x03;
/// Class: 32-bit arithmetic.
pub const BPF_ALU: u8 = 0x04;
/// Class: 64-bit jumps, calls and exit.
pub const BPF_JMP: u8 = 0x05;
/// Class: 32-bit jumps (and `gotol`).
pub const BPF_JMP32: u8 = 0x06;
/// Class: 64-bit arithmetic.
pub const BPF_ALU64: u8 = 0x07;

// Load/store sizes (`code & 0x18`).
/// Size: 32-bit word.
pub const BPF_W: u8 = 0x00;
/// Size: 16-bit half word.
pub const BPF_H: u8 = 0x08;
/// Size: byte.
pub const BPF_B: u8 = 0x10;
/// Size: 64-bit double word.
pub const BPF_DW: u8 = 0x18;

// Load/store modes (`code & 0xe0`).
/// Mode: immediate (`ld_imm64`).
pub const BPF_IMM: u8 = 0x00;
/// Mode: legacy absolute packet access.
pub const BPF_ABS: u8 = 0x20;
/// Mode: legacy indirect packet access.
pub const BPF_IND: u8 = 0x40;
/// Mode: regular memory access.
pub const BPF_MEM: u8 = 0x60;
/// Sign-extending load (v4).
pub const BPF_MEMSX: u8 = 0x80;
/// Mode: atomic operation (`imm` says which).
pub const BPF_ATOMIC: u8 = 0xc0;

// Operand source (`code & 0x08`) for ALU and jumps.
/// Source: the immediate `imm`.
pub const BPF_K: u8 = 0x00;
/// Source: the register `src`.
pub const BPF_X: u8 = 0x08;
/// `BPF_END` direction: to little endian (`BPF_ALU`) ...
pub const BPF_TO_LE: u8 = 0x00;
/// ... or to big endian; with `BPF_ALU64` the same bit means `bswap`.
pub const BPF_TO_BE: u8 = 0x08;

// ALU operations (`code & 0xf0`).
/// ALU: `dst += src`.
pub const BPF_ADD: u8 = 0x00;
/// ALU: `dst -= src`.
pub const BPF_SUB: u8 = 0x10;
/// ALU: `dst *= src`.
pub const BPF_MUL: u8 = 0x20;
/// Unsigned with `off == 0`, signed (`sdiv`, v4) with `off == 1`.
pub const BPF_DIV: u8 = 0x30;
/// ALU: `dst |= src`.
pub const BPF_OR: u8 = 0x40;
/// ALU: `dst &= src`.
pub const BPF_AND: u8 = 0x50;
/// ALU: `dst <<= src`.
pub const BPF_LSH: u8 = 0x60;
/// ALU: logical `dst >>= src`.
pub const BPF_RSH: u8 = 0x70;
/// ALU: `dst = -dst`.
pub const BPF_NEG: u8 = 0x80;
/// Unsigned with `off == 0`, signed (`smod`, v4) with `off == 1`.
pub const BPF_MOD: u8 = 0x90;
/// ALU: `dst ^= src`.
pub const BPF_XOR: u8 = 0xa0;
/// Plain with `off == 0`; `movsx` with `off` 8/16/32 (v4); with
/// `BPF_ALU64 | BPF_X` and `off == 1`, `addr_space_cast`.
pub const BPF_MOV: u8 = 0xb0;
/// ALU: arithmetic (sign-filling) `dst >>= src`.
pub const BPF_ARSH: u8 = 0xc0;
/// Byte swap: `imm` is the width (16, 32 or 64).
pub const BPF_END: u8 = 0xd0;

// Jump operations (`code & 0xf0`).
/// `goto` (`BPF_JMP`, 16-bit `off`) or `gotol` (`BPF_JMP32`, 32-bit `imm`).
pub const BPF_JA: u8 = 0x00;
/// Jump if `dst == src`.
pub const BPF_JEQ: u8 = 0x10;
/// Jump if `dst > src` (unsigned).
pub const BPF_JGT: u8 = 0x20;
/// Jump if `dst >= src` (unsigned).
pub const BPF_JGE: u8 = 0x30;
/// Jump if `dst & src` is not zero.
pub const BPF_JSET: u8 = 0x40;
/// Jump if `dst != src`.
pub const BPF_JNE: u8 = 0x50;
/// Jump if `dst > src` (signed).
pub const BPF_JSGT: u8 = 0x60;
/// Jump if `dst >= src` (signed).
pub const BPF_JSGE: u8 = 0x70;
/// Call: a helper, a BPF function or a kfunc (`src` says which).
pub const BPF_CALL: u8 = 0x80;
/// Return from the function (`r0` is the result).
pub const BPF_EXIT: u8 = 0x90;
/// Jump if `dst < src` (unsigned).
pub const BPF_JLT: u8 = 0xa0;
/// Jump if `dst <= src` (unsigned).
pub const BPF_JLE: u8 = 0xb0;
/// Jump if `dst < src` (signed).
pub const BPF_JSLT: u8 = 0xc0;
/// Jump if `dst <= src` (signed).
pub const BPF_JSLE: u8 = 0xd0;
/// Conditional pseudo jump; with `src == BPF_MAY_GOTO` it is `may_goto`.
pub const BPF_JCOND: u8 = 0xe0;
/// The `src` of `BPF_JCOND` that makes it `may_goto`.
pub const BPF_MAY_GOTO: u8 = 0;

// Atomic operations: the `imm` of `BPF_STX | BPF_ATOMIC`.
/// Atomic `*ptr += src`.
pub const BPF_ATOMIC_ADD: i32 = 0x00;
/// Atomic `*ptr |= src`.
pub const BPF_ATOMIC_OR: i32 = 0x40;
/// Atomic `*ptr &= src`.
pub const BPF_ATOMIC_AND: i32 = 0x50;
/// Atomic `*ptr ^= src`.
pub const BPF_ATOMIC_XOR: i32 = 0xa0;
/// Or-ed into the operation: the old value is returned in `src`.
pub const BPF_FETCH: i32 = 0x01;
/// Atomic exchange (always fetches).
pub const BPF_XCHG: i32 = 0xe0 | BPF_FETCH;
/// Atomic compare-and-exchange against `r0` (always fetches).
pub const BPF_CMPXCHG: i32 = 0xf0 | BPF_FETCH;

/// `ld_imm64` `src` values.
pub const BPF_PSEUDO_MAP_FD: u8 = 1;
/// `ld_imm64` of an address in a map value (`.data`, `.rodata`, ...).
pub const BPF_PSEUDO_MAP_VALUE: u8 = 2;
/// `ld_imm64` of a kernel variable by BTF id (`__ksym`).
pub const BPF_PSEUDO_BTF_ID: u8 = 3;
/// `ld_imm64` of a BPF function's address (callbacks).
pub const BPF_PSEUDO_FUNC: u8 = 4;
/// `ld_imm64` of a map by index into the program's fd array.
pub const BPF_PSEUDO_MAP_IDX: u8 = 5;
/// `ld_imm64` of a map value address, map by fd-array index.
pub const BPF_PSEUDO_MAP_IDX_VALUE: u8 = 6;

/// `call` `src` values: 0 is a helper call (imm = helper id).
pub const BPF_PSEUDO_CALL: u8 = 1;
/// A call to a kernel function (kfunc) by BTF id.
pub const BPF_PSEUDO_KFUNC_CALL: u8 = 2;

// Whole opcodes a linker looks for.
/// `ld_imm64`: a 64-bit immediate load over two slots.
pub const LD_IMM64: u8 = BPF_LD | BPF_IMM | BPF_DW;
/// `call`.
pub const CALL: u8 = BPF_JMP | BPF_CALL;
/// `callx`: indirect call through register `dst`.
pub const CALLX: u8 = BPF_JMP | BPF_CALL | BPF_X;
/// `exit`.
pub const EXIT: u8 = BPF_JMP | BPF_EXIT;
/// `goto` with a 16-bit offset.
pub const JA: u8 = BPF_JMP | BPF_JA;
/// `gotol`: `goto` with a 32-bit offset in `imm`.
pub const GOTOL: u8 = BPF_JMP32 | BPF_JA;
/// `may_goto` and future conditional pseudo jumps.
pub const JCOND: u8 = BPF_JMP | BPF_JCOND;

// Registers.
/// Register r0: return value of calls and of the program.
pub const R0: u8 = 0;
/// Register r1: first argument (the context on entry).
pub const R1: u8 = 1;
/// Register r2: second argument.
pub const R2: u8 = 2;
/// Register r3: third argument.
pub const R3: u8 = 3;
/// Register r4: fourth argument.
pub const R4: u8 = 4;
/// Register r5: fifth argument.
pub const R5: u8 = 5;
/// Register r6: callee-saved.
pub const R6: u8 = 6;
/// Register r7: callee-saved.
pub const R7: u8 = 7;
/// Register r8: callee-saved.
pub const R8: u8 = 8;
/// Register r9: callee-saved.
pub const R9: u8 = 9;
/// The read-only frame pointer.
pub const R10: u8 = 10;

impl Insn {
    /// An instruction from its fields.
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// `dst = imm` (64-bit, sign-extended).
    pub const fn mov64_imm(dst: u8, imm: i32) -> Self {
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
    }
    /// `dst = src` (64-bit).
    pub const fn mov64_reg(dst: u8, src: u8) -> Self {
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0)
    }
    /// `wdst = imm` (32-bit, upper half zeroed).
    pub const fn mov32_imm(dst: u8, imm: i32) -> Self {
        Insn::new(BPF_ALU | BPF_MOV | BPF_K, dst, 0, 0, imm)
    }
    /// `wdst = wsrc`.
    pub const fn mov32_reg(dst: u8, src: u8) -> Self {
        Insn::new(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
    }
    /// 64-bit ALU operation (`op` one of `BPF_ADD`..) with an immediate.
    pub const fn alu64_imm(op: u8, dst: u8, imm: i32) -> Self {
        Insn::new(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm)
    }
    /// 64-bit ALU operation with a register operand.
    pub const fn alu64_reg(op: u8, dst: u8, src: u8) -> Self {
        Insn::new(BPF_ALU64 | op | BPF_X, dst, src, 0, 0)
    }
    /// `dst = *(size *)(src + off)`; `size` one of `BPF_W`/`H`/`B`/`DW`.
    pub const fn load(size: u8, dst: u8, src: u8, off: i16) -> Self {
        Insn::new(BPF_LDX | BPF_MEM | size, dst, src, off, 0)
    }
    /// `*(size *)(dst + off) = src`.
    pub const fn store_reg(size: u8, dst: u8, off: i16, src: u8) -> Self {
        Insn::new(BPF_STX | BPF_MEM | size, dst, src, off, 0)
    }
    /// `*(size *)(dst + off) = imm`.
    pub const fn store_imm(size: u8, dst: u8, off: i16, imm: i32) -> Self {
        Insn::new(BPF_ST | BPF_MEM | size, dst, 0, off, imm)
    }
    /// `if dst <op> imm goto +off` (64-bit compare).
    pub const fn jmp_imm(op: u8, dst: u8, imm: i32, off: i16) -> Self {
        Insn::new(BPF_JMP | op | BPF_K, dst, 0, off, imm)
    }
    /// `if dst <op> src goto +off` (64-bit compare).
    pub const fn jmp_reg(op: u8, dst: u8, src: u8, off: i16) -> Self {
        Insn::new(BPF_JMP | op | BPF_X, dst, src, off, 0)
    }
    /// `goto +off`.
    pub const fn ja(off: i16) -> Self {
        Insn::new(JA, 0, 0, off, 0)
    }
    /// `call helper#id`.
    pub const fn call_helper(id: i32) -> Self {
        Insn::new(CALL, 0, 0, 0, id)
    }
    /// BPF-to-BPF call; `imm` = target slot − (this slot + 1).
    pub const fn call_pseudo(imm: i32) -> Self {
        Insn::new(CALL, 0, BPF_PSEUDO_CALL, 0, imm)
    }
    /// Kernel function call; `imm` = BTF id (0 until resolved at load).
    pub const fn call_kfunc(imm: i32) -> Self {
        Insn::new(CALL, 0, BPF_PSEUDO_KFUNC_CALL, 0, imm)
    }
    /// `exit`.
    pub const fn exit() -> Self {
        Insn::new(EXIT, 0, 0, 0, 0)
    }
    /// The two slots of `dst = value ll` with pseudo source `src`
    /// (0 for a plain constant, `BPF_PSEUDO_*` otherwise).
    pub const fn ld_imm64(dst: u8, src: u8, value: u64) -> [Insn; 2] {
        [
            Insn::new(LD_IMM64, dst, src, 0, value as u32 as i32),
            Insn::new(0, 0, 0, 0, (value >> 32) as u32 as i32),
        ]
    }

    /// Instruction class, `BPF_LD`..`BPF_ALU64`.
    pub const fn class(&self) -> u8 {
        self.code & 0x07
    }
    /// Load/store size bits (`BPF_W`, `BPF_H`, `BPF_B`, `BPF_DW`).
    pub const fn size(&self) -> u8 {
        self.code & 0x18
    }
    /// Load/store mode bits (`BPF_IMM`, `BPF_MEM`, `BPF_ATOMIC`, ...).
    pub const fn mode(&self) -> u8 {
        self.code & 0xe0
    }
    /// ALU or jump operation bits (`BPF_ADD`.., `BPF_JA`..).
    pub const fn op(&self) -> u8 {
        self.code & 0xf0
    }
    /// Operand source bit (`BPF_K` or `BPF_X`).
    pub const fn source(&self) -> u8 {
        self.code & 0x08
    }
    /// Width in bytes of a load/store (1, 2, 4 or 8).
    pub const fn access_bytes(&self) -> u32 {
        match self.size() {
            BPF_W => 4,
            BPF_H => 2,
            BPF_B => 1,
            _ => 8,
        }
    }

    /// Whether this is 32- or 64-bit arithmetic.
    pub const fn is_alu(&self) -> bool {
        matches!(self.class(), BPF_ALU | BPF_ALU64)
    }
    /// Whether this is of a jump class (`BPF_JMP` or `BPF_JMP32`).
    pub const fn is_jmp_class(&self) -> bool {
        matches!(self.class(), BPF_JMP | BPF_JMP32)
    }
    /// Whether this is of a load or store class.
    pub const fn is_load_store(&self) -> bool {
        matches!(self.class(), BPF_LD | BPF_LDX | BPF_ST | BPF_STX)
    }

    /// First slot of a 64-bit immediate load (`r = imm64 ll`).
    pub const fn is_ld_imm64(&self) -> bool {
        self.code == LD_IMM64
    }
    /// `ld_imm64` referring to a map by fd or index (the immediate is a map,
    /// not a constant).
    pub const fn is_ld_map(&self) -> bool {
        self.is_ld_imm64()
            && matches!(
                self.src,
                BPF_PSEUDO_MAP_FD
                    | BPF_PSEUDO_MAP_VALUE
                    | BPF_PSEUDO_MAP_IDX
                    | BPF_PSEUDO_MAP_IDX_VALUE
            )
    }
    /// `ld_imm64` with `src = BPF_PSEUDO_FUNC`: the address of a subprogram
    /// (for callbacks); `imm` is relative like a pseudo call's.
    pub const fn is_ld_func(&self) -> bool {
        self.is_ld_imm64() && self.src == BPF_PSEUDO_FUNC
    }
    /// Any `call` (helper, BPF-to-BPF or kfunc), not `callx`.
    pub const fn is_call(&self) -> bool {
        self.code == CALL
    }
    /// BPF-to-BPF call (`src == BPF_PSEUDO_CALL`).
    pub const fn is_pseudo_call(&self) -> bool {
        self.code == CALL && self.src == BPF_PSEUDO_CALL
    }
    /// Kernel function call (`src == BPF_PSEUDO_KFUNC_CALL`).
    pub const fn is_kfunc_call(&self) -> bool {
        self.code == CALL && self.src == BPF_PSEUDO_KFUNC_CALL
    }
    /// Helper call (`src == 0`): `imm` is the helper id.
    pub const fn is_helper_call(&self) -> bool {
        self.code == CALL && self.src == 0
    }
    /// Indirect call through register `dst`.
    pub const fn is_callx(&self) -> bool {
        self.code == CALLX
    }
    /// Whether this is `exit`.
    pub const fn is_exit(&self) -> bool {
        self.code == EXIT
    }
    /// `gotol` (`BPF_JMP32 | BPF_JA`): 32-bit offset in `imm`.
    pub const fn is_gotol(&self) -> bool {
        self.code == GOTOL
    }
    /// `may_goto` (`BPF_JMP | BPF_JCOND`, `src == 0`).
    pub const fn is_may_goto(&self) -> bool {
        self.code == JCOND && self.src == BPF_MAY_GOTO
    }
    /// `addr_space_cast` (`BPF_ALU64 | BPF_MOV | BPF_X`, `off == 1`).
    pub const fn is_addr_space_cast(&self) -> bool {
        self.code == BPF_ALU64 | BPF_MOV | BPF_X && self.off == 1
    }
    /// For `addr_space_cast`: (destination, source) address spaces.
    pub const fn addr_spaces(&self) -> (u16, u16) {
        ((self.imm as u32 >> 16) as u16, self.imm as u32 as u16)
    }
    /// Atomic read-modify-write (`BPF_STX | BPF_ATOMIC`).
    pub const fn is_atomic(&self) -> bool {
        self.class() == BPF_STX && self.mode() == BPF_ATOMIC
    }

    /// A jump whose target lies in this function: `goto`, `gotol`,
    /// conditional jumps and `may_goto`. Not calls nor `exit`.
    pub const fn is_jump(&self) -> bool {
        if !self.is_jmp_class() {
            return false;
        }
        match self.op() {
            BPF_CALL | BPF_EXIT => false,
            BPF_JA => self.source() == BPF_K,
            BPF_JCOND => self.code == JCOND,
            0xf0 => false,
            _ => true,
        }
    }

    /// The slot a jump at `at` lands on: `at + 1 + off` (`imm` for `gotol`).
    /// `None` for non-jumps. May be negative or past the end on bad input.
    pub fn jump_target(&self, at: InsnIndex) -> Option<i64> {
        if !self.is_jump() {
            return None;
        }
        let delta = if self.is_gotol() {
            i64::from(self.imm)
        } else {
            i64::from(self.off)
        };
        Some(i64::from(at.0) + 1 + delta)
    }

    /// The slot a BPF-to-BPF call (or `ld_imm64` of a `BPF_PSEUDO_FUNC`)
    /// at `at` refers to: `at + 1 + imm`.
    pub fn call_target(&self, at: InsnIndex) -> Option<i64> {
        if self.is_pseudo_call() || self.is_ld_func() {
            Some(i64::from(at.0) + 1 + i64::from(self.imm))
        } else {
            None
        }
    }

    /// Points a jump at `at` to slot `target`, checking that the distance
    /// fits the field (16-bit `off`, or 32-bit `imm` for `gotol`).
    pub fn set_jump_target(&mut self, at: InsnIndex, target: InsnIndex) -> Result<()> {
        if !self.is_jump() {
            crate::bail!(
                "instruction {} (code {:#04x}) is not a jump",
                at.0,
                self.code
            );
        }
        let delta = i64::from(target.0) - i64::from(at.0) - 1;
        if self.is_gotol() {
            self.imm = i32::try_from(delta).map_err(|_| {
                Error::new(format!(
                    "instruction {}: jump to {} is out of gotol range",
                    at.0, target.0
                ))
            })?;
        } else {
            self.off = i16::try_from(delta).map_err(|_| {
                Error::new(format!(
                    "instruction {}: jump to {} is {delta} slots away, beyond the 16-bit offset",
                    at.0, target.0
                ))
            })?;
        }
        Ok(())
    }

    /// Points a BPF-to-BPF call (or `BPF_PSEUDO_FUNC` load) at `at` to
    /// slot `target`.
    pub fn set_call_target(&mut self, at: InsnIndex, target: InsnIndex) -> Result<()> {
        if !(self.is_pseudo_call() || self.is_ld_func()) {
            crate::bail!(
                "instruction {} (code {:#04x}, src {}) is not a BPF-to-BPF call",
                at.0,
                self.code,
                self.src
            );
        }
        let delta = i64::from(target.0) - i64::from(at.0) - 1;
        self.imm = i32::try_from(delta).map_err(|_| {
            Error::new(format!(
                "instruction {}: call to {} is out of range",
                at.0, target.0
            ))
        })?;
        Ok(())
    }
}

/// The 64-bit immediate of the `ld_imm64` whose first slot is `first`.
pub const fn imm64(first: &Insn, second: &Insn) -> u64 {
    (first.imm as u32 as u64) | ((second.imm as u32 as u64) << 32)
}

/// The 64-bit immediate of the `ld_imm64` at slot `at`, or `None` when that
/// slot is not an `ld_imm64` with a second half.
pub fn get_imm64(insns: &[Insn], at: InsnIndex) -> Option<u64> {
    let i = at.0 as usize;
    let first = insns.get(i).filter(|f| f.is_ld_imm64())?;
    Some(imm64(first, insns.get(i + 1)?))
}

/// Rewrites the 64-bit immediate of the `ld_imm64` at slot `at` (both
/// halves), leaving its registers and pseudo source alone.
pub fn set_imm64(insns: &mut [Insn], at: InsnIndex, value: u64) -> Result<()> {
    let i = at.0 as usize;
    if !insns.get(i).is_some_and(Insn::is_ld_imm64) {
        crate::bail!("instruction {}: not an ld_imm64", at.0);
    }
    let Some([first, second]) = insns.get_mut(i..i + 2) else {
        crate::bail!("instruction {}: ld_imm64 is missing its second slot", at.0);
    };
    first.imm = value as u32 as i32;
    second.imm = (value >> 32) as u32 as i32;
    Ok(())
}

/// One logical instruction: a slot, plus the second slot of an `ld_imm64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Logical<'a> {
    /// Its slot.
    pub index: InsnIndex,
    /// The instruction in that slot.
    pub insn: &'a Insn,
    /// The second slot, for an `ld_imm64` that has one.
    pub second: Option<&'a Insn>,
}

impl Logical<'_> {
    /// The 64-bit immediate of an `ld_imm64` (its two halves).
    pub fn imm64(&self) -> Option<u64> {
        match self.second {
            Some(hi) if self.insn.is_ld_imm64() => Some(imm64(self.insn, hi)),
            _ => None,
        }
    }
}

/// Walks slots as logical instructions: an `ld_imm64` and its second slot
/// come out as one item. A trailing `ld_imm64` without a second slot comes
/// out with `second: None` (see [`check_ld_imm64`]).
pub fn logical(insns: &[Insn]) -> impl Iterator<Item = Logical<'_>> + '_ {
    let mut i = 0usize;
    std::iter::from_fn(move || {
        let insn = insns.get(i)?;
        let index = InsnIndex(i as u32);
        let second = if insn.is_ld_imm64() {
            insns.get(i + 1)
        } else {
            None
        };
        i += if second.is_some() { 2 } else { 1 };
        Some(Logical {
            index,
            insn,
            second,
        })
    })
}

/// For each slot, whether it is the second half of an `ld_imm64` (and so
/// must not be decoded, moved or jumped to on its own).
pub fn second_halves(insns: &[Insn]) -> Vec<bool> {
    let mut out = vec![false; insns.len()];
    for l in logical(insns) {
        if l.second.is_some() {
            if let Some(flag) = out.get_mut(l.index.0 as usize + 1) {
                *flag = true;
            }
        }
    }
    out
}

/// Checks the pairing rules the kernel enforces: every `ld_imm64` has a
/// second slot, and that slot is all zero apart from its `imm`.
pub fn check_ld_imm64(insns: &[Insn]) -> Result<()> {
    for l in logical(insns) {
        if !l.insn.is_ld_imm64() {
            continue;
        }
        let at = l.index.0;
        match l.second {
            None => crate::bail!("instruction {at}: ld_imm64 is missing its second slot"),
            Some(hi) if hi.code != 0 || hi.dst != 0 || hi.src != 0 || hi.off != 0 => {
                crate::bail!(
                    "instruction {at}: second slot of ld_imm64 has code {:#04x}, dst {}, src {}, off {} (all must be 0)",
                    hi.code,
                    hi.dst,
                    hi.src,
                    hi.off
                )
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_calls() {
        assert!(Insn::call_helper(1).is_helper_call());
        assert!(!Insn::call_helper(1).is_pseudo_call());
        assert!(Insn::call_pseudo(-1).is_pseudo_call());
        assert!(Insn::call_kfunc(0).is_kfunc_call());
        assert!(!Insn::new(CALLX, 1, 0, 0, 0).is_call());
        assert!(Insn::new(CALLX, 1, 0, 0, 0).is_callx());
        assert!(Insn::exit().is_exit());
        // Calls and exit are jumps in class only, not in control flow.
        assert!(!Insn::call_pseudo(3).is_jump());
        assert!(!Insn::exit().is_jump());
    }

    #[test]
    fn jump_targets() {
        // goto +3 at slot 10 lands on 14.
        assert_eq!(Insn::ja(3).jump_target(InsnIndex(10)), Some(14));
        assert_eq!(Insn::ja(-11).jump_target(InsnIndex(10)), Some(0));
        // gotol uses imm, not off.
        let gotol = Insn::new(GOTOL, 0, 0, 7, 100_000);
        assert_eq!(gotol.jump_target(InsnIndex(0)), Some(100_001));
        let may_goto = Insn::new(JCOND, 0, 0, 2, 0);
        assert!(may_goto.is_may_goto());
        assert_eq!(may_goto.jump_target(InsnIndex(5)), Some(8));
        // JMP32 conditional jumps use off.
        let j32 = Insn::new(BPF_JMP32 | BPF_JEQ | BPF_K, 1, 0, -2, 9);
        assert_eq!(j32.jump_target(InsnIndex(5)), Some(4));
        assert_eq!(Insn::call_pseudo(4).jump_target(InsnIndex(1)), None);
        assert_eq!(Insn::call_pseudo(4).call_target(InsnIndex(1)), Some(6));
        assert_eq!(Insn::call_helper(4).call_target(InsnIndex(1)), None);
    }

    #[test]
    fn set_targets_checks_range() {
        let mut j = Insn::jmp_imm(BPF_JEQ, 1, 0, 0);
        j.set_jump_target(InsnIndex(10), InsnIndex(4)).unwrap();
        assert_eq!(j.off, -7);
        assert_eq!(j.jump_target(InsnIndex(10)), Some(4));
        let err = j
            .set_jump_target(InsnIndex(0), InsnIndex(40_000))
            .unwrap_err();
        assert!(err.to_string().contains("16-bit"), "{err}");
        let mut g = Insn::new(GOTOL, 0, 0, 0, 0);
        g.set_jump_target(InsnIndex(0), InsnIndex(40_000)).unwrap();
        assert_eq!(g.imm, 39_999);
        let mut c = Insn::call_pseudo(-1);
        c.set_call_target(InsnIndex(20), InsnIndex(3)).unwrap();
        assert_eq!(c.imm, -18);
        assert!(Insn::call_helper(1)
            .set_call_target(InsnIndex(0), InsnIndex(1))
            .is_err());
    }

    #[test]
    fn ld_imm64_pairs() {
        let [a, b] = Insn::ld_imm64(1, BPF_PSEUDO_MAP_VALUE, 0x1234_5678_9abc_def0);
        assert!(a.is_ld_map());
        assert_eq!(imm64(&a, &b), 0x1234_5678_9abc_def0);
        let insns = [Insn::mov64_imm(0, 0), a, b, Insn::exit()];
        assert_eq!(second_halves(&insns), [false, false, true, false]);
        let items: Vec<_> = logical(&insns).map(|l| (l.index.0, l.imm64())).collect();
        assert_eq!(
            items,
            [(0, None), (1, Some(0x1234_5678_9abc_def0)), (3, None)]
        );
        check_ld_imm64(&insns).unwrap();
        // A slot that looks like ld_imm64 but is a second half is data.
        let tricky = [a, Insn::new(LD_IMM64, 0, 0, 0, 0), Insn::exit()];
        assert_eq!(second_halves(&tricky), [false, true, false]);
        let err = check_ld_imm64(&tricky).unwrap_err();
        assert!(err.to_string().contains("second slot"), "{err}");
        let err = check_ld_imm64(&[a]).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");

        let mut slots = insns;
        set_imm64(&mut slots, InsnIndex(1), u64::MAX - 1).unwrap();
        assert_eq!(get_imm64(&slots, InsnIndex(1)), Some(u64::MAX - 1));
        assert_eq!(slots[1].src, BPF_PSEUDO_MAP_VALUE);
        assert_eq!(get_imm64(&slots, InsnIndex(0)), None);
        assert!(set_imm64(&mut slots, InsnIndex(3), 1).is_err());
        assert!(set_imm64(&mut [a], InsnIndex(0), 1).is_err());
    }

    #[test]
    fn addr_space_cast_fields() {
        let i = Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 1, 2, 1, 1 << 16);
        assert!(i.is_addr_space_cast());
        assert_eq!(i.addr_spaces(), (1, 0));
        assert!(!Insn::mov64_reg(1, 2).is_addr_space_cast());
    }
}
