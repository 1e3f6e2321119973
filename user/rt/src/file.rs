//! POSIX-shaped file calls to the file server (`proto::file`): `open`, `read`, `pread`,
//! `close`, `stat`, `fstat`, `ftruncate` (`close`, `fstat`, `ftruncate`, `read`, `pread`,
//! `write`, `pwrite` and `lseek` also take shm descriptors, which go to the shm server:
//! `crate::shm`). Descriptors are the server's, per
//! task: a `fork` child starts with copies of its parent's (same numbers, sharing each
//! descriptor's position with the parent, as POSIX's open file description), `exec` keeps
//! them, and the server drops them when the task ends (init tells it: `proto::task`).
//! [`file_stats`] reads the server's counters.
//!
//! The bytes of `read`, `pread`, `write` and `pwrite` of a descriptor this task opened go
//! through `crate::fastio` (one copy to or from a shared window of the page cache, no byte
//! in a message); shm, `O_DSYNC`/`O_SYNC`, write-only descriptors and those a
//! program got across `exec` take the message path here (464 bytes a call). `O_DIRECT`
//! descriptors go through `crate::direct` (a buffer shared with the file server, 64 KiB a
//! call).
//!
//! [`pipe`], [`dup`] and [`dup2`] (docs/pagers.md, "Pipes and redirected descriptors"):
//! pipes are the file server's descriptors, read and written with the message path.
//! Descriptors 0, 1 and 2 are the console's unless the file server holds them (after
//! `dup2(x, 0..2)`, here or in a task before `fork` or `exec`): the runtime keeps which it
//! holds ([`redirected`]); a `fork` child has its parent's answer (copied memory, and the
//! server copied the descriptors), a program started by `exec` finds the old program's in
//! its outgoing argument area (a frame `exec` keeps), and a new task (`spawn`, init's
//! session program) has none held. No call is needed for it.

use crate::ipc::Client;
use core::sync::atomic::{AtomicU64, Ordering};
use libmk::{Cap, Endpoint};
use proto::file::{AT_POSITION, PATH_MAX, Path, READ_DATA_MR, READ_MAX, READ_STREAM_MR, pack_data};
use proto::{Errno, FileRequest, ServerControl, task_slots};

pub use proto::FileStats;

pub use proto::file::Whence;
pub use proto::file::open_flags::{
    APPEND as O_APPEND, CLOEXEC as O_CLOEXEC, DIRECT as O_DIRECT, DIRECTORY as O_DIRECTORY,
    DSYNC as O_DSYNC, LARGEFILE as O_LARGEFILE, NOATIME as O_NOATIME, NOCTTY as O_NOCTTY,
    NOFOLLOW as O_NOFOLLOW, NONBLOCK as O_NONBLOCK, RDONLY as O_RDONLY, RDWR as O_RDWR,
    SYNC as O_SYNC, WRONLY as O_WRONLY,
};
pub use proto::file::{DIRECT_MAX, SECTOR_SIZE};

const FILE: Client = Client::at(task_slots::FILE);

/// Which of descriptors 0..2 the file server holds for this task (bit *n*), [`UNKNOWN`]
/// until the first use of one of them looks ([`held`]).
static HELD: AtomicU64 = AtomicU64::new(UNKNOWN);
const UNKNOWN: u64 = u64::MAX;

/// Where the runtime leaves [`HELD`] for the program `exec` starts: the last word of the
/// task's outgoing argument area (`proto::USER_ARGS_OUT`, a frame of the task that `exec`
/// keeps; init reads only the header and the strings before it, at most 4,112 bytes). A new
/// task's frame is zero: the file server holds nothing for it. The word is the task's own:
/// a wrong one misroutes only its own 0..2, and a call that then gets `EBADF` asks the
/// server ([`forgotten`]).
const HELD_WORD: u64 = proto::USER_ARGS_OUT + proto::args::AREA_BYTES as u64 - 8;
/// The word's upper half when it holds a mask ("HELD").
const HELD_TAG: u64 = 0x4845_4c44 << 32;

/// Which of 0..2 the file server holds (bit *n*).
fn held() -> u64 {
    let held = HELD.load(Ordering::Relaxed);
    if held != UNKNOWN {
        return held;
    }
    let held = if crate::is_task() {
        // SAFETY: init maps a user task's outgoing argument area read-write at
        // `USER_ARGS_OUT` for its whole life; a volatile load of one aligned word of it,
        // which no reference covers (`crate::args::put` makes one only while it runs).
        let word = unsafe { core::ptr::read_volatile(HELD_WORD as *const u64) };
        if word & !0b111 == HELD_TAG {
            word & 0b111
        } else {
            0
        }
    } else {
        0
    };
    HELD.store(held, Ordering::Relaxed);
    held
}

/// Before `fork` (the child's argument area is new: it must have the answer in its copy of
/// [`HELD`]) and `exec` (the word the new program reads, [`HELD_WORD`]).
pub(crate) fn before_fork() {
    let _ = held();
}

pub(crate) fn before_exec() {
    let word = HELD_TAG | held();
    if crate::is_task() {
        // SAFETY: as in `held`: one aligned word of the task's own outgoing argument area,
        // past the strings `crate::args::put` wrote; no reference to it is live.
        unsafe { core::ptr::write_volatile(HELD_WORD as *mut u64, word) };
    }
}

/// A descriptor the file server gave (`open`, `dup`, `pipe`): one of 0..2 is the file
/// server's from now on.
fn mark_held(fd: u64) -> u64 {
    if proto::console::owns_fd(fd) {
        let _ = held();
        HELD.fetch_or(1 << fd, Ordering::Relaxed);
    }
    fd
}

/// Whether descriptor `fd` is one of 0..2 that the file server holds (redirected by
/// `dup2`, here or before a `fork` or `exec`).
pub fn redirected(fd: u64) -> bool {
    proto::console::owns_fd(fd) && held() & (1 << fd) != 0
}

/// The server that answers `read`, `write` and `lseek` of `fd`: the console server for
/// 0, 1 and 2 (`proto::console::owns_fd`) unless the file server holds them
/// ([`redirected`]), the shm server for its descriptors (`crate::shm::owner`, by the
/// number), else the file server. All speak the file protocol's `Read`, `Write` and
/// `Lseek`.
fn server_of(fd: u64) -> Cap<Endpoint> {
    if proto::console::owns_fd(fd) && !redirected(fd) {
        return crate::console::CONSOLE.0;
    }
    crate::shm::endpoint(crate::shm::owner(fd)).0
}

/// `pipe()`: `[read end, write end]`, descriptors of the file server. A read waits while
/// the pipe is empty and returns what it holds (0: no writer left); a write waits while it
/// is full; `EPIPE` once no reader is left (no signal). Writes of at most
/// [`proto::file::PIPE_BUF`] bytes are never interleaved with other writers'. `EMFILE`,
/// `ENFILE` at the server's limits.
pub fn pipe() -> Result<[u64; 2], Errno> {
    pipe2(0)
}

/// `pipe2(flags)`: [`pipe`] with `O_CLOEXEC` (both ends go at `exec`) and `O_NONBLOCK`
/// (`EAGAIN` instead of waiting).
pub fn pipe2(flags: u64) -> Result<[u64; 2], Errno> {
    let r = FileRequest::pipe(&FILE, flags)?;
    Ok([mark_held(r.read), mark_held(r.write)])
}

/// Before a `dup` or `dup2` copies `fd`: a file this runtime reads and writes through its
/// window keeps its position in the server from now on (the copy shares it).
fn before_copy(fd: u64) {
    crate::fastio::share(fd);
}

/// `dup(fd)`: a new descriptor (the lowest free number: one of 0..2 this task closed, else from 3) naming what `fd` names and
/// sharing its position. `dup` of a console descriptor (0..2 not redirected) gives one whose
/// `read` and `write` go to the console. `EBADF`, `EMFILE`.
pub fn dup(fd: u64) -> Result<u64, Errno> {
    before_copy(fd);
    let new = FileRequest::dup(&FILE, fd)?;
    // (A dup of the console onto a closed 0..2 is the console's again: ask which.)
    if proto::console::owns_fd(new) {
        let held = FileRequest::redirected(&FILE).unwrap_or(0) & 0b111;
        HELD.store(held, Ordering::Relaxed);
    }
    Ok(new)
}

/// `dup2(old, new)`: `new` names what `old` names (`new` is closed first if open; `dup2(x,
/// x)` only checks `x`); `new` may be 0, 1 or 2, and then `print!`, `read(0)`... follow
/// it, here and in the programs this task runs (`exec`) or forks. `dup2` of a console
/// descriptor onto 0..2 gives it back to the console. `EBADF` for a bad `old` or a `new`
/// of [`proto::file::DUP_MAX`] or more.
pub fn dup2(old: u64, new: u64) -> Result<u64, Errno> {
    if old != new {
        before_copy(old);
        // `new`'s position goes to the server first: should the call fail, `new` stays
        // open where it was.
        crate::fastio::share(new);
    }
    let held = FileRequest::dup2(&FILE, old, new)?;
    if old != new {
        // `new`'s window and `O_DIRECT` buffer went with it.
        crate::fastio::forget(new);
        crate::direct::forget(new);
    }
    HELD.store(held & 0b111, Ordering::Relaxed);
    Ok(new)
}

/// Sends a request to the file server again while it answers `EBUSY` (it holds as many
/// waiting callers as it may: a pipe call that must wait then yields and asks again).
fn retry_busy<T>(
    ep: Cap<Endpoint>,
    mut call: impl FnMut() -> Result<T, Errno>,
) -> Result<T, Errno> {
    loop {
        match call() {
            Err(Errno::EBUSY) if ep.cptr() == FILE.0.cptr() => libmk::yield_now(),
            r => return r,
        }
    }
}

/// What `stat` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    pub is_dir: bool,
    /// A pipe's descriptor (`fstat`; the size is the bytes the pipe holds).
    pub is_fifo: bool,
}

/// `name` as the protocol carries it, a relative one resolved against the working
/// directory (`crate::cwd`): `ENOENT` for the empty path (POSIX), `ENAMETOOLONG` past
/// [`PATH_MAX`] (255) bytes, `EINVAL` for a NUL in it.
fn path(name: &str) -> Result<Path, Errno> {
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    let joined = crate::cwd::resolve(name);
    let name = joined.as_deref().unwrap_or(name);
    if name.len() > PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Path::new(name).map_err(|_| Errno::EINVAL)
}

/// Descriptors open in the file server over all tasks, and files it holds open (for a
/// descriptor or a mapping): for tests that check nothing is left behind.
pub fn descriptors() -> Result<proto::DescriptorCount, Errno> {
    ServerControl::descriptors(&FILE)
}

/// The file server's counters since boot ([`FileStats`]: `ObjectPage` answers to vm, blocks
/// and sectors read from the disk, the page cache's hits, misses, evictions and write-backs).
pub fn file_stats() -> Result<FileStats, Errno> {
    FileRequest::file_stats(&FILE)
}

/// `open(name, flags)`: a descriptor. Flags: `O_RDONLY`, `O_WRONLY`, `O_RDWR`, `O_CREAT`
/// (8.3 names only), `O_EXCL`, `O_TRUNC`, `O_DIRECT`. `ENOENT` if there is no such file,
/// `EISDIR` for a directory, `EEXIST` for `O_CREAT | O_EXCL` of an existing file, `EACCES`
/// for write access to a read-only file, `EROFS` for write access to a read-only disk.
pub fn open(name: &str, flags: u64) -> Result<u64, Errno> {
    open_sized(name, flags).map(|(fd, _)| fd)
}

/// `open` that also returns the file's size.
pub fn open_sized(name: &str, flags: u64) -> Result<(u64, u64), Errno> {
    let r = FileRequest::open(&FILE, flags, path(name)?)?;
    mark_held(r.fd);
    crate::fastio::opened(r.fd, flags, r.size);
    crate::direct::opened(r.fd, flags);
    Ok((r.fd, r.size))
}

/// One `Read` of at most [`READ_MAX`] bytes into `buf` from the server `ep` (init calls
/// the file server with its own capability); the count. The request asks for the whole of
/// `buf` (an `O_DIRECT` descriptor checks that length's alignment); the server sends what
/// one message holds.
pub fn read_once_on(
    ep: Cap<Endpoint>,
    fd: u64,
    offset: u64,
    buf: &mut [u8],
) -> Result<usize, Errno> {
    read_piece(ep, fd, offset, buf).map(|(n, _)| n)
}

/// [`read_once_on`], and whether the reply says the descriptor is a stream (a pipe: the
/// count is what there was; do not ask again for the rest).
fn read_piece(
    ep: Cap<Endpoint>,
    fd: u64,
    offset: u64,
    buf: &mut [u8],
) -> Result<(usize, bool), Errno> {
    retry_busy(ep, || read_message(ep, fd, offset, buf))
}

fn read_message(
    ep: Cap<Endpoint>,
    fd: u64,
    offset: u64,
    buf: &mut [u8],
) -> Result<(usize, bool), Errno> {
    let len = buf.len().min(READ_MAX);
    let req = FileRequest::Read {
        fd,
        offset,
        len: buf.len() as u64,
    };
    let reply = ep
        .call(&crate::ipc::message(&req.encode()))
        .map_err(crate::ipc::call_error)?;
    let n = proto::reply_result::<u64>(crate::ipc::received(&reply).mrs())?;
    let n = usize::try_from(n).map_err(|_| Errno::EIO)?;
    let stream = reply.info().length > READ_STREAM_MR && reply.mrs[READ_STREAM_MR] == 1;
    if n > len || (n > 0 && reply.info().length < READ_DATA_MR + n.div_ceil(8)) {
        return Err(Errno::EIO);
    }
    let Some(ipc) = libmk::ipc_buffer() else {
        return Err(Errno::EIO);
    };
    let words = &ipc.mrs[READ_DATA_MR..];
    let n = n.min(words.len() * 8);
    // SAFETY: the bytes of the message words (in memory order: little-endian, as
    // `unpack_data` reads them), which live and are not written while `bytes` does. One
    // `copy_from_slice` of them is a word copy where `unpack_data` would go byte by byte.
    let bytes = unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<u8>(), n) };
    buf[..n].copy_from_slice(bytes);
    Ok((n, stream))
}

/// Reads until `buf` is full or the file ends, [`READ_MAX`] bytes per call; the count. A
/// pipe's read returns what came in one call (the reply says it is a stream), and a
/// descriptor the file server says is the console's (`EXDEV`: a `dup` of one) reads a line
/// there.
fn read_all(fd: u64, offset: Option<u64>, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut done = 0;
    loop {
        let at = offset.map_or(AT_POSITION, |o| o + done as u64);
        let (n, stream) = match read_piece(server_of(fd), fd, at, &mut buf[done..]) {
            Ok(r) => r,
            Err(Errno::EXDEV) if done == 0 => return crate::console::read_line(0, buf),
            Err(Errno::EBADF) if done == 0 && forgotten(fd) => return read(fd, buf),
            Err(e) => return Err(e),
        };
        done += n;
        if n == 0 || stream || done == buf.len() {
            return Ok(done);
        }
    }
}

/// After `EBADF` on one of 0..2 believed redirected: whether the file server (restarted
/// since, which lost every descriptor) no longer holds it, so that the console has it
/// again. Asks the server afresh.
fn forgotten(fd: u64) -> bool {
    if !proto::console::owns_fd(fd) || HELD.load(Ordering::Relaxed) & (1 << fd) == 0 {
        return false;
    }
    // No file server (or none that knows the call): the console's, all three.
    let held = FileRequest::redirected(&FILE).unwrap_or(0) & 0b111;
    HELD.store(held, Ordering::Relaxed);
    !redirected(fd)
}

/// `read(fd, buf)`: bytes from the descriptor's position, which advances; 0 at end of
/// file. `EBADF` for a descriptor this task does not hold.
pub fn read(fd: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    if proto::console::owns_fd(fd) && !redirected(fd) {
        // One line at most (a terminal's read): asking again would wait for the next.
        return crate::console::read_line(fd, buf);
    }
    if let Some(r) = crate::direct::read(fd, None, buf) {
        return r;
    }
    if let Some(r) = crate::fastio::read(fd, None, buf) {
        return r;
    }
    read_all(fd, None, buf)
}

/// `pread(fd, buf, offset)`: bytes at `offset`; the position stays.
pub fn pread(fd: u64, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
    // Negative as an `off_t` (POSIX: `EINVAL`).
    if offset > i64::MAX as u64 {
        return Err(Errno::EINVAL);
    }
    if let Some(r) = crate::direct::read(fd, Some(offset), buf) {
        return r;
    }
    if let Some(r) = crate::fastio::read(fd, Some(offset), buf) {
        return r;
    }
    read_all(fd, Some(offset), buf)
}

/// `close(fd)`, of a file's or a shm object's descriptor (`crate::shm::owner`).
pub fn close(fd: u64) -> Result<(), Errno> {
    if proto::console::owns_fd(fd) {
        // The file server keeps that the number is closed (its copy goes, if it held one):
        // `read` and `write` of it are `EBADF`, and it is the lowest free number for the
        // next `open`, `dup` or `pipe`, as POSIX has it. `dup2` of a console descriptor
        // gives it back to the console.
        return match FileRequest::close(&FILE, fd) {
            Ok(()) => {
                mark_held(fd);
                Ok(())
            }
            // No file server (or an old one): the console's for good.
            Err(Errno::ENODEV | Errno::ENOSYS) if !redirected(fd) => {
                FileRequest::close(&crate::console::CONSOLE, fd)
            }
            Err(e) => Err(e),
        };
    }
    if proto::shm::owns_fd(fd) {
        return crate::shm::close(fd);
    }
    // The window and the `O_DIRECT` buffer first: the window's handle keeps the file open.
    crate::fastio::forget(fd);
    crate::direct::forget(fd);
    FileRequest::close(&FILE, fd)
}

/// `fstat(fd)`, of a file's or a shm object's descriptor.
pub fn fstat(fd: u64) -> Result<Stat, Errno> {
    if proto::shm::owns_fd(fd) {
        return crate::shm::size(fd).map(|size| Stat {
            size,
            is_dir: false,
            is_fifo: false,
        });
    }
    let r = match FileRequest::fstat(&FILE, fd) {
        // A `dup` of a console descriptor: a terminal, of size 0.
        Err(Errno::EXDEV) => proto::StatReply {
            size: 0,
            is_dir: false,
            is_fifo: false,
        },
        r => r?,
    };
    crate::fastio::sized(fd, r.size);
    Ok(Stat {
        size: r.size,
        is_dir: r.is_dir,
        is_fifo: r.is_fifo,
    })
}

/// `ftruncate(fd, size)`, of a file's or a shm object's descriptor: bytes past `size` go,
/// new bytes read as zero.
pub fn ftruncate(fd: u64, size: u64) -> Result<(), Errno> {
    if proto::shm::owns_fd(fd) {
        return crate::shm::truncate(fd, size);
    }
    FileRequest::ftruncate(&FILE, fd, size)?;
    crate::fastio::sized(fd, size);
    Ok(())
}

/// `stat(name)`: size and kind.
pub fn stat(name: &str) -> Result<Stat, Errno> {
    FileRequest::stat(&FILE, path(name)?).map(|r| Stat {
        size: r.size,
        is_dir: r.is_dir,
        is_fifo: false,
    })
}

/// One `Write` of at most [`READ_MAX`] bytes of `buf` to `ep`; the count the server took.
/// `total` tells it how much of the caller's write is left.
fn write_once(
    ep: Cap<Endpoint>,
    fd: u64,
    offset: u64,
    buf: &[u8],
    total: usize,
) -> Result<usize, Errno> {
    retry_busy(ep, || write_message(ep, fd, offset, buf, total))
}

fn write_message(
    ep: Cap<Endpoint>,
    fd: u64,
    offset: u64,
    buf: &[u8],
    total: usize,
) -> Result<usize, Errno> {
    let len = buf.len().min(READ_MAX);
    let req = FileRequest::Write {
        fd,
        offset,
        len: len as u64,
        total: total as u64,
    };
    let w = req.encode();
    let mut m = crate::ipc::message(&w);
    let Some(ipc) = libmk::ipc_buffer() else {
        return Err(Errno::EIO);
    };
    // MR4, MR5 unused; the bytes from MR6 on.
    let words = pack_data(&buf[..len], &mut ipc.mrs[READ_DATA_MR..]);
    m.info.length = READ_DATA_MR + words;
    let reply = ep.call(&m).map_err(crate::ipc::call_error)?;
    let n = proto::reply_result::<u64>(crate::ipc::received(&reply).mrs())?;
    usize::try_from(n)
        .ok()
        .filter(|&n| n <= len)
        .ok_or(Errno::EIO)
}

/// Writes all of `buf`, [`READ_MAX`] bytes per call; the count. A descriptor the file
/// server says is the console's (`EXDEV`: a `dup` of one) writes there; a pipe's reader
/// gone after some bytes went in gives their count (the next write is `EPIPE`).
fn write_all(fd: u64, offset: Option<u64>, buf: &[u8]) -> Result<usize, Errno> {
    let mut ep = server_of(fd);
    let mut target = fd;
    let mut done = 0;
    loop {
        let at = offset.map_or(AT_POSITION, |o| o + done as u64);
        let n = match write_once(ep, target, at, &buf[done..], buf.len() - done) {
            Ok(n) => n,
            Err(Errno::EXDEV) if done == 0 && ep.cptr() == FILE.0.cptr() => {
                (ep, target) = (crate::console::CONSOLE.0, 1);
                continue;
            }
            Err(Errno::EBADF) if done == 0 && forgotten(fd) => return write(fd, buf),
            Err(Errno::EPIPE | Errno::EAGAIN) if done > 0 => return Ok(done),
            Err(e) => return Err(e),
        };
        if n == 0 && !buf.is_empty() {
            return Err(Errno::EIO);
        }
        done += n;
        if done >= buf.len() {
            return Ok(done);
        }
    }
}

/// `write(fd, buf)`: at the descriptor's position, which advances; the file grows as
/// needed. The bytes go into the file server's page cache (the disk sees them at write-back)
/// unless the descriptor is `O_DIRECT`: then the offset and length must be multiples of
/// [`SECTOR_SIZE`] (`EINVAL`) and the bytes go to the disk before the call returns. `EBADF`
/// for a descriptor not open for writing, `ENOSPC` when the disk is full.
pub fn write(fd: u64, buf: &[u8]) -> Result<usize, Errno> {
    if let Some(r) = crate::direct::write(fd, None, buf) {
        return r;
    }
    if let Some(r) = crate::fastio::write(fd, None, buf) {
        return r;
    }
    write_all(fd, None, buf)
}

/// `pwrite(fd, buf, offset)`: at `offset`; the position stays.
pub fn pwrite(fd: u64, buf: &[u8], offset: u64) -> Result<usize, Errno> {
    // Negative as an `off_t` (POSIX: `EINVAL`).
    if offset > i64::MAX as u64 {
        return Err(Errno::EINVAL);
    }
    if let Some(r) = crate::direct::write(fd, Some(offset), buf) {
        return r;
    }
    if let Some(r) = crate::fastio::write(fd, Some(offset), buf) {
        return r;
    }
    write_all(fd, Some(offset), buf)
}

/// `lseek(fd, offset, whence)`: the new position (`EINVAL` if it would be negative).
pub fn lseek(fd: u64, offset: i64, whence: Whence) -> Result<u64, Errno> {
    if let Some(r) = crate::fastio::lseek(fd, offset, whence) {
        return r;
    }
    FileRequest::lseek(&Client(server_of(fd)), fd, offset, whence)
}

/// `unlink(name)`: removes the file (8.3 names; an open file goes at its last close).
/// `ENOENT`, `EISDIR` for a directory, `EROFS` on a read-only disk.
pub fn unlink(name: &str) -> Result<(), Errno> {
    FileRequest::unlink(&FILE, path(name)?)
}

/// `mkdir(name)`: a new, empty directory. Any name a desktop takes (long, mixed case,
/// spaces): the server writes long-name entries. `EEXIST` if it exists, `ENOENT` or
/// `ENOTDIR` for a parent that is missing or a file, `ENOSPC` on a full disk, `EROFS` on a
/// read-only one, `ENAMETOOLONG` for a path longer than [`PATH_MAX`] bytes.
pub fn mkdir(name: &str) -> Result<(), Errno> {
    FileRequest::mkdir(&FILE, path(name)?)
}

/// `rmdir(name)`: removes an empty directory (`ENOTEMPTY` otherwise, `ENOTDIR` for a file).
pub fn rmdir(name: &str) -> Result<(), Errno> {
    FileRequest::rmdir(&FILE, path(name)?)
}

/// `rename(from, to)`: in the same or another directory; an existing `to` of the same kind
/// is replaced (`EISDIR`/`ENOTDIR` if the kinds differ, `ENOTEMPTY` for a directory that is
/// not empty). A file that is open or mapped keeps its descriptors and mappings.
pub fn rename(from: &str, to: &str) -> Result<(), Errno> {
    FileRequest::rename(&FILE, path(from)?, path(to)?)
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: alloc::string::String,
    pub size: u64,
    pub is_dir: bool,
}

/// An open directory ([`opendir`]): its entries, a server call per message of them.
pub struct ReadDir {
    path: Path,
    cookie: u64,
    entries: alloc::collections::VecDeque<DirEntry>,
}

/// `opendir(name)`: `ENOENT` if missing, `ENOTDIR` for a file. Nothing is held in the server
/// (each call names the directory and where the listing stands), so nothing needs closing.
pub fn opendir(name: &str) -> Result<ReadDir, Errno> {
    let p = path(name)?;
    let mut d = ReadDir {
        path: p,
        cookie: 0,
        entries: alloc::collections::VecDeque::new(),
    };
    d.fill()?;
    Ok(d)
}

/// `readdir(dir)`: the next entry (`.` and `..` are not listed), `None` after the last.
pub fn readdir(dir: &mut ReadDir) -> Option<Result<DirEntry, Errno>> {
    dir.next()
}

/// `closedir(dir)`.
pub fn closedir(dir: ReadDir) {
    drop(dir);
}

impl ReadDir {
    /// Asks the server for the next entries until some come or the listing ends.
    fn fill(&mut self) -> Result<(), Errno> {
        while self.entries.is_empty() && self.cookie != proto::file::DIR_END {
            let req = FileRequest::ReadDir {
                path: self.path,
                cookie: self.cookie,
            };
            let reply = FILE
                .0
                .call(&crate::ipc::message(&req.encode()))
                .map_err(crate::ipc::call_error)?;
            let r = proto::reply_result::<proto::ReadDirReply>(crate::ipc::received(&reply).mrs())?;
            let n = usize::try_from(r.len).map_err(|_| Errno::EIO)?;
            if n > READ_MAX || (n > 0 && reply.info().length < READ_DATA_MR + n.div_ceil(8)) {
                return Err(Errno::EIO);
            }
            let Some(ipc) = libmk::ipc_buffer() else {
                return Err(Errno::EIO);
            };
            let mut bytes = [0u8; READ_MAX];
            proto::file::unpack_data(&ipc.mrs[READ_DATA_MR..], &mut bytes[..n]);
            for (name, size, is_dir) in proto::file::dirents(&bytes[..n]) {
                self.entries.push_back(DirEntry {
                    name: name.into(),
                    size,
                    is_dir,
                });
            }
            // A server that gives nothing and does not move on would loop forever.
            if r.next != proto::file::DIR_END && r.next <= self.cookie && n == 0 {
                return Err(Errno::EIO);
            }
            self.cookie = r.next;
        }
        Ok(())
    }
}

impl Iterator for ReadDir {
    type Item = Result<DirEntry, Errno>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Err(e) = self.fill() {
            // Once: the listing ends with the error.
            self.cookie = proto::file::DIR_END;
            self.entries.clear();
            return Some(Err(e));
        }
        self.entries.pop_front().map(Ok)
    }
}

/// Every entry of directory `name` (`opendir` and `readdir` to the end).
pub fn read_dir(name: &str) -> Result<alloc::vec::Vec<DirEntry>, Errno> {
    opendir(name)?.collect()
}
