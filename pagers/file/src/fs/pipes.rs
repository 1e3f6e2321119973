//! Pipes, `dup`/`dup2`, and descriptors 0..2 the server holds (docs/pagers.md, "Pipes and
//! redirected descriptors").
//!
//! A pipe is a bounded ring of [`PIPE_SIZE`] bytes with counts of the read and write
//! descriptors naming it, over all tasks (`fork` copies descriptors, `close`, `exec`'s
//! `O_CLOEXEC` and the task's end drop them). A `read` of an empty pipe with a writer left
//! waits, as a read of a block on its way from the disk does (`Fail::WaitPipe`: the server
//! saves the caller's reply and runs the request again when the pipe changes); 0 (end of
//! file) once no writer is left. A `write` waits while the pipe is full; `EPIPE` once no
//! reader is left (there are no signals: no `SIGPIPE`). A write of at most [`PIPE_BUF`]
//! bytes waits until all of it fits and then goes in whole: when it takes two messages
//! (a message carries 464 bytes), the first part is held aside ([`Stash`], one per task)
//! and goes in with the rest. Other writers go on meanwhile: a writer that never sends the
//! rest holds up nobody (its first part goes when it writes anything else, closes its end
//! or ends).
//!
//! The server may hold a task's descriptors 0, 1 and 2 (after `dup2(x, 0..2)`); those it
//! does not hold are the console's. A descriptor may name the console too (`dup` of a
//! console descriptor): its reads and writes are `EXDEV`, which tells the runtime to send
//! them to the console server. The server never holds such a descriptor at 0..2: `dup2` of
//! the console there drops the server's (the console's again).

use super::{End, FIRST_FD, Fail, Fd, Files};
use crate::platform::{Platform, Waiter};
use alloc::collections::{BTreeSet, VecDeque};
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::Cell;
use proto::Errno;
use proto::console::FD_COUNT;
use proto::file::{DUP_MAX, PIPE_BUF, PIPE_SIZE, PIPES_PER_TASK, open_flags as of};

/// Pipes of all tasks together (`ENFILE` beyond): their buffers take at most 256 KiB.
pub const MAX_PIPES: usize = 64;
/// Requests waiting for a pipe at once (each holds a saved reply: the server has 64, 48
/// for tasks); beyond, a blocking call is `EBUSY` (the runtime yields and asks again). A
/// pipe's wait may last for ever (a writer that never writes), a disk read's does not: 16
/// of the tasks' saved replies stay for disk reads, whatever waits on pipes.
pub const MAX_PIPE_WAITERS: usize = 32;

/// One pipe.
pub(super) struct Pipe {
    ring: VecDeque<u8>,
    /// Read and write descriptors naming it, over all tasks.
    readers: u32,
    writers: u32,
}

/// The first part of a task's write of at most `PIPE_BUF` bytes to pipe `pipe`, `total`
/// bytes in all, held until the rest comes.
pub(super) struct Stash {
    pipe: u64,
    data: Vec<u8>,
    total: usize,
}

impl Pipe {
    fn room(&self) -> usize {
        PIPE_SIZE - self.ring.len()
    }
}

impl<P: Platform> Files<P> {
    /// `Pipe`: a read end and a write end for task `pid`.
    pub fn pipe(&mut self, pid: u64, flags: u64) -> Result<(u64, u64), Errno> {
        if flags & !(of::CLOEXEC | of::NONBLOCK) != 0 {
            return Err(Errno::EINVAL);
        }
        self.may_open(pid, 2)?;
        // Pipes, not descriptors: a pipe whose other end the task closed still counts.
        let held: BTreeSet<u64> = self
            .fds
            .range((pid, 0)..=(pid, u64::MAX))
            .filter_map(|(_, d)| match d.end {
                End::PipeRead(id) | End::PipeWrite(id) => Some(id),
                _ => None,
            })
            .collect();
        if held.len() >= PIPES_PER_TASK {
            return Err(Errno::EMFILE);
        }
        if self.pipes.len() >= MAX_PIPES || P::heap_low() {
            return Err(Errno::ENFILE);
        }
        let id = self.next_pipe;
        self.next_pipe += 1;
        self.pipes.insert(
            id,
            Pipe {
                ring: VecDeque::with_capacity(PIPE_SIZE),
                readers: 1,
                writers: 1,
            },
        );
        let read = self.lowest_free(pid);
        self.install(pid, read, Fd::of(End::PipeRead(id), of::RDONLY | flags));
        let write = self.lowest_free(pid);
        self.install(pid, write, Fd::of(End::PipeWrite(id), of::WRONLY | flags));
        Ok((read, write))
    }

    /// The lowest number task `pid` may take for a new descriptor (POSIX's "lowest
    /// available"): one of 0..2 it closed, else the lowest free from 3 (the others of
    /// 0..2 are the console's).
    pub(super) fn lowest_free(&self, pid: u64) -> u64 {
        (0..FD_COUNT)
            .find(|&fd| self.closed.contains(&(pid, fd)))
            .unwrap_or_else(|| self.free_fd(pid, FIRST_FD))
    }

    /// The lowest number from `from` that task `pid` has no descriptor with.
    pub(super) fn free_fd(&self, pid: u64, from: u64) -> u64 {
        let mut fd = from;
        for (&(_, n), _) in self.fds.range((pid, from)..=(pid, u64::MAX)) {
            if n != fd {
                break;
            }
            fd += 1;
        }
        fd
    }

    /// What descriptor `fd` of task `pid` names, for `dup`: its own, or the console's for
    /// 0..2 the server does not hold.
    fn dup_source(&self, pid: u64, fd: u64) -> Result<Fd, Errno> {
        match self.fds.get(&(pid, fd)) {
            Some(d) => {
                let mut copy = d.share();
                // `O_CLOEXEC` is the descriptor's, not the open file description's.
                copy.flags &= !of::CLOEXEC;
                Ok(copy)
            }
            None if fd < FD_COUNT => Ok(Fd::of(End::Console, of::RDWR)),
            None => Err(Errno::EBADF),
        }
    }

    /// `Dup`: a new descriptor (the lowest free number from 3) naming what `fd` names.
    pub fn dup(&mut self, pid: u64, fd: u64) -> Result<u64, Errno> {
        let copy = self.dup_source(pid, fd)?;
        self.may_open(pid, 1)?;
        let new = self.lowest_free(pid);
        if new >= DUP_MAX {
            return Err(Errno::EMFILE);
        }
        self.place_copy(pid, new, copy);
        Ok(new)
    }

    /// Number `new` (free) of task `pid` names what `copy` names, counted among its file's
    /// or pipe's descriptors; a copy of the console onto 0..2 leaves the number the
    /// console's (not closed any more, not held here).
    fn place_copy(&mut self, pid: u64, new: u64, copy: Fd) {
        if copy.end == End::Console && new < FD_COUNT {
            self.closed.remove(&(pid, new));
        } else {
            self.take_end(&copy);
            self.install(pid, new, copy);
        }
    }

    /// `Dup2`: `new` names what `old` names (closed first if it was open; errors of that
    /// close are not reported, as POSIX's `dup2`) → which of 0..2 the server holds.
    pub fn dup2(&mut self, pid: u64, old: u64, new: u64) -> Result<u64, Errno> {
        let copy = self.dup_source(pid, old)?;
        if new >= DUP_MAX || proto::shm::owns_fd(new) {
            return Err(Errno::EBADF);
        }
        if old != new {
            let to_console = copy.end == End::Console && new < FD_COUNT;
            if !self.fds.contains_key(&(pid, new)) && !to_console {
                self.may_open(pid, 1)?;
            }
            if self.fds.contains_key(&(pid, new)) {
                let _ = self.close(pid, new);
            }
            self.place_copy(pid, new, copy);
        }
        Ok(self.redirected(pid))
    }

    /// `Redirected`: which of descriptors 0..2 the server holds for task `pid` (bit *n*).
    pub fn redirected(&self, pid: u64) -> u64 {
        (0..FD_COUNT)
            .filter(|&fd| self.fds.contains_key(&(pid, fd)) || self.closed.contains(&(pid, fd)))
            .fold(0, |mask, fd| mask | 1 << fd)
    }

    /// A new descriptor names `d`'s file or pipe end: its counts grow.
    pub(super) fn take_end(&mut self, d: &Fd) {
        match d.end {
            End::File => {
                if let Some(o) = self.objects.get_mut(&d.object) {
                    o.refs += 1;
                    o.writers += u32::from(d.writable());
                }
            }
            End::PipeRead(id) => {
                if let Some(p) = self.pipes.get_mut(&id) {
                    p.readers += 1;
                }
            }
            End::PipeWrite(id) => {
                if let Some(p) = self.pipes.get_mut(&id) {
                    p.writers += 1;
                }
            }
            End::Console => {}
        }
    }

    /// Descriptor `d` (of task `pid`) of a pipe went: its count goes down, the pipe with its
    /// last descriptor; whoever waits on it runs again (a reader without writers reads end
    /// of file, a writer without readers gets `EPIPE`).
    pub(super) fn drop_pipe_end(&mut self, pid: u64, d: &Fd) {
        let (End::PipeRead(id) | End::PipeWrite(id)) = d.end else {
            return;
        };
        let Some(p) = self.pipes.get_mut(&id) else {
            return;
        };
        match d.end {
            End::PipeRead(_) => p.readers = p.readers.saturating_sub(1),
            _ => p.writers = p.writers.saturating_sub(1),
        }
        // A write of this task's whose rest never comes now.
        if self.stashes.get(&pid).is_some_and(|s| s.pipe == id) {
            self.stashes.remove(&pid);
        }
        if p.readers == 0 && p.writers == 0 {
            self.pipes.remove(&id);
        }
        self.wake_pipe(id);
    }

    /// Requests waiting on pipe `id` run again (the receive loop takes them from `ready`).
    fn wake_pipe(&mut self, id: u64) {
        let mut i = 0;
        while i < self.pipe_waiters.len() {
            if self.pipe_waiters[i].0 == id {
                let (_, w) = self.pipe_waiters.swap_remove(i);
                self.ready.push((w, None));
            } else {
                i += 1;
            }
        }
    }

    /// Parks `w` on pipe `id`; `Err(w)` when too many wait.
    pub(super) fn wait_pipe(&mut self, id: u64, w: P::Waiter) -> Result<(), P::Waiter> {
        if self.pipe_waiters.len() >= MAX_PIPE_WAITERS {
            return Err(w);
        }
        self.pipe_waiters.push((id, w));
        Ok(())
    }

    /// Task `pid` ended: its requests waiting on pipes are answered into nothing (their
    /// saved replies freed) rather than left until the pipe changes.
    pub(super) fn pipe_task_exit(&mut self, pid: u64) {
        self.stashes.remove(&pid);
        let mut i = 0;
        while i < self.pipe_waiters.len() {
            if self.pipe_waiters[i].1.pid() == pid {
                let (_, mut w) = self.pipe_waiters.swap_remove(i);
                w.task_ended();
                self.ready.push((w, None));
            } else {
                i += 1;
            }
        }
    }

    /// Why a pipe call cannot go on now: it waits for the pipe to change, or (`O_NONBLOCK`,
    /// or no saved reply to spare) it is `EAGAIN` / `EBUSY`.
    fn pipe_blocks(&self, id: u64, flags: u64) -> Fail {
        if flags & of::NONBLOCK != 0 {
            Fail::No(Errno::EAGAIN)
        } else if self.can_wait && self.pipe_waiters.len() < MAX_PIPE_WAITERS {
            Fail::WaitPipe(id)
        } else {
            Fail::No(Errno::EBUSY)
        }
    }

    /// `Read` of pipe `id`'s read end: what the pipe holds, up to
    /// `out.len()` bytes; 0 when it is empty and no writer is left.
    pub(super) fn pipe_read(&mut self, id: u64, flags: u64, out: &mut [u8]) -> Result<usize, Fail> {
        let Some(p) = self.pipes.get_mut(&id) else {
            return Err(Errno::EBADF.into());
        };
        if out.is_empty() {
            return Ok(0);
        }
        if p.ring.is_empty() {
            if p.writers == 0 {
                return Ok(0);
            }
            return Err(self.pipe_blocks(id, flags));
        }
        let n = out.len().min(p.ring.len());
        for (o, b) in out.iter_mut().zip(p.ring.drain(..n)) {
            *o = b;
        }
        self.wake_pipe(id);
        Ok(n)
    }

    /// `Write` to a pipe's write end by task `pid`: `data`, `total` bytes being what is
    /// left of the caller's whole write; the count (all of `data` for a write of at most
    /// `PIPE_BUF` bytes, else what fits, at least a byte). `EPIPE` without a reader.
    pub(super) fn pipe_write(
        &mut self,
        pid: u64,
        id: u64,
        flags: u64,
        total: u64,
        data: &[u8],
    ) -> Result<usize, Fail> {
        let Some(p) = self.pipes.get_mut(&id) else {
            return Err(Errno::EBADF.into());
        };
        let len = data.len();
        // The rest of this task's write of at most `PIPE_BUF` bytes: all of it goes in
        // once it fits (until then the request waits, the first part kept).
        // (Its `total`, what is left of the caller's write, is what the first part left.)
        let rest = self.stashes.get(&pid).filter(|s| {
            s.pipe == id
                && u64::try_from(s.total - s.data.len()).is_ok_and(|left| left == total)
                && s.data.len() + len <= s.total
        });
        if p.readers == 0 {
            // The rest of a held write never goes in either.
            self.stashes.remove(&pid);
            return Err(Errno::EPIPE.into());
        }
        if len == 0 {
            return Ok(0);
        }
        if let Some(s) = rest {
            let (have, whole) = (s.data.len() + len, s.total);
            if have < whole {
                // (A message carries 464 bytes: two make any write of `PIPE_BUF`.)
                if let Some(s) = self.stashes.get_mut(&pid) {
                    s.data.extend_from_slice(data);
                }
                return Ok(len);
            }
            if p.room() < whole {
                return Err(self.pipe_blocks(id, flags));
            }
            if let Some(s) = self.stashes.remove(&pid) {
                p.ring.extend(&s.data);
            }
            p.ring.extend(data);
            self.wake_pipe(id);
            return Ok(len);
        }
        // A new write (a write of this task that did not finish is given up).
        self.stashes.remove(&pid);
        let total = usize::try_from(total).unwrap_or(usize::MAX).max(len);
        let n = if total <= PIPE_BUF {
            if total > len {
                // Its first part: held aside until the rest comes. (`O_NONBLOCK`: refused
                // now if the whole would not fit now.)
                if flags & of::NONBLOCK != 0 && p.room() < total {
                    return Err(Errno::EAGAIN.into());
                }
                if P::heap_low() {
                    return Err(Errno::ENOMEM.into());
                }
                let stash = Stash {
                    pipe: id,
                    data: data.to_vec(),
                    total,
                };
                self.stashes.insert(pid, stash);
                return Ok(len);
            }
            if p.room() < total {
                return Err(self.pipe_blocks(id, flags));
            }
            len
        } else if p.room() == 0 {
            return Err(self.pipe_blocks(id, flags));
        } else {
            len.min(p.room())
        };
        p.ring.extend(&data[..n]);
        self.wake_pipe(id);
        Ok(n)
    }

    /// Writes held aside (for tests that check nothing is left behind).
    pub fn stash_count(&self) -> usize {
        self.stashes.len()
    }

    /// `Fstat` of a pipe: the bytes it holds.
    pub(super) fn pipe_size(&self, id: u64) -> Result<u64, Errno> {
        self.pipes
            .get(&id)
            .map(|p| p.ring.len() as u64)
            .ok_or(Errno::EBADF)
    }

    /// Whether descriptor `fd` of task `pid` is a pipe's read end (its `Read` reply says
    /// so: the runtime returns what came instead of asking for more).
    pub fn is_stream(&self, pid: u64, fd: u64) -> bool {
        self.fds
            .get(&(pid, fd))
            .is_some_and(|d| matches!(d.end, End::PipeRead(_)))
    }

    /// Whether descriptor `fd` of task `pid` is a pipe's (either end): `fstat` says so.
    pub fn is_pipe(&self, pid: u64, fd: u64) -> bool {
        self.fds
            .get(&(pid, fd))
            .is_some_and(|d| matches!(d.end, End::PipeRead(_) | End::PipeWrite(_)))
    }

    /// Pipes in use (for tests that check nothing is left behind).
    pub fn pipe_count(&self) -> usize {
        self.pipes.len()
    }
}

impl Fd {
    /// Another descriptor of the same open (`dup`, `fork`): the position shared, no
    /// `O_DIRECT` transfer, buffer or write-back error of this one's.
    pub(super) fn share(&self) -> Self {
        Self {
            object: self.object,
            end: self.end,
            pos: self.pos.clone(),
            flags: self.flags,
            stage: None,
            buffer: None,
            error: None,
        }
    }

    /// A descriptor of `end` that is not a file's (no object, no position of its own).
    pub(super) fn of(end: End, flags: u64) -> Self {
        Self {
            object: 0,
            pos: Rc::new(Cell::new(0)),
            flags,
            end,
            stage: None,
            buffer: None,
            error: None,
        }
    }
}
