//! Host tests: boot sectors as a formatter writes them and as an attacker might, FAT chains
//! that end, loop or wander off.

extern crate std;

use super::*;
use std::vec;
use std::vec::Vec;

/// A FAT16 boot sector like the tools' 64 MiB image: 4 KiB clusters, 2 FATs of 64 sectors,
/// 512 root entries, 129,024 sectors.
fn bpb16() -> [u8; SECTOR] {
    let mut b = [0u8; SECTOR];
    b[11..13].copy_from_slice(&512u16.to_le_bytes());
    b[13] = 8;
    b[14..16].copy_from_slice(&4u16.to_le_bytes());
    b[16] = 2;
    b[17..19].copy_from_slice(&512u16.to_le_bytes());
    b[19..21].copy_from_slice(&0u16.to_le_bytes());
    b[22..24].copy_from_slice(&64u16.to_le_bytes());
    b[32..36].copy_from_slice(&129_024u32.to_le_bytes());
    b[510] = 0x55;
    b[511] = 0xaa;
    b
}

/// A FAT32 boot sector: 512-byte clusters, 100,000 clusters.
fn bpb32() -> [u8; SECTOR] {
    let mut b = [0u8; SECTOR];
    b[11..13].copy_from_slice(&512u16.to_le_bytes());
    b[13] = 1;
    b[14..16].copy_from_slice(&32u16.to_le_bytes());
    b[16] = 2;
    b[32..36].copy_from_slice(&(32 + 2 * 800 + 100_000u32).to_le_bytes());
    b[36..40].copy_from_slice(&800u32.to_le_bytes());
    b[44..48].copy_from_slice(&2u32.to_le_bytes());
    b[48..50].copy_from_slice(&1u16.to_le_bytes());
    b[510] = 0x55;
    b[511] = 0xaa;
    b
}

#[test]
fn a_formatted_fat16_volume_is_accepted() {
    let g = Geometry::parse(&bpb16(), 2048, 129_024).unwrap();
    assert_eq!(g.fat_type, FatType::Fat16);
    assert_eq!(g.fat_start, 2048 + 4);
    assert_eq!(g.root_start, 2048 + 4 + 128);
    assert_eq!(g.data_start, 2048 + 4 + 128 + 32);
    assert_eq!(g.clusters, (129_024 - 4 - 128 - 32) / 8);
    assert_eq!(g.cluster_bytes(), 4096);
    assert_eq!(g.cluster_sector(2), Some(g.data_start));
    assert_eq!(g.cluster_sector(1), None);
    assert_eq!(g.cluster_sector(g.clusters + 2), None);
}

#[test]
fn a_formatted_fat32_volume_is_accepted() {
    let g = Geometry::parse(&bpb32(), 0, 200_000).unwrap();
    assert_eq!(g.fat_type, FatType::Fat32);
    assert_eq!(g.clusters, 100_000);
    assert_eq!(g.root_cluster, 2);
}

#[test]
fn damaged_boot_sectors_are_refused() {
    let cases: &[(usize, &[u8], &str)] = &[
        (13, &[0], "sectors per cluster"),
        (13, &[3], "sectors per cluster"),
        (13, &[255], "sectors per cluster"),
        (11, &[0, 4], "bytes per sector"),
        (11, &[0, 0], "bytes per sector"),
        (16, &[0], "FAT count"),
        (16, &[3], "FAT count"),
        (14, &[0, 0], "reserved"),
        (22, &[0, 0], "zero total or FAT"),
        (22, &[1, 0], "FAT too short"),
        (22, &[0xff, 0xff], "no room"),
        (32, &[0xff, 0xff, 0xff, 0xff], "larger than its partition"),
        (32, &[0, 0, 0, 0], "zero total"),
        (17, &[1, 0], "whole sectors"),
        (510, &[0, 0], "signature"),
    ];
    for (at, bytes, why) in cases {
        let mut b = bpb16();
        b[*at..*at + bytes.len()].copy_from_slice(bytes);
        let err = Geometry::parse(&b, 2048, 129_024).expect_err(why);
        assert!(err.contains(why), "{at}: {err} (want {why})");
    }
    // Few clusters: FAT12.
    let mut b = bpb16();
    b[32..36].copy_from_slice(&20_000u32.to_le_bytes());
    assert!(
        Geometry::parse(&b, 2048, 129_024)
            .unwrap_err()
            .contains("FAT12")
    );
    // FAT32 root cluster and info sector.
    for (at, bytes) in [
        (44, &[0u8, 0, 0, 0][..]),
        (44, &[0xff, 0xff, 0xff, 0x0f]),
        (48, &[0, 0]),
        (48, &[32, 0]),
    ] {
        let mut b = bpb32();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        assert!(Geometry::parse(&b, 0, 200_000).is_err(), "{at}");
    }
}

#[test]
fn partition_tables_are_checked() {
    let mut mbr = [0u8; SECTOR];
    mbr[446 + 4] = 0x0e;
    mbr[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
    mbr[446 + 12..446 + 16].copy_from_slice(&129_024u32.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    assert_eq!(first_partition(&mbr, 131_072), Ok((2048, 129_024)));
    assert!(first_partition(&mbr, 131_071).is_err());
    let mut m = mbr;
    m[446 + 4] = 0x83;
    assert!(first_partition(&m, 131_072).is_err());
    let mut m = mbr;
    m[446 + 12..446 + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(first_partition(&m, 131_072).is_err());
    let mut m = mbr;
    m[511] = 0;
    assert!(first_partition(&m, 131_072).is_err());
}

/// A FAT16 FAT in memory, for `walk_chain`.
struct Fat {
    g: Geometry,
    sectors: Vec<[u8; SECTOR]>,
}

impl Fat {
    fn new() -> Self {
        let g = Geometry::parse(&bpb16(), 0, 129_024).unwrap();
        Fat {
            sectors: vec![[0u8; SECTOR]; g.fat_sectors as usize],
            g,
        }
    }
    fn set(&mut self, c: u32, v: u16) {
        let (s, at) = self.g.fat_entry_at(c);
        self.sectors[(s - self.g.fat_start) as usize][at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn walk(&self, first: u32, max: u64) -> (Result<u64, ChainError<()>>, Vec<u32>) {
        let mut seen = Vec::new();
        let r = self.g.walk_chain(
            first,
            max,
            |s, out| {
                let i = s.checked_sub(self.g.fat_start).ok_or(())?;
                *out = *self.sectors.get(i as usize).ok_or(())?;
                Ok(())
            },
            |c| seen.push(c),
        );
        (r, seen)
    }
}

#[test]
fn chains_end_where_the_fat_says() {
    let mut f = Fat::new();
    f.set(5, 6);
    f.set(6, 300); // across a FAT sector
    f.set(300, 0xffff);
    assert_eq!(f.walk(5, u64::MAX), (Ok(3), vec![5, 6, 300]));
    assert_eq!(f.walk(300, 1), (Ok(1), vec![300]));
    assert_eq!(f.walk(5, 2).0, Err(ChainError::TooLong(5)));
}

#[test]
fn loops_and_stray_links_are_errors() {
    let mut f = Fat::new();
    f.set(7, 7); // a cluster chained to itself
    assert_eq!(f.walk(7, u64::MAX).0, Err(ChainError::TooLong(7)));
    f.set(8, 9);
    f.set(9, 8); // a two-cluster loop
    assert_eq!(f.walk(8, u64::MAX).0, Err(ChainError::TooLong(8)));
    f.set(10, 11); // 11 is free
    assert_eq!(f.walk(10, u64::MAX).0, Err(ChainError::Free(11)));
    f.set(12, 0xfff7);
    assert_eq!(f.walk(12, u64::MAX).0, Err(ChainError::Bad(12)));
    f.set(13, 1);
    assert_eq!(f.walk(13, u64::MAX).0, Err(ChainError::OutOfRange(13, 1)));
    f.set(14, 0xfff0); // past the last cluster
    assert_eq!(
        f.walk(14, u64::MAX).0,
        Err(ChainError::OutOfRange(14, 0xfff0))
    );
    assert_eq!(f.walk(0, u64::MAX).0, Err(ChainError::OutOfRange(0, 0)));
    assert_eq!(f.walk(1, u64::MAX).0, Err(ChainError::OutOfRange(0, 1)));
}

#[test]
fn long_name_entries_are_recognised() {
    let short = *b"AL4VER~1TXT";
    let sum = lfn_checksum(&short);
    let mut e = [0u8; 32];
    e[0] = 0x41;
    e[11] = 0x0f;
    e[13] = sum;
    assert!(is_lfn_of(&e, 1, sum));
    assert!(!is_lfn_of(&e, 2, sum));
    assert!(!is_lfn_of(&e, 1, sum.wrapping_add(1)));
    e[0] = 0xe5;
    assert!(!is_lfn_of(&e, 1, sum));
    e[0] = 0x01;
    e[11] = 0x20;
    assert!(!is_lfn_of(&e, 1, sum));
}

#[test]
fn path_components() {
    let c: Vec<Component> = components("/bin/../bin/./hello//").unwrap().collect();
    assert_eq!(
        c,
        [
            Component::Name("bin"),
            Component::Up,
            Component::Name("bin"),
            Component::Here,
            Component::Name("hello"),
        ]
    );
    let deep = "a/".repeat(MAX_DEPTH + 1);
    assert!(components(&deep).is_none());
    assert_eq!(components("").unwrap().count(), 0);
}

#[test]
fn cluster_counts() {
    assert_eq!(clusters_for(0, 4096), 0);
    assert_eq!(clusters_for(1, 4096), 1);
    assert_eq!(clusters_for(4096, 4096), 1);
    assert_eq!(clusters_for(4097, 4096), 2);
    assert_eq!(clusters_for(u64::MAX, 0), u64::MAX);
}

#[test]
fn short_names_compare_without_case() {
    assert!(is_short_name(b"HELLO", b"TXT", "hello.txt"));
    assert!(is_short_name(b"HELLO", b"TXT", "Hello.TXT"));
    assert!(is_short_name(b"LONG-F~1", b"TXT", "long-f~1.txt"));
    assert!(is_short_name(b"BIN", b"", "bin"));
    assert!(!is_short_name(b"BIN", b"", "bin."));
    assert!(!is_short_name(b"HELLO", b"TXT", "hello"));
    assert!(!is_short_name(b"HELLO", b"TXT", "hellootxt"));
    assert!(!is_short_name(b"HELLO", b"TXT", "hello.txt2"));
    assert!(!is_short_name(b"", b"", ""));
}

impl Fat {
    fn map(&self, m: &mut ChainMap, at: u64, len: u64) -> Result<Vec<(u64, u64)>, MapError<()>> {
        m.extents(&self.g, at, len, |s, out| {
            let i = s.checked_sub(self.g.fat_start).ok_or(())?;
            *out = *self.sectors.get(i as usize).ok_or(())?;
            Ok(())
        })
    }
}

#[test]
fn consecutive_clusters_are_one_extent() {
    let mut f = Fat::new();
    // 32 clusters from 10 on: a 128 KiB file written in one go (4 KiB clusters).
    for c in 10..41 {
        f.set(c, (c + 1) as u16);
    }
    f.set(41, 0xffff);
    let mut m = ChainMap::new(10);
    let s10 = f.g.cluster_sector(10).unwrap();
    assert_eq!(f.map(&mut m, 0, 65536), Ok(vec![(s10, 128)]));
    assert_eq!(f.map(&mut m, 65536, 65536), Ok(vec![(s10 + 128, 128)]));
    assert_eq!(m.runs(), 1);
    // A tail that is not a whole sector is rounded up; a range inside a cluster.
    assert_eq!(f.map(&mut m, 65536, 700), Ok(vec![(s10 + 128, 2)]));
    assert_eq!(f.map(&mut m, 4096 + 512, 512), Ok(vec![(s10 + 9, 1)]));
    // Past the chain's end; misaligned or empty ranges.
    assert_eq!(f.map(&mut m, 65536, 65537), Err(MapError::Short));
    assert_eq!(f.map(&mut m, 100, 512), Err(MapError::Range));
    assert_eq!(f.map(&mut m, 0, 0), Err(MapError::Range));
    assert_eq!(f.map(&mut m, u64::MAX - 511, 512), Err(MapError::Range));
}

#[test]
fn fragmented_chains_split_and_grow() {
    let mut f = Fat::new();
    // 5, 6, then 20, 21, then 8: three runs.
    f.set(5, 6);
    f.set(6, 20);
    f.set(20, 21);
    f.set(21, 8);
    f.set(8, 0xffff);
    let mut m = ChainMap::new(5);
    let g = f.g;
    let s = |c| g.cluster_sector(c).unwrap();
    assert_eq!(
        f.map(&mut m, 0, 5 * 4096),
        Ok(vec![(s(5), 16), (s(20), 16), (s(8), 8)])
    );
    assert_eq!(
        f.map(&mut m, 4096, 2 * 4096),
        Ok(vec![(s(6), 8), (s(20), 8)])
    );
    assert_eq!(m.runs(), 3);
    // The chain grows after the last cluster: the map reads its link again.
    assert_eq!(f.map(&mut m, 5 * 4096, 4096), Err(MapError::Short));
    f.set(8, 9);
    f.set(9, 0xffff);
    assert_eq!(f.map(&mut m, 4 * 4096, 2 * 4096), Ok(vec![(s(8), 16)]));
    assert_eq!(m.runs(), 3);
}

#[test]
fn damaged_chains_do_not_map() {
    let mut f = Fat::new();
    f.set(7, 7); // a loop: one more run a cluster
    assert_eq!(
        f.map(&mut ChainMap::new(7), 0, 1 << 30),
        Err(MapError::Fragmented)
    );
    let mut f = Fat::new();
    for c in 2..2000 {
        f.set(c, (c + 1) as u16);
    }
    f.set(2000, 2); // a loop of long runs: ended by the volume's cluster count
    assert_eq!(
        f.map(&mut ChainMap::new(2), 0, 1 << 30),
        Err(MapError::Chain(ChainError::TooLong(2)))
    );
    let mut f = Fat::new();
    f.set(8, 9); // into a free cluster (seen when its link is read)
    assert_eq!(
        f.map(&mut ChainMap::new(8), 0, 3 * 4096),
        Err(MapError::Chain(ChainError::Free(9)))
    );
    f.set(10, 60_000); // out of range
    assert_eq!(
        f.map(&mut ChainMap::new(10), 0, 2 * 4096),
        Err(MapError::Chain(ChainError::OutOfRange(10, 60_000)))
    );
    assert_eq!(
        f.map(&mut ChainMap::new(0), 0, 4096),
        Err(MapError::Chain(ChainError::OutOfRange(0, 0)))
    );
    // Every other cluster: more runs than kept.
    let mut f = Fat::new();
    let n = (MAX_RUNS as u32 + 2) * 2;
    for c in (2..n).step_by(2) {
        f.set(c, (c + 2) as u16);
    }
    f.set(n, 0xffff);
    assert_eq!(
        f.map(&mut ChainMap::new(2), 0, u64::from(n) * 2048),
        Err(MapError::Fragmented)
    );
}
