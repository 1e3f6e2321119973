//! Test of the file server's write path and page cache: `open` flags, `write`/`pwrite`,
//! `lseek`, `fstat`, `ftruncate`, `unlink`, `O_DIRECT` (seeing what went through the cache),
//! the buffered reader, eviction with write-back under a small cache (the scenario boots
//! with `file.cache=8`: 512 KiB; the file server's counters, `rt::file_stats`, show the
//! evictions and write-backs), and the errors. It leaves `keep.dat` on the disk
//! ([`demos::filetest::KEEP_BYTES`] bytes of [`demos::filetest::keep_byte`]), which the host
//! reads back from the disk image after power-off. One `PASS`/`FAIL` line per check; exits
//! with the number of failures.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use demos::Checks;
use demos::filetest::{KEEP_BYTES, KEEP_FILE, keep_byte};
use rt::{Errno, O_CREAT, O_DIRECT, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, Whence, println};

rt::entry!(main);

/// A file bigger than the cache of the scenario (512 KiB), written and read back whole.
const EVICT_BYTES: usize = 2 << 20;

fn pattern(at: usize, len: usize, seed: u8) -> Vec<u8> {
    (at..at + len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed) ^ (i >> 12) as u8)
        .collect()
}

fn main() -> i32 {
    let mut c = Checks::default();
    println!("filetest: writes through the file server's page cache to the FAT disk");
    // Leftovers of an earlier boot on the same image.
    for name in ["test.dat", "evict.dat", "tmp.dat", "lines.txt", KEEP_FILE] {
        let _ = rt::unlink(name);
    }

    c.run("file-create-excl", || {
        let fd = rt::open("test.dat", O_CREAT | O_EXCL | O_RDWR).map_err(|_| "create failed")?;
        if rt::open("test.dat", O_CREAT | O_EXCL | O_RDWR) != Err(Errno::EEXIST) {
            return Err("O_CREAT|O_EXCL of an existing file is not EEXIST");
        }
        if rt::fstat(fd).map_err(|_| "fstat failed")?.size != 0 {
            return Err("a new file is not empty");
        }
        rt::close(fd).map_err(|_| "close failed")
    });

    c.run("file-write-read", || {
        let fd = rt::open("test.dat", O_RDWR).map_err(|_| "open failed")?;
        let data = pattern(0, 100_000, 1);
        if rt::write(fd, &data) != Ok(data.len()) {
            return Err("write failed");
        }
        if rt::fstat(fd).map_err(|_| "fstat failed")?.size != data.len() as u64 {
            return Err("fstat does not show the new size");
        }
        rt::lseek(fd, 0, Whence::Set).map_err(|_| "lseek failed")?;
        let mut back = vec![0u8; data.len() + 100];
        if rt::read(fd, &mut back) != Ok(data.len()) || back[..data.len()] != data[..] {
            return Err("read back differs");
        }
        rt::close(fd).map_err(|_| "close failed")
    });

    c.run("file-pwrite-pread", || {
        let fd = rt::open("test.dat", O_RDWR).map_err(|_| "open failed")?;
        let data = pattern(70_000, 5_000, 9);
        if rt::pwrite(fd, &data, 70_000) != Ok(data.len()) {
            return Err("pwrite failed");
        }
        let mut back = vec![0u8; 5_000];
        if rt::pread(fd, &mut back, 70_000) != Ok(5_000) || back != data {
            return Err("pread differs");
        }
        // The position stayed at 0.
        let mut first = [0u8; 4];
        rt::read(fd, &mut first).map_err(|_| "read failed")?;
        if first[..] != pattern(0, 4, 1)[..] {
            return Err("pwrite moved the position");
        }
        rt::close(fd).map_err(|_| "close failed")
    });

    c.run("file-lseek", || {
        let fd = rt::open("test.dat", O_RDONLY).map_err(|_| "open failed")?;
        let end = rt::lseek(fd, 0, Whence::End).map_err(|_| "SEEK_END failed")?;
        let back = rt::lseek(fd, -10, Whence::Cur).map_err(|_| "SEEK_CUR failed")?;
        let set = rt::lseek(fd, 5, Whence::Set).map_err(|_| "SEEK_SET failed")?;
        let neg = rt::lseek(fd, -1, Whence::Set);
        let mut b = [0u8; 1];
        rt::read(fd, &mut b).map_err(|_| "read failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        if end != 100_000 || back != 99_990 || set != 5 || neg != Err(Errno::EINVAL) {
            return Err("wrong positions");
        }
        if b[0] != pattern(5, 1, 1)[0] {
            return Err("read after lseek at the wrong place");
        }
        Ok(())
    });

    c.run("file-ftruncate", || {
        let fd = rt::open("test.dat", O_RDWR).map_err(|_| "open failed")?;
        rt::ftruncate(fd, 200_000).map_err(|_| "grow failed")?;
        let mut b = vec![0u8; 1000];
        rt::pread(fd, &mut b, 150_000).map_err(|_| "pread failed")?;
        if b.iter().any(|&x| x != 0) {
            return Err("grown bytes are not zero");
        }
        rt::ftruncate(fd, 1000).map_err(|_| "shrink failed")?;
        if rt::fstat(fd).map_err(|_| "fstat failed")?.size != 1000 {
            return Err("size after shrink");
        }
        if rt::pread(fd, &mut b, 1000) != Ok(0) {
            return Err("bytes past the end after shrink");
        }
        // Grow again: what was cut reads as zero, what stayed is still there.
        rt::ftruncate(fd, 5000).map_err(|_| "regrow failed")?;
        let mut all = vec![0u8; 5000];
        rt::pread(fd, &mut all, 0).map_err(|_| "pread failed")?;
        if all[..1000] != pattern(0, 1000, 1)[..] || all[1000..].iter().any(|&x| x != 0) {
            return Err("contents after shrink and grow");
        }
        rt::close(fd).map_err(|_| "close failed")
    });

    c.run("file-o-trunc", || {
        let fd = rt::open("test.dat", O_WRONLY | O_TRUNC).map_err(|_| "open failed")?;
        let size = rt::fstat(fd).map_err(|_| "fstat failed")?.size;
        rt::close(fd).map_err(|_| "close failed")?;
        if size != 0 {
            return Err("O_TRUNC left bytes");
        }
        Ok(())
    });

    c.run("file-direct", || {
        // Data written through the cache (dirty, not on the disk yet) ...
        let fd = rt::open("test.dat", O_RDWR).map_err(|_| "open failed")?;
        let data = pattern(0, 8192, 3);
        rt::write(fd, &data).map_err(|_| "cached write failed")?;
        // ... is what O_DIRECT reads from the disk.
        let d = rt::open("test.dat", O_RDWR | O_DIRECT).map_err(|_| "O_DIRECT open failed")?;
        let mut back = vec![0u8; 4096];
        if rt::pread(d, &mut back, 4096) != Ok(4096) || back[..] != data[4096..] {
            return Err("O_DIRECT read does not see the cached write");
        }
        // An O_DIRECT write goes to the disk, and the cache (the other descriptor) sees it.
        let new = pattern(0, 1024, 77);
        if rt::pwrite(d, &new, 512) != Ok(1024) {
            return Err("O_DIRECT write failed");
        }
        let mut cached = vec![0u8; 1024];
        rt::pread(fd, &mut cached, 512).map_err(|_| "pread failed")?;
        if cached != new {
            return Err("the cache does not see the O_DIRECT write");
        }
        // Whole sectors only.
        let mut b = [0u8; 512];
        let misaligned = rt::pread(d, &mut b, 100) == Err(Errno::EINVAL)
            && rt::pread(d, &mut b[..100], 0) == Err(Errno::EINVAL)
            && rt::pwrite(d, &b[..100], 0) == Err(Errno::EINVAL)
            && rt::pwrite(d, &b, 7) == Err(Errno::EINVAL);
        rt::close(d).map_err(|_| "close failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        if !misaligned {
            return Err("misaligned O_DIRECT transfers are not EINVAL");
        }
        Ok(())
    });

    let before = rt::file_stats();
    c.run("file-evict-writeback", || {
        // 2 MiB through a 512 KiB cache: blocks are written back as they are evicted.
        let fd = rt::open("evict.dat", O_CREAT | O_RDWR).map_err(|_| "create failed")?;
        let chunk = 64 << 10;
        for at in (0..EVICT_BYTES).step_by(chunk) {
            if rt::write(fd, &pattern(at, chunk, 5)) != Ok(chunk) {
                return Err("write failed");
            }
        }
        let mut back = vec![0u8; chunk];
        for at in (0..EVICT_BYTES).step_by(chunk) {
            if rt::pread(fd, &mut back, at as u64) != Ok(chunk) || back != pattern(at, chunk, 5) {
                return Err("read back after eviction differs");
            }
        }
        rt::close(fd).map_err(|_| "close failed")?;
        // And again from the disk alone, through O_DIRECT.
        let d = rt::open("evict.dat", O_RDONLY | O_DIRECT).map_err(|_| "open failed")?;
        let at = EVICT_BYTES - chunk;
        let ok = rt::pread(d, &mut back, at as u64) == Ok(chunk) && back == pattern(at, chunk, 5);
        rt::close(d).map_err(|_| "close failed")?;
        if !ok {
            return Err("the disk does not hold what was evicted");
        }
        Ok(())
    });
    c.run("file-evict-counters", || {
        let (Ok(a), Ok(b)) = (before, rt::file_stats()) else {
            return Err("FileStats failed");
        };
        println!(
            "filetest:   file server over 2 MiB through {} blocks: misses {}, blocks read {}, \
             evicted {}, written back {}, sectors written {}; {} blocks cached",
            b.budget,
            b.misses - a.misses,
            b.blocks_read - a.blocks_read,
            b.evicted - a.evicted,
            b.written_back - a.written_back,
            b.sectors_written - a.sectors_written,
            b.cached
        );
        if b.cached > b.budget {
            return Err("the cache holds more blocks than its budget");
        }
        if b.evicted == a.evicted || b.written_back == a.written_back {
            return Err("no block was evicted or written back (is the cache file.cache=8?)");
        }
        if b.blocks_read == a.blocks_read {
            return Err("reading back after eviction read no block from the disk");
        }
        if b.sectors_written - a.sectors_written < (EVICT_BYTES as u64) / rt::file::SECTOR_SIZE {
            return Err("fewer sectors written than the file has");
        }
        Ok(())
    });

    c.run("file-stdio-lines", || {
        let fd = rt::open("lines.txt", O_CREAT | O_WRONLY).map_err(|_| "create failed")?;
        rt::write(fd, b"first line\nsecond\n\nlast, no newline").map_err(|_| "write failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        let mut f = rt::stdio::File::open("lines.txt").map_err(|_| "fopen failed")?;
        let mut line = [0u8; 64];
        let mut got: Vec<Vec<u8>> = Vec::new();
        loop {
            let n = f.read_line(&mut line).map_err(|_| "read_line failed")?;
            if n == 0 {
                break;
            }
            got.push(line[..n].to_vec());
        }
        // A line longer than the buffer comes in pieces.
        let mut f2 = rt::stdio::File::open("lines.txt").map_err(|_| "fopen failed")?;
        let mut small = [0u8; 4];
        let piece = f2.read_line(&mut small).map_err(|_| "read_line failed")?;
        f.close().map_err(|_| "fclose failed")?;
        f2.close().map_err(|_| "fclose failed")?;
        let want: [&[u8]; 4] = [b"first line\n", b"second\n", b"\n", b"last, no newline"];
        if got.len() != 4 || got.iter().zip(want).any(|(g, w)| g[..] != w[..]) {
            return Err("wrong lines");
        }
        if piece != 4 || &small != b"firs" {
            return Err("a long line is not cut at the buffer");
        }
        Ok(())
    });

    c.run("file-unlink", || {
        let fd = rt::open("tmp.dat", O_CREAT | O_RDWR).map_err(|_| "create failed")?;
        rt::write(fd, b"soon gone").map_err(|_| "write failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        rt::unlink("tmp.dat").map_err(|_| "unlink failed")?;
        if rt::open("tmp.dat", O_RDONLY) != Err(Errno::ENOENT)
            || rt::stat("tmp.dat") != Err(Errno::ENOENT)
        {
            return Err("an unlinked file is still there");
        }
        if rt::unlink("tmp.dat") != Err(Errno::ENOENT) || rt::unlink("bin") != Err(Errno::EISDIR) {
            return Err("unlink errors");
        }
        Ok(())
    });

    let ro = rt::open("hello.txt", O_RDONLY);
    let wo = rt::open("hello.txt", O_WRONLY);
    c.check(
        "file-ebadf-access",
        match (ro, wo) {
            (Ok(ro), Ok(wo)) => {
                let mut b = [0u8; 4];
                let r = rt::write(ro, b"x") == Err(Errno::EBADF)
                    && rt::pwrite(ro, b"x", 0) == Err(Errno::EBADF)
                    && rt::read(wo, &mut b) == Err(Errno::EBADF)
                    && rt::ftruncate(ro, 0) == Err(Errno::EINVAL)
                    && rt::write(999, b"x") == Err(Errno::EBADF)
                    && rt::lseek(999, 0, Whence::Set) == Err(Errno::EBADF)
                    && rt::fstat(999) == Err(Errno::EBADF);
                let _ = rt::close(ro);
                let _ = rt::close(wo);
                r
            }
            _ => false,
        },
        "writing a read-only descriptor is not EBADF (or the others)",
    );
    let ro = rt::open("hello.txt", O_RDONLY);
    c.check(
        "file-eacces-object",
        ro.is_ok_and(|fd| {
            let r = rt::shm::object_of(fd, true).map(drop) == Err(Errno::EACCES)
                && rt::shm::object_of(fd, false).is_ok();
            let _ = rt::close(fd);
            r
        }),
        "a writable memory object of a read-only descriptor is not EACCES",
    );
    c.check(
        "file-open-errors",
        rt::open("bin", O_RDWR) == Err(Errno::EISDIR)
            && rt::open("nodir/new.dat", O_CREAT | O_RDWR) == Err(Errno::ENOENT)
            && rt::open("missing.dat", O_RDWR) == Err(Errno::ENOENT)
            && rt::open("hello.txt", 3) == Err(Errno::EINVAL),
        "open errors",
    );

    c.run("file-keep", || {
        // Left on the disk for the host to check: written in uneven pieces, one part twice.
        let fd = rt::open(KEEP_FILE, O_CREAT | O_TRUNC | O_WRONLY).map_err(|_| "create failed")?;
        let bytes: Vec<u8> = (0..KEEP_BYTES).map(keep_byte).collect();
        rt::pwrite(fd, &vec![0xee; 50_000], 100_000).map_err(|_| "pwrite failed")?;
        for piece in bytes.chunks(10_007) {
            if rt::write(fd, piece) != Ok(piece.len()) {
                return Err("write failed");
            }
        }
        rt::close(fd).map_err(|_| "close failed")?;
        let fd = rt::open(KEEP_FILE, O_RDONLY).map_err(|_| "reopen failed")?;
        let mut back = vec![0u8; KEEP_BYTES + 1];
        let n = rt::read(fd, &mut back).map_err(|_| "read failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        if n != KEEP_BYTES || back[..n] != bytes[..] {
            return Err("read back differs");
        }
        Ok(())
    });

    // `sync()`: a child leaves a file it wrote open at its exit (the file server closes it
    // when init's notice arrives); this task keeps one dirty block of its own open. After
    // `sync` the child's descriptor is gone and this task's block is on the disk.
    c.run("file-sync", || {
        let before = rt::file::descriptors().map_err(|_| "Descriptors failed")?;
        let child = match rt::fork() {
            Ok(0) => {
                let fd = rt::open("tmp.dat", O_CREAT | O_TRUNC | O_RDWR).unwrap_or(0);
                let _ = rt::write(fd, &pattern(3, 70_000, 5));
                rt::exit(0)
            }
            Ok(pid) => pid,
            Err(_) => return Err("fork failed"),
        };
        rt::wait(child).map_err(|_| "wait failed")?;
        let fd = rt::open("tmp.dat", O_RDWR).map_err(|_| "open failed")?;
        rt::pwrite(fd, b"dirty", 5).map_err(|_| "pwrite failed")?;
        let written = rt::file_stats()
            .map_err(|_| "FileStats failed")?
            .written_back;
        rt::sync().map_err(|_| "sync failed")?;
        let after = rt::file_stats()
            .map_err(|_| "FileStats failed")?
            .written_back;
        let open = rt::file::descriptors().map_err(|_| "Descriptors failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        let _ = rt::unlink("tmp.dat");
        if after <= written {
            return Err("sync wrote no dirty block back");
        }
        if open.fds != before.fds + 1 {
            return Err("after sync the child's descriptor is still open (or this one is not)");
        }
        Ok(())
    });
    c.failures
}
