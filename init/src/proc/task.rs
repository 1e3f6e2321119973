//! Tasks: their kernel objects (all carved from one untyped per task, so revoking it gives
//! everything back), their life (spawn, fork, exec, end) and the parent/child relation that
//! `wait` reads.
//!
//! A task's CNode (`proto::task_slots`): VM and PROC are vm's and init's endpoints badged
//! with the pid (WRITE), FILE and SHM the file and shm servers' (also badged), IPC_BUFFER its IPC buffer frame, CHILD_NOTIFY a notification init
//! signals when one of its children ends.
//!
//! Arguments (`proto::args`): every task has two argument areas, frames of its untyped that
//! only init holds capabilities to: its own arguments at `USER_ARGS` (read-only to it),
//! written by init before the program starts (spawn, exec; a fork child gets a copy of its
//! parent's), and the outgoing area at `USER_ARGS_OUT` (read-write), which init reads for
//! `SpawnArgs` and `ExecArgs`.

mod jobs;

use super::Ended;
use super::initrd::Initrd;
use super::mem::Window;
use super::mem::retype;
use super::proxy::{Link, Server};
use super::server::{Roots, ServerThread, Servers};
use super::servers::{BIN_DIR, Clients, DiskProgram};
use super::vm::Vm;
use crate::alloc::{Alloc, CNODE};
use abi::bootinfo::BootInfo;
use abi::message::FaultLabel;
use abi::object::{CapRights, ObjectType};
use jobs::{Forking, Loading};
use kernel_core::elf::{UserImage, parse_user_image};
use liballoc::collections::{BTreeMap, BTreeSet};
use liballoc::vec::Vec;
use libmk::{CNode, Cap, Endpoint, Frame, Notification, Reply, Tcb, Timer, Untyped, VSpace};
use proto::args::{AREA_BITS, AREA_BYTES, Args, HEADER_BYTES};
use proto::object::Pager;
use proto::{
    Errno, Kill, KillRecord, Name, PAGE_SIZE, ServerControl, USER_ARGS, USER_ARGS_OUT,
    USER_IPC_BUFFER, USER_STACK_SIZE, USER_STACK_TOP, VmControl, WaitReply, WaitStatus, pid, prot,
    task_slots,
};

/// log2 of the untyped each task's objects come from (CNode 16 KiB, VSpace 8 KiB, IPC
/// buffer 4 KiB, TCB 2 KiB, notification: 32 KiB with alignment; then its two argument
/// areas of 8 KiB each: 48 KiB).
const TASK_UNTYPED_BITS: u64 = 16;
/// Children a task may have at once, running or ended and not yet waited for (`EAGAIN`
/// beyond, as Linux's `RLIMIT_NPROC`), and tasks in all (`EAGAIN` beyond): what init's
/// heap and its RAM reserve hold, whatever a task that forks forks.
pub const MAX_CHILDREN: usize = 128;
pub const MAX_TASKS: usize = 1024;
pub(super) const TASK_PRIORITY: u64 = 100;
/// How many times init restarts the file server after it failed; after that it stays
/// ended (a server that keeps failing would only keep failing).
pub const MAX_RESTARTS: u32 = 3;

/// A task's kernel objects, each in a slot of init's CNode.
#[derive(Clone, Copy)]
struct Objects {
    ut: Cap<Untyped>,
    cnode: Cap<CNode>,
    tcb: Cap<Tcb>,
    vspace: Cap<VSpace>,
    ipc: Cap<Frame>,
    notify: Cap<Notification>,
    /// Its own arguments (mapped read-only at `USER_ARGS`) and its outgoing argument area
    /// (read-write at `USER_ARGS_OUT`).
    args: Cap<Frame>,
    args_out: Cap<Frame>,
}

/// A checked argument area (`proto::args`) in canonical form, as init writes it into a
/// task's `USER_ARGS` frame: the header and the strings, nothing after them.
pub struct ArgArea(Vec<u8>);

impl ArgArea {
    /// argv = [`name`] and no environment (`Spawn`, `Exec`, and a program named alone).
    pub fn of_name(name: &str) -> Self {
        Self::new(core::iter::once(name), core::iter::empty()).unwrap_or_else(|_| Self(Vec::new()))
    }

    /// `argv` and `envp` as an area: `E2BIG` or `EINVAL` as `proto::args::encode` says.
    pub fn new<'a, 'e>(
        argv: impl Iterator<Item = &'a str> + Clone,
        envp: impl Iterator<Item = &'e str> + Clone,
    ) -> Result<Self, Errno> {
        let mut buf = liballoc::vec![0u8; AREA_BYTES];
        let n = proto::args::encode(argv, envp, &mut buf)?;
        buf.truncate(n);
        Ok(Self(buf))
    }

    /// The area `bytes` (a copy init made of a frame a task can write) checked and put in
    /// canonical form.
    fn checked(bytes: &[u8]) -> Result<Self, Errno> {
        let args = Args::decode(bytes)?;
        Self::new(args.argv(), args.envp())
    }
}

enum State {
    Running(Objects),
    /// Ended, waiting for its parent's `wait`.
    Zombie {
        how: WaitStatus,
        value: u64,
    },
}

/// A program ready to load: from the disk (preferred while the file server runs) or from
/// the initrd (the servers, and every program when there is no disk).
enum Program {
    Disk(DiskProgram),
    Initrd {
        file: &'static [u8],
        image: UserImage,
    },
}

impl Program {
    fn image(&self) -> &UserImage {
        match self {
            Program::Disk(d) => &d.image,
            Program::Initrd { image, .. } => image,
        }
    }
}

struct Task {
    name: Name,
    parent: u64,
    state: State,
}

/// The process server's state.
pub struct Proc<'a> {
    alloc: &'a mut Alloc,
    initrd: Initrd,
    vm: Vm,
    vm_ep: Cap<Endpoint>,
    init_ep: Cap<Endpoint>,
    /// The file server's endpoint, unbadged (`None` if it did not start).
    file_ep: Option<Cap<Endpoint>>,
    /// The shm server's endpoint, unbadged (`None` if it did not start).
    shm_ep: Option<Cap<Endpoint>>,
    /// The console server's endpoint, unbadged (`None` if it did not start).
    console_ep: Option<Cap<Endpoint>>,
    /// init's own capabilities to the file and shm servers.
    clients: Clients,
    /// The servers' threads still running.
    servers: Vec<ServerThread>,
    /// For restarting the file server: the boot information, init's window, the untypeds
    /// it is built from, and how many times it was restarted.
    info: &'static BootInfo,
    window: Window,
    file_roots: Roots,
    /// Bytes of RAM given to zero at boot (`Memory`).
    zero_bytes: u64,
    file_restarts: u32,
    /// Where the last program loaded came from, for init's log.
    pub loaded_from: &'static str,
    tasks: BTreeMap<u64, Task>,
    /// (parent, child) of every task and of every child being forked, and of the ended
    /// tasks not yet waited for: a parent's children are a range, so counting them,
    /// `wait` and handing orphans to init look at that parent's alone.
    children: BTreeSet<(u64, u64)>,
    zombies: BTreeSet<(u64, u64)>,
    next_pid: u64,
    /// Task untypeds revoked and ready for reuse.
    free_untyped: Vec<Cap<Untyped>>,
    watched: Option<u64>,
    ended: Option<Ended>,
    /// Whether the program `run=` names could not be started.
    pub boot_failed: bool,
    /// Per server (`proxy::Server`): the jobs for its proxy, queued and sent.
    links: [Link; 3],
    /// init's timer and notification (for deadlines), whether the timer is armed, and how
    /// long a server may take with one job (timer ticks).
    timer: Option<(Cap<Timer>, Cap<Notification>)>,
    timer_armed: bool,
    deadline_ticks: u64,
    /// Forks waiting for the servers' `TaskFork` answers, by child pid.
    forks: BTreeMap<u64, Forking>,
    /// Execs waiting for the servers' `TaskExec` answers before the task runs on: by pid,
    /// how many answers are still to come.
    execs: BTreeMap<u64, u8>,
    /// Programs being read from the disk, by load number.
    loads: BTreeMap<u64, Loading>,
    next_load: u64,
    /// `SyncAll`'s result, once the file server answered it.
    synced: Option<Result<(), Errno>>,
    /// Whether the console server answered its `SyncAll` (or is gone).
    console_synced: bool,
    /// Tasks' `sync()` calls waiting for the servers, by number: the saved reply, the
    /// answers still to come, the first error.
    syncs: BTreeMap<u64, (u64, u8, Result<(), Errno>)>,
    next_sync: u64,
}

impl<'a> Proc<'a> {
    pub fn new(
        alloc: &'a mut Alloc,
        initrd: Initrd,
        servers: Servers,
        info: &'static BootInfo,
        window: Window,
    ) -> Self {
        let clients = Clients::new(alloc, servers.file_ep, servers.shm_ep, servers.console_ep);
        for server in Server::NOTICED {
            if let Err(e) = super::proxy::start(alloc, server, servers.init_ep) {
                rt::println!("init: no proxy for the {} server: {e:?}", server.name());
            }
        }
        let timer = alloc
            .retype_global(ObjectType::Timer, 0)
            .ok()
            .map(|t| (Cap::from_cptr(t), servers.notify));
        let args = info.bootargs();
        let ms = abi::bootinfo::bootarg_u64(args, "init.deadline")
            .or_else(|| abi::bootinfo::bootarg_u64(args, "vm.deadline"))
            .filter(|&ms| ms > 0)
            .unwrap_or(super::proxy::DEFAULT_DEADLINE_MS);
        let deadline_ticks = ms.saturating_mul(libmk::debug_ticks().1).div_ceil(1000);
        Self {
            boot_failed: false,
            links: Default::default(),
            timer,
            timer_armed: false,
            deadline_ticks,
            forks: BTreeMap::new(),
            execs: BTreeMap::new(),
            loads: BTreeMap::new(),
            next_load: 0,
            synced: None,
            console_synced: false,
            syncs: BTreeMap::new(),
            next_sync: 0,
            info,
            window,
            file_roots: servers.file_roots,
            zero_bytes: servers.zero_bytes,
            file_restarts: 0,
            clients,
            loaded_from: "",
            alloc,
            initrd,
            vm: Vm::new(servers.vm_init),
            vm_ep: servers.vm_ep,
            init_ep: servers.init_ep,
            file_ep: servers.file_ep,
            shm_ep: servers.shm_ep,
            console_ep: servers.console_ep,
            servers: servers.threads,
            tasks: BTreeMap::new(),
            children: BTreeSet::new(),
            zombies: BTreeSet::new(),
            next_pid: pid::FIRST_USER,
            free_untyped: Vec::new(),
            watched: None,
            ended: None,
        }
    }

    /// Server `server` stopped (a fault, a panic: the message its thread's fault sent to
    /// init). It ends alone: its thread is deleted, so a client waiting for its answer gets an
    /// error instead of waiting for ever, and its endpoint is revoked and deleted, so every
    /// capability to it (the tasks', vm's, init's) is gone and later calls fail at once; vm
    /// then answers faults on that pager's regions with `BUS`. The rest runs on. The file
    /// server is then started again ([`Proc::restart_file`]).
    pub fn server_failed(&mut self, server: u64, fault: &Reply) {
        let how = FaultLabel::try_from(fault.info().label).map_or("stopped", |l| match l {
            FaultLabel::VmFault => "page fault",
            FaultLabel::UnknownSyscall => "unknown system call",
            FaultLabel::UndefinedInstruction => "undefined instruction",
            FaultLabel::AlignmentFault => "alignment fault",
            FaultLabel::UserException => "exception",
        });
        self.end_server(server, how, fault.mrs[0]);
    }

    /// Ends server `server` as [`Proc::server_failed`] does; `how` and `addr` say why.
    fn end_server(&mut self, server: u64, how: &str, addr: u64) {
        let Some(i) = self.servers.iter().position(|s| s.pid == server) else {
            return;
        };
        // What init holds before, to show that a restart costs it nothing.
        let held = self.held();
        let s = self.servers.remove(i);
        rt::println!(
            "init: server {} (pid {}) failed ({how}, address {addr:#x}); it is ended, the rest runs on",
            s.name,
            s.pid,
        );
        let _ = CNODE.delete(s.tcb.cptr());
        let ep = match server {
            pid::FILE => self.file_ep.take(),
            pid::SHM => self.shm_ep.take(),
            pid::CONSOLE => self.console_ep.take(),
            _ => None,
        };
        if let Some(ep) = ep {
            let _ = CNODE.revoke(ep.cptr());
            let _ = CNODE.delete(ep.cptr());
            // The file server's slots go back with its roots (`Roots::revoke`).
            if server != pid::FILE {
                self.alloc.free_slot(ep.cptr());
            }
            self.clients.forget(self.alloc, server);
        }
        if server == pid::FILE && self.restart_file() {
            let cost = if self.held() == held {
                "init's memory and slots as before"
            } else {
                "init holds more memory or slots than before"
            };
            rt::println!(
                "init: restarted server file (pid {}), restart {} of {MAX_RESTARTS}; {cost}",
                pid::FILE,
                self.file_restarts
            );
        }
        // What init asked of it and it did not answer is answered "gone" (and what init
        // queued for it dropped: the new instance knows nothing of it).
        if let Some(s) = Server::NOTICED.into_iter().find(|s| s.pid() == server) {
            self.fail_jobs(s);
        }
    }

    /// init's free memory and used slots (after a restart they must be as before).
    fn held(&self) -> (u64, usize) {
        let used = self.alloc.used_slots();
        let slots = used.iter().map(|w| w.count_ones() as usize).sum();
        (self.alloc.free_bytes(), slots)
    }

    /// The file server failed: a fresh instance, as MINIX 3's reincarnation server does,
    /// at most [`MAX_RESTARTS`] times. Everything of the dead one is taken back (its
    /// untypeds revoked) and the new one built from the same memory; then every running
    /// task gets a capability to the new endpoint in its FILE slot, vm gets one
    /// (`SetPager`, after which regions naming the old instance's handles are `BUS`), and
    /// so does init. What was open in the dead server is gone: its descriptors are
    /// `EBADF` in the new one, and its dirty page-cache blocks are lost.
    fn restart_file(&mut self) -> bool {
        if self.file_restarts >= MAX_RESTARTS {
            rt::println!(
                "init: server file failed {} times; it is not restarted again",
                self.file_restarts + 1
            );
            return false;
        }
        self.file_restarts += 1;
        let started = super::server::restart_file(
            self.alloc,
            &mut self.window,
            &self.initrd,
            self.info,
            self.init_ep,
            &mut self.file_roots,
            self.file_restarts,
        );
        let (ep, tcb) = match started {
            Ok(r) => r,
            Err(e) => {
                rt::println!("init: restarting server file failed: {e:?}; it stays ended");
                return false;
            }
        };
        self.servers.push(ServerThread::new("file", pid::FILE, tcb));
        self.file_ep = Some(ep);
        self.clients.set_file(self.alloc, ep);
        for (&pid, task) in &self.tasks {
            if let State::Running(objs) = task.state {
                let _ = objs.cnode.delete(task_slots::FILE);
                if let Err(e) =
                    objs.cnode
                        .mint(task_slots::FILE, CNODE, ep.cptr(), CapRights::WRITE, pid)
                {
                    rt::println!("init: task {pid} gets no file server: {e:?}");
                }
                // Its runtime polls the notification before each `read` and `write` of a
                // file mapped for them (`rt::fastio`): the windows of the old instance are
                // gone, and their descriptors take the message path (`EBADF`).
                let _ = objs.notify.signal();
            }
        }
        let given = self.alloc.slot().map_err(Errno::from).and_then(|slot| {
            let r = CNODE
                .mint(
                    slot,
                    CNODE,
                    ep.cptr(),
                    CapRights(CapRights::WRITE.0 | CapRights::GRANT.0),
                    pid::VM,
                )
                .map_err(Errno::from)
                .and_then(|()| self.vm.set_pager(Pager::File, slot));
            let _ = CNODE.delete(slot);
            self.alloc.free_slot(slot);
            r
        });
        if let Err(e) = given {
            rt::println!("init: vm did not take the new file server: {e}");
        }
        true
    }

    /// Reports how task `pid` (a child of init) ends through [`Proc::take_ended`].
    pub fn watch(&mut self, pid: u64) {
        self.watched = Some(pid);
    }

    /// Whether `pid` is the task [`Proc::watch`] watches (the session's program).
    pub fn is_watched(&self, pid: u64) -> bool {
        self.watched == Some(pid)
    }

    pub fn take_ended(&mut self) -> Option<Ended> {
        self.ended.take()
    }

    pub fn is_running(&self, pid: u64) -> bool {
        matches!(
            self.tasks.get(&pid),
            Some(Task {
                state: State::Running(_),
                ..
            })
        )
    }

    /// `TaskAt { from }`: the task with the lowest pid from `from` on (`ESRCH` past the
    /// last), for `ps`.
    pub fn task_at(&self, from: u64) -> Result<proto::TaskEntry, Errno> {
        let (&pid, t) = self.tasks.range(from..).next().ok_or(Errno::ESRCH)?;
        Ok(proto::TaskEntry {
            pid,
            parent: t.parent,
            state: match t.state {
                State::Running(_) => proto::TaskState::Running,
                State::Zombie { .. } => proto::TaskState::Zombie,
            },
            name: t.name,
        })
    }

    /// `Memory`: the RAM and what init gave the servers (`Budgets::for_ram`, as
    /// `server::start` gave them), and what it has left.
    pub fn memory(&self) -> proto::MemoryReply {
        let b = proto::startup::Budgets::for_ram(self.info.ram_total);
        proto::MemoryReply {
            ram: self.info.ram_total,
            init_free: self.alloc.free_bytes(),
            zero: self.zero_bytes,
            vm_heap: b.vm_heap,
            vm_tables: 1u64.checked_shl(b.vm_tables_bits as u32).unwrap_or(0),
            file_heap: if self.file_ep.is_some() {
                b.file_heap
            } else {
                0
            },
            shm: if self.shm_ep.is_some() {
                1u64.checked_shl(b.shm_bits as u32).unwrap_or(0)
            } else {
                0
            },
        }
    }

    pub fn parent_of(&self, pid: u64) -> u64 {
        self.tasks.get(&pid).map_or(0, |t| t.parent)
    }

    /// The program when the disk could not give it (`disk_error`, for any reason: no such
    /// file, no disk, a damaged volume's `EIO`, not a program, a server that failed, ...):
    /// the initrd's `name`. When the initrd has no such program either: the disk's error
    /// (`ENOENT` when neither has it).
    fn initrd_program(&mut self, name: &str, disk_error: Errno) -> Result<Program, Errno> {
        let disk_error = match disk_error {
            Errno::ENODEV | Errno::ENAMETOOLONG => Errno::ENOENT,
            e => e,
        };
        // The servers' images (and init's) are in the initrd too, but no program a task
        // may start: it would run as a task with a startup page it does not have.
        if super::server::IMAGES.contains(&name) {
            return Err(disk_error);
        }
        let file = self.initrd.find(name).ok_or(disk_error)?;
        let image = parse_user_image(file).map_err(|_| Errno::ENOEXEC)?;
        self.loaded_from = "the initrd";
        Ok(Program::Initrd { file, image })
    }

    /// Where `program` says it came from, for a log line: `bin/hello on the disk`.
    pub fn source(&self, name: &str) -> liballoc::string::String {
        match self.loaded_from {
            "the disk" => liballoc::format!("{BIN_DIR}{name} on the disk"),
            other => liballoc::format!("{name} in {other}"),
        }
    }

    /// `EAGAIN` unless `parent` may have one more child and the system one more task (or
    /// init's heap is low).
    fn may_add_child(&self, parent: u64) -> Result<(), Errno> {
        // (init's children are the program it runs and adopted orphans: no per-parent limit.)
        // Children being forked count as children already.
        let too_many = parent != pid::INIT && self.children_of(parent).count() >= MAX_CHILDREN;
        let tasks = self.tasks.len() + self.forks.len();
        if too_many || tasks >= MAX_TASKS || rt::heap::is_low() {
            return Err(Errno::EAGAIN);
        }
        Ok(())
    }

    /// A new task running `program` (`name`), child of `parent`; the program is given
    /// back ([`Proc::done_loading`]) whatever happens.
    fn spawn_with(
        &mut self,
        parent: u64,
        name: Name,
        program: Program,
        args: &ArgArea,
    ) -> Result<u64, Errno> {
        if let Err(e) = self.may_add_child(parent) {
            self.done_loading(&program);
            return Err(e);
        }
        let entry = program.image().entry;
        let pid = self.new_pid();
        let objs = match self.make_objects(pid) {
            Ok(o) => o,
            Err(e) => {
                self.done_loading(&program);
                return Err(e);
            }
        };
        let result = self
            .vm
            .new_space(pid, objs.vspace)
            .and_then(|()| VmControl::set_name(&self.vm, pid, name))
            .and_then(|()| self.load(pid, &program))
            .and_then(|()| {
                self.vm
                    .map_frame(pid, USER_IPC_BUFFER, prot::READ | prot::WRITE, objs.ipc)
            })
            .and_then(|()| self.map_arg_areas(pid, &objs))
            .and_then(|()| self.write_args(objs.args, args, true))
            .and_then(|()| {
                objs.tcb
                    .start(entry, USER_STACK_TOP, pid)
                    .map_err(Errno::from)
            });
        self.done_loading(&program);
        if let Err(e) = result {
            let _ = VmControl::destroy(&self.vm, pid);
            self.free_objects(objs);
            return Err(e);
        }
        self.insert_task(
            pid,
            Task {
                name,
                parent,
                state: State::Running(objs),
            },
        );
        Ok(pid)
    }

    /// A copy of `parent` that starts at `pc` with `sp` and `x0` = 0: its objects and
    /// address space, not yet running (the servers copy its descriptors next).
    fn fork_objects(
        &mut self,
        parent: u64,
        sp: u64,
        pc: u64,
    ) -> Result<(u64, Name, Objects), Errno> {
        let name = self.tasks.get(&parent).ok_or(Errno::ESRCH)?.name;
        self.may_add_child(parent)?;
        // The child's arguments are its parent's.
        let args = match self.tasks.get(&parent) {
            Some(Task {
                state: State::Running(p),
                ..
            }) => self.read_args(p.args),
            _ => Err(Errno::ESRCH),
        }
        .unwrap_or_else(|_| ArgArea::of_name(name.as_str()));
        let pid = self.new_pid();
        let objs = self.make_objects(pid)?;
        let result = self
            .vm
            .fork_space(parent, pid, objs.vspace)
            .and_then(|()| VmControl::set_name(&self.vm, pid, name))
            .and_then(|()| {
                self.vm
                    .map_frame(pid, USER_IPC_BUFFER, prot::READ | prot::WRITE, objs.ipc)
            })
            .and_then(|()| self.map_arg_areas(pid, &objs))
            .and_then(|()| self.write_args(objs.args, &args, true))
            .and_then(|()| objs.tcb.write_registers(&[pc, sp, 0]).map_err(Errno::from));
        if let Err(e) = result {
            let _ = VmControl::destroy(&self.vm, pid);
            self.free_objects(objs);
            return Err(e);
        }
        Ok((pid, name, objs))
    }

    /// Replaces task `pid`'s program with `program` (`name`) and restarts it there once the
    /// servers have closed its close-on-exec descriptors. An error before the old image is
    /// gone is returned; after, the task is killed. The program is given back either way.
    fn exec_with(
        &mut self,
        pid: u64,
        name: Name,
        program: Program,
        args: &ArgArea,
    ) -> Result<(), Errno> {
        let Some(Task {
            state: State::Running(objs),
            ..
        }) = self.tasks.get(&pid)
        else {
            self.done_loading(&program);
            return Err(Errno::ESRCH);
        };
        let (tcb, args_frame) = (objs.tcb, objs.args);
        let entry = program.image().entry;
        if let Err(e) = tcb.suspend() {
            self.done_loading(&program);
            return Err(Errno::from(e));
        }
        let result = VmControl::reset(&self.vm, pid)
            .map(|()| {
                // The old image is gone: the exec happens (or the task dies), and its
                // close-on-exec descriptors go (before the task runs on: its new program
                // could open one first).
                self.exec_notice(pid);
            })
            .and_then(|()| VmControl::set_name(&self.vm, pid, name))
            .and_then(|()| self.load(pid, &program))
            .and_then(|()| self.write_args(args_frame, args, false))
            .and_then(|()| {
                tcb.write_registers(&[entry, USER_STACK_TOP, pid])
                    .map_err(Errno::from)
            })
            .and_then(|()| self.exec_resume(pid));
        self.done_loading(&program);
        match result {
            Ok(()) => {
                if let Some(t) = self.tasks.get_mut(&pid) {
                    t.name = name;
                }
            }
            Err(e) => {
                rt::println!("init: exec {name} in task {pid} failed: {e}");
                self.end(pid, WaitStatus::Killed, 0);
            }
        }
        Ok(())
    }

    /// The program's segments and a stack, as regions of task `pid` in vm. From the disk,
    /// each segment's file part is a private region of the file's memory object (paged in
    /// from the page cache on demand, copied on write, the rest of its last page zero) and
    /// the whole pages past it an anonymous region (`.bss`).
    fn load(&self, pid: u64, program: &Program) -> Result<(), Errno> {
        match program {
            Program::Initrd { file, image } => {
                let base = self.initrd.offset_of(file);
                for seg in &image.segments {
                    self.vm.map_image(pid, seg, base + seg.file_offset)?;
                }
            }
            Program::Disk(d) => {
                for seg in &d.image.segments {
                    let p = Vm::seg_prot(seg);
                    let file_end = seg.vaddr + seg.file_size;
                    let mut anon_start = seg.vaddr - seg.vaddr % PAGE_SIZE;
                    if seg.file_size > 0 {
                        VmControl::map_object(
                            &self.vm,
                            pid,
                            seg.vaddr,
                            seg.file_size,
                            p,
                            Pager::File,
                            d.handle,
                            seg.file_offset,
                        )?;
                        d.claimed.set(true);
                        anon_start = file_end.div_ceil(PAGE_SIZE) * PAGE_SIZE;
                    }
                    let end = seg.vaddr_end().div_ceil(PAGE_SIZE) * PAGE_SIZE;
                    if end > anon_start {
                        VmControl::map_anon(&self.vm, pid, anon_start, end - anon_start, p)?;
                    }
                }
            }
        }
        VmControl::map_anon(
            &self.vm,
            pid,
            USER_STACK_TOP - USER_STACK_SIZE,
            USER_STACK_SIZE,
            prot::READ | prot::WRITE,
        )
    }

    /// After a program was loaded (or failed to): init's descriptor of a disk program goes
    /// (vm's mappings keep the file open in the file server), and so does its handle if vm
    /// never claimed it (a program without file data, or a load that failed first).
    fn done_loading(&mut self, program: &Program) {
        if let Program::Disk(d) = program {
            if !d.claimed.get() {
                self.post_quiet(super::servers::release(d.handle));
            }
            self.post_quiet(super::servers::close(d.fd));
        }
    }

    /// Ends a running task: stops it, has vm forget its address space (which writes its
    /// shared file mappings back first), has the file and shm servers drop its descriptors,
    /// gives all its objects back, and leaves a zombie for its parent (init reaps its own
    /// children).
    pub fn end(&mut self, pid: u64, how: WaitStatus, value: u64) {
        let Some(task) = self.tasks.get_mut(&pid) else {
            return;
        };
        let State::Running(objs) = task.state else {
            return;
        };
        task.state = State::Zombie { how, value };
        let (parent, name) = (task.parent, task.name);
        self.zombies.insert((parent, pid));
        let _ = objs.tcb.suspend();
        if let Err(e) = VmControl::destroy(&self.vm, pid) {
            rt::println!("init: vm could not destroy task {pid}: {e}");
        }
        self.execs.remove(&pid);
        self.notice(ServerControl::TaskExit { pid });
        self.free_objects(objs);

        // Orphans go to init, which reaps them.
        // (A child still being forked stays: its fork fails, its parent being gone.)
        let orphans: Vec<u64> = self.children_of(pid).collect();
        for child in orphans {
            if let Some(t) = self.tasks.get_mut(&child) {
                t.parent = pid::INIT;
                self.children.remove(&(pid, child));
                self.children.insert((pid::INIT, child));
                if self.zombies.remove(&(pid, child)) {
                    self.remove_task(child);
                }
            }
        }

        if parent == pid::INIT {
            self.remove_task(pid);
            if self.watched == Some(pid) {
                self.ended = Some(Ended { name, how, value });
            }
        } else if let Some(Task {
            state: State::Running(p),
            ..
        }) = self.tasks.get(&parent)
        {
            let _ = p.notify.signal();
        }
    }

    /// At power-off: ends every task still running (children the watched program never
    /// waited for, orphans), so that their shared mappings are written back and their
    /// descriptors closed as at any other end.
    pub fn end_remaining(&mut self) {
        let running: Vec<(u64, Name)> = self
            .tasks
            .iter()
            .filter(|(p, t)| **p >= pid::FIRST_USER && matches!(t.state, State::Running(_)))
            .map(|(&p, t)| (p, t.name))
            .collect();
        for (pid, name) in running {
            rt::println!(
                "init: ending {} (pid {pid}), still running at power-off",
                name.as_str()
            );
            self.end(pid, WaitStatus::Killed, 0);
        }
    }

    /// `kill(pid)` from `caller`, which may end only its own descendants: `ESRCH` when no
    /// such task exists (an ended one not yet waited for is no error: nothing to do), `EPERM` for a server or a task outside the caller's subtree.
    pub fn kill(&mut self, caller: u64, target: u64) -> Result<(), Errno> {
        if target < pid::FIRST_USER {
            return Err(Errno::EPERM);
        }
        if !self.tasks.contains_key(&target) {
            return Err(Errno::ESRCH);
        }
        if !self.is_descendant(target, caller) {
            return Err(Errno::EPERM);
        }
        // A child that ended and was not waited for is still a process (POSIX, as Linux):
        // the signal has nothing left to do.
        if self.is_running(target) {
            self.end(target, WaitStatus::Killed, 0);
        }
        Ok(())
    }

    /// Ctrl-C on the console: ends task `target`, whoever its parent (the console server
    /// asks; `EPERM` for a server, `ESRCH` for no such task).
    pub fn interrupt(&mut self, target: u64) -> Result<(), Errno> {
        if target < pid::FIRST_USER {
            return Err(Errno::EPERM);
        }
        if !self.tasks.contains_key(&target) {
            return Err(Errno::ESRCH);
        }
        if self.is_running(target) {
            self.end(target, WaitStatus::Killed, 0);
        }
        Ok(())
    }

    /// Whether `ancestor` is `pid`'s parent, grandparent, and so on. The walk is bounded by
    /// the number of tasks, so a damaged parent chain cannot make it loop.
    fn is_descendant(&self, pid: u64, ancestor: u64) -> bool {
        let mut p = self.parent_of(pid);
        for _ in 0..=self.tasks.len() {
            if p == ancestor {
                return true;
            }
            if p == 0 {
                return false;
            }
            p = self.parent_of(p);
        }
        false
    }

    /// `wait(pid)` (0 or -1, `u64::MAX`: any child, as POSIX `waitpid(-1)`; there are no
    /// process groups): pid, how, status; `EAGAIN` if none has ended yet.
    pub fn wait(&mut self, caller: u64, which: u64) -> Result<WaitReply, Errno> {
        let any_child = which == 0 || which == u64::MAX;
        let found = if any_child {
            self.zombies
                .range((caller, 0)..=(caller, u64::MAX))
                .next()
                .map(|&(_, p)| p)
        } else {
            Some(which).filter(|p| self.zombies.contains(&(caller, *p)))
        };
        if let Some(p) = found
            && let Some(Task {
                state: State::Zombie { how, value },
                ..
            }) = self.remove_task(p)
        {
            return Ok(WaitReply { pid: p, how, value });
        }
        // A child still being forked is no child to wait for yet.
        let any = if any_child {
            self.children_of(caller)
                .any(|c| self.tasks.contains_key(&c))
        } else {
            self.tasks.get(&which).is_some_and(|t| t.parent == caller)
        };
        Err(if any { Errno::EAGAIN } else { Errno::ECHILD })
    }

    /// The children of `parent`: its tasks (running or ended) and those being forked.
    fn children_of(&self, parent: u64) -> impl Iterator<Item = u64> + '_ {
        self.children
            .range((parent, 0)..=(parent, u64::MAX))
            .map(|&(_, c)| c)
    }

    /// Records a new task (and it as its parent's child).
    fn insert_task(&mut self, pid: u64, task: Task) {
        self.children.insert((task.parent, pid));
        self.tasks.insert(pid, task);
    }

    /// Forgets a task (and it as its parent's child).
    fn remove_task(&mut self, pid: u64) -> Option<Task> {
        let task = self.tasks.remove(&pid)?;
        self.children.remove(&(task.parent, pid));
        self.zombies.remove(&(task.parent, pid));
        Some(task)
    }

    /// vm signalled: end every task it has a kill record for.
    pub fn take_kills(&mut self) {
        loop {
            match VmControl::take_kills(&self.vm) {
                Ok(Some(KillRecord { pid, .. })) if self.servers.iter().any(|s| s.pid == pid) => {
                    // vm gave up on a pager that did not answer within its deadline.
                    self.end_server(pid, "no answer to vm within its deadline", 0);
                }
                Ok(Some(KillRecord { pid, kind, addr })) => {
                    let how = match kind {
                        Kill::Segv => WaitStatus::Segv,
                        Kill::Bus => WaitStatus::Bus,
                    };
                    self.end(pid, how, addr);
                }
                Ok(None) => return,
                Err(e) => {
                    rt::println!("init: TakeKills failed: {e}");
                    return;
                }
            }
        }
    }

    fn new_pid(&mut self) -> u64 {
        let pid = self.next_pid;
        self.next_pid += 1;
        pid
    }

    /// Carves a task's objects from a task untyped and fills its CNode; the thread is
    /// configured but not started.
    fn make_objects(&mut self, pid: u64) -> Result<Objects, Errno> {
        let ut = match self.free_untyped.pop() {
            Some(ut) => ut,
            None => Cap::from_cptr(
                self.alloc
                    .retype_global(ObjectType::Untyped, TASK_UNTYPED_BITS)
                    .map_err(|_| Errno::ENOMEM)?,
            ),
        };
        let mut taken: Vec<u64> = Vec::new();
        let result = self.fill_objects(pid, ut, &mut taken);
        if result.is_err() {
            self.release(ut, &taken);
        }
        result.map_err(Errno::from)
    }

    fn fill_objects(
        &mut self,
        pid: u64,
        ut: Cap<Untyped>,
        taken: &mut Vec<u64>,
    ) -> Result<Objects, abi::Error> {
        let alloc = &mut *self.alloc;
        let mut obj = |ty: ObjectType, bits: u64| -> Result<u64, abi::Error> {
            let c: Cap<Untyped> = retype(alloc, ut, ty, bits)?;
            taken.push(c.cptr());
            Ok(c.cptr())
        };
        let cnode: Cap<CNode> = Cap::from_cptr(obj(ObjectType::CNode, task_slots::RADIX)?);
        let vspace: Cap<VSpace> = Cap::from_cptr(obj(ObjectType::VSpace, 0)?);
        let ipc: Cap<Frame> = Cap::from_cptr(obj(ObjectType::Frame, 12)?);
        let tcb: Cap<Tcb> = Cap::from_cptr(obj(ObjectType::Tcb, 0)?);
        let notify: Cap<Notification> = Cap::from_cptr(obj(ObjectType::Notification, 0)?);
        let args: Cap<Frame> = Cap::from_cptr(obj(ObjectType::Frame, AREA_BITS)?);
        let args_out: Cap<Frame> = Cap::from_cptr(obj(ObjectType::Frame, AREA_BITS)?);
        cnode.mint(
            task_slots::VM,
            CNODE,
            self.vm_ep.cptr(),
            CapRights::WRITE,
            pid,
        )?;
        cnode.mint(
            task_slots::PROC,
            CNODE,
            self.init_ep.cptr(),
            CapRights::WRITE,
            pid,
        )?;
        if let Some(file) = self.file_ep {
            cnode.mint(task_slots::FILE, CNODE, file.cptr(), CapRights::WRITE, pid)?;
        }
        if let Some(shm) = self.shm_ep {
            cnode.mint(task_slots::SHM, CNODE, shm.cptr(), CapRights::WRITE, pid)?;
        }
        cnode.copy(task_slots::IPC_BUFFER, CNODE, ipc.cptr(), CapRights::ALL)?;
        if let Some(console) = self.console_ep {
            cnode.mint(
                task_slots::CONSOLE,
                CNODE,
                console.cptr(),
                CapRights::WRITE,
                pid,
            )?;
        }
        cnode.copy(
            task_slots::CHILD_NOTIFY,
            CNODE,
            notify.cptr(),
            CapRights::READ,
        )?;
        // The fault endpoint: vm's, badged with the pid and `FAULT_BADGE` (a badge no
        // capability of the task carries, so vm tells real faults from forged ones). The TCB
        // keeps its own copy.
        let fault = self.alloc.slot()?;
        let configured = CNODE
            .mint(
                fault,
                CNODE,
                self.vm_ep.cptr(),
                CapRights::WRITE,
                pid | proto::pid::FAULT_BADGE,
            )
            .and_then(|()| {
                tcb.configure(
                    cnode,
                    vspace,
                    Some((ipc, USER_IPC_BUFFER)),
                    Some(Cap::from_cptr(fault)),
                    TASK_PRIORITY,
                )
            });
        let _ = CNODE.delete(fault);
        self.alloc.free_slot(fault);
        configured?;
        Ok(Objects {
            ut,
            cnode,
            tcb,
            vspace,
            ipc,
            notify,
            args,
            args_out,
        })
    }

    /// Maps a new task's argument areas: its own (read-only) and the outgoing one.
    fn map_arg_areas(&self, pid: u64, objs: &Objects) -> Result<(), Errno> {
        self.vm
            .map_frame(pid, USER_ARGS, prot::READ, objs.args)
            .and_then(|()| {
                self.vm
                    .map_frame(pid, USER_ARGS_OUT, prot::READ | prot::WRITE, objs.args_out)
            })
    }

    /// Writes `args` into a task's argument frame. `fresh`: the frame is new (retyped, so
    /// zero); else the bytes after the new ones are cleared (exec: the old program's).
    fn write_args(&mut self, frame: Cap<Frame>, args: &ArgArea, fresh: bool) -> Result<(), Errno> {
        let pages = (AREA_BYTES as u64).div_ceil(PAGE_SIZE);
        self.window
            .with(frame, 0, pages, |bytes| {
                let (used, rest) = bytes.split_at_mut(args.0.len().min(bytes.len()));
                used.copy_from_slice(&args.0[..used.len()]);
                if !fresh {
                    rest.fill(0);
                }
            })
            .map_err(Errno::from)
    }

    /// The arguments in an argument frame a task can write (its outgoing area, or its own
    /// area, which `mprotect` could make writable): copied out first, then checked
    /// (`E2BIG`, `EINVAL`: `proto::args`). `ENOMEM` while init's heap is low.
    fn read_args(&mut self, frame: Cap<Frame>) -> Result<ArgArea, Errno> {
        if rt::heap::is_low() {
            return Err(Errno::ENOMEM);
        }
        let pages = (AREA_BYTES as u64).div_ceil(PAGE_SIZE);
        // The header and as many bytes as it claims, at most the area's: a longer claim is
        // `E2BIG` when the copy is checked.
        let copy = self
            .window
            .with(frame, 0, pages, |bytes| {
                let claimed = bytes
                    .get(8..12)
                    .and_then(|w| <[u8; 4]>::try_from(w).ok())
                    .map_or(0, |w| u32::from_le_bytes(w) as usize);
                let n = HEADER_BYTES
                    .saturating_add(claimed)
                    .min(AREA_BYTES)
                    .min(bytes.len());
                bytes[..n].to_vec()
            })
            .map_err(Errno::from)?;
        ArgArea::checked(&copy)
    }

    /// The arguments task `pid` put in its outgoing area (`SpawnArgs`, `ExecArgs`).
    pub fn outgoing_args(&mut self, pid: u64) -> Result<ArgArea, Errno> {
        match self.tasks.get(&pid) {
            Some(Task {
                state: State::Running(objs),
                ..
            }) => {
                let frame = objs.args_out;
                self.read_args(frame)
            }
            _ => Err(Errno::ESRCH),
        }
    }

    /// Deletes every object of a task (revoking its untyped) and keeps the untyped for reuse.
    fn free_objects(&mut self, o: Objects) {
        let slots = [
            o.cnode.cptr(),
            o.tcb.cptr(),
            o.vspace.cptr(),
            o.ipc.cptr(),
            o.notify.cptr(),
            o.args.cptr(),
            o.args_out.cptr(),
        ];
        self.release(o.ut, &slots);
    }

    fn release(&mut self, ut: Cap<Untyped>, slots: &[u64]) {
        match CNODE.revoke(ut.cptr()) {
            Ok(()) => {
                for &s in slots {
                    self.alloc.free_slot(s);
                }
                self.free_untyped.push(ut);
            }
            // Leak it rather than hand out memory that may still be in use.
            Err(e) => rt::println!("init: revoking a task's untyped failed: {e:?}"),
        }
    }
}
