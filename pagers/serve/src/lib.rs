//! The server runtime under every server (vm, zero, file, shm, console): one receive loop, the
//! replies, saved replies and who waits for what, the untyped budget's slots and page
//! tables, and the test hooks. docs/design.md's §5 servers differ in what they answer, not in
//! how they receive and answer; this crate is the "how", once.
//!
//! - [`slots`] and [`waiters`]: the bookkeeping of callers a server keeps waiting (their
//!   saved replies' slots, bounded per client; the waiters of each request or disk read,
//!   bounded per key and in all). Free of system calls, tested on the host.
//! - The receive loop ([`run`] with a [`Serve`]), replies ([`answer`], [`send_saved`]), the
//!   budget ([`Budget`], [`Tables`]) and the test hooks ([`StopHook`]): system calls, built
//!   for the target only.
//!
//! Request types, their wire form and client calls come from each interface's declaration
//! (`proto::interface!`); a server answering several interfaces decodes each label with the
//! one it belongs to (`proto::requests!`).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod slots;
pub mod waiters;

pub use slots::ReplySlots;
pub use waiters::Waiters;

#[cfg(target_os = "none")]
mod sys;
#[cfg(target_os = "none")]
pub use sys::{Budget, Serve, StopHook, Tables, answer, error, run, send_saved};
