//! The FAT volume (through `embedded-sdmmc`), the open files, the descriptor table, and the
//! page cache that holds every byte of file data the server hands out.
//!
//! `embedded-sdmmc` lets a file be open once, so the server opens each file once (an
//! [`Object`], counted, with a stable number) and gives every `open` its own descriptor
//! with its own position. Descriptors are per task (the badge is the pid): another task's
//! number is `EBADF`. Memory-object handles (one per `GetObject`) are bound to the task
//! they were given to and keep its descriptor's rights (`proto::handles`); vm claims one
//! before mapping it and names it in its requests.
//!
//! File data lives in the cache's 64 KiB blocks: `read` and `write` copy from and into them,
//! vm maps them. The disk sees a block when it is written back: on eviction, on `ObjectSync`,
//! at the last close of the file, before an `O_DIRECT` transfer that overlaps it, and when
//! `ftruncate` shrinks the file. The object's `size` is the file's size as tasks see it;
//! `disk_len` is the length of the FAT file, which lags behind until blocks are written back.

extern crate alloc;

mod extents;
mod volume;

use crate::cache::Cache;
use crate::disk::{BlockDev, IoError};
use crate::server::Parked;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cell::Cell;
use embedded_sdmmc::ShortFileName;
use embedded_sdmmc::{
    Error, Mode, RawFile, RawVolume, TimeSource, Timestamp, VolumeIdx, VolumeManager,
};
use extents::Done;
use fatcheck::{ChainMap, SECTOR};
use file::pending::{Finished, Key, Pending};
use proto::file::{
    AT_POSITION, DIRECT_MAX, FileStats, Path, SECTOR_SIZE, Whence, open_flags as of,
};
use proto::handles::Handles;
use proto::object::{BLOCK_SIZE, Claimed};
use proto::{Errno, PAGE_SIZE, pid};
pub use volume::MountError;
use volume::{Entry, EntryId, Last};

/// Directories open at once (a path walk holds two), files open at once.
const MAX_DIRS: usize = 4;
const MAX_FILES: usize = 32;
/// The first descriptor number a task gets (0..2 are stdin, stdout, stderr by convention).
const FIRST_FD: u64 = 3;
/// Descriptors a task may hold (`EMFILE` beyond, as a low `RLIMIT_NOFILE`).
pub const MAX_TASK_FDS: usize = 256;
/// Descriptors of all tasks together (`ENFILE` beyond): what the heap holds with room.
pub const MAX_FDS: usize = 4096;
/// `O_DIRECT` transfers being staged (a buffer of up to `DIRECT_MAX` each) by one task
/// (`ENOMEM` beyond) and by all (`EAGAIN` beyond: others' transfers end).
pub const MAX_TASK_STAGES: usize = 4;
pub const MAX_STAGES: usize = 16;
/// Memory-object handles (one per `mmap` of a file) of one task (`ENOMEM` beyond) and of
/// all tasks (`ENFILE` beyond).
pub const MAX_TASK_HANDLES: usize = 2048;
pub const MAX_HANDLES: usize = 8192;
/// The largest FAT file.
const MAX_SIZE: u64 = u32::MAX as u64;
const BS: u64 = BLOCK_SIZE;
/// The smallest cache that reads ahead (a smaller one would give up the block being used).
const READ_AHEAD_MIN: usize = 4;
/// The smallest cache that reads misses asynchronously (a smaller one reads them
/// synchronously, as before). A block being read holds its slot from the request on, and
/// the slot is taken from the least recently used block right away: in a cache of two
/// blocks, a task reading one cold block after another takes the block other tasks have
/// mapped away at the rate it asks, not at the rate of the disk as when the server waited,
/// and they hardly get to use it (`proc-wbstress`, a cache of 2, took 46 s instead of 2).
pub const ASYNC_MIN: usize = 4;

/// Why a request is not answered now.
pub enum Fail {
    /// It is answered with this error.
    No(Errno),
    /// It waits for this block, being read from the disk (it runs again when the read ends).
    Wait(Key),
    /// It waits for room (a cache slot or the disk queue), until a read in flight ends.
    WaitRoom,
}

impl From<Errno> for Fail {
    fn from(e: Errno) -> Self {
        Fail::No(e)
    }
}

/// How a block miss was served when it may be read asynchronously.
enum Miss {
    /// The read was started (or the block waits for room): the request waits.
    Waits(Fail),
    /// It cannot be read asynchronously: read it synchronously.
    Sync,
}

/// No clock: files keep the time they were written on the host.
pub struct NoClock;

impl TimeSource for NoClock {
    fn get_timestamp(&self) -> Timestamp {
        Timestamp::from_fat(0x5821, 0) // 2024-01-01 00:00:00
    }
}

type Volumes = VolumeManager<BlockDev, NoClock, MAX_DIRS, MAX_FILES, 1>;

/// A file open once for every descriptor and mapping naming it.
struct Object {
    raw: RawFile,
    /// Where its 8.3 entry lies: what the file is, whatever name or spelling found it.
    id: EntryId,
    /// The directories from the root to it and its 8.3 name (to open it again), and its
    /// directory's first cluster.
    dirs: Vec<ShortFileName>,
    name: ShortFileName,
    parent: u32,
    /// The size tasks see.
    size: u64,
    /// The FAT file's length on the disk.
    disk_len: u64,
    /// Where its clusters are (`fs::extents`): made when first needed, dropped when the
    /// file is truncated on the disk.
    map: Option<ChainMap>,
    /// Descriptors naming it.
    refs: u32,
    /// Memory-object handles naming it (from `GetObject` until `ObjectRelease`, or the end
    /// of the task it was given to if vm never claimed it).
    handles: u32,
    /// Opened on the volume for writing (not a read-only disk or file).
    writable: bool,
    /// Unlinked while open: removed when the last descriptor and mapping go.
    unlinked: bool,
    /// A write-back of its data failed (the data was dropped): `msync` (`ObjectSync`) has
    /// not been told yet.
    error: Option<Errno>,
    /// Its FAT file was closed (a truncate rewriting it, an unlink renaming it) and could
    /// not be opened again: every request naming it is `EIO` until its last descriptor and
    /// mapping go; it is then forgotten (its cached data with it), and the next `open`
    /// finds the file on the disk afresh.
    lost: bool,
}

/// One `O_DIRECT` transfer being assembled (write) or handed out (read), 464 bytes per
/// message: `data` is the disk's bytes at `offset`.
struct Stage {
    offset: u64,
    data: Vec<u8>,
    /// Bytes of `data` that hold data (read: valid bytes; write: received so far).
    filled: usize,
    write: bool,
    /// A read: where the caller's read ends (its offset and length when it was staged).
    /// Each later piece of that read asks for the rest, so it ends there too; a piece that
    /// does not is another read, which goes to the disk afresh.
    call_end: Option<u64>,
}

/// One `open`.
struct Fd {
    object: u64,
    pos: u64,
    flags: u64,
    stage: Option<Stage>,
    /// A write-back of its file's data failed since this (writable) descriptor last heard:
    /// its `close` reports it.
    error: Option<Errno>,
}

impl Fd {
    fn readable(&self) -> bool {
        self.flags & of::ACCMODE != of::WRONLY
    }
    fn writable(&self) -> bool {
        self.flags & of::ACCMODE != of::RDONLY
    }
    fn direct(&self) -> bool {
        self.flags & of::DIRECT != 0
    }
}

pub struct Files {
    volumes: Volumes,
    volume: RawVolume,
    readonly: bool,
    objects: BTreeMap<u64, Object>,
    /// Objects by the place of their directory entry.
    ids: BTreeMap<EntryId, u64>,
    /// The volume's checked geometry (`fatcheck`).
    geo: fatcheck::Geometry,
    /// Damaged structures reported on the console so far.
    reports: Cell<u32>,
    next_object: u64,
    /// The number in the hidden name the next unlinked, still open file gets.
    next_hidden: u32,
    /// (pid, fd) → descriptor.
    fds: BTreeMap<(u64, u64), Fd>,
    /// Memory-object handles given out.
    handles: Handles,
    pub cache: Cache,
    /// Blocks being read asynchronously, and the requests waiting for them.
    pub pending: Pending<Parked>,
    /// Whether the request being served may wait for the disk (the server can save its
    /// reply): a miss then reads the block asynchronously; otherwise synchronously.
    pub can_wait: bool,
}

fn errno(e: Error<IoError>) -> Errno {
    match e {
        Error::NotFound => Errno::ENOENT,
        Error::OpenedDirAsFile => Errno::EISDIR,
        Error::OpenedFileAsDir => Errno::ENOTDIR,
        Error::TooManyOpenFiles | Error::TooManyOpenDirs => Errno::ENFILE,
        Error::FilenameError(_) => Errno::ENOENT,
        Error::FileAlreadyOpen => Errno::EBUSY,
        Error::FileAlreadyExists => Errno::EEXIST,
        Error::DiskFull | Error::NotEnoughSpace | Error::AllocationError => Errno::ENOSPC,
        Error::ReadOnly => Errno::EACCES,
        _ => Errno::EIO,
    }
}

fn u32_of(v: u64) -> Result<u32, Errno> {
    u32::try_from(v).map_err(|_| Errno::EFBIG)
}

static ZEROS: [u8; 4096] = [0; 4096];

/// Reads `out.len()` bytes of `raw` at `at` (fewer at its end).
fn read_at(v: &Volumes, raw: RawFile, at: u64, out: &mut [u8]) -> Result<usize, Errno> {
    v.file_seek_from_start(raw, u32_of(at)?).map_err(errno)?;
    let mut done = 0;
    while done < out.len() {
        let n = v.read(raw, &mut out[done..]).map_err(errno)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}

/// Writes `bytes` into `o`'s FAT file at `at`, filling any gap after its end with zeroes.
fn write_at(v: &Volumes, o: &mut Object, at: u64, bytes: &[u8]) -> Result<(), Errno> {
    let end = at + bytes.len() as u64;
    if end > MAX_SIZE {
        return Err(Errno::EFBIG);
    }
    if o.disk_len < at {
        v.file_seek_from_start(o.raw, u32_of(o.disk_len)?)
            .map_err(errno)?;
        while o.disk_len < at {
            let n = (at - o.disk_len).min(ZEROS.len() as u64) as usize;
            v.write(o.raw, &ZEROS[..n]).map_err(errno)?;
            o.disk_len += n as u64;
        }
    }
    v.file_seek_from_start(o.raw, u32_of(at)?).map_err(errno)?;
    v.write(o.raw, bytes).map_err(errno)?;
    o.disk_len = o.disk_len.max(end);
    Ok(())
}

impl Files {
    /// Opens the first partition's FAT volume, once `fatcheck` accepted its geometry.
    pub fn mount(dev: BlockDev, cache: Cache) -> Result<Self, MountError> {
        let readonly = dev.disk.try_borrow().map(|d| d.readonly()).unwrap_or(true);
        let geo = volume::check(&dev)?;
        let volumes = Volumes::new_with_limits(dev, NoClock, 5000);
        let volume = volumes
            .open_raw_volume(VolumeIdx(0))
            .map_err(MountError::Crate)?;
        Ok(Self {
            volumes,
            volume,
            readonly,
            objects: BTreeMap::new(),
            ids: BTreeMap::new(),
            geo,
            reports: Cell::new(0),
            next_object: 1,
            next_hidden: 0,
            fds: BTreeMap::new(),
            handles: Handles::new(),
            cache,
            pending: Pending::new(crate::disk::MAX_ASYNC),
            can_wait: false,
        })
    }

    pub fn readonly(&self) -> bool {
        self.readonly
    }

    /// `Open`: a new descriptor of task `pid` for `path`, and the size.
    pub fn open(&mut self, pid: u64, path: &Path, flags: u64) -> Result<(u64, u64), Errno> {
        let acc = flags & of::ACCMODE;
        if flags & !of::KNOWN != 0 || acc == of::ACCMODE {
            return Err(Errno::EINVAL);
        }
        self.may_open(pid, 1)?;
        let wants_write = acc != of::RDONLY;
        if self.readonly && (wants_write || flags & of::CREAT != 0) {
            return Err(Errno::EROFS);
        }
        let r = self.resolve(path)?;
        let object = match r.last {
            Last::Dir => return Err(Errno::EISDIR),
            Last::Entry(e) if e.dir => return Err(Errno::EISDIR),
            Last::Entry(_) if flags & of::DIRECTORY != 0 => return Err(Errno::ENOTDIR),
            Last::Entry(e) => match self.ids.get(&e.id).copied() {
                Some(obj) => {
                    let o = self.objects.get(&obj).ok_or(Errno::EIO)?;
                    if o.unlinked {
                        return Err(if flags & of::CREAT != 0 {
                            Errno::EBUSY
                        } else {
                            Errno::ENOENT
                        });
                    }
                    if flags & (of::CREAT | of::EXCL) == of::CREAT | of::EXCL {
                        return Err(Errno::EEXIST);
                    }
                    if wants_write && !o.writable {
                        return Err(Errno::EACCES);
                    }
                    // A program being run from the file (init's handle maps it into
                    // every task running it): no writer may change its text (POSIX).
                    if wants_write && self.handles.held_by(pid::INIT, obj) {
                        return Err(Errno::ETXTBSY);
                    }
                    obj
                }
                None => {
                    if flags & (of::CREAT | of::EXCL) == of::CREAT | of::EXCL {
                        return Err(Errno::EEXIST);
                    }
                    self.check_file(&e)?;
                    self.open_object(r.dirs, r.parent, e, wants_write)?
                }
            },
            Last::Missing(_) if flags & of::CREAT == 0 => return Err(Errno::ENOENT),
            Last::Missing(_) if r.dir_only => return Err(Errno::EISDIR),
            Last::Missing(name) => {
                let e = match self.create(&r.dirs, name) {
                    Err(Errno::ENFILE) => {
                        self.drop_idle();
                        self.create(&r.dirs, name)?
                    }
                    other => other?,
                };
                self.open_object(r.dirs, r.parent, e, wants_write)?
            }
        };
        if flags & of::TRUNC != 0 && wants_write {
            self.truncate(object, 0)?;
        }
        let o = self.objects.get_mut(&object).ok_or(Errno::EIO)?;
        o.refs += 1;
        let size = o.size;
        let fd = (FIRST_FD..)
            .find(|fd| !self.fds.contains_key(&(pid, *fd)))
            .unwrap_or(FIRST_FD);
        self.fds.insert(
            (pid, fd),
            Fd {
                object,
                pos: 0,
                flags,
                stage: None,
                error: None,
            },
        );
        Ok((fd, size))
    }

    /// Creates file `name` (an 8.3 name: `EINVAL` for others) in directory `dirs`.
    fn create(&self, dirs: &[ShortFileName], name: &str) -> Result<Entry, Errno> {
        let de = self.with_dir(dirs, |v, dir| {
            let raw = v
                .open_file_in_dir(dir, name, Mode::ReadWriteCreate)
                .map_err(|e| match e {
                    Error::FilenameError(_) => Errno::EINVAL,
                    e => errno(e),
                })?;
            v.close_file(raw).map_err(errno)?;
            v.find_directory_entry(dir, name).map_err(errno)
        })?;
        self.entry(&de)
    }

    /// Opens file `name` of directory `dirs` on the volume with `mode`.
    fn open_raw(
        &self,
        dirs: &[ShortFileName],
        name: ShortFileName,
        mode: Mode,
    ) -> Result<RawFile, Errno> {
        self.with_dir(dirs, |v, dir| {
            v.open_file_in_dir(dir, name, mode).map_err(errno)
        })
    }

    /// A new object for entry `e` of directory `dirs` (first cluster `parent`): the file
    /// opened read-write unless the disk or the file is read-only.
    fn open_object(
        &mut self,
        dirs: Vec<ShortFileName>,
        parent: u32,
        e: Entry,
        wants_write: bool,
    ) -> Result<u64, Errno> {
        let mode = if self.readonly {
            Mode::ReadOnly
        } else {
            Mode::ReadWriteAppend
        };
        let mut opened = self.open_raw(&dirs, e.name, mode);
        if let Err(Errno::ENFILE) = opened {
            self.drop_idle();
            opened = self.open_raw(&dirs, e.name, mode);
        }
        let (raw, writable) = match opened {
            Ok(raw) => (raw, !self.readonly),
            Err(Errno::EACCES) => (self.open_raw(&dirs, e.name, Mode::ReadOnly)?, false),
            Err(err) => return Err(err),
        };
        if wants_write && !writable {
            let _ = self.volumes.close_file(raw);
            return Err(Errno::EACCES);
        }
        let len = match self.volumes.file_length(raw) {
            Ok(len) => u64::from(len),
            Err(err) => {
                let _ = self.volumes.close_file(raw);
                return Err(errno(err));
            }
        };
        let obj = self.next_object;
        self.next_object += 1;
        self.objects.insert(
            obj,
            Object {
                raw,
                id: e.id,
                dirs,
                name: e.name,
                parent,
                size: len,
                disk_len: len,
                map: None,
                refs: 0,
                handles: 0,
                writable,
                unlinked: false,
                error: None,
                lost: false,
            },
        );
        self.ids.insert(e.id, obj);
        Ok(obj)
    }

    /// `EMFILE` unless task `pid` may hold `more` descriptors more, `ENFILE` unless all
    /// tasks together may (or the heap is below its low-water mark).
    fn may_open(&self, pid: u64, more: usize) -> Result<(), Errno> {
        if self.task_fds(pid) + more > MAX_TASK_FDS {
            return Err(Errno::EMFILE);
        }
        if self.fds.len() + more > MAX_FDS || rt::heap::is_low() {
            return Err(Errno::ENFILE);
        }
        Ok(())
    }

    /// How many descriptors task `pid` holds.
    fn task_fds(&self, pid: u64) -> usize {
        self.fds.range((pid, 0)..=(pid, u64::MAX)).count()
    }

    /// Whether task `pid` may stage one more `O_DIRECT` transfer: `ENOMEM` past its own
    /// limit (or when the heap is low), `EAGAIN` past everyone's.
    fn may_stage(&self, pid: u64) -> Result<(), Errno> {
        let staged = |(&(p, _), d): (&(u64, u64), &Fd)| d.stage.is_some() && (p == pid);
        let mine = self.fds.iter().filter(|&e| staged(e)).count();
        if mine >= MAX_TASK_STAGES || rt::heap::is_low() {
            return Err(Errno::ENOMEM);
        }
        if self.fds.values().filter(|d| d.stage.is_some()).count() >= MAX_STAGES {
            return Err(Errno::EAGAIN);
        }
        Ok(())
    }

    /// The cache slot holding block `block` of `object`, read from the disk on a miss.
    ///
    /// When the request may wait ([`Files::can_wait`]), a block being read waits for it
    /// (`Fail::Wait`) and a miss starts an asynchronous read of it (then waits too); a miss
    /// that cannot be read that way (a file the map cannot say anything for, a block of
    /// more runs than the queue has room for) is read synchronously. A request that may
    /// not wait reads synchronously (a read of the same block in flight is then stale).
    ///
    /// Read-ahead: a miss on a block that follows a cached one (or on the first block), and
    /// a hit on a block that was read ahead, read the next block of the file too
    /// (asynchronously), when the cache has room or a clean block to give up for it.
    fn block(&mut self, object: u64, block: u64) -> Result<usize, Fail> {
        let key = (object, block);
        if let Some(i) = self.cache.lookup(key) {
            return Ok(self.hit(object, block, i));
        }
        if self.can_wait && self.cache.budget >= ASYNC_MIN {
            if self.pending.in_flight(key) {
                return Err(Fail::Wait(key));
            }
            if let Miss::Waits(fail) = self.start_fill(object, block)? {
                return Err(fail);
            }
        }
        Ok(self.block_ahead(object, block, true)?)
    }

    /// [`Files::block`], synchronously, with read-ahead only if `ahead`: `ftruncate`'s
    /// rewrite reads exactly the blocks it keeps, and a block read ahead there would only
    /// take a slot and hide a disk error from the truncate that needs the block (the read
    /// ahead fails quietly, the next read of the block may then succeed).
    fn block_ahead(&mut self, object: u64, block: u64, ahead: bool) -> Result<usize, Errno> {
        if let Some(i) = self.cache.lookup((object, block)) {
            if !ahead {
                self.cache.stats.hits += 1;
                self.cache.slots[i].ahead = false;
                return Ok(i);
            }
            return Ok(self.hit(object, block, i));
        }
        self.cache.stats.misses += 1;
        self.size_of(object)?;
        // A read of it in flight would bring what the disk had before this one: stale.
        self.pending.invalidate((object, block));
        let i = self.free_slot()?;
        self.fill(i, object, block)?;
        self.cache.assign(i, (object, block));
        let sequential = block == 0 || self.cache.index.contains_key(&(object, block - 1));
        if sequential && ahead {
            self.read_ahead(object, block + 1, i);
        }
        Ok(i)
    }

    /// A hit on block `block` of `object` in slot `i`: the first hit on a block read ahead
    /// reads the next one ahead.
    fn hit(&mut self, object: u64, block: u64, i: usize) -> usize {
        self.cache.stats.hits += 1;
        if core::mem::take(&mut self.cache.slots[i].ahead) {
            self.read_ahead(object, block + 1, i);
        }
        i
    }

    /// A miss on block `block` of `object` by a request that may wait: starts reading it
    /// asynchronously (`Miss::Waits(Fail::Wait)`), or finds no room for that while reads
    /// are in flight (`Miss::Waits(Fail::WaitRoom)`), or says to read it synchronously.
    fn start_fill(&mut self, object: u64, block: u64) -> Result<Miss, Errno> {
        self.size_of(object)?;
        let Some(runs) = self.runs_of(object, block)? else {
            return Ok(Miss::Sync);
        };
        if runs.len() > self.pending.room() {
            return Ok(if self.pending.is_empty() {
                Miss::Sync
            } else {
                Miss::Waits(Fail::WaitRoom)
            });
        }
        let i = match self.cache.unused().or_else(|| self.cache.grow()) {
            Some(i) => i,
            None if self.cache.victim().is_none() => {
                return Ok(if self.pending.is_empty() {
                    Miss::Sync
                } else {
                    Miss::Waits(Fail::WaitRoom)
                });
            }
            None => self.free_slot()?,
        };
        self.cache.stats.misses += 1;
        let sequential = block == 0 || self.cache.index.contains_key(&(object, block - 1));
        if !self.submit_fill(i, (object, block), &runs, false) {
            return Ok(Miss::Sync);
        }
        if sequential {
            self.read_ahead(object, block + 1, i);
        }
        Ok(Miss::Waits(Fail::Wait((object, block))))
    }

    /// Where block `block` of `object` lies on the disk, as runs of (first sector, sectors)
    /// whose bytes fill it from its start (the rest of it is past the FAT file's end:
    /// zeroes). `None` when it cannot be read as runs: no bytes on the disk, or a file the
    /// map cannot say anything for.
    fn runs_of(&mut self, object: u64, block: u64) -> Result<Option<Vec<(u64, u64)>>, Errno> {
        let o = self.objects.get_mut(&object).ok_or(Errno::EBADF)?;
        let start = block.checked_mul(BS).ok_or(Errno::EFAULT)?;
        let end = o.disk_len.min(o.size).min(start.saturating_add(BS));
        if end <= start {
            return Ok(None);
        }
        let sectors = ((end - start) as usize).next_multiple_of(SECTOR);
        extents::extents(&self.volumes, &self.geo, o, start, sectors)
    }

    /// Submits the asynchronous read of `key` into free slot `i` (reserved until it ends),
    /// one request per run; false (nothing in flight, the slot free) if none could be
    /// submitted.
    fn submit_fill(&mut self, i: usize, key: Key, runs: &[(u64, u64)], ahead: bool) -> bool {
        let Some(id) = self.pending.start(key, i, runs.len(), ahead) else {
            return false;
        };
        // Bytes past the FAT file's end read as zero (the tail of the last sector is cleared
        // when the read ends).
        self.cache.bytes(i).fill(0);
        self.cache.slots[i].busy = true;
        let base = self.cache.ptr(i);
        let mut at = 0usize;
        let mut submitted = 0;
        for &(sector, n) in runs {
            let len = n as usize * SECTOR;
            let ok = at + len <= BS as usize
                && self
                    .volumes
                    .device(|d: &mut BlockDev| {
                        d.disk
                            .try_borrow_mut()
                            .map_err(|_| IoError)
                            .and_then(|mut d| {
                                // SAFETY: `base + at .. + len` lies in slot `i`'s frame (checked
                                // above), mapped for the server's life; the slot is reserved
                                // (`busy`) until this fill's completions are collected, so
                                // nothing reads, writes or hands out its bytes meanwhile.
                                unsafe { d.submit_read(sector, base.wrapping_add(at), len, id) }
                            })
                    })
                    .is_ok();
            if !ok {
                break;
            }
            submitted += 1;
            at += len;
        }
        // The parts that could not be submitted count as failed reads.
        for _ in submitted..runs.len() {
            if let Some(f) = self.pending.part_done(id, false) {
                // None was submitted: nothing in flight.
                self.cache.slots[f.slot].busy = false;
                return false;
            }
        }
        true
    }

    /// The disk's completed asynchronous reads: each finished block is put in the cache
    /// (or thrown away: failed, stale), and its waiters are handed back, each with the
    /// error to answer (`EIO`: the read of the block it waits for failed) or `None`: run
    /// it again.
    pub fn completions(&mut self) -> Vec<(Parked, Option<Errno>)> {
        let done = self.volumes.device(|d: &mut BlockDev| {
            d.disk
                .try_borrow_mut()
                .map(|mut d| d.take_done())
                .unwrap_or_default()
        });
        let mut out = Vec::new();
        for (id, result) in done {
            let Some(f) = self.pending.part_done(id, result.is_ok()) else {
                continue;
            };
            self.finish(&f);
            let err = (!f.ok && !f.stale).then_some(Errno::EIO);
            out.extend(f.waiters.into_iter().map(|w| (w, err)));
            out.extend(f.others.into_iter().map(|w| (w, None)));
        }
        out
    }

    /// `p` waits for what `on` says (a block in flight, room); `Err(p)` if it cannot.
    pub fn park(&mut self, on: Fail, p: Parked) -> Result<(), Parked> {
        match on {
            Fail::Wait(key) => self.pending.wait(key, p),
            Fail::WaitRoom => self.pending.wait_any(p),
            Fail::No(_) => Err(p),
        }
    }

    /// Whether completed reads wait to be collected by [`Files::completions`].
    pub fn has_completions(&self) -> bool {
        crate::disk::has_done()
    }

    /// Waits for every asynchronous read in flight (`Disk::quiesce`).
    pub fn quiesce(&mut self) {
        self.volumes.device(|d: &mut BlockDev| {
            if let Ok(mut d) = d.disk.try_borrow_mut() {
                d.quiesce();
            }
        });
    }

    /// The disk's interrupt arrived.
    pub fn interrupt(&mut self) {
        self.volumes.device(|d: &mut BlockDev| {
            if let Ok(mut d) = d.disk.try_borrow_mut() {
                d.interrupt();
            }
        });
    }

    /// A fill ended: its block goes into the cache when it was read whole, is not stale,
    /// and nothing else put it there meanwhile; otherwise its slot is free again.
    fn finish(&mut self, f: &Finished<Parked>) {
        let i = f.slot;
        self.cache.slots[i].busy = false;
        let (object, block) = f.key;
        let valid = match self.objects.get(&object) {
            Some(o) if !o.lost => o.disk_len.min(o.size).saturating_sub(block * BS).min(BS),
            _ => return,
        };
        if !f.ok || f.stale || self.cache.index.contains_key(&f.key) {
            return;
        }
        // The rest of the last sector lies past the end of the file.
        self.cache.bytes(i)[valid as usize..].fill(0);
        self.cache.assign(i, f.key);
        self.cache.slots[i].ahead = f.ahead;
        self.cache.stats.blocks_read += 1;
        if f.ahead {
            self.cache.stats.read_ahead += 1;
        }
    }

    /// Reads block `block` of `object` into free slot `i`: the bytes the FAT file has (as
    /// one request per run of consecutive clusters, `fs::extents`), zeroes after them.
    fn fill(&mut self, i: usize, object: u64, block: u64) -> Result<(), Errno> {
        let o = self.objects.get_mut(&object).ok_or(Errno::EBADF)?;
        let start = block * BS;
        let end = o.disk_len.min(o.size).min(start + BS);
        let bytes = self.cache.bytes(i);
        if end <= start {
            bytes.fill(0);
            return Ok(());
        }
        let want = (end - start) as usize;
        // Whole sectors (the rest of the last one is past the end: cleared below).
        let sectors = want.next_multiple_of(SECTOR);
        match extents::read(&self.volumes, &self.geo, o, start, &mut bytes[..sectors])? {
            Done::Mapped => bytes[want..].fill(0),
            Done::Crate => {
                bytes.fill(0);
                let n = read_at(&self.volumes, o.raw, start, &mut bytes[..want])?;
                if n != want {
                    return Err(Errno::EIO);
                }
            }
        }
        self.cache.stats.blocks_read += 1;
        Ok(())
    }

    /// Reads block `block` of `object` ahead into the cache, asynchronously, if it has bytes
    /// on the disk, is neither cached nor being read, the disk queue has room, and a slot is
    /// free (or can be made, or holds a clean block other than `keep`, the one just asked
    /// for): never more than this one block, never a write-back, never a wait. Caches of
    /// fewer than [`READ_AHEAD_MIN`] blocks read nothing ahead.
    fn read_ahead(&mut self, object: u64, block: u64, keep: usize) {
        let Some(o) = self.objects.get(&object) else {
            return;
        };
        let key = (object, block);
        let start = block.saturating_mul(BS);
        if start >= o.disk_len.min(o.size)
            || self.cache.budget < READ_AHEAD_MIN
            || self.cache.index.contains_key(&key)
            || self.pending.in_flight(key)
            || self.pending.room() == 0
        {
            return;
        }
        let Ok(Some(runs)) = self.runs_of(object, block) else {
            return;
        };
        if runs.len() > self.pending.room() {
            return;
        }
        let i = if let Some(i) = self.cache.unused() {
            i
        } else if let Some(i) = self.cache.grow() {
            i
        } else {
            match self.cache.victim() {
                Some(i) if i != keep && !self.cache.slots[i].dirty => {
                    if self.cache.free(i).is_err() {
                        return;
                    }
                    self.cache.stats.evicted += 1;
                    i
                }
                _ => return,
            }
        };
        // A read that cannot start leaves the slot free: the block is read when asked for.
        self.submit_fill(i, key, &runs, true);
    }

    /// A cache slot holding nothing: a new frame within the budget, else the least recently
    /// used block, written back first if dirty.
    fn free_slot(&mut self) -> Result<usize, Errno> {
        if let Some(i) = self.cache.unused() {
            return Ok(i);
        }
        if let Some(i) = self.cache.grow() {
            return Ok(i);
        }
        let i = self.cache.victim().ok_or(Errno::ENOMEM)?;
        if self.cache.slots[i].dirty {
            // A failure is the writer's (`write_back_or_drop`), not this caller's.
            let _ = self.write_back_or_drop(i);
        }
        self.cache.free(i).map_err(|_| Errno::EIO)?;
        self.cache.stats.evicted += 1;
        Ok(i)
    }

    /// Writes slot `i`'s block to the disk (bytes past the end of the file never), updates
    /// the directory entry, and marks it clean.
    ///
    /// Every mapping of the block is taken away first (vm's copies of its capability, in
    /// every task), so that no task writes it while its bytes go to the disk: a write that
    /// landed in the frame after `embedded-sdmmc` copied its sector would be in no write-back
    /// (the block is clean afterwards) and lost when the block is evicted. The next access
    /// through a mapping faults and reaches this server only after the write-back (it is
    /// single-threaded); a write then marks the block dirty again. The bytes past the end of
    /// the file are cleared at the same time, so that no mapping made from now on sees what
    /// an old one wrote there (POSIX: the rest of the last page reads as zero). A failed
    /// write leaves the block dirty, for the next write-back to try again.
    fn write_back(&mut self, i: usize) -> Result<(), Errno> {
        let Some((object, block)) = self.cache.slots[i].key else {
            return Ok(());
        };
        self.cache.revoke(i).map_err(|_| Errno::EIO)?;
        let o = self.objects.get_mut(&object).ok_or(Errno::EIO)?;
        let start = block * BS;
        let valid = o.size.saturating_sub(start).min(BS) as usize;
        let bytes = self.cache.bytes(i);
        bytes[valid..].fill(0);
        if valid > 0 {
            // The bytes the FAT file already has go straight to their sectors (the last
            // one whole when the block ends inside it: the rest of it is the zeroes past
            // the end); the rest through the crate, which allocates their clusters.
            let on_disk = o.disk_len.saturating_sub(start).min(valid as u64) as usize;
            let mapped = if on_disk == valid {
                valid.next_multiple_of(SECTOR)
            } else {
                on_disk - on_disk % SECTOR
            };
            let mut done = 0;
            if mapped > 0 {
                let part = &bytes[..mapped];
                if let Done::Mapped = extents::write(&self.volumes, &self.geo, o, start, part)? {
                    done = mapped.min(valid);
                }
            }
            if done < valid {
                write_at(&self.volumes, o, start + done as u64, &bytes[done..valid])?;
                self.volumes.flush_file(o.raw).map_err(errno)?;
            }
            self.cache.stats.written_back += 1;
        }
        self.cache.slots[i].dirty = false;
        Ok(())
    }

    /// [`Files::write_back`], and when it fails (a full disk: `ENOSPC`; `EIO`) the block's
    /// data is dropped, as Linux drops a page whose write-back failed: the block is
    /// forgotten (its mappings revoked) and the error is kept for the writers, each
    /// writable descriptor's next `close` and the next `msync` of the file. The block can
    /// then never be chosen for eviction again and again, and nobody else's `read`,
    /// `ObjectPage` or `spawn` ever sees the writer's error.
    fn write_back_or_drop(&mut self, i: usize) -> Result<(), Errno> {
        let Err(e) = self.write_back(i) else {
            return Ok(());
        };
        if let Some((object, _)) = self.cache.slots[i].key {
            for d in self.fds.values_mut() {
                if d.object == object && d.writable() {
                    d.error = Some(e);
                }
            }
            if let Some(o) = self.objects.get_mut(&object) {
                o.error = Some(e);
            }
        }
        self.cache.slots[i].dirty = false;
        // A slot whose mappings cannot be revoked keeps its key (`Cache::free`).
        let _ = self.cache.free(i);
        Err(e)
    }

    /// Writes back the dirty blocks of `object` among `first .. first + count` (each one
    /// tried: the first error is the result).
    fn sync(&mut self, object: u64, first: u64, count: u64) -> Result<(), Errno> {
        self.size_of(object)?;
        let end = first.saturating_add(count);
        let mut result = Ok(());
        for (b, i) in self.cache.blocks_of(object) {
            if (first..end).contains(&b) && self.cache.slots[i].dirty {
                result = result.and(self.write_back_or_drop(i));
            }
        }
        result.and(self.extend(object))
    }

    /// Makes the FAT file as long as the file (zeroes past its length on the disk): a file
    /// grown by `ftruncate` alone has no dirty block to carry its size there.
    fn extend(&mut self, object: u64) -> Result<(), Errno> {
        let Some(o) = self.objects.get_mut(&object) else {
            return Ok(());
        };
        if o.size <= o.disk_len || o.unlinked || self.readonly {
            return Ok(());
        }
        let size = o.size;
        write_at(&self.volumes, o, size, &[])?;
        self.volumes.flush_file(o.raw).map_err(errno)
    }

    /// Clears the bytes from `at` to the end of its block, if the block is cached: they lie
    /// past the end of the file, where a mapping may have written, and are about to become
    /// file data (the file grows) or be seen by a new mapping.
    fn clear_past(&mut self, object: u64, at: u64) {
        if let Some(&i) = self.cache.index.get(&(object, at / BS)) {
            self.cache.bytes(i)[(at % BS) as usize..].fill(0);
        }
    }

    /// Sets `object`'s size to `len`: blocks past it are dropped (dirty or not), the rest of
    /// the last block zeroed. A FAT file cannot be cut short in place (`embedded-sdmmc` has no
    /// truncate), so a shrink below the disk length rewrites the file: its blocks up to `len`
    /// are brought in and pinned, the file is truncated to nothing and the blocks are left
    /// dirty (`EFBIG` if they do not fit in the cache).
    ///
    /// Failures leave a consistent state: bringing the blocks in comes first, and if it
    /// fails (a disk error) the pins go and nothing else has changed; if the truncated file
    /// cannot be opened again, it is opened as it was (the cache holds the file's data up to
    /// `len`, dirty, and the size is `len`; the error is the caller's), and if even that
    /// fails the object is lost (`Object::lost`: `EIO` for everyone until it is closed).
    fn truncate(&mut self, object: u64, len: u64) -> Result<(), Errno> {
        if len > MAX_SIZE {
            return Err(Errno::EFBIG);
        }
        let old = self.size_of(object)?;
        // Reads in flight would bring blocks as they were: cut, or about to be rewritten.
        self.pending.invalidate_object(object);
        let o = self.objects.get(&object).ok_or(Errno::EBADF)?;
        let rewrite = len < o.disk_len;
        let keep = len.div_ceil(BS);
        // Refused before anything changes (the size stayed, and with it the bytes past
        // `len` that a later growth would otherwise read back from the disk).
        if rewrite && keep as usize > self.cache.budget {
            return Err(Errno::EFBIG);
        }
        if rewrite {
            let pinned = (0..keep).try_for_each(|b| {
                let i = self.block_ahead(object, b, false)?;
                self.cache.slots[i].pinned = true;
                Ok(())
            });
            if let Err(e) = pinned {
                self.unpin(object);
                return Err(e);
            }
        }
        let o = self.objects.get_mut(&object).ok_or(Errno::EBADF)?;
        o.size = len;
        if len > old {
            self.clear_past(object, old);
        }
        for (b, i) in self.cache.blocks_of(object) {
            let start = b * BS;
            if start >= len {
                self.cache.slots[i].dirty = false;
                let _ = self.cache.free(i);
            } else if start + BS > len {
                // Mappings first, so that none writes past the new end after the clearing.
                let _ = self.cache.revoke(i);
                let at = (len - start) as usize;
                self.cache.bytes(i)[at..].fill(0);
            }
            if rewrite && start < len {
                self.cache.slots[i].dirty = true;
            }
        }
        if !rewrite {
            return Ok(());
        }
        let o = self.objects.get(&object).ok_or(Errno::EIO)?;
        // The crate forgets the file even when its last flush fails; the entry is written
        // again as the file is opened truncated, so that error changes nothing here.
        let _ = self.volumes.close_file(o.raw);
        let reopened = self.open_raw(&o.dirs, o.name, Mode::ReadWriteTruncate);
        self.unpin(object);
        match reopened {
            Ok(raw) => {
                let o = self.objects.get_mut(&object).ok_or(Errno::EIO)?;
                // The clusters went with the truncation: the chain is mapped again.
                o.map = None;
                o.raw = raw;
                o.disk_len = 0;
                Ok(())
            }
            Err(e) => {
                self.reopen_as_it_was(object);
                Err(e)
            }
        }
    }

    /// Unpins `object`'s cached blocks.
    fn unpin(&mut self, object: u64) {
        for (_, i) in self.cache.blocks_of(object) {
            self.cache.slots[i].pinned = false;
        }
    }

    /// Opens `object`'s FAT file again after the crate's file was closed and opening it
    /// another way failed: as it was opened at first, with its length as the disk now has
    /// it; if that fails too, the object is lost (`Object::lost`).
    fn reopen_as_it_was(&mut self, object: u64) {
        let Some(o) = self.objects.get(&object) else {
            return;
        };
        let mode = if o.writable {
            Mode::ReadWriteAppend
        } else {
            Mode::ReadOnly
        };
        let reopened = self.open_raw(&o.dirs, o.name, mode).and_then(|raw| {
            match self.volumes.file_length(raw) {
                Ok(len) => Ok((raw, u64::from(len))),
                Err(e) => {
                    let _ = self.volumes.close_file(raw);
                    Err(errno(e))
                }
            }
        });
        let Some(o) = self.objects.get_mut(&object) else {
            return;
        };
        match reopened {
            Ok((raw, len)) => {
                o.map = None;
                o.raw = raw;
                o.disk_len = len;
            }
            Err(e) => {
                rt::println!("file: cannot open a file again ({e}): EIO until it is closed");
                o.lost = true;
            }
        }
    }

    fn fd(&self, pid: u64, fd: u64) -> Result<&Fd, Errno> {
        self.fds.get(&(pid, fd)).ok_or(Errno::EBADF)
    }

    fn size_of(&self, object: u64) -> Result<u64, Errno> {
        match self.objects.get(&object) {
            Some(o) if o.lost => Err(Errno::EIO),
            Some(o) => Ok(o.size),
            None => Err(Errno::EBADF),
        }
    }

    /// `Read`: up to `out.len()` bytes at `offset` (`AT_POSITION`: the descriptor's
    /// position, advanced); the count. `want` is what the caller still wants in all (an
    /// `O_DIRECT` transfer's length). A read through the cache may wait for its first block
    /// (before anything changed).
    pub fn read(
        &mut self,
        pid: u64,
        fd: u64,
        offset: u64,
        want: u64,
        out: &mut [u8],
    ) -> Result<usize, Fail> {
        let d = self.fd(pid, fd)?;
        if !d.readable() {
            return Err(Errno::EBADF.into());
        }
        let (object, direct) = (d.object, d.direct());
        let at = if offset == AT_POSITION { d.pos } else { offset };
        let n = if direct {
            self.direct_read(pid, fd, at, want, out)?
        } else {
            self.cached_read(object, at, out)?
        };
        if offset == AT_POSITION
            && let Some(d) = self.fds.get_mut(&(pid, fd))
        {
            d.pos += n as u64;
        }
        Ok(n)
    }

    /// Only the first block may wait: a block after it that is not cached is read
    /// synchronously (the first one's bytes are copied out by then, so a cache of one block
    /// still makes progress).
    fn cached_read(&mut self, object: u64, at: u64, out: &mut [u8]) -> Result<usize, Fail> {
        let size = self.size_of(object)?;
        if at >= size {
            return Ok(0);
        }
        let n = (out.len() as u64).min(size - at) as usize;
        let mut done = 0;
        while done < n {
            let pos = at + done as u64;
            if done > 0 {
                self.can_wait = false;
            }
            let i = self.block(object, pos / BS)?;
            let off = (pos % BS) as usize;
            let k = (BS as usize - off).min(n - done);
            out[done..done + k].copy_from_slice(&self.cache.bytes(i)[off..off + k]);
            done += k;
        }
        Ok(n)
    }

    /// Writes back and forgets the cached blocks overlapping [`at`, `at + len`) of `object`
    /// (an `O_DIRECT` transfer is about to read or write the disk there).
    fn flush_range(&mut self, object: u64, at: u64, len: u64, forget: bool) -> Result<(), Errno> {
        let (first, last) = (at / BS, (at + len.max(1) - 1) / BS);
        for (b, i) in self.cache.blocks_of(object) {
            if (first..=last).contains(&b) {
                if self.cache.slots[i].dirty {
                    self.write_back(i)?;
                }
                if forget {
                    self.cache.free(i).map_err(|_| Errno::EIO)?;
                }
            }
        }
        Ok(())
    }

    /// `O_DIRECT` read: the disk's bytes at `at`, a whole transfer of up to [`DIRECT_MAX`]
    /// (sector-aligned offset and length) read at once and handed out 464 bytes a message.
    fn direct_read(
        &mut self,
        pid: u64,
        fd: u64,
        at: u64,
        want: u64,
        out: &mut [u8],
    ) -> Result<usize, Errno> {
        let d = self.fds.get_mut(&(pid, fd)).ok_or(Errno::EBADF)?;
        let object = d.object;
        let call_end = at.checked_add(want);
        let staged = d.stage.take().filter(|s| {
            !s.write
                && (s.offset..s.offset + s.filled as u64).contains(&at)
                && s.call_end == call_end
        });
        let stage = match staged {
            Some(s) => s,
            None => {
                let size = self.size_of(object)?;
                if at >= size {
                    // End of file, also where a read that ended at it goes on (at the end
                    // of a file whose size is not a multiple of the sector size): Linux
                    // answers 0 there before it checks the alignment.
                    return Ok(0);
                }
                if !at.is_multiple_of(SECTOR_SIZE) || !want.is_multiple_of(SECTOR_SIZE) {
                    return Err(Errno::EINVAL);
                }
                let len = want.min(DIRECT_MAX).min(size - at);
                self.may_stage(pid)?;
                self.flush_range(object, at, len, false)?;
                let o = self.objects.get(&object).ok_or(Errno::EBADF)?;
                // Whole sectors from the disk (the tail of the last one is not handed out).
                let mut data = alloc::vec![0u8; len.next_multiple_of(SECTOR_SIZE) as usize];
                let on_disk = o.disk_len.saturating_sub(at).min(data.len() as u64) as usize;
                read_at(&self.volumes, o.raw, at, &mut data[..on_disk])?;
                Stage {
                    offset: at,
                    data,
                    filled: len as usize,
                    write: false,
                    call_end,
                }
            }
        };
        let from = (at - stage.offset) as usize;
        let n = out.len().min(stage.filled - from);
        out[..n].copy_from_slice(&stage.data[from..from + n]);
        if from + n < stage.filled
            && let Some(d) = self.fds.get_mut(&(pid, fd))
        {
            d.stage = Some(stage);
        }
        Ok(n)
    }

    /// `Write`: `data` at `offset` (`AT_POSITION`: the position, advanced); the count.
    /// `total` is what is left of the caller's whole write. A write through the cache may
    /// wait for its first block (before anything changed).
    pub fn write(
        &mut self,
        pid: u64,
        fd: u64,
        offset: u64,
        total: u64,
        data: &[u8],
    ) -> Result<usize, Fail> {
        let d = self.fd(pid, fd)?;
        if !d.writable() {
            return Err(Errno::EBADF.into());
        }
        let (object, direct) = (d.object, d.direct());
        let dsync = d.flags & of::DSYNC != 0;
        let at = match offset {
            // `O_APPEND`: at the end, whatever the position (POSIX `write`).
            AT_POSITION if d.flags & of::APPEND != 0 => self.size_of(object)?,
            AT_POSITION => d.pos,
            // Negative as an `off_t`.
            o if o > i64::MAX as u64 => return Err(Errno::EINVAL.into()),
            o => o,
        };
        // Nothing to write: nothing changes (not the size either, whatever the offset).
        if data.is_empty() {
            return Ok(0);
        }
        // A FAT file ends at 4 GiB - 1: no byte at or past it (and no range that wraps).
        match at.checked_add(data.len() as u64) {
            Some(end) if end <= MAX_SIZE => {}
            _ => return Err(Errno::EFBIG.into()),
        }
        let n = if direct {
            self.direct_write(pid, fd, at, total, data)?
        } else {
            self.cached_write(object, at, data)?
        };
        // `O_DSYNC`/`O_SYNC`: the blocks written reach the disk before the answer.
        if dsync && n > 0 {
            let first = at / BS;
            let last = (at + n as u64 - 1) / BS;
            self.sync(object, first, last - first + 1)?;
        }
        if offset == AT_POSITION
            && let Some(d) = self.fds.get_mut(&(pid, fd))
        {
            d.pos = at + n as u64;
        }
        Ok(n)
    }

    /// As [`Files::cached_read`], only the first block may wait.
    fn cached_write(&mut self, object: u64, at: u64, data: &[u8]) -> Result<usize, Fail> {
        let size = self.size_of(object)?;
        let mut done = 0;
        while done < data.len() {
            let pos = at + done as u64;
            if done > 0 {
                self.can_wait = false;
            }
            let i = self.block(object, pos / BS)?;
            if done == 0 && at.saturating_add(data.len() as u64) > size {
                // The bytes between the old end and the new one are zero (the first block
                // is here: nothing changed before it was).
                self.clear_past(object, size);
            }
            let off = (pos % BS) as usize;
            let k = (BS as usize - off).min(data.len() - done);
            self.cache.bytes(i)[off..off + k].copy_from_slice(&data[done..done + k]);
            self.cache.slots[i].dirty = true;
            done += k;
            let o = self.objects.get_mut(&object).ok_or(Errno::EBADF)?;
            o.size = o.size.max(at + done as u64);
        }
        Ok(data.len())
    }

    /// `O_DIRECT` write: the pieces of a transfer of up to [`DIRECT_MAX`] (sector-aligned
    /// offset and length) are collected, then written to the disk at once, after the cached
    /// blocks it overlaps are written back and forgotten.
    fn direct_write(
        &mut self,
        pid: u64,
        fd: u64,
        at: u64,
        total: u64,
        data: &[u8],
    ) -> Result<usize, Errno> {
        let d = self.fds.get_mut(&(pid, fd)).ok_or(Errno::EBADF)?;
        let object = d.object;
        let continues = d
            .stage
            .take()
            .filter(|s| s.write && at == s.offset + s.filled as u64);
        let mut stage = match continues {
            Some(s) => s,
            None => {
                if !at.is_multiple_of(SECTOR_SIZE) || !total.is_multiple_of(SECTOR_SIZE) {
                    return Err(Errno::EINVAL);
                }
                if at.saturating_add(total.min(DIRECT_MAX)) > MAX_SIZE {
                    return Err(Errno::EFBIG);
                }
                self.may_stage(pid)?;
                Stage {
                    offset: at,
                    data: alloc::vec![0u8; total.min(DIRECT_MAX) as usize],
                    filled: 0,
                    write: true,
                    call_end: None,
                }
            }
        };
        let n = data.len().min(stage.data.len() - stage.filled);
        stage.data[stage.filled..stage.filled + n].copy_from_slice(&data[..n]);
        stage.filled += n;
        if stage.filled < stage.data.len() {
            if let Some(d) = self.fds.get_mut(&(pid, fd)) {
                d.stage = Some(stage);
            }
            return Ok(n);
        }
        let len = stage.data.len() as u64;
        let size = self.size_of(object)?;
        if stage.offset + len > size {
            self.clear_past(object, size);
        }
        self.flush_range(object, stage.offset, len, true)?;
        // Reads in flight would bring what the disk had before this write.
        self.pending.invalidate_object(object);
        let o = self.objects.get_mut(&object).ok_or(Errno::EBADF)?;
        // The file as tasks see it may be longer than on the disk (a cached `ftruncate`
        // growth): the disk gets zeroes up to the transfer.
        write_at(&self.volumes, o, stage.offset, &stage.data)?;
        o.size = o.size.max(stage.offset + len);
        self.volumes.flush_file(o.raw).map_err(errno)?;
        Ok(n)
    }

    /// `Lseek`: the new position.
    pub fn lseek(&mut self, pid: u64, fd: u64, offset: i64, whence: Whence) -> Result<u64, Errno> {
        let d = self.fd(pid, fd)?;
        let base = match whence {
            Whence::Set => 0,
            Whence::Cur => d.pos,
            Whence::End => self.size_of(d.object)?,
        };
        // Below 0 or past the largest FAT file (as Linux's `s_maxbytes`): EINVAL.
        let pos = base
            .checked_add_signed(offset)
            .filter(|&p| p <= MAX_SIZE)
            .ok_or(Errno::EINVAL)?;
        let d = self.fds.get_mut(&(pid, fd)).ok_or(Errno::EBADF)?;
        d.pos = pos;
        d.stage = None;
        Ok(pos)
    }

    /// `Fstat`: the size.
    pub fn fstat(&self, pid: u64, fd: u64) -> Result<u64, Errno> {
        self.size_of(self.fd(pid, fd)?.object)
    }

    /// `Ftruncate`: `EINVAL` for a descriptor not open for writing (as Linux).
    pub fn ftruncate(&mut self, pid: u64, fd: u64, len: u64) -> Result<(), Errno> {
        let d = self.fd(pid, fd)?;
        if !d.writable() {
            return Err(Errno::EINVAL);
        }
        // Negative as an `off_t`: `EINVAL` (POSIX); past the largest FAT file: `EFBIG`.
        if len > i64::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        self.truncate(d.object, len)
    }

    /// `Close`: forgets the descriptor; the file's last one writes its dirty blocks back.
    pub fn close(&mut self, pid: u64, fd: u64) -> Result<(), Errno> {
        let d = self.fds.remove(&(pid, fd)).ok_or(Errno::EBADF)?;
        if let Some(o) = self.objects.get_mut(&d.object) {
            o.refs = o.refs.saturating_sub(1);
        }
        let settled = self.settle(d.object);
        // A write-back that failed earlier (the data is gone) is this writer's to hear.
        d.error.map_or(settled, Err)
    }

    /// `TaskExit`: task `pid` ended; its descriptors go as `close` would take them (the
    /// last one of a file writes its dirty blocks back), and so do the handles it was given
    /// that vm never claimed.
    pub fn task_exit(&mut self, pid: u64) -> Result<(), Errno> {
        let mut result = Ok(());
        for object in self.handles.task_exit(pid) {
            if let Err(e) = self.handle_gone(object) {
                result = result.and(Err(e));
            }
        }
        let fds: Vec<u64> = self
            .fds
            .range((pid, 0)..=(pid, u64::MAX))
            .map(|(&(_, fd), _)| fd)
            .collect();
        for fd in fds {
            if let Err(e) = self.close(pid, fd) {
                result = result.and(Err(e));
            }
        }
        result
    }

    /// `TaskExec`: task `pid` runs a new program; its descriptors opened `O_CLOEXEC` go as
    /// `close` would take them.
    pub fn task_exec(&mut self, pid: u64) -> Result<(), Errno> {
        let fds: Vec<u64> = self
            .fds
            .range((pid, 0)..=(pid, u64::MAX))
            .filter(|(_, d)| d.flags & of::CLOEXEC != 0)
            .map(|(&(_, fd), _)| fd)
            .collect();
        let mut result = Ok(());
        for fd in fds {
            if let Err(e) = self.close(pid, fd) {
                result = result.and(Err(e));
            }
        }
        result
    }

    /// `TaskFork`: `child` gets a copy of each of `parent`'s descriptors, with the same
    /// number, flags and position (from then on each has its own position: the server has
    /// no open file description shared between tasks). An `O_DIRECT` transfer being
    /// assembled stays the parent's.
    /// `ENFILE` (and nothing copied) when all tasks' descriptors together would pass
    /// [`MAX_FDS`]: init then fails the fork.
    pub fn task_fork(&mut self, parent: u64, child: u64) -> Result<(), Errno> {
        let n = self.task_fds(parent);
        if self.fds.len() + n > MAX_FDS || (n > 0 && rt::heap::is_low()) {
            return Err(Errno::ENFILE);
        }
        let copies: Vec<(u64, u64, u64, u64)> = self
            .fds
            .range((parent, 0)..=(parent, u64::MAX))
            .map(|(&(_, fd), d)| (fd, d.object, d.pos, d.flags))
            .collect();
        for (fd, object, pos, flags) in copies {
            if let Some(old) = self.fds.insert(
                (child, fd),
                Fd {
                    object,
                    pos,
                    flags,
                    stage: None,
                    error: None,
                },
            ) && let Some(o) = self.objects.get_mut(&old.object)
            {
                // A stale descriptor of a reused pid: forget it.
                o.refs = o.refs.saturating_sub(1);
            }
            if let Some(o) = self.objects.get_mut(&object) {
                o.refs += 1;
            }
        }
        Ok(())
    }

    /// `SyncAll`: every dirty block of every file goes to the disk (before power-off).
    pub fn sync_all(&mut self) -> Result<(), Errno> {
        let objects: Vec<u64> = self.objects.keys().copied().collect();
        let mut result = Ok(());
        for object in objects {
            if let Err(e) = self.sync(object, 0, u64::MAX) {
                result = result.and(Err(e));
            }
        }
        result
    }

    /// `Descriptors`: (descriptors open over all tasks, files the server holds open for a
    /// descriptor or a mapping).
    /// `FileStats`: the cache's and the disk's counters.
    pub fn stats(&self) -> FileStats {
        let c = &self.cache.stats;
        let disk = self
            .volumes
            .device(|dev| dev.disk.try_borrow().map(|d| d.stats))
            .unwrap_or_default();
        FileStats {
            object_requests: c.object_requests,
            object_pages: c.object_pages,
            blocks_read: c.blocks_read,
            sectors_read: disk.sectors_read,
            sectors_written: disk.sectors_written,
            hits: c.hits,
            misses: c.misses,
            evicted: c.evicted,
            written_back: c.written_back,
            cached: self.cache.index.len() as u64,
            budget: self.cache.budget as u64,
            disk_requests: disk.requests,
            max_in_flight: disk.max_in_flight,
            async_reads: disk.async_reads,
            out_of_order: disk.out_of_order,
        }
    }

    pub fn descriptors(&self) -> (u64, u64) {
        let busy = self
            .objects
            .values()
            .filter(|o| o.refs > 0 || o.handles > 0)
            .count();
        (self.fds.len() as u64, busy as u64)
    }

    /// After a descriptor or mapping of `object` went: with none left, its dirty blocks are
    /// written back (the last close makes a file's data safe; init's `SyncAll` before
    /// power-off covers files still open). The object and its clean blocks stay
    /// cached (idle) for the next `open`, unless it was unlinked.
    fn settle(&mut self, object: u64) -> Result<(), Errno> {
        let Some(o) = self.objects.get(&object) else {
            return Ok(());
        };
        if o.refs > 0 || o.handles > 0 {
            return Ok(());
        }
        if o.lost {
            // Nothing of it can reach the disk: its data goes, the closer hears of it.
            let _ = self.forget(object);
            return Err(Errno::EIO);
        }
        let unlinked = o.unlinked;
        let synced = self.sync(object, 0, u64::MAX);
        if unlinked {
            self.forget(object)?;
        }
        synced
    }

    /// Drops `object`: its blocks (unwritten data is lost), its file handle; removes the file
    /// if it was unlinked.
    fn forget(&mut self, object: u64) -> Result<(), Errno> {
        self.pending.invalidate_object(object);
        for (_, i) in self.cache.blocks_of(object) {
            self.cache.slots[i].dirty = false;
            let _ = self.cache.free(i);
        }
        let Some(o) = self.objects.remove(&object) else {
            return Ok(());
        };
        self.ids.remove(&o.id);
        let closed = self.volumes.close_file(o.raw).map_err(errno);
        if o.unlinked {
            self.remove_entry(&o.dirs, o.parent, o.name, o.id)?;
        }
        closed
    }

    /// Drops every idle object (no descriptor, no mapping: their blocks are clean), to free
    /// the volume's file handles.
    fn drop_idle(&mut self) {
        let idle: Vec<u64> = self
            .objects
            .iter()
            .filter(|(_, o)| o.refs == 0 && o.handles == 0)
            .map(|(&k, _)| k)
            .collect();
        for obj in idle {
            // A file whose blocks cannot be written back stays (with its data).
            if self.sync(obj, 0, u64::MAX).is_ok() {
                let _ = self.forget(obj);
            }
        }
    }

    /// `Unlink`: removes the file now (its 8.3 entry, its long-name entries, all its
    /// clusters), or at its last close if it is open, whichever name or spelling names it.
    pub fn unlink(&mut self, path: &Path) -> Result<(), Errno> {
        if self.readonly {
            return Err(Errno::EROFS);
        }
        let r = self.resolve(path)?;
        let e = match r.last {
            Last::Dir => return Err(Errno::EISDIR),
            Last::Entry(e) if e.dir => return Err(Errno::EISDIR),
            Last::Entry(e) => e,
            Last::Missing(_) => return Err(Errno::ENOENT),
        };
        if let Some(&obj) = self.ids.get(&e.id) {
            let o = self.objects.get_mut(&obj).ok_or(Errno::EIO)?;
            if o.unlinked {
                return Err(Errno::ENOENT);
            }
            o.unlinked = true;
            if o.refs == 0 && o.handles == 0 {
                return self.forget(obj);
            }
            // Still open: the name goes now (POSIX: a new file may take it), the file at
            // its last close. If it cannot be hidden, the name stays busy (`EBUSY`).
            if let Err(e) = self.hide(obj) {
                rt::println!("file: cannot hide an unlinked open file: {e}");
            }
            return Ok(());
        }
        self.remove_entry(&r.dirs, r.parent, e.name, e.id)
    }

    /// `Stat`: size, and whether it is a directory.
    pub fn stat(&mut self, path: &Path) -> Result<(u64, bool), Errno> {
        let e = match self.resolve(path)?.last {
            Last::Dir => return Ok((0, true)),
            Last::Entry(e) if e.dir => return Ok((0, true)),
            Last::Entry(e) => e,
            Last::Missing(_) => return Err(Errno::ENOENT),
        };
        match self.ids.get(&e.id).and_then(|k| self.objects.get(k)) {
            Some(o) if o.unlinked => Err(Errno::ENOENT),
            Some(o) => Ok((o.size, false)),
            None => Ok((u64::from(e.size), false)),
        }
    }

    /// `GetObject` by task `pid`: a new handle on the descriptor's file, bound to `pid`, as
    /// writable as the descriptor → (handle, size). `EACCES` for a descriptor not open for
    /// reading (a mapping always reads) and for `writable` on one not open for writing;
    /// `EMFILE` when `pid` holds too many handles vm has not claimed.
    pub fn get_object(&mut self, pid: u64, fd: u64, writable: bool) -> Result<(u64, u64), Errno> {
        let d = self.fd(pid, fd)?;
        if !d.readable() || (writable && !d.writable()) {
            return Err(Errno::EACCES);
        }
        let (object, may_write) = (d.object, d.writable());
        // One handle per mapping: a task's mappings of files (ENOMEM, as mmap past its
        // mappings) and everyone's (ENFILE) are limited, so that the table fits the heap.
        // (init's handles map programs for every task: only the global limit.)
        if pid != proto::pid::INIT && self.handles.owned_by(pid) >= MAX_TASK_HANDLES {
            return Err(Errno::ENOMEM);
        }
        if self.handles.len() >= MAX_HANDLES || rt::heap::is_low() {
            return Err(Errno::ENFILE);
        }
        // init loads programs: not one somebody may be writing (POSIX `execve`'s
        // `ETXTBSY`; init then takes the initrd's copy).
        if pid == pid::INIT && self.writers(object) {
            return Err(Errno::ETXTBSY);
        }
        // A new mapping sees zeroes past the end of the file, whatever another wrote there.
        let size = self.size_of(object)?;
        self.clear_past(object, size);
        let o = self.objects.get_mut(&object).ok_or(Errno::EBADF)?;
        let handle = self.handles.give(pid, object, may_write)?;
        o.handles += 1;
        Ok((handle, o.size))
    }

    /// Whether a descriptor open for writing or a writable handle (a shared writable
    /// mapping, or one about to be made) names `object`.
    fn writers(&self, object: u64) -> bool {
        self.fds
            .values()
            .any(|d| d.object == object && d.writable())
            || self.handles.writable_on(object, pid::INIT)
    }

    /// `ObjectClaim` (vm's): vm takes `handle` for task `pid`'s mapping. `EBADF` unless it
    /// is `pid`'s and unclaimed.
    pub fn claim(&mut self, handle: u64, pid: u64) -> Result<Claimed, Errno> {
        self.handles.claim(handle, pid)
    }

    /// `ObjectPage`: the slot holding the block, and how many of its bytes are file data.
    /// `EFAULT` when the block lies wholly past the end of the file; `EBADF` for a handle vm
    /// has not claimed, `EACCES` for `write` through a read-only one.
    pub fn object_page(
        &mut self,
        handle: u64,
        block: u64,
        write: bool,
    ) -> Result<(usize, u64), Fail> {
        let object = if write {
            self.handles.claimed_for_write(handle)?.object
        } else {
            self.handles.claimed(handle)?.object
        };
        let size = self.size_of(object)?;
        let start = block.checked_mul(BS).ok_or(Errno::EFAULT)?;
        if start >= size {
            return Err(Errno::EFAULT.into());
        }
        let i = self.block(object, block)?;
        if write {
            self.cache.slots[i].dirty = true;
        }
        let valid = (size - start).min(BS);
        self.cache.stats.object_requests += 1;
        self.cache.stats.object_pages += valid.div_ceil(PAGE_SIZE);
        Ok((i, valid))
    }

    /// `ObjectDirty`: a page of the block was written through a mapping. `EACCES` for a
    /// read-only handle.
    pub fn object_dirty(&mut self, handle: u64, block: u64) -> Result<(), Errno> {
        let object = self.handles.claimed_for_write(handle)?.object;
        self.size_of(object)?;
        if let Some(i) = self.cache.lookup((object, block)) {
            self.cache.slots[i].dirty = true;
        }
        Ok(())
    }

    /// `ObjectSync`: writes back the dirty blocks among `first .. first + count` (each one's
    /// mappings are taken away, so the next write faults and is seen).
    pub fn object_sync(&mut self, handle: u64, first: u64, count: u64) -> Result<(), Errno> {
        let object = self.handles.claimed(handle)?.object;
        self.size_of(object)?;
        let synced = self.sync(object, first, count);
        // Failed now or in an eviction since the last `msync`: reported once.
        let pending = self.objects.get_mut(&object).and_then(|o| o.error.take());
        synced.and(pending.map_or(Ok(()), Err))
    }

    /// `ObjectRelease` from `badge`: vm maps the handle no more (or the task it was given to
    /// gives back one vm never claimed); the file's last holder settles it.
    pub fn object_release(&mut self, badge: u64, handle: u64) -> Result<(), Errno> {
        let object = self.handles.release(badge, handle)?;
        self.handle_gone(object)
    }

    fn handle_gone(&mut self, object: u64) -> Result<(), Errno> {
        if let Some(o) = self.objects.get_mut(&object) {
            o.handles = o.handles.saturating_sub(1);
        }
        self.settle(object)
    }
}
