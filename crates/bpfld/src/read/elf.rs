//! The ELF reader: a relocatable BPF object into an [`Object`].
