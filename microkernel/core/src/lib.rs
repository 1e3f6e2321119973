//! The kernel's pure logic: descriptor encoding, device-tree reading, initrd and ELF parsing,
//! physical memory accounting, capabilities and their derivation tree, retype arithmetic,
//! and invocation decoding. No `unsafe`, no allocation, no panics on bad input; tested on
//! the host with `cargo test -p kernel-core`.
//!
//! Every parser here returns a `Result` whose error implements `Display`, so the kernel can
//! print `FATAL: <what>: <error>` and stop.

#![no_std]
#![forbid(unsafe_code)]

pub mod cap;
pub mod cpio;
pub mod cpu;
pub mod decode;
pub mod elf;
pub mod esr;
pub mod machine;
pub mod mdb;
pub mod memory;
pub mod pte;
pub mod untyped;
