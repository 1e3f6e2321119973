//! The console server's core, free of system calls and tested on the host: the line
//! discipline ([`Discipline`]: what typed keys do to the line being edited and to the
//! lines waiting for a reader) and the tasks' unfinished output lines ([`Outbox`]: each
//! task's output goes out a whole line at a time, so that two tasks' lines never mix).
//! `main.rs` is the server (the UART, its interrupt, the receive loop).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod discipline;
pub mod outbox;

pub use discipline::{Discipline, Key, Taken};
pub use outbox::Outbox;

#[cfg(test)]
mod tests;
