//! The file server (docs/design.md §5's `file`): the system-call side is `server`, the
//! driver `disk` and `hal`, the page cache's frames and the rest of the target's platform
//! `frames`; the file system, the page cache's bookkeeping and the asynchronous reads are
//! the `file` library's core (host-tested). On the host this is an empty program, so that
//! the library builds and tests there.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod disk;
#[cfg(target_os = "none")]
mod frames;
#[cfg(target_os = "none")]
mod hal;
#[cfg(target_os = "none")]
mod server;

#[cfg(not(target_os = "none"))]
fn main() {}
