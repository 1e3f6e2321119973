//! The shm server's system calls: block frames retyped from its untyped budget (the kernel
//! zeroes them) and mapped into its own address space at `SHM_BLOCK_WINDOW` (to clear them
//! when they are cut by `ftruncate` or reused), the request loop, and the replies to vm
//! that carry a block's frame capability (a copy, a child of the server's: revoking the
//! server's takes the block from every task).

use abi::Error;
use abi::message::{MAX_MRS, NULL_CPTR};
use abi::object::{MapFlags, ObjectType};
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use libmk::{CNode, Cap, Endpoint, Frame, Message, PageTable, Untyped, VSpace};
use proto::file::{AT_POSITION, READ_DATA_MR, READ_MAX, pack_data};
use proto::object::{BLOCK_PAGES, BLOCK_SIZE, GetObject, ObjectRequest};
use proto::startup::{SHM_BLOCK_WINDOW, Startup, shm_slots};
use proto::{
    DescriptorCount, Errno, FileRequest, OpenReply, ServerControl, ShmRequest, StatReply, Wire,
    encode_reply, pid,
};
use rt::println;
use shm::{Clear, Frames, Table};

rt::server_entry!(main);

/// log2 of a block frame.
const BLOCK_BITS: u64 = 16;
const _: () = assert!(1 << BLOCK_BITS == BLOCK_SIZE);

/// A block frame: its capability (the original) and where it is mapped in the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Block {
    slot: u64,
    va: u64,
}

/// What the server holds that the kernel knows about.
struct Sys {
    cnode: Cap<CNode>,
    vspace: Cap<VSpace>,
    untyped: core::ops::Range<u64>,
    next_slot: u64,
    slot_end: u64,
    /// Page tables installed in the server's VSpace: (level, base).
    tables: BTreeSet<(u8, u64)>,
    /// Where the next new block frame is mapped.
    next_va: u64,
    /// Block frames no object uses: mapped, zeroed, taken from every task.
    free: Vec<Block>,
    /// Block frames made so far.
    made: u64,
    /// Whether running out has been reported (once is enough).
    warned: bool,
}

impl Sys {
    fn slot(&mut self) -> Result<u64, Errno> {
        if self.next_slot >= self.slot_end {
            return Err(Errno::ENOMEM);
        }
        self.next_slot += 1;
        Ok(self.next_slot - 1)
    }

    /// One object of `ty` retyped from the budget into a new slot.
    fn retype(&mut self, ty: ObjectType, bits: u64) -> Result<u64, Errno> {
        let slot = self.slot()?;
        while !self.untyped.is_empty() {
            let ut: Cap<Untyped> = Cap::from_cptr(self.untyped.start);
            match ut.retype(ty, bits, self.cnode, slot, 1) {
                Ok(()) => return Ok(slot),
                Err(Error::NotEnoughMemory | Error::RangeError | Error::InvalidCapability) => {
                    self.untyped.start += 1;
                }
                Err(e) => {
                    println!("shm: retype: {e:?}");
                    self.untyped.start += 1;
                }
            }
        }
        // The slot stays unused; the budget is gone anyway.
        Err(Errno::ENOMEM)
    }

    /// Installs the level-1..3 tables covering `va` in the server's VSpace where missing.
    fn ensure_tables(&mut self, va: u64) -> Result<(), Errno> {
        for level in 1..=3u8 {
            let span_bits = match level {
                1 => 39,
                2 => 30,
                _ => 21,
            };
            let base = va & !((1u64 << span_bits) - 1);
            if self.tables.contains(&(level, base)) {
                continue;
            }
            let pt: Cap<PageTable> = Cap::from_cptr(self.retype(ObjectType::PageTable, 0)?);
            match self.vspace.map_table(pt, base, u64::from(level)) {
                Ok(()) | Err(Error::AlreadyMapped) => {
                    self.tables.insert((level, base));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// A zeroed block frame: a free one, else a new one from the budget.
    fn block(&mut self) -> Result<Block, Errno> {
        if let Some(b) = self.free.pop() {
            return Ok(b);
        }
        let va = self.next_va;
        self.ensure_tables(va)?;
        let slot = self.retype(ObjectType::Frame, BLOCK_BITS)?;
        let frame: Cap<Frame> = Cap::from_cptr(slot);
        frame
            .map(self.vspace, va, MapFlags::RW, 0, BLOCK_PAGES)
            .map_err(Errno::from)?;
        self.next_va += BLOCK_SIZE;
        self.made += 1;
        Ok(Block { slot, va })
    }

    /// Bytes [`from`, `to`) of block `b`, through the server's own mapping.
    fn clear(b: Block, from: u64, to: u64) {
        let to = to.min(BLOCK_SIZE);
        if from >= to {
            return;
        }
        // SAFETY: `b.va` is where `block` mapped the block's 64 KiB frame read-write for
        // the server's life, and `from < to <= BLOCK_SIZE`; no Rust reference covers that
        // memory (tasks may write it at the same time through their mappings, which for
        // bytes being cleared is a race POSIX leaves undefined too).
        unsafe { core::ptr::write_bytes((b.va + from) as *mut u8, 0, (to - from) as usize) };
    }

    /// `out.len()` bytes of block `b` from `off`, through the server's own mapping.
    fn copy_out(b: Block, off: u64, out: &mut [u8]) {
        let n = out.len().min(BLOCK_SIZE.saturating_sub(off) as usize);
        // SAFETY: `b.va` is where `block` mapped the block's 64 KiB frame read-write for the
        // server's life, and `off + n <= BLOCK_SIZE`; `out` is the server's own buffer, not
        // in that window. Tasks may write the frame at the same time through their mappings
        // (a race between a `read` and a store POSIX leaves unspecified too); bytes are
        // plain data, any value valid.
        unsafe { core::ptr::copy_nonoverlapping((b.va + off) as *const u8, out.as_mut_ptr(), n) };
    }

    /// `data` into block `b` at `off`, through the server's own mapping.
    fn copy_in(b: Block, off: u64, data: &[u8]) {
        let n = data.len().min(BLOCK_SIZE.saturating_sub(off) as usize);
        // SAFETY: as in `copy_out`, the other way: `[b.va + off, + n)` lies in the block's
        // frame, mapped read-write for the server's life; `data` is not in that window.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), (b.va + off) as *mut u8, n) };
    }

    /// Takes `b` from every task (its capability's children go, and with them their
    /// mappings).
    fn revoke(&self, b: Block) {
        if let Err(e) = self.cnode.revoke(b.slot) {
            println!("shm: revoke: {e:?}");
        }
    }

    /// Takes `b` from every task, clears it and keeps it for reuse.
    fn free(&mut self, b: Block) {
        self.revoke(b);
        Self::clear(b, 0, BLOCK_SIZE);
        self.free.push(b);
    }

    /// Does what a table operation left to do (mappings first, so that none writes past
    /// the end after the clearing).
    fn apply(&mut self, frames: Frames<Block>) {
        if let Some(b) = frames.revoke {
            self.revoke(b);
        }
        if let Some(Clear { frame, from, to }) = frames.clear {
            Self::clear(frame, from, to);
        }
        self.free_all(frames.freed);
    }

    fn free_all(&mut self, blocks: Vec<Block>) {
        for b in blocks {
            self.free(b);
        }
    }
}

fn main(st: &'static Startup) -> ! {
    // SAFETY: init mapped the heap read-write for the server's life; nothing else uses it.
    unsafe { rt::heap::init(st.heap_base, st.heap_size) };
    let ep: Cap<Endpoint> = Cap::from_cptr(st.slots[shm_slots::ENDPOINT]);
    let mut sys = Sys {
        cnode: Cap::from_cptr(st.slots[shm_slots::CNODE]),
        vspace: Cap::from_cptr(st.slots[shm_slots::VSPACE]),
        untyped: st.untyped_first..st.untyped_first + st.untyped_count,
        next_slot: st.first_free_slot,
        slot_end: 1u64
            .checked_shl(u32::try_from(st.cnode_radix).unwrap_or(0))
            .unwrap_or(0),
        tables: BTreeSet::new(),
        next_va: SHM_BLOCK_WINDOW,
        free: Vec::new(),
        made: 0,
        warned: false,
    };
    let mut table = Table::<Block>::new();
    let mut reply: Option<Message> = None;
    let mut hook = rt::StopHook::of(st);
    loop {
        if let Some(buf) = libmk::ipc_buffer() {
            buf.receive_slot = NULL_CPTR;
        }
        let r = match reply.take() {
            Some(m) => ep.reply_recv(&m),
            None => ep.recv(),
        };
        let Ok(r) = r else {
            continue;
        };
        hook.request(
            "shm-server",
            ep,
            r.info().label,
            &r.mrs[..r.info().length.min(r.mrs.len())],
        );
        let req = rt::ipc::received(&r);
        reply = Some(handle(&mut sys, &mut table, r.badge, &req, r.info().length));
    }
}

/// One request from `badge` (vm's pid for the memory-object protocol and `CreateAnon`, a
/// task's otherwise); `length`: the message registers it came with.
fn handle(
    sys: &mut Sys,
    table: &mut Table<Block>,
    badge: u64,
    req: &Wire,
    length: usize,
) -> Message {
    let (label, mrs) = (req.label(), req.mrs());
    if badge == pid::VM {
        if let Ok(ShmRequest::CreateAnon { size }) = ShmRequest::decode(label, mrs) {
            // Below the heap's low-water mark nothing new is made (the limits in `Table`
            // keep it far from there; this is the backstop).
            if rt::heap::is_low() {
                return wire(&encode_reply::<()>(&Err(Errno::ENOMEM)));
            }
            return wire(&encode_reply(&table.create_anon(size)));
        }
        return match ObjectRequest::decode(label, mrs) {
            Ok(r) => object_request(sys, table, r),
            Err(e) => wire(&encode_reply::<()>(&Err(e.into()))),
        };
    }
    // A task may give back a handle vm never claimed (its mmap failed); the rest of the
    // memory-object protocol is vm's.
    match ObjectRequest::decode(label, mrs) {
        Ok(ObjectRequest::Release { handle }) => {
            return wire(&encode_reply(
                &table.release(badge, handle).map(|f| sys.free_all(f)),
            ));
        }
        Ok(_) => return wire(&encode_reply::<()>(&Err(Errno::EPERM))),
        Err(_) => {}
    }
    if let Ok(c) = ServerControl::decode(label, mrs) {
        if c.init_only() && badge != pid::INIT {
            return wire(&encode_reply::<()>(&Err(Errno::EPERM)));
        }
        match c {
            ServerControl::TaskExit { pid } => sys.free_all(table.task_exit(pid)),
            ServerControl::TaskFork { parent, child } => {
                if rt::heap::is_low() {
                    return wire(&encode_reply::<()>(&Err(Errno::ENFILE)));
                }
                match table.task_fork(parent, child) {
                    Ok(freed) => sys.free_all(freed),
                    Err(e) => return wire(&encode_reply::<()>(&Err(e))),
                }
            }
            // POSIX `shm_open` sets `FD_CLOEXEC`: every descriptor goes at `exec`.
            ServerControl::TaskExec { pid } => sys.free_all(table.task_exec(pid)),
            // Memory only: nothing to write back.
            ServerControl::SyncAll => {}
            ServerControl::Descriptors => {
                return wire(&encode_reply(&Ok(DescriptorCount {
                    fds: table.descriptors() as u64,
                    objects: table.usage().0 as u64,
                })));
            }
        }
        return wire(&encode_reply(&Ok(())));
    }
    if let Ok(g) = GetObject::decode(label, mrs) {
        if rt::heap::is_low() {
            return wire(&encode_reply::<()>(&Err(Errno::ENFILE)));
        }
        return wire(&encode_reply(
            &table
                .get_object(badge, g.fd, g.writable)
                .map(|(handle, size)| OpenReply { fd: handle, size }),
        ));
    }
    // `read`, `write`, `lseek` and `fstat` of a shm descriptor: the file calls' messages
    // (`user/rt` sends them here by the descriptor's number).
    if let Ok(
        r @ (FileRequest::Read { .. }
        | FileRequest::Write { .. }
        | FileRequest::Lseek { .. }
        | FileRequest::Fstat { .. }),
    ) = FileRequest::decode(label, mrs)
    {
        return file_request(sys, table, badge, r, length);
    }
    let reply = match ShmRequest::decode(label, mrs) {
        Err(e) => encode_reply::<()>(&Err(e.into())),
        Ok(ShmRequest::Open { .. }) if rt::heap::is_low() => {
            encode_reply::<()>(&Err(Errno::ENFILE))
        }
        Ok(ShmRequest::Open { name, flags, mode }) => {
            let r = table.open(badge, &name, flags, mode).map(|(fd, size, f)| {
                sys.apply(f);
                OpenReply { fd, size }
            });
            encode_reply(&r)
        }
        Ok(ShmRequest::Truncate { fd, size }) => {
            encode_reply(&table.truncate(badge, fd, size).map(|f| sys.apply(f)))
        }
        Ok(ShmRequest::Stat { fd }) => encode_reply(&table.stat(badge, fd)),
        Ok(ShmRequest::Unlink { name }) => {
            encode_reply(&table.unlink(&name).map(|f| sys.free_all(f)))
        }
        Ok(ShmRequest::Close { fd }) => {
            encode_reply(&table.close(badge, fd).map(|f| sys.free_all(f)))
        }
        // vm's alone (handled above).
        Ok(ShmRequest::CreateAnon { .. }) => encode_reply::<()>(&Err(Errno::EPERM)),
    };
    wire(&reply)
}

/// `read`, `write`, `lseek`, `fstat` of task `pid`'s shm descriptor, as the file server
/// answers them: the bytes travel in MR6.. ([`READ_MAX`] a message), copied out of and into
/// the object's block frames through the server's own mappings (a block never touched
/// reads as zero; a `write` makes it). A `write` past the end grows the object (the gap
/// reads as zero); one the budget cannot hold is `ENOSPC` (short if some bytes went in).
fn file_request(
    sys: &mut Sys,
    table: &mut Table<Block>,
    pid: u64,
    req: FileRequest,
    length: usize,
) -> Message {
    match req {
        FileRequest::Read { fd, offset, len } => {
            let mut data = [0u8; READ_MAX];
            let span = table.read_span(pid, fd, offset, len.min(READ_MAX as u64));
            let Ok(span) = span else {
                return wire(&encode_reply(&span.map(|_| ())));
            };
            let mut done = 0;
            while done < span.n {
                let pos = span.at + done;
                let off = pos % BLOCK_SIZE;
                let k = (BLOCK_SIZE - off).min(span.n - done);
                if let Some(b) = table.frame(span.object, pos / BLOCK_SIZE) {
                    Sys::copy_out(b, off, &mut data[done as usize..(done + k) as usize]);
                }
                done += k;
            }
            if offset == AT_POSITION {
                table.set_position(pid, fd, span.at + span.n);
            }
            data_reply(&data, span.n as usize)
        }
        FileRequest::Write {
            fd, offset, len, ..
        } => {
            // The decoder checked `len <= READ_MAX`; the words must all have come.
            let len = len as usize;
            let mut data = [0u8; READ_MAX];
            if let Err(e) = rt::ipc::write_data(length, len, &mut data) {
                return wire(&encode_reply::<()>(&Err(e)));
            }
            // A new block's record takes heap: below the low-water mark, none.
            if rt::heap::is_low() {
                return wire(&encode_reply::<()>(&Err(Errno::ENOSPC)));
            }
            let old_size = table.stat(pid, fd).unwrap_or(0);
            let (span, frames) = match table.write_span(pid, fd, offset, len as u64) {
                Ok(r) => r,
                Err(e) => return wire(&encode_reply::<()>(&Err(e))),
            };
            sys.apply(frames);
            let mut done = 0;
            let mut failed = None;
            while done < span.n {
                let pos = span.at + done;
                let off = pos % BLOCK_SIZE;
                let k = (BLOCK_SIZE - off).min(span.n - done);
                match table.frame_for_write(span.object, pos / BLOCK_SIZE, || sys.block()) {
                    Ok(b) => Sys::copy_in(b, off, &data[done as usize..(done + k) as usize]),
                    Err(_) => {
                        failed = Some(Errno::ENOSPC);
                        break;
                    }
                }
                done += k;
            }
            if failed.is_some() {
                let f = table.write_stopped(span.object, old_size, span.at + done);
                sys.apply(f);
            }
            if done > 0 && offset == AT_POSITION {
                table.set_position(pid, fd, span.at + done);
            }
            match failed {
                Some(e) if done == 0 => wire(&encode_reply::<()>(&Err(e))),
                _ => wire(&encode_reply(&Ok(done))),
            }
        }
        FileRequest::Lseek { fd, offset, whence } => {
            wire(&encode_reply(&table.lseek(pid, fd, offset, whence)))
        }
        FileRequest::Fstat { fd } => {
            wire(&encode_reply(&table.stat(pid, fd).map(|size| StatReply {
                size,
                is_dir: false,
            })))
        }
        _ => wire(&encode_reply::<()>(&Err(Errno::ENOSYS))),
    }
}

/// `Read`'s reply: MR0 = 0, MR1 = the count `n`, the first `n` bytes of `data` in MR6.. of
/// the IPC buffer.
fn data_reply(data: &[u8; READ_MAX], n: usize) -> Message {
    let mut m = wire(&encode_reply(&Ok(n as u64)));
    if n == 0 {
        return m;
    }
    let Some(buf) = libmk::ipc_buffer() else {
        return wire(&encode_reply::<()>(&Err(Errno::EIO)));
    };
    let words = pack_data(&data[..n], &mut buf.mrs[READ_DATA_MR..MAX_MRS]);
    m.info.length = READ_DATA_MR + words;
    m
}

/// vm's requests. `Page` replies with MR1 = the valid bytes and the block's frame
/// capability.
fn object_request(sys: &mut Sys, table: &mut Table<Block>, r: ObjectRequest) -> Message {
    match r {
        ObjectRequest::Page {
            handle,
            block,
            write,
        } => {
            let got = table.page(handle, block, write, || sys.block());
            if got.is_err() && !sys.warned && sys.untyped.is_empty() {
                sys.warned = true;
                println!("shm: out of memory after {} blocks", sys.made);
            }
            let mut m = wire(&encode_reply(&got.map(|(_, valid)| valid)));
            if let Ok((b, _)) = got
                && let Some(buf) = libmk::ipc_buffer()
            {
                buf.send_cap = b.slot;
                m.info.caps = 1;
            }
            m
        }
        ObjectRequest::Claim { handle, pid } => wire(&encode_reply(&table.claim(handle, pid))),
        // Memory only: nothing to remember or write back, only the handle to check.
        ObjectRequest::Dirty { handle, .. } => wire(&encode_reply(&table.dirty(handle))),
        ObjectRequest::Sync { handle, .. } => wire(&encode_reply(&table.check_handle(handle))),
        ObjectRequest::Release { handle } => wire(&encode_reply(
            &table.release(pid::VM, handle).map(|f| sys.free_all(f)),
        )),
    }
}

/// A reply message from its wire form (registers only).
fn wire(w: &Wire) -> Message {
    rt::ipc::message(w)
}
