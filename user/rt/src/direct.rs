//! `O_DIRECT` through shared memory (issue 10): the bytes of a `read`, `pread`, `write` or
//! `pwrite` of an `O_DIRECT` descriptor move through the descriptor's *buffer*, a
//! [`DIRECT_MAX`]-byte frame of the file server that this task maps shared
//! (`DirectBuffer`, then vm's `MmapObject`). A read asks `DirectRead` (the server reads
//! the disk straight into the buffer) and copies out of it; a write copies into it and asks
//! `DirectWrite` (the server writes the buffer to the disk). One call per 64 KiB, no byte
//! in a message (the message path moved 464 bytes a call).
//!
//! The server keeps the rules: offsets and lengths are multiples of `SECTOR_SIZE` (512)
//! (`EINVAL`), the cached blocks a transfer overlaps are written back first (a write also
//! drops them), a read at or past the end of the file returns 0. The server bounds the
//! buffers (four per task, sixteen in all, a quarter of its page cache): a descriptor that
//! gets none, or more than [`ENTRIES`] here, keeps the message path.
//!
//! `fork` unmaps every buffer first (the child's descriptors get buffers of their own from
//! the server; the parent maps its own again at its next call), and so does a signal on the
//! task's notification (a restarted file server: `crate::fastio`'s poll), so that no
//! write ever copies into a frame that went with an old server.

use crate::ipc::Client;
use core::sync::atomic::{AtomicUsize, Ordering};
use proto::file::open_flags as of;
use proto::file::{AT_POSITION, DIRECT_MAX};
use proto::object::{MmapObject, Pager};
use proto::{Errno, FileRequest, task_slots};
use spin::Mutex;

const FILE: Client = Client::at(task_slots::FILE);
const VM: Client = Client::at(task_slots::VM);
/// `O_DIRECT` descriptors kept here at once (the server's limit per task).
const ENTRIES: usize = 4;
const LEN: usize = DIRECT_MAX as usize;

/// An `O_DIRECT` descriptor and where its buffer is mapped (0: not yet, or no more).
#[derive(Clone, Copy)]
struct Entry {
    fd: u64,
    base: u64,
}

static TABLE: Mutex<[Option<Entry>; ENTRIES]> = Mutex::new([None; ENTRIES]);
/// Entries in [`TABLE`]: with none, no call here takes the lock.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// `open` gave descriptor `fd` with `flags`: an `O_DIRECT` one gets an entry (if there is
/// room), its buffer mapped at its first transfer.
pub fn opened(fd: u64, flags: u64) {
    forget(fd);
    if flags & of::DIRECT == 0 {
        return;
    }
    let mut t = TABLE.lock();
    if let Some(slot) = t.iter_mut().find(|e| e.is_none()) {
        LIVE.fetch_add(1, Ordering::Relaxed);
        *slot = Some(Entry { fd, base: 0 });
    }
}

/// Drops `fd`'s entry and unmaps its buffer (before `close`).
pub fn forget(fd: u64) {
    if LIVE.load(Ordering::Relaxed) == 0 {
        return;
    }
    let gone = TABLE
        .lock()
        .iter_mut()
        .find(|e| e.is_some_and(|e| e.fd == fd))
        .and_then(|slot| slot.take());
    if let Some(e) = gone {
        LIVE.fetch_sub(1, Ordering::Relaxed);
        if e.base != 0 {
            let _ = crate::posix::munmap(e.base, DIRECT_MAX);
        }
    }
}

/// Unmaps every buffer (kept entries map theirs again at their next call): before a
/// `fork` or `exec`, and after a signal that may mean a restarted file server.
pub fn unmap_all() {
    if LIVE.load(Ordering::Relaxed) == 0 {
        return;
    }
    for e in TABLE.lock().iter_mut().flatten() {
        if e.base != 0 {
            let _ = crate::posix::munmap(e.base, DIRECT_MAX);
            e.base = 0;
        }
    }
}

/// Maps `fd`'s buffer: its address.
fn map(fd: u64) -> Result<u64, Errno> {
    let r = FileRequest::direct_buffer(&FILE, fd)?;
    let release = |e| {
        let _ = crate::shm::release_object(Pager::File, r.fd);
        e
    };
    if r.size != DIRECT_MAX {
        return Err(release(Errno::EIO));
    }
    let req = MmapObject {
        addr: 0,
        len: DIRECT_MAX,
        prot: crate::posix::PROT_READ | crate::posix::PROT_WRITE,
        flags: crate::posix::MAP_SHARED,
        pager: Pager::File,
        handle: r.fd,
        offset: 0,
    };
    req.map(&VM).map_err(release)
}

/// Runs `op` with the address of `fd`'s buffer (mapped first if need be), the table
/// locked. `None` when `fd` is no `O_DIRECT` descriptor here, or gets no buffer (the
/// server's limits): then its entry goes and the call takes the message path.
fn with_buffer<R>(fd: u64, op: impl FnOnce(u64) -> Result<R, Errno>) -> Option<Result<R, Errno>> {
    if LIVE.load(Ordering::Relaxed) == 0 || !TABLE.lock().iter().flatten().any(|e| e.fd == fd) {
        return None;
    }
    // A restarted server took the buffers' frames: unmapped before anything is copied.
    crate::fastio::poll_restart();
    let mut t = TABLE.lock();
    let slot = t.iter_mut().find(|e| e.is_some_and(|e| e.fd == fd))?;
    let e = slot.as_mut()?;
    if e.base == 0 {
        match map(fd) {
            Ok(base) => e.base = base,
            Err(_) => {
                *slot = None;
                LIVE.fetch_sub(1, Ordering::Relaxed);
                return None;
            }
        }
    }
    Some(op(e.base))
}

/// `read` (`offset` `None`) or `pread` of an `O_DIRECT` descriptor through its buffer: the
/// count (short only at the end of the file), or `None` for the message path.
#[inline]
pub fn read(fd: u64, offset: Option<u64>, out: &mut [u8]) -> Option<Result<usize, Errno>> {
    // Inlined: a task without `O_DIRECT` descriptors pays one load for it.
    if LIVE.load(Ordering::Relaxed) == 0 {
        return None;
    }
    read_buffered(fd, offset, out)
}

#[inline(never)]
fn read_buffered(fd: u64, offset: Option<u64>, out: &mut [u8]) -> Option<Result<usize, Errno>> {
    with_buffer(fd, |base| {
        let mut done = 0;
        loop {
            let want = out.len() - done;
            let at = offset.map_or(AT_POSITION, |o| o + done as u64);
            let n = FileRequest::direct_read(&FILE, fd, at, want as u64)?;
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= want.min(LEN))
                .ok_or(Errno::EIO)?;
            if n == 0 {
                break;
            }
            // SAFETY: [base, base + LEN) is this task's shared mapping of the buffer, held
            // while the table is locked (only `forget`, `unmap_all` and this module unmap
            // it, under the lock); the server wrote its first `n` bytes before it answered
            // and touches it only during this task's calls. Plain bytes: any value is valid.
            let src = unsafe { core::slice::from_raw_parts(base as *const u8, n) };
            bufio::copy(&mut out[done..done + n], src);
            done += n;
            if done == out.len() {
                break;
            }
        }
        Ok(done)
    })
}

/// `write` (`offset` `None`) or `pwrite` of an `O_DIRECT` descriptor through its buffer:
/// the count, or `None` for the message path.
#[inline]
pub fn write(fd: u64, offset: Option<u64>, data: &[u8]) -> Option<Result<usize, Errno>> {
    if LIVE.load(Ordering::Relaxed) == 0 {
        return None;
    }
    write_buffered(fd, offset, data)
}

#[inline(never)]
fn write_buffered(fd: u64, offset: Option<u64>, data: &[u8]) -> Option<Result<usize, Errno>> {
    with_buffer(fd, |base| {
        let mut done = 0;
        loop {
            let total = data.len() - done;
            let k = total.min(LEN);
            // SAFETY: as in `read`: the task's mapping of the buffer, held under the lock;
            // the server reads it only during the call below, after this copy.
            let dst = unsafe { core::slice::from_raw_parts_mut(base as *mut u8, k) };
            bufio::copy(dst, &data[done..done + k]);
            let at = offset.map_or(AT_POSITION, |o| o + done as u64);
            let n = FileRequest::direct_write(&FILE, fd, at, total as u64)?;
            if n != k as u64 {
                return Err(Errno::EIO);
            }
            done += k;
            if done == data.len() {
                return Ok(done);
            }
        }
    })
}
