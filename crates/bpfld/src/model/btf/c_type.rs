//! BTF types in C syntax, for listings and for error messages that show
//! two prototypes side by side.

use crate::model::btf::{Btf, TypeData, TypeId};

/// Deep enough for any real declarator; bounds hostile cycles.
const MAX_DEPTH: usize = 64;

/// A declaration of `name` with type `id`: `int x`, `char *argv[4]`,
/// `int (*cb)(void *)`; with an empty name, the type alone.
pub fn decl(btf: &Btf, id: TypeId, name: &str) -> String {
    let mut budget = MAX_STEPS;
    declare(btf, id, name.to_string(), 0, &mut budget)
}

/// Types may share parameters (a DAG): without a budget a crafted BTF
/// makes the text exponentially long.
const MAX_STEPS: usize = 4096;

/// The type alone, e.g. `struct foo *`.
pub fn type_name(btf: &Btf, id: TypeId) -> String {
    decl(btf, id, "")
}

/// A function's prototype, `int inc(int x)`, from its FUNC (or a
/// FUNC_PROTO and a name).
pub fn prototype(btf: &Btf, func: TypeId, name: &str) -> String {
    let proto = match btf.get(func).map(|t| &t.data) {
        Some(TypeData::Func { proto, .. }) => *proto,
        _ => func,
    };
    decl(btf, proto, name)
}

fn named(btf: &Btf, id: TypeId, kw: &str) -> String {
    let n = btf.type_name(id);
    let n = if n.is_empty() { "(anon)" } else { n };
    if kw.is_empty() {
        n.to_string()
    } else {
        format!("{kw} {n}")
    }
}

fn join(base: String, inner: &str) -> String {
    if inner.is_empty() {
        base
    } else {
        format!("{base} {inner}")
    }
}

fn declare(btf: &Btf, id: TypeId, inner: String, depth: usize, budget: &mut usize) -> String {
    if depth > MAX_DEPTH || *budget == 0 || inner.len() > MAX_STEPS {
        return join("...".into(), &inner);
    }
    *budget -= 1;
    if id == TypeId::VOID {
        return join("void".into(), &inner);
    }
    let Some(t) = btf.get(id) else {
        return join(format!("<type {id}>"), &inner);
    };
    let wrap = |s: &str| {
        if s.is_empty() {
            String::new()
        } else {
            format!("({s})")
        }
    };
    match &t.data {
        TypeData::Void => join("void".into(), &inner),
        TypeData::Int { .. } | TypeData::Float { .. } | TypeData::Typedef(_) => {
            join(named(btf, id, ""), &inner)
        }
        TypeData::Struct { .. } => join(named(btf, id, "struct"), &inner),
        TypeData::Union { .. } => join(named(btf, id, "union"), &inner),
        TypeData::Enum { .. } | TypeData::Enum64 { .. } => join(named(btf, id, "enum"), &inner),
        TypeData::Fwd => {
            let kw = if t.kind_flag { "union" } else { "struct" };
            join(named(btf, id, kw), &inner)
        }
        TypeData::Ptr(to) => declare(btf, *to, format!("*{inner}"), depth + 1, budget),
        TypeData::Const(to) | TypeData::Volatile(to) | TypeData::Restrict(to) => {
            let kw = match &t.data {
                TypeData::Const(_) => "const",
                TypeData::Volatile(_) => "volatile",
                _ => "restrict",
            };
            let is_ptr = matches!(btf.get(*to).map(|t| &t.data), Some(TypeData::Ptr(_)));
            if is_ptr {
                let inner = if inner.is_empty() {
                    kw.to_string()
                } else {
                    format!("{kw} {inner}")
                };
                declare(btf, *to, inner, depth + 1, budget)
            } else {
                format!("{kw} {}", declare(btf, *to, inner, depth + 1, budget))
            }
        }
        TypeData::TypeTag(to) => declare(btf, *to, inner, depth + 1, budget),
        TypeData::Array { elem, nelems, .. } => {
            let inner = if inner.starts_with('*') {
                format!("{}[{nelems}]", wrap(&inner))
            } else {
                format!("{inner}[{nelems}]")
            };
            declare(btf, *elem, inner, depth + 1, budget)
        }
        TypeData::FuncProto { ret, params } => {
            let list: Vec<String> = params
                .iter()
                .map(|p| {
                    if p.type_id == TypeId::VOID {
                        "...".to_string()
                    } else {
                        let pname = btf.name(p.name_off).unwrap_or("");
                        declare(btf, p.type_id, pname.to_string(), depth + 1, budget)
                    }
                })
                .collect();
            let list = if list.is_empty() {
                "void".to_string()
            } else {
                list.join(", ")
            };
            let inner = if inner.starts_with('*') {
                format!("{}({list})", wrap(&inner))
            } else {
                format!("{inner}({list})")
            };
            declare(btf, *ret, inner, depth + 1, budget)
        }
        TypeData::Func { proto, .. } => declare(btf, *proto, inner, depth + 1, budget),
        TypeData::Var { type_id, .. } => declare(btf, *type_id, inner, depth + 1, budget),
        TypeData::Datasec { .. } => join(format!("SEC(\"{}\")", btf.type_name(id)), &inner),
        TypeData::DeclTag { target, .. } => declare(btf, *target, inner, depth + 1, budget),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::btf::{BtfType, Param};
    use crate::model::Endian;

    #[test]
    fn declarators_read_like_c() {
        let mut b = Btf::new(Endian::Little);
        let int_name = b.add_string("int");
        let int = b.add_type(BtfType::new(
            int_name,
            false,
            TypeData::Int {
                size: 4,
                data: 0x0100_0020,
            },
        ));
        let ptr = b.add_type(BtfType::new(0, false, TypeData::Ptr(int)));
        let arr = b.add_type(BtfType::new(
            0,
            false,
            TypeData::Array {
                elem: ptr,
                index: int,
                nelems: 4,
            },
        ));
        let x = b.add_string("x");
        let proto = b.add_type(BtfType::new(
            0,
            false,
            TypeData::FuncProto {
                ret: int,
                params: vec![Param {
                    name_off: x,
                    type_id: int,
                }],
            },
        ));
        let fptr = b.add_type(BtfType::new(0, false, TypeData::Ptr(proto)));
        let cptr = b.add_type(BtfType::new(0, false, TypeData::Const(ptr)));
        assert_eq!(decl(&b, int, "a"), "int a");
        assert_eq!(decl(&b, arr, "v"), "int *v[4]");
        assert_eq!(decl(&b, proto, "inc"), "int inc(int x)");
        assert_eq!(decl(&b, fptr, "cb"), "int (*cb)(int x)");
        assert_eq!(decl(&b, cptr, "p"), "int *const p");
        assert_eq!(type_name(&b, ptr), "int *");
    }

    #[test]
    fn shared_parameters_do_not_explode() {
        // Each prototype takes three pointers to the previous one: the
        // full text would have 3^40 parts.
        let mut b = Btf::new(Endian::Little);
        let int = b.add_type(BtfType::new(0, false, TypeData::Int { size: 4, data: 32 }));
        let mut prev = b.add_type(BtfType::new(
            0,
            false,
            TypeData::FuncProto {
                ret: int,
                params: vec![],
            },
        ));
        for _ in 0..40 {
            let p = b.add_type(BtfType::new(0, false, TypeData::Ptr(prev)));
            let param = Param {
                name_off: 0,
                type_id: p,
            };
            prev = b.add_type(BtfType::new(
                0,
                false,
                TypeData::FuncProto {
                    ret: p,
                    params: vec![param; 3],
                },
            ));
        }
        let text = decl(&b, prev, "f");
        assert!(text.len() < 200_000, "{} bytes", text.len());
        assert!(text.contains("..."));
    }
}
