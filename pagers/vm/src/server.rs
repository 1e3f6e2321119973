//! The vm server's system-call side: its CSpace slots, its untyped budget (page tables),
//! the chunks it gets from zero (mapped in its own address space at `VM_CHUNK_WINDOW`), the
//! initrd (mapped read-only at `VM_INITRD_WINDOW`), and the receive loop.
//!
//! ```text
//!   0x0000_00ef_ffe0_0000  COPY_WINDOW: one page of a memory object's block, while vm
//!                          copies it (a private mapping's first write)
//!   0x0000_00f0_0000_0000  VM_INITRD_WINDOW: the initrd frames, read-only
//!   0x0000_0100_0000_0000  VM_CHUNK_WINDOW: chunk i at + i * 2 MiB, read-write
//!   0x0000_0031_0000_0000  SERVER_HEAP_BASE: the heap (mapped by init)
//! ```

use abi::Error;
use abi::message::{FaultLabel, NULL_CPTR, fault_reply, vm_fault};
use abi::object::{MapFlags, ObjectType};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use libmk::{
    CNode, Cap, Endpoint, Frame, Message, Notification, PageTable, Reply, Untyped, VSpace,
};
use proto::object::{Claimed, MmapObject, Msync, ObjectRequest, Pager};
use proto::shm::AnonObject;
use proto::startup::{Startup, VM_CHUNK_WINDOW, VM_INITRD_WINDOW, vm_slots};
use proto::{
    Errno, Kill, PAGE_SIZE, ProtoError, ReplyBody, VmControl, VmRequest, ZeroRequest, pid,
};
use rt::println;
use vm::pages::{PageId, chunk_of};
use vm::{KillRecord, Machine, MmapArgs, Outcome, Vm};

rt::server_entry!(main);

const CHUNK_SIZE: u64 = 2 << 20;
/// Where vm maps one page of a block while copying it (2 MiB below the initrd window).
const COPY_WINDOW: u64 = VM_INITRD_WINDOW - CHUNK_SIZE;

/// log2 of the span a table of `level` (1..=3) covers.
const fn span_bits(level: u8) -> u32 {
    match level {
        1 => 39,
        2 => 30,
        _ => 21,
    }
}

/// An address space: its VSpace capability and the tables vm installed in it (by level and
/// base; the value is the PageTable's slot, or `NULL_CPTR` for one vm did not install).
pub struct Space {
    vspace: Cap<VSpace>,
    tables: BTreeMap<(u8, u64), u64>,
}

impl Space {
    const fn new(vspace: Cap<VSpace>) -> Self {
        Self {
            vspace,
            tables: BTreeMap::new(),
        }
    }
}

/// Everything vm holds that the kernel knows about.
struct Sys {
    cnode: Cap<CNode>,
    own: Space,
    /// Free slots: never used ones from `next_slot`, given back ones on `free_slots`.
    first_slot: u64,
    next_slot: u64,
    slot_end: u64,
    free_slots: Vec<u64>,
    untyped: Vec<Cap<Untyped>>,
    /// Page tables given back by ended address spaces (empty, uninstalled).
    pt_pool: Vec<Cap<PageTable>>,
    /// Chunk frame capabilities, by chunk number.
    chunks: Vec<Cap<Frame>>,
    zero: Cap<Endpoint>,
    /// The file and shm servers' endpoints (badged `pid::VM`, WRITE|GRANT), if they exist.
    file: Option<Cap<Endpoint>>,
    shm: Option<Cap<Endpoint>>,
    /// Each pager's instance, counted from 0 (`SetPager` raises it): vm's handles and
    /// objects carry it in their top bits (`vm::GEN_SHIFT`), so that a restarted pager
    /// never hears of its predecessor's handles.
    generations: [u64; 2],
    /// Whether vm's own tables for `COPY_WINDOW` are installed.
    copy_tables: bool,
    /// Where initrd byte 0 is in vm's address space, and the initrd's size.
    initrd_va: u64,
    initrd_size: u64,
    /// `DC ZVA`'s block size (0: zero pages with stores).
    zva_block: u64,
}

/// Copies the page at `src` to the page at `dst`, both in vm's own address space.
///
/// # Safety
/// Both must be whole, distinct pages mapped in vm (`dst` writable) and not referenced by
/// any live slice.
unsafe fn copy_page(dst: u64, src: u64) {
    // SAFETY: the caller guarantees both pages are mapped and distinct; the loop copies
    // 256 bytes per round, 16 rounds. It uses v0..v7, which are declared clobbered.
    unsafe {
        core::arch::asm!(
            "2:",
            "ld1 {{v0.16b, v1.16b, v2.16b, v3.16b}}, [{s}], #64",
            "ld1 {{v4.16b, v5.16b, v6.16b, v7.16b}}, [{s}], #64",
            "st1 {{v0.16b, v1.16b, v2.16b, v3.16b}}, [{d}], #64",
            "st1 {{v4.16b, v5.16b, v6.16b, v7.16b}}, [{d}], #64",
            "ld1 {{v0.16b, v1.16b, v2.16b, v3.16b}}, [{s}], #64",
            "ld1 {{v4.16b, v5.16b, v6.16b, v7.16b}}, [{s}], #64",
            "st1 {{v0.16b, v1.16b, v2.16b, v3.16b}}, [{d}], #64",
            "st1 {{v4.16b, v5.16b, v6.16b, v7.16b}}, [{d}], #64",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            s = inout(reg) src => _,
            d = inout(reg) dst => _,
            n = inout(reg) PAGE_SIZE / 256 => _,
            out("v0") _, out("v1") _, out("v2") _, out("v3") _,
            out("v4") _, out("v5") _, out("v6") _, out("v7") _,
            options(nostack),
        );
    }
}

/// The address of page `p` of the chunks in vm's own window.
fn page_addr(p: PageId) -> u64 {
    VM_CHUNK_WINDOW + u64::from(p) * PAGE_SIZE
}

/// The `DC ZVA` block size in bytes, or 0 if vm cannot use it for whole pages.
fn zva_block() -> u64 {
    let dczid: u64;
    // SAFETY: reading DCZID_EL0 has no side effects and is allowed at EL0.
    unsafe { core::arch::asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack)) };
    let block = 4u64 << (dczid & 0xf);
    let prohibited = dczid & (1 << 4) != 0;
    if prohibited || block > PAGE_SIZE / 4 {
        0
    } else {
        block
    }
}

/// Page `p` of the chunks, in vm's own window, as `T`s (`u128` words or bytes).
///
/// Callers hold at most two such slices at once, always of different pages.
fn page<T: Copy>(p: PageId) -> &'static mut [T] {
    let addr = page_addr(p);
    // SAFETY: page `p` belongs to a chunk that `Sys::more_chunk` mapped read-write in vm's
    // own VSpace for good (pages exist only once their chunk is mapped), page aligned, so
    // aligned for any `T` used here (u8, u128); vm is single-threaded and never holds two
    // slices of one page at once (copy: dst != src), and the memory is plain integers.
    unsafe { core::slice::from_raw_parts_mut(addr as *mut T, PAGE_SIZE as usize / size_of::<T>()) }
}

/// The initrd's bytes, mapped read-only at `VM_INITRD_WINDOW` for good.
fn initrd_bytes(va: u64, len: u64) -> &'static [u8] {
    // SAFETY: `Sys::new` mapped every initrd frame read-only before anything calls this,
    // and `fill` checks the range against the initrd's size (MapImage validated it); the
    // frames are never written by anyone.
    unsafe { core::slice::from_raw_parts(va as *const u8, len as usize) }
}

impl Sys {
    fn slot(&mut self) -> Result<u64, Errno> {
        if let Some(s) = self.free_slots.pop() {
            return Ok(s);
        }
        if self.next_slot < self.slot_end {
            self.next_slot += 1;
            return Ok(self.next_slot - 1);
        }
        Err(Errno::ENOMEM)
    }

    /// The endpoint of a memory-object pager.
    fn pager_ep(&self, pager: Pager) -> Option<Cap<Endpoint>> {
        match pager {
            Pager::File => self.file,
            Pager::Shm => self.shm,
        }
    }

    fn gen_index(pager: Pager) -> usize {
        match pager {
            Pager::File => 0,
            Pager::Shm => 1,
        }
    }

    /// `req` as the pager's current instance knows it (`vm::for_instance`).
    fn current(&self, pager: Pager, req: ObjectRequest) -> Result<ObjectRequest, Errno> {
        vm::for_instance(req, self.generations[Self::gen_index(pager)])
    }

    /// `SetPager`: the endpoint of a new instance of `pager` (in vm's slot `cap`); the
    /// old instance's handles are dead from now on.
    fn set_pager(&mut self, pager: Pager, cap: u64) -> Result<(), Errno> {
        let i = Self::gen_index(pager);
        if self.generations[i] >= vm::MAX_GENERATION {
            return Err(Errno::EAGAIN);
        }
        self.generations[i] += 1;
        let new = Some(Cap::from_cptr(cap));
        let old = match pager {
            Pager::File => core::mem::replace(&mut self.file, new),
            Pager::Shm => core::mem::replace(&mut self.shm, new),
        };
        // The old endpoint was revoked (its slot is empty); the slot is free again.
        if let Some(old) = old {
            self.delete(old.cptr());
        }
        Ok(())
    }

    fn free_slot(&mut self, s: u64) {
        self.free_slots.push(s);
    }

    /// Deletes the capability in `s` and frees the slot.
    fn delete(&mut self, s: u64) {
        let _ = self.cnode.delete(s);
        self.free_slot(s);
    }

    /// An empty, uninstalled page table: from the pool, else retyped from the budget.
    fn page_table(&mut self) -> Result<Cap<PageTable>, Errno> {
        if let Some(pt) = self.pt_pool.pop() {
            return Ok(pt);
        }
        let slot = self.slot()?;
        while let Some(&ut) = self.untyped.first() {
            match ut.retype(ObjectType::PageTable, 0, self.cnode, slot, 1) {
                Ok(()) => return Ok(Cap::from_cptr(slot)),
                Err(Error::NotEnoughMemory) => {
                    self.untyped.remove(0);
                }
                Err(_) => break,
            }
        }
        self.free_slot(slot);
        Err(Errno::ENOMEM)
    }

    /// Installs the level-1..3 tables covering `va` in `s` where missing.
    fn ensure_tables(&mut self, s: &mut Space, va: u64) -> Result<(), Errno> {
        for level in 1..=3u8 {
            let base = va & !((1u64 << span_bits(level)) - 1);
            if s.tables.contains_key(&(level, base)) {
                continue;
            }
            let pt = self.page_table()?;
            match s.vspace.map_table(pt, base, u64::from(level)) {
                Ok(()) => {
                    s.tables.insert((level, base), pt.cptr());
                }
                Err(Error::AlreadyMapped) => {
                    self.pt_pool.push(pt);
                    s.tables.insert((level, base), NULL_CPTR);
                }
                Err(e) => {
                    self.pt_pool.push(pt);
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// Tables in vm's own VSpace.
    fn ensure_own_tables(&mut self, va: u64) -> Result<(), Errno> {
        let mut own = core::mem::replace(&mut self.own, Space::new(Cap::from_cptr(NULL_CPTR)));
        let r = self.ensure_tables(&mut own, va);
        self.own = own;
        r
    }

    /// Maps the initrd frames read-only at `VM_INITRD_WINDOW`.
    fn map_initrd(&mut self, st: &Startup) -> Result<(), Errno> {
        let frames = st.initrd_frames();
        let Some(low) = frames.iter().map(|f| f.base).min() else {
            return Ok(());
        };
        for f in frames {
            let size = 1u64 << f.size_bits.clamp(12, 21);
            let va = VM_INITRD_WINDOW + (f.base - low);
            let mut at = va;
            while at < va + size {
                self.ensure_own_tables(at)?;
                at = (at | (CHUNK_SIZE - 1)) + 1;
            }
            Cap::<Frame>::from_cptr(f.slot).map(
                self.own.vspace,
                va,
                MapFlags::READ,
                0,
                size / PAGE_SIZE,
            )?;
        }
        self.initrd_va = VM_INITRD_WINDOW + (st.initrd_base - low);
        self.initrd_size = st.initrd_size;
        Ok(())
    }
}

impl Machine for Sys {
    type Space = Space;

    fn slots_in_use(&self) -> u64 {
        let used = self.next_slot - self.first_slot;
        let reserve = self.free_slots.len() + self.pt_pool.len() + self.chunks.len();
        used.saturating_sub(reserve as u64)
    }

    fn heap_low(&self) -> bool {
        rt::heap::is_low()
    }

    fn tables(&mut self, s: &mut Space, va: u64) -> Result<(), Errno> {
        self.ensure_tables(s, va)
    }

    fn map(
        &mut self,
        s: &Space,
        va: u64,
        first: PageId,
        count: u64,
        flags: MapFlags,
    ) -> Result<(), Errno> {
        let (chunk, index) = chunk_of(first);
        let frame = self.chunks.get(chunk as usize).ok_or(Errno::EINVAL)?;
        Ok(frame.map(s.vspace, va, flags, u64::from(index), count)?)
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
        Ok(Cap::<Frame>::from_cptr(frame).map(s.vspace, va, flags, first, pages)?)
    }

    fn frame_pages(&mut self, frame: u64) -> Result<u64, Errno> {
        let (_, size) = Cap::<Frame>::from_cptr(frame).phys_addr()?;
        Ok(size / PAGE_SIZE)
    }

    fn drop_frame(&mut self, frame: u64) {
        self.delete(frame);
    }

    fn unmap(&mut self, s: &Space, va: u64, len: u64) {
        let _ = s.vspace.unmap(va, len);
    }

    fn protect(&mut self, s: &Space, va: u64, len: u64, flags: MapFlags) {
        let _ = s.vspace.protect(va, len, flags);
    }

    fn zero(&mut self, p: PageId) {
        let block = self.zva_block;
        if block == 0 {
            page::<u128>(p).fill(0);
            return;
        }
        let start = page_addr(p);
        // SAFETY: [start, start + PAGE_SIZE) is page `p` in vm's chunk window, mapped
        // read-write Normal memory for good (see `page`) and not referenced by any live
        // slice; `block` divides the page and is a multiple of four (DCZID_EL0), so the loop
        // zeroes exactly the page, four blocks at a time.
        unsafe {
            core::arch::asm!(
                "2:",
                "dc zva, {a}",
                "add {a}, {a}, {b}",
                "dc zva, {a}",
                "add {a}, {a}, {b}",
                "dc zva, {a}",
                "add {a}, {a}, {b}",
                "dc zva, {a}",
                "add {a}, {a}, {b}",
                "cmp {a}, {end}",
                "b.ne 2b",
                a = inout(reg) start => _,
                b = in(reg) block,
                end = in(reg) start + PAGE_SIZE,
                options(nostack),
            );
        }
    }

    fn copy(&mut self, dst: PageId, src: PageId) {
        // SAFETY: both are whole pages in vm's chunk window, mapped read-write for good (see
        // `page`), different pages (copy-on-write copies to a fresh page), and not referenced
        // by any live slice.
        unsafe { copy_page(page_addr(dst), page_addr(src)) };
    }

    fn zero_tail(&mut self, p: PageId, from: u64) {
        if let Some(tail) = page::<u8>(p).get_mut(from as usize..) {
            tail.fill(0);
        }
    }

    fn copy_from_frame(&mut self, dst: PageId, frame: u64, index: u64) -> Result<(), Errno> {
        if !self.copy_tables {
            self.ensure_own_tables(COPY_WINDOW)?;
            self.copy_tables = true;
        }
        let frame: Cap<Frame> = Cap::from_cptr(frame);
        frame.map(self.own.vspace, COPY_WINDOW, MapFlags::READ, index, 1)?;
        // SAFETY: the block's page was just mapped read-only at COPY_WINDOW, a page no slice
        // refers to; `dst` is a page of vm's chunk window (see `page`), another page.
        unsafe { copy_page(page_addr(dst), COPY_WINDOW) };
        let _ = self.own.vspace.unmap(COPY_WINDOW, PAGE_SIZE);
        Ok(())
    }

    fn has_pager(&self, pager: Pager) -> bool {
        self.pager_ep(pager).is_some()
    }

    fn generation(&self, pager: Pager) -> u64 {
        self.generations[Self::gen_index(pager)]
    }

    fn anon_object(&mut self, size: u64) -> Result<AnonObject, Errno> {
        let ep = self.pager_ep(Pager::Shm).ok_or(Errno::ENODEV)?;
        if let Some(buf) = libmk::ipc_buffer() {
            buf.receive_slot = NULL_CPTR;
        }
        let r = ep.call(&rt::ipc::message(
            &proto::ShmRequest::CreateAnon { size }.encode(),
        ))?;
        proto::reply_result(rt::ipc::received(&r).mrs())
    }

    fn claim(&mut self, pager: Pager, handle: u64, pid: u64) -> Result<Claimed, Errno> {
        let ep = self.pager_ep(pager).ok_or(Errno::ENODEV)?;
        if let Some(buf) = libmk::ipc_buffer() {
            buf.receive_slot = NULL_CPTR;
        }
        let r = ep.call(&rt::ipc::message(
            &ObjectRequest::Claim { handle, pid }.encode(),
        ))?;
        proto::reply_result(rt::ipc::received(&r).mrs())
    }

    fn pager_call(
        &mut self,
        pager: Pager,
        req: ObjectRequest,
    ) -> Result<(u64, Option<u64>), Errno> {
        let ep = self.pager_ep(pager).ok_or(Errno::ENODEV)?;
        let req = self.current(pager, req)?;
        let slot = self.slot()?;
        let Some(buf) = libmk::ipc_buffer() else {
            self.free_slot(slot);
            return Err(Errno::EIO);
        };
        buf.receive_slot = slot;
        let r = ep.call(&rt::ipc::message(&req.encode()));
        buf.receive_slot = NULL_CPTR;
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                self.free_slot(slot);
                return Err(e.into());
            }
        };
        let got = r.info().caps == 1;
        let words = rt::ipc::received(&r);
        let value = match req {
            ObjectRequest::Page { .. } => proto::reply_result::<u64>(words.mrs()),
            _ => proto::reply_result::<()>(words.mrs()).map(|()| 0),
        };
        match value {
            Ok(v) if got => Ok((v, Some(slot))),
            Ok(v) => {
                self.free_slot(slot);
                Ok((v, None))
            }
            Err(e) => {
                if got {
                    self.delete(slot);
                } else {
                    self.free_slot(slot);
                }
                Err(e)
            }
        }
    }

    fn fill(&mut self, dst: PageId, at: u64, initrd_offset: u64, len: u64) {
        if at + len > PAGE_SIZE || initrd_offset.saturating_add(len) > self.initrd_size {
            return;
        }
        let src = initrd_bytes(self.initrd_va + initrd_offset, len);
        page::<u8>(dst)[at as usize..(at + len) as usize].copy_from_slice(src);
    }

    fn more_chunk(&mut self) -> bool {
        let Ok(slot) = self.slot() else {
            return false;
        };
        let Some(buf) = libmk::ipc_buffer() else {
            return false;
        };
        buf.receive_slot = slot;
        let r = self
            .zero
            .call(&rt::ipc::message(&ZeroRequest::GetChunk.encode()));
        buf.receive_slot = NULL_CPTR;
        let got = r.map_err(Errno::from).and_then(|r| {
            proto::reply_result::<()>(rt::ipc::received(&r).mrs())?;
            // The chunk travels with the reply.
            if r.info().caps == 1 {
                Ok(())
            } else {
                Err(Errno::EIO)
            }
        });
        if let Err(e) = got {
            if e != Errno::ENOMEM {
                println!("vm: GetChunk: {e}");
            }
            self.free_slot(slot);
            return false;
        }
        let frame: Cap<Frame> = Cap::from_cptr(slot);
        let va = VM_CHUNK_WINDOW + self.chunks.len() as u64 * CHUNK_SIZE;
        let mapped = self.ensure_own_tables(va).and_then(|()| {
            Ok(frame.map(self.own.vspace, va, MapFlags::RW, 0, CHUNK_SIZE / PAGE_SIZE)?)
        });
        if let Err(e) = mapped {
            println!("vm: cannot map a chunk: {e}");
            self.delete(slot);
            return false;
        }
        self.chunks.push(frame);
        true
    }

    fn destroy(&mut self, s: Space) {
        for (_, pt) in s.tables {
            if pt != NULL_CPTR {
                let pt: Cap<PageTable> = Cap::from_cptr(pt);
                let _ = pt.unmap();
                self.pt_pool.push(pt);
            }
        }
        self.delete(s.vspace.cptr());
    }
}

fn main(st: &'static Startup) -> ! {
    // SAFETY: init mapped [heap_base, heap_base + heap_size) read-write for vm alone, for
    // good (proto::startup); nothing else uses it.
    unsafe { rt::heap::init(st.heap_base, st.heap_size) };
    let slot_end = 1u64
        .checked_shl(u32::try_from(st.cnode_radix).unwrap_or(0))
        .unwrap_or(0);
    let mut sys = Sys {
        cnode: Cap::from_cptr(st.slots[vm_slots::CNODE]),
        own: Space::new(Cap::from_cptr(st.slots[vm_slots::VSPACE])),
        first_slot: st.first_free_slot,
        next_slot: st.first_free_slot,
        slot_end,
        free_slots: Vec::new(),
        untyped: (st.untyped_first..st.untyped_first + st.untyped_count)
            .map(Cap::from_cptr)
            .collect(),
        pt_pool: Vec::new(),
        chunks: Vec::new(),
        zero: Cap::from_cptr(st.slots[vm_slots::ZERO]),
        file: (st.slots[vm_slots::FILE] != 0).then(|| Cap::from_cptr(st.slots[vm_slots::FILE])),
        shm: (st.slots[vm_slots::SHM] != 0).then(|| Cap::from_cptr(st.slots[vm_slots::SHM])),
        generations: [0; 2],
        copy_tables: false,
        initrd_va: 0,
        initrd_size: 0,
        zva_block: zva_block(),
    };
    if let Err(e) = sys.map_initrd(st) {
        println!("vm: cannot map the initrd: {e}");
    }
    let initrd_size = sys.initrd_size;
    let Some(vm) = Vm::new(sys, initrd_size) else {
        println!("vm: no memory from zero");
        park()
    };
    Server {
        vm,
        ep: Cap::from_cptr(st.slots[vm_slots::ENDPOINT]),
        notify: Cap::from_cptr(st.slots[vm_slots::INIT_NOTIFY]),
        receive_slot: NULL_CPTR,
    }
    .run()
}

fn park() -> ! {
    loop {
        let _ = Cap::<Notification>::from_cptr(NULL_CPTR).wait();
        libmk::yield_now();
    }
}

struct Server {
    vm: Vm<Sys>,
    ep: Cap<Endpoint>,
    notify: Cap<Notification>,
    /// The slot a capability arriving with the next message goes to.
    receive_slot: u64,
}

/// A reply: MR0 = 0 and the results, or the errno.
fn answer<T: ReplyBody>(r: Result<T, Errno>) -> Message {
    rt::ipc::message(&proto::encode_reply(&r))
}

/// A request vm serves.
#[derive(Clone, Copy)]
enum Request {
    Task(VmRequest),
    Control(VmControl),
    MmapObject(MmapObject),
    Msync(Msync),
}

impl Server {
    fn run(mut self) -> ! {
        let mut reply: Option<(Message, Option<(u64, u64)>)> = None;
        loop {
            if self.receive_slot == NULL_CPTR {
                self.receive_slot = self.vm.m.slot().unwrap_or(NULL_CPTR);
            }
            if let Some(buf) = libmk::ipc_buffer() {
                buf.receive_slot = self.receive_slot;
            }
            let r = match reply.take() {
                Some((msg, fault)) => {
                    let r = self.ep.reply_recv(&msg);
                    if let (Err(e), Some((pid, addr))) = (&r, fault) {
                        // The map item failed: the task cannot go on.
                        println!("vm: fault reply to {pid} failed: {e:?}");
                        self.kill(KillRecord {
                            pid,
                            kind: Kill::Bus,
                            addr,
                        });
                    }
                    r
                }
                None => self.ep.recv(),
            };
            let Ok(r) = r else {
                continue;
            };
            let cap =
                (r.info().caps == 1).then(|| core::mem::replace(&mut self.receive_slot, NULL_CPTR));
            reply = self.handle(&r, cap);
        }
    }

    /// Prints and queues a kill, and tells init.
    fn kill(&mut self, k: KillRecord) {
        self.vm.report(k);
        self.announce(k);
    }

    fn announce(&mut self, k: KillRecord) {
        let what = match k.kind {
            Kill::Segv => "SEGV",
            Kill::Bus => "BUS",
        };
        println!(
            "task {} {}: {} at {:#x}",
            k.pid,
            self.vm.name(k.pid),
            what,
            k.addr
        );
        let _ = self.notify.signal();
    }

    /// Answers one message: the reply to send (and, for a fault reply with a map item, the
    /// task and address), or `None` to reply to nobody.
    fn handle(&mut self, r: &Reply, cap: Option<u64>) -> Option<(Message, Option<(u64, u64)>)> {
        let info = r.info();
        let badge = r.badge;
        let mrs = &r.mrs;
        if let Some(faulter) = pid::of_fault_badge(badge) {
            // Only the kernel sends on a fault badge, and only fault messages.
            if let Some(c) = cap {
                self.vm.m.delete(c);
            }
            return match FaultLabel::try_from(info.label) {
                Ok(label) if faulter >= pid::FIRST_USER => self.fault(faulter, label, mrs),
                _ => None,
            };
        }
        // vm's requests fit the register message registers: decode them where they are
        // (building a `Wire` first costs more than the rest of a null request).
        let long;
        let (label, words) = if info.length <= mrs.len() {
            (info.label, &mrs[..info.length])
        } else {
            long = rt::ipc::received(r);
            (long.label(), long.mrs())
        };
        let request = match VmRequest::decode(label, words) {
            Err(ProtoError::UnknownLabel(_)) => match MmapObject::decode(label, words) {
                Err(ProtoError::UnknownLabel(_)) => match Msync::decode(label, words) {
                    Err(ProtoError::UnknownLabel(_)) => {
                        VmControl::decode(label, words).map(Request::Control)
                    }
                    other => other.map(Request::Msync),
                },
                other => other.map(Request::MmapObject),
            },
            other => other.map(Request::Task),
        };
        // Only init's requests may bring a capability.
        if let Ok(Request::Control(req)) = request
            && badge == pid::INIT
        {
            return Some((self.control(req, cap), None));
        }
        if let Some(c) = cap {
            self.vm.m.delete(c);
        }
        let reply = match request {
            // A fault label on a request badge is a task imitating the kernel.
            _ if FaultLabel::try_from(label).is_ok() => answer::<()>(Err(Errno::EPERM)),
            Ok(Request::Task(req)) if badge >= pid::FIRST_USER => self.task_request(badge, req),
            Ok(Request::MmapObject(req)) if badge >= pid::FIRST_USER => {
                answer(self.vm.mmap_object(badge, req))
            }
            Ok(Request::Msync(Msync { addr, len, flags })) if badge >= pid::FIRST_USER => {
                answer(self.vm.msync(badge, addr, len, flags))
            }
            Ok(_) => answer::<()>(Err(Errno::EPERM)),
            Err(e) => answer::<()>(Err(e.into())),
        };
        Some((reply, None))
    }

    fn fault(
        &mut self,
        pid: u64,
        label: FaultLabel,
        mrs: &[u64; 6],
    ) -> Option<(Message, Option<(u64, u64)>)> {
        // The address a kill reports: the one the task touched.
        let fault_addr = mrs[vm_fault::ADDRESS];
        let outcome = match label {
            FaultLabel::VmFault => {
                let addr = mrs[vm_fault::ADDRESS];
                let access = vm_fault::Access::try_from(mrs[vm_fault::ACCESS]);
                let kind = vm_fault::Kind::try_from(mrs[vm_fault::KIND]);
                match (access, kind) {
                    (Ok(a), Ok(vm_fault::Kind::Translation)) => self.vm.fault(pid, addr, a, false),
                    (Ok(a), Ok(vm_fault::Kind::Permission)) => self.vm.fault(pid, addr, a, true),
                    _ => self.vm.other_fault(pid, addr),
                }
            }
            other => {
                // Instruction address for these; the fault address where there is one.
                let addr = match other {
                    FaultLabel::AlignmentFault | FaultLabel::UserException => mrs[2],
                    FaultLabel::UnknownSyscall => mrs[1],
                    _ => mrs[0],
                };
                println!("vm: task {pid}: fault {other:?}");
                self.vm.other_fault(pid, addr)
            }
        };
        match outcome {
            Outcome::Map { page, va, flags } => {
                let (chunk, index) = chunk_of(page);
                let frame = self.vm.m.chunks[chunk as usize].cptr();
                let m = Message::new(
                    fault_reply::REPLY_MAP,
                    &[frame, u64::from(index), 1, va, flags.0],
                );
                Some((m, Some((pid, fault_addr))))
            }
            Outcome::Resume => Some((Message::new(fault_reply::RESUME, &[]), None)),
            Outcome::Killed(kind) => {
                let addr = self.vm.last_kill().map_or(0, |k| k.addr);
                self.announce(KillRecord { pid, kind, addr });
                None
            }
            Outcome::Ignore => None,
        }
    }

    /// One of init's requests; `cap` is the capability that came with it.
    fn control(&mut self, req: VmControl, cap: Option<u64>) -> Message {
        let vm = &mut self.vm;
        let cap = match (req.carries_cap(), cap) {
            (true, Some(c)) => c,
            (true, None) => return answer::<()>(Err(Errno::EINVAL)),
            (false, c) => {
                if let Some(c) = c {
                    vm.m.delete(c);
                }
                NULL_CPTR
            }
        };
        let r = match req {
            VmControl::NewSpace { pid } => vm
                .new_space(pid, Space::new(Cap::from_cptr(cap)))
                .map_err(|(e, space)| {
                    vm.m.destroy(space);
                    e
                }),
            VmControl::ForkSpace { parent, child } => vm
                .fork(parent, child, Space::new(Cap::from_cptr(cap)))
                .map_err(|(e, space)| {
                    vm.m.destroy(space);
                    e
                }),
            VmControl::MapFrame { pid, vaddr, prot } => vm
                .map_frame(pid, vaddr, prot, cap)
                .inspect_err(|_| vm.m.delete(cap)),
            VmControl::SetName { pid, name } => vm.set_name(pid, name),
            VmControl::MapImage {
                pid,
                vaddr,
                mem_size,
                initrd_offset,
                file_size,
                prot,
            } => vm.map_image(pid, vaddr, mem_size, initrd_offset, file_size, prot),
            VmControl::MapAnon {
                pid,
                vaddr,
                len,
                prot,
            } => vm.map_anon(pid, vaddr, len, prot),
            VmControl::MapObject {
                pid,
                vaddr,
                file_size,
                prot,
                pager,
                handle,
                offset,
            } => vm.map_object(pid, vaddr, file_size, prot, pager, handle, offset),
            VmControl::Reset { pid } => vm.reset(pid),
            VmControl::Destroy { pid } => vm.destroy(pid),
            VmControl::TakeKills => return answer(Ok(vm.take_kill())),
            VmControl::SetPager { pager } => {
                vm.m.set_pager(pager, cap).inspect_err(|_| vm.m.delete(cap))
            }
        };
        answer(r)
    }

    /// A task's request; `pid` is the caller.
    fn task_request(&mut self, pid: u64, req: VmRequest) -> Message {
        let vm = &mut self.vm;
        match req {
            VmRequest::Mmap {
                addr,
                len,
                prot,
                flags,
                fd,
                offset,
            } => answer(vm.mmap(
                pid,
                MmapArgs {
                    addr,
                    len,
                    prot,
                    flags,
                    fd,
                    offset,
                },
            )),
            VmRequest::Munmap { addr, len } => answer(vm.munmap(pid, addr, len)),
            VmRequest::Mprotect { addr, len, prot } => answer(vm.mprotect(pid, addr, len, prot)),
            VmRequest::Vmmap => {
                let mut s = String::new();
                let r = vm.vmmap(pid, &mut s);
                rt::print!("{s}");
                answer(r)
            }
            VmRequest::VmStats => answer(Ok(vm.stats())),
        }
    }
}
