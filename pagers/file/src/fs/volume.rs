//! The volume as the server trusts it: what it checks before `embedded-sdmmc` sees the disk,
//! and the path walk that names a file by what it is.
//!
//! - **Mount**: the partition table and the boot sector are checked by `fatcheck` first; a
//!   volume it refuses is not mounted (the server answers `ENODEV` and says why).
//! - **Bounded walks**: before the crate looks into a directory, the server walks that
//!   directory's cluster chain itself (every link in range, an end mark within the
//!   directory's largest size); before it opens a file, the file's chain (an end mark within
//!   the volume's cluster count, at least as many clusters as the size needs). A damaged
//!   chain is `EIO`, reported on the console, and the crate never follows it.
//! - **Identity**: a path is walked one component at a time (`.` stays, `..` goes up, the
//!   root's `..` is the root; each directory on the way must exist), names compare without
//!   case against the long name and the 8.3 name of each entry, and a file is known by
//!   where its 8.3 entry lies on the disk ([`Entry::id`]), whatever spelling found it.
//! - **Removal**: an unlinked file's clusters (all of them), its 8.3 entry and the long-name
//!   entries before it go.

use super::{Files, Volumes, errno};
use crate::blockdev::{BlockDev, IoError};
use crate::platform::{Device, Platform};
use alloc::vec::Vec;
use core::ops::ControlFlow;
use embedded_sdmmc::{DirEntry, LfnBuffer, Mode, RawDirectory, ShortFileName};
use fatcheck::{
    ChainError, Component, DIR_ENTRY, FatType, Geometry, MAX_DIR_ENTRIES, SECTOR, clusters_for,
    is_lfn_of,
};
use proto::Errno;
use proto::file::Path;

/// Where a directory entry lies: (sector, byte offset in it). Files are told apart by it.
pub type EntryId = (u32, u32);

/// The console hears about this many damaged structures, then no more (a task could ask
/// for the same one again and again).
const MAX_REPORTS: u32 = 16;

/// A directory entry, as the walk found it.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub name: ShortFileName,
    pub id: EntryId,
    pub cluster: u32,
    pub size: u32,
    pub dir: bool,
}

/// Where a path leads: the directories from the root to the last component's parent (by
/// 8.3 name, as the crate opens them) and the parent's first cluster (0: FAT16's root).
pub struct Resolved<'p> {
    pub dirs: Vec<ShortFileName>,
    pub parent: u32,
    pub last: Last<'p>,
    /// The path ends in `/`: it must name a directory (a file there is `ENOTDIR`, and
    /// `O_CREAT` of a missing name `EISDIR`, as Linux has them).
    pub dir_only: bool,
}

pub enum Last<'p> {
    /// The root, or a path ending in `.` or `..`.
    Dir,
    Entry(Entry),
    /// No entry of that name in the parent (which exists).
    Missing(&'p str),
}

/// Why the volume is not mounted.
#[derive(Debug)]
pub enum MountError {
    /// `fatcheck` refused the partition table or the boot sector.
    Invalid(&'static str),
    Io,
    /// The crate refused it.
    Crate(embedded_sdmmc::Error<IoError>),
}

impl core::fmt::Display for MountError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MountError::Invalid(why) => write!(f, "invalid FAT volume: {why}"),
            MountError::Io => f.write_str("cannot read the boot sector"),
            MountError::Crate(e) => write!(f, "{e:?}"),
        }
    }
}

/// The checked geometry of the disk's first partition.
pub fn check<D: Device>(dev: &BlockDev<D>) -> Result<Geometry, MountError> {
    let mut mbr = [0u8; SECTOR];
    dev.read_sector(0, &mut mbr).map_err(|_| MountError::Io)?;
    let sectors = dev.disk.try_borrow().map_err(|_| MountError::Io)?.sectors();
    let (start, len) = fatcheck::first_partition(&mbr, sectors).map_err(MountError::Invalid)?;
    let mut bpb = [0u8; SECTOR];
    dev.read_sector(start, &mut bpb)
        .map_err(|_| MountError::Io)?;
    Geometry::parse(&bpb, start, len).map_err(MountError::Invalid)
}

/// The entry called `name` in `dir`: its long name or its 8.3 name, without case (volume
/// labels and `.`/`..` left out). The crate opens files and directories by 8.3 name: the
/// entry must be the one that name finds (a damaged directory may hold it twice), else the
/// crate would walk something the server did not check.
fn lookup<P: Platform>(
    files: &Files<P>,
    v: &Volumes<P::Device>,
    dir: RawDirectory,
    name: &str,
) -> Result<Option<DirEntry>, Errno> {
    let mut storage = [0u8; 255 * 3];
    let mut lfn = LfnBuffer::new(&mut storage);
    let mut found = None;
    v.iterate_dir_lfn(dir, &mut lfn, |de, long| {
        let special = de.attributes.is_volume()
            || de.name == ShortFileName::this_dir()
            || de.name == ShortFileName::parent_dir();
        let named = long.is_some_and(|l| l.eq_ignore_ascii_case(name))
            || fatcheck::is_short_name(de.name.base_name(), de.name.extension(), name);
        if !special && named {
            found = Some(de.clone());
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })
    .map_err(errno)?;
    if let Some(de) = &found {
        let by_short = v.find_directory_entry(dir, de.name).map_err(errno)?;
        if (by_short.entry_block, by_short.entry_offset) != (de.entry_block, de.entry_offset) {
            files.report(format_args!("two entries named {}", de.name));
            return Err(Errno::EIO);
        }
    }
    Ok(found)
}

impl<P: Platform> Files<P> {
    /// Reads one sector past the crate (which forgets the sector it holds).
    pub(super) fn sector(&self, s: u64, out: &mut [u8; SECTOR]) -> Result<(), IoError> {
        self.volumes.device(|d| d.read_sector(s, out))
    }

    pub(super) fn write_sector(&self, s: u64, bytes: &[u8; SECTOR]) -> Result<(), Errno> {
        self.volumes
            .device(|d| d.write_sector(s, bytes))
            .map_err(|_| Errno::EIO)
    }

    /// Says on the console what is damaged (the first few times).
    pub(super) fn report(&self, what: core::fmt::Arguments<'_>) {
        let n = self.reports.get();
        if n < MAX_REPORTS {
            self.reports.set(n + 1);
            P::log(format_args!("file: damaged volume: {what} (EIO)"));
        }
    }

    /// Reports a damaged chain → `EIO`.
    pub(super) fn damaged(&self, what: &str, e: ChainError<IoError>) -> Errno {
        if !matches!(e, ChainError::Io(_)) {
            self.report(format_args!("{what}: {e:?}"));
        }
        Errno::EIO
    }

    /// The root directory's first cluster (0 on FAT16: the fixed root region).
    pub(super) fn root_cluster(&self) -> u32 {
        self.geo.root_cluster
    }

    /// The clusters of directory `cluster` (none for FAT16's root), checked.
    pub(super) fn dir_clusters(&self, cluster: u32) -> Result<Vec<u32>, Errno> {
        let mut clusters = Vec::new();
        if cluster == 0 && self.geo.fat_type == FatType::Fat16 {
            return Ok(clusters);
        }
        let max = (MAX_DIR_ENTRIES * DIR_ENTRY as u64).div_ceil(self.geo.cluster_bytes());
        self.geo
            .walk_chain(
                cluster,
                max,
                |s, out| self.sector(s, out),
                |c| clusters.push(c),
            )
            .map_err(|e| self.damaged("directory cluster chain", e))?;
        Ok(clusters)
    }

    /// Checks the cluster chain of a file before the crate follows it: it ends, and holds
    /// the file's size.
    pub(super) fn check_file(&self, e: &Entry) -> Result<(), Errno> {
        if e.size == 0 && e.cluster == 0 {
            return Ok(());
        }
        let need = clusters_for(u64::from(e.size), self.geo.cluster_bytes());
        let len = self
            .geo
            .walk_chain(e.cluster, u64::MAX, |s, out| self.sector(s, out), |_| {})
            .map_err(|err| self.damaged("file cluster chain", err))?;
        if len < need {
            self.report(format_args!(
                "a file of {} bytes has {len} clusters",
                e.size
            ));
            return Err(Errno::EIO);
        }
        Ok(())
    }

    /// Opens the directory `dirs` names (from the root, by 8.3 names) and calls `f` with
    /// it. Every directory on the way was checked by the walk that found `dirs`.
    pub(super) fn with_dir<T>(
        &self,
        dirs: &[ShortFileName],
        f: impl FnOnce(&Volumes<P::Device>, RawDirectory) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        let v = &self.volumes;
        let mut dir = v.open_root_dir(self.volume).map_err(errno)?;
        for name in dirs {
            match v.open_dir(dir, name) {
                Ok(sub) => {
                    let _ = v.close_dir(dir);
                    dir = sub;
                }
                Err(e) => {
                    let _ = v.close_dir(dir);
                    return Err(errno(e));
                }
            }
        }
        let result = f(v, dir);
        let _ = v.close_dir(dir);
        result
    }

    /// The entry `de` as the disk has it (the crate does not show its cluster).
    pub(super) fn entry(&self, de: &DirEntry) -> Result<Entry, Errno> {
        let mut sector = [0u8; SECTOR];
        self.sector(u64::from(de.entry_block.0), &mut sector)
            .map_err(|_| Errno::EIO)?;
        let at = usize::try_from(de.entry_offset)
            .ok()
            .filter(|at| at + DIR_ENTRY <= SECTOR)
            .ok_or(Errno::EIO)?;
        let e = &sector[at..at + DIR_ENTRY];
        let word = |i: usize| u32::from(u16::from_le_bytes([e[i], e[i + 1]]));
        let high = match self.geo.fat_type {
            FatType::Fat16 => 0,
            FatType::Fat32 => word(20),
        };
        Ok(Entry {
            name: de.name,
            id: (de.entry_block.0, de.entry_offset),
            cluster: (high << 16) | word(26),
            size: u32::from_le_bytes([e[28], e[29], e[30], e[31]]),
            dir: de.attributes.is_directory(),
        })
    }

    /// Walks `path` from the root.
    pub(super) fn resolve<'p>(&self, path: &'p Path) -> Result<Resolved<'p>, Errno> {
        // The type holds one byte more than a path may have.
        if path.as_bytes().len() > proto::file::PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let parts: Vec<Component<'p>> = fatcheck::components(path.as_str())
            .ok_or(Errno::ENAMETOOLONG)?
            .collect();
        let dir_only = path.as_str().ends_with('/');
        let root = self.root_cluster();
        self.dir_clusters(root)?;
        // (8.3 name, first cluster) of each directory below the root.
        let mut stack: Vec<(ShortFileName, u32)> = Vec::new();
        let dirs = |stack: &[(ShortFileName, u32)]| stack.iter().map(|s| s.0).collect();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let name = match *part {
                Component::Here => continue,
                Component::Up => {
                    stack.pop();
                    continue;
                }
                Component::Name(name) => name,
            };
            let parent = stack.last().map_or(root, |s| s.1);
            let names: Vec<ShortFileName> = dirs(&stack);
            let found = self.with_dir(&names, |v, dir| lookup(self, v, dir, name))?;
            let e = match found {
                Some(de) => self.entry(&de)?,
                None if last => {
                    return Ok(Resolved {
                        dirs: names,
                        parent,
                        last: Last::Missing(name),
                        dir_only,
                    });
                }
                None => return Err(Errno::ENOENT),
            };
            if last {
                if dir_only && !e.dir {
                    return Err(Errno::ENOTDIR);
                }
                return Ok(Resolved {
                    dirs: names,
                    parent,
                    last: Last::Entry(e),
                    dir_only,
                });
            }
            if !e.dir {
                return Err(Errno::ENOTDIR);
            }
            // A subdirectory's cluster 0 would be the root's `..`: not a directory below.
            if e.cluster == 0 {
                return Err(self.damaged("directory entry", ChainError::OutOfRange(0, 0)));
            }
            self.dir_clusters(e.cluster)?;
            stack.push((e.name, e.cluster));
        }
        Ok(Resolved {
            dirs: dirs(&stack),
            parent: stack.last().map_or(root, |s| s.1),
            last: Last::Dir,
            dir_only,
        })
    }

    /// The sectors of directory `cluster` in order (FAT16's root: its fixed region).
    pub(super) fn dir_sectors(&self, cluster: u32) -> Result<Vec<u64>, Errno> {
        if cluster == 0 && self.geo.fat_type == FatType::Fat16 {
            return Ok(
                (self.geo.root_start..self.geo.root_start + self.geo.root_sectors).collect(),
            );
        }
        let mut sectors = Vec::new();
        for c in self.dir_clusters(cluster)? {
            let first = self.geo.cluster_sector(c).ok_or(Errno::EIO)?;
            sectors.extend(first..first + self.geo.sectors_per_cluster);
        }
        Ok(sectors)
    }

    /// Marks the long-name entries of the 8.3 entry at `id` in directory `dir_cluster`
    /// deleted: the entries right before it with sequence numbers 1, 2, ... and the 8.3
    /// name's checksum, up to the one marked last (0x40).
    pub(super) fn remove_long_name(
        &self,
        dir_cluster: u32,
        id: EntryId,
        sum: u8,
    ) -> Result<(), Errno> {
        let sectors = self.dir_sectors(dir_cluster)?;
        let per = (SECTOR / DIR_ENTRY) as u64;
        let Some(index) = sectors.iter().position(|&s| s == u64::from(id.0)) else {
            return Ok(());
        };
        let pos = index as u64 * per + u64::from(id.1) / DIR_ENTRY as u64;
        // A long name has at most 20 entries (255 characters, 13 each).
        for seq in 1..=20u8 {
            let Some(p) = pos.checked_sub(u64::from(seq)) else {
                break;
            };
            let s = sectors[(p / per) as usize];
            let at = (p % per) as usize * DIR_ENTRY;
            let mut buf = [0u8; SECTOR];
            self.sector(s, &mut buf).map_err(|_| Errno::EIO)?;
            if !is_lfn_of(&buf[at..at + DIR_ENTRY], seq, sum) {
                break;
            }
            let final_entry = buf[at] & 0x40 != 0;
            buf[at] = 0xe5;
            self.write_sector(s, &buf)?;
            if final_entry {
                break;
            }
        }
        Ok(())
    }

    /// Takes the name of `object`, unlinked while open, from the directory: its long-name
    /// entries go and its 8.3 entry is renamed `~DLnnnnn.DEL` (a name the server never
    /// creates and no task can open: it finds an unlinked object there, `ENOENT`), so that
    /// the old name can be created anew while the file lives on until its last close.
    /// The crate keeps an open file's whole directory entry and writes it back when it
    /// flushes, so the file is closed in the crate first and reopened by its new name.
    pub(super) fn hide(&mut self, object: u64) -> Result<(), Errno> {
        let o = self.objects.get(&object).ok_or(Errno::EIO)?;
        let (dirs, parent, old, id, raw) = (o.dirs.clone(), o.parent, o.name, o.id, o.raw);
        let mode = if o.writable {
            Mode::ReadWriteAppend
        } else {
            Mode::ReadOnly
        };
        let mut hidden = None;
        for _ in 0..8 {
            let n = self.next_hidden % 100_000;
            self.next_hidden = self.next_hidden.wrapping_add(1);
            let text = alloc::format!("~DL{n:05}.DEL");
            let name = ShortFileName::create_from_str(&text).map_err(|_| Errno::EIO)?;
            let taken = self.with_dir(&dirs, |v, dir| match v.find_directory_entry(dir, name) {
                Ok(_) => Ok(true),
                Err(embedded_sdmmc::Error::NotFound) => Ok(false),
                Err(e) => Err(errno(e)),
            })?;
            if !taken {
                hidden = Some((name, text));
                break;
            }
        }
        let (name, text) = hidden.ok_or(Errno::EEXIST)?;
        let mut bytes = [b' '; 11];
        bytes[..8].copy_from_slice(&text.as_bytes()[..8]);
        bytes[8..].copy_from_slice(&text.as_bytes()[9..]);
        let mut was = [b' '; 11];
        was[..old.base_name().len()].copy_from_slice(old.base_name());
        was[8..8 + old.extension().len()].copy_from_slice(old.extension());

        // The crate writes the entry (under the old name) as it closes.
        self.volumes.close_file(raw).map_err(errno)?;
        let (s, at) = (u64::from(id.0), id.1 as usize);
        let mut buf = [0u8; SECTOR];
        let renamed = self
            .sector(s, &mut buf)
            .map_err(|_| Errno::EIO)
            .and_then(|()| {
                if buf.get(at..at + 11) != Some(&was[..]) {
                    return Err(Errno::EIO);
                }
                buf[at..at + 11].copy_from_slice(&bytes);
                self.write_sector(s, &buf)
            });
        let now = if renamed.is_ok() { name } else { old };
        let reopened = self.open_raw(&dirs, now, mode);
        let o = self.objects.get_mut(&object).ok_or(Errno::EIO)?;
        o.name = now;
        match reopened {
            Ok(raw) => o.raw = raw,
            Err(e) => {
                // The crate's file is closed: opened again as it was, or lost (`EIO` for
                // everyone until it is closed), never left naming a closed file.
                self.reopen_as_it_was(object);
                return Err(e);
            }
        }
        renamed?;
        self.remove_long_name(parent, id, old.csum())
    }

    /// Marks cluster `c` free in every FAT.
    fn free_cluster(&self, c: u32) -> Result<(), Errno> {
        if !self.geo.in_range(c) {
            return Ok(());
        }
        let (s, at) = self.geo.fat_entry_at(c);
        let width = match self.geo.fat_type {
            FatType::Fat16 => 2,
            FatType::Fat32 => 4,
        };
        for copy in 0..self.geo.fats {
            let s = s + copy * self.geo.fat_sectors;
            let mut buf = [0u8; SECTOR];
            self.sector(s, &mut buf).map_err(|_| Errno::EIO)?;
            if width == 4 {
                // FAT32 keeps the top four bits of an entry.
                buf[at..at + 3].fill(0);
                buf[at + 3] &= 0xf0;
            } else {
                buf[at..at + 2].fill(0);
            }
            self.write_sector(s, &buf)?;
        }
        Ok(())
    }

    /// Removes a closed file: its clusters (the crate's truncation keeps the first one: it
    /// is freed here), its 8.3 entry (the crate's delete) and its long-name entries. A file
    /// whose chain is damaged stays (`EIO`).
    pub(super) fn remove_entry(
        &mut self,
        dirs: &[ShortFileName],
        parent: u32,
        name: ShortFileName,
        id: EntryId,
    ) -> Result<(), Errno> {
        let first = self.with_dir(dirs, |v, dir| {
            let de = v.find_directory_entry(dir, name).map_err(errno)?;
            if (de.entry_block.0, de.entry_offset) != id {
                return Err(Errno::ENOENT);
            }
            Ok(de)
        })?;
        let entry = self.entry(&first)?;
        // The crate frees the chain by following it: only a checked one (a damaged chain
        // could lead into another file's clusters).
        self.check_file(&entry)?;
        let first = entry.cluster;
        self.with_dir(dirs, |v, dir| {
            let raw = v
                .open_file_in_dir(dir, name, embedded_sdmmc::Mode::ReadWriteTruncate)
                .map_err(errno)?;
            v.close_file(raw).map_err(errno)?;
            v.delete_entry_in_dir(dir, name).map_err(errno)
        })?;
        self.remove_long_name(parent, id, name.csum())?;
        self.free_cluster(first)
    }
}
