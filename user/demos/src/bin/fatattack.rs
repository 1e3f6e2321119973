//! `fatattack` (boot scenario `proc-fatattack`: a private disk copy that the tools fill to
//! 128 KiB of free space and give a second long-named file, `file.cache=4`): the file
//! server's errors must stay with whoever caused them, offsets must not wrap, a file is one
//! file whatever it is called, and `unlink` takes a long name's entries with it.
//!
//! - offsets: `lseek` past 4 GiB - 1 (and across 2^64), `pwrite` whose range crosses 2^64,
//!   a write ending past 4 GiB - 1;
//! - spellings: `bin/../bin/hello`, `./BIN//Hello`, a long name and its 8.3 alias open the
//!   same file, none of them makes another `EBUSY`, and `spawn` still finds `hello`;
//!   `..` of the root is the root, a missing or non-directory component is an error;
//! - unlink: by the 8.3 alias of a long name and by the long name, each name then gone;
//! - a full disk: a writer's data that cannot reach the disk is its own `close`'s (or
//!   `msync`'s) `ENOSPC`, while every other read and `spawn` goes on.
//!
//! One `PASS`/`FAIL` line per check; exits with the number of failures.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use demos::Checks;
use rt::proto::WaitStatus;
use rt::{
    Errno, MAP_SHARED, O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, PROT_READ, PROT_WRITE, Whence, println,
};

rt::entry!(main);

/// The largest FAT file: no byte at or past this offset.
const FAT_MAX: u64 = u32::MAX as u64;
/// The disk's long-named files (the second one added by the scenario's disk preparation).
const LONG: &str = "long-file-name-example.txt";
const LONG_ALIAS: &str = "LONG-F~1.TXT";
const SECOND: &str = "second-long-name.txt";
const SECOND_ALIAS: &str = "SECOND~1.TXT";

fn main() -> i32 {
    let mut c = Checks::default();
    println!("fatattack: file server errors that stick or wrap, second spellings, unlink");

    c.run("fat-lseek-past-4g", || {
        let fd = rt::open("WRAP.DAT", O_CREAT | O_RDWR | O_TRUNC).map_err(|_| "create failed")?;
        rt::write(fd, b"original").map_err(|_| "write failed")?;
        if rt::lseek(fd, FAT_MAX as i64, Whence::Set) != Ok(FAT_MAX) {
            return Err("lseek to 4 GiB - 1 failed");
        }
        if rt::write(fd, b"x") != Err(Errno::EFBIG) {
            return Err("a write at 4 GiB - 1 is not EFBIG");
        }
        if rt::lseek(fd, FAT_MAX as i64 + 1, Whence::Set) != Err(Errno::EINVAL) {
            return Err("lseek past 4 GiB - 1 is not EINVAL");
        }
        // Two steps to 2^64 - 2, then a write across 2^64.
        let _ = rt::lseek(fd, i64::MAX, Whence::Set);
        if let Ok(at) = rt::lseek(fd, i64::MAX, Whence::Cur) {
            println!("fatattack: lseek reached {at:#x}");
            let _ = rt::write(fd, b"XXXXXXXXXXXXXXXX");
            return Err("lseek reached 2^64 - 2");
        }
        unchanged(fd)?;
        rt::close(fd).map_err(|_| "close failed")
    });

    c.run("fat-pwrite-across-2-64", || {
        let fd = rt::open("WRAP.DAT", O_RDWR).map_err(|_| "open failed")?;
        let r = rt::pwrite(fd, b"XXXXXXXXXXXXXXXX", u64::MAX - 8);
        println!("fatattack: pwrite of 16 bytes at 2^64 - 9: {r:?}");
        if !matches!(r, Err(Errno::EFBIG | Errno::EINVAL)) {
            return Err("pwrite across 2^64 is not EFBIG/EINVAL");
        }
        if rt::pwrite(fd, b"x", FAT_MAX) != Err(Errno::EFBIG) {
            return Err("pwrite at 4 GiB - 1 is not EFBIG");
        }
        unchanged(fd)?;
        rt::close(fd).map_err(|_| "close failed")
    });

    c.run("fat-spellings-one-file", || {
        let spellings = [
            "bin/../bin/hello",
            "./BIN//Hello",
            "/bin/./hello",
            "../bin/hello",
        ];
        let real = rt::stat("bin/hello")
            .map_err(|_| "stat bin/hello failed")?
            .size;
        for name in spellings {
            let fd = rt::open(name, O_RDONLY).map_err(|_| "a second spelling does not open")?;
            let size = rt::fstat(fd).map_err(|_| "fstat failed")?.size;
            let again = rt::open("bin/hello", O_RDONLY);
            if size != real || again.is_err() {
                println!("fatattack: {name}: size {size} (want {real}), bin/hello: {again:?}");
                return Err("a second spelling is another file or makes the real name busy");
            }
            let _ = rt::close(again.unwrap_or(0));
            rt::close(fd).map_err(|_| "close failed")?;
        }
        // The server keeps closed files; the real name must stay usable, by init too.
        let child = rt::spawn("hello").map_err(|_| "spawn of hello failed")?;
        match rt::wait(child) {
            Ok((_, WaitStatus::Exited, 3)) => Ok(()),
            _ => Err("hello did not exit with 3"),
        }
    });

    c.run("fat-alias-same-file", || {
        let a = rt::open(LONG, O_RDONLY).map_err(|_| "open of the long name failed")?;
        let b = rt::open(LONG_ALIAS, O_RDONLY);
        let c2 = rt::open("LONG-FILE-NAME-EXAMPLE.TXT", O_RDONLY);
        let (Ok(b), Ok(c2)) = (b, c2) else {
            println!("fatattack: the alias: {b:?}, upper case: {c2:?}");
            return Err("the 8.3 alias or another case is busy or missing");
        };
        let mut x = [0u8; 64];
        let mut y = [0u8; 64];
        let n = rt::pread(a, &mut x, 0).map_err(|_| "pread failed")?;
        let m = rt::pread(b, &mut y, 0).map_err(|_| "pread failed")?;
        for fd in [a, b, c2] {
            rt::close(fd).map_err(|_| "close failed")?;
        }
        if n == 0 || n != m || x != y {
            return Err("the alias reads other bytes");
        }
        Ok(())
    });

    c.run("fat-dot-dot", || {
        if rt::open("no-such-dir/../hello.txt", O_RDONLY) != Err(Errno::ENOENT) {
            return Err("a missing directory before .. is not ENOENT");
        }
        if rt::open("hello.txt/../hello.txt", O_RDONLY) != Err(Errno::ENOTDIR) {
            return Err("a file before .. is not ENOTDIR");
        }
        if rt::open("bin/..", O_RDONLY) != Err(Errno::EISDIR) {
            return Err("bin/.. is not the root directory");
        }
        // A program is a name in bin/, not a path out of it.
        if rt::spawn("../hello.txt") != Err(Errno::ENOENT) {
            return Err("spawn of ../hello.txt is not ENOENT");
        }
        let fd =
            rt::open("../../hello.txt", O_RDONLY).map_err(|_| "the root's .. is not the root")?;
        rt::close(fd).map_err(|_| "close failed")
    });

    // The second long-named file, never opened before: unlinked by its 8.3 alias.
    c.run("fat-unlink-alias", || {
        let before = rt::stat(SECOND).map_err(|_| "the second long-named file is missing")?;
        if before.size == 0 {
            return Err("the second long-named file is empty");
        }
        rt::unlink(SECOND_ALIAS).map_err(|_| "unlink of the 8.3 alias failed")?;
        gone(&[SECOND, SECOND_ALIAS])
    });

    // The first one (open and closed above, so the server still holds it): by its long name.
    c.run("fat-unlink-long-name", || {
        let r = rt::unlink(LONG);
        if r.is_err() {
            println!("fatattack: unlink({LONG}): {r:?}");
            return Err("unlink of a long name failed");
        }
        gone(&[LONG, LONG_ALIAS])
    });

    c.run("fat-enospc-is-the-writers", || {
        // 1 MiB into a disk with 128 KiB free, through a cache of four 64 KiB blocks: most
        // of it cannot be written back when it is evicted.
        let fd = rt::open("FULL.DAT", O_CREAT | O_RDWR | O_TRUNC).map_err(|_| "create failed")?;
        let chunk = vec![0x5au8; 64 << 10];
        let mut failed = None;
        for _ in 0..16 {
            if let Err(e) = rt::write(fd, &chunk) {
                failed = Some(e);
                break;
            }
        }
        println!("fatattack: writing 1 MiB to a full disk: {failed:?}");
        // Others: reads of another file, in this task and in a new one, need cache slots
        // that only evictions of FULL.DAT's blocks can give.
        let others = read_big().and_then(|()| {
            let child = rt::spawn("hello").map_err(|_| "spawn of hello failed")?;
            match rt::wait(child) {
                Ok((_, WaitStatus::Exited, 3)) => Ok(()),
                _ => Err("hello did not exit with 3"),
            }
        });
        let closed = rt::close(fd);
        println!("fatattack: others after the fill: {others:?}, the writer's close: {closed:?}");
        others?;
        if closed != Err(Errno::ENOSPC) {
            return Err("the writer's close does not report ENOSPC");
        }
        // Through a shared mapping, on the still full disk: `msync` hears of it.
        let len = 128 << 10;
        let mfd = rt::open("MAP.DAT", O_CREAT | O_RDWR | O_TRUNC).map_err(|_| "create failed")?;
        rt::ftruncate(mfd, len).map_err(|_| "ftruncate failed")?;
        let a = rt::mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0)
            .map_err(|_| "mmap failed")?;
        for off in (0..len).step_by(4096) {
            demos::poke(a + off, off);
        }
        let synced = rt::msync(a, len);
        let others = read_big();
        println!("fatattack: msync on the full disk: {synced:?}, others: {others:?}");
        others?;
        if synced != Err(Errno::ENOSPC) {
            return Err("msync of a mapping that cannot reach the disk is not ENOSPC");
        }
        rt::munmap(a, len).map_err(|_| "munmap failed")?;
        let _ = rt::close(mfd);
        rt::unlink("MAP.DAT").map_err(|_| "unlink of the mapped file failed")?;
        rt::unlink("FULL.DAT").map_err(|_| "unlink of the full file failed")?;
        // The space is back, and nothing stuck.
        let fd = rt::open("AFTER.DAT", O_CREAT | O_RDWR | O_TRUNC).map_err(|_| "create failed")?;
        rt::write(fd, &chunk).map_err(|_| "write after the unlink failed")?;
        rt::close(fd).map_err(|_| "close after the unlink failed")?;
        read_big()
    });

    println!("fatattack: {} failures", c.failures);
    c.failures
}

/// No name of an unlinked file opens or stats.
fn gone(names: &[&str]) -> Result<(), &'static str> {
    for name in names {
        if let Ok(fd) = rt::open(name, O_RDONLY) {
            let size = rt::fstat(fd).map(|s| s.size);
            println!("fatattack: {name} still opens after unlink, size {size:?}");
            let _ = rt::close(fd);
            return Err("a name of the file still opens after unlink");
        }
        if rt::stat(name) != Err(Errno::ENOENT) {
            return Err("stat after unlink is not ENOENT");
        }
    }
    Ok(())
}

/// `WRAP.DAT` still holds `original` and nothing more.
fn unchanged(fd: u64) -> Result<(), &'static str> {
    let mut back = [0u8; 16];
    let n = rt::pread(fd, &mut back, 0).map_err(|_| "pread failed")?;
    if &back[..n] != b"original" {
        println!("fatattack: WRAP.DAT holds {:?}", &back[..n]);
        return Err("the file changed");
    }
    Ok(())
}

/// Reads one word of each of 8 blocks of `big.dat` (each word holds its own offset).
fn read_big() -> Result<(), &'static str> {
    let fd = rt::open("big.dat", O_RDONLY).map_err(|_| "open big.dat failed")?;
    let mut result = Ok(());
    for block in 0..8u64 {
        let at = block * (1 << 20) + 8;
        let mut word = [0u8; 8];
        match rt::pread(fd, &mut word, at) {
            Ok(8) if u64::from_le_bytes(word) == at => {}
            r => {
                println!("fatattack: big.dat at {at:#x}: {r:?}");
                result = Err("a read of big.dat failed");
                break;
            }
        }
    }
    let _ = rt::close(fd);
    result
}
