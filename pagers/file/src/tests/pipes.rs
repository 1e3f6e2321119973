//! Host tests of pipes, `dup`/`dup2` and descriptors 0..2 the server holds
//! (`crate::fs::pipes`): data, waiting and waking, end of file and `EPIPE`, atomic writes,
//! the ends' counts across `fork`, `close` and a task's end, errors and limits.

use super::host::{Host, Req, image, mount};
use crate::fs::{Fail, Files, MAX_PIPES};
use proto::Errno;
use proto::file::{
    AT_POSITION, DUP_MAX, PIPE_BUF, PIPE_SIZE, PIPES_PER_TASK, Path, Whence, open_flags as of,
};
use std::vec::Vec;

const A: u64 = 10;
const B: u64 = 11;
const C: u64 = 12;

fn files() -> Files<Host> {
    let img = image(&[("DATA.TXT", b"0123456789")], 0);
    mount(img, 8, false).0
}

fn read(f: &mut Files<Host>, pid: u64, fd: u64, len: usize) -> Result<Vec<u8>, Fail> {
    let mut out = std::vec![0u8; len];
    let n = f.read(pid, fd, AT_POSITION, len as u64, &mut out)?;
    out.truncate(n);
    Ok(out)
}

fn write(f: &mut Files<Host>, pid: u64, fd: u64, data: &[u8]) -> Result<usize, Fail> {
    f.write(pid, fd, AT_POSITION, data.len() as u64, data)
}

fn no<T: core::fmt::Debug>(r: Result<T, Fail>) -> Errno {
    match r {
        Err(Fail::No(e)) => e,
        Err(_) => panic!("waits"),
        Ok(v) => panic!("succeeds: {v:?}"),
    }
}

fn pipe_of<T: core::fmt::Debug>(r: Result<T, Fail>) -> u64 {
    match r {
        Err(Fail::WaitPipe(p)) => p,
        Err(Fail::No(e)) => panic!("fails: {e:?}"),
        Err(_) => panic!("waits for the disk"),
        Ok(v) => panic!("does not wait: {v:?}"),
    }
}

#[track_caller]
fn ok<T>(r: Result<T, Fail>) -> T {
    match r {
        Ok(v) => v,
        Err(Fail::No(e)) => panic!("fails: {e:?}"),
        Err(_) => panic!("waits"),
    }
}

/// The requests woken since the last call (their ids), with whether their task had ended.
fn woken(f: &mut Files<Host>) -> Vec<(u32, bool)> {
    f.completions()
        .into_iter()
        .map(|(r, e)| {
            assert_eq!(e, None);
            (r.id, r.gone)
        })
        .collect()
}

#[test]
fn bytes_go_through_in_order_and_the_last_writer_gone_is_end_of_file() {
    let mut f = files();
    let (r, w) = f.pipe(A, 0).unwrap();
    assert_eq!((r, w), (3, 4));
    assert_eq!(ok(write(&mut f, A, w, b"hello ")), 6);
    assert_eq!(ok(write(&mut f, A, w, b"world")), 5);
    assert_eq!(f.fstat(A, r), Ok(11));
    assert_eq!(ok(read(&mut f, A, r, 8)), b"hello wo");
    assert_eq!(ok(read(&mut f, A, r, 100)), b"rld");
    // Empty with a writer: the read waits (or, without a saved reply to spare, `EBUSY`).
    assert_eq!(no(read(&mut f, A, r, 1)), Errno::EBUSY);
    f.can_wait = true;
    let p = pipe_of(read(&mut f, A, r, 1));
    f.park(Fail::WaitPipe(p), Req::new(1, A)).unwrap();
    assert!(woken(&mut f).is_empty());
    f.close(A, w).unwrap();
    // The writer's close wakes the reader, whose read again is end of file.
    assert_eq!(woken(&mut f), [(1, false)]);
    assert_eq!(ok(read(&mut f, A, r, 10)), b"");
    f.close(A, r).unwrap();
    assert_eq!(f.pipe_count(), 0);
    assert_eq!(f.descriptors().0, 0);
}

#[test]
fn a_full_pipe_makes_the_writer_wait_until_a_read_makes_room() {
    let mut f = files();
    let (r, w) = f.pipe(A, 0).unwrap();
    f.can_wait = true;
    let big = std::vec![7u8; PIPE_SIZE + 1000];
    let mut sent = 0;
    while let Ok(n) = f.write(A, w, AT_POSITION, (big.len() - sent) as u64, &big[sent..]) {
        assert!(n > 0);
        sent += n;
    }
    assert_eq!(sent, PIPE_SIZE);
    let p = pipe_of(f.write(A, w, AT_POSITION, 1000, &big[..1000]));
    f.park(Fail::WaitPipe(p), Req::new(2, A)).unwrap();
    assert_eq!(ok(read(&mut f, A, r, 100)).len(), 100);
    assert_eq!(woken(&mut f), [(2, false)]);
    // Run again: what fits goes in (a write larger than `PIPE_BUF` may be split).
    assert_eq!(ok(f.write(A, w, AT_POSITION, 1000, &big[..1000])), 100);
    // `O_NONBLOCK`: `EAGAIN` instead of waiting.
    let (_, w2) = f.pipe(B, of::NONBLOCK).unwrap();
    let mut n = 0;
    while n < PIPE_SIZE {
        n += ok(f.write(B, w2, AT_POSITION, 4096, &big[..4096]));
    }
    assert_eq!(no(write(&mut f, B, w2, b"x")), Errno::EAGAIN);
}

#[test]
fn no_reader_left_is_epipe_and_wakes_a_waiting_writer() {
    let mut f = files();
    let (r, w) = f.pipe(A, 0).unwrap();
    f.can_wait = true;
    let fill = std::vec![1u8; PIPE_SIZE];
    assert_eq!(ok(write(&mut f, A, w, &fill)), PIPE_SIZE);
    let p = pipe_of(write(&mut f, A, w, b"more"));
    f.park(Fail::WaitPipe(p), Req::new(3, A)).unwrap();
    f.close(A, r).unwrap();
    assert_eq!(woken(&mut f), [(3, false)]);
    assert_eq!(no(write(&mut f, A, w, b"more")), Errno::EPIPE);
    // Reading from a write end, writing to a read end: `EBADF`; `lseek`: `ESPIPE`.
    assert_eq!(no(read(&mut f, A, w, 1)), Errno::EBADF);
    assert_eq!(f.lseek(A, w, 0, Whence::Set), Err(Errno::ESPIPE));
    // `pread`, `pwrite`, `mmap`, `ftruncate` of a pipe: `ESPIPE` (no offsets, no object).
    assert_eq!(no(f.write(A, w, 0, 1, b"x")), Errno::ESPIPE);
    let (r2, w2) = f.pipe(A, 0).unwrap();
    assert_eq!(no(f.read(A, r2, 0, 1, &mut [0u8; 1])), Errno::ESPIPE);
    f.close(A, r2).unwrap();
    f.close(A, w2).unwrap();
    assert_eq!(f.get_object(A, w, false), Err(Errno::ESPIPE));
    assert_eq!(f.ftruncate(A, w, 0), Err(Errno::ESPIPE));
    f.close(A, w).unwrap();
    assert_eq!(f.pipe_count(), 0);
}

#[test]
fn fork_copies_the_ends_and_a_killed_writer_means_end_of_file() {
    let mut f = files();
    let (r, w) = f.pipe(A, 0).unwrap();
    f.task_fork(A, B).unwrap();
    // The parent reads, the child writes: the parent's own write end goes first.
    f.close(A, w).unwrap();
    f.close(B, r).unwrap();
    f.can_wait = true;
    let p = pipe_of(read(&mut f, A, r, 10));
    f.park(Fail::WaitPipe(p), Req::new(4, A)).unwrap();
    assert_eq!(ok(write(&mut f, B, w, b"from the child")), 14);
    assert_eq!(woken(&mut f), [(4, false)]);
    assert_eq!(ok(read(&mut f, A, r, 100)), b"from the child");
    let p = pipe_of(read(&mut f, A, r, 10));
    f.park(Fail::WaitPipe(p), Req::new(5, A)).unwrap();
    // The child is killed: its ends go with it, and the reader wakes to end of file.
    f.task_exit(B).unwrap();
    assert_eq!(woken(&mut f), [(5, false)]);
    assert_eq!(ok(read(&mut f, A, r, 10)), b"");
    // A waiter whose own task ends is answered into nothing, not left holding its reply.
    let (r2, _w2) = f.pipe(C, 0).unwrap();
    let p = pipe_of(read(&mut f, C, r2, 10));
    f.park(Fail::WaitPipe(p), Req::new(6, C)).unwrap();
    f.task_exit(C).unwrap();
    assert_eq!(woken(&mut f), [(6, true)]);
    f.task_exit(A).unwrap();
    assert_eq!((f.pipe_count(), f.descriptors().0), (0, 0));
}

#[test]
fn writes_of_at_most_pipe_buf_bytes_are_never_interleaved() {
    let mut f = files();
    let (r, w) = f.pipe(A, 0).unwrap();
    f.task_fork(A, B).unwrap();
    f.can_wait = true;
    // A writes 512 bytes in two messages (464 + 48); B writes between them, and its bytes
    // go in first: A's first part is held aside until the rest comes.
    let a = std::vec![b'a'; PIPE_BUF];
    assert_eq!(
        ok(f.write(A, w, AT_POSITION, PIPE_BUF as u64, &a[..464])),
        464
    );
    assert_eq!(f.fstat(A, r), Ok(0));
    assert_eq!(ok(f.write(B, w, AT_POSITION, 10, b"bbbbbbbbbb")), 10);
    assert_eq!(ok(f.write(A, w, AT_POSITION, 48, &a[464..])), 48);
    assert_eq!(f.stash_count(), 0);
    let got = ok(read(&mut f, A, r, 1000));
    assert_eq!(&got[..10], b"bbbbbbbbbb");
    assert_eq!(&got[10..], &a[..]);
    // A write held aside waits for room for all of it, not a part.
    let fill = std::vec![1u8; PIPE_SIZE - 100];
    assert_eq!(ok(write(&mut f, A, w, &fill)), PIPE_SIZE - 100);
    assert_eq!(ok(f.write(B, w, AT_POSITION, 200, &a[..150])), 150);
    let p = pipe_of(f.write(B, w, AT_POSITION, 50, &a[..50]));
    f.park(Fail::WaitPipe(p), Req::new(7, B)).unwrap();
    assert_eq!(ok(read(&mut f, A, r, PIPE_SIZE)).len(), PIPE_SIZE - 100);
    assert_eq!(woken(&mut f), [(7, false)]);
    assert_eq!(ok(f.write(B, w, AT_POSITION, 50, &a[..50])), 50);
    assert_eq!(ok(read(&mut f, A, r, PIPE_SIZE)).len(), 200);
    // A writer that never sends the rest holds up nobody; its first part goes when it ends.
    assert_eq!(
        ok(f.write(A, w, AT_POSITION, PIPE_BUF as u64, &a[..464])),
        464
    );
    assert_eq!(ok(f.write(B, w, AT_POSITION, 10, b"bbbbbbbbbb")), 10);
    assert_eq!(f.stash_count(), 1);
    f.task_exit(A).unwrap();
    assert_eq!(f.stash_count(), 0);
    assert_eq!(ok(read(&mut f, B, r, 1000)), b"bbbbbbbbbb");
    // Nor does one that writes something else instead: the held part is given up.
    f.task_fork(B, C).unwrap();
    assert_eq!(
        ok(f.write(C, w, AT_POSITION, PIPE_BUF as u64, &a[..464])),
        464
    );
    assert_eq!(ok(f.write(C, w, AT_POSITION, 3, b"ccc")), 3);
    assert_eq!(ok(read(&mut f, B, r, 1000)), b"ccc");
    assert_eq!(f.stash_count(), 0);
    // A rest longer than what was announced is a new write too.
    assert_eq!(ok(f.write(C, w, AT_POSITION, 100, &a[..60])), 60);
    assert_eq!(ok(f.write(C, w, AT_POSITION, 100, &a[..60])), 60);
    assert_eq!(f.stash_count(), 1);
    assert_eq!(f.close(C, w), Ok(()));
    assert_eq!(f.stash_count(), 0);
    f.task_exit(C).unwrap();
    // B holds the only read end: its close makes its own write `EPIPE`.
    f.close(B, r).unwrap();
    assert_eq!(
        no(f.write(B, w, AT_POSITION, 10, b"bbbbbbbbbb")),
        Errno::EPIPE
    );
}

/// `O_NONBLOCK`: a write of at most `PIPE_BUF` bytes that would not fit whole is `EAGAIN`
/// at its first part, nothing held.
#[test]
fn a_nonblocking_atomic_write_is_all_or_nothing() {
    let mut f = files();
    let (r, w) = f.pipe(A, of::NONBLOCK).unwrap();
    let fill = std::vec![1u8; PIPE_SIZE - 100];
    assert_eq!(ok(write(&mut f, A, w, &fill)), PIPE_SIZE - 100);
    let a = std::vec![b'a'; PIPE_BUF];
    assert_eq!(
        no(f.write(A, w, AT_POSITION, PIPE_BUF as u64, &a[..464])),
        Errno::EAGAIN
    );
    assert_eq!(f.stash_count(), 0);
    assert_eq!(ok(read(&mut f, A, r, PIPE_SIZE)).len(), PIPE_SIZE - 100);
    assert_eq!(
        ok(f.write(A, w, AT_POSITION, PIPE_BUF as u64, &a[..464])),
        464
    );
    assert_eq!(ok(f.write(A, w, AT_POSITION, 48, &a[464..])), 48);
    assert_eq!(ok(read(&mut f, A, r, PIPE_SIZE)), a);
}

/// The per-task limit counts pipes, not descriptors: closing one end of each pipe does not
/// let a task hold more.
#[test]
fn a_task_holds_at_most_pipes_per_task_pipes_whatever_ends_it_closed() {
    let mut f = files();
    for _ in 0..PIPES_PER_TASK {
        let (_, w) = f.pipe(A, 0).unwrap();
        f.close(A, w).unwrap();
    }
    assert_eq!(f.pipe(A, 0), Err(Errno::EMFILE));
    assert!(f.pipe(B, 0).is_ok());
}

#[test]
fn dup2_onto_standard_descriptors_and_back_to_the_console() {
    let mut f = files();
    let (fd, _) = f
        .open(A, &Path::new("DATA.TXT").unwrap(), of::RDWR)
        .unwrap();
    assert_eq!(f.redirected(A), 0);
    // `dup2(fd, 1)`: the server holds 1 now; the copy shares the position.
    assert_eq!(f.dup2(A, fd, 1), Ok(0b010));
    assert_eq!(ok(read(&mut f, A, 1, 4)), b"0123");
    assert_eq!(ok(read(&mut f, A, fd, 2)), b"45");
    // `dup2(x, x)` checks x; a forged old, a new past `DUP_MAX`: `EBADF`.
    assert_eq!(f.dup2(A, 1, 1), Ok(0b010));
    assert_eq!(f.dup2(A, 99, 5), Err(Errno::EBADF));
    assert_eq!(f.dup2(A, fd, DUP_MAX), Err(Errno::EBADF));
    assert_eq!(f.dup2(A, fd, u64::MAX), Err(Errno::EBADF));
    assert_eq!(f.dup(A, 77), Err(Errno::EBADF));
    // Another task's descriptor is not the caller's.
    assert_eq!(f.dup2(B, fd, 1), Err(Errno::EBADF));
    // `dup(0)` of the console: a descriptor whose calls go to the console (`EXDEV`).
    let c = f.dup(A, 0).unwrap();
    assert_eq!(no(write(&mut f, A, c, b"x")), Errno::EXDEV);
    // `dup2(console, 1)`: 1 is the console's again.
    assert_eq!(f.dup2(A, c, 1), Ok(0));
    assert_eq!(f.dup2(A, fd, 0), Ok(0b001));
    assert_eq!(f.dup2(A, 2, 0), Ok(0));
    // A pipe on 0 and 1; `exec` keeps them (no `O_CLOEXEC`), the task's end drops them.
    let (r, w) = f.pipe(A, of::CLOEXEC).unwrap();
    assert_eq!(f.dup2(A, r, 0), Ok(0b001));
    assert_eq!(f.dup2(A, w, 1), Ok(0b011));
    f.task_exec(A).unwrap();
    assert_eq!(f.redirected(A), 0b011);
    assert_eq!(ok(write(&mut f, A, 1, b"hi")), 2);
    assert_eq!(ok(read(&mut f, A, 0, 9)), b"hi");
    assert!(f.is_stream(A, 0));
    f.task_exit(A).unwrap();
    assert_eq!((f.pipe_count(), f.descriptors().0), (0, 0));
}

#[test]
fn pipes_are_limited_per_task_and_in_all() {
    let mut f = files();
    assert_eq!(f.pipe(A, of::RDWR), Err(Errno::EINVAL));
    for _ in 0..PIPES_PER_TASK {
        f.pipe(A, 0).unwrap();
    }
    assert_eq!(f.pipe(A, 0), Err(Errno::EMFILE));
    let mut pid = 100;
    while f.pipe_count() < MAX_PIPES {
        if f.pipe(pid, 0).is_err() {
            pid += 1;
        }
    }
    assert_eq!(f.pipe(pid + 1, 0), Err(Errno::ENFILE));
    for p in [A].into_iter().chain(100..=pid) {
        f.task_exit(p).unwrap();
    }
    assert_eq!((f.pipe_count(), f.descriptors().0), (0, 0));
}

/// POSIX's lowest available descriptor: after `close(1)` of the console's 1, `dup` and
/// `open` and `pipe` take 1 (then 0, 2 as closed), the closed number is `EBADF` until then,
/// a `fork` copies that it is closed, and a `dup2` of the console gives it back.
#[test]
fn closed_standard_descriptors_are_the_lowest_free() {
    let mut f = files();
    let (r, w) = f.pipe(A, 0).unwrap();
    assert_eq!((r, w), (3, 4));
    assert_eq!(f.redirected(A), 0);
    // The console's 1, closed: once, then EBADF.
    assert_eq!(f.close(A, 1), Ok(()));
    assert_eq!(f.close(A, 1), Err(Errno::EBADF));
    assert_eq!(f.redirected(A), 0b010);
    assert_eq!(no(write(&mut f, A, 1, b"x")), Errno::EBADF);
    // `dup` takes it: what is written to 1 goes into the pipe.
    assert_eq!(f.dup(A, w), Ok(1));
    assert_eq!(ok(write(&mut f, A, 1, b"to one")), 6);
    assert_eq!(ok(read(&mut f, A, r, 100)), b"to one");
    // A closed 0 is what `open` takes next; a pipe takes 2 and then 5.
    assert_eq!(f.close(A, 0), Ok(()));
    let (fd, _) = f
        .open(A, &Path::new("DATA.TXT").unwrap(), of::RDONLY)
        .unwrap();
    assert_eq!(fd, 0);
    assert_eq!(ok(read(&mut f, A, 0, 4)), b"0123");
    assert_eq!(f.close(A, 2), Ok(()));
    assert_eq!(f.pipe(A, 0), Ok((2, 5)));
    assert_eq!(f.redirected(A), 0b111);
    // A fork child sees 1 closed after the parent's close, as the parent does.
    assert_eq!(f.close(A, 1), Ok(()));
    f.task_fork(A, B).unwrap();
    assert_eq!(f.close(B, 1), Err(Errno::EBADF));
    assert_eq!(f.redirected(B), 0b111);
    // `dup2` of a console descriptor (a `dup` of one) onto 1: the console's again.
    f.task_exit(B).unwrap();
    let (r2, w2) = f.pipe(B, 0).unwrap();
    let console = f.dup(B, 1).unwrap();
    assert_eq!(f.close(B, 1), Ok(()));
    assert_eq!(f.dup2(B, console, 1), Ok(0));
    assert_eq!(f.close(B, 1), Ok(()));
    assert_eq!(f.dup(B, console), Ok(1));
    assert_eq!(f.redirected(B), 0);
    for fd in [r2, w2, console] {
        f.close(B, fd).unwrap();
    }
    // A task's end forgets what it closed.
    f.task_exit(A).unwrap();
    assert_eq!(f.redirected(A), 0);
    assert_eq!(f.close(A, 1), Ok(()));
}
