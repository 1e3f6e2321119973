//! The servers' limits, tried as a hostile task would: far more descriptors, `O_DIRECT`
//! transfers, shm objects, shared anonymous mappings, regions and children than any server
//! allows. Each must end in the limit's errno, the server must still answer a normal
//! request, and everything must come back once given up. One `PASS`/`FAIL` line per check;
//! exits with the number of failures.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use demos::{Checks, PAGE, prefault, stats};
use libmk::{Cap, Endpoint};
use rt::proto::{Errno, FileRequest, task_slots};
use rt::{MAP_ANONYMOUS, MAP_SHARED, O_CREAT, O_DIRECT, O_EXCL, O_RDONLY, O_RDWR, PROT_READ};
use rt::{PROT_WRITE, WaitStatus, println};

rt::entry!(main);

/// Far more than any limit.
const OPENS: usize = 20_000;
const DIRECT_STAGES: usize = 100;
const SHM_OBJECTS: usize = 5_000;
const SHARED_MAPPINGS: usize = 5_000;
const FILE_MAPPINGS: usize = 10_000;
const REGIONS: u64 = 70_000;
const CHILDREN: usize = 300;

fn main() -> i32 {
    let mut c = Checks::default();
    prefault();
    // The lists below, touched now so that the heap pages they take count at the start.
    let mut fds: Vec<u64> = alloc::vec![0; OPENS];
    fds.clear();
    let mut maps: Vec<u64> = alloc::vec![0; FILE_MAPPINGS];
    maps.clear();
    let mut kids: Vec<u64> = alloc::vec![0; CHILDREN];
    kids.clear();
    // A page shared with the children below: word 0 lets them end, word 1 + i is child
    // i's result.
    let Ok(board) = demos::shared_anon(1, PROT_READ | PROT_WRITE) else {
        c.check("limits-setup", false, "no shared page");
        return c.failures;
    };
    demos::poke(board, 0);
    let s0 = stats();
    let f0 = rt::file::descriptors().map(|d| d.fds).unwrap_or(u64::MAX);
    let m0 = rt::shm::descriptors().map(|d| (d.fds, d.objects));

    // 20,000 opens of one file.
    let mut err = None;
    for _ in 0..OPENS {
        match rt::open("hello.txt", O_RDONLY) {
            Ok(fd) => fds.push(fd),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    println!("limits: {} opens succeeded, then {err:?}", fds.len());
    c.check(
        "limits-open-emfile",
        err == Some(Errno::EMFILE) && fds.len() <= 256,
        "opening without end did not stop with EMFILE at 256 descriptors",
    );
    c.check(
        "limits-open-server-answers",
        rt::stat("hello.txt").is_ok() && rt::open("hello.txt", O_RDONLY) == Err(Errno::EMFILE),
        "the file server does not answer normally at the limit",
    );
    for fd in fds.drain(..) {
        let _ = rt::close(fd);
    }
    let back = rt::file::descriptors().map(|d| d.fds).unwrap_or(0);
    let reopened = rt::open("hello.txt", O_RDONLY).and_then(rt::close).is_ok();
    c.check(
        "limits-open-back",
        back == f0 && reopened,
        "descriptors did not come back after close",
    );

    // O_DIRECT transfers staged and never finished, on 100 descriptors.
    let file: Cap<Endpoint> = Cap::from_cptr(task_slots::FILE);
    let mut staged = 0;
    let mut err = None;
    for _ in 0..DIRECT_STAGES {
        let Ok(fd) = rt::open("big.dat", O_RDONLY | O_DIRECT) else {
            err = Some(Errno::EBADF);
            break;
        };
        fds.push(fd);
        // One message of a 64 KiB read: the server reads it all and keeps the rest.
        let req = FileRequest::Read {
            fd,
            offset: 0,
            len: 64 << 10,
        };
        match rt::ipc::call::<(), _>(file, &req.encode()) {
            Ok(()) => staged += 1,
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    println!("limits: {staged} O_DIRECT transfers staged, then {err:?}");
    c.check(
        "limits-direct-enomem",
        err == Some(Errno::ENOMEM) && staged <= 4,
        "staging O_DIRECT transfers did not stop with ENOMEM",
    );
    let mut buf = [0u8; 16];
    c.check(
        "limits-direct-server-answers",
        rt::open("hello.txt", O_RDONLY)
            .and_then(|fd| {
                let n = rt::pread(fd, &mut buf, 0);
                let _ = rt::close(fd);
                n
            })
            .is_ok_and(|n| n > 0),
        "the file server does not read after the staging limit",
    );
    for fd in fds.drain(..) {
        let _ = rt::close(fd);
    }
    let staged_again = rt::open("big.dat", O_RDONLY | O_DIRECT).and_then(|fd| {
        let r = rt::ipc::call::<(), _>(
            file,
            &FileRequest::Read {
                fd,
                offset: 0,
                len: 64 << 10,
            }
            .encode(),
        );
        let _ = rt::close(fd);
        r
    });
    c.check(
        "limits-direct-back",
        staged_again.is_ok() && rt::file::descriptors().map(|d| d.fds).unwrap_or(0) == f0,
        "O_DIRECT staging or descriptors did not come back after close",
    );

    // The sum over tasks: a parent holding 256 descriptors forks children that each get a
    // copy and stay alive; past 4,096 descriptors in all, fork fails with EAGAIN.
    for _ in 0..256 {
        match rt::open("hello.txt", O_RDONLY) {
            Ok(fd) => fds.push(fd),
            Err(_) => break,
        }
    }
    let mut err = None;
    for _ in 0..40 {
        match rt::fork() {
            Ok(0) => wait_for_release(board),
            Ok(pid) => kids.push(pid),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let all = rt::file::descriptors().map(|d| d.fds).unwrap_or(0);
    println!(
        "limits: {} children with {} descriptors each, {all} in all, then {err:?}",
        kids.len(),
        fds.len()
    );
    c.check(
        "limits-fork-fds-eagain",
        err == Some(Errno::EAGAIN) && fds.len() == 256 && all <= 4096 && kids.len() < 40,
        "forking holders of 256 descriptors did not stop with EAGAIN at 4,096 in all",
    );
    c.check(
        "limits-fork-fds-server-answers",
        rt::stat("hello.txt").is_ok(),
        "the file server does not answer at its global limit",
    );
    demos::poke(board, 1);
    let mut waited = true;
    for pid in kids.drain(..) {
        waited &= rt::wait(pid).is_ok_and(|(_, how, _)| how == WaitStatus::Exited);
    }
    for fd in fds.drain(..) {
        let _ = rt::close(fd);
    }
    demos::poke(board, 0);
    c.check(
        "limits-fork-fds-back",
        waited && rt::file::descriptors().map(|d| d.fds).unwrap_or(0) == f0,
        "the children's descriptors did not come back when they exited",
    );

    // Staged O_DIRECT transfers over all tasks: four children stage four each (their own
    // limit), and stay; the next one anywhere is EAGAIN.
    const STAGERS: u64 = 4;
    for i in 0..STAGERS {
        demos::poke(board + 8 * (1 + i), 0);
        match rt::fork() {
            Ok(0) => {
                let mut n = 0;
                for _ in 0..4 {
                    if stage(file).is_ok() {
                        n += 1;
                    }
                }
                demos::poke(board + 8 * (1 + i), 1 + n);
                wait_for_release(board)
            }
            Ok(pid) => kids.push(pid),
            Err(_) => break,
        }
    }
    while (0..STAGERS).any(|i| demos::peek(board + 8 * (1 + i)) == 0) {
        rt::sched_yield();
    }
    let each: Vec<u64> = (0..STAGERS)
        .map(|i| demos::peek(board + 8 * (1 + i)) - 1)
        .collect();
    let mine = stage(file).and_then(rt::close);
    println!("limits: children staged {each:?} O_DIRECT transfers, then this task: {mine:?}");
    c.check(
        "limits-direct-global-eagain",
        kids.len() == STAGERS as usize
            && each.iter().all(|&n| n == 4)
            && mine.err() == Some(Errno::EAGAIN),
        "16 staged transfers in all did not make the next one EAGAIN",
    );
    demos::poke(board, 1);
    for pid in kids.drain(..) {
        let _ = rt::wait(pid);
    }
    demos::poke(board, 0);
    c.check(
        "limits-direct-global-back",
        stage(file).and_then(rt::close).is_ok()
            && rt::file::descriptors().map(|d| d.fds).unwrap_or(0) == f0,
        "staging did not work again after the children ended",
    );

    // 10,000 mappings of one file (one handle each in the file server).
    let mut err = None;
    if let Ok(fd) = rt::open("hello.txt", O_RDONLY) {
        fds.push(fd);
        for _ in 0..FILE_MAPPINGS {
            match rt::mmap(0, PAGE, PROT_READ, MAP_SHARED, fd, 0) {
                Ok(a) => maps.push(a),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
    }
    println!("limits: {} mappings of one file, then {err:?}", maps.len());
    c.check(
        "limits-file-mappings-enomem",
        err == Some(Errno::ENOMEM) && maps.len() <= 2048,
        "mapping one file without end did not stop with ENOMEM at 2,048 mappings",
    );
    let mut unmapped = true;
    for a in maps.drain(..) {
        unmapped &= rt::munmap(a, PAGE).is_ok();
    }
    let again =
        rt::mmap(0, PAGE, PROT_READ, MAP_SHARED, fds[0], 0).and_then(|a| rt::munmap(a, PAGE));
    for fd in fds.drain(..) {
        let _ = rt::close(fd);
    }
    c.check(
        "limits-file-mappings-back",
        unmapped && again.is_ok() && rt::file::descriptors().map(|d| d.fds).unwrap_or(0) == f0,
        "file mappings did not come back after munmap",
    );

    // 5,000 named shm objects.
    let mut made = 0;
    let mut err = None;
    for i in 0..SHM_OBJECTS {
        let name = alloc::format!("/lim{i}");
        match rt::shm_open(&name, O_CREAT | O_EXCL | O_RDWR, 0o600) {
            Ok(fd) => {
                made += 1;
                let _ = rt::close(fd);
            }
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    println!("limits: {made} shm objects made, then {err:?}");
    c.check(
        "limits-shm-objects-enospc",
        err == Some(Errno::ENOSPC) && made <= 1024,
        "creating shm objects without end did not stop with ENOSPC",
    );
    let mut unlinked = true;
    for i in 0..made {
        unlinked &= rt::shm_unlink(&alloc::format!("/lim{i}")).is_ok();
    }
    let again = rt::shm_open("/lim-again", O_CREAT | O_EXCL | O_RDWR, 0o600)
        .and_then(rt::close)
        .and_then(|()| rt::shm_unlink("/lim-again"));
    c.check(
        "limits-shm-objects-back",
        unlinked && again.is_ok() && rt::shm::descriptors().map(|d| (d.fds, d.objects)) == m0,
        "shm objects did not come back after unlink",
    );

    // 5,000 tiny shared anonymous mappings (each an object of the shm server).
    let mut err = None;
    for _ in 0..SHARED_MAPPINGS {
        match rt::mmap(
            0,
            PAGE,
            PROT_READ | PROT_WRITE,
            MAP_SHARED | MAP_ANONYMOUS,
            u64::MAX,
            0,
        ) {
            Ok(a) => maps.push(a),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    println!("limits: {} shared mappings made, then {err:?}", maps.len());
    c.check(
        "limits-shared-anon-enomem",
        err == Some(Errno::ENOMEM) && maps.len() <= 1024,
        "shared anonymous mappings without end did not stop with ENOMEM",
    );
    let mut unmapped = true;
    for a in maps.drain(..) {
        unmapped &= rt::munmap(a, PAGE).is_ok();
    }
    let again = demos::shared_anon(1, PROT_READ | PROT_WRITE).and_then(|a| rt::munmap(a, PAGE));
    c.check(
        "limits-shared-anon-back",
        unmapped && again.is_ok() && rt::shm::descriptors().map(|d| (d.fds, d.objects)) == m0,
        "shared anonymous objects did not come back after munmap",
    );

    // 70,000 regions by alternating protections over one mapping.
    let len = REGIONS * PAGE;
    let regions = demos::anon(REGIONS, PROT_READ | PROT_WRITE);
    let mut changed = 0;
    let mut err = None;
    if let Ok(a) = regions {
        for i in (1..REGIONS).step_by(2) {
            match rt::mprotect(a + i * PAGE, PAGE, PROT_READ) {
                Ok(()) => changed += 1,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
    }
    println!("limits: {changed} pages made read-only one by one, then {err:?}");
    c.check(
        "limits-regions-enomem",
        err == Some(Errno::ENOMEM) && changed < REGIONS / 2,
        "alternating mprotect did not stop with ENOMEM",
    );
    c.check(
        "limits-regions-server-answers",
        rt::vm_stats().is_ok(),
        "vm does not answer at the region limit",
    );
    let merged = regions.and_then(|a| {
        rt::mprotect(a, len, PROT_READ | PROT_WRITE)?;
        let b = demos::anon(1, PROT_READ)?;
        rt::munmap(b, PAGE)?;
        rt::munmap(a, len)
    });
    if let Err(e) = merged {
        println!("limits: after the region limit: {e}");
    }
    c.check(
        "limits-regions-back",
        merged.is_ok(),
        "regions did not merge back, or vm refused a new mapping after",
    );

    // Children that end at once and are not waited for (they stay zombies).
    let mut err = None;
    for _ in 0..CHILDREN {
        match rt::fork() {
            Ok(0) => rt::exit(0),
            Ok(pid) => kids.push(pid),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    println!("limits: {} children forked, then {err:?}", kids.len());
    // EAGAIN at the limit of 128 children; a small machine may run out of memory for the
    // children's objects first (ENOMEM, as Linux's fork), but never hangs or crashes.
    let stopped = match err {
        Some(Errno::EAGAIN) => kids.len() == 128,
        Some(Errno::ENOMEM) => kids.len() < 128,
        _ => false,
    };
    c.check(
        "limits-children-eagain",
        stopped,
        "forking without end did not stop with EAGAIN at 128 children (or ENOMEM before)",
    );
    let mut waited = true;
    for pid in kids.drain(..) {
        waited &= rt::wait(pid).is_ok();
    }
    let again = match rt::fork() {
        Ok(0) => rt::exit(7),
        Ok(pid) => rt::wait(pid).is_ok_and(|(_, _, status)| status == 7),
        Err(_) => false,
    };
    c.check(
        "limits-children-back",
        waited && again,
        "children could not be waited for, or no fork worked after",
    );

    let _ = rt::munmap(board, PAGE);
    let s1 = stats();
    println!(
        "limits: pages in use {} -> {}, file descriptors {f0} -> {:?}, shm {m0:?} -> {:?}",
        s0.pages_in_use,
        s1.pages_in_use,
        rt::file::descriptors().map(|d| d.fds),
        rt::shm::descriptors().map(|d| (d.fds, d.objects))
    );
    c.check(
        "limits-all-back",
        s1.pages_in_use == s0.pages_in_use
            && rt::file::descriptors().map(|d| d.fds).unwrap_or(0) == f0
            && rt::shm::descriptors().map(|d| (d.fds, d.objects + 1)) == m0,
        "pages, descriptors or objects were not all given back",
    );
    println!("limits: {} failures", c.failures);
    c.failures
}

/// A child's end: it keeps what it holds until the parent writes 1 into word 0 of `board`.
fn wait_for_release(board: u64) -> ! {
    while demos::peek(board) == 0 {
        rt::sched_yield();
    }
    rt::exit(0)
}

/// Opens `big.dat` with `O_DIRECT` and stages a 64 KiB read on it (one message of it, the
/// rest kept by the server) → the descriptor, left open (it goes with the task).
fn stage(file: Cap<Endpoint>) -> Result<u64, Errno> {
    let fd = rt::open("big.dat", O_RDONLY | O_DIRECT)?;
    let req = FileRequest::Read {
        fd,
        offset: 0,
        len: 64 << 10,
    };
    match rt::ipc::call::<(), _>(file, &req.encode()) {
        Ok(()) => Ok(fd),
        Err(e) => {
            let _ = rt::close(fd);
            Err(e)
        }
    }
}
