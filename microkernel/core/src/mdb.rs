//! The capability derivation tree (seL4's mapping database): a doubly linked list of slots in
//! derivation order, generic over where slots live so it can be tested on the host.
//!
//! A capability's descendants are the run of slots right after it of which it
//! [`is_mdb_parent_of`]; so the tree needs no parent pointers, and revoke is
//! `while let Some(c) = first_child(t, s) { delete c }`.
//!
//! # Invariants
//!
//! Kept by these functions as long as their preconditions hold:
//! - `next(a) == Some(b)` exactly when `prev(b) == Some(a)`; following `next` never cycles.
//! - A Null slot is unlinked (no `prev`, no `next`).
//! - Every descendant of a capability follows it, contiguously: children come right after
//!   their parent (inserted there, moves keep list positions, and deleting a capability
//!   leaves its children under its parent). Hence all capabilities to one object are
//!   contiguous, and [`is_final`] need only look at the neighbours.
//! - Of untyped capabilities to the same range, all but the newest copy are full, and an
//!   untyped with no children has no live object in its range (every object being made by
//!   retype and linked under its untyped); so retype never hands out the same bytes twice.

use crate::cap::{Cap, SlotFlags, is_mdb_parent_of};

/// Slot storage: a capability, its flags and its two list links per slot.
pub trait SlotStore {
    type Id: Copy + Eq + core::fmt::Debug;
    fn cap(&self, s: Self::Id) -> Cap;
    fn flags(&self, s: Self::Id) -> SlotFlags;
    fn set(&mut self, s: Self::Id, cap: Cap, flags: SlotFlags);
    fn prev(&self, s: Self::Id) -> Option<Self::Id>;
    fn next(&self, s: Self::Id) -> Option<Self::Id>;
    fn set_prev(&mut self, s: Self::Id, p: Option<Self::Id>);
    fn set_next(&mut self, s: Self::Id, n: Option<Self::Id>);
}

/// Puts `cap` in `slot` and links it right after `parent`, so it becomes `parent`'s first
/// child if `parent` [`is_mdb_parent_of`] it, else a sibling under `parent`'s own parent.
/// `slot` must be Null (hence unlinked) and differ from `parent`.
///
/// A copy of an untyped capability takes over its memory: the source is marked full
/// (seL4's `setUntypedCapAsFull`), so two watermarks never hand out the same bytes. The
/// source can allocate again once the copy is gone and it has no children left.
pub fn insert_child<S: SlotStore>(
    t: &mut S,
    parent: S::Id,
    slot: S::Id,
    cap: Cap,
    flags: SlotFlags,
) {
    if let (
        Cap::Untyped {
            base,
            size_bits,
            device,
            ..
        },
        Cap::Untyped {
            base: b,
            size_bits: z,
            ..
        },
    ) = (t.cap(parent), cap)
        && (base, size_bits) == (b, z)
    {
        let full = Cap::Untyped {
            base,
            size_bits,
            // An untyped of 64 bits or more cannot exist; saturate rather than overflow.
            free_offset: 1u64.checked_shl(u32::from(size_bits)).unwrap_or(u64::MAX),
            device,
        };
        let parent_flags = t.flags(parent);
        t.set(parent, full, parent_flags);
    }
    let next = t.next(parent);
    t.set(slot, cap, flags);
    t.set_prev(slot, Some(parent));
    t.set_next(slot, next);
    t.set_next(parent, Some(slot));
    if let Some(n) = next {
        t.set_prev(n, Some(slot));
    }
}

/// Puts an original with no parent (a boot capability) in `slot`, unlinked. `slot` must be
/// Null.
pub fn insert_root<S: SlotStore>(t: &mut S, slot: S::Id, cap: Cap, flags: SlotFlags) {
    t.set(slot, cap, flags);
    t.set_prev(slot, None);
    t.set_next(slot, None);
}

/// Takes `slot` out of the list and makes it Null. Its children stay where they are, now
/// under its parent. (Destroying the object, if this was its last capability, is the
/// caller's business: check [`is_final`] first.)
pub fn unlink<S: SlotStore>(t: &mut S, slot: S::Id) {
    let (prev, next) = (t.prev(slot), t.next(slot));
    let flags = t.flags(slot);
    if let Some(p) = prev {
        t.set_next(p, next);
    }
    if let Some(n) = next {
        t.set_prev(n, prev);
        // As seL4's emptySlot: if this was the first capability with its badge, a copy of it
        // that follows takes over, so it does not become the child of an earlier sibling
        // with the same badge.
        let next_flags = t.flags(n);
        if flags.first_badged && !next_flags.first_badged {
            let next_flags = SlotFlags {
                first_badged: true,
                ..next_flags
            };
            let cap = t.cap(n);
            t.set(n, cap, next_flags);
        }
    }
    t.set(slot, Cap::Null, SlotFlags::default());
    t.set_prev(slot, None);
    t.set_next(slot, None);
}

/// Moves the capability in `from` to `to`, which takes its place in the list (so every
/// derivation relationship is kept); `from` becomes Null. `to` must be Null; moving a
/// slot onto itself does nothing.
pub fn move_slot<S: SlotStore>(t: &mut S, from: S::Id, to: S::Id) {
    if from == to {
        return;
    }
    let (prev, next) = (t.prev(from), t.next(from));
    t.set(to, t.cap(from), t.flags(from));
    t.set_prev(to, prev);
    t.set_next(to, next);
    if let Some(p) = prev {
        t.set_next(p, Some(to));
    }
    if let Some(n) = next {
        t.set_prev(n, Some(to));
    }
    t.set(from, Cap::Null, SlotFlags::default());
    t.set_prev(from, None);
    t.set_next(from, None);
}

/// The first child of `slot`: the next slot, if `slot` is its parent.
pub fn first_child<S: SlotStore>(t: &S, slot: S::Id) -> Option<S::Id> {
    let next = t.next(slot)?;
    is_mdb_parent_of(&t.cap(slot), t.flags(slot), &t.cap(next), t.flags(next)).then_some(next)
}

pub fn has_children<S: SlotStore>(t: &S, slot: S::Id) -> bool {
    first_child(t, slot).is_some()
}

/// Whether `slot` holds the last capability to its object, so deleting it must destroy the
/// object. Untyped capabilities are always final (they name no object).
pub fn is_final<S: SlotStore>(t: &S, slot: S::Id) -> bool {
    let cap = t.cap(slot);
    // Argument order as seL4's isFinalCapability: same_object_as is not symmetric.
    let prev_same = t.prev(slot).is_some_and(|p| t.cap(p).same_object_as(&cap));
    let next_same = t.next(slot).is_some_and(|n| cap.same_object_as(&t.cap(n)));
    !prev_same && !next_same
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::vec;
    use std::vec::Vec;

    use super::*;
    use crate::cap::{Derivation, derive};
    use crate::untyped::plan_retype;
    use abi::object::{CapRights, ObjectType};

    /// Slots in arrays, indexed by `usize`.
    struct Store {
        caps: Vec<Cap>,
        flags: Vec<SlotFlags>,
        prev: Vec<Option<usize>>,
        next: Vec<Option<usize>>,
    }

    impl Store {
        fn new(n: usize) -> Self {
            Self {
                caps: vec![Cap::Null; n],
                flags: vec![SlotFlags::default(); n],
                prev: vec![None; n],
                next: vec![None; n],
            }
        }

        fn free_slot(&self) -> Option<usize> {
            self.caps.iter().position(Cap::is_null)
        }

        /// The list in order from `s`'s head: for readable failures.
        fn chain(&self, mut s: usize) -> Vec<(usize, Cap)> {
            while let Some(p) = self.prev[s] {
                s = p;
            }
            let mut out = vec![(s, self.caps[s])];
            while let Some(n) = self.next[s] {
                s = n;
                out.push((s, self.caps[s]));
            }
            out
        }
    }

    impl SlotStore for Store {
        type Id = usize;
        fn cap(&self, s: usize) -> Cap {
            self.caps[s]
        }
        fn flags(&self, s: usize) -> SlotFlags {
            self.flags[s]
        }
        fn set(&mut self, s: usize, cap: Cap, flags: SlotFlags) {
            self.caps[s] = cap;
            self.flags[s] = flags;
        }
        fn prev(&self, s: usize) -> Option<usize> {
            self.prev[s]
        }
        fn next(&self, s: usize) -> Option<usize> {
            self.next[s]
        }
        fn set_prev(&mut self, s: usize, p: Option<usize>) {
            self.prev[s] = p;
        }
        fn set_next(&mut self, s: usize, n: Option<usize>) {
            self.next[s] = n;
        }
    }

    /// Links symmetric, no cycles, Null slots unlinked, every capability on exactly one
    /// list reached from its head.
    fn check_invariants(t: &Store) {
        let n = t.caps.len();
        for s in 0..n {
            if let Some(x) = t.next[s] {
                assert_eq!(
                    t.prev[x],
                    Some(s),
                    "next({s}) = {x} but prev({x}) = {:?}",
                    t.prev[x]
                );
            }
            if let Some(p) = t.prev[s] {
                assert_eq!(
                    t.next[p],
                    Some(s),
                    "prev({s}) = {p} but next({p}) = {:?}",
                    t.next[p]
                );
            }
            if t.caps[s].is_null() {
                assert_eq!(
                    (t.prev[s], t.next[s]),
                    (None, None),
                    "Null slot {s} is linked"
                );
            }
        }
        let mut seen = vec![false; n];
        for head in (0..n).filter(|&s| t.prev[s].is_none() && !t.caps[s].is_null()) {
            let mut s = head;
            let mut steps = 0;
            loop {
                assert!(!seen[s], "slot {s} reached twice");
                seen[s] = true;
                steps += 1;
                assert!(steps <= n, "cycle through {head}");
                match t.next[s] {
                    Some(x) => s = x,
                    None => break,
                }
            }
        }
        for (s, (seen, cap)) in seen.iter().zip(&t.caps).enumerate() {
            assert_eq!(*seen, !cap.is_null(), "slot {s} not reachable from a head");
        }
    }

    /// Descendants as the list sees them: the run after `s` that `s` is parent of.
    fn mdb_descendants(t: &Store, s: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut cur = t.next[s];
        while let Some(c) = cur {
            if !is_mdb_parent_of(&t.caps[s], t.flags[s], &t.caps[c], t.flags[c]) {
                break;
            }
            out.push(c);
            cur = t.next[c];
        }
        out.sort_unstable();
        out
    }

    fn revoke(t: &mut Store, s: usize) {
        while let Some(c) = first_child(t, s) {
            unlink(t, c);
        }
    }

    fn ep(obj: u64) -> Cap {
        Cap::Endpoint {
            obj,
            badge: 0,
            rights: CapRights::ALL,
        }
    }

    fn copy(t: &mut Store, src: usize) -> usize {
        derive_into(
            t,
            src,
            Derivation::Copy {
                rights: CapRights::ALL,
            },
        )
    }

    fn mint(t: &mut Store, src: usize, badge: u64) -> usize {
        derive_into(
            t,
            src,
            Derivation::Mint {
                rights: CapRights::ALL,
                badge,
            },
        )
    }

    fn derive_into(t: &mut Store, src: usize, how: Derivation) -> usize {
        let (cap, flags) = derive(&t.cap(src), how).unwrap();
        let slot = t.free_slot().unwrap();
        insert_child(t, src, slot, cap, flags);
        check_invariants(t);
        slot
    }

    #[test]
    fn copy_chain() {
        let mut t = Store::new(8);
        insert_root(&mut t, 0, ep(0x40), SlotFlags::ORIGINAL);
        let a = copy(&mut t, 0);
        let b = copy(&mut t, a);
        let c = copy(&mut t, b);
        // Copies of copies are all children of the original, and have none themselves.
        assert_eq!(mdb_descendants(&t, 0), [a, b, c]);
        for s in [a, b, c] {
            assert!(!has_children(&t, s));
            assert!(!is_final(&t, s));
        }
        assert_eq!(first_child(&t, 0), Some(a));
        revoke(&mut t, a);
        assert_eq!(mdb_descendants(&t, 0), [a, b, c]);
        revoke(&mut t, 0);
        check_invariants(&t);
        assert!(!has_children(&t, 0));
        assert!(is_final(&t, 0));
        assert_eq!(t.chain(0), [(0, ep(0x40))]);
        for s in [a, b, c] {
            assert_eq!((t.cap(s), t.flags(s)), (Cap::Null, SlotFlags::default()));
        }
    }

    #[test]
    fn badges() {
        let mut t = Store::new(16);
        insert_root(&mut t, 0, ep(0x40), SlotFlags::ORIGINAL);
        let m5 = mint(&mut t, 0, 5);
        let m5c = copy(&mut t, m5);
        let m5cc = copy(&mut t, m5c);
        let m6 = mint(&mut t, 0, 6);
        let m6c = copy(&mut t, m6);
        let other5 = mint(&mut t, 0, 5);
        let plain = copy(&mut t, 0);
        // 0, plain, other5, m6, m6c, m5, m5c, m5cc
        assert_eq!(mdb_descendants(&t, m5), [m5c, m5cc]);
        assert_eq!(mdb_descendants(&t, m6), [m6c]);
        assert!(
            mdb_descendants(&t, other5).is_empty(),
            "a second mint is not a child"
        );
        assert!(mdb_descendants(&t, plain).is_empty());
        assert_eq!(mdb_descendants(&t, 0).len(), 7);

        // Revoking a badged mint removes its copies only.
        revoke(&mut t, m5);
        check_invariants(&t);
        assert_eq!((t.cap(m5c), t.cap(m5cc)), (Cap::Null, Cap::Null));
        assert_eq!(t.cap(m5).badge(), 5);
        assert_eq!(t.cap(m6c).badge(), 6);
        assert_eq!(t.cap(other5).badge(), 5);

        // Revoking the unbadged original removes every mint and copy.
        revoke(&mut t, 0);
        check_invariants(&t);
        assert_eq!(t.chain(0), [(0, ep(0x40))]);
    }

    #[test]
    fn deleting_a_mint_hands_first_badged_to_its_copy() {
        let mut t = Store::new(8);
        insert_root(&mut t, 0, ep(0x40), SlotFlags::ORIGINAL);
        let m = mint(&mut t, 0, 5);
        let c = copy(&mut t, m);
        let m2 = mint(&mut t, 0, 5);
        // 0, m2, m, c
        assert!(mdb_descendants(&t, m2).is_empty());
        unlink(&mut t, m);
        check_invariants(&t);
        // 0, m2, c: c is now under the original, not under the other mint of badge 5.
        assert!(t.flags(c).first_badged);
        assert!(!t.flags(c).revocable);
        assert!(mdb_descendants(&t, m2).is_empty());
        assert_eq!(mdb_descendants(&t, 0), [c.min(m2), c.max(m2)]);
        revoke(&mut t, m2);
        assert_eq!(t.cap(c).badge(), 5);
    }

    #[test]
    fn untyped_objects_and_copies() {
        let mut t = Store::new(16);
        let u = Cap::Untyped {
            base: 0x10_0000,
            size_bits: 16,
            free_offset: 0,
            device: false,
        };
        insert_root(&mut t, 0, u, SlotFlags::ORIGINAL);
        assert!(is_final(&t, 0));
        // Retype: originals right after the untyped.
        insert_child(&mut t, 0, 1, ep(0x10_0000), SlotFlags::ORIGINAL);
        insert_child(
            &mut t,
            0,
            2,
            Cap::Tcb { obj: 0x10_0800 },
            SlotFlags::ORIGINAL,
        );
        check_invariants(&t);
        let e1 = copy(&mut t, 1);
        let e2 = copy(&mut t, e1);
        let tc = copy(&mut t, 2);
        let m = mint(&mut t, 1, 3);
        assert_eq!(mdb_descendants(&t, 0).len(), 6);
        assert_eq!(mdb_descendants(&t, 1), {
            let mut v = vec![e1, e2, m];
            v.sort_unstable();
            v
        });
        assert_eq!(mdb_descendants(&t, 2), [tc]);
        assert!(is_final(&t, 0), "an untyped is always final");
        assert!(!is_final(&t, 2));
        // Deleting the endpoint's original leaves its copies under the untyped.
        unlink(&mut t, 1);
        check_invariants(&t);
        assert_eq!(mdb_descendants(&t, 0).len(), 5);
        assert!(!has_children(&t, e1));
        // Revoking the untyped takes everything.
        revoke(&mut t, 0);
        check_invariants(&t);
        assert_eq!(t.chain(0), [(0, u)]);
        assert_eq!(t.caps.iter().filter(|c| !c.is_null()).count(), 1);
    }

    #[test]
    fn untyped_copies_own_their_memory() {
        let mut t = Store::new(8);
        let u = |free_offset| Cap::Untyped {
            base: 0x10_0000,
            size_bits: 16,
            free_offset,
            device: true,
        };
        insert_root(&mut t, 0, u(0x100), SlotFlags::ORIGINAL);
        let c = copy(&mut t, 0);
        // The source is full; the copy has its watermark and, being revocable, knows its
        // children (so its watermark is not reset under them).
        assert_eq!(t.cap(0), u(0x1_0000));
        assert_eq!(t.cap(c), u(0x100));
        assert_eq!(mdb_descendants(&t, 0), [c]);
        insert_child(&mut t, c, 5, frame_at(0x10_0000), SlotFlags::ORIGINAL);
        assert!(has_children(&t, c));
        assert_eq!(mdb_descendants(&t, 0), [c, 5]);
        revoke(&mut t, c);
        assert!(has_children(&t, 0));
        revoke(&mut t, 0);
        assert!(!has_children(&t, 0));
        // An untyped child of another size leaves the parent's watermark alone.
        let small = Cap::Untyped {
            base: 0x10_0000,
            size_bits: 12,
            free_offset: 0,
            device: true,
        };
        insert_child(&mut t, 0, 1, small, SlotFlags::ORIGINAL);
        assert_eq!(t.cap(0), u(0x1_0000));
        check_invariants(&t);
        // A malformed huge untyped saturates instead of overflowing.
        let huge = Cap::Untyped {
            base: 0,
            size_bits: 200,
            free_offset: 0,
            device: false,
        };
        insert_root(&mut t, 2, huge, SlotFlags::ORIGINAL);
        insert_child(&mut t, 2, 3, huge, SlotFlags::ORIGINAL);
        assert!(matches!(
            t.cap(2),
            Cap::Untyped {
                free_offset: u64::MAX,
                ..
            }
        ));
    }

    fn frame_at(base: u64) -> Cap {
        Cap::Frame {
            base,
            size_bits: 12,
            rights: CapRights::ALL,
            device: true,
        }
    }

    #[test]
    fn moves_keep_relationships() {
        let mut t = Store::new(8);
        insert_root(&mut t, 0, ep(0x40), SlotFlags::ORIGINAL);
        let a = copy(&mut t, 0);
        let m = mint(&mut t, 0, 9);
        let mc = copy(&mut t, m);
        // 0, m, mc, a
        move_slot(&mut t, m, 7);
        check_invariants(&t);
        assert_eq!(t.cap(m), Cap::Null);
        assert_eq!(mdb_descendants(&t, 7), [mc]);
        move_slot(&mut t, 0, 6);
        check_invariants(&t);
        assert_eq!(mdb_descendants(&t, 6), [a, mc, 7]);
        move_slot(&mut t, mc, 5);
        move_slot(&mut t, a, a);
        check_invariants(&t);
        assert_eq!(mdb_descendants(&t, 7), [5]);
        // A moved root stays a root.
        let mut t = Store::new(2);
        insert_root(&mut t, 0, Cap::IrqControl, SlotFlags::ORIGINAL);
        move_slot(&mut t, 0, 1);
        check_invariants(&t);
        assert_eq!(t.cap(1), Cap::IrqControl);
        assert_eq!(t.flags(1), SlotFlags::ORIGINAL);
    }

    #[test]
    fn finality() {
        let mut t = Store::new(8);
        insert_root(&mut t, 0, Cap::IrqControl, SlotFlags::ORIGINAL);
        let h = Cap::IrqHandler { intid: 40 };
        insert_child(&mut t, 0, 1, h, SlotFlags::ORIGINAL);
        // IrqControl does not count as a capability to a handler.
        assert!(is_final(&t, 1));
        assert!(is_final(&t, 0));
        let hc = copy(&mut t, 1);
        assert!(!is_final(&t, 1) && !is_final(&t, hc));
        insert_child(
            &mut t,
            0,
            5,
            Cap::IrqHandler { intid: 41 },
            SlotFlags::ORIGINAL,
        );
        // 0, 5, 1, hc
        assert!(is_final(&t, 5));
        unlink(&mut t, hc);
        assert!(is_final(&t, 1));
        let ic = copy(&mut t, 0);
        // 0, ic, 5, 1: two IrqControl capabilities.
        assert!(!is_final(&t, 0) && !is_final(&t, ic));
        assert_eq!(mdb_descendants(&t, 0), [1, ic, 5]);
        assert!(is_final(&t, 7), "an unlinked Null slot");
    }

    /// A saved reply is a root with no relatives: always final (deleting it always ends the
    /// wait it stands for), never anyone's child, and moves and deletes leave it alone.
    #[test]
    fn saved_replies_stand_alone() {
        let mut t = Store::new(8);
        let tcb = Cap::Tcb { obj: 0x10_0800 };
        let u = Cap::Untyped {
            base: 0x10_0000,
            size_bits: 20,
            free_offset: 0x1000,
            device: false,
        };
        insert_root(&mut t, 0, u, SlotFlags::ORIGINAL);
        insert_child(&mut t, 0, 1, tcb, SlotFlags::ORIGINAL);
        let reply = Cap::Reply { tcb: 0x10_0800 };
        insert_root(&mut t, 2, reply, SlotFlags::COPY);
        assert!(is_final(&t, 2) && is_final(&t, 1));
        assert_eq!(first_child(&t, 2), None);
        assert_eq!(
            mdb_descendants(&t, 0),
            [1],
            "the reply is not under the untyped"
        );
        move_slot(&mut t, 2, 5);
        assert_eq!((t.cap(2), t.cap(5)), (Cap::Null, reply));
        assert!(is_final(&t, 5));
        assert_eq!((t.prev(5), t.next(5)), (None, None));
        unlink(&mut t, 5);
        assert_eq!(t.cap(5), Cap::Null);
        assert_eq!(mdb_descendants(&t, 0), [1]);
        check_invariants(&t);
    }

    // --- Random operations against a model with explicit parents. ---

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    const SLOTS: usize = 64;

    struct World {
        t: Store,
        /// The model: each capability's parent slot.
        parent: Vec<Option<usize>>,
        rng: Rng,
        /// Operations that changed something: retype, copy, mint, move, delete, revoke.
        done: [usize; 6],
    }

    impl World {
        fn live(&self) -> Vec<usize> {
            (0..SLOTS).filter(|&s| !self.t.caps[s].is_null()).collect()
        }

        fn pick_live(&mut self, want: impl Fn(&Cap) -> bool) -> Option<usize> {
            let c: Vec<usize> = self
                .live()
                .into_iter()
                .filter(|&s| want(&self.t.caps[s]))
                .collect();
            (!c.is_empty()).then(|| c[self.rng.below(c.len())])
        }

        fn pick_free(&mut self) -> Option<usize> {
            let c: Vec<usize> = (0..SLOTS).filter(|&s| self.t.caps[s].is_null()).collect();
            (!c.is_empty()).then(|| c[self.rng.below(c.len())])
        }

        fn model_descendants(&self, s: usize) -> Vec<usize> {
            let mut out: Vec<usize> = self
                .live()
                .into_iter()
                .filter(|&d| {
                    let mut p = self.parent[d];
                    let mut steps = 0;
                    while let Some(x) = p {
                        if x == s {
                            return true;
                        }
                        p = self.parent[x];
                        steps += 1;
                        assert!(steps <= SLOTS, "model parent cycle");
                    }
                    false
                })
                .collect();
            out.sort_unstable();
            out
        }

        fn retype(&mut self) {
            let Some(u) = self.pick_live(|c| matches!(c, Cap::Untyped { .. })) else {
                return;
            };
            let Cap::Untyped {
                base,
                size_bits,
                free_offset,
                device,
            } = self.t.caps[u]
            else {
                unreachable!()
            };
            let (ty, arg) = match self.rng.below(6) {
                0 => (ObjectType::Endpoint, 0),
                1 => (ObjectType::Notification, 0),
                2 => (ObjectType::Tcb, 0),
                3 => (ObjectType::CNode, 1 + self.rng.below(4) as u64),
                4 => (ObjectType::Frame, 12 + self.rng.below(2) as u64),
                _ => (ObjectType::Untyped, 8 + self.rng.below(8) as u64),
            };
            let obj_bits = ty.object_bits(arg).unwrap();
            let count = 1 + self.rng.below(3) as u64;
            let Ok(plan) = plan_retype(
                base,
                size_bits,
                free_offset,
                has_children(&self.t, u),
                device,
                ty,
                obj_bits,
                count,
            ) else {
                return;
            };
            let free = (0..SLOTS).filter(|&s| self.t.caps[s].is_null()).count();
            if free < count as usize {
                return;
            }
            // The new objects overlap no live capability's memory, except untyped ones
            // around this untyped (its ancestors).
            let new_end = base + plan.new_free_offset;
            let ut_end = base + (1u64 << size_bits);
            for s in self.live() {
                let cap = self.t.caps[s];
                let Some((b, size)) = cap.object() else {
                    continue;
                };
                let around = matches!(cap, Cap::Untyped { .. }) && b <= base && ut_end <= b + size;
                assert!(
                    around || b + size <= plan.first || b >= new_end,
                    "retype over live memory in slot {s}: {cap:?}; list {:?}",
                    self.t.chain(u)
                );
            }
            self.t.caps[u] = Cap::Untyped {
                base,
                size_bits,
                free_offset: plan.new_free_offset,
                device,
            };
            for i in 0..count {
                let obj = plan.first + (i << obj_bits);
                let cap = match ty {
                    ObjectType::Endpoint => ep(obj),
                    ObjectType::Notification => Cap::Notification {
                        obj,
                        badge: 0,
                        rights: CapRights::ALL,
                    },
                    ObjectType::Tcb => Cap::Tcb { obj },
                    ObjectType::CNode => Cap::CNode {
                        obj,
                        radix: arg as u8,
                    },
                    ObjectType::Frame => Cap::Frame {
                        base: obj,
                        size_bits: arg as u8,
                        rights: CapRights::ALL,
                        device,
                    },
                    _ => Cap::Untyped {
                        base: obj,
                        size_bits: arg as u8,
                        free_offset: 0,
                        device,
                    },
                };
                let slot = self.pick_free().unwrap();
                insert_child(&mut self.t, u, slot, cap, SlotFlags::ORIGINAL);
                self.parent[slot] = Some(u);
            }
            self.done[0] += 1;
        }

        fn derive_op(&mut self, mint: bool) {
            let Some(src) = self.pick_live(|_| true) else {
                return;
            };
            let Some(slot) = self.pick_free() else {
                return;
            };
            if matches!(self.t.caps[src], Cap::Untyped { .. }) && has_children(&self.t, src) {
                return; // The kernel refuses this.
            }
            let rights = CapRights(self.rng.next() & 7);
            let how = if mint {
                Derivation::Mint {
                    rights,
                    badge: self.rng.next() % 4,
                }
            } else {
                Derivation::Copy { rights }
            };
            let Ok((cap, flags)) = derive(&self.t.caps[src], how) else {
                return;
            };
            insert_child(&mut self.t, src, slot, cap, flags);
            self.done[if mint { 2 } else { 1 }] += 1;
            // In the model: a child of the source if the source can have it, else a
            // sibling of the source.
            self.parent[slot] =
                if is_mdb_parent_of(&self.t.caps[src], self.t.flags[src], &cap, flags) {
                    Some(src)
                } else {
                    self.parent[src]
                };
        }

        fn delete(&mut self, s: usize) {
            unlink(&mut self.t, s);
            let p = self.parent[s];
            for x in 0..SLOTS {
                if self.parent[x] == Some(s) {
                    self.parent[x] = p;
                }
            }
            self.parent[s] = None;
        }

        fn step(&mut self) {
            match self.rng.below(10) {
                0 | 1 => self.retype(),
                2 | 3 => self.derive_op(false),
                4 | 5 => self.derive_op(true),
                6 => {
                    if let (Some(from), Some(to)) = (self.pick_live(|_| true), self.pick_free()) {
                        move_slot(&mut self.t, from, to);
                        for x in 0..SLOTS {
                            if self.parent[x] == Some(from) {
                                self.parent[x] = Some(to);
                            }
                        }
                        self.parent[to] = self.parent[from];
                        self.parent[from] = None;
                        self.done[3] += 1;
                    }
                }
                7 | 8 => {
                    // Deleting untyped capabilities empties the world fast: allow it rarely.
                    let untyped_too = self.rng.below(8) == 0;
                    if let Some(s) =
                        self.pick_live(|c| untyped_too || !matches!(c, Cap::Untyped { .. }))
                    {
                        self.delete(s);
                        self.done[4] += 1;
                    }
                }
                _ => {
                    if let Some(s) = self.pick_live(|_| true) {
                        let doomed = self.model_descendants(s);
                        self.done[5] += usize::from(!doomed.is_empty());
                        revoke(&mut self.t, s);
                        for d in doomed {
                            assert!(self.t.caps[d].is_null(), "revoke left slot {d}");
                            self.parent[d] = None;
                        }
                    }
                }
            }
        }

        fn check(&self) {
            check_invariants(&self.t);
            let live = self.live();
            for &s in &live {
                let model = self.model_descendants(s);
                assert_eq!(
                    mdb_descendants(&self.t, s),
                    model,
                    "descendants of {s}; list {:?}",
                    self.t.chain(s)
                );
                assert_eq!(has_children(&self.t, s), !model.is_empty());
                let cap = self.t.caps[s];
                let shared = !matches!(cap, Cap::Untyped { .. })
                    && live.iter().any(|&o| {
                        o != s
                            && (self.t.caps[o].same_object_as(&cap)
                                || cap.same_object_as(&self.t.caps[o]))
                    });
                assert_eq!(is_final(&self.t, s), !shared, "is_final({s}): {cap:?}");
            }
        }
    }

    #[test]
    fn random_operations_match_a_model() {
        for seed in [1u64, 0xdead_beef, 0x1234_5678_9abc_def0] {
            let mut w = World {
                t: Store::new(SLOTS),
                parent: vec![None; SLOTS],
                rng: Rng(seed),
                done: [0; 6],
            };
            let mut ops = 0;
            let mut most_live = 0;
            let mut fresh = 0;
            while ops < 5000 {
                // Keep the world populated: boot-like untyped roots when it has none, over
                // fresh memory (objects of deleted untyped capabilities live on).
                if !w.t.caps.iter().any(|c| matches!(c, Cap::Untyped { .. })) {
                    for size_bits in [16, 17] {
                        if let Some(s) = w.pick_free() {
                            fresh += 1 << 20;
                            let cap = Cap::Untyped {
                                base: fresh,
                                size_bits,
                                free_offset: 0,
                                device: false,
                            };
                            insert_root(&mut w.t, s, cap, SlotFlags::ORIGINAL);
                        }
                    }
                }
                w.step();
                w.check();
                most_live = most_live.max(w.live().len());
                ops += 1;
            }
            assert!(
                most_live > SLOTS / 2,
                "the test should fill the table: {most_live}"
            );
            assert!(
                w.done.iter().all(|&n| n > 50),
                "every operation should happen: {:?}",
                w.done
            );
        }
    }
}
