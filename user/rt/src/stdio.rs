//! A small buffered reader in the spirit of C's stdio: [`File`] reads the file server
//! 4 KiB at a time and hands out lines ([`File::read_line`], `fgets`) and bytes from its
//! buffer, so that many small reads cost one call to the server per buffer.

use crate::file;
use alloc::vec::Vec;
use proto::Errno;

extern crate alloc;

/// The buffer's size (`BUFSIZ`).
pub const BUFSIZ: usize = 4096;

/// An open file with a read buffer (`FILE *` opened for reading).
pub struct File {
    fd: u64,
    buf: Vec<u8>,
    /// `buf[start..end]` holds bytes read from the server and not yet handed out.
    start: usize,
    end: usize,
}

impl File {
    /// `fopen(name, "r")`.
    pub fn open(name: &str) -> Result<Self, Errno> {
        Ok(Self::from_fd(file::open(name, file::O_RDONLY)?))
    }

    /// `fdopen(fd, "r")`: buffered reading of an open descriptor.
    pub fn from_fd(fd: u64) -> Self {
        Self {
            fd,
            buf: alloc::vec![0; BUFSIZ],
            start: 0,
            end: 0,
        }
    }

    /// The descriptor.
    pub fn fd(&self) -> u64 {
        self.fd
    }

    /// Refills an empty buffer; false at end of file.
    fn fill(&mut self) -> Result<bool, Errno> {
        if self.start < self.end {
            return Ok(true);
        }
        let n = file::read(self.fd, &mut self.buf)?;
        self.start = 0;
        self.end = n;
        Ok(n > 0)
    }

    /// `fgets`: bytes up to and including the next newline, at most `out.len()` of them
    /// (C's `fgets` keeps one for the NUL; here the count says where the line ends). 0 at end
    /// of file.
    pub fn read_line(&mut self, out: &mut [u8]) -> Result<usize, Errno> {
        let mut done = 0;
        while done < out.len() && self.fill()? {
            let avail = &self.buf[self.start..self.end];
            let room = out.len() - done;
            let (take, newline) = match avail.iter().take(room).position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (avail.len().min(room), false),
            };
            out[done..done + take].copy_from_slice(&avail[..take]);
            self.start += take;
            done += take;
            if newline {
                break;
            }
        }
        Ok(done)
    }

    /// `fread`: up to `out.len()` bytes; fewer only at end of file.
    pub fn read(&mut self, out: &mut [u8]) -> Result<usize, Errno> {
        let mut done = 0;
        while done < out.len() && self.fill()? {
            let take = (self.end - self.start).min(out.len() - done);
            out[done..done + take].copy_from_slice(&self.buf[self.start..self.start + take]);
            self.start += take;
            done += take;
        }
        Ok(done)
    }

    /// `fclose`.
    pub fn close(self) -> Result<(), Errno> {
        file::close(self.fd)
    }
}
