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

use abi::message::{FaultLabel, NOTIFICATION_LABEL, NULL_CPTR, fault_reply, vm_fault};
use abi::object::{MapFlags, ObjectType};
use alloc::string::String;
use alloc::vec::Vec;
use libmk::{Cap, Endpoint, Frame, Message, Notification, Reply, Tcb, Timer};
use proto::object::{Claimed, MmapObject, Msync, ObjectRequest, Pager};
use proto::shm::AnonObject;
use proto::startup::{Startup, VM_CHUNK_WINDOW, VM_INITRD_WINDOW, vm_slots};
use proto::{Errno, Kill, PAGE_SIZE, ReplyBody, VmControl, VmRequest, Wire, ZeroRequest, pid};
use rt::println;
use serve::{Budget, Serve, StopHook, Tables};
use vm::object::BlockKey;
use vm::pages::{PageId, chunk_of};
use vm::pending::{ANSWER_WORDS, Answer, Pending, Sent};
use vm::{KillRecord, Machine, MmapArgs, Outcome, Vm, WAIT};

rt::server_entry!(main);

const CHUNK_SIZE: u64 = 2 << 20;
/// Where vm maps one page of a block while copying it (2 MiB below the initrd window).
const COPY_WINDOW: u64 = VM_INITRD_WINDOW - CHUNK_SIZE;
/// The proxies' IPC buffers, a page each (2 MiB below the copy window).
const PROXY_WINDOW: u64 = COPY_WINDOW - CHUNK_SIZE;
/// Each proxy's stack (on vm's heap).
const PROXY_STACK: usize = 16 << 10;
/// The priority of vm's proxies: vm's own (init/src/proc/server.rs). A proxy hands vm the
/// pager's answer as soon as the pager gives it (a proxy below the tasks would hold an
/// answer while tasks run, and the pager could take the block back meanwhile), and
/// requests nobody waits for (the write-back and release of `munmap` and exit) are done
/// before the task that made them runs again, as a synchronous call would have done them.
const PROXY_PRIORITY: u64 = 250;
/// The badge of a proxy's capability to vm's endpoint: this bit and the pager's index. No
/// task's badge has it (a pid, or a pid with `FAULT_BADGE`).
const PROXY_BADGE: u64 = 1 << 62;
/// How long a pager may take to answer one request before vm gives up on it, by default
/// (bootarg `vm.deadline=<ms>`).
const DEFAULT_DEADLINE_MS: u64 = 10_000;

/// An address space: its VSpace capability and the tables vm installed in it.
pub type Space = Tables;

/// Everything vm holds that the kernel knows about.
struct Sys {
    /// vm's untyped budget, CNode slots and spare page tables.
    budget: Budget,
    own: Space,
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
    /// vm's requests to pagers on their way, and who waits for each (`vm::pending`).
    pending: Pending<Waiter>,
    /// Per pager (file, shm): the slot of its proxy's saved reply while the proxy waits
    /// for work.
    idle: [Option<u64>; 2],
    /// How long a pager may take with one request (counter ticks, and timer ticks).
    deadline: u64,
    deadline_ticks: u64,
    /// vm's timer and the notification bound to its thread (`None` without them); whether
    /// the timer is armed.
    timer: Option<(Cap<Timer>, Cap<Notification>)>,
    timer_armed: bool,
}

/// The bits the timer signals vm's notification with (no request badge has bit 62 alone).
const TIMER_BITS: u64 = 1 << 62;

/// A caller waiting for a pager's answer: its saved reply and what it asked.
struct Waiter {
    reply: u64,
    work: Work,
}

/// What a caller asked vm, kept to be done again when an answer it waits for comes in.
#[derive(Clone, Copy)]
enum Work {
    Fault {
        pid: u64,
        label: FaultLabel,
        mrs: [u64; 6],
    },
    Request {
        badge: u64,
        req: Request,
    },
}

/// What vm does with a caller after serving its work.
enum Served {
    /// Reply (for a fault reply with a map item: the task and address, killed with `BUS`
    /// if the map item fails).
    Reply(Message, Option<(u64, u64)>),
    /// Nobody to reply to.
    Nothing,
    /// The work waits for a pager's answer (`vm::WAIT`).
    Wait,
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

/// The generic timer's virtual count and its frequency (Hz).
fn counter() -> (u64, u64) {
    let (count, freq): (u64, u64);
    // SAFETY: reading CNTVCT_EL0 and CNTFRQ_EL0 has no side effects; the kernel lets EL0
    // read them (CNTKCTL_EL1.EL0VCTEN), as the benchmarks do.
    unsafe {
        core::arch::asm!("mrs {}, cntvct_el0", out(reg) count, options(nomem, nostack));
        core::arch::asm!("mrs {}, cntfrq_el0", out(reg) freq, options(nomem, nostack));
    }
    (count, freq)
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
    /// The endpoint of a memory-object pager.
    fn pager_ep(&self, pager: Pager) -> Option<Cap<Endpoint>> {
        match pager {
            Pager::File => self.file,
            Pager::Shm => self.shm,
        }
    }

    /// `req` as the pager's current instance knows it (`vm::for_instance`).
    fn current(&self, pager: Pager, req: ObjectRequest) -> Result<ObjectRequest, Errno> {
        vm::for_instance(req, self.generations[vm::pending::index(pager)])
    }

    /// `SetPager`: the endpoint of a new instance of `pager` (in vm's slot `cap`); the
    /// old instance's handles are dead from now on.
    fn set_pager(&mut self, pager: Pager, cap: u64) -> Result<(), Errno> {
        let i = vm::pending::index(pager);
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
            self.budget.delete(old.cptr());
        }
        Ok(())
    }

    /// The answer to `req` for `pager` if it is in (and the capability that came with it,
    /// for the first who asks), else `WAIT`: the request is queued (or joins the same one on
    /// its way, or one for the same `block`), and the caller waits for it.
    fn ask(
        &mut self,
        pager: Pager,
        req: &Wire,
        block: Option<(BlockKey, bool)>,
    ) -> Result<(Answer, Option<u64>), Errno> {
        if self.pager_ep(pager).is_none() {
            return Err(Errno::ENODEV);
        }
        let r = vm::pending::Request::new(pager, req.label(), req.mrs()).ok_or(Errno::EINVAL)?;
        if let Some(a) = self.pending.answered(&r, block.is_some()) {
            return Ok(a);
        }
        match block {
            Some((k, write)) => self.pending.ask_block(k, write, r)?,
            None => self.pending.ask(r)?,
        }
        self.dispatch(pager);
        Err(WAIT)
    }

    /// A memory-object request: MR1 of the answer and the capability that came with it.
    fn object_call(
        &mut self,
        pager: Pager,
        req: ObjectRequest,
        block: Option<(BlockKey, bool)>,
    ) -> Result<(u64, Option<u64>), Errno> {
        let req = self.current(pager, req)?;
        let (a, cap) = self.ask(pager, &req.encode(), block)?;
        let value = a.mrs().and_then(|words| match req {
            ObjectRequest::Page { .. } => proto::reply_result::<u64>(words),
            _ => proto::reply_result::<()>(words).map(|()| 0),
        });
        match value {
            Ok(v) => Ok((v, cap)),
            Err(e) => {
                if let Some(c) = cap {
                    self.budget.delete(c);
                }
                Err(e)
            }
        }
    }

    /// Gives `pager`'s proxy its next request if it is idle and one is queued.
    fn dispatch(&mut self, pager: Pager) {
        let i = vm::pending::index(pager);
        let Some(idle) = self.idle[i] else {
            return;
        };
        let Some(sent) = self.next_request(pager) else {
            return;
        };
        let msg = self.proxy_message(&sent);
        self.idle[i] = None;
        if let Err(e) = self.budget.answer_saved(idle, &msg) {
            // The proxy is gone (it never faults; this is a bug): its request stays sent,
            // and the deadline ends it.
            println!("vm: proxy for {pager:?}: {e:?}");
        }
    }

    /// `pager`'s next queued request, now sent, with a slot for the capability its answer
    /// may bring.
    fn next_request(&mut self, pager: Pager) -> Option<Sent> {
        self.pending.sent(pager).is_none().then_some(())?;
        let slot = self.budget.slot().ok();
        let now = counter().0;
        let sent = self.pending.next(pager, now, |_| slot);
        if sent.is_none()
            && let Some(s) = slot
        {
            self.budget.free(s);
        }
        if sent.is_some() {
            self.arm_timer();
        }
        sent
    }

    /// Arms vm's timer, unless it is armed, to wake vm half a deadline from now (so that a
    /// pager that stays silent is found between one and one and a half deadlines after the
    /// request was sent, and the timer is armed at most twice a deadline).
    fn arm_timer(&mut self) {
        if self.timer_armed {
            return;
        }
        if let Some((timer, notify)) = self.timer {
            let at = libmk::debug_ticks().0 + self.deadline_ticks.div_ceil(2).max(1);
            self.timer_armed = timer.arm(notify, TIMER_BITS, at).is_ok();
        }
    }

    /// What a proxy gets: the request's label, then the pager's endpoint, the slot for a
    /// capability, and the request's words.
    fn proxy_message(&self, s: &Sent) -> Message {
        // Without an endpoint (the pager is gone) the proxy's `Call` fails at once, and
        // the request is answered with the error.
        let ep = self
            .pager_ep(s.request.pager())
            .map_or(NULL_CPTR, |e| e.cptr());
        let mut words = [0u64; 2 + vm::pending::REQUEST_WORDS];
        words[0] = ep;
        words[1] = s.slot.unwrap_or(NULL_CPTR);
        let mrs = s.request.mrs();
        words[2..2 + mrs.len()].copy_from_slice(mrs);
        Message::new(s.request.label, &words[..2 + mrs.len()])
    }

    /// Deletes the capability in `s` and frees the slot.
    /// Tables in vm's own VSpace.
    fn ensure_own_tables(&mut self, va: u64) -> Result<(), Errno> {
        self.own.ensure(va, &mut self.budget)
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
        self.budget
            .slots_in_use()
            .saturating_sub(self.chunks.len() as u64)
    }

    fn heap_low(&self) -> bool {
        rt::heap::is_low()
    }

    fn heap_used(&self) -> u64 {
        rt::heap::stats().1 as u64
    }

    fn now_us(&self) -> u64 {
        let (count, freq) = counter();
        (u128::from(count) * 1_000_000 / u128::from(freq.max(1))) as u64
    }

    fn tables(&mut self, s: &mut Space, va: u64) -> Result<(), Errno> {
        s.ensure(va, &mut self.budget)
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
        self.budget.delete(frame);
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
        self.generations[vm::pending::index(pager)]
    }

    fn anon_object(&mut self, size: u64) -> Result<AnonObject, Errno> {
        let req = proto::ShmRequest::CreateAnon { size }.encode();
        let (a, _) = self.ask(Pager::Shm, &req, None)?;
        proto::reply_result(a.mrs()?)
    }

    fn claim(&mut self, pager: Pager, handle: u64, pid: u64) -> Result<Claimed, Errno> {
        let req = ObjectRequest::Claim { handle, pid }.encode();
        let (a, _) = self.ask(pager, &req, None)?;
        proto::reply_result(a.mrs()?)
    }

    fn pager_call(
        &mut self,
        pager: Pager,
        req: ObjectRequest,
    ) -> Result<(u64, Option<u64>), Errno> {
        self.object_call(pager, req, None)
    }

    fn pager_page(
        &mut self,
        k: BlockKey,
        pager: Pager,
        req: ObjectRequest,
    ) -> Result<(u64, Option<u64>), Errno> {
        let write = matches!(req, ObjectRequest::Page { write: true, .. });
        self.object_call(pager, req, Some((k, write)))
    }

    fn pager_post(&mut self, pager: Pager, req: ObjectRequest) {
        let Ok(req) = self.current(pager, req) else {
            return;
        };
        let w = req.encode();
        if let Some(r) = vm::pending::Request::new(pager, w.label(), w.mrs())
            && self.pending.post(r).is_ok()
        {
            self.dispatch(pager);
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
        let Ok(slot) = self.budget.slot() else {
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
            self.budget.free(slot);
            return false;
        }
        let frame: Cap<Frame> = Cap::from_cptr(slot);
        let va = VM_CHUNK_WINDOW + self.chunks.len() as u64 * CHUNK_SIZE;
        let mapped = self.ensure_own_tables(va).and_then(|()| {
            Ok(frame.map(self.own.vspace, va, MapFlags::RW, 0, CHUNK_SIZE / PAGE_SIZE)?)
        });
        if let Err(e) = mapped {
            println!("vm: cannot map a chunk: {e}");
            self.budget.delete(slot);
            return false;
        }
        self.chunks.push(frame);
        true
    }

    fn destroy(&mut self, s: Space) {
        let vspace = s.vspace.cptr();
        s.give_back(&mut self.budget);
        self.budget.delete(vspace);
    }
}

fn main(st: &'static Startup) -> ! {
    // SAFETY: init mapped [heap_base, heap_base + heap_size) read-write for vm alone, for
    // good (proto::startup); nothing else uses it.
    unsafe { rt::heap::init(st.heap_base, st.heap_size) };
    let mut sys = Sys {
        budget: Budget::of(st, Cap::from_cptr(st.slots[vm_slots::CNODE])),
        own: Space::new(Cap::from_cptr(st.slots[vm_slots::VSPACE])),
        chunks: Vec::new(),
        zero: Cap::from_cptr(st.slots[vm_slots::ZERO]),
        file: (st.slots[vm_slots::FILE] != 0).then(|| Cap::from_cptr(st.slots[vm_slots::FILE])),
        shm: (st.slots[vm_slots::SHM] != 0).then(|| Cap::from_cptr(st.slots[vm_slots::SHM])),
        generations: [0; 2],
        copy_tables: false,
        initrd_va: 0,
        initrd_size: 0,
        zva_block: zva_block(),
        pending: Pending::default(),
        idle: [None; 2],
        deadline: 0,
        deadline_ticks: 0,
        timer: (st.slots[vm_slots::TIMER] != 0 && st.slots[vm_slots::NOTIFY] != 0).then(|| {
            (
                Cap::from_cptr(st.slots[vm_slots::TIMER]),
                Cap::from_cptr(st.slots[vm_slots::NOTIFY]),
            )
        }),
        timer_armed: false,
    };
    let ms = if st.deadline_ms == 0 {
        DEFAULT_DEADLINE_MS
    } else {
        st.deadline_ms
    };
    sys.deadline = ms.saturating_mul(counter().1) / 1000;
    sys.deadline_ticks = ms.saturating_mul(libmk::debug_ticks().1).div_ceil(1000);
    if let Err(e) = sys.map_initrd(st) {
        println!("vm: cannot map the initrd: {e}");
    }
    let initrd_size = sys.initrd_size;
    let Some(vm) = Vm::new(sys, initrd_size) else {
        println!("vm: no memory from zero");
        park()
    };
    let ep: Cap<Endpoint> = Cap::from_cptr(st.slots[vm_slots::ENDPOINT]);
    let mut vm = vm;
    for pager in [Pager::File, Pager::Shm] {
        if vm.m.has_pager(pager)
            && let Err(e) = vm.m.start_proxy(pager, ep)
        {
            println!("vm: cannot start the proxy for {pager:?}: {e}");
        }
    }
    let mut server = Server {
        vm,
        notify: Cap::from_cptr(st.slots[vm_slots::INIT_NOTIFY]),
        receive_slot: NULL_CPTR,
    };
    serve::run(ep, "vm", StopHook::of(st), &mut server)
}

impl Sys {
    /// Starts `pager`'s proxy: a thread in vm's address space and CSpace (a TCB, an IPC
    /// buffer page and a stack of vm's) that takes vm's requests for the pager one at a
    /// time and makes the blocking `Call`, so that vm itself never waits for a pager.
    fn start_proxy(&mut self, pager: Pager, ep: Cap<Endpoint>) -> Result<(), Errno> {
        let i = vm::pending::index(pager) as u64;
        let tcb_slot = self.budget.retype(ObjectType::Tcb, 0)?;
        let buf_slot = self.budget.retype(ObjectType::Frame, 12)?;
        let badged = self.budget.slot()?;
        let buf_va = PROXY_WINDOW + i * PAGE_SIZE;
        self.ensure_own_tables(buf_va)?;
        let buf: Cap<Frame> = Cap::from_cptr(buf_slot);
        buf.map(self.own.vspace, buf_va, MapFlags::RW, 0, 1)?;
        self.budget.cnode.mint(
            badged,
            self.budget.cnode,
            ep.cptr(),
            abi::object::CapRights::ALL,
            PROXY_BADGE | i,
        )?;
        let stack = alloc::vec![0u8; PROXY_STACK].leak();
        let top = (stack.as_ptr() as u64 + PROXY_STACK as u64) & !15;
        let tcb: Cap<Tcb> = Cap::from_cptr(tcb_slot);
        tcb.configure(
            self.budget.cnode,
            self.own.vspace,
            Some((buf, buf_va)),
            None,
            PROXY_PRIORITY,
        )?;
        tcb.start(proxy_main as *const () as u64, top, (badged << 16) | i)?;
        Ok(())
    }
}

/// A proxy's answer to vm: MR0 = the kernel's error code for the `Call` (0: it went
/// through), MR1 = capabilities that came with the reply | the reply's length << 8, then
/// the reply's first words.
const PROXY_HEADER: usize = 2;

/// A proxy thread (`Sys::start_proxy`); `arg` = its capability to vm's endpoint << 16 | the
/// pager's index. It calls vm for work ("ready", then each answer), calls the pager with
/// each request vm gives it, and hands back the answer; it touches nothing of vm's but its
/// IPC buffer and stack.
extern "C" fn proxy_main(arg: u64) -> ! {
    let i = arg & 0xffff;
    libmk::set_ipc_buffer(PROXY_WINDOW + i * PAGE_SIZE);
    let vm: Cap<Endpoint> = Cap::from_cptr(arg >> 16);
    let mut answer = Message::new(0, &[0, 0]);
    loop {
        let Ok(work) = vm.call(&answer) else {
            answer = Message::new(0, &[0, 0]);
            continue;
        };
        let n = work.info().length.min(work.mrs.len());
        let (ep, slot) = (work.mrs[0], work.mrs[1]);
        let req = Message::new(
            work.info().label,
            work.mrs.get(PROXY_HEADER..n).unwrap_or(&[]),
        );
        if let Some(buf) = libmk::ipc_buffer() {
            buf.receive_slot = slot;
        }
        let r = Cap::<Endpoint>::from_cptr(ep).call(&req);
        if let Some(buf) = libmk::ipc_buffer() {
            buf.receive_slot = NULL_CPTR;
        }
        answer = match r {
            Ok(r) => {
                let info = r.info();
                let len = info.length.min(ANSWER_WORDS);
                let mut words = [0u64; PROXY_HEADER + ANSWER_WORDS];
                words[1] = info.caps as u64 | (len as u64) << 8;
                words[PROXY_HEADER..PROXY_HEADER + len].copy_from_slice(&r.mrs[..len]);
                Message::new(0, &words[..PROXY_HEADER + len])
            }
            Err(e) => Message::new(0, &[e as u64, 0]),
        };
    }
}

fn park() -> ! {
    loop {
        let _ = Cap::<Notification>::from_cptr(NULL_CPTR).wait();
        libmk::yield_now();
    }
}

struct Server {
    vm: Vm<Sys>,
    notify: Cap<Notification>,
    /// The slot a capability arriving with the next message goes to.
    receive_slot: u64,
}

/// A reply, or `Wait` for `vm::WAIT`.
fn served<T: ReplyBody>(r: Result<T, Errno>) -> Served {
    match r {
        Err(WAIT) => Served::Wait,
        r => Served::Reply(serve::answer(&r), None),
    }
}

proto::requests! {
    /// A request vm serves: a task's (its own interface, `MmapObject`, `Msync`) or init's.
    enum Request {
        Task(VmRequest),
        MmapObject(MmapObject),
        Msync(Msync),
        Control(VmControl),
    }
}

impl Serve for Server {
    /// A fault reply with a map item: the task and address, killed with `BUS` if the map
    /// item fails.
    type Note = Option<(u64, u64)>;

    fn receive_slot(&mut self) -> u64 {
        if self.receive_slot == NULL_CPTR {
            self.receive_slot = self.vm.m.budget.slot().unwrap_or(NULL_CPTR);
        }
        self.receive_slot
    }

    fn handle(&mut self, r: &Reply) -> Option<(Message, Self::Note)> {
        let cap =
            (r.info().caps == 1).then(|| core::mem::replace(&mut self.receive_slot, NULL_CPTR));
        let reply = self.respond(r, cap);
        self.check_deadlines();
        reply
    }

    fn reply_failed(&mut self, e: abi::Error, note: Self::Note) {
        if let Some((pid, addr)) = note {
            // The map item failed: the task cannot go on.
            println!("vm: fault reply to {pid} failed: {e:?}");
            self.kill(KillRecord {
                pid,
                kind: Kill::Bus,
                addr,
            });
        }
    }
}

impl Server {
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
    /// task and address), or `None` to reply to nobody (now).
    fn respond(&mut self, r: &Reply, cap: Option<u64>) -> Option<(Message, Option<(u64, u64)>)> {
        let info = r.info();
        let badge = r.badge;
        let mrs = &r.mrs;
        if info.label == NOTIFICATION_LABEL && badge & TIMER_BITS != 0 {
            // vm's timer (no request badge has its bit; a task sending the label is answered
            // as any unknown request). The deadlines are compared with the clock in `run`.
            if let Some(c) = cap {
                self.vm.m.budget.delete(c);
            }
            self.vm.m.timer_armed = false;
            if self.vm.m.pending.sent(Pager::File).is_some()
                || self.vm.m.pending.sent(Pager::Shm).is_some()
            {
                self.vm.m.arm_timer();
            }
            return None;
        }
        if let Some(faulter) = pid::of_fault_badge(badge) {
            // Only the kernel sends on a fault badge, and only fault messages.
            if let Some(c) = cap {
                self.vm.m.budget.delete(c);
            }
            return match FaultLabel::try_from(info.label) {
                // The common cases are answered here, without building a `Work` (the fast
                // path of every anonymous and copy-on-write fault).
                Ok(label) if faulter >= pid::FIRST_USER => {
                    match self.fault_outcome(faulter, label, mrs, false) {
                        Outcome::Map { page, va, flags } => Some((
                            self.map_reply(page, va, flags),
                            Some((faulter, mrs[vm_fault::ADDRESS])),
                        )),
                        Outcome::Resume => Some((Message::new(fault_reply::RESUME, &[]), None)),
                        outcome => {
                            let work = Work::Fault {
                                pid: faulter,
                                label,
                                mrs: *mrs,
                            };
                            let served = self.fault_served(faulter, outcome, 0);
                            self.finish(work, served)
                        }
                    }
                }
                _ => None,
            };
        }
        if badge & !1 == PROXY_BADGE {
            if let Some(c) = cap {
                self.vm.m.budget.delete(c);
            }
            let pager = if badge & 1 == 0 {
                Pager::File
            } else {
                Pager::Shm
            };
            return self.proxy_answered(pager, r);
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
        // The one decoder of the label's interface.
        let request = Request::decode(label, words);
        // Only init's requests may bring a capability.
        if let Ok(Request::Control(req)) = request
            && badge == pid::INIT
            && req.carries_cap()
        {
            return match self.control(req, cap) {
                Served::Reply(m, f) => Some((m, f)),
                _ => None,
            };
        }
        if let Some(c) = cap {
            self.vm.m.budget.delete(c);
        }
        match request {
            // A fault label on a request badge is a task imitating the kernel.
            _ if FaultLabel::try_from(label).is_ok() => Some((serve::error(Errno::EPERM), None)),
            Ok(req) => self.start(Work::Request { badge, req }),
            Err(e) => Some((serve::error(e.into()), None)),
        }
    }

    /// Serves `work` of the caller vm just received: its reply, or none for now (a work that
    /// waits keeps the caller's reply in a slot, `SaveCaller`).
    fn start(&mut self, work: Work) -> Option<(Message, Option<(u64, u64)>)> {
        let served = self.serve(work, false);
        self.finish(work, served)
    }

    /// What becomes of the caller vm just received once its `work` was served.
    fn finish(&mut self, work: Work, served: Served) -> Option<(Message, Option<(u64, u64)>)> {
        match served {
            Served::Reply(m, fault) => Some((m, fault)),
            Served::Nothing => None,
            Served::Wait => {
                let waiting_on = self.vm.m.pending.take_waiting_on();
                let saved = self.vm.m.budget.save_caller();
                match (saved, waiting_on) {
                    (Ok(reply), Some(request)) => {
                        if let Err(w) = self.vm.m.pending.wait(request, Waiter { reply, work }) {
                            self.refuse_saved(w);
                        }
                        None
                    }
                    (saved, _) => {
                        // No slot to keep the caller in (or nothing to wait for: a bug).
                        if let Ok(slot) = saved {
                            self.vm.m.budget.delete(slot);
                        }
                        self.refuse(work)
                    }
                }
            }
        }
    }

    /// The answer to `work` when it cannot wait: `EAGAIN` to a request, `BUS` to a fault.
    fn refuse(&mut self, work: Work) -> Option<(Message, Option<(u64, u64)>)> {
        match work {
            Work::Fault { pid, mrs, .. } => {
                self.kill(KillRecord {
                    pid,
                    kind: Kill::Bus,
                    addr: mrs[vm_fault::ADDRESS],
                });
                None
            }
            Work::Request { .. } => Some((serve::error(Errno::EAGAIN), None)),
        }
    }

    /// [`Server::refuse`] for a caller whose reply was saved.
    fn refuse_saved(&mut self, w: Waiter) {
        match self.refuse(w.work) {
            Some((m, note)) => {
                if let Err(e) = self.vm.m.budget.answer_saved(w.reply, &m) {
                    self.reply_failed(e, note);
                }
            }
            None => self.vm.m.budget.delete(w.reply),
        }
    }

    /// Serves `work` (the first time, or again after an answer it waited for came in).
    fn serve(&mut self, work: Work, again: bool) -> Served {
        match work {
            Work::Fault { pid, label, mrs } => self.fault(pid, label, &mrs, again),
            Work::Request {
                badge,
                req: Request::Control(req),
            } if badge == pid::INIT => self.control(req, None),
            Work::Request {
                badge,
                req: Request::Task(req),
            } if badge >= pid::FIRST_USER => self.task_request(badge, req),
            Work::Request {
                badge,
                req: Request::MmapObject(req),
            } if badge >= pid::FIRST_USER => served(self.vm.mmap_object(badge, req)),
            Work::Request {
                badge,
                req: Request::Msync(Msync { addr, len, flags }),
            } if badge >= pid::FIRST_USER => served(self.vm.msync(badge, addr, len, flags)),
            Work::Request { .. } => Served::Reply(serve::error(Errno::EPERM), None),
        }
    }

    /// A proxy called: with the answer to the request it had (none when it starts), and
    /// for its next one. Every waiter of the answer is served again, then the proxy gets
    /// its next request, or waits for one in a saved reply.
    fn proxy_answered(&mut self, pager: Pager, r: &Reply) -> Option<(Message, Option<(u64, u64)>)> {
        let sys = &mut self.vm.m;
        let n = r.info().length.min(r.mrs.len());
        let caps = r.mrs[1] & 0xff;
        let len = ((r.mrs[1] >> 8) as usize).min(ANSWER_WORDS);
        let words = match abi::error::result_from_code(r.mrs[0]) {
            Ok(()) => {
                let mut w = [0u64; ANSWER_WORDS];
                let got = r.mrs.get(PROXY_HEADER..n).unwrap_or(&[]);
                let len = len.min(got.len());
                w[..len].copy_from_slice(&got[..len]);
                Ok((w, len))
            }
            Err(e) => Err(Errno::from(e)),
        };
        if let Some(sent) = sys.pending.sent(pager) {
            let cap = match sent.slot {
                Some(slot) if caps == 1 && words.is_ok() => Some(slot),
                Some(slot) => {
                    sys.budget.free(slot);
                    None
                }
                None => None,
            };
            if let Some((_, waiters)) = sys.pending.answer(pager, words, cap) {
                self.run_again(waiters);
            }
        }
        let sys = &mut self.vm.m;
        if let Some(next) = sys.next_request(pager) {
            return Some((sys.proxy_message(&next), None));
        }
        // Nothing to do: the proxy waits in a saved reply for its next request.
        let i = vm::pending::index(pager);
        sys.idle[i] = sys.budget.save_caller().ok();
        None
    }

    /// Serves again every waiter of the current answer; then drops the answer (and the
    /// capability nobody took).
    fn run_again(&mut self, waiters: Vec<Waiter>) {
        for w in waiters {
            match self.serve(w.work, true) {
                Served::Reply(msg, fault) => {
                    if let Err(e) = self.vm.m.budget.answer_saved(w.reply, &msg) {
                        self.reply_failed(e, fault);
                    }
                }
                Served::Nothing => self.vm.m.budget.delete(w.reply),
                Served::Wait => match self.vm.m.pending.take_waiting_on() {
                    Some(request) => {
                        if let Err(w) = self.vm.m.pending.wait(request, w) {
                            self.refuse_saved(w);
                        }
                    }
                    None => self.refuse_saved(w),
                },
            }
        }
        if let Some(c) = self.vm.m.pending.done() {
            self.vm.m.budget.delete(c);
        }
    }

    /// Ends the requests of a pager that missed its deadline, and every later one until init
    /// gives vm a new instance: their waiters end with `BUS` (faults) or the error
    /// (requests), and init hears of the pager (a kill record with its pid).
    fn check_deadlines(&mut self) {
        let sys = &self.vm.m;
        if sys.pending.sent(Pager::File).is_none() && sys.pending.sent(Pager::Shm).is_none() {
            return;
        }
        let now = counter().0;
        for pager in [Pager::File, Pager::Shm] {
            let sys = &mut self.vm.m;
            let Some(sent) = sys.pending.sent(pager) else {
                continue;
            };
            if now.saturating_sub(sent.at) <= sys.deadline {
                continue;
            }
            println!(
                "vm: {pager:?} pager has not answered within its deadline: ending its waiters"
            );
            // init hears of the pager before it hears of its waiters' ends (each of which
            // it would tell the silent pager of).
            let pid = match pager {
                Pager::File => pid::FILE,
                Pager::Shm => pid::SHM,
            };
            self.kill(KillRecord {
                pid,
                kind: Kill::Bus,
                addr: 0,
            });
            self.pager_failed(pager, Errno::ETIMEDOUT);
        }
    }

    /// `pager` is gone (or silent): every request of it queued or sent is answered with
    /// `e`, and vm forgets its endpoint (later requests: `ENODEV`; faults: `BUS`).
    fn pager_failed(&mut self, pager: Pager, e: Errno) {
        let sys = &mut self.vm.m;
        let ep = match pager {
            Pager::File => sys.file.take(),
            Pager::Shm => sys.shm.take(),
        };
        if let Some(ep) = ep {
            sys.budget.delete(ep.cptr());
        }
        let requests = sys.pending.drop_queued(pager);
        if let Some(sent) = sys.pending.sent(pager) {
            // The proxy stays in its `Call` until the pager dies; its answer then finds
            // nothing sent.
            if let Some(slot) = sent.slot {
                sys.budget.free(slot);
            }
            if let Some((_, waiters)) = sys.pending.answer(pager, Err(e), None) {
                self.run_again(waiters);
            }
        }
        for r in requests {
            let waiters = self.vm.m.pending.fail(r, e);
            self.run_again(waiters);
        }
    }

    /// vm's decision on a fault message (`again`: the fault was handled before and waited).
    fn fault_outcome(
        &mut self,
        pid: u64,
        label: FaultLabel,
        mrs: &[u64; 6],
        again: bool,
    ) -> Outcome {
        match label {
            FaultLabel::VmFault => {
                let addr = mrs[vm_fault::ADDRESS];
                let access = vm_fault::Access::try_from(mrs[vm_fault::ACCESS]);
                let kind = vm_fault::Kind::try_from(mrs[vm_fault::KIND]);
                let permission = match kind {
                    Ok(vm_fault::Kind::Translation) => Some(false),
                    Ok(vm_fault::Kind::Permission) => Some(true),
                    _ => None,
                };
                match (access, permission) {
                    (Ok(a), Some(p)) if again => self.vm.fault_again(pid, addr, a, p),
                    (Ok(a), Some(p)) => self.vm.fault(pid, addr, a, p),
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
        }
    }

    fn fault(&mut self, pid: u64, label: FaultLabel, mrs: &[u64; 6], again: bool) -> Served {
        // The address a kill reports: the one the task touched.
        let fault_addr = mrs[vm_fault::ADDRESS];
        let outcome = self.fault_outcome(pid, label, mrs, again);
        self.fault_served(pid, outcome, fault_addr)
    }

    /// The fault reply with a map item of vm's page `page` at `va`.
    fn map_reply(&self, page: PageId, va: u64, flags: MapFlags) -> Message {
        let (chunk, index) = chunk_of(page);
        let frame = self.vm.m.chunks[chunk as usize].cptr();
        Message::new(
            fault_reply::REPLY_MAP,
            &[frame, u64::from(index), 1, va, flags.0],
        )
    }

    /// What becomes of a fault with `outcome` (a task that faulted at `fault_addr`).
    fn fault_served(&mut self, pid: u64, outcome: Outcome, fault_addr: u64) -> Served {
        match outcome {
            Outcome::Map { page, va, flags } => {
                Served::Reply(self.map_reply(page, va, flags), Some((pid, fault_addr)))
            }
            Outcome::Resume => Served::Reply(Message::new(fault_reply::RESUME, &[]), None),
            Outcome::Killed(kind) => {
                let addr = self.vm.last_kill().map_or(0, |k| k.addr);
                self.announce(KillRecord { pid, kind, addr });
                Served::Nothing
            }
            Outcome::Ignore => Served::Nothing,
            Outcome::Wait => Served::Wait,
        }
    }

    /// One of init's requests; `cap` is the capability that came with it.
    fn control(&mut self, req: VmControl, cap: Option<u64>) -> Served {
        if let VmControl::SetPager { pager } = req {
            // Nothing queued for the old instance may reach the new one.
            self.pager_failed(pager, Errno::ENODEV);
        }
        let vm = &mut self.vm;
        let cap = match (req.carries_cap(), cap) {
            (true, Some(c)) => c,
            (true, None) => return Served::Reply(serve::error(Errno::EINVAL), None),
            (false, c) => {
                if let Some(c) = c {
                    vm.m.budget.delete(c);
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
                .inspect_err(|_| vm.m.budget.delete(cap)),
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
            VmControl::TakeKills => return Served::Reply(serve::answer(&Ok(vm.take_kill())), None),
            VmControl::SetPager { pager } => {
                vm.m.set_pager(pager, cap)
                    .inspect_err(|_| vm.m.budget.delete(cap))
            }
        };
        served(r)
    }

    /// A task's request; `pid` is the caller.
    fn task_request(&mut self, pid: u64, req: VmRequest) -> Served {
        let vm = &mut self.vm;
        let reply = match req {
            VmRequest::Mmap {
                addr,
                len,
                prot,
                flags,
                fd,
                offset,
            } => {
                return served(vm.mmap(
                    pid,
                    MmapArgs {
                        addr,
                        len,
                        prot,
                        flags,
                        fd,
                        offset,
                    },
                ));
            }
            VmRequest::Munmap { addr, len } => serve::answer(&vm.munmap(pid, addr, len)),
            VmRequest::Mprotect { addr, len, prot } => {
                serve::answer(&vm.mprotect(pid, addr, len, prot))
            }
            VmRequest::Vmmap => {
                let mut s = String::new();
                let r = vm.vmmap(pid, &mut s);
                rt::print!("{s}");
                serve::answer(&r)
            }
            VmRequest::VmStats => serve::answer(&Ok(vm.stats())),
            VmRequest::SpaceInfo { pid } => serve::answer(&vm.space_info(pid)),
            VmRequest::RegionAt { pid, from } => serve::answer(&vm.region_at(pid, from)),
        };
        Served::Reply(reply, None)
    }
}
