//! `sh`: the shell. Reads a line at its prompt, parses it (the `sh` library, host-tested)
//! and runs it: built-ins in the shell itself (`builtins`), any other word as the program
//! `bin/<word>` with its arguments. docs/shell.md tells what it does; on the host this is an
//! empty program, so that the library builds and tests there.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod builtins;
#[cfg(target_os = "none")]
mod out;
#[cfg(target_os = "none")]
mod shell;

#[cfg(target_os = "none")]
rt::entry!(shell::main);

#[cfg(not(target_os = "none"))]
fn main() {}
