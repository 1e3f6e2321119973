//! The shm server: POSIX shared memory objects (`proto::shm`) for tasks, paged to vm through
//! the memory-object protocol (`proto::object`), with the bookkeeping of the `shm` library.
//! This file is the system-call side (`server`); on the host it is an empty program, so
//! that the library builds and tests there.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod server;

#[cfg(not(target_os = "none"))]
fn main() {}
