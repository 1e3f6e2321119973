//! Architecture support; AArch64 is the only architecture.

pub mod aarch64;
pub use aarch64::*;
