//! Exception callbacks: `__exception_cb(NAME)` is the BTF decl tag
//! `exception_callback:NAME` on a program's FUNC. Nothing calls the
//! callback, so linking the called functions leaves it out, yet the
//! kernel looks it up in the program's func_info and refuses the program
//! without it. libbpf (1.3 and later) appends it, with the functions it
//! calls, after the program's code; bpfld does the same, under libbpf's
//! rules.

use std::collections::{HashMap, HashSet};

use aya_obj::{Function, Program, ProgramSection};
use bpfld::model::btf::{TypeData, BTF_FUNC_GLOBAL};
use bpfld::model::object::{Binding, Object, SymbolKind, SymbolPlace, Visibility};

const TAG: &str = "exception_callback:";

/// The exception callback of program `prog` of `obj`, picked as libbpf
/// picks it, or libbpf's reason to refuse the program. `None` also when
/// the program has several tags: nothing is appended then, and the
/// verifier says why.
pub(crate) fn callback_of(obj: &Object, prog: &str) -> Result<Option<String>, String> {
    let Some(btf) = obj.btf.as_ref() else {
        return Ok(None);
    };
    let text = obj
        .sections
        .iter()
        .find(|s| s.name == ".text")
        .map(|s| s.id);
    let mut found = None;
    for (id, t) in btf.iter() {
        let TypeData::DeclTag {
            target,
            component_idx: -1,
        } = t.data
        else {
            continue;
        };
        let Some(value) = btf.type_name(id).strip_prefix(TAG) else {
            continue;
        };
        // Any such tag anywhere but on a global function fails every
        // program, as in libbpf.
        if !matches!(
            btf.get(target).map(|t| &t.data),
            Some(TypeData::Func {
                linkage: BTF_FUNC_GLOBAL,
                ..
            })
        ) {
            return Err(format!(
                "the decl tag '{TAG}{value}' is not on a program's function"
            ));
        }
        if btf.type_name(target) != prog {
            continue;
        }
        if found.is_some() {
            return Ok(None);
        }
        if value.is_empty() {
            return Err(format!("the decl tag '{TAG}' names no exception callback"));
        }
        // libbpf's subprograms: the functions of .text, static ones too.
        let sub = obj.symbols.iter().find(|s| {
            s.kind == SymbolKind::Func
                && text.is_some_and(|t| s.place == SymbolPlace::Section(t))
                && s.name == value
        });
        match sub {
            None => return Err(format!("cannot find exception callback '{value}' in .text")),
            // The verifier wants a global FUNC; hidden ones are made static
            // (see hidden_subprogs.rs).
            Some(s)
                if s.binding == Binding::Local
                    || matches!(s.visibility, Visibility::Hidden | Visibility::Internal) =>
            {
                return Err(format!(
                    "exception callback '{value}' must be a global function, not static or hidden"
                ));
            }
            Some(_) => found = Some(value.to_string()),
        }
    }
    Ok(found)
}

/// Appends to each program of `obj` (its calls linked) named in `callbacks`
/// its callback, linked by aya in `unlinked` (`obj` before its calls were
/// linked), with its func_info and line_info. A program that already holds
/// the callback (it calls it, which the verifier refuses) is left alone.
pub(crate) fn append(
    obj: &mut aya_obj::Object,
    mut unlinked: aya_obj::Object,
    callbacks: &HashMap<String, String>,
    text_sections: &HashSet<usize>,
) -> Result<(), aya_obj::relocation::EbpfRelocationError> {
    let program_keys: HashSet<(usize, u64)> = unlinked
        .programs
        .values()
        .map(Program::function_key)
        .collect();
    let mut linked: HashMap<&str, Option<Function>> = HashMap::new();
    for cb in callbacks.values() {
        if linked.contains_key(cb.as_str()) {
            continue;
        }
        let found = unlinked
            .functions
            .iter()
            .find(|(k, f)| f.name == *cb && !program_keys.contains(k))
            .map(|(k, f)| (*k, f.clone()));
        let Some((key, original)) = found else {
            linked.insert(cb, None);
            continue;
        };
        let license = obj
            .programs
            .values()
            .next()
            .map(|p| p.license.clone())
            .unwrap_or_default();
        // Linked as aya links a program whose function it is; one at a
        // time, since linking replaces the function in `unlinked`.
        unlinked.programs = HashMap::from([(
            cb.clone(),
            Program {
                license,
                kernel_version: None,
                section: ProgramSection::SocketFilter,
                section_index: key.0,
                address: key.1,
            },
        )]);
        unlinked.relocate_calls(text_sections)?;
        let Some(mut block) = unlinked.functions.insert(key, original.clone()) else {
            linked.insert(cb, None);
            continue;
        };
        // A function of .text keeps its section's offsets in its own
        // records; what aya appended is already relative to the block.
        let base =
            (original.section_offset / std::mem::size_of::<aya_obj::generated::bpf_insn>()) as u32;
        for fi in block
            .func_info
            .func_info
            .iter_mut()
            .take(original.func_info.func_info.len())
        {
            fi.insn_off = fi.insn_off.saturating_sub(base);
        }
        for li in block
            .line_info
            .line_info
            .iter_mut()
            .take(original.line_info.line_info.len())
        {
            li.insn_off = li.insn_off.saturating_sub(base);
        }
        linked.insert(cb, Some(block));
    }
    for (prog, cb) in callbacks {
        let Some(Some(block)) = linked.get(cb.as_str()) else {
            continue;
        };
        let Some(key) = obj.programs.get(prog).map(Program::function_key) else {
            continue;
        };
        let Some(f) = obj.functions.get_mut(&key) else {
            continue;
        };
        let cb_type = block.func_info.func_info.first().map(|i| i.type_id);
        if cb_type.is_some_and(|t| f.func_info.func_info.iter().any(|i| i.type_id == t)) {
            continue;
        }
        append_block(f, block);
    }
    Ok(())
}

/// Appends `block` (the callback linked alone) to `f`. As libbpf links
/// the callback in the program's context, a function `f` already holds
/// (same FUNC in func_info) is not copied again: calls to it go to `f`'s
/// copy, and what only it called is left out. Calls between the copied
/// functions are moved with them.
fn append_block(f: &mut Function, block: &Function) {
    const CALL: u8 = 0x85; // BPF_JMP | BPF_CALL
    const LD_IMM64: u8 = 0x18; // BPF_LD | BPF_IMM | BPF_DW
    const PSEUDO_CALL: u8 = 1;
    const PSEUDO_FUNC: u8 = 4;
    let base = f.instructions.len();
    // The block's functions: start, end, FUNC type id.
    let infos = &block.func_info.func_info;
    let segs: Vec<(usize, usize, u32)> = infos
        .iter()
        .enumerate()
        .map(|(i, fi)| {
            let end = infos
                .get(i + 1)
                .map_or(block.instructions.len(), |n| n.insn_off as usize);
            (fi.insn_off as usize, end, fi.type_id)
        })
        .collect();
    let have: HashMap<u32, usize> = f
        .func_info
        .func_info
        .iter()
        .map(|fi| (fi.type_id, fi.insn_off as usize))
        .collect();
    let seg_of = |insn: usize| segs.iter().position(|&(s, e, _)| insn >= s && insn < e);
    let is_ref = |ins: &aya_obj::generated::bpf_insn| {
        (ins.code == CALL && ins.src_reg() == PSEUDO_CALL)
            || (ins.code == LD_IMM64 && ins.src_reg() == PSEUDO_FUNC)
    };
    // Without func_info (or with records that do not cover the block),
    // nothing can be matched: the block goes in whole.
    let usable = f.func_info_rec_size > 0
        && segs.first().is_some_and(|s| s.0 == 0)
        && segs.iter().all(|s| s.0 < s.1)
        && segs.windows(2).all(|w| w[0].1 == w[1].0);
    if !usable {
        append_whole(f, block);
        return;
    }
    // Which of the block's functions are copied: those reached from the
    // callback without going through one `f` already holds.
    let mut keep = vec![false; segs.len()];
    {
        let mut todo = vec![0usize];
        while let Some(k) = todo.pop() {
            if keep[k] || (k > 0 && have.contains_key(&segs[k].2)) {
                continue;
            }
            keep[k] = true;
            for i in segs[k].0..segs[k].1 {
                let ins = &block.instructions[i];
                if !is_ref(ins) {
                    continue;
                }
                let target = i as i64 + i64::from(ins.imm) + 1;
                if let Some(t) = usize::try_from(target).ok().and_then(seg_of) {
                    todo.push(t);
                }
            }
        }
    }
    // Where each block instruction of a copied function lands in `f`.
    let mut new_at: HashMap<usize, usize> = HashMap::new();
    let mut next = base;
    for (k, &(s, e, _)) in segs.iter().enumerate() {
        if keep[k] {
            new_at.insert(s, next);
            next += e - s;
        }
    }
    let place = |old: usize| -> Option<usize> {
        let k = seg_of(old)?;
        let (s, _, t) = segs[k];
        if keep[k] {
            new_at.get(&s).map(|n| n + (old - s))
        } else {
            have.get(&t).map(|n| n + (old - s))
        }
    };
    for (k, &(s, e, _)) in segs.iter().enumerate() {
        if !keep[k] {
            continue;
        }
        for i in s..e {
            let mut ins = block.instructions[i];
            let at = f.instructions.len();
            if is_ref(&ins) {
                let target = i as i64 + i64::from(ins.imm) + 1;
                if let Some(t) = usize::try_from(target).ok().and_then(place) {
                    ins.imm = (t as i64 - at as i64 - 1) as i32;
                }
            }
            f.instructions.push(ins);
        }
    }
    let moved = |off: u32| -> Option<u32> {
        let k = seg_of(off as usize)?;
        keep[k].then(|| place(off as usize).map(|n| n as u32))?
    };
    for fi in &block.func_info.func_info {
        if let Some(off) = moved(fi.insn_off) {
            let mut fi = *fi;
            fi.insn_off = off;
            f.func_info.func_info.push(fi);
        }
    }
    f.func_info.num_info = f.func_info.func_info.len() as u32;
    for li in &block.line_info.line_info {
        if let Some(off) = moved(li.insn_off) {
            let mut li = *li;
            li.insn_off = off;
            f.line_info.line_info.push(li);
        }
    }
    f.line_info.num_info = f.line_info.line_info.len() as u32;
    if f.line_info_rec_size == 0 {
        f.line_info_rec_size = block.line_info_rec_size;
    }
}

/// Appends `block` to `f` as it is: calls inside it are pc-relative, so
/// they stay right.
fn append_whole(f: &mut Function, block: &Function) {
    let start = f.instructions.len() as u32;
    f.instructions.extend(&block.instructions);
    f.func_info
        .func_info
        .extend(block.func_info.func_info.iter().map(|i| {
            let mut i = *i;
            i.insn_off += start;
            i
        }));
    f.func_info.num_info = f.func_info.func_info.len() as u32;
    f.line_info
        .line_info
        .extend(block.line_info.line_info.iter().map(|l| {
            let mut l = *l;
            l.insn_off += start;
            l
        }));
    f.line_info.num_info = f.line_info.line_info.len() as u32;
    if f.func_info_rec_size == 0 {
        f.func_info_rec_size = block.func_info_rec_size;
    }
    if f.line_info_rec_size == 0 {
        f.line_info_rec_size = block.line_info_rec_size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Object {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/").to_string() + name;
        bpfld::Object::parse(&std::fs::read(p).unwrap()).unwrap()
    }

    fn symbol<'a>(obj: &'a mut Object, name: &str) -> &'a mut bpfld::model::object::Symbol {
        obj.symbols.iter_mut().find(|s| s.name == name).unwrap()
    }

    #[test]
    fn the_tagged_global_function_of_text_is_the_callback() {
        let obj = fixture("run_exception.o");
        assert_eq!(
            callback_of(&obj, "exc_throw_on_ee"),
            Ok(Some("exc_callback".to_string()))
        );
        // Only the tagged program has one; untagged objects have none.
        assert_eq!(callback_of(&obj, "exc_callback"), Ok(None));
        assert_eq!(callback_of(&fixture("calls.o"), "xdp_calls"), Ok(None));
    }

    #[test]
    fn static_hidden_or_missing_callbacks_are_refused_as_libbpf_does() {
        let mut obj = fixture("run_exception.o");
        symbol(&mut obj, "exc_callback").binding = Binding::Local;
        let e = callback_of(&obj, "exc_throw_on_ee").unwrap_err();
        assert!(
            e.contains("'exc_callback' must be a global function"),
            "{e}"
        );

        let mut obj = fixture("run_exception.o");
        symbol(&mut obj, "exc_callback").visibility = Visibility::Hidden;
        let e = callback_of(&obj, "exc_throw_on_ee").unwrap_err();
        assert!(e.contains("not static or hidden"), "{e}");

        let mut obj = fixture("run_exception.o");
        symbol(&mut obj, "exc_callback").name = "renamed".to_string();
        let e = callback_of(&obj, "exc_throw_on_ee").unwrap_err();
        assert!(
            e.contains("cannot find exception callback 'exc_callback'"),
            "{e}"
        );
    }
}
