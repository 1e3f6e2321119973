//! The buffered stream: C's `FILE` over a [`Backend`].

use crate::scan::{copy, copy_through};
use alloc::vec::Vec;
use proto::Errno;

/// The buffer's size (`BUFSIZ`).
pub const BUFSIZ: usize = 4096;

/// What a stream reads from and writes to (a file descriptor in `rt::stdio`).
pub trait Backend {
    /// Up to `buf.len()` bytes; 0 at the end.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno>;
    /// All of `data` (or an error).
    fn write(&mut self, data: &[u8]) -> Result<(), Errno>;
    /// Moves the position by `delta` (back over bytes read ahead into the buffer, when a
    /// reading stream starts writing).
    fn seek_by(&mut self, delta: i64) -> Result<(), Errno>;
}

/// What the buffer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Bytes read ahead: `buf[start..end]` not handed out yet.
    Reading,
    /// Bytes written: `buf[..end]` not given to the backend yet.
    Writing,
}

/// A buffered stream (`FILE *`): reads fill the 4 KiB buffer with one backend read and hand
/// it out; writes collect in it and go out with one backend write when it is full, at
/// [`Stream::flush`] and at [`Stream::close`]. Reads and writes larger than the buffer
/// skip it (one backend call, no second copy).
pub struct Stream<B: Backend> {
    backend: B,
    buf: Vec<u8>,
    mode: Mode,
    start: usize,
    end: usize,
    eof: bool,
    error: Option<Errno>,
}

impl<B: Backend> Stream<B> {
    pub fn new(backend: B) -> Self {
        Self {
            backend,
            buf: alloc::vec![0; BUFSIZ],
            mode: Mode::Reading,
            start: 0,
            end: 0,
            eof: false,
            error: None,
        }
    }

    /// The backend (its descriptor).
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// `feof`: a read found the end.
    pub fn eof(&self) -> bool {
        self.eof
    }

    /// `ferror`: the first error a call met (`clearerr` is [`Stream::clear_error`]).
    pub fn error(&self) -> Option<Errno> {
        self.error
    }

    pub fn clear_error(&mut self) {
        self.error = None;
        self.eof = false;
    }

    fn failed<T>(&mut self, e: Errno) -> Result<T, Errno> {
        self.error.get_or_insert(e);
        Err(e)
    }

    /// Into reading: written bytes go out first.
    fn enter_reading(&mut self) -> Result<(), Errno> {
        if self.mode == Mode::Writing {
            self.flush()?;
            self.mode = Mode::Reading;
            self.start = 0;
            self.end = 0;
        }
        Ok(())
    }

    /// Into writing: the position goes back over bytes read ahead and not handed out.
    fn enter_writing(&mut self) -> Result<(), Errno> {
        if self.mode == Mode::Reading {
            let ahead = self.end - self.start;
            if ahead > 0
                && let Err(e) = self.backend.seek_by(-(ahead as i64))
            {
                return self.failed(e);
            }
            self.mode = Mode::Writing;
            self.start = 0;
            self.end = 0;
        }
        Ok(())
    }

    /// The bytes read ahead, refilled with one backend read when empty; empty at the end
    /// (which sticks, as C11 has it, until [`Stream::clear_error`]).
    fn fill(&mut self) -> Result<&[u8], Errno> {
        if self.start == self.end && !self.eof {
            let n = match self.backend.read(&mut self.buf) {
                Ok(n) => n.min(BUFSIZ),
                Err(e) => return self.failed(e),
            };
            self.start = 0;
            self.end = n;
            if n == 0 {
                self.eof = true;
            }
        }
        Ok(&self.buf[self.start..self.end])
    }

    /// `fgets`: bytes up to and including the next newline, at most `out.len()` of them (C
    /// keeps one for the NUL; here the count says where the line ends); 0 at the end.
    pub fn gets(&mut self, out: &mut [u8]) -> Result<usize, Errno> {
        self.enter_reading()?;
        let mut done = 0;
        while done < out.len() {
            let avail = self.fill()?;
            if avail.is_empty() {
                break;
            }
            let room = (out.len() - done).min(avail.len());
            // The newline search and the copy in one pass over the bytes.
            let (take, line_end) = copy_through(&mut out[done..done + room], &avail[..room], b'\n');
            self.start += take;
            done += take;
            if line_end {
                break;
            }
        }
        Ok(done)
    }

    /// `fread`: up to `out.len()` bytes; fewer only at the end.
    pub fn read(&mut self, out: &mut [u8]) -> Result<usize, Errno> {
        self.enter_reading()?;
        let mut done = 0;
        while done < out.len() {
            if self.start == self.end && !self.eof && out.len() - done >= BUFSIZ {
                // Large: straight into the caller's buffer.
                let n = match self.backend.read(&mut out[done..]) {
                    Ok(n) => n,
                    Err(e) => return self.failed(e),
                };
                if n == 0 {
                    self.eof = true;
                    break;
                }
                done += n;
                continue;
            }
            let avail = self.fill()?;
            if avail.is_empty() {
                break;
            }
            let take = avail.len().min(out.len() - done);
            copy(&mut out[done..done + take], &avail[..take]);
            self.start += take;
            done += take;
        }
        Ok(done)
    }

    /// `fwrite`: all of `data` into the buffer (out with one backend write each time it
    /// fills); data of a buffer or more goes out at once after what the buffer holds.
    pub fn write(&mut self, data: &[u8]) -> Result<usize, Errno> {
        self.enter_writing()?;
        if self.end + data.len() > BUFSIZ && self.end > 0 {
            // Fill the buffer first, so that backend writes stay whole buffers.
            let k = BUFSIZ - self.end;
            let (head, _) = data.split_at(k.min(data.len()));
            copy(&mut self.buf[self.end..self.end + head.len()], head);
            self.end += head.len();
            self.flush()?;
            return Ok(head.len() + self.write(&data[head.len()..])?);
        }
        if data.len() >= BUFSIZ {
            if let Err(e) = self.backend.write(data) {
                return self.failed(e);
            }
            return Ok(data.len());
        }
        copy(&mut self.buf[self.end..self.end + data.len()], data);
        self.end += data.len();
        Ok(data.len())
    }

    /// `fputs`.
    pub fn puts(&mut self, s: &str) -> Result<(), Errno> {
        self.write(s.as_bytes()).map(|_| ())
    }

    /// `fflush`: written bytes go to the backend (a reading stream: nothing to do).
    pub fn flush(&mut self) -> Result<(), Errno> {
        if self.mode == Mode::Writing && self.end > 0 {
            let n = self.end;
            self.end = 0;
            if let Err(e) = self.backend.write(&self.buf[..n]) {
                return self.failed(e);
            }
        }
        Ok(())
    }

    /// `fprintf`: formats into the buffer (`rt::fprintf!` is the macro).
    pub fn print(&mut self, args: core::fmt::Arguments<'_>) -> Result<(), Errno> {
        struct Adapter<'a, B: Backend>(&'a mut Stream<B>, Option<Errno>);
        impl<B: Backend> core::fmt::Write for Adapter<'_, B> {
            fn write_str(&mut self, s: &str) -> core::fmt::Result {
                self.0.write(s.as_bytes()).map(|_| ()).map_err(|e| {
                    self.1 = Some(e);
                    core::fmt::Error
                })
            }
        }
        let mut a = Adapter(self, None);
        match core::fmt::write(&mut a, args) {
            Ok(()) => Ok(()),
            Err(_) => Err(a.1.unwrap_or(Errno::EINVAL)),
        }
    }

    /// `fclose` without the close: flushes and gives the backend back (the caller closes
    /// it, even when the flush failed, and reports the first error).
    pub fn finish(mut self) -> (B, Result<(), Errno>) {
        let r = self.flush();
        (self.backend, r)
    }
}
