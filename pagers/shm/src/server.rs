//! The shm server's system calls: block frames retyped from its untyped budget (the kernel
//! zeroes them) and mapped into its own address space at `SHM_BLOCK_WINDOW` (to clear them
//! when they are cut by `ftruncate` or reused), the request loop, and the replies to vm
//! that carry a block's frame capability (a copy, a child of the server's: revoking the
//! server's takes the block from every task).

use abi::message::MAX_MRS;
use abi::object::{MapFlags, ObjectType};
use alloc::vec::Vec;
use libmk::{Cap, Endpoint, Frame, Message, Reply};
use proto::file::{AT_POSITION, READ_DATA_MR, READ_MAX, pack_data};
use proto::object::{BLOCK_PAGES, BLOCK_SIZE, GetObject, ObjectRequest};
use proto::startup::{SHM_BLOCK_WINDOW, Startup, shm_slots};
use proto::{
    DescriptorCount, Errno, FileRequest, OpenReply, ServerControl, ShmRequest, StatReply, Wire, pid,
};
use rt::println;
use serve::{Budget, Serve, StopHook, Tables};
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
    budget: Budget,
    /// The server's own address space, where block frames are mapped.
    own: Tables,
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
    /// A zeroed block frame: a free one, else a new one from the budget.
    fn block(&mut self) -> Result<Block, Errno> {
        if let Some(b) = self.free.pop() {
            return Ok(b);
        }
        let va = self.next_va;
        self.own.ensure(va, &mut self.budget)?;
        let slot = self.budget.retype(ObjectType::Frame, BLOCK_BITS)?;
        let frame: Cap<Frame> = Cap::from_cptr(slot);
        frame
            .map(self.own.vspace, va, MapFlags::RW, 0, BLOCK_PAGES)
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
        if let Err(e) = self.budget.cnode.revoke(b.slot) {
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
    let mut server = Server {
        sys: Sys {
            budget: Budget::of(st, Cap::from_cptr(st.slots[shm_slots::CNODE])),
            own: Tables::new(Cap::from_cptr(st.slots[shm_slots::VSPACE])),
            next_va: SHM_BLOCK_WINDOW,
            free: Vec::new(),
            made: 0,
            warned: false,
        },
        table: Table::new(),
    };
    serve::run(ep, "shm-server", StopHook::of(st), &mut server)
}

/// The server: the kernel's side and the objects.
struct Server {
    sys: Sys,
    table: Table<Block>,
}

impl Serve for Server {
    type Note = ();

    fn handle(&mut self, msg: &Reply) -> Option<(Message, ())> {
        let req = rt::ipc::received(msg);
        let m = handle(
            &mut self.sys,
            &mut self.table,
            msg.badge,
            &req,
            msg.info().length,
        );
        Some((m, ()))
    }
}

proto::requests! {
    /// What the shm server answers: its own interface, the memory-object protocol (vm's,
    /// and a task's `Release` of a handle vm never claimed), init's notices, `GetObject`, and
    /// the file calls on its descriptors.
    enum Request {
        Shm(ShmRequest),
        Object(ObjectRequest),
        Control(ServerControl),
        GetObject(GetObject),
        File(FileRequest),
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
    let request = match Request::decode(req.label(), req.mrs()) {
        Ok(r) => r,
        Err(e) => return serve::error(e.into()),
    };
    match request {
        Request::Shm(ShmRequest::CreateAnon { size }) => {
            if badge != pid::VM {
                return serve::error(Errno::EPERM);
            }
            // Below the heap's low-water mark nothing new is made (the limits in `Table`
            // keep it far from there; this is the backstop).
            if rt::heap::is_low() {
                return serve::error(Errno::ENOMEM);
            }
            serve::answer(&table.create_anon(size))
        }
        Request::Object(r) if badge == pid::VM => object_request(sys, table, r),
        // A task may give back a handle vm never claimed (its mmap failed); the rest of the
        // memory-object protocol is vm's.
        Request::Object(ObjectRequest::Release { handle }) => {
            serve::answer(&table.release(badge, handle).map(|f| sys.free_all(f)))
        }
        Request::Object(_) => serve::error(Errno::EPERM),
        Request::Control(c) if c.init_only() && badge != pid::INIT => serve::error(Errno::EPERM),
        Request::Control(c) => control(sys, table, c),
        Request::GetObject(_) if rt::heap::is_low() => serve::error(Errno::ENFILE),
        Request::GetObject(g) => serve::answer(
            &table
                .get_object(badge, g.fd, g.writable)
                .map(|(handle, size)| OpenReply { fd: handle, size }),
        ),
        // `read`, `write`, `lseek` and `fstat` of a shm descriptor: the file calls'
        // messages (`user/rt` sends them here by the descriptor's number).
        Request::File(
            r @ (FileRequest::Read { .. }
            | FileRequest::Write { .. }
            | FileRequest::Lseek { .. }
            | FileRequest::Fstat { .. }),
        ) => file_request(sys, table, badge, r, length),
        Request::File(_) => serve::error(Errno::ENOSYS),
        Request::Shm(ShmRequest::Open { .. }) if rt::heap::is_low() => serve::error(Errno::ENFILE),
        Request::Shm(ShmRequest::Open { name, flags, mode }) => {
            let r = table.open(badge, &name, flags, mode).map(|(fd, size, f)| {
                sys.apply(f);
                OpenReply { fd, size }
            });
            serve::answer(&r)
        }
        Request::Shm(ShmRequest::Truncate { fd, size }) => {
            serve::answer(&table.truncate(badge, fd, size).map(|f| sys.apply(f)))
        }
        Request::Shm(ShmRequest::Stat { fd }) => serve::answer(&table.stat(badge, fd)),
        Request::Shm(ShmRequest::Unlink { name }) => {
            serve::answer(&table.unlink(&name).map(|f| sys.free_all(f)))
        }
        Request::Shm(ShmRequest::Close { fd }) => {
            serve::answer(&table.close(badge, fd).map(|f| sys.free_all(f)))
        }
    }
}

/// One of init's notices, or the descriptor count.
fn control(sys: &mut Sys, table: &mut Table<Block>, c: ServerControl) -> Message {
    match c {
        ServerControl::TaskExit { pid } => sys.free_all(table.task_exit(pid)),
        ServerControl::TaskFork { parent, child } => {
            if rt::heap::is_low() {
                return serve::error(Errno::ENFILE);
            }
            match table.task_fork(parent, child) {
                Ok(freed) => sys.free_all(freed),
                Err(e) => return serve::error(e),
            }
        }
        // POSIX `shm_open` sets `FD_CLOEXEC`: every descriptor goes at `exec`.
        ServerControl::TaskExec { pid } => sys.free_all(table.task_exec(pid)),
        // Memory only: nothing to write back.
        ServerControl::SyncAll => {}
        ServerControl::Descriptors => {
            return serve::answer(&Ok(DescriptorCount {
                fds: table.descriptors() as u64,
                objects: table.usage().0 as u64,
            }));
        }
    }
    serve::answer(&Ok(()))
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
                return serve::answer(&(span.map(|_| ())));
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
                return serve::error(e);
            }
            // A new block's record takes heap: below the low-water mark, none.
            if rt::heap::is_low() {
                return serve::error(Errno::ENOSPC);
            }
            let old_size = table.stat(pid, fd).unwrap_or(0);
            let (span, frames) = match table.write_span(pid, fd, offset, len as u64) {
                Ok(r) => r,
                Err(e) => return serve::error(e),
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
                Some(e) if done == 0 => serve::error(e),
                _ => serve::answer(&(Ok(done))),
            }
        }
        FileRequest::Lseek { fd, offset, whence } => {
            serve::answer(&(table.lseek(pid, fd, offset, whence)))
        }
        FileRequest::Fstat { fd } => serve::answer(
            &(table.stat(pid, fd).map(|size| StatReply {
                size,
                is_dir: false,
                is_fifo: false,
            })),
        ),
        _ => serve::error(Errno::ENOSYS),
    }
}

/// `Read`'s reply: MR0 = 0, MR1 = the count `n`, the first `n` bytes of `data` in MR6.. of
/// the IPC buffer.
fn data_reply(data: &[u8; READ_MAX], n: usize) -> Message {
    let mut m = serve::answer(&(Ok(n as u64)));
    if n == 0 {
        return m;
    }
    let Some(buf) = libmk::ipc_buffer() else {
        return serve::error(Errno::EIO);
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
            if got.is_err() && !sys.warned && sys.budget.is_spent() {
                sys.warned = true;
                println!("shm: out of memory after {} blocks", sys.made);
            }
            let mut m = serve::answer(&(got.map(|(_, valid)| valid)));
            if let Ok((b, _)) = got
                && let Some(buf) = libmk::ipc_buffer()
            {
                buf.send_cap = b.slot;
                m.info.caps = 1;
            }
            m
        }
        ObjectRequest::Claim { handle, pid } => serve::answer(&(table.claim(handle, pid))),
        // Memory only: nothing to remember or write back, only the handle to check.
        ObjectRequest::Dirty { handle, .. } => serve::answer(&(table.dirty(handle))),
        ObjectRequest::Sync { handle, .. } => serve::answer(&(table.check_handle(handle))),
        ObjectRequest::Release { handle } => {
            serve::answer(&table.release(pid::VM, handle).map(|f| sys.free_all(f)))
        }
    }
}
