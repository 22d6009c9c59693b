//! Attaching programs to their hooks in the kernel.

pub mod xdp;
