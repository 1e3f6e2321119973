//! The file server's messages: tasks' requests to `file` (the 500s) and their results.
//!
//! Requests fit the six register message registers. File data comes back in the reply's
//! message registers MR6..MR63, which the kernel copies from the server's IPC buffer into
//! the caller's: [`READ_MAX`] bytes per `Read`. (A shared buffer per client would carry more
//! per call but needs a mapping set up between the two; the page cache's frames will reach
//! tasks through `mmap` instead.)

use crate::wire::{ReplyBody, Text, Wire};
use crate::{Label, ProtoError};

/// The first message register of `Read`'s data.
pub const READ_DATA_MR: usize = 6;
/// Message registers a message can have (MR0..MR63).
pub const MESSAGE_MRS: usize = 64;
/// The most bytes one `Read` returns: MR6..MR63.
pub const READ_MAX: usize = (MESSAGE_MRS - READ_DATA_MR) * 8;

/// `open` flags (Linux's values on AArch64: `O_DIRECT` is `0o200000` there).
pub mod open_flags {
    pub const RDONLY: u64 = 0;
    pub const WRONLY: u64 = 1;
    pub const RDWR: u64 = 2;
    pub const ACCMODE: u64 = 3;
    pub const CREAT: u64 = 0o100;
    pub const EXCL: u64 = 0o200;
    pub const TRUNC: u64 = 0o1000;
    /// Every `write` goes to the end of the file (`pwrite` keeps its offset, as POSIX).
    pub const APPEND: u64 = 0o2000;
    /// The descriptor goes at `exec` (init's `TaskExec` notice).
    pub const CLOEXEC: u64 = 0o2000000;
    /// Bypass the page cache: whole-sector transfers at sector-aligned offsets and lengths.
    pub const DIRECT: u64 = 0o200000;
    /// Every `write` reaches the disk before it returns (`O_DSYNC`; `O_SYNC` includes it).
    pub const DSYNC: u64 = 0o10000;
    pub const SYNC: u64 = 0o4010000;
    /// The path must name a directory (`ENOTDIR` for a file; directories cannot be opened
    /// yet: `EISDIR`).
    pub const DIRECTORY: u64 = 0o40000;
    /// Accepted and without effect here: no terminals (`O_NOCTTY`), files never block
    /// (`O_NONBLOCK`), no symbolic links (`O_NOFOLLOW`), offsets are always 64-bit
    /// (`O_LARGEFILE`), no access times (`O_NOATIME`).
    pub const NOCTTY: u64 = 0o400;
    pub const NONBLOCK: u64 = 0o4000;
    pub const NOFOLLOW: u64 = 0o100000;
    pub const LARGEFILE: u64 = 0o400000;
    pub const NOATIME: u64 = 0o1000000;
    /// Every flag the file server knows.
    pub const KNOWN: u64 = ACCMODE
        | CREAT
        | EXCL
        | TRUNC
        | APPEND
        | DIRECT
        | CLOEXEC
        | SYNC
        | DIRECTORY
        | NOCTTY
        | NONBLOCK
        | NOFOLLOW
        | LARGEFILE
        | NOATIME;
}

/// `O_DIRECT` transfers: offsets and lengths are multiples of a disk sector.
pub const SECTOR_SIZE: u64 = 512;
/// The most bytes of one `O_DIRECT` disk transfer (a larger call is several).
pub const DIRECT_MAX: u64 = 64 << 10;

abi::numbered! {
    /// `lseek`'s `whence` (Linux's values).
    pub enum Whence {
        Set = 0,
        Cur = 1,
        End = 2,
    }
}

/// `Read`'s offset meaning "at the descriptor's position, and advance it" (POSIX `read`;
/// any other offset is `pread`, which leaves the position alone).
pub const AT_POSITION: u64 = u64::MAX;

/// A path on the disk: 1 to [`PATH_MAX`] (255) bytes of UTF-8 without NUL, `/`-separated,
/// relative to the root (a leading `/` is allowed), carried in 32 words (MR0.. of the
/// request, most of them in the IPC buffer: [`FileRequest`]'s messages have 64 words).
/// The type holds 256 bytes; the file server answers a path of 256 with `ENAMETOOLONG`,
/// as the runtime does before any call.
pub type Path = Text<32>;

/// The longest path, in bytes: POSIX's `PATH_MAX` (256) counts the NUL that ends it. Every
/// component of it may be up to 255 bytes, as long as VFAT's 255 UTF-16 units allow.
pub const PATH_MAX: usize = 255;

/// The words of a [`FileRequest`]'s message: every register, so that `Rename`'s two paths
/// fit (64 words, the whole message).
pub const FILE_REQUEST_WORDS: usize = crate::wire::MESSAGE_WORDS;

impl Path {
    /// The components between slashes (empty ones left out).
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.as_str().split('/').filter(|c| !c.is_empty())
    }
}

crate::numbered_field!(Whence);

crate::interface! {
    /// A task's request to the file server, badged with the task's pid. Descriptors belong to
    /// the task that opened them: another task's number is `EBADF`. A path that is not a
    /// [`Path`] is `BadField`.
    #[expect(
        clippy::large_enum_variant,
        reason = "a request is decoded once, on the stack, and used at once; a box would put every request on the heap"
    )]
    pub enum FileRequest [FILE_REQUEST_WORDS] {
        /// Open `path` with `flags` ([`open_flags`]) → [`OpenReply`]. `ENOENT` if it does not
        /// exist, `EISDIR` for a directory, `EROFS` for write access to a read-only disk,
        /// `EMFILE` when the server's table is full.
        Open { flags: u64, path: Path } = Label::Open => fn open -> OpenReply;
        /// Up to `len` bytes (at most [`READ_MAX`]) at `offset` ([`AT_POSITION`]: at the
        /// descriptor's position, advancing it) → the count (`u64`, 0 at end of file); the bytes
        /// in MR6.. (little-endian words). `EBADF` for a descriptor the caller does not hold.
        Read { fd: u64, offset: u64, len: u64 } = Label::Read => fn read -> u64;
        /// Forget descriptor `fd` (`EBADF` if the caller does not hold it).
        Close { fd: u64 } = Label::Close => fn close -> ();
        /// → [`StatReply`] of `path` (`ENOENT` if missing).
        Stat { path: Path } = Label::Stat => fn stat -> StatReply;
        /// `len` bytes (at most [`READ_MAX`]) from MR6.. at `offset` ([`AT_POSITION`]: at the
        /// descriptor's position, advancing it) → the count. `total` (at least `len`) is what is
        /// left of the caller's whole `write`: an `O_DIRECT` descriptor checks its alignment and
        /// collects the pieces of one transfer before writing them to the disk. `EBADF` for a
        /// descriptor not open for writing, `ENOSPC` when the disk is full.
        Write { fd: u64, offset: u64, len: u64, total: u64 } = Label::Write
            => fn write -> u64, if len <= READ_MAX as u64 && total >= len;
        /// Moves the descriptor's position to `offset` (signed) from [`Whence`] → the new
        /// position. `EINVAL` if it would be negative.
        Lseek { fd: u64, offset: i64, whence: Whence } = Label::Lseek => fn lseek -> u64;
        /// → [`StatReply`] of the descriptor's file (its size as the server holds it, written
        /// back or not).
        Fstat { fd: u64 } = Label::Fstat => fn fstat -> StatReply;
        /// Sets the file's size: bytes past it are gone, new bytes read as zero. `EBADF` for a
        /// descriptor not open for writing.
        Ftruncate { fd: u64, len: u64 } = Label::Ftruncate => fn ftruncate -> ();
        /// Removes `path` (at the last close if it is open). `EISDIR` for a directory.
        Unlink { path: Path } = Label::Unlink => fn unlink -> ();
        /// → [`FileStats`]: the server's counters since boot (anyone may ask).
        FileStats = Label::FileStats => fn file_stats -> FileStats;
        /// Makes directory `path`. `EEXIST` if the name is taken, `ENOENT`/`ENOTDIR` for a
        /// parent that is missing or a file, `ENOSPC` when the disk or a fixed root is full.
        Mkdir { path: Path } = Label::Mkdir => fn mkdir -> ();
        /// Removes the empty directory `path`: `ENOTEMPTY` if it holds anything, `ENOTDIR`
        /// for a file, `EBUSY` for the root.
        Rmdir { path: Path } = Label::Rmdir => fn rmdir -> ();
        /// `from` takes the name `to`, in the same or another directory; an existing `to` of
        /// the same kind is replaced (a directory only if empty: `ENOTEMPTY`). `EISDIR`,
        /// `ENOTDIR` for kinds that differ, `EINVAL` for a directory moved below itself. Open
        /// and mapped files keep their descriptors and mappings.
        Rename { from: Path, to: Path } = Label::Rename => fn rename -> ();
        /// Entries of directory `path` from `cookie` on (0: the first) → [`ReadDirReply`];
        /// the entries in MR6.. (at most [`READ_MAX`] bytes, records as [`dirents`] reads
        /// them). `ENOTDIR` for a file.
        ReadDir { path: Path, cookie: u64 } = Label::ReadDir => fn read_dir -> ReadDirReply;
        /// The bulk data path (issue 10): no byte travels in the message. The server settles
        /// where a `read` or `write` of `len` bytes at `offset` ([`AT_POSITION`]: the
        /// descriptor's position, advanced past the range; with `O_APPEND` a write's is the
        /// end of the file) goes → [`SpanReply`]: the range's offset, its length (a read's
        /// stops at the end of the file; a write's is `len`, and the file has grown to hold
        /// it, new bytes zero) and the file's size. The caller then copies the bytes through
        /// its shared mapping of the file (`GetObject`, the page cache's own frames). `EBADF`
        /// as `Read`/`Write`, `EFBIG` past the largest file, `EINVAL` for a negative offset.
        Span { fd: u64, offset: u64, len: u64, write: bool } = Label::Span => fn span -> SpanReply;
        /// `GetObject` for the runtime's window on a descriptor (as writable as the
        /// descriptor) → [`OpenReply`] (the handle, the size). Its mappings map every page of
        /// a block they fault in, up to the block's end, even past the end of the file: a
        /// file that grows a write at a time faults once per 64 KiB block, not once per page
        /// (the runtime never touches bytes past the size it heard). Errors as `GetObject`.
        Window { fd: u64 } = Label::Window => fn window -> OpenReply;
        /// The `O_DIRECT` data path (issue 10): a handle on descriptor `fd`'s `O_DIRECT`
        /// buffer (a [`DIRECT_MAX`]-byte frame of the server, made at the first call; each call
        /// gives another handle on the same buffer) → [`OpenReply`] (the handle, the buffer's
        /// length). The caller maps it shared and writable (vm's `MmapObject`), whatever the
        /// descriptor's access mode. `EINVAL` without `O_DIRECT`; `ENOMEM` past a task's four
        /// buffers, `EAGAIN` past all tasks' sixteen or a quarter of the page cache (the
        /// caller then takes the message path).
        DirectBuffer { fd: u64 } = Label::DirectBuffer => fn direct_buffer -> OpenReply;
        /// Reads up to [`DIRECT_MAX`] of the `want` bytes at `offset` ([`AT_POSITION`]: the
        /// position, advanced) from the disk into the start of `fd`'s `O_DIRECT` buffer → the
        /// count (0 at or past the end of the file). Offset and `want` are multiples of
        /// [`SECTOR_SIZE`] (`EINVAL`); `EINVAL` for a descriptor without a buffer.
        DirectRead { fd: u64, offset: u64, want: u64 } = Label::DirectRead => fn direct_read -> u64;
        /// Writes the first `min(total, DIRECT_MAX)` bytes of `fd`'s `O_DIRECT` buffer to the
        /// disk at `offset` ([`AT_POSITION`]: the position, advanced; with `O_APPEND` the end)
        /// → the count. `total` is what is left of the caller's write; it and the offset are
        /// multiples of [`SECTOR_SIZE`] (`EINVAL`). `EFBIG` past the largest file.
        DirectWrite { fd: u64, offset: u64, total: u64 } = Label::DirectWrite => fn direct_write -> u64;
        /// `Span` of a write of `len` bytes at `offset` that grows the file, and with it a
        /// *growth reservation* when the descriptor has its own position, is not `O_APPEND`,
        /// the offset is explicit, the task has a size page (`SizePage`) and `cell` is one
        /// of its [`GROW_CELLS`] (the task's choice: one per descriptor it keeps; another
        /// descriptor's reservation in that cell ends) → [`GrowReply`]: the task may go on
        /// writing through its window up to `limit`, each write starting at or before the
        /// size it knows, storing its new end in the cell (written end, then the server's
        /// limit: 0 when the reservation ended, and the task then asks again). Errors as
        /// `Span`.
        Grow { fd: u64, offset: u64, len: u64, cell: u64 } = Label::Grow => fn grow -> GrowReply;
        /// The task's size page → [`OpenReply`] (a handle to map shared and writable, its
        /// length): [`GROW_CELLS`] cells of two little-endian words (written end, limit).
        /// `EAGAIN` when the server has none to give (the task asks for every growth).
        SizePage = Label::SizePage => fn size_page -> OpenReply;
        /// A pipe → [`PipeReply`]: a read end and a write end, descriptors of the caller
        /// (docs/pagers.md, "Pipes and redirected descriptors"). `flags`: `O_CLOEXEC`,
        /// `O_NONBLOCK` (`EINVAL` for any other). `EMFILE` past the caller's descriptors or
        /// [`PIPES_PER_TASK`] pipes, `ENFILE` past all tasks' descriptors or pipes.
        Pipe { flags: u64 } = Label::Pipe => fn pipe -> PipeReply;
        /// A new descriptor (the lowest free number from 3) naming what `fd` names, sharing
        /// its position (POSIX `dup`; `O_CLOEXEC` is not copied) → the number. `fd` may be
        /// 0, 1 or 2 when the server does not hold it: the copy is then the console's.
        /// `EBADF`, `EMFILE`, `ENFILE`.
        Dup { fd: u64 } = Label::Dup => fn dup -> u64;
        /// `new` names what `old` names (POSIX `dup2`: `new` is closed first if open; `old ==
        /// new` only checks `old`) → which of 0..2 the server now holds for the caller (bit
        /// *n*; 0..2 that it does not hold are the console's). `old` may be 0..2 not held (the
        /// console: `new` in 0..2 then goes back to the console). `EBADF` for a bad `old`
        /// or a `new` of [`DUP_MAX`] or more.
        Dup2 { old: u64, new: u64 } = Label::Dup2 => fn dup2 -> u64;
        /// → which of descriptors 0..2 the server holds for the caller (bit *n*): the
        /// runtime sends those to the file server, the others to the console.
        Redirected = Label::Redirected => fn redirected -> u64;
    }
}

/// `Open`'s result: the descriptor and the file's size in bytes.
/// A pipe's buffer, in bytes: a writer waits while it is full.
pub const PIPE_SIZE: usize = 4096;
/// Writes of at most this many bytes to a pipe are atomic: never interleaved with another
/// writer's bytes (POSIX `PIPE_BUF`, at least 512), though they take two messages.
pub const PIPE_BUF: usize = 512;
/// Pipes one task may hold an end of (`EMFILE` beyond).
pub const PIPES_PER_TASK: usize = 16;
/// Descriptor numbers `dup2` may give (`EBADF` at and past it; below the shm server's).
pub const DUP_MAX: u64 = 1024;
/// A `Read` reply's MR2 when the descriptor is a stream (a pipe): the count is what there
/// was, and the runtime returns it rather than asking again for the rest of its buffer.
pub const READ_STREAM_MR: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipeReply {
    pub read: u64,
    pub write: u64,
}

impl ReplyBody for PipeReply {
    fn encode_body(&self, w: &mut Wire) {
        w.push(self.read);
        w.push(self.write);
    }

    fn decode_body(w: &[u64]) -> Result<Self, ProtoError> {
        match *w {
            [read, write, ..] => Ok(Self { read, write }),
            _ => Err(ProtoError::Short),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenReply {
    pub fd: u64,
    pub size: u64,
}

impl ReplyBody for OpenReply {
    fn encode_body(&self, w: &mut Wire) {
        w.push(self.fd);
        w.push(self.size);
    }

    fn decode_body(w: &[u64]) -> Result<Self, ProtoError> {
        match *w {
            [fd, size, ..] => Ok(Self { fd, size }),
            _ => Err(ProtoError::Short),
        }
    }
}

/// `ReadDir`'s cookie after the last entry.
pub const DIR_END: u64 = u64::MAX;
/// Bytes before the name in a `ReadDir` record: the size (u32, little-endian; 0 for a
/// directory), 1 for a directory (else 0), the name's length in bytes (1..=255); then the
/// name (UTF-8).
pub const DIRENT_HEADER: usize = 6;

/// `ReadDir`'s result: bytes of records in MR6.., and the cookie to ask with next
/// ([`DIR_END`]: none left). A reply may hold no record and a cookie further on (each call
/// looks at a bounded number of directory slots).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadDirReply {
    pub len: u64,
    pub next: u64,
}

impl ReplyBody for ReadDirReply {
    fn encode_body(&self, w: &mut Wire) {
        w.push(self.len);
        w.push(self.next);
    }

    fn decode_body(w: &[u64]) -> Result<Self, ProtoError> {
        match *w {
            [len, next, ..] => Ok(Self { len, next }),
            _ => Err(ProtoError::Short),
        }
    }
}

/// The records of a `ReadDir` reply: (name, size, is a directory); a record cut short or
/// whose name is not UTF-8 ends them.
pub fn dirents(mut bytes: &[u8]) -> impl Iterator<Item = (&str, u64, bool)> {
    core::iter::from_fn(move || {
        let h = bytes.get(..DIRENT_HEADER)?;
        let size = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let (dir, len) = (h[4] == 1, usize::from(h[5]));
        let name = bytes.get(DIRENT_HEADER..DIRENT_HEADER + len)?;
        let name = core::str::from_utf8(name).ok()?;
        bytes = &bytes[DIRENT_HEADER + len..];
        Some((name, u64::from(size), dir))
    })
}

/// `Span`'s result: where the range lies, how long it is, and the file's size after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanReply {
    pub at: u64,
    pub len: u64,
    pub size: u64,
}

impl ReplyBody for SpanReply {
    fn encode_body(&self, w: &mut Wire) {
        w.push(self.at);
        w.push(self.len);
        w.push(self.size);
    }

    fn decode_body(w: &[u64]) -> Result<Self, ProtoError> {
        match *w {
            [at, len, size, ..] => Ok(Self { at, len, size }),
            _ => Err(ProtoError::Short),
        }
    }
}

/// Cells of a size page (`SizePage`), 16 bytes each from its start.
pub const GROW_CELLS: usize = 16;

/// `Grow`'s result: `Span`'s, and the growth reservation (`limit` 0: none; `cell`: where
/// in the size page the task says how far it wrote).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrowReply {
    pub at: u64,
    pub len: u64,
    pub size: u64,
    pub limit: u64,
    pub cell: u64,
}

impl ReplyBody for GrowReply {
    fn encode_body(&self, w: &mut Wire) {
        w.push(self.at);
        w.push(self.len);
        w.push(self.size);
        w.push(self.limit);
        w.push(self.cell);
    }

    fn decode_body(w: &[u64]) -> Result<Self, ProtoError> {
        match *w {
            [at, len, size, limit, cell, ..] => Ok(Self {
                at,
                len,
                size,
                limit,
                cell,
            }),
            _ => Err(ProtoError::Short),
        }
    }
}

/// `Stat`'s and `Fstat`'s result: size in bytes, and whether it is a directory or a pipe
/// (for a pipe the size is the bytes it holds). The second word: 0 a file, 1 a directory,
/// 2 a pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatReply {
    pub size: u64,
    pub is_dir: bool,
    pub is_fifo: bool,
}

impl ReplyBody for StatReply {
    fn encode_body(&self, w: &mut Wire) {
        w.push(self.size);
        w.push(if self.is_fifo {
            2
        } else {
            u64::from(self.is_dir)
        });
    }

    fn decode_body(w: &[u64]) -> Result<Self, ProtoError> {
        let of = |size, is_dir, is_fifo| {
            Ok(Self {
                size,
                is_dir,
                is_fifo,
            })
        };
        match *w {
            [size, 0, ..] => of(size, false, false),
            [size, 1, ..] => of(size, true, false),
            [size, 2, ..] => of(size, false, true),
            [_, _, ..] => Err(ProtoError::BadField),
            _ => Err(ProtoError::Short),
        }
    }
}

/// The file server's counters since boot (`FileStats` results, in this order). Blocks are
/// the page cache's 64 KiB blocks (`object::BLOCK_SIZE`), sectors the disk's 512 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileStats {
    /// `ObjectPage` requests vm made and the server answered with a block (each one is a
    /// fault on a file mapping that vm could not resolve from what it had mapped).
    pub object_requests: u64,
    /// Pages of file data in those answers (a block's 4 KiB pages up to the end of the file:
    /// what vm may map from one answer).
    pub object_pages: u64,
    /// Blocks the page cache read from the disk (misses of blocks with bytes on the disk).
    pub blocks_read: u64,
    /// Disk sectors read and written, for whatever reason: cache blocks, `O_DIRECT`
    /// transfers, the FAT and directories (the FAT and directories are read in 4 KiB
    /// extents, cache blocks one request per run of consecutive clusters).
    pub sectors_read: u64,
    pub sectors_written: u64,
    /// Lookups of a block in the page cache (`read`, `write`, `ObjectPage`) that found it,
    /// and that did not (then it was read, or zero-filled past the end of the disk's file).
    pub hits: u64,
    pub misses: u64,
    /// Blocks dropped from the cache to make room (written back first if dirty).
    pub evicted: u64,
    /// Dirty blocks written to the disk (at eviction, `msync`, `munmap`, close, exit, sync).
    pub written_back: u64,
    /// Blocks the cache holds now, and the most it may hold (`file.cache=`).
    pub cached: u64,
    pub budget: u64,
    /// virtio requests made (reads and writes, whatever for): a cache block whose clusters
    /// are consecutive on the disk is one.
    pub disk_requests: u64,
    /// The most virtio requests that were in flight at once (the server serves requests
    /// while blocks are read asynchronously).
    pub max_in_flight: u64,
    /// Of `disk_requests`, asynchronous reads (of page-cache blocks, by a miss that waited
    /// or a read-ahead).
    pub async_reads: u64,
    /// Of those, reads the device completed before one submitted earlier (the server
    /// completes them in whatever order the device does).
    pub out_of_order: u64,
}

impl FileStats {
    pub const WORDS: usize = 15;

    pub fn encode(&self) -> [u64; Self::WORDS] {
        [
            self.object_requests,
            self.object_pages,
            self.blocks_read,
            self.sectors_read,
            self.sectors_written,
            self.hits,
            self.misses,
            self.evicted,
            self.written_back,
            self.cached,
            self.budget,
            self.disk_requests,
            self.max_in_flight,
            self.async_reads,
            self.out_of_order,
        ]
    }

    /// `Short` if fewer than [`FileStats::WORDS`] words came.
    pub fn decode(w: &[u64]) -> Result<Self, ProtoError> {
        let Some(
            &[
                object_requests,
                object_pages,
                blocks_read,
                sectors_read,
                sectors_written,
                hits,
                misses,
                evicted,
                written_back,
                cached,
                budget,
                disk_requests,
                max_in_flight,
                async_reads,
                out_of_order,
            ],
        ) = w.first_chunk::<{ Self::WORDS }>()
        else {
            return Err(ProtoError::Short);
        };
        Ok(Self {
            object_requests,
            object_pages,
            blocks_read,
            sectors_read,
            sectors_written,
            hits,
            misses,
            evicted,
            written_back,
            cached,
            budget,
            disk_requests,
            max_in_flight,
            async_reads,
            out_of_order,
        })
    }
}

impl ReplyBody for FileStats {
    fn encode_body(&self, w: &mut Wire) {
        for word in self.encode() {
            w.push(word);
        }
    }

    fn decode_body(w: &[u64]) -> Result<Self, ProtoError> {
        Self::decode(w)
    }
}

/// Packs `bytes` (at most [`READ_MAX`]) into the words of MR6.. (little-endian, the last
/// word zero-padded); the number of words used.
pub fn pack_data(bytes: &[u8], words: &mut [u64]) -> usize {
    // Whole words first, each a fixed-size conversion (no `memcpy` call per word), then the
    // last partial word, zero-padded.
    let full = (bytes.len() / 8).min(words.len());
    let (body, rest) = bytes.split_at(full * 8);
    for (word, chunk) in words.iter_mut().zip(body.chunks_exact(8)) {
        *word = u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
    }
    match words.get_mut(full) {
        Some(word) if !rest.is_empty() => {
            let mut b = [0u8; 8];
            for (d, s) in b.iter_mut().zip(rest) {
                *d = *s;
            }
            *word = u64::from_le_bytes(b);
            full + 1
        }
        _ => full,
    }
}

/// Unpacks the first `out.len()` bytes of the words of MR6.. into `out`.
pub fn unpack_data(words: &[u64], out: &mut [u8]) {
    let full = (out.len() / 8).min(words.len());
    let (body, rest) = out.split_at_mut(full * 8);
    for (chunk, word) in body.chunks_exact_mut(8).zip(words) {
        let b = word.to_le_bytes();
        chunk[0] = b[0];
        chunk[1] = b[1];
        chunk[2] = b[2];
        chunk[3] = b[3];
        chunk[4] = b[4];
        chunk[5] = b[5];
        chunk[6] = b[6];
        chunk[7] = b[7];
    }
    if let Some(word) = words.get(full) {
        for (d, s) in rest.iter_mut().zip(word.to_le_bytes()) {
            *d = s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Errno, decode_reply, encode_reply};

    #[test]
    fn requests_round_trip() {
        let path = Path::new("bin/a-long-program-name").unwrap();
        for r in [
            FileRequest::Open { path, flags: 0 },
            FileRequest::Read {
                fd: 3,
                offset: AT_POSITION,
                len: 464,
            },
            FileRequest::Close { fd: 7 },
            FileRequest::Stat {
                path: Path::new("/hello.txt").unwrap(),
            },
            FileRequest::Write {
                fd: 3,
                offset: AT_POSITION,
                len: 464,
                total: 4096,
            },
            FileRequest::Lseek {
                fd: 3,
                offset: -8,
                whence: Whence::End,
            },
            FileRequest::Fstat { fd: 4 },
            FileRequest::Ftruncate {
                fd: 4,
                len: 1 << 20,
            },
            FileRequest::Unlink { path },
            FileRequest::FileStats,
            FileRequest::Span {
                fd: 3,
                offset: AT_POSITION,
                len: 1 << 20,
                write: true,
            },
            FileRequest::Window { fd: 4 },
        ] {
            let w = r.encode();
            // Paths take 32 words; the rest fit the registers.
            assert!(w.mrs().len() <= 6 || w.mrs().len() == 33 || w.mrs().len() == 32);
            assert_eq!(FileRequest::decode(w.label(), w.mrs()), Ok(r));
        }
        assert_eq!(
            FileRequest::decode(Label::Read as u64, &[1, 2]),
            Err(ProtoError::Short)
        );
        // A piece longer than a message holds, or longer than the whole write; a bad whence.
        assert_eq!(
            FileRequest::decode(Label::Write as u64, &[3, 0, 465, 465]),
            Err(ProtoError::BadField)
        );
        assert_eq!(
            FileRequest::decode(Label::Write as u64, &[3, 0, 8, 4]),
            Err(ProtoError::BadField)
        );
        assert_eq!(
            FileRequest::decode(Label::Lseek as u64, &[3, 0, 3]),
            Err(ProtoError::BadField)
        );
        assert_eq!(
            FileRequest::decode(Label::GetPid as u64, &[]),
            Err(ProtoError::UnknownLabel(Label::GetPid as u64))
        );
    }

    #[test]
    fn paths() {
        let p = Path::new("/bin//hello").unwrap();
        assert!(p.components().eq(["bin", "hello"]));
        assert_eq!(Path::from_words(p.to_words()), Ok(p));
        assert_eq!(Path::new(""), Err(ProtoError::BadField));
        assert_eq!(Path::new(&"x".repeat(257)), Err(ProtoError::BadField));
        assert!(Path::new(&"x".repeat(PATH_MAX)).is_ok());
        assert_eq!(Path::new("a\0b"), Err(ProtoError::BadField));
        // Bytes after the first zero must be zero.
        let mut w = [0u64; 32];
        w[0] = 0x61;
        w[31] = 0x62;
        assert_eq!(Path::from_words(w), Err(ProtoError::BadField));
        assert_eq!(Path::from_words([0; 32]), Err(ProtoError::BadField));
        // Not UTF-8.
        w[31] = 0;
        w[0] = 0xff_fe;
        assert_eq!(Path::from_words(w), Err(ProtoError::BadField));
    }

    #[test]
    fn long_paths_travel_in_one_message_and_hostile_ones_are_errors() {
        let long = Path::new(&"d/".repeat(127)).unwrap();
        let other = Path::new(&"e".repeat(PATH_MAX)).unwrap();
        let r = FileRequest::Rename {
            from: long,
            to: other,
        };
        let w = r.encode();
        assert_eq!(w.mrs().len(), 64);
        assert_eq!(FileRequest::decode(w.label(), w.mrs()), Ok(r));
        // A message cut short (fewer words than the paths need): `Short`, for every call.
        for cut in [0, 1, 31, 32, 63] {
            assert_eq!(
                FileRequest::decode(w.label(), &w.mrs()[..cut]),
                Err(ProtoError::Short)
            );
        }
        let open = FileRequest::Open {
            flags: 0,
            path: long,
        }
        .encode();
        assert_eq!(
            FileRequest::decode(open.label(), &open.mrs()[..20]),
            Err(ProtoError::Short)
        );
        // A NUL inside, bytes that are not UTF-8: `BadField`.
        let mut words = [0u64; 33];
        words[1] = u64::from_le_bytes(*b"ab\0cdefg");
        assert_eq!(
            FileRequest::decode(Label::Open as u64, &words),
            Err(ProtoError::BadField)
        );
        words[1] = u64::from_le_bytes([0xc3, 0x28, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            FileRequest::decode(Label::Open as u64, &words),
            Err(ProtoError::BadField)
        );
        // Random words never panic.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut words = [0u64; 64];
            let n = (x % 65) as usize;
            for word in words.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Mostly small bytes, some zero words: texts that nearly parse.
                *word = if x.is_multiple_of(3) {
                    0
                } else {
                    x & 0x7f7f_7f7f_7f7f_7f7f
                };
            }
            for label in [
                Label::Open,
                Label::Stat,
                Label::Rename,
                Label::ReadDir,
                Label::Mkdir,
            ] {
                let _ = FileRequest::decode(label as u64, &words[..n]);
            }
        }
    }

    #[test]
    fn replies_round_trip() {
        let span = SpanReply {
            at: 4096,
            len: 1024,
            size: 8192,
        };
        let w = encode_reply(&Ok(span));
        assert_eq!(decode_reply::<SpanReply>(w.mrs()), Ok(Ok(span)));
        let open = OpenReply { fd: 3, size: 99 };
        let w = encode_reply(&Ok(open));
        assert_eq!(decode_reply::<OpenReply>(w.mrs()), Ok(Ok(open)));
        for (is_dir, is_fifo) in [(true, false), (false, true), (false, false)] {
            let stat = StatReply {
                size: 5,
                is_dir,
                is_fifo,
            };
            let w = encode_reply(&Ok(stat));
            assert_eq!(decode_reply::<StatReply>(w.mrs()), Ok(Ok(stat)));
        }
        assert_eq!(
            decode_reply::<StatReply>(&[0, 5, 3]),
            Err(ProtoError::BadField)
        );
        let w = encode_reply::<OpenReply>(&Err(Errno::ENOENT));
        assert_eq!(decode_reply::<OpenReply>(w.mrs()), Ok(Err(Errno::ENOENT)));
    }

    #[test]
    fn stats_round_trip() {
        let r = FileRequest::FileStats.encode();
        assert_eq!((r.label(), r.mrs()), (Label::FileStats as u64, &[][..]));
        let s = FileStats {
            object_requests: 1,
            object_pages: 2,
            blocks_read: 3,
            sectors_read: 4,
            sectors_written: 5,
            hits: 6,
            misses: 7,
            evicted: 8,
            written_back: 9,
            cached: 10,
            budget: 11,
            disk_requests: 12,
            max_in_flight: 13,
            async_reads: 14,
            out_of_order: 15,
        };
        // MR0 = 0, then the counters in the documented order.
        let w = encode_reply(&Ok(s));
        assert_eq!(
            w.mrs(),
            &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
        );
        assert_eq!(decode_reply::<FileStats>(w.mrs()), Ok(Ok(s)));
        for n in 0..w.mrs().len() {
            assert_eq!(
                decode_reply::<FileStats>(&w.mrs()[..n]),
                Err(ProtoError::Short)
            );
        }
        assert_eq!(FileStats::decode(&[1, 2]), Err(ProtoError::Short));
        let e = encode_reply::<FileStats>(&Err(Errno::ENODEV));
        assert_eq!(decode_reply::<FileStats>(e.mrs()), Ok(Err(Errno::ENODEV)));
    }

    #[test]
    fn data_packing() {
        assert_eq!(READ_MAX, 464);
        let bytes: [u8; 13] = core::array::from_fn(|i| i as u8 + 1);
        let mut words = [0u64; MESSAGE_MRS - READ_DATA_MR];
        assert_eq!(pack_data(&bytes, &mut words), 2);
        let mut out = [0u8; 13];
        unpack_data(&words, &mut out);
        assert_eq!(out, bytes);
    }
}
