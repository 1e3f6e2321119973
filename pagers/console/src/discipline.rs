//! The line discipline: a terminal's "cooked" mode, reduced to what a teaching system
//! needs. Typed bytes are echoed and collect in the line being edited; Enter hands the
//! line (with its newline) to the readers of descriptor 0; backspace erases the last
//! character, Ctrl-U the whole line; Ctrl-D hands the line over without a newline, or, on
//! an empty line, is end of input (a read of 0 bytes); Ctrl-C drops the line and asks the
//! server to interrupt (readers get `EINTR`, the foreground task ends). Every store is
//! bounded: a line holds at most [`LINE_MAX`] bytes, the lines waiting for a reader
//! [`INPUT_MAX`] bytes (past either, the key is dropped and the bell rings).

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use proto::console::{INPUT_MAX, LINE_MAX, keys};

/// The terminal's bell: what a key that cannot be taken echoes.
pub const BELL: u8 = 0x07;

/// What a key did, beyond its echo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// Nothing for the readers.
    Edited,
    /// A line (or end of input) is ready for a reader.
    Ready,
    /// Ctrl-C.
    Interrupt,
}

/// What a reader gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Taken {
    /// Bytes of a line (all of it, or as many as the reader asked for).
    Bytes(Vec<u8>),
    /// End of input: the read returns 0.
    End,
}

/// A line handed over, or end of input.
#[derive(Debug)]
enum Chunk {
    Line(Vec<u8>),
    End,
}

/// The line being edited and the lines waiting for a reader.
#[derive(Debug, Default)]
pub struct Discipline {
    line: Vec<u8>,
    ready: VecDeque<Chunk>,
    /// Bytes in `ready`.
    ready_bytes: usize,
}

impl Discipline {
    pub const fn new() -> Self {
        Self {
            line: Vec::new(),
            ready: VecDeque::new(),
            ready_bytes: 0,
        }
    }

    /// Takes the typed byte `b`; what the terminal shows in answer goes to `echo`.
    pub fn key(&mut self, b: u8, echo: &mut Vec<u8>) -> Key {
        match b {
            b'\r' | b'\n' => {
                echo.push(b'\n');
                let mut line = core::mem::take(&mut self.line);
                line.push(b'\n');
                self.hand_over(Chunk::Line(line), echo)
            }
            keys::ERASE | keys::BACKSPACE => {
                if self.erase_char() {
                    echo.extend_from_slice(b"\x08 \x08");
                }
                Key::Edited
            }
            keys::KILL => {
                while self.erase_char() {
                    echo.extend_from_slice(b"\x08 \x08");
                }
                Key::Edited
            }
            keys::EOF => {
                echo.extend_from_slice(b"^D\n");
                let line = core::mem::take(&mut self.line);
                let chunk = if line.is_empty() {
                    Chunk::End
                } else {
                    Chunk::Line(line)
                };
                self.hand_over(chunk, echo)
            }
            keys::INTERRUPT => {
                echo.extend_from_slice(b"^C\n");
                self.line.clear();
                Key::Interrupt
            }
            b'\t' | 0x20..=0x7e | 0x80..=0xff => {
                if self.line.len() < LINE_MAX - 1 {
                    self.line.push(b);
                    echo.push(b);
                } else {
                    echo.push(BELL);
                }
                Key::Edited
            }
            // Other control bytes (escape sequences' ESC among them) are ignored.
            _ => Key::Edited,
        }
    }

    /// Erases the line's last character (a UTF-8 character's every byte); whether there
    /// was one.
    fn erase_char(&mut self) -> bool {
        while let Some(b) = self.line.pop() {
            // Continuation bytes (10xxxxxx) belong to the character before them.
            if b & 0xc0 != 0x80 {
                return true;
            }
        }
        false
    }

    /// `chunk` is ready for a reader, unless that would pass [`INPUT_MAX`] (then it is
    /// dropped and the bell rings).
    fn hand_over(&mut self, chunk: Chunk, echo: &mut Vec<u8>) -> Key {
        let len = match &chunk {
            Chunk::Line(l) => l.len(),
            Chunk::End => 0,
        };
        if self.ready_bytes + len > INPUT_MAX {
            echo.push(BELL);
            return Key::Edited;
        }
        self.ready_bytes += len;
        self.ready.push_back(chunk);
        Key::Ready
    }

    /// Whether a reader would get something now.
    pub fn has_input(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Typed bytes waiting for a reader.
    pub fn input_bytes(&self) -> usize {
        self.ready_bytes
    }

    /// What a reader asking for up to `max` bytes gets (`None`: nothing is ready): the
    /// first line or what fits of it (the rest stays for the next read), or end of input.
    /// A read of 0 bytes gets `Bytes` of nothing and takes nothing.
    pub fn take(&mut self, max: usize) -> Option<Taken> {
        match self.ready.front_mut()? {
            Chunk::End => {
                self.ready.pop_front();
                Some(Taken::End)
            }
            Chunk::Line(line) => {
                let n = max.min(line.len());
                let bytes: Vec<u8> = line.drain(..n).collect();
                if line.is_empty() {
                    self.ready.pop_front();
                }
                self.ready_bytes -= n;
                Some(Taken::Bytes(bytes))
            }
        }
    }

    /// Puts back what [`Discipline::take`] gave to a reader that was gone.
    pub fn untake(&mut self, taken: Taken) {
        match taken {
            Taken::End => self.ready.push_front(Chunk::End),
            Taken::Bytes(b) if b.is_empty() => {}
            Taken::Bytes(mut b) => {
                self.ready_bytes += b.len();
                match self.ready.front_mut() {
                    // The rest of the same line is still there: the two join again.
                    Some(Chunk::Line(rest)) if b.last() != Some(&b'\n') => {
                        b.append(rest);
                        *rest = b;
                    }
                    _ => self.ready.push_front(Chunk::Line(b)),
                }
            }
        }
    }
}
