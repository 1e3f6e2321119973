//! The console server's messages (the 560s), and what a task's descriptors 0, 1 and 2 are.
//!
//! Every task has descriptors 0 (standard input), 1 (standard output) and 2 (standard
//! error) on the console: the number alone tells ([`owns_fd`]), as the shm server's range
//! does, so nothing is copied at `fork` or lost at `exec`. `read`, `write` and `close` of
//! them are the file protocol's messages (`crate::file::FileRequest`'s `Read`, `Write`,
//! `Close`) sent to the console server, badged with the task's pid; the server's own
//! requests are [`ConsoleRequest`].
//!
//! - `Write`: the bytes go out whole lines at a time: the server keeps what follows a
//!   task's last newline (at most [`LINE_MAX`] bytes) until the task ends its line, reads
//!   descriptor 0, or ends, so that two tasks' lines never mix.
//! - `Read` of descriptor 0 (of any of the three, as a terminal's): one line as the line
//!   discipline made it (its newline included), or what fits in the request (the rest
//!   comes with the next read), 0 at end of input (Ctrl-D on an empty line). It waits
//!   while nothing is typed; `EINTR` when Ctrl-C is typed meanwhile; `EAGAIN` when the
//!   server holds as many waiting readers as it may ([`READERS_MAX`], one per task).
//! - `Close`: nothing to do here: the runtime sends a task's `close` of 0..2 to the file
//!   server, which keeps the number closed (docs/pagers.md, "Pipes and redirected
//!   descriptors"); this answer is for a task without a file server.
//! - `Lseek`: `ESPIPE`. Anything else of the file protocol: `EBADF`.

use crate::wire::{ReplyBody, Wire};
use crate::{Label, ProtoError};

/// How many descriptors the console owns: 0, 1 and 2.
pub const FD_COUNT: u64 = 3;
/// The bytes of a task's unfinished line the server keeps; a longer one goes out in
/// pieces of this size. Also the most a typed line may hold (the rest of a longer one is
/// dropped, and the terminal's bell rings).
pub const LINE_MAX: usize = 512;
/// Readers the server keeps waiting at once (a saved reply each), one per task.
pub const READERS_MAX: usize = 16;
/// Tasks with an unfinished line the server keeps at once; past it, the oldest one's line
/// goes out as it is.
pub const PENDING_MAX: usize = 32;
/// Typed bytes waiting for a reader (lines ended with Enter or Ctrl-D); typed past it, a
/// line is dropped (and the bell rings).
pub const INPUT_MAX: usize = 4096;

/// Whether descriptor `fd` is the console's (0, 1 or 2).
pub const fn owns_fd(fd: u64) -> bool {
    fd < FD_COUNT
}

/// The line discipline's keys (ASCII control codes, as a terminal sends them).
pub mod keys {
    /// Ctrl-C: the line is dropped, readers get `EINTR`, the foreground task is killed.
    pub const INTERRUPT: u8 = 0x03;
    /// Ctrl-D: the line goes to the reader as it is, without a newline; on an empty line,
    /// end of input (a read of 0 bytes).
    pub const EOF: u8 = 0x04;
    /// Backspace (DEL, what terminals send; BS is taken too): the last byte goes.
    pub const ERASE: u8 = 0x7f;
    pub const BACKSPACE: u8 = 0x08;
    /// Ctrl-U: the whole line goes.
    pub const KILL: u8 = 0x15;
}

crate::interface! {
    /// A task's request to the console server, badged with the task's pid (beside the file
    /// protocol's `Read`, `Write` and `Close` of descriptors 0..2).
    pub enum ConsoleRequest {
        /// Make task `pid` the foreground task, the one Ctrl-C ends (0: none). Allowed when
        /// there is none, or the caller is the foreground task; else `EPERM`. The
        /// foreground task's end makes it none again.
        Foreground { pid: u64 } = Label::ConsoleForeground => fn foreground -> ();
        /// → [`ConsoleStats`]: from any task (for tests that check nothing is left behind).
        Stats = Label::ConsoleStats => fn stats -> ConsoleStats;
    }
}

/// `Stats`' result: what the server holds now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsoleStats {
    /// Readers waiting (saved replies).
    pub readers: u64,
    /// Tasks with an unfinished line, and its bytes over all of them.
    pub pending_tasks: u64,
    pub pending_bytes: u64,
    /// Typed bytes waiting for a reader.
    pub input_bytes: u64,
    /// The foreground task (0: none).
    pub foreground: u64,
    /// Interrupts (Ctrl-C) typed since boot.
    pub interrupts: u64,
}

impl ReplyBody for ConsoleStats {
    fn encode_body(&self, w: &mut Wire) {
        for v in [
            self.readers,
            self.pending_tasks,
            self.pending_bytes,
            self.input_bytes,
            self.foreground,
            self.interrupts,
        ] {
            w.push(v);
        }
    }

    fn decode_body(w: &[u64]) -> Result<Self, ProtoError> {
        let Some(
            &[
                readers,
                pending_tasks,
                pending_bytes,
                input_bytes,
                foreground,
                interrupts,
            ],
        ) = w.first_chunk::<6>()
        else {
            return Err(ProtoError::Short);
        };
        Ok(Self {
            readers,
            pending_tasks,
            pending_bytes,
            input_bytes,
            foreground,
            interrupts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode_reply, encode_reply};

    #[test]
    fn console_requests_round_trip() {
        for r in [
            ConsoleRequest::Foreground { pid: 12 },
            ConsoleRequest::Stats,
        ] {
            let w = r.encode();
            assert_eq!(ConsoleRequest::decode(w.label(), w.mrs()), Ok(r));
        }
        assert_eq!(
            ConsoleRequest::decode(Label::ConsoleForeground as u64, &[]),
            Err(ProtoError::Short)
        );
        let s = ConsoleStats {
            readers: 1,
            pending_tasks: 2,
            pending_bytes: 3,
            input_bytes: 4,
            foreground: 5,
            interrupts: 6,
        };
        let w = encode_reply(&Ok(s));
        assert_eq!(decode_reply::<ConsoleStats>(w.mrs()), Ok(Ok(s)));
    }

    #[test]
    fn the_console_owns_descriptors_0_to_2() {
        assert!(owns_fd(0) && owns_fd(1) && owns_fd(2));
        assert!(!owns_fd(3) && !owns_fd(u64::MAX));
    }
}
