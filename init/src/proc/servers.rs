//! init as a client of the file and shm servers: programs read from the disk for `spawn`
//! and `exec` (their headers read, the file handed to vm as a memory object), and init's
//! notices about tasks (`proto::task`: exit, fork, and the sync before power-off).

use crate::alloc::{Alloc, CNODE};
use abi::object::CapRights;
use kernel_core::elf::{UserImage, parse_user_image_head};
use libmk::{Cap, Endpoint};
use proto::file::open_flags::RDONLY;
use proto::file::{Path, READ_MAX};
use proto::object::{GetObject, ObjectRequest};
use proto::{Errno, FileRequest, OpenReply, PAGE_SIZE, ReplyBody, ServerControl, pid};

/// Where programs live on the disk.
pub const BIN_DIR: &str = "bin/";
/// Bytes of a program init reads to find its headers (the linker puts the ELF header and
/// the program headers at the start of the first page).
const HEAD_BYTES: usize = PAGE_SIZE as usize;

/// Where an ELF64 header says its program header table ends (`e_phoff + e_phnum *
/// e_phentsize`), or 0 when `head` is too short to say.
fn headers_end(head: &[u8]) -> usize {
    let word = |at: usize, n: usize| {
        head.get(at..at + n).map_or(0, |b| {
            b.iter().rev().fold(0usize, |acc, &x| {
                acc.saturating_mul(256).saturating_add(usize::from(x))
            })
        })
    };
    // e_phoff at 0x20 (8 bytes), e_phentsize at 0x36, e_phnum at 0x38 (2 bytes each).
    word(0x20, 8).saturating_add(word(0x36, 2).saturating_mul(word(0x38, 2)))
}

/// A program on the disk, open for init, ready to be mapped.
pub struct DiskProgram {
    /// init's descriptor (closed once the segments are mapped).
    pub fd: u64,
    /// init's handle on the file's memory object (vm claims it with the first segment).
    pub handle: u64,
    /// Whether vm mapped a segment of it (and so holds the handle).
    pub claimed: core::cell::Cell<bool>,
    pub image: UserImage,
}

/// init's capabilities to the file and shm servers, badged `pid::INIT`.
pub struct Clients {
    file: Option<Cap<Endpoint>>,
    shm: Option<Cap<Endpoint>>,
}

impl Clients {
    /// Mints init's badged copies of the servers' endpoints.
    pub fn new(alloc: &mut Alloc, file: Option<Cap<Endpoint>>, shm: Option<Cap<Endpoint>>) -> Self {
        let mut badged = |ep: Option<Cap<Endpoint>>| {
            let ep = ep?;
            let slot = alloc.slot().ok()?;
            match CNODE.mint(slot, CNODE, ep.cptr(), CapRights::WRITE, pid::INIT) {
                Ok(()) => Some(Cap::from_cptr(slot)),
                Err(_) => {
                    alloc.free_slot(slot);
                    None
                }
            }
        };
        Self {
            file: badged(file),
            shm: badged(shm),
        }
    }

    /// Forgets init's capability to a server that failed (its endpoint was revoked: the
    /// slot is empty now).
    pub fn forget(&mut self, alloc: &mut Alloc, server: u64) {
        let old = match server {
            pid::FILE => self.file.take(),
            pid::SHM => self.shm.take(),
            _ => None,
        };
        if let Some(old) = old {
            let _ = CNODE.delete(old.cptr());
            alloc.free_slot(old.cptr());
        }
    }

    /// init's capability to a new instance of the file server (restarted after a failure).
    pub fn set_file(&mut self, alloc: &mut Alloc, ep: Cap<Endpoint>) {
        let slot = match alloc.slot() {
            Ok(s) => s,
            Err(_) => return,
        };
        match CNODE.mint(slot, CNODE, ep.cptr(), CapRights::WRITE, pid::INIT) {
            Ok(()) => {
                if let Some(old) = self.file.replace(Cap::from_cptr(slot)) {
                    let _ = CNODE.delete(old.cptr());
                    alloc.free_slot(old.cptr());
                }
            }
            Err(_) => alloc.free_slot(slot),
        }
    }

    fn call<T: ReplyBody>(ep: Option<Cap<Endpoint>>, w: &proto::Wire) -> Result<T, Errno> {
        rt::ipc::call(ep.ok_or(Errno::ENODEV)?, w)
    }

    /// Opens `bin/<name>` and checks it is a program: `ENOENT` when there is no such file
    /// (or no disk: `ENODEV`), `ENOEXEC` when it is not a valid user program.
    pub fn open_program(&self, name: &str) -> Result<DiskProgram, Errno> {
        let ep = self.file.ok_or(Errno::ENODEV)?;
        // A program is a name in `bin/`, not a path that leads out of it.
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(Errno::ENOENT);
        }
        let path = liballoc::format!("{BIN_DIR}{name}");
        let path = Path::new(&path).map_err(|_| Errno::ENAMETOOLONG)?;
        let open = FileRequest::Open {
            path,
            flags: RDONLY,
        };
        let OpenReply { fd, size } = rt::ipc::call(ep, &open.encode())?;
        let result = self.read_program(ep, fd, size);
        if result.is_err() {
            self.close(fd);
        }
        result
    }

    fn read_program(&self, ep: Cap<Endpoint>, fd: u64, size: u64) -> Result<DiskProgram, Errno> {
        let mut head = [0u8; HEAD_BYTES];
        let size_cap = usize::try_from(size).map_or(HEAD_BYTES, |s| s.min(HEAD_BYTES));
        // One message's worth first (it holds the headers of our programs), more only if
        // the program header table reaches further.
        let mut want = size_cap.min(READ_MAX);
        let mut got = 0;
        while got < want {
            let n = rt::file::read_once_on(ep, fd, got as u64, &mut head[got..want])?;
            if n == 0 {
                break;
            }
            got += n;
            if got == want && want < size_cap {
                want = headers_end(&head[..got]).clamp(want, size_cap);
            }
        }
        let image = parse_user_image_head(&mut head[..got], size).map_err(|_| Errno::ENOEXEC)?;
        let get = GetObject {
            fd,
            writable: false,
        };
        let OpenReply { fd: handle, .. } = rt::ipc::call(ep, &get.encode())?;
        Ok(DiskProgram {
            fd,
            handle,
            claimed: core::cell::Cell::new(false),
            image,
        })
    }

    /// Closes init's descriptor (the object stays open while vm maps it).
    pub fn close(&self, fd: u64) {
        let _ = Self::call::<()>(self.file, &FileRequest::Close { fd }.encode());
    }

    /// Gives back init's handle, which vm never claimed (no segment was mapped).
    pub fn release_handle(&self, handle: u64) {
        let _ = Self::call::<()>(self.file, &ObjectRequest::Release { handle }.encode());
    }

    /// Tells both servers about a task (exit or fork); a server that is missing or refuses
    /// is reported, not fatal.
    pub fn notice(&self, req: ServerControl) {
        for (name, ep) in [("file", self.file), ("shm", self.shm)] {
            if let Some(ep) = ep
                && let Err(e) = rt::ipc::call::<()>(ep, &req.encode())
            {
                rt::println!("init: {name} server refused {req:?}: {e}");
            }
        }
    }

    /// `TaskFork` to both servers: the first refusal (a server full of descriptors) is
    /// returned, after the servers that took it are told the child is gone (`TaskExit`).
    /// A server without a disk (`ENODEV`) has nothing to copy.
    pub fn fork_descriptors(&self, parent: u64, child: u64) -> Result<(), Errno> {
        let req = ServerControl::TaskFork { parent, child };
        for (name, ep) in [("file", self.file), ("shm", self.shm)] {
            if let Some(ep) = ep {
                match rt::ipc::call::<()>(ep, &req.encode()) {
                    Ok(()) | Err(Errno::ENODEV) => {}
                    Err(e) => {
                        rt::println!("init: {name} server refused {req:?}: {e}");
                        self.notice(ServerControl::TaskExit { pid: child });
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// Asks the file server to write every dirty block back (before power-off).
    pub fn sync_all(&self) -> Result<(), Errno> {
        match self.file {
            Some(ep) => match rt::ipc::call::<()>(ep, &ServerControl::SyncAll.encode()) {
                Err(Errno::ENODEV) => Ok(()), // no disk, nothing to write
                r => r,
            },
            None => Ok(()),
        }
    }
}
