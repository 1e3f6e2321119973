//! CNode slots: a capability, its derivation-tree links, and the head of its mapping list.

use super::Obj;
use abi::Error;
use kernel_core::cap::{Cap, SlotFlags};
use kernel_core::mdb::SlotStore;

/// One capability slot (64 bytes; `abi::object::SLOT_BITS`).
///
/// `map_head` is the first of the translation-table entries mapped through this capability
/// (frames only), linked through the page tables' node arrays (see `vspace`).
#[derive(Debug)]
#[repr(C, align(64))]
pub struct Slot {
    pub cap: [u64; 2],
    pub mdb_prev: u64,
    pub mdb_next: u64,
    pub flags: u64,
    pub map_head: u64,
    /// For a slot inside a TCB: that TCB's address (0 in CNodes).
    pub owner: u64,
    /// For a zombie: the zombie slot to go back to when this one is done.
    pub zombie_parent: u64,
}

const _: () = assert!(core::mem::size_of::<Slot>() == 1 << abi::object::SLOT_BITS);

const REVOCABLE: u64 = 1;
const FIRST_BADGED: u64 = 2;

pub type SlotRef = Obj<Slot>;

impl Slot {
    pub fn cap(&self) -> Cap {
        Cap::decode(self.cap)
    }

    pub fn is_empty(&self) -> bool {
        matches!(self.cap(), Cap::Null)
    }
}

/// The kernel's slot storage, for the derivation-tree algorithms in `kernel_core::mdb`.
pub struct Slots;

impl SlotStore for Slots {
    type Id = SlotRef;

    fn cap(&self, s: SlotRef) -> Cap {
        s.get().cap()
    }

    fn flags(&self, s: SlotRef) -> SlotFlags {
        let f = s.get().flags;
        SlotFlags {
            revocable: f & REVOCABLE != 0,
            first_badged: f & FIRST_BADGED != 0,
        }
    }

    fn set(&mut self, s: SlotRef, cap: Cap, flags: SlotFlags) {
        let slot = s.get();
        slot.cap = cap.encode();
        slot.flags = (u64::from(flags.revocable) * REVOCABLE)
            | (u64::from(flags.first_badged) * FIRST_BADGED);
    }

    fn prev(&self, s: SlotRef) -> Option<SlotRef> {
        Obj::from_link(s.get().mdb_prev)
    }

    fn next(&self, s: SlotRef) -> Option<SlotRef> {
        Obj::from_link(s.get().mdb_next)
    }

    fn set_prev(&mut self, s: SlotRef, p: Option<SlotRef>) {
        s.get().mdb_prev = super::link(p);
    }

    fn set_next(&mut self, s: SlotRef, n: Option<SlotRef>) {
        s.get().mdb_next = super::link(n);
    }
}

/// Slot `index` of the CNode `cnode` (a CNode capability); `InvalidCapability` if the
/// capability is not a CNode or the index is out of range.
pub fn slot_in(cnode: Cap, index: u64) -> Result<SlotRef, Error> {
    match cnode {
        Cap::CNode { obj, radix } if index < (1u64 << radix) => {
            Ok(Obj::from_pa(obj + (index << abi::object::SLOT_BITS)))
        }
        _ => Err(Error::InvalidCapability),
    }
}

/// An empty slot `index` of `cnode`, for a new capability.
pub fn empty_slot_in(cnode: Cap, index: u64) -> Result<SlotRef, Error> {
    let slot = slot_in(cnode, index)?;
    if slot.get().is_empty() {
        Ok(slot)
    } else {
        Err(Error::SlotOccupied)
    }
}
