//! Buffered streams in the spirit of C's stdio: [`File`] (`FILE *`) over a file descriptor,
//! with one 4 KiB buffer ([`BUFSIZ`]) for reading or writing: `fopen`/`fdopen`
//! ([`File::open`], [`File::create`], [`fopen`], [`File::from_fd`]), `fgets`
//! ([`File::read_line`]), `fread`, `fwrite`, `fputs`, `fprintf` ([`fprintf!`](crate::fprintf),
//! over `core::fmt`), `fflush`, `fclose`. The buffering is `bufio::Stream` (host-tested);
//! `fgets` searches for the newline and copies in one pass, 64 bytes a step (NEON:
//! `bufio::copy_through`), and the buffer is filled and drained
//! with `read`/`write`, which copy straight from and to the file's page-cache frames
//! (`crate::fastio`).

use crate::file;
use bufio::{Backend, Stream};
use proto::Errno;

pub use bufio::BUFSIZ;

/// A descriptor as a stream's backend.
pub struct Fd(u64);

impl Backend for Fd {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        file::read(self.0, buf)
    }
    fn write(&mut self, data: &[u8]) -> Result<(), Errno> {
        let n = file::write(self.0, data)?;
        if n == data.len() {
            Ok(())
        } else {
            Err(Errno::EIO)
        }
    }
    fn seek_by(&mut self, delta: i64) -> Result<(), Errno> {
        file::lseek(self.0, delta, file::Whence::Cur).map(|_| ())
    }
}

/// An open stream (`FILE *`).
pub struct File {
    stream: Stream<Fd>,
}

/// `fopen(name, mode)`: `"r"` (read), `"r+"` (read and write), `"w"`/`"w+"` (created or
/// cut to nothing), `"a"`/`"a+"` (created, every write at the end); a `b` is accepted and
/// changes nothing. `"w"` and `"a"` open the descriptor for reading too, so that its bytes
/// take the mapped path (`crate::fastio`; a write-only descriptor cannot be mapped).
/// `EINVAL` for another mode.
pub fn fopen(name: &str, mode: &str) -> Result<File, Errno> {
    use file::{O_APPEND, O_RDONLY, O_RDWR};
    use proto::file::open_flags::{CREAT, TRUNC};
    let mode: fopen_mode::Mode = fopen_mode::parse(mode).ok_or(Errno::EINVAL)?;
    let flags = match mode {
        fopen_mode::Mode::Read => O_RDONLY,
        fopen_mode::Mode::ReadWrite => O_RDWR,
        fopen_mode::Mode::Write => O_RDWR | CREAT | TRUNC,
        fopen_mode::Mode::Append => O_RDWR | CREAT | O_APPEND,
    };
    Ok(File::from_fd(file::open(name, flags)?))
}

/// The `mode` strings of `fopen`.
mod fopen_mode {
    pub enum Mode {
        Read,
        ReadWrite,
        Write,
        Append,
    }

    pub fn parse(mode: &str) -> Option<Mode> {
        let mut plain = [0u8; 2];
        for (n, &c) in mode.as_bytes().iter().filter(|&&c| c != b'b').enumerate() {
            *plain.get_mut(n)? = c;
        }
        Some(match &plain {
            b"r\0" => Mode::Read,
            b"r+" => Mode::ReadWrite,
            b"w\0" | b"w+" => Mode::Write,
            b"a\0" | b"a+" => Mode::Append,
            _ => return None,
        })
    }
}

impl File {
    /// `fopen(name, "r")`.
    pub fn open(name: &str) -> Result<Self, Errno> {
        fopen(name, "r")
    }

    /// `fopen(name, "w")`.
    pub fn create(name: &str) -> Result<Self, Errno> {
        fopen(name, "w")
    }

    /// `fdopen(fd, mode)`: buffered reading and writing of an open descriptor.
    pub fn from_fd(fd: u64) -> Self {
        Self {
            stream: Stream::new(Fd(fd)),
        }
    }

    /// The descriptor (`fileno`).
    pub fn fd(&self) -> u64 {
        self.stream.backend().0
    }

    /// `fgets`: bytes up to and including the next newline, at most `out.len()` of them
    /// (C's `fgets` keeps one for the NUL; here the count says where the line ends). 0 at end
    /// of file.
    pub fn read_line(&mut self, out: &mut [u8]) -> Result<usize, Errno> {
        self.stream.gets(out)
    }

    /// `fgets`, as [`File::read_line`].
    pub fn fgets(&mut self, out: &mut [u8]) -> Result<usize, Errno> {
        self.stream.gets(out)
    }

    /// `fread`: up to `out.len()` bytes; fewer only at end of file.
    pub fn read(&mut self, out: &mut [u8]) -> Result<usize, Errno> {
        self.stream.read(out)
    }

    /// `fwrite`: all of `data` (buffered).
    pub fn write(&mut self, data: &[u8]) -> Result<usize, Errno> {
        self.stream.write(data)
    }

    /// `fputs`.
    pub fn puts(&mut self, s: &str) -> Result<(), Errno> {
        self.stream.puts(s)
    }

    /// `fprintf` (the [`fprintf!`](crate::fprintf) macro calls it).
    pub fn print(&mut self, args: core::fmt::Arguments<'_>) -> Result<(), Errno> {
        self.stream.print(args)
    }

    /// `fflush`.
    pub fn flush(&mut self) -> Result<(), Errno> {
        self.stream.flush()
    }

    /// `feof`.
    pub fn eof(&self) -> bool {
        self.stream.eof()
    }

    /// `ferror`: the first error a call met.
    pub fn error(&self) -> Option<Errno> {
        self.stream.error()
    }

    /// `fclose`: flushes and closes the descriptor; the first error of the two.
    pub fn close(self) -> Result<(), Errno> {
        let (fd, flushed) = self.stream.finish();
        let closed = file::close(fd.0);
        flushed.and(closed)
    }
}

/// `fprintf(fp, fmt, ...)`: `rt::fprintf!(fp, "{} {}\n", a, b)` formats into `fp`'s buffer
/// (`core::fmt`); the result is `Result<(), Errno>`.
#[macro_export]
macro_rules! fprintf {
    ($fp:expr, $($arg:tt)*) => {
        $crate::stdio::File::print(&mut $fp, format_args!($($arg)*))
    };
}
