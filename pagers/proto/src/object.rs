//! Memory objects: how vm maps what another pager owns (a file's page cache, a shm object).
//!
//! A task asks the owning server for a handle on one of its descriptors (`GetObject`), then
//! asks vm to map it (`MmapObject`). On a fault in such a region vm asks the pager for the
//! 64 KiB block that holds the page (`ObjectPage`): the reply carries the block's frame
//! capability (a copy derived from the pager's, so the pager can take every mapping of the
//! block back by revoking its own: eviction, write-back re-arming). vm maps all the block's
//! pages that fall in the region at once (fault-around).
//!
//! Shared writable mappings start read-only; the first write fault makes vm send
//! `ObjectDirty`, then map the page writable. `Msync`, `munmap` and task exit make vm send
//! `ObjectSync` for the range; dropping the last mapping of an object sends `ObjectRelease`.
//! Private mappings copy a block's page into a page of vm's own on the first write (the
//! pager's page stays clean).

use crate::wire::{Wire, fields};
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

/// vm's requests to a pager (file or shm).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectRequest {
    /// The block `block` of `object`, for reading or (`write`) writing → MR1 = how many
    /// bytes of the block hold data (the rest reads as zero and is never written back);
    /// the block's frame capability travels with the reply. `EFAULT` when the block lies
    /// wholly past the end of the object (vm then kills the task with BUS).
    Page {
        object: u64,
        block: u64,
        write: bool,
    },
    /// A page of `block` was written through a shared mapping.
    Dirty { object: u64, block: u64 },
    /// Write back the dirty blocks among `first .. first + count`.
    Sync { object: u64, first: u64, count: u64 },
    /// vm no longer maps `object`.
    Release { object: u64 },
}

impl ObjectRequest {
    pub fn encode(&self) -> Wire {
        match *self {
            Self::Page {
                object,
                block,
                write,
            } => Wire::request(Label::ObjectPage, &[object, block, u64::from(write)]),
            Self::Dirty { object, block } => Wire::request(Label::ObjectDirty, &[object, block]),
            Self::Sync {
                object,
                first,
                count,
            } => Wire::request(Label::ObjectSync, &[object, first, count]),
            Self::Release { object } => Wire::request(Label::ObjectRelease, &[object]),
        }
    }

    /// `UnknownLabel` for any other label; `BadField` for a `write` flag other than 0 or 1.
    pub fn decode(label: u64, mrs: &[u64]) -> Result<Self, ProtoError> {
        match Label::try_from(label) {
            Ok(l @ Label::ObjectPage) => {
                let [object, block, write] = fields(l, mrs)?;
                let write = match write {
                    0 => false,
                    1 => true,
                    _ => return Err(ProtoError::BadField),
                };
                Ok(Self::Page {
                    object,
                    block,
                    write,
                })
            }
            Ok(l @ Label::ObjectDirty) => {
                let [object, block] = fields(l, mrs)?;
                Ok(Self::Dirty { object, block })
            }
            Ok(l @ Label::ObjectSync) => {
                let [object, first, count] = fields(l, mrs)?;
                Ok(Self::Sync {
                    object,
                    first,
                    count,
                })
            }
            Ok(l @ Label::ObjectRelease) => {
                let [object] = fields(l, mrs)?;
                Ok(Self::Release { object })
            }
            _ => Err(ProtoError::UnknownLabel(label)),
        }
    }
}

/// A task's request to the owner of one of its descriptors (file or shm server): a handle
/// vm can use → MR1 = object, MR2 = size in bytes. `EACCES` if `writable` is asked of a
/// descriptor opened read-only; `EBADF` for a bad descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetObject {
    pub fd: u64,
    pub writable: bool,
}

impl GetObject {
    pub fn encode(&self) -> Wire {
        Wire::request(Label::GetObject, &[self.fd, u64::from(self.writable)])
    }

    pub fn decode(label: u64, mrs: &[u64]) -> Result<Self, ProtoError> {
        match Label::try_from(label) {
            Ok(l @ Label::GetObject) => {
                let [fd, writable] = fields(l, mrs)?;
                match writable {
                    0 | 1 => Ok(Self {
                        fd,
                        writable: writable == 1,
                    }),
                    _ => Err(ProtoError::BadField),
                }
            }
            _ => Err(ProtoError::UnknownLabel(label)),
        }
    }
}

/// A task's request to vm to map a memory object: `mmap(addr, len, prot, flags, fd, offset)`
/// once the descriptor's owner gave a handle → MR1 = the address. `prot_flags` = prot |
/// flags << 8; `offset` must be page aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmapObject {
    pub addr: u64,
    pub len: u64,
    pub prot: u64,
    pub flags: u64,
    pub pager: Pager,
    pub object: u64,
    pub offset: u64,
}

impl MmapObject {
    /// Encoded as addr, len, prot | flags << 8 | pager << 32, object, offset.
    pub fn encode(&self) -> Wire {
        let packed = (self.prot & 0xff) | (self.flags & 0xff_ffff) << 8 | (self.pager as u64) << 32;
        Wire::request(
            Label::MmapObject,
            &[self.addr, self.len, packed, self.object, self.offset],
        )
    }

    pub fn decode(label: u64, mrs: &[u64]) -> Result<Self, ProtoError> {
        match Label::try_from(label) {
            Ok(l @ Label::MmapObject) => {
                let [addr, len, packed, object, offset] = fields(l, mrs)?;
                let pager = Pager::try_from(packed >> 32).map_err(|_| ProtoError::BadField)?;
                Ok(Self {
                    addr,
                    len,
                    prot: packed & 0xff,
                    flags: (packed >> 8) & 0xff_ffff,
                    pager,
                    object,
                    offset,
                })
            }
            _ => Err(ProtoError::UnknownLabel(label)),
        }
    }
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

/// A task's request to vm: write back the shared file pages of [`addr`, `addr + len`).
/// `flags`: [`ms`] bits (vm answers `EINVAL` for unknown bits or both `ASYNC` and `SYNC`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msync {
    pub addr: u64,
    pub len: u64,
    pub flags: u64,
}

impl Msync {
    pub fn encode(&self) -> Wire {
        Wire::request(Label::Msync, &[self.addr, self.len, self.flags])
    }

    pub fn decode(label: u64, mrs: &[u64]) -> Result<Self, ProtoError> {
        match Label::try_from(label) {
            Ok(l @ Label::Msync) => {
                let [addr, len, flags] = fields(l, mrs)?;
                Ok(Self { addr, len, flags })
            }
            _ => Err(ProtoError::UnknownLabel(label)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_requests_round_trip() {
        for r in [
            ObjectRequest::Page {
                object: 7,
                block: 3,
                write: true,
            },
            ObjectRequest::Page {
                object: 7,
                block: 0,
                write: false,
            },
            ObjectRequest::Dirty {
                object: 1,
                block: 2,
            },
            ObjectRequest::Sync {
                object: 1,
                first: 2,
                count: 3,
            },
            ObjectRequest::Release { object: 9 },
        ] {
            let w = r.encode();
            assert_eq!(ObjectRequest::decode(w.label(), w.mrs()), Ok(r));
        }
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
            object: 5,
            offset: 0x2000,
        };
        let w = m.encode();
        assert_eq!(MmapObject::decode(w.label(), w.mrs()), Ok(m));
        assert_eq!(
            MmapObject::decode(Label::MmapObject as u64, &[0, 0, 9 << 32, 0, 0]),
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
}
