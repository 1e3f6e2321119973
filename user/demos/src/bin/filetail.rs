//! `filetail` (boot scenario `proc-filetail`, a private copy of the disk): the end of a file
//! whose size is not a multiple of the page or the sector size. POSIX: the rest of the last
//! page of a mapping reads as zero, and what a mapping writes there never reaches the file;
//! so a new mapping, a mapping after write-back, and the bytes a file gains when it grows
//! (`ftruncate`, `pwrite` past the end) are zero there, whatever a mapping wrote. An
//! `O_DIRECT` read that ends at the end of such a file returns the bytes up to it (as Linux
//! does), the next one 0. The tools compare `TAIL.DAT` after power-off. One `PASS`/`FAIL`
//! line per check; exits with the number of failures.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use demos::filetail::{TAIL_BYTES, TAIL_FILE, byte};
use demos::{Checks, PAGE, peek, poke};
use rt::println;
use rt::{Errno, MAP_SHARED, O_CREAT, O_DIRECT, O_RDONLY, O_RDWR, O_TRUNC, PROT_READ, PROT_WRITE};

rt::entry!(main);

/// What a mapping writes past the end of the file.
const JUNK: u64 = 0xeeee_eeee_eeee_eeee;

/// The file's bytes `[from, to)`.
fn bytes(from: u64, to: u64) -> Vec<u8> {
    (from..to).map(byte).collect()
}

/// A new file `name` holding `len` bytes of [`byte`], open read-write.
fn create(name: &str, len: u64) -> Result<u64, &'static str> {
    let _ = rt::unlink(name);
    let fd = rt::open(name, O_RDWR | O_CREAT | O_TRUNC).map_err(|_| "create failed")?;
    if rt::pwrite(fd, &bytes(0, len), 0) != Ok(len as usize) {
        return Err("pwrite failed");
    }
    Ok(fd)
}

/// Writes [`JUNK`] through the mapping at `a` into every word of `[from, to)`.
fn junk(a: u64, from: u64, to: u64) {
    for at in (from..to).step_by(8) {
        poke(a + at, JUNK);
    }
}

/// Whether the mapping at `a` reads as zero in `[from, to)` (word-aligned).
fn zero(a: u64, from: u64, to: u64) -> bool {
    (from..to).step_by(8).all(|at| peek(a + at) == 0)
}

/// Whether `pread` of `[from, to)` returns zeroes.
fn zero_on_file(fd: u64, from: u64, to: u64) -> bool {
    let mut buf = vec![0xffu8; (to - from) as usize];
    rt::pread(fd, &mut buf, from) == Ok(buf.len()) && buf.iter().all(|&b| b == 0)
}

fn main() -> i32 {
    let mut c = Checks::default();
    println!("filetail: the end of a file that ends inside a page and inside a sector");
    let len = TAIL_BYTES;
    let pages = len.div_ceil(PAGE) * PAGE;

    let Ok(fd) = create(TAIL_FILE, len) else {
        c.check("tail-setup", false, "could not create the file");
        return c.failures;
    };
    let writer = rt::mmap(0, pages, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    let reader = rt::mmap(0, pages, PROT_READ, MAP_SHARED, fd, 0);
    let (Ok(w), Ok(r)) = (writer, reader) else {
        c.check("tail-setup", false, "mmap failed");
        return c.failures;
    };
    println!(
        "filetail: {TAIL_FILE} is {len} bytes; a shared mapping writes junk into [{len}, {pages})"
    );
    junk(w, len, pages);

    c.run("tail-zero-new-mapping", || {
        let m = rt::mmap(0, pages, PROT_READ, MAP_SHARED, fd, 0).map_err(|_| "mmap failed")?;
        let ok = zero(m, len, pages) && peek(m + len - 8) == peek(w + len - 8);
        rt::munmap(m, pages).map_err(|_| "munmap failed")?;
        if ok {
            Ok(())
        } else {
            Err("a new mapping shows what another wrote past the end")
        }
    });

    c.run("tail-zero-after-writeback", || {
        junk(w, len, pages);
        rt::msync(w, pages).map_err(|_| "msync failed")?;
        if !zero(r, len, pages) {
            return Err("after msync, a mapping shows what another wrote past the end");
        }
        let m = rt::mmap(0, pages, PROT_READ, MAP_SHARED, fd, 0).map_err(|_| "mmap failed")?;
        let ok = zero(m, len, pages);
        rt::munmap(m, pages).map_err(|_| "munmap failed")?;
        if ok {
            Ok(())
        } else {
            Err("after msync, a new mapping shows junk past the end")
        }
    });

    c.run("tail-file-unchanged", || {
        junk(w, len, pages);
        rt::munmap(w, pages).map_err(|_| "munmap failed")?;
        rt::munmap(r, pages).map_err(|_| "munmap failed")?;
        let mut back = vec![0u8; pages as usize];
        let n = rt::pread(fd, &mut back, 0).map_err(|_| "pread failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        let size = rt::stat(TAIL_FILE).map_err(|_| "stat failed")?.size;
        if n as u64 == len && size == len && back[..n] == bytes(0, len)[..] {
            Ok(())
        } else {
            Err("the file's size or bytes changed")
        }
    });

    c.run("tail-zero-grow-truncate", || {
        let fd = create("GROW.DAT", len)?;
        let w = rt::mmap(0, pages, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
            .map_err(|_| "mmap failed")?;
        junk(w, len, pages);
        let grown = len + 4000;
        rt::ftruncate(fd, grown).map_err(|_| "ftruncate failed")?;
        let ok = zero_on_file(fd, len, grown) && zero(w, len, pages);
        rt::munmap(w, pages).map_err(|_| "munmap failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        if ok {
            Ok(())
        } else {
            Err("ftruncate made junk past the old end file data")
        }
    });

    c.run("tail-zero-grow-write", || {
        let fd = create("GROW.DAT", len)?;
        let w = rt::mmap(0, pages, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
            .map_err(|_| "mmap failed")?;
        junk(w, len, pages);
        let at = pages - 16;
        if rt::pwrite(fd, &[7u8; 8], at) != Ok(8) {
            return Err("pwrite failed");
        }
        let ok = zero_on_file(fd, len, at) && peek(w + at) == 0x0707_0707_0707_0707;
        rt::munmap(w, pages).map_err(|_| "munmap failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        rt::unlink("GROW.DAT").map_err(|_| "unlink failed")?;
        if ok {
            Ok(())
        } else {
            Err("pwrite past the end made junk there file data")
        }
    });

    c.run("direct-tail-read", || {
        // Through the cache, not on the disk yet: O_DIRECT writes it back first.
        let fd = create("DTAIL.DAT", 1000)?;
        let d = rt::open("DTAIL.DAT", O_RDONLY | O_DIRECT).map_err(|_| "O_DIRECT open failed")?;
        let mut buf = [0u8; 1024];
        let whole = rt::pread(d, &mut buf, 0);
        println!("filetail: O_DIRECT pread(1024 bytes at 0) of a 1000-byte file = {whole:?}");
        let whole_ok = whole == Ok(1000) && buf[..1000] == bytes(0, 1000)[..];
        let mut half = [0u8; 512];
        let last = rt::pread(d, &mut half, 512) == Ok(488) && half[..488] == bytes(512, 1000)[..];
        let end = rt::pread(d, &mut half, 1024) == Ok(0);
        let by_read = rt::read(d, &mut buf) == Ok(1000) && rt::read(d, &mut buf) == Ok(0);
        let misaligned = rt::pread(d, &mut half, 100) == Err(Errno::EINVAL)
            && rt::pread(d, &mut half[..100], 0) == Err(Errno::EINVAL);
        rt::close(d).map_err(|_| "close failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        rt::unlink("DTAIL.DAT").map_err(|_| "unlink failed")?;
        if !(whole_ok && last && by_read) {
            return Err("an O_DIRECT read up to the end of the file failed or is wrong");
        }
        if !(end && misaligned) {
            return Err("O_DIRECT at the end is not 0, or a misaligned one is not EINVAL");
        }
        Ok(())
    });

    println!("filetail: {} failures", c.failures);
    c.failures
}
