//! The server fuzzer: hostile tasks send 100,000 random and half-valid requests to vm, the
//! file server, the shm server and init (zero is reached through vm's faults), with garbage
//! lengths, garbage in the IPC buffer and capabilities attached; then the checks that every
//! server still answers and that every page, descriptor and object came back.
//!
//! The requests come from disposable children (a request may end the child that sends it:
//! an `munmap` of its own stack is a `SEGV`); the parent starts children until the total is
//! reached and counts what they sent in a shared page. Nothing is asserted about a single
//! answer, only that one comes (a server that never answers hangs the boot, and the harness
//! fails it on its timeout) and that the system is whole afterwards.
#![no_std]
#![no_main]

use abi::message::{MAX_MRS, MsgInfo, REGISTER_MRS};
use demos::{Checks, PAGE, anon, peek, poke, shared_anon, stats};
use libmk::{Cap, Endpoint, Message};
use rt::proto::file::{AT_POSITION, Path, Whence, open_flags};
use rt::proto::object::{GetObject, MmapObject, Msync, Pager};
use rt::proto::{
    DescriptorCount, Errno, FileRequest, Name, ServerControl, ShmRequest, VmRequest, Wire,
    task_slots,
};
use rt::{
    MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, NO_FD, O_CREAT, O_RDONLY, O_RDWR, PROT_READ,
    PROT_WRITE, println,
};

rt::entry!(main);

/// Requests in all, and at most per child.
const TOTAL: u64 = 100_000;
const PER_CHILD: u64 = 5_000;
/// Where a child's mappings go when a request names an address "validly".
const ARENA: u64 = 0x0000_0008_0000_0000;
const ARENA_PAGES: u64 = 64;

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Vm,
    File,
    Shm,
    Proc,
}

impl Target {
    fn cap(self) -> Cap<Endpoint> {
        Cap::from_cptr(match self {
            Target::Vm => task_slots::VM,
            Target::File => task_slots::FILE,
            Target::Shm => task_slots::SHM,
            Target::Proc => task_slots::PROC,
        })
    }

    /// The labels the server knows (and some it must refuse from a task).
    fn labels(self) -> &'static [u64] {
        match self {
            // Tasks' requests, init's control requests, forged fault labels, and the
            // memory-object labels of other servers.
            Target::Vm => &[
                100, 101, 102, 104, 105, 106, 200, 201, 202, 203, 204, 205, 206, 207, 208, 209, 1,
                2, 3, 4, 5, 600, 604,
            ],
            Target::File => &[
                500, 501, 502, 503, 504, 505, 506, 507, 508, 509, 540, 541, 542, 543, 600, 601,
                602, 603, 604, 605, 606, 800, 801, 802, 803, 804,
            ],
            Target::Shm => &[
                700, 701, 702, 703, 704, 705, 600, 601, 602, 603, 604, 605, 606, 800, 801, 802,
                803, 804,
            ],
            // Not Fork, Exec or Exit (they would replace or end the fuzzer itself).
            Target::Proc => &[400, 404, 405, 406, 100, 500],
        }
    }
}

/// A word a server might take for something meaningful, or garbage.
fn interesting(rng: &mut Rng, pid: u64) -> u64 {
    match rng.below(16) {
        0 => 0,
        1 => rng.below(16),
        2 => 3 + rng.below(8),
        3 => 65_536 + rng.below(8),
        4 => ARENA + rng.below(ARENA_PAGES) * PAGE,
        5 => ARENA + rng.below(ARENA_PAGES * PAGE),
        6 => u64::MAX - rng.below(4),
        7 => 1 << rng.below(64),
        8 => (1 << rng.below(64)) - 1,
        9 => rng.below(64) * PAGE,
        10 => rng.below(16) * 64 * 1024,
        11 => pid + rng.below(4),
        12 => rng.pick(&[1, 2, 3, 4, 5]),
        13 => i64::MIN as u64,
        _ => rng.next(),
    }
}

/// A name the fuzzer owns (or a directory, or a missing one) packed as the protocols carry
/// names, or garbage; true for a known name. shm objects are created only under known names
/// (named objects outlive their creator, and the checks below unlink exactly these).
fn name_words(rng: &mut Rng, out: &mut [u64]) -> bool {
    let names: [&[u8]; 7] = [
        b"FZ0.DAT", b"FZ1.DAT", b"FZ2.DAT", b"/fz0", b"/fz1", b"bin", b"nosuch",
    ];
    if rng.chance(4) {
        for m in out.iter_mut() {
            *m = rng.next();
        }
        return false;
    }
    let name = rng.pick(&names);
    for (i, m) in out.iter_mut().enumerate() {
        let mut w = [0u8; 8];
        for (j, b) in w.iter_mut().enumerate() {
            *b = name.get(i * 8 + j).copied().unwrap_or(0);
        }
        *m = u64::from_le_bytes(w);
    }
    true
}

/// Lays out a path or name request as the protocol has it: file `Open` = flags, path (five
/// words); `Stat`, `Unlink` = path; shm `Open` = flags, mode, name (two words); shm
/// `Unlink` = name. Without a known name, shm's `O_CREAT` is dropped.
fn path_request(rng: &mut Rng, label: u64, mrs: &mut [u64]) {
    let flags = {
        let garbage = rng.next();
        rng.pick(&[O_RDONLY, O_RDWR, O_RDWR | O_CREAT, 0o1101, garbage])
    };
    match label {
        500 => {
            mrs[0] = flags;
            name_words(rng, &mut mrs[1..6]);
        }
        503 | 508 => {
            name_words(rng, &mut mrs[..5]);
        }
        700 => {
            let known = name_words(rng, &mut mrs[2..4]);
            mrs[0] = if known { flags } else { flags & !O_CREAT };
            mrs[1] = rng.pick(&[0o600, 0o400, 0]);
        }
        _ => {
            name_words(rng, &mut mrs[..2]);
        }
    }
}

/// Sends one random request; true if the server answered with an error.
fn one(rng: &mut Rng, pid: u64) -> bool {
    let target = rng.pick(&[
        Target::Vm,
        Target::Vm,
        Target::File,
        Target::File,
        Target::Shm,
        Target::Shm,
        Target::Proc,
    ]);
    let label = match rng.below(16) {
        0 => rng.below(1024),
        1 => rng.next() & abi::message::MAX_LABEL,
        2 => rng.pick(Target::Vm.labels()),
        _ => rng.pick(target.labels()),
    };
    let mut mrs = [0u64; MAX_MRS];
    for m in &mut mrs {
        *m = interesting(rng, pid);
    }
    if matches!(label, 500 | 503 | 508 | 700 | 703) && rng.chance(2) {
        path_request(rng, label, &mut mrs);
    } else if label == 700 {
        // No shm object under a garbage name.
        mrs[0] &= !O_CREAT;
    }
    // Pipes never block (the child would wait for ever on a pipe it holds both ends of).
    if label == 540 {
        mrs[0] = open_flags::NONBLOCK | (mrs[0] & open_flags::CLOEXEC);
    }
    // vm's address arguments land in the arena fifteen times in sixteen (elsewhere they may
    // unmap the fuzzer's own code, which ends this child early).
    if target == Target::Vm && matches!(label, 100..=102) && !rng.chance(16) {
        mrs[0] = ARENA + rng.below(ARENA_PAGES) * PAGE;
    }
    // Do not end this task on purpose: no kill of itself, no 16-page vmmap listing.
    if target == Target::Proc && label == 405 && mrs[0] == pid {
        mrs[0] = 1;
    }
    let label = if label == 103 { 104 } else { label };
    let length = if rng.chance(8) {
        REGISTER_MRS + rng.below((MAX_MRS - REGISTER_MRS) as u64 + 1) as usize
    } else {
        rng.below(REGISTER_MRS as u64 + 1) as usize
    };
    let mut m = Message::new(label, &mrs[..length.min(REGISTER_MRS)]);
    let buf = libmk::ipc_buffer();
    if let Some(buf) = buf {
        buf.mrs[REGISTER_MRS..].copy_from_slice(&mrs[REGISTER_MRS..]);
        buf.send_cap = abi::message::NULL_CPTR;
        if length > REGISTER_MRS {
            m.info = MsgInfo::new(label, length);
        }
        if rng.chance(16) {
            buf.send_cap = rng.pick(&[
                task_slots::IPC_BUFFER,
                task_slots::CHILD_NOTIFY,
                task_slots::VM,
                task_slots::FILE,
                task_slots::SHM,
                task_slots::PROC,
                task_slots::CONSOLE,
            ]);
            m.info.caps = 1;
        }
    }
    let r = target.cap().call(&m);
    if let Some(buf) = libmk::ipc_buffer() {
        buf.send_cap = abi::message::NULL_CPTR;
    }
    !matches!(r, Ok(ref reply) if reply.mrs[0] == 0)
}

/// What a child learned from the servers' answers, to aim half-valid requests with.
struct Known {
    /// Descriptors the file and shm servers gave it, and memory-object handles.
    file_fds: [u64; 4],
    shm_fds: [u64; 4],
    handles: [(u64, u64); 4],
}

/// Sends `w` (with a word changed one time in three, cut short one time in eight: a path
/// of 32 words that did not all come) to `to`; MR1 of a good answer.
fn send<const N: usize>(rng: &mut Rng, to: Target, w: &Wire<N>) -> Option<u64> {
    let mut words = [0u64; MAX_MRS];
    let mut n = w.mrs().len().min(MAX_MRS);
    words[..n].copy_from_slice(&w.mrs()[..n]);
    if n > 1 && rng.chance(8) {
        n = rng.below(n as u64) as usize;
    }
    if n > 0 && rng.chance(3) {
        let mut i = rng.below(n as u64) as usize;
        // A mutated name must not create a shm object (see `name_words`).
        if w.label() == 700 && words[0] & O_CREAT != 0 && i >= 2 {
            i = 1;
        }
        words[i] = match rng.below(3) {
            0 => words[i] ^ (1 << rng.below(64)),
            1 => words[i].wrapping_add(rng.below(3)).wrapping_sub(1),
            _ => rng.next(),
        };
    }
    let mut m = Message::new(w.label(), &words[..n.min(REGISTER_MRS)]);
    if n > REGISTER_MRS
        && let Some(buf) = libmk::ipc_buffer()
    {
        buf.mrs[REGISTER_MRS..n].copy_from_slice(&words[REGISTER_MRS..n]);
        m.info = MsgInfo::new(w.label(), n);
    }
    match to.cap().call(&m) {
        Ok(r) if r.mrs[0] == 0 => Some(r.mrs[1]),
        _ => None,
    }
}

/// One half-valid request, built with the protocol's own encoders from what the child
/// knows, then perhaps mutated; or a touch of the arena (faults through vm to the pagers).
/// True if it failed.
fn valid(rng: &mut Rng, k: &mut Known) -> bool {
    let names = ["FZ0.DAT", "FZ1.DAT", "FZ2.DAT"];
    let shm_names = ["/fz0", "/fz1"];
    let fd = rng.pick(&k.file_fds);
    let sfd = rng.pick(&k.shm_fds);
    let small = |rng: &mut Rng| rng.pick(&[0, 1, 511, 512, 4096, 65_535, 65_536, 200_000]);
    let r = match rng.below(17) {
        0 | 1 => {
            let flags = rng.pick(&[
                open_flags::RDONLY,
                open_flags::RDWR | open_flags::CREAT,
                open_flags::WRONLY | open_flags::CREAT,
                open_flags::RDWR | open_flags::CREAT | open_flags::TRUNC,
                open_flags::RDWR | open_flags::CREAT | open_flags::DIRECT,
            ]);
            let Ok(path) = Path::new(rng.pick(&names)) else {
                return true;
            };
            let r = send(
                rng,
                Target::File,
                &FileRequest::Open { path, flags }.encode(),
            );
            if let Some(fd) = r {
                k.file_fds[rng.below(4) as usize] = fd;
            }
            r
        }
        2 => {
            let len = rng.pick(&[1, 464, 4096, 70_000]);
            let any = small(rng);
            let offset = rng.pick(&[AT_POSITION, 0, 512, any]);
            send(
                rng,
                Target::File,
                &FileRequest::Read { fd, offset, len }.encode(),
            )
        }
        3 => {
            let len = rng.pick(&[1, 100, 464, 512]);
            let any = small(rng);
            let offset = rng.pick(&[AT_POSITION, 0, 512, any]);
            let mut w = FileRequest::Write {
                fd,
                offset,
                len,
                total: len,
            }
            .encode();
            for _ in 0..len.div_ceil(8).min(58) {
                w.push(rng.next());
            }
            send(rng, Target::File, &w)
        }
        4 => {
            let len = small(rng);
            send(
                rng,
                Target::File,
                &FileRequest::Ftruncate { fd, len }.encode(),
            )
        }
        5 => {
            let offset = small(rng) as i64;
            let whence = rng.pick(&[Whence::Set, Whence::Cur, Whence::End]);
            send(
                rng,
                Target::File,
                &FileRequest::Lseek { fd, offset, whence }.encode(),
            )
        }
        6 => send(rng, Target::File, &FileRequest::Close { fd }.encode()),
        7 => {
            let Ok(name) = Name::new(rng.pick(&shm_names)) else {
                return true;
            };
            let flags = rng.pick(&[
                open_flags::RDWR | open_flags::CREAT,
                open_flags::RDONLY,
                open_flags::RDWR | open_flags::CREAT | open_flags::TRUNC,
            ]);
            let mode = rng.pick(&[0o600, 0o400, 0]);
            let r = send(
                rng,
                Target::Shm,
                &ShmRequest::Open { name, flags, mode }.encode(),
            );
            if let Some(fd) = r {
                k.shm_fds[rng.below(4) as usize] = fd;
            }
            r
        }
        8 => {
            let size = small(rng);
            send(
                rng,
                Target::Shm,
                &ShmRequest::Truncate { fd: sfd, size }.encode(),
            )
        }
        9 => send(rng, Target::Shm, &ShmRequest::Close { fd: sfd }.encode()),
        10 | 11 => {
            let (to, pager, fd) = if rng.chance(2) {
                (Target::File, Pager::File, fd)
            } else {
                (Target::Shm, Pager::Shm, sfd)
            };
            let writable = rng.chance(2);
            let r = send(rng, to, &GetObject { fd, writable }.encode());
            if let Some(h) = r {
                k.handles[rng.below(4) as usize] = (pager as u64, h);
            }
            r
        }
        12 | 13 => {
            let (pager, handle) = rng.pick(&k.handles);
            let pager = if pager == Pager::Shm as u64 {
                Pager::Shm
            } else {
                Pager::File
            };
            let req = MmapObject {
                addr: if rng.chance(2) {
                    0
                } else {
                    ARENA + rng.below(ARENA_PAGES) * PAGE
                },
                len: rng.pick(&[PAGE, 16 * PAGE, 64 * PAGE]),
                prot: rng.pick(&[PROT_READ, PROT_READ | PROT_WRITE]),
                flags: rng.pick(&[MAP_SHARED, MAP_PRIVATE, MAP_SHARED | MAP_FIXED]),
                pager,
                handle: handle.wrapping_add(rng.pick(&[0, 0, 0, 1, u64::MAX])),
                offset: rng.pick(&[0, 64 * 1024]),
            };
            send(rng, Target::Vm, &req.encode())
        }
        14 => {
            let addr = ARENA + rng.below(ARENA_PAGES) * PAGE;
            let len = rng.below(8) * PAGE;
            let req = match rng.below(3) {
                0 => VmRequest::Munmap { addr, len },
                1 => VmRequest::Mprotect {
                    addr,
                    len,
                    prot: rng.pick(&[0, PROT_READ, PROT_READ | PROT_WRITE]),
                },
                _ => VmRequest::Mmap {
                    addr,
                    len,
                    prot: PROT_READ | PROT_WRITE,
                    flags: rng.pick(&[
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                        MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED,
                    ]),
                    fd: NO_FD,
                    offset: 0,
                },
            };
            send(rng, Target::Vm, &req.encode())
        }
        15 if rng.chance(2) => {
            let addr = ARENA + rng.below(ARENA_PAGES) * PAGE;
            // Flags 0..7: the valid ones and both-ASYNC-and-SYNC (EINVAL).
            let flags = rng.below(8);
            send(
                rng,
                Target::Vm,
                &Msync {
                    addr,
                    len: PAGE,
                    flags,
                }
                .encode(),
            )
        }
        // Now and then, touch the arena: faults that vm serves from zero, the file server
        // or shm (and a SEGV or BUS that ends this child where nothing may be touched).
        _ if rng.chance(8) => {
            let addr = ARENA + rng.below(ARENA_PAGES) * PAGE + rng.below(512) * 8;
            if rng.chance(2) {
                poke(addr, rng.next());
            } else {
                let _ = peek(addr);
            }
            Some(0)
        }
        _ => send(rng, Target::Vm, &VmRequest::VmStats.encode()),
    };
    r.is_none()
}

/// A child's life: some anonymous memory in the arena to aim at, then requests, counted in
/// the shared page (word 0: sent, word 1: answered with an error).
fn fuzz_child(counter: u64, seed: u64) -> ! {
    let pid = rt::getpid();
    let _ = rt::mmap(
        ARENA,
        ARENA_PAGES * PAGE,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | rt::MAP_ANONYMOUS | MAP_FIXED,
        rt::NO_FD,
        0,
    );
    let mut rng = Rng(seed | 1);
    let mut known = Known {
        file_fds: [3, 4, 5, 6],
        shm_fds: [65_536, 65_537, 65_538, 65_539],
        handles: [(1, 1), (2, 1), (1, 2), (2, 2)],
    };
    for _ in 0..PER_CHILD {
        let failed = if rng.chance(2) {
            valid(&mut rng, &mut known)
        } else {
            one(&mut rng, pid)
        };
        poke(counter, peek(counter) + 1);
        if failed {
            poke(counter + 8, peek(counter + 8) + 1);
        }
    }
    rt::exit(0)
}

fn descriptors(server: u64) -> Result<DescriptorCount, Errno> {
    rt::ipc::call(Cap::from_cptr(server), &ServerControl::Descriptors.encode())
}

fn main() -> i32 {
    let mut c = Checks { failures: 0 };
    let Ok(counter) = shared_anon(1, PROT_READ | PROT_WRITE) else {
        println!("FAIL srvfuzz-setup: no shared page");
        return 1;
    };
    // One child round first, so that this task's own pages are resident for the counts.
    let warm = rt::fork();
    if warm == Ok(0) {
        rt::exit(0);
    }
    if let Ok(child) = warm {
        let _ = rt::wait(child);
    }
    // The fuzzing runs in a driver child: this task only counts vm's pages and slots before
    // and after, touching nothing new meanwhile (its own pages, a first touch of its
    // read-only data or a private copy made under eviction, would blur the count).
    let vm0 = stats();
    let driven = match rt::fork() {
        Ok(0) => rt::exit(drive(counter)),
        Ok(driver) => rt::wait(driver),
        Err(e) => Err(e),
    };
    let vm1 = stats();
    let failures = match driven {
        Ok((_, rt::WaitStatus::Exited, n)) => n,
        w => {
            println!("FAIL srvfuzz-driver: the driver ended: {w:?}");
            1
        }
    };
    c.failures += i32::try_from(failures).unwrap_or(1);
    println!(
        "srvfuzz: vm pages in use {} -> {}, chunks {} -> {}, capability slots {} -> {}",
        vm0.pages_in_use, vm1.pages_in_use, vm0.chunks, vm1.chunks, vm0.slots, vm1.slots
    );
    c.check(
        "srvfuzz-pages-back",
        vm1.pages_in_use == vm0.pages_in_use,
        "pages of ended tasks are still in use",
    );
    c.check(
        "srvfuzz-slots-back",
        vm0.slots > 0 && vm1.slots == vm0.slots,
        "vm holds capability slots for ended tasks",
    );

    // And normal work goes on.
    let works = anon(8, PROT_READ | PROT_WRITE).is_ok_and(|a| {
        poke(a + 3 * PAGE, 5);
        let forked = match rt::fork() {
            Ok(0) => rt::exit(if peek(a + 3 * PAGE) == 5 { 0 } else { 1 }),
            Ok(child) => matches!(rt::wait(child), Ok((_, rt::WaitStatus::Exited, 0))),
            Err(_) => false,
        };
        forked && rt::munmap(a, 8 * PAGE).is_ok()
    });
    c.check(
        "srvfuzz-still-works",
        works,
        "mmap, fork and wait no longer work",
    );
    c.failures
}

/// The fuzzing: children sending requests until [`TOTAL`] went out, then checks that every
/// server still answers and that the children's descriptors are gone. Its failures.
fn drive(counter: u64) -> i32 {
    let mut c = Checks { failures: 0 };
    poke(counter, 0);
    poke(counter + 8, 0);
    let files0 = descriptors(task_slots::FILE);
    let shm0 = descriptors(task_slots::SHM);

    let (mut children, mut segv, mut other) = (0u64, 0u64, 0u64);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    while peek(counter) < TOTAL && children < 2000 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        match rt::fork() {
            Ok(0) => fuzz_child(counter, seed),
            Ok(child) => {
                children += 1;
                match rt::wait(child) {
                    Ok((_, rt::WaitStatus::Exited, 0)) => {}
                    Ok((_, rt::WaitStatus::Segv | rt::WaitStatus::Bus, _)) => segv += 1,
                    w => {
                        println!("srvfuzz: child {child} ended: {w:?}");
                        other += 1;
                    }
                }
            }
            Err(e) => {
                println!("srvfuzz: fork failed: {e}");
                break;
            }
        }
    }
    // Reap whatever the children spawned (their orphans went to init).
    while rt::wait(0).is_ok() {}
    let sent = peek(counter);
    println!(
        "srvfuzz: {sent} requests from {children} children ({} answered with an error; {segv} \
         children ended by a fault, {other} otherwise)",
        peek(counter + 8)
    );
    c.check(
        "srvfuzz-requests",
        sent >= TOTAL,
        "fewer requests were sent than planned",
    );

    // Every server still answers a normal request.
    let vm_ok = rt::vm_stats().is_ok();
    let file_ok = rt::file_stats().is_ok()
        && rt::open("hello.txt", O_RDONLY).is_ok_and(|fd| {
            let mut b = [0u8; 5];
            let n = rt::read(fd, &mut b);
            rt::close(fd).is_ok() && n == Ok(5)
        });
    let shm_ok = rt::shm_open("/fzcheck", O_CREAT | O_RDWR, 0o600)
        .is_ok_and(|fd| rt::close(fd).is_ok() && rt::shm_unlink("/fzcheck").is_ok());
    let proc_ok = rt::getppid().is_ok();
    println!("srvfuzz: answers: vm {vm_ok}, file {file_ok}, shm {shm_ok}, init {proc_ok}");
    c.check(
        "srvfuzz-servers-answer",
        vm_ok && file_ok && shm_ok && proc_ok,
        "a server no longer answers a normal request",
    );

    // What the fuzzers left behind: their named shm objects and files (names they own).
    for name in ["/fz0", "/fz1"] {
        let _ = rt::shm_unlink(name);
    }
    for name in ["FZ0.DAT", "FZ1.DAT", "FZ2.DAT"] {
        let _ = rt::unlink(name);
    }
    let files1 = demos::settled(&files0, || descriptors(task_slots::FILE));
    let shm1 = demos::settled(&shm0, || descriptors(task_slots::SHM));
    println!(
        "srvfuzz: file descriptors/objects {files0:?} -> {files1:?}, shm {shm0:?} -> {shm1:?}"
    );
    c.check(
        "srvfuzz-descriptors-back",
        files0.is_ok() && files0 == files1 && shm0.is_ok() && shm0 == shm1,
        "descriptors or objects of ended tasks are still held",
    );
    c.failures
}
