//! POSIX shared memory (`proto::shm`): `shm_open`, `shm_unlink`, and the shm side of
//! `close`, `fstat`, `ftruncate` and `mmap` (and of `read`, `write`, `lseek`, which send
//! the file protocol's messages to the shm server: [`crate::file`]).
//!
//! **Which server owns a descriptor.** The shm server numbers its descriptors from
//! `proto::shm::FIRST_FD` (65536), the file server from 3 (a few dozen at most), so the
//! number alone tells ([`owner`]): no table in the runtime, nothing to copy at `fork` or
//! lose at `exec`. `close`, `fstat`, `ftruncate`, `read`, `write` and `lseek` (in
//! [`crate::file`]) send a shm descriptor here; `mmap` of a descriptor asks its owner for a memory object
//! ([`object_of`], `GetObject`) and then vm to map it (`MmapObject`).

use crate::ipc::Client;
use proto::object::{GetObject, ObjectRequest, Pager};
use proto::{Errno, Name, ServerControl, ShmRequest, task_slots};

pub use proto::file::open_flags::{CREAT as O_CREAT, EXCL as O_EXCL, TRUNC as O_TRUNC};

const SHM: Client = Client::at(task_slots::SHM);
const FILE: Client = Client::at(task_slots::FILE);

/// The server that owns descriptor `fd`.
pub const fn owner(fd: u64) -> Pager {
    if proto::shm::owns_fd(fd) {
        Pager::Shm
    } else {
        Pager::File
    }
}

/// A shm name as the protocol carries it: `ENAMETOOLONG` beyond 16 bytes, `EINVAL` if it
/// is not `/name` (the server checks again).
fn shm_name(name: &str) -> Result<Name, Errno> {
    if name.len() > Name::MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    let n = Name::new(name).map_err(|_| Errno::EINVAL)?;
    if !proto::shm::valid_name(&n) {
        return Err(Errno::EINVAL);
    }
    Ok(n)
}

/// `shm_open(name, flags, mode)`: a descriptor on the shared memory object `name` (`/x`).
/// `flags`: `O_RDONLY` or `O_RDWR`, with `O_CREAT`, `O_EXCL`, `O_TRUNC`; `mode`: its
/// permission bits when it is created (the owner's read and write bits are checked).
/// `ENOENT`, `EEXIST`, `EINVAL`, `EACCES`, `EMFILE`.
pub fn shm_open(name: &str, flags: u64, mode: u64) -> Result<u64, Errno> {
    let name = shm_name(name)?;
    ShmRequest::open(&SHM, flags, mode, name).map(|r| r.fd)
}

/// `shm_unlink(name)`: the name goes at once; the object lives on while a descriptor or a
/// mapping holds it, and its mappings are not disturbed. `ENOENT`.
pub fn shm_unlink(name: &str) -> Result<(), Errno> {
    let name = shm_name(name)?;
    ShmRequest::unlink(&SHM, name)
}

/// `close` of a shm descriptor.
pub(crate) fn close(fd: u64) -> Result<(), Errno> {
    ShmRequest::close(&SHM, fd)
}

/// `fstat` of a shm descriptor: its size.
pub(crate) fn size(fd: u64) -> Result<u64, Errno> {
    ShmRequest::stat(&SHM, fd)
}

/// `ftruncate` of a shm descriptor.
pub(crate) fn truncate(fd: u64, size: u64) -> Result<(), Errno> {
    ShmRequest::truncate(&SHM, fd, size)
}

/// The endpoint of `pager`.
pub(crate) fn endpoint(pager: Pager) -> Client {
    match pager {
        Pager::Shm => SHM,
        Pager::File => FILE,
    }
}

/// A memory object for `mmap` of descriptor `fd`: (its owner, a handle bound to this task
/// for vm to claim, its size in bytes), from `GetObject` to the owner. `EACCES` if
/// `writable` is asked of a descriptor opened read-only (or the descriptor is not open for
/// reading), `EBADF` for a bad one, `EMFILE` when this task holds too many handles vm has
/// not claimed.
pub fn object_of(fd: u64, writable: bool) -> Result<(Pager, u64, u64), Errno> {
    let pager = owner(fd);
    // The reply is MR1 = handle, MR2 = size: `OpenReply`'s layout.
    let r = GetObject { fd, writable }.get(&endpoint(pager))?;
    Ok((pager, r.fd, r.size))
}

/// Gives back a handle from [`object_of`] that vm did not claim (`ObjectRelease` to its
/// owner). `EBADF` if it is not this task's unclaimed handle.
pub fn release_object(pager: Pager, handle: u64) -> Result<(), Errno> {
    ObjectRequest::release(&endpoint(pager), handle)
}

/// Descriptors open in the shm server over all tasks, and objects it holds: for tests
/// that check nothing is left behind.
pub fn descriptors() -> Result<proto::DescriptorCount, Errno> {
    ServerControl::descriptors(&SHM)
}
