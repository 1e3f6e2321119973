//! The vm logic against a model of the kernel and of memory: mappings are checked the way
//! the kernel checks them (tables present, target unmapped), page contents are real bytes.

extern crate std;

use super::*;
use abi::message::vm_fault::Access::{Execute, Read, Write};
use core::cell::RefCell;
use proto::handles::Handles;
use proto::object::{BLOCK_PAGES, BLOCK_SIZE, Claimed, MmapObject, ObjectRequest, Pager};
use proto::shm::AnonObject;
use std::collections::{BTreeMap as Map, BTreeSet};
use std::vec;
use std::vec::Vec;

/// A VSpace as the kernel keeps it: behind a capability (so the trait takes `&Space`), hence
/// the cell.
#[derive(Debug, Default)]
struct Space {
    /// va → (page, or `FRAME_MARK | frame`, and flags)
    mapped: RefCell<Map<u64, (u64, u64)>>,
    tables: BTreeSet<u64>,
}

const FRAME_MARK: u64 = 1 << 40;
/// A mapping of a block frame: `BLOCK_MARK | slot << 16 | page index`.
const BLOCK_MARK: u64 = 1 << 41;
/// Block capabilities get slots from here.
const FIRST_BLOCK_SLOT: u64 = 1000;

/// The pager side of the model: objects' bytes ("the disk"), their blocks' frames ("the page
/// cache", shared by every mapping), the capabilities handed to vm, and what vm asked.
#[derive(Default)]
struct PagerModel {
    /// (pager, object) → bytes.
    objects: Map<(u64, u64), Vec<u8>>,
    /// (pager, object, block) → the block frame's bytes.
    frames: Map<(u64, u64, u64), Vec<u8>>,
    dirty: BTreeSet<(u64, u64, u64)>,
    /// vm's capabilities: slot → block.
    caps: Map<u64, (u64, u64, u64)>,
    next_slot: u64,
    log: Vec<ObjectRequest>,
    shm: bool,
    /// The shm server's anonymous objects (`CreateAnon`) not yet released: object → size.
    anon: Map<u64, u64>,
    /// Anonymous objects created so far.
    anon_made: u64,
    /// Each pager's handles (the pagers' own table), by `Pager as u64`.
    handles: Map<u64, Handles>,
    /// The handle given last.
    last_handle: u64,
}

impl PagerModel {
    /// `GetObject` by task `owner`: a handle on `object` of `pager`.
    fn give(&mut self, pager: Pager, owner: u64, object: u64, writable: bool) -> u64 {
        let h = self
            .handles
            .entry(pager as u64)
            .or_default()
            .give(owner, object, writable)
            .unwrap();
        self.last_handle = h;
        h
    }

    fn table(&mut self, pager: Pager) -> &mut Handles {
        self.handles.entry(pager as u64).or_default()
    }
}

#[derive(Default)]
struct Model {
    mem: Vec<Vec<u8>>,
    chunk_limit: usize,
    initrd: Vec<u8>,
    dropped_frames: Vec<u64>,
    destroyed: usize,
    calls: usize,
    pager: PagerModel,
    /// What `heap_low` answers.
    heap_low: bool,
    /// The pagers' instance (`Machine::generation`): raised when a test restarts them.
    generation: u64,
    /// Pagers answer later, as the server's do: a request is first answered `WAIT`, and
    /// answered for real once the test lets the answers in ([`Model::answer`]).
    defer: bool,
    /// Requests asked and not yet answered, and answers in but not yet taken.
    asked: BTreeSet<std::string::String>,
    answers: BTreeSet<std::string::String>,
    /// How many times an operation had to wait.
    waits: usize,
}

impl Model {
    /// Whether `req` must wait (in `defer` mode, until [`Model::answer`]).
    fn must_wait(&mut self, req: std::string::String) -> bool {
        if !self.defer || self.answers.remove(&req) {
            return false;
        }
        self.asked.insert(req);
        self.waits += 1;
        true
    }

    /// The pagers answer everything asked so far.
    fn answer(&mut self) {
        self.answers.append(&mut self.asked);
    }
}

impl Model {
    fn new(chunks: usize) -> Self {
        Self {
            chunk_limit: chunks,
            initrd: (0..8192u32).map(|i| (i % 251) as u8 + 1).collect(),
            ..Self::default()
        }
    }
}

impl Machine for Model {
    fn heap_low(&self) -> bool {
        self.heap_low
    }

    type Space = Space;

    fn tables(&mut self, s: &mut Space, va: u64) -> Result<(), Errno> {
        s.tables.insert(va >> 21);
        Ok(())
    }

    fn map(
        &mut self,
        s: &Space,
        va: u64,
        first: PageId,
        count: u64,
        flags: MapFlags,
    ) -> Result<(), Errno> {
        self.calls += 1;
        assert!(MapFlags::validate(flags.0).is_some());
        assert_eq!(
            pages::chunk_of(first).0,
            pages::chunk_of(first + count as u32 - 1).0
        );
        // The kernel's FrameMap: every page unmapped, its table present.
        for k in 0..count {
            let a = va + k * PAGE_SIZE;
            assert!(s.tables.contains(&(a >> 21)), "no table at {a:#x}");
            assert!(
                s.mapped
                    .borrow_mut()
                    .insert(a, (u64::from(first) + k, flags.0))
                    .is_none(),
                "mapped at {a:#x}"
            );
        }
        Ok(())
    }

    fn map_frame(
        &mut self,
        s: &Space,
        frame: u64,
        first: u64,
        va: u64,
        pages: u64,
        flags: MapFlags,
    ) -> Result<(), Errno> {
        self.calls += 1;
        let block = frame >= FIRST_BLOCK_SLOT;
        if block && !self.pager.caps.contains_key(&frame) {
            return Err(Errno::EBADF);
        }
        assert!(first + pages <= if block { BLOCK_PAGES } else { 1 });
        let mut m = s.mapped.borrow_mut();
        if (0..pages).any(|k| m.contains_key(&(va + k * PAGE_SIZE))) {
            return Err(Errno::EEXIST);
        }
        for k in 0..pages {
            assert!(s.tables.contains(&((va + k * PAGE_SIZE) >> 21)));
            let what = if block {
                BLOCK_MARK | frame << 16 | (first + k)
            } else {
                FRAME_MARK | frame
            };
            m.insert(va + k * PAGE_SIZE, (what, flags.0));
        }
        Ok(())
    }

    fn frame_pages(&mut self, frame: u64) -> Result<u64, Errno> {
        if frame < FIRST_BLOCK_SLOT {
            return Ok(1);
        }
        if self.pager.caps.contains_key(&frame) {
            Ok(BLOCK_PAGES)
        } else {
            Err(Errno::EBADF)
        }
    }

    fn drop_frame(&mut self, frame: u64) {
        self.pager.caps.remove(&frame);
        self.dropped_frames.push(frame);
    }

    fn copy_from_frame(&mut self, dst: PageId, frame: u64, index: u64) -> Result<(), Errno> {
        let key = *self.pager.caps.get(&frame).ok_or(Errno::EBADF)?;
        let at = (index * PAGE_SIZE) as usize;
        let src = self.pager.frames[&key][at..at + PAGE_SIZE as usize].to_vec();
        self.mem[dst as usize] = src;
        Ok(())
    }

    fn has_pager(&self, pager: Pager) -> bool {
        pager == Pager::File || self.pager.shm
    }

    fn generation(&self, _pager: Pager) -> u64 {
        self.generation
    }

    fn anon_object(&mut self, size: u64) -> Result<AnonObject, Errno> {
        let p = &mut self.pager;
        if !p.shm {
            return Err(Errno::ENODEV);
        }
        if size > 1 << 40 {
            return Err(Errno::EFBIG);
        }
        p.anon_made += 1;
        let object = 100 + p.anon_made;
        p.anon.insert(object, size);
        let handle = p.table(Pager::Shm).give_vm(object, true);
        Ok(AnonObject { handle, object })
    }

    fn claim(&mut self, pager: Pager, handle: u64, pid: u64) -> Result<Claimed, Errno> {
        if self.must_wait(std::format!("{pager:?} claim {handle} {pid}")) {
            return Err(WAIT);
        }
        self.pager.log.push(ObjectRequest::Claim { handle, pid });
        self.pager.table(pager).claim(handle, pid)
    }

    fn pager_call(
        &mut self,
        pager: Pager,
        req: ObjectRequest,
    ) -> Result<(u64, Option<u64>), Errno> {
        if self.must_wait(std::format!("{pager:?} {req:?}")) {
            return Err(WAIT);
        }
        let req = for_instance(req, self.generation)?;
        let p = &mut self.pager;
        p.log.push(req);
        let pg = pager as u64;
        // Which object the handle names, checked as the pagers check it.
        let object = match req {
            ObjectRequest::Page { write: true, .. } | ObjectRequest::Dirty { .. } => {
                p.table(pager).claimed_for_write(req.handle())?.object
            }
            ObjectRequest::Page { .. } | ObjectRequest::Sync { .. } => {
                p.table(pager).claimed(req.handle())?.object
            }
            ObjectRequest::Release { handle } => p.table(pager).release(proto::pid::VM, handle)?,
            ObjectRequest::Claim { handle, pid } => {
                return p.table(pager).claim(handle, pid).map(|c| (c.object, None));
            }
        };
        match req {
            ObjectRequest::Page { block, write, .. } => {
                // As the pagers do: a block asked for writing counts as written.
                if write {
                    p.dirty.insert((pg, object, block));
                }
                // An anonymous object has no bytes anywhere: its blocks start zeroed.
                let anon = p.anon.get(&object).filter(|_| pager == Pager::Shm);
                let data = match anon {
                    Some(_) => &[][..],
                    None => p.objects.get(&(pg, object)).ok_or(Errno::EBADF)?,
                };
                let size = anon.copied().unwrap_or(data.len() as u64);
                let start = block * BLOCK_SIZE;
                if start >= size {
                    return Err(Errno::EFAULT);
                }
                let valid = (size - start).min(BLOCK_SIZE);
                let key = (pg, object, block);
                p.frames.entry(key).or_insert_with(|| {
                    let mut f = vec![0u8; BLOCK_SIZE as usize];
                    if anon.is_none() {
                        f[..valid as usize]
                            .copy_from_slice(&data[start as usize..(start + valid) as usize]);
                    }
                    f
                });
                let slot = FIRST_BLOCK_SLOT + p.next_slot;
                p.next_slot += 1;
                p.caps.insert(slot, key);
                Ok((valid, Some(slot)))
            }
            ObjectRequest::Dirty { block, .. } => {
                p.dirty.insert((pg, object, block));
                Ok((0, None))
            }
            ObjectRequest::Sync { first, count, .. } => {
                for block in first..first + count {
                    let key = (pg, object, block);
                    if p.dirty.remove(&key) && !p.anon.contains_key(&object) {
                        let data = p.objects.get_mut(&(pg, object)).ok_or(Errno::EBADF)?;
                        let start = (block * BLOCK_SIZE) as usize;
                        let n = (data.len() - start).min(BLOCK_SIZE as usize);
                        data[start..start + n].copy_from_slice(&p.frames[&key][..n]);
                    }
                }
                Ok((0, None))
            }
            ObjectRequest::Release { .. } => {
                // An anonymous object goes with its handle (its frames with it).
                if pager == Pager::Shm && p.anon.remove(&object).is_some() {
                    p.frames.retain(|k, _| (k.0, k.1) != (pg, object));
                }
                Ok((0, None))
            }
            ObjectRequest::Claim { .. } => Err(Errno::EIO),
        }
    }

    fn pager_post(&mut self, pager: Pager, req: ObjectRequest) {
        // Nobody waits for these: the pager gets them in order.
        let defer = core::mem::replace(&mut self.defer, false);
        let _ = self.pager_call(pager, req);
        self.defer = defer;
    }

    fn unmap(&mut self, s: &Space, va: u64, len: u64) {
        self.calls += 1;
        let mut m = s.mapped.borrow_mut();
        let keys: Vec<u64> = m.range(va..va + len).map(|(k, _)| *k).collect();
        for k in keys {
            m.remove(&k);
        }
    }

    fn protect(&mut self, s: &Space, va: u64, len: u64, flags: MapFlags) {
        self.calls += 1;
        for (_, e) in s.mapped.borrow_mut().range_mut(va..va + len) {
            e.1 = flags.0;
        }
    }

    fn zero(&mut self, p: PageId) {
        self.mem[p as usize].fill(0);
    }

    fn zero_tail(&mut self, p: PageId, from: u64) {
        self.mem[p as usize][from as usize..].fill(0);
    }

    fn copy(&mut self, dst: PageId, src: PageId) {
        let data = self.mem[src as usize].clone();
        self.mem[dst as usize] = data;
    }

    fn fill(&mut self, dst: PageId, at: u64, off: u64, len: u64) {
        let (at, off, len) = (at as usize, off as usize, len as usize);
        let src = self.initrd[off..off + len].to_vec();
        self.mem[dst as usize][at..at + len].copy_from_slice(&src);
    }

    fn more_chunk(&mut self) -> bool {
        if self.mem.len() / 512 >= self.chunk_limit {
            return false;
        }
        self.mem.extend((0..512).map(|_| vec![0u8; 4096]));
        true
    }

    fn destroy(&mut self, s: Space) {
        self.destroyed += 1;
        drop(s);
    }
}

type TestVm = Vm<Model>;

const A: u64 = 0x1000_0000;
const P: u64 = PAGE_SIZE;
const RW: u64 = prot::READ | prot::WRITE;

fn vm(chunks: usize) -> TestVm {
    let mut v = Vm::new(Model::new(chunks), 8192).unwrap();
    v.new_space(10, Space::default()).unwrap();
    v.set_name(10, proto::Name::new("t").unwrap()).unwrap();
    v
}

/// Faults like a task: applies the map item as the kernel would; returns the outcome.
fn touch(v: &mut TestVm, pid: u64, addr: u64, access: Access) -> Outcome {
    let va = page_down(addr);
    let present = v.task(pid).unwrap().space.mapped.borrow().get(&va).copied();
    let permission = match present {
        None => false,
        Some((_, f)) => {
            let ok = match access {
                Read => f & 1 != 0,
                Write => f & 2 != 0,
                Execute => f & 4 != 0,
            };
            if ok {
                return Outcome::Resume;
            }
            true
        }
    };
    let mut o = v.fault(pid, addr, access, permission);
    // A fault that waits for a pager is handled again once the answer is in; each answer
    // lets it go on (a fault asks at most twice: once more for a revoked block).
    for _ in 0..2 {
        if o != Outcome::Wait {
            break;
        }
        v.m.answer();
        o = v.fault_again(pid, addr, access, permission);
    }
    assert_ne!(
        o,
        Outcome::Wait,
        "a fault still waits after its answers came in"
    );
    if let Outcome::Map { page, va, flags } = o {
        let t = v.task(pid).unwrap();
        assert!(t.space.tables.contains(&(va >> 21)));
        // The kernel's fault reply replaces whatever is mapped at `va`.
        t.space
            .mapped
            .borrow_mut()
            .insert(va, (u64::from(page), flags.0));
    }
    o
}

/// The byte task `pid` sees at `addr` (through its mapping), after faulting it in.
fn read(v: &mut TestVm, pid: u64, addr: u64) -> u8 {
    assert!(!matches!(touch(v, pid, addr, Read), Outcome::Killed(_)));
    let (page, _) = v.task(pid).unwrap().space.mapped.borrow()[&page_down(addr)];
    v.m.mem[page as usize][(addr % P) as usize]
}

fn write(v: &mut TestVm, pid: u64, addr: u64, byte: u8) {
    let o = touch(v, pid, addr, Write);
    assert!(!matches!(o, Outcome::Killed(_)), "{o:?}");
    // A write fault resolved by "resume" was a protection change: look again.
    let o = touch(v, pid, addr, Write);
    assert_eq!(o, Outcome::Resume);
    let (page, flags) = v.task(pid).unwrap().space.mapped.borrow()[&page_down(addr)];
    assert!(flags & 2 != 0 && page != u64::from(ZERO_PAGE));
    v.m.mem[page as usize][(addr % P) as usize] = byte;
}

fn mmap6(
    v: &mut TestVm,
    pid: u64,
    addr: u64,
    len: u64,
    prot: u64,
    flags: u64,
    fd: u64,
) -> Result<u64, Errno> {
    let args = MmapArgs {
        addr,
        len,
        prot,
        flags,
        fd,
        offset: 0,
    };
    v.mmap(pid, args)
}

fn mmap_anon(v: &mut TestVm, pid: u64, addr: u64, len: u64, flags: u64) -> Result<u64, Errno> {
    mmap6(v, pid, addr, len, RW, flags | map::ANONYMOUS, u64::MAX)
}

#[test]
fn anonymous_zero_page_then_fresh_page() {
    let mut v = vm(4);
    let a = mmap_anon(&mut v, 10, A, 4 * P, map::PRIVATE).unwrap();
    assert_eq!(a, A);
    assert_eq!(read(&mut v, 10, a + 5), 0);
    assert_eq!(v.stats().zero_page_maps, 1);
    assert_eq!(v.stats().pages_in_use, 0);
    write(&mut v, 10, a + 5, 42);
    assert_eq!(read(&mut v, 10, a + 5), 42);
    assert_eq!(v.stats().pages_in_use, 1);
    assert_eq!(v.stats().pages_zero_filled, 1);
    // A write to a never-touched page takes a fresh page at once.
    write(&mut v, 10, a + P, 1);
    assert_eq!(v.stats().pages_in_use, 2);
    assert_eq!(v.stats().faults, 3);
    // The zero page is still all zeroes.
    assert!(v.m.mem[0].iter().all(|&b| b == 0));
}

#[test]
fn protection_violations_are_segv_and_queued() {
    let mut v = vm(4);
    let a = mmap6(
        &mut v,
        10,
        0,
        P,
        prot::READ,
        map::PRIVATE | map::ANONYMOUS,
        u64::MAX,
    )
    .unwrap();
    assert_eq!(touch(&mut v, 10, a, Write), Outcome::Killed(Kill::Segv));
    assert_eq!(touch(&mut v, 10, a, Execute), Outcome::Killed(Kill::Segv));
    assert_eq!(touch(&mut v, 10, 0x10, Read), Outcome::Killed(Kill::Segv));
    assert_eq!(
        v.take_kill(),
        Some(KillRecord {
            pid: 10,
            kind: Kill::Segv,
            addr: a
        })
    );
    assert_eq!(v.take_kill().map(|k| k.addr), Some(a));
    assert_eq!(v.take_kill().map(|k| k.addr), Some(0x10));
    assert_eq!(v.take_kill(), None);
    // Faults of unknown tasks are nobody's.
    assert_eq!(v.fault(99, a, Read, false), Outcome::Ignore);
}

#[test]
fn out_of_memory_is_bus() {
    let mut v = vm(1);
    let a = mmap_anon(&mut v, 10, 0, 1024 * P, map::PRIVATE).unwrap();
    for i in 0..511 {
        write(&mut v, 10, a + i * P, 1);
    }
    assert_eq!(
        touch(&mut v, 10, a + 511 * P + 0x7f8, Write),
        Outcome::Killed(Kill::Bus)
    );
    // The address touched, not its page.
    assert_eq!(
        v.take_kill().map(|k| (k.kind, k.addr)),
        Some((Kill::Bus, a + 511 * P + 0x7f8))
    );
    // Reads still get the zero page.
    assert_eq!(read(&mut v, 10, a + 600 * P), 0);
}

#[test]
fn image_pages_hold_file_bytes_then_zeroes() {
    let mut v = vm(4);
    // A segment starting mid-page: file bytes 100..100+5000 at A+0x800, 9000 bytes in memory.
    v.map_image(10, A + 0x800, 9000, 100, 5000, prot::READ | prot::EXEC)
        .unwrap();
    let t = v.task(10).unwrap();
    let r = *t.regions.find(A).unwrap();
    assert_eq!((r.start, r.end), (A, A + 3 * P));
    assert_eq!(read(&mut v, 10, A), 0);
    assert_eq!(read(&mut v, 10, A + 0x7ff), 0);
    let init = v.m.initrd.clone();
    assert_eq!(read(&mut v, 10, A + 0x800), init[100]);
    assert_eq!(read(&mut v, 10, A + 0x800 + 4999), init[5099]);
    assert_eq!(read(&mut v, 10, A + 0x800 + 5000), 0);
    assert_eq!(read(&mut v, 10, A + 3 * P - 1), 0);
    let (_, flags) = v.task(10).unwrap().space.mapped.borrow()[&A];
    assert_eq!(flags, MapFlags::RX.0);
    assert_eq!(touch(&mut v, 10, A, Write), Outcome::Killed(Kill::Segv));
    // Bad segments.
    assert_eq!(
        v.map_image(10, A + 0x10_0000, 10, 8190, 10, 1),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        v.map_image(10, A + 0x10_0000, 10, 0, 11, 1),
        Err(Errno::EINVAL)
    );
    assert_eq!(v.map_image(10, A + P, 10, 0, 1, 1), Err(Errno::EINVAL));
    assert_eq!(v.map_image(11, A, 10, 0, 1, 1), Err(Errno::ESRCH));
}

#[test]
fn mmap_arguments() {
    let mut v = vm(4);
    let anon = map::ANONYMOUS;
    let e = |r: Result<u64, Errno>| r.err();
    assert_eq!(
        e(mmap6(&mut v, 10, 0, 0, RW, map::PRIVATE | anon, u64::MAX)),
        Some(Errno::EINVAL)
    );
    assert_eq!(
        e(mmap6(&mut v, 10, 0, P, 8, map::PRIVATE | anon, u64::MAX)),
        Some(Errno::EINVAL)
    );
    assert_eq!(
        e(mmap6(&mut v, 10, 0, P, RW, anon, u64::MAX)),
        Some(Errno::EINVAL)
    );
    assert_eq!(
        e(mmap6(
            &mut v,
            10,
            0,
            P,
            RW,
            map::SHARED | map::PRIVATE | anon,
            u64::MAX
        )),
        Some(Errno::EINVAL)
    );
    assert_eq!(
        e(mmap6(&mut v, 10, 0, P, RW, map::PRIVATE, 3)),
        Some(Errno::EBADF)
    );
    assert_eq!(
        e(mmap6(&mut v, 10, 0, P, RW, map::PRIVATE | anon, 3)),
        Some(Errno::EBADF)
    );
    assert_eq!(
        e(mmap6(
            &mut v,
            10,
            A + 1,
            P,
            RW,
            map::PRIVATE | anon | map::FIXED,
            u64::MAX
        )),
        Some(Errno::EINVAL)
    );
    assert_eq!(
        e(mmap6(&mut v, 99, 0, P, RW, map::PRIVATE | anon, u64::MAX)),
        Some(Errno::ESRCH)
    );
    // A file offset that is not a whole number of pages, even for anonymous memory.
    let args = MmapArgs {
        addr: 0,
        len: P,
        prot: RW,
        flags: map::PRIVATE | anon,
        fd: u64::MAX,
        offset: 100,
    };
    assert_eq!(e(v.mmap(10, args)), Some(Errno::EINVAL));
    // Placement: top down from MMAP_TOP; lengths round up; a free hint is honoured.
    let a = mmap_anon(&mut v, 10, 0, 1, map::PRIVATE).unwrap();
    assert_eq!(a, proto::MMAP_TOP - P);
    let b = mmap_anon(&mut v, 10, 0, 3 * P, map::PRIVATE).unwrap();
    assert_eq!(b, a - 3 * P);
    assert_eq!(mmap_anon(&mut v, 10, A, P, map::PRIVATE), Ok(A));
    // A taken hint is not: the region goes top down.
    assert_eq!(mmap_anon(&mut v, 10, A, P, map::PRIVATE), Ok(b - P));
    // Out of address space.
    assert_eq!(
        mmap_anon(&mut v, 10, 0, proto::MMAP_TOP, map::PRIVATE),
        Err(Errno::ENOMEM)
    );
    // MAP_FIXED over a range that crosses the top of user space (or wraps): ENOMEM, and
    // nothing below the top is touched.
    let top = proto::USER_END - P;
    assert_eq!(
        mmap_anon(&mut v, 10, top, P, map::PRIVATE | map::FIXED),
        Ok(top)
    );
    let regions = v.task(10).unwrap().regions.len();
    for len in [2 * P, 1 << 40, u64::MAX - top + 1, u64::MAX] {
        assert_eq!(
            mmap_anon(&mut v, 10, top, len, map::PRIVATE | map::FIXED),
            Err(Errno::ENOMEM),
            "{len:#x}"
        );
    }
    assert_eq!(v.task(10).unwrap().regions.len(), regions);
    // mprotect past the top: ENOMEM too (nothing is mapped there).
    assert_eq!(v.mprotect(10, top, 2 * P, prot::READ), Err(Errno::ENOMEM));
    assert_eq!(
        v.mprotect(10, top, u64::MAX, prot::READ),
        Err(Errno::ENOMEM)
    );
    assert_eq!(
        mmap_anon(&mut v, 10, 0, u64::MAX, map::PRIVATE),
        Err(Errno::ENOMEM)
    );
}

#[test]
fn fixed_replaces_and_frees_pages() {
    let mut v = vm(4);
    let a = mmap_anon(&mut v, 10, A, 4 * P, map::PRIVATE).unwrap();
    for i in 0..4 {
        write(&mut v, 10, a + i * P, 7);
    }
    assert_eq!(v.stats().pages_in_use, 4);
    let b = mmap_anon(&mut v, 10, a + P, 2 * P, map::PRIVATE | map::FIXED).unwrap();
    assert_eq!(b, a + P);
    assert_eq!(v.stats().pages_in_use, 2);
    // The new region has the old one's attributes: the three pieces are one region again.
    assert_eq!(v.task(10).unwrap().regions.len(), 1);
    assert_eq!(read(&mut v, 10, a + P), 0);
    assert_eq!(read(&mut v, 10, a), 7);
    assert_eq!(read(&mut v, 10, a + 3 * P), 7);
    // Freed pages are zeroed when reused.
    write(&mut v, 10, a + P, 1);
    write(&mut v, 10, a + 2 * P + 8, 1);
    assert_eq!(read(&mut v, 10, a + 2 * P), 0);
    assert_eq!(read(&mut v, 10, a + P + 1), 0);
}

#[test]
fn munmap_splits_and_unmaps() {
    let mut v = vm(4);
    let a = mmap_anon(&mut v, 10, A, 8 * P, map::PRIVATE).unwrap();
    for i in 0..8 {
        write(&mut v, 10, a + i * P, 1);
    }
    assert_eq!(v.munmap(10, a + 1, P), Err(Errno::EINVAL));
    assert_eq!(v.munmap(10, a, 0), Err(Errno::EINVAL));
    assert_eq!(v.munmap(10, a + 2 * P, 3 * P - 100), Ok(()));
    assert_eq!(v.stats().pages_in_use, 5);
    assert_eq!(v.task(10).unwrap().regions.len(), 2);
    assert_eq!(
        touch(&mut v, 10, a + 3 * P, Read),
        Outcome::Killed(Kill::Segv)
    );
    assert_eq!(v.task(10).unwrap().space.mapped.borrow().len(), 5);
    // Unmapping nothing is fine.
    assert_eq!(v.munmap(10, a + 100 * P, P), Ok(()));
}

#[test]
fn mprotect_splits_and_changes_mappings() {
    let mut v = vm(4);
    let a = mmap_anon(&mut v, 10, A, 4 * P, map::PRIVATE).unwrap();
    write(&mut v, 10, a, 1);
    write(&mut v, 10, a + P, 1);
    assert_eq!(read(&mut v, 10, a + 2 * P), 0);
    assert_eq!(v.mprotect(10, a + 1, P, prot::READ), Err(Errno::EINVAL));
    assert_eq!(v.mprotect(10, a, P, 8), Err(Errno::EINVAL));
    assert_eq!(v.mprotect(10, a, 5 * P, prot::READ), Err(Errno::ENOMEM));
    v.mprotect(10, a + P, 2 * P, prot::READ).unwrap();
    assert_eq!(v.task(10).unwrap().regions.len(), 3);
    let flags = |v: &TestVm, va| v.task(10).unwrap().space.mapped.borrow()[&va].1;
    assert_eq!(flags(&v, a), MapFlags::RW.0);
    assert_eq!(flags(&v, a + P), MapFlags::READ.0);
    assert_eq!(touch(&mut v, 10, a + P, Write), Outcome::Killed(Kill::Segv));
    // Back to read-write: the zero page stays read-only, and a write replaces it.
    v.mprotect(10, a, 4 * P, RW).unwrap();
    assert_eq!(flags(&v, a + P), MapFlags::RW.0);
    assert_eq!(flags(&v, a + 2 * P), MapFlags::READ.0);
    write(&mut v, 10, a + 2 * P, 3);
    // No access: the pages are kept but unmapped; access is SEGV; access comes back.
    v.mprotect(10, a, 4 * P, prot::NONE).unwrap();
    assert_eq!(touch(&mut v, 10, a, Read), Outcome::Killed(Kill::Segv));
    v.mprotect(10, a, 4 * P, prot::READ).unwrap();
    assert_eq!(read(&mut v, 10, a + 2 * P), 3);
    assert_eq!(v.stats().pages_in_use, 3);
}

#[test]
fn fork_shares_copy_on_write() {
    let mut v = vm(8);
    let a = mmap_anon(&mut v, 10, A, 600 * P, map::PRIVATE).unwrap();
    for i in 0..600 {
        write(&mut v, 10, a + i * P, (i % 200) as u8 + 1);
    }
    assert_eq!(read(&mut v, 10, a + 600 * P - 1), 0);
    let calls = v.m.calls;
    v.fork(10, 11, Space::default()).map_err(|e| e.0).unwrap();
    // Runs of one chunk are one FrameMap each; the parent's region one protect.
    assert!(v.m.calls - calls < 8, "{} calls", v.m.calls - calls);
    assert_eq!(v.stats().pages_in_use, 600);
    assert_eq!(v.name(11), "t");
    for pid in [10, 11] {
        let t = v.task(pid).unwrap();
        assert!(
            t.space
                .mapped
                .borrow()
                .values()
                .all(|&(_, f)| f == MapFlags::READ.0)
        );
        assert_eq!(t.space.mapped.borrow().len(), 600);
    }
    // The child writes: a copy; the parent still sees its data.
    write(&mut v, 11, a + 5 * P, 99);
    assert_eq!(v.stats().pages_copied, 1);
    assert_eq!(read(&mut v, 11, a + 5 * P), 99);
    assert_eq!(read(&mut v, 11, a + 5 * P + 1), 0);
    assert_eq!(read(&mut v, 10, a + 5 * P), 6);
    // The parent's page is its own again: made writable in place.
    let before = v.stats().pages_in_use;
    write(&mut v, 10, a + 5 * P, 50);
    assert_eq!(v.stats().pages_copied, 1);
    assert_eq!(v.stats().pages_in_use, before);
    // The parent writes another shared page: copied.
    write(&mut v, 10, a + 6 * P, 51);
    assert_eq!(v.stats().pages_copied, 2);
    assert_eq!(read(&mut v, 11, a + 6 * P), 7);
    // The child ends: its pages go; the parent's become its own alone.
    v.destroy(11).unwrap();
    assert_eq!(v.m.destroyed, 1);
    assert_eq!(v.stats().pages_in_use, 600);
    write(&mut v, 10, a + 7 * P, 52);
    assert_eq!(v.stats().pages_copied, 2);
}

#[test]
fn shared_anonymous_is_a_shm_object_shared_across_fork() {
    let mut v = vm(4);
    // Without a shm server there is no shared anonymous memory.
    assert_eq!(
        mmap_anon(&mut v, 10, A, 2 * P, map::SHARED),
        Err(Errno::ENODEV)
    );
    v.m.pager.shm = true;
    let a = mmap_anon(&mut v, 10, A, 2 * P - 100, map::SHARED).unwrap();
    // A new anonymous object of the whole pages, mapped as a shared object region.
    let obj = 100 + v.m.pager.anon_made;
    assert_eq!(v.m.pager.anon[&obj], 2 * P);
    let r = *v.task(10).unwrap().regions.find(a).unwrap();
    assert_eq!(r.kind.object(), Some((Pager::Shm, obj)));
    assert!(r.kind.is_shared());
    // Zero on first touch; a read faults in the block (both pages), from shm, not vm.
    assert_eq!(oread(&mut v, 10, a + 3), 0);
    assert_eq!(mapped(&v, 10), 2);
    assert_eq!(v.stats().pages_in_use, 0);
    v.fork(10, 11, Space::default()).map_err(|e| e.0).unwrap();
    owrite(&mut v, 11, a + 1, 5);
    assert_eq!(oread(&mut v, 10, a + 1), 5);
    owrite(&mut v, 10, a + 2, 6);
    assert_eq!(oread(&mut v, 11, a + 2), 6);
    assert_eq!(v.stats().pages_copied, 0);
    // A page first touched after the fork is shared too.
    owrite(&mut v, 11, a + P, 8);
    assert_eq!(oread(&mut v, 10, a + P), 8);
    // A grandchild forked before any touch of a second mapping shares it as well.
    let b = mmap_anon(&mut v, 10, 0, P, map::SHARED).unwrap();
    let obj_b = 100 + v.m.pager.anon_made;
    v.fork(10, 12, Space::default()).map_err(|e| e.0).unwrap();
    owrite(&mut v, 12, b, 9);
    assert_eq!(oread(&mut v, 10, b), 9);
    let mut s = std::string::String::new();
    v.vmmap(10, &mut s).unwrap();
    assert!(s.contains("rw-s anon       2 pages resident"), "{s}");
    // Released only when the last mapping goes: not at the parent's exit, nor at a
    // partial munmap.
    let released = |v: &TestVm| {
        v.m.pager
            .log
            .iter()
            .filter(|r| matches!(r, ObjectRequest::Release { .. }))
            .count()
    };
    v.destroy(10).unwrap();
    assert_eq!(oread(&mut v, 11, a + 1), 5);
    assert_eq!(released(&v), 0);
    v.munmap(11, a, P).unwrap();
    assert_eq!(oread(&mut v, 11, a + P), 8);
    v.munmap(12, b, P).unwrap();
    assert_eq!(released(&v), 1);
    assert!(!v.m.pager.anon.contains_key(&obj_b));
    v.munmap(11, a + P, P).unwrap();
    assert_eq!(released(&v), 1);
    assert!(v.m.pager.anon.contains_key(&obj));
    v.destroy(12).unwrap();
    assert_eq!(released(&v), 2);
    assert!(v.m.pager.anon.is_empty());
    assert_eq!(v.blocks_held(), 0);
    // A mapping that cannot be placed gives its object back at once.
    assert_eq!(
        mmap_anon(&mut v, 11, 0, proto::MMAP_TOP, map::SHARED),
        Err(Errno::ENOMEM)
    );
    assert!(v.m.pager.anon.is_empty());
    assert_eq!(
        mmap_anon(&mut v, 11, 0, 1 << 41, map::SHARED),
        Err(Errno::ENOMEM)
    );
}

#[test]
fn fixed_frames_reset_and_destroy() {
    let mut v = vm(4);
    v.map_frame(10, proto::USER_IPC_BUFFER, RW, 77).unwrap();
    assert_eq!(
        v.map_frame(10, proto::USER_IPC_BUFFER, RW, 78),
        Err(Errno::EINVAL)
    );
    v.map_anon(
        10,
        proto::USER_STACK_TOP - proto::USER_STACK_SIZE,
        proto::USER_STACK_SIZE,
        RW,
    )
    .unwrap();
    write(&mut v, 10, proto::USER_STACK_TOP - 8, 1);
    assert_eq!(
        touch(&mut v, 10, proto::USER_IPC_BUFFER, Write),
        Outcome::Resume
    );
    v.fork(10, 11, Space::default()).map_err(|e| e.0).unwrap();
    assert_eq!(v.task(11).unwrap().regions.len(), 1);
    assert!(
        !v.task(11)
            .unwrap()
            .space
            .mapped
            .borrow()
            .contains_key(&proto::USER_IPC_BUFFER)
    );
    v.reset(10).unwrap();
    assert_eq!(v.task(10).unwrap().regions.len(), 1);
    assert_eq!(v.stats().pages_in_use, 1);
    v.destroy(11).unwrap();
    assert_eq!(v.stats().pages_in_use, 0);
    v.destroy(10).unwrap();
    assert_eq!(v.m.dropped_frames, [77]);
    assert_eq!(v.destroy(10), Err(Errno::ESRCH));
    // NewSpace twice, and for a server pid.
    v.new_space(12, Space::default()).unwrap();
    assert!(matches!(
        v.new_space(12, Space::default()),
        Err((Errno::EEXIST, _))
    ));
    assert!(matches!(
        v.new_space(2, Space::default()),
        Err((Errno::EINVAL, _))
    ));
}

#[test]
fn vmmap_lists_regions() {
    let mut v = vm(4);
    let a = mmap_anon(&mut v, 10, A, 2 * P, map::PRIVATE).unwrap();
    write(&mut v, 10, a, 1);
    let mut s = std::string::String::new();
    v.vmmap(10, &mut s).unwrap();
    assert!(s.contains("rw-p anon       1 pages resident"), "{s}");
}

/// `SpaceInfo` and `RegionAt`, for `ps` and `vmmap <pid>` of another task: the regions one
/// at a time in address order, their resident pages, `ENOENT` past the last and `ESRCH`
/// for no such task, whatever `from` a caller forges.
#[test]
fn region_listing_of_a_task() {
    let mut v = vm(4);
    let a = mmap_anon(&mut v, 10, A, 2 * P, map::PRIVATE).unwrap();
    let b = mmap_anon(&mut v, 10, A + 16 * P, 3 * P, map::PRIVATE).unwrap();
    write(&mut v, 10, a, 1);
    write(&mut v, 10, b + P, 2);
    write(&mut v, 10, b + 2 * P, 3);
    let info = v.space_info(10).unwrap();
    assert_eq!((info.regions, info.resident), (2, 3));
    let first = v.region_at(10, 0).unwrap();
    assert_eq!((first.start, first.end, first.resident), (a, a + 2 * P, 1));
    assert_eq!(first.kind, proto::RegionKind::Anon);
    assert!(!first.shared);
    // From inside the first region: still the first; from its end: the second.
    assert_eq!(v.region_at(10, a + P).unwrap().start, a);
    let second = v.region_at(10, first.end).unwrap();
    assert_eq!((second.start, second.resident), (b, 2));
    assert_eq!(v.region_at(10, second.end), Err(Errno::ENOENT));
    assert_eq!(v.region_at(10, u64::MAX), Err(Errno::ENOENT));
    assert_eq!(v.region_at(99, 0), Err(Errno::ESRCH));
    assert_eq!(v.space_info(99), Err(Errno::ESRCH));
}

// ---- memory-object regions ----

const OBJ: u64 = 5;

/// A vm whose file pager holds object [`OBJ`] of `size` bytes: byte i = i * 7 + i / 4096.
fn vm_with_object(size: usize) -> TestVm {
    let mut v = vm(8);
    let data = (0..size).map(|i| (i * 7 + i / 4096) as u8).collect();
    v.m.pager.objects.insert((Pager::File as u64, OBJ), data);
    v
}

fn obj_byte(i: u64) -> u8 {
    (i * 7 + i / 4096) as u8
}

fn mmap_obj(
    v: &mut TestVm,
    addr: u64,
    len: u64,
    prot: u64,
    flags: u64,
    offset: u64,
) -> Result<u64, Errno> {
    let handle = v.m.pager.give(Pager::File, 10, OBJ, true);
    v.mmap_object(
        10,
        MmapObject {
            addr,
            len,
            prot,
            flags,
            pager: Pager::File,
            handle,
            offset,
        },
    )
}

/// A handle init got for `OBJ` (`GetObject` with init's badge), for `MapObject`.
fn init_handle(v: &mut TestVm) -> u64 {
    v.m.pager.give(Pager::File, proto::pid::INIT, OBJ, false)
}

/// The release of the handle given last, as vm sends it.
fn release_last(v: &TestVm) -> ObjectRequest {
    ObjectRequest::Release {
        handle: v.m.pager.last_handle,
    }
}

/// Faults until the access is allowed (at most three faults); the mapping's target.
fn access(v: &mut TestVm, pid: u64, addr: u64, a: Access) -> Result<(u64, u64), Outcome> {
    for _ in 0..3 {
        match touch(v, pid, addr, a) {
            Outcome::Killed(k) => return Err(Outcome::Killed(k)),
            _ => {
                let m = v
                    .task(pid)
                    .unwrap()
                    .space
                    .mapped
                    .borrow()
                    .get(&page_down(addr))
                    .copied();
                if let Some((what, f)) = m {
                    let bit = match a {
                        Read => 1,
                        Write => 2,
                        Execute => 4,
                    };
                    if f & bit != 0 {
                        return Ok((what, f));
                    }
                }
            }
        }
    }
    panic!("no access at {addr:#x}");
}

/// The bytes a mapping target holds.
fn target(v: &mut TestVm, what: u64) -> &mut [u8] {
    if what & BLOCK_MARK != 0 {
        let slot = (what & !BLOCK_MARK) >> 16;
        let index = (what & 0xffff) as usize;
        let key = v.m.pager.caps[&slot];
        let at = index * PAGE_SIZE as usize;
        &mut v.m.pager.frames.get_mut(&key).unwrap()[at..at + PAGE_SIZE as usize]
    } else {
        &mut v.m.mem[what as usize]
    }
}

fn oread(v: &mut TestVm, pid: u64, addr: u64) -> u8 {
    let (what, _) = access(v, pid, addr, Read).unwrap();
    target(v, what)[(addr % P) as usize]
}

fn owrite(v: &mut TestVm, pid: u64, addr: u64, byte: u8) {
    let (what, _) = access(v, pid, addr, Write).unwrap();
    target(v, what)[(addr % P) as usize] = byte;
}

fn pages_asked(v: &TestVm) -> usize {
    v.m.pager
        .log
        .iter()
        .filter(|r| matches!(r, ObjectRequest::Page { .. }))
        .count()
}

fn mapped(v: &TestVm, pid: u64) -> usize {
    v.task(pid).unwrap().space.mapped.borrow().len()
}

#[test]
fn object_private_read_maps_the_block_around() {
    let mut v = vm_with_object(40 * P as usize);
    let a = mmap_obj(&mut v, A, 40 * P, prot::READ, map::PRIVATE, 0).unwrap();
    assert_eq!(a, A);
    assert_eq!(oread(&mut v, 10, a + 5 * P + 9), obj_byte(5 * P + 9));
    // One request, the whole block mapped read-only, one capability held.
    assert_eq!(pages_asked(&v), 1);
    assert_eq!(mapped(&v, 10), BLOCK_PAGES as usize);
    assert_eq!(v.blocks_held(), 1);
    for i in 0..40 {
        assert_eq!(oread(&mut v, 10, a + i * P + 100), obj_byte(i * P + 100));
    }
    assert_eq!(pages_asked(&v), 3);
    assert_eq!(v.stats().pages_in_use, 0);
    assert_eq!(touch(&mut v, 10, a, Write), Outcome::Killed(Kill::Segv));
    let mut s = std::string::String::new();
    v.vmmap(10, &mut s).unwrap();
    assert!(s.contains("r--p file      40 pages resident"), "{s}");
    // munmap: every capability goes, and the object is released.
    v.munmap(10, a, 40 * P).unwrap();
    assert_eq!(v.blocks_held(), 0);
    assert_eq!(v.m.pager.caps.len(), v.blocks_idle());
    assert_eq!(v.m.pager.log.last(), Some(&release_last(&v)));
    assert!(
        !v.m.pager
            .log
            .iter()
            .any(|r| matches!(r, ObjectRequest::Sync { .. }))
    );
}

#[test]
fn object_offset_and_partial_blocks() {
    let mut v = vm_with_object(64 * P as usize);
    // Offset 3 pages: the region's first 13 pages are block 0's pages 3..16.
    let a = mmap_obj(&mut v, A, 20 * P, prot::READ, map::PRIVATE, 3 * P).unwrap();
    assert_eq!(oread(&mut v, 10, a + 1), obj_byte(3 * P + 1));
    assert_eq!(mapped(&v, 10), 13);
    assert_eq!(oread(&mut v, 10, a + 13 * P), obj_byte(16 * P));
    assert_eq!(mapped(&v, 10), 20);
    // Unmapping part of the region drops only the blocks no page names any more.
    v.munmap(10, a, 13 * P).unwrap();
    assert_eq!(v.blocks_held(), 1);
    assert!(
        !v.m.pager
            .log
            .iter()
            .any(|r| matches!(r, ObjectRequest::Release { .. }))
    );
    v.munmap(10, a + 13 * P, 7 * P).unwrap();
    assert_eq!(v.blocks_held(), 0);
}

#[test]
fn object_private_write_copies_and_leaves_the_object() {
    let mut v = vm_with_object(32 * P as usize);
    let a = mmap_obj(&mut v, 0, 32 * P, RW, map::PRIVATE, 0).unwrap();
    assert_eq!(oread(&mut v, 10, a + 2 * P), obj_byte(2 * P));
    owrite(&mut v, 10, a + 2 * P, 0xee);
    assert_eq!(v.stats().pages_copied, 1);
    assert_eq!(oread(&mut v, 10, a + 2 * P), 0xee);
    assert_eq!(oread(&mut v, 10, a + 2 * P + 1), obj_byte(2 * P + 1));
    // A write to a page never touched: the block is fetched (not for writing), copied.
    owrite(&mut v, 10, a + 20 * P, 0xdd);
    assert_eq!(v.stats().pages_copied, 2);
    assert!(v.m.pager.log.iter().all(|r| !matches!(
        r,
        ObjectRequest::Page { write: true, .. } | ObjectRequest::Dirty { .. }
    )));
    // The pager's blocks and the object are untouched.
    let key = (Pager::File as u64, OBJ, 0);
    assert_eq!(v.m.pager.frames[&key][(2 * P) as usize], obj_byte(2 * P));
    assert_eq!(v.stats().pages_in_use, 2);
    v.destroy(10).unwrap();
    assert_eq!(v.stats().pages_in_use, 0);
    assert_eq!(v.blocks_held(), 0);
    assert_eq!(v.m.pager.log.last(), Some(&release_last(&v)));
}

#[test]
fn object_shared_write_is_dirty_then_synced() {
    let mut v = vm_with_object(32 * P as usize);
    let a = mmap_obj(&mut v, 0, 32 * P, RW, map::SHARED, 0).unwrap();
    assert_eq!(oread(&mut v, 10, a + P), obj_byte(P));
    let (_, f) = v.task(10).unwrap().space.mapped.borrow()[&(a + P)];
    assert_eq!(f, MapFlags::READ.0);
    owrite(&mut v, 10, a + P, 0x42);
    let handle = v.m.pager.last_handle;
    assert!(
        v.m.pager
            .log
            .contains(&ObjectRequest::Dirty { handle, block: 0 })
    );
    // The whole block is writable now: no more faults for its other pages.
    let (_, f) = v.task(10).unwrap().space.mapped.borrow()[&(a + 7 * P)];
    assert_eq!(f, MapFlags::RW.0);
    // The write is in the pager's page, not yet in the object.
    let key = (Pager::File as u64, OBJ, 0);
    assert_eq!(v.m.pager.frames[&key][P as usize], 0x42);
    assert_eq!(
        v.m.pager.objects[&(Pager::File as u64, OBJ)][P as usize],
        obj_byte(P)
    );
    const SYNC: u64 = proto::object::ms::SYNC;
    const ASYNC: u64 = proto::object::ms::ASYNC;
    const INVALIDATE: u64 = proto::object::ms::INVALIDATE;
    assert_eq!(v.msync(10, a + 1, P, SYNC), Err(Errno::EINVAL));
    assert_eq!(v.msync(10, a, 64 * P, SYNC), Err(Errno::ENOMEM));
    // Flags: both ASYNC and SYNC, or an unknown bit, is EINVAL (before anything else).
    let before = v.m.pager.log.len();
    assert_eq!(v.msync(10, a, P, SYNC | ASYNC), Err(Errno::EINVAL));
    assert_eq!(v.msync(10, a, P, 8), Err(Errno::EINVAL));
    assert_eq!(v.msync(10, a, P, SYNC | 1 << 40), Err(Errno::EINVAL));
    assert_eq!(v.msync(10, a + 1, 64 * P, SYNC | ASYNC), Err(Errno::EINVAL));
    assert_eq!(v.m.pager.log.len(), before);
    // Past the top of user space, or wrapping: not mapped.
    assert_eq!(
        v.msync(10, proto::USER_END - P, 2 * P, SYNC),
        Err(Errno::ENOMEM)
    );
    assert_eq!(v.msync(10, a, u64::MAX - a + 1, SYNC), Err(Errno::ENOMEM));
    v.msync(10, a, 32 * P, ASYNC | INVALIDATE).unwrap();
    v.msync(10, a, 32 * P, SYNC | INVALIDATE).unwrap();
    assert!(v.m.pager.log.contains(&ObjectRequest::Sync {
        handle,
        first: 0,
        count: 2
    }));
    assert_eq!(
        v.m.pager.objects[&(Pager::File as u64, OBJ)][P as usize],
        0x42
    );
    // Read-only again after msync: the next write is reported again.
    let (_, f) = v.task(10).unwrap().space.mapped.borrow()[&(a + P)];
    assert_eq!(f, MapFlags::READ.0);
    owrite(&mut v, 10, a + P + 1, 0x43);
    assert_eq!(v.stats().pages_copied, 0);
    assert_eq!(v.stats().pages_in_use, 0);
    // A write fault on a page never touched asks for the block for writing.
    owrite(&mut v, 10, a + 20 * P, 0x44);
    assert!(v.m.pager.log.contains(&ObjectRequest::Page {
        handle,
        block: 1,
        write: true
    }));
    // munmap syncs.
    v.munmap(10, a, 32 * P).unwrap();
    let obj = &v.m.pager.objects[&(Pager::File as u64, OBJ)];
    assert_eq!(
        (obj[(P + 1) as usize], obj[(20 * P) as usize]),
        (0x43, 0x44)
    );
    assert_eq!(v.blocks_held(), 0);
}

#[test]
fn object_past_end_is_bus() {
    // 5000 bytes: pages 0 and 1 hold data (the second partly); page 2 and block 1 do not.
    let mut v = vm_with_object(5000);
    let a = mmap_obj(&mut v, 0, 32 * P, prot::READ, map::PRIVATE, 0).unwrap();
    assert_eq!(oread(&mut v, 10, a + 4999), obj_byte(4999));
    assert_eq!(oread(&mut v, 10, a + 5000), 0);
    assert_eq!(mapped(&v, 10), 2);
    // The kill reports the address touched, not its page.
    assert_eq!(
        touch(&mut v, 10, a + 2 * P + 0x18, Read),
        Outcome::Killed(Kill::Bus)
    );
    assert_eq!(
        touch(&mut v, 10, a + 16 * P, Read),
        Outcome::Killed(Kill::Bus)
    );
    assert_eq!(
        v.take_kill(),
        Some(KillRecord {
            pid: 10,
            kind: Kill::Bus,
            addr: a + 2 * P + 0x18
        })
    );
    assert_eq!(v.blocks_held(), 1);
}

#[test]
fn object_revoked_block_is_asked_again() {
    let mut v = vm_with_object(32 * P as usize);
    let a = mmap_obj(&mut v, 0, 16 * P, RW, map::SHARED, 0).unwrap();
    owrite(&mut v, 10, a, 1);
    assert_eq!(pages_asked(&v), 1);
    // The pager revokes its capability (write-back, eviction): vm's copy and its mappings go.
    let slot = *v.m.pager.caps.keys().next().unwrap();
    v.m.pager.caps.remove(&slot);
    v.task(10).unwrap().space.mapped.borrow_mut().clear();
    assert_eq!(oread(&mut v, 10, a), 1);
    assert_eq!(pages_asked(&v), 2);
    assert_eq!(v.blocks_held(), 1);
    assert_eq!(mapped(&v, 10), 16);
    // Written again: dirty again (the first write asked for the block for writing, which
    // told the pager; this one, to a block mapped read-only, is `Dirty`).
    owrite(&mut v, 10, a + 3, 2);
    let told = |v: &TestVm, dirty: bool| {
        v.m.pager
            .log
            .iter()
            .filter(|r| match r {
                ObjectRequest::Dirty { .. } => dirty,
                ObjectRequest::Page { write: true, .. } => !dirty,
                _ => false,
            })
            .count()
    };
    assert_eq!((told(&v, false), told(&v, true)), (1, 1));
    // Access taken away and given back: the pages come back from the block.
    v.mprotect(10, a, 16 * P, prot::NONE).unwrap();
    v.mprotect(10, a, 16 * P, prot::READ).unwrap();
    assert_eq!(oread(&mut v, 10, a + 3), 2);
    assert_eq!(pages_asked(&v), 2);
}

#[test]
fn object_fork_after_revoke_reports_the_childs_write() {
    let mut v = vm_with_object(32 * P as usize);
    let a = mmap_obj(&mut v, 0, 16 * P, RW, map::SHARED, 0).unwrap();
    let dirty = |v: &TestVm| {
        v.m.pager
            .log
            .iter()
            .filter(|r| {
                matches!(
                    r,
                    ObjectRequest::Dirty { .. } | ObjectRequest::Page { write: true, .. }
                )
            })
            .count()
    };
    owrite(&mut v, 10, a, 1);
    v.fork(10, 11, Space::default()).map_err(|e| e.0).unwrap();
    // The pager writes the block back and revokes it; another task reads it again: vm
    // holds a new capability of a clean block, the parent's entries still say writable.
    let slot = *v.m.pager.caps.keys().next().unwrap();
    v.m.pager.caps.remove(&slot);
    v.task(10).unwrap().space.mapped.borrow_mut().clear();
    v.task(11).unwrap().space.mapped.borrow_mut().clear();
    assert_eq!(oread(&mut v, 11, a), 1);
    // A child forked now maps the block read-only: its first write is reported.
    v.fork(10, 12, Space::default()).map_err(|e| e.0).unwrap();
    let (_, f) = access(&mut v, 12, a, Read).unwrap();
    assert_eq!(f & 2, 0);
    let before = dirty(&v);
    owrite(&mut v, 12, a + 1, 2);
    assert_eq!(dirty(&v), before + 1);
    assert_eq!(oread(&mut v, 10, a + 1), 2);
}

#[test]
fn object_fork_shares_shared_and_copies_private() {
    let mut v = vm_with_object(32 * P as usize);
    let s = mmap_obj(&mut v, 0, 16 * P, RW, map::SHARED, 0).unwrap();
    let p = mmap_obj(&mut v, 0, 16 * P, RW, map::PRIVATE, 16 * P).unwrap();
    owrite(&mut v, 10, s, 1);
    assert_eq!(oread(&mut v, 10, s + P), obj_byte(P));
    owrite(&mut v, 10, p, 2);
    assert_eq!(oread(&mut v, 10, p + P), obj_byte(17 * P));
    v.fork(10, 11, Space::default()).map_err(|e| e.0).unwrap();
    // The child maps the same blocks: no request to the pager.
    let asked = pages_asked(&v);
    assert_eq!(oread(&mut v, 11, s), 1);
    assert_eq!(oread(&mut v, 11, p), 2);
    assert_eq!(oread(&mut v, 11, p + P), obj_byte(17 * P));
    assert_eq!(pages_asked(&v), asked);
    // Shared: each sees the other's writes.
    owrite(&mut v, 11, s + 2, 3);
    assert_eq!(oread(&mut v, 10, s + 2), 3);
    owrite(&mut v, 10, s + P, 4);
    assert_eq!(oread(&mut v, 11, s + P), 4);
    // Private: copies on either side's write.
    owrite(&mut v, 11, p, 5);
    assert_eq!(oread(&mut v, 10, p), 2);
    owrite(&mut v, 10, p + P, 6);
    assert_eq!(oread(&mut v, 11, p + P), obj_byte(17 * P));
    // The parent ends: the object stays mapped by the child (no Release yet).
    v.destroy(10).unwrap();
    assert!(
        !v.m.pager
            .log
            .iter()
            .any(|r| matches!(r, ObjectRequest::Release { .. }))
    );
    assert_eq!(oread(&mut v, 11, s + P), 4);
    v.destroy(11).unwrap();
    assert_eq!(v.blocks_held(), 0);
    assert_eq!(v.m.pager.caps.len(), v.blocks_idle());
    assert_eq!(v.stats().pages_in_use, 0);
    let releases =
        v.m.pager
            .log
            .iter()
            .filter(|r| matches!(r, ObjectRequest::Release { .. }))
            .count();
    // One for each mapping's handle, each with the last region naming it.
    assert_eq!(releases, 2);
    assert_eq!(v.m.pager.objects[&(Pager::File as u64, OBJ)][2], 3);
}

#[test]
fn object_mmap_arguments() {
    let mut v = vm_with_object(P as usize);
    let e = |r: Result<u64, Errno>| r.err();
    assert_eq!(
        e(mmap_obj(&mut v, 0, 0, prot::READ, map::PRIVATE, 0)),
        Some(Errno::EINVAL)
    );
    assert_eq!(
        e(mmap_obj(&mut v, 0, P, prot::READ, map::PRIVATE, 100)),
        Some(Errno::EINVAL)
    );
    assert_eq!(
        e(mmap_obj(&mut v, 0, P, 8, map::PRIVATE, 0)),
        Some(Errno::EINVAL)
    );
    assert_eq!(
        e(mmap_obj(
            &mut v,
            0,
            P,
            prot::READ,
            map::PRIVATE | map::SHARED,
            0
        )),
        Some(Errno::EINVAL)
    );
    assert_eq!(
        e(mmap_obj(
            &mut v,
            0,
            P,
            prot::READ,
            map::PRIVATE | map::ANONYMOUS,
            0
        )),
        Some(Errno::EINVAL)
    );
    assert_eq!(
        e(mmap_obj(&mut v, 0, P, prot::READ, map::PRIVATE, !(P - 1))),
        Some(Errno::EINVAL)
    );
    assert_eq!(
        e(mmap_obj(
            &mut v,
            A + 1,
            P,
            prot::READ,
            map::PRIVATE | map::FIXED,
            0
        )),
        Some(Errno::EINVAL)
    );
    let shm = MmapObject {
        addr: 0,
        len: P,
        prot: prot::READ,
        flags: map::SHARED,
        pager: Pager::Shm,
        handle: 1,
        offset: 0,
    };
    assert_eq!(v.mmap_object(10, shm), Err(Errno::ENODEV));
    // Placement as for anonymous memory; MAP_FIXED replaces.
    assert_eq!(
        mmap_obj(&mut v, 0, 1, prot::READ, map::PRIVATE, 0),
        Ok(proto::MMAP_TOP - P)
    );
    assert_eq!(mmap_obj(&mut v, A, P, prot::READ, map::PRIVATE, 0), Ok(A));
    assert_eq!(oread(&mut v, 10, A), obj_byte(0));
    assert_eq!(
        mmap_anon(&mut v, 10, A, P, map::PRIVATE | map::FIXED),
        Ok(A)
    );
    assert_eq!(read(&mut v, 10, A), 0);
    assert_eq!(v.blocks_held(), 0);
}

#[test]
fn object_segment_maps_file_part_and_zeroes_the_tail() {
    // A data segment: vaddr A + 0x234 holds file byte 0x5234; 0x2100 file bytes, so the
    // file part ends at A + 0x2334 (in the region's third page); the rest of that page is
    // .bss and must read as zero although the file has bytes there.
    let mut v = vm_with_object(40 * P as usize);
    let (vaddr, off, fsz) = (A + 0x234, 0x5234, 0x2100);
    let h = init_handle(&mut v);
    v.map_object(10, vaddr, fsz, RW, Pager::File, h, off)
        .unwrap();
    let r = *v.task(10).unwrap().regions.find(A).unwrap();
    assert_eq!((r.start, r.end), (A, A + 3 * P));
    // Read of the first page: from the block, read-only, fault-around stops before the tail.
    assert_eq!(oread(&mut v, 10, vaddr), obj_byte(off));
    assert_eq!(mapped(&v, 10), 2);
    assert_eq!(v.stats().pages_in_use, 0);
    // The tail page: vm's own copy, file bytes up to the limit, zeroes after.
    let limit = vaddr + fsz;
    assert_eq!(oread(&mut v, 10, limit - 1), obj_byte(off + fsz - 1));
    assert_eq!(oread(&mut v, 10, limit), 0);
    assert_eq!(oread(&mut v, 10, A + 3 * P - 1), 0);
    assert_eq!(v.stats().pages_in_use, 1);
    // Writable without another fault (private, its only user), the object untouched.
    let (what, f) = access(&mut v, 10, limit, Write).unwrap();
    assert!(what & BLOCK_MARK == 0 && f & 2 != 0);
    // A write to the file part copies the page; the object keeps its bytes.
    owrite(&mut v, 10, vaddr, 0xab);
    assert_eq!(oread(&mut v, 10, vaddr), 0xab);
    let key = (Pager::File as u64, OBJ, 0);
    assert_eq!(v.m.pager.frames[&key][off as usize], obj_byte(off));
    assert!(v.m.pager.log.iter().all(|r| !matches!(
        r,
        ObjectRequest::Page { write: true, .. } | ObjectRequest::Dirty { .. }
    )));
    // Fork shares the tail page copy-on-write; exit gives everything back.
    v.fork(10, 11, Space::default())
        .map_err(|(e, _)| e)
        .unwrap();
    assert_eq!(oread(&mut v, 11, limit), 0);
    assert_eq!(oread(&mut v, 11, limit - 1), obj_byte(off + fsz - 1));
    v.destroy(11).unwrap();
    v.destroy(10).unwrap();
    assert_eq!(v.stats().pages_in_use, 0);
    assert_eq!(v.blocks_held(), 0);
    assert_eq!(v.m.pager.log.last(), Some(&release_last(&v)));
}

#[test]
fn object_segment_arguments() {
    let mut v = vm_with_object(8 * P as usize);
    let rx = prot::READ | prot::EXEC;
    let h = init_handle(&mut v);
    // Not congruent, empty, outside user space, bad prot, unknown task.
    assert_eq!(
        v.map_object(10, A + 1, P, rx, Pager::File, h, 2),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        v.map_object(10, A, 0, rx, Pager::File, h, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        v.map_object(10, 0, P, rx, Pager::File, h, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        v.map_object(10, A, P, 8, Pager::File, h, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        v.map_object(99, A, P, rx, Pager::File, h, 0),
        Err(Errno::ESRCH)
    );
    // A text segment ending on a page boundary has no tail page of vm's own.
    v.map_object(10, A, 2 * P, rx, Pager::File, h, 0).unwrap();
    assert_eq!(oread(&mut v, 10, A + 2 * P - 1), obj_byte(2 * P - 1));
    assert_eq!(v.stats().pages_in_use, 0);
    assert_eq!(mapped(&v, 10), 2);
    // Overlap.
    assert_eq!(
        v.map_object(10, A + P, P, rx, Pager::File, h, P),
        Err(Errno::EINVAL)
    );
    // Executing a page past the object's data is BUS.
    v.map_object(10, A + 16 * P, 2 * P, rx, Pager::File, h, 40 * P)
        .unwrap();
    assert!(matches!(
        touch(&mut v, 10, A + 16 * P, Execute),
        Outcome::Killed(Kill::Bus)
    ));
}

// ---- handles: bound to their task, rights that stick ----

/// `MmapObject` of file handle `handle` by task `pid`.
fn mmap_handle(
    v: &mut TestVm,
    pid: u64,
    handle: u64,
    addr: u64,
    prot: u64,
    flags: u64,
) -> Result<u64, Errno> {
    v.mmap_object(
        pid,
        MmapObject {
            addr,
            len: 4 * P,
            prot,
            flags,
            pager: Pager::File,
            handle,
            offset: 0,
        },
    )
}

fn releases(v: &TestVm) -> Vec<u64> {
    v.m.pager
        .log
        .iter()
        .filter_map(|r| match r {
            ObjectRequest::Release { handle } => Some(*handle),
            _ => None,
        })
        .collect()
}

#[test]
fn a_handle_maps_only_for_the_task_it_was_given_to_and_once() {
    let mut v = vm_with_object(8 * P as usize);
    v.new_space(11, Space::default()).unwrap();
    let mine = v.m.pager.give(Pager::File, 10, OBJ, true);
    // Numbers nobody was given, and another task's handle: EBADF, nothing mapped.
    for forged in [0, mine + 1, 1 << 40, u64::MAX] {
        assert_eq!(
            mmap_handle(&mut v, 10, forged, 0, prot::READ, map::PRIVATE).map_err(|e| (e, forged)),
            Err((Errno::EBADF, forged))
        );
    }
    assert_eq!(
        mmap_handle(&mut v, 11, mine, 0, RW, map::SHARED),
        Err(Errno::EBADF)
    );
    assert_eq!(v.task(11).unwrap().regions.len(), 0);
    assert_eq!(v.task(10).unwrap().regions.len(), 0);
    // Its own task maps it, once.
    let a = mmap_handle(&mut v, 10, mine, 0, RW, map::SHARED).unwrap();
    assert_eq!(
        mmap_handle(&mut v, 10, mine, 0, RW, map::SHARED),
        Err(Errno::EBADF)
    );
    // Nor can another task take it over now that vm holds it.
    assert_eq!(
        mmap_handle(&mut v, 11, mine, 0, prot::READ, map::PRIVATE),
        Err(Errno::EBADF)
    );
    owrite(&mut v, 10, a, 9);
    assert!(releases(&v).is_empty());
    v.munmap(10, a, 4 * P).unwrap();
    assert_eq!(releases(&v), [mine]);
    // Released: the number maps nothing any more.
    assert_eq!(
        mmap_handle(&mut v, 10, mine, 0, prot::READ, map::PRIVATE),
        Err(Errno::EBADF)
    );
}

#[test]
fn a_read_only_handle_never_gives_a_writable_shared_mapping() {
    let mut v = vm_with_object(8 * P as usize);
    // Shared and writable: EACCES, and the handle goes back at once.
    let ro = v.m.pager.give(Pager::File, 10, OBJ, false);
    assert_eq!(
        mmap_handle(&mut v, 10, ro, 0, RW, map::SHARED),
        Err(Errno::EACCES)
    );
    assert_eq!(releases(&v), [ro]);
    // Shared read-only: mapped, but mprotect cannot add PROT_WRITE (and changes nothing).
    let ro = v.m.pager.give(Pager::File, 10, OBJ, false);
    let a = mmap_handle(&mut v, 10, ro, 0, prot::READ, map::SHARED).unwrap();
    assert_eq!(oread(&mut v, 10, a), obj_byte(0));
    assert_eq!(v.mprotect(10, a, P, RW), Err(Errno::EACCES));
    assert_eq!(v.mprotect(10, a - P, 2 * P, RW), Err(Errno::EACCES));
    assert_eq!(v.task(10).unwrap().regions.len(), 1);
    assert_eq!(touch(&mut v, 10, a, Write), Outcome::Killed(Kill::Segv));
    // Taking rights away and giving read back is fine.
    v.mprotect(10, a, P, prot::NONE).unwrap();
    v.mprotect(10, a, P, prot::READ | prot::EXEC).unwrap();
    assert_eq!(oread(&mut v, 10, a + 8), obj_byte(8));
    // Private: always writable, by copies; the object stays clean.
    let ro2 = v.m.pager.give(Pager::File, 10, OBJ, false);
    let p = mmap_handle(&mut v, 10, ro2, 0, prot::READ, map::PRIVATE).unwrap();
    v.mprotect(10, p, 4 * P, RW).unwrap();
    owrite(&mut v, 10, p, 0x77);
    assert_eq!(oread(&mut v, 10, p), 0x77);
    assert!(v.m.pager.log.iter().all(|r| !matches!(
        r,
        ObjectRequest::Page { write: true, .. } | ObjectRequest::Dirty { .. }
    )));
    assert_eq!(
        v.m.pager.objects[&(Pager::File as u64, OBJ)][0],
        obj_byte(0)
    );
    // A writable handle's shared read-only mapping may be made writable.
    let rw = v.m.pager.give(Pager::File, 10, OBJ, true);
    let s = mmap_handle(&mut v, 10, rw, 0, prot::READ, map::SHARED).unwrap();
    v.mprotect(10, s, 4 * P, RW).unwrap();
    owrite(&mut v, 10, s + 1, 0x55);
    v.msync(10, s, 4 * P, proto::object::ms::SYNC).unwrap();
    assert_eq!(v.m.pager.objects[&(Pager::File as u64, OBJ)][1], 0x55);
}

#[test]
fn a_failed_mmap_releases_the_handle_it_claimed() {
    let mut v = vm_with_object(8 * P as usize);
    for (addr, flags, want) in [
        (A + 1, map::SHARED | map::FIXED, Errno::EINVAL),
        (P, map::SHARED | map::FIXED, Errno::EINVAL),
        (0, map::SHARED | map::PRIVATE, Errno::EINVAL),
    ] {
        let h = v.m.pager.give(Pager::File, 10, OBJ, true);
        assert_eq!(mmap_handle(&mut v, 10, h, addr, RW, flags), Err(want));
        // Refused before the claim (bad flags): the handle stays the task's to give back;
        // after it: vm released it.
        let claimed =
            v.m.pager
                .log
                .contains(&ObjectRequest::Claim { handle: h, pid: 10 });
        assert_eq!(releases(&v).contains(&h), claimed);
    }
    // No room left: ENOMEM after the claim, released too.
    let h = v.m.pager.give(Pager::File, 10, OBJ, true);
    let huge = MmapObject {
        addr: 0,
        len: proto::MMAP_TOP,
        prot: prot::READ,
        flags: map::PRIVATE,
        pager: Pager::File,
        handle: h,
        offset: 0,
    };
    assert_eq!(v.mmap_object(10, huge), Err(Errno::ENOMEM));
    assert_eq!(releases(&v).last(), Some(&h));
    assert_eq!(v.task(10).unwrap().regions.len(), 0);
}

#[test]
fn handles_of_one_object_share_blocks_and_go_one_by_one() {
    let mut v = vm_with_object(16 * P as usize);
    v.new_space(11, Space::default()).unwrap();
    let h10 = v.m.pager.give(Pager::File, 10, OBJ, true);
    let h11 = v.m.pager.give(Pager::File, 11, OBJ, false);
    let a = mmap_handle(&mut v, 10, h10, 0, RW, map::SHARED).unwrap();
    let b = mmap_handle(&mut v, 11, h11, 0, prot::READ, map::SHARED).unwrap();
    owrite(&mut v, 10, a, 0x31);
    // The other task's mapping, through its own handle, reads the same block: one
    // capability, no second request.
    assert_eq!(oread(&mut v, 11, b), 0x31);
    assert_eq!((v.blocks_held(), pages_asked(&v)), (1, 1));
    // A fork child shares the parent's handle: released with the last region naming it.
    v.fork(10, 12, Space::default()).map_err(|e| e.0).unwrap();
    v.munmap(10, a, 4 * P).unwrap();
    assert!(releases(&v).is_empty());
    assert_eq!(oread(&mut v, 12, a), 0x31);
    v.destroy(12).unwrap();
    assert_eq!(releases(&v), [h10]);
    v.destroy(11).unwrap();
    assert_eq!(releases(&v), [h10, h11]);
    assert_eq!(v.blocks_held(), 0);
}

#[test]
fn init_claims_a_program_handle_once_for_all_its_segments() {
    let mut v = vm_with_object(40 * P as usize);
    v.new_space(11, Space::default()).unwrap();
    let rx = prot::READ | prot::EXEC;
    // A task's handle is not init's to map.
    let task_h = v.m.pager.give(Pager::File, 10, OBJ, false);
    assert_eq!(
        v.map_object(11, A, P, rx, Pager::File, task_h, 0),
        Err(Errno::EBADF)
    );
    let h = init_handle(&mut v);
    v.map_object(11, A, 2 * P, rx, Pager::File, h, 0).unwrap();
    v.map_object(11, A + 16 * P, 2 * P, RW, Pager::File, h, 16 * P)
        .unwrap();
    let claims = |v: &TestVm| {
        v.m.pager
            .log
            .iter()
            .filter(|r| matches!(r, ObjectRequest::Claim { .. }))
            .count()
    };
    assert_eq!(claims(&v), 2);
    // A task cannot map init's handle, even knowing its number.
    assert_eq!(
        mmap_handle(&mut v, 10, h, 0, prot::READ, map::PRIVATE),
        Err(Errno::EBADF)
    );
    assert_eq!(oread(&mut v, 11, A + 16 * P), obj_byte(16 * P));
    v.reset(11).unwrap();
    assert_eq!(releases(&v), [h]);
}

#[test]
fn low_heap_refuses_what_would_grow_it() {
    let mut v = vm(4);
    let a = mmap_anon(&mut v, 10, A, 8 * P, map::PRIVATE).unwrap();
    write(&mut v, 10, a, 1);
    v.m.heap_low = true;
    // New regions, tasks, forks and page groups are refused; the server goes on.
    assert_eq!(
        mmap_anon(&mut v, 10, 0, P, map::PRIVATE),
        Err(Errno::ENOMEM)
    );
    assert_eq!(v.mprotect(10, a, P, prot::READ), Err(Errno::ENOMEM));
    // Whole regions may still change (nothing splits).
    v.mprotect(10, a, 8 * P, prot::READ).unwrap();
    v.mprotect(10, a, 8 * P, RW).unwrap();
    assert!(matches!(
        v.new_space(11, Space::default()),
        Err((Errno::ENOMEM, _))
    ));
    assert!(matches!(
        v.fork(10, 12, Space::default()),
        Err((Errno::ENOMEM, _))
    ));
    // A fault in a new 2 MiB group: BUS at the address touched.
    let far = mmap_anon(&mut v, 10, 0x4000_0000, P, map::PRIVATE);
    assert_eq!(far, Err(Errno::ENOMEM));
    // What is there still works, and giving memory back is never refused.
    assert_eq!(read(&mut v, 10, a), 1);
    write(&mut v, 10, a + P, 2);
    v.munmap(10, a + 4 * P, 4 * P).unwrap();
    v.m.heap_low = false;
    let b = mmap_anon(&mut v, 10, 0x4000_0000, P, map::PRIVATE).unwrap();
    v.m.heap_low = true;
    assert_eq!(
        touch(&mut v, 10, b + 0x10, Write),
        Outcome::Killed(Kill::Bus)
    );
    assert_eq!(
        v.take_kill().map(|k| (k.kind, k.addr)),
        Some((Kill::Bus, b + 0x10))
    );
}

#[test]
fn alternating_mprotect_stops_at_the_region_limit() {
    let mut v = vm(4);
    let n = crate::region::MAX_REGIONS as u64;
    let a = mmap_anon(&mut v, 10, 0, (n + 8) * P, map::PRIVATE).unwrap();
    let mut refused = None;
    for i in (1..n + 8).step_by(2) {
        if let Err(e) = v.mprotect(10, a + i * P, P, prot::READ) {
            refused = Some((i, e));
            break;
        }
    }
    let (i, e) = refused.expect("the region list grew past its limit");
    assert_eq!(e, Errno::ENOMEM);
    assert!(i < n);
    assert!(v.task(10).unwrap().regions.len() <= crate::region::MAX_REGIONS);
    // Putting the protections back merges everything into one region again.
    v.mprotect(10, a, (n + 8) * P, RW).unwrap();
    assert_eq!(v.task(10).unwrap().regions.len(), 1);
}

#[test]
fn shared_anonymous_mappings_per_task_are_limited() {
    let mut v = vm(4);
    v.m.pager.shm = true;
    let mut maps = Vec::new();
    for _ in 0..crate::MAX_TASK_ANON_OBJECTS {
        maps.push(mmap_anon(&mut v, 10, 0, P, map::SHARED).unwrap());
    }
    let made = v.m.pager.anon_made;
    assert_eq!(mmap_anon(&mut v, 10, 0, P, map::SHARED), Err(Errno::ENOMEM));
    // Refused before shm was asked; another task is not held back.
    assert_eq!(v.m.pager.anon_made, made);
    v.new_space(11, Space::default()).unwrap();
    mmap_anon(&mut v, 11, 0, P, map::SHARED).unwrap();
    // Giving one back makes room again.
    v.munmap(10, maps[0], P).unwrap();
    mmap_anon(&mut v, 10, 0, P, map::SHARED).unwrap();
}

/// A fork of a task with many one-page regions (every other one `PROT_NONE`, the others
/// written): the parent's protections are batched across touching regions, past the
/// budget the child's single pages are left unmapped, and the child still reads every
/// page's data (its fault maps the shared page), writes its own copy, and the parent keeps
/// its data; a region with other flags (read-only) in the middle keeps them.
#[test]
fn fork_batches_protections_and_maps_single_pages_on_touch() {
    let mut v = vm(8);
    let n = 400u64;
    for i in 0..n {
        let at = A + i * 2 * P;
        mmap_anon(&mut v, 10, at, 2 * P, map::PRIVATE | map::FIXED).unwrap();
        v.mprotect(10, at + P, P, prot::NONE).unwrap();
        write(&mut v, 10, at, (i % 250) as u8 + 1);
    }
    // One read-only region with a page, in the middle.
    let ro = A + 200 * 2 * P;
    v.mprotect(10, ro, P, prot::READ).unwrap();
    let calls = v.m.calls;
    v.fork(10, 11, Space::default()).map_err(|e| e.0).unwrap();
    let used = v.m.calls - calls;
    // Two protections (split by the read-only region) and the eager single pages.
    assert!(
        used <= 2 + crate::FORK_EAGER_SINGLES as usize + 2,
        "{used} kernel calls"
    );
    let child_mapped = v.task(11).unwrap().space.mapped.borrow().len() as u64;
    assert_eq!(child_mapped, u64::from(crate::FORK_EAGER_SINGLES));
    // Every parent page is read-only now, the read-only region's as it was.
    let flags = |v: &TestVm, va| v.task(10).unwrap().space.mapped.borrow()[&va].1;
    for i in 0..n {
        let at = A + i * 2 * P;
        assert_eq!(flags(&v, at), MapFlags::READ.0, "page {i}");
    }
    for i in 0..n {
        let at = A + i * 2 * P;
        assert_eq!(read(&mut v, 11, at), (i % 250) as u8 + 1, "child page {i}");
    }
    for i in (0..n).step_by(7).filter(|&i| A + i * 2 * P != ro) {
        let at = A + i * 2 * P;
        write(&mut v, 11, at, 251);
        assert_eq!(read(&mut v, 11, at), 251);
        assert_eq!(read(&mut v, 10, at), (i % 250) as u8 + 1);
        write(&mut v, 10, at + 1, 7);
        assert_eq!(read(&mut v, 11, at + 1), 0);
    }
    assert_eq!(
        touch(&mut v, 11, ro, Write),
        Outcome::Killed(Kill::Segv),
        "the read-only region stays read-only in the child"
    );
}

#[test]
fn fork_copies_many_regions_in_order() {
    let mut v = vm(4);
    v.m.pager
        .objects
        .insert((Pager::File as u64, OBJ), vec![1; 64 * P as usize]);
    // Anonymous and object regions alternating, as a hostile task might lay them out.
    let mut expect = Vec::new();
    for i in 0..2000u64 {
        let at = A + i * 2 * P;
        if i % 2 == 0 {
            mmap_anon(&mut v, 10, at, P, map::PRIVATE | map::FIXED).unwrap();
        } else {
            mmap_obj(&mut v, at, P, prot::READ, map::PRIVATE | map::FIXED, 0).unwrap();
        }
        expect.push(at);
    }
    v.fork(10, 11, Space::default()).map_err(|e| e.0).unwrap();
    let starts: Vec<u64> = v
        .task(11)
        .unwrap()
        .regions
        .iter()
        .map(|r| r.start)
        .collect();
    let parent: Vec<u64> = v
        .task(10)
        .unwrap()
        .regions
        .iter()
        .map(|r| r.start)
        .collect();
    assert_eq!(starts, parent);
    assert!(expect.iter().all(|a| starts.contains(a)));
}

#[test]
fn a_restarted_pager_never_hears_of_old_handles() {
    let mut v = vm_with_object(4 * BLOCK_SIZE as usize);
    let old = mmap_obj(&mut v, 0, 4 * BLOCK_SIZE, prot::READ, map::PRIVATE, 0).unwrap();
    let old_handle = v.m.pager.last_handle;
    assert_eq!(oread(&mut v, 10, old + 5), obj_byte(5));
    // The pager dies and comes back (init's `SetPager`): its handle table starts again.
    v.m.pager.handles.clear();
    v.m.generation = 1;
    let sent = v.m.pager.log.len();
    // A block of the old mapping not yet mapped: BUS, and nothing reaches the new pager.
    assert_eq!(
        touch(&mut v, 10, old + BLOCK_SIZE, Read),
        Outcome::Killed(Kill::Bus)
    );
    assert_eq!(v.m.pager.log.len(), sent);
    // The new instance's first handle has the old one's number, and maps its own object.
    let new = mmap_obj(
        &mut v,
        0,
        BLOCK_SIZE,
        prot::READ,
        map::PRIVATE,
        2 * BLOCK_SIZE,
    )
    .unwrap();
    assert_eq!(v.m.pager.last_handle, old_handle);
    assert_eq!(oread(&mut v, 10, new + 9), obj_byte(2 * BLOCK_SIZE + 9));
    // A handle with generation bits is made up.
    let forged = v.m.pager.give(Pager::File, 10, OBJ, true) | 1 << GEN_SHIFT;
    assert_eq!(
        mmap_handle(&mut v, 10, forged, 0, prot::READ, map::PRIVATE),
        Err(Errno::EBADF)
    );
    // Unmapping the old mapping releases nothing in the new pager.
    let sent = v.m.pager.log.len();
    v.munmap(10, old, 4 * BLOCK_SIZE).unwrap();
    assert_eq!(v.m.pager.log.len(), sent);
}

#[test]
fn operations_that_wait_for_a_pager_run_again_with_the_answer() {
    const SYNC: u64 = proto::object::ms::SYNC;
    let mut v = vm_with_object(40 * P as usize);
    v.m.defer = true;
    let handle = v.m.pager.give(Pager::File, 10, OBJ, true);
    let req = MmapObject {
        addr: 0,
        len: 40 * P,
        prot: RW,
        flags: map::SHARED,
        pager: Pager::File,
        handle,
        offset: 0,
    };
    // The claim waits: nothing is placed until the answer is in.
    assert_eq!(v.mmap_object(10, req), Err(WAIT));
    assert_eq!(v.task(10).unwrap().regions.iter().count(), 0);
    v.m.answer();
    let a = v.mmap_object(10, req).unwrap();
    // A read fault waits for the block and maps nothing meanwhile; handled again, it maps
    // the block; it is counted once.
    let faults = v.stats().faults;
    assert_eq!(v.fault(10, a + P, Read, false), Outcome::Wait);
    assert_eq!(mapped(&v, 10), 0);
    assert_eq!(v.fault(10, a + 2 * P, Read, false), Outcome::Wait);
    v.m.answer();
    assert_eq!(v.fault_again(10, a + P, Read, false), Outcome::Resume);
    assert_eq!(v.fault_again(10, a + 2 * P, Read, false), Outcome::Resume);
    assert_eq!(v.stats().faults, faults + 2);
    assert_eq!(pages_asked(&v), 1);
    assert_eq!(mapped(&v, 10), BLOCK_PAGES as usize);
    assert_eq!(oread(&mut v, 10, a + P + 3), obj_byte(P + 3));
    // The first write waits for `Dirty`, then the block is writable.
    let waits = v.m.waits;
    owrite(&mut v, 10, a + P, 0x42);
    assert!(v.m.waits > waits);
    assert!(
        v.m.pager
            .log
            .contains(&ObjectRequest::Dirty { handle, block: 0 })
    );
    // msync waits, then writes back.
    assert_eq!(v.msync(10, a, 40 * P, SYNC), Err(WAIT));
    v.m.answer();
    v.msync(10, a, 40 * P, SYNC).unwrap();
    assert_eq!(
        v.m.pager.objects[&(Pager::File as u64, OBJ)][P as usize],
        0x42
    );
    // A private mapping's tail and copy wait the same way, and past the end is still BUS.
    let h2 = v.m.pager.give(Pager::File, 10, OBJ, true);
    let private = MmapObject {
        flags: map::PRIVATE,
        handle: h2,
        len: 48 * P,
        ..req
    };
    assert_eq!(v.mmap_object(10, private), Err(WAIT));
    v.m.answer();
    let b = v.mmap_object(10, private).unwrap();
    owrite(&mut v, 10, b + 33 * P, 7);
    assert_eq!(oread(&mut v, 10, b + 33 * P + 1), obj_byte(33 * P + 1));
    assert_eq!(
        touch(&mut v, 10, b + 45 * P, Read),
        Outcome::Killed(Kill::Bus)
    );
    // munmap waits for nobody: its write-back and release go out at once.
    let waits = v.m.waits;
    v.munmap(10, a, 40 * P).unwrap();
    v.munmap(10, b, 48 * P).unwrap();
    assert_eq!(v.m.waits, waits);
    assert_eq!(v.blocks_held(), 0);
}

#[test]
fn a_private_page_whose_block_was_taken_back_comes_back_as_a_copy() {
    let mut v = vm_with_object(32 * P as usize);
    let a = mmap_obj(&mut v, 0, 32 * P, prot::READ, map::PRIVATE, 0).unwrap();
    v.m.defer = true;
    let evict = |v: &mut TestVm| {
        // The pager evicts the block: its capability and every mapping through it go.
        v.m.pager.caps.clear();
        v.task(10).unwrap().space.mapped.borrow_mut().clear();
    };
    assert_eq!(oread(&mut v, 10, a + 3 * P + 5), obj_byte(3 * P + 5));
    // Taken back once: the block is mapped again.
    evict(&mut v);
    assert_eq!(oread(&mut v, 10, a + 3 * P + 6), obj_byte(3 * P + 6));
    assert_eq!(v.stats().pages_in_use, 0);
    // Twice: the task gets its own copy of the page (eviction cannot take it again); the
    // block's other pages come from the block, which vm asked for again to copy it.
    evict(&mut v);
    assert_eq!(oread(&mut v, 10, a + 3 * P + 7), obj_byte(3 * P + 7));
    assert_eq!(v.stats().pages_in_use, 1);
    assert_eq!(oread(&mut v, 10, a + 4 * P), obj_byte(4 * P));
    assert_eq!(oread(&mut v, 10, a + 20 * P + 1), obj_byte(20 * P + 1));
    assert_eq!(v.stats().pages_in_use, 1);
    v.munmap(10, a, 32 * P).unwrap();
    assert_eq!((v.stats().pages_in_use, v.blocks_held()), (0, 0));
}

/// A block whose last mapping went keeps its capability idle: mapping the object again
/// (another handle) asks the pager nothing; a block the pager took back meanwhile is asked
/// for again; and no more than `MAX_IDLE` stay, the oldest going first.
#[test]
fn idle_blocks_are_mapped_again_without_asking_and_bounded() {
    use crate::object::MAX_IDLE;
    let blocks = MAX_IDLE as u64 + 4;
    let size = blocks * BLOCK_PAGES * P;
    let mut v = vm_with_object(size as usize);
    let a = mmap_obj(&mut v, A, 2 * BLOCK_PAGES * P, prot::READ, map::PRIVATE, 0).unwrap();
    assert_eq!(oread(&mut v, 10, a + 9), obj_byte(9));
    v.munmap(10, a, 2 * BLOCK_PAGES * P).unwrap();
    assert_eq!((v.blocks_held(), v.blocks_idle()), (0, 1));
    assert_eq!(v.m.pager.caps.len(), 1);
    // Again, through a new handle: the idle capability serves, no request.
    let a = mmap_obj(&mut v, A, 2 * BLOCK_PAGES * P, prot::READ, map::PRIVATE, 0).unwrap();
    assert_eq!(oread(&mut v, 10, a + P + 3), obj_byte(P + 3));
    assert_eq!(pages_asked(&v), 1);
    assert_eq!((v.blocks_held(), v.blocks_idle()), (1, 0));
    v.munmap(10, a, 2 * BLOCK_PAGES * P).unwrap();
    // The pager takes it back (eviction): the next mapping asks again.
    let slot = *v.m.pager.caps.keys().next().unwrap();
    v.m.pager.caps.remove(&slot);
    let a = mmap_obj(&mut v, A, 2 * BLOCK_PAGES * P, prot::READ, map::PRIVATE, 0).unwrap();
    assert_eq!(oread(&mut v, 10, a + 5), obj_byte(5));
    assert_eq!(pages_asked(&v), 2);
    v.munmap(10, a, 2 * BLOCK_PAGES * P).unwrap();
    // Every block once: only the last `MAX_IDLE` stay.
    let a = mmap_obj(&mut v, A, size, prot::READ, map::PRIVATE, 0).unwrap();
    for b in 0..blocks {
        let at = b * BLOCK_PAGES * P;
        assert_eq!(oread(&mut v, 10, a + at), obj_byte(at));
    }
    v.munmap(10, a, size).unwrap();
    assert_eq!((v.blocks_held(), v.blocks_idle()), (0, MAX_IDLE));
    assert_eq!(v.m.pager.caps.len(), MAX_IDLE);
    assert!(v.stats().slots <= v.m.slots_in_use());
}

/// `munmap` forgets the refault records of its own range and no others (vm finds them by a
/// range of its trees): of two pages whose block was taken back once, the one whose range
/// was unmapped (and mapped again) starts afresh (taken back again, it comes from the
/// block), the other is remembered (taken back again, it becomes a copy).
#[test]
fn munmap_forgets_the_refaults_of_its_range_only() {
    let mut v = vm_with_object(32 * P as usize);
    let a = mmap_obj(&mut v, 0, 32 * P, prot::READ, map::PRIVATE, 0).unwrap();
    v.m.defer = true;
    let evict = |v: &mut TestVm| {
        v.m.pager.caps.clear();
        v.task(10).unwrap().space.mapped.borrow_mut().clear();
    };
    assert_eq!(oread(&mut v, 10, a + 3 * P), obj_byte(3 * P));
    assert_eq!(oread(&mut v, 10, a + 20 * P), obj_byte(20 * P));
    evict(&mut v);
    assert_eq!(oread(&mut v, 10, a + 3 * P), obj_byte(3 * P));
    assert_eq!(oread(&mut v, 10, a + 20 * P), obj_byte(20 * P));
    assert_eq!(v.stats().pages_in_use, 0);
    // Page 3's range goes and is mapped again.
    v.munmap(10, a, 8 * P).unwrap();
    v.m.defer = false;
    let b = mmap_obj(&mut v, a, 8 * P, prot::READ, map::PRIVATE | map::FIXED, 0).unwrap();
    assert_eq!(b, a);
    v.m.defer = true;
    assert_eq!(oread(&mut v, 10, a + 3 * P), obj_byte(3 * P));
    evict(&mut v);
    // Page 20 was remembered: a copy.
    assert_eq!(oread(&mut v, 10, a + 20 * P + 1), obj_byte(20 * P + 1));
    assert_eq!(v.stats().pages_in_use, 1);
    // Page 3 was forgotten: from the block again.
    assert_eq!(oread(&mut v, 10, a + 3 * P + 1), obj_byte(3 * P + 1));
    assert_eq!(v.stats().pages_in_use, 1);
}
