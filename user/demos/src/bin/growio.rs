//! Scenario `proc-growio` (issue 10): writes that grow a file under a growth reservation
//! (`Grow`: the file server reserves the blocks after a growing write, and the runtime
//! writes on through its window without asking, saying how far it wrote in its size page)
//! keep every size right: another descriptor's `fstat` and `read`, another task's `stat`
//! while the writer goes on, an `O_APPEND` writer beside it, an `ftruncate` through another
//! descriptor, a shared mapping of the growing file; the files left on the disk (closed,
//! and one whose writer exited without closing) hold exactly what was written, never the
//! reserved bytes (the scenario reads them back after power-off). And 256 writes of 1 KiB
//! into a new file ask the server a handful of times, not once per write. One `PASS`/`FAIL`
//! line per check; exits with the number of failures.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use demos::{Checks, peek};
use rt::file::Whence;
use rt::{
    Errno, MAP_SHARED, O_APPEND, O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, PROT_READ, PROT_WRITE, println,
};

rt::entry!(main);

const NAME: &str = "growio.dat";

fn create(name: &str) -> Result<u64, Errno> {
    rt::open(name, O_CREAT | O_RDWR | O_TRUNC)
}

/// 1 KiB of pattern `seed` for write number `i`.
fn chunk(seed: u8, i: usize) -> Vec<u8> {
    (0..1024)
        .map(|k| demos::growio::byte(seed, i * 1024 + k))
        .collect()
}

/// Writes `n` pieces of 1 KiB of pattern `seed` through `fd`, then `tail` more bytes.
fn write_pieces(fd: u64, seed: u8, n: usize, tail: usize) -> bool {
    for i in 0..n {
        if rt::write(fd, &chunk(seed, i)) != Ok(1024) {
            return false;
        }
    }
    let last: Vec<u8> = (0..tail)
        .map(|k| demos::growio::byte(seed, n * 1024 + k))
        .collect();
    tail == 0 || rt::write(fd, &last) == Ok(tail)
}

fn main() -> i32 {
    let mut c = Checks { failures: 0 };
    println!("growio: growing writes under growth reservations");
    c.run("grow-seen-by-other-descriptor", seen_by_other_descriptor);
    c.run("grow-seen-by-other-task", seen_by_other_task);
    c.run("grow-append-beside", append_beside);
    c.run("grow-ftruncate-beside", ftruncate_beside);
    c.run("grow-mapping-sees", mapping_sees);
    c.run("grow-few-calls", few_calls);
    c.run("grow-closed-file-exact", closed_file_exact);
    c.run("grow-exit-without-close", exit_without_close);
    let _ = rt::unlink(NAME);
    println!("growio: {} failures", c.failures);
    c.failures
}

/// Another descriptor of the task sees every growing write at once: `fstat`, `stat` and
/// its reads.
fn seen_by_other_descriptor() -> Result<(), &'static str> {
    let fd = create(NAME).map_err(|_| "create failed")?;
    let other = rt::open(NAME, O_RDONLY).map_err(|_| "open failed")?;
    let mut ok = true;
    let mut buf = vec![0u8; 1024];
    for i in 0..5 {
        ok &= rt::write(fd, &chunk(1, i)) == Ok(1024);
        let size = 1024 * (i as u64 + 1);
        ok &= rt::fstat(other).map(|s| s.size) == Ok(size)
            && rt::stat(NAME).map(|s| s.size) == Ok(size)
            && rt::pread(other, &mut buf, size - 1024) == Ok(1024)
            && buf == chunk(1, i);
    }
    let _ = rt::close(other);
    let _ = rt::close(fd);
    if !ok {
        return Err("another descriptor did not see a growing write");
    }
    Ok(())
}

/// A shared word between this task and its child (an shm object).
struct Flag(u64);

impl Flag {
    fn get(&self) -> u64 {
        peek(self.0)
    }
    fn set(&self, v: u64) {
        demos::poke(self.0, v);
    }
    fn wait_for(&self, v: u64) -> bool {
        for _ in 0..200_000 {
            if self.get() == v {
                return true;
            }
            rt::sched_yield();
        }
        false
    }
}

/// Another task (a child that opens the file itself) sees the size and the bytes while
/// the writer goes on writing under its reservation.
fn seen_by_other_task() -> Result<(), &'static str> {
    let shm = rt::shm_open("/growio", O_CREAT | O_RDWR, 0o600).map_err(|_| "shm_open failed")?;
    rt::ftruncate(shm, 4096).map_err(|_| "shm ftruncate failed")?;
    let a = rt::mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, shm, 0)
        .map_err(|_| "shm mmap failed")?;
    let flag = Flag(a);
    flag.set(0);
    // Made before the `fork`, the descriptor would be shared with the child (every growth
    // then asks the server): the parent opens it after.
    let _ = rt::unlink(NAME);
    match rt::fork() {
        Ok(0) => {
            // The child: waits for 7 KiB, checks what it sees, lets the parent go on.
            let mut ok = flag.wait_for(1);
            let size = rt::stat(NAME).map(|s| s.size);
            let mine = rt::open(NAME, O_RDONLY);
            let mut buf = vec![0u8; 1024];
            ok &= size == Ok(7 * 1024);
            if let Ok(m) = mine {
                ok &= rt::fstat(m).map(|s| s.size) == Ok(7 * 1024)
                    && rt::pread(m, &mut buf, 6 * 1024) == Ok(1024)
                    && buf == chunk(2, 6)
                    && rt::pread(m, &mut buf, 7 * 1024) == Ok(0);
            } else {
                ok = false;
            }
            flag.set(2);
            ok &= flag.wait_for(3);
            if let Ok(m) = mine {
                ok &= rt::fstat(m).map(|s| s.size) == Ok(9 * 1024);
                let _ = rt::close(m);
            }
            rt::exit(if ok { 0 } else { 1 });
        }
        Ok(child) => {
            // The parent: 7 KiB (its first write reserves, the rest go on without asking).
            let Ok(fd) = create(NAME) else {
                flag.set(1);
                let _ = rt::wait(child);
                return Err("create failed");
            };
            let mut ok = write_pieces(fd, 2, 7, 0);
            flag.set(1);
            ok &= flag.wait_for(2);
            // Two more: the child's fstat must see them.
            let _ = rt::lseek(fd, 7 * 1024, Whence::Set);
            ok &=
                rt::write(fd, &chunk(2, 7)) == Ok(1024) && rt::write(fd, &chunk(2, 8)) == Ok(1024);
            flag.set(3);
            let waited = rt::wait(child);
            let _ = rt::close(fd);
            let _ = rt::munmap(a, 4096);
            let _ = rt::close(shm);
            let _ = rt::shm_unlink("/growio");
            if !ok {
                return Err("the parent's writes or the handshake failed");
            }
            if !matches!(waited, Ok((_, rt::WaitStatus::Exited, 0))) {
                return Err("the other task saw a wrong size or wrong bytes");
            }
            Ok(())
        }
        Err(_) => Err("fork failed"),
    }
}

/// An `O_APPEND` descriptor beside a reserving writer: its record goes at the true end
/// (the reserving writer's bytes counted), and the writer goes on past it.
fn append_beside() -> Result<(), &'static str> {
    let fd = create(NAME).map_err(|_| "create failed")?;
    let app = rt::open(NAME, O_RDWR | O_APPEND).map_err(|_| "open O_APPEND failed")?;
    let mut ok = write_pieces(fd, 3, 3, 0);
    ok &= rt::write(app, b"RECORD") == Ok(6);
    ok &= rt::lseek(fd, 0, Whence::End) == Ok(3 * 1024 + 6);
    ok &= rt::write(fd, &chunk(3, 3)) == Ok(1024);
    let mut rec = [0u8; 6];
    let mut last = vec![0u8; 1024];
    ok &= rt::pread(app, &mut rec, 3 * 1024) == Ok(6)
        && &rec == b"RECORD"
        && rt::pread(app, &mut last, 3 * 1024 + 6) == Ok(1024)
        && last == chunk(3, 3)
        && rt::fstat(app).map(|s| s.size) == Ok(4 * 1024 + 6);
    let _ = rt::close(app);
    let _ = rt::close(fd);
    if !ok {
        return Err("the appended record or the writer's bytes went wrong");
    }
    Ok(())
}

/// `ftruncate` through another descriptor while the writer holds a reservation: the file
/// is cut, and the writer's next write at its position leaves a gap that reads as zero.
fn ftruncate_beside() -> Result<(), &'static str> {
    let fd = create(NAME).map_err(|_| "create failed")?;
    let other = rt::open(NAME, O_RDWR).map_err(|_| "open failed")?;
    let mut ok = write_pieces(fd, 4, 3, 0);
    ok &= rt::ftruncate(other, 1000).is_ok() && rt::fstat(other).map(|s| s.size) == Ok(1000);
    ok &= rt::write(fd, &chunk(4, 3)) == Ok(1024);
    let mut all = vec![0u8; 4 * 1024];
    ok &= rt::pread(other, &mut all, 0) == Ok(4 * 1024);
    let _ = rt::close(other);
    let _ = rt::close(fd);
    if !ok {
        return Err("a call failed");
    }
    if all[..1000] != chunk(4, 0)[..1000] || all[3 * 1024..] != chunk(4, 3)[..] {
        return Err("the bytes kept or written are wrong");
    }
    if all[1000..3 * 1024].iter().any(|&b| b != 0) {
        return Err("the cut bytes came back instead of zeroes");
    }
    Ok(())
}

/// A shared mapping of the growing file: zero past the end when made, and it sees the
/// writer's next growing write at once.
fn mapping_sees() -> Result<(), &'static str> {
    let fd = create(NAME).map_err(|_| "create failed")?;
    let mut ok = write_pieces(fd, 5, 2, 0);
    let a = rt::mmap(0, 4096, PROT_READ, MAP_SHARED, fd, 0).map_err(|_| "mmap failed")?;
    let before = peek(a + 2048);
    ok &= rt::write(fd, &chunk(5, 2)) == Ok(1024);
    let after = peek(a + 2048);
    let first = peek(a);
    let _ = rt::munmap(a, 4096);
    let _ = rt::close(fd);
    let word = |i: usize, at: usize| {
        u64::from_le_bytes(chunk(5, i)[at..at + 8].try_into().unwrap_or([0; 8]))
    };
    if !ok {
        return Err("a write failed");
    }
    if before != 0 {
        return Err("a new mapping saw non-zero bytes past the end");
    }
    if first != word(0, 0) || after != word(2, 0) {
        return Err("the mapping did not see the writes");
    }
    Ok(())
}

/// 256 writes of 1 KiB into a new file: a poll each, a reservation per four blocks and a
/// fault per block, not a server call per write: 346 kernel entries, where a `Span` per
/// write took 1,366.
fn few_calls() -> Result<(), &'static str> {
    let fd = create(NAME).map_err(|_| "create failed")?;
    // The first write maps the window and the size page.
    let mut ok = rt::write(fd, &chunk(6, 0)) == Ok(1024);
    let (before, _) = libmk::debug_counters();
    for i in 1..257 {
        ok &= rt::write(fd, &chunk(6, i)) == Ok(1024);
    }
    let (after, _) = libmk::debug_counters();
    ok &= rt::fstat(fd).map(|s| s.size) == Ok(257 * 1024);
    let mut buf = vec![0u8; 1024];
    ok &= rt::pread(fd, &mut buf, 200 * 1024) == Ok(1024) && buf == chunk(6, 200);
    let _ = rt::close(fd);
    let entries = after - before;
    println!("growio: 256 growing writes of 1 KiB: {entries} kernel entries");
    if !ok {
        return Err("the writes went wrong");
    }
    if entries > 600 {
        return Err("growing writes still ask the server every time");
    }
    Ok(())
}

/// A file written in growing pieces and closed: the disk holds exactly its bytes
/// (`GROWA.DAT`, read back by the scenario after power-off).
fn closed_file_exact() -> Result<(), &'static str> {
    let fd = create("GROWA.DAT").map_err(|_| "create failed")?;
    let ok = write_pieces(
        fd,
        demos::growio::SEED_A,
        demos::growio::PIECES_A,
        demos::growio::TAIL_A,
    );
    rt::close(fd).map_err(|_| "close failed")?;
    let size = rt::stat("GROWA.DAT").map(|s| s.size);
    if !ok || size != Ok(demos::growio::len_a()) {
        return Err("the closed file's size is not what was written");
    }
    Ok(())
}

/// A child writes `GROWB.DAT` in growing pieces and exits without closing it: its size is
/// exact after the exit, and on the disk after power-off.
fn exit_without_close() -> Result<(), &'static str> {
    match rt::fork() {
        Ok(0) => {
            let Ok(fd) = create("GROWB.DAT") else {
                rt::exit(1);
            };
            let ok = write_pieces(
                fd,
                demos::growio::SEED_B,
                demos::growio::PIECES_B,
                demos::growio::TAIL_B,
            );
            rt::exit(if ok { 0 } else { 1 });
        }
        Ok(child) => {
            let waited = rt::wait(child);
            if !matches!(waited, Ok((_, rt::WaitStatus::Exited, 0))) {
                return Err("the child's writes failed");
            }
            if rt::stat("GROWB.DAT").map(|s| s.size) != Ok(demos::growio::len_b()) {
                return Err("the size after the writer's exit is not what it wrote");
            }
            Ok(())
        }
        Err(_) => Err("fork failed"),
    }
}
