//! The writing half of the library's front door: [`Object::to_bytes`],
//! [`Object::kernel_btf`] and [`Btf::to_bytes`] (see `read/api.rs`).

use crate::error::Result;
use crate::model::btf::Btf;
use crate::model::object::Object;

impl Object {
    /// The object as ELF bytes, ready for a loader (aya's
    /// `Ebpf::load`, libbpf) or another link.
    ///
    /// ```
    /// use bpfld::model::Object;
    ///
    /// let obj = Object::parse(include_bytes!("../../../../fixtures/xdp_pass.o"))?;
    /// let again = Object::parse(&obj.to_bytes()?)?;
    /// assert_eq!(again.symbols.len(), obj.symbols.len());
    /// # Ok::<(), bpfld::Error>(())
    /// ```
    pub fn to_bytes(&self) -> crate::Result<Vec<u8>> {
        crate::write::elf::to_bytes(self)
    }

    /// The object's `.BTF` as libbpf hands it to the kernel
    /// (`BPF_BTF_LOAD`), with the list of rewrites made: only those libbpf
    /// itself makes at load time on a current kernel, because the kernel
    /// refuses extern declarations and the loader resolves them. `.ksyms`
    /// externs become allocated globals (kfuncs global FUNCs with named
    /// parameters), `.kconfig` externs are laid out as libbpf lays out its
    /// `.kconfig` map, and the output is little-endian. Nothing else
    /// changes. An error names the extern libbpf would refuse, or says
    /// the object has no `.BTF`.
    ///
    /// ```
    /// use bpfld::Object;
    ///
    /// let obj = Object::parse(include_bytes!("../../../../fixtures/xdp_pass.o"))?;
    /// let btf = obj.kernel_btf()?;
    /// assert!(btf.types > 0 && btf.rewrites.is_empty());
    /// # Ok::<(), bpfld::Error>(())
    /// ```
    pub fn kernel_btf(&self) -> crate::Result<crate::model::btf::KernelBtf> {
        crate::write::kernel_btf::kernel_btf_of(self)
    }
}

impl Btf {
    /// The BTF as bytes (header, types, strings), after checking that
    /// every type is encodable and that the result is valid BTF.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        crate::write::btf::try_to_bytes(self)
    }
}
