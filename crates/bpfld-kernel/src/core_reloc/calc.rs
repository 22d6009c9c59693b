//! The value a relocation puts in its instruction, from the local access
//! (the value the compiler wrote, checked before patching) and from the
//! target's (the new value); and the patching itself.

use bpfld::model::btf::{int_encoding, Kind, TypeData, TypeId, BTF_INT_SIGNED};
use bpfld::model::insn::{
    Insn, BPF_ALU, BPF_ALU64, BPF_B, BPF_CALL, BPF_DW, BPF_H, BPF_IMM, BPF_JMP, BPF_K, BPF_LD,
    BPF_LDX, BPF_ST, BPF_STX, BPF_W,
};

use super::spec::{member_bits, members, size_of, skip, ty, RelKind, Spec};
use super::R;

/// libbpf's marker of an instruction whose relocation found no target:
/// a call of helper 0xbad2310 the verifier names only if it is reached.
pub(crate) const POISON_HELPER: i32 = 0x0bad_2310;

/// What to do with the instruction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The value the compiler wrote (from the object's BTF).
    pub(crate) orig: u64,
    pub(crate) new: u64,
    pub(crate) poison: bool,
    /// Whether the instruction must hold `orig` (not for bitfields, whose
    /// compiler layout may differ, nor for type ids).
    pub(crate) validate: bool,
    /// Memory access sizes before and after (loads/stores of a field).
    pub(crate) orig_sz: u32,
    pub(crate) new_sz: u32,
    /// The new size is not safe for the load/store: poisoned if it is one.
    pub(crate) bad_resize: bool,
}

/// A field relocation's value in one spec, or `None` to poison.
struct Field {
    val: u64,
    /// The size of the value a load/store of the field moves (0: not one).
    size: u32,
    type_id: TypeId,
    validate: bool,
}

fn field_value(kind: RelKind, spec: Option<&Spec<'_>>, big_endian: bool) -> R<Option<Field>> {
    let mut f = Field {
        val: 0,
        size: 0,
        type_id: TypeId::VOID,
        validate: true,
    };
    if kind == RelKind::FieldExists {
        f.val = u64::from(spec.is_some());
        return Ok(Some(f));
    }
    let Some(spec) = spec else {
        return Ok(None);
    };
    let btf = spec.btf;
    let acc = spec.acc.last().ok_or("empty access")?;
    if acc.name.is_none() {
        let sz = size_of(btf, acc.type_id)?;
        match kind {
            RelKind::FieldByteOffset => {
                f.val = spec.bit_offset / 8;
                f.size = sz as u32;
                f.type_id = acc.type_id;
            }
            RelKind::FieldByteSize => f.val = sz,
            _ => {
                return Err(format!(
                    "{} cannot be applied to an array element",
                    kind.name()
                ))
            }
        }
        return Ok(Some(f));
    }
    let t = ty(btf, acc.type_id)?;
    let m = members(t)
        .and_then(|ms| ms.get(acc.idx as usize))
        .ok_or("the accessed member does not exist")?;
    let (mid, mt) = skip(btf, m.type_id)?;
    let bit_off = u32::try_from(spec.bit_offset).map_err(|_| "field offset overflows")?;
    let (_, mut bit_sz) = member_bits(t, m);
    let bitfield = bit_sz > 0;
    let (byte_off, byte_sz) = if bitfield {
        let mut byte_sz = mt
            .size_field()
            .filter(|&s| s > 0)
            .ok_or_else(|| format!("bitfield of type {}, which has no size", btf.describe(mid)))?;
        let mut byte_off = bit_off / 8 / byte_sz * byte_sz;
        // The smallest load that holds the whole bitfield.
        while u64::from(bit_off) + u64::from(bit_sz) - u64::from(byte_off) * 8
            > u64::from(byte_sz) * 8
        {
            if byte_sz >= 8 {
                return Err("the bitfield cannot be read with one 64-bit load".into());
            }
            byte_sz *= 2;
            byte_off = bit_off / 8 / byte_sz * byte_sz;
        }
        (byte_off, byte_sz)
    } else {
        let sz = size_of(btf, mid)? as u32;
        bit_sz = sz.wrapping_mul(8);
        (bit_off / 8, sz)
    };
    f.validate = !bitfield;
    match kind {
        RelKind::FieldByteOffset => {
            f.val = u64::from(byte_off);
            if !bitfield {
                f.size = byte_sz;
                f.type_id = mid;
            }
        }
        RelKind::FieldByteSize => f.val = u64::from(byte_sz),
        RelKind::FieldSigned => {
            let signed = match &mt.data {
                TypeData::Enum { .. } | TypeData::Enum64 { .. } => mt.kind_flag,
                TypeData::Int { data, .. } => int_encoding(*data) & BTF_INT_SIGNED != 0,
                _ => false,
            };
            f.val = u64::from(signed);
            f.validate = true;
        }
        RelKind::FieldLshiftU64 => {
            let v = if big_endian {
                (8u32.wrapping_sub(byte_sz))
                    .wrapping_mul(8)
                    .wrapping_add(bit_off - byte_off * 8)
            } else {
                64u32.wrapping_sub(bit_off.wrapping_add(bit_sz).wrapping_sub(byte_off * 8))
            };
            f.val = u64::from(v);
        }
        RelKind::FieldRshiftU64 => {
            f.val = u64::from(64u32.wrapping_sub(bit_sz));
            f.validate = true;
        }
        _ => return Err(format!("{} is not a field relocation", kind.name())),
    }
    Ok(Some(f))
}

fn type_value(kind: RelKind, spec: Option<&Spec<'_>>) -> R<u64> {
    let Some(spec) = spec else {
        return Ok(0);
    };
    Ok(match kind {
        RelKind::TypeIdTarget => u64::from(spec.root.0),
        RelKind::TypeExists | RelKind::TypeMatches => 1,
        RelKind::TypeSize => size_of(spec.btf, spec.root)?,
        _ => return Err(format!("{} is not a type relocation", kind.name())),
    })
}

fn enumval_value(kind: RelKind, spec: Option<&Spec<'_>>) -> R<Option<u64>> {
    if kind == RelKind::EnumvalExists {
        return Ok(Some(u64::from(spec.is_some())));
    }
    let Some(spec) = spec else {
        return Ok(None);
    };
    let acc = spec.acc.first().ok_or("empty access")?;
    let t = ty(spec.btf, acc.type_id)?;
    let i = acc.idx as usize;
    Ok(match &t.data {
        // A 32-bit enumerator is a signed word in BTF: libbpf widens it
        // with its sign, whatever the enum's signedness.
        TypeData::Enum { values, .. } => values.get(i).map(|v| v.val as i32 as i64 as u64),
        TypeData::Enum64 { values, .. } => values.get(i).map(|v| v.val),
        _ => None,
    }
    .ok_or("the enumerator does not exist")
    .map(Some)?)
}

/// The outcome of a relocation for the local access and one target access
/// (`None`: no candidate has it).
pub(crate) fn outcome(
    kind: RelKind,
    local: &Spec<'_>,
    targ: Option<&Spec<'_>>,
    big_endian: bool,
) -> R<Outcome> {
    let mut o = Outcome {
        validate: true,
        ..Outcome::default()
    };
    if kind.is_field() {
        let l = field_value(kind, Some(local), big_endian)?.ok_or("local access missing")?;
        o.orig = l.val;
        o.orig_sz = l.size;
        o.validate = l.validate;
        let Some(t) = field_value(kind, targ, big_endian)? else {
            o.poison = true;
            return Ok(o);
        };
        o.new = t.val;
        o.new_sz = t.size;
        if o.orig_sz != o.new_sz {
            // Only a pointer or an unsigned integer reads the same with
            // another load size (zero extension).
            let (lt, tt) = (
                ty(local.btf, l.type_id)?,
                ty(targ.map_or(local.btf, |s| s.btf), t.type_id)?,
            );
            let unsigned_int = |t: &bpfld::model::btf::BtfType| match t.data {
                TypeData::Int { data, .. } => int_encoding(data) != BTF_INT_SIGNED,
                _ => false,
            };
            let both_ptr = lt.kind() == Kind::Ptr && tt.kind() == Kind::Ptr;
            o.bad_resize = !(both_ptr || (unsigned_int(lt) && unsigned_int(tt)));
        }
    } else if kind.is_type() {
        o.orig = type_value(kind, Some(local))?;
        o.validate = kind != RelKind::TypeIdTarget;
        o.new = type_value(kind, targ)?;
    } else {
        o.orig = enumval_value(kind, Some(local))?.ok_or("local enumerator missing")?;
        match enumval_value(kind, targ)? {
            Some(v) => o.new = v,
            None => o.poison = true,
        }
    }
    Ok(o)
}

fn poison(insn: &mut Insn) {
    *insn = Insn {
        code: BPF_JMP | BPF_CALL,
        dst: 0,
        src: 0,
        off: 0,
        imm: POISON_HELPER,
    };
}

fn size_bytes(code: u8) -> u32 {
    match code & 0x18 {
        BPF_DW => 8,
        BPF_W => 4,
        BPF_H => 2,
        _ => 1,
    }
}

fn size_code(bytes: u32) -> Option<u8> {
    Some(match bytes {
        8 => BPF_DW,
        4 => BPF_W,
        2 => BPF_H,
        1 => BPF_B,
        _ => return None,
    })
}

/// Patches the instruction at `at` with the outcome, after checking it
/// holds the value the compiler computed from the local type.
pub(crate) fn patch(insns: &mut [Insn], at: usize, o: &Outcome) -> R<()> {
    let n = insns.len();
    let insn = *insns
        .get(at)
        .ok_or_else(|| format!("the section has only {n} instructions"))?;
    let ldimm64 = insn.code == BPF_LD | BPF_IMM | BPF_DW;
    if o.poison {
        if ldimm64 {
            if let Some(second) = insns.get_mut(at + 1) {
                poison(second);
            }
        }
        poison(&mut insns[at]);
        return Ok(());
    }
    let unexpected = |got: String| {
        format!(
            "the instruction holds {got}, not {} as the local type gives (the relocation \
             does not describe this instruction)",
            o.orig
        )
    };
    match insn.code & 0x07 {
        BPF_ALU | BPF_ALU64 => {
            if insn.code & 0x08 != BPF_K {
                return Err(format!(
                    "an ALU instruction with a register operand (code {:#04x}) cannot be relocated",
                    insn.code
                ));
            }
            if o.validate && insn.imm as i64 as u64 != o.orig {
                return Err(unexpected(format!("immediate {}", insn.imm)));
            }
            insns[at].imm = o.new as i32;
        }
        BPF_LDX | BPF_ST | BPF_STX => {
            if o.validate && insn.off as i64 as u64 != o.orig {
                return Err(unexpected(format!("offset {}", insn.off)));
            }
            if o.new > i16::MAX as u64 {
                return Err(format!(
                    "the new offset {} does not fit a load/store's 16-bit offset",
                    o.new
                ));
            }
            if o.bad_resize {
                // libbpf's choice: the access would read a wrong value, so
                // the instruction fails at verification if reached.
                poison(&mut insns[at]);
                return Ok(());
            }
            let i = &mut insns[at];
            i.off = o.new as i16;
            if o.new_sz != o.orig_sz {
                let has = size_bytes(i.code);
                if has != o.orig_sz {
                    return Err(format!(
                        "the instruction accesses {has} bytes, the local field has {}",
                        o.orig_sz
                    ));
                }
                let code = size_code(o.new_sz).ok_or_else(|| {
                    format!("the kernel's field has {} bytes, no load size", o.new_sz)
                })?;
                i.code = (i.code & 0xe0) | code | (i.code & 0x07);
            }
        }
        BPF_LD => {
            let second = insns.get(at + 1).copied();
            let Some(second) = second.filter(|s| {
                ldimm64
                    && insn.src == 0
                    && insn.off == 0
                    && s.code == 0
                    && s.dst == 0
                    && s.src == 0
                    && s.off == 0
            }) else {
                return Err("a relocated ld_imm64 must load a plain 64-bit constant".into());
            };
            let imm = u64::from(insn.imm as u32) | (u64::from(second.imm as u32) << 32);
            if o.validate && imm != o.orig {
                return Err(unexpected(format!("the 64-bit constant {imm}")));
            }
            insns[at].imm = o.new as u32 as i32;
            insns[at + 1].imm = (o.new >> 32) as u32 as i32;
        }
        _ => {
            return Err(format!(
                "an instruction with code {:#04x} cannot be relocated",
                insn.code
            ))
        }
    }
    Ok(())
}
