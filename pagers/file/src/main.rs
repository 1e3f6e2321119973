//! The file server (ARCHITECTURE.md §5's `file`): finds the virtio-blk disk among the
//! virtio-mmio transports, mounts the FAT volume on its first partition, keeps the page
//! cache that is the one copy of file data, and serves the file calls of `proto::file` to
//! tasks (badged with their pid), `GetObject` to tasks and the memory-object requests of
//! `proto::object` to vm (badged `pid::VM`). docs/pagers.md, "The file server".
#![no_std]
#![no_main]

extern crate alloc;

mod cache;
mod disk;
mod fs;
mod hal;

use abi::message::{NULL_CPTR, REGISTER_MRS};
use disk::{BlockDev, Disk};
use fs::Files;
use libmk::{Cap, Endpoint, Frame, Message};
use proto::file::{READ_DATA_MR, READ_MAX};
use proto::object::{GetObject, ObjectRequest};
use proto::startup::{FILE_DMA_WINDOW, Startup, file_slots};
use proto::{
    DescriptorCount, Errno, FileRequest, Label, OpenReply, ServerControl, StatReply, Wire,
    encode_reply, pid,
};
use rt::println;

rt::server_entry!(main);

fn main(st: &'static Startup) -> ! {
    // SAFETY: init mapped the heap read-write for the server's life; nothing else uses it.
    unsafe { rt::heap::init(st.heap_base, st.heap_size) };
    let ep: Cap<Endpoint> = Cap::from_cptr(st.slots[file_slots::ENDPOINT]);
    let mut files = mount(st);
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
        // The test hook `file.stop=N` (a bootarg): stop at the `N`th request, as if the
        // server had crashed (scenario `server-restart`).
        hook.request("file", ep);
        let len = r.info().length.min(REGISTER_MRS);
        let (label, mrs) = (r.info().label, &r.mrs[..len]);
        let Some(files) = files.as_mut() else {
            reply = Some(wire(&encode_reply::<()>(&Err(Errno::ENODEV))));
            continue;
        };
        reply = Some(match Label::try_from(label) {
            Ok(Label::GetObject) => match GetObject::decode(label, mrs) {
                // MR1 = handle, MR2 = size: `OpenReply`'s layout.
                Ok(g) => wire(&encode_reply(
                    &files
                        .get_object(r.badge, g.fd, g.writable)
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
                    wire(&encode_reply(&files.object_release(r.badge, handle)))
                }
                Ok(_) if r.badge != pid::VM => wire(&encode_reply::<()>(&Err(Errno::EPERM))),
                Ok(req) => object(files, req),
                Err(e) => wire(&encode_reply::<()>(&Err(Errno::from(e)))),
            },
            Ok(
                Label::TaskExit
                | Label::TaskFork
                | Label::TaskExec
                | Label::SyncAll
                | Label::Descriptors,
            ) => match ServerControl::decode(label, mrs) {
                Ok(req) if req.init_only() && r.badge != pid::INIT => {
                    wire(&encode_reply::<()>(&Err(Errno::EPERM)))
                }
                Ok(req) => control(files, req),
                Err(e) => wire(&encode_reply::<()>(&Err(Errno::from(e)))),
            },
            _ => match FileRequest::decode(label, mrs) {
                Ok(req) => handle(files, r.badge, req, r.info().length),
                Err(e) => wire(&encode_reply::<()>(&Err(Errno::from(e)))),
            },
        });
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
    match Files::mount(BlockDev::new(disk), cache::Cache::new(st)) {
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

/// One request from task `pid` (`length`: the message registers it came with).
fn handle(files: &mut Files, pid: u64, req: FileRequest, length: usize) -> Message {
    match req {
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
                Err(e) => wire(&encode_reply::<()>(&Err(e))),
            }
        }
        FileRequest::Write {
            fd,
            offset,
            len,
            total,
        } => {
            // The decoder checked `len <= READ_MAX`; the words must all have come.
            let len = len as usize;
            let mut data = [0u8; READ_MAX];
            if let Err(e) = rt::ipc::write_data(length, len, &mut data) {
                return wire(&encode_reply::<()>(&Err(e)));
            }
            wire(&encode_reply(
                &files
                    .write(pid, fd, offset, total, &data[..len])
                    .map(|n| n as u64),
            ))
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
        // Eleven counters: past the registers, in the IPC buffer.
        FileRequest::FileStats => rt::ipc::message(&encode_reply(&Ok(files.stats()))),
    }
}

/// One memory-object request from vm. `ObjectPage`'s reply carries the block's frame
/// capability (the kernel gives vm a copy derived from the server's, which the server
/// revokes to take the block's mappings back).
fn object(files: &mut Files, req: ObjectRequest) -> Message {
    match req {
        ObjectRequest::Page {
            handle,
            block,
            write,
        } => match files.object_page(handle, block, write) {
            Ok((slot, valid)) => {
                let mut m = wire(&encode_reply(&Ok(valid)));
                if let Some(buf) = libmk::ipc_buffer() {
                    buf.send_cap = files.cache.slots[slot].frame.cptr();
                    m.info.caps = 1;
                }
                m
            }
            Err(e) => wire(&encode_reply::<()>(&Err(e))),
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
    }
}

/// One of init's notices (`proto::task`), or the descriptor count.
fn control(files: &mut Files, req: ServerControl) -> Message {
    match req {
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
