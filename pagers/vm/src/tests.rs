//! The vm logic against a model of the kernel and of memory: mappings are checked the way
//! the kernel checks them (tables present, target unmapped), page contents are real bytes.

extern crate std;

use super::*;
use abi::message::vm_fault::Access::{Execute, Read, Write};
use core::cell::RefCell;
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

#[derive(Default)]
struct Model {
    mem: Vec<Vec<u8>>,
    chunk_limit: usize,
    initrd: Vec<u8>,
    dropped_frames: Vec<u64>,
    destroyed: usize,
    calls: usize,
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
        va: u64,
        pages: u64,
        flags: MapFlags,
    ) -> Result<(), Errno> {
        for k in 0..pages {
            assert!(
                s.mapped
                    .borrow_mut()
                    .insert(va + k * PAGE_SIZE, (FRAME_MARK | frame, flags.0))
                    .is_none()
            );
        }
        Ok(())
    }

    fn frame_pages(&mut self, _frame: u64) -> Result<u64, Errno> {
        Ok(1)
    }

    fn drop_frame(&mut self, frame: u64) {
        self.dropped_frames.push(frame);
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
    let o = v.fault(pid, addr, access, permission);
    if let Outcome::Map { page, va, flags } = o {
        let t = v.task(pid).unwrap();
        assert!(t.space.tables.contains(&(va >> 21)));
        assert!(
            t.space
                .mapped
                .borrow_mut()
                .insert(va, (u64::from(page), flags.0))
                .is_none(),
            "fault reply onto a mapped page"
        );
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
        touch(&mut v, 10, a + 511 * P, Write),
        Outcome::Killed(Kill::Bus)
    );
    assert_eq!(v.take_kill().map(|k| k.kind), Some(Kill::Bus));
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
    assert_eq!(v.task(10).unwrap().regions.len(), 3);
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
fn shared_anonymous_stays_shared_after_fork() {
    let mut v = vm(4);
    let a = mmap_anon(&mut v, 10, A, 2 * P, map::SHARED).unwrap();
    // Even a read takes a real page: the page must be the same one in a later child.
    assert_eq!(read(&mut v, 10, a), 0);
    assert_eq!(v.stats().zero_page_maps, 0);
    v.fork(10, 11, Space::default()).map_err(|e| e.0).unwrap();
    let flags = v.task(11).unwrap().space.mapped.borrow()[&a].1;
    assert_eq!(flags, MapFlags::RW.0);
    write(&mut v, 11, a + 1, 5);
    assert_eq!(read(&mut v, 10, a + 1), 5);
    write(&mut v, 10, a + 2, 6);
    assert_eq!(read(&mut v, 11, a + 2), 6);
    assert_eq!(v.stats().pages_copied, 0);
    // A page first touched after the fork is shared too.
    write(&mut v, 11, a + P, 8);
    assert_eq!(read(&mut v, 10, a + P), 8);
    v.destroy(10).unwrap();
    assert_eq!(read(&mut v, 11, a + 1), 5);
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
