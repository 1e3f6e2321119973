//! The IPC fast path: `Call` to a waiting server and `ReplyRecv` back to its client, when
//! the message fits in registers and carries no capability, and the thread woken may run at
//! once (no queued thread has a higher priority; the caller blocks). Everything else takes the general path in
//! `ipc`. The result is the same either way; this path only skips the general decoding and
//! the scheduler's search (as seL4's fastpath does).

use crate::ipc;
use crate::object::Obj;
use crate::object::endpoint::Endpoint;
use crate::object::notification::Notification;
use crate::object::tcb::{State, Tcb, TcbRef, send};
use crate::sched;
use abi::message::{REGISTER_MRS, fault_reply};
use abi::object::CapRights;
use kernel_core::cap::Cap;

/// `x1` low 16 bits: length ≤ 6 and no capability.
fn registers_only(info: u64) -> bool {
    info & 0xff00 == 0 && (info & 0xff) as usize <= REGISTER_MRS
}

/// The endpoint capability at `cptr` of `t`, if it has `right`: the endpoint, the badge,
/// and whether the capability has GRANT.
fn endpoint(t: TcbRef, cptr: u64, right: CapRights) -> Option<(Obj<Endpoint>, u64, bool)> {
    let slot = t.get().cspace_slot(cptr).ok()?;
    let (obj, badge, rights) = Cap::decode_endpoint(slot.get().cap)?;
    rights
        .contains(right)
        .then(|| (Obj::from_pa(obj), badge, rights.contains(CapRights::GRANT)))
}

/// Copies `x1` (info) and MR0..MR5 from `from` to `to`, with `badge` in `x8`.
fn copy_message(from: TcbRef, to: TcbRef, badge: u64) {
    let (f, t) = (&from.get().ctx, &mut to.get().ctx);
    t.x[0] = 0;
    ipc::copy_message_registers(&mut t.x, &f.x);
    t.x[1] = f.x[1];
    t.x[8] = badge;
}

/// `Call` by `t`; returns the server to switch to, or `None` for the general path.
pub fn call(t: TcbRef) -> Option<TcbRef> {
    let ctx = &t.get().ctx;
    if !registers_only(ctx.x[1]) {
        return None;
    }
    let (ep, badge, grant) = endpoint(t, ctx.x[0], CapRights::WRITE)?;
    let server = ep.get().first_in(State::BlockedRecv)?;
    if !sched::may_run_at_once(server) {
        return None;
    }
    ep.get().queue.remove(server);
    copy_message(t, server, badge);
    // As the general path: GRANT lets the reply carry a capability back.
    let flags = if grant {
        send::CALL | send::GRANT
    } else {
        send::CALL
    };
    ipc::await_reply(t, server, flags);
    sched::make_running(server);
    Some(server)
}

/// `ReplyRecv` by `t`; returns the client to switch to, or `None` for the general path.
pub fn reply_recv(t: TcbRef) -> Option<TcbRef> {
    let tcb = t.get();
    if !registers_only(tcb.ctx.x[1]) {
        return None;
    }
    // A signal waiting in the bound notification is what `Recv` returns first: the general
    // path delivers it. A bound notification with an empty word changes nothing here (the
    // thread blocks on the endpoint, and a later signal finds it there).
    if let Some(n) = Obj::<Notification>::from_link(tcb.bound_notification)
        && n.get().word != 0
    {
        return None;
    }
    let client = Obj::<Tcb>::from_link(tcb.reply_to)?;
    let c = client.get();
    if !sched::may_run_at_once(client) {
        return None;
    }
    let (ep, _, _) = endpoint(t, tcb.ctx.x[0], CapRights::READ)?;
    if ep.get().first_in(State::BlockedSend).is_some() {
        return None;
    }
    if c.send_flags & send::FAULT != 0 {
        // A fault reply: resume, maybe after mapping. A bad map item changes nothing; the
        // general path then reports it.
        match tcb.ctx.x[1] >> 16 {
            fault_reply::RESUME => {}
            fault_reply::REPLY_MAP => ipc::map_item(t, client).ok()?,
            _ => return None,
        }
    } else {
        copy_message(t, client, 0);
    }
    tcb.reply_to = 0;
    c.reply_from = 0;
    c.send_flags = 0;
    sched::make_running(client);
    tcb.blocked_on = ep.kva();
    sched::block(t, State::BlockedRecv);
    ep.get().queue.push_back(t);
    Some(client)
}
