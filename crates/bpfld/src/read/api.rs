//! The reading half of the library's front door: [`Object::parse`],
//! [`Object::read_file`], [`Object::parse_named`] and [`Btf::parse`]. They
//! live here, not in the model, so that the model depends on nothing above
//! it.

use crate::error::Result;
use crate::model::btf::Btf;
use crate::model::object::Object;

impl Object {
    /// Reads a relocatable BPF ELF object (as clang or gcc write it, or as
    /// bpfld links it) from its bytes.
    ///
    /// ```
    /// use bpfld::model::Object;
    ///
    /// let obj = Object::parse(include_bytes!("../../../../fixtures/xdp_pass.o"))?;
    /// assert!(obj.section_by_name("xdp").is_some_and(|s| s.is_program()));
    /// assert!(obj.btf.is_some());
    /// # Ok::<(), bpfld::Error>(())
    /// ```
    pub fn parse(bytes: &[u8]) -> crate::Result<Object> {
        crate::read::elf::parse(bytes)
    }

    /// Reads the object in file `path` (errors name the file).
    pub fn read_file(path: impl AsRef<std::path::Path>) -> crate::Result<Object> {
        crate::read::elf::read_file(path.as_ref())
    }

    /// [`Object::parse`] of bytes that came from somewhere called `name`
    /// (a file, an image's layer): errors and the warnings about compiler
    /// quirks (see [`crate::warnings_given`]) name it.
    ///
    /// ```
    /// use bpfld::Object;
    ///
    /// let err = Object::parse_named("empty.o", b"").unwrap_err();
    /// assert!(err.to_string().starts_with("empty.o: "), "{err}");
    /// ```
    pub fn parse_named(name: &str, bytes: &[u8]) -> crate::Result<Object> {
        crate::read::workarounds::reading(name, || crate::read::elf::parse(bytes))
            .map_err(|e| e.in_file(name))
    }
}

impl Btf {
    /// Reads raw BTF (a `.BTF` section's bytes, a `.btf` file, the
    /// kernel's `/sys/kernel/btf/vmlinux`), taking the byte order from
    /// its magic; references, names and reference cycles are checked.
    ///
    /// ```
    /// use bpfld::{Btf, Object};
    ///
    /// let obj = Object::parse(include_bytes!("../../../../fixtures/xdp_pass.o"))?;
    /// let btf = obj.btf.expect("clang writes BTF");
    /// let again = Btf::parse(&btf.to_bytes()?)?;
    /// assert_eq!(again.type_count(), btf.type_count());
    /// # Ok::<(), bpfld::Error>(())
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<Btf> {
        crate::read::btf::parse(bytes)
    }
}
