//! Message passing: send, receive, call and reply on endpoints; signal and wait on
//! notifications; delivery of fault messages.
//!
//! A blocked sender keeps its message in its own registers (`x1` info, `x2`..`x7` MR0..MR5)
//! and IPC buffer until a receiver takes it; a faulting thread's message is in its TCB
//! (`fault_label`, `fault_mrs`), because its registers are its real state.
//!
//! A thread waiting for a reply (`BlockedReply`) is owed it either by a thread (its
//! `reply_from`, that thread's `reply_to` pointing back) or, once that thread saved it with
//! `SaveCaller`, by a `Reply` capability in a slot (its `reply_slot`, the capability
//! naming it). Every path that ends the wait clears both ends: the reply itself, deleting
//! the capability (the thread wakes with `ObjectDeleted`), suspending or destroying the
//! thread (the capability's slot is emptied), moving the capability (the link follows).

use crate::object::cnode::SlotRef;
use crate::object::endpoint::EndpointRef;
use crate::object::notification::NotificationRef;
use crate::object::tcb::{State, Tcb, TcbRef, send, slot};
use crate::object::{Obj, cnode, vspace};
use crate::sched;
use abi::message::{
    IpcBuffer, MAX_MRS, MsgInfo, NOTIFICATION_LABEL, NULL_CPTR, REGISTER_MRS, fault_reply,
};
use abi::object::CapRights;
use abi::{Error, message};
use kernel_core::cap::{Cap, Derivation, SlotFlags, derive};
use kernel_core::mdb;

/// The register that carries the badge (`x8`).
const BADGE_REG: usize = 8;

/// Copies MR0..MR5 (`x2`..`x7`) between register files, word by word (a `memcpy` call
/// would cost more than the copy on this path).
pub fn copy_message_registers(to: &mut [u64; 31], from: &[u64; 31]) {
    to[2] = from[2];
    to[3] = from[3];
    to[4] = from[4];
    to[5] = from[5];
    to[6] = from[6];
    to[7] = from[7];
}

/// Sets a thread's system call result (x0).
pub fn set_result(t: TcbRef, r: Result<(), Error>) {
    t.get().ctx.x[0] = match r {
        Ok(()) => 0,
        Err(e) => e.code(),
    };
}

/// `Send`/`NBSend`/`Call` by `sender` through capability `cap` (in `slot`): an endpoint,
/// or for `Send`/`NBSend` a saved reply.
pub fn send(
    sender: TcbRef,
    slot: SlotRef,
    cap: Cap,
    blocking: bool,
    call: bool,
) -> Result<(), Error> {
    let (obj, badge, rights) = match cap {
        Cap::Endpoint { obj, badge, rights } => (obj, badge, rights),
        Cap::Reply { tcb } if !call => return send_saved_reply(sender, slot, Obj::from_pa(tcb)),
        _ => return Err(Error::InvalidCapability),
    };
    if !rights.contains(CapRights::WRITE) {
        return Err(Error::InsufficientRights);
    }
    let mut flags = if call { send::CALL } else { 0 };
    if rights.contains(CapRights::GRANT) {
        flags |= send::GRANT;
    }
    deliver_or_block(sender, Obj::from_pa(obj), badge, flags, blocking)
}

/// Hands the sender's message to a waiting receiver, or queues the sender.
fn deliver_or_block(
    sender: TcbRef,
    ep: EndpointRef,
    badge: u64,
    flags: u64,
    blocking: bool,
) -> Result<(), Error> {
    let e = ep.get();
    if let Some(receiver) = e.first_in(State::BlockedRecv) {
        e.queue.remove(receiver);
        transfer(sender, receiver, badge, flags);
        sched::make_ready(receiver);
        if flags & (send::CALL | send::FAULT) != 0 {
            await_reply(sender, receiver, flags);
        } else {
            set_result(sender, Ok(()));
        }
        return Ok(());
    }
    if !blocking {
        return Err(Error::WouldBlock);
    }
    let s = sender.get();
    s.blocked_on = ep.kva();
    s.send_badge = badge;
    s.send_flags = flags;
    sched::block(sender, State::BlockedSend);
    ep.get().queue.push_back(sender);
    Ok(())
}

/// `sender` waits for `receiver`'s reply.
pub fn await_reply(sender: TcbRef, receiver: TcbRef, flags: u64) {
    if let Some(old) = Obj::<Tcb>::from_link(receiver.get().reply_to) {
        old.get().reply_from = 0;
    }
    receiver.get().reply_to = sender.kva();
    let s = sender.get();
    s.reply_from = receiver.kva();
    s.send_flags = flags;
    sched::block(sender, State::BlockedReply);
}

/// `Recv`/`NBRecv` by `receiver` on an endpoint or notification capability.
pub fn recv(receiver: TcbRef, cap: Cap, blocking: bool) -> Result<(), Error> {
    match cap {
        Cap::Notification { .. } => return wait(receiver, cap, blocking),
        Cap::Endpoint { rights, .. } if !rights.contains(CapRights::READ) => {
            return Err(Error::InsufficientRights);
        }
        Cap::Endpoint { .. } => {}
        _ => return Err(Error::InvalidCapability),
    }
    let Cap::Endpoint { obj, .. } = cap else {
        return Err(Error::InvalidCapability);
    };
    // A signal on the bound notification counts as a message.
    if let Some(n) = Obj::<crate::object::notification::Notification>::from_link(
        receiver.get().bound_notification,
    ) && n.get().word != 0
    {
        deliver_signal(receiver, core::mem::take(&mut n.get().word));
        return Ok(());
    }
    let ep: EndpointRef = Obj::from_pa(obj);
    let e = ep.get();
    if let Some(sender) = e.first_in(State::BlockedSend) {
        e.queue.remove(sender);
        let s = sender.get();
        let (badge, flags) = (s.send_badge, s.send_flags);
        transfer(sender, receiver, badge, flags);
        if flags & (send::CALL | send::FAULT) != 0 {
            // The sender left the ready queue when it blocked; it now waits for the reply.
            await_reply(sender, receiver, flags);
        } else {
            set_result(sender, Ok(()));
            s.state = State::Inactive;
            sched::make_ready(sender);
        }
        return Ok(());
    }
    if !blocking {
        return Err(Error::WouldBlock);
    }
    receiver.get().blocked_on = ep.kva();
    sched::block(receiver, State::BlockedRecv);
    ep.get().queue.push_back(receiver);
    Ok(())
}

/// Copies the message (registers, IPC-buffer words, maybe a capability) from `sender` to
/// `receiver` and sets the receiver's results.
fn transfer(sender: TcbRef, receiver: TcbRef, badge: u64, flags: u64) {
    let (s, r) = (sender.get(), receiver.get());
    let mut info = if flags & send::FAULT != 0 {
        let m = &s.fault_mrs;
        let x = &mut r.ctx.x;
        (x[2], x[3], x[4], x[5], x[6], x[7]) = (m[0], m[1], m[2], m[3], m[4], m[5]);
        MsgInfo::new(s.fault_label, s.fault_length as usize)
    } else {
        copy_message_registers(&mut r.ctx.x, &s.ctx.x);
        lenient_info(s.ctx.x[1])
    };
    info.length = copy_long_message(sender, receiver, info.length);
    info.caps =
        usize::from(info.caps == 1 && flags & send::GRANT != 0 && transfer_cap(sender, receiver));
    let r = receiver.get();
    r.ctx.x[0] = 0;
    r.ctx.x[1] = info.encode();
    r.ctx.x[BADGE_REG] = badge;
}

/// A message info from a user register, with out-of-range fields clamped.
fn lenient_info(word: u64) -> MsgInfo {
    MsgInfo {
        label: word >> 16,
        length: ((word & 0xff) as usize).min(MAX_MRS),
        caps: ((word >> 8) & 0xff).min(1) as usize,
    }
}

fn ipc_buffer(t: TcbRef) -> Option<&'static mut IpcBuffer> {
    Obj::<IpcBuffer>::from_link(t.get().ipc_buffer).map(|b| b.get())
}

/// Copies MR6.. between IPC buffers; returns the length actually delivered.
fn copy_long_message(sender: TcbRef, receiver: TcbRef, length: usize) -> usize {
    if length <= REGISTER_MRS {
        return length;
    }
    match (ipc_buffer(sender), ipc_buffer(receiver)) {
        (Some(s), Some(r)) => {
            r.mrs[REGISTER_MRS..length].copy_from_slice(&s.mrs[REGISTER_MRS..length]);
            length
        }
        _ => REGISTER_MRS,
    }
}

/// Moves a copy of the sender's `send_cap` into the receiver's `receive_slot`. False if
/// either side does not take part or the capability cannot be copied.
fn transfer_cap(sender: TcbRef, receiver: TcbRef) -> bool {
    let (Some(sb), Some(rb)) = (ipc_buffer(sender), ipc_buffer(receiver)) else {
        return false;
    };
    if rb.receive_slot == NULL_CPTR {
        return false;
    }
    let (Ok(src), Ok(dest)) = (
        sender.get().cspace_slot(sb.send_cap),
        receiver.get().cspace_slot(rb.receive_slot),
    ) else {
        return false;
    };
    if !dest.get().is_empty() {
        return false;
    }
    let src_cap = src.get().cap();
    if matches!(src_cap, Cap::Untyped { .. }) && mdb::has_children(&cnode::Slots, src) {
        return false;
    }
    match derive(
        &src_cap,
        Derivation::Copy {
            rights: CapRights::ALL,
        },
    ) {
        Ok((cap, flags)) if !matches!(cap, Cap::Null) => {
            mdb::insert_child(&mut cnode::Slots, src, dest, cap, flags);
            true
        }
        _ => false,
    }
}

/// `Reply` by `replier` with the message in its registers.
pub fn reply(replier: TcbRef) -> Result<(), Error> {
    let Some(caller) = Obj::<Tcb>::from_link(replier.get().reply_to) else {
        return Err(Error::NoReplyTarget);
    };
    deliver_reply(replier, caller)?;
    replier.get().reply_to = 0;
    Ok(())
}

/// `SaveCaller`: moves `server`'s pending reply target into the empty slot `dest` as a
/// `Reply` capability. `NoReplyTarget` if it has none.
pub fn save_caller(server: TcbRef, dest: SlotRef) -> Result<(), Error> {
    let Some(caller) = Obj::<Tcb>::from_link(server.get().reply_to) else {
        return Err(Error::NoReplyTarget);
    };
    server.get().reply_to = 0;
    let c = caller.get();
    c.reply_from = 0;
    c.reply_slot = dest.kva();
    // No parent and no children: a saved reply is no part of the derivation tree.
    mdb::insert_root(
        &mut cnode::Slots,
        dest,
        Cap::Reply { tcb: caller.pa() },
        SlotFlags::COPY,
    );
    Ok(())
}

/// `Send`/`NBSend` on the saved reply in `slot`, which names `caller`: the reply, as `Reply`
/// would deliver it; then the slot is empty. If the reply fails (a bad map item) nothing
/// changes: the capability stays and the caller keeps waiting.
fn send_saved_reply(replier: TcbRef, slot: SlotRef, caller: TcbRef) -> Result<(), Error> {
    let c = caller.get();
    if c.reply_slot != slot.kva() || c.state != State::BlockedReply {
        // Cannot happen while the two links are kept exact; refuse rather than wake a thread
        // that does not wait for this reply.
        return Err(Error::InvalidCapability);
    }
    deliver_reply(replier, caller)?;
    caller.get().reply_slot = 0;
    mdb::unlink(&mut cnode::Slots, slot);
    set_result(replier, Ok(()));
    Ok(())
}

/// The saved reply in `slot`, naming the thread at `tcb`, was deleted: the thread wakes with
/// `ObjectDeleted` (a faulted thread stays stopped, see [`wake_with_error`]).
pub fn saved_reply_deleted(tcb: u64, slot: SlotRef) {
    let t: TcbRef = Obj::from_pa(tcb);
    if t.get().reply_slot != slot.kva() {
        return;
    }
    t.get().reply_slot = 0;
    wake_with_error(t, Error::ObjectDeleted);
}

/// The saved reply naming the thread at `tcb` moved to slot `to`.
pub fn saved_reply_moved(tcb: u64, from: SlotRef, to: SlotRef) {
    let t = Obj::<Tcb>::from_pa(tcb).get();
    if t.reply_slot == from.kva() {
        t.reply_slot = to.kva();
    }
}

/// Delivers `replier`'s reply (message, or fault reply) to `caller`, which waits for it, and
/// makes `caller` runnable. On an error (a bad map item) nothing has changed.
fn deliver_reply(replier: TcbRef, caller: TcbRef) -> Result<(), Error> {
    let info = lenient_info(replier.get().ctx.x[1]);
    if caller.get().send_flags & send::FAULT != 0 {
        if info.label == fault_reply::REPLY_MAP {
            map_item(replier, caller)?;
        }
    } else {
        let (r, c) = (replier.get(), caller.get());
        copy_message_registers(&mut c.ctx.x, &r.ctx.x);
        let length = copy_long_message(replier, caller, info.length);
        // A capability may come back if the caller's endpoint capability had GRANT (its
        // right to hand capabilities over covers receiving one in the reply).
        let granted = caller.get().send_flags & send::GRANT != 0;
        let caps = usize::from(info.caps == 1 && granted && transfer_cap(replier, caller));
        let c = caller.get();
        c.ctx.x[0] = 0;
        c.ctx.x[1] = MsgInfo {
            length,
            caps,
            ..info
        }
        .encode();
        c.ctx.x[BADGE_REG] = 0;
    }
    let c = caller.get();
    c.reply_from = 0;
    c.send_flags = 0;
    c.state = State::Inactive;
    sched::make_ready(caller);
    Ok(())
}

/// Performs the map item of a fault reply: the replier's frame into the faulter's VSpace.
pub fn map_item(replier: TcbRef, faulter: TcbRef) -> Result<(), Error> {
    let x = &replier.get().ctx.x;
    let [frame, first_page, count, vaddr, flags] = [x[2], x[3], x[4], x[5], x[6]];
    let frame_slot = replier.get().cspace_slot(frame)?;
    let Cap::VSpace { obj } = faulter.get().cap_in(slot::VSPACE) else {
        return Err(Error::InvalidCapability);
    };
    let flags = abi::object::MapFlags::validate(flags).ok_or(Error::InvalidArgument)?;
    vspace::map_frame(frame_slot, obj, vaddr, flags, first_page, count, true)
}

/// `Signal` through notification capability `cap`.
pub fn signal(cap: Cap) -> Result<(), Error> {
    let Cap::Notification { obj, badge, rights } = cap else {
        return Err(Error::InvalidCapability);
    };
    if !rights.contains(CapRights::WRITE) {
        return Err(Error::InsufficientRights);
    }
    signal_object(Obj::from_pa(obj), if badge == 0 { 1 } else { badge });
    Ok(())
}

/// Signals `ntfn` with `bits` on behalf of a thread (`Signal`, a timer armed in the past):
/// a thread it wakes may run as soon as the signaller blocks, as after any IPC.
pub fn signal_object(ntfn: NotificationRef, bits: u64) {
    signal_waking(ntfn, bits, sched::make_ready);
}

/// Signals `ntfn` with `bits` for an interrupt or an expired timer: a thread it wakes goes
/// to the front of its priority's queue ([`sched::make_ready_queued`]), first in line but
/// behind the running thread and one an IPC wakes meanwhile.
pub fn signal_from_interrupt(ntfn: NotificationRef, bits: u64) {
    signal_waking(ntfn, bits, sched::make_ready_queued);
}

fn signal_waking(ntfn: NotificationRef, bits: u64, wake: fn(TcbRef)) {
    let n = ntfn.get();
    if let Some(waiter) = n.queue.pop_front() {
        let w = waiter.get();
        w.ctx.x[0] = 0;
        w.ctx.x[BADGE_REG] = n.word | bits;
        n.word = 0;
        w.state = State::Inactive;
        wake(waiter);
        return;
    }
    if let Some(bound) = Obj::<Tcb>::from_link(n.bound)
        && bound.get().state == State::BlockedRecv
        && let Some(ep) =
            Obj::<crate::object::endpoint::Endpoint>::from_link(bound.get().blocked_on)
    {
        ep.get().queue.remove(bound);
        let word = n.word | bits;
        n.word = 0;
        deliver_signal(bound, word);
        bound.get().state = State::Inactive;
        wake(bound);
        return;
    }
    n.word |= bits;
}

/// A bound notification's word arrives as a message.
fn deliver_signal(t: TcbRef, word: u64) {
    let c = &mut t.get().ctx;
    c.x[0] = 0;
    c.x[1] = MsgInfo::new(NOTIFICATION_LABEL, 0).encode();
    c.x[BADGE_REG] = word;
}

/// `Wait`/`Poll` (and `Recv` on a notification).
pub fn wait(t: TcbRef, cap: Cap, blocking: bool) -> Result<(), Error> {
    let Cap::Notification { obj, rights, .. } = cap else {
        return Err(Error::InvalidCapability);
    };
    if !rights.contains(CapRights::READ) {
        return Err(Error::InsufficientRights);
    }
    let ntfn: NotificationRef = Obj::from_pa(obj);
    let n = ntfn.get();
    if n.word != 0 {
        let c = &mut t.get().ctx;
        c.x[0] = 0;
        c.x[BADGE_REG] = core::mem::take(&mut n.word);
        return Ok(());
    }
    if !blocking {
        return Err(Error::WouldBlock);
    }
    t.get().blocked_on = ntfn.kva();
    sched::block(t, State::BlockedNotification);
    ntfn.get().queue.push_back(t);
    Ok(())
}

/// Sends a fault message for `t` to its fault endpoint; false if it has none (the caller
/// then suspends it).
pub fn send_fault(t: TcbRef, label: message::FaultLabel, mrs: [u64; 6], length: usize) -> bool {
    let Cap::Endpoint { obj, badge, rights } = t.get().cap_in(slot::FAULT_ENDPOINT) else {
        return false;
    };
    if !rights.contains(CapRights::WRITE) {
        return false;
    }
    let tcb = t.get();
    tcb.fault_label = label as u64;
    tcb.fault_length = length.min(REGISTER_MRS) as u64;
    let m = &mut tcb.fault_mrs;
    (m[0], m[1], m[2], m[3], m[4], m[5]) = (mrs[0], mrs[1], mrs[2], mrs[3], mrs[4], mrs[5]);
    let flags = send::FAULT
        | if rights.contains(CapRights::GRANT) {
            send::GRANT
        } else {
            0
        };
    deliver_or_block(t, Obj::from_pa(obj), badge, flags, true).is_ok()
}

/// Takes a thread out of whatever IPC it is in (suspend, destroy): its queue, its reply
/// links. A caller waiting on it for a reply wakes with `ObjectDeleted` if `wake_caller`.
pub fn cancel(t: TcbRef, wake_caller: bool) {
    let tcb = t.get();
    match tcb.state {
        State::BlockedSend | State::BlockedRecv => {
            if let Some(ep) = Obj::<crate::object::endpoint::Endpoint>::from_link(tcb.blocked_on) {
                ep.get().queue.remove(t);
            }
        }
        State::BlockedNotification => {
            if let Some(n) =
                Obj::<crate::object::notification::Notification>::from_link(tcb.blocked_on)
            {
                n.get().queue.remove(t);
            }
        }
        State::BlockedReply => {
            if let Some(replier) = Obj::<Tcb>::from_link(tcb.reply_from) {
                replier.get().reply_to = 0;
            }
            // A saved reply to it is now worth nothing: its slot is emptied.
            if let Some(saved) = Obj::from_link(tcb.reply_slot) {
                mdb::unlink(&mut cnode::Slots, saved);
            }
        }
        State::Ready | State::Inactive => {}
    }
    let tcb = t.get();
    tcb.blocked_on = 0;
    tcb.reply_from = 0;
    tcb.reply_slot = 0;
    if let Some(caller) = Obj::<Tcb>::from_link(core::mem::take(&mut tcb.reply_to)) {
        caller.get().reply_from = 0;
        if wake_caller {
            wake_with_error(caller, Error::ObjectDeleted);
        }
    }
}

/// Wakes a blocked thread with an error result; a faulted thread (whose registers must not
/// change) is suspended instead.
pub fn wake_with_error(t: TcbRef, e: Error) {
    let tcb = t.get();
    let faulted = tcb.send_flags & send::FAULT != 0;
    tcb.blocked_on = 0;
    tcb.send_flags = 0;
    if faulted {
        tcb.state = State::Inactive;
        return;
    }
    set_result(t, Err(e));
    tcb.state = State::Inactive;
    sched::make_ready(t);
}

/// Wakes every thread queued on an endpoint or notification being destroyed.
pub fn cancel_all(queue: &mut crate::object::endpoint::WaitQueue) {
    while let Some(t) = queue.pop_front() {
        wake_with_error(t, Error::ObjectDeleted);
    }
}

const _: () = assert!(2 + REGISTER_MRS == BADGE_REG);
