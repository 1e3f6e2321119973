//! Timers: a notification signalled at a deadline (`TimerArm`, `TimerDisarm`).
//!
//! A timer is an object retyped from untyped (`abi::object::TIMER_BITS` bytes), so the
//! memory behind every deadline is its holder's, as for notifications; the kernel allocates
//! nothing. The armed timers form one list for the machine, sorted by deadline (earliest
//! first, equal deadlines in the order they were armed), linked through the timer objects.
//!
//! Costs (n = armed timers):
//! - each tick: one comparison with the head, plus the timers that fire, at most
//!   [`FIRE_PER_TICK`] (the rest fire at the next ticks: "at or after the deadline" holds);
//! - arming: O(timers armed with a later deadline), found from the tail (a deadline later
//!   than every other, the usual "now + timeout", costs one step);
//! - disarming, destroying a timer: O(1);
//! - destroying a notification: O(n), as for interrupts (`irq::forget_notification`).
//!
//! Deadlines are absolute, in ticks of the kernel's periodic timer (`DebugTicks`, 100 Hz).
//! A timer fires in the timer interrupt that makes the tick count reach its deadline.
//!
//! # Invariants
//! - A timer is armed exactly when `notification != 0`, and then it is in the list.
//! - An armed timer's notification is alive: destroying a notification disarms every timer
//!   naming it ([`forget_notification`]), destroying a timer takes it out ([`destroy`]).

use super::Obj;
use super::notification::{Notification, NotificationRef};
use crate::ipc;
use core::cell::UnsafeCell;

/// A timer object.
#[derive(Debug, Default)]
#[repr(C)]
pub struct Timer {
    /// The tick count at which it fires (while armed).
    pub deadline: u64,
    /// The notification it signals (kernel address); 0: disarmed.
    pub notification: u64,
    /// What it ORs into the notification's word (nonzero).
    pub bits: u64,
    /// Links in the armed list (kernel addresses; 0: none).
    pub prev: u64,
    pub next: u64,
}

const _: () = assert!(core::mem::size_of::<Timer>() <= 1 << abi::object::TIMER_BITS);

pub type TimerRef = Obj<Timer>;

/// Timers fired in one tick at most.
pub const FIRE_PER_TICK: usize = 16;

/// The armed timers, by deadline.
struct Armed {
    head: u64,
    tail: u64,
}

struct ArmedCell(UnsafeCell<Armed>);

// SAFETY: used only by the kernel on one core with interrupts masked.
unsafe impl Sync for ArmedCell {}

static ARMED: ArmedCell = ArmedCell(UnsafeCell::new(Armed { head: 0, tail: 0 }));

fn armed() -> &'static mut Armed {
    // SAFETY: see `ArmedCell`; no caller keeps the reference across a call that takes it
    // again.
    unsafe { &mut *ARMED.0.get() }
}

/// `TimerArm`: signal `ntfn` with `bits` at tick `deadline`, replacing what `t` was armed
/// with. A deadline already reached (`deadline <= now`) signals at once and leaves `t`
/// disarmed.
pub fn arm(t: TimerRef, ntfn: NotificationRef, bits: u64, deadline: u64, now: u64) {
    disarm(t);
    if deadline <= now {
        ipc::signal_object(ntfn, bits);
        return;
    }
    let timer = t.get();
    timer.deadline = deadline;
    timer.notification = ntfn.kva();
    timer.bits = bits;
    insert(t);
}

/// Puts an armed `t` into the list after every timer whose deadline is not later.
fn insert(t: TimerRef) {
    let deadline = t.get().deadline;
    let list = armed();
    let mut after = Obj::<Timer>::from_link(list.tail);
    while let Some(a) = after {
        if a.get().deadline <= deadline {
            break;
        }
        after = Obj::from_link(a.get().prev);
    }
    let next = match after {
        Some(a) => core::mem::replace(&mut a.get().next, t.kva()),
        None => core::mem::replace(&mut list.head, t.kva()),
    };
    match Obj::<Timer>::from_link(next) {
        Some(n) => n.get().prev = t.kva(),
        None => list.tail = t.kva(),
    }
    let timer = t.get();
    timer.prev = super::link(after);
    timer.next = next;
}

/// `TimerDisarm`: takes `t` out of the list. Returns whether it was armed.
pub fn disarm(t: TimerRef) -> bool {
    let timer = t.get();
    if timer.notification == 0 {
        return false;
    }
    let list = armed();
    let (prev, next) = (timer.prev, timer.next);
    match Obj::<Timer>::from_link(prev) {
        Some(p) => p.get().next = next,
        None => list.head = next,
    }
    match Obj::<Timer>::from_link(next) {
        Some(n) => n.get().prev = prev,
        None => list.tail = prev,
    }
    *timer = Timer::default();
    true
}

/// The last capability to the timer at physical address `pa` is gone.
pub fn destroy(pa: u64) {
    disarm(Obj::from_pa(pa));
}

/// A notification is destroyed: every timer that would signal it is disarmed.
pub fn forget_notification(kva: u64) {
    let mut at = Obj::<Timer>::from_link(armed().head);
    while let Some(t) = at {
        at = Obj::from_link(t.get().next);
        if t.get().notification == kva {
            disarm(t);
        }
    }
}

/// A timer tick: the tick count is now `now`. Fires (disarms and signals) the timers whose
/// deadline has come, earliest first, at most [`FIRE_PER_TICK`].
pub fn expire(now: u64) {
    for _ in 0..FIRE_PER_TICK {
        let Some(t) = Obj::<Timer>::from_link(armed().head) else {
            return;
        };
        let timer = t.get();
        if timer.deadline > now {
            return;
        }
        let (ntfn, bits) = (timer.notification, timer.bits);
        disarm(t);
        if let Some(n) = Obj::<Notification>::from_link(ntfn) {
            ipc::signal_from_interrupt(n, bits);
        }
    }
}
