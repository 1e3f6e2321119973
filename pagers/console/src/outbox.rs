//! The tasks' unfinished output lines. A task's output goes out a whole line at a time:
//! what follows its last newline waits here (at most [`LINE_MAX`] bytes; a longer line
//! goes out in pieces of that size) until the task ends the line, reads descriptor 0 (a
//! prompt), ends, or the machine powers off. At most [`PENDING_MAX`] tasks wait so; one
//! more, and the oldest one's line goes out as it is. So a task can make the server hold
//! at most `LINE_MAX` bytes, and all tasks together `PENDING_MAX * LINE_MAX`.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use proto::console::{LINE_MAX, PENDING_MAX};

/// The unfinished lines, by pid, and the order they began in.
#[derive(Debug, Default)]
pub struct Outbox {
    pending: BTreeMap<u64, (u64, Vec<u8>)>,
    /// Counts up: the age of each unfinished line.
    clock: u64,
}

impl Outbox {
    pub const fn new() -> Self {
        Self {
            pending: BTreeMap::new(),
            clock: 0,
        }
    }

    /// Task `pid` wrote `data`: every whole line it completes goes to `out` (each line in
    /// one call), the rest waits.
    pub fn write(&mut self, pid: u64, mut data: &[u8], out: &mut impl FnMut(&[u8])) {
        while !data.is_empty() {
            let (age, line) = match self.pending.remove(&pid) {
                Some(p) => p,
                None => {
                    self.clock += 1;
                    (self.clock, Vec::new())
                }
            };
            let mut line = line;
            let room = LINE_MAX - line.len();
            let cut = data[..data.len().min(room)]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| i + 1);
            match cut {
                Some(n) => {
                    line.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    out(&line);
                }
                None if data.len() >= room => {
                    // A line longer than the bound: this much of it goes now.
                    line.extend_from_slice(&data[..room]);
                    data = &data[room..];
                    out(&line);
                }
                None => {
                    line.extend_from_slice(data);
                    data = &[];
                    self.pending.insert(pid, (age, line));
                }
            }
        }
        if self.pending.len() > PENDING_MAX {
            self.flush_oldest(out);
        }
    }

    /// Task `pid`'s unfinished line goes out as it is (it reads, or ended).
    pub fn flush(&mut self, pid: u64, out: &mut impl FnMut(&[u8])) {
        if let Some((_, line)) = self.pending.remove(&pid) {
            out(&line);
        }
    }

    /// Every unfinished line goes out, oldest first (power-off).
    pub fn flush_all(&mut self, out: &mut impl FnMut(&[u8])) {
        while !self.pending.is_empty() {
            self.flush_oldest(out);
        }
    }

    fn flush_oldest(&mut self, out: &mut impl FnMut(&[u8])) {
        let oldest = self
            .pending
            .iter()
            .min_by_key(|(_, (age, _))| *age)
            .map(|(&pid, _)| pid);
        if let Some(pid) = oldest {
            self.flush(pid, out);
        }
    }

    /// Tasks with an unfinished line, and its bytes over all of them.
    pub fn pending(&self) -> (usize, usize) {
        let bytes = self.pending.values().map(|(_, l)| l.len()).sum();
        (self.pending.len(), bytes)
    }
}
