//! stdio's machinery, free of system calls so that the host tests it (`cargo test -p
//! bufio`): the newline search ([`find_byte`]: 64 bytes a step with NEON on AArch64, a
//! 64-bit word a step elsewhere, never a byte at a time but for the last few), `fgets`'s
//! search and copy in one pass ([`copy_through`]), the bulk copy ([`copy`]: 64 bytes a
//! step with NEON) and the buffered stream ([`Stream`], C's
//! `FILE`: one 4 KiB buffer, for reading or for writing, over any [`Backend`]).
//! `rt::stdio` puts a file descriptor under it.
#![no_std]

extern crate alloc;

mod scan;
mod stream;

pub use scan::{copy, copy_through, copy_through_bytewise, find_byte, find_byte_bytewise, zero};
pub use stream::{BUFSIZ, Backend, Stream};

#[cfg(test)]
extern crate std;

#[cfg(test)]
mod tests;
