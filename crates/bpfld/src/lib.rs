//! bpfld reads, links, composes and shows eBPF object files: the
//! relocatable ELF objects `clang -target bpf` (or `bpf-gcc`) writes and
//! loaders such as aya or libbpf load. Everything happens on bytes in
//! memory or files; nothing here talks to the kernel (the `bpfld-kernel`
//! crate loads and runs what this crate makes).
//!
//! # The pipeline
//!
//! - **Read**: [`Object::parse`] turns ELF bytes into the [`model`]:
//!   sections, decoded instructions, symbols, relocations, [`Btf`] and
//!   BTF.ext records. [`Object::to_bytes`] writes the model back.
//! - **Link** ([`link`](mod@link)): several objects into one, with libbpf's
//!   meaning (`bpftool gen object`), plus `--resolve`: an extern
//!   function filled by a function of a *component*, whose maps and
//!   globals stay its own. [`link::link_bytes`] is the in-memory form:
//!   bytes in, bytes out, options in a [`LinkOptions`].
//! - **Compose** ([`compose`](mod@compose)): several XDP programs into one program
//!   that runs them in priority order with libxdp's chain-call semantics
//!   ([`ChainActions`] of [`XdpAction`]s), without freplace.
//! - **Dedup** ([`dedup`](mod@dedup)): BTF deduplication with libbpf's rules.
//! - **Show** ([`show`]): the listings as values that print (`Display`)
//!   as the command line prints them and serialize (`serde::Serialize`)
//!   as its `--json` does: disassembly ([`show::disasm::Listing`]), BTF
//!   dumps ([`show::btf_dump::BtfDump`]) and object summaries
//!   ([`show::inspect::summarize`]).
//!
//! [`image`] (OCI images of objects, bpfman resources) and [`pcap`]
//! (packet captures for test runs) serve the `bpfld` command line.
//! [`write_atomic`] writes an output so that a failure leaves nothing
//! half-written, and [`warnings_given`] lists the compiler quirks reading
//! accepted with a warning. Errors are one [`Error`] type carrying its
//! context (file, section, symbol, instruction) outermost first.
//!
//! # Example
//!
//! Link two objects in memory, compose the result's XDP program with
//! another one, and look at what came out:
//!
//! ```
//! use bpfld::compose::{compose, ChainActions, ComponentSpec, ComposeOptions, XdpAction};
//! use bpfld::link::{link_bytes, LinkOptions};
//! use bpfld::Object;
//!
//! // link_a.o calls functions and uses a variable that link_b.o defines.
//! let a = include_bytes!("../../../fixtures/link_a.o");
//! let b = include_bytes!("../../../fixtures/link_b.o");
//! let linked = link_bytes(&[("link_a.o", a), ("link_b.o", b)], &[], &LinkOptions::default())?;
//! let obj = Object::parse(&linked)?;
//! assert!(obj.symbols.iter().any(|s| s.name == "link_shared_add" && !s.is_extern()));
//!
//! // Its XDP program first, then xdp_pass.o's, on XDP_PASS or XDP_TX.
//! let composed = compose(
//!     &[
//!         ComponentSpec::new("linked.o", obj)
//!             .with_priority(10)
//!             .with_chain(ChainActions::of([XdpAction::Pass, XdpAction::Tx])),
//!         ComponentSpec::from_bytes("xdp_pass.o", include_bytes!("../../../fixtures/xdp_pass.o"))?,
//!     ],
//!     &ComposeOptions::default(),
//! )?;
//! let order: Vec<String> = composed.order.iter().map(|p| p.to_string()).collect();
//! assert_eq!(order, [
//!     "comp0: linked.o:link_main priority 10 chain XDP_PASS,XDP_TX",
//!     "comp1: xdp_pass.o:xdp_pass priority 50 chain XDP_PASS",
//! ]);
//!
//! // The listings: llvm-objdump's disassembly, bpftool's BTF dump.
//! let listing = bpfld::show::disasm::Listing::from_object(&composed.object).to_string();
//! assert!(listing.contains("<bpfld_xdp>:"));
//! let bytes = composed.object.to_bytes()?; // ready for aya's Ebpf::load
//! # let _ = bytes;
//! # Ok::<(), bpfld::Error>(())
//! ```

// No unsafe code; the tests' counting allocator (src/tests) is the one
// exception, allowed where it is.
#![cfg_attr(not(test), forbid(unsafe_code))]
#![cfg_attr(test, deny(unsafe_code))]
#![deny(missing_docs)]

pub mod compose;
pub mod dedup;
pub mod error;
pub mod image;
pub mod link;
pub mod model;
pub mod pcap;
pub mod show;

// The byte-level readers and writers behind `Object::parse`,
// `Object::to_bytes`, `Btf::parse` and `Btf::to_bytes`, and the inliner
// (`link::inline`), are no part of the API. The cargo feature `internals`
// (off by default, no stability promise) makes them public for the fuzz
// targets (`fuzz/`) and the kernel-side inliner tests, which exercise each
// layer alone; the crate's own tests reach them from `src/tests/`.
#[cfg(feature = "internals")]
#[allow(missing_docs)]
pub mod read;
#[cfg(not(feature = "internals"))]
pub(crate) mod read;
#[cfg(feature = "internals")]
#[allow(missing_docs)]
pub mod write;
#[cfg(not(feature = "internals"))]
pub(crate) mod write;

mod util;

#[cfg(test)]
mod tests;
// The tests moved in from `tests/` (and the fuzz harness they replay)
// name items as a user of the crate would: `bpfld::...`.
#[cfg(test)]
extern crate self as bpfld;

pub use compose::{compose, ChainActions, ComponentSpec, ComposeOptions, XdpAction};
pub(crate) use error::bail;
pub use error::{Error, Result};
pub use link::{link_bytes, LinkOptions};
pub use model::{Btf, Object};
pub use read::workarounds::warnings_given;
pub use write::elf::write_atomic;
