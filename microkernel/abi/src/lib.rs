//! The contract between the kernel and user space: system call numbers and register
//! convention, error codes, invocation labels and arguments, message and fault layouts,
//! object types and sizes, and the layout of the boot-info page handed to the root task.
//!
//! Shared by the kernel and by user code; no unsafe code, no dependencies. Every number a user
//! program can send is converted with `TryFrom`, never transmuted. `docs/abi.md` is the prose
//! version of this crate.
#![no_std]
#![forbid(unsafe_code)]

pub mod bootinfo;
pub mod error;
pub mod invocation;
pub mod message;
pub mod object;
pub mod syscall;

pub use error::Error;
pub use invocation::Invocation;
pub use message::MsgInfo;
pub use syscall::Syscall;
