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
//!
//! The core runs over a [`Platform`] (`crate::platform`): the disk, the cache's frames, the
//! console and the heap are the platform's, so that the same code runs in the server and in
//! host tests (`cargo test -p file`, against a RAM disk holding a FAT image).
//!
//! This file holds the tables and the calls on paths and descriptors (open, close, stat,
//! unlink, the task notices); the rest is in `blocks` (the cache's blocks: lookups,
//! asynchronous and synchronous reads, read-ahead, completions), `io` (`read`, `write`,
//! `lseek`, `O_DIRECT`), `writeback` (write-back, sync, size changes), `objects` (memory
//! objects and vm's requests), `extents` (the disk path of file data) and `volume` (what is
//! checked before the FAT crate sees the disk, path walks, removal).

extern crate alloc;

mod blocks;
mod dirs;
mod extents;
mod grow;
mod io;
mod objects;
mod pipes;
mod volume;
mod writeback;

use crate::blockdev::{BlockDev, IoError};
use crate::cache::Cache;
use crate::pending::{Finished, Key, Pending};
use crate::platform::{Device, Memory, Platform, Waiter};
use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::Cell;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use embedded_sdmmc::ShortFileName;
use embedded_sdmmc::{
    Error, Mode, RawFile, RawVolume, TimeSource, Timestamp, VolumeIdx, VolumeManager,
};
use extents::Done;
use fatcheck::{ChainMap, SECTOR};
pub use pipes::{MAX_PIPE_WAITERS, MAX_PIPES};
use proto::console::FD_COUNT;
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
/// `O_DIRECT` buffers (`DirectBuffer`: one cache slot each, shared with the task that asked)
/// one task may hold (`ENOMEM` beyond) and all tasks together (`EAGAIN` beyond); they never
/// take more than a quarter of the cache's budget (`EAGAIN`: the task uses the message path).
pub const MAX_TASK_BUFFERS: usize = 4;
pub const MAX_BUFFERS: usize = 16;
/// Object numbers of `O_DIRECT` buffers and size pages (file objects count up from 1:
/// never this high).
const BUFFER_OBJECT: u64 = 1 << 63;
/// Growth reservations (`Grow`): the cells of a task's size page (one per descriptor that
/// holds a reservation), and the size pages of all tasks (`SizePage`: a cache slot each;
/// never more than an eighth of the cache's budget).
pub const CELLS: usize = proto::file::GROW_CELLS;
pub const MAX_SIZE_PAGES: usize = 64;
/// Growth reservations of all tasks at once (each is looked at before every request).
pub const MAX_RESERVED: usize = 256;

/// A growth reservation (`Grow`): descriptor (pid, fd) may write up to `limit` bytes of
/// `object` through its window without asking, and says how far it wrote in `cell` of its
/// task's size page; the server folds that into the size before each request.
#[derive(Clone, Copy)]
struct Reserved {
    object: u64,
    cell: usize,
    limit: u64,
}
/// Memory-object handles (one per `mmap` of a file) of one task (`ENOMEM` beyond) and of
/// all tasks (`ENFILE` beyond).
pub const MAX_TASK_HANDLES: usize = 2048;
pub const MAX_HANDLES: usize = 8192;
/// The largest FAT file.
const MAX_SIZE: u64 = u32::MAX as u64;
/// Blocks a `Span` brings into the cache at most (the caller asks again for the rest).
pub const SPAN_BLOCKS: u64 = 4;
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
    /// It waits for this pipe to change (data, room, or an end closed).
    WaitPipe(u64),
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

type Volumes<D> = VolumeManager<BlockDev<D>, NoClock, MAX_DIRS, MAX_FILES, 1>;

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
    /// Descriptors naming it, and those of them open for writing.
    refs: u32,
    writers: u32,
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
    /// Counts it among the stages alive while it lives (wherever it is dropped: the end of
    /// its transfer, `close`, `lseek`, `dup2` over its descriptor, the task's end).
    _live: Live,
}

/// One count of a shared counter for as long as it lives: `Files::stages` counts the
/// `O_DIRECT` stages of all tasks without a walk over every descriptor.
struct Live(Rc<Cell<usize>>);

impl Live {
    fn new(count: &Rc<Cell<usize>>) -> Self {
        count.set(count.get() + 1);
        Self(count.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// What a descriptor names.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum End {
    /// A file (`Fd::object`).
    File,
    /// The read or the write end of a pipe (`fs::pipes`).
    PipeRead(u64),
    PipeWrite(u64),
    /// The console (a `dup` of descriptor 0..2 the server did not hold): its calls go to the
    /// console server (`EXDEV` here tells the runtime so).
    Console,
}

/// One `open` (or `pipe`, `dup`).
struct Fd {
    /// Its file (`End::File`; 0 otherwise: no object has that number).
    object: u64,
    end: End,
    /// The position, shared by the descriptors a `fork` copied from one `open` (POSIX's
    /// open file description): a child's `read` moves its parent's position too.
    pos: Rc<Cell<u64>>,
    flags: u64,
    stage: Option<Stage>,
    /// Its `O_DIRECT` buffer (`DirectBuffer`): the object number of the cache slot it
    /// holds (key `(buffer, 0)`, pinned), shared with the task's mapping of it.
    buffer: Option<u64>,
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

/// The file server's state, over platform `P`.
pub struct Files<P: Platform> {
    volumes: Volumes<P::Device>,
    volume: RawVolume,
    readonly: bool,
    objects: BTreeMap<u64, Object>,
    /// Objects by the place of their directory entry.
    ids: BTreeMap<EntryId, u64>,
    /// The volume's checked geometry (`fatcheck`).
    geo: fatcheck::Geometry,
    /// The lowest cluster that may be free (every one below it was in use when last
    /// looked): where a search for free clusters starts unless the one after a growing
    /// file's last is free (`fs::grow`). Only the order of the search: it looks at every
    /// cluster either way.
    free_hint: Cell<u32>,
    /// Damaged structures reported on the console so far.
    reports: Cell<u32>,
    next_object: u64,
    /// The number in the hidden name the next unlinked, still open file gets.
    next_hidden: u32,
    /// (pid, fd) → descriptor.
    fds: BTreeMap<(u64, u64), Fd>,
    /// Descriptors 0..2 a task closed (pid, fd): neither the console's nor held here, so
    /// the lowest free number for `open`, `dup` and `pipe` (`fs::pipes::lowest_free`).
    closed: alloc::collections::BTreeSet<(u64, u64)>,
    /// `O_DIRECT` stages alive (in descriptors' `stage`), over all tasks.
    stages: Rc<Cell<usize>>,
    /// Memory-object handles given out.
    handles: Handles,
    /// Growth reservations by (pid, fd), and each task's size page (its buffer object).
    reserved: BTreeMap<(u64, u64), Reserved>,
    size_pages: BTreeMap<u64, u64>,
    pub cache: Cache<P::Memory>,
    /// Blocks being read asynchronously, and the requests waiting for them.
    pub pending: Pending<P::Waiter>,
    /// Whether the request being served may wait for the disk (the server can save its
    /// reply): a miss then reads the block asynchronously; otherwise synchronously.
    pub can_wait: bool,
    /// Requests whose block's read ended while a request was being served (collected
    /// to free a slot), for the receive loop to answer or run again: (request, error).
    ready: Vec<(P::Waiter, Option<Errno>)>,
    /// The device's flag: completions wait to be collected.
    done: &'static AtomicBool,
    /// Pipes by number, the next number, and the requests waiting on one (`fs::pipes`).
    pipes: BTreeMap<u64, pipes::Pipe>,
    next_pipe: u64,
    pipe_waiters: Vec<(u64, P::Waiter)>,
    /// Writes of at most `PIPE_BUF` bytes that take two messages, by task: the first part,
    /// held until the rest comes (`fs::pipes`; one per task, which writes one thing at a
    /// time).
    stashes: BTreeMap<u64, pipes::Stash>,
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
fn read_at<D: Device>(
    v: &Volumes<D>,
    raw: RawFile,
    at: u64,
    out: &mut [u8],
) -> Result<usize, Errno> {
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
fn write_at<D: Device>(v: &Volumes<D>, o: &mut Object, at: u64, bytes: &[u8]) -> Result<(), Errno> {
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

impl<P: Platform> Files<P> {
    /// Opens the first partition's FAT volume, once `fatcheck` accepted its geometry.
    pub fn mount(dev: BlockDev<P::Device>, cache: Cache<P::Memory>) -> Result<Self, MountError> {
        let (readonly, max_async, done) = match dev.disk.try_borrow() {
            Ok(d) => (d.readonly(), d.max_async(), d.done_flag()),
            Err(_) => return Err(MountError::Io),
        };
        let geo = volume::check(&dev)?;
        if geo.fat_type == fatcheck::FatType::Fat32 {
            // The info sector's free count is kept right from now on (`blockdev::FreeCount`).
            dev.keep_free_count(
                geo.fat_start,
                geo.fat_sectors,
                geo.clusters,
                geo.info_sector,
            )
            .map_err(|_| MountError::Io)?;
        }
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
            free_hint: Cell::new(2),
            reports: Cell::new(0),
            next_object: 1,
            next_hidden: 0,
            fds: BTreeMap::new(),
            closed: alloc::collections::BTreeSet::new(),
            stages: Rc::new(Cell::new(0)),
            handles: Handles::new(),
            reserved: BTreeMap::new(),
            size_pages: BTreeMap::new(),
            cache,
            pending: Pending::new(max_async),
            can_wait: false,
            ready: Vec::new(),
            done,
            pipes: BTreeMap::new(),
            next_pipe: 1,
            pipe_waiters: Vec::new(),
            stashes: BTreeMap::new(),
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
                let e = match self.create(&r.dirs, r.parent, name) {
                    Err(Errno::ENFILE) => {
                        self.drop_idle();
                        self.create(&r.dirs, r.parent, name)?
                    }
                    other => other?,
                };
                self.open_object(r.dirs, r.parent, e, wants_write)?
            }
        };
        if flags & of::TRUNC != 0 && wants_write {
            self.truncate(object, 0)?;
        }
        let size = self.objects.get(&object).ok_or(Errno::EIO)?.size;
        let d = Fd {
            object,
            end: End::File,
            pos: Rc::new(Cell::new(0)),
            flags,
            stage: None,
            buffer: None,
            error: None,
        };
        self.take_end(&d);
        let fd = self.lowest_free(pid);
        self.install(pid, fd, d);
        Ok((fd, size))
    }

    /// Creates file `name` in directory `dirs` (first cluster `parent`): an 8.3 entry, and
    /// long-name entries before it unless `name` is a plain upper-case 8.3 name (`dirs`).
    fn create(&self, dirs: &[ShortFileName], parent: u32, name: &str) -> Result<Entry, Errno> {
        let names = self.names_for(dirs, name)?;
        let sfn = names.sfn()?;
        // A free slot for the crate's 8.3 entry first: the crate grows a full directory
        // itself, and its allocation of the last free cluster links it to the directory and
        // then fails before zeroing it (the directory gets a cluster of old bytes). The
        // server grows it (a zeroed cluster), or it is `ENOSPC` before anything changes.
        self.make_room(parent)?;
        let de = self.with_dir(dirs, |v, dir| {
            let raw = v
                .open_file_in_dir(dir, sfn, Mode::ReadWriteCreate)
                .map_err(errno)?;
            v.close_file(raw).map_err(errno)?;
            v.find_directory_entry(dir, sfn).map_err(errno)
        })?;
        let e = self.entry(&de)?;
        match self.add_long_name(parent, e.id, &names) {
            Ok(id) => Ok(Entry { id, ..e }),
            Err(err) => {
                let _ = self.erase(parent, e.id);
                Err(err)
            }
        }
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
                writers: 0,
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
        if self.fds.len() + more > MAX_FDS || P::heap_low() {
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
        // The task's own descriptors (at most `MAX_TASK_FDS`), and a count for all tasks.
        let mine = self
            .fds
            .range((pid, 0)..=(pid, u64::MAX))
            .filter(|(_, d)| d.stage.is_some())
            .count();
        if mine >= MAX_TASK_STAGES || P::heap_low() {
            return Err(Errno::ENOMEM);
        }
        if self.stages.get() >= MAX_STAGES {
            return Err(Errno::EAGAIN);
        }
        Ok(())
    }

    /// Task `pid`'s descriptor `fd` is `d` from now on (a closed 0..2 is open again).
    fn install(&mut self, pid: u64, fd: u64, d: Fd) {
        self.closed.remove(&(pid, fd));
        self.fds.insert((pid, fd), d);
    }

    /// Descriptor `fd` of task `pid`, a file's: `EBADF` if it holds none, `ESPIPE` for a
    /// pipe's or the console's (the calls on files alone: `lseek`, `Span`, `mmap`...).
    fn fd(&self, pid: u64, fd: u64) -> Result<&Fd, Errno> {
        match self.fds.get(&(pid, fd)) {
            Some(d) if d.end == End::File => Ok(d),
            Some(_) => Err(Errno::ESPIPE),
            None => Err(Errno::EBADF),
        }
    }

    fn size_of(&self, object: u64) -> Result<u64, Errno> {
        match self.objects.get(&object) {
            Some(o) if o.lost => Err(Errno::EIO),
            Some(o) => Ok(o.size),
            None => Err(Errno::EBADF),
        }
    }

    /// `Fstat`: the size.
    /// A pipe's is the bytes it holds; the console's is `EXDEV` (ask the console).
    pub fn fstat(&self, pid: u64, fd: u64) -> Result<u64, Errno> {
        match self.fds.get(&(pid, fd)).map(|d| d.end) {
            Some(End::PipeRead(id) | End::PipeWrite(id)) => return self.pipe_size(id),
            Some(End::Console) => return Err(Errno::EXDEV),
            _ => {}
        }
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
        // Its reservation first: the size then holds what it wrote, nothing more.
        self.drop_reservation(pid, fd);
        let Some(d) = self.fds.remove(&(pid, fd)) else {
            // One of 0..2 still the console's: closed from now on (`EBADF` a second time).
            return if fd < FD_COUNT && self.closed.insert((pid, fd)) {
                Ok(())
            } else {
                Err(Errno::EBADF)
            };
        };
        if fd < FD_COUNT {
            self.closed.insert((pid, fd));
        }
        if d.end != End::File {
            self.drop_pipe_end(pid, &d);
            return Ok(());
        }
        if let Some(buffer) = d.buffer {
            self.drop_buffer(buffer);
        }
        if let Some(o) = self.objects.get_mut(&d.object) {
            o.refs = o.refs.saturating_sub(1);
            o.writers = o.writers.saturating_sub(u32::from(d.writable()));
        }
        let settled = self.settle(d.object);
        // A write-back that failed earlier (the data is gone) is this writer's to hear.
        d.error.map_or(settled, Err)
    }

    /// `TaskExit`: task `pid` ended; its descriptors go as `close` would take them (the
    /// last one of a file writes its dirty blocks back), and so do the handles it was given
    /// that vm never claimed.
    /// The requests it left waiting for the disk are answered into nothing when their
    /// block comes, never run again ([`Waiter::task_ended`]).
    pub fn task_exit(&mut self, pid: u64) -> Result<(), Errno> {
        for w in self.pending.waiters_mut() {
            if w.pid() == pid {
                w.task_ended();
            }
        }
        for (w, _) in &mut self.ready {
            if w.pid() == pid {
                w.task_ended();
            }
        }
        self.pipe_task_exit(pid);
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
        self.task_reservations_end(pid, true);
        for fd in 0..FD_COUNT {
            self.closed.remove(&(pid, fd));
        }
        result
    }

    /// `TaskExec`: task `pid` runs a new program; its descriptors opened `O_CLOEXEC` go as
    /// `close` would take them.
    pub fn task_exec(&mut self, pid: u64) -> Result<(), Errno> {
        // The new program's runtime knows nothing of the old one's reservations.
        self.task_reservations_end(pid, false);
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
    /// number and flags, sharing the position (POSIX: the two descriptors name one open
    /// file description, so a `read` in either moves both). An `O_DIRECT` transfer being
    /// assembled stays the parent's.
    /// `ENFILE` (and nothing copied) when all tasks' descriptors together would pass
    /// [`MAX_FDS`]: init then fails the fork.
    pub fn task_fork(&mut self, parent: u64, child: u64) -> Result<(), Errno> {
        let n = self.task_fds(parent);
        if self.fds.len() + n > MAX_FDS || (n > 0 && P::heap_low()) {
            return Err(Errno::ENFILE);
        }
        let copies: Vec<(u64, Fd)> = self
            .fds
            .range((parent, 0)..=(parent, u64::MAX))
            .map(|(&(_, fd), d)| (fd, d.share()))
            .collect();
        for fd in 0..FD_COUNT {
            if self.closed.contains(&(parent, fd)) {
                self.closed.insert((child, fd));
            }
        }
        for (fd, copy) in copies {
            self.take_end(&copy);
            if let Some(old) = self.fds.insert((child, fd), copy) {
                // A stale descriptor of a reused pid: forget it.
                if old.end == End::File {
                    if let Some(o) = self.objects.get_mut(&old.object) {
                        o.refs = o.refs.saturating_sub(1);
                        o.writers = o.writers.saturating_sub(u32::from(old.writable()));
                    }
                } else {
                    self.drop_pipe_end(child, &old);
                }
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

    /// Writes the FAT and directory sectors the request changed to the disk, coalesced into
    /// runs (`BlockDev::flush`): the server calls it at the end of every request, before
    /// the answer. `EIO` if the disk refused (the sectors stay dirty, for the next flush).
    pub fn flush_metadata(&mut self) -> Result<(), Errno> {
        self.volumes.device(|d| d.flush()).map_err(|_| Errno::EIO)
    }

    /// `Descriptors`: (descriptors open over all tasks, files the server holds open for a
    /// descriptor or a mapping).
    /// `FileStats`: the cache's and the disk's counters.
    pub fn stats(&self) -> FileStats {
        let c = &self.cache.stats;
        let disk = self
            .volumes
            .device(|dev| dev.disk.try_borrow().map(|d| d.stats()))
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
        self.end_reservations(object);
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
                P::log(format_args!("file: cannot hide an unlinked open file: {e}"));
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
}
