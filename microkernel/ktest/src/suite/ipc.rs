//! IPC through endpoints: send/recv, call/reply, reply_recv, the non-blocking variants,
//! badges, long messages through the IPC buffer, rights, capability transfer, IPC between
//! address spaces, and saved replies (`SaveCaller`, then `Send` on the `Reply` capability).

use super::{
    Check, DONE_BADGE, Env, Event, OrFail, Outcome, code, expect_eq, expect_err, expect_type, get,
    init_ipc_buffer, set,
};
use crate::alloc::CNODE;
use crate::thread::Config;
use abi::Error;
use abi::message::{MAX_MRS, MsgInfo, NULL_CPTR};
use abi::object::{CapRights, CapType};
use core::sync::atomic::{AtomicU64, Ordering};
use libmk::{CNode, Cap, Endpoint, Message, Notification, SavedReply};

pub const CHECKS: &[Check] = &[
    ("send-recv", send_recv),
    ("recv-blocks-until-send", recv_blocks_until_send),
    ("send-blocks-until-recv", send_blocks_until_recv),
    ("call-reply", call_reply),
    ("reply-recv", reply_recv),
    ("nb-send-no-receiver", nb_send_no_receiver),
    ("nb-recv-no-sender", nb_recv_no_sender),
    ("nb-send-to-receiver", nb_send_to_receiver),
    ("badges", badges),
    ("long-message-to-init", long_message_to_init),
    ("long-message-to-thread", long_message_to_thread),
    ("no-ipc-buffer-truncates", no_ipc_buffer_truncates),
    (
        "receiver-without-buffer-truncates",
        receiver_without_buffer_truncates,
    ),
    ("rights", rights),
    ("cap-transfer-grant", cap_transfer_grant),
    ("cap-transfer-no-grant", cap_transfer_no_grant),
    ("cap-transfer-declined", cap_transfer_declined),
    ("cap-transfer-in-reply", cap_transfer_in_reply),
    (
        "cap-transfer-in-reply-fast-path",
        cap_transfer_in_reply_fast_path,
    ),
    ("reply-without-caller", reply_without_caller),
    ("reply-target-replaced", reply_target_replaced),
    ("call-across-vspaces", call_across_vspaces),
    ("long-message-across-vspaces", long_message_across_vspaces),
    ("debug-counters", debug_counters),
    ("save-caller-none", save_caller_none),
    ("save-caller-reply", save_caller_reply),
    ("save-caller-bad-slot", save_caller_bad_slot),
    ("saved-reply-not-replied-by-reply-recv", saved_reply_recv),
    ("saved-reply-long-message", saved_reply_long_message),
    ("saved-reply-deleted", saved_reply_deleted),
    ("saved-reply-cnode-deleted", saved_reply_cnode_deleted),
    ("saved-reply-caller-suspended", saved_reply_caller_suspended),
    ("saved-reply-caller-destroyed", saved_reply_caller_destroyed),
    ("saved-reply-not-copied", saved_reply_not_copied),
    ("saved-reply-moved", saved_reply_moved),
    ("saved-reply-cap-transfer", saved_reply_cap_transfer),
    ("saved-replies-64-any-order", saved_replies_many),
];

fn ep(c: u64) -> Cap<Endpoint> {
    Cap::from_cptr(c)
}

const SIX: [u64; 6] = [0x10, 0x11, 0x12, 0x13, 0x14, 0x15];

fn six_sender(e: u64) {
    let r = ep(e).send(&Message::new(0x55, &SIX));
    set(0, code(&r));
    set(1, 1);
}

fn send_recv(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    env.spawn(six_sender, e.cptr(), 254)?;
    sync.settle()?;
    expect_eq(get(1), 0, "the sender returned before a receiver came")?;
    let r = e.nb_recv().or_fail("NBRecv from the waiting sender")?;
    expect_eq(r.info().label, 0x55, "label")?;
    expect_eq(r.info().length, 6, "length")?;
    expect_eq(r.info().caps, 0, "caps")?;
    expect_eq(r.mrs, SIX, "MR0..MR5")?;
    expect_eq(r.badge, 0, "badge of an unbadged capability")?;
    sync.settle()?;
    expect_eq((get(1), get(0)), (1, 0), "sender done, its error")
}

fn six_receiver(e: u64) {
    let r = ep(e).recv();
    set(0, code(&r));
    if let Ok(r) = r {
        set(2, r.info().label);
        set(3, r.info().length as u64);
        set(4, r.mrs[0]);
        set(5, r.mrs[5]);
        set(6, r.badge);
    }
    set(1, 1);
}

fn recv_blocks_until_send(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    let b = env.mint(e.cptr(), CapRights::ALL, 0x99)?;
    env.spawn(six_receiver, e.cptr(), 254)?;
    sync.settle()?;
    expect_eq(get(1), 0, "the receiver returned before a send")?;
    ep(b)
        .send(&Message::new(0x66, &SIX))
        .or_fail("Send to the waiting receiver")?;
    sync.settle()?;
    expect_eq(get(1), 1, "the receiver returned")?;
    expect_eq(
        [get(0), get(2), get(3), get(4), get(5), get(6)],
        [0, 0x66, 6, 0x10, 0x15, 0x99],
        "error, label, length, MR0, MR5, badge",
    )
}

fn send_blocks_until_recv(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    env.spawn(six_sender, e.cptr(), 254)?;
    sync.settle()?;
    expect_eq(get(1), 0, "the sender returned before a receiver came")?;
    let r = e.recv().or_fail("Recv")?;
    expect_eq(r.mrs, SIX, "MR0..MR5")?;
    sync.settle()?;
    expect_eq(get(1), 1, "the sender returned after the Recv")
}

fn caller(e: u64) {
    let r = ep(e).call(&Message::new(0x70, &[7, 8]));
    set(0, code(&r));
    if let Ok(r) = r {
        set(2, r.info().label);
        set(3, r.info().length as u64);
        set(4, r.mrs[0]);
        set(5, r.mrs[1]);
    }
    set(1, 1);
}

fn call_reply(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    env.spawn(caller, e.cptr(), 254)?;
    sync.settle()?;
    let r = e.nb_recv().or_fail("NBRecv the call")?;
    expect_eq(
        (r.info().label, r.mrs[0], r.mrs[1]),
        (0x70, 7, 8),
        "the call's label, MR0, MR1",
    )?;
    sync.settle()?;
    expect_eq(get(1), 0, "the caller returned before the reply")?;
    libmk::reply(&Message::new(0x71, &[70, 80])).or_fail("Reply")?;
    sync.settle()?;
    expect_eq(get(1), 1, "the caller returned")?;
    expect_eq(
        [get(0), get(2), get(3), get(4), get(5)],
        [0, 0x71, 2, 70, 80],
        "error, label, length, MR0, MR1 of the reply",
    )
}

fn three_calls(done: u64) {
    for i in 0..3u64 {
        match ep(done).call(&Message::new(0x80, &[i * 10])) {
            Ok(r) => set(2 + i as usize, r.mrs[0]),
            Err(e) => set(0, e.code()),
        }
    }
    set(1, 1);
}

fn reply_recv(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    env.spawn(three_calls, sync.done.cptr(), 254)?;
    let mut got = match sync.wait()? {
        Event::Msg(r) => r,
        Event::Idle => fail!("the first call did not arrive"),
    };
    for i in 0..3u64 {
        expect_eq(
            (got.badge, got.mrs[0]),
            (DONE_BADGE, i * 10),
            "call's badge and MR0",
        )?;
        let reply = Message::new(0, &[got.mrs[0] + 1]);
        got = sync.ep.reply_recv(&reply).or_fail("ReplyRecv")?;
        if i == 2 {
            expect_eq(
                got.badge,
                super::SENTINEL_BADGE,
                "after the last reply (nothing but the sentinel)",
            )?;
        }
    }
    expect_eq(
        [get(0), get(1), get(2), get(3), get(4)],
        [0, 1, 1, 11, 21],
        "caller's error, done, replies",
    )
}

fn nb_send_no_receiver(env: &mut Env) -> Outcome {
    let e = env.endpoint()?;
    expect_err(
        e.nb_send(&Message::new(1, &[1])),
        &[Error::WouldBlock],
        "NBSend",
    )
}

fn nb_recv_no_sender(env: &mut Env) -> Outcome {
    let e = env.endpoint()?;
    expect_err(e.nb_recv(), &[Error::WouldBlock], "NBRecv")?;
    let e2 = env.endpoint()?;
    expect_err(
        e2.nb_recv(),
        &[Error::WouldBlock],
        "NBRecv on another endpoint",
    )
}

fn nb_send_to_receiver(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    env.spawn(six_receiver, e.cptr(), 254)?;
    sync.settle()?;
    e.nb_send(&Message::new(0x67, &SIX))
        .or_fail("NBSend to a waiting receiver")?;
    sync.settle()?;
    expect_eq(
        [get(1), get(0), get(2), get(4)],
        [1, 0, 0x67, 0x10],
        "receiver done, error, label, MR0",
    )?;
    expect_err(
        e.nb_send(&Message::new(1, &[])),
        &[Error::WouldBlock],
        "a second NBSend",
    )
}

fn badges(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    let b1 = env.mint(e.cptr(), CapRights::ALL, 0x11)?;
    let b2 = env.mint(e.cptr(), CapRights::WRITE, 0x22)?;
    env.spawn(six_sender, b1, 254)?;
    env.spawn(six_sender, b2, 254)?;
    sync.settle()?;
    let r1 = e.nb_recv().or_fail("first NBRecv")?;
    let r2 = e.nb_recv().or_fail("second NBRecv")?;
    let mut got = [r1.badge, r2.badge];
    got.sort_unstable();
    expect_eq(got, [0x11, 0x22], "the two badges")?;
    expect_err(e.nb_recv(), &[Error::WouldBlock], "a third NBRecv")
}

fn long_value(i: usize) -> u64 {
    0x1000 + (i as u64) * 3
}

fn long_sender(e: u64) {
    let Some(buf) = libmk::ipc_buffer() else {
        set(9, 1);
        return;
    };
    for (i, mr) in buf.mrs.iter_mut().enumerate().skip(6) {
        *mr = long_value(i);
    }
    let mut mrs = [0; 6];
    for (i, mr) in mrs.iter_mut().enumerate() {
        *mr = long_value(i);
    }
    let r = ep(e).send(&Message {
        info: MsgInfo::new(0x1234, MAX_MRS),
        mrs,
    });
    set(0, code(&r));
    set(1, 1);
}

fn check_long(info: MsgInfo, regs: [u64; 6], buf: &[u64; MAX_MRS]) -> Outcome {
    expect_eq(
        (info.label, info.length),
        (0x1234, MAX_MRS),
        "label and length",
    )?;
    for (i, &mr) in regs.iter().enumerate() {
        expect_eq(mr, long_value(i), "a register MR")?;
    }
    if let Some(i) = (6..MAX_MRS).find(|&i| buf[i] != long_value(i)) {
        fail!("MR{i} is {:#x}, expected {:#x}", buf[i], long_value(i));
    }
    Ok(())
}

fn long_message_to_init(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    env.spawn(long_sender, e.cptr(), 254)?;
    sync.settle()?;
    expect_eq(get(9), 0, "the sender has no IPC buffer")?;
    init_ipc_buffer().mrs = [0; MAX_MRS];
    let r = e.nb_recv().or_fail("NBRecv")?;
    check_long(r.info(), r.mrs, &init_ipc_buffer().mrs)
}

fn long_receiver(e: u64) {
    let r = ep(e).recv();
    set(0, code(&r));
    if let (Ok(r), Some(buf)) = (r, libmk::ipc_buffer()) {
        set(2, u64::from(check_long(r.info(), r.mrs, &buf.mrs).is_ok()));
    }
    set(1, 1);
}

fn long_message_to_thread(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    env.spawn(long_receiver, e.cptr(), 254)?;
    sync.settle()?;
    let buf = init_ipc_buffer();
    for (i, mr) in buf.mrs.iter_mut().enumerate() {
        *mr = long_value(i);
    }
    let mut mrs = [0; 6];
    mrs.copy_from_slice(&buf.mrs[..6]);
    e.send(&Message {
        info: MsgInfo::new(0x1234, MAX_MRS),
        mrs,
    })
    .or_fail("Send")?;
    sync.settle()?;
    expect_eq(
        [get(1), get(0), get(2)],
        [1, 0, 1],
        "receiver done, its error, message intact",
    )
}

fn ten_sender(e: u64) {
    let r = ep(e).send(&Message {
        info: MsgInfo::new(0x10, 10),
        mrs: SIX,
    });
    set(0, code(&r));
    set(1, 1);
}

fn no_ipc_buffer_truncates(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    env.spawn_cfg(
        Config {
            ipc_buffer: false,
            ..Config::new(254)
        },
        ten_sender,
        e.cptr(),
    )?;
    sync.settle()?;
    let r = e.nb_recv().or_fail("NBRecv")?;
    expect_eq(
        (r.info().label, r.info().length),
        (0x10, 6),
        "label and length of a 10-MR message from a thread without IPC buffer",
    )?;
    expect_eq(r.mrs, SIX, "MR0..MR5")
}

fn rights(env: &mut Env) -> Outcome {
    let e = env.endpoint()?;
    let r = env.copy(e.cptr(), CapRights::READ)?;
    let w = env.copy(e.cptr(), CapRights::WRITE)?;
    let ins = &[Error::InsufficientRights];
    expect_err(
        ep(r).send(&Message::new(1, &[])),
        ins,
        "Send through a READ-only capability",
    )?;
    expect_err(
        ep(r).call(&Message::new(1, &[])),
        ins,
        "Call through a READ-only capability",
    )?;
    expect_err(ep(w).recv(), ins, "Recv through a WRITE-only capability")?;
    let none = env.copy(e.cptr(), CapRights::NONE)?;
    expect_err(
        ep(none).nb_send(&Message::new(1, &[])),
        ins,
        "NBSend through a capability without rights",
    )?;
    expect_err(
        ep(none).nb_recv(),
        ins,
        "NBRecv through a capability without rights",
    )
}

/// Sends `R[5]` (a capability) with the message, through endpoint capability `e`.
fn cap_sender(e: u64) {
    let Some(buf) = libmk::ipc_buffer() else {
        set(9, 1);
        return;
    };
    buf.send_cap = get(5);
    let mut msg = Message::new(0x40, &[0xca9]);
    msg.info.caps = 1;
    let r = ep(e).send(&msg);
    set(0, code(&r));
    set(1, 1);
}

/// Runs `cap_sender` through `e_send` and receives on `e`; returns the message.
fn transfer(
    env: &mut Env,
    e: Cap<Endpoint>,
    e_send: u64,
    cap: u64,
    slot: u64,
) -> Result<libmk::Reply, super::Why> {
    let sync = env.sync()?;
    set(5, cap);
    env.spawn(cap_sender, e_send, 254)?;
    sync.settle()?;
    init_ipc_buffer().receive_slot = slot;
    let r = e.nb_recv().or_fail("NBRecv the message");
    init_ipc_buffer().receive_slot = NULL_CPTR;
    let r = r?;
    expect_eq(
        (r.info().label, r.mrs[0]),
        (0x40, 0xca9),
        "the message's label and MR0",
    )?;
    sync.settle()?;
    expect_eq((get(1), get(0)), (1, 0), "the sender done, its error")?;
    Ok(r)
}

fn cap_transfer_grant(env: &mut Env) -> Outcome {
    let e = env.endpoint()?;
    let n = env.notification()?;
    let slot = env.slot()?;
    let r = transfer(env, e, e.cptr(), n.cptr(), slot)?;
    expect_eq(r.info().caps, 1, "caps of the received message")?;
    expect_type(slot, CapType::Notification, "the receive slot")?;
    Cap::<Notification>::from_cptr(slot)
        .signal()
        .or_fail("signal through the received capability")?;
    expect_eq(n.poll().or_fail("poll the original")?, 1, "the word")?;
    CNODE
        .revoke(n.cptr())
        .or_fail("revoke the sender's capability")?;
    expect_type(
        slot,
        CapType::Null,
        "the received capability after revoking the sender's",
    )
}

fn cap_transfer_no_grant(env: &mut Env) -> Outcome {
    let e = env.endpoint()?;
    let rw = env.copy(e.cptr(), CapRights(CapRights::READ.0 | CapRights::WRITE.0))?;
    let n = env.notification()?;
    let slot = env.slot()?;
    let r = transfer(env, e, rw, n.cptr(), slot)?;
    expect_eq(r.info().caps, 0, "caps of a message sent without GRANT")?;
    expect_type(slot, CapType::Null, "the receive slot")
}

fn cap_transfer_declined(env: &mut Env) -> Outcome {
    let e = env.endpoint()?;
    let n = env.notification()?;
    let r = transfer(env, e, e.cptr(), n.cptr(), NULL_CPTR)?;
    expect_eq(r.info().caps, 0, "caps when the receiver accepts none")?;
    let full = env.endpoint()?;
    let r = transfer(env, e, e.cptr(), n.cptr(), full.cptr())?;
    expect_eq(r.info().caps, 0, "caps when the receive slot is full")?;
    expect_type(full.cptr(), CapType::Endpoint, "the full receive slot")
}

fn reply_without_caller(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    expect_err(
        libmk::reply(&Message::new(0, &[])),
        &[Error::NoReplyTarget],
        "Reply with no caller",
    )?;
    // A Send (not a Call) leaves nothing to reply to.
    let e = env.endpoint()?;
    env.spawn(six_sender, e.cptr(), 254)?;
    sync.settle()?;
    e.nb_recv().or_fail("NBRecv a Send")?;
    expect_err(
        libmk::reply(&Message::new(0, &[])),
        &[Error::NoReplyTarget],
        "Reply after receiving a Send",
    )
}

fn tagged_caller(tag: u64) {
    let done = ep(get(7));
    let r = done.call(&Message::new(0x90, &[tag]));
    set(tag as usize, r.map_or(0xbad, |r| r.mrs[0]));
}

fn reply_target_replaced(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    set(7, sync.done.cptr());
    env.spawn(tagged_caller, 1, 254)?;
    let first = match sync.wait()? {
        Event::Msg(r) => r,
        Event::Idle => fail!("the first call did not arrive"),
    };
    env.spawn(tagged_caller, 2, 254)?;
    let second = match sync.wait()? {
        Event::Msg(r) => r,
        Event::Idle => fail!("the second call did not arrive"),
    };
    expect_eq(
        (first.mrs[0], second.mrs[0]),
        (1, 2),
        "the callers' tags in order",
    )?;
    libmk::reply(&Message::new(0, &[0x2222])).or_fail("Reply")?;
    sync.settle()?;
    expect_eq(
        (get(1), get(2)),
        (0, 0x2222),
        "replies seen by the first and the second caller",
    )?;
    expect_err(
        libmk::reply(&Message::new(0, &[1])),
        &[Error::NoReplyTarget],
        "a second Reply",
    )
}

fn foreign_caller(done: u64) {
    let r = ep(done).call(&Message::new(0xf0, &[21, 0x5eed]));
    set(0, code(&r));
    if let Ok(r) = r {
        set(2, r.mrs[0]);
    }
    set(1, 1);
}

fn call_across_vspaces(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let (t, _space) = env.foreign_thread(Config::new(254))?;
    t.run(foreign_caller, sync.done.cptr())
        .or_fail("start the thread")?;
    let r = match sync.wait()? {
        Event::Msg(r) => r,
        Event::Idle => fail!("no call from the other address space"),
    };
    expect_eq(
        (r.info().label, r.mrs[0], r.mrs[1], r.badge),
        (0xf0, 21, 0x5eed, DONE_BADGE),
        "label, MR0, MR1, badge",
    )?;
    libmk::reply(&Message::new(0, &[42])).or_fail("Reply")?;
    sync.settle()?;
    expect_eq(
        [get(1), get(0), get(2)],
        [1, 0, 42],
        "caller done, error, reply (seen through shared .bss)",
    )
}

fn long_message_across_vspaces(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    let (t, _space) = env.foreign_thread(Config::new(254))?;
    t.run(long_sender, e.cptr()).or_fail("start the thread")?;
    sync.settle()?;
    expect_eq(get(9), 0, "the sender has no IPC buffer")?;
    init_ipc_buffer().mrs = [0; MAX_MRS];
    let r = e.nb_recv().or_fail("NBRecv")?;
    check_long(r.info(), r.mrs, &init_ipc_buffer().mrs)
}

fn receiver_without_buffer_truncates(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    let cfg = Config {
        ipc_buffer: false,
        ..Config::new(254)
    };
    env.spawn_cfg(cfg, six_receiver, e.cptr())?;
    sync.settle()?;
    init_ipc_buffer().mrs[6] = 0x66;
    e.send(&Message {
        info: MsgInfo::new(0x68, 10),
        mrs: SIX,
    })
    .or_fail("Send 10 MRs")?;
    sync.settle()?;
    expect_eq(
        [get(1), get(0), get(2), get(3), get(5)],
        [1, 0, 0x68, 6, 0x15],
        "done, error, label, length (cut to 6), MR5 at a receiver without IPC buffer",
    )
}

fn debug_counters(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let (t, _space) = env.foreign_thread(Config::new(254))?;
    let (e0, s0) = libmk::debug_counters();
    t.run(foreign_caller, sync.done.cptr())
        .or_fail("start the thread")?;
    match sync.wait()? {
        Event::Msg(_) => {}
        Event::Idle => fail!("no call from the other address space"),
    }
    libmk::reply(&Message::new(0, &[1])).or_fail("Reply")?;
    sync.settle()?;
    let (e1, s1) = libmk::debug_counters();
    ensure!(
        e1 >= e0 + 4,
        "kernel entries went from {e0} to {e1} over a call, a reply and more"
    );
    ensure!(
        s1 >= s0 + 2,
        "address-space switches went from {s0} to {s1} over a call to another VSpace and back"
    );
    Ok(())
}

/// Calls with its IPC buffer's receive slot set to shared word 6; records the reply's caps.
fn cap_caller(e: u64) {
    if let Some(b) = libmk::ipc_buffer() {
        b.receive_slot = get(6);
    }
    match ep(e).call(&Message::new(0x90, &[])) {
        Ok(r) => set(2, r.info().caps as u64),
        Err(er) => set(0, er.code()),
    }
    set(1, 1);
}

/// A reply carries a capability back to a caller whose endpoint capability has GRANT.
fn cap_transfer_in_reply(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    let n = env.notification()?;
    let slot = env.slot()?;
    set(6, slot);
    env.spawn(cap_caller, e.cptr(), 254)?;
    sync.settle()?;
    e.nb_recv().or_fail("NBRecv the call")?;
    init_ipc_buffer().send_cap = n.cptr();
    let mut m = Message::new(0x91, &[]);
    m.info.caps = 1;
    libmk::reply(&m).or_fail("Reply with a capability")?;
    sync.settle()?;
    expect_eq(
        (get(1), get(0), get(2)),
        (1, 0, 1),
        "caller done, its error, caps of the reply",
    )?;
    expect_type(slot, CapType::Notification, "the caller's receive slot")
}

/// A server already waiting in `Recv`: receives one call and replies with the capability
/// whose CPtr is in shared word 6.
fn cap_replier(e: u64) {
    match ep(e).recv() {
        Ok(_) => {
            if let Some(b) = libmk::ipc_buffer() {
                b.send_cap = get(6);
            }
            let mut m = Message::new(0x93, &[]);
            m.info.caps = 1;
            if let Err(er) = libmk::reply(&m) {
                set(0, er.code());
            }
        }
        Err(er) => set(0, er.code()),
    }
    set(1, 1);
}

/// The same through the Call fast path (the server waits first): the caller's GRANT must
/// survive the fast path so the reply can carry the capability (a bug the vm server found).
fn cap_transfer_in_reply_fast_path(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    let n = env.notification()?;
    let slot = env.slot()?;
    set(6, n.cptr());
    env.spawn(cap_replier, e.cptr(), 254)?;
    sync.settle()?;
    init_ipc_buffer().receive_slot = slot;
    let r = e.call(&Message::new(0x92, &[]));
    init_ipc_buffer().receive_slot = NULL_CPTR;
    let r = r.or_fail("Call the waiting server")?;
    expect_eq(r.info().caps, 1, "caps of the reply")?;
    expect_type(slot, CapType::Notification, "the caller's receive slot")?;
    sync.settle()?;
    expect_eq((get(1), get(0)), (1, 0), "the server done, its error")
}

// --- Saved replies ------------------------------------------------------------------------

fn saved(slot: u64) -> Cap<SavedReply> {
    Cap::from_cptr(slot)
}

/// Waits for a caller's `Call` at `e` (the caller is blocked in it) and saves its reply into
/// a new slot; returns the slot.
fn receive_and_save(env: &mut Env, e: Cap<Endpoint>) -> Result<u64, super::Why> {
    let r = e.nb_recv().or_fail("NBRecv the call")?;
    expect_eq(r.info().label, 0x70, "the call's label")?;
    let slot = env.slot()?;
    libmk::save_caller(slot).or_fail("SaveCaller")?;
    expect_type(slot, CapType::Reply, "the slot after SaveCaller")?;
    Ok(slot)
}

fn save_caller_none(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let slot = env.slot()?;
    expect_err(
        libmk::save_caller(slot),
        &[Error::NoReplyTarget],
        "SaveCaller with no caller",
    )?;
    expect_type(slot, CapType::Null, "the slot after a failed save")?;
    // A Send (not a Call) leaves nothing to save either.
    let e = env.endpoint()?;
    env.spawn(six_sender, e.cptr(), 254)?;
    sync.settle()?;
    e.nb_recv().or_fail("NBRecv a Send")?;
    expect_err(
        libmk::save_caller(slot),
        &[Error::NoReplyTarget],
        "SaveCaller after receiving a Send",
    )?;
    // Nor does a caller already answered.
    env.spawn(caller, e.cptr(), 254)?;
    sync.settle()?;
    e.nb_recv().or_fail("NBRecv the call")?;
    libmk::reply(&Message::new(0x71, &[1])).or_fail("Reply")?;
    expect_err(
        libmk::save_caller(slot),
        &[Error::NoReplyTarget],
        "SaveCaller after the reply",
    )?;
    expect_type(slot, CapType::Null, "the slot")
}

fn save_caller_reply(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    env.spawn(caller, e.cptr(), 254)?;
    sync.settle()?;
    let slot = receive_and_save(env, e)?;
    // The thread owes nothing now: a plain Reply finds no target and wakes nobody.
    expect_err(
        libmk::reply(&Message::new(0x72, &[1])),
        &[Error::NoReplyTarget],
        "Reply after saving the caller",
    )?;
    expect_err(
        libmk::save_caller(env.slot()?),
        &[Error::NoReplyTarget],
        "a second SaveCaller",
    )?;
    sync.settle()?;
    expect_eq(
        get(1),
        0,
        "the caller returned before the saved reply was used",
    )?;
    saved(slot)
        .send(&Message::new(0x71, &[70, 80]))
        .or_fail("Send on the saved reply")?;
    sync.settle()?;
    expect_eq(
        [get(1), get(0), get(2), get(3), get(4), get(5)],
        [1, 0, 0x71, 2, 70, 80],
        "caller done, error, label, length, MR0, MR1 of the reply",
    )?;
    expect_type(slot, CapType::Null, "the saved reply's slot after use")?;
    expect_err(
        saved(slot).send(&Message::new(0x71, &[])),
        &[Error::InvalidCapability],
        "a second Send on the used reply",
    )
}

fn save_caller_bad_slot(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    env.spawn(caller, e.cptr(), 254)?;
    sync.settle()?;
    e.nb_recv().or_fail("NBRecv the call")?;
    let full = env.endpoint()?;
    expect_err(
        libmk::save_caller(full.cptr()),
        &[Error::SlotOccupied],
        "SaveCaller into a full slot",
    )?;
    expect_type(full.cptr(), CapType::Endpoint, "the full slot")?;
    for past in [1 << 40, u64::MAX, NULL_CPTR - 1] {
        expect_err(
            libmk::save_caller(past),
            &[Error::InvalidCapability],
            "SaveCaller past the CSpace's end",
        )?;
    }
    // Nothing changed: the caller is still owed the reply, and gets it.
    libmk::reply(&Message::new(0x71, &[5])).or_fail("Reply after the failed saves")?;
    sync.settle()?;
    expect_eq(
        [get(1), get(0), get(4)],
        [1, 0, 5],
        "caller done, error, MR0",
    )
}

/// `ReplyRecv` after a save sends nothing to the saved caller (it only receives).
fn saved_reply_recv(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    env.spawn(caller, e.cptr(), 254)?;
    sync.settle()?;
    let slot = receive_and_save(env, e)?;
    let r = sync
        .ep
        .reply_recv(&Message::new(0x73, &[9]))
        .or_fail("ReplyRecv with nothing to reply to")?;
    expect_eq(r.badge, super::SENTINEL_BADGE, "what ReplyRecv received")?;
    expect_eq(get(1), 0, "the saved caller returned")?;
    saved(slot)
        .send(&Message::new(0x71, &[3]))
        .or_fail("Send on the saved reply")?;
    sync.settle()?;
    expect_eq(
        [get(1), get(0), get(4)],
        [1, 0, 3],
        "caller done, error, MR0",
    )
}

/// Calls `e` with a short message and checks a 64-word reply (`check_long`).
fn long_reply_caller(e: u64) {
    let r = ep(e).call(&Message::new(0x70, &[1]));
    set(0, code(&r));
    if let (Ok(r), Some(buf)) = (r, libmk::ipc_buffer()) {
        set(2, u64::from(check_long(r.info(), r.mrs, &buf.mrs).is_ok()));
    }
    set(1, 1);
}

fn saved_reply_long_message(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    env.spawn(long_reply_caller, e.cptr(), 254)?;
    sync.settle()?;
    let slot = receive_and_save(env, e)?;
    let buf = init_ipc_buffer();
    for (i, mr) in buf.mrs.iter_mut().enumerate() {
        *mr = long_value(i);
    }
    let mut mrs = [0; 6];
    mrs.copy_from_slice(&buf.mrs[..6]);
    saved(slot)
        .send(&Message {
            info: MsgInfo::new(0x1234, MAX_MRS),
            mrs,
        })
        .or_fail("Send 64 words on the saved reply")?;
    sync.settle()?;
    expect_eq(
        [get(1), get(0), get(2)],
        [1, 0, 1],
        "caller done, its error, the reply intact",
    )
}

fn saved_reply_deleted(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    env.spawn(caller, e.cptr(), 254)?;
    sync.settle()?;
    let slot = receive_and_save(env, e)?;
    CNODE
        .delete(slot)
        .or_fail("CNodeDelete of the saved reply")?;
    sync.settle()?;
    expect_eq(
        (get(1), get(0)),
        (1, Error::ObjectDeleted.code()),
        "the caller done, its error",
    )?;
    expect_err(
        saved(slot).send(&Message::new(0, &[])),
        &[Error::InvalidCapability],
        "Send on the deleted reply",
    )
}

fn saved_reply_cnode_deleted(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    let cn: Cap<CNode> = env
        .a
        .obj(abi::object::ObjectType::CNode, 2)
        .or_fail("retype a CNode")?;
    env.spawn(caller, e.cptr(), 254)?;
    sync.settle()?;
    e.nb_recv().or_fail("NBRecv the call")?;
    let slot = env.slot()?;
    libmk::save_caller(slot).or_fail("SaveCaller")?;
    cn.move_cap(3, CNODE, slot)
        .or_fail("CNodeMove of the saved reply into another CNode")?;
    sync.settle()?;
    expect_eq(
        get(1),
        0,
        "the caller returned before its CNode was deleted",
    )?;
    CNODE
        .delete(cn.cptr())
        .or_fail("CNodeDelete of the CNode's only capability")?;
    sync.settle()?;
    expect_eq(
        (get(1), get(0)),
        (1, Error::ObjectDeleted.code()),
        "the caller done, its error",
    )
}

fn saved_reply_caller_suspended(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    let t = env.spawn(caller, e.cptr(), 254)?;
    sync.settle()?;
    let slot = receive_and_save(env, e)?;
    t.tcb.suspend().or_fail("TcbSuspend the caller")?;
    expect_type(
        slot,
        CapType::Null,
        "the saved reply after its caller was suspended",
    )?;
    expect_err(
        saved(slot).send(&Message::new(0x71, &[1])),
        &[Error::InvalidCapability],
        "Send on the saved reply of a suspended caller",
    )?;
    sync.settle()?;
    expect_eq(get(1), 0, "the suspended caller ran")
}

fn saved_reply_caller_destroyed(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    let t = env.spawn(caller, e.cptr(), 254)?;
    sync.settle()?;
    let slot = receive_and_save(env, e)?;
    CNODE
        .delete(t.tcb.cptr())
        .or_fail("CNodeDelete of the caller's only TCB capability")?;
    expect_type(
        slot,
        CapType::Null,
        "the saved reply after its caller was destroyed",
    )?;
    expect_err(
        saved(slot).send(&Message::new(0x71, &[1])),
        &[Error::InvalidCapability],
        "Send on the saved reply of a destroyed caller",
    )?;
    // The next caller's saved reply works as usual.
    env.spawn(caller, e.cptr(), 254)?;
    sync.settle()?;
    let slot2 = receive_and_save(env, e)?;
    saved(slot2)
        .send(&Message::new(0x71, &[4]))
        .or_fail("Send on a new saved reply")?;
    sync.settle()?;
    expect_eq(
        [get(1), get(0), get(4)],
        [1, 0, 4],
        "new caller done, error, MR0",
    )
}

fn saved_reply_not_copied(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    env.spawn(caller, e.cptr(), 254)?;
    sync.settle()?;
    let slot = receive_and_save(env, e)?;
    let dest = env.slot()?;
    expect_err(
        CNODE.copy(dest, CNODE, slot, CapRights::ALL),
        &[Error::IllegalOperation],
        "CNodeCopy of a saved reply",
    )?;
    expect_err(
        CNODE.mint(dest, CNODE, slot, CapRights::ALL, 5),
        &[Error::IllegalOperation, Error::InvalidArgument],
        "CNodeMint of a saved reply",
    )?;
    expect_type(dest, CapType::Null, "the destination")?;
    expect_err(
        Cap::<Endpoint>::from_cptr(slot).call(&Message::new(0x71, &[1])),
        &[Error::InvalidCapability],
        "Call on a saved reply",
    )?;
    expect_err(
        Cap::<Endpoint>::from_cptr(slot).recv(),
        &[Error::InvalidCapability],
        "Recv on a saved reply",
    )?;
    expect_err(
        libmk::invoke(slot, abi::Invocation::CNodeDelete, &[0]),
        &[Error::IllegalOperation],
        "Invoke on a saved reply",
    )?;
    expect_type(slot, CapType::Reply, "the saved reply after all that")?;
    sync.settle()?;
    expect_eq(get(1), 0, "the caller returned")?;
    saved(slot)
        .send(&Message::new(0x71, &[6]))
        .or_fail("Send on the saved reply")?;
    sync.settle()?;
    expect_eq(
        [get(1), get(0), get(4)],
        [1, 0, 6],
        "caller done, error, MR0",
    )
}

fn saved_reply_moved(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    env.spawn(caller, e.cptr(), 254)?;
    sync.settle()?;
    let slot = receive_and_save(env, e)?;
    let moved = env.slot()?;
    CNODE
        .move_cap(moved, CNODE, slot)
        .or_fail("CNodeMove of the saved reply")?;
    expect_type(slot, CapType::Null, "the old slot")?;
    expect_type(moved, CapType::Reply, "the new slot")?;
    // Deleting the old (empty) slot wakes nobody.
    CNODE
        .delete(slot)
        .or_fail("CNodeDelete of the empty old slot")?;
    sync.settle()?;
    expect_eq(get(1), 0, "the caller returned")?;
    saved(moved)
        .send(&Message::new(0x71, &[7]))
        .or_fail("Send on the moved reply")?;
    sync.settle()?;
    expect_eq(
        [get(1), get(0), get(4)],
        [1, 0, 7],
        "caller done, error, MR0",
    )?;
    expect_type(moved, CapType::Null, "the new slot after use")?;
    // And a moved reply that is deleted wakes its caller with the error.
    set(1, 0);
    env.spawn(caller, e.cptr(), 254)?;
    sync.settle()?;
    let slot = receive_and_save(env, e)?;
    CNODE
        .move_cap(moved, CNODE, slot)
        .or_fail("CNodeMove of the second saved reply")?;
    CNODE
        .delete(moved)
        .or_fail("CNodeDelete of the moved reply")?;
    sync.settle()?;
    expect_eq(
        (get(1), get(0)),
        (1, Error::ObjectDeleted.code()),
        "the second caller done, its error",
    )
}

/// A reply through a saved reply carries a capability if the caller's endpoint capability
/// had GRANT, and none without.
fn saved_reply_cap_transfer(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    let n = env.notification()?;
    let rw = env.copy(e.cptr(), CapRights(CapRights::READ.0 | CapRights::WRITE.0))?;
    for (through, want) in [(e.cptr(), 1), (rw, 0)] {
        let recv_slot = env.slot()?;
        set(6, recv_slot);
        set(1, 0);
        env.spawn(cap_caller, through, 254)?;
        sync.settle()?;
        e.nb_recv().or_fail("NBRecv the call")?;
        let slot = env.slot()?;
        libmk::save_caller(slot).or_fail("SaveCaller")?;
        init_ipc_buffer().send_cap = n.cptr();
        let mut m = Message::new(0x91, &[]);
        m.info.caps = 1;
        saved(slot)
            .send(&m)
            .or_fail("Send with a capability on the saved reply")?;
        sync.settle()?;
        expect_eq(
            (get(1), get(0), get(2)),
            (1, 0, want),
            "caller done, its error, caps of the reply",
        )?;
        let ty = if want == 1 {
            CapType::Notification
        } else {
            CapType::Null
        };
        expect_type(recv_slot, ty, "the caller's receive slot")?;
    }
    Ok(())
}

/// Callers of `saved_replies_many`.
const MANY: usize = 64;
/// What each caller got back (0: nothing yet).
static MANY_GOT: [AtomicU64; MANY] = [const { AtomicU64::new(0) }; MANY];

fn numbered_caller(i: u64) {
    let r = ep(get(7)).call(&Message::new(0x70, &[i]));
    let v = match r {
        Ok(r) if r.mrs[1] == i => r.mrs[0],
        Ok(_) => 0xbad,
        Err(e) => 0xe000 + e.code(),
    };
    MANY_GOT[i as usize % MANY].store(v, Ordering::SeqCst);
}

/// 64 callers wait at once on saved replies, answered in a scrambled order; each gets its
/// own answer exactly when it is sent.
fn saved_replies_many(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    set(7, e.cptr());
    for g in &MANY_GOT {
        g.store(0, Ordering::SeqCst);
    }
    let cfg = Config {
        ipc_buffer: false,
        ..Config::new(254)
    };
    for i in 0..MANY as u64 {
        env.spawn_cfg(cfg, numbered_caller, i)?;
    }
    sync.settle()?;
    let mut slots = [0u64; MANY];
    for _ in 0..MANY {
        let r = e.nb_recv().or_fail("NBRecv a call")?;
        let i = r.mrs[0] as usize;
        ensure!(
            i < MANY && slots[i] == 0,
            "call with tag {i} twice or out of range"
        );
        slots[i] = env.slot()?;
        libmk::save_caller(slots[i]).or_fail("SaveCaller")?;
    }
    // 37 is prime to 64: i -> 37 i mod 64 visits every caller once, out of order.
    for k in 0..MANY {
        let i = (k * 37 + 11) % MANY;
        saved(slots[i])
            .send(&Message::new(0x71, &[0x1000 + i as u64, i as u64]))
            .or_fail("Send on a saved reply")?;
        if k == MANY / 2 {
            sync.settle()?;
            for (j, g) in MANY_GOT.iter().enumerate() {
                let answered = (0..=k).any(|kk| (kk * 37 + 11) % MANY == j);
                let got = g.load(Ordering::SeqCst);
                let want = if answered { 0x1000 + j as u64 } else { 0 };
                expect_eq(got, want, "a caller's answer halfway through")?;
            }
        }
    }
    sync.settle()?;
    for (i, g) in MANY_GOT.iter().enumerate() {
        expect_eq(
            g.load(Ordering::SeqCst),
            0x1000 + i as u64,
            "a caller's answer",
        )?;
        expect_type(slots[i], CapType::Null, "a used saved reply")?;
    }
    Ok(())
}
