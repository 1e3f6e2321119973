//! Memory objects: how vm maps what another pager owns (a file's page cache, a shm object).
//!
//! A task asks the owning server for a handle on one of its descriptors (`GetObject`), then
//! asks vm to map it (`MmapObject`); vm first claims the handle from the pager for that task
//! (`ObjectRequest::Claim`: a handle is usable only by the task it was given to, once, with
//! its descriptor's rights; `crate::handles`). On a fault in such a region vm asks the pager for the
//! 64 KiB block that holds the page (`ObjectPage`): the reply carries the block's frame
//! capability (a copy derived from the pager's, so the pager can take every mapping of the
//! block back by revoking its own: eviction, write-back re-arming). vm maps all the block's
//! pages that fall in the region at once (fault-around).
//!
//! Shared writable mappings start read-only; the first write fault makes vm send
//! `ObjectDirty`, then map the page writable. `Msync`, `munmap` and task exit make vm send
//! `ObjectSync` for the range; dropping the last region naming a handle sends
//! `ObjectRelease`.
//! Private mappings copy a block's page into a page of vm's own on the first write (the
//! pager's page stays clean).

use crate::wire::{ReplyBody, Wire};
use crate::{Label, ProtoError};

/// Pages in a block: the unit of page-cache allocation, fault-around and eviction.
pub const BLOCK_PAGES: u64 = 16;
/// Bytes in a block.
pub const BLOCK_SIZE: u64 = BLOCK_PAGES * crate::PAGE_SIZE;

abi::numbered! {
    /// Which server owns a memory object (vm holds an endpoint capability to each).
    pub enum Pager {
        File = 1,
        Shm = 2,
    }
}

crate::numbered_field!(Pager);

crate::interface! {
    /// vm's requests to a pager (file or shm). Every one but `Claim` names a handle vm has
    /// claimed (badge `pid::VM`); anything else is `EBADF`. `Release` is also a task's, for a
    /// handle it was given and never had mapped (see [`crate::handles`]).
    pub enum ObjectRequest {
        /// The block `block` of `handle`'s object, for reading or (`write`) writing → MR1 = how
        /// many bytes of the block hold data (the rest reads as zero and is never written
        /// back); the block's frame capability travels with the reply. `EFAULT` when the block
        /// lies wholly past the end of the object (vm then kills the task with BUS); `EACCES`
        /// for `write` through a read-only handle.
        Page { handle: u64, block: u64, write: bool } = Label::ObjectPage => fn page -> u64;
        /// A page of `block` was written through a shared mapping. `EACCES` for a read-only
        /// handle (vm then kills the writer with SEGV).
        Dirty { handle: u64, block: u64 } = Label::ObjectDirty => fn dirty -> ();
        /// Write back the dirty blocks among `first .. first + count`.
        Sync { handle: u64, first: u64, count: u64 } = Label::ObjectSync => fn sync -> ();
        /// vm no longer maps `handle` (or, from a task: it will not map it); the handle is
        /// gone.
        Release { handle: u64 } = Label::ObjectRelease => fn release -> ();
        /// vm takes `handle`, which task `pid` got with `GetObject` and asks vm to map →
        /// [`Claimed`]. `EBADF` unless the handle exists, was given to `pid` and was not
        /// claimed before; from then on only vm may use it.
        Claim { handle: u64, pid: u64 } = Label::ObjectClaim => fn claim -> Claimed;
    }
}

impl ObjectRequest {
    /// The handle the request names.
    pub const fn handle(&self) -> u64 {
        match *self {
            Self::Page { handle, .. }
            | Self::Dirty { handle, .. }
            | Self::Sync { handle, .. }
            | Self::Release { handle }
            | Self::Claim { handle, .. } => handle,
        }
    }
}

/// `Claim`'s result: the object behind the handle (a number that stays the same for every
/// handle of one object while it lives, so that vm keeps one capability per block of it)
/// and whether the handle lets its mappings write (its descriptor was open for writing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claimed {
    pub object: u64,
    pub writable: bool,
}

impl ReplyBody for Claimed {
    fn encode_body(&self, w: &mut Wire) {
        w.push(self.object);
        w.push(u64::from(self.writable));
    }

    fn decode_body(w: &[u64]) -> Result<Self, ProtoError> {
        match *w {
            [object, writable @ (0 | 1), ..] => Ok(Self {
                object,
                writable: writable == 1,
            }),
            [_, _, ..] => Err(ProtoError::BadField),
            _ => Err(ProtoError::Short),
        }
    }
}

crate::interface! {
    /// A task's request to the owner of one of its descriptors (file or shm server): a new
    /// handle for vm to map, bound to the caller (see [`crate::handles`]) → MR1 = handle, MR2 =
    /// size in bytes (`OpenReply`'s layout). The handle may write when the descriptor may;
    /// `writable` only asks for that to be checked now: `EACCES` if it is asked of a
    /// descriptor opened read-only. `EACCES` also for a descriptor not open for reading (a
    /// mapping always reads), `EBADF` for a bad descriptor, `EMFILE` when the caller holds
    /// [`crate::handles::MAX_UNCLAIMED`] handles it has not had mapped.
    pub struct GetObject {
        pub fd: u64,
        pub writable: bool,
    } = Label::GetObject => fn get -> crate::OpenReply;
}

crate::interface! {
    /// A task's request to vm to map a memory object: `mmap(addr, len, prot, flags, fd,
    /// offset)` once the descriptor's owner gave a handle → MR1 = the address. `offset` must
    /// be page aligned. vm claims the handle from the pager first (`ObjectRequest::Claim`
    /// with the caller's pid): `EBADF` for a handle that is not the caller's to give, `EACCES`
    /// for a shared writable mapping of a read-only handle. Seven words: the seventh travels
    /// in the IPC buffer (an `mmap` is not a fast path; its fields unpacked keep every bit
    /// for vm to check).
    pub struct MmapObject {
        pub addr: u64,
        pub len: u64,
        pub prot: u64,
        pub flags: u64,
        pub pager: Pager,
        pub handle: u64,
        pub offset: u64,
    } = Label::MmapObject => fn map -> u64;
}

/// `msync` flags, as Linux on AArch64 numbers them.
pub mod ms {
    /// Start the write-back and return (here: the same as `SYNC`, which POSIX allows).
    pub const ASYNC: u64 = 1;
    /// Drop cached copies (here: nothing to do, every mapping shares the page cache).
    pub const INVALIDATE: u64 = 2;
    /// Write back and wait.
    pub const SYNC: u64 = 4;
    pub const MASK: u64 = ASYNC | INVALIDATE | SYNC;
}

crate::interface! {
    /// A task's request to vm: write back the shared file pages of [`addr`, `addr + len`).
    /// `flags`: [`ms`] bits (vm answers `EINVAL` for unknown bits or both `ASYNC` and `SYNC`).
    pub struct Msync {
        pub addr: u64,
        pub len: u64,
        pub flags: u64,
    } = Label::Msync => fn msync -> ();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_requests_round_trip() {
        for r in [
            ObjectRequest::Page {
                handle: 7,
                block: 3,
                write: true,
            },
            ObjectRequest::Page {
                handle: 7,
                block: 0,
                write: false,
            },
            ObjectRequest::Dirty {
                handle: 1,
                block: 2,
            },
            ObjectRequest::Sync {
                handle: 1,
                first: 2,
                count: 3,
            },
            ObjectRequest::Release { handle: 9 },
            ObjectRequest::Claim { handle: 9, pid: 12 },
        ] {
            let w = r.encode();
            assert_eq!(ObjectRequest::decode(w.label(), w.mrs()), Ok(r));
            assert_eq!(
                ObjectRequest::decode(w.label(), w.mrs()).map(|r| r.handle()),
                Ok(w.mrs()[0])
            );
        }
        assert_eq!(
            ObjectRequest::decode(Label::ObjectClaim as u64, &[1]),
            Err(ProtoError::Short)
        );
        assert_eq!(
            ObjectRequest::decode(Label::ObjectPage as u64, &[1, 2, 2]),
            Err(ProtoError::BadField)
        );
        assert_eq!(
            ObjectRequest::decode(Label::ObjectPage as u64, &[1, 2]),
            Err(ProtoError::Short)
        );
        assert!(ObjectRequest::decode(Label::Mmap as u64, &[0; 6]).is_err());
    }

    #[test]
    fn task_requests_round_trip() {
        let g = GetObject {
            fd: 3,
            writable: true,
        };
        let w = g.encode();
        assert_eq!(GetObject::decode(w.label(), w.mrs()), Ok(g));
        assert_eq!(
            GetObject::decode(Label::GetObject as u64, &[3, 5]),
            Err(ProtoError::BadField)
        );
        let m = MmapObject {
            addr: 0x1000,
            len: 0x4000,
            prot: 3,
            flags: 0x01,
            pager: Pager::Shm,
            handle: 5,
            offset: 0x2000,
        };
        let w = m.encode();
        assert_eq!(MmapObject::decode(w.label(), w.mrs()), Ok(m));
        assert_eq!(w.mrs().len(), 7);
        assert_eq!(
            MmapObject::decode(Label::MmapObject as u64, &w.mrs()[..6]),
            Err(ProtoError::Short)
        );
        assert_eq!(
            MmapObject::decode(Label::MmapObject as u64, &[0, 0, 0, 0, 9, 0, 0]),
            Err(ProtoError::BadField)
        );
        let s = Msync {
            addr: 0x1000,
            len: 0x2000,
            flags: ms::SYNC,
        };
        let w = s.encode();
        assert_eq!(Msync::decode(w.label(), w.mrs()), Ok(s));
    }

    #[test]
    fn claimed_reply() {
        use crate::{Errno, decode_reply, encode_reply};
        for c in [
            Claimed {
                object: 4,
                writable: true,
            },
            Claimed {
                object: u64::MAX,
                writable: false,
            },
        ] {
            let w = encode_reply(&Ok(c));
            assert_eq!(decode_reply::<Claimed>(w.mrs()), Ok(Ok(c)));
        }
        assert_eq!(
            decode_reply::<Claimed>(&[0, 4, 2]),
            Err(ProtoError::BadField)
        );
        assert_eq!(decode_reply::<Claimed>(&[0, 4]), Err(ProtoError::Short));
        let w = encode_reply::<Claimed>(&Err(Errno::EBADF));
        assert_eq!(decode_reply::<Claimed>(w.mrs()), Ok(Err(Errno::EBADF)));
    }
}
