//! The console server: the PL011 UART (transmit, and receive by interrupt), the line
//! discipline and the tasks' descriptors 0, 1 and 2 (`proto::console`). The system-call
//! side is `server`, the UART's registers `uart`; the line discipline and the output lines
//! are the `console` library's (host-tested). On the host this is an empty program, so
//! that the library builds and tests there.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod server;
#[cfg(target_os = "none")]
mod uart;

#[cfg(not(target_os = "none"))]
fn main() {}
