//! `fatcut` (boot scenario `proc-fatcut`, a private copy of the disk): the calls that left
//! the FAT volume needing repair after `srvfuzz` (docs/pagers.md), each once, the files left
//! on the disk for the tools' volume check after power-off (`disk::fsck`, `fsck.fat -n`):
//! files cut to nothing by `O_TRUNC` and `ftruncate` (the crate's truncation kept their
//! first cluster), and growths 3 GiB past the end that the disk has no room for (a write,
//! an `ftruncate`): `ENOSPC` at the close with nothing taken (the crate filled the disk
//! with the gap's zeroes and left the chain longer than the file). The disk keeps its room
//! afterwards. One `PASS`/`FAIL` line per check; exits with the number of failures.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use demos::Checks;
use rt::{Errno, O_CREAT, O_RDWR, O_TRUNC, println};

rt::entry!(main);

/// 3 GiB: far past the free room of the 64 MiB disk.
const FAR: u64 = 3 << 30;

/// Creates `name` holding 9,000 bytes, and closes it.
fn put(name: &str) -> Result<(), &'static str> {
    let fd = rt::open(name, O_CREAT | O_RDWR | O_TRUNC).map_err(|_| "create failed")?;
    let bytes = vec![0x5au8; 9000];
    let wrote = rt::write(fd, &bytes);
    let closed = rt::close(fd);
    if wrote != Ok(bytes.len()) || closed.is_err() {
        return Err("write failed");
    }
    Ok(())
}

/// `Ok` if `name` has 0 bytes.
fn empty(name: &str) -> Result<(), &'static str> {
    match rt::stat(name) {
        Ok(s) if s.size == 0 => Ok(()),
        Ok(_) => Err("the file is not empty"),
        Err(_) => Err("stat failed"),
    }
}

/// `Ok` if `got` is `ENOSPC`.
fn enospc(got: Result<(), Errno>, what: &'static str) -> Result<(), &'static str> {
    match got {
        Err(Errno::ENOSPC) => Ok(()),
        other => {
            println!("fatcut: {what}: {other:?}, not ENOSPC");
            Err(what)
        }
    }
}

fn main() -> i32 {
    let mut c = Checks::default();
    println!("fatcut: cuts to nothing and growths refused for room");
    c.run("fatcut-o-trunc", || {
        put("CUT1.DAT")?;
        let fd = rt::open("CUT1.DAT", O_RDWR | O_TRUNC).map_err(|_| "open failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        empty("CUT1.DAT")
    });
    c.run("fatcut-ftruncate", || {
        put("CUT2.DAT")?;
        let fd = rt::open("CUT2.DAT", O_RDWR).map_err(|_| "open failed")?;
        rt::ftruncate(fd, 0).map_err(|_| "ftruncate failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        empty("CUT2.DAT")
    });
    c.run("fatcut-far-write", || {
        let fd = rt::open("FAR1.DAT", O_CREAT | O_RDWR).map_err(|_| "create failed")?;
        let wrote = rt::pwrite(fd, b"far", FAR);
        if wrote != Ok(3) {
            let _ = rt::close(fd);
            return Err("pwrite failed");
        }
        enospc(rt::close(fd), "the close of a write 3 GiB past the end")
    });
    c.run("fatcut-far-ftruncate", || {
        let fd = rt::open("FAR2.DAT", O_CREAT | O_RDWR).map_err(|_| "create failed")?;
        rt::ftruncate(fd, FAR).map_err(|_| "ftruncate failed")?;
        enospc(rt::close(fd), "the close of an ftruncate to 3 GiB")
    });
    // The refused growths took nothing: a file of 1 MiB still fits.
    c.run("fatcut-room-kept", || {
        let fd = rt::open("ROOM.DAT", O_CREAT | O_RDWR | O_TRUNC).map_err(|_| "create failed")?;
        let bytes = vec![0xa5u8; 1 << 20];
        let wrote = rt::write(fd, &bytes);
        let closed = rt::close(fd);
        if wrote != Ok(bytes.len()) || closed.is_err() {
            return Err("a 1 MiB file does not fit");
        }
        rt::unlink("ROOM.DAT").map_err(|_| "unlink failed")
    });
    println!("fatcut: {} failures", c.failures);
    c.failures
}
