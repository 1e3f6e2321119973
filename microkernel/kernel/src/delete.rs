//! Deleting capabilities, destroying objects when their last capability goes, and revoke.
//!
//! Objects that contain capabilities (CNodes, TCBs) are emptied without recursion: the slot
//! whose deletion destroys such an object holds a Zombie while the object's own slots are
//! deleted, and a zombie found inside becomes the current one, remembering its parent in
//! `Slot::zombie_parent`. So the depth of nested CNodes costs no kernel stack. A container
//! may hold the zombie of itself (its last capability was in one of its own slots) or of an
//! ancestor: the scan skips zombies, and each is cleared when its own scan is done.

use crate::arch::cpu;
use crate::object::cnode::{SlotRef, Slots};
use crate::object::endpoint::Endpoint;
use crate::object::notification::Notification;
use crate::object::tcb::{self, State, Tcb, TcbRef};
use crate::object::{Obj, irq, timer, vspace};
use crate::{ipc, sched};
use kernel_core::cap::{Cap, SlotFlags, ZombieKind};
use kernel_core::mdb;

/// Deletes the capability in `slot` (and destroys its object if it was the last one).
pub fn delete(slot: SlotRef) {
    let Some(zombie) = delete_one(slot) else {
        return;
    };
    // `zombie` is a container being emptied; work depth-first through nested ones.
    let mut current = zombie;
    loop {
        match next_occupied(current) {
            Some(inner) => {
                if let Some(z) = delete_one(inner) {
                    z.get().zombie_parent = current.kva();
                    current = z;
                }
            }
            None => {
                let parent = core::mem::take(&mut current.get().zombie_parent);
                Slots.set_null(current);
                match Obj::from_link(parent) {
                    Some(p) => current = p,
                    None => return,
                }
            }
        }
    }
}

/// Deletes one capability. Returns the slot if it now holds a zombie whose contents must
/// be deleted next (a final CNode or TCB capability).
fn delete_one(slot: SlotRef) -> Option<SlotRef> {
    let cap = slot.get().cap();
    if matches!(cap, Cap::Null) {
        return None;
    }
    if matches!(cap, Cap::Frame { .. }) {
        vspace::unmap_all(slot);
    }
    let is_final = mdb::is_final(&Slots, slot);
    owner_hook(slot, &cap);
    mdb::unlink(&mut Slots, slot);
    if !is_final {
        return None;
    }
    match cap {
        Cap::Endpoint { obj, .. } => {
            ipc::cancel_all(&mut Obj::<Endpoint>::from_pa(obj).get().queue)
        }
        Cap::Notification { obj, .. } => destroy_notification(obj),
        Cap::VSpace { obj } => vspace::destroy_vspace(obj),
        Cap::PageTable { obj } => vspace::detach_table(obj),
        Cap::IrqHandler { intid } => irq::release(intid),
        Cap::Timer { obj } => timer::destroy(obj),
        Cap::Reply { tcb } => ipc::saved_reply_deleted(tcb, slot),
        Cap::Tcb { obj } => {
            detach_thread(Obj::from_pa(obj));
            return zombie(slot, obj, ZombieKind::Tcb);
        }
        Cap::CNode { obj, radix } => return zombie(slot, obj, ZombieKind::CNode { radix }),
        _ => {}
    }
    None
}

fn zombie(slot: SlotRef, obj: u64, kind: ZombieKind) -> Option<SlotRef> {
    let z = Cap::Zombie { obj, kind };
    next_in_container(&z, 0)?;
    Slots.set_raw(slot, z);
    Some(slot)
}

/// The next non-empty slot inside the object a zombie stands for. A zombie is never a
/// frame capability, so its `map_head` serves as the scan cursor: slots before it are empty.
fn next_occupied(zombie: SlotRef) -> Option<SlotRef> {
    let z = zombie.get();
    let (index, slot) = next_in_container(&z.cap(), z.map_head)?;
    z.map_head = index;
    Some(slot)
}

fn next_in_container(z: &Cap, from: u64) -> Option<(u64, SlotRef)> {
    let Cap::Zombie { obj, kind } = *z else {
        return None;
    };
    let count = match kind {
        ZombieKind::CNode { radix } => 1u64 << radix,
        ZombieKind::Tcb => tcb::slot::COUNT as u64,
    };
    // A zombie found inside is the one being emptied or one of its ancestors (an object that
    // held the last capability to itself, directly or through others): it is cleared when
    // its own scan ends, so the scan passes over it instead of deleting it from under itself.
    (from..count)
        .map(|i| (i, container_slot(obj, kind, i)))
        .find(|(_, s)| !matches!(s.get().cap(), Cap::Null | Cap::Zombie { .. }))
}

fn container_slot(obj: u64, kind: ZombieKind, i: u64) -> SlotRef {
    match kind {
        ZombieKind::CNode { .. } => Obj::from_pa(obj + (i << abi::object::SLOT_BITS)),
        ZombieKind::Tcb => Tcb::slot_ref(Obj::from_pa(obj), i as usize),
    }
}

/// When a capability inside a TCB goes, the thread stops using it.
fn owner_hook(slot: SlotRef, cap: &Cap) {
    let Some(owner) = Obj::<Tcb>::from_link(slot.get().owner) else {
        return;
    };
    let t = owner.get();
    match cap {
        Cap::Frame { .. } if Tcb::slot_ref(owner, tcb::slot::IPC_BUFFER) == slot => {
            t.ipc_buffer = 0
        }
        Cap::VSpace { .. } if Tcb::slot_ref(owner, tcb::slot::VSPACE) == slot => suspend(owner),
        _ => {}
    }
}

fn destroy_notification(obj: u64) {
    let n: Obj<Notification> = Obj::from_pa(obj);
    ipc::cancel_all(&mut n.get().queue);
    if let Some(t) = Obj::<Tcb>::from_link(core::mem::take(&mut n.get().bound)) {
        t.get().bound_notification = 0;
    }
    irq::forget_notification(n.kva());
    timer::forget_notification(n.kva());
}

/// Stops a thread: out of every queue, reply links cut.
pub fn suspend(t: TcbRef) {
    ipc::cancel(t, false);
    let tcb = t.get();
    if tcb.state == State::Ready {
        sched::dequeue(t);
    }
    tcb.state = State::Inactive;
    tcb.send_flags = 0;
}

/// A thread whose TCB is destroyed: stopped, unbound, forgotten by the scheduler.
fn detach_thread(t: TcbRef) {
    ipc::cancel(t, true);
    let tcb = t.get();
    if tcb.state == State::Ready {
        sched::dequeue(t);
    }
    tcb.state = State::Inactive;
    if let Some(n) = Obj::<Notification>::from_link(core::mem::take(&mut tcb.bound_notification)) {
        n.get().bound = 0;
    }
    sched::forget(t);
}

/// Deletes everything derived from the capability in `slot`. Stops early (returning
/// `Err(())`) when an interrupt is pending, so the caller can restart the call afterwards.
pub fn revoke(slot: SlotRef) -> Result<(), ()> {
    while let Some(child) = mdb::first_child(&Slots, slot) {
        delete(child);
        if cpu::interrupt_pending() {
            return Err(());
        }
    }
    Ok(())
}

/// Helpers on slots that bypass the derivation tree (zombies are not in it).
trait RawSlots {
    fn set_raw(&self, slot: SlotRef, cap: Cap);
    fn set_null(&self, slot: SlotRef);
}

impl RawSlots for Slots {
    fn set_raw(&self, slot: SlotRef, cap: Cap) {
        let s = slot.get();
        s.cap = cap.encode();
        s.flags = 0;
        s.mdb_prev = 0;
        s.mdb_next = 0;
        s.map_head = 0;
    }

    fn set_null(&self, slot: SlotRef) {
        self.set_raw(slot, Cap::Null);
    }
}

/// Moves the capability in `from` to the empty slot `to`, with its links and mappings.
pub fn move_cap(from: SlotRef, to: SlotRef) {
    let cap = from.get().cap();
    owner_hook(from, &cap);
    mdb::move_slot(&mut Slots, from, to);
    vspace::move_mappings(from, to);
    if let Cap::Reply { tcb } = cap {
        ipc::saved_reply_moved(tcb, from, to);
    }
}

/// A new original capability (boot, retype, IrqControlGet) as the child of `parent`, or as a
/// root of the derivation tree.
pub fn insert(parent: Option<SlotRef>, slot: SlotRef, cap: Cap) {
    match parent {
        Some(p) => mdb::insert_child(&mut Slots, p, slot, cap, SlotFlags::ORIGINAL),
        None => mdb::insert_root(&mut Slots, slot, cap, SlotFlags::ORIGINAL),
    }
}
