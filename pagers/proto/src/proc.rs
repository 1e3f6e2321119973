//! The process server's messages: tasks' requests to init (the 400s) and their results.

use crate::wire::{Name, ReplyBody, Wire};
use crate::{Label, ProtoError, WaitStatus};

abi::numbered! {
    /// A task's state in a [`TaskEntry`].
    pub enum TaskState {
        /// Running (or waiting: for a reply, a child, a key).
        Running = 1,
        /// Ended, its parent has not `wait`ed for it yet.
        Zombie = 2,
    }
}

crate::interface! {
    /// A task's request to init, badged with the task's pid.
    pub enum ProcRequest {
        /// Start program `name` from the initrd as a child → its pid (`u64`).
        Spawn { name: Name } = Label::Spawn => fn spawn -> u64;
        /// Copy the caller; the child starts at `pc` with `sp` and x0 = 0 (the runtime's fork
        /// trampoline) → the child's pid (`u64`).
        Fork { sp: u64, pc: u64 } = Label::Fork => fn fork -> u64;
        /// Replace the caller's image with program `name`: no reply on success.
        Exec { name: Name } = Label::Exec => fn exec -> ();
        /// End the caller: no reply. The status travels as its two's complement bits.
        Exit { status: i32 } = Label::Exit => fn exit -> ();
        /// Child `pid` (0: any child) that has ended → [`WaitReply`]. Never blocks in init:
        /// `EAGAIN` when children exist but none has ended (the runtime then waits on
        /// `task_slots::CHILD_NOTIFY` and asks again), `ECHILD` when there are none.
        Wait { pid: u64 } = Label::Wait => fn wait -> WaitReply;
        /// End task `pid`.
        Kill { pid: u64 } = Label::Kill => fn kill -> ();
        /// → [`GetPidReply`].
        GetPid = Label::GetPid => fn get_pid -> GetPidReply;
        /// End the session and power the machine off: init ends every task, has the file
        /// server write everything back, and powers off. Only the program init started for the
        /// session (`run=`) may ask (`EPERM` for anyone else); no reply on success.
        PowerOff = Label::PowerOff => fn power_off -> ();
        /// `sync()`: answered once the file and shm servers have done everything init asked
        /// of them before (its notices are sent in order: the descriptors of every task that
        /// ended before the call are gone) and the file server has written back every dirty
        /// block. `EIO` if a write-back failed.
        Sync = Label::Sync => fn sync -> ();
        /// `spawn` with arguments: start program `name` as a child, its argv and
        /// environment the ones the caller put in its outgoing argument area
        /// (`proto::args`; init reads them from its own mapping of that frame, checks them,
        /// and writes them into the child's argument area) → the child's pid. `E2BIG` past
        /// the limits, `EINVAL` for a malformed area. (`Spawn` gives argv = [name] and no
        /// environment.)
        SpawnArgs { name: Name } = Label::SpawnArgs => fn spawn_args -> u64;
        /// `exec` with arguments: as `Exec`, the new program's argv and environment the ones
        /// in the caller's outgoing argument area (checked before the old image goes).
        ExecArgs { name: Name } = Label::ExecArgs => fn exec_args -> ();
        /// The task with the lowest pid from `from` on → [`TaskEntry`]; `ESRCH` past the
        /// last. `ps` lists every task by asking from 0, then from the pid after each
        /// answer's: one task a call, so the answer is bounded whatever the number of tasks.
        /// Any task may ask (there is one user; nothing in an entry is secret).
        TaskAt { from: u64 } = Label::TaskAt => fn task_at -> TaskEntry;
        /// The machine's RAM and what init gave each server of it → [`MemoryReply`] (for
        /// `free`; what each has used of it, the servers' own counters tell).
        Memory = Label::Memory => fn memory -> MemoryReply;
    }
}

/// `Wait`'s result: which child ended, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitReply {
    pub pid: u64,
    pub how: WaitStatus,
    /// The exit status (two's complement bits) for `Exited`, the fault address for `Segv`
    /// and `Bus`, 0 for `Killed`.
    pub value: u64,
}

/// MR1 = pid, MR2 = [`WaitStatus`], MR3 = value.
impl ReplyBody for WaitReply {
    fn encode_body(&self, w: &mut Wire) {
        for word in [self.pid, self.how as u64, self.value] {
            w.push(word);
        }
    }

    fn decode_body(w: &[u64]) -> Result<Self, ProtoError> {
        let Some(&[pid, how, value]) = w.first_chunk::<3>() else {
            return Err(ProtoError::Short);
        };
        let how = WaitStatus::try_from(how).map_err(|_| ProtoError::BadField)?;
        Ok(Self { pid, how, value })
    }
}

/// `GetPid`'s result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetPidReply {
    pub pid: u64,
    /// init's pid when the parent has ended.
    pub parent: u64,
}

/// MR1 = pid, MR2 = parent pid.
impl ReplyBody for GetPidReply {
    fn encode_body(&self, w: &mut Wire) {
        w.push(self.pid);
        w.push(self.parent);
    }

    fn decode_body(w: &[u64]) -> Result<Self, ProtoError> {
        let Some(&[pid, parent]) = w.first_chunk::<2>() else {
            return Err(ProtoError::Short);
        };
        Ok(Self { pid, parent })
    }
}

/// `TaskAt`'s result: one task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskEntry {
    pub pid: u64,
    /// init's pid when the parent has ended.
    pub parent: u64,
    pub state: TaskState,
    /// The program it runs (the last `exec`'s).
    pub name: Name,
}

/// MR1 = pid, MR2 = parent, MR3 = [`TaskState`], MR4..5 = name.
impl ReplyBody for TaskEntry {
    fn encode_body(&self, w: &mut Wire) {
        for word in [self.pid, self.parent, self.state as u64] {
            w.push(word);
        }
        for word in self.name.to_words() {
            w.push(word);
        }
    }

    fn decode_body(w: &[u64]) -> Result<Self, ProtoError> {
        let Some(&[pid, parent, state, n0, n1]) = w.first_chunk::<5>() else {
            return Err(ProtoError::Short);
        };
        let state = TaskState::try_from(state).map_err(|_| ProtoError::BadField)?;
        Ok(Self {
            pid,
            parent,
            state,
            name: Name::from_words([n0, n1])?,
        })
    }
}

/// `Memory`'s result, in bytes: the RAM and the budgets init gave the servers at boot
/// (`startup::Budgets`), and what init has left for tasks' objects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryReply {
    /// RAM the device tree reports.
    pub ram: u64,
    /// RAM init has not handed out yet: tasks' kernel objects (threads, CNodes, address
    /// spaces, argument frames) come from it.
    pub init_free: u64,
    /// zero's untypeds: every page vm gives a task comes from them, 2 MiB at a time.
    pub zero: u64,
    /// vm's heap (its region and page maps) and its untyped for tasks' page tables.
    pub vm_heap: u64,
    pub vm_tables: u64,
    /// The file server's heap (its page cache's budget is in its own counters).
    pub file_heap: u64,
    /// The shm server's untyped (objects' pages and their tables); 0 without the server.
    pub shm: u64,
}

impl MemoryReply {
    const WORDS: usize = 7;
}

/// MR1.. = the fields in order.
impl ReplyBody for MemoryReply {
    fn encode_body(&self, w: &mut Wire) {
        let words = [
            self.ram,
            self.init_free,
            self.zero,
            self.vm_heap,
            self.vm_tables,
            self.file_heap,
            self.shm,
        ];
        for word in words {
            w.push(word);
        }
    }

    fn decode_body(w: &[u64]) -> Result<Self, ProtoError> {
        let Some(&[ram, init_free, zero, vm_heap, vm_tables, file_heap, shm]) =
            w.first_chunk::<{ Self::WORDS }>()
        else {
            return Err(ProtoError::Short);
        };
        Ok(Self {
            ram,
            init_free,
            zero,
            vm_heap,
            vm_tables,
            file_heap,
            shm,
        })
    }
}
