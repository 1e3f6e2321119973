//! init never waits for the file or shm server (issue 9): every request init has for one of
//! them is a [`Job`] in that server's queue, and a **proxy** thread per server (in init's
//! address space and CSpace, as vm's proxies are in vm's) makes the blocking `Call` for
//! init, one job at a time, in the order init queued them. init goes on serving tasks; the
//! proxy hands the answer back by calling init's endpoint (badge [`PROXY_BADGE`] | the
//! server's index), and waits there for its next job (as a saved reply when init has none).
//!
//! ```text
//!  task ──exit──▶ init: queue "TaskExit P" ──(saved reply of the idle proxy)──▶ proxy ──Call──▶ file
//!                 (goes on serving)                                              │
//!  init: the job's continuation runs (a fork answered, a program's next read) ◀──┘ Call: answer
//! ```
//!
//! A job that is not answered within init's deadline (bootarg `init.deadline=<ms>`, else
//! `vm.deadline=`, else 10 s) fails the server as a fault would (`Proc::end_server`).
//!
//! The proxy touches nothing of init's but its own stack and IPC buffer (no heap, no
//! console): it never takes a lock init may hold.

use crate::alloc::{Alloc, CNODE, PAGE, VSPACE};
use abi::Error;
use abi::message::{MAX_MRS, NULL_CPTR, REGISTER_MRS};
use abi::object::{CapRights, MapFlags, ObjectType};
use liballoc::collections::VecDeque;
use libmk::{Cap, Endpoint, Frame, Message, Reply, SavedReply, Tcb};
use proto::{Errno, MESSAGE_WORDS, Wire, pid};

/// The badge of a proxy's capability to init's endpoint: this bit and the server's index.
/// No task's badge has it (a pid), nor a server's fault badge (`pid::FAULT_BADGE`, bit 63).
pub const PROXY_BADGE: u64 = 1 << 62;
/// The bits init's timer signals init's notification with (vm signals with its pid).
pub const TIMER_BITS: u64 = 1 << 62;
/// How long a server may take with one of init's requests, by default.
pub const DEFAULT_DEADLINE_MS: u64 = 10_000;
/// Words of a server's reply a proxy hands back (MR0 of its answer is the header).
pub const ANSWER_WORDS: usize = MAX_MRS - 1;
/// log2 of a proxy's stack.
const STACK_BITS: u64 = 14;
/// The proxies' priority: init's own, so that an answer reaches init as soon as the server
/// gives it, and a notice init queued is sent before the task that caused it runs on.
const PROXY_PRIORITY: u64 = 255;

/// The servers init has proxies for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    File = 0,
    Shm = 1,
    Console = 2,
}

impl Server {
    /// The servers that keep descriptors: told of forks and execs, and asked to sync.
    pub const ALL: [Server; 2] = [Server::File, Server::Shm];
    /// Every server with a proxy: told when a task ends (`TaskExit`).
    pub const NOTICED: [Server; 3] = [Server::File, Server::Shm, Server::Console];

    pub const fn pid(self) -> u64 {
        match self {
            Server::File => pid::FILE,
            Server::Shm => pid::SHM,
            Server::Console => pid::CONSOLE,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Server::File => "file",
            Server::Shm => "shm",
            Server::Console => "console",
        }
    }

    /// The server of proxy badge `badge`, if it is one.
    pub fn of_badge(badge: u64) -> Option<Server> {
        match badge {
            b if b == PROXY_BADGE => Some(Server::File),
            b if b == PROXY_BADGE | 1 => Some(Server::Shm),
            b if b == PROXY_BADGE | 2 => Some(Server::Console),
            _ => None,
        }
    }
}

/// What init does with a job's answer (`Proc::complete`).
#[derive(Clone, Copy, Debug)]
pub enum Then {
    /// A notice (`TaskExit`): nobody waits; a refusal is logged.
    Notice(proto::ServerControl),
    /// `Close` or `Release` of what init read a program with: nobody waits.
    Quiet,
    /// `TaskFork` for the pending fork of `child`.
    Fork { child: u64 },
    /// `TaskExec` for the pending exec of `pid`.
    Exec { pid: u64 },
    /// A step of program load `id` (`Open`, `Read`, `GetObject`).
    Load { id: u64 },
    /// `SyncAll` before power-off.
    Sync,
    /// The console server's `SyncAll` before power-off (its unfinished lines out).
    ConsoleSync,
    /// `SyncAll` for task `sync()` number `id`.
    SyncFor { id: u64 },
}

/// A request for a server and what to do with its answer.
pub struct Job {
    pub request: Wire<MESSAGE_WORDS>,
    pub then: Then,
}

/// A server's answer to a job.
#[expect(
    clippy::large_enum_variant,
    reason = "one answer at a time, on init's stack; a box would put every answer on the heap"
)]
pub enum Answer {
    /// The reply's words (MR0: 0 or the errno, then the results).
    Reply {
        words: [u64; ANSWER_WORDS],
        len: usize,
    },
    /// No answer: the server is gone (dead, ended after its deadline, or never started).
    Gone,
}

impl Answer {
    /// The reply's words.
    pub fn words(&self) -> Option<&[u64]> {
        match self {
            Answer::Reply { words, len } => words.get(..*len),
            Answer::Gone => None,
        }
    }

    /// The reply decoded as `T`; `Err(None)` when the server is gone.
    pub fn result<T: proto::ReplyBody>(&self) -> Result<T, Option<Errno>> {
        let words = self.words().ok_or(None)?;
        proto::reply_result(words).map_err(Some)
    }
}

/// One server's proxy as init sees it: the jobs queued, the one sent, and the proxy's saved
/// reply while it waits for work.
///
/// # Invariants
/// At most one job is sent at a time (the proxy makes one `Call`); `idle` is set only while
/// the proxy waits in its saved reply, and then nothing is sent.
#[derive(Default)]
pub struct Link {
    pub queue: VecDeque<Job>,
    /// The job the proxy is calling the server with, and when it was sent (counter ticks).
    pub sent: Option<(Job, u64)>,
    /// The slot of the proxy's saved reply while it waits for a job.
    pub idle: Option<u64>,
}

/// A message of `label` and `words` (those past the registers in this thread's IPC buffer),
/// or `None` when they do not fit.
pub fn long_message(label: u64, words: &[u64]) -> Option<Message> {
    if words.len() > MAX_MRS {
        return None;
    }
    let (regs, rest) = words.split_at(words.len().min(REGISTER_MRS));
    let mut m = Message::new(label, regs);
    if !rest.is_empty() {
        let buf = libmk::ipc_buffer()?;
        buf.mrs[REGISTER_MRS..words.len()].copy_from_slice(rest);
        m.info.length = words.len();
    }
    Some(m)
}

/// The words `r` carries (at most `out.len()`), from the registers and this thread's IPC
/// buffer; how many.
fn words_of(r: &Reply, out: &mut [u64]) -> usize {
    let n = r.info().length.min(out.len()).min(MAX_MRS);
    for (i, w) in out.iter_mut().enumerate().take(n) {
        *w = match r.mrs.get(i) {
            Some(&x) => x,
            None => libmk::ipc_buffer().map_or(0, |b| b.mrs[i]),
        };
    }
    n
}

/// The message a proxy gets for `job`: the request's label, then the server's endpoint (in
/// init's CSpace; `NULL_CPTR` fails the `Call` at once) and the request's words.
pub fn job_message(job: &Job, ep: u64) -> Option<Message> {
    let mut words = [0u64; 1 + MESSAGE_WORDS];
    let mrs = job.request.mrs();
    words[0] = ep;
    words[1..1 + mrs.len()].copy_from_slice(mrs);
    // A request of 64 words (two paths) does not fit behind the endpoint: init sends none.
    long_message(job.request.label(), &words[..1 + mrs.len()])
}

/// A proxy's answer as init received it.
pub fn answer_of(r: &Reply) -> Answer {
    let mut all = [0u64; MAX_MRS];
    let n = words_of(r, &mut all);
    let header = if n == 0 { 0 } else { all[0] };
    let err = header & 0xffff;
    if n == 0 || err != 0 {
        return Answer::Gone;
    }
    let len = ((header >> 16) as usize).min(n - 1).min(ANSWER_WORDS);
    let mut words = [0u64; ANSWER_WORDS];
    words[..len].copy_from_slice(&all[1..1 + len]);
    Answer::Reply { words, len }
}

/// Sends `msg` to the idle proxy waiting in saved reply `slot`; the slot is empty after.
pub fn wake(alloc: &mut Alloc, slot: u64, msg: &Message) -> Result<(), Error> {
    let r = Cap::<SavedReply>::from_cptr(slot).send(msg);
    if r.is_err() {
        let _ = CNODE.delete(slot);
    }
    alloc.free_slot(slot);
    r
}

/// Starts `server`'s proxy: a TCB, a stack and an IPC buffer of init's (for good, not in a
/// scope), and a capability to init's endpoint `init_ep` with the proxy's badge.
pub fn start(alloc: &mut Alloc, server: Server, init_ep: Cap<Endpoint>) -> Result<(), Error> {
    let tcb: Cap<Tcb> = Cap::from_cptr(alloc.retype_global(ObjectType::Tcb, 0)?);
    let stack: Cap<Frame> = Cap::from_cptr(alloc.retype_global(ObjectType::Frame, STACK_BITS)?);
    let stack_pages = (1 << STACK_BITS) / PAGE;
    let stack_va = alloc.va_reserve(stack_pages)?;
    stack.map(VSPACE, stack_va, MapFlags::RW, 0, stack_pages)?;
    let ipc: Cap<Frame> = Cap::from_cptr(alloc.retype_global(ObjectType::Frame, 12)?);
    let ipc_va = alloc.va_reserve(1)?;
    ipc.map(VSPACE, ipc_va, MapFlags::RW, 0, 1)?;
    let badged = alloc.slot()?;
    CNODE.mint(
        badged,
        CNODE,
        init_ep.cptr(),
        CapRights::WRITE,
        PROXY_BADGE | server as u64,
    )?;
    tcb.configure(CNODE, VSPACE, Some((ipc, ipc_va)), None, PROXY_PRIORITY)?;
    let entry = proxy_main as extern "C" fn(u64, u64) -> ! as usize as u64;
    tcb.write_registers(&[entry, stack_va + (1 << STACK_BITS), badged, ipc_va])?;
    tcb.resume()
}

/// A proxy thread: `init` = its capability to init's endpoint, `ipc_va` its IPC buffer. It
/// calls init for work ("ready", then each answer), calls the server with each job, and
/// hands back the answer: MR0 = the kernel's error code for the `Call` (0: it went
/// through) | the reply's length << 16, then the reply's words.
extern "C" fn proxy_main(init: u64, ipc_va: u64) -> ! {
    libmk::set_ipc_buffer(ipc_va);
    if let Some(buf) = libmk::ipc_buffer() {
        buf.receive_slot = NULL_CPTR;
        buf.send_cap = NULL_CPTR;
    }
    let init: Cap<Endpoint> = Cap::from_cptr(init);
    let mut answer = [0u64; MAX_MRS];
    let mut answer_len = 1;
    loop {
        let msg = long_message(0, &answer[..answer_len]).unwrap_or_else(|| Message::new(0, &[0]));
        let Ok(work) = init.call(&msg) else {
            answer_len = 1;
            answer[0] = 0;
            continue;
        };
        let mut words = [0u64; MAX_MRS];
        let n = words_of(&work, &mut words);
        let ep = if n == 0 { NULL_CPTR } else { words[0] };
        let request = long_message(work.info().label, &words[1..n.max(1)]);
        let r = match request {
            Some(m) => Cap::<Endpoint>::from_cptr(ep).call(&m),
            None => Err(Error::InvalidArgument),
        };
        match r {
            Ok(r) => {
                let len = words_of(&r, &mut answer[1..]);
                answer[0] = (len as u64) << 16;
                answer_len = 1 + len;
            }
            Err(e) => {
                answer[0] = (e as u64).max(1);
                answer_len = 1;
            }
        }
    }
}
