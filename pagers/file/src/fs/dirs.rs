//! Directories as the server writes them itself, beside `embedded-sdmmc` (which creates,
//! opens and deletes entries by 8.3 name only, and has no rename): long names (VFAT
//! long-name entries before the 8.3 entry, as any desktop writes them), `mkdir`, `rmdir`,
//! `rename` and the listing (`ReadDir`).
//!
//! - **Names**: a name that is a plain upper-case 8.3 name (`README.TXT`) gets an 8.3 entry
//!   only; any other (lower or mixed case, longer, spaces, several dots, `+,;=[]`, non-ASCII)
//!   gets long-name entries holding it as given (UTF-16) and a generated 8.3 name: the name
//!   upper-cased if it is a valid 8.3 name and free, else a basis and `~N` as Windows makes
//!   it (`A long name.txt` → `ALONGN~1.TXT`). The crate opens the file by that 8.3 name.
//! - **Placing entries**: the crate makes the 8.3 entry (a file, or a directory with its
//!   cluster, `.` and `..`); when a long name is wanted, the entry moves to a run of free
//!   slots that holds its long-name entries before it (the directory grows by a zeroed
//!   cluster when it has no such run; FAT16's fixed root cannot: `ENOSPC`).
//! - **Rename** writes the entry (its cluster, size, attributes kept) under the new name in
//!   the target directory first, then marks the old one deleted; a directory moved to
//!   another parent gets its `..` pointed there. A file the server holds open (or mapped)
//!   is closed in the crate first (which writes its entry back where it was) and opened
//!   again by its new name; files held below a moved directory are found under its new
//!   name from then on.
//! - **Listing** is stateless: a cookie (the slot where the next entry's entries start) comes
//!   back with each reply; each call scans at most [`SCAN_SLOTS`] slots and fills at most
//!   one message.

use super::{Files, errno};
use crate::platform::Platform;
use alloc::string::String;
use alloc::vec::Vec;
use embedded_sdmmc::ShortFileName;
use fatcheck::{DIR_ENTRY, FatType, MAX_DIR_ENTRIES, SECTOR, lfn_checksum};
use proto::Errno;
use proto::file::{DIR_END, DIRENT_HEADER, Path};

use super::volume::{EntryId, Last};

const ATTR_LFN: u8 = 0x0f;
const ATTR_VOLUME: u8 = 0x08;
const ATTR_DIR: u8 = 0x10;
/// UTF-16 units of a long name in one entry, and at most in a name.
const LFN_UNITS: usize = 13;
const MAX_LFN: usize = 255;
/// Where the 13 units of a long-name entry lie in it.
const LFN_OFFSETS: [usize; LFN_UNITS] = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
/// Slots one `ReadDir` call looks at, at most.
pub const SCAN_SLOTS: u64 = 1024;
/// Generated 8.3 names tried before giving up (`EEXIST`).
const SHORT_TRIES: u32 = 40;
const PER_SECTOR: u64 = (SECTOR / DIR_ENTRY) as u64;

/// A new entry's names: its 8.3 name (11 bytes as stored) and its long name, if it has one.
pub(super) struct Names {
    pub short: [u8; 11],
    pub long: Option<Vec<u16>>,
}

impl Names {
    /// The 8.3 name as the crate takes it (`BASE.EXT`).
    pub fn sfn(&self) -> Result<ShortFileName, Errno> {
        ShortFileName::create_from_str(&short_text(&self.short)).map_err(|_| Errno::EIO)
    }
}

/// `BASE.EXT` (or `BASE`) of an 8.3 name as stored.
fn short_text(s: &[u8; 11]) -> String {
    let base = core::str::from_utf8(&s[..8]).unwrap_or("_").trim_end();
    let ext = core::str::from_utf8(&s[8..]).unwrap_or("").trim_end();
    if ext.is_empty() {
        String::from(base)
    } else {
        alloc::format!("{base}.{ext}")
    }
}

/// The 8.3 name of entry `e` as a listing shows it (lower case where the entry's flags say
/// so, as Windows NT and Linux write them).
fn short_display(e: &[u8]) -> String {
    let mut s = [0u8; 11];
    s.copy_from_slice(&e[..11]);
    if s[0] == 0x05 {
        s[0] = 0xe5;
    }
    let lower = |b: &mut [u8]| b.iter_mut().for_each(|c| *c = c.to_ascii_lowercase());
    if e[12] & 0x08 != 0 {
        lower(&mut s[..8]);
    }
    if e[12] & 0x10 != 0 {
        lower(&mut s[8..]);
    }
    let text = |b: &[u8]| b.iter().map(|&c| char::from(c)).collect::<String>();
    let base = text(&s[..8]);
    let ext = text(&s[8..]);
    let (base, ext) = (base.trim_end(), ext.trim_end());
    if ext.is_empty() {
        String::from(base)
    } else {
        alloc::format!("{base}.{ext}")
    }
}

/// `name` as long-name units: `EINVAL` for characters FAT names cannot hold (controls,
/// `"*/:<>?\|`) or a trailing space or dot, `ENAMETOOLONG` past 255 units.
fn long_units(name: &str) -> Result<Vec<u16>, Errno> {
    let bad = |c: char| c < ' ' || c == '\u{7f}' || "\"*/:<>?\\|".contains(c);
    if name.chars().any(bad) || name.ends_with(' ') || name.ends_with('.') {
        return Err(Errno::EINVAL);
    }
    let units: Vec<u16> = name.encode_utf16().collect();
    if units.len() > MAX_LFN {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(units)
}

/// The 8.3 basis of `name` (base, extension, upper case) and whether it lost anything.
fn basis(name: &str) -> (Vec<u8>, Vec<u8>, bool) {
    let trimmed = name.trim_start_matches('.');
    let (stem, ext) = match trimmed.rfind('.') {
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (trimmed, ""),
    };
    let mut lossy = trimmed.len() != name.len();
    let mut conv = |part: &str, max: usize| {
        let mut out = Vec::new();
        for c in part.chars() {
            if c == ' ' || c == '.' {
                lossy = true;
                continue;
            }
            let b = if c.is_ascii_alphanumeric() || "!#$%&'()-@^_`{}~".contains(c) {
                c.to_ascii_uppercase() as u8
            } else {
                lossy = true;
                b'_'
            };
            if out.len() == max {
                lossy = true;
                break;
            }
            out.push(b);
        }
        out
    };
    let base = conv(stem, 8);
    let ext = conv(ext, 3);
    let base = if base.is_empty() {
        lossy = true;
        alloc::vec![b'_']
    } else {
        base
    };
    (base, ext, lossy)
}

fn pack(base: &[u8], ext: &[u8]) -> [u8; 11] {
    let mut s = [b' '; 11];
    s[..base.len().min(8)].copy_from_slice(&base[..base.len().min(8)]);
    s[8..8 + ext.len().min(3)].copy_from_slice(&ext[..ext.len().min(3)]);
    s
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The long-name entries (in the order they lie on the disk) of `units` for 8.3 name `short`.
fn lfn_entries(units: &[u16], short: &[u8; 11]) -> Vec<[u8; DIR_ENTRY]> {
    let sum = lfn_checksum(short);
    let n = units.len().div_ceil(LFN_UNITS);
    let mut out = Vec::with_capacity(n);
    for seq in (1..=n).rev() {
        let mut e = [0u8; DIR_ENTRY];
        e[0] = seq as u8 | if seq == n { 0x40 } else { 0 };
        e[11] = ATTR_LFN;
        e[13] = sum;
        for (k, &at) in LFN_OFFSETS.iter().enumerate() {
            let i = (seq - 1) * LFN_UNITS + k;
            let u = match i.cmp(&units.len()) {
                core::cmp::Ordering::Less => units[i],
                core::cmp::Ordering::Equal => 0,
                core::cmp::Ordering::Greater => 0xffff,
            };
            e[at..at + 2].copy_from_slice(&u.to_le_bytes());
        }
        out.push(e);
    }
    out
}

/// A long name being gathered from its entries while a directory is read.
#[derive(Default)]
struct Gather {
    /// (slot of its first entry, the next sequence number expected, checksum)
    at: Option<(u64, u8, u8)>,
    units: Vec<u16>,
}

impl Gather {
    fn take(&mut self, slot: u64, e: &[u8]) {
        let seq = e[0] & 0x1f;
        if e[0] & 0x40 != 0 {
            if seq == 0 || usize::from(seq) * LFN_UNITS > MAX_LFN + LFN_UNITS {
                self.at = None;
                return;
            }
            self.units = alloc::vec![0xffff; usize::from(seq) * LFN_UNITS];
            self.at = Some((slot, seq, e[13]));
        }
        match self.at {
            Some((first, want, sum)) if seq == want && sum == e[13] && seq > 0 => {
                let base = usize::from(seq - 1) * LFN_UNITS;
                for (k, &o) in LFN_OFFSETS.iter().enumerate() {
                    self.units[base + k] = le16(e, o);
                }
                self.at = Some((first, seq - 1, sum));
            }
            _ => self.at = None,
        }
    }

    /// The long name of 8.3 entry `e` (and the slot its entries start at), if the entries
    /// gathered belong to it.
    fn name_of(&mut self, e: &[u8]) -> Option<(u64, String)> {
        let (first, left, sum) = self.at.take()?;
        let mut short = [0u8; 11];
        short.copy_from_slice(&e[..11]);
        if left != 0 || sum != lfn_checksum(&short) {
            return None;
        }
        let end = self
            .units
            .iter()
            .position(|&u| u == 0 || u == 0xffff)
            .unwrap_or(self.units.len());
        let name: String = char::decode_utf16(self.units[..end].iter().copied())
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
        (!name.is_empty()).then_some((first, name))
    }
}

impl<P: Platform> Files<P> {
    /// The names a new entry called `name` gets in directory `dirs`: `EEXIST` when no free
    /// 8.3 name is found.
    pub(super) fn names_for(&self, dirs: &[ShortFileName], name: &str) -> Result<Names, Errno> {
        let units = long_units(name)?;
        let (base, ext, lossy) = basis(name);
        let taken = |s: &[u8; 11]| -> Result<bool, Errno> {
            let sfn = ShortFileName::create_from_str(&short_text(s)).map_err(|_| Errno::EIO)?;
            self.with_dir(dirs, |v, dir| match v.find_directory_entry(dir, sfn) {
                Ok(_) => Ok(true),
                Err(embedded_sdmmc::Error::NotFound) => Ok(false),
                Err(e) => Err(errno(e)),
            })
        };
        let plain = pack(&base, &ext);
        if !lossy && !taken(&plain)? {
            let long = (short_text(&plain) != name).then_some(units);
            return Ok(Names { short: plain, long });
        }
        let hash = units
            .iter()
            .fold(0u32, |h, &u| h.wrapping_mul(31).wrapping_add(u32::from(u)));
        for n in 1..=SHORT_TRIES {
            let tail = if n <= 4 {
                alloc::format!("~{n}")
            } else {
                alloc::format!(
                    "{:04X}~{}",
                    (hash ^ n.wrapping_mul(0x9e37)) & 0xffff,
                    n % 10
                )
            };
            let keep = (8 - tail.len())
                .min(base.len())
                .min(if n <= 4 { 6 } else { 2 });
            let mut b = base[..keep].to_vec();
            b.extend_from_slice(tail.as_bytes());
            let short = pack(&b, &ext);
            if !taken(&short)? {
                return Ok(Names {
                    short,
                    long: Some(units),
                });
            }
        }
        Err(Errno::EEXIST)
    }

    /// The 32 bytes of the entry at `id`.
    fn entry_bytes(&self, id: EntryId) -> Result<[u8; DIR_ENTRY], Errno> {
        let mut buf = [0u8; SECTOR];
        self.sector(u64::from(id.0), &mut buf)
            .map_err(|_| Errno::EIO)?;
        let at = id.1 as usize;
        let mut e = [0u8; DIR_ENTRY];
        e.copy_from_slice(buf.get(at..at + DIR_ENTRY).ok_or(Errno::EIO)?);
        Ok(e)
    }

    /// Writes the entries `entries` into consecutive slots from slot `first` of a
    /// directory whose sectors are `sectors`.
    fn write_slots(
        &self,
        sectors: &[u64],
        first: u64,
        entries: &[[u8; DIR_ENTRY]],
    ) -> Result<(), Errno> {
        let mut i = 0;
        while i < entries.len() {
            let slot = first + i as u64;
            let s = *sectors
                .get(usize::try_from(slot / PER_SECTOR).map_err(|_| Errno::EIO)?)
                .ok_or(Errno::EIO)?;
            let mut buf = [0u8; SECTOR];
            self.sector(s, &mut buf).map_err(|_| Errno::EIO)?;
            // Every slot of this sector that is being written.
            let mut k = (slot % PER_SECTOR) as usize;
            while k < PER_SECTOR as usize && i < entries.len() {
                buf[k * DIR_ENTRY..(k + 1) * DIR_ENTRY].copy_from_slice(&entries[i]);
                k += 1;
                i += 1;
            }
            self.write_sector(s, &buf)?;
        }
        Ok(())
    }

    /// The first run of `n` free slots in the directory of `sectors` (a slot past the end
    /// mark is free).
    fn free_run(&self, sectors: &[u64], n: u64) -> Result<Option<u64>, Errno> {
        let (mut start, mut len) = (0u64, 0u64);
        let mut ended = false;
        for (i, &s) in sectors.iter().enumerate() {
            let mut buf = [0u8; SECTOR];
            self.sector(s, &mut buf).map_err(|_| Errno::EIO)?;
            for k in 0..PER_SECTOR {
                let slot = i as u64 * PER_SECTOR + k;
                let b0 = buf[k as usize * DIR_ENTRY];
                ended |= b0 == 0;
                if ended || b0 == 0xe5 {
                    if len == 0 {
                        start = slot;
                    }
                    len += 1;
                    if len == n {
                        return Ok(Some(start));
                    }
                } else {
                    len = 0;
                }
            }
        }
        Ok(None)
    }

    /// A free cluster, taken (an end of chain mark) and zeroed: `ENOSPC` when there is none.
    fn alloc_cluster(&self) -> Result<u32, Errno> {
        let mut buf = [0u8; SECTOR];
        let mut held = None;
        for c in 2..self.geo.clusters.saturating_add(2) {
            let (s, at) = self.geo.fat_entry_at(c);
            if held != Some(s) {
                self.sector(s, &mut buf).map_err(|_| Errno::EIO)?;
                held = Some(s);
            }
            let free = match self.geo.fat_type {
                FatType::Fat16 => le16(&buf, at) == 0,
                FatType::Fat32 => le32(&buf, at) & 0x0fff_ffff == 0,
            };
            if free {
                let first = self.geo.cluster_sector(c).ok_or(Errno::EIO)?;
                let zeros = alloc::vec![0u8; self.geo.cluster_bytes() as usize];
                self.volumes
                    .device(|d| d.write_run(first, &zeros))
                    .map_err(|_| Errno::EIO)?;
                self.set_fat(c, 0x0fff_ffff)?;
                return Ok(c);
            }
        }
        Err(Errno::ENOSPC)
    }

    /// Sets cluster `c`'s entry in every FAT to `value` (FAT16 keeps its low 16 bits, FAT32
    /// its low 28 and the entry's top four).
    pub(super) fn set_fat(&self, c: u32, value: u32) -> Result<(), Errno> {
        if !self.geo.in_range(c) {
            return Err(Errno::EIO);
        }
        if value == 0 {
            self.freeing(core::iter::once(c));
        }
        let (s, at) = self.geo.fat_entry_at(c);
        for copy in 0..self.geo.fats {
            let s = s + copy * self.geo.fat_sectors;
            let mut buf = [0u8; SECTOR];
            self.sector(s, &mut buf).map_err(|_| Errno::EIO)?;
            match self.geo.fat_type {
                FatType::Fat16 => buf[at..at + 2].copy_from_slice(&(value as u16).to_le_bytes()),
                FatType::Fat32 => {
                    let top = le32(&buf, at) & 0xf000_0000;
                    let v = top | (value & 0x0fff_ffff);
                    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
            self.write_sector(s, &buf)?;
        }
        Ok(())
    }

    /// Adds a zeroed cluster to directory `dir` (`ENOSPC` for FAT16's root, a directory at
    /// its largest size, or a full disk).
    fn grow_dir(&self, dir: u32) -> Result<(), Errno> {
        if dir == 0 && self.geo.fat_type == FatType::Fat16 {
            return Err(Errno::ENOSPC);
        }
        let clusters = self.dir_clusters(dir)?;
        let max = (MAX_DIR_ENTRIES * DIR_ENTRY as u64).div_ceil(self.geo.cluster_bytes());
        let Some(&last) = clusters.last() else {
            return Err(Errno::EIO);
        };
        if clusters.len() as u64 >= max {
            return Err(Errno::ENOSPC);
        }
        let c = self.alloc_cluster()?;
        self.set_fat(last, c)
    }

    /// Makes sure directory `dir` has a free slot: grows it by a zeroed cluster if it is
    /// full (`ENOSPC` when it cannot grow).
    pub(super) fn make_room(&self, dir: u32) -> Result<(), Errno> {
        let sectors = self.dir_sectors(dir)?;
        if self.free_run(&sectors, 1)?.is_none() {
            self.grow_dir(dir)?;
        }
        Ok(())
    }

    /// Writes `entry` under `names` (long-name entries first) into directory `dir`:
    /// where its 8.3 entry now lies.
    fn place(&self, dir: u32, names: &Names, mut entry: [u8; DIR_ENTRY]) -> Result<EntryId, Errno> {
        entry[..11].copy_from_slice(&names.short);
        let mut all = match &names.long {
            Some(units) => {
                // Its case is in the long name: the 8.3 name is upper case.
                entry[12] &= !0x18;
                lfn_entries(units, &names.short)
            }
            None => Vec::new(),
        };
        all.push(entry);
        let n = all.len() as u64;
        let mut sectors = self.dir_sectors(dir)?;
        let mut first = self.free_run(&sectors, n)?;
        // A long name needs at most 21 slots: two clusters of one sector at worst.
        for _ in 0..2 {
            if first.is_some() {
                break;
            }
            self.grow_dir(dir)?;
            sectors = self.dir_sectors(dir)?;
            first = self.free_run(&sectors, n)?;
        }
        let first = first.ok_or(Errno::ENOSPC)?;
        self.write_slots(&sectors, first, &all)?;
        let last = first + n - 1;
        let s = *sectors
            .get(usize::try_from(last / PER_SECTOR).map_err(|_| Errno::EIO)?)
            .ok_or(Errno::EIO)?;
        let s = u32::try_from(s).map_err(|_| Errno::EIO)?;
        Ok((s, ((last % PER_SECTOR) as usize * DIR_ENTRY) as u32))
    }

    /// Marks the 8.3 entry at `id` of directory `dir` and its long-name entries deleted.
    pub(super) fn erase(&self, dir: u32, id: EntryId) -> Result<(), Errno> {
        let e = self.entry_bytes(id)?;
        let mut short = [0u8; 11];
        short.copy_from_slice(&e[..11]);
        let mut buf = [0u8; SECTOR];
        let s = u64::from(id.0);
        self.sector(s, &mut buf).map_err(|_| Errno::EIO)?;
        buf[id.1 as usize] = 0xe5;
        self.write_sector(s, &buf)?;
        self.remove_long_name(dir, id, lfn_checksum(&short))
    }

    /// Gives the 8.3 entry at `id` of directory `dir` (just made by the crate) its long
    /// name: it moves to a run of slots that holds the long-name entries before it.
    pub(super) fn add_long_name(
        &self,
        dir: u32,
        id: EntryId,
        names: &Names,
    ) -> Result<EntryId, Errno> {
        if names.long.is_none() {
            return Ok(id);
        }
        let e = self.entry_bytes(id)?;
        let new = self.place(dir, names, e)?;
        let mut buf = [0u8; SECTOR];
        self.sector(u64::from(id.0), &mut buf)
            .map_err(|_| Errno::EIO)?;
        buf[id.1 as usize] = 0xe5;
        self.write_sector(u64::from(id.0), &buf)?;
        Ok(new)
    }

    /// `Mkdir`: a new, empty directory (`EEXIST` if the name is taken).
    pub fn mkdir(&mut self, path: &Path) -> Result<(), Errno> {
        if self.readonly {
            return Err(Errno::EROFS);
        }
        let r = self.resolve(path)?;
        let name = match r.last {
            Last::Missing(name) => name,
            _ => return Err(Errno::EEXIST),
        };
        let names = self.names_for(&r.dirs, name)?;
        let sfn = names.sfn()?;
        // The crate marks the cluster it allocates in use, then looks for the next free one
        // and fails (`ENOSPC`) if there is none: the new directory's cluster, taken last,
        // would be lost (in use, named by no entry). A cluster for the parent, one for the
        // directory and one left over, or `ENOSPC` before anything changes.
        self.free_clusters(3, None)?;
        let made = self.with_dir(&r.dirs, |v, dir| v.make_dir_in_dir(dir, sfn).map_err(errno));
        let found = self.with_dir(&r.dirs, |v, dir| {
            v.find_directory_entry(dir, sfn).map_err(errno)
        });
        let e = match (made, found) {
            (Ok(()), Ok(de)) => self.entry(&de)?,
            (Ok(()), Err(err)) => return Err(err),
            (Err(err), Ok(de)) => {
                // The crate wrote the entry, then found no cluster for it: it goes again.
                let e = self.entry(&de)?;
                self.undo_dir(r.parent, e.id, e.cluster);
                return Err(err);
            }
            (Err(err), Err(_)) => return Err(err),
        };
        if let Err(err) = self.add_long_name(r.parent, e.id, &names) {
            // No room for the long name: the directory goes again.
            self.undo_dir(r.parent, e.id, e.cluster);
            return Err(err);
        }
        Ok(())
    }

    /// Takes a directory just made away again (its entry and its clusters), as far as it
    /// can.
    fn undo_dir(&self, parent: u32, id: EntryId, cluster: u32) {
        let _ = self.erase(parent, id);
        if cluster != 0
            && let Ok(clusters) = self.dir_clusters(cluster)
        {
            for c in clusters {
                let _ = self.set_fat(c, 0);
            }
        }
    }

    /// Whether directory `cluster` holds nothing but `.` and `..`.
    fn dir_empty(&self, cluster: u32) -> Result<bool, Errno> {
        for s in self.dir_sectors(cluster)? {
            let mut buf = [0u8; SECTOR];
            self.sector(s, &mut buf).map_err(|_| Errno::EIO)?;
            for e in buf.chunks_exact(DIR_ENTRY) {
                match e[0] {
                    0 => return Ok(true),
                    0xe5 => continue,
                    _ if e[11] == ATTR_LFN => continue,
                    _ if &e[..11] == b".          " || &e[..11] == b"..         " => continue,
                    _ => return Ok(false),
                }
            }
        }
        Ok(true)
    }

    /// `Rmdir`: removes an empty directory (`ENOTEMPTY` otherwise, `ENOTDIR` for a file,
    /// `EBUSY` for the root, `.` or `..`).
    pub fn rmdir(&mut self, path: &Path) -> Result<(), Errno> {
        if self.readonly {
            return Err(Errno::EROFS);
        }
        let r = self.resolve(path)?;
        let e = match r.last {
            Last::Dir => return Err(Errno::EBUSY),
            Last::Missing(_) => return Err(Errno::ENOENT),
            Last::Entry(e) if !e.dir => return Err(Errno::ENOTDIR),
            Last::Entry(e) => e,
        };
        self.remove_dir(r.parent, e.id, e.cluster)
    }

    fn remove_dir(&mut self, parent: u32, id: EntryId, cluster: u32) -> Result<(), Errno> {
        if cluster == 0 {
            return Err(Errno::EIO);
        }
        if !self.dir_empty(cluster)? {
            return Err(Errno::ENOTEMPTY);
        }
        let clusters = self.dir_clusters(cluster)?;
        self.erase(parent, id)?;
        for c in clusters {
            self.set_fat(c, 0)?;
        }
        Ok(())
    }

    /// `Rename`: `from` takes the name `to` (in the same or another directory of the
    /// volume). An existing `to` is replaced if it is of the same kind (a directory only if
    /// it is empty): `EISDIR` for a file over a directory, `ENOTDIR` for a directory over a
    /// file, `ENOTEMPTY`, `EINVAL` for a directory moved below itself. A file that is open
    /// or mapped (or in a directory moved) keeps its descriptors and mappings: the server's
    /// object follows it.
    pub fn rename(&mut self, from: &Path, to: &Path) -> Result<(), Errno> {
        if self.readonly {
            return Err(Errno::EROFS);
        }
        let rf = self.resolve(from)?;
        let e = match rf.last {
            Last::Dir => return Err(Errno::EBUSY),
            Last::Missing(_) => return Err(Errno::ENOENT),
            Last::Entry(e) => e,
        };
        if let Some(o) = self.ids.get(&e.id).and_then(|k| self.objects.get(k))
            && o.unlinked
        {
            return Err(Errno::ENOENT);
        }
        let mut me = rf.dirs.clone();
        me.push(e.name);
        let mut rt = self.resolve(to)?;
        if e.dir && rt.dirs.starts_with(&me) {
            return Err(Errno::EINVAL);
        }
        if let Last::Entry(t) = rt.last {
            if t.id == e.id {
                return Ok(());
            }
            match (e.dir, t.dir) {
                (false, true) => return Err(Errno::EISDIR),
                (true, false) => return Err(Errno::ENOTDIR),
                (true, true) => self.remove_dir(rt.parent, t.id, t.cluster)?,
                (false, false) => self.unlink(to)?,
            }
            rt = self.resolve(to)?;
        }
        let name = match rt.last {
            Last::Missing(name) => name,
            Last::Dir => return Err(Errno::EBUSY),
            Last::Entry(_) => return Err(Errno::EEXIST),
        };
        if rt.dir_only && !e.dir {
            return Err(Errno::ENOTDIR);
        }
        let names = self.names_for(&rt.dirs, name)?;
        let sfn = names.sfn()?;
        // A file the server holds: the crate's file is closed (it writes its entry back at
        // the old place as it closes) and opened again by its new name afterwards.
        let held = match self.ids.get(&e.id) {
            Some(&obj) if !e.dir => {
                let raw = self.objects.get(&obj).ok_or(Errno::EIO)?.raw;
                self.volumes.close_file(raw).map_err(errno)?;
                Some(obj)
            }
            _ => None,
        };
        let moved = self.entry_bytes(e.id).and_then(|entry| {
            if entry[..11] != pack(e.name.base_name(), e.name.extension()) {
                return Err(Errno::EIO);
            }
            let new = self.place(rt.parent, &names, entry)?;
            self.erase(rf.parent, e.id)?;
            Ok(new)
        });
        if let Some(obj) = held {
            if let (Ok(new), Some(o)) = (&moved, self.objects.get_mut(&obj)) {
                o.dirs = rt.dirs.clone();
                o.name = sfn;
                o.parent = rt.parent;
                o.id = *new;
                self.ids.remove(&e.id);
                self.ids.insert(*new, obj);
            }
            // Opened again under the name it now has (or lost: `EIO` until closed).
            self.reopen_as_it_was(obj);
        }
        moved?;
        if e.dir {
            // Files held below it are now found under its new 8.3 name (their entries and
            // the crate's open files stay where they are).
            let mut now = rt.dirs.clone();
            now.push(sfn);
            for o in self.objects.values_mut() {
                if o.dirs.starts_with(&me) {
                    let rest = o.dirs.split_off(me.len());
                    o.dirs = now.clone();
                    o.dirs.extend(rest);
                }
            }
        }
        if e.dir && rf.parent != rt.parent {
            // Its `..` (the second slot of its first cluster) names the new parent (0: the
            // root, as FAT has it).
            let up = if rt.parent == self.root_cluster() {
                0
            } else {
                rt.parent
            };
            let s = self.geo.cluster_sector(e.cluster).ok_or(Errno::EIO)?;
            let mut buf = [0u8; SECTOR];
            self.sector(s, &mut buf).map_err(|_| Errno::EIO)?;
            let dd = &mut buf[DIR_ENTRY..2 * DIR_ENTRY];
            if &dd[..11] == b"..         " {
                dd[26..28].copy_from_slice(&(up as u16).to_le_bytes());
                dd[20..22].copy_from_slice(&((up >> 16) as u16).to_le_bytes());
                self.write_sector(s, &buf)?;
            }
        }
        Ok(())
    }

    /// `ReadDir`: the entries of directory `path` from `cookie` on, packed into `out` (each
    /// [`DIRENT_HEADER`] bytes, then the name) → (bytes used, the cookie of the next call,
    /// [`DIR_END`] after the last entry). A long name that does not fit a record (more than
    /// 255 bytes of UTF-8) is listed by its 8.3 name.
    pub fn read_dir(
        &self,
        path: &Path,
        cookie: u64,
        out: &mut [u8],
    ) -> Result<(usize, u64), Errno> {
        let r = self.resolve(path)?;
        let cluster = match r.last {
            Last::Dir => r.parent,
            Last::Entry(e) if e.dir => e.cluster,
            Last::Entry(_) => return Err(Errno::ENOTDIR),
            Last::Missing(_) => return Err(Errno::ENOENT),
        };
        let sectors = self.dir_sectors(cluster)?;
        let total = sectors.len() as u64 * PER_SECTOR;
        let mut used = 0;
        let mut gather = Gather::default();
        let mut slot = cookie;
        let end = cookie.saturating_add(SCAN_SLOTS).min(total);
        let mut buf = [0u8; SECTOR];
        let mut held = None;
        while slot < end {
            let s = sectors[(slot / PER_SECTOR) as usize];
            if held != Some(s) {
                self.sector(s, &mut buf).map_err(|_| Errno::EIO)?;
                held = Some(s);
            }
            let at = (slot % PER_SECTOR) as usize * DIR_ENTRY;
            let e = &buf[at..at + DIR_ENTRY];
            match e[0] {
                0 => return Ok((used, DIR_END)),
                0xe5 => gather.at = None,
                _ if e[11] == ATTR_LFN => gather.take(slot, e),
                _ => {
                    let long = gather.name_of(e);
                    let start = long.as_ref().map_or(slot, |l| l.0);
                    let special = e[11] & ATTR_VOLUME != 0
                        || &e[..11] == b".          "
                        || &e[..11] == b"..         ";
                    let id = (s as u32, at as u32);
                    let hidden = self
                        .ids
                        .get(&id)
                        .and_then(|k| self.objects.get(k))
                        .is_some_and(|o| o.unlinked);
                    if !special && !hidden {
                        let is_dir = e[11] & ATTR_DIR != 0;
                        let size = if is_dir { 0 } else { le32(e, 28) };
                        let name = match long {
                            Some((_, n)) if n.len() <= 255 => n,
                            _ => short_display(e),
                        };
                        let need = DIRENT_HEADER + name.len();
                        if used + need > out.len() {
                            return Ok((used, start));
                        }
                        let rec = &mut out[used..used + need];
                        rec[..4].copy_from_slice(&size.to_le_bytes());
                        rec[4] = u8::from(is_dir);
                        rec[5] = name.len() as u8;
                        rec[DIRENT_HEADER..].copy_from_slice(name.as_bytes());
                        used += need;
                    }
                }
            }
            slot += 1;
        }
        if slot >= total {
            return Ok((used, DIR_END));
        }
        // A long name cut by the scan's bound is read again from its start.
        Ok((used, gather.at.map_or(slot, |g| g.0)))
    }
}
