//! init as the process server (docs/pagers.md): starts zero and vm from the initrd, then
//! serves the tasks' process requests (spawn, fork, exec, exit, wait, kill, getpid) on its
//! endpoint, and vm's kill records when vm signals its notification.
//!
//! `run=<name>` in the bootargs: spawn that program, serve until it ends, print how it ended
//! (`init: <name> exited with status N`, or `... killed by SEGV at 0x...`), power off.

mod initrd;
mod mem;
mod server;
mod task;
mod vm;

use crate::alloc::Alloc;
use abi::bootinfo::BootInfo;
use abi::message::{NOTIFICATION_LABEL, NULL_CPTR};
use abi::object::{MapFlags, ObjectType};
use libmk::{Cap, Endpoint, Frame, Message};
use proto::{Errno, Label, WaitStatus, pid};
use rt::println;

pub use task::Proc;

/// log2 of init's heap.
const HEAP_BITS: u64 = 21;
/// Pages of init's window for filling frames.
const WINDOW_PAGES: u64 = 16;

/// How the program `run=` started ended.
pub struct Ended {
    pub name: task::Name,
    pub how: WaitStatus,
    pub value: u64,
}

/// Starts the servers, runs program `name` and reports how it ended.
pub fn run(info: &'static BootInfo, name: &str) {
    let mut alloc = Alloc::new(info);
    match serve(&mut alloc, info, name) {
        Ok(ended) => {
            let name = ended.name.as_str();
            match ended.how {
                WaitStatus::Exited => {
                    println!("init: {name} exited with status {}", ended.value as i64)
                }
                WaitStatus::Segv => {
                    println!("init: {name} killed by SEGV at {:#x}", ended.value)
                }
                WaitStatus::Bus => println!("init: {name} killed by BUS at {:#x}", ended.value),
                WaitStatus::Killed => println!("init: {name} killed"),
            }
        }
        Err(why) => println!("FAIL proc: {why}"),
    }
}

fn serve(alloc: &mut Alloc, info: &'static BootInfo, name: &str) -> Result<Ended, &'static str> {
    if let Some(buf) = libmk::ipc_buffer() {
        buf.receive_slot = NULL_CPTR;
        buf.send_cap = NULL_CPTR;
    }
    init_heap(alloc).map_err(|_| "cannot map init's heap")?;
    let initrd = initrd::Initrd::map(alloc, info).map_err(|_| "cannot map the initrd")?;
    let mut window = mem::Window::new(alloc, WINDOW_PAGES).map_err(|_| "no window")?;
    let servers =
        server::start(alloc, &mut window, &initrd, info).map_err(|_| "cannot start the servers")?;
    let mut proc = Proc::new(alloc, initrd, &servers);
    let watched = match proc.spawn(pid::INIT, name) {
        Ok(pid) => pid,
        Err(e) => {
            println!("init: cannot run {name}: {e}");
            return Err("spawn failed");
        }
    };
    proc.watch(watched);
    Ok(proc.serve(servers.init_ep))
}

/// Maps a 2 MiB frame in init's address space and gives it to the heap.
fn init_heap(alloc: &mut Alloc) -> Result<(), abi::Error> {
    let frame: Cap<Frame> = Cap::from_cptr(alloc.retype_global(ObjectType::Frame, HEAP_BITS)?);
    let pages = (1u64 << HEAP_BITS) / crate::alloc::PAGE;
    let va = alloc.va_reserve(pages)?;
    frame.map(crate::alloc::VSPACE, va, MapFlags::RW, 0, pages)?;
    // SAFETY: [va, va + 2 MiB) was just mapped read-write for good, and nothing else uses it.
    unsafe { rt::heap::init(va, 1 << HEAP_BITS) };
    Ok(())
}

impl Proc<'_> {
    /// The request loop: until the watched task ends.
    fn serve(&mut self, ep: Cap<Endpoint>) -> Ended {
        let mut reply: Option<Message> = None;
        loop {
            let received = match reply.take() {
                Some(m) => ep.reply_recv(&m),
                None => ep.recv(),
            };
            let r = match received {
                Ok(r) => r,
                Err(e) => {
                    println!("init: receive failed: {e:?}");
                    continue;
                }
            };
            let label = r.info().label;
            if label == NOTIFICATION_LABEL {
                self.take_kills();
            } else {
                reply = self.handle(r.badge, label, &r.mrs).map(answer);
            }
            if let Some(ended) = self.take_ended() {
                return ended;
            }
        }
    }

    /// One request from task `caller`: `None` when the caller gets no reply (exit, exec).
    fn handle(&mut self, caller: u64, label: u64, mrs: &[u64]) -> Option<Result<[u64; 3], Errno>> {
        let Ok(label) = Label::try_from(label) else {
            return Some(Err(Errno::ENOSYS));
        };
        let Ok(f) = proto::fields(label, mrs) else {
            return Some(Err(Errno::EINVAL));
        };
        if !self.is_running(caller) {
            return Some(Err(Errno::ESRCH));
        }
        match label {
            Label::Spawn => Some(
                task::name_arg(f)
                    .and_then(|name| self.spawn(caller, name.as_str()))
                    .map(|pid| [pid, 0, 0]),
            ),
            Label::Fork => Some(self.fork(caller, f[0], f[1]).map(|pid| [pid, 0, 0])),
            Label::Exec => match task::name_arg(f).and_then(|n| self.exec(caller, n.as_str())) {
                Ok(()) => None,
                Err(e) => Some(Err(e)),
            },
            Label::Exit => {
                self.end(caller, WaitStatus::Exited, f[0]);
                None
            }
            Label::Wait => Some(self.wait(caller, f[0])),
            Label::Kill => {
                if f[0] == caller {
                    self.end(caller, WaitStatus::Killed, 0);
                    None
                } else {
                    Some(self.kill(f[0]).map(|()| [0; 3]))
                }
            }
            Label::GetPid => Some(Ok([caller, self.parent_of(caller), 0])),
            _ => Some(Err(Errno::ENOSYS)),
        }
    }
}

/// The reply message: MR0 = 0 or the errno, then the results.
fn answer(result: Result<[u64; 3], Errno>) -> Message {
    match result {
        Ok([a, b, c]) => Message::new(0, &[0, a, b, c]),
        Err(e) => Message::new(0, &[e as u64]),
    }
}
