//! Interrupts: IrqControlGet and its errors, and real delivery from the EL1 physical timer,
//! which EL0 may program (`CNTP_TVAL_EL0`, `CNTP_CTL_EL0`; PPI INTID 30): a handler signals
//! a notification, the interrupt stays masked until `IrqHandlerAck`, `IrqHandlerClear` stops
//! it. Waits poll with a fail-safe deadline instead of blocking, since nothing but the
//! interrupt would wake init.

use super::{
    Check, Env, OrFail, Outcome, expect_eq, expect_err, expect_fails, expect_type, get, set,
};
use crate::alloc::CNODE;
use abi::Error;
use abi::object::{CapRights, CapType, ObjectType, init_slots};
use core::arch::asm;
use libmk::{Cap, Frame, IrqControl, IrqHandler, Notification, Untyped};

pub const CHECKS: &[Check] = &[
    ("get-kernel-timer", get_kernel_timer),
    ("get-out-of-range", get_out_of_range),
    ("get-twice", get_twice),
    ("get-dest-errors", get_dest_errors),
    ("handler-errors", handler_errors),
    ("el0-timer-access", el0_timer_access),
    ("timer-delivery", timer_delivery),
    ("masked-until-ack", masked_until_ack),
    ("wakes-waiting-thread", wakes_waiting_thread),
    ("clear-stops-delivery", clear_stops_delivery),
    ("preempts-retype-and-revoke", preempts_retype_and_revoke),
];

const IRQ_CONTROL: Cap<IrqControl> = Cap::from_cptr(init_slots::IRQ_CONTROL);
/// The EL1 physical timer's PPI.
const TIMER_INTID: u64 = 30;
/// The kernel's own timer (the EL1 virtual timer's PPI).
const KERNEL_TIMER_INTID: u64 = 27;

/// Arms the EL1 physical timer to fire after `ticks` counter ticks (and keep its line high
/// until stopped).
fn timer_start(ticks: u64) {
    // SAFETY: the kernel lets EL0 program the EL1 physical timer (docs/kernel.md,
    // "Interrupts"); the check found that it does (`timer_ok`) before calling this.
    unsafe {
        asm!(
            "msr cntp_tval_el0, {t}",
            "msr cntp_ctl_el0, {c}",
            "isb",
            t = in(reg) ticks,
            c = in(reg) 1u64,
            options(nomem, nostack),
        )
    };
}

/// Disables the EL1 physical timer.
pub fn timer_stop() {
    // SAFETY: as `timer_start`.
    unsafe { asm!("msr cntp_ctl_el0, xzr", "isb", options(nomem, nostack)) };
}

fn probe_timer(_: u64) {
    let ctl: u64;
    // SAFETY: reads and clears CNTP_CTL_EL0; if EL0 may not, the thread faults and the
    // check's fault endpoint hears of it.
    unsafe {
        asm!(
            "mrs {c}, cntp_ctl_el0",
            "msr cntp_ctl_el0, xzr",
            "isb",
            c = out(reg) ctl,
            options(nomem, nostack),
        )
    };
    set(30, ctl | 0x100);
}

/// Finds out (once) whether EL0 may program the timer, in a thread with a fault endpoint.
fn timer_ok(env: &mut Env) -> Outcome {
    if env.cntp_ok {
        return Ok(());
    }
    let sync = env.sync()?;
    super::run_in_thread(env, &sync, probe_timer, 0)
        .map_err(|w| why!("EL0 cannot use CNTP_CTL_EL0: {w}"))?;
    ensure!(get(30) & 0x100 != 0, "the timer probe did not finish");
    env.cntp_ok = true;
    Ok(())
}

/// A handler for `intid` in a new slot.
fn handler(env: &mut Env, intid: u64) -> Result<Cap<IrqHandler>, super::Why> {
    let s = env.slot()?;
    IRQ_CONTROL.get(intid, CNODE, s).or_fail("IrqControlGet")?;
    Ok(Cap::from_cptr(s))
}

/// A timer handler signalling a notification with badge 0x10; returns (handler, notification).
fn timer_setup(env: &mut Env) -> Result<(Cap<IrqHandler>, Cap<Notification>), super::Why> {
    timer_ok(env)?;
    let h = handler(env, TIMER_INTID)?;
    let n = env.notification()?;
    let b = env.mint(n.cptr(), CapRights::ALL, 0x10)?;
    h.set_notification(Cap::from_cptr(b))
        .or_fail("IrqHandlerSetNotification")?;
    Ok((h, n))
}

/// Polls `n` until a bit is set, giving up after `secs` seconds (fail-safe).
fn poll_for(n: Cap<Notification>, secs: u64) -> Result<u64, super::Why> {
    let (start, freq) = libmk::virtual_counter();
    loop {
        match n.poll() {
            Ok(w) => return Ok(w),
            Err(Error::WouldBlock) => {}
            Err(e) => fail!("Poll: {e:?}"),
        }
        if libmk::virtual_counter().0 - start > secs * freq {
            fail!("no interrupt within {secs} s");
        }
    }
}

/// Spins until the kernel's tick count has gone up by `n` (fail-safe: 5 s).
fn spin_ticks(n: u64) -> Outcome {
    let (start, _) = libmk::debug_ticks();
    let (c0, freq) = libmk::virtual_counter();
    while libmk::debug_ticks().0 < start + n {
        ensure!(
            libmk::virtual_counter().0 - c0 < 5 * freq,
            "the kernel's timer stopped ticking"
        );
    }
    Ok(())
}

/// One millisecond of the counter.
fn one_ms() -> u64 {
    libmk::virtual_counter().1 / 1000
}

fn get_kernel_timer(env: &mut Env) -> Outcome {
    let s = env.slot()?;
    expect_fails(
        IRQ_CONTROL.get(KERNEL_TIMER_INTID, CNODE, s),
        "IrqControlGet for the kernel's timer (INTID 27)",
    )?;
    expect_type(s, CapType::Null, "the destination")
}

fn get_out_of_range(env: &mut Env) -> Outcome {
    let s = env.slot()?;
    for intid in [0, 15, 1020, 1023, u64::MAX] {
        expect_err(
            IRQ_CONTROL.get(intid, CNODE, s),
            &[Error::RangeError, Error::InvalidArgument],
            "an INTID outside 16..1019",
        )?;
    }
    expect_type(s, CapType::Null, "the destination")
}

fn get_twice(env: &mut Env) -> Outcome {
    let a = handler(env, TIMER_INTID)?;
    expect_type(a.cptr(), CapType::IrqHandler, "the handler")?;
    let b = env.slot()?;
    expect_err(
        IRQ_CONTROL.get(TIMER_INTID, CNODE, b),
        &[Error::RevokeFirst],
        "a second handler for INTID 30",
    )?;
    let copy = env.copy(a.cptr(), CapRights::ALL)?;
    expect_type(copy, CapType::IrqHandler, "a copy of the handler")?;
    CNODE.delete(a.cptr()).or_fail("delete the handler")?;
    expect_err(
        IRQ_CONTROL.get(TIMER_INTID, CNODE, b),
        &[Error::RevokeFirst],
        "another handler while a copy lives",
    )?;
    CNODE.delete(copy).or_fail("delete the copy")?;
    IRQ_CONTROL
        .get(TIMER_INTID, CNODE, b)
        .or_fail("a handler after the old one was deleted")?;
    expect_type(b, CapType::IrqHandler, "the new handler")
}

fn get_dest_errors(env: &mut Env) -> Outcome {
    let e = env.endpoint()?;
    expect_err(
        IRQ_CONTROL.get(TIMER_INTID, CNODE, e.cptr()),
        &[Error::SlotOccupied],
        "into a full slot",
    )?;
    let n = env.a.slot_count();
    expect_err(
        IRQ_CONTROL.get(TIMER_INTID, CNODE, n),
        &[Error::InvalidCapability],
        "into index = CNode size",
    )?;
    let s = env.slot()?;
    expect_err(
        IRQ_CONTROL.get(TIMER_INTID, e.cast(), s),
        &[Error::InvalidCapability],
        "with an endpoint as the CNode",
    )?;
    expect_err(
        e.cast::<IrqControl>().get(TIMER_INTID, CNODE, s),
        &[Error::IllegalOperation, Error::InvalidCapability],
        "IrqControlGet on an endpoint",
    )?;
    // Nothing was made by the failures: a handler can still be had.
    IRQ_CONTROL
        .get(TIMER_INTID, CNODE, s)
        .or_fail("IrqControlGet after the failures")
}

fn handler_errors(env: &mut Env) -> Outcome {
    let h = handler(env, TIMER_INTID)?;
    let e = env.endpoint()?;
    expect_err(
        h.set_notification(e.cast()),
        &[Error::InvalidCapability],
        "SetNotification with an endpoint",
    )?;
    let want = &[Error::IllegalOperation, Error::InvalidCapability];
    expect_err(
        e.cast::<IrqHandler>().ack(),
        want,
        "IrqHandlerAck on an endpoint",
    )?;
    expect_err(
        e.cast::<IrqHandler>().clear(),
        want,
        "IrqHandlerClear on an endpoint",
    )?;
    let n = env.notification()?;
    h.set_notification(n).or_fail("SetNotification")?;
    h.clear().or_fail("IrqHandlerClear")
}

fn el0_timer_access(env: &mut Env) -> Outcome {
    env.cntp_ok = false;
    timer_ok(env)
}

fn timer_delivery(env: &mut Env) -> Outcome {
    let (h, n) = timer_setup(env)?;
    expect_err(
        n.poll(),
        &[Error::WouldBlock],
        "Poll before the timer is armed",
    )?;
    timer_start(one_ms());
    let w = poll_for(n, 2)?;
    timer_stop();
    expect_eq(w, 0x10, "the word (the handler's notification badge)")?;
    h.ack().or_fail("IrqHandlerAck")
}

fn masked_until_ack(env: &mut Env) -> Outcome {
    let (h, n) = timer_setup(env)?;
    timer_start(one_ms());
    poll_for(n, 2)?;
    // The timer's line stays high; the interrupt must stay masked until the Ack.
    spin_ticks(3)?;
    expect_err(
        n.poll(),
        &[Error::WouldBlock],
        "Poll before the Ack (the line is still high)",
    )?;
    h.ack().or_fail("IrqHandlerAck")?;
    let w = poll_for(n, 2)?;
    timer_stop();
    expect_eq(w, 0x10, "the word after the Ack")?;
    h.ack().or_fail("the second IrqHandlerAck")
}

fn irq_waiter(n: u64) {
    if let Ok(w) = Cap::<Notification>::from_cptr(n).wait() {
        set(2, w);
    }
    set(1, 1);
}

fn wakes_waiting_thread(env: &mut Env) -> Outcome {
    let (h, n) = timer_setup(env)?;
    env.spawn(irq_waiter, n.cptr(), 255)?;
    libmk::yield_now();
    expect_eq(get(1), 0, "the waiter returned before the interrupt")?;
    timer_start(one_ms());
    let (start, freq) = libmk::virtual_counter();
    while get(1) == 0 {
        libmk::yield_now();
        ensure!(
            libmk::virtual_counter().0 - start < 2 * freq,
            "the waiter did not wake within 2 s"
        );
    }
    timer_stop();
    expect_eq(get(2), 0x10, "the word the waiter got")?;
    h.ack().or_fail("IrqHandlerAck")
}

fn clear_stops_delivery(env: &mut Env) -> Outcome {
    let (h, n) = timer_setup(env)?;
    h.clear().or_fail("IrqHandlerClear")?;
    timer_start(one_ms());
    spin_ticks(3)?;
    timer_stop();
    expect_err(
        n.poll(),
        &[Error::WouldBlock],
        "Poll after Clear (the timer fired)",
    )?;
    h.set_notification(n).or_fail("SetNotification again")?;
    h.ack().or_fail("IrqHandlerAck")?;
    timer_start(one_ms());
    let w = poll_for(n, 2)?;
    timer_stop();
    expect_eq(w, 1, "the word through the unbadged notification")?;
    h.ack().or_fail("IrqHandlerAck")
}

/// A long retype and a long revoke with the timer set to fire while they run: both have
/// preemption points, so the kernel stops, takes the interrupt (the notification gets it)
/// and restarts the call where it stopped. Whether or not the interrupt lands inside the
/// call, the result must be exact: every object made, contiguous, then every one revoked.
fn preempts_retype_and_revoke(env: &mut Env) -> Outcome {
    let (h, n) = timer_setup(env)?;
    let (_, scratch_bits) = env.a.scratch().ok_or(why!("no scratch untyped"))?;
    let bits = u64::from(scratch_bits) - 1;
    let ut: Cap<Untyped> = env
        .a
        .obj(ObjectType::Untyped, bits)
        .or_fail("a child untyped")?;
    let count = 1u64 << (bits - 12);
    let first = env.a.slots(count as usize).or_fail("allocate the slots")?;
    let soon = (one_ms() / 50).max(1);

    timer_start(soon);
    let made = ut.retype(ObjectType::Frame, 12, CNODE, first, count);
    poll_for(n, 2)?;
    timer_stop();
    made.or_fail("retype the frames")?;
    for s in [first, first + count / 2, first + count - 1] {
        expect_type(s, CapType::Frame, "a frame of the long retype")?;
    }
    let base = Cap::<Frame>::from_cptr(first)
        .phys_addr()
        .or_fail("FramePhysAddr")?
        .0;
    let last = Cap::<Frame>::from_cptr(first + count - 1)
        .phys_addr()
        .or_fail("FramePhysAddr")?
        .0;
    expect_eq(last - base, (count - 1) * 4096, "the span of the frames")?;

    h.ack().or_fail("IrqHandlerAck")?;
    timer_start(soon);
    let revoked = CNODE.revoke(ut.cptr());
    poll_for(n, 2)?;
    timer_stop();
    revoked.or_fail("revoke the untyped")?;
    for s in [first, first + count / 2, first + count - 1] {
        expect_type(s, CapType::Null, "a revoked frame's slot")?;
    }
    h.ack().or_fail("the second IrqHandlerAck")
}
