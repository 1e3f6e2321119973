//! Host tests of the volume's consistency after the calls that change a file's length, each
//! checked with `fatcheck::fsck` (and `fsck.fat -n` where the host has it) on the synced
//! image: a file cut to nothing, growths refused for room, a growth that takes the last
//! free cluster. `srvfuzz`'s hostile calls left each of these behind (docs/pagers.md).

use super::host::{DiskHandle, Host, PART_BYTES, image, mount, pattern};
use crate::fs::{Fail, Files};
use proto::Errno;
use proto::file::{Path, open_flags as of};
use std::vec::Vec;

const A: u64 = 10;

fn path(s: &str) -> Path {
    Path::new(s).expect("a path")
}

fn open(f: &mut Files<Host>, p: &str, flags: u64) -> Result<u64, Errno> {
    f.open(A, &path(p), flags).map(|(fd, _)| fd)
}

/// `data` at `at` through descriptor `fd`, the whole of it.
fn write(f: &mut Files<Host>, fd: u64, at: u64, data: &[u8]) -> Result<usize, Errno> {
    match f.write(A, fd, at, data.len() as u64, data) {
        Ok(n) => Ok(n),
        Err(Fail::No(e)) => Err(e),
        Err(_) => panic!("waits"),
    }
}

/// Runs one request as the server does: its metadata reaches the disk at its end.
fn call<T>(f: &mut Files<Host>, run: impl FnOnce(&mut Files<Host>) -> T) -> T {
    let r = run(f);
    f.flush_metadata().expect("flush");
    r
}

/// The free clusters of the synced volume, as `fatfs` counts them.
fn free(d: &DiskHandle, f: &mut Files<Host>) -> u32 {
    d.synced(f)
        .with_fatfs(|fs| fs.stats().expect("stats").free_clusters())
}

/// A volume with `files` and little room: 160 KiB (a filler file takes the rest).
fn nearly_full(files: &[(&str, &[u8])]) -> (Files<Host>, DiskHandle) {
    mount(image(files, PART_BYTES - 160 * 1024), 8, false)
}

#[test]
fn a_file_cut_to_nothing_keeps_no_cluster() {
    // A file of 0 bytes has no cluster (first cluster 0, no chain): `O_TRUNC` and
    // `ftruncate` give them all back. The crate's truncation kept the first one.
    let one = pattern(1, 3000);
    let two = pattern(2, 70_000);
    let three = pattern(3, 1000);
    let files: [(&str, &[u8]); 3] = [("ONE.BIN", &one), ("TWO.BIN", &two), ("THREE.BIN", &three)];
    let (mut f, d) = mount(image(&files, 0), 8, false);
    let free0 = free(&d, &mut f);
    let fd = call(&mut f, |f| open(f, "ONE.BIN", of::RDWR | of::TRUNC)).expect("open");
    call(&mut f, |f| f.close(A, fd)).expect("close");
    let fd = call(&mut f, |f| open(f, "TWO.BIN", of::RDWR)).expect("open");
    call(&mut f, |f| f.ftruncate(A, fd, 0)).expect("ftruncate");
    call(&mut f, |f| f.close(A, fd)).expect("close");
    assert_eq!(d.synced(&mut f).fsck(), Vec::<std::string::String>::new());
    assert_eq!(
        free(&d, &mut f),
        free0 + 6 + 137,
        "every cluster given back"
    );
    assert_eq!(d.file("ONE.BIN").as_deref(), Some(&[][..]));
    assert_eq!(d.file("TWO.BIN").as_deref(), Some(&[][..]));
    // A cut below the length on the disk rewrites the file: its clusters come back anew.
    let fd = call(&mut f, |f| open(f, "THREE.BIN", of::RDWR)).expect("open");
    call(&mut f, |f| f.ftruncate(A, fd, 100)).expect("ftruncate");
    call(&mut f, |f| f.close(A, fd)).expect("close");
    // A file cut to nothing grows again from nothing.
    let fd = call(&mut f, |f| open(f, "ONE.BIN", of::RDWR)).expect("open");
    let again = pattern(4, 2000);
    call(&mut f, |f| write(f, fd, 0, &again)).expect("write");
    call(&mut f, |f| f.close(A, fd)).expect("close");
    assert_eq!(d.synced(&mut f).fsck(), Vec::<std::string::String>::new());
    assert_eq!(d.file("THREE.BIN").as_deref(), Some(&three[..100]));
    assert_eq!(d.file("ONE.BIN"), Some(again));
    assert_eq!(free(&d, &mut f), free0 + 6 + 137 + 1 - 4);
}

#[test]
fn a_growth_refused_for_room_changes_nothing() {
    // Growths past the end of the file whose gap needs more clusters than the disk has:
    // `ENOSPC`, and the volume as it was (no cluster taken, none left in the chain). The
    // crate filled the gap with zeroes cluster by cluster until the disk was full.
    let a = pattern(1, 1000);
    let (mut f, d) = nearly_full(&[("A.BIN", &a)]);
    let free0 = free(&d, &mut f);
    // A write 1 MiB past the end, written back at the close.
    let fd = call(&mut f, |f| open(f, "A.BIN", of::RDWR)).expect("open");
    call(&mut f, |f| write(f, fd, 1 << 20, b"far")).expect("write");
    assert_eq!(call(&mut f, |f| f.close(A, fd)), Err(Errno::ENOSPC));
    assert_eq!(d.synced(&mut f).fsck(), Vec::<std::string::String>::new());
    assert_eq!(free(&d, &mut f), free0);
    assert_eq!(d.file("A.BIN"), Some(a.clone()));
    // A growth by `ftruncate` alone, carried to the disk at the close.
    let fd = call(&mut f, |f| open(f, "B.BIN", of::RDWR | of::CREAT)).expect("open");
    call(&mut f, |f| f.ftruncate(A, fd, 1 << 20)).expect("ftruncate");
    assert_eq!(call(&mut f, |f| f.close(A, fd)), Err(Errno::ENOSPC));
    assert_eq!(d.synced(&mut f).fsck(), Vec::<std::string::String>::new());
    assert_eq!(free(&d, &mut f), free0);
    // An `O_DIRECT` write past the end.
    let fd = call(&mut f, |f| open(f, "A.BIN", of::RDWR | of::DIRECT)).expect("open");
    let sector = pattern(2, 512);
    assert_eq!(
        call(&mut f, |f| write(f, fd, 1 << 20, &sector)),
        Err(Errno::ENOSPC)
    );
    let _ = call(&mut f, |f| f.close(A, fd));
    assert_eq!(d.synced(&mut f).fsck(), Vec::<std::string::String>::new());
    assert_eq!(free(&d, &mut f), free0);
    assert_eq!(d.file("A.BIN"), Some(a));
}

#[test]
fn the_last_free_clusters_go_to_a_file_whole_or_not_at_all() {
    // The crate marks the cluster it allocates in use (and links it), then looks for the
    // next free one and fails if there is none: a growth that took the last free cluster
    // failed with a chain longer than its file, and a new file's first cluster was lost.
    let (mut f, d) = nearly_full(&[("A.BIN", b"a")]);
    let n = u64::from(free(&d, &mut f));
    assert!(n > 200, "{n} free clusters");
    // A new file written only past its first block (a gap from its start) that needs every
    // free cluster.
    let fd = call(&mut f, |f| open(f, "GAP.BIN", of::RDWR | of::CREAT)).expect("open");
    call(&mut f, |f| write(f, fd, n * 512 - 3, b"end")).expect("write");
    call(&mut f, |f| f.close(A, fd)).expect("close");
    assert_eq!(d.synced(&mut f).fsck(), Vec::<std::string::String>::new());
    assert_eq!(free(&d, &mut f), 0);
    let mut want = std::vec![0u8; n as usize * 512 - 3];
    want.extend_from_slice(b"end");
    assert_eq!(d.file("GAP.BIN"), Some(want));
    // One free cluster left, and a new file past a gap that needs more.
    let fd = call(&mut f, |f| open(f, "GAP.BIN", of::RDWR)).expect("open");
    call(&mut f, |f| f.ftruncate(A, fd, (n - 1) * 512)).expect("ftruncate");
    call(&mut f, |f| f.close(A, fd)).expect("close");
    assert_eq!(free(&d, &mut f), 1);
    let fd = call(&mut f, |f| open(f, "NEW.BIN", of::RDWR | of::CREAT)).expect("open");
    call(&mut f, |f| write(f, fd, 70_000, b"x")).expect("write");
    assert_eq!(call(&mut f, |f| f.close(A, fd)), Err(Errno::ENOSPC));
    assert_eq!(d.synced(&mut f).fsck(), Vec::<std::string::String>::new());
    assert_eq!(free(&d, &mut f), 1);
    assert_eq!(d.file("NEW.BIN").as_deref(), Some(&[][..]));
}

#[test]
fn a_new_file_in_a_full_directory_on_a_full_disk_leaves_the_directory_whole() {
    // The crate grows a full directory itself when it makes a file's entry, and its
    // allocation of the last free cluster fails after linking it to the directory, before
    // zeroing it: the directory got a cluster of whatever the disk had there.
    let (mut f, d) = nearly_full(&[("SUB/INNER.TXT", b"inner")]);
    let n = u64::from(free(&d, &mut f));
    // Every free cluster holds data, then the last one is free again.
    let fd = call(&mut f, |f| open(f, "DATA.BIN", of::RDWR | of::CREAT)).expect("open");
    let data = pattern(7, n as usize * 512);
    call(&mut f, |f| write(f, fd, 0, &data)).expect("write");
    call(&mut f, |f| f.close(A, fd)).expect("close");
    assert_eq!(free(&d, &mut f), 0);
    let fd = call(&mut f, |f| open(f, "DATA.BIN", of::RDWR)).expect("open");
    call(&mut f, |f| f.ftruncate(A, fd, (n - 1) * 512)).expect("ftruncate");
    call(&mut f, |f| f.close(A, fd)).expect("close");
    assert_eq!(free(&d, &mut f), 1);
    // New files in the directory until it cannot grow.
    let mut made = 0;
    let last = loop {
        let name = std::format!("SUB/F{made:02}.TXT");
        match call(&mut f, |f| open(f, &name, of::RDWR | of::CREAT)) {
            Ok(fd) => {
                call(&mut f, |f| f.close(A, fd)).expect("close");
                made += 1;
            }
            Err(e) => break e,
        }
        assert!(made < 100, "the directory grows without end");
    };
    assert_eq!(last, Errno::ENOSPC, "after {made}");
    assert_eq!(d.synced(&mut f).fsck(), Vec::<std::string::String>::new());
    assert_eq!(free(&d, &mut f), 0);
    assert_eq!(d.list("SUB").len(), made + 1);
}

#[test]
fn a_gap_reads_back_as_zeroes_over_clusters_that_held_data() {
    // The clusters a growth past a gap takes held another file's bytes: the gap is written
    // with zeroes (a write-back past the gap, an `ftruncate` growth, an `O_DIRECT` write).
    let (mut f, d) = mount(image(&[("OLD.BIN", &pattern(9, 600_000))], 0), 8, false);
    call(&mut f, |f| f.unlink(&path("OLD.BIN"))).expect("unlink");
    let fd = call(&mut f, |f| open(f, "GAP.BIN", of::RDWR | of::CREAT)).expect("open");
    call(&mut f, |f| write(f, fd, 1000, b"head")).expect("write");
    call(&mut f, |f| f.close(A, fd)).expect("close");
    let fd = call(&mut f, |f| open(f, "GAP.BIN", of::RDWR)).expect("open");
    call(&mut f, |f| write(f, fd, 150_001, b"past")).expect("write");
    call(&mut f, |f| f.close(A, fd)).expect("close");
    let fd = call(&mut f, |f| open(f, "GAP.BIN", of::RDWR)).expect("open");
    call(&mut f, |f| f.ftruncate(A, fd, 300_003)).expect("ftruncate");
    call(&mut f, |f| f.close(A, fd)).expect("close");
    let fd = call(&mut f, |f| open(f, "GAP.BIN", of::RDWR | of::DIRECT)).expect("open");
    let sector = pattern(3, 512);
    call(&mut f, |f| write(f, fd, 400_384, &sector)).expect("write");
    call(&mut f, |f| f.close(A, fd)).expect("close");
    let mut want = std::vec![0u8; 400_384 + 512];
    want[1000..1004].copy_from_slice(b"head");
    want[150_001..150_005].copy_from_slice(b"past");
    want[400_384..].copy_from_slice(&sector);
    assert_eq!(d.synced(&mut f).file("GAP.BIN"), Some(want));
    assert_eq!(d.fsck(), Vec::<std::string::String>::new());
}

#[test]
fn a_growth_of_thousands_of_clusters_goes_in_batches_and_one_to_4_gib_is_enospc() {
    // Clusters are counted first, then taken 4,096 at a time: a growth to 2.5 MiB (5,000
    // clusters of 512 bytes) in two batches; one to 4 GiB - 1 is `ENOSPC` at once (the
    // server took a list of every cluster it needed first: 3 MiB of heap for 3 GiB on the
    // boot disk, which the file server does not have).
    let (mut f, d) = mount(image(&[("A.BIN", b"a")], 0), 8, false);
    let free0 = free(&d, &mut f);
    let fd = call(&mut f, |f| open(f, "BIG.BIN", of::RDWR | of::CREAT)).expect("open");
    let len = 2_560_000u64;
    call(&mut f, |f| f.ftruncate(A, fd, len)).expect("ftruncate");
    call(&mut f, |f| write(f, fd, len - 1, b"x")).expect("write");
    call(&mut f, |f| f.close(A, fd)).expect("close");
    let mut want = std::vec![0u8; len as usize];
    want[len as usize - 1] = b'x';
    assert_eq!(d.synced(&mut f).file("BIG.BIN"), Some(want));
    assert_eq!(d.fsck(), Vec::<std::string::String>::new());
    assert_eq!(free(&d, &mut f), free0 - 5000);
    let fd = call(&mut f, |f| open(f, "HUGE.BIN", of::RDWR | of::CREAT)).expect("open");
    call(&mut f, |f| f.ftruncate(A, fd, u64::from(u32::MAX))).expect("ftruncate");
    assert_eq!(call(&mut f, |f| f.close(A, fd)), Err(Errno::ENOSPC));
    assert_eq!(d.synced(&mut f).fsck(), Vec::<std::string::String>::new());
    assert_eq!(free(&d, &mut f), free0 - 5000);
    // The 5,000 clusters given back by a cut, in two batches too.
    let fd = call(&mut f, |f| open(f, "BIG.BIN", of::RDWR | of::TRUNC)).expect("open");
    call(&mut f, |f| f.close(A, fd)).expect("close");
    assert_eq!(d.synced(&mut f).fsck(), Vec::<std::string::String>::new());
    assert_eq!(free(&d, &mut f), free0);
}
