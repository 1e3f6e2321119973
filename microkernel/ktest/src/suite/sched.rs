//! Scheduling: strict priorities, preemption by a thread made runnable at a higher
//! priority, Yield, time slicing between busy threads of equal priority, and priority changes.
//! No timing assertions: the busy loops only give up after a long fail-safe.

use super::{Check, Env, OrFail, Outcome, R, bump, expect_eq, get, set};
use abi::object::ObjectType;
use core::sync::atomic::Ordering;
use libmk::{Cap, Notification, Timer};

pub const CHECKS: &[Check] = &[
    ("priority-order", priority_order),
    ("higher-preempts-at-once", higher_preempts_at_once),
    ("set-priority-reorders", set_priority_reorders),
    ("yield-rotates", yield_rotates),
    (
        "equal-priority-waits-for-yield",
        equal_priority_waits_for_yield,
    ),
    ("strict-priority", strict_priority),
    ("time-slicing", time_slicing),
    ("interrupt-wake-goes-first", interrupt_wake_goes_first),
];

/// Where the order log starts in `R` and how long it is.
const LOG: usize = 20;
const LOG_LEN: usize = 10;

/// Appends `v` to the order log.
fn log(v: u64) {
    let i = R[19].fetch_add(1, Ordering::SeqCst) as usize;
    if i < LOG_LEN {
        set(LOG + i, v);
    }
}

fn logged() -> ([u64; LOG_LEN], usize) {
    let mut out = [0; LOG_LEN];
    for (i, o) in out.iter_mut().enumerate() {
        *o = get(LOG + i);
    }
    (out, (get(19) as usize).min(LOG_LEN))
}

fn expect_log(want: &[u64], what: &str) -> Outcome {
    let (got, n) = logged();
    expect_eq(&got[..n], want, what)
}

fn logger(v: u64) {
    log(v);
}

/// A fail-safe deadline `secs` seconds of the virtual counter from now.
fn deadline(secs: u64) -> u64 {
    let (now, freq) = libmk::virtual_counter();
    now + secs * freq
}

fn past(deadline: u64) -> bool {
    libmk::virtual_counter().0 > deadline
}

fn priority_order(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    env.spawn(logger, 1, 100)?;
    env.spawn(logger, 2, 200)?;
    env.spawn(logger, 3, 150)?;
    env.spawn(logger, 4, 2)?;
    sync.settle()?;
    expect_log(&[2, 3, 1, 4], "run order of priorities 200, 150, 100, 2")
}

/// At priority 100: logs 1, signals the notification a priority-200 thread waits on, logs 3.
fn low_signaller(n: u64) {
    log(1);
    let _ = Cap::<Notification>::from_cptr(n).signal();
    log(3);
}

fn high_waiter(n: u64) {
    if Cap::<Notification>::from_cptr(n).wait().is_ok() {
        log(2);
    }
}

fn higher_preempts_at_once(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let n = env.notification()?;
    env.spawn(high_waiter, n.cptr(), 200)?;
    env.spawn(low_signaller, n.cptr(), 100)?;
    sync.settle()?;
    expect_log(
        &[1, 2, 3],
        "order (the woken higher-priority thread runs before the signaller goes on)",
    )
}

fn set_priority_reorders(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let a = env.spawn(logger, 1, 100)?;
    env.spawn(logger, 2, 150)?;
    a.tcb.set_priority(200).or_fail("TcbSetPriority 200")?;
    sync.settle()?;
    expect_log(
        &[1, 2],
        "order after raising the first thread above the second",
    )
}

fn yielder(v: u64) {
    for _ in 0..3 {
        log(v);
        libmk::yield_now();
    }
}

fn yield_rotates(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    for v in 1..=3 {
        env.spawn(yielder, v, 100)?;
    }
    sync.settle()?;
    expect_log(
        &[1, 2, 3, 1, 2, 3, 1, 2, 3],
        "order of three yielding threads",
    )
}

fn equal_priority_waits_for_yield(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    env.spawn(logger, 7, 255)?;
    expect_log(
        &[],
        "a priority-255 thread ran before init blocked or yielded",
    )?;
    libmk::yield_now();
    expect_log(&[7], "after init's Yield")?;
    sync.settle()
}

fn busy_high(_: u64) {
    let (start, _) = libmk::debug_ticks();
    let end = deadline(5);
    while libmk::debug_ticks().0 < start + 3 {
        if past(end) {
            set(6, 1);
            break;
        }
    }
    set(3, get(4) + 10);
}

fn low_flag(_: u64) {
    set(4, 1);
}

fn strict_priority(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    env.spawn(low_flag, 0, 100)?;
    env.spawn(busy_high, 0, 200)?;
    sync.settle()?;
    expect_eq(
        get(6),
        0,
        "timer ticks went on while a thread was busy (fail-safe hit)",
    )?;
    expect_eq(
        get(3),
        10,
        "the lower-priority thread ran while the higher one was busy (11) or never (0)",
    )?;
    expect_eq(get(4), 1, "the lower-priority thread ran afterwards")
}

/// Busy at equal priority with another `slicer`; counts switches between them in `R[21]`.
fn slicer(me: u64) {
    let end = deadline(10);
    let mut n = 0u64;
    loop {
        bump(me as usize);
        let last = R[20].swap(me, Ordering::SeqCst);
        if last != 0 && last != me {
            bump(21);
        }
        if get(21) >= 6 {
            break;
        }
        n += 1;
        if n.is_multiple_of(4096) && past(end) {
            set(22, 1);
            break;
        }
    }
    bump(10);
}

fn time_slicing(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    env.spawn(slicer, 1, 100)?;
    env.spawn(slicer, 2, 100)?;
    sync.settle()?;
    expect_eq(get(10), 2, "threads finished")?;
    ensure!(
        get(1) > 0 && get(2) > 0,
        "iterations {} and {}: one thread never ran",
        get(1),
        get(2)
    );
    ensure!(
        get(21) >= 6 && get(22) == 0,
        "{} switches between two busy threads before the 10 s fail-safe",
        get(21)
    );
    Ok(())
}

/// Slots of `R` for `interrupt_wake_goes_first`: the notification and the timer.
const WAKE_NTFN: usize = 12;
const WAKE_TIMER: usize = 13;

/// Waits for the timer's notification, logs 2.
fn timer_waiter(_: u64) {
    if Cap::<Notification>::from_cptr(get(WAKE_NTFN))
        .wait()
        .is_ok()
    {
        log(2);
    }
}

/// Arms the timer two ticks ahead and computes until it has fired, then logs 1 and yields.
fn timer_busy(_: u64) {
    let tick = libmk::debug_ticks().0 + 2;
    let n = Cap::<Notification>::from_cptr(get(WAKE_NTFN));
    if Cap::<Timer>::from_cptr(get(WAKE_TIMER))
        .arm(n, 1, tick)
        .is_err()
    {
        set(6, 2);
        return;
    }
    let end = deadline(5);
    while libmk::debug_ticks().0 <= tick {
        if past(end) {
            set(6, 1);
            break;
        }
    }
    log(1);
    libmk::yield_now();
}

fn timer_bystander(_: u64) {
    log(3);
}

/// A thread that an interrupt (here a timer tick) wakes does not preempt the running thread
/// of its priority, but it goes to the front of the queue: it runs next, before the threads
/// that were already waiting for their turn. (The file server runs at the tasks' priority; a
/// disk completion waits for at most one time slice of a task that computes, not one of
/// every such task.)
fn interrupt_wake_goes_first(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    set(WAKE_NTFN, env.notification()?.cptr());
    set(WAKE_TIMER, env.obj::<Timer>(ObjectType::Timer)?.cptr());
    env.spawn(timer_waiter, 0, 100)?;
    env.spawn(timer_busy, 0, 100)?;
    env.spawn(timer_bystander, 0, 100)?;
    sync.settle()?;
    expect_eq(
        get(6),
        0,
        "arming the timer failed (2) or it never fired (1)",
    )?;
    expect_log(
        &[1, 2, 3],
        "order of the busy thread (1), the thread the timer woke (2) and the one queued before (3)",
    )
}
