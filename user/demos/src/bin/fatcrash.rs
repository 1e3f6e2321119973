//! `fatcrash` (boot scenario `proc-fatcrash`, a private copy of the disk, booted with
//! `file.stop=N`): the file server is stopped in the middle of a stream of directory and
//! FAT changes (as if it had crashed), init starts a fresh one, and the volume must need no
//! repair. Before the stop the program makes files with long names (several clusters
//! each), directories, renames and removals, over and over, until a call fails: the one
//! the server stopped at. Every file whose `close` answered before the stop must be there
//! with its bytes (an answered request's FAT and directory sectors are on the disk: the
//! server writes them at the end of each request). After the restart it makes, renames and
//! removes more, then `sync()`. After power-off the tools check the volume (`disk::fsck`:
//! no lost or cross-linked clusters, every size matching its chain, the FAT copies equal)
//! and read files back. One `PASS`/`FAIL` line per check; exits with the number of failures.
//! It runs from the initrd: its own text must not be in the page cache of the server that
//! dies.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use demos::Checks;
use rt::println;
use rt::{Errno, O_CREAT, O_RDONLY, O_RDWR, O_TRUNC};

rt::entry!(main);

/// Steps of changes (`file.stop=` stops the server in one of the middle ones).
const STEPS: usize = 60;

/// The bytes of file `i`: three 4 KiB clusters and a bit.
fn bytes_of(i: usize) -> Vec<u8> {
    (0..3 * 4096 + 100 + i)
        .map(|j| (j * 31 + i * 7) as u8 ^ (j >> 8) as u8)
        .collect()
}

fn name_of(i: usize) -> String {
    format!("Crash/long name file {i:03}.dat")
}

/// Creates `name` holding `bytes`: `Err` with the first call's error.
fn put(name: &str, bytes: &[u8]) -> Result<(), Errno> {
    let fd = rt::open(name, O_CREAT | O_RDWR | O_TRUNC)?;
    let wrote = rt::write(fd, bytes);
    let closed = rt::close(fd);
    wrote?;
    closed
}

/// The bytes of `name`.
fn get(name: &str) -> Result<Vec<u8>, Errno> {
    let fd = rt::open(name, O_RDONLY)?;
    let size = rt::fstat(fd).map(|s| s.size as usize);
    let mut buf = vec![0u8; size.unwrap_or(0)];
    let n = rt::read(fd, &mut buf);
    let _ = rt::close(fd);
    buf.truncate(n?);
    Ok(buf)
}

/// Step `i` of the stream of changes: a file made; every third step a directory made and
/// the file before renamed into it; every fifth the file two before removed.
fn step(i: usize, kept: &mut Vec<usize>) -> Result<(), Errno> {
    put(&name_of(i), &bytes_of(i))?;
    kept.push(i);
    if i % 3 == 2 {
        let dir = format!("Crash/dir {i:03}");
        rt::mkdir(&dir)?;
        rt::rename(&name_of(i - 1), &format!("{dir}/moved.dat"))?;
        kept.retain(|&k| k != i - 1);
    }
    if i % 5 == 4 && kept.contains(&(i - 2)) {
        rt::unlink(&name_of(i - 2))?;
        kept.retain(|&k| k != i - 2);
    }
    Ok(())
}

fn main() -> i32 {
    let mut c = Checks::default();
    println!("fatcrash: directory and FAT changes until the file server stops");
    if let Err(e) = rt::mkdir("Crash") {
        println!("FAIL fatcrash-setup: mkdir: {e:?}");
        return 1;
    }
    // Files whose every call answered (before the stop or after it).
    let mut kept = Vec::new();
    // The step in which the server was stopped: its counters start again from nothing
    // (the request it stopped at may be vm's or init's, so no call of this task need fail).
    let mut restarted_at = None;
    let mut last = rt::file_stats().map(|s| s.disk_requests).unwrap_or(0);
    for i in 0..STEPS {
        let failed = step(i, &mut kept).err();
        let now = rt::file_stats().map(|s| s.disk_requests).unwrap_or(0);
        if (now < last || failed.is_some()) && restarted_at.is_none() {
            println!("fatcrash: the file server stopped in step {i} ({failed:?})");
            restarted_at = Some(i);
        }
        last = now;
    }
    println!("fatcrash: {} files made in {STEPS} steps", kept.len());
    c.check(
        "fatcrash-stopped",
        restarted_at.is_some_and(|i| i >= 4 && i + 4 < STEPS),
        "the file server did not stop in the middle of the changes",
    );
    // The first call after the stop may still meet the old server's end: ask again.
    let mut up = false;
    for _ in 0..100 {
        if rt::stat("Crash").is_ok() {
            up = true;
            break;
        }
    }
    c.check(
        "fatcrash-restarted",
        up,
        "the restarted server does not answer",
    );
    c.run("fatcrash-answered-kept", || {
        for &i in &kept {
            if get(&name_of(i)).ok() != Some(bytes_of(i)) {
                println!("fatcrash: {} reads wrong after the restart", name_of(i));
                return Err("a file made before the stop reads wrong");
            }
        }
        Ok(())
    });
    c.run("fatcrash-after-restart", || {
        for i in 200..212 {
            put(&name_of(i), &bytes_of(i)).map_err(|_| "a new file failed")?;
        }
        rt::mkdir("Crash/after").map_err(|_| "mkdir failed")?;
        rt::rename(&name_of(200), "Crash/after/renamed after.dat").map_err(|_| "rename failed")?;
        rt::unlink(&name_of(201)).map_err(|_| "unlink failed")?;
        rt::mkdir("Crash/gone").map_err(|_| "mkdir failed")?;
        rt::rmdir("Crash/gone").map_err(|_| "rmdir failed")?;
        rt::sync().map_err(|_| "sync failed")?;
        if get("Crash/after/renamed after.dat").ok() != Some(bytes_of(200)) {
            return Err("the renamed file reads wrong");
        }
        Ok(())
    });
    println!("fatcrash: {} failures", c.failures);
    c.failures
}
