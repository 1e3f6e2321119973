//! The file server's core, free of system calls so that it is tested on the host
//! (`cargo test -p file`, against a RAM disk holding a FAT image): the FAT volume and the
//! descriptors ([`fs`]), the page cache's bookkeeping ([`cache`]), the disk as the file
//! system sees it ([`blockdev`]), the bookkeeping of asynchronous disk reads ([`pending`]).
//! What it needs of the machine is [`platform`]'s traits, which the server (`main.rs`'s
//! target modules: frames, the virtio disk) and the tests implement.
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod blockdev;
pub mod cache;
pub mod fs;
pub mod pending;
pub mod platform;

#[cfg(test)]
mod tests;
