//! The shm server's logic, free of system calls so that it is tested on the host: named
//! objects, per-task descriptors, the handles vm maps objects by, and which 64 KiB block
//! frame holds which part of an object. Frames are a type parameter `F`: the server binary
//! uses its block capabilities, the tests plain numbers. Every operation that lets frames go
//! or needs bytes cleared says so in its result ([`Frames`]); the server does the work.
//!
//! Lifetimes, as POSIX has them: a name holds its object until `shm_unlink`; a descriptor
//! until `close`; a handle (one per `GetObject`, i.e. per `mmap` of a descriptor) until vm's
//! `ObjectRelease` for it (or, never claimed by vm, until its task gives it back or ends:
//! `proto::handles`). The object, with its frames, goes when the last of these does, so
//! unlinking or closing never disturbs a mapping.
//!
//! Handles are bound to the task they were given to and keep the descriptor's rights
//! (`proto::handles::Handles`): vm claims one for that task before mapping it, and only a
//! claimed handle serves vm's `ObjectPage`/`ObjectDirty`/`ObjectSync`; a read-only one
//! refuses writes (`EACCES`).
//!
//! Anonymous objects (vm's `CreateAnon`, for `MAP_SHARED | MAP_ANONYMOUS` memory) are born
//! unlinked with one handle and no descriptor: vm's `ObjectRelease` of that handle, once no
//! task maps the memory any more, frees them.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use proto::file::open_flags::{ACCMODE, CREAT, EXCL, RDONLY, RDWR, TRUNC};
use proto::handles::Handles;
use proto::object::{BLOCK_SIZE, Claimed};
use proto::shm::{AnonObject, FD_COUNT, FIRST_FD, mode, valid_name};
use proto::{Errno, Name};

/// The largest object (`EFBIG` beyond it): far more than any budget, so that the size
/// arithmetic never overflows.
pub const MAX_SIZE: u64 = 1 << 40;
/// Descriptors a task may hold (`EMFILE` beyond), numbered from `FIRST_FD`.
pub const MAX_FDS: u64 = 256;
/// Descriptors of all tasks together (`ENFILE` beyond).
pub const MAX_ALL_FDS: usize = 2048;
/// Objects in all, named or anonymous (`ENOSPC` for `shm_open`, `ENOMEM` for `CreateAnon`
/// beyond: as tmpfs out of inodes), and named objects one task may have created that still
/// exist (`ENOSPC` beyond), so that one task cannot take them all.
pub const MAX_OBJECTS: usize = 1024;
pub const MAX_TASK_OBJECTS: usize = 256;
/// vm's handles in all (one per `mmap` of a descriptor; `ENFILE` beyond).
pub const MAX_HANDLES: usize = 4096;
const _: () = assert!(MAX_FDS <= FD_COUNT);

/// One shared memory object.
#[derive(Debug)]
struct Object<F> {
    size: u64,
    mode: u64,
    /// Whether a name still leads to it.
    linked: bool,
    /// Descriptors and vm handles that hold it.
    fds: u32,
    handles: u32,
    /// Block index → its frame (blocks never touched have none and read as zero).
    blocks: BTreeMap<u64, F>,
    /// The task that created it by name (0 for anonymous objects).
    creator: u64,
}

impl<F> Object<F> {
    fn unused(&self) -> bool {
        !self.linked && self.fds == 0 && self.handles == 0
    }
}

/// A task's descriptor.
#[derive(Clone, Copy, Debug)]
struct Fd {
    object: u64,
    writable: bool,
    /// Where `read`/`write` at the position go (`lseek` moves it). Per task: a fork child's
    /// copy moves on its own, as the file server's.
    pos: u64,
}

/// Where a `read` or `write` of a descriptor goes: `n` bytes of `object` at `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub object: u64,
    pub at: u64,
    pub n: u64,
}

/// Bytes [`from`, `to`) of a block's frame that must read as zero from now on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clear<F> {
    pub frame: F,
    pub from: u64,
    pub to: u64,
}

/// What an operation leaves to the server: frames no object uses any more (take them from
/// every mapping, then reuse them), a frame whose mappings must go (the object now ends
/// inside it: vm asks for it again and maps only the pages that still hold data), and bytes
/// to clear (after that revoke).
#[derive(Debug, PartialEq, Eq)]
pub struct Frames<F> {
    pub freed: Vec<F>,
    pub revoke: Option<F>,
    pub clear: Option<Clear<F>>,
}

impl<F> Frames<F> {
    const fn none() -> Self {
        Self {
            freed: Vec::new(),
            revoke: None,
            clear: None,
        }
    }
}

/// The server's state.
#[derive(Debug)]
pub struct Table<F> {
    objects: BTreeMap<u64, Object<F>>,
    /// Name (its two words) → object.
    names: BTreeMap<[u64; 2], u64>,
    /// (pid, fd) → descriptor.
    fds: BTreeMap<(u64, u64), Fd>,
    /// The handles given out (`GetObject`, `CreateAnon`).
    handles: Handles,
    next_object: u64,
    /// Task → how many of the objects that exist it created by name (for
    /// [`MAX_TASK_OBJECTS`]: one lookup, not a walk over every object at each creation).
    created: BTreeMap<u64, usize>,
}

impl<F: Copy> Default for Table<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Copy> Table<F> {
    pub const fn new() -> Self {
        Self {
            objects: BTreeMap::new(),
            names: BTreeMap::new(),
            fds: BTreeMap::new(),
            handles: Handles::new(),
            next_object: 1,
            created: BTreeMap::new(),
        }
    }

    /// `shm_open(name, flags, mode)` by task `pid` → (descriptor, size), and what `O_TRUNC`
    /// let go. See `proto::shm::ShmRequest::Open` for the errors.
    pub fn open(
        &mut self,
        pid: u64,
        name: &Name,
        flags: u64,
        new_mode: u64,
    ) -> Result<(u64, u64, Frames<F>), Errno> {
        if !valid_name(name) {
            return Err(Errno::EINVAL);
        }
        let writable = match flags & ACCMODE {
            RDONLY => false,
            RDWR => true,
            _ => return Err(Errno::EINVAL),
        };
        let fd = (FIRST_FD..FIRST_FD + MAX_FDS)
            .find(|fd| !self.fds.contains_key(&(pid, *fd)))
            .ok_or(Errno::EMFILE)?;
        if self.fds.len() >= MAX_ALL_FDS {
            return Err(Errno::ENFILE);
        }
        let key = name.to_words();
        let mut frames = Frames::none();
        let id = match self.names.get(&key) {
            Some(_) if flags & (CREAT | EXCL) == CREAT | EXCL => return Err(Errno::EEXIST),
            Some(&id) => {
                let o = self.objects.get_mut(&id).ok_or(Errno::EIO)?;
                let may_write = o.mode & mode::OWNER_WRITE != 0;
                if o.mode & mode::OWNER_READ == 0
                    || (writable && !may_write)
                    || (flags & TRUNC != 0 && !may_write)
                {
                    return Err(Errno::EACCES);
                }
                if flags & TRUNC != 0 {
                    frames = resize(o, 0);
                }
                id
            }
            None if flags & CREAT == 0 => return Err(Errno::ENOENT),
            None => {
                let mine = self.created.get(&pid).copied().unwrap_or(0);
                if self.objects.len() >= MAX_OBJECTS || mine >= MAX_TASK_OBJECTS {
                    return Err(Errno::ENOSPC);
                }
                let id = self.next_object;
                self.next_object += 1;
                self.objects.insert(
                    id,
                    Object {
                        size: 0,
                        mode: new_mode & mode::MASK,
                        linked: true,
                        fds: 0,
                        handles: 0,
                        blocks: BTreeMap::new(),
                        creator: pid,
                    },
                );
                *self.created.entry(pid).or_insert(0) += 1;
                self.names.insert(key, id);
                id
            }
        };
        let o = self.objects.get_mut(&id).ok_or(Errno::EIO)?;
        o.fds += 1;
        let size = o.size;
        self.fds.insert(
            (pid, fd),
            Fd {
                object: id,
                writable,
                pos: 0,
            },
        );
        Ok((fd, size, frames))
    }

    fn fd(&self, pid: u64, fd: u64) -> Result<Fd, Errno> {
        self.fds.get(&(pid, fd)).copied().ok_or(Errno::EBADF)
    }

    /// `ftruncate(fd, size)`.
    pub fn truncate(&mut self, pid: u64, fd: u64, size: u64) -> Result<Frames<F>, Errno> {
        let d = self.fd(pid, fd)?;
        if !d.writable {
            return Err(Errno::EINVAL);
        }
        // Negative as an `off_t`: `EINVAL` (POSIX); too large: `EFBIG`.
        if size > i64::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        if size > MAX_SIZE {
            return Err(Errno::EFBIG);
        }
        let o = self.objects.get_mut(&d.object).ok_or(Errno::EIO)?;
        Ok(resize(o, size))
    }

    /// `read(fd)` of up to `len` bytes at `offset` (`AT_POSITION`: the descriptor's
    /// position) → what to copy out: the bytes up to the end of the object (`n` 0 at or past
    /// it). `EBADF` for a descriptor `pid` does not hold, `EINVAL` for an offset negative as
    /// an `off_t`.
    pub fn read_span(&self, pid: u64, fd: u64, offset: u64, len: u64) -> Result<Span, Errno> {
        let d = self.fd(pid, fd)?;
        let at = self.offset_of(&d, offset)?;
        let size = self.objects.get(&d.object).ok_or(Errno::EIO)?.size;
        let n = size.saturating_sub(at).min(len);
        Ok(Span {
            object: d.object,
            at,
            n,
        })
    }

    /// `write(fd)` of `len` bytes at `offset` (`AT_POSITION`: the descriptor's position)
    /// → where they go, and what growing the object to hold them leaves to clear (bytes past
    /// the old end that a mapping may have written; the gap reads as zero). `EBADF` for a
    /// descriptor not open for writing, `EFBIG` past [`MAX_SIZE`], `EINVAL` for an offset
    /// negative as an `off_t`.
    pub fn write_span(
        &mut self,
        pid: u64,
        fd: u64,
        offset: u64,
        len: u64,
    ) -> Result<(Span, Frames<F>), Errno> {
        let d = self.fd(pid, fd)?;
        if !d.writable {
            return Err(Errno::EBADF);
        }
        let at = self.offset_of(&d, offset)?;
        let end = at
            .checked_add(len)
            .filter(|&e| e <= MAX_SIZE)
            .ok_or(Errno::EFBIG)?;
        let o = self.objects.get_mut(&d.object).ok_or(Errno::EIO)?;
        // Nothing to write changes nothing, not the size either (whatever the offset).
        let frames = if len > 0 && end > o.size {
            resize(o, end)
        } else {
            Frames::none()
        };
        Ok((
            Span {
                object: d.object,
                at,
                n: len,
            },
            frames,
        ))
    }

    fn offset_of(&self, d: &Fd, offset: u64) -> Result<u64, Errno> {
        match offset {
            proto::file::AT_POSITION => Ok(d.pos),
            o if o > i64::MAX as u64 => Err(Errno::EINVAL),
            o => Ok(o),
        }
    }

    /// After a `read`/`write` at the position: it moves to `pos`.
    pub fn set_position(&mut self, pid: u64, fd: u64, pos: u64) {
        if let Some(d) = self.fds.get_mut(&(pid, fd)) {
            d.pos = pos;
        }
    }

    /// The frame of block `block` of `object`, if it was ever touched (else it reads as
    /// zero).
    pub fn frame(&self, object: u64, block: u64) -> Option<F> {
        self.objects.get(&object)?.blocks.get(&block).copied()
    }

    /// The frame of block `block` of `object`, from `alloc` if it has none yet (a `write`).
    pub fn frame_for_write(
        &mut self,
        object: u64,
        block: u64,
        alloc: impl FnOnce() -> Result<F, Errno>,
    ) -> Result<F, Errno> {
        let o = self.objects.get_mut(&object).ok_or(Errno::EIO)?;
        if let Some(&f) = o.blocks.get(&block) {
            return Ok(f);
        }
        let f = alloc()?;
        o.blocks.insert(block, f);
        Ok(f)
    }

    /// A `write` that stopped short (no frame for the next block): the object ends where
    /// the written bytes do, if it grew for them (`written_end`), as if it had grown only
    /// that far → what shrinking back leaves to do.
    pub fn write_stopped(&mut self, object: u64, old_size: u64, written_end: u64) -> Frames<F> {
        match self.objects.get_mut(&object) {
            Some(o) if o.size > written_end.max(old_size) => resize(o, written_end.max(old_size)),
            _ => Frames::none(),
        }
    }

    /// `lseek(fd, offset, whence)` → the new position. `EINVAL` below 0 or past
    /// [`MAX_SIZE`].
    pub fn lseek(
        &mut self,
        pid: u64,
        fd: u64,
        offset: i64,
        whence: proto::file::Whence,
    ) -> Result<u64, Errno> {
        use proto::file::Whence;
        let d = self.fd(pid, fd)?;
        let base = match whence {
            Whence::Set => 0,
            Whence::Cur => d.pos,
            Whence::End => self.objects.get(&d.object).ok_or(Errno::EIO)?.size,
        };
        let pos = base
            .checked_add_signed(offset)
            .filter(|&p| p <= MAX_SIZE)
            .ok_or(Errno::EINVAL)?;
        self.set_position(pid, fd, pos);
        Ok(pos)
    }

    /// `fstat(fd)` → size.
    pub fn stat(&self, pid: u64, fd: u64) -> Result<u64, Errno> {
        let d = self.fd(pid, fd)?;
        self.objects
            .get(&d.object)
            .map(|o| o.size)
            .ok_or(Errno::EIO)
    }

    /// `shm_unlink(name)` → the frames of the object if nothing else held it.
    pub fn unlink(&mut self, name: &Name) -> Result<Vec<F>, Errno> {
        if !valid_name(name) {
            return Err(Errno::EINVAL);
        }
        let id = self.names.remove(&name.to_words()).ok_or(Errno::ENOENT)?;
        if let Some(o) = self.objects.get_mut(&id) {
            o.linked = false;
        }
        Ok(self.drop_if_unused(id))
    }

    /// `close(fd)` → the frames of the object if this was its last holder.
    pub fn close(&mut self, pid: u64, fd: u64) -> Result<Vec<F>, Errno> {
        let d = self.fds.remove(&(pid, fd)).ok_or(Errno::EBADF)?;
        if let Some(o) = self.objects.get_mut(&d.object) {
            o.fds = o.fds.saturating_sub(1);
        }
        Ok(self.drop_if_unused(d.object))
    }

    /// `GetObject` by task `pid`: a new handle on the object of `fd`, bound to `pid`, as
    /// writable as the descriptor → (handle, size). `EACCES` when `writable` is asked of a
    /// read-only descriptor, `EMFILE` when `pid` holds too many unclaimed handles.
    pub fn get_object(&mut self, pid: u64, fd: u64, writable: bool) -> Result<(u64, u64), Errno> {
        let d = self.fd(pid, fd)?;
        if writable && !d.writable {
            return Err(Errno::EACCES);
        }
        if self.handles.len() >= MAX_HANDLES {
            return Err(Errno::ENFILE);
        }
        let o = self.objects.get_mut(&d.object).ok_or(Errno::EIO)?;
        let handle = self.handles.give(pid, d.object, d.writable)?;
        o.handles += 1;
        Ok((handle, o.size))
    }

    /// `CreateAnon` (vm only): a new anonymous object of `size` bytes, with no name and no
    /// descriptor → the handle that alone holds it (vm's, claimed, writable) and the
    /// object. `EFBIG` beyond [`MAX_SIZE`].
    pub fn create_anon(&mut self, size: u64) -> Result<AnonObject, Errno> {
        if size > MAX_SIZE {
            return Err(Errno::EFBIG);
        }
        if self.objects.len() >= MAX_OBJECTS || self.handles.len() >= MAX_HANDLES {
            return Err(Errno::ENOMEM);
        }
        let id = self.next_object;
        self.next_object += 1;
        self.objects.insert(
            id,
            Object {
                size,
                mode: mode::OWNER_READ | mode::OWNER_WRITE,
                linked: false,
                fds: 0,
                handles: 1,
                blocks: BTreeMap::new(),
                creator: 0,
            },
        );
        let handle = self.handles.give_vm(id, true);
        Ok(AnonObject { handle, object: id })
    }

    /// `ObjectClaim` (vm only): vm takes `handle` for task `pid`'s mapping. `EBADF` unless
    /// it is `pid`'s and unclaimed.
    pub fn claim(&mut self, handle: u64, pid: u64) -> Result<Claimed, Errno> {
        self.handles.claim(handle, pid)
    }

    /// `ObjectPage`: the frame of block `block` of `handle`'s object (from `alloc` the first
    /// time the block is touched) and how many of its bytes lie inside the object. `EFAULT`
    /// when the block lies wholly past the end, `EBADF` for a handle vm has not claimed,
    /// `EACCES` for `write` through a read-only one.
    pub fn page(
        &mut self,
        handle: u64,
        block: u64,
        write: bool,
        alloc: impl FnOnce() -> Result<F, Errno>,
    ) -> Result<(F, u64), Errno> {
        let h = if write {
            self.handles.claimed_for_write(handle)?
        } else {
            self.handles.claimed(handle)?
        };
        let o = self.objects.get_mut(&h.object).ok_or(Errno::EIO)?;
        let base = block.checked_mul(BLOCK_SIZE).ok_or(Errno::EFAULT)?;
        if base >= o.size {
            return Err(Errno::EFAULT);
        }
        let valid = (o.size - base).min(BLOCK_SIZE);
        let frame = match o.blocks.get(&block) {
            Some(&f) => f,
            None => {
                let f = alloc()?;
                o.blocks.insert(block, f);
                f
            }
        };
        Ok((frame, valid))
    }

    /// `ObjectDirty`: memory only, nothing to remember; `EBADF` for a handle vm has not
    /// claimed, `EACCES` for a read-only one.
    pub fn dirty(&self, handle: u64) -> Result<(), Errno> {
        self.handles.claimed_for_write(handle).map(drop)
    }

    /// `ObjectSync`: memory only, nothing to write back; `EBADF` for a handle vm has not
    /// claimed.
    pub fn check_handle(&self, handle: u64) -> Result<(), Errno> {
        self.handles.claimed(handle).map(drop)
    }

    /// `ObjectRelease` from `badge`: vm maps `handle` no more (or its owner gives back one
    /// vm never claimed) → the object's frames if that was its last holder.
    pub fn release(&mut self, badge: u64, handle: u64) -> Result<Vec<F>, Errno> {
        let id = self.handles.release(badge, handle)?;
        Ok(self.handle_gone(id))
    }

    fn handle_gone(&mut self, id: u64) -> Vec<F> {
        if let Some(o) = self.objects.get_mut(&id) {
            o.handles = o.handles.saturating_sub(1);
        }
        self.drop_if_unused(id)
    }

    /// Handles alive (claimed by vm or not).
    pub fn handles(&self) -> usize {
        self.handles.len()
    }

    /// `TaskExit`: task `pid` ended; its descriptors go as `close` would take them, and the
    /// handles it was given that vm never claimed → the frames of the objects that was the
    /// last holder of.
    pub fn task_exit(&mut self, pid: u64) -> Vec<F> {
        let mut freed = Vec::new();
        for id in self.handles.task_exit(pid) {
            freed.extend(self.handle_gone(id));
        }
        freed.extend(self.close_all(pid));
        freed
    }

    /// `TaskExec`: task `pid` runs a new program; its descriptors go (POSIX `shm_open`
    /// makes them close-on-exec), its handles stay → the frames let go.
    pub fn task_exec(&mut self, pid: u64) -> Vec<F> {
        self.close_all(pid)
    }

    /// Closes every descriptor of task `pid` → the frames let go.
    fn close_all(&mut self, pid: u64) -> Vec<F> {
        let fds: Vec<u64> = self
            .fds
            .range((pid, 0)..=(pid, u64::MAX))
            .map(|(&(_, fd), _)| fd)
            .collect();
        let mut freed = Vec::new();
        for fd in fds {
            if let Ok(f) = self.close(pid, fd) {
                freed.extend(f);
            }
        }
        freed
    }

    /// `TaskFork`: `child` gets a copy of each of `parent`'s descriptors, same numbers →
    /// the frames of objects a stale descriptor of `child` (a reused pid) was the last
    /// holder of.
    /// `ENFILE` (and nothing copied) when all tasks' descriptors would pass
    /// [`MAX_ALL_FDS`].
    pub fn task_fork(&mut self, parent: u64, child: u64) -> Result<Vec<F>, Errno> {
        let n = self.fds.range((parent, 0)..=(parent, u64::MAX)).count();
        if self.fds.len() + n > MAX_ALL_FDS {
            return Err(Errno::ENFILE);
        }
        let freed = self.task_exit(child);
        let copies: Vec<(u64, Fd)> = self
            .fds
            .range((parent, 0)..=(parent, u64::MAX))
            .map(|(&(_, fd), &d)| (fd, d))
            .collect();
        for (fd, d) in copies {
            if let Some(o) = self.objects.get_mut(&d.object) {
                o.fds += 1;
                self.fds.insert((child, fd), d);
            }
        }
        Ok(freed)
    }

    /// Descriptors open over all tasks.
    pub fn descriptors(&self) -> usize {
        self.fds.len()
    }

    /// Objects alive (named or held) and block frames they use.
    pub fn usage(&self) -> (usize, usize) {
        let blocks = self.objects.values().map(|o| o.blocks.len()).sum();
        (self.objects.len(), blocks)
    }

    fn drop_if_unused(&mut self, id: u64) -> Vec<F> {
        match self.objects.get(&id) {
            Some(o) if o.unused() => {
                let Some(o) = self.objects.remove(&id) else {
                    return Vec::new();
                };
                if let Some(n) = self.created.get_mut(&o.creator) {
                    *n -= 1;
                    if *n == 0 {
                        self.created.remove(&o.creator);
                    }
                }
                o.blocks.into_values().collect()
            }
            _ => Vec::new(),
        }
    }
}

/// Sets `o`'s size: blocks wholly past the new end go; the block holding the end of the
/// smaller of the two sizes is cleared from there on (bytes past the end of an object read
/// as zero when it grows again, even if a mapping wrote there). A shrink that ends inside
/// a block also takes that block from every mapping (`revoke`): its pages wholly past the
/// new end must not stay mapped (an access there is `BUS`, as Linux's `SIGBUS` for a page
/// wholly past the end of a shm object); vm asks for the block again at the next access
/// and maps only the pages that hold data.
fn resize<F: Copy>(o: &mut Object<F>, size: u64) -> Frames<F> {
    let first_gone = size.div_ceil(BLOCK_SIZE);
    let freed = o.blocks.split_off(&first_gone).into_values().collect();
    let end = o.size.min(size);
    let (clear, revoke) = if end.is_multiple_of(BLOCK_SIZE) {
        (None, None)
    } else {
        let frame = o.blocks.get(&(end / BLOCK_SIZE)).copied();
        let clear = frame.map(|frame| Clear {
            frame,
            from: end % BLOCK_SIZE,
            to: BLOCK_SIZE,
        });
        (clear, frame.filter(|_| size < o.size))
    };
    o.size = size;
    Frames {
        freed,
        revoke,
        clear,
    }
}

#[cfg(test)]
mod tests;
