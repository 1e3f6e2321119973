//! The vm server's logic, free of system calls so that it is tested on the host: every task's
//! region map and pages, the fault decisions (zero page, fill, copy-on-write), mmap/munmap/
//! mprotect, fork, reset and destroy. What needs the kernel (mapping, unmapping, page
//! tables, touching page contents, getting chunks) goes through a [`Machine`], which the
//! server binary implements with system calls and the tests with a model.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod gaps;
pub mod object;
pub mod pages;
pub mod pending;
pub mod region;

use abi::message::vm_fault::Access;
use abi::object::MapFlags;
use alloc::collections::{BTreeMap, VecDeque};
use object::Objects;
use pages::{BLOCK_RO, BLOCK_RW, NONE, PageId, PageMap, Pool, ZERO_PAGE, is_block};
use proto::object::{Claimed, MmapObject, ObjectRequest, Pager, ms};
use proto::shm::AnonObject;
use proto::{Errno, Kill, Name, PAGE_SIZE, VmStats, map, prot};
use region::{Kind, Region, RegionMap, Source, page_down, page_up, range_end};

pub use proto::KillRecord;

/// What vm needs from the kernel and from memory. Methods that can fail return `ENOMEM`
/// (out of page tables or slots) or the kernel's error as an errno.
pub trait Machine {
    /// An address space as the machine knows it (its VSpace capability and page tables).
    type Space;

    /// Capability slots held for tasks ([`VmStats::slots`]); 0 where nobody counts them.
    fn slots_in_use(&self) -> u64 {
        0
    }

    /// Installs the level-1..3 tables covering the 2 MiB around `va` if missing.
    fn tables(&mut self, s: &mut Self::Space, va: u64) -> Result<(), Errno>;
    /// Maps pages `first .. first + count` (all in one chunk) at `va` with `flags`.
    fn map(
        &mut self,
        s: &Self::Space,
        va: u64,
        first: PageId,
        count: u64,
        flags: MapFlags,
    ) -> Result<(), Errno>;
    /// Maps pages `first .. first + pages` of the frame capability `frame` (vm's CSpace) at
    /// `va`. Fails (and maps nothing) if a target page is mapped or the capability is gone.
    fn map_frame(
        &mut self,
        s: &Self::Space,
        frame: u64,
        first: u64,
        va: u64,
        pages: u64,
        flags: MapFlags,
    ) -> Result<(), Errno>;
    /// Pages in the frame capability `frame`.
    fn frame_pages(&mut self, frame: u64) -> Result<u64, Errno>;
    /// Forgets vm's copy of a frame capability (its mappings go with it).
    fn drop_frame(&mut self, frame: u64);
    /// Unmaps whatever is mapped in [`va`, `va + len`).
    fn unmap(&mut self, s: &Self::Space, va: u64, len: u64);
    /// Changes the rights of whatever is mapped in [`va`, `va + len`).
    fn protect(&mut self, s: &Self::Space, va: u64, len: u64, flags: MapFlags);
    /// Fills page `p` with zeroes.
    fn zero(&mut self, p: PageId);
    /// Copies page `src` to page `dst`.
    fn copy(&mut self, dst: PageId, src: PageId);
    /// Fills bytes [`from`, page end) of page `p` with zeroes.
    fn zero_tail(&mut self, p: PageId, from: u64);
    /// Copies page `index` of the frame capability `frame` to page `dst`.
    fn copy_from_frame(&mut self, dst: PageId, frame: u64, index: u64) -> Result<(), Errno>;
    /// Whether vm has an endpoint for `pager`.
    fn has_pager(&self, pager: Pager) -> bool;
    /// Which instance of `pager` vm talks to (0 for the first; init's `SetPager` after a
    /// restart raises it). Handles and objects vm keeps carry it at [`GEN_SHIFT`].
    fn generation(&self, _pager: Pager) -> u64 {
        0
    }
    /// Asks the shm server for a new anonymous object of `size` bytes (`CreateAnon`) → its
    /// handle (vm's, claimed) and object. `ENODEV` without a shm server.
    fn anon_object(&mut self, size: u64) -> Result<AnonObject, Errno>;
    /// Claims `handle` from `pager` for a mapping task `pid` asked for
    /// (`ObjectRequest::Claim`) → the object and its rights. `EBADF` when it is not `pid`'s
    /// to give.
    fn claim(&mut self, pager: Pager, handle: u64, pid: u64) -> Result<Claimed, Errno>;
    /// Calls `pager` with `req`: MR1 of its reply, and the slot of vm's CSpace that a
    /// capability coming with the reply went to (the caller owns it).
    ///
    /// [`WAIT`] (`EINPROGRESS`) when the machine sent the request and its answer comes
    /// later (vm never waits for a pager): the operation that asked stops without any
    /// effect it cannot repeat, and the server runs it again once the answer is in, when
    /// the same call returns the answer. `anon_object` and `claim` may wait the same way.
    fn pager_call(&mut self, pager: Pager, req: ObjectRequest)
    -> Result<(u64, Option<u64>), Errno>;
    /// [`Machine::pager_call`] for `ObjectPage` of block `k`: faults on one block, through
    /// whichever handle, may share one request.
    fn pager_page(
        &mut self,
        _k: object::BlockKey,
        pager: Pager,
        req: ObjectRequest,
    ) -> Result<(u64, Option<u64>), Errno> {
        self.pager_call(pager, req)
    }
    /// Sends `req` to `pager` with nobody waiting for the answer (the `ObjectSync` and
    /// `ObjectRelease` of mappings that are gone; the pager sees them in order with the
    /// requests that follow).
    fn pager_post(&mut self, pager: Pager, req: ObjectRequest) {
        let _ = self.pager_call(pager, req);
    }
    /// Copies `len` bytes of the initrd from `initrd_offset` to page `dst` at byte `at`.
    fn fill(&mut self, dst: PageId, at: u64, initrd_offset: u64, len: u64);
    /// Gets one more zeroed chunk and makes its pages usable (mapped in vm); false if none.
    fn more_chunk(&mut self) -> bool;
    /// Ends an address space: its page tables (and with them every mapping) go back to the
    /// machine's pool, and its VSpace capability is deleted.
    fn destroy(&mut self, s: Self::Space);
    /// A clock in microseconds (0 where there is none: then every refault counts as quick).
    fn now_us(&self) -> u64 {
        0
    }
    /// Whether vm's heap is below its low-water mark: requests that would make it hold
    /// more (a new task, a fork, a region, a page group) are then refused (`ENOMEM`, or
    /// `BUS` for a fault), so that the server never runs out of it.
    fn heap_low(&self) -> bool {
        false
    }
    /// Bytes of vm's heap in use (0 where there is none to ask).
    fn heap_used(&self) -> u64 {
        0
    }
}

/// One task's address space.
pub struct Task<S> {
    /// For console messages (`SetName`); `None` until init names the task.
    pub name: Option<Name>,
    pub regions: RegionMap,
    pub pages: PageMap,
    pub space: S,
}

impl<S> Task<S> {
    pub fn name(&self) -> &str {
        self.name.as_ref().map_or("", Name::as_str)
    }
}

/// The arguments of `mmap` (`proto::VmRequest::Mmap`'s fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmapArgs {
    pub addr: u64,
    pub len: u64,
    pub prot: u64,
    pub flags: u64,
    /// `u64::MAX` for none.
    pub fd: u64,
    pub offset: u64,
}

/// What to do with a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Reply with a map item: `page` at `va` with `flags`, then the task resumes.
    Map {
        page: PageId,
        va: u64,
        flags: MapFlags,
    },
    /// Reply "resume" (the mapping was fixed in place).
    Resume,
    /// The task is stopped: do not reply; a kill record was queued.
    Killed(Kill),
    /// Nobody to answer (no such task): do not reply.
    Ignore,
    /// The fault needs a pager's answer, which the machine has asked for ([`WAIT`]): do
    /// not reply yet; handle the fault again when the answer is in.
    Wait,
}

/// The error a [`Machine`] pager call returns when the answer will come later.
pub const WAIT: Errno = Errno::EINPROGRESS;

/// The mapping rights for `prot` bits (write and execute need read in a mapping).
pub fn prot_flags(p: u64) -> MapFlags {
    let mut f = p & (prot::READ | prot::WRITE | prot::EXEC);
    if f != 0 {
        f |= MapFlags::READ.0;
    }
    MapFlags(f)
}

/// Single pages a fork maps into the child at once; beyond these, a run of one page is left
/// for the child's first touch to map (a fault, as for any page vm holds for a task but has
/// not mapped). One `FrameMap` per scattered page was most of a fork of a task with many
/// small regions, and a child that `exec`s soon touches few of them; a task's own few (its
/// stack, data and heap pages) stay within the budget and are mapped as before.
pub const FORK_EAGER_SINGLES: u32 = 64;

/// Maps a run of `n` of the parent's pages into a fork child, read-only, unless it is a
/// single page and `singles` (the budget of [`FORK_EAGER_SINGLES`]) is spent.
fn map_run<M: Machine>(
    m: &mut M,
    space: &M::Space,
    (va, first, n): (u64, PageId, u32),
    flags: MapFlags,
    singles: &mut u32,
) -> Result<(), Errno> {
    if n < 2 {
        if *singles == 0 {
            return Ok(());
        }
        *singles -= 1;
    }
    m.map(space, va, first, u64::from(n), flags)
}

fn without_write(f: MapFlags) -> MapFlags {
    MapFlags(f.0 & !MapFlags::WRITE.0)
}

/// `MAP_SHARED | MAP_ANONYMOUS` mappings (each an object of the shm server) a task may
/// have (`ENOMEM` beyond), so that one task cannot take all of shm's objects.
pub const MAX_TASK_ANON_OBJECTS: usize = 256;

/// A handle vm claimed, while a region of some task names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Held {
    /// The task it was claimed for (init's handles serve every segment of one program).
    owner: u64,
    /// The object and rights the pager answered.
    claimed: Claimed,
    /// A shm anonymous object vm made for `MAP_SHARED | MAP_ANONYMOUS` (`vmmap`: `anon`).
    anon: bool,
}

/// Where vm keeps a pager's generation in the handles and object numbers it records: a
/// handle or object of a pager instance that is gone (init restarted the pager) never
/// matches one of the new instance, whose numbers start again; `Machine::pager_call`
/// refuses (`ENODEV`, so a fault is `BUS`) a request naming one.
pub const GEN_SHIFT: u32 = 48;
/// The pager's own bits of a handle vm records.
pub const HANDLE_MASK: u64 = (1 << GEN_SHIFT) - 1;
/// The most restarts of one pager vm counts.
pub const MAX_GENERATION: u64 = (1 << (64 - GEN_SHIFT)) - 1;

/// `req` as instance `generation` of its pager knows it (the handle without vm's
/// generation bits), or `ENODEV` when it names a handle of an older instance, which is gone
/// (`Machine::pager_call` sends nothing then).
pub fn for_instance(req: ObjectRequest, generation: u64) -> Result<ObjectRequest, Errno> {
    let own = |h: u64| {
        if h >> GEN_SHIFT == generation {
            Ok(h & HANDLE_MASK)
        } else {
            Err(Errno::ENODEV)
        }
    };
    Ok(match req {
        ObjectRequest::Page {
            handle,
            block,
            write,
        } => ObjectRequest::Page {
            handle: own(handle)?,
            block,
            write,
        },
        ObjectRequest::Dirty { handle, block } => ObjectRequest::Dirty {
            handle: own(handle)?,
            block,
        },
        ObjectRequest::Sync {
            handle,
            first,
            count,
        } => ObjectRequest::Sync {
            handle: own(handle)?,
            first,
            count,
        },
        ObjectRequest::Release { handle } => ObjectRequest::Release {
            handle: own(handle)?,
        },
        ObjectRequest::Claim { handle, pid } => ObjectRequest::Claim {
            handle: own(handle)?,
            pid,
        },
    })
}

/// The key of [`Vm::handles`].
fn held_key((pager, handle): Source) -> (u64, u64) {
    (pager as u64, handle)
}

/// The whole server state.
pub struct Vm<M: Machine> {
    pub m: M,
    tasks: BTreeMap<u64, Task<M::Space>>,
    pool: Pool,
    kills: VecDeque<KillRecord>,
    /// The block capabilities of memory objects that tasks map.
    objects: Objects,
    /// The handles vm claimed (or made, for `MAP_SHARED | MAP_ANONYMOUS`), until their
    /// `ObjectRelease`: when no region of any task names them any more.
    handles: BTreeMap<(u64, u64), Held>,
    initrd_size: u64,
    faults: u64,
    zero_filled: u64,
    copied: u64,
    zero_maps: u64,
    /// Pages of private object regions (task, address) whose block was taken back while it
    /// was mapped there, and when vm mapped the block again (`refaulted`); those taken back
    /// again within [`THRASH_US`] the task gets a copy of (`refaults`, until the pager's
    /// answer is in).
    refaulted: BTreeMap<(u64, u64), u64>,
    refaults: alloc::collections::BTreeSet<(u64, u64)>,
}

/// The most pages [`Vm::refaults`] remembers (a page forgotten is mapped from its block).
const MAX_REFAULTS: usize = 1024;

/// A page whose block is taken back twice within this time (microseconds) is thrashing:
/// the pager evicts it before the task can use it.
const THRASH_US: u64 = 20_000;

impl<M: Machine> Vm<M> {
    /// A vm whose initrd is `initrd_size` bytes. Asks for the first chunk (its page 0 is the
    /// zero page); `None` if there is none.
    pub fn new(mut m: M, initrd_size: u64) -> Option<Self> {
        if !m.more_chunk() {
            return None;
        }
        let mut pool = Pool::new();
        pool.add_chunk();
        Some(Self {
            m,
            tasks: BTreeMap::new(),
            pool,
            kills: VecDeque::new(),
            objects: Objects::default(),
            refaulted: BTreeMap::new(),
            refaults: alloc::collections::BTreeSet::new(),
            handles: BTreeMap::new(),
            initrd_size,
            faults: 0,
            zero_filled: 0,
            copied: 0,
            zero_maps: 0,
        })
    }

    pub fn stats(&self) -> VmStats {
        VmStats {
            faults: self.faults,
            pages_in_use: self.pool.in_use(),
            pages_zero_filled: self.zero_filled,
            pages_copied: self.copied,
            zero_page_maps: self.zero_maps,
            chunks: u64::from(self.pool.chunks()),
            // Idle block capabilities are a cache (`object::MAX_IDLE`), not in use.
            slots: self
                .m
                .slots_in_use()
                .saturating_sub(self.objects.idle() as u64),
            heap_bytes: self.m.heap_used(),
        }
    }

    pub fn task(&self, pid: u64) -> Option<&Task<M::Space>> {
        self.tasks.get(&pid)
    }

    /// The task's name for console messages.
    pub fn name(&self, pid: u64) -> &str {
        self.tasks.get(&pid).map_or("?", |t| t.name())
    }

    // ---- init's requests ----

    /// `NewSpace`: a task with no regions in `space`. On error the space is handed back.
    pub fn new_space(&mut self, pid: u64, space: M::Space) -> Result<(), (Errno, M::Space)> {
        if pid < proto::pid::FIRST_USER {
            return Err((Errno::EINVAL, space));
        }
        if self.tasks.contains_key(&pid) {
            return Err((Errno::EEXIST, space));
        }
        if self.m.heap_low() {
            return Err((Errno::ENOMEM, space));
        }
        self.tasks.insert(
            pid,
            Task {
                name: None,
                regions: RegionMap::new(),
                pages: PageMap::new(),
                space,
            },
        );
        Ok(())
    }

    /// `SetName`.
    pub fn set_name(&mut self, pid: u64, name: Name) -> Result<(), Errno> {
        let t = self.tasks.get_mut(&pid).ok_or(Errno::ESRCH)?;
        t.name = Some(name);
        Ok(())
    }

    /// The whole pages holding [`vaddr`, `vaddr + len`), checked to be user addresses.
    fn page_span(vaddr: u64, len: u64) -> Result<(u64, u64), Errno> {
        let end = vaddr
            .checked_add(len)
            .and_then(page_up)
            .ok_or(Errno::EINVAL)?;
        let start = page_down(vaddr);
        if len == 0 || start < proto::USER_MIN || end > proto::USER_END {
            return Err(Errno::EINVAL);
        }
        Ok((start, end))
    }

    /// `MapImage`: a private region of an ELF segment's bytes in the initrd.
    pub fn map_image(
        &mut self,
        pid: u64,
        vaddr: u64,
        mem_size: u64,
        initrd_offset: u64,
        file_size: u64,
        prot_bits: u64,
    ) -> Result<(), Errno> {
        let t = self.tasks.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let (start, end) = Self::page_span(vaddr, mem_size)?;
        if file_size > mem_size
            || prot_bits & !prot::MASK != 0
            || initrd_offset
                .checked_add(file_size)
                .is_none_or(|e| e > self.initrd_size)
        {
            return Err(Errno::EINVAL);
        }
        t.regions.insert(Region {
            start,
            end,
            prot: prot_bits,
            kind: Kind::Image {
                vaddr,
                initrd_offset,
                file_size,
            },
        })
    }

    /// `MapAnon`: a private anonymous region.
    pub fn map_anon(
        &mut self,
        pid: u64,
        vaddr: u64,
        len: u64,
        prot_bits: u64,
    ) -> Result<(), Errno> {
        let t = self.tasks.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let (start, end) = Self::page_span(vaddr, len)?;
        if prot_bits & !prot::MASK != 0 {
            return Err(Errno::EINVAL);
        }
        t.regions.insert(Region {
            start,
            end,
            prot: prot_bits,
            kind: Kind::Anon,
        })
    }

    /// `MapFrame`: `frame` (vm's copy of init's capability) mapped at once at `vaddr`. On
    /// success the region owns the capability; on error the caller deletes it.
    pub fn map_frame(
        &mut self,
        pid: u64,
        vaddr: u64,
        prot_bits: u64,
        frame: u64,
    ) -> Result<(), Errno> {
        let t = self.tasks.get_mut(&pid).ok_or(Errno::ESRCH)?;
        if !vaddr.is_multiple_of(PAGE_SIZE) || prot_bits & !prot::MASK != 0 {
            return Err(Errno::EINVAL);
        }
        let pages = self.m.frame_pages(frame)?;
        let (start, end) = Self::page_span(vaddr, pages * PAGE_SIZE)?;
        if !t.regions.is_free(start, end) {
            return Err(Errno::EINVAL);
        }
        let mut va = start;
        while va < end {
            self.m.tables(&mut t.space, va)?;
            va = (va | ((2 << 20) - 1)) + 1;
        }
        self.m
            .map_frame(&t.space, frame, 0, start, pages, prot_flags(prot_bits))?;
        t.regions.insert(Region {
            start,
            end,
            prot: prot_bits,
            kind: Kind::Fixed { frame },
        })
    }

    /// Queues a kill found outside the fault logic (a fault reply the kernel refused).
    pub fn report(&mut self, k: KillRecord) {
        self.kills.push_back(k);
    }

    /// The newest kill record (the one an [`Outcome::Killed`] just queued).
    pub fn last_kill(&self) -> Option<KillRecord> {
        self.kills.back().copied()
    }

    /// `TakeKills`: the oldest kill record.
    pub fn take_kill(&mut self) -> Option<KillRecord> {
        self.kills.pop_front()
    }

    /// `Reset`: every region but fixed frames goes (exec).
    pub fn reset(&mut self, pid: u64) -> Result<(), Errno> {
        self.forget_refaults(pid, 0, u64::MAX);
        let t = self.tasks.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let (m, pool, objects) = (&mut self.m, &mut self.pool, &mut self.objects);
        let mut gone = alloc::vec::Vec::new();
        t.regions.retain(|r| {
            if r.kind.is_paged() {
                m.unmap(&t.space, r.start, r.len());
                if r.kind.object().is_some() {
                    object::take_pages(m, objects, &mut t.pages, r, |p| {
                        pool.release(p);
                    });
                    gone.push(*r);
                }
                t.pages.take_range(r.start, r.end, |_, p| {
                    pool.release(p);
                });
            }
            !r.kind.is_paged()
        });
        self.objects_gone(&gone);
        Ok(())
    }

    /// `Destroy`: everything goes, the page tables return to the pool, the VSpace is
    /// forgotten.
    pub fn destroy(&mut self, pid: u64) -> Result<(), Errno> {
        self.forget_refaults(pid, 0, u64::MAX);
        let mut t = self.tasks.remove(&pid).ok_or(Errno::ESRCH)?;
        // The tables go first: no page is reused while still mapped.
        let frames: alloc::vec::Vec<u64> = t
            .regions
            .iter()
            .filter_map(|r| match r.kind {
                Kind::Fixed { frame } => Some(frame),
                _ => None,
            })
            .collect();
        let gone = self.take_object_pages(&mut t, 0, proto::USER_END);
        let pool = &mut self.pool;
        t.pages.take_range(0, proto::USER_END, |_, p| {
            pool.release(p);
        });
        self.m.destroy(t.space);
        for f in frames {
            self.m.drop_frame(f);
        }
        self.kills.retain(|k| k.pid != pid);
        self.objects_gone(&gone);
        Ok(())
    }

    /// Takes the page entries of `t`'s object regions in [`start`, `end`) (whole regions),
    /// dropping their blocks' counts and releasing private copies; the regions, for
    /// [`Vm::objects_gone`].
    fn take_object_pages(
        &mut self,
        t: &mut Task<M::Space>,
        start: u64,
        end: u64,
    ) -> alloc::vec::Vec<Region> {
        let (m, pool, objects) = (&mut self.m, &mut self.pool, &mut self.objects);
        let gone: alloc::vec::Vec<Region> = t
            .regions
            .iter()
            .filter(|r| r.kind.object().is_some() && r.start < end && start < r.end)
            .copied()
            .collect();
        for r in &gone {
            object::take_pages(m, objects, &mut t.pages, r, |p| {
                pool.release(p);
            });
        }
        gone
    }

    /// After object regions left a task (their mappings and entries gone): `ObjectSync` for
    /// the shared ones, and `ObjectRelease` for each handle no region names any more.
    fn objects_gone(&mut self, gone: &[Region]) {
        for r in gone {
            if let Some((pager, req)) = object::sync_request(r, r.start, r.end) {
                self.m.pager_post(pager, req);
            }
        }
        let mut done: alloc::vec::Vec<Source> = alloc::vec::Vec::new();
        for r in gone {
            let Some(h) = r.kind.handle() else {
                continue;
            };
            if done.contains(&h) {
                continue;
            }
            done.push(h);
            self.release_if_unmapped(h);
        }
    }

    /// `ObjectRelease` of handle `h` if no region of any task names it (for an anonymous
    /// shm object, this frees it; for a file, it may complete an `unlink`).
    fn release_if_unmapped(&mut self, h: Source) {
        // One lookup per task (a walk over every task's regions cost an `munmap` of a
        // shared mapping as much as all regions in the system).
        let mapped = self.tasks.values().any(|t| t.regions.maps_handle(h));
        if !mapped {
            self.handles.remove(&held_key(h));
            let (pager, handle) = h;
            self.m.pager_post(pager, ObjectRequest::Release { handle });
        }
    }

    /// Claims `handle` of `pager` for task `owner`'s mapping (or, for init's, takes the
    /// claim of an earlier segment of the same program) → the object and rights.
    fn claim(&mut self, pager: Pager, handle: u64, owner: u64) -> Result<(u64, Claimed), Errno> {
        // The pager's numbers have no generation bits: a number with them is made up.
        if handle > HANDLE_MASK {
            return Err(Errno::EBADF);
        }
        let generation = self.m.generation(pager) << GEN_SHIFT;
        let tagged = handle | generation;
        let h = (pager, tagged);
        if let Some(held) = self.handles.get(&held_key(h)) {
            // A claimed handle is vm's: only init's program loading maps one again.
            return if owner == proto::pid::INIT && held.owner == owner {
                Ok((tagged, held.claimed))
            } else {
                Err(Errno::EBADF)
            };
        }
        let mut claimed = self.m.claim(pager, handle, owner)?;
        claimed.object = (claimed.object & HANDLE_MASK) | generation;
        self.handles.insert(
            held_key(h),
            Held {
                owner,
                claimed,
                anon: false,
            },
        );
        Ok((tagged, claimed))
    }

    /// `ForkSpace`: `child` (a new task in `space`) gets a copy of `parent`'s regions;
    /// private pages are shared copy-on-write, shared ones stay shared, fixed frames are
    /// not copied. On error nothing of the child is left and its space is handed back.
    pub fn fork(
        &mut self,
        parent: u64,
        child: u64,
        space: M::Space,
    ) -> Result<(), (Errno, M::Space)> {
        if !self.tasks.contains_key(&parent) {
            return Err((Errno::ESRCH, space));
        }
        if child < proto::pid::FIRST_USER || self.tasks.contains_key(&child) {
            return Err((Errno::EEXIST, space));
        }
        if self.m.heap_low() {
            return Err((Errno::ENOMEM, space));
        }
        // The child's regions: the parent's paged ones (not its fixed frames), copied at once.
        let regions = match self.tasks.get(&parent) {
            Some(p) => p.regions.try_clone_filtered(|r| r.kind.is_paged()),
            None => Err(Errno::ESRCH),
        };
        let regions = match regions {
            Ok(r) => r,
            Err(e) => return Err((e, space)),
        };
        let mut c = Task {
            name: None,
            regions,
            pages: PageMap::new(),
            space,
        };
        let forked = self
            .fork_pages(parent, &mut c)
            .and_then(|objects| self.fork_objects(parent, &mut c, &objects));
        match forked {
            Ok(()) => {
                self.tasks.insert(child, c);
                Ok(())
            }
            Err(e) => {
                self.take_object_pages(&mut c, 0, proto::USER_END);
                let pool = &mut self.pool;
                c.pages.take_range(0, proto::USER_END, |_, p| {
                    pool.release(p);
                });
                Err((e, c.space))
            }
        }
    }

    /// The parent's own pages (anonymous and image regions) in the child, shared
    /// copy-on-write; the starts of the parent's object regions, which
    /// [`Vm::fork_objects`] does (a task has few: it need not look at every region).
    fn fork_pages(
        &mut self,
        parent: u64,
        c: &mut Task<M::Space>,
    ) -> Result<alloc::vec::Vec<u64>, Errno> {
        let Vm { m, tasks, pool, .. } = self;
        let p = tasks.get(&parent).ok_or(Errno::ESRCH)?;
        c.name = p.name;
        // The parent's write protection, batched across regions: one `VSpaceProtect` for a
        // range of touching regions with the same flags, stretched over the regions between
        // them that have no page mapped (the kernel changes only what is mapped). Another region with
        // pages, an object region or a fixed frame (their pages are mapped, and not ours to
        // change) ends it.
        let mut protect: Option<(u64, u64, MapFlags)> = None;
        let mut singles = FORK_EAGER_SINGLES;
        let flush = |m: &mut M, protect: &mut Option<(u64, u64, MapFlags)>| {
            if let Some((start, end, flags)) = protect.take() {
                m.protect(&p.space, start, end - start, flags);
            }
        };
        let mut last_end = 0;
        let mut objects = alloc::vec::Vec::new();
        for r in p.regions.iter() {
            if r.kind.object().is_some() {
                objects.push(r.start);
            }
            // Stretch only over touching regions: over a gap the kernel would walk
            // translation tables for nothing.
            let touches = r.start == last_end;
            last_end = r.end;
            // vm's own pages (anonymous and image regions): not a fixed frame or an object.
            let own = r.kind.is_paged() && r.kind.object().is_none();
            if !touches || !own {
                flush(m, &mut protect);
            }
            if !own {
                continue;
            }
            let flags = prot_flags(r.prot);
            // Anonymous and image regions are private: the child maps every page read-only.
            let child_flags = without_write(flags);
            let mut any = false;
            // Runs of consecutive pages of one chunk at consecutive addresses (across groups:
            // the child's tables for a group are installed before a run reaches it) become
            // one mapping: (address, first page, pages).
            let mut run: Option<(u64, PageId, u32)> = None;
            for (base, grp, from, to) in p.pages.groups_in(r.start, r.end) {
                let src = &grp[from..to];
                if src.iter().all(|&e| e == NONE) {
                    continue;
                }
                any = true;
                if !c.pages.has_group(base) {
                    m.tables(&mut c.space, base)?;
                }
                // The child's entries of this region are all empty: take the parent's.
                c.pages.group_mut(base)[from..to].copy_from_slice(src);
                pool.share_all(src);
                let mut k = 0;
                while k < src.len() {
                    let page = src[k];
                    k += 1;
                    if page == NONE {
                        continue;
                    }
                    let va = base + (from + k - 1) as u64 * PAGE_SIZE;
                    let n = match run.as_mut() {
                        Some((rva, first, n))
                            if *rva + u64::from(*n) * PAGE_SIZE == va
                                && *first + *n == page
                                && page % proto::CHUNK_PAGES as u32 != 0
                                && *first != ZERO_PAGE =>
                        {
                            *n += 1;
                            n
                        }
                        _ => {
                            if let Some(done) = run.replace((va, page, 1)) {
                                map_run(m, &c.space, done, child_flags, &mut singles)?;
                            }
                            let Some((_, _, n)) = run.as_mut() else {
                                continue;
                            };
                            n
                        }
                    };
                    // The rest of the run in this group, in a tight loop.
                    if page != ZERO_PAGE {
                        let mut last = page;
                        while k < src.len()
                            && src[k] != NONE
                            && src[k] == last + 1
                            && src[k] % proto::CHUNK_PAGES as u32 != 0
                        {
                            last = src[k];
                            *n += 1;
                            k += 1;
                        }
                    }
                }
            }
            if let Some(done) = run {
                map_run(m, &c.space, done, child_flags, &mut singles)?;
            }
            if !any {
                continue;
            }
            let want = without_write(flags);
            match protect.as_mut() {
                Some((_, end, f)) if flags.contains(MapFlags::WRITE) && *f == want => {
                    *end = r.end;
                }
                _ => {
                    flush(m, &mut protect);
                    if flags.contains(MapFlags::WRITE) {
                        protect = Some((r.start, r.end, want));
                    }
                }
            }
        }
        flush(m, &mut protect);
        Ok(objects)
    }

    // ---- tasks' requests ----

    /// `Mmap` (anonymous only: a descriptor's mapping is `MmapObject`): the address of the
    /// new region. A private mapping is vm's own anonymous memory; a shared one
    /// (`MAP_SHARED | MAP_ANONYMOUS`) is a new anonymous object of the shm server
    /// (`CreateAnon`) mapped as a shared object region, so that it stays one memory across
    /// `fork` and goes with its last mapping (`ObjectRelease`). `ENODEV` without a shm
    /// server, `ENOMEM` for a size it refuses.
    pub fn mmap(&mut self, pid: u64, args: MmapArgs) -> Result<u64, Errno> {
        let MmapArgs {
            addr,
            len,
            prot: prot_bits,
            flags,
            fd,
            offset,
        } = args;
        if len == 0 || prot_bits & !prot::MASK != 0 || !offset.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let shared = flags & map::SHARED != 0;
        if shared == (flags & map::PRIVATE != 0) {
            return Err(Errno::EINVAL);
        }
        if flags & map::ANONYMOUS == 0 || fd != u64::MAX {
            return Err(Errno::EBADF);
        }
        if !shared {
            return self.place(pid, addr, len, prot_bits, flags, |_| Kind::Anon);
        }
        if !self.tasks.contains_key(&pid) {
            return Err(Errno::ESRCH);
        }
        if !self.m.has_pager(Pager::Shm) {
            return Err(Errno::ENODEV);
        }
        if self.anon_objects_of(pid) >= MAX_TASK_ANON_OBJECTS {
            return Err(Errno::ENOMEM);
        }
        let size = page_up(len).ok_or(Errno::ENOMEM)?;
        let AnonObject { handle, object } = self.m.anon_object(size).map_err(|e| match e {
            Errno::EFBIG => Errno::ENOMEM,
            e => e,
        })?;
        let generation = self.m.generation(Pager::Shm) << GEN_SHIFT;
        let (handle, object) = (
            (handle & HANDLE_MASK) | generation,
            (object & HANDLE_MASK) | generation,
        );
        let claimed = Claimed {
            object,
            writable: true,
        };
        self.handles.insert(
            held_key((Pager::Shm, handle)),
            Held {
                owner: proto::pid::VM,
                claimed,
                anon: true,
            },
        );
        let placed = self.place(pid, addr, len, prot_bits, flags, |start| Kind::Object {
            pager: Pager::Shm,
            handle,
            object,
            writable: true,
            vaddr: start,
            offset: 0,
            shared: true,
            limit: u64::MAX,
        });
        if placed.is_err() {
            self.release_if_unmapped((Pager::Shm, handle));
        }
        placed
    }

    /// How many of the shm server's anonymous objects task `pid` maps.
    fn anon_objects_of(&self, pid: u64) -> usize {
        let Some(t) = self.tasks.get(&pid) else {
            return 0;
        };
        t.regions
            .handles()
            .filter(|&h| self.handles.get(&held_key(h)).is_some_and(|h| h.anon))
            .count()
    }

    /// `MmapObject`: a region of a memory object (a handle task `pid` got from its pager's
    /// `GetObject`), placed by the same rules as [`Vm::mmap`]. `EINVAL` also for
    /// `MAP_ANONYMOUS` and an offset past the object's address range, `ENODEV` when vm has
    /// no endpoint for the pager. Once the arguments are checked vm claims the handle from
    /// the pager for `pid` (`EBADF` when it is not `pid`'s to give); a shared writable
    /// mapping of a read-only handle is `EACCES`. A mapping that fails after the claim
    /// releases the handle at once.
    pub fn mmap_object(&mut self, pid: u64, req: MmapObject) -> Result<u64, Errno> {
        let MmapObject {
            addr,
            len,
            prot: prot_bits,
            flags,
            pager,
            handle,
            offset,
        } = req;
        if len == 0
            || prot_bits & !prot::MASK != 0
            || !offset.is_multiple_of(PAGE_SIZE)
            || flags & map::ANONYMOUS != 0
            || page_up(len).and_then(|l| offset.checked_add(l)).is_none()
        {
            return Err(Errno::EINVAL);
        }
        let shared = flags & map::SHARED != 0;
        if shared == (flags & map::PRIVATE != 0) {
            return Err(Errno::EINVAL);
        }
        if !self.m.has_pager(pager) {
            return Err(Errno::ENODEV);
        }
        if !self.tasks.contains_key(&pid) {
            return Err(Errno::ESRCH);
        }
        let (handle, Claimed { object, writable }) = self.claim(pager, handle, pid)?;
        let kind = |start| Kind::Object {
            pager,
            handle,
            object,
            writable,
            vaddr: start,
            offset,
            shared,
            limit: u64::MAX,
        };
        let placed = if shared && !writable && prot_bits & prot::WRITE != 0 {
            Err(Errno::EACCES)
        } else {
            self.place(pid, addr, len, prot_bits, flags, kind)
        };
        if placed.is_err() {
            self.release_if_unmapped((pager, handle));
        }
        placed
    }

    /// `MapObject`: the file part of an ELF segment, [`vaddr`, `vaddr + file_size`), as a
    /// private region of init's `handle` whose byte at `vaddr` is the object's byte
    /// `offset`; the rest of the last page reads as zero. vm claims the handle for init with
    /// the first segment, and the program's other segments share that claim. `EINVAL` for
    /// a zero `file_size`, addresses outside user space, `vaddr` and `offset` not congruent
    /// modulo the page size, or an overlap; `ENODEV` without that pager; the claim's errors.
    #[expect(clippy::too_many_arguments, reason = "the request's fields, one each")]
    pub fn map_object(
        &mut self,
        pid: u64,
        vaddr: u64,
        file_size: u64,
        prot_bits: u64,
        pager: Pager,
        handle: u64,
        offset: u64,
    ) -> Result<(), Errno> {
        let (start, end) = Self::page_span(vaddr, file_size)?;
        if prot_bits & !prot::MASK != 0 || vaddr % PAGE_SIZE != offset % PAGE_SIZE {
            return Err(Errno::EINVAL);
        }
        let offset = page_down(offset);
        if page_up(end - start)
            .and_then(|l| offset.checked_add(l))
            .is_none()
        {
            return Err(Errno::EINVAL);
        }
        if !self.m.has_pager(pager) {
            return Err(Errno::ENODEV);
        }
        if !self.tasks.contains_key(&pid) {
            return Err(Errno::ESRCH);
        }
        let (handle, Claimed { object, writable }) = self.claim(pager, handle, proto::pid::INIT)?;
        let t = self.tasks.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let inserted = t.regions.insert(Region {
            start,
            end,
            prot: prot_bits,
            kind: Kind::Object {
                pager,
                handle,
                object,
                writable,
                vaddr: start,
                offset,
                shared: false,
                limit: vaddr + file_size,
            },
        });
        if inserted.is_err() {
            self.release_if_unmapped((pager, handle));
        }
        inserted
    }

    /// Places and inserts a region of `len` bytes (rounded up) by the `mmap` rules: a free
    /// hint exactly, else top down from `MMAP_TOP`; `MAP_FIXED` replaces what is there.
    fn place(
        &mut self,
        pid: u64,
        addr: u64,
        len: u64,
        prot_bits: u64,
        flags: u64,
        kind: impl FnOnce(u64) -> Kind,
    ) -> Result<u64, Errno> {
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        if !self.tasks.contains_key(&pid) {
            return Err(Errno::ESRCH);
        }
        if self.m.heap_low() {
            return Err(Errno::ENOMEM);
        }
        let fixed = flags & map::FIXED != 0;
        let in_user = |a: u64| {
            a >= proto::USER_MIN && a.checked_add(len).is_some_and(|e| e <= proto::USER_END)
        };
        let start = if fixed {
            if !addr.is_multiple_of(PAGE_SIZE) || addr < proto::USER_MIN {
                return Err(Errno::EINVAL);
            }
            // A range that crosses the top of user space (or wraps) has no room there.
            if !in_user(addr) {
                return Err(Errno::ENOMEM);
            }
            self.munmap(pid, addr, len)?;
            addr
        } else {
            let t = self.tasks.get(&pid).ok_or(Errno::ESRCH)?;
            let hint = page_down(addr);
            if hint != 0 && in_user(hint) && t.regions.is_free(hint, hint + len) {
                hint
            } else {
                t.regions
                    .place_top_down(len, proto::USER_MIN, proto::MMAP_TOP)
                    .ok_or(Errno::ENOMEM)?
            }
        };
        let t = self.tasks.get_mut(&pid).ok_or(Errno::ESRCH)?;
        t.regions.insert(Region {
            start,
            end: start + len,
            prot: prot_bits,
            kind: kind(start),
        })?;
        Ok(start)
    }

    /// Forgets what [`Vm::refaults`] and [`Vm::refaulted`] hold for task `pid` in
    /// [`start`, `end`): a range of each tree, one removal per entry there (a `retain`
    /// walked all they hold, up to [`MAX_REFAULTS`] each, at every `munmap`).
    fn forget_refaults(&mut self, pid: u64, start: u64, end: u64) {
        let range = (pid, start)..(pid, end);
        while let Some(&k) = self.refaults.range(range.clone()).next() {
            self.refaults.remove(&k);
        }
        while let Some(&k) = self.refaulted.range(range.clone()).next().map(|(k, _)| k) {
            self.refaulted.remove(&k);
        }
    }

    /// `Munmap`.
    pub fn munmap(&mut self, pid: u64, addr: u64, len: u64) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) || len == 0 {
            return Err(Errno::EINVAL);
        }
        let end = range_end(addr, len).ok_or(Errno::EINVAL)?;
        if !self.tasks.contains_key(&pid) {
            return Err(Errno::ESRCH);
        }
        self.forget_refaults(pid, addr, end);
        let t = self.tasks.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let (m, pool, objects) = (&mut self.m, &mut self.pool, &mut self.objects);
        let mut frames = alloc::vec::Vec::new();
        let mut gone = alloc::vec::Vec::new();
        t.regions.remove_range(addr, end, |r| {
            m.unmap(&t.space, r.start, r.len());
            match r.kind {
                Kind::Fixed { frame } => frames.push(frame),
                Kind::Object { .. } => gone.push(*r),
                _ => {}
            }
        })?;
        for r in &gone {
            object::take_pages(m, objects, &mut t.pages, r, |p| {
                pool.release(p);
            });
        }
        t.pages.take_range(addr, end, |_, p| {
            pool.release(p);
        });
        // A fixed frame's capability goes once no part of its region is left.
        frames.dedup();
        for frame in frames {
            if t.regions.iter().all(|r| r.kind != Kind::Fixed { frame }) {
                m.drop_frame(frame);
            }
        }
        self.objects_gone(&gone);
        Ok(())
    }

    /// `Msync`: `ObjectSync` for the shared object pages of [`addr`, `addr + len`). Their
    /// writable mappings in the caller become read-only first, so that a later write is
    /// reported dirty again. `EINVAL` for a misaligned address, an unknown flag or both
    /// `MS_ASYNC` and `MS_SYNC`; `ENOMEM` if part of the range is not mapped (or it runs
    /// past the top of user space). `MS_ASYNC` writes back as `MS_SYNC` does (POSIX
    /// allows it); `MS_INVALIDATE` has nothing to drop (every mapping shares the pager's
    /// pages).
    pub fn msync(&mut self, pid: u64, addr: u64, len: u64, flags: u64) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE)
            || flags & !ms::MASK != 0
            || flags & (ms::ASYNC | ms::SYNC) == ms::ASYNC | ms::SYNC
        {
            return Err(Errno::EINVAL);
        }
        let end = range_end(addr, len).ok_or(Errno::ENOMEM)?;
        let t = self.tasks.get_mut(&pid).ok_or(Errno::ESRCH)?;
        if !t.regions.is_covered(addr, end) {
            return Err(Errno::ENOMEM);
        }
        let regions: alloc::vec::Vec<Region> = t
            .regions
            .overlapping(addr, end)
            .filter(|r| r.kind.is_shared() && r.kind.object().is_some())
            .copied()
            .collect();
        for r in &regions {
            let (lo, hi) = (r.start.max(addr), r.end.min(end));
            let ro = without_write(prot_flags(r.prot));
            let mut run: Option<(u64, u64)> = None;
            let (m, pages, space) = (&mut self.m, &mut t.pages, &t.space);
            let mut va = lo;
            while va < hi {
                if let Some(e) = pages.entry(va)
                    && *e == BLOCK_RW
                {
                    *e = BLOCK_RO;
                    match run.as_mut() {
                        Some((_, re)) if *re == va => *re = va + PAGE_SIZE,
                        _ => {
                            if let Some((rs, re)) = run.replace((va, va + PAGE_SIZE)) {
                                m.protect(space, rs, re - rs, ro);
                            }
                        }
                    }
                }
                va += PAGE_SIZE;
            }
            if let Some((rs, re)) = run {
                m.protect(space, rs, re - rs, ro);
            }
        }
        for r in &regions {
            // A full disk is the writer's to hear as such (the file server dropped the data);
            // any other failure of the pager is an I/O error.
            object::sync(&mut self.m, r, addr, end).map_err(|e| match e {
                Errno::ENOSPC | WAIT => e,
                _ => Errno::EIO,
            })?;
        }
        Ok(())
    }

    /// `Mprotect`.
    pub fn mprotect(&mut self, pid: u64, addr: u64, len: u64, prot_bits: u64) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) || prot_bits & !prot::MASK != 0 {
            return Err(Errno::EINVAL);
        }
        // A range past the top of user space is not mapped (Linux: ENOMEM).
        let end = range_end(addr, len).ok_or(Errno::ENOMEM)?;
        let t = self.tasks.get_mut(&pid).ok_or(Errno::ESRCH)?;
        if len == 0 {
            return Ok(());
        }
        // Rights stick: a shared mapping of a read-only handle never becomes writable
        // (POSIX: `EACCES`), and nothing of the range changes.
        if prot_bits & prot::WRITE != 0
            && t.regions
                .overlapping(addr, end)
                .any(|r| !r.kind.may_write())
        {
            return Err(Errno::EACCES);
        }
        // Splitting grows the list: not below the heap's low-water mark (changing whole
        // regions, which may merge them, always works).
        if self.m.heap_low() && t.regions.splits(addr, end) > 0 {
            return Err(Errno::ENOMEM);
        }
        let (m, pool, pages, space) = (&mut self.m, &self.pool, &t.pages, &t.space);
        t.regions.protect(addr, end, prot_bits, |r| {
            let flags = prot_flags(r.prot);
            if flags.0 == 0 {
                // No access: unmap; the pages stay the task's and come back on a fault.
                m.unmap(space, r.start, r.len());
                return;
            }
            if !r.kind.is_paged() {
                m.protect(space, r.start, r.len(), flags);
                return;
            }
            // Runs of resident pages with the same rights (pages shared copy-on-write and
            // the zero page stay read-only) become one call each.
            let mut run: Option<(u64, u64, MapFlags)> = None;
            pages.for_each(r.start, r.end, |va, p| {
                let f = page_flags(pool, r.kind, flags, p);
                match run.as_mut() {
                    Some((_, e, rf)) if *rf == f => *e = va + PAGE_SIZE,
                    _ => {
                        if let Some((s, e, rf)) = run.replace((va, va + PAGE_SIZE, f)) {
                            m.protect(space, s, e - s, rf);
                        }
                    }
                }
            });
            if let Some((s, e, rf)) = run {
                m.protect(space, s, e - s, rf);
            }
        })
    }

    /// What region `r` of `t` maps, and how many of its pages are resident.
    fn region_info(&self, t: &Task<M::Space>, r: &Region) -> proto::RegionInfo {
        use proto::RegionKind;
        let (kind, shared) = match r.kind {
            Kind::Anon => (RegionKind::Anon, false),
            Kind::Image { .. } => (RegionKind::Image, false),
            Kind::Fixed { .. } => (RegionKind::Frame, true),
            Kind::Object {
                pager,
                handle,
                shared,
                ..
            } => (
                match pager {
                    Pager::File => RegionKind::File,
                    Pager::Shm
                        if self
                            .handles
                            .get(&held_key((pager, handle)))
                            .is_some_and(|h| h.anon) =>
                    {
                        RegionKind::SharedAnon
                    }
                    Pager::Shm => RegionKind::Shm,
                },
                shared,
            ),
        };
        let resident = match r.kind {
            Kind::Fixed { .. } => r.len() / PAGE_SIZE,
            _ => t.pages.count(r.start, r.end),
        };
        proto::RegionInfo {
            start: r.start,
            end: r.end,
            prot: r.prot,
            kind,
            shared,
            resident,
        }
    }

    /// `SpaceInfo`: task `pid`'s regions and resident pages (any task may ask).
    pub fn space_info(&self, pid: u64) -> Result<proto::SpaceInfo, Errno> {
        let t = self.tasks.get(&pid).ok_or(Errno::ESRCH)?;
        let resident = t
            .regions
            .iter()
            .map(|r| self.region_info(t, r).resident)
            .sum();
        Ok(proto::SpaceInfo {
            regions: t.regions.len() as u64,
            resident,
        })
    }

    /// `RegionAt`: task `pid`'s first region ending above `from` (a tree search); `ENOENT`
    /// past the last.
    pub fn region_at(&self, pid: u64, from: u64) -> Result<proto::RegionInfo, Errno> {
        let t = self.tasks.get(&pid).ok_or(Errno::ESRCH)?;
        let r = t
            .regions
            .overlapping(from, u64::MAX)
            .find(|r| r.end > from)
            .ok_or(Errno::ENOENT)?;
        Ok(self.region_info(t, r))
    }

    /// `Vmmap`: the caller's regions, one line each.
    pub fn vmmap(&self, pid: u64, out: &mut impl core::fmt::Write) -> Result<(), Errno> {
        use proto::RegionKind;
        let t = self.tasks.get(&pid).ok_or(Errno::ESRCH)?;
        let _ = writeln!(
            out,
            "vmmap {} {}: {} regions",
            pid,
            t.name(),
            t.regions.len()
        );
        for r in t.regions.iter() {
            let p = |bit, c| if r.prot & bit != 0 { c } else { '-' };
            let info = self.region_info(t, r);
            let kind = match info.kind {
                RegionKind::Anon | RegionKind::SharedAnon => "anon",
                RegionKind::Image => "image",
                RegionKind::Frame => "frame",
                RegionKind::File => "file",
                RegionKind::Shm => "shm",
            };
            let _ = writeln!(
                out,
                "  {:#014x}-{:#014x} {}{}{}{} {:5} {:6} pages resident",
                r.start,
                r.end,
                p(prot::READ, 'r'),
                p(prot::WRITE, 'w'),
                p(prot::EXEC, 'x'),
                if info.shared { 's' } else { 'p' },
                kind,
                info.resident
            );
        }
        Ok(())
    }

    // ---- faults ----

    fn kill(&mut self, pid: u64, kind: Kill, addr: u64) -> Outcome {
        kill(&mut self.kills, pid, kind, addr)
    }

    /// A fault message other than `VmFault` (undefined instruction, ...): `SEGV`.
    pub fn other_fault(&mut self, pid: u64, addr: u64) -> Outcome {
        if !self.tasks.contains_key(&pid) {
            return Outcome::Ignore;
        }
        self.kill(pid, Kill::Segv, addr)
    }

    /// A `VmFault` of task `pid` at `addr`.
    pub fn fault(&mut self, pid: u64, addr: u64, access: Access, permission: bool) -> Outcome {
        self.faults += 1;
        self.fault_again(pid, addr, access, permission)
    }

    /// [`Vm::fault`] once more, after the pager's answer it waited for ([`Outcome::Wait`])
    /// came in (the fault is counted once).
    pub fn fault_again(
        &mut self,
        pid: u64,
        addr: u64,
        access: Access,
        permission: bool,
    ) -> Outcome {
        if let Some(r) = self.tasks.get(&pid).and_then(|t| t.regions.find(addr))
            && r.kind.object().is_some()
        {
            let r = *r;
            return self.object_fault(pid, r, addr, access, permission);
        }
        let Vm {
            m,
            tasks,
            pool,
            kills,
            zero_filled,
            copied,
            zero_maps,
            ..
        } = self;
        let Some(t) = tasks.get_mut(&pid) else {
            return Outcome::Ignore;
        };
        let Some(r) = t.regions.find(addr).copied() else {
            return kill(kills, pid, Kill::Segv, addr);
        };
        let need = match access {
            Access::Read => prot::READ,
            Access::Write => prot::WRITE,
            Access::Execute => prot::EXEC,
        };
        if r.prot & need == 0 || !r.kind.is_paged() {
            return kill(kills, pid, Kill::Segv, addr);
        }
        let va = page_down(addr);
        let flags = prot_flags(r.prot);
        let page = t.pages.get(va);
        let write = access == Access::Write;
        if permission {
            // Mapped, but read-only: only a write to a copy-on-write or zero page is ours.
            if !write || page == NONE {
                return kill(kills, pid, Kill::Segv, addr);
            }
            if page != ZERO_PAGE && pool.count(page) == 1 {
                m.protect(&t.space, va, PAGE_SIZE, flags);
                return Outcome::Resume;
            }
            // The map item of the reply replaces the read-only mapping (the kernel unmaps
            // it first), so no separate unmap is needed.
        }
        // Give `va` a page, record it, and reply with a map item.
        let new = if page == NONE {
            match r.kind {
                Kind::Anon if !write => {
                    *zero_maps += 1;
                    Some(ZERO_PAGE)
                }
                Kind::Image {
                    vaddr,
                    initrd_offset,
                    file_size,
                } => take_page(m, pool, true).inspect(|&p| {
                    let lo = va.max(vaddr);
                    let hi = (va + PAGE_SIZE).min(vaddr.saturating_add(file_size));
                    if lo < hi {
                        m.fill(p, lo - va, initrd_offset + (lo - vaddr), hi - lo);
                    }
                }),
                _ => take_page(m, pool, true).inspect(|_| *zero_filled += 1),
            }
        } else if page == ZERO_PAGE && write {
            take_page(m, pool, true).inspect(|_| *zero_filled += 1)
        } else if write && pool.count(page) > 1 {
            take_page(m, pool, false).inspect(|&p| {
                m.copy(p, page);
                pool.release(page);
                *copied += 1;
            })
        } else {
            Some(page)
        };
        let Some(new) = new else {
            return kill(kills, pid, Kill::Bus, addr);
        };
        let entry = match t.pages.entry(va) {
            Some(e) => e,
            None => {
                if m.heap_low() || m.tables(&mut t.space, va).is_err() {
                    pool.release(new);
                    return kill(kills, pid, Kill::Bus, addr);
                }
                t.pages.add_group(va);
                match t.pages.entry(va) {
                    Some(e) => e,
                    None => return Outcome::Ignore,
                }
            }
        };
        *entry = new;
        Outcome::Map {
            page: new,
            va,
            flags: page_flags(pool, r.kind, flags, new),
        }
    }
}

impl<M: Machine> Vm<M> {
    /// Blocks some page entry names (vm holds their capabilities).
    pub fn blocks_held(&self) -> usize {
        self.objects.len() - self.objects.idle()
    }

    /// Blocks no entry names whose capabilities vm keeps (`object::MAX_IDLE` at most).
    pub fn blocks_idle(&self) -> usize {
        self.objects.idle()
    }

    /// A fault in object region `r`.
    fn object_fault(
        &mut self,
        pid: u64,
        r: Region,
        addr: u64,
        access: Access,
        permission: bool,
    ) -> Outcome {
        let need = match access {
            Access::Read => prot::READ,
            Access::Write => prot::WRITE,
            Access::Execute => prot::EXEC,
        };
        if r.prot & need == 0 {
            return self.kill(pid, Kill::Segv, addr);
        }
        let write = access == Access::Write;
        let shared = r.kind.is_shared();
        let va = page_down(addr);
        let flags = prot_flags(r.prot);
        let Vm {
            m,
            tasks,
            pool,
            kills,
            objects,
            copied,
            refaulted,
            refaults,
            ..
        } = self;
        let Some(t) = tasks.get_mut(&pid) else {
            return Outcome::Ignore;
        };
        let entry = t.pages.get(va);
        if entry != NONE && !is_block(entry) {
            // One of vm's own pages (a private copy): as in anonymous memory.
            if !permission {
                return Outcome::Map {
                    page: entry,
                    va,
                    flags: page_flags(pool, r.kind, flags, entry),
                };
            }
            if !write {
                return kill(kills, pid, Kill::Segv, addr);
            }
            if pool.count(entry) == 1 {
                m.protect(&t.space, va, PAGE_SIZE, flags);
                return Outcome::Resume;
            }
            // The reply's map item replaces the shared read-only mapping.
            let Some(new) = take_page(m, pool, false) else {
                return kill(kills, pid, Kill::Bus, addr);
            };
            m.copy(new, entry);
            pool.release(entry);
            *copied += 1;
            t.pages.set(va, new);
            return Outcome::Map {
                page: new,
                va,
                flags,
            };
        }
        if permission && (!write || entry == NONE) {
            return kill(kills, pid, Kill::Segv, addr);
        }
        if !permission && va.saturating_add(PAGE_SIZE) > r.kind.limit() {
            // The page holding the end of the object's part (or past it): vm's own.
            return match object::tail_page(m, pool, objects, &mut t.space, &mut t.pages, &r, va) {
                Ok(new) => {
                    *copied += 1;
                    Outcome::Map {
                        page: new,
                        va,
                        flags: page_flags(pool, r.kind, flags, new),
                    }
                }
                Err(WAIT) => Outcome::Wait,
                Err(_) => kill(kills, pid, Kill::Bus, addr),
            };
        }
        if !permission && !shared && (is_block(entry) || refaults.contains(&(pid, va))) {
            let Some((k, _, _)) = object::block_key(&r, va) else {
                return Outcome::Ignore;
            };
            // Taken back since vm last mapped it (a capability vm already found gone, or is
            // asking for again, is not counted twice).
            let revoked = objects
                .get(&k)
                .and_then(|b| b.slot)
                .is_some_and(|s| m.frame_pages(s).is_err());
            // The pager took the block back while it was mapped here (eviction). The block is
            // mapped again; but if it was taken back again soon after (thrashing), the task
            // gets its own copy of the page, as after a write: under a cache too small for
            // every task's working set, mapping it again could lose it again before the task
            // runs, for ever (a task whose instruction needs two blocks would never finish).
            let now = m.now_us();
            let again = revoked
                && refaulted
                    .insert((pid, va), now)
                    .is_some_and(|then| now.saturating_sub(then) < THRASH_US);
            if refaulted.len() >= MAX_REFAULTS {
                refaulted.clear();
            }
            if refaults.contains(&(pid, va)) || again {
                refaulted.remove(&(pid, va));
                if is_block(entry) {
                    t.pages.set(va, NONE);
                    objects.unref(m, k, 1);
                }
                let copy = object::groups(m, &mut t.space, &mut t.pages, va, va + PAGE_SIZE)
                    .and_then(|()| object::own_copy(m, pool, objects, &r, va));
                objects.settle(m, k);
                return match copy {
                    Ok(new) => {
                        refaults.remove(&(pid, va));
                        t.pages.set(va, new);
                        Outcome::Map {
                            page: new,
                            va,
                            flags,
                        }
                    }
                    Err(WAIT) => {
                        // The entry is no block's any more: the copy is remembered here.
                        if refaults.len() >= MAX_REFAULTS {
                            refaults.clear();
                        }
                        refaults.insert((pid, va));
                        Outcome::Wait
                    }
                    Err(_) => {
                        refaults.remove(&(pid, va));
                        kill(kills, pid, Kill::Bus, addr)
                    }
                };
            }
        }
        // Whether the pager already counts the block as written (it was just asked for it
        // for writing).
        let mut written = false;
        if !permission {
            // Not resident, or its mapping was taken back by the pager: map the block.
            let asked = object::map_block(
                m,
                objects,
                &mut t.space,
                &mut t.pages,
                &r,
                va,
                write && shared,
            );
            match asked {
                Ok(fresh) => written = fresh && write && shared,
                Err(WAIT) => return Outcome::Wait,
                Err(_) => return kill(kills, pid, Kill::Bus, addr),
            }
            if !write {
                return Outcome::Resume;
            }
        }
        let Some((k, src, _)) = object::block_key(&r, va) else {
            return Outcome::Ignore;
        };
        if shared {
            // The first write to the block through this mapping: tell the pager (unless it
            // just gave the block for writing), then let the task write every page of the
            // block it maps. (A pager refuses it for a read-only handle; vm gives no such
            // region write access in the first place.) One answer, not two, between the
            // fault and the write: under eviction a second could find the block gone again.
            let dirty = if written {
                Ok((0, None))
            } else {
                m.pager_call(
                    src.0,
                    ObjectRequest::Dirty {
                        handle: src.1,
                        block: k.2,
                    },
                )
            };
            match dirty {
                Ok(_) => {}
                Err(WAIT) => return Outcome::Wait,
                Err(_) => return kill(kills, pid, Kill::Segv, addr),
            }
            let (lo, hi) = object::block_span(&r, va);
            let mut a = lo;
            while a < hi {
                if let Some(e) = t.pages.entry(a)
                    && *e == BLOCK_RO
                {
                    *e = BLOCK_RW;
                }
                a += PAGE_SIZE;
            }
            m.protect(&t.space, lo, hi - lo, flags);
            return Outcome::Resume;
        }
        // A private mapping's first write to the page: copy the object's page.
        let new = match object::own_copy(m, pool, objects, &r, va) {
            Ok(new) => new,
            Err(e) => {
                objects.settle(m, k);
                return match e {
                    WAIT => Outcome::Wait,
                    _ => kill(kills, pid, Kill::Bus, addr),
                };
            }
        };
        // The reply's map item replaces the mapping of the object's page.
        t.pages.set(va, new);
        objects.unref(m, k, 1);
        *copied += 1;
        Outcome::Map {
            page: new,
            va,
            flags,
        }
    }

    /// The child's copies of the parent's object regions: block entries are mapped from the
    /// same block capabilities, read-only (the child's first write to a block of a shared
    /// region is reported dirty like any other), private copies are shared copy-on-write as
    /// anonymous pages are. `starts`: where the parent's object regions start (from
    /// [`Vm::fork_pages`]).
    fn fork_objects(
        &mut self,
        parent: u64,
        c: &mut Task<M::Space>,
        starts: &[u64],
    ) -> Result<(), Errno> {
        let Vm {
            m,
            tasks,
            pool,
            objects,
            ..
        } = self;
        let p = tasks.get(&parent).ok_or(Errno::ESRCH)?;
        let regions = starts.iter().filter_map(|&a| p.regions.find(a));
        for r in regions.filter(|r| r.kind.object().is_some()) {
            let flags = prot_flags(r.prot);
            let mut own = false;
            // Runs of block entries of one block, one kind, at consecutive addresses:
            // (key, first index, address, pages, entry).
            let mut run: Option<(object::BlockKey, u64, u64, u64, PageId)> = None;
            let mut entries = alloc::vec::Vec::new();
            p.pages
                .for_each(r.start, r.end, |va, e| entries.push((va, e)));
            for (va, e) in entries {
                if !c.pages.has_group(va) {
                    m.tables(&mut c.space, va)?;
                    c.pages.add_group(va);
                }
                if !is_block(e) {
                    own = true;
                    pool.share(e);
                    c.pages.set(va, e);
                    m.map(&c.space, va, e, 1, without_write(flags))?;
                    continue;
                }
                let Some((k, _, idx)) = object::block_key(r, va) else {
                    continue;
                };
                match run.as_mut() {
                    Some((rk, _, rva, n, re))
                        if *rk == k && *re == e && *rva + *n * PAGE_SIZE == va =>
                    {
                        *n += 1;
                    }
                    _ => {
                        if let Some(done) = run.replace((k, idx, va, 1, e)) {
                            fork_block_run(m, objects, c, flags, done);
                        }
                    }
                }
            }
            if let Some(done) = run {
                fork_block_run(m, objects, c, flags, done);
            }
            if own && !r.kind.is_shared() && flags.contains(MapFlags::WRITE) {
                // The parent's private copies are now shared: read-only until written.
                let mut a = r.start;
                while a < r.end {
                    let e = p.pages.get(a);
                    if e != NONE && !is_block(e) {
                        m.protect(&p.space, a, PAGE_SIZE, without_write(flags));
                    }
                    a += PAGE_SIZE;
                }
            }
        }
        Ok(())
    }
}

/// Maps a run of block entries into a fork child from the block's capability, read-only,
/// within the block's valid pages; if vm holds none (revoked), the child's entries stay
/// empty and fault in later.
///
/// Never with the parent's write access: a parent's `BLOCK_RW` entry may date from a
/// capability the pager has revoked since (write-back), and the one vm holds now may have
/// come with a read fault of another task, the block clean. Writes through it would not be
/// reported, and the pager would drop them when it evicts the block.
fn fork_block_run<M: Machine>(
    m: &mut M,
    objects: &mut Objects,
    c: &mut Task<M::Space>,
    flags: MapFlags,
    (k, first, va, n, _): (object::BlockKey, u64, u64, u64, PageId),
) {
    let Some((slot, valid)) = objects
        .get(&k)
        .and_then(|b| b.slot.map(|s| (s, b.valid_pages)))
    else {
        return;
    };
    // Only the pages that hold data as the pager last said: the parent's entries past
    // them may date from before the object shrank (its pager revoked the block, and the
    // parent has not touched them since); the child's access there faults and is `BUS`.
    let n = n.min(valid.saturating_sub(first));
    if n == 0 {
        return;
    }
    if m.map_frame(&c.space, slot, first, va, n, without_write(flags))
        .is_err()
    {
        return;
    }
    for i in 0..n {
        c.pages.set(va + i * PAGE_SIZE, BLOCK_RO);
    }
    objects.add_maps(k, n as u32);
}

/// A page from the pool, asking for a chunk when it is empty; zeroed if `clean`.
pub(crate) fn take_page<M: Machine>(m: &mut M, pool: &mut Pool, clean: bool) -> Option<PageId> {
    if pool.free() == 0 {
        if !m.more_chunk() {
            return None;
        }
        pool.add_chunk();
    }
    let t = pool.take(clean)?;
    if clean && t.dirty {
        m.zero(t.page);
    }
    Some(t.page)
}

/// Queues a kill record.
fn kill(kills: &mut VecDeque<KillRecord>, pid: u64, kind: Kill, addr: u64) -> Outcome {
    kills.push_back(KillRecord { pid, kind, addr });
    Outcome::Killed(kind)
}

/// The rights page `p` of a region of `kind` with rights `flags` is mapped with: never
/// writable while shared copy-on-write or the zero page.
fn page_flags(pool: &Pool, kind: Kind, flags: MapFlags, p: PageId) -> MapFlags {
    if is_block(p) {
        return object::block_flags(p, flags);
    }
    if p == ZERO_PAGE || (!kind.is_shared() && pool.count(p) > 1) {
        without_write(flags)
    } else {
        flags
    }
}

#[cfg(test)]
mod tests;
