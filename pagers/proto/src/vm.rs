//! The vm server's messages: tasks' memory requests (100s), init's control requests (200s),
//! and their results.

use crate::object::Pager;
use crate::wire::{Name, ReplyBody, Wire};
use crate::{Kill, Label, ProtoError};

abi::numbered! {
    /// What a region maps ([`RegionInfo`]).
    pub enum RegionKind {
        /// Anonymous private memory (heap, stack, `MAP_ANONYMOUS|MAP_PRIVATE`).
        Anon = 1,
        /// A segment of a program's image.
        Image = 2,
        /// Frames init mapped (argument areas, the IPC buffer).
        Frame = 3,
        /// A file's pages (the file server's).
        File = 4,
        /// A shm object's pages.
        Shm = 5,
        /// `MAP_SHARED|MAP_ANONYMOUS`: an anonymous shm object.
        SharedAnon = 6,
    }
}

crate::interface! {
    /// A task's request to vm (the 100s), badged with the task's pid.
    pub enum VmRequest {
        /// → the mapping's address (`u64`). `fd` is `u64::MAX` for none; `prot` and `flags`
        /// are checked by vm (`EINVAL`).
        Mmap { addr: u64, len: u64, prot: u64, flags: u64, fd: u64, offset: u64 } = Label::Mmap
            => fn mmap -> u64;
        Munmap { addr: u64, len: u64 } = Label::Munmap => fn munmap -> ();
        Mprotect { addr: u64, len: u64, prot: u64 } = Label::Mprotect => fn mprotect -> ();
        /// Print the caller's regions and resident pages on the console.
        Vmmap = Label::Vmmap => fn vmmap -> ();
        /// → [`VmStats`].
        VmStats = Label::VmStats => fn vm_stats -> VmStats;
        /// Task `pid`'s address space in sum → [`SpaceInfo`]; `ESRCH` for no such task.
        /// Any task may ask of any (as Linux's `/proc/<pid>/status` for the same user: there
        /// is one user, and no address is secret here).
        SpaceInfo { pid: u64 } = Label::SpaceInfo => fn space_info -> SpaceInfo;
        /// The first region of task `pid` that ends above `from` → [`RegionInfo`]; `ESRCH`
        /// for no such task, `ENOENT` past the last region. A listing asks from 0, then
        /// from each answer's end: one region a call, whatever the number of regions.
        RegionAt { pid: u64, from: u64 } = Label::RegionAt => fn region_at -> RegionInfo;
    }
}

crate::interface! {
    /// init's request to vm (the 200s), badged with init's pid.
    pub enum VmControl {
        /// The task's VSpace capability travels with the message.
        NewSpace { pid: u64 } = Label::NewSpace => fn new_space -> ();
        /// A private region holding a segment of an ELF file in the initrd: its file bytes
        /// start `initrd_offset` bytes into the initrd.
        MapImage {
            pid: u64,
            vaddr: u64,
            mem_size: u64,
            initrd_offset: u64,
            file_size: u64,
            prot: u64,
        } = Label::MapImage => fn map_image -> ();
        /// The frame capability travels with the message (its pages are mapped at once, and
        /// stay the task's own).
        MapFrame { pid: u64, vaddr: u64, prot: u64 } = Label::MapFrame => fn map_frame -> ();
        /// The child's VSpace capability travels with the message.
        ForkSpace { parent: u64, child: u64 } = Label::ForkSpace => fn fork_space -> ();
        /// Remove every region but fixed frames (exec).
        Reset { pid: u64 } = Label::Reset => fn reset -> ();
        /// Remove everything, free the pages, forget the address space (exit, kill).
        Destroy { pid: u64 } = Label::Destroy => fn destroy -> ();
        /// → `Option<KillRecord>`: the next kill record, if any.
        TakeKills = Label::TakeKills => fn take_kills -> Option<KillRecord>;
        /// The task's name, for console messages.
        SetName { pid: u64, name: Name } = Label::SetName => fn set_name -> ();
        /// An anonymous private region (stacks, heaps).
        MapAnon { pid: u64, vaddr: u64, len: u64, prot: u64 } = Label::MapAnon
            => fn map_anon -> ();
        /// The file part of an ELF segment on the disk, as a private region of the memory
        /// object of `handle` (one init got from `pager`'s `GetObject`; vm claims it for init
        /// with the first segment, later segments of the same handle share the claim): the
        /// pages holding [`vaddr`, `vaddr + file_size`), whose byte at `vaddr` is the object's
        /// byte `offset` (`vaddr` and `offset` congruent modulo the page size), paged in on
        /// demand; bytes of the last page past `vaddr + file_size` read as zero (the start of
        /// `.bss`). Whole pages past it are init's to map (`MapAnon`). Seven words: the
        /// seventh travels in the IPC buffer.
        MapObject {
            pid: u64,
            vaddr: u64,
            file_size: u64,
            prot: u64,
            pager: Pager,
            handle: u64,
            offset: u64,
        } = Label::MapObject => fn map_object -> ();
        /// A new instance of `pager` (init restarted it after it failed): its endpoint travels
        /// with the message. Regions naming the old instance's handles stay `BUS`.
        SetPager { pager: Pager } = Label::SetPager => fn set_pager -> ();
    }
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
    /// Bytes of vm's heap in use (its region maps, page maps, tables of tasks and objects):
    /// what a task's regions and pages cost vm, measured (docs/pagers.md).
    pub heap_bytes: u64,
}

impl VmStats {
    pub const WORDS: usize = 8;

    pub fn encode(&self) -> [u64; Self::WORDS] {
        [
            self.faults,
            self.pages_in_use,
            self.pages_zero_filled,
            self.pages_copied,
            self.zero_page_maps,
            self.chunks,
            self.slots,
            self.heap_bytes,
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
                heap_bytes,
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
            heap_bytes,
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

/// `SpaceInfo`'s result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpaceInfo {
    pub regions: u64,
    /// Pages mapped in the task now (its own, shared, the zero page, file pages, frames).
    pub resident: u64,
}

/// MR1 = regions, MR2 = resident pages.
impl ReplyBody for SpaceInfo {
    fn encode_body(&self, w: &mut Wire) {
        w.push(self.regions);
        w.push(self.resident);
    }

    fn decode_body(w: &[u64]) -> Result<Self, ProtoError> {
        let Some(&[regions, resident]) = w.first_chunk::<2>() else {
            return Err(ProtoError::Short);
        };
        Ok(Self { regions, resident })
    }
}

/// `RegionAt`'s result: one region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionInfo {
    pub start: u64,
    pub end: u64,
    /// `prot::READ | WRITE | EXEC` bits.
    pub prot: u64,
    pub kind: RegionKind,
    /// A shared mapping (writes reach the object and its other mappers).
    pub shared: bool,
    /// Pages of the region mapped now.
    pub resident: u64,
}

/// MR1 = start, MR2 = end, MR3 = prot, MR4 = [`RegionKind`], MR5 = shared, MR6 = resident.
impl ReplyBody for RegionInfo {
    fn encode_body(&self, w: &mut Wire) {
        let words = [
            self.start,
            self.end,
            self.prot,
            self.kind as u64,
            u64::from(self.shared),
            self.resident,
        ];
        for word in words {
            w.push(word);
        }
    }

    fn decode_body(w: &[u64]) -> Result<Self, ProtoError> {
        let Some(&[start, end, prot, kind, shared, resident]) = w.first_chunk::<6>() else {
            return Err(ProtoError::Short);
        };
        let kind = RegionKind::try_from(kind).map_err(|_| ProtoError::BadField)?;
        let shared = match shared {
            0 => false,
            1 => true,
            _ => return Err(ProtoError::BadField),
        };
        if end < start || prot & !crate::prot::MASK != 0 {
            return Err(ProtoError::BadField);
        }
        Ok(Self {
            start,
            end,
            prot,
            kind,
            shared,
            resident,
        })
    }
}
