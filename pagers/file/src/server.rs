//! The file server's receive loop (docs/design.md §5's `file`): finds the virtio-blk disk
//! among the virtio-mmio transports, mounts the FAT volume on its first partition, keeps the
//! page cache that is the one copy of file data, and serves the file calls of `proto::file`
//! to tasks (badged with their pid), `GetObject` to tasks and the memory-object requests of
//! `proto::object` to vm (badged `pid::VM`). docs/pagers.md, "The file server".
//!
//! **Requests that wait for the disk.** An `ObjectPage`, `read` or `write` whose block is
//! not cached starts an asynchronous read of it (or finds one in flight), and the server
//! saves the caller's reply (`SaveCaller`, into one of [`SAVED_REPLIES`] slots of its
//! CNode) and goes back to receiving: cache hits and everything else are served meanwhile.
//! The disk's interrupt arrives as a message (init binds its notification to the server's
//! thread); its completions put the blocks in the cache, and the requests that waited run
//! again, answered through their saved replies (`Send` on the `Reply` capability).

use crate::disk::Disk;
use crate::frames::{self, Files};
use crate::hal;
use abi::message::{NOTIFICATION_LABEL, REGISTER_MRS};
use alloc::vec::Vec;
use file::blockdev::BlockDev;
use file::fs::Fail;
use file::platform::Waiter;
use libmk::{CNode, Cap, Endpoint, Frame, Message, Reply};
use proto::file::{READ_DATA_MR, READ_MAX, READ_STREAM_MR};
use proto::object::{GetObject, ObjectRequest};
use proto::startup::{FILE_DMA_WINDOW, Startup, file_slots};
use proto::{
    DescriptorCount, Errno, FileRequest, GrowReply, Label, MESSAGE_WORDS, OpenReply, PipeReply,
    ServerControl, SpanReply, StatReply, pid,
};
use rt::println;
use serve::{ReplySlots, Serve, StopHook};

rt::server_entry!(main);

/// Replies the server may hold saved at once (a CNode slot each); a client other than vm
/// holds at most [`SAVED_PER_CLIENT`], and such clients leave [`SAVED_FOR_VM`] to vm (every
/// task's faults). A request that finds no slot is served synchronously, as before.
pub const SAVED_REPLIES: u64 = 64;
pub const SAVED_PER_CLIENT: usize = 8;
pub const SAVED_FOR_VM: usize = 16;

/// A request as it arrived, kept to run it again when what it waits for is there.
pub struct Request {
    badge: u64,
    label: u64,
    /// Its words: the registers, and those past them from the IPC buffer (a path is 32
    /// words: `proto::file::Path`).
    mrs: [u64; MESSAGE_WORDS],
    len: usize,
    /// The words the message had (registers and IPC buffer).
    length: usize,
    /// A `Write`'s bytes, taken from the IPC buffer the first time it runs.
    data: Option<Vec<u8>>,
}

/// A request waiting for the disk, its reply saved in `slot`.
pub struct Parked {
    slot: u64,
    req: Request,
    /// Its task ended (`TaskExit`) while it waited: it is not run again (its pid may be
    /// another task's by then).
    gone: bool,
}

impl Waiter for Parked {
    fn pid(&self) -> u64 {
        self.req.badge
    }

    fn task_ended(&mut self) {
        self.gone = true;
    }
}

/// What running a request came to.
enum Outcome {
    Reply(Message),
    /// It waits (`Fail::Wait` or `Fail::WaitRoom`).
    Wait(Fail),
}

fn main(st: &'static Startup) -> ! {
    // SAFETY: init mapped the heap read-write for the server's life; nothing else uses it.
    unsafe { rt::heap::init(st.heap_base, st.heap_size) };
    let ep: Cap<Endpoint> = Cap::from_cptr(st.slots[file_slots::ENDPOINT]);
    let mut files = mount(st);
    let reserved = files
        .as_mut()
        .and_then(|f| f.cache.mem.reserve_slots(SAVED_REPLIES))
        .unwrap_or(0..0);
    let mut server = Server {
        files,
        saved: ReplySlots::new(reserved, pid::VM, SAVED_PER_CLIENT, SAVED_FOR_VM),
        cnode: Cap::from_cptr(st.slots[file_slots::CNODE]),
    };
    serve::run(ep, "file", StopHook::of(st), &mut server)
}

/// The server: the files (`None` without a disk: every request gets `ENODEV`), and the
/// slots its saved replies go to.
struct Server {
    files: Option<Files>,
    saved: ReplySlots,
    cnode: Cap<CNode>,
}

impl Serve for Server {
    type Note = ();

    fn handle(&mut self, r: &Reply) -> Option<(Message, ())> {
        if r.info().label == NOTIFICATION_LABEL {
            // The disk's interrupt (no caller to answer), or a task's message forged to look
            // like it (which gets an error; the interrupt work is harmless either way).
            if let Some(files) = self.files.as_mut() {
                files.interrupt();
            }
            return Some((serve::error(Errno::EINVAL), ()));
        }
        let Some(files) = self.files.as_mut() else {
            return Some((serve::error(Errno::ENODEV), ()));
        };
        let len = r.info().length.min(REGISTER_MRS);
        let mut req = Request {
            badge: r.badge,
            label: r.info().label,
            mrs: [0; MESSAGE_WORDS],
            len,
            length: r.info().length,
            data: None,
        };
        req.mrs[..len].copy_from_slice(&r.mrs[..len]);
        if r.info().length > REGISTER_MRS
            && req.label != Label::Write as u64
            && let Some(buf) = libmk::ipc_buffer()
        {
            // Paths lie past the registers, in the IPC buffer (a `Write`'s bytes are taken
            // from there as it runs). The message says how many words came: a request cut
            // short of its fields decodes as `Short`, never reads stale words.
            req.len = r.info().length.min(MESSAGE_WORDS);
            req.mrs[len..req.len].copy_from_slice(&buf.mrs[len..req.len]);
        }
        files.can_wait = self.saved.can_take(req.badge);
        match dispatch(files, &mut req) {
            Outcome::Reply(m) => Some((m, ())),
            Outcome::Wait(on) => park(files, &mut self.saved, self.cnode, on, req).map(|m| (m, ())),
        }
    }

    fn has_work(&self) -> bool {
        self.files.as_ref().is_some_and(Files::has_completions)
    }

    fn work(&mut self) {
        if let Some(files) = self.files.as_mut() {
            completions(files, &mut self.saved, self.cnode);
        }
    }

    /// The test hook `file.stop=N` (a bootarg) stops the server at the `N`th request, as if
    /// it had crashed (scenario `server-restart`), once the disk is done with the reads in
    /// flight.
    fn quiesce(&mut self) {
        if let Some(files) = self.files.as_mut() {
            files.quiesce();
        }
    }
}

/// Saves the caller of `req`, which waits (`on`); the reply to send now if it cannot wait
/// after all.
fn park(
    files: &mut Files,
    saved: &mut ReplySlots,
    cnode: Cap<CNode>,
    on: Fail,
    mut req: Request,
) -> Option<Message> {
    let Some(slot) = saved.take(req.badge) else {
        // Cannot happen (`can_wait` said there was a slot): answer synchronously.
        files.can_wait = false;
        return Some(run_now(files, &mut req));
    };
    if libmk::save_caller(slot).is_err() {
        saved.give(req.badge, slot);
        return Some(serve::error(Errno::EIO));
    }
    if let Err(p) = files.park(
        on,
        Parked {
            slot,
            req,
            gone: false,
        },
    ) {
        let mut p = p;
        files.can_wait = false;
        let m = run_now(files, &mut p.req);
        send_saved(cnode, saved, p, &m);
    }
    None
}

/// Runs `req` again, synchronously (`files.can_wait` is false): its reply.
fn run_now(files: &mut Files, req: &mut Request) -> Message {
    match dispatch(files, req) {
        Outcome::Reply(m) => m,
        Outcome::Wait(_) => serve::error(Errno::EIO),
    }
}

/// Collects the disk's completions and answers or runs again every request that waited for
/// them, until none is left (running them may read synchronously, which collects more).
fn completions(files: &mut Files, saved: &mut ReplySlots, cnode: Cap<CNode>) {
    loop {
        let done = files.completions();
        if done.is_empty() {
            return;
        }
        for (mut p, err) in done {
            let m = match err {
                Some(e) => serve::error(e),
                None if p.gone => serve::error(Errno::EIO),
                None => {
                    files.can_wait = true;
                    match dispatch(files, &mut p.req) {
                        Outcome::Reply(m) => m,
                        Outcome::Wait(on) => match files.park(on, p) {
                            Ok(()) => continue,
                            Err(back) => {
                                p = back;
                                files.can_wait = false;
                                run_now(files, &mut p.req)
                            }
                        },
                    }
                }
            };
            send_saved(cnode, saved, p, &m);
        }
    }
}

/// Answers the parked request through its saved reply, and frees the slot (a reply that
/// cannot be delivered is deleted: its caller, if still there, wakes with an error).
fn send_saved(cnode: Cap<CNode>, saved: &mut ReplySlots, p: Parked, m: &Message) {
    let _ = serve::send_saved(cnode, p.slot, m);
    saved.give(p.req.badge, p.slot);
}

/// Runs one request: its reply, or what it waits for. The FAT and directory sectors it
/// changed reach the disk before its answer (`Files::flush_metadata`, coalesced into runs);
/// a flush that fails turns a success into `EIO`.
fn dispatch(files: &mut Files, req: &mut Request) -> Outcome {
    let outcome = run(files, req);
    match (files.flush_metadata(), outcome) {
        (Err(e), Outcome::Reply(m)) if m.mrs[0] == 0 => Outcome::Reply(serve::error(e)),
        (_, outcome) => outcome,
    }
}

/// Runs one request (`dispatch`).
fn run(files: &mut Files, req: &mut Request) -> Outcome {
    // What tasks wrote under their growth reservations is in every size this request sees.
    files.fold_reserved();
    let badge = req.badge;
    let decoded = Serves::decode(req.label, &req.mrs[..req.len]);
    Outcome::Reply(match decoded {
        // MR1 = handle, MR2 = size: `OpenReply`'s layout.
        Ok(Serves::GetObject(g)) => serve::answer(
            &files
                .get_object(badge, g.fd, g.writable)
                .map(|(fd, size)| OpenReply { fd, size }),
        ),
        // A task may give back a handle vm never claimed (its mmap failed); the rest is
        // vm's.
        Ok(Serves::Object(ObjectRequest::Release { handle })) => {
            serve::answer(&files.object_release(badge, handle))
        }
        Ok(Serves::Object(_)) if badge != pid::VM => serve::error(Errno::EPERM),
        Ok(Serves::Object(r)) => return object(files, r),
        Ok(Serves::Control(r)) if r.init_only() && badge != pid::INIT => serve::error(Errno::EPERM),
        Ok(Serves::Control(r)) => control(files, r),
        Ok(Serves::File(r)) => return handle(files, req, r),
        Err(e) => serve::error(e.into()),
    })
}

proto::requests! {
    /// What the file server answers: the file calls, `GetObject`, the memory-object
    /// protocol (vm's, and a task's `Release` of a handle vm never claimed), and init's
    /// notices.
    enum Serves {
        File(FileRequest),
        GetObject(GetObject),
        Object(ObjectRequest),
        Control(ServerControl),
    }
}

/// A reply, or the request waits.
fn answer<T: proto::ReplyBody>(r: Result<T, Fail>) -> Outcome {
    match r {
        Ok(v) => Outcome::Reply(serve::answer(&Ok(v))),
        Err(Fail::No(e)) => Outcome::Reply(serve::error(e)),
        Err(on) => Outcome::Wait(on),
    }
}

/// The DMA pool, the disk, the volume; `None` (every request then gets `ENODEV`) when any
/// is missing, with the reason on the console.
fn mount(st: &Startup) -> Option<Files> {
    let dma: Cap<Frame> = Cap::from_cptr(st.slots[file_slots::DMA_FRAME]);
    let (pa, size) = match dma.phys_addr() {
        Ok(r) => r,
        Err(e) => {
            println!("file: no DMA frame: {e:?}");
            return None;
        }
    };
    // SAFETY: init mapped the DMA frame read-write at FILE_DMA_WINDOW (`dma_size` bytes) for
    // the server's life, and only the pool uses it; `pa` is the frame's physical address.
    unsafe { hal::init(FILE_DMA_WINDOW, pa, st.dma_size.min(size)) };
    let Some(disk) = Disk::probe(st) else {
        println!("file: no virtio-blk disk");
        return None;
    };
    let (transport, mib) = (disk.transport, disk.sectors() / 2048);
    match Files::mount(BlockDev::new(disk), frames::cache(st)) {
        Ok(files) => {
            let mode = if files.readonly() {
                "read-only"
            } else {
                "read-write"
            };
            println!(
                "file: virtio-blk disk on virtio-mmio transport {transport} ({mib} MiB, {mode}), FAT volume mounted, page cache of {} blocks",
                files.cache.budget
            );
            Some(files)
        }
        Err(e) => {
            println!("file: cannot mount the disk: {e}; no disk (ENODEV)");
            None
        }
    }
}

/// One request from task `req.badge`.
fn handle(files: &mut Files, req: &mut Request, fr: FileRequest) -> Outcome {
    let pid = req.badge;
    Outcome::Reply(match fr {
        FileRequest::Open { path, flags } => serve::answer(
            &files
                .open(pid, &path, flags)
                .map(|(fd, size)| OpenReply { fd, size }),
        ),
        FileRequest::Read { fd, offset, len } => {
            // Words, so that the copy out of the cache and into the message are word copies
            // (the bytes of a word are in memory order: little-endian, as `pack_data`).
            let mut data = [0u64; READ_MAX / 8];
            let want = usize::try_from(len).map_or(READ_MAX, |l| l.min(READ_MAX));
            // SAFETY: the bytes of `data`, which lives (and is not otherwise used) while
            // `bytes` does; any byte value is a valid u8 and every u8 pattern a valid u64.
            let bytes = unsafe {
                core::slice::from_raw_parts_mut(data.as_mut_ptr().cast::<u8>(), READ_MAX)
            };
            match files.read(pid, fd, offset, len, &mut bytes[..want]) {
                Ok(n) if files.is_stream(pid, fd) => {
                    let mut m = data_reply(&data, n);
                    // A pipe: the count is what there was (`READ_STREAM_MR`).
                    m.mrs[READ_STREAM_MR] = 1;
                    m.info.length = m.info.length.max(READ_STREAM_MR + 1);
                    m
                }
                Ok(n) => data_reply(&data, n),
                Err(Fail::No(e)) => serve::error(e),
                Err(on) => return Outcome::Wait(on),
            }
        }
        FileRequest::Write {
            fd,
            offset,
            len,
            total,
        } => {
            // The decoder checked `len <= READ_MAX`; the words must all have come. They are
            // kept with the request, should it wait.
            let len = len as usize;
            if req.data.is_none() {
                let mut data = alloc::vec![0u8; len];
                if let Err(e) = rt::ipc::write_data(req.length, len, &mut data) {
                    return Outcome::Reply(serve::error(e));
                }
                req.data = Some(data);
            }
            let data = req.data.as_deref().unwrap_or_default();
            return answer(files.write(pid, fd, offset, total, data).map(|n| n as u64));
        }
        FileRequest::Close { fd } => serve::answer(&files.close(pid, fd)),
        FileRequest::Stat { path } => {
            serve::answer(&files.stat(&path).map(|(size, is_dir)| StatReply {
                size,
                is_dir,
                is_fifo: false,
            }))
        }
        FileRequest::Lseek { fd, offset, whence } => {
            serve::answer(&files.lseek(pid, fd, offset, whence))
        }
        FileRequest::Fstat { fd } => serve::answer(&files.fstat(pid, fd).map(|size| StatReply {
            size,
            is_dir: false,
            is_fifo: files.is_pipe(pid, fd),
        })),
        FileRequest::Ftruncate { fd, len } => serve::answer(&files.ftruncate(pid, fd, len)),
        FileRequest::Unlink { path } => serve::answer(&files.unlink(&path)),
        // Counters: past the registers, in the IPC buffer.
        FileRequest::FileStats => serve::answer(&Ok(files.stats())),
        FileRequest::Mkdir { path } => serve::answer(&files.mkdir(&path)),
        FileRequest::Rmdir { path } => serve::answer(&files.rmdir(&path)),
        FileRequest::Rename { from, to } => serve::answer(&files.rename(&from, &to)),
        FileRequest::ReadDir { path, cookie } => dir_reply(files, &path, cookie),
        FileRequest::Span {
            fd,
            offset,
            len,
            write,
        } => {
            return answer(
                files
                    .span(pid, fd, offset, len, write)
                    .map(|(at, len, size)| SpanReply { at, len, size }),
            );
        }
        FileRequest::Window { fd } => serve::answer(
            &files
                .get_window(pid, fd)
                .map(|(fd, size)| OpenReply { fd, size }),
        ),
        FileRequest::Grow {
            fd,
            offset,
            len,
            cell,
        } => {
            return answer(files.grow(pid, fd, offset, len, cell).map(
                |(at, len, size, limit, cell)| GrowReply {
                    at,
                    len,
                    size,
                    limit,
                    cell,
                },
            ));
        }
        FileRequest::SizePage => serve::answer(
            &files
                .size_page(pid)
                .map(|(fd, size)| OpenReply { fd, size }),
        ),
        FileRequest::Pipe { flags } => serve::answer(
            &files
                .pipe(pid, flags)
                .map(|(read, write)| PipeReply { read, write }),
        ),
        FileRequest::Dup { fd } => serve::answer(&files.dup(pid, fd)),
        FileRequest::Dup2 { old, new } => serve::answer(&files.dup2(pid, old, new)),
        FileRequest::Redirected => serve::answer(&Ok(files.redirected(pid))),
        FileRequest::DirectBuffer { fd } => serve::answer(
            &files
                .direct_buffer(pid, fd)
                .map(|(fd, size)| OpenReply { fd, size }),
        ),
        FileRequest::DirectRead { fd, offset, want } => {
            serve::answer(&files.direct_read_buffer(pid, fd, offset, want))
        }
        FileRequest::DirectWrite { fd, offset, total } => {
            serve::answer(&files.direct_write_buffer(pid, fd, offset, total))
        }
    })
}

/// One memory-object request from vm. `ObjectPage`'s reply carries the block's frame
/// capability (the kernel gives vm a copy derived from the server's, which the server
/// revokes to take the block's mappings back).
fn object(files: &mut Files, req: ObjectRequest) -> Outcome {
    Outcome::Reply(match req {
        ObjectRequest::Page {
            handle,
            block,
            write,
        } => match files.object_page(handle, block, write) {
            Ok((slot, valid)) => {
                let Some(frame) = files.cache.mem.frame(slot) else {
                    return Outcome::Reply(serve::error(Errno::EIO));
                };
                let mut m = serve::answer(&Ok(valid));
                if let Some(buf) = libmk::ipc_buffer() {
                    buf.send_cap = frame.cptr();
                    m.info.caps = 1;
                }
                m
            }
            Err(Fail::No(e)) => serve::error(e),
            Err(on) => return Outcome::Wait(on),
        },
        ObjectRequest::Dirty { handle, block } => serve::answer(&files.object_dirty(handle, block)),
        ObjectRequest::Sync {
            handle,
            first,
            count,
        } => serve::answer(&files.object_sync(handle, first, count)),
        ObjectRequest::Release { handle } => serve::answer(&files.object_release(pid::VM, handle)),
        ObjectRequest::Claim { handle, pid } => serve::answer(&files.claim(handle, pid)),
    })
}

/// One of init's notices (`proto::task`), or the descriptor count.
fn control(files: &mut Files, req: ServerControl) -> Message {
    match req {
        // What it left waiting is answered into nothing, never run again (`Waiter`).
        ServerControl::TaskExit { pid } => serve::answer(&files.task_exit(pid)),
        ServerControl::TaskFork { parent, child } => serve::answer(&files.task_fork(parent, child)),
        ServerControl::TaskExec { pid } => serve::answer(&files.task_exec(pid)),
        ServerControl::SyncAll => {
            let before = files.cache.stats.written_back;
            let r = files.sync_all();
            let n = files.cache.stats.written_back - before;
            if n > 0 {
                println!("file: sync: {n} dirty blocks written back");
            }
            serve::answer(&r)
        }
        ServerControl::Descriptors => {
            let (fds, objects) = files.descriptors();
            serve::answer(&Ok(DescriptorCount { fds, objects }))
        }
    }
}

/// `Read`'s reply: MR0 = 0, MR1 = the count `n`, the first `n` bytes of `data` (zero past
/// them, as `pack_data` pads) in MR6.. of the IPC buffer.
fn data_reply(data: &[u64; READ_MAX / 8], n: usize) -> Message {
    let mut m = serve::answer(&Ok(n as u64));
    if n == 0 {
        return m;
    }
    let Some(buf) = libmk::ipc_buffer() else {
        return serve::error(Errno::EIO);
    };
    let words = n.div_ceil(8);
    buf.mrs[READ_DATA_MR..READ_DATA_MR + words].copy_from_slice(&data[..words]);
    m.info.length = READ_DATA_MR + words;
    m
}

/// `ReadDir`'s reply: its records in MR6.. (as `Read`'s data).
fn dir_reply(files: &Files, path: &proto::file::Path, cookie: u64) -> Message {
    let mut data = [0u8; READ_MAX];
    let (n, next) = match files.read_dir(path, cookie, &mut data) {
        Ok(r) => r,
        Err(e) => return serve::error(e),
    };
    let mut m = serve::answer(&Ok(proto::ReadDirReply {
        len: n as u64,
        next,
    }));
    if n == 0 {
        return m;
    }
    let Some(buf) = libmk::ipc_buffer() else {
        return serve::error(Errno::EIO);
    };
    let words = proto::file::pack_data(&data[..n], &mut buf.mrs[READ_DATA_MR..]);
    m.info.length = READ_DATA_MR + words;
    m
}
