//! The `CO-RE <kind> [id] type::field (access)` text objdump prints after
//! an instruction that a `.BTF.ext` CO-RE record names.

use super::lenient_btf::{
    CoreNotes, Relo, Type, KIND_ARRAY, KIND_CONST, KIND_ENUM, KIND_ENUM64, KIND_FWD, KIND_RESTRICT,
    KIND_STRUCT, KIND_TYPEDEF, KIND_TYPE_TAG, KIND_UNION, KIND_VOLATILE,
};

impl CoreNotes {
    fn name_or_anon(&self, off: u32, idx: u32) -> String {
        match self.string(off) {
            "" => format!("<anon {idx}>"),
            s => s.to_string(),
        }
    }

    /// Follows modifiers and typedefs (bounded, where llvm would loop).
    fn skip_mods_and_typedefs<'a>(&'a self, mut t: &'a Type) -> &'a Type {
        for _ in 0..64 {
            let k = t.kind();
            if !(is_mod(k) || k == KIND_TYPEDEF) {
                break;
            }
            match self.ty(t.size_or_type) {
                Some(base) => t = base,
                None => break,
            }
        }
        t
    }

    /// The text after `CO-RE `.
    pub(super) fn describe(&self, r: &Relo) -> String {
        let spec_str = self.string(r.spec_off);
        let kind = kind_name(r.kind);
        let fail = |msg: String| format!("{kind} [{}] '{spec_str}' <{msg}>", r.type_id);
        let mut spec = Vec::new();
        let mut rest = spec_str;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let Ok(v) = rest[..digits].parse::<u64>() else {
                return fail("spec string is not a number".into());
            };
            spec.push(v as u32);
            rest = &rest[digits..];
            match rest.chars().next() {
                None => break,
                Some(':') => rest = &rest[1..],
                Some(c) => return fail(format!("unexpected spec string delimiter: '{c}'")),
            }
        }
        let mut out = kind.clone();
        let mut cur = r.type_id;
        let Some(mut t) = self.ty(cur) else {
            return fail(format!("unknown type id: {}", cur as i32));
        };
        out.push_str(&format!(" [{cur}]"));
        let mut chain = 0;
        while let Some(m) = self.modifier(t) {
            out.push_str(&m);
            if chain >= 32 {
                return fail("modifiers chain is too long".into());
            }
            chain += 1;
            cur = t.size_or_type;
            let Some(next) = self.ty(cur) else {
                return fail(format!(
                    "unknown type id: {} in modifiers chain",
                    cur as i32
                ));
            };
            t = next;
        }
        if cur == 0 {
            out.push_str(" void");
        } else {
            out.push_str(match t.kind() {
                KIND_TYPEDEF => " typedef",
                KIND_STRUCT => " struct",
                KIND_UNION => " union",
                KIND_ENUM | KIND_ENUM64 => " enum",
                KIND_FWD if t.kflag() => " fwd union",
                KIND_FWD => " fwd struct",
                _ => "",
            });
            out.push(' ');
            out.push_str(&self.name_or_anon(t.name_off, cur));
        }
        match r.kind {
            // Type-based: the access string must be "0".
            6..=9 | 12 => {
                if spec != [0] {
                    return fail("unexpected type-based relocation spec: should be '0'".into());
                }
                out
            }
            10 | 11 => {
                out.push_str("::");
                let t = self.skip_mods_and_typedefs(t);
                if spec.len() != 1 {
                    return fail("unexpected enumval relocation spec size".into());
                }
                let idx = spec[0];
                let i = idx as usize;
                let (name_off, val) = match t.kind() {
                    KIND_ENUM if i < t.vlen() => {
                        (t.word(i, 2, 0), t.word(i, 2, 1) as i32 as i64 as u64)
                    }
                    KIND_ENUM64 if i < t.vlen() => (
                        t.word(i, 3, 0),
                        u64::from(t.word(i, 3, 2)) << 32 | u64::from(t.word(i, 3, 1)),
                    ),
                    KIND_ENUM | KIND_ENUM64 => {
                        return fail(format!("bad value index: {}", idx as i32))
                    }
                    k => return fail(format!("unexpected type kind for enum relocation: {k}")),
                };
                out.push_str(&self.name_or_anon(name_off, idx));
                if t.kflag() {
                    out.push_str(&format!(" = {}", val as i64));
                } else {
                    out.push_str(&format!(" = {val}"));
                }
                out
            }
            0..=5 => {
                out.push_str("::");
                let Some(&first) = spec.first() else {
                    return fail("field spec too short".into());
                };
                if first != 0 {
                    out.push_str(&format!("[{first}]"));
                }
                for (n, &idx) in spec.iter().enumerate().skip(1) {
                    let s = self.skip_mods_and_typedefs(t);
                    let i = idx as usize;
                    match s.kind() {
                        KIND_STRUCT | KIND_UNION => {
                            if s.vlen() <= i {
                                return fail(format!(
                                    "member index {} for spec sub-string {n} is out of range",
                                    idx as i32
                                ));
                            }
                            if n != 1 || first != 0 {
                                out.push('.');
                            }
                            out.push_str(&self.name_or_anon(s.word(i, 3, 0), idx));
                            let mt = s.word(i, 3, 1);
                            let Some(next) = self.ty(mt) else {
                                return fail(format!(
                                    "unknown member type id {} for spec sub-string {n}",
                                    mt as i32
                                ));
                            };
                            t = next;
                        }
                        KIND_ARRAY => {
                            out.push_str(&format!("[{idx}]"));
                            let et = s.word(0, 3, 0);
                            let Some(next) = self.ty(et) else {
                                return fail(format!(
                                    "unknown element type id {} for spec sub-string {n}",
                                    et as i32
                                ));
                            };
                            t = next;
                        }
                        k => {
                            return fail(format!(
                                "unexpected type kind {k} for spec sub-string {n}"
                            ))
                        }
                    }
                }
                out.push_str(&format!(" ({spec_str})"));
                out
            }
            k => fail(format!("unknown relocation kind: {}", k as i32)),
        }
    }

    fn modifier(&self, t: &Type) -> Option<String> {
        Some(match t.kind() {
            KIND_CONST => " const".into(),
            KIND_VOLATILE => " volatile".into(),
            KIND_RESTRICT => " restrict".into(),
            KIND_TYPE_TAG => format!(" type_tag(\"{}\")", self.string(t.name_off)),
            _ => return None,
        })
    }
}

fn is_mod(kind: u32) -> bool {
    matches!(
        kind,
        KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
    )
}

fn kind_name(kind: u32) -> String {
    let name = match kind {
        0 => "byte_off",
        1 => "byte_sz",
        2 => "field_exists",
        3 => "signed",
        4 => "lshift_u64",
        5 => "rshift_u64",
        6 => "local_type_id",
        7 => "target_type_id",
        8 => "type_exists",
        12 => "type_matches",
        9 => "type_size",
        10 => "enumval_exists",
        11 => "enumval_value",
        k => return format!("<reloc kind #{k}>"),
    };
    format!("<{name}>")
}
