//! Host tests of the directory calls (`crate::fs::dirs`): long names written by the server
//! and read back by `fatfs`, names `fatfs` wrote found by the server, `mkdir`, `rmdir`,
//! `rename`, `ReadDir` and their errors.

use super::host::{PART_BYTES, image, mount, pattern};
use crate::fs::Files;
use proto::Errno;
use proto::file::{DIR_END, Path, READ_MAX, dirents, open_flags as of};
use std::string::{String, ToString};
use std::vec::Vec;

const A: u64 = 10;

fn path(s: &str) -> Path {
    Path::new(s).expect("a path")
}

fn open(f: &mut Files<super::host::Host>, p: &str, flags: u64) -> Result<u64, Errno> {
    f.open(A, &path(p), flags).map(|(fd, _)| fd)
}

/// Creates `p` holding `bytes`, and closes it.
fn put(f: &mut Files<super::host::Host>, p: &str, bytes: &[u8]) {
    let fd = open(f, p, of::CREAT | of::RDWR).expect("create");
    f.write(A, fd, 0, bytes.len() as u64, bytes)
        .ok()
        .expect("write");
    f.close(A, fd).expect("close");
}

/// Every entry of `dir` through `ReadDir`, `room` bytes per call: (name, size, is_dir),
/// sorted; and the number of calls.
fn listing(
    f: &Files<super::host::Host>,
    dir: &str,
    room: usize,
) -> (Vec<(String, u64, bool)>, usize) {
    let mut all = Vec::new();
    let mut cookie = 0;
    let mut calls = 0;
    while cookie != DIR_END {
        let mut buf = std::vec![0u8; room];
        let (n, next) = f.read_dir(&path(dir), cookie, &mut buf).expect("read_dir");
        calls += 1;
        assert!(calls < 10_000, "the listing ends");
        all.extend(dirents(&buf[..n]).map(|(name, size, d)| (name.to_string(), size, d)));
        cookie = next;
    }
    all.sort();
    (all, calls)
}

#[test]
fn long_names_written_by_the_server_are_read_by_fatfs_and_the_other_way() {
    let img = image(
        &[
            ("Written by fatfs.txt", b"from the host"),
            ("Host Dir/inner long name.dat", b"inner"),
        ],
        0,
    );
    let (mut f, d) = mount(img, 8, false);
    // fatfs's long names: found by long name (any case) and by 8.3 name.
    let fd = open(&mut f, "written BY fatfs.TXT", of::RDONLY).unwrap();
    f.close(A, fd).unwrap();
    assert_eq!(
        f.stat(&path("Host Dir/inner long name.dat")),
        Ok((5, false))
    );
    assert_eq!(f.stat(&path("HOSTDI~1/INNERL~1.DAT")), Ok((5, false)));
    // The server's long names.
    put(&mut f, "A long file name.txt", b"long one");
    put(&mut f, "lower.txt", b"lower");
    put(&mut f, "A long file name 2.txt", b"long two");
    put(&mut f, "PLAIN.TXT", b"plain");
    put(&mut f, "Host Dir/second file in dir.bin", &pattern(3, 3000));
    assert_eq!(
        d.synced(&mut f).file("A long file name.txt").as_deref(),
        Some(&b"long one"[..])
    );
    assert_eq!(
        d.synced(&mut f).file("A long file name 2.txt").as_deref(),
        Some(&b"long two"[..])
    );
    assert_eq!(
        d.synced(&mut f).file("lower.txt").as_deref(),
        Some(&b"lower"[..])
    );
    assert_eq!(
        d.synced(&mut f).file("Host Dir/second file in dir.bin"),
        Some(pattern(3, 3000))
    );
    let root = d.synced(&mut f).list("");
    let names: Vec<(&str, &str)> = root
        .iter()
        .map(|(l, s, _)| (l.as_str(), s.as_str()))
        .collect();
    assert!(
        names.contains(&("A long file name.txt", "ALONGF~1.TXT")),
        "{names:?}"
    );
    assert!(
        names.contains(&("A long file name 2.txt", "ALONGF~2.TXT")),
        "{names:?}"
    );
    assert!(names.contains(&("lower.txt", "LOWER.TXT")), "{names:?}");
    assert!(names.contains(&("PLAIN.TXT", "PLAIN.TXT")), "{names:?}");
    // Found again by the server, by either name, and removed with every entry.
    assert_eq!(f.stat(&path("a LONG file name.txt")), Ok((8, false)));
    assert_eq!(f.stat(&path("ALONGF~2.TXT")), Ok((8, false)));
    f.unlink(&path("A long file name.txt")).unwrap();
    assert_eq!(f.stat(&path("A long file name.txt")), Err(Errno::ENOENT));
    assert!(
        !d.synced(&mut f)
            .list("")
            .iter()
            .any(|e| e.0 == "A long file name.txt")
    );
    // Its slots are used again for a longer name (or the directory grows).
    put(&mut f, "a name that is rather longer than thirty", b"x");
    assert_eq!(
        d.synced(&mut f)
            .file("a name that is rather longer than thirty")
            .as_deref(),
        Some(&b"x"[..])
    );
    assert_eq!(d.synced(&mut f).fsck(), Vec::<String>::new());
}

#[test]
fn bad_names_are_einval_and_every_error_is_clear() {
    let (mut f, d) = mount(image(&[("F.TXT", b"f"), ("D/G.TXT", b"g")], 0), 8, false);
    for bad in ["a*b", "what?", "x|y", "ends with dot.", "ends with space "] {
        assert_eq!(
            open(&mut f, bad, of::CREAT | of::RDWR),
            Err(Errno::EINVAL),
            "{bad}"
        );
        assert_eq!(f.mkdir(&path(bad)), Err(Errno::EINVAL), "{bad}");
    }
    assert_eq!(f.mkdir(&path("F.TXT")), Err(Errno::EEXIST));
    assert_eq!(f.mkdir(&path("d")), Err(Errno::EEXIST));
    assert_eq!(f.mkdir(&path("F.TXT/sub")), Err(Errno::ENOTDIR));
    assert_eq!(f.mkdir(&path("none/sub")), Err(Errno::ENOENT));
    assert_eq!(f.rmdir(&path("F.TXT")), Err(Errno::ENOTDIR));
    assert_eq!(f.rmdir(&path("none")), Err(Errno::ENOENT));
    assert_eq!(f.rmdir(&path("D")), Err(Errno::ENOTEMPTY));
    assert_eq!(f.rmdir(&path("/")), Err(Errno::EBUSY));
    assert_eq!(
        f.read_dir(&path("F.TXT"), 0, &mut [0; 64]),
        Err(Errno::ENOTDIR)
    );
    assert_eq!(
        f.read_dir(&path("none"), 0, &mut [0; 64]),
        Err(Errno::ENOENT)
    );
    // A forged cookie past the end ends the listing.
    assert_eq!(
        f.read_dir(&path("D"), u64::MAX - 1, &mut [0; 64]),
        Ok((0, DIR_END))
    );
    assert_eq!(f.rename(&path("none"), &path("x")), Err(Errno::ENOENT));
    assert_eq!(f.rename(&path("F.TXT"), &path("D")), Err(Errno::EISDIR));
    assert_eq!(f.rename(&path("D"), &path("F.TXT")), Err(Errno::ENOTDIR));
    assert_eq!(f.rename(&path("D"), &path("D/inside")), Err(Errno::EINVAL));
    assert_eq!(
        f.rename(&path("F.TXT"), &path("nodir/x")),
        Err(Errno::ENOENT)
    );
    // Open files follow their renames: their descriptors, their data, their directory's.
    let fd = open(&mut f, "F.TXT", of::RDWR).unwrap();
    let g = open(&mut f, "D/G.TXT", of::RDWR).unwrap();
    assert_eq!(
        f.rename(&path("F.TXT"), &path("open file renamed.txt")),
        Ok(())
    );
    assert_eq!(f.rename(&path("D"), &path("Another Dir")), Ok(()));
    assert_eq!(f.stat(&path("F.TXT")), Err(Errno::ENOENT));
    let long = pattern(4, 70_000);
    f.write(A, fd, 1, long.len() as u64, &long)
        .ok()
        .expect("write");
    f.write(A, g, 1, 3, b"+gg").ok().expect("write");
    f.close(A, fd).unwrap();
    f.close(A, g).unwrap();
    let mut want = std::vec![b'f'];
    want.extend_from_slice(&long);
    assert_eq!(d.synced(&mut f).file("open file renamed.txt"), Some(want));
    assert_eq!(
        d.synced(&mut f).file("Another Dir/G.TXT").as_deref(),
        Some(&b"g+gg"[..])
    );
    assert!(d.synced(&mut f).file("F.TXT").is_none());
    // Mapped (a memory-object handle, no descriptor left): the same.
    let fd = open(&mut f, "Another Dir/G.TXT", of::RDWR).unwrap();
    let (h, _) = f.get_object(A, fd, true).expect("a handle");
    f.claim(h, A).expect("claim");
    f.close(A, fd).unwrap();
    assert_eq!(
        f.rename(&path("Another Dir/G.TXT"), &path("mapped.txt")),
        Ok(())
    );
    assert_eq!(f.stat(&path("mapped.txt")), Ok((4, false)));
    let (slot, _) = f.object_page(h, 0, true).ok().expect("a page");
    f.cache.bytes(slot)[0] = b'M';
    assert_eq!(f.object_sync(h, 0, 1), Ok(()));
    assert_eq!(
        d.synced(&mut f).file("mapped.txt").as_deref(),
        Some(&b"M+gg"[..])
    );
    assert_eq!(f.object_release(proto::pid::VM, h), Ok(()));
    assert_eq!(
        f.rename(
            &path("open file renamed.txt"),
            &path("Another Dir/moved file.txt")
        ),
        Ok(())
    );
    assert_eq!(
        f.stat(&path("Another Dir/moved file.txt")),
        Ok((70_001, false))
    );
    assert_eq!(d.synced(&mut f).fsck(), Vec::<String>::new());
}

#[test]
fn read_only_disks_refuse_directory_changes() {
    let (mut f, _d) = mount(image(&[("D/G.TXT", b"g")], 0), 8, true);
    assert_eq!(f.mkdir(&path("new")), Err(Errno::EROFS));
    assert_eq!(f.rmdir(&path("D")), Err(Errno::EROFS));
    assert_eq!(f.rename(&path("D/G.TXT"), &path("x")), Err(Errno::EROFS));
    assert_eq!(
        listing(&f, "D", READ_MAX).0,
        [("G.TXT".to_string(), 1, false)]
    );
}

#[test]
fn mkdir_rmdir_rename_and_listing_in_pieces() {
    let (mut f, d) = mount(image(&[("KEEP.TXT", b"k")], 0), 8, false);
    f.mkdir(&path("Docs")).unwrap();
    f.mkdir(&path("Docs/Photos of the summer")).unwrap();
    f.mkdir(&path("EMPTY")).unwrap();
    // Many long names: the directory grows past its first cluster.
    let mut want = Vec::new();
    for i in 0..60 {
        let name = std::format!("file {i} long name.txt");
        put(&mut f, &std::format!("Docs/{name}"), name.as_bytes());
        want.push((name.clone(), name.len() as u64, false));
    }
    want.push(("Photos of the summer".to_string(), 0, true));
    want.sort();
    let (got, calls) = listing(&f, "Docs", READ_MAX);
    assert_eq!(got, want);
    assert!(calls > 3, "{calls} calls");
    // A small buffer: one record per call, none lost or repeated.
    let (small, _) = listing(&f, "Docs", 60);
    assert_eq!(small, want);
    // fatfs sees the same.
    let host: Vec<String> = d
        .synced(&mut f)
        .list("Docs")
        .into_iter()
        .map(|e| e.0)
        .collect();
    let mut names: Vec<String> = want.iter().map(|w| w.0.clone()).collect();
    names.sort();
    assert_eq!(host, names);
    assert_eq!(
        d.synced(&mut f)
            .file("Docs/file 59 long name.txt")
            .as_deref(),
        Some(&b"file 59 long name.txt"[..])
    );
    // The root lists long and short names, the directories as such.
    let (root, _) = listing(&f, "/", READ_MAX);
    assert_eq!(
        root,
        [
            ("Docs".to_string(), 0, true),
            ("EMPTY".to_string(), 0, true),
            ("KEEP.TXT".to_string(), 1, false),
        ]
    );
    // Rename across directories, files and directories.
    f.rename(
        &path("Docs/file 3 long name.txt"),
        &path("EMPTY/renamed.txt"),
    )
    .unwrap();
    assert_eq!(f.stat(&path("EMPTY/renamed.txt")), Ok((20, false)));
    assert_eq!(
        f.stat(&path("Docs/file 3 long name.txt")),
        Err(Errno::ENOENT)
    );
    f.rename(&path("Docs/Photos of the summer"), &path("Photos"))
        .unwrap();
    put(&mut f, "Photos/beach.jpg", b"sand");
    f.rename(&path("Photos"), &path("EMPTY/Old Photos"))
        .unwrap();
    assert_eq!(f.stat(&path("EMPTY/Old Photos/beach.jpg")), Ok((4, false)));
    // `..` follows the move.
    assert_eq!(
        f.stat(&path("EMPTY/Old Photos/../renamed.txt")),
        Ok((20, false))
    );
    assert_eq!(
        d.synced(&mut f)
            .file("EMPTY/Old Photos/beach.jpg")
            .as_deref(),
        Some(&b"sand"[..])
    );
    d.synced(&mut f).with_fatfs(|fs| {
        let dir = fs.root_dir().open_dir("EMPTY/Old Photos").expect("moved");
        assert!(
            dir.open_dir("..")
                .expect("..")
                .open_file("renamed.txt")
                .is_ok()
        );
    });
    // A file replaces a file.
    put(&mut f, "KEEP2.TXT", b"new");
    f.rename(&path("KEEP2.TXT"), &path("KEEP.TXT")).unwrap();
    assert_eq!(
        d.synced(&mut f).file("KEEP.TXT").as_deref(),
        Some(&b"new"[..])
    );
    assert_eq!(f.stat(&path("KEEP2.TXT")), Err(Errno::ENOENT));
    // rmdir: only empty ones; their clusters come back.
    assert_eq!(f.rmdir(&path("EMPTY")), Err(Errno::ENOTEMPTY));
    f.unlink(&path("EMPTY/Old Photos/beach.jpg")).unwrap();
    f.rmdir(&path("EMPTY/Old Photos")).unwrap();
    assert_eq!(f.stat(&path("EMPTY/Old Photos")), Err(Errno::ENOENT));
    let free_before = d
        .synced(&mut f)
        .with_fatfs(|fs| fs.stats().expect("stats").free_clusters());
    f.mkdir(&path("again")).unwrap();
    f.rmdir(&path("again")).unwrap();
    let free_after = d
        .synced(&mut f)
        .with_fatfs(|fs| fs.stats().expect("stats").free_clusters());
    assert_eq!(free_before, free_after);
    assert!(d.synced(&mut f).list("").iter().all(|e| e.0 != "again"));
    assert_eq!(d.synced(&mut f).fsck(), Vec::<String>::new());
}

#[test]
fn a_full_disk_is_enospc_for_mkdir_and_long_names() {
    // Nearly full: a few clusters left.
    let (mut f, d) = mount(image(&[("A.TXT", b"a")], PART_BYTES - 160 * 1024), 4, false);
    f.mkdir(&path("d")).unwrap();
    let mut made = 0;
    let mut last = Ok(());
    for i in 0..1000 {
        last = f.mkdir(&path(&std::format!("d/directory number {i}")));
        if last.is_err() {
            break;
        }
        made += 1;
    }
    assert_eq!(last, Err(Errno::ENOSPC), "after {made}");
    assert!(made > 0);
    // What was made stays listed; nothing half-made.
    let (list, _) = listing(&f, "d", READ_MAX);
    assert_eq!(list.len(), made, "{list:?}");
    assert_eq!(d.synced(&mut f).fsck(), Vec::<String>::new());
}

#[test]
fn a_file_in_a_moved_directory_opens() {
    let (mut f, d) = mount(image(&[("KEEP.TXT", b"k")], 0), 8, false);
    f.mkdir(&path("Dir")).unwrap();
    put(&mut f, "Dir/A long file name", b"long");
    f.mkdir(&path("Old Name Dir")).unwrap();
    put(&mut f, "Old Name Dir/inside.txt", b"inside");
    f.rename(&path("Old Name Dir"), &path("Dir/New Name Dir"))
        .unwrap();
    let fd = open(&mut f, "Dir/New Name Dir/inside.txt", of::RDONLY).unwrap();
    f.close(A, fd).unwrap();
    let fd = open(&mut f, "Dir/New Name Dir/../A long file name", of::RDONLY).unwrap();
    f.close(A, fd).unwrap();
    assert_eq!(
        d.synced(&mut f)
            .file("Dir/New Name Dir/inside.txt")
            .as_deref(),
        Some(&b"inside"[..])
    );
    assert_eq!(d.synced(&mut f).fsck(), Vec::<String>::new());
}

#[test]
fn a_new_file_reaches_the_disk_in_few_requests() {
    let (mut f, d) = mount(image(&[("KEEP.TXT", b"k")], 0), 8, false);
    let data = pattern(9, 256 * 1024);
    let before = d.stats();
    put(&mut f, "NEW.BIN", &data);
    let after = d.stats();
    let requests = after.requests - before.requests;
    let written = after.sectors_written - before.sectors_written;
    std::eprintln!("256 KiB new file: {requests} requests, {written} sectors written");
    assert_eq!(d.synced(&mut f).file("NEW.BIN"), Some(data));
    // Through the crate: 2,564 requests (a sector each, and the FAT per cluster). Now one
    // data request per 64 KiB block and a few FAT and directory sectors.
    assert!(requests < 40, "{requests} requests");
    assert!(written < 540, "{written} sectors written");
    // Grown again, not from its end (a gap): through the crate, zeroes in the gap.
    let fd = open(&mut f, "NEW.BIN", of::RDWR).unwrap();
    f.write(A, fd, 300 * 1024, 3, b"end").ok().expect("write");
    f.close(A, fd).unwrap();
    let mut want = pattern(9, 256 * 1024);
    want.resize(300 * 1024, 0);
    want.extend_from_slice(b"end");
    assert_eq!(d.synced(&mut f).file("NEW.BIN"), Some(want));
    assert_eq!(d.synced(&mut f).fsck(), Vec::<String>::new());
}

#[test]
fn a_scrambled_directory_gives_errors_never_a_panic() {
    let files: Vec<(String, Vec<u8>)> = (0..12)
        .map(|i| {
            (
                std::format!("Dir/long name number {i}.txt"),
                std::vec![b'a'; i * 100],
            )
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), &b[..])).collect();
    let clean = image(&refs, 0);
    // The sector holding the directory's first long-name entries.
    let needle: Vec<u8> = "long"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    let at = clean
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("a long-name entry");
    let sector = at / 512 * 512;
    for seed in 0..64u32 {
        let mut img = clean.clone();
        let mut x = seed.wrapping_mul(2_654_435_761) | 1;
        for (i, b) in img[sector..sector + 1024].iter_mut().enumerate() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // Keep some entries whole, scramble others, a byte here and there in the rest.
            if (i / 32) % 3 == (seed as usize) % 3 || x % 7 == 0 {
                *b = x as u8;
            }
        }
        let (mut f, _d) = mount(img, 4, false);
        let _ = listing_or_err(&f, "Dir");
        let _ = f.mkdir(&path("Dir/a new directory"));
        let _ = f.open(A, &path("Dir/a new file.txt"), of::CREAT | of::RDWR);
        let _ = f.rename(&path("Dir/long name number 3.txt"), &path("moved.txt"));
        let _ = f.rename(&path("Dir"), &path("Other"));
        let _ = f.unlink(&path("Dir/long name number 5.txt"));
        let _ = f.rmdir(&path("Dir/a new directory"));
        let _ = f.rmdir(&path("Dir"));
        let _ = listing_or_err(&f, "/");
        let _ = f.read_dir(&path("Dir"), 7, &mut [0; 16]);
    }
}

/// The whole listing of `dir`, or the first error.
fn listing_or_err(f: &Files<super::host::Host>, dir: &str) -> Result<usize, Errno> {
    let mut cookie = 0;
    let mut n = 0;
    while cookie != DIR_END {
        let mut buf = [0u8; READ_MAX];
        let (len, next) = f.read_dir(&path(dir), cookie, &mut buf)?;
        n += dirents(&buf[..len]).count();
        assert!(
            next > cookie || next == DIR_END || len > 0,
            "the listing moves on"
        );
        cookie = next;
    }
    Ok(n)
}

/// Runs one call as the server does: the call, then the flush of what it changed before
/// the answer (`Files::flush_metadata`).
fn call<T>(
    f: &mut Files<super::host::Host>,
    run: impl FnOnce(&mut Files<super::host::Host>) -> T,
) -> T {
    let r = run(f);
    f.flush_metadata().expect("flush");
    r
}

#[test]
fn directory_and_fat_writes_go_in_runs_of_sectors() {
    let (mut f, d) = mount(image(&[("KEEP.TXT", b"k")], 0), 8, false);
    call(&mut f, |f| f.mkdir(&path("Many Files"))).expect("mkdir");
    // 32 files with long names, a few bytes each: open, write, close, as a task would.
    let before = d.stats();
    for i in 0..32 {
        let name = std::format!("Many Files/file number {i:02} of many.txt");
        let fd = call(&mut f, |f| open(f, &name, of::CREAT | of::RDWR)).expect("create");
        let bytes = std::format!("file {i}");
        call(&mut f, |f| {
            f.write(A, fd, 0, bytes.len() as u64, bytes.as_bytes())
        })
        .ok()
        .expect("write");
        call(&mut f, |f| f.close(A, fd)).expect("close");
    }
    let after = d.stats();
    let writes = after.writes - before.writes;
    std::eprintln!("32 new files: {writes} write requests");
    // Each file: its entries at the create (one run), and at the close its data, its FAT
    // entry in each of the two FATs and its directory entry: 5, and now and then a cluster
    // more for the directory (16 entries of 512 bytes; a file takes three). A sector per
    // request was 258 in all.
    assert!(writes <= 32 * 6, "{writes} write requests for 32 files");
    let listed = d.synced(&mut f).list("Many Files");
    assert_eq!(listed.len(), 32);
    assert_eq!(
        d.synced(&mut f)
            .file("Many Files/file number 31 of many.txt")
            .as_deref(),
        Some(&b"file 31"[..])
    );
    assert_eq!(d.fsck(), Vec::<String>::new());

    // A file grown by 2 MiB at once (4,096 clusters of 512 bytes, 16 FAT sectors in each
    // FAT), written back by its close (a cache that holds it all): the FAT sectors of each
    // copy go in one request.
    let (mut f, d) = mount(image(&[("KEEP.TXT", b"k")], 0), 40, false);
    let data = pattern(3, 2 << 20);
    let fd = call(&mut f, |f| open(f, "GROWN.BIN", of::CREAT | of::RDWR)).expect("create");
    for (i, chunk) in data.chunks(64 * 1024).enumerate() {
        let at = (i * 64 * 1024) as u64;
        call(&mut f, |f| f.write(A, fd, at, chunk.len() as u64, chunk))
            .ok()
            .expect("write");
    }
    let before = d.stats();
    call(&mut f, |f| f.close(A, fd)).expect("close");
    let after = d.stats();
    let writes = after.writes - before.writes;
    std::eprintln!("a file grown by 2 MiB at its close: {writes} write requests");
    // 32 data blocks, then one run for each FAT and one for the entry (a sector per
    // request: 112).
    assert!(writes <= 32 + 4, "{writes} write requests");
    assert_eq!(d.synced(&mut f).file("GROWN.BIN"), Some(data));
    assert_eq!(d.fsck(), Vec::<String>::new());
}

#[test]
fn fsck_sees_a_lost_cluster_and_fats_that_differ() {
    let (_f, d) = mount(image(&[("KEEP.TXT", b"k")], 0), 4, false);
    assert_eq!(d.fsck(), Vec::<String>::new());
    // Cluster 100 marked in use (an end of chain) in the first FAT only.
    let fat = 9 * 512 + 100 * 2;
    d.0.borrow_mut().image[fat..fat + 2].copy_from_slice(&[0xff, 0xff]);
    let problems = d.fsck();
    std::eprintln!("{problems:#?}");
    assert!(problems.iter().any(|p| p.contains("lost")), "{problems:?}");
    assert!(
        problems.iter().any(|p| p.contains("differs")),
        "{problems:?}"
    );
    if super::host::has_fsck_fat() {
        assert!(
            problems.iter().any(|p| p.starts_with("fsck.fat")),
            "{problems:?}"
        );
    }
}

#[test]
fn the_fat32_info_sector_keeps_the_free_count_right() {
    let (mut f, d) = mount(super::host::image32(&[("KEEP.TXT", b"k")]), 8, false);
    assert_eq!(d.fsck(), Vec::<String>::new());
    // Clusters taken and given back by the crate and by the server: files made and grown
    // (the server's growth), a directory with a long name (a cluster for it, long-name
    // entries), files removed (the server frees them), a directory removed.
    call(&mut f, |f| f.mkdir(&path("A directory with a long name"))).expect("mkdir");
    for i in 0..6 {
        let name = std::format!("A directory with a long name/file {i}.bin");
        let bytes = pattern(i as u8, 3000 + i * 70_000);
        let fd = call(&mut f, |f| open(f, &name, of::CREAT | of::RDWR)).expect("create");
        call(&mut f, |f| f.write(A, fd, 0, bytes.len() as u64, &bytes))
            .ok()
            .expect("write");
        call(&mut f, |f| f.close(A, fd)).expect("close");
        assert_eq!(d.fsck(), Vec::<String>::new(), "after file {i}");
    }
    for i in [1, 4] {
        let name = std::format!("A directory with a long name/file {i}.bin");
        call(&mut f, |f| f.unlink(&path(&name))).expect("unlink");
    }
    call(&mut f, |f| f.mkdir(&path("gone"))).expect("mkdir");
    call(&mut f, |f| f.rmdir(&path("gone"))).expect("rmdir");
    call(&mut f, |f| f.sync_all()).expect("sync");
    // `fatcheck::fsck` compares the info sector's count with the FAT's (and `fsck.fat -n`
    // where the host has it).
    assert_eq!(d.fsck(), Vec::<String>::new());
    assert_eq!(
        d.synced(&mut f)
            .file("A directory with a long name/file 5.bin"),
        Some(pattern(5, 3000 + 5 * 70_000))
    );
}
