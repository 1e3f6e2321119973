//! Interrupts handed to user space: which notification each one signals.

use super::Obj;
use super::notification::Notification;
use crate::{ipc, platform};
use abi::Error;
use core::cell::UnsafeCell;

/// INTIDs a handler can be made for (SGIs 0..15 are not for users; 1020.. are special).
pub const FIRST_USER_INTID: u32 = 16;
pub const INTID_LIMIT: u32 = 1020;

#[derive(Clone, Copy)]
struct Entry {
    claimed: bool,
    notification: u64,
    badge: u64,
}

struct Table(UnsafeCell<[Entry; INTID_LIMIT as usize]>);

// SAFETY: used only by the kernel on one core with interrupts masked.
unsafe impl Sync for Table {}

static TABLE: Table = Table(UnsafeCell::new(
    [Entry {
        claimed: false,
        notification: 0,
        badge: 0,
    }; INTID_LIMIT as usize],
));

fn entry(intid: u32) -> &'static mut Entry {
    // SAFETY: see `Table`; callers do not keep the reference. Indices are checked by callers
    // (`intid < INTID_LIMIT`).
    unsafe { &mut (*TABLE.0.get())[intid as usize % INTID_LIMIT as usize] }
}

/// `IrqControlGet`: claims `intid` for a handler capability.
pub fn claim(intid: u32) -> Result<(), Error> {
    if !(FIRST_USER_INTID..INTID_LIMIT).contains(&intid) {
        return Err(Error::RangeError);
    }
    if platform::get().is_kernel_interrupt(intid) {
        return Err(Error::InvalidArgument);
    }
    let e = entry(intid);
    if e.claimed {
        return Err(Error::RevokeFirst);
    }
    *e = Entry {
        claimed: true,
        notification: 0,
        badge: 0,
    };
    Ok(())
}

/// The last handler capability for `intid` is gone.
pub fn release(intid: u32) {
    platform::get().gic.disable(intid);
    *entry(intid) = Entry {
        claimed: false,
        notification: 0,
        badge: 0,
    };
}

/// `IrqHandlerSetNotification`.
pub fn set_notification(intid: u32, notification: u64, badge: u64) {
    let e = entry(intid);
    e.notification = notification;
    e.badge = if badge == 0 { 1 } else { badge };
    platform::get().gic.enable(intid);
}

/// `IrqHandlerClear`.
pub fn clear(intid: u32) {
    platform::get().gic.disable(intid);
    let e = entry(intid);
    e.notification = 0;
}

/// `IrqHandlerAck`.
pub fn ack(intid: u32) {
    if entry(intid).notification != 0 {
        platform::get().gic.enable(intid);
    }
}

/// A user interrupt fired: mask it until acknowledged, signal its notification.
pub fn deliver(intid: u32) -> bool {
    if intid >= INTID_LIMIT {
        return false;
    }
    let e = *entry(intid);
    platform::get().gic.disable(intid);
    match Obj::<Notification>::from_link(e.notification) {
        Some(n) if e.claimed => {
            ipc::signal_from_interrupt(n, e.badge);
            true
        }
        _ => false,
    }
}

/// A notification is destroyed: no interrupt may signal it any more.
pub fn forget_notification(kva: u64) {
    for i in FIRST_USER_INTID..INTID_LIMIT {
        let e = entry(i);
        if e.notification == kva {
            e.notification = 0;
            platform::get().gic.disable(i);
        }
    }
}
