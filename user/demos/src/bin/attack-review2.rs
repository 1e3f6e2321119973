//! A third, hostile look at the servers (after `attack-review`): what the first review left
//! open, and what a POSIX test suite of the memory and file calls finds next. One
//! `PASS`/`FAIL` line per check.
//!
//! - `review2-shm-shrink-bus`: a shm object shrunk to end inside a page keeps that page
//!   mapped (its bytes up to the end keep their data), but a page wholly past the new end
//!   is `BUS` at the address touched, also in a fork child that inherited the mapping
//!   (Linux: `SIGBUS`); grown again, everything past the old end reads as zero. Before, only
//!   whole 64 KiB blocks past the end were taken away, and the pages past the end of the
//!   last one stayed mapped.
//! - `review2-shm-rw`: `read`, `write`, `pread`, `pwrite`, `lseek` and `fstat` work on shm
//!   descriptors as on files (POSIX shm objects are files; Linux's tmpfs): writes grow the
//!   object, a mapping sees them and they see the mapping's stores, the position moves,
//!   `EBADF` for writes through a read-only descriptor and for closed ones, `EINVAL` for a
//!   negative position. Before, all of them went to the file server (`EBADF`).
//! - `review2-direct-stage`: an `O_DIRECT` read staged by an earlier call (a transfer the
//!   caller did not finish taking) is not handed to a later call: that one reads the disk
//!   afresh, after the cached writes made in between (before, it got the old bytes).
//! - `review2-ftruncate-negative`: `ftruncate` to a length negative as an `off_t` is
//!   `EINVAL` (POSIX), for a file and a shm object, and changes nothing (it was `EFBIG`).
//! - `review2-truncate-disk-error`: an `ftruncate` that shrinks `TRUNCF.DAT` (four 64 KiB
//!   blocks on the disk) must bring its blocks in from the disk first; the scenario makes
//!   the disk fail the read of its second block once (QEMU `blkdebug`). The `ftruncate` is
//!   `EIO` and changes nothing (size and bytes), and nothing stays pinned: a second try
//!   works, and the host finds the file cut after power-off. Before, the size was already
//!   cut when the read failed, and the blocks read so far stayed pinned for good.
//!
//! Runs with a disk copy of its own and a page cache of four blocks (`attack-review2`).
#![no_std]
#![no_main]

use demos::{Checks, PAGE, peek, poke};
use libmk::{Cap, Endpoint};
use rt::proto::task_slots;
use rt::{
    Errno, MAP_SHARED, O_CREAT, O_DIRECT, O_EXCL, O_RDONLY, O_RDWR, PROT_READ, PROT_WRITE,
    WaitStatus, Whence, println,
};

rt::entry!(main);

const RW: u64 = PROT_READ | PROT_WRITE;
const FILE: Cap<Endpoint> = Cap::from_cptr(task_slots::FILE);

fn main() -> i32 {
    println!("attack-review2: pid {}", rt::getpid());
    let mut c = Checks::default();
    c.run("review2-shm-shrink-bus", shm_shrink_bus);
    c.run("review2-shm-rw", shm_rw);
    c.run("review2-direct-stage", direct_stage);
    c.run("review2-ftruncate-negative", ftruncate_negative);
    c.run("review2-truncate-disk-error", truncate_disk_error);
    println!("attack-review2: {} failures", c.failures);
    c.failures
}

/// `TRUNCF.DAT`'s byte `i` (as the scenario's disk preparation writes it).
fn truncf_byte(i: u64) -> u8 {
    (i * 13 % 251) as u8
}

/// Its size before and after the shrink.
const TRUNCF_SIZE: u64 = 4 * 65536;
const TRUNCF_CUT: u64 = 2 * 65536 + 100;

/// Whether `fd`'s bytes from 0 to `len` are `TRUNCF.DAT`'s.
fn truncf_intact(fd: u64, len: u64) -> bool {
    let mut buf = [0u8; 4096];
    let mut at = 0;
    while at < len {
        let n = (len - at).min(4096) as usize;
        if rt::pread(fd, &mut buf[..n], at) != Ok(n) {
            return false;
        }
        if (0..n).any(|k| buf[k] != truncf_byte(at + k as u64)) {
            return false;
        }
        at += n as u64;
    }
    true
}

fn truncate_disk_error() -> Result<(), &'static str> {
    let fd = rt::open("TRUNCF.DAT", O_RDWR).map_err(|_| "open failed")?;
    let r = (|| {
        if rt::fstat(fd).map(|s| s.size) != Ok(TRUNCF_SIZE) {
            return Err("TRUNCF.DAT is not as the scenario made it");
        }
        // The disk fails the read of block 1 (once).
        match rt::ftruncate(fd, TRUNCF_CUT) {
            Err(Errno::EIO) => {}
            Ok(()) => return Err("the injected disk error did not reach ftruncate"),
            Err(_) => return Err("ftruncate failed, but not with EIO"),
        }
        if rt::fstat(fd).map(|s| s.size) != Ok(TRUNCF_SIZE) {
            return Err("an ftruncate that failed (EIO) changed the size");
        }
        if !truncf_intact(fd, TRUNCF_SIZE) {
            return Err("an ftruncate that failed (EIO) changed the bytes");
        }
        // Nothing stayed pinned or half done: it works now, and every byte kept is right.
        rt::ftruncate(fd, TRUNCF_CUT).map_err(|_| "ftruncate failed the second time")?;
        if rt::fstat(fd).map(|s| s.size) != Ok(TRUNCF_CUT) || !truncf_intact(fd, TRUNCF_CUT) {
            return Err("the second ftruncate did not cut the file right");
        }
        Ok(())
    })();
    rt::close(fd).map_err(|_| "close failed")?;
    r
}

/// Forks a child that reads the word at `addr`: `Ok` if it is killed with `BUS` at
/// exactly that address.
fn bus_at(addr: u64) -> Result<(), &'static str> {
    match rt::fork() {
        Ok(0) => {
            let v = peek(addr);
            println!("attack-review2: read {v:#x} at {addr:#x}, past the end");
            rt::exit(0)
        }
        Ok(pid) => match rt::wait(pid) {
            Ok((_, WaitStatus::Bus, a)) if a == addr => Ok(()),
            Ok((_, how, v)) => {
                println!("attack-review2: child {pid} ended {how:?} {v:#x}");
                Err("a page wholly past the end of the object was not BUS")
            }
            Err(_) => Err("wait failed"),
        },
        Err(_) => Err("fork failed"),
    }
}

fn shm_shrink_bus() -> Result<(), &'static str> {
    let fd =
        rt::shm_open("/shrink", O_CREAT | O_EXCL | O_RDWR, 0o600).map_err(|_| "shm_open failed")?;
    let r = (|| {
        rt::ftruncate(fd, 3 * PAGE).map_err(|_| "ftruncate failed")?;
        let m = rt::mmap(0, 3 * PAGE, RW, MAP_SHARED, fd, 0).map_err(|_| "mmap failed")?;
        for p in 0..3 {
            poke(m + p * PAGE, 0x5117_0000 + p);
            poke(m + p * PAGE + 200, 0x5117_1000 + p);
        }
        // Ends 100 bytes into page 1: page 2 lies wholly past the end, in the same block.
        rt::ftruncate(fd, PAGE + 100).map_err(|_| "ftruncate (shrink) failed")?;
        bus_at(m + 2 * PAGE + 8)?;
        bus_at(m + 2 * PAGE + 0x7f8)?;
        // The page holding the end stays, with its data up to the end.
        if peek(m) != 0x5117_0000 || peek(m + PAGE) != 0x5117_0001 {
            return Err("the data before the new end changed");
        }
        if peek(m + PAGE + 200) != 0 {
            return Err("a byte past the new end, in the last page, did not read as zero");
        }
        // Grown again: past the old end, zero everywhere (also in the old mapping).
        rt::ftruncate(fd, 3 * PAGE).map_err(|_| "ftruncate (grow) failed")?;
        if peek(m + PAGE + 200) != 0 || peek(m + 2 * PAGE) != 0 || peek(m + 2 * PAGE + 200) != 0 {
            return Err("bytes past the end read back after the object grew");
        }
        rt::munmap(m, 3 * PAGE).map_err(|_| "munmap failed")?;
        Ok(())
    })();
    let _ = rt::close(fd);
    let _ = rt::shm_unlink("/shrink");
    r
}

fn pattern(i: usize) -> u8 {
    (i * 7 % 251) as u8
}

fn shm_rw() -> Result<(), &'static str> {
    let fd =
        rt::shm_open("/rw", O_CREAT | O_EXCL | O_RDWR, 0o600).map_err(|_| "shm_open failed")?;
    let r = (|| {
        let data: [u8; 1000] = core::array::from_fn(pattern);
        if rt::write(fd, &data) != Ok(1000) {
            return Err("write to a shm descriptor failed");
        }
        if rt::fstat(fd).map(|s| s.size) != Ok(1000) {
            return Err("write did not grow the object to 1000 bytes");
        }
        if rt::lseek(fd, 0, Whence::Cur) != Ok(1000) {
            return Err("the position did not follow the write");
        }
        if rt::lseek(fd, 0, Whence::Set) != Ok(0) {
            return Err("lseek to 0 failed");
        }
        let mut buf = [0u8; 2000];
        if rt::read(fd, &mut buf) != Ok(1000) || buf[..1000] != data[..] {
            return Err("read did not give back what write wrote");
        }
        if rt::read(fd, &mut buf) != Ok(0) {
            return Err("read at the end was not 0");
        }
        // Past the end, in the next block: the gap reads as zero.
        if rt::pwrite(fd, b"xyz", 70_000) != Ok(3) || rt::lseek(fd, 0, Whence::Cur) != Ok(1000) {
            return Err("pwrite failed or moved the position");
        }
        if rt::lseek(fd, -3, Whence::End) != Ok(70_000) {
            return Err("lseek from the end failed");
        }
        let mut three = [0u8; 3];
        if rt::read(fd, &mut three) != Ok(3) || &three != b"xyz" {
            return Err("read at the end did not give the pwrite's bytes");
        }
        let mut gap = [0xffu8; 4096];
        if rt::pread(fd, &mut gap, 1000) != Ok(4096) || gap.iter().any(|&b| b != 0) {
            return Err("the gap before a write past the end did not read as zero");
        }
        // A mapping sees the writes, and `read` sees the mapping's stores.
        let m = rt::mmap(0, 2 * 65536, RW, MAP_SHARED, fd, 0).map_err(|_| "mmap failed")?;
        let word = u64::from_le_bytes(core::array::from_fn(pattern));
        if peek(m) != word || peek(m + 70_000 - 8) != 0 {
            return Err("a mapping did not see what write wrote");
        }
        poke(m + 8 * 100, 0x0123_4567_89ab_cdef);
        let mut w = [0u8; 8];
        if rt::pread(fd, &mut w, 800) != Ok(8) || u64::from_le_bytes(w) != 0x0123_4567_89ab_cdef {
            return Err("pread did not see a mapping's store");
        }
        rt::munmap(m, 2 * 65536).map_err(|_| "munmap failed")?;
        // Across blocks, larger than a message.
        let big: [u8; 3000] = core::array::from_fn(|i| pattern(i + 3));
        for k in 0..60u64 {
            if rt::pwrite(fd, &big, 100_000 + k * 3000) != Ok(3000) {
                return Err("a large pwrite across blocks failed");
            }
        }
        for k in 0..60u64 {
            let mut back = [0u8; 3000];
            if rt::pread(fd, &mut back, 100_000 + k * 3000) != Ok(3000) || back != big {
                return Err("a large pread across blocks did not read back");
            }
        }
        // Errors as for files.
        if rt::lseek(fd, -1, Whence::Set) != Err(Errno::EINVAL) {
            return Err("lseek below 0 was not EINVAL");
        }
        let size = rt::fstat(fd).map(|s| s.size).map_err(|_| "fstat failed")?;
        if rt::pwrite(fd, &[], 1 << 30) != Ok(0) || rt::fstat(fd).map(|s| s.size) != Ok(size) {
            return Err("a write of nothing past the end changed the size");
        }
        let ro = rt::shm_open("/rw", O_RDONLY, 0).map_err(|_| "shm_open read-only failed")?;
        let ro_write = rt::write(ro, b"no");
        let ro_read = rt::pread(ro, &mut three, 70_000);
        let _ = rt::close(ro);
        if ro_write != Err(Errno::EBADF) {
            return Err("write through a read-only shm descriptor was not EBADF");
        }
        if ro_read != Ok(3) || &three != b"xyz" {
            return Err("read through a read-only shm descriptor failed");
        }
        if rt::read(ro, &mut three) != Err(Errno::EBADF)
            || rt::write(ro, b"x") != Err(Errno::EBADF)
            || rt::lseek(ro, 0, Whence::Set) != Err(Errno::EBADF)
        {
            return Err("a closed shm descriptor was not EBADF");
        }
        Ok(())
    })();
    let _ = rt::close(fd);
    let _ = rt::shm_unlink("/rw");
    r
}

fn direct_stage() -> Result<(), &'static str> {
    let w = rt::open("DSTAGE.DAT", O_CREAT | O_EXCL | O_RDWR).map_err(|_| "create failed")?;
    let r = (|| {
        rt::write(w, &[0x11u8; 4096]).map_err(|_| "write failed")?;
        let d = rt::open("DSTAGE.DAT", O_RDONLY | O_DIRECT).map_err(|_| "open O_DIRECT failed")?;
        let r = (|| {
            // A raw `Read` asking for 4 KiB: the server stages the transfer and sends the
            // first 464 bytes; the caller never asks for the rest.
            let mut buf = [0u8; 4096];
            let n = rt::file::read_once_on(FILE, d, 0, &mut buf).map_err(|_| "read failed")?;
            if n == 0 || buf[..n].iter().any(|&b| b != 0x11) {
                return Err("the first O_DIRECT read did not read the file");
            }
            // Another descriptor rewrites the file through the cache.
            rt::pwrite(w, &[0x22u8; 4096], 0).map_err(|_| "pwrite failed")?;
            // A new read, inside the old transfer's range.
            let mut later = [0u8; 512];
            if rt::pread(d, &mut later, 512) != Ok(512) {
                return Err("the later O_DIRECT read failed");
            }
            if later.iter().any(|&b| b != 0x22) {
                return Err("a later O_DIRECT read got an earlier call's stale transfer");
            }
            Ok(())
        })();
        let _ = rt::close(d);
        r
    })();
    let _ = rt::close(w);
    let _ = rt::unlink("DSTAGE.DAT");
    r
}

fn ftruncate_negative() -> Result<(), &'static str> {
    let f = rt::open("NEGTRUNC.DAT", O_CREAT | O_EXCL | O_RDWR).map_err(|_| "create failed")?;
    let s = rt::shm_open("/negtrunc", O_CREAT | O_EXCL | O_RDWR, 0o600);
    let r = (|| {
        let s = s.map_err(|_| "shm_open failed")?;
        rt::write(f, b"four").map_err(|_| "write failed")?;
        rt::ftruncate(s, 4).map_err(|_| "ftruncate failed")?;
        for fd in [f, s] {
            for len in [u64::MAX, 1 << 63, (1 << 63) + 4096] {
                if rt::ftruncate(fd, len) != Err(Errno::EINVAL) {
                    return Err("ftruncate to a negative length was not EINVAL");
                }
            }
            if rt::fstat(fd).map(|st| st.size) != Ok(4) {
                return Err("a refused ftruncate changed the size");
            }
        }
        Ok(())
    })();
    let _ = rt::close(f);
    let _ = rt::unlink("NEGTRUNC.DAT");
    if let Ok(s) = s {
        let _ = rt::close(s);
        let _ = rt::shm_unlink("/negtrunc");
    }
    r
}
