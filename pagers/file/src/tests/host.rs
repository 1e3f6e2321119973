//! The host's platform under the core: block frames on the heap ([`HeapFrames`]), a RAM
//! disk holding a FAT image whose asynchronous reads complete only when a test says so, in
//! any order, or fail ([`RamDisk`], reached by the test through a [`DiskHandle`]), and a
//! FAT image made in memory with `fatfs`, as tools/ makes the boot disk.

use crate::blockdev::{BlockDev, DiskStats, IoError, SECTOR_SIZE};
use crate::cache::Cache;
use crate::fs::Files;
use crate::platform::{Device, Memory, Platform, Refused, Waiter};
use proto::object::BLOCK_SIZE;
use std::boxed::Box;
use std::cell::RefCell;
use std::io::{Cursor, Read, Write};
use std::ops::Range;
use std::rc::Rc;
use std::string::String;
use std::sync::atomic::{AtomicBool, Ordering};
use std::vec::Vec;

/// The partition's first sector.
const PART_START: u64 = 8;
/// Bytes of the FAT partition: 4085 clusters of 512 bytes at least make it FAT16.
pub const PART_BYTES: u64 = 3 << 20;

/// Bytes an asynchronous read copies into a frame, not yet seen by the server: (slot,
/// offset, bytes). The device writes memory before it says it is done; the frames apply
/// these before they are next read.
type Dma = Rc<RefCell<Vec<(usize, usize, Vec<u8>)>>>;

/// A request waiting for the disk, as a test keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Req {
    pub id: u32,
    pub pid: u64,
    pub gone: bool,
}

impl Req {
    pub fn new(id: u32, pid: u64) -> Self {
        Self {
            id,
            pid,
            gone: false,
        }
    }
}

impl Waiter for Req {
    fn pid(&self) -> u64 {
        self.pid
    }

    fn task_ended(&mut self) {
        self.gone = true;
    }
}

pub struct Host;

impl Platform for Host {
    type Memory = HeapFrames;
    type Device = RamDisk;
    type Waiter = Req;

    fn log(args: core::fmt::Arguments<'_>) {
        std::eprintln!("{args}");
    }

    fn heap_low() -> bool {
        false
    }
}

/// Block frames on the heap.
pub struct HeapFrames {
    frames: Vec<Vec<u8>>,
    dma: Dma,
    /// Slots whose mappings a test says cannot be revoked.
    pub refuse_revoke: Rc<RefCell<Vec<usize>>>,
}

impl Memory for HeapFrames {
    fn new_frame(&mut self, slot: usize) -> bool {
        if slot != self.frames.len() {
            return false;
        }
        // Not zeroed, as a frame with an earlier block's bytes would not be.
        self.frames.push(std::vec![0xa5; BLOCK_SIZE as usize]);
        true
    }

    fn revoke(&mut self, slot: usize) -> Result<(), Refused> {
        if self.refuse_revoke.borrow().contains(&slot) {
            return Err(Refused);
        }
        Ok(())
    }

    fn bytes(&mut self, slot: usize) -> &mut [u8] {
        for (s, at, bytes) in self.dma.borrow_mut().drain(..) {
            self.frames[s][at..at + bytes.len()].copy_from_slice(&bytes);
        }
        &mut self.frames[slot]
    }
}

/// An asynchronous read in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    pub sector: u64,
    pub slot: usize,
    pub at: usize,
    pub len: usize,
    pub tag: u64,
}

pub struct DiskState {
    pub image: Vec<u8>,
    pub readonly: bool,
    /// Reads in flight, in submission order.
    pub reads: Vec<InFlight>,
    done: Vec<(u64, Result<(), IoError>)>,
    /// Sectors whose reads fail.
    pub bad: Vec<Range<u64>>,
    /// Asynchronous reads at once, at most.
    pub max_async: usize,
    pub stats: DiskStats,
    pub sync_writes: u64,
    dma: Dma,
    flag: &'static AtomicBool,
}

impl DiskState {
    fn is_bad(&self, sector: u64, len: usize) -> bool {
        let end = sector + (len / SECTOR_SIZE) as u64;
        self.bad.iter().any(|r| r.start < end && sector < r.end)
    }

    fn sectors(&self) -> u64 {
        self.image.len() as u64 / SECTOR_SIZE as u64
    }

    fn range(&self, sector: u64, len: usize) -> Result<Range<usize>, IoError> {
        if len == 0 || !len.is_multiple_of(SECTOR_SIZE) {
            return Err(IoError);
        }
        let start = usize::try_from(sector).map_err(|_| IoError)? * SECTOR_SIZE;
        let end = start.checked_add(len).ok_or(IoError)?;
        if end > self.image.len() {
            return Err(IoError);
        }
        Ok(start..end)
    }

    /// Completes read `n` of those in flight (its bytes land in the frame), or fails it.
    fn complete(&mut self, n: usize, ok: bool) {
        let r = self.reads.remove(n);
        let ok = ok && !self.is_bad(r.sector, r.len);
        if ok && let Ok(range) = self.range(r.sector, r.len) {
            let bytes = self.image[range].to_vec();
            self.dma.borrow_mut().push((r.slot, r.at, bytes));
        }
        self.done
            .push((r.tag, if ok { Ok(()) } else { Err(IoError) }));
        self.flag.store(true, Ordering::Relaxed);
    }
}

/// The disk the core owns.
pub struct RamDisk(Rc<RefCell<DiskState>>);

/// The test's view of the same disk.
#[derive(Clone)]
pub struct DiskHandle(pub Rc<RefCell<DiskState>>);

impl DiskHandle {
    /// Reads in flight.
    pub fn in_flight(&self) -> Vec<InFlight> {
        self.0.borrow().reads.clone()
    }

    /// Completes read `n` (in submission order) of those in flight.
    pub fn complete(&self, n: usize) {
        self.0.borrow_mut().complete(n, true);
    }

    /// Completes read `n` with an error.
    pub fn fail(&self, n: usize) {
        self.0.borrow_mut().complete(n, false);
    }

    /// Completes every read in flight, the last submitted first.
    pub fn complete_all_reversed(&self) {
        loop {
            let Some(n) = self.0.borrow().reads.len().checked_sub(1) else {
                return;
            };
            self.complete(n);
        }
    }

    pub fn stats(&self) -> DiskStats {
        self.0.borrow().stats
    }

    /// The bytes of file `path` in the image, as `fatfs` reads them.
    pub fn file(&self, path: &str) -> Option<Vec<u8>> {
        let image = self.0.borrow().image.clone();
        let part = image[(PART_START as usize * SECTOR_SIZE)..].to_vec();
        let fs = fatfs::FileSystem::new(Cursor::new(part), fatfs::FsOptions::new()).ok()?;
        let mut f = fs.root_dir().open_file(path).ok()?;
        let mut out = Vec::new();
        f.read_to_end(&mut out).ok()?;
        Some(out)
    }
}

impl DiskHandle {
    /// The disk once `f` has written what it keeps to be written at the end of a request
    /// (the server flushes after each one: `Files::flush_metadata`).
    pub fn synced(&self, f: &mut Files<Host>) -> &Self {
        f.flush_metadata().expect("flush");
        self
    }

    /// The 8.3 names in the image's root directory, as `fatfs` lists them.
    pub fn root_names(&self) -> Vec<String> {
        let image = self.0.borrow().image.clone();
        let part = image[(PART_START as usize * SECTOR_SIZE)..].to_vec();
        let fs = fatfs::FileSystem::new(Cursor::new(part), fatfs::FsOptions::new()).expect("fs");
        fs.root_dir()
            .iter()
            .filter_map(Result::ok)
            .map(|e| e.short_file_name())
            .collect()
    }
}

impl Device for RamDisk {
    fn sectors(&self) -> u64 {
        self.0.borrow().sectors()
    }

    fn readonly(&self) -> bool {
        self.0.borrow().readonly
    }

    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let mut s = self.0.borrow_mut();
        let range = s.range(sector, buf.len())?;
        s.stats.requests += 1;
        s.stats.sectors_read += (buf.len() / SECTOR_SIZE) as u64;
        if s.is_bad(sector, buf.len()) {
            return Err(IoError);
        }
        buf.copy_from_slice(&s.image[range]);
        Ok(())
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        let mut s = self.0.borrow_mut();
        if s.readonly {
            return Err(IoError);
        }
        let range = s.range(sector, buf.len())?;
        s.stats.requests += 1;
        s.stats.writes += 1;
        s.stats.sectors_written += (buf.len() / SECTOR_SIZE) as u64;
        s.sync_writes += 1;
        s.image[range].copy_from_slice(buf);
        Ok(())
    }

    fn max_async(&self) -> usize {
        self.0.borrow().max_async
    }

    unsafe fn submit_read(
        &mut self,
        sector: u64,
        slot: usize,
        at: usize,
        len: usize,
        tag: u64,
    ) -> Result<(), IoError> {
        let mut s = self.0.borrow_mut();
        s.range(sector, len)?;
        if s.reads.len() >= s.max_async || at + len > BLOCK_SIZE as usize {
            return Err(IoError);
        }
        s.stats.requests += 1;
        s.stats.async_reads += 1;
        s.stats.sectors_read += (len / SECTOR_SIZE) as u64;
        s.reads.push(InFlight {
            sector,
            slot,
            at,
            len,
            tag,
        });
        let n = s.reads.len() as u64;
        s.stats.max_in_flight = s.stats.max_in_flight.max(n);
        Ok(())
    }

    fn take_done(&mut self) -> Vec<(u64, Result<(), IoError>)> {
        let mut s = self.0.borrow_mut();
        s.flag.store(false, Ordering::Relaxed);
        core::mem::take(&mut s.done)
    }

    fn done_flag(&self) -> &'static AtomicBool {
        self.0.borrow().flag
    }

    /// The device finishes the oldest read (a synchronous request waits for room).
    fn wait_read(&mut self) -> bool {
        let mut s = self.0.borrow_mut();
        if !s.done.is_empty() {
            return true;
        }
        if s.reads.is_empty() {
            return false;
        }
        s.complete(0, true);
        true
    }

    fn quiesce(&mut self) {
        let mut s = self.0.borrow_mut();
        while !s.reads.is_empty() {
            s.complete(0, true);
        }
    }

    fn interrupt(&mut self) {}

    fn stats(&self) -> DiskStats {
        self.0.borrow().stats
    }
}

/// A disk image: an MBR and one FAT16 partition of [`PART_BYTES`] (512-byte clusters)
/// holding `files` (root directory names, or `dir/name`), and `fill` bytes of a file
/// `FILL.BIN` to leave little room.
pub fn image(files: &[(&str, &[u8])], fill: u64) -> Vec<u8> {
    image_of(files, fill, fatfs::FatType::Fat16, PART_BYTES)
}

/// Bytes of a FAT32 partition: 65,525 clusters of 512 bytes at least.
pub const PART32_BYTES: u64 = 34 << 20;

/// The same as [`image`] with a FAT32 partition of [`PART32_BYTES`] (512-byte clusters),
/// whose info sector gives the number of free clusters (as `mkfs.fat` and `fsck.fat` leave
/// it; `fatfs` writes "unknown").
pub fn image32(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut disk = image_of(files, 0, fatfs::FatType::Fat32, PART32_BYTES);
    let start = PART_START as usize * SECTOR_SIZE;
    let mut bpb = [0u8; SECTOR_SIZE];
    bpb.copy_from_slice(&disk[start..start + SECTOR_SIZE]);
    let sectors = (disk.len() / SECTOR_SIZE) as u64 - PART_START;
    let g = fatcheck::Geometry::parse(&bpb, PART_START, sectors).expect("a FAT volume");
    let free = fatcheck::fsck::free_clusters(&g, |s, out: &mut [u8; SECTOR_SIZE]| {
        let at = s as usize * SECTOR_SIZE;
        out.copy_from_slice(&disk[at..at + SECTOR_SIZE]);
        Ok::<(), ()>(())
    })
    .expect("the FAT");
    let at = g.info_sector as usize * SECTOR_SIZE + fatcheck::fsck::FSINFO_FREE;
    disk[at..at + 4].copy_from_slice(&free.to_le_bytes());
    disk
}

fn image_of(files: &[(&str, &[u8])], fill: u64, fat: fatfs::FatType, bytes: u64) -> Vec<u8> {
    let mut part = Cursor::new(std::vec![0u8; bytes as usize]);
    let options = fatfs::FormatVolumeOptions::new()
        .bytes_per_cluster(512)
        .fat_type(fat)
        .volume_label(*b"HOSTTEST   ");
    fatfs::format_volume(&mut part, options).expect("format");
    {
        let fs = fatfs::FileSystem::new(&mut part, fatfs::FsOptions::new()).expect("mount");
        let mut all: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(p, b)| (String::from(*p), b.to_vec()))
            .collect();
        if fill > 0 {
            all.push((String::from("FILL.BIN"), std::vec![0x55; fill as usize]));
        }
        for (path, bytes) in all {
            let root = fs.root_dir();
            let mut parts: Vec<&str> = path.split('/').collect();
            let name = parts.pop().expect("a name");
            let mut dir = root;
            for p in parts {
                dir = match dir.open_dir(p) {
                    Ok(d) => d,
                    Err(_) => dir.create_dir(p).expect("mkdir"),
                };
            }
            let mut f = dir.create_file(name).expect("create");
            f.truncate().expect("truncate");
            f.write_all(&bytes).expect("write");
            f.flush().expect("flush");
        }
        fs.unmount().expect("unmount");
    }
    let sectors = bytes / SECTOR_SIZE as u64;
    let mut disk = std::vec![0u8; PART_START as usize * SECTOR_SIZE];
    let entry = &mut disk[446..462];
    entry[4] = if fat == fatfs::FatType::Fat32 {
        0x0c
    } else {
        0x0e
    };
    entry[8..12].copy_from_slice(&(PART_START as u32).to_le_bytes());
    entry[12..16].copy_from_slice(&(sectors as u32).to_le_bytes());
    disk[510] = 0x55;
    disk[511] = 0xaa;
    disk.extend_from_slice(&part.into_inner());
    tidy(&mut disk);
    disk
}

/// `.` and `..` in the first slots of every directory, as `fatfs` 0.3 does not leave them
/// (`fatcheck::fsck::tidy_dot_entries`).
fn tidy(disk: &mut [u8]) {
    let start = PART_START as usize * SECTOR_SIZE;
    let mut bpb = [0u8; SECTOR_SIZE];
    bpb.copy_from_slice(&disk[start..start + SECTOR_SIZE]);
    let sectors = (disk.len() / SECTOR_SIZE) as u64 - PART_START;
    let g = fatcheck::Geometry::parse(&bpb, PART_START, sectors).expect("a FAT volume");
    fatcheck::fsck::tidy_dot_entries(&g, &mut disk[start..]);
}

/// A disk image whose files `FRAG1.BIN` and `FRAG2.BIN` (`one`, `two`) were written in
/// turns of `chunk` bytes: their clusters alternate on the disk, a run each chunk.
pub fn fragmented(one: &[u8], two: &[u8], chunk: usize) -> Vec<u8> {
    let mut disk = image(&[("FRAG1.BIN", b""), ("FRAG2.BIN", b"")], 0);
    let start = PART_START as usize * SECTOR_SIZE;
    let mut part = Cursor::new(disk.split_off(start));
    {
        let fs = fatfs::FileSystem::new(&mut part, fatfs::FsOptions::new()).expect("mount");
        {
            let root = fs.root_dir();
            let mut a = root.open_file("FRAG1.BIN").expect("open");
            let mut b = root.open_file("FRAG2.BIN").expect("open");
            for (x, y) in one.chunks(chunk).zip(two.chunks(chunk)) {
                a.write_all(x).expect("write");
                a.flush().expect("flush");
                b.write_all(y).expect("write");
                b.flush().expect("flush");
            }
        }
        fs.unmount().expect("unmount");
    }
    disk.extend_from_slice(&part.into_inner());
    tidy(&mut disk);
    disk
}

/// The core over a RAM disk holding `image`, with a cache of `blocks` blocks.
pub fn mount(image: Vec<u8>, blocks: usize, readonly: bool) -> (Files<Host>, DiskHandle) {
    let dma: Dma = Rc::new(RefCell::new(Vec::new()));
    let state = Rc::new(RefCell::new(DiskState {
        image,
        readonly,
        reads: Vec::new(),
        done: Vec::new(),
        bad: Vec::new(),
        max_async: 4,
        stats: DiskStats::default(),
        sync_writes: 0,
        dma: dma.clone(),
        flag: Box::leak(Box::new(AtomicBool::new(false))),
    }));
    let frames = HeapFrames {
        frames: Vec::new(),
        dma,
        refuse_revoke: Rc::new(RefCell::new(Vec::new())),
    };
    let dev = BlockDev::new(RamDisk(state.clone()));
    let files = Files::mount(dev, Cache::new(frames, blocks)).expect("mount");
    (files, DiskHandle(state))
}

/// `len` bytes that differ from block to block and from file to file: byte `i` of file
/// `seed`.
pub fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[(i >> 9) & 3] ^ seed)
        .collect()
}

impl DiskHandle {
    /// The `fatfs` view of the image's partition, given to `f`.
    pub fn with_fatfs<T>(&self, f: impl FnOnce(&fatfs::FileSystem<Cursor<Vec<u8>>>) -> T) -> T {
        let image = self.0.borrow().image.clone();
        let part = image[(PART_START as usize * SECTOR_SIZE)..].to_vec();
        let fs = fatfs::FileSystem::new(Cursor::new(part), fatfs::FsOptions::new()).expect("fs");
        f(&fs)
    }

    /// (long name, 8.3 name, is a directory) of every entry of directory `dir` (`""`: the
    /// root), as `fatfs` lists them, `.` and `..` left out; sorted.
    pub fn list(&self, dir: &str) -> Vec<(String, String, bool)> {
        self.with_fatfs(|fs| {
            let root = fs.root_dir();
            let d = if dir.is_empty() {
                root
            } else {
                root.open_dir(dir).expect("a directory")
            };
            let mut all: Vec<(String, String, bool)> = d
                .iter()
                .map(|e| e.expect("an entry"))
                .filter(|e| e.file_name() != "." && e.file_name() != "..")
                .map(|e| (e.file_name(), e.short_file_name(), e.is_dir()))
                .collect();
            all.sort();
            all
        })
    }
}

impl DiskHandle {
    /// What `fatcheck::fsck` finds wrong with the volume (empty: nothing), and, when the
    /// host has `fsck.fat` (Debian's `dosfstools`), what it says in its read-only mode
    /// (`-n`) if it finds anything.
    pub fn fsck(&self) -> Vec<String> {
        let image = self.0.borrow().image.clone();
        let start = PART_START as usize * SECTOR_SIZE;
        let mut bpb = [0u8; SECTOR_SIZE];
        bpb.copy_from_slice(&image[start..start + SECTOR_SIZE]);
        let sectors = (image.len() / SECTOR_SIZE) as u64 - PART_START;
        let g = fatcheck::Geometry::parse(&bpb, PART_START, sectors).expect("a FAT volume");
        let mut problems = fatcheck::fsck::check(&g, |s, out: &mut [u8; SECTOR_SIZE]| {
            let at = s as usize * SECTOR_SIZE;
            out.copy_from_slice(image.get(at..at + SECTOR_SIZE).ok_or(())?);
            Ok::<(), ()>(())
        });
        problems.extend(fsck_fat(&image[start..]));
        problems
    }
}

/// Where the host's `fsck.fat` is, if it has one.
fn fsck_fat_tool() -> Option<&'static str> {
    ["/usr/sbin/fsck.fat", "/sbin/fsck.fat"]
        .into_iter()
        .find(|t| std::path::Path::new(t).exists())
}

/// Whether the host has `fsck.fat` (`dosfstools`).
pub fn has_fsck_fat() -> bool {
    fsck_fat_tool().is_some()
}

/// `fsck.fat -n` on a copy of the partition `part`, if the host has it: its output when it
/// finds something to repair.
fn fsck_fat(part: &[u8]) -> Option<String> {
    use std::process::Command;
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let tool = fsck_fat_tool()?;
    let n = N.fetch_add(1, Ordering::Relaxed);
    let file = std::env::temp_dir().join(std::format!("fsck-{}-{n}.img", std::process::id()));
    std::fs::write(&file, part).ok()?;
    let out = Command::new(tool).arg("-n").arg(&file).output().ok();
    let _ = std::fs::remove_file(&file);
    let out = out?;
    if out.status.success() {
        return None;
    }
    Some(std::format!(
        "fsck.fat -n: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}
