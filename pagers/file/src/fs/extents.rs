//! The disk path of file data: a page-cache block is read and written with one virtio request
//! per run of consecutive clusters (one request for a whole 64 KiB block of a file written
//! sequentially), not sector by sector through `embedded-sdmmc`.
//!
//! The server maps file offsets to disk sectors itself ([`ChainMap`]: the file's cluster
//! chain, followed from the first cluster its directory entry names, kept as runs) and moves
//! the block's sectors with [`BlockDev::read_run`] and [`BlockDev::write_run`], through the
//! crate's `device` (which forgets the one sector the crate holds, so that it never writes
//! back a stale copy). Only bytes the FAT file already has are read or written this way: a
//! write-back that extends the file first gives it the clusters (`fs::grow`), or, for a
//! block past a gap, goes through the crate for the part past the file's disk length, so
//! that the crate allocates the clusters and updates the FAT and the directory entry.
//! Whatever the map cannot say (a file more fragmented than
//! [`fatcheck::MAX_RUNS`] runs, a directory entry that disagrees with the crate's length)
//! goes through the crate as before.

use super::{Object, Volumes};
use crate::blockdev::BlockDev;
use crate::platform::Device;
use fatcheck::{ChainError, ChainMap, FatType, Geometry, MapError, SECTOR};
use proto::Errno;

/// How a transfer went.
pub(super) enum Done {
    /// Every byte moved through the map.
    Mapped,
    /// The map cannot say where the bytes are: the caller goes through the crate.
    Crate,
}

/// Where `o`'s clusters are: its map, made from its directory entry the first time (`None`
/// while the FAT file is empty, or when the entry's size is not the length the crate has:
/// an entry the crate has not written back).
fn map_of<'o, D: Device>(
    v: &Volumes<D>,
    geo: &Geometry,
    o: &'o mut Object,
) -> Option<&'o mut ChainMap> {
    if o.map.is_none() {
        if o.disk_len == 0 {
            return None;
        }
        let mut sector = [0u8; SECTOR];
        v.device(|d: &mut BlockDev<D>| d.read_sector(u64::from(o.id.0), &mut sector))
            .ok()?;
        let at = usize::try_from(o.id.1)
            .ok()
            .filter(|at| at + 32 <= SECTOR)?;
        let e = &sector[at..at + 32];
        let word = |i: usize| u32::from(u16::from_le_bytes([e[i], e[i + 1]]));
        let high = match geo.fat_type {
            FatType::Fat16 => 0,
            FatType::Fat32 => word(20),
        };
        let size = u32::from_le_bytes([e[28], e[29], e[30], e[31]]);
        if u64::from(size) != o.disk_len {
            return None;
        }
        o.map = Some(ChainMap::new((high << 16) | word(26)));
    }
    o.map.as_mut()
}

/// The extents holding bytes `at .. at + len` of `o` (`None`: through the crate).
pub(super) fn extents<D: Device>(
    v: &Volumes<D>,
    geo: &Geometry,
    o: &mut Object,
    at: u64,
    len: usize,
) -> Result<Option<alloc::vec::Vec<(u64, u64)>>, Errno> {
    let Some(map) = map_of(v, geo, o) else {
        return Ok(None);
    };
    let read =
        |s: u64, out: &mut [u8; SECTOR]| v.device(|d: &mut BlockDev<D>| d.read_sector(s, out));
    match map.extents(geo, at, len as u64, read) {
        Ok(extents) => Ok(Some(extents)),
        Err(MapError::Chain(ChainError::Io(_))) => Err(Errno::EIO),
        Err(_) => Ok(None),
    }
}

/// Reads `buf` (whole sectors, within the FAT file's clusters) of `o` at `at`: one request
/// per extent.
pub(super) fn read<D: Device>(
    v: &Volumes<D>,
    geo: &Geometry,
    o: &mut Object,
    at: u64,
    buf: &mut [u8],
) -> Result<Done, Errno> {
    let Some(extents) = extents(v, geo, o, at, buf.len())? else {
        return Ok(Done::Crate);
    };
    let mut done = 0;
    for (sector, n) in extents {
        let len = n as usize * SECTOR;
        let part = buf.get_mut(done..done + len).ok_or(Errno::EIO)?;
        v.device(|d: &mut BlockDev<D>| d.read_run(sector, part))
            .map_err(|_| Errno::EIO)?;
        done += len;
    }
    Ok(Done::Mapped)
}

/// Writes `buf` (whole sectors, within the FAT file's clusters) of `o` at `at`: one request
/// per extent.
pub(super) fn write<D: Device>(
    v: &Volumes<D>,
    geo: &Geometry,
    o: &mut Object,
    at: u64,
    buf: &[u8],
) -> Result<Done, Errno> {
    let Some(extents) = extents(v, geo, o, at, buf.len())? else {
        return Ok(Done::Crate);
    };
    let mut done = 0;
    for (sector, n) in extents {
        let len = n as usize * SECTOR;
        let part = buf.get(done..done + len).ok_or(Errno::EIO)?;
        v.device(|d: &mut BlockDev<D>| d.write_run(sector, part))
            .map_err(|_| Errno::EIO)?;
        done += len;
    }
    Ok(Done::Mapped)
}
