//! The tasks' unfinished output lines. A task's output goes out a whole line at a time:
//! what follows its last newline waits here (at most [`LINE_MAX`] bytes; a longer line
//! goes out in pieces of that size) until the task ends the line, reads descriptor 0 (a
//! prompt), ends, or the machine powers off. At most [`PENDING_MAX`] tasks wait so; one
//! more, and the oldest one's line goes out as it is. So a task can make the server hold
//! at most `LINE_MAX` bytes, and all tasks together `PENDING_MAX * LINE_MAX`, in a table
//! allocated once: a write allocates nothing (whole lines go out straight from the
//! message).

use alloc::vec::Vec;
use proto::console::{LINE_MAX, PENDING_MAX};

/// One task's unfinished line.
#[derive(Debug)]
struct Pending {
    pid: u64,
    /// When it began (the oldest goes first when the table is full).
    age: u64,
    len: usize,
    bytes: [u8; LINE_MAX],
}

/// The unfinished lines (at most [`PENDING_MAX`], in a vector allocated once).
#[derive(Debug)]
pub struct Outbox {
    pending: Vec<Pending>,
    /// Counts up: the age of each unfinished line.
    clock: u64,
}

impl Default for Outbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Outbox {
    pub fn new() -> Self {
        Self {
            pending: Vec::with_capacity(PENDING_MAX + 1),
            clock: 0,
        }
    }

    /// Task `pid` wrote `data`: every whole line it completes goes to `out` (its
    /// unfinished line and what ends it in one call; whole lines of `data` together in one
    /// more), the rest waits.
    pub fn write(&mut self, pid: u64, mut data: &[u8], out: &mut impl FnMut(&[u8])) {
        if let Some(i) = self.pending.iter().position(|p| p.pid == pid) {
            // Its unfinished line first: ended by `data`'s first newline, or filled.
            let p = &mut self.pending[i];
            let room = LINE_MAX - p.len;
            let head = &data[..data.len().min(room)];
            let take = match head.iter().position(|&b| b == b'\n') {
                Some(n) => n + 1,
                // A line longer than the bound: this much of it goes now.
                None if data.len() >= room => room,
                None => {
                    p.bytes[p.len..p.len + data.len()].copy_from_slice(data);
                    p.len += data.len();
                    return;
                }
            };
            p.bytes[p.len..p.len + take].copy_from_slice(&data[..take]);
            p.len += take;
            out(&p.bytes[..p.len]);
            self.pending.swap_remove(i);
            data = &data[take..];
        }
        // Whole lines go straight out; of the rest, pieces of the bound too.
        if let Some(n) = data.iter().rposition(|&b| b == b'\n') {
            out(&data[..=n]);
            data = &data[n + 1..];
        }
        while data.len() >= LINE_MAX {
            out(&data[..LINE_MAX]);
            data = &data[LINE_MAX..];
        }
        if !data.is_empty() {
            if self.pending.len() == PENDING_MAX {
                self.flush_oldest(out);
            }
            self.clock += 1;
            let mut p = Pending {
                pid,
                age: self.clock,
                len: data.len(),
                bytes: [0; LINE_MAX],
            };
            p.bytes[..data.len()].copy_from_slice(data);
            self.pending.push(p);
        }
    }

    /// Task `pid`'s unfinished line goes out as it is (it reads, or ended).
    pub fn flush(&mut self, pid: u64, out: &mut impl FnMut(&[u8])) {
        if let Some(i) = self.pending.iter().position(|p| p.pid == pid) {
            let p = self.pending.swap_remove(i);
            out(&p.bytes[..p.len]);
        }
    }

    /// Every unfinished line goes out, oldest first (power-off).
    pub fn flush_all(&mut self, out: &mut impl FnMut(&[u8])) {
        while !self.pending.is_empty() {
            self.flush_oldest(out);
        }
    }

    fn flush_oldest(&mut self, out: &mut impl FnMut(&[u8])) {
        let oldest = self.pending.iter().min_by_key(|p| p.age).map(|p| p.pid);
        if let Some(pid) = oldest {
            self.flush(pid, out);
        }
    }

    /// Tasks with an unfinished line, and its bytes over all of them.
    pub fn pending(&self) -> (usize, usize) {
        let bytes = self.pending.iter().map(|p| p.len).sum();
        (self.pending.len(), bytes)
    }
}
