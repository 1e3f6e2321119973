//! Pipes, `dup`/`dup2` and redirected descriptors 0..2 (scenario `proc-pipe`; docs/pagers.md,
//! "Pipes and redirected descriptors"): data between a parent and its fork child through a
//! pipe larger than its buffer, end of file once the writer exited, `EPIPE` once the reader
//! closed or exited, a blocked reader whose writer is killed, `dup2` onto 1 then `exec` of a
//! program whose `println!` lands in a pipe and in a file, a `cat` reading descriptor 0
//! redirected from a file, writes of `PIPE_BUF` bytes from two writers never interleaved,
//! `dup` sharing a file's position, forged and closed descriptors, the limits, a writer
//! that stops in the middle of a `PIPE_BUF` write holding up nobody, a failed `dup2`
//! leaving its target where it was, and nothing left behind. One `PASS`/`FAIL` line per check; exits with the number of failures.
//!
//! `pipetest echo <text>` prints `<text>` with `println!`; `pipetest cat` copies descriptor 0
//! to descriptor 1 until end of file: the programs the checks run with their descriptors
//! redirected.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use demos::Checks;
use rt::proto::WaitStatus;
use rt::proto::file::{PIPE_BUF, PIPE_SIZE, PIPES_PER_TASK};
use rt::{Errno, O_CREAT, O_RDONLY, O_TRUNC, O_WRONLY, println};

rt::entry!(main);

fn main(args: &[&str]) -> i32 {
    match (args.get(1).copied(), args.get(2).copied()) {
        (Some("echo"), Some(text)) => {
            println!("{text}");
            0
        }
        (Some("cat"), _) => cat(),
        _ => checks(),
    }
}

/// Copies descriptor 0 to descriptor 1 until end of file; 0 if all went well.
fn cat() -> i32 {
    let mut buf = [0u8; 300];
    loop {
        match rt::console::read(0, &mut buf) {
            Ok(0) => return 0,
            Ok(n) => {
                if rt::write(1, &buf[..n]) != Ok(n) {
                    return 2;
                }
            }
            Err(_) => return 1,
        }
    }
}

/// Reads `fd` to its end (at most `max` bytes).
fn read_to_end(fd: u64, max: usize) -> Result<Vec<u8>, Errno> {
    let mut all = Vec::new();
    let mut buf = [0u8; 1000];
    loop {
        let n = rt::read(fd, &mut buf)?;
        if n == 0 || all.len() + n > max {
            return Ok(all);
        }
        all.extend_from_slice(&buf[..n]);
    }
}

/// The byte at offset `i` of the big transfer.
fn byte_at(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 8)) as u8
}

/// The parent's side of child `pid` writing into pipe `[r, w]`: the write end closed, the
/// bytes read to end of file (at most `max`), the read end closed; then the child's exit
/// status ([`status_of`]) and what was read.
fn collect(pid: u64, [r, w]: [u64; 2], max: usize) -> (i64, Result<Vec<u8>, Errno>) {
    let _ = rt::close(w);
    let got = read_to_end(r, max);
    let _ = rt::close(r);
    (status_of(pid), got)
}

/// The child's exit status, or -1 if it did not exit normally.
fn status_of(pid: u64) -> i64 {
    match rt::wait(pid) {
        Ok((_, WaitStatus::Exited, v)) => v as i64,
        _ => -1,
    }
}

/// Runs `f` in a fork child, which exits with its result; the child's pid.
fn child(f: impl FnOnce() -> i32) -> Result<u64, &'static str> {
    match rt::fork() {
        Ok(0) => rt::exit(f()),
        Ok(pid) => Ok(pid),
        Err(_) => Err("fork failed"),
    }
}

fn checks() -> i32 {
    let mut c = Checks { failures: 0 };
    let start = rt::file::descriptors().map(|d| d.fds).unwrap_or(u64::MAX);
    c.run("pipe-big-transfer", big_transfer);
    c.run("pipe-eof-after-writer-exit", eof_after_exit);
    c.run("pipe-epipe-reader-closed", epipe_closed);
    c.run("pipe-epipe-reader-exited", epipe_exited);
    c.run("pipe-killed-writer-eof", killed_writer);
    c.run("pipe-dup2-exec-println", exec_into_pipe);
    c.run("pipe-dup2-exec-println-file", exec_into_file);
    c.run("pipe-spawn-has-the-console", spawn_console);
    c.run("pipe-dup2-back-to-the-console", back_to_console);
    c.run("pipe-cat-stdin-from-file", cat_from_file);
    c.run("pipe-atomic-writes", atomic_writes);
    c.run("pipe-dup-shares-position", dup_position);
    c.run("pipe-many-waiting-readers", many_readers);
    c.run("pipe-bad-descriptors", bad_descriptors);
    c.run("pipe-limits", limits);
    c.run("pipe-stalled-atomic-writer", stalled_atomic_writer);
    c.run(
        "pipe-dup2-failed-keeps-position",
        failed_dup2_keeps_position,
    );
    c.run("pipe-close-then-dup-takes-1", close_then_dup);
    let end = demos::settled(&start, || {
        rt::file::descriptors().map(|d| d.fds).unwrap_or(u64::MAX)
    });
    c.check(
        "pipe-nothing-left",
        start != u64::MAX && end == start,
        "descriptors left in the file server",
    );
    println!("pipetest: {} failures", c.failures);
    c.failures
}

/// 20,000 bytes (five times the pipe's buffer) from the parent to its child: both block.
fn big_transfer() -> Result<(), &'static str> {
    const LEN: usize = 5 * PIPE_SIZE - 480;
    let [r, w] = rt::pipe().map_err(|_| "pipe failed")?;
    let pid = child(|| {
        let _ = rt::close(w);
        let got = read_to_end(r, LEN + 1).unwrap_or_default();
        let good = got.len() == LEN && got.iter().enumerate().all(|(i, &b)| b == byte_at(i));
        i32::from(!good)
    })?;
    let _ = rt::close(r);
    let data: Vec<u8> = (0..LEN).map(byte_at).collect();
    let wrote = rt::write(w, &data);
    let _ = rt::close(w);
    if wrote != Ok(LEN) {
        return Err("the parent's write failed");
    }
    if status_of(pid) != 0 {
        return Err("the child read other bytes");
    }
    Ok(())
}

/// A child writes and exits; the parent reads its bytes, then end of file.
fn eof_after_exit() -> Result<(), &'static str> {
    let [r, w] = rt::pipe().map_err(|_| "pipe failed")?;
    let pid = child(|| i32::from(rt::write(w, b"bye") != Ok(3)))?;
    let (status, got) = collect(pid, [r, w], 100);
    if status != 0 {
        return Err("the child's write failed");
    }
    match got {
        Ok(g) if g == b"bye" => Ok(()),
        Ok(_) => Err("other bytes"),
        Err(_) => Err("the read failed"),
    }
}

/// The only read end closed: `EPIPE`.
fn epipe_closed() -> Result<(), &'static str> {
    let [r, w] = rt::pipe().map_err(|_| "pipe failed")?;
    let _ = rt::close(r);
    let got = rt::write(w, b"x");
    let _ = rt::close(w);
    if got == Err(Errno::EPIPE) {
        Ok(())
    } else {
        Err("a write without a reader did not fail with EPIPE")
    }
}

/// The reader is a child that exits (without closing or reading) while the parent's write
/// waits on a full pipe: the write ends with the count that went in, the next one with
/// `EPIPE`.
fn epipe_exited() -> Result<(), &'static str> {
    let [r, w] = rt::pipe().map_err(|_| "pipe failed")?;
    let pid = child(|| {
        let _ = rt::close(w);
        // Wait until the pipe is full (`fstat` of a pipe: the bytes it holds) and the
        // parent's write waits for room, then exit holding the read end: only the reader's
        // end going can wake the writer.
        while rt::fstat(r).map(|s| s.size) != Ok(PIPE_SIZE as u64) {
            rt::sched_yield();
        }
        for _ in 0..200 {
            rt::sched_yield();
        }
        0
    })?;
    let _ = rt::close(r);
    let big = alloc::vec![1u8; 4 * PIPE_SIZE];
    let first = rt::write(w, &big);
    let second = rt::write(w, b"x");
    let _ = rt::close(w);
    let _ = status_of(pid);
    match (first, second) {
        (Ok(PIPE_SIZE), Err(Errno::EPIPE)) => Ok(()),
        (Ok(_), Err(Errno::EPIPE)) => Err("the first write's count is not the pipe's size"),
        (Err(_), _) => Err("the first write failed without a count"),
        (Ok(_), _) => Err("a write after the reader exited did not fail with EPIPE"),
    }
}

/// A reader child blocks on an empty pipe; the only writer (another child, which never
/// writes) is killed: the reader wakes with end of file.
fn killed_writer() -> Result<(), &'static str> {
    let [r, w] = rt::pipe().map_err(|_| "pipe failed")?;
    let [sr, sw] = rt::pipe().map_err(|_| "pipe failed")?;
    let writer = child(|| {
        // It holds the write end alone: its death is the only thing that can wake the
        // reader.
        let _ = (rt::close(r), rt::close(sr), rt::close(sw));
        loop {
            rt::sched_yield();
        }
    })?;
    let reader = child(|| {
        let _ = rt::close(w);
        let _ = rt::write(sw, b"r");
        let mut buf = [0u8; 10];
        // 0: end of file once the writer is gone.
        match rt::read(r, &mut buf) {
            Ok(0) => 0,
            _ => 1,
        }
    })?;
    let _ = (rt::close(r), rt::close(w), rt::close(sw));
    // The reader is about to read (it said so); let it block there.
    let mut buf = [0u8; 1];
    let _ = rt::read(sr, &mut buf);
    let _ = rt::close(sr);
    for _ in 0..200 {
        rt::sched_yield();
    }
    if rt::kill(writer).is_err() {
        return Err("kill failed");
    }
    let _ = rt::wait(writer);
    match status_of(reader) {
        0 => Ok(()),
        _ => Err("the reader did not read end of file"),
    }
}

/// A child `dup2`s a pipe's write end onto 1 and runs `pipetest echo`: its `println!` comes
/// out of the pipe.
fn exec_into_pipe() -> Result<(), &'static str> {
    let [r, w] = rt::pipe().map_err(|_| "pipe failed")?;
    let pid = child(|| {
        if rt::dup2(w, 1) != Ok(1) {
            return 10;
        }
        let _ = (rt::close(r), rt::close(w));
        let _ = rt::execv("pipetest", &["pipetest", "echo", "through the pipe"]);
        11
    })?;
    let (status, got) = collect(pid, [r, w], 1000);
    if status != 0 {
        return Err("the child failed");
    }
    match got {
        Ok(g) if g == b"through the pipe\n" => Ok(()),
        Ok(_) => Err("other bytes came out of the pipe"),
        Err(_) => Err("the read failed"),
    }
}

/// A child with 1 on a pipe `spawn`s `pipetest echo`: the new task has the console on 1
/// (its line is on the console: the scenario looks for it), and the child's own `println!`
/// goes into the pipe.
fn spawn_console() -> Result<(), &'static str> {
    let [r, w] = rt::pipe().map_err(|_| "pipe failed")?;
    let pid = child(|| {
        if rt::dup2(w, 1) != Ok(1) {
            return 10;
        }
        let _ = (rt::close(r), rt::close(w));
        let Ok(s) = rt::spawnv(
            "pipetest",
            &["pipetest", "echo", "pipetest: spawned, on the console"],
        ) else {
            return 11;
        };
        if status_of(s) != 0 {
            return 12;
        }
        println!("the child's line");
        0
    })?;
    let (status, got) = collect(pid, [r, w], 1000);
    if status != 0 {
        return Err("the child failed");
    }
    match got {
        Ok(g) if g == b"the child's line\n" => Ok(()),
        _ => Err("the pipe holds other lines than the child's"),
    }
}

/// What a shell does for a built-in with `>`: keep the console's 1 (`dup(1)`), `dup2` a
/// pipe onto 1, print, then `dup2` the copy back onto 1. The copy of the console writes to
/// the console meanwhile; after, `println!` is on the console again (the scenario looks
/// for both lines) and the pipe holds only the redirected line.
fn back_to_console() -> Result<(), &'static str> {
    const VIA_COPY: &[u8] = b"pipetest: through a copy of the console\n";
    let [r, w] = rt::pipe().map_err(|_| "pipe failed")?;
    let pid = child(|| {
        let Ok(saved) = rt::dup(1) else {
            return 10;
        };
        if rt::dup2(w, 1) != Ok(1) {
            return 11;
        }
        let _ = (rt::close(r), rt::close(w));
        println!("into the pipe");
        if rt::write(saved, VIA_COPY) != Ok(VIA_COPY.len()) {
            return 12;
        }
        if rt::dup2(saved, 1) != Ok(1) || rt::close(saved).is_err() {
            return 13;
        }
        println!("pipetest: back on the console");
        0
    })?;
    let (status, got) = collect(pid, [r, w], 1000);
    if status != 0 {
        return Err("the child failed");
    }
    match got {
        Ok(g) if g == b"into the pipe\n" => Ok(()),
        _ => Err("the pipe holds other lines than the redirected one"),
    }
}

const OUT: &str = "pipeout.txt";

/// As [`exec_into_pipe`], into a file.
fn exec_into_file() -> Result<(), &'static str> {
    let pid = child(|| {
        let Ok(fd) = rt::open(OUT, O_WRONLY | O_CREAT | O_TRUNC) else {
            return 10;
        };
        if rt::dup2(fd, 1) != Ok(1) || rt::close(fd).is_err() {
            return 11;
        }
        let _ = rt::execv("pipetest", &["pipetest", "echo", "into a file"]);
        12
    })?;
    if status_of(pid) != 0 {
        return Err("the child failed");
    }
    let fd = rt::open(OUT, O_RDONLY).map_err(|_| "the file is missing")?;
    let got = read_to_end(fd, 1000);
    let _ = rt::close(fd);
    let _ = rt::unlink(OUT);
    match got {
        Ok(g) if g == b"into a file\n" => Ok(()),
        _ => Err("the file holds other bytes"),
    }
}

/// `pipetest cat` with 0 from `hello.txt` and 1 into a pipe: the file's bytes come out.
fn cat_from_file() -> Result<(), &'static str> {
    let want = {
        let fd = rt::open("hello.txt", O_RDONLY).map_err(|_| "no hello.txt")?;
        let w = read_to_end(fd, 10_000);
        let _ = rt::close(fd);
        w.map_err(|_| "reading hello.txt failed")?
    };
    let [r, w] = rt::pipe().map_err(|_| "pipe failed")?;
    let pid = child(|| {
        let Ok(fd) = rt::open("hello.txt", O_RDONLY) else {
            return 10;
        };
        if rt::dup2(fd, 0) != Ok(0) || rt::dup2(w, 1) != Ok(1) {
            return 11;
        }
        let _ = (rt::close(fd), rt::close(r), rt::close(w));
        let _ = rt::execv("pipetest", &["pipetest", "cat"]);
        12
    })?;
    let (status, got) = collect(pid, [r, w], 10_000);
    if status != 0 {
        return Err("cat failed");
    }
    match got {
        Ok(g) if g == want => Ok(()),
        _ => Err("cat's output differs from the file"),
    }
}

/// Two children each write 100 records of `PIPE_BUF` bytes (each record one letter, two
/// messages each) while the parent reads slowly: every record comes out whole.
fn atomic_writes() -> Result<(), &'static str> {
    const RECORDS: usize = 100;
    let [r, w] = rt::pipe().map_err(|_| "pipe failed")?;
    let mut pids = [0u64; 2];
    for (i, letter) in [b'a', b'b'].into_iter().enumerate() {
        pids[i] = child(move || {
            let _ = rt::close(r);
            let record = [letter; PIPE_BUF];
            for _ in 0..RECORDS {
                if rt::write(w, &record) != Ok(PIPE_BUF) {
                    return 1;
                }
            }
            0
        })?;
    }
    let _ = rt::close(w);
    let mut all = Vec::new();
    let mut buf = [0u8; 700];
    loop {
        match rt::read(r, &mut buf) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(_) => return Err("a read failed"),
        }
        rt::sched_yield();
    }
    let _ = rt::close(r);
    if pids.map(status_of) != [0, 0] {
        return Err("a writer failed");
    }
    if all.len() != 2 * RECORDS * PIPE_BUF {
        return Err("bytes went missing");
    }
    if all
        .chunks(PIPE_BUF)
        .all(|rec| rec.iter().all(|&b| b == rec[0]))
    {
        Ok(())
    } else {
        Err("two writers' records were interleaved")
    }
}

/// `dup` of a file descriptor shares its position (the original reads through its window).
fn dup_position() -> Result<(), &'static str> {
    let fd = rt::open("hello.txt", O_RDONLY).map_err(|_| "no hello.txt")?;
    let mut a = [0u8; 6];
    let mut b = [0u8; 5];
    let first = rt::read(fd, &mut a);
    let copy = rt::dup(fd).map_err(|_| "dup failed")?;
    let second = rt::read(copy, &mut b);
    let mut c = [0u8; 3];
    let third = rt::read(fd, &mut c);
    let _ = (rt::close(fd), rt::close(copy));
    if first != Ok(6) || second != Ok(5) || third != Ok(3) {
        return Err("a read failed");
    }
    if &a == b"Hello " && &b == b"from " && &c == b"the" {
        Ok(())
    } else {
        Err("the copy does not share the position")
    }
}

/// More readers wait on one empty pipe than the file server keeps waiting (32): the
/// others' calls are `EBUSY` and their runtime asks again; all read end of file when the
/// parent closes the write end, and the file server still answers meanwhile.
fn many_readers() -> Result<(), &'static str> {
    const READERS: usize = 40;
    let [r, w] = rt::pipe().map_err(|_| "pipe failed")?;
    let [sr, sw] = rt::pipe().map_err(|_| "pipe failed")?;
    let mut pids = Vec::new();
    for _ in 0..READERS {
        pids.push(child(|| {
            let _ = (rt::close(w), rt::close(sr));
            let _ = rt::write(sw, b"r");
            let _ = rt::close(sw);
            let mut buf = [0u8; 8];
            match rt::read(r, &mut buf) {
                Ok(0) => 0,
                _ => 1,
            }
        })?);
    }
    let _ = (rt::close(r), rt::close(sw));
    let mut said = 0;
    let mut buf = [0u8; 64];
    while said < READERS {
        match rt::read(sr, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => said += n,
        }
    }
    let _ = rt::close(sr);
    for _ in 0..200 {
        rt::sched_yield();
    }
    // The server answers others while the readers wait.
    let (answered, _) = demos::read_hello();
    let _ = rt::close(w);
    let ended = pids.into_iter().filter(|&p| status_of(p) == 0).count();
    if said != READERS || answered != Ok(5) {
        return Err("the readers did not start, or the server did not answer");
    }
    if ended == READERS {
        Ok(())
    } else {
        Err("a reader did not read end of file")
    }
}

/// Forged and closed descriptors: `EBADF`; a pipe is not seekable.
fn bad_descriptors() -> Result<(), &'static str> {
    let [r, w] = rt::pipe().map_err(|_| "pipe failed")?;
    let mut buf = [0u8; 4];
    let checks = [
        rt::read(999, &mut buf).err() == Some(Errno::EBADF),
        rt::write(r, b"x").err() == Some(Errno::EBADF),
        rt::read(w, &mut buf).err() == Some(Errno::EBADF),
        rt::dup(777).err() == Some(Errno::EBADF),
        rt::dup2(12345, 5).err() == Some(Errno::EBADF),
        rt::dup2(r, 5000).err() == Some(Errno::EBADF),
        rt::dup2(r, u64::MAX).err() == Some(Errno::EBADF),
        rt::lseek(r, 0, rt::Whence::Set).err() == Some(Errno::ESPIPE),
        rt::fstat(r).map(|s| s.is_fifo) == Ok(true),
        rt::fstat(w).map(|s| s.is_fifo) == Ok(true),
        rt::pipe2(rt::O_RDWR).err() == Some(Errno::EINVAL),
        rt::close(r).is_ok(),
        rt::close(r).err() == Some(Errno::EBADF),
        rt::read(r, &mut buf).err() == Some(Errno::EBADF),
        rt::close(w).is_ok(),
    ];
    match checks.iter().position(|ok| !ok) {
        None => Ok(()),
        Some(_) => Err("a bad descriptor was not refused as it should be"),
    }
}

/// A task's pipes stop at `PIPES_PER_TASK` (`EMFILE`); all tasks' at 64 (`ENFILE`).
fn limits() -> Result<(), &'static str> {
    let mut mine = Vec::new();
    let stop = loop {
        match rt::pipe() {
            Ok(p) => mine.push(p),
            Err(e) => break e,
        }
        if mine.len() > 100 {
            break Errno::EIO;
        }
    };
    let got = mine.len();
    for [r, w] in mine.drain(..) {
        let _ = (rt::close(r), rt::close(w));
    }
    if stop != Errno::EMFILE || got != PIPES_PER_TASK {
        return Err("a task's pipes did not stop at EMFILE");
    }
    // Children take pipes until refused, say so through `status` and wait on `hold` for
    // end of file (the parent's close) before exiting.
    let [sr, sw] = rt::pipe().map_err(|_| "pipe failed")?;
    let [hr, hw] = rt::pipe().map_err(|_| "pipe failed")?;
    let mut pids = Vec::new();
    for _ in 0..6 {
        pids.push(child(|| {
            let _ = (rt::close(sr), rt::close(hw));
            let mut got = 0;
            let e = loop {
                match rt::pipe() {
                    Ok(_) => got += 1,
                    Err(e) => break e,
                }
            };
            let _ = rt::write(sw, &[got, e as u8]);
            let mut buf = [0u8; 1];
            let _ = rt::read(hr, &mut buf);
            0
        })?);
    }
    let _ = (rt::close(sw), rt::close(hr));
    let mut total = 0usize;
    let mut enfile = 0;
    for _ in 0..6 {
        let mut rec = [0u8; 2];
        if rt::read(sr, &mut rec) != Ok(2) {
            return Err("a child did not report");
        }
        total += usize::from(rec[0]);
        enfile += usize::from(rec[1] == Errno::ENFILE as u8);
    }
    let mine = rt::pipe();
    let _ = (rt::close(sr), rt::close(hw));
    for pid in pids {
        let _ = rt::wait(pid);
    }
    if mine.err() != Some(Errno::ENFILE) || enfile == 0 {
        return Err("all tasks' pipes did not stop at ENFILE");
    }
    if total + 2 != file_max_pipes() {
        return Err("the children did not get every pipe left");
    }
    Ok(())
}

/// The file server's limit on pipes of all tasks (`file::fs::MAX_PIPES`).
const fn file_max_pipes() -> usize {
    64
}

/// The first message of a write of `PIPE_BUF` bytes, as the runtime sends it (464 bytes a
/// message), and never the rest: what a task stopped between the two, or a hostile one,
/// leaves behind.
fn first_part_only(fd: u64, data: &[u8]) -> Result<usize, Errno> {
    use rt::proto::file::{AT_POSITION, READ_DATA_MR, pack_data};
    use rt::proto::{FileRequest, task_slots};
    let req = FileRequest::Write {
        fd,
        offset: AT_POSITION,
        len: data.len() as u64,
        total: PIPE_BUF as u64,
    };
    let mut m = rt::ipc::message(&req.encode());
    let ipc = libmk::ipc_buffer().ok_or(Errno::EIO)?;
    let words = pack_data(data, &mut ipc.mrs[READ_DATA_MR..]);
    m.info.length = READ_DATA_MR + words;
    let file: libmk::Cap<libmk::Endpoint> = libmk::Cap::from_cptr(task_slots::FILE);
    let reply = file.call(&m).map_err(rt::ipc::call_error)?;
    let n = rt::proto::reply_result::<u64>(rt::ipc::received(&reply).mrs())?;
    Ok(n as usize)
}

/// A child sends the first 100 bytes of a 512-byte write and stops (it waits on another
/// pipe): the parent's own writes to the same pipe go through at once, none of the child's
/// bytes come out, and once the child ends the pipe holds nothing of its.
fn stalled_atomic_writer() -> Result<(), &'static str> {
    let [r, w] = rt::pipe().map_err(|_| "pipe failed")?;
    let [hr, hw] = rt::pipe().map_err(|_| "pipe failed")?;
    let [sr, sw] = rt::pipe().map_err(|_| "pipe failed")?;
    let pid = child(|| {
        let _ = (rt::close(r), rt::close(hw), rt::close(sr));
        if first_part_only(w, &[b'x'; 100]) != Ok(100) {
            return 1;
        }
        let _ = rt::write(sw, b"!");
        // Hold the write end (and the half-sent write) until the parent closes `hw`.
        let mut buf = [0u8; 1];
        let _ = rt::read(hr, &mut buf);
        0
    })?;
    let _ = (rt::close(hr), rt::close(sw));
    let mut buf = [0u8; 1];
    if rt::read(sr, &mut buf) != Ok(1) {
        return Err("the child did not send its first part");
    }
    // Before the fix this write waited for the child's rest, which never comes.
    let mine = [b'p'; PIPE_BUF];
    if rt::write(w, &mine) != Ok(PIPE_BUF) || rt::write(w, b"tail") != Ok(4) {
        return Err("the parent's writes failed");
    }
    let _ = rt::close(w);
    let _ = rt::close(hw);
    let got = read_to_end(r, 4 * PIPE_SIZE).map_err(|_| "the read failed")?;
    let _ = (rt::close(r), rt::close(sr));
    if status_of(pid) != 0 {
        return Err("the child failed");
    }
    if got.len() != PIPE_BUF + 4 || got.contains(&b'x') {
        return Err("the stalled writer's bytes came out, or the parent's did not");
    }
    Ok(())
}

/// `dup2` onto an open file descriptor that fails (a bad `old`) leaves it open where it
/// was: a write after it lands after the bytes written before.
fn failed_dup2_keeps_position() -> Result<(), &'static str> {
    let fd = rt::open("dup2pos.txt", O_CREAT | O_TRUNC | rt::O_RDWR)
        .map_err(|_| "cannot create dup2pos.txt")?;
    let first = rt::write(fd, b"hello");
    let refused = rt::dup2(777, fd);
    let second = rt::write(fd, b"XX");
    let _ = rt::close(fd);
    let fd = rt::open("dup2pos.txt", O_RDONLY).map_err(|_| "cannot open dup2pos.txt")?;
    let mut buf = [0u8; 16];
    let n = rt::read(fd, &mut buf);
    let _ = rt::close(fd);
    let _ = rt::unlink("dup2pos.txt");
    if first != Ok(5) || refused != Err(Errno::EBADF) || second != Ok(2) {
        return Err("a write or the dup2 did not answer as it should");
    }
    match n {
        Ok(7) if &buf[..7] == b"helloXX" => Ok(()),
        _ => Err("the write after the failed dup2 went elsewhere than after the first"),
    }
}

/// The older way to redirect: `close(1)` then `dup(w)`, which takes 1 (POSIX's lowest
/// free number); a write to the closed 1 before that is `EBADF`, and `println!` afterwards
/// lands in the pipe.
fn close_then_dup() -> Result<(), &'static str> {
    let [r, w] = rt::pipe().map_err(|_| "pipe failed")?;
    let pid = child(|| {
        let _ = rt::close(r);
        if rt::close(1).is_err() || rt::close(1) != Err(Errno::EBADF) {
            return 1;
        }
        if rt::write(1, b"lost") != Err(Errno::EBADF) {
            return 2;
        }
        if rt::dup(w) != Ok(1) {
            return 3;
        }
        let _ = rt::close(w);
        println!("through the lowest free number");
        0
    })?;
    match collect(pid, [r, w], 1000) {
        (0, Ok(g)) if g == b"through the lowest free number\n" => Ok(()),
        (0, _) => Err("the pipe does not hold the child's line"),
        _ => Err("close(1) or dup did not answer as POSIX has it"),
    }
}
