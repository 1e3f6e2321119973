//! The file server (first slice of ARCHITECTURE.md §5's `file`): finds the virtio-blk disk
//! among the virtio-mmio transports, mounts the FAT volume on its first partition, and
//! serves `Open`, `Read`, `Close` and `Stat` (`proto::file`) to tasks, badged with their pid.
//! Read-only; no page cache yet (docs/pagers.md, "The file server").
#![no_std]
#![no_main]

extern crate alloc;

mod disk;
mod fs;
mod hal;

use abi::message::{MAX_MRS, NULL_CPTR, REGISTER_MRS};
use disk::{BlockDev, Disk};
use fs::Files;
use libmk::{Cap, Endpoint, Frame, Message};
use proto::file::{READ_DATA_MR, READ_MAX, pack_data};
use proto::startup::{FILE_DMA_WINDOW, Startup, file_slots};
use proto::{Errno, FileRequest, OpenReply, StatReply, Wire, encode_reply};
use rt::println;

rt::server_entry!(main);

fn main(st: &'static Startup) -> ! {
    // SAFETY: init mapped the heap read-write for the server's life; nothing else uses it.
    unsafe { rt::heap::init(st.heap_base, st.heap_size) };
    let ep: Cap<Endpoint> = Cap::from_cptr(st.slots[file_slots::ENDPOINT]);
    let mut files = mount(st);
    let mut reply: Option<Message> = None;
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
        let len = r.info().length.min(REGISTER_MRS);
        let request = FileRequest::decode(r.info().label, &r.mrs[..len]);
        reply = Some(match (request, files.as_mut()) {
            (Err(e), _) => wire(&encode_reply::<()>(&Err(Errno::from(e)))),
            (Ok(_), None) => wire(&encode_reply::<()>(&Err(Errno::ENODEV))),
            (Ok(req), Some(files)) => handle(files, r.badge, req),
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
    match Files::mount(BlockDev::new(disk)) {
        Ok(files) => {
            println!(
                "file: virtio-blk disk on virtio-mmio transport {transport} ({mib} MiB), FAT volume mounted"
            );
            Some(files)
        }
        Err(e) => {
            println!("file: cannot mount the disk: {e:?}");
            None
        }
    }
}

/// One request from task `pid`.
fn handle(files: &mut Files, pid: u64, req: FileRequest) -> Message {
    match req {
        FileRequest::Open { path, flags } => wire(&encode_reply(
            &files
                .open(pid, &path, flags)
                .map(|(fd, size)| OpenReply { fd, size }),
        )),
        FileRequest::Read { fd, offset, len } => {
            let mut data = [0u8; READ_MAX];
            let want = usize::try_from(len).map_or(READ_MAX, |l| l.min(READ_MAX));
            match files.read(pid, fd, offset, &mut data[..want]) {
                Ok(n) => data_reply(&data[..n]),
                Err(e) => wire(&encode_reply::<()>(&Err(e))),
            }
        }
        FileRequest::Close { fd } => wire(&encode_reply(&files.close(pid, fd))),
        FileRequest::Stat { path } => wire(&encode_reply(
            &files
                .stat(&path)
                .map(|(size, is_dir)| StatReply { size, is_dir }),
        )),
    }
}

/// A reply message from its wire form (registers only).
fn wire(w: &Wire) -> Message {
    Message::new(w.label(), w.mrs())
}

/// `Read`'s reply: MR0 = 0, MR1 = the count, the bytes in MR6.. of the IPC buffer.
fn data_reply(bytes: &[u8]) -> Message {
    let mut m = wire(&encode_reply(&Ok(bytes.len() as u64)));
    if bytes.is_empty() {
        return m;
    }
    let Some(buf) = libmk::ipc_buffer() else {
        return wire(&encode_reply::<()>(&Err(Errno::EIO)));
    };
    let words = pack_data(bytes, &mut buf.mrs[READ_DATA_MR..MAX_MRS]);
    m.info.length = READ_DATA_MR + words;
    m
}
