//! The fuzz targets' bodies, shared with the regression test.
//!
//! Each function takes the raw fuzz input and drives one library entry
//! point the way bpfld's commands do. Errors are fine; panics (including
//! the round-trip assertions below), hangs and runaway allocations are the
//! bugs. `crates/bpfld/src/tests/fuzz_regressions.rs` includes this file with
//! `#[path]`, so a committed crash input replays through exactly this code
//! in a normal `cargo test`. The targets drive layers that are not bpfld's
//! API (`read`, `write`, `link::inline`): fuzz/Cargo.toml turns on the
//! library's `internals` feature, and inside the crate they are in reach.

use std::sync::atomic::{AtomicBool, Ordering};

use bpfld::model::btf::Btf;
use bpfld::model::insn::Insn;
use bpfld::model::Endian;

/// Set by the fuzz targets (never by the regression test): step around
/// the bugs already found and committed under fuzz/regressions, which
/// would otherwise stop every campaign at the same place. Each mask names
/// its regression file; delete the mask once the bug is fixed.
pub static MASK_KNOWN_BUGS: AtomicBool = AtomicBool::new(false);

#[allow(dead_code)] // no open finding needs a mask right now
fn masking() -> bool {
    MASK_KNOWN_BUGS.load(Ordering::Relaxed)
}

/// ELF reader, then every listing an `inspect` or `disasm` command prints.
/// `disasm` reads files with its own partial reader
/// (`show::disasm::Listing::from_bytes`): it must reject only what the
/// full reader rejects, with the same message, and list what it accepts.
pub fn elf(data: &[u8]) {
    use bpfld::show::disasm::Listing;
    let partial = Listing::from_bytes(data);
    let full = bpfld::read::elf::parse(data);
    let obj = match (partial, full) {
        (Ok(partial), Ok(obj)) => {
            let listings = |l: &Listing<'_>| {
                let (mut text, mut json) = (Vec::new(), Vec::new());
                l.write_text(&mut text).expect("writing to a Vec");
                l.write_json(&mut json).expect("writing to a Vec");
                (text, json)
            };
            let (text, json) = listings(&partial);
            let (want_text, want_json) = listings(&Listing::from_object(&obj));
            // What `disasm FILE` reads through: a cache of ranges read.
            let cached =
                bpfld::show::disasm::with_reader(std::io::Cursor::new(data), |l| l == &partial);
            assert!(
                cached.expect("the cached reader accepts what the slice reader accepts"),
                "the cached reader reads differently"
            );
            assert!(
                text == want_text,
                "disasm of the bytes differs from disasm of the object"
            );
            assert!(
                json == want_json,
                "disasm --json of the bytes differs from the object's"
            );
            obj
        }
        (Err(p), Err(f)) => {
            assert_eq!(
                p.to_string(),
                f.to_string(),
                "the ELF readers fail differently"
            );
            let cached = bpfld::show::disasm::with_reader(std::io::Cursor::new(data), |_| ());
            assert_eq!(
                cached.map_err(|e| e.to_string()),
                Err(p.to_string()),
                "the cached reader fails differently"
            );
            return;
        }
        (Err(p), Ok(_)) => panic!("disasm's reader rejects what the full reader reads: {p}"),
        // Damage in what disasm does not read (BTF without CO-RE records).
        (Ok(partial), Err(_)) => {
            let cached =
                bpfld::show::disasm::with_reader(std::io::Cursor::new(data), |l| l == &partial);
            assert!(
                cached.expect("the cached reader accepts what the slice reader accepts"),
                "the cached reader reads differently"
            );
            let mut sink = std::io::sink();
            partial.write_text(&mut sink).expect("writing to a sink");
            partial.write_json(&mut sink).expect("writing to a sink");
            return;
        }
    };
    if let Ok(summary) = bpfld::show::inspect::summarize(&obj) {
        let _ = bpfld::show::inspect::render_text("fuzz.o", &summary);
    }
    let _ = bpfld::model::map_def::map_defs(&obj);
    let _ = bpfld::show::maps::extern_classes(&obj);
    if let Some(btf) = &obj.btf {
        btf_views(btf);
    }
    // What the reader accepted, the writer writes, and the result reads
    // back.
    if let Ok(bytes) = bpfld::write::elf::to_bytes(&obj) {
        if let Err(e) = bpfld::read::elf::parse(&bytes) {
            panic!("the ELF writer's output does not read back: {e}");
        }
    }
}

/// Instruction decoder in both byte orders, the slot listing and the
/// instruction helpers; bytes and slots must survive encode/decode.
pub fn insn(data: &[u8]) {
    for endian in [Endian::Little, Endian::Big] {
        let decoded = bpfld::read::insn::decode(data, endian);
        // Every byte pattern decodes; only a length that is not a multiple
        // of 8 is an error.
        assert_eq!(decoded.is_ok(), data.len() % 8 == 0, "{decoded:?}");
        let Ok(insns) = decoded else {
            continue;
        };
        let bytes = bpfld::write::insn::encode(&insns, endian);
        assert_eq!(bytes, data, "encode(decode(bytes)) != bytes ({endian:?})");
        let again = bpfld::read::insn::decode(&bytes, endian).expect("re-decode");
        assert_eq!(again, insns, "decode(encode(insns)) != insns ({endian:?})");

        let _ = bpfld::show::disasm::listing(&insns);
        let _ = bpfld::model::insn::check_ld_imm64(&insns);
        let _ = bpfld::model::insn::second_halves(&insns);
        for (i, slot) in insns.iter().enumerate() {
            let at = bpfld::model::insn::InsnIndex(i as u32);
            let _ = slot.jump_target(at);
            let _ = slot.call_target(at);
            let _ = bpfld::model::insn::get_imm64(&insns, at);
        }
        for l in bpfld::model::insn::logical(&insns) {
            let _ = l.imm64();
        }
        // A jump retargeted to where it already points keeps its fields.
        for (i, slot) in insns.iter().enumerate() {
            let at = bpfld::model::insn::InsnIndex(i as u32);
            if let Some(t) = slot.jump_target(at) {
                if let Ok(t) = u32::try_from(t) {
                    let mut copy: Insn = *slot;
                    if copy
                        .set_jump_target(at, bpfld::model::insn::InsnIndex(t))
                        .is_ok()
                    {
                        assert_eq!(copy, *slot, "set_jump_target to own target");
                    }
                }
            }
        }
    }
}

/// BTF reader (raw BTF, as in /sys/kernel/btf/vmlinux or a `.BTF`
/// section), writer round trip, every listing and type walk, and
/// deduplication.
pub fn btf(data: &[u8]) {
    let Ok(btf) = bpfld::read::btf::parse(data) else {
        return;
    };
    let bytes = bpfld::write::btf::to_bytes(&btf);
    match bpfld::read::btf::parse(&bytes) {
        Ok(again) => assert!(again == btf, "parse(to_bytes(btf)) != btf"),
        Err(e) => panic!("the BTF writer's output does not read back: {e}"),
    }
    btf_views(&btf);
    // Deduplication (`bpfld btf dedup`): the result is valid BTF and every
    // old id maps into it.
    if let Ok(d) = bpfld::dedup::dedup(&btf) {
        let bytes = bpfld::write::btf::to_bytes(&d.btf);
        if let Err(e) = bpfld::read::btf::parse(&bytes) {
            panic!("deduplicated BTF does not read back: {e}");
        }
        for (old, new) in d.map.iter().enumerate() {
            assert!(
                d.btf.get(*new).is_some(),
                "dedup maps type {old} to {}, beyond the last type {}",
                new.0,
                d.btf.last_id().0
            );
        }
    }
}

/// The borrowed BTF view that `btf dump` lists from, against the model's
/// reader: the same verdict with the same message, and the same listings
/// (text and JSON). An object file goes through both ELF readers too:
/// whatever the full reader accepts, the header-only one accepts, with the
/// same `.BTF` listing.
pub fn btf_view(data: &[u8]) {
    use bpfld::read::btf_view::BtfView;
    use bpfld::show::btf_dump::{dump_json, dump_json_to, dump_raw, dump_raw_to};
    let same_listings = |view: &BtfView<'_>, model: &Btf| {
        let mut text = Vec::new();
        dump_raw_to(view, &mut text).expect("writing to a Vec");
        assert!(
            text == dump_raw(model).into_bytes(),
            "the view's dump differs from the model's"
        );
        let mut json = Vec::new();
        dump_json_to(view, &mut json).expect("writing to a Vec");
        let want = serde_json::to_vec_pretty(&dump_json(model)).expect("JSON");
        assert!(
            json == want,
            "the view's JSON dump differs from the model's"
        );
    };
    if !bpfld::read::elf::is_elf(data) {
        // What `btf dump FILE` reads a raw file through.
        let cached = bpfld::read::btf_view::with_reader(std::io::Cursor::new(data), |v| {
            let mut text = Vec::new();
            dump_raw_to(v, &mut text).expect("writing to a Vec");
            text
        });
        let direct = BtfView::parse(data).map(|v| {
            let mut text = Vec::new();
            dump_raw_to(&v, &mut text).expect("writing to a Vec");
            text
        });
        assert!(
            cached.map_err(|e| e.to_string()) == direct.map_err(|e| e.to_string()),
            "btf dump of the reader differs from that of the bytes"
        );
    }
    match (BtfView::parse(data), bpfld::read::btf::parse(data)) {
        (Ok(view), Ok(model)) => same_listings(&view, &model),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "different errors"),
        (Ok(_), Err(e)) => panic!("the view accepts what the reader rejects: {e}"),
        (Err(e), Ok(_)) => panic!("the view rejects what the reader accepts: {e}"),
    }
    if bpfld::read::elf::is_elf(data) {
        let Ok(obj) = bpfld::read::elf::parse(data) else {
            return;
        };
        let elf = match bpfld::read::elf_view::ElfView::parse(data) {
            Ok(elf) => elf,
            Err(e) => panic!("the header-only ELF reader rejects a readable object: {e}"),
        };
        match (elf.btf_index(), &obj.btf) {
            (Some(index), Some(model)) => {
                let bytes = elf.section_data(index).expect("a checked section reads");
                let view = BtfView::parse_in_object(bytes, elf.endian())
                    .expect("the view accepts the reader's .BTF");
                same_listings(&view, model);
                // And through the cached reader `btf dump FILE` uses.
                let text = bpfld::read::btf_view::with_reader(std::io::Cursor::new(data), |v| {
                    let mut text = Vec::new();
                    dump_raw_to(v, &mut text).expect("writing to a Vec");
                    text
                })
                .expect("the cached reader accepts the object");
                assert!(
                    text == dump_raw(model).into_bytes(),
                    "btf dump through the cached reader differs"
                );
            }
            (None, None) => {}
            _ => panic!("the ELF readers disagree on whether there is a .BTF"),
        }
    }
}

/// Every listing and type walk over a parsed BTF: dumps, C declarations,
/// sizes, members, signatures.
fn btf_views(btf: &Btf) {
    let _ = bpfld::show::btf_dump::dump_raw(btf);
    let _ = bpfld::show::btf_dump::dump_json(btf);
    let _ = bpfld::show::maps::type_count(btf);
    for (id, _) in btf.iter() {
        let _ = bpfld::model::btf::c_type::decl(btf, id, "x");
        let _ = bpfld::model::btf::c_type::type_name(btf, id);
        let _ = bpfld::model::btf::c_type::prototype(btf, id, "f");
        let _ = bpfld::model::map_def::parse_map_def(btf, id, 0);
        let _ = btf.describe(id);
        let _ = btf.resolve(id);
        let _ = btf.skip_modifiers(id);
        let _ = btf.size_of(id);
        let _ = btf.members(id);
        let _ = btf.signature(id);
        let _ = btf.datasec_vars(id);
    }
}

/// The `.BTF` of `fixtures/core.o` (func_info, line_info and CO-RE
/// relocations): a fixed, valid type graph for the `.BTF.ext` reader.
const BTF_EXT_BASE_OBJECT: &[u8] = include_bytes!("../../fixtures/core.o");

/// `.BTF.ext` reader against a fixed valid BTF.
pub fn btf_ext(data: &[u8]) {
    let base = btf_ext_base();
    let Ok(ext) = bpfld::read::btf_ext::parse(data, base) else {
        return;
    };
    let bytes = bpfld::write::btf_ext::to_bytes(&ext);
    match bpfld::read::btf_ext::parse(&bytes, base) {
        Ok(again) => assert!(again == ext, "parse(to_bytes(ext)) != ext"),
        Err(e) => panic!("the BTF.ext writer's output does not read back: {e}"),
    }
}

/// The BTF that `btf_ext` parses against, parsed once.
pub fn btf_ext_base() -> &'static bpfld::model::btf::Btf {
    static BASE: std::sync::OnceLock<bpfld::model::btf::Btf> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let obj = bpfld::read::elf::parse(BTF_EXT_BASE_OBJECT).expect("fixtures/core.o parses");
        obj.btf.expect("fixtures/core.o has .BTF")
    })
}

/// What separates the two objects in a `link` input (also in
/// make_seeds.py). Without it, the input is split in the middle.
pub const LINK_SEPARATOR: &[u8] = b"\n--bpfld-fuzz-next-object--\n";

/// Two objects at once: read both, link them (as `bpfld link`, and as a
/// relocatable partial link), write the result, read it back, and list it.
pub fn link(data: &[u8]) {
    let (a, b) = match data
        .windows(LINK_SEPARATOR.len())
        .position(|w| w == LINK_SEPARATOR)
    {
        Some(at) => (&data[..at], &data[at + LINK_SEPARATOR.len()..]),
        None => data.split_at(data.len() / 2),
    };
    let (Ok(a), Ok(b)) = (bpfld::read::elf::parse(a), bpfld::read::elf::parse(b)) else {
        return;
    };
    let inputs = [
        bpfld::link::Input {
            name: "a.o".into(),
            object: a,
        },
        bpfld::link::Input {
            name: "b.o".into(),
            object: b,
        },
    ];
    for relocatable in [false, true] {
        let opts = bpfld::link::LinkOptions {
            relocatable,
            ..Default::default()
        };
        let Ok(linked) = bpfld::link::link(&inputs, &opts) else {
            continue;
        };
        let bytes = match bpfld::write::elf::to_bytes(&linked) {
            Ok(bytes) => bytes,
            Err(e) => panic!("a linked object does not write: {e}"),
        };
        if let Err(e) = bpfld::read::elf::parse(&bytes) {
            panic!("a linked object does not read back: {e}");
        }
        // And everything `elf` does with an object, on the linked one.
        elf(&bytes);
        // Inlining every function into its callers must leave an object
        // that writes and reads back, whatever the inliner decides.
        let mut inlined = linked;
        let names: Vec<String> = inlined
            .symbols
            .iter()
            .filter(|s| s.kind == bpfld::model::object::SymbolKind::Func)
            .map(|s| s.name.clone())
            .collect();
        bpfld::link::inline::inline_functions(&mut inlined, &names);
        match bpfld::write::elf::to_bytes(&inlined) {
            Ok(bytes) => {
                if let Err(e) = bpfld::read::elf::parse(&bytes) {
                    panic!("an inlined object does not read back: {e}");
                }
            }
            Err(e) => panic!("an inlined object does not write: {e}"),
        }
    }
}

/// Packet capture reader (pcap and pcapng, `bpfld run --pcap`); what it
/// reads, the pcap writer writes and the result reads back with the same
/// link type and packet bytes.
pub fn pcap(data: &[u8]) {
    let Ok(cap) = bpfld::pcap::parse(data) else {
        return;
    };
    for p in &cap.packets {
        assert!(p.data.len() <= bpfld::pcap::MAX_PACKET);
    }
    let written = bpfld::pcap::write_pcap(cap.linktype, &cap.packets);
    let back = match bpfld::pcap::parse(&written) {
        Ok(b) => b,
        Err(e) => panic!("the pcap writer's output does not read back: {e}"),
    };
    assert_eq!(back.linktype, cap.linktype);
    assert!(back
        .packets
        .iter()
        .map(|p| &p.data)
        .eq(cap.packets.iter().map(|p| &p.data)));
}

/// bpfman image reader (an OCI archive in memory): never a panic, bounded
/// memory; an image it accepts builds again and reads back the same.
pub fn image(data: &[u8]) {
    let limits = bpfld::image::Limits {
        archive: 16 << 20,
        json: 1 << 20,
        object: 8 << 20,
    };
    // Blob digests stop most mutations at the archive's surface, so the
    // input is also tried as a layer and as a config on their own.
    let _ = bpfld::image::read_layer(data, &limits);
    let _ = bpfld::image::read_config_labels(data);
    let Ok(img) = bpfld::image::read_archive(data, None, &limits) else {
        return;
    };
    let m = img.for_host();
    if let Ok(obj) = bpfld::read::elf::parse(&m.object) {
        let _ = bpfld::image::Labels::of(&obj);
    }
    let input = bpfld::image::BuildInput {
        file_name: &m.file_name,
        bytes: &m.object,
    };
    if let Ok(built) = bpfld::image::build(&[input], None) {
        match bpfld::image::read_archive(&built.archive, None, &limits) {
            Ok(again) => assert_eq!(again.manifests[0].object, m.object, "object changed"),
            Err(e) => panic!("a built image does not read back: {e}"),
        }
    }
}
