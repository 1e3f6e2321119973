//! The FAT volume (through `embedded-sdmmc`) and the descriptor table.
//!
//! `embedded-sdmmc` lets a file be open once, so the server opens each file once
//! ([`Shared`], counted) and gives every `open` its own descriptor with its own position.
//! Descriptors are per task (the badge is the pid): another task's number is `EBADF`.

extern crate alloc;

use crate::disk::{BlockDev, IoError};
use alloc::collections::BTreeMap;
use alloc::string::String;
use embedded_sdmmc::{
    Error, Mode, RawDirectory, RawFile, RawVolume, TimeSource, Timestamp, VolumeIdx, VolumeManager,
};
use proto::Errno;
use proto::file::Path;

/// Directories open at once (a path walk holds two), files open at once.
const MAX_DIRS: usize = 4;
const MAX_FILES: usize = 32;
/// The first descriptor number a task gets (0..2 are stdin, stdout, stderr by convention).
const FIRST_FD: u64 = 3;

/// No clock: files keep the time they were written on the host.
pub struct NoClock;

impl TimeSource for NoClock {
    fn get_timestamp(&self) -> Timestamp {
        Timestamp::from_fat(0x5821, 0) // 2024-01-01 00:00:00
    }
}

type Volumes = VolumeManager<BlockDev, NoClock, MAX_DIRS, MAX_FILES, 1>;

/// A file opened once for every descriptor naming it.
struct Shared {
    raw: RawFile,
    size: u64,
    refs: u32,
}

/// One `open`: which file, and where `read` continues.
struct Fd {
    key: String,
    pos: u64,
}

pub struct Files {
    volumes: Volumes,
    volume: RawVolume,
    shared: BTreeMap<String, Shared>,
    /// (pid, fd) → descriptor.
    fds: BTreeMap<(u64, u64), Fd>,
}

/// What a path names.
pub enum Found {
    File(RawFile),
    Dir,
}

fn errno(e: Error<IoError>) -> Errno {
    match e {
        Error::NotFound => Errno::ENOENT,
        Error::OpenedDirAsFile => Errno::EISDIR,
        Error::OpenedFileAsDir => Errno::ENOTDIR,
        Error::TooManyOpenFiles | Error::TooManyOpenDirs => Errno::ENFILE,
        Error::FilenameError(_) => Errno::ENOENT,
        Error::FileAlreadyOpen => Errno::EBUSY,
        _ => Errno::EIO,
    }
}

impl Files {
    /// Opens the first partition's FAT volume.
    pub fn mount(dev: BlockDev) -> Result<Self, Error<IoError>> {
        let volumes = Volumes::new_with_limits(dev, NoClock, 5000);
        let volume = volumes.open_raw_volume(VolumeIdx(0))?;
        Ok(Self {
            volumes,
            volume,
            shared: BTreeMap::new(),
            fds: BTreeMap::new(),
        })
    }

    /// The key of a path: its components, lower case (FAT compares names without case).
    fn key(path: &Path) -> String {
        let mut k = String::new();
        for c in path.components() {
            k.push('/');
            k.extend(c.chars().map(|ch| ch.to_ascii_lowercase()));
        }
        k
    }

    /// Walks `path` from the root and opens the file it names (8.3 name first, then the
    /// long name), or reports a directory.
    fn find(&self, path: &Path) -> Result<Found, Errno> {
        let v = &self.volumes;
        let mut dir: RawDirectory = v.open_root_dir(self.volume).map_err(errno)?;
        let mut parts = path.components().peekable();
        let result = loop {
            let Some(name) = parts.next() else {
                break Ok(Found::Dir); // the root itself
            };
            if parts.peek().is_some() {
                // A directory on the way (8.3 names only).
                match v.open_dir(dir, name) {
                    Ok(sub) => {
                        let _ = v.close_dir(dir);
                        dir = sub;
                        continue;
                    }
                    Err(e) => break Err(errno(e)),
                }
            }
            let opened = match v.open_file_in_dir(dir, name, Mode::ReadOnly) {
                Err(Error::FilenameError(_) | Error::NotFound) => {
                    v.open_long_name_file_in_dir(dir, name, Mode::ReadOnly)
                }
                other => other,
            };
            break match opened {
                Ok(f) => Ok(Found::File(f)),
                Err(Error::OpenedDirAsFile) => Ok(Found::Dir),
                Err(e) => Err(errno(e)),
            };
        };
        let _ = v.close_dir(dir);
        result
    }

    /// `Open`: a new descriptor of task `pid` for `path` (read-only), and the size.
    pub fn open(&mut self, pid: u64, path: &Path, flags: u64) -> Result<(u64, u64), Errno> {
        if flags & proto::file::open_flags::ACCMODE != proto::file::open_flags::RDONLY {
            return Err(Errno::EROFS);
        }
        let key = Self::key(path);
        let size = match self.shared.get_mut(&key) {
            Some(s) => {
                s.refs += 1;
                s.size
            }
            None => match self.find(path)? {
                Found::Dir => return Err(Errno::EISDIR),
                Found::File(raw) => {
                    let size = u64::from(self.volumes.file_length(raw).map_err(errno)?);
                    self.shared
                        .insert(key.clone(), Shared { raw, size, refs: 1 });
                    size
                }
            },
        };
        let fd = (FIRST_FD..)
            .find(|fd| !self.fds.contains_key(&(pid, *fd)))
            .unwrap_or(FIRST_FD);
        self.fds.insert((pid, fd), Fd { key, pos: 0 });
        Ok((fd, size))
    }

    /// `Read`: up to `out.len()` bytes at `offset` (`AT_POSITION`: the descriptor's
    /// position, advanced); the count.
    pub fn read(&mut self, pid: u64, fd: u64, offset: u64, out: &mut [u8]) -> Result<usize, Errno> {
        let d = self.fds.get_mut(&(pid, fd)).ok_or(Errno::EBADF)?;
        let s = self.shared.get(&d.key).ok_or(Errno::EBADF)?;
        let at = if offset == proto::file::AT_POSITION {
            d.pos
        } else {
            offset
        };
        if at >= s.size || out.is_empty() {
            return Ok(0);
        }
        let at32 = u32::try_from(at).map_err(|_| Errno::EOVERFLOW)?;
        self.volumes
            .file_seek_from_start(s.raw, at32)
            .map_err(errno)?;
        let n = self.volumes.read(s.raw, out).map_err(errno)?;
        if offset == proto::file::AT_POSITION {
            d.pos += n as u64;
        }
        Ok(n)
    }

    /// `Close`: forgets the descriptor, and the file when it was the last.
    pub fn close(&mut self, pid: u64, fd: u64) -> Result<(), Errno> {
        let d = self.fds.remove(&(pid, fd)).ok_or(Errno::EBADF)?;
        if let Some(s) = self.shared.get_mut(&d.key) {
            s.refs -= 1;
            if s.refs == 0 {
                let raw = s.raw;
                self.shared.remove(&d.key);
                self.volumes.close_file(raw).map_err(errno)?;
            }
        }
        Ok(())
    }

    /// `Stat`: size, and whether it is a directory.
    pub fn stat(&mut self, path: &Path) -> Result<(u64, bool), Errno> {
        if let Some(s) = self.shared.get(&Self::key(path)) {
            return Ok((s.size, false));
        }
        match self.find(path)? {
            Found::Dir => Ok((0, true)),
            Found::File(raw) => {
                let size = self.volumes.file_length(raw).map_err(errno);
                let closed = self.volumes.close_file(raw).map_err(errno);
                closed?;
                Ok((u64::from(size?), false))
            }
        }
    }
}
