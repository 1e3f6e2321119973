//! Notifications: a word of signal bits, the threads waiting for it, and the thread it is
//! bound to.

use super::Obj;
use super::endpoint::WaitQueue;

/// A notification (`abi::object::NOTIFICATION_BITS` bytes).
#[derive(Debug, Default)]
#[repr(C)]
pub struct Notification {
    pub word: u64,
    pub queue: WaitQueue,
    /// The TCB bound to it (0: none).
    pub bound: u64,
}

const _: () = assert!(core::mem::size_of::<Notification>() <= 1 << abi::object::NOTIFICATION_BITS);

pub type NotificationRef = Obj<Notification>;
