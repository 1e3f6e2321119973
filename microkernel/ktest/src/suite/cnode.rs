//! CNodes: copy, mint, move, delete, revoke, the derivation tree, other CNodes, errors.

use super::{
    Check, Env, OrFail, Outcome, code, expect_eq, expect_err, expect_fails, expect_type, get, set,
};
use crate::alloc::{CNODE, VSPACE};
use abi::Error;
use abi::object::{CapRights, CapType, MapFlags, ObjectType};
use libmk::{CNode, Cap, Endpoint, Message, Notification};

pub const CHECKS: &[Check] = &[
    ("copy", copy),
    ("copy-reduces-rights", copy_reduces_rights),
    ("mint-badge", mint_badge),
    ("mint-errors", mint_errors),
    ("move", move_cap),
    ("move-mapped-frame", move_mapped_frame),
    ("delete", delete),
    ("delete-last-endpoint-cap", delete_last_endpoint_cap),
    ("delete-last-notification-cap", delete_last_notification_cap),
    (
        "delete-cnode-deletes-contents",
        delete_cnode_deletes_contents,
    ),
    ("revoke-copies", revoke_copies),
    ("revoke-badged", revoke_badged),
    ("bad-slots", bad_slots),
    ("other-cnode", other_cnode),
    ("revoke-many", revoke_many),
    ("delete-deep-chain", delete_deep_chain),
    ("delete-self-referencing", delete_self_referencing),
];

fn ep(cptr: u64) -> Cap<Endpoint> {
    Cap::from_cptr(cptr)
}

fn copy(env: &mut Env) -> Outcome {
    let e = env.endpoint()?;
    let c = env.copy(e.cptr(), CapRights::ALL)?;
    expect_type(c, CapType::Endpoint, "the copy")?;
    expect_err(
        ep(c).nb_send(&Message::new(1, &[])),
        &[Error::WouldBlock],
        "NBSend through the copy",
    )?;
    let cc = env.copy(c, CapRights::ALL)?;
    expect_type(cc, CapType::Endpoint, "a copy of the copy")?;
    expect_type(e.cptr(), CapType::Endpoint, "the original")
}

fn copy_reduces_rights(env: &mut Env) -> Outcome {
    let e = env.endpoint()?;
    let r = env.copy(e.cptr(), CapRights::READ)?;
    expect_err(
        ep(r).nb_send(&Message::new(1, &[])),
        &[Error::InsufficientRights],
        "NBSend through a READ-only copy",
    )?;
    expect_err(
        ep(r).nb_recv(),
        &[Error::WouldBlock],
        "NBRecv through a READ-only copy",
    )?;
    let rr = env.copy(r, CapRights::ALL)?;
    expect_err(
        ep(rr).nb_send(&Message::new(1, &[])),
        &[Error::InsufficientRights],
        "NBSend through a copy (ALL) of a READ-only copy",
    )?;
    let w = env.copy(e.cptr(), CapRights::WRITE)?;
    expect_err(
        ep(w).nb_recv(),
        &[Error::InsufficientRights],
        "NBRecv through a WRITE-only copy",
    )?;
    expect_err(
        ep(w).nb_send(&Message::new(1, &[])),
        &[Error::WouldBlock],
        "NBSend through a WRITE-only copy",
    )
}

fn sender(packed: u64) {
    let r = ep(packed).send(&Message::new(0x77, &[packed]));
    set(0, code(&r));
}

fn mint_badge(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    let b = env.mint(e.cptr(), CapRights::ALL, 0x42)?;
    expect_type(b, CapType::Endpoint, "the badged copy")?;
    env.spawn(sender, b, 254)?;
    sync.settle()?;
    let r = e.nb_recv().or_fail("NBRecv the badged message")?;
    expect_eq(
        r.badge,
        0x42,
        "badge of a message sent through the minted capability",
    )?;
    expect_eq(r.info().label, 0x77, "label")?;
    env.spawn(sender, e.cptr(), 254)?;
    sync.settle()?;
    let r = e.nb_recv().or_fail("NBRecv the unbadged message")?;
    expect_eq(r.badge, 0, "badge of a message sent through the original")
}

fn mint_errors(env: &mut Env) -> Outcome {
    let e = env.endpoint()?;
    let s = env.slot()?;
    expect_err(
        CNODE.mint(s, CNODE, e.cptr(), CapRights::ALL, 0),
        &[Error::InvalidArgument],
        "mint with badge 0",
    )?;
    let b = env.mint(e.cptr(), CapRights::ALL, 5)?;
    expect_fails(
        CNODE.mint(s, CNODE, b, CapRights::ALL, 6),
        "mint from a badged capability",
    )?;
    let f = env.frame(12)?;
    expect_fails(
        CNODE.mint(s, CNODE, f.cptr(), CapRights::ALL, 6),
        "mint a frame capability",
    )?;
    expect_type(s, CapType::Null, "the destination after the failures")?;
    expect_err(
        CNODE.mint(b, CNODE, e.cptr(), CapRights::ALL, 7),
        &[Error::SlotOccupied],
        "mint into a full slot",
    )?;
    let n = env.notification()?;
    let nb = env.mint(n.cptr(), CapRights::ALL, 0x10)?;
    expect_type(nb, CapType::Notification, "a minted notification")
}

fn move_cap(env: &mut Env) -> Outcome {
    let e = env.endpoint()?;
    let d = env.slot()?;
    CNODE.move_cap(d, CNODE, e.cptr()).or_fail("CNodeMove")?;
    expect_type(e.cptr(), CapType::Null, "the source after the move")?;
    expect_type(d, CapType::Endpoint, "the destination after the move")?;
    expect_err(
        ep(d).nb_send(&Message::new(1, &[])),
        &[Error::WouldBlock],
        "NBSend through the moved capability",
    )?;
    let n = env.notification()?;
    expect_err(
        CNODE.move_cap(d, CNODE, n.cptr()),
        &[Error::SlotOccupied],
        "move onto a full slot",
    )?;
    expect_type(
        n.cptr(),
        CapType::Notification,
        "the source of the failed move",
    )?;
    let d2 = env.slot()?;
    expect_err(
        CNODE.move_cap(d2, CNODE, e.cptr()),
        &[Error::InvalidCapability],
        "move from an empty slot",
    )
}

fn move_mapped_frame(env: &mut Env) -> Outcome {
    let (f, va) = env.mapped_frame(12, MapFlags::RW)?;
    let d = env.slot()?;
    CNODE
        .move_cap(d, CNODE, f.cptr())
        .or_fail("move the mapped frame")?;
    let (pa, _) = VSPACE.query(va).or_fail("query after the move")?;
    let moved: Cap<libmk::Frame> = Cap::from_cptr(d);
    expect_eq(
        pa,
        moved.phys_addr().or_fail("FramePhysAddr")?.0,
        "the mapping's address",
    )?;
    moved
        .unmap()
        .or_fail("FrameUnmap through the moved capability")?;
    expect_err(
        VSPACE.query(va),
        &[Error::NotMapped],
        "query after FrameUnmap",
    )
}

fn delete(env: &mut Env) -> Outcome {
    let e = env.endpoint()?;
    let c = env.copy(e.cptr(), CapRights::ALL)?;
    CNODE.delete(c).or_fail("delete the copy")?;
    expect_type(c, CapType::Null, "the deleted slot")?;
    expect_err(
        ep(e.cptr()).nb_send(&Message::new(1, &[])),
        &[Error::WouldBlock],
        "NBSend through the original",
    )?;
    expect_err(
        ep(c).nb_send(&Message::new(1, &[])),
        &[Error::InvalidCapability],
        "NBSend through the deleted slot",
    )
}

fn recv_waiter(e: u64) {
    let r = ep(e).recv();
    set(0, code(&r));
    set(1, 1);
}

fn wait_waiter(n: u64) {
    let r = Cap::<Notification>::from_cptr(n).wait();
    set(0, code(&r));
    set(1, 1);
}

fn delete_last_endpoint_cap(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    let c = env.copy(e.cptr(), CapRights::ALL)?;
    env.spawn(recv_waiter, c, 254)?;
    sync.settle()?;
    expect_eq(get(1), 0, "the receiver returned before any send")?;
    CNODE.delete(e.cptr()).or_fail("delete the original")?;
    sync.settle()?;
    expect_eq(
        get(1),
        0,
        "the receiver woke though a capability to the endpoint is left",
    )?;
    CNODE.delete(c).or_fail("delete the last capability")?;
    sync.settle()?;
    expect_eq(get(1), 1, "the receiver woke")?;
    expect_eq(get(0), Error::ObjectDeleted.code(), "its Recv's error")
}

fn delete_last_notification_cap(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let n = env.notification()?;
    env.spawn(wait_waiter, n.cptr(), 254)?;
    sync.settle()?;
    CNODE.delete(n.cptr()).or_fail("delete the notification")?;
    sync.settle()?;
    expect_eq(get(1), 1, "the waiter woke")?;
    expect_eq(get(0), Error::ObjectDeleted.code(), "its Wait's error")
}

fn delete_cnode_deletes_contents(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let e = env.endpoint()?;
    let c: Cap<CNode> = env.a.obj(ObjectType::CNode, 2).or_fail("retype a CNode")?;
    env.spawn(recv_waiter, e.cptr(), 254)?;
    sync.settle()?;
    c.move_cap(1, CNODE, e.cptr())
        .or_fail("move the endpoint into the new CNode")?;
    sync.settle()?;
    expect_eq(get(1), 0, "the receiver woke when its endpoint moved")?;
    CNODE.delete(c.cptr()).or_fail("delete the CNode")?;
    sync.settle()?;
    expect_eq(
        get(1),
        1,
        "the receiver woke when the CNode holding the last endpoint cap went",
    )?;
    expect_eq(get(0), Error::ObjectDeleted.code(), "its Recv's error")
}

fn revoke_copies(env: &mut Env) -> Outcome {
    let n = env.notification()?;
    let a = env.copy(n.cptr(), CapRights::ALL)?;
    let b = env.copy(a, CapRights::ALL)?;
    let c = env.copy(n.cptr(), CapRights::READ)?;
    let other = env.notification()?;
    let d = env.copy(other.cptr(), CapRights::ALL)?;
    CNODE.revoke(n.cptr()).or_fail("revoke")?;
    for (s, what) in [
        (a, "a copy"),
        (b, "a copy of a copy"),
        (c, "a read-only copy"),
    ] {
        expect_type(s, CapType::Null, what)?;
    }
    expect_type(
        n.cptr(),
        CapType::Notification,
        "the revoked capability itself",
    )?;
    expect_type(d, CapType::Notification, "a copy of another notification")?;
    Cap::<Notification>::from_cptr(n.cptr())
        .signal()
        .or_fail("signal after revoke")?;
    expect_eq(n.poll().or_fail("poll")?, 1, "the word")
}

fn revoke_badged(env: &mut Env) -> Outcome {
    let e = env.endpoint()?;
    let b1 = env.mint(e.cptr(), CapRights::ALL, 1)?;
    let b2 = env.mint(e.cptr(), CapRights::ALL, 2)?;
    let b1c = env.copy(b1, CapRights::ALL)?;
    let b1cc = env.copy(b1c, CapRights::WRITE)?;
    CNODE.revoke(b1).or_fail("revoke the badged capability")?;
    expect_type(b1c, CapType::Null, "a copy of the badged capability")?;
    expect_type(b1cc, CapType::Null, "a copy of that copy")?;
    expect_type(b1, CapType::Endpoint, "the badged capability itself")?;
    expect_type(b2, CapType::Endpoint, "the other badged capability")?;
    expect_type(e.cptr(), CapType::Endpoint, "the original")?;
    CNODE.revoke(e.cptr()).or_fail("revoke the original")?;
    expect_type(
        b1,
        CapType::Null,
        "a badged capability after revoking the original",
    )?;
    expect_type(
        b2,
        CapType::Null,
        "the other badged capability after revoking the original",
    )
}

fn bad_slots(env: &mut Env) -> Outcome {
    let e = env.endpoint()?;
    let n = env.a.slot_count();
    let empty = env.slot()?;
    let inv = &[Error::InvalidCapability];
    expect_err(
        CNODE.copy(n, CNODE, e.cptr(), CapRights::ALL),
        inv,
        "copy to index = CNode size",
    )?;
    expect_err(
        CNODE.copy(empty, CNODE, n, CapRights::ALL),
        inv,
        "copy from index = CNode size",
    )?;
    expect_err(
        CNODE.copy(empty, CNODE, u64::MAX, CapRights::ALL),
        inv,
        "copy from index u64::MAX",
    )?;
    expect_err(
        CNODE.copy(empty, CNODE, empty, CapRights::ALL),
        inv,
        "copy from an empty slot",
    )?;
    expect_err(
        CNODE.copy(e.cptr(), CNODE, e.cptr(), CapRights::ALL),
        &[Error::SlotOccupied],
        "copy onto a full slot",
    )?;
    expect_err(
        CNODE.copy(empty, e.cast(), e.cptr(), CapRights::ALL),
        inv,
        "copy with an endpoint as the source CNode",
    )?;
    expect_err(CNODE.delete(n), inv, "delete index = CNode size")?;
    expect_err(CNODE.revoke(u64::MAX), inv, "revoke index u64::MAX")?;
    let want = &[Error::IllegalOperation, Error::InvalidCapability];
    expect_err(
        e.cast::<CNode>()
            .copy(empty, CNODE, e.cptr(), CapRights::ALL),
        want,
        "CNodeCopy invoked on an endpoint",
    )?;
    expect_err(
        Cap::<CNode>::from_cptr(empty).delete(e.cptr()),
        inv,
        "CNodeDelete invoked on an empty slot",
    )?;
    expect_type(e.cptr(), CapType::Endpoint, "the endpoint after all that")
}

fn other_cnode(env: &mut Env) -> Outcome {
    let c: Cap<CNode> = env
        .a
        .obj(ObjectType::CNode, 4)
        .or_fail("retype a radix-4 CNode")?;
    let n = env.notification()?;
    c.copy(3, CNODE, n.cptr(), CapRights::ALL)
        .or_fail("copy into the new CNode")?;
    expect_err(
        c.copy(3, CNODE, n.cptr(), CapRights::ALL),
        &[Error::SlotOccupied],
        "copy onto its full slot",
    )?;
    expect_err(
        c.copy(16, CNODE, n.cptr(), CapRights::ALL),
        &[Error::InvalidCapability],
        "copy to index 16 of a 16-slot CNode",
    )?;
    let back = env.slot()?;
    CNODE
        .copy(back, c, 3, CapRights::ALL)
        .or_fail("copy back from the new CNode")?;
    expect_type(back, CapType::Notification, "the capability copied back")?;
    expect_err(
        CNODE.copy(env.slot()?, c, 4, CapRights::ALL),
        &[Error::InvalidCapability],
        "copy from an empty slot of the new CNode",
    )?;
    c.delete(3).or_fail("delete in the new CNode")?;
    expect_err(
        CNODE.copy(env.slot()?, c, 3, CapRights::ALL),
        &[Error::InvalidCapability],
        "copy from the deleted slot",
    )?;
    CNODE.revoke(n.cptr()).or_fail("revoke the original")?;
    expect_type(
        back,
        CapType::Null,
        "the copy of a copy that lived in another CNode",
    )
}

fn revoke_many(env: &mut Env) -> Outcome {
    let c: Cap<CNode> = env
        .a
        .obj(ObjectType::CNode, 11)
        .or_fail("retype a radix-11 CNode")?;
    let n = env.notification()?;
    for i in 0..2048 {
        let src = if i % 2 == 0 { n.cptr() } else { i - 1 };
        let from = if i % 2 == 0 { CNODE } else { c };
        c.copy(i, from, src, CapRights::ALL)
            .map_err(|e| why!("copy {i}: {e:?}"))?;
    }
    CNODE.revoke(n.cptr()).or_fail("revoke 2048 copies")?;
    let probe = env.slot()?;
    for i in 0..2048 {
        ensure!(
            CNODE.copy(probe, c, i, CapRights::ALL) == Err(Error::InvalidCapability),
            "slot {i} of the CNode still holds a capability after the revoke"
        );
    }
    expect_type(
        n.cptr(),
        CapType::Notification,
        "the revoked capability itself",
    )
}

fn delete_deep_chain(env: &mut Env) -> Outcome {
    const DEPTH: usize = 64;
    let sync = env.sync()?;
    let e = env.endpoint()?;
    env.spawn(recv_waiter, e.cptr(), 254)?;
    sync.settle()?;
    let mut chain = [Cap::<CNode>::from_cptr(0); DEPTH];
    for c in chain.iter_mut() {
        *c = env
            .a
            .obj(ObjectType::CNode, 1)
            .or_fail("retype a radix-1 CNode")?;
    }
    chain[DEPTH - 1]
        .move_cap(0, CNODE, e.cptr())
        .or_fail("move the endpoint into the last CNode")?;
    for i in (0..DEPTH - 1).rev() {
        chain[i]
            .move_cap(1, CNODE, chain[i + 1].cptr())
            .map_err(|err| why!("move CNode {} into CNode {i}: {err:?}", i + 1))?;
    }
    sync.settle()?;
    expect_eq(
        get(1),
        0,
        "the receiver woke while the chain held its endpoint",
    )?;
    CNODE
        .delete(chain[0].cptr())
        .or_fail("delete the head of a chain of 64 CNodes")?;
    sync.settle()?;
    expect_eq(get(1), 1, "the receiver woke when the chain went")?;
    expect_eq(get(0), Error::ObjectDeleted.code(), "its Recv's error")
}

/// A CNode holding the last capability to itself (found by the fuzzer): when that
/// capability goes, every other slot of the CNode must still be emptied. The handler for an
/// unused INTID left in it would otherwise stay claimed, with the kernel's links pointing into
/// freed memory.
fn delete_self_referencing(env: &mut Env) -> Outcome {
    const INTID: u64 = 40;
    let irq_control = Cap::<libmk::IrqControl>::from_cptr(abi::object::init_slots::IRQ_CONTROL);
    let u: Cap<libmk::Untyped> = env
        .a
        .obj(ObjectType::Untyped, 16)
        .or_fail("a child untyped")?;
    let f_slot = env.slot()?;
    u.retype(ObjectType::CNode, 2, CNODE, f_slot, 1)
        .or_fail("retype the CNode")?;
    let f: Cap<CNode> = Cap::from_cptr(f_slot);
    f.copy(0, CNODE, f_slot, CapRights::ALL)
        .or_fail("copy the CNode into its own slot 0")?;
    irq_control
        .get(INTID, f, 1)
        .or_fail("IrqControlGet into the CNode's slot 1")?;
    CNODE
        .delete(f_slot)
        .or_fail("delete init's capability to the CNode")?;
    CNODE
        .revoke(u.cptr())
        .or_fail("revoke the untyped (deletes the CNode's last capability)")?;
    let s = env.slot()?;
    irq_control
        .get(INTID, CNODE, s)
        .or_fail("IrqControlGet again: the handler inside the CNode should be gone")?;
    CNODE.delete(s).or_fail("delete the new handler")
}
