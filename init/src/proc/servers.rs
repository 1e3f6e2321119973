//! init as a client of the file and shm servers: its capabilities to them, and the requests
//! that read programs from the disk for `spawn` and `exec` (their headers read, the file
//! handed to vm as a memory object). init sends them, and its notices about tasks
//! (`proto::task`), through its proxies (`proxy.rs`), never waiting for an answer itself.

use super::proxy::{ANSWER_WORDS, Server};
use crate::alloc::{Alloc, CNODE};
use abi::object::CapRights;
use kernel_core::elf::{UserImage, parse_user_image_head};
use liballoc::vec::Vec;
use libmk::{Cap, Endpoint};
use proto::file::open_flags::RDONLY;
use proto::file::{PATH_MAX, Path, READ_DATA_MR};
use proto::object::{GetObject, ObjectRequest};
use proto::{Errno, FileRequest, MESSAGE_WORDS, PAGE_SIZE, Wire, pid};

/// Where programs live on the disk.
pub const BIN_DIR: &str = "bin/";
/// Bytes of a program init reads to find its headers (the linker puts the ELF header and
/// the program headers at the start of the first page).
const HEAD_BYTES: usize = PAGE_SIZE as usize;
/// Bytes of one of init's `Read`s: what a proxy's answer holds (`proxy::ANSWER_WORDS`).
const READ_CHUNK: usize = (ANSWER_WORDS - READ_DATA_MR) * 8;

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
    console: Option<Cap<Endpoint>>,
}

impl Clients {
    /// Mints init's badged copies of the servers' endpoints.
    pub fn new(
        alloc: &mut Alloc,
        file: Option<Cap<Endpoint>>,
        shm: Option<Cap<Endpoint>>,
        console: Option<Cap<Endpoint>>,
    ) -> Self {
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
            console: badged(console),
        }
    }

    /// Forgets init's capability to a server that failed (its endpoint was revoked: the
    /// slot is empty now).
    pub fn forget(&mut self, alloc: &mut Alloc, server: u64) {
        let old = match server {
            pid::FILE => self.file.take(),
            pid::SHM => self.shm.take(),
            pid::CONSOLE => self.console.take(),
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

    /// init's capability to `server` (`None`: it did not start, or failed).
    pub fn ep(&self, server: Server) -> Option<Cap<Endpoint>> {
        match server {
            Server::File => self.file,
            Server::Shm => self.shm,
            Server::Console => self.console,
        }
    }
}

/// The `Open` of program `name` (`bin/<name>`); `ENOENT` for a name that is no program's
/// (one that leads out of `bin/`, or empty), `ENAMETOOLONG` for one too long.
pub fn open_program(name: &str) -> Result<Wire<MESSAGE_WORDS>, Errno> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(Errno::ENOENT);
    }
    let path = liballoc::format!("{BIN_DIR}{name}");
    if path.len() > PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    let path = Path::new(&path).map_err(|_| Errno::ENOENT)?;
    Ok(FileRequest::Open {
        path,
        flags: RDONLY,
    }
    .encode())
}

/// Reading a program's headers, a `Read` at a time.
pub struct Head {
    pub fd: u64,
    pub size: u64,
    bytes: Vec<u8>,
    /// How many bytes init wants: the first read's worth, more when the program header
    /// table reaches further.
    want: usize,
}

impl Head {
    /// Just opened: `fd` of `size` bytes.
    pub fn new(fd: u64, size: u64) -> Self {
        let cap = usize::try_from(size).map_or(HEAD_BYTES, |s| s.min(HEAD_BYTES));
        Self {
            fd,
            size,
            bytes: Vec::new(),
            want: cap.min(READ_CHUNK),
        }
    }

    fn size_cap(&self) -> usize {
        usize::try_from(self.size).map_or(HEAD_BYTES, |s| s.min(HEAD_BYTES))
    }

    /// The next `Read`, or `None` when the headers are all in.
    pub fn next_read(&self) -> Option<Wire<MESSAGE_WORDS>> {
        let got = self.bytes.len();
        (got < self.want).then(|| {
            FileRequest::Read {
                fd: self.fd,
                offset: got as u64,
                len: (self.want - got).min(READ_CHUNK) as u64,
            }
            .encode()
        })
    }

    /// A `Read`'s reply (`words`: MR0 the errno or 0, MR1 the count, data from
    /// `READ_DATA_MR`); `Ok(false)` at the end of the file.
    pub fn add(&mut self, words: &[u64]) -> Result<bool, Errno> {
        let n = proto::reply_result::<u64>(words)?;
        let n = usize::try_from(n).map_err(|_| Errno::EIO)?;
        let asked = (self.want - self.bytes.len()).min(READ_CHUNK);
        if n > asked || words.len() < READ_DATA_MR + n.div_ceil(8) {
            return Err(Errno::EIO);
        }
        let data = words[READ_DATA_MR..].iter().flat_map(|w| w.to_le_bytes());
        self.bytes.extend(data.take(n));
        let got = self.bytes.len();
        if got == self.want && self.want < self.size_cap() {
            self.want = headers_end(&self.bytes).clamp(self.want, self.size_cap());
        }
        Ok(n > 0)
    }

    /// The headers checked: the program's image.
    pub fn image(&mut self) -> Result<UserImage, Errno> {
        parse_user_image_head(&mut self.bytes, self.size).map_err(|_| Errno::ENOEXEC)
    }
}

/// The `GetObject` for a program's descriptor (read-only: vm maps it privately).
pub fn get_object(fd: u64) -> Wire {
    GetObject {
        fd,
        writable: false,
    }
    .encode()
}

/// Closes init's descriptor (the object stays open while vm maps it).
pub fn close(fd: u64) -> Wire<MESSAGE_WORDS> {
    FileRequest::Close { fd }.encode()
}

/// Gives back init's handle, which vm never claimed (no segment was mapped).
pub fn release(handle: u64) -> Wire {
    ObjectRequest::Release { handle }.encode()
}
