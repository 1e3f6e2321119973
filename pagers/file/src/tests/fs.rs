//! Host tests of the file server's core ([`crate::fs::Files`]) over a RAM disk holding a
//! FAT image (`super::host`): the calls on paths and descriptors with their errors, data
//! through the page cache, eviction and write-back, memory objects, asynchronous reads.

use super::host::{DiskHandle, Host, PART_BYTES, Req, image, mount, pattern};
use crate::fs::{Fail, Files};
use proto::file::{AT_POSITION, Path, Whence, open_flags as of};
use proto::object::BLOCK_SIZE;
use proto::{Errno, pid};
use std::vec::Vec;

const BS: usize = BLOCK_SIZE as usize;
const A: u64 = 10;
const B: u64 = 11;

fn path(s: &str) -> Path {
    Path::new(s).expect("a path")
}

/// The error of `r`; panics if it waits or succeeds.
fn err<T>(r: Result<T, Fail>) -> Errno {
    match r {
        Err(Fail::No(e)) => e,
        Err(_) => panic!("waits"),
        Ok(_) => panic!("succeeds"),
    }
}

/// What `r` waits for: Some(key) for a block, None for room; panics otherwise.
fn waits<T>(r: Result<T, Fail>) -> Option<(u64, u64)> {
    match r {
        Err(Fail::Wait(k)) => Some(k),
        Err(Fail::WaitRoom) => None,
        Err(Fail::WaitPipe(p)) => panic!("waits for pipe {p}"),
        Err(Fail::No(e)) => panic!("fails: {e:?}"),
        Ok(_) => panic!("does not wait"),
    }
}

fn ok<T>(r: Result<T, Fail>) -> T {
    match r {
        Ok(v) => v,
        Err(Fail::No(e)) => panic!("fails: {e:?}"),
        Err(_) => panic!("waits"),
    }
}

fn open(f: &mut Files<Host>, pid: u64, p: &str, flags: u64) -> Result<u64, Errno> {
    f.open(pid, &path(p), flags).map(|(fd, _)| fd)
}

/// `len` bytes at `at` (synchronously unless `f.can_wait`).
fn read(f: &mut Files<Host>, pid: u64, fd: u64, at: u64, len: usize) -> Result<Vec<u8>, Fail> {
    let mut out = std::vec![0u8; len];
    let n = f.read(pid, fd, at, len as u64, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// The whole file from the start, in pieces of `piece` bytes, through the position.
fn read_all(f: &mut Files<Host>, pid: u64, fd: u64, piece: usize) -> Vec<u8> {
    f.lseek(pid, fd, 0, Whence::Set).expect("lseek");
    let mut all = Vec::new();
    loop {
        let got = ok(read(f, pid, fd, AT_POSITION, piece));
        if got.is_empty() {
            return all;
        }
        all.extend_from_slice(&got);
    }
}

fn write(f: &mut Files<Host>, pid: u64, fd: u64, at: u64, data: &[u8]) -> Result<usize, Fail> {
    f.write(pid, fd, at, data.len() as u64, data)
}

/// A volume holding `DATA.BIN` (`len` bytes of pattern 1) and a directory `SUB`.
fn with_data(len: usize, blocks: usize) -> (Files<Host>, DiskHandle, Vec<u8>) {
    let data = pattern(1, len);
    let img = image(&[("DATA.BIN", &data), ("SUB/INNER.TXT", b"inner")], 0);
    let (f, d) = mount(img, blocks, false);
    (f, d, data)
}

#[test]
fn open_read_close_and_their_errors() {
    let (mut f, _d, data) = with_data(1000, 8);
    let fd = open(&mut f, A, "DATA.BIN", of::RDONLY).unwrap();
    assert_eq!(f.fstat(A, fd), Ok(1000));
    assert_eq!(ok(read(&mut f, A, fd, 0, 2000)), data);
    // Names compare without case, and `.`/`..` walk.
    let again = open(&mut f, A, "/sub/../data.bin", of::RDONLY).unwrap();
    assert_ne!(again, fd);
    assert_eq!(ok(read(&mut f, A, again, 990, 100)), &data[990..]);
    assert_eq!(ok(read(&mut f, A, again, 5000, 10)), b"");
    assert_eq!(open(&mut f, A, "NOPE.TXT", of::RDONLY), Err(Errno::ENOENT));
    assert_eq!(
        open(&mut f, A, "NODIR/X.TXT", of::RDONLY),
        Err(Errno::ENOENT)
    );
    assert_eq!(open(&mut f, A, "/", of::RDONLY), Err(Errno::EISDIR));
    assert_eq!(open(&mut f, A, "SUB", of::RDONLY), Err(Errno::EISDIR));
    assert_eq!(
        open(&mut f, A, "DATA.BIN", of::CREAT | of::EXCL | of::RDWR),
        Err(Errno::EEXIST)
    );
    assert_eq!(open(&mut f, A, "DATA.BIN", of::ACCMODE), Err(Errno::EINVAL));
    assert_eq!(open(&mut f, A, "DATA.BIN", 1 << 40), Err(Errno::EINVAL));
    // Descriptors are per task: another task's number, a forged one, a closed one.
    assert_eq!(err(read(&mut f, B, fd, 0, 10)), Errno::EBADF);
    assert_eq!(err(read(&mut f, A, 999, 0, 10)), Errno::EBADF);
    assert_eq!(f.close(B, fd), Err(Errno::EBADF));
    assert_eq!(err(write(&mut f, A, fd, 0, b"x")), Errno::EBADF);
    assert_eq!(f.close(A, fd), Ok(()));
    assert_eq!(f.close(A, fd), Err(Errno::EBADF));
    assert_eq!(f.fstat(A, fd), Err(Errno::EBADF));
    let wo = open(&mut f, A, "DATA.BIN", of::WRONLY).unwrap();
    assert_eq!(err(read(&mut f, A, wo, 0, 10)), Errno::EBADF);
    assert_eq!(f.stat(&path("SUB/INNER.TXT")), Ok((5, false)));
    assert_eq!(f.stat(&path("SUB")), Ok((0, true)));
    assert_eq!(f.stat(&path("SUB/NONE")), Err(Errno::ENOENT));
    assert_eq!(f.descriptors(), (2, 1));
}

#[test]
fn a_read_only_volume_refuses_every_change() {
    let data = pattern(2, 3000);
    let (mut f, d) = mount(image(&[("RO.TXT", &data)], 0), 4, true);
    assert!(f.readonly());
    assert_eq!(open(&mut f, A, "RO.TXT", of::WRONLY), Err(Errno::EROFS));
    assert_eq!(open(&mut f, A, "RO.TXT", of::RDWR), Err(Errno::EROFS));
    assert_eq!(
        open(&mut f, A, "NEW.TXT", of::CREAT | of::RDONLY),
        Err(Errno::EROFS)
    );
    assert_eq!(f.unlink(&path("RO.TXT")), Err(Errno::EROFS));
    let fd = open(&mut f, A, "RO.TXT", of::RDONLY).unwrap();
    assert_eq!(ok(read(&mut f, A, fd, 0, 5000)), data);
    assert_eq!(f.get_object(A, fd, true).map(|_| ()), Err(Errno::EACCES));
    assert_eq!(f.close(A, fd), Ok(()));
    assert_eq!(f.sync_all(), Ok(()));
    assert_eq!(d.0.borrow().sync_writes, 0);
}

#[test]
fn data_written_reads_back_across_block_boundaries_and_reaches_the_disk() {
    let (mut f, d, mut data) = with_data(3 * BS + 100, 8);
    let fd = open(&mut f, A, "DATA.BIN", of::RDWR).unwrap();
    // A read across the boundary of blocks 0 and 1, and of 1 and 2.
    assert_eq!(
        ok(read(&mut f, A, fd, BS as u64 - 7, 20)),
        &data[BS - 7..BS + 13]
    );
    assert_eq!(
        ok(read(&mut f, A, fd, 2 * BS as u64 - 3000, 6000)),
        &data[2 * BS - 3000..2 * BS + 3000]
    );
    // A write across two boundaries (all of block 1), then past the end.
    let new = pattern(9, BS + 2000);
    let at = BS - 1000;
    assert_eq!(ok(write(&mut f, A, fd, at as u64, &new)), new.len());
    data[at..at + new.len()].copy_from_slice(&new);
    let tail = pattern(7, 5000);
    let end = data.len();
    assert_eq!(ok(write(&mut f, A, fd, end as u64 - 100, &tail)), 5000);
    data.truncate(end - 100);
    data.extend_from_slice(&tail);
    assert_eq!(f.fstat(A, fd), Ok(data.len() as u64));
    assert_eq!(read_all(&mut f, A, fd, 4093), data);
    // The disk has none of it until it is written back: the last close does that.
    assert_ne!(d.synced(&mut f).file("DATA.BIN").unwrap(), data);
    assert_eq!(f.close(A, fd), Ok(()));
    assert_eq!(d.synced(&mut f).file("DATA.BIN").unwrap(), data);
    assert_eq!(d.synced(&mut f).fsck(), Vec::<std::string::String>::new());
}

#[test]
fn created_files_grow_and_lseek_and_append_follow_posix() {
    let (mut f, d, _) = with_data(10, 8);
    let fd = open(&mut f, A, "NEW.TXT", of::CREAT | of::RDWR).unwrap();
    assert_eq!(
        open(&mut f, A, "NEW.TXT", of::CREAT | of::EXCL),
        Err(Errno::EEXIST)
    );
    let data = pattern(3, 150 * 1024);
    for piece in data.chunks(7 * 1024) {
        assert_eq!(ok(write(&mut f, A, fd, AT_POSITION, piece)), piece.len());
    }
    assert_eq!(f.lseek(A, fd, 0, Whence::Cur), Ok(data.len() as u64));
    assert_eq!(f.lseek(A, fd, -10, Whence::End), Ok(data.len() as u64 - 10));
    assert_eq!(
        ok(read(&mut f, A, fd, AT_POSITION, 100)),
        &data[data.len() - 10..]
    );
    assert_eq!(f.lseek(A, fd, -1, Whence::Set), Err(Errno::EINVAL));
    assert_eq!(f.lseek(A, fd, i64::MAX, Whence::Set), Err(Errno::EINVAL));
    assert_eq!(f.lseek(B, fd, 0, Whence::Set), Err(Errno::EBADF));
    // A write past the end leaves zeroes between.
    assert_eq!(
        ok(write(&mut f, A, fd, data.len() as u64 + 1000, b"end")),
        3
    );
    let all = read_all(&mut f, A, fd, 50_000);
    assert_eq!(&all[..data.len()], &data[..]);
    assert!(all[data.len()..data.len() + 1000].iter().all(|&b| b == 0));
    assert_eq!(&all[data.len() + 1000..], b"end");
    // Past the largest FAT file.
    assert_eq!(
        err(write(&mut f, A, fd, u32::MAX as u64, b"x")),
        Errno::EFBIG
    );
    // O_APPEND writes at the end whatever the position.
    let ap = open(&mut f, A, "NEW.TXT", of::WRONLY | of::APPEND).unwrap();
    assert_eq!(ok(write(&mut f, A, ap, AT_POSITION, b"++")), 2);
    assert_eq!(f.fstat(A, fd), Ok(all.len() as u64 + 2));
    assert_eq!(f.close(A, ap), Ok(()));
    assert_eq!(f.close(A, fd), Ok(()));
    let disk = d.synced(&mut f).file("NEW.TXT").unwrap();
    assert_eq!(&disk[..all.len()], &all[..]);
    assert_eq!(&disk[all.len()..], b"++");
    assert_eq!(d.synced(&mut f).fsck(), Vec::<std::string::String>::new());
}

#[test]
fn ftruncate_shrinks_and_grows_with_zeroes() {
    let (mut f, d, data) = with_data(3 * BS, 8);
    let ro = open(&mut f, A, "DATA.BIN", of::RDONLY).unwrap();
    assert_eq!(f.ftruncate(A, ro, 10), Err(Errno::EINVAL));
    let fd = open(&mut f, A, "DATA.BIN", of::RDWR).unwrap();
    assert_eq!(f.ftruncate(A, fd, u64::MAX), Err(Errno::EINVAL));
    assert_eq!(f.ftruncate(A, fd, 1 << 33), Err(Errno::EFBIG));
    assert_eq!(f.ftruncate(B, fd, 0), Err(Errno::EBADF));
    let short = BS + 1234;
    assert_eq!(f.ftruncate(A, fd, short as u64), Ok(()));
    assert_eq!(f.fstat(A, ro), Ok(short as u64));
    assert_eq!(ok(read(&mut f, A, fd, short as u64, 10)), b"");
    // A shared mapping writes past the end, in the last block (what it sees of the page).
    let h = mapped(&mut f, A, fd, true);
    let (slot, valid) = ok(f.object_page(h, 1, true));
    assert_eq!(valid, 1234);
    f.cache.bytes(slot)[2000..2100].fill(0xee);
    let long = 2 * BS + 10;
    assert_eq!(f.ftruncate(A, fd, long as u64), Ok(()));
    assert_eq!(f.object_release(pid::VM, h), Ok(()));
    let all = read_all(&mut f, A, ro, 30_000);
    assert_eq!(all.len(), long);
    assert_eq!(&all[..short], &data[..short]);
    assert!(all[short..].iter().all(|&b| b == 0), "growth reads as zero");
    assert_eq!(f.close(A, fd), Ok(()));
    assert_eq!(f.close(A, ro), Ok(()));
    assert_eq!(d.synced(&mut f).file("DATA.BIN").unwrap(), all);
    assert_eq!(d.synced(&mut f).fsck(), Vec::<std::string::String>::new());
}

#[test]
fn unlink_removes_now_or_at_the_last_close() {
    let (mut f, d, data) = with_data(5000, 8);
    assert_eq!(f.unlink(&path("SUB")), Err(Errno::EISDIR));
    assert_eq!(f.unlink(&path("NONE.TXT")), Err(Errno::ENOENT));
    assert_eq!(f.unlink(&path("SUB/INNER.TXT")), Ok(()));
    assert_eq!(
        open(&mut f, A, "SUB/INNER.TXT", of::RDONLY),
        Err(Errno::ENOENT)
    );
    assert!(d.synced(&mut f).file("SUB/INNER.TXT").is_none());
    // Closed, but kept open by the server for the next `open` (idle): removed now too.
    let idle = open(&mut f, A, "IDLE.TXT", of::CREAT | of::WRONLY).unwrap();
    ok(write(&mut f, A, idle, 0, b"idle"));
    assert_eq!(f.close(A, idle), Ok(()));
    assert_eq!(d.synced(&mut f).file("IDLE.TXT").unwrap(), b"idle");
    assert_eq!(f.unlink(&path("IDLE.TXT")), Ok(()));
    assert!(d.synced(&mut f).file("IDLE.TXT").is_none());
    assert!(
        !d.synced(&mut f)
            .root_names()
            .iter()
            .any(|n| n.starts_with("~DL")),
        "not hidden: gone"
    );
    // Open: the name goes now, the file at its last close.
    let fd = open(&mut f, A, "DATA.BIN", of::RDONLY).unwrap();
    assert_eq!(f.unlink(&path("DATA.BIN")), Ok(()));
    assert_eq!(f.unlink(&path("DATA.BIN")), Err(Errno::ENOENT));
    assert!(
        d.synced(&mut f)
            .root_names()
            .iter()
            .any(|n| n.starts_with("~DL")),
        "hidden while open"
    );
    assert_eq!(open(&mut f, B, "DATA.BIN", of::RDONLY), Err(Errno::ENOENT));
    assert_eq!(ok(read(&mut f, A, fd, 0, 6000)), data);
    let new = open(&mut f, B, "DATA.BIN", of::CREAT | of::RDWR).unwrap();
    assert_eq!(ok(write(&mut f, B, new, 0, b"new")), 3);
    assert_eq!(f.close(B, new), Ok(()));
    assert_eq!(f.close(A, fd), Ok(()));
    assert_eq!(d.synced(&mut f).file("DATA.BIN").unwrap(), b"new");
    assert_eq!(f.descriptors(), (0, 0));
    // The hidden file went at its last close.
    assert!(
        !d.synced(&mut f)
            .root_names()
            .iter()
            .any(|n| n.starts_with("~DL"))
    );
    assert_eq!(d.synced(&mut f).fsck(), Vec::<std::string::String>::new());
}

#[test]
fn a_two_block_cache_keeps_every_byte_writing_dirty_blocks_back_before_reuse() {
    let (mut f, d, mut data) = with_data(5 * BS + 321, 2);
    let fd = open(&mut f, A, "DATA.BIN", of::RDWR).unwrap();
    // Every block dirtied in turn, each write evicting a dirty block.
    for b in 0..6 {
        let at = b * BS + 100;
        if at + 3000 > data.len() {
            break;
        }
        let new = pattern(20 + b as u8, 3000);
        ok(write(&mut f, A, fd, at as u64, &new));
        data[at..at + 3000].copy_from_slice(&new);
    }
    assert!(f.stats().evicted >= 3);
    assert!(f.stats().written_back >= 3, "dirty blocks written back");
    assert_eq!(f.stats().budget, 2);
    assert_eq!(read_all(&mut f, A, fd, 9000), data);
    // A read spanning three blocks, with room for two.
    assert_eq!(
        ok(read(&mut f, A, fd, BS as u64 - 10, 2 * BS + 20)),
        &data[BS - 10..3 * BS + 10]
    );
    assert_eq!(f.close(A, fd), Ok(()));
    assert_eq!(d.synced(&mut f).file("DATA.BIN").unwrap(), data);
}

#[test]
fn a_full_disk_is_enospc_for_the_writer_at_close() {
    // Little room left besides the filler file.
    let fill = PART_BYTES - 160 * 1024;
    let img = image(&[("A.TXT", b"a")], fill);
    let (mut f, _d) = mount(img, 4, false);
    let fd = open(&mut f, A, "BIG.BIN", of::CREAT | of::RDWR).unwrap();
    let data = pattern(5, 512 * 1024);
    for piece in data.chunks(32 * 1024) {
        // The writes land in the cache; the write-backs of evicted blocks fail.
        ok(write(&mut f, A, fd, AT_POSITION, piece));
    }
    assert_eq!(f.close(A, fd), Err(Errno::ENOSPC));
    // Other files go on.
    let a = open(&mut f, B, "A.TXT", of::RDONLY).unwrap();
    assert_eq!(ok(read(&mut f, B, a, 0, 10)), b"a");
}

/// `pid`'s handle on `fd`, claimed by vm.
fn mapped(f: &mut Files<Host>, pid: u64, fd: u64, writable: bool) -> u64 {
    let (handle, _) = f.get_object(pid, fd, writable).expect("get_object");
    let c = f.claim(handle, pid).expect("claim");
    assert_eq!(c.writable, writable);
    handle
}

#[test]
fn writes_through_a_mapping_reach_the_disk_with_object_dirty_and_sync() {
    let (mut f, d, mut data) = with_data(2 * BS + 500, 8);
    let fd = open(&mut f, A, "DATA.BIN", of::RDWR).unwrap();
    let h = mapped(&mut f, A, fd, true);
    let (slot, valid) = ok(f.object_page(h, 2, false));
    assert_eq!(valid, 500);
    assert_eq!(&f.cache.bytes(slot)[..500], &data[2 * BS..]);
    assert_eq!(err(f.object_page(h, 3, false)), Errno::EFAULT);
    assert_eq!(err(f.object_page(h, u64::MAX, false)), Errno::EFAULT);
    // A task writes block 0 through its mapping: vm says so, then `msync`.
    let (slot, valid) = ok(f.object_page(h, 0, false));
    assert_eq!(valid, BS as u64);
    f.cache.bytes(slot)[10..14].copy_from_slice(b"MMAP");
    data[10..14].copy_from_slice(b"MMAP");
    assert_eq!(f.object_dirty(h, 0), Ok(()));
    let revokes = f.cache.stats.revokes;
    assert_eq!(f.object_sync(h, 0, 1), Ok(()));
    assert!(
        f.cache.stats.revokes > revokes,
        "mappings revoked before the write"
    );
    assert_eq!(d.synced(&mut f).file("DATA.BIN").unwrap(), data);
    // A write fault (`ObjectPage` for writing) marks the block dirty too.
    let (slot, _) = ok(f.object_page(h, 1, true));
    f.cache.bytes(slot)[0] = b'W';
    data[BS] = b'W';
    assert_eq!(f.object_sync(h, 0, u64::MAX), Ok(()));
    assert_eq!(d.synced(&mut f).file("DATA.BIN").unwrap(), data);
    assert_eq!(f.object_release(pid::VM, h), Ok(()));
    assert_eq!(f.close(A, fd), Ok(()));
}

#[test]
fn handles_are_bound_to_their_task_and_released_once() {
    let (mut f, _d, _) = with_data(BS, 8);
    let fd = open(&mut f, A, "DATA.BIN", of::RDONLY).unwrap();
    assert_eq!(f.get_object(B, fd, false).map(|_| ()), Err(Errno::EBADF));
    assert_eq!(f.get_object(A, fd, true).map(|_| ()), Err(Errno::EACCES));
    let (h, size) = f.get_object(A, fd, false).unwrap();
    assert_eq!(size, BS as u64);
    // Forged: a number never given; unclaimed: not usable by vm yet.
    assert_eq!(f.claim(h ^ 0x5555, A).map(|_| ()), Err(Errno::EBADF));
    assert_eq!(err(f.object_page(h, 0, false)), Errno::EBADF);
    assert_eq!(err(f.object_page(h ^ 0x5555, 0, false)), Errno::EBADF);
    // Another task's handle cannot be claimed for it.
    assert_eq!(f.claim(h, B).map(|_| ()), Err(Errno::EBADF));
    let c = f.claim(h, A).unwrap();
    assert!(!c.writable);
    assert_eq!(
        f.claim(h, A).map(|_| ()),
        Err(Errno::EBADF),
        "claimed twice"
    );
    assert_eq!(err(f.object_page(h, 0, true)), Errno::EACCES);
    assert_eq!(f.object_dirty(h, 0), Err(Errno::EACCES));
    ok(f.object_page(h, 0, false));
    // Once claimed, only vm releases it, once.
    assert_eq!(f.object_release(A, h), Err(Errno::EBADF));
    assert_eq!(f.object_release(pid::VM, h), Ok(()));
    assert_eq!(f.object_release(pid::VM, h), Err(Errno::EBADF));
    assert_eq!(err(f.object_page(h, 0, false)), Errno::EBADF);
    // An unclaimed handle goes back by its task, or with it.
    let (h2, _) = f.get_object(A, fd, false).unwrap();
    assert_eq!(f.object_release(B, h2), Err(Errno::EBADF));
    assert_eq!(f.object_release(A, h2), Ok(()));
    assert_eq!(f.object_release(A, h2), Err(Errno::EBADF));
    let (h3, _) = f.get_object(A, fd, false).unwrap();
    assert_eq!(f.task_exit(A), Ok(()));
    assert_eq!(f.claim(h3, A).map(|_| ()), Err(Errno::EBADF));
    assert_eq!(f.descriptors(), (0, 0));
}

/// Runs the waiters the completions hand back: each with its error, or `None` (run again).
fn done(f: &mut Files<Host>) -> Vec<(Req, Option<Errno>)> {
    let mut out = f.completions();
    out.sort_by_key(|(r, _)| r.id);
    out
}

#[test]
fn a_read_of_an_uncached_block_waits_for_the_disk() {
    let (mut f, d, data) = with_data(3 * BS, 8);
    let fd = open(&mut f, A, "DATA.BIN", of::RDONLY).unwrap();
    f.can_wait = true;
    assert_eq!(waits(read(&mut f, A, fd, 10, 100)), Some((1, 0)));
    f.park(Fail::Wait((1, 0)), Req::new(1, A)).unwrap();
    // Block 0 and, read ahead, block 1: one request each (their clusters are consecutive).
    let flight = d.in_flight();
    assert_eq!(flight.len(), 2);
    assert_eq!(flight[0].len, BS);
    assert!(!f.has_completions());
    assert!(done(&mut f).is_empty());
    d.complete(0);
    assert!(f.has_completions());
    assert_eq!(done(&mut f), [(Req::new(1, A), None)]);
    assert_eq!(ok(read(&mut f, A, fd, 10, 100)), &data[10..110]);
    // The block read ahead: its request waits for it too, then hits.
    assert_eq!(waits(read(&mut f, A, fd, BS as u64, 8)), Some((1, 1)));
    d.complete(0);
    assert!(done(&mut f).is_empty());
    assert_eq!(ok(read(&mut f, A, fd, BS as u64, 8)), &data[BS..BS + 8]);
    assert_eq!(f.stats().async_reads, d.stats().async_reads);
}

#[test]
fn several_waiters_on_one_block_are_all_finished_by_one_completion() {
    let (mut f, d, data) = with_data(2 * BS, 8);
    let a = open(&mut f, A, "DATA.BIN", of::RDONLY).unwrap();
    let b = open(&mut f, B, "DATA.BIN", of::RDWR).unwrap();
    let h = mapped(&mut f, A, a, false);
    f.can_wait = true;
    let key = waits(read(&mut f, A, a, BS as u64 + 5, 10)).unwrap();
    f.park(Fail::Wait(key), Req::new(1, A)).unwrap();
    let requests = d.in_flight().len();
    assert_eq!(waits(f.object_page(h, 1, false)), Some(key));
    f.park(Fail::Wait(key), Req::new(2, pid::VM)).unwrap();
    assert_eq!(waits(write(&mut f, B, b, BS as u64, b"zz")), Some(key));
    f.park(Fail::Wait(key), Req::new(3, B)).unwrap();
    assert_eq!(
        d.in_flight().len(),
        requests,
        "one disk request for all three"
    );
    d.complete(0);
    assert_eq!(
        done(&mut f),
        [
            (Req::new(1, A), None),
            (Req::new(2, pid::VM), None),
            (Req::new(3, B), None)
        ]
    );
    // Run again, each finds the block.
    assert_eq!(
        ok(read(&mut f, A, a, BS as u64 + 5, 10)),
        &data[BS + 5..BS + 15]
    );
    let (slot, _) = ok(f.object_page(h, 1, false));
    assert_eq!(ok(write(&mut f, B, b, BS as u64, b"zz")), 2);
    assert_eq!(&f.cache.bytes(slot)[..3], &[b'z', b'z', data[BS + 2]]);
    assert_eq!(f.stats().misses, 1);
}

#[test]
fn completions_out_of_order_fill_the_right_blocks() {
    let one = pattern(31, BS + 100);
    let two = pattern(32, BS + 100);
    let img = image(&[("ONE.BIN", &one), ("TWO.BIN", &two)], 0);
    let (mut f, d) = mount(img, 8, false);
    let x = open(&mut f, A, "ONE.BIN", of::RDONLY).unwrap();
    let y = open(&mut f, B, "TWO.BIN", of::RDONLY).unwrap();
    f.can_wait = true;
    let kx = waits(read(&mut f, A, x, 0, 10)).unwrap();
    f.park(Fail::Wait(kx), Req::new(1, A)).unwrap();
    let ky = waits(read(&mut f, B, y, 0, 10)).unwrap();
    f.park(Fail::Wait(ky), Req::new(2, B)).unwrap();
    assert_ne!(kx, ky);
    // ONE's two blocks (one read ahead), TWO's two: the device ends them last first.
    assert_eq!(d.in_flight().len(), 4);
    d.complete(3);
    d.complete(2);
    assert_eq!(done(&mut f), [(Req::new(2, B), None)]);
    assert_eq!(ok(read(&mut f, B, y, 0, 2 * BS)), two);
    d.complete(1);
    assert!(done(&mut f).is_empty());
    d.complete(0);
    assert_eq!(done(&mut f), [(Req::new(1, A), None)]);
    assert_eq!(ok(read(&mut f, A, x, 0, 2 * BS)), one);
    assert_eq!(f.stats().misses, 2);
    assert!(d.in_flight().is_empty());
}

#[test]
fn a_failed_disk_read_is_eio_for_its_waiters_only() {
    let (mut f, d, data) = with_data(2 * BS, 8);
    let a = open(&mut f, A, "DATA.BIN", of::RDONLY).unwrap();
    let b = open(&mut f, B, "DATA.BIN", of::RDONLY).unwrap();
    f.can_wait = true;
    let k0 = waits(read(&mut f, A, a, 0, 10)).unwrap();
    f.park(Fail::Wait(k0), Req::new(1, A)).unwrap();
    f.park(Fail::Wait(k0), Req::new(2, B)).unwrap();
    let k1 = waits(read(&mut f, B, b, BS as u64, 10)).unwrap();
    f.park(Fail::Wait(k1), Req::new(3, B)).unwrap();
    d.fail(0);
    assert_eq!(
        done(&mut f),
        [
            (Req::new(1, A), Some(Errno::EIO)),
            (Req::new(2, B), Some(Errno::EIO))
        ]
    );
    d.complete(0);
    assert_eq!(done(&mut f), [(Req::new(3, B), None)]);
    assert_eq!(ok(read(&mut f, B, b, BS as u64, 10)), &data[BS..BS + 10]);
    // The failed block was not cached: asked again, it is read again.
    assert_eq!(waits(read(&mut f, A, a, 0, 10)), Some(k0));
    d.complete(0);
    assert!(done(&mut f).is_empty());
    assert_eq!(ok(read(&mut f, A, a, 0, 10)), &data[..10]);
}

#[test]
fn a_failed_synchronous_read_is_eio_and_changes_nothing() {
    let (mut f, d, data) = with_data(2 * BS, 8);
    let fd = open(&mut f, A, "DATA.BIN", of::RDWR).unwrap();
    assert_eq!(ok(read(&mut f, A, fd, 0, 10)), &data[..10]);
    // The file's data sectors fail from now on (the FAT and the directories do not).
    let end = d.0.borrow().image.len() as u64 / 512;
    d.0.borrow_mut().bad.push(200..end);
    assert_eq!(err(read(&mut f, A, fd, BS as u64, 10)), Errno::EIO);
    assert_eq!(err(write(&mut f, A, fd, BS as u64, b"x")), Errno::EIO);
    assert_eq!(f.fstat(A, fd), Ok(2 * BS as u64));
    d.0.borrow_mut().bad.clear();
    assert_eq!(ok(read(&mut f, A, fd, BS as u64, 10)), &data[BS..BS + 10]);
}

#[test]
fn a_waiter_whose_task_exits_is_not_run_again() {
    let (mut f, d, _) = with_data(BS, 8);
    let a = open(&mut f, A, "DATA.BIN", of::RDONLY).unwrap();
    let b = open(&mut f, B, "DATA.BIN", of::RDONLY).unwrap();
    f.can_wait = true;
    let k = waits(read(&mut f, A, a, 0, 10)).unwrap();
    f.park(Fail::Wait(k), Req::new(1, A)).unwrap();
    f.park(Fail::Wait(k), Req::new(2, B)).unwrap();
    f.can_wait = false;
    assert_eq!(f.task_exit(A), Ok(()));
    assert_eq!(err(read(&mut f, A, a, 0, 10)), Errno::EBADF);
    d.complete(0);
    let out = done(&mut f);
    assert_eq!(out.len(), 2);
    assert!(
        out[0].0.gone && out[0].0.pid == A,
        "A's request is answered into nothing"
    );
    assert!(!out[1].0.gone);
    assert_eq!(ok(read(&mut f, B, b, 0, 3)).len(), 3);
    assert_eq!(f.stats().cached, 1);
}

#[test]
fn a_read_in_flight_when_the_file_is_cut_is_thrown_away() {
    let (mut f, d, _) = with_data(2 * BS, 8);
    let fd = open(&mut f, A, "DATA.BIN", of::RDWR).unwrap();
    f.can_wait = true;
    let k = waits(read(&mut f, A, fd, BS as u64, 10)).unwrap();
    f.park(Fail::Wait(k), Req::new(1, A)).unwrap();
    f.can_wait = false;
    assert_eq!(f.ftruncate(A, fd, 100), Ok(()));
    d.complete_all_reversed();
    // Run again (the read was stale), it finds the new end of the file.
    assert_eq!(done(&mut f), [(Req::new(1, A), None)]);
    f.can_wait = true;
    assert_eq!(ok(read(&mut f, A, fd, BS as u64, 10)), b"");
    assert_eq!(f.stats().cached, 1, "only block 0, written by the truncate");
}

#[test]
fn a_small_cache_reads_synchronously_and_waits_for_nothing() {
    let (mut f, d, data) = with_data(2 * BS, 2);
    let fd = open(&mut f, A, "DATA.BIN", of::RDONLY).unwrap();
    f.can_wait = true;
    assert_eq!(
        ok(read(&mut f, A, fd, BS as u64 - 1, 2)),
        &data[BS - 1..BS + 1]
    );
    assert!(d.in_flight().is_empty());
    assert_eq!(d.stats().async_reads, 0);
}

#[test]
fn a_request_that_needs_room_waits_for_a_read_to_end() {
    // Four slots, four reads in flight at most: block reads fill them all.
    let files: Vec<Vec<u8>> = (0..5).map(|i| pattern(40 + i, 100)).collect();
    let names = ["F0.BIN", "F1.BIN", "F2.BIN", "F3.BIN", "F4.BIN"];
    let list: Vec<(&str, &[u8])> = names
        .iter()
        .zip(&files)
        .map(|(n, b)| (*n, b.as_slice()))
        .collect();
    let (mut f, d) = mount(image(&list, 0), 4, false);
    let fds: Vec<u64> = names
        .iter()
        .map(|n| open(&mut f, A, n, of::RDONLY).unwrap())
        .collect();
    f.can_wait = true;
    for (i, &fd) in fds[..4].iter().enumerate() {
        let k = waits(read(&mut f, A, fd, 0, 10)).unwrap();
        f.park(Fail::Wait(k), Req::new(i as u32, A)).unwrap();
    }
    assert_eq!(d.in_flight().len(), 4);
    assert_eq!(waits(read(&mut f, A, fds[4], 0, 10)), None);
    f.park(Fail::WaitRoom, Req::new(9, A)).unwrap();
    d.complete(2);
    assert_eq!(done(&mut f), [(Req::new(2, A), None)]);
    d.complete(0);
    let out = done(&mut f);
    assert_eq!(out, [(Req::new(0, A), None), (Req::new(9, A), None)]);
    for i in [0, 2] {
        assert_eq!(ok(read(&mut f, A, fds[i], 0, 200)), files[i]);
    }
    // F4 now finds room (it evicts a block nobody waits for).
    let k = waits(read(&mut f, A, fds[4], 0, 200)).unwrap();
    f.park(Fail::Wait(k), Req::new(10, A)).unwrap();
    d.complete_all_reversed();
    let out = done(&mut f);
    assert!(out.contains(&(Req::new(10, A), None)));
    assert_eq!(ok(read(&mut f, A, fds[4], 0, 200)), files[4]);
}

#[test]
fn a_block_of_several_runs_is_one_fill_finished_by_its_last_part_in_any_order() {
    let one = pattern(50, BS);
    let two = pattern(51, BS);
    let (mut f, d) = mount(super::host::fragmented(&one, &two, 16 * 1024), 8, false);
    let fd = open(&mut f, A, "FRAG1.BIN", of::RDONLY).unwrap();
    f.can_wait = true;
    let k = waits(read(&mut f, A, fd, 0, BS)).unwrap();
    f.park(Fail::Wait(k), Req::new(1, A)).unwrap();
    // Four runs of 16 KiB: four requests, each into its own part of one slot.
    let parts = d.in_flight();
    assert_eq!(parts.len(), 4);
    assert!(
        parts
            .iter()
            .all(|p| p.slot == parts[0].slot && p.len == 16 * 1024)
    );
    let at: Vec<usize> = parts.iter().map(|p| p.at).collect();
    assert_eq!(at, [0, 16 * 1024, 32 * 1024, 48 * 1024]);
    d.complete(2);
    d.complete(0);
    d.complete(1);
    assert!(done(&mut f).is_empty(), "not before its last part");
    // Room is short while the fill is in flight: another file's miss waits for room.
    let other = open(&mut f, B, "FRAG2.BIN", of::RDONLY).unwrap();
    assert_eq!(waits(read(&mut f, B, other, 0, 10)), None);
    f.park(Fail::WaitRoom, Req::new(2, B)).unwrap();
    d.complete(0);
    assert_eq!(
        done(&mut f),
        [(Req::new(1, A), None), (Req::new(2, B), None)]
    );
    assert_eq!(ok(read(&mut f, A, fd, 0, BS)), one);
    assert!(d.stats().requests > 4);
    // One failed part fails the whole fill.
    let k = waits(read(&mut f, B, other, 0, 10)).unwrap();
    f.park(Fail::Wait(k), Req::new(3, B)).unwrap();
    d.complete(3);
    d.fail(1);
    d.complete_all_reversed();
    assert_eq!(done(&mut f), [(Req::new(3, B), Some(Errno::EIO))]);
    f.can_wait = false;
    assert_eq!(ok(read(&mut f, B, other, 0, BS)), two);
}

#[test]
fn fork_shares_positions_and_exec_closes_cloexec_ones() {
    let (mut f, _d, data) = with_data(1000, 8);
    let keep = open(&mut f, A, "DATA.BIN", of::RDONLY).unwrap();
    let gone = open(&mut f, A, "DATA.BIN", of::RDONLY | of::CLOEXEC).unwrap();
    assert_eq!(ok(read(&mut f, A, keep, AT_POSITION, 100)), &data[..100]);
    assert_eq!(f.task_fork(A, B), Ok(()));
    // The child's copy shares the parent's position (one open file description): each
    // read moves it for both.
    assert_eq!(ok(read(&mut f, B, keep, AT_POSITION, 10)), &data[100..110]);
    assert_eq!(ok(read(&mut f, A, keep, AT_POSITION, 10)), &data[110..120]);
    assert_eq!(ok(f.span(B, keep, AT_POSITION, 5, false)), (120, 5, 1000));
    assert_eq!(f.lseek(A, keep, 0, Whence::Cur), Ok(125));
    // A descriptor opened after the fork is the parent's alone.
    let later = open(&mut f, A, "DATA.BIN", of::RDONLY).unwrap();
    assert_eq!(err(read(&mut f, B, later, 0, 1)), Errno::EBADF);
    assert_eq!(f.close(A, later), Ok(()));
    assert_eq!(f.descriptors(), (4, 1));
    assert_eq!(f.task_exec(B), Ok(()));
    assert_eq!(err(read(&mut f, B, gone, 0, 1)), Errno::EBADF);
    assert_eq!(ok(read(&mut f, B, keep, 0, 1)), &data[..1]);
    assert_eq!(ok(read(&mut f, A, gone, 0, 1)), &data[..1]);
    assert_eq!(f.task_exit(A), Ok(()));
    assert_eq!(f.task_exit(B), Ok(()));
    assert_eq!(f.descriptors(), (0, 0));
}

#[test]
fn span_settles_ranges_without_moving_bytes() {
    let (mut f, _d, data) = with_data(1000, 8);
    let r = open(&mut f, A, "DATA.BIN", of::RDONLY).unwrap();
    let w = open(&mut f, A, "DATA.BIN", of::WRONLY).unwrap();
    let app = open(&mut f, A, "DATA.BIN", of::WRONLY | of::APPEND).unwrap();
    let span = |f: &mut Files<Host>, fd, at, len, write| ok(f.span(A, fd, at, len, write));
    // Reads: the position advances, the length stops at the end of the file.
    assert_eq!(span(&mut f, r, AT_POSITION, 600, false), (0, 600, 1000));
    assert_eq!(span(&mut f, r, AT_POSITION, 600, false), (600, 400, 1000));
    assert_eq!(span(&mut f, r, AT_POSITION, 600, false), (1000, 0, 1000));
    // pread-style: the position stays.
    assert_eq!(span(&mut f, r, 10, 20, false), (10, 20, 1000));
    assert_eq!(span(&mut f, r, 5000, 20, false), (5000, 0, 1000));
    assert_eq!(f.lseek(A, r, 0, Whence::Cur), Ok(1000));
    // Access modes, forged descriptors, negative and huge offsets.
    let no = |r: Result<(u64, u64, u64), Fail>| match r {
        Err(Fail::No(e)) => e,
        other => panic!("{:?}", other.map_err(|_| "waits")),
    };
    assert_eq!(no(f.span(A, r, 0, 1, true)), Errno::EBADF);
    assert_eq!(no(f.span(A, w, 0, 1, false)), Errno::EBADF);
    assert_eq!(no(f.span(B, r, 0, 1, false)), Errno::EBADF);
    assert_eq!(no(f.span(A, 999, 0, 1, false)), Errno::EBADF);
    assert_eq!(no(f.span(A, w, 1 << 63, 1, true)), Errno::EINVAL);
    assert_eq!(no(f.span(A, w, u32::MAX as u64, 1, true)), Errno::EFBIG);
    assert_eq!(no(f.span(A, w, 1, u64::MAX, true)), Errno::EFBIG);
    assert_eq!(f.fstat(A, w), Ok(1000));
    // A write past the end grows the file (zeroes between), an append goes to the end.
    assert_eq!(span(&mut f, w, 1100, 50, true), (1100, 50, 1150));
    assert_eq!(ok(read(&mut f, A, r, 990, 200)), {
        let mut v = data[990..].to_vec();
        v.resize(160, 0);
        v
    });
    assert_eq!(span(&mut f, app, AT_POSITION, 8, true), (1150, 8, 1158));
    assert_eq!(span(&mut f, app, AT_POSITION, 8, true), (1158, 8, 1166));
    assert_eq!(span(&mut f, app, 0, 8, true), (0, 8, 1166));
    assert_eq!(f.lseek(A, app, 0, Whence::Cur), Ok(1166));
    for fd in [r, w, app] {
        assert_eq!(f.close(A, fd), Ok(()));
    }
}

#[test]
fn span_brings_blocks_in_and_reports_disk_errors() {
    let blocks = 8;
    let (mut f, d, _) = with_data(blocks * BS, 16);
    let fd = open(&mut f, A, "DATA.BIN", of::RDWR).unwrap();
    // A long read is cut at the end of the blocks brought in (4), which are cached now.
    let (at, n, _) = ok(f.span(A, fd, 100, 6 * BS as u64, false));
    assert_eq!((at, n), (100, 4 * BS as u64 - 100));
    let cached = f.stats().cached;
    assert!(cached >= 4, "{cached} blocks cached");
    // A read that would fault a block the disk cannot give: EIO from Span (a window's
    // fault would have been BUS), nothing changed, and the position stays.
    let end = d.0.borrow().image.len() as u64 / 512;
    d.0.borrow_mut().bad.push(200..end);
    let pos = f.lseek(A, fd, 5 * BS as i64, Whence::Set).unwrap();
    match f.span(A, fd, AT_POSITION, 10, false) {
        Err(Fail::No(Errno::EIO)) => {}
        _ => panic!("a failed block read was not EIO"),
    }
    match f.span(A, fd, 6 * BS as u64, 10, true) {
        Err(Fail::No(Errno::EIO)) => {}
        _ => panic!("a failed block read under a write was not EIO"),
    }
    assert_eq!(f.lseek(A, fd, 0, Whence::Cur), Ok(pos));
    d.0.borrow_mut().bad.clear();
    assert_eq!(
        ok(f.span(A, fd, AT_POSITION, 10, false)),
        (pos, 10, (blocks * BS) as u64)
    );
}

#[test]
fn o_direct_goes_around_the_cache_after_writing_it_back() {
    let (mut f, d, mut data) = with_data(2 * BS, 8);
    let cached = open(&mut f, A, "DATA.BIN", of::RDWR).unwrap();
    let direct = open(&mut f, A, "DATA.BIN", of::RDWR | of::DIRECT).unwrap();
    // A cached write not yet on the disk: a direct read sees it (written back first).
    ok(write(&mut f, A, cached, 1000, b"cached"));
    data[1000..1006].copy_from_slice(b"cached");
    assert_eq!(ok(read(&mut f, A, direct, 512, 1024)), &data[512..1536]);
    assert_eq!(err(read(&mut f, A, direct, 100, 512)), Errno::EINVAL);
    assert_eq!(err(write(&mut f, A, direct, 0, &[1; 100])), Errno::EINVAL);
    // A direct write: on the disk at once, and the cache forgets the old bytes.
    let new = pattern(60, 4096);
    assert_eq!(ok(write(&mut f, A, direct, BS as u64 - 2048, &new)), 4096);
    data[BS - 2048..BS + 2048].copy_from_slice(&new);
    assert_eq!(d.synced(&mut f).file("DATA.BIN").unwrap(), data);
    assert_eq!(ok(read(&mut f, A, cached, BS as u64 - 2048, 4096)), new);
    assert_eq!(f.close(A, direct), Ok(()));
    assert_eq!(f.close(A, cached), Ok(()));
    assert_eq!(d.synced(&mut f).fsck(), Vec::<std::string::String>::new());
}

/// `fd`'s `O_DIRECT` buffer, mapped: vm's handle on it, claimed.
fn direct_buffer(f: &mut Files<Host>, pid: u64, fd: u64) -> u64 {
    let (handle, len) = f.direct_buffer(pid, fd).expect("direct_buffer");
    assert_eq!(len, proto::file::DIRECT_MAX);
    let c = f.claim(handle, pid).expect("claim");
    assert!(c.writable, "the buffer is the task's to write");
    handle
}

/// A `DirectRead` of `want` bytes at `at` through `fd`'s buffer: the bytes it gives.
fn direct_read(
    f: &mut Files<Host>,
    pid: u64,
    fd: u64,
    at: u64,
    want: u64,
) -> Result<Vec<u8>, Errno> {
    let n = f.direct_read_buffer(pid, fd, at, want)?;
    Ok(f.direct_bytes(pid, fd).expect("a buffer")[..n as usize].to_vec())
}

/// A `DirectWrite` of `data` at `at` through `fd`'s buffer (the task copies it in first).
fn direct_write(
    f: &mut Files<Host>,
    pid: u64,
    fd: u64,
    at: u64,
    data: &[u8],
) -> Result<u64, Errno> {
    f.direct_bytes(pid, fd).expect("a buffer")[..data.len()].copy_from_slice(data);
    f.direct_write_buffer(pid, fd, at, data.len() as u64)
}

#[test]
fn o_direct_buffer_reads_and_writes_the_disk_coherently_with_the_cache() {
    let (mut f, d, mut data) = with_data(2 * BS + 700, 8);
    let cached = open(&mut f, A, "DATA.BIN", of::RDWR).unwrap();
    let direct = open(&mut f, A, "DATA.BIN", of::RDWR | of::DIRECT).unwrap();
    // Without a buffer: EINVAL (the runtime asks for one first).
    assert_eq!(f.direct_read_buffer(A, direct, 0, 512), Err(Errno::EINVAL));
    // Not an O_DIRECT descriptor, another task's: no buffer.
    assert_eq!(f.direct_buffer(A, cached).map(|_| ()), Err(Errno::EINVAL));
    assert_eq!(f.direct_buffer(B, direct).map(|_| ()), Err(Errno::EBADF));
    let h = direct_buffer(&mut f, A, direct);
    // vm maps the buffer's one block, whole; nothing past it.
    let (slot, valid) = ok(f.object_page(h, 0, true));
    assert_eq!(valid, BS as u64);
    assert_eq!(err(f.object_page(h, 1, false)), Errno::EFAULT);
    // A cached write not yet on the disk, and a store through a mapping: a direct read
    // sees both (the blocks are written back first).
    ok(write(&mut f, A, cached, 1000, b"cached"));
    data[1000..1006].copy_from_slice(b"cached");
    let m = mapped(&mut f, A, cached, true);
    let (mslot, _) = ok(f.object_page(m, 1, true));
    f.cache.bytes(mslot)[10..16].copy_from_slice(b"mapped");
    data[BS + 10..BS + 16].copy_from_slice(b"mapped");
    assert_eq!(f.object_dirty(m, 1), Ok(()));
    assert_eq!(
        direct_read(&mut f, A, direct, 512, 1024),
        Ok(data[512..1536].to_vec())
    );
    assert_eq!(
        direct_read(&mut f, A, direct, BS as u64, 2 * BS as u64),
        Ok(data[BS..2 * BS].to_vec()),
        "one transfer is DIRECT_MAX at most"
    );
    // The position: from 0, advancing; the end of the file reads short, then 0.
    assert_eq!(
        direct_read(&mut f, A, direct, AT_POSITION, 1024),
        Ok(data[..1024].to_vec())
    );
    assert_eq!(f.lseek(A, direct, 0, Whence::Cur), Ok(1024));
    let tail = 2 * BS as u64;
    assert_eq!(
        direct_read(&mut f, A, direct, tail, 4096),
        Ok(data[2 * BS..].to_vec())
    );
    assert_eq!(
        direct_read(&mut f, A, direct, tail + 700, 4096),
        Ok(Vec::new())
    );
    // Alignment: EINVAL for the offset and the length, as before.
    assert_eq!(direct_read(&mut f, A, direct, 100, 512), Err(Errno::EINVAL));
    assert_eq!(direct_read(&mut f, A, direct, 512, 100), Err(Errno::EINVAL));
    assert_eq!(
        direct_write(&mut f, A, direct, 0, &[1; 100]),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        direct_write(&mut f, A, direct, 100, &[1; 512]),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        f.direct_write_buffer(A, direct, u32::MAX as u64 - 511, 1024),
        Err(Errno::EFBIG)
    );
    // A direct write: on the disk at once; the cache and the mapping forget the old bytes.
    let new = pattern(60, 4096);
    assert_eq!(
        direct_write(&mut f, A, direct, BS as u64 - 2048, &new),
        Ok(4096)
    );
    data[BS - 2048..BS + 2048].copy_from_slice(&new);
    assert_eq!(d.synced(&mut f).file("DATA.BIN").unwrap(), data);
    assert_eq!(ok(read(&mut f, A, cached, BS as u64 - 2048, 4096)), new);
    let (mslot, _) = ok(f.object_page(m, 1, false));
    assert_eq!(
        &f.cache.bytes(mslot)[..2048],
        &new[2048..],
        "the mapping sees it"
    );
    // Past the end, after a gap: the file grows, the gap is zero, fstat says so.
    let far = 3 * BS as u64 + 512;
    assert_eq!(direct_write(&mut f, A, direct, far, &new), Ok(4096));
    data.resize(far as usize, 0);
    data.extend_from_slice(&new);
    assert_eq!(f.fstat(A, cached), Ok(data.len() as u64));
    assert_eq!(read_all(&mut f, A, cached, 30_000), data);
    assert_eq!(d.synced(&mut f).file("DATA.BIN").unwrap(), data);
    // O_APPEND: at the end, whatever the position.
    let app = open(&mut f, A, "DATA.BIN", of::WRONLY | of::APPEND | of::DIRECT).unwrap();
    direct_buffer(&mut f, A, app);
    assert_eq!(
        direct_write(&mut f, A, app, AT_POSITION, &new[..512]),
        Ok(512)
    );
    data.extend_from_slice(&new[..512]);
    assert_eq!(d.synced(&mut f).file("DATA.BIN").unwrap(), data);
    assert_eq!(f.lseek(A, app, 0, Whence::Cur), Ok(data.len() as u64));
    // A write-only descriptor reads nothing through its buffer.
    assert_eq!(f.direct_read_buffer(A, app, 0, 512), Err(Errno::EBADF));
    // Closing the descriptor takes the buffer away: vm's next fault on it is EFAULT.
    assert_eq!(f.close(A, direct), Ok(()));
    assert_eq!(err(f.object_page(h, 0, false)), Errno::EFAULT);
    assert!(f.cache.slots[slot].key.is_none() || f.cache.slots[slot].key.unwrap().0 < 1 << 63);
    assert_eq!(f.object_release(pid::VM, h), Ok(()));
    assert_eq!(f.object_release(pid::VM, m), Ok(()));
    assert_eq!(f.close(A, app), Ok(()));
    assert_eq!(f.close(A, cached), Ok(()));
    assert_eq!(f.descriptors(), (0, 0));
}

#[test]
fn o_direct_buffers_are_bounded_per_task_in_all_and_by_the_cache() {
    let (mut f, _d, _) = with_data(BS, 64);
    let mut fds = Vec::new();
    for _ in 0..5 {
        fds.push(open(&mut f, A, "DATA.BIN", of::RDONLY | of::DIRECT).unwrap());
    }
    for &fd in &fds[..4] {
        assert!(f.direct_buffer(A, fd).is_ok());
    }
    // A second handle on a descriptor's buffer is the same buffer, not a new one.
    assert!(f.direct_buffer(A, fds[0]).is_ok());
    assert_eq!(f.direct_buffer(A, fds[4]).map(|_| ()), Err(Errno::ENOMEM));
    // Another task may have its own, up to the cache's quarter (64 / 4 = 16) in all.
    let mut others = Vec::new();
    for pid in 20..40 {
        let fd = open(&mut f, pid, "DATA.BIN", of::RDONLY | of::DIRECT).unwrap();
        others.push((pid, fd, f.direct_buffer(pid, fd).map(|_| ())));
    }
    let given = others.iter().filter(|o| o.2.is_ok()).count();
    assert_eq!(given, 12, "16 in all");
    assert!(
        others
            .iter()
            .all(|o| o.2.is_ok() || o.2 == Err(Errno::EAGAIN))
    );
    // A buffer goes back with its descriptor (also at the task's end).
    assert_eq!(f.close(A, fds[0]), Ok(()));
    assert!(f.direct_buffer(A, fds[4]).is_ok());
    for pid in 20..40 {
        assert_eq!(f.task_exit(pid), Ok(()));
    }
    // The cached reads still have room: buffers never take more than a quarter.
    let (mut f, _d, data) = with_data(BS, 8);
    let fd = open(&mut f, A, "DATA.BIN", of::RDONLY | of::DIRECT).unwrap();
    let fd2 = open(&mut f, A, "DATA.BIN", of::RDONLY | of::DIRECT).unwrap();
    let fd3 = open(&mut f, A, "DATA.BIN", of::RDONLY | of::DIRECT).unwrap();
    assert!(f.direct_buffer(A, fd).is_ok());
    assert!(f.direct_buffer(A, fd2).is_ok());
    assert_eq!(f.direct_buffer(A, fd3).map(|_| ()), Err(Errno::EAGAIN));
    // The message path still works there.
    assert_eq!(ok(read(&mut f, A, fd3, 0, 512)), &data[..512]);
    let (mut f, _d, _) = with_data(BS, 3);
    let fd = open(&mut f, A, "DATA.BIN", of::RDONLY | of::DIRECT).unwrap();
    assert_eq!(
        f.direct_buffer(A, fd).map(|_| ()),
        Err(Errno::EAGAIN),
        "a tiny cache"
    );
}

/// Task `pid`'s size page, mapped: the slot its bytes are in.
fn size_page(f: &mut Files<Host>, pid: u64) -> usize {
    let (handle, len) = f.size_page(pid).expect("size_page");
    assert_eq!(len, BS as u64);
    f.claim(handle, pid).expect("claim");
    ok(f.object_page(handle, 0, true)).0
}

/// Word `word` of cell `cell` of the page in `slot`.
fn cell(f: &mut Files<Host>, slot: usize, cell: usize, word: usize) -> u64 {
    let at = (cell * 2 + word) * 8;
    u64::from_le_bytes(f.cache.bytes(slot)[at..at + 8].try_into().unwrap())
}

fn set_cell(f: &mut Files<Host>, slot: usize, cell: usize, word: usize, v: u64) {
    let at = (cell * 2 + word) * 8;
    f.cache.bytes(slot)[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn growth_reservations_fold_in_end_before_changes_and_are_bounded() {
    let (mut f, d, _) = with_data(100, 32);
    let fd = open(&mut f, A, "NEW.DAT", of::RDWR | of::CREAT).unwrap();
    let other = open(&mut f, A, "NEW.DAT", of::RDWR).unwrap();
    // No size page yet: a plain growth.
    assert_eq!(ok(f.grow(A, fd, 0, 1024, 0)), (0, 1024, 1024, 0, 0));
    let page = size_page(&mut f, A);
    // The task's window (its `GetObject` clears past the end: a reservation would end).
    let (w, _) = f.get_window(A, fd).unwrap();
    f.claim(w, A).unwrap();
    // A reservation: the blocks from the range's on, to four, past the disk's end.
    let (at, n, size, limit, c) = ok(f.grow(A, fd, 1024, 1024, 3));
    assert_eq!((at, n, size, c), (1024, 1024, 2048, 3));
    assert_eq!(limit, 4 * BS as u64);
    assert_eq!(
        (cell(&mut f, page, 3, 0), cell(&mut f, page, 3, 1)),
        (2048, limit)
    );
    // The task writes on through its window (the bytes, then the end in its cell): the
    // window may fault in the reserved blocks past the size.
    let (slot, _) = ok(f.object_page(w, 0, true));
    f.cache.bytes(slot)[2048..5000].copy_from_slice(&pattern(9, 2952));
    assert!(
        f.object_page(w, 2, true).is_ok(),
        "a reserved block past the size"
    );
    set_cell(&mut f, page, 3, 0, 5000);
    assert_eq!(f.fstat(A, other), Ok(2048), "not folded yet");
    f.fold_reserved();
    assert_eq!(f.fstat(A, other), Ok(5000));
    assert_eq!(ok(read(&mut f, A, other, 2048, 2952)), pattern(9, 2952));
    // A forged end: never past the limit, never below the size.
    set_cell(&mut f, page, 3, 0, u64::MAX);
    f.fold_reserved();
    assert_eq!(f.fstat(A, other), Ok(limit));
    set_cell(&mut f, page, 3, 0, 10);
    f.fold_reserved();
    assert_eq!(f.fstat(A, other), Ok(limit));
    // An ftruncate ends it (limit 0 in the cell, after folding), then cuts.
    assert_eq!(f.ftruncate(A, other, 5000), Ok(()));
    assert_eq!(
        cell(&mut f, page, 3, 1),
        0,
        "the task sees the reservation ended"
    );
    set_cell(&mut f, page, 3, 0, 6000);
    f.fold_reserved();
    assert_eq!(
        f.fstat(A, other),
        Ok(5000),
        "an ended reservation folds nothing"
    );
    // Another growth (through the message path) ends a new one too.
    ok(f.grow(A, fd, 5000, 100, 3));
    assert_ne!(cell(&mut f, page, 3, 1), 0);
    ok(write(&mut f, A, other, 6000, b"x"));
    assert_eq!(cell(&mut f, page, 3, 1), 0);
    // A write-back (a sync) ends it: the bytes past the size are cleared there.
    ok(f.grow(A, fd, 6001, 100, 3));
    assert_ne!(cell(&mut f, page, 3, 1), 0);
    assert_eq!(f.sync_all(), Ok(()));
    assert_eq!(cell(&mut f, page, 3, 1), 0);
    // None for: the position, O_APPEND, a cell past the page's, a fork-shared descriptor.
    assert_eq!(ok(f.grow(A, fd, AT_POSITION, 10, 3)).3, 0);
    let app = open(&mut f, A, "NEW.DAT", of::RDWR | of::APPEND).unwrap();
    assert_eq!(ok(f.grow(A, app, 7000, 10, 4)).3, 0);
    assert_eq!(ok(f.grow(A, fd, 7000, 10, 16)).3, 0);
    assert_eq!(ok(f.grow(A, fd, 7000, 10, u64::MAX)).3, 0);
    // Two descriptors in one cell: the second ends the first's.
    assert_ne!(ok(f.grow(A, fd, 7010, 10, 5)).3, 0);
    assert_ne!(ok(f.grow(A, other, 7020, 10, 5)).3, 0);
    set_cell(&mut f, page, 5, 0, 7100);
    f.fold_reserved();
    assert_eq!(f.fstat(A, fd), Ok(7100));
    // Close: the size holds what was written, nothing reserved; the disk says the same.
    assert_eq!(f.close(A, app), Ok(()));
    assert_eq!(f.close(A, fd), Ok(()));
    assert_eq!(f.close(A, other), Ok(()));
    assert_eq!(f.object_release(pid::VM, w), Ok(()));
    assert_eq!(d.synced(&mut f).file("NEW.DAT").unwrap().len(), 7100);
    assert_eq!(f.task_fork(A, B), Ok(()));
    let shared = open(&mut f, A, "NEW.DAT", of::RDWR).unwrap();
    assert_eq!(f.task_fork(A, 12), Ok(()));
    assert_eq!(
        ok(f.grow(A, shared, 8000, 10, 0)).3,
        0,
        "a position shared with a child"
    );
    assert_eq!(f.task_exit(12), Ok(()));
    assert_eq!(f.task_exit(B), Ok(()));
    assert_eq!(f.task_exit(A), Ok(()));
    // Pages: an eighth of the cache (32 / 8 = 4 tasks), EAGAIN past; freed at the end.
    for pid in 20..24 {
        assert!(f.size_page(pid).is_ok());
    }
    assert_eq!(f.size_page(24).map(|_| ()), Err(Errno::EAGAIN));
    assert_eq!(f.task_exit(20), Ok(()));
    assert!(f.size_page(24).is_ok());
}
