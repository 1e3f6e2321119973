//! Host tests of the volume's consistency after the calls that change a file's length, each
//! checked with `fatcheck::fsck` (and `fsck.fat -n` where the host has it) on the synced
//! image: a file cut to nothing, growths refused for room, a growth that takes the last
//! free cluster. `srvfuzz`'s hostile calls left each of these behind (docs/pagers.md).

use super::host::{DiskHandle, Host, image, mount, pattern};
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
