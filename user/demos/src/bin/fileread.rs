//! Test of the file server (first slice): files on the virtio-blk disk, read through
//! `rt::open`/`read`/`pread`/`close`/`stat`. Prints `hello.txt`, checks the pattern of
//! `big.dat` (every 8-byte word holds its own offset) at its start and across it, a long
//! file name, a program's ELF header under `bin/`, and the errors (`ENOENT`, `EBADF`,
//! `EISDIR`, `EROFS`). One `PASS`/`FAIL` line per check; exits with the number of failures.
#![no_std]
#![no_main]

use demos::Checks;
use rt::{Errno, O_RDONLY, O_RDWR, println};

rt::entry!(main);

const BIG_BYTES: u64 = 16 << 20;
/// How much of `big.dat` is read from its start, and timed.
const TIMED_BYTES: usize = 1 << 20;

fn main() -> i32 {
    let mut c = Checks::default();
    println!("fileread: files on the disk, served by the file server (virtio-blk + FAT)");

    c.run("file-hello", || {
        let (fd, size) = rt::open_sized("hello.txt", O_RDONLY).map_err(|_| "open failed")?;
        let mut buf = [0u8; 1024];
        let n = rt::read(fd, &mut buf).map_err(|_| "read failed")?;
        let text = core::str::from_utf8(&buf[..n]).map_err(|_| "not UTF-8")?;
        for line in text.lines() {
            println!("fileread: | {line}");
        }
        let starts_right = text.starts_with("Hello from the disk!");
        let eof = rt::read(fd, &mut [0u8; 8]).map_err(|_| "read at end failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        if n as u64 != size {
            return Err("read fewer bytes than the size open reported");
        }
        if !starts_right {
            return Err("unexpected contents");
        }
        if eof != 0 {
            return Err("read past the end returned bytes");
        }
        Ok(())
    });

    c.run("file-big-pattern", || {
        let (fd, size) = rt::open_sized("big.dat", O_RDONLY).map_err(|_| "open failed")?;
        if size != BIG_BYTES {
            return Err("big.dat is not 16 MiB");
        }
        let mut buf = alloc_buf(TIMED_BYTES);
        let start = libmk::cycle_counter();
        let n = rt::read(fd, &mut buf).map_err(|_| "read failed")?;
        let counted = libmk::cycle_counter().wrapping_sub(start);
        if n != TIMED_BYTES {
            return Err("short read");
        }
        check_pattern(&buf, 0)?;
        println!(
            "fileread: read {} KiB of big.dat with read(): {counted} on the cycle counter (guest instructions under -icount)",
            TIMED_BYTES / 1024
        );
        // The position advanced: the next read continues there.
        let mut word = [0u8; 8];
        rt::read(fd, &mut word).map_err(|_| "second read failed")?;
        check_pattern(&word, TIMED_BYTES as u64)?;
        // pread anywhere, the last word included.
        for at in [8 << 20, BIG_BYTES - 4096, BIG_BYTES - 8, 12_345_672] {
            let mut b = [0u8; 64];
            let got = rt::pread(fd, &mut b, at).map_err(|_| "pread failed")?;
            let want = (BIG_BYTES - at).min(64) as usize;
            if got != want {
                return Err("pread returned the wrong count");
            }
            check_pattern(&b[..got], at)?;
        }
        rt::close(fd).map_err(|_| "close failed")?;
        Ok(())
    });

    c.run("file-long-name", || {
        let fd = rt::open("long-file-name-example.txt", O_RDONLY).map_err(|_| "open failed")?;
        let mut buf = [0u8; 26];
        rt::read(fd, &mut buf).map_err(|_| "read failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        if &buf != b"This file has a long name:" {
            return Err("unexpected contents");
        }
        Ok(())
    });

    c.run("file-bin-elf", || {
        let fd = rt::open("/bin/fileread", O_RDONLY).map_err(|_| "open failed")?;
        let mut magic = [0u8; 4];
        rt::read(fd, &mut magic).map_err(|_| "read failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        println!(
            "fileread: bin/fileread starts with {:#04x} {:#04x} {:#04x} {:#04x}",
            magic[0], magic[1], magic[2], magic[3]
        );
        if magic != [0x7f, b'E', b'L', b'F'] {
            return Err("not an ELF file");
        }
        Ok(())
    });

    c.run("file-stat", || {
        let big = rt::stat("big.dat").map_err(|_| "stat big.dat failed")?;
        let bin = rt::stat("bin").map_err(|_| "stat bin failed")?;
        if big.size != BIG_BYTES || big.is_dir || !bin.is_dir {
            return Err("wrong size or kind");
        }
        Ok(())
    });

    c.run("file-two-descriptors", || {
        // Two descriptors of one file keep their own positions.
        let a = rt::open("big.dat", O_RDONLY).map_err(|_| "first open failed")?;
        let b = rt::open("big.dat", O_RDONLY).map_err(|_| "second open failed")?;
        let mut w = [0u8; 8];
        rt::read(a, &mut w).map_err(|_| "read a failed")?;
        rt::read(a, &mut w).map_err(|_| "read a failed")?;
        check_pattern(&w, 8)?;
        rt::read(b, &mut w).map_err(|_| "read b failed")?;
        check_pattern(&w, 0)?;
        rt::close(a).map_err(|_| "close a failed")?;
        rt::close(b).map_err(|_| "close b failed")?;
        Ok(())
    });

    let missing = rt::open("missing.txt", O_RDONLY);
    c.check(
        "file-enoent",
        missing == Err(Errno::ENOENT) && rt::stat("no/such/file") == Err(Errno::ENOENT),
        "a missing file is not ENOENT",
    );
    let mut buf = [0u8; 8];
    let closed = rt::open("hello.txt", O_RDONLY).and_then(|fd| rt::close(fd).map(|()| fd));
    c.check(
        "file-ebadf",
        rt::read(999, &mut buf) == Err(Errno::EBADF)
            && rt::close(999) == Err(Errno::EBADF)
            && closed.is_ok_and(|fd| rt::read(fd, &mut buf) == Err(Errno::EBADF)),
        "a bad or closed descriptor is not EBADF",
    );
    c.check(
        "file-eisdir",
        rt::open("bin", O_RDONLY) == Err(Errno::EISDIR),
        "opening a directory is not EISDIR",
    );
    c.check(
        "file-erofs",
        rt::open("hello.txt", O_RDWR) == Err(Errno::EROFS),
        "opening for writing is not EROFS",
    );
    c.failures
}

/// A zeroed heap buffer of `len` bytes (the heap grows through vm).
fn alloc_buf(len: usize) -> alloc::vec::Vec<u8> {
    alloc::vec![0u8; len]
}

extern crate alloc;

/// Checks that `bytes`, read at file offset `at` (a multiple of 8), are big.dat's pattern.
fn check_pattern(bytes: &[u8], at: u64) -> Result<(), &'static str> {
    for (i, chunk) in bytes.chunks_exact(8).enumerate() {
        let word = u64::from_le_bytes(chunk.try_into().map_err(|_| "short word")?);
        if word != at + 8 * i as u64 {
            return Err("big.dat pattern mismatch");
        }
    }
    Ok(())
}
