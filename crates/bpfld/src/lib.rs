//! bpfld: read, link, compose and show eBPF object files.
//!
//! The modules follow the pipeline: [`read`] turns bytes into the [`model`],
//! [`write`] turns the model back into bytes, and [`show`] renders listings
//! (disassembly, BTF dumps, object summaries). Nothing here talks to the
//! kernel.

#![forbid(unsafe_code)]

pub mod compose;
pub mod dedup;
pub mod error;
pub mod image;
pub mod link;
pub mod model;
pub mod pcap;
pub mod read;
pub mod show;
pub mod write;

mod util;

pub use error::{Error, Result};
