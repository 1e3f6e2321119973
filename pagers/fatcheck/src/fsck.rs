//! A whole-volume consistency check, as `fsck.fat -n` makes it, for tests on the host: what
//! the file server left on a disk (after a run, after it was stopped mid-way and started
//! again) must be a volume nothing has to be repaired on.
//!
//! It checks: the FAT copies are the same; every directory entry's cluster chain is whole
//! (in range, not free, not bad, ending) and no cluster belongs to two chains; a file's
//! chain has exactly the clusters its size needs; a directory's `.` names itself and its
//! `..` its parent; every long-name entry belongs to the 8.3 entry right after its run;
//! every cluster the FAT says is in use belongs to a chain (no lost clusters); and on FAT32
//! the info sector's free-cluster count, when it gives one, is the number of free clusters.

use crate::{DIR_ENTRY, FatType, Geometry, SECTOR, clusters_for, lfn_checksum};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// How deep directories are followed (a loop of directories ends here).
const MAX_NESTING: usize = 64;

/// The FAT32 info sector's signatures and where its free count lies.
const FSINFO_LEAD: u32 = 0x4161_5252;
const FSINFO_STRUC: u32 = 0x6141_7272;
pub const FSINFO_FREE: usize = 488;
/// "Not known" as a free count.
pub const FSINFO_UNKNOWN: u32 = 0xffff_ffff;

/// What is wrong with the volume of geometry `g` whose sectors `read` gives (absolute
/// sector numbers): empty when nothing. Reading fails: that is said, and the check ends.
pub fn check<E>(
    g: &Geometry,
    mut read: impl FnMut(u64, &mut [u8; SECTOR]) -> Result<(), E>,
) -> Vec<String> {
    let mut c = Checker {
        g,
        fat: Vec::new(),
        owner: vec![false; g.clusters as usize + 2],
        problems: Vec::new(),
    };
    if c.load_fats(&mut read).is_err() {
        return vec![String::from("cannot read the FATs")];
    }
    let root = match g.fat_type {
        FatType::Fat16 => Dir::Fixed,
        FatType::Fat32 => Dir::Chain(g.root_cluster),
    };
    if let Dir::Chain(rc) = root {
        c.claim_chain(rc, "the root directory", None);
    }
    if c.walk_dir(&mut read, root, 0, "", 0).is_err() {
        c.problems.push(String::from("cannot read a directory"));
    }
    c.lost();
    if g.fat_type == FatType::Fat32 && c.fsinfo(&mut read).is_err() {
        c.problems.push(String::from("cannot read the info sector"));
    }
    c.problems
}

/// The number of free clusters the FAT (the first copy) says there are.
pub fn free_clusters<E>(
    g: &Geometry,
    mut read: impl FnMut(u64, &mut [u8; SECTOR]) -> Result<(), E>,
) -> Result<u32, E> {
    let mut free = 0;
    let mut buf = [0u8; SECTOR];
    let mut held = None;
    for cl in 2..g.clusters.saturating_add(2) {
        let (s, at) = g.fat_entry_at(cl);
        if held != Some(s) {
            read(s, &mut buf)?;
            held = Some(s);
        }
        if entry(g, &buf, at) == 0 {
            free += 1;
        }
    }
    Ok(free)
}

fn entry(g: &Geometry, b: &[u8], at: usize) -> u32 {
    match g.fat_type {
        FatType::Fat16 => u32::from(u16::from_le_bytes([b[at], b[at + 1]])),
        FatType::Fat32 => {
            u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) & 0x0fff_ffff
        }
    }
}

#[derive(Clone, Copy)]
enum Dir {
    /// FAT16's fixed root region.
    Fixed,
    Chain(u32),
}

struct Checker<'g> {
    g: &'g Geometry,
    /// The first FAT's entries, by cluster.
    fat: Vec<u32>,
    /// Clusters some chain holds.
    owner: Vec<bool>,
    problems: Vec<String>,
}

impl Checker<'_> {
    fn say(&mut self, what: String) {
        // Enough to see what is wrong; a wrecked volume would say it a million times.
        if self.problems.len() < 32 {
            self.problems.push(what);
        }
    }

    fn load_fats<E>(
        &mut self,
        read: &mut impl FnMut(u64, &mut [u8; SECTOR]) -> Result<(), E>,
    ) -> Result<(), E> {
        let g = self.g;
        let mut first = Vec::new();
        let mut buf = [0u8; SECTOR];
        for s in 0..g.fat_sectors {
            read(g.fat_start + s, &mut buf)?;
            first.extend_from_slice(&buf);
        }
        for copy in 1..g.fats {
            for s in 0..g.fat_sectors {
                read(g.fat_start + copy * g.fat_sectors + s, &mut buf)?;
                let at = (s as usize) * SECTOR;
                if buf[..] != first[at..at + SECTOR] {
                    self.say(format!(
                        "FAT copy {copy} differs from the first in FAT sector {s}"
                    ));
                    break;
                }
            }
        }
        let width = match g.fat_type {
            FatType::Fat16 => 2,
            FatType::Fat32 => 4,
        };
        self.fat = (0..g.clusters as usize + 2)
            .map(|cl| entry(g, &first, cl * width))
            .collect();
        Ok(())
    }

    fn end(&self) -> u32 {
        match self.g.fat_type {
            FatType::Fat16 => 0xfff8,
            FatType::Fat32 => 0x0fff_fff8,
        }
    }

    fn bad(&self) -> u32 {
        match self.g.fat_type {
            FatType::Fat16 => 0xfff7,
            FatType::Fat32 => 0x0fff_fff7,
        }
    }

    /// Follows the chain from `first`, marking its clusters held: its clusters (as far as
    /// it is whole).
    fn claim_chain(&mut self, first: u32, what: &str, _size: Option<u64>) -> Vec<u32> {
        let mut chain = Vec::new();
        let mut cl = first;
        loop {
            if !self.g.in_range(cl) {
                self.say(format!("{what}: cluster {cl} out of range"));
                return chain;
            }
            if self.owner[cl as usize] {
                self.say(format!(
                    "{what}: cluster {cl} is in another chain too (cross-linked)"
                ));
                return chain;
            }
            self.owner[cl as usize] = true;
            chain.push(cl);
            let next = self.fat[cl as usize];
            if next == 0 {
                self.say(format!("{what}: the chain runs into free cluster {cl}"));
                return chain;
            }
            if next == self.bad() {
                self.say(format!("{what}: the chain runs into bad cluster {cl}"));
                return chain;
            }
            if next >= self.end() {
                return chain;
            }
            cl = next;
        }
    }

    /// The bytes of directory `dir`.
    fn dir_bytes<E>(
        &mut self,
        read: &mut impl FnMut(u64, &mut [u8; SECTOR]) -> Result<(), E>,
        sectors: &[u64],
    ) -> Result<Vec<u8>, E> {
        let mut out = Vec::with_capacity(sectors.len() * SECTOR);
        let mut buf = [0u8; SECTOR];
        for &s in sectors {
            read(s, &mut buf)?;
            out.extend_from_slice(&buf);
        }
        Ok(out)
    }

    fn sectors_of(&self, chain: &[u32]) -> Vec<u64> {
        let mut out = Vec::new();
        for &cl in chain {
            if let Some(first) = self.g.cluster_sector(cl) {
                out.extend(first..first + self.g.sectors_per_cluster);
            }
        }
        out
    }

    fn walk_dir<E>(
        &mut self,
        read: &mut impl FnMut(u64, &mut [u8; SECTOR]) -> Result<(), E>,
        dir: Dir,
        cluster: u32,
        path: &str,
        depth: usize,
    ) -> Result<(), E> {
        if depth > MAX_NESTING {
            self.say(format!("{path}: directories nested too deep (a loop?)"));
            return Ok(());
        }
        let sectors = match dir {
            Dir::Fixed => (self.g.root_start..self.g.root_start + self.g.root_sectors).collect(),
            Dir::Chain(first) => {
                // Already claimed by the caller; follow it again without claiming.
                let mut chain = Vec::new();
                let mut cl = first;
                while self.g.in_range(cl) && chain.len() <= self.g.clusters as usize {
                    chain.push(cl);
                    let next = self.fat[cl as usize];
                    if next == 0 || next >= self.bad() {
                        break;
                    }
                    cl = next;
                }
                self.sectors_of(&chain)
            }
        };
        let bytes = self.dir_bytes(read, &sectors)?;
        // The long-name run waiting for its 8.3 entry: checksums.
        let mut pending: Vec<u8> = Vec::new();
        let mut subdirs = Vec::new();
        for (i, e) in bytes.chunks_exact(DIR_ENTRY).enumerate() {
            if e[0] == 0 {
                break;
            }
            if e[0] == 0xe5 {
                if !pending.is_empty() {
                    self.say(format!("{path}: long-name entries without their 8.3 entry"));
                    pending.clear();
                }
                continue;
            }
            let attr = e[11];
            if attr & 0x3f == 0x0f {
                pending.push(e[13]);
                continue;
            }
            let mut short = [0u8; 11];
            short.copy_from_slice(&e[..11]);
            let sum = lfn_checksum(&short);
            if pending.iter().any(|&s| s != sum) {
                self.say(format!(
                    "{path}: long-name entries whose checksum is not their 8.3 entry's"
                ));
            }
            pending.clear();
            if attr & 0x08 != 0 {
                continue; // the volume label
            }
            let name = String::from_utf8_lossy(&short).into_owned();
            let high = match self.g.fat_type {
                FatType::Fat16 => 0,
                FatType::Fat32 => u32::from(u16::from_le_bytes([e[20], e[21]])),
            };
            let first = (high << 16) | u32::from(u16::from_le_bytes([e[26], e[27]]));
            let size = u64::from(u32::from_le_bytes([e[28], e[29], e[30], e[31]]));
            let is_dir = attr & 0x10 != 0;
            if short == *b".          " {
                if i != 0 || first != cluster {
                    self.say(format!("{path}: `.` does not name the directory"));
                }
                continue;
            }
            if short == *b"..         " {
                continue;
            }
            let what = format!("{path}/{}", name.trim_end());
            if first == 0 {
                if is_dir {
                    self.say(format!("{what}: a directory without a cluster"));
                } else if size != 0 {
                    self.say(format!("{what}: {size} bytes but no cluster"));
                }
                continue;
            }
            let chain = self.claim_chain(first, &what, Some(size));
            if is_dir {
                subdirs.push((first, what));
            } else {
                let need = clusters_for(size, self.g.cluster_bytes());
                if chain.len() as u64 != need {
                    self.say(format!(
                        "{what}: {size} bytes in a chain of {} clusters (it needs {need})",
                        chain.len()
                    ));
                }
            }
        }
        if !pending.is_empty() {
            self.say(format!(
                "{path}: long-name entries at the end without their 8.3 entry"
            ));
        }
        for (first, what) in subdirs {
            self.check_dots(read, first, cluster, &what)?;
            self.walk_dir(read, Dir::Chain(first), first, &what, depth + 1)?;
        }
        Ok(())
    }

    /// `..` of directory `first` must name `parent` (0 for the root).
    fn check_dots<E>(
        &mut self,
        read: &mut impl FnMut(u64, &mut [u8; SECTOR]) -> Result<(), E>,
        first: u32,
        parent: u32,
        what: &str,
    ) -> Result<(), E> {
        let Some(s) = self.g.cluster_sector(first) else {
            return Ok(());
        };
        let mut buf = [0u8; SECTOR];
        read(s, &mut buf)?;
        let dotdot = &buf[DIR_ENTRY..2 * DIR_ENTRY];
        let high = match self.g.fat_type {
            FatType::Fat16 => 0,
            FatType::Fat32 => u32::from(u16::from_le_bytes([dotdot[20], dotdot[21]])),
        };
        let named = (high << 16) | u32::from(u16::from_le_bytes([dotdot[26], dotdot[27]]));
        let parent = if parent == self.g.root_cluster {
            0
        } else {
            parent
        };
        if &dotdot[..11] != b"..         " || named != parent {
            self.say(format!("{what}: `..` does not name its parent"));
        }
        Ok(())
    }

    /// Clusters in use that no chain holds.
    fn lost(&mut self) {
        let bad = self.bad();
        let lost = (2..self.fat.len())
            .filter(|&cl| self.fat[cl] != 0 && self.fat[cl] != bad && !self.owner[cl])
            .count();
        if lost > 0 {
            self.say(format!(
                "{lost} clusters in use by no file or directory (lost)"
            ));
        }
    }

    fn fsinfo<E>(
        &mut self,
        read: &mut impl FnMut(u64, &mut [u8; SECTOR]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut bpb = [0u8; SECTOR];
        read(self.g.part_start, &mut bpb)?;
        let info = u64::from(u16::from_le_bytes([bpb[48], bpb[49]]));
        let mut buf = [0u8; SECTOR];
        read(self.g.part_start + info, &mut buf)?;
        let word = |at: usize| u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        if word(0) != FSINFO_LEAD || word(484) != FSINFO_STRUC {
            self.say(String::from("the info sector has no signature"));
            return Ok(());
        }
        let said = word(FSINFO_FREE);
        let free = self.fat[2..].iter().filter(|&&v| v == 0).count() as u32;
        if said != FSINFO_UNKNOWN && said != free {
            self.say(format!(
                "the info sector says {said} free clusters; the FAT has {free}"
            ));
        }
        Ok(())
    }
}

/// Mends two quirks of the `fatfs` crate 0.3 (which the host tools make images with),
/// which `fsck.fat` repairs: it writes a long-name entry before a new directory's `.` and
/// before its `..`, so `.` is not in the directory's first slot; and on FAT32 the `..` of a
/// directory in the root names the root's cluster, where it must be 0. Every directory
/// whose first sector starts that way gets `.` and `..` in slots 0 and 1 and the two
/// long-name slots marked deleted; every `..` naming the FAT32 root gets 0. `part` is the volume's bytes from the partition's first sector on.
pub fn tidy_dot_entries(g: &Geometry, part: &mut [u8]) {
    let base = g.part_start;
    let at = |s: u64| ((s - base) as usize) * SECTOR;
    let width = match g.fat_type {
        FatType::Fat16 => 2,
        FatType::Fat32 => 4,
    };
    let fat = at(g.fat_start);
    let next = |part: &[u8], cl: u32| -> Option<u32> {
        let i = fat + cl as usize * width;
        let v = entry(g, part.get(i..i + width)?, 0);
        g.in_range(v).then_some(v)
    };
    // Directories to look into: (first cluster, or 0 for FAT16's root), bounded.
    let mut todo: Vec<u32> = vec![match g.fat_type {
        FatType::Fat16 => 0,
        FatType::Fat32 => g.root_cluster,
    }];
    // (directory, its parent), for the `..` check.
    let mut parents: Vec<(u32, u32)> = Vec::new();
    let mut seen = 0;
    while let Some(dir) = todo.pop() {
        seen += 1;
        if seen > 4096 {
            return;
        }
        let mut sectors: Vec<u64> = Vec::new();
        if dir == 0 {
            sectors.extend(g.root_start..g.root_start + g.root_sectors);
        } else {
            let mut cl = dir;
            for _ in 0..64 {
                let Some(first) = g.cluster_sector(cl) else {
                    break;
                };
                sectors.extend(first..first + g.sectors_per_cluster);
                match next(part, cl) {
                    Some(n) => cl = n,
                    None => break,
                }
            }
        }
        if dir != 0 && dir != g.root_cluster {
            let s = at(sectors[0]);
            if let Some(first) = part.get_mut(s..s + SECTOR) {
                let lfn = |e: &[u8]| e[11] == 0x0f && e[0] != 0xe5;
                if lfn(&first[0..32])
                    && &first[32..43] == b".          "
                    && lfn(&first[64..96])
                    && &first[96..107] == b"..         "
                {
                    let (dot, dotdot) = (first[32..64].to_vec(), first[96..128].to_vec());
                    first[0..32].copy_from_slice(&dot);
                    first[32..64].copy_from_slice(&dotdot);
                    first[64..96].fill(0);
                    first[64] = 0xe5;
                    first[96..128].fill(0);
                    first[96] = 0xe5;
                }
                let dotdot = &mut first[32..64];
                let named = (u32::from(u16::from_le_bytes([dotdot[20], dotdot[21]])) << 16)
                    | u32::from(u16::from_le_bytes([dotdot[26], dotdot[27]]));
                if g.fat_type == FatType::Fat32
                    && &dotdot[..11] == b"..         "
                    && named == g.root_cluster
                    && parents.contains(&(dir, g.root_cluster))
                {
                    dotdot[20..22].fill(0);
                    dotdot[26..28].fill(0);
                }
            }
        }
        for &s in &sectors {
            let s = at(s);
            let Some(bytes) = part.get(s..s + SECTOR) else {
                continue;
            };
            for e in bytes.chunks_exact(DIR_ENTRY) {
                if e[0] == 0 {
                    break;
                }
                if e[0] == 0xe5 || e[11] & 0x3f == 0x0f || e[11] & 0x10 == 0 || e[0] == b'.' {
                    continue;
                }
                let high = if width == 4 {
                    u32::from(u16::from_le_bytes([e[20], e[21]]))
                } else {
                    0
                };
                let cl = (high << 16) | u32::from(u16::from_le_bytes([e[26], e[27]]));
                if g.in_range(cl) {
                    todo.push(cl);
                    let parent = if dir == 0 { g.root_cluster } else { dir };
                    parents.push((cl, parent));
                }
            }
        }
    }
}
