//! Scenario `proc-fastio` (issue 10): the bulk data path of `read`/`write` (bytes copied
//! through a shared mapping of the page cache's frames, `rt::fastio`) and stdio stay
//! coherent: read after write between descriptors and tasks, `write` beside a
//! `MAP_SHARED` mapping both ways, a file grown by another descriptor, a short read at the
//! end, `pread`/`pwrite` (growing the file with zeroes), `O_APPEND` from two tasks, a
//! position shared with a `fork` child, `O_DIRECT` beside cached writes, shm descriptors,
//! stdio's `fprintf`/`fwrite`/`fgets` with lines longer than its buffer, and the errors
//! (`EBADF`). `fastio-no-data-messages` checks that a 1 MiB read costs a handful of kernel
//! entries, not the three IPC round trips per KiB of the message path. One `PASS`/`FAIL`
//! line per check; exits with the number of failures.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use demos::{Checks, peek, poke};
use rt::file::Whence;
use rt::{
    Errno, MAP_SHARED, O_APPEND, O_CREAT, O_DIRECT, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, PROT_READ,
    PROT_WRITE, println,
};

rt::entry!(main);

const NAME: &str = "fastio.dat";
const APPEND_NAME: &str = "fastapp.dat";
const LINES_NAME: &str = "fastln.txt";

/// Byte `i` of the test pattern `seed`.
fn byte(seed: u8, i: usize) -> u8 {
    (i as u8).wrapping_mul(31).wrapping_add(seed)
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| byte(seed, i)).collect()
}

fn create(name: &str) -> Result<u64, Errno> {
    rt::open(name, O_CREAT | O_RDWR | O_TRUNC)
}

fn main() -> i32 {
    let mut c = Checks { failures: 0 };
    println!("fastio: read/write through the page cache's frames, and stdio");
    c.run("fastio-read-after-write", read_after_write);
    c.run("fastio-grown-by-other", grown_by_other);
    c.run("fastio-short-read-eof", short_read_at_eof);
    c.run("fastio-pread-pwrite", pread_pwrite);
    c.run("fastio-mapping-sees-write", mapping_sees_write);
    c.run("fastio-read-sees-mapping", read_sees_mapping);
    c.run("fastio-fork-shares-offset", fork_shares_offset);
    c.run("fastio-append-two-tasks", append_two_tasks);
    c.run("fastio-odirect", odirect);
    c.run("fastio-shm-read-write", shm_read_write);
    c.run("fastio-stdio-roundtrip", stdio_roundtrip);
    c.run("fastio-scan-copy", scan_copy);
    c.run("fastio-errors", errors);
    c.run("fastio-no-data-messages", no_data_messages);
    let _ = rt::unlink(NAME);
    let _ = rt::unlink(APPEND_NAME);
    let _ = rt::unlink(LINES_NAME);
    println!("fastio: {} failures", c.failures);
    c.failures
}

/// Bytes written through one descriptor are read back through another at once (a cache
/// block boundary crossed), and through the same one after `lseek`.
fn read_after_write() -> Result<(), &'static str> {
    let w = create(NAME).map_err(|_| "create failed")?;
    let r = rt::open(NAME, O_RDONLY).map_err(|_| "open failed")?;
    let data = pattern(1, 200_000);
    if rt::write(w, &data) != Ok(data.len()) {
        return Err("write failed");
    }
    let mut back = vec![0u8; data.len() + 10];
    if rt::read(r, &mut back) != Ok(data.len()) || back[..data.len()] != data[..] {
        return Err("another descriptor did not read what was written");
    }
    // Overwrite in the middle (no growth: the copy alone), read at once.
    let new = pattern(2, 70_000);
    if rt::pwrite(w, &new, 60_000) != Ok(new.len()) {
        return Err("pwrite failed");
    }
    if rt::pread(r, &mut back[..new.len()], 60_000) != Ok(new.len()) || back[..new.len()] != new[..]
    {
        return Err("an overwrite was not seen by the next read");
    }
    if rt::lseek(w, 0, Whence::Set) != Ok(0)
        || rt::read(w, &mut back[..1000]) != Ok(1000)
        || back[..1000] != data[..1000]
        || rt::lseek(w, 0, Whence::Cur) != Ok(1000)
    {
        return Err("lseek and read on the writer failed");
    }
    rt::close(r).map_err(|_| "close failed")?;
    rt::close(w).map_err(|_| "close failed")
}

/// A descriptor that knows the file's old size sees bytes another descriptor appended.
fn grown_by_other() -> Result<(), &'static str> {
    let a = create(NAME).map_err(|_| "create failed")?;
    let b = rt::open(NAME, O_RDWR).map_err(|_| "open failed")?;
    let mut buf = [0u8; 64];
    if rt::read(b, &mut buf) != Ok(0) {
        return Err("a new file did not read as empty");
    }
    if rt::write(a, b"grown by another descriptor") != Ok(27) {
        return Err("write failed");
    }
    if rt::read(b, &mut buf) != Ok(27) || &buf[..27] != b"grown by another descriptor" {
        return Err("the other descriptor did not see the file grow");
    }
    let _ = rt::close(b);
    rt::close(a).map_err(|_| "close failed")
}

/// A read across the end returns what is there; the next returns 0.
fn short_read_at_eof() -> Result<(), &'static str> {
    let fd = create(NAME).map_err(|_| "create failed")?;
    let data = pattern(3, 1000);
    if rt::write(fd, &data) != Ok(1000) || rt::lseek(fd, 900, Whence::Set) != Ok(900) {
        return Err("write or lseek failed");
    }
    let mut buf = vec![0u8; 4096];
    let first = rt::read(fd, &mut buf);
    let second = rt::read(fd, &mut buf);
    println!("fastio: read(4096) at 900 of a 1000-byte file = {first:?}, then {second:?}");
    let _ = rt::close(fd);
    if first != Ok(100) || buf[..100] != data[900..] || second != Ok(0) {
        return Err("not a short read of the last 100 bytes followed by 0");
    }
    Ok(())
}

/// `pwrite` past the end grows the file with zeroes between; neither call moves the
/// position.
fn pread_pwrite() -> Result<(), &'static str> {
    let fd = create(NAME).map_err(|_| "create failed")?;
    if rt::write(fd, b"head") != Ok(4) {
        return Err("write failed");
    }
    if rt::pwrite(fd, b"tail", 70_000) != Ok(4) {
        return Err("pwrite past the end failed");
    }
    let size = rt::fstat(fd).map(|s| s.size);
    let mut buf = vec![0xeeu8; 70_004];
    let n = rt::pread(fd, &mut buf, 0);
    let pos = rt::lseek(fd, 0, Whence::Cur);
    let _ = rt::close(fd);
    if size != Ok(70_004) || n != Ok(70_004) || pos != Ok(4) {
        return Err("size, count or position wrong after pwrite/pread");
    }
    if &buf[..4] != b"head" || &buf[70_000..] != b"tail" || buf[4..70_000].iter().any(|&b| b != 0) {
        return Err("the bytes between the old end and the pwrite are not zero");
    }
    Ok(())
}

/// A `write` is seen at once through a shared mapping of the same bytes.
fn mapping_sees_write() -> Result<(), &'static str> {
    let fd = create(NAME).map_err(|_| "create failed")?;
    rt::ftruncate(fd, 65536 * 2).map_err(|_| "ftruncate failed")?;
    let a = rt::mmap(0, 65536 * 2, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        .map_err(|_| "mmap failed")?;
    let before = peek(a + 65536);
    let ok = rt::pwrite(fd, &0x1122_3344_5566_7788u64.to_le_bytes(), 65536) == Ok(8)
        && peek(a + 65536) == 0x1122_3344_5566_7788;
    let _ = rt::munmap(a, 65536 * 2);
    let _ = rt::close(fd);
    if before != 0 || !ok {
        return Err("the mapping did not see the write");
    }
    Ok(())
}

/// A store through a shared mapping is seen by the next `read`.
fn read_sees_mapping() -> Result<(), &'static str> {
    let fd = create(NAME).map_err(|_| "create failed")?;
    rt::ftruncate(fd, 8192).map_err(|_| "ftruncate failed")?;
    let mut buf = [0u8; 8];
    // The descriptor maps its window first (a read), then the store.
    if rt::pread(fd, &mut buf, 4096) != Ok(8) || buf != [0; 8] {
        return Err("a new file did not read as zero");
    }
    let a =
        rt::mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).map_err(|_| "mmap failed")?;
    poke(a + 4096, 0xdead_beef_0bad_cafe);
    let n = rt::pread(fd, &mut buf, 4096);
    let _ = rt::munmap(a, 8192);
    let _ = rt::close(fd);
    if n != Ok(8) || u64::from_le_bytes(buf) != 0xdead_beef_0bad_cafe {
        return Err("read did not see the mapping's store");
    }
    Ok(())
}

/// After `fork`, parent and child share the descriptor's position: the child's reads and
/// writes move the parent's.
fn fork_shares_offset() -> Result<(), &'static str> {
    let fd = create(NAME).map_err(|_| "create failed")?;
    let data = pattern(5, 100);
    if rt::write(fd, &data) != Ok(100) || rt::lseek(fd, 10, Whence::Set) != Ok(10) {
        return Err("write or lseek failed");
    }
    let mut buf = [0u8; 10];
    match rt::fork() {
        Ok(0) => {
            // The child: reads 10 bytes at 10, writes 5 at 20, and ends.
            let ok = rt::read(fd, &mut buf) == Ok(10)
                && buf[..] == data[10..20]
                && rt::write(fd, b"child") == Ok(5);
            rt::exit(if ok { 0 } else { 1 });
        }
        Ok(child) => {
            let waited = rt::wait(child);
            let pos = rt::lseek(fd, 0, Whence::Cur);
            let n = rt::read(fd, &mut buf);
            let mut at20 = [0u8; 5];
            let p = rt::pread(fd, &mut at20, 20);
            let _ = rt::close(fd);
            println!("fastio: after the child read 10 and wrote 5: position {pos:?}");
            if !matches!(waited, Ok((_, rt::WaitStatus::Exited, 0))) {
                return Err("the child's read or write failed");
            }
            if pos != Ok(25) || n != Ok(10) || buf[..] != data[25..35] {
                return Err("the parent's position did not move with the child's calls");
            }
            if p != Ok(5) || &at20 != b"child" {
                return Err("the child's write is not in the file");
            }
            Ok(())
        }
        Err(_) => Err("fork failed"),
    }
}

/// Two tasks append records through their own `O_APPEND` descriptors: every record is
/// whole, none overwrote another.
fn append_two_tasks() -> Result<(), &'static str> {
    const RECORDS: usize = 200;
    const LEN: usize = 100;
    let fd = create(APPEND_NAME).map_err(|_| "create failed")?;
    let _ = rt::close(fd);
    let append = |tag: u8| -> bool {
        let Ok(fd) = rt::open(APPEND_NAME, O_RDWR | O_APPEND) else {
            return false;
        };
        let record = [tag; LEN];
        let ok = (0..RECORDS).all(|i| {
            if i % 7 == 0 {
                rt::sched_yield();
            }
            rt::write(fd, &record) == Ok(LEN)
        });
        rt::close(fd).is_ok() && ok
    };
    match rt::fork() {
        Ok(0) => rt::exit(if append(b'c') { 0 } else { 1 }),
        Ok(child) => {
            let mine = append(b'p');
            let waited = rt::wait(child);
            if !mine || !matches!(waited, Ok((_, rt::WaitStatus::Exited, 0))) {
                return Err("an append failed");
            }
            let fd = rt::open(APPEND_NAME, O_RDONLY).map_err(|_| "open failed")?;
            let mut all = vec![0u8; 2 * RECORDS * LEN + 1];
            let n = rt::read(fd, &mut all);
            let _ = rt::close(fd);
            if n != Ok(2 * RECORDS * LEN) {
                return Err("the file is not as long as every record");
            }
            let (mut p, mut c) = (0, 0);
            for r in all[..2 * RECORDS * LEN].chunks(LEN) {
                match r[0] {
                    b'p' if r.iter().all(|&b| b == b'p') => p += 1,
                    b'c' if r.iter().all(|&b| b == b'c') => c += 1,
                    _ => return Err("a record was overwritten or torn"),
                }
            }
            println!("fastio: {p} parent and {c} child records, each whole");
            if p != RECORDS || c != RECORDS {
                return Err("records are missing");
            }
            Ok(())
        }
        Err(_) => Err("fork failed"),
    }
}

/// `O_DIRECT` beside the mapped path: a cached write is seen by a direct read, a direct
/// write by a cached read; alignment is checked.
fn odirect() -> Result<(), &'static str> {
    let fd = create(NAME).map_err(|_| "create failed")?;
    let data = pattern(7, 8192);
    if rt::write(fd, &data) != Ok(8192) {
        return Err("write failed");
    }
    let direct = rt::open(NAME, O_RDWR | O_DIRECT).map_err(|_| "open O_DIRECT failed")?;
    let mut buf = vec![0u8; 4096];
    if rt::pread(direct, &mut buf, 4096) != Ok(4096) || buf[..] != data[4096..] {
        return Err("O_DIRECT did not read the cached write");
    }
    let new = pattern(8, 4096);
    if rt::pwrite(direct, &new, 0) != Ok(4096) {
        return Err("O_DIRECT write failed");
    }
    if rt::pread(fd, &mut buf, 0) != Ok(4096) || buf != new {
        return Err("a cached read did not see the O_DIRECT write");
    }
    if rt::pwrite(direct, &new[..100], 0) != Err(Errno::EINVAL) {
        return Err("an unaligned O_DIRECT write was not EINVAL");
    }
    let _ = rt::close(direct);
    rt::close(fd).map_err(|_| "close failed")
}

/// stdio's NEON search and copy (`bufio`'s inline assembly, which the host tests cannot
/// run) agree with the byte loops here, on the target: every length up to 300, newlines
/// dense, rare and absent, binary bytes (0x00, near-hits), at every source alignment, and
/// nothing of the destination past the line is written.
fn scan_copy() -> Result<(), &'static str> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut store = vec![0u8; 320];
    for len in 0..300usize {
        for round in 0..6u64 {
            let skew = (next() % 16) as usize;
            for b in store[skew..skew + len].iter_mut() {
                *b = match next() % (4 + 60 * round) {
                    0 if round < 5 => 0x0a,
                    1 => 0x00,
                    2 => 0x0b,
                    3 => 0x8a,
                    r => r as u8 | 0x10,
                };
            }
            let src = &store[skew..skew + len];
            let mut got = vec![0xee_u8; len + 8];
            let mut want = got.clone();
            let (a, b) = (
                bufio::copy_through(&mut got, src, 0x0a),
                bufio::copy_through_bytewise(&mut want, src, 0x0a),
            );
            if a != b || got != want {
                return Err("copy_through disagrees with the byte loop");
            }
            if bufio::find_byte(src, 0x0a) != bufio::find_byte_bytewise(src, 0x0a)
                || bufio::find_byte(src, 0) != bufio::find_byte_bytewise(src, 0)
            {
                return Err("find_byte disagrees with the byte loop");
            }
            let mut copied = vec![0u8; len];
            bufio::copy(&mut copied, src);
            if copied != src {
                return Err("copy lost bytes");
            }
        }
    }
    Ok(())
}

/// shm descriptors still read and write (the shm server's messages).
fn shm_read_write() -> Result<(), &'static str> {
    let fd = rt::shm_open("/fastio", O_CREAT | O_RDWR, 0o600).map_err(|_| "shm_open failed")?;
    let data = pattern(9, 3000);
    let wrote = rt::write(fd, &data);
    let mut back = vec![0u8; 3000];
    let read = rt::pread(fd, &mut back, 0);
    let _ = rt::close(fd);
    let _ = rt::shm_unlink("/fastio");
    if wrote != Ok(3000) || read != Ok(3000) || back != data {
        return Err("shm write and read back failed");
    }
    Ok(())
}

/// stdio: `fprintf`, `fputs`, `fwrite` (lines longer than the 4 KiB buffer), `fclose`;
/// then `fgets` with a 1 KiB and a 16 KiB buffer and `fread` give it all back.
fn stdio_roundtrip() -> Result<(), &'static str> {
    let mut want: Vec<u8> = Vec::new();
    let mut f = rt::stdio::fopen(LINES_NAME, "w").map_err(|_| "fopen w failed")?;
    for i in 0..300u32 {
        rt::fprintf!(f, "line {} of {}: {:x}\n", i, 300, i * 977).map_err(|_| "fprintf failed")?;
        want.extend_from_slice(alloc::format!("line {} of {}: {:x}\n", i, 300, i * 977).as_bytes());
        if i % 50 == 0 {
            // A line of 10,000 bytes: longer than the buffer.
            let long = vec![b'a' + (i % 26) as u8; 10_000];
            f.write(&long).map_err(|_| "fwrite failed")?;
            f.puts("\n").map_err(|_| "fputs failed")?;
            want.extend_from_slice(&long);
            want.push(b'\n');
        }
    }
    f.puts("no newline at the end")
        .map_err(|_| "fputs failed")?;
    want.extend_from_slice(b"no newline at the end");
    f.flush().map_err(|_| "fflush failed")?;
    f.close().map_err(|_| "fclose failed")?;

    for size in [1024usize, 16384] {
        let mut f = rt::stdio::fopen(LINES_NAME, "r").map_err(|_| "fopen r failed")?;
        let mut got = Vec::new();
        let mut out = vec![0u8; size];
        loop {
            let n = f.fgets(&mut out).map_err(|_| "fgets failed")?;
            if n == 0 {
                break;
            }
            let nl = out[..n].iter().position(|&b| b == b'\n');
            if !(nl == Some(n - 1) || (nl.is_none() && (n == size || got.len() + n == want.len())))
            {
                return Err("fgets returned a piece that is not a line or a full buffer");
            }
            got.extend_from_slice(&out[..n]);
        }
        let eof = f.eof();
        f.close().map_err(|_| "fclose failed")?;
        if got != want || !eof {
            return Err("fgets did not give back what fprintf/fwrite wrote");
        }
    }
    let mut f = rt::stdio::File::open(LINES_NAME).map_err(|_| "fopen failed")?;
    let mut all = vec![0u8; want.len() + 100];
    let n = f.read(&mut all).map_err(|_| "fread failed")?;
    let _ = f.close();
    if all[..n] != want[..] {
        return Err("fread did not give back the file");
    }
    println!("fastio: stdio wrote and read back {} bytes", want.len());
    Ok(())
}

/// `EBADF`: a read-only descriptor's `write`, a write-only one's `read`, a closed one.
fn errors() -> Result<(), &'static str> {
    let fd = create(NAME).map_err(|_| "create failed")?;
    let _ = rt::write(fd, b"0123456789");
    let _ = rt::close(fd);
    let r = rt::open(NAME, O_RDONLY).map_err(|_| "open failed")?;
    let w = rt::open(NAME, O_WRONLY).map_err(|_| "open failed")?;
    let mut buf = [0u8; 4];
    let checks = [
        rt::write(r, b"x") == Err(Errno::EBADF),
        rt::pwrite(r, b"x", 0) == Err(Errno::EBADF),
        rt::read(w, &mut buf) == Err(Errno::EBADF),
        rt::pread(r, &mut buf, 1 << 63) == Err(Errno::EINVAL),
        rt::write(w, b"ab") == Ok(2),
    ];
    let _ = rt::close(w);
    let _ = rt::close(r);
    let closed = rt::read(r, &mut buf) == Err(Errno::EBADF);
    if checks.iter().all(|&ok| ok) && closed {
        Ok(())
    } else {
        Err("a bad descriptor or access mode was not EBADF")
    }
}

/// Reading 1 MiB of big.dat 1 KiB at a time costs under two kernel entries a call (a
/// poll, the window's pages and faults), not three IPC round trips a call.
fn no_data_messages() -> Result<(), &'static str> {
    let fd = rt::open("big.dat", O_RDONLY).map_err(|_| "open big.dat failed")?;
    let mut buf = [0u8; 1024];
    // The first KiB maps the window.
    let _ = rt::read(fd, &mut buf);
    let (before, _) = libmk::debug_counters();
    let mut ok = true;
    for i in 1..1024u64 {
        ok &= rt::read(fd, &mut buf) == Ok(1024)
            && u64::from_le_bytes(buf[..8].try_into().unwrap_or([0; 8])) == i * 1024;
    }
    let (after, _) = libmk::debug_counters();
    let _ = rt::close(fd);
    let entries = after - before;
    println!("fastio: 1023 reads of 1 KiB: {entries} kernel entries");
    if !ok {
        return Err("big.dat read wrong");
    }
    // One poll per call (a system call), one entry per 4 KiB page of the window and a
    // few per block fault; the message path took three round trips (six entries) a call.
    if entries > 2 * 1023 {
        return Err("reads still go through messages");
    }
    Ok(())
}
