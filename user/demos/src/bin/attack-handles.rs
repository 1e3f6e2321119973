//! An attacker against memory-object handles (issue 8, defects 2 and 3, and the leak of a
//! failed `mmap`), written as a hostile task would: it speaks the protocol raw
//! (`GetObject` to the file and shm servers, `MmapObject` to vm) with numbers it makes up.
//!
//! A victim (a fork child) holds secrets: a `MAP_SHARED | MAP_ANONYMOUS` page, a mode-0400
//! shm object it created, a file it maps shared and writable, and one handle it got and did
//! not map yet (it tells the attacker its number). The attacker then
//! - maps handle numbers it never got (0..48 of each pager, and the victim's) — every one
//!   must fail with `EBADF`/`EACCES`, and nothing it could map may show or change a secret
//!   (a forked prober reads what a forged mapping holds and marks it);
//! - maps its own read-only handles (a shm object and a file opened `O_RDONLY`) shared and
//!   writable, raw, and makes read-only shared mappings writable with `mprotect`: `EACCES`,
//!   and the object and the file keep their bytes;
//! - maps an `O_WRONLY` descriptor: `EACCES` (a mapping reads);
//! - makes `mmap`s fail after `GetObject` (misaligned and invalid `MAP_FIXED` addresses,
//!   bad flags): the shm object and the file are freed as if never mapped (the servers'
//!   `Descriptors` counts come back, an unlinked file's unlink completes);
//! - hoards handles it never maps: the server stops it (`EMFILE`), and its exit frees them.
//!
//! One `PASS`/`FAIL` line per check; exits with the number of failures. Runs with a disk
//! copy of its own (`attack-handles`): the tools check `HSECRET.DAT` afterwards.
#![no_std]
#![no_main]

use demos::{Checks, PAGE, peek, poke};
use libmk::{Cap, Endpoint};
use rt::proto::object::{MmapObject, Pager};
use rt::proto::{DescriptorCount, ServerControl, task_slots};
use rt::{
    Errno, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC,
    O_WRONLY, PROT_READ, PROT_WRITE, WaitStatus, println,
};

rt::entry!(main);

const RW: u64 = PROT_READ | PROT_WRITE;
/// Word `i` of each secret page.
const SECRET_ANON: u64 = 0x5ec2_e7a0_0000_0000;
const SECRET_SHM: u64 = 0x5ec2_e75b_0000_0000;
const SECRET_FILE: u64 = 0x5ec2_e7f1_0000_0000;
/// What the attacker writes where it gets a secret.
const MARK: u64 = 0xbad0_bad0_bad0_bad0;
/// The file the victim maps, and the shm object.
const FILE: &str = "HSECRET.DAT";
const SHM: &str = "/hsecret";
/// Handle numbers the attacker tries for each pager.
const FORGED: u64 = 48;

const VM: Cap<Endpoint> = Cap::from_cptr(task_slots::VM);
const SHM_EP: Cap<Endpoint> = Cap::from_cptr(task_slots::SHM);

/// The channel with the victim (a shared anonymous page mapped before the fork): words.
const READY: u64 = 0;
const VICTIM_HANDLE: u64 = 8;
const ATTACK_DONE: u64 = 16;
const VERDICT: u64 = 24;

/// `MmapObject` as a hostile task sends it: any pager, any handle.
fn raw_mmap(pager: Pager, handle: u64, prot: u64, flags: u64) -> Result<u64, Errno> {
    let req = MmapObject {
        addr: 0,
        len: PAGE,
        prot,
        flags,
        pager,
        handle,
        offset: 0,
    };
    rt::ipc::call(VM, &req.encode())
}

/// `GetObject` raw: a handle this task holds and has not had mapped.
fn raw_get_object(fd: u64, writable: bool) -> Result<u64, Errno> {
    rt::shm::object_of(fd, writable).map(|(_, h, _)| h)
}

/// A call's result as C shows it: `0`, or `-1 (ERRNO)`.
struct Ret(Result<(), Errno>);

impl core::fmt::Display for Ret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Ok(()) => write!(f, "0"),
            Err(e) => write!(f, "-1 ({e})"),
        }
    }
}

fn shm_counts() -> Result<DescriptorCount, Errno> {
    rt::ipc::call(SHM_EP, &ServerControl::Descriptors.encode())
}

fn file_counts() -> Result<DescriptorCount, Errno> {
    rt::file::descriptors()
}

fn fill(a: u64, secret: u64) {
    for i in 0..PAGE / 8 {
        poke(a + i * 8, secret + i);
    }
}

fn holds(a: u64, secret: u64) -> bool {
    (0..PAGE / 8).all(|i| peek(a + i * 8) == secret + i)
}

/// Only reached on a system that let a forged or read-only mapping be made: what it shows,
/// looked at by a forked child (a mapping of a dead handle kills it with BUS). The child
/// marks a secret it finds (and writes it back), as an attacker would.
fn probe(a: u64) -> bool {
    match rt::fork() {
        Ok(0) => {
            let w = peek(a);
            if [SECRET_ANON, SECRET_SHM, SECRET_FILE].contains(&w) {
                poke(a, MARK);
                let _ = rt::msync(a, PAGE);
                rt::exit(0);
            }
            rt::exit(1);
        }
        Ok(child) => matches!(rt::wait(child), Ok((_, WaitStatus::Exited, 0))),
        Err(_) => false,
    }
}

/// Tries every number in `numbers` as a handle of `pager`, shared and writable, then
/// private; each must fail with `EBADF` or `EACCES`.
fn forge(pager: Pager, numbers: impl Iterator<Item = u64>) -> Result<(), &'static str> {
    let (mut mapped, mut saw, mut odd) = (0, 0, 0);
    for h in numbers {
        for (prot, flags) in [(RW, MAP_SHARED), (PROT_READ, MAP_PRIVATE)] {
            match raw_mmap(pager, h, prot, flags) {
                Ok(a) => {
                    mapped += 1;
                    if probe(a) {
                        saw += 1;
                    }
                    let _ = rt::munmap(a, PAGE);
                }
                Err(Errno::EBADF | Errno::EACCES) => {}
                Err(_) => odd += 1,
            }
        }
    }
    println!(
        "attack-handles: {pager:?} pager: {mapped} mappings of forged handles made, {saw} showed a secret, {odd} other errors"
    );
    match (mapped, odd) {
        (0, 0) => Ok(()),
        (0, _) => Err("a forged handle gave an error other than EBADF/EACCES"),
        _ if saw > 0 => Err("a forged handle mapped another task's secret"),
        _ => Err("a forged handle was mapped"),
    }
}

/// The victim: its secrets mapped, one handle got and not mapped; waits for the attack,
/// then reports whether its secrets are intact.
fn victim(chan: u64) -> ! {
    let ok = (|| -> Result<bool, Errno> {
        let anon = demos::shared_anon(1, RW)?;
        fill(anon, SECRET_ANON);
        let sfd = rt::shm_open(SHM, O_CREAT | O_EXCL | O_RDWR, 0o400)?;
        rt::ftruncate(sfd, PAGE)?;
        let shm = rt::mmap(0, PAGE, RW, MAP_SHARED, sfd, 0)?;
        fill(shm, SECRET_SHM);
        let ffd = rt::open(FILE, O_RDWR)?;
        let file = rt::mmap(0, PAGE, RW, MAP_SHARED, ffd, 0)?;
        let spare = raw_get_object(ffd, true)?;
        poke(chan + VICTIM_HANDLE, spare);
        poke(chan + READY, 1);
        while peek(chan + ATTACK_DONE) == 0 {
            rt::sched_yield();
        }
        Ok(holds(anon, SECRET_ANON) && holds(shm, SECRET_SHM) && holds(file, SECRET_FILE))
    })();
    poke(chan + VERDICT, if ok == Ok(true) { 1 } else { 2 });
    rt::exit(0)
}

fn main() -> i32 {
    let mut c = Checks::default();
    println!("attack-handles: a task forges memory-object handles and rights");

    // The victim's file: one page of secret words.
    let setup = (|| -> Result<(), Errno> {
        let fd = rt::open(FILE, O_CREAT | O_TRUNC | O_RDWR)?;
        let mut page = [0u8; PAGE as usize];
        for (i, w) in page.chunks_exact_mut(8).enumerate() {
            w.copy_from_slice(&(SECRET_FILE + i as u64).to_le_bytes());
        }
        for (i, part) in page.chunks(512).enumerate() {
            rt::pwrite(fd, part, i as u64 * 512)?;
        }
        rt::close(fd)
    })();
    let chan = demos::shared_anon(1, RW);
    let (Ok(()), Ok(chan)) = (setup, chan) else {
        c.check(
            "handles-setup",
            false,
            "cannot make the victim's file or channel",
        );
        return c.failures;
    };
    let victim_pid = match rt::fork() {
        Ok(0) => victim(chan),
        Ok(pid) => pid,
        Err(_) => {
            c.check("handles-setup", false, "fork failed");
            return c.failures;
        }
    };
    while peek(chan + READY) == 0 {
        rt::sched_yield();
    }
    let spare = peek(chan + VICTIM_HANDLE);
    println!("attack-handles: the victim (pid {victim_pid}) holds file handle {spare}, unmapped");

    c.run("handles-forged-shm", || forge(Pager::Shm, 0..FORGED));
    c.run("handles-forged-file", || {
        forge(Pager::File, core::iter::once(spare).chain(0..FORGED))
    });
    poke(chan + READY, 0);
    poke(chan + ATTACK_DONE, 1);
    let waited = rt::wait(victim_pid);
    c.run("handles-victim-intact", || {
        match (waited, peek(chan + VERDICT)) {
            (Ok((_, WaitStatus::Exited, 0)), 1) => Ok(()),
            (Ok((_, WaitStatus::Exited, 0)), _) => Err("the victim's secrets changed"),
            _ => Err("the victim did not exit normally"),
        }
    });

    c.run("handles-readonly-shm", || {
        let fd = rt::shm_open(SHM, O_RDONLY, 0).map_err(|_| "shm_open read-only failed")?;
        // Our own read-only handle, mapped shared and writable behind the runtime's back.
        let h = raw_get_object(fd, false).map_err(|_| "GetObject failed")?;
        let raw = raw_mmap(Pager::Shm, h, RW, MAP_SHARED);
        if let Ok(a) = raw {
            poke(a, MARK);
        }
        // A read-only shared mapping made writable.
        let a = rt::mmap(0, PAGE, PROT_READ, MAP_SHARED, fd, 0).map_err(|_| "mmap failed")?;
        let prot = rt::mprotect(a, PAGE, RW);
        if prot.is_ok() {
            poke(a + 8, MARK);
        }
        // Private mappings may be written: copies, the object keeps its bytes.
        let p = rt::mmap(0, PAGE, PROT_READ, MAP_PRIVATE, fd, 0).map_err(|_| "mmap failed")?;
        let private = rt::mprotect(p, PAGE, RW);
        if private.is_ok() {
            poke(p + 16, MARK);
        }
        let fresh = rt::mmap(0, PAGE, PROT_READ, MAP_SHARED, fd, 0).map_err(|_| "mmap failed")?;
        let intact = holds(fresh, SECRET_SHM);
        for m in [a, p, fresh] {
            let _ = rt::munmap(m, PAGE);
        }
        if let Ok(r) = raw {
            let _ = rt::munmap(r, PAGE);
        }
        let _ = rt::close(fd);
        println!(
            "attack-handles: read-only shm: raw writable mapping {}, mprotect {}, private mprotect {}",
            demos::Mapped(raw),
            Ret(prot),
            Ret(private)
        );
        match (raw, prot, private, intact) {
            (Ok(_), ..) => Err("a read-only handle was mapped shared and writable"),
            (Err(e), ..) if e != Errno::EACCES => Err("the raw writable mapping is not EACCES"),
            (_, Err(Errno::EACCES), Ok(()), true) => Ok(()),
            (_, Ok(()), ..) => Err("mprotect made a read-only shared mapping writable"),
            (_, Err(_), Ok(()), _) => Err("mprotect is not EACCES"),
            (_, _, Err(_), _) => Err("mprotect of a private mapping failed"),
        }
    });

    c.run("handles-readonly-file", || {
        let fd = rt::open(FILE, O_RDONLY).map_err(|_| "open read-only failed")?;
        let h = raw_get_object(fd, false).map_err(|_| "GetObject failed")?;
        let raw = raw_mmap(Pager::File, h, RW, MAP_SHARED);
        if let Ok(a) = raw {
            poke(a, MARK);
            let _ = rt::msync(a, PAGE);
        }
        let a = rt::mmap(0, PAGE, PROT_READ, MAP_SHARED, fd, 0).map_err(|_| "mmap failed")?;
        let prot = rt::mprotect(a, PAGE, RW);
        if prot.is_ok() {
            poke(a + 8, MARK);
            let _ = rt::msync(a, PAGE);
        }
        let p = rt::mmap(0, PAGE, PROT_READ, MAP_PRIVATE, fd, 0).map_err(|_| "mmap failed")?;
        let private = rt::mprotect(p, PAGE, RW);
        if private.is_ok() {
            poke(p + 16, MARK);
        }
        for m in [a, p] {
            let _ = rt::munmap(m, PAGE);
        }
        if let Ok(r) = raw {
            let _ = rt::munmap(r, PAGE);
        }
        let mut words = [0u8; 24];
        rt::pread(fd, &mut words, 0).map_err(|_| "pread failed")?;
        let _ = rt::close(fd);
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&words[i * 8..i * 8 + 8]);
            u64::from_le_bytes(b)
        };
        let intact = (0..3).all(|i| word(i) == SECRET_FILE + i as u64);
        println!(
            "attack-handles: file opened O_RDONLY: raw writable mapping {}, mprotect {}, private mprotect {}, first word {:#x}",
            demos::Mapped(raw),
            Ret(prot),
            Ret(private),
            word(0)
        );
        match (raw, prot, private, intact) {
            (Ok(_), ..) => Err("a read-only handle was mapped shared and writable"),
            (Err(e), ..) if e != Errno::EACCES => Err("the raw writable mapping is not EACCES"),
            (_, Err(Errno::EACCES), Ok(()), true) => Ok(()),
            (_, Ok(()), ..) => Err("mprotect made a read-only shared mapping writable"),
            (_, Err(_), Ok(()), true) => Err("mprotect is not EACCES"),
            (_, _, Err(_), _) => Err("mprotect of a private mapping failed"),
            (.., false) => Err("the file changed"),
        }
    });

    c.run("handles-mmap-wronly", || {
        let fd = rt::open("HWRONLY.DAT", O_CREAT | O_TRUNC | O_WRONLY)
            .map_err(|_| "open O_WRONLY failed")?;
        rt::pwrite(fd, &[7u8; 100], 0).map_err(|_| "pwrite failed")?;
        let shared = rt::mmap(0, PAGE, PROT_READ, MAP_SHARED, fd, 0);
        let private = rt::mmap(0, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
        let raw = raw_get_object(fd, false);
        for m in [shared, private].into_iter().flatten() {
            let _ = rt::munmap(m, PAGE);
        }
        let _ = rt::close(fd);
        let _ = rt::unlink("HWRONLY.DAT");
        println!(
            "attack-handles: O_WRONLY: mmap shared {}, private {}",
            demos::Mapped(shared),
            demos::Mapped(private)
        );
        match (shared, private, raw) {
            (Err(Errno::EACCES), Err(Errno::EACCES), Err(Errno::EACCES)) => Ok(()),
            _ => Err("a write-only descriptor was mapped (or not EACCES)"),
        }
    });

    // Mappings that fail once the descriptor's owner gave a handle: at the placement
    // (misaligned, and below user space, under MAP_FIXED), and before vm claims it (flags
    // with both MAP_SHARED and MAP_PRIVATE).
    let failing: [(u64, u64); 3] = [
        (0x10_0000_0123, MAP_SHARED | MAP_FIXED),
        (0x1000, MAP_SHARED | MAP_FIXED),
        (0, MAP_SHARED | MAP_PRIVATE),
    ];

    c.run("handles-failed-mmap-shm", || {
        let before = shm_counts().map_err(|_| "shm Descriptors failed")?;
        let fd = rt::shm_open("/hleak", O_CREAT | O_EXCL | O_RDWR, 0o600)
            .map_err(|_| "shm_open failed")?;
        rt::ftruncate(fd, PAGE).map_err(|_| "ftruncate failed")?;
        rt::shm_unlink("/hleak").map_err(|_| "shm_unlink failed")?;
        let all_einval = failing
            .iter()
            .all(|&(addr, flags)| rt::mmap(addr, PAGE, RW, flags, fd, 0) == Err(Errno::EINVAL));
        rt::close(fd).map_err(|_| "close failed")?;
        let after = shm_counts().map_err(|_| "shm Descriptors failed")?;
        println!(
            "attack-handles: shm objects {} before, {} after three failed mmaps of an unlinked object",
            before.objects, after.objects
        );
        if !all_einval {
            return Err("a failing mmap did not fail with EINVAL");
        }
        if (after.fds, after.objects) != (before.fds, before.objects) {
            return Err("the object outlived its name, descriptor and every mapping");
        }
        Ok(())
    });

    c.run("handles-failed-mmap-file", || {
        let before = file_counts().map_err(|_| "Descriptors failed")?;
        let fd = rt::open("HLEAK.DAT", O_CREAT | O_TRUNC | O_RDWR).map_err(|_| "open failed")?;
        rt::pwrite(fd, &[1u8; 300], 0).map_err(|_| "pwrite failed")?;
        let all_einval = failing
            .iter()
            .all(|&(addr, flags)| rt::mmap(addr, PAGE, RW, flags, fd, 0) == Err(Errno::EINVAL));
        rt::unlink("HLEAK.DAT").map_err(|_| "unlink failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        let gone = rt::stat("HLEAK.DAT");
        let after = file_counts().map_err(|_| "Descriptors failed")?;
        println!(
            "attack-handles: files held {} before, {} after; stat of the unlinked file: {}",
            before.objects,
            after.objects,
            match gone {
                Ok(_) => "still there",
                Err(Errno::ENOENT) => "ENOENT",
                Err(_) => "another error",
            }
        );
        if !all_einval {
            return Err("a failing mmap did not fail with EINVAL");
        }
        if gone.err() != Some(Errno::ENOENT) {
            return Err("the unlink never completed: the file stays mapped");
        }
        if (after.fds, after.objects) != (before.fds, before.objects) {
            return Err("the file server still holds the file");
        }
        Ok(())
    });

    c.run("handles-hoard", || {
        let before = file_counts().map_err(|_| "Descriptors failed")?;
        let shm_before = shm_counts().map_err(|_| "shm Descriptors failed")?;
        // A child takes handles and never maps them: the servers stop it, its exit frees
        // them. Exit status: handles granted, + 100 if the file server said EMFILE, + 1000
        // if the shm server did.
        let child = rt::fork().map_err(|_| "fork failed")?;
        if child == 0 {
            let mut status = 0;
            if let Ok(fd) = rt::open(FILE, O_RDONLY) {
                for _ in 0..40 {
                    match raw_get_object(fd, false) {
                        Ok(_) => status += 1,
                        Err(Errno::EMFILE) => {
                            status += 100;
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
            if let Ok(fd) = rt::shm_open(SHM, O_RDONLY, 0) {
                for _ in 0..40 {
                    match raw_get_object(fd, false) {
                        Ok(_) => {}
                        Err(Errno::EMFILE) => {
                            status += 1000;
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
            rt::exit(status);
        }
        let status = match rt::wait(child) {
            Ok((_, WaitStatus::Exited, s)) => s,
            _ => return Err("the hoarding child did not exit"),
        };
        let after = file_counts().map_err(|_| "Descriptors failed")?;
        let shm_after = shm_counts().map_err(|_| "shm Descriptors failed")?;
        println!(
            "attack-handles: a task got {} file handles, then {}; files held {} before, {} after",
            status % 100,
            if status % 1000 >= 100 {
                "EMFILE"
            } else {
                "no limit"
            },
            before.objects,
            after.objects
        );
        if status % 1000 < 100 || status < 1000 {
            return Err("no limit on handles a task never maps");
        }
        if (after.fds, after.objects) != (before.fds, before.objects)
            || (shm_after.fds, shm_after.objects) != (shm_before.fds, shm_before.objects)
        {
            return Err("the hoarder's handles outlived it");
        }
        Ok(())
    });

    let _ = rt::shm_unlink(SHM);
    println!("attack-handles: {} failures", c.failures);
    c.failures
}
