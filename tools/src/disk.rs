//! The disk image (`target/images/disk.img`): an MBR with one FAT partition holding the files
//! of the repository's `disk/` folder, a generated 16 MiB test file and the user programs.
//! The same code reads files back out of an image after a run (what the guest wrote).
//!
//! ```text
//!   sector 0          MBR: one partition entry (type 0x0E FAT16 LBA or 0x0C FAT32 LBA)
//!   sector 1..2047    unused (1 MiB alignment, as partitioning tools do)
//!   sector 2048..     the FAT volume (formatted by the `fatfs` crate, long file names)
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Size of the whole image.
pub const DISK_BYTES: u64 = 64 << 20;
const SECTOR: u64 = 512;
/// The partition's first sector.
const PARTITION_START: u64 = 2048;
/// The generated test file: every 8-byte little-endian word holds its own byte offset.
pub const BIG_FILE: &str = "big.dat";
pub const BIG_FILE_BYTES: u64 = 16 << 20;
/// Where the user programs go on the disk.
pub const BIN_DIR: &str = "bin";

/// A file to put on the disk: its path in the volume (`/`-separated) and its bytes.
pub struct DiskFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

/// The bytes of [`BIG_FILE`]: word `i` (at offset `8 * i`) is `8 * i`.
pub fn big_file_bytes(len: u64) -> Vec<u8> {
    (0..len / 8).flat_map(|i| (i * 8).to_le_bytes()).collect()
}

/// Every file under `dir` (recursively), with paths relative to it; sorted, so images are
/// the same from build to build.
pub fn files_of_folder(dir: &Path) -> io::Result<Vec<DiskFile>> {
    let mut out = Vec::new();
    collect(dir, "", &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn collect(dir: &Path, prefix: &str, out: &mut Vec<DiskFile>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if entry.file_type()?.is_dir() {
            collect(&entry.path(), &path, out)?;
        } else {
            out.push(DiskFile {
                path,
                bytes: fs::read(entry.path())?,
            });
        }
    }
    Ok(())
}

/// Writes a new image at `image` holding `files` (directories are made as needed).
pub fn write_image(image: &Path, files: &[DiskFile]) -> io::Result<()> {
    write_image_with(image, files, 4096, None)
}

/// [`write_image`] with `cluster` bytes per cluster and, if given, that FAT type.
fn write_image_with(
    image: &Path,
    files: &[DiskFile],
    cluster: u32,
    fat: Option<fatfs::FatType>,
) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(image)?;
    file.set_len(DISK_BYTES)?;
    let sectors = DISK_BYTES / SECTOR - PARTITION_START;
    let fat_type = {
        let mut part = Partition::new(&mut file, PARTITION_START * SECTOR, sectors * SECTOR);
        // 4 KiB clusters: a cluster is a page.
        let mut options = fatfs::FormatVolumeOptions::new()
            .bytes_per_cluster(cluster)
            .volume_label(*b"MICROKERNEL");
        if let Some(fat) = fat {
            options = options.fat_type(fat);
        }
        fatfs::format_volume(&mut part, options)?;
        let fs = fatfs::FileSystem::new(&mut part, fatfs::FsOptions::new())?;
        for f in files {
            let root = fs.root_dir();
            let mut parts: Vec<&str> = f.path.split('/').filter(|p| !p.is_empty()).collect();
            let name = parts.pop().ok_or_else(|| invalid("empty path"))?;
            let mut dir = root;
            for part in parts {
                dir = match dir.open_dir(part) {
                    Ok(d) => d,
                    Err(_) => dir.create_dir(part)?,
                };
            }
            let mut out = dir.create_file(name)?;
            out.truncate()?;
            out.write_all(&f.bytes)?;
            out.flush()?;
        }
        let fat_type = fs.fat_type();
        fs.unmount()?;
        fat_type
    };
    let kind = match fat_type {
        fatfs::FatType::Fat16 => 0x0e,
        fatfs::FatType::Fat32 => 0x0c,
        fatfs::FatType::Fat12 => return Err(invalid("FAT12 volume: too small for the guest")),
    };
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&mbr(kind, PARTITION_START, sectors))?;
    file.flush()?;
    drop(file);
    tidy(image)
}

/// The image's partition: its geometry and its bytes.
fn partition(image: &Path) -> io::Result<(fatcheck::Geometry, Vec<u8>)> {
    let mut file = File::open(image)?;
    let (start, len) = first_partition(&mut file)?;
    let mut part = vec![0u8; (len * SECTOR) as usize];
    file.seek(SeekFrom::Start(start * SECTOR))?;
    file.read_exact(&mut part)?;
    let mut bpb = [0u8; 512];
    bpb.copy_from_slice(&part[..512]);
    let g = fatcheck::Geometry::parse(&bpb, start, len).map_err(invalid)?;
    Ok((g, part))
}

/// Puts `.` and `..` first in every directory of the image at `image`, where the `fatfs`
/// crate 0.3 wrote a long-name entry before each (`fatcheck::fsck::tidy_dot_entries`):
/// `fsck.fat` would repair that, and the check after each run would see it.
pub fn tidy(image: &Path) -> io::Result<()> {
    let (g, old) = partition(image)?;
    let mut new = old.clone();
    fatcheck::fsck::tidy_dot_entries(&g, &mut new);
    let mut file = OpenOptions::new().write(true).open(image)?;
    for (i, (a, b)) in old.chunks(512).zip(new.chunks(512)).enumerate() {
        if a != b {
            file.seek(SeekFrom::Start((g.part_start + i as u64) * SECTOR))?;
            file.write_all(b)?;
        }
    }
    file.flush()
}

/// What is wrong with the FAT volume of the image at `image` (empty: nothing), as
/// `fatcheck::fsck` finds it; and, when the host has `fsck.fat` (Debian's `dosfstools`),
/// what `fsck.fat -n` says if it finds anything to repair.
pub fn fsck(image: &Path) -> io::Result<Vec<String>> {
    let (g, part) = partition(image)?;
    let base = g.part_start;
    let mut problems = fatcheck::fsck::check(&g, |s, out: &mut [u8; 512]| {
        let at = ((s - base) * SECTOR) as usize;
        out.copy_from_slice(part.get(at..at + 512).ok_or(())?);
        Ok::<(), ()>(())
    });
    let tool = ["/usr/sbin/fsck.fat", "/sbin/fsck.fat"]
        .into_iter()
        .find(|t| Path::new(t).exists());
    if let Some(tool) = tool {
        let copy = image.with_extension("fsck.img");
        fs::write(&copy, &part)?;
        let out = std::process::Command::new(tool)
            .arg("-n")
            .arg(&copy)
            .output();
        let _ = fs::remove_file(&copy);
        let out = out?;
        if !out.status.success() {
            problems.push(format!(
                "fsck.fat -n: {}{}",
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Ok(problems)
}

/// The bytes of file `path` (`/`-separated) in the image at `image`.
pub fn read_file(image: &Path, path: &str) -> io::Result<Vec<u8>> {
    let mut file = File::options().read(true).write(true).open(image)?;
    let (start, sectors) = first_partition(&mut file)?;
    let mut part = Partition::new(&mut file, start * SECTOR, sectors * SECTOR);
    let fs = fatfs::FileSystem::new(&mut part, fatfs::FsOptions::new())?;
    let mut bytes = Vec::new();
    fs.root_dir()
        .open_file(path.trim_start_matches('/'))?
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A master boot record with one partition of `kind` at `start` for `sectors` sectors.
fn mbr(kind: u8, start: u64, sectors: u64) -> [u8; 512] {
    let mut mbr = [0u8; 512];
    let entry = &mut mbr[446..462];
    entry[0] = 0x00; // not bootable
    entry[1..4].copy_from_slice(&[0xfe, 0xff, 0xff]); // CHS: use the LBA fields
    entry[4] = kind;
    entry[5..8].copy_from_slice(&[0xfe, 0xff, 0xff]);
    entry[8..12].copy_from_slice(&(start as u32).to_le_bytes());
    entry[12..16].copy_from_slice(&(sectors as u32).to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    mbr
}

/// The first partition's start sector and length, from the MBR.
fn first_partition(file: &mut File) -> io::Result<(u64, u64)> {
    let mut mbr = [0u8; 512];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut mbr)?;
    if mbr[510..] != [0x55, 0xaa] {
        return Err(invalid("no MBR signature"));
    }
    let word = |at: usize| {
        u64::from(u32::from_le_bytes([
            mbr[at],
            mbr[at + 1],
            mbr[at + 2],
            mbr[at + 3],
        ]))
    };
    Ok((word(446 + 8), word(446 + 12)))
}

fn invalid(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

/// A window `[start, start + len)` of a file, as a stream of its own (the FAT volume inside
/// the partitioned image).
struct Partition<'a> {
    file: &'a mut File,
    start: u64,
    len: u64,
    pos: u64,
}

impl<'a> Partition<'a> {
    fn new(file: &'a mut File, start: u64, len: u64) -> Self {
        Self {
            file,
            start,
            len,
            pos: 0,
        }
    }

    /// How many of `want` bytes fit before the end of the window.
    fn clamp(&self, want: usize) -> usize {
        let left = self.len.saturating_sub(self.pos);
        usize::try_from(left).map_or(want, |left| want.min(left))
    }
}

impl Read for Partition<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.clamp(buf.len());
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = self.file.read(&mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for Partition<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.clamp(buf.len());
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "past the partition's end",
            ));
        }
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = self.file.write(&buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Seek for Partition<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match pos {
            Some(p) if p <= self.len => {
                self.pos = p;
                Ok(p)
            }
            _ => Err(invalid("seek outside the partition")),
        }
    }
}

/// How many live long-name entries of the root directory belong to no 8.3 entry (the
/// one right after their run, with their checksum); `None` when the volume does not parse.
pub fn orphan_long_names(image: &Path) -> io::Result<Option<usize>> {
    let mut file = File::open(image)?;
    let (start, len) = first_partition(&mut file)?;
    let mut bpb = [0u8; 512];
    file.seek(SeekFrom::Start(start * SECTOR))?;
    file.read_exact(&mut bpb)?;
    let Ok(g) = fatcheck::Geometry::parse(&bpb, start, len) else {
        return Ok(None);
    };
    if g.fat_type != fatcheck::FatType::Fat16 {
        return Ok(None);
    }
    let mut root = vec![0u8; (g.root_sectors * SECTOR) as usize];
    file.seek(SeekFrom::Start(g.root_start * SECTOR))?;
    file.read_exact(&mut root)?;
    let (mut orphans, mut pending) = (0, Vec::new());
    for e in root.chunks_exact(32) {
        match (e[0], e[11]) {
            (0, _) => break,
            (0xe5, _) => {}
            (_, 0x0f) => {
                pending.push(e[13]);
                continue;
            }
            _ => {
                let mut short = [0u8; 11];
                short.copy_from_slice(&e[..11]);
                let sum = fatcheck::lfn_checksum(&short);
                orphans += pending.iter().filter(|&&s| s != sum).count();
                pending.clear();
                continue;
            }
        }
        orphans += pending.len();
        pending.clear();
    }
    Ok(Some(orphans + pending.len()))
}

/// Ways to prepare a scenario's disk copy before it boots (`Scenario::disk_prep`): damage
/// as a broken disk or a hostile one would have it, or a disk nearly full.
pub mod prep {
    use super::*;
    use fatcheck::{Geometry, SECTOR};

    fn sector(file: &mut File, s: u64) -> io::Result<[u8; SECTOR]> {
        let mut buf = [0u8; SECTOR];
        file.seek(SeekFrom::Start(s * SECTOR as u64))?;
        file.read_exact(&mut buf)?;
        Ok(buf)
    }

    fn put_sector(file: &mut File, s: u64, buf: &[u8; SECTOR]) -> io::Result<()> {
        file.seek(SeekFrom::Start(s * SECTOR as u64))?;
        file.write_all(buf)
    }

    /// The image's volume geometry, as the file server checks it.
    fn geometry(file: &mut File) -> io::Result<Geometry> {
        let (start, len) = first_partition(file)?;
        Geometry::parse(&sector(file, start)?, start, len).map_err(invalid)
    }

    /// Sets FAT entry `c` to `value` in every FAT (FAT16 images).
    fn set_fat(file: &mut File, g: &Geometry, c: u32, value: u16) -> io::Result<()> {
        let (s, at) = g.fat_entry_at(c);
        for copy in 0..g.fats {
            let s = s + copy * g.fat_sectors;
            let mut buf = sector(file, s)?;
            buf[at..at + 2].copy_from_slice(&value.to_le_bytes());
            put_sector(file, s, &buf)?;
        }
        Ok(())
    }

    /// Where the root directory's 8.3 entry `name` (11 bytes, as on the disk) is: (sector,
    /// byte offset) (FAT16 images).
    fn root_entry(file: &mut File, g: &Geometry, name: &[u8; 11]) -> io::Result<(u64, usize)> {
        for s in g.root_start..g.root_start + g.root_sectors {
            let buf = sector(file, s)?;
            for at in (0..SECTOR).step_by(32) {
                if buf[at..at + 11] == name[..] && buf[at + 11] != 0x0f {
                    return Ok((s, at));
                }
            }
        }
        Err(invalid("no such entry in the root directory"))
    }

    /// The first cluster of the root directory's entry `name` (FAT16 images).
    pub fn root_cluster_of(file: &mut File, g: &Geometry, name: &[u8; 11]) -> io::Result<u32> {
        let (s, at) = root_entry(file, g, name)?;
        let entry = sector(file, s)?;
        Ok(u32::from(u16::from_le_bytes([
            entry[at + 26],
            entry[at + 27],
        ])))
    }

    /// Sectors per cluster 0 in the boot sector (the crate divided by it at mount).
    pub fn sectors_per_cluster_zero(image: &Path) -> io::Result<()> {
        let mut file = File::options().read(true).write(true).open(image)?;
        let (start, _) = first_partition(&mut file)?;
        let mut bpb = sector(&mut file, start)?;
        bpb[13] = 0;
        put_sector(&mut file, start, &bpb)
    }

    /// `bin`'s first cluster chained to itself, and its unused entries marked deleted
    /// instead of "end of directory", so that a walk of the directory only ends where the
    /// chain does: never (the crate then looked up a missing name forever).
    pub fn bin_chained_to_itself(image: &Path) -> io::Result<()> {
        let mut file = File::options().read(true).write(true).open(image)?;
        let g = geometry(&mut file)?;
        let c = root_cluster_of(&mut file, &g, b"BIN        ")?;
        let first = g
            .cluster_sector(c)
            .ok_or_else(|| invalid("bin's cluster"))?;
        for s in first..first + g.sectors_per_cluster {
            let mut buf = sector(&mut file, s)?;
            for e in (0..SECTOR).step_by(32) {
                if buf[e] == 0 {
                    buf[e] = 0xe5;
                }
            }
            put_sector(&mut file, s, &buf)?;
        }
        set_fat(&mut file, &g, c, c as u16)
    }

    /// Every FAT entry past the two reserved ones overwritten with pseudo-random values.
    pub fn garbage_fat(image: &Path) -> io::Result<()> {
        let mut file = File::options().read(true).write(true).open(image)?;
        let g = geometry(&mut file)?;
        let mut x: u32 = 0x2545_f491;
        for copy in 0..g.fats {
            for i in 0..g.fat_sectors {
                let s = g.fat_start + copy * g.fat_sectors + i;
                let mut buf = sector(&mut file, s)?;
                let from = if i == 0 { 4 } else { 0 };
                for b in &mut buf[from..] {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    *b = x as u8;
                }
                put_sector(&mut file, s, &buf)?;
            }
        }
        Ok(())
    }

    /// Adds file `name` holding `bytes` with its clusters scattered: pieces of 1, 3, 16, 2,
    /// 5, 1, 7 and 17 clusters (in turn), each followed by a cluster of another file that
    /// is then removed, so that no two pieces touch and the holes between them are free
    /// (where the guest's next clusters may go).
    pub fn fragmented(image: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
        const PIECES: [usize; 8] = [1, 3, 16, 2, 5, 1, 7, 17];
        let mut file = File::options().read(true).write(true).open(image)?;
        let (start, sectors) = first_partition(&mut file)?;
        let mut part = Partition::new(&mut file, start * SECTOR as u64, sectors * SECTOR as u64);
        let fs = fatfs::FileSystem::new(&mut part, fatfs::FsOptions::new())?;
        let cluster = fs.stats()?.cluster_size() as usize;
        let root = fs.root_dir();
        let mut out = root.create_file(name)?;
        out.truncate()?;
        let mut gap = root.create_file("GAP.TMP")?;
        gap.truncate()?;
        let filler = vec![0x99u8; cluster];
        let mut done = 0;
        for piece in PIECES.iter().cycle() {
            if done >= bytes.len() {
                break;
            }
            let n = (piece * cluster).min(bytes.len() - done);
            out.write_all(&bytes[done..done + n])?;
            out.flush()?;
            done += n;
            gap.write_all(&filler)?;
            gap.flush()?;
        }
        drop(out);
        drop(gap);
        root.remove("GAP.TMP")?;
        drop(root);
        fs.unmount()
    }

    /// Adds the root file `name` (an 8.3 name: `NAME.EXT`) holding `bytes`, and leaves a
    /// QEMU `blkdebug` configuration beside the image (`<image>.blkdebug`, which the boot
    /// attaches the disk through) that fails, once, with `EIO`, the first read of the disk
    /// sector holding the file's byte `offset`.
    pub fn add_with_read_error(
        image: &Path,
        name: &str,
        bytes: &[u8],
        offset: u64,
    ) -> io::Result<()> {
        {
            let mut file = File::options().read(true).write(true).open(image)?;
            let (start, sectors) = first_partition(&mut file)?;
            let mut part =
                Partition::new(&mut file, start * SECTOR as u64, sectors * SECTOR as u64);
            let fs = fatfs::FileSystem::new(&mut part, fatfs::FsOptions::new())?;
            let mut out = fs.root_dir().create_file(name)?;
            out.truncate()?;
            out.write_all(bytes)?;
            out.flush()?;
            drop(out);
            fs.unmount()?;
        }
        let mut file = File::open(image)?;
        let g = geometry(&mut file)?;
        let (base, ext) = name.split_once('.').unwrap_or((name, ""));
        let mut short = [b' '; 11];
        short[..base.len().min(8)].copy_from_slice(&base.as_bytes()[..base.len().min(8)]);
        short[8..8 + ext.len().min(3)].copy_from_slice(&ext.as_bytes()[..ext.len().min(3)]);
        let mut c = root_cluster_of(&mut file, &g, &short)?;
        let cluster_bytes = g.sectors_per_cluster * SECTOR as u64;
        for _ in 0..offset / cluster_bytes {
            let (s, at) = g.fat_entry_at(c);
            let buf = sector(&mut file, s)?;
            c = u32::from(u16::from_le_bytes([buf[at], buf[at + 1]]));
        }
        let s = g
            .cluster_sector(c)
            .ok_or_else(|| invalid("the file's cluster"))?
            + (offset % cluster_bytes) / SECTOR as u64;
        std::fs::write(
            image.with_extension("blkdebug"),
            format!(
                "[inject-error]\nevent = \"read_aio\"\nerrno = \"5\"\nsector = \"{s}\"\nonce = \"on\"\n"
            ),
        )
    }

    /// Makes the image a FAT32 volume (512-byte clusters) holding the same files, whose
    /// info sector gives the number of free clusters, as `mkfs.fat` leaves it (`fatfs`
    /// writes "unknown").
    pub fn fat32(image: &Path) -> io::Result<()> {
        let mut files = Vec::new();
        {
            let mut file = File::open(image)?;
            let (start, sectors) = first_partition(&mut file)?;
            let mut part =
                Partition::new(&mut file, start * SECTOR as u64, sectors * SECTOR as u64);
            let fs = fatfs::FileSystem::new(&mut part, fatfs::FsOptions::new())?;
            collect_volume(&fs.root_dir(), "", &mut files)?;
        }
        write_image_with(image, &files, 512, Some(fatfs::FatType::Fat32))?;
        let (g, part) = partition(image)?;
        let base = g.part_start;
        let free = fatcheck::fsck::free_clusters(&g, |s, out: &mut [u8; SECTOR]| {
            let at = ((s - base) * SECTOR as u64) as usize;
            out.copy_from_slice(part.get(at..at + SECTOR).ok_or(())?);
            Ok::<(), ()>(())
        })
        .map_err(|()| invalid("cannot count free clusters"))?;
        let mut file = File::options().write(true).open(image)?;
        file.seek(SeekFrom::Start(
            g.info_sector * SECTOR as u64 + fatcheck::fsck::FSINFO_FREE as u64,
        ))?;
        file.write_all(&free.to_le_bytes())
    }

    /// Every file of directory `dir` (recursively), with paths under `prefix`.
    fn collect_volume<T: fatfs::ReadWriteSeek>(
        dir: &fatfs::Dir<'_, T>,
        prefix: &str,
        out: &mut Vec<DiskFile>,
    ) -> io::Result<()> {
        for e in dir.iter() {
            let e = e?;
            let name = e.file_name();
            if name == "." || name == ".." {
                continue;
            }
            let path = format!("{prefix}{name}");
            if e.is_dir() {
                collect_volume(&e.to_dir(), &format!("{path}/"), out)?;
            } else {
                let mut bytes = Vec::new();
                e.to_file().read_to_end(&mut bytes)?;
                out.push(DiskFile { path, bytes });
            }
        }
        Ok(())
    }

    /// Adds `files` to the image and then a filler, `FILL.DAT`, that leaves `free` bytes
    /// (rounded down to clusters) of the volume free.
    pub fn add_and_fill(image: &Path, files: &[(&str, &[u8])], free: u64) -> io::Result<()> {
        let mut file = File::options().read(true).write(true).open(image)?;
        let (start, sectors) = first_partition(&mut file)?;
        let mut part = Partition::new(&mut file, start * SECTOR as u64, sectors * SECTOR as u64);
        let fs = fatfs::FileSystem::new(&mut part, fatfs::FsOptions::new())?;
        for (path, bytes) in files {
            let mut out = fs.root_dir().create_file(path)?;
            out.truncate()?;
            out.write_all(bytes)?;
        }
        let stats = fs.stats()?;
        let cluster = u64::from(stats.cluster_size());
        let have = u64::from(stats.free_clusters()) * cluster;
        let fill = have.saturating_sub(free.next_multiple_of(cluster));
        let mut out = fs.root_dir().create_file("FILL.DAT")?;
        out.truncate()?;
        let chunk = vec![0u8; 1 << 20];
        let mut left = fill;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            out.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        out.flush()?;
        drop(out);
        fs.unmount()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_file_pattern() {
        let b = big_file_bytes(64);
        assert_eq!(b.len(), 64);
        assert_eq!(&b[8..16], &8u64.to_le_bytes());
        assert_eq!(&b[56..64], &56u64.to_le_bytes());
    }

    /// Each preparation does to an image what it says, as the file server's checks see it.
    #[test]
    fn disk_preparations() {
        use fatcheck::{ChainError, Geometry};
        let dir = std::env::temp_dir().join(format!("disk-prep-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let image = dir.join("disk.img");
        let files = [
            DiskFile {
                path: "hello.txt".into(),
                bytes: b"hello\n".to_vec(),
            },
            DiskFile {
                path: "bin/prog".into(),
                bytes: vec![1; 10_000],
            },
        ];
        write_image(&image, &files).unwrap();
        // The image needs no repair (`.` and `..` tidied), as FAT32 too.
        assert_eq!(fsck(&image).unwrap(), Vec::<String>::new());
        let fat32 = dir.join("fat32.img");
        fs::copy(&image, &fat32).unwrap();
        prep::fat32(&fat32).unwrap();
        tidy(&fat32).unwrap();
        assert_eq!(fsck(&fat32).unwrap(), Vec::<String>::new());
        assert_eq!(read_file(&fat32, "bin/prog").unwrap(), vec![1; 10_000]);
        let geometry = |img: &Path| {
            let mut f = File::open(img).unwrap();
            let (start, len) = first_partition(&mut f).unwrap();
            let mut bpb = [0u8; 512];
            f.seek(SeekFrom::Start(start * SECTOR)).unwrap();
            f.read_exact(&mut bpb).unwrap();
            Geometry::parse(&bpb, start, len)
        };
        let read = |img: &Path, s: u64, out: &mut [u8; 512]| -> Result<(), ()> {
            let mut f = File::open(img).map_err(|_| ())?;
            f.seek(SeekFrom::Start(s * SECTOR)).map_err(|_| ())?;
            f.read_exact(out).map_err(|_| ())
        };
        let copy = |name: &str| {
            let c = dir.join(name);
            fs::copy(&image, &c).unwrap();
            c
        };
        let g = geometry(&image).unwrap();

        let bad = copy("spc0.img");
        prep::sectors_per_cluster_zero(&bad).unwrap();
        assert!(geometry(&bad).unwrap_err().contains("sectors per cluster"));

        let looped = copy("loop.img");
        prep::bin_chained_to_itself(&looped).unwrap();
        let bin =
            prep::root_cluster_of(&mut File::open(&looped).unwrap(), &g, b"BIN        ").unwrap();
        let walk = g.walk_chain(bin, u64::MAX, |s, out| read(&looped, s, out), |_| {});
        assert_eq!(walk, Err(ChainError::TooLong(bin)));
        assert_eq!(read_file(&looped, "hello.txt").unwrap(), b"hello\n");

        let garbage = copy("garbage.img");
        prep::garbage_fat(&garbage).unwrap();
        let whole = (2..12).filter(|&c| {
            g.walk_chain(c, u64::MAX, |s, out| read(&garbage, s, out), |_| {})
                .is_ok()
        });
        assert_eq!(whole.count(), 0, "a garbage FAT has no whole chain");

        assert_eq!(orphan_long_names(&image).unwrap(), Some(0));
        assert_eq!(orphan_long_names(&bad).unwrap(), None);

        let full = copy("full.img");
        prep::add_and_fill(&full, &[("a-long-name.txt", b"data")], 128 << 10).unwrap();
        assert_eq!(read_file(&full, "a-long-name.txt").unwrap(), b"data");
        assert_eq!(orphan_long_names(&full).unwrap(), Some(0));
        {
            // Delete the long name's 8.3 entry only, as the crate's delete did.
            let mut f = File::options().read(true).write(true).open(&full).unwrap();
            let g = geometry(&full).unwrap();
            let mut root = vec![0u8; (g.root_sectors * SECTOR) as usize];
            f.seek(SeekFrom::Start(g.root_start * SECTOR)).unwrap();
            f.read_exact(&mut root).unwrap();
            let at = root
                .chunks_exact(32)
                .position(|e| e[..6] == *b"A-LONG" && e[11] != 0x0f)
                .unwrap()
                * 32;
            f.seek(SeekFrom::Start(g.root_start * SECTOR + at as u64))
                .unwrap();
            f.write_all(&[0xe5]).unwrap();
        }
        assert_eq!(orphan_long_names(&full).unwrap(), Some(2));
        let mut f = File::options().read(true).write(true).open(&full).unwrap();
        let (start, sectors) = first_partition(&mut f).unwrap();
        let mut part = Partition::new(&mut f, start * SECTOR, sectors * SECTOR);
        let stats = fatfs::FileSystem::new(&mut part, fatfs::FsOptions::new())
            .unwrap()
            .stats()
            .unwrap();
        assert_eq!(
            u64::from(stats.free_clusters()) * u64::from(stats.cluster_size()),
            128 << 10
        );
        drop(f);

        // A fragmented file: its bytes, and a chain of many runs.
        let frag = copy("frag.img");
        let bytes: Vec<u8> = (0..300_000u32)
            .map(|i| ((i * 13) ^ (i >> 9)) as u8)
            .collect();
        prep::fragmented(&frag, "FRAG.DAT", &bytes).unwrap();
        assert_eq!(read_file(&frag, "FRAG.DAT").unwrap(), bytes);
        let c = prep::root_cluster_of(&mut File::open(&frag).unwrap(), &g, b"FRAG    DAT").unwrap();
        let mut chain = Vec::new();
        g.walk_chain(c, u64::MAX, |s, out| read(&frag, s, out), |c| chain.push(c))
            .unwrap();
        let runs = 1 + chain.windows(2).filter(|w| w[1] != w[0] + 1).count();
        assert_eq!(chain.len(), 300_000usize.div_ceil(4096));
        assert!(runs >= 10, "{runs} runs");
        assert_eq!(orphan_long_names(&frag).unwrap(), Some(0));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn image_round_trip() {
        let dir = std::env::temp_dir().join(format!("disk-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let image = dir.join("disk.img");
        let big = big_file_bytes(1 << 20);
        let files = [
            DiskFile {
                path: "hello.txt".into(),
                bytes: b"hello\n".to_vec(),
            },
            DiskFile {
                path: "a long file name.text".into(),
                bytes: vec![7; 5000],
            },
            DiskFile {
                path: "bin/prog".into(),
                bytes: big.clone(),
            },
        ];
        write_image(&image, &files).unwrap();
        assert_eq!(fs::metadata(&image).unwrap().len(), DISK_BYTES);
        let raw = fs::read(&image).unwrap();
        assert_eq!(raw[510..512], [0x55, 0xaa]);
        assert!(matches!(raw[446 + 4], 0x0e | 0x0c));
        assert_eq!(read_file(&image, "hello.txt").unwrap(), b"hello\n");
        assert_eq!(
            read_file(&image, "/a long file name.text").unwrap(),
            vec![7; 5000]
        );
        assert_eq!(read_file(&image, "bin/prog").unwrap(), big);
        assert!(read_file(&image, "missing").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
