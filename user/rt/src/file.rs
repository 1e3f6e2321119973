//! POSIX-shaped file calls to the file server (`proto::file`): `open`, `read`, `pread`,
//! `close`, `stat`. Descriptors are the server's, per task (not inherited by `fork` yet).

use libmk::{Cap, Endpoint};
use proto::file::{AT_POSITION, Path, READ_DATA_MR, READ_MAX, unpack_data};
use proto::{Errno, FileRequest, OpenReply, StatReply, task_slots};

pub use proto::file::open_flags::{RDONLY as O_RDONLY, RDWR as O_RDWR, WRONLY as O_WRONLY};

const FILE: Cap<Endpoint> = Cap::from_cptr(task_slots::FILE);

/// What `stat` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    pub is_dir: bool,
}

fn path(name: &str) -> Result<Path, Errno> {
    Path::new(name).map_err(|_| {
        if name.len() > Path::MAX {
            Errno::ENAMETOOLONG
        } else {
            Errno::EINVAL
        }
    })
}

/// `open(name, flags)`: a descriptor. `ENOENT` if there is no such file, `EISDIR` for a
/// directory, `EROFS` for write access (the file server reads only, so far).
pub fn open(name: &str, flags: u64) -> Result<u64, Errno> {
    let req = FileRequest::Open {
        path: path(name)?,
        flags,
    };
    crate::ipc::call::<OpenReply>(FILE, &req.encode()).map(|r| r.fd)
}

/// `open` that also returns the file's size.
pub fn open_sized(name: &str, flags: u64) -> Result<(u64, u64), Errno> {
    let req = FileRequest::Open {
        path: path(name)?,
        flags,
    };
    crate::ipc::call::<OpenReply>(FILE, &req.encode()).map(|r| (r.fd, r.size))
}

/// One `Read` of at most [`READ_MAX`] bytes into `buf`; the count.
fn read_once(fd: u64, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    let len = buf.len().min(READ_MAX);
    let req = FileRequest::Read {
        fd,
        offset,
        len: len as u64,
    };
    let reply = FILE
        .call(&crate::ipc::message(&req.encode()))
        .map_err(Errno::from)?;
    let n = proto::reply_result::<u64>(crate::ipc::received(&reply).mrs())?;
    let n = usize::try_from(n).map_err(|_| Errno::EIO)?;
    if n > len || (n > 0 && reply.info().length < READ_DATA_MR + n.div_ceil(8)) {
        return Err(Errno::EIO);
    }
    let Some(ipc) = libmk::ipc_buffer() else {
        return Err(Errno::EIO);
    };
    unpack_data(&ipc.mrs[READ_DATA_MR..], &mut buf[..n]);
    Ok(n)
}

/// Reads until `buf` is full or the file ends, [`READ_MAX`] bytes per call; the count.
fn read_all(fd: u64, offset: Option<u64>, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut done = 0;
    while done < buf.len() {
        let at = offset.map_or(AT_POSITION, |o| o + done as u64);
        let n = read_once(fd, at, &mut buf[done..])?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}

/// `read(fd, buf)`: bytes from the descriptor's position, which advances; 0 at end of
/// file. `EBADF` for a descriptor this task does not hold.
pub fn read(fd: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    read_all(fd, None, buf)
}

/// `pread(fd, buf, offset)`: bytes at `offset`; the position stays.
pub fn pread(fd: u64, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
    if offset == AT_POSITION {
        return Err(Errno::EINVAL);
    }
    read_all(fd, Some(offset), buf)
}

/// `close(fd)`.
pub fn close(fd: u64) -> Result<(), Errno> {
    crate::ipc::call::<()>(FILE, &FileRequest::Close { fd }.encode())
}

/// `stat(name)`: size and kind.
pub fn stat(name: &str) -> Result<Stat, Errno> {
    let req = FileRequest::Stat { path: path(name)? };
    crate::ipc::call::<StatReply>(FILE, &req.encode()).map(|r| Stat {
        size: r.size,
        is_dir: r.is_dir,
    })
}
