//! Notifications: signal, wait, poll, badges OR-ed together, rights, one waiter per signal,
//! and notifications bound to a thread waking its `Recv` on an endpoint.

use super::{Check, Env, OrFail, Outcome, code, expect_eq, expect_err, expect_fails, get, set};
use abi::Error;
use abi::message::NOTIFICATION_LABEL;
use abi::object::CapRights;
use libmk::{Cap, Endpoint, Message, Notification};

pub const CHECKS: &[Check] = &[
    ("signal-poll", signal_poll),
    ("badges-or", badges_or),
    ("wait-blocks-until-signal", wait_blocks_until_signal),
    ("recv-on-notification", recv_on_notification),
    ("signal-wakes-one", signal_wakes_one),
    ("rights", rights),
    ("bound-wakes-recv", bound_wakes_recv),
    ("bound-pending-signal", bound_pending_signal),
    ("bound-still-gets-messages", bound_still_gets_messages),
    ("unbind", unbind),
    ("bind-errors", bind_errors),
];

fn ntfn(c: u64) -> Cap<Notification> {
    Cap::from_cptr(c)
}

fn signal_poll(env: &mut Env) -> Outcome {
    let n = env.notification()?;
    expect_err(n.poll(), &[Error::WouldBlock], "Poll of a new notification")?;
    n.signal().or_fail("Signal")?;
    n.signal().or_fail("Signal again")?;
    expect_eq(
        n.poll().or_fail("Poll")?,
        1,
        "the word after unbadged signals",
    )?;
    expect_err(
        n.poll(),
        &[Error::WouldBlock],
        "Poll after the word was taken",
    )
}

fn badges_or(env: &mut Env) -> Outcome {
    let n = env.notification()?;
    let mut want = 0;
    for badge in [0x1, 0x2, 0x40, 0x8000_0000_0000_0000] {
        let b = env.mint(n.cptr(), CapRights::ALL, badge)?;
        ntfn(b)
            .signal()
            .or_fail("Signal through a badged capability")?;
        want |= badge;
    }
    expect_eq(n.wait().or_fail("Wait")?, want, "the word (badges OR-ed)")?;
    expect_err(
        n.poll(),
        &[Error::WouldBlock],
        "Poll after Wait took the word",
    )
}

fn waiter(n: u64) {
    let r = ntfn(n).wait();
    set(0, code(&r));
    set(2, r.unwrap_or(0));
    set(1, 1);
}

fn wait_blocks_until_signal(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let n = env.notification()?;
    let b = env.mint(n.cptr(), CapRights::ALL, 0x30)?;
    env.spawn(waiter, n.cptr(), 254)?;
    sync.settle()?;
    expect_eq(get(1), 0, "the waiter returned before a signal")?;
    ntfn(b).signal().or_fail("Signal")?;
    sync.settle()?;
    expect_eq(
        [get(1), get(0), get(2)],
        [1, 0, 0x30],
        "waiter done, error, word",
    )?;
    expect_err(
        n.poll(),
        &[Error::WouldBlock],
        "Poll after the waiter took the word",
    )
}

fn recv_on_notification(env: &mut Env) -> Outcome {
    let n = env.notification()?;
    let b = env.mint(n.cptr(), CapRights::ALL, 0x5)?;
    ntfn(b).signal().or_fail("Signal")?;
    expect_eq(n.recv().or_fail("Recv on a notification")?, 0x5, "the word")?;
    expect_err(
        n.poll(),
        &[Error::WouldBlock],
        "Poll after Recv took the word",
    )
}

fn counting_waiter(n: u64) {
    if ntfn(n).wait().is_ok() {
        super::bump(1);
    }
}

fn signal_wakes_one(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let n = env.notification()?;
    env.spawn(counting_waiter, n.cptr(), 254)?;
    env.spawn(counting_waiter, n.cptr(), 254)?;
    sync.settle()?;
    expect_eq(get(1), 0, "waiters woken before a signal")?;
    n.signal().or_fail("Signal")?;
    sync.settle()?;
    expect_eq(get(1), 1, "waiters woken by one signal")?;
    n.signal().or_fail("Signal")?;
    sync.settle()?;
    expect_eq(get(1), 2, "waiters woken by two signals")
}

fn rights(env: &mut Env) -> Outcome {
    let n = env.notification()?;
    let r = env.copy(n.cptr(), CapRights::READ)?;
    let w = env.copy(n.cptr(), CapRights::WRITE)?;
    let ins = &[Error::InsufficientRights];
    expect_err(
        ntfn(r).signal(),
        ins,
        "Signal through a READ-only capability",
    )?;
    expect_err(ntfn(w).poll(), ins, "Poll through a WRITE-only capability")?;
    expect_err(ntfn(w).wait(), ins, "Wait through a WRITE-only capability")?;
    ntfn(w)
        .signal()
        .or_fail("Signal through a WRITE-only capability")?;
    expect_eq(
        ntfn(r)
            .poll()
            .or_fail("Poll through a READ-only capability")?,
        1,
        "the word",
    )
}

/// Receives on endpoint `R[5]` (its notification is bound); records what came.
fn bound_receiver(_: u64) {
    let r = Cap::<Endpoint>::from_cptr(get(5)).recv();
    set(0, code(&r));
    if let Ok(r) = r {
        set(2, r.info().label);
        set(3, r.info().length as u64);
        set(4, r.badge);
        set(6, r.mrs[0]);
    }
    super::bump(1);
}

/// A thread with `n` bound, not yet started.
fn bound_thread(env: &mut Env, n: Cap<Notification>) -> Result<crate::thread::Thread, super::Why> {
    let e = env.endpoint()?;
    set(5, e.cptr());
    let t = env.thread(crate::thread::Config::new(254), None)?;
    t.tcb.bind_notification(n).or_fail("TcbBindNotification")?;
    Ok(t)
}

fn bound_wakes_recv(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let n = env.notification()?;
    let b = env.mint(n.cptr(), CapRights::ALL, 0x8)?;
    let t = bound_thread(env, n)?;
    t.run(bound_receiver, 0).or_fail("start")?;
    sync.settle()?;
    expect_eq(get(1), 0, "the receiver returned before anything came")?;
    ntfn(b).signal().or_fail("Signal")?;
    sync.settle()?;
    expect_eq(
        [get(1), get(0), get(2), get(3), get(4)],
        [1, 0, NOTIFICATION_LABEL, 0, 0x8],
        "done, error, label, length, badge (word)",
    )?;
    expect_err(
        n.poll(),
        &[Error::WouldBlock],
        "Poll after the receiver took the word",
    )
}

fn bound_pending_signal(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let n = env.notification()?;
    let b = env.mint(n.cptr(), CapRights::ALL, 0x3)?;
    let t = bound_thread(env, n)?;
    ntfn(b).signal().or_fail("Signal")?;
    t.run(bound_receiver, 0).or_fail("start")?;
    sync.settle()?;
    expect_eq(
        [get(1), get(0), get(2), get(4)],
        [1, 0, NOTIFICATION_LABEL, 0x3],
        "done, error, label, word of a Recv with a signal already pending",
    )
}

fn bound_still_gets_messages(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let n = env.notification()?;
    let t = bound_thread(env, n)?;
    t.run(bound_receiver, 0).or_fail("start")?;
    sync.settle()?;
    Cap::<Endpoint>::from_cptr(get(5))
        .send(&Message::new(0x21, &[0x77]))
        .or_fail("Send")?;
    sync.settle()?;
    expect_eq(
        [get(1), get(0), get(2), get(6)],
        [1, 0, 0x21, 0x77],
        "done, error, label, MR0",
    )
}

fn unbind(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let n = env.notification()?;
    let t = bound_thread(env, n)?;
    t.tcb
        .unbind_notification()
        .or_fail("TcbUnbindNotification")?;
    t.run(bound_receiver, 0).or_fail("start")?;
    sync.settle()?;
    n.signal().or_fail("Signal")?;
    sync.settle()?;
    expect_eq(get(1), 0, "an unbound notification woke the Recv")?;
    expect_eq(
        n.poll().or_fail("Poll")?,
        1,
        "the word stayed in the notification",
    )
}

fn bind_errors(env: &mut Env) -> Outcome {
    let n = env.notification()?;
    let n2 = env.notification()?;
    let e = env.endpoint()?;
    let t = env.thread(crate::thread::Config::new(254), None)?;
    let t2 = env.thread(crate::thread::Config::new(254), None)?;
    expect_err(
        t.tcb.bind_notification(e.cast()),
        &[Error::InvalidCapability],
        "bind an endpoint",
    )?;
    t.tcb.bind_notification(n).or_fail("bind")?;
    expect_fails(t.tcb.bind_notification(n2), "bind a second notification")?;
    expect_fails(
        t2.tcb.bind_notification(n),
        "bind a notification bound to another thread",
    )?;
    t.tcb.unbind_notification().or_fail("unbind")?;
    t2.tcb
        .bind_notification(n)
        .or_fail("bind it to the other thread after the unbind")
}
