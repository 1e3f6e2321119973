//! The file server's receive loop (ARCHITECTURE.md §5's `file`): finds the virtio-blk disk
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
use abi::message::{NOTIFICATION_LABEL, NULL_CPTR, REGISTER_MRS};
use alloc::vec::Vec;
use file::blockdev::BlockDev;
use file::fs::Fail;
use file::pending::ReplySlots;
use file::platform::Waiter;
use libmk::{CNode, Cap, Endpoint, Frame, Message, SavedReply};
use proto::file::{READ_DATA_MR, READ_MAX};
use proto::object::{GetObject, ObjectRequest};
use proto::startup::{FILE_DMA_WINDOW, Startup, file_slots};
use proto::{
    DescriptorCount, Errno, FileRequest, Label, OpenReply, ServerControl, StatReply, Wire,
    encode_reply, pid,
};
use rt::println;

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
    mrs: [u64; REGISTER_MRS],
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
    let cnode: Cap<CNode> = Cap::from_cptr(st.slots[file_slots::CNODE]);
    let mut files = mount(st);
    let reserved = files
        .as_mut()
        .and_then(|f| f.cache.mem.reserve_slots(SAVED_REPLIES))
        .unwrap_or(0..0);
    let mut saved = ReplySlots::new(reserved, pid::VM, SAVED_PER_CLIENT, SAVED_FOR_VM);
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
        if r.info().label == NOTIFICATION_LABEL {
            // The disk's interrupt (no caller to answer), or a task's message forged to look
            // like it (which gets an error; the interrupt work is harmless either way).
            if let Some(files) = files.as_mut() {
                files.interrupt();
            }
            reply = Some(wire(&encode_reply::<()>(&Err(Errno::EINVAL))));
        } else {
            // The test hook `file.stop=N` (a bootarg): stop at the `N`th request, as if the
            // server had crashed (scenario `server-restart`), once the disk is done with
            // the reads in flight.
            let hook_len = r.info().length.min(REGISTER_MRS);
            if hook.stops_next(r.info().label, &r.mrs[..hook_len])
                && let Some(files) = files.as_mut()
            {
                files.quiesce();
            }
            hook.request("file", ep, r.info().label, &r.mrs[..hook_len]);
            let Some(files) = files.as_mut() else {
                reply = Some(wire(&encode_reply::<()>(&Err(Errno::ENODEV))));
                continue;
            };
            let len = r.info().length.min(REGISTER_MRS);
            let mut req = Request {
                badge: r.badge,
                label: r.info().label,
                mrs: [0; REGISTER_MRS],
                len,
                length: r.info().length,
                data: None,
            };
            req.mrs[..len].copy_from_slice(&r.mrs[..len]);
            files.can_wait = saved.can_take(req.badge);
            reply = match dispatch(files, &mut req) {
                Outcome::Reply(m) => Some(m),
                Outcome::Wait(on) => park(files, &mut saved, cnode, on, req),
            };
        }
        if let Some(files) = files.as_mut()
            && files.has_completions()
        {
            // The caller first: its reply may be in the IPC buffer, which the saved replies
            // use too.
            if let Some(m) = reply.take() {
                let _ = libmk::reply(&m);
            }
            completions(files, &mut saved, cnode);
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
        return Some(wire(&encode_reply::<()>(&Err(Errno::EIO))));
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
        Outcome::Wait(_) => wire(&encode_reply::<()>(&Err(Errno::EIO))),
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
                Some(e) => wire(&encode_reply::<()>(&Err(e))),
                None if p.gone => wire(&encode_reply::<()>(&Err(Errno::EIO))),
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
    if Cap::<SavedReply>::from_cptr(p.slot).send(m).is_err() {
        let _ = cnode.delete(p.slot);
    }
    saved.give(p.req.badge, p.slot);
}

/// Runs one request: its reply, or what it waits for.
fn dispatch(files: &mut Files, req: &mut Request) -> Outcome {
    let (label, badge) = (req.label, req.badge);
    let mrs = &req.mrs[..req.len];
    Outcome::Reply(match Label::try_from(label) {
        Ok(Label::GetObject) => match GetObject::decode(label, mrs) {
            // MR1 = handle, MR2 = size: `OpenReply`'s layout.
            Ok(g) => wire(&encode_reply(
                &files
                    .get_object(badge, g.fd, g.writable)
                    .map(|(fd, size)| OpenReply { fd, size }),
            )),
            Err(e) => wire(&encode_reply::<()>(&Err(Errno::from(e)))),
        },
        Ok(
            Label::ObjectPage
            | Label::ObjectDirty
            | Label::ObjectSync
            | Label::ObjectRelease
            | Label::ObjectClaim,
        ) => match ObjectRequest::decode(label, mrs) {
            // A task may give back a handle vm never claimed (its mmap failed); the rest
            // is vm's.
            Ok(ObjectRequest::Release { handle }) => {
                wire(&encode_reply(&files.object_release(badge, handle)))
            }
            Ok(_) if badge != pid::VM => wire(&encode_reply::<()>(&Err(Errno::EPERM))),
            Ok(req) => return object(files, req),
            Err(e) => wire(&encode_reply::<()>(&Err(Errno::from(e)))),
        },
        Ok(
            Label::TaskExit
            | Label::TaskFork
            | Label::TaskExec
            | Label::SyncAll
            | Label::Descriptors,
        ) => match ServerControl::decode(label, mrs) {
            Ok(req) if req.init_only() && badge != pid::INIT => {
                wire(&encode_reply::<()>(&Err(Errno::EPERM)))
            }
            Ok(req) => control(files, req),
            Err(e) => wire(&encode_reply::<()>(&Err(Errno::from(e)))),
        },
        _ => match FileRequest::decode(label, mrs) {
            Ok(r) => return handle(files, req, r),
            Err(e) => wire(&encode_reply::<()>(&Err(Errno::from(e)))),
        },
    })
}

/// A reply, or the request waits.
fn answer<T: proto::ReplyBody>(r: Result<T, Fail>) -> Outcome {
    match r {
        Ok(v) => Outcome::Reply(wire(&encode_reply(&Ok(v)))),
        Err(Fail::No(e)) => Outcome::Reply(wire(&encode_reply::<()>(&Err(e)))),
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
        FileRequest::Open { path, flags } => wire(&encode_reply(
            &files
                .open(pid, &path, flags)
                .map(|(fd, size)| OpenReply { fd, size }),
        )),
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
                Ok(n) => data_reply(&data, n),
                Err(Fail::No(e)) => wire(&encode_reply::<()>(&Err(e))),
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
                    return Outcome::Reply(wire(&encode_reply::<()>(&Err(e))));
                }
                req.data = Some(data);
            }
            let data = req.data.as_deref().unwrap_or_default();
            return answer(files.write(pid, fd, offset, total, data).map(|n| n as u64));
        }
        FileRequest::Close { fd } => wire(&encode_reply(&files.close(pid, fd))),
        FileRequest::Stat { path } => wire(&encode_reply(
            &files
                .stat(&path)
                .map(|(size, is_dir)| StatReply { size, is_dir }),
        )),
        FileRequest::Lseek { fd, offset, whence } => {
            wire(&encode_reply(&files.lseek(pid, fd, offset, whence)))
        }
        FileRequest::Fstat { fd } => {
            wire(&encode_reply(&files.fstat(pid, fd).map(|size| StatReply {
                size,
                is_dir: false,
            })))
        }
        FileRequest::Ftruncate { fd, len } => wire(&encode_reply(&files.ftruncate(pid, fd, len))),
        FileRequest::Unlink { path } => wire(&encode_reply(&files.unlink(&path))),
        // Counters: past the registers, in the IPC buffer.
        FileRequest::FileStats => rt::ipc::message(&encode_reply(&Ok(files.stats()))),
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
                    return Outcome::Reply(wire(&encode_reply::<()>(&Err(Errno::EIO))));
                };
                let mut m = wire(&encode_reply(&Ok(valid)));
                if let Some(buf) = libmk::ipc_buffer() {
                    buf.send_cap = frame.cptr();
                    m.info.caps = 1;
                }
                m
            }
            Err(Fail::No(e)) => wire(&encode_reply::<()>(&Err(e))),
            Err(on) => return Outcome::Wait(on),
        },
        ObjectRequest::Dirty { handle, block } => {
            wire(&encode_reply(&files.object_dirty(handle, block)))
        }
        ObjectRequest::Sync {
            handle,
            first,
            count,
        } => wire(&encode_reply(&files.object_sync(handle, first, count))),
        ObjectRequest::Release { handle } => {
            wire(&encode_reply(&files.object_release(pid::VM, handle)))
        }
        ObjectRequest::Claim { handle, pid } => wire(&encode_reply(&files.claim(handle, pid))),
    })
}

/// One of init's notices (`proto::task`), or the descriptor count.
fn control(files: &mut Files, req: ServerControl) -> Message {
    match req {
        // What it left waiting is answered into nothing, never run again (`Waiter`).
        ServerControl::TaskExit { pid } => wire(&encode_reply(&files.task_exit(pid))),
        ServerControl::TaskFork { parent, child } => {
            wire(&encode_reply(&files.task_fork(parent, child)))
        }
        ServerControl::TaskExec { pid } => wire(&encode_reply(&files.task_exec(pid))),
        ServerControl::SyncAll => {
            let before = files.cache.stats.written_back;
            let r = files.sync_all();
            let n = files.cache.stats.written_back - before;
            if n > 0 {
                println!("file: sync: {n} dirty blocks written back");
            }
            wire(&encode_reply(&r))
        }
        ServerControl::Descriptors => {
            let (fds, objects) = files.descriptors();
            wire(&encode_reply(&Ok(DescriptorCount { fds, objects })))
        }
    }
}

/// A reply message from its wire form (registers only).
fn wire(w: &Wire) -> Message {
    Message::new(w.label(), w.mrs())
}

/// `Read`'s reply: MR0 = 0, MR1 = the count `n`, the first `n` bytes of `data` (zero past
/// them, as `pack_data` pads) in MR6.. of the IPC buffer.
fn data_reply(data: &[u64; READ_MAX / 8], n: usize) -> Message {
    let mut m = wire(&encode_reply(&Ok(n as u64)));
    if n == 0 {
        return m;
    }
    let Some(buf) = libmk::ipc_buffer() else {
        return wire(&encode_reply::<()>(&Err(Errno::EIO)));
    };
    let words = n.div_ceil(8);
    buf.mrs[READ_DATA_MR..READ_DATA_MR + words].copy_from_slice(&data[..words]);
    m.info.length = READ_DATA_MR + words;
    m
}
