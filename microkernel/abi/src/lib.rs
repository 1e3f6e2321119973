//! The contract between the kernel and user space: system call numbers and register
//! convention, error codes, invocation labels and arguments, message and fault layouts,
//! object types and sizes, and the layout of the boot-info page handed to the root task.
//!
//! Shared by the kernel and by user code; no unsafe code, no dependencies. Every number a user
//! program can send is converted with `TryFrom`, never transmuted. `docs/abi.md` is the prose
//! version of this crate.
#![no_std]
#![forbid(unsafe_code)]

/// A `#[repr(u64)]` enum whose values cross the user/kernel boundary: the enum, `ALL`, and
/// `TryFrom<u64>` (never a transmute of a user number).
#[macro_export]
macro_rules! numbered {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u64)]
        pub enum $name {
            $($(#[$vmeta])* $variant = $value,)*
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];
        }

        impl TryFrom<u64> for $name {
            type Error = u64;

            fn try_from(value: u64) -> Result<Self, u64> {
                match value {
                    $($value => Ok(Self::$variant),)*
                    other => Err(other),
                }
            }
        }
    };
}

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
