//! The bulk data path of `read`, `pread`, `write` and `pwrite` (issue 10): the bytes of a
//! file descriptor move by one `memcpy` between the caller's buffer and a *window* of the
//! file mapped shared into this task (`Window`, the file server's `GetObject` for it, and
//! vm's `MmapObject`: the file server's page
//! cache's own frames, the ones every other `read`, `write` and mapping of the file sees).
//! No byte travels in a message.
//!
//! **Who knows what.** A descriptor this task opened ([`opened`]) gets an entry here: its
//! flags, its window, the file's size as last heard and, while only this task holds the
//! descriptor, its position. Then a `read` or `write` inside the size is a copy and no call
//! at all; the server is asked ([`FileRequest::span`]) once per four blocks the descriptor
//! goes through (it brings them into its cache first, so that a disk error is the call's
//! `EIO`, not the window fault's `BUS`), to grow the file (a write past the end, every
//! `O_APPEND` write: the server settles the offset, so two tasks' appends never overlap),
//! and when a read reaches the size as last heard (another task may have written more: a
//! short read at the end of the file asks once). The server keeps the
//! position of a descriptor that two tasks hold (after `fork`: one open file description):
//! [`before_fork`] gives it every position first, and from then on every call asks `Span`
//! for its range (one round trip, no bytes) and copies. `exec` gives the positions back too
//! ([`before_exec`]); the new program's descriptors take the message path.
//!
//! **Coherence** comes from the frames being the one copy: a write here is in the page
//! cache at once, seen by the next `read` of any task and by every mapping; a write
//! through a mapping is seen by the next read here. The window's first write to a block
//! faults and vm marks the block dirty (`ObjectDirty`), so write-back works as for any
//! shared mapping.
//!
//! **A restarted file server.** Its new instance never gave this task its descriptors,
//! and the window's pages are gone: touching them would end the task with `BUS`. init
//! signals every task's notification after a restart, so each call first polls it (one
//! system call) and, when it was signalled, asks the server about every entry and drops
//! those it does not know (their calls then take the message path and get `EBADF`).
//!
//! Not here: shm descriptors (the shm server's `Read`/`Write`), `O_DIRECT`, `O_DSYNC` and
//! `O_SYNC` descriptors, descriptors open for writing only (`mmap` needs read access), and
//! descriptors a program got from the one before `exec`: those keep the message path.

use crate::ipc::Client;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use libmk::{Cap, Notification};
use proto::file::open_flags as of;
use proto::file::{AT_POSITION, GROW_CELLS};
use proto::object::{MmapObject, Pager};
use proto::{Errno, FileRequest, GrowReply, SpanReply, task_slots};
use spin::Mutex;

const FILE: Client = Client::at(task_slots::FILE);
const VM: Client = Client::at(task_slots::VM);
const NOTIFY: Cap<Notification> = Cap::from_cptr(task_slots::CHILD_NOTIFY);

/// A window's length in bytes: a file offset range aligned to it is mapped at once (vm
/// maps each 64 KiB block as it is first touched, so a large window costs nothing more).
pub const WINDOW: u64 = 64 << 20;
/// The page cache's block (what a window's fault maps at once).
const BLOCK: u64 = proto::object::BLOCK_SIZE;
/// Blocks the file server brings in per `Span` (`file::fs::SPAN_BLOCKS`).
const SPAN_BLOCKS: u64 = 4;
/// Descriptors this runtime keeps an entry for at once (more take the message path); an
/// entry's index is its growth reservation's cell.
const ENTRIES: usize = GROW_CELLS;
/// The largest file offset + 1 (a FAT file ends at 4 GiB - 1).
const MAX_SIZE: u64 = u32::MAX as u64;

/// What the runtime knows of one descriptor.
#[derive(Clone, Copy)]
struct Entry {
    fd: u64,
    flags: u64,
    /// The window's address (0: none mapped yet) and the file offset of its first byte.
    base: u64,
    window: u64,
    /// The position, while `shared` is false.
    pos: u64,
    /// The file's size as last heard from the server (or grown by this task).
    size: u64,
    /// The server keeps the position: another task holds the descriptor too.
    shared: bool,
    /// Blocks [`lo`, `hi`) the server brought into its cache for a `Span` (a window's
    /// fault on them finds them there: a disk error was the `Span`'s `EIO`, not a `BUS`).
    lo: u64,
    hi: u64,
    /// Its growth reservation's cell in the size page (`Grow`: the entry's index in the
    /// table), if it has one.
    cell: Option<usize>,
    /// Its index in the table.
    index: usize,
}

impl Entry {
    /// Whether the blocks of [`at`, `at + len`) are among those a `Span` brought in.
    fn checked(&self, at: u64, len: u64) -> bool {
        len == 0 || (at / BLOCK >= self.lo && (at + len - 1) / BLOCK < self.hi)
    }

    /// A `Span` brought in the blocks of [`at`, `at + len`) (its first `SPAN_BLOCKS`): the
    /// range kept grows when it follows on, else starts again.
    fn note(&mut self, at: u64, len: u64) {
        if len == 0 {
            return;
        }
        let first = at / BLOCK;
        let last = ((at + len - 1) / BLOCK).min(first + SPAN_BLOCKS - 1);
        if first >= self.lo && first <= self.hi {
            self.hi = self.hi.max(last + 1);
        } else {
            self.lo = first;
            self.hi = last + 1;
        }
    }

    fn writable(&self) -> bool {
        self.flags & of::ACCMODE != of::RDONLY
    }
    fn readable(&self) -> bool {
        self.flags & of::ACCMODE != of::WRONLY
    }
}

static TABLE: Mutex<[Option<Entry>; ENTRIES]> = Mutex::new([None; ENTRIES]);
/// The task's size page (`SizePage`), where it says how far it wrote under each growth
/// reservation: its address (0: not mapped), and whether the server had none to give.
static PAGE: AtomicU64 = AtomicU64::new(0);
static NO_PAGE: AtomicBool = AtomicBool::new(false);
/// Entries in [`TABLE`]: with none, no call here takes the lock (a store, which after a
/// `fork` would copy the page: `fork` + `exec` copies next to nothing) or polls.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// A descriptor whose bytes may go this way: open for reading (a window needs it), not
/// `O_DIRECT` (the disk, not the cache) nor `O_DSYNC`/`O_SYNC` (each write to the disk
/// before it returns: the message path does that).
pub fn eligible(flags: u64) -> bool {
    flags & of::ACCMODE != of::WRONLY && flags & (of::DIRECT | of::DSYNC) == 0
}

/// `open` gave descriptor `fd` of a file of `size` bytes with `flags`: its entry (an old
/// one of that number goes, its window unmapped).
pub fn opened(fd: u64, flags: u64, size: u64) {
    forget(fd);
    if !eligible(flags) {
        return;
    }
    let mut t = TABLE.lock();
    if let Some((index, slot)) = t.iter_mut().enumerate().find(|(_, e)| e.is_none()) {
        LIVE.fetch_add(1, Ordering::Relaxed);
        *slot = Some(Entry {
            fd,
            flags,
            base: 0,
            window: 0,
            pos: 0,
            size,
            shared: false,
            lo: 0,
            hi: 0,
            cell: None,
            index,
        });
    }
}

/// Drops `fd`'s entry and unmaps its window (before `close`).
pub fn forget(fd: u64) {
    if LIVE.load(Ordering::Relaxed) == 0 {
        return;
    }
    let gone = {
        let mut t = TABLE.lock();
        t.iter_mut()
            .find(|e| e.is_some_and(|e| e.fd == fd))
            .and_then(|slot| slot.take())
    };
    if gone.is_some() {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
    if let Some(e) = gone
        && e.base != 0
    {
        let _ = crate::posix::munmap(e.base, WINDOW);
    }
}

/// A `fork` is coming: every position goes to the server, which keeps it from now on
/// (parent and child share it). `exec` is the same ([`before_exec`]).
pub fn before_fork() {
    // `O_DIRECT` buffers: the child gets its own (`crate::direct`).
    crate::direct::unmap_all();
    // The child must not store into the parent's cells (it maps its own page).
    unmap_page();
    if LIVE.load(Ordering::Relaxed) == 0 {
        return;
    }
    let mut t = TABLE.lock();
    for e in t.iter_mut().flatten() {
        // Shared from now on: every growth asks the server.
        e.cell = None;
        if !e.shared {
            // A position the server refuses (past the largest file) stays where it was
            // there; reads at it return 0 either way.
            let _ = FileRequest::lseek(&FILE, e.fd, e.pos as i64, proto::file::Whence::Set);
            e.shared = true;
        }
    }
}

/// `dup` or `dup2` made a copy of `fd` (which takes the message path): `fd`'s position
/// goes to the server, which keeps it from now on (the two share it, as after `fork`), and
/// every growth through `fd` asks the server (no reservation: the copy's writes would not
/// be folded into the size this entry knows).
pub fn share(fd: u64) {
    if LIVE.load(Ordering::Relaxed) == 0 {
        return;
    }
    let mut t = TABLE.lock();
    if let Some(e) = t.iter_mut().flatten().find(|e| e.fd == fd) {
        e.cell = None;
        if !e.shared {
            let _ = FileRequest::lseek(&FILE, e.fd, e.pos as i64, proto::file::Whence::Set);
            e.shared = true;
        }
    }
}

/// An `exec` is coming: the positions go to the server (the new program's runtime starts
/// without entries).
pub fn before_exec() {
    before_fork();
}

/// After a signal on the task's notification (a child ended, or init restarted the file
/// server): entries the server does not know any more are dropped (their windows would
/// fault with `BUS`).
fn check_restart() {
    poll_restart();
}

/// Polls the task's notification; after a signal (a child ended, or init restarted the
/// file server) the `O_DIRECT` buffers are unmapped (`crate::direct`: mapped again at their
/// next call) and the entries the server does not know any more are dropped.
pub(crate) fn poll_restart() {
    if NOTIFY.poll().is_err() {
        return;
    }
    crate::direct::unmap_all();
    // Also with no entry left: the next descriptor's growth would store into it.
    unmap_page();
    if LIVE.load(Ordering::Relaxed) == 0 {
        return;
    }
    let fds: [Option<u64>; ENTRIES] = TABLE.lock().map(|e| e.map(|e| e.fd));
    for fd in fds.into_iter().flatten() {
        if FileRequest::span(&FILE, fd, 0, 0, false).is_err() {
            // Unmapping an old instance's window is vm's bookkeeping only.
            forget(fd);
        }
    }
}

/// Unmaps the size page (before `fork`, after a restart signal); the reservations' cells go
/// with it (the entries' `cell`s are dropped by the callers or unusable: [`page`] maps it
/// again for the next `Grow`, which gives a new cell).
fn unmap_page() {
    // A load first: a store (even of 0 over 0) before a `fork` would copy the data page.
    if PAGE.load(Ordering::Relaxed) == 0 {
        return;
    }
    let at = PAGE.swap(0, Ordering::Relaxed);
    if at != 0 {
        let _ = crate::posix::munmap(at, BLOCK);
        for e in TABLE.lock().iter_mut().flatten() {
            e.cell = None;
        }
    }
}

/// The size page's address, mapped first if need be; `None` when the server has none to
/// give (then every growth asks the server, as without reservations).
fn page() -> Option<u64> {
    let at = PAGE.load(Ordering::Relaxed);
    if at != 0 {
        return Some(at);
    }
    if NO_PAGE.load(Ordering::Relaxed) {
        return None;
    }
    let mapped = FileRequest::size_page(&FILE).and_then(|r| {
        let req = MmapObject {
            addr: 0,
            len: BLOCK,
            prot: crate::posix::PROT_READ | crate::posix::PROT_WRITE,
            flags: crate::posix::MAP_SHARED,
            pager: Pager::File,
            handle: r.fd,
            offset: 0,
        };
        if r.size != BLOCK {
            let _ = crate::shm::release_object(Pager::File, r.fd);
            return Err(Errno::EIO);
        }
        req.map(&VM).inspect_err(|_| {
            let _ = crate::shm::release_object(Pager::File, r.fd);
        })
    });
    match mapped {
        Ok(at) => {
            PAGE.store(at, Ordering::Relaxed);
            Some(at)
        }
        Err(_) => {
            NO_PAGE.store(true, Ordering::Relaxed);
            None
        }
    }
}

/// Word `word` (0: written end, 1: limit) of cell `cell` of the size page at `page`.
fn cell_word(page: u64, cell: usize, word: usize) -> &'static AtomicU64 {
    // SAFETY: `cell < GROW_CELLS` (an entry's index: ENTRIES is GROW_CELLS), so the word lies in the
    // first 256 bytes of the page, a shared mapping of this task that stays until
    // `unmap_page`, which only runs with no write in progress (before `fork`, at a restart
    // poll) and drops every cell; the page is 64 KiB aligned, so the word is aligned. The
    // server accesses it atomically too.
    unsafe { AtomicU64::from_ptr((page + ((cell * 2 + word) * 8) as u64) as *mut u64) }
}

/// A write that grows the file inside `e`'s growth reservation: the copy, then its new end
/// in the cell, no call. False when it is not one (the caller asks the server) or when the
/// reservation ended while it copied (the server may have cleared what it copied, or missed
/// the new end): then the caller writes it through the server again.
fn reserved_write(e: &mut Entry, at: u64, data: &[u8]) -> Result<bool, Errno> {
    let Some(cell) = e.cell else {
        return Ok(false);
    };
    let len = data.len() as u64;
    let Some(end) = at.checked_add(len) else {
        return Ok(false);
    };
    let page = PAGE.load(Ordering::Relaxed);
    if page == 0 || at > e.size || end <= e.size || !e.checked(at, len) {
        return Ok(false);
    }
    let (written, limit) = (cell_word(page, cell, 0), cell_word(page, cell, 1));
    if end > limit.load(Ordering::Acquire) {
        return Ok(false);
    }
    copy_in(e, at, data)?;
    written.store(end, Ordering::Release);
    // The server ends a reservation by storing 0 and then reading the written end: with a
    // fence on both sides, it saw this end or this load sees its 0.
    fence(Ordering::SeqCst);
    if limit.load(Ordering::Acquire) < end {
        e.cell = None;
        return Ok(false);
    }
    e.size = end;
    Ok(true)
}

/// The server's answer to a `Grow`, checked as a `Span`'s, and its reservation: inside the
/// largest file, past the range, a cell of the page.
fn grow(fd: u64, offset: u64, len: u64, cell: usize) -> Result<GrowReply, Errno> {
    let r = FileRequest::grow(&FILE, fd, offset, len, cell as u64)?;
    let end = r.at.checked_add(r.len).ok_or(Errno::EIO)?;
    if r.len != len || end > MAX_SIZE || (r.len > 0 && end > r.size) {
        return Err(Errno::EIO);
    }
    if r.limit != 0 && (r.limit < end || r.limit > MAX_SIZE || r.cell != cell as u64) {
        return Err(Errno::EIO);
    }
    Ok(r)
}

/// `fd`'s entry (a copy), after the restart check.
fn entry(fd: u64) -> Option<Entry> {
    if LIVE.load(Ordering::Relaxed) == 0 {
        return None;
    }
    check_restart();
    TABLE.lock().iter().flatten().find(|e| e.fd == fd).copied()
}

/// Writes `e` back over the entry of its descriptor (if it still has one).
fn store(e: Entry) {
    if let Some(slot) = TABLE.lock().iter_mut().flatten().find(|x| x.fd == e.fd) {
        *slot = e;
    }
}

/// The window of `e` holding file offset `at`: its address for `at` and how many bytes
/// from there lie in it. Maps the window (again) when `at` is outside the one mapped.
fn window_at(e: &mut Entry, at: u64) -> Result<(u64, u64), Errno> {
    let start = at - at % WINDOW;
    if e.base == 0 || e.window != start {
        if e.base != 0 {
            let _ = crate::posix::munmap(e.base, WINDOW);
            e.base = 0;
        }
        let prot = if e.writable() {
            crate::posix::PROT_READ | crate::posix::PROT_WRITE
        } else {
            crate::posix::PROT_READ
        };
        // A window handle: its mappings map whole 64 KiB blocks (a growing file faults
        // once a block, not once a page).
        let handle = FileRequest::window(&FILE, e.fd)?.fd;
        let req = MmapObject {
            addr: 0,
            len: WINDOW,
            prot,
            flags: crate::posix::MAP_SHARED,
            pager: Pager::File,
            handle,
            offset: start,
        };
        e.base = req.map(&VM).inspect_err(|_| {
            let _ = crate::shm::release_object(Pager::File, handle);
        })?;
        e.window = start;
    }
    Ok((e.base + (at - start), start + WINDOW - at))
}

/// Copies file bytes [`at`, `at + out.len()`) of `e` into `out` (all inside the size).
fn copy_out(e: &mut Entry, mut at: u64, out: &mut [u8]) -> Result<(), Errno> {
    let mut done = 0;
    while done < out.len() {
        let (addr, room) = window_at(e, at)?;
        let k = (out.len() - done).min(room as usize);
        // SAFETY: [addr, addr + k) lies in the window, a readable shared mapping of this
        // task of at least that many bytes, inside the file's size (so vm maps its pages);
        // other tasks may write those bytes meanwhile, which makes their values arbitrary
        // but never the copy unsound (plain bytes).
        let src = unsafe { core::slice::from_raw_parts(addr as *const u8, k) };
        bufio::copy(&mut out[done..done + k], src);
        done += k;
        at += k as u64;
    }
    Ok(())
}

/// Copies `data` into file bytes [`at`, `at + data.len()`) of `e` (inside the size).
fn copy_in(e: &mut Entry, mut at: u64, data: &[u8]) -> Result<(), Errno> {
    let mut done = 0;
    while done < data.len() {
        let (addr, room) = window_at(e, at)?;
        let k = (data.len() - done).min(room as usize);
        // SAFETY: [addr, addr + k) lies in the window, a writable shared mapping of this
        // task, inside the file's size; no reference to those bytes lives in this task
        // while `dst` does.
        let dst = unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, k) };
        bufio::copy(dst, &data[done..done + k]);
        done += k;
        at += k as u64;
    }
    Ok(())
}

/// Runs `op` on `fd`'s entry in place (no copy of it: the target's `memcpy` would copy it
/// a word at a time), with a window mapped where the call starts if the runtime knows.
/// `None` when it has no entry, or when no window can be mapped (vm's or the server's
/// limits): then the entry goes and the call takes the message path, before anything
/// changed. `op` runs with the table locked: it makes calls to the file server and vm,
/// never to this module.
fn with_mapped<R>(fd: u64, offset: Option<u64>, op: impl FnOnce(&mut Entry) -> R) -> Option<R> {
    if LIVE.load(Ordering::Relaxed) == 0 {
        return None;
    }
    check_restart();
    let unmappable = {
        let mut t = TABLE.lock();
        let e = t.iter_mut().flatten().find(|e| e.fd == fd)?;
        if e.base == 0 {
            let at = offset.unwrap_or(if e.shared { 0 } else { e.pos });
            if window_at(e, at.min(MAX_SIZE)).is_err() {
                Some((e.shared, e.pos))
            } else {
                return Some(op(e));
            }
        } else {
            return Some(op(e));
        }
    };
    if let Some((shared, pos)) = unmappable
        && !shared
    {
        // The message path uses the server's position.
        let _ = FileRequest::lseek(&FILE, fd, pos as i64, proto::file::Whence::Set);
    }
    forget(fd);
    None
}

/// The server's answer to a `Span`, checked: a read's range inside what was asked.
fn span(fd: u64, offset: u64, len: u64, write: bool) -> Result<SpanReply, Errno> {
    let r = FileRequest::span(&FILE, fd, offset, len, write)?;
    let end = r.at.checked_add(r.len).ok_or(Errno::EIO)?;
    if r.len > len || end > MAX_SIZE || (write && r.len != len) || (r.len > 0 && end > r.size) {
        return Err(Errno::EIO);
    }
    Ok(r)
}

/// `read` (`offset` `None`) or `pread` of `fd` through its window: the count, or `None`
/// if `fd` has no entry (the caller takes the message path).
pub fn read(fd: u64, offset: Option<u64>, out: &mut [u8]) -> Option<Result<usize, Errno>> {
    with_mapped(fd, offset, |e| {
        if !e.readable() {
            return Err(Errno::EBADF);
        }
        read_entry(e, offset, out)
    })
}

fn read_entry(e: &mut Entry, offset: Option<u64>, out: &mut [u8]) -> Result<usize, Errno> {
    let mut done = 0;
    while done < out.len() {
        let want = (out.len() - done) as u64;
        let at = match offset {
            Some(o) => o + done as u64,
            None if e.shared => AT_POSITION,
            None => e.pos,
        };
        let n = if at != AT_POSITION && at.saturating_add(want) <= e.size && e.checked(at, want) {
            // Inside the size and in blocks the server brought in: the copy alone.
            copy_out(e, at, &mut out[done..done + want as usize])?;
            (at, want)
        } else {
            // The server settles it (the size may have grown; the shared position) and
            // brings the blocks in (a disk error is EIO here, not BUS at the copy).
            // With its own position, ask for `SPAN_BLOCKS` blocks at least: a reader going
            // on asks once per four blocks, not once per block.
            let ask = if at == AT_POSITION {
                want
            } else {
                want.max(SPAN_BLOCKS * BLOCK - at % BLOCK)
            };
            let r = span(e.fd, at, ask, false)?;
            e.size = r.size;
            e.note(r.at, r.len);
            let n = r.len.min(want);
            copy_out(e, r.at, &mut out[done..done + n as usize])?;
            (r.at, n)
        };
        if n.1 == 0 {
            break;
        }
        done += n.1 as usize;
        if offset.is_none() && !e.shared {
            e.pos = n.0 + n.1;
        }
    }
    Ok(done)
}

/// `write` (`offset` `None`) or `pwrite` of `fd` through its window: the count, or `None`
/// if `fd` has no entry.
pub fn write(fd: u64, offset: Option<u64>, data: &[u8]) -> Option<Result<usize, Errno>> {
    with_mapped(fd, offset, |e| {
        if !e.writable() {
            return Err(Errno::EBADF);
        }
        write_entry(e, offset, data)
    })
}

fn write_entry(e: &mut Entry, offset: Option<u64>, data: &[u8]) -> Result<usize, Errno> {
    let len = data.len() as u64;
    let append = offset.is_none() && e.flags & of::APPEND != 0;
    let at = match offset {
        _ if e.shared || append => None,
        Some(o) => Some(o),
        None => Some(e.pos),
    };
    // Past the size, inside the descriptor's growth reservation: the copy alone (after the
    // test for a write inside the file, the common case).
    if let Some(at) = at
        && e.cell.is_some()
        && at.checked_add(len).is_some_and(|end| end > e.size)
        && reserved_write(e, at, data)?
    {
        if offset.is_none() {
            e.pos = at + len;
        }
        return Ok(data.len());
    }
    let at = match at {
        // Inside the file, in blocks the server brought in: the copy alone.
        Some(at) if at.checked_add(len).is_some_and(|end| end <= e.size) && e.checked(at, len) => {
            at
        }
        // Growing the file at an offset of this task's: the server grows it and reserves
        // the blocks after (a `Grow`), so that the next writes go on without asking.
        Some(at) if len > 0 && page().is_some() => {
            let r = grow(e.fd, at, len, e.index)?;
            e.size = r.size;
            e.note(r.at, r.len);
            if r.limit != 0 {
                e.cell = Some(r.cell as usize);
                e.note(r.at, r.limit - r.at);
            } else {
                e.cell = None;
            }
            r.at
        }
        // The server settles the range (the end for `O_APPEND`, the shared position),
        // grows the file to hold it and brings its first blocks in.
        _ => {
            let r = span(e.fd, at.or(offset).unwrap_or(AT_POSITION), len, true)?;
            e.size = r.size;
            e.note(r.at, r.len);
            r.at
        }
    };
    // Blocks of the range past those brought in: brought in before the copy reaches them
    // (the file holds the range by now, so these `Span`s grow nothing).
    let mut done = 0;
    while done < len {
        let here = at + done;
        let rest = len - done;
        if !e.checked(here, 1) {
            let r = span(e.fd, here, rest, true)?;
            e.note(here, rest);
            e.size = r.size;
        }
        let k = rest.min(BLOCK - here % BLOCK);
        copy_in(e, here, &data[done as usize..(done + k) as usize])?;
        done += k;
    }
    if offset.is_none() && !e.shared {
        e.pos = at + len;
    }
    Ok(data.len())
}

/// `lseek` of `fd` when its position is this runtime's: the server checks and keeps the
/// new position too (so it stays right for `fork` and `exec`). `None` if the server keeps
/// it anyway.
pub fn lseek(fd: u64, offset: i64, whence: proto::file::Whence) -> Option<Result<u64, Errno>> {
    use proto::file::Whence;
    let mut e = entry(fd)?;
    if e.shared {
        return None;
    }
    let r = match whence {
        Whence::Set => FileRequest::lseek(&FILE, fd, offset, Whence::Set),
        Whence::Cur => match e.pos.checked_add_signed(offset) {
            Some(p) if p <= i64::MAX as u64 => FileRequest::lseek(&FILE, fd, p as i64, Whence::Set),
            _ => Err(Errno::EINVAL),
        },
        Whence::End => FileRequest::lseek(&FILE, fd, offset, Whence::End),
    };
    if let Ok(p) = r {
        e.pos = p;
        store(e);
    }
    Some(r)
}

/// The file's size changed by this task (`ftruncate`) or was heard (`fstat`).
pub fn sized(fd: u64, size: u64) {
    if let Some(mut e) = entry(fd) {
        e.size = size;
        store(e);
    }
}
