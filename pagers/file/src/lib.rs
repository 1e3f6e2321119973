//! The file server's logic that needs no system call, tested on the host
//! (`cargo test -p file`): the bookkeeping of its asynchronous disk reads ([`pending`]).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod pending;

#[cfg(test)]
mod tests;
