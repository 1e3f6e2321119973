//! Scenario `proc-directio` (issue 10): `O_DIRECT` through a buffer shared with the file
//! server (`rt::direct`: `DirectBuffer`, `DirectRead`, `DirectWrite`), coherent with the
//! page cache: a direct read sees what went through the cache and a shared mapping, a
//! direct write is seen by the next cached read and by a mapping made before it; a direct
//! write past the end grows the file (the gap zero, the size seen by another descriptor);
//! the alignment rules (`EINVAL`) and the end of the file; a `fork` child's own buffer;
//! more `O_DIRECT` descriptors than buffers; and that a 1 MiB transfer costs a few kernel
//! entries per 64 KiB, not an IPC round trip per 464 bytes. One `PASS`/`FAIL` line per
//! check; exits with the number of failures.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use demos::{Checks, peek, poke};
use rt::file::Whence;
use rt::{
    Errno, MAP_SHARED, O_CREAT, O_DIRECT, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, PROT_READ,
    PROT_WRITE, println,
};

rt::entry!(main);

const NAME: &str = "direct.dat";
const BLOCK: usize = 65536;

/// Byte `i` of the test pattern `seed`.
fn byte(seed: u8, i: usize) -> u8 {
    (i as u8).wrapping_mul(29).wrapping_add(seed)
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| byte(seed, i)).collect()
}

fn create(name: &str) -> Result<u64, Errno> {
    rt::open(name, O_CREAT | O_RDWR | O_TRUNC)
}

fn main() -> i32 {
    let mut c = Checks { failures: 0 };
    println!("directio: O_DIRECT through a buffer shared with the file server");
    c.run("direct-sees-cache-and-mapping", sees_cache_and_mapping);
    c.run("direct-write-seen", write_seen);
    c.run("direct-grow", grow);
    c.run("direct-alignment-eof", alignment_and_eof);
    c.run("direct-fork", fork);
    c.run("direct-many-descriptors", many_descriptors);
    c.run("direct-no-data-messages", no_data_messages);
    let _ = rt::unlink(NAME);
    println!("directio: {} failures", c.failures);
    c.failures
}

/// A cached write (through the window, dirty in the cache) and a store through a shared
/// mapping, neither on the disk yet: a direct read sees both.
fn sees_cache_and_mapping() -> Result<(), &'static str> {
    let fd = create(NAME).map_err(|_| "create failed")?;
    let mut data = pattern(1, 2 * BLOCK);
    if rt::write(fd, &data) != Ok(2 * BLOCK) {
        return Err("cached write failed");
    }
    let a = rt::mmap(
        0,
        2 * BLOCK as u64,
        PROT_READ | PROT_WRITE,
        MAP_SHARED,
        fd,
        0,
    )
    .map_err(|_| "mmap failed")?;
    poke(a + BLOCK as u64 + 8, 0x0123_4567_89ab_cdef);
    data[BLOCK + 8..BLOCK + 16].copy_from_slice(&0x0123_4567_89ab_cdefu64.to_le_bytes());
    if rt::pwrite(fd, b"cached!!", 512) != Ok(8) {
        return Err("cached pwrite failed");
    }
    data[512..520].copy_from_slice(b"cached!!");
    let direct = rt::open(NAME, O_RDONLY | O_DIRECT).map_err(|_| "open O_DIRECT failed")?;
    let mut buf = vec![0u8; 2 * BLOCK];
    let n = rt::read(direct, &mut buf);
    let _ = rt::munmap(a, 2 * BLOCK as u64);
    let _ = rt::close(direct);
    let _ = rt::close(fd);
    if n != Ok(2 * BLOCK) {
        return Err("the direct read failed");
    }
    if buf[512..520] != data[512..520] {
        return Err("the direct read missed the cached write");
    }
    if buf[BLOCK + 8..BLOCK + 16] != data[BLOCK + 8..BLOCK + 16] {
        return Err("the direct read missed the mapping's store");
    }
    if buf != data {
        return Err("the direct read is wrong elsewhere");
    }
    Ok(())
}

/// A direct write is seen by the next cached read (the cache read the block before) and
/// by a mapping made and touched before it.
fn write_seen() -> Result<(), &'static str> {
    let fd = create(NAME).map_err(|_| "create failed")?;
    let data = pattern(2, 2 * BLOCK);
    if rt::write(fd, &data) != Ok(2 * BLOCK) {
        return Err("cached write failed");
    }
    let mut buf = vec![0u8; 4096];
    let _ = rt::pread(fd, &mut buf, 0);
    let a =
        rt::mmap(0, 2 * BLOCK as u64, PROT_READ, MAP_SHARED, fd, 0).map_err(|_| "mmap failed")?;
    let old = peek(a + BLOCK as u64 - 1024);
    let direct = rt::open(NAME, O_RDWR | O_DIRECT).map_err(|_| "open O_DIRECT failed")?;
    let new = pattern(3, 4096);
    let w = rt::pwrite(direct, &new, BLOCK as u64 - 2048);
    let r = rt::pread(fd, &mut buf, BLOCK as u64 - 2048);
    let seen = peek(a + BLOCK as u64 - 1024);
    let _ = rt::munmap(a, 2 * BLOCK as u64);
    let _ = rt::close(direct);
    let _ = rt::close(fd);
    if w != Ok(4096) {
        return Err("the direct write failed");
    }
    if old
        != u64::from_le_bytes(
            data[BLOCK - 1024..BLOCK - 1016]
                .try_into()
                .unwrap_or([0; 8]),
        )
    {
        return Err("the mapping read wrong before");
    }
    if r != Ok(4096) || buf != new {
        return Err("a cached read did not see the direct write");
    }
    if seen != u64::from_le_bytes(new[1024..1032].try_into().unwrap_or([0; 8])) {
        return Err("the mapping did not see the direct write");
    }
    Ok(())
}

/// A direct write past the end, after a gap: the file grows (another descriptor's
/// `fstat` and reads see it), the gap reads as zero.
fn grow() -> Result<(), &'static str> {
    let fd = create(NAME).map_err(|_| "create failed")?;
    if rt::write(fd, b"head") != Ok(4) {
        return Err("write failed");
    }
    let direct = rt::open(NAME, O_WRONLY | O_DIRECT).map_err(|_| "open O_DIRECT failed")?;
    let new = pattern(4, 8192);
    let at = 3 * BLOCK as u64 + 512;
    let w = rt::pwrite(direct, &new, at);
    let size = rt::fstat(fd).map(|s| s.size);
    let mut all = vec![0u8; at as usize + 8192];
    let r = rt::pread(fd, &mut all, 0);
    let _ = rt::close(direct);
    let _ = rt::close(fd);
    if w != Ok(8192) || size != Ok(at + 8192) {
        return Err("the direct write did not grow the file");
    }
    if r != Ok(all.len()) || &all[..4] != b"head" || all[at as usize..] != new[..] {
        return Err("a cached read after the growth is wrong");
    }
    if all[4..at as usize].iter().any(|&b| b != 0) {
        return Err("the gap is not zero");
    }
    Ok(())
}

/// `EINVAL` for an offset or a length that is no multiple of 512; a read at the end of a
/// file whose size is not one returns what is there, then 0.
fn alignment_and_eof() -> Result<(), &'static str> {
    let fd = create(NAME).map_err(|_| "create failed")?;
    let data = pattern(5, 1000);
    if rt::write(fd, &data) != Ok(1000) {
        return Err("write failed");
    }
    let direct = rt::open(NAME, O_RDWR | O_DIRECT).map_err(|_| "open O_DIRECT failed")?;
    let mut buf = vec![0u8; 1024];
    let bad = [
        rt::pread(direct, &mut buf[..512], 100),
        rt::pread(direct, &mut buf[..100], 0),
        rt::pwrite(direct, &buf[..100], 0),
        rt::pwrite(direct, &buf[..512], 4),
    ];
    let n = rt::read(direct, &mut buf);
    let end = rt::read(direct, &mut buf[..512]);
    let _ = rt::close(direct);
    let _ = rt::close(fd);
    if bad.iter().any(|&r| r != Err(Errno::EINVAL)) {
        return Err("a misaligned transfer was not EINVAL");
    }
    if n != Ok(1000) || buf[..1000] != data[..] || end != Ok(0) {
        return Err("the end of the file read wrong");
    }
    Ok(())
}

/// A `fork` child reads through its own buffer, at the position it shares with its
/// parent; the parent goes on through its own afterwards.
fn fork() -> Result<(), &'static str> {
    let fd = create(NAME).map_err(|_| "create failed")?;
    let data = pattern(6, 4 * 4096);
    if rt::write(fd, &data) != Ok(data.len()) {
        return Err("write failed");
    }
    let direct = rt::open(NAME, O_RDWR | O_DIRECT).map_err(|_| "open O_DIRECT failed")?;
    let mut buf = vec![0u8; 4096];
    if rt::read(direct, &mut buf) != Ok(4096) || buf[..] != data[..4096] {
        return Err("the parent's first read failed");
    }
    match rt::fork() {
        Ok(0) => {
            let ok = rt::read(direct, &mut buf) == Ok(4096)
                && buf[..] == data[4096..8192]
                && rt::write(direct, &pattern(7, 4096)) == Ok(4096);
            rt::exit(if ok { 0 } else { 1 });
        }
        Ok(child) => {
            let waited = rt::wait(child);
            let pos = rt::lseek(direct, 0, Whence::Cur);
            let mut both = vec![0u8; 8192];
            let r = rt::pread(direct, &mut both, 4096);
            let _ = rt::close(direct);
            let _ = rt::close(fd);
            if !matches!(waited, Ok((_, rt::WaitStatus::Exited, 0))) {
                return Err("the child's direct read or write failed");
            }
            if pos != Ok(12288) {
                return Err("the position did not move with the child's calls");
            }
            if r != Ok(8192)
                || both[..4096] != data[4096..8192]
                || both[4096..] != pattern(7, 4096)[..]
            {
                return Err("the parent did not read what the child wrote");
            }
            Ok(())
        }
        Err(_) => Err("fork failed"),
    }
}

/// More `O_DIRECT` descriptors than a task has buffers: the rest take the message path,
/// and every one reads right.
fn many_descriptors() -> Result<(), &'static str> {
    let fd = rt::open("big.dat", O_RDONLY).map_err(|_| "open big.dat failed")?;
    let _ = rt::close(fd);
    let mut fds = Vec::new();
    let mut ok = true;
    for i in 0..7u64 {
        let Ok(d) = rt::open("big.dat", O_RDONLY | O_DIRECT) else {
            ok = false;
            break;
        };
        fds.push(d);
        let mut buf = [0u8; 4096];
        let at = i * 65536 + 4096;
        ok &= rt::pread(d, &mut buf, at) == Ok(4096)
            && u64::from_le_bytes(buf[8..16].try_into().unwrap_or([0; 8])) == at + 8;
    }
    for d in fds {
        ok &= rt::close(d).is_ok();
    }
    if !ok {
        return Err("a descriptor past the buffers read wrong");
    }
    Ok(())
}

/// 1 MiB read from big.dat and 1 MiB written, 64 KiB a call: a few kernel entries per
/// call (the call, a poll, the buffer's fault, the disk's requests and interrupts: about
/// 150 and 250 a MiB), where the message path took an IPC round trip per 464 bytes (over
/// 4,500 entries a MiB). The bound, 1,000, sits between the two.
fn no_data_messages() -> Result<(), &'static str> {
    let fd = rt::open("big.dat", O_RDONLY | O_DIRECT).map_err(|_| "open big.dat failed")?;
    let mut buf = vec![0u8; BLOCK];
    let (before, _) = libmk::debug_counters();
    let mut ok = true;
    for i in 0..16u64 {
        ok &= rt::read(fd, &mut buf) == Ok(BLOCK)
            && u64::from_le_bytes(buf[8..16].try_into().unwrap_or([0; 8])) == i * BLOCK as u64 + 8
            && u64::from_le_bytes(buf[BLOCK - 8..].try_into().unwrap_or([0; 8]))
                == (i + 1) * BLOCK as u64 - 8;
    }
    let (mid, _) = libmk::debug_counters();
    let _ = rt::close(fd);
    let out = create(NAME).map_err(|_| "create failed")?;
    let _ = rt::close(out);
    let out = rt::open(NAME, O_WRONLY | O_DIRECT).map_err(|_| "open O_DIRECT failed")?;
    let (start, _) = libmk::debug_counters();
    for _ in 0..16 {
        ok &= rt::write(out, &buf) == Ok(BLOCK);
    }
    let (end, _) = libmk::debug_counters();
    let _ = rt::close(out);
    let size = rt::stat(NAME).map(|s| s.size);
    let (reads, writes) = (mid - before, end - start);
    println!("directio: 1 MiB read: {reads} kernel entries; 1 MiB written: {writes}");
    if !ok || size != Ok(1 << 20) {
        return Err("the transfers went wrong");
    }
    if reads > 1000 || writes > 1000 {
        return Err("O_DIRECT data still goes through messages");
    }
    Ok(())
}
