//! Timers: a notification signalled at a deadline. Fires not before its deadline and by the
//! tick that reaches it, past deadlines at once, re-arming replaces, disarming and deleting
//! the timer or the notification cancel, the armed list stays sorted and loses nothing when
//! many are due at once, waiters and bound `Recv`s (also of an idle system) are woken, and
//! every malformed use is an error.
//!
//! No check measures time: each waits by reading `DebugTicks` until the tick count has
//! reached a deadline, and the kernel's rule is that a timer fires in the tick interrupt that
//! makes the count reach its deadline, so by then its bits must be in the word; and a word
//! seen with a bit must never be seen before the count reached that bit's deadline.

use super::{Check, Env, OrFail, Outcome, code, expect_eq, expect_err, get, set};
use abi::Error;
use abi::message::{NOTIFICATION_LABEL, NULL_CPTR};
use abi::object::{CapRights, CapType, ObjectType};
use abi::{Invocation, MsgInfo};
use libmk::{Cap, Endpoint, Message, Notification, Timer};

pub const CHECKS: &[Check] = &[
    ("fires-at-deadline", fires_at_deadline),
    ("past-deadline-fires-at-once", past_deadline),
    ("rearm-replaces", rearm_replaces),
    ("disarm", disarm),
    ("wakes-waiter", wakes_waiter),
    ("wakes-bound-recv", wakes_bound_recv),
    ("bound-server-replyrecv", bound_server_replyrecv),
    ("wakes-idle-system", wakes_idle_system),
    ("notification-deleted", notification_deleted),
    ("timer-deleted", timer_deleted),
    ("sorted", sorted),
    ("many-due-at-once", many_due_at_once),
    ("errors", errors),
];

/// The tick count (`DebugTicks`).
fn now() -> u64 {
    libmk::debug_ticks().0
}

/// Returns once the tick count is at least `tick` (yielding meanwhile).
fn until(tick: u64) -> u64 {
    loop {
        let t = now();
        if t >= tick {
            return t;
        }
        libmk::yield_now();
    }
}

fn timer(env: &mut Env) -> Result<Cap<Timer>, super::Why> {
    env.obj(ObjectType::Timer)
}

/// The word of `n` (0 when empty), taken.
fn take(n: Cap<Notification>) -> Result<u64, super::Why> {
    match n.poll() {
        Ok(w) => Ok(w),
        Err(Error::WouldBlock) => Ok(0),
        Err(e) => Err(why!("Poll: {e:?}")),
    }
}

/// Takes the word of `n` and checks it against timers (bit, deadline): every bit whose
/// deadline the count had reached before the look must be there, and no bit whose deadline
/// the count had not reached after it.
fn check_word(n: Cap<Notification>, timers: &[(u64, u64)], seen: &mut u64, what: &str) -> Outcome {
    let before = now();
    let word = take(n)?;
    let after = now();
    *seen |= word;
    for &(bit, deadline) in timers {
        ensure!(
            deadline > before || *seen & bit != 0,
            "{what}: bit {bit:#x} (deadline {deadline}) missing at tick {before}"
        );
        ensure!(
            deadline <= after || word & bit == 0,
            "{what}: bit {bit:#x} (deadline {deadline}) already there at tick {after}"
        );
    }
    Ok(())
}

fn fires_at_deadline(env: &mut Env) -> Outcome {
    let n = env.notification()?;
    let t = timer(env)?;
    super::expect_type(t.cptr(), CapType::Timer, "a retyped timer")?;
    let deadline = now() + 3;
    t.arm(n, 0x4, deadline).or_fail("TimerArm")?;
    let mut seen = 0;
    check_word(n, &[(0x4, deadline)], &mut seen, "right after arming")?;
    until(deadline);
    check_word(n, &[(0x4, deadline)], &mut seen, "at the deadline")?;
    expect_eq(seen, 0x4, "the word")?;
    expect_eq(
        t.disarm().or_fail("TimerDisarm")?,
        false,
        "armed after firing",
    )?;
    until(deadline + 2);
    expect_eq(take(n)?, 0, "a second signal from a timer that fired")
}

fn past_deadline(env: &mut Env) -> Outcome {
    let n = env.notification()?;
    let t = timer(env)?;
    for deadline in [0, 1, now()] {
        t.arm(n, 0x30, deadline)
            .or_fail("TimerArm, past deadline")?;
        expect_eq(take(n)?, 0x30, "the word right after arming in the past")?;
        expect_eq(
            t.disarm().or_fail("TimerDisarm")?,
            false,
            "armed after a past deadline",
        )?;
    }
    // A past deadline replaces an armed one.
    t.arm(n, 0x1, now() + 2).or_fail("TimerArm")?;
    t.arm(n, 0x2, 0).or_fail("TimerArm, past deadline")?;
    expect_eq(take(n)?, 0x2, "the word right after re-arming in the past")?;
    until(now() + 4);
    expect_eq(take(n)?, 0, "the replaced deadline fired")
}

fn rearm_replaces(env: &mut Env) -> Outcome {
    let n = env.notification()?;
    let n2 = env.notification()?;
    let t = timer(env)?;
    // Later: the first deadline passes silently.
    let d1 = now() + 2;
    t.arm(n, 0x1, d1).or_fail("TimerArm")?;
    let d2 = d1 + 3;
    t.arm(n, 0x2, d2).or_fail("TimerArm again, later")?;
    until(d1);
    let mut seen = 0;
    check_word(n, &[(0x2, d2)], &mut seen, "at the replaced deadline")?;
    until(d2);
    check_word(n, &[(0x2, d2)], &mut seen, "at the new deadline")?;
    expect_eq(seen, 0x2, "the word (only the new bits)")?;
    // Earlier, and to another notification.
    let d3 = now() + 40;
    t.arm(n, 0x4, d3).or_fail("TimerArm")?;
    let d4 = now() + 2;
    t.arm(n2, 0x8, d4)
        .or_fail("TimerArm again, earlier, other notification")?;
    until(d4);
    expect_eq(take(n2)?, 0x8, "the new notification's word")?;
    expect_eq(take(n)?, 0, "the old notification's word")?;
    expect_eq(
        t.disarm().or_fail("TimerDisarm")?,
        false,
        "armed after firing",
    )
}

fn disarm(env: &mut Env) -> Outcome {
    let n = env.notification()?;
    let n2 = env.notification()?;
    let t = timer(env)?;
    let t2 = timer(env)?;
    let d = now() + 2;
    t.arm(n, 0x1, d).or_fail("TimerArm")?;
    t2.arm(n2, 0x1, d + 2)
        .or_fail("TimerArm, the second timer")?;
    expect_eq(t.disarm().or_fail("TimerDisarm")?, true, "was armed")?;
    expect_eq(
        t.disarm().or_fail("TimerDisarm again")?,
        false,
        "armed after disarming",
    )?;
    // Past both deadlines: the second timer's notification says so.
    expect_eq(
        n2.wait().or_fail("Wait for the second timer")?,
        0x1,
        "its word",
    )?;
    expect_eq(take(n)?, 0, "the disarmed timer's notification")?;
    // A disarmed timer can be armed again.
    t.arm(n, 0x2, now() + 1)
        .or_fail("TimerArm after disarming")?;
    expect_eq(n.wait().or_fail("Wait")?, 0x2, "the word")
}

fn waiter(n: u64) {
    let r = Cap::<Notification>::from_cptr(n).wait();
    set(2, now());
    set(0, code(&r));
    set(3, r.unwrap_or(0));
    set(1, 1);
}

fn wakes_waiter(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let n = env.notification()?;
    let t = timer(env)?;
    env.spawn(waiter, n.cptr(), 254)?;
    sync.settle()?;
    expect_eq(get(1), 0, "the waiter returned before the timer fired")?;
    let d = now() + 2;
    t.arm(n, 0x40, d).or_fail("TimerArm")?;
    until(d);
    sync.settle()?;
    expect_eq(
        [get(1), get(0), get(3)],
        [1, 0, 0x40],
        "waiter done, error, word",
    )?;
    ensure!(
        get(2) >= d,
        "woken at tick {}, before the deadline {d}",
        get(2)
    );
    Ok(())
}

/// Receives on endpoint `R[5]` with a notification bound; records what came (as vm would
/// see a timer's signal).
fn bound_receiver(_: u64) {
    let r = Cap::<Endpoint>::from_cptr(get(5)).recv();
    set(0, code(&r));
    if let Ok(r) = r {
        set(2, r.info().label);
        set(3, r.info().length as u64);
        set(4, r.badge);
    }
    super::bump(1);
}

fn wakes_bound_recv(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let n = env.notification()?;
    let t = timer(env)?;
    let e = env.endpoint()?;
    set(5, e.cptr());
    let th = env.thread(crate::thread::Config::new(254), None)?;
    th.tcb.bind_notification(n).or_fail("TcbBindNotification")?;
    th.run(bound_receiver, 0).or_fail("start")?;
    sync.settle()?;
    let d = now() + 2;
    t.arm(n, 0x100, d).or_fail("TimerArm")?;
    until(d);
    sync.settle()?;
    expect_eq(
        [get(1), get(0), get(2), get(3), get(4)],
        [1, 0, NOTIFICATION_LABEL, 0, 0x100],
        "done, error, label, length, badge (the timer's bits)",
    )
}

/// A server as vm is one: a notification bound to its thread (`R[6]`), answering calls on
/// endpoint `R[5]` with `ReplyRecv`. After the first call it signals its own notification,
/// so its `ReplyRecv` must return the signal instead of blocking (the fast path leaves this
/// case to the general one); the second reply finds the word empty and blocks as usual.
fn bound_server(_: u64) {
    let ep = Cap::<Endpoint>::from_cptr(get(5));
    let Ok(first) = ep.recv() else { return };
    set(2, first.info().label);
    let _ = Cap::<Notification>::from_cptr(get(6)).signal();
    let r = ep.reply_recv(&Message::new(0x55, &[]));
    set(0, code(&r));
    if let Ok(r) = r {
        set(3, r.info().label);
        set(4, r.badge);
    }
    let Ok(second) = ep.recv() else { return };
    set(7, second.info().label);
    super::bump(1);
    let _ = ep.reply_recv(&Message::new(0x66, &[]));
    super::bump(1);
}

fn bound_server_replyrecv(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let n = env.notification()?;
    let e = env.endpoint()?;
    set(5, e.cptr());
    set(6, n.cptr());
    let th = env.thread(crate::thread::Config::new(254), None)?;
    th.tcb.bind_notification(n).or_fail("TcbBindNotification")?;
    th.run(bound_server, 0).or_fail("start")?;
    sync.settle()?;
    let r = e.call(&Message::new(0x11, &[])).or_fail("the first Call")?;
    expect_eq(r.info().label, 0x55, "the first reply's label")?;
    sync.settle()?;
    expect_eq(
        [get(2), get(0), get(3), get(4)],
        [0x11, 0, NOTIFICATION_LABEL, 0x1],
        "first label, ReplyRecv's error, label and word",
    )?;
    let r = e
        .call(&Message::new(0x22, &[]))
        .or_fail("the second Call")?;
    expect_eq(r.info().label, 0x66, "the second reply's label")?;
    sync.settle()?;
    expect_eq(
        [get(7), get(1)],
        [0x22, 1],
        "second label; the server waits in its ReplyRecv",
    )
}

fn wakes_idle_system(env: &mut Env) -> Outcome {
    // init itself waits, with nothing else runnable: the kernel idles in `wfi` until the
    // tick that fires the timer. A second timer, later, stands in for a lost wake-up (a
    // missing bit 0x1 fails the check instead of hanging the suite).
    let n = env.notification()?;
    let t = timer(env)?;
    let guard = timer(env)?;
    let e = env.endpoint()?;
    let me = Cap::<libmk::Tcb>::from_cptr(abi::object::init_slots::TCB);
    me.bind_notification(n).or_fail("bind to init's thread")?;
    let d = now() + 2;
    t.arm(n, 0x1, d).or_fail("TimerArm")?;
    guard.arm(n, 0x2, d + 100).or_fail("TimerArm, the guard")?;
    let r = e.recv().or_fail("Recv with the notification bound")?;
    let at = now();
    let _ = guard.disarm();
    expect_eq(
        (r.info().label, r.badge & 0x1),
        (NOTIFICATION_LABEL, 0x1),
        "label and the timer's bit",
    )?;
    ensure!(at >= d, "woken at tick {at}, before the deadline {d}");
    Ok(())
}

fn notification_deleted(env: &mut Env) -> Outcome {
    let n = env.notification()?;
    let other = env.notification()?;
    let t = timer(env)?;
    let before = timer(env)?;
    let after = timer(env)?;
    let d = now() + 3;
    // `t` sits between two timers of another notification in the armed list.
    before.arm(other, 0x1, d - 1).or_fail("TimerArm")?;
    t.arm(n, 0x1, d).or_fail("TimerArm")?;
    after.arm(other, 0x2, d + 1).or_fail("TimerArm")?;
    crate::alloc::CNODE
        .delete(n.cptr())
        .or_fail("delete the notification")?;
    expect_eq(
        t.disarm().or_fail("TimerDisarm")?,
        false,
        "armed after its notification was deleted",
    )?;
    // The list is whole: both neighbours still fire.
    until(d + 1);
    expect_eq(take(other)?, 0x3, "the neighbours' word")?;
    // The timer works with another notification.
    t.arm(other, 0x4, now() + 1)
        .or_fail("TimerArm after the notification went")?;
    expect_eq(other.wait().or_fail("Wait")?, 0x4, "the word")
}

fn timer_deleted(env: &mut Env) -> Outcome {
    let n = env.notification()?;
    let a = timer(env)?;
    let b = timer(env)?;
    let c = timer(env)?;
    let d = now() + 2;
    a.arm(n, 0x1, d).or_fail("TimerArm a")?;
    b.arm(n, 0x2, d + 1).or_fail("TimerArm b")?;
    c.arm(n, 0x4, d + 2).or_fail("TimerArm c")?;
    // A copy keeps the timer; deleting the last capability disarms it.
    let copy = env.copy(b.cptr(), CapRights::ALL)?;
    crate::alloc::CNODE.delete(b.cptr()).or_fail("delete b")?;
    let b2 = Cap::<Timer>::from_cptr(copy);
    expect_eq(
        b2.disarm().or_fail("TimerDisarm through the copy")?,
        true,
        "armed while a copy is left",
    )?;
    b2.arm(n, 0x2, d + 1).or_fail("TimerArm through the copy")?;
    crate::alloc::CNODE
        .delete(copy)
        .or_fail("delete the last capability to b")?;
    until(d + 3);
    expect_eq(take(n)?, 0x5, "the word (a and c, not b)")
}

fn sorted(env: &mut Env) -> Outcome {
    let n = env.notification()?;
    let base = now() + 1;
    let offsets = [5u64, 1, 7, 3, 3, 6, 2, 0];
    let mut timers = [(0u64, 0u64); 8];
    for (i, &off) in offsets.iter().enumerate() {
        let t = timer(env)?;
        let bit = 1u64 << i;
        timers[i] = (bit, base + off);
        t.arm(n, bit, base + off).or_fail("TimerArm")?;
    }
    let mut seen = 0;
    for tick in base..=base + 8 {
        until(tick);
        check_word(n, &timers, &mut seen, "on the way")?;
    }
    expect_eq(seen, 0xff, "the word at the end")
}

fn many_due_at_once(env: &mut Env) -> Outcome {
    // More than the kernel fires in one tick, all with one deadline: the rest fire at the
    // next ticks, none is lost.
    const COUNT: u64 = 40;
    let n = env.notification()?;
    let d = now() + 2;
    for i in 0..COUNT {
        let t = timer(env)?;
        t.arm(n, 1 << i, d).or_fail("TimerArm")?;
    }
    let mut seen = 0;
    check_word(n, &[(1, d)], &mut seen, "before the deadline")?;
    until(d + COUNT.div_ceil(16) + 1);
    seen |= take(n)?;
    expect_eq(seen, (1 << COUNT) - 1, "the word")
}

fn errors(env: &mut Env) -> Outcome {
    let n = env.notification()?;
    let t = timer(env)?;
    let e = env.endpoint()?;
    let read_only = env.copy(n.cptr(), CapRights::READ)?;
    let write_only = env.copy(n.cptr(), CapRights::WRITE)?;
    let empty = env.slot()?;
    let bad = &[Error::InvalidCapability];
    for cptr in [empty, e.cptr(), t.cptr(), 1 << 40, NULL_CPTR] {
        expect_err(
            t.arm(Cap::from_cptr(cptr), 0x1, 0),
            bad,
            "TimerArm with a forged notification",
        )?;
    }
    expect_err(
        t.arm(Cap::from_cptr(read_only), 0x1, 0),
        &[Error::InsufficientRights],
        "TimerArm with a READ-only notification",
    )?;
    expect_err(
        t.arm(n, 0, 0),
        &[Error::InvalidArgument],
        "TimerArm with no bits",
    )?;
    expect_eq(take(n)?, 0, "the word after the failed arms")?;
    // The operations on other capabilities, and other operations on a timer.
    expect_err(
        n.cast::<Timer>().arm(n, 0x1, 0),
        &[Error::IllegalOperation],
        "TimerArm on a notification",
    )?;
    expect_err(
        Cap::<Timer>::from_cptr(empty).disarm(),
        bad,
        "TimerDisarm on an empty slot",
    )?;
    expect_err(
        Cap::<Timer>::from_cptr(1 << 40).disarm(),
        bad,
        "TimerDisarm out of range",
    )?;
    expect_err(
        libmk::invoke(t.cptr(), Invocation::FrameUnmap, &[]),
        &[Error::IllegalOperation],
        "FrameUnmap on a timer",
    )?;
    expect_err(
        libmk::invoke(t.cptr(), Invocation::TimerArm, &[n.cptr(), 1]),
        &[Error::InvalidArgument],
        "TimerArm with two arguments",
    )?;
    let info = MsgInfo::new(Invocation::TimerArm as u64, 3).encode();
    let r = libmk::raw_syscall(
        abi::Syscall::Signal as u64,
        t.cptr(),
        info,
        [n.cptr(), 1, 0, 0, 0, 0],
    );
    expect_eq(
        r.error,
        Error::InvalidCapability.code(),
        "Signal on a timer",
    )?;
    // A WRITE-only capability is enough; a huge deadline is armed (and never comes).
    t.arm(Cap::from_cptr(write_only), 0x1, u64::MAX)
        .or_fail("TimerArm with a WRITE-only notification, deadline u64::MAX")?;
    expect_eq(t.disarm().or_fail("TimerDisarm")?, true, "armed")?;
    // A timer can be copied and moved, not minted with a badge.
    let copy = env.copy(t.cptr(), CapRights::ALL)?;
    super::expect_type(copy, CapType::Timer, "a copy of a timer")?;
    let minted = env.slot()?;
    expect_err(
        crate::alloc::CNODE.mint(minted, crate::alloc::CNODE, t.cptr(), CapRights::ALL, 7),
        &[Error::InvalidArgument],
        "mint a timer with a badge",
    )?;
    expect_eq(take(n)?, 0, "the word at the end")
}
