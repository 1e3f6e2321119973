//! The kernel test suite (`test=kernel`), in the manner of seL4's sel4test: named checks of
//! every operation in docs/kernel.md and their error paths, one `PASS <area>-<name>` or
//! `FAIL <area>-<name>: <why>` line each. `ktest=<prefix>` in the bootargs runs only the
//! checks whose id starts with the prefix.
//!
//! Each check runs in a scope of the allocator (see `crate::alloc`): its objects come from
//! one scratch untyped that is revoked afterwards, its slots are emptied, its threads
//! suspended, so a failure does not leak into the next check.
//!
//! Waiting is done without timeouts: a *sentinel* thread at priority 1 keeps trying to
//! `NBSend` to the check's endpoint, which succeeds only when init is waiting there and no
//! other thread can run. So `Sync::settle` returns once every other thread is blocked or
//! done, and a kernel that loses a wake-up makes a check fail instead of hang.

macro_rules! why {
    ($($t:tt)*) => { $crate::suite::Why::new(format_args!($($t)*)) };
}

macro_rules! fail {
    ($($t:tt)*) => { return Err(why!($($t)*)) };
}

macro_rules! ensure {
    ($cond:expr, $($t:tt)*) => {
        if !$cond {
            fail!($($t)*);
        }
    };
}

mod cnode;
mod fault;
mod ipc;
mod irq;
mod notification;
mod sched;
mod tcb;
mod timer;
mod untyped;
mod vspace;

use crate::alloc::{Alloc, CNODE};
use crate::thread::{Config, Space, Thread};
use abi::Error;
use abi::bootinfo::{BootInfo, INIT_IPC_BUFFER_VADDR, bootarg};
use abi::message::{IpcBuffer, NULL_CPTR};
use abi::object::{CapRights, MapFlags, ObjectType, init_slots};
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use libmk::{Cap, Endpoint, Frame, Message, Notification, Reply, Tcb};
use rt::println;

/// Why a check failed: a short formatted text.
pub struct Why {
    buf: [u8; 200],
    len: usize,
}

impl Why {
    pub fn new(args: fmt::Arguments<'_>) -> Self {
        let mut w = Self {
            buf: [0; 200],
            len: 0,
        };
        let _ = fmt::Write::write_fmt(&mut w, args);
        w
    }
}

impl fmt::Write for Why {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?"))
    }
}

/// A check's result.
pub type Outcome = Result<(), Why>;
/// A named check.
pub type Check = (&'static str, fn(&mut Env) -> Outcome);

/// Turns a kernel error into a failure that says what was being done.
pub trait OrFail<T> {
    fn or_fail(self, what: &str) -> Result<T, Why>;
}

impl<T> OrFail<T> for Result<T, Error> {
    fn or_fail(self, what: &str) -> Result<T, Why> {
        self.map_err(|e| why!("{what}: {e:?}"))
    }
}

/// The call must fail with one of `want`.
pub fn expect_err<T>(r: Result<T, Error>, want: &[Error], what: &str) -> Outcome {
    match r {
        Ok(_) => fail!("{what}: succeeded, expected {want:?}"),
        Err(e) if want.contains(&e) => Ok(()),
        Err(e) => fail!("{what}: {e:?}, expected {want:?}"),
    }
}

/// The call must fail (the spec does not say with which error).
pub fn expect_fails<T>(r: Result<T, Error>, what: &str) -> Outcome {
    match r {
        Ok(_) => fail!("{what}: succeeded, expected an error"),
        Err(_) => Ok(()),
    }
}

/// `got` must equal `want`.
pub fn expect_eq<T: PartialEq + fmt::Debug>(got: T, want: T, what: &str) -> Outcome {
    ensure!(got == want, "{what}: got {got:x?}, expected {want:x?}");
    Ok(())
}

/// The type `DebugCapType` reports for `cptr` must be `want`.
pub fn expect_type(cptr: u64, want: abi::object::CapType, what: &str) -> Outcome {
    let got = libmk::debug_cap_type(cptr).or_fail(what)?;
    ensure!(
        got == want as u64,
        "{what}: slot {cptr} has cap type {got}, expected {want:?}"
    );
    Ok(())
}

/// Words shared between init and the threads of the current check (cleared before each).
pub static R: [AtomicU64; 32] = [const { AtomicU64::new(0) }; 32];

pub fn get(i: usize) -> u64 {
    R[i].load(Ordering::SeqCst)
}

pub fn set(i: usize, v: u64) {
    R[i].store(v, Ordering::SeqCst);
}

/// Adds one to `R[i]` and returns the new value.
pub fn bump(i: usize) -> u64 {
    R[i].fetch_add(1, Ordering::SeqCst) + 1
}

/// The error code of a result, 0 for success (for threads reporting through `R`).
pub fn code<T>(r: &Result<T, Error>) -> u64 {
    r.as_ref().err().map_or(0, |e| e.code())
}

/// Badges of the capabilities to a check's endpoint.
pub const SENTINEL_BADGE: u64 = 0x5e17;
pub const DONE_BADGE: u64 = 0xd0e;
pub const FAULT_BADGE: u64 = 0xfa17;

/// What arrived at a check's endpoint.
pub enum Event {
    /// Nothing but the sentinel could run: every other thread is blocked or done.
    Idle,
    /// A message (from a thread's `DONE` capability, or a fault).
    Msg(Reply),
}

/// A check's endpoint, with a sentinel thread that reports when nothing else can run, and
/// badged capabilities to it: `done` for threads to report, `fault` to be a fault endpoint.
pub struct Sync {
    pub ep: Cap<Endpoint>,
    pub done: Cap<Endpoint>,
    pub fault: Cap<Endpoint>,
}

fn sentinel(ep: u64) {
    let ep = Cap::<Endpoint>::from_cptr(ep);
    loop {
        let _ = ep.nb_send(&Message::new(0, &[]));
        libmk::yield_now();
    }
}

impl Sync {
    /// Waits at the endpoint for a message or for the sentinel.
    pub fn wait(&self) -> Result<Event, Why> {
        let r = self.ep.recv().or_fail("Recv on the check's endpoint")?;
        Ok(if r.badge == SENTINEL_BADGE {
            Event::Idle
        } else {
            Event::Msg(r)
        })
    }

    /// Waits until every other thread is blocked or done; any message meanwhile fails.
    pub fn settle(&self) -> Outcome {
        match self.wait()? {
            Event::Idle => Ok(()),
            Event::Msg(r) => fail!(
                "unexpected message while settling: label {:#x} badge {:#x} mr0 {:#x} mr1 {:#x}",
                r.info().label,
                r.badge,
                r.mrs[0],
                r.mrs[1]
            ),
        }
    }

    /// Waits for a fault message (sent through `fault`); the sentinel means none came.
    pub fn fault_msg(&self) -> Result<Reply, Why> {
        match self.wait()? {
            Event::Idle => fail!("no fault message arrived (all threads blocked)"),
            Event::Msg(r) if r.badge == FAULT_BADGE => Ok(r),
            Event::Msg(r) => fail!(
                "expected a fault message, got label {:#x} badge {:#x}",
                r.info().label,
                r.badge
            ),
        }
    }
}

/// Threads a check may make (and have suspended at its end).
const MAX_THREADS: usize = 80;

/// What a check works with: the allocator and the threads it made.
pub struct Env {
    pub a: Alloc,
    threads: [u64; MAX_THREADS],
    nthreads: usize,
    /// Whether EL0 may program the EL1 physical timer (found by `irq-el0-timer-access`).
    pub cntp_ok: bool,
}

impl Env {
    pub fn info(&self) -> &'static BootInfo {
        self.a.info
    }

    /// An object of a fixed-size type (scoped).
    pub fn obj<K>(&mut self, ty: ObjectType) -> Result<Cap<K>, Why> {
        self.a.obj(ty, 0).map_err(|e| why!("retype {ty:?}: {e:?}"))
    }

    pub fn endpoint(&mut self) -> Result<Cap<Endpoint>, Why> {
        self.obj(ObjectType::Endpoint)
    }

    pub fn notification(&mut self) -> Result<Cap<Notification>, Why> {
        self.obj(ObjectType::Notification)
    }

    /// A frame of `2^bits` bytes (scoped, unmapped).
    pub fn frame(&mut self, bits: u64) -> Result<Cap<Frame>, Why> {
        self.a.obj(ObjectType::Frame, bits).or_fail("retype Frame")
    }

    /// A frame mapped in init's VSpace: (cap, address).
    pub fn mapped_frame(&mut self, bits: u64, flags: MapFlags) -> Result<(Cap<Frame>, u64), Why> {
        self.a.mapped_frame(bits, flags).or_fail("map a new frame")
    }

    pub fn slot(&mut self) -> Result<u64, Why> {
        self.a.slot().or_fail("allocate a slot")
    }

    /// A copy of `src` with `rights` in a new slot.
    pub fn copy(&mut self, src: u64, rights: CapRights) -> Result<u64, Why> {
        let s = self.slot()?;
        CNODE.copy(s, CNODE, src, rights).or_fail("CNodeCopy")?;
        Ok(s)
    }

    /// A badged copy of `src` in a new slot.
    pub fn mint(&mut self, src: u64, rights: CapRights, badge: u64) -> Result<u64, Why> {
        let s = self.slot()?;
        CNODE
            .mint(s, CNODE, src, rights, badge)
            .or_fail("CNodeMint")?;
        Ok(s)
    }

    /// A configured thread (not started), remembered so the check's end suspends it.
    pub fn thread(&mut self, cfg: Config, space: Option<&mut Space>) -> Result<Thread, Why> {
        let t = Thread::new(&mut self.a, cfg, space).or_fail("make a thread")?;
        if self.nthreads < self.threads.len() {
            self.threads[self.nthreads] = t.tcb.cptr();
            self.nthreads += 1;
        }
        Ok(t)
    }

    /// A thread of `priority` in init's VSpace running `f(arg)`.
    pub fn spawn(&mut self, f: fn(u64), arg: u64, priority: u64) -> Result<Thread, Why> {
        self.spawn_cfg(Config::new(priority), f, arg)
    }

    pub fn spawn_cfg(&mut self, cfg: Config, f: fn(u64), arg: u64) -> Result<Thread, Why> {
        let t = self.thread(cfg, None)?;
        t.run(f, arg).or_fail("start a thread")?;
        Ok(t)
    }

    /// A thread in a new VSpace that maps init's image (and the thread's stack and IPC
    /// buffer) at init's addresses.
    pub fn foreign_thread(&mut self, cfg: Config) -> Result<(Thread, Space), Why> {
        let mut space = Space::new(&mut self.a).or_fail("make a VSpace")?;
        space
            .map_image(&mut self.a)
            .or_fail("map init's image into the new VSpace")?;
        let t = self.thread(cfg, Some(&mut space))?;
        Ok((t, space))
    }

    /// The check's endpoint and its sentinel.
    pub fn sync(&mut self) -> Result<Sync, Why> {
        let ep = self.endpoint()?;
        let s = self.mint(ep.cptr(), CapRights::ALL, SENTINEL_BADGE)?;
        let done = self.mint(ep.cptr(), CapRights::ALL, DONE_BADGE)?;
        let fault = self.mint(ep.cptr(), CapRights::ALL, FAULT_BADGE)?;
        let cfg = Config {
            ipc_buffer: false,
            ..Config::new(1)
        };
        self.spawn_cfg(cfg, sentinel, s)?;
        Ok(Sync {
            ep,
            done: Cap::from_cptr(done),
            fault: Cap::from_cptr(fault),
        })
    }

    fn begin(&mut self) -> Outcome {
        for r in &R {
            r.store(0, Ordering::SeqCst);
        }
        init_ipc_buffer().receive_slot = NULL_CPTR;
        self.nthreads = 0;
        self.a.begin_scope().or_fail("make the scratch untyped")
    }

    fn end(&mut self) -> Outcome {
        for &t in &self.threads[..self.nthreads] {
            let _ = Cap::<Tcb>::from_cptr(t).suspend();
        }
        self.nthreads = 0;
        if self.cntp_ok {
            irq::timer_stop();
        }
        init_ipc_buffer().receive_slot = NULL_CPTR;
        let _ = Cap::<Tcb>::from_cptr(init_slots::TCB).unbind_notification();
        self.a
            .end_scope()
            .or_fail("clean up (delete the check's slots, revoke its untyped)")
    }
}

fn read_worker(va: u64) {
    // SAFETY: a volatile read of an address the check mapped; if it is not readable the
    // thread faults and its fault endpoint hears of it.
    let v = unsafe { core::ptr::read_volatile(va as *const u32) };
    set(31, u64::from(v));
    set(30, 1);
}

/// Reads the `u32` at `va` in a thread with a fault endpoint, so a bad mapping fails the
/// check instead of killing init.
pub fn read_u32_in_thread(env: &mut Env, sync: &Sync, va: u64) -> Result<u32, Why> {
    set(30, 0);
    run_in_thread(env, sync, read_worker, va)?;
    ensure!(get(30) == 1, "the reader thread did not finish");
    Ok(get(31) as u32)
}

/// Runs `f(arg)` in a thread of priority 254 with a fault endpoint and waits until it and
/// every other thread are done or blocked; a fault fails the check (the thread is
/// suspended).
pub fn run_in_thread(env: &mut Env, sync: &Sync, f: fn(u64), arg: u64) -> Outcome {
    let cfg = Config {
        fault_endpoint: Some(sync.fault),
        ..Config::new(254)
    };
    let t = env.spawn_cfg(cfg, f, arg)?;
    match sync.wait()? {
        Event::Idle => Ok(()),
        Event::Msg(r) => {
            let _ = t.tcb.suspend();
            fail!(
                "the thread faulted: label {} mr0 {:#x} mr1 {:#x} mr2 {:#x} mr3 {:#x}",
                r.info().label,
                r.mrs[0],
                r.mrs[1],
                r.mrs[2],
                r.mrs[3]
            )
        }
    }
}

/// init's own IPC buffer.
pub fn init_ipc_buffer() -> &'static mut IpcBuffer {
    // SAFETY: the kernel maps init's IPC buffer frame read-write at this address for init's
    // whole life; only init's own thread uses it through this reference, one use at a time.
    unsafe { &mut *(INIT_IPC_BUFFER_VADDR as *mut IpcBuffer) }
}

/// Every area's checks, in the order they run.
const AREAS: &[(&str, &[Check])] = &[
    ("untyped", untyped::CHECKS),
    ("cnode", cnode::CHECKS),
    ("tcb", tcb::CHECKS),
    ("ipc", ipc::CHECKS),
    ("ntfn", notification::CHECKS),
    ("vspace", vspace::CHECKS),
    ("fault", fault::CHECKS),
    ("sched", sched::CHECKS),
    ("irq", irq::CHECKS),
    ("timer", timer::CHECKS),
];

/// How many checks the suite has.
pub fn count() -> usize {
    AREAS.iter().map(|(_, c)| c.len()).sum()
}

/// Runs the suite (or the checks `ktest=<prefix>` selects).
pub fn run(info: &'static BootInfo) {
    libmk::set_ipc_buffer(INIT_IPC_BUFFER_VADDR);
    let filter = bootarg(info.bootargs(), "ktest");
    let mut env = Env {
        a: Alloc::new(info),
        threads: [0; MAX_THREADS],
        nthreads: 0,
        cntp_ok: false,
    };
    let (mut passed, mut failed) = (0, 0);
    let mut id = [0u8; 64];
    for (area, checks) in AREAS {
        for (name, check) in *checks {
            let len = join(&mut id, area, name);
            let id = core::str::from_utf8(&id[..len]).unwrap_or("?");
            if filter.is_some_and(|f| !id.as_bytes().starts_with(f)) {
                continue;
            }
            let result = env.begin().and_then(|()| check(&mut env));
            let cleanup = env.end();
            match (result, cleanup) {
                (Ok(()), Ok(())) => {
                    passed += 1;
                    println!("PASS {id}");
                }
                (Err(why), _) => {
                    failed += 1;
                    println!("FAIL {id}: {why}");
                }
                (Ok(()), Err(why)) => {
                    failed += 1;
                    println!("FAIL {id}: {why}");
                }
            }
        }
    }
    println!("ktest: {passed} passed, {failed} failed, of {}", count());
}

fn join(buf: &mut [u8; 64], area: &str, name: &str) -> usize {
    let mut n = 0;
    for &b in area.as_bytes().iter().chain(b"-").chain(name.as_bytes()) {
        if n < buf.len() {
            buf[n] = b;
            n += 1;
        }
    }
    n
}
