//! The vm server's logic, free of system calls so that it is tested on the host: every task's
//! region map and pages, the fault decisions (zero page, fill, copy-on-write), mmap/munmap/
//! mprotect, fork, reset and destroy. What needs the kernel (mapping, unmapping, page
//! tables, touching page contents, getting chunks) goes through a [`Machine`], which the
//! server binary implements with system calls and the tests with a model.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod pages;
pub mod region;

use abi::message::vm_fault::Access;
use abi::object::MapFlags;
use alloc::collections::{BTreeMap, VecDeque};
use pages::{NONE, PageId, PageMap, Pool, ZERO_PAGE};
use proto::{Errno, Kill, Name, PAGE_SIZE, VmStats, map, prot};
use region::{Kind, Region, RegionMap, page_down, page_up};

pub use proto::KillRecord;

/// What vm needs from the kernel and from memory. Methods that can fail return `ENOMEM`
/// (out of page tables or slots) or the kernel's error as an errno.
pub trait Machine {
    /// An address space as the machine knows it (its VSpace capability and page tables).
    type Space;

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
    /// Maps `pages` pages of the frame capability `frame` (vm's CSpace) at `va`.
    fn map_frame(
        &mut self,
        s: &Self::Space,
        frame: u64,
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
    /// Copies `len` bytes of the initrd from `initrd_offset` to page `dst` at byte `at`.
    fn fill(&mut self, dst: PageId, at: u64, initrd_offset: u64, len: u64);
    /// Gets one more zeroed chunk and makes its pages usable (mapped in vm); false if none.
    fn more_chunk(&mut self) -> bool;
    /// Ends an address space: its page tables (and with them every mapping) go back to the
    /// machine's pool, and its VSpace capability is deleted.
    fn destroy(&mut self, s: Self::Space);
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
}

/// The mapping rights for `prot` bits (write and execute need read in a mapping).
pub fn prot_flags(p: u64) -> MapFlags {
    let mut f = p & (prot::READ | prot::WRITE | prot::EXEC);
    if f != 0 {
        f |= MapFlags::READ.0;
    }
    MapFlags(f)
}

fn without_write(f: MapFlags) -> MapFlags {
    MapFlags(f.0 & !MapFlags::WRITE.0)
}

/// The whole server state.
pub struct Vm<M: Machine> {
    pub m: M,
    tasks: BTreeMap<u64, Task<M::Space>>,
    pool: Pool,
    kills: VecDeque<KillRecord>,
    initrd_size: u64,
    faults: u64,
    zero_filled: u64,
    copied: u64,
    zero_maps: u64,
}

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
            .map_frame(&t.space, frame, start, pages, prot_flags(prot_bits))?;
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
        let t = self.tasks.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let (m, pool) = (&mut self.m, &mut self.pool);
        t.regions.retain(|r| {
            if r.kind.is_paged() {
                m.unmap(&t.space, r.start, r.len());
                t.pages.take_range(r.start, r.end, |_, p| {
                    pool.release(p);
                });
            }
            !r.kind.is_paged()
        });
        Ok(())
    }

    /// `Destroy`: everything goes, the page tables return to the pool, the VSpace is
    /// forgotten.
    pub fn destroy(&mut self, pid: u64) -> Result<(), Errno> {
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
        let pool = &mut self.pool;
        t.pages.take_range(0, proto::USER_END, |_, p| {
            pool.release(p);
        });
        self.m.destroy(t.space);
        for f in frames {
            self.m.drop_frame(f);
        }
        self.kills.retain(|k| k.pid != pid);
        Ok(())
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
        if let Err(e) = self.populate_shared(parent) {
            return Err((e, space));
        }
        let mut c = Task {
            name: None,
            regions: RegionMap::new(),
            pages: PageMap::new(),
            space,
        };
        match self.fork_pages(parent, &mut c) {
            Ok(()) => {
                self.tasks.insert(child, c);
                Ok(())
            }
            Err(e) => {
                let pool = &mut self.pool;
                c.pages.take_range(0, proto::USER_END, |_, p| {
                    pool.release(p);
                });
                Err((e, c.space))
            }
        }
    }

    /// Gives every page of the task's shared regions a page now, so that parent and child
    /// share all of it (the pages live in per-task maps, not in a shared object: a page
    /// first touched after the fork would otherwise be each one's own).
    fn populate_shared(&mut self, pid: u64) -> Result<(), Errno> {
        let t = self.tasks.get(&pid).ok_or(Errno::ESRCH)?;
        let shared: alloc::vec::Vec<Region> = t
            .regions
            .iter()
            .filter(|r| r.kind.is_shared())
            .copied()
            .collect();
        for r in shared {
            let mut va = r.start;
            while va < r.end {
                let t = self.tasks.get(&pid).ok_or(Errno::ESRCH)?;
                if t.pages.get(va) == NONE {
                    let p = self.take_page(true).ok_or(Errno::ENOMEM)?;
                    self.zero_filled += 1;
                    let t = self.tasks.get_mut(&pid).ok_or(Errno::ESRCH)?;
                    if !t.pages.has_group(va) {
                        if let Err(e) = self.m.tables(&mut t.space, va) {
                            self.pool.release(p);
                            return Err(e);
                        }
                        t.pages.add_group(va);
                    }
                    t.pages.set(va, p);
                }
                va += PAGE_SIZE;
            }
        }
        Ok(())
    }

    fn fork_pages(&mut self, parent: u64, c: &mut Task<M::Space>) -> Result<(), Errno> {
        let Vm { m, tasks, pool, .. } = self;
        let p = tasks.get(&parent).ok_or(Errno::ESRCH)?;
        c.name = p.name;
        for r in p.regions.iter().filter(|r| r.kind.is_paged()) {
            c.regions.insert(*r)?;
            let flags = prot_flags(r.prot);
            let child_flags = if r.kind.is_shared() {
                flags
            } else {
                without_write(flags)
            };
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
                            if let Some((rva, first, n)) = run.replace((va, page, 1)) {
                                m.map(&c.space, rva, first, u64::from(n), child_flags)?;
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
            if let Some((rva, first, n)) = run {
                m.map(&c.space, rva, first, u64::from(n), child_flags)?;
            }
            if any && !r.kind.is_shared() && flags.contains(MapFlags::WRITE) {
                m.protect(&p.space, r.start, r.len(), without_write(flags));
            }
        }
        Ok(())
    }

    // ---- tasks' requests ----

    /// `Mmap` (anonymous only for now): the address of the new region.
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
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        if !self.tasks.contains_key(&pid) {
            return Err(Errno::ESRCH);
        }
        let fixed = flags & map::FIXED != 0;
        let in_user = |a: u64| {
            a >= proto::USER_MIN && a.checked_add(len).is_some_and(|e| e <= proto::USER_END)
        };
        let start = if fixed {
            if !addr.is_multiple_of(PAGE_SIZE) || !in_user(addr) {
                return Err(Errno::EINVAL);
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
            kind: if shared { Kind::SharedAnon } else { Kind::Anon },
        })?;
        Ok(start)
    }

    /// `Munmap`.
    pub fn munmap(&mut self, pid: u64, addr: u64, len: u64) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) || len == 0 {
            return Err(Errno::EINVAL);
        }
        let end = addr
            .checked_add(len)
            .and_then(page_up)
            .filter(|&e| e <= proto::USER_END)
            .ok_or(Errno::EINVAL)?;
        let t = self.tasks.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let (m, pool) = (&mut self.m, &mut self.pool);
        let mut frames = alloc::vec::Vec::new();
        t.regions.remove_range(addr, end, |r| {
            m.unmap(&t.space, r.start, r.len());
            if let Kind::Fixed { frame } = r.kind {
                frames.push(frame);
            }
        });
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
        Ok(())
    }

    /// `Mprotect`.
    pub fn mprotect(&mut self, pid: u64, addr: u64, len: u64, prot_bits: u64) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) || prot_bits & !prot::MASK != 0 {
            return Err(Errno::EINVAL);
        }
        let end = addr
            .checked_add(len)
            .and_then(page_up)
            .filter(|&e| e <= proto::USER_END)
            .ok_or(Errno::EINVAL)?;
        let t = self.tasks.get_mut(&pid).ok_or(Errno::ESRCH)?;
        if len == 0 {
            return Ok(());
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

    /// `Vmmap`: the caller's regions, one line each.
    pub fn vmmap(&self, pid: u64, out: &mut impl core::fmt::Write) -> Result<(), Errno> {
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
            let (kind, shared) = match r.kind {
                Kind::Anon => ("anon", 'p'),
                Kind::SharedAnon => ("anon", 's'),
                Kind::Image { .. } => ("image", 'p'),
                Kind::Fixed { .. } => ("frame", 's'),
            };
            let resident = match r.kind {
                Kind::Fixed { .. } => r.len() / PAGE_SIZE,
                _ => t.pages.count(r.start, r.end),
            };
            let _ = writeln!(
                out,
                "  {:#014x}-{:#014x} {}{}{}{} {:5} {:6} pages resident",
                r.start,
                r.end,
                p(prot::READ, 'r'),
                p(prot::WRITE, 'w'),
                p(prot::EXEC, 'x'),
                shared,
                kind,
                resident
            );
        }
        Ok(())
    }

    // ---- faults ----

    /// A page from the pool, asking for a chunk when it is empty; zeroed if `clean`.
    fn take_page(&mut self, clean: bool) -> Option<PageId> {
        take_page(&mut self.m, &mut self.pool, clean)
    }

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
            if page != ZERO_PAGE && (r.kind.is_shared() || pool.count(page) == 1) {
                m.protect(&t.space, va, PAGE_SIZE, flags);
                return Outcome::Resume;
            }
            m.unmap(&t.space, va, PAGE_SIZE);
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
        } else if write && !r.kind.is_shared() && pool.count(page) > 1 {
            take_page(m, pool, false).inspect(|&p| {
                m.copy(p, page);
                pool.release(page);
                *copied += 1;
            })
        } else {
            Some(page)
        };
        let Some(new) = new else {
            return kill(kills, pid, Kill::Bus, va);
        };
        let entry = match t.pages.entry(va) {
            Some(e) => e,
            None => {
                if m.tables(&mut t.space, va).is_err() {
                    pool.release(new);
                    return kill(kills, pid, Kill::Bus, va);
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

/// A page from the pool, asking for a chunk when it is empty; zeroed if `clean`.
fn take_page<M: Machine>(m: &mut M, pool: &mut Pool, clean: bool) -> Option<PageId> {
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
    if p == ZERO_PAGE || (!kind.is_shared() && pool.count(p) > 1) {
        without_write(flags)
    } else {
        flags
    }
}

#[cfg(test)]
mod tests;
