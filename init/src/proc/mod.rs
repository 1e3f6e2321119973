//! init as the process server (docs/pagers.md): starts zero and vm from the initrd, then
//! serves the tasks' process requests (spawn, fork, exec, exit, wait, kill, getpid) on its
//! endpoint, and vm's kill records when vm signals its notification.
//!
//! `run=<name>` in the bootargs: spawn that program, serve until it ends, print how it ended
//! (`init: <name> exited with status N`, or `... killed by SEGV at 0x...`), end the tasks
//! still running, write every file back, power off. `run=<name>,<arg>,<arg>...` gives the
//! program arguments: argv = [name, arg, ...] (bootargs are split at spaces, so an argument
//! holds neither a space nor a comma); its environment is empty.

mod initrd;
mod mem;
mod proxy;
mod server;
mod servers;
mod task;
mod vm;

use crate::alloc::Alloc;
use abi::bootinfo::BootInfo;
use abi::message::{NOTIFICATION_LABEL, NULL_CPTR};
use abi::object::{MapFlags, ObjectType};
use libmk::{Cap, Endpoint, Frame, Message, Reply};
use proto::{Errno, GetPidReply, Name, ProcRequest, ReplyBody, WaitStatus, pid};
use rt::println;

pub use task::{ArgArea, Proc};

/// log2 of init's heap.
const HEAP_BITS: u64 = 21;
/// Pages of init's window for filling frames.
const WINDOW_PAGES: u64 = 16;

/// How the program `run=` started ended.
pub struct Ended {
    pub name: Name,
    pub how: WaitStatus,
    pub value: u64,
}

/// Starts the servers, runs program `name` and reports how it ended.
pub fn run(info: &'static BootInfo, name: &str) {
    let mut alloc = Alloc::new(info);
    if let Err(why) = serve(&mut alloc, info, name) {
        println!("FAIL proc: {why}");
    }
}

/// Prints how the watched program ended.
fn report(ended: &Ended) {
    let name = ended.name.as_str();
    match ended.how {
        WaitStatus::Exited => println!("init: {name} exited with status {}", ended.value as i64),
        WaitStatus::Segv => println!("init: {name} killed by SEGV at {:#x}", ended.value),
        WaitStatus::Bus => println!("init: {name} killed by BUS at {:#x}", ended.value),
        WaitStatus::Killed => println!("init: {name} killed"),
    }
}

fn serve(alloc: &mut Alloc, info: &'static BootInfo, name: &str) -> Result<(), &'static str> {
    if let Some(buf) = libmk::ipc_buffer() {
        buf.receive_slot = NULL_CPTR;
        buf.send_cap = NULL_CPTR;
    }
    init_heap(alloc).map_err(|_| "cannot map init's heap")?;
    let initrd = initrd::Initrd::map(alloc, info).map_err(|_| "cannot map the initrd")?;
    let mut window = mem::Window::new(alloc, WINDOW_PAGES).map_err(|_| "no window")?;
    let servers =
        server::start(alloc, &mut window, &initrd, info).map_err(|_| "cannot start the servers")?;
    let init_ep = servers.init_ep;
    let mut proc = Proc::new(alloc, initrd, servers, info, window);
    // `run=anon,64`: the program, then its arguments.
    let program = name.split(',').next().unwrap_or(name);
    let args = ArgArea::new(name.split(','), core::iter::empty());
    match (Name::new(program).map_err(Errno::from), args) {
        // Answered while init serves (the program may come from the disk).
        (Ok(n), Ok(args)) => proc.spawn(pid::INIT, n, None, args),
        (Err(e), _) | (_, Err(e)) => {
            println!("init: cannot run {name}: {e}");
            return Err("spawn failed");
        }
    }
    let Some(ended) = proc.serve(init_ep) else {
        return Err("spawn failed");
    };
    report(&ended);
    // Power-off follows: the tasks still running end first, and what tasks wrote to files
    // (through shared mappings too) must be on the disk.
    proc.end_remaining();
    if let Err(e) = proc.sync_all(init_ep) {
        println!("init: the file server could not write everything back: {e}");
    }
    Ok(())
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
    /// The request loop: until the watched task ends (`None`: it could not be started).
    fn serve(&mut self, ep: Cap<Endpoint>) -> Option<Ended> {
        let mut reply: Option<Message> = None;
        loop {
            reply = self.step(ep, reply);
            let ended = self.take_ended();
            if ended.is_some() || self.boot_failed {
                if let Some(m) = reply.take() {
                    self.reply_now(&m);
                }
                return ended;
            }
        }
    }

    /// Sends `reply` (to the last caller) and takes the next message: a task's request, a
    /// proxy's answer, a server's fault, vm's kill records or init's timer. Returns the reply
    /// to it, if any.
    fn step(&mut self, ep: Cap<Endpoint>, reply: Option<Message>) -> Option<Message> {
        let received = match reply {
            Some(m) => ep.reply_recv(&m),
            None => ep.recv(),
        };
        let r = match received {
            Ok(r) => r,
            Err(e) => {
                println!("init: receive failed: {e:?}");
                return None;
            }
        };
        if r.info().label == NOTIFICATION_LABEL {
            if r.badge & proxy::TIMER_BITS != 0 {
                self.timer_fired();
            }
            if r.badge & !proxy::TIMER_BITS != 0 {
                self.take_kills();
            }
            None
        } else if let Some(server) = pid::of_fault_badge(r.badge) {
            // Only the kernel sends with this badge: a server's thread faulted.
            self.server_failed(server, &r);
            None
        } else if let Some(server) = proxy::Server::of_badge(r.badge) {
            self.proxy_answered(server, &r)
        } else if r.badge == pid::CONSOLE {
            Some(self.console_request(&r))
        } else {
            self.handle(&r)
        }
    }

    /// One request from a task: the reply, or `None` when the caller gets none (exit, exec)
    /// or gets it later (spawn, fork and exec wait for the file and shm servers in a saved
    /// reply).
    fn handle(&mut self, r: &Reply) -> Option<Message> {
        let caller = r.badge;
        let msg = rt::ipc::received(r);
        let req = match ProcRequest::decode(msg.label(), msg.mrs()) {
            Ok(req) => req,
            Err(e) => return Some(answer::<()>(Err(e.into()))),
        };
        if !self.is_running(caller) {
            return Some(answer::<()>(Err(Errno::ESRCH)));
        }
        match req {
            ProcRequest::Spawn { name } => {
                self.spawn_for(caller, name, Ok(ArgArea::of_name(name.as_str())))
            }
            ProcRequest::SpawnArgs { name } => {
                let args = self.outgoing_args(caller);
                self.spawn_for(caller, name, args)
            }
            ProcRequest::Fork { sp, pc } => match self.save_caller() {
                Ok(reply) => {
                    self.fork(caller, sp, pc, reply);
                    None
                }
                Err(e) => Some(answer::<()>(Err(e))),
            },
            ProcRequest::Exec { name } => {
                self.exec_for(caller, name, Ok(ArgArea::of_name(name.as_str())))
            }
            ProcRequest::ExecArgs { name } => {
                let args = self.outgoing_args(caller);
                self.exec_for(caller, name, args)
            }
            ProcRequest::Exit { status } => {
                self.end(caller, WaitStatus::Exited, i64::from(status) as u64);
                None
            }
            ProcRequest::Wait { pid } => Some(answer(self.wait(caller, pid))),
            ProcRequest::Kill { pid } if pid == caller => {
                self.end(caller, WaitStatus::Killed, 0);
                None
            }
            ProcRequest::Kill { pid } => Some(answer(self.kill(caller, pid))),
            // The session's program may end the session; init powers off after it.
            ProcRequest::PowerOff if self.is_watched(caller) => {
                println!("init: power-off asked by pid {caller}");
                self.end(caller, WaitStatus::Exited, 0);
                None
            }
            ProcRequest::PowerOff => Some(answer::<()>(Err(Errno::EPERM))),
            ProcRequest::Sync => match self.save_caller() {
                Ok(reply) => {
                    self.sync_for(reply);
                    None
                }
                Err(e) => Some(answer::<()>(Err(e))),
            },
            ProcRequest::TaskAt { from } => Some(answer(self.task_at(from))),
            ProcRequest::Memory => Some(answer(Ok(self.memory()))),
            ProcRequest::GetPid => Some(answer(Ok(GetPidReply {
                pid: caller,
                parent: self.parent_of(caller),
            }))),
        }
    }
}

impl Proc<'_> {
    /// The console server's request: only `Kill` of the foreground task at Ctrl-C, which
    /// may end any task (not a server: `EPERM`).
    fn console_request(&mut self, r: &Reply) -> Message {
        let msg = rt::ipc::received(r);
        match ProcRequest::decode(msg.label(), msg.mrs()) {
            Ok(ProcRequest::Kill { pid }) => answer(self.interrupt(pid)),
            Ok(_) => answer::<()>(Err(Errno::EPERM)),
            Err(e) => answer::<()>(Err(e.into())),
        }
    }

    /// `spawn` of `name` with `args` (an error, `E2BIG` say, is the answer at once);
    /// answered later from a saved reply.
    fn spawn_for(
        &mut self,
        caller: u64,
        name: Name,
        args: Result<ArgArea, Errno>,
    ) -> Option<Message> {
        match args.and_then(|a| self.save_caller().map(|reply| (reply, a))) {
            Ok((reply, args)) => {
                self.spawn(caller, name, Some(reply), args);
                None
            }
            Err(e) => Some(answer::<()>(Err(e))),
        }
    }

    /// `exec` of `name` with `args`: as [`Proc::spawn_for`].
    fn exec_for(
        &mut self,
        caller: u64,
        name: Name,
        args: Result<ArgArea, Errno>,
    ) -> Option<Message> {
        match args.and_then(|a| self.save_caller().map(|reply| (reply, a))) {
            Ok((reply, args)) => {
                self.exec(caller, name, reply, args);
                None
            }
            Err(e) => Some(answer::<()>(Err(e))),
        }
    }
}

/// The reply message: MR0 = 0 or the errno, then the results.
fn answer<T: ReplyBody>(result: Result<T, Errno>) -> Message {
    rt::ipc::message(&proto::encode_reply(&result))
}
