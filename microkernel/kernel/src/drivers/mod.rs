//! Device drivers the kernel itself needs (everything else is driven from user space).

pub mod pl011;
