//! The vm server's messages: tasks' memory requests (100s), init's control requests (200s),
//! and their results.

use crate::object::Pager;
use crate::wire::{Name, ReplyBody, Wire, fields};
use crate::{Kill, Label, ProtoError};

/// A task's request to vm (the 100s), badged with the task's pid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmRequest {
    /// → the mapping's address (`u64`). `fd` is `u64::MAX` for none; `prot` and `flags`
    /// are checked by vm (`EINVAL`).
    Mmap {
        addr: u64,
        len: u64,
        prot: u64,
        flags: u64,
        fd: u64,
        offset: u64,
    },
    Munmap {
        addr: u64,
        len: u64,
    },
    Mprotect {
        addr: u64,
        len: u64,
        prot: u64,
    },
    /// Print the caller's regions and resident pages on the console.
    Vmmap,
    /// → [`VmStats`].
    VmStats,
}

impl VmRequest {
    pub fn encode(&self) -> Wire {
        match *self {
            Self::Mmap {
                addr,
                len,
                prot,
                flags,
                fd,
                offset,
            } => Wire::request(Label::Mmap, &[addr, len, prot, flags, fd, offset]),
            Self::Munmap { addr, len } => Wire::request(Label::Munmap, &[addr, len]),
            Self::Mprotect { addr, len, prot } => {
                Wire::request(Label::Mprotect, &[addr, len, prot])
            }
            Self::Vmmap => Wire::request(Label::Vmmap, &[]),
            Self::VmStats => Wire::request(Label::VmStats, &[]),
        }
    }

    /// `UnknownLabel` for any label that is not a task's request to vm.
    pub fn decode(label: u64, mrs: &[u64]) -> Result<Self, ProtoError> {
        let l = Label::try_from(label).map_err(ProtoError::UnknownLabel)?;
        Ok(match l {
            Label::Mmap => {
                let [addr, len, prot, flags, fd, offset] = fields(l, mrs)?;
                Self::Mmap {
                    addr,
                    len,
                    prot,
                    flags,
                    fd,
                    offset,
                }
            }
            Label::Munmap => {
                let [addr, len] = fields(l, mrs)?;
                Self::Munmap { addr, len }
            }
            Label::Mprotect => {
                let [addr, len, prot] = fields(l, mrs)?;
                Self::Mprotect { addr, len, prot }
            }
            Label::Vmmap => Self::Vmmap,
            Label::VmStats => Self::VmStats,
            _ => return Err(ProtoError::UnknownLabel(label)),
        })
    }
}

/// init's request to vm (the 200s), badged with init's pid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmControl {
    /// The task's VSpace capability travels with the message.
    NewSpace { pid: u64 },
    /// A private region holding a segment of an ELF file in the initrd: its file bytes start
    /// `initrd_offset` bytes into the initrd.
    MapImage {
        pid: u64,
        vaddr: u64,
        mem_size: u64,
        initrd_offset: u64,
        file_size: u64,
        prot: u64,
    },
    /// The frame capability travels with the message (its pages are mapped at once, and
    /// stay the task's own).
    MapFrame { pid: u64, vaddr: u64, prot: u64 },
    /// The child's VSpace capability travels with the message.
    ForkSpace { parent: u64, child: u64 },
    /// Remove every region but fixed frames (exec).
    Reset { pid: u64 },
    /// Remove everything, free the pages, forget the address space (exit, kill).
    Destroy { pid: u64 },
    /// → `Option<KillRecord>`: the next kill record, if any.
    TakeKills,
    /// The task's name, for console messages.
    SetName { pid: u64, name: Name },
    /// An anonymous private region (stacks, heaps).
    MapAnon {
        pid: u64,
        vaddr: u64,
        len: u64,
        prot: u64,
    },
    /// The file part of an ELF segment on the disk, as a private region of the memory object
    /// of `handle` (one init got from `pager`'s `GetObject`; vm claims it for init with the
    /// first segment, later segments of the same handle share the claim): the pages
    /// holding [`vaddr`, `vaddr + file_size`), whose byte at `vaddr` is the object's byte
    /// `offset` (`vaddr` and `offset` congruent modulo the page size), paged in on demand;
    /// bytes of the last page past `vaddr + file_size` read as zero (the start of `.bss`).
    /// Whole pages past it are init's to map (`MapAnon`).
    MapObject {
        pid: u64,
        vaddr: u64,
        file_size: u64,
        prot: u64,
        pager: Pager,
        handle: u64,
        offset: u64,
    },
    /// A new instance of `pager` (init restarted it after it failed): its endpoint travels
    /// with the message. Regions naming the old instance's handles stay `BUS`.
    SetPager { pager: Pager },
}

impl VmControl {
    /// Whether a capability travels with the request (vm answers `EINVAL` when it is
    /// missing).
    pub const fn carries_cap(&self) -> bool {
        matches!(
            self,
            Self::NewSpace { .. }
                | Self::MapFrame { .. }
                | Self::ForkSpace { .. }
                | Self::SetPager { .. }
        )
    }

    pub fn encode(&self) -> Wire {
        match *self {
            Self::NewSpace { pid } => Wire::request(Label::NewSpace, &[pid]),
            Self::MapImage {
                pid,
                vaddr,
                mem_size,
                initrd_offset,
                file_size,
                prot,
            } => Wire::request(
                Label::MapImage,
                &[pid, vaddr, mem_size, initrd_offset, file_size, prot],
            ),
            Self::MapFrame { pid, vaddr, prot } => {
                Wire::request(Label::MapFrame, &[pid, vaddr, prot])
            }
            Self::ForkSpace { parent, child } => Wire::request(Label::ForkSpace, &[parent, child]),
            Self::Reset { pid } => Wire::request(Label::Reset, &[pid]),
            Self::Destroy { pid } => Wire::request(Label::Destroy, &[pid]),
            Self::TakeKills => Wire::request(Label::TakeKills, &[]),
            Self::SetPager { pager } => Wire::request(Label::SetPager, &[pager as u64]),
            Self::SetName { pid, name } => {
                let [a, b] = name.to_words();
                Wire::request(Label::SetName, &[pid, a, b])
            }
            Self::MapAnon {
                pid,
                vaddr,
                len,
                prot,
            } => Wire::request(Label::MapAnon, &[pid, vaddr, len, prot]),
            Self::MapObject {
                pid,
                vaddr,
                file_size,
                prot,
                pager,
                handle,
                offset,
            } => Wire::request(
                Label::MapObject,
                &[
                    pid,
                    vaddr,
                    file_size,
                    handle,
                    offset,
                    (prot & 0xff) | (pager as u64) << 8,
                ],
            ),
        }
    }

    /// `UnknownLabel` for any label that is not one of init's requests to vm.
    pub fn decode(label: u64, mrs: &[u64]) -> Result<Self, ProtoError> {
        let l = Label::try_from(label).map_err(ProtoError::UnknownLabel)?;
        Ok(match l {
            Label::NewSpace => {
                let [pid] = fields(l, mrs)?;
                Self::NewSpace { pid }
            }
            Label::MapImage => {
                let [pid, vaddr, mem_size, initrd_offset, file_size, prot] = fields(l, mrs)?;
                Self::MapImage {
                    pid,
                    vaddr,
                    mem_size,
                    initrd_offset,
                    file_size,
                    prot,
                }
            }
            Label::MapFrame => {
                let [pid, vaddr, prot] = fields(l, mrs)?;
                Self::MapFrame { pid, vaddr, prot }
            }
            Label::ForkSpace => {
                let [parent, child] = fields(l, mrs)?;
                Self::ForkSpace { parent, child }
            }
            Label::Reset => {
                let [pid] = fields(l, mrs)?;
                Self::Reset { pid }
            }
            Label::Destroy => {
                let [pid] = fields(l, mrs)?;
                Self::Destroy { pid }
            }
            Label::TakeKills => Self::TakeKills,
            Label::SetPager => {
                let [pager] = fields(l, mrs)?;
                Self::SetPager {
                    pager: Pager::try_from(pager).map_err(|_| ProtoError::BadField)?,
                }
            }
            Label::SetName => {
                let [pid, a, b] = fields(l, mrs)?;
                Self::SetName {
                    pid,
                    name: Name::from_words([a, b])?,
                }
            }
            Label::MapAnon => {
                let [pid, vaddr, len, prot] = fields(l, mrs)?;
                Self::MapAnon {
                    pid,
                    vaddr,
                    len,
                    prot,
                }
            }
            Label::MapObject => {
                let [pid, vaddr, file_size, handle, offset, packed] = fields(l, mrs)?;
                if packed >> 16 != 0 {
                    return Err(ProtoError::BadField);
                }
                Self::MapObject {
                    pid,
                    vaddr,
                    file_size,
                    prot: packed & 0xff,
                    pager: Pager::try_from(packed >> 8).map_err(|_| ProtoError::BadField)?,
                    handle,
                    offset,
                }
            }
            _ => return Err(ProtoError::UnknownLabel(label)),
        })
    }
}

/// vm's counters (`VmStats` results, in this order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmStats {
    pub faults: u64,
    pub pages_in_use: u64,
    pub pages_zero_filled: u64,
    pub pages_copied: u64,
    pub zero_page_maps: u64,
    pub chunks: u64,
    /// Capability slots vm holds for tasks: their address spaces, installed page tables,
    /// the pagers' blocks it maps (not its chunks, nor empty page tables it keeps for
    /// reuse). Back where it was once the tasks that caused it are gone.
    pub slots: u64,
}

impl VmStats {
    pub const WORDS: usize = 7;

    pub fn encode(&self) -> [u64; Self::WORDS] {
        [
            self.faults,
            self.pages_in_use,
            self.pages_zero_filled,
            self.pages_copied,
            self.zero_page_maps,
            self.chunks,
            self.slots,
        ]
    }

    pub fn decode(w: &[u64]) -> Result<Self, ProtoError> {
        let Some(
            &[
                faults,
                pages_in_use,
                pages_zero_filled,
                pages_copied,
                zero_page_maps,
                chunks,
                slots,
            ],
        ) = w.first_chunk::<{ Self::WORDS }>()
        else {
            return Err(ProtoError::Short);
        };
        Ok(Self {
            faults,
            pages_in_use,
            pages_zero_filled,
            pages_copied,
            zero_page_maps,
            chunks,
            slots,
        })
    }
}

impl ReplyBody for VmStats {
    fn encode_body(&self, w: &mut Wire) {
        for word in self.encode() {
            w.push(word);
        }
    }

    fn decode_body(w: &[u64]) -> Result<Self, ProtoError> {
        Self::decode(w)
    }
}

/// A task vm stopped, for init (`TakeKills`' result).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KillRecord {
    /// Never 0 (0 in the reply means "none left").
    pub pid: u64,
    pub kind: Kill,
    /// The fault address.
    pub addr: u64,
}

/// `TakeKills`' result: pid, [`Kill`] reason, address; three zeroes when none is left.
impl ReplyBody for Option<KillRecord> {
    fn encode_body(&self, w: &mut Wire) {
        let words = self.map_or([0; 3], |k| [k.pid, k.kind as u64, k.addr]);
        for word in words {
            w.push(word);
        }
    }

    fn decode_body(w: &[u64]) -> Result<Self, ProtoError> {
        let Some(&[pid, kind, addr]) = w.first_chunk::<3>() else {
            return Err(ProtoError::Short);
        };
        if pid == 0 {
            return if kind == 0 && addr == 0 {
                Ok(None)
            } else {
                Err(ProtoError::BadField)
            };
        }
        let kind = Kill::try_from(kind).map_err(|_| ProtoError::BadField)?;
        Ok(Some(KillRecord { pid, kind, addr }))
    }
}
