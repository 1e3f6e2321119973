//! The vm server: receives every task's faults and memory requests and init's address-space
//! requests on one endpoint, and answers them with the logic of the `vm` library. This file
//! is the system-call side (`server`); on the host it is an empty program, so that the
//! library builds and tests there.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod server;

#[cfg(not(target_os = "none"))]
fn main() {}
