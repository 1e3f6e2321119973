//! A second, hostile look at the servers (issue 8's review): what a POSIX test suite and a
//! hostile task would try after the fixes of issue 8, one `PASS`/`FAIL` line per check.
//!
//! - `review-etxtbsy`: a program being run from the disk (this one) cannot be opened for
//!   writing (`ETXTBSY`, POSIX `open`): otherwise any task rewrites the text every task
//!   running it maps from the page cache. A program open for writing still runs (init then
//!   takes the initrd's copy).
//! - `review-empty-path`: `open("")`, `stat("")`, `unlink("")` are `ENOENT` (POSIX), not
//!   the root directory.
//! - `review-trailing-slash`: `hello.txt/` names no file (`ENOTDIR`); `O_CREAT` of `x/` is
//!   `EISDIR`.
//! - `review-exec-names`: `spawn`/`exec` of `""` is `ENOENT`, of a name too long
//!   `ENAMETOOLONG` (POSIX `execve`).
//! - `review-control-from-task`: init's notices (`TaskExit`, `TaskFork`, `SyncAll`), vm's
//!   memory-object requests, shm's `CreateAnon` and vm's control requests, sent by a task:
//!   all `EPERM`, and nothing happened (the parent's descriptors still work).
//! - `review-procs`: `wait` of a sibling is `ECHILD`, `kill` of init, a server or the
//!   parent `EPERM`, of nobody `ESRCH`, of a child that ended and was not waited for 0
//!   (its status stays for `wait`); `wait(-1)` waits for any child (POSIX `waitpid`).
//! - `review-closed-fd`: every call on a closed descriptor is `EBADF`.
//! - `review-stale-file`, `review-stale-shm`: bytes a mapping wrote past the end of a file
//!   or shm object read as zero once it grows (also after a shrink).
//!
//! - `review-servers-not-programs`: `spawn` of a server's image (`vm`, `zero`, `file`,
//!   `shm-server`) or init's is `ENOENT`: they are not programs a task may start.
//! - `review-truncate-error`: an `ftruncate` that fails changes nothing (the size stays,
//!   and the bytes it would have cut are still the file's).
//! - `review-recreate-unlinked`: after `unlink` of a file still open, `O_CREAT` of its name
//!   makes a new, empty file (POSIX), while the old descriptor still reads the old bytes;
//!   the new one (`new`) is on the disk after power-off, the old one gone.
//!
//! - `review-append`: `O_APPEND` writes at the end of the file, wherever the position is.
//! - `review-negative-offset`: `pread`/`pwrite` at an offset that is negative as an
//!   `off_t` is `EINVAL`.
//! - `review-mapping-errors`: the errno values of `mmap`, `munmap`, `mprotect`, `msync`
//!   that a POSIX test checks (`EBADF` for `fd` -1 without `MAP_ANONYMOUS`, `EINVAL`,
//!   `ENOMEM`).
//! - `review-zero-length`: `read`/`write` of 0 bytes on a closed descriptor are `EBADF`
//!   (the descriptor is checked first), and on an open one change nothing (an `O_DIRECT`
//!   write of 0 bytes past the end does not grow the file).
//! - `review-mmap-hint`: an address that is only a hint (no `MAP_FIXED`) may be unaligned.
//! - `review-kill-mid-request`: children killed while they wait for the file server (a
//!   fault that needs the disk, an `O_DIRECT` read, a shm request): every server still
//!   answers, and the descriptors, handles and pages they held come back.
//! - `review-cloexec`: at `exec`, a descriptor opened `O_CLOEXEC` and every shm descriptor
//!   (POSIX `shm_open` sets `FD_CLOEXEC`) go, a plain one stays (`review-exec` counts them).
//! - `review-reuse-zeroed`: memory another task filled with secrets and gave back (private
//!   anonymous pages, a shm object's blocks, a file's cache blocks) reads as zero when it
//!   comes back in a new mapping, a new shm object or a new file.
//! - `review-grow-kept`: a file grown by `ftruncate` alone keeps its size when closed: the
//!   host finds `GROWN.DAT` with its 10,000 zero bytes after power-off.
//! - `review-unlinked-data`: a file larger than the page cache, unlinked while open (its
//!   name taken by a new file at once): its descriptors, an `O_DIRECT` one too, and a
//!   mapping still read and write all of its bytes.
//!
//! Runs with a disk copy of its own and a page cache of four blocks (`attack-review`).
#![no_std]
#![no_main]

use demos::{Checks, PAGE, peek, poke};
use libmk::{Cap, Endpoint};
use rt::proto::object::ObjectRequest;
use rt::proto::{ServerControl, ShmRequest, VmControl, task_slots};
use rt::{
    Errno, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, NO_FD, O_APPEND, O_CLOEXEC, O_CREAT, O_DIRECT,
    O_DIRECTORY, O_EXCL, O_LARGEFILE, O_NOATIME, O_NOCTTY, O_NOFOLLOW, O_NONBLOCK, O_RDONLY,
    O_RDWR, O_SYNC, O_TRUNC, O_WRONLY, PROT_READ, PROT_WRITE, WaitStatus, Whence, println,
};

rt::entry!(main);

const RW: u64 = PROT_READ | PROT_WRITE;
const VM: Cap<Endpoint> = Cap::from_cptr(task_slots::VM);
const FILE: Cap<Endpoint> = Cap::from_cptr(task_slots::FILE);
const SHM: Cap<Endpoint> = Cap::from_cptr(task_slots::SHM);
/// This program on the disk.
const SELF: &str = "bin/attack-review";

fn main() -> i32 {
    println!("attack-review: pid {}", rt::getpid());
    let mut c = Checks::default();
    c.run("review-etxtbsy", etxtbsy);
    c.run("review-empty-path", empty_path);
    c.run("review-trailing-slash", trailing_slash);
    c.run("review-exec-names", exec_names);
    c.run("review-control-from-task", control_from_task);
    c.run("review-procs", procs);
    c.run("review-closed-fd", closed_fd);
    c.run("review-stale-file", stale_file);
    c.run("review-stale-shm", stale_shm);
    c.run("review-servers-not-programs", servers_not_programs);
    c.run("review-truncate-error", truncate_error);
    c.run("review-recreate-unlinked", recreate_unlinked);
    c.run("review-append", append);
    c.run("review-negative-offset", negative_offset);
    c.run("review-mapping-errors", mapping_errors);
    c.run("review-zero-length", zero_length);
    c.run("review-mmap-hint", mmap_hint);
    c.run("review-kill-mid-request", kill_mid_request);
    c.run("review-cloexec", cloexec);
    c.run("review-reuse-zeroed", reuse_zeroed);
    c.run("review-grow-kept", grow_kept);
    c.run("review-unlinked-data", unlinked_data);
    c.run("review-open-flags", open_flags);
    println!("attack-review: {} failures", c.failures);
    c.failures
}

/// Runs `child` in a fork child and waits for it: `Ok` if it exited with 0.
fn in_child(child: fn() -> i32) -> Result<(), &'static str> {
    in_child_expecting(child, 0)
}

/// [`in_child`] for a child that must exit with `status`.
fn in_child_expecting(child: fn() -> i32, status: u64) -> Result<(), &'static str> {
    match rt::fork() {
        Ok(0) => rt::exit(child()),
        Ok(pid) => match rt::wait(pid) {
            Ok((_, WaitStatus::Exited, v)) if v == status => Ok(()),
            Ok((_, how, v)) => {
                println!("attack-review: child {pid} ended {how:?} {v:#x}");
                Err("the child failed")
            }
            Err(_) => Err("wait failed"),
        },
        Err(_) => Err("fork failed"),
    }
}

fn etxtbsy() -> Result<(), &'static str> {
    for (name, flags) in [
        (SELF, O_RDWR),
        (SELF, O_WRONLY),
        (SELF, O_WRONLY | O_TRUNC),
        ("./BIN/../bin//ATTACK-REVIEW", O_RDWR),
    ] {
        match rt::open(name, flags) {
            Err(Errno::ETXTBSY) => {}
            other => {
                if let Ok(fd) = other {
                    let _ = rt::close(fd);
                }
                println!("attack-review: open({name}, {flags:#o}) = {other:?}");
                return Err("a running program opens for writing (want ETXTBSY)");
            }
        }
    }
    // Reading it is fine, and a file open for writing still runs (from the initrd).
    let fd = rt::open(SELF, O_RDONLY).map_err(|_| "a running program does not open to read")?;
    rt::close(fd).map_err(|_| "close failed")?;
    let w = rt::open("bin/hello", O_RDWR).map_err(|_| "bin/hello does not open O_RDWR")?;
    let pid = rt::spawn("hello").map_err(|_| "hello does not run while open for writing")?;
    let ended = rt::wait(pid);
    rt::close(w).map_err(|_| "close failed")?;
    // `hello` exits with 3.
    if !matches!(ended, Ok((_, WaitStatus::Exited, 3))) {
        return Err("hello failed");
    }
    Ok(())
}

fn empty_path() -> Result<(), &'static str> {
    let open = rt::open("", O_RDONLY);
    let stat = rt::stat("");
    let unlink = rt::unlink("");
    if open != Err(Errno::ENOENT)
        || stat.err() != Some(Errno::ENOENT)
        || unlink != Err(Errno::ENOENT)
    {
        println!("attack-review: \"\": open {open:?}, stat {stat:?}, unlink {unlink:?}");
        return Err("the empty path is not ENOENT");
    }
    Ok(())
}

fn trailing_slash() -> Result<(), &'static str> {
    let open = rt::open("hello.txt/", O_RDONLY);
    let stat = rt::stat("hello.txt/");
    let create = rt::open("NEWDIR.DAT/", O_CREAT | O_RDWR);
    if let Ok(fd) = open {
        let _ = rt::close(fd);
    }
    if let Ok(fd) = create {
        let _ = rt::close(fd);
        let _ = rt::unlink("NEWDIR.DAT");
    }
    if open != Err(Errno::ENOTDIR)
        || stat.err() != Some(Errno::ENOTDIR)
        || create != Err(Errno::EISDIR)
    {
        println!(
            "attack-review: hello.txt/: open {open:?}, stat {stat:?}; O_CREAT NEWDIR.DAT/: {create:?}"
        );
        return Err("a file name with a trailing slash opens or is created");
    }
    if rt::stat("bin/").map(|s| s.is_dir) != Ok(true) {
        return Err("bin/ is not a directory");
    }
    Ok(())
}

fn exec_names() -> Result<(), &'static str> {
    let long = "a-program-name-far-too-long";
    let results = [
        (rt::spawn(""), Errno::ENOENT),
        (rt::spawn(long), Errno::ENAMETOOLONG),
        (rt::exec("").map(|_| 0), Errno::ENOENT),
        (rt::exec(long).map(|_| 0), Errno::ENAMETOOLONG),
    ];
    for (got, want) in results {
        if got != Err(want) {
            println!("attack-review: spawn/exec: {got:?}, want {want}");
            return Err("spawn/exec of an empty or too long name");
        }
    }
    Ok(())
}

fn control_from_task() -> Result<(), &'static str> {
    let fd = rt::open("CTRL.DAT", O_CREAT | O_RDWR).map_err(|_| "create failed")?;
    rt::write(fd, b"control").map_err(|_| "write failed")?;
    let shm = rt::shm_open("/ctrl", O_CREAT | O_RDWR, 0o600).map_err(|_| "shm_open failed")?;
    let me = rt::getpid();
    let result = in_child(|| {
        let parent = rt::getppid().unwrap_or(0);
        let me = rt::getpid();
        let notices = [
            ServerControl::TaskExit { pid: parent },
            ServerControl::TaskFork {
                parent,
                child: me + 1000,
            },
            ServerControl::SyncAll,
        ];
        let objects = [
            ObjectRequest::Claim { handle: 1, pid: me },
            ObjectRequest::Page {
                handle: 1,
                block: 0,
                write: true,
            },
            ObjectRequest::Dirty {
                handle: 1,
                block: 0,
            },
            ObjectRequest::Sync {
                handle: 1,
                first: 0,
                count: 1,
            },
        ];
        let mut bad = 0;
        for ep in [FILE, SHM] {
            for n in notices {
                let r = rt::ipc::call::<(), _>(ep, &n.encode());
                if r != Err(Errno::EPERM) {
                    println!("attack-review: {n:?} from a task: {r:?}");
                    bad += 1;
                }
            }
            for o in objects {
                let r = rt::ipc::call::<(), _>(ep, &o.encode());
                if r != Err(Errno::EPERM) {
                    println!("attack-review: {o:?} from a task: {r:?}");
                    bad += 1;
                }
            }
        }
        let r = rt::ipc::call::<(), _>(SHM, &ShmRequest::CreateAnon { size: PAGE }.encode());
        if r != Err(Errno::EPERM) {
            println!("attack-review: CreateAnon from a task: {r:?}");
            bad += 1;
        }
        for v in [
            VmControl::Destroy { pid: parent },
            VmControl::Reset { pid: parent },
            VmControl::TakeKills,
        ] {
            let r = rt::ipc::call::<(), _>(VM, &v.encode());
            if r != Err(Errno::EPERM) {
                println!("attack-review: {v:?} from a task: {r:?}");
                bad += 1;
            }
        }
        bad
    });
    // The parent's descriptors and address space are intact.
    let mut buf = [0u8; 7];
    let read = rt::pread(fd, &mut buf, 0);
    let size = rt::fstat(shm).map(|s| s.size);
    let _ = rt::close(fd);
    let _ = rt::close(shm);
    let _ = rt::unlink("CTRL.DAT");
    let _ = rt::shm_unlink("/ctrl");
    result?;
    if read != Ok(7) || &buf != b"control" || size != Ok(0) || rt::getpid() != me {
        return Err("a task's control request changed another task's state");
    }
    Ok(())
}

fn procs() -> Result<(), &'static str> {
    if rt::wait(0) != Err(Errno::ECHILD) {
        return Err("wait without children is not ECHILD");
    }
    // A child that has ended and is not waited for yet is still a process: `kill` of it
    // succeeds and changes nothing (its exit status stays for `wait`). The child says it
    // is about to exit through a shared page; the parent then yields until `kill` no
    // longer finds it running (a `kill` of a running child would end it as Killed).
    let flag = demos::shared_anon(1, RW).map_err(|_| "mmap failed")?;
    let zombie = match rt::fork() {
        Ok(0) => {
            poke(flag, 1);
            rt::exit(5)
        }
        Ok(pid) => pid,
        Err(_) => return Err("fork failed"),
    };
    while peek(flag) == 0 {
        rt::sched_yield();
    }
    // The child runs at the parent's priority: a few more turns and it has exited.
    for _ in 0..64 {
        rt::sched_yield();
    }
    let killed = rt::kill(zombie);
    let status = rt::wait(zombie);
    let _ = rt::munmap(flag, PAGE);
    if killed != Ok(()) || !matches!(status, Ok((_, WaitStatus::Exited, 5))) {
        println!("attack-review: kill of an ended child: {killed:?}, then wait: {status:?}");
        return Err("kill of a child that ended but was not waited for");
    }
    // A sibling: the first child waits until the second has tried.
    let sibling = match rt::fork() {
        Ok(0) => {
            // Stays until its parent kills it.
            loop {
                rt::sched_yield();
            }
        }
        Ok(pid) => pid,
        Err(_) => return Err("fork failed"),
    };
    let parent = rt::getpid();
    let result = match rt::fork() {
        Ok(0) => {
            let mut bad = 0;
            let checks = [
                (rt::wait(sibling).map(|_| ()), Errno::ECHILD),
                (rt::kill(sibling), Errno::EPERM),
                (rt::kill(parent), Errno::EPERM),
                (rt::kill(1), Errno::EPERM),
                (rt::kill(2), Errno::EPERM),
                (rt::kill(4), Errno::EPERM),
                (rt::kill(1 << 40), Errno::ESRCH),
            ];
            for (i, (got, want)) in checks.iter().enumerate() {
                if *got != Err(*want) {
                    println!("attack-review: process check {i}: {got:?}, want {want}");
                    bad += 1;
                }
            }
            rt::exit(bad)
        }
        Ok(pid) => rt::wait(pid),
        Err(_) => return Err("fork failed"),
    };
    let killed = rt::kill(sibling);
    // `waitpid(-1)`: any child.
    let reaped = rt::wait(u64::MAX);
    if !matches!(result, Ok((_, WaitStatus::Exited, 0))) {
        return Err("a task reached a process that is not its descendant");
    }
    if killed.is_err() || !matches!(reaped, Ok((_, WaitStatus::Killed, _))) {
        return Err("the parent cannot kill and reap its own child");
    }
    Ok(())
}

fn closed_fd() -> Result<(), &'static str> {
    let fd = rt::open("CLOSED.DAT", O_CREAT | O_RDWR).map_err(|_| "create failed")?;
    rt::close(fd).map_err(|_| "close failed")?;
    let mut b = [0u8; 4];
    let results = [
        rt::close(fd),
        rt::read(fd, &mut b).map(drop),
        rt::write(fd, b"x").map(drop),
        rt::pread(fd, &mut b, 0).map(drop),
        rt::pwrite(fd, b"x", 0).map(drop),
        rt::lseek(fd, 0, Whence::Set).map(drop),
        rt::fstat(fd).map(drop),
        rt::ftruncate(fd, 0),
        rt::mmap(0, PAGE, PROT_READ, MAP_SHARED, fd, 0).map(drop),
    ];
    let _ = rt::unlink("CLOSED.DAT");
    for (i, r) in results.iter().enumerate() {
        if *r != Err(Errno::EBADF) {
            println!("attack-review: call {i} on a closed descriptor: {r:?}");
            return Err("a closed descriptor is not EBADF");
        }
    }
    Ok(())
}

/// Word `i` of page `at` reads `v`.
fn all_zero(at: u64, from: u64, to: u64) -> bool {
    (from..to).step_by(8).all(|o| peek(at + o) == 0)
}

fn stale_file() -> Result<(), &'static str> {
    let fd = rt::open("STALE.DAT", O_CREAT | O_EXCL | O_RDWR).map_err(|_| "create failed")?;
    let r = (|| {
        rt::write(fd, &[1u8; 104]).map_err(|_| "write failed")?;
        let m = rt::mmap(0, PAGE, RW, MAP_SHARED, fd, 0).map_err(|_| "mmap failed")?;
        // Past the end of the file, inside its last page.
        for o in (104..PAGE).step_by(8) {
            poke(m + o, 0x5ec2_e700_0000_0000 | o);
        }
        rt::munmap(m, PAGE).map_err(|_| "munmap failed")?;
        // The file grows by a write further on: the gap is the file's now, and zero.
        rt::pwrite(fd, b"!", 2 * PAGE).map_err(|_| "pwrite failed")?;
        let mut buf = [0xffu8; 2 * PAGE as usize];
        rt::pread(fd, &mut buf, 0).map_err(|_| "pread failed")?;
        if buf[104..].iter().any(|&b| b != 0) {
            return Err("bytes written past the end read back after the file grew (pwrite)");
        }
        // Again with a shrink and a grow by ftruncate.
        let m = rt::mmap(0, PAGE, RW, MAP_SHARED, fd, 0).map_err(|_| "mmap failed")?;
        rt::ftruncate(fd, 48).map_err(|_| "ftruncate failed")?;
        rt::ftruncate(fd, PAGE).map_err(|_| "ftruncate failed")?;
        let fresh = all_zero(m, 48, PAGE);
        rt::munmap(m, PAGE).map_err(|_| "munmap failed")?;
        let mut buf = [0xffu8; PAGE as usize];
        rt::pread(fd, &mut buf, 0).map_err(|_| "pread failed")?;
        if !fresh || buf[48..].iter().any(|&b| b != 0) {
            return Err("bytes cut by ftruncate read back after it grew the file");
        }
        Ok(())
    })();
    let _ = rt::close(fd);
    let _ = rt::unlink("STALE.DAT");
    r
}

fn stale_shm() -> Result<(), &'static str> {
    let fd =
        rt::shm_open("/stale", O_CREAT | O_EXCL | O_RDWR, 0o600).map_err(|_| "shm_open failed")?;
    let r = (|| {
        rt::ftruncate(fd, 104).map_err(|_| "ftruncate failed")?;
        let m = rt::mmap(0, PAGE, RW, MAP_SHARED, fd, 0).map_err(|_| "mmap failed")?;
        for o in (104..PAGE).step_by(8) {
            poke(m + o, 0x5ec2_e700_0000_0000 | o);
        }
        rt::ftruncate(fd, 2 * PAGE).map_err(|_| "ftruncate failed")?;
        if !all_zero(m, 104, PAGE) {
            return Err("bytes written past the end of a shm object read back after it grew");
        }
        rt::munmap(m, PAGE).map_err(|_| "munmap failed")?;
        Ok(())
    })();
    let _ = rt::close(fd);
    let _ = rt::shm_unlink("/stale");
    r
}

fn servers_not_programs() -> Result<(), &'static str> {
    for name in ["vm", "zero", "file", "shm-server", "init"] {
        match rt::spawn(name) {
            Err(Errno::ENOENT) => {}
            other => {
                if let Ok(pid) = other {
                    let ended = rt::wait(pid);
                    println!("attack-review: spawn({name}) started pid {pid}: {ended:?}");
                } else {
                    println!("attack-review: spawn({name}) = {other:?}");
                }
                return Err("a server's image starts as a task (want ENOENT)");
            }
        }
    }
    Ok(())
}

/// Byte `i` of `TRUNC.DAT`.
fn trunc_byte(i: usize) -> u8 {
    (i % 251) as u8 | 1
}

fn truncate_error() -> Result<(), &'static str> {
    // Larger than the page cache (four blocks): a shrink cannot be staged in it.
    const LEN: usize = 5 * 65536;
    const CUT: u64 = 4 * 65536 + 4096;
    let fd = rt::open("TRUNC.DAT", O_CREAT | O_EXCL | O_RDWR).map_err(|_| "create failed")?;
    let r = (|| {
        let mut chunk = [0u8; 4096];
        for at in (0..LEN).step_by(chunk.len()) {
            for (i, b) in chunk.iter_mut().enumerate() {
                *b = trunc_byte(at + i);
            }
            rt::write(fd, &chunk).map_err(|_| "write failed")?;
        }
        // On the disk now.
        rt::close(fd).map_err(|_| "close failed")?;
        Ok(())
    })();
    r?;
    let fd = rt::open("TRUNC.DAT", O_RDWR).map_err(|_| "open failed")?;
    let r = (|| {
        let cut = rt::ftruncate(fd, CUT);
        let size = rt::fstat(fd).map(|s| s.size).map_err(|_| "fstat failed")?;
        let want = if cut.is_ok() { CUT } else { LEN as u64 };
        if size != want {
            println!("attack-review: ftruncate({CUT}) = {cut:?}, then the size is {size}");
            return Err("a failed ftruncate changed the size");
        }
        // Grown back: what was cut reads as zero, what was not cut is the file's.
        rt::ftruncate(fd, LEN as u64).map_err(|_| "ftruncate to grow failed")?;
        let mut buf = [0u8; 4096];
        for at in (CUT as usize - 4096..LEN).step_by(4096) {
            rt::pread(fd, &mut buf, at as u64).map_err(|_| "pread failed")?;
            for (i, &b) in buf.iter().enumerate() {
                let want = if cut.is_ok() && at + i >= CUT as usize {
                    0
                } else {
                    trunc_byte(at + i)
                };
                if b != want {
                    println!("attack-review: byte {} is {b:#x}, want {want:#x}", at + i);
                    return Err("the file's bytes after ftruncate are wrong");
                }
            }
        }
        Ok(())
    })();
    let _ = rt::close(fd);
    let _ = rt::unlink("TRUNC.DAT");
    r
}

fn recreate_unlinked() -> Result<(), &'static str> {
    let old = rt::open("RECR.DAT", O_CREAT | O_EXCL | O_RDWR).map_err(|_| "create failed")?;
    let r = (|| {
        rt::write(old, b"old bytes").map_err(|_| "write failed")?;
        rt::unlink("RECR.DAT").map_err(|_| "unlink failed")?;
        if rt::open("RECR.DAT", O_RDONLY) != Err(Errno::ENOENT) {
            return Err("an unlinked name still opens");
        }
        let new = match rt::open_sized("RECR.DAT", O_CREAT | O_EXCL | O_RDWR) {
            Ok(r) => r,
            Err(e) => {
                println!("attack-review: O_CREAT of an unlinked, still open name: {e}");
                return Err("the name of an unlinked open file cannot be created again");
            }
        };
        rt::write(new.0, b"new").map_err(|_| "write to the new file failed")?;
        let mut buf = [0u8; 9];
        let read = rt::pread(old, &mut buf, 0);
        rt::close(new.0).map_err(|_| "close failed")?;
        if new.1 != 0 || read != Ok(9) || &buf != b"old bytes" {
            return Err("the new file is not empty or the old one lost its bytes");
        }
        Ok(())
    })();
    let _ = rt::close(old);
    // The new file stays for the host to check after power-off.
    if r.is_ok() && rt::stat("RECR.DAT").map(|s| s.size) != Ok(3) {
        return Err("closing the unlinked file disturbed the new one");
    }
    r
}

fn append() -> Result<(), &'static str> {
    let fd = match rt::open("APPEND.DAT", O_CREAT | O_EXCL | O_RDWR | O_APPEND) {
        Ok(fd) => fd,
        Err(e) => {
            println!("attack-review: open(O_APPEND) = {e}");
            return Err("O_APPEND is refused");
        }
    };
    let r = (|| {
        rt::write(fd, b"ab").map_err(|_| "write failed")?;
        rt::lseek(fd, 0, Whence::Set).map_err(|_| "lseek failed")?;
        rt::write(fd, b"cd").map_err(|_| "write failed")?;
        let pos = rt::lseek(fd, 0, Whence::Cur).map_err(|_| "lseek failed")?;
        let mut buf = [0u8; 8];
        let n = rt::pread(fd, &mut buf, 0).map_err(|_| "pread failed")?;
        if &buf[..n] != b"abcd" || pos != 4 {
            println!(
                "attack-review: O_APPEND file {:?}, position {pos}",
                &buf[..n]
            );
            return Err("an O_APPEND write did not go to the end");
        }
        Ok(())
    })();
    let _ = rt::close(fd);
    let _ = rt::unlink("APPEND.DAT");
    r
}

fn negative_offset() -> Result<(), &'static str> {
    let fd = rt::open("hello.txt", O_RDONLY).map_err(|_| "open failed")?;
    let w = rt::open("NEGOFF.DAT", O_CREAT | O_RDWR).map_err(|_| "create failed")?;
    let mut buf = [0u8; 8];
    let results = [
        rt::pread(fd, &mut buf, 1 << 63).map(drop),
        rt::pread(fd, &mut buf, u64::MAX - 7).map(drop),
        rt::pwrite(w, b"x", 1 << 63).map(drop),
        rt::pwrite(w, b"x", u64::MAX - 7).map(drop),
    ];
    let _ = rt::close(fd);
    let _ = rt::close(w);
    let _ = rt::unlink("NEGOFF.DAT");
    for (i, r) in results.iter().enumerate() {
        if *r != Err(Errno::EINVAL) {
            println!("attack-review: negative offset {i}: {r:?}");
            return Err("a negative offset is not EINVAL");
        }
    }
    Ok(())
}

fn mapping_errors() -> Result<(), &'static str> {
    let m = rt::mmap(0, 2 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, NO_FD, 0)
        .map_err(|_| "mmap failed")?;
    // A hole after the mapping.
    rt::munmap(m + PAGE, PAGE).map_err(|_| "munmap failed")?;
    let hole = m + PAGE;
    let checks = [
        (
            rt::mmap(0, PAGE, PROT_READ, MAP_PRIVATE, NO_FD, 0).map(drop),
            Errno::EBADF,
        ),
        (
            rt::mmap(0, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, NO_FD, 0).map(drop),
            Errno::EINVAL,
        ),
        (
            rt::mmap(0, 1 << 62, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, NO_FD, 0).map(drop),
            Errno::ENOMEM,
        ),
        (rt::munmap(m + 1, PAGE), Errno::EINVAL),
        (rt::munmap(m, 0), Errno::EINVAL),
        (rt::mprotect(m + 1, PAGE, PROT_READ), Errno::EINVAL),
        (rt::mprotect(m, 2 * PAGE, PROT_READ), Errno::ENOMEM),
        (rt::mprotect(hole, PAGE, PROT_READ), Errno::ENOMEM),
        (rt::msync(m + 1, PAGE), Errno::EINVAL),
        (rt::msync(hole, PAGE), Errno::ENOMEM),
    ];
    let _ = rt::munmap(m, PAGE);
    for (i, (got, want)) in checks.iter().enumerate() {
        if *got != Err(*want) {
            println!("attack-review: mapping call {i}: {got:?}, want {want}");
            return Err("a mapping call's errno is not POSIX's");
        }
    }
    Ok(())
}

fn zero_length() -> Result<(), &'static str> {
    let fd = rt::open("ZERO.DAT", O_CREAT | O_EXCL | O_RDWR).map_err(|_| "create failed")?;
    rt::close(fd).map_err(|_| "close failed")?;
    let mut empty = [0u8; 0];
    let closed = [
        rt::read(fd, &mut empty),
        rt::write(fd, &[]),
        rt::pread(fd, &mut empty, 0),
        rt::pwrite(fd, &[], 0),
    ];
    let d = rt::open("ZERO.DAT", O_RDWR | O_DIRECT).map_err(|_| "open failed")?;
    let grown = rt::pwrite(d, &[], 8192);
    let size = rt::fstat(d).map(|s| s.size);
    let _ = rt::close(d);
    let _ = rt::unlink("ZERO.DAT");
    for (i, r) in closed.iter().enumerate() {
        if *r != Err(Errno::EBADF) {
            println!("attack-review: 0-byte call {i} on a closed descriptor: {r:?}");
            return Err("a 0-byte read or write on a closed descriptor is not EBADF");
        }
    }
    if grown != Ok(0) || size != Ok(0) {
        println!("attack-review: O_DIRECT pwrite of 0 bytes at 8192: {grown:?}, size {size:?}");
        return Err("a 0-byte write changed the file");
    }
    Ok(())
}

fn mmap_hint() -> Result<(), &'static str> {
    let hint = 0x10_0000_1234;
    match rt::mmap(hint, PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, NO_FD, 0) {
        Ok(a) if a % PAGE == 0 => {
            poke(a, 7);
            rt::munmap(a, PAGE).map_err(|_| "munmap failed")
        }
        other => {
            println!("attack-review: mmap with the hint {hint:#x}: {other:?}");
            Err("an unaligned hint is refused")
        }
    }
}

/// A child that keeps the servers busy until it is killed: faults on `big.dat` (the page
/// cache is four blocks, so most need the disk), `O_DIRECT` reads, shm requests.
fn busy_child(kind: u64) -> i32 {
    let fd = rt::open("big.dat", O_RDONLY).unwrap_or(0);
    let d = rt::open("big.dat", O_RDONLY | O_DIRECT).unwrap_or(0);
    let shm = rt::shm_open("/busy", O_CREAT | O_RDWR, 0o600).unwrap_or(0);
    let m = rt::mmap(0, 16 << 20, PROT_READ, MAP_SHARED, fd, 0).unwrap_or(0);
    let mut buf = [0u8; 4096];
    let mut at = 0u64;
    loop {
        match kind % 3 {
            0 if m != 0 => {
                peek(m + at % (16 << 20));
            }
            1 => {
                let _ = rt::pread(d, &mut buf, at % (16 << 20));
            }
            _ => {
                let _ = rt::ftruncate(shm, at % (1 << 20));
            }
        }
        at += 65536 + 4096;
    }
}

fn kill_mid_request() -> Result<(), &'static str> {
    let files = rt::file::descriptors().map_err(|_| "Descriptors failed")?;
    let before = demos::stats();
    // The rounds run in a child of this task, so that what it holds at the end (private
    // copies of program pages vm made while the busy children evicted blocks) goes with it:
    // after it, every page and descriptor must be back.
    let rounds = match rt::fork() {
        Ok(0) => rt::exit(match kill_rounds() {
            Ok(()) => 0,
            Err(e) => {
                println!("attack-review: {e}");
                1
            }
        }),
        Ok(pid) => rt::wait(pid),
        Err(_) => return Err("fork failed"),
    };
    if !matches!(rounds, Ok((_, WaitStatus::Exited, 0))) {
        return Err("a busy child did not end as killed");
    }
    let _ = rt::shm_unlink("/busy");
    let after_files = demos::settled(&Ok(files), rt::file::descriptors)
        .map_err(|_| "Descriptors failed after")?;
    let after = demos::stats();
    // Every server still answers a normal request.
    let fd = rt::open("hello.txt", O_RDONLY).map_err(|_| "the file server does not answer")?;
    let _ = rt::close(fd);
    let s = rt::shm_open("/after", O_CREAT | O_RDWR, 0o600)
        .map_err(|_| "the shm server does not answer")?;
    let _ = rt::close(s);
    let _ = rt::shm_unlink("/after");
    if after_files != files || after.pages_in_use != before.pages_in_use {
        println!(
            "attack-review: descriptors {files:?} -> {after_files:?}, pages in use {} -> {}",
            before.pages_in_use, after.pages_in_use
        );
        return Err("killed children left descriptors or pages behind");
    }
    Ok(())
}

/// Busy children killed while they wait in the servers, a different way each round.
fn kill_rounds() -> Result<(), &'static str> {
    for round in 0..6u64 {
        let pid = match rt::fork() {
            Ok(0) => rt::exit(busy_child(round)),
            Ok(pid) => pid,
            Err(_) => return Err("fork failed"),
        };
        // Let it get into the servers, a different way each round.
        for _ in 0..(round * 7 + 3) {
            rt::sched_yield();
        }
        rt::kill(pid).map_err(|_| "kill failed")?;
        match rt::wait(pid) {
            Ok((_, WaitStatus::Killed, _)) => {}
            other => {
                println!("attack-review: busy child {pid}: {other:?}");
                return Err("a busy child did not end as killed");
            }
        }
    }
    Ok(())
}

fn cloexec() -> Result<(), &'static str> {
    let r = in_child_expecting(
        || {
            // Only the three descriptors below reach the exec.
            for fd in (3..64).chain(rt::proto::shm::FIRST_FD..rt::proto::shm::FIRST_FD + 64) {
                let _ = rt::close(fd);
            }
            let plain = rt::open("hello.txt", O_RDONLY);
            let cloexec = match rt::open("hello.txt", O_RDONLY | O_CLOEXEC) {
                Ok(fd) => fd,
                Err(e) => {
                    println!("attack-review: open(O_CLOEXEC) = {e}");
                    return 10;
                }
            };
            let shm = rt::shm_open("/cloexec", O_CREAT | O_RDWR, 0o600);
            let _ = rt::shm_unlink("/cloexec");
            if plain.is_err() || shm.is_err() || cloexec == 0 {
                return 11;
            }
            let _ = rt::exec("review-exec");
            12
        },
        1,
    );
    if r.is_err() {
        return Err("after exec, not exactly the plain descriptor is open (want exit 1)");
    }
    Ok(())
}

/// What the secret-holding child writes everywhere.
const SECRET: u64 = 0x5ec2_e75e_c2e7_5ec2;
/// Pages of each kind it fills.
const SECRET_PAGES: u64 = 64;

fn reuse_zeroed() -> Result<(), &'static str> {
    in_child(|| {
        let fill = |m: u64| {
            for o in (0..SECRET_PAGES * PAGE).step_by(8) {
                poke(m + o, SECRET);
            }
        };
        let Ok(m) = rt::mmap(
            0,
            SECRET_PAGES * PAGE,
            RW,
            MAP_PRIVATE | MAP_ANONYMOUS,
            NO_FD,
            0,
        ) else {
            return 1;
        };
        fill(m);
        let Ok(s) = rt::shm_open("/secret", O_CREAT | O_RDWR, 0o600) else {
            return 2;
        };
        let _ = rt::ftruncate(s, SECRET_PAGES * PAGE);
        let Ok(sm) = rt::mmap(0, SECRET_PAGES * PAGE, RW, MAP_SHARED, s, 0) else {
            return 3;
        };
        fill(sm);
        let _ = rt::shm_unlink("/secret");
        let Ok(f) = rt::open("SECRET.DAT", O_CREAT | O_RDWR) else {
            return 4;
        };
        let _ = rt::ftruncate(f, SECRET_PAGES * PAGE);
        let Ok(fm) = rt::mmap(0, SECRET_PAGES * PAGE, RW, MAP_SHARED, f, 0) else {
            return 5;
        };
        fill(fm);
        // The file goes before anything reaches the disk? Its blocks are dropped.
        let _ = rt::unlink("SECRET.DAT");
        0
    })?;
    let zero = |m: u64| {
        (0..SECRET_PAGES * PAGE)
            .step_by(8)
            .all(|o| peek(m + o) == 0)
    };
    let m = rt::mmap(
        0,
        SECRET_PAGES * PAGE,
        RW,
        MAP_PRIVATE | MAP_ANONYMOUS,
        NO_FD,
        0,
    )
    .map_err(|_| "mmap failed")?;
    // Written first, so that real pages (not the zero page) come back.
    for o in (0..SECRET_PAGES * PAGE).step_by(PAGE as usize) {
        poke(m + o + 8, 0);
    }
    let anon = zero(m);
    let _ = rt::munmap(m, SECRET_PAGES * PAGE);
    let s =
        rt::shm_open("/fresh", O_CREAT | O_EXCL | O_RDWR, 0o600).map_err(|_| "shm_open failed")?;
    let _ = rt::shm_unlink("/fresh");
    rt::ftruncate(s, SECRET_PAGES * PAGE).map_err(|_| "ftruncate failed")?;
    let sm = rt::mmap(0, SECRET_PAGES * PAGE, RW, MAP_SHARED, s, 0).map_err(|_| "mmap failed")?;
    let shm = zero(sm);
    let _ = rt::munmap(sm, SECRET_PAGES * PAGE);
    let _ = rt::close(s);
    let f = rt::open("FRESH.DAT", O_CREAT | O_EXCL | O_RDWR).map_err(|_| "create failed")?;
    let _ = rt::unlink("FRESH.DAT");
    rt::ftruncate(f, SECRET_PAGES * PAGE).map_err(|_| "ftruncate failed")?;
    let fm =
        rt::mmap(0, SECRET_PAGES * PAGE, PROT_READ, MAP_SHARED, f, 0).map_err(|_| "mmap failed")?;
    let file = zero(fm);
    let _ = rt::munmap(fm, SECRET_PAGES * PAGE);
    let _ = rt::close(f);
    if !(anon && shm && file) {
        println!("attack-review: zero after reuse: anonymous {anon}, shm {shm}, file {file}");
        return Err("another task's secrets came back");
    }
    Ok(())
}

fn grow_kept() -> Result<(), &'static str> {
    let fd = rt::open("GROWN.DAT", O_CREAT | O_EXCL | O_RDWR).map_err(|_| "create failed")?;
    rt::ftruncate(fd, 10_000).map_err(|_| "ftruncate failed")?;
    rt::close(fd).map_err(|_| "close failed")?;
    // The host reads it back after power-off.
    match rt::stat("GROWN.DAT") {
        Ok(s) if s.size == 10_000 => Ok(()),
        _ => Err("the grown file's size is not 10000"),
    }
}

/// Byte `i` of `OLDBIG.DAT`.
fn old_byte(i: usize) -> u8 {
    (i / 7 % 253) as u8
}

fn unlinked_data() -> Result<(), &'static str> {
    const LEN: usize = 6 * 65536;
    let fd = rt::open("OLDBIG.DAT", O_CREAT | O_EXCL | O_RDWR).map_err(|_| "create failed")?;
    let mut chunk = [0u8; 4096];
    for at in (0..LEN).step_by(chunk.len()) {
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = old_byte(at + i);
        }
        rt::write(fd, &chunk).map_err(|_| "write failed")?;
    }
    let direct = rt::open("OLDBIG.DAT", O_RDONLY | O_DIRECT).map_err(|_| "open failed")?;
    let m = rt::mmap(0, LEN as u64, RW, MAP_SHARED, fd, 0).map_err(|_| "mmap failed")?;
    rt::unlink("OLDBIG.DAT").map_err(|_| "unlink failed")?;
    let new = rt::open("OLDBIG.DAT", O_CREAT | O_EXCL | O_RDWR);
    if let Ok(n) = new {
        let _ = rt::write(n, b"the new one");
        let _ = rt::close(n);
    }
    // Through the mapping, a write the old file must keep.
    poke(m + 8192, 0x0123_4567_89ab_cdef);
    let expect = |at: usize, b: &[u8]| {
        b.iter().enumerate().all(|(i, &x)| {
            let o = at + i;
            let want = if (8192..8200).contains(&o) {
                0x0123_4567_89ab_cdefu64.to_le_bytes()[o - 8192]
            } else {
                old_byte(o)
            };
            x == want
        })
    };
    let mut ok = true;
    for at in (0..LEN).step_by(4096) {
        rt::pread(fd, &mut chunk, at as u64).map_err(|_| "pread failed")?;
        ok &= expect(at, &chunk);
    }
    let mut buf = [0u8; 4096];
    for at in (0..LEN).step_by(4096) {
        rt::lseek(direct, at as i64, Whence::Set).map_err(|_| "lseek failed")?;
        let n = rt::read(direct, &mut buf).map_err(|_| "O_DIRECT read failed")?;
        ok &= n == 4096 && expect(at, &buf);
    }
    let _ = rt::munmap(m, LEN as u64);
    let _ = rt::close(direct);
    let _ = rt::close(fd);
    let now = rt::stat("OLDBIG.DAT").map(|s| s.size);
    let _ = rt::unlink("OLDBIG.DAT");
    if new.is_err() || now != Ok(11) {
        println!("attack-review: new OLDBIG.DAT: {new:?}, its size at the end {now:?}");
        return Err("the name of the unlinked file was not free for a new one");
    }
    if !ok {
        return Err("the unlinked file lost bytes");
    }
    Ok(())
}

/// Flags a POSIX program passes that have no effect here are accepted (`O_NONBLOCK`,
/// `O_NOCTTY`, `O_LARGEFILE`, `O_NOATIME`, `O_NOFOLLOW`); `O_DIRECTORY` of a file is
/// `ENOTDIR`; an `O_SYNC` write reaches the disk before it returns (the file server's
/// write-back counter moves during the `write`).
fn open_flags() -> Result<(), &'static str> {
    let harmless = O_NONBLOCK | O_NOCTTY | O_LARGEFILE | O_NOATIME | O_NOFOLLOW;
    let fd = rt::open("hello.txt", O_RDONLY | harmless).map_err(|_| "harmless flags refused")?;
    let _ = rt::close(fd);
    if rt::open("hello.txt", O_RDONLY | O_DIRECTORY) != Err(Errno::ENOTDIR) {
        return Err("O_DIRECTORY of a file is not ENOTDIR");
    }
    let w = rt::open("OSYNC.DAT", O_CREAT | O_RDWR | O_SYNC).map_err(|_| "O_SYNC refused")?;
    let before = rt::file_stats().map_err(|_| "no file stats")?;
    let wrote = rt::write(w, b"synced");
    let after = rt::file_stats().map_err(|_| "no file stats")?;
    let _ = rt::close(w);
    let _ = rt::unlink("OSYNC.DAT");
    if wrote != Ok(6) || after.written_back <= before.written_back {
        return Err("an O_SYNC write did not reach the disk before it returned");
    }
    Ok(())
}
