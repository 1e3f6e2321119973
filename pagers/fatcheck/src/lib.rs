//! What the file server checks before it lets `embedded-sdmmc` near a FAT volume, free of
//! system calls so that it is tested on the host.
//!
//! The crate trusts the disk: a boot sector with 0 sectors per cluster divides by zero at
//! mount, a directory whose cluster chain loops is walked forever, a chain through a free or
//! out-of-range cluster reads (and writes) sectors that belong to something else. The file
//! server therefore
//! - parses the partition table and the boot sector itself ([`Geometry::parse`]) and mounts
//!   nothing it does not accept;
//! - walks the cluster chain of every directory before the crate looks into it and of every
//!   file before it opens it ([`Geometry::walk_chain`]): bounded by the number of clusters
//!   in the volume, every link in range, ending in an end-of-chain mark;
//! - finds the long-name entries of a directory entry itself ([`lfn_checksum`],
//!   [`is_lfn_of`]) to remove them with it;
//! - reads a path one component at a time ([`Component`]);
//! - finds where a file's bytes lie on the disk itself ([`ChainMap`]), so that a page-cache
//!   block is read and written as one request per run of consecutive clusters.
//!
//! [`fsck`] checks a whole volume as `fsck.fat -n` does, for tests on the host.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod fsck;

use alloc::vec::Vec;

/// Bytes per sector: the only size the crate (and this server) handles.
pub const SECTOR: usize = 512;
/// Bytes of a directory entry.
pub const DIR_ENTRY: usize = 32;
/// The most entries a FAT directory may hold (the specification's limit: 2 MiB of entries).
pub const MAX_DIR_ENTRIES: u64 = 65_536;
/// The most components a path may have: a path is at most 255 bytes (`proto`'s
/// `PATH_MAX`), so `a/b/...` has at most 128; this bounds the walk whatever the caller sends.
pub const MAX_DEPTH: usize = 128;

/// FAT16 or FAT32 (the crate reads no FAT12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatType {
    Fat16,
    Fat32,
}

/// Where everything of a FAT volume is, in absolute disk sectors, after every check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub fat_type: FatType,
    /// The partition: first sector and length.
    pub part_start: u64,
    pub part_sectors: u64,
    pub sectors_per_cluster: u64,
    /// The first FAT, its length in sectors, and how many copies there are (1 or 2).
    pub fat_start: u64,
    pub fat_sectors: u64,
    pub fats: u64,
    /// FAT16's fixed root directory (0 sectors on FAT32).
    pub root_start: u64,
    pub root_sectors: u64,
    /// FAT32's root directory cluster (0 on FAT16).
    pub root_cluster: u32,
    /// FAT32's info sector (FSINFO: the free-cluster count), absolute (0 on FAT16).
    pub info_sector: u64,
    /// Sector of cluster 2.
    pub data_start: u64,
    /// Data clusters: valid cluster numbers are 2 ..= clusters + 1.
    pub clusters: u32,
}

/// What is wrong with a volume, for the console.
pub type Invalid = &'static str;

fn le16(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn le32(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
}

/// MBR partition types the crate mounts.
const FAT_PARTITIONS: [u8; 5] = [0x04, 0x06, 0x0b, 0x0c, 0x0e];

/// The first partition of a master boot record: (first sector, sectors).
pub fn first_partition(mbr: &[u8; SECTOR], disk_sectors: u64) -> Result<(u64, u64), Invalid> {
    if mbr[510..512] != [0x55, 0xaa] {
        return Err("no MBR signature");
    }
    let entry = &mbr[446..462];
    if entry[0] & 0x7f != 0 {
        return Err("bad partition status");
    }
    if !FAT_PARTITIONS.contains(&entry[4]) {
        return Err("first partition is not FAT16 or FAT32");
    }
    let (start, len) = (le32(entry, 8), le32(entry, 12));
    if start == 0 || len == 0 {
        return Err("empty partition");
    }
    if start + len > disk_sectors {
        return Err("partition ends past the disk");
    }
    Ok((start, len))
}

impl Geometry {
    /// Checks the boot sector `bpb` of a partition at `part_start` of `part_sectors`
    /// sectors: 512-byte sectors, sectors per cluster a power of two up to 128, one or two
    /// FATs, every region inside the partition, the FAT long enough for every cluster, the
    /// cluster count of FAT16 or FAT32 (as the crate decides the type), a FAT32 root
    /// cluster and info sector that exist.
    pub fn parse(bpb: &[u8; SECTOR], part_start: u64, part_sectors: u64) -> Result<Self, Invalid> {
        if bpb[510..512] != [0x55, 0xaa] {
            return Err("no boot sector signature");
        }
        if le16(bpb, 11) != SECTOR as u64 {
            return Err("bytes per sector is not 512");
        }
        let spc = u64::from(bpb[13]);
        if !(1..=128).contains(&spc) || !spc.is_power_of_two() {
            return Err("sectors per cluster is not a power of two from 1 to 128");
        }
        let reserved = le16(bpb, 14);
        if reserved == 0 {
            return Err("no reserved sectors");
        }
        let fats = u64::from(bpb[16]);
        if !(1..=2).contains(&fats) {
            return Err("FAT count is not 1 or 2");
        }
        let root_entries = le16(bpb, 17);
        let total = match le16(bpb, 19) {
            0 => le32(bpb, 32),
            n => n,
        };
        let fat_sectors = match le16(bpb, 22) {
            0 => le32(bpb, 36),
            n => n,
        };
        if total == 0 || fat_sectors == 0 {
            return Err("zero total or FAT sectors");
        }
        if total > part_sectors {
            return Err("volume larger than its partition");
        }
        if !(root_entries * DIR_ENTRY as u64).is_multiple_of(SECTOR as u64) {
            return Err("root directory is not whole sectors");
        }
        let root_sectors = root_entries * DIR_ENTRY as u64 / SECTOR as u64;
        // All of these are below 2^16 * 3 + 2^32 * 2: no overflow in u64.
        let meta = reserved + fats * fat_sectors + root_sectors;
        if meta >= total {
            return Err("no room for data after the FATs and the root directory");
        }
        let clusters = (total - meta) / spc;
        let fat_type = if clusters < 4085 {
            return Err("FAT12 (fewer than 4085 clusters) is not supported");
        } else if clusters < 65525 {
            FatType::Fat16
        } else {
            FatType::Fat32
        };
        let entry_bytes = match fat_type {
            FatType::Fat16 => 2,
            FatType::Fat32 => 4,
        };
        if fat_sectors * SECTOR as u64 / entry_bytes < clusters + 2 {
            return Err("FAT too short for the clusters");
        }
        let clusters = u32::try_from(clusters).map_err(|_| "too many clusters")?;
        if fat_type == FatType::Fat32 && clusters > 0x0fff_fff5 {
            return Err("too many clusters for FAT32");
        }
        let mut root_cluster = 0;
        let mut info_sector = 0;
        match fat_type {
            FatType::Fat16 => {
                if root_entries == 0 {
                    return Err("FAT16 without root directory entries");
                }
            }
            FatType::Fat32 => {
                if root_entries != 0 {
                    return Err("FAT32 with a fixed root directory");
                }
                if le16(bpb, 42) != 0 {
                    return Err("FAT32 version is not 0.0");
                }
                root_cluster = le32(bpb, 44) as u32;
                if !(2..=clusters + 1).contains(&root_cluster) {
                    return Err("FAT32 root cluster out of range");
                }
                let info = le16(bpb, 48);
                if info == 0 || info >= reserved {
                    return Err("FAT32 info sector outside the reserved sectors");
                }
                info_sector = part_start + info;
            }
        }
        let fat_start = part_start + reserved;
        let root_start = fat_start + fats * fat_sectors;
        Ok(Geometry {
            fat_type,
            part_start,
            part_sectors,
            sectors_per_cluster: spc,
            fat_start,
            fat_sectors,
            fats,
            root_start,
            root_sectors,
            root_cluster,
            info_sector,
            data_start: root_start + root_sectors,
            clusters,
        })
    }

    /// Bytes in a cluster.
    pub fn cluster_bytes(&self) -> u64 {
        self.sectors_per_cluster * SECTOR as u64
    }

    /// Whether `c` names a data cluster.
    pub fn in_range(&self, c: u32) -> bool {
        (2..=self.clusters.saturating_add(1)).contains(&c)
    }

    /// The first sector of data cluster `c` (`None` out of range).
    pub fn cluster_sector(&self, c: u32) -> Option<u64> {
        self.in_range(c)
            .then(|| self.data_start + u64::from(c - 2) * self.sectors_per_cluster)
    }

    /// Where cluster `c`'s FAT entry is: (sector of the first FAT, byte offset in it).
    pub fn fat_entry_at(&self, c: u32) -> (u64, usize) {
        let bytes = match self.fat_type {
            FatType::Fat16 => 2,
            FatType::Fat32 => 4,
        };
        let at = u64::from(c) * bytes;
        (
            self.fat_start + at / SECTOR as u64,
            (at % SECTOR as u64) as usize,
        )
    }

    /// Decodes cluster `c`'s FAT entry from the FAT sector holding it.
    pub fn link(&self, c: u32, sector: &[u8; SECTOR]) -> Result<Link, ChainError> {
        let (_, at) = self.fat_entry_at(c);
        let (value, end, bad) = match self.fat_type {
            FatType::Fat16 => (le16(sector, at) as u32, 0xfff8, 0xfff7),
            FatType::Fat32 => (
                le32(sector, at) as u32 & 0x0fff_ffff,
                0x0fff_fff8,
                0x0fff_fff7,
            ),
        };
        match value {
            0 => Err(ChainError::Free(c)),
            v if v == bad => Err(ChainError::Bad(c)),
            v if v >= end => Ok(Link::End),
            v if self.in_range(v) => Ok(Link::Next(v)),
            v => Err(ChainError::OutOfRange(c, v)),
        }
    }

    /// Walks the chain from `first`, calling `each` with every cluster in order, reading
    /// FAT sectors with `read`: at most `max` clusters (and never more than the volume
    /// has, so a loop ends), every link in range, the last one an end-of-chain mark. → the
    /// number of clusters.
    pub fn walk_chain<E>(
        &self,
        first: u32,
        max: u64,
        mut read: impl FnMut(u64, &mut [u8; SECTOR]) -> Result<(), E>,
        mut each: impl FnMut(u32),
    ) -> Result<u64, ChainError<E>> {
        if !self.in_range(first) {
            return Err(ChainError::OutOfRange(0, first));
        }
        let max = max.min(u64::from(self.clusters));
        let mut sector = [0u8; SECTOR];
        let mut held = None;
        let mut c = first;
        let mut n = 0u64;
        loop {
            n += 1;
            if n > max {
                return Err(ChainError::TooLong(first));
            }
            each(c);
            let (s, _) = self.fat_entry_at(c);
            if held != Some(s) {
                read(s, &mut sector).map_err(ChainError::Io)?;
                held = Some(s);
            }
            match self.link(c, &sector).map_err(ChainError::widen)? {
                Link::End => return Ok(n),
                Link::Next(next) => c = next,
            }
        }
    }
}

/// What a FAT entry says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Next(u32),
    End,
}

/// Why a cluster chain cannot be followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainError<E = core::convert::Infallible> {
    /// Reading the FAT failed.
    Io(E),
    /// The chain runs into a free cluster.
    Free(u32),
    /// The chain runs into a cluster marked bad.
    Bad(u32),
    /// Cluster (first) links to a number (second) that is no data cluster.
    OutOfRange(u32, u32),
    /// The chain from this cluster is longer than allowed: a loop, or more than the file
    /// or directory can hold.
    TooLong(u32),
}

impl ChainError {
    fn widen<E>(self) -> ChainError<E> {
        match self {
            ChainError::Io(never) => match never {},
            ChainError::Free(c) => ChainError::Free(c),
            ChainError::Bad(c) => ChainError::Bad(c),
            ChainError::OutOfRange(c, v) => ChainError::OutOfRange(c, v),
            ChainError::TooLong(c) => ChainError::TooLong(c),
        }
    }
}

/// How many clusters a file of `size` bytes needs.
pub fn clusters_for(size: u64, cluster_bytes: u64) -> u64 {
    size.div_ceil(cluster_bytes.max(1))
}

/// The most runs of consecutive clusters a [`ChainMap`] keeps (12 bytes each): a file more
/// fragmented than that is read and written through the crate.
pub const MAX_RUNS: usize = 4096;

/// Consecutive clusters of a file: file clusters `index .. index + len` are disk clusters
/// `cluster .. cluster + len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    index: u64,
    cluster: u32,
    len: u32,
}

/// Why [`ChainMap::extents`] cannot say where a range lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError<E> {
    /// The chain is damaged (or reading the FAT failed).
    Chain(ChainError<E>),
    /// The chain ends before the range does.
    Short,
    /// More than [`MAX_RUNS`] runs would be needed.
    Fragmented,
    /// The range is not sector-aligned or wraps.
    Range,
}

/// Where a file's clusters lie on the disk: its chain, followed from the first cluster only
/// as far as asked and kept as runs of consecutive clusters (a file written in one go is one
/// run, whatever its length).
///
/// A chain may grow (the crate links new clusters after the last one): a range past the
/// clusters known reads the last one's link again. A chain that is cut or replaced (a
/// truncation) needs a new map. Every link is checked as [`Geometry::walk_chain`] checks
/// it, and a chain longer than the volume's cluster count (a loop) is an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainMap {
    first: u32,
    runs: Vec<Run>,
    known: u64,
}

impl ChainMap {
    /// The map of the chain starting at cluster `first`.
    pub fn new(first: u32) -> Self {
        Self {
            first,
            runs: Vec::new(),
            known: 0,
        }
    }

    /// The first cluster.
    pub fn first(&self) -> u32 {
        self.first
    }

    /// Runs kept so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Follows the chain until `need` clusters are known, reading FAT sectors with `read`.
    fn learn<E>(
        &mut self,
        geo: &Geometry,
        need: u64,
        mut read: impl FnMut(u64, &mut [u8; SECTOR]) -> Result<(), E>,
    ) -> Result<(), MapError<E>> {
        if self.known >= need {
            return Ok(());
        }
        if self.runs.is_empty() {
            if !geo.in_range(self.first) {
                return Err(MapError::Chain(ChainError::OutOfRange(0, self.first)));
            }
            self.runs.push(Run {
                index: 0,
                cluster: self.first,
                len: 1,
            });
            self.known = 1;
        }
        let mut sector = [0u8; SECTOR];
        let mut held = None;
        while self.known < need {
            let Some(last) = self.runs.last().map(|r| r.cluster + (r.len - 1)) else {
                return Err(MapError::Short);
            };
            let (s, _) = geo.fat_entry_at(last);
            if held != Some(s) {
                read(s, &mut sector).map_err(|e| MapError::Chain(ChainError::Io(e)))?;
                held = Some(s);
            }
            let next = match geo.link(last, &sector) {
                Ok(Link::Next(next)) => next,
                Ok(Link::End) => return Err(MapError::Short),
                Err(e) => return Err(MapError::Chain(e.widen())),
            };
            if self.known >= u64::from(geo.clusters) {
                return Err(MapError::Chain(ChainError::TooLong(self.first)));
            }
            let full = self.runs.len() >= MAX_RUNS;
            match self.runs.last_mut() {
                Some(r) if r.cluster.checked_add(r.len) == Some(next) => r.len += 1,
                _ if full => return Err(MapError::Fragmented),
                _ => self.runs.push(Run {
                    index: self.known,
                    cluster: next,
                    len: 1,
                }),
            }
            self.known += 1;
        }
        Ok(())
    }

    /// The disk cluster holding file cluster `index` (known).
    fn cluster(&self, index: u64) -> Option<u32> {
        let i = self
            .runs
            .partition_point(|r| r.index <= index)
            .checked_sub(1)?;
        let r = self.runs[i];
        let off = u32::try_from(index - r.index).ok().filter(|&o| o < r.len)?;
        Some(r.cluster + off)
    }

    /// Where bytes `at .. at + len` of the file lie: (first sector, sectors) extents in
    /// file order, consecutive sectors merged, `at` a multiple of [`SECTOR`] and `len`
    /// rounded up to whole sectors. One extent when the range's clusters are consecutive.
    pub fn extents<E>(
        &mut self,
        geo: &Geometry,
        at: u64,
        len: u64,
        read: impl FnMut(u64, &mut [u8; SECTOR]) -> Result<(), E>,
    ) -> Result<Vec<(u64, u64)>, MapError<E>> {
        let sector = SECTOR as u64;
        let cb = geo.cluster_bytes();
        let end = len
            .checked_next_multiple_of(sector)
            .and_then(|l| at.checked_add(l))
            .filter(|_| at.is_multiple_of(sector) && len > 0 && cb > 0)
            .ok_or(MapError::Range)?;
        let (first, last) = (at / cb, (end - 1) / cb);
        self.learn(geo, last + 1, read)?;
        let mut out: Vec<(u64, u64)> = Vec::new();
        for index in first..=last {
            let c = self.cluster(index).ok_or(MapError::Short)?;
            let base = geo.cluster_sector(c).ok_or(MapError::Short)?;
            let from = at.max(index * cb) - index * cb;
            let to = end.min((index + 1) * cb) - index * cb;
            let (s, n) = (base + from / sector, (to - from) / sector);
            match out.last_mut() {
                Some((ls, ln)) if *ls + *ln == s => *ln += n,
                _ => out.push((s, n)),
            }
        }
        Ok(out)
    }
}

/// The checksum of an 8.3 name that its long-name entries carry.
pub fn lfn_checksum(short: &[u8; 11]) -> u8 {
    short
        .iter()
        .fold(0u8, |sum, &b| sum.rotate_right(1).wrapping_add(b))
}

/// Whether directory entry `e` (32 bytes) is a live long-name entry with sequence number
/// `seq` (1 for the one right before the 8.3 entry; the last one also carries 0x40) of the
/// 8.3 name whose checksum is `sum`.
pub fn is_lfn_of(e: &[u8], seq: u8, sum: u8) -> bool {
    e.len() >= DIR_ENTRY && e[11] == 0x0f && e[0] != 0xe5 && e[0] & 0x1f == seq && e[13] == sum
}

/// Whether `name` spells the 8.3 name with base `base` and extension `ext` (as stored,
/// without padding), without case: `HELLO` + `TXT` is `hello.txt`, `BIN` + `` is `bin`.
pub fn is_short_name(base: &[u8], ext: &[u8], name: &str) -> bool {
    let n = name.as_bytes();
    let len = base.len() + if ext.is_empty() { 0 } else { 1 + ext.len() };
    n.len() == len
        && !base.is_empty()
        && n[..base.len()].eq_ignore_ascii_case(base)
        && (ext.is_empty()
            || (n[base.len()] == b'.' && n[base.len() + 1..].eq_ignore_ascii_case(ext)))
}

/// One component of a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component<'a> {
    /// `.`: stays where it is.
    Here,
    /// `..`: the directory above (the root's is the root, as POSIX has it for `/..`).
    Up,
    Name(&'a str),
}

/// The components of `path` (`/`-separated, empty ones left out), `None` past
/// [`MAX_DEPTH`].
pub fn components(path: &str) -> Option<impl Iterator<Item = Component<'_>>> {
    let parts = path.split('/').filter(|c| !c.is_empty());
    if parts.clone().count() > MAX_DEPTH {
        return None;
    }
    Some(parts.map(|c| match c {
        "." => Component::Here,
        ".." => Component::Up,
        name => Component::Name(name),
    }))
}

#[cfg(test)]
mod tests;
