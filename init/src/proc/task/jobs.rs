//! The parts of spawn, fork, exec and exit that need the file or shm server, done through
//! init's proxies (`proc/proxy.rs`) so that init never waits for a server: each is a job
//! queued for a server's proxy, and what follows its answer is a continuation here. A task
//! that asked for the operation waits in a saved reply (`SaveCaller`) meanwhile; every other
//! task is served.
//!
//! Order. Each server's jobs are sent one at a time, in the order init queued them, and pids
//! are never reused (`Proc::new_pid` counts up from `pid::FIRST_USER` and a `u64` does not
//! wrap), so a server hears of a task in the order init saw its life: `TaskFork { parent,
//! child }` is queued before the child exists for anyone (it runs, and its parent learns its
//! pid, only after both servers answered), so it comes before every `TaskExec`/`TaskExit`
//! of the child; `TaskExec` of a task is answered before the task runs its new program; and
//! `TaskExit { pid }` is queued when the task is already stopped, so nothing of that pid
//! comes after it.

use super::{ArgArea, Objects, Proc, Program, State, Task, WaitStatus};
use crate::proc::answer;
use crate::proc::proxy::{self, Answer, Job, Server, Then};
use crate::proc::servers::{self, DiskProgram, Head};
use abi::message::NULL_CPTR;
use kernel_core::elf::UserImage;
use libmk::{Cap, Endpoint, Message, SavedReply};
use proto::{
    ConsoleRequest, Errno, MESSAGE_WORDS, Name, OpenReply, ServerControl, VmControl, Wire, pid,
};

/// A fork waiting for the servers' `TaskFork` answers.
pub struct Forking {
    pub parent: u64,
    name: Name,
    objs: Objects,
    /// The parent's saved reply.
    reply: u64,
    /// Answers still to come.
    waiting: u8,
    /// The first refusal (a server full of descriptors).
    refused: Option<Errno>,
    /// The servers that copied the descriptors (told `TaskExit` if the fork fails).
    accepted: [bool; 2],
}

/// What a program is being read for.
#[derive(Clone, Copy)]
pub enum Purpose {
    Spawn { parent: u64 },
    Exec { pid: u64 },
}

/// A program being read from the disk.
pub struct Loading {
    purpose: Purpose,
    name: Name,
    /// The caller's saved reply (`None`: the program `run=` names, started by init).
    reply: Option<u64>,
    /// After `Open`: the descriptor and the headers read so far.
    head: Option<Head>,
    /// After the headers: the image they describe (then `GetObject` is on its way).
    image: Option<UserImage>,
    /// The new program's arguments, checked.
    args: ArgArea,
}

/// What a program load does next.
enum Step {
    Post(Wire<MESSAGE_WORDS>),
    Done(Result<DiskProgram, Errno>),
}

impl Proc<'_> {
    /// Queues `request` for `server`'s proxy (answered "gone" at once without the server).
    fn post<const N: usize>(&mut self, server: Server, request: Wire<N>, then: Then) {
        if self.clients.ep(server).is_none() {
            self.complete(server, then, &Answer::Gone);
            return;
        }
        let request = request.widen();
        self.links[server as usize]
            .queue
            .push_back(Job { request, then });
        self.dispatch(server);
    }

    /// A request to the file server whose answer nobody needs (`Close`, `Release`).
    pub(super) fn post_quiet<const N: usize>(&mut self, request: Wire<N>) {
        self.post(Server::File, request, Then::Quiet);
    }

    /// Tells the servers `notice` (a task's exit: the console server too); a refusal is
    /// logged.
    pub(super) fn notice(&mut self, notice: ServerControl) {
        for server in Server::NOTICED {
            if self.clients.ep(server).is_some() {
                self.post(server, notice.encode(), Then::Notice(notice));
            }
        }
    }

    /// Gives `server`'s proxy its next job if it waits for one.
    fn dispatch(&mut self, server: Server) {
        let i = server as usize;
        if self.links[i].sent.is_some() {
            return;
        }
        // Taken first: what `next_job` answers "gone" may queue more (and dispatch again).
        let Some(idle) = self.links[i].idle.take() else {
            return;
        };
        let Some((job, msg)) = self.next_job(server) else {
            self.links[i].idle = Some(idle);
            return;
        };
        if let Err(e) = proxy::wake(self.alloc, idle, &msg) {
            // The proxy is gone (it never faults: a bug). Its server's jobs go unanswered
            // and the deadline ends the server.
            rt::println!("init: the {} proxy is gone: {e:?}", server.name());
        }
        self.sent(server, job);
    }

    /// The next job for `server`'s proxy, and its message, built in init's IPC buffer: it
    /// must go out before anything else uses the buffer. Jobs that cannot be sent (the
    /// server is gone) are answered "gone".
    fn next_job(&mut self, server: Server) -> Option<(Job, Message)> {
        loop {
            let job = self.links[server as usize].queue.pop_front()?;
            let ep = self.clients.ep(server).map_or(NULL_CPTR, |e| e.cptr());
            match proxy::job_message(&job, ep) {
                Some(msg) if ep != NULL_CPTR => return Some((job, msg)),
                _ => self.complete(server, job.then, &Answer::Gone),
            }
        }
    }

    /// `job` is with `server`'s proxy now; the deadline runs.
    fn sent(&mut self, server: Server, job: Job) {
        self.links[server as usize].sent = Some((job, libmk::debug_ticks().0));
        self.arm_timer();
    }

    /// `server`'s proxy called init: with the answer to the job it had (none when it
    /// starts, or when init gave up on the job), and for its next job, which is the reply;
    /// `None`: the proxy waits in a saved reply.
    pub fn proxy_answered(&mut self, server: Server, r: &libmk::Reply) -> Option<Message> {
        let answer = proxy::answer_of(r);
        if let Some((job, _)) = self.links[server as usize].sent.take() {
            self.complete(server, job.then, &answer);
        }
        if !self.links[server as usize].queue.is_empty() {
            // The deadline runs from now (the timer armed first: the message goes last).
            self.arm_timer();
            if let Some((job, msg)) = self.next_job(server) {
                self.links[server as usize].sent = Some((job, libmk::debug_ticks().0));
                return Some(msg);
            }
        }
        match self.alloc.slot() {
            Ok(slot) if libmk::save_caller(slot).is_ok() => {
                self.links[server as usize].idle = Some(slot);
            }
            Ok(slot) => self.alloc.free_slot(slot),
            Err(_) => {}
        }
        None
    }

    /// Every job of `server` (sent and queued) answered "gone": it failed. The proxy, if in
    /// its `Call`, comes back with an error, which finds nothing sent.
    pub(super) fn fail_jobs(&mut self, server: Server) {
        let i = server as usize;
        let sent = self.links[i].sent.take();
        let queued = core::mem::take(&mut self.links[i].queue);
        for job in sent.map(|(j, _)| j).into_iter().chain(queued) {
            self.complete(server, job.then, &Answer::Gone);
        }
    }

    /// What follows a job's answer.
    fn complete(&mut self, server: Server, then: Then, answer: &Answer) {
        match then {
            Then::Notice(notice) => {
                if let Err(Some(e)) = answer.result::<()>() {
                    rt::println!("init: {} server refused {notice:?}: {e}", server.name());
                }
            }
            Then::Quiet => {}
            Then::Fork { child } => self.fork_answered(server, child, answer),
            Then::Exec { pid } => self.exec_answered(pid),
            Then::Load { id } => self.load_answered(id, answer),
            Then::SyncFor { id } => self.sync_answered(id, answer),
            Then::ConsoleSync => self.console_synced = true,
            Then::Sync => {
                self.synced = Some(match answer.result::<()>() {
                    Ok(()) | Err(Some(Errno::ENODEV)) => Ok(()), // no disk, nothing to write
                    Err(Some(e)) => Err(e),
                    Err(None) => Err(Errno::ETIMEDOUT),
                });
            }
        }
    }

    /// Arms init's timer, unless it is armed, to wake init half a deadline from now (so a
    /// server that stays silent is found between one and one and a half deadlines after the
    /// job was sent).
    fn arm_timer(&mut self) {
        if self.timer_armed {
            return;
        }
        if let Some((timer, notify)) = self.timer {
            let at = libmk::debug_ticks().0 + self.deadline_ticks.div_ceil(2).max(1);
            self.timer_armed = timer.arm(notify, proxy::TIMER_BITS, at).is_ok();
        }
    }

    /// init's timer fired: a server that has not answered a job within the deadline is
    /// treated as failed ([`Proc::end_server`]: its jobs are answered "gone", the file
    /// server is restarted).
    pub fn timer_fired(&mut self) {
        self.timer_armed = false;
        let now = libmk::debug_ticks().0;
        for server in Server::NOTICED {
            let late = self.links[server as usize]
                .sent
                .as_ref()
                .is_some_and(|(_, at)| now.saturating_sub(*at) > self.deadline_ticks);
            if late {
                rt::println!(
                    "init: {} server has not answered within init's deadline",
                    server.name()
                );
                self.end_server(server.pid(), "no answer to init within its deadline", 0);
                // Without a server entry (already ended) its jobs still go.
                self.fail_jobs(server);
            }
        }
        if self.links.iter().any(|l| l.sent.is_some()) {
            self.arm_timer();
        }
    }

    /// Answers the task waiting in saved reply `slot` with `msg`.
    fn answer_saved(&mut self, slot: u64, msg: &Message) {
        if Cap::<SavedReply>::from_cptr(slot).send(msg).is_err() {
            // The task was ended meanwhile: nobody to answer.
            let _ = crate::alloc::CNODE.delete(slot);
        }
        self.alloc.free_slot(slot);
    }

    /// Drops saved reply `slot` unanswered (its task ended, or restarts elsewhere).
    fn drop_saved(&mut self, slot: u64) {
        let _ = crate::alloc::CNODE.delete(slot);
        self.alloc.free_slot(slot);
    }

    /// Saves the current caller's reply in a new slot.
    pub fn save_caller(&mut self) -> Result<u64, Errno> {
        let slot = self.alloc.slot().map_err(|_| Errno::EAGAIN)?;
        match libmk::save_caller(slot) {
            Ok(_) => Ok(slot),
            Err(e) => {
                self.alloc.free_slot(slot);
                Err(Errno::from(e))
            }
        }
    }

    /// Answers the current caller now (init is about to stop serving).
    pub fn reply_now(&mut self, msg: &Message) {
        // The message's long part is in init's IPC buffer, which `save_caller` leaves alone.
        if let Ok(slot) = self.save_caller() {
            self.answer_saved(slot, msg);
        }
    }

    // --- spawn ---

    /// `spawn(name)` from `parent`, answered on `reply` when the program is loaded (`None`:
    /// the program `run=` names, started by init itself).
    pub fn spawn(&mut self, parent: u64, name: Name, reply: Option<u64>, args: ArgArea) {
        match self.may_add_child(parent) {
            Ok(()) => self.read_program(Purpose::Spawn { parent }, name, reply, args),
            Err(e) => self.spawned(parent, name, reply, Err(e), &args),
        }
    }

    fn spawned(
        &mut self,
        parent: u64,
        name: Name,
        reply: Option<u64>,
        program: Result<Program, Errno>,
        args: &ArgArea,
    ) {
        if parent != pid::INIT && !self.is_running(parent) {
            // The parent ended while the program was read.
            if let Ok(p) = program {
                self.done_loading(&p);
            }
            if let Some(slot) = reply {
                self.drop_saved(slot);
            }
            return;
        }
        let result = program.and_then(|p| self.spawn_with(parent, name, p, args));
        match reply {
            Some(slot) => self.answer_saved(slot, &answer(result)),
            None => match result {
                Ok(pid) => {
                    rt::println!("init: running {} (pid {pid})", self.source(name.as_str()));
                    self.watch(pid);
                    // The session's program is the console's foreground task: Ctrl-C ends
                    // it (a shell hands that on to its children). Sent before the program
                    // runs: the console server and init's proxy outrank it.
                    self.post(
                        Server::Console,
                        ConsoleRequest::Foreground { pid }.encode(),
                        Then::Quiet,
                    );
                }
                Err(e) => {
                    rt::println!("init: cannot run {}: {e}", name.as_str());
                    self.boot_failed = true;
                }
            },
        }
    }

    // --- exec ---

    /// `exec(name)` from `pid`, answered on `reply` if it fails (a task that execs restarts
    /// in its new program instead).
    pub fn exec(&mut self, pid: u64, name: Name, reply: u64, args: ArgArea) {
        if self.is_running(pid) {
            self.read_program(Purpose::Exec { pid }, name, Some(reply), args);
        } else {
            self.answer_saved(reply, &answer::<()>(Err(Errno::ESRCH)));
        }
    }

    fn execed(
        &mut self,
        pid: u64,
        name: Name,
        reply: u64,
        program: Result<Program, Errno>,
        args: &ArgArea,
    ) {
        if !self.is_running(pid) {
            if let Ok(p) = program {
                self.done_loading(&p);
            }
            self.drop_saved(reply);
            return;
        }
        match program.and_then(|p| self.exec_with(pid, name, p, args)) {
            // The task restarts in its new program (or was killed): no answer.
            Ok(()) => self.drop_saved(reply),
            Err(e) => self.answer_saved(reply, &answer::<()>(Err(e))),
        }
    }

    /// `TaskExec` for `pid` to the servers there are; the task runs on when they answered.
    pub(super) fn exec_notice(&mut self, pid: u64) {
        let notice = ServerControl::TaskExec { pid };
        let servers: liballoc::vec::Vec<Server> = Server::ALL
            .into_iter()
            .filter(|&s| self.clients.ep(s).is_some())
            .collect();
        self.execs.insert(pid, servers.len() as u8 + 1);
        for s in servers {
            self.post(s, notice.encode(), Then::Exec { pid });
        }
    }

    /// The exec of `pid` is ready to run on: resumes the task unless a server's answer is
    /// still to come (then the last answer resumes it).
    pub(super) fn exec_resume(&mut self, pid: u64) -> Result<(), Errno> {
        self.exec_answered(pid);
        Ok(())
    }

    /// One of the answers (or the end of loading) the exec of `pid` waits for.
    fn exec_answered(&mut self, pid: u64) {
        let Some(waiting) = self.execs.get_mut(&pid) else {
            return;
        };
        *waiting = waiting.saturating_sub(1);
        if *waiting > 0 {
            return;
        }
        self.execs.remove(&pid);
        if let Some(Task {
            state: State::Running(objs),
            ..
        }) = self.tasks.get(&pid)
            && let Err(e) = objs.tcb.resume()
        {
            rt::println!("init: exec in task {pid}: cannot resume it: {e:?}");
            self.end(pid, WaitStatus::Killed, 0);
        }
    }

    // --- fork ---

    /// `fork` from `parent`, answered on `reply` once the servers copied the descriptors.
    pub fn fork(&mut self, parent: u64, sp: u64, pc: u64, reply: u64) {
        let (child, name, objs) = match self.fork_objects(parent, sp, pc) {
            Ok(f) => f,
            Err(e) => return self.answer_saved(reply, &answer::<()>(Err(e))),
        };
        let servers: liballoc::vec::Vec<Server> = Server::ALL
            .into_iter()
            .filter(|&s| self.clients.ep(s).is_some())
            .collect();
        self.children.insert((parent, child));
        self.forks.insert(
            child,
            Forking {
                parent,
                name,
                objs,
                reply,
                waiting: servers.len() as u8,
                refused: None,
                accepted: [false; 2],
            },
        );
        if servers.is_empty() {
            return self.fork_done(child);
        }
        let req = ServerControl::TaskFork { parent, child };
        for s in servers {
            self.post(s, req.encode(), Then::Fork { child });
        }
    }

    fn fork_answered(&mut self, server: Server, child: u64, answer: &Answer) {
        let Some(f) = self.forks.get_mut(&child) else {
            return;
        };
        f.waiting = f.waiting.saturating_sub(1);
        match answer.result::<()>() {
            Ok(()) => f.accepted[server as usize] = true,
            // A server without a disk has nothing to copy; one that is gone has nothing of
            // anybody's (its next instance starts empty).
            Err(None | Some(Errno::ENODEV)) => {}
            Err(Some(e)) => {
                rt::println!(
                    "init: {} server refused {:?}: {e}",
                    server.name(),
                    ServerControl::TaskFork {
                        parent: f.parent,
                        child
                    }
                );
                f.refused.get_or_insert(e);
            }
        }
        if f.waiting == 0 {
            self.fork_done(child);
        }
    }

    /// Every server answered the fork of `child`: it runs (and its parent learns its pid),
    /// or it goes (a server refused: `EAGAIN`, as Linux when out of resources; or its parent
    /// ended meanwhile).
    fn fork_done(&mut self, child: u64) {
        let Some(f) = self.forks.remove(&child) else {
            return;
        };
        let result = if !self.is_running(f.parent) {
            Err(None)
        } else if f.refused.is_some() {
            Err(Some(Errno::EAGAIN))
        } else {
            Ok(())
        };
        match result {
            Ok(()) => {
                self.insert_task(
                    child,
                    Task {
                        name: f.name,
                        parent: f.parent,
                        state: State::Running(f.objs),
                    },
                );
                // The parent first, then the child (as a direct reply had them run).
                self.answer_saved(f.reply, &answer(Ok(child)));
                if let Err(e) = f.objs.tcb.resume() {
                    rt::println!("init: fork: cannot start task {child}: {e:?}");
                    self.end(child, WaitStatus::Killed, 0);
                }
            }
            Err(e) => {
                self.children.remove(&(f.parent, child));
                self.unfork(child, f.objs, f.accepted);
                match e {
                    Some(e) => self.answer_saved(f.reply, &answer::<()>(Err(e))),
                    None => self.drop_saved(f.reply),
                }
            }
        }
    }

    /// Takes back a child that never ran.
    fn unfork(&mut self, child: u64, objs: Objects, accepted: [bool; 2]) {
        let _ = VmControl::destroy(&self.vm, child);
        for s in Server::ALL {
            if accepted[s as usize] {
                let notice = ServerControl::TaskExit { pid: child };
                self.post(s, notice.encode(), Then::Notice(notice));
            }
        }
        self.free_objects(objs);
    }

    /// At power-off: the children still being forked go (their parents are ended).
    pub(super) fn end_forks(&mut self) {
        let children: liballoc::vec::Vec<u64> = self.forks.keys().copied().collect();
        for child in children {
            self.fork_done(child);
        }
    }

    // --- programs from the disk ---

    /// Reads program `name` from the disk (`bin/<name>`: `Open`, `Read`s of its headers,
    /// `GetObject`), each step a job of the file server's; falls back to the initrd as
    /// [`Proc::initrd_program`] says.
    fn read_program(&mut self, purpose: Purpose, name: Name, reply: Option<u64>, args: ArgArea) {
        let id = self.next_load;
        self.next_load += 1;
        self.loads.insert(
            id,
            Loading {
                purpose,
                name,
                reply,
                head: None,
                image: None,
                args,
            },
        );
        match servers::open_program(name.as_str()) {
            Ok(open) => self.post(Server::File, open, Then::Load { id }),
            Err(e) => self.loaded(id, Err(e)),
        }
    }

    fn load_answered(&mut self, id: u64, answer: &Answer) {
        let Some(l) = self.loads.get_mut(&id) else {
            return;
        };
        let gone = Errno::ENODEV;
        let mut close = None;
        let step = match (&mut l.head, &l.image) {
            // `Open`'s answer.
            (None, _) => match answer.result::<OpenReply>() {
                Ok(OpenReply { fd, size }) => {
                    let head = l.head.insert(Head::new(fd, size));
                    match head.next_read() {
                        Some(read) => Step::Post(read),
                        None => Self::headers_read(l, &mut close),
                    }
                }
                Err(e) => Step::Done(Err(e.unwrap_or(gone))),
            },
            // A `Read`'s.
            (Some(head), None) => match answer.words().map(|w| head.add(w)) {
                Some(Ok(true)) => match head.next_read() {
                    Some(read) => Step::Post(read),
                    None => Self::headers_read(l, &mut close),
                },
                Some(Ok(false)) => Self::headers_read(l, &mut close),
                Some(Err(e)) => {
                    close = Some(head.fd);
                    Step::Done(Err(e))
                }
                None => Step::Done(Err(gone)),
            },
            // `GetObject`'s.
            (Some(head), Some(_)) => {
                let fd = head.fd;
                match (answer.result::<OpenReply>(), l.image.take()) {
                    (Ok(OpenReply { fd: handle, .. }), Some(image)) => {
                        Step::Done(Ok(DiskProgram {
                            fd,
                            handle,
                            claimed: core::cell::Cell::new(false),
                            image,
                        }))
                    }
                    (Err(Some(e)), _) => {
                        close = Some(fd);
                        Step::Done(Err(e))
                    }
                    _ => Step::Done(Err(gone)),
                }
            }
        };
        if let Some(fd) = close {
            self.post_quiet(servers::close(fd));
        }
        match step {
            Step::Post(request) => self.post(Server::File, request, Then::Load { id }),
            Step::Done(result) => self.loaded(id, result),
        }
    }

    /// The headers are in: checked, then `GetObject` (or `ENOEXEC`, the descriptor closed).
    fn headers_read(l: &mut Loading, close: &mut Option<u64>) -> Step {
        let Some(head) = l.head.as_mut() else {
            return Step::Done(Err(Errno::EIO));
        };
        match head.image() {
            Ok(image) => {
                l.image = Some(image);
                Step::Post(servers::get_object(head.fd).widen())
            }
            Err(e) => {
                *close = Some(head.fd);
                Step::Done(Err(e))
            }
        }
    }

    /// Load `id` is over: the spawn or exec goes on with the disk's program, or the
    /// initrd's.
    fn loaded(&mut self, id: u64, result: Result<DiskProgram, Errno>) {
        let Some(l) = self.loads.remove(&id) else {
            return;
        };
        let program = match result {
            Ok(d) => {
                self.loaded_from = "the disk";
                Ok(Program::Disk(d))
            }
            Err(e) => self.initrd_program(l.name.as_str(), e),
        };
        match (l.purpose, l.reply) {
            (Purpose::Spawn { parent }, reply) => {
                self.spawned(parent, l.name, reply, program, &l.args)
            }
            (Purpose::Exec { pid }, Some(reply)) => {
                self.execed(pid, l.name, reply, program, &l.args)
            }
            (Purpose::Exec { .. }, None) => {
                if let Ok(p) = program {
                    self.done_loading(&p);
                }
            }
        }
    }

    // --- sync ---

    /// A task's `sync()`, answered on `reply` once both servers answered a `SyncAll` queued
    /// behind everything init asked of them before (notices of ended tasks included).
    pub fn sync_for(&mut self, reply: u64) {
        let id = self.next_sync;
        self.next_sync += 1;
        self.syncs
            .insert(id, (reply, Server::ALL.len() as u8, Ok(())));
        for server in Server::ALL {
            // Without the server (or once it is gone) the answer is "gone" at once.
            self.post(
                server,
                ServerControl::SyncAll.encode(),
                Then::SyncFor { id },
            );
        }
    }

    fn sync_answered(&mut self, id: u64, got: &Answer) {
        let Some(s) = self.syncs.get_mut(&id) else {
            return;
        };
        s.1 -= 1;
        // A server that is gone has nothing left to write; a failed write-back is `EIO`.
        if let Err(Some(e)) = got.result::<()>()
            && e != Errno::ENODEV
            && s.2.is_ok()
        {
            s.2 = Err(e);
        }
        if s.1 == 0
            && let Some((reply, _, result)) = self.syncs.remove(&id)
        {
            self.answer_saved(reply, &answer(result));
        }
    }

    // --- power-off ---

    /// Asks the file server to write back every dirty block (before power-off), and the
    /// console server to send out every unfinished line and empty the UART (behind the
    /// notices of the tasks that ended), serving init's endpoint `ep` (the proxies'
    /// answers, the deadline) until both have answered.
    pub fn sync_all(&mut self, ep: Cap<Endpoint>) -> Result<(), Errno> {
        self.end_forks();
        self.console_synced = false;
        // Without the console server (or once it is gone) the answer is "gone" at once.
        self.post(
            Server::Console,
            ServerControl::SyncAll.encode(),
            Then::ConsoleSync,
        );
        self.synced = None;
        if self.clients.ep(Server::File).is_none() {
            self.synced = Some(Ok(()));
        } else {
            self.post(Server::File, ServerControl::SyncAll.encode(), Then::Sync);
        }
        let mut reply = None;
        while self.synced.is_none() || !self.console_synced {
            reply = self.step(ep, reply);
        }
        if let Some(m) = reply {
            self.reply_now(&m);
        }
        self.synced.take().unwrap_or(Ok(()))
    }
}
