//! Where a built-in writes: a descriptor (1, 2, or the file of a `>`), a line at a time.

use alloc::vec::Vec;
use core::fmt;
use rt::Errno;

/// Bytes collected before a write (one console message carries 464).
const CHUNK: usize = 448;

/// A built-in's output on descriptor `fd`: formatted text collects here and goes out once
/// [`CHUNK`] bytes have collected, and at [`Out::finish`] (the console server puts a
/// task's pieces together into whole lines).
pub struct Out {
    fd: u64,
    buf: Vec<u8>,
    /// The first write error (the rest of the output is dropped).
    pub error: Option<Errno>,
}

impl Out {
    pub fn new(fd: u64) -> Self {
        Self {
            fd,
            buf: Vec::new(),
            error: None,
        }
    }

    /// Writes raw bytes (a file's contents for `cat`).
    pub fn bytes(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if self.buf.try_reserve(bytes.len()).is_err() {
            self.error = Some(Errno::ENOMEM);
            return;
        }
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        let mut at = 0;
        while at < self.buf.len() && self.error.is_none() {
            match rt::file::write(self.fd, &self.buf[at..]) {
                Ok(0) => self.error = Some(Errno::EIO),
                Ok(n) => at += n,
                Err(e) => self.error = Some(e),
            }
        }
        self.buf.clear();
    }

    /// Sends what is left; the first error, if any.
    pub fn finish(mut self) -> Result<(), Errno> {
        self.flush();
        match self.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl fmt::Write for Out {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

/// `writeln!` to an [`Out`], ignoring the result (errors are kept in the `Out`).
#[macro_export]
macro_rules! outln {
    ($out:expr) => {{ let _ = core::fmt::Write::write_str($out, "\n"); }};
    ($out:expr, $($arg:tt)*) => {{ let _ = core::fmt::Write::write_fmt($out, format_args!("{}\n", format_args!($($arg)*))); }};
}
