//! Memory-object handles as the pagers (file, shm) keep them: who may use a handle, with
//! which rights, and until when. One implementation for both pagers, so that the rules
//! below are the same wherever a task maps something.
//!
//! A handle is a number a pager gives a task for one of its descriptors (`GetObject`, one
//! per `mmap`). The number is no capability: it is bound to the task it was given to (the
//! badge of the `GetObject`) and keeps the descriptor's rights (`writable`). The task passes
//! it to vm (`MmapObject`), and vm, before mapping anything, *claims* it from the pager
//! (`ObjectRequest::Claim { handle, pid }`, with the pid of the task that asked): the pager
//! checks that the handle exists, was given to that pid and was not claimed before, marks it
//! claimed, and answers the object and the rights ([`Claimed`]). From then on the handle is
//! vm's: only vm (badge `pid::VM`) may name it, in `ObjectPage`, `ObjectDirty`, `ObjectSync`
//! and `ObjectRelease`, and the pager refuses writes (`ObjectPage { write }`, `ObjectDirty`)
//! through a read-only one. So a number another task was given, or one a task makes up, maps
//! nothing (`EBADF`), and a read-only descriptor never yields a writable mapping.
//!
//! Lifetimes: a claimed handle lives until vm's `ObjectRelease` (vm sends it when no region
//! of any task names the handle any more: after `munmap`, exit, exec, or a failed `mmap`).
//! An unclaimed one lives until its owner releases it (`ObjectRelease` from the owner: a
//! runtime whose `mmap` failed before vm claimed it) or ends (`TaskExit`); a task may hold
//! at most [`MAX_UNCLAIMED`] at once (`EMFILE`, as POSIX `mmap` has it for too many
//! mappings). Numbers are never reused.

use crate::Errno;
use crate::object::Claimed;
use crate::pid;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

/// Handles a task may hold that vm has not claimed (`EMFILE` beyond): a runtime holds one
/// at a time, between its `GetObject` and vm's claim.
pub const MAX_UNCLAIMED: u32 = 16;

/// One handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handle {
    /// The pager's object (a file, a shm object).
    pub object: u64,
    /// Whether mappings through it may write.
    pub writable: bool,
    /// The task it was given to (`pid::VM` for one vm made for itself).
    pub owner: u64,
    /// Whether vm has claimed it.
    pub claimed: bool,
    /// Its mappings map whole blocks, past the end of the file too (a runtime's window:
    /// `FileRequest::Window`).
    pub whole: bool,
}

/// A pager's handles.
#[derive(Debug)]
pub struct Handles {
    map: BTreeMap<u64, Handle>,
    /// Unclaimed handles by (owner, number): at most [`MAX_UNCLAIMED`] per owner, so an
    /// owner's count and its exit look at no other task's.
    unclaimed: BTreeSet<(u64, u64)>,
    /// Handles alive per owner, claimed or not ([`Handles::owned_by`] is asked on every
    /// `GetObject`: a count, not a walk over every handle).
    owned: BTreeMap<u64, u32>,
    /// Handles alive per (object, owner), and the writable ones: [`Handles::held_by`] and
    /// [`Handles::writable_on`] (asked by `open` and `exec`) are look-ups, not walks over
    /// every handle of every task.
    held: BTreeMap<(u64, u64), u32>,
    writable: BTreeMap<(u64, u64), u32>,
    next: u64,
}

/// Adds 1 (`up`) to `key`'s count in `counts` or takes 1 from it, dropping counts that reach 0.
fn count<K: Ord>(counts: &mut BTreeMap<K, u32>, key: K, up: bool) {
    if up {
        *counts.entry(key).or_insert(0) += 1;
    } else if let alloc::collections::btree_map::Entry::Occupied(mut e) = counts.entry(key) {
        *e.get_mut() = e.get().saturating_sub(1);
        if *e.get() == 0 {
            e.remove();
        }
    }
}

impl Default for Handles {
    fn default() -> Self {
        Self::new()
    }
}

impl Handles {
    /// No handles; the first number given is 1 (0 is never a handle).
    pub const fn new() -> Self {
        Self {
            map: BTreeMap::new(),
            unclaimed: BTreeSet::new(),
            owned: BTreeMap::new(),
            held: BTreeMap::new(),
            writable: BTreeMap::new(),
            next: 1,
        }
    }

    /// Records handle `h` in the table and in its counts (`up`), or takes it out of them.
    fn counted(&mut self, h: u64, handle: &Handle, up: bool) {
        count(&mut self.owned, handle.owner, up);
        count(&mut self.held, (handle.object, handle.owner), up);
        if handle.writable {
            count(&mut self.writable, (handle.object, handle.owner), up);
        }
        if !handle.claimed {
            if up {
                self.unclaimed.insert((handle.owner, h));
            } else {
                self.unclaimed.remove(&(handle.owner, h));
            }
        }
    }

    /// Records handle `h` in the table, counted for its owner and object.
    fn insert(&mut self, h: u64, handle: Handle) {
        self.counted(h, &handle, true);
        self.map.insert(h, handle);
    }

    /// Takes handle `h` out of the table and its counts.
    fn remove(&mut self, h: u64) {
        if let Some(handle) = self.map.remove(&h) {
            self.counted(h, &handle, false);
        }
    }

    /// The unclaimed handles of `owner` (at most [`MAX_UNCLAIMED`]).
    fn unclaimed_of(&self, owner: u64) -> impl Iterator<Item = u64> + '_ {
        self.unclaimed
            .range((owner, 0)..=(owner, u64::MAX))
            .map(|&(_, h)| h)
    }

    fn number(&mut self) -> u64 {
        let h = self.next;
        self.next += 1;
        h
    }

    /// `GetObject`: a new handle on `object` for task `owner` → its number. `EMFILE` when
    /// `owner` already holds [`MAX_UNCLAIMED`] unclaimed handles.
    pub fn give(&mut self, owner: u64, object: u64, writable: bool) -> Result<u64, Errno> {
        if self.unclaimed_of(owner).count() >= MAX_UNCLAIMED as usize {
            return Err(Errno::EMFILE);
        }
        let h = self.number();
        self.insert(
            h,
            Handle {
                object,
                writable,
                owner,
                claimed: false,
                whole: false,
            },
        );
        Ok(h)
    }

    /// Marks handle `h` as a window's: its mappings map whole blocks.
    pub fn set_whole(&mut self, h: u64) {
        if let Some(handle) = self.map.get_mut(&h) {
            handle.whole = true;
        }
    }

    /// A handle vm made for itself (shm's `CreateAnon`): claimed from the start.
    pub fn give_vm(&mut self, object: u64, writable: bool) -> u64 {
        let h = self.number();
        self.insert(
            h,
            Handle {
                object,
                writable,
                owner: pid::VM,
                claimed: true,
                whole: false,
            },
        );
        h
    }

    /// `ObjectClaim` (vm's): vm takes `handle` for task `pid`'s mapping. `EBADF` unless
    /// the handle exists, is `pid`'s and was not claimed.
    pub fn claim(&mut self, handle: u64, pid: u64) -> Result<Claimed, Errno> {
        let h = self.map.get_mut(&handle).ok_or(Errno::EBADF)?;
        if h.claimed || h.owner != pid {
            return Err(Errno::EBADF);
        }
        h.claimed = true;
        let c = Claimed {
            object: h.object,
            writable: h.writable,
        };
        self.unclaimed.remove(&(pid, handle));
        Ok(c)
    }

    /// The handle vm names in `ObjectPage`, `ObjectDirty` or `ObjectSync`: `EBADF` unless
    /// vm claimed it.
    pub fn claimed(&self, handle: u64) -> Result<Handle, Errno> {
        match self.map.get(&handle) {
            Some(h) if h.claimed => Ok(*h),
            _ => Err(Errno::EBADF),
        }
    }

    /// The handle vm names for a write (`ObjectPage { write: true }`, `ObjectDirty`):
    /// `EACCES` for a read-only one.
    pub fn claimed_for_write(&self, handle: u64) -> Result<Handle, Errno> {
        let h = self.claimed(handle)?;
        if h.writable {
            Ok(h)
        } else {
            Err(Errno::EACCES)
        }
    }

    /// `ObjectRelease` from `badge`: vm lets go of a claimed handle, or the owner of an
    /// unclaimed one gives it back → the object it held. `EBADF` otherwise (another task's
    /// handle, vm's handle named by a task, an unknown number).
    pub fn release(&mut self, badge: u64, handle: u64) -> Result<u64, Errno> {
        let h = *self.map.get(&handle).ok_or(Errno::EBADF)?;
        let ok = if h.claimed {
            badge == pid::VM
        } else {
            badge == h.owner
        };
        if !ok {
            return Err(Errno::EBADF);
        }
        self.remove(handle);
        Ok(h.object)
    }

    /// `TaskExit`: the unclaimed handles of task `pid` go → the object of each (once per
    /// handle). Claimed ones are vm's and stay.
    pub fn task_exit(&mut self, pid: u64) -> Vec<u64> {
        let gone: Vec<u64> = self.unclaimed_of(pid).collect();
        gone.into_iter()
            .filter_map(|h| {
                let object = self.map.get(&h)?.object;
                self.remove(h);
                Some(object)
            })
            .collect()
    }

    /// Handles alive given to `owner` (claimed or not).
    pub fn owned_by(&self, owner: u64) -> usize {
        self.owned.get(&owner).map_or(0, |&n| n as usize)
    }

    /// Whether a handle of `owner` names `object` (init's: the file is a program being
    /// loaded or run).
    pub fn held_by(&self, owner: u64, object: u64) -> bool {
        self.held.contains_key(&(object, owner))
    }

    /// Whether a writable handle of anyone but `except` names `object` (a mapping that may
    /// write it, or one about to be made).
    pub fn writable_on(&self, object: u64, except: u64) -> bool {
        // At most the first two owners are looked at: one of them is not `except`.
        self.writable
            .range((object, 0)..=(object, u64::MAX))
            .any(|(&(_, owner), _)| owner != except)
    }

    /// Handles alive (claimed or not).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u64 = 10;
    const B: u64 = 11;

    #[test]
    fn who_holds_an_object() {
        let mut t = Handles::default();
        let r = t.give(pid::INIT, 7, false).unwrap();
        let w = t.give(A, 8, true).unwrap();
        assert!(t.held_by(pid::INIT, 7));
        assert!(!t.held_by(pid::INIT, 8));
        assert!(t.writable_on(8, pid::INIT));
        assert!(!t.writable_on(8, A));
        assert!(!t.writable_on(7, pid::INIT));
        t.claim(w, A).unwrap();
        assert!(t.writable_on(8, pid::INIT));
        t.release(pid::VM, w).unwrap();
        t.release(pid::INIT, r).unwrap();
        assert!(!t.writable_on(8, pid::INIT));
        assert!(!t.held_by(pid::INIT, 7));
    }

    #[test]
    fn a_handle_is_its_owners_to_give_to_vm_once() {
        let mut t = Handles::default();
        let h = t.give(A, 7, false).unwrap();
        assert_ne!(h, 0);
        // Not yet claimed: vm cannot use it, nobody else can claim it.
        assert_eq!(t.claimed(h), Err(Errno::EBADF));
        assert_eq!(t.claim(h, B), Err(Errno::EBADF));
        assert_eq!(t.claim(h, pid::VM), Err(Errno::EBADF));
        assert_eq!(
            t.claim(h, A),
            Ok(Claimed {
                object: 7,
                writable: false
            })
        );
        // Once.
        assert_eq!(t.claim(h, A), Err(Errno::EBADF));
        assert_eq!(t.claimed(h).map(|h| h.object), Ok(7));
        // Read-only: no write through it.
        assert_eq!(t.claimed_for_write(h), Err(Errno::EACCES));
        // Numbers nobody was given.
        for n in [0, h + 1, u64::MAX] {
            assert_eq!(t.claim(n, A), Err(Errno::EBADF));
            assert_eq!(t.claimed(n), Err(Errno::EBADF));
            assert_eq!(t.release(pid::VM, n), Err(Errno::EBADF));
        }
    }

    #[test]
    fn owned_by_counts_claimed_and_unclaimed() {
        let mut t = Handles::default();
        let h = t.give(A, 7, true).unwrap();
        t.give(A, 8, false).unwrap();
        t.give(B, 7, false).unwrap();
        t.claim(h, A).unwrap();
        assert_eq!((t.owned_by(A), t.owned_by(B), t.len()), (2, 1, 3));
        t.release(pid::VM, h).unwrap();
        assert_eq!(t.owned_by(A), 1);
    }

    #[test]
    fn release_by_vm_or_by_the_owner_before_the_claim() {
        let mut t = Handles::new();
        let h = t.give(A, 7, true).unwrap();
        let k = t.give(A, 8, true).unwrap();
        assert_ne!(h, k);
        // Unclaimed: only its owner gives it back.
        assert_eq!(t.release(pid::VM, h), Err(Errno::EBADF));
        assert_eq!(t.release(B, h), Err(Errno::EBADF));
        assert_eq!(t.release(A, h), Ok(7));
        assert_eq!(t.release(A, h), Err(Errno::EBADF));
        // Claimed: only vm.
        t.claim(k, A).unwrap();
        assert_eq!(t.claimed_for_write(k).map(|h| h.object), Ok(8));
        assert_eq!(t.release(A, k), Err(Errno::EBADF));
        assert_eq!(t.release(pid::VM, k), Ok(8));
        assert!(t.is_empty());
        // vm's own handles are claimed from the start.
        let v = t.give_vm(9, true);
        assert_eq!(t.claim(v, pid::VM), Err(Errno::EBADF));
        assert_eq!(t.claimed_for_write(v).map(|h| h.owner), Ok(pid::VM));
        assert_eq!(t.release(pid::VM, v), Ok(9));
    }

    #[test]
    fn unclaimed_handles_are_bounded_and_go_with_their_task() {
        let mut t = Handles::new();
        let mine: Vec<u64> = (0..MAX_UNCLAIMED)
            .map(|i| t.give(A, u64::from(i), false).unwrap())
            .collect();
        assert_eq!(t.give(A, 99, false), Err(Errno::EMFILE));
        // Another task is not affected.
        let theirs = t.give(B, 50, false).unwrap();
        // A claim makes room.
        t.claim(mine[0], A).unwrap();
        let more = t.give(A, 98, false).unwrap();
        assert_eq!(t.give(A, 99, false), Err(Errno::EMFILE));
        // Exit: the unclaimed ones go (once each), the claimed one stays vm's.
        let mut gone = t.task_exit(A);
        gone.sort_unstable();
        let mut want: Vec<u64> = (1..u64::from(MAX_UNCLAIMED)).collect();
        want.push(98);
        assert_eq!(gone, want);
        assert_eq!(t.claimed(mine[0]).map(|h| h.object), Ok(0));
        assert_eq!(t.claim(more, A), Err(Errno::EBADF));
        assert_eq!(t.claim(theirs, B).map(|c| c.object), Ok(50));
        assert!(t.task_exit(A).is_empty());
        // A new task with the old pid starts with none.
        assert!(t.give(A, 1, false).is_ok());
        assert_eq!(t.len(), 3);
    }

    /// The counts behind `held_by`, `writable_on` and `task_exit` against a walk over every
    /// handle, through 20,000 random gives, claims, releases and exits.
    #[test]
    fn counts_match_a_walk_over_every_handle() {
        let mut t = Handles::new();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let owners = [pid::INIT, A, B, 12];
        for _ in 0..20_000 {
            let owner = owners[next(4) as usize];
            let object = next(6);
            match next(10) {
                0..=3 => {
                    let _ = t.give(owner, object, next(2) == 0);
                }
                4 | 5 => {
                    if let Some((&h, &handle)) = t.map.range(next(t.next)..).next() {
                        let _ = t.claim(h, handle.owner);
                    }
                }
                6 | 7 => {
                    if let Some((&h, &handle)) = t.map.range(next(t.next)..).next() {
                        let by = if handle.claimed {
                            pid::VM
                        } else {
                            handle.owner
                        };
                        assert_eq!(t.release(by, h), Ok(handle.object));
                    }
                }
                8 => {
                    let mut want: Vec<u64> = t
                        .map
                        .values()
                        .filter(|h| h.owner == owner && !h.claimed)
                        .map(|h| h.object)
                        .collect();
                    let mut gone = t.task_exit(owner);
                    want.sort_unstable();
                    gone.sort_unstable();
                    assert_eq!(gone, want);
                }
                _ => {}
            }
            for o in owners {
                let walk = t.map.values().any(|h| h.owner == o && h.object == object);
                assert_eq!(t.held_by(o, object), walk);
                let walk = t
                    .map
                    .values()
                    .any(|h| h.writable && h.object == object && h.owner != o);
                assert_eq!(t.writable_on(object, o), walk);
                let unclaimed = t
                    .map
                    .values()
                    .filter(|h| h.owner == o && !h.claimed)
                    .count();
                assert_eq!(t.unclaimed_of(o).count(), unclaimed);
                assert_eq!(
                    t.owned_by(o),
                    t.map.values().filter(|h| h.owner == o).count()
                );
            }
        }
    }
}
