//! The target BTF: the running kernel's (/sys/kernel/btf/vmlinux), and its
//! modules' (/sys/kernel/btf/MODULE, split BTF on top of vmlinux's), read
//! only when needed; and the search of candidate types by essential name.
//! As libbpf does, modules are searched only for a type vmlinux has no
//! candidate for.

use bpfld::model::btf::{Btf, TypeId};

use super::compat::{essential, kinds_compat};
use super::spec::{name, ty};
use super::R;

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";
const BTF_DIR: &str = "/sys/kernel/btf";

/// One target BTF: vmlinux, or a module's split BTF joined to vmlinux's
/// (ids and string offsets of split BTF continue those of its base, so
/// the two read as one).
pub(crate) struct TargetBtf {
    pub(crate) name: String,
    pub(crate) btf: Btf,
    /// The first id of this BTF's own types (1 for vmlinux).
    first: u32,
}

/// A candidate type: index of its BTF in [`Targets`], and its id there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cand {
    pub(crate) btf: usize,
    pub(crate) id: TypeId,
}

/// The BTFs relocations are resolved against.
pub(crate) struct Targets {
    /// Read from the running kernel (else given whole).
    running: bool,
    /// vmlinux's raw BTF, the base of the modules' split BTF.
    vmlinux_raw: Option<Vec<u8>>,
    /// `btfs[0]` is vmlinux once read; modules follow once read.
    btfs: Vec<TargetBtf>,
    modules_read: bool,
}

impl Targets {
    /// The running kernel's BTF, read at the first candidate search.
    pub(crate) fn running_kernel() -> Targets {
        Targets {
            running: true,
            vmlinux_raw: None,
            btfs: Vec::new(),
            modules_read: false,
        }
    }

    /// Given BTFs: the first is vmlinux, the others (whole BTFs holding
    /// vmlinux's types first) modules whose own types start at vmlinux's
    /// type count.
    #[cfg(test)]
    pub(crate) fn fixed(vmlinux: Btf, modules: Vec<(String, Btf)>) -> Targets {
        let first = vmlinux.type_count() as u32;
        let mut btfs = vec![TargetBtf {
            name: "vmlinux".into(),
            btf: vmlinux,
            first: 1,
        }];
        btfs.extend(
            modules
                .into_iter()
                .map(|(name, btf)| TargetBtf { name, btf, first }),
        );
        Targets {
            running: false,
            vmlinux_raw: None,
            btfs,
            modules_read: true,
        }
    }

    pub(crate) fn get(&self, i: usize) -> &TargetBtf {
        &self.btfs[i]
    }

    fn vmlinux(&mut self) -> R<()> {
        if !self.btfs.is_empty() {
            return Ok(());
        }
        if !self.running {
            return Err("no vmlinux BTF given".into());
        }
        let raw = std::fs::read(VMLINUX).map_err(|e| {
            format!("the object has CO-RE relocations and the kernel's BTF ({VMLINUX}) cannot be read: {e}")
        })?;
        let btf = Btf::parse(&raw).map_err(|e| format!("{VMLINUX}: {e}"))?;
        self.vmlinux_raw = Some(raw);
        self.btfs.push(TargetBtf {
            name: "vmlinux".into(),
            btf,
            first: 1,
        });
        Ok(())
    }

    fn modules(&mut self) -> R<()> {
        if self.modules_read {
            return Ok(());
        }
        self.modules_read = true;
        let Some(base) = self.vmlinux_raw.as_deref() else {
            return Ok(());
        };
        let Ok(dir) = std::fs::read_dir(BTF_DIR) else {
            return Ok(());
        };
        let mut names: Vec<String> = dir
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n != "vmlinux")
            .collect();
        names.sort();
        let first = self.btfs[0].btf.type_count() as u32;
        let mut found = Vec::new();
        for n in names {
            let path = format!("{BTF_DIR}/{n}");
            let split = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
            let joined = join_split(base, &split).map_err(|e| format!("{path}: {e}"))?;
            let btf = Btf::parse(&joined).map_err(|e| format!("{path}: {e}"))?;
            found.push(TargetBtf {
                name: n,
                btf,
                first,
            });
        }
        self.btfs.extend(found);
        Ok(())
    }

    /// Types of the target with the essential name and kind of local type
    /// `id`: vmlinux's, else the modules'.
    pub(crate) fn candidates(&mut self, local: &Btf, id: TypeId) -> R<Vec<Cand>> {
        let lt = ty(local, id)?;
        let lname = name(local, lt.name_off)?;
        if lname.is_empty() {
            return Err("relocations of anonymous types are not supported".into());
        }
        let want = essential(lname);
        self.vmlinux()?;
        let mut out = Vec::new();
        let search = |i: usize, b: &TargetBtf, out: &mut Vec<Cand>| {
            for (tid, t) in b.btf.iter().skip(b.first as usize - 1) {
                if !kinds_compat(t, lt) {
                    continue;
                }
                match b.btf.name(t.name_off) {
                    Ok(n) if !n.is_empty() && essential(n) == want => {
                        out.push(Cand { btf: i, id: tid })
                    }
                    _ => {}
                }
            }
        };
        search(0, &self.btfs[0], &mut out);
        if !out.is_empty() {
            return Ok(out);
        }
        self.modules()?;
        for (i, b) in self.btfs.iter().enumerate().skip(1) {
            search(i, b, &mut out);
        }
        Ok(out)
    }
}

/// Raw BTF of `split` (a module's) joined to its `base` (vmlinux's):
/// one header, base types then split types, base strings then split
/// strings.
fn join_split(base: &[u8], split: &[u8]) -> R<Vec<u8>> {
    struct Hdr {
        little: bool,
        types: (usize, usize),
        strs: (usize, usize),
    }
    fn header(b: &[u8]) -> R<Hdr> {
        let little = match b.get(..2) {
            Some([0x9f, 0xeb]) => true,
            Some([0xeb, 0x9f]) => false,
            _ => return Err("not BTF (bad magic)".into()),
        };
        let word = |at: usize| -> R<usize> {
            let w: [u8; 4] = b
                .get(at..at + 4)
                .and_then(|s| s.try_into().ok())
                .ok_or("truncated BTF header")?;
            Ok(if little {
                u32::from_le_bytes(w)
            } else {
                u32::from_be_bytes(w)
            } as usize)
        };
        let hdr_len = word(4)?;
        let h = Hdr {
            little,
            types: (hdr_len + word(8)?, word(12)?),
            strs: (hdr_len + word(16)?, word(20)?),
        };
        if h.types.0 + h.types.1 > b.len() || h.strs.0 + h.strs.1 > b.len() {
            return Err("BTF sections beyond the end of the data".into());
        }
        Ok(h)
    }
    let (bh, sh) = (header(base)?, header(split)?);
    if bh.little != sh.little {
        return Err("byte order differs from vmlinux's".into());
    }
    let part = |b: &'_ [u8], (off, len): (usize, usize)| b[off..off + len].to_vec();
    let types = [part(base, bh.types), part(split, sh.types)].concat();
    let strs = [part(base, bh.strs), part(split, sh.strs)].concat();
    let put = |v: usize| {
        let v = v as u32;
        if bh.little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        }
    };
    let mut out = base[..8].to_vec();
    out[4..8].copy_from_slice(&put(24));
    out.extend_from_slice(&put(0));
    out.extend_from_slice(&put(types.len()));
    out.extend_from_slice(&put(types.len()));
    out.extend_from_slice(&put(strs.len()));
    out.extend(types);
    out.extend(strs);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::join_split;
    use bpfld::model::btf::{Btf, BtfType, Member, TypeData, TypeId};

    /// A module's split BTF (its types and strings only, numbered after
    /// vmlinux's) joined to vmlinux's reads as the whole.
    #[test]
    fn split_btf_joins_its_base() {
        let mut base = Btf::default();
        let int = base.add_string("int");
        base.add_type(BtfType::new(
            int,
            false,
            TypeData::Int {
                size: 4,
                data: 1 << 24 | 32,
            },
        ));
        let mut whole = base.clone();
        let (s, v) = (whole.add_string("mod_only"), whole.add_string("v"));
        let members = vec![Member {
            name_off: v,
            type_id: TypeId(1),
            offset: 0,
        }];
        whole.add_type(BtfType::new(
            s,
            false,
            TypeData::Struct { size: 4, members },
        ));
        let (base_raw, whole_raw) = (base.to_bytes().unwrap(), whole.to_bytes().unwrap());
        let word = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        // Split BTF: the types and strings beyond the base's.
        let (bt, bs) = (word(&base_raw, 12) as usize, word(&base_raw, 20) as usize);
        let (wt, ws) = (word(&whole_raw, 12) as usize, word(&whole_raw, 20) as usize);
        let types = &whole_raw[24 + bt..24 + wt];
        let strs = &whole_raw[24 + wt + bs..24 + wt + ws];
        let mut split = whole_raw[..8].to_vec();
        for v in [0, types.len(), types.len(), strs.len()] {
            split.extend_from_slice(&(v as u32).to_le_bytes());
        }
        split.extend_from_slice(types);
        split.extend_from_slice(strs);
        let joined = join_split(&base_raw, &split).unwrap();
        assert_eq!(
            Btf::parse(&joined).unwrap(),
            Btf::parse(&whole_raw).unwrap()
        );
        assert!(join_split(&base_raw, &split[..10]).is_err());
        assert!(join_split(&base_raw, b"not btf at all here, no").is_err());
    }
}
